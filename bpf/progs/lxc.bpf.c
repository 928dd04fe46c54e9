// SPDX-License-Identifier: Apache-2.0
/*
 * Pod-facing programs, attached to each pod's host-side veth:
 *   from-container  TC ingress: packets the pod sends
 *   to-container    TC egress:  packets delivered to the pod from the stack/overlay/network
 *
 * Pipeline: parse -> endpoint -> fragments -> conntrack -> policy -> forward.
 * Same-node delivery is decided in from-container: the destination pod's ingress policy and
 * conntrack are applied here, then the packet is redirected to its veth, so the sender's hook
 * reports the final verdict. to-container then finds the connection already tracked.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/clock.h"
#include "lib/parse.h"
#include "lib/events.h"
#include "lib/endpoint.h"
#include "lib/ipcache.h"
#include "lib/frag.h"
#include "lib/conntrack.h"
#include "lib/policy.h"
#include "lib/forward.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_LXC

const volatile __u8 cfg_enable_ipv6 = 0;
const volatile __u8 cfg_trace_all = 0;
const volatile __u8 cfg_no_events = 0;
const volatile __u8 cfg_every_drop = 0;

#include "lib/admit.h"
#include "lib/lb.h"

static __always_inline int lxc_drop(struct pipeline *pl, int reason, __u16 line)
{
	if (pl->pkt.family)
		resolve_peer(pl);
	return drop_packet(pl, reason, CILIATE_SRC_FILE, line);
}

static __always_inline int lxc_forward(struct pipeline *pl, int verdict, __u16 reason)
{
	if (trace_wanted(pl))
		resolve_peer(pl);
	return forward_packet(pl, verdict, reason);
}

#undef DROP
#define DROP(pl, reason) lxc_drop(pl, reason, __LINE__)

/* Common start of both hooks: parse, filter, find the endpoint this veth serves. On success
 * an IP packet always has *ep filled in; a non-IP frame (family 0) has not. */
static __always_inline int lxc_prologue(struct pipeline *pl, struct endpoint_info *ep)
{
	int ret;

	ret = ip_prologue(pl);
	if (ret < 0 || !pl->pkt.family)
		return ret;
	if (endpoint_by_ifindex(pl->skb->ifindex, ep) < 0)
		return -REASON_NO_CONFIGURATION_AVAILABLE;
	pl->ep_id = ep->ep_id;
	return frag_track(&pl->pkt);
}

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	struct pipeline pl = { .skb = skb, .hook = HOOK_FROM_CONTAINER, .dir = DIR_EGRESS,
			       .now = clock_now_ns() };
	struct endpoint_info ep_buf, *ep = &ep_buf, *dst;
	struct policy_decision d_src, d_dst;
	struct ct_result r_src, r_dst;
	int ret;

	ret = lxc_prologue(&pl, ep);
	if (ret < 0)
		return DROP(&pl, ret);
	if (!pl.pkt.family)
		return lxc_forward(&pl, TC_ACT_OK, REASON_NON_IP_PASSED);
	if (!addr_eq(&pl.pkt.saddr, &ep->addr))
		return DROP(&pl, -REASON_INVALID_SOURCE_IP);

	pl.src_identity = ep->identity;

	/* a service frontend becomes one of its backends before policy and conntrack see the
	 * packet: both apply to the backend */
	ret = lb_translate(&pl, &ep->addr);
	if (ret < 0)
		return DROP(&pl, ret);

	/* the sender's side: its egress (the peer's identity comes from the ipcache, which
	 * holds every pod, local or not) */
	ret = endpoint_admit(&pl, ep, 1, &r_src, &d_src);
	if (ret < 0)
		return DROP(&pl, ret);
	pipeline_note_ct(&pl, &r_src);

	/* a backend's reply to a north-south client from-netdev delivered here: from the
	 * frontend again (nodeport.h) */
	if (r_src.is_reply && r_src.entry && (r_src.entry->flags & CT_F_NODEPORT)) {
		ret = lb_reverse(&pl, r_src.entry);
		if (ret < 0)
			return DROP(&pl, ret);
	}

	/* a local destination? an established connection remembers that it has none, which
	 * spares the lookup for the common pod-to-remote case */
	dst = NULL;
	if (!r_src.entry || (r_src.entry->flags & CT_F_PEER_LOCAL))
		dst = endpoint_by_addr(pl.pkt.family, &pl.pkt.daddr);
	if (dst) {
		pl.dst_identity = dst->identity;
		pl.peer_resolved = 1;
	}

	if (!dst) {
		ret = endpoint_commit(&pl, &r_src, pl.src_identity, &d_src, 0);
		if (ret < 0)
			return DROP(&pl, ret);
		return lxc_forward(&pl, TC_ACT_OK, REASON_CT_NEW + pl.ct_status);
	}

	/* same-node delivery: the receiver's side (its ingress) is decided here, before the
	 * redirect, so this hook reports the final verdict */
	pl.ep_id = dst->ep_id;
	ret = endpoint_admit(&pl, dst, 0, &r_dst, &d_dst);
	if (ret < 0)
		return DROP(&pl, ret);
	ret = forward_rewrite_l2l3(skb, &pl.pkt, dst);
	if (ret < 0)
		return DROP(&pl, ret);
	ret = endpoint_commit(&pl, &r_src, pl.src_identity, &d_src, CT_F_PEER_LOCAL);
	if (ret == 0)
		ret = endpoint_commit(&pl, &r_dst, pl.src_identity, &d_dst, CT_F_PEER_LOCAL);
	if (ret < 0)
		return DROP(&pl, ret);
	pl.ep_id = ep->ep_id;
	pl.target_ifindex = dst->ifindex;
	return lxc_forward(&pl, bpf_redirect(dst->ifindex, 0), REASON_CT_NEW + pl.ct_status);
}

SEC("tc")
int to_container(struct __sk_buff *skb)
{
	struct pipeline pl = { .skb = skb, .hook = HOOK_TO_CONTAINER, .dir = DIR_INGRESS,
			       .now = clock_now_ns() };
	struct endpoint_info ep_buf, *ep = &ep_buf;
	struct policy_decision d;
	struct ct_result r;
	int ret;

	ret = lxc_prologue(&pl, ep);
	if (ret < 0)
		return DROP(&pl, ret);
	if (!pl.pkt.family)
		return lxc_forward(&pl, TC_ACT_OK, REASON_NON_IP_PASSED);

	pl.dst_identity = ep->identity;

	ret = endpoint_admit(&pl, ep, 0, &r, &d);
	if (ret < 0)
		return DROP(&pl, ret);
	pipeline_note_ct(&pl, &r);
	ret = endpoint_commit(&pl, &r, pl.src_identity, &d, 0);
	if (ret < 0)
		return DROP(&pl, ret);
	/* a reply of a service connection the pod opened: from the frontend again */
	if (r.is_reply && r.entry && r.entry->rev_nat_index)
		ret = lb_reverse(&pl, r.entry);
	else
		ret = lb_hairpin_request(&pl, r.entry); /* the pod reaching itself */
	if (ret < 0)
		return DROP(&pl, ret);
	return lxc_forward(&pl, TC_ACT_OK, REASON_CT_NEW + pl.ct_status);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
