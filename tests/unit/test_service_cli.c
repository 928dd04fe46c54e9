/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the service text forms (datapath/lb/lb_format.c) behind `ciliate service
 * list` and `ciliate bpf lb list`: keys, slot entries, flag words, and the two tables byte
 * for byte (cilium-dbg's shapes, REFERENCE.md section 3). */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lb/lb_format.h"

static struct lb_key key4(const char *ip, uint16_t port, uint8_t proto, uint16_t slot,
			  uint8_t scope)
{
	struct lb_key k;

	memset(&k, 0, sizeof(k));
	assert_int_equal(inet_pton(AF_INET, ip, &k.addr.v4), 1);
	k.dport = htons(port);
	k.proto = proto;
	k.backend_slot = slot;
	k.scope = scope;
	k.family = CILIATE_AF_INET;
	return k;
}

static struct lb_backend backend4(const char *ip, uint16_t port, uint8_t state)
{
	struct lb_backend b;

	memset(&b, 0, sizeof(b));
	assert_int_equal(inet_pton(AF_INET, ip, &b.addr.v4), 1);
	b.port = htons(port);
	b.proto = IPPROTO_TCP;
	b.state = state;
	b.family = CILIATE_AF_INET;
	return b;
}

/* Runs print into a memory stream and returns what it wrote (caller frees). */
static char *capture_bpf(const struct lb_dump *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	lb_print_bpf_list(f, d);
	fclose(f);
	return buf;
}

static char *capture_services(json_t *services)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	lb_print_service_list(f, services);
	fclose(f);
	return buf;
}

static void test_key_format(void **state)
{
	struct lb_key k = key4("10.96.0.10", 53, IPPROTO_UDP, 0, LB_SCOPE_EXTERNAL);
	char buf[LB_TEXT_MAX];

	assert_string_equal(lb_key_format(buf, sizeof(buf), &k), "10.96.0.10:53/UDP (0)");
	k = key4("192.0.2.1", 30080, IPPROTO_TCP, 3, LB_SCOPE_INTERNAL);
	assert_string_equal(lb_key_format(buf, sizeof(buf), &k), "192.0.2.1:30080/TCP/i (3)");
	memset(&k.addr, 0, sizeof(k.addr));
	inet_pton(AF_INET6, "fd00::7", k.addr.bytes);
	k.family = CILIATE_AF_INET6;
	k.scope = LB_SCOPE_EXTERNAL;
	assert_string_equal(lb_key_format(buf, sizeof(buf), &k), "[fd00::7]:30080/TCP (3)");
}

/* REFERENCE.md section 3's sample row, and a backend slot. */
static void test_entry_format(void **state)
{
	struct lb_key k = key4("10.96.0.10", 53, IPPROTO_UDP, 0, LB_SCOPE_EXTERNAL);
	struct lb_service v = {.count = 2, .rev_nat_index = 3};
	struct lb_backend b = backend4("10.244.1.201", 8080, LB_BACKEND_ACTIVE);
	char buf[2 * LB_TEXT_MAX];

	assert_string_equal(lb_entry_format(buf, sizeof(buf), &k, &v, NULL),
			    "0.0.0.0:0 (3) (0) [ClusterIP, non-routable]");
	k = key4("10.96.0.20", 80, IPPROTO_TCP, 1, LB_SCOPE_EXTERNAL);
	v = (struct lb_service){.backend_id = 77, .rev_nat_index = 9};
	assert_string_equal(lb_entry_format(buf, sizeof(buf), &k, &v, &b),
			    "10.244.1.201:8080/TCP (9) (1)");
	assert_string_equal(lb_entry_format(buf, sizeof(buf), &k, &v, NULL),
			    "backend 77 not found");
	k.family = CILIATE_AF_INET6;
	k.backend_slot = 0;
	assert_string_equal(lb_entry_format(buf, sizeof(buf), &k, &v, NULL),
			    "[::]:0 (9) (0) [ClusterIP, non-routable]");
}

/* Cilium's words in Cilium's order. */
static void test_flags_words(void **state)
{
	char buf[LB_TEXT_MAX];

	assert_string_equal(lb_flags_format(buf, sizeof(buf), LB_SVC_F_NODEPORT | LB_SVC_F_ROUTABLE,
					    0),
			    "NodePort");
	assert_string_equal(
		lb_flags_format(buf, sizeof(buf),
				LB_SVC_F_LOADBALANCER | LB_SVC_F_ROUTABLE | LB_SVC_F_EXT_LOCAL_SCOPE |
					LB_SVC_F_AFFINITY | LB_SVC_F_SOURCE_RANGE,
				LB_SVC_F2_TWO_SCOPES | LB_SVC_F2_INT_LOCAL_SCOPE |
					LB_SVC_F2_FWD_MODE_DSR | LB_SVC_F2_MAGLEV),
		"LoadBalancer, Local, InternalLocal, two-scopes, sessionAffinity, check "
		"source-range, dsr, maglev");
	assert_string_equal(lb_flags_format(buf, sizeof(buf),
					    LB_SVC_F_EXTERNAL_IP | LB_SVC_F_ROUTABLE, 0),
			    "ExternalIPs");
	assert_string_equal(lb_svc_type(0), "ClusterIP");
	assert_string_equal(lb_backend_state_name(LB_BACKEND_TERMINATING), "terminating");
	/* a buffer too short cuts whole words */
	assert_string_equal(lb_flags_format(buf, 14, LB_SVC_F_NODEPORT, 0), "NodePort");
}

