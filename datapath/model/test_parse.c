/* SPDX-License-Identifier: Apache-2.0 */
/* The sim.ciliate.dev/v1 Test document: steps with state changes (apply, inline manifests,
 * delete) and checks (probes, matrices). Strict: unknown fields are errors. */
#include "parse.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static int ref_field(struct parse_ctx *p, const yaml_node_t *item, const char *key,
		     const char *path, bool source, char *buf, size_t size)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *n = yt_map_get(c, item, key);
	char sub[YT_PATH_MAX], why[512];
	int err;

	yt_path(sub, "%s.%s", path, key);
	err = yt_str(c, n, sub, buf, size);
	if (err)
		return err;
	if (endpoint_ref_check(p->m, buf, why, sizeof(why)))
		return yt_fail(c, n, sub, "%s", why);
	if (source && (!strncmp(buf, "svc/", 4) || !strncmp(buf, "ip/", 3)))
		return yt_fail(c, n, sub, "\"%s\": a probe source is ns/pod, node/NAME or ext/NAME",
			       buf);
	return 0;
}

static int proto_field(struct parse_ctx *p, const yaml_node_t *item, const char *path,
		       uint8_t *proto)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *n = yt_map_get(c, item, "protocol");
	char sub[YT_PATH_MAX];

	*proto = IPPROTO_TCP;
	if (n && (!yt_scalar(n) || proto_parse(yt_scalar(n), true, proto)))
		return yt_fail(c, n, yt_path(sub, "%s.protocol", path),
			       "unknown protocol \"%s\" (TCP, UDP, SCTP or ICMP)",
			       yt_scalar(n) ? yt_scalar(n) : "");
	return 0;
}

static int port_field(struct parse_ctx *p, const yaml_node_t *item, const char *path,
		      uint8_t proto, uint16_t *port)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *n = yt_map_get(c, item, "port");
	char sub[YT_PATH_MAX];
	unsigned long v;
	int err;

	yt_path(sub, "%s.port", path);
	if (!n) {
		if (proto == IPPROTO_ICMP)
			return 0;
		return yt_fail(c, item, sub, "required field missing");
	}
	err = yt_uint(c, n, sub, 1, 65535, &v);
	if (!err)
		*port = (uint16_t)v;
	return err;
}

/* Reads an optional scalar field restricted to a list of values into buf. */
static int choice_field(struct parse_ctx *p, const yaml_node_t *item, const char *key,
			const char *path, const char *const *allowed, const char *hint, char *buf,
			size_t size)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *n = yt_map_get(c, item, key);
	char sub[YT_PATH_MAX];
	size_t i;
	int err;

	if (!n)
		return 0;
	yt_path(sub, "%s.%s", path, key);
	err = yt_str(c, n, sub, buf, size);
	if (err)
		return err;
	for (i = 0; allowed[i]; i++)
		if (!strcmp(buf, allowed[i]))
			return 0;
	return yt_fail(c, n, sub, "unknown value \"%s\" (%s)", buf, hint);
}

static int parse_backend_in(struct parse_ctx *p, const yaml_node_t *n, const char *path,
			    struct m_probe *pr)
{
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], why[512];
	yaml_node_item_t *it;
	yaml_node_t *v;
	int err;

	err = yt_want_seq(c, n, path);
	if (err)
		return err;
	pr->backend_in = calloc(seq_len(n) + 1, sizeof(*pr->backend_in));
	if (!pr->backend_in)
		return -ENOMEM;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		v = yt_node(c, *it);
		yt_path(sub, "%s[%zu]", path, pr->nbackend_in);
		err = yt_strdup(c, v, sub, &pr->backend_in[pr->nbackend_in]);
		if (err)
			return err;
		pr->nbackend_in++;
		if (endpoint_ref_check(p->m, yt_scalar(v), why, sizeof(why)) ||
		    strchr(yt_scalar(v), '/') != strrchr(yt_scalar(v), '/') ||
		    !strncmp(yt_scalar(v), "node/", 5) || !strncmp(yt_scalar(v), "ext/", 4) ||
		    !strncmp(yt_scalar(v), "ip/", 3))
			return yt_fail(c, v, sub, "\"%s\": a backend is ns/pod", yt_scalar(v));
	}
	return 0;
}

/* The required from/to endpoint references of a probe or stream. */
static int from_to_fields(struct parse_ctx *p, const yaml_node_t *item, const char *path,
			  char *from, size_t fsize, char *to, size_t tsize)
{
	int err = yt_require(&p->yt, item, path, "from");

	if (!err)
		err = yt_require(&p->yt, item, path, "to");
	if (!err)
		err = ref_field(p, item, "from", path, true, from, fsize);
	if (!err)
		err = ref_field(p, item, "to", path, false, to, tsize);
	return err;
}

