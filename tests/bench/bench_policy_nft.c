/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy cost through veth: ciliate's pod programs against an equivalent nftables rule set,
 * side by side in one run, over the same packets and the same three namespaces:
 *
 *   client (pod) --veth-- router (node: host-side veths) --veth-- server (pod)
 *
 * Every packet is the first of a new UDP connection (the source port varies), so every
 * packet is subject to policy; the client's egress admits the measured flows by the LAST of
 * N rules (1, 100, 10k), the others naming other peers and ports. Variants, interleaved
 * round by round (the start rotates) so drift and background load spread over all of them:
 *
 *   floor          plain routing in the router namespace, no filter
 *   tc-empty       the same with an empty TC program on both hooks of both host-side veths
 *                  (what attaching anything to TC costs)
 *   ciliate N      from_container/to_container on both host-side veths, N policy entries;
 *                  conntrack is emptied before each burst (every packet is CT_NEW)
 *   ciliate-est    the same with the largest N, established flows (CT hit, no policy lookup)
 *   nft-chain N    forward hook, "ip saddr <client> jump", then N linear rules
 *                  "ip daddr A udp dport P accept" (the matching one last), policy drop
 *   nft-set N      same jump, then one rule: ip daddr . udp dport @set (N elements)
 *   nft-ct-set     the largest set behind "ct state established,related accept", the way
 *                  a stateful policy controller writes it; conntrack is flushed before each
 *                  burst, so every packet creates a conntrack entry (as ciliate's do)
 *
 * The nftables chains are stateless (no conntrack): every packet walks them. Before timing,
 * each variant must drop packets to a port no rule allows (the floor must deliver them), so
 * a filter that does not filter fails the bench instead of producing a number.
 *
 * Timing: each variant sends, per round, 8 slices of PACKETS/8 new flows (fewer for a
 * variant whose slice would last over ~2 ms), timed one by one; the round keeps the best
 * slice (on this shared 2-CPU machine most slices are disturbed by other work), and the
 * table shows the median over rounds and the ratio to the same round's floor.
 *
 * Usage: bench_policy_nft [-n PACKETS] [-r ROUNDS] [-s N,N,...] [-t SECONDS] [-o json]
 * Needs root; prints SKIP and exits 0 when netns or nf_tables are unavailable.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bench_floor.skel.h"
#include "ciliate/abi.h"
#include "nft/ciliate_dp.h"
#include "nft/netlab.h"
#include "nft/rulegen.h"
#include "nft/tcattach.h"
#include "nft/traffic.h"
#include "pktbuild.h"

#define MAX_SIZES     4
#define MAX_ROUNDS    50
#define MAX_VARIANTS  (4 + 3 * MAX_SIZES)
#define PACKETS_MAX   3000 /* 3 events per new connection must fit the 1 MiB event ring */
#define PROBE_PACKETS 8
#define IDLE_MS	      300
#define SLICE_NS      2e6 /* target duration of one timed slice */
#define SLICES	      8	  /* timed slices per variant and round */
#define NFT_TABLE     "nfb"

#define CLIENT_IP    PB_IP4(10, 244, 0, 21)
#define SERVER_IP    PB_IP4(10, 244, 1, 10)
#define PORT_ALLOWED 5201
#define PORT_DENIED  5202
#define SPORT0	     20000

enum kind { K_FLOOR, K_TC_EMPTY, K_CILIATE, K_CILIATE_EST, K_NFT_CHAIN, K_NFT_SET, K_NFT_CT_SET };

struct variant {
	enum kind kind;
	int size; /* index into sizes (not for the floor) */
	char name[32];
	double ns[MAX_ROUNDS];
	double over[MAX_ROUNDS];  /* ns above the same round's floor */
	double ratio[MAX_ROUNDS]; /* vs the same round's floor */
	long lost;
	int slice; /* packets per timed slice (fewer for slow variants) */
};

struct bench {
	struct netlab lab;
	const char *cli, *rtr, *srv;
	struct pod_wiring wc, ws;
	int router_if[2]; /* host-side veths: vc (client), vs (server) */
	int tx_fd, rx_allowed, rx_denied;
	struct frameset flows, probe;
	unsigned int sizes[MAX_SIZES];
	int nsizes;
	struct ciliate_side *cs[MAX_SIZES];
	struct bench_floor *empty;
	struct variant v[MAX_VARIANTS];
	int nv;
	int packets, rounds, json;
	int slice;   /* packets per timed slice of a burst */
	double load; /* 1-minute load average when the run started: context for the noise */
};

static void skip(const char *why)
{
	printf("SKIP: %s\n", why);
}

static int parse_sizes(struct bench *b, const char *s)
{
	char *dup = strdup(s), *save = NULL;

	b->nsizes = 0;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;
		long n = strtol(t, &end, 10);

		if (*end || n < 1 || n > 20000 || b->nsizes == MAX_SIZES) {
			fprintf(stderr,
				"bench_policy_nft: -s %s: want up to %d rule counts in "
				"1..20000, comma-separated\n",
				s, MAX_SIZES);
			free(dup);
			return -1;
		}
		b->sizes[b->nsizes++] = (unsigned int)n;
	}
	free(dup);
	return b->nsizes ? 0 : -1;
}

