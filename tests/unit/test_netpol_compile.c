/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes NetworkPolicy compilation into policy map entries, checked entry by entry.
 * Each case loads a small cluster plus policies and compares the endpoint's entries, one
 * per line as "DIR PEER L4" (PEER: any | host | world | cidr:PREFIX | ns/pod owning the
 * identity; L4: any | tcp | tcp/PORT | tcp/PORT/BITS), sorted, against the expected set.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ipaddr.h"
#include "model/labels.h"
#include "model/model.h"
#include "model/policy.h"
#include "policy_assert.h"

/* Identities in pod order: prod/web 256, prod/db 257, prod/api 258, dev/tool 259,
 * dev/web 260; kube-system/agent is hostNetwork. Endpoint ids are pod positions (1..6). */
static const char base_yaml[] =
	"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: np}\n"
	"spec:\n  nodes: [{name: node-1}, {name: node-2}]\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {env: prod}}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: dev, labels: {env: dev}}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: prod, labels: {app: web}}\n"
	"spec:\n  nodeName: node-1\n  containers:\n  - name: c\n"
	"    ports: [{name: http, containerPort: 80}]\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: prod, labels: {app: db}}\n"
	"spec:\n  nodeName: node-1\n  containers:\n  - name: c\n"
	"    ports:\n    - {name: pg, containerPort: 5432}\n"
	"    - {name: http, containerPort: 8080, protocol: TCP}\n"
	"    - {name: dns, containerPort: 53, protocol: UDP}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: prod, labels: {app: api}}\n"
	"spec:\n  nodeName: node-2\n  containers:\n  - name: c\n"
	"    ports: [{name: http, containerPort: 9090}]\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: tool, namespace: dev, labels: {app: tool}}\n"
	"spec: {nodeName: node-2}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: dev, labels: {app: web}}\n"
	"spec: {nodeName: node-1}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: agent, namespace: kube-system}\n"
	"spec: {nodeName: node-1, hostNetwork: true}\n";

#define NP(ns, name, spec)                                                                 \
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"                     \
	"metadata: {name: " name ", namespace: " ns "}\nspec:\n" spec

static void fixture_load(struct policy_fixture *f, const char *policies, const char *extra_config)
{
	policy_fixture_load(f, "np.yaml", base_yaml, policies, extra_config);
}

#define ING EP_F_INGRESS_ENFORCED
#define EGR EP_F_EGRESS_ENFORCED
#define HOST "ingress host any\n"

/* ---- selection and peers ------------------------------------------------------------- */

static void test_no_policy(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, "", NULL);
	policy_expect_ep(&f, "prod/db", 0, "");
	policy_expect_ep(&f, "dev/tool", 0, "");
	policy_fixture_free(&f);
}

static void test_pod_selector_peer(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "db-from-web",
			    "  podSelector: {matchLabels: {app: db}}\n"
			    "  ingress:\n  - from: [{podSelector: {matchLabels: {app: web}}}]\n"
			    "    ports: [{port: 5432}]\n"), NULL);
	/* podSelector alone: the policy's namespace only, so not dev/web */
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress prod/web tcp/5432");
	policy_expect_ep(&f, "prod/web", 0, "");
	policy_expect_ep(&f, "prod/api", 0, "");
	policy_fixture_free(&f);
}

static void test_and_vs_or_peers(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "and",
			    "  podSelector: {matchLabels: {app: db}}\n"
			    "  ingress:\n  - from:\n"
			    "    - namespaceSelector: {matchLabels: {env: dev}}\n"
			    "      podSelector: {matchLabels: {app: web}}\n")
			 NP("prod", "or",
			    "  podSelector: {matchLabels: {app: api}}\n"
			    "  ingress:\n  - from:\n"
			    "    - namespaceSelector: {matchLabels: {env: dev}}\n"
			    "    - podSelector: {matchLabels: {app: web}}\n"), NULL);
	/* one peer with both selectors: web pods in dev namespaces */
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress dev/web any");
	/* two peers: every dev pod, or web pods of prod */
	policy_expect_ep(&f, "prod/api", ING,
			 HOST "ingress dev/tool any\ningress dev/web any\ningress prod/web any");
	policy_fixture_free(&f);
}

