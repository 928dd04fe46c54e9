// SPDX-License-Identifier: Apache-2.0
/*
 * Traffic generator of the event throughput bench (tests/bench/bench_events_rate.sh). The
 * bench runs it with BPF_PROG_TEST_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES)
 * inside a pod's network namespace with the pod's eth0 (gen_ifindex) as the ingress device,
 * so XDP_TX transmits each frame out of eth0 and it arrives at the host-side veth's TC
 * ingress (from-container) like a packet the pod sent. gen_drop set: the frame is dropped
 * instead (the generator's own cost).
 *
 * The frame userspace supplies is Ethernet + IPv4 (no options) + UDP with a zero checksum;
 * every run gives it the next source port (gen_sport_base + seq % gen_sport_span), so every
 * packet is the first of a new flow.
 *
 * The bench also attaches this program to the pod's `lo` for the duration of a burst (each
 * test run would otherwise add it to and remove it from the kernel's XDP dispatcher, a text
 * patch and an expedited RCU grace period per run: ~1.5 ms and IPIs to every CPU). Anything
 * that is not a test run on gen_ifindex passes untouched.
 */
#include "lib/common.h"

const volatile __u32 gen_ifindex = 0;
const volatile __u8 gen_drop = 0;
const volatile __u16 gen_sport_base = 1024;
const volatile __u16 gen_sport_span = 64512;

__u64 gen_seq; /* frames rewritten (one CPU runs the generator: no atomics needed) */

SEC("xdp")
int gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 n;

	if (ctx->ingress_ifindex != gen_ifindex || !gen_ifindex)
		return XDP_PASS;
	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_ABORTED;
	n = (__u32)gen_seq++;
	udp->source = bpf_htons((__u16)(gen_sport_base + n % (gen_sport_span ? gen_sport_span : 1)));
	udp->check = 0;
	return gen_drop ? XDP_DROP : XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
