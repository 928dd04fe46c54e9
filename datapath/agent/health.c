/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node-to-node health (health.h, docs/HEALTH.md), like cilium-health's host connectivity:
 *
 * - responder: GET /hello on --health-port inside the node (httpd.c, in the event loop);
 * - prober: a thread that, every --health-interval seconds and whenever asked, probes every
 *   node of the cluster model (itself included) at once: one ICMP echo per node (a raw
 *   socket, or an unprivileged ICMP socket where raw ones are refused) and one
 *   GET http://NODEIP:PORT/hello per node (non-blocking connects), all in one poll() loop
 *   bounded by HEALTH_PROBE_TIMEOUT_MS. The loop hands it the node list (on the tick) and
 *   reads the results under the mutex; the thread writes its eventfd after each round so the
 *   loop answers the clients waiting for a fresh round.
 */
#include "agent.h"
#include "health.h"
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "model/ipaddr.h"

#define HEALTH_RETRY_S 5 /* the next round after one where a node failed */
#define HEALTH_TARGETS_MAX 4096
#define HEALTH_ERR_MAX	   256

/* Cilium's buckets for node_health_connectivity_latency_seconds */
static const double lat_buckets[] = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
				     0.25,  0.5,   1.0,	  2.5,	5.0,   10.0, 30.0};
#define NBUCKETS (sizeof(lat_buckets) / sizeof(lat_buckets[0]))

enum { PROTO_ICMP, PROTO_HTTP, PROTO_COUNT };
static const char *const proto_name[PROTO_COUNT] = {"icmp", "http"};

struct health_target {
	char name[64];
	uint32_t ip; /* network order */
	bool self;
};

/* One probe's outcome. */
struct probe_res {
	int state; /* 0 not probed yet, 1 ok, -1 failed */
	int64_t rtt_ns;
	char error[HEALTH_ERR_MAX];
};

struct health_node {
	struct health_target t;
	struct probe_res p[PROTO_COUNT];
	int64_t last_probe_unix_ms; /* 0: never */
};

struct latency_hist {
	uint64_t bucket[NBUCKETS]; /* cumulative at render time, per bucket here */
	uint64_t count;
	double sum;
};

