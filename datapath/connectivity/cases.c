/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tests (Cilium's names, REFERENCE.md section 9), each a set of actions run at once:
 *   no-policies               pod-to-pod, client-to-client, pod-to-service, pod-to-host,
 *                             host-to-pod, pod-to-world (--external-target)
 *   no-policies-from-outside  outside-to-nodeport: an external host to every NodePort
 *   all-ingress-deny          a deny-by-default NetworkPolicy: every probe dropped, proven
 *   client-ingress            client2 may ping client, client may not ping client2
 *   echo-ingress              client may reach the echo pods on 8080/TCP, client2 may not
 *   pod-to-pod-encryption     no plaintext of pod traffic on the node's fabric link
 *   no-unexpected-packet-drops  no drop in any agent's flows the tests did not expect
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api.h"
#include "ct.h"

/* pod-to-pod-encryption's capture and check (encryption.c) */
int ct_encryption_check(struct ct_ctx *c, struct ct_action *a, size_t n);

static struct ct_test TESTS[] = {
	{.name = "no-policies"},
	{.name = "no-policies-from-outside"},
	{.name = "all-ingress-deny"},
	{.name = "client-ingress"},
	{.name = "echo-ingress"},
	{.name = "pod-to-pod-encryption"},
	{.name = "no-unexpected-packet-drops"},
};

size_t ct_tests(struct ct_test **out)
{
	*out = TESTS;
	return sizeof(TESTS) / sizeof(TESTS[0]);
}

/* ---- building actions ---------------------------------------------------------------- */

struct builder {
	struct ct_ctx *c;
	struct ct_test *t;
	const char *scenario;
	int count;
};

static void scenario(struct builder *b, const char *name)
{
	b->scenario = name;
	b->count = 0;
}

static struct ct_action *add(struct builder *b, const char *netns, const char *src,
			     const char *src_ip, const char *to, int port, enum ct_expect expect)
{
	struct ct_action *a;

	if (b->t->nactions >= CT_ACTIONS_MAX)
		return NULL;
	a = &b->t->actions[b->t->nactions++];
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s/%s-%d", b->scenario, port ? "curl" : "ping",
		 b->count++);
	snprintf(a->netns, sizeof(a->netns), "%s", netns);
	snprintf(a->src, sizeof(a->src), "%s", src);
	snprintf(a->src_ip, sizeof(a->src_ip), "%s", src_ip);
	snprintf(a->to, sizeof(a->to), "%s", to);
	a->port = port;
	a->http = port != 0;
	a->expect = expect;
	if (port)
		snprintf(a->dst, sizeof(a->dst), "%s:%d", to, port);
	else
		snprintf(a->dst, sizeof(a->dst), "%s", to);
	return a;
}

static const struct ct_pod *pod(const struct ct_ctx *c, enum ct_pod_id id)
{
	return c->pods[id].deployed ? &c->pods[id] : NULL;
}

/* A pod as an action's source. */
static struct ct_action *from_pod(struct builder *b, enum ct_pod_id src, const char *to, int port,
				  enum ct_expect expect)
{
	const struct ct_pod *p = pod(b->c, src);
	char name[200];

	if (!p)
		return NULL;
	snprintf(name, sizeof(name), "%s/%s (%s)", b->c->ns, p->name, p->ip);
	return add(b, p->netns, name, p->ip, to, port, expect);
}

/* src to the echo (or client) pod dst: its own address, answered by it. */
static void to_pod(struct builder *b, enum ct_pod_id src, enum ct_pod_id dst, enum ct_expect expect)
{
	const struct ct_pod *d = pod(b->c, dst);
	struct ct_action *a;

	if (!d || !pod(b->c, src))
		return;
	a = from_pod(b, src, d->ip, d->echo ? CT_ECHO_PORT : 0, expect);
	if (!a)
		return;
	snprintf(a->dst, sizeof(a->dst), "%s/%s (%s%s%.8s)", b->c->ns, d->name, d->ip,
		 d->echo ? ":" : "", d->echo ? "8080" : "");
	if (d->echo)
		snprintf(a->want, sizeof(a->want), "%s/%s", b->c->ns, d->name);
}

static void to_service(struct builder *b, enum ct_pod_id src, const struct ct_svc *s,
		       enum ct_expect expect)
{
	const struct ct_pod *be = pod(b->c, s->pod);
	struct ct_action *a;

