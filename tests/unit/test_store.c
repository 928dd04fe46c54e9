/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the store (datapath/store): semantics, multi-process safety, leases, crash
 * safety, compaction. Every wait is bounded; the whole binary is killed by alarm() at 240 s.
 * With CILIATE_TEST_ETCD=HOST:PORT (a scratch etcd: every key is deleted before each test;
 * tests/store-etcd/run-suite.sh starts one) the same cases run against the etcd backend,
 * revisions counted from the store's revision at the start of each test, the embedded
 * backend's file-format cases are skipped and etcd-specific ones run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "tmpdir.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define NWRITERS   4
#define NPUTS      200
#define WAIT_MS    60000

static const char *g_etcd;   /* HOST:PORT from CILIATE_TEST_ETCD, or NULL: the embedded store */
static int64_t g_base;        /* the store revision when the test started (0 for a fresh dir) */
#define R(n) (g_base + (n))   /* the revision n writes into the test */

/* Test cases that only make sense for one backend return early on the other. */
#define FILE_ONLY() do { if (g_etcd) { print_message("(embedded store only)\n"); return; } } while (0)
#define ETCD_ONLY() do { if (!g_etcd) { print_message("(etcd only: set CILIATE_TEST_ETCD)\n"); return; } } while (0)

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* Deletes every key of the scratch etcd (one DeleteRange over the whole keyspace). */
static int etcd_wipe(void)
{
	char url[256];
	long status = 0;
	CURLcode rc;
	CURL *h = curl_easy_init();

	if (!h)
		return -1;
	snprintf(url, sizeof(url), "http://%s/v3/kv/deleterange", g_etcd);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"key\":\"AA==\",\"range_end\":\"AA==\"}");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK || status != 200) {
		fprintf(stderr, "wiping etcd at %s: %s (HTTP %ld)\n", g_etcd, curl_easy_strerror(rc), status);
		return -1;
	}
	return 0;
}

