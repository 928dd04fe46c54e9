/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scenario parsing: the shared examples load; strict kinds reject bad input with
 * "FILE:LINE: FIELD.PATH: reason"; Kubernetes kinds are lenient; Cluster addressing, IPAM,
 * identities and Test/Replay fields come out as documented. Run from the repository root.
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
#include <string.h>
#include <unistd.h>

#include "model/ipaddr.h"
#include "model/labels.h"
#include "model/model.h"
#include "shared_files.h"

#define FIX "tests/unit/fixtures/model/"
#define EX "../shared/examples/"

/* The shared examples live beside the repository: skipped loudly where they are absent,
 * failed under CI=true (shared_files.h). */
#define NEED_EXAMPLE(path) NEED_SHARED(path)

static struct scenario *load_ok(const char *path)
{
	struct scenario *s = NULL;
	struct diag d = { { 0 } };

	if (scenario_load(path, &s, &d)) {
		print_error("scenario_load(%s) failed: %s\n", path, d.msg);
		fail();
	}
	return s;
}

static struct scenario *load_buf_ok(const char *yaml)
{
	struct scenario *s = NULL;
	struct diag d = { { 0 } };

	if (scenario_load_buffer("inline.yaml", yaml, strlen(yaml), &s, &d)) {
		print_error("scenario_load_buffer failed: %s\n", d.msg);
		fail();
	}
	return s;
}

/* The message must start with want (so long "allowed: ..." tails need not be spelt out). */
static void assert_msg(const char *got, const char *want)
{
	if (strncmp(got, want, strlen(want))) {
		print_error("error message mismatch\n  want: %s...\n  got:  %s\n", want, got);
		fail();
	}
}

static void expect_file_error(const char *path, const char *want)
{
	struct scenario *s = (struct scenario *)0x1;
	struct diag d = { { 0 } };

	assert_int_equal(scenario_load(path, &s, &d), -EINVAL);
	assert_null(s);
	assert_msg(d.msg, want);
}

static void expect_buf_error(const char *yaml, const char *want)
{
	struct scenario *s = (struct scenario *)0x1;
	struct diag d = { { 0 } };

	assert_true(scenario_load_buffer("inline.yaml", yaml, strlen(yaml), &s, &d) < 0);
	assert_null(s);
	assert_msg(d.msg, want);
}

static void assert_ip(uint32_t ip, const char *want)
{
	char buf[IP4_STR_MAX];

	assert_string_equal(ip4_format(ip, buf), want);
}

#define CLUSTER1                                                                           \
	"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: c}\n"           \
	"spec:\n  nodes:\n  - {name: node-1}\n  - {name: node-2}\n"

/* ---- the shared examples --------------------------------------------------------------- */

static void test_example_policy(void **state)
{
	struct scenario *s;
	const struct m_step *st;
	const struct m_matrix *m;
	const struct m_probe *pr;

	NEED_EXAMPLE(EX "policy.yaml");
	s = load_ok(EX "policy.yaml");

	assert_true(s->model.has_cluster);
	assert_string_equal(s->model.cluster.name, "example-policy");
	assert_int_equal(s->model.cluster.nnodes, 2);
	assert_int_equal(s->model.cluster.routing, ROUTING_TUNNEL);
	assert_int_equal(s->model.cluster.next_hosts, 1);
	assert_string_equal(s->model.cluster.ext_hosts[0].name, "client-1");
	assert_ip(s->model.cluster.ext_hosts[0].ip, "203.0.113.10");
	assert_int_equal(s->model.cluster.ext_hosts[0].nports, 1);
	assert_int_equal(s->model.cluster.ext_hosts[0].ports[0], 80);
	assert_int_equal(s->model.npods, 3);
	assert_int_equal(s->model.nnamespaces, 2);
	assert_int_equal(s->model.npolicies, 0); /* the policy is applied by a step */
	assert_int_equal(s->ntests, 1);
	assert_string_equal(s->tests[0].name, "db-isolation");
	assert_int_equal(s->tests[0].nsteps, 3);

	st = &s->tests[0].steps[0];
	assert_string_equal(st->name, "open");
	assert_int_equal(st->nprobes, 2);
	pr = &st->probes[0];
	assert_string_equal(pr->from, "dev/tool");
	assert_string_equal(pr->to, "prod/db");
	assert_int_equal(pr->port, 5432);
	assert_int_equal(pr->proto, IPPROTO_TCP);
	assert_true(pr->expect_allow);

	st = &s->tests[0].steps[1];
	assert_string_equal(st->name, "isolate-db");
	assert_non_null(st->manifests_yaml);
	assert_non_null(strstr(st->manifests_yaml, "name: db-from-web"));
	assert_false(st->probes[0].expect_allow);
	assert_string_equal(st->probes[0].drop_reason, "POLICY_DENIED");
	/* the table is a quoted scalar that YAML folds onto one line */
	assert_int_equal(st->nmatrices, 1);
	m = &st->matrices[0];
	assert_int_equal(m->port, 80);
	assert_int_equal(m->nrows, 2);
	assert_int_equal(m->ncols, 2);
	assert_string_equal(m->cols[0], "prod/web");
	assert_string_equal(m->cols[1], "dev/tool");
	assert_string_equal(m->rows[1], "dev/tool");
	assert_memory_equal(m->cells, "....", 4);

	st = &s->tests[0].steps[2];
	assert_int_equal(st->ndeletes, 1);
	assert_string_equal(st->deletes[0].kind, "NetworkPolicy");
	assert_string_equal(st->deletes[0].ns, "prod");
	assert_string_equal(st->deletes[0].name, "db-from-web");
	scenario_free(s);
}

