/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DSR, IPIP dispatch (`bpf-lb-dsr-dispatch: ipip`; docs/SERVICES.md "DSR"; REFERENCE.md 1.6).
 * This kernel has no ipip module, so both ends are BPF.
 *
 * - Entry node (nodeport.h): the client's request, unchanged (client -> frontend), gets an
 *   outer IPv4 header from this node's address to the backend's node (protocol 4, TTL 64,
 *   DF as the inner packet's), and leaves through the fabric device towards that node.
 * - Backend node (from-netdev): an IPIP packet to this node's address from another node of
 *   the cluster loses its outer header; the request it carried is served by one of this
 *   node's backends of that frontend (LB_SCOPE_DSR_LOCAL entries) and its frontend recorded
 *   for the replies (dsr.h).
 *
 * The outer source is the entry node's address: Cilium takes it from
 * bpf-lb-rss-ipv4-src-cidr for RSS entropy on a standalone balancer; ciliate's backends are
 * its own nodes, whose from-netdev accepts IPIP only from cluster nodes.
 */
#ifndef CILIATE_BPF_DSR_IPIP_H
#define CILIATE_BPF_DSR_IPIP_H

#include "common.h"
#include "parse.h"
#include "dsr.h"

#define DSR_IPIP_OVERHEAD 20 /* the outer IPv4 header */
#define DSR_OUTER_TTL 64
#define DSR_IP_DF 0x4000

/* The outer IPv4 header of an encapsulation: ttl 64, no options, checksum filled. */
static __always_inline void dsr_outer_ip4(struct iphdr *o, __u8 proto, __u8 tos, __u16 tot_len,
					  __be16 frag_off, __be32 saddr, __be32 daddr)
{
	__builtin_memset(o, 0, sizeof(*o));
	o->version = 4;
	o->ihl = 5;
	o->tos = tos;
	o->tot_len = bpf_htons(tot_len);
	o->frag_off = frag_off;
	o->ttl = DSR_OUTER_TTL;
	o->protocol = proto;
	o->saddr = saddr;
	o->daddr = daddr;
	o->check = dsr_ip_csum(o, sizeof(*o));
}

/*
 * Entry node: puts the outer header in front of the request at l3_off. Returns 0 or -reason;
 * the caller sends the packet to `remote` (the backend's node).
 */
static __attribute__((noinline, unused)) int dsr_ipip_encap4(struct __sk_buff *skb, __u32 l3_off,
							    __be32 local, __be32 remote)
{
	struct iphdr in, out;

	if (bpf_skb_load_bytes(skb, l3_off, &in, sizeof(in)) < 0)
		return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
	if (bpf_skb_adjust_room(skb, DSR_IPIP_OVERHEAD, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	dsr_outer_ip4(&out, IPPROTO_IPIP, in.tos, bpf_ntohs(in.tot_len) + DSR_IPIP_OVERHEAD,
		      in.frag_off & bpf_htons(DSR_IP_DF), local, remote);
	if (bpf_skb_store_bytes(skb, l3_off, &out, sizeof(out), 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	return 0;
}

/*
 * Backend node: strips the outer header of an IPIP packet `p` (parsed: protocol 4, to this
 * node); the caller parses what it carried. Returns 0 or -reason.
 */
static __attribute__((noinline, unused)) int dsr_ipip_decap4(struct __sk_buff *skb,
							    const struct pkt *p)
{
	__s32 hlen = p->l4_off - p->l3_off; /* the outer header, with any options */

	if (hlen < (__s32)sizeof(struct iphdr) || hlen > 60)
		return -REASON_INVALID_PACKET_DROPPED;
	if (bpf_skb_adjust_room(skb, -hlen, BPF_ADJ_ROOM_MAC, 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	return 0;
}

#endif