struct fixture {
	char dir[64];
	char uri[128];
	struct store *s;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int setup_opts(void **state, const char *opts)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct diag d = { { 0 } };

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/ciliate-store-test-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (g_etcd) {
		snprintf(f->uri, sizeof(f->uri), "etcd://%s", g_etcd);
		if (etcd_wipe())
			return -1;
	} else {
		snprintf(f->uri, sizeof(f->uri), "file://%s%s%s", f->dir, opts ? "?" : "", opts ? opts : "");
	}
	if (store_open(f->uri, &f->s, &d)) {
		fprintf(stderr, "store_open: %s\n", d.msg);
		return -1;
	}
	g_base = 0;
	if (store_revision(f->s, &g_base, &d)) {
		fprintf(stderr, "store_revision: %s\n", d.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_opts(state, NULL);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->s);
	test_rm_dir(f->dir);
	free(f);
	return 0;
}

static int64_t put_str(struct store *s, const char *key, const char *value)
{
	struct diag d = { { 0 } };
	int64_t rev = -1;
	int err;

	err = store_put(s, key, value, strlen(value), 0, STORE_ANY_REV, &rev, &d);
	if (err)
		fprintf(stderr, "put %s: %s\n", key, d.msg);
	assert_int_equal(err, 0);
	return rev;
}

/* Collects events until n arrive or timeout_ms passes; returns how many. */
static size_t watch_collect(struct store_watch *w, struct store_event *out, size_t n, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;
	struct diag d = { { 0 } };
	struct store_event *evs;
	size_t got = 0, k, i;
	int err;

	while (got < n && mono_ms() < end) {
		err = store_watch_next(w, 100, &evs, &k, &d);
		if (err)
			fprintf(stderr, "watch: %s\n", d.msg);
		assert_int_equal(err, 0);
		for (i = 0; i < k; i++) {
			assert_true(got < n);
			out[got++] = evs[i];
			memset(&evs[i].kv, 0, sizeof(evs[i].kv));
		}
		store_events_free(evs, k);
	}
	return got;
}

static void events_free(struct store_event *evs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		store_kv_free(&evs[i].kv);
}

static void test_uri_errors(void **state)
{
	struct diag d = { { 0 } };
	struct store *s = NULL;

	/* etcd: nothing listens on port 1; the error names the endpoint */
	assert_int_equal(store_open("etcd://127.0.0.1:1", &s, &d), -EHOSTUNREACH);
	assert_null(s);
	assert_non_null(strstr(d.msg, "127.0.0.1:1"));
	assert_non_null(strstr(d.msg, "no etcd endpoint answered"));
	assert_int_equal(store_open("etcd://", &s, &d), -EINVAL);
	assert_int_equal(store_open("etcd://127.0.0.1", &s, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "host:port"));
	assert_int_equal(store_open("etcd://127.0.0.1:1?bogus=1", &s, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "bogus"));
	assert_int_equal(store_open("ftp://x/y", &s, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "unknown scheme"));
	assert_int_equal(store_open("file://relative", &s, &d), -EINVAL);
	assert_int_equal(store_open("file:///tmp/ciliate-store-never?bogus=1", &s, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "bogus"));
}

static void test_bad_args(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store_op ops[2] = {
		{ .type = STORE_OP_PUT, .key = "/a", .value = "1", .value_len = 1 },
		{ .type = STORE_OP_DELETE, .key = "/a" },
	};
	struct store_list l;
	struct store_kv kv;

	assert_int_equal(store_put(f->s, "", "x", 1, 0, STORE_ANY_REV, NULL, &d), -EINVAL);
	assert_int_equal(store_put(f->s, "/a\nb", "x", 1, 0, STORE_ANY_REV, NULL, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "control character"));
	assert_int_equal(store_get(f->s, "", &kv, &d), -EINVAL);
	assert_int_equal(store_list(f->s, NULL, &l, &d), -EINVAL);
	assert_int_equal(store_txn(f->s, NULL, 0, ops, 2, NULL, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "more than one op"));
	assert_int_equal(store_lease_grant(f->s, 0, &(int64_t){ 0 }, &d), -EINVAL);
	assert_int_equal(store_put(f->s, "/a", "x", 1, 12345, STORE_ANY_REV, NULL, &d), -ENOENT);
	assert_non_null(strstr(d.msg, "lease"));
}

static void test_crud_and_revisions(void **state)
{
	struct fixture *f = *state;
	const char bin[] = { 'a', 0, (char)0xff, (char)0xfe, '\n', 'z' };
	struct diag d = { { 0 } };
	struct store *s2 = NULL;
	struct store_list l;
	struct store_kv kv;
	int64_t rev, r1, r2, r3, r4;

	assert_int_equal(store_revision(f->s, &rev, &d), 0);
	assert_int_equal(rev, R(0));
	r1 = put_str(f->s, "/ciliate/objects/Pod/default/a", "{\"n\":1}");
	r2 = put_str(f->s, "/ciliate/objects/Pod/default/b", "{\"n\":2}");
	r3 = put_str(f->s, "/ciliate/objects/Service/default/a", "{\"n\":3}");
	r4 = put_str(f->s, "/ciliate/objects/Pod/default/a", "{\"n\":4}");
	assert_true(r1 == R(1) && r2 == R(2) && r3 == R(3) && r4 == R(4));

	assert_int_equal(store_get(f->s, "/ciliate/objects/Pod/default/a", &kv, &d), 0);
	assert_string_equal(kv.value, "{\"n\":4}");
	assert_int_equal(kv.value_len, 7);
	assert_int_equal(kv.create_revision, R(1));
	assert_int_equal(kv.mod_revision, R(4));
	assert_int_equal(kv.version, 2);
	store_kv_free(&kv);

	assert_int_equal(store_list(f->s, "/ciliate/objects/Pod/", &l, &d), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.revision, R(4));
	assert_string_equal(l.items[0].key, "/ciliate/objects/Pod/default/a");
	assert_string_equal(l.items[1].key, "/ciliate/objects/Pod/default/b");
	store_list_free(&l);
	assert_int_equal(store_list(f->s, "", &l, &d), 0);
	assert_int_equal(l.n, 3);
	store_list_free(&l);

	/* Binary values (NUL, invalid UTF-8) round-trip. */
	assert_int_equal(store_put(f->s, "/bin", bin, sizeof(bin), 0, STORE_ANY_REV, &rev, &d), 0);
	assert_int_equal(rev, R(5));
	assert_int_equal(store_get(f->s, "/bin", &kv, &d), 0);
	assert_int_equal(kv.value_len, sizeof(bin));
	assert_memory_equal(kv.value, bin, sizeof(bin));
	store_kv_free(&kv);

	assert_int_equal(store_delete(f->s, "/ciliate/objects/Pod/default/b", STORE_ANY_REV, &rev, &d), 0);
	assert_int_equal(rev, R(6));
	assert_int_equal(store_get(f->s, "/ciliate/objects/Pod/default/b", &kv, &d), -ENOENT);
	assert_int_equal(store_delete(f->s, "/ciliate/objects/Pod/default/b", STORE_ANY_REV, &rev, &d), -ENOENT);
	assert_int_equal(store_revision(f->s, &rev, &d), 0);
	assert_int_equal(rev, R(6)); /* a no-op delete does not bump the revision */

	/* A second handle (another process would do the same) sees the same state. */
	assert_int_equal(store_open(f->uri, &s2, &d), 0);
	assert_int_equal(store_revision(s2, &rev, &d), 0);
	assert_int_equal(rev, R(6));
	assert_int_equal(store_get(s2, "/bin", &kv, &d), 0);
	assert_memory_equal(kv.value, bin, sizeof(bin));
	store_kv_free(&kv);
	assert_int_equal(put_str(s2, "/x", "y"), R(7));
	store_close(s2);
	assert_int_equal(store_get(f->s, "/x", &kv, &d), 0);
	assert_int_equal(kv.mod_revision, R(7));
	store_kv_free(&kv);
}

static void test_cas(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	int64_t rev, rev2;

	assert_int_equal(store_put(f->s, "/k", "1", 1, 0, 0, &rev, &d), 0); /* create only */
	assert_int_equal(store_put(f->s, "/k", "2", 1, 0, 0, NULL, &d), -ECANCELED);
	assert_non_null(strstr(d.msg, "/k"));
	assert_int_equal(store_put(f->s, "/k", "2", 1, 0, rev, &rev2, &d), 0);
	assert_int_equal(rev2, rev + 1);
	assert_int_equal(store_put(f->s, "/k", "3", 1, 0, rev, NULL, &d), -ECANCELED); /* stale */
	assert_int_equal(store_delete(f->s, "/k", rev, NULL, &d), -ECANCELED);
	assert_int_equal(store_revision(f->s, &rev, &d), 0);
	assert_int_equal(rev, rev2); /* failed CAS writes nothing */
	assert_int_equal(store_delete(f->s, "/k", rev2, &rev, &d), 0);
	assert_int_equal(rev, rev2 + 1);
	assert_int_equal(store_delete(f->s, "/k", 5, NULL, &d), -ECANCELED);
}

static void test_txn_atomic(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store_event evs[4];
	struct store_watch *w;
	struct store_list l;
	int64_t ra, rb, rev;

	ra = put_str(f->s, "/t/a", "a0");
	rb = put_str(f->s, "/t/b", "b0");
	assert_int_equal(store_watch_open(f->s, "/t/", rb, &w, &d), 0);
	{
		struct store_cmp cmps[] = { { "/t/a", ra }, { "/t/b", rb }, { "/t/c", 0 } };
		struct store_op ops[] = {
			{ .type = STORE_OP_PUT, .key = "/t/a", .value = "a1", .value_len = 2 },
			{ .type = STORE_OP_DELETE, .key = "/t/b" },
			{ .type = STORE_OP_PUT, .key = "/t/c", .value = "c1", .value_len = 2 },
			{ .type = STORE_OP_DELETE, .key = "/t/absent" },
		};
		struct store_cmp bad[] = { { "/t/a", ra }, { "/t/c", 0 } }; /* /t/a changed below */

		assert_int_equal(store_txn(f->s, cmps, 3, ops, 4, &rev, &d), 0);
		assert_int_equal(rev, rb + 1); /* one revision for the whole txn */
		assert_int_equal(store_txn(f->s, bad, 2, ops, 3, &rev, &d), -ECANCELED);
		assert_int_equal(store_revision(f->s, &rev, &d), 0);
		assert_int_equal(rev, rb + 1);
	}
	assert_int_equal(store_list(f->s, "/t/", &l, &d), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0].value, "a1");
	assert_string_equal(l.items[1].key, "/t/c");
	assert_int_equal(l.items[1].create_revision, rb + 1);
	store_list_free(&l);

