/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event pipeline (docs/OBSERVABILITY.md): a reader thread consumes the node's ring
 * buffer continuously and decodes every event into a flow, enriched from a directory the
 * agent's loop rebuilds after each reconcile that changed something; flows go into a bounded
 * buffer that the API (op "observe", observe.c) serves. The ring-buffer's own loss counter
 * (ciliate_events_lost, per CPU) is read by the thread and becomes lost_events records.
 *
 * Why a thread: the loop can be busy for tens of milliseconds (a reconcile at 10,000 pods);
 * the 8 MiB ring holds about 80,000 events, 80 ms at a million events a second, which also
 * covers the reader being descheduled on a loaded machine (docs/PERFORMANCE.md, Events).
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "flow/flow.h"

/* The datapath wakes the reader only when an eighth of the ring is waiting
 * (EVENTS_WAKEUP_BYTES), so the reader also looks on its own: every POLL_BUSY_MS while events
 * come, every POLL_IDLE_MS when none came. */
#define POLL_BUSY_MS 5
#define POLL_IDLE_MS 50
#define LOST_CHECK_MS 100

struct agent_monitor {
	pthread_t thread;
	bool running;
	volatile bool stop;
	struct ring_buffer *rb;
	int lost_fd;		/* ciliate_events_lost */
	int ncpus;
	pthread_mutex_t mu;	/* guards everything below */
	struct flow_dir *dir;	/* current directory (one reference) */
	struct flow_buf buf;
	uint64_t seen;		/* events read from the ring */
	uint64_t lost;		/* sum of ciliate_events_lost, as last read */
	uint64_t lost_at_start; /* lost before this agent started (earlier agents) */
	int64_t clock_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	int notify_fd;		/* eventfd: new flows for followers */
	bool followers;		/* the loop has followers: notify it */
	bool notified;		/* a notification is pending */
};

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Events carry bpf_ktime_get_ns(): CLOCK_MONOTONIC. */
static int64_t clock_offset(void)
{
	return clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
}