static void test_example_services(void **state)
{
	struct scenario *s;
	const struct m_probe *pr;

	NEED_EXAMPLE(EX "services.yaml");
	s = load_ok(EX "services.yaml");

	assert_int_equal(s->model.cluster.routing, ROUTING_NATIVE);
	assert_string_equal(cluster_config(&s->model, "bpf-lb-mode"), "dsr");
	assert_string_equal(cluster_config(&s->model, "bpf-lb-algorithm"), "maglev");
	assert_string_equal(cluster_config(&s->model, "kube-proxy-replacement"), "true");
	assert_null(cluster_config(&s->model, "allow-localhost"));
	assert_int_equal(s->model.npods, 3); /* the Service document is accepted and ignored */
	assert_int_equal(s->tests[0].steps[0].nprobes, 2);
	pr = &s->tests[0].steps[0].probes[0];
	assert_string_equal(pr->to, "svc/shop/api");
	assert_int_equal(pr->nbackend_in, 2);
	assert_string_equal(pr->backend_in[1], "shop/api-2");
	assert_int_equal(pr->same_backend, 10);
	pr = &s->tests[0].steps[0].probes[1];
	assert_string_equal(pr->from, "ext/client-1");
	assert_string_equal(pr->to, "node/node-1");
	assert_string_equal(pr->client_ip_seen, "preserved");
	/* two api pods with the same labels share one identity */
	assert_int_equal(cluster_find_pod(&s->model, "shop/api-1")->identity,
			 cluster_find_pod(&s->model, "shop/api-2")->identity);
	assert_int_not_equal(cluster_find_pod(&s->model, "shop/api-1")->identity,
			     cluster_find_pod(&s->model, "shop/frontend")->identity);
	scenario_free(s);
}

static void test_example_replay(void **state)
{
	struct scenario *s;
	const struct m_replay *r;

	NEED_EXAMPLE(EX "replay.yaml");
	s = load_ok(EX "replay.yaml");

	assert_int_equal(s->model.cluster.nnodes, 1);
	assert_ip(cluster_find_pod(&s->model, "prod/web")->ip, "10.244.0.21");
	assert_true(cluster_find_pod(&s->model, "prod/web")->ip_pinned);
	assert_ip(cluster_find_pod(&s->model, "prod/db")->ip, "10.244.0.22");
	assert_int_equal(s->model.npolicies, 1);
	assert_int_equal(s->nreplays, 1);
	r = &s->replays[0];
	assert_string_equal(r->name, "web-to-db-handshake");
	assert_string_equal(r->node, "node-1");
	assert_string_equal(r->hook, "from-container");
	assert_string_equal(r->endpoint, "prod/web");
	assert_string_equal(r->pcap, "../shared/examples/web-to-db.pcap");
	assert_int_equal(r->nexpect_verdicts, 4);
	assert_string_equal(r->expect_verdicts[0], "redirect");
	assert_string_equal(r->expect_verdicts[3], "drop:POLICY_DENIED");
	assert_null(r->expect_output);
	scenario_free(s);
}

/* ---- strict errors: file, line, field path, reason ------------------------------------- */

static void test_error_unknown_cluster_field(void **state)
{
	expect_file_error(FIX "bad_cluster_unknown_field.yaml",
			  FIX "bad_cluster_unknown_field.yaml:8: spec.routng: unknown field "
			      "(allowed: nodes, routing,");
}

