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

/* The endpoint a veth serves: its direct-mapped slot when it holds this ifindex (the common
 * case, an inlined array access), else the authoritative hash (abi.h, lxc_slot). */
static __always_inline struct endpoint_info *endpoint_by_ifindex(__u32 ifindex)
{
	__u32 slot = ifindex & (LXC_SLOTS - 1);
	struct lxc_slot *s = bpf_map_lookup_elem(&ciliate_lxc_slots, &slot);

	if (likely(s && s->ifindex == ifindex && ifindex))
		return &s->info;
	return bpf_map_lookup_elem(&ciliate_lxc, &ifindex);
}

#endif
