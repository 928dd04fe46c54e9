/* SPDX-License-Identifier: Apache-2.0 */
/*
 * XDP and TC NodePort paths against their floors, side by side in one run (issue 11 item 6;
 * docs/PERFORMANCE.md "XDP"). The process runs in a network namespace of its own
 * (replay/xdp_fabric.c: fab0 with the node's address, the other node and the client as
 * neighbours, forwarding on) so that bpf_fib_lookup() answers as on a node; fab0's veth
 * peer fab1 runs xdp_sink, which drops what fab0 transmits.
 *
 * Live frames (BPF_F_TEST_XDP_LIVE_FRAMES: the frames are really dropped or transmitted out
 * of fab0), `repeat` frames per call, timed by the wall clock around the call:
 *   xdp-drop-floor   a program returning XDP_DROP
 *   xdp-tx-floor     a program returning XDP_TX (the frame goes out of fab0 unchanged)
 *   prefilter-drop   xdp_netdev, source in a denied prefix: parse, node config, one LPM
 *                    lookup, XDP_DROP (metric; the drop event is aggregated per flow)
 *   xdp-nodeport     xdp_netdev, the ACK of an established NodePort connection to a remote
 *                    backend: frontend, CT_SVC hit, NAT hit, FIB lookup, rewrite, XDP_TX;
 *                    entered through xdp_restore (below), whose cost it includes
 *   xdp-nodeport-np  the same with the prefilter off (no LPM lookup: the NodePort path alone)
 *   restore-tx-floor xdp_restore tail-calling xdp_tx_floor: the restore's own cost
 * The targets: prefilter-drop <= 1.3 x xdp-drop-floor, xdp-nodeport <= 2 x xdp-drop-floor.
 * In live mode the kernel recycles frame pages without restoring their bytes, so a frame
 * xdp_netdev rewrote would come back translated (no NodePort packet any more: it would pass
 * to the stack). tests/bpf/progs/xdp_restore.bpf.c writes the flow's original 54 bytes back
 * and tail-calls xdp_netdev; the xdp-nodeport row therefore includes a 54-byte copy, a map
 * lookup and a tail call (an upper bound of the path's cost). Every live xdp_netdev row
 * checks its outcome counters (metrics) against the frames sent: ON-PATH is the share of
 * frames that took the measured path.
 *
 * BPF_PROG_TEST_RUN one frame per call (repeat 1: the TC path rewrites the skb, which a
 * kernel repeat loop would run again on the translated packet), median of rounds, the run's
 * own per-frame overhead included alike in floor and path:
 *   tc-floor         an empty TC program
 *   tc-nodeport      from-netdev, the same ACKs: DNAT + SNAT, TC_ACT_OK to the stack
 *   xdp-floor-1      xdp_drop_floor the same way
 *   xdp-nodeport-1   xdp_netdev the same way (XDP_TX, not transmitted)
 *
 * Usage: bench_xdp [-n FRAMES] [-o json]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <net/if.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench_floor.skel.h"
#include "bench_xdp_floor.skel.h"
#include "bpf_harness.h"
#include "frames.h"
#include "loader/maps.h"
#include "pktbuild.h"
#include "replay/xdp_fabric.h"
#include "stats.h"
#include "test/xdp_restore.skel.h"

#define NODE_IP PB_IP4(192, 0, 2, 1)
#define NODE2_IP PB_IP4(192, 0, 2, 2)
#define IP_R PB_IP4(10, 244, 1, 30)
#define IP_C1 PB_IP4(203, 0, 113, 10)
#define IP_DENIED PB_IP4(198, 18, 5, 5)
#define FLOWS 16
#define ROUNDS 5
#define TC_CALLS 2000

static struct harness *h;
static uint32_t fab;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns per frame of `repeat` live frames of f through fd. */
static double run_live(int fd, const struct frame *f, unsigned int repeat)
{
	struct xdp_md ctx = { .data_end = (uint32_t)f->len, .ingress_ifindex = fab };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->buf, .data_size_in = (uint32_t)f->len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = repeat,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
	double t0 = now_ns();

	if (bpf_prog_test_run_opts(fd, &o) < 0) {
		fprintf(stderr, "bench_xdp: live BPF_PROG_TEST_RUN: %s\n", strerror(errno));
		exit(1);
	}
	return (now_ns() - t0) / repeat;
}

