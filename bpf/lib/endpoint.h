/* SPDX-License-Identifier: Apache-2.0 */
/* Local endpoints (pods on this node): by IP and by host-side veth ifindex. */
#ifndef CILIATE_BPF_ENDPOINT_H
#define CILIATE_BPF_ENDPOINT_H

#include "common.h"
#include "maps.h"

static __always_inline struct endpoint_info *endpoint_by_addr(__u8 family,
							      const union ciliate_addr *addr)
{
	struct endpoint_key key = { .family = family };

	key.addr = *addr;
	return bpf_map_lookup_elem(&ciliate_endpoints, &key);
}

/*
 * Copies the endpoint a veth serves into *out: from its direct-mapped slot when that holds this
 * ifindex (the common case, an inlined array access), else from the authoritative hash (abi.h,
 * lxc_slot). Returns 0, or -1 when the veth serves no endpoint. A copy, because the two
 * sources are different maps: pointers into either would make the verifier walk the rest of
 * the program once for each.
 */
static __always_inline int endpoint_by_ifindex(__u32 ifindex, struct endpoint_info *out)
{
	__u32 slot = ifindex & (LXC_SLOTS - 1);
	struct lxc_slot *s = bpf_map_lookup_elem(&ciliate_lxc_slots, &slot);
	struct endpoint_info *ep;

	if (likely(s && s->ifindex == ifindex && ifindex)) {
		*out = s->info;
		return 0;
	}
	ep = bpf_map_lookup_elem(&ciliate_lxc, &ifindex);
	if (!ep)
		return -1;
	*out = *ep;
	return 0;
}

#endif
