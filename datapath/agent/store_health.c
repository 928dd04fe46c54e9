/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's side of the store as a dependency that fails (docs/STORE.md, "Store faults"):
 * one thread with its own store handle, so that nothing here ever blocks the event loop,
 * which keeps forwarding with the maps in force while the store is gone:
 *
 * - reachability: it reads the store revision every STORE_PROBE_MS; `status` shows whether
 *   the store answers and since when it does not. When the store answers again after it did
 *   not, the loop is told (the eventfd) and lists everything again with a fresh watch: a
 *   watch stream cut by a partition may stay silent long after the store is back, and what
 *   changed meanwhile must reach the datapath within the probe interval.
 * - heartbeat: /ciliate/health/agents/<node> under a lease (HEARTBEAT_TTL_S) kept alive
 *   here; the operator treats a node without one for long as gone (docs/OPERATOR.md).
 * - enforcement status: /ciliate/status/nodes/<node>, what the datapath enforces (the
 *   identities its model uses, the revision of each policy, the store revision the maps
 *   reflect), written when it changes; the operator's identity GC and per-policy status
 *   read it. The loop hands the text over; this thread writes it.
 */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "identity_alloc.h"

#define STORE_PROBE_MS	   1000
#define STORE_REPROBE_MS   250 /* while it does not answer: notice its return at once */
#define STORE_PROBE_TIMEOUT "1" /* seconds per call of this thread (etcd's timeout=) */
#define HEARTBEAT_TTL_S	   10
#define HEARTBEAT_KEEP_MS  2000

struct agent_store_health {
	struct store *st; /* the thread's own handle */
	char hb_key[STORE_KEY_MAX + 1];
	char status_key[STORE_KEY_MAX + 1];
	char node[256];
	int64_t started_unix;
	int efd; /* readable: the store answers again after it did not */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	bool stop;
	bool reachable;
	int64_t unreachable_since; /* unix ms of the first failure in a row (0: reachable) */
	int64_t last_ok_unix_ms;
	uint64_t probes, failures, recoveries;
	char last_error[1100];
	char *status_text; /* to write (NULL: nothing new) */
	bool status_new;   /* handed over since the thread last looked: write without waiting */
	/* the loop's side (main thread only) */
	char *published; /* the last text handed over, to hand over only changes */
	int64_t published_ids_rev; /* highest identity record mod_rev it covered */
};

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(struct agent_store_health *h, int wait_ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&h->mu);
	if (!h->stop && wait_ms > 0 && !h->status_new) /* a new status to write wakes it */
		pthread_cond_timedwait(&h->cv, &h->mu, &ts);
	stop = h->stop;
	pthread_mutex_unlock(&h->mu);
	return stop;
}

static void note_result(struct agent_store_health *h, int err, const struct diag *d)
{
	uint64_t one = 1;
	bool recovered = false;

	pthread_mutex_lock(&h->mu);
	h->probes++;
	if (!err) {
		recovered = !h->reachable;
		h->reachable = true;
		h->unreachable_since = 0;
		h->last_ok_unix_ms = unix_ms();
		if (recovered)
			h->recoveries++;
	} else {
		h->failures++;
		if (h->reachable || !h->unreachable_since)
			h->unreachable_since = unix_ms();
		h->reachable = false;
		snprintf(h->last_error, sizeof(h->last_error), "%s", d->msg);
	}
	pthread_mutex_unlock(&h->mu);
	if (recovered && write(h->efd, &one, sizeof(one)) < 0) {
		/* the counter saturates at worst: still readable */
	}
}

/* Grants a lease and puts the heartbeat under it; *lease 0 on failure. */
static int heartbeat_start(struct agent_store_health *h, int64_t *lease, struct diag *d)
{
	char v[512];
	int err;

	*lease = 0;
	err = store_lease_grant(h->st, HEARTBEAT_TTL_S, lease, d);
	if (err)
		return err;
	snprintf(v, sizeof(v), "{\"node\":\"%s\",\"started\":%" PRId64 "}", h->node, h->started_unix);
	err = store_put(h->st, h->hb_key, v, strlen(v), *lease, STORE_ANY_REV, NULL, d);
	if (err) {
		struct diag dd = { { 0 } };

		store_lease_revoke(h->st, *lease, &dd);
		*lease = 0;
	}
	return err;
}

