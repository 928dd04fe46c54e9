/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal: the backend interface behind store.h. store.c validates arguments and dispatches
 * here; a backend embeds struct store / struct store_watch as the first member of its own
 * handle types. Adding etcd means one more ops table (see docs/STORE.md).
 */
#ifndef CILIATE_STORE_BACKEND_H
#define CILIATE_STORE_BACKEND_H

#include "store.h"

struct store_backend_ops {
	const char *name;
	void (*close)(struct store *s);
	int (*revision)(struct store *s, int64_t *rev, struct diag *d);
	int (*get)(struct store *s, const char *key, struct store_kv *out, struct diag *d);
	int (*list)(struct store *s, const char *prefix, struct store_list *out, struct diag *d);
	/* *changed gets the number of keys written or deleted (0: no new revision). */
	int (*txn)(struct store *s, const struct store_cmp *cmps, size_t ncmps, const struct store_op *ops,
		   size_t nops, int64_t *rev, size_t *changed, struct diag *d);
	int (*compact)(struct store *s, int64_t revision, struct diag *d);
	size_t (*txn_max)(const struct store *s); /* NULL: STORE_TXN_OPS_MAX */
	int (*ping)(struct store *s, struct diag *d); /* NULL: revision */
	int (*lease_grant)(struct store *s, int64_t ttl_seconds, int64_t *lease, struct diag *d);
	int (*lease_keepalive)(struct store *s, int64_t lease, struct diag *d);
	int (*lease_revoke)(struct store *s, int64_t lease, struct diag *d);
	int (*watch_open)(struct store *s, const char *prefix, int64_t after_rev, struct store_watch **out,
			  struct diag *d);
	int (*watch_next)(struct store_watch *w, int timeout_ms, struct store_event **evs, size_t *n,
			  struct diag *d);
	int (*watch_fd)(const struct store_watch *w);
	void (*watch_close)(struct store_watch *w);
};

struct store {
	const struct store_backend_ops *ops;
};

struct store_watch {
	const struct store_backend_ops *ops;
	struct store *s;
};

/* Opens the embedded file backend on directory dir with "k=v&k=v" options (may be NULL). */
int store_file_open(const char *dir, const char *opts, struct store **out, struct diag *d);

/* Opens the etcd v3 backend: "etcd://host:port[,host:port...][?ca=&cert=&key=]" (store_etcd.c). */
int store_etcd_open(const char *uri, struct store **out, struct diag *d);

/* Copies key/value into a freshly allocated kv (value gets a trailing NUL). */
int store_kv_fill(struct store_kv *kv, const char *key, const void *value, size_t len);

/* Returns the current CLOCK_REALTIME time in milliseconds (lease deadlines are wall-clock). */
int64_t store_now_ms(void);

/* Returns the current CLOCK_MONOTONIC time in milliseconds (for bounding waits). */
int64_t store_mono_ms(void);

#endif
