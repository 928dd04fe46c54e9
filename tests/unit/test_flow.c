/* SPDX-License-Identifier: Apache-2.0 */
/* Flows: event decoding, enrichment, Hubble JSON field names, the bounded buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "flow/flow.h"

static uint32_t ip(const char *s)
{
	uint32_t a;

	inet_pton(AF_INET, s, &a);
	return a;
}

static struct flow_dir *sample_dir(void)
{
	static const char *const web[] = { "k8s:app=web", "k8s:io.kubernetes.pod.namespace=x" };
	static const char *const db[] = { "k8s:app=db", "k8s:io.kubernetes.pod.namespace=y" };
	static const char *const world[] = { "reserved:world" };
	struct flow_dir *dir = flow_dir_new();

	assert_non_null(dir);
	assert_int_equal(flow_dir_add_identity(dir, 256, web, 2), 0);
	assert_int_equal(flow_dir_add_identity(dir, 257, db, 2), 0);
	assert_int_equal(flow_dir_add_identity(dir, 2, world, 1), 0);
	assert_int_equal(flow_dir_add_addr(dir, ip("10.244.0.10"), 256, 10, "x", "web"), 0);
	assert_int_equal(flow_dir_add_addr(dir, ip("10.244.1.20"), 257, 0, "y", "db"), 0);
	assert_int_equal(flow_dir_add_ifname(dir, 7, "lxc0a0b0c0d"), 0);
	return dir;
}

static struct ciliate_event tcp_event(uint8_t type, uint16_t reason)
{
	struct ciliate_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.hook = HOOK_FROM_CONTAINER;
	ev.family = CILIATE_AF_INET;
	ev.proto = IPPROTO_TCP;
	ev.reason = reason;
	ev.dir = DIR_EGRESS;
	ev.tcp_flags = 0x02; /* SYN */
	ev.ifindex = 7;
	ev.ep_id = 10;
	ev.src_identity = 256;
	ev.dst_identity = 257;
	ev.saddr.v4 = ip("10.244.0.10");
	ev.daddr.v4 = ip("10.244.1.20");
	ev.sport = htons(41000);
	ev.dport = htons(80);
	return ev;
}

static const char *str_at(json_t *o, const char *path)
{
	char buf[256], *save = NULL, *part;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, ".", &save); part && o; part = strtok_r(NULL, ".", &save))
		o = json_object_get(o, part);
	return json_string_value(o);
}

static json_int_t int_at(json_t *o, const char *path)
{
	char buf[256], *save = NULL, *part;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, ".", &save); part && o; part = strtok_r(NULL, ".", &save))
		o = json_object_get(o, part);
	assert_non_null(o);
	return json_integer_value(o);
}

