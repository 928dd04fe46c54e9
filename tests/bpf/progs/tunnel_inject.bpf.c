// SPDX-License-Identifier: Apache-2.0
/*
 * Test-only: BPF_PROG_TEST_RUN cannot attach tunnel metadata to a packet, so this program
 * does what the VXLAN device does on receive: it sets the tunnel key (VNI and remote from its
 * globals) and tail-calls the program in slot 0 of `next` (from-overlay) on the same skb.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} next SEC(".maps");

__u32 inject_vni;
__u32 inject_remote; /* host order, as the helper takes it */

SEC("tc")
int inject_tunnel_key(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};

	key.tunnel_id = inject_vni;
	/* a received packet's key holds the sender as the outer source, which
	 * bpf_skb_get_tunnel_key reports as remote: set through local_ipv4 here */
	key.local_ipv4 = inject_remote;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return 100; /* no such TC verdict: the test reports it */
	bpf_tail_call(skb, &next, 0);
	return 101; /* the tail call failed */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