static void test_empty_vs_absent_selectors(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "same-ns",
			    "  podSelector: {matchLabels: {app: db}}\n"
			    "  ingress:\n  - from: [{podSelector: {}}]\n")
			 NP("prod", "all-ns",
			    "  podSelector: {matchLabels: {app: api}}\n"
			    "  ingress:\n  - from: [{namespaceSelector: {}}]\n")
			 NP("dev", "everything-in-dev", "  podSelector: {}\n"), NULL);
	/* podSelector {} alone: every pod of the policy's namespace */
	policy_expect_ep(&f, "prod/db", ING,
			 HOST "ingress prod/web any\ningress prod/db any\ningress prod/api any");
	/* namespaceSelector {} alone: every pod of every namespace (not hostNetwork ones) */
	policy_expect_ep(&f, "prod/api", ING,
			 HOST "ingress prod/web any\ningress prod/db any\ningress prod/api any\n"
			      "ingress dev/tool any\ningress dev/web any");
	/* spec.podSelector {}: every pod of dev, none elsewhere; no rules = deny all */
	policy_expect_ep(&f, "dev/tool", ING, HOST);
	policy_expect_ep(&f, "dev/web", ING, HOST);
	policy_expect_ep(&f, "prod/web", 0, "");
	policy_fixture_free(&f);

	/* spec.podSelector absent behaves as {} */
	fixture_load(&f, NP("dev", "no-selector", "  ingress: [{}]\n"), NULL);
	policy_expect_ep(&f, "dev/web", ING, HOST "ingress any any");
	policy_expect_ep(&f, "prod/web", 0, "");
	policy_fixture_free(&f);
}

static void test_match_expressions(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "exprs",
			    "  podSelector:\n    matchExpressions:\n"
			    "    - {key: app, operator: In, values: [db, api]}\n"
			    "  ingress:\n  - from:\n    - namespaceSelector:\n"
			    "        matchExpressions: [{key: env, operator: NotIn, values: [prod]}]\n"
			    "  - from:\n    - podSelector:\n"
			    "        matchExpressions: [{key: app, operator: DoesNotExist}]\n"
			    "      namespaceSelector:\n"
			    "        matchExpressions: [{key: env, operator: Exists}]\n"), NULL);
	/* rule 1: dev pods; rule 2: pods without an app label (none) */
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress dev/tool any\ningress dev/web any");
	policy_expect_ep(&f, "prod/api", ING, HOST "ingress dev/tool any\ningress dev/web any");
	policy_expect_ep(&f, "prod/web", 0, "");
	policy_fixture_free(&f);
}

/* ---- policyTypes, isolation and rule shapes ---------------------------------------- */

static void test_policy_types_defaults(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "ingress-only",
			    "  podSelector: {matchLabels: {app: db}}\n"
			    "  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]\n")
			 NP("prod", "both",
			    "  podSelector: {matchLabels: {app: web}}\n"
			    "  ingress: []\n"
			    "  egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]\n")
			 NP("prod", "egress-type-only",
			    "  podSelector: {matchLabels: {app: api}}\n"
			    "  policyTypes: [Egress]\n"
			    "  ingress: [{}]\n"), NULL);
	/* no policyTypes: Ingress only */
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress prod/web any");
	/* egress rules present: Ingress and Egress; ingress [] denies all ingress */
	policy_expect_ep(&f, "prod/web", ING | EGR, HOST "egress prod/db any");
	/* policyTypes [Egress] with no egress rules: all egress denied, ingress rules ignored */
	policy_expect_ep(&f, "prod/api", EGR, "");
	policy_fixture_free(&f);

	/* upstream defaulting adds Egress only for a non-empty egress list */
	fixture_load(&f, NP("dev", "empty-egress",
			    "  podSelector: {}\n  ingress: [{}]\n  egress: []\n")
			 NP("prod", "no-ingress-key", "  podSelector: {matchLabels: {app: db}}\n"),
		     NULL);
	policy_expect_ep(&f, "dev/tool", ING, HOST "ingress any any");
	policy_expect_ep(&f, "prod/db", ING, HOST);
	policy_fixture_free(&f);
}

