/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster identity allocation through the store; see identity_alloc.h. */
#include "identity_alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model/labels.h"

char *identity_rec_format(uint32_t id, const struct labelset *labels)
{
	json_t *root, *lj = json_object();
	char *out;
	size_t i;

	root = json_pack("{s:I, s:o}", "id", (json_int_t)id, "labels", lj);
	if (!root)
		return NULL;
	for (i = 0; i < labels->n; i++)
		json_object_set_new(lj, labels->v[i].key, json_string(labels->v[i].value));
	out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	return out;
}

static int rec_fail(char *why, size_t whysize, const char *what)
{
	if (why)
		snprintf(why, whysize, "%s", what);
	return -EINVAL;
}

int identity_rec_parse(const char *json, size_t len, struct identity_rec *r, char *why,
		       size_t whysize)
{
	json_t *root, *lj, *v;
	const char *k;
	json_int_t id;
	int err = 0;

	memset(r, 0, sizeof(*r));
	root = json_loadb(json, len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return rec_fail(why, whysize, "not a JSON object");
	}
	id = json_integer_value(json_object_get(root, "id"));
	lj = json_object_get(root, "labels");
	if (!json_is_integer(json_object_get(root, "id")) || id < IDENTITY_CLUSTER_MIN ||
	    id > IDENTITY_CLUSTER_MAX) {
		err = rec_fail(why, whysize, "id: missing or outside 256..65535");
		goto out;
	}
	if (!json_is_object(lj)) {
		err = rec_fail(why, whysize, "labels: missing or not an object");
		goto out;
	}
	r->id = (uint32_t)id;
	json_object_foreach(lj, k, v)
	{
		if (!json_is_string(v)) {
			err = rec_fail(why, whysize, "labels: a value is not a string");
			goto out;
		}
		err = labelset_set(&r->labels, k, json_string_value(v));
		if (err)
			goto out;
	}
	labelset_sort(&r->labels);
out:
	json_decref(root);
	if (err)
		identity_rec_free(r);
	return err;
}

void identity_key(uint32_t id, char *key, size_t size)
{
	snprintf(key, size, "%s%" PRIu32, IDENTITY_KEY_PREFIX, id);
}

