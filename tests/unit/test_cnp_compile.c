/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy compilation into policy map entries,
 * checked entry by entry: one line per entry "DIR PEER L4[ deny]" (PEER: any | host | world |
 * remote-node | health | init | unmanaged | kube-apiserver | cidr:PREFIX | ns/pod owning the
 * identity; L4: any | tcp | tcp/PORT | tcp/PORT/BITS | icmp/TYPE | icmpv6/TYPE), sorted.
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
#include "model/model.h"
#include "model/policy.h"
#include "model/policy_cilium.h"
#include "policy_assert.h"

/* Identities in pod order: prod/web 256, prod/db 257, prod/api 258, dev/tool 259,
 * dev/web 260; kube-system/agent is hostNetwork. Endpoint ids are pod positions (1..6). */
static const char base_yaml[] =
	"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: cnp}\n"
	"spec:\n  nodes: [{name: node-1}, {name: node-2}]\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {env: prod}}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: dev, labels: {env: dev}}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: prod, labels: {app: "
	"web}}\n"
	"spec:\n  nodeName: node-1\n  containers:\n  - name: c\n"
	"    ports: [{name: http, containerPort: 80}]\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: prod, labels: {app: db}}\n"
	"spec:\n  nodeName: node-1\n  containers:\n  - name: c\n"
	"    ports:\n    - {name: pg, containerPort: 5432}\n"
	"    - {name: http, containerPort: 8080, protocol: TCP}\n"
	"    - {name: dns, containerPort: 53, protocol: UDP}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: prod, labels: {app: "
	"api}}\n"
	"spec:\n  nodeName: node-2\n  containers:\n  - name: c\n"
	"    ports: [{name: http, containerPort: 9090}]\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: tool, namespace: dev, labels: {app: "
	"tool}}\n"
	"spec: {nodeName: node-2}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: dev, labels: {app: "
	"web}}\n"
	"spec: {nodeName: node-1}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: agent, namespace: kube-system}\n"
	"spec: {nodeName: node-1, hostNetwork: true}\n";

#define CNP(ns, name, body)                                          \
	"---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n" \
	"metadata: {name: " name ", namespace: " ns "}\n" body
#define CCNP(name, body)                                                        \
	"---\napiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n" \
	"metadata: {name: " name "}\n" body
#define NP(ns, name, spec)                                             \
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n" \
	"metadata: {name: " name ", namespace: " ns "}\nspec:\n" spec

static void fixture_load(struct policy_fixture *f, const char *policies)
{
	policy_fixture_load(f, "cnp.yaml", base_yaml, policies, NULL);
}

#define ING  EP_F_INGRESS_ENFORCED
#define EGR  EP_F_EGRESS_ENFORCED
#define HOST "ingress host any\n"
#define ALL_PODS(dir, l4)                                                             \
	dir " prod/web " l4 "\n" dir " prod/db " l4 "\n" dir " prod/api " l4 "\n" dir \
	    " dev/tool " l4 "\n" dir " dev/web " l4 "\n"
#define CLUSTER_RESERVED(dir, l4)                                                               \
	dir " host " l4 "\n" dir " remote-node " l4 "\n" dir " health " l4 "\n" dir " init " l4 \
	    "\n" dir " unmanaged " l4 "\n" dir " kube-apiserver " l4 "\n"

/* ---- selection and namespace scoping ------------------------------------------------------- */

