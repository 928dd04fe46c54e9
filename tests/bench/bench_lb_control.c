/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control plane of services: S ClusterIP services x B backends (default 10,000 x 10) turned
 * into datapath state three ways, side by side in one run (docs/PERFORMANCE.md):
 *
 * - ciliate: the agent's own reconcile (datapath/agent: store cache -> model parts -> model
 *   -> node state -> wanted map contents -> diff -> bpf_map_update_elem), on a private
 *   (unpinned) datapath, from empty maps; then one service's EndpointSlice changed (one
 *   backend replaced) with everything loaded, which is a store event followed by the same
 *   reconcile (the agent has no per-service path: it recomputes the node state and writes
 *   only the entries that differ). The floor is raw bpf_map_update_elem of the same entries
 *   into the same maps.
 * - iptables: kube-proxy's iptables-mode rules (KUBE-SERVICES -> KUBE-SVC-* with statistic
 *   random probabilities -> KUBE-SEP-* DNAT) loaded with `iptables-restore --noflush` (as
 *   kube-proxy does), nft backend (Debian's default) and legacy; the one-service change as
 *   kube-proxy's partial sync (KUBE-SERVICES rewritten whole, the changed service's chains
 *   only, the stale endpoint chain deleted).
 * - nftables: the same services as one table with a verdict map (address . protocol . port
 *   -> goto service chain, numgen random vmap to the endpoint chains), `nft -f`; the change
 *   as one transaction (flush + refill the service chain, add / delete the endpoint chains).
 *
 * iptables and nft run only inside a network namespace this bench creates (cil-bench-PID)
 * and removes on exit, on error and on SIGINT/SIGTERM/SIGHUP; a child refuses to exec when
 * it finds itself in the bench's own (root) namespace.
 *
 * 10,000 x 10 needs 110,000 service slots and 100,000 backends (the datapath's LB maps held
 * 65,536 until 9cc685e; 262,144 since). When a size does not fit the datapath's maps, they are
 * replaced, for the agent's writes, by maps of the same type, key, value and flags created by
 * the bench with room enough (the link wraps datapath_map_fd, mk/bench-lb-control.mk); the
 * output says which maps are used. -F replaces them at every size (to compare the two).
 *
 * Usage: bench_lb_control [-s SERVICES] [-b BACKENDS] [-r REPS] [-R IPT_REPS] [-T LIMIT_S]
 *        [-F] [-k] [-v]
 *        bench_lb_control --smoke     (100 x 10, every result checked, exit 1 on a mismatch)
 * -k: skip iptables/nft (ciliate rows only).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <bpf/bpf.h>

#include "agent/agent.h"
#include "ciliate/abi.h"
#include "loader/datapath.h"

/* ---- the agent's logger and clock (main.c is not linked) ------------------------------ */

static bool verbose;

void agent_log(const struct agent *a, const char *fmt, ...)
{
	va_list ap;

	(void)a;
	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- LB map substitution (see the header) ---------------------------------------------- */

enum { SUB_SERVICES, SUB_BACKENDS, SUB_REVNAT, SUB_COUNT };
static const char *const sub_name[SUB_COUNT] = {MAP_LB_SERVICES, MAP_LB_BACKENDS, MAP_LB_REVNAT};
static int sub_fd[SUB_COUNT] = {-1, -1, -1};

int __real_datapath_map_fd(const struct datapath *dp, const char *name);
int __wrap_datapath_map_fd(const struct datapath *dp, const char *name);

int __wrap_datapath_map_fd(const struct datapath *dp, const char *name)
{
	for (int i = 0; i < SUB_COUNT; i++)
		if (sub_fd[i] >= 0 && !strcmp(name, sub_name[i]))
			return sub_fd[i];
	return __real_datapath_map_fd(dp, name);
}

/* ---- the workload ------------------------------------------------------------------------ */

#define NS_NAME	   "bench"
#define SVC_PORT   80
#define BE_PORT	   8080
#define POD_CIDR   "10.244.0.0/16"
#define CLUSTER_DOC                                                                           \
	"{\"apiVersion\":\"sim.ciliate.dev/v1\",\"kind\":\"Cluster\",\"metadata\":{\"name\":" \
	"\"bench\"},\"spec\":{\"nodes\":[{\"name\":\"node-1\"},{\"name\":\"node-2\"}],"      \
	"\"routing\":\"native\",\"podCIDR\":\"" POD_CIDR "\",\"serviceCIDR\":\"10.96.0.0/12\"}}"

static int S = 10000, B = 10;
static int changed_svc; /* the service whose backend 0 changes: S / 2 */

/* host order */
static uint32_t vip_h(int i)
{
	return 0x0a600010u + (uint32_t)i; /* 10.96.0.16 + i */
}

/* backend j of service i; alt: the replacement of backend 0 of changed_svc */
static uint32_t be_h(int i, int j, bool alt)
{
	if (alt && i == changed_svc && j == 0)
		return 0x0afa0000u + (uint32_t)i; /* 10.250.0.0 + i */
	return 0x0ac80000u + (uint32_t)i * (uint32_t)B + (uint32_t)j; /* 10.200.0.0 + ... */
}

static char *ip_str(uint32_t h, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", h >> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255);
	return buf;
}

static char *service_json(int i)
{
	char *s, v[16];

	if (asprintf(&s,
		     "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc-%d\","
		     "\"namespace\":\"" NS_NAME "\"},\"spec\":{\"clusterIP\":\"%s\",\"ports\":[{"
		     "\"name\":\"http\",\"protocol\":\"TCP\",\"port\":%d,\"targetPort\":%d}]}}",
		     i, ip_str(vip_h(i), v), SVC_PORT, BE_PORT) < 0)
		die("out of memory");
	return s;
}

static char *slice_json(int i, bool alt)
{
	size_t cap = 512 + (size_t)B * 128, len;
	char *s = malloc(cap), a[16];

	if (!s)
		die("out of memory");
	len = (size_t)snprintf(s, cap,
			       "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
			       "\"metadata\":{\"name\":\"svc-%d-abcde\",\"namespace\":\"" NS_NAME
			       "\",\"labels\":{\"kubernetes.io/service-name\":\"svc-%d\"}},"
			       "\"addressType\":\"IPv4\",\"endpoints\":[",
			       i, i);
	for (int j = 0; j < B; j++)
		len += (size_t)snprintf(s + len, cap - len,
					"%s{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":true},"
					"\"nodeName\":\"node-2\"}",
					j ? "," : "", ip_str(be_h(i, j, alt), a));
	snprintf(s + len, cap - len,
		 "],\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":%d}]}", BE_PORT);
	return s;
}

/* ---- errors and cleanup ------------------------------------------------------------------ */

static char netns_path[128];
static bool netns_made;
static volatile pid_t child_pid;

/* async-signal-safe: what `ip netns del` does */
static void netns_remove(void)
{
	if (!netns_made)
		return;
	umount2(netns_path, MNT_DETACH);
	unlink(netns_path);
	netns_made = false;
}

