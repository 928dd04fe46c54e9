/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control-plane model: a scenario file (SPEC section 5) parsed into plain structs, and the
 * per-node datapath state (endpoint, ipcache and policy map entries) computed from it.
 *
 * Parsing is strict for sim.ciliate.dev/v1 kinds (unknown fields are errors with file:line)
 * and lenient for Kubernetes kinds (unknown upstream fields are accepted and ignored).
 * Every error message has the form "FILE:LINE: FIELD.PATH: reason".
 */
#ifndef CILIATE_MODEL_H
#define CILIATE_MODEL_H

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

struct m_replay {
	char name[MODEL_NAME_MAX];
	char node[64];
	char hook[32];      /* from-container | to-container | from-netdev | ... */
	char endpoint[320]; /* "ns/pod" or "" */
	char *pcap;         /* resolved relative to the scenario file */
	char **expect_verdicts; /* e.g. "redirect", "drop:POLICY_DENIED"; NULL if absent */
	size_t nexpect_verdicts;
	char *expect_output;    /* resolved path or NULL */
	int line;
};

/* Test documents (SPEC section 5) are parsed and validated here; running them is the
 * simulator's job. */
struct m_probe {
	char from[320];
	char to[320];
	uint16_t port;
	uint8_t proto;
	bool expect_allow;
	char **backend_in;
	size_t nbackend_in;
	char client_ip_seen[16]; /* "", preserved, node, egress-ip */
	int same_backend;        /* 0: not asserted */
	char *spread;            /* raw value or NULL */
	char reply_bypasses[96];
	char encrypted_on[32];
	char drop_reason[64];
	int line;
};

struct m_matrix {
	uint16_t port;
	uint8_t proto;
	char **rows;   /* row labels (sources) */
	char **cols;   /* column labels (destinations) */
	size_t nrows, ncols;
	char *cells;   /* nrows * ncols of '.' (allow) or 'X' (deny) */
	int line;
};

struct m_delete_ref {
	char kind[64];
	char ns[64];
	char name[MODEL_NAME_MAX];
};

/* Simulator faults of a step (docs/SIMULATOR.md), done after its state change. */
enum m_fault_action { FAULT_RESTART_AGENT = 1, FAULT_LINK_DOWN, FAULT_LINK_UP };

struct m_fault {
	enum m_fault_action action;
	char node[64];
	int line;
};

/* A long-lived TCP connection opened before the step's changes and faults, exchanging a
 * request every few milliseconds until the step's probes are done: it must lose nothing. */
struct m_stream {
	char from[320];
	char to[320];
	uint16_t port;
	int line;
};

struct m_step {
	char name[MODEL_NAME_MAX];
	char *expect_rejected;      /* the change must be refused, its message holding this */
	struct m_fault *faults;
	size_t nfaults;
	struct m_stream *streams;
	size_t nstreams;
	char *apply;                /* resolved path or NULL */
	char *manifests_yaml;       /* inline manifests re-serialised as YAML, or NULL */
	struct m_delete_ref *deletes;
	size_t ndeletes;
	struct m_probe *probes;
	size_t nprobes;
	struct m_matrix *matrices;
	size_t nmatrices;
	int line;
};

struct m_test {
	char name[MODEL_NAME_MAX];
	struct m_step *steps;
	size_t nsteps;
	int line;
};

struct scenario {
	char *path;
	bool has_cluster;
	struct m_cluster cluster;
	struct m_namespace *namespaces;
	size_t nnamespaces;
	struct m_pod *pods;
	size_t npods;
	struct m_policy **policies;
	size_t npolicies;
	struct m_replay *replays;
	size_t nreplays;
	struct m_test *tests;
	size_t ntests;
	struct m_identity *identities; /* in allocation order: 256, 257, ... */
	size_t nidentities;
	/* scenario_from_parts: the parts the pods' labels and ports and the policies belong to
	 * (one reference each, released by scenario_free) */
	struct model_part **parts;
	size_t nparts;
};

/* Parses a scenario file. On error returns a negative errno with d->msg set and *out NULL. */
int scenario_load(const char *path, struct scenario **out, struct diag *d);

/* Same as scenario_load, from a buffer; name is used in messages and relative paths are
 * resolved against its directory. */
int scenario_load_buffer(const char *name, const char *buf, size_t len, struct scenario **out,
			 struct diag *d);

/* Frees everything scenario_load allocated. NULL is fine. */
void scenario_free(struct scenario *s);

/* Finds a pod by "ns/name"; NULL if absent. */
const struct m_pod *scenario_find_pod(const struct scenario *s, const char *ns_slash_name);

/* Finds a node by name; NULL if absent. */
const struct m_node *scenario_find_node(const struct scenario *s, const char *name);

/* Finds a namespace (explicit or implicit) by name; NULL if absent. */
const struct m_namespace *scenario_find_namespace(const struct scenario *s, const char *name);

/* Finds an allocated identity by number; NULL if absent (reserved ones are never listed). */
const struct m_identity *scenario_find_identity(const struct scenario *s, uint32_t id);

/* Replaces the numbers of s->identities (allocated in manifest order) with ids[i] for
 * identity i, e.g. the store's allocations, and moves every pod along. ids must be distinct
 * cluster identities; -EINVAL otherwise (nothing changed). */