static void test_drop_flow_json(void **state)
{
	struct flow_dir *dir = sample_dir();
	struct ciliate_event ev = tcp_event(EVENT_DROP, REASON_POLICY_DENIED);
	struct flow f;
	json_t *j, *fl;

	(void)state;
	ev.src_file = SRC_LXC;
	ev.src_line = 116;
	memset(&f, 0, sizeof(f));
	flow_decode(&f, &ev, dir);
	f.seq = 42;
	f.time_ns = 1796406000123456789LL;
	j = flow_to_json(&f, "node-1");
	fl = json_object_get(j, "flow");
	assert_string_equal(str_at(j, "node_name"), "node-1");
	assert_string_equal(str_at(j, "time"), str_at(fl, "time"));
	assert_string_equal(str_at(fl, "verdict"), "DROPPED");
	assert_string_equal(str_at(fl, "drop_reason_desc"), "POLICY_DENIED");
	assert_int_equal(int_at(fl, "drop_reason"), 133);
	assert_int_equal(int_at(fl, "event_type.type"), 1);
	assert_int_equal(int_at(fl, "event_type.sub_type"), 133);
	assert_string_equal(str_at(fl, "IP.source"), "10.244.0.10");
	assert_string_equal(str_at(fl, "IP.destination"), "10.244.1.20");
	assert_string_equal(str_at(fl, "IP.ipVersion"), "IPv4");
	assert_int_equal(int_at(fl, "l4.TCP.source_port"), 41000);
	assert_int_equal(int_at(fl, "l4.TCP.destination_port"), 80);
	assert_true(json_is_true(json_object_get(
		json_object_get(json_object_get(json_object_get(fl, "l4"), "TCP"), "flags"),
		"SYN")));
	assert_string_equal(str_at(fl, "source.namespace"), "x");
	assert_string_equal(str_at(fl, "source.pod_name"), "web");
	assert_int_equal(int_at(fl, "source.ID"), 10);
	assert_int_equal(int_at(fl, "source.identity"), 256);
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_object_get(fl, "source"), "labels"), 0)),
			    "k8s:app=web");
	assert_string_equal(str_at(fl, "destination.pod_name"), "db");
	assert_null(json_object_get(json_object_get(fl, "destination"), "ID")); /* not local */
	assert_string_equal(str_at(fl, "traffic_direction"), "EGRESS");
	assert_string_equal(str_at(fl, "interface.name"), "lxc0a0b0c0d");
	assert_string_equal(str_at(fl, "file.name"), "lxc.bpf.c");
	assert_int_equal(int_at(fl, "file.line"), 116);
	assert_string_equal(str_at(fl, "Summary"), "TCP Flags: SYN");
	assert_string_equal(str_at(fl, "ciliate.hook"), "from-container");
	assert_int_equal(int_at(fl, "ciliate.seq"), 42);
	assert_false(json_is_true(json_object_get(fl, "is_reply")));
	assert_null(json_object_get(fl, "trace_observation_point"));
	json_decref(j);
	flow_release(&f);
	flow_dir_put(dir);
}

static void test_trace_and_verdict_flows(void **state)
{
	struct flow_dir *dir = sample_dir();
	struct ciliate_event ev = tcp_event(EVENT_TRACE, REASON_CT_NEW);
	struct flow f;
	json_t *j;

	(void)state;
	ev.target_ifindex = 9; /* redirected into a local pod */
	memset(&f, 0, sizeof(f));
	flow_decode(&f, &ev, dir);
	j = json_object_get(flow_to_json(&f, "n"), "flow");
	assert_string_equal(str_at(j, "verdict"), "FORWARDED");
	assert_string_equal(str_at(j, "trace_observation_point"), "TO_ENDPOINT");
	assert_int_equal(int_at(j, "event_type.type"), 4);
	assert_null(json_object_get(j, "drop_reason_desc"));
	flow_release(&f);

	ev.target_ifindex = 0; /* passed to the node's stack */
	ev.flags = EVENT_F_IS_REPLY;
	flow_decode(&f, &ev, dir);
	j = json_object_get(flow_to_json(&f, "n"), "flow");
	assert_string_equal(str_at(j, "trace_observation_point"), "TO_STACK");
	assert_true(json_is_true(json_object_get(j, "is_reply")));
	flow_release(&f);

	ev = tcp_event(EVENT_POLICY_VERDICT, REASON_POLICY_DENIED);
	ev.match = POLICY_MATCH_L3_L4;
	flow_decode(&f, &ev, dir);
	j = json_object_get(flow_to_json(&f, "n"), "flow");
	assert_string_equal(str_at(j, "verdict"), "DROPPED");
	assert_int_equal(int_at(j, "event_type.type"), 5);
	assert_int_equal(int_at(j, "policy_match_type"), 2);
	assert_string_equal(str_at(j, "ciliate.policy_match_name"), "L3-L4");
	flow_release(&f);

	ev.reason = REASON_FORWARDED;
	flow_decode(&f, &ev, dir);
	j = json_object_get(flow_to_json(&f, "n"), "flow");
	assert_string_equal(str_at(j, "verdict"), "FORWARDED");
	flow_release(&f);
	flow_dir_put(dir);
}