/* One round: the mean ns per frame over the flows, frames / n frames each. */
static double live_round(int fd, const struct frame *flows, size_t n, unsigned int frames)
{
	double sum = 0;

	for (size_t j = 0; j < n; j++)
		sum += run_live(fd, &flows[j], frames / (unsigned int)n);
	ring_buffer__consume(h->rb);
	return sum / (double)n;
}

/* One frame per call (repeat 1): the median over rounds of the kernel's ns per run. */
static double once_rows(int fd, const struct frame *flows, size_t n, int xdp)
{
	struct xdp_md ctx = { .ingress_ifindex = fab };
	double r[ROUNDS];
	uint8_t out[512];

	for (int i = 0; i < ROUNDS; i++) {
		double sum = 0;

		for (int c = 0; c < TC_CALLS; c++) {
			const struct frame *f = &flows[c % n];
			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->buf,
				    .data_size_in = (uint32_t)f->len, .data_out = out,
				    .data_size_out = sizeof(out), .repeat = 1);

			if (xdp) {
				ctx.data_end = (uint32_t)f->len;
				o.ctx_in = &ctx;
				o.ctx_size_in = sizeof(ctx);
			}
			if (bpf_prog_test_run_opts(fd, &o) < 0) {
				fprintf(stderr, "bench_xdp: BPF_PROG_TEST_RUN: %s\n", strerror(errno));
				exit(1);
			}
			sum += o.duration;
		}
		r[i] = sum / TC_CALLS;
		ring_buffer__consume(h->rb);
	}
	return stats_median(r, ROUNDS);
}

static void set_flags(uint8_t flags)
{
	struct node_config cfg;
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(datapath_map_fd(h->dp, MAP_NODE_CFG), &zero, &cfg) ||
	    (cfg.flags = flags, bpf_map_update_elem(datapath_map_fd(h->dp, MAP_NODE_CFG), &zero,
						    &cfg, 0))) {
		perror("bench_xdp: node config");
		exit(1);
	}
}

static void setup_state(void)
{
	struct datapath_opts opts = { .trace_all = false }; /* the shipping default */
	struct node_config cfg;
	struct prefilter_key pk;
	struct lb_key k;
	struct lb_service s;
	struct lb_reverse_nat rn;
	struct diag d = { "" };
	uint32_t index = 5;
	uint8_t one = 1;

	h = harness_new_opts(&opts);
	harness_add_ipcache(h, IP_R, 32, 400);
	harness_add_ipcache(h, NODE2_IP, 32, IDENTITY_REMOTE_NODE);
	memset(&cfg, 0, sizeof(cfg));
	cfg.node_ip = NODE_IP;
	cfg.pod_cidr = PB_IP4(10, 244, 0, 0);
	cfg.pod_cidr_len = 24;
	cfg.native_cidr = PB_IP4(10, 244, 0, 0);
	cfg.native_cidr_len = 16;
	cfg.flags = NODE_CFG_F_KPR | NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_PREFILTER;
	cfg.mtu = 1500;
	cfg.fabric_ifindex = fab;
	if (dp_node_config_set(h->dp, &cfg, &d)) {
		fprintf(stderr, "bench_xdp: %s\n", d.msg);
		exit(1);
	}
	harness_lb_backend(h, 1, IP_R);
	memset(&k, 0, sizeof(k));
	k.addr.v4 = NODE_IP;
	k.dport = htons(30080);
	k.proto = IPPROTO_TCP;
	k.family = CILIATE_AF_INET;
	memset(&s, 0, sizeof(s));
	s.count = 1;
	s.rev_nat_index = 5;
	s.flags = LB_SVC_F_ROUTABLE | LB_SVC_F_NODEPORT;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
	k.backend_slot = 1;
	s.count = 0;
	s.backend_id = 1;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
	memset(&rn, 0, sizeof(rn));
	rn.addr.v4 = NODE_IP;
	rn.port = htons(30080);
	rn.family = CILIATE_AF_INET;
	harness_map_put(h, MAP_LB_REVNAT, &index, &rn);
	memset(&pk, 0, sizeof(pk));
	pk.prefixlen = PREFILTER_PREFIX_BASE + 15;
	pk.family = CILIATE_AF_INET;
	pk.addr.v4 = PB_IP4(198, 18, 0, 0);
	harness_map_put(h, MAP_PREFILTER, &pk, &one);
}