	assert_int_equal(watch_collect(w, evs, 3, 2000), 3);
	assert_int_equal(evs[0].type, STORE_EVENT_PUT);
	assert_string_equal(evs[0].kv.key, "/t/a");
	assert_int_equal(evs[1].type, STORE_EVENT_DELETE);
	assert_string_equal(evs[1].kv.key, "/t/b");
	assert_int_equal(evs[2].type, STORE_EVENT_PUT);
	assert_int_equal(evs[0].revision, rb + 1);
	assert_int_equal(evs[2].revision, rb + 1);
	events_free(evs, 3);
	store_watch_close(w);
}

static void test_watch_from_revision(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store_event evs[16], *more;
	struct store_watch *w;
	char key[32];
	size_t n;
	int i;

	for (i = 1; i <= 10; i++) {
		snprintf(key, sizeof(key), "/w/%d", i);
		assert_int_equal(put_str(f->s, key, "v"), R(i));
	}
	put_str(f->s, "/other/x", "v"); /* rev 11, outside the prefix */
	assert_int_equal(store_watch_open(f->s, "/w/", R(5), &w, &d), 0);
	assert_int_equal(watch_collect(w, evs, 5, 2000), 5);
	for (i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "/w/%d", i + 6);
		assert_int_equal(evs[i].revision, R(i + 6));
		assert_int_equal(evs[i].kv.mod_revision, R(i + 6));
		assert_string_equal(evs[i].kv.key, key);
		assert_int_equal(evs[i].type, STORE_EVENT_PUT);
	}
	events_free(evs, 5);
	/* Nothing else is pending... */
	assert_int_equal(store_watch_next(w, 150, &more, &n, &d), 0);
	assert_int_equal(n, 0);
	/* ...and a later write shows up, exactly once. */
	put_str(f->s, "/w/new", "v");
	assert_int_equal(watch_collect(w, evs, 1, 2000), 1);
	assert_int_equal(evs[0].revision, R(12));
	events_free(evs, 1);
	assert_int_equal(store_watch_next(w, 0, &more, &n, &d), 0);
	assert_int_equal(n, 0);
	store_watch_close(w);
}

static void test_watch_fd_pollable(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store_event *evs;
	struct store_watch *w;
	struct pollfd pfd;
	size_t n = 0;
	int64_t end;

	assert_int_equal(store_watch_open(f->s, "", R(0), &w, &d), 0);
	pfd.fd = store_watch_fd(w);
	pfd.events = POLLIN;
	assert_true(pfd.fd >= 0);
	put_str(f->s, "/p", "1");
	end = mono_ms() + 3000;
	while (!n && mono_ms() < end) {
		if (poll(&pfd, 1, 500) < 0)
			break;
		assert_int_equal(store_watch_next(w, 0, &evs, &n, &d), 0);
		if (n)
			assert_string_equal(evs[0].kv.key, "/p");
		store_events_free(evs, n);
	}
	assert_int_equal(n, 1);
	store_watch_close(w);
}

static void writer_child(const char *uri, int id)
{
	struct diag d = { { 0 } };
	struct store *s;
	char key[64], val[64];
	int i;

	if (store_open(uri, &s, &d))
		_exit(2);
	for (i = 0; i < NPUTS; i++) {
		snprintf(key, sizeof(key), "/c/w%d/%03d", id, i);
		snprintf(val, sizeof(val), "{\"w\":%d,\"i\":%d}", id, i);
		if (store_put(s, key, val, strlen(val), 0, STORE_ANY_REV, NULL, &d)) {
			fprintf(stderr, "child %d: %s\n", id, d.msg);
			_exit(3);
		}
	}
	store_close(s);
	_exit(0);
}

static void reap(pid_t *pids, int n)
{
	int64_t end = mono_ms() + WAIT_MS;
	int i, status, left = n;

	while (left && mono_ms() < end) {
		for (i = 0; i < n; i++) {
			if (pids[i] <= 0 || waitpid(pids[i], &status, WNOHANG) != pids[i])
				continue;
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
			pids[i] = 0;
			left--;
		}
		usleep(10000);
	}
	for (i = 0; i < n; i++) {
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], &status, 0);
		}
	}
	assert_int_equal(left, 0);
}