/* Two frontends given out of order, one backend missing from the backend map. */
static void test_bpf_list_table(void **state)
{
	struct lb_dump_svc svc[] = {
		{key4("10.96.0.10", 80, IPPROTO_TCP, 2, 0), {.backend_id = 8, .rev_nat_index = 5}},
		{key4("10.96.0.10", 80, IPPROTO_TCP, 0, 0),
		 {.count = 2, .rev_nat_index = 5}},
		{key4("192.0.2.1", 30080, IPPROTO_TCP, 0, 0),
		 {.count = 1, .rev_nat_index = 6, .flags = LB_SVC_F_NODEPORT | LB_SVC_F_ROUTABLE}},
		{key4("10.96.0.10", 80, IPPROTO_TCP, 1, 0), {.backend_id = 7, .rev_nat_index = 5}},
		{key4("192.0.2.1", 30080, IPPROTO_TCP, 1, 0),
		 {.backend_id = 9, .rev_nat_index = 6, .flags = LB_SVC_F_NODEPORT}},
	};
	struct lb_dump_backend be[] = {
		{8, backend4("10.244.1.10", 8080, LB_BACKEND_ACTIVE)},
		{7, backend4("10.244.0.11", 8080, LB_BACKEND_ACTIVE)},
	};
	struct lb_dump d = {.svc = malloc(sizeof(svc)), .nsvc = 5,
			    .backends = malloc(sizeof(be)), .nbackends = 2};
	char *out;

	memcpy(d.svc, svc, sizeof(svc));
	memcpy(d.backends, be, sizeof(be));
	lb_dump_sort(&d);
	out = capture_bpf(&d);
	assert_string_equal(out,
			    "SERVICE ADDRESS           BACKEND ADDRESS (REVNAT_ID) (SLOT)\n"
			    "10.96.0.10:80/TCP (0)     0.0.0.0:0 (5) (0) [ClusterIP, non-routable]\n"
			    "10.96.0.10:80/TCP (1)     10.244.0.11:8080/TCP (5) (1)\n"
			    "10.96.0.10:80/TCP (2)     10.244.1.10:8080/TCP (5) (2)\n"
			    "192.0.2.1:30080/TCP (0)   0.0.0.0:0 (6) (0) [NodePort]\n"
			    "192.0.2.1:30080/TCP (1)   backend 9 not found\n");
	free(out);
	lb_dump_free(&d);
}

static void test_bpf_list_json(void **state)
{
	struct lb_dump_svc svc[] = {
		{key4("10.96.0.10", 80, IPPROTO_TCP, 0, 0), {.count = 1, .rev_nat_index = 5}},
	};
	struct lb_dump d = {.svc = malloc(sizeof(svc)), .nsvc = 1};
	json_t *j, *s;

	memcpy(d.svc, svc, sizeof(svc));
	j = lb_bpf_list_json(&d);
	s = json_array_get(json_object_get(j, "services"), 0);
	assert_string_equal(json_string_value(json_object_get(s, "service")),
			    "10.96.0.10:80/TCP (0)");
	assert_string_equal(json_string_value(json_object_get(s, "entry")),
			    "0.0.0.0:0 (5) (0) [ClusterIP, non-routable]");
	assert_int_equal(json_integer_value(json_object_get(s, "port")), 80);
	assert_int_equal(json_integer_value(json_object_get(s, "revNatIndex")), 5);
	assert_int_equal(json_array_size(json_object_get(j, "backends")), 0);
	json_decref(j);
	lb_dump_free(&d);
}

