/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster model: the Kubernetes objects of the cluster and what is derived from them
 * (identities, IPAM addresses, per-node map entries). The agent (from the store), replay
 * and the simulator (from a scenario file, see model.h) share it.
 *
 * A new object kind (Service, EndpointSlice, CiliumEgressGatewayPolicy, ...) goes here: its
 * struct and its array in struct cluster_model, its parser in datapath/model/ (dispatched by
 * manifest_parse, parsed into model parts like pods and policies), and the map entries it
 * makes in node_state (node_state.c). Simulator-only documents (Test, Replay) do not: they
 * are the scenario's (model.h).
 */
#ifndef CILIATE_CLUSTER_MODEL_H
#define CILIATE_CLUSTER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ciliate/abi.h"
#include "../common/diag.h"

#define MODEL_NAME_MAX 254

struct label {
	char *key;   /* e.g. "app" (no "k8s:" prefix; see struct m_identity for the prefixed form) */
	char *value;
};

struct labelset {
	struct label *v;
	size_t n;
};

struct m_node {
	char name[64];
	struct labelset labels;
	uint32_t ip;          /* network order: assigned from underlayCIDR in node order */
	uint32_t pod_cidr;    /* network order */
	uint8_t pod_cidr_len; /* /24 unless pinned */
	int line;
};

struct m_external_host {
	char name[64];
	uint32_t ip; /* network order */
	uint16_t *ports;
	size_t nports;
	int line;
};

struct m_kv {
	char *key;
	char *value;
};

enum m_routing { ROUTING_TUNNEL = 0, ROUTING_NATIVE = 1 };
enum m_encryption { ENCRYPTION_NONE = 0, ENCRYPTION_WIREGUARD = 1, ENCRYPTION_IPSEC = 2 };

struct m_cluster {
	char name[64];
	struct m_node *nodes;
	size_t nnodes;
	enum m_routing routing;
	enum m_encryption encryption;
	uint32_t pod_cidr; /* network order */
	uint8_t pod_cidr_len;
	uint32_t service_cidr;
	uint8_t service_cidr_len;
	uint32_t underlay_cidr;
	uint8_t underlay_cidr_len;
	struct m_external_host *ext_hosts;
	size_t next_hosts;
	struct m_kv *config; /* cilium-config keys */
	size_t nconfig;
	int line;
};

struct m_namespace {
	char name[64];
	struct labelset labels; /* includes kubernetes.io/metadata.name=<name> */
	bool implicit;          /* no Namespace document: only referenced by a pod or policy */
	int line;
};

struct m_container_port {
	char name[16]; /* IANA_SVC_NAME, may be empty */
	uint16_t port;
	uint8_t proto; /* IPPROTO_TCP / UDP / SCTP */
};

struct m_pod {
	char ns[64];
	char name[MODEL_NAME_MAX];
	char node[64];
	struct labelset labels;
	struct m_container_port *ports;
	size_t nports;
	bool host_network;
	uint32_t ip;     /* network order; pinned by status.podIP or assigned by IPAM */
	bool ip_pinned;
	uint32_t identity; /* IDENTITY_HOST for hostNetwork pods */
	const char *file;
	int line;
};

/* A security identity allocated for a distinct label set. Keys carry the source prefix:
 * "k8s:app", "k8s:io.kubernetes.pod.namespace", "k8s:io.cilium.k8s.namespace.labels.env". */
struct m_identity {
	uint32_t id;
	struct labelset labels; /* sorted by key */
};

/* A NetworkPolicy / CiliumNetworkPolicy as parsed; its rule structure is private to the
 * policy compiler (datapath/model/policy.h). */
struct m_policy;

struct cluster_model {
	/* what messages call the model: a scenario file's path or, built from documents,
	 * the model's name followed by every document's name (NUL-separated); the pods'
	 * `file` point into it */
	char *name;
	bool has_cluster; /* a Cluster document was given (else `cluster` holds defaults) */
	struct m_cluster cluster;
	struct m_namespace *namespaces;
	size_t nnamespaces;
	struct m_pod *pods;
	size_t npods;
	struct m_policy **policies;
	size_t npolicies;
	struct m_identity *identities; /* in allocation order: 256, 257, ... */
	size_t nidentities;
	/* cluster_model_from_parts: the parts the pods' labels and ports and the policies
	 * belong to (one reference each, released by cluster_model_free) */
	struct model_part **parts;
	size_t nparts;
};

/* Frees m and everything in it (NULL is fine). */
void cluster_model_free(struct cluster_model *m);

/* Finds a pod by "ns/name"; NULL if absent. */
const struct m_pod *cluster_find_pod(const struct cluster_model *m, const char *ns_slash_name);

/* Finds a node by name; NULL if absent (or m NULL). */
const struct m_node *cluster_find_node(const struct cluster_model *m, const char *name);

