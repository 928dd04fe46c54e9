/* SPDX-License-Identifier: Apache-2.0 */
/* The local API (agent/api.h): a unix socket, one JSON request per line, one JSON response
 * per line, served from the agent's event loop. */
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/api.h"
#include "agent/health.h"
#include "flow/filter.h"
#include "model/ipaddr.h"

#define CLIENTS_MAX 256

static json_t *fail_resp(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static json_t *fail_resp(const char *code, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "code", code);
}

static const char *errno_code(int err)
{
	switch (err) {
	case -EINVAL:
	case -ERANGE:
		return AGENT_E_INVALID;
	case -ENOENT:
	case -ENODEV:
		return AGENT_E_NOT_FOUND;
	case -EBUSY:
	case -EEXIST:
		return AGENT_E_CONFLICT;
	case -ENOSPC:
		return AGENT_E_EXHAUSTED;
	case -EAGAIN:
		return AGENT_E_NOT_READY;
	default:
		return AGENT_E_INTERNAL;
	}
}

/* Checks "ns/name" (both parts non-empty, no further '/'). */
static bool pod_ok(const char *pod)
{
	const char *slash = pod ? strchr(pod, '/') : NULL;

	return slash && slash != pod && slash[1] && !strchr(slash + 1, '/') &&
	       strlen(pod) < IPAM_POD_MAX;
}

static const char *str_arg(json_t *req, const char *key)
{
	const char *v = json_string_value(json_object_get(req, key));

	return v ? v : "";
}

/* Brings the cache up to date with the store (our own writes included) and reconciles. */
static int catch_up(struct agent *a, struct diag *d)
{
	bool changed;
	int err = agent_objects_poll(a, 0, &changed, d);

	if (err)
		return err;
	return agent_reconcile(a, d);
}

/* Answers about the model (endpoints, identities) reflect every store change seen so far:
 * a reconcile the coalescing timer still holds back runs now. */
static void freshen(struct agent *a)
{
	struct diag d = {{0}};
	bool changed = false;

	if (agent_objects_poll(a, 0, &changed, &d) == 0 && changed)
		a->dirty = true;
	if (a->dirty)
		agent_reconcile(a, &d);
}

/* The event pipeline: events decoded, lost (never hidden), the flow buffer. */
static json_t *events_json(struct agent *a)
{
	struct agent_monitor_counts c;

	agent_monitor_counts(a, &c);
	return json_pack("{s:b,s:I,s:I,s:I,s:I,s:I}", "running", a->monitor != NULL, "seen",
			 (json_int_t)c.seen, "lost", (json_int_t)c.lost, "lostSinceMapsCreated",
			 (json_int_t)c.lost_total, "bufferCapacity", (json_int_t)c.capacity,
			 "bufferSize", (json_int_t)c.size);
}

