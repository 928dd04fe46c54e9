/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service load balancing (kube-proxy replacement, docs/SERVICES.md): a packet a pod sends to
 * a service frontend (ClusterIP, externalIP, LoadBalancer IP, a NodePort of a node) is
 * translated to one of the service's backends before policy and conntrack see it, so policy
 * applies to the backend and conntrack tracks the backend tuple; replies get the frontend's
 * address and port back where they reach the client (to-container).
 *
 * - The frontend: ciliate_lb_services, slot 0 of (address, port, protocol); pods use the
 *   internal scope of services with two scopes.
 * - The backend: a new connection picks one (lb_pick: ClientIP affinity, then the service's
 *   Maglev table or a random slot 1..count); its CT_SVC entry (the
 *   tuple before translation) remembers the backend, so later packets keep it even when the
 *   backend set changes, and a terminating backend keeps its connections (it is in the
 *   backend map but in no slot). No slot → SERVICE_BACKEND_NOT_FOUND.
 * - Reverse NAT: the connection's conntrack entry (the backend tuple) carries the frontend's
 *   rev_nat_index; a reply to the client is rewritten from ciliate_lb_revnat.
 * IPv4 only for now (the maps carry a family for IPv6).
 */
#ifndef CILIATE_BPF_LB_H
#define CILIATE_BPF_LB_H

#include "affinity.h"
#include "common.h"
#include "conntrack.h"
#include "events.h"
#include "maglev.h"
#include "maps.h"
#include "parse.h"

/* Scratch space of lb_translate(), one per CPU (not pinned: private to the object). */
struct lb_scratch {
	struct lb_key fk;
	struct ct_key ck;
	struct ct_entry fresh;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_scratch);
} lb_scratch SEC(".maps");

static __always_inline int lb_translatable(const struct pkt *p)
{
	return p->family == CILIATE_AF_INET && !(p->flags & (PKT_F_NO_L4 | PKT_F_ICMP_ERROR)) &&
	       (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP ||
		p->proto == IPPROTO_SCTP);
}

/* The frontend the packet is addressed to (slot 0), or NULL. */
static __always_inline struct lb_service *lb_frontend(const struct pkt *p, struct lb_key *k)
{
	struct lb_service *svc;

	__builtin_memset(k, 0, sizeof(*k));
	k->addr = p->daddr;
	k->dport = p->dport;
	k->proto = p->proto;
	k->family = p->family;
	svc = bpf_map_lookup_elem(&ciliate_lb_services, k);
	if (svc && (svc->flags2 & LB_SVC_F2_TWO_SCOPES)) {
		/* in-cluster clients use the internal scope (internalTrafficPolicy) */
		k->scope = LB_SCOPE_INTERNAL;
		svc = bpf_map_lookup_elem(&ciliate_lb_services, k) ?: svc;
	}
	return svc;
}

static __always_inline void lb_ct_svc_key(struct ct_key *k, const struct pkt *p)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = p->saddr;
	k->daddr = p->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->family = p->family;
	k->scope = CT_SVC;
}

static __always_inline void lb_ct_svc_refresh(struct ct_entry *e, const struct pkt *p,
					      __u64 now)
{
	__u64 lifetime = CT_LIFETIME_NONTCP;

	if (p->proto == IPPROTO_TCP)
		lifetime = (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) ? CT_LIFETIME_TCP_CLOSE :
									     CT_LIFETIME_TCP;
	e->expires_ns = now + lifetime * 1000000000ULL;
	e->packets_fwd++;
	e->bytes_fwd += p->len;
}

/*
 * A backend for a new connection to frontend svc (k: its slot-0 key, with the scope looked
 * up): the client's ClientIP-affinity backend while it is valid (affinity.h), else the
 * service's Maglev table entry for the tuple (LB_SVC_F2_MAGLEV, maglev.h), else a random
 * slot (1 + prandom % count; also a Maglev service whose table is not there). A new pick of
 * an affinity service is recorded for the client. NULL: no usable backend.
 */