static void test_error_duplicate_node(void **state)
{
	expect_file_error(FIX "bad_duplicate_node.yaml",
			  FIX "bad_duplicate_node.yaml:7: spec.nodes[1].name: duplicate node "
			      "\"node-1\"");
}

static void test_error_bad_cidr(void **state)
{
	expect_file_error(FIX "bad_cidr.yaml",
			  FIX "bad_cidr.yaml:7: spec.podCIDR: bad CIDR \"10.244.0.0/33\"");
	expect_buf_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
			 "  nodes: [{name: n}]\n  underlayCIDR: 192.0.2.1/24\n",
			 "inline.yaml:5: spec.underlayCIDR: bad CIDR \"192.0.2.1/24\" (want "
			 "A.B.C.D/N with no host bits)");
	expect_buf_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
			 "  nodes: [{name: n, podCIDR: 10.9.0.0/24}]\n",
			 "inline.yaml:4: spec.nodes[0].podCIDR: 10.9.0.0/24 is not inside the "
			 "cluster podCIDR 10.244.0.0/16");
}

static void test_error_bad_enum(void **state)
{
	expect_buf_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
			 "  nodes: [{name: n}]\n  routing: vxlan\n",
			 "inline.yaml:5: spec.routing: unknown value \"vxlan\" (want tunnel | "
			 "native)");
	expect_buf_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
			 "  nodes: [{name: n}]\n  encryption: tls\n",
			 "inline.yaml:5: spec.encryption: unknown value \"tls\" (want none | "
			 "wireguard | ipsec)");
	expect_buf_error("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
			 "  nodes:\n  - {name: n, zone: a}\n",
			 "inline.yaml:5: spec.nodes[0].zone: unknown field (allowed: name, labels, "
			 "podCIDR, addresses)");
}

static void test_error_pod_unknown_node(void **state)
{
	expect_file_error(FIX "bad_pod_node.yaml",
			  FIX "bad_pod_node.yaml:12: spec.nodeName: no node named \"node-9\" in the "
			      "Cluster");
}

static void test_error_pod_ip_outside_node(void **state)
{
	expect_file_error(FIX "bad_pod_ip.yaml",
			  FIX "bad_pod_ip.yaml:16: status.podIP: 10.244.1.20 is outside node "
			      "\"node-1\"'s pod range 10.244.0.0/24");
	expect_buf_error(CLUSTER1 "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"
				  "spec: {nodeName: node-1}\nstatus: {podIP: 10.244.0.10}\n"
				  "---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n"
				  "spec: {nodeName: node-1}\nstatus: {podIP: 10.244.0.10}\n",
			 "inline.yaml:19: status.podIP: 10.244.0.10 is already pod \"default/a\"'s "
			 "address");
}

static void test_error_matrix_shape(void **state)
{
	expect_file_error(FIX "bad_matrix_shape.yaml",
			  FIX "bad_matrix_shape.yaml:20: spec.steps[0].matrix.table: row \"x/b\" has "
			      "2 cells, expected 3 (one per destination)");
	expect_buf_error(CLUSTER1 "---\napiVersion: sim.ciliate.dev/v1\nkind: Test\n"
				  "metadata: {name: t}\nspec:\n  steps:\n  - matrix:\n"
				  "      port: 80\n      table: |\n        - x/a\n        x/a  o\n",
			 "inline.yaml:18: spec.steps[0].matrix.table: row \"x/a\": cell \"o\" must "
			 "be '.' (allow) or 'X' (deny)");
	expect_buf_error(CLUSTER1 "---\napiVersion: sim.ciliate.dev/v1\nkind: Test\n"
				  "metadata: {name: t}\nspec:\n  steps:\n  - matrix:\n"
				  "      port: 80\n      table: |\n        src x/a\n        x/a  .\n",
			 "inline.yaml:17: spec.steps[0].matrix.table: the first row must start "
			 "with \"-\"");
	expect_buf_error(CLUSTER1 "---\napiVersion: sim.ciliate.dev/v1\nkind: Test\n"
				  "metadata: {name: t}\nspec:\n  steps:\n  - matrix:\n"
				  "      table: '- x/a x/a .'\n",
			 "inline.yaml:15: spec.steps[0].matrix.port: required field missing");
}

