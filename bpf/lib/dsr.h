/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Direct Server Return, IPv4 option dispatch (`bpf-lb-mode: dsr|hybrid`,
 * `bpf-lb-dsr-dispatch: opt`; docs/SERVICES.md "DSR"). Wire format as Cilium's
 * (REFERENCE.md 1.3): the first option after the 20-byte base header, type 0x9A (copied,
 * class 0, number 26), length 8, then port (2) and address (4).
 *
 * - Entry node (nodeport.h, a remote backend of a DSR frontend): the request is DNATed to the
 *   backend, keeps the client as source, and carries the frontend in the option — on a TCP
 *   SYN, on every UDP datagram — then goes to the backend's node.
 * - Backend node (from-netdev, from-overlay): a packet to a local pod carrying the option
 *   records the frontend in a NAT OUT entry keyed by the reply's tuple (NAT_F_DSR).
 * - Backend node, to-netdev: a reply with such an entry leaves with the frontend as source,
 *   straight to the client: it never crosses the entry node.
 *
 * Byte order: Cilium converts the already network-ordered address and port with
 * bpf_htonl/bpf_htons before storing them, so on little-endian hosts they travel
 * byte-swapped; ciliate writes and reads them the same way, so mixed clusters agree
 * (DSR_OPT_SWAP below; REFERENCE.md 1.3, "Byte-order quirk").
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
	struct {
		struct iphdr ip;
		struct dsr_opt4 opt;
	} h;
	__s64 sum;

	if (p->l4_off - p->l3_off != sizeof(struct iphdr))
		return DSR_NO_ROOM;
	if (bpf_skb_load_bytes(skb, p->l3_off, &h.ip, sizeof(h.ip)) < 0)
		return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
	if (bpf_skb_adjust_room(skb, DSR_IPV4_OPT_LEN, BPF_ADJ_ROOM_NET, 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	h.ip.ihl += DSR_IPV4_OPT_LEN / 4;
	h.ip.tot_len = bpf_htons(bpf_ntohs(h.ip.tot_len) + DSR_IPV4_OPT_LEN);
	h.ip.check = 0;
	h.opt.type = DSR_IPV4_OPT_TYPE;
	h.opt.len = DSR_IPV4_OPT_LEN;
	h.opt.port = bpf_htons(vport);
	h.opt.addr = bpf_htonl(vip);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&h, sizeof(h), 0);
	if (sum < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L3_CHECKSUM;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	h.ip.check = (__u16)~sum;
	if (bpf_skb_store_bytes(skb, p->l3_off, &h, sizeof(h), 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	p->l4_off += DSR_IPV4_OPT_LEN;
	return 0;
}

/*
 * Backend node: a packet to a local pod carrying the option. Its frontend is recorded for
 * the replies (a NAT OUT entry keyed by the reply's tuple). Returns 1 (recorded), 0 (no
 * option) or -reason.
 */
static __always_inline int dsr_learn4(const struct pipeline *pl)
{
	const struct pkt *p = &pl->pkt;
	struct dsr_opt4 opt;
	struct nat_key k = {};
	struct nat_entry e = {};

	if (p->family != CILIATE_AF_INET || p->l4_off - p->l3_off < 28 ||
	    (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP) || (p->flags & PKT_F_NO_L4))
		return 0;
	if (bpf_skb_load_bytes(pl->skb, p->l3_off + sizeof(struct iphdr), &opt, sizeof(opt)) < 0 ||
	    opt.type != DSR_IPV4_OPT_TYPE || opt.len != DSR_IPV4_OPT_LEN)
		return 0;
	k.saddr = p->daddr;
	k.daddr = p->saddr;
	k.sport = p->dport;
	k.dport = p->sport;
	k.proto = p->proto;
	k.family = p->family;
	k.dir = NAT_DIR_EGRESS;
	e.created_ns = pl->now;
	e.last_used_ns = pl->now;
	addr_set_v4(&e.to_addr, bpf_ntohl(opt.addr));
	e.to_port = bpf_ntohs(opt.port);
	e.flags = NAT_F_DSR;
	if (bpf_map_update_elem(&ciliate_nat, &k, &e, BPF_ANY) < 0)
		return -REASON_NO_MAPPING_FOR_NAT_MASQUERADE;
	return 1;
}

/* Backend node, to-netdev: a reply of a DSR connection leaves from the frontend. Returns 1
 * (translated), 0 (not one) or -reason. */
static __always_inline int dsr_reply4(struct pipeline *pl)
{
	struct pkt *p = &pl->pkt;
	struct nat_key k = {};
	struct nat_entry *e;

	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return 0;
	k.saddr = p->saddr;
	k.daddr = p->daddr;
	k.sport = p->sport;
	k.dport = p->dport;
	k.proto = p->proto;
	k.family = p->family;
	k.dir = NAT_DIR_EGRESS;
	e = bpf_map_lookup_elem(&ciliate_nat, &k);
	if (!e || !(e->flags & NAT_F_DSR))
		return 0;
	e->last_used_ns = pl->now;
	return nat_rewrite4(pl->skb, p, 0, e->to_addr.v4, e->to_port) ?: 1;
}

#endif
