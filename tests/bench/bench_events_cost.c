/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-packet cost of emitting events: the same datapath loaded twice with private maps,
 * once with events (the shipping configuration: aggregated traces, drops, policy verdicts)
 * and once with `no_events` (the cfg_no_events switch skips event_emit() entirely; metrics
 * stay), both programmed with the hook benches' node state (tests/lib/bench_node.h), timed
 * with BPF_PROG_TEST_RUN side by side with floors measured in the same run:
 *
 *   floor          the empty TC program (bench_floor.bpf.c)
 *   ring-output1   floor + one 96-byte record (struct ciliate_event) built on the stack and
 *                  written with bpf_ringbuf_output(), as event_emit() does
 *   ring-output2   floor + two such records (what a denied packet emits)
 *   ring-reserve2  floor + two records reserved in the ring, filled in place, submitted
 *                  (the ring rows: bench_events_floor.bpf.c, each its own 1 MiB ring)
 *   policy-deny-egress   from-container, TCP SYN from pod A to pod B:82, denied by A's
 *                  egress: events on = a denying policy verdict and a drop, for every packet
 *                  ("on": the every_drop option) or once per flow and second ("agg": the
 *                  shipping default, drop aggregation in bpf/lib/events.h; 64 flows cycled,
 *                  so nearly every packet is an aggregated repeat)
 *   policy-deny-ingress  from-container, TCP SYN from A to B:81, admitted by A's egress and
 *                  denied by B's ingress: an allowing and a denying policy verdict, a drop
 *   ct-miss-allow  from-container, TCP SYN of a new connection to a remote pod that A's
 *                  egress allows: a policy verdict (allow) and a trace (conntrack insert)
 *
 * The datapath ring is 8 MiB, the floor rings 1 MiB (about 10,000 records); once full, bpf_ringbuf_output() fails fast and
 * only bumps ciliate_events_lost, a cheaper path than a real emission. So every run is a
 * batch small enough for the ring (-n packets, default 1000, at most 2000, x 3 events), and
 * the ring is drained after each batch (outside the kernel-timed region) but for its newest
 * record (tests/bench/ring_lag.h: a consumer that has read everything makes the next record
 * queue a wakeup, which would be measured instead of the emission; the veth bench,
 * bench_events_rate.sh, measures that cost where it belongs). Every batch is checked: the
 * records the ring's producer position advanced by must equal packets x events per packet
 * (every record is 104 bytes) and ciliate_events_lost must stay 0; otherwise the bench fails
 * (exit 1) after printing.
 *
 * repeat rows run in the kernel's repeat loop (paths that create no state: the deny path and
 * the floors), over 64 different packets; single rows one packet per run (the allow path
 * creates conntrack entries, so each needs a fresh packet; conntrack is emptied between
 * rounds, outside the timed region); their floor is the empty program measured the same way
 * (it includes the per-run timer overhead). Every row of a group is measured packet by packet
 * in turn, the starting row rotating, over ROUNDS rounds; each row is its median round.
 *
 * Target (the observability issue): event emission adds <= 15% to a denied packet's hook
 * cost, i.e. on/off - 1 <= 0.15 for the two policy-deny rows (repeat; the single rows carry
 * the per-run timer overhead in both). Printed with PASS/FAIL: a report, not an assertion
 * (timings are not tests).
 *
 * Usage: bench_events_cost [-n PACKETS_PER_BATCH] [-r ROUNDS] [-o json]
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench_events_floor.skel.h"
#include "bench_floor.skel.h"
#include "bench_node.h"
#include "bpf_harness.h"
#include "frames.h"
#include "ring_lag.h"
#include "stats.h"

#define DENY_FLOWS 64	/* repeat rows: different packets per round */
#define SINGLE_PKTS 512 /* single rows: packets per round */
#define DRAIN_EVERY 128 /* single rows: drain the rings every this many packets */
#define MAX_ROUNDS 51
/* every record: struct ciliate_event behind the ring's 8-byte header, 8-byte aligned */
#define RECORD_BYTES ((sizeof(struct ciliate_event) + BPF_RINGBUF_HDR_SZ + 7) & ~(size_t)7)
#define TARGET_ADD 0.15 /* on/off - 1 for a denied packet */

