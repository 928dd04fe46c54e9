/* SPDX-License-Identifier: Apache-2.0 */
/* ipcache: longest-prefix match from an address to its security identity. */
#ifndef CILIATE_BPF_IPCACHE_H
#define CILIATE_BPF_IPCACHE_H

#include "common.h"
#include "maps.h"

static __always_inline struct ipcache_value *ipcache_lookup(__u8 family,
							    const union ciliate_addr *addr)
{
	struct ipcache_key key = {
		.prefixlen = IPCACHE_PREFIX_BASE + (family == CILIATE_AF_INET ? 32 : 128),
		.family = family,
	};

	key.addr = *addr;
	return bpf_map_lookup_elem(&ciliate_ipcache, &key);
}

/* The identity of an address; addresses the cluster does not know are "world". */
static __always_inline __u32 ipcache_identity(__u8 family, const union ciliate_addr *addr)
{
	struct ipcache_value *v = ipcache_lookup(family, addr);

	return v ? v->identity : IDENTITY_WORLD;
}

#endif
