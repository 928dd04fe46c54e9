// SPDX-License-Identifier: Apache-2.0
/*
 * Flow filter tests (datapath/flow/filter.h): every key on hand-written flows of each event
 * type, AND across keys and OR within a key, lost_events records, and bad specs whose
 * message names the key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow/filter.h"
#include "flow_fixtures.h"

enum { DROP, TRACE_REPLY, VERDICT_DENY, VERDICT_ALLOW, TRACE_ICMP, TRACE_V6, LOST, NFIX };

static const char *const fixture_text[NFIX] = {FX_DROP,		 FX_TRACE_REPLY, FX_VERDICT_DENY,
					       FX_VERDICT_ALLOW, FX_TRACE_ICMP,	 FX_TRACE_V6,
					       FX_LOST};
static json_t *fx[NFIX];

static int load_fixtures(void **state)
{
	json_error_t je;

	for (int i = 0; i < NFIX; i++) {
		fx[i] = json_loads(fixture_text[i], 0, &je);
		if (!fx[i]) {
			fprintf(stderr, "fixture %d: %s at %d\n", i, je.text, je.position);
			return -1;
		}
	}
	return 0;
}

static int free_fixtures(void **state)
{
	for (int i = 0; i < NFIX; i++)
		json_decref(fx[i]);
	return 0;
}

static struct flow_filter *build(const char *spec_text)
{
	struct diag d = {{0}};
	struct flow_filter *f = NULL;
	json_t *spec = json_loads(spec_text, 0, NULL);

	assert_non_null(spec);
	if (flow_filter_from_json(spec, &f, &d))
		fail_msg("spec %s: %s", spec_text, d.msg);
	json_decref(spec);
	return f;
}

/* The fixtures the spec selects, as a bit mask of the enum above. */
static unsigned int selected(const char *spec_text)
{
	struct flow_filter *f = build(spec_text);
	unsigned int mask = 0;

	for (int i = 0; i < NFIX; i++)
		if (flow_filter_match(f, fx[i]))
			mask |= 1u << i;
	flow_filter_free(f);
	return mask;
}

#define BIT(x)	  (1u << (x))
#define ALL	  ((1u << NFIX) - 1)
#define ALL_FLOWS (ALL & ~BIT(LOST))
#define ON_NODE_1 (BIT(DROP) | BIT(TRACE_REPLY) | BIT(VERDICT_DENY) | BIT(TRACE_V6))

static void expect_selected(const char *spec, unsigned int want)
{
	unsigned int got = selected(spec);

	if (got != want)
		fail_msg("spec %s selects 0x%x, want 0x%x", spec, got, want);
}

static void test_empty_and_null(void **state)
{
	struct flow_filter *f = NULL;
	struct diag d = {{0}};

	expect_selected("{}", ALL);
	assert_int_equal(flow_filter_from_json(NULL, &f, &d), 0);
	for (int i = 0; i < NFIX; i++) {
		assert_true(flow_filter_match(f, fx[i]));
		assert_true(flow_filter_match(NULL, fx[i]));
	}
	flow_filter_free(f);
	flow_filter_free(NULL);
}

static void test_pods(void **state)
{
	unsigned int from_xa = BIT(DROP) | BIT(VERDICT_DENY) | BIT(VERDICT_ALLOW);
	unsigned int to_xa = BIT(TRACE_REPLY);

	expect_selected("{\"from_pod\":[\"x/a\"]}", from_xa);
	expect_selected("{\"to_pod\":[\"x/a\"]}", to_xa);
	expect_selected("{\"pod\":[\"x/a\"]}", from_xa | to_xa);
	/* "ns/" is every pod of the namespace; exact pod names otherwise */
	expect_selected("{\"from_pod\":[\"x/\"]}", from_xa | BIT(TRACE_V6));
	expect_selected("{\"from_pod\":[\"x/a6\"]}", BIT(TRACE_V6));
	expect_selected("{\"from_pod\":[\"x/nosuch\"]}", 0);
	/* the destination of FX_TRACE_ICMP is the world: no namespace, no pod */
	expect_selected("{\"to_pod\":[\"z/\"]}", 0);
	expect_selected("{\"from_pod\":[\"z/c\"]}", BIT(TRACE_ICMP));
	/* a bare pod name is in namespace "default", like hubble's --from-pod */
	expect_selected("{\"from_pod\":[\"a\"]}", 0);
	/* a single string stands for a one-element list */
	expect_selected("{\"from_pod\":\"x/a\"}", from_xa);
}

static void test_namespace(void **state)
{
	expect_selected("{\"namespace\":[\"y\"]}",
			BIT(DROP) | BIT(TRACE_REPLY) | BIT(VERDICT_DENY) | BIT(VERDICT_ALLOW));
	expect_selected("{\"namespace\":[\"z\"]}", BIT(TRACE_ICMP));
	expect_selected("{\"namespace\":[\"z\",\"y\"]}",
			BIT(DROP) | BIT(TRACE_REPLY) | BIT(VERDICT_DENY) | BIT(VERDICT_ALLOW) |
				BIT(TRACE_ICMP));
}

