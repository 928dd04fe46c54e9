/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DSR, Geneve dispatch (`bpf-lb-dsr-dispatch: geneve`; docs/SERVICES.md "DSR";
 * REFERENCE.md 1.5). This kernel has no geneve module, so both ends are BPF.
 *
 * Wire format (Cilium's): outer IPv4 (this node -> the backend's node, DF, TTL 64), UDP to
 * 6081 (source port from a hash of the inner flow, checksum 0), Geneve version 0 carrying
 * Ethernet (0x6558) with VNI = the world identity (2), then the inner frame: the request
 * DNATed to the backend, the client kept as source. The frontend travels in a Geneve option
 * of class 0x014B (Cilium), type 0x81 (critical: the C bit is set), length 2 (8 bytes):
 * address and port in network order, 2 bytes of padding — on a TCP SYN and on every UDP
 * datagram; the connection's other packets are encapsulated without it.
 *
 * - Entry node (nodeport.h): dsr_geneve_encap4() after the DNAT; sent to the backend's node.
 * - The egress gateway (egress_gw.h) sends a selected pod's packet to its gateway node in the
 *   same encapsulation, without the option and with the pod's identity as VNI.
 * - Backend node (from-netdev): a Geneve packet to this node's address from another node of
 *   the cluster is decapsulated (dsr_geneve_decap4()); the frontend of an option-carrying
 *   request is recorded for the replies (dsr.h), and the request goes on to the pod.
 */
#ifndef CILIATE_BPF_DSR_GENEVE_H
#define CILIATE_BPF_DSR_GENEVE_H

#include "common.h"
#include "parse.h"
#include "dsr.h"
#include "dsr_ipip.h"

#define DSR_GENEVE_PORT 6081
#define DSR_GENEVE_PROTO_ETH 0x6558 /* Transparent Ethernet Bridging */
#define DSR_GENEVE_OPT_CLASS 0x014b
#define DSR_GENEVE_OPT_TYPE 0x81    /* critical (0x80) | 1 */
#define DSR_GENEVE_OPT_WORDS 2      /* the option's body, in 4-byte words */
#define DSR_GENEVE_F_CRITICAL 0x40  /* second byte of the Geneve header: C */
#define DSR_GENEVE_MAX_OPTS 4       /* options walked on receive */

struct dsr_geneve_hdr {
	__u8 ver_optlen; /* version (2 bits, 0) | length of the options in 4-byte words */
	__u8 flags;	 /* O | C | reserved */
	__be16 proto;
	__u8 vni[3];
	__u8 rsvd;
};

