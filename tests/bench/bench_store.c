/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store operations per second (datapath/store: the embedded file backend or etcd), one JSON
 * line per operation. Every row runs at most N operations (-n, default 2000) or T seconds
 * (-t, default 10), whichever comes first, one at a time from one handle, and reports ops/s
 * (operations done / wall time of the row) and the p50/p99 latency of one operation.
 *
 *   put        store_put of a new key (/bench-store/PID/put/<i>, a 120-byte JSON value, no
 *              condition)
 *   get        store_get of one of those keys (cycling through them)
 *   cas        store_txn with one compare (the key's mod_revision as last written) and one
 *              PUT of that key: a compare-and-swap that succeeds; 100 keys in turn
 *   list1000   store_list of a prefix holding 1000 keys of 120 bytes (written before the row,
 *              in txns of 100 puts)
 *   watch      one put through handle A, then store_watch_next on handle B (its own
 *              connection) until that event arrives: the put-to-delivery round trip, one
 *              event in flight (ops/s = events/s delivered that way)
 *   watch-burst a child process (its own handle) puts N keys back to back while this
 *              process watches them on its handle: events/s = events / (the first put's
 *              start to the last event's delivery); latency = each event's delivery time -
 *              the start of its put (CLOCK_MONOTONIC carried in the value)
 *   lease      store_lease_grant (TTL 30 s) followed by store_lease_keepalive of that lease:
 *              one op = the pair (the leases are left to expire)
 *
 * Usage: bench_store [-n N] [-t SECONDS] [-l LABEL] [-r ROW[,ROW...]] URI
 * Without a URI (make bench runs every binary in build/bench with no arguments): a temporary
 * embedded store with fsync=0, removed afterwards. tests/bench/bench_store.sh runs it against
 * the embedded store and a scratch etcd side by side (docs/PERFORMANCE.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tmpdir.h"

#define LIST_KEYS 1000
#define CAS_KEYS  100

static int max_ops = 2000;
static double max_s = 10.0;
static const char *label = "";
static const char *uri;
static char prefix[64];
static const char *rows_wanted;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, const struct diag *d)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, d ? d->msg : strerror(errno));
	exit(1);
}