static void notify_loop(struct agent_monitor *m)
{
	uint64_t one = 1;

	if (!m->followers || m->notified)
		return;
	m->notified = true;
	if (write(m->notify_fd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow at one write per notification */
	}
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct agent_monitor *m = ctx;
	struct flow f;

	/* called by ring_buffer__consume() with m->mu held (one lock per batch) */
	if (size < sizeof(struct ciliate_event))
		return 0;
	memset(&f, 0, sizeof(f));
	flow_decode(&f, data, m->dir);
	f.time_ns = (int64_t)f.ev.ts_ns + m->clock_offset_ns;
	flow_buf_append(&m->buf, &f);
	m->seen++;
	return 0;
}

static uint64_t read_lost(const struct agent_monitor *m)
{
	uint64_t *v = calloc((size_t)m->ncpus, sizeof(*v)), sum = 0;
	uint32_t zero = 0;

	if (v && bpf_map_lookup_elem(m->lost_fd, &zero, v) == 0)
		for (int i = 0; i < m->ncpus; i++)
			sum += v[i];
	free(v);
	return sum;
}

/* A lost_events record for what the ring dropped since the last look. */
static void check_lost(struct agent_monitor *m)
{
	uint64_t lost = read_lost(m);
	struct flow f;

	pthread_mutex_lock(&m->mu);
	if (lost > m->lost) {
		memset(&f, 0, sizeof(f));
		f.kind = FLOW_LOST;
		f.lost = lost - m->lost;
		f.time_ns = clock_ns(CLOCK_REALTIME);
		flow_buf_append(&m->buf, &f);
		notify_loop(m);
	}
	m->lost = lost;
	m->clock_offset_ns = clock_offset(); /* follows wall-clock steps */
	pthread_mutex_unlock(&m->mu);
}

/* Decodes everything waiting in the ring, under one lock; the number of events. */
static int consume(struct agent_monitor *m)
{
	int n;

	pthread_mutex_lock(&m->mu);
	n = ring_buffer__consume(m->rb);
	if (n > 0)
		notify_loop(m);
	pthread_mutex_unlock(&m->mu);
	return n;
}

static void *reader(void *arg)
{
	struct agent_monitor *m = arg;
	struct pollfd p = {.fd = ring_buffer__epoll_fd(m->rb), .events = POLLIN};
	int64_t next_check = 0, now;
	int wait_ms = POLL_IDLE_MS;

	while (!m->stop) {
		/* woken by the datapath past its fill level, or by the timeout */
		poll(&p, 1, wait_ms);
		wait_ms = consume(m) > 0 ? POLL_BUSY_MS : POLL_IDLE_MS;
		now = clock_ns(CLOCK_MONOTONIC);
		if (now >= next_check) {
			check_lost(m);
			next_check = now + (int64_t)LOST_CHECK_MS * 1000000;
		}
	}
	return NULL;
}

int agent_monitor_start(struct agent *a, struct diag *d)
{
	struct agent_monitor *m = calloc(1, sizeof(*m));
	struct epoll_event ev = {.events = EPOLLIN};
	int err;

	if (!m)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	pthread_mutex_init(&m->mu, NULL);
	m->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->lost_fd = datapath_map_fd(a->dp, MAP_EVENTS_LOST);
	m->ncpus = libbpf_num_possible_cpus();
	m->clock_offset_ns = clock_offset();
	a->monitor = m;
	if (m->notify_fd < 0 || m->ncpus <= 0 || m->lost_fd < 0)
		return diag_fail_errno(d, -EINVAL, "event pipeline set-up failed");
	err = flow_buf_init(&m->buf, a->o.flow_buffer_size);
	if (err)
		return diag_fail_errno(d, err, "flow buffer of %zu flows: out of memory",
				       a->o.flow_buffer_size);
	m->rb = ring_buffer__new(datapath_map_fd(a->dp, MAP_EVENTS), on_event, m, NULL);
	if (!m->rb)
		return diag_fail_errno(d, -errno, "opening the event ring buffer: %s",
				       strerror(errno));
	m->lost = m->lost_at_start = read_lost(m);
	ev.data.fd = m->notify_fd;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, m->notify_fd, &ev) < 0)
		return diag_fail_errno(d, -errno, "epoll: %s", strerror(errno));
	err = pthread_create(&m->thread, NULL, reader, m);
	if (err)
		return diag_fail_errno(d, -err, "starting the event reader: %s", strerror(err));
	m->running = true;
	return 0;
}

void agent_monitor_stop(struct agent *a)
{
	struct agent_monitor *m = a->monitor;

	if (!m)
		return;
	m->stop = true;
	if (m->running)
		pthread_join(m->thread, NULL);
	ring_buffer__free(m->rb);
	flow_buf_free(&m->buf);
	flow_dir_put(m->dir);
	if (m->notify_fd >= 0)
		close(m->notify_fd);
	pthread_mutex_destroy(&m->mu);
	free(m);
	a->monitor = NULL;
}

int agent_monitor_fd(const struct agent *a)
{
	return a->monitor ? a->monitor->notify_fd : -1;
}

/* ---- the directory, from the model ---- */

static int add_identity(struct flow_dir *dir, const struct agent *a, uint32_t id)
{
	json_t *arr = agent_identity_labels_json(a, id);
	size_t n = json_array_size(arr), i;
	const char **v = calloc(n + 1, sizeof(*v));
	int err = -ENOMEM;

	if (v) {
		for (i = 0; i < n; i++)
			v[i] = json_string_value(json_array_get(arr, i)) ?: "";
		err = flow_dir_add_identity(dir, id, v, n);
	}
	free(v);
	json_decref(arr);
	return err;
}

static uint32_t local_ep_id(const struct agent *a, uint32_t ip)
{
	for (size_t i = 0; i < a->neps; i++)
		if (a->eps[i].ip == ip && a->eps[i].info.ep_id)
			return a->eps[i].info.ep_id;
	return 0;
}

