/* SPDX-License-Identifier: Apache-2.0 */
#include "labels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int labelset_set(struct labelset *ls, const char *key, const char *value)
{
	struct label *v;
	char *k, *val;
	size_t i;

	val = strdup(value);
	if (!val)
		return -ENOMEM;
	for (i = 0; i < ls->n; i++) {
		if (!strcmp(ls->v[i].key, key)) {
			free(ls->v[i].value);
			ls->v[i].value = val;
			return 0;
		}
	}
	k = strdup(key);
	v = realloc(ls->v, (ls->n + 1) * sizeof(*v));
	if (!k || !v) {
		free(k);
		free(val);
		if (v)
			ls->v = v;
		return -ENOMEM;
	}
	ls->v = v;
	ls->v[ls->n].key = k;
	ls->v[ls->n].value = val;
	ls->n++;
	return 0;
}

const char *labelset_get(const struct labelset *ls, const char *key)
{
	size_t i;

	for (i = 0; i < ls->n; i++)
		if (!strcmp(ls->v[i].key, key))
			return ls->v[i].value;
	return NULL;
}

int labelset_copy(struct labelset *dst, const struct labelset *src)
{
	size_t i;
	int err;

	dst->v = NULL;
	dst->n = 0;
	for (i = 0; i < src->n; i++) {
		err = labelset_set(dst, src->v[i].key, src->v[i].value);
		if (err) {
			labelset_free(dst);
			return err;
		}
	}
	return 0;
}

static int label_cmp(const void *a, const void *b)
{
	const struct label *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	return r ? r : strcmp(x->value, y->value);
}

void labelset_sort(struct labelset *ls)
{
	if (ls->n > 1)
		qsort(ls->v, ls->n, sizeof(*ls->v), label_cmp);
}

bool labelset_equal(const struct labelset *a, const struct labelset *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (label_cmp(&a->v[i], &b->v[i]))
			return false;
	return true;
}

void labelset_free(struct labelset *ls)
{
	size_t i;

	if (!ls)
		return;
	for (i = 0; i < ls->n; i++) {
		free(ls->v[i].key);
		free(ls->v[i].value);
	}
	free(ls->v);
	ls->v = NULL;
	ls->n = 0;
}

int labelset_parse(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		   struct labelset *out)
{
	char sub[YT_PATH_MAX];
	yaml_node_pair_t *p;
	yaml_node_t *k, *v;
	const char *key, *val;
	int err;

	out->v = NULL;
	out->n = 0;
	err = yt_want_map(c, n, path);
	if (err)
		return err;
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		k = yt_node(c, p->key);
		v = yt_node(c, p->value);
		key = yt_scalar(k);
		if (!key || !*key) {
			err = yt_fail(c, k, path, "label keys must be non-empty strings");
			goto out;
		}
		yt_path(sub, "%s.%s", path, key);
		val = yt_scalar(v);
		if (!val) {
			err = yt_fail(c, v, sub, "label values must be strings");
			goto out;
		}
		if (yt_is_null(v))
			val = "";
		err = labelset_set(out, key, val);
		if (err)
			goto out;
	}
	labelset_sort(out);
out:
	if (err)
		labelset_free(out);
	return err;
}

static void sel_req_free(struct sel_req *r)
{
	size_t i;

	free(r->key);
	for (i = 0; i < r->nvalues; i++)
		free(r->values[i]);
	free(r->values);
}