struct agent_health {
	uint16_t port;
	int interval_s;
	struct httpd *srv; /* NULL: the port could not be bound */
	uint64_t hellos;
	int efd;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	bool stop;
	struct health_target *targets; /* the loop's latest list */
	size_t ntargets;
	bool targets_new;
	bool probe_now;
	uint64_t rounds_started, rounds_done;
	struct health_node *nodes; /* the last round's results, in target order */
	size_t nnodes;
	int64_t probe_time_unix_ms; /* when the last round started (0: none yet) */
	int64_t last_round_ns;
	struct latency_hist hist[PROTO_COUNT];
	char icmp_mode[16]; /* "raw", "unprivileged" or the error opening either */
};

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void rfc3339(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the prober: one round ------------------------------------------------------------ */

static uint16_t icmp_csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		sum += (uint32_t)(p[0] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* Opens the ICMP socket: raw (root, as the agent runs), else an unprivileged ICMP socket
 * (net.ipv4.ping_group_range). *raw tells which; -errno when neither opens. */
static int icmp_open(bool *raw)
{
	int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);

	*raw = fd >= 0;
	if (fd >= 0)
		return fd;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
	return fd >= 0 ? fd : -errno;
}

struct http_probe {
	int fd;
	int phase; /* 0 connecting, 1 sending, 2 reading, 3 done */
	int64_t start_ns;
	char buf[256];
	size_t len;
	size_t sent;
};

static void set_err(struct probe_res *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(struct probe_res *r, const char *fmt, ...)
{
	va_list ap;

	r->state = -1;
	r->rtt_ns = 0;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

static void set_ok(struct probe_res *r, int64_t rtt_ns)
{
	r->state = 1;
	r->rtt_ns = rtt_ns > 0 ? rtt_ns : 1;
	r->error[0] = '\0';
}

/* The failure of an HTTP probe in the words of Go's net/http client (as cilium-health
 * prints them): `Get "http://IP:PORT/hello": dial tcp IP:PORT: connect: connection refused`. */
static void http_fail(struct probe_res *r, const char *ip, uint16_t port, const char *what)
{
	set_err(r, "Get \"http://%s:%u%s\": %s", ip, port, HEALTH_PATH, what);
}

static void http_dial_fail(struct probe_res *r, const char *ip, uint16_t port, int err)
{
	char what[160];
	const char *msg = strerror(err);
	char low[96];
	size_t i;

	/* Go prints errno texts in lower case: "connection refused", "no route to host" */
	for (i = 0; msg[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)(msg[i] >= 'A' && msg[i] <= 'Z' ? msg[i] - 'A' + 'a' : msg[i]);
	low[i] = '\0';
	snprintf(what, sizeof(what), "dial tcp %s:%u: connect: %s", ip, port, low);
	http_fail(r, ip, port, what);
}

static void http_start(struct http_probe *h, uint32_t ip, uint16_t port, struct probe_res *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char ips[INET_ADDRSTRLEN];

	sa.sin_addr.s_addr = ip;
	ip4_format(ip, ips);
	h->start_ns = mono_ns();
	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->fd < 0) {
		http_fail(r, ips, port, strerror(errno));
		h->phase = 3;
		return;
	}
	if (connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		h->phase = 1;
		return;
	}
	if (errno == EINPROGRESS) {
		h->phase = 0;
		return;
	}
	http_dial_fail(r, ips, port, errno);
	close(h->fd);
	h->fd = -1;
	h->phase = 3;
}

/* Advances one HTTP probe after poll() said its socket is ready. */
static void http_step(struct http_probe *h, uint32_t ip, uint16_t port, struct probe_res *r)
{
	char ips[INET_ADDRSTRLEN], req[160];
	socklen_t elen = sizeof(int);
	int err = 0, n, code;
	ssize_t k;

	ip4_format(ip, ips);
	if (h->phase == 0) {
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err) {
			http_dial_fail(r, ips, port, err);
			goto done;
		}
		h->phase = 1;
	}
	if (h->phase == 1) {
		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: ciliate-health\r\n"
			     "Connection: close\r\n\r\n",
			     HEALTH_PATH, ips, port);
		k = send(h->fd, req + h->sent, (size_t)n - h->sent, MSG_NOSIGNAL);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (k < 0) {
			http_fail(r, ips, port, strerror(errno));
			goto done;
		}
		h->sent += (size_t)k;
		if (h->sent < (size_t)n)
			return;
		h->phase = 2;
		return;
	}
	k = recv(h->fd, h->buf + h->len, sizeof(h->buf) - 1 - h->len, 0);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (k < 0) {
		http_fail(r, ips, port, strerror(errno));
		goto done;
	}
	h->len += (size_t)k;
	h->buf[h->len] = '\0';
	if (!strstr(h->buf, "\r\n") && k > 0 && h->len < sizeof(h->buf) - 1)
		return; /* the status line is not complete yet */
	if (sscanf(h->buf, "HTTP/1.%*d %d", &code) != 1) {
		http_fail(r, ips, port, k == 0 ? "EOF" : "malformed HTTP response");
		goto done;
	}
	if (code != 200) {
		char what[64];

		snprintf(what, sizeof(what), "HTTP status %d", code);
		http_fail(r, ips, port, what);
		goto done;
	}
	set_ok(r, mono_ns() - h->start_ns);
done:
	close(h->fd);
	h->fd = -1;
	h->phase = 3;
}

/* Reads the echo replies waiting on fd: a reply to target i (seq i, our id, from its
 * address) completes its ICMP probe. */
static void icmp_read(int fd, bool raw, uint16_t id, struct health_node *nodes, size_t n,
		      const int64_t *sent_ns)
{
	uint8_t buf[1500];
	struct sockaddr_in from;
	socklen_t flen;
	ssize_t k;
	int i;

	for (i = 0; i < 256; i++) { /* bounded: the rest waits for the next poll() */
		const struct icmphdr *ic;
		size_t off = 0;
		uint16_t seq;

		flen = sizeof(from);
		k = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (k < 0)
			return;
		if (raw) {
			if (k < (ssize_t)sizeof(struct iphdr))
				continue;
			off = (size_t)(buf[0] & 0x0f) * 4;
		}
		if ((size_t)k < off + sizeof(struct icmphdr))
			continue;
		ic = (const struct icmphdr *)(buf + off);
		if (ic->type != ICMP_ECHOREPLY)
			continue;
		/* an unprivileged socket gets its own replies only, with the id it chose */
		if (raw && ntohs(ic->un.echo.id) != id)
			continue;
		seq = ntohs(ic->un.echo.sequence);
		if (seq >= n || nodes[seq].t.ip != from.sin_addr.s_addr ||
		    nodes[seq].p[PROTO_ICMP].state != 0)
			continue;
		set_ok(&nodes[seq].p[PROTO_ICMP], mono_ns() - sent_ns[seq]);
	}
}

/* Probes every node of nodes[] (their results are zero on entry) by ICMP and HTTP at once;
 * returns within HEALTH_PROBE_TIMEOUT_MS (plus the time to open the sockets). */
static void probe_round(struct agent_health *h, struct health_node *nodes, size_t n,
			uint16_t id)
{
	struct http_probe *hp = calloc(n ? n : 1, sizeof(*hp));
	int64_t *sent_ns = calloc(n ? n : 1, sizeof(*sent_ns));
	struct pollfd *pfd = calloc(n + 1, sizeof(*pfd));
	int64_t deadline = mono_ns() + (int64_t)HEALTH_PROBE_TIMEOUT_MS * 1000000;
	char ips[INET_ADDRSTRLEN];
	bool raw = false;
	int icmp_fd, rounds;
	size_t i;

	if (!hp || !sent_ns || !pfd) {
		for (i = 0; i < n; i++) {
			set_err(&nodes[i].p[PROTO_ICMP], "out of memory");
			set_err(&nodes[i].p[PROTO_HTTP], "out of memory");
		}
		goto out;
	}
	icmp_fd = icmp_open(&raw);
	pthread_mutex_lock(&h->mu);
	snprintf(h->icmp_mode, sizeof(h->icmp_mode), "%s",
		 icmp_fd < 0 ? "unavailable" : raw ? "raw" : "unprivileged");
	pthread_mutex_unlock(&h->mu);
	for (i = 0; i < n; i++) {
		struct icmphdr ic = {.type = ICMP_ECHO};
		struct sockaddr_in sa = {.sin_family = AF_INET};
		uint8_t pkt[sizeof(ic) + 24];

		nodes[i].last_probe_unix_ms = unix_ms();
		ip4_format(nodes[i].t.ip, ips);
		if (icmp_fd < 0) {
			set_err(&nodes[i].p[PROTO_ICMP], "cannot open an ICMP socket: %s",
				strerror(-icmp_fd));
		} else {
			ic.un.echo.id = htons(id);
			ic.un.echo.sequence = htons((uint16_t)i);
			memset(pkt, 0, sizeof(pkt));
			memcpy(pkt, &ic, sizeof(ic));
			memcpy(pkt + sizeof(ic), "ciliate-health", 14);
			((struct icmphdr *)pkt)->checksum = icmp_csum(pkt, sizeof(pkt));
			sa.sin_addr.s_addr = nodes[i].t.ip;
			sent_ns[i] = mono_ns();
			if (sendto(icmp_fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&sa,
				   sizeof(sa)) < 0)
				set_err(&nodes[i].p[PROTO_ICMP], "%s", strerror(errno));
		}
		http_start(&hp[i], nodes[i].t.ip, h->port, &nodes[i].p[PROTO_HTTP]);
	}
	/* bounded twice: by the deadline, and by a count of wake-ups */
	for (rounds = 0; rounds < 100000; rounds++) {
		int64_t left = deadline - mono_ns();
		size_t np = 0, waiting = 0;
		int r;

		if (icmp_fd >= 0) {
			for (i = 0; i < n; i++)
				waiting += nodes[i].p[PROTO_ICMP].state == 0;
			if (waiting)
				pfd[np++] = (struct pollfd){.fd = icmp_fd, .events = POLLIN};
		}
		for (i = 0; i < n; i++)
			if (hp[i].phase < 3)
				pfd[np++] = (struct pollfd){
					.fd = hp[i].fd,
					.events = hp[i].phase == 2 ? POLLIN : POLLOUT};
		if (!np || left <= 0)
			break;
		r = poll(pfd, np, (int)((left + 999999) / 1000000));
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		if (icmp_fd >= 0 && waiting && pfd[0].revents)
			icmp_read(icmp_fd, raw, id, nodes, n, sent_ns);
		for (i = 0; i < n; i++)
			if (hp[i].phase < 3) {
				size_t k;

				for (k = 0; k < np && pfd[k].fd != hp[i].fd; k++)
					;
				if (k < np && pfd[k].revents)
					http_step(&hp[i], nodes[i].t.ip, h->port,
						  &nodes[i].p[PROTO_HTTP]);
			}
	}
	for (i = 0; i < n; i++) {
		ip4_format(nodes[i].t.ip, ips);
		if (nodes[i].p[PROTO_ICMP].state == 0)
			set_err(&nodes[i].p[PROTO_ICMP], "Connection timed out");
		if (hp[i].phase < 3) {
			char what[96];

			if (hp[i].phase == 0)
				snprintf(what, sizeof(what), "dial tcp %s:%u: i/o timeout", ips,
					 h->port);
			else
				snprintf(what, sizeof(what), "context deadline exceeded "
					 "(Client.Timeout exceeded while awaiting headers)");
			http_fail(&nodes[i].p[PROTO_HTTP], ips, h->port, what);
			close(hp[i].fd);
		}
	}
	if (icmp_fd >= 0)
		close(icmp_fd);
out:
	free(hp);
	free(sent_ns);
	free(pfd);
}

/* ---- the prober thread ---------------------------------------------------------------- */

static void *prober_main(void *arg)
{
	struct agent *a = arg;
	struct agent_health *h = a->health;
	int64_t next_ms = 0; /* CLOCK_REALTIME ms of the next scheduled round (0: at once) */
	uint16_t id = (uint16_t)(getpid() & 0xffff);

	for (;;) {
		struct health_node *nodes = NULL;
		size_t n, i;
		uint64_t one = 1;
		int64_t t0, t0_ns;

		pthread_mutex_lock(&h->mu);
		while (!h->stop) {
			int64_t now = unix_ms();
			struct timespec ts;
			int64_t wake;

			if (h->ntargets && (h->probe_now || h->targets_new || now >= next_ms))
				break;
			wake = h->ntargets ? next_ms : now + 1000;
			ts.tv_sec = (time_t)(wake / 1000);
			ts.tv_nsec = (long)(wake % 1000) * 1000000;
			pthread_cond_timedwait(&h->cv, &h->mu, &ts);
		}
		if (h->stop) {
			pthread_mutex_unlock(&h->mu);
			break;
		}
		n = h->ntargets;
		nodes = calloc(n, sizeof(*nodes));
		if (nodes)
			for (i = 0; i < n; i++)
				nodes[i].t = h->targets[i];
		h->probe_now = false;
		h->targets_new = false;
		h->rounds_started++;
		t0 = unix_ms();
		t0_ns = mono_ns();
		pthread_mutex_unlock(&h->mu);

		id++; /* a late reply of an earlier round is not taken for one of this */
		if (nodes)
			probe_round(h, nodes, n, id);

		pthread_mutex_lock(&h->mu);
		if (nodes) {
			free(h->nodes);
			h->nodes = nodes;
			h->nnodes = n;
			h->probe_time_unix_ms = t0;
			h->last_round_ns = mono_ns() - t0_ns;
			for (i = 0; i < n; i++)
				for (int p = 0; p < PROTO_COUNT; p++) {
					struct latency_hist *lh = &h->hist[p];
					double s = (double)nodes[i].p[p].rtt_ns / 1e9;

					if (nodes[i].p[p].state != 1)
						continue;
					for (size_t b = 0; b < NBUCKETS; b++)
						if (s <= lat_buckets[b]) {
							lh->bucket[b]++;
							break;
						}
					lh->count++;
					lh->sum += s;
				}
		}
		h->rounds_done = h->rounds_started;
		next_ms = t0 + (int64_t)h->interval_s * 1000;
		/* a node that failed (e.g. its agent was not listening yet at bring-up) is looked
		 * at again soon, not an interval later: its return shows in seconds */
		for (i = 0; nodes && i < n; i++)
			if (nodes[i].p[PROTO_ICMP].state != 1 || nodes[i].p[PROTO_HTTP].state != 1) {
				if (h->interval_s > HEALTH_RETRY_S)
					next_ms = t0 + (int64_t)HEALTH_RETRY_S * 1000;
				break;
			}
		pthread_mutex_unlock(&h->mu);
		if (write(h->efd, &one, sizeof(one)) < 0) {
			/* saturated at worst: still readable */
		}
	}
	return NULL;
}

/* ---- the responder -------------------------------------------------------------------- */

static void hello_request(void *arg, const struct httpd_request *req, struct httpd_conn *c)
{
	struct agent *a = arg;
	static const char nf[] = "not found: the health responder answers " HEALTH_PATH "\n";
	char body[128];
	int n;

	if (strcmp(req->path, HEALTH_PATH)) {
		httpd_respond(c, 404, "text/plain; charset=utf-8", NULL, nf, sizeof(nf) - 1);
		return;
	}
	a->health->hellos++;
	n = snprintf(body, sizeof(body), "ciliate-agent %s: hello\n", a->o.node);
	httpd_respond(c, 200, "text/plain; charset=utf-8", NULL, body, (size_t)n);
}

/* ---- the loop's side ------------------------------------------------------------------ */

int agent_health_start(struct agent *a, struct diag *d)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct agent_health *h;
	struct diag ld = {{0}};
	int fd, err;

	h = calloc(1, sizeof(*h));
	if (!h)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	h->port = (uint16_t)(a->o.health_port ? a->o.health_port : HEALTH_PORT_DEFAULT);
	h->interval_s = a->o.health_interval_s ? a->o.health_interval_s : HEALTH_INTERVAL_DEFAULT;
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->efd < 0) {
		err = -errno;
		free(h);
		return diag_fail_errno(d, err, "health: eventfd: %s", strerror(-err));
	}
	ev.data.fd = h->efd;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, h->efd, &ev) < 0) {
		err = -errno;
		close(h->efd);
		free(h);
		return diag_fail_errno(d, err, "health: epoll: %s", strerror(-err));
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	a->health = h;
	fd = httpd_listen("", h->port, &ld);
	if (fd < 0) /* the datapath matters more than its health responder: run without it */
		agent_log(a, "warning: health responder on port %u not served: %s", h->port,
			  ld.msg);
	else if (!(h->srv = httpd_new(a->epfd, fd, hello_request, a, &ld)))
		agent_log(a, "warning: health responder: %s", ld.msg);
	err = pthread_create(&h->thread, NULL, prober_main, a);
	if (err) {
		agent_health_stop(a);
		return diag_fail_errno(d, -err, "health: thread: %s", strerror(err));
	}
	h->started = true;
	agent_log(a, "health: GET %s on port %u%s, probing every node every %d s", HEALTH_PATH,
		  h->port, h->srv ? "" : " (NOT served)", h->interval_s);
	agent_health_tick(a); /* the nodes the first reconcile found */
	return 0;
}

