/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DSR at XDP (bpf-lb-acceleration: native; docs/XDP.md, docs/SERVICES.md "DSR"): the entry
 * node's dispatch for a remote backend built in the driver, byte for byte what the TC path
 * (nodeport.h, dsr.h, dsr_ipip.h, dsr_geneve.h) puts on the wire:
 *
 * - opt: DNAT to the backend, the option (0x9A/8, frontend port and address byte-swapped as
 *   Cilium stores them) after the base header on a TCP SYN / every UDP datagram, TTL less
 *   one (TC leaves the packet to the stack's forwarding, which does the same);
 * - ipip: the request unchanged inside an outer IPv4 header to the backend's node;
 * - geneve: DNAT, then outer IPv4/UDP 6081/Geneve (VNI world, the option on a SYN / every
 *   UDP datagram) to the backend's node; the request's own Ethernet header becomes the inner
 *   one, where it already lies once the room is made in front of it.
 *
 * The next hop comes from bpf_fib_lookup (the backend for opt, its node otherwise); XDP_TX
 * when it is out of the same device. A request the dispatch would push past the fabric MTU,
 * no next hop on this device, or TTL <= 1 pass to TC, which makes the same decision (its
 * ICMP fragmentation needed, the stack's routing).
 */
#ifndef CILIATE_BPF_XDP_DSR_H
#define CILIATE_BPF_XDP_DSR_H

#include "common.h"
#include "dsr.h"
#include "dsr_ipip.h"
#include "dsr_geneve.h"
#include "nodeport.h"

/* Included by xdp_nodeport.h after its frame helpers (xdp_next_hop, xdp_rewrite4, ...). */

/* The IPv4 option dispatch, after xdp_rewrite4 (DNAT, TTL, next hop's MACs): 8 bytes of
 * room in front, the Ethernet and IPv4 headers moved up into it, the option behind them. */
static __always_inline int xdp_dsr_set_opt4(struct xdp_md *ctx, __be32 vip, __be16 vport)
{
	const __u32 hdrs = XDP_ETH_LEN + sizeof(struct iphdr);
	void *data, *data_end;
	__u8 *b;
	__u32 i;

	if (bpf_xdp_adjust_head(ctx, -(int)DSR_IPV4_OPT_LEN))
		return -REASON_ERROR_WRITING_TO_PACKET;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + XDP_ETH_LEN + sizeof(struct dsr_opt_hdr4) > data_end)
		return -REASON_ERROR_WRITING_TO_PACKET;
	/* the Ethernet and IPv4 headers up into the room, front first (no stack copy) */
	b = data;
#pragma unroll
	for (i = 0; i < hdrs; i++)
		b[i] = b[i + DSR_IPV4_OPT_LEN];
	dsr_opt_header4(data + XDP_ETH_LEN, vip, vport);
	return 0;
}

/* An outer Ethernet header from the FIB's next hop. */
static __always_inline void xdp_dsr_eth(struct ethhdr *eth, const struct bpf_fib_lookup *fib)
{
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
}

/* The IPIP dispatch: 20 bytes of room; a new Ethernet header and the outer IPv4 header in
 * front of the unchanged request. */
static __always_inline int xdp_dsr_ipip4(struct xdp_md *ctx, const struct pkt *p, __be32 local,
					 __be32 remote, const struct bpf_fib_lookup *fib)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *in = data + XDP_ETH_LEN, *out;
	__u8 tos;
	__be16 frag;
	__u16 tot;

	if ((void *)(in + 1) > data_end)
		return -REASON_ERROR_WRITING_TO_PACKET;
	tos = in->tos;
	frag = in->frag_off & bpf_htons(DSR_IP_DF);
	tot = bpf_ntohs(in->tot_len);
	if (bpf_xdp_adjust_head(ctx, -(int)DSR_IPIP_OVERHEAD))
		return -REASON_ERROR_WRITING_TO_PACKET;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	out = data + XDP_ETH_LEN;
	if ((void *)(out + 1) > data_end)
		return -REASON_ERROR_WRITING_TO_PACKET;
	xdp_dsr_eth(data, fib);
	dsr_outer_ip4(out, IPPROTO_IPIP, tos, tot + DSR_IPIP_OVERHEAD, frag, local, remote);
	return 0;
}

/* The Geneve dispatch on the DNATed request: the headers built in the per-CPU buffer by the
 * TC path's dsr_geneve_fill(), copied in front; the request's Ethernet header stays
 * where it is and becomes the inner one. */
