/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local delivery: hand a packet to a pod on this node by redirecting it to the pod's host-side
 * veth, as a router would: Ethernet addresses rewritten to (gateway -> pod), IPv4 TTL / IPv6
 * hop limit decremented with the IPv4 header checksum fixed incrementally.
 */
#ifndef CILIATE_BPF_FORWARD_H
#define CILIATE_BPF_FORWARD_H

#include "common.h"
#include "parse.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_FORWARD

/* Returns 0 or -reason. The caller then returns bpf_redirect(ep->ifindex, 0). */
static __always_inline int forward_rewrite_l2l3(struct __sk_buff *skb, const struct pkt *p,
						const struct endpoint_info *dst)
{
	__u8 macs[12];

	if (p->ttl <= 1)
		return -REASON_TTL_EXCEEDED;
	__builtin_memcpy(macs, dst->mac, 6);
	__builtin_memcpy(macs + 6, dst->node_mac, 6);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;

	if (p->family == CILIATE_AF_INET) {
		__u32 ttl_off = p->l3_off + __builtin_offsetof(struct iphdr, ttl);
		__u32 csum_off = p->l3_off + __builtin_offsetof(struct iphdr, check);
		/* TTL shares a 16-bit checksum word with the protocol byte */
		__be16 old = bpf_htons(((__u16)p->ttl << 8) | p->proto);
		__be16 new = bpf_htons(((__u16)(p->ttl - 1) << 8) | p->proto);
		__u8 ttl = p->ttl - 1;

		if (bpf_l3_csum_replace(skb, csum_off, old, new, 2) < 0)
			return -REASON_ERROR_WHILE_CORRECTING_L3_CHECKSUM;
		if (bpf_skb_store_bytes(skb, ttl_off, &ttl, 1, 0) < 0)
			return -REASON_ERROR_WRITING_TO_PACKET;
	} else {
		__u32 hl_off = p->l3_off + __builtin_offsetof(struct ipv6hdr, hop_limit);
		__u8 hl = p->ttl - 1;

		if (bpf_skb_store_bytes(skb, hl_off, &hl, 1, 0) < 0)
			return -REASON_ERROR_WRITING_TO_PACKET;
	}
	return 0;
}

#endif
