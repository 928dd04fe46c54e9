/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection tracking from a local endpoint's point of view.
 *
 * An entry is keyed by the connection's original tuple plus its scope: CT_OUT when a local
 * endpoint opened it (its egress), CT_IN when a local endpoint accepted it (its ingress). A
 * packet leaving an endpoint is first tried as the reply of an accepted connection (reverse
 * tuple, CT_IN), then as more of an opened one (tuple, CT_OUT); a packet entering an endpoint
 * is tried as the reply of an opened connection (reverse tuple, CT_OUT), then as more of an
 * accepted one (tuple, CT_IN). Reply first: the common case for servers and the cheapest way
 * to let replies bypass policy.
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

static __always_inline int ct_alive(const struct ct_entry *e, __u64 now)
{
	return e->expires_ns > now;
}

/*
 * Looks up the packet from the endpoint's point of view. `egress` is true when the packet
 * leaves the endpoint. Never creates anything.
 */
static __always_inline void ct_lookup(const struct pkt *p, int egress, __u64 now,
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
	r->is_reply = 0;
	e = bpf_map_lookup_elem(&ciliate_ct, &r->key);
	if (e && ct_alive(e, now) &&
	    !(e->tcp_state == CT_TCP_CLOSED && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) ==
						    TCP_FLAG_SYN)) {
		r->entry = e;
		r->status = CT_ESTABLISHED;
		return;
	}
	r->entry = NULL;
	r->status = CT_NEW;
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