struct dsr_geneve_opt4 {
	__be16 opt_class;
	__u8 type;
	__u8 length; /* reserved (3 bits) | length of the body in 4-byte words (5 bits) */
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* What is put in front of the inner frame, in wire order (the option only when carried). */
struct dsr_geneve_encap {
	struct iphdr ip;
	struct udphdr udp;
	struct dsr_geneve_hdr gnv;
	struct dsr_geneve_opt4 opt;
	struct ethhdr eth;
};

#define DSR_GENEVE_BASE (sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct dsr_geneve_hdr))
#define DSR_GENEVE_OVERHEAD (DSR_GENEVE_BASE + sizeof(struct ethhdr)) /* 50 */
#define DSR_GENEVE_OPT_LEN sizeof(struct dsr_geneve_opt4)	     /* 12 */

_Static_assert(sizeof(struct dsr_geneve_hdr) == 8, "Geneve header is 8 bytes");
_Static_assert(sizeof(struct dsr_geneve_opt4) == 12, "Geneve DSR option (IPv4) is 12 bytes");
#define DSR_GENEVE_ENCAP_LEN (DSR_GENEVE_OVERHEAD + DSR_GENEVE_OPT_LEN) /* 62 */
_Static_assert(__builtin_offsetof(struct dsr_geneve_encap, eth) + sizeof(struct ethhdr) ==
		       DSR_GENEVE_ENCAP_LEN,
	       "Geneve DSR encapsulation: wire order, no padding");

/* Its own per-CPU buffer: the netdev programs' stack has no room for it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dsr_geneve_encap);
} dsr_geneve_scratch SEC(".maps");

/* The encapsulation's UDP source port: a hash of the inner flow in 49152..65535, so that
 * the receiver's RSS spreads flows (the same on every kernel: replay goldens stay exact). */
static __always_inline __be16 dsr_geneve_sport(const struct pkt *p)
{
	__u32 h = p->saddr.v4 ^ p->daddr.v4 ^ ((__u32)p->sport << 16 | p->dport) ^ p->proto;

	h ^= h >> 16;
	h *= 0x7feb352d;
	h ^= h >> 15;
	return bpf_htons(0xc000 | (h & 0x3fff));
}

/*
 * The encapsulation's headers in *e, as they go on the wire: outer IPv4 (local -> remote,
 * DF, TTL 64), UDP to 6081 (checksum 0, allowed over IPv4: RFC 8926 3.3), Geneve with `vni`
 * carrying Ethernet, and the DSR option naming fk when fk is not NULL. inner_len: the inner
 * frame, its Ethernet header included. Returns the bytes to put in front of that frame
 * (without the inner Ethernet header: e->eth is the caller's). Shared by TC and XDP.
 */
static __always_inline __u32 dsr_geneve_fill(struct dsr_geneve_encap *e, const struct pkt *p,
					     __be32 local, __be32 remote,
					     const struct lb_key *fk, __u32 vni, __u32 inner_len)
{
	__u32 outer = DSR_GENEVE_BASE + (fk ? DSR_GENEVE_OPT_LEN : 0);

	dsr_outer_ip4(&e->ip, IPPROTO_UDP, 0, outer + inner_len, bpf_htons(DSR_IP_DF), local,
		      remote);
	e->udp.source = dsr_geneve_sport(p);
	e->udp.dest = bpf_htons(DSR_GENEVE_PORT);
	e->udp.len = bpf_htons(outer + inner_len - sizeof(struct iphdr));
	e->udp.check = 0;
	__builtin_memset(&e->gnv, 0, sizeof(e->gnv));
	e->gnv.proto = bpf_htons(DSR_GENEVE_PROTO_ETH);
	e->gnv.vni[0] = (__u8)(vni >> 16);
	e->gnv.vni[1] = (__u8)(vni >> 8);
	e->gnv.vni[2] = (__u8)vni;
	if (fk) {
		e->gnv.ver_optlen = DSR_GENEVE_OPT_LEN / 4;
		e->gnv.flags = DSR_GENEVE_F_CRITICAL;
		e->opt.opt_class = bpf_htons(DSR_GENEVE_OPT_CLASS);
		e->opt.type = DSR_GENEVE_OPT_TYPE;
		e->opt.length = DSR_GENEVE_OPT_WORDS;
		e->opt.addr = fk->addr.v4;
		e->opt.port = fk->dport;
		e->opt.pad = 0;
	}
	return outer;
}

/*
 * Puts the Geneve encapsulation to `remote` (a node) in front of `p` with VNI `vni`, and the
 * DSR option naming the frontend `fk` (its address and port) when fk is not NULL. Returns 0
 * or -reason; the caller sends the packet on its way.
 */
static __attribute__((noinline, unused)) int dsr_geneve_encap4(struct __sk_buff *skb,
							      const struct pkt *p, __be32 remote,
							      const struct lb_key *fk, __u32 vni)
{
	__u32 hlen = DSR_GENEVE_OVERHEAD + (fk ? DSR_GENEVE_OPT_LEN : 0);
	__u32 inner_len = p->len - p->l3_off + sizeof(struct ethhdr);
	struct dsr_geneve_encap *e;
	struct node_config *cfg;
	__u32 zero = 0;

	e = bpf_map_lookup_elem(&dsr_geneve_scratch, &zero);
	cfg = bpf_map_lookup_elem(&ciliate_node_cfg, &zero);
	if (!e || !cfg)
		return -REASON_ERROR_WRITING_TO_PACKET;
	if (p->l3_off != sizeof(struct ethhdr) ||
	    bpf_skb_load_bytes(skb, 0, &e->eth, sizeof(e->eth)) < 0)
		return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
	if (bpf_skb_adjust_room(skb, hlen, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
					BPF_F_ADJ_ROOM_ENCAP_L2_ETH |
					BPF_F_ADJ_ROOM_ENCAP_L2(sizeof(struct ethhdr))) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	dsr_geneve_fill(e, p, cfg->node_ip, remote, fk, vni, inner_len);
	e->eth.h_proto = bpf_htons(ETH_P_IP);
	if (fk) {
		if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), e, DSR_GENEVE_ENCAP_LEN, 0) < 0)
			return -REASON_ERROR_WRITING_TO_PACKET;
		return 0;
	}
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), e, DSR_GENEVE_BASE, 0) < 0 ||
	    bpf_skb_store_bytes(skb, sizeof(struct ethhdr) + DSR_GENEVE_BASE, &e->eth,
				sizeof(e->eth), 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	return 0;
}

