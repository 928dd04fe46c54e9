/* SPDX-License-Identifier: Apache-2.0 */
/* The backend-neutral front of the store: URI dispatch, argument checks, helpers. */
#include "store_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_TTL_MAX (10LL * 365 * 24 * 3600)

int64_t store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t store_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_kv_fill(struct store_kv *kv, const char *key, const void *value, size_t len)
{
	kv->key = strdup(key);
	kv->value = malloc(len + 1);
	if (!kv->key || !kv->value) {
		free(kv->key);
		free(kv->value);
		kv->key = NULL;
		kv->value = NULL;
		return -ENOMEM;
	}
	if (len)
		memcpy(kv->value, value, len);
	kv->value[len] = '\0';
	kv->value_len = len;
	return 0;
}

void store_kv_free(struct store_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void store_list_free(struct store_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		store_kv_free(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

void store_events_free(struct store_event *evs, size_t n)
{
	size_t i;

	if (!evs)
		return;
	for (i = 0; i < n; i++)
		store_kv_free(&evs[i].kv);
	free(evs);
}

const char *store_event_type_str(enum store_event_type t)
{
	switch (t) {
	case STORE_EVENT_PUT:
		return "PUT";
	case STORE_EVENT_DELETE:
		return "DELETE";
	}
	return "UNKNOWN";
}

static int check_key(const char *key, const char *what, struct diag *d)
{
	size_t i, len;

	if (!key || !*key)
		return diag_fail(d, "store: %s: key is empty", what);
	len = strlen(key);
	if (len > STORE_KEY_MAX)
		return diag_fail(d, "store: %s: key is %zu bytes (max %d)", what, len, STORE_KEY_MAX);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];

		if (c < 0x20 || c == 0x7f)
			return diag_fail(d, "store: %s: key \"%.64s\" has a control character at byte %zu",
					 what, key, i);
	}
	return 0;
}

static int check_prefix(const char *prefix, struct diag *d)
{
	if (!prefix)
		return diag_fail(d, "store: prefix is NULL (use \"\" for every key)");
	if (!*prefix)
		return 0;
	return check_key(prefix, "prefix", d);
}

int store_open(const char *uri, struct store **out, struct diag *d)
{
	char path[4096];
	const char *rest, *q, *scheme_end;
	size_t plen;

	*out = NULL;
	if (!uri || !*uri)
		uri = STORE_DEFAULT_URI;
	scheme_end = strstr(uri, "://");
	if (store_uri_is_etcd(uri))
		return store_etcd_open(uri, out, d); /* store_etcd.c */
	if (scheme_end && strncmp(uri, "file://", 7))
		return diag_fail(d, "store %s: unknown scheme (want file:///dir, a directory path or etcd://host:port)",
				 uri);
	rest = uri;
	if (scheme_end) {
		rest = uri + 7;
		if (!strncmp(rest, "localhost/", 10))
			rest += 9;
		if (*rest != '/')
			return diag_fail(d, "store %s: file URI must have an absolute path (file:///dir)", uri);
	}
	q = strchr(rest, '?');
	plen = q ? (size_t)(q - rest) : strlen(rest);
	if (plen == 0)
		return diag_fail(d, "store %s: empty directory path", uri);
	if (plen >= sizeof(path))
		return diag_fail(d, "store %s: path too long", uri);
	memcpy(path, rest, plen);
	path[plen] = '\0';
	return store_file_open(path, q ? q + 1 : NULL, out, d);
}

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

bool store_uri_is_etcd(const char *uri)
{
	return uri && strstr(uri, "://") && (!strncmp(uri, "etcd", 4) || !strncmp(uri, "http", 4));
}

int store_ping(struct store *s, struct diag *d)
{
	int64_t rev;

	return s->ops->ping ? s->ops->ping(s, d) : s->ops->revision(s, &rev, d);
}

size_t store_txn_max(const struct store *s)
{
	size_t n = s->ops->txn_max ? s->ops->txn_max(s) : STORE_TXN_OPS_MAX;

	return n > STORE_TXN_OPS_MAX ? STORE_TXN_OPS_MAX : n < 4 ? 4 : n;
}

int store_revision(struct store *s, int64_t *rev, struct diag *d)
{
	return s->ops->revision(s, rev, d);
}

int store_get(struct store *s, const char *key, struct store_kv *out, struct diag *d)
{
	int err;

	memset(out, 0, sizeof(*out));
	err = check_key(key, "get", d);
	if (err)
		return err;
	return s->ops->get(s, key, out, d);
}

int store_list(struct store *s, const char *prefix, struct store_list *out, struct diag *d)
{
	int err;

	memset(out, 0, sizeof(*out));
	err = check_prefix(prefix, d);
	if (err)
		return err;
	return s->ops->list(s, prefix, out, d);
}

static int check_value(const char *key, const void *value, size_t len, int64_t lease, struct diag *d)
{
	if (!value && len)
		return diag_fail(d, "store: put %s: value is NULL with length %zu", key, len);
	if (len > STORE_VALUE_MAX)
		return diag_fail(d, "store: put %s: value is %zu bytes (max %u)", key, len, STORE_VALUE_MAX);
	if (lease < 0)
		return diag_fail(d, "store: put %s: invalid lease id %lld", key, (long long)lease);
	return 0;
}

static int check_cond(const char *key, int64_t if_mod_rev, struct diag *d)
{
	if (if_mod_rev < 0 && if_mod_rev != STORE_ANY_REV)
		return diag_fail(d, "store: %s: invalid expected mod_revision %lld", key, (long long)if_mod_rev);
	return 0;
}

int store_put(struct store *s, const char *key, const void *value, size_t value_len, int64_t lease,
	      int64_t if_mod_rev, int64_t *rev, struct diag *d)
{
	struct store_cmp cmp = { .key = key, .mod_revision = if_mod_rev };
	struct store_op op = {
		.type = STORE_OP_PUT, .key = key, .value = value, .value_len = value_len, .lease = lease,
	};
	size_t changed;
	int err;

	err = check_key(key, "put", d);
	if (!err)
		err = check_value(key, value, value_len, lease, d);
	if (!err)
		err = check_cond(key, if_mod_rev, d);
	if (err)
		return err;
	return s->ops->txn(s, &cmp, if_mod_rev == STORE_ANY_REV ? 0 : 1, &op, 1, rev, &changed, d);
}

int store_delete(struct store *s, const char *key, int64_t if_mod_rev, int64_t *rev, struct diag *d)
{
	struct store_cmp cmp = { .key = key, .mod_revision = if_mod_rev };
	struct store_op op = { .type = STORE_OP_DELETE, .key = key };
	size_t changed = 0;
	int err;

	err = check_key(key, "delete", d);
	if (!err)
		err = check_cond(key, if_mod_rev, d);
	if (err)
		return err;
	err = s->ops->txn(s, &cmp, if_mod_rev == STORE_ANY_REV ? 0 : 1, &op, 1, rev, &changed, d);
	if (!err && !changed)
		return diag_fail_errno(d, -ENOENT, "store: delete %s: no such key", key);
	return err;
}

int store_txn(struct store *s, const struct store_cmp *cmps, size_t ncmps, const struct store_op *ops,
	      size_t nops, int64_t *rev, struct diag *d)
{
	size_t i, j, changed;
	int err;

	if (ncmps > STORE_TXN_OPS_MAX || nops > STORE_TXN_OPS_MAX)
		return diag_fail(d, "store: txn has %zu compares and %zu ops (max %d each)", ncmps, nops,
				 STORE_TXN_OPS_MAX);
	if ((ncmps && !cmps) || (nops && !ops))
		return diag_fail(d, "store: txn: NULL compare or op array");
	for (i = 0; i < ncmps; i++) {
		err = check_key(cmps[i].key, "txn compare", d);
		if (err)
			return err;
		if (cmps[i].mod_revision < 0)
			return diag_fail(d, "store: txn compare %s: invalid mod_revision %lld", cmps[i].key,
					 (long long)cmps[i].mod_revision);
	}
	for (i = 0; i < nops; i++) {
		err = check_key(ops[i].key, "txn op", d);
		if (err)
			return err;
		if (ops[i].type == STORE_OP_PUT) {
			err = check_value(ops[i].key, ops[i].value, ops[i].value_len, ops[i].lease, d);
			if (err)
				return err;
		} else if (ops[i].type != STORE_OP_DELETE) {
			return diag_fail(d, "store: txn op %zu (%s): unknown type %d", i, ops[i].key,
					 (int)ops[i].type);
		}
		for (j = 0; j < i; j++)
			if (!strcmp(ops[i].key, ops[j].key))
				return diag_fail(d, "store: txn: key %s appears in more than one op", ops[i].key);
	}
	return s->ops->txn(s, cmps, ncmps, ops, nops, rev, &changed, d);
}

int store_compact(struct store *s, int64_t revision, struct diag *d)
{
	if (revision < 0)
		return diag_fail(d, "store: compact: invalid revision %lld", (long long)revision);
	return s->ops->compact(s, revision, d);
}

int store_lease_grant(struct store *s, int64_t ttl_seconds, int64_t *lease, struct diag *d)
{
	if (ttl_seconds <= 0 || ttl_seconds > STORE_TTL_MAX)
		return diag_fail(d, "store: lease ttl %lld s out of range (1..%lld)", (long long)ttl_seconds,
				 STORE_TTL_MAX);
	return s->ops->lease_grant(s, ttl_seconds, lease, d);
}

int store_lease_keepalive(struct store *s, int64_t lease, struct diag *d)
{
	if (lease <= 0)
		return diag_fail_errno(d, -ENOENT, "store: lease %lld not found", (long long)lease);
	return s->ops->lease_keepalive(s, lease, d);
}

int store_lease_revoke(struct store *s, int64_t lease, struct diag *d)
{
	if (lease <= 0)
		return diag_fail_errno(d, -ENOENT, "store: lease %lld not found", (long long)lease);
	return s->ops->lease_revoke(s, lease, d);
}

int store_watch_open(struct store *s, const char *prefix, int64_t after_rev, struct store_watch **out,
		     struct diag *d)
{
	int err;

	*out = NULL;
	err = check_prefix(prefix, d);
	if (err)
		return err;
	if (after_rev < 0)
		return diag_fail(d, "store: watch %s: invalid start revision %lld", prefix, (long long)after_rev);
	return s->ops->watch_open(s, prefix, after_rev, out, d);
}

int store_watch_next(struct store_watch *w, int timeout_ms, struct store_event **evs, size_t *n,
		     struct diag *d)
{
	*evs = NULL;
	*n = 0;
	return w->ops->watch_next(w, timeout_ms, evs, n, d);
}

int store_watch_fd(const struct store_watch *w)
{
	return w->ops->watch_fd(w);
}

void store_watch_close(struct store_watch *w)
{
	if (w)
		w->ops->watch_close(w);
}