static struct flow_dir *dir_build(const struct agent *a)
{
	const struct cluster_model *m = a->model;
	struct flow_dir *dir = flow_dir_new();
	int err = dir ? 0 : -ENOMEM;
	uint32_t id;
	size_t i;

	for (id = IDENTITY_HOST; !err && id <= IDENTITY_KUBE_APISERVER; id++)
		err = add_identity(dir, a, id);
	for (i = 0; !err && i < m->nidentities; i++)
		err = add_identity(dir, a, m->identities[i].id);
	for (i = 0; !err && i < m->npods; i++) {
		const struct m_pod *p = &m->pods[i];

		if (!p->host_network)
			err = flow_dir_add_addr(dir, p->ip, p->identity, local_ep_id(a, p->ip),
						p->ns, p->name);
	}
	for (i = 0; !err && i < m->cluster.nnodes; i++) {
		const struct m_node *n = &m->cluster.nodes[i];
		bool self = !strcmp(n->name, a->o.node);

		err = flow_dir_add_addr(dir, n->ip, self ? IDENTITY_HOST : IDENTITY_REMOTE_NODE, 0,
					NULL, NULL);
	}
	for (i = 0; !err && i < a->neps; i++)
		if (a->eps[i].ifindex)
			err = flow_dir_add_ifname(dir, a->eps[i].ifindex, a->eps[i].ifname);
	if (!err && a->overlay_ifindex)
		err = flow_dir_add_ifname(dir, a->overlay_ifindex, CILIATE_OVERLAY_DEV);
	/* this node's service frontends: flows name the service a packet was sent to */
	for (i = 0; !err && a->have_ns && i < a->ns.nlb_frontends; i++) {
		const struct node_lb_frontend *fe = &a->ns.lb_frontends[i];
		const struct node_lb_entry *e;

		if (fe->slot0 >= a->ns.nlb || !fe->svc)
			continue;
		e = &a->ns.lb[fe->slot0];
		err = flow_dir_add_service(dir, e->val.rev_nat_index, e->key.family, &e->key.addr,
					   ntohs(e->key.dport), e->key.proto, fe->svc->ns,
					   fe->svc->name);
	}
	if (err) {
		flow_dir_put(dir);
		return NULL;
	}
	return dir;
}

void agent_monitor_refresh(struct agent *a)
{
	struct agent_monitor *m = a->monitor;
	struct flow_dir *dir, *old;

	if (!m || !a->model)
		return;
	dir = dir_build(a);
	if (!dir) {
		agent_log(a, "flow directory: out of memory (flows keep the previous names)");
		return;
	}
	pthread_mutex_lock(&m->mu);
	old = m->dir;
	m->dir = dir;
	pthread_mutex_unlock(&m->mu);
	flow_dir_put(old);
}

/* ---- reading the buffer (the loop) ---- */

int agent_monitor_copy(struct agent *a, uint64_t since_seq, struct flow **out, size_t *n)
{
	struct agent_monitor *m = a->monitor;
	int err;

	*out = NULL;
	*n = 0;
	if (!m)
		return 0;
	pthread_mutex_lock(&m->mu);
	err = flow_buf_copy_since(&m->buf, since_seq, out, n);
	pthread_mutex_unlock(&m->mu);
	return err;
}

void agent_monitor_counts(struct agent *a, struct agent_monitor_counts *c)
{
	struct agent_monitor *m = a->monitor;

	memset(c, 0, sizeof(*c));
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	c->seen = m->seen;
	c->lost = m->lost - m->lost_at_start;
	c->lost_total = m->lost;
	c->capacity = m->buf.cap;
	c->size = flow_buf_size(&m->buf);
	c->next_seq = m->buf.next_seq;
	pthread_mutex_unlock(&m->mu);
}

void agent_monitor_follow(struct agent *a, bool any)
{
	struct agent_monitor *m = a->monitor;
	uint64_t v;

	if (!m)
		return;
	if (read(m->notify_fd, &v, sizeof(v)) < 0) {
		/* nothing pending */
	}
	pthread_mutex_lock(&m->mu);
	m->followers = any;
	m->notified = false;
	pthread_mutex_unlock(&m->mu);
}
