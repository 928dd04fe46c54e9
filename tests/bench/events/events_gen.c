/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Traffic generator and meter of the event throughput bench (tests/bench/bench_events_rate.sh,
 * docs/PERFORMANCE.md "Events"). Lives in a subfolder so that `make bench` does not run it
 * as a bench of its own (mk/bench-events.mk builds it).
 *
 *   events_gen gro NETNS DEV
 *       Turns GRO on for DEV inside NETNS (ETHTOOL_SGRO, what `ethtool -K DEV gro on` does).
 *       A veth only accepts XDP-transmitted frames (ndo_xdp_xmit) from its peer when its
 *       receive side runs NAPI, which it does with GRO on (or an XDP program attached).
 *
 *   events_gen burst --netns PATH --src IP --dst IP [--dev eth0] [--dport N] [--pps N]
 *                    [--seconds S] [--count N] [--chunk N] [--drop] [--bad-ip-csum]
 *                    [--no-attach] [--cpu N] [--pin-dir DIR] [--agent-sock PATH]
 *                    [--agent-pid PID]
 *       One burst, bounded in count (--count, default and cap 50,000,000 frames) and time
 *       (--seconds, default 3, at most 30): enters NETNS (the source pod) and runs
 *       bench_events_gen's program with BPF_PROG_TEST_RUN in live-frames mode on DEV, so every
 *       frame is transmitted out of the pod's eth0 (--drop: dropped by the generator, its own
 *       cost). Frames: Ethernet (pod MAC 0a:58:<src> to its host-side veth's MAC
 *       0e:58:<src>, the simulator's convention) + IPv4 src -> dst (--bad-ip-csum: with a
 *       wrong header checksum) + UDP to --dport (80) from a source port that changes every
 *       frame. The program is attached to the namespace's lo meanwhile (a link, gone with
 *       this process; --no-attach: not), see bench_events_gen.bpf.c. --pps paces the burst
 *       (0: as fast as possible, --chunk frames per run, default 2048): each run sends what
 *       is due, at most 1 ms of traffic, sleeping while less than 32 frames are due.
 *       Before and after it reads the node's pinned per-CPU counters (--pin-dir:
 *       ciliate_metrics, ciliate_events_lost) and the agent's `status` (--agent-sock:
 *       events.seen, events.lost); after the burst it polls the agent every 10 ms until
 *       events.seen has not moved for 200 ms (at most 5 s) and records when it last moved.
 *       --agent-pid adds the agent's CPU time and its reader thread's scheduler statistics
 *       (the thread other than the main one that ran most). --cpu pins the generator.
 *       Prints one JSON object.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "agent/api.h"
#include "bench_events_gen.skel.h"
#include "ciliate/abi.h"
#include "pktbuild.h"