void agent_health_stop(struct agent *a)
{
	struct agent_health *h = a->health;

	if (!h)
		return;
	if (h->started) {
		pthread_mutex_lock(&h->mu);
		h->stop = true;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->thread, NULL);
	}
	httpd_free(h->srv);
	if (a->epfd >= 0)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, h->efd, NULL);
	close(h->efd);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h->targets);
	free(h->nodes);
	free(h);
	a->health = NULL;
}

/* The nodes of the model: this node first, then the others by name. */
static int target_cmp(const void *x, const void *y)
{
	const struct health_target *p = x, *q = y;

	if (p->self != q->self)
		return p->self ? -1 : 1;
	return strcmp(p->name, q->name);
}

static const char *cluster_name(const struct agent *a)
{
	return a->model && a->model->cluster.name[0] ? a->model->cluster.name : "default";
}

/* Answers the clients waiting for a round; all of them when force (they waited too long). */
static void answer_waiters(struct agent *a, bool force)
{
	struct agent_health *h = a->health;
	int64_t now = agent_now_ms();
	uint64_t done;
	size_t i;

	pthread_mutex_lock(&h->mu);
	done = h->rounds_done;
	pthread_mutex_unlock(&h->mu);
	/* answering may close a client (moving the last one into its slot): walk back */
	for (i = a->nclients; i-- > 0;) {
		struct agent_client *c = &a->clients[i];
		json_t *r;

		if (!c->health_wait)
			continue;
		if (done < c->health_want &&
		    !(force && now - c->health_since_ms >= HEALTH_WAIT_MAX_MS))
			continue;
		c->health_wait = false;
		r = agent_op_health_status(a, NULL, NULL);
		if (done < c->health_want)
			json_object_set_new(r, "probeError",
					    json_string("the probe round did not end in time; "
							"these are the last results"));
		if (agent_client_send(a, c, r))
			agent_server_resume(a, c);
	}
}