static void test_error_documents(void **state)
{
	expect_buf_error("kind: Pod\nmetadata: {name: a}\n",
			 "inline.yaml:1: apiVersion: required field missing");
	expect_buf_error("apiVersion: v1\nmetadata: {name: a}\n",
			 "inline.yaml:1: kind: required field missing");
	expect_buf_error(CLUSTER1 "---\napiVersion: sim.ciliate.dev/v1\nkind: Topology\n",
			 "inline.yaml:10: kind: unknown sim.ciliate.dev/v1 kind \"Topology\" "
			 "(Cluster, Test or Replay)");
	expect_buf_error("apiVersion: sim.ciliate.dev/v2\nkind: Cluster\n",
			 "inline.yaml:1: apiVersion: unsupported version \"sim.ciliate.dev/v2\"");
	expect_buf_error("apiVersion: v1\nkind: NetworkPolicy\nmetadata: {name: a}\n",
			 "inline.yaml:1: apiVersion: kind NetworkPolicy needs apiVersion "
			 "networking.k8s.io/v1, not \"v1\"");
	expect_buf_error("- just\n- a list\n",
			 "inline.yaml:1: a document must be a mapping with apiVersion and kind");
	expect_buf_error(CLUSTER1 "---\n" CLUSTER1,
			 "inline.yaml:9: kind: only one Cluster document is allowed (first at "
			 "line 1)");
	expect_buf_error("apiVersion: v1\nkind: Pod\nmetadata: {name: a\n",
			 "inline.yaml:4: YAML syntax error:");
	expect_buf_error("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {nodeName: n}\n",
			 "inline.yaml:4: spec.nodeName: pods need a Cluster document");
}

static void test_error_test_fields(void **state)
{
	static const char head[] = CLUSTER1 "---\napiVersion: sim.ciliate.dev/v1\nkind: Test\n"
					    "metadata: {name: t}\nspec:\n  steps:\n";
	char buf[2048];

	snprintf(buf, sizeof(buf), "%s  - probes:\n    - {from: x/a, to: x/b, port: 80, "
		 "expect: allow, timeout: 3}\n", head);
	expect_buf_error(buf, "inline.yaml:15: spec.steps[0].probes[0].timeout: unknown field");
	snprintf(buf, sizeof(buf), "%s  - probes:\n    - {from: x/a, to: x/b, port: 80, "
		 "expect: maybe}\n", head);
	expect_buf_error(buf, "inline.yaml:15: spec.steps[0].probes[0].expect: unknown value "
			      "\"maybe\" (allow | deny)");
	snprintf(buf, sizeof(buf), "%s  - probes:\n    - {from: x/a, to: node/node-7, port: 80, "
		 "expect: allow}\n", head);
	expect_buf_error(buf, "inline.yaml:15: spec.steps[0].probes[0].to: \"node/node-7\": no "
			      "node named \"node-7\" in the Cluster");
	snprintf(buf, sizeof(buf), "%s  - probes:\n    - {from: x/a, to: x/b, port: 80, "
		 "expect: deny, dropReason: NOPE}\n", head);
	expect_buf_error(buf, "inline.yaml:15: spec.steps[0].probes[0].dropReason: unknown drop "
			      "reason \"NOPE\"");
	snprintf(buf, sizeof(buf), "%s  - name: s\n    color: red\n", head);
	expect_buf_error(buf, "inline.yaml:15: spec.steps[0].color: unknown field");
	/* inline manifests are checked where they stand */
	snprintf(buf, sizeof(buf), "%s  - manifests:\n    - apiVersion: v1\n      kind: Pod\n"
		 "      metadata: {name: p}\n      spec: {nodeName: nope}\n", head);
	expect_buf_error(buf, "inline.yaml:18: spec.steps[0].manifests[0].spec.nodeName: no node "
			      "named \"nope\" in the Cluster");
}

