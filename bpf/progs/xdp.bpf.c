// SPDX-License-Identifier: Apache-2.0
/*
 * XDP on the node's fabric device (docs/XDP.md), attached by the agent in native mode when
 * bpf-lb-acceleration is native or prefilter-deny-cidrs is set:
 *
 *   xdp_netdev: parse -> prefilter (prefilter.h: denied sources dropped, PREFILTER_DENIED)
 *               -> replies of SNATed NodePort connections (reverse NAT, XDP_TX to the
 *               client) -> NodePort / LoadBalancer / externalIP requests to a remote
 *               backend (DNAT + SNAT, XDP_TX to the backend's node; xdp_nodeport.h)
 *               -> everything else XDP_PASS, on to from-netdev (TC).
 *
 * The NodePort stages run only with NODE_CFG_F_XDP_ACCEL and kube-proxy replacement, the
 * prefilter only with NODE_CFG_F_PREFILTER. Events carry hook "xdp".
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/clock.h"
#include "lib/parse.h"
#include "lib/events.h"
#include "lib/endpoint.h"
#include "lib/ipcache.h"
#include "lib/conntrack.h"
#include "lib/policy.h"
#include "lib/forward.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_XDP

const volatile __u8 cfg_enable_ipv6 = 0;
const volatile __u8 cfg_trace_all = 0;
const volatile __u8 cfg_no_events = 0;
const volatile __u8 cfg_every_drop = 0;
const volatile __u16 cfg_nat_port_min = NAT_PORT_MIN;
const volatile __u16 cfg_nat_port_max = NAT_PORT_MAX;

#include "lib/admit.h"
#include "lib/nodeport.h"
#include "lib/prefilter.h"
#include "lib/xdp_nodeport.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_XDP

/* An event with the frame's device and length (the XDP counterpart of event_emit). */
__subprog void xdp_event_emit(struct pipeline *pl, struct xdp_md *ctx, __u32 type_reason,
			      __u32 where, __u8 verdict)
{
	struct ciliate_event *ev = event_reserve();

	if (ev)
		event_fill_submit(ev, pl, (__u8)(type_reason >> 16), (__u16)type_reason, where,
				  verdict, ctx->ingress_ifindex,
				  (__u32)(ctx->data_end - ctx->data));
}

/* The identities an event shows, looked up only for packets that emit one (each is an LPM
 * lookup: the per-packet path does without). */
static __always_inline void xdp_identities(struct pipeline *pl)
{
	pl->src_identity = ipcache_identity(pl->pkt.family, &pl->pkt.saddr);
	pl->dst_identity = ipcache_identity(pl->pkt.family, &pl->pkt.daddr);
}

static __always_inline int xdp_drop(struct xdp_md *ctx, struct pipeline *pl, int reason,
				    __u16 line)
{
	if (reason < 0)
		reason = -reason;
	metrics_count(pl, (__u32)reason);
	if (drop_reported(pl)) {
		xdp_identities(pl);
		xdp_event_emit(pl, ctx, ((__u32)EVENT_DROP << 16) | (__u16)reason,
			       ((__u32)CILIATE_SRC_FILE << 16) | line, XDP_DROP);
	}
	return XDP_DROP;
}

static __always_inline int xdp_forward(struct xdp_md *ctx, struct pipeline *pl)
{
	metrics_count(pl, REASON_FORWARDED);
	if (trace_wanted(pl)) {
		xdp_identities(pl);
		xdp_event_emit(pl, ctx,
			       ((__u32)EVENT_TRACE << 16) | (__u16)(REASON_CT_NEW + pl->ct_status), 0,
			       XDP_TX);
	}
	return XDP_TX;
}

/* A stage's outcome: XDP_TX (reported as forwarded), a drop, or on to the next stage. */
#define XDP_VERDICT(ctx, pl, ret)                                                          \
	((ret) < 0 ? xdp_drop(ctx, pl, ret, __LINE__) : xdp_forward(ctx, pl))

SEC("xdp")
int xdp_netdev(struct xdp_md *ctx)
{
	struct pipeline pl = { .hook = HOOK_XDP, .dir = DIR_INGRESS,
			       .ct_status = CT_ESTABLISHED };
	struct bpf_fib_lookup fib;
	struct node_config *cfg;
	int parsed, ret, handled = 0;

	parsed = xdp_parse4(ctx, &pl.pkt);
	if (parsed == XDP_PARSED_NONE)
		return XDP_PASS;
	cfg = node_config();
	if (!cfg || !cfg->node_ip)
		return XDP_PASS;

	/* prefilter: denied sources go no further */
	if ((cfg->flags & NODE_CFG_F_PREFILTER) && prefilter_denied(&pl.pkt)) {
		pl.now = clock_now_ns(); /* drop aggregation */
		return xdp_drop(ctx, &pl, -REASON_PREFILTER_DENIED, __LINE__);
	}

	if (parsed != XDP_PARSED_L4 ||
	    (cfg->flags & (NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_KPR)) !=
		    (NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_KPR))
		return XDP_PASS;
	pl.now = clock_now_ns(); /* only for what the NodePort stages look at */

	/* replies of NodePort connections this node SNATed (their destination port is one
	 * SNAT allocates: no lookup for requests to NodePorts below that range) */
	if (bpf_ntohs(pl.pkt.dport) >= cfg_nat_port_min &&
	    bpf_ntohs(pl.pkt.dport) <= cfg_nat_port_max) {
		ret = xdp_nodeport_reply(ctx, &pl, &fib, &handled);
		if (handled)
			return ret == XDP_NODEPORT_PASS ? XDP_PASS : XDP_VERDICT(ctx, &pl, ret);
	}

	/* requests to a frontend with a remote backend */
	ret = xdp_nodeport_request(ctx, &pl, cfg, &fib);
	if (ret == XDP_NODEPORT_PASS)
		return XDP_PASS;
	return XDP_VERDICT(ctx, &pl, ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
