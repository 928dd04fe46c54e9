/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet parsing: Ethernet, up to two 802.1Q/802.1ad tags, IPv4 (options, fragments), IPv6
 * (extension-header walk), TCP, UDP, ICMP, ICMPv6, SCTP ports. The result is a flat struct pkt;
 * errors are negative drop reasons. Every read is bounds-checked: malformed input yields a
 * reason, never an out-of-bounds access.
 *
 * Eth/VLAN/IPv4/L4 use direct packet access (the hot path); IPv6 extension headers and ICMP
 * error payloads, which sit at data-dependent offsets, are read with bpf_skb_load_bytes.
 */
#ifndef CILIATE_BPF_PARSE_H
#define CILIATE_BPF_PARSE_H

#include "common.h"

#define PKT_F_FRAG (1u << 0)       /* part of a fragmented datagram */
#define PKT_F_FRAG_FIRST (1u << 1) /* ... and the first fragment (carries L4) */
#define PKT_F_NO_L4 (1u << 2)      /* no L4 header available (non-first frag, no next header) */
#define PKT_F_ICMP_ERROR (1u << 3) /* ICMP/ICMPv6 error message */

#define IPV6_MAX_EXT_HEADERS 8
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_NONE 59
#define NEXTHDR_DEST 60

struct pkt {
	__u32 len;     /* skb->len */
	__u16 l3_off;
	__u16 l4_off;
	__be16 eth_proto; /* after VLAN tags */
	__u8 vlan_depth;
	__u8 family;      /* 0 for non-IP */
	__u8 proto;       /* L4 protocol */
	__u8 ttl;
	__u8 tcp_flags;
	__u8 flags;       /* PKT_F_* */
	__u8 icmp_type;
	__u8 icmp_code;
	__be16 frag_id;   /* IPv4 fragment id (low 16 bits of the IPv6 one) */
	union ciliate_addr saddr;
	union ciliate_addr daddr;
	__be16 sport; /* conntrack ports; ICMP echo id (request: sport, reply: dport) */
	__be16 dport;
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_ACK 0x10

static __always_inline int icmp4_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB || type == ICMP_SOURCE_QUENCH || type == ICMP_REDIRECT;
}

static __always_inline int icmp6_is_error(__u8 type)
{
	return type >= 1 && type <= 4; /* unreach, too big, time exceeded, param problem */
}

/* Sets conntrack ports for ICMP: echo requests key on (id, 0), replies on (0, id). */
static __always_inline void icmp_ports(struct pkt *p, __u8 type, __be16 id)
{
	int req = p->family == CILIATE_AF_INET ? type == ICMP_ECHO : type == ICMPV6_ECHO_REQUEST;
	int rep = p->family == CILIATE_AF_INET ? type == ICMP_ECHOREPLY : type == ICMPV6_ECHO_REPLY;

	p->sport = req ? id : 0;
	p->dport = rep ? id : 0;
}

