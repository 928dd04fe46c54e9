/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maps as an older agent would have pinned them, for tests/upgrade/run-suite.sh (never part
 * of the datapath):
 *   ciliate_ct     the conntrack map of an agent whose ct_entry ended at `flags` (the
 *                  rev_nat_index member came later) and whose CT_MAX was 4096: the loader
 *                  must migrate it (members appended, max_entries changed) and keep entries;
 *   ciliate_policy a policy map whose value has the same size but other members: the loader
 *                  must replace it, never reuse it on the strength of equal sizes.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ciliate/abi.h"

struct ct_entry_v1 {
	__u64 created_ns;
	__u64 expires_ns;
	__u64 packets_fwd;
	__u64 bytes_fwd;
	__u64 packets_rev;
	__u64 bytes_rev;
	__u32 src_identity;
	union {
		__u32 rule_id;
		__u32 backend_id;
	};
	__u8 tcp_state;
	__u8 tcp_flags_fwd;
	__u8 tcp_flags_rev;
	__u8 flags;
};

struct policy_value_v0 {
	__u32 verdict; /* not POLICY_F_* flags: another meaning at the same offset */
	__u32 rule_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ct_key);
	__type(value, struct ct_entry_v1);
} ciliate_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_key);
	__type(value, struct policy_value_v0);
} ciliate_policy SEC(".maps");

/* a program so that the object loads with its maps */
SEC("tc")
int old_layout_keep(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
