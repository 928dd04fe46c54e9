/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Drop events from the agents' flows (the op behind `ciliate observe --node N -o json`,
 * docs/OBSERVABILITY.md): a deny is proven by the POLICY_DENIED drop of the probe's own
 * flow, never by silence; no-unexpected-packet-drops reads every drop since the tests began.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/api.h"
#include "ct.h"

#define SEQ_NONE ((json_int_t)1 << 62) /* past any flow: answers the position only */

struct drop {
	char node[128], hook[32], reason[64], file[64], summary[128];
	char saddr[48], daddr[48];
	int proto; /* IPPROTO_*; 0 unknown */
	int sport, dport, line;
	bool ipv6;
	bool verdict_only; /* a policy verdict, not a drop event */
};

struct drops {
	struct drop *v;
	size_t n;
	uint64_t overwritten, lost;
	char error[512];
};

int ct_flows_mark(struct ct_ctx *c, char *err, size_t errsize)
{
	size_t i;

	for (i = 0; i < c->env.nnodes; i++) {
		json_t *r = ct_agent(&c->env.nodes[i], AGENT_OP_OBSERVE,
				     json_pack("{s:I}", "since_seq", SEQ_NONE), 5000, err, errsize);

		if (!r)
			return -1;
		c->since[i] = (uint64_t)json_integer_value(json_object_get(r, "next_seq")) - 1;
		json_decref(r);
	}
	return 0;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k)) ?: "";
}

static void drop_of(json_t *w, struct drop *d)
{
	json_t *f = json_object_get(w, "flow"), *ip = json_object_get(f, "IP"),
	       *l4 = json_object_get(f, "l4"), *x;
	json_t *ci = json_object_get(f, "ciliate"), *file = json_object_get(f, "file");

	memset(d, 0, sizeof(*d));
	snprintf(d->node, sizeof(d->node), "%s", jstr(f, "node_name"));
	snprintf(d->hook, sizeof(d->hook), "%s", jstr(ci, "hook"));
	snprintf(d->reason, sizeof(d->reason), "%s", jstr(f, "drop_reason_desc"));
	snprintf(d->summary, sizeof(d->summary), "%s", jstr(f, "Summary"));
	snprintf(d->file, sizeof(d->file), "%s", jstr(file, "name"));
	d->line = (int)json_integer_value(json_object_get(file, "line"));
	snprintf(d->saddr, sizeof(d->saddr), "%s", jstr(ip, "source"));
	snprintf(d->daddr, sizeof(d->daddr), "%s", jstr(ip, "destination"));
	d->ipv6 = !strcmp(jstr(ip, "ipVersion"), "IPv6") || strchr(d->saddr, ':');
	d->verdict_only =
		json_integer_value(json_object_get(json_object_get(f, "event_type"), "type")) != 1;
	if ((x = json_object_get(l4, "TCP")))
		d->proto = IPPROTO_TCP;
	else if ((x = json_object_get(l4, "UDP")))
		d->proto = IPPROTO_UDP;
	else if ((x = json_object_get(l4, "ICMPv4")))
		d->proto = IPPROTO_ICMP;
	if (x && d->proto != IPPROTO_ICMP) {
		d->sport = (int)json_integer_value(json_object_get(x, "source_port"));
		d->dport = (int)json_integer_value(json_object_get(x, "destination_port"));
	}
}