/* Reads the L4 header at p->l4_off (loaded into a stack copy). Returns 0 or -reason. */
static __always_inline int parse_l4(struct __sk_buff *skb, struct pkt *p)
{
	__u8 hdr[20];
	__u32 need;

	if (p->flags & PKT_F_NO_L4)
		return 0;
	switch (p->proto) {
	case IPPROTO_TCP:
		need = 20;
		break;
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		need = 8;
		break;
	case IPPROTO_SCTP:
		need = 12;
		break;
	default:
		return 0; /* other protocols: no ports, policy sees port 0 */
	}
	if (p->l4_off + need > p->len)
		return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
	{
		/* hot path: the header is in the linear area */
		void *data = (void *)(long)skb->data;
		void *data_end = (void *)(long)skb->data_end;
		__u32 off = p->l4_off;
		__u8 *l4;

		/* a small constant bound lets the verifier prove the access */
		if (off > 255)
			goto slow;
		l4 = data + off;
		if ((void *)(l4 + 20) <= data_end)
			__builtin_memcpy(hdr, l4, 20);
		else
			goto slow;
		goto parsed;
	}
slow:
	if (need == 20) {
		if (bpf_skb_load_bytes(skb, p->l4_off, hdr, 20) < 0)
			return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
	} else if (need == 12) {
		if (bpf_skb_load_bytes(skb, p->l4_off, hdr, 12) < 0)
			return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
	} else if (bpf_skb_load_bytes(skb, p->l4_off, hdr, 8) < 0) {
		return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
	}
parsed:
	switch (p->proto) {
	case IPPROTO_TCP:
		if ((hdr[12] >> 4) < 5)
			return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
		p->tcp_flags = hdr[13];
		/* fallthrough */
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		__builtin_memcpy(&p->sport, &hdr[0], 2);
		__builtin_memcpy(&p->dport, &hdr[2], 2);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		__be16 id;

		p->icmp_type = hdr[0];
		p->icmp_code = hdr[1];
		__builtin_memcpy(&id, &hdr[4], 2);
		icmp_ports(p, hdr[0], id);
		if (p->proto == IPPROTO_ICMP ? icmp4_is_error(hdr[0]) : icmp6_is_error(hdr[0]))
			p->flags |= PKT_F_ICMP_ERROR;
		break;
	}
	}
	return 0;
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt *p, void *data,
				      void *data_end)
{
	struct iphdr *ip = data + p->l3_off;
	__u32 hlen, tot;
	__u16 frag;

	if ((void *)(ip + 1) > data_end)
		return -REASON_INVALID_PACKET_DROPPED;
	if (ip->version != 4 || ip->ihl < 5)
		return -REASON_INVALID_PACKET_DROPPED;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen || p->l3_off + tot > p->len)
		return -REASON_INVALID_PACKET_DROPPED;

	p->family = CILIATE_AF_INET;
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	addr_set_v4(&p->saddr, ip->saddr);
	addr_set_v4(&p->daddr, ip->daddr);
	p->l4_off = p->l3_off + hlen;
	/* L4 parsing only looks at the datagram, not Ethernet padding after it */
	p->len = p->l3_off + tot;

	frag = bpf_ntohs(ip->frag_off);
	if (frag & 0x3fff) { /* MF set or non-zero offset */
		p->flags |= PKT_F_FRAG;
		p->frag_id = ip->id;
		if (frag & 0x1fff)
			p->flags |= PKT_F_NO_L4;
		else
			p->flags |= PKT_F_FRAG_FIRST;
	}
	return parse_l4(skb, p);
}

struct ipv6_opt_hdr_min {
	__u8 nexthdr;
	__u8 hdrlen;
	__be16 frag_off; /* fragment header only */
	__be32 frag_id;  /* fragment header only */
};

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct pkt *p)
{
	struct ipv6hdr ip6;
	__u32 off, payload;
	__u8 nexthdr;
	int i;

	if (bpf_skb_load_bytes(skb, p->l3_off, &ip6, sizeof(ip6)) < 0)
		return -REASON_INVALID_PACKET_DROPPED;
	if (ip6.version != 6)
		return -REASON_INVALID_PACKET_DROPPED;
	payload = bpf_ntohs(ip6.payload_len);
	if (p->l3_off + sizeof(ip6) + payload > p->len)
		return -REASON_INVALID_PACKET_DROPPED;

	p->family = CILIATE_AF_INET6;
	p->ttl = ip6.hop_limit;
	__builtin_memcpy(p->saddr.bytes, &ip6.saddr, 16);
	__builtin_memcpy(p->daddr.bytes, &ip6.daddr, 16);
	p->len = p->l3_off + sizeof(ip6) + payload;

	nexthdr = ip6.nexthdr;
	off = p->l3_off + sizeof(ip6);
#pragma unroll
	for (i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
		struct ipv6_opt_hdr_min opt;

		switch (nexthdr) {
		case NEXTHDR_HOP:
		case NEXTHDR_ROUTING:
		case NEXTHDR_DEST:
		case NEXTHDR_AUTH:
		case NEXTHDR_FRAGMENT:
			break;
		case NEXTHDR_NONE:
			p->proto = nexthdr;
			p->l4_off = off;
			p->flags |= PKT_F_NO_L4;
			return 0;
		default:
			p->proto = nexthdr;
			p->l4_off = off;
			return parse_l4(skb, p);
		}
		if (off + 8 > p->len || bpf_skb_load_bytes(skb, off, &opt, 8) < 0)
			return -REASON_INVALID_IPV6_EXTENSION_HEADER;
		if (nexthdr == NEXTHDR_FRAGMENT) {
			__u16 fo = bpf_ntohs(opt.frag_off);

			p->flags |= PKT_F_FRAG;
			p->frag_id = (__be16)(opt.frag_id >> 16);
			if (fo & 0xfff8)
				p->flags |= PKT_F_NO_L4;
			else
				p->flags |= PKT_F_FRAG_FIRST;
			off += 8;
		} else if (nexthdr == NEXTHDR_AUTH) {
			off += (opt.hdrlen + 2) * 4;
		} else {
			off += (opt.hdrlen + 1) * 8;
		}
		nexthdr = opt.nexthdr;
		if (p->flags & PKT_F_NO_L4) {
			p->proto = nexthdr;
			p->l4_off = off;
			return 0;
		}
	}
	/* too many extension headers to walk: refuse rather than guess */
	return -REASON_INVALID_IPV6_EXTENSION_HEADER;
}

