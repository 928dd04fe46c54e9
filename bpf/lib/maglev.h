/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maglev backend selection (docs/SERVICES.md, "Maglev in the datapath"): a new connection to
 * a service flagged LB_SVC_F2_MAGLEV takes the backend id at entry (hash % M) of the table
 * the agent computed for its frontend entry (datapath/lb/maglev.c: identical on every node
 * for the same backends).
 *
 * The hash covers the client's address, both ports and the protocol but not the destination
 * address, as Cilium's: the same client tuple sent to another address of the same service
 * (ClusterIP, externalIP, NodePort: each its own identical table) picks the same backend.
 * With ClientIP affinity the source port is left out (Cilium does the same): every
 * connection of a client hashes alike.
 *
 * The table lives in ciliate_lb_maglev under LB_MAGLEV_KEY(rev_nat_index, scope), an array
 * whose first LB_MAGLEV_HDR words hold M and the hash seeds (abi.h): a table arrives with its
 * own M, so the table size can change while the programs run.
 */
#ifndef CILIATE_BPF_MAGLEV_H
#define CILIATE_BPF_MAGLEV_H

#include "common.h"
#include "maps.h"
#include "parse.h"

static __always_inline __u32 maglev_rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

/*
 * The hash of three words: Bob Jenkins' lookup3 final mixing (public domain), started as
 * lookup3's hashword() does for three words (0xdeadbeef + 12 + seed) — the value Linux's
 * jhash_3words() gives. Written out here; datapath/lb/maglev.c has the userspace twin.
 */
static __always_inline __u32 maglev_jhash3(__u32 a, __u32 b, __u32 c, __u32 seed)
{
	__u32 init = 0xdeadbeef + (3u << 2) + seed;

	a += init;
	b += init;
	c += init;
	c ^= b;
	c -= maglev_rol32(b, 14);
	a ^= c;
	a -= maglev_rol32(c, 11);
	b ^= a;
	b -= maglev_rol32(a, 25);
	c ^= b;
	c -= maglev_rol32(b, 16);
	a ^= c;
	a -= maglev_rol32(c, 4);
	b ^= a;
	b -= maglev_rol32(a, 14);
	c ^= b;
	c -= maglev_rol32(b, 24);
	return c;
}

/* The IPv4 tuple hash: (saddr, dport << 16 | sport, proto), the address and ports as they
 * are in the packet (network order) read as native words. */
static __always_inline __u32 maglev_hash4(const struct pkt *p, __be16 sport, __u32 seed)
{
	return maglev_jhash3(p->saddr.v4, ((__u32)p->dport << 16) | (__u32)sport, p->proto, seed);
}

/*
 * The backend id the table of (svc->rev_nat_index, scope) names for this packet, or 0: no
 * table (not written yet, or the service has no selectable backend), an empty header.
 */
static __always_inline __u32 maglev_backend_id(const struct pkt *p, const struct lb_service *svc,
					       __u8 scope)
{
	__u32 key = LB_MAGLEV_KEY(svc->rev_nat_index, scope);
	__u32 idx = LB_MAGLEV_HDR_SIZE, m, seed;
	__u32 *w;
	void *table;

	if (p->family != CILIATE_AF_INET)
		return 0;
	table = bpf_map_lookup_elem(&ciliate_lb_maglev, &key);
	if (!table)
		return 0;
	w = bpf_map_lookup_elem(table, &idx);
	if (!w || !*w)
		return 0;
	m = *w;
	idx = LB_MAGLEV_HDR_SEED4;
	w = bpf_map_lookup_elem(table, &idx);
	if (!w)
		return 0;
	seed = *w;
	/* entry i of the table is word LB_MAGLEV_HDR + i; a word past the array is NULL */
	idx = LB_MAGLEV_HDR +
	      maglev_hash4(p, (svc->flags & LB_SVC_F_AFFINITY) ? 0 : p->sport, seed) % m;
	w = bpf_map_lookup_elem(table, &idx);
	return w ? *w : 0;
}

#endif
