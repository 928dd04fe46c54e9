/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Evidence: the datapath's own drop events behind each deny (SPEC section 5). Before a step's
 * probes the runner notes where every node's flow buffer stands; afterwards it reads the
 * flows each agent decoded since then (op "observe", docs/OBSERVABILITY.md) and keeps the
 * drops, so that each unanswered probe can be matched with the drop of its own 5-tuple, on
 * whichever node and hook dropped it.
 */
#include "evidence.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api.h"
#include "common/names.h"

#define OBSERVE_TIMEOUT_MS 10000
#define SEQ_NONE ((json_int_t)1 << 62) /* since_seq past any flow: copies nothing */

static int observe(const struct sim_host *node, json_t *req, json_t **resp, char *err,
		   size_t errsize)
{
	char sock[PATH_MAX];
	int rc;

	sim_agent_sock(node, sock, sizeof(sock));
	rc = agent_call(sock, req, OBSERVE_TIMEOUT_MS, resp, err, errsize);
	json_decref(req);
	if (rc)
		return rc;
	if (!json_is_true(json_object_get(*resp, "ok"))) {
		snprintf(err, errsize, "%s",
			 json_string_value(json_object_get(*resp, "error")) ?: "not ok");
		json_decref(*resp);
		*resp = NULL;
		return -EPROTO;
	}
	return 0;
}

int sim_evidence_begin(const struct sim_cluster *c, struct sim_evidence *ev)
{
	char err[256];
	json_t *resp;
	size_t i;

	memset(ev, 0, sizeof(*ev));
	ev->since = calloc(c->nhosts + 1, sizeof(*ev->since));
	ev->lost = calloc(c->nhosts + 1, sizeof(*ev->lost));
	if (!ev->since || !ev->lost)
		return -ENOMEM;
	for (i = 0; i < c->nhosts; i++) {
		if (c->hosts[i].kind != SIM_NODE || !c->hosts[i].agent.pid)
			continue;
		if (observe(&c->hosts[i], json_pack("{s:s,s:I}", "op", AGENT_OP_OBSERVE,
						     "since_seq", SEQ_NONE),
			    &resp, err, sizeof(err))) {
			snprintf(ev->error, sizeof(ev->error), "node %.60s: observe: %.200s",
				 c->hosts[i].name, err);
			continue;
		}
		/* the flows of this step are those from next_seq on */
		ev->since[i] = (uint64_t)json_integer_value(json_object_get(resp, "next_seq")) - 1;
		ev->lost[i] = (uint64_t)json_integer_value(json_object_get(resp, "lost"));
		json_decref(resp);
	}
	ev->active = true;
	return 0;
}

static uint16_t port_of(json_t *l4, const char *key)
{
	const char *proto;
	json_t *v;

	json_object_foreach(l4, proto, v) {
		json_t *p = json_object_get(v, key);

		if (p)
			return (uint16_t)json_integer_value(p);
	}
	return 0;
}

static uint8_t proto_of(json_t *l4)
{
	if (json_object_get(l4, "TCP"))
		return IPPROTO_TCP;
	if (json_object_get(l4, "UDP"))
		return IPPROTO_UDP;
	if (json_object_get(l4, "ICMPv4"))
		return IPPROTO_ICMP;
	if (json_object_get(l4, "SCTP"))
		return IPPROTO_SCTP;
	return 0;
}

/* A drop flow (a drop event, or a policy verdict that denied) as a struct sim_drop. */
static int drop_from_flow(json_t *wrapped, struct sim_drop *d)
{
	json_t *fl = json_object_get(wrapped, "flow"), *ip = json_object_get(fl, "IP");
	json_t *l4 = json_object_get(fl, "l4"), *file = json_object_get(fl, "file");
	json_t *x = json_object_get(fl, "ciliate");
	const char *s = json_string_value(json_object_get(ip, "source"));
	const char *t = json_string_value(json_object_get(ip, "destination"));

	memset(d, 0, sizeof(*d));
	if (!s || !t || inet_pton(AF_INET, s, &d->saddr) != 1 ||
	    inet_pton(AF_INET, t, &d->daddr) != 1)
		return -1;
	d->proto = proto_of(l4);
	d->sport = port_of(l4, d->proto == IPPROTO_ICMP ? "type" : "source_port");
	d->dport = port_of(l4, d->proto == IPPROTO_ICMP ? "code" : "destination_port");
	d->event_type = (int)json_integer_value(
		json_object_get(json_object_get(fl, "event_type"), "type"));
	snprintf(d->node, sizeof(d->node), "%s",
		 json_string_value(json_object_get(wrapped, "node_name")) ?: "");
	snprintf(d->hook, sizeof(d->hook), "%s",
		 json_string_value(json_object_get(x, "hook")) ?: "");
	snprintf(d->reason, sizeof(d->reason), "%s",
		 json_string_value(json_object_get(fl, "drop_reason_desc")) ?: "");
	snprintf(d->file, sizeof(d->file), "%s",
		 json_string_value(json_object_get(file, "name")) ?: "");
	d->line = (int)json_integer_value(json_object_get(file, "line"));
	snprintf(d->time, sizeof(d->time), "%s",
		 json_string_value(json_object_get(wrapped, "time")) ?: "");
	d->seq = (uint64_t)json_integer_value(json_object_get(x, "seq"));
	return 0;
}

