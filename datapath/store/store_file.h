/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the embedded file backend: the in-memory state every handle rebuilds from the
 * log (keys + leases), and the JSON encoding of log records. On-disk format: docs/STORE.md.
 */
#ifndef CILIATE_STORE_FILE_H
#define CILIATE_STORE_FILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct fs_entry {
	struct fs_entry *next;
	uint64_t hash;
	struct store_kv kv;
};

struct fs_lease {
	int64_t id;
	int64_t ttl;         /* seconds */
	int64_t deadline_ms; /* CLOCK_REALTIME ms */
};

struct fs_state {
	struct fs_entry **buckets;
	size_t nbuckets;
	size_t n;
	struct fs_lease *leases;
	size_t nleases;
	size_t cap_leases;
	int64_t seq;         /* last applied log record */
	int64_t rev;         /* store revision */
	int64_t compact_rev; /* history up to here is gone */
	int64_t next_lease;
};

/* Frees everything in st and leaves it empty (usable again). */
void fs_state_reset(struct fs_state *st);

/* Finds the entry for key, or NULL. */
struct fs_entry *fs_state_find(const struct fs_state *st, const char *key);

/* Finds the lease with this id, or NULL. */
struct fs_lease *fs_state_lease(const struct fs_state *st, int64_t id);

/* Returns the earliest lease deadline (ms), or INT64_MAX when there is no lease. */
int64_t fs_state_next_deadline(const struct fs_state *st);

/* Returns the id of a lease whose deadline is <= now_ms, or 0. */
int64_t fs_state_expired_lease(const struct fs_state *st, int64_t now_ms);

/* Copies every key under prefix into out (sorted by key); out->revision = st->rev. */
int fs_state_list(const struct fs_state *st, const char *prefix, struct store_list *out);

/* Applies one log record (a parsed line); malformed ops are skipped. */
int fs_state_apply(struct fs_state *st, json_t *rec);

/* Replaces st with the snapshot in a log header line. */
int fs_state_load_snapshot(struct fs_state *st, json_t *hdr);

/* Builds a log header line holding st as a snapshot, with the given compact revision. */
json_t *fs_state_snapshot(const struct fs_state *st, int64_t compact_rev);

/* Sets "value" (UTF-8 text) or "value64" (base64, anything else) in obj; 0 or -ENOMEM. */
int fs_json_set_value(json_t *obj, const void *value, size_t len);

/* Decodes the value of obj into a malloc'ed NUL-terminated buffer; 0, -EINVAL or -ENOMEM. */
int fs_json_get_value(json_t *obj, char **value, size_t *len);

/* Reads an integer member, or def when it is missing or not an integer. */
int64_t fs_json_int(json_t *obj, const char *name, int64_t def);

#endif
