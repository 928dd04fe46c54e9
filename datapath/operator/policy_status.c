/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-policy status (docs/OPERATOR.md "Policy status"): for every NetworkPolicy,
 * CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy object, which revision the live
 * nodes enforce, from their status keys' "policies" maps:
 *
 *   /ciliate/status/policies/NetworkPolicy/default/allow-web
 *   {"revision":120,"nodes":2,"enforcing":1,"byRevision":{"97":1,"120":1}}
 *
 * "nodes" counts nodes with a live heartbeat and a status key, "enforcing" those of them at
 * the object's mod_revision, "byRevision" every revision those nodes report for it (a node
 * that does not report the policy is in "nodes" only). A key is written only when its value
 * changes; keys of policies that no longer exist are deleted. Writes are compare-and-swap,
 * OP_TXN_KEYS keys per transaction.
 */
#include "operator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

struct batch {
	struct store_cmp cmps[OP_TXN_KEYS];
	struct store_op ops[OP_TXN_KEYS];
	char *keys[OP_TXN_KEYS];
	char *vals[OP_TXN_KEYS];
	size_t n;
	size_t written, deleted;
};

static void batch_clear(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		free(b->keys[i]);
		free(b->vals[i]);
	}
	b->n = 0;
}

/* Commits the batch; a lost compare is logged and ignored (next pass). */
static int batch_flush(struct op *op, struct batch *b, struct diag *d)
{
	size_t i, puts = 0;
	int err;

	if (!b->n)
		return 0;
	for (i = 0; i < b->n; i++)
		puts += b->ops[i].type == STORE_OP_PUT;
	err = op_txn(op, b->cmps, b->n, b->ops, b->n, d);
	if (!err) {
		b->written += puts;
		b->deleted += b->n - puts;
	} else if (err == -ECANCELED) {
		op_log(op, "policy status: the store changed meanwhile (next pass): %s", d->msg);
		d->msg[0] = '\0';
		err = 0;
	}
	batch_clear(b);
	return err;
}

/* Queues a put (val non-NULL, owned) or a delete of key at mod_rev. */
static int batch_add(struct op *op, struct batch *b, const char *key, int64_t mod_rev, char *val,
		     struct diag *d)
{
	char *k = strdup(key);

	if (!k) {
		free(val);
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	}
	b->keys[b->n] = k;
	b->vals[b->n] = val;
	b->cmps[b->n] = (struct store_cmp){k, mod_rev};
	b->ops[b->n] = val ? (struct store_op){STORE_OP_PUT, k, val, strlen(val), 0}
			   : (struct store_op){STORE_OP_DELETE, k, NULL, 0, 0};
	b->n++;
	return b->n == OP_TXN_KEYS ? batch_flush(op, b, d) : 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The status value of one policy (malloc'd compact JSON, NULL on ENOMEM). */
static char *policy_value(const struct op_view *v, const char *suffix, int64_t rev)
{
	int64_t *revs = calloc(v->nns + 1, sizeof(*revs));
	size_t i, nrev = 0, nodes = 0, enforcing = 0, k;
	json_t *by, *j;
	char *out = NULL;

	if (!revs)
		return NULL;
	for (i = 0; i < v->nns; i++) {
		json_t *r;

		if (!v->ns[i].live)
			continue;
		nodes++;
		r = json_object_get(v->ns[i].policies, suffix);
		if (!json_is_integer(r))
			continue;
		revs[nrev++] = json_integer_value(r);
		enforcing += json_integer_value(r) == rev;
	}
	qsort(revs, nrev, sizeof(*revs), cmp_i64);
	by = json_object();
	for (i = 0; by && i < nrev; i = k) {
		char key[32];

		for (k = i; k < nrev && revs[k] == revs[i]; k++)
			;
		snprintf(key, sizeof(key), "%lld", (long long)revs[i]);
		json_object_set_new(by, key, json_integer((json_int_t)(k - i)));
	}
	j = json_pack("{s:I, s:I, s:I, s:o}", "revision", (json_int_t)rev, "nodes",
		      (json_int_t)nodes, "enforcing", (json_int_t)enforcing, "byRevision", by);
	if (j)
		out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	free(revs);
	return out;
}

int op_policy_status(struct op *op, const struct op_view *v, struct diag *d)
{
	size_t i, plen = strlen(OP_OBJECTS_PREFIX), slen = strlen(OP_POLICY_STATUS_PFX);
	struct batch *b = calloc(1, sizeof(*b));
	char key[STORE_KEY_MAX + 1];
	int err = 0;

	if (!b)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	op->policies = v->npolicies;
	for (i = 0; i < v->npolicies && !err; i++) {
		const char *suffix = v->policies[i]->key + plen;
		const struct store_kv *cur;
		char *val = policy_value(v, suffix, v->policies[i]->mod_revision);

		if (!val) {
			err = diag_fail_errno(d, -ENOMEM, "out of memory");
			break;
		}
		snprintf(key, sizeof(key), "%s%s", OP_POLICY_STATUS_PFX, suffix);
		cur = op_view_get(v, key);
		if (cur && cur->value_len == strlen(val) && !memcmp(cur->value, val, cur->value_len)) {
			free(val);
			continue;
		}
		err = batch_add(op, b, key, cur ? cur->mod_revision : 0, val, d);
	}
	for (i = 0; i < v->npstatus && !err; i++) {
		const struct store_kv *kv = v->pstatus[i];

		snprintf(key, sizeof(key), "%s%s", OP_OBJECTS_PREFIX, kv->key + slen);
		if (op_view_get(v, key))
			continue;
		err = batch_add(op, b, kv->key, kv->mod_revision, NULL, d);
	}
	if (!err)
		err = batch_flush(op, b, d);
	if (b->written || b->deleted)
		op_log(op, "policy status: %zu updated, %zu removed (%zu policies)", b->written,
		       b->deleted, v->npolicies);
	batch_clear(b);
	free(b);
	return err;
}
