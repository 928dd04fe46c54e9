/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flow filters (filter.h): the JSON spec is parsed once into arrays of pod references,
 * names, codes and numbers; matching reads the flow's fields and compares, without
 * allocating.
 */
#include "filter.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/names.h"
#include "render.h"

/* A pod reference: "ns/pod", or "ns/" (pod NULL) for every pod of ns. */
struct pod_ref {
	char *ns;
	char *pod;
};

struct pod_refs {
	struct pod_ref *v;
	size_t n;
};

struct strings {
	char **v;
	size_t n;
};

/* A --type value: an event type (Hubble's numbers) and, for traces, an observation point. */
struct type_ref {
	int type;
	char *obs_point; /* "TO_ENDPOINT"; NULL: any */
};

enum proto_bit {
	PROTO_TCP = 1u << 0,
	PROTO_UDP = 1u << 1,
	PROTO_ICMPV4 = 1u << 2,
	PROTO_ICMPV6 = 1u << 3,
	PROTO_SCTP = 1u << 4,
};

struct flow_filter {
	struct pod_refs from_pod, to_pod, pod;
	struct strings namespaces, verdicts, nodes;
	int *reasons;
	size_t n_reasons;
	unsigned int protocols; /* enum proto_bit mask; 0: any */
	uint16_t *ports;
	size_t n_ports;
	struct type_ref *types;
	size_t n_types;
	bool has_since, has_until;
	int64_t since_ns, until_ns;
	bool flow_fields; /* a field only flows have: lost_events records never match */
};

#define EVENT_TYPE_DROP	   1
#define EVENT_TYPE_TRACE   4
#define EVENT_TYPE_VERDICT 5

/* ---- reading the spec ------------------------------------------------------------------ */

/* A key's values: an array, or one scalar standing for a one-element array. */
static size_t values_count(const json_t *v)
{
	return json_is_array(v) ? json_array_size(v) : 1;
}

static const json_t *value_at(const json_t *v, size_t i)
{
	return json_is_array(v) ? json_array_get(v, i) : v;
}

static int value_string(const char *key, const json_t *v, const char **out, struct diag *d)
{
	if (!json_is_string(v) || !*json_string_value(v))
		return diag_fail(d, "filter key \"%s\": values must be non-empty strings", key);
	*out = json_string_value(v);
	return 0;
}

static void *alloc_array(size_t n, size_t elem)
{
	return calloc(n ? n : 1, elem);
}

static int parse_pod_ref(const char *key, const char *s, struct pod_ref *r, struct diag *d)
{
	const char *slash = strchr(s, '/');

	if (!slash) { /* like hubble: a pod name alone is in namespace "default" */
		r->ns = strdup("default");
		r->pod = strdup(s);
		return r->ns && r->pod ? 0 : -ENOMEM;
	}
	if (slash == s || strchr(slash + 1, '/'))
		return diag_fail(d, "filter key \"%s\": \"%s\" is not ns/pod or ns/", key, s);
	r->ns = strndup(s, (size_t)(slash - s));
	r->pod = slash[1] ? strdup(slash + 1) : NULL;
	if (!r->ns || (slash[1] && !r->pod))
		return -ENOMEM;
	return 0;
}

static int parse_pods(const char *key, const json_t *v, struct pod_refs *out, struct diag *d)
{
	const char *s = NULL;
	int rc;

	out->v = alloc_array(values_count(v), sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < values_count(v); i++) {
		rc = value_string(key, value_at(v, i), &s, d);
		if (!rc)
			rc = parse_pod_ref(key, s, &out->v[out->n], d);
		out->n++; /* counted even when half-filled, so free releases it */
		if (rc)
			return rc;
	}
	return 0;
}

/* Strings, checked (and canonicalised) by canon when given: it returns the stored form or
 * NULL for a bad value. */
