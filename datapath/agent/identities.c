/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's side of cluster identities (identity_alloc.h): the model numbers identities
 * in manifest order; before anything is programmed, each label set is looked up among the
 * identity records of the agent's store cache, and a set nobody has allocated yet is
 * allocated in the store (every agent then finds the same record). Unused records are
 * released after a grace period by whichever agent notices first.
 */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ipaddr.h"

/* A label set as one string ("k\x1fv\x1e..."; label keys and values hold no control
 * characters), for sorting and binary search. */
static char *canon(const struct labelset *ls)
{
	size_t i, len = 1;
	char *s, *w;

	for (i = 0; i < ls->n; i++)
		len += strlen(ls->v[i].key) + strlen(ls->v[i].value) + 2;
	s = malloc(len);
	if (!s)
		return NULL;
	w = s;
	for (i = 0; i < ls->n; i++)
		w += sprintf(w, "%s\x1f%s\x1e", ls->v[i].key, ls->v[i].value);
	*w = '\0';
	return s;
}

struct cached_id {
	char *canon;
	uint32_t id;
};

static int cmp_cached(const void *a, const void *b)
{
	const struct cached_id *x = a, *y = b;
	int c = strcmp(x->canon, y->canon);

	if (c)
		return c;
	return x->id < y->id ? -1 : x->id > y->id; /* duplicates: the lowest id first */
}

static void cached_free(struct cached_id *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i].canon);
	free(v);
}

/* The identity records of the cache, sorted by label set. */
static int cached_ids(const struct agent *a, struct cached_id **out, size_t *n)
{
	struct identity_rec r;
	struct cached_id *v;
	size_t i;
	int err;

	*out = NULL;
	*n = 0;
	v = calloc(a->nobjs + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < a->nobjs; i++) {
		const struct agent_obj *o = a->objs[i];

		if (!identity_key_is_record(o->key))
			continue;
		err = identity_rec_parse(o->value, o->len, &r, NULL, 0);
		if (err == -ENOMEM)
			goto fail;
		if (err)
			continue; /* malformed: its number stays taken, see lowest_free() */
		v[*n].canon = canon(&r.labels);
		v[*n].id = r.id;
		identity_rec_free(&r);
		if (!v[*n].canon) {
			err = -ENOMEM;
			goto fail;
		}
		(*n)++;
	}
	qsort(v, *n, sizeof(*v), cmp_cached);
	*out = v;
	return 0;
fail:
	cached_free(v, *n);
	*n = 0;
	return err;
}

