/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The egress gateway in the cluster model (docs/EGRESS.md "Model"): CiliumEgressGatewayPolicy
 * and v1 Node parsing and their errors ("FILE:LINE: FIELD.PATH: reason"), node `addresses`,
 * pod selection (podSelector with io.kubernetes.pod.namespace, namespaceSelector, never
 * hostNetwork), the gateway by node labels (first by name, kubernetes.io/hostname, none),
 * the per-node ciliate_egress_gw entries (excluded CIDRs, the interface to resolve only on the
 * gateway, several policies, egressGateways spread), a Node document moving the gateway, and
 * the same entries through documents, model parts and a scenario file.
 * Run from the repository root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ipaddr.h"
#include "model/labels.h"
#include "model/model.h"
#include "model/parse.h"

/* 9 lines; node-3 comes before node-2 in the Cluster but after it by name */
#define CLUSTER                                                                      \
	"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: egw}\nspec:\n" \
	"  nodes:\n"                                                                  \
	"  - {name: node-1}\n"                                                        \
	"  - {name: node-3, labels: {egress: \"yes\"}, addresses: [192.0.2.100]}\n"   \
	"  - {name: node-2, labels: {egress: \"yes\"}}\n"                             \
	"---\n"

/* x/a (web, 10.244.0.10) and x/b (db, .11) on node-1, y/c (web, 10.244.2.10) on node-2,
 * default/h (web, hostNetwork) on node-1; namespace x has team=blue */
#define PODS                                                                           \
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: blue}}\n---\n" \
	"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: web}}\n" \
	"spec: {nodeName: node-1}\n---\n"                                                  \
	"apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {app: db}}\n" \
	"spec: {nodeName: node-1}\n---\n"                                                  \
	"apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: y, labels: {app: web}}\n" \
	"spec: {nodeName: node-2}\n---\n"                                                  \
	"apiVersion: v1\nkind: Pod\nmetadata: {name: h, labels: {app: web}}\n"             \
	"spec: {nodeName: node-1, hostNetwork: true}\n---\n"

#define CEGP(name) "apiVersion: cilium.io/v2\nkind: CiliumEgressGatewayPolicy\nmetadata: {name: " name "}\n"

/* web pods of namespace x to 203.0.113.0/24 but its upper half, through the first
 * egress=yes node by name (node-2), SNATed to eth1's address */
#define POL_WEB_X                                                                   \
	CEGP("web-x")                                                               \
	"spec:\n"                                                                   \
	"  selectors:\n"                                                            \
	"  - podSelector:\n"                                                        \
	"      matchLabels: {app: web, io.kubernetes.pod.namespace: x}\n"           \
	"  destinationCIDRs: [203.0.113.0/24]\n"                                    \
	"  excludedCIDRs: [203.0.113.128/25]\n"                                     \
	"  egressGateway:\n"                                                        \
	"    nodeSelector: {matchLabels: {egress: \"yes\"}}\n"                      \
	"    interface: eth1\n---\n"

/* every pod of a team=blue namespace to 198.51.100.0/24 through node-3 (by hostname) */
#define POL_BLUE                                                                    \
	CEGP("all-blue")                                                            \
	"spec:\n"                                                                   \
	"  selectors: [{namespaceSelector: {matchLabels: {team: blue}}}]\n"         \
	"  destinationCIDRs: [198.51.100.7/24]\n"                                   \
	"  egressGateway:\n"                                                        \
	"    nodeSelector: {matchLabels: {kubernetes.io/hostname: node-3}}\n"       \
	"    egressIP: 192.0.2.100\n---\n"

static struct scenario *load(const char *yaml)
{
	struct scenario *s = NULL;
	struct diag d = { { 0 } };

	if (scenario_load_buffer("f.yaml", yaml, strlen(yaml), &s, &d)) {
		print_error("scenario_load_buffer: %s\n", d.msg);
		fail();
	}
	return s;
}

