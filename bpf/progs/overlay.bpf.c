// SPDX-License-Identifier: Apache-2.0
/*
 * Overlay programs, attached to the node's VXLAN device (external / collect_md mode):
 *   to-overlay    TC egress:  packets the stack routes into the tunnel (pods' and the node's)
 *   from-overlay  TC ingress: packets that arrived through the tunnel, decapsulated
 *
 * to-overlay sets the tunnel key: remote = the destination's tunnel endpoint (ipcache), VNI =
 * the source's security identity (lib/overlay.h). A destination without a tunnel endpoint is
 * dropped (NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT): the kernel could not send it anywhere.
 *
 * from-overlay takes the source identity from the VNI and, for a local pod, applies the pod's
 * ingress policy with that identity and conntrack, then redirects to the pod's veth. The
 * connection is then tracked for the pod's ingress, so to-container (which runs on the
 * redirect) finds it established and does not look up policy again: the same mechanism as
 * same-node delivery in from-container. Anything else (the node's own addresses, addresses
 * of no local pod) passes to the stack unchanged.
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
#include "lib/overlay.h"
#include "lib/encrypt.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_OVERLAY

const volatile __u8 cfg_enable_ipv6 = 0;
const volatile __u8 cfg_trace_all = 0;
const volatile __u8 cfg_no_events = 0;
const volatile __u8 cfg_every_drop = 0;

#include "lib/admit.h"
#include "lib/dsr.h"

/* The IP prologue every hook runs, then fragment tracking. */
static __always_inline int overlay_prologue(struct pipeline *pl)
{
	int ret = ip_prologue(pl);

	if (ret < 0 || !pl->pkt.family)
		return ret;
	return frag_track(&pl->pkt);
}

SEC("tc")
int to_overlay(struct __sk_buff *skb)
{
	struct pipeline pl = { .skb = skb, .hook = HOOK_TO_OVERLAY, .dir = DIR_EGRESS,
			       .now = clock_now_ns() };
	struct ipcache_value *dst;
	__be32 remote;
	int ret;

	ret = overlay_prologue(&pl);
	if (ret < 0)
		return DROP(&pl, ret);
	/* nothing non-IP is routed here (neighbours are static); the device drops what has no
	 * key, so pass it on for the kernel's own accounting */
	if (!pl.pkt.family)
		return forward_packet(&pl, TC_ACT_OK, REASON_NON_IP_PASSED);

	pl.src_identity = overlay_src_identity(&pl.pkt);
	remote = overlay_tunnel_endpoint(&pl.pkt, &pl.dst_identity, &dst);
	if (!remote)
		return DROP(&pl, -REASON_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT);
	/* strict mode: no pod packet to a node without a WireGuard peer (encrypt.h) */
	ret = encrypt_overlay_strict(&pl.pkt, dst);
	if (ret < 0)
		return DROP(&pl, ret);
	pl.tunnel_endpoint = remote;
	ret = overlay_set_key(skb, remote, pl.src_identity);
	if (ret < 0)
		return DROP(&pl, ret);
	/* no conntrack here: trace new TCP connections and teardowns, or everything */
	metrics_count(&pl, REASON_FORWARDED);
	if (cfg_trace_all || (pl.pkt.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST)))
		event_emit(&pl, EVENT_TRACE, REASON_FORWARDED, 0, TC_ACT_OK);
	return TC_ACT_OK;
}

SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	struct pipeline pl = { .skb = skb, .hook = HOOK_FROM_OVERLAY, .dir = DIR_INGRESS,
			       .now = clock_now_ns() };
	struct policy_decision d;
	struct endpoint_info *ep;
	struct ct_result r;
	__be32 remote;
	int ret;

	ret = overlay_prologue(&pl);
	if (ret < 0)
		return DROP(&pl, ret);
	if (!pl.pkt.family)
		return forward_packet(&pl, TC_ACT_OK, REASON_NON_IP_PASSED);

	ret = overlay_recv_identity(skb, &pl.pkt, &pl.src_identity, &remote);
	if (ret < 0)
		return DROP(&pl, ret);
	if (ret == 0)
		pl.event_flags |= EVENT_F_IDENTITY_FROM_IPCACHE;
	pl.tunnel_endpoint = remote;

	ep = endpoint_by_addr(pl.pkt.family, &pl.pkt.daddr);
	/* a DSR request for a pod here: its frontend, for the replies (dsr.h) */
	if (ep && pl.pkt.l4_off - pl.pkt.l3_off > sizeof(struct iphdr)) {
		ret = dsr_learn4(&pl);
		if (ret < 0)
			return DROP(&pl, ret);
	}
	if (!ep) {
		/* the node itself, or no local pod: the stack decides */
		pl.dst_identity = ipcache_identity(pl.pkt.family, &pl.pkt.daddr);
		return forward_packet(&pl, TC_ACT_OK, REASON_FORWARDED);
	}
	pl.ep_id = ep->ep_id;
	pl.dst_identity = ep->identity;

	pl.peer_resolved = 1; /* the source identity is the VNI's */
	ret = endpoint_admit(&pl, ep, 0, &r, &d);
	if (ret < 0)
		return DROP(&pl, ret);
	pipeline_note_ct(&pl, &r);
	ret = forward_rewrite_l2l3(skb, &pl.pkt, ep);
	if (ret < 0)
		return DROP(&pl, ret);
	ret = endpoint_commit(&pl, &r, pl.src_identity, &d, 0);
	if (ret < 0)
		return DROP(&pl, ret);
	pl.target_ifindex = ep->ifindex;
	return forward_packet(&pl, bpf_redirect(ep->ifindex, 0), REASON_CT_NEW + pl.ct_status);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
