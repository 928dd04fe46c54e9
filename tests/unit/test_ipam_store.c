/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's IPAM against a real store (datapath/agent/ipam.c): one key per allocation,
 * created only when absent, so an agent with a stale cache cannot hand out a taken address;
 * idempotent allocation and release; and records of the earlier format (allocations inside
 * the node's range record) moved to keys on first use.
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
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "store_scratch.h"
#include "tmpdir.h"

#include "agent/agent.h"

/* ipam.c and objects.c log through the agent's logger (main.c is not linked here) */
void agent_log(const struct agent *a, const char *fmt, ...)
{
	(void)a;
	(void)fmt;
}

#define RANGE_KEY "/ciliate/ipam/node-1"

struct fixture {
	char dir[64];
	char uri[128];
	struct agent *a, *b; /* two agents of node-1 (b: a restarted one with its own cache) */
};

static struct agent *new_agent(const char *uri)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct diag d = {{0}};

	assert_non_null(a);
	a->o.node = "node-1";
	a->pod_cidr = inet_addr("10.244.0.0");
	a->pod_cidr_len = 24;
	if (store_open(uri, &a->st, &d))
		fail_msg("store_open: %s", d.msg);
	return a;
}

static void free_agent(struct agent *a)
{
	store_watch_close(a->w);
	agent_objects_free(a);
	store_close(a->st);
	free(a);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/ciliate-ipam-test-XXXXXX");
	if (scratch_store_make(f->dir, f->uri, sizeof(f->uri), "fsync=0", "/ciliate/"))
		return -1;
	f->a = new_agent(f->uri);
	f->b = new_agent(f->uri);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	free_agent(f->a);
	free_agent(f->b);
	test_rm_dir(f->dir);
	free(f);
	return 0;
}

static uint32_t alloc(struct agent *a, const char *pod, const char *cid, const char *want)
{
	struct diag d = {{0}};
	uint32_t ip = 0;

	if (agent_ipam_allocate(a, pod, cid, want ? inet_addr(want) : 0, &ip, &d))
		fail_msg("allocate %s: %s", pod, d.msg);
	return ip;
}

/* The value stored at key, or NULL (malloc'd). */
static char *stored(struct agent *a, const char *key)
{
	struct diag d = {{0}};
	struct store_kv kv;
	char *v;

	if (store_get(a->st, key, &kv, &d))
		return NULL;
	v = strdup(kv.value);
	store_kv_free(&kv);
	return v;
}

static void assert_stored_pod(struct agent *a, const char *key, const char *pod)
{
	char *v = stored(a, key);

	assert_non_null(v);
	assert_non_null(strstr(v, pod));
	free(v);
}

/* The range record holds node-1's range and no allocations (they are keys of their own). */
static void assert_range_only(struct agent *a)
{
	char *v = stored(a, RANGE_KEY);

	assert_non_null(v);
	assert_non_null(strstr(v, "\"cidr\":\"10.244.0.0/24\""));
	assert_non_null(strstr(v, "\"allocations\":[]"));
	free(v);
}

static int64_t revision(struct agent *a)
{
	struct diag d = {{0}};
	int64_t rev = 0;

	assert_int_equal(store_revision(a->st, &rev, &d), 0);
	return rev;
}