/* Every drop (and denying policy verdict) of every agent since the suite's mark. */
static void collect(const struct ct_ctx *c, struct drops *out)
{
	size_t i, k;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < c->env.nnodes; i++) {
		json_t *r, *w;
		uint64_t next, cap;
		char err[512];

		r = ct_agent(&c->env.nodes[i], AGENT_OP_OBSERVE,
			     json_pack("{s:I,s:{s:[s]}}", "since_seq", (json_int_t)c->since[i],
				       "filter", "verdict", "DROPPED"),
			     5000, err, sizeof(err));
		if (!r) {
			snprintf(out->error, sizeof(out->error), "%s", err);
			continue;
		}
		json_array_foreach(json_object_get(r, "flows"), k, w)
		{
			struct drop *nv;

			if (!json_object_get(w, "flow"))
				continue;
			nv = realloc(out->v, (out->n + 1) * sizeof(*nv));
			if (!nv)
				break;
			out->v = nv;
			drop_of(w, &out->v[out->n++]);
		}
		next = (uint64_t)json_integer_value(json_object_get(r, "next_seq"));
		cap = (uint64_t)json_integer_value(
			json_object_get(json_object_get(r, "buffer"), "capacity"));
		if (cap && next - 1 - c->since[i] > cap)
			out->overwritten += next - 1 - c->since[i] - cap;
		out->lost += (uint64_t)json_integer_value(json_object_get(r, "lost"));
		json_decref(r);
	}
}

static int proto_of(const struct ct_action *a)
{
	return a->port ? IPPROTO_TCP : IPPROTO_ICMP;
}

/* The drop belongs to action a's flow: protocol, source address and one of its attempts'
 * ports, destination its target (or, for a service, the backend it was translated to). */
static bool matches(const struct drop *d, const struct ct_action *a)
{
	size_t k;

	if (d->proto != proto_of(a) || strcmp(d->saddr, a->src_ip))
		return false;
	if (d->proto == IPPROTO_ICMP) /* echo ids are not in events */
		return !strcmp(d->daddr, a->to) || (a->alt_dst[0] && !strcmp(d->daddr, a->alt_dst));
	for (k = 0; k < a->nsports; k++)
		if (d->sport == a->sports[k])
			break;
	if (k == a->nsports)
		return false;
	return (!strcmp(d->daddr, a->to) && d->dport == a->port) ||
	       (a->alt_dst[0] && !strcmp(d->daddr, a->alt_dst) && d->dport == a->alt_port);
}

static void remember(struct ct_ctx *c, const struct ct_action *a)
{
	json_t *ports = json_array();
	size_t k;

	for (k = 0; k < a->nsports; k++)
		json_array_append_new(ports, json_integer(a->sports[k]));
	if (!c->expected_drops)
		c->expected_drops = json_array();
	json_array_append_new(c->expected_drops,
			      json_pack("{s:s,s:s,s:i,s:s,s:i,s:o,s:i}", "action", a->name, "src",
					a->src_ip, "proto", proto_of(a), "dst", a->to, "port",
					a->port, "sports", ports, "alt_port", a->alt_port));
	json_object_set_new(
		json_array_get(c->expected_drops, json_array_size(c->expected_drops) - 1),
		"alt_dst", json_string(a->alt_dst));
}

void ct_prove_denials(struct ct_ctx *c, struct ct_action *a, size_t n)
{
	long long deadline = ct_now_ms() + 2000;
	size_t i, k, pending;
	struct drops ds;
	char flow[128];

	for (;;) {
		pending = 0;
		collect(c, &ds);
		for (i = 0; i < n; i++) {
			const struct drop *best = NULL;

			if (a[i].expect != CT_DENY || !a[i].pass || strstr(a[i].observed, "drop="))
				continue;
			for (k = 0; k < ds.n; k++) {
				if (!matches(&ds.v[k], &a[i]) ||
				    strcmp(ds.v[k].reason, "POLICY_DENIED"))
					continue;
				if (!best || (best->verdict_only && !ds.v[k].verdict_only))
					best = &ds.v[k];
			}
			if (!best) {
				pending++;
				continue;
			}
			snprintf(a[i].observed + strlen(a[i].observed),
				 sizeof(a[i].observed) - strlen(a[i].observed),
				 " drop=%s on %s %s %s:%d", best->reason, best->node, best->hook,
				 best->file, best->line);
			remember(c, &a[i]);
		}
		free(ds.v);
		if (!pending || ct_now_ms() > deadline || (c->stop && *c->stop))
			break;
		usleep(100000);
	}
	for (i = 0; i < n; i++) {
		if (a[i].expect != CT_DENY || !a[i].pass || strstr(a[i].observed, "drop="))
			continue;
		a[i].pass = false;
		if (a[i].port)
			snprintf(flow, sizeof(flow), "TCP %s:%u -> %s:%d", a[i].src_ip,
				 a[i].nsports ? a[i].sports[0] : 0, a[i].to, a[i].port);
		else
			snprintf(flow, sizeof(flow), "ICMP %s -> %s", a[i].src_ip, a[i].to);
		snprintf(a[i].reason, sizeof(a[i].reason),
			 "%s, but no POLICY_DENIED drop event of this flow (%s) in any agent's "
			 "flows%s%s: a silent timeout proves no policy drop",
			 a[i].observed, flow, ds.error[0] ? "; " : "", ds.error);
	}
}

