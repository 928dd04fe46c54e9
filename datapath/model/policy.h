/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy as the model holds it, and the compiler's building blocks: the per-node table of
 * CIDR identities and the policy map builder (rule names, port-range split, deny
 * normalisation, de-duplication).
 */
#ifndef CILIATE_MODEL_POLICY_H
#define CILIATE_MODEL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels.h"
#include "model.h"

enum m_policy_kind {
	POLICY_KIND_K8S = 0, /* networking.k8s.io/v1 NetworkPolicy */
	POLICY_KIND_CNP = 1,  /* cilium.io/v2 CiliumNetworkPolicy */
	POLICY_KIND_CCNP = 2, /* cilium.io/v2 CiliumClusterwideNetworkPolicy (ns "") */
};

/* The rules of a Cilium policy (datapath/model/policy_cilium.h). */
struct cnp_policy;

struct cidr4 {
	uint32_t addr; /* network order */
	uint8_t len;
};

/* NetworkPolicyPort: protocol only (any_port), a port, a range, or a named port. */
struct np_port {
	uint8_t proto;
	bool any_port;
	uint16_t port;     /* first port (numeric) */
	uint16_t end_port; /* last port; == port when no endPort */
	char name[16];     /* named port ("" when numeric) */
};

/* NetworkPolicyPeer: selectors (ANDed when both are present) or an ipBlock. */
struct np_peer {
	bool has_pod_sel, has_ns_sel, has_ipblock;
	struct selector pod_sel, ns_sel;
	struct cidr4 cidr;
	struct cidr4 *except;
	size_t nexcept;
};

/* One ingress or egress rule: no peers = all peers, no ports = all ports. */
struct np_rule {
	struct np_peer *peers;
	size_t npeers;
	struct np_port *ports;
	size_t nports;
	int line;
};

struct m_policy {
	enum m_policy_kind kind;
	char ns[64];
	char name[MODEL_NAME_MAX];
	struct selector pod_sel;   /* pods of ns this policy applies to */
	bool isolates[DIR_MAX];    /* policyTypes after defaulting */
	struct np_rule *rules[DIR_MAX];
	size_t nrules[DIR_MAX];
	struct cnp_policy *cnp;    /* CNP / CCNP rules; NULL for NetworkPolicy */
	const char *file;
	int line;
};

/* Frees the Cilium rules of a policy (NULL is fine). */
void cnp_policy_free(struct cnp_policy *cnp);

/* ---- CIDR identities ------------------------------------------------------------------ */

struct cidr_ident {
	struct cidr4 cidr;
	uint32_t id; /* IDENTITY_LOCAL_CIDR_MIN + n */
};

/* Every distinct CIDR the policies mention, in order of first mention. */
struct cidr_table {
	struct cidr_ident *v;
	size_t n;
};

/* Adds a CIDR (0.0.0.0/0 is world and is skipped; duplicates are ignored). */
int cidr_table_add(struct cidr_table *t, struct cidr4 c);

/* Returns the identity of an exact CIDR in the table, or 0. */
uint32_t cidr_table_find(const struct cidr_table *t, struct cidr4 c);

/* Frees the table. */
void cidr_table_free(struct cidr_table *t);

/* A set of identities, in order of first insertion. */
struct id_set {
	uint32_t *v;
	size_t n, cap;
};

/* Adds id unless the set holds it already. */
int id_set_add(struct id_set *s, uint32_t id);

/* Adds to ids the identities of t's CIDRs inside cidr and outside every except, plus world
 * when cidr is 0.0.0.0/0. */
int cidr_table_ids(const struct cidr_table *t, struct cidr4 cidr, const struct cidr4 *except,
		   size_t nexcept, struct id_set *ids);

/* ---- Policy map builder --------------------------------------------------------------- */

struct policy_builder {
	struct node_policy_entry *v;
	size_t n, cap;
	char **names; /* rule_id -> name; names[0] = "" */
	size_t nnames, cap_names;
};

#define POLB_ANY_PROTO 0 /* proto argument of polb_add: L3-only entry (prefix 72) */

/* Initialises an empty builder (rule id 0 is the empty name). */
int polb_init(struct policy_builder *pb);

/* Returns the rule id for name in *id, adding the name if new. */
int polb_rule_id(struct policy_builder *pb, const char *name, uint32_t *id);

/* Adds one entry: proto POLB_ANY_PROTO = any protocol and port; port_bits 0 = any port of
 * proto; else the top port_bits bits of port (host order) must match. */
int polb_add(struct policy_builder *pb, uint32_t ep_id, uint8_t dir, uint32_t identity,
	     uint8_t proto, uint16_t port, uint8_t port_bits, uint32_t flags, uint32_t rule_id);

/* Adds entries covering ports [lo, hi] of proto, split into bit prefixes. */
int polb_add_range(struct policy_builder *pb, uint32_t ep_id, uint8_t dir, uint32_t identity,
		   uint8_t proto, uint16_t lo, uint16_t hi, uint32_t flags, uint32_t rule_id);

/* Normalises the entries and moves them and the rule names into ns; pb is left empty. */
int polb_finish(struct policy_builder *pb, struct node_state *ns);

/* Frees what the builder holds. */
void polb_free(struct policy_builder *pb);

/* Splits [lo, hi] into at most 32 aligned prefixes: starts[i]/bits[i] (bits of 16 that are
 * fixed). Returns the number of prefixes. */
size_t port_range_split(uint16_t lo, uint16_t hi, uint16_t *starts, uint8_t *bits);

/* Turns every allow covered by a deny of the same (ep, dir, identity) into a deny, drops
 * duplicate keys (deny wins, else the lowest rule id) and sorts the entries; *n shrinks. */
void policy_entries_normalize(struct node_policy_entry *v, size_t *n);

/* ---- NetworkPolicy compiler ------------------------------------------------------------ */

/* What a policy compiles against. */
struct policy_compile_ctx {
	const struct cluster_model *m;
	const struct cidr_table *cidrs;
	struct policy_builder *pb;
};

/* True if the NetworkPolicy applies to pod (same namespace, podSelector matches). */
bool netpol_selects(const struct cluster_model *m, const struct m_policy *pol,
		    const struct m_pod *pod);

/* Adds every ipBlock CIDR and except of the policy to t. */
int netpol_collect_cidrs(const struct m_policy *pol, struct cidr_table *t);

/* If pol selects pod, ORs the isolation flags (EP_F_*) into *ep_flags and adds the entries
 * its rules allow for endpoint ep_id. */
int netpol_compile_endpoint(struct policy_compile_ctx *cc, const struct m_policy *pol,
			    const struct m_pod *pod, uint32_t ep_id, uint32_t *ep_flags);

#endif
