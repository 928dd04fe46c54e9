/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy-lookup cost per packet as the number of rules selecting an endpoint grows (1, 100,
 * 10k entries), side by side with the empty-program floor in the same run.
 *
 * The measured path is from-container, new connection to a remote pod, egress policy
 * evaluated and denied: parse, endpoint, conntrack miss, ipcache LPM, policy LPM x 2,
 * policy-verdict and drop events, metrics. It creates no state and does not rewrite the
 * packet, so the kernel's repeat loop can run it many times over 64 different packets. The
 * entries are L3-L4 allows for other identities and ports, so both lookups (exact identity
 * and wildcard) walk a populated LPM trie and miss.
 *
 * Every measured packet is a normal one: each deny emits two events (104 bytes each in the
 * 1 MiB ring), so the repeat loop runs in batches of at most BATCH packets and after each the
 * ring is drained but for its newest record (ring_lag.h: it never fills, and no packet pays a
 * consumer wakeup); the bench fails if ciliate_events_lost moved. A second column loads the
 * datapath with no_events (no ring output at all): the difference is the events' cost.
 * Rows run in ROUNDS interleaved rounds; each reports its median round.
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
#include "ring_lag.h"
#include "stats.h"

#define FLOWS 64
/* packets per test run: their 2 events each (2 x 2048 x 104 bytes) fit the 1 MiB ring */
#define BATCH 2048
/* The rows run in interleaved rounds (floor, 1 rule, 1 rule without events, 100 rules, ...)
 * and each reports its median round, so a burst of load from other tenants lands on one round
 * of every row rather than on whichever row happened to be running. */
#define ROUNDS 5

/* Events the ring had no room for (sum over CPUs of ciliate_events_lost). */
static uint64_t events_lost(struct harness *h)
{
	int ncpu = libbpf_num_possible_cpus(), fd = datapath_map_fd(h->dp, MAP_EVENTS_LOST);
	uint64_t v[1024] = {0}, sum = 0;
	uint32_t zero = 0;

	if (ncpu <= 0 || ncpu > 1024 || fd < 0 || bpf_map_lookup_elem(fd, &zero, v)) {
		fprintf(stderr, "bench_policy: cannot read %s\n", MAP_EVENTS_LOST);
		exit(1);
	}
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

/* Mean ns per packet over the flows, `repeat` packets each in batches of at most BATCH; with
 * lag, the event ring is drained after every batch. */
static double mean_ns(int fd, const struct frame *flows, unsigned int repeat, int want,
		      struct ring_lag *lag)
{
	uint8_t out[256];
	double sum = 0;

	for (int i = 0; i < FLOWS; i++) {
		double flow_ns = 0;

		for (unsigned int done = 0; done < repeat;) {
			unsigned int n = repeat - done < BATCH ? repeat - done : BATCH;
			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = flows[i].buf,
				    .data_size_in = (uint32_t)flows[i].len, .data_out = out,
				    .data_size_out = sizeof(out), .repeat = n);

			if (bpf_prog_test_run_opts(fd, &o) < 0) {
				perror("BPF_PROG_TEST_RUN");
				exit(1);
			}
			if (want >= 0 && (int)o.retval != want) {
				fprintf(stderr, "bench_policy: unexpected verdict %u\n", o.retval);
				exit(1);
			}
			if (lag)
				ring_lag_drain(lag);
			flow_ns += (double)o.duration * n; /* duration: mean ns per packet */
			done += n;
		}
		sum += flow_ns / repeat;
	}
	return sum / FLOWS;
}


/* The datapath of one row: an endpoint with `rules` egress allows none of which admits the
 * measured packets. */
static struct harness *row_datapath(unsigned int rules, bool no_events)
{
	struct datapath_opts o = {.trace_all = false, .no_events = no_events};
	struct harness *h = harness_new_opts(&o);
	struct endpoint_info a =
		harness_endpoint(PB_IP4(10, 244, 0, 21), 1, 300, EP_F_EGRESS_ENFORCED);