static void test_one_key_per_allocation(void **state)
{
	struct fixture *f = *state;
	struct diag d = {{0}};
	uint32_t ip = 0;
	int64_t rev;
	char *v;

	assert_int_equal(alloc(f->a, "shop/a", "c1", NULL), inet_addr("10.244.0.10"));
	assert_int_equal(alloc(f->a, "shop/b", "c2", "10.244.0.20"), inet_addr("10.244.0.20"));
	assert_int_equal(alloc(f->a, "shop/c", "c3", NULL), inet_addr("10.244.0.11"));
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.10", "\"shop/a\"");
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.20", "\"shop/b\"");
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.11", "\"shop/c\"");
	assert_range_only(f->a);

	/* idempotent: the same pod and container again writes nothing */
	rev = revision(f->a);
	assert_int_equal(alloc(f->a, "shop/a", "c1", NULL), inet_addr("10.244.0.10"));
	assert_int_equal(revision(f->a), rev);
	/* a new sandbox of the pod keeps the address, with the new container id */
	assert_int_equal(alloc(f->a, "shop/a", "c9", NULL), inet_addr("10.244.0.10"));
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.10", "\"c9\"");
	/* a taken address is refused, naming the holder */
	assert_int_equal(agent_ipam_allocate(f->a, "shop/d", "c4", inet_addr("10.244.0.20"), &ip,
					     &d),
			 -EEXIST);
	assert_non_null(strstr(d.msg, "shop/b"));

	/* release: a late DEL of the old sandbox keeps the address, the current one frees it */
	assert_int_equal(agent_ipam_release(f->a, "shop/a", "c1", &ip, &d), 0);
	assert_int_equal(ip, 0);
	assert_non_null(v = stored(f->a, RANGE_KEY "/10.244.0.10"));
	free(v);
	assert_int_equal(agent_ipam_release(f->a, "shop/a", "c9", &ip, &d), 0);
	assert_int_equal(ip, inet_addr("10.244.0.10"));
	assert_null(stored(f->a, RANGE_KEY "/10.244.0.10"));
	assert_int_equal(agent_ipam_release(f->a, "shop/a", "c9", &ip, &d), 0); /* again: no-op */
	assert_int_equal(ip, 0);
	/* the freed address is handed out again */
	assert_int_equal(alloc(f->a, "shop/e", "c5", NULL), inet_addr("10.244.0.10"));
}

/* b's cache has never seen a's allocations: the create-only write loses, b re-reads that
 * key and takes the next address; nothing is handed out twice. */
static void test_stale_cache_cannot_double_allocate(void **state)
{
	struct fixture *f = *state;
	struct diag d = {{0}};

	assert_int_equal(alloc(f->a, "shop/x", "cx", NULL), inet_addr("10.244.0.10"));
	assert_int_equal(alloc(f->a, "shop/y", "cy", NULL), inet_addr("10.244.0.11"));
	assert_int_equal(alloc(f->b, "shop/z", "cz", NULL), inet_addr("10.244.0.12"));
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.10", "\"shop/x\"");
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.11", "\"shop/y\"");
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.12", "\"shop/z\"");
	/* and b now knows x: asking for x's pod again is idempotent there too */
	assert_int_equal(alloc(f->b, "shop/x", "cx", NULL), inet_addr("10.244.0.10"));
	(void)d;
}

/* A record of the earlier format: its allocations become keys on the first allocation, and
 * the pods keep their addresses. */
static void test_legacy_record_moved_to_keys(void **state)
{
	static const char legacy[] =
		"{\"node\":\"node-1\",\"cidr\":\"10.244.0.0/24\",\"allocations\":["
		"{\"ip\":\"10.244.0.10\",\"pod\":\"shop/old1\",\"containerID\":\"o1\"},"
		"{\"ip\":\"10.244.0.11\",\"pod\":\"shop/old2\",\"containerID\":\"o2\"}]}";
	struct fixture *f = *state;
	struct diag d = {{0}};

	assert_int_equal(store_put(f->a->st, RANGE_KEY, legacy, strlen(legacy), 0, 0, NULL, &d), 0);
	assert_int_equal(agent_objects_sync(f->a, &d), 0);
	assert_int_equal(alloc(f->a, "shop/new", "n1", NULL), inet_addr("10.244.0.12"));
	assert_int_equal(alloc(f->a, "shop/old2", "o2", NULL), inet_addr("10.244.0.11"));
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.10", "\"shop/old1\"");
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.11", "\"shop/old2\"");
	assert_stored_pod(f->a, RANGE_KEY "/10.244.0.12", "\"shop/new\"");
	assert_range_only(f->a);
}

/* A range record for another range is refused, not overwritten. */
static void test_stale_range_refused(void **state)
{
	static const char other[] = "{\"node\":\"node-1\",\"cidr\":\"10.99.0.0/24\"}";
	struct fixture *f = *state;
	struct diag d = {{0}};
	uint32_t ip = 0;

	assert_int_equal(store_put(f->a->st, RANGE_KEY, other, strlen(other), 0, 0, NULL, &d), 0);
	assert_int_equal(agent_ipam_allocate(f->a, "shop/a", "c1", 0, &ip, &d), -EEXIST);
	assert_non_null(strstr(d.msg, "10.99.0.0/24"));
	assert_int_equal(agent_ipam_release(f->a, "shop/a", "c1", &ip, &d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_key_per_allocation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_cache_cannot_double_allocate, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_legacy_record_moved_to_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_range_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
