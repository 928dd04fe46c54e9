/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store: a small key/value store with etcd v3 semantics that holds the cluster's objects
 * (`ciliate apply` writes them, every agent lists and watches them).
 *
 * Model (the same as etcd v3, see docs/STORE.md):
 * - keys are NUL-free strings, e.g. "/ciliate/objects/<kind>/<namespace>/<name>"; values are
 *   byte strings (normally JSON documents);
 * - one global revision counts writes: every successful put, delete or txn that changes at
 *   least one key bumps it by exactly one (all changes of one txn share that revision);
 * - each key records create_revision, mod_revision and version (writes since creation);
 * - a watch delivers PUT/DELETE events in revision order, starting *after* a given revision,
 *   so `store_list()` followed by `store_watch_open(..., list.revision, ...)` misses nothing;
 * - leases: a key put with a lease is deleted (with a DELETE event) when the lease expires.
 *
 * Backends: "file:///path" or a plain path (embedded, multi-process safe, store_file.c) and
 * "etcd://host:port[,host:port...]" (etcd v3 through its JSON gateway, store_etcd.c).
 *
 * All functions return 0 or a negative errno and fill the diag on error. Common codes:
 * -ENOENT (no such key / lease), -ECANCELED (a compare failed: nothing was written),
 * -ESTALE (watch start revision was compacted: re-list), -ENOTSUP (backend not available).
 * A handle is used by one thread at a time; after fork() the child must open its own handle.
 */
#ifndef CILIATE_STORE_H
#define CILIATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/diag.h"

#define STORE_KEY_MAX     4096             /* bytes, excluding the NUL */
#define STORE_VALUE_MAX   (8u << 20)       /* bytes per value */
#define STORE_TXN_OPS_MAX 1024             /* compares or ops per txn */
#define STORE_ANY_REV     ((int64_t)-1)    /* "no condition" for put/delete */
#define STORE_DEFAULT_URI "file:///var/lib/ciliate/store"

struct store;       /* opaque handle */
struct store_watch; /* opaque watch */

struct store_kv {
	char *key;
	char *value;     /* value_len bytes, followed by a NUL that is not counted */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version; /* 1 on creation, +1 per put */
	int64_t lease;   /* 0: none */
};

struct store_list {
	struct store_kv *items; /* sorted by key */
	size_t n;
	int64_t revision;       /* the store revision this list reflects */
};

enum store_event_type {
	STORE_EVENT_PUT = 1,
	STORE_EVENT_DELETE = 2,
};

struct store_event {
	enum store_event_type type;
	int64_t revision;   /* == kv.mod_revision */
	struct store_kv kv; /* DELETE: key set, value "" and create_revision/version/lease 0 */
};

/* A txn compare: the key's mod_revision must equal mod_revision (0: key must not exist). */
struct store_cmp {
	const char *key;
	int64_t mod_revision;
};

enum store_op_type {
	STORE_OP_PUT = 1,
	STORE_OP_DELETE = 2,
};

struct store_op {
	enum store_op_type type;
	const char *key;
	const void *value; /* PUT only */
	size_t value_len;  /* PUT only */
	int64_t lease;     /* PUT only; 0: none */
};

/* Opens the store at uri ("file:///dir[?opts]", "/dir", "etcd://..."); see docs/STORE.md. */
int store_open(const char *uri, struct store **out, struct diag *d);

/* True if store_open would open uri with the etcd backend (etcd://, etcd+http(s)://, http(s)://). */
bool store_uri_is_etcd(const char *uri);

/* Closes the handle (open watches must be closed first). NULL is a no-op. */
void store_close(struct store *s);

/* Reads the current store revision into *rev. */
int store_revision(struct store *s, int64_t *rev, struct diag *d);

/* Reads one key into *out (free with store_kv_free); -ENOENT when absent. */
int store_get(struct store *s, const char *key, struct store_kv *out, struct diag *d);

/* Lists every key starting with prefix ("" for all), sorted, plus the revision it reflects. */
int store_list(struct store *s, const char *prefix, struct store_list *out, struct diag *d);

/* Writes key=value (lease 0: none); if_mod_rev: STORE_ANY_REV, 0 (create only) or the
 * mod_revision the key must have (compare-and-swap). *rev (may be NULL) gets the new revision. */
int store_put(struct store *s, const char *key, const void *value, size_t value_len, int64_t lease,
	      int64_t if_mod_rev, int64_t *rev, struct diag *d);

/* Deletes key (-ENOENT if absent), optionally only if its mod_revision equals if_mod_rev. */
int store_delete(struct store *s, const char *key, int64_t if_mod_rev, int64_t *rev, struct diag *d);

/* If every compare holds, applies every op atomically at one new revision (deleting an absent
 * key is a no-op; no change means no new revision); else -ECANCELED and nothing is written.
 * A key may appear in at most one op. *rev (may be NULL) gets the resulting store revision. */
int store_txn(struct store *s, const struct store_cmp *cmps, size_t ncmps, const struct store_op *ops,
	      size_t nops, int64_t *rev, struct diag *d);

/* 0 when the store answers (etcd: any member, without needing its leader: for health checks;
 * the embedded one: its state is readable). */
int store_ping(struct store *s, struct diag *d);

/* The most compares, and the most ops, one txn may carry on this store: STORE_TXN_OPS_MAX for
 * the embedded one, etcd's --max-txn-ops (128 by default; max-txn-ops= in the URI when the
 * server was started with more). Callers writing many keys split their txns by it. */
size_t store_txn_max(const struct store *s);

/* Discards history up to and including revision: later watches need after_rev >= revision. */
int store_compact(struct store *s, int64_t revision, struct diag *d);

/* Creates a lease that expires ttl_seconds after its last keepalive; *lease gets its id. */
int store_lease_grant(struct store *s, int64_t ttl_seconds, int64_t *lease, struct diag *d);

/* Restarts the lease's ttl; -ENOENT if it already expired or never existed. */
int store_lease_keepalive(struct store *s, int64_t lease, struct diag *d);

/* Revokes the lease now, deleting its keys; -ENOENT if unknown. */
int store_lease_revoke(struct store *s, int64_t lease, struct diag *d);

/* Starts a watch of every key under prefix for events with revision > after_rev. */
int store_watch_open(struct store *s, const char *prefix, int64_t after_rev, struct store_watch **out,
		     struct diag *d);

/* Waits up to timeout_ms (<0: forever, 0: poll) for events; *evs and *n get a batch in revision
 * order (n == 0 on timeout; free with store_events_free). -ESTALE: compacted, re-list. */
int store_watch_next(struct store_watch *w, int timeout_ms, struct store_event **evs, size_t *n,
		     struct diag *d);

/* A pollable fd that turns readable when store_watch_next may have work (incl. lease expiry). */
int store_watch_fd(const struct store_watch *w);

/* Stops the watch. NULL is a no-op. */
void store_watch_close(struct store_watch *w);

/* Frees the members of kv (not kv itself) and zeroes it. */
void store_kv_free(struct store_kv *kv);

/* Frees the items of a list and zeroes it. */
void store_list_free(struct store_list *l);

/* Frees an event batch returned by store_watch_next. */
void store_events_free(struct store_event *evs, size_t n);

/* Returns a static name for an event type ("PUT", "DELETE"). */
const char *store_event_type_str(enum store_event_type t);

#endif