/* A ring and our lagging reader of it. */
struct ring {
	const char *name;
	struct ring_lag lag;
	uint64_t prod;	/* producer position at the last drain */
	int lost_fd;	/* ciliate_events_lost, or -1 */
	uint64_t read;	/* records drained so far */
	bool bad;	/* a count check failed */
};

static void ring_open(struct ring *r, const char *name, int map_fd, int lost_fd)
{
	r->name = name;
	r->lost_fd = lost_fd;
	ring_lag_open(&r->lag, map_fd);
	r->prod = __atomic_load_n(r->lag.producer_pos, __ATOMIC_ACQUIRE);
}

/* Drains the ring but for its newest record; returns the records written since the last
 * drain (from the producer position: every record has the same size). */
static uint64_t drain(struct ring *r)
{
	uint64_t prod = __atomic_load_n(r->lag.producer_pos, __ATOMIC_ACQUIRE);
	uint64_t n = (prod - r->prod) / RECORD_BYTES;

	if ((prod - r->prod) % RECORD_BYTES) {
		fprintf(stderr, "bench_events_cost: %s: a record of another size\n", r->name);
		r->bad = true;
	}
	r->prod = prod;
	ring_lag_drain(&r->lag);
	r->read += n;
	return n;
}

static uint64_t lost_sum(const struct ring *r)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t v[ncpu > 0 ? ncpu : 1], sum = 0;
	uint32_t zero = 0;

	if (r->lost_fd < 0)
		return 0;
	if (bpf_map_lookup_elem(r->lost_fd, &zero, v))
		return UINT64_MAX;
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

/* A loaded datapath with or without events. */
struct side {
	struct harness *h;
	struct ring ring;
	int fd_from;
};

static void side_open(struct side *s, const char *name, bool events, bool every_drop)
{
	struct datapath_opts o = {.trace_all = false, .no_events = !events,
				  .every_drop = every_drop};

	s->h = harness_new_opts(&o);
	bench_node_program(s->h);
	s->fd_from = datapath_prog_fd(s->h->dp, HOOK_FROM_CONTAINER);
	if (s->fd_from < 0) {
		fprintf(stderr, "bench_events_cost: setting up %s failed\n", name);
		exit(1);
	}
}

static void side_close(struct side *s)
{
	ring_lag_close(&s->ring.lag);
	harness_free(s->h);
}

/* One BPF_PROG_TEST_RUN: mean ns per iteration (kernel-timed). */
static double run(int fd, const struct frame *f, unsigned int repeat, int want)
{
	uint8_t out[256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->buf, .data_size_in = (uint32_t)f->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &o) < 0) {
		perror("BPF_PROG_TEST_RUN");
		exit(1);
	}
	if (want >= 0 && (int)o.retval != want) {
		fprintf(stderr, "bench_events_cost: verdict %u, expected %d\n", o.retval, want);
		exit(1);
	}
	return o.duration;
}

/* Empties a conntrack map (outside any timed region): keys first, then deletes. */
static void ct_flush(struct side *s)
{
	int fd = datapath_map_fd(s->h->dp, MAP_CT);
	size_t cap = 4096, n = 0;
	struct ct_key *keys = malloc(cap * sizeof(*keys)), *prev = NULL;

	if (!keys || fd < 0) {
		fprintf(stderr, "bench_events_cost: conntrack flush failed\n");
		exit(1);
	}
	while (bpf_map_get_next_key(fd, prev, &keys[n]) == 0) {
		prev = &keys[n++];
		if (n == cap) {
			struct ct_key *k = realloc(keys, 2 * cap * sizeof(*keys));

			if (!k) {
				fprintf(stderr, "bench_events_cost: out of memory\n");
				exit(1);
			}
			keys = k;
			cap *= 2;
			prev = &keys[n - 1];
		}
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &keys[i]);
	free(keys);
}

static double median(const double *in, int n)
{
	double v[MAX_ROUNDS];

	memcpy(v, in, (size_t)n * sizeof(*v));
	return stats_median(v, n);
}

