/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus metrics of the agent (docs/OBSERVABILITY.md, "Metrics"): a small HTTP/1.1
 * listener on --prometheus-serve-addr (default ":9962", inside the node's network
 * namespace) served from the agent's single-threaded event loop. `GET /metrics` answers the
 * text exposition format 0.0.4 with Cilium's metric names and labels; every scrape reads the
 * pinned counters (ciliate_metrics, ciliate_events_lost) and the agent's state at that
 * moment. One request per connection: the connection is closed after the answer.
 */
#include "agent.h"
#include "health.h"
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ciliate/abi.h"
#include "ciliate/drop_reasons.h"
#include "common/names.h"
#include "model/policy.h"

struct agent_metrics {
	struct httpd *srv;
	char addr[128]; /* as given, for logs */
	uint64_t scrapes;
};

/* ---- text buffer ---------------------------------------------------------------------- */

struct mbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void mb_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 16384;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

/* A label value with \, " and newline escaped (exposition format 0.0.4). */
static const char *label_escape(const char *v, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *v && o + 3 < outlen; v++) {
		if (*v == '\\' || *v == '"') {
			out[o++] = '\\';
			out[o++] = *v;
		} else if (*v == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *v;
		}
	}
	out[o] = '\0';
	return out;
}

static void mb_family(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- what a scrape reads -------------------------------------------------------------- */

/* Sums the per-CPU counters of ciliate_metrics into pk/by (indexed like the map). Returns
 * false when the map cannot be read. */
static bool read_datapath_counters(const struct agent *a, uint64_t *pk, uint64_t *by)
{
	int fd = a->dp ? datapath_map_fd(a->dp, MAP_METRICS) : -1;
	int ncpu = libbpf_num_possible_cpus();
	struct metrics_value *vals;
	bool ok = false;

	memset(pk, 0, METRICS_ENTRIES * sizeof(*pk));
	memset(by, 0, METRICS_ENTRIES * sizeof(*by));
	if (fd < 0 || ncpu <= 0)
		return false;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return false;
	for (uint32_t k = 0; k < METRICS_ENTRIES; k++) {
		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		ok = true;
		for (int c = 0; c < ncpu; c++) {
			pk[k] += vals[c].packets;
			by[k] += vals[c].bytes;
		}
	}
	free(vals);
	return ok;
}

/* The sum of the per-CPU ciliate_events_lost counter; false when it cannot be read. */
static bool read_events_lost(const struct agent *a, uint64_t *lost)
{
	int fd = a->dp ? datapath_map_fd(a->dp, MAP_EVENTS_LOST) : -1;
	int ncpu = libbpf_num_possible_cpus();
	uint32_t zero = 0;
	uint64_t *vals;
	bool ok;

	*lost = 0;
	if (fd < 0 || ncpu <= 0)
		return false;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return false;
	ok = bpf_map_lookup_elem(fd, &zero, vals) == 0;
	for (int c = 0; ok && c < ncpu; c++)
		*lost += vals[c];
	free(vals);
	return ok;
}

static const char *dir_label(unsigned int dir)
{
	return dir == DIR_INGRESS ? "INGRESS" : "EGRESS";
}

static const char *reason_descs[CILIATE_REASON_MAX];

static void reason_desc_note(unsigned int code, const char *name, const char *desc, void *arg)
{
	(void)name;
	(void)arg;
	if (code < CILIATE_REASON_MAX)
		reason_descs[code] = desc;
}

/* Cilium's `reason` label: the human text ("Policy denied"); codes without one get their
 * number, so two unknown codes never share a label set. */
static const char *reason_label(unsigned int code, char *buf, size_t len)
{
	static bool filled;

	if (!filled) {
		reason_foreach(reason_desc_note, NULL);
		filled = true;
	}
	if (code < CILIATE_REASON_MAX && reason_descs[code])
		return reason_descs[code];
	snprintf(buf, len, "Unknown reason (%u)", code);
	return buf;
}

/* ---- process metrics (Cilium registers Prometheus' process collector as cilium_process_*) */

static long clock_ticks(void)
{
	long t = sysconf(_SC_CLK_TCK);

	return t > 0 ? t : 100;
}

static void render_process(struct mbuf *b)
{
	char stat[1024], *p;
	unsigned long utime = 0, stime = 0, vsize = 0;
	unsigned long long starttime = 0;
	long rss = 0;
	double boot = 0;
	struct rlimit rl;
	struct dirent *de;
	int fd, fds = -1;
	ssize_t n;
	FILE *f;
	DIR *dir;

	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, stat, sizeof(stat) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	stat[n] = '\0';
	p = strrchr(stat, ')'); /* comm may hold spaces */
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
			 "%*d %*d %llu %lu %ld",
			 &utime, &stime, &starttime, &vsize, &rss) != 5)
		return;
	f = fopen("/proc/stat", "re");
	if (f) {
		char line[256];

		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "btime %lf", &boot) == 1)
				break;
		fclose(f);
	}
	dir = opendir("/proc/self/fd");
	if (dir) {
		fds = -1; /* the directory's own fd is listed too */
		while ((de = readdir(dir)))
			if (de->d_name[0] != '.')
				fds++;
		closedir(dir);
	}
	mb_family(b, "cilium_process_cpu_seconds_total", "counter",
		  "Total user and system CPU time spent in seconds.");
	mb_printf(b, "cilium_process_cpu_seconds_total %.2f\n",
		  (double)(utime + stime) / (double)clock_ticks());
	if (fds >= 0) {
		mb_family(b, "cilium_process_open_fds", "gauge",
			  "Number of open file descriptors.");
		mb_printf(b, "cilium_process_open_fds %d\n", fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		mb_family(b, "cilium_process_max_fds", "gauge",
			  "Maximum number of open file descriptors.");
		mb_printf(b, "cilium_process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
	mb_family(b, "cilium_process_virtual_memory_bytes", "gauge",
		  "Virtual memory size in bytes.");
	mb_printf(b, "cilium_process_virtual_memory_bytes %lu\n", vsize);
	mb_family(b, "cilium_process_resident_memory_bytes", "gauge",
		  "Resident memory size in bytes.");
	mb_printf(b, "cilium_process_resident_memory_bytes %lld\n",
		  (long long)rss * (long long)sysconf(_SC_PAGESIZE));
	if (boot > 0) {
		mb_family(b, "cilium_process_start_time_seconds", "gauge",
			  "Start time of the process since unix epoch in seconds.");
		mb_printf(b, "cilium_process_start_time_seconds %.2f\n",
			  boot + (double)starttime / (double)clock_ticks());
	}
}

/* ---- the exposition ------------------------------------------------------------------- */

static void render_datapath(const struct agent *a, struct mbuf *b)
{
	uint64_t *pk = calloc(METRICS_ENTRIES, sizeof(*pk));
	uint64_t *by = calloc(METRICS_ENTRIES, sizeof(*by));
	uint64_t fwd_pk[DIR_MAX] = {0}, fwd_by[DIR_MAX] = {0};
	char rbuf[64], esc[256];
	unsigned int r, dir;
	bool ok;

	if (!pk || !by) {
		free(pk);
		free(by);
		b->oom = true;
		return;
	}
	ok = read_datapath_counters(a, pk, by);

	/* drops: one series per (reason, direction) that has counted something, as Cilium
	 * creates them on the first drop */
	mb_family(b, "cilium_drop_count_total", "counter",
		  "Total dropped packets, tagged by drop reason and ingress/egress direction");
	for (r = CILIATE_DROP_REASON_MIN; ok && r < CILIATE_REASON_MAX; r++)
		for (dir = 0; dir < DIR_MAX; dir++)
			if (pk[r * DIR_MAX + dir])
				mb_printf(b,
					  "cilium_drop_count_total{direction=\"%s\",reason=\"%s\"} "
					  "%llu\n",
					  dir_label(dir),
					  label_escape(reason_label(r, rbuf, sizeof(rbuf)), esc,
						       sizeof(esc)),
					  (unsigned long long)pk[r * DIR_MAX + dir]);
	mb_family(b, "cilium_drop_bytes_total", "counter",
		  "Total dropped bytes, tagged by drop reason and ingress/egress direction");
	for (r = CILIATE_DROP_REASON_MIN; ok && r < CILIATE_REASON_MAX; r++)
		for (dir = 0; dir < DIR_MAX; dir++)
			if (pk[r * DIR_MAX + dir])
				mb_printf(b,
					  "cilium_drop_bytes_total{direction=\"%s\",reason=\"%s\"} "
					  "%llu\n",
					  dir_label(dir),
					  label_escape(reason_label(r, rbuf, sizeof(rbuf)), esc,
						       sizeof(esc)),
					  (unsigned long long)by[r * DIR_MAX + dir]);

	/* forwarded: every code below the drop range (the datapath counts FORWARDED) */
	for (r = 0; r < CILIATE_DROP_REASON_MIN; r++)
		for (dir = 0; dir < DIR_MAX; dir++) {
			fwd_pk[dir] += pk[r * DIR_MAX + dir];
			fwd_by[dir] += by[r * DIR_MAX + dir];
		}
	mb_family(b, "cilium_forward_count_total", "counter",
		  "Total forwarded packets, tagged by ingress/egress direction");
	for (dir = 0; ok && dir < DIR_MAX; dir++)
		mb_printf(b, "cilium_forward_count_total{direction=\"%s\"} %llu\n", dir_label(dir),
			  (unsigned long long)fwd_pk[dir]);
	mb_family(b, "cilium_forward_bytes_total", "counter",
		  "Total forwarded bytes, tagged by ingress/egress direction");
	for (dir = 0; ok && dir < DIR_MAX; dir++)
		mb_printf(b, "cilium_forward_bytes_total{direction=\"%s\"} %llu\n", dir_label(dir),
			  (unsigned long long)fwd_by[dir]);
	free(pk);
	free(by);
}

static void render_lost(const struct agent *a, struct mbuf *b)
{
	uint64_t lost;

	/* Hubble's name for exactly this: events the datapath could not hand to the
	 * observer because its ring was full */
	mb_family(b, "hubble_lost_events_total", "counter", "Number of lost events");
	if (read_events_lost(a, &lost))
		mb_printf(b, "hubble_lost_events_total{source=\"perf_event_ring_buffer\"} %llu\n",
			  (unsigned long long)lost);
}

static void render_model(const struct agent *a, struct mbuf *b)
{
	const struct cluster_model *m = a->model;
	size_t i, ready = 0, waiting = 0, not_ready = 0, bad = 0, local_ids = 0;

	mb_family(b, "cilium_policy", "gauge", "Number of policies currently loaded");
	mb_printf(b, "cilium_policy %zu\n", m ? m->npolicies : 0);

	for (i = 0; i < a->neps; i++) {
		const struct agent_ep *ep = &a->eps[i];

		if (!ep->info.ep_id)
			waiting++;
		else if (ep->ifindex && ep->attached_ifindex == ep->ifindex)
			ready++;
		else
			not_ready++;
	}
	mb_family(b, "cilium_endpoint", "gauge", "Number of endpoints managed by this agent");
	mb_printf(b, "cilium_endpoint %zu\n", a->neps);
	mb_family(b, "cilium_endpoint_state", "gauge",
		  "Count of all endpoints, tagged by different endpoint states");
	mb_printf(b, "cilium_endpoint_state{endpoint_state=\"ready\"} %zu\n", ready);
	mb_printf(b, "cilium_endpoint_state{endpoint_state=\"not-ready\"} %zu\n", not_ready);
	mb_printf(b, "cilium_endpoint_state{endpoint_state=\"waiting-for-identity\"} %zu\n",
		  waiting);

	for (i = 0; a->have_ns && i < a->ns.nipcache; i++)
		if (a->ns.ipcache[i].val.identity >= IDENTITY_LOCAL_CIDR_MIN)
			local_ids++;
	mb_family(b, "cilium_identity", "gauge", "Number of identities currently allocated");
	mb_printf(b, "cilium_identity{type=\"cluster_local\"} %zu\n", m ? m->nidentities : 0);
	mb_printf(b, "cilium_identity{type=\"node_local\"} %zu\n", local_ids);
	mb_printf(b, "cilium_identity{type=\"reserved\"} %u\n",
		  IDENTITY_KUBE_APISERVER - IDENTITY_HOST + 1);

	for (i = 0; i < a->nobjs; i++)
		if (a->objs[i]->bad_rev && a->objs[i]->bad_rev == a->objs[i]->mod_rev)
			bad++;
	mb_family(b, "ciliate_agent_reconciles_total", "counter",
		  "Reconciles of the node's maps with the store, tagged by outcome");
	mb_printf(b, "ciliate_agent_reconciles_total{outcome=\"success\"} %llu\n",
		  (unsigned long long)(a->reconciles >= a->reconcile_errors
					       ? a->reconciles - a->reconcile_errors
					       : 0));
	mb_printf(b, "ciliate_agent_reconciles_total{outcome=\"failure\"} %llu\n",
		  (unsigned long long)a->reconcile_errors);
	mb_family(b, "ciliate_agent_reconcile_duration_seconds", "gauge",
		  "Duration of the last reconcile in seconds");
	mb_printf(b, "ciliate_agent_reconcile_duration_seconds %.6f\n",
		  a->last_reconcile_ms / 1000.0);
	mb_family(b, "ciliate_agent_bad_objects", "gauge",
		  "Stored objects the agent cannot use in their current version");
	mb_printf(b, "ciliate_agent_bad_objects %zu\n", bad);
	mb_family(b, "ciliate_agent_store_revision", "gauge",
		  "Store revision the agent has seen");
	mb_printf(b, "ciliate_agent_store_revision %lld\n", (long long)a->rev);
	mb_family(b, "ciliate_agent_model_revision", "gauge",
		  "Store revision of the model in force");
	mb_printf(b, "ciliate_agent_model_revision %lld\n", (long long)a->model_rev);
}

int agent_metrics_render(const struct agent *a, char **out, size_t *len)
{
	struct mbuf b = {0};
	char *health;

	render_datapath(a, &b);
	render_lost(a, &b);
	render_model(a, &b);
	health = agent_health_metrics_text(a); /* cilium_unreachable_nodes... (health.c) */
	if (health)
		mb_printf(&b, "%s", health);
	free(health);
	render_process(&b);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* ---- the address ---------------------------------------------------------------------- */

int agent_metrics_addr_parse(const char *spec, char *host, size_t hostlen, uint16_t *port,
			     struct diag *d)
{
	const char *colon, *h;
	size_t hl;
	char *end;
	long p;

	if (!spec || !*spec || !strcmp(spec, "off"))
		return 1;
	colon = strrchr(spec, ':');
	if (!colon)
		return diag_fail(d, "--prometheus-serve-addr \"%s\": want [HOST]:PORT (e.g. :9962), "
				    "or \"off\"", spec);
	h = spec;
	hl = (size_t)(colon - spec);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [IPv6]:PORT */
		h++;
		hl -= 2;
	} else if (memchr(h, ':', hl)) {
		return diag_fail(d, "--prometheus-serve-addr \"%s\": put an IPv6 address in "
				    "brackets ([::1]:9962)", spec);
	}
	if (hl >= hostlen)
		return diag_fail(d, "--prometheus-serve-addr \"%s\": host too long", spec);
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p < 1 || p > 65535)
		return diag_fail(d, "--prometheus-serve-addr \"%s\": port must be 1..65535", spec);
	*port = (uint16_t)p;
	return 0;
}

/* ---- the listener (httpd.c) ----------------------------------------------------------- */

static void metrics_request(void *arg, const struct httpd_request *req, struct httpd_conn *c)
{
	struct agent *a = arg;
	char *body = NULL;
	size_t len = 0;

	if (strcmp(req->path, "/metrics")) {
		static const char msg[] = "not found: metrics are at /metrics\n";

		httpd_respond(c, 404, "text/plain; charset=utf-8", NULL, msg, sizeof(msg) - 1);
		return;
	}
	if (agent_metrics_render(a, &body, &len)) {
		static const char msg[] = "out of memory\n";

		httpd_respond(c, 500, "text/plain; charset=utf-8", NULL, msg, sizeof(msg) - 1);
		return;
	}
	a->metrics->scrapes++;
	httpd_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, body, len);
	free(body);
}

