/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NAT engine (docs/SERVICES.md "NAT"), shared by NodePort SNAT (nodeport.h) and BPF
 * masquerading (netdev.bpf.c): a connection's source becomes this node's address and a port
 * of NAT_PORT_MIN..NAT_PORT_MAX, and its replies get the original destination back.
 *
 * State: two ciliate_nat entries per connection (abi.h). OUT, keyed by the original tuple,
 * gives later packets the same mapping; IN, keyed by the tuple replies arrive with, gives
 * them the original address and port. The IN entry is created first with BPF_NOEXIST: that
 * insert is the port allocation, so two connections can never share a reply tuple. A port
 * is tried NAT_COLLISION_RETRIES times (the original port first when it is in range, as
 * Cilium does), then the packet is dropped with NO_MAPPING_FOR_NAT_MASQUERADE.
 *
 * Protocols: TCP, UDP (ports) and ICMP echo (the identifier plays the port); anything else
 * is not translated (UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE). ICMP errors about a
 * translated connection are translated back (nat_rev_icmp_error4).
 */
#ifndef CILIATE_BPF_NAT_H
#define CILIATE_BPF_NAT_H

#include "common.h"
#include "maps.h"
#include "parse.h"

/* Load-time port range (the loader narrows it in tests that exhaust it). */
extern const volatile __u16 cfg_nat_port_min;
extern const volatile __u16 cfg_nat_port_max;

static __always_inline int nat_proto_ok(const struct pkt *p)
{
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP)
		return !(p->flags & PKT_F_NO_L4);
	return p->proto == IPPROTO_ICMP && !(p->flags & (PKT_F_NO_L4 | PKT_F_ICMP_ERROR)) &&
	       (p->icmp_type == ICMP_ECHO || p->icmp_type == ICMP_ECHOREPLY);
}

/* Offsets of the address and port (ICMP: the echo identifier) a rewrite changes. */
struct nat_offsets {
	__u32 addr;
	__u32 port;
	__u32 l4_csum; /* 0: none to fix */
	__u32 l4_flags;
};

static __always_inline void nat_offsets(const struct pkt *p, int dst, struct nat_offsets *o)
{
	o->addr = p->l3_off + (dst ? __builtin_offsetof(struct iphdr, daddr) :
				     __builtin_offsetof(struct iphdr, saddr));
	o->port = p->l4_off + (dst ? 2 : 0);
	o->l4_csum = 0;
	o->l4_flags = 0;
	if (p->proto == IPPROTO_TCP) {
		o->l4_csum = p->l4_off + 16;
		o->l4_flags = BPF_F_PSEUDO_HDR;
	} else if (p->proto == IPPROTO_UDP) {
		o->l4_csum = p->l4_off + 6;
		o->l4_flags = BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0;
	} else if (p->proto == IPPROTO_ICMP) {
		o->port = p->l4_off + 4; /* the identifier, in requests and replies alike */
		o->l4_csum = p->l4_off + 2;
	}
}

/*
 * Rewrites the source (dst 0) or destination address and port of an IPv4 packet with its
 * checksums; for ICMP echo the port is the identifier (not in any pseudo-header).
 */
