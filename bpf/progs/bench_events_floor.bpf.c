// SPDX-License-Identifier: Apache-2.0
/*
 * Floors of bench_events_cost (tests/bench/): what the kernel's ring buffer alone costs per
 * record of the datapath's size (struct ciliate_event), measured in the same run as the
 * datapath with and without events. Each program fills a record from the packet's metadata
 * and writes it into its own 1 MiB ring (the size of ciliate_events), then returns TC_ACT_OK:
 *
 *   ring_output1   one record built on the stack, bpf_ringbuf_output() (event_emit's way)
 *   ring_output2   two of them (a denied packet emits a policy verdict and a drop)
 *   ring_reserve2  two records reserved in the ring, filled in place, submitted
 */
#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RING_BYTES);
} bench_ring SEC(".maps");

static __always_inline void fill(struct ciliate_event *ev, const struct __sk_buff *skb, __u8 type)
{
	ev->type = type;
	ev->ifindex = skb->ifindex;
	ev->pkt_len = skb->len;
	ev->saddr.v4 = skb->hash;
	ev->sport = (__be16)skb->protocol;
}

static __always_inline void output(const struct __sk_buff *skb, __u8 type)
{
	struct ciliate_event ev;

	__builtin_memset(&ev, 0, sizeof(ev));
	fill(&ev, skb, type);
	bpf_ringbuf_output(&bench_ring, &ev, sizeof(ev), 0);
}

static __always_inline void reserve(const struct __sk_buff *skb, __u8 type)
{
	struct ciliate_event *ev = bpf_ringbuf_reserve(&bench_ring, sizeof(*ev), 0);

	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	fill(ev, skb, type);
	bpf_ringbuf_submit(ev, 0);
}

SEC("tc")
int ring_output1(struct __sk_buff *skb)
{
	output(skb, EVENT_DROP);
	return TC_ACT_OK;
}

SEC("tc")
int ring_output2(struct __sk_buff *skb)
{
	output(skb, EVENT_POLICY_VERDICT);
	output(skb, EVENT_DROP);
	return TC_ACT_OK;
}

SEC("tc")
int ring_reserve2(struct __sk_buff *skb)
{
	reserve(skb, EVENT_POLICY_VERDICT);
	reserve(skb, EVENT_DROP);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