	if (!s->name || !be)
		return;
	a = from_pod(b, src, s->cluster_ip, CT_ECHO_PORT, expect);
	if (!a)
		return;
	snprintf(a->dst, sizeof(a->dst), "%s/%s (%s:%d)", b->c->ns, s->name, s->cluster_ip,
		 CT_ECHO_PORT);
	snprintf(a->want, sizeof(a->want), "%s/%s", b->c->ns, be->name);
	snprintf(a->alt_dst, sizeof(a->alt_dst), "%s", be->ip);
	a->alt_port = CT_ECHO_PORT;
}

static size_t nodes_in_scope(const struct ct_ctx *c)
{
	return c->single_node ? 1 : c->env.nnodes;
}

/* The external host outside-to-nodeport sends from: --external-target's, else the first. */
static const struct ct_ext *outside(const struct ct_ctx *c)
{
	return c->world ? c->world : c->env.nexts ? &c->env.exts[0] : NULL;
}

static void skip_scenario(struct builder *b, const char *what)
{
	struct ct_test *t = b->t;
	size_t len = strlen(t->notes);

	t->scenarios_skipped++;
	snprintf(t->notes + len, sizeof(t->notes) - len, "%s%s", len ? "; " : "", what);
}

static void build_no_policies(struct builder *b)
{
	struct ct_ctx *c = b->c;
	enum ct_pod_id src, echo;
	size_t i;

	scenario(b, "pod-to-pod");
	for (src = CT_CLIENT; src <= CT_CLIENT2; src++)
		for (echo = CT_ECHO_SAME; echo <= CT_ECHO_OTHER; echo++)
			to_pod(b, src, echo, CT_ALLOW);
	scenario(b, "client-to-client");
	to_pod(b, CT_CLIENT, CT_CLIENT2, CT_ALLOW);
	to_pod(b, CT_CLIENT2, CT_CLIENT, CT_ALLOW);
	scenario(b, "pod-to-service");
	for (src = CT_CLIENT; src <= CT_CLIENT2; src++)
		for (i = 0; i < 2; i++)
			to_service(b, src, &c->svcs[i], CT_ALLOW);
	scenario(b, "pod-to-host");
	for (i = 0; i < nodes_in_scope(c); i++) {
		struct ct_action *a;

		if (!c->env.nodes[i].ip[0]) {
			skip_scenario(b,
				      "pod-to-host: the node's address is unknown (a real host's "
				      "agent does not report it)");
			continue;
		}
		a = from_pod(b, CT_CLIENT, c->env.nodes[i].ip, 0, CT_ALLOW);
		if (a)
			snprintf(a->dst, sizeof(a->dst), "node %s (%s)", c->env.nodes[i].name,
				 c->env.nodes[i].ip);
	}
	scenario(b, "host-to-pod");
	for (i = 0; i < nodes_in_scope(c); i++) {
		const struct ct_node *n = &c->env.nodes[i];
		char name[200];

		for (echo = CT_ECHO_SAME; echo <= CT_ECHO_OTHER; echo++) {
			const struct ct_pod *d = pod(c, echo);
			struct ct_action *a;

			if (!d)
				continue;
			snprintf(name, sizeof(name), "node %s (%s)", n->name,
				 n->ip[0] ? n->ip : "-");
			a = add(b, n->netns, name, n->ip, d->ip, CT_ECHO_PORT, CT_ALLOW);
			if (!a)
				continue;
			snprintf(a->dst, sizeof(a->dst), "%s/%s (%s:%d)", c->ns, d->name, d->ip,
				 CT_ECHO_PORT);
			snprintf(a->want, sizeof(a->want), "%s/%s", c->ns, d->name);
		}
	}
	scenario(b, "pod-to-world");
	if (!c->world_ip[0]) {
		skip_scenario(b, "pod-to-world: no --external-target (and no external host in "
				 "the cluster)");
		return;
	}
	for (src = CT_CLIENT; src <= CT_CLIENT2; src++) {
		struct ct_action *a = from_pod(b, src, c->world_ip, c->world_port, CT_ALLOW);

		if (!a)
			continue;
		if (c->world) {
			snprintf(a->dst, sizeof(a->dst), "external host %s (%s:%d)", c->world->name,
				 c->world_ip, c->world_port);
			snprintf(a->want, sizeof(a->want), "%s", c->world->name);
		}
	}
}