#define MAX_COUNT 50000000ull
#define MAX_SECONDS 30.0
#define CHUNK_MAX 8192 /* frames per BPF_PROG_TEST_RUN, at most */
#define MIN_CHUNK 32

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int enter_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "events_gen: entering %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int cmd_gro(const char *netns, const char *dev)
{
	struct ethtool_value ev = {.cmd = ETHTOOL_SGRO, .data = 1};
	struct ifreq ifr;
	int fd, err = 0;

	if (enter_netns(netns))
		return 1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	ifr.ifr_data = (void *)&ev;
	if (fd < 0 || ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		err = errno;
	ev.cmd = ETHTOOL_GGRO;
	ev.data = 0;
	if (!err && ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		err = errno;
	if (fd >= 0)
		close(fd);
	if (err || !ev.data) {
		fprintf(stderr, "events_gen: GRO on %s: %s\n", dev, err ? strerror(err) : "still off");
		return 1;
	}
	return 0;
}

/* ---- counters ---- */

/* Per-thread scheduler statistics of a process (/proc/PID/task/TID/schedstat: ns on the CPU,
 * ns runnable but waiting for one, slices run). */
#define MAX_TASKS 64
struct tasks {
	int n;
	int tid[MAX_TASKS];
	unsigned long long run[MAX_TASKS], wait[MAX_TASKS], slices[MAX_TASKS];
};

struct counters {
	bool have_maps, have_agent;
	uint64_t denied;   /* ciliate_metrics: POLICY_DENIED packets, both directions */
	uint64_t hook_all; /* ciliate_metrics: every packet counted, any reason */
	uint64_t ring_lost; /* ciliate_events_lost */
	uint64_t seen, lost; /* agent status events.seen / events.lost */
	double agent_cpu_s;
	struct tasks tasks;
	double self_cpu_s;
};

static int ncpus(void)
{
	int n = libbpf_num_possible_cpus();

	return n > 0 ? n : 1;
}

static int read_maps(const char *pin_dir, struct counters *c)
{
	char path[512];
	int n = ncpus(), mfd, lfd;
	struct metrics_value *mv = calloc((size_t)n, sizeof(*mv));
	uint64_t *lv = calloc((size_t)n, sizeof(*lv));
	uint32_t zero = 0;
	int err = -1;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, MAP_METRICS);
	mfd = bpf_obj_get(path);
	snprintf(path, sizeof(path), "%s/%s", pin_dir, MAP_EVENTS_LOST);
	lfd = bpf_obj_get(path);
	if (mfd < 0 || lfd < 0 || !mv || !lv)
		goto out;
	c->denied = c->hook_all = c->ring_lost = 0;
	for (uint32_t reason = 0; reason < CILIATE_REASON_MAX; reason++)
		for (uint32_t dir = 0; dir < DIR_MAX; dir++) {
			uint32_t idx = reason * DIR_MAX + dir;

			if (bpf_map_lookup_elem(mfd, &idx, mv))
				goto out;
			for (int i = 0; i < n; i++) {
				c->hook_all += mv[i].packets;
				if (reason == REASON_POLICY_DENIED)
					c->denied += mv[i].packets;
			}
		}
	if (bpf_map_lookup_elem(lfd, &zero, lv))
		goto out;
	for (int i = 0; i < n; i++)
		c->ring_lost += lv[i];
	c->have_maps = true;
	err = 0;
out:
	if (err)
		fprintf(stderr, "events_gen: reading the maps under %s failed\n", pin_dir);
	if (mfd >= 0)
		close(mfd);
	if (lfd >= 0)
		close(lfd);
	free(mv);
	free(lv);
	return err;
}

static int read_agent(const char *sock, struct counters *c)
{
	json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL, *ev;
	char err[256] = "";
	int rc = agent_call(sock, req, 3000, &resp, err, sizeof(err));

	json_decref(req);
	if (rc) {
		fprintf(stderr, "events_gen: agent status: %s\n", err);
		return -1;
	}
	ev = json_object_get(resp, "events");
	if (!json_is_object(ev)) {
		fprintf(stderr, "events_gen: agent status has no events\n");
		json_decref(resp);
		return -1;
	}
	c->seen = (uint64_t)json_integer_value(json_object_get(ev, "seen"));
	c->lost = (uint64_t)json_integer_value(json_object_get(ev, "lost"));
	c->have_agent = true;
	json_decref(resp);
	return 0;
}

/* utime + stime of a process, seconds (0 if unreadable). */
static double proc_cpu_s(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void read_tasks(int pid, struct tasks *t)
{
	char path[96];
	DIR *d;
	struct dirent *e;

	t->n = 0;
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d)) && t->n < MAX_TASKS) {
		int tid = atoi(e->d_name);
		FILE *f;

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, tid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu %llu %llu", &t->run[t->n], &t->wait[t->n], &t->slices[t->n]) == 3)
			t->tid[t->n++] = tid;
		fclose(f);
	}
	closedir(d);
}