static void expect_error(const char *yaml, const char *want)
{
	struct scenario *s = (struct scenario *)0x1;
	struct diag d = { { 0 } };

	assert_int_equal(scenario_load_buffer("f.yaml", yaml, strlen(yaml), &s, &d), -EINVAL);
	assert_null(s);
	if (strcmp(d.msg, want)) {
		print_error("error message mismatch\n  want: %s\n  got:  %s\n", want, d.msg);
		fail();
	}
}

static uint32_t ip(const char *s)
{
	uint32_t v = 0;

	assert_int_equal(ip4_parse(s, &v), 0);
	return v;
}

/* One line per entry: "SADDR DADDR/LEN gw GATEWAY egress EGRESS_IP[ resolve IFACE]". */
static char *entries_text(const struct cluster_model *m, const char *node)
{
	struct node_state ns;
	struct diag d = { { 0 } };
	char *buf = calloc(1, 8192), a[IP4_STR_MAX], b[CIDR4_STR_MAX], g[IP4_STR_MAX],
	     e[IP4_STR_MAX];
	size_t i, w = 0;

	assert_non_null(buf);
	if (node_state_compute(m, node, &ns, &d)) {
		print_error("node_state_compute(%s): %s\n", node, d.msg);
		fail();
	}
	assert_int_equal(!!(ns.cfg.flags & NODE_CFG_F_EGRESS_GW), m->negress_policies > 0);
	for (i = 0; i < ns.negress; i++) {
		const struct node_egress_entry *x = &ns.egress[i];
		const char *gw = x->val.gateway_ip == htonl(EGRESS_GW_EXCLUDED_CIDR) ? "excluded" :
				 x->val.gateway_ip == EGRESS_GW_NO_GATEWAY	     ? "none" :
										       ip4_format(x->val.gateway_ip, g);

		w += (size_t)snprintf(buf + w, 8192 - w, "%s %s gw %s egress %s%s%s\n",
				      ip4_format(x->key.saddr, a),
				      cidr4_format(x->key.daddr,
						   (uint8_t)(x->key.prefixlen - EGRESS_GW_PREFIX_BASE), b),
				      gw, ip4_format(x->val.egress_ip, e),
				      x->resolve ? " resolve " : "",
				      !x->resolve ? "" : x->iface[0] ? x->iface : "<default>");
	}
	node_state_free(&ns);
	return buf;
}

static void assert_entries(const struct cluster_model *m, const char *node, const char *want)
{
	char *got = entries_text(m, node);

	if (strcmp(got, want)) {
		print_error("%s entries mismatch\nwant:\n%sgot:\n%s", node, want, got);
		free(got);
		fail();
	}
	free(got);
}

/* ---- parsing ------------------------------------------------------------------------------ */

static void test_parse_fields(void **state)
{
	struct scenario *s = load(CLUSTER PODS POL_WEB_X POL_BLUE);
	const struct cluster_model *m = &s->model;
	const struct m_egress_policy *web = cluster_find_egress_policy(m, "web-x");
	const struct m_egress_policy *blue = cluster_find_egress_policy(m, "all-blue");
	const struct m_node *n3 = cluster_find_node(m, "node-3");

	(void)state;
	assert_int_equal(m->negress_policies, 2);
	assert_non_null(web);
	assert_non_null(blue);
	assert_string_equal(web->file, "f.yaml");
	assert_int_equal(web->line, 34);
	assert_int_equal(web->nselectors, 1);
	assert_non_null(web->selectors[0].pods);
	assert_null(web->selectors[0].namespaces);
	assert_int_equal(web->ndst, 1);
	assert_int_equal(web->dst[0].addr, ip("203.0.113.0"));
	assert_int_equal(web->dst[0].len, 24);
	assert_int_equal(web->nexcluded, 1);
	assert_int_equal(web->excluded[0].len, 25);
	assert_int_equal(web->ngateways, 1);
	assert_false(web->multi);
	assert_string_equal(web->gateways[0].iface, "eth1");
	assert_int_equal(web->gateways[0].egress_ip, 0);
	/* host bits of a CIDR are cleared, as Cilium's parser does */
	assert_int_equal(blue->dst[0].addr, ip("198.51.100.0"));
	assert_int_equal(blue->gateways[0].egress_ip, ip("192.0.2.100"));
	assert_string_equal(blue->gateways[0].iface, "");
	/* node addresses */
	assert_int_equal(n3->ip, ip("192.0.2.2"));
	assert_int_equal(n3->naddresses, 1);
	assert_int_equal(n3->addresses[0], ip("192.0.2.100"));
	assert_int_equal(cluster_find_node(m, "node-1")->naddresses, 0);
	scenario_free(s);
}