static void test_verdict_and_reason(void **state)
{
	unsigned int dropped = BIT(DROP) | BIT(VERDICT_DENY);

	expect_selected("{\"verdict\":[\"DROPPED\"]}", dropped);
	expect_selected("{\"verdict\":[\"dropped\"]}", dropped);
	expect_selected("{\"verdict\":[\"FORWARDED\"]}", ALL_FLOWS & ~dropped);
	expect_selected("{\"verdict\":[\"DROPPED\",\"FORWARDED\"]}", ALL_FLOWS);
	expect_selected("{\"verdict\":[\"AUDIT\"]}", 0);
	expect_selected("{\"drop_reason\":[\"POLICY_DENIED\"]}", dropped);
	expect_selected("{\"drop_reason\":[133]}", dropped);
	expect_selected("{\"drop_reason\":[\"133\"]}", dropped);
	expect_selected("{\"drop_reason\":[\"policy_denied\"]}", dropped);
	expect_selected("{\"drop_reason\":[\"INVALID_IDENTITY\"]}", 0);
	expect_selected("{\"drop_reason\":[\"INVALID_IDENTITY\",\"POLICY_DENIED\"]}", dropped);
}

static void test_protocol_and_port(void **state)
{
	unsigned int tcp = BIT(DROP) | BIT(VERDICT_DENY) | BIT(VERDICT_ALLOW);

	expect_selected("{\"protocol\":[\"TCP\"]}", tcp);
	expect_selected("{\"protocol\":[\"udp\"]}", BIT(TRACE_REPLY) | BIT(TRACE_V6));
	expect_selected("{\"protocol\":[\"ICMP\"]}", BIT(TRACE_ICMP));
	expect_selected("{\"protocol\":[\"ICMPv4\"]}", BIT(TRACE_ICMP));
	expect_selected("{\"protocol\":[\"ICMPv6\",\"SCTP\"]}", 0);
	expect_selected("{\"protocol\":[\"TCP\",\"ICMPv4\"]}", tcp | BIT(TRACE_ICMP));
	/* source or destination port */
	expect_selected("{\"port\":[80]}", BIT(DROP) | BIT(VERDICT_DENY));
	expect_selected("{\"port\":[41000]}", BIT(DROP) | BIT(VERDICT_DENY));
	expect_selected("{\"port\":[\"53\"]}", BIT(TRACE_REPLY) | BIT(TRACE_V6));
	expect_selected("{\"port\":[8080,42132]}", BIT(VERDICT_ALLOW) | BIT(TRACE_REPLY));
	/* ICMP has no ports */
	expect_selected("{\"port\":[0]}", 0);
}

static void test_type(void **state)
{
	expect_selected("{\"type\":[\"drop\"]}", BIT(DROP));
	expect_selected("{\"type\":[\"trace\"]}",
			BIT(TRACE_REPLY) | BIT(TRACE_ICMP) | BIT(TRACE_V6));
	expect_selected("{\"type\":[\"policy-verdict\"]}", BIT(VERDICT_DENY) | BIT(VERDICT_ALLOW));
	expect_selected("{\"type\":[\"drop\",\"policy-verdict\"]}",
			BIT(DROP) | BIT(VERDICT_DENY) | BIT(VERDICT_ALLOW));
	expect_selected("{\"type\":[\"trace:to-endpoint\"]}", BIT(TRACE_REPLY));
	expect_selected("{\"type\":[\"trace:to-stack\",\"trace:TO_OVERLAY\"]}",
			BIT(TRACE_ICMP) | BIT(TRACE_V6));
}

static void test_time_and_node(void **state)
{
	expect_selected("{\"node\":[\"node-1\"]}", ON_NODE_1);
	expect_selected("{\"node\":[\"node-2\"]}", ALL & ~ON_NODE_1);
	expect_selected("{\"node\":[\"node-1\",\"node-2\"]}", ALL);
	/* since / until are inclusive; FX_TRACE_V6 is 16:40:04Z (+01:00) */
	expect_selected("{\"since\":\"2026-12-04T17:40:02Z\"}",
			BIT(VERDICT_ALLOW) | BIT(TRACE_ICMP) | BIT(LOST));
	expect_selected("{\"until\":\"2026-12-04T17:40:00.123Z\"}",
			BIT(VERDICT_DENY) | BIT(TRACE_V6));
	expect_selected("{\"since\":\"2026-12-04T18:40:00.5+01:00\","
			"\"until\":\"2026-12-04T17:40:02Z\"}",
			BIT(TRACE_REPLY) | BIT(VERDICT_ALLOW));
}

