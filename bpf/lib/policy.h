/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy lookup: (endpoint, peer identity, direction, protocol, port) against the LPM policy
 * map (layout in abi.h). Two lookups: the exact peer identity and the wildcard identity 0.
 * A deny from either wins; otherwise an allow from either admits; otherwise the endpoint's
 * enforcement flag for the direction decides (not enforced: allowed).
 */
#ifndef CILIATE_BPF_POLICY_H
#define CILIATE_BPF_POLICY_H

#include "common.h"
#include "maps.h"
#include "parse.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_POLICY

struct policy_decision {
	__u32 rule_id;
	__u8 match; /* enum policy_match */
	__u8 deny_rule;
};

/* The port policy sees: L4 destination port, or the ICMP type for ICMP. */
static __always_inline __be16 policy_port(const struct pkt *p)
{
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6)
		return bpf_htons(p->icmp_type);
	return p->dport;
}

/*
 * Returns 0 when allowed, -REASON_POLICY_DENY for a deny rule, -REASON_POLICY_DENIED when no
 * rule admits the packet in an enforced direction.
 */
static __always_inline int policy_check(const struct endpoint_info *ep, __u32 peer_identity,
					__u8 dir, const struct pkt *p, struct policy_decision *d)
{
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_FULL,
		.ep_id = ep->ep_id,
		.identity = peer_identity,
		.dir = dir,
		.proto = p->proto,
		.dport = policy_port(p),
	};
	struct policy_value *exact, *any;
	__u32 enforced = dir == DIR_INGRESS ? EP_F_INGRESS_ENFORCED : EP_F_EGRESS_ENFORCED;

	d->rule_id = 0;
	d->deny_rule = 0;
	exact = bpf_map_lookup_elem(&ciliate_policy, &key);
	key.identity = 0;
	any = bpf_map_lookup_elem(&ciliate_policy, &key);

	if ((exact && (exact->flags & POLICY_F_DENY)) || (any && (any->flags & POLICY_F_DENY))) {
		struct policy_value *v = (exact && (exact->flags & POLICY_F_DENY)) ? exact : any;

		d->rule_id = v->rule_id;
		d->deny_rule = 1;
		d->match = v == exact ? ((v->flags & POLICY_F_L4) ? POLICY_MATCH_L3_L4 :
								   POLICY_MATCH_L3_ONLY) :
					((v->flags & POLICY_F_L4) ? POLICY_MATCH_L4_ONLY :
								   POLICY_MATCH_ALL);
		return -REASON_POLICY_DENY;
	}
	if (exact) {
		d->rule_id = exact->rule_id;
		d->match = (exact->flags & POLICY_F_L4) ? POLICY_MATCH_L3_L4 : POLICY_MATCH_L3_ONLY;
		return 0;
	}
	if (any) {
		d->rule_id = any->rule_id;
		d->match = (any->flags & POLICY_F_L4) ? POLICY_MATCH_L4_ONLY : POLICY_MATCH_ALL;
		return 0;
	}
	if (!(ep->flags & enforced)) {
		d->match = POLICY_MATCH_NOT_ENFORCED;
		return 0;
	}
	d->match = POLICY_MATCH_NONE;
	return -REASON_POLICY_DENIED;
}

#endif
