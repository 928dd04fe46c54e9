/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The datapath's clock: CLOCK_MONOTONIC_COARSE in ns (what userspace conntrack GC compares
 * expiries with), read once per packet.
 *
 * bpf_ktime_get_coarse_ns() costs about as much as half a hash lookup per packet, while
 * bpf_jiffies64() is nearly free. The coarse clock only moves when the timekeeping tick
 * advances jiffies, so a per-CPU cache of (jiffies, coarse ns) answers every packet of a tick
 * with the value the coarse clock had at the first packet of that tick on this CPU: at most
 * one tick behind the coarse clock, never ahead of it, never going backwards.
 */
#ifndef CILIATE_BPF_CLOCK_H
#define CILIATE_BPF_CLOCK_H

#include "common.h"

struct clock_cache {
	__u64 jiffies;
	__u64 ns;
};

/* Not pinned (no "ciliate_" prefix): a cache private to each loaded object. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clock_cache);
} clock_cache SEC(".maps");

static __always_inline __u64 clock_now_ns(void)
{
	__u32 zero = 0;
	struct clock_cache *c = bpf_map_lookup_elem(&clock_cache, &zero);
	__u64 j = bpf_jiffies64();

	if (!c)
		return bpf_ktime_get_coarse_ns();
	if (c->jiffies != j) {
		/* ns before jiffies: a program interrupting this one on the CPU sees either the
		 * old pair or a fresh ns under the old jiffies (and refreshes again) */
		c->ns = bpf_ktime_get_coarse_ns();
		asm volatile("" ::: "memory");
		c->jiffies = j;
	}
	return c->ns;
}

#endif
