/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API op "observe" (docs/OBSERVABILITY.md): the node's buffered flows after a sequence
 * number, through a filter, the newest N; with follow, the client then receives every new
 * flow that passes its filter, one line each, until it closes the connection.
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

#include "agent/api.h"
#include "flow/filter.h"
#include "flow/flow.h"

static json_t *fail(const char *msg)
{
	return json_pack("{s:b,s:s,s:s}", "ok", 0, "error", msg, "code", AGENT_E_INVALID);
}

/* The wrapped JSON of the flows that pass f, the newest `last` of them (0: all). */
static json_t *flows_json(const struct agent *a, struct flow *v, size_t n,
			  const struct flow_filter *f, size_t last)
{
	json_t *all = json_array(), *out;
	size_t i, k, from;

	for (i = 0; i < n; i++) {
		json_t *j = flow_to_json(&v[i], a->o.node);

		if (j && flow_filter_match(f, j))
			json_array_append_new(all, j);
		else
			json_decref(j);
	}
	k = json_array_size(all);
	if (!last || last >= k)
		return all;
	out = json_array();
	for (from = k - last, i = from; i < k; i++)
		json_array_append(out, json_array_get(all, i));
	json_decref(all);
	return out;
}

static void flows_free(struct flow *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		flow_release(&v[i]);
	free(v);
}

json_t *agent_op_observe(struct agent *a, struct agent_client *c, json_t *req)
{
	json_t *since = json_object_get(req, "since_seq"), *last = json_object_get(req, "last");
	json_t *resp, *flows;
	struct agent_monitor_counts cnt;
	struct flow_filter *f = NULL;
	struct diag d = {{0}};
	struct flow *v;
	size_t n;

	if ((since && !json_is_integer(since)) || (last && !json_is_integer(last)) ||
	    json_integer_value(since) < 0 || json_integer_value(last) < 0)
		return fail("observe: since_seq and last must be non-negative integers");
	if (flow_filter_from_json(json_object_get(req, "filter"), &f, &d))
		return fail(d.msg);
	if (!a->monitor) {
		flow_filter_free(f);
		return json_pack("{s:b,s:s,s:s}", "ok", 0, "error", "the event pipeline is not "
				 "running", "code", AGENT_E_NOT_READY);
	}
	agent_monitor_counts(a, &cnt);
	if (agent_monitor_copy(a, (uint64_t)json_integer_value(since), &v, &n)) {
		flow_filter_free(f);
		return json_pack("{s:b,s:s,s:s}", "ok", 0, "error", "out of memory", "code",
				 AGENT_E_INTERNAL);
	}
	flows = flows_json(a, v, n, f, (size_t)json_integer_value(last));
	resp = json_pack("{s:b,s:s,s:o,s:I,s:I,s:{s:I,s:I,s:I}}", "ok", 1, "node", a->o.node,
			 "flows", flows, "lost", (json_int_t)cnt.lost, "next_seq",
			 (json_int_t)(n ? v[n - 1].seq + 1 : cnt.next_seq), "buffer", "capacity",
			 (json_int_t)cnt.capacity, "size", (json_int_t)cnt.size, "seen",
			 (json_int_t)cnt.seen);
	if (json_is_true(json_object_get(req, "follow"))) {
		flow_filter_free(c->filter);
		c->filter = f;
		c->follow = true;
		c->follow_seq = n ? v[n - 1].seq : cnt.next_seq - 1;
		f = NULL;
		agent_monitor_follow(a, true);
	}
	flows_free(v, n);
	flow_filter_free(f);
	return resp;
}

void agent_observe_push(struct agent *a)
{
	uint64_t since = UINT64_MAX;
	struct flow *v;
	size_t n, i, k;
	bool any = false;

	for (k = 0; k < a->nclients; k++)
		if (a->clients[k].follow && a->clients[k].follow_seq < since)
			since = a->clients[k].follow_seq;
	/* re-armed before the copy: a flow appended from here on notifies again */
	agent_monitor_follow(a, since != UINT64_MAX);
	if (since == UINT64_MAX || agent_monitor_copy(a, since, &v, &n))
		return;
	/* sending may close a client (the last one moves into its slot): walk back */
	for (k = a->nclients; k-- > 0;) {
		struct agent_client *c = &a->clients[k];
		bool open = true;

		if (!c->follow)
			continue;
		for (i = 0; i < n && open; i++) {
			json_t *j;

			if (v[i].seq <= c->follow_seq)
				continue;
			c->follow_seq = v[i].seq;
			j = flow_to_json(&v[i], a->o.node);
			if (j && !flow_filter_match(c->filter, j)) {
				json_decref(j);
				continue;
			}
			open = agent_client_send(a, c, j);
		}
		any |= open;
	}
	flows_free(v, n);
	if (!any)
		agent_monitor_follow(a, false);
}
