/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The XDP keys of the Cluster's cilium-config (datapath/model/lb_config.c, docs/XDP.md):
 * bpf-lb-acceleration (disabled | native; Cilium's best-effort and generic rejected) and
 * prefilter-deny-cidrs (comma/space separated canonical IPv4 CIDRs), the node config flags
 * they set (node_state.c: NODE_CFG_F_XDP_ACCEL needs kube-proxy replacement,
 * NODE_CFG_F_PREFILTER any entry) and the prefilter's LPM keys; bad values fail naming the
 * file, line, key and entry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "model/model.h"

#define HEAD "apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: t}\nspec:\n" \
	     "  nodes: [{name: node-1}]\n"

static struct scenario *load(const char *yaml)
{
	struct scenario *s = NULL;
	struct diag d = { { 0 } };

	if (scenario_load_buffer("inline.yaml", yaml, strlen(yaml), &s, &d)) {
		print_error("scenario_load_buffer: %s\n", d.msg);
		fail();
	}
	return s;
}

static void compute(const struct scenario *s, struct node_state *ns)
{
	struct diag d = { { 0 } };

	if (node_state_compute(&s->model, "node-1", ns, &d)) {
		print_error("node_state_compute: %s\n", d.msg);
		fail();
	}
}

static void expect_error(const char *yaml, const char *want)
{
	struct scenario *s = NULL;
	struct diag d = { { 0 } };

	assert_int_not_equal(scenario_load_buffer("inline.yaml", yaml, strlen(yaml), &s, &d), 0);
	assert_null(s);
	if (strcmp(d.msg, want)) {
		print_error("want: %s\ngot:  %s\n", want, d.msg);
		fail();
	}
}

static void test_defaults_off(void **state)
{
	struct scenario *s = load(HEAD);
	struct node_state ns;

	assert_false(cluster_lb_config(&s->model)->xdp_acceleration);
	assert_int_equal(cluster_lb_config(&s->model)->nprefilter, 0);
	compute(s, &ns);
	assert_int_equal(ns.cfg.flags & (NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_PREFILTER), 0);
	assert_int_equal(ns.nprefilter, 0);
	node_state_free(&ns);
	scenario_free(s);
}

static void test_native_and_prefilter(void **state)
{
	struct scenario *s = load(HEAD "  config: {bpf-lb-acceleration: native, "
				       "prefilter-deny-cidrs: \" 198.51.100.0/24,203.0.113.7/32  "
				       "10.0.0.0/8\"}\n");
	struct node_state ns;

	compute(s, &ns);
	assert_int_equal(ns.cfg.flags & (NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_PREFILTER),
			 NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_PREFILTER);
	assert_int_equal(ns.nprefilter, 3);
	assert_int_equal(ns.prefilter[0].prefixlen, PREFILTER_PREFIX_BASE + 24);
	assert_int_equal(ns.prefilter[0].family, CILIATE_AF_INET);
	assert_int_equal(ns.prefilter[0].addr.v4, inet_addr("198.51.100.0"));
	assert_int_equal(ns.prefilter[1].prefixlen, PREFILTER_PREFIX_BASE + 32);
	assert_int_equal(ns.prefilter[1].addr.v4, inet_addr("203.0.113.7"));
	assert_int_equal(ns.prefilter[2].prefixlen, PREFILTER_PREFIX_BASE + 8);
	assert_int_equal(ns.prefilter[2].addr.v4, inet_addr("10.0.0.0"));
	node_state_free(&ns);
	scenario_free(s);
}

/* acceleration serves kube-proxy replacement's frontends; the prefilter stands alone */
static void test_accel_needs_kpr(void **state)
{
	struct scenario *s = load(HEAD "  config: {bpf-lb-acceleration: native, "
				       "kube-proxy-replacement: \"false\", "
				       "prefilter-deny-cidrs: 198.18.0.0/15}\n");
	struct node_state ns;

	compute(s, &ns);
	assert_int_equal(ns.cfg.flags & (NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_PREFILTER),
			 NODE_CFG_F_PREFILTER);
	node_state_free(&ns);
	scenario_free(s);
}

static void test_errors(void **state)
{
	expect_error(HEAD "  config: {bpf-lb-acceleration: generic}\n",
		     "inline.yaml:6: spec.config.bpf-lb-acceleration: bad value \"generic\" (want "
		     "disabled | native)");
	expect_error(HEAD "  config: {bpf-lb-acceleration: best-effort}\n",
		     "inline.yaml:6: spec.config.bpf-lb-acceleration: bad value \"best-effort\" "
		     "(want disabled | native)");
	expect_error(HEAD "  config: {prefilter-deny-cidrs: \"10.0.0.0/8, 10.0.0.1/8\"}\n",
		     "inline.yaml:6: spec.config.prefilter-deny-cidrs: entry 2: bad CIDR "
		     "\"10.0.0.1/8\" (want A.B.C.D/N with no host bits; IPv6 prefixes are not "
		     "supported yet)");
	expect_error(HEAD "  config: {prefilter-deny-cidrs: \"2001:db8::/32\"}\n",
		     "inline.yaml:6: spec.config.prefilter-deny-cidrs: entry 1: bad CIDR "
		     "\"2001:db8::/32\" (want A.B.C.D/N with no host bits; IPv6 prefixes are not "
		     "supported yet)");
	expect_error(HEAD "  config: {prefilter-deny-cidrs: [10.0.0.0/8]}\n",
		     "inline.yaml:6: spec.config.prefilter-deny-cidrs: config values must be "
		     "scalars");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_off),
		cmocka_unit_test(test_native_and_prefilter),
		cmocka_unit_test(test_accel_needs_kpr),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests_name("xdp_config", tests, NULL, NULL);
}
