// SPDX-License-Identifier: Apache-2.0
/*
 * Flow rendering tests (datapath/flow/render.h): the exact cilium monitor line, monitor -j
 * object, hubble compact line and table of hand-written flows of each event type, the lost
 * line, the flow hash, and the time helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow/render.h"
#include "flow_fixtures.h"

static json_t *load(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);

	if (!j)
		fail_msg("fixture: %s at %d", je.text, je.position);
	return j;
}

static void expect_monitor(const char *fixture, const char *want)
{
	json_t *w = load(fixture);
	char line[1024];
	size_t n = flow_format_monitor(w, line, sizeof(line));

	assert_string_equal(line, want);
	assert_int_equal(n, strlen(want));
	json_decref(w);
}

static void test_monitor_lines(void **state)
{
	expect_monitor(FX_DROP,
		       "xx drop (Policy denied) flow 0x3a601226 to endpoint 0, ifindex 12, "
		       "file lxc.bpf.c:116, identity 256->257: 10.244.0.10:41000 -> "
		       "10.244.1.10:80 tcp SYN");
	expect_monitor(FX_TRACE_REPLY,
		       "-> endpoint 10 flow 0xe496eea0 identity 257->256 state reply ifindex "
		       "lxc1a2b3c4d orig-ip 0.0.0.0: 10.244.1.10:53 -> 10.244.0.10:42132 udp");
	expect_monitor(
		FX_VERDICT_DENY,
		"Policy verdict log: flow 0x3a601226 local EP ID 10, remote ID 257, proto 6, "
		"egress, action deny, auth: disabled, match none, 10.244.0.10:41000 -> "
		"10.244.1.10:80 tcp SYN");
	expect_monitor(
		FX_VERDICT_ALLOW,
		"Policy verdict log: flow 0x16a870c6 local EP ID 20, remote ID 256, proto 6, "
		"ingress, action allow, auth: disabled, match L3-L4, 10.244.0.10:41001 -> "
		"10.244.1.10:8080 tcp SYN");
	expect_monitor(FX_TRACE_ICMP, "-> stack flow 0x9566c4d2 identity 300->2 state new ifindex "
				      "lxc00c0ffee orig-ip 0.0.0.0: 10.244.1.20 -> 1.1.1.1 "
				      "EchoRequest");
	expect_monitor(FX_TRACE_V6, "-> overlay flow 0xc3956668 identity 256->2 state established "
				    "ifindex 4 orig-ip ::: [fd00::10]:5353 -> [fd00::1:20]:53 udp");
	expect_monitor(FX_LOST, "EVENTS LOST: 17 events lost on node node-2");
}

static void test_monitor_line_truncates_safely(void **state)
{
	json_t *w = load(FX_DROP);
	char small[16], full[512];
	size_t need = flow_format_monitor(w, full, sizeof(full));

	/* snprintf semantics: always terminated, returns the length needed */
	assert_int_equal(flow_format_monitor(w, small, sizeof(small)), need);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, full, sizeof(small) - 1);
	assert_int_equal(flow_format_monitor(w, NULL, 0), need);
	json_decref(w);
}

static void test_flow_hash(void **state)
{
	json_t *drop = load(FX_DROP), *deny = load(FX_VERDICT_DENY), *reply = load(FX_TRACE_REPLY);
	json_t *flow = json_object_get(drop, "flow"), *ip = json_object_get(flow, "IP");
	json_t *tcp = json_object_get(json_object_get(flow, "l4"), "TCP");
	uint32_t h = flow_hash(flow);

	/* pinned: the same flow gets the same hash in every version */
	assert_int_equal(h, 0x3a601226);
	assert_int_equal(flow_hash(json_object_get(deny, "flow")), h);
	assert_int_equal(flow_hash(json_object_get(reply, "flow")), 0xe496eea0);
	/* both directions of a connection hash alike */
	json_object_set_new(ip, "source", json_string("10.244.1.10"));
	json_object_set_new(ip, "destination", json_string("10.244.0.10"));
	json_object_set_new(tcp, "source_port", json_integer(80));
	json_object_set_new(tcp, "destination_port", json_integer(41000));
	assert_int_equal(flow_hash(flow), h);
	/* another port, another hash */
	json_object_set_new(tcp, "source_port", json_integer(81));
	assert_int_not_equal(flow_hash(flow), h);
	json_decref(drop);
	json_decref(deny);
	json_decref(reply);
}