/* The frontend a received packet's DSR option named (network order), left in the per-CPU
 * buffer by dsr_geneve_decap4(); NULL when the packet carried none. */
static __always_inline const struct dsr_geneve_opt4 *dsr_geneve_found(void)
{
	__u32 zero = 0;
	struct dsr_geneve_encap *e = bpf_map_lookup_elem(&dsr_geneve_scratch, &zero);

	return e && e->opt.type == DSR_GENEVE_OPT_TYPE ? &e->opt : NULL;
}

/*
 * Backend node: `p` is a UDP packet to this node's Geneve port. Walks its options for the DSR
 * option (left for dsr_geneve_found()), then strips the encapsulation and the inner Ethernet
 * header; the caller parses what is left. Returns 0 or -reason.
 */
static __attribute__((noinline, unused)) int dsr_geneve_decap4(struct __sk_buff *skb,
							      const struct pkt *p)
{
	struct dsr_geneve_encap *e;
	struct dsr_geneve_hdr g;
	struct dsr_geneve_opt4 o;
	__u32 off, end, zero = 0;
	__be16 ethertype;
	int i;

	e = bpf_map_lookup_elem(&dsr_geneve_scratch, &zero);
	if (!e)
		return -REASON_INVALID_PACKET_DROPPED;
	e->opt.type = 0;
	off = p->l4_off + sizeof(struct udphdr);
	if (bpf_skb_load_bytes(skb, off, &g, sizeof(g)) < 0 || (g.ver_optlen >> 6) != 0 ||
	    g.proto != bpf_htons(DSR_GENEVE_PROTO_ETH))
		return -REASON_INVALID_PACKET_DROPPED;
	off += sizeof(g);
	end = off + (g.ver_optlen & 0x3f) * 4;
	for (i = 0; i < DSR_GENEVE_MAX_OPTS; i++) {
		if (off + 4 > end)
			break;
		if (bpf_skb_load_bytes(skb, off, &o, 4) < 0)
			return -REASON_INVALID_PACKET_DROPPED;
		if (o.opt_class == bpf_htons(DSR_GENEVE_OPT_CLASS) && o.type == DSR_GENEVE_OPT_TYPE &&
		    (o.length & 0x1f) == DSR_GENEVE_OPT_WORDS) {
			if (bpf_skb_load_bytes(skb, off, &e->opt, sizeof(e->opt)) < 0)
				return -REASON_INVALID_PACKET_DROPPED;
		}
		off += 4 + (o.length & 0x1f) * 4;
	}
	if (bpf_skb_load_bytes(skb, end + 12, &ethertype, sizeof(ethertype)) < 0 ||
	    ethertype != bpf_htons(ETH_P_IP))
		return -REASON_INVALID_PACKET_DROPPED;
	/* everything between the outer Ethernet header and the inner IPv4 header */
	if (bpf_skb_adjust_room(skb, -(__s32)(end + sizeof(struct ethhdr) - p->l3_off),
				BPF_ADJ_ROOM_MAC, 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	return 0;
}

#endif