static __always_inline int xdp_dsr_geneve4(struct xdp_md *ctx, const struct pkt *p,
					   __be32 local, __be32 remote, const struct lb_key *fk,
					   const struct bpf_fib_lookup *fib)
{
	__u32 zero = 0, with_opt = dsr_wants_opt(p);
	__u32 inner_len = p->len; /* the request's frame: its Ethernet header and packet */
	struct dsr_geneve_encap *e = bpf_map_lookup_elem(&dsr_geneve_scratch, &zero);
	void *data, *data_end;

	if (!e)
		return -REASON_ERROR_WRITING_TO_PACKET;
	dsr_geneve_fill(e, p, local, remote, with_opt ? fk : NULL, IDENTITY_WORLD, inner_len);
	if (with_opt) {
		if (bpf_xdp_adjust_head(ctx, -(int)(DSR_GENEVE_BASE + DSR_GENEVE_OPT_LEN +
						    sizeof(struct ethhdr))))
			return -REASON_ERROR_WRITING_TO_PACKET;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + XDP_ETH_LEN + DSR_GENEVE_BASE + DSR_GENEVE_OPT_LEN > data_end)
			return -REASON_ERROR_WRITING_TO_PACKET;
		xdp_dsr_eth(data, fib);
		__builtin_memcpy(data + XDP_ETH_LEN, e, DSR_GENEVE_BASE + DSR_GENEVE_OPT_LEN);
		return 0;
	}
	if (bpf_xdp_adjust_head(ctx, -(int)(DSR_GENEVE_BASE + sizeof(struct ethhdr))))
		return -REASON_ERROR_WRITING_TO_PACKET;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + XDP_ETH_LEN + DSR_GENEVE_BASE > data_end)
		return -REASON_ERROR_WRITING_TO_PACKET;
	xdp_dsr_eth(data, fib);
	__builtin_memcpy(data + XDP_ETH_LEN, e, DSR_GENEVE_BASE);
	return 0;
}

/*
 * A DSR frontend's request for a remote backend `be` (chosen: the CT_SVC entry is made).
 * Returns XDP_TX, XDP_NODEPORT_PASS (TC decides: too big, no next hop here, TTL) or -reason.
 */
static __always_inline int xdp_dsr_request(struct xdp_md *ctx, struct pipeline *pl,
					   const struct node_config *cfg,
					   const struct lb_key *fk, const struct lb_backend *be,
					   struct bpf_fib_lookup *fib)
{
	struct pkt *p = &pl->pkt;
	__u32 with_opt = dsr_wants_opt(p), overhead;
	struct xdp_xlate x;
	__be32 remote;
	int ret;

	/* the backend's node: the IPIP and Geneve dispatches' outer destination */
	remote = (cfg->flags & NODE_CFG_F_DSR_OPT) ? 0 : nodeport_backend_node(&be->addr);
	if (cfg->flags & NODE_CFG_F_DSR_IPIP)
		overhead = DSR_IPIP_OVERHEAD;
	else if (cfg->flags & NODE_CFG_F_DSR_GENEVE)
		overhead = DSR_GENEVE_OVERHEAD + (with_opt ? DSR_GENEVE_OPT_LEN : 0);
	else
		overhead = with_opt ? DSR_IPV4_OPT_LEN : 0;
	if (dsr_too_big(p, cfg->mtu, overhead) || p->ttl <= 1)
		return XDP_NODEPORT_PASS; /* TC's ICMP fragmentation needed, or TTL exceeded */
	/* the next hop: the backend itself (opt), or its node */
	x.saddr = (cfg->flags & NODE_CFG_F_DSR_OPT) ? p->saddr.v4 : cfg->node_ip;
	x.daddr = (cfg->flags & NODE_CFG_F_DSR_OPT) ? be->addr.v4 : remote;
	x.sport = p->sport;
	x.dport = be->port;
	if (!(cfg->flags & NODE_CFG_F_DSR_OPT) && !remote)
		return -REASON_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT;
	if (!xdp_next_hop(ctx, p, &x, fib))
		return XDP_NODEPORT_PASS;
	if (cfg->flags & NODE_CFG_F_DSR_IPIP) {
		pl->tunnel_endpoint = remote;
		return xdp_dsr_ipip4(ctx, p, cfg->node_ip, remote, fib) ?: XDP_TX;
	}
	if (cfg->flags & NODE_CFG_F_DSR_GENEVE) {
		/* DNAT only: the inner packet's TTL and MACs stay (no router touches them) */
		x.saddr = p->saddr.v4;
		x.daddr = be->addr.v4;
		ret = xdp_rewrite4(ctx, p, &x, NULL);
		if (ret < 0)
			return ret;
		pl->tunnel_endpoint = remote;
		return xdp_dsr_geneve4(ctx, p, cfg->node_ip, remote, fk, fib) ?: XDP_TX;
	}
	x.daddr = be->addr.v4;
	ret = xdp_rewrite4(ctx, p, &x, fib);
	if (ret < 0 || !with_opt)
		return ret < 0 ? ret : XDP_TX;
	return xdp_dsr_set_opt4(ctx, fk->addr.v4, fk->dport) ?: XDP_TX;
}

#endif