static void build_from_outside(struct builder *b)
{
	struct ct_ctx *c = b->c;
	const struct ct_ext *x = outside(c);
	size_t i, k;
	char name[200];

	scenario(b, "outside-to-nodeport");
	snprintf(name, sizeof(name), "external host %s (%s)", x->name, x->ip);
	for (i = 0; i < nodes_in_scope(c); i++)
		for (k = 0; k < 2; k++) {
			const struct ct_svc *s = &c->svcs[k];
			const struct ct_pod *be = s->name ? pod(c, s->pod) : NULL;
			struct ct_action *a;

			if (!be || !c->env.nodes[i].ip[0])
				continue;
			a = add(b, x->netns, name, x->ip, c->env.nodes[i].ip, s->node_port,
				CT_ALLOW);
			if (!a)
				continue;
			snprintf(a->dst, sizeof(a->dst), "NodePort %s/%s on %s (%s:%d)", c->ns,
				 s->name, c->env.nodes[i].name, c->env.nodes[i].ip, s->node_port);
			snprintf(a->want, sizeof(a->want), "%s/%s", c->ns, be->name);
		}
}

static void build_all_ingress_deny(struct builder *b)
{
	enum ct_pod_id echo;
	size_t i;

	scenario(b, "pod-to-pod");
	for (echo = CT_ECHO_SAME; echo <= CT_ECHO_OTHER; echo++)
		to_pod(b, CT_CLIENT, echo, CT_DENY);
	scenario(b, "client-to-client");
	to_pod(b, CT_CLIENT, CT_CLIENT2, CT_DENY);
	scenario(b, "pod-to-service");
	for (i = 0; i < 2; i++)
		to_service(b, CT_CLIENT, &b->c->svcs[i], CT_DENY);
}

static void build_client_ingress(struct builder *b)
{
	scenario(b, "client-to-client");
	to_pod(b, CT_CLIENT2, CT_CLIENT, CT_ALLOW);
	to_pod(b, CT_CLIENT, CT_CLIENT2, CT_DENY);
}

static void build_echo_ingress(struct builder *b)
{
	enum ct_pod_id echo;
	size_t i;

	scenario(b, "pod-to-pod");
	for (echo = CT_ECHO_SAME; echo <= CT_ECHO_OTHER; echo++) {
		to_pod(b, CT_CLIENT, echo, CT_ALLOW);
		to_pod(b, CT_CLIENT2, echo, CT_DENY);
	}
	scenario(b, "pod-to-service");
	for (i = 0; i < 2; i++) {
		to_service(b, CT_CLIENT, &b->c->svcs[i], CT_ALLOW);
		to_service(b, CT_CLIENT2, &b->c->svcs[i], CT_DENY);
	}
}

/* ---- policies ------------------------------------------------------------------------ */

static const char *policy_of(const char *test)
{
	if (!strcmp(test, "all-ingress-deny"))
		return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		       "metadata: {name: all-ingress-deny, namespace: %s}\n"
		       "spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n";
	if (!strcmp(test, "client-ingress"))
		return "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
		       "metadata: {name: client-ingress-from-client2, namespace: %s}\n"
		       "spec:\n  endpointSelector: {matchLabels: {kind: client}}\n"
		       "  ingress:\n  - fromEndpoints: [{matchLabels: {other: client}}]\n";
	if (!strcmp(test, "echo-ingress"))
		return "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
		       "metadata: {name: echo-ingress-from-client, namespace: %s}\n"
		       "spec:\n  endpointSelector: {matchLabels: {kind: echo}}\n"
		       "  ingress:\n  - fromEndpoints: [{matchLabels: {name: client}}]\n"
		       "    toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n";
	return NULL;
}

/* ---- running ------------------------------------------------------------------------- */