/* The lowest id the cache holds for a canonical label set, or 0. */
static uint32_t cached_find(const struct cached_id *v, size_t n, const char *c)
{
	size_t lo = 0, hi = n, mid;
	int r;

	while (lo < hi) { /* the first entry >= c */
		mid = lo + (hi - lo) / 2;
		r = strcmp(v[mid].canon, c);
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !strcmp(v[lo].canon, c) ? v[lo].id : 0;
}

static void log_alloc(struct agent *a, uint32_t id, const struct labelset *ls)
{
	char *c = canon(ls), *p;

	for (p = c; p && *p; p++)
		*p = *p == '\x1f' ? '=' : *p == '\x1e' ? ',' : *p;
	if (c && *c)
		c[strlen(c) - 1] = '\0';
	agent_log(a, "identity %u allocated for %s", id, c ? c : "?");
	free(c);
}

/* Looks every label set up in the store itself (the cache may lag behind it). */
static int resolve_from_store(struct agent *a, struct cluster_model *m, uint32_t *ids,
			      struct diag *d)
{
	bool created;
	size_t i;
	int err;

	for (i = 0; i < m->nidentities; i++) {
		err = identity_alloc(a->st, &m->identities[i].labels, &ids[i], &created, d);
		if (err)
			return err;
		if (created)
			log_alloc(a, ids[i], &m->identities[i].labels);
	}
	return 0;
}

int agent_identities_resolve(struct agent *a, struct cluster_model *m, struct diag *d)
{
	struct cached_id *cache = NULL;
	size_t ncache = 0, i;
	uint32_t *ids;
	bool created;
	char *c;
	int err;

	if (!a->st || !m->nidentities)
		return 0;
	ids = calloc(m->nidentities, sizeof(*ids));
	if (!ids)
		return diag_fail_errno(d, -ENOMEM, "identities: out of memory");
	err = cached_ids(a, &cache, &ncache);
	for (i = 0; !err && i < m->nidentities; i++) {
		c = canon(&m->identities[i].labels);
		if (!c) {
			err = -ENOMEM;
			break;
		}
		ids[i] = cached_find(cache, ncache, c);
		free(c);
		if (ids[i])
			continue;
		err = identity_alloc(a->st, &m->identities[i].labels, &ids[i], &created, d);
		if (err)
			goto out;
		if (created)
			log_alloc(a, ids[i], &m->identities[i].labels);
	}
	if (err == -ENOMEM) {
		err = diag_fail_errno(d, err, "identities: out of memory");
		goto out;
	}
	if (cluster_renumber_identities(m, ids)) {
		/* the cache still holds a record the store has since released and re-used:
		 * ask the store for every set */
		err = resolve_from_store(a, m, ids, d);
		if (!err && cluster_renumber_identities(m, ids))
			err = diag_fail_errno(d, -EINVAL,
					      "identities: the store gives one number to two label "
					      "sets (damaged records under %s?)",
					      IDENTITY_KEY_PREFIX);
	}
out:
	cached_free(cache, ncache);
	free(ids);
	return err;
}

void agent_identities_gc(struct agent *a, int64_t now_ms)
{
	size_t plen = strlen(IDENTITY_KEY_PREFIX), i, k;
	int64_t grace_ms = (int64_t)a->o.identity_gc_grace_s * 1000;
	struct diag d = {{0}};
	uint32_t id;
	int err;

	/* only against a model that reflects everything the cache holds */
	if (!a->st || !a->model || a->built_rev != a->rev || grace_ms <= 0)
		return;
	/* an elected ciliate-operator collects them, from every node's status */
	if (agent_obj_find(a, AGENT_OPERATOR_LEADER_KEY))
		return;
	for (i = 0; i < a->nobjs; i++) {
		struct agent_obj *o = a->objs[i];

		if (!identity_key_is_record(o->key))
			continue;
		id = (uint32_t)strtoul(o->key + plen, NULL, 10);
		for (k = 0; k < a->model->nidentities && a->model->identities[k].id != id; k++)
			;
		if (k < a->model->nidentities) {
			o->idle_since_ms = 0;
			continue;
		}
		if (!o->idle_since_ms) {
			o->idle_since_ms = now_ms;
			continue;
		}
		if (now_ms - o->idle_since_ms < grace_ms)
			continue;
		err = identity_release(a->st, id, o->mod_rev, &d);
		if (!err)
			agent_log(a, "identity %u released (unused for %lld s)", id,
				  (long long)((now_ms - o->idle_since_ms) / 1000));
		else if (err != -ECANCELED && err != -ENOENT)
			agent_log(a, "releasing identity %u: %s", id, d.msg);
		o->idle_since_ms = now_ms; /* try again after another grace period */
	}
}

/* ["k8s:app=web", ...] */
static json_t *labels_json(const struct labelset *ls)
{
	json_t *arr = json_array();
	char *kv;
	size_t i;

	for (i = 0; arr && i < ls->n; i++) {
		if (asprintf(&kv, "%s=%s", ls->v[i].key, ls->v[i].value) < 0)
			continue;
		json_array_append_new(arr, json_string(kv));
		free(kv);
	}
	return arr;
}

static const char *const reserved_names[] = {
	[IDENTITY_HOST] = "reserved:host",
	[IDENTITY_WORLD] = "reserved:world",
	[IDENTITY_UNMANAGED] = "reserved:unmanaged",
	[IDENTITY_HEALTH] = "reserved:health",
	[IDENTITY_INIT] = "reserved:init",
	[IDENTITY_REMOTE_NODE] = "reserved:remote-node",
	[IDENTITY_KUBE_APISERVER] = "reserved:kube-apiserver",
};

json_t *agent_identity_labels_json(const struct agent *a, uint32_t id)
{
	const struct m_identity *mi;

	if (id >= IDENTITY_HOST && id <= IDENTITY_KUBE_APISERVER)
		return json_pack("[s]", reserved_names[id]);
	mi = a->model ? cluster_find_identity(a->model, id) : NULL;
	return mi ? labels_json(&mi->labels) : json_array();
}

static int cmp_json_id(const void *x, const void *y)
{
	json_int_t a = json_integer_value(json_object_get(*(json_t *const *)x, "id"));
	json_int_t b = json_integer_value(json_object_get(*(json_t *const *)y, "id"));

	return a < b ? -1 : a > b;
}

/* The array sorted by "id" (a new array; arr is released). */
static json_t *sorted_by_id(json_t *arr)
{
	size_t n = json_array_size(arr), i;
	json_t **v = calloc(n + 1, sizeof(*v)), *out;

	if (!v)
		return arr;
	for (i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), cmp_json_id);
	out = json_array();
	for (i = 0; out && i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	if (!out)
		return arr;
	json_decref(arr);
	return out;
}

json_t *agent_identities_json(const struct agent *a)
{
	const struct cluster_model *m = a->model;
	json_t *arr = json_array(), *pods;
	struct identity_rec r;
	char pod[IPAM_POD_MAX], cidr[CIDR4_STR_MAX + 8];
	size_t i, k;
	uint32_t id;

	for (id = IDENTITY_HOST; id <= IDENTITY_KUBE_APISERVER; id++)
		json_array_append_new(arr, json_pack("{s:I, s:[s], s:s, s:[]}", "id",
						     (json_int_t)id, "labels", reserved_names[id],
						     "scope", "reserved", "pods"));
	for (i = 0; m && i < m->nidentities; i++) {
		pods = json_array();
		for (k = 0; k < m->npods; k++) {
			if (m->pods[k].identity != m->identities[i].id)
				continue;
			snprintf(pod, sizeof(pod), "%s/%s", m->pods[k].ns, m->pods[k].name);
			json_array_append_new(pods, json_string(pod));
		}
		json_array_append_new(arr, json_pack("{s:I, s:o, s:s, s:o}", "id",
						     (json_int_t)m->identities[i].id, "labels",
						     labels_json(&m->identities[i].labels), "scope",
						     "cluster", "pods", pods));
	}
	/* allocated in the store but used by no pod of the model (released after the grace) */
	for (i = 0; i < a->nobjs; i++) {
		const struct agent_obj *o = a->objs[i];

		if (!identity_key_is_record(o->key) ||
		    identity_rec_parse(o->value, o->len, &r, NULL, 0))
			continue;
		for (k = 0; m && k < m->nidentities && m->identities[k].id != r.id; k++)
			;
		if (!m || k == m->nidentities)
			json_array_append_new(arr, json_pack("{s:I, s:o, s:s, s:[]}", "id",
							     (json_int_t)r.id, "labels",
							     labels_json(&r.labels), "scope",
							     "cluster", "pods"));
		identity_rec_free(&r);
	}
	/* node-local CIDR identities (their ipcache entries) */
	for (i = 0; a->have_ns && i < a->ns.nipcache; i++) {
		const struct node_ipcache_entry *e = &a->ns.ipcache[i];

		if (e->val.identity < IDENTITY_LOCAL_CIDR_MIN)
			continue;
		snprintf(cidr, sizeof(cidr), "cidr:");
		cidr4_format(e->key.addr.v4, (uint8_t)(e->key.prefixlen - IPCACHE_PREFIX_BASE),
			     cidr + 5);
		json_array_append_new(arr, json_pack("{s:I, s:[s], s:s, s:[]}", "id",
						     (json_int_t)e->val.identity, "labels", cidr,
						     "scope", "local", "pods"));
	}
	return sorted_by_id(arr);
}