static void test_error_replay_fields(void **state)
{
	static const char head[] = CLUSTER1 "---\napiVersion: v1\nkind: Pod\n"
					    "metadata: {name: a, namespace: x}\n"
					    "spec: {nodeName: node-2}\n---\n"
					    "apiVersion: sim.ciliate.dev/v1\nkind: Replay\n"
					    "metadata: {name: r}\nspec:\n  node: node-1\n";
	char buf[2048];

	snprintf(buf, sizeof(buf), "%s  hook: tc\n  pcap: a.pcap\n", head);
	expect_buf_error(buf, "inline.yaml:19: spec.hook: unknown hook \"tc\"");
	snprintf(buf, sizeof(buf), "%s  hook: from-container\n  pcap: a.pcap\n", head);
	expect_buf_error(buf, "inline.yaml:18: spec.endpoint: required for hook from-container");
	snprintf(buf, sizeof(buf), "%s  hook: from-container\n  endpoint: x/a\n  pcap: a.pcap\n",
		 head);
	expect_buf_error(buf, "inline.yaml:20: spec.endpoint: pod \"x/a\" runs on node "
			      "\"node-2\", not \"node-1\"");
	snprintf(buf, sizeof(buf), "%s  hook: xdp\n  pcap: a.pcap\n  expect:\n"
		 "    verdicts: [ok, drop]\n", head);
	expect_buf_error(buf, "inline.yaml:22: spec.expect.verdicts[1]: unknown verdict \"drop\"");
	/* a hook list (one hook per packet): every name known, an endpoint if a pod hook is in */
	snprintf(buf, sizeof(buf), "%s  hook: to-netdev,tc\n  pcap: a.pcap\n", head);
	expect_buf_error(buf, "inline.yaml:19: spec.hook: unknown hook \"tc\"");
	snprintf(buf, sizeof(buf), "%s  hook: to-netdev,\n  pcap: a.pcap\n", head);
	expect_buf_error(buf, "inline.yaml:19: spec.hook: unknown hook \"\"");
	snprintf(buf, sizeof(buf), "%s  hook: from-netdev,to-container\n  pcap: a.pcap\n", head);
	expect_buf_error(buf, "inline.yaml:18: spec.endpoint: required for hook "
			      "from-netdev,to-container");
	snprintf(buf, sizeof(buf), "%s  hook: to-netdev,from-netdev\n  pcap: a.pcap\n", head);
	scenario_free(load_buf_ok(buf));
}

/* ---- Cluster addressing, IPAM, namespaces, identities ---------------------------------- */

static void test_cluster_defaults(void **state)
{
	struct scenario *s = load_buf_ok("apiVersion: sim.ciliate.dev/v1\nkind: Cluster\n"
					 "spec:\n  nodes: [{name: a}, {name: b}, {name: c}]\n");
	char buf[CIDR4_STR_MAX];

	assert_int_equal(s->model.cluster.routing, ROUTING_TUNNEL);
	assert_int_equal(s->model.cluster.encryption, ENCRYPTION_NONE);
	assert_string_equal(
		cidr4_format(s->model.cluster.pod_cidr, s->model.cluster.pod_cidr_len, buf),
		"10.244.0.0/16");
	assert_string_equal(
		cidr4_format(s->model.cluster.service_cidr, s->model.cluster.service_cidr_len, buf),
		"10.96.0.0/12");
	assert_string_equal(cidr4_format(s->model.cluster.underlay_cidr,
					 s->model.cluster.underlay_cidr_len, buf),
			    "192.0.2.0/24");
	assert_ip(s->model.cluster.nodes[0].ip, "192.0.2.1");
	assert_ip(s->model.cluster.nodes[2].ip, "192.0.2.3");
	assert_string_equal(cidr4_format(s->model.cluster.nodes[2].pod_cidr,
					 s->model.cluster.nodes[2].pod_cidr_len, buf),
			    "10.244.2.0/24");
	scenario_free(s);
}

static void test_cluster_custom(void **state)
{
	struct scenario *s = load_buf_ok(
		"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nspec:\n"
		"  nodes:\n  - {name: a, labels: {zone: z1}}\n  - {name: b, podCIDR: 10.1.7.0/24}\n"
		"  - {name: c}\n"
		"  routing: native\n  encryption: wireguard\n  podCIDR: 10.1.0.0/16\n"
		"  underlayCIDR: 172.16.0.0/24\n  config: {allow-localhost: policy, n: 5}\n");
	char buf[CIDR4_STR_MAX];

	assert_int_equal(s->model.cluster.routing, ROUTING_NATIVE);
	assert_int_equal(s->model.cluster.encryption, ENCRYPTION_WIREGUARD);
	assert_string_equal(labelset_get(&s->model.cluster.nodes[0].labels, "zone"), "z1");
	assert_ip(s->model.cluster.nodes[1].ip, "172.16.0.2");
	assert_string_equal(cidr4_format(s->model.cluster.nodes[0].pod_cidr,
					 s->model.cluster.nodes[0].pod_cidr_len, buf),
			    "10.1.0.0/24");
	assert_string_equal(cidr4_format(s->model.cluster.nodes[1].pod_cidr,
					 s->model.cluster.nodes[1].pod_cidr_len, buf),
			    "10.1.7.0/24");
	/* the third node is still the third /24 */
	assert_string_equal(cidr4_format(s->model.cluster.nodes[2].pod_cidr,
					 s->model.cluster.nodes[2].pod_cidr_len, buf),
			    "10.1.2.0/24");
	assert_string_equal(cluster_config(&s->model, "allow-localhost"), "policy");
	assert_string_equal(cluster_config(&s->model, "n"), "5");
	scenario_free(s);
}