int scenario_renumber_identities(struct scenario *s, const uint32_t *ids);

/* Returns the Cluster's cilium-config value for key, or NULL if unset. */
const char *scenario_config(const struct scenario *s, const char *key);

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
int node_state_compute(const struct scenario *s, const char *node, struct node_state *out,
		       struct diag *d);

/* Frees a node_state's arrays (not the scenario it points into). */
void node_state_free(struct node_state *ns);

/* Finds the endpoint of pod "ns/name" on this node; NULL if absent. */
const struct node_endpoint *node_state_find_endpoint(const struct node_state *ns,
						     const char *ns_slash_name);

/* ---- Building from separate documents (datapath/model/from_docs.c) ------------------ */

#define MODEL_DOC_CLUSTER_ONLY (1u << 0) /* use only this stream's Cluster document */

/* One input of scenario_from_docs: a YAML or JSON text holding one or more documents. */
struct model_doc {
	const char *name;   /* FILE in messages: a path or a store key (copied) */
	const char *text;
	size_t len;
	unsigned int flags; /* MODEL_DOC_* */
};

/* Builds a scenario from docs like scenario_load does from one file (the Cluster first, then
 * the Kubernetes manifests in order, then namespaces, IPAM, identities); Test and Replay
 * documents are errors. On error *bad (may be NULL) gets the index of the culprit document,
 * or ndocs when no single document is at fault. */
int scenario_from_docs(const char *name, const struct model_doc *docs, size_t ndocs,
		       struct scenario **out, size_t *bad, struct diag *d);

/* ---- Building from cached parts (datapath/model/parts.c) -------------------------- */

/* What one document of scenario_from_docs adds to the model (namespaces, pods, policies),
 * parsed once on its own against a Cluster, so that a model can be put together again
 * without parsing anything (the agent keeps one per stored object version). Reference
 * counted: a scenario built from parts holds a reference to each part it uses. */
struct model_part;

/* Parses one document (name is copied and names it in messages, as in scenario_from_docs)
 * against base's Cluster. Errors are those scenario_from_docs reports for the document
 * when no other document is in conflict with it. */
int model_part_parse(const struct scenario *base, const char *name, const char *text,
		     size_t len, struct model_part **out, struct diag *d);

/* Counts of what a part adds (for tests). */
size_t model_part_npods(const struct model_part *p);

/* Takes another reference; returns p. */
struct model_part *model_part_ref(struct model_part *p);

/* Drops a reference (NULL is fine); the last one frees the part. */
void model_part_unref(struct model_part *p);

/* A new scenario holding a copy of src's Cluster (and name) only: the start of a model put
 * together from parts, without parsing the Cluster document again. */
int scenario_copy_cluster(const struct scenario *src, struct scenario **out);

/* Completes s (a scenario holding only its Cluster, e.g. from scenario_copy_cluster) with parts in order, then namespaces, IPAM and identities: the
 * same model scenario_from_docs builds from the Cluster and the parts' documents. Returns
 * -EAGAIN (nothing reported, s unchanged but for appended workloads: free it) when the parts
 * are in conflict (a duplicate object or address) or a completion pass fails: the caller
 * then asks scenario_from_docs, which names the culprit document. */
int scenario_from_parts(struct scenario *s, struct model_part *const *parts, size_t n,
			struct diag *d);

/* The annotation `ciliate apply` adds to every stored object: "FILE:LINE" of its source. */
#define MANIFEST_SOURCE_ANNOTATION "ciliate.dev/source"

/* One Kubernetes object of a manifest file, checked and converted to JSON. */
struct manifest_obj {
	char *api_version; /* NULL: not given (manifest_refs_load only) */
	char *kind;
	char *ns;   /* "" for cluster-scoped kinds; "default" when unset */
	char *name;
	char *json; /* compact JSON, with the MANIFEST_SOURCE_ANNOTATION added (NULL from
		     * manifest_refs_load) */
	int line;
};

/* Kubernetes kinds without a namespace (Namespace, Node, CiliumClusterwideNetworkPolicy,
 * CiliumEgressGatewayPolicy, ...): their objects are stored with namespace "" and a
 * namespace given to them is ignored. */
bool manifest_kind_cluster_scoped(const char *kind);

/* Checks a manifest file (multi-document YAML, v1 List items expanded) and converts each
 * object to JSON; the kinds the model knows are checked field by field (any node name and
 * pod address are accepted: agents check those). sim.ciliate.dev documents are skipped and
 * counted in *skipped (may be NULL). Errors read "FILE:LINE: FIELD: reason". */
int manifests_load(const char *name, const char *text, size_t len, struct manifest_obj **out,
		   size_t *n, size_t *skipped, struct diag *d);

/* What `ciliate delete -f` needs, as `kubectl delete -f`: each object's kind,
 * metadata.namespace and metadata.name (namespace as in manifests_load; apiVersion, spec and
 * the rest are neither needed nor checked; any kind). v1 List items are expanded,
 * sim.ciliate.dev documents skipped. */
int manifest_refs_load(const char *name, const char *text, size_t len,
		       struct manifest_obj **out, size_t *n, size_t *skipped, struct diag *d);

/* Frees the array manifests_load or manifest_refs_load returned. */
void manifests_free(struct manifest_obj *v, size_t n);

#endif
