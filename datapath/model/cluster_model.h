/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster model: the Kubernetes objects of the cluster and what is derived from them
 * (identities, IPAM addresses, per-node map entries). The agent (from the store), replay
 * and the simulator (from a scenario file, see model.h) share it.
 *
 * A new object kind goes here, as Service, EndpointSlice and CiliumEgressGatewayPolicy
 * did: its struct and its array in struct cluster_model, its parser in datapath/model/
 * (dispatched by manifest_parse and the scenario parser, parsed into model parts like pods
 * and policies), and the map entries it makes in node_state (node_state.c). Simulator-only documents (Test, Replay) do not: they
 * are the scenario's (model.h).
 */
#ifndef CILIATE_CLUSTER_MODEL_H
#define CILIATE_CLUSTER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ciliate/abi.h"
#include "../common/diag.h"
#include "../lb/maglev.h"

#define MODEL_NAME_MAX 254

struct label {
	char *key;   /* e.g. "app" (no "k8s:" prefix; see struct m_identity for the prefixed form) */
	char *value;
};

struct labelset {
	struct label *v;
	size_t n;
};

#define M_NODE_ADDRESSES_MAX 16

struct m_node {
	char name[64];
	struct labelset labels; /* the Cluster's, or the last applied v1 Node document's */
	uint32_t ip;          /* network order: assigned from underlayCIDR in node order */
	uint32_t pod_cidr;    /* network order */
	uint8_t pod_cidr_len; /* /24 unless pinned */
	/* `addresses`: extra IPv4 addresses on the node's fabric interface (e.g. an egress
	 * IP), network order, inside underlayCIDR, each held by no other node or host */
	uint32_t addresses[M_NODE_ADDRESSES_MAX];
	size_t naddresses;
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

/* bpf-lb-mode: how NodePort / LoadBalancer / externalIP traffic reaches a remote backend */
enum m_lb_mode { LB_MODE_SNAT = 0, LB_MODE_DSR, LB_MODE_HYBRID, LB_MODE_ANNOTATION };
enum m_lb_algorithm { LB_ALG_RANDOM = 0, LB_ALG_MAGLEV };
enum m_dsr_dispatch { DSR_DISPATCH_OPT = 0, DSR_DISPATCH_IPIP, DSR_DISPATCH_GENEVE };

#define LB_PREFILTER_CIDRS_MAX 256 /* prefilter-deny-cidrs entries a Cluster may list */

/* The service-related cilium-config keys of the Cluster, validated once when the Cluster
 * document is parsed (lb_config.c; docs/SERVICES.md "Configuration"). */
struct m_lb_config {
	bool kube_proxy_replacement;	 /* kube-proxy-replacement, default true */
	enum m_lb_mode mode;		 /* bpf-lb-mode, default snat */
	enum m_lb_algorithm algorithm;	 /* bpf-lb-algorithm, default random */
	uint32_t maglev_table_size;	 /* bpf-lb-maglev-table-size, default 16381 */
	struct maglev_seed maglev_seed;	 /* bpf-lb-maglev-hash-seed, default Cilium's */
	enum m_dsr_dispatch dsr_dispatch; /* bpf-lb-dsr-dispatch, default opt */
	bool bpf_masquerade;		 /* enable-bpf-masquerade, default false */
	uint32_t native_routing_cidr;	 /* ipv4-native-routing-cidr (network order), default
					    the cluster podCIDR */
	uint8_t native_routing_cidr_len;
	bool native_routing_cidr_set;	 /* given (else it follows podCIDR) */
	bool health_check_nodeport;	 /* enable-health-check-nodeport, default true */
	bool xdp_acceleration;		 /* bpf-lb-acceleration: native (default disabled) */
	/* prefilter-deny-cidrs: source prefixes dropped at XDP (docs/XDP.md), network order */
	uint32_t prefilter_net[LB_PREFILTER_CIDRS_MAX];
	uint8_t prefilter_len[LB_PREFILTER_CIDRS_MAX];
	size_t nprefilter;
};
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
	struct m_lb_config lb; /* the service keys of config, validated */
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

/* ---- Services and EndpointSlices (service_parse.c, services.c; docs/SERVICES.md) ------- */

enum m_svc_type { SVC_CLUSTER_IP = 0, SVC_NODE_PORT, SVC_LOAD_BALANCER };
/* service.cilium.io/forwarding-mode and service.cilium.io/lb-algorithm: absent = the
 * cluster's bpf-lb-mode / bpf-lb-algorithm */
enum m_svc_fwd { SVC_FWD_DEFAULT = 0, SVC_FWD_SNAT, SVC_FWD_DSR };
enum m_svc_alg { SVC_ALG_DEFAULT = 0, SVC_ALG_RANDOM, SVC_ALG_MAGLEV };

#define SVC_NODEPORT_MIN 30000
#define SVC_NODEPORT_MAX 32767
#define SVC_AFFINITY_TIMEOUT_DEFAULT 10800u
#define SVC_SERVICE_NAME_LABEL "kubernetes.io/service-name"

struct m_cidr {
	uint32_t addr; /* network order */
	uint8_t len;
};

struct m_service_port {
	char name[16];	       /* IANA_SVC_NAME; may be empty when it is the only port */
	uint8_t proto;	       /* IPPROTO_TCP / UDP / SCTP */
	uint16_t port;
	uint16_t target_port;  /* a number (default: port), or 0 with target_name */
	char target_name[16];  /* a named targetPort: the pods' containerPort of that name */
	uint16_t node_port;    /* NodePort/LoadBalancer: given or allocated; else 0 */
	bool node_port_given;
	int node_port_line;
};

struct m_service {
	char ns[64];
	char name[MODEL_NAME_MAX];
	enum m_svc_type type;
	bool headless;		/* clusterIP: None: no frontend at all */
	uint32_t cluster_ip;	/* network order; given or allocated (0 when headless) */
	bool cluster_ip_given;
	int cluster_ip_line;
	struct m_service_port *ports;
	size_t nports;
	struct labelset selector; /* empty: no selector (its slices are given, not derived) */
	uint32_t *external_ips;	  /* spec.externalIPs */
	size_t nexternal_ips;
	uint32_t *lb_ips;	  /* status.loadBalancer.ingress[].ip */
	size_t nlb_ips;
	struct m_cidr *source_ranges; /* spec.loadBalancerSourceRanges */
	size_t nsource_ranges;
	bool etp_local;		  /* externalTrafficPolicy: Local */
	bool itp_local;		  /* internalTrafficPolicy: Local */
	bool affinity;		  /* sessionAffinity: ClientIP */
	uint32_t affinity_timeout; /* seconds, 1..86400 (default 10800) */
	uint16_t health_check_node_port; /* LoadBalancer + ETP Local: given or allocated */
	bool health_check_given;
	int health_check_line;
	enum m_svc_fwd fwd_mode;
	enum m_svc_alg algorithm;
	const char *file;
	int line;
};

struct m_slice_endpoint {
	uint32_t addr; /* addresses[0] (network order); the others are ignored */
	bool ready, serving, terminating; /* conditions (unset: ready, serving = ready,
					     terminating = false, as upstream) */
	char node[64];			  /* nodeName, may be empty */
	char pod_ns[64];		  /* targetRef of kind Pod, may be empty */
	char pod_name[MODEL_NAME_MAX];
};

struct m_slice_port {
	char name[16]; /* matches the service port of the same name ("" for an unnamed one) */
	uint16_t port;
	uint8_t proto;
};

struct m_endpoint_slice {
	char ns[64];
	char name[MODEL_NAME_MAX];
	char service[MODEL_NAME_MAX]; /* the kubernetes.io/service-name label ("" : none) */
	struct m_slice_endpoint *eps;
	size_t neps;
	struct m_slice_port *ports;
	size_t nports;
	bool derived; /* made by services_complete from the service's selector */
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

/* ---- Egress gateway (egress_parse.c, node_egress.c; docs/EGRESS.md) ------------------ */

struct selector; /* a label selector (labels.h) */

/* One entry of spec.selectors[]: a pod is selected when every given selector matches. */
struct m_egress_selector {
	struct selector *pods;	     /* podSelector over the pod's identity labels (keys
					"k8s:"-prefixed, so io.kubernetes.pod.namespace selects the
					namespace); NULL: not given */
	struct selector *namespaces; /* namespaceSelector over the namespace's labels; NULL: not
					given */
	struct selector *nodes;	     /* nodeSelector over the labels of the pod's node; NULL:
					not given */
};

/* spec.egressGateway, or one entry of spec.egressGateways[]. */
struct m_egress_gateway {
	struct selector *nodes; /* nodeSelector over the nodes' labels (plus
				   kubernetes.io/hostname); several matches: the first by name */
	uint32_t egress_ip;	/* egressIP, network order; 0: not given */
	char iface[16];		/* interface; "": not given (with no egressIP either: the
				   default-route device) */
};

/* A cilium.io/v2 CiliumEgressGatewayPolicy (cluster-scoped). */
struct m_egress_policy {
	char name[MODEL_NAME_MAX];
	struct m_egress_selector *selectors;
	size_t nselectors;
	struct m_cidr *dst;	 /* destinationCIDRs (IPv4 ones; IPv6 ones are left out) */
	size_t ndst;
	struct m_cidr *excluded; /* excludedCIDRs (IPv4 ones) */
	size_t nexcluded;
	struct m_egress_gateway *gateways; /* egressGateway (1) or egressGateways[] */
	size_t ngateways;
	bool multi;			   /* given as egressGateways[] */
	const char *file;
	int line;
};

/* A v1 Node document: it replaces the labels of the Cluster node of its name (as `kubectl
 * label node` would), after every document is parsed. */
struct m_node_doc {
	char name[64];
	struct labelset labels;
	const char *file;
	int line;
};

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
	struct m_service *services; /* in manifest order (ExternalName ones are left out) */
	size_t nservices;
	struct m_endpoint_slice *slices; /* given ones in manifest order, then derived ones */
	size_t nslices;
	struct m_identity *identities; /* in allocation order: 256, 257, ... */
	size_t nidentities;
	struct m_egress_policy *egress_policies; /* in manifest order (node_egress.c ranks
						    them by name) */
	size_t negress_policies;
	struct m_node_doc *node_docs; /* v1 Node documents, applied to cluster.nodes */
	size_t nnode_docs;
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

/* The Cluster's validated service configuration (defaults without a Cluster document). */
const struct m_lb_config *cluster_lb_config(const struct cluster_model *m);

/* Finds a service by "ns/name"; NULL if absent. */
const struct m_service *cluster_find_service(const struct cluster_model *m,
					     const char *ns_slash_name);

/* Formats a service port's protocol: "TCP", "UDP" or "SCTP". */
const char *svc_proto_name(uint8_t proto);

/* ---- Service allocations (services.c, service_alloc.c; docs/SERVICES.md "Allocations") -- */

/* True if the service's ports get nodePorts (NodePort, LoadBalancer). */
bool service_needs_node_ports(const struct m_service *svc);

/* True if the service gets a healthCheckNodePort (LoadBalancer with ETP Local). */
bool service_needs_health_check(const struct m_service *svc);

/* The model's allocator, on v[0..n) in order: checks the given clusterIPs (inside cl's
 * serviceCIDR when check_cidr, not the network or broadcast address, not taken twice) and
 * nodePorts / healthCheckNodePorts (not taken twice), then gives every service without
 * values the first free clusterIP from the serviceCIDR's .2 and each of its ports without a
 * nodePort, then its health-check port, the first free number from 30000. Errors name the
 * later service's file and line ("FILE:LINE: FIELD: reason") and *bad (may be NULL) gets
 * its index (n when none is at fault, e.g. -ENOMEM, which is not reported). */
int services_allocate(struct m_service *v, size_t n, const struct m_cluster *cl,
		      bool check_cidr, size_t *bad, struct diag *d);

/* Deep copy of a service; frees what a service holds (not the struct itself). */
int service_copy(struct m_service *dst, const struct m_service *src);
void service_clear(struct m_service *svc);

/* `ciliate apply` keeping a stored Service's values: each value svc does not give (its
 * clusterIP unless headless; the nodePort of a port that needs one, the stored port with the
 * same port and protocol holding it; the healthCheckNodePort) is taken from stored when
 * stored holds it, and counts as given from then on. Returns how many values were taken. */
int service_keep_allocations(struct m_service *svc, const struct m_service *stored);

/* The Service object json (compact JSON) with svc's clusterIP, nodePorts and
 * healthCheckNodePort written where json has none (absent, "" or 0): *out (malloc'd compact
 * JSON, field order kept). svc must be json's service (ports in the same order). */
int service_json_fill(const char *json, const struct m_service *svc, char **out);

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

/* Service entries of a node (node_services.c; docs/SERVICES.md "Per-node entries"). */
struct node_lb_entry {
	struct lb_key key;
	struct lb_service val;
};

struct node_lb_backend {
	uint32_t id; /* the same backend (ADDR:PORT/PROTO) has the same id on every node */
	struct lb_backend val;
};

struct node_lb_revnat {
	uint16_t index; /* rev_nat_index of the frontend, the same on every node */
	struct lb_reverse_nat val;
};

/* The Maglev table of a frontend whose service selects backends with Maglev (and that has
 * a selectable backend): `size` backend ids. */
struct node_lb_maglev {
	uint16_t rev_nat_index;
	uint8_t scope; /* LB_SCOPE_* of the entry it belongs to */
	uint32_t size;
	uint32_t *table;
};

/* loadBalancerSourceRanges of a LoadBalancer frontend (LB_SVC_F_SOURCE_RANGE): a client
 * address inside one of its CIDRs may use the frontend. */
struct node_lb_source_range {
	uint16_t rev_nat_index;
	struct m_cidr cidr;
};

/* Frontend i of lb (its slot 0 at lb[i0]) belongs to this service port (for tools). */
struct node_lb_frontend {
	const struct m_service *svc;
	const struct m_service_port *port;
	size_t slot0; /* index of its slot-0 entry in node_state.lb */
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
	/* services: every (frontend, scope) entry as slot 0 followed by its backend slots;
	 * kube-proxy-replacement false leaves all of them empty */
	struct node_lb_entry *lb;
	size_t nlb;
	struct node_lb_frontend *lb_frontends; /* one per slot-0 entry of lb, in order */
	size_t nlb_frontends;
	struct node_lb_backend *lb_backends; /* every backend a frontend of this node uses
						(terminating ones too), sorted by id */
	size_t nlb_backends;
	struct node_lb_revnat *lb_revnat; /* one per frontend of this node, sorted by index */
	size_t nlb_revnat;
	struct node_lb_maglev *lb_maglev; /* one per Maglev entry with a backend */
	size_t nlb_maglev;
	struct node_lb_source_range *lb_source_ranges;
	size_t nlb_source_ranges;
	struct node_config cfg; /* ciliate_node_cfg: the node's address and NAT settings
				   (fabric_ifindex is the agent's to fill in) */
	struct prefilter_key *prefilter; /* ciliate_prefilter: prefilter-deny-cidrs */
	size_t nprefilter;
	struct node_egress_entry *egress; /* ciliate_egress_gw (docs/EGRESS.md), sorted by key */
	size_t negress;
};

/*
 * One ciliate_egress_gw entry: (pod, destination prefix) -> gateway node and egress IP. Every
 * node holds the entries of every selected pod (a pod's node redirects to the gateway, the
 * gateway SNATs). Where this node is the gateway and the policy gave no egressIP, val.egress_ip
 * is 0 and `resolve` is set: the agent fills in the first IPv4 address of `iface` (the
 * policy's egressGateway.interface; "" the default-route device) and leaves 0 when there is
 * none (the datapath then drops with NO_EGRESS_IP).
 */
struct node_egress_entry {
	struct egress_gw_key key;
	struct egress_gw_value val;
	char iface[16];
	bool resolve;
};

/* ---- Egress gateway: per-node entries and lookups (node_egress.c; docs/EGRESS.md) ---- */

/* Computes node's ciliate_egress_gw entries into ns->egress (sorted by pod address, then
 * destination, then prefix length). Called by node_state_compute. */
int node_egress_compute(const struct cluster_model *m, const struct m_node *node,
			struct node_state *ns);

/* Finds an egress gateway policy by name; NULL if absent. */
const struct m_egress_policy *cluster_find_egress_policy(const struct cluster_model *m,
							 const char *name);

/* The node one gateway entry chooses: the first by name its nodeSelector matches; NULL if
 * none (what `ciliate status` shows per policy). */
const struct m_node *egress_gateway_node(const struct cluster_model *m,
					 const struct m_egress_gateway *gw);

/* True if pol selects pod (never a hostNetwork pod). */
bool egress_policy_selects(const struct cluster_model *m, const struct m_egress_policy *pol,
			   const struct m_pod *pod);

/* The gateway node pol gives pod (NULL: none matches: NO_EGRESS_GATEWAY); *gw (may be NULL)
 * gets the egressGateway(s) entry it came from (NULL when none). */
const struct m_node *egress_gateway_of(const struct cluster_model *m,
				       const struct m_egress_policy *pol, const struct m_pod *pod,
				       const struct m_egress_gateway **gw);

/* What the egress gateway does with pod's traffic to daddr (network order), as the
 * datapath's longest-prefix lookup in ciliate_egress_gw would: */
enum egress_verdict {
	EGRESS_NONE = 0,   /* no policy's CIDR holds daddr: ordinary routing/masquerading */
	EGRESS_EXCLUDED,   /* an excludedCIDR: ordinary routing/masquerading */
	EGRESS_NO_GATEWAY, /* selected, no gateway node: dropped with NO_EGRESS_GATEWAY */
	EGRESS_VIA_GATEWAY /* via `gateway`, SNATed to egress_ip (0: the gateway resolves
			      iface, "" its default-route device) */
};
struct egress_route {
	enum egress_verdict verdict;
	const struct m_egress_policy *policy; /* the policy of the matching entry */
	const struct m_node *gateway;
	uint32_t egress_ip;
	const char *iface;
};
int egress_route_of(const struct cluster_model *m, const struct m_pod *pod, uint32_t daddr,
		    struct egress_route *out);

/* Computes the map entries the named node's datapath must hold. */
int node_state_compute(const struct cluster_model *m, const char *node, struct node_state *out,
		       struct diag *d);

/* Computes the service entries of node_state (called by node_state_compute). */
int node_services_compute(const struct cluster_model *m, struct node_state *ns);

/* The ciliate_lb_src_ranges key of a source range (its LPM prefix, canonical). */
void lb_src_range_key_of(const struct node_lb_source_range *r, struct lb_src_range_key *k);

/* Frees the service arrays of ns. */
void node_services_free(struct node_state *ns);

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
size_t model_part_nservices(const struct model_part *p);

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