bool identity_key_is_record(const char *key)
{
	size_t plen = strlen(IDENTITY_KEY_PREFIX);
	const char *p;

	if (strncmp(key, IDENTITY_KEY_PREFIX, plen) || !key[plen])
		return false;
	for (p = key + plen; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

void identity_rec_free(struct identity_rec *r)
{
	labelset_free(&r->labels);
	memset(r, 0, sizeof(*r));
}

void identity_recs_free(struct identity_rec *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		identity_rec_free(&v[i]);
	free(v);
}

static int cmp_rec_id(const void *a, const void *b)
{
	uint32_t x = ((const struct identity_rec *)a)->id, y = ((const struct identity_rec *)b)->id;

	return x < y ? -1 : x > y;
}

/* The records of a listing of IDENTITY_PREFIX, sorted by id, and the version's mod_rev. */
static int recs_from_list(const struct store_list *l, struct identity_rec **out, size_t *n,
			  size_t *bad, int64_t *version_rev)
{
	struct identity_rec *v;
	size_t i;
	int err;

	*out = NULL;
	*n = 0;
	if (bad)
		*bad = 0;
	if (version_rev)
		*version_rev = 0;
	v = calloc(l->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < l->n; i++) {
		const struct store_kv *kv = &l->items[i];

		if (!strcmp(kv->key, IDENTITY_VERSION_KEY) && version_rev)
			*version_rev = kv->mod_revision;
		if (!identity_key_is_record(kv->key))
			continue;
		err = identity_rec_parse(kv->value, kv->value_len, &v[*n], NULL, 0);
		if (err == -ENOMEM) {
			identity_recs_free(v, *n);
			return err;
		}
		if (err) {
			if (bad)
				(*bad)++;
			continue;
		}
		v[*n].mod_rev = kv->mod_revision;
		(*n)++;
	}
	qsort(v, *n, sizeof(*v), cmp_rec_id);
	*out = v;
	return 0;
}

int identity_recs_list(struct store *st, struct identity_rec **out, size_t *n, size_t *bad,
		       struct diag *d)
{
	struct store_list l;
	int err;

	*out = NULL;
	*n = 0;
	err = store_list(st, IDENTITY_PREFIX, &l, d);
	if (err)
		return err;
	err = recs_from_list(&l, out, n, bad, NULL);
	store_list_free(&l);
	if (err)
		return diag_fail_errno(d, err, "identities: out of memory");
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The lowest number from IDENTITY_CLUSTER_MIN whose key is absent from the listing (a
 * malformed record still occupies its number); IDENTITY_CLUSTER_MAX + 1 when none is free,
 * 0 on ENOMEM. */
static uint32_t lowest_free(const struct store_list *l)
{
	size_t plen = strlen(IDENTITY_KEY_PREFIX), i, n = 0;
	uint32_t *ids = calloc(l->n + 1, sizeof(*ids)), cand = IDENTITY_CLUSTER_MIN;
	unsigned long v;

	if (!ids)
		return 0;
	for (i = 0; i < l->n; i++) {
		if (!identity_key_is_record(l->items[i].key))
			continue;
		v = strtoul(l->items[i].key + plen, NULL, 10);
		if (v >= IDENTITY_CLUSTER_MIN && v <= IDENTITY_CLUSTER_MAX)
			ids[n++] = (uint32_t)v;
	}
	qsort(ids, n, sizeof(*ids), cmp_u32);
	for (i = 0; i < n && ids[i] <= cand; i++)
		if (ids[i] == cand)
			cand++;
	free(ids);
	return cand;
}

int identity_alloc(struct store *st, const struct labelset *labels, uint32_t *id, bool *created,
		   struct diag *d)
{
	char key[64], vtext[64], *text;
	struct identity_rec *recs;
	struct store_list l;
	int64_t version_rev;
	size_t n, i;
	uint32_t cand;
	int err, tries;

	*id = 0;
	if (created)
		*created = false;
	for (tries = 0; tries < IDENTITY_ALLOC_TRIES; tries++) {
		err = store_list(st, IDENTITY_PREFIX, &l, d);
		if (err)
			return err;
		err = recs_from_list(&l, &recs, &n, NULL, &version_rev);
		if (err) {
			store_list_free(&l);
			return diag_fail_errno(d, err, "identities: out of memory");
		}
		for (i = 0; i < n && !labelset_equal(&recs[i].labels, labels); i++)
			;
		if (i < n) {
			*id = recs[i].id;
			identity_recs_free(recs, n);
			store_list_free(&l);
			return 0;
		}
		cand = lowest_free(&l);
		identity_recs_free(recs, n);
		store_list_free(&l);
		if (!cand)
			return diag_fail_errno(d, -ENOMEM, "identities: out of memory");
		if (cand > IDENTITY_CLUSTER_MAX)
			return diag_fail_errno(d, -ENOSPC,
					       "identities: every number from %u to %u is taken",
					       IDENTITY_CLUSTER_MIN, IDENTITY_CLUSTER_MAX);
		text = identity_rec_format(cand, labels);
		if (!text)
			return diag_fail_errno(d, -ENOMEM, "identities: out of memory");
		identity_key(cand, key, sizeof(key));
		snprintf(vtext, sizeof(vtext), "{\"lastAllocated\":%" PRIu32 "}", cand);
		{
			const struct store_cmp cmps[] = {{IDENTITY_VERSION_KEY, version_rev},
							 {key, 0}};
			const struct store_op ops[] = {
				{STORE_OP_PUT, key, text, strlen(text), 0},
				{STORE_OP_PUT, IDENTITY_VERSION_KEY, vtext, strlen(vtext), 0},
			};

			err = store_txn(st, cmps, 2, ops, 2, NULL, d);
		}
		free(text);
		if (err == -ECANCELED)
			continue; /* another writer got there first: look again */
		if (err)
			return err;
		*id = cand;
		if (created)
			*created = true;
		return 0;
	}
	return diag_fail_errno(d, -EAGAIN,
			       "identities: the allocator kept changing for %d rounds: try again",
			       IDENTITY_ALLOC_TRIES);
}

int identity_release(struct store *st, uint32_t id, int64_t mod_rev, struct diag *d)
{
	char key[64], vtext[64];
	struct store_kv kv;
	int64_t version_rev = 0;
	int err;

	err = store_get(st, IDENTITY_VERSION_KEY, &kv, d);
	if (!err) {
		version_rev = kv.mod_revision;
		store_kv_free(&kv);
	} else if (err != -ENOENT) {
		return err;
	}
	identity_key(id, key, sizeof(key));
	err = store_get(st, key, &kv, d);
	if (err)
		return err;
	store_kv_free(&kv);
	snprintf(vtext, sizeof(vtext), "{\"lastReleased\":%" PRIu32 "}", id);
	{
		const struct store_cmp cmps[] = {{IDENTITY_VERSION_KEY, version_rev},
						 {key, mod_rev}};
		const struct store_op ops[] = {
			{STORE_OP_DELETE, key, NULL, 0, 0},
			{STORE_OP_PUT, IDENTITY_VERSION_KEY, vtext, strlen(vtext), 0},
		};

		return store_txn(st, cmps, 2, ops, 2, NULL, d);
	}
}