static void test_rule_shapes(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "allow-all", "  podSelector: {matchLabels: {app: db}}\n"
						 "  ingress:\n  - {}\n")
			 NP("prod", "no-from", "  podSelector: {matchLabels: {app: web}}\n"
					       "  ingress:\n  - ports: [{port: 80}]\n"
					       "  - from: []\n    ports: [{port: 81}]\n"
					       "  - from: [{podSelector: {}}]\n    ports: []\n")
			 NP("prod", "egress-all", "  podSelector: {matchLabels: {app: api}}\n"
						  "  policyTypes: [Egress]\n  egress: [{}]\n"),
		     NULL);
	/* {} allows every source and port */
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress any any");
	/* no from (or from: []) is every source, also outside the cluster: wildcard 0;
	 * ports: [] is every port */
	policy_expect_ep(&f, "prod/web", ING,
			 HOST "ingress any tcp/80\ningress any tcp/81\n"
			      "ingress prod/web any\ningress prod/db any\ningress prod/api any");
	policy_expect_ep(&f, "prod/api", EGR, "egress any any");
	policy_fixture_free(&f);
}

static void test_isolation_flags_and_host(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "egress-only",
			    "  podSelector: {matchLabels: {app: web}}\n"
			    "  policyTypes: [Egress]\n  egress: [{ports: [{port: 53, protocol: UDP}]}]\n")
			 NP("prod", "ingress", "  podSelector: {matchLabels: {app: db}}\n"
					       "  policyTypes: [Ingress]\n"),
		     NULL);
	/* no host allow without ingress isolation */
	policy_expect_ep(&f, "prod/web", EGR, "egress any udp/53");
	policy_expect_ep(&f, "prod/db", ING, HOST);
	policy_fixture_free(&f);

	/* allow-localhost: policy leaves the host to the policy like any other peer */
	fixture_load(&f, NP("prod", "ingress", "  podSelector: {matchLabels: {app: db}}\n"
					       "  policyTypes: [Ingress]\n"),
		     "  config: {allow-localhost: policy}\n");
	policy_expect_ep(&f, "prod/db", ING, "");
	policy_fixture_free(&f);
}

static void test_additive_and_rule_names(void **state)
{
	const struct node_endpoint *ep;
	struct policy_fixture f;
	size_t i, n = 0;

	fixture_load(&f, NP("prod", "a", "  podSelector: {matchLabels: {app: db}}\n"
					 "  ingress:\n  - from: [{podSelector: {matchLabels: {app: web}}}]\n"
					 "    ports: [{port: 5432}]\n"
					 "  - from: [{podSelector: {matchLabels: {app: web}}}]\n"
					 "    ports: [{port: 5432}, {port: 5433}]\n")
			 NP("prod", "b", "  podSelector: {}\n"
					 "  ingress:\n  - from: [{namespaceSelector: {matchLabels: "
					 "{env: dev}}, podSelector: {matchLabels: {app: tool}}}]\n"
					 "    ports: [{port: 5432}]\n"),
		     NULL);
	policy_expect_ep(&f, "prod/db", ING,
			 HOST "ingress prod/web tcp/5432\ningress prod/web tcp/5433\n"
			      "ingress dev/tool tcp/5432");
	ep = node_state_find_endpoint(&f.ns, "prod/db");
	assert_string_equal(f.ns.rule_names[0], "");
	for (i = 0; i < f.ns.npolicy; i++) {
		const struct node_policy_entry *e = &f.ns.policy[i];

		if (e->key.ep_id != ep->info.ep_id)
			continue;
		assert_true(e->val.rule_id < f.ns.nrule_names);
		if (e->key.identity == IDENTITY_HOST) {
			assert_string_equal(f.ns.rule_names[e->val.rule_id],
					    "reserved:host allow-localhost");
		} else if (e->key.identity == cluster_find_pod(f.m, "dev/tool")->identity) {
			assert_string_equal(f.ns.rule_names[e->val.rule_id], "prod/b ingress[0]");
		} else if (ntohs(e->key.dport) == 5432) {
			/* duplicate keys keep the first rule */
			assert_string_equal(f.ns.rule_names[e->val.rule_id], "prod/a ingress[0]");
			n++;
		} else {
			assert_string_equal(f.ns.rule_names[e->val.rule_id], "prod/a ingress[1]");
		}
	}
	assert_int_equal(n, 1);
	policy_fixture_free(&f);
}