static void *health_thread(void *arg)
{
	struct agent_store_health *h = arg;
	int64_t lease = 0, last_keep = 0, now;
	struct diag d;
	char *text;
	int err;

	while (!stopping(h, 0)) {
		memset(&d, 0, sizeof(d));
		/* reachability is the ping alone: writes below need etcd's leader, which a
		 * member's death makes wait for an election, and that is latency, not an outage */
		err = store_ping(h->st, &d);
		now = agent_now_ms();
		if (!err && (!lease || now - last_keep >= HEARTBEAT_KEEP_MS)) {
			struct diag hd = { { 0 } };
			int herr = lease ? store_lease_keepalive(h->st, lease, &hd) : -ENOENT;

			if (herr == -ENOENT) /* expired while we were cut off (or the first): again */
				herr = heartbeat_start(h, &lease, &hd);
			if (!herr)
				last_keep = now; /* else retried on the next round */
		}
		if (!err) {
			pthread_mutex_lock(&h->mu);
			text = h->status_text;
			h->status_text = NULL;
			h->status_new = false;
			pthread_mutex_unlock(&h->mu);
			if (text) {
				struct diag sd = { { 0 } };
				int serr = store_put(h->st, h->status_key, text, strlen(text), 0,
						     STORE_ANY_REV, NULL, &sd);

				pthread_mutex_lock(&h->mu);
				if (serr && !h->status_text) /* retried on the next round */
					h->status_text = text;
				else
					free(text);
				pthread_mutex_unlock(&h->mu);
			}
		}
		note_result(h, err, &d);
		if (err) { /* the pending status waits for the store: no busy loop meanwhile */
			pthread_mutex_lock(&h->mu);
			h->status_new = false;
			pthread_mutex_unlock(&h->mu);
		}
		if (stopping(h, err ? STORE_REPROBE_MS : STORE_PROBE_MS))
			break;
	}
	return NULL;
}

int agent_store_health_start(struct agent *a, struct diag *d)
{
	struct agent_store_health *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->efd = -1;
	h->reachable = true; /* the agent listed the store just before */
	h->last_ok_unix_ms = unix_ms();
	h->started_unix = unix_ms() / 1000;
	snprintf(h->node, sizeof(h->node), "%s", a->o.node);
	snprintf(h->hb_key, sizeof(h->hb_key), "%s%s", AGENT_HEARTBEAT_PREFIX, a->o.node);
	snprintf(h->status_key, sizeof(h->status_key), "%s%s", AGENT_NODE_STATUS_PREFIX, a->o.node);
	a->store_health = h;
	h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->efd < 0)
		return diag_fail_errno(d, -errno, "eventfd: %s", strerror(errno));
	/* a short bound per call: a partition that drops packets must not hide the return */
	if (store_uri_is_etcd(a->o.store_uri)) {
		char *uri;

		if (asprintf(&uri, "%s%stimeout=" STORE_PROBE_TIMEOUT, a->o.store_uri,
			     strchr(a->o.store_uri, '?') ? "&" : "?") < 0)
			return diag_fail_errno(d, -ENOMEM, "out of memory");
		err = store_open(uri, &h->st, d);
		free(uri);
	} else {
		err = store_open(a->o.store_uri, &h->st, d);
	}
	if (err)
		return err;
	err = pthread_create(&h->thread, NULL, health_thread, h);
	if (err)
		return diag_fail_errno(d, -err, "store health thread: %s", strerror(err));
	h->started = true;
	return 0;
}

int agent_store_health_fd(const struct agent *a)
{
	return a->store_health ? a->store_health->efd : -1;
}

void agent_store_health_stop(struct agent *a)
{
	struct agent_store_health *h = a->store_health;

	if (!h)
		return;
	if (h->started) {
		pthread_mutex_lock(&h->mu);
		h->stop = true;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->thread, NULL);
	}
	/* the heartbeat's lease is left to expire: the pinned datapath keeps forwarding, and
	 * the next agent on this node puts its own */
	store_close(h->st);
	if (h->efd >= 0)
		close(h->efd);
	free(h->status_text);
	free(h->published);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
	a->store_health = NULL;
}