static void on_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, SIGKILL);
	netns_remove();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_lb_control: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1); /* atexit removes the namespace */
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the agent ----------------------------------------------------------------------------- */

static int64_t rev;

static void put(struct agent *a, const char *key, const char *value, int64_t create)
{
	struct store_kv kv = {.key = (char *)key,
			      .value = (char *)value,
			      .value_len = strlen(value),
			      .create_revision = create,
			      .mod_revision = ++rev};

	if (agent_objects_put(a, &kv))
		die("agent_objects_put %s failed", key);
	a->rev = rev;
	a->dirty = true;
}

static char *svc_key(int i)
{
	static char k[128];

	snprintf(k, sizeof(k), AGENT_OBJ_PREFIX "Service/" NS_NAME "/svc-%d", i);
	return k;
}

static char *slice_key(int i)
{
	static char k[128];

	snprintf(k, sizeof(k), AGENT_OBJ_PREFIX "EndpointSlice/" NS_NAME "/svc-%d-abcde", i);
	return k;
}

/* creation revisions: service i 2i+1, its slice 2i+2 (the change keeps them) */
static void put_slice(struct agent *a, int i, bool alt)
{
	char *j = slice_json(i, alt);

	put(a, slice_key(i), j, 2 * (int64_t)i + 2);
	free(j);
}

/* An agent whose store cache holds the Cluster and every Service and EndpointSlice (the
 * informer's work, not timed); nothing parsed yet. */
static struct agent *agent_new(struct datapath *dp)
{
	struct agent *a = calloc(1, sizeof(*a));

	if (!a)
		die("out of memory");
	a->o.node = "node-1";
	a->dp = dp;
	a->ifreq_fd = -1;
	a->cluster_text = strdup(CLUSTER_DOC);
	a->cluster_len = strlen(CLUSTER_DOC);
	snprintf(a->cluster_name, sizeof(a->cluster_name), "cluster");
	for (int i = 0; i < S; i++) {
		char *j = service_json(i);

		put(a, svc_key(i), j, 2 * (int64_t)i + 1);
		free(j);
		put_slice(a, i, false);
	}
	for (int m = 0; m < AM_COUNT; m++)
		kvset_init(&a->cur[m], 1, 1);
	return a;
}

static void agent_free(struct agent *a)
{
	if (a->have_ns)
		node_state_free(&a->ns);
	cluster_model_free(a->model);
	agent_objects_free(a);
	agent_model_cache_free(a);
	for (int m = 0; m < AM_COUNT; m++)
		kvset_free(&a->cur[m]);
	free(a->cluster_text);
	if (a->ifreq_fd >= 0)
		close(a->ifreq_fd);
	free(a);
}

/* ---- maps ------------------------------------------------------------------------------------ */

struct lbmaps {
	int svc, be, rn;
};

static struct lbmaps lb_fds(struct datapath *dp)
{
	struct lbmaps m = {__wrap_datapath_map_fd(dp, MAP_LB_SERVICES),
			   __wrap_datapath_map_fd(dp, MAP_LB_BACKENDS),
			   __wrap_datapath_map_fd(dp, MAP_LB_REVNAT)};

	if (m.svc < 0 || m.be < 0 || m.rn < 0)
		die("LB maps not found in the datapath");
	return m;
}

/* Every key first, then the deletes (restarting the walk after each delete is quadratic). */
static size_t map_clear(int fd, size_t ksz)
{
	uint8_t *keys = NULL, *prev = NULL;
	size_t n = 0, cap = 0;

	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			keys = realloc(keys, cap * ksz);
			if (!keys)
				die("out of memory");
		}
		prev = n ? keys + (n - 1) * ksz : NULL;
		if (bpf_map_get_next_key(fd, prev, keys + n * ksz))
			break;
		n++;
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, keys + i * ksz) && errno != ENOENT)
			die("map delete: %s", strerror(errno));
	free(keys);
	return n;
}

static size_t map_count(int fd, size_t ksz)
{
	uint8_t k[64], nk[64];
	void *prev = NULL;
	size_t n = 0;

	while (bpf_map_get_next_key(fd, prev, nk) == 0) {
		memcpy(k, nk, ksz);
		prev = k;
		n++;
	}
	return n;
}

static void maps_clear(struct lbmaps m)
{
	map_clear(m.svc, sizeof(struct lb_key));
	map_clear(m.be, sizeof(uint32_t));
	map_clear(m.rn, sizeof(uint32_t));
}

/* Replaces (for the agent) each LB map that cannot hold `need` entries, or every one with
 * force, by a map of the same type, key, value and flags with room enough. */
static void maps_fit(struct datapath *dp, bool force)
{
	size_t need[SUB_COUNT] = {(size_t)S * (size_t)(B + 1) + 64, (size_t)S * (size_t)B + 64,
				  (size_t)S + 64};

	for (int i = 0; i < SUB_COUNT; i++) {
		struct bpf_map_info info = {0};
		uint32_t len = sizeof(info);
		int fd = __real_datapath_map_fd(dp, sub_name[i]);
		LIBBPF_OPTS(bpf_map_create_opts, o);

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
			die("map %s: no info", sub_name[i]);
		if (!force && need[i] <= info.max_entries) {
			printf("map %-20s the datapath's own (%u entries max, %zu needed)\n",
			       sub_name[i], info.max_entries, need[i] - 64);
			continue;
		}
		o.map_flags = info.map_flags;
		sub_fd[i] = bpf_map_create(info.type, sub_name[i], info.key_size, info.value_size,
					   (uint32_t)(need[i] + need[i] / 8), &o);
		if (sub_fd[i] < 0)
			die("creating a larger %s: %s", sub_name[i], strerror(errno));
		printf("map %-20s REPLACED: the datapath's holds %u entries, %zu needed; a bench "
		       "map of the same type/key/value/flags, %zu entries\n",
		       sub_name[i], info.max_entries, need[i] - 64, need[i] + need[i] / 8);
	}
}

/* Every service's slot 0 (count B), its B slots naming backends with exactly its
 * addresses (alt: after the change) on BE_PORT, its reverse NAT; nothing else. Returns the
 * number of mismatches (printed, the first few). */
