/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy-lookup cost per packet as the number of rules selecting an endpoint grows (1, 100,
 * 10k entries), side by side with the empty-program floor in the same run.
 *
 * The measured path is from-container, new connection, egress policy evaluated and denied:
 * it creates no state and does not rewrite the packet, so the kernel's repeat loop can run it
 * many times over 64 different packets. The entries are L3-L4 allows for other identities and
 * ports, so the lookup walks a populated LPM trie and misses (exact identity and wildcard).
 *
 * Usage: bench_policy [-n ITERATIONS] [-o json]
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench_floor.skel.h"
#include "bpf_harness.h"
#include "frames.h"
#include "pktbuild.h"

#define FLOWS 64

static double mean_ns(int fd, const struct frame *flows, unsigned int repeat, int want)
{
	uint8_t out[256];
	double sum = 0;

	for (int i = 0; i < FLOWS; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = flows[i].buf,
			    .data_size_in = (uint32_t)flows[i].len, .data_out = out,
			    .data_size_out = sizeof(out), .repeat = repeat);

		if (bpf_prog_test_run_opts(fd, &o) < 0) {
			perror("BPF_PROG_TEST_RUN");
			exit(1);
		}
		if (want >= 0 && (int)o.retval != want) {
			fprintf(stderr, "bench_policy: unexpected verdict %u\n", o.retval);
			exit(1);
		}
		sum += o.duration;
	}
	return sum / FLOWS;
}

int main(int argc, char **argv)
{
	static const unsigned int sizes[] = {1, 100, 10000};
	unsigned int iters = 100000;
	struct frame flows[FLOWS];
	struct bench_floor *fl;
	double floor_ns, ns[3];
	int json = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			iters = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json"))
			json = 1, i++;
		else {
			fprintf(stderr, "usage: bench_policy [-n ITERATIONS] [-o json]\n");
			return 2;
		}
	}
	if (iters < 1000 || iters > 10000000)
		iters = 100000;
	for (int i = 0; i < FLOWS; i++)
		flows[i] = frame_tcp4(PB_IP4(10, 244, 0, 21), PB_IP4(10, 244, 1, 10 + i),
				      (uint16_t)(30000 + i), 80, PB_TCP_SYN, 64);

	fl = bench_floor__open_and_load();
	if (!fl) {
		perror("loading bench_floor");
		return 1;
	}
	floor_ns = mean_ns(bpf_program__fd(fl->progs.bench_empty), flows, iters / FLOWS, -1);

	for (int s = 0; s < 3; s++) {
		struct datapath_opts o = {.trace_all = false};
		struct harness *h = harness_new_opts(&o);
		struct endpoint_info a =
			harness_endpoint(PB_IP4(10, 244, 0, 21), 1, 300, EP_F_EGRESS_ENFORCED);

		harness_add_endpoint(h, &a, true);
		harness_add_ipcache(h, PB_IP4(10, 244, 1, 0), 24, 400);
		/* sizes[s] rules for other peers/ports: none admits the measured packets */
		for (unsigned int r = 0; r < sizes[s]; r++)
			harness_add_policy(h, 1, 1000 + r / 8, DIR_EGRESS, IPPROTO_TCP,
					   (uint16_t)(1000 + r % 8), 16, false);
		if (!json)
			fprintf(stderr, "bench_policy: %u rules...\n", sizes[s]);
		ns[s] = mean_ns(datapath_prog_fd(h->dp, HOOK_FROM_CONTAINER), flows, iters / FLOWS,
				TC_ACT_SHOT);
		harness_free(h);
	}

	if (json) {
		printf("{\"floor_ns\":%.1f", floor_ns);
		for (int s = 0; s < 3; s++)
			printf(",\"rules_%u\":{\"ns\":%.1f,\"ratio_floor\":%.2f}", sizes[s], ns[s],
			       ns[s] / floor_ns);
		printf("}\n");
	} else {
		printf("%-22s %12s %10s %10s\n", "PATH", "NS/PACKET", "VS FLOOR", "VS 1 RULE");
		printf("%-22s %12.1f %9.2fx %9s\n", "floor", floor_ns, 1.0, "-");
		for (int s = 0; s < 3; s++) {
			char name[32];

			snprintf(name, sizeof(name), "policy-deny %u rules", sizes[s]);
			printf("%-22s %12.1f %9.2fx %9.2fx\n", name, ns[s], ns[s] / floor_ns,
			       ns[s] / ns[0]);
		}
	}
	bench_floor__destroy(fl);
	return 0;
}