static __always_inline int nat_rewrite4(struct __sk_buff *skb, struct pkt *p, int dst,
					__be32 addr, __be16 port)
{
	__be32 old_addr = dst ? p->daddr.v4 : p->saddr.v4;
	__be16 old_port = dst ? p->dport : p->sport;
	__u32 l3_csum = p->l3_off + __builtin_offsetof(struct iphdr, check);
	struct nat_offsets o;

	nat_offsets(p, dst, &o);
	if (p->proto == IPPROTO_ICMP) /* the identifier is in sport (request) or dport */
		old_port = p->icmp_type == ICMP_ECHO ? p->sport : p->dport;
	if (o.l4_csum && o.l4_flags &&
	    bpf_l4_csum_replace(skb, o.l4_csum, old_addr, addr, o.l4_flags | sizeof(addr)) < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L4_CHECKSUM;
	if (o.l4_csum && old_port != port &&
	    bpf_l4_csum_replace(skb, o.l4_csum, old_port, port,
				(o.l4_flags & BPF_F_MARK_MANGLED_0) | sizeof(port)) < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L4_CHECKSUM;
	if (bpf_l3_csum_replace(skb, l3_csum, old_addr, addr, sizeof(addr)) < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L3_CHECKSUM;
	if (bpf_skb_store_bytes(skb, o.addr, &addr, sizeof(addr), 0) < 0 ||
	    bpf_skb_store_bytes(skb, o.port, &port, sizeof(port), 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	if (dst)
		p->daddr.v4 = addr;
	else
		p->saddr.v4 = addr;
	if (p->proto == IPPROTO_ICMP) {
		if (p->icmp_type == ICMP_ECHO)
			p->sport = port;
		else
			p->dport = port;
	} else if (dst) {
		p->dport = port;
	} else {
		p->sport = port;
	}
	return 0;
}

static __always_inline void nat_key_of(struct nat_key *k, const struct pkt *p, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = p->saddr;
	k->daddr = p->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->family = p->family;
	k->dir = dir;
}

static __always_inline __u16 nat_port_pick(__u16 min, __u16 max)
{
	__u32 span = (__u32)max - min + 1;

	return (__u16)(min + bpf_get_prandom_u32() % span);
}

/* Scratch of nat_snat4 (keys and values are too large for the callers' stacks). */
struct nat_scratch {
	struct nat_key out;
	struct nat_key in;
	struct nat_entry out_val;
	struct nat_entry in_val;
	struct pkt inner; /* nat_rev_icmp_error4: the packet an ICMP error quotes */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nat_scratch);
} nat_scratch SEC(".maps");

/*
 * The connection's source NAT mapping to to_addr: the existing one, or one made on its first
 * packet (both directions' entries). *addr and *port get the packet's new source; the packet
 * itself is not touched (nat_snat4 rewrites it; the XDP path rewrites it its own way).
 * flags: NAT_F_*; rev_nat_index: NodePort SNAT's frontend (its replies' new source).
 * Returns 0 or -reason.
 */
static __always_inline int nat_snat4_map(struct pipeline *pl, __be32 to_addr, __u8 flags,
					 __u16 rev_nat_index, __be32 *addr, __be16 *port_out)
{
	struct pkt *p = &pl->pkt;
	struct nat_scratch *sc;
	struct nat_entry *e;
	__u16 min = cfg_nat_port_min, max = cfg_nat_port_max, port;
	__u32 zero = 0;
	int i;

	if (!nat_proto_ok(p))
		return -REASON_UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE;
	sc = bpf_map_lookup_elem(&nat_scratch, &zero);
	if (!sc)
		return -REASON_NO_MAPPING_FOR_NAT_MASQUERADE;
	nat_key_of(&sc->out, p, NAT_DIR_EGRESS);
	e = bpf_map_lookup_elem(&ciliate_nat, &sc->out);
	if (e) {
		e->last_used_ns = pl->now;
		*addr = e->to_addr.v4;
		*port_out = e->to_port;
		return 0;
	}

	/* the reply tuple: from the peer to (to_addr, port) */
	__builtin_memset(&sc->in, 0, sizeof(sc->in));
	sc->in.saddr = p->daddr;
	addr_set_v4(&sc->in.daddr, to_addr);
	sc->in.sport = p->dport;
	sc->in.proto = p->proto;
	sc->in.family = p->family;
	sc->in.dir = NAT_DIR_INGRESS;
	__builtin_memset(&sc->in_val, 0, sizeof(sc->in_val));
	sc->in_val.created_ns = pl->now;
	sc->in_val.last_used_ns = pl->now;
	sc->in_val.to_addr = p->saddr;
	sc->in_val.to_port = p->sport;
	sc->in_val.flags = flags;
	sc->in_val.rev_nat_index = rev_nat_index;
	if (p->proto == IPPROTO_ICMP) { /* the identifier travels in sport of a request */
		sc->in.sport = 0;
		sc->in_val.to_port = p->sport;
	}

	port = bpf_ntohs(p->sport);
	if (port < min || port > max)
		port = nat_port_pick(min, max);
	for (i = 0; i < NAT_COLLISION_RETRIES; i++) {
		sc->in.dport = bpf_htons(port);
		if (bpf_map_update_elem(&ciliate_nat, &sc->in, &sc->in_val, BPF_NOEXIST) == 0)
			break;
		/* taken: by this very connection (its OUT entry was evicted) is fine */
		e = bpf_map_lookup_elem(&ciliate_nat, &sc->in);
		if (e && addr_eq(&e->to_addr, &p->saddr) && e->to_port == p->sport)
			break;
		port = nat_port_pick(min, max);
	}
	if (i == NAT_COLLISION_RETRIES)
		return -REASON_NO_MAPPING_FOR_NAT_MASQUERADE;

	__builtin_memset(&sc->out_val, 0, sizeof(sc->out_val));
	sc->out_val.created_ns = pl->now;
	sc->out_val.last_used_ns = pl->now;
	addr_set_v4(&sc->out_val.to_addr, to_addr);
	sc->out_val.to_port = bpf_htons(port);
	sc->out_val.flags = flags;
	sc->out_val.rev_nat_index = rev_nat_index;
	if (bpf_map_update_elem(&ciliate_nat, &sc->out, &sc->out_val, BPF_ANY) < 0) {
		bpf_map_delete_elem(&ciliate_nat, &sc->in);
		return -REASON_NO_MAPPING_FOR_NAT_MASQUERADE;
	}
	pl->ct_status = CT_NEW; /* a new mapping: its trace event is wanted */
	*addr = to_addr;
	*port_out = bpf_htons(port);
	return 0;
}

/*
 * Source NAT of the packet to to_addr: the connection's mapping, made on its first packet.
 * flags: NAT_F_*; rev_nat_index: NodePort SNAT's frontend (its replies' new source).
 * Returns 0 or -reason.
 */
static __always_inline int nat_snat4(struct pipeline *pl, __be32 to_addr, __u8 flags,
				     __u16 rev_nat_index)
{
	__be32 addr = 0;
	__be16 port = 0;
	int ret;

	ret = nat_snat4_map(pl, to_addr, flags, rev_nat_index, &addr, &port);
	if (ret < 0)
		return ret;
	return nat_rewrite4(pl->skb, &pl->pkt, 0, addr, port);
}

/*
 * A reply of a translated connection: its destination becomes the original source again.
 * Returns 1 (translated; *rev_nat_index and *flags say what it belonged to), 0 (not a NAT
 * reply) or -reason.
 */
/* The IN entry a reply of a translated connection matches (refreshed), or NULL. The packet
 * is not touched. */
static __always_inline struct nat_entry *nat_rev4_lookup(struct pipeline *pl)
{
	struct pkt *p = &pl->pkt;
	struct nat_scratch *sc;
	struct nat_entry *e;
	__u32 zero = 0;

	if (!nat_proto_ok(p))
		return NULL;
	sc = bpf_map_lookup_elem(&nat_scratch, &zero);
	if (!sc)
		return NULL;
	nat_key_of(&sc->in, p, NAT_DIR_INGRESS);
	if (p->proto == IPPROTO_ICMP) {
		if (p->icmp_type != ICMP_ECHOREPLY)
			return NULL;
		sc->in.sport = 0;
	}
	e = bpf_map_lookup_elem(&ciliate_nat, &sc->in);
	if (!e)
		return NULL;
	e->last_used_ns = pl->now;
	pl->ct_status = CT_REPLY;
	return e;
}

static __always_inline int nat_rev4(struct pipeline *pl, __u16 *rev_nat_index, __u8 *flags)
{
	struct nat_entry *e = nat_rev4_lookup(pl);
	int ret;

	if (!e)
		return 0;
	*rev_nat_index = e->rev_nat_index;
	*flags = e->flags;
	ret = nat_rewrite4(pl->skb, &pl->pkt, 1, e->to_addr.v4, e->to_port);
	return ret < 0 ? ret : 1;
}

/*
 * An ICMP error about a translated connection (e.g. port unreachable from the peer): the
 * embedded packet is one this node sent with the translated source, so it is rewritten back
 * to the original source (address, port or echo id, its IP header checksum) and the error is
 * sent to the original source, the ICMP checksum following every changed word. The embedded
 * L4 checksum is left as it is (a receiver does not verify it; it may not even be quoted).
 * Returns 1 (translated), 0 (not about a NAT connection) or -reason.
 */
static __attribute__((noinline, unused)) int nat_rev_icmp_error4(struct __sk_buff *skb,
							     struct pkt *p)
{
	struct nat_scratch *sc;
	struct nat_entry *e;
	struct nat_key *k;
	struct pkt *in;
	__u32 icmp_csum = p->l4_off + 2, inner_csum, inner_port, zero = 0;
	__be32 old_addr, new_addr;
	__be16 old_port, new_port, old_ic, new_ic;

	if (p->proto != IPPROTO_ICMP || !(p->flags & PKT_F_ICMP_ERROR))
		return 0;
	sc = bpf_map_lookup_elem(&nat_scratch, &zero);
	if (!sc)
		return 0;
	in = &sc->inner;
	k = &sc->in;
	if (parse_icmp_inner(skb, p, in) < 0)
		return 0;
	if (in->proto != IPPROTO_TCP && in->proto != IPPROTO_UDP && in->proto != IPPROTO_ICMP)
		return 0;
	/* the reply tuple the embedded packet's answer would have had */
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = in->daddr;
	k->daddr = in->saddr;
	k->sport = in->dport;
	k->dport = in->sport;
	k->proto = in->proto;
	k->family = in->family;
	k->dir = NAT_DIR_INGRESS;
	old_port = in->sport;
	if (in->proto == IPPROTO_ICMP) { /* an echo request: its id plays the port */
		k->sport = 0;
		k->dport = in->sport;
	}
	e = bpf_map_lookup_elem(&ciliate_nat, k);
	if (!e || !addr_eq(&in->saddr, &p->daddr))
		return 0;
	old_addr = in->saddr.v4;
	new_addr = e->to_addr.v4;
	new_port = e->to_port;
	inner_csum = in->l3_off + __builtin_offsetof(struct iphdr, check);
	inner_port = in->l4_off + (in->proto == IPPROTO_ICMP ? 4 : 0);

	/* the embedded packet: source address (and its header checksum), source port */
	if (bpf_skb_load_bytes(skb, inner_csum, &old_ic, 2) < 0 ||
	    bpf_l3_csum_replace(skb, inner_csum, old_addr, new_addr, 4) < 0 ||
	    bpf_skb_load_bytes(skb, inner_csum, &new_ic, 2) < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L3_CHECKSUM;
	if (bpf_skb_store_bytes(skb, in->l3_off + __builtin_offsetof(struct iphdr, saddr),
				&new_addr, 4, 0) < 0 ||
	    bpf_skb_store_bytes(skb, inner_port, &new_port, 2, 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	/* the ICMP checksum covers all of it */
	if (bpf_l4_csum_replace(skb, icmp_csum, old_addr, new_addr, 4) < 0 ||
	    bpf_l4_csum_replace(skb, icmp_csum, old_ic, new_ic, 2) < 0 ||
	    bpf_l4_csum_replace(skb, icmp_csum, old_port, new_port, 2) < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L4_CHECKSUM;
	/* the error goes to the original source */
	if (bpf_l3_csum_replace(skb, p->l3_off + __builtin_offsetof(struct iphdr, check),
				p->daddr.v4, new_addr, 4) < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L3_CHECKSUM;
	if (bpf_skb_store_bytes(skb, p->l3_off + __builtin_offsetof(struct iphdr, daddr),
				&new_addr, 4, 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	p->daddr.v4 = new_addr;
	return 1;
}

#endif