void agent_health_tick(struct agent *a)
{
	struct agent_health *h = a->health;
	struct health_target *v = NULL;
	size_t n = 0, i;

	if (!h)
		return;
	if (a->model && a->model->cluster.nnodes) {
		n = a->model->cluster.nnodes;
		if (n > HEALTH_TARGETS_MAX)
			n = HEALTH_TARGETS_MAX;
		v = calloc(n, sizeof(*v));
		if (!v)
			return;
		for (i = 0; i < n; i++) {
			const struct m_node *mn = &a->model->cluster.nodes[i];

			snprintf(v[i].name, sizeof(v[i].name), "%s", mn->name);
			v[i].ip = mn->ip;
			v[i].self = !strcmp(mn->name, a->o.node);
		}
		qsort(v, n, sizeof(*v), target_cmp);
	}
	pthread_mutex_lock(&h->mu);
	if (n != h->ntargets || (n && memcmp(v, h->targets, n * sizeof(*v)))) {
		free(h->targets);
		h->targets = v;
		h->ntargets = n;
		h->targets_new = true; /* a node came or went: probe at once */
		pthread_cond_broadcast(&h->cv);
		v = NULL;
	}
	pthread_mutex_unlock(&h->mu);
	free(v);
	answer_waiters(a, true);
}