static int parse_strings(const char *key, const json_t *v, struct strings *out,
			 const char *(*canon)(const char *s), const char *expected, struct diag *d)
{
	const char *s = NULL, *c;
	int rc;

	out->v = alloc_array(values_count(v), sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < values_count(v); i++) {
		rc = value_string(key, value_at(v, i), &s, d);
		if (rc)
			return rc;
		c = canon ? canon(s) : s;
		if (!c)
			return diag_fail(d, "filter key \"%s\": \"%s\" is not %s", key, s,
					 expected);
		out->v[out->n] = strdup(c);
		if (!out->v[out->n])
			return -ENOMEM;
		out->n++;
	}
	return 0;
}

static const char *const verdict_names[] = {"FORWARDED",  "DROPPED", "ERROR",	  "AUDIT",
					    "REDIRECTED", "TRACED",  "TRANSLATED"};

static const char *canon_verdict(const char *s)
{
	for (size_t i = 0; i < sizeof(verdict_names) / sizeof(verdict_names[0]); i++)
		if (!strcasecmp(s, verdict_names[i]))
			return verdict_names[i];
	return NULL;
}

static int parse_reason(const char *key, const json_t *v, int *out, struct diag *d)
{
	char num[32];
	const char *name = json_string_value(v);

	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		name = num;
	}
	if (!name)
		return diag_fail(d, "filter key \"%s\": values must be names or codes", key);
	*out = reason_from_name(name);
	if (*out < 0)
		return diag_fail(d,
				 "filter key \"%s\": \"%s\" is not a drop reason (a name such as "
				 "POLICY_DENIED, or its code; see `ciliate bpf reasons list`)",
				 key, name);
	return 0;
}

static int parse_reasons(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	int rc;

	f->reasons = alloc_array(values_count(v), sizeof(*f->reasons));
	if (!f->reasons)
		return -ENOMEM;
	for (size_t i = 0; i < values_count(v); i++) {
		rc = parse_reason(key, value_at(v, i), &f->reasons[i], d);
		if (rc)
			return rc;
		f->n_reasons++;
	}
	return 0;
}

static unsigned int proto_bit_of(const char *s)
{
	if (!strcasecmp(s, "TCP"))
		return PROTO_TCP;
	if (!strcasecmp(s, "UDP"))
		return PROTO_UDP;
	if (!strcasecmp(s, "ICMPv4") || !strcasecmp(s, "ICMP"))
		return PROTO_ICMPV4;
	if (!strcasecmp(s, "ICMPv6"))
		return PROTO_ICMPV6;
	if (!strcasecmp(s, "SCTP"))
		return PROTO_SCTP;
	return 0;
}

static int parse_protocols(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	const char *s = NULL;
	unsigned int bit;
	int rc;

	for (size_t i = 0; i < values_count(v); i++) {
		rc = value_string(key, value_at(v, i), &s, d);
		if (rc)
			return rc;
		bit = proto_bit_of(s);
		if (!bit)
			return diag_fail(
				d,
				"filter key \"%s\": \"%s\" is not TCP, UDP, ICMPv4 (ICMP), "
				"ICMPv6 or SCTP",
				key, s);
		f->protocols |= bit;
	}
	return 0;
}

/* A port: a number, or a string of digits, 0-65535. */
static int parse_port(const char *key, const json_t *v, uint16_t *out, struct diag *d)
{
	long long n = -1;
	char *end;

	if (json_is_integer(v)) {
		n = json_integer_value(v);
	} else if (json_is_string(v) && *json_string_value(v)) {
		n = strtoll(json_string_value(v), &end, 10);
		if (*end)
			n = -1;
	}
	if (n < 0 || n > 65535) {
		char *text = json_dumps(v, JSON_ENCODE_ANY);
		int rc = diag_fail(d, "filter key \"%s\": %s is not a port number (0-65535)", key,
				   text ? text : "value");

		free(text);
		return rc;
	}
	*out = (uint16_t)n;
	return 0;
}

static int parse_ports(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	int rc;

	f->ports = alloc_array(values_count(v), sizeof(*f->ports));
	if (!f->ports)
		return -ENOMEM;
	for (size_t i = 0; i < values_count(v); i++) {
		rc = parse_port(key, value_at(v, i), &f->ports[i], d);
		if (rc)
			return rc;
		f->n_ports++;
	}
	return 0;
}