static void test_and_or(void **state)
{
	/* AND across keys */
	expect_selected("{\"from_pod\":[\"x/a\"],\"verdict\":[\"DROPPED\"]}",
			BIT(DROP) | BIT(VERDICT_DENY));
	expect_selected("{\"from_pod\":[\"x/a\"],\"verdict\":[\"DROPPED\"],"
			"\"type\":[\"drop\"]}",
			BIT(DROP));
	expect_selected("{\"from_pod\":[\"x/a\"],\"to_pod\":[\"y/b\"],\"port\":[8080]}",
			BIT(VERDICT_ALLOW));
	expect_selected("{\"node\":[\"node-2\"],\"verdict\":[\"DROPPED\"]}", 0);
	/* OR within a key, AND with the others */
	expect_selected("{\"from_pod\":[\"x/a\",\"z/c\"],\"type\":[\"trace\",\"drop\"]}",
			BIT(DROP) | BIT(TRACE_ICMP));
	expect_selected("{\"pod\":[\"y/b\"],\"protocol\":[\"UDP\",\"TCP\"],"
			"\"node\":[\"node-1\"]}",
			BIT(DROP) | BIT(TRACE_REPLY) | BIT(VERDICT_DENY));
}

static void test_lost_records(void **state)
{
	/* lost_events records pass filters without flow fields only */
	expect_selected("{\"node\":[\"node-2\"],\"since\":\"2026-12-04T17:40:05Z\"}", BIT(LOST));
	expect_selected("{\"verdict\":[\"DROPPED\"]}", BIT(DROP) | BIT(VERDICT_DENY));
	expect_selected("{\"from_pod\":[\"x/\"],\"node\":[\"node-2\"]}", BIT(VERDICT_ALLOW));
}

/* A bad spec fails, naming the key in its message. */
static void expect_bad(const char *spec_text, const char *key, const char *also)
{
	struct diag d = {{0}};
	struct flow_filter *f = (struct flow_filter *)1;
	json_t *spec = json_loads(spec_text, JSON_DECODE_ANY, NULL);
	char quoted[64];

	assert_non_null(spec);
	assert_int_not_equal(flow_filter_from_json(spec, &f, &d), 0);
	assert_null(f);
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	if (!strstr(d.msg, quoted) || (also && !strstr(d.msg, also)))
		fail_msg("spec %s: message \"%s\" does not name %s%s%s", spec_text, d.msg, quoted,
			 also ? " and " : "", also ? also : "");
	json_decref(spec);
}

static void test_bad_specs(void **state)
{
	struct diag d = {{0}};
	struct flow_filter *f = NULL;
	json_t *arr = json_array();

	expect_bad("{\"color\":[\"red\"]}", "color", "unknown");
	expect_bad("{\"verdict\":[\"MAYBE\"]}", "verdict", "MAYBE");
	expect_bad("{\"verdict\":[]}", "verdict", "empty");
	expect_bad("{\"verdict\":[7]}", "verdict", "strings");
	expect_bad("{\"port\":[70000]}", "port", "70000");
	expect_bad("{\"port\":[\"http\"]}", "port", "http");
	expect_bad("{\"port\":[-1]}", "port", NULL);
	expect_bad("{\"protocol\":[\"QUIC\"]}", "protocol", "QUIC");
	expect_bad("{\"type\":[\"l7\"]}", "type", "l7");
	expect_bad("{\"type\":[\"drop:POLICY_DENIED\"]}", "type", "sub-types");
	expect_bad("{\"type\":[\"trace:to-moon\"]}", "type", NULL);
	expect_bad("{\"drop_reason\":[\"NOT_A_REASON\"]}", "drop_reason", "NOT_A_REASON");
	expect_bad("{\"drop_reason\":[999]}", "drop_reason", "999");
	expect_bad("{\"from_pod\":[\"/a\"]}", "from_pod", "/a");
	expect_bad("{\"to_pod\":[\"x/a/b\"]}", "to_pod", "x/a/b");
	expect_bad("{\"pod\":[\"\"]}", "pod", NULL);
	expect_bad("{\"namespace\":[null]}", "namespace", NULL);
	expect_bad("{\"since\":\"yesterday\"}", "since", "RFC 3339");
	expect_bad("{\"until\":\"2026-02-30T00:00:00Z\"}", "until", NULL);
	expect_bad("{\"node\":[\"node-1\",3]}", "node", NULL);
	/* a later bad key after good ones: everything parsed so far is released */
	expect_bad("{\"from_pod\":[\"x/a\"],\"verdict\":[\"DROPPED\"],\"port\":[\"x\"]}", "port",
		   NULL);
	assert_int_not_equal(flow_filter_from_json(arr, &f, &d), 0);
	assert_null(f);
	assert_non_null(strstr(d.msg, "object"));
	json_decref(arr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_and_null),	  cmocka_unit_test(test_pods),
		cmocka_unit_test(test_namespace),	  cmocka_unit_test(test_verdict_and_reason),
		cmocka_unit_test(test_protocol_and_port), cmocka_unit_test(test_type),
		cmocka_unit_test(test_time_and_node),	  cmocka_unit_test(test_and_or),
		cmocka_unit_test(test_lost_records),	  cmocka_unit_test(test_bad_specs),
	};

	return cmocka_run_group_tests_name("flow_filter", tests, load_fixtures, free_fixtures);
}