/* payloadBytes, tcpFastOpen, pmtu: the ciliate extensions for large requests and the PMTU
 * outcome (docs/SIMULATOR.md). */
static int parse_probe_size(struct parse_ctx *p, const yaml_node_t *item, const char *path,
			    struct m_probe *pr)
{
	const struct yt_ctx *c = &p->yt;
	bool tcp_udp = pr->proto == IPPROTO_TCP || pr->proto == IPPROTO_UDP;
	char sub[YT_PATH_MAX];
	unsigned long v;
	yaml_node_t *n;
	int err;

	n = yt_map_get(c, item, "payloadBytes");
	if (n) {
		yt_path(sub, "%s.payloadBytes", path);
		err = yt_uint(c, n, sub, 64, 8192, &v);
		if (err)
			return err;
		if (!tcp_udp)
			return yt_fail(c, n, sub, "needs protocol TCP or UDP");
		pr->payload_bytes = (unsigned int)v;
	}
	n = yt_map_get(c, item, "tcpFastOpen");
	if (n) {
		yt_path(sub, "%s.tcpFastOpen", path);
		err = yt_bool(c, n, sub, &pr->tcp_fast_open);
		if (err)
			return err;
		if (pr->tcp_fast_open && pr->proto != IPPROTO_TCP)
			return yt_fail(c, n, sub, "needs protocol TCP");
	}
	n = yt_map_get(c, item, "pmtu");
	if (n && !pr->payload_bytes)
		return yt_fail(c, n, yt_path(sub, "%s.pmtu", path),
			       "needs payloadBytes (a request large enough to need it)");
	if (n && !pr->expect_allow)
		return yt_fail(c, n, yt_path(sub, "%s.pmtu", path),
			       "needs expect: allow (the exchange must work after the ICMP)");
	return 0;
}

static int parse_probe(struct parse_ctx *p, const yaml_node_t *item, const char *path,
		       struct m_probe *pr)
{
	static const char *const fields[] = { "from", "to", "port", "protocol", "expect",
					      "backendIn", "clientIPSeen", "sameBackend", "spread",
					      "replyBypasses", "encryptedOn", "dropReason",
					      "payloadBytes", "tcpFastOpen", "pmtu", NULL };
	static const char *const expects[] = { "allow", "deny", NULL };
	static const char *const pmtu[] = { "frag-needed", NULL };
	static const char *const seen[] = { "preserved", "node", "egress-ip", NULL };
	static const char *const enc[] = { "fabric", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], expect[8] = "";
	unsigned long v;
	yaml_node_t *n;
	int err;

	pr->line = yt_line(item);
	err = yt_check_fields(c, item, path, fields);
	if (!err)
		err = yt_require(c, item, path, "expect");
	if (!err)
		err = from_to_fields(p, item, path, pr->from, sizeof(pr->from), pr->to,
				     sizeof(pr->to));
	if (!err)
		err = proto_field(p, item, path, &pr->proto);
	if (!err)
		err = port_field(p, item, path, pr->proto, &pr->port);
	if (!err)
		err = choice_field(p, item, "expect", path, expects, "allow | deny", expect,
				   sizeof(expect));
	if (!err)
		err = choice_field(p, item, "clientIPSeen", path, seen,
				   "preserved | node | egress-ip", pr->client_ip_seen,
				   sizeof(pr->client_ip_seen));
	if (!err)
		err = choice_field(p, item, "encryptedOn", path, enc, "fabric", pr->encrypted_on,
				   sizeof(pr->encrypted_on));
	if (!err)
		err = choice_field(p, item, "pmtu", path, pmtu, "frag-needed", pr->pmtu,
				   sizeof(pr->pmtu));
	if (err)
		return err;
	pr->expect_allow = !strcmp(expect, "allow");
	n = yt_map_get(c, item, "encryptedOn");
	if (n && !pr->expect_allow)
		return yt_fail(c, n, yt_path(sub, "%s.encryptedOn", path),
			       "needs expect: allow (a denied probe puts nothing on the fabric to "
			       "check)");
	err = parse_probe_size(p, item, path, pr);
	if (err)
		return err;
	n = yt_map_get(c, item, "backendIn");
	if (n) {
		err = parse_backend_in(p, n, yt_path(sub, "%s.backendIn", path), pr);
		if (err)
			return err;
	}
	n = yt_map_get(c, item, "sameBackend");
	if (n) {
		err = yt_uint(c, n, yt_path(sub, "%s.sameBackend", path), 1, 100000, &v);
		if (err)
			return err;
		pr->same_backend = (int)v;
	}
	n = yt_map_get(c, item, "spread");
	if (n) {
		err = yt_scalar(n) ? yt_strdup(c, n, yt_path(sub, "%s.spread", path), &pr->spread) :
				     yt_serialize(c, n, &pr->spread);
		if (err)
			return err;
	}
	n = yt_map_get(c, item, "replyBypasses");
	if (n) {
		yt_path(sub, "%s.replyBypasses", path);
		err = yt_str(c, n, sub, pr->reply_bypasses, sizeof(pr->reply_bypasses));
		if (err)
			return err;
		if (strncmp(pr->reply_bypasses, "node/", 5) ||
		    !cluster_find_node(p->m, pr->reply_bypasses + 5))
			return yt_fail(c, n, sub, "\"%s\": expected node/NAME of a Cluster node",
				       pr->reply_bypasses);
	}
	n = yt_map_get(c, item, "dropReason");
	if (n) {
		yt_path(sub, "%s.dropReason", path);
		err = yt_str(c, n, sub, pr->drop_reason, sizeof(pr->drop_reason));
		if (err)
			return err;
		if (!drop_reason_known(pr->drop_reason))
			return yt_fail(c, n, sub, "unknown drop reason \"%s\"", pr->drop_reason);
		if (pr->expect_allow)
			return yt_fail(c, n, sub, "a dropReason needs expect: deny");
	}
	return 0;
}

