/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Health-check NodePorts (docs/SERVICES.md, "Health-check NodePort"; docs/AGENT.md): for
 * every service with externalTrafficPolicy Local and a healthCheckNodePort, the agent
 * listens on that TCP port on every address of the node and answers any GET with the
 * number of the service's ready endpoints on this node, in kube-proxy's shape (200 when
 * there is one, else 503), so an external load balancer only sends to nodes that have a
 * local backend.
 *
 * The listeners follow the model in force: agent_healthcheck_sync() runs after every
 * successful reconcile, opens the ports of new services, closes those of services that went
 * (or moved to another port, or when the feature is off) and recomputes every count, which
 * requests then read. Serving goes through httpd.c in the agent's epoll loop: nothing here
 * blocks it. A port that cannot be bound (kube-proxy still holding it) is logged once and
 * retried every HC_RETRY_S seconds and on every reconcile; the agent runs on.
 */
#include "agent.h"
#include "httpd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lb/health_check.h"

#define HC_RETRY_S  5	  /* ports that could not be bound are tried again this often */
#define HC_STALE_MS 60000 /* failing reconciles for longer: serviceProxyHealthy false */

struct hc_port {
	struct agent *a;
	uint16_t port;
	struct httpd *srv; /* NULL: not listening (the port could not be bound yet) */
	char ns[64];
	char name[MODEL_NAME_MAX];
	unsigned int local; /* ready local endpoints, as of the last sync */
	bool wanted;	    /* sync's mark */
	int bind_err;	    /* the failure last logged (0: none since the last success) */
};

struct agent_healthcheck {
	struct hc_port **ports; /* each allocated once: httpd holds the pointer */
	size_t n, cap;
	int retry_fd; /* timerfd, armed while a port is not bound */
	bool retry_armed;
	bool off_logged;
	int64_t last_ok_ms; /* the last successful reconcile (a sync) */
};

static void hc_request(void *arg, const struct httpd_request *req, struct httpd_conn *c)
{
	const struct hc_port *p = arg;
	const struct agent *a = p->a;
	char body[HEALTH_CHECK_BODY_MAX], headers[HEALTH_CHECK_HEADERS_MAX];
	bool healthy;
	size_t len;
	int status;

	(void)req; /* any path, as kube-proxy */
	/* the maps follow the store, or have failed to for less than HC_STALE_MS */
	healthy = !a->last_error[0] ||
		  agent_now_ms() - a->healthcheck->last_ok_ms < HC_STALE_MS;
	len = health_check_render(p->ns, p->name, p->local, healthy, &status, body, headers);
	httpd_respond(c, status, "application/json", headers, body, len);
}

/* Tries to listen on p's port; logs a failure once (until it changes or succeeds). */
static void hc_bind(struct agent *a, struct hc_port *p)
{
	struct diag d = {{0}};
	int fd;

	if (p->srv)
		return;
	fd = httpd_listen("", p->port, &d);
	if (fd >= 0)
		p->srv = httpd_new(a->epfd, fd, hc_request, p, &d);
	if (p->srv) {
		agent_log(a, "health-check NodePort %u of service %s/%s: listening (%u local "
			     "endpoint%s)", p->port, p->ns, p->name, p->local,
			  p->local == 1 ? "" : "s");
		p->bind_err = 0;
		return;
	}
	if (p->bind_err == (fd < 0 ? fd : -EIO))
		return;
	p->bind_err = fd < 0 ? fd : -EIO;
	agent_log(a, "warning: health-check NodePort %u of service %s/%s not served: %s%s; "
		     "retrying every %d s and on every reconcile", p->port, p->ns, p->name, d.msg,
		  fd == -EADDRINUSE ? " (is kube-proxy still running on this node?)" : "",
		  HC_RETRY_S);
}

static void hc_free_port(struct hc_port *p)
{
	httpd_free(p->srv);
	free(p);
}

static struct hc_port *hc_find(const struct agent_healthcheck *h, uint16_t port)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->ports[i]->port == port)
			return h->ports[i];
	return NULL;
}

/* Arms the retry timer while a port is not bound, disarms it otherwise. */
static void hc_retry_arm(struct agent_healthcheck *h)
{
	struct itimerspec its;
	bool want = false;

	for (size_t i = 0; i < h->n && !want; i++)
		want = !h->ports[i]->srv;
	if (want == h->retry_armed || h->retry_fd < 0)
		return;
	memset(&its, 0, sizeof(its));
	if (want) {
		its.it_value.tv_sec = HC_RETRY_S;
		its.it_interval.tv_sec = HC_RETRY_S;
	}
	if (timerfd_settime(h->retry_fd, 0, &its, NULL) == 0)
		h->retry_armed = want;
}