/* 4 writer processes x 200 puts; a list + watch must see every revision exactly once. */
static void concurrent_list_watch(struct fixture *f, const char *writer_uri, const char *label)
{
	static struct store_event evs[NWRITERS * NPUTS];
	static bool seen[NWRITERS][NPUTS];
	struct diag d = { { 0 } };
	pid_t pids[NWRITERS];
	struct store_watch *w;
	struct store_list l;
	size_t got, i;
	int id, k;
	double t0;

	memset(seen, 0, sizeof(seen));
	put_str(f->s, "/c/seed", "0");
	assert_int_equal(store_list(f->s, "/c/", &l, &d), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(store_watch_open(f->s, "/c/", l.revision, &w, &d), 0);
	t0 = mono_us();
	for (id = 0; id < NWRITERS; id++) {
		pids[id] = fork();
		assert_true(pids[id] >= 0);
		if (pids[id] == 0)
			writer_child(writer_uri, id);
	}
	got = watch_collect(w, evs, NWRITERS * NPUTS, WAIT_MS);
	reap(pids, NWRITERS);
	print_message("concurrent (%s): %d writers x %d puts in %.0f ms: %.0f puts/s\n", label, NWRITERS, NPUTS,
		      (mono_us() - t0) / 1e3, NWRITERS * NPUTS / ((mono_us() - t0) / 1e6));
	assert_int_equal(got, NWRITERS * NPUTS);
	for (i = 0; i < got; i++) {
		assert_int_equal(evs[i].revision, l.revision + 1 + (int64_t)i); /* in order, no gaps */
		assert_int_equal(sscanf(evs[i].kv.key, "/c/w%d/%d", &id, &k), 2);
		assert_false(seen[id][k]);
		seen[id][k] = true;
	}
	events_free(evs, got);
	store_list_free(&l);
	store_watch_close(w);
	assert_int_equal(store_list(f->s, "/c/w", &l, &d), 0);
	assert_int_equal(l.n, NWRITERS * NPUTS);
	assert_int_equal(l.revision, R(1 + NWRITERS * NPUTS));
	store_list_free(&l);
}

static void test_concurrent_list_watch(void **state)
{
	struct fixture *f = *state;

	concurrent_list_watch(f, f->uri, "fsync");
}

/* The same while the writers keep compacting the log under the watcher's feet. */
static void test_concurrent_with_compaction(void **state)
{
	struct fixture *f = *state;
	char uri[256];

	FILE_ONLY();
	snprintf(uri, sizeof(uri), "file://%s?compact_bytes=4096&keep_revisions=1000", f->dir);
	concurrent_list_watch(f, uri, "fsync, compacting every 4 KiB");
}

static void test_lease_expiry(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store_event evs[4];
	struct store_watch *w;
	struct store_kv kv;
	int64_t lease, lease2, rev, t0;

	assert_int_equal(store_lease_grant(f->s, 1, &lease, &d), 0);
	assert_true(lease > 0);
	assert_int_equal(store_put(f->s, "/node/a", "1", 1, lease, STORE_ANY_REV, NULL, &d), 0);
	assert_int_equal(store_put(f->s, "/node/b", "1", 1, lease, STORE_ANY_REV, &rev, &d), 0);
	put_str(f->s, "/node/keep", "1");
	assert_int_equal(store_get(f->s, "/node/a", &kv, &d), 0);
	assert_int_equal(kv.lease, lease);
	store_kv_free(&kv);
	assert_int_equal(store_watch_open(f->s, "/node/", rev + 1, &w, &d), 0);
	usleep(600 * 1000);
	assert_int_equal(store_lease_keepalive(f->s, lease, &d), 0); /* pushes expiry to ~1.6 s */
	t0 = mono_ms();
	assert_int_equal(watch_collect(w, evs, 2, 5000), 2);
	assert_true(mono_ms() - t0 >= 700);
	assert_int_equal(evs[0].type, STORE_EVENT_DELETE);
	assert_int_equal(evs[1].type, STORE_EVENT_DELETE);
	assert_int_equal(evs[0].revision, evs[1].revision); /* one revision per lease expiry */
	assert_string_not_equal(evs[0].kv.key, evs[1].kv.key);
	events_free(evs, 2);
	assert_int_equal(store_get(f->s, "/node/a", &kv, &d), -ENOENT);
	assert_int_equal(store_get(f->s, "/node/keep", &kv, &d), 0);
	store_kv_free(&kv);
	assert_int_equal(store_lease_keepalive(f->s, lease, &d), -ENOENT);
	assert_int_equal(store_put(f->s, "/node/a", "1", 1, lease, STORE_ANY_REV, NULL, &d), -ENOENT);

	/* Revoke deletes at once; lease ids are not reused. */
	assert_int_equal(store_lease_grant(f->s, 60, &lease2, &d), 0);
	assert_true(lease2 > lease);
	assert_int_equal(store_put(f->s, "/node/c", "1", 1, lease2, STORE_ANY_REV, NULL, &d), 0);
	assert_int_equal(store_lease_revoke(f->s, lease2, &d), 0);
	assert_int_equal(watch_collect(w, evs, 2, 2000), 2);
	assert_int_equal(evs[0].type, STORE_EVENT_PUT);
	assert_int_equal(evs[1].type, STORE_EVENT_DELETE);
	assert_string_equal(evs[1].kv.key, "/node/c");
	events_free(evs, 2);
	store_watch_close(w);
}

/* Keys of an expired lease vanish for a reader that never writes (another process's lease). */
static void test_lease_expiry_other_process(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store *s2;
	struct store_kv kv;
	int64_t lease, end;
	int err = 0;

	assert_int_equal(store_open(f->uri, &s2, &d), 0);
	assert_int_equal(store_lease_grant(s2, 1, &lease, &d), 0);
	assert_int_equal(store_put(s2, "/n/x", "1", 1, lease, STORE_ANY_REV, NULL, &d), 0);
	store_close(s2); /* the "agent" dies */
	assert_int_equal(store_get(f->s, "/n/x", &kv, &d), 0);
	store_kv_free(&kv);
	end = mono_ms() + 4000;
	while (mono_ms() < end && (err = store_get(f->s, "/n/x", &kv, &d)) == 0) {
		store_kv_free(&kv);
		usleep(50 * 1000);
	}
	assert_int_equal(err, -ENOENT);
}

static void append_raw(const char *dir, const char *text)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/log", dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_torn_line(void **state)
{
	struct fixture *f = *state;
	struct store_event evs[8];
	struct diag d = { { 0 } };
	struct store_watch *w;
	struct store *s2;
	struct store_list l;
	int64_t rev;

	FILE_ONLY();
	put_str(f->s, "/a", "1");
	put_str(f->s, "/b", "2");
	/* A writer died in the middle of revision 3. */
	append_raw(f->dir, "{\"seq\":3,\"rev\":3,\"t\":1,\"ops\":[{\"op\":\"put\",\"key\":\"/torn\",\"val");
	assert_int_equal(store_open(f->uri, &s2, &d), 0);
	assert_int_equal(store_revision(s2, &rev, &d), 0);
	assert_int_equal(rev, 2);
	assert_int_equal(store_list(s2, "", &l, &d), 0);
	assert_int_equal(l.n, 2);
	store_list_free(&l);
	/* The next write seals the torn line and takes revision 3. */
	assert_int_equal(put_str(s2, "/c", "3"), 3);
	assert_int_equal(put_str(f->s, "/d", "4"), 4);
	assert_int_equal(store_list(f->s, "", &l, &d), 0);
	assert_int_equal(l.n, 4);
	store_list_free(&l);
	assert_int_equal(store_watch_open(s2, "", 0, &w, &d), 0);
	assert_int_equal(watch_collect(w, evs, 4, 2000), 4);
	assert_string_equal(evs[2].kv.key, "/c");
	assert_int_equal(evs[2].revision, 3);
	assert_int_equal(evs[3].revision, 4);
	events_free(evs, 4);
	store_watch_close(w);

	/* A complete record whose '\n' never hit the disk is kept once a writer seals it. */
	append_raw(f->dir, "{\"seq\":5,\"rev\":5,\"t\":1,\"ops\":[{\"op\":\"put\",\"key\":\"/e\",\"value\":\"5\"}]}");
	assert_int_equal(store_revision(s2, &rev, &d), 0);
	assert_int_equal(rev, 4);
	assert_int_equal(put_str(f->s, "/f", "6"), 6);
	assert_int_equal(store_list(s2, "", &l, &d), 0);
	assert_int_equal(l.n, 6);
	assert_int_equal(l.revision, 6);
	store_list_free(&l);
	store_close(s2);
}

static void test_compaction(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store_watch *w, *lag;
	struct store_event evs[32];
	struct store_list l;
	struct store *s2;
	char key[32];
	int i;

	for (i = 1; i <= 20; i++) {
		snprintf(key, sizeof(key), "/k/%02d", i % 10);
		put_str(f->s, key, "v");
	}
	if (!g_etcd) /* the embedded store: a watch holding the old log survives a compaction */
		assert_int_equal(store_watch_open(f->s, "/k/", R(5), &lag, &d), 0); /* opened, not read yet */
	assert_int_equal(store_compact(f->s, R(15), &d), 0);
	assert_int_equal(store_watch_open(f->s, "/k/", R(10), &w, &d), -ESTALE);
	assert_non_null(strstr(d.msg, "compacted"));
	assert_int_equal(store_watch_open(f->s, "/k/", R(15), &w, &d), 0);
	put_str(f->s, "/k/new", "v");
	assert_int_equal(watch_collect(w, evs, 6, 2000), 6);
	for (i = 0; i < 6; i++)
		assert_int_equal(evs[i].revision, R(16 + i));
	events_free(evs, 6);
	store_watch_close(w);
	if (!g_etcd) {
		/* A watch that already held the old log still sees everything. */
		assert_int_equal(watch_collect(lag, evs, 16, 2000), 16);
		for (i = 0; i < 16; i++)
			assert_int_equal(evs[i].revision, R(6 + i));
		events_free(evs, 16);
		store_watch_close(lag);
	}
	/* State survives compaction, for this handle and a fresh one. */
	assert_int_equal(store_open(f->uri, &s2, &d), 0);
	assert_int_equal(store_list(s2, "/k/", &l, &d), 0);
	assert_int_equal(l.n, 11);
	assert_int_equal(l.revision, R(21));
	store_list_free(&l);
	assert_int_equal(put_str(s2, "/k/after", "v"), R(22));
	store_close(s2);
	assert_int_equal(store_compact(f->s, R(99), &d), -EINVAL); /* future */
	assert_int_equal(store_compact(f->s, R(10), &d), 0); /* already compacted: nothing to do */
	if (g_etcd)
		return; /* an etcd watch that is in sync is never overtaken by a compaction */

	/* A watch that falls behind two compactions is told to re-list. */
	{
		struct store_event *more;
		size_t n;

		assert_int_equal(store_watch_open(f->s, "/k/", R(22), &lag, &d), 0);
		put_str(f->s, "/k/x", "1");
		assert_int_equal(store_compact(f->s, R(23), &d), 0);
		put_str(f->s, "/k/y", "1");
		assert_int_equal(store_compact(f->s, R(24), &d), 0);
		assert_int_equal(store_watch_next(lag, 1000, &more, &n, &d), -ESTALE);
		assert_int_equal(n, 0);
		assert_non_null(strstr(d.msg, "list again"));
		assert_int_equal(store_watch_next(lag, 0, &more, &n, &d), -ESTALE);
		store_watch_close(lag);
	}
}

static void test_auto_compaction(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store_event evs[4];
	struct store_watch *w;
	struct store_list l;
	struct store *s;
	char uri[256], key[32], path[96];
	struct stat sb;
	int i;

	FILE_ONLY();
	snprintf(uri, sizeof(uri), "file://%s?fsync=0&compact_bytes=8192&keep_revisions=20", f->dir);
	assert_int_equal(store_open(uri, &s, &d), 0);
	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "/ac/%d", i % 50);
		put_str(s, key, "some value that takes a little room");
	}
	snprintf(path, sizeof(path), "%s/log", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size < 64 * 1024);
	assert_int_equal(store_list(f->s, "/ac/", &l, &d), 0);
	assert_int_equal(l.n, 50);
	assert_int_equal(l.revision, 2000);
	store_list_free(&l);
	assert_int_equal(store_watch_open(s, "/ac/", 1, &w, &d), -ESTALE);
	assert_int_equal(store_watch_open(s, "/ac/", 1997, &w, &d), 0);
	assert_int_equal(watch_collect(w, evs, 3, 2000), 3);
	assert_int_equal(evs[0].revision, 1998);
	events_free(evs, 3);
	store_watch_close(w);
	store_close(s);

	/* Lease keepalives alone (no new revisions) do not grow the log without bound. */
	snprintf(uri, sizeof(uri), "file://%s?fsync=0&compact_bytes=8192&keep_revisions=100000", f->dir);
	assert_int_equal(store_open(uri, &s, &d), 0);
	{
		int64_t lease;

		assert_int_equal(store_lease_grant(s, 600, &lease, &d), 0);
		for (i = 0; i < 2000; i++)
			assert_int_equal(store_lease_keepalive(s, lease, &d), 0);
	}
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size < 64 * 1024);
	store_close(s);
}

