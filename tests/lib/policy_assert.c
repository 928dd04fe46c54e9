/* SPDX-License-Identifier: Apache-2.0 */
/* Assertions over compiled policy map entries (see policy_assert.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ipaddr.h"
#include "policy_assert.h"

#define MAX_LINES 1024

void policy_fixture_load(struct policy_fixture *f, const char *file, const char *base_yaml,
			 const char *policies, const char *extra_config)
{
	struct diag d = {{0}};
	char *yaml, *at;

	memset(f, 0, sizeof(*f));
	assert_true(asprintf(&yaml, "%s%s", base_yaml, policies) > 0);
	if (extra_config) {
		at = strstr(yaml, "---");
		assert_non_null(at);
		assert_true(asprintf(&f->yaml, "%.*s%s%s", (int)(at - yaml), yaml, extra_config,
				     at) > 0);
		free(yaml);
	} else {
		f->yaml = yaml;
	}
	if (scenario_load_buffer(file, f->yaml, strlen(f->yaml), &f->s, &d)) {
		print_error("load failed: %s\n", d.msg);
		fail();
	}
	f->m = &f->s->model;
}

void policy_fixture_node(struct policy_fixture *f, const char *node)
{
	struct diag d = {{0}};

	node_state_free(&f->ns);
	if (node_state_compute(f->m, node, &f->ns, &d)) {
		print_error("node_state_compute(%s) failed: %s\n", node, d.msg);
		fail();
	}
}

void policy_fixture_free(struct policy_fixture *f)
{
	node_state_free(&f->ns);
	scenario_free(f->s);
	free(f->yaml);
}

static void peer_name(const struct policy_fixture *f, uint32_t id, char *buf, size_t size)
{
	static const char *const reserved[] = {"any",	 "host", "world",	"unmanaged",
					       "health", "init", "remote-node", "kube-apiserver"};
	char c[CIDR4_STR_MAX];
	size_t i;

	if (id < 8) {
		snprintf(buf, size, "%s", reserved[id]);
		return;
	}
	for (i = 0; id >= IDENTITY_LOCAL_CIDR_MIN && i < f->ns.nipcache; i++) {
		if (f->ns.ipcache[i].val.identity != id)
			continue;
		snprintf(buf, size, "cidr:%s",
			 cidr4_format(f->ns.ipcache[i].key.addr.v4,
				      (uint8_t)(f->ns.ipcache[i].key.prefixlen - 32), c));
		return;
	}
	for (i = 0; i < f->m->npods; i++) {
		if (f->m->pods[i].identity == id && !f->m->pods[i].host_network) {
			snprintf(buf, size, "%s/%s", f->m->pods[i].ns, f->m->pods[i].name);
			return;
		}
	}
	snprintf(buf, size, "id%u", id);
}

static void l4_name(const struct policy_key *k, char *buf, size_t size)
{
	const char *p = k->proto == IPPROTO_TCP	     ? "tcp"
			: k->proto == IPPROTO_UDP    ? "udp"
			: k->proto == IPPROTO_SCTP   ? "sctp"
			: k->proto == IPPROTO_ICMP   ? "icmp"
			: k->proto == IPPROTO_ICMPV6 ? "icmpv6"
						     : "other";

	if (k->prefixlen == POLICY_PREFIX_FIXED)
		snprintf(buf, size, "any");
	else if (k->prefixlen == POLICY_PREFIX_PROTO)
		snprintf(buf, size, "%s", p);
	else if (k->prefixlen == POLICY_PREFIX_FULL)
		snprintf(buf, size, "%s/%u", p, ntohs(k->dport));
	else
		snprintf(buf, size, "%s/%u/%u", p, ntohs(k->dport), k->prefixlen - 80);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the lines and joins them, each ended by a newline; returns a malloc'd string. */
static char *join_sorted(char **lines, size_t n)
{
	size_t i, len = 1;
	char *out;

	qsort(lines, n, sizeof(*lines), str_cmp);
	for (i = 0; i < n; i++)
		len += strlen(lines[i]) + 1;
	out = calloc(1, len);
	assert_non_null(out);
	for (i = 0; i < n; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
	}
	return out;
}

static char *render(const struct policy_fixture *f, uint32_t ep_id)
{
	char *lines[MAX_LINES], peer[400], l4[32], *out;
	const struct node_policy_entry *e;
	size_t i, n = 0;

	for (i = 0; i < f->ns.npolicy; i++) {
		e = &f->ns.policy[i];
		if (e->key.ep_id != ep_id)
			continue;
		assert_true(n < MAX_LINES);
		peer_name(f, e->key.identity, peer, sizeof(peer));
		l4_name(&e->key, l4, sizeof(l4));
		assert_true(asprintf(&lines[n++], "%s %s %s%s",
				     e->key.dir == DIR_INGRESS ? "ingress" : "egress", peer, l4,
				     (e->val.flags & POLICY_F_DENY) ? " deny" : "") > 0);
	}
	out = join_sorted(lines, n);
	for (i = 0; i < n; i++)
		free(lines[i]);
	return out;
}

static char *normalize(const char *want)
{
	char *copy = strdup(want), *lines[MAX_LINES], *tok, *save = NULL, *out;
	size_t n = 0;

	assert_non_null(copy);
	for (tok = strtok_r(copy, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
		assert_true(n < MAX_LINES);
		lines[n++] = tok;
	}
	out = join_sorted(lines, n);
	free(copy);
	return out;
}

/* The endpoint of pod, with the state of its node computed. */
static const struct node_endpoint *pod_endpoint(struct policy_fixture *f, const char *pod)
{
	const struct node_endpoint *ep;

	policy_fixture_node(f, cluster_find_pod(f->m, pod)->node);
	ep = node_state_find_endpoint(&f->ns, pod);
	assert_non_null(ep);
	return ep;
}

void policy_expect_ep(struct policy_fixture *f, const char *pod, uint32_t flags, const char *want)
{
	const struct node_endpoint *ep = pod_endpoint(f, pod);
	char *got, *exp;

	got = render(f, ep->info.ep_id);
	exp = normalize(want);
	if (strcmp(got, exp))
		print_error("entries of %s\n--- want:\n%s--- got:\n%s", pod, exp, got);
	assert_string_equal(got, exp);
	if ((ep->info.flags & (EP_F_INGRESS_ENFORCED | EP_F_EGRESS_ENFORCED)) != flags)
		print_error("flags of %s: want %#x got %#x\n", pod, flags, ep->info.flags);
	assert_int_equal(ep->info.flags & (EP_F_INGRESS_ENFORCED | EP_F_EGRESS_ENFORCED), flags);
	free(got);
	free(exp);
}

const char *policy_rule_of(struct policy_fixture *f, const char *pod, uint8_t dir,
			   uint32_t identity, uint32_t prefixlen)
{
	const struct node_endpoint *ep = pod_endpoint(f, pod);
	size_t i;

	for (i = 0; i < f->ns.npolicy; i++) {
		const struct node_policy_entry *e = &f->ns.policy[i];

		if (e->key.ep_id == ep->info.ep_id && e->key.dir == dir &&
		    e->key.identity == identity && e->key.prefixlen == prefixlen)
			return f->ns.rule_names[e->val.rule_id];
	}
	return "";
}

void policy_expect_diag(const char *msg, const char *want, size_t case_no)
{
	if (strncmp(msg, want, strlen(want)))
		print_error("case %zu\n  want: %s...\n  got:  %s\n", case_no, want, msg);
	assert_int_equal(strncmp(msg, want, strlen(want)), 0);
}