static void test_no_cluster(void **state)
{
	struct scenario *s = load_buf_ok("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
					 "metadata: {name: p, namespace: x}\nspec: {}\n---\n");

	assert_false(s->model.has_cluster);
	assert_int_equal(s->model.npolicies, 1);
	assert_non_null(cluster_find_namespace(&s->model, "x"));
	assert_true(cluster_find_namespace(&s->model, "x")->implicit);
	scenario_free(s);
}

static void test_ipam(void **state)
{
	struct scenario *s = load_ok(FIX "ipam.yaml");
	const struct m_pod *c;

	assert_int_equal(s->model.npods, 6); /* Service, ConfigMap and CNP are accepted, ignored */
	assert_ip(cluster_find_pod(&s->model, "x/a")->ip, "10.244.0.10");
	assert_ip(cluster_find_pod(&s->model, "x/pinned")->ip, "10.244.0.11");
	assert_ip(cluster_find_pod(&s->model, "x/b")->ip, "10.244.0.12"); /* skips the pinned .11 */
	assert_ip(cluster_find_pod(&s->model, "y/c")->ip, "10.244.1.10");
	assert_ip(cluster_find_pod(&s->model, "kube-system/host")->ip, "192.0.2.2");
	assert_true(cluster_find_pod(&s->model, "kube-system/host")->host_network);
	assert_int_equal(cluster_find_pod(&s->model, "kube-system/host")->identity, IDENTITY_HOST);
	assert_ip(cluster_find_pod(&s->model, "x/d")->ip, "10.244.100.10");

	c = cluster_find_pod(&s->model, "y/c");
	assert_int_equal(c->nports, 3);
	assert_string_equal(c->ports[0].name, "http");
	assert_int_equal(c->ports[0].port, 8080);
	assert_int_equal(c->ports[0].proto, IPPROTO_TCP);
	assert_string_equal(c->ports[1].name, "");
	assert_int_equal(c->ports[1].proto, IPPROTO_UDP);
	assert_int_equal(c->ports[2].proto, IPPROTO_SCTP);
	assert_null(cluster_find_pod(&s->model, "x/none"));
	scenario_free(s);
}

static void test_ipam_exhausted(void **state)
{
	char buf[8192];
	size_t off, i;

	off = (size_t)snprintf(buf, sizeof(buf), "apiVersion: sim.ciliate.dev/v1\nkind: Cluster\n"
			       "spec:\n  nodes: [{name: n, podCIDR: 10.244.0.0/28}]\n");
	for (i = 0; i < 6; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					"---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%zu}\n"
					"spec: {nodeName: n}\n", i);
	/* a /28 has .10 to .14 for pods: the sixth pod (line 31) gets nothing */
	expect_buf_error(buf, "inline.yaml:31: metadata.name: no free address left in node \"n\"'s "
			      "pod range 10.244.0.0/28 for pod \"default/p5\"");
}

static void test_namespaces_and_identities(void **state)
{
	struct scenario *s = load_ok(FIX "ipam.yaml");
	const struct m_namespace *x = cluster_find_namespace(&s->model, "x");
	const struct m_namespace *y = cluster_find_namespace(&s->model, "y");
	const struct m_identity *id;

	assert_non_null(x);
	assert_false(x->implicit);
	assert_string_equal(labelset_get(&x->labels, "kubernetes.io/metadata.name"), "x");
	assert_string_equal(labelset_get(&x->labels, "team"), "blue");
	assert_non_null(y);
	assert_true(y->implicit);
	assert_int_equal(y->labels.n, 1);
	assert_string_equal(labelset_get(&y->labels, "kubernetes.io/metadata.name"), "y");

	/* allocation order is first appearance; equal label sets share */
	assert_int_equal(cluster_find_pod(&s->model, "x/a")->identity, 256);
	assert_int_equal(cluster_find_pod(&s->model, "x/b")->identity, 256);
	assert_int_equal(cluster_find_pod(&s->model, "x/pinned")->identity, 257);
	assert_int_equal(cluster_find_pod(&s->model, "y/c")->identity, 258); /* other namespace */
	assert_int_equal(cluster_find_pod(&s->model, "x/d")->identity,
			 256); /* other node, same set */
	assert_int_equal(s->model.nidentities, 3);
	id = cluster_find_identity(&s->model, 256);
	assert_non_null(id);
	assert_int_equal(id->labels.n, 4);
	assert_string_equal(labelset_get(&id->labels, "k8s:app"), "echo");
	assert_string_equal(labelset_get(&id->labels, "k8s:io.kubernetes.pod.namespace"), "x");
	assert_string_equal(labelset_get(&id->labels, "k8s:io.cilium.k8s.namespace.labels.team"),
			    "blue");
	assert_string_equal(labelset_get(&id->labels, "k8s:io.cilium.k8s.namespace.labels."
						      "kubernetes.io/metadata.name"), "x");
	assert_null(cluster_find_identity(&s->model, 259));
	scenario_free(s);
}