static void test_parse_errors(void **state)
{
	(void)state;
	/* the policy document starts on line 10, its spec on line 13 */
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n"
				       "  egressGateway:\n    nodeSelector: {}\n"
				       "    egressIP: 192.0.2.100\n    interface: eth1\n",
		     "f.yaml:17: spec.egressGateway: egressIP and interface are mutually exclusive "
		     "(Cilium ignores such a policy)");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [10.0.0.0/8, 10.0.0.0/33]\n"
				       "  egressGateway: {nodeSelector: {}}\n",
		     "f.yaml:15: spec.destinationCIDRs[1]: bad CIDR \"10.0.0.0/33\" (want "
		     "A.B.C.D/N)");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [10.0.0.1]\n"
				       "  egressGateway: {nodeSelector: {}}\n",
		     "f.yaml:15: spec.destinationCIDRs[0]: bad CIDR \"10.0.0.1\" (want A.B.C.D/N)");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n"
				       "  excludedCIDRs: [fd00::/300]\n"
				       "  egressGateway: {nodeSelector: {}}\n",
		     "f.yaml:16: spec.excludedCIDRs[0]: bad CIDR \"fd00::/300\" (want A.B.C.D/N or "
		     "an IPv6 prefix)");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n"
				       "  egressGateway: {nodeSelector: {}, egressIP: 1.2.3}\n",
		     "f.yaml:16: spec.egressGateway.egressIP: bad IPv4 address \"1.2.3\"");
	expect_error(CLUSTER CEGP("p") "spec:\n  destinationCIDRs: [0.0.0.0/0]\n"
				       "  egressGateway: {nodeSelector: {}}\n",
		     "f.yaml:14: spec.selectors: required field missing");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  egressGateway: {nodeSelector: {}}\n",
		     "f.yaml:14: spec.destinationCIDRs: required field missing");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n",
		     "f.yaml:14: spec.egressGateway: required field missing (egressGateway or "
		     "egressGateways)");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n"
				       "  egressGateway: {interface: eth0}\n",
		     "f.yaml:16: spec.egressGateway.nodeSelector: required field missing");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDR: [0.0.0.0/0]\n",
		     "f.yaml:15: spec.destinationCIDR: unknown field (allowed: selectors, "
		     "destinationCIDRs, excludedCIDRs, egressGateway, egressGateways)");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{nodeSelector: {}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n"
				       "  egressGateway: {nodeSelector: {}}\n",
		     "f.yaml:14: spec.selectors[0]: needs a podSelector or a namespaceSelector (a "
		     "nodeSelector cannot be used alone)");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {matchLabels: "
				       "{\"reserved:host\": \"\"}}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n"
				       "  egressGateway: {nodeSelector: {}}\n",
		     "f.yaml:14: spec.selectors[0].podSelector: label key \"reserved:host\": "
		     "unsupported source (use k8s:, any: or no prefix)");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n"
				       "  egressGateway: {nodeSelector: {}}\n"
				       "  egressGateways: [{nodeSelector: {}}]\n",
		     "f.yaml:17: spec.egressGateways: egressGateway and egressGateways are mutually "
		     "exclusive");
	expect_error(CLUSTER CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n"
				       "  egressGateway: {nodeSelector: {}}\n---\n"
			     CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
				       "  destinationCIDRs: [0.0.0.0/0]\n"
				       "  egressGateway: {nodeSelector: {}}\n",
		     "f.yaml:18: metadata.name: duplicate CiliumEgressGatewayPolicy \"p\" (first at "
		     "f.yaml:10)");
	/* Node documents */
	expect_error(CLUSTER "apiVersion: v1\nkind: Node\nmetadata: {name: node-9}\n",
		     "f.yaml:12: metadata.name: no node named \"node-9\" in the Cluster");
	expect_error(CLUSTER "apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n---\n"
			     "apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n",
		     "f.yaml:14: metadata.name: duplicate Node \"node-1\" (first at f.yaml:10)");
	/* node addresses */
	expect_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
		     "  nodes: [{name: n, addresses: [10.1.1.1]}]\n",
		     "f.yaml:4: spec.nodes[0].addresses[0]: 10.1.1.1 is not a host address of "
		     "underlayCIDR 192.0.2.0/24");
	expect_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
		     "  nodes: [{name: n, addresses: [192.0.2.300]}]\n",
		     "f.yaml:4: spec.nodes[0].addresses[0]: bad IPv4 address \"192.0.2.300\"");
	expect_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
		     "  nodes: [{name: n, addresses: [192.0.2.1]}]\n",
		     "f.yaml:4: spec.nodes[0].addresses[0]: 192.0.2.1 is the node's own address");
	expect_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
		     "  nodes:\n  - {name: n, addresses: [192.0.2.2]}\n  - {name: m}\n",
		     "f.yaml:5: spec.nodes[0].addresses[0]: 192.0.2.2 is already node \"m\"'s "
		     "address");
	expect_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
		     "  nodes: [{name: n, addresses: [192.0.2.9]}]\n"
		     "  externalHosts: [{name: e, ip: 192.0.2.9}]\n",
		     "f.yaml:4: spec.nodes[0].addresses[0]: 192.0.2.9 is already external host "
		     "\"e\"'s address");
}