static int parse_matrix(struct parse_ctx *p, const yaml_node_t *item, const char *path,
			struct m_matrix *m)
{
	static const char *const fields[] = { "port", "protocol", "table", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	int err;

	m->line = yt_line(item);
	err = yt_check_fields(c, item, path, fields);
	if (!err)
		err = yt_require(c, item, path, "table");
	if (!err)
		err = proto_field(p, item, path, &m->proto);
	if (!err)
		err = port_field(p, item, path, m->proto, &m->port);
	if (err)
		return err;
	return matrix_table_parse(c, p->m, yt_map_get(c, item, "table"),
				  yt_path(sub, "%s.table", path), m);
}

static int parse_delete(struct parse_ctx *p, const yaml_node_t *item, const char *path,
			struct m_delete_ref *ref)
{
	static const char *const fields[] = { "kind", "namespace", "name", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_t *n;
	int err;

	err = yt_check_fields(c, item, path, fields);
	if (!err)
		err = yt_require(c, item, path, "kind");
	if (!err)
		err = yt_require(c, item, path, "name");
	if (!err)
		err = yt_str(c, yt_map_get(c, item, "kind"), yt_path(sub, "%s.kind", path),
			     ref->kind, sizeof(ref->kind));
	if (!err)
		err = yt_str(c, yt_map_get(c, item, "name"), yt_path(sub, "%s.name", path),
			     ref->name, sizeof(ref->name));
	if (err)
		return err;
	/* as `ciliate apply/delete` name objects: cluster-scoped kinds have no namespace (one
	 * given is ignored), namespaced kinds default to "default" */
	n = yt_map_get(c, item, "namespace");
	if (manifest_kind_cluster_scoped(ref->kind))
		ref->ns[0] = '\0';
	else if (n)
		return yt_str(c, n, yt_path(sub, "%s.namespace", path), ref->ns, sizeof(ref->ns));
	else
		strcpy(ref->ns, "default");
	return 0;
}

/* Validates inline manifests by parsing them into a scratch model sharing the Cluster. */
static int check_manifests(struct parse_ctx *p, const yaml_node_t *seq, const char *path)
{
	struct cluster_model scratch = { 0 };
	struct parse_ctx sp = *p;
	char sub[YT_PATH_MAX];
	yaml_node_item_t *it;
	size_t i = 0;
	int err = 0;

	scratch.name = p->m->name;
	scratch.has_cluster = p->m->has_cluster;
	scratch.cluster = p->m->cluster;
	sp.m = &scratch;
	sp.s = NULL;
	for (it = seq->data.sequence.items.start; !err && it < seq->data.sequence.items.top; it++)
		err = manifest_parse(&sp, yt_node(&p->yt, *it), yt_path(sub, "%s[%zu]", path, i++));
	cluster_model_free_workloads(&scratch);
	return err;
}

static int parse_fault(struct parse_ctx *p, const yaml_node_t *item, const char *path,
		       struct m_fault *f)
{
	static const char *const fields[] = { "action", "node", NULL };
	static const char *const actions[] = { "restart-agent", "link-down", "link-up",
					       "rekey-agent", "withdraw-key", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], action[16] = "";
	int err;

