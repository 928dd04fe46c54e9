/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Identity garbage collection (docs/OPERATOR.md "Identity GC"). An identity record is
 * unused in a pass when
 *   (a) every node with a live heartbeat has a status key (and at least one node is alive),
 *   (b) every node status key was written at a store revision >= the record's mod_revision
 *       (each node has seen the record), every one parses, and
 *   (c) no node status lists the identity.
 * It is released (identity_release: a compare-and-swap on the record's mod_revision and the
 * allocator version) once it has been unused in every pass for --identity-gc-grace seconds
 * as this leader observed it; a new leader starts the clocks from zero.
 */
#include "operator.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/identity_alloc.h"

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool in_use(const struct op_view *v, uint32_t id)
{
	size_t i;

	for (i = 0; i < v->nns; i++)
		if (bsearch(&id, v->ns[i].ids, v->ns[i].nids, sizeof(id), cmp_u32))
			return true;
	return false;
}

/* (a): every live node reports a status, and some node is alive. */
static bool live_nodes_report(const struct op_view *v)
{
	size_t i, plen = strlen(OP_HEARTBEAT_PREFIX);

	if (!v->nheartbeats || v->bad_status)
		return false;
	for (i = 0; i < v->nheartbeats; i++)
		if (!op_view_node_status(v, v->heartbeats[i]->key + plen))
			return false;
	return true;
}

/* (b): every node status was written after the record. */
static bool all_seen(const struct op_view *v, int64_t mod_rev)
{
	size_t i;

	for (i = 0; i < v->nns; i++)
		if (v->ns[i].revision < mod_rev)
			return false;
	return true;
}

static struct op_idclock *clock_get(struct op *op, uint32_t id)
{
	size_t i;

	for (i = 0; i < op->nidc; i++)
		if (op->idc[i].id == id)
			return &op->idc[i];
	if (op->nidc == op->capidc) {
		size_t cap = op->capidc ? op->capidc * 2 : 64;
		struct op_idclock *n = realloc(op->idc, cap * sizeof(*n));

		if (!n)
			return NULL;
		op->idc = n;
		op->capidc = cap;
	}
	op->idc[op->nidc] = (struct op_idclock){.id = id, .since_ms = -1};
	return &op->idc[op->nidc++];
}

/* Drops the clocks not seen this pass (records gone, in use, or not decidable). */
static void clocks_sweep(struct op *op)
{
	size_t i, k = 0;

	for (i = 0; i < op->nidc; i++)
		if (op->idc[i].seen) {
			op->idc[i].seen = false;
			op->idc[k++] = op->idc[i];
		}
	op->nidc = k;
}

int op_gc_identities(struct op *op, const struct op_view *v, struct diag *d)
{
	int64_t now = op_now_ms(), grace_ms = (int64_t)op->o.identity_gc_grace_s * 1000;
	bool decidable = live_nodes_report(v);
	size_t i, plen = strlen(IDENTITY_KEY_PREFIX);
	int err = 0;

	if (!grace_ms)
		return 0;
	for (i = 0; decidable && i < v->nidentities && op->leader; i++) {
		const struct store_kv *kv = v->identities[i];
		uint32_t id = (uint32_t)strtoul(kv->key + plen, NULL, 10);
		struct op_idclock *c;
		struct diag rd = {{0}};
		int rc;

		if (!all_seen(v, kv->mod_revision) || in_use(v, id))
			continue; /* its clock is dropped by the sweep */
		c = clock_get(op, id);
		if (!c)
			return diag_fail_errno(d, -ENOMEM, "out of memory");
		c->seen = true;
		if (c->since_ms < 0 || c->mod_rev != kv->mod_revision) {
			c->since_ms = now;
			c->mod_rev = kv->mod_revision;
		}
		if (now - c->since_ms < grace_ms)
			continue;
		rc = identity_release(op->st, id, kv->mod_revision, &rd);
		if (!rc) {
			op->identities_collected++;
			c->seen = false;
			op_log(op, "identity %u collected (unused for %lld s)", id,
			       (long long)((now - c->since_ms) / 1000));
		} else if (rc == -ECANCELED) { /* the record or the allocator changed: re-check */
			op_log(op, "identity %u not collected, the store changed meanwhile: %s", id,
			       rd.msg);
		} else if (rc == -ENOENT) {
			c->seen = false; /* released by someone else */
		} else if (!err) {
			err = diag_fail_errno(d, rc, "releasing identity %u: %s", id, rd.msg);
		}
	}
	clocks_sweep(op);
	return err;
}