/* `ciliate apply` checks Node documents without the Cluster (agents check the name) and
 * stores both kinds without a namespace */
static void test_apply_check(void **state)
{
	static const char yaml[] = "apiVersion: v1\nkind: Node\nmetadata:\n  name: worker-7\n"
				   "  labels: {egress: \"yes\"}\n---\n" CEGP("p")
				   "spec:\n  selectors: [{podSelector: {}}]\n"
				   "  destinationCIDRs: [0.0.0.0/0]\n"
				   "  egressGateway: {nodeSelector: {}}\n";
	struct manifest_obj *v = NULL;
	struct diag d = { { 0 } };
	size_t n = 0;

	(void)state;
	if (manifests_load("m.yaml", yaml, strlen(yaml), &v, &n, NULL, &d))
		fail_msg("%s", d.msg);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].kind, "Node");
	assert_string_equal(v[0].ns, "");
	assert_string_equal(v[1].kind, "CiliumEgressGatewayPolicy");
	assert_string_equal(v[1].ns, "");
	manifests_free(v, n);
}

/* ---- selection, gateway, entries ---------------------------------------------------------- */

static void test_entries(void **state)
{
	struct scenario *s = load(CLUSTER PODS POL_WEB_X POL_BLUE);
	const struct cluster_model *m = &s->model;
	const char *others = "10.244.0.10 198.51.100.0/24 gw 192.0.2.2 egress 192.0.2.100\n"
			     "10.244.0.10 203.0.113.0/24 gw 192.0.2.3 egress 0.0.0.0\n"
			     "10.244.0.10 203.0.113.128/25 gw excluded egress 0.0.0.0\n"
			     "10.244.0.11 198.51.100.0/24 gw 192.0.2.2 egress 192.0.2.100\n";

	(void)state;
	assert_true(egress_policy_selects(m, cluster_find_egress_policy(m, "web-x"),
					  cluster_find_pod(m, "x/a")));
	/* web, but in namespace y; web, but hostNetwork */
	assert_false(egress_policy_selects(m, cluster_find_egress_policy(m, "web-x"),
					   cluster_find_pod(m, "y/c")));
	assert_false(egress_policy_selects(m, cluster_find_egress_policy(m, "web-x"),
					   cluster_find_pod(m, "default/h")));
	assert_true(egress_policy_selects(m, cluster_find_egress_policy(m, "all-blue"),
					  cluster_find_pod(m, "x/b")));
	/* every node holds every entry; only the gateway (node-2) resolves eth1 */
	assert_entries(m, "node-1", others);
	assert_entries(m, "node-3", others);
	assert_entries(m, "node-2",
		       "10.244.0.10 198.51.100.0/24 gw 192.0.2.2 egress 192.0.2.100\n"
		       "10.244.0.10 203.0.113.0/24 gw 192.0.2.3 egress 0.0.0.0 resolve eth1\n"
		       "10.244.0.10 203.0.113.128/25 gw excluded egress 0.0.0.0\n"
		       "10.244.0.11 198.51.100.0/24 gw 192.0.2.2 egress 192.0.2.100\n");
	scenario_free(s);
}