/* The agent's event reader: the thread other than the main one that ran the most. */
static void reader_delta(int pid, const struct tasks *b, const struct tasks *a, double *run,
			 double *wait, unsigned long long *slices)
{
	unsigned long long best = 0;

	*run = *wait = 0;
	*slices = 0;
	for (int i = 0; i < a->n; i++)
		for (int j = 0; j < b->n; j++)
			if (a->tid[i] == b->tid[j] && a->tid[i] != pid &&
			    a->run[i] - b->run[j] >= best) {
				best = a->run[i] - b->run[j];
				*run = (double)best / 1e9;
				*wait = (double)(a->wait[i] - b->wait[j]) / 1e9;
				*slices = a->slices[i] - b->slices[j];
			}
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- the burst ---- */

struct burst_opts {
	const char *netns, *dev, *pin_dir, *agent_sock;
	uint32_t src, dst;
	uint16_t dport;
	uint64_t pps, count;
	double seconds;
	bool drop, bad_csum, no_attach;
	int cpu, agent_pid;
	uint64_t chunk; /* frames per run at most */
};

static int build_frame(const struct burst_opts *o, uint8_t *buf, size_t cap)
{
	uint8_t smac[6] = {0x0a, 0x58}, dmac[6] = {0x0e, 0x58};
	struct pb_ipv4 ip = pb_ipv4_hdr(o->src, o->dst);
	struct pb_udp udp = {.sport = 1024, .dport = o->dport, .len = PB_AUTO, .no_csum = true};
	struct pb_pkt p;

	memcpy(smac + 2, &o->src, 4);
	memcpy(dmac + 2, &o->src, 4);
	ip.bad_csum = o->bad_csum;
	pb_init(&p, buf, cap);
	pb_eth(&p, dmac, smac, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &udp);
	pb_fill(&p, 0, 18); /* 60-byte frame, the Ethernet minimum without FCS */
	return pb_finish(&p);
}

static void print_json(const struct burst_opts *o, uint64_t sent, uint64_t runs, double t_gen,
		       double t_seen, const struct counters *b, const struct counters *a, int errors)
{
	printf("{\"mode\":\"%s\",\"target_pps\":%llu,\"sent\":%llu,\"runs\":%llu,"
	       "\"gen_s\":%.4f,\"sent_pps\":%.0f,\"errors\":%d",
	       o->drop ? "gen-drop" : "tx", (unsigned long long)o->pps, (unsigned long long)sent,
	       (unsigned long long)runs, t_gen, t_gen > 0 ? (double)sent / t_gen : 0, errors);
	if (a->have_maps)
		printf(",\"hook_packets\":%llu,\"denied\":%llu,\"ring_lost\":%llu",
		       (unsigned long long)(a->hook_all - b->hook_all),
		       (unsigned long long)(a->denied - b->denied),
		       (unsigned long long)(a->ring_lost - b->ring_lost));
	if (a->have_agent)
		printf(",\"seen\":%llu,\"lost\":%llu,\"seen_s\":%.4f,\"decoded_per_s\":%.0f",
		       (unsigned long long)(a->seen - b->seen), (unsigned long long)(a->lost - b->lost),
		       t_seen, t_seen > 0 ? (double)(a->seen - b->seen) / t_seen : 0);
	printf(",\"gen_cpu_s\":%.3f", a->self_cpu_s - b->self_cpu_s);
	if (o->agent_pid > 0) {
		double run, wait;
		unsigned long long slices;

		reader_delta(o->agent_pid, &b->tasks, &a->tasks, &run, &wait, &slices);
		printf(",\"agent_cpu_s\":%.3f,\"reader_run_s\":%.3f,\"reader_wait_s\":%.3f,"
		       "\"reader_slices\":%llu",
		       a->agent_cpu_s - b->agent_cpu_s, run, wait, slices);
	}
	printf("}\n");
}

static int cmd_burst(const struct burst_opts *o)
{
	struct bench_events_gen *skel;
	uint8_t frame[128];
	struct bpf_link *link = NULL;
	int len, prog_fd, ifindex, lo, errors = 0;
	struct counters before = {0}, after = {0};
	uint64_t sent = 0, runs = 0, max_chunk;
	double t0, t1, t_seen = 0, deadline;

	if (o->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			fprintf(stderr, "events_gen: cpu %d: %s\n", o->cpu, strerror(errno));
	}
	len = build_frame(o, frame, sizeof(frame));
	if (len <= 0) {
		fprintf(stderr, "events_gen: building the frame failed\n");
		return 1;
	}
	if (enter_netns(o->netns))
		return 1;
	ifindex = (int)if_nametoindex(o->dev);
	lo = (int)if_nametoindex("lo");
	if (!ifindex || !lo) {
		fprintf(stderr, "events_gen: no %s or lo in %s\n", o->dev, o->netns);
		return 1;
	}
	skel = bench_events_gen__open();
	if (!skel) {
		fprintf(stderr, "events_gen: opening bench_events_gen: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->gen_ifindex = (uint32_t)ifindex;
	skel->rodata->gen_drop = o->drop;
	if (bench_events_gen__load(skel)) {
		fprintf(stderr, "events_gen: loading bench_events_gen: %s\n", strerror(errno));
		goto fail;
	}
	prog_fd = bpf_program__fd(skel->progs.gen);
	/* keeps the program in the XDP dispatcher (see bench_events_gen.bpf.c); a link, so it
	 * goes away with this process whatever happens */
	if (!o->no_attach) {
		link = bpf_program__attach_xdp(skel->progs.gen, lo);
		if (!link) {
			fprintf(stderr, "events_gen: attaching to lo: %s\n", strerror(errno));
			goto fail;
		}
	}
	if ((o->pin_dir && read_maps(o->pin_dir, &before)) ||
	    (o->agent_sock && read_agent(o->agent_sock, &before)))
		goto fail;
	before.agent_cpu_s = proc_cpu_s(o->agent_pid);
	read_tasks(o->agent_pid, &before.tasks);
	before.self_cpu_s = self_cpu_s();

	/* Paced: each run sends what is due by now (at least MIN_CHUNK frames, at most 1 ms of
	 * traffic; behind schedule, runs follow each other until it has caught up), sleeping
	 * until MIN_CHUNK frames are due. Unpaced: max_chunk frames per run. */
	max_chunk = o->pps ? o->pps / 1000 : o->chunk;
	if (max_chunk < MIN_CHUNK)
		max_chunk = MIN_CHUNK;
	if (max_chunk > o->chunk)
		max_chunk = o->chunk;
	t0 = now_s();
	deadline = t0 + o->seconds;
	for (double t = t0; sent < o->count && t < deadline; t = now_s()) {
		/* the kernel wants data_end = the frame's length (no metadata before it) */
		struct xdp_md ctx = {.data_end = (uint32_t)len,
				     .ingress_ifindex = (uint32_t)ifindex};
		uint64_t n = max_chunk;

		if (o->pps) {
			double due = (double)o->pps * (t - t0) - (double)sent;

			if (due < MIN_CHUNK) {
				double w = (MIN_CHUNK - due) / (double)o->pps;
				struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(w * 1e9)};

				nanosleep(&ts, NULL);
				continue;
			}
			n = due < (double)max_chunk ? (uint64_t)due : max_chunk;
		}
		if (n > o->count - sent)
			n = o->count - sent;
		LIBBPF_OPTS(bpf_test_run_opts, r, .data_in = frame, .data_size_in = (uint32_t)len,
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = (int)n,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
		if (bpf_prog_test_run_opts(prog_fd, &r) < 0) {
			fprintf(stderr, "events_gen: BPF_PROG_TEST_RUN (live frames): %s\n",
				strerror(errno));
			errors++;
			break;
		}
		sent += n;
		runs++;
	}
	t1 = now_s();
	after.self_cpu_s = self_cpu_s();

	/* let the agent catch up: until events.seen has not moved for 200 ms (at most 5 s) */
	if (o->agent_sock) {
		struct counters c = {0};
		uint64_t last = before.seen;
		double moved = t1, stop = t1 + 5.0;

		for (;;) {
			double t = now_s();

			if (read_agent(o->agent_sock, &c))
				goto fail;
			if (c.seen != last) {
				last = c.seen;
				moved = t;
			} else if (t - moved >= 0.2 || t >= stop) {
				break;
			}
			usleep(10000);
		}
		/* the last poll that saw it move bounds when the last event was decoded */
		t_seen = moved - t0;
		after.seen = c.seen;
		after.lost = c.lost;
		after.have_agent = true;
	}
	if (o->pin_dir && read_maps(o->pin_dir, &after))
		goto fail;
	after.agent_cpu_s = proc_cpu_s(o->agent_pid);
	read_tasks(o->agent_pid, &after.tasks);
	print_json(o, sent, runs, t1 - t0, t_seen, &before, &after, errors);
	bpf_link__destroy(link);
	bench_events_gen__destroy(skel);
	return errors ? 1 : 0;
fail:
	bpf_link__destroy(link);
	bench_events_gen__destroy(skel);
	return 1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: events_gen gro NETNS DEV\n"
		"       events_gen burst --netns PATH --src IP --dst IP [--dev eth0] [--dport 80]\n"
		"                  [--pps N] [--seconds S] [--count N] [--chunk N] [--drop]\n"
		"                  [--bad-ip-csum] [--no-attach] [--cpu N] [--pin-dir DIR]\n"
		"                  [--agent-sock PATH] [--agent-pid PID]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct burst_opts o = {.dev = "eth0", .dport = 80, .count = MAX_COUNT, .seconds = 3,
			       .cpu = -1, .chunk = 2048};
	struct in_addr a;

	if (argc == 4 && !strcmp(argv[1], "gro"))
		return cmd_gro(argv[2], argv[3]);
	if (argc < 2 || strcmp(argv[1], "burst"))
		return usage();
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(k, "--drop")) {
			o.drop = true;
			continue;
		}
		if (!strcmp(k, "--no-attach")) {
			o.no_attach = true;
			continue;
		}
		if (!strcmp(k, "--bad-ip-csum")) {
			o.bad_csum = true;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (!strcmp(k, "--netns"))
			o.netns = v;
		else if (!strcmp(k, "--dev"))
			o.dev = v;
		else if (!strcmp(k, "--src") && inet_pton(AF_INET, v, &a) == 1)
			o.src = a.s_addr;
		else if (!strcmp(k, "--dst") && inet_pton(AF_INET, v, &a) == 1)
			o.dst = a.s_addr;
		else if (!strcmp(k, "--dport"))
			o.dport = (uint16_t)atoi(v);
		else if (!strcmp(k, "--pps"))
			o.pps = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--seconds"))
			o.seconds = atof(v);
		else if (!strcmp(k, "--count"))
			o.count = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--chunk"))
			o.chunk = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--cpu"))
			o.cpu = atoi(v);
		else if (!strcmp(k, "--pin-dir"))
			o.pin_dir = v;
		else if (!strcmp(k, "--agent-sock"))
			o.agent_sock = v;
		else if (!strcmp(k, "--agent-pid"))
			o.agent_pid = atoi(v);
		else
			return usage();
	}
	if (!o.netns || !o.src || !o.dst || o.count == 0 || o.count > MAX_COUNT ||
	    o.chunk < MIN_CHUNK || o.chunk > CHUNK_MAX ||
	    !(o.seconds > 0 && o.seconds <= MAX_SECONDS))
		return usage();
	return cmd_burst(&o);
}