static json_t *op_status(struct agent *a)
{
	char cidr[CIDR4_STR_MAX];
	json_t *bad = json_array(), *r;
	size_t i, ready = 0;

	for (i = 0; i < a->nobjs; i++)
		if (a->objs[i]->bad_rev && a->objs[i]->bad_rev == a->objs[i]->mod_rev)
			json_array_append_new(
				bad, json_pack("{s:s, s:I, s:s, s:b}", "key", a->objs[i]->key,
					       "revision", (json_int_t)a->objs[i]->mod_rev, "error",
					       a->objs[i]->error ? a->objs[i]->error : "",
					       "previousVersionInForce", a->objs[i]->good != NULL));
	for (i = 0; i < a->neps; i++)
		if (a->eps[i].info.ep_id && a->eps[i].ifindex &&
		    a->eps[i].attached_ifindex == a->eps[i].ifindex)
			ready++;
	r = json_pack("{s:b, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:{s:I, s:I}, "
		      "s:{s:I, s:I, s:f, s:I, s:I, s:s, s:I, s:I}, s:{s:I, s:I}, s:o, s:I}",
		      "ok", 1, "node", a->o.node, "store", a->o.store_uri, "pinDir",
		      datapath_pin_dir(a->dp), "socket", a->sock_path, "storeRevision",
		      (json_int_t)a->rev, "modelRevision", (json_int_t)a->model_rev, "podCIDR",
		      cidr4_format(a->pod_cidr, a->pod_cidr_len, cidr), "endpoints", "total",
		      (json_int_t)a->neps, "ready", (json_int_t)ready, "reconcile", "runs",
		      (json_int_t)a->reconciles, "errors", (json_int_t)a->reconcile_errors,
		      "lastMs", a->last_reconcile_ms, "lastUpserts", (json_int_t)a->last_upserts,
		      "lastDeletes", (json_int_t)a->last_deletes, "lastError", a->last_error,
		      "objectsParsed", (json_int_t)a->objects_parsed, "fullBuilds",
		      (json_int_t)a->full_builds,
		      "conntrackGC", "runs", (json_int_t)a->ct_gc_runs, "deleted",
		      (json_int_t)a->ct_gc_deleted, "badObjects", bad, "uptimeSeconds",
		      (json_int_t)((agent_now_ms() - a->started_ms) / 1000));
	agent_reconcile_status(a, json_object_get(r, "reconcile")); /* failures, for waiters */
	/* endpoint-adds answered, and the reconciles that answered them (batched per round) */
	json_object_set_new(json_object_get(r, "endpoints"), "adds",
			    json_pack("{s:I, s:I}", "answered", (json_int_t)a->batched_adds,
				      "rounds", (json_int_t)a->batches));
	json_object_set_new(r, "overlay",
			    a->overlay_ifindex
				    ? json_pack("{s:s, s:I}", "device", CILIATE_OVERLAY_DEV,
						"ifindex", (json_int_t)a->overlay_ifindex)
				    : json_null());
	json_object_set_new(r, "events", events_json(a));
	json_object_set_new(r, "egressGateway", agent_egress_status(a));
	json_object_set_new(r, "storeHealth", agent_store_health_json(a));
	json_object_set_new(r, "clusterHealth", agent_health_summary_json(a)); /* health.c */
	return r;
}

/* Batching of endpoint-adds (op_endpoint_add below). */
#define EXPECT_MS	  2000 /* an address given longer ago no longer holds a round back */
#define BATCH_WAIT_MIN_MS 5
#define BATCH_WAIT_MAX_MS 50

static void expect_remove(struct agent *a, const char *pod)
{
	size_t i;

	for (i = 0; i < a->nexpect; i++)
		if (!strcmp(a->expect[i].pod, pod)) {
			a->expect[i] = a->expect[--a->nexpect];
			return;
		}
}

static void expect_add(struct agent *a, const char *pod)
{
	struct agent_expect *v;

	expect_remove(a, pod);
	if (a->nexpect == a->expect_cap) {
		size_t cap = a->expect_cap ? 2 * a->expect_cap : 16;

		v = realloc(a->expect, cap * sizeof(*v));
		if (!v)
			return; /* only batching is lost */
		a->expect = v;
		a->expect_cap = cap;
	}
	snprintf(a->expect[a->nexpect].pod, sizeof(a->expect->pod), "%s", pod);
	a->expect[a->nexpect++].at_ms = agent_now_ms();
}

/* Endpoint-adds still expected (stale expectations dropped). */
static size_t expect_count(struct agent *a, int64_t now)
{
	size_t i;

	for (i = 0; i < a->nexpect;) {
		if (now - a->expect[i].at_ms > EXPECT_MS)
			a->expect[i] = a->expect[--a->nexpect];
		else
			i++;
	}
	return a->nexpect;
}