static void test_namespace_scoping(void **state)
{
	struct policy_fixture f;

	fixture_load(&f,
		     CNP("prod", "plain",
			 "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
			 "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n")
			     CNP("prod", "ns-key",
				 "spec:\n  endpointSelector: {matchLabels: {app: api}}\n"
				 "  ingress:\n  - fromEndpoints:\n    - matchLabels: {app: web, "
				 "k8s:io.kubernetes.pod.namespace: dev}\n")
				     CNP("dev", "ns-labels",
					 "spec:\n  endpointSelector: {matchLabels: {app: tool}}\n"
					 "  ingress:\n  - fromEndpoints:\n    - matchLabels: "
					 "{io.cilium.k8s.namespace.labels.env: prod}\n")
					     CNP("dev", "any-prefix",
						 "spec:\n  endpointSelector: {matchLabels: "
						 "{any:app: web}}\n  egress:\n  - toEndpoints: "
						 "[{matchLabels: "
						 "{k8s:app: web}}]\n"));
	/* no namespace key: the policy's namespace only (prod/web, not dev/web) */
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress prod/web any");
	/* an explicit namespace label reaches dev */
	policy_expect_ep(&f, "prod/api", ING, HOST "ingress dev/web any");
	/* a namespace-label selector is not scoped */
	policy_expect_ep(&f, "dev/tool", ING,
			 HOST "ingress prod/web any\ningress prod/db any\n"
			      "ingress prod/api any");
	/* any: and k8s: prefixes select the same labels; dev's web only */
	policy_expect_ep(&f, "dev/web", EGR, "egress dev/web any");
	/* the endpointSelector of a CNP never reaches another namespace */
	policy_expect_ep(&f, "prod/web", 0, "");
	policy_fixture_free(&f);
}

static void test_empty_selectors(void **state)
{
	struct policy_fixture f;

	fixture_load(&f,
		     CNP("dev", "ns",
			 "spec:\n  endpointSelector: {}\n"
			 "  ingress:\n  - fromEndpoints: [{}]\n")
			     CCNP("cluster", "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
					     "  ingress:\n  - fromEndpoints: [{}]\n")
				     CCNP("by-label",
					  "spec:\n  endpointSelector: {matchLabels: {app: api}}\n"
					  "  ingress:\n  - fromEndpoints: [{matchLabels: {app: "
					  "web}}]\n"));
	/* {} in a CNP: every pod of its namespace, on both sides */
	policy_expect_ep(&f, "dev/tool", ING, HOST "ingress dev/tool any\ningress dev/web any");
	policy_expect_ep(&f, "dev/web", ING, HOST "ingress dev/tool any\ningress dev/web any");
	/* {} in a CCNP: every pod of the cluster (no reserved identities, no hostNetwork) */
	policy_expect_ep(&f, "prod/db", ING, HOST ALL_PODS("ingress", "any"));
	/* CCNP selectors span namespaces */
	policy_expect_ep(&f, "prod/api", ING, HOST "ingress prod/web any\ningress dev/web any");
	policy_expect_ep(&f, "prod/web", 0, "");
	policy_fixture_free(&f);
}

static void test_reserved_selector(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, CNP("prod", "host",
			     "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
			     "  ingress:\n  - fromEndpoints:\n"
			     "    - matchLabels: {reserved:remote-node: \"\"}\n"));
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress remote-node any");
	policy_fixture_free(&f);
}

/* ---- entities and CIDRs -------------------------------------------------------------------- */

static void test_entities(void **state)
{
	struct policy_fixture f;

	fixture_load(&f,
		     CNP("prod", "ents",
			 "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
			 "  ingress:\n  - fromEntities: [host, remote-node]\n"
			 "  - fromEntities: [health, init, kube-apiserver]\n"
			 "    toPorts: [{ports: [{port: \"4240\", protocol: TCP}]}]\n"
			 "  egress:\n  - toEntities: [world]\n")
			     CNP("prod", "cluster",
				 "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
				 "  egress:\n  - toEntities: [cluster]\n")
				     CNP("prod", "all",
					 "spec:\n  endpointSelector: {matchLabels: {app: api}}\n"
					 "  ingress:\n  - fromEntities: [all, world]\n")
					     CNP("dev", "cidr",
						 "spec:\n  endpointSelector: {matchLabels: {app: "
						 "tool}}\n"
						 "  egress:\n  - toCIDR: [198.51.100.0/24]\n"));
	/* world is the world identity plus every CIDR identity */
	policy_expect_ep(&f, "prod/db", ING | EGR,
			 HOST
			 "ingress remote-node any\ningress health tcp/4240\ningress init tcp/4240\n"
			 "ingress kube-apiserver tcp/4240\n"
			 "egress world any\negress cidr:198.51.100.0/24 any");
	/* cluster: every pod identity and the reserved in-cluster ones, not world */
	policy_expect_ep(&f, "prod/web", EGR,
			 ALL_PODS("egress", "any") CLUSTER_RESERVED("egress", "any"));
	/* all is the wildcard identity */
	policy_expect_ep(&f, "prod/api", ING, HOST "ingress any any");
	policy_fixture_free(&f);
}