/* ---- ports ------------------------------------------------------------------------------ */

static void test_named_ports_ingress(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "http",
			    "  podSelector: {}\n"
			    "  ingress:\n  - ports: [{port: http}]\n"
			    "  - ports: [{port: dns}]\n"
			    "  - ports: [{port: dns, protocol: UDP}]\n"), NULL);
	/* resolved against each selected pod's own container ports, protocol included */
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress any tcp/8080\ningress any udp/53");
	policy_expect_ep(&f, "prod/api", ING, HOST "ingress any tcp/9090");
	policy_expect_ep(&f, "prod/web", ING, HOST "ingress any tcp/80");
	policy_fixture_free(&f);
}

static void test_named_ports_egress(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "to-http",
			    "  podSelector: {matchLabels: {app: web}}\n"
			    "  policyTypes: [Egress]\n"
			    "  egress:\n  - to:\n    - podSelector:\n        matchExpressions:\n"
			    "        - {key: app, operator: In, values: [db, api]}\n"
			    "    ports: [{port: http}, {port: 7000}]\n")
			 NP("dev", "any-http",
			    "  podSelector: {}\n  policyTypes: [Egress]\n"
			    "  egress: [{ports: [{port: http}]}]\n"), NULL);
	/* resolved against the peers the rule selects, per peer; numeric ports for all */
	policy_expect_ep(&f, "prod/web", EGR,
			 "egress prod/db tcp/8080\negress prod/api tcp/9090\n"
			 "egress prod/db tcp/7000\negress prod/api tcp/7000");
	/* no peers: every pod's port of that name, to any destination */
	policy_expect_ep(&f, "dev/tool", EGR,
			 "egress any tcp/80\negress any tcp/8080\negress any tcp/9090");
	policy_fixture_free(&f);
}

static void test_end_port_split(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "range",
			    "  podSelector: {matchLabels: {app: db}}\n"
			    "  ingress:\n  - ports: [{port: 8000, endPort: 8080}]\n"
			    "  - ports: [{port: 1, endPort: 3, protocol: UDP}]\n"), NULL);
	/* 8000-8063 (/10 of 16 bits), 8064-8079 (/12), 8080; 1, 2-3 */
	policy_expect_ep(&f, "prod/db", ING,
			 HOST
			 "ingress any tcp/8000/10\ningress any tcp/8064/12\ningress any tcp/8080\n"
			 "ingress any udp/1\ningress any udp/2/15");
	policy_fixture_free(&f);
}

static void test_protocol_only_and_sctp(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, NP("prod", "udp-any",
			    "  podSelector: {matchLabels: {app: db}}\n"
			    "  ingress:\n  - ports: [{protocol: UDP}]\n")
			 NP("prod", "sctp",
			    "  podSelector: {matchLabels: {app: api}}\n"
			    "  ingress:\n  - ports: [{protocol: SCTP, port: 5432}]\n"
			    "  - from: [{podSelector: {}}]\n    ports: [{protocol: SCTP}]\n"), NULL);
	/* protocol only: every port of that protocol (prefix 80) */
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress any udp");
	/* SCTP is protocol 132 and opens no TCP port */
	policy_expect_ep(&f, "prod/api", ING,
			 HOST "ingress any sctp/5432\ningress prod/web sctp\ningress prod/db sctp\n"
			      "ingress prod/api sctp");
	policy_fixture_free(&f);
}

/* ---- ipBlock ------------------------------------------------------------------------------ */