/* "to-endpoint" -> "TO_ENDPOINT"; NULL unless it is one of ciliate's observation points. */
static char *obs_point_canon(const char *s)
{
	static const char *const points[] = {"TO_ENDPOINT",  "TO_STACK",   "TO_OVERLAY",
					     "FROM_OVERLAY", "TO_NETWORK", "FROM_NETWORK",
					     "FROM_ENDPOINT"};
	char up[32];
	size_t i;

	for (i = 0; s[i] && i < sizeof(up) - 1; i++)
		up[i] = s[i] == '-' ? '_' : (char)((s[i] >= 'a' && s[i] <= 'z') ? s[i] - 32 : s[i]);
	up[i] = '\0';
	for (i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		if (!strcmp(up, points[i]))
			return strdup(points[i]);
	return NULL;
}

static int parse_type(const char *key, const char *s, struct type_ref *t, struct diag *d)
{
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);

	if (len == 4 && !strncmp(s, "drop", 4))
		t->type = EVENT_TYPE_DROP;
	else if (len == 5 && !strncmp(s, "trace", 5))
		t->type = EVENT_TYPE_TRACE;
	else if (len == 14 && !strncmp(s, "policy-verdict", 14))
		t->type = EVENT_TYPE_VERDICT;
	else
		return diag_fail(d,
				 "filter key \"%s\": \"%s\" is not drop, trace (or trace:POINT, "
				 "e.g. trace:to-endpoint) or policy-verdict",
				 key, s);
	if (!colon)
		return 0;
	if (t->type == EVENT_TYPE_TRACE)
		t->obs_point = obs_point_canon(colon + 1);
	if (!t->obs_point)
		return diag_fail(d,
				 "filter key \"%s\": \"%s\": only traces have sub-types "
				 "(to-endpoint, to-stack, to-overlay, from-overlay, to-network, "
				 "from-network)",
				 key, s);
	return 0;
}

static int parse_types(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	const char *s = NULL;
	int rc;

	f->types = alloc_array(values_count(v), sizeof(*f->types));
	if (!f->types)
		return -ENOMEM;
	for (size_t i = 0; i < values_count(v); i++) {
		rc = value_string(key, value_at(v, i), &s, d);
		if (!rc)
			rc = parse_type(key, s, &f->types[f->n_types], d);
		f->n_types++;
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_time(const char *key, const json_t *v, int64_t *ns, struct diag *d)
{
	if (!json_is_string(v) || flow_time_parse(json_string_value(v), ns))
		return diag_fail(d,
				 "filter key \"%s\": expected an RFC 3339 time such as "
				 "\"2026-12-04T17:40:00Z\"",
				 key);
	return 0;
}

static int parse_namespaces(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	return parse_strings(key, v, &f->namespaces, NULL, NULL, d);
}

static int parse_verdicts(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	return parse_strings(key, v, &f->verdicts, canon_verdict,
			     "a verdict (FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, "
			     "TRANSLATED)",
			     d);
}

static int parse_nodes(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	return parse_strings(key, v, &f->nodes, NULL, NULL, d);
}

static int parse_from_pod(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	return parse_pods(key, v, &f->from_pod, d);
}

static int parse_to_pod(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	return parse_pods(key, v, &f->to_pod, d);
}

static int parse_pod(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	return parse_pods(key, v, &f->pod, d);
}

static int parse_since(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	f->has_since = true;
	return parse_time(key, v, &f->since_ns, d);
}

static int parse_until(const char *key, const json_t *v, struct flow_filter *f, struct diag *d)
{
	f->has_until = true;
	return parse_time(key, v, &f->until_ns, d);
}

/* The spec's keys; flow_field: a condition only flows (not lost_events records) can meet. */
static const struct key_parser {
	const char *key;
	int (*parse)(const char *key, const json_t *v, struct flow_filter *f, struct diag *d);
	bool flow_field;
} key_parsers[] = {
	{"from_pod", parse_from_pod, true},
	{"to_pod", parse_to_pod, true},
	{"pod", parse_pod, true},
	{"namespace", parse_namespaces, true},
	{"verdict", parse_verdicts, true},
	{"drop_reason", parse_reasons, true},
	{"protocol", parse_protocols, true},
	{"port", parse_ports, true},
	{"type", parse_types, true},
	{"since", parse_since, false},
	{"until", parse_until, false},
	{"node", parse_nodes, false},
};

static int parse_key(struct flow_filter *f, const char *key, const json_t *v, struct diag *d)
{
	const struct key_parser *p = NULL;
	int rc;

	for (size_t i = 0; i < sizeof(key_parsers) / sizeof(key_parsers[0]); i++)
		if (!strcmp(key, key_parsers[i].key))
			p = &key_parsers[i];
	if (!p)
		return diag_fail(d,
				 "filter key \"%s\" is unknown (known: from_pod, to_pod, pod, "
				 "namespace, verdict, drop_reason, protocol, port, type, since, "
				 "until, node)",
				 key);
	if (json_is_array(v) && !json_array_size(v))
		return diag_fail(d, "filter key \"%s\": empty list (leave the key out instead)",
				 key);
	rc = p->parse(key, v, f, d);
	if (rc == -ENOMEM)
		return diag_fail_errno(d, -ENOMEM, "filter key \"%s\": out of memory", key);
	f->flow_fields |= p->flow_field;
	return rc;
}

int flow_filter_from_json(const json_t *spec, struct flow_filter **out, struct diag *d)
{
	struct flow_filter *f;
	const char *key;
	json_t *v;
	int rc;

	*out = NULL;
	if (spec && !json_is_object(spec))
		return diag_fail(d, "filter: expected a JSON object");
	f = calloc(1, sizeof(*f));
	if (!f)
		return diag_fail_errno(d, -ENOMEM, "filter: out of memory");
	json_object_foreach((json_t *)spec, key, v)
	{
		rc = parse_key(f, key, v, d);
		if (rc) {
			flow_filter_free(f);
			return rc;
		}
	}
	*out = f;
	return 0;
}

static void free_pods(struct pod_refs *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].ns);
		free(p->v[i].pod);
	}
	free(p->v);
}

