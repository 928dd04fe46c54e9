/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy trace (`ciliate policy trace`): the verdict the datapath would give a new
 * connection, computed from policy map entries with the datapath's own lookup rule, done in
 * C over the entry list: an LPM match over (ep, identity, dir, proto, port) for the exact
 * peer identity and for the wildcard identity 0; a deny from either wins, then an allow from
 * either, then the endpoint's enforcement flag for the direction.
 *
 * The evaluation works on a policy_view (one node_state per node). Today the view is
 * computed from a cluster model; an agent-backed view only has to fill the same arrays.
 */
#ifndef CILIATE_MODEL_POLICY_TRACE_H
#define CILIATE_MODEL_POLICY_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"

/* The per-node policy state a trace evaluates. */
struct policy_view {
	const struct cluster_model *m; /* names, pods, nodes, selecting policies */
	struct node_state *nodes; /* one per cluster node, in node order */
	size_t nnodes;
};

/* Computes every node's state of m into v. */
int policy_view_compute(struct policy_view *v, const struct cluster_model *m, struct diag *d);

/* Frees the node states of v (not the cluster model). */
void policy_view_free(struct policy_view *v);

/* The state of a node in v; NULL if absent. */
const struct node_state *policy_view_node(const struct policy_view *v, const char *node);

/* The result of one policy lookup, as the datapath's policy_check() computes it. */
struct policy_lookup {
	const struct node_policy_entry *exact; /* longest match for the exact identity */
	const struct node_policy_entry *any;   /* longest match for the wildcard identity */
	const struct node_policy_entry *match; /* the entry that decided; NULL: the flag */
	bool enforced; /* the endpoint's enforcement flag for the direction */
	bool allowed;
	unsigned int reason; /* 0, REASON_POLICY_DENY or REASON_POLICY_DENIED */
	uint8_t match_type;  /* enum policy_match */
};

/* Looks up (ep_id, identity, dir, proto, port) in entries v[0..n), port in host order (the
 * ICMP type for ICMP), ep_flags the endpoint's EP_F_* flags. */
void policy_lookup(const struct node_policy_entry *v, size_t n, uint32_t ep_id, uint32_t ep_flags,
		   uint32_t identity, uint8_t dir, uint8_t proto, uint16_t port,
		   struct policy_lookup *out);

/* The identity the node's ipcache gives ip (network order): longest prefix, else world. */
uint32_t policy_ipcache_identity(const struct node_state *ns, uint32_t ip);

enum trace_peer_kind {
	TRACE_PEER_POD = 0,  /* a (non-hostNetwork) pod */
	TRACE_PEER_NODE = 1, /* a node (node/NAME or a hostNetwork pod) */
	TRACE_PEER_IP = 2,   /* an address outside the cluster (ip/A.B.C.D, ext/NAME) */
};

/* One side of a traced connection. */
struct trace_peer {
	char ref[320];
	enum trace_peer_kind kind;
	const struct m_pod *pod;   /* TRACE_PEER_POD */
	const struct m_node *node; /* the pod's node, or the node itself */
	uint32_t ip;		   /* network order */
};

/* One endpoint's policy decision (egress of the source, ingress of the destination). */
struct trace_side {
	bool applies; /* the side is a local endpoint whose policy is checked */
	const struct node_state *ns;
	const struct node_endpoint *ep;
	uint32_t peer_identity; /* as the datapath sees the other side on that node */
	struct policy_lookup res;
};

struct policy_trace {
	struct trace_peer src, dst;
	uint8_t proto;
	uint16_t port;			 /* host order; ICMP type for ICMP */
	struct trace_side side[DIR_MAX]; /* [DIR_EGRESS]: source, [DIR_INGRESS]: destination */
	bool allowed;
};

/* Traces a new connection src -> dst (ns/pod, node/NAME, ext/NAME or ip/A.B.C.D). */
int policy_trace_run(const struct policy_view *v, const char *src, const char *dst, uint8_t proto,
		     uint16_t port, struct policy_trace *t, struct diag *d);

/* Prints a trace like `cilium policy trace`, ending with "Final verdict: ALLOWED|DENIED". */
void policy_trace_print(FILE *f, const struct policy_view *v, const struct policy_trace *t);

/* Names an identity for people: "any", "reserved:host", "cidr:10.0.0.0/8" (from the node's
 * ipcache; ns may be NULL), "x/a" (the pods holding it) or the number. */
void policy_identity_name(const struct policy_view *v, const struct node_state *ns, uint32_t id,
			  char *buf, size_t size);

/* Formats an entry's L4 part: "any", "TCP", "TCP/80", "TCP/8080-8083", "ICMP/8". */
void policy_entry_l4(const struct policy_key *k, char *buf, size_t size);

/* The rule name of an entry ("" if unknown). */
const char *policy_entry_rule(const struct node_state *ns, const struct node_policy_entry *e);

/* Loads a scenario for a trace. A src/dst given as a label list ("k8s:app=web,
 * k8s:io.kubernetes.pod.namespace=x"; no prefix means k8s:) is rewritten to "ns/pod": a pod
 * whose identity has exactly those labels, or else a hypothetical pod added to the scenario
 * (on the other side's node, or the first node). src_out/dst_out get the refs to trace. */
int policy_trace_load(const char *path, const char *src, const char *dst, struct scenario **out,
		      char *src_out, char *dst_out, size_t size, struct diag *d);

#endif