static struct agent_healthcheck *hc_get(struct agent *a)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct agent_healthcheck *h = a->healthcheck;

	if (h)
		return h;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ev.data.fd = h->retry_fd;
	if (h->retry_fd >= 0 && epoll_ctl(a->epfd, EPOLL_CTL_ADD, h->retry_fd, &ev) < 0) {
		close(h->retry_fd);
		h->retry_fd = -1; /* then only reconciles retry */
	}
	a->healthcheck = h;
	return h;
}

/* Adds (or finds) the port of svc and sets its service and count; false when out of
 * memory. */
static bool hc_want(struct agent *a, struct agent_healthcheck *h, const struct m_service *svc,
		    unsigned int local)
{
	struct hc_port *p = hc_find(h, svc->health_check_node_port), **grown;

	if (p && p->wanted)
		return true; /* two services on one port: the model refuses that; first wins */
	if (!p) {
		if (h->n == h->cap) {
			size_t cap = h->cap ? h->cap * 2 : 8;

			grown = realloc(h->ports, cap * sizeof(*grown));
			if (!grown)
				return false;
			h->ports = grown;
			h->cap = cap;
		}
		p = calloc(1, sizeof(*p));
		if (!p)
			return false;
		p->a = a;
		p->port = svc->health_check_node_port;
		h->ports[h->n++] = p;
	} else if (strcmp(p->ns, svc->ns) || strcmp(p->name, svc->name)) {
		agent_log(a, "health-check NodePort %u: now service %s/%s (was %s/%s)", p->port,
			  svc->ns, svc->name, p->ns, p->name);
	} else if (p->local != local && p->srv) {
		agent_log(a, "health-check NodePort %u of service %s/%s: %u local endpoint%s (%d)",
			  p->port, p->ns, p->name, local, local == 1 ? "" : "s",
			  local ? 200 : 503);
	}
	snprintf(p->ns, sizeof(p->ns), "%s", svc->ns);
	snprintf(p->name, sizeof(p->name), "%s", svc->name);
	p->local = local;
	p->wanted = true;
	return true;
}

void agent_healthcheck_sync(struct agent *a)
{
	const struct cluster_model *m = a->model;
	struct agent_healthcheck *h = hc_get(a);
	bool on = health_check_enabled(m);
	size_t i, n;

	if (!h) {
		agent_log(a, "health-check NodePorts: out of memory");
		return;
	}
	h->last_ok_ms = agent_now_ms();
	for (i = 0; i < h->n; i++)
		h->ports[i]->wanted = false;
	for (i = 0; on && i < m->nservices; i++) {
		const struct m_service *svc = &m->services[i];

		if (health_check_wanted(svc) &&
		    !hc_want(a, h, svc, health_check_local_endpoints(m, svc, a->o.node)))
			agent_log(a, "health-check NodePort %u of service %s/%s: out of memory",
				  svc->health_check_node_port, svc->ns, svc->name);
	}
	if (!on && m && !h->off_logged)
		agent_log(a, "health-check NodePorts: disabled (%s)",
			  m->cluster.lb.kube_proxy_replacement
				  ? "enable-health-check-nodeport: false"
				  : "kube-proxy-replacement: false");
	h->off_logged = !on;
	for (i = n = 0; i < h->n; i++) {
		struct hc_port *p = h->ports[i];

		if (p->wanted) {
			h->ports[n++] = p;
			continue;
		}
		if (p->srv)
			agent_log(a, "health-check NodePort %u of service %s/%s: closed", p->port,
				  p->ns, p->name);
		hc_free_port(p);
	}
	h->n = n;
	for (i = 0; i < h->n; i++)
		hc_bind(a, h->ports[i]);
	hc_retry_arm(h);
}

bool agent_healthcheck_handle(struct agent *a, int fd)
{
	struct agent_healthcheck *h = a->healthcheck;
	uint64_t ticks;

	if (!h)
		return false;
	if (fd == h->retry_fd) {
		while (read(h->retry_fd, &ticks, sizeof(ticks)) > 0)
			;
		for (size_t i = 0; i < h->n; i++)
			hc_bind(a, h->ports[i]);
		hc_retry_arm(h);
		return true;
	}
	for (size_t i = 0; i < h->n; i++)
		if (httpd_handle(h->ports[i]->srv, fd))
			return true;
	return false;
}

void agent_healthcheck_close(struct agent *a)
{
	struct agent_healthcheck *h = a->healthcheck;

	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		hc_free_port(h->ports[i]);
	free(h->ports);
	if (h->retry_fd >= 0)
		close(h->retry_fd);
	free(h);
	a->healthcheck = NULL;
}