static void test_ipblock_except(void **state)
{
	struct policy_fixture f;
	size_t i, pod_cidrs = 0;

	fixture_load(&f, NP("prod", "a",
			    "  podSelector: {matchLabels: {app: db}}\n"
			    "  ingress:\n  - from:\n"
			    "    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}\n")
			 NP("prod", "b",
			    "  podSelector: {matchLabels: {app: api}}\n"
			    "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.1.2.0/24}\n"
			    "    - ipBlock: {cidr: 10.2.0.0/16}\n"
			    "    - ipBlock: {cidr: 192.168.0.0/16}\n")
			 NP("prod", "c",
			    "  podSelector: {matchLabels: {app: web}}\n"
			    "  policyTypes: [Egress]\n"
			    "  egress:\n  - to:\n"
			    "    - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}\n"
			    "    ports: [{port: 443}]\n"), NULL);
	/* CIDR identities inside 10/8 and outside 10.1/16: 10/8 itself and 10.2/16; pod
	 * addresses (10.244/16) resolve to their pod identities and are not selected */
	policy_expect_ep(&f, "prod/db", ING,
			 HOST "ingress cidr:10.0.0.0/8 any\n"
			      "ingress cidr:10.2.0.0/16 any");
	policy_expect_ep(&f, "prod/api", ING,
			 HOST "ingress cidr:10.1.2.0/24 any\n"
			      "ingress cidr:10.2.0.0/16 any\n"
			      "ingress cidr:192.168.0.0/16 any");
	/* 0.0.0.0/0: world (addresses in no CIDR) plus CIDRs outside the excepts */
	policy_expect_ep(&f, "prod/web", EGR,
			 "egress world tcp/443\negress cidr:192.168.0.0/16 tcp/443");

	/* one ipcache entry and identity per distinct CIDR, in order of mention */
	policy_fixture_node(&f, "node-1");
	for (i = 0; i < f.ns.nipcache; i++) {
		const struct node_ipcache_entry *e = &f.ns.ipcache[i];
		char c[CIDR4_STR_MAX];

		cidr4_format(e->key.addr.v4, (uint8_t)(e->key.prefixlen - IPCACHE_PREFIX_BASE), c);
		assert_int_not_equal(e->key.prefixlen, IPCACHE_PREFIX_BASE); /* no 0.0.0.0/0 */
		if (!strcmp(c, "10.0.0.0/8"))
			assert_int_equal(e->val.identity, IDENTITY_LOCAL_CIDR_MIN);
		if (!strcmp(c, "10.1.0.0/16"))
			assert_int_equal(e->val.identity, IDENTITY_LOCAL_CIDR_MIN + 1);
		if (!strcmp(c, "192.168.0.0/16"))
			assert_int_equal(e->val.identity, IDENTITY_LOCAL_CIDR_MIN + 4);
		/* node-2's pod CIDR: tunnelled there, with the identity an address of it had
		 * without the entry (10.0.0.0/8's), so policy does not change */
		if (!strcmp(c, "10.244.1.0/24")) {
			assert_int_equal(e->val.identity, IDENTITY_LOCAL_CIDR_MIN);
			assert_int_equal(e->val.tunnel_endpoint, htonl(0xc0000202));
			pod_cidrs++;
		}
	}
	assert_int_equal(pod_cidrs, 1);
	assert_int_equal(f.ns.nipcache, 5 + 2 + 5 + 1); /* pods, nodes, CIDRs, remote pod CIDR */
	policy_fixture_free(&f);
}

/* ---- per-node state -------------------------------------------------------------------- */