/* One measured row: a program, its packets, the ring its records go to. */
struct row {
	const char *name, *method, *events; /* events: "-", "off", "on" */
	int fd;
	const struct frame *pkts; /* one per packet index (cycled) */
	size_t npkts;
	int want;	     /* expected verdict, -1: any */
	struct ring *ring;   /* NULL: none expected */
	uint64_t epp;	     /* records per packet into ring */
	int floor_row;	     /* index of its floor */
	int off_row;	     /* on rows: the matching off row; else -1 */
	bool target;	     /* held to the <= 15% target */
	bool at_most;	     /* aggregated drops: at most epp records per packet */
	double ns[MAX_ROUNDS];
	double sum;	     /* this round */
	uint64_t packets, expected, read; /* read: records checked so far */
};

/* Drains a ring and checks it against what the rows writing to it have run since the last
 * check. */
static void check_ring(struct row *rows, int nrows, struct ring *r)
{
	uint64_t want = 0, got = drain(r);
	bool at_most = false;

	for (int m = 0; m < nrows; m++)
		if (rows[m].ring == r) {
			want += rows[m].expected - rows[m].read;
			rows[m].read = rows[m].expected;
			at_most |= rows[m].at_most;
		}
	if (at_most ? got > want : got != want) {
		fprintf(stderr, "bench_events_cost: %s: %llu records read, %llu expected\n", r->name,
			(unsigned long long)got, (unsigned long long)want);
		r->bad = true;
	}
}

/* The rows of a group, measured in turn packet by packet, the starting row rotating.
 * repeat > 1: each packet index is one batch of `repeat` iterations, and the row's ring is
 * drained and checked right after it. repeat == 1: every ring is drained and checked every
 * DRAIN_EVERY packets. */
static void measure(struct row *rows, int nrows, unsigned int round, size_t npkts,
		    unsigned int repeat)
{
	for (int k = 0; k < nrows; k++)
		rows[k].sum = 0;
	for (size_t i = 0; i < npkts; i++) {
		for (int j = 0; j < nrows; j++) {
			struct row *w = &rows[(j + round + i) % (size_t)nrows];

			w->sum += run(w->fd, &w->pkts[i % w->npkts], repeat, w->want);
			w->packets += repeat;
			w->expected += repeat * w->epp;
			if (repeat > 1 && w->ring)
				check_ring(rows, nrows, w->ring);
		}
		if (repeat == 1 && ((i + 1) % DRAIN_EVERY == 0 || i + 1 == npkts))
			for (int k = 0; k < nrows; k++)
				if (rows[k].ring)
					check_ring(rows, nrows, rows[k].ring);
	}
	for (int k = 0; k < nrows; k++)
		rows[k].ns[round] = rows[k].sum / (double)npkts;
}

struct result {
	const struct row *r;
	double ns, floor, off, q_min, q_max;
	bool valid;
};

static void results(const struct row *rows, int nrows, unsigned int rounds,
		    struct result *out)
{
	for (int k = 0; k < nrows; k++) {
		const struct row *w = &rows[k];
		struct result *o = &out[k];

		o->r = w;
		o->ns = median(w->ns, (int)rounds);
		o->floor = median(rows[w->floor_row].ns, (int)rounds);
		o->off = w->off_row >= 0 ? median(rows[w->off_row].ns, (int)rounds) : 0;
		o->q_min = o->q_max = 0;
		if (w->off_row >= 0)
			for (unsigned int i = 0; i < rounds; i++) {
				double q = w->ns[i] / rows[w->off_row].ns[i];

				o->q_min = !i || q < o->q_min ? q : o->q_min;
				o->q_max = !i || q > o->q_max ? q : o->q_max;
			}
		o->valid = !w->ring || !w->ring->bad;
	}
}

static const char *verdict(const struct result *o, bool all_valid)
{
	if (!all_valid || !o->valid)
		return "INVALID";
	return o->ns / o->off - 1 <= TARGET_ADD ? "PASS" : "FAIL";
}

