// SPDX-License-Identifier: Apache-2.0
/*
 * Benchmark floors, measured in the same run as the real hooks (tests/bench): the cost of
 * running any TC program at all, and of that plus one hash-map lookup.
 */
#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} bench_hash SEC(".maps");

SEC("tc")
int bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

/* One hash lookup keyed from packet bytes, so it cannot be folded away. */
SEC("tc")
int bench_one_lookup(struct __sk_buff *skb)
{
	struct ct_key key = {};

	key.sport = (__be16)skb->len;
	key.proto = (__u8)skb->protocol;
	return bpf_map_lookup_elem(&bench_hash, &key) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