/* Addresses the directory does not know: labels from the event's identity, no pod. */
static void test_unknown_address_and_icmp(void **state)
{
	struct flow_dir *dir = sample_dir();
	struct ciliate_event ev = tcp_event(EVENT_DROP, REASON_POLICY_DENIED);
	struct flow f;
	json_t *j;

	(void)state;
	ev.proto = IPPROTO_ICMP;
	ev.sport = 8; /* type */
	ev.dport = 0; /* code */
	ev.daddr.v4 = ip("203.0.113.10");
	ev.dst_identity = 2;
	memset(&f, 0, sizeof(f));
	flow_decode(&f, &ev, dir);
	j = json_object_get(flow_to_json(&f, "n"), "flow");
	assert_int_equal(int_at(j, "l4.ICMPv4.type"), 8);
	assert_int_equal(int_at(j, "destination.identity"), 2);
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_object_get(j, "destination"), "labels"), 0)),
			    "reserved:world");
	assert_null(json_object_get(json_object_get(j, "destination"), "pod_name"));
	flow_release(&f);
	flow_dir_put(dir);
}

/* A flow keeps naming a pod after the directory that named it was replaced. */
static void test_flow_outlives_directory(void **state)
{
	struct flow_dir *dir = sample_dir();
	struct ciliate_event ev = tcp_event(EVENT_DROP, REASON_POLICY_DENIED);
	struct flow f, g;
	json_t *j;

	(void)state;
	memset(&f, 0, sizeof(f));
	flow_decode(&f, &ev, dir);
	flow_copy(&g, &f);
	flow_dir_put(dir);
	flow_release(&f);
	j = flow_to_json(&g, "n");
	assert_string_equal(str_at(json_object_get(j, "flow"), "source.pod_name"), "web");
	json_decref(j);
	flow_release(&g);
}

static void test_lost_events_record(void **state)
{
	struct flow f;
	json_t *j;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.kind = FLOW_LOST;
	f.lost = 17;
	f.time_ns = 1000000000;
	j = flow_to_json(&f, "node-2");
	assert_null(json_object_get(j, "flow"));
	assert_int_equal(int_at(j, "lost_events.num_events_lost"), 17);
	assert_string_equal(str_at(j, "lost_events.source"), "PERF_EVENT_RING_BUFFER");
	assert_string_equal(str_at(j, "node_name"), "node-2");
	assert_string_equal(str_at(j, "time"), "1970-01-01T00:00:01.000000000Z");
	json_decref(j);
}

