/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Direct Server Return (`bpf-lb-mode: dsr|hybrid`; docs/SERVICES.md "DSR"): what the three
 * dispatches share, and the IPv4 option dispatch (`bpf-lb-dsr-dispatch: opt`). The ipip and
 * geneve dispatches build and parse their headers in dsr_ipip.h and dsr_geneve.h.
 *
 * Option wire format as Cilium's (REFERENCE.md 1.3): the first option after the 20-byte base
 * header, type 0x9A (copied, class 0, number 26), length 8, then port (2) and address (4).
 *
 * - Entry node (nodeport.h, a remote backend of a DSR frontend): the request is DNATed to the
 *   backend, keeps the client as source, and carries the frontend in the option — on a TCP
 *   SYN, on every UDP datagram — then goes to the backend's node.
 * - Backend node (from-netdev, from-overlay): a packet to a local pod carrying the option
 *   records the frontend in a NAT OUT entry keyed by the reply's tuple (NAT_F_DSR,
 *   dsr_record4(); every dispatch records the same way).
 * - Backend node, to-netdev: a reply with such an entry leaves with the frontend as source,
 *   straight to the client: it never crosses the entry node (dsr_reply4()).
 * - A request that the dispatch's header would push past the fabric MTU is answered with
 *   ICMP fragmentation needed instead (dsr_frag_needed()).
 *
 * Byte order: Cilium converts the already network-ordered address and port with
 * bpf_htonl/bpf_htons before storing them, so on little-endian hosts they travel
 * byte-swapped; ciliate writes and reads them the same way, so mixed clusters agree
 * (REFERENCE.md 1.3, "Byte-order quirk"). The Geneve option carries them in network order.
 */
#ifndef CILIATE_BPF_DSR_H
#define CILIATE_BPF_DSR_H

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "nat.h"

#define DSR_IPV4_OPT_TYPE 0x9a
#define DSR_IPV4_OPT_LEN 8

struct dsr_opt4 {
	__u8 type;
	__u8 len;
	__u16 port; /* as Cilium stores it: bpf_htons() of the network-order port */
	__u32 addr; /* as Cilium stores it: bpf_htonl() of the network-order address */
};