bool agent_health_handle(struct agent *a, int fd)
{
	struct agent_health *h = a->health;
	uint64_t v;

	if (!h)
		return false;
	if (fd == h->efd) {
		while (read(h->efd, &v, sizeof(v)) > 0)
			;
		answer_waiters(a, false);
		return true;
	}
	return h->srv && httpd_handle(h->srv, fd);
}

static json_t *probe_json(const struct probe_res *r)
{
	if (r->state == 1)
		return json_pack("{s:s, s:I}", "status", "ok", "rttNs", (json_int_t)r->rtt_ns);
	if (r->state < 0)
		return json_pack("{s:s, s:s}", "status", "error", "error", r->error);
	return json_pack("{s:s}", "status", "unknown");
}

/* Counts under h->mu: nodes whose probes both succeeded, and whose either failed. */
static void count_locked(const struct agent_health *h, size_t *ok, size_t *bad)
{
	*ok = *bad = 0;
	for (size_t i = 0; i < h->nnodes; i++) {
		const struct health_node *n = &h->nodes[i];

		if (n->p[PROTO_ICMP].state == 1 && n->p[PROTO_HTTP].state == 1)
			(*ok)++;
		else if (n->p[PROTO_ICMP].state < 0 || n->p[PROTO_HTTP].state < 0)
			(*bad)++;
	}
}