static void test_lenient_kubernetes(void **state)
{
	struct scenario *s = load_buf_ok(
		CLUSTER1 "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n"
		"  annotations: {x: y}\n  uid: 123\nspec:\n  nodeName: node-2\n"
		"  restartPolicy: Always\n  containers:\n  - name: c\n    image: busybox\n"
		"    command: [sleep, inf]\n    ports: [{containerPort: 80, hostPort: 8080}]\n"
		"status: {phase: Running}\n---\n"
		"apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n"
		"metadata: {name: c}\nspec: {}\n---\n"
		"apiVersion: cilium.io/v2\nkind: CiliumEgressGatewayPolicy\nmetadata: {name: e}\n"
		"spec: {selectors: [{podSelector: {}}], destinationCIDRs: [0.0.0.0/0],\n"
		"  egressGateway: {nodeSelector: {}}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\n"
		"---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n"
		"  metadata: {name: b}\n  spec: {nodeName: node-1}\n");

	assert_int_equal(s->model.npods, 2);
	assert_string_equal(cluster_find_pod(&s->model, "default/a")->node, "node-2");
	assert_int_equal(cluster_find_pod(&s->model, "default/a")->ports[0].port, 80);
	assert_ip(cluster_find_pod(&s->model, "default/b")->ip, "10.244.0.10");
	scenario_free(s);
}

static void test_paths_resolved(void **state)
{
	struct scenario *s = load_ok(FIX "paths.yaml");
	const struct m_replay *r = &s->replays[0];

	assert_string_equal(s->tests[0].steps[0].name, "step-1");
	assert_string_equal(s->tests[0].steps[0].apply, FIX "policies/deny-all.yaml");
	assert_string_equal(s->tests[0].steps[1].apply, "/tmp/abs.yaml");
	assert_string_equal(r->pcap, FIX "../pcaps/in.pcap");
	assert_string_equal(r->expect_output, FIX "out/golden.pcap");
	assert_int_equal(r->nexpect_verdicts, 5);
	assert_string_equal(r->hook, "from-netdev");
	assert_string_equal(r->endpoint, "");
	scenario_free(s);
}

static void test_probe_fields(void **state)
{
	struct scenario *s = load_buf_ok(
		CLUSTER1 "  externalHosts: [{name: ext1, ip: 198.51.100.1, ports: [80, 443]}]\n"
		"---\napiVersion: sim.ciliate.dev/v1\nkind: Test\nmetadata: {name: t}\n"
		"spec:\n  steps:\n  - name: all\n    probes:\n"
		"    - from: ext/ext1\n      to: node/node-2\n      port: 30080\n"
		"      protocol: UDP\n      expect: allow\n      clientIPSeen: node\n"
		"      replyBypasses: node/node-1\n      encryptedOn: fabric\n"
		"      spread: {tolerance: 0.2}\n"
		"    - {from: x/a, to: ip/10.0.0.1, protocol: ICMP, expect: deny}\n"
		"    matrices:\n    - port: 53\n      protocol: UDP\n      table: |\n"
		"        -    x/a  svc/x/dns\n        x/a  .    X\n        y/b  X    .\n");
	const struct m_step *st = &s->tests[0].steps[0];
	const struct m_matrix *m = &st->matrices[0];

	assert_int_equal(st->nprobes, 2);
	assert_int_equal(st->probes[0].proto, IPPROTO_UDP);
	assert_string_equal(st->probes[0].reply_bypasses, "node/node-1");
	assert_string_equal(st->probes[0].encrypted_on, "fabric");
	assert_non_null(st->probes[0].spread);
	assert_non_null(strstr(st->probes[0].spread, "tolerance: 0.2"));
	assert_int_equal(st->probes[1].proto, IPPROTO_ICMP);
	assert_int_equal(st->probes[1].port, 0);
	assert_int_equal(m->proto, IPPROTO_UDP);
	assert_int_equal(m->nrows, 2);
	assert_int_equal(m->ncols, 2);
	assert_string_equal(m->cols[1], "svc/x/dns");
	assert_memory_equal(m->cells, ".XX.", 4);
	assert_int_equal(m->line, 28);
	scenario_free(s);
}

