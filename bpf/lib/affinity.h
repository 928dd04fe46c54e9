/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sessionAffinity: ClientIP (docs/SERVICES.md, "Session affinity"): new connections of a
 * client address to a frontend (rev_nat_index) go to the backend its previous ones went to,
 * while that was less than the service's timeout ago.
 *
 * - ciliate_lb_affinity (LRU): (client address, rev_nat_index, family) -> (last_used_ns,
 *   backend_id). The timeout, in seconds, is slot 0's backend_id (LB_SVC_F_AFFINITY).
 * - An entry is sticky for [last_used, last_used + timeout): it has expired when
 *   last_used + timeout <= now, and is then deleted (a new backend is chosen and recorded).
 * - It is also deleted when its backend no longer has a slot in the frontend entry the
 *   packet looked up: the agent keeps one ciliate_lb_affinity_match pair (backend_id,
 *   rev_nat_index, scope) per slot of an affinity service; a backend that left the service
 *   or is terminating has none.
 * - A hit sets last_used = now. The clock is the packet's (pl->now, clock.h), in ns.
 */
#ifndef CILIATE_BPF_AFFINITY_H
#define CILIATE_BPF_AFFINITY_H

#include "common.h"
#include "maps.h"
#include "parse.h"

/* Keys and the new value of one pick, one per CPU (not pinned; the pod programs' stack is
 * nearly full). */
struct affinity_scratch {
	struct lb_affinity_key key;
	struct lb_affinity_match match;
	struct lb_affinity_value val;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct affinity_scratch);
} affinity_scratch SEC(".maps");

static __always_inline struct affinity_scratch *affinity_scratch_get(const struct pkt *p,
								     const struct lb_service *svc)
{
	__u32 zero = 0;
	struct affinity_scratch *as = bpf_map_lookup_elem(&affinity_scratch, &zero);

	if (!as)
		return NULL;
	__builtin_memset(&as->key, 0, sizeof(as->key));
	as->key.client = p->saddr;
	as->key.rev_nat_index = svc->rev_nat_index;
	as->key.family = p->family;
	return as;
}

/*
 * The backend id the client's affinity entry for this frontend names, or 0 (none, expired,
 * or its backend has no slot in the entry of `scope` any more: then the entry is deleted).
 * A hit refreshes last_used.
 */
static __always_inline __u32 affinity_backend_id(struct affinity_scratch *as,
						 const struct lb_service *svc, __u8 scope,
						 __u64 now)
{
	struct lb_affinity_value *v = bpf_map_lookup_elem(&ciliate_lb_affinity, &as->key);
	__u64 timeout_ns = (__u64)svc->backend_id * NSEC_PER_SEC;

	if (!v)
		return 0;
	if (v->last_used_ns + timeout_ns <= now)
		goto stale;
	__builtin_memset(&as->match, 0, sizeof(as->match));
	as->match.backend_id = v->backend_id;
	as->match.rev_nat_index = svc->rev_nat_index;
	as->match.scope = scope;
	if (!bpf_map_lookup_elem(&ciliate_lb_affinity_match, &as->match))
		goto stale;
	v->last_used_ns = now;
	return v->backend_id;
stale:
	bpf_map_delete_elem(&ciliate_lb_affinity, &as->key);
	return 0;
}

/* Records the client's backend for this frontend (a new pick), last_used = now. */
static __always_inline void affinity_record(struct affinity_scratch *as, __u32 backend_id,
					    __u64 now)
{
	__builtin_memset(&as->val, 0, sizeof(as->val));
	as->val.last_used_ns = now;
	as->val.backend_id = backend_id;
	bpf_map_update_elem(&ciliate_lb_affinity, &as->key, &as->val, BPF_ANY);
}

#endif