json_t *agent_op_health_status(struct agent *a, struct agent_client *c, json_t *req)
{
	struct agent_health *h = a->health;
	json_t *r, *nodes;
	char at[32], ips[INET_ADDRSTRLEN];
	size_t ok, bad, i;

	if (!h)
		return json_pack("{s:b, s:s, s:s}", "ok", 0, "error",
				 "health checking is not running on this agent", "code",
				 "not-ready");
	if (c && json_is_true(json_object_get(req, "probe"))) {
		pthread_mutex_lock(&h->mu);
		h->probe_now = true;
		c->health_want = h->rounds_started + 1;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		c->health_wait = true;
		c->health_since_ms = agent_now_ms();
		return NULL; /* answered by answer_waiters() */
	}
	nodes = json_array();
	pthread_mutex_lock(&h->mu);
	count_locked(h, &ok, &bad);
	if (h->probe_time_unix_ms)
		rfc3339(h->probe_time_unix_ms, at, sizeof(at));
	r = json_pack("{s:b, s:s, s:s, s:I, s:I, s:b, s:s, s:o, s:I, s:I, s:{s:I, s:I, s:I}}",
		      "ok", 1, "node", a->o.node, "cluster", cluster_name(a), "port",
		      (json_int_t)h->port, "interval", (json_int_t)h->interval_s, "responder",
		      h->srv != NULL, "icmpSocket", h->icmp_mode[0] ? h->icmp_mode : "not opened yet",
		      "probeTime", h->probe_time_unix_ms ? json_string(at) : json_null(),
		      "probeDurationNs", (json_int_t)h->last_round_ns, "rounds",
		      (json_int_t)h->rounds_done, "summary", "reachable", (json_int_t)ok, "unreachable",
		      (json_int_t)bad, "total", (json_int_t)h->nnodes);
	for (i = 0; i < h->nnodes; i++) {
		const struct health_node *n = &h->nodes[i];

		if (n->last_probe_unix_ms)
			rfc3339(n->last_probe_unix_ms, at, sizeof(at));
		json_array_append_new(
			nodes, json_pack("{s:s, s:s, s:b, s:o, s:o, s:o}", "name", n->t.name, "ip",
					 ip4_format(n->t.ip, ips), "localhost", n->t.self, "icmp",
					 probe_json(&n->p[PROTO_ICMP]), "http",
					 probe_json(&n->p[PROTO_HTTP]), "lastProbe",
					 n->last_probe_unix_ms ? json_string(at) : json_null()));
	}
	pthread_mutex_unlock(&h->mu);
	json_object_set_new(r, "nodes", nodes);
	return r;
}