/* Whether this packet of a DSR connection carries the option: TCP SYNs, UDP always. */
static __always_inline int dsr_wants_opt(const struct pkt *p)
{
	if (p->proto == IPPROTO_UDP)
		return 1;
	return p->proto == IPPROTO_TCP &&
	       (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

static __always_inline __u16 dsr_csum_fold(__s64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The checksum of an IPv4 header of `len` bytes (its check field zero). */
static __always_inline __u16 dsr_ip_csum(const void *hdr, __u32 len)
{
	const __u16 *w = hdr;
	__u32 sum = 0;
	__u32 i;

#pragma unroll
	for (i = 0; i < len / 2; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The base header and the option after it, as they go on the wire. */
struct dsr_opt_hdr4 {
	struct iphdr ip;
	struct dsr_opt4 opt;
};

/* The request's base header `h->ip` grown by the option naming (vip, vport): IHL, total
 * length, the option, the checksum over both. Shared by TC (dsr_set_opt4) and XDP. */
static __always_inline void dsr_opt_header4(struct dsr_opt_hdr4 *h, __be32 vip, __be16 vport)
{
	h->ip.ihl += DSR_IPV4_OPT_LEN / 4;
	h->ip.tot_len = bpf_htons(bpf_ntohs(h->ip.tot_len) + DSR_IPV4_OPT_LEN);
	h->ip.check = 0;
	h->opt.type = DSR_IPV4_OPT_TYPE;
	h->opt.len = DSR_IPV4_OPT_LEN;
	h->opt.port = bpf_htons(vport);
	h->opt.addr = bpf_htonl(vip);
	h->ip.check = dsr_ip_csum(h, sizeof(*h));
}

#define DSR_NO_ROOM 1 /* dsr_set_opt4: the packet has options already: SNAT it instead */

/*
 * Inserts the option right after the base header: 8 bytes of room at the network layer
 * (in front of the IP header), the base header moved to the front, the option behind it,
 * IHL, total length and the header checksum updated. A packet that carries options already
 * is left alone (DSR_NO_ROOM: the caller falls back to SNAT) — the option must be the
 * first one. Returns 0, DSR_NO_ROOM or -reason.
 */
static __always_inline int dsr_set_opt4(struct __sk_buff *skb, struct pkt *p, __be32 vip,
					__be16 vport)
{
	struct dsr_opt_hdr4 h;

	if (p->l4_off - p->l3_off != sizeof(struct iphdr))
		return DSR_NO_ROOM;
	if (bpf_skb_load_bytes(skb, p->l3_off, &h.ip, sizeof(h.ip)) < 0)
		return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
	if (bpf_skb_adjust_room(skb, DSR_IPV4_OPT_LEN, BPF_ADJ_ROOM_NET, 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	dsr_opt_header4(&h, vip, vport);
	if (bpf_skb_store_bytes(skb, p->l3_off, &h, sizeof(h), 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	p->l4_off += DSR_IPV4_OPT_LEN;
	return 0;
}

/* Would `overhead` more bytes (the dispatch's header) push this packet past the fabric
 * device's MTU? */
static __always_inline int dsr_too_big(const struct pkt *p, __u16 mtu, __u32 overhead)
{
	return mtu && p->len - p->l3_off + overhead > mtu;
}

/*
 * The MTU outcome (REFERENCE.md 1.7): instead of a request the dispatch's header would make
 * too big, the client gets ICMP fragmentation needed with the MTU less that header
 * (`overhead`: 8 for opt, 20 for ipip, the whole encapsulation for geneve), quoting its own
 * packet as it sent it (to the frontend), so that its path-MTU cache fixes the next attempt.
 * The packet is turned into that ICMP error in place and sent back out of the device.
 * `p` may have been DNATed to the backend already: the quote is given the frontend back first.
 * Returns the TC verdict (a redirect) or -reason.
 */
struct dsr_icmp_reply {
	struct iphdr ip;
	__u8 icmp[8];
	__u8 quote[28]; /* the request's IP header and first 8 bytes of L4 */
	__u8 macs[12];
};

/* Its own per-CPU buffer: the netdev programs' stack has no room for it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dsr_icmp_reply);
} dsr_icmp_scratch SEC(".maps");

/*
 * Turns `p` in place into ICMP fragmentation needed from `src` to p's source, with MTU
 * `mtu_left`, quoting p's IP header and first 8 bytes of L4 as they are now, the Ethernet
 * addresses swapped (back the way it came). Returns 0 or -reason. Shared with the egress
 * gateway (egress_gw.h), whose too-big packets go back to the pod that sent them.
 */
static __always_inline int icmp_frag_needed4(struct __sk_buff *skb, const struct pkt *p,
					     __be32 src, __u32 mtu_left)
{
	const __u32 len = sizeof(struct iphdr) + 8 + 28;
	struct dsr_icmp_reply *r;
	__be16 next_mtu = bpf_htons((__u16)mtu_left);
	__u32 zero = 0;
	__s64 sum;
	__u16 c;

	r = bpf_map_lookup_elem(&dsr_icmp_scratch, &zero);
	if (!r)
		return -REASON_FRAG_NEEDED;
	if (p->l4_off - p->l3_off != sizeof(struct iphdr))
		return -REASON_FRAG_NEEDED; /* options: no clean quote, plain drop */
	if (bpf_skb_load_bytes(skb, p->l3_off, r->quote, sizeof(r->quote)) < 0 ||
	    bpf_skb_load_bytes(skb, 6, r->macs, 6) < 0 || /* source first: it becomes dest */
	    bpf_skb_load_bytes(skb, 0, r->macs + 6, 6) < 0)
		return -REASON_FRAG_NEEDED;
	if (bpf_skb_change_tail(skb, p->l3_off + len, 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	__builtin_memset(&r->ip, 0, sizeof(r->ip) + sizeof(r->icmp));
	r->ip.version = 4;
	r->ip.ihl = 5;
	r->ip.tot_len = bpf_htons(len);
	r->ip.frag_off = bpf_htons(0x4000); /* DF */
	r->ip.ttl = 64;
	r->ip.protocol = IPPROTO_ICMP;
	r->ip.saddr = src;
	r->ip.daddr = p->saddr.v4;
	r->icmp[0] = ICMP_DEST_UNREACH;
	r->icmp[1] = 4; /* fragmentation needed and DF set */
	__builtin_memcpy(&r->icmp[6], &next_mtu, 2);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)r->icmp, sizeof(r->icmp) + sizeof(r->quote), 0);
	if (sum < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L4_CHECKSUM;
	c = dsr_csum_fold(sum);
	__builtin_memcpy(&r->icmp[2], &c, 2);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&r->ip, sizeof(r->ip), 0);
	if (sum < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L3_CHECKSUM;
	r->ip.check = dsr_csum_fold(sum);
	if (bpf_skb_store_bytes(skb, 0, r->macs, sizeof(r->macs), 0) < 0 ||
	    bpf_skb_store_bytes(skb, p->l3_off, r, len, 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	return 0;
}

static __attribute__((noinline, unused)) int dsr_frag_needed(struct __sk_buff *skb,
							    struct pkt *p, __be32 vip,
							    __be16 vport, __u32 mtu_left)
{
	int ret;

	/* the quote as the client sent it: to the frontend */
	if (nat_rewrite4(skb, p, 1, vip, vport) < 0)
		return -REASON_FRAG_NEEDED;
	ret = icmp_frag_needed4(skb, p, vip, mtu_left);
	return ret < 0 ? ret : bpf_redirect(skb->ifindex, 0);
}

/*
 * Backend node: a DSR request `p` (already addressed to the local pod) names its frontend
 * (vip, vport; network order). The frontend is recorded for the replies: a NAT OUT entry
 * keyed by the reply's tuple. Returns 1 (recorded) or -reason. A subprogram: its key and
 * entry stay off the callers' stack.
 */
static __attribute__((noinline, unused)) int dsr_record4(const struct pipeline *pl,
							const struct pkt *p, __be32 vip,
							__be16 vport)
{
	struct nat_key k = {};
	struct nat_entry e = {};

	k.saddr = p->daddr;
	k.daddr = p->saddr;
	k.sport = p->dport;
	k.dport = p->sport;
	k.proto = p->proto;
	k.family = p->family;
	k.dir = NAT_DIR_EGRESS;
	e.created_ns = pl->now;
	e.last_used_ns = pl->now;
	addr_set_v4(&e.to_addr, vip);
	e.to_port = vport;
	e.flags = NAT_F_DSR;
	if (bpf_map_update_elem(&ciliate_nat, &k, &e, BPF_ANY) < 0)
		return -REASON_NO_MAPPING_FOR_NAT_MASQUERADE;
	return 1;
}

/*
 * Backend node: a packet to a local pod carrying the IPv4 option (dispatch opt) records its
 * frontend. Returns 1 (recorded), 0 (no option) or -reason.
 */
static __always_inline int dsr_learn4(const struct pipeline *pl)
{
	const struct pkt *p = &pl->pkt;
	struct dsr_opt4 opt;

	if (p->family != CILIATE_AF_INET || p->l4_off - p->l3_off < 28 ||
	    (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP) || (p->flags & PKT_F_NO_L4))
		return 0;
	if (bpf_skb_load_bytes(pl->skb, p->l3_off + sizeof(struct iphdr), &opt, sizeof(opt)) < 0 ||
	    opt.type != DSR_IPV4_OPT_TYPE || opt.len != DSR_IPV4_OPT_LEN)
		return 0;
	return dsr_record4(pl, p, bpf_ntohl(opt.addr), bpf_ntohs(opt.port));
}

/* Backend node, to-netdev: a reply of a DSR connection leaves from the frontend. Returns 1
 * (translated), 0 (not one) or -reason. */
static __always_inline int dsr_reply4(struct pipeline *pl)
{
	struct pkt *p = &pl->pkt;
	struct nat_key k;
	struct nat_entry *e;

	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return 0;
	nat_key_of(&k, p, NAT_DIR_EGRESS);
	e = bpf_map_lookup_elem(&ciliate_nat, &k);
	if (!e || !(e->flags & NAT_F_DSR))
		return 0;
	e->last_used_ns = pl->now;
	return nat_rewrite4(pl->skb, p, 0, e->to_addr.v4, e->to_port) ?: 1;
}

#endif