static int maps_check(struct lbmaps m, bool alt)
{
	int bad = 0;
	size_t n;

#define MISMATCH(...)                                        \
	do {                                                 \
		if (bad++ < 5) {                             \
			fprintf(stderr, "maps: " __VA_ARGS__); \
			fputc('\n', stderr);                 \
		}                                            \
	} while (0)
	if ((n = map_count(m.svc, sizeof(struct lb_key))) != (size_t)S * (size_t)(B + 1))
		MISMATCH("%zu service entries, want %d", n, S * (B + 1));
	if ((n = map_count(m.be, 4)) != (size_t)S * (size_t)B)
		MISMATCH("%zu backends, want %d", n, S * B);
	if ((n = map_count(m.rn, 4)) != (size_t)S)
		MISMATCH("%zu reverse-NAT entries, want %d", n, S);
	for (int i = 0; i < S; i++) {
		struct lb_key k = {.dport = htons(SVC_PORT), .proto = 6, .family = CILIATE_AF_INET,
				   .scope = LB_SCOPE_EXTERNAL};
		struct lb_service v;
		struct lb_reverse_nat rn;
		uint32_t idx;
		bool seen[64] = {0};

		k.addr.v4 = htonl(vip_h(i));
		if (bpf_map_lookup_elem(m.svc, &k, &v)) {
			MISMATCH("service %d: no slot 0", i);
			continue;
		}
		if (v.count != B)
			MISMATCH("service %d: count %u, want %d", i, v.count, B);
		idx = v.rev_nat_index;
		if (bpf_map_lookup_elem(m.rn, &idx, &rn) || rn.addr.v4 != k.addr.v4 ||
		    rn.port != htons(SVC_PORT))
			MISMATCH("service %d: reverse NAT %u wrong or missing", i, idx);
		for (int s = 1; s <= B; s++) {
			struct lb_backend be;
			uint32_t id;
			int j;

			k.backend_slot = (uint16_t)s;
			if (bpf_map_lookup_elem(m.svc, &k, &v)) {
				MISMATCH("service %d: no slot %d", i, s);
				continue;
			}
			id = v.backend_id;
			if (bpf_map_lookup_elem(m.be, &id, &be)) {
				MISMATCH("service %d slot %d: backend %u missing", i, s, id);
				continue;
			}
			for (j = 0; j < B; j++)
				if (be.addr.v4 == htonl(be_h(i, j, alt)))
					break;
			if (j == B || be.port != htons(BE_PORT) || be.proto != 6 ||
			    be.state != LB_BACKEND_ACTIVE || seen[j])
				MISMATCH("service %d slot %d: backend %u is not one of its own", i,
					 s, id);
			else
				seen[j] = true;
		}
	}
	return bad;
#undef MISMATCH
}

/* ---- ciliate measurements ---------------------------------------------------------------- */

struct ciliate_res {
	double full_ms, build_ms, ns_ms, write_ms, floor_full_ms;
	double change_ms, change_build_ms, change_ns_ms, change_write_ms, floor_change_ms;
	size_t full_writes, change_writes;
	int check_bad;
};

static void reconcile(struct agent *a)
{
	struct diag d = {{0}};

	if (agent_reconcile(a, &d))
		die("agent_reconcile: %s", d.msg);
}

/* agent_reconcile in three timed steps: t[0..3] around agent_model_build, node_state_compute
 * (what agent_reconcile does first when the store changed) and agent_reconcile, which then
 * finds the node state current and goes on to the endpoints, the wanted sets, the diff and
 * the writes. */
static void split_reconcile(struct agent *a, double t[4])
{
	struct node_state ns;
	struct diag d = {{0}};

	t[0] = now_ms();
	if (a->have_ns)
		node_state_free(&a->ns);
	a->have_ns = false;
	if (agent_model_build(a, &d))
		die("agent_model_build: %s", d.msg);
	t[1] = now_ms();
	if (node_state_compute(a->model, a->o.node, &ns, &d))
		die("node_state_compute: %s", d.msg);
	a->ns = ns;
	a->have_ns = true;
	t[2] = now_ms();
	reconcile(a);
	t[3] = now_ms();
}

/* What the agent wrote, as raw (key, value) records per map. */
struct raw {
	int fd;
	size_t ksz, vsz, n;
	uint8_t *d;
};

static void raw_from(struct raw *r, int fd, const struct kvset *s)
{
	r->fd = fd;
	r->ksz = s->ksz;
	r->vsz = s->vsz;
	r->n = s->n;
	r->d = malloc(s->n * (s->ksz + s->vsz) + 1);
	if (!r->d)
		die("out of memory");
	memcpy(r->d, s->d, s->n * (s->ksz + s->vsz));
}

static void raw_write(const struct raw *r, size_t limit)
{
	for (size_t i = 0; i < r->n && i < limit; i++) {
		const uint8_t *k = r->d + i * (r->ksz + r->vsz);

		if (bpf_map_update_elem(r->fd, k, k + r->ksz, BPF_ANY))
			die("raw update: %s", strerror(errno));
	}
}

static void measure_ciliate(struct datapath *dp, int reps, struct ciliate_res *res)
{
	struct lbmaps m = lb_fds(dp);
	double *full = calloc((size_t)reps, sizeof(double)), *bld = calloc((size_t)reps, 8),
	       *nsm = calloc((size_t)reps, 8), *fl = calloc((size_t)reps, 8);
	double *chg = calloc((size_t)reps * 2, 8), *cb = calloc((size_t)reps * 2, 8),
	       *cn = calloc((size_t)reps * 2, 8), *cf = calloc((size_t)reps * 2, 8);
	double *wr = calloc((size_t)reps, 8), *cw = calloc((size_t)reps * 2, 8);
	struct agent *a = NULL;
	struct raw raw[3];
	struct diag d = {{0}};
	int nchg = reps * 2 + 2; /* two untimed, and ends at the original backends */

	if (!full || !bld || !nsm || !fl || !chg || !cb || !cn || !cf || !wr || !cw)
		die("out of memory");
	/* model -> maps from empty: a fresh agent (nothing parsed) and empty maps each time */
	for (int r = 0; r < reps; r++) {
		double t0;

		if (a)
			agent_free(a);
		maps_clear(m);
		a = agent_new(dp);
		if (agent_maps_load(a, &d)) /* start-up: what the maps hold (nothing) */
			die("agent_maps_load: %s", d.msg);
		t0 = now_ms();
		reconcile(a);
		full[r] = now_ms() - t0;
		res->full_writes = a->last_upserts;
		fprintf(stderr, "  ciliate from empty, rep %d: %.1f ms (%zu writes)\n", r + 1,
			full[r], a->last_upserts);
	}
	res->check_bad = maps_check(m, false);
	/* the same entries written raw: the floor */
	raw_from(&raw[0], m.svc, &a->cur[AM_LB_SERVICES]);
	raw_from(&raw[1], m.be, &a->cur[AM_LB_BACKENDS]);
	raw_from(&raw[2], m.rn, &a->cur[AM_LB_REVNAT]);
	/* one service changed, everything loaded: the store event and the reconcile */
	for (int r = 0; r < nchg; r++) {
		double t0 = now_ms();

		put_slice(a, changed_svc, r % 2 == 0);
		reconcile(a);
		if (r >= 2) /* the first two warm the caches of the loaded agent */
			chg[r - 2] = now_ms() - t0;
		res->change_writes = a->last_upserts + a->last_deletes;
	}
	/* back at the original backends: check again after the changes */
	res->check_bad += maps_check(m, false);
	/* breakdown: agent_reconcile's own steps called one by one (the model build and the node
	 * state, then agent_reconcile, which finds them standing and only diffs and writes) */
	for (int r = 0; r < reps; r++) {
		struct agent *b = agent_new(dp);
		double t[4];

		maps_clear(m);
		if (agent_maps_load(b, &d))
			die("agent_maps_load: %s", d.msg);
		split_reconcile(b, t);
		bld[r] = t[1] - t[0];
		nsm[r] = t[2] - t[1];
		wr[r] = t[3] - t[2];
		for (int c = 0; r == 0 && c < reps * 2 + 2; c++) {
			put_slice(b, changed_svc, c % 2 == 0);
			split_reconcile(b, t);
			if (c >= 2) {
				cb[c - 2] = t[1] - t[0];
				cn[c - 2] = t[2] - t[1];
				cw[c - 2] = t[3] - t[2];
			}
		}
		agent_free(b);
	}
	/* floors: the same entries written raw into empty maps; as many raw rewrites as the
	 * change wrote */
	for (int r = 0; r < reps; r++) {
		double t0;

		maps_clear(m);
		t0 = now_ms();
		for (int k = 0; k < 3; k++)
			raw_write(&raw[k], SIZE_MAX);
		fl[r] = now_ms() - t0;
	}
	for (int r = 0; r < reps * 2; r++) {
		double t0 = now_ms();

		raw_write(&raw[0], res->change_writes);
		cf[r] = now_ms() - t0;
	}
	res->full_ms = median(full, reps);
	res->build_ms = median(bld, reps);
	res->ns_ms = median(nsm, reps);
	res->floor_full_ms = median(fl, reps);
	res->change_ms = median(chg, reps * 2);
	res->change_build_ms = median(cb, reps * 2);
	res->change_ns_ms = median(cn, reps * 2);
	res->floor_change_ms = median(cf, reps * 2);
	res->write_ms = median(wr, reps);
	res->change_write_ms = median(cw, reps * 2);
	for (int k = 0; k < 3; k++)
		free(raw[k].d);
	agent_free(a);
	maps_clear(m);
	free(full), free(bld), free(nsm), free(fl), free(chg), free(cb), free(cn), free(cf);
	free(wr), free(cw);
}

