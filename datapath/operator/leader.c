/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The leader election (docs/OPERATOR.md "Election"): every instance holds one store lease
 * (TTL --lease-ttl, kept alive every TTL/3). Campaigning is a create-only put of
 * OP_LEADER_KEY with that lease; whoever creates it leads until its lease ends: revoked on
 * exit (the key goes at once), or expired TTL after the last keepalive when the process dies
 * or loses the store. Standbys watch the key and campaign when it is deleted, and retry every
 * TTL/3 as a fallback. A leader steps down (stops its chores) when a keepalive says its lease
 * is gone, when it could not renew it for TTL - 1 s, and when the key is deleted or holds
 * another lease; every chore write also compares the leader key's mod_revision.
 */
#include "operator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static int64_t period_ms(const struct op *op)
{
	int64_t p = (int64_t)op->o.lease_ttl_s * 1000 / 3;

	return p < 500 ? 500 : p;
}

/* The id in a leader key's value ("?" when unreadable). */
static void leader_id(const struct store_kv *kv, char *out, size_t size)
{
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
	const char *id = json_string_value(json_object_get(j, "id"));

	snprintf(out, size, "%s", id ? id : "?");
	json_decref(j);
}

static void note_leader(struct op *op, const struct store_kv *kv)
{
	char id[160];

	leader_id(kv, id, sizeof(id));
	if (kv->mod_revision > op->seen_rev)
		op->seen_rev = kv->mod_revision;
	if (strcmp(id, op->seen_leader)) {
		snprintf(op->seen_leader, sizeof(op->seen_leader), "%s", id);
		if (strcmp(id, op->o.id))
			op_log(op, "standing by: the leader is %s", id);
	}
}

static void become_leader(struct op *op, int64_t rev, int64_t since)
{
	op->leader = true;
	op->leader_rev = rev;
	if (rev > op->seen_rev)
		op->seen_rev = rev;
	op->since = since;
	op->next_pass_ms = op_now_ms();
	op->campaign_error[0] = '\0';
	snprintf(op->seen_leader, sizeof(op->seen_leader), "%s", op->o.id);
	op_clocks_reset(op);
	op_log(op, "became leader (lease %llx, TTL %d s)", (unsigned long long)op->lease,
	       op->o.lease_ttl_s);
}

void op_step_down(struct op *op, const char *why)
{
	if (!op->leader)
		return;
	op->leader = false;
	op->leader_rev = 0;
	op->seen_leader[0] = '\0';
	op_log(op, "stepping down: %s", why);
}

static void campaign_failed(struct op *op, const char *msg)
{
	if (strcmp(msg, op->campaign_error))
		op_log(op, "campaign: %s", msg);
	snprintf(op->campaign_error, sizeof(op->campaign_error), "%s", msg);
}

/* Lists the leader key and watches it from that revision; *kv (may stay zeroed) gets it. */
static int watch_open(struct op *op, struct store_kv *kv, struct diag *d)
{
	struct store_list l;
	int err;

	memset(kv, 0, sizeof(*kv));
	err = store_list(op->st, OP_LEADER_KEY, &l, d);
	if (err)
		return err;
	err = store_watch_open(op->st, OP_LEADER_KEY, l.revision, &op->w, d);
	if (!err && l.n && !strcmp(l.items[0].key, OP_LEADER_KEY)) {
		*kv = l.items[0];
		memset(&l.items[0], 0, sizeof(l.items[0]));
	}
	store_list_free(&l);
	return err;
}