/* Median and worst time from a write in another process to the watcher seeing it. */
static void measure_latency(const char *uri, struct store *s, const char *label)
{
	struct diag d = { { 0 } };
	double lat[20], t, tmp;
	struct store_event ev;
	struct store_watch *w;
	int64_t rev;
	int i, j, pfd[2];
	pid_t pid;
	char c;

	assert_int_equal(store_revision(s, &rev, &d), 0);
	assert_int_equal(store_watch_open(s, "/lat/", rev, &w, &d), 0);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *cs;
		char v[64];

		close(pfd[1]);
		if (store_open(uri, &cs, &d))
			_exit(2);
		while (read(pfd[0], &c, 1) == 1) {
			snprintf(v, sizeof(v), "%.3f", mono_us());
			if (store_put(cs, "/lat/x", v, strlen(v), 0, STORE_ANY_REV, NULL, &d))
				_exit(3);
		}
		store_close(cs);
		_exit(0);
	}
	close(pfd[0]);
	for (i = 0; i < 20; i++) {
		assert_int_equal(write(pfd[1], "x", 1), 1);
		assert_int_equal(watch_collect(w, &ev, 1, 5000), 1);
		t = mono_us();
		lat[i] = (t - strtod(ev.kv.value, NULL)) / 1e3;
		store_kv_free(&ev.kv);
	}
	close(pfd[1]);
	reap(&pid, 1);
	store_watch_close(w);
	for (i = 0; i < 20; i++)
		for (j = i + 1; j < 20; j++)
			if (lat[j] < lat[i]) {
				tmp = lat[i];
				lat[i] = lat[j];
				lat[j] = tmp;
			}
	print_message("watch latency (%s): median %.2f ms, max %.2f ms\n", label, lat[10], lat[19]);
	assert_true(lat[19] < 500.0);
}

