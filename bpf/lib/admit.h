/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Admission of a packet by a local endpoint, shared by the pod hooks (lxc.bpf.c) and
 * from-overlay (overlay.bpf.c): the common IP prologue, the peer's identity resolved lazily,
 * conntrack and (for new connections) the endpoint's policy, then the conntrack commit.
 *
 * Include after the program's `.rodata` configuration (cfg_enable_ipv6) is declared.
 */
#ifndef CILIATE_BPF_ADMIT_H
#define CILIATE_BPF_ADMIT_H

#include "common.h"
#include "conntrack.h"
#include "events.h"
#include "frag.h"
#include "ipcache.h"
#include "parse.h"
#include "policy.h"

/* Parse and filter, as every IP hook does. Returns 0 (family 0: not IP, nothing else
 * checked) or -reason. */
static __always_inline int ip_prologue(struct pipeline *pl)
{
	int ret = parse_packet(pl->skb, &pl->pkt);

	if (ret < 0)
		return ret;
	if (pl->pkt.vlan_depth)
		return -REASON_VLAN_FILTERED;
	if (!pl->pkt.family)
		return 0;
	if (pl->pkt.family == CILIATE_AF_INET6 && !cfg_enable_ipv6)
		return -REASON_UNSUPPORTED_L3_PROTOCOL;
	return 0;
}

/*
 * The identity of the packet's remote side, looked up in the ipcache only when needed (new
 * connections and emitted events), so that established traffic skips the LPM lookup.
 */
static __always_inline void resolve_peer(struct pipeline *pl)
{
	if (pl->peer_resolved)
		return;
	pl->peer_resolved = 1;
	/* a hook that knows the peer already (from-overlay: the VNI) sets peer_resolved */
	if (pl->hook == HOOK_FROM_CONTAINER)
		pl->dst_identity = ipcache_identity(pl->pkt.family, &pl->pkt.daddr);
	else
		pl->src_identity = ipcache_identity(pl->pkt.family, &pl->pkt.saddr);
}

/*
 * Checks conntrack and (for new connections) policy for one endpoint's side of a packet.
 * `egress`: the packet leaves `ep`; the peer is the other side (its identity is resolved
 * only for new connections). On success fills r (the entry to update, or the key to
 * create) and returns 0.
 */
static __always_inline int endpoint_admit(struct pipeline *pl, const struct endpoint_info *ep,
					  int egress, struct ct_result *r,
					  struct policy_decision *d)
{
	struct pkt *p = &pl->pkt;
	__u8 dir = egress ? DIR_EGRESS : DIR_INGRESS;
	__u32 peer_identity;
	int ret;

	d->rule_id = 0;
	d->match = POLICY_MATCH_NONE;
	d->deny_rule = 0;
	ct_lookup(p, egress, pl->now, r);
	if (r->status != CT_NEW)
		return 0;
	if ((p->flags & PKT_F_ICMP_ERROR)) {
		struct pkt inner;

		if (parse_icmp_inner(pl->skb, p, &inner) == 0 &&
		    ct_icmp_related(&inner, egress, pl->now)) {
			r->status = CT_RELATED;
			return 0;
		}
	}
	resolve_peer(pl);
	peer_identity = egress ? pl->dst_identity : pl->src_identity;
	ret = policy_check(ep, peer_identity, dir, p, d);
	pl->match = d->match;
	pl->rule_id = d->rule_id;
	if (ret < 0)
		pl->event_flags |= EVENT_F_POLICY_DENY_RULE * d->deny_rule;
	/* as Cilium: verdicts where policy is enforced, not for endpoints no policy isolates */
	if (d->match != POLICY_MATCH_NOT_ENFORCED)
		policy_verdict_emit(pl, ret == 0, dir);
	return ret;
}

/* Makes r (an admission's conntrack result) the packet's: its events carry the state and
 * the reply flag. Same-node delivery admits twice and reports the sender's side only. */
static __always_inline void pipeline_note_ct(struct pipeline *pl, const struct ct_result *r)
{
	pl->ct_status = r->status;
	if (r->is_reply)
		pl->event_flags |= EVENT_F_IS_REPLY;
}

/* Applies the decision of endpoint_admit: updates or creates the conntrack entry.
 * `ct_flags` (CT_F_*) are recorded in a new entry. */
static __always_inline int endpoint_commit(struct pipeline *pl, struct ct_result *r,
					   __u32 src_identity, const struct policy_decision *d,
					   __u8 ct_flags)
{
	if (r->status == CT_RELATED)
		return 0;
	if (r->entry) {
		ct_update(r->entry, &pl->pkt, r->is_reply, pl->now);
		return 0;
	}
	return ct_create(&r->key, &pl->pkt, src_identity, d->rule_id, ct_flags | r->key_flags,
			 pl->now, pl->rev_nat_index);
}

#endif