/* a 120-byte JSON value like a small object's */
static size_t value(char *buf, size_t sz, int i)
{
	return (size_t)snprintf(buf, sz,
				"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-%06d\",\"namespace\":"
				"\"bench\",\"labels\":{\"app\":\"web\"}},\"spec\":{\"nodeName\":\"n1\"}}",
				i);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* the value at quantile q (0..1) of v[0..n) (sorted in place), nearest rank */
static double quantile_us(int64_t *v, int n, double q)
{
	int k;

	if (n <= 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_i64);
	k = (int)(q * n + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return v[k] / 1e3;
}

static void report(const char *op, int n, int64_t wall_ns, int64_t *lat, const char *extra)
{
	double s = wall_ns / 1e9;

	printf("{\"bench\":\"store\",\"label\":\"%s\",\"uri\":\"%s\",\"op\":\"%s\",\"n\":%d,"
	       "\"seconds\":%.3f,\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f%s%s}\n",
	       label, uri, op, n, s, s > 0 ? n / s : 0, quantile_us(lat, n, 0.50),
	       quantile_us(lat, n, 0.99), extra ? "," : "", extra ? extra : "");
	fflush(stdout);
}

static int wanted(const char *row)
{
	const char *p = rows_wanted;
	size_t l = strlen(row);

	if (!p)
		return 1;
	while (p && *p) {
		if (!strncmp(p, row, l) && (p[l] == ',' || p[l] == '\0'))
			return 1;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return 0;
}

/* the row's loop bound: n ops or the time limit */
#define LOOP(i, t0) for (i = 0; i < max_ops && now_ns() - (t0) < (int64_t)(max_s * 1e9); i++)

static int row_put(struct store *s, int64_t *lat)
{
	struct diag d = {{0}};
	char key[128], val[256];
	int64_t t0 = now_ns(), t;
	int i;

	LOOP(i, t0) {
		size_t vl = value(val, sizeof(val), i);

		snprintf(key, sizeof(key), "%s/put/%06d", prefix, i);
		t = now_ns();
		if (store_put(s, key, val, vl, 0, STORE_ANY_REV, NULL, &d))
			die("put", &d);
		lat[i] = now_ns() - t;
	}
	report("put", i, now_ns() - t0, lat, NULL);
	return i;
}

static void row_get(struct store *s, int64_t *lat, int nkeys)
{
	struct diag d = {{0}};
	struct store_kv kv;
	char key[128];
	int64_t t0 = now_ns(), t;
	int i;

	if (nkeys <= 0)
		return;
	LOOP(i, t0) {
		snprintf(key, sizeof(key), "%s/put/%06d", prefix, i % nkeys);
		t = now_ns();
		if (store_get(s, key, &kv, &d))
			die("get", &d);
		lat[i] = now_ns() - t;
		store_kv_free(&kv);
	}
	report("get", i, now_ns() - t0, lat, NULL);
}

static void row_cas(struct store *s, int64_t *lat)
{
	struct diag d = {{0}};
	char keys[CAS_KEYS][128], val[256];
	int64_t rev[CAS_KEYS], t0, t;
	int i, k;

	for (k = 0; k < CAS_KEYS; k++) {
		size_t vl = value(val, sizeof(val), k);

		snprintf(keys[k], sizeof(keys[k]), "%s/cas/%03d", prefix, k);
		if (store_put(s, keys[k], val, vl, 0, STORE_ANY_REV, &rev[k], &d))
			die("cas set-up", &d);
	}
	t0 = now_ns();
	LOOP(i, t0) {
		size_t vl = value(val, sizeof(val), i);
		struct store_cmp c = {.key = keys[i % CAS_KEYS], .mod_revision = rev[i % CAS_KEYS]};
		struct store_op o = {.type = STORE_OP_PUT, .key = keys[i % CAS_KEYS], .value = val,
				     .value_len = vl};

		t = now_ns();
		if (store_txn(s, &c, 1, &o, 1, &rev[i % CAS_KEYS], &d))
			die("cas txn", &d);
		lat[i] = now_ns() - t;
	}
	report("cas", i, now_ns() - t0, lat, NULL);
}

static void row_list(struct store *s, int64_t *lat)
{
	struct diag d = {{0}};
	struct store_op ops[LIST_KEYS];
	char keys[LIST_KEYS][96], vals[LIST_KEYS][160], lp[96], extra[64];
	struct store_list l;
	int64_t t0, t;
	int i;

	for (i = 0; i < LIST_KEYS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%s/list/%04d", prefix, i);
		ops[i] = (struct store_op){.type = STORE_OP_PUT, .key = keys[i], .value = vals[i],
					   .value_len = value(vals[i], sizeof(vals[i]), i)};
	}
	/* txns of 100 puts (etcd refuses more than 128 ops per txn by default, --max-txn-ops) */
	for (i = 0; i < LIST_KEYS; i += 100)
		if (store_txn(s, NULL, 0, ops + i, LIST_KEYS - i < 100 ? LIST_KEYS - i : 100, NULL, &d))
			die("list set-up", &d);
	snprintf(lp, sizeof(lp), "%s/list/", prefix);
	t0 = now_ns();
	LOOP(i, t0) {
		t = now_ns();
		if (store_list(s, lp, &l, &d))
			die("list", &d);
		lat[i] = now_ns() - t;
		if (l.n != LIST_KEYS) {
			fprintf(stderr, "bench_store: list %s: %zu keys, want %d\n", lp, l.n, LIST_KEYS);
			exit(1);
		}
		store_list_free(&l);
	}
	snprintf(extra, sizeof(extra), "\"keys_per_list\":%d", LIST_KEYS);
	report("list1000", i, now_ns() - t0, lat, extra);
}

/* waits (at most 10 s) for the next event under the watch; returns how many arrived */
static size_t watch_wait(struct store_watch *w, struct store_event **evs)
{
	struct diag d = {{0}};
	size_t n = 0;
	int64_t t0 = now_ns();

	while (!n && now_ns() - t0 < 10 * (int64_t)1000000000) {
		if (store_watch_next(w, 1000, evs, &n, &d))
			die("watch_next", &d);
	}
	return n;
}

static void row_watch(struct store *s, int64_t *lat)
{
	struct diag d = {{0}};
	struct store *s2;
	struct store_watch *w;
	struct store_event *evs;
	char key[128], val[256], wp[96];
	int64_t rev, t0, t;
	size_t n;
	int i;

	if (store_open(uri, &s2, &d))
		die("open the watcher's handle", &d);
	snprintf(wp, sizeof(wp), "%s/watch/", prefix);
	if (store_revision(s, &rev, &d) || store_watch_open(s2, wp, rev, &w, &d))
		die("watch_open", &d);
	t0 = now_ns();
	LOOP(i, t0) {
		size_t vl = value(val, sizeof(val), i);

		snprintf(key, sizeof(key), "%s%06d", wp, i);
		t = now_ns();
		if (store_put(s, key, val, vl, 0, STORE_ANY_REV, NULL, &d))
			die("watch put", &d);
		n = watch_wait(w, &evs);
		lat[i] = now_ns() - t;
		if (n != 1 || strcmp(evs[0].kv.key, key)) {
			fprintf(stderr, "bench_store: watch: %zu events (want 1: %s)\n", n, key);
			exit(1);
		}
		store_events_free(evs, n);
	}
	report("watch", i, now_ns() - t0, lat, NULL);
	store_watch_close(w);
	store_close(s2);
}

static void row_watch_burst(struct store *s, int64_t *lat)
{
	struct diag d = {{0}};
	struct store_watch *w;
	struct store_event *evs;
	char wp[96], donekey[128], extra[96];
	int64_t rev, t0 = 0, tlast = 0, tfirst = 0, tput, deadline;
	int got = 0, sent = -1, status;
	size_t n, k;
	pid_t pid;

	snprintf(wp, sizeof(wp), "%s/burst/", prefix);
	snprintf(donekey, sizeof(donekey), "%sdone", wp);
	if (store_revision(s, &rev, &d) || store_watch_open(s, wp, rev, &w, &d))
		die("watch_open", &d);
	t0 = now_ns();
	pid = fork();
	if (pid < 0)
		die("fork", NULL);
	if (pid == 0) { /* the writer: its own handle */
		struct store *sc;
		char key[128], val[64];
		int i;

		if (store_open(uri, &sc, &d)) {
			fprintf(stderr, "bench_store: writer: %s\n", d.msg);
			_exit(1);
		}
		LOOP(i, t0) {
			snprintf(key, sizeof(key), "%s%06d", wp, i);
			snprintf(val, sizeof(val), "%lld", (long long)now_ns());
			if (store_put(sc, key, val, strlen(val), 0, STORE_ANY_REV, NULL, &d)) {
				fprintf(stderr, "bench_store: writer: %s\n", d.msg);
				_exit(1);
			}
		}
		snprintf(val, sizeof(val), "%d", i);
		if (store_put(sc, donekey, val, strlen(val), 0, STORE_ANY_REV, NULL, &d))
			_exit(1);
		store_close(sc);
		_exit(0);
	}
	deadline = now_ns() + (int64_t)((max_s + 20) * 1e9);
	while ((sent < 0 || got < sent) && now_ns() < deadline) {
		if (store_watch_next(w, 1000, &evs, &n, &d))
			die("watch_next", &d);
		for (k = 0; k < n; k++) {
			if (!strcmp(evs[k].kv.key, donekey)) {
				sent = atoi(evs[k].kv.value);
				continue;
			}
			tlast = now_ns();
			tput = strtoll(evs[k].kv.value, NULL, 10);
			if (!got)
				tfirst = tput;
			if (got < max_ops)
				lat[got] = tlast - tput;
			got++;
		}
		store_events_free(evs, n);
		if (!n && sent < 0 && waitpid(pid, &status, WNOHANG) == pid) {
			pid = 0;
			if (!WIFEXITED(status) || WEXITSTATUS(status)) {
				fprintf(stderr, "bench_store: watch-burst writer failed\n");
				exit(1);
			}
		}
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	store_watch_close(w);
	if (sent < 0 || got != sent) {
		fprintf(stderr, "bench_store: watch-burst: %d events delivered, %d put\n", got, sent);
		exit(1);
	}
	snprintf(extra, sizeof(extra), "\"events\":%d", got);
	report("watch-burst", got, tlast - tfirst, lat, extra);
}

static void row_lease(struct store *s, int64_t *lat)
{
	struct diag d = {{0}};
	int64_t t0 = now_ns(), t, id;
	int i;

	LOOP(i, t0) {
		t = now_ns();
		if (store_lease_grant(s, 30, &id, &d) || store_lease_keepalive(s, id, &d))
			die("lease", &d);
		lat[i] = now_ns() - t;
	}
	report("lease", i, now_ns() - t0, lat, NULL);
}

int main(int argc, char **argv)
{
	struct diag d = {{0}};
	struct store *s;
	char dir[64] = "", own_uri[128];
	int64_t *lat;
	int c, nput = 0;

	while ((c = getopt(argc, argv, "n:t:l:r:")) != -1) {
		switch (c) {
		case 'n':
			max_ops = atoi(optarg);
			break;
		case 't':
			max_s = atof(optarg);
			break;
		case 'l':
			label = optarg;
			break;
		case 'r':
			rows_wanted = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench_store [-n N] [-t SECONDS] [-l LABEL] "
					"[-r put,get,cas,list1000,watch,watch-burst,lease] [URI]\n");
			return 2;
		}
	}
	if (max_ops < 1 || max_ops > 1000000 || max_s <= 0) {
		fprintf(stderr, "bench_store: -n 1..1000000, -t > 0\n");
		return 2;
	}
	if (optind < argc) {
		uri = argv[optind];
	} else {
		strcpy(dir, "/tmp/ciliate-bench-store-XXXXXX");
		if (!mkdtemp(dir))
			die("mkdtemp", NULL);
		snprintf(own_uri, sizeof(own_uri), "file://%s?fsync=0", dir);
		uri = own_uri;
		if (!*label)
			label = "file fsync=0";
	}
	snprintf(prefix, sizeof(prefix), "/bench-store/%d", (int)getpid());
	lat = calloc(max_ops, sizeof(*lat));
	if (!lat)
		die("calloc", NULL);
	if (store_open(uri, &s, &d))
		die(uri, &d);
	if (wanted("put") || wanted("get"))
		nput = row_put(s, lat);
	if (wanted("get"))
		row_get(s, lat, nput);
	if (wanted("cas"))
		row_cas(s, lat);
	if (wanted("list1000"))
		row_list(s, lat);
	if (wanted("watch"))
		row_watch(s, lat);
	if (wanted("watch-burst"))
		row_watch_burst(s, lat);
	if (wanted("lease"))
		row_lease(s, lat);
	store_close(s);
	free(lat);
	if (*dir)
		test_rm_dir(dir);
	return 0;
}