static void test_watch_latency(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	char uri[256];
	struct store *s;

	if (g_etcd) {
		measure_latency(f->uri, f->s, "etcd");
		return;
	}
	measure_latency(f->uri, f->s, "inotify");
	snprintf(uri, sizeof(uri), "%s?inotify=0", f->uri);
	assert_int_equal(store_open(uri, &s, &d), 0);
	measure_latency(f->uri, s, "poll fallback");
	store_close(s);
}

static void test_throughput(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	char uri[256], key[32];
	struct store *s;
	double t0;
	int i, n;

	for (n = 0; n < 2; n++) {
		if (g_etcd && n)
			break;
		if (g_etcd)
			snprintf(uri, sizeof(uri), "%s", f->uri);
		else
			snprintf(uri, sizeof(uri), "%s?fsync=%d", f->uri, n == 0);
		assert_int_equal(store_open(uri, &s, &d), 0);
		t0 = mono_us();
		for (i = 0; i < 1000; i++) {
			snprintf(key, sizeof(key), "/tp/%d/%d", n, i);
			put_str(s, key, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"}}");
		}
		print_message("throughput (%s): %.0f puts/s (single writer)\n",
			      g_etcd ? "etcd" : n == 0 ? "fsync=1" : "fsync=0", 1000 / ((mono_us() - t0) / 1e6));
		store_close(s);
	}
}