static void print_text(const struct result *res, int n, bool all_valid)
{
	printf("%-14s %-7s %-6s %4s %9s %8s %8s %8s %8s %11s %8s  %s\n", "PATH", "METHOD",
	       "EVENTS", "/PKT", "NS/PACKET", "VS FLOOR", "+NS FLR", "ON/OFF", "+NS EVTS",
	       "ROUNDS Q", "RECORDS", "TARGET");
	for (int k = 0; k < n; k++) {
		const struct result *o = &res[k];
		const struct row *w = o->r;

		printf("%-14s %-7s %-6s %4llu %9.1f %7.2fx %8.1f", w->name, w->method, w->events,
		       (unsigned long long)w->epp, o->ns, o->ns / o->floor, o->ns - o->floor);
		if (w->off_row >= 0) {
			char q[32];

			snprintf(q, sizeof(q), "%.2f-%.2f", o->q_min, o->q_max);
			printf(" %7.3fx %8.1f %11s", o->ns / o->off, o->ns - o->off, q);
		} else {
			printf(" %8s %8s %11s", "-", "-", "-");
		}
		if (w->ring)
			printf(" %8llu%s", (unsigned long long)w->read, o->valid ? "" : " BAD");
		else
			printf(" %8s", "-");
		if (w->target)
			printf("  %s (<= %.2fx)", verdict(o, all_valid), 1 + TARGET_ADD);
		printf("\n");
	}
}

static void print_json(const struct result *res, int n, bool all_valid)
{
	printf("[");
	for (int k = 0; k < n; k++) {
		const struct result *o = &res[k];
		const struct row *w = o->r;

		printf("%s{\"path\":\"%s\",\"method\":\"%s\",\"events\":\"%s\","
		       "\"events_per_packet\":%llu,\"ns_per_packet\":%.1f,\"floor_ns\":%.1f,"
		       "\"vs_floor\":%.3f,\"packets\":%llu,\"records_read\":%llu,\"valid\":%s",
		       k ? "," : "", w->name, w->method, w->events, (unsigned long long)w->epp,
		       o->ns, o->floor, o->ns / o->floor, (unsigned long long)w->packets,
		       (unsigned long long)w->read, o->valid && all_valid ? "true" : "false");
		if (w->off_row >= 0)
			printf(",\"off_ns\":%.1f,\"on_off\":%.3f,\"on_off_min\":%.3f,"
			       "\"on_off_max\":%.3f,\"events_ns\":%.1f",
			       o->off, o->ns / o->off, o->q_min, o->q_max, o->ns - o->off);
		if (w->target)
			printf(",\"target_on_off\":%.2f,\"pass\":%s", 1 + TARGET_ADD,
			       !strcmp(verdict(o, all_valid), "PASS") ? "true" : "false");
		printf("}");
	}
	printf("]\n");
}

/* Records one packet emits through a hook (run once, drained). */
static uint64_t records_per_packet(struct side *s, const struct frame *f, int want)
{
	drain(&s->ring);
	run(s->fd_from, f, 1, want);
	return drain(&s->ring);
}

/* The denying policy verdict of a packet run through `on`: its direction and endpoint must be
 * what the row's name says. */
static bool denied_at(struct side *s, const struct frame *f, uint8_t dir, uint32_t ep_id)
{
	const struct ciliate_event *pv = NULL;

	harness_run(s->h, HOOK_FROM_CONTAINER, f->buf, f->len);
	for (size_t i = 0; i < s->h->nevents; i++)
		if (s->h->events[i].type == EVENT_POLICY_VERDICT &&
		    s->h->events[i].verdict == TC_ACT_SHOT)
			pv = &s->h->events[i];
	return s->h->retval == TC_ACT_SHOT && pv && pv->dir == dir && pv->ep_id == ep_id;
}

