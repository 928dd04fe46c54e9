/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the model: the per-document parsers a scenario file (or a cluster model's
 * documents) is dispatched to, and the passes that complete a parsed cluster model
 * (namespaces, IPAM, identities).
 */
#ifndef CILIATE_MODEL_PARSE_H
#define CILIATE_MODEL_PARSE_H

#include <stdbool.h>

#include "model.h"
#include "yaml_tree.h"

#define SIM_API_VERSION "sim.ciliate.dev/v1"

/* One document being parsed into a cluster model (and, for a scenario file, its scenario). */
struct parse_ctx {
	struct yt_ctx yt;
	struct cluster_model *m; /* the Kubernetes objects go here */
	struct scenario *s;	 /* Test and Replay documents go here; NULL outside a scenario */
	const char *dir; /* directory of the scenario file: base of relative paths */
};

/* Parses the Cluster document (nodes, addressing, external hosts, config) into m->cluster. */
int cluster_parse(struct parse_ctx *p, const yaml_node_t *root);

/* Reads metadata.name, metadata.namespace (into ns unless NULL; default "default") and
 * metadata.labels (unless labels is NULL) of a Kubernetes object. */
int k8s_metadata_parse(struct parse_ctx *p, const yaml_node_t *root, char *name, size_t nsize,
		       char *ns, size_t nssize, struct labelset *labels);

/* True if s is a valid IANA_SVC_NAME (1-15 of a-z0-9-, a letter, no edge or double '-'). */
bool k8s_port_name_valid(const char *s);

/* Parses a v1 Namespace document and appends it to m->namespaces. */
int namespace_parse(struct parse_ctx *p, const yaml_node_t *root);

/* Parses a v1 Pod document and appends it to m->pods (pinned IPs validated, IPAM later). */
int pod_parse(struct parse_ctx *p, const yaml_node_t *root);

/* Parses a v1 Service and appends it to m->services (ExternalName ones are checked and left
 * out); a given clusterIP or nodePort already taken by an earlier service is an error.
 * Addresses are allocated, and the serviceCIDR checked, by services_complete. */
int service_parse(struct parse_ctx *p, const yaml_node_t *root);

/* Parses a discovery.k8s.io/v1 EndpointSlice and appends it to m->slices (addressType
 * IPv6 and FQDN ones are checked and left out). */
int endpoint_slice_parse(struct parse_ctx *p, const yaml_node_t *root);

/* After identities: checks the services against the Cluster (clusterIP inside serviceCIDR,
 * nothing taken twice), allocates clusterIPs, nodePorts and healthCheckNodePorts in model
 * order and derives the EndpointSlices of selector services that have none (services.c). */
int services_complete(struct cluster_model *m, struct diag *d);

/* Removes the derived slices of m (before services_complete runs again). */
void services_drop_derived(struct cluster_model *m);

/* Deep copies of a service / slice (parts.c puts models together with them; service_copy
 * and service_clear are in cluster_model.h). */
int slice_copy(struct m_endpoint_slice *dst, const struct m_endpoint_slice *src);

/* Frees what a slice holds (not the struct itself). */
void slice_clear(struct m_endpoint_slice *sl);

/* The service keys of cilium-config (lb_config.c): defaults (after the Cluster's podCIDR is
 * known) and validation of the Cluster's spec.config mapping. */
void lb_config_defaults(struct m_cluster *cl);
int lb_config_parse(struct parse_ctx *p, struct m_cluster *cl, const yaml_node_t *config);

/* Parses a networking.k8s.io/v1 NetworkPolicy and appends it to m->policies. */
int netpol_parse(struct parse_ctx *p, const yaml_node_t *root);

/* Parses a cilium.io/v2 CiliumEgressGatewayPolicy and appends it to m->egress_policies
 * (egress_parse.c); a name taken by an earlier one is an error. */
int egress_policy_parse(struct parse_ctx *p, const yaml_node_t *root);

/* Frees what an egress policy holds (not the struct itself). */
void egress_policy_clear(struct m_egress_policy *pol);

/* Parses a v1 Node document (metadata.name naming a node of p->m's Cluster,
 * metadata.labels) and appends it to m->node_docs; a second one for a node is an error. */
int node_doc_parse(struct parse_ctx *p, const yaml_node_t *root);

/* Gives each node named by m->node_docs that document's labels (after every document is
 * parsed). -ENOENT if one names no node of the Cluster (only parts can get there), -ENOMEM. */
int node_docs_apply(struct cluster_model *m);

/* Parses a Test document and appends it to s->tests. */
int test_parse(struct parse_ctx *p, const yaml_node_t *root);