	f->line = yt_line(item);
	err = yt_check_fields(c, item, path, fields);
	if (!err)
		err = yt_require(c, item, path, "action");
	if (!err)
		err = yt_require(c, item, path, "node");
	if (!err)
		err = choice_field(p, item, "action", path, actions,
				   "restart-agent | link-down | link-up | rekey-agent | withdraw-key",
				   action, sizeof(action));
	if (!err)
		err = yt_str(c, yt_map_get(c, item, "node"), yt_path(sub, "%s.node", path), f->node,
			     sizeof(f->node));
	if (err)
		return err;
	if (!cluster_find_node(p->m, f->node))
		return yt_fail(c, yt_map_get(c, item, "node"), sub,
			       "\"%s\" is not a node of the Cluster", f->node);
	f->action = !strcmp(action, "restart-agent") ? FAULT_RESTART_AGENT :
		    !strcmp(action, "link-down")     ? FAULT_LINK_DOWN :
		    !strcmp(action, "rekey-agent")   ? FAULT_REKEY_AGENT :
		    !strcmp(action, "withdraw-key")  ? FAULT_WITHDRAW_KEY :
						       FAULT_LINK_UP;
	return 0;
}

static int parse_stream(struct parse_ctx *p, const yaml_node_t *item, const char *path,
			struct m_stream *st)
{
	static const char *const fields[] = { "from", "to", "port", "protocol", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	uint8_t proto;
	int err;

	st->line = yt_line(item);
	err = yt_check_fields(c, item, path, fields);
	if (!err)
		err = from_to_fields(p, item, path, st->from, sizeof(st->from), st->to,
				     sizeof(st->to));
	if (!err)
		err = proto_field(p, item, path, &proto);
	if (!err && proto != IPPROTO_TCP)
		err = yt_fail(c, yt_map_get(c, item, "protocol"), yt_path(sub, "%s.protocol", path),
			      "a stream is a TCP connection");
	if (!err)
		err = port_field(p, item, path, proto, &st->port);
	return err;
}

#define PARSE_LIST(p, step, node, path, arr, cnt, fn)                                    \
	({                                                                               \
		yaml_node_item_t *it_;                                                   \
		char ip_[YT_PATH_MAX];                                                   \
		int e_ = yt_want_seq(&(p)->yt, node, path);                              \
		if (!e_) {                                                               \
			(step)->arr = calloc(seq_len(node) + 1, sizeof(*(step)->arr));   \
			e_ = (step)->arr ? 0 : -ENOMEM;                                  \
		}                                                                        \
		for (it_ = (node)->data.sequence.items.start;                            \
		     !e_ && it_ < (node)->data.sequence.items.top; it_++) {              \
			(step)->cnt++;                                                   \
			e_ = fn(p, yt_node(&(p)->yt, *it_),                              \
				yt_path(ip_, "%s[%zu]", path, (step)->cnt - 1),          \
				&(step)->arr[(step)->cnt - 1]);                          \
		}                                                                        \
		e_;                                                                      \
	})

static int parse_step(struct parse_ctx *p, const yaml_node_t *item, const char *path,
		      size_t idx, struct m_step *st)
{
	static const char *const fields[] = { "name", "apply", "manifests", "delete",
					      "expectRejected", "faults", "streams", "probes",
					      "matrix", "matrices", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_t *n;
	int err;

	st->line = yt_line(item);
	err = yt_check_fields(c, item, path, fields);
	if (err)
		return err;
	n = yt_map_get(c, item, "name");
	if (n)
		err = yt_str(c, n, yt_path(sub, "%s.name", path), st->name, sizeof(st->name));
	else
		snprintf(st->name, sizeof(st->name), "step-%zu", idx + 1);
	if (err)
		return err;
	if (yt_map_get(c, item, "apply") && yt_map_get(c, item, "manifests"))
		return yt_fail(c, yt_map_get(c, item, "manifests"),
			       yt_path(sub, "%s.manifests", path),
			       "a step has either apply or manifests, not both");
	if (yt_map_get(c, item, "matrix") && yt_map_get(c, item, "matrices"))
		return yt_fail(c, yt_map_get(c, item, "matrices"), yt_path(sub, "%s.matrices", path),
			       "a step has either matrix or matrices, not both");
	n = yt_map_get(c, item, "apply");
	if (n) {
		char rel[4096];

		err = yt_str(c, n, yt_path(sub, "%s.apply", path), rel, sizeof(rel));
		if (!err)
			err = path_resolve(p->dir, rel, &st->apply);
		if (err)
			return err;
	}
	n = yt_map_get(c, item, "manifests");
	if (n) {
		yt_path(sub, "%s.manifests", path);
		err = yt_want_seq(c, n, sub);
		if (!err)
			err = check_manifests(p, n, sub);
		if (!err)
			err = yt_serialize_items(c, n, &st->manifests_yaml);
		if (err)
			return err;
	}
	n = yt_map_get(c, item, "delete");
	if (n) {
		yt_path(sub, "%s.delete", path);
		err = PARSE_LIST(p, st, n, sub, deletes, ndeletes, parse_delete);
		if (err)
			return err;
	}
	n = yt_map_get(c, item, "expectRejected");
	if (n) {
		yt_path(sub, "%s.expectRejected", path);
		if (!st->apply && !st->manifests_yaml && !st->ndeletes)
			return yt_fail(c, n, sub, "needs apply, manifests or delete in the step");
		err = yt_strdup(c, n, sub, &st->expect_rejected);
		if (err)
			return err;
	}
	n = yt_map_get(c, item, "faults");
	if (n) {
		yt_path(sub, "%s.faults", path);
		err = PARSE_LIST(p, st, n, sub, faults, nfaults, parse_fault);
		if (err)
			return err;
	}
	n = yt_map_get(c, item, "streams");
	if (n) {
		yt_path(sub, "%s.streams", path);
		err = PARSE_LIST(p, st, n, sub, streams, nstreams, parse_stream);
		if (err)
			return err;
	}
	n = yt_map_get(c, item, "probes");
	if (n) {
		yt_path(sub, "%s.probes", path);
		err = PARSE_LIST(p, st, n, sub, probes, nprobes, parse_probe);
		if (err)
			return err;
	}
	n = yt_map_get(c, item, "matrix");
	if (n) {
		st->matrices = calloc(1, sizeof(*st->matrices));
		if (!st->matrices)
			return -ENOMEM;
		st->nmatrices = 1;
		return parse_matrix(p, n, yt_path(sub, "%s.matrix", path), st->matrices);
	}
	n = yt_map_get(c, item, "matrices");
	if (n) {
		yt_path(sub, "%s.matrices", path);
		err = PARSE_LIST(p, st, n, sub, matrices, nmatrices, parse_matrix);
	}
	return err;
}

int test_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	static const char *const top[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	static const char *const fields[] = { "steps", NULL };
	const struct yt_ctx *c = &p->yt;
	struct scenario *s = p->s;
	char path[YT_PATH_MAX];
	yaml_node_item_t *it;
	yaml_node_t *spec, *steps;
	struct m_test *v, *t;
	size_t i;
	int err;

	v = realloc(s->tests, (s->ntests + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->tests = v;
	t = &v[s->ntests++];
	memset(t, 0, sizeof(*t));
	t->line = yt_line(root);
	err = yt_check_fields(c, root, "", top);
	if (!err)
		err = sim_metadata_parse(p, root, true, t->name, sizeof(t->name));
	if (!err)
		err = yt_require(c, root, "", "spec");
	if (err)
		return err;
	for (i = 0; i + 1 < s->ntests; i++)
		if (!strcmp(s->tests[i].name, t->name))
			return yt_fail(c, root, "metadata.name", "duplicate Test \"%s\"", t->name);
	spec = yt_map_get(c, root, "spec");
	err = yt_check_fields(c, spec, "spec", fields);
	if (!err)
		err = yt_require(c, spec, "spec", "steps");
	if (!err)
		err = yt_want_seq(c, yt_map_get(c, spec, "steps"), "spec.steps");
	if (err)
		return err;
	steps = yt_map_get(c, spec, "steps");
	t->steps = calloc(seq_len(steps) + 1, sizeof(*t->steps));
	if (!t->steps)
		return -ENOMEM;
	for (it = steps->data.sequence.items.start; it < steps->data.sequence.items.top; it++) {
		t->nsteps++;
		err = parse_step(p, yt_node(c, *it), yt_path(path, "spec.steps[%zu]", t->nsteps - 1),
				 t->nsteps - 1, &t->steps[t->nsteps - 1]);
		if (err)
			return err;
	}
	return 0;
}