void op_campaign(struct op *op)
{
	struct diag d = {{0}};
	struct store_kv kv = {0};
	int64_t now = op_now_ms(), rev = 0, since;
	char *val;
	int err, tries;

	op->next_campaign_ms = now + period_ms(op);
	if (!op->w && watch_open(op, &kv, &d)) { /* also a leader's, after a watch error */
		campaign_failed(op, d.msg);
		return;
	}
	store_kv_free(&kv);
	if (op->leader)
		return;
	for (tries = 0; tries < 2; tries++) {
		if (!op->lease) {
			int64_t sent = op_now_ms();

			err = store_lease_grant(op->st, op->o.lease_ttl_s, &op->lease, &d);
			if (err) {
				op->lease = 0;
				campaign_failed(op, d.msg);
				return;
			}
			op->lease_ok_ms = sent;
			op->next_keepalive_ms = sent + period_ms(op);
		}
		since = op_unix_s();
		{
			json_t *j = json_pack("{s:s, s:I, s:i}", "id", op->o.id, "since",
					      (json_int_t)since, "leaseTTL", op->o.lease_ttl_s);

			val = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
			json_decref(j);
			if (!val)
				return;
		}
		err = store_put(op->st, OP_LEADER_KEY, val, strlen(val), op->lease, 0, &rev, &d);
		free(val);
		if (!err) {
			become_leader(op, rev, since);
			return;
		}
		if (err == -ENOENT) { /* our lease expired meanwhile: a new one */
			op->lease = 0;
			continue;
		}
		if (err != -ECANCELED) {
			campaign_failed(op, d.msg);
			return;
		}
		/* taken: by us (a term we stepped down from while the lease lived on) or another */
		err = store_get(op->st, OP_LEADER_KEY, &kv, &d);
		if (err == -ENOENT)
			continue; /* gone in between: try again */
		if (err) {
			campaign_failed(op, d.msg);
			return;
		}
		op->campaign_error[0] = '\0';
		if (kv.lease == op->lease) {
			json_t *j = json_loadb(kv.value, kv.value_len, 0, NULL);

			become_leader(op, kv.mod_revision,
				      json_integer_value(json_object_get(j, "since")) ?: op_unix_s());
			json_decref(j);
		} else {
			note_leader(op, &kv);
		}
		store_kv_free(&kv);
		return;
	}
}

void op_keepalive(struct op *op)
{
	struct diag d = {{0}};
	int64_t sent = op_now_ms(), ttl_ms = (int64_t)op->o.lease_ttl_s * 1000;
	int err;

	op->next_keepalive_ms = sent + period_ms(op);
	if (!op->lease)
		return;
	err = store_lease_keepalive(op->st, op->lease, &d);
	if (!err) {
		op->lease_ok_ms = sent;
		return;
	}
	if (err == -ENOENT) {
		op_log(op, "lease %llx expired", (unsigned long long)op->lease);
		op->lease = 0;
		op_step_down(op, "the lease expired");
		op_campaign(op);
		return;
	}
	op_log(op, "lease keepalive: %s", d.msg);
	op->next_keepalive_ms = sent + 1000 < op->next_keepalive_ms ? sent + 1000
								 : op->next_keepalive_ms;
	if (op->leader && sent - op->lease_ok_ms >= ttl_ms - 1000) {
		char why[96];

		snprintf(why, sizeof(why), "the lease could not be renewed for %lld ms",
			 (long long)(sent - op->lease_ok_ms));
		op_step_down(op, why);
	}
}

void op_watch_events(struct op *op)
{
	struct diag d = {{0}};
	struct store_event *evs = NULL;
	bool campaign = false;
	size_t n = 0, i;
	int err;

	err = store_watch_next(op->w, 0, &evs, &n, &d);
	if (err) {
		op_log(op, "leader key watch: %s (watching again)", d.msg);
		store_watch_close(op->w);
		op->w = NULL;
		op_campaign(op); /* reopens the watch (a leader keeps its term) */
		return;
	}
	for (i = 0; i < n; i++) {
		const struct store_event *e = &evs[i];

		if (strcmp(e->kv.key, OP_LEADER_KEY))
			continue;
		if (e->revision <= op->seen_rev)
			continue; /* older than the key we know (a late DELETE of the last one) */
		if (e->type == STORE_EVENT_DELETE) {
			if (op->leader)
				op_step_down(op, "the leader key was deleted");
			else
				op_log(op, "the leader key was deleted (lease of %s ended)",
				       op->seen_leader[0] ? op->seen_leader : "the leader");
			op->seen_leader[0] = '\0';
			campaign = true;
		} else if (op->leader && e->kv.lease != op->lease) {
			op_step_down(op, "the leader key holds another lease");
			note_leader(op, &e->kv);
			campaign = false;
		} else if (op->leader) {
			op->leader_rev = op->seen_rev = e->kv.mod_revision;
		} else {
			note_leader(op, &e->kv);
			campaign = false;
		}
	}
	store_events_free(evs, n);
	if (campaign)
		op_campaign(op);
}

void op_resign(struct op *op)
{
	struct diag d = {{0}};
	bool was = op->leader;

	op->leader = false;
	if (!op->lease || !op->st)
		return;
	if (store_lease_revoke(op->st, op->lease, &d) && was)
		op_log(op, "revoking the lease: %s", d.msg);
	else if (was)
		op_log(op, "resigned: lease revoked, the leader key is gone");
	op->lease = 0;
}