static void test_node_state(void **state)
{
	const struct node_endpoint *ep;
	const struct node_ipcache_entry *e;
	char a[IP4_STR_MAX], b[IP4_STR_MAX];
	struct policy_fixture f;
	struct diag d = { { 0 } };
	size_t i;

	fixture_load(&f, "", NULL);
	policy_fixture_node(&f, "node-1");
	assert_string_equal(f.ns.node->name, "node-1");
	assert_int_equal(f.ns.neps, 3); /* prod/web, prod/db, dev/web; not the hostNetwork pod */
	assert_int_equal(f.ns.eps[2].info.ep_id, 5);
	ep = node_state_find_endpoint(&f.ns, "prod/db");
	assert_non_null(ep);
	assert_null(node_state_find_endpoint(&f.ns, "prod/api"));
	assert_null(node_state_find_endpoint(&f.ns, "kube-system/agent"));
	assert_int_equal(ep->info.ep_id, 2);
	assert_int_equal(ep->info.ifindex, NODE_STATE_IFINDEX_BASE + 2);
	assert_int_equal(ep->info.identity, 257);
	assert_int_equal(ep->info.family, CILIATE_AF_INET);
	assert_string_equal(ip4_format(ep->info.addr.v4, a), "10.244.0.11");
	assert_memory_equal(ep->info.mac, "\x0a\x58\x0a\xf4\x00\x0b", 6);
	assert_memory_equal(ep->info.node_mac, "\x0e\x58\x0a\xf4\x00\x0b", 6);
	assert_int_equal(f.ns.npolicy, 0);
	assert_int_equal(f.ns.nipcache, 8);
	for (i = 0; i < f.ns.nipcache; i++) {
		e = &f.ns.ipcache[i];
		ip4_format(e->key.addr.v4, a);
		ip4_format(e->val.tunnel_endpoint, b);
		assert_int_equal(e->key.family, CILIATE_AF_INET);
		if (e->key.prefixlen != IPCACHE_PREFIX_BASE + 32) {
			/* node-2's pod CIDR (not this node's): world, tunnelled to node-2 */
			assert_int_equal(e->key.prefixlen, IPCACHE_PREFIX_BASE + 24);
			assert_string_equal(a, "10.244.1.0");
			assert_int_equal(e->val.identity, IDENTITY_WORLD);
			assert_string_equal(b, "192.0.2.2");
			assert_int_equal(e->val.flags, 0);
		} else if (!strcmp(a, "192.0.2.1")) { /* this node */
			assert_int_equal(e->val.identity, IDENTITY_HOST);
			assert_int_equal(e->val.flags, IPCACHE_F_LOCAL_NODE);
		} else if (!strcmp(a, "192.0.2.2")) {
			assert_int_equal(e->val.identity, IDENTITY_REMOTE_NODE);
			assert_string_equal(b, "192.0.2.2");
			assert_int_equal(e->val.flags, 0);
		} else if (!strcmp(a, "10.244.1.10")) { /* prod/api on node-2 */
			assert_int_equal(e->val.identity, 258);
			assert_string_equal(b, "192.0.2.2");
			assert_int_equal(e->val.flags, IPCACHE_F_ENDPOINT);
		} else {
			assert_int_equal(e->val.flags, IPCACHE_F_ENDPOINT);
			assert_true(e->val.identity >= 256);
		}
	}
	policy_fixture_node(&f, "node-2");
	assert_int_equal(f.ns.neps, 2);
	assert_int_equal(f.ns.eps[0].info.ep_id, 3);
	assert_int_equal(f.ns.eps[1].info.ep_id, 4);
	node_state_free(&f.ns);
	assert_int_equal(node_state_compute(f.m, "node-9", &f.ns, &d), -ENOENT);
	assert_non_null(strstr(d.msg, "no node named \"node-9\""));
	policy_fixture_free(&f);
}

/* ---- builder pieces ---------------------------------------------------------------------- */

static void test_port_range_split(void **state)
{
	uint16_t starts[32];
	uint8_t bits[32];
	uint32_t next = 1;
	size_t n, i;

	n = port_range_split(80, 80, starts, bits);
	assert_int_equal(n, 1);
	assert_int_equal(starts[0], 80);
	assert_int_equal(bits[0], 16);
	n = port_range_split(0, 65535, starts, bits);
	assert_int_equal(n, 1);
	assert_int_equal(bits[0], 0);
	/* 1-65535: 16 prefixes, contiguous and aligned */
	n = port_range_split(1, 65535, starts, bits);
	assert_int_equal(n, 16);
	for (i = 0; i < n; i++) {
		assert_int_equal(starts[i], next);
		assert_int_equal(starts[i] & ((1u << (16 - bits[i])) - 1), 0);
		next += 1u << (16 - bits[i]);
	}
	assert_int_equal(next, 65536);
	n = port_range_split(30000, 32767, starts, bits);
	for (i = 0, next = 30000; i < n; i++) {
		assert_int_equal(starts[i], next);
		next += 1u << (16 - bits[i]);
	}
	assert_int_equal(next, 32768);
}

static void add(struct policy_builder *pb, uint32_t id, uint8_t proto, uint16_t port,
		uint8_t bits, uint32_t flags, uint32_t rule)
{
	assert_int_equal(polb_add(pb, 1, DIR_INGRESS, id, proto, port, bits, flags, rule), 0);
}

static const struct node_policy_entry *find(const struct node_state *ns, uint32_t id,
					    uint8_t proto, uint16_t port, uint32_t plen)
{
	size_t i;

	for (i = 0; i < ns->npolicy; i++) {
		const struct policy_key *k = &ns->policy[i].key;

		if (k->identity == id && k->proto == proto && ntohs(k->dport) == port &&
		    k->prefixlen == plen)
			return &ns->policy[i];
	}
	return NULL;
}