static int drops_add(struct sim_evidence *ev, const struct sim_drop *d)
{
	struct sim_drop *v;

	if (ev->ndrops == ev->drops_cap) {
		ev->drops_cap = ev->drops_cap ? ev->drops_cap * 2 : 64;
		v = realloc(ev->drops, ev->drops_cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ev->drops = v;
	}
	ev->drops[ev->ndrops++] = *d;
	return 0;
}

/* Reads one node's flows of the step: drops into ev, every flow into ev->log if kept. */
static void collect_node(const struct sim_host *node, size_t idx, struct sim_evidence *ev,
			 bool keep_all)
{
	json_t *req = json_pack("{s:s,s:I}", "op", AGENT_OP_OBSERVE, "since_seq",
				(json_int_t)ev->since[idx]), *resp, *flows, *f;
	uint64_t next, cap, lost;
	struct sim_drop d;
	char err[256];
	size_t i;

	if (!keep_all) /* only the drops are needed: let the agent filter */
		json_object_set_new(req, "filter", json_pack("{s:[s]}", "verdict", "DROPPED"));
	if (observe(node, req, &resp, err, sizeof(err))) {
		snprintf(ev->error, sizeof(ev->error), "node %.60s: observe: %.200s", node->name, err);
		return;
	}
	flows = json_object_get(resp, "flows");
	json_array_foreach(flows, i, f) {
		if (json_object_get(f, "flow") &&
		    !strcmp(json_string_value(json_object_get(json_object_get(f, "flow"),
							      "verdict")) ?: "", "DROPPED") &&
		    !drop_from_flow(f, &d))
			drops_add(ev, &d);
		if (keep_all && ev->log)
			json_array_append(ev->log, f);
	}
	next = (uint64_t)json_integer_value(json_object_get(resp, "next_seq"));
	cap = (uint64_t)json_integer_value(json_object_get(json_object_get(resp, "buffer"),
							   "capacity"));
	lost = (uint64_t)json_integer_value(json_object_get(resp, "lost"));
	/* flows overwritten before they were read: their drops cannot be matched */
	if (cap && next - 1 - ev->since[idx] > cap)
		ev->overwritten += next - 1 - ev->since[idx] - cap;
	if (lost > ev->lost[idx])
		ev->lost_total += lost - ev->lost[idx];
	json_decref(resp);
}

int sim_evidence_collect(const struct sim_cluster *c, struct sim_evidence *ev, json_t *log)
{
	size_t i;

	if (!ev->active)
		return 0;
	ev->log = log;
	for (i = 0; i < c->nhosts; i++)
		if (c->hosts[i].kind == SIM_NODE && c->hosts[i].agent.pid)
			collect_node(&c->hosts[i], i, ev, log != NULL);
	ev->log = NULL;
	return 0;
}

/* The source side of a probe's flow: protocol, address, one of its attempts' ports. */
static bool same_source(const struct sim_drop *d, uint8_t proto, uint32_t saddr,
			const uint16_t *sports, size_t nsports)
{
	size_t k;

	if (d->proto != proto || d->saddr != saddr)
		return false;
	if (proto == IPPROTO_ICMP) /* echo ids are not in events */
		return true;
	for (k = 0; k < nsports; k++)
		if (d->sport == sports[k])
			return true;
	return false;
}

/* A drop event (type 1, with its source line) names more than a verdict. */
static const struct sim_drop *better(const struct sim_drop *best, const struct sim_drop *d)
{
	return !best || (best->event_type != 1 && d->event_type == 1) ? d : best;
}

const struct sim_drop *sim_evidence_match(const struct sim_evidence *ev, uint8_t proto,
					  uint32_t saddr, const uint16_t *sports, size_t nsports,
					  uint32_t daddr, uint16_t dport)
{
	const struct sim_drop *best = NULL;
	size_t i;

	for (i = 0; i < ev->ndrops; i++) {
		const struct sim_drop *d = &ev->drops[i];

		if (!same_source(d, proto, saddr, sports, nsports) || d->daddr != daddr)
			continue;
		if (proto != IPPROTO_ICMP && d->dport != dport)
			continue;
		best = better(best, d);
	}
	return best;
}

const struct sim_drop *sim_evidence_match_dsts(const struct sim_evidence *ev, uint8_t proto,
					       uint32_t saddr, const uint16_t *sports,
					       size_t nsports, const struct sim_flow_dst *dsts,
					       size_t ndsts)
{
	const struct sim_drop *best = NULL;
	size_t i, k;

	for (i = 0; i < ev->ndrops; i++) {
		const struct sim_drop *d = &ev->drops[i];

		if (!same_source(d, proto, saddr, sports, nsports))
			continue;
		for (k = 0; k < ndsts; k++)
			if (d->daddr == dsts[k].addr && d->dport == dsts[k].port)
				break;
		if (k < ndsts)
			best = better(best, d);
	}
	return best;
}

void sim_evidence_free(struct sim_evidence *ev)
{
	free(ev->since);
	free(ev->lost);
	free(ev->drops);
	memset(ev, 0, sizeof(*ev));
}