/* ---- etcd only ------------------------------------------------------------------------ */

/* A free loopback TCP port (bound, read back, released). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) && !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Several endpoints: a dead first one is skipped, every one dead names each. */
static void test_etcd_endpoints(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store_event ev;
	struct store_watch *w;
	struct store *s2;
	struct store_kv kv;
	char uri[256];
	int dead = free_port();

	ETCD_ONLY();
	snprintf(uri, sizeof(uri), "etcd://127.0.0.1:%d,%s", dead, g_etcd);
	assert_int_equal(store_open(uri, &s2, &d), 0);
	assert_int_equal(put_str(s2, "/ep/a", "1"), R(1));
	assert_int_equal(store_get(f->s, "/ep/a", &kv, &d), 0);
	store_kv_free(&kv);
	assert_int_equal(store_watch_open(s2, "/ep/", R(0), &w, &d), 0);
	assert_int_equal(watch_collect(w, &ev, 1, 3000), 1);
	assert_string_equal(ev.kv.key, "/ep/a");
	store_kv_free(&ev.kv);
	store_watch_close(w);
	store_close(s2);

	snprintf(uri, sizeof(uri), "etcd://127.0.0.1:%d,127.0.0.1:%d", dead, free_port());
	assert_int_equal(store_open(uri, &s2, &d), -EHOSTUNREACH);
	print_message("all endpoints dead: %s\n", d.msg);
	snprintf(uri, sizeof(uri), "127.0.0.1:%d", dead);
	assert_non_null(strstr(d.msg, uri));
}

/* socat relaying listen -> target in its own process group (its per-connection children too). */
static pid_t relay_start(const char *listen, const char *target)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		execlp("socat", "socat", listen, target, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	return pid;
}

/* Waits (5 s at most) until something accepts connections at a. */
static void relay_wait(const struct sockaddr_in *a)
{
	int64_t end;
	int fd, err = -1;

	for (end = mono_ms() + 5000; mono_ms() < end && err; usleep(20000)) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		err = connect(fd, (const struct sockaddr *)a, sizeof(*a));
		close(fd);
	}
	assert_int_equal(err, 0);
}

/* Ends the relay started by relay_start: its process group (the relay and its connections). */
static void relay_stop(pid_t pid)
{
	int status;

	kill(-pid, SIGTERM);
	waitpid(pid, &status, 0);
}

/* The endpoint a watch streams from dies: the watch goes on from the next endpoint, losing and
 * repeating nothing. The first endpoint is a socat relay to the same etcd. */
static void test_etcd_watch_failover(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	struct store_event evs[8];
	struct store_watch *w;
	struct store *s2;
	char uri[256], listen[64], target[128];
	int port = free_port(), i;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int64_t end;
	pid_t pid;

	ETCD_ONLY();
	if (system("command -v socat >/dev/null 2>&1")) {
		print_message("(socat is not installed: failover not tested)\n");
		return;
	}
	snprintf(listen, sizeof(listen), "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", port);
	snprintf(target, sizeof(target), "TCP:%s", g_etcd);
	pid = relay_start(listen, target);
	a.sin_port = htons((uint16_t)port);
	relay_wait(&a);
	snprintf(uri, sizeof(uri), "etcd://127.0.0.1:%d,%s", port, g_etcd);
	assert_int_equal(store_open(uri, &s2, &d), 0);
	assert_int_equal(store_watch_open(s2, "/fo/", R(0), &w, &d), 0);
	put_str(f->s, "/fo/1", "v");
	assert_int_equal(watch_collect(w, evs, 1, 3000), 1);
	relay_stop(pid); /* the relay and its connections go away */
	put_str(f->s, "/fo/2", "v");
	put_str(f->s, "/fo/3", "v");
	assert_int_equal(watch_collect(w, evs + 1, 2, 5000), 2);
	for (i = 0; i < 3; i++)
		assert_int_equal(evs[i].revision, R(i + 1));
	events_free(evs, 3);
	/* the handle's unary calls move on as well */
	assert_int_equal(put_str(s2, "/fo/4", "v"), R(4));
	store_watch_close(w);
	store_close(s2);

	/* The only endpoint goes away, history is compacted meanwhile, the endpoint comes back:
	 * the watch's reconnect finds its next revision compacted -> -ESTALE (list again). */
	pid = relay_start(listen, target);
	relay_wait(&a);
	snprintf(uri, sizeof(uri), "etcd://127.0.0.1:%d", port);
	assert_int_equal(store_open(uri, &s2, &d), 0);
	assert_int_equal(store_watch_open(s2, "/fo/", R(4), &w, &d), 0);
	relay_stop(pid);
	put_str(f->s, "/fo/5", "v");
	put_str(f->s, "/fo/6", "v");
	assert_int_equal(store_compact(f->s, R(6), &d), 0);
	pid = relay_start(listen, target);
	{
		struct store_event *more;
		size_t n = 0;
		int err = 0;

		for (end = mono_ms() + 8000; mono_ms() < end && !err && !n;)
			err = store_watch_next(w, 200, &more, &n, &d);
		assert_int_equal(n, 0);
		assert_int_equal(err, -ESTALE);
		print_message("reconnect after compaction: %s\n", d.msg);
		assert_non_null(strstr(d.msg, "compacted"));
		assert_int_equal(store_watch_next(w, 0, &more, &n, &d), -ESTALE); /* stays stale */
	}
	store_watch_close(w);
	store_close(s2);
	relay_stop(pid);
}