static void test_conn_summary(void **state)
{
	json_t *f = load("{\"IP\":{\"source\":\"10.0.0.1\",\"destination\":\"10.0.0.2\"},"
			 "\"l4\":{\"TCP\":{\"source_port\":1,\"destination_port\":2,"
			 "\"flags\":{\"ACK\":true,\"SYN\":true,\"FIN\":true}}}}");
	char s[256];

	flow_format_conn_summary(f, s, sizeof(s));
	assert_string_equal(s, "10.0.0.1:1 -> 10.0.0.2:2 tcp SYN, ACK, FIN");
	json_object_set_new(json_object_get(f, "l4"), "TCP",
			    json_pack("{s:i,s:i}", "source_port", 1, "destination_port", 2));
	flow_format_conn_summary(f, s, sizeof(s));
	assert_string_equal(s, "10.0.0.1:1 -> 10.0.0.2:2 tcp");
	json_object_set_new(f, "l4", json_pack("{s:{s:i,s:i}}", "ICMPv4", "type", 3, "code", 3));
	flow_format_conn_summary(f, s, sizeof(s));
	assert_string_equal(s, "10.0.0.1 -> 10.0.0.2 DestinationUnreachable(Port)");
	json_object_set_new(f, "l4", json_pack("{s:{s:i,s:i}}", "ICMPv6", "type", 129, "code", 0));
	flow_format_conn_summary(f, s, sizeof(s));
	assert_string_equal(s, "10.0.0.1 -> 10.0.0.2 EchoReply");
	json_object_set_new(
		f, "l4",
		json_pack("{s:{s:i,s:i}}", "SCTP", "source_port", 5, "destination_port", 6));
	flow_format_conn_summary(f, s, sizeof(s));
	assert_string_equal(s, "10.0.0.1:5 -> 10.0.0.2:6 sctp");
	json_object_del(f, "l4");
	flow_format_conn_summary(f, s, sizeof(s));
	assert_string_equal(s, "10.0.0.1 -> 10.0.0.2");
	json_object_del(f, "IP");
	flow_format_conn_summary(f, s, sizeof(s));
	assert_string_equal(s, "[unknown]");
	json_decref(f);
}

static json_t *monitor_json_of(const char *fixture)
{
	json_t *w = load(fixture), *j = flow_monitor_json(w);

	assert_non_null(j);
	json_decref(w);
	return j;
}

static void test_monitor_json(void **state)
{
	json_t *d = monitor_json_of(FX_DROP), *t = monitor_json_of(FX_TRACE_REPLY);
	json_t *v = monitor_json_of(FX_VERDICT_DENY), *l = monitor_json_of(FX_LOST);
	json_t *s = json_object_get(d, "summary");

	/* drop: cilium's keys */
	assert_string_equal(json_string_value(json_object_get(d, "type")), "drop");
	assert_string_equal(json_string_value(json_object_get(d, "reason")), "Policy denied");
	assert_string_equal(json_string_value(json_object_get(d, "mark")), "0x3a601226");
	assert_int_equal(json_integer_value(json_object_get(d, "source")), 10);
	assert_int_equal(json_integer_value(json_object_get(d, "srcLabel")), 256);
	assert_int_equal(json_integer_value(json_object_get(d, "dstLabel")), 257);
	assert_int_equal(json_integer_value(json_object_get(d, "dstID")), 0);
	assert_int_equal(json_integer_value(json_object_get(d, "Line")), 116);
	assert_string_equal(json_string_value(json_object_get(d, "File")), "lxc.bpf.c");
	assert_int_equal(json_integer_value(json_object_get(d, "Ifindex")), 12);
	assert_int_equal(json_integer_value(json_object_get(d, "bytes")), 74);
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "l3"), "dst")),
			    "10.244.1.10");
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "l4"), "dst")),
			    "80");
	assert_string_equal(json_string_value(json_object_get(d, "node")), "node-1");
	assert_non_null(strstr(json_string_value(json_object_get(d, "text")), "xx drop (Policy"));
	/* trace */
	assert_string_equal(json_string_value(json_object_get(t, "type")), "trace");
	assert_string_equal(json_string_value(json_object_get(t, "observationPoint")),
			    "to-endpoint");
	assert_string_equal(json_string_value(json_object_get(t, "traceSummary")),
			    "-> endpoint 10");
	assert_string_equal(json_string_value(json_object_get(t, "state")), "reply");
	assert_string_equal(json_string_value(json_object_get(t, "ifindex")), "lxc1a2b3c4d");
	assert_int_equal(json_integer_value(json_object_get(t, "dstID")), 10);
	/* policy verdict */
	assert_string_equal(json_string_value(json_object_get(v, "type")), "policy-verdict");
	assert_string_equal(json_string_value(json_object_get(v, "action")), "deny");
	assert_string_equal(json_string_value(json_object_get(v, "direction")), "egress");
	assert_string_equal(json_string_value(json_object_get(v, "match")), "none");
	assert_int_equal(json_integer_value(json_object_get(v, "remoteLabel")), 257);
	assert_int_equal(json_integer_value(json_object_get(v, "proto")), 6);
	/* lost */
	assert_string_equal(json_string_value(json_object_get(l, "type")), "lost");
	assert_int_equal(json_integer_value(json_object_get(l, "lost")), 17);
	assert_string_equal(json_string_value(json_object_get(l, "node")), "node-2");
	json_decref(d);
	json_decref(t);
	json_decref(v);
	json_decref(l);
}