/* Parses a Replay document and appends it to s->replays (pods must be parsed already). */
int replay_parse(struct parse_ctx *p, const yaml_node_t *root);

/* Parses one Kubernetes manifest (Namespace, Pod, NetworkPolicy, Cilium(Clusterwide)Network-
 * Policy, Service, EndpointSlice, CiliumEgressGatewayPolicy, Node; other kinds ignored) into
 * p->m. sim.ciliate.dev kinds and documents without apiVersion/kind are errors. */
int manifest_parse(struct parse_ctx *p, const yaml_node_t *root, const char *path);

/* Calls fn(p, item, "items[N]", arg) on each item of a v1 List document, in order (none
 * when it has no items); returns the first error. */
int list_items_each(struct parse_ctx *p, const yaml_node_t *list,
		    int (*fn)(struct parse_ctx *p, yaml_node_t *item, const char *path, void *arg),
		    void *arg);

/* Parses a Matrix `table` string into m (rows, cols, cells); labels are checked like probe
 * endpoints against cm; errors name the table row's line. */
int matrix_table_parse(const struct yt_ctx *c, const struct cluster_model *cm,
		       const yaml_node_t *n, const char *path, struct m_matrix *m);

/* Checks a probe endpoint reference (ns/pod, svc/ns/name, node/N, ext/N, ip/A.B.C.D); on
 * error writes the reason into why. */
int endpoint_ref_check(const struct cluster_model *m, const char *ref, char *why, size_t size);

/* Resolves rel against dir (absolute paths are kept) into a malloc'd *out. */
int path_resolve(const char *dir, const char *rel, char **out);

/* Parses "TCP"/"UDP"/"SCTP" (and "ICMP" when icmp_ok) into an IPPROTO_* number. */
int proto_parse(const char *s, bool icmp_ok, uint8_t *proto);

/* True if name is a drop reason of drop_reasons.h (e.g. "POLICY_DENIED"). */
bool drop_reason_known(const char *name);

/* Checks "metadata" of a sim.ciliate.dev document (name, labels, annotations) and copies
 * the name into buf (empty if absent, or an error if required). */
int sim_metadata_parse(struct parse_ctx *p, const yaml_node_t *root, bool required, char *buf,
		       size_t size);

/* Adds an implicit namespace for every pod or policy namespace without a document, and sets
 * kubernetes.io/metadata.name on every namespace. */
int namespaces_complete(struct cluster_model *m, struct diag *d);

/* Assigns addresses to pods without status.podIP: first free from .10 of the node range. */
int ipam_assign(struct cluster_model *m, struct diag *d);

/* Builds each pod's identity label set and allocates identities from 256 in pod order. */
int identity_assign(struct cluster_model *m, struct diag *d);

/* Builds the identity label set of a pod ("k8s:" keys, namespace and namespace labels). */
int identity_labels_for_pod(const struct cluster_model *m, const struct m_pod *pod,
			    struct labelset *out);

/* Appends a zeroed policy to m->policies (which owns it from then on); NULL when out of
 * memory. */
struct m_policy *policy_append(struct cluster_model *m);

/* Frees a policy parsed by any policy parser. */
void policy_free(struct m_policy *pol);

/* The YAML documents of one text (from_docs.c). */
struct doc_stream {
	yaml_document_t *docs;
	size_t n;
};

/* Parses every YAML document of text into st (appending); syntax errors name the text. */
int doc_stream_load(const char *name, const char *text, size_t len, struct doc_stream *st,
		    struct diag *d);

/* Parses the Cluster document(s) of st into p->m; a second Cluster (after the one at
 * *cluster_line) is an error. */
int doc_stream_cluster(struct parse_ctx *p, struct doc_stream *st, int *cluster_line);

/* Parses the Kubernetes documents of st (v1 List items expanded, Cluster skipped) into p->m. */
int doc_stream_manifests(struct parse_ctx *p, struct doc_stream *st);

/* Frees the documents of st. */
void doc_stream_clear(struct doc_stream *st);

/* A cluster model holding the Cluster defaults only (no Cluster document), named name. */
int cluster_model_new(const char *name, struct cluster_model **out);

/* Sets the Cluster defaults (routing, encryption, address ranges) in cl. */
void cluster_defaults(struct m_cluster *cl);

/* Frees the namespaces, pods, policies, services and slices of m (not the cluster or
 * identities). */
void cluster_model_free_workloads(struct cluster_model *m);

/* Frees everything m holds, not m itself (a scenario's embedded model). */
void cluster_model_clear(struct cluster_model *m);

#endif