static void test_route_of(void **state)
{
	struct scenario *s = load(CLUSTER PODS POL_WEB_X POL_BLUE);
	const struct cluster_model *m = &s->model;
	const struct m_pod *a = cluster_find_pod(m, "x/a");
	struct egress_route r;

	(void)state;
	assert_int_equal(egress_route_of(m, a, ip("203.0.113.5"), &r), 0);
	assert_int_equal(r.verdict, EGRESS_VIA_GATEWAY);
	assert_string_equal(r.policy->name, "web-x");
	assert_string_equal(r.gateway->name, "node-2");
	assert_int_equal(r.egress_ip, 0);
	assert_string_equal(r.iface, "eth1");
	assert_int_equal(egress_route_of(m, a, ip("203.0.113.200"), &r), 0);
	assert_int_equal(r.verdict, EGRESS_EXCLUDED);
	assert_int_equal(egress_route_of(m, a, ip("198.51.100.9"), &r), 0);
	assert_int_equal(r.verdict, EGRESS_VIA_GATEWAY);
	assert_string_equal(r.gateway->name, "node-3");
	assert_int_equal(r.egress_ip, ip("192.0.2.100"));
	assert_int_equal(egress_route_of(m, a, ip("8.8.8.8"), &r), 0);
	assert_int_equal(r.verdict, EGRESS_NONE);
	assert_null(r.policy);
	assert_int_equal(egress_route_of(m, cluster_find_pod(m, "y/c"), ip("203.0.113.5"), &r), 0);
	assert_int_equal(r.verdict, EGRESS_NONE);
	scenario_free(s);
}

static void test_no_gateway_and_default_device(void **state)
{
	struct scenario *s = load(CLUSTER PODS CEGP("nowhere")
				  "spec:\n  selectors: [{podSelector: {matchLabels: {app: db}}}]\n"
				  "  destinationCIDRs: [0.0.0.0/0]\n"
				  "  egressGateway: {nodeSelector: {matchLabels: {egress: never}}}\n"
				  "---\n" CEGP("web")
				  "spec:\n  selectors: [{podSelector: {matchLabels: {app: web}}}]\n"
				  "  destinationCIDRs: [0.0.0.0/0]\n"
				  "  egressGateway: {nodeSelector: {matchExpressions: [{key: egress,"
				  " operator: Exists}]}}\n");
	const struct cluster_model *m = &s->model;
	struct egress_route r;

	(void)state;
	/* no node matches: gateway 0 (NO_EGRESS_GATEWAY); the default-route device is resolved
	 * on node-2 only */
	assert_entries(m, "node-1",
		       "10.244.0.10 0.0.0.0/0 gw 192.0.2.3 egress 0.0.0.0\n"
		       "10.244.0.11 0.0.0.0/0 gw none egress 0.0.0.0\n"
		       "10.244.2.10 0.0.0.0/0 gw 192.0.2.3 egress 0.0.0.0\n");
	assert_entries(m, "node-2",
		       "10.244.0.10 0.0.0.0/0 gw 192.0.2.3 egress 0.0.0.0 resolve <default>\n"
		       "10.244.0.11 0.0.0.0/0 gw none egress 0.0.0.0\n"
		       "10.244.2.10 0.0.0.0/0 gw 192.0.2.3 egress 0.0.0.0 resolve <default>\n");
	assert_int_equal(egress_route_of(m, cluster_find_pod(m, "x/b"), ip("1.1.1.1"), &r), 0);
	assert_int_equal(r.verdict, EGRESS_NO_GATEWAY);
	assert_string_equal(r.policy->name, "nowhere");
	assert_null(r.gateway);
	scenario_free(s);
}