static __always_inline struct lb_backend *lb_pick(struct pipeline *pl,
						  const struct lb_service *svc, struct lb_key *k,
						  __u32 *backend_id)
{
	const struct pkt *p = &pl->pkt;
	struct affinity_scratch *as = NULL;
	struct lb_service *slot;
	struct lb_backend *be;
	__u32 id = 0;

	if (!svc->count)
		return NULL;
	if (svc->flags & LB_SVC_F_AFFINITY) {
		as = affinity_scratch_get(p, svc);
		if (as)
			id = affinity_backend_id(as, svc, k->scope, pl->now);
		if (id) {
			*backend_id = id;
			be = bpf_map_lookup_elem(&ciliate_lb_backends, backend_id);
			if (be)
				return be;
		}
	}
	id = 0;
	if (svc->flags2 & LB_SVC_F2_MAGLEV)
		id = maglev_backend_id(p, svc, k->scope);
	if (!id) {
		/* k is the frontend's key: its slot field names the backend slot for the lookup */
		k->backend_slot = (__u16)(bpf_get_prandom_u32() % svc->count) + 1;
		slot = bpf_map_lookup_elem(&ciliate_lb_services, k);
		if (!slot)
			return NULL;
		id = slot->backend_id;
	}
	*backend_id = id;
	be = bpf_map_lookup_elem(&ciliate_lb_backends, backend_id);
	if (be && as)
		affinity_record(as, id, pl->now);
	return be;
}

/* Rewrites the destination (dst) or source address and port of an IPv4 packet, with the
 * IPv4 and L4 checksums. */
static __always_inline int lb_rewrite4(struct __sk_buff *skb, struct pkt *p, int dst,
				       __be32 addr, __be16 port)
{
	__u32 addr_off = p->l3_off + (dst ? __builtin_offsetof(struct iphdr, daddr) :
					    __builtin_offsetof(struct iphdr, saddr));
	__u32 port_off = p->l4_off + (dst ? 2 : 0);
	__u32 l3_csum = p->l3_off + __builtin_offsetof(struct iphdr, check);
	__be32 old_addr = dst ? p->daddr.v4 : p->saddr.v4;
	__be16 old_port = dst ? p->dport : p->sport;
	__u32 l4_csum = 0, mangled = 0;

	if (p->proto == IPPROTO_TCP) {
		l4_csum = p->l4_off + 16;
	} else if (p->proto == IPPROTO_UDP) {
		l4_csum = p->l4_off + 6;
		mangled = BPF_F_MARK_MANGLED_0; /* a zero UDP checksum stays "none" */
	}
	if (l4_csum &&
	    (bpf_l4_csum_replace(skb, l4_csum, old_addr, addr,
				 BPF_F_PSEUDO_HDR | mangled | sizeof(addr)) < 0 ||
	     bpf_l4_csum_replace(skb, l4_csum, old_port, port, mangled | sizeof(port)) < 0))
		return -REASON_ERROR_WHILE_CORRECTING_L4_CHECKSUM;
	if (bpf_l3_csum_replace(skb, l3_csum, old_addr, addr, sizeof(addr)) < 0)
		return -REASON_ERROR_WHILE_CORRECTING_L3_CHECKSUM;
	if (bpf_skb_store_bytes(skb, addr_off, &addr, sizeof(addr), 0) < 0 ||
	    bpf_skb_store_bytes(skb, port_off, &port, sizeof(port), 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	if (dst) {
		p->daddr.v4 = addr;
		p->dport = port;
	} else {
		p->saddr.v4 = addr;
		p->sport = port;
	}
	return 0;
}

/*
 * The backend of the packet's connection to frontend svc (sc->fk its key): the one its
 * CT_SVC entry remembers, else a new pick recorded there. NULL: no usable backend.
 */
static __always_inline struct lb_backend *lb_select(struct pipeline *pl,
						    const struct lb_service *svc,
						    struct lb_scratch *sc)
{
	struct pkt *p = &pl->pkt;
	struct lb_backend *be = NULL;
	struct ct_entry *e;
	__u32 backend_id = 0;

	lb_ct_svc_key(&sc->ck, p);
	e = bpf_map_lookup_elem(&ciliate_ct, &sc->ck);
	if (e && ct_alive(e, pl->now) && !ct_reopens(e, p)) {
		backend_id = e->backend_id;
		be = bpf_map_lookup_elem(&ciliate_lb_backends, &backend_id);
		if (be)
			lb_ct_svc_refresh(e, p, pl->now);
	}
	if (be)
		return be;
	/* a new connection, or its backend left */
	be = lb_pick(pl, svc, &sc->fk, &backend_id);
	if (!be)
		return NULL;
	__builtin_memset(&sc->fresh, 0, sizeof(sc->fresh));
	sc->fresh.created_ns = pl->now;
	sc->fresh.backend_id = backend_id;
	sc->fresh.rev_nat_index = svc->rev_nat_index;
	lb_ct_svc_refresh(&sc->fresh, p, pl->now);
	if (bpf_map_update_elem(&ciliate_ct, &sc->ck, &sc->fresh, BPF_ANY) < 0)
		return NULL;
	return be;
}

static __always_inline struct lb_scratch *lb_scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&lb_scratch, &zero);
}

