/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NodePort acceleration at XDP (bpf-lb-acceleration: native; docs/XDP.md): the common case
 * of north-south service traffic -- a client's TCP/UDP packet to a frontend whose backend is
 * on another node, and that backend's replies -- translated and sent back out of the fabric
 * device (XDP_TX) before the kernel allocates an skb. Everything else passes to the TC path
 * (from-netdev, nodeport.h), which gives the same outcome; this file makes the same decisions
 * with the same state:
 *
 * - the frontend: nodeport_frontend() (the external scope), loadBalancerSourceRanges
 *   (nodeport_src_range_ok: DENIED_BY_LB_SRC_RANGE_CHECK), the backend from lb_select() with
 *   the connection's CT_SVC entry (SERVICE_BACKEND_NOT_FOUND);
 * - SNAT to the node's address through nat_snat4_map(): the same two ciliate_nat entries as
 *   the TC path, so a connection started here continues in TC and the other way round;
 * - replies: nat_rev4_lookup() and the frontend from ciliate_lb_revnat (NAT_F_NODEPORT
 *   entries only; masquerade replies pass);
 * - the next hop: bpf_fib_lookup() from the translated addresses; only a next hop out of the
 *   same device is sent here (XDP_TX, Ethernet addresses from the FIB, TTL decremented as the
 *   stack's forwarding would); any other result passes the packet untouched.
 *
 * DSR frontends' requests for a remote backend: the dispatch built here (xdp_dsr.h).
 *
 * Passed to TC (before anything is rewritten): local backends, backends behind
 * another device (the overlay in tunnel routing), unresolved neighbours, TTL <= 1, ICMP
 * errors, IP options, fragments, VLAN tags, SCTP, IPv6.
 */
#ifndef CILIATE_BPF_XDP_NODEPORT_H
#define CILIATE_BPF_XDP_NODEPORT_H

#include "common.h"
#include "endpoint.h"
#include "events.h"
#include "ipcache.h"
#include "lb.h"
#include "nat.h"
#include "nodeport.h"

#define XDP_ETH_LEN 14
#define XDP_L4_OFF (XDP_ETH_LEN + 20) /* the fast path takes IPv4 without options only */

enum xdp_parsed {
	XDP_PARSED_NONE = 0, /* not IPv4 (or tagged): nothing here */
	XDP_PARSED_L3,	     /* IPv4 addresses known; nothing for the NodePort path */
	XDP_PARSED_L4,	     /* and a TCP/UDP header: ports and flags known */
};

/* Reads the frame into p: the source address for the prefilter first, then what the
 * NodePort path needs. Direct packet access only. */
static __always_inline int xdp_parse4(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 tot;

	__builtin_memset(p, 0, sizeof(*p));
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PARSED_NONE;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->version != 4)
		return XDP_PARSED_NONE;
	p->len = (__u32)(data_end - data);
	p->l3_off = XDP_ETH_LEN;
	p->eth_proto = eth->h_proto;
	p->family = CILIATE_AF_INET;
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	addr_set_v4(&p->saddr, ip->saddr);
	addr_set_v4(&p->daddr, ip->daddr);
	tot = bpf_ntohs(ip->tot_len);
	if (ip->ihl != 5 || tot < 20 || XDP_ETH_LEN + tot > p->len ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		return XDP_PARSED_L3; /* options, malformed, fragments: TC's rules */
	p->len = XDP_ETH_LEN + tot;
	p->l4_off = XDP_L4_OFF;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = data + XDP_L4_OFF;

		if ((void *)(th + 1) > data_end || th->doff < 5 || XDP_L4_OFF + 20 > p->len)
			return XDP_PARSED_L3;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return XDP_PARSED_L4;
	}
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *uh = data + XDP_L4_OFF;

		if ((void *)(uh + 1) > data_end || XDP_L4_OFF + 8 > p->len)
			return XDP_PARSED_L3;
		p->sport = uh->source;
		p->dport = uh->dest;
		return XDP_PARSED_L4;
	}
	return XDP_PARSED_L3;
}