static bool expected(const struct ct_ctx *c, const struct drop *d)
{
	json_t *e, *p;
	size_t i, k;

	json_array_foreach(c->expected_drops, i, e)
	{
		struct ct_action a = {0};

		snprintf(a.src_ip, sizeof(a.src_ip), "%s", jstr(e, "src"));
		snprintf(a.to, sizeof(a.to), "%s", jstr(e, "dst"));
		snprintf(a.alt_dst, sizeof(a.alt_dst), "%s", jstr(e, "alt_dst"));
		a.port = (int)json_integer_value(json_object_get(e, "port"));
		a.alt_port = (int)json_integer_value(json_object_get(e, "alt_port"));
		json_array_foreach(json_object_get(e, "sports"), k, p) if (a.nsports < 8)
			a.sports[a.nsports++] = (uint16_t)json_integer_value(p);
		if (matches(d, &a))
			return true;
	}
	return false;
}

size_t ct_unexpected_drops(struct ct_ctx *c, struct ct_action *a, size_t max, size_t *checked,
			   size_t *expected_n, size_t *ignored, char *err, size_t errsize)
{
	struct drops ds;
	size_t i, n = 0;

	*checked = *expected_n = *ignored = 0;
	err[0] = '\0';
	collect(c, &ds);
	if (ds.error[0])
		snprintf(err, errsize, "%s", ds.error);
	else if (ds.overwritten)
		snprintf(err, errsize,
			 "%llu flow(s) were overwritten in the agents' flow buffers "
			 "before they were read: drops may be missing",
			 (unsigned long long)ds.overwritten);
	for (i = 0; i < ds.n; i++) {
		const struct drop *d = &ds.v[i];

		if (d->verdict_only) /* a denying verdict comes with its drop event */
			continue;
		(*checked)++;
		if (expected(c, d)) {
			(*expected_n)++;
			continue;
		}
		if (d->ipv6 && !strcmp(d->reason, "UNSUPPORTED_L3_PROTOCOL")) {
			(*ignored)++; /* IPv4-only pod hooks: the new links' IPv6 ND/MLD */
			continue;
		}
		if (n >= max)
			continue;
		memset(&a[n], 0, sizeof(a[n]));
		snprintf(a[n].name, sizeof(a[n].name), "drop-%zu", n);
		snprintf(a[n].src, sizeof(a[n].src), "%s%s%d", d->saddr, d->sport ? ":" : "",
			 d->sport);
		if (!d->sport)
			snprintf(a[n].src, sizeof(a[n].src), "%s", d->saddr);
		snprintf(a[n].dst, sizeof(a[n].dst), "%s", d->daddr);
		if (d->dport)
			snprintf(a[n].dst + strlen(a[n].dst), sizeof(a[n].dst) - strlen(a[n].dst),
				 ":%d", d->dport);
		snprintf(a[n].observed, sizeof(a[n].observed), "%s", d->reason);
		snprintf(a[n].reason, sizeof(a[n].reason), "unexpected drop %s on %s %s %s:%d: %s",
			 d->reason, d->node, d->hook, d->file, d->line, d->summary);
		n++;
	}
	free(ds.v);
	return n;
}