/*
 * Parses the frame. Returns 0 with p filled (p->family == 0 for non-IP frames) or -reason.
 * May pull non-linear data into the linear area.
 *
 * A global function: the verifier checks it once, on its own, instead of once per parser path
 * times every path of the pipeline after it (which exceeds older kernels' 1M-insn budget).
 * Its caller then sees the parsed fields as unknown values, so every later packet access is
 * bounds-checked on its own.
 */
__attribute__((noinline)) int parse_packet(struct __sk_buff *skb, struct pkt *p)
{
	void *data, *data_end;
	struct ethhdr *eth;
	__be16 proto;
	__u32 want;

	if (!p)
		return -REASON_INVALID_PACKET_DROPPED;
	__builtin_memset(p, 0, sizeof(*p));
	p->len = skb->len;
	want = p->len < 128 ? p->len : 128;
	if ((__u32)(skb->data_end - skb->data) < want)
		bpf_skb_pull_data(skb, want);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;

	eth = data;
	if ((void *)(eth + 1) > data_end)
		return -REASON_INVALID_PACKET_DROPPED;
	proto = eth->h_proto;
	p->l3_off = sizeof(*eth);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		__be16 *tag;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		tag = data + p->l3_off;
		if ((void *)(tag + 2) > data_end)
			return -REASON_INVALID_PACKET_DROPPED;
		proto = tag[1];
		p->l3_off += 4;
		p->vlan_depth++;
	}
	p->eth_proto = proto;

	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(skb, p, data, data_end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(skb, p);
	return 0; /* non-IP: family stays 0 */
}

/*
 * For an ICMP error, reads the embedded header of the packet that caused it into `inner`
 * (addresses, protocol, ports as that packet carried them, and the offsets of its IP and L4
 * headers in the skb). Returns 0 or -reason.
 */
__subprog int parse_icmp_inner(struct __sk_buff *skb, const struct pkt *p,
					    struct pkt *inner)
{
	__u32 off = p->l4_off + 8;
	__u8 h[8]; /* the only stack it needs: callers are deep in the 512-byte limit */

	__builtin_memset(inner, 0, sizeof(*inner));
	inner->family = p->family;
	/* fields are loaded straight into *inner, not through a copy of the header */
	if (p->family == CILIATE_AF_INET) {
		if (bpf_skb_load_bytes(skb, off, h, 1) < 0 || (h[0] & 0x0f) < 5 ||
		    bpf_skb_load_bytes(skb, off + __builtin_offsetof(struct iphdr, protocol),
				       &inner->proto, 1) < 0 ||
		    bpf_skb_load_bytes(skb, off + __builtin_offsetof(struct iphdr, saddr),
				       &inner->saddr.v4, 4) < 0 ||
		    bpf_skb_load_bytes(skb, off + __builtin_offsetof(struct iphdr, daddr),
				       &inner->daddr.v4, 4) < 0)
			return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
		off += (h[0] & 0x0f) * 4;
	} else {
		if (bpf_skb_load_bytes(skb, off + __builtin_offsetof(struct ipv6hdr, nexthdr),
				       &inner->proto, 1) < 0 ||
		    bpf_skb_load_bytes(skb, off + __builtin_offsetof(struct ipv6hdr, saddr),
				       inner->saddr.bytes, 16) < 0 ||
		    bpf_skb_load_bytes(skb, off + __builtin_offsetof(struct ipv6hdr, daddr),
				       inner->daddr.bytes, 16) < 0)
			return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
		off += sizeof(struct ipv6hdr);
	}
	inner->l3_off = (__u16)(p->l4_off + 8);
	inner->l4_off = (__u16)off;
	switch (inner->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (bpf_skb_load_bytes(skb, off, h, sizeof(h)) < 0)
			return -REASON_CT_TRUNCATED_OR_INVALID_HEADER;
		break;
	default:
		return 0;
	}
	if (inner->proto == IPPROTO_ICMP || inner->proto == IPPROTO_ICMPV6) {
		__be16 id;

		__builtin_memcpy(&id, &h[4], 2);
		icmp_ports(inner, h[0], id);
	} else {
		__builtin_memcpy(&inner->sport, &h[0], 2);
		__builtin_memcpy(&inner->dport, &h[2], 2);
	}
	return 0;
}

#endif
