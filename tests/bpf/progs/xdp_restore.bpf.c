// SPDX-License-Identifier: Apache-2.0
/*
 * Bench-only (tests/bench/bench_xdp.c): live-frame BPF_PROG_TEST_RUN recycles frame pages
 * without restoring their bytes, so a frame xdp_netdev translated could come back translated.
 * This program writes the flow's original frame (by its TCP source port, which NodePort SNAT
 * keeps) back over the frame and tail-calls slot 0 of `next` (xdp_netdev, or a floor for the
 * cost of the restore itself).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define FRAME_BYTES 54 /* Ethernet + IPv4 + TCP, no options */
#define FLOWS 16

struct frame_copy {
	__u8 b[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOWS);
	__type(key, __u32);
	__type(value, struct frame_copy);
} originals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} next SEC(".maps");

SEC("xdp")
int xdp_restore(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct frame_copy *o;
	__u32 k;

	if (data + FRAME_BYTES > data_end)
		return XDP_ABORTED;
	k = ((__u8 *)data)[35] & (FLOWS - 1);
	o = bpf_map_lookup_elem(&originals, &k);
	if (!o)
		return XDP_ABORTED;
	__builtin_memcpy(data, o->b, FRAME_BYTES);
	bpf_tail_call(ctx, &next, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