/*
 * Hairpin: a pod reaching itself through a service. The connection is tracked as the pod
 * talking to itself (A:c -> A:p), but the packet cannot reach the pod with its own address
 * as source (its kernel drops it as a martian): to-container gives the request the source
 * LB_HAIRPIN_ADDR (Cilium's IPV4_LOOPBACK default), the pod answers that address, and
 * lb_translate() gives the answer the pod's address back before conntrack sees it, so the
 * reply is the reverse of the tracked tuple and returns to the pod like any same-node reply,
 * where lb_reverse() makes its source the frontend.
 */
#define LB_HAIRPIN_ADDR bpf_htonl(0xa9fe2a01) /* 169.254.42.1 */

/*
 * A pod's packet to a service frontend: translated to its connection's backend (a new
 * connection picks one). Sets pl->rev_nat_index for the connection's conntrack entry. A
 * hairpin answer (to LB_HAIRPIN_ADDR) goes to `self`, the sending pod's address.
 * Returns 0 (translated, or not a service) or a negative drop reason. Its keys and the new
 * conntrack entry live in a per-CPU scratch (the pod programs' stack is nearly full).
 */
static __always_inline int lb_translate(struct pipeline *pl, const union ciliate_addr *self)
{
	struct pkt *p = &pl->pkt;
	struct lb_service *svc;
	struct lb_backend *be;
	struct lb_scratch *sc;
	__be32 addr;
	__be16 port;

	if (!lb_translatable(p))
		return 0;
	if (p->daddr.v4 == LB_HAIRPIN_ADDR) {
		addr = self->v4;
		port = p->dport;
	} else {
		sc = lb_scratch_get();
		if (!sc)
			return 0;
		svc = lb_frontend(p, &sc->fk);
		if (!svc)
			return 0;
		be = lb_select(pl, svc, sc);
		if (!be)
			return -REASON_SERVICE_BACKEND_NOT_FOUND;
		pl->rev_nat_index = svc->rev_nat_index;
		addr = be->addr.v4;
		port = be->port;
	}
	return lb_rewrite4(pl->skb, p, 1, addr, port);
}

/* In to-container: a hairpin request (a service connection from the pod to itself) gets
 * LB_HAIRPIN_ADDR as its source. */
static __always_inline int lb_hairpin_request(struct pipeline *pl, const struct ct_entry *e)
{
	struct pkt *p = &pl->pkt;

	if (!e || !e->rev_nat_index || p->family != CILIATE_AF_INET ||
	    p->saddr.v4 != p->daddr.v4)
		return 0;
	return lb_rewrite4(pl->skb, p, 0, LB_HAIRPIN_ADDR, p->sport);
}

/* A reply on a service connection (its conntrack entry e carries the frontend): the source
 * becomes the frontend's address and port again. */
static __always_inline int lb_reverse(struct pipeline *pl, const struct ct_entry *e)
{
	__u32 index = e->rev_nat_index;
	struct lb_reverse_nat *rn;

	if (!index || pl->pkt.family != CILIATE_AF_INET)
		return 0;
	rn = bpf_map_lookup_elem(&ciliate_lb_revnat, &index);
	if (!rn) /* the service is gone: the client's connection is too */
		return -REASON_SERVICE_BACKEND_NOT_FOUND;
	return lb_rewrite4(pl->skb, &pl->pkt, 0, rn->addr.v4, rn->port);
}

#endif