static void test_cidr_and_except(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, CNP("prod", "cidrset",
			     "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
			     "  egress:\n  - toCIDRSet:\n    - cidr: 10.0.0.0/8\n"
			     "      except: [10.1.0.0/16]\n  - toCIDR: [172.16.0.1]\n")
				 CNP("prod", "more",
				     "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
				     "  egress:\n  - toCIDR: [10.1.2.0/24, 10.2.0.0/16]\n"
				     "  - toCIDRSet: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]\n"));
	/* inside 10/8 and outside the except: 10/8 itself and 10.2/16, not 10.1.2/24; a bare
	 * address is a /32 */
	policy_expect_ep(&f, "prod/db", EGR,
			 "egress cidr:10.0.0.0/8 any\negress cidr:10.2.0.0/16 any\n"
			 "egress cidr:172.16.0.1/32 any");
	/* 0/0 except 10/8: world and the CIDRs outside 10/8 */
	policy_expect_ep(&f, "prod/web", EGR,
			 "egress cidr:10.1.2.0/24 any\negress cidr:10.2.0.0/16 any\n"
			 "egress world any\negress cidr:172.16.0.1/32 any");
	policy_fixture_free(&f);
}

/* ---- ports, ICMP, L7 ----------------------------------------------------------------------- */

static void test_ports(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, CNP("prod", "ports",
			     "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
			     "  ingress:\n  - toPorts:\n    - ports:\n"
			     "      - {port: \"53\", protocol: ANY}\n"
			     "      - {port: \"8000\", endPort: 8003, protocol: TCP}\n"
			     "      - {protocol: SCTP}\n"
			     "      - {port: pg}\n"
			     "      - {port: dns, protocol: UDP}\n"
			     "  - fromEndpoints: [{matchLabels: {app: api}}]\n"
			     "    toPorts: [{ports: [{port: \"0\", protocol: ANY}]}]\n"
			     "  - fromEndpoints: [{matchLabels: {app: web}}]\n"
			     "    toPorts: [{ports: [{port: \"9000\"}]}]\n"));
	policy_expect_ep(&f, "prod/db", ING,
			 HOST "ingress any tcp/53\ningress any udp/53\ningress any sctp/53\n"
			      "ingress any tcp/8000/14\ningress any sctp\ningress any tcp/5432\n"
			      "ingress prod/api any\n"
			      "ingress prod/web tcp/9000\ningress prod/web udp/9000\n"
			      "ingress prod/web sctp/9000");
	policy_fixture_free(&f);
}

static void test_named_port_egress(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, CNP("prod", "out",
			     "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
			     "  egress:\n  - toEndpoints: [{matchLabels: {app: db}}]\n"
			     "    toPorts: [{ports: [{port: http}, {port: dns}]}]\n"));
	/* resolved against the peer pods; ANY matches the container port's protocol */
	policy_expect_ep(&f, "prod/web", EGR, "egress prod/db tcp/8080\negress prod/db udp/53");
	policy_fixture_free(&f);
}

static void test_icmp(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, CNP("prod", "ping",
			     "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
			     "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n"
			     "    icmps:\n    - fields:\n      - {type: 8, family: IPv4}\n"
			     "      - {type: EchoRequest, family: IPv6}\n"
			     "    toPorts: [{ports: [{port: \"80\", protocol: TCP}]}]\n"
			     "  - icmps: [{fields: [{type: 0}]}]\n"));
	/* the ICMP type is the port; icmps and toPorts of one rule add up */
	policy_expect_ep(&f, "prod/db", ING,
			 HOST "ingress prod/web icmp/8\ningress prod/web icmpv6/128\n"
			      "ingress prod/web tcp/80\ningress any icmp/0");
	policy_fixture_free(&f);
}