/* the other selector forms: a null podSelector (every pod) restricted by a nodeSelector; a
 * namespaceSelector with matchExpressions ANDed with a k8s:-prefixed podSelector */
static void test_selector_forms(void **state)
{
	struct scenario *s = load(CLUSTER PODS CEGP("forms")
				  "spec:\n  selectors:\n"
				  "  - podSelector:\n"
				  "    nodeSelector: {matchLabels: {kubernetes.io/hostname: node-2}}\n"
				  "  - namespaceSelector:\n"
				  "      matchExpressions:\n"
				  "      - {key: kubernetes.io/metadata.name, operator: In, values: [x]}\n"
				  "    podSelector: {matchLabels: {\"k8s:app\": db}}\n"
				  "  destinationCIDRs: [10.0.0.0/8]\n"
				  "  egressGateway: {nodeSelector: {matchLabels:"
				  " {kubernetes.io/hostname: node-1}}, egressIP: 192.0.2.1}\n");

	(void)state;
	assert_entries(&s->model, "node-3",
		       "10.244.0.11 10.0.0.0/8 gw 192.0.2.1 egress 192.0.2.1\n"
		       "10.244.2.10 10.0.0.0/8 gw 192.0.2.1 egress 192.0.2.1\n");
	scenario_free(s);
}

/* the same (pod, CIDR) from two policies: the first by name wins, whatever the manifest
 * order; other CIDRs of the loser stay */
static void test_first_policy_by_name(void **state)
{
	struct scenario *s = load(CLUSTER PODS CEGP("zz-late")
				  "spec:\n  selectors: [{podSelector: {matchLabels: {app: db}}}]\n"
				  "  destinationCIDRs: [100.64.0.0/10, 100.64.0.0/16]\n"
				  "  egressGateway: {nodeSelector: {matchLabels: {egress: \"yes\"}},"
				  " egressIP: 192.0.2.50}\n"
				  "---\n" CEGP("aa-early")
				  "spec:\n  selectors: [{podSelector: {matchLabels: {app: db}}}]\n"
				  "  destinationCIDRs: [100.64.0.0/10]\n"
				  "  egressGateway: {nodeSelector: {matchLabels:"
				  " {kubernetes.io/hostname: node-1}}, egressIP: 192.0.2.60}\n");

	(void)state;
	assert_entries(&s->model, "node-3",
		       "10.244.0.11 100.64.0.0/10 gw 192.0.2.1 egress 192.0.2.60\n"
		       "10.244.0.11 100.64.0.0/16 gw 192.0.2.3 egress 192.0.2.50\n");
	scenario_free(s);
}

static uint32_t fnv_pod(const char *ns_name)
{
	uint32_t h = 2166136261u;

	for (; *ns_name; ns_name++)
		h = (h ^ (unsigned char)*ns_name) * 16777619u;
	return h;
}

/* egressGateways[]: each pod gets one of the gateways that have a node, by
 * FNV-1a("ns/name") modulo their count */