/* One's-complement checksum update (RFC 1624, eqn. 3) for a 16-bit word that changed. */
static __always_inline __u16 xdp_csum_replace2(__u16 sum, __u16 from, __u16 to)
{
	__u32 s = (__u16)~sum + (__u32)(__u16)~from + to;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

static __always_inline __u16 xdp_csum_replace4(__u16 sum, __u32 from, __u32 to)
{
	sum = xdp_csum_replace2(sum, (__u16)from, (__u16)to);
	return xdp_csum_replace2(sum, (__u16)(from >> 16), (__u16)(to >> 16));
}

/* The translation of one packet: its new addresses and ports (network order). */
struct xdp_xlate {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

/*
 * The next hop of the translated packet: 1 when it leaves through the device it came in on
 * (fib holds its Ethernet addresses), 0 when the stack is to decide (another device, no
 * neighbour entry yet, no route, forwarding off, past the MTU).
 */
static __always_inline int xdp_next_hop(struct xdp_md *ctx, const struct pkt *p,
					const struct xdp_xlate *x, struct bpf_fib_lookup *fib)
{
	long rc;

	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = 2; /* AF_INET */
	fib->l4_protocol = p->proto;
	fib->tot_len = (__u16)(p->len - XDP_ETH_LEN);
	fib->ifindex = ctx->ingress_ifindex;
	fib->ipv4_src = x->saddr;
	fib->ipv4_dst = x->daddr;
	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	return rc == BPF_FIB_LKUP_RET_SUCCESS && fib->ifindex == ctx->ingress_ifindex;
}

/*
 * Writes the translation into the frame: addresses and ports with the IPv4 and L4
 * checksums, and with a next hop (fib) the TTL decremented (its checksum word too) and the
 * Ethernet addresses of the next hop. Returns 0 or -reason (the frame is as parsed: only a changed frame fails here).
 */
static __always_inline int xdp_rewrite4(struct xdp_md *ctx, struct pkt *p,
					const struct xdp_xlate *x, const struct bpf_fib_lookup *fib)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + XDP_ETH_LEN;
	__u16 *l4_csum, old_ttl_word, new_ttl_word;
	__be16 *ports;
	__u16 sum;

	if ((void *)(ip + 1) > data_end)
		return -REASON_ERROR_WRITING_TO_PACKET;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = data + XDP_L4_OFF;

		if ((void *)(th + 1) > data_end)
			return -REASON_ERROR_WRITING_TO_PACKET;
		l4_csum = (__u16 *)&th->check;
		ports = (__be16 *)th;
	} else {
		struct udphdr *uh = data + XDP_L4_OFF;

		if ((void *)(uh + 1) > data_end)
			return -REASON_ERROR_WRITING_TO_PACKET;
		l4_csum = (__u16 *)&uh->check;
		ports = (__be16 *)uh;
	}

	/* L4: the pseudo-header's addresses and the ports; a zero UDP checksum means "none" */
	sum = *l4_csum;
	if (p->proto == IPPROTO_TCP || sum) {
		sum = xdp_csum_replace4(sum, ip->saddr, x->saddr);
		sum = xdp_csum_replace4(sum, ip->daddr, x->daddr);
		sum = xdp_csum_replace2(sum, ports[0], x->sport);
		sum = xdp_csum_replace2(sum, ports[1], x->dport);
		if (p->proto == IPPROTO_UDP && !sum)
			sum = 0xffff;
		*l4_csum = sum;
	}
	ports[0] = x->sport;
	ports[1] = x->dport;

	/* IPv4: addresses and TTL (which shares its checksum word with the protocol) */
	sum = ip->check;
	sum = xdp_csum_replace4(sum, ip->saddr, x->saddr);
	sum = xdp_csum_replace4(sum, ip->daddr, x->daddr);
	ip->saddr = x->saddr;
	ip->daddr = x->daddr;
	p->saddr.v4 = x->saddr;
	p->daddr.v4 = x->daddr;
	p->sport = x->sport;
	p->dport = x->dport;
	if (!fib) { /* a translation only (the DSR dispatches' inner packet) */
		ip->check = sum;
		return 0;
	}
	old_ttl_word = bpf_htons(((__u16)ip->ttl << 8) | ip->protocol);
	new_ttl_word = bpf_htons(((__u16)(ip->ttl - 1) << 8) | ip->protocol);
	ip->check = xdp_csum_replace2(sum, old_ttl_word, new_ttl_word);
	ip->ttl--;
	p->ttl--;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return 0;
}

#define XDP_NODEPORT_PASS (-1) /* not handled here: the TC path decides */