int agent_metrics_open(struct agent *a, struct diag *d)
{
	const char *spec = a->o.prometheus_addr;
	struct agent_metrics *m;
	struct diag ld = {{0}};
	char host[256];
	uint16_t port;
	int rc, fd;

	rc = agent_metrics_addr_parse(spec, host, sizeof(host), &port, d);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		agent_log(a, "prometheus metrics: disabled");
		return 0;
	}
	fd = httpd_listen(host, port, &ld);
	if (fd < 0) {
		/* the datapath matters more than its metrics: run without them */
		agent_log(a, "warning: prometheus metrics on \"%s\" not served: %s", spec, ld.msg);
		return 0;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	}
	snprintf(m->addr, sizeof(m->addr), "%s", spec);
	m->srv = httpd_new(a->epfd, fd, metrics_request, a, d);
	if (!m->srv) {
		free(m);
		return -EIO;
	}
	a->metrics = m;
	agent_log(a, "prometheus metrics on %s/metrics", spec);
	return 0;
}

bool agent_metrics_handle(struct agent *a, int fd)
{
	return a->metrics && httpd_handle(a->metrics->srv, fd);
}

void agent_metrics_close(struct agent *a)
{
	if (!a->metrics)
		return;
	httpd_free(a->metrics->srv);
	free(a->metrics);
	a->metrics = NULL;
}