static void test_l7_warning(void **state)
{
	struct policy_fixture f;
	size_t i, n = 0;

	fixture_load(&f, CNP("prod", "http",
			     "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
			     "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n"
			     "    toPorts:\n    - ports: [{port: \"8080\", protocol: TCP}]\n"
			     "      rules:\n        http: [{method: GET, path: /}]\n"));
	/* the L3/L4 part only, never an allow-all */
	policy_expect_ep(&f, "prod/db", ING, HOST "ingress prod/web tcp/8080");
	for (i = 0; i < f.m->npolicies; i++) {
		if (!policy_warning_count(f.m->policies[i]))
			continue;
		n += policy_warning_count(f.m->policies[i]);
		assert_non_null(strstr(policy_warning(f.m->policies[i], 0),
				       ": spec.ingress[0].toPorts[0].rules: L7 rules are not "
				       "enforced yet; L3/L4 part applied"));
		assert_int_equal(strncmp(policy_warning(f.m->policies[i], 0), "cnp.yaml:", 9), 0);
	}
	assert_int_equal(n, 1);
	policy_fixture_free(&f);
}

/* ---- deny precedence ----------------------------------------------------------------------- */

static void test_deny_precedence(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, CNP("prod", "l3",
			     "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
			     "  ingress:\n  - fromEntities: [all]\n"
			     "  - fromEndpoints: [{matchLabels: {app: web}}]\n"
			     "    toPorts: [{ports: [{port: \"80\", protocol: TCP}]}]\n"
			     "  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n")
				 CNP("prod", "l4",
				     "spec:\n  endpointSelector: {matchLabels: {app: api}}\n"
				     "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n"
				     "    toPorts: [{ports: [{port: \"8080\", endPort: 8083, "
				     "protocol: TCP}]}]\n"
				     "  ingressDeny:\n  - toPorts: [{ports: [{port: \"8081\", "
				     "protocol: TCP}]}]\n"
				     "  - fromEntities: [host]\n"));
	/* the allow on web's TCP 80 is covered by the L3 deny of web: it becomes a deny */
	policy_expect_ep(
		&f, "prod/db", ING,
		"ingress any any\ningress prod/web any deny\ningress prod/web tcp/80 deny\n"
		"ingress host any");
	/* an L4-only deny on the wildcard identity stays separate (the datapath checks both
	 * lookups, deny first); the host's allow-localhost entry is overridden */
	policy_expect_ep(
		&f, "prod/api", ING,
		"ingress prod/web tcp/8080/14\ningress any tcp/8081 deny\ningress host any deny");
	assert_string_equal(policy_rule_of(&f, "prod/db", DIR_INGRESS,
					   cluster_find_pod(f.m, "prod/web")->identity, 96),
			    "cnp:prod/l3 ingressDeny[0]");
	policy_fixture_free(&f);

	/* a CNP deny beats a NetworkPolicy allow */
	fixture_load(&f,
		     NP("prod", "allow", "  podSelector: {}\n  ingress: [{}]\n") CNP(
			     "prod", "deny",
			     "spec:\n  endpointSelector: {}\n  ingressDeny:\n"
			     "  - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: "
			     "dev}}]\n"));
	policy_expect_ep(&f, "prod/web", ING,
			 HOST
			 "ingress any any\ningress dev/tool any deny\ningress dev/web any deny");
	policy_fixture_free(&f);
}

/* ---- default deny -------------------------------------------------------------------------- */