bool agent_store_health_recovered(struct agent *a)
{
	uint64_t n = 0;

	if (!a->store_health || read(a->store_health->efd, &n, sizeof(n)) != sizeof(n))
		return false;
	return n > 0;
}

json_t *agent_store_health_json(const struct agent *a)
{
	struct agent_store_health *h = a->store_health;
	json_t *j;

	if (!h)
		return json_null();
	pthread_mutex_lock(&h->mu);
	j = json_pack("{s:s, s:s, s:b, s:o, s:I, s:I, s:I, s:I, s:s}", "uri", a->o.store_uri,
		      "backend", store_uri_is_etcd(a->o.store_uri) ? "etcd" : "file",
		      "reachable", h->reachable, "unreachableSince",
		      h->unreachable_since ? json_integer(h->unreachable_since / 1000) : json_null(),
		      "lastOk", (json_int_t)(h->last_ok_unix_ms / 1000), "probes",
		      (json_int_t)h->probes, "failures", (json_int_t)h->failures, "recoveries",
		      (json_int_t)h->recoveries, "lastError", h->reachable ? "" : h->last_error);
	pthread_mutex_unlock(&h->mu);
	return j;
}

static bool is_policy_key(const char *suffix)
{
	static const char *const kinds[] = { "NetworkPolicy/", "CiliumNetworkPolicy/",
					     "CiliumClusterwideNetworkPolicy/" };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strncmp(suffix, kinds[i], strlen(kinds[i])))
			return true;
	return false;
}

/* The enforcement status text (without "updated": its content alone decides a rewrite). */
static char *status_text(const struct agent *a, int64_t *ids_rev)
{
	size_t plen = strlen(AGENT_OBJ_PREFIX), i;
	json_t *ids = json_array(), *pols = json_object(), *j;
	char *text;

	*ids_rev = 0;
	for (i = 0; a->model && i < a->model->nidentities; i++)
		json_array_append_new(ids, json_integer(a->model->identities[i].id));
	for (i = 0; i < a->nobjs; i++) {
		const struct agent_obj *o = a->objs[i];

		if (identity_key_is_record(o->key) && o->mod_rev > *ids_rev)
			*ids_rev = o->mod_rev;
		if (!strncmp(o->key, AGENT_OBJ_PREFIX, plen) && is_policy_key(o->key + plen) && o->good)
			json_object_set_new(pols, o->key + plen, json_integer(o->good_rev));
	}
	j = json_pack("{s:s, s:I, s:o, s:o}", "node", a->o.node, "revision", (json_int_t)a->model_rev,
		      "identities", ids, "policies", pols);
	text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	return text;
}

/*
 * After a reconcile: hands the status over when what it says changed, or when identity
 * records newer than the last one written exist (the operator collects an identity only once
 * every node's status revision covers its record, so that revision must move past them; it
 * does not move for other writes, lest every agent's status write wake every agent).
 */
void agent_store_status_publish(struct agent *a)
{
	struct agent_store_health *h = a->store_health;
	int64_t ids_rev;
	char *text, *full;

	if (!h || !a->model_rev)
		return;
	text = status_text(a, &ids_rev);
	if (!text)
		return;
	if (h->published && !strcmp(h->published, text) && ids_rev <= h->published_ids_rev) {
		free(text);
		return;
	}
	/* the same text with the time it was written */
	if (asprintf(&full, "%.*s,\"updated\":%" PRId64 "}", (int)strlen(text) - 1, text,
		     unix_ms() / 1000) < 0) {
		free(text);
		return;
	}
	free(h->published);
	h->published = text;
	h->published_ids_rev = ids_rev > a->model_rev ? a->model_rev : ids_rev;
	pthread_mutex_lock(&h->mu);
	free(h->status_text);
	h->status_text = full;
	h->status_new = true;
	pthread_cond_broadcast(&h->cv); /* written now, not at the next probe */
	pthread_mutex_unlock(&h->mu);
}
