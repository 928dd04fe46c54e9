/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A scenario file (SPEC section 5) parsed into plain structs: the cluster model
 * (cluster_model.h: the Kubernetes objects and what is derived from them, down to the
 * per-node map entries) plus the simulator's Test and Replay documents.
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

#include "../common/diag.h"
#include "cluster_model.h"

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
	/* ciliate extensions (docs/SIMULATOR.md): request size, TCP Fast Open, PMTU outcome */
	unsigned int payload_bytes; /* 0: the short default request */
	bool tcp_fast_open;         /* the request rides in the SYN */
	char pmtu[16];              /* "" or "frag-needed" */
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
enum m_fault_action {
	FAULT_RESTART_AGENT = 1,
	FAULT_LINK_DOWN,
	FAULT_LINK_UP,
	FAULT_REKEY_AGENT,  /* the agent restarts with a new WireGuard key */
	FAULT_WITHDRAW_KEY, /* the agent stops and the node's WireGuard key is withdrawn */
};

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

/* A scenario file: the cluster model its Cluster and Kubernetes documents make, and the
 * simulator's checks (Test and Replay documents) run against it. */
struct scenario {
	char *path;
	struct cluster_model model;
	struct m_replay *replays;
	size_t nreplays;
	struct m_test *tests;
	size_t ntests;
};

/* Parses a scenario file. On error returns a negative errno with d->msg set and *out NULL. */
int scenario_load(const char *path, struct scenario **out, struct diag *d);

/* Same as scenario_load, from a buffer; name is used in messages and relative paths are
 * resolved against its directory. */
int scenario_load_buffer(const char *name, const char *buf, size_t len, struct scenario **out,
			 struct diag *d);

/* Frees everything scenario_load allocated. NULL is fine. */
void scenario_free(struct scenario *s);

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

/* manifests_load, plus what `ciliate apply` allocates Service values with: *model (may be
 * NULL) gets the model the checks parsed the objects into — its services, with the file's
 * name and lines, in manifest order; free with cluster_model_free — and *cluster_json (may
 * be NULL) the text's first sim.ciliate.dev/v1 Cluster document as compact JSON, or NULL when
 * it has none (not checked here: cluster_model_from_docs checks it). */
int manifests_load_model(const char *name, const char *text, size_t len,
			 struct manifest_obj **out, size_t *n, size_t *skipped,
			 struct cluster_model **model, char **cluster_json, struct diag *d);

/* What `ciliate delete -f` needs, as `kubectl delete -f`: each object's kind,
 * metadata.namespace and metadata.name (namespace as in manifests_load; apiVersion, spec and
 * the rest are neither needed nor checked; any kind). v1 List items are expanded,
 * sim.ciliate.dev documents skipped. */
int manifest_refs_load(const char *name, const char *text, size_t len,
		       struct manifest_obj **out, size_t *n, size_t *skipped, struct diag *d);

/* Frees the array manifests_load or manifest_refs_load returned. */
void manifests_free(struct manifest_obj *v, size_t n);

#endif