#include "xdp_dsr.h"

/*
 * A reply of a NodePort connection SNATed by this node (here or in TC): to the client, from
 * the frontend. Returns XDP_TX, XDP_NODEPORT_PASS or -reason. *handled says whether it was a
 * NAT reply at all (so the frontends are not looked up for it).
 */
static __always_inline int xdp_nodeport_reply(struct xdp_md *ctx, struct pipeline *pl,
					      struct bpf_fib_lookup *fib, int *handled)
{
	struct lb_reverse_nat *rn;
	struct nat_entry *e;
	struct xdp_xlate x;
	__u32 index;

	e = nat_rev4_lookup(pl);
	if (!e)
		return XDP_NODEPORT_PASS;
	*handled = 1;
	index = e->rev_nat_index;
	if (!(e->flags & NAT_F_NODEPORT) || !index)
		return XDP_NODEPORT_PASS; /* masquerade replies: TC */
	rn = bpf_map_lookup_elem(&ciliate_lb_revnat, &index);
	if (!rn)
		return XDP_NODEPORT_PASS; /* TC drops it (the service is gone) */
	x.saddr = rn->addr.v4;
	x.sport = rn->port;
	x.daddr = e->to_addr.v4;
	x.dport = e->to_port;
	if (pl->pkt.ttl <= 1 || !xdp_next_hop(ctx, &pl->pkt, &x, fib))
		return XDP_NODEPORT_PASS;
	pl->rev_nat_index = (__u16)index;
	return xdp_rewrite4(ctx, &pl->pkt, &x, fib) ?: XDP_TX;
}

/*
 * A client's packet to one of this node's frontends whose backend is on another node: DNAT to
 * the backend, SNAT to the node, XDP_TX towards the backend's node. Returns XDP_TX,
 * XDP_NODEPORT_PASS or -reason (the drops TC would make: source range, no backend, no NAT
 * port).
 */
static __always_inline int xdp_nodeport_request(struct xdp_md *ctx, struct pipeline *pl,
						const struct node_config *cfg,
						struct bpf_fib_lookup *fib)
{
	struct pkt *p = &pl->pkt;
	struct lb_service *svc;
	struct lb_backend *be;
	struct lb_scratch *sc;
	struct xdp_xlate x;
	int ret;

	ret = nodeport_select(pl, LB_SCOPE_EXTERNAL, &sc, &svc, &be);
	if (ret)
		return ret == NODEPORT_PASS ? XDP_NODEPORT_PASS : ret;
	/* a local backend (a pod of this node, or the node itself for hostNetwork ones): TC
	 * delivers it to the pod's veth (policy, conntrack) and finds the same backend through
	 * the CT_SVC entry just made. Arithmetic instead of an endpoint lookup: whatever TC does
	 * with an address of this node's range, it does on its own. */
	if (addr_in_cidr4(be->addr.v4, cfg->pod_cidr, cfg->pod_cidr_len) ||
	    be->addr.v4 == cfg->node_ip)
		return XDP_NODEPORT_PASS;
	pl->rev_nat_index = svc->rev_nat_index;
	/* DSR: the option, IPIP or Geneve dispatch built here as TC builds it (xdp_dsr.h) */
	if ((svc->flags2 & LB_SVC_F2_FWD_MODE_DSR) && (cfg->flags & NODE_CFG_F_DSR_ANY))
		return xdp_dsr_request(ctx, pl, cfg, &sc->fk, be, fib);
	x.daddr = be->addr.v4;
	x.dport = be->port;
	x.saddr = cfg->node_ip;
	x.sport = p->sport; /* what the FIB needs; the NAT port comes after */
	if (p->ttl <= 1 || !xdp_next_hop(ctx, p, &x, fib))
		return XDP_NODEPORT_PASS;
	pl->rev_nat_index = svc->rev_nat_index;
	/* the mapping is of the DNATed tuple, as in TC (the frame is rewritten below) */
	p->daddr.v4 = x.daddr;
	p->dport = x.dport;
	ret = nat_snat4_map(pl, cfg->node_ip, NAT_F_NODEPORT, svc->rev_nat_index, &x.saddr,
			    &x.sport);
	if (ret < 0)
		return ret;
	ret = xdp_rewrite4(ctx, p, &x, fib);
	return ret < 0 ? ret : XDP_TX;
}

#endif
