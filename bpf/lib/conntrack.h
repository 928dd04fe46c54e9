/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection tracking from a local endpoint's point of view.
 *
 * A connection is identified by its original tuple plus its scope: CT_OUT when a local
 * endpoint opened it (its egress), CT_IN when a local endpoint accepted it (its ingress). A
 * packet leaving an endpoint is either the reply of an accepted connection (reverse tuple,
 * CT_IN) or more of an opened one (tuple, CT_OUT); a packet entering an endpoint is either
 * the reply of an opened connection (reverse tuple, CT_OUT) or more of an accepted one (tuple,
 * CT_IN). Those two candidates are one "pair": each is the other reversed with the scope
 * flipped, and at most one member of a pair is ever alive (a member is only created when
 * neither is).
 *
 * So one map slot serves the pair, and any packet of a connection needs exactly one lookup:
 * the slot's key is the member whose source (address, port) orders below its destination
 * (the direction-normalised key), and the entry's CT_F_REVERSED says whether the connection's
 * original tuple is that key or its reverse. A packet is a reply exactly when its candidate
 * stored in the slot differs from the connection's original. Symmetric tuples (same address
 * and port on both sides: a pod talking to its own port) have no order; their members keep
 * their own slots and are looked up as two candidates, reply first.
 *
 * TCP state: SYN -> SYN_SENT; SYN-ACK -> SYN_RECV; other ACKs -> ESTABLISHED; FIN from one side
 * -> CLOSING, from both or RST -> CLOSED (short lifetime). A SYN on a CLOSED entry reopens it
 * as a new connection, so policy is checked again. Expired entries count as absent; userspace
 * garbage-collects them.
 */
#ifndef CILIATE_BPF_CONNTRACK_H
#define CILIATE_BPF_CONNTRACK_H

#include "common.h"
#include "maps.h"
#include "parse.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_CONNTRACK

struct ct_result {
	struct ct_key key;     /* key of the entry found, or of the one to create */
	struct ct_entry *entry; /* NULL when status is CT_NEW */
	__u8 status;           /* enum ct_status */
	__u8 is_reply;         /* packet flows opposite to the original direction */
	__u8 key_flags;        /* CT_F_REVERSED if `key` is this packet's tuple reversed */
};

static __always_inline void ct_key_fill(struct ct_key *k, const struct pkt *p, int reverse,
					__u8 scope)
{
	if (reverse) {
		k->saddr = p->daddr;
		k->daddr = p->saddr;
		k->sport = p->dport;
		k->dport = p->sport;
	} else {
		k->saddr = p->saddr;
		k->daddr = p->daddr;
		k->sport = p->sport;
		k->dport = p->dport;
	}
	k->proto = p->proto;
	k->family = p->family;
	k->scope = scope;
	k->pad = 0;
}

/*
 * Orders the packet's source (address, port) against its destination: <0, 0 or >0. Any
 * total order works as long as userspace (loader/conntrack.c) uses the same one: addresses
 * word by word, then ports, each compared as the unsigned value loaded from memory.
 */
static __always_inline int ct_tuple_order(const struct pkt *p)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 s = p->saddr.v6[i], d = p->daddr.v6[i];

		if (s != d)
			return s < d ? -1 : 1;
		if (p->family == CILIATE_AF_INET)
			break; /* the other words of an IPv4 address are zero */
	}
	if (p->sport != p->dport)
		return (__u16)p->sport < (__u16)p->dport ? -1 : 1;
	return 0;
}

static __always_inline int ct_alive(const struct ct_entry *e, __u64 now)
{
	return e->expires_ns > now;
}

