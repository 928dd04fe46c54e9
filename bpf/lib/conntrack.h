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
 * (the direction-normalised key, see ct_side), and the entry's CT_F_REVERSED says whether the
 * connection's original tuple is that key or its reverse. A packet is a reply exactly when
 * its candidate stored in the slot differs from the connection's original. Symmetric tuples
 * (sides that tie: a pod talking to its own address and port, or IPv6 sides that fold alike)
 * have no order; their members keep their own slots, looked up as two candidates, reply
 * first -- exactly the rule from before normalisation, which single slots reproduce.
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

/*
 * One side of a tuple as a number: the address folded to 32 bits, above the port. Slots are
 * ordered by comparing the two sides; userspace (loader/conntrack.c ct_side) computes the same
 * number. An IPv4 address is its own fold, so IPv4 sides tie only when equal; distinct IPv6
 * sides that fold alike merely take the two-slot path of symmetric tuples, from either
 * direction alike.
 */
static __always_inline __u64 ct_side(const union ciliate_addr *a, __be16 port)
{
	__u32 fold = a->v6[0] ^ a->v6[1] ^ a->v6[2] ^ a->v6[3];

	return ((__u64)fold << 16) | (__u16)port;
}

/*
 * Fills `k` with the packet's tuple, reversed when rev is 1, without branching: the verifier
 * then explores the rest of the program once, not once per orientation (rev is opaque to it
 * and to the compiler, which would otherwise turn the masks back into branches).
 */
static __always_inline void ct_key_fill_masked(struct ct_key *k, const struct pkt *p, __u32 rev,
					       __u8 scope)
{
	__u32 m = -rev;
	__u32 pm;

	asm volatile("" : "+r"(m));
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 x = (p->saddr.v6[i] ^ p->daddr.v6[i]) & m;

		k->saddr.v6[i] = p->saddr.v6[i] ^ x;
		k->daddr.v6[i] = p->daddr.v6[i] ^ x;
	}
	pm = ((__u32)p->sport ^ (__u32)p->dport) & m;
	k->sport = (__be16)((__u32)p->sport ^ pm);
	k->dport = (__be16)((__u32)p->dport ^ pm);
	k->proto = p->proto;
	k->family = p->family;
	k->scope = scope ^ (__u8)rev;
	k->pad = 0;
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

/*
 * Looks up the packet from the endpoint's point of view. `egress` is true when the packet
 * leaves the endpoint. Never creates anything.
 */
static __always_inline void ct_lookup(const struct pkt *p, int egress, __u64 now,
				      struct ct_result *r)
{
	__u64 src = ct_side(&p->saddr, p->sport), dst = ct_side(&p->daddr, p->dport);
	int symmetric = src == dst;
	struct ct_entry *e;
	__u32 reversed;

	r->entry = NULL;
	r->status = CT_NEW;
	r->is_reply = 0;
	/* The slot's key: this packet's tuple (more of a connection in the forward scope), or
	 * its reverse with the scope flipped (a reply), whichever has the lower source; the
	 * sides are below 2^48, so the difference's sign says which. A symmetric tuple has a
	 * slot per scope: the reply's first, then the forward one (a second round). */
	reversed = symmetric ? 1 : (dst - src) >> 63;
	for (int round = 0; round < 2; round++) {
		asm volatile("" : "+r"(reversed));
		ct_key_fill_masked(&r->key, p, reversed, egress ? CT_OUT : CT_IN);
		r->key_flags = (__u8)(reversed * CT_F_REVERSED);
		e = bpf_map_lookup_elem(&ciliate_ct, &r->key);
		if (e && ct_alive(e, now)) {
			/* a reply when the connection's original is this packet's reverse */
			if ((e->flags & CT_F_REVERSED) != r->key_flags) {
				r->entry = e;
				r->status = CT_REPLY;
				r->is_reply = 1;
				return;
			}
			if (ct_reopens(e, p))
				return;
			r->entry = e;
			r->status = CT_ESTABLISHED;
			return;
		}
		if (!symmetric)
			return;
		reversed = 0;
	}
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
				     __u32 src_identity, __u32 rule_id, __u8 flags, __u64 now,
				     __u16 rev_nat_index)
{
	struct ct_entry e = {};

	e.created_ns = now;
	e.rev_nat_index = rev_nat_index;
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
__attribute__((noinline)) int ct_icmp_related(const struct pkt *inner, int egress, __u64 now)
{
	struct ct_result r;

	if (!inner)
		return 0;
	ct_lookup(inner, !egress, now, &r);
	return r.status != CT_NEW;
}

#endif
