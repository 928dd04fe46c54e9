/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded backend's in-memory state (a hash of keys plus leases) and its JSON codec. */
#include "store_file.h"
#include "store_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FS_MIN_BUCKETS 64

static uint64_t fs_hash(const char *key)
{
	uint64_t h = 1469598103934665603ULL;

	while (*key) {
		h ^= (unsigned char)*key++;
		h *= 1099511628211ULL;
	}
	return h;
}

void fs_state_reset(struct fs_state *st)
{
	struct fs_entry *e, *next;
	size_t i;

	for (i = 0; i < st->nbuckets; i++) {
		for (e = st->buckets[i]; e; e = next) {
			next = e->next;
			store_kv_free(&e->kv);
			free(e);
		}
	}
	free(st->buckets);
	free(st->leases);
	memset(st, 0, sizeof(*st));
	st->next_lease = 1;
}

struct fs_entry *fs_state_find(const struct fs_state *st, const char *key)
{
	struct fs_entry *e;
	uint64_t h;

	if (!st->nbuckets)
		return NULL;
	h = fs_hash(key);
	for (e = st->buckets[h & (st->nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && !strcmp(e->kv.key, key))
			return e;
	return NULL;
}

static int fs_state_grow(struct fs_state *st)
{
	struct fs_entry **nb, *e, *next;
	size_t nn = st->nbuckets ? st->nbuckets * 2 : FS_MIN_BUCKETS, i;

	nb = calloc(nn, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	for (i = 0; i < st->nbuckets; i++) {
		for (e = st->buckets[i]; e; e = next) {
			next = e->next;
			e->next = nb[e->hash & (nn - 1)];
			nb[e->hash & (nn - 1)] = e;
		}
	}
	free(st->buckets);
	st->buckets = nb;
	st->nbuckets = nn;
	return 0;
}

/* Inserts or replaces key; takes ownership of value (malloc'ed, NUL-terminated). */
static int fs_state_put(struct fs_state *st, const char *key, char *value, size_t len, int64_t create_rev,
			int64_t mod_rev, int64_t version, int64_t lease)
{
	struct fs_entry *e = fs_state_find(st, key);
	int err = 0;

	if (!e) {
		if (st->n >= st->nbuckets) {
			err = fs_state_grow(st);
			if (err)
				goto out;
		}
		e = calloc(1, sizeof(*e));
		if (e)
			e->kv.key = strdup(key);
		if (!e || !e->kv.key) {
			free(e);
			err = -ENOMEM;
			goto out;
		}
		e->hash = fs_hash(key);
		e->next = st->buckets[e->hash & (st->nbuckets - 1)];
		st->buckets[e->hash & (st->nbuckets - 1)] = e;
		st->n++;
	}
	free(e->kv.value);
	e->kv.value = value;
	value = NULL;
	e->kv.value_len = len;
	e->kv.create_revision = create_rev;
	e->kv.mod_revision = mod_rev;
	e->kv.version = version;
	e->kv.lease = lease;
out:
	free(value);
	return err;
}

static void fs_state_del(struct fs_state *st, const char *key)
{
	struct fs_entry **pp, *e;
	uint64_t h;

	if (!st->nbuckets)
		return;
	h = fs_hash(key);
	for (pp = &st->buckets[h & (st->nbuckets - 1)]; (e = *pp); pp = &e->next) {
		if (e->hash == h && !strcmp(e->kv.key, key)) {
			*pp = e->next;
			store_kv_free(&e->kv);
			free(e);
			st->n--;
			return;
		}
	}
}

struct fs_lease *fs_state_lease(const struct fs_state *st, int64_t id)
{
	size_t i;

	for (i = 0; i < st->nleases; i++)
		if (st->leases[i].id == id)
			return &st->leases[i];
	return NULL;
}

static int fs_state_lease_set(struct fs_state *st, int64_t id, int64_t ttl, int64_t deadline_ms)
{
	struct fs_lease *l = fs_state_lease(st, id), *nl;

	if (!l) {
		if (st->nleases == st->cap_leases) {
			size_t nc = st->cap_leases ? st->cap_leases * 2 : 16;

			nl = realloc(st->leases, nc * sizeof(*nl));
			if (!nl)
				return -ENOMEM;
			st->leases = nl;
			st->cap_leases = nc;
		}
		l = &st->leases[st->nleases++];
		l->id = id;
	}
	l->ttl = ttl;
	l->deadline_ms = deadline_ms;
	if (id >= st->next_lease)
		st->next_lease = id + 1;
	return 0;
}

static void fs_state_lease_del(struct fs_state *st, int64_t id)
{
	struct fs_lease *l = fs_state_lease(st, id);

	if (l)
		*l = st->leases[--st->nleases];
}

int64_t fs_state_next_deadline(const struct fs_state *st)
{
	int64_t min = INT64_MAX;
	size_t i;

	for (i = 0; i < st->nleases; i++)
		if (st->leases[i].deadline_ms < min)
			min = st->leases[i].deadline_ms;
	return min;
}

int64_t fs_state_expired_lease(const struct fs_state *st, int64_t now_ms)
{
	size_t i;

	for (i = 0; i < st->nleases; i++)
		if (st->leases[i].deadline_ms <= now_ms)
			return st->leases[i].id;
	return 0;
}

static int fs_kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_kv *)a)->key, ((const struct store_kv *)b)->key);
}