static void test_step_faults_streams(void **state)
{
	static const char head[] = CLUSTER1 "---\napiVersion: sim.ciliate.dev/v1\nkind: Test\n"
					    "metadata: {name: t}\nspec:\n  steps:\n";
	struct scenario *s;
	const struct m_step *st;
	char buf[2048];

	(void)state;
	snprintf(buf, sizeof(buf), "%s  - name: f\n    apply: p.yaml\n"
		 "    expectRejected: \"spec.ingress\"\n"
		 "    streams: [{from: x/a, to: x/b, port: 80}]\n"
		 "    faults:\n    - {action: restart-agent, node: node-1}\n"
		 "    - {action: link-down, node: node-2}\n    - {action: link-up, node: node-2}\n",
		 head);
	s = load_buf_ok(buf);
	st = &s->tests[0].steps[0];
	assert_string_equal(st->expect_rejected, "spec.ingress");
	assert_int_equal(st->nstreams, 1);
	assert_string_equal(st->streams[0].from, "x/a");
	assert_string_equal(st->streams[0].to, "x/b");
	assert_int_equal(st->streams[0].port, 80);
	assert_int_equal(st->nfaults, 3);
	assert_int_equal(st->faults[0].action, FAULT_RESTART_AGENT);
	assert_string_equal(st->faults[0].node, "node-1");
	assert_int_equal(st->faults[1].action, FAULT_LINK_DOWN);
	assert_int_equal(st->faults[2].action, FAULT_LINK_UP);
	scenario_free(s);

	snprintf(buf, sizeof(buf), "%s  - faults: [{action: reboot, node: node-1}]\n", head);
	expect_buf_error(buf, "inline.yaml:14: spec.steps[0].faults[0].action: unknown value \"reboot\"");
	snprintf(buf, sizeof(buf), "%s  - faults: [{action: link-down, node: node-9}]\n", head);
	expect_buf_error(buf, "inline.yaml:14: spec.steps[0].faults[0].node: \"node-9\" is not a node");
	snprintf(buf, sizeof(buf), "%s  - streams: [{from: x/a, to: x/b, port: 53, protocol: UDP}]\n",
		 head);
	expect_buf_error(buf, "inline.yaml:14: spec.steps[0].streams[0].protocol: a stream is a TCP connection");
	snprintf(buf, sizeof(buf), "%s  - expectRejected: \"x\"\n", head);
	expect_buf_error(buf, "inline.yaml:14: spec.steps[0].expectRejected: needs apply, manifests or delete");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_policy),
		cmocka_unit_test(test_example_services),
		cmocka_unit_test(test_example_replay),
		cmocka_unit_test(test_error_unknown_cluster_field),
		cmocka_unit_test(test_error_duplicate_node),
		cmocka_unit_test(test_error_bad_cidr),
		cmocka_unit_test(test_error_bad_enum),
		cmocka_unit_test(test_error_pod_unknown_node),
		cmocka_unit_test(test_error_pod_ip_outside_node),
		cmocka_unit_test(test_error_matrix_shape),
		cmocka_unit_test(test_error_documents),
		cmocka_unit_test(test_error_test_fields),
		cmocka_unit_test(test_error_replay_fields),
		cmocka_unit_test(test_cluster_defaults),
		cmocka_unit_test(test_cluster_custom),
		cmocka_unit_test(test_no_cluster),
		cmocka_unit_test(test_ipam),
		cmocka_unit_test(test_ipam_exhausted),
		cmocka_unit_test(test_namespaces_and_identities),
		cmocka_unit_test(test_lenient_kubernetes),
		cmocka_unit_test(test_paths_resolved),
		cmocka_unit_test(test_probe_fields),
		cmocka_unit_test(test_step_faults_streams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