static void expect_compact(const char *fixture, bool node, const char *want)
{
	struct flow_render_opts o = {.node_name = node};
	json_t *w = load(fixture);
	char line[1024];

	flow_format_compact(w, &o, line, sizeof(line));
	assert_string_equal(line, want);
	json_decref(w);
}

static void test_compact_lines(void **state)
{
	expect_compact(FX_DROP, false,
		       "Dec  4 17:40:00.123: x/a:41000 (ID:256) -> y/b:80 (ID:257) Policy denied "
		       "DROPPED (TCP Flags: SYN)");
	/* a reply: hubble flips the ends and the arrow */
	expect_compact(FX_TRACE_REPLY, false,
		       "Dec  4 17:40:01.500: x/a:42132 (ID:256) <- y/b:53 (ID:257) to-endpoint "
		       "FORWARDED (UDP)");
	expect_compact(FX_VERDICT_DENY, false,
		       "Dec  4 17:40:00.123: x/a:41000 (ID:256) -> y/b:80 (ID:257) "
		       "policy-verdict:none EGRESS DENIED (TCP Flags: SYN)");
	expect_compact(FX_VERDICT_ALLOW, true,
		       "Dec  4 17:40:02.000 [node-2]: x/a:41001 (ID:256) -> y/b:8080 (ID:257) "
		       "policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN)");
	expect_compact(FX_TRACE_ICMP, false,
		       "Dec  4 17:40:03.000: z/c (ID:300) -> 1.1.1.1 (world) to-stack FORWARDED "
		       "(ICMPv4 EchoRequest)");
	/* no is_reply: direction unknown; an address the model does not know */
	expect_compact(
		FX_TRACE_V6, true,
		"Dec  4 16:40:04.000 [node-1]: x/a6:5353 (ID:256) <> [fd00::1:20]:53 (world) "
		"to-overlay FORWARDED (UDP)");
	expect_compact(FX_LOST, false, "EVENTS LOST: 17 events lost on node node-2");
}

static char *table_text(struct flow_table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	flow_table_print_pending(t, f);
	fclose(f);
	return buf;
}

static void table_add(struct flow_table *t, const char *fixture)
{
	json_t *w = load(fixture);

	assert_int_equal(flow_table_add(t, w), 0);
	json_decref(w);
}

static void test_table(void **state)
{
	struct flow_table *t = flow_table_new();
	char *out;

	assert_non_null(t);
	out = table_text(t);
	assert_string_equal(out, ""); /* no rows, no header */
	free(out);
	table_add(t, FX_DROP);
	table_add(t, FX_VERDICT_ALLOW);
	table_add(t, FX_LOST);
	table_add(t, FX_TRACE_REPLY);
	out = table_text(t);
	assert_string_equal(
		out,
		"TIMESTAMP             NODE     SOURCE      DESTINATION   TYPE                    "
		"       VERDICT     SUMMARY\n"
		"Dec  4 17:40:00.123   node-1   x/a:41000   y/b:80        Policy denied           "
		"       DROPPED     TCP Flags: SYN\n"
		"Dec  4 17:40:02.000   node-2   x/a:41001   y/b:8080      policy-verdict:L3-L4 "
		"INGRESS   ALLOWED     TCP Flags: SYN\n"
		"EVENTS LOST: 17 events lost on node node-2\n"
		"Dec  4 17:40:01.500   node-1   x/a:42132   y/b:53        to-endpoint             "
		"       FORWARDED   UDP\n");
	free(out);
	/* -f: later rows print alone, in the widths seen so far */
	table_add(t, FX_DROP);
	out = table_text(t);
	assert_string_equal(out, "Dec  4 17:40:00.123   node-1   x/a:41000   y/b:80        "
				 "Policy denied                  DROPPED     TCP Flags: SYN\n");
	free(out);
	out = table_text(t);
	assert_string_equal(out, "");
	free(out);
	flow_table_free(t);
}

