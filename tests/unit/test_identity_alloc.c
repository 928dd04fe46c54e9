/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster identity allocation through the store (datapath/agent/identity_alloc.c and the
 * agent's use of it in identities.c), against real embedded stores in temporary
 * directories: two handles on one store stand for two agents. Covered: one number per
 * label set whoever asks first, also with two processes allocating at the same time;
 * different sets get different numbers; a fresh store fed the model's label sets in
 * manifest order gives the model's own numbers; a restart reuses the records without
 * writing; release (GC) by compare-and-swap; and through two agents: a relabelled pod
 * moves to a new identity on both, and the unused one is released after the grace period.
 * Run from the repository root (it reads a scenario).
 * With CILIATE_TEST_ETCD=HOST:PORT (a scratch etcd; tests/store-etcd/run-suite.sh starts one)
 * every case runs against etcd instead, every key under /ciliate/ deleted before each test.
 */
#include <errno.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "store_scratch.h"
#include "tmpdir.h"

#include "agent/agent.h"
#include "model/labels.h"

/* identities.c and objects.c log through the agent's logger (main.c is not linked here) */
void agent_log(const struct agent *a, const char *fmt, ...)
{
	(void)a;
	(void)fmt;
}

struct fixture {
	char dir[64];
	char uri[128];
	struct store *s1, *s2; /* two "agents" */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct diag d = {{0}};

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/ciliate-identity-test-XXXXXX");
	if (scratch_store_make(f->dir, f->uri, sizeof(f->uri), "fsync=0", "/ciliate/"))
		return -1;
	if (store_open(f->uri, &f->s1, &d) || store_open(f->uri, &f->s2, &d)) {
		fprintf(stderr, "store_open: %s\n", d.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->s1);
	store_close(f->s2);
	test_rm_dir(f->dir);
	free(f);
	return 0;
}

/* A label set from "k=v,k=v" (sorted). */
static struct labelset L(const char *spec)
{
	struct labelset ls = {0};
	char *copy = strdup(spec), *save = NULL, *tok, *eq;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		eq = strchr(tok, '=');
		assert_non_null(eq);
		*eq = '\0';
		assert_int_equal(labelset_set(&ls, tok, eq + 1), 0);
	}
	free(copy);
	labelset_sort(&ls);
	return ls;
}

static uint32_t alloc(struct store *st, const char *spec, bool *created)
{
	struct labelset ls = L(spec);
	struct diag d = {{0}};
	uint32_t id = 0;
	int err = identity_alloc(st, &ls, &id, created, &d);

	if (err)
		fail_msg("identity_alloc(%s): %s", spec, d.msg);
	labelset_free(&ls);
	return id;
}

static int64_t revision(struct store *st)
{
	struct diag d = {{0}};
	int64_t rev = 0;

	assert_int_equal(store_revision(st, &rev, &d), 0);
	return rev;
}

static size_t nrecords(struct store *st)
{
	struct identity_rec *v;
	struct diag d = {{0}};
	size_t n, bad;

	assert_int_equal(identity_recs_list(st, &v, &n, &bad, &d), 0);
	assert_int_equal(bad, 0);
	identity_recs_free(v, n);
	return n;
}

static void test_record_format_and_parse(void **state)
{
	struct labelset ls = L("k8s:io.kubernetes.pod.namespace=x,k8s:app=web");
	struct identity_rec r;
	char why[128], key[64];
	char *text = identity_rec_format(300, &ls);

	assert_string_equal(text, "{\"id\":300,\"labels\":{\"k8s:app\":\"web\","
				  "\"k8s:io.kubernetes.pod.namespace\":\"x\"}}");
	assert_int_equal(identity_rec_parse(text, strlen(text), &r, why, sizeof(why)), 0);
	assert_int_equal(r.id, 300);
	assert_true(labelset_equal(&r.labels, &ls));
	identity_rec_free(&r);
	free(text);
	text = "{\"id\":7,\"labels\":{}}";
	assert_int_equal(identity_rec_parse(text, strlen(text), &r, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "256..65535"));
	text = "{\"id\":256}";
	assert_int_equal(identity_rec_parse(text, strlen(text), &r, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "labels"));
	identity_key(256, key, sizeof(key));
	assert_string_equal(key, "/ciliate/identities/id/256");
	assert_true(identity_key_is_record(key));
	assert_false(identity_key_is_record(IDENTITY_VERSION_KEY));
	assert_false(identity_key_is_record("/ciliate/identities/id/"));
	labelset_free(&ls);
}

/* The same set through two handles: one number, written once. */
static void test_two_handles_share_numbers(void **state)
{
	struct fixture *f = *state;
	bool created;
	int64_t rev;

	assert_int_equal(alloc(f->s1, "k8s:app=a", &created), 256);
	assert_true(created);
	rev = revision(f->s1);
	assert_int_equal(alloc(f->s2, "k8s:app=a", &created), 256);
	assert_false(created);
	assert_int_equal(revision(f->s2), rev); /* reuse writes nothing */
	assert_int_equal(alloc(f->s2, "k8s:app=b", &created), 257);
	assert_true(created);
	assert_int_equal(alloc(f->s1, "k8s:app=b", &created), 257);
	assert_false(created);
	/* a superset is a different set */
	assert_int_equal(alloc(f->s1, "k8s:app=b,k8s:tier=web", &created), 258);
	assert_int_equal(nrecords(f->s1), 3);
}

#define NSETS 24

/* Two processes, each with its own handle, allocate the same NSETS sets at the same time
 * in opposite orders: every set ends up with one number, and distinct sets with distinct
 * numbers. */
static void test_concurrent_processes(void **state)
{
	struct fixture *f = *state;
	uint32_t got[2][NSETS];
	char spec[64];
	int fds[2][2], k, i, status;
	pid_t pid[2];

	for (k = 0; k < 2; k++) {
		assert_int_equal(pipe(fds[k]), 0);
		pid[k] = fork();
		assert_true(pid[k] >= 0);
		if (pid[k] == 0) {
			struct store *st;
			struct diag d = {{0}};
			uint32_t ids[NSETS];

			close(fds[k][0]);
			if (store_open(f->uri, &st, &d))
				_exit(2);
			for (i = 0; i < NSETS; i++) {
				int j = k ? NSETS - 1 - i : i;
				struct labelset ls = {0};

				snprintf(spec, sizeof(spec), "set-%02d", j);
				labelset_set(&ls, "k8s:app", spec);
				if (identity_alloc(st, &ls, &ids[j], NULL, &d)) {
					fprintf(stderr, "child %d: %s\n", k, d.msg);
					_exit(3);
				}
				labelset_free(&ls);
			}
			store_close(st);
			if (write(fds[k][1], ids, sizeof(ids)) != (ssize_t)sizeof(ids))
				_exit(4);
			_exit(0);
		}
		close(fds[k][1]);
	}
	for (k = 0; k < 2; k++) {
		assert_int_equal(read(fds[k][0], got[k], sizeof(got[k])), (ssize_t)sizeof(got[k]));
		close(fds[k][0]);
		assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (i = 0; i < NSETS; i++) {
		assert_int_equal(got[0][i], got[1][i]);
		assert_true(got[0][i] >= 256 && got[0][i] < 256 + NSETS);
		for (k = 0; k < i; k++)
			assert_int_not_equal(got[0][k], got[0][i]);
	}
	assert_int_equal(nrecords(f->s1), NSETS);
}

/* A fresh store fed the model's label sets in manifest order gives the model's numbers. */
static void test_fresh_store_agrees_with_model(void **state)
{
	struct fixture *f = *state;
	struct scenario *s = NULL;
	struct diag d = {{0}};
	uint32_t id;
	size_t i;

	if (scenario_load("scenarios/netpol/pod-or-namespace.yaml", &s, &d))
		fail_msg("%s", d.msg);
	assert_true(s->model.nidentities >= 9);
	for (i = 0; i < s->model.nidentities; i++) {
		assert_int_equal(identity_alloc(f->s1, &s->model.identities[i].labels, &id, NULL,
						&d),
				 0);
		assert_int_equal(id, s->model.identities[i].id);
	}
	scenario_free(s);
}

/* A restarted agent (a new handle) finds every record and writes nothing. */
static void test_restart_reuses(void **state)
{
	struct fixture *f = *state;
	struct diag d = {{0}};
	struct store *st;
	bool created;
	int64_t rev;

	assert_int_equal(alloc(f->s1, "k8s:app=a", NULL), 256);
	assert_int_equal(alloc(f->s1, "k8s:app=b", NULL), 257);
	rev = revision(f->s1);
	store_close(f->s1);
	f->s1 = NULL;
	assert_int_equal(store_open(f->uri, &st, &d), 0);
	assert_int_equal(alloc(st, "k8s:app=b", &created), 257);
	assert_false(created);
	assert_int_equal(alloc(st, "k8s:app=a", &created), 256);
	assert_false(created);
	assert_int_equal(revision(st), rev);
	f->s1 = st;
}

/* Release only with the record's current mod_revision; the number is then free again. */
static void test_release(void **state)
{
	struct fixture *f = *state;
	struct diag d = {{0}};
	struct store_kv kv;
	bool created;

	assert_int_equal(alloc(f->s1, "k8s:app=a", NULL), 256);
	assert_int_equal(alloc(f->s1, "k8s:app=b", NULL), 257);
	assert_int_equal(alloc(f->s1, "k8s:app=c", NULL), 258);
	assert_int_equal(store_get(f->s2, IDENTITY_KEY_PREFIX "257", &kv, &d), 0);
	assert_int_equal(identity_release(f->s2, 257, kv.mod_revision + 100, &d), -ECANCELED);
	assert_int_equal(identity_release(f->s2, 257, kv.mod_revision, &d), 0);
	store_kv_free(&kv);
	assert_int_equal(identity_release(f->s2, 257, 1, &d), -ENOENT);
	assert_int_equal(nrecords(f->s1), 2);
	/* the others keep their numbers; a new set takes the lowest free one */
	assert_int_equal(alloc(f->s1, "k8s:app=c", &created), 258);
	assert_false(created);
	assert_int_equal(alloc(f->s1, "k8s:app=d", &created), 257);
	assert_true(created);
}

/* ---- through the agent's model build ------------------------------------------------- */

#define CLUSTER                                                                               \
	"{\"apiVersion\":\"sim.ciliate.dev/v1\",\"kind\":\"Cluster\",\"metadata\":{\"name\":" \
	"\"t\"},\"spec\":{\"nodes\":[{\"name\":\"node-1\"},{\"name\":\"node-2\"}]}}"
#define IPAM1                                                                 \
	"{\"node\":\"node-1\",\"cidr\":\"10.244.0.0/24\",\"allocations\":["   \
	"{\"ip\":\"10.244.0.10\",\"pod\":\"shop/a\",\"containerID\":\"c1\"}]}"
#define IPAM2                                                                 \
	"{\"node\":\"node-2\",\"cidr\":\"10.244.1.0/24\",\"allocations\":["   \
	"{\"ip\":\"10.244.1.10\",\"pod\":\"shop/b\",\"containerID\":\"c2\"}]}"
#define POD(name, node, app)                                                                  \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\","        \
	"\"namespace\":\"shop\",\"labels\":{\"app\":\"" app "\"}},\"spec\":{\"nodeName\":\"" \
	node "\"}}"

static void put(struct store *st, const char *key, const char *value)
{
	struct diag d = {{0}};

	if (store_put(st, key, value, strlen(value), 0, STORE_ANY_REV, NULL, &d))
		fail_msg("put %s: %s", key, d.msg);
}

static struct agent *new_agent(struct store *st, const char *node)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct diag d = {{0}};

	a->o.node = node;
	a->o.identity_gc_grace_s = 5;
	a->st = st;
	a->cluster_text = strdup(CLUSTER);
	a->cluster_len = strlen(CLUSTER);
	strcpy(a->cluster_name, "cluster");
	if (agent_objects_sync(a, &d))
		fail_msg("sync: %s", d.msg);
	return a;
}

/* Catches up with the store (its cache reaches the store's revision: on etcd the watch
 * events arrive a moment after the write; at most 5 s) and builds the model. */
static void rebuild(struct agent *a)
{
	struct diag d = {{0}};
	bool changed;
	int64_t rev = revision(a->st);
	int i;

	for (i = 0; i < 50; i++) {
		if (agent_objects_poll(a, i ? 100 : 0, &changed, &d))
			fail_msg("%s: %s", a->o.node, d.msg);
		if (a->rev >= rev)
			break;
	}
	if (a->rev < rev)
		fail_msg("%s: the cache is at revision %lld, the store at %lld after 5 s", a->o.node,
			 (long long)a->rev, (long long)rev);
	if (agent_model_build(a, &d))
		fail_msg("%s: %s", a->o.node, d.msg);
}

static void free_agent(struct agent *a)
{
	store_watch_close(a->w);
	cluster_model_free(a->model);
	agent_objects_free(a);
	free(a->cluster_text);
	free(a);
}

static uint32_t pod_identity(const struct agent *a, const char *pod)
{
	const struct m_pod *p = cluster_find_pod(a->model, pod);

	assert_non_null(p);
	return p->identity;
}

static bool stored(struct store *st, uint32_t id)
{
	struct diag d = {{0}};
	struct store_kv kv;
	char key[64];

	identity_key(id, key, sizeof(key));
	if (store_get(st, key, &kv, &d))
		return false;
	store_kv_free(&kv);
	return true;
}

static void test_agents_relabel_and_gc(void **state)
{
	struct fixture *f = *state;
	struct agent *a1, *a2;

	/* a label set someone else allocated earlier: the agents must use 256 for it, not
	 * the model's manifest-order number */
	assert_int_equal(alloc(f->s1, "k8s:app=other", NULL), 256);
	put(f->s1, "/ciliate/ipam/node-1", IPAM1);
	put(f->s1, "/ciliate/ipam/node-2", IPAM2);
	put(f->s1, "/ciliate/objects/Pod/shop/a", POD("a", "node-1", "web"));
	put(f->s1, "/ciliate/objects/Pod/shop/b", POD("b", "node-2", "db"));
	a1 = new_agent(f->s1, "node-1");
	a2 = new_agent(f->s2, "node-2");
	rebuild(a1);
	rebuild(a2);
	assert_int_equal(pod_identity(a1, "shop/a"), 257);
	assert_int_equal(pod_identity(a1, "shop/b"), 258);
	assert_int_equal(pod_identity(a2, "shop/a"), 257);
	assert_int_equal(pod_identity(a2, "shop/b"), 258);

	/* relabel a (re-applied Pod): a new identity on both agents */
	put(f->s2, "/ciliate/objects/Pod/shop/a", POD("a", "node-1", "web-v2"));
	rebuild(a2);
	rebuild(a1);
	assert_int_equal(pod_identity(a2, "shop/a"), 259);
	assert_int_equal(pod_identity(a1, "shop/a"), 259);
	assert_int_equal(pod_identity(a1, "shop/b"), 258); /* the others keep theirs */
	assert_true(stored(f->s1, 257));

	/* relabel b to a's new labels: it joins 259 */
	put(f->s1, "/ciliate/objects/Pod/shop/b", POD("b", "node-2", "web-v2"));
	rebuild(a1);
	rebuild(a2);
	assert_int_equal(pod_identity(a1, "shop/b"), 259);
	assert_int_equal(pod_identity(a2, "shop/b"), 259);

	/* GC: 256, 257 and 258 are unused; released once the grace period (5 s) has passed
	 * since a1 first saw them unused (clock values passed in, nothing waits) */
	agent_identities_gc(a1, 100000);
	assert_true(stored(f->s1, 257));
	agent_identities_gc(a1, 104000);
	assert_true(stored(f->s1, 257));
	agent_identities_gc(a1, 105000);
	assert_false(stored(f->s1, 256));
	assert_false(stored(f->s1, 257));
	assert_false(stored(f->s1, 258));
	assert_true(stored(f->s1, 259));
	/* a2 sees the release; the pods keep 259 */
	rebuild(a2);
	assert_int_equal(pod_identity(a2, "shop/a"), 259);
	assert_int_equal(agent_obj_find(a2, IDENTITY_KEY_PREFIX "257"), NULL);
	/* relabelled back, a gets the lowest free number */
	put(f->s1, "/ciliate/objects/Pod/shop/a", POD("a", "node-1", "web"));
	rebuild(a1);
	rebuild(a2);
	assert_int_equal(pod_identity(a1, "shop/a"), 256);
	assert_int_equal(pod_identity(a2, "shop/a"), 256);
	free_agent(a1);
	free_agent(a2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_format_and_parse),
		cmocka_unit_test_setup_teardown(test_two_handles_share_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fresh_store_agrees_with_model, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restart_reuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agents_relabel_and_gc, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