/* How long waiting endpoint-adds may wait for expected ones: about two reconciles. */
static int64_t batch_wait_ms(const struct agent *a)
{
	double ms = 2 * a->last_reconcile_ms;

	return ms < BATCH_WAIT_MIN_MS ? BATCH_WAIT_MIN_MS
	       : ms > BATCH_WAIT_MAX_MS ? BATCH_WAIT_MAX_MS : (int64_t)ms;
}
static json_t *op_ipam_allocate(struct agent *a, json_t *req)
{
	const char *pod = str_arg(req, "pod"), *ips = str_arg(req, "ip");
	char ip[IP4_STR_MAX], cidr[CIDR4_STR_MAX];
	uint32_t want = 0, got;
	struct diag d = {{0}};
	bool changed;
	int err;

	if (!pod_ok(pod))
		return fail_resp(AGENT_E_INVALID, "pod: want \"namespace/name\", got \"%s\"", pod);
	if (*ips && ip4_parse(ips, &want))
		return fail_resp(AGENT_E_INVALID, "ip: \"%s\" is not an IPv4 address", ips);
	/* see pods pinned by the latest objects */
	err = agent_objects_poll(a, 0, &changed, &d);
	if (changed)
		a->dirty = true; /* reconciled by the loop after this request */
	if (!err)
		err = agent_ipam_allocate(a, pod, str_arg(req, "container_id"), want, &got, &d);
	if (err)
		return fail_resp(errno_code(err), "%s", d.msg);
	expect_add(a, pod);
	return json_pack("{s:b, s:s, s:s, s:i, s:s, s:s}", "ok", 1, "pod", pod, "ip",
			 ip4_format(got, ip), "prefixLength", 32, "gateway", AGENT_GATEWAY,
			 "podCIDR", cidr4_format(a->pod_cidr, a->pod_cidr_len, cidr));
}

static json_t *op_ipam_release(struct agent *a, json_t *req)
{
	const char *pod = str_arg(req, "pod"), *cid = str_arg(req, "container_id");
	struct diag d = {{0}};
	char ip[IP4_STR_MAX];
	uint32_t got;
	int err;

	if (*pod && !pod_ok(pod))
		return fail_resp(AGENT_E_INVALID, "pod: want \"namespace/name\", got \"%s\"", pod);
	if (!*pod && !*cid)
		return fail_resp(AGENT_E_INVALID, "give pod or container_id");
	err = agent_ipam_release(a, pod, cid, &got, &d);
	if (*pod)
		expect_remove(a, pod);
	if (err)
		return fail_resp(errno_code(err), "%s", d.msg);
	return json_pack("{s:b, s:s?}", "ok", 1, "released", got ? ip4_format(got, ip) : NULL);
}

/*
 * endpoint-add records the endpoint, then waits: the endpoint-adds waiting together are
 * answered after ONE save and reconcile (agent_server_finish). A node's pods come up in
 * parallel (a kubelet runs several CNI ADDs at once), and the reconcile grows with the
 * cluster: at 10,000 pods one per pod was most of a bring-up. When pods that were just
 * given an address have not sent their endpoint-add yet, the waiting ones wait a little
 * for them (BATCH_WAIT_*), never when none is expected.
 */
static json_t *op_endpoint_add(struct agent *a, struct agent_client *c, json_t *req)
{
	const char *pod = str_arg(req, "pod"), *ifname = str_arg(req, "ifname");
	const char *cid = str_arg(req, "container_id"), *netns = str_arg(req, "netns");
	struct agent_ep *ep;

	if (!pod_ok(pod))
		return fail_resp(AGENT_E_INVALID, "pod: want \"namespace/name\", got \"%s\"", pod);
	if (!*ifname || strlen(ifname) >= IF_NAMESIZE)
		return fail_resp(AGENT_E_INVALID, "ifname: missing or longer than %d",
				 IF_NAMESIZE - 1);
	if (strlen(cid) >= IPAM_CID_MAX || strlen(netns) >= sizeof(ep->netns))
		return fail_resp(AGENT_E_INVALID, "container_id or netns too long");
	if (!agent_ifindex(a, ifname))
		return fail_resp(AGENT_E_NOT_FOUND, "no interface %s in the node", ifname);
	ep = agent_ep_get(a, pod);
	if (!ep)
		return fail_resp(AGENT_E_INTERNAL, "out of memory");
	if (strcmp(ep->ifname, ifname))
		ep->attached_ifindex = 0;
	snprintf(ep->ifname, sizeof(ep->ifname), "%s", ifname);
	snprintf(ep->container_id, sizeof(ep->container_id), "%s", cid);
	snprintf(ep->netns, sizeof(ep->netns), "%s", netns);
	ep->recorded = true;
	snprintf(c->pending, sizeof(c->pending), "%s", pod);
	expect_remove(a, pod);
	return NULL; /* answered by agent_server_finish */
}