/* A pure SYN on a closed connection opens it again (as a new connection). */
static __always_inline int ct_reopens(const struct ct_entry *e, const struct pkt *p)
{
	return e->tcp_state == CT_TCP_CLOSED &&
	       (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/* Symmetric tuple: two slots, the reply candidate first (see the top of the file). */
static __always_inline void ct_lookup_symmetric(const struct pkt *p, int egress, __u64 now,
						struct ct_result *r)
{
	struct ct_entry *e;

	ct_key_fill(&r->key, p, 1, egress ? CT_IN : CT_OUT);
	e = bpf_map_lookup_elem(&ciliate_ct, &r->key);
	if (e && ct_alive(e, now)) {
		r->entry = e;
		r->status = CT_REPLY;
		r->is_reply = 1;
		return;
	}
	ct_key_fill(&r->key, p, 0, egress ? CT_OUT : CT_IN);
	e = bpf_map_lookup_elem(&ciliate_ct, &r->key);
	if (e && ct_alive(e, now) && !ct_reopens(e, p)) {
		r->entry = e;
		r->status = CT_ESTABLISHED;
		return;
	}
}

/*
 * Looks up the packet from the endpoint's point of view. `egress` is true when the packet
 * leaves the endpoint. Never creates anything.
 */
static __always_inline void ct_lookup(const struct pkt *p, int egress, __u64 now,
				      struct ct_result *r)
{
	__u8 fwd_scope = egress ? CT_OUT : CT_IN;
	int order = ct_tuple_order(p);
	struct ct_entry *e;
	int reversed;

	r->entry = NULL;
	r->status = CT_NEW;
	r->is_reply = 0;
	r->key_flags = 0;
	if (unlikely(order == 0)) {
		ct_lookup_symmetric(p, egress, now, r);
		return;
	}
	/* the slot's key: this packet's tuple (more of a connection in `fwd_scope`), or its
	 * reverse with the scope flipped (a reply) -- whichever is direction-normalised */
	reversed = order > 0;
	ct_key_fill(&r->key, p, reversed, reversed ? fwd_scope ^ 1 : fwd_scope);
	r->key_flags = reversed ? CT_F_REVERSED : 0;
	e = bpf_map_lookup_elem(&ciliate_ct, &r->key);
	if (!e || !ct_alive(e, now))
		return;
	/* a reply when the connection's original is this packet's reverse */
	if (((e->flags & CT_F_REVERSED) != 0) != reversed) {
		r->entry = e;
		r->status = CT_REPLY;
		r->is_reply = 1;
		return;
	}
	if (ct_reopens(e, p))
		return;
	r->entry = e;
	r->status = CT_ESTABLISHED;
}

/* Advances TCP state and lifetime for a packet of a tracked connection. */
static __always_inline void ct_update(struct ct_entry *e, const struct pkt *p, int is_reply,
				      __u64 now)
{
	__u8 f = p->tcp_flags;
	__u64 lifetime = CT_LIFETIME_NONTCP;

	if (is_reply) {
		e->packets_rev++;
		e->bytes_rev += p->len;
		e->tcp_flags_rev |= f;
	} else {
		e->packets_fwd++;
		e->bytes_fwd += p->len;
		e->tcp_flags_fwd |= f;
	}
	if (p->proto == IPPROTO_TCP) {
		if (f & TCP_FLAG_RST) {
			e->tcp_state = CT_TCP_CLOSED;
		} else if ((e->tcp_flags_fwd & TCP_FLAG_FIN) && (e->tcp_flags_rev & TCP_FLAG_FIN)) {
			e->tcp_state = CT_TCP_CLOSED;
		} else if (f & TCP_FLAG_FIN) {
			e->tcp_state = CT_TCP_CLOSING;
		} else if ((f & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
			if (e->tcp_state < CT_TCP_SYN_SENT)
				e->tcp_state = CT_TCP_SYN_SENT;
		} else if (f & TCP_FLAG_SYN) {
			if (e->tcp_state < CT_TCP_SYN_RECV)
				e->tcp_state = CT_TCP_SYN_RECV;
		} else if (e->tcp_state < CT_TCP_ESTABLISHED) {
			e->tcp_state = CT_TCP_ESTABLISHED;
		}
		switch (e->tcp_state) {
		case CT_TCP_SYN_SENT:
		case CT_TCP_SYN_RECV:
			lifetime = CT_LIFETIME_TCP_SYN;
			break;
		case CT_TCP_CLOSED:
			lifetime = CT_LIFETIME_TCP_CLOSE;
			break;
		default:
			lifetime = CT_LIFETIME_TCP;
		}
	}
	e->expires_ns = now + lifetime * NSEC_PER_SEC;
}

/* Creates (or, for a reopened connection, resets) the entry for a new connection. */
static __always_inline int ct_create(const struct ct_key *key, const struct pkt *p,
				     __u32 src_identity, __u32 rule_id, __u8 flags, __u64 now)
{
	struct ct_entry e = {};

	e.created_ns = now;
	e.flags = flags;
	e.src_identity = src_identity;
	e.rule_id = rule_id;
	ct_update(&e, p, 0, now);
	if (bpf_map_update_elem(&ciliate_ct, key, &e, BPF_ANY) < 0)
		return -REASON_CT_MAP_INSERTION_FAILED;
	return 0;
}

/*
 * Is this ICMP error about a connection tracked for the endpoint? The embedded packet
 * travelled the opposite way to the error, so it is looked up in the opposite direction.
 */
static __always_inline int ct_icmp_related(const struct pkt *inner, int egress, __u64 now)
{
	struct ct_result r;

	ct_lookup(inner, !egress, now, &r);
	return r.status != CT_NEW;
}

#endif