static int fs_entry_ptr_cmp(const void *a, const void *b)
{
	const struct fs_entry *x = *(const struct fs_entry *const *)a;
	const struct fs_entry *y = *(const struct fs_entry *const *)b;

	return strcmp(x->kv.key, y->kv.key);
}

int fs_state_list(const struct fs_state *st, const char *prefix, struct store_list *out)
{
	size_t plen = strlen(prefix), i, cap = 0;
	struct store_kv *items = NULL, *ni;
	struct fs_entry *e;
	int err = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < st->nbuckets; i++) {
		for (e = st->buckets[i]; e; e = e->next) {
			struct store_kv *kv;

			if (strncmp(e->kv.key, prefix, plen))
				continue;
			if (out->n == cap) {
				cap = cap ? cap * 2 : 16;
				ni = realloc(items, cap * sizeof(*ni));
				if (!ni) {
					err = -ENOMEM;
					goto out;
				}
				items = ni;
			}
			kv = &items[out->n];
			*kv = e->kv;
			err = store_kv_fill(kv, e->kv.key, e->kv.value, e->kv.value_len);
			if (err)
				goto out;
			out->n++;
		}
	}
	if (out->n)
		qsort(items, out->n, sizeof(*items), fs_kv_cmp);
out:
	out->items = items;
	out->revision = st->rev;
	if (err)
		store_list_free(out);
	return err;
}