/* The answer to an endpoint-add of pod once the reconcile (err: its failure) ran. */
static json_t *endpoint_add_answer(struct agent *a, const char *pod, int err, struct diag *d)
{
	struct agent_ep *ep;

	if (err)
		return fail_resp(errno_code(err), "%s", d->msg);
	ep = agent_ep_find(a, pod);
	if (!ep || !ep->info.ep_id)
		return fail_resp(
			AGENT_E_NOT_FOUND,
			"pod %s is not an endpoint of node %s (ipam-allocate it first)%s%s", pod,
			a->o.node, ep && *ep->error ? ": " : "", ep ? ep->error : "");
	if (*ep->error)
		return fail_resp(AGENT_E_INTERNAL, "endpoint %s: %s", pod, ep->error);
	return json_pack("{s:b, s:o}", "ok", 1, "endpoint", agent_ep_json(a, ep));
}

static json_t *op_endpoint_del(struct agent *a, json_t *req)
{
	const char *pod = str_arg(req, "pod"), *cid = str_arg(req, "container_id");
	struct diag d = {{0}};
	struct agent_ep *ep;
	json_t *was;
	int err;

	ep = *pod ? agent_ep_find(a, pod) : agent_ep_find_cid(a, cid);
	if (ep && *pod && *cid && *ep->container_id && strcmp(ep->container_id, cid))
		ep = NULL; /* a late DEL for an older sandbox of the pod */
	if (!ep || !ep->recorded)
		return json_pack("{s:b, s:n}", "ok", 1, "endpoint");
	was = agent_ep_json(a, ep);
	if (ep->attached_ifindex && agent_ifindex(a, ep->ifname) == ep->attached_ifindex)
		agent_tc_detach((int)ep->attached_ifindex, &d);
	agent_log(a, "endpoint %s removed (%s)", ep->pod, ep->ifname);
	agent_ep_remove(a, (size_t)(ep - a->eps));
	err = agent_eps_save(a, &d);
	if (!err)
		err = catch_up(a, &d);
	if (err) {
		json_decref(was);
		return fail_resp(errno_code(err), "%s", d.msg);
	}
	return json_pack("{s:b, s:o}", "ok", 1, "endpoint", was);
}

static json_t *op_endpoint_list(struct agent *a)
{
	json_t *arr = json_array();
	size_t i;

	freshen(a);
	for (i = 0; i < a->neps; i++)
		json_array_append_new(arr, agent_ep_json(a, &a->eps[i]));
	return json_pack("{s:b, s:s, s:o}", "ok", 1, "node", a->o.node, "endpoints", arr);
}

static json_t *op_identity_list(struct agent *a)
{
	freshen(a);
	return json_pack("{s:b, s:s, s:I, s:o}", "ok", 1, "node", a->o.node, "modelRevision",
			 (json_int_t)a->model_rev, "identities", agent_identities_json(a));
}

static json_t *op_service_list(struct agent *a)
{
	freshen(a);
	return json_pack("{s:b, s:s, s:I, s:o}", "ok", 1, "node", a->o.node, "modelRevision",
			 (json_int_t)a->model_rev, "services", agent_services_json(a));
}

static json_t *op_encrypt_status(struct agent *a)
{
	json_t *r = agent_ipsec_enabled(a) ? agent_ipsec_status(a) : agent_wireguard_status(a);

	json_object_set_new(r, "ok", json_true());
	json_object_set_new(r, "node", json_string(a->o.node));
	json_object_set_new(r, "modelRevision", json_integer((json_int_t)a->model_rev));
	return r;
}