json_t *agent_health_summary_json(const struct agent *a)
{
	struct agent_health *h = a->health;
	json_t *r, *un;
	char at[32];
	size_t ok, bad, i;

	if (!h)
		return json_null();
	un = json_array();
	pthread_mutex_lock(&h->mu);
	count_locked(h, &ok, &bad);
	for (i = 0; i < h->nnodes; i++)
		if (h->nodes[i].p[PROTO_ICMP].state < 0 || h->nodes[i].p[PROTO_HTTP].state < 0)
			json_array_append_new(un, json_string(h->nodes[i].t.name));
	if (h->probe_time_unix_ms)
		rfc3339(h->probe_time_unix_ms, at, sizeof(at));
	/* before the first round the model's nodes are the total */
	r = json_pack("{s:I, s:I, s:o, s:o, s:I}", "reachable", (json_int_t)ok, "total",
		      (json_int_t)(h->probe_time_unix_ms ? h->nnodes : h->ntargets), "unreachable",
		      un, "probeTime", h->probe_time_unix_ms ? json_string(at) : json_null(),
		      "interval", (json_int_t)h->interval_s);
	pthread_mutex_unlock(&h->mu);
	return r;
}

/* ---- metrics -------------------------------------------------------------------------- */

struct tbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void tb_printf(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tb_printf(struct tbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int tries = 0; tries < 32 && !b->oom; tries++) {
		size_t room = b->cap - b->len;
		char *np;

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
		np = realloc(b->p, (b->cap + (size_t)n + 1) * 2);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = (b->cap + (size_t)n + 1) * 2;
	}
}