/* Sorted by id; continuation rows hold only the backend; no backend: an empty column. */
static void test_service_list_table(void **state)
{
	json_error_t e;
	json_t *svcs = json_loads(
		"[{\"id\": 12, \"frontend\": \"192.0.2.1:30080/TCP\", \"type\": \"NodePort\","
		"  \"backends\": []},"
		" {\"id\": 4, \"frontend\": \"10.104.239.135:80/TCP\", \"type\": \"ClusterIP\","
		"  \"backends\": [{\"address\": \"10.217.0.107:80/TCP\", \"state\": \"active\"},"
		"                {\"address\": \"10.217.0.108:80/TCP\", \"state\": \"active\"}]}]",
		0, &e);
	char *out;

	assert_non_null(svcs);
	out = capture_services(svcs);
	assert_string_equal(out,
			    "ID   Frontend                Service Type   Backend\n"
			    "4    10.104.239.135:80/TCP   ClusterIP      1 => 10.217.0.107:80/TCP "
			    "(active)\n"
			    "                                            2 => 10.217.0.108:80/TCP "
			    "(active)\n"
			    "12   192.0.2.1:30080/TCP     NodePort\n");
	free(out);
	json_decref(svcs);
	svcs = json_array();
	out = capture_services(svcs);
	assert_string_equal(out, "ID   Frontend   Service Type   Backend\n");
	free(out);
	json_decref(svcs);
}

/* Tables as ciliate_lb_maglev holds them (header, then entries). */
static struct lb_maglev_table *maglev_tables(void)
{
	static const uint32_t t1[5] = {4, 2, 4, 2, 7}, t2[3] = {9, 9, 9};
	struct lb_maglev_table *t = calloc(2, sizeof(*t));

	assert_non_null(t);
	assert_int_equal(lb_maglev_table_make(&t[0], LB_MAGLEV_KEY(1, LB_SCOPE_EXTERNAL), 5,
					      0x71dcda46, 0x92505688, t1),
			 0);
	assert_int_equal(lb_maglev_table_make(&t[1], LB_MAGLEV_KEY(11700, LB_SCOPE_INTERNAL), 3,
					      0x71dcda46, 0x92505688, t2),
			 0);
	return t;
}

static void test_maglev_table_make(void **state)
{
	struct lb_maglev_table *t = maglev_tables(), c;
	static const uint32_t ids[5] = {4, 2, 4, 2, 7};

	assert_int_equal(t[0].nwords, LB_MAGLEV_HDR + 5);
	assert_int_equal(t[0].words[LB_MAGLEV_HDR_SIZE], 5);
	assert_int_equal(t[0].words[LB_MAGLEV_HDR_SEED4], 0x71dcda46);
	assert_int_equal(t[0].words[LB_MAGLEV_HDR_SEED6], 0x92505688);
	assert_int_equal(t[0].words[LB_MAGLEV_HDR + 4], 7);
	assert_int_equal(t[1].key, 11700u | (1u << 16));
	assert_true(lb_maglev_table_equal(&t[0], &t[0]));
	assert_false(lb_maglev_table_equal(&t[0], &t[1]));
	/* the same entries under another seed are another table (the datapath hashes with it) */
	assert_int_equal(lb_maglev_table_make(&c, t[0].key, 5, 1, 0x92505688, ids), 0);
	assert_false(lb_maglev_table_equal(&t[0], &c));
	free(c.words);
	assert_int_equal(lb_maglev_table_make(&c, 1, 0, 0, 0, ids), -EINVAL);
	assert_int_equal(lb_maglev_table_make(&c, 1, LB_MAGLEV_M_MAX + 1, 0, 0, ids), -EINVAL);
	lb_maglev_tables_free(t, 2);
}

static void test_maglev_list_table(void **state)
{
	struct lb_maglev_table *t = maglev_tables();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	lb_print_maglev_list(f, t, 2);
	fclose(f);
	assert_string_equal(buf, "SVC ID    LOOKUP TABLE\n"
				 "1         [4 2 4 2 7]\n"
				 "11700/i   [9 9 9]\n");
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	lb_print_maglev_list(f, t, 0);
	fclose(f);
	assert_string_equal(buf, "SVC ID   LOOKUP TABLE\n");
	free(buf);
	lb_maglev_tables_free(t, 2);
}

static void test_maglev_list_json(void **state)
{
	struct lb_maglev_table *t = maglev_tables();
	json_t *j = lb_maglev_list_json(t, 2), *e;

	assert_int_equal(json_array_size(j), 2);
	e = json_array_get(j, 1);
	assert_int_equal(json_integer_value(json_object_get(e, "id")), 11700);
	assert_string_equal(json_string_value(json_object_get(e, "scope")), "internal");
	assert_int_equal(json_integer_value(json_object_get(e, "size")), 3);
	e = json_array_get(j, 0);
	assert_int_equal(json_integer_value(json_object_get(e, "seed4")), 0x71dcda46);
	assert_int_equal(json_array_size(json_object_get(e, "table")), 5);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(e, "table"), 4)), 7);
	json_decref(j);
	lb_maglev_tables_free(t, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_format),	   cmocka_unit_test(test_entry_format),
		cmocka_unit_test(test_flags_words),	   cmocka_unit_test(test_bpf_list_table),
		cmocka_unit_test(test_bpf_list_json),	   cmocka_unit_test(test_service_list_table),
		cmocka_unit_test(test_maglev_table_make),  cmocka_unit_test(test_maglev_list_table),
		cmocka_unit_test(test_maglev_list_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