int64_t fs_json_int(json_t *obj, const char *name, int64_t def)
{
	json_t *v = json_object_get(obj, name);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *in, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		*p++ = b64[in[i] >> 2];
		*p++ = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*p++ = b64[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*p++ = b64[in[i + 2] & 63];
	}
	if (i < len) {
		*p++ = b64[in[i] >> 2];
		if (i + 1 < len) {
			*p++ = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			*p++ = b64[(in[i + 1] & 15) << 2];
		} else {
			*p++ = b64[(in[i] & 3) << 4];
			*p++ = '=';
		}
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

static int b64_decode(const char *in, size_t inlen, char **out, size_t *outlen)
{
	unsigned char *buf;
	size_t i, n = 0;
	uint32_t acc = 0;
	int bits = 0, v, err = -EINVAL;

	if (inlen % 4)
		return -EINVAL;
	buf = malloc(inlen / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < inlen; i++) {
		if (in[i] == '=') {
			if (i + 2 < inlen || (i + 1 < inlen && in[i + 1] != '='))
				goto out;
			break;
		}
		v = b64_val(in[i]);
		if (v < 0)
			goto out;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
		}
	}
	buf[n] = '\0';
	*out = (char *)buf;
	*outlen = n;
	buf = NULL;
	err = 0;
out:
	free(buf);
	return err;
}

int fs_json_set_value(json_t *obj, const void *value, size_t len)
{
	json_t *s = json_stringn(len ? value : "", len);
	char *enc;

	if (s)
		return json_object_set_new(obj, "value", s) ? -ENOMEM : 0;
	enc = b64_encode(value, len);
	if (!enc)
		return -ENOMEM;
	s = json_string(enc);
	free(enc);
	if (!s)
		return -ENOMEM;
	return json_object_set_new(obj, "value64", s) ? -ENOMEM : 0;
}

int fs_json_get_value(json_t *obj, char **value, size_t *len)
{
	json_t *v = json_object_get(obj, "value");
	size_t n;

	if (json_is_string(v)) {
		n = json_string_length(v);
		*value = malloc(n + 1);
		if (!*value)
			return -ENOMEM;
		memcpy(*value, json_string_value(v), n);
		(*value)[n] = '\0';
		*len = n;
		return 0;
	}
	v = json_object_get(obj, "value64");
	if (json_is_string(v))
		return b64_decode(json_string_value(v), json_string_length(v), value, len);
	return -EINVAL;
}

static int fs_apply_put(struct fs_state *st, json_t *op, int64_t rev)
{
	const char *key = json_string_value(json_object_get(op, "key"));
	char *value;
	size_t len;
	int err;

	if (!key)
		return 0;
	err = fs_json_get_value(op, &value, &len);
	if (err)
		return err == -ENOMEM ? err : 0;
	return fs_state_put(st, key, value, len, fs_json_int(op, "create_rev", rev), rev,
			    fs_json_int(op, "version", 1), fs_json_int(op, "lease", 0));
}

int fs_state_apply(struct fs_state *st, json_t *rec)
{
	int64_t rev = fs_json_int(rec, "rev", -1), t = fs_json_int(rec, "t", 0);
	json_t *ops = json_object_get(rec, "ops"), *op;
	struct fs_lease *l;
	const char *type;
	size_t i;
	int err = 0;

	if (rev < 0 || !json_is_array(ops))
		return 0;
	json_array_foreach(ops, i, op) {
		type = json_string_value(json_object_get(op, "op"));
		if (!type)
			continue;
		if (!strcmp(type, "put")) {
			err = fs_apply_put(st, op, rev);
		} else if (!strcmp(type, "del")) {
			const char *key = json_string_value(json_object_get(op, "key"));

			if (key)
				fs_state_del(st, key);
		} else if (!strcmp(type, "grant")) {
			int64_t ttl = fs_json_int(op, "ttl", 0);

			err = fs_state_lease_set(st, fs_json_int(op, "lease", 0), ttl, t + ttl * 1000);
		} else if (!strcmp(type, "keepalive")) {
			l = fs_state_lease(st, fs_json_int(op, "lease", 0));
			if (l)
				l->deadline_ms = t + l->ttl * 1000;
		} else if (!strcmp(type, "revoke")) {
			fs_state_lease_del(st, fs_json_int(op, "lease", 0));
		}
		if (err)
			return err;
	}
	st->seq = fs_json_int(rec, "seq", st->seq + 1);
	if (rev > st->rev)
		st->rev = rev;
	return 0;
}

int fs_state_load_snapshot(struct fs_state *st, json_t *hdr)
{
	json_t *kvs = json_object_get(hdr, "kvs"), *leases = json_object_get(hdr, "leases"), *o;
	size_t i;
	int err = 0;

	fs_state_reset(st);
	if (!json_is_array(kvs) || !json_is_array(leases))
		return -EINVAL;
	st->rev = fs_json_int(hdr, "rev", 0);
	json_array_foreach(kvs, i, o) {
		const char *key = json_string_value(json_object_get(o, "key"));
		char *value;
		size_t len;

		if (!key || fs_json_get_value(o, &value, &len))
			return -EINVAL;
		err = fs_state_put(st, key, value, len, fs_json_int(o, "create_rev", 0),
				   fs_json_int(o, "mod_rev", 0), fs_json_int(o, "version", 1),
				   fs_json_int(o, "lease", 0));
		if (err)
			return err;
	}
	json_array_foreach(leases, i, o) {
		err = fs_state_lease_set(st, fs_json_int(o, "id", 0), fs_json_int(o, "ttl", 0),
					 fs_json_int(o, "deadline", 0));
		if (err)
			return err;
	}
	st->seq = fs_json_int(hdr, "seq", 0);
	st->compact_rev = fs_json_int(hdr, "compact_rev", 0);
	if (fs_json_int(hdr, "next_lease", 1) > st->next_lease)
		st->next_lease = fs_json_int(hdr, "next_lease", 1);
	return 0;
}

/* Appends every key, sorted, to kvs; 0 or -ENOMEM. */
static int fs_snapshot_kvs(const struct fs_state *st, json_t *kvs)
{
	struct fs_entry **all = NULL, *e;
	size_t i, n = 0;
	int err = -ENOMEM;
	json_t *o;

	if (st->n) {
		all = malloc(st->n * sizeof(*all));
		if (!all)
			goto out;
	}
	for (i = 0; i < st->nbuckets; i++)
		for (e = st->buckets[i]; e; e = e->next)
			all[n++] = e;
	if (n)
		qsort(all, n, sizeof(*all), fs_entry_ptr_cmp);
	for (i = 0; i < n; i++) {
		const struct store_kv *kv = &all[i]->kv;

		o = json_pack("{s:s,s:I,s:I,s:I}", "key", kv->key, "create_rev", (json_int_t)kv->create_revision,
			      "mod_rev", (json_int_t)kv->mod_revision, "version", (json_int_t)kv->version);
		if (o && ((kv->lease && json_object_set_new(o, "lease", json_integer(kv->lease))) ||
			  fs_json_set_value(o, kv->value, kv->value_len))) {
			json_decref(o);
			goto out;
		}
		if (json_array_append_new(kvs, o))
			goto out;
	}
	err = 0;
out:
	free(all);
	return err;
}

json_t *fs_state_snapshot(const struct fs_state *st, int64_t compact_rev)
{
	json_t *hdr, *kvs, *leases, *o;
	size_t i;

	hdr = json_pack("{s:s,s:I,s:I,s:I,s:I,s:[],s:[]}", "type", "snapshot", "seq", (json_int_t)st->seq, "rev",
			(json_int_t)st->rev, "compact_rev", (json_int_t)compact_rev, "next_lease",
			(json_int_t)st->next_lease, "kvs", "leases");
	kvs = json_object_get(hdr, "kvs");
	leases = json_object_get(hdr, "leases");
	if (!hdr || fs_snapshot_kvs(st, kvs))
		goto out;
	for (i = 0; i < st->nleases; i++) {
		o = json_pack("{s:I,s:I,s:I}", "id", (json_int_t)st->leases[i].id, "ttl",
			      (json_int_t)st->leases[i].ttl, "deadline", (json_int_t)st->leases[i].deadline_ms);
		if (json_array_append_new(leases, o))
			goto out;
	}
	return hdr;
out:
	json_decref(hdr);
	return NULL;
}