static void test_enable_default_deny(void **state)
{
	struct policy_fixture f;

	fixture_load(&f, CNP("prod", "no-isolation",
			     "spec:\n  endpointSelector: {matchLabels: "
			     "{app: db}}\n  enableDefaultDeny: {ingress: false}\n"
			     "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n"
			     "  egress:\n  - toEntities: [world]\n")
				 CNP("prod", "deny-only",
				     "spec:\n  endpointSelector: {matchLabels: "
				     "{app: web}}\n  egressDeny:\n  - toEntities: [world]\n")
					 CNP("prod", "explicit",
					     "spec:\n  endpointSelector: {matchLabels: "
					     "{app: api}}\n  enableDefaultDeny: {ingress: true, "
					     "egress: false}\n"
					     "  egress:\n  - toEntities: [world]\n")
						 CNP("dev", "empty-rule",
						     "spec:\n  endpointSelector: {}\n"
						     "  ingress:\n  - {}\n"));
	/* ingress allows without isolation (so no host entry); egress has rules: isolated */
	policy_expect_ep(&f, "prod/db", EGR, "ingress prod/web any\negress world any");
	/* a deny-only direction is isolated by default */
	policy_expect_ep(&f, "prod/web", EGR, "egress world any deny");
	/* explicit true without ingress rules isolates; explicit false keeps egress open */
	policy_expect_ep(&f, "prod/api", ING, HOST "egress world any");
	/* an empty rule admits nothing but isolates */
	policy_expect_ep(&f, "dev/tool", ING, HOST);
	policy_fixture_free(&f);
}