static json_t *dispatch(struct agent *a, struct agent_client *c, const char *line, size_t len)
{
	json_error_t je;
	json_t *req = json_loadb(line, len, 0, &je), *resp;
	const char *op;

	if (!req || !json_is_object(req)) {
		json_decref(req);
		return fail_resp(AGENT_E_INVALID, "request is not a JSON object: %s", je.text);
	}
	op = str_arg(req, "op");
	if (!strcmp(op, AGENT_OP_STATUS))
		resp = op_status(a);
	else if (!strcmp(op, AGENT_OP_IPAM_ALLOCATE))
		resp = op_ipam_allocate(a, req);
	else if (!strcmp(op, AGENT_OP_IPAM_RELEASE))
		resp = op_ipam_release(a, req);
	else if (!strcmp(op, AGENT_OP_ENDPOINT_ADD))
		resp = op_endpoint_add(a, c, req);
	else if (!strcmp(op, AGENT_OP_ENDPOINT_DEL))
		resp = op_endpoint_del(a, req);
	else if (!strcmp(op, AGENT_OP_ENDPOINT_LIST))
		resp = op_endpoint_list(a);
	else if (!strcmp(op, AGENT_OP_IDENTITY_LIST))
		resp = op_identity_list(a);
	else if (!strcmp(op, AGENT_OP_SERVICE_LIST))
		resp = op_service_list(a);
	else if (!strcmp(op, AGENT_OP_OBSERVE))
		resp = agent_op_observe(a, c, req);
	else if (!strcmp(op, AGENT_OP_ENCRYPT_STATUS))
		resp = op_encrypt_status(a);
	else if (!strcmp(op, AGENT_OP_HEALTH_STATUS))
		resp = agent_op_health_status(a, c, req);
	else
		resp = fail_resp(AGENT_E_INVALID,
				 "unknown op \"%s\" (status, ipam-allocate, ipam-release, "
				 "endpoint-add, endpoint-del, endpoint-list, identity-list, service-list, "
				 "observe, encrypt-status, health-status)",
				 op);
	json_decref(req);
	return resp;
}

int agent_server_open(struct agent *a, struct diag *d)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct epoll_event ev = {.events = EPOLLIN};
	int fd;

	if (strlen(a->sock_path) >= sizeof(sa.sun_path))
		return diag_fail(d, "socket path %s is too long", a->sock_path);
	strcpy(sa.sun_path, a->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return diag_fail_errno(d, -errno, "socket: %s", strerror(errno));
	unlink(a->sock_path); /* stale from a killed agent (we hold the state dir's lock) */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(a->sock_path, 0600) < 0 ||
	    listen(fd, 64) < 0) {
		int err = -errno;

		close(fd);
		return diag_fail_errno(d, err, "listening on %s: %s", a->sock_path, strerror(-err));
	}
	a->listen_fd = fd;
	ev.data.fd = fd;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return diag_fail_errno(d, -errno, "epoll: %s", strerror(errno));
	return 0;
}

static struct agent_client *client_of(struct agent *a, int fd)
{
	size_t i;

	for (i = 0; i < a->nclients; i++)
		if (a->clients[i].fd == fd)
			return &a->clients[i];
	return NULL;
}

static void client_close(struct agent *a, struct agent_client *c)
{
	size_t i = (size_t)(c - a->clients);

	if (!c->eof)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->buf);
	flow_filter_free(c->filter);
	a->clients[i] = a->clients[a->nclients - 1];
	a->nclients--;
}

void agent_server_accept(struct agent *a)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct agent_client *v;
	int fd;

	for (int i = 0; i < 16; i++) {
		fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (a->nclients >= CLIENTS_MAX) {
			close(fd);
			continue;
		}
		v = realloc(a->clients, (a->nclients + 1) * sizeof(*v));
		if (!v) {
			close(fd);
			return;
		}
		a->clients = v;
		memset(&v[a->nclients], 0, sizeof(*v));
		v[a->nclients].fd = fd;
		ev.data.fd = fd;
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			continue;
		}
		a->nclients++;
	}
}

/* Writes all of buf (the client is local: wait at most 2 s for it to read). */
static int write_all(int fd, const char *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	size_t off = 0;
	ssize_t r;
	int waits = 0;

	while (off < len) {
		r = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (++waits > 20 || poll(&p, 1, 100) < 0)
			return -ETIMEDOUT;
	}
	return 0;
}

static void serve_lines(struct agent *a, struct agent_client *c);

