/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One leader pass: a single list of /ciliate/, a check that the leader key is still ours,
 * the three chores, and the operator's status key (OP_STATUS_KEY). Every chore write goes
 * through op_txn, which adds a compare of the leader key at the mod_revision this term
 * created it with: a deposed leader's writes fail instead of racing its successor's.
 */
#include "operator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int op_txn(struct op *op, const struct store_cmp *cmps, size_t ncmps, const struct store_op *ops,
	   size_t nops, struct diag *d)
{
	struct store_cmp *all = calloc(ncmps + 1, sizeof(*all));
	int err;

	if (!all)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	all[0] = (struct store_cmp){OP_LEADER_KEY, op->leader_rev};
	if (ncmps)
		memcpy(all + 1, cmps, ncmps * sizeof(*cmps));
	err = store_txn(op->st, all, ncmps + 1, ops, nops, NULL, d);
	free(all);
	return err;
}

void op_clocks_reset(struct op *op)
{
	op->nidc = 0;
	op->nndc = 0;
	op->identities_collected = 0;
	op->nodes_released = 0;
	op->policies = 0;
	op->healthy = true;
	op->last_error[0] = '\0';
}

static void write_status(struct op *op, const struct op_view *v)
{
	struct diag d = {{0}};
	json_t *j = json_pack("{s:s, s:I, s:I, s:i, s:I, s:I, s:I, s:b, s:s}", "leader", op->o.id,
			      "since", (json_int_t)op->since, "updated", (json_int_t)op_unix_s(),
			      "interval", op->o.interval_s, "identitiesCollected",
			      (json_int_t)op->identities_collected, "nodesReleased",
			      (json_int_t)op->nodes_released, "policies", (json_int_t)op->policies,
			      "healthy", op->healthy, "lastError", op->last_error);
	char *val = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	struct store_cmp cmp = {OP_STATUS_KEY, v->status ? v->status->mod_revision : 0};
	struct store_op put = {STORE_OP_PUT, OP_STATUS_KEY, val, val ? strlen(val) : 0, 0};
	int err;

	json_decref(j);
	if (!val)
		return;
	err = op_txn(op, &cmp, 1, &put, 1, &d);
	if (err)
		op_log(op, "writing %s: %s", OP_STATUS_KEY, d.msg);
	free(val);
}

/* Keeps the first error of a pass. */
static void note_error(struct op *op, bool *failed, const char *chore, const char *msg)
{
	if (!*failed)
		snprintf(op->last_error, sizeof(op->last_error), "%s: %s", chore, msg);
	*failed = true;
	op_log(op, "%s: %s", chore, msg);
}

void op_pass(struct op *op)
{
	int64_t ttl_ms = (int64_t)op->o.lease_ttl_s * 1000;
	struct diag d = {{0}};
	struct op_view v;
	bool failed = false;
	int err;

	if (op_now_ms() - op->lease_ok_ms >= ttl_ms - 1000) {
		op_step_down(op, "the lease was not renewed in time");
		return;
	}
	err = op_view_load(op, &v, &d);
	if (err) {
		bool again = !op->healthy && strstr(op->last_error, d.msg);

		op->healthy = false;
		snprintf(op->last_error, sizeof(op->last_error), "listing the store: %s", d.msg);
		if (!again)
			op_log(op, "%s", op->last_error);
		return;
	}
	if (!v.leader || v.leader->lease != op->lease) {
		op_step_down(op, "the leader key is not ours any more");
		op_view_free(&v);
		return;
	}
	op->leader_rev = v.leader->mod_revision;
	d.msg[0] = '\0';
	if (op_gc_identities(op, &v, &d))
		note_error(op, &failed, "identity GC", d.msg);
	d.msg[0] = '\0';
	if (op_gc_nodes(op, &v, &d))
		note_error(op, &failed, "node GC", d.msg);
	d.msg[0] = '\0';
	if (op_policy_status(op, &v, &d))
		note_error(op, &failed, "policy status", d.msg);
	if (!failed && !op->healthy)
		op_log(op, "healthy again");
	op->healthy = !failed;
	if (!failed)
		op->last_error[0] = '\0';
	if (op->leader)
		write_status(op, &v);
	op_view_free(&v);
}