static void test_specs_and_rule_names(void **state)
{
	struct policy_fixture f;
	uint32_t web;

	fixture_load(&f, CNP("prod", "two",
			     "specs:\n"
			     "- endpointSelector: {matchLabels: {app: db}}\n"
			     "  ingress: [{fromEndpoints: [{matchLabels: {app: web}}]}]\n"
			     "- endpointSelector: {matchLabels: {app: db}}\n"
			     "  egressDeny: [{toEntities: [world]}]\n"
			     "  ingress: [{fromEndpoints: [{matchLabels: {app: api}}]}]\n")
				 CCNP("cw", "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
					    "  ingress: [{fromEntities: [remote-node]}]\n"));
	policy_expect_ep(&f, "prod/db", ING | EGR,
			 HOST
			 "ingress prod/web any\ningress prod/api any\ningress remote-node any\n"
			 "egress world any deny");
	web = cluster_find_pod(f.m, "prod/web")->identity;
	assert_string_equal(policy_rule_of(&f, "prod/db", DIR_INGRESS, web, 72),
			    "cnp:prod/two specs[0].ingress[0]");
	assert_string_equal(policy_rule_of(&f, "prod/db", DIR_EGRESS, IDENTITY_WORLD, 72),
			    "cnp:prod/two specs[1].egressDeny[0]");
	assert_string_equal(policy_rule_of(&f, "prod/db", DIR_INGRESS, IDENTITY_REMOTE_NODE, 72),
			    "ccnp:cw ingress[0]");
	policy_fixture_free(&f);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_errors(void **state)
{
	static const struct {
		const char *doc, *want;
	} cases[] = {
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  ingress:\n"
		     "  - fromEntities: [galaxy]\n"),
		 "cnp.yaml:66: spec.ingress[0].fromEntities[0]: unknown entity \"galaxy\""},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  ingress:\n"
		     "  - fromRequires: [{}]\n"),
		 "cnp.yaml:66: spec.ingress[0].fromRequires: not supported by ciliate"},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  egress:\n"
		     "  - toFQDNs: [{matchName: example.com}]\n"),
		 "cnp.yaml:66: spec.egress[0].toFQDNs: not supported"},
		{CNP("prod", "e", "spec:\n  nodeSelector: {}\n"),
		 "cnp.yaml:64: spec.nodeSelector: host policies (nodeSelector) are not supported"},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  egress:\n"
		     "  - toCIDR: [10.0.0.0/33]\n"),
		 "cnp.yaml:66: spec.egress[0].toCIDR[0]: bad CIDR \"10.0.0.0/33\""},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  egress:\n"
		     "  - toCIDRSet: [{cidr: 10.0.0.0/16, except: [10.1.0.0/24]}]\n"),
		 "cnp.yaml:66: spec.egress[0].toCIDRSet[0].except[0]: 10.1.0.0/24 is not inside "
		 "cidr 10.0.0.0/16"},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  ingressDeny:\n"
		     "  - toPorts: [{ports: [{port: \"80\"}], rules: {http: [{}]}}]\n"),
		 "cnp.yaml:66: spec.ingressDeny[0].toPorts[0].rules: L7 rules are not allowed in "
		 "deny rules"},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  ingress:\n"
		     "  - toPorts: [{ports: [{port: \"80\", protocol: ICMP}]}]\n"),
		 "cnp.yaml:66: spec.ingress[0].toPorts[0].ports[0].protocol: unknown protocol "
		 "\"ICMP\" (TCP, UDP, SCTP or ANY)"},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  ingress:\n"
		     "  - toPorts: [{ports: [{port: \"90\", endPort: 80}]}]\n"),
		 "cnp.yaml:66: spec.ingress[0].toPorts[0].ports[0].endPort: endPort 80 is below "
		 "port 90"},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  ingress:\n"
		     "  - toPorts: [{ports: []}]\n"),
		 "cnp.yaml:66: spec.ingress[0].toPorts[0].ports: required"},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  ingress:\n"
		     "  - icmps: [{fields: [{type: Bogus}]}]\n"),
		 "cnp.yaml:66: spec.ingress[0].icmps[0].fields[0].type: unknown ICMP type "
		 "\"Bogus\""},
		{CNP("prod", "e", "spec:\n  endpointSelector: {matchLabels: {container:x: y}}\n"),
		 "cnp.yaml:64: spec.endpointSelector: label key \"container:x\": unsupported "
		 "source"},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  ingress:\n"
		     "  - fromEndpoints: [{}]\n    bogus: 1\n"),
		 "cnp.yaml:67: spec.ingress[0].bogus: unknown field"},
		{CNP("prod", "e", "metadata2: {}\n"),
		 "cnp.yaml:60: spec: required field missing (spec or specs)"},
		{CNP("prod", "e",
		     "spec:\n  endpointSelector: {}\n  enableDefaultDeny: "
		     "{ingress: maybe}\n"),
		 "cnp.yaml:65: spec.enableDefaultDeny.ingress:"},
		{CNP("prod", "e", "spec: {endpointSelector: {}}\n")
			 CNP("prod", "e", "spec: {endpointSelector: {}}\n"),
		 "cnp.yaml:65: metadata.name: duplicate CiliumNetworkPolicy \"prod/e\" (first at "
		 "line 60)"},
		{"---\napiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\nmetadata: {name: e}\n",
		 "cnp.yaml:60: apiVersion: kind CiliumNetworkPolicy needs apiVersion cilium.io/v2"},
	};
	struct scenario *s;
	struct diag d;
	size_t i;
	char *yaml;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&d, 0, sizeof(d));
		assert_true(asprintf(&yaml, "%s%s", base_yaml, cases[i].doc) > 0);
		s = NULL;
		assert_int_not_equal(scenario_load_buffer("cnp.yaml", yaml, strlen(yaml), &s, &d),
				     0);
		assert_null(s);
		policy_expect_diag(d.msg, cases[i].want, i);
		free(yaml);
	}
}

static void test_clusterwide_has_no_namespace(void **state)
{
	struct policy_fixture f;
	size_t i;

	fixture_load(&f, CCNP("cw", "metadata2: {}\nspec: {endpointSelector: {}}\n"));
	for (i = 0; i < f.m->nnamespaces; i++)
		assert_true(f.m->namespaces[i].name[0] != '\0');
	assert_int_equal(f.m->npolicies, 1);
	assert_int_equal(f.m->policies[0]->kind, POLICY_KIND_CCNP);
	assert_string_equal(f.m->policies[0]->ns, "");
	policy_fixture_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_namespace_scoping),
		cmocka_unit_test(test_empty_selectors),
		cmocka_unit_test(test_reserved_selector),
		cmocka_unit_test(test_entities),
		cmocka_unit_test(test_cidr_and_except),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_named_port_egress),
		cmocka_unit_test(test_icmp),
		cmocka_unit_test(test_l7_warning),
		cmocka_unit_test(test_deny_precedence),
		cmocka_unit_test(test_enable_default_deny),
		cmocka_unit_test(test_specs_and_rule_names),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_clusterwide_has_no_namespace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