/* Node and cluster names are DNS labels here, but escape as the format wants anyway. */
static const char *esc(const char *v, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *v && o + 3 < outlen; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			out[o++] = '\\';
			out[o++] = *v == '\n' ? 'n' : *v;
		} else {
			out[o++] = *v;
		}
	}
	out[o] = '\0';
	return out;
}

char *agent_health_metrics_text(const struct agent *a)
{
	struct agent_health *h = a->health;
	char cl[160], nd[160], src[400];
	struct tbuf b = {0};
	size_t ok, bad, unknown;

	if (!h)
		return NULL;
	snprintf(src, sizeof(src), "source_cluster=\"%s\",source_node_name=\"%s\"",
		 esc(cluster_name(a), cl, sizeof(cl)), esc(a->o.node, nd, sizeof(nd)));
	pthread_mutex_lock(&h->mu);
	count_locked(h, &ok, &bad);
	unknown = h->nnodes - ok - bad;
	if (!h->probe_time_unix_ms)
		unknown = h->ntargets;
	tb_printf(&b, "# HELP cilium_unreachable_nodes Number of nodes that cannot be reached\n"
		      "# TYPE cilium_unreachable_nodes gauge\ncilium_unreachable_nodes %zu\n",
		  bad);
	tb_printf(&b, "# HELP cilium_node_health_connectivity_status Number of endpoints with last "
		      "observed status of both ICMP and HTTP connectivity between the current "
		      "Cilium agent and other Cilium nodes\n"
		      "# TYPE cilium_node_health_connectivity_status gauge\n");
	tb_printf(&b, "cilium_node_health_connectivity_status{%s,type=\"node\",status=\"reachable\"} "
		      "%zu\n", src, ok);
	tb_printf(&b, "cilium_node_health_connectivity_status{%s,type=\"node\",status=\"unreachable\"} "
		      "%zu\n", src, bad);
	tb_printf(&b, "cilium_node_health_connectivity_status{%s,type=\"node\",status=\"unknown\"} "
		      "%zu\n", src, unknown);
	tb_printf(&b, "# HELP cilium_node_health_connectivity_latency_seconds The histogram for last "
		      "observed latency between the current Cilium agent and other Cilium nodes in "
		      "seconds\n# TYPE cilium_node_health_connectivity_latency_seconds histogram\n");
	for (int p = 0; p < PROTO_COUNT; p++) {
		const struct latency_hist *lh = &h->hist[p];
		char lbl[600];
		uint64_t cum = 0;

		snprintf(lbl, sizeof(lbl), "%s,type=\"node\",address_type=\"primary\",protocol=\"%s\"",
			 src, proto_name[p]);
		for (size_t k = 0; k < NBUCKETS; k++) {
			cum += lh->bucket[k];
			tb_printf(&b, "cilium_node_health_connectivity_latency_seconds_bucket{%s,le=\"%g\"} "
				      "%llu\n", lbl, lat_buckets[k], (unsigned long long)cum);
		}
		tb_printf(&b, "cilium_node_health_connectivity_latency_seconds_bucket{%s,le=\"+Inf\"} "
			      "%llu\n", lbl, (unsigned long long)lh->count);
		tb_printf(&b, "cilium_node_health_connectivity_latency_seconds_sum{%s} %.9f\n", lbl,
			  lh->sum);
		tb_printf(&b, "cilium_node_health_connectivity_latency_seconds_count{%s} %llu\n", lbl,
			  (unsigned long long)lh->count);
	}
	pthread_mutex_unlock(&h->mu);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