/* etcd error mapping: unknown lease ids, a too-large request, keys outside our model. */
static void test_etcd_errors(void **state)
{
	struct fixture *f = *state;
	struct diag d = { { 0 } };
	size_t big = 2u << 20;
	char *v = malloc(big);

	ETCD_ONLY();
	assert_non_null(v);
	memset(v, 'x', big);
	assert_int_equal(store_lease_keepalive(f->s, 424242, &d), -ENOENT);
	assert_int_equal(store_lease_revoke(f->s, 424242, &d), -ENOENT);
	assert_non_null(strstr(d.msg, "lease"));
	assert_int_equal(store_put(f->s, "/big", v, big, 0, STORE_ANY_REV, NULL, &d), -EFBIG);
	print_message("2 MiB value: %s\n", d.msg);
	assert_non_null(strstr(d.msg, "etcd at"));
	free(v);
}

/* TLS: CILIATE_TEST_ETCD_TLS=HOST:PORT of an etcd serving https with the certificate (or CA)
 * in CILIATE_TEST_ETCD_CA; the store reaches it with ?ca=. */
static void test_etcd_tls(void **state)
{
	const char *tls = getenv("CILIATE_TEST_ETCD_TLS"), *ca = getenv("CILIATE_TEST_ETCD_CA");
	struct diag d = { { 0 } };
	struct store_event ev;
	struct store_watch *w;
	struct store_kv kv;
	struct store *s;
	char uri[512];
	int64_t rev;

	ETCD_ONLY();
	if (!tls || !ca) {
		print_message("(CILIATE_TEST_ETCD_TLS and CILIATE_TEST_ETCD_CA not set: TLS not tested)\n");
		return;
	}
	/* without the CA the server's certificate is not trusted */
	snprintf(uri, sizeof(uri), "etcd+https://%s", tls);
	assert_int_equal(store_open(uri, &s, &d), -EACCES);
	print_message("https without the CA: %s\n", d.msg);
	assert_non_null(strstr(d.msg, "TLS"));
	snprintf(uri, sizeof(uri), "etcd://%s?ca=%s", tls, ca);
	assert_int_equal(store_open(uri, &s, &d), 0);
	assert_int_equal(store_revision(s, &rev, &d), 0);
	assert_int_equal(store_watch_open(s, "/tls/", rev, &w, &d), 0);
	assert_int_equal(store_put(s, "/tls/a", "1", 1, 0, STORE_ANY_REV, NULL, &d), 0);
	assert_int_equal(store_get(s, "/tls/a", &kv, &d), 0);
	assert_string_equal(kv.value, "1");
	store_kv_free(&kv);
	assert_int_equal(watch_collect(w, &ev, 1, 3000), 1);
	assert_string_equal(ev.kv.key, "/tls/a");
	store_kv_free(&ev.kv);
	store_watch_close(w);
	store_close(s);

	/* Client certificates: CILIATE_TEST_ETCD_MTLS=HOST:PORT requires one signed by the CA in
	 * CILIATE_TEST_ETCD_PKI (ca.pem, client.pem, client-key.pem). */
	tls = getenv("CILIATE_TEST_ETCD_MTLS");
	ca = getenv("CILIATE_TEST_ETCD_PKI");
	if (!tls || !ca) {
		print_message("(CILIATE_TEST_ETCD_MTLS and CILIATE_TEST_ETCD_PKI not set: client certificates not tested)\n");
		return;
	}
	snprintf(uri, sizeof(uri), "etcd://%s?ca=%s/ca.pem", tls, ca);
	assert_int_equal(store_open(uri, &s, &d), -EACCES);
	print_message("no client certificate: %s\n", d.msg);
	assert_non_null(strstr(d.msg, tls));
	snprintf(uri, sizeof(uri), "etcd://%s?ca=%s/ca.pem&cert=%s/client.pem&key=%s/client-key.pem", tls, ca, ca, ca);
	assert_int_equal(store_open(uri, &s, &d), 0);
	assert_int_equal(store_put(s, "/mtls/a", "1", 1, 0, STORE_ANY_REV, NULL, &d), 0);
	assert_int_equal(store_get(s, "/mtls/a", &kv, &d), 0);
	store_kv_free(&kv);
	store_close(s);
	/* the same through the environment (what --store-ca/--store-cert/--store-key would set) */
	snprintf(uri, sizeof(uri), "%s/ca.pem", ca);
	setenv("CILIATE_STORE_CA", uri, 1);
	snprintf(uri, sizeof(uri), "%s/client.pem", ca);
	setenv("CILIATE_STORE_CERT", uri, 1);
	snprintf(uri, sizeof(uri), "%s/client-key.pem", ca);
	setenv("CILIATE_STORE_KEY", uri, 1);
	snprintf(uri, sizeof(uri), "etcd://%s", tls);
	assert_int_equal(store_open(uri, &s, &d), 0);
	assert_int_equal(store_get(s, "/mtls/a", &kv, &d), 0);
	store_kv_free(&kv);
	store_close(s);
	unsetenv("CILIATE_STORE_CA");
	unsetenv("CILIATE_STORE_CERT");
	unsetenv("CILIATE_STORE_KEY");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_errors),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crud_and_revisions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_from_revision, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_fd_pollable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_list_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_with_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_expiry_other_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_latency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
		cmocka_unit_test_setup_teardown(test_etcd_endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_etcd_watch_failover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_etcd_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_etcd_tls, setup, teardown),
	};

	g_etcd = getenv("CILIATE_TEST_ETCD");
	if (g_etcd && !*g_etcd)
		g_etcd = NULL;
	if (g_etcd)
		print_message("store tests against etcd at %s\n", g_etcd);
	alarm(240); /* a test must never hang */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