static void test_egress_gateways_spread(void **state)
{
	static const char *const pods[] = { "x/a", "x/b", "y/c" };
	static const char *const gws[] = { "node-2", "node-3" };
	struct scenario *s = load(CLUSTER PODS CEGP("spread")
				  "spec:\n  selectors: [{podSelector: {}}]\n"
				  "  destinationCIDRs: [192.168.0.0/16]\n"
				  "  egressGateways:\n"
				  "  - {nodeSelector: {matchLabels: {absent: label}}}\n"
				  "  - {nodeSelector: {matchLabels: {kubernetes.io/hostname: node-2}}}\n"
				  "  - {nodeSelector: {matchLabels: {kubernetes.io/hostname: node-3}},"
				  " egressIP: 192.0.2.100}\n");
	const struct cluster_model *m = &s->model;
	const struct m_egress_policy *pol = cluster_find_egress_policy(m, "spread");
	const struct m_egress_gateway *gw;
	bool seen[2] = { false, false };
	size_t i, k;

	(void)state;
	assert_true(pol->multi);
	assert_int_equal(pol->ngateways, 3);
	for (i = 0; i < 3; i++) {
		const struct m_node *nd =
			egress_gateway_of(m, pol, cluster_find_pod(m, pods[i]), &gw);

		k = fnv_pod(pods[i]) % 2;
		assert_non_null(nd);
		assert_string_equal(nd->name, gws[k]);
		assert_ptr_equal(gw, &pol->gateways[k + 1]);
		seen[k] = true;
	}
	/* the three pods happen to use both gateways */
	assert_true(seen[0] && seen[1]);
	scenario_free(s);
}

/* ---- Node documents, docs and parts -------------------------------------------------------- */

#define NODE_DOC(name, labels) "apiVersion: v1\nkind: Node\nmetadata:\n  name: " name "\n  labels: " labels "\n"

static size_t split_docs(char *text, char **docs, size_t max)
{
	size_t n = 0;
	char *p = text, *sep;

	while (p && *p && n < max) {
		docs[n++] = p;
		sep = strstr(p, "\n---\n");
		if (!sep)
			break;
		sep[1] = '\0';
		p = sep + 5;
	}
	return n;
}

/* The model of text through cluster_model_from_docs (one document each) and through model
 * parts (the Cluster as base): the same entries on every node; returns the docs model. */
static struct cluster_model *docs_and_parts(const char *text, const char *node,
					    const char *want)
{
	struct model_doc md[32] = { { 0 } };
	struct model_part *parts[32];
	struct cluster_model *m = NULL, *base = NULL, *pm = NULL;
	struct diag d = { { 0 } };
	char *copy = strdup(text), *docs[32], name[32][16];
	size_t n, i;

	n = split_docs(copy, docs, 32);
	for (i = 0; i < n; i++) {
		snprintf(name[i], sizeof(name[i]), "doc%zu", i);
		md[i] = (struct model_doc){ .name = name[i], .text = docs[i], .len = strlen(docs[i]) };
	}
	if (cluster_model_from_docs("docs", md, n, &m, NULL, &d))
		fail_msg("from_docs: %s", d.msg);
	assert_int_equal(cluster_model_from_docs("base", md, 1, &base, NULL, &d), 0);
	for (i = 1; i < n; i++)
		if (model_part_parse(base, name[i], docs[i], strlen(docs[i]), &parts[i], &d))
			fail_msg("part %zu: %s", i, d.msg);
	assert_int_equal(cluster_model_copy_cluster(base, &pm), 0);
	if (cluster_model_from_parts(pm, parts + 1, n - 1, &d))
		fail_msg("from_parts: %s", d.msg);
	assert_int_equal(pm->negress_policies, m->negress_policies);
	assert_entries(m, node, want);
	assert_entries(pm, node, want);
	for (i = 0; i < m->cluster.nnodes; i++) {
		char *a = entries_text(m, m->cluster.nodes[i].name);
		char *b = entries_text(pm, m->cluster.nodes[i].name);

		assert_string_equal(a, b);
		free(a);
		free(b);
	}
	for (i = 1; i < n; i++)
		model_part_unref(parts[i]);
	cluster_model_free(pm);
	cluster_model_free(base);
	free(copy);
	return m;
}