int main(int argc, char **argv)
{
	unsigned int batch = 1000, rounds = 11;
	bool json = false, all_valid;
	struct side off = {0}, on = {0}, agg = {0};
	struct ring fring = {0};
	static struct frame deny_eg[DENY_FLOWS], deny_in[DENY_FLOWS], allow[SINGLE_PKTS];
	struct bench_floor *fl;
	struct bench_events_floor *ef;
	uint64_t epp_eg, epp_in, epp_allow, lost;
	struct row rep[10], sgl[7];
	struct result res[17];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			batch = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			rounds = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json"))
			json = true, i++;
		else {
			fprintf(stderr, "usage: bench_events_cost [-n PACKETS_PER_BATCH (10-2000)] "
					"[-r ROUNDS (1-%d)] [-o json]\n",
				MAX_ROUNDS);
			return 2;
		}
	}
	/* 2000 packets x 3 records x 104 bytes = 624 KB: inside a 1 MiB ring */
	if (batch < 10 || batch > 2000 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "bench_events_cost: -n 10..2000, -r 1..%d\n", MAX_ROUNDS);
		return 2;
	}

	fl = bench_floor__open_and_load();
	ef = bench_events_floor__open_and_load();
	if (!fl || !ef) {
		perror("bench_events_cost: loading the floor programs");
		return 1;
	}
	side_open(&off, "events-off", false, false);
	side_open(&on, "events-on", true, true);
	side_open(&agg, "events-aggregated", true, false);

	for (int i = 0; i < DENY_FLOWS; i++) {
		deny_eg[i] = bench_node_syn_denied_egress((uint16_t)(40000 + i));
		deny_in[i] = bench_node_syn_denied_ingress((uint16_t)(40000 + i));
	}
	for (int i = 0; i < SINGLE_PKTS; i++)
		allow[i] = bench_node_syn_allowed((unsigned int)i, (uint16_t)(20000 + i));

	/* each deny row stops where its name says (read with the harness's own reader, before
	 * the lagging readers start) */
	if (!denied_at(&on, &deny_eg[0], DIR_EGRESS, 1) ||
	    !denied_at(&on, &deny_in[0], DIR_INGRESS, 2)) {
		fprintf(stderr, "bench_events_cost: a deny path is not denied where its name says\n");
		return 1;
	}
	ring_open(&fring, "ring floors", bpf_map__fd(ef->maps.bench_ring), -1);
	ring_open(&on.ring, "events-on", datapath_map_fd(on.h->dp, MAP_EVENTS),
		  datapath_map_fd(on.h->dp, MAP_EVENTS_LOST));
	ring_open(&off.ring, "events-off", datapath_map_fd(off.h->dp, MAP_EVENTS),
		  datapath_map_fd(off.h->dp, MAP_EVENTS_LOST));
	ring_open(&agg.ring, "events-aggregated", datapath_map_fd(agg.h->dp, MAP_EVENTS),
		  datapath_map_fd(agg.h->dp, MAP_EVENTS_LOST));

	/* what each path emits, and that the no_events datapath emits nothing */
	epp_eg = records_per_packet(&on, &deny_eg[0], TC_ACT_SHOT);
	epp_in = records_per_packet(&on, &deny_in[0], TC_ACT_SHOT);
	epp_allow = records_per_packet(&on, &allow[0], TC_ACT_OK);
	if (records_per_packet(&off, &deny_eg[0], TC_ACT_SHOT) ||
	    records_per_packet(&off, &deny_in[0], TC_ACT_SHOT) ||
	    records_per_packet(&off, &allow[0], TC_ACT_OK)) {
		fprintf(stderr, "bench_events_cost: the no_events datapath emitted events\n");
		return 1;
	}
	if (epp_eg != 2 || epp_in != 3 || epp_allow != 2) {
		fprintf(stderr, "bench_events_cost: events per packet: deny-egress %llu, "
				"deny-ingress %llu, allow %llu (2, 3, 2 expected)\n",
			(unsigned long long)epp_eg, (unsigned long long)epp_in,
			(unsigned long long)epp_allow);
		return 1;
	}
	ct_flush(&on);
	ct_flush(&off);
	on.ring.read = 0;
	if (lost_sum(&on.ring)) {
		fprintf(stderr, "bench_events_cost: events lost before the first batch\n");
		return 1;
	}

	/* repeat rows: 0 floor, 1-3 ring floors, 4/5 deny-egress off/on, 6/7 deny-ingress */
	rep[0] = (struct row){.name = "floor", .fd = bpf_program__fd(fl->progs.bench_empty),
			      .want = TC_ACT_OK};
	rep[1] = (struct row){.name = "ring-output1",
			      .fd = bpf_program__fd(ef->progs.ring_output1), .want = TC_ACT_OK,
			      .ring = &fring, .epp = 1};
	rep[2] = (struct row){.name = "ring-output2",
			      .fd = bpf_program__fd(ef->progs.ring_output2), .want = TC_ACT_OK,
			      .ring = &fring, .epp = 2};
	rep[3] = (struct row){.name = "ring-reserve2",
			      .fd = bpf_program__fd(ef->progs.ring_reserve2), .want = TC_ACT_OK,
			      .ring = &fring, .epp = 2};
	rep[4] = (struct row){.name = "deny-egress", .events = "off", .fd = off.fd_from,
			      .pkts = deny_eg, .want = TC_ACT_SHOT, .ring = &off.ring};
	rep[5] = (struct row){.name = "deny-egress", .events = "on", .fd = on.fd_from,
			      .pkts = deny_eg, .want = TC_ACT_SHOT, .ring = &on.ring,
			      .epp = epp_eg, .off_row = 4, .target = true};
	rep[6] = (struct row){.name = "deny-ingress", .events = "off", .fd = off.fd_from,
			      .pkts = deny_in, .want = TC_ACT_SHOT, .ring = &off.ring};
	rep[7] = (struct row){.name = "deny-ingress", .events = "on", .fd = on.fd_from,
			      .pkts = deny_in, .want = TC_ACT_SHOT, .ring = &on.ring,
			      .epp = epp_in, .off_row = 6, .target = true};
	/* the shipping default: a flow's drop reported once a second, repeats aggregated */
	rep[8] = (struct row){.name = "deny-egress", .events = "agg", .fd = agg.fd_from,
			      .pkts = deny_eg, .want = TC_ACT_SHOT, .ring = &agg.ring,
			      .epp = epp_eg, .off_row = 4, .target = true, .at_most = true};
	rep[9] = (struct row){.name = "deny-ingress", .events = "agg", .fd = agg.fd_from,
			      .pkts = deny_in, .want = TC_ACT_SHOT, .ring = &agg.ring,
			      .epp = epp_in, .off_row = 6, .target = true, .at_most = true};
	for (int k = 0; k < 10; k++) {
		rep[k].method = "repeat";
		rep[k].events = rep[k].events ? rep[k].events : "-";
		rep[k].pkts = rep[k].pkts ? rep[k].pkts : deny_eg;
		rep[k].npkts = DENY_FLOWS;
		rep[k].floor_row = 0;
		if (k != 5 && k != 7 && k != 8 && k != 9)
			rep[k].off_row = -1;
	}
	/* single rows: 0 floor, 1/2 deny-egress off/on, 3/4 deny-ingress, 5/6 allow */
	sgl[0] = (struct row){.name = "floor", .events = "-",
			      .fd = bpf_program__fd(fl->progs.bench_empty), .pkts = allow,
			      .npkts = SINGLE_PKTS, .want = TC_ACT_OK, .off_row = -1};
	sgl[1] = (struct row){.name = "deny-egress", .events = "off", .fd = off.fd_from,
			      .pkts = deny_eg, .npkts = DENY_FLOWS, .want = TC_ACT_SHOT,
			      .ring = &off.ring, .off_row = -1};
	sgl[2] = (struct row){.name = "deny-egress", .events = "on", .fd = on.fd_from,
			      .pkts = deny_eg, .npkts = DENY_FLOWS, .want = TC_ACT_SHOT,
			      .ring = &on.ring, .epp = epp_eg, .off_row = 1};
	sgl[3] = (struct row){.name = "deny-ingress", .events = "off", .fd = off.fd_from,
			      .pkts = deny_in, .npkts = DENY_FLOWS, .want = TC_ACT_SHOT,
			      .ring = &off.ring, .off_row = -1};
	sgl[4] = (struct row){.name = "deny-ingress", .events = "on", .fd = on.fd_from,
			      .pkts = deny_in, .npkts = DENY_FLOWS, .want = TC_ACT_SHOT,
			      .ring = &on.ring, .epp = epp_in, .off_row = 3};
	sgl[5] = (struct row){.name = "ct-miss-allow", .events = "off", .fd = off.fd_from,
			      .pkts = allow, .npkts = SINGLE_PKTS, .want = TC_ACT_OK,
			      .ring = &off.ring, .off_row = -1};
	sgl[6] = (struct row){.name = "ct-miss-allow", .events = "on", .fd = on.fd_from,
			      .pkts = allow, .npkts = SINGLE_PKTS, .want = TC_ACT_OK,
			      .ring = &on.ring, .epp = epp_allow, .off_row = 5};
	for (int k = 0; k < 7; k++) {
		sgl[k].method = "single";
		sgl[k].floor_row = 0;
	}

	if (!json)
		fprintf(stderr,
			"bench_events_cost: %u rounds; repeat rows %d packets x %u iterations per "
			"batch; single rows %d packets; events per packet: deny-egress %llu, "
			"deny-ingress %llu, allow %llu\n",
			rounds, DENY_FLOWS, batch, SINGLE_PKTS, (unsigned long long)epp_eg,
			(unsigned long long)epp_in, (unsigned long long)epp_allow);
	for (unsigned int r = 0; r < rounds; r++)
		measure(rep, 10, r, DENY_FLOWS, batch);
	for (unsigned int r = 0; r < rounds; r++) {
		measure(sgl, 7, r, SINGLE_PKTS, 1);
		ct_flush(&on);
		ct_flush(&off);
	}

	lost = lost_sum(&on.ring) + lost_sum(&off.ring) + lost_sum(&agg.ring);
	all_valid = !fring.bad && !on.ring.bad && !off.ring.bad && !agg.ring.bad && lost == 0;
	if (lost)
		fprintf(stderr, "bench_events_cost: %llu events lost\n", (unsigned long long)lost);
	results(rep, 10, rounds, res);
	/* single rows: their floor and off indexes are within their own group */
	results(sgl, 7, rounds, res + 10);
	if (json) {
		print_json(res, 17, all_valid);
	} else {
		print_text(res, 17, all_valid);
		printf("\ntarget: event emission adds <= %.0f%% to a denied packet's hook cost "
		       "(repeat rows, on/off):\n",
		       TARGET_ADD * 100);
		for (int k = 5; k <= 9; k++) {
			if (!res[k].r->target)
				continue;
			printf("  %-13s %-30s %6.1f / %6.1f ns = %.3fx (+%.0f%%, %.1f ns) %s\n",
			       res[k].r->name,
			       res[k].r->at_most ? "default (repeats aggregated)" :
						   "every drop reported",
			       res[k].ns, res[k].off, res[k].ns / res[k].off,
			       (res[k].ns / res[k].off - 1) * 100, res[k].ns - res[k].off,
			       verdict(&res[k], all_valid));
		}
		printf("the ring buffer alone, same run: two 96-byte records cost %.1f ns "
		       "(output) / %.1f ns (reserve+submit) over the floor = %.0f%% / %.0f%% of "
		       "deny-egress with events off\n",
		       res[2].ns - res[2].floor, res[3].ns - res[3].floor,
		       (res[2].ns - res[2].floor) / res[4].ns * 100,
		       (res[3].ns - res[3].floor) / res[4].ns * 100);
		printf("records: %llu written to the events-on ring and checked, %llu at most to "
		       "the aggregated one, 0 to events-off, %llu to the ring floors; %llu lost%s\n",
		       (unsigned long long)on.ring.read, (unsigned long long)agg.ring.read,
		       (unsigned long long)fring.read,
		       (unsigned long long)lost, all_valid ? "" : "  INVALID");
	}
	ring_lag_close(&fring.lag);
	side_close(&on);
	side_close(&off);
	side_close(&agg);
	bench_events_floor__destroy(ef);
	bench_floor__destroy(fl);
	return all_valid ? 0 : 1;
}