static void test_time_parse(void **state)
{
	int64_t ns = 0;
	char buf[64];

	assert_int_equal(flow_time_parse("2026-12-04T17:40:00.123456789Z", &ns), 0);
	assert_int_equal(ns, 1796406000123456789LL);
	flow_time_format(ns, buf, sizeof(buf));
	assert_string_equal(buf, "2026-12-04T17:40:00.123456789Z");
	assert_int_equal(flow_time_parse("2026-12-04T18:40:00.123456789+01:00", &ns), 0);
	assert_int_equal(ns, 1796406000123456789LL);
	assert_int_equal(flow_time_parse("2026-12-04t17:10:00-00:30", &ns), 0);
	assert_int_equal(ns, 1796406000000000000LL);
	assert_int_equal(flow_time_parse("1970-01-01T00:00:01Z", &ns), 0);
	assert_int_equal(ns, 1000000000LL);
	assert_int_equal(flow_time_parse("2028-02-29T00:00:00.5Z", &ns), 0);
	flow_format_timestamp(ns, buf, sizeof(buf));
	assert_string_equal(buf, "Feb 29 00:00:00.500");
	flow_format_timestamp(0, buf, sizeof(buf));
	assert_string_equal(buf, "N/A");
	/* not RFC 3339 */
	assert_int_not_equal(flow_time_parse("2026-12-04", &ns), 0);
	assert_int_not_equal(flow_time_parse("2026-12-04T17:40:00", &ns), 0);
	assert_int_not_equal(flow_time_parse("2026-12-04T17:40:00.Z", &ns), 0);
	assert_int_not_equal(flow_time_parse("2026-13-04T17:40:00Z", &ns), 0);
	assert_int_not_equal(flow_time_parse("2027-02-29T00:00:00Z", &ns), 0);
	assert_int_not_equal(flow_time_parse("2026-12-04T24:00:00Z", &ns), 0);
	assert_int_not_equal(flow_time_parse("2026-12-04T17:40:00Zjunk", &ns), 0);
	assert_int_not_equal(flow_time_parse(NULL, &ns), 0);
}

static void test_duration_parse(void **state)
{
	int64_t ns;

	assert_int_equal(flow_duration_parse("5m", &ns), 0);
	assert_int_equal(ns, 300000000000LL);
	assert_int_equal(flow_duration_parse("1h30m", &ns), 0);
	assert_int_equal(ns, 5400000000000LL);
	assert_int_equal(flow_duration_parse("250ms", &ns), 0);
	assert_int_equal(ns, 250000000LL);
	assert_int_equal(flow_duration_parse("1.5s", &ns), 0);
	assert_int_equal(ns, 1500000000LL);
	assert_int_equal(flow_duration_parse("2d", &ns), 0);
	assert_int_equal(ns, 172800000000000LL);
	assert_int_not_equal(flow_duration_parse("5", &ns), 0);
	assert_int_not_equal(flow_duration_parse("m", &ns), 0);
	assert_int_not_equal(flow_duration_parse("5x", &ns), 0);
	assert_int_not_equal(flow_duration_parse("", &ns), 0);
	assert_int_not_equal(flow_duration_parse("-5s", &ns), 0);
}

static void test_record_helpers(void **state)
{
	json_t *lost = load(FX_LOST), *drop = load(FX_DROP);
	json_t *bare = load("{\"flow\":{\"time\":\"1970-01-01T00:00:02Z\"}}");
	char type[64];

	assert_true(flow_is_lost_record(lost));
	assert_false(flow_is_lost_record(drop));
	assert_int_equal(flow_record_time(lost), 1796406005000000000LL);
	assert_int_equal(flow_record_time(bare), 2000000000LL); /* the flow's time */
	flow_format_type(json_object_get(drop, "flow"), type, sizeof(type));
	assert_string_equal(type, "Policy denied");
	assert_string_equal(flow_verdict_word(json_object_get(drop, "flow")), "DROPPED");
	json_decref(lost);
	json_decref(drop);
	json_decref(bare);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_monitor_lines),
		cmocka_unit_test(test_monitor_line_truncates_safely),
		cmocka_unit_test(test_flow_hash),
		cmocka_unit_test(test_conn_summary),
		cmocka_unit_test(test_monitor_json),
		cmocka_unit_test(test_compact_lines),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_record_helpers),
	};

	return cmocka_run_group_tests_name("flow_render", tests, NULL, NULL);
}