static int set_neigh(const char *ns, const char *dev, const char *ip, const uint8_t m[6])
{
	return lab_sh("ip -n %s neigh replace %s lladdr %02x:%02x:%02x:%02x:%02x:%02x dev %s "
		      "nud permanent",
		      ns, ip, m[0], m[1], m[2], m[3], m[4], m[5], dev);
}

/* client, router, server; the router forwards between two /24s and knows the server's MAC */
static int build_topology(struct bench *b)
{
	struct netlab *l = &b->lab;
	int idx;

	if (lab_add_ns(l, "cli", &b->cli) || lab_add_ns(l, "rtr", &b->rtr) ||
	    lab_add_ns(l, "srv", &b->srv))
		return -1;
	if (lab_sh("ip -n %s link add vc type veth peer name eth0 netns %s", b->rtr, b->cli) ||
	    lab_sh("ip -n %s link add vs type veth peer name eth0 netns %s", b->rtr, b->srv) ||
	    lab_sh("ip -n %s addr add 10.244.0.1/24 dev vc", b->rtr) ||
	    lab_sh("ip -n %s addr add 10.244.1.1/24 dev vs", b->rtr) ||
	    lab_sh("ip -n %s addr add 10.244.0.21/24 dev eth0", b->cli) ||
	    lab_sh("ip -n %s addr add 10.244.1.10/24 dev eth0", b->srv) ||
	    lab_sh("ip -n %s link set vc up && ip -n %s link set vs up", b->rtr, b->rtr) ||
	    lab_sh("ip -n %s link set eth0 up", b->cli) ||
	    lab_sh("ip -n %s link set eth0 up", b->srv) ||
	    lab_sh("ip -n %s route add default via 10.244.0.1", b->cli) ||
	    lab_sh("ip -n %s route add default via 10.244.1.1", b->srv) ||
	    lab_sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=1", b->rtr))
		return -1;

	if (lab_if_info(l, b->rtr, "vc", &b->wc.host_ifindex, b->wc.host_mac) ||
	    lab_if_info(l, b->cli, "eth0", &idx, b->wc.pod_mac) ||
	    lab_if_info(l, b->rtr, "vs", &b->ws.host_ifindex, b->ws.host_mac) ||
	    lab_if_info(l, b->srv, "eth0", &idx, b->ws.pod_mac))
		return -1;
	b->router_if[0] = b->wc.host_ifindex, b->router_if[1] = b->ws.host_ifindex;
	b->wc.addr = CLIENT_IP, b->wc.ep_id = 1, b->wc.identity = 300;
	b->wc.flags = EP_F_EGRESS_ENFORCED;
	b->ws.addr = SERVER_IP, b->ws.ep_id = 2, b->ws.identity = 400, b->ws.flags = 0;
	/* no ARP inside a timed burst */
	return set_neigh(b->rtr, "vs", "10.244.1.10", b->ws.pod_mac) ||
	       set_neigh(b->cli, "eth0", "10.244.0.1", b->wc.host_mac);
}

/* nf_tables must be built into the kernel (no modules can be loaded here) and nft present */
static int nft_available(const struct bench *b, char *why, size_t len)
{
	if (lab_sh_quiet("command -v nft")) {
		snprintf(why, len,
			 "the nft command is missing (ci/install-deps.sh installs nftables)");
		return 0;
	}
	if (lab_sh_quiet("ip netns exec %s nft add table ip nfb_probe", b->rtr)) {
		snprintf(why, len,
			 "the kernel has no usable nf_tables (creating a table in a "
			 "private namespace failed; CONFIG_NF_TABLES built in is required, "
			 "modules cannot be loaded)");
		return 0;
	}
	lab_sh_quiet("ip netns exec %s nft delete table ip nfb_probe", b->rtr);
	return 1;
}

static int load_nft(const struct bench *b, const struct peer_rule *r, unsigned int n)
{
	char cmd[256];
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s nft -f -", b->rtr);
	p = popen(cmd, "w");
	if (!p) {
		fprintf(stderr, "bench_policy_nft: running nft: %s\n", strerror(errno));
		return -1;
	}
	rulegen_write_nft(p, NFT_TABLE, r, n);
	st = pclose(p);
	if (st) {
		fprintf(stderr, "bench_policy_nft: nft -f rejected the %u-rule set\n", n);
		return -1;
	}
	return 0;
}

static int open_traffic(struct bench *b)
{
	struct flow_spec spec = {
		.saddr = CLIENT_IP, .daddr = SERVER_IP, .sport0 = SPORT0, .dport = PORT_ALLOWED};
	if (frameset_build(&b->flows, b->packets, &spec))
		return -1;
	spec.dport = PORT_DENIED;
	if (frameset_build(&b->probe, PROBE_PACKETS, &spec))
		return -1;
	if (lab_enter(b->cli))
		return -1;
	b->tx_fd = traffic_tx_socket();
	if (lab_leave(&b->lab) || b->tx_fd < 0 || lab_enter(b->srv))
		return -1;
	b->rx_allowed = traffic_rx_socket(SERVER_IP, PORT_ALLOWED);
	b->rx_denied = traffic_rx_socket(SERVER_IP, PORT_DENIED);
	if (lab_leave(&b->lab) || b->rx_allowed < 0 || b->rx_denied < 0)
		return -1;
	return 0;
}

static void add_variant(struct bench *b, enum kind k, int size)
{
	static const char *const names[] = {"floor",	 "tc-empty", "ciliate",	  "ciliate-est",
					    "nft-chain", "nft-set",  "nft-ct-set"};
	struct variant *v = &b->v[b->nv++];

	memset(v, 0, sizeof(*v));
	v->kind = k;
	v->size = size;
	snprintf(v->name, sizeof(v->name), "%s", names[k]);
}

static int burst(struct bench *b, const struct frameset *fs, int rx, struct burst_result *r)
{
	traffic_drain(b->rx_allowed);
	traffic_drain(b->rx_denied);
	return traffic_burst(b->tx_fd, fs, rx, IDLE_MS, &lab_stop, r);
}

static int setup(struct bench *b, const struct variant *v)
{
	unsigned int n = b->sizes[v->size];
	struct burst_result r;
	int err = 0;

	switch (v->kind) {
	case K_FLOOR:
		return 0;
	case K_TC_EMPTY:
		if (lab_enter(b->rtr))
			return -1;
		err = tc_attach_all(b->router_if, 2, bpf_program__fd(b->empty->progs.bench_empty),
				    bpf_program__fd(b->empty->progs.bench_empty));
		return lab_leave(&b->lab) || err ? -1 : 0;
	case K_CILIATE:
	case K_CILIATE_EST:
		if (lab_enter(b->rtr))
			return -1;
		err = cside_attach(b->cs[v->size]);
		if (lab_leave(&b->lab) || err || cside_reset(b->cs[v->size]) < 0)
			return -1;
		/* established flows: one untimed burst creates their conntrack entries */
		if (v->kind == K_CILIATE_EST && burst(b, &b->flows, b->rx_allowed, &r))
			return -1;
		return 0;
	case K_NFT_CHAIN:
	case K_NFT_SET:
		return lab_sh("ip netns exec %s nft 'add chain ip " NFT_TABLE
			      " pod_egress { type filter "
			      "hook forward priority 0; policy drop; }; add rule ip " NFT_TABLE
			      " pod_egress ip saddr 10.244.0.21 jump %s_%u'",
			      b->rtr, v->kind == K_NFT_CHAIN ? "lin" : "set", n);
	case K_NFT_CT_SET:
		/* the ct expression turns conntrack on in this namespace for as long as the chain
		 * exists; the flush makes every measured packet a new connection again */
		return lab_sh("ip netns exec %s nft 'add chain ip " NFT_TABLE
			      " pod_egress { type filter "
			      "hook forward priority 0; policy drop; }; add rule ip " NFT_TABLE
			      " pod_egress ct state established,related accept; add rule "
			      "ip " NFT_TABLE " pod_egress ip saddr 10.244.0.21 jump set_%u'",
			      b->rtr, n) ||
		       lab_sh("ip netns exec %s conntrack -F", b->rtr);
	}
	return -1;
}

static int teardown(struct bench *b, const struct variant *v)
{
	int err = 0;

	switch (v->kind) {
	case K_FLOOR:
		return 0;
	case K_TC_EMPTY:
	case K_CILIATE:
	case K_CILIATE_EST:
		if (lab_enter(b->rtr))
			return -1;
		err = tc_detach_all(b->router_if, 2);
		return lab_leave(&b->lab) || err ? -1 : 0;
	case K_NFT_CHAIN:
	case K_NFT_SET:
	case K_NFT_CT_SET:
		return lab_sh("ip netns exec %s nft delete chain ip " NFT_TABLE " pod_egress",
			      b->rtr);
	}
	return -1;
}

/*
 * SLICES timed slices of `slice` new flows each: the best (least disturbed by other work on
 * the CPU) per-packet time in *best_ns; allowed packets that did not arrive add to *lost.
 * A variant measures the same number of slices whatever their size, so "best of" means the
 * same for all variants.
 */
static int timed_slices(struct bench *b, int slice, double *best_ns, long *lost)
{
	*best_ns = 0;
	for (int i = 0; i < SLICES && !lab_stop; i++) {
		struct frameset part;
		struct burst_result r;
		double ns;

		frameset_slice(&b->flows, i * slice, slice, &part);
		if (burst(b, &part, b->rx_allowed, &r))
			return -1;
		*lost += slice - r.received;
		ns = r.seconds * 1e9 / slice;
		if (!*best_ns || ns < *best_ns)
			*best_ns = ns;
	}
	return 0;
}

/* Untimed: the variant drops a port no rule allows (the floor delivers it) and delivers
 * every measured flow; also warms caches and sizes the variant's slices. */
static int verify(struct bench *b, struct variant *v)
{
	struct burst_result r;
	int want = v->kind == K_FLOOR || v->kind == K_TC_EMPTY ? PROBE_PACKETS : 0;
	long lost = 0;
	double ns;

	if (burst(b, &b->probe, b->rx_denied, &r))
		return -1;
	if (r.received != want) {
		fprintf(stderr,
			"bench_policy_nft: %s %u: %d of %d packets to the denied port "
			"arrived, expected %d\n",
			v->name, b->sizes[v->size], r.received, PROBE_PACKETS, want);
		return -1;
	}
	if (v->kind == K_CILIATE && cside_reset(b->cs[v->size]) < 0)
		return -1;
	if (v->kind == K_NFT_CT_SET && lab_sh("ip netns exec %s conntrack -F", b->rtr))
		return -1;
	if (timed_slices(b, b->slice, &ns, &lost))
		return -1;
	if (lost) {
		fprintf(stderr,
			"bench_policy_nft: %s %u: %ld of %d allowed packets did not arrive\n",
			v->name, b->sizes[v->size], lost, SLICES * b->slice);
		return -1;
	}
	/* a slice should last about SLICE_NS: long ones are always cut by other work */
	v->slice = (int)(SLICE_NS / ns);
	if (v->slice > b->slice)
		v->slice = b->slice;
	if (v->slice < 4)
		v->slice = 4;
	return 0;
}

/* One round: the variant's figure is its best slice. */
static int measure(struct bench *b, struct variant *v, int round)
{
	return timed_slices(b, v->slice, &v->ns[round], &v->lost);
}

static int run_variant(struct bench *b, struct variant *v, int round)
{
	int err;

	if (setup(b, v))
		return -1;
	err = round < 0 ? verify(b, v) : measure(b, v, round);
	if (teardown(b, v) || err)
		return -1;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *xs, int n)
{
	double s[MAX_ROUNDS];

	memcpy(s, xs, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void report(struct bench *b)
{
	const struct variant *fl = &b->v[0];

	for (int i = 0; i < b->nv; i++)
		for (int r = 0; r < b->rounds; r++) {
			b->v[i].ratio[r] = b->v[i].ns[r] / fl->ns[r];
			b->v[i].over[r] = b->v[i].ns[r] - fl->ns[r];
		}
	if (b->json) {
		printf("{\"packets\":%d,\"slice\":%d,\"rounds\":%d,\"load_average\":%.2f,\"floor_"
		       "ns\":%.1f,"
		       "\"variants\":[",
		       b->packets, b->slice, b->rounds, b->load, median(fl->ns, b->rounds));
		for (int i = 0; i < b->nv; i++) {
			const struct variant *v = &b->v[i];
			double s[MAX_ROUNDS];

			memcpy(s, v->ns, sizeof(s));
			qsort(s, (size_t)b->rounds, sizeof(*s), cmp_double);
			printf("%s{\"name\":\"%s\",\"rules\":%u,\"ns\":%.1f,\"min_ns\":%.1f,"
			       "\"max_ns\":%.1f,\"ratio_floor\":%.3f,\"over_floor_ns\":%.1f,"
			       "\"slice\":%d,\"lost\":%ld}",
			       i ? "," : "", v->name, v->kind <= K_TC_EMPTY ? 0 : b->sizes[v->size],
			       median(v->ns, b->rounds), s[0], s[b->rounds - 1],
			       median(v->ratio, b->rounds), median(v->over, b->rounds), v->slice,
			       v->lost);
		}
		printf("]}\n");
		return;
	}
	printf("per variant and round: %d timed slices of up to %d packets (each a new UDP flow; "
	       "~2 ms at most), the best slice; medians over %d rounds; load average %.2f at "
	       "start\n",
	       SLICES, b->slice, b->rounds, b->load);
	printf("%-12s %6s %10s %10s %10s %9s %10s %6s\n", "VARIANT", "RULES", "NS/PACKET", "MIN",
	       "MAX", "VS FLOOR", "+NS", "SLICE");
	for (int i = 0; i < b->nv; i++) {
		const struct variant *v = &b->v[i];
		double s[MAX_ROUNDS];
		char rules[16] = "-";

		memcpy(s, v->ns, sizeof(s));
		qsort(s, (size_t)b->rounds, sizeof(*s), cmp_double);
		if (v->kind > K_TC_EMPTY)
			snprintf(rules, sizeof(rules), "%u", b->sizes[v->size]);
		printf("%-12s %6s %10.1f %10.1f %10.1f %8.2fx %10.1f %6d\n", v->name, rules,
		       median(v->ns, b->rounds), s[0], s[b->rounds - 1],
		       median(v->ratio, b->rounds), median(v->over, b->rounds), v->slice);
	}
}

static int run(struct bench *b)
{
	char why[256];

	if (build_topology(b))
		return -1;
	if (!nft_available(b, why, sizeof(why))) {
		skip(why);
		return 1;
	}
	if (open_traffic(b))
		return -1;
	for (int s = 0; s < b->nsizes && !lab_stop; s++) {
		struct peer_rule *r =
			rulegen_make(b->sizes[s], b->ws.identity, SERVER_IP, PORT_ALLOWED);

		if (!r)
			return -1;
		if (!b->json)
			fprintf(stderr, "bench_policy_nft: loading %u rules...\n", b->sizes[s]);
		b->cs[s] = cside_open(&b->wc, &b->ws, r, b->sizes[s]);
		if (!b->cs[s] || load_nft(b, r, b->sizes[s])) {
			free(r);
			return -1;
		}
		free(r);
	}
	b->empty = bench_floor__open_and_load();
	if (!b->empty) {
		fprintf(stderr, "bench_policy_nft: loading bench_floor: %s\n", strerror(errno));
		return -1;
	}
	add_variant(b, K_FLOOR, 0);
	add_variant(b, K_TC_EMPTY, 0);
	for (int s = 0; s < b->nsizes; s++) {
		add_variant(b, K_CILIATE, s);
		add_variant(b, K_NFT_CHAIN, s);
		add_variant(b, K_NFT_SET, s);
	}
	add_variant(b, K_CILIATE_EST, b->nsizes - 1);
	if (!lab_sh_quiet("command -v conntrack"))
		add_variant(b, K_NFT_CT_SET, b->nsizes - 1);
	else
		fprintf(stderr, "bench_policy_nft: no conntrack command: nft-ct-set left out "
				"(ci/install-deps.sh installs it)\n");

	for (int i = 0; i < b->nv && !lab_stop; i++)
		if (run_variant(b, &b->v[i], -1))
			return -1;
	for (int r = 0; r < b->rounds && !lab_stop; r++) {
		if (!b->json)
			fprintf(stderr, "bench_policy_nft: round %d/%d\n", r + 1, b->rounds);
		for (int i = 0; i < b->nv && !lab_stop; i++)
			if (run_variant(b, &b->v[(i + r) % b->nv], r))
				return -1;
	}
	if (lab_stop) {
		fprintf(stderr, "bench_policy_nft: interrupted (signal or time limit)\n");
		return -1;
	}
	for (int i = 0; i < b->nv; i++)
		if (b->v[i].lost) {
			fprintf(stderr, "bench_policy_nft: %s lost %ld allowed packets\n",
				b->v[i].name, b->v[i].lost);
			return -1;
		}
	report(b);
	return 0;
}

static void pin_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort: less migration noise */
}

int main(int argc, char **argv)
{
	static struct bench b;
	unsigned int limit = 300;
	int rc;

	b.packets = 2000, b.rounds = 11, b.tx_fd = b.rx_allowed = b.rx_denied = -1;
	parse_sizes(&b, "1,100,10000");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n") && val)
			b.packets = atoi(val), i++;
		else if (!strcmp(a, "-r") && val)
			b.rounds = atoi(val), i++;
		else if (!strcmp(a, "-t") && val)
			limit = (unsigned int)atoi(val), i++;
		else if (!strcmp(a, "-s") && val) {
			if (parse_sizes(&b, val))
				return 2;
			i++;
		} else if (!strcmp(a, "-o") && val && !strcmp(val, "json"))
			b.json = 1, i++;
		else {
			fprintf(stderr, "usage: bench_policy_nft [-n PACKETS] [-r ROUNDS] "
					"[-s N,N,...] [-t SECONDS] [-o json]\n");
			return 2;
		}
	}
	if (b.packets < 16 || b.packets > PACKETS_MAX || b.rounds < 1 || b.rounds > MAX_ROUNDS ||
	    limit < 5 || limit > 3600) {
		fprintf(stderr, "bench_policy_nft: want -n 16..%d, -r 1..%d, -t 5..3600\n",
			PACKETS_MAX, MAX_ROUNDS);
		return 2;
	}
	if (geteuid() != 0) {
		skip("network namespaces and nftables need root");
		return 0;
	}
	if (getloadavg(&b.load, 1) != 1)
		b.load = -1;
	lab_catch_signals(limit);
	pin_cpu();
	if (lab_init(&b.lab, "nfb-pn"))
		return 1;
	b.slice = b.packets / SLICES;
	rc = run(&b);

	for (int s = 0; s < b.nsizes; s++)
		cside_close(b.cs[s]);
	bench_floor__destroy(b.empty);
	if (b.tx_fd >= 0)
		close(b.tx_fd);
	if (b.rx_allowed >= 0)
		close(b.rx_allowed);
	if (b.rx_denied >= 0)
		close(b.rx_denied);
	frameset_free(&b.flows);
	frameset_free(&b.probe);
	lab_destroy(&b.lab);
	return rc < 0 ? 1 : 0;
}