static void test_deny_normalization(void **state)
{
	struct policy_builder pb;
	struct node_state ns = { 0 };
	const struct node_policy_entry *e;

	assert_int_equal(polb_init(&pb), 0);
	/* identity 300: deny everything; its allow on tcp/80 becomes a deny */
	add(&pb, 300, IPPROTO_TCP, 80, 16, 0, 1);
	add(&pb, 300, POLB_ANY_PROTO, 0, 0, POLICY_F_DENY, 2);
	/* identity 301: deny tcp 8000-8063; allow tcp/8010 is covered, tcp/8080 is not,
	 * allow tcp (any port) is broader than the deny and stays an allow */
	add(&pb, 301, IPPROTO_TCP, 8000, 10, POLICY_F_DENY, 3);
	add(&pb, 301, IPPROTO_TCP, 8010, 16, 0, 4);
	add(&pb, 301, IPPROTO_TCP, 8080, 16, 0, 4);
	add(&pb, 301, IPPROTO_TCP, 0, 0, 0, 4);
	/* identity 301, other protocol: untouched */
	add(&pb, 301, IPPROTO_UDP, 8010, 16, 0, 4);
	/* identity 302: allow only, and duplicates keep the lowest rule id */
	add(&pb, 302, IPPROTO_TCP, 443, 16, 0, 6);
	add(&pb, 302, IPPROTO_TCP, 443, 16, 0, 5);
	/* same key allow + deny: deny wins */
	add(&pb, 303, IPPROTO_UDP, 53, 16, 0, 5);
	add(&pb, 303, IPPROTO_UDP, 53, 16, POLICY_F_DENY, 7);
	/* a deny of the wildcard identity does not rewrite other identities' allows (the
	 * datapath looks both up and a deny from either wins) */
	add(&pb, 0, IPPROTO_TCP, 443, 16, POLICY_F_DENY, 8);
	assert_int_equal(polb_finish(&pb, &ns), 0);
	polb_free(&pb);

	e = find(&ns, 300, IPPROTO_TCP, 80, 96);
	assert_non_null(e);
	assert_int_equal(e->val.flags, POLICY_F_DENY);
	assert_int_equal(e->val.rule_id, 2);
	e = find(&ns, 301, IPPROTO_TCP, 8010, 96);
	assert_int_equal(e->val.flags, POLICY_F_DENY);
	assert_int_equal(e->val.rule_id, 3);
	assert_int_equal(find(&ns, 301, IPPROTO_TCP, 8080, 96)->val.flags, 0);
	assert_int_equal(find(&ns, 301, IPPROTO_TCP, 0, 80)->val.flags, 0);
	assert_int_equal(find(&ns, 301, IPPROTO_UDP, 8010, 96)->val.flags, 0);
	e = find(&ns, 302, IPPROTO_TCP, 443, 96);
	assert_int_equal(e->val.flags, 0);
	assert_int_equal(e->val.rule_id, 5);
	e = find(&ns, 303, IPPROTO_UDP, 53, 96);
	assert_int_equal(e->val.flags, POLICY_F_DENY);
	assert_int_equal(e->val.rule_id, 7);
	assert_int_equal(ns.npolicy, 10);
	/* sorted: by endpoint, direction, identity */
	assert_int_equal(ns.policy[0].key.identity, 0);
	assert_int_equal(ns.policy[ns.npolicy - 1].key.identity, 303);
	node_state_free(&ns);
}

static void test_selector_semantics(void **state)
{
	struct labelset ls = { 0 };
	struct sel_req req = { 0 };
	struct selector sel = { 0 };
	char *vals[] = { "a", "b" };

	assert_int_equal(labelset_set(&ls, "app", "a"), 0);
	sel.reqs = &req;
	sel.nreqs = 1;
	req.key = "app";
	req.values = vals;
	req.nvalues = 2;
	req.op = SEL_OP_IN;
	assert_true(selector_matches(&sel, &ls));
	req.op = SEL_OP_NOT_IN;
	assert_false(selector_matches(&sel, &ls));
	req.key = "tier"; /* NotIn matches pods without the key */
	assert_true(selector_matches(&sel, &ls));
	req.op = SEL_OP_IN;
	assert_false(selector_matches(&sel, &ls));
	req.op = SEL_OP_EXISTS;
	assert_false(selector_matches(&sel, &ls));
	req.op = SEL_OP_DOES_NOT_EXIST;
	assert_true(selector_matches(&sel, &ls));
	sel.nreqs = 0;
	assert_true(selector_is_empty(&sel));
	assert_true(selector_matches(&sel, &ls));
	labelset_free(&ls);
}

