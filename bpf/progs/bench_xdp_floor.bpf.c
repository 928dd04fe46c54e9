// SPDX-License-Identifier: Apache-2.0
/*
 * XDP floors for tests/bench/bench_xdp.c, measured in the same run as the real program:
 * XDP_DROP (the cheapest thing an XDP program can do with a frame) and XDP_TX of the frame
 * unchanged (the cost of sending it back out, without any translation). xdp_sink drops what
 * the benchmarked device transmits to its veth peer (a veth only accepts XDP frames when
 * its peer runs XDP).
 */
#include "lib/common.h"

SEC("xdp")
int xdp_drop_floor(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_tx_floor(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int xdp_sink(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