	harness_add_endpoint(h, &a, true);
	harness_add_ipcache(h, PB_IP4(10, 244, 1, 0), 24, 400);
	for (unsigned int r = 0; r < rules; r++)
		harness_add_policy(h, 1, 1000 + r / 8, DIR_EGRESS, IPPROTO_TCP,
				   (uint16_t)(1000 + r % 8), 16, false);
	return h;
}

int main(int argc, char **argv)
{
	static const unsigned int sizes[] = {1, 100, 10000};
	unsigned int iters = 100000;
	struct frame flows[FLOWS];
	struct bench_floor *fl;
	double floor_ns, ns[3], ns_quiet[3], m_floor[ROUNDS], m[3][ROUNDS], mq[3][ROUNDS];
	struct harness *hs[3], *hq[3];
	struct ring_lag lag[3];
	uint64_t lost0[3];
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
	/* every row's datapath loaded up front, so that the rows run in interleaved rounds */
	for (int s = 0; s < 3; s++) {
		if (!json)
			fprintf(stderr, "bench_policy: loading %u rules (x2)...\n", sizes[s]);
		hs[s] = row_datapath(sizes[s], false);
		hq[s] = row_datapath(sizes[s], true);
		ring_lag_open(&lag[s], datapath_map_fd(hs[s]->dp, MAP_EVENTS));
		lost0[s] = events_lost(hs[s]);
	}
	for (int r = 0; r < ROUNDS; r++) {
		unsigned int repeat = iters / FLOWS / ROUNDS;

		m_floor[r] = mean_ns(bpf_program__fd(fl->progs.bench_empty), flows, repeat, -1,
				     NULL);
		for (int s = 0; s < 3; s++) {
			m[s][r] = mean_ns(datapath_prog_fd(hs[s]->dp, HOOK_FROM_CONTAINER), flows,
					  repeat, TC_ACT_SHOT, &lag[s]);
			mq[s][r] = mean_ns(datapath_prog_fd(hq[s]->dp, HOOK_FROM_CONTAINER), flows,
					   repeat, TC_ACT_SHOT, NULL);
		}
	}
	floor_ns = stats_median(m_floor, ROUNDS);
	for (int s = 0; s < 3; s++) {
		if (events_lost(hs[s]) != lost0[s]) {
			fprintf(stderr, "bench_policy: %llu events lost on a full ring: the row would "
				"not measure normal packets\n",
				(unsigned long long)(events_lost(hs[s]) - lost0[s]));
			return 1;
		}
		ns[s] = stats_median(m[s], ROUNDS);
		ns_quiet[s] = stats_median(mq[s], ROUNDS);
		ring_lag_close(&lag[s]);
		harness_free(hs[s]);
		harness_free(hq[s]);
	}

	if (json) {
		printf("{\"floor_ns\":%.1f", floor_ns);
		for (int s = 0; s < 3; s++)
			printf(",\"rules_%u\":{\"ns\":%.1f,\"ratio_floor\":%.2f,"
			       "\"ns_no_events\":%.1f}",
			       sizes[s], ns[s], ns[s] / floor_ns, ns_quiet[s]);
		printf("}\n");
	} else {
		printf("%-22s %12s %10s %10s %14s\n", "PATH", "NS/PACKET", "VS FLOOR", "VS 1 RULE",
		       "NO EVENTS NS");
		printf("%-22s %12.1f %9.2fx %9s %14s\n", "floor", floor_ns, 1.0, "-", "-");
		for (int s = 0; s < 3; s++) {
			char name[32];

			snprintf(name, sizeof(name), "policy-deny %u rules", sizes[s]);
			printf("%-22s %12.1f %9.2fx %9.2fx %14.1f\n", name, ns[s], ns[s] / floor_ns,
			       ns[s] / ns[0], ns_quiet[s]);
		}
	}
	bench_floor__destroy(fl);
	return 0;
}