static void free_strings(struct strings *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

void flow_filter_free(struct flow_filter *f)
{
	if (!f)
		return;
	free_pods(&f->from_pod);
	free_pods(&f->to_pod);
	free_pods(&f->pod);
	free_strings(&f->namespaces);
	free_strings(&f->verdicts);
	free_strings(&f->nodes);
	free(f->reasons);
	free(f->ports);
	for (size_t i = 0; i < f->n_types; i++)
		free(f->types[i].obs_point);
	free(f->types);
	free(f);
}

/* ---- matching -------------------------------------------------------------------------- */

static const char *str_field(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static bool pod_ref_matches(const struct pod_ref *r, const json_t *ep)
{
	const char *ns = str_field(ep, "namespace"), *pod;

	if (!ns || strcmp(ns, r->ns))
		return false;
	if (!r->pod)
		return true;
	pod = str_field(ep, "pod_name");
	return pod && !strcmp(pod, r->pod);
}

static bool any_pod_matches(const struct pod_refs *refs, const json_t *ep)
{
	for (size_t i = 0; i < refs->n; i++)
		if (pod_ref_matches(&refs->v[i], ep))
			return true;
	return false;
}

static bool string_in(const struct strings *set, const char *s)
{
	if (!s)
		return false;
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->v[i], s))
			return true;
	return false;
}

static bool namespace_matches(const struct strings *set, const json_t *flow)
{
	return string_in(set, str_field(json_object_get(flow, "source"), "namespace")) ||
	       string_in(set, str_field(json_object_get(flow, "destination"), "namespace"));
}

/* The flow's drop reason code: "drop_reason", else the code of "drop_reason_desc". */
static int flow_reason(const json_t *flow)
{
	const json_t *code = json_object_get(flow, "drop_reason");
	const char *name;

	if (json_is_integer(code) && json_integer_value(code) > 0)
		return (int)json_integer_value(code);
	name = str_field(flow, "drop_reason_desc");
	return name ? reason_from_name(name) : -1;
}

static bool reason_matches(const struct flow_filter *f, const json_t *flow)
{
	int code = flow_reason(flow);

	for (size_t i = 0; code >= 0 && i < f->n_reasons; i++)
		if (f->reasons[i] == code)
			return true;
	return false;
}