static void test_node_document_moves_gateway(void **state)
{
	struct cluster_model *m;

	(void)state;
	/* before: node-2 is the first egress=yes node by name */
	m = docs_and_parts(CLUSTER PODS POL_WEB_X, "node-1",
			   "10.244.0.10 203.0.113.0/24 gw 192.0.2.3 egress 0.0.0.0\n"
			   "10.244.0.10 203.0.113.128/25 gw excluded egress 0.0.0.0\n");
	cluster_model_free(m);
	/* `kubectl label node node-1 egress=yes`: node-1 comes first by name */
	m = docs_and_parts(CLUSTER PODS POL_WEB_X NODE_DOC("node-1", "{egress: \"yes\"}"),
			   "node-1",
			   "10.244.0.10 203.0.113.0/24 gw 192.0.2.1 egress 0.0.0.0 resolve eth1\n"
			   "10.244.0.10 203.0.113.128/25 gw excluded egress 0.0.0.0\n");
	assert_string_equal(labelset_get(&cluster_find_node(m, "node-1")->labels, "egress"), "yes");
	cluster_model_free(m);
	/* node-2's labels replaced (egress removed): node-3 is the gateway */
	m = docs_and_parts(CLUSTER PODS POL_WEB_X NODE_DOC("node-2", "{zone: b}"), "node-3",
			   "10.244.0.10 203.0.113.0/24 gw 192.0.2.2 egress 0.0.0.0 resolve eth1\n"
			   "10.244.0.10 203.0.113.128/25 gw excluded egress 0.0.0.0\n");
	assert_int_equal(cluster_find_node(m, "node-2")->labels.n, 1);
	cluster_model_free(m);
	/* the policy deleted: no entry, no flag */
	m = docs_and_parts(CLUSTER PODS NODE_DOC("node-2", "{zone: b}"), "node-1", "");
	cluster_model_free(m);
}

static void test_parts_errors(void **state)
{
	static const char cl[] = CLUSTER;
	static const char node9[] = NODE_DOC("node-9", "{}");
	static const char pol[] = CEGP("p") "spec:\n  selectors: [{podSelector: {}}]\n"
					    "  destinationCIDRs: [0.0.0.0/0]\n"
					    "  egressGateway: {nodeSelector: {}}\n";
	struct model_doc md = { .name = "cluster", .text = cl, .len = sizeof(cl) - 1 };
	struct model_part *parts[2];
	struct cluster_model *base = NULL, *m = NULL;
	struct diag d = { { 0 } };

	(void)state;
	assert_int_equal(cluster_model_from_docs("base", &md, 1, &base, NULL, &d), 0);
	/* a Node naming no Cluster node: the part is rejected with its name */
	assert_int_equal(model_part_parse(base, "obj/Node/node-9", node9, sizeof(node9) - 1,
					  &parts[0], &d),
			 -EINVAL);
	assert_string_equal(d.msg, "obj/Node/node-9:4: metadata.name: no node named \"node-9\" "
				   "in the Cluster");
	/* the same policy twice (two store keys): -EAGAIN, from_docs names it */
	assert_int_equal(model_part_parse(base, "a", pol, sizeof(pol) - 1, &parts[0], &d), 0);
	assert_int_equal(model_part_parse(base, "b", pol, sizeof(pol) - 1, &parts[1], &d), 0);
	assert_int_equal(cluster_model_copy_cluster(base, &m), 0);
	assert_int_equal(cluster_model_from_parts(m, parts, 2, &d), -EAGAIN);
	cluster_model_free(m);
	m = NULL;
	{
		struct model_doc three[3] = {
			md,
			{ .name = "a", .text = pol, .len = sizeof(pol) - 1 },
			{ .name = "b", .text = pol, .len = sizeof(pol) - 1 },
		};
		size_t bad = 0;

		assert_int_equal(cluster_model_from_docs("store", three, 3, &m, &bad, &d), -EINVAL);
		assert_null(m);
		assert_int_equal(bad, 2);
		assert_string_equal(d.msg, "b:1: metadata.name: duplicate CiliumEgressGatewayPolicy "
					   "\"p\" (first at a:1)");
	}
	model_part_unref(parts[0]);
	model_part_unref(parts[1]);
	cluster_model_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_apply_check),
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_route_of),
		cmocka_unit_test(test_no_gateway_and_default_device),
		cmocka_unit_test(test_selector_forms),
		cmocka_unit_test(test_first_policy_by_name),
		cmocka_unit_test(test_egress_gateways_spread),
		cmocka_unit_test(test_node_document_moves_gateway),
		cmocka_unit_test(test_parts_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
