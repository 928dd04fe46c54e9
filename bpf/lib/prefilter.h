/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The XDP prefilter (docs/XDP.md "Prefilter"), in the spirit of Cilium's CiliumXDPPrefilter:
 * packets whose source address falls in a denied prefix (cilium-config key
 * prefilter-deny-cidrs) are dropped at XDP before anything else looks at them, counted and
 * reported as PREFILTER_DENIED. One LPM lookup of the source address in ciliate_prefilter.
 */
#ifndef CILIATE_BPF_PREFILTER_H
#define CILIATE_BPF_PREFILTER_H

#include "common.h"
#include "maps.h"
#include "parse.h"

/* Whether the packet's source is in a denied prefix. */
static __always_inline int prefilter_denied(const struct pkt *p)
{
	struct prefilter_key k = {
		.prefixlen = PREFILTER_PREFIX_BASE + (p->family == CILIATE_AF_INET ? 32 : 128),
		.family = p->family,
	};

	k.addr = p->saddr;
	return bpf_map_lookup_elem(&ciliate_prefilter, &k) != NULL;
}

#endif