/* The l4 member present ("TCP", ...) with its bit; NULL when the flow has none. */
static const json_t *flow_l4(const json_t *flow, unsigned int *bit)
{
	static const struct {
		const char *key;
		unsigned int bit;
	} protos[] = {{"TCP", PROTO_TCP},
		      {"UDP", PROTO_UDP},
		      {"ICMPv4", PROTO_ICMPV4},
		      {"ICMPv6", PROTO_ICMPV6},
		      {"SCTP", PROTO_SCTP}};
	const json_t *l4 = json_object_get(flow, "l4"), *p;

	for (size_t i = 0; l4 && i < sizeof(protos) / sizeof(protos[0]); i++) {
		p = json_object_get(l4, protos[i].key);
		if (p) {
			*bit = protos[i].bit;
			return p;
		}
	}
	*bit = 0;
	return NULL;
}

static bool port_matches(const struct flow_filter *f, const json_t *flow)
{
	unsigned int bit;
	const json_t *l4 = flow_l4(flow, &bit);
	json_t *sp, *dp;

	if (!l4 || (bit & (PROTO_ICMPV4 | PROTO_ICMPV6)))
		return false;
	sp = json_object_get(l4, "source_port");
	dp = json_object_get(l4, "destination_port");
	for (size_t i = 0; i < f->n_ports; i++)
		if ((sp && json_integer_value(sp) == f->ports[i]) ||
		    (dp && json_integer_value(dp) == f->ports[i]))
			return true;
	return false;
}

static bool type_matches(const struct flow_filter *f, const json_t *flow)
{
	json_int_t type =
		json_integer_value(json_object_get(json_object_get(flow, "event_type"), "type"));
	const char *point = str_field(flow, "trace_observation_point");

	for (size_t i = 0; i < f->n_types; i++) {
		if (f->types[i].type != type)
			continue;
		if (!f->types[i].obs_point || (point && !strcmp(point, f->types[i].obs_point)))
			return true;
	}
	return false;
}

static bool flow_fields_match(const struct flow_filter *f, const json_t *flow)
{
	unsigned int bit;

	if (f->from_pod.n && !any_pod_matches(&f->from_pod, json_object_get(flow, "source")))
		return false;
	if (f->to_pod.n && !any_pod_matches(&f->to_pod, json_object_get(flow, "destination")))
		return false;
	if (f->pod.n && !any_pod_matches(&f->pod, json_object_get(flow, "source")) &&
	    !any_pod_matches(&f->pod, json_object_get(flow, "destination")))
		return false;
	if (f->namespaces.n && !namespace_matches(&f->namespaces, flow))
		return false;
	if (f->verdicts.n && !string_in(&f->verdicts, str_field(flow, "verdict")))
		return false;
	if (f->n_reasons && !reason_matches(f, flow))
		return false;
	if (f->protocols && (flow_l4(flow, &bit), !(bit & f->protocols)))
		return false;
	if (f->n_ports && !port_matches(f, flow))
		return false;
	if (f->n_types && !type_matches(f, flow))
		return false;
	return true;
}

/* node, since, until: these apply to every record, flows and lost_events alike. */
static bool record_fields_match(const struct flow_filter *f, const json_t *wrapped,
				const json_t *flow)
{
	const char *node;
	int64_t t;

	if (f->nodes.n) {
		node = str_field(wrapped, "node_name");
		if (!node)
			node = str_field(flow, "node_name");
		if (!string_in(&f->nodes, node))
			return false;
	}
	if (f->has_since || f->has_until) {
		t = flow_record_time(wrapped);
		if ((f->has_since && t < f->since_ns) || (f->has_until && t > f->until_ns))
			return false;
	}
	return true;
}

bool flow_filter_match(const struct flow_filter *f, const json_t *wrapped)
{
	const json_t *flow;

	if (!f)
		return true;
	flow = json_object_get(wrapped, "flow");
	if (!flow)
		return !f->flow_fields && record_fields_match(f, wrapped, NULL);
	return record_fields_match(f, wrapped, flow) && flow_fields_match(f, flow);
}