static int parse_op(const char *s, enum sel_op *op)
{
	static const char *const names[] = { "In", "NotIn", "Exists", "DoesNotExist" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*op = (enum sel_op)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_req(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		     struct sel_req *r)
{
	static const char *const fields[] = { "key", "operator", "values", NULL };
	char sub[YT_PATH_MAX];
	yaml_node_t *vals, *opn;
	yaml_node_item_t *it;
	size_t nv;
	int err;

	err = yt_check_fields(c, n, path, fields);
	if (!err)
		err = yt_require(c, n, path, "key");
	if (!err)
		err = yt_require(c, n, path, "operator");
	if (!err)
		err = yt_strdup(c, yt_map_get(c, n, "key"), yt_path(sub, "%s.key", path), &r->key);
	if (err)
		return err;
	opn = yt_map_get(c, n, "operator");
	yt_path(sub, "%s.operator", path);
	if (!yt_scalar(opn) || parse_op(yt_scalar(opn), &r->op))
		return yt_fail(c, opn, sub,
			       "unknown operator \"%s\" (In, NotIn, Exists, DoesNotExist)",
			       yt_scalar(opn) ? yt_scalar(opn) : "");
	vals = yt_map_get(c, n, "values");
	yt_path(sub, "%s.values", path);
	if (vals) {
		err = yt_want_seq(c, vals, sub);
		if (err)
			return err;
	}
	nv = vals ? (size_t)(vals->data.sequence.items.top - vals->data.sequence.items.start) : 0;
	if ((r->op == SEL_OP_IN || r->op == SEL_OP_NOT_IN) && !nv)
		return yt_fail(c, vals ? vals : n, sub, "must be non-empty for operator %s",
			       r->op == SEL_OP_IN ? "In" : "NotIn");
	if ((r->op == SEL_OP_EXISTS || r->op == SEL_OP_DOES_NOT_EXIST) && nv)
		return yt_fail(c, vals, sub, "must be empty for operator %s",
			       r->op == SEL_OP_EXISTS ? "Exists" : "DoesNotExist");
	if (!nv)
		return 0;
	r->values = calloc(nv, sizeof(*r->values));
	if (!r->values)
		return -ENOMEM;
	for (it = vals->data.sequence.items.start; it < vals->data.sequence.items.top; it++) {
		yaml_node_t *v = yt_node(c, *it);
		char vp[YT_PATH_MAX];

		yt_path(vp, "%s[%zu]", sub, r->nvalues);
		if (!yt_scalar(v))
			return yt_fail(c, v, vp, "expected a string");
		r->values[r->nvalues] = strdup(yt_is_null(v) ? "" : yt_scalar(v));
		if (!r->values[r->nvalues])
			return -ENOMEM;
		r->nvalues++;
	}
	return 0;
}

int selector_parse(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		   struct selector *out)
{
	static const char *const fields[] = { "matchLabels", "matchExpressions", NULL };
	char sub[YT_PATH_MAX], rp[YT_PATH_MAX];
	yaml_node_t *ml, *me;
	yaml_node_item_t *it;
	size_t cnt;
	int err;

	memset(out, 0, sizeof(*out));
	if (yt_is_null(n))
		return 0; /* "podSelector:" with no value is the empty selector */
	err = yt_check_fields(c, n, path, fields);
	if (err)
		return err;
	ml = yt_map_get(c, n, "matchLabels");
	if (ml) {
		err = labelset_parse(c, ml, yt_path(sub, "%s.matchLabels", path), &out->match);
		if (err)
			goto out;
	}
	me = yt_map_get(c, n, "matchExpressions");
	if (me) {
		yt_path(sub, "%s.matchExpressions", path);
		err = yt_want_seq(c, me, sub);
		if (err)
			goto out;
		cnt = (size_t)(me->data.sequence.items.top - me->data.sequence.items.start);
		out->reqs = calloc(cnt ? cnt : 1, sizeof(*out->reqs));
		if (!out->reqs) {
			err = -ENOMEM;
			goto out;
		}
		for (it = me->data.sequence.items.start; it < me->data.sequence.items.top; it++) {
			out->nreqs++;
			yt_path(rp, "%s[%zu]", sub, out->nreqs - 1);
			err = parse_req(c, yt_node(c, *it), rp, &out->reqs[out->nreqs - 1]);
			if (err)
				goto out;
		}
	}
out:
	if (err)
		selector_free(out);
	return err;
}

bool selector_is_empty(const struct selector *sel)
{
	return !sel->match.n && !sel->nreqs;
}

static bool req_matches(const struct sel_req *r, const struct labelset *ls)
{
	const char *v = labelset_get(ls, r->key);
	size_t i;

	switch (r->op) {
	case SEL_OP_EXISTS:
		return v != NULL;
	case SEL_OP_DOES_NOT_EXIST:
		return v == NULL;
	case SEL_OP_IN:
	case SEL_OP_NOT_IN:
		if (v)
			for (i = 0; i < r->nvalues; i++)
				if (!strcmp(v, r->values[i]))
					return r->op == SEL_OP_IN;
		return r->op == SEL_OP_NOT_IN;
	}
	return false;
}

bool selector_matches(const struct selector *sel, const struct labelset *ls)
{
	const char *v;
	size_t i;

	for (i = 0; i < sel->match.n; i++) {
		v = labelset_get(ls, sel->match.v[i].key);
		if (!v || strcmp(v, sel->match.v[i].value))
			return false;
	}
	for (i = 0; i < sel->nreqs; i++)
		if (!req_matches(&sel->reqs[i], ls))
			return false;
	return true;
}

void selector_free(struct selector *sel)
{
	size_t i;

	if (!sel)
		return;
	labelset_free(&sel->match);
	for (i = 0; i < sel->nreqs; i++)
		sel_req_free(&sel->reqs[i]);
	free(sel->reqs);
	memset(sel, 0, sizeof(*sel));
}