/* The buffer keeps the newest cap flows; copies start after a sequence number. */
static void test_buffer_wraps(void **state)
{
	struct flow_buf b;
	struct flow f, *v;
	size_t n, i;

	(void)state;
	assert_int_equal(flow_buf_init(&b, 5), 0);
	for (i = 0; i < 12; i++) {
		memset(&f, 0, sizeof(f));
		f.kind = FLOW_LOST;
		f.lost = i;
		flow_buf_append(&b, &f);
	}
	assert_int_equal(flow_buf_size(&b), 5);
	assert_int_equal(b.next_seq, 13);
	assert_int_equal(flow_buf_copy_since(&b, 0, &v, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(v[0].seq, 8);
	assert_int_equal(v[4].seq, 12);
	assert_int_equal(v[4].lost, 11);
	free(v);
	assert_int_equal(flow_buf_copy_since(&b, 10, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].seq, 11);
	free(v);
	assert_int_equal(flow_buf_copy_since(&b, 12, &v, &n), 0);
	assert_int_equal(n, 0);
	flow_buf_free(&b);
}

/* The service translation: a translated packet (rev_nat_index) names its frontend's
 * service; a drop before translation (the frontend as destination) and a reply from the
 * frontend (its source) too; the directory can go while the flow lives. */
static void test_service_fields(void **state)
{
	struct flow_dir *dir = sample_dir();
	struct ciliate_event ev = tcp_event(EVENT_TRACE, REASON_CT_NEW);
	union ciliate_addr vip = { .v4 = ip("10.96.0.10") };
	struct flow f, g;
	json_t *j, *fl;

	(void)state;
	assert_int_equal(flow_dir_add_service(dir, 7, CILIATE_AF_INET, &vip, 80, IPPROTO_TCP,
					      "y", "db-svc"), 0);
	/* a repeated index is ignored */
	assert_int_equal(flow_dir_add_service(dir, 7, CILIATE_AF_INET, &vip, 81, IPPROTO_TCP,
					      "y", "other"), 0);
	ev.rev_nat_index = 7; /* daddr is the backend 10.244.1.20:80 */
	memset(&f, 0, sizeof(f));
	flow_decode(&f, &ev, dir);
	flow_copy(&g, &f);
	flow_release(&f);
	flow_dir_put(dir); /* the copy keeps its service */
	j = flow_to_json(&g, "node-1");
	fl = json_object_get(j, "flow");
	assert_string_equal(str_at(fl, "destination_service.name"), "db-svc");
	assert_string_equal(str_at(fl, "destination_service.namespace"), "y");
	assert_null(json_object_get(fl, "source_service"));
	assert_string_equal(str_at(fl, "IP.destination"), "10.244.1.20");
	assert_int_equal(int_at(fl, "ciliate.rev_nat_index"), 7);
	assert_string_equal(str_at(fl, "ciliate.service_frontend"), "10.96.0.10:80/TCP");
	json_decref(j);
	flow_release(&g);

	dir = sample_dir();
	assert_int_equal(flow_dir_add_service(dir, 7, CILIATE_AF_INET, &vip, 80, IPPROTO_TCP,
					      "y", "db-svc"), 0);
	/* not translated (no backend): the destination is the frontend itself */
	ev = tcp_event(EVENT_DROP, REASON_SERVICE_BACKEND_NOT_FOUND);
	ev.daddr = vip;
	flow_decode(&f, &ev, dir);
	j = flow_to_json(&f, "node-1");
	fl = json_object_get(j, "flow");
	assert_string_equal(str_at(fl, "destination_service.name"), "db-svc");
	assert_null(json_object_get(json_object_get(fl, "ciliate"), "rev_nat_index"));
	json_decref(j);
	flow_release(&f);
	/* another port of the same address is no frontend */
	ev.dport = htons(81);
	flow_decode(&f, &ev, dir);
	assert_null(f.dst_svc);
	flow_release(&f);
	/* a reply after reverse NAT: from the frontend */
	ev = tcp_event(EVENT_TRACE, REASON_CT_REPLY);
	ev.saddr = vip;
	ev.sport = htons(80);
	ev.daddr.v4 = ip("10.244.0.10");
	ev.dport = htons(41000);
	ev.flags = EVENT_F_IS_REPLY;
	flow_decode(&f, &ev, dir);
	j = flow_to_json(&f, "node-1");
	fl = json_object_get(j, "flow");
	assert_string_equal(str_at(fl, "source_service.name"), "db-svc");
	assert_null(json_object_get(fl, "destination_service"));
	json_decref(j);
	flow_release(&f);
	/* no directory: no service */
	ev.rev_nat_index = 7;
	flow_decode(&f, &ev, NULL);
	assert_null(f.dst_svc);
	assert_null(f.src_svc);
	flow_release(&f);
	flow_dir_put(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drop_flow_json),
		cmocka_unit_test(test_trace_and_verdict_flows),
		cmocka_unit_test(test_unknown_address_and_icmp),
		cmocka_unit_test(test_flow_outlives_directory),
		cmocka_unit_test(test_lost_events_record),
		cmocka_unit_test(test_buffer_wraps),
		cmocka_unit_test(test_service_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