struct row {
	const char *name;
	const char *method;
	double ns;
	double floor;
	double target_ratio; /* 0: none */
	double on_path;	     /* share of frames that took the measured path (live rows), -1: n/a */
};

static void print_rows(const struct row *r, size_t n, int json)
{
	if (json)
		printf("[");
	else
		printf("%-16s %-14s %10s %10s %7s %8s %s\n", "PATH", "METHOD", "NS/FRAME", "FLOOR NS",
		       "RATIO", "ON-PATH", "TARGET");
	for (size_t i = 0; i < n; i++) {
		double ratio = r[i].ns / r[i].floor;
		char target[48] = "-", onp[16] = "-";

		if (r[i].target_ratio > 0)
			snprintf(target, sizeof(target), "<= %.1fx %s", r[i].target_ratio,
				 ratio <= r[i].target_ratio ? "PASS" : "FAIL");
		if (r[i].on_path >= 0)
			snprintf(onp, sizeof(onp), "%.1f%%", 100 * r[i].on_path);
		if (json) {
			printf("%s{\"path\":\"%s\",\"method\":\"%s\",\"ns_per_frame\":%.1f,"
			       "\"floor_ns\":%.1f,\"ratio\":%.2f",
			       i ? "," : "", r[i].name, r[i].method, r[i].ns, r[i].floor, ratio);
			if (r[i].on_path >= 0)
				printf(",\"on_path\":%.4f", r[i].on_path);
			if (r[i].target_ratio > 0)
				printf(",\"target_ratio\":%.1f,\"pass\":%s", r[i].target_ratio,
				       ratio <= r[i].target_ratio ? "true" : "false");
			printf("}");
		} else {
			printf("%-16s %-14s %10.1f %10.1f %6.2fx %8s %s\n", r[i].name, r[i].method,
			       r[i].ns, r[i].floor, ratio, onp, target);
		}
	}
	if (json)
		printf("]\n");
}