void agent_server_client(struct agent *a, int fd)
{
	struct agent_client *c = client_of(a, fd);
	ssize_t r;

	if (!c)
		return;
	for (;;) {
		if (c->cap - c->len < 4096) {
			size_t cap = c->cap ? c->cap * 2 : 8192;
			char *b;

			if (cap > AGENT_LINE_MAX) {
				client_close(a, c);
				return;
			}
			b = realloc(c->buf, cap);
			if (!b) {
				client_close(a, c);
				return;
			}
			c->buf = b;
			c->cap = cap;
		}
		r = recv(fd, c->buf + c->len, c->cap - c->len, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (r == 0) { /* the client is done sending: answer what it sent, then close */
			c->eof = true;
			epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
			break;
		}
		if (r < 0) {
			client_close(a, c);
			return;
		}
		c->len += (size_t)r;
	}
	serve_lines(a, c);
}

/* Sends resp (consumed) as one line; false when the client was closed. */
static bool answer(struct agent *a, struct agent_client *c, json_t *resp)
{
	return agent_client_send(a, c, resp);
}

bool agent_client_send(struct agent *a, struct agent_client *c, json_t *resp)
{
	char *out = resp ? json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	bool ok = out && !write_all(c->fd, out, strlen(out)) && !write_all(c->fd, "\n", 1);

	json_decref(resp);
	free(out);
	if (!ok)
		client_close(a, c);
	return ok;
}

/* Answers the client's complete request lines in order, until one waits (endpoint-add). */
static void serve_lines(struct agent *a, struct agent_client *c)
{
	json_t *resp;
	char *nl;

	while (!c->pending[0] && !c->health_wait && (nl = memchr(c->buf, '\n', c->len))) {
		size_t llen = (size_t)(nl - c->buf);

		resp = dispatch(a, c, c->buf, llen);
		memmove(c->buf, nl + 1, c->len - llen - 1);
		c->len -= llen + 1;
		if (!resp && (c->pending[0] || c->health_wait))
			return;
		if (!answer(a, c, resp ? resp : fail_resp(AGENT_E_INTERNAL, "out of memory")))
			return;
	}
	if (c->eof && !c->pending[0] && !c->health_wait)
		client_close(a, c);
}

void agent_server_resume(struct agent *a, struct agent_client *c)
{
	serve_lines(a, c);
}

void agent_server_finish(struct agent *a)
{
	struct diag d = {{0}};
	int64_t now, left;
	size_t i, n = 0;
	int err;

again:
	for (i = 0, n = 0; i < a->nclients; i++)
		n += a->clients[i].pending[0] != '\0';
	if (!n) {
		a->pending_since_ms = 0;
		return;
	}
	now = agent_now_ms();
	if (!a->pending_since_ms)
		a->pending_since_ms = now;
	left = a->pending_since_ms + batch_wait_ms(a) - now;
	if (left > 0 && expect_count(a, now)) {
		struct itimerspec its = {.it_value = {.tv_sec = left / 1000,
						      .tv_nsec = (left % 1000) * 1000000}};

		if (timerfd_settime(a->batch_fd, 0, &its, NULL) == 0)
			return; /* more are on their way: this round waits for them */
	}
	a->pending_since_ms = 0;
	err = agent_eps_save(a, &d); /* every waiting endpoint-add recorded one */
	if (!err)
		err = catch_up(a, &d);
	a->batched_adds += n;
	a->batches++;
	/* answering may close a client (moving the last one into its slot): walk back */
	for (i = a->nclients; i-- > 0;) {
		struct agent_client *c = &a->clients[i];
		char pod[IPAM_POD_MAX];

		if (!c->pending[0])
			continue;
		snprintf(pod, sizeof(pod), "%s", c->pending);
		c->pending[0] = '\0';
		if (answer(a, c, endpoint_add_answer(a, pod, err, &d)))
			serve_lines(a, c); /* requests it sent meanwhile */
	}
	goto again; /* an endpoint-add among those: each round consumes buffered lines */
}

void agent_server_close(struct agent *a)
{
	while (a->nclients)
		client_close(a, &a->clients[0]);
	free(a->clients);
	a->clients = NULL;
	if (a->listen_fd >= 0) {
		close(a->listen_fd);
		unlink(a->sock_path);
		a->listen_fd = -1;
	}
}
