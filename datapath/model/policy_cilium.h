/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2) as the model holds
 * them, and their compiler into the same per-endpoint policy entries as NetworkPolicy
 * (semantics in docs/POLICY.md).
 *
 * Selector keys are normalised to the identity label form: "app", "any:app" and "k8s:app"
 * all become "k8s:app"; "reserved:host" stays (it selects the reserved identity).
 */
#ifndef CILIATE_MODEL_POLICY_CILIUM_H
#define CILIATE_MODEL_POLICY_CILIUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels.h"
#include "parse.h"
#include "policy.h"

/* Rule sections of one Cilium rule. */
enum cnp_section {
	CNP_INGRESS = 0,
	CNP_EGRESS = 1,
	CNP_INGRESS_DENY = 2,
	CNP_EGRESS_DENY = 3,
	CNP_SECTION_MAX = 4,
};

/* Entities (fromEntities / toEntities), as bits. */
#define CNP_ENT_HOST	       (1u << 0)
#define CNP_ENT_REMOTE_NODE    (1u << 1)
#define CNP_ENT_WORLD	       (1u << 2)
#define CNP_ENT_CLUSTER	       (1u << 3)
#define CNP_ENT_ALL	       (1u << 4)
#define CNP_ENT_HEALTH	       (1u << 5)
#define CNP_ENT_INIT	       (1u << 6)
#define CNP_ENT_KUBE_APISERVER (1u << 7)
#define CNP_ENT_UNMANAGED      (1u << 8)

#define CNP_PROTO_ANY 0 /* cnp_port.proto: TCP, UDP and SCTP */

/* One toPorts[].ports[] entry: a port (0 = any), a range, or a named port. */
struct cnp_port {
	uint8_t proto;	   /* IPPROTO_TCP / UDP / SCTP or CNP_PROTO_ANY */
	uint16_t port;	   /* 0: every port */
	uint16_t end_port; /* == port when no endPort */
	char name[16];	   /* named port ("" when numeric) */
};

/* One icmps[].fields[] entry. */
struct cnp_icmp {
	uint8_t proto; /* IPPROTO_ICMP or IPPROTO_ICMPV6 */
	uint8_t type;
};

/* A CIDR peer: fromCIDR (no excepts) or fromCIDRSet. */
struct cnp_cidr {
	struct cidr4 cidr;
	struct cidr4 *except;
	size_t nexcept;
};

/* One ingress/egress (deny) rule. Peer fields are alternatives (OR); the L4 part (toPorts,
 * icmps) is ANDed with them. No peer field = every peer when there is an L4 part, nothing
 * otherwise (an empty rule only turns default deny on). */
struct cnp_rule {
	bool has_l3;	      /* some peer field is present (even an empty list) */
	struct selector *eps; /* from/toEndpoints, keys normalised */
	size_t neps;
	struct cnp_cidr *cidrs; /* from/toCIDR and from/toCIDRSet */
	size_t ncidrs;
	uint32_t entities; /* CNP_ENT_* */
	struct cnp_port *ports;
	size_t nports;
	struct cnp_icmp *icmps;
	size_t nicmps;
	bool l7; /* L7 rules present (recorded as a warning, not enforced) */
	int line;
};

/* One Rule of spec / specs[]. */
struct cnp_spec {
	char path[32];		/* "spec" or "specs[N]" (rule names, messages) */
	struct selector ep_sel; /* endpointSelector, keys normalised */
	bool selects_nothing;	/* no endpointSelector (accepted with a warning) */
	struct cnp_rule *rules[CNP_SECTION_MAX];
	size_t nrules[CNP_SECTION_MAX];
	int default_deny[DIR_MAX]; /* enableDefaultDeny: -1 unset, 0 false, 1 true */
	int line;
};

/* The Cilium part of a struct m_policy of kind POLICY_KIND_CNP / POLICY_KIND_CCNP. */
struct cnp_policy {
	struct cnp_spec *specs;
	size_t nspecs;
	char **warnings; /* "FILE:LINE: FIELD: message" */
	size_t nwarnings;
};

/* Parses a CiliumNetworkPolicy (clusterwide false) or CiliumClusterwideNetworkPolicy and
 * appends it to p->m->policies. */
int cnp_parse(struct parse_ctx *p, const yaml_node_t *root, bool clusterwide);

/* Returns "NetworkPolicy", "CiliumNetworkPolicy" or "CiliumClusterwideNetworkPolicy". */
const char *policy_kind_name(enum m_policy_kind kind);

/* Writes the name rules of pol are prefixed with: "ns/name" (NetworkPolicy),
 * "cnp:ns/name" or "ccnp:name". */
void policy_display_name(const struct m_policy *pol, char *buf, size_t size);

/* Number of warnings recorded while parsing pol (L7 rules not enforced, ...). */
size_t policy_warning_count(const struct m_policy *pol);

/* The i-th warning of pol ("FILE:LINE: FIELD: message"). */
const char *policy_warning(const struct m_policy *pol, size_t i);

/* True if some rule of the Cilium policy pol selects pod (CNP: pods of its namespace). */
bool cnp_selects(const struct cluster_model *m, const struct m_policy *pol,
		 const struct m_pod *pod);

/* True if any policy of any kind applies to pod. */
bool policy_selects(const struct cluster_model *m, const struct m_policy *pol,
		    const struct m_pod *pod);

/* Adds every CIDR and except of a Cilium policy to t (no-op for other kinds). */
int cnp_collect_cidrs(const struct m_policy *pol, struct cidr_table *t);

/* If a rule of the Cilium policy pol selects pod, ORs the default-deny flags (EP_F_*) into
 * *ep_flags and adds its allow and deny entries for endpoint ep_id (no-op for other kinds). */
int cnp_compile_endpoint(struct policy_compile_ctx *cc, const struct m_policy *pol,
			 const struct m_pod *pod, uint32_t ep_id, uint32_t *ep_flags);

#endif