/* Why t cannot run here, or NULL. */
static const char *precondition(struct ct_ctx *c, struct ct_test *t, char *why, size_t size)
{
	size_t i;

	if (!strcmp(t->name, "no-policies-from-outside") && !outside(c))
		return snprintf(why, size, "the cluster has no external host to send from"), why;
	if (!strcmp(t->name, "pod-to-pod-encryption")) {
		bool on = false;
		char err[512], modes[200] = "";

		if (!pod(c, CT_ECHO_OTHER))
			return snprintf(why, size, "needs two nodes (not with --single-node)"), why;
		for (i = 0; i < c->env.nnodes; i++) {
			json_t *r = ct_agent(&c->env.nodes[i], AGENT_OP_ENCRYPT_STATUS, NULL, 5000,
					     err, sizeof(err));
			const char *m =
				r ? json_string_value(json_object_get(r, "mode")) ?: "?" : "?";

			on |= r && strcmp(m, "disabled") && strcmp(m, "?");
			snprintf(modes + strlen(modes), sizeof(modes) - strlen(modes), "%s%s: %s",
				 i ? ", " : "", c->env.nodes[i].name, m);
			json_decref(r);
		}
		/* $CILIATE_CT_ENCRYPTION_CHECK=force: run it anyway (the suite's proof that
		 * plaintext is found) */
		if (!on && !(getenv("CILIATE_CT_ENCRYPTION_CHECK") &&
			     !strcmp(getenv("CILIATE_CT_ENCRYPTION_CHECK"), "force")))
			return snprintf(why, size, "encryption is not enabled (encrypt status: %s)",
					modes),
			       why;
	}
	return NULL;
}

static void run_drops(struct ct_ctx *c, struct ct_test *t)
{
	size_t checked, expected, ignored, n;
	char err[600];

	/* one slot stays free for the summary action below */
	n = ct_unexpected_drops(c, t->actions, CT_ACTIONS_MAX - 1, &checked, &expected, &ignored,
				err, sizeof(err));
	snprintf(t->notes, sizeof(t->notes),
		 "%zu drop event(s) in the agents' flows since the tests began: %zu expected by "
		 "the deny tests, %zu IPv6 (UNSUPPORTED_L3_PROTOCOL: the pod hooks are IPv4-only) "
		 "ignored, %zu unexpected%s",
		 checked, expected, ignored, checked - expected - ignored,
		 checked - expected - ignored > n ? " (the first ones listed)" : "");
	t->nactions = n;
	if (!n || err[0]) {
		struct ct_action *a = &t->actions[t->nactions++];

		memset(a, 0, sizeof(*a));
		snprintf(a->name, sizeof(a->name), "flows/drops");
		snprintf(a->src, sizeof(a->src), "every agent");
		snprintf(a->dst, sizeof(a->dst), "its flows");
		a->pass = !err[0];
		snprintf(a->observed, sizeof(a->observed), "%s", t->notes);
		snprintf(a->reason, sizeof(a->reason), "%s", err);
	}
}

void ct_run_test(struct ct_ctx *c, struct ct_test *t)
{
	struct builder b = {.c = c, .t = t};
	long long t0 = ct_now_ms();
	const char *policy = policy_of(t->name);
	char manifest[2048], file[128], why[512];
	size_t i;

	t->nactions = t->nfailed = 0;
	t->actions = calloc(CT_ACTIONS_MAX, sizeof(*t->actions));
	if (!t->actions) {
		snprintf(t->error, sizeof(t->error), "out of memory");
		t->nfailed = 1;
		return;
	}
	if (precondition(c, t, why, sizeof(why))) {
		t->skipped = true;
		snprintf(t->skip_reason, sizeof(t->skip_reason), "%.250s", why);
		return;
	}
	if (!strcmp(t->name, "no-policies"))
		build_no_policies(&b);
	else if (!strcmp(t->name, "no-policies-from-outside"))
		build_from_outside(&b);
	else if (!strcmp(t->name, "all-ingress-deny"))
		build_all_ingress_deny(&b);
	else if (!strcmp(t->name, "client-ingress"))
		build_client_ingress(&b);
	else if (!strcmp(t->name, "echo-ingress"))
		build_echo_ingress(&b);
	if (policy) {
		snprintf(manifest, sizeof(manifest), policy, c->ns);
		snprintf(file, sizeof(file), "policy-%s", t->name);
		if (ct_store_apply(c, file, manifest, false, t->error, sizeof(t->error))) {
			t->nfailed = 1;
			goto out;
		}
	}
	if (!strcmp(t->name, "no-unexpected-packet-drops"))
		run_drops(c, t);
	else if (!strcmp(t->name, "pod-to-pod-encryption"))
		t->nactions = (size_t)ct_encryption_check(c, t->actions, CT_ACTIONS_MAX);
	else
		ct_run_actions(c, t->actions, t->nactions);
	ct_prove_denials(c, t->actions, t->nactions);
	if (policy && ct_store_apply(c, file, manifest, true, t->error, sizeof(t->error)))
		t->nfailed++;
out:
	for (i = 0; i < t->nactions; i++)
		t->nfailed += !t->actions[i].pass;
	t->seconds = (double)(ct_now_ms() - t0) / 1000.0;
}