/* ---- rule texts --------------------------------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->n)
			break;
		b->cap = b->cap ? b->cap * 2 : 1 << 20;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			die("out of memory");
	}
	b->n += (size_t)n;
}

/* 16 base32 characters of a 64-bit FNV-1a of the text and a tag (kube-proxy's chain names
 * are 16 base32 characters of a SHA-256; any stable hash of the same length will do) */
static char *chain_hash(const char *text, char out[17])
{
	static const char a32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint64_t h = 14695981039346656037ull, h2;

	for (const char *c = text; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	h2 = (h ^ 0x9e3779b97f4a7c15ull) * 1099511628211ull;
	for (int i = 0; i < 16; i++)
		out[i] = a32[(i < 12 ? h >> (5 * i) : h2 >> (5 * (i - 12))) & 31];
	out[16] = 0;
	return out;
}

static char *svc_chain(int i, char out[17])
{
	char t[64];

	snprintf(t, sizeof(t), NS_NAME "/svc-%d:http/tcp", i);
	return chain_hash(t, out);
}

static char *sep_chain(int i, uint32_t addr, char out[17])
{
	char t[96], a[16];

	snprintf(t, sizeof(t), NS_NAME "/svc-%d:http/tcp/%s:%d", i, ip_str(addr, a), BE_PORT);
	return chain_hash(t, out);
}

/* kube-proxy's fixed chains (filter and nat, as restored on every sync); the jumps from the
 * built-in chains are installed once (ipt_base). */
static void ipt_head(struct buf *b)
{
	bprintf(b, "*filter\n:KUBE-NODEPORTS - [0:0]\n:KUBE-SERVICES - [0:0]\n"
		   ":KUBE-EXTERNAL-SERVICES - [0:0]\n:KUBE-FORWARD - [0:0]\n"
		   ":KUBE-PROXY-FIREWALL - [0:0]\n"
		   "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
		   "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark "
		   "--mark 0x4000/0x4000 -j ACCEPT\n"
		   "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" "
		   "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n");
	bprintf(b, "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n"
		   ":KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n");
}

static void ipt_fixed_nat_rules(struct buf *b)
{
	bprintf(b, "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
		   "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n"
		   "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic "
		   "requiring SNAT\" -j MASQUERADE --random-fully\n"
		   "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n");
}

static void ipt_services_jumps(struct buf *b)
{
	char v[16], h[17];

	for (int i = 0; i < S; i++)
		bprintf(b,
			"-A KUBE-SERVICES -m comment --comment \"" NS_NAME "/svc-%d:http cluster "
			"IP\" -m tcp -p tcp -d %s/32 --dport %d -j KUBE-SVC-%s\n",
			i, ip_str(vip_h(i), v), SVC_PORT, svc_chain(i, h));
	bprintf(b, "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: "
		   "this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j "
		   "KUBE-NODEPORTS\n");
}

static void ipt_service_chains(struct buf *b, int i, bool alt, bool decl)
{
	char v[16], a[16], h[17];

	if (decl) {
		bprintf(b, ":KUBE-SVC-%s - [0:0]\n", svc_chain(i, h));
		for (int j = 0; j < B; j++)
			bprintf(b, ":KUBE-SEP-%s - [0:0]\n", sep_chain(i, be_h(i, j, alt), h));
		return;
	}
	bprintf(b,
		"-A KUBE-SVC-%s -m comment --comment \"" NS_NAME "/svc-%d:http cluster IP\" -m tcp "
		"-p tcp -d %s/32 --dport %d ! -s " POD_CIDR " -j KUBE-MARK-MASQ\n",
		svc_chain(i, h), i, ip_str(vip_h(i), v), SVC_PORT);
	for (int j = 0; j < B; j++) {
		char sh[17];

		sep_chain(i, be_h(i, j, alt), sh);
		if (j < B - 1)
			bprintf(b,
				"-A KUBE-SVC-%s -m comment --comment \"" NS_NAME
				"/svc-%d:http -> %s:%d\" -m statistic --mode random --probability "
				"%.11f -j KUBE-SEP-%s\n",
				h, i, ip_str(be_h(i, j, alt), a), BE_PORT, 1.0 / (B - j), sh);
		else
			bprintf(b,
				"-A KUBE-SVC-%s -m comment --comment \"" NS_NAME
				"/svc-%d:http -> %s:%d\" -j KUBE-SEP-%s\n",
				h, i, ip_str(be_h(i, j, alt), a), BE_PORT, sh);
	}
	for (int j = 0; j < B; j++) {
		ip_str(be_h(i, j, alt), a);
		sep_chain(i, be_h(i, j, alt), h);
		bprintf(b,
			"-A KUBE-SEP-%s -m comment --comment " NS_NAME "/svc-%d:http -s %s/32 -j "
			"KUBE-MARK-MASQ\n"
			"-A KUBE-SEP-%s -m comment --comment " NS_NAME "/svc-%d:http -m tcp -p tcp -j "
			"DNAT --to-destination %s:%d\n",
			h, i, a, h, i, a, BE_PORT);
	}
}

/* Every service: kube-proxy's full sync. */
static void ipt_full(struct buf *b)
{
	ipt_head(b);
	for (int i = 0; i < S; i++)
		ipt_service_chains(b, i, false, true);
	ipt_fixed_nat_rules(b);
	ipt_services_jumps(b);
	for (int i = 0; i < S; i++)
		ipt_service_chains(b, i, false, false);
	bprintf(b, "COMMIT\n");
}

/* kube-proxy's partial sync after changed_svc's backend 0 went from (alt ? original : new)
 * to (alt ? new : original): the fixed chains and KUBE-SERVICES whole, the changed
 * service's chains, the stale endpoint chain flushed and deleted. */
static void ipt_partial(struct buf *b, bool alt)
{
	char h[17];
	uint32_t stale = be_h(changed_svc, 0, !alt);

	ipt_head(b);
	ipt_service_chains(b, changed_svc, alt, true);
	bprintf(b, ":KUBE-SEP-%s - [0:0]\n", sep_chain(changed_svc, stale, h));
	ipt_fixed_nat_rules(b);
	ipt_services_jumps(b);
	ipt_service_chains(b, changed_svc, alt, false);
	bprintf(b, "-X KUBE-SEP-%s\nCOMMIT\n", h);
}

/* An empty filter and nat table but for the jumps into kube-proxy's chains (restored
 * without --noflush: replaces both tables). */
static void ipt_base(struct buf *b)
{
	bprintf(b, "*filter\n:KUBE-FORWARD - [0:0]\n:KUBE-SERVICES - [0:0]\n"
		   ":KUBE-NODEPORTS - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n"
		   ":KUBE-PROXY-FIREWALL - [0:0]\n"
		   "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"
		   "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
		   "portals\" -j KUBE-SERVICES\n"
		   "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
		   "portals\" -j KUBE-SERVICES\nCOMMIT\n"
		   "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
		   "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j "
		   "KUBE-SERVICES\n"
		   "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
		   "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j "
		   "KUBE-POSTROUTING\nCOMMIT\n");
}

#define NFT_TABLE "cil-bench"

static void nft_sep(struct buf *b, int i, uint32_t addr, bool add_cmds)
{
	char a[16], h[17];

	ip_str(addr, a);
	sep_chain(i, addr, h);
	if (add_cmds)
		bprintf(b,
			"add chain ip " NFT_TABLE " sep-%s\n"
			"add rule ip " NFT_TABLE " sep-%s ip saddr %s jump mark-for-masquerade\n"
			"add rule ip " NFT_TABLE " sep-%s meta l4proto tcp dnat to %s:%d\n",
			h, h, a, h, a, BE_PORT);
	else
		bprintf(b,
			"\tchain sep-%s {\n\t\tip saddr %s jump mark-for-masquerade\n"
			"\t\tmeta l4proto tcp dnat to %s:%d\n\t}\n",
			h, a, a, BE_PORT);
}

static void nft_svc_rules(struct buf *b, int i, bool alt, const char *prefix)
{
	char v[16], h[17];

	svc_chain(i, h);
	bprintf(b, "%sip daddr %s tcp dport %d ip saddr != " POD_CIDR
		   " jump mark-for-masquerade\n",
		prefix, ip_str(vip_h(i), v), SVC_PORT);
	bprintf(b, "%snumgen random mod %d vmap { ", prefix, B);
	for (int j = 0; j < B; j++) {
		char sh[17];

		bprintf(b, "%s%d : goto sep-%s", j ? ", " : "", j,
			sep_chain(i, be_h(i, j, alt), sh));
	}
	bprintf(b, " }\n");
}

/* The whole table (from nothing): endpoint chains, service chains, the verdict map, the
 * dispatch chain, then the base chains hooking it in. */
static void nft_full(struct buf *b)
{
	char v[16], h[17];

	bprintf(b, "table ip " NFT_TABLE " {\n"
		   "\tchain mark-for-masquerade {\n\t\tmeta mark set meta mark | 0x4000\n\t}\n"
		   "\tchain masquerading {\n\t\tmeta mark & 0x4000 == 0 return\n"
		   "\t\tmeta mark set meta mark ^ 0x4000\n\t\tmasquerade fully-random\n\t}\n");
	for (int i = 0; i < S; i++)
		for (int j = 0; j < B; j++)
			nft_sep(b, i, be_h(i, j, false), false);
	for (int i = 0; i < S; i++) {
		bprintf(b, "\tchain svc-%s {\n", svc_chain(i, h));
		nft_svc_rules(b, i, false, "\t\t");
		bprintf(b, "\t}\n");
	}
	bprintf(b, "\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : "
		   "verdict\n\t\telements = { ");
	for (int i = 0; i < S; i++)
		bprintf(b, "%s%s . tcp . %d : goto svc-%s", i ? ",\n\t\t\t" : "",
			ip_str(vip_h(i), v), SVC_PORT, svc_chain(i, h));
	bprintf(b, " }\n\t}\n"
		   "\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap "
		   "@service-ips\n\t}\n"
		   "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy "
		   "accept;\n\t\tjump services\n\t}\n"
		   "\tchain nat-output {\n\t\ttype nat hook output priority -100; policy "
		   "accept;\n\t\tjump services\n\t}\n"
		   "\tchain nat-postrouting {\n\t\ttype nat hook postrouting priority srcnat; "
		   "policy accept;\n\t\tjump masquerading\n\t}\n}\n");
}

/* One transaction: the new endpoint chain, the service chain refilled, the stale endpoint
 * chain deleted. */
static void nft_partial(struct buf *b, bool alt)
{
	char h[17], prefix[64];

	nft_sep(b, changed_svc, be_h(changed_svc, 0, alt), true);
	svc_chain(changed_svc, h);
	bprintf(b, "flush chain ip " NFT_TABLE " svc-%s\n", h);
	snprintf(prefix, sizeof(prefix), "add rule ip " NFT_TABLE " svc-%s ", h);
	nft_svc_rules(b, changed_svc, alt, prefix);
	bprintf(b, "delete chain ip " NFT_TABLE " sep-%s\n",
		sep_chain(changed_svc, be_h(changed_svc, 0, !alt), h));
}

/* ---- running iptables / nft in the namespace -------------------------------------------- */

static ino_t root_netns_ino;

static int memfd_of(const struct buf *b)
{
	int fd = memfd_create("bench-rules", 0);

	if (fd < 0 || (b && write(fd, b->p, b->n) != (ssize_t)b->n))
		die("memfd: %s", strerror(errno));
	return fd;
}

static double limit_ms = 60000; /* -T: a command running longer is killed (timed out) */

/* Runs argv inside the bench's namespace with stdin from in_fd (-1: /dev/null) and stdout to
 * out_fd (-1: /dev/null); stderr is kept. Returns the wall time in ms; *rc the exit status,
 * -1 when it ran over limit_ms and was killed. SIGCHLD is blocked (main). */
static double run_ns(const char *const argv[], int in_fd, int out_fd, int *rc)
{
	sigset_t chld;
	bool killed = false;
	double t0;
	int st, nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
	pid_t pid;

	if (nsfd < 0)
		die("%s: %s", netns_path, strerror(errno));
	if (in_fd >= 0)
		lseek(in_fd, 0, SEEK_SET);
	t0 = now_ms();
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		struct stat s;
		int null = open("/dev/null", O_RDWR);

		if (setns(nsfd, CLONE_NEWNET) || stat("/proc/self/ns/net", &s) ||
		    s.st_ino == root_netns_ino) {
			fprintf(stderr, "bench_lb_control: not in the bench's namespace: refusing "
					"to run %s\n",
				argv[0]);
			_exit(126);
		}
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		dup2(in_fd >= 0 ? in_fd : null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "bench_lb_control: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	child_pid = pid;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		double left = limit_ms - (now_ms() - t0);
		struct timespec ts = {.tv_sec = (time_t)(left / 1000),
				      .tv_nsec = (long)((left - (double)(time_t)(left / 1000) * 1000) *
							1e6)};
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			die("waitpid: %s", strerror(errno));
		if (left <= 0 && !killed) {
			kill(pid, SIGKILL);
			killed = true;
			continue;
		}
		if (!killed)
			sigtimedwait(&chld, NULL, &ts);
		else if (waitpid(pid, &st, 0) == pid)
			break;
	}
	child_pid = 0;
	close(nsfd);
	*rc = killed ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return now_ms() - t0;
}

static double run_ns_ok(const char *const argv[], int in_fd, int out_fd)
{
	int rc;
	double ms = run_ns(argv, in_fd, out_fd, &rc);

	if (rc == -1)
		return -1;
	if (rc)
		die("%s %s exited with %d", argv[0], argv[1] ? argv[1] : "", rc);
	return ms;
}

/* An untimed step (a reset): it must finish. */
static void run_ns_must(const char *const argv[], int in_fd, int out_fd)
{
	if (run_ns_ok(argv, in_fd, out_fd) < 0)
		die("%s %s ran over the time limit (-T)", argv[0], argv[1] ? argv[1] : "");
}

static void netns_create(void)
{
	const char *argv[] = {"ip", "netns", "add", netns_path + strlen("/run/netns/"), NULL};
	struct stat s;
	int st;
	pid_t pid;

	if (stat("/proc/self/ns/net", &s))
		die("/proc/self/ns/net: %s", strerror(errno));
	root_netns_ino = s.st_ino;
	pid = fork();
	if (pid == 0) {
		execvp("ip", (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		die("ip netns add %s failed", argv[3]);
	netns_made = true;
}

/* Output of argv in the namespace (malloc'd, NUL-terminated). */
static char *capture(const char *const argv[])
{
	int fd = memfd_of(NULL);
	off_t len;
	char *s;

	run_ns_must(argv, -1, fd);
	len = lseek(fd, 0, SEEK_END);
	s = malloc((size_t)len + 1);
	if (!s || pread(fd, s, (size_t)len, 0) != len)
		die("reading output");
	s[len] = 0;
	close(fd);
	return s;
}

static size_t count_lines(const char *s, const char *prefix)
{
	size_t n = 0, pl = strlen(prefix);

	for (const char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		n += !strncmp(l, prefix, pl);
	return n;
}

static bool has_line_with(const char *s, const char *needle)
{
	return strstr(s, needle) != NULL;
}

struct ext_res {
	const char *name;
	bool ran, full_timeout, change_timeout;
	double full_ms, change_ms;
	int check_bad;
};

static bool have_cmd(const char *cmd)
{
	char path[512];
	const char *p = getenv("PATH");

	for (const char *c = p ? p : "/usr/sbin:/usr/bin:/sbin:/bin"; c;) {
		const char *e = strchr(c, ':');
		size_t l = e ? (size_t)(e - c) : strlen(c);

		snprintf(path, sizeof(path), "%.*s/%s", (int)l, c, cmd);
		if (access(path, X_OK) == 0)
			return true;
		c = e ? e + 1 : NULL;
	}
	return false;
}

static int check_iptables(const char *save, bool alt)
{
	const char *argv[] = {save, "-t", "nat", NULL};
	char *out = capture(argv), needle[64], h[17];
	int bad = 0;
	size_t n;

	if ((n = count_lines(out, ":KUBE-SEP-")) != (size_t)S * (size_t)B)
		fprintf(stderr, "%s: %zu KUBE-SEP chains, want %d\n", save, n, S * B), bad++;
	if ((n = count_lines(out, ":KUBE-SVC-")) != (size_t)S)
		fprintf(stderr, "%s: %zu KUBE-SVC chains, want %d\n", save, n, S), bad++;
	if ((n = count_lines(out, "-A KUBE-SEP-")) != (size_t)S * (size_t)B * 2)
		fprintf(stderr, "%s: %zu KUBE-SEP rules, want %d\n", save, n, S * B * 2), bad++;
	if ((n = count_lines(out, "-A KUBE-SERVICES ")) != (size_t)S + 1)
		fprintf(stderr, "%s: %zu KUBE-SERVICES rules, want %d\n", save, n, S + 1), bad++;
	snprintf(needle, sizeof(needle), ":KUBE-SEP-%s ",
		 sep_chain(changed_svc, be_h(changed_svc, 0, alt), h));
	if (!has_line_with(out, needle))
		fprintf(stderr, "%s: %s missing\n", save, needle), bad++;
	snprintf(needle, sizeof(needle), ":KUBE-SEP-%s ",
		 sep_chain(changed_svc, be_h(changed_svc, 0, !alt), h));
	if (has_line_with(out, needle))
		fprintf(stderr, "%s: stale %s still there\n", save, needle), bad++;
	free(out);
	return bad;
}

static int check_nft(bool alt)
{
	const char *argv[] = {"nft", "list", "table", "ip", NFT_TABLE, NULL};
	char *out = capture(argv), needle[64], h[17];
	int bad = 0;
	size_t n;

	if ((n = count_lines(out, "\tchain sep-")) != (size_t)S * (size_t)B)
		fprintf(stderr, "nft: %zu endpoint chains, want %d\n", n, S * B), bad++;
	if ((n = count_lines(out, "\tchain svc-")) != (size_t)S)
		fprintf(stderr, "nft: %zu service chains, want %d\n", n, S), bad++;
	snprintf(needle, sizeof(needle), "chain sep-%s {",
		 sep_chain(changed_svc, be_h(changed_svc, 0, alt), h));
	if (!has_line_with(out, needle))
		fprintf(stderr, "nft: %s missing\n", needle), bad++;
	snprintf(needle, sizeof(needle), "chain sep-%s {",
		 sep_chain(changed_svc, be_h(changed_svc, 0, !alt), h));
	if (has_line_with(out, needle))
		fprintf(stderr, "nft: stale %s still there\n", needle), bad++;
	free(out);
	return bad;
}

/* iptables flavour: restore = "iptables-restore" or "iptables-legacy-restore". */
static void measure_iptables(struct ext_res *res, const char *restore, const char *save, int reps,
			     bool check)
{
	struct buf full = {0}, base = {0}, part[2] = {{0}, {0}};
	const char *nf[] = {restore, "--noflush", NULL}, *fl[] = {restore, NULL};
	double *f = calloc((size_t)reps, 8), *c = calloc((size_t)reps * 2, 8);
	int ffd, bfd, pfd[2];

	if (!f || !c)
		die("out of memory");
	res->ran = have_cmd(restore) && have_cmd(save);
	if (!res->ran)
		return;
	ipt_full(&full);
	ipt_base(&base);
	ipt_partial(&part[0], true);
	ipt_partial(&part[1], false);
	ffd = memfd_of(&full);
	bfd = memfd_of(&base);
	pfd[0] = memfd_of(&part[0]);
	pfd[1] = memfd_of(&part[1]);
	for (int r = 0; r < reps; r++) {
		run_ns_must(fl, bfd, -1); /* empty tables with the jumps (not timed) */
		f[r] = run_ns_ok(nf, ffd, -1);
		fprintf(stderr, "  %s full, rep %d: %.0f ms\n", restore, r + 1, f[r]);
		if (f[r] < 0) {
			fprintf(stderr, "  %s: killed after %.0f s (-T)\n", restore, limit_ms / 1e3);
			res->full_timeout = res->change_timeout = true;
			res->full_ms = limit_ms;
			run_ns_must(fl, bfd, -1);
			goto out;
		}
	}
	if (check)
		res->check_bad += check_iptables(save, false);
	for (int r = 0; r < reps * 2; r++) {
		c[r] = run_ns_ok(nf, pfd[r % 2], -1);
		if (c[r] < 0) {
			res->change_timeout = true;
			break;
		}
		if (check && r == 0)
			res->check_bad += check_iptables(save, true);
	}
	if (check)
		res->check_bad += check_iptables(save, false);
	run_ns_must(fl, bfd, -1);
	res->full_ms = median(f, reps);
	res->change_ms = res->change_timeout ? limit_ms : median(c, reps * 2);
out:
	close(ffd), close(bfd), close(pfd[0]), close(pfd[1]);
	free(full.p), free(base.p), free(part[0].p), free(part[1].p), free(f), free(c);
}

static void measure_nft(struct ext_res *res, int reps, bool check)
{
	struct buf full = {0}, part[2] = {{0}, {0}}, del = {0};
	const char *nf[] = {"nft", "-f", "-", NULL};
	double *f = calloc((size_t)reps, 8), *c = calloc((size_t)reps * 2, 8);
	int ffd, dfd, pfd[2], rc;

	if (!f || !c)
		die("out of memory");
	res->ran = have_cmd("nft");
	if (!res->ran)
		return;
	nft_full(&full);
	nft_partial(&part[0], true);
	nft_partial(&part[1], false);
	bprintf(&del, "delete table ip " NFT_TABLE "\n");
	ffd = memfd_of(&full);
	dfd = memfd_of(&del);
	pfd[0] = memfd_of(&part[0]);
	pfd[1] = memfd_of(&part[1]);
	for (int r = 0; r < reps; r++) {
		run_ns(nf, dfd, -1, &rc); /* not timed; fails harmlessly when absent */
		f[r] = run_ns_ok(nf, ffd, -1);
		fprintf(stderr, "  nft -f full, rep %d: %.0f ms\n", r + 1, f[r]);
		if (f[r] < 0) {
			res->full_timeout = res->change_timeout = true;
			res->full_ms = limit_ms;
			goto out;
		}
	}
	if (check)
		res->check_bad += check_nft(false);
	for (int r = 0; r < reps * 2; r++) {
		c[r] = run_ns_ok(nf, pfd[r % 2], -1);
		if (c[r] < 0) {
			res->change_timeout = true;
			break;
		}
		if (check && r == 0)
			res->check_bad += check_nft(true);
	}
	if (check)
		res->check_bad += check_nft(false);
	res->full_ms = median(f, reps);
	res->change_ms = res->change_timeout ? limit_ms : median(c, reps * 2);
out:
	run_ns(nf, dfd, -1, &rc);
	close(ffd), close(dfd), close(pfd[0]), close(pfd[1]);
	free(full.p), free(part[0].p), free(part[1].p), free(del.p), free(f), free(c);
}

/* ---- main -------------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: bench_lb_control [-s SERVICES] [-b BACKENDS (1-64)] [-r REPS] "
			"[-R IPTABLES_REPS] [-T LIMIT_S] [-F] [-k] [-v] | --smoke\n");
	exit(2);
}

/* PASS / FAIL of a ratio target; a lower bound (killed) that falls short decides nothing */
static const char *verdict(bool met, bool lower_bound)
{
	return met ? "PASS" : lower_bound ? "UNDECIDED (killed at -T; raise it)" : "FAIL";
}

/* One line of the table; over: the command was killed at ms (a lower bound) */
static void row_x(const char *name, double ms, double floor_ms, double cil_ms, bool over,
		  const char *what)
{
	char f[32] = "", c[32] = "", t[32];

	if (floor_ms > 0)
		snprintf(f, sizeof(f), "%.2fx", ms / floor_ms);
	if (cil_ms > 0)
		snprintf(c, sizeof(c), "%s%.1fx", over ? ">" : "", ms / cil_ms);
	snprintf(t, sizeof(t), "%s%.3f", over ? ">" : "", ms);
	printf("%-34s %12s %10s %12s  %s%s\n", name, t, f, c, what,
	       over ? " (killed at the time limit, -T)" : "");
}

static void row(const char *name, double ms, double floor_ms, double cil_ms, const char *what)
{
	row_x(name, ms, floor_ms, cil_ms, false, what);
}

int main(int argc, char **argv)
{
	struct datapath_opts o = {.node = NULL};
	struct datapath *dp;
	struct ciliate_res cr = {0};
	struct ext_res ipn = {.name = "iptables-restore (nft backend)"},
		       ipl = {.name = "iptables-legacy-restore"}, nft = {.name = "nft -f"};
	struct diag d = {{0}};
	int reps = 3, ext_reps = 3, opt, bad = 0;
	bool smoke = false, force = false, no_ext = false;

	if (argc > 1 && !strcmp(argv[1], "--smoke")) {
		smoke = true;
		S = 100;
		reps = 1;
		ext_reps = 1;
		argv[1] = argv[0];
		argc--, argv++;
	}
	while ((opt = getopt(argc, argv, "s:b:r:R:T:Fkv")) != -1) {
		switch (opt) {
		case 's': S = atoi(optarg); break;
		case 'b': B = atoi(optarg); break;
		case 'r': reps = atoi(optarg); break;
		case 'R': ext_reps = atoi(optarg); break;
		case 'T': limit_ms = atof(optarg) * 1e3; break;
		case 'F': force = true; break;
		case 'k': no_ext = true; break;
		case 'v': verbose = true; break;
		default: usage();
		}
	}
	if (S < 2 || S > 1000000 || B < 2 || B > 64 || reps < 1 || ext_reps < 1 || limit_ms < 1)
		usage();
	{
		sigset_t chld;

		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		sigprocmask(SIG_BLOCK, &chld, NULL); /* run_ns waits for it with sigtimedwait */
	}
	changed_svc = S / 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		printf("SKIP: needs root (BPF maps, network namespaces)\n");
		return smoke ? 77 : 0;
	}
	snprintf(netns_path, sizeof(netns_path), "/run/netns/cil-bench-%d", (int)getpid());
	atexit(netns_remove);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	/* everything runs in the bench's namespace: iptables and nft, and the agent's code too
	 * (whatever it looks up or attaches by interface name finds only this namespace's lo) */
	netns_create();
	{
		int fd = open(netns_path, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET))
			die("entering %s: %s", netns_path, strerror(errno));
		close(fd);
	}
	if (datapath_open(&o, &dp, &d))
		die("datapath_open: %s", d.msg);
	printf("Control plane of services: %d ClusterIP services x %d backends (TCP %d -> %d), "
	       "one EndpointSlice each\n",
	       S, B, SVC_PORT, BE_PORT);
	maps_fit(dp, force);
	fprintf(stderr, "ciliate (%d reps) ...\n", reps);
	measure_ciliate(dp, reps, &cr);
	if (!no_ext) {
		fprintf(stderr, "iptables/nft in %s (%d reps) ...\n", netns_path, ext_reps);
		measure_iptables(&ipn, "iptables-restore", "iptables-save", ext_reps, smoke);
		measure_iptables(&ipl, "iptables-legacy-restore", "iptables-legacy-save", ext_reps,
				 smoke);
		measure_nft(&nft, ext_reps, smoke);
	}

	printf("\nmedians: ciliate %d reps (change: %d), iptables/nft %d reps (change: %d)\n",
	       reps, reps * 2, ext_reps, ext_reps * 2);
	printf("%-34s %12s %10s %12s  %s\n", "row", "ms", "vs floor", "vs ciliate", "what");
	printf("-- all %d services from empty\n", S);
	row("floor: raw bpf_map_update_elem", cr.floor_full_ms, cr.floor_full_ms, 0,
	    "same entries, same maps");
	row("ciliate agent reconcile", cr.full_ms, cr.floor_full_ms, cr.full_ms,
	    "store cache -> maps (parse, model, node state, diff, writes)");
	row("  step: parse + model", cr.build_ms, 0, 0, "agent_model_build");
	row("  step: node state", cr.ns_ms, 0, 0, "node_state_compute");
	row("  step: diff + writes", cr.write_ms, cr.floor_full_ms, 0,
	    "want sets, kvset_diff, map writes");
	printf("   (%zu map entries written; steps timed in separate runs)\n", cr.full_writes);
	for (int k = 0; k < 3; k++) {
		struct ext_res *e = k == 0 ? &ipn : k == 1 ? &ipl : &nft;

		if (e->ran)
			row_x(e->name, e->full_ms, 0, cr.full_ms, e->full_timeout,
			      k == 2 ? "one table, verdict map" : "--noflush, kube-proxy full sync");
		else if (!no_ext)
			printf("%-34s %12s  (not installed)\n", e->name, "SKIP");
	}
	printf("-- one service's backend replaced, %d services loaded\n", S);
	row("floor: raw bpf_map_update_elem", cr.floor_change_ms, cr.floor_change_ms, 0,
	    "as many entries as the agent wrote");
	row("ciliate agent reconcile", cr.change_ms, cr.floor_change_ms, cr.change_ms,
	    "store event -> maps (full recompute, diff, writes)");
	row("  step: parse + model", cr.change_build_ms, 0, 0, "agent_model_build");
	row("  step: node state", cr.change_ns_ms, 0, 0, "node_state_compute");
	row("  step: diff + writes", cr.change_write_ms, cr.floor_change_ms, 0,
	    "want sets, kvset_diff, map writes");
	printf("   (%zu map entries written)\n", cr.change_writes);
	for (int k = 0; k < 3; k++) {
		struct ext_res *e = k == 0 ? &ipn : k == 1 ? &ipl : &nft;

		if (e->ran && e->full_timeout)
			printf("%-34s %12s  (not measured: the full load did not finish)\n", e->name,
			       "-");
		else if (e->ran)
			row_x(e->name, e->change_ms, 0, cr.change_ms, e->change_timeout,
			      k == 2 ? "one transaction" : "kube-proxy partial sync");
	}

	printf("\ntargets (a report, not an assertion):\n");
	printf("  %-56s %s (%.1f ms)\n", "ciliate, all services from empty < 100 ms",
	       cr.full_ms < 100 ? "PASS" : "FAIL", cr.full_ms);
	if (ipn.ran)
		printf("  %-56s %s (%s%.0fx)\n", "iptables-restore >= 100x ciliate",
		       verdict(ipn.full_ms >= 100 * cr.full_ms, ipn.full_timeout),
		       ipn.full_timeout ? ">" : "", ipn.full_ms / cr.full_ms);
	if (ipl.ran)
		printf("  %-56s %s (%s%.0fx)\n", "iptables-legacy-restore >= 100x ciliate",
		       verdict(ipl.full_ms >= 100 * cr.full_ms, ipl.full_timeout),
		       ipl.full_timeout ? ">" : "", ipl.full_ms / cr.full_ms);
	printf("  %-56s %s (%.3f ms)\n", "ciliate, one service changed < 1 ms",
	       cr.change_ms < 1 ? "PASS" : "FAIL", cr.change_ms);

	bad = cr.check_bad + ipn.check_bad + ipl.check_bad + nft.check_bad;
	printf("\ncorrectness: maps %s", cr.check_bad ? "WRONG" : "hold exactly the services");
	if (smoke && !no_ext)
		printf(", iptables (nft) %s, iptables (legacy) %s, nft %s",
		       !ipn.ran ? "not installed" : ipn.check_bad ? "WRONG" : "ok",
		       !ipl.ran ? "not installed" : ipl.check_bad ? "WRONG" : "ok",
		       !nft.ran ? "not installed" : nft.check_bad ? "WRONG" : "ok");
	printf("\n");
	datapath_close(dp);
	for (int i = 0; i < SUB_COUNT; i++)
		if (sub_fd[i] >= 0)
			close(sub_fd[i]);
	return bad ? 1 : 0;
}