/* Finds a namespace (explicit or implicit) by name; NULL if absent. */
const struct m_namespace *cluster_find_namespace(const struct cluster_model *m,
						 const char *name);

/* Finds an allocated identity by number; NULL if absent (reserved ones are never listed). */
const struct m_identity *cluster_find_identity(const struct cluster_model *m, uint32_t id);

/* Replaces the numbers of m->identities (allocated in manifest order) with ids[i] for
 * identity i, e.g. the store's allocations, and moves every pod along. ids must be distinct
 * cluster identities; -EINVAL otherwise (nothing changed). */
int cluster_renumber_identities(struct cluster_model *m, const uint32_t *ids);

/* Returns the Cluster's cilium-config value for key, or NULL if unset. */
const char *cluster_config(const struct cluster_model *m, const char *key);

/* ---- Per-node datapath state -------------------------------------------------------- */

struct node_endpoint {
	const struct m_pod *pod;
	struct endpoint_info info; /* ifindex is synthetic (NODE_STATE_IFINDEX_BASE + ep_id)
				      until an agent attaches a real veth */
};

struct node_ipcache_entry {
	struct ipcache_key key;
	struct ipcache_value val;
};

struct node_policy_entry {
	struct policy_key key;
	struct policy_value val;
};

#define NODE_STATE_IFINDEX_BASE 1000

struct node_state {
	const struct m_node *node;
	struct node_endpoint *eps;
	size_t neps;
	struct node_ipcache_entry *ipcache;
	size_t nipcache;
	struct node_policy_entry *policy;
	size_t npolicy;
	char **rule_names; /* rule_id -> "ns/name ingress[0]"; index 0 is "" */
	size_t nrule_names;
};

/* Computes the map entries the named node's datapath must hold. */
int node_state_compute(const struct cluster_model *m, const char *node, struct node_state *out,
		       struct diag *d);

/* Frees a node_state's arrays (not the cluster model it points into). */
void node_state_free(struct node_state *ns);

/* Finds the endpoint of pod "ns/name" on this node; NULL if absent. */
const struct node_endpoint *node_state_find_endpoint(const struct node_state *ns,
						     const char *ns_slash_name);

/* ---- Building from separate documents (datapath/model/from_docs.c) ------------------ */

#define MODEL_DOC_CLUSTER_ONLY (1u << 0) /* use only this stream's Cluster document */

/* One input of cluster_model_from_docs: a YAML or JSON text holding one or more documents. */
struct model_doc {
	const char *name;   /* FILE in messages: a path or a store key (copied) */
	const char *text;
	size_t len;
	unsigned int flags; /* MODEL_DOC_* */
};

/* Builds a cluster model from docs like scenario_load does from one file (the Cluster first,
 * then the Kubernetes manifests in order, then namespaces, IPAM, identities); Test and Replay
 * documents are errors. On error *bad (may be NULL) gets the index of the culprit document,
 * or ndocs when no single document is at fault. */
int cluster_model_from_docs(const char *name, const struct model_doc *docs, size_t ndocs,
			    struct cluster_model **out, size_t *bad, struct diag *d);

/* ---- Building from cached parts (datapath/model/parts.c) -------------------------- */

/* What one document of cluster_model_from_docs adds to the model (namespaces, pods,
 * policies), parsed once on its own against a Cluster, so that a model can be put together
 * again without parsing anything (the agent keeps one per stored object version). Reference
 * counted: a model built from parts holds a reference to each part it uses. */
struct model_part;

/* Parses one document (name is copied and names it in messages, as in
 * cluster_model_from_docs) against base's Cluster. Errors are those cluster_model_from_docs
 * reports for the document when no other document is in conflict with it. */
int model_part_parse(const struct cluster_model *base, const char *name, const char *text,
		     size_t len, struct model_part **out, struct diag *d);

/* Counts of what a part adds (for tests). */
size_t model_part_npods(const struct model_part *p);

/* Takes another reference; returns p. */
struct model_part *model_part_ref(struct model_part *p);

/* Drops a reference (NULL is fine); the last one frees the part. */
void model_part_unref(struct model_part *p);

/* A new cluster model holding a copy of src's Cluster (and name) only: the start of a model
 * put together from parts, without parsing the Cluster document again. */
int cluster_model_copy_cluster(const struct cluster_model *src, struct cluster_model **out);

/* Completes m (a model holding only its Cluster, e.g. from cluster_model_copy_cluster) with
 * parts in order, then namespaces, IPAM and identities: the same model
 * cluster_model_from_docs builds from the Cluster and the parts' documents. Returns -EAGAIN
 * (nothing reported, m unchanged but for appended workloads: free it) when the parts are in
 * conflict (a duplicate object or address) or a completion pass fails: the caller then asks
 * cluster_model_from_docs, which names the culprit document. */
int cluster_model_from_parts(struct cluster_model *m, struct model_part *const *parts,
			     size_t n, struct diag *d);

#endif
