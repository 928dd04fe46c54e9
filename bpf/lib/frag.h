/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPv4 fragment tracking: only the first fragment carries L4 ports, so its ports are
 * remembered by (src, dst, id, proto) and lent to the later fragments, which then get the same
 * conntrack and policy treatment as the first.
 */
#ifndef CILIATE_BPF_FRAG_H
#define CILIATE_BPF_FRAG_H

#include "common.h"
#include "maps.h"
#include "parse.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_FRAG

/* Returns 0 (ports set for every fragment) or -reason. IPv6 fragments: first only. */
static __always_inline int frag_track(struct pkt *p)
{
	struct frag_key key = {};
	struct frag_ports *ports;

	if (!(p->flags & PKT_F_FRAG))
		return 0;
	if (p->family != CILIATE_AF_INET)
		return (p->flags & PKT_F_FRAG_FIRST) ? 0 : -REASON_IP_FRAGMENTATION_NOT_SUPPORTED;

	key.saddr = p->saddr.v4;
	key.daddr = p->daddr.v4;
	key.id = p->frag_id;
	key.proto = p->proto;
	if (p->flags & PKT_F_FRAG_FIRST) {
		struct frag_ports val = { .sport = p->sport, .dport = p->dport };

		bpf_map_update_elem(&ciliate_frag, &key, &val, BPF_ANY);
		return 0;
	}
	ports = bpf_map_lookup_elem(&ciliate_frag, &key);
	if (!ports)
		return -REASON_FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND;
	p->sport = ports->sport;
	p->dport = ports->dport;
	return 0;
}

#endif