static void test_netpol_errors(void **state)
{
	static const struct {
		const char *spec, *want;
	} cases[] = {
		{ "  ingress:\n  - ports: [{port: http, endPort: 90}]\n",
		  "np.yaml:65: spec.ingress[0].ports[0].endPort: endPort needs a numeric port, "
		  "not a named one" },
		{ "  ingress:\n  - ports: [{port: 90, endPort: 80}]\n",
		  "np.yaml:65: spec.ingress[0].ports[0].endPort: endPort 80 is below port 90" },
		{ "  ingress:\n  - ports: [{port: \"80\"}]\n",
		  "np.yaml:65: spec.ingress[0].ports[0].port: \"80\" is not a valid port name" },
		{ "  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]\n",
		  "np.yaml:65: spec.ingress[0].from[0].ipBlock.except[0]: 11.0.0.0/16 is not "
		  "strictly inside cidr 10.0.0.0/8" },
		{ "  ingress:\n  - from: [{}]\n",
		  "np.yaml:65: spec.ingress[0].from[0]: a peer needs podSelector, "
		  "namespaceSelector or ipBlock" },
		{ "  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]\n",
		  "np.yaml:65: spec.ingress[0].from[0].ipBlock: ipBlock cannot be combined" },
		{ "  policyTypes: [Ingress, Sideways]\n",
		  "np.yaml:64: spec.policyTypes[1]: unknown policy type \"Sideways\"" },
		{ "  podSelector: {app: db}\n",
		  "np.yaml:64: spec.podSelector.app: unknown field (allowed: matchLabels, "
		  "matchExpressions)" },
		{ "  podSelector: {matchExpressions: [{key: a, operator: Has}]}\n",
		  "np.yaml:64: spec.podSelector.matchExpressions[0].operator: unknown operator "
		  "\"Has\"" },
		{ "  podSelector: {matchExpressions: [{key: a, operator: In}]}\n",
		  "np.yaml:64: spec.podSelector.matchExpressions[0].values: must be non-empty" },
		{ "  egress:\n  - from: []\n",
		  "np.yaml:65: spec.egress[0].from: unknown field (allowed: to, ports)" },
	};
	char yaml[8192];
	struct scenario *s;
	struct diag d;
	size_t i;

	/* the policy's spec starts on line 64: after the base and the policy's header */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&d, 0, sizeof(d));
		s = NULL;
		snprintf(yaml, sizeof(yaml), "%s" NP("x", "p", "%s"), base_yaml, cases[i].spec);
		assert_int_equal(scenario_load_buffer("np.yaml", yaml, strlen(yaml), &s, &d),
				 -EINVAL);
		policy_expect_diag(d.msg, cases[i].want, i);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_policy),
		cmocka_unit_test(test_pod_selector_peer),
		cmocka_unit_test(test_and_vs_or_peers),
		cmocka_unit_test(test_empty_vs_absent_selectors),
		cmocka_unit_test(test_match_expressions),
		cmocka_unit_test(test_policy_types_defaults),
		cmocka_unit_test(test_rule_shapes),
		cmocka_unit_test(test_isolation_flags_and_host),
		cmocka_unit_test(test_additive_and_rule_names),
		cmocka_unit_test(test_named_ports_ingress),
		cmocka_unit_test(test_named_ports_egress),
		cmocka_unit_test(test_end_port_split),
		cmocka_unit_test(test_protocol_only_and_sctp),
		cmocka_unit_test(test_ipblock_except),
		cmocka_unit_test(test_node_state),
		cmocka_unit_test(test_port_range_split),
		cmocka_unit_test(test_deny_normalization),
		cmocka_unit_test(test_selector_semantics),
		cmocka_unit_test(test_netpol_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