int main(int argc, char **argv)
{
	unsigned int frames = 1000000;
	struct frame syn[FLOWS], ack[FLOWS], denied[FLOWS];
	struct xdp_fabric f = { .ip = NODE_IP, .plen = 24 };
	struct bench_xdp_floor *xf;
	struct xdp_restore *rs;
	struct bench_floor *tf;
	struct diag d = { "" };
	struct row rows[12];
	uint64_t fw0, pf0, fw1, pf1;
	double drop, tx, pf, np, npnp, rtx, tcf, tcnp, xf1, xnp1;
	int json = 0, fd_xdp, fd_tc, fd_drop, fd_tx, fd_empty, fd_restore, err;
	uint32_t zero = 0;
	uint32_t fab1;
	size_t n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			frames = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json"))
			json = 1, i++;
		else {
			fprintf(stderr, "usage: bench_xdp [-n FRAMES] [-o json]\n");
			return 2;
		}
	}
	if (frames < 10000 || frames > 50000000)
		frames = 1000000;

	f.peers[f.npeers++] = NODE2_IP;
	f.peers[f.npeers++] = IP_C1;
	f.routes[f.nroutes++] = (struct xdp_fabric_route){ .net = PB_IP4(10, 244, 1, 0),
							   .len = 24, .via = NODE2_IP };
	f.routes[f.nroutes++] = (struct xdp_fabric_route){ .net = IP_C1, .len = 32 };
	if (xdp_fabric_enter(&f, &fab, &d)) {
		fprintf(stderr, "bench_xdp: %s\n", d.msg);
		return 1;
	}
	fab1 = if_nametoindex(XDP_FABRIC_PEER_DEV);
	xf = bench_xdp_floor__open_and_load();
	tf = bench_floor__open_and_load();
	rs = xdp_restore__open_and_load();
	if (!xf || !tf || !rs || !fab1) {
		fprintf(stderr, "bench_xdp: loading the floor programs failed\n");
		return 1;
	}
	err = bpf_xdp_attach((int)fab1, bpf_program__fd(xf->progs.xdp_sink), XDP_FLAGS_DRV_MODE,
			     NULL);
	if (err) {
		fprintf(stderr, "bench_xdp: attaching xdp_sink to fab1: %s\n", strerror(-err));
		return 1;
	}
	setup_state();
	fd_xdp = datapath_prog_fd(h->dp, HOOK_XDP);
	fd_tc = datapath_prog_fd(h->dp, HOOK_FROM_NETDEV);
	fd_drop = bpf_program__fd(xf->progs.xdp_drop_floor);
	fd_tx = bpf_program__fd(xf->progs.xdp_tx_floor);
	fd_empty = bpf_program__fd(tf->progs.bench_empty);
	fd_restore = bpf_program__fd(rs->progs.xdp_restore);

	/* FLOWS established NodePort connections (their SYNs through XDP: state made) */
	for (int i = 0; i < FLOWS; i++) {
		struct xdp_md ctx = { .ingress_ifindex = fab };
		uint8_t out[256];

		syn[i] = frame_tcp4(IP_C1, NODE_IP, (uint16_t)(40000 + i), 30080, PB_TCP_SYN, 64);
		ack[i] = frame_tcp4(IP_C1, NODE_IP, (uint16_t)(40000 + i), 30080, PB_TCP_ACK, 64);
		denied[i] = frame_tcp4(IP_DENIED + htonl((uint32_t)i), NODE_IP,
				       (uint16_t)(40000 + i), 30080, PB_TCP_SYN, 64);
		{
			uint8_t copy[64] = { 0 };
			uint32_t k = (uint32_t)i;

			memcpy(copy, ack[i].buf, ack[i].len < 64 ? ack[i].len : 64);
			if (ack[i].len != 54 ||
			    bpf_map_update_elem(bpf_map__fd(rs->maps.originals), &k, copy, 0)) {
				fprintf(stderr, "bench_xdp: frame copies for xdp_restore\n");
				return 1;
			}
		}
		ctx.data_end = (uint32_t)syn[i].len;
		{
			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = syn[i].buf,
				    .data_size_in = (uint32_t)syn[i].len, .data_out = out,
				    .data_size_out = sizeof(out), .ctx_in = &ctx,
				    .ctx_size_in = sizeof(ctx), .repeat = 1);

			if (bpf_prog_test_run_opts(fd_xdp, &o) < 0 || o.retval != XDP_TX) {
				fprintf(stderr, "bench_xdp: the NodePort SYN was not forwarded "
						"(retval %u)\n", o.retval);
				return 1;
			}
		}
	}

	/* rounds interleaved by kind, each row its median round: a burst of load from other
	 * tenants hits one round of every row rather than whichever row was running */
	{
		double r_drop[ROUNDS], r_tx[ROUNDS], r_pf[ROUNDS], r_rtx[ROUNDS], r_np[ROUNDS];
		double r_npnp[ROUNDS];
		int pa = bpf_map__fd(rs->maps.next);

		pf0 = pf1 = fw0 = fw1 = 0;
		for (int r = 0; r < ROUNDS; r++) {
			uint64_t a, b;

			r_drop[r] = live_round(fd_drop, ack, FLOWS, frames);
			r_tx[r] = live_round(fd_tx, ack, FLOWS, frames);
			a = harness_metric_packets(h, REASON_PREFILTER_DENIED, DIR_INGRESS);
			r_pf[r] = live_round(fd_xdp, denied, FLOWS, frames);
			b = harness_metric_packets(h, REASON_PREFILTER_DENIED, DIR_INGRESS);
			pf1 += b - a;
			if (bpf_map_update_elem(pa, &zero, &fd_tx, 0)) {
				perror("bench_xdp: prog array");
				return 1;
			}
			r_rtx[r] = live_round(fd_restore, ack, FLOWS, frames);
			if (bpf_map_update_elem(pa, &zero, &fd_xdp, 0)) {
				perror("bench_xdp: prog array");
				return 1;
			}
			a = harness_metric_packets(h, REASON_FORWARDED, DIR_INGRESS);
			r_np[r] = live_round(fd_restore, ack, FLOWS, frames);
			b = harness_metric_packets(h, REASON_FORWARDED, DIR_INGRESS);
			fw1 += b - a;
			set_flags(NODE_CFG_F_KPR | NODE_CFG_F_XDP_ACCEL);
			r_npnp[r] = live_round(fd_restore, ack, FLOWS, frames);
			set_flags(NODE_CFG_F_KPR | NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_PREFILTER);
		}
		drop = stats_median(r_drop, ROUNDS);
		tx = stats_median(r_tx, ROUNDS);
		pf = stats_median(r_pf, ROUNDS);
		rtx = stats_median(r_rtx, ROUNDS);
		np = stats_median(r_np, ROUNDS);
		npnp = stats_median(r_npnp, ROUNDS);
	}
	tcf = once_rows(fd_empty, ack, FLOWS, 0);
	tcnp = once_rows(fd_tc, ack, FLOWS, 0);
	xf1 = once_rows(fd_drop, ack, FLOWS, 1);
	xnp1 = once_rows(fd_xdp, ack, FLOWS, 1);

	{
		double sent = (double)ROUNDS * (double)(frames / FLOWS) * FLOWS;

		rows[n++] = (struct row){ "xdp-drop-floor", "live", drop, drop, 0, -1 };
		rows[n++] = (struct row){ "xdp-tx-floor", "live", tx, drop, 0, -1 };
		rows[n++] = (struct row){ "prefilter-drop", "live", pf, drop, 1.3,
					  (double)(pf1 - pf0) / sent };
		rows[n++] = (struct row){ "restore-tx-floor", "live", rtx, drop, 0, -1 };
		rows[n++] = (struct row){ "xdp-nodeport", "live", np, drop, 2.0,
					  (double)(fw1 - fw0) / sent };
		rows[n++] = (struct row){ "xdp-nodeport-np", "live", npnp, drop, 2.0, -1 };
		rows[n++] = (struct row){ "tc-floor", "test-run x1", tcf, tcf, 0, -1 };
		rows[n++] = (struct row){ "tc-nodeport", "test-run x1", tcnp, tcf, 0, -1 };
		rows[n++] = (struct row){ "xdp-floor-1", "test-run x1", xf1, xf1, 0, -1 };
		rows[n++] = (struct row){ "xdp-nodeport-1", "test-run x1", xnp1, xf1, 0, -1 };
	}
	print_rows(rows, n, json);
	bpf_xdp_detach((int)fab1, XDP_FLAGS_DRV_MODE, NULL);
	harness_free(h);
	bench_floor__destroy(tf);
	bench_xdp_floor__destroy(xf);
	xdp_restore__destroy(rs);
	return 0;
}
