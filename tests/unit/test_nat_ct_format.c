/* SPDX-License-Identifier: Apache-2.0 */
/* `bpf nat list` and `bpf ct list`: the lines (cilium-dbg's shapes) and JSON of hand-made
 * entries, byte for byte (datapath/lb/nat_format.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "lb/nat_format.h"
#include "loader/conntrack.h"

#define SEC 1000000000ull

static uint32_t ip(const char *s)
{
	uint32_t a;

	inet_pton(AF_INET, s, &a);
	return a;
}

static struct nat_dump_entry nat(uint8_t dir, const char *s, uint16_t sp, const char *d,
				 uint16_t dp, const char *to, uint16_t top, uint8_t flags,
				 uint64_t created, uint16_t revnat)
{
	struct nat_dump_entry e;

	memset(&e, 0, sizeof(e));
	e.key.family = CILIATE_AF_INET;
	e.key.proto = IPPROTO_TCP;
	e.key.dir = dir;
	e.key.saddr.v4 = ip(s);
	e.key.daddr.v4 = ip(d);
	e.key.sport = htons(sp);
	e.key.dport = htons(dp);
	e.val.created_ns = created;
	e.val.last_used_ns = created;
	e.val.to_addr.v4 = ip(to);
	e.val.to_port = htons(top);
	e.val.flags = flags;
	e.val.rev_nat_index = revnat;
	return e;
}

static char *capture_nat(const struct nat_dump_entry *v, size_t n, uint64_t now)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	nat_print_list(f, v, n, now);
	fclose(f);
	return buf;
}

static void test_nat_lines(void **state)
{
	struct nat_dump_entry v[2] = {
		nat(NAT_DIR_INGRESS, "203.0.113.10", 80, "192.0.2.1", 41000, "10.244.0.21", 41000,
		    NAT_F_MASQUERADE | NAT_F_NEEDS_CT, 100 * SEC, 0),
		nat(NAT_DIR_EGRESS, "10.244.0.21", 41000, "203.0.113.10", 80, "192.0.2.1", 41000,
		    NAT_F_MASQUERADE | NAT_F_NEEDS_CT, 100 * SEC, 0),
	};
	char *out;

	(void)state;
	nat_dump_sort(v, 2);
	out = capture_nat(v, 2, 112 * SEC + 5);
	assert_string_equal(out,
			    "TCP OUT 10.244.0.21:41000 -> 203.0.113.10:80 XLATE_SRC "
			    "192.0.2.1:41000 Created=12sec ago NeedsCT=1\n"
			    "TCP IN 203.0.113.10:80 -> 192.0.2.1:41000 XLATE_DST "
			    "10.244.0.21:41000 Created=12sec ago NeedsCT=1\n");
	free(out);
}

static void test_nat_json(void **state)
{
	struct nat_dump_entry v[1] = {
		nat(NAT_DIR_INGRESS, "10.244.1.10", 8080, "192.0.2.1", 40001, "203.0.113.10",
		    52000, NAT_F_NODEPORT, 10 * SEC, 62032),
	};
	json_t *j, *o;
	char line[256];

	(void)state;
	assert_string_equal(nat_entry_format(line, sizeof(line), &v[0].key, &v[0].val, 10 * SEC),
			    "TCP IN 10.244.1.10:8080 -> 192.0.2.1:40001 XLATE_DST "
			    "203.0.113.10:52000 Created=0sec ago NeedsCT=0");
	j = nat_list_json(v, 1, 13 * SEC);
	assert_int_equal(json_array_size(j), 1);
	o = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(o, "protocol")), "TCP");
	assert_string_equal(json_string_value(json_object_get(o, "direction")), "IN");
	assert_string_equal(json_string_value(json_object_get(o, "source")), "10.244.1.10");
	assert_int_equal(json_integer_value(json_object_get(o, "source_port")), 8080);
	assert_string_equal(json_string_value(json_object_get(o, "destination")), "192.0.2.1");
	assert_int_equal(json_integer_value(json_object_get(o, "destination_port")), 40001);
	assert_string_equal(json_string_value(json_object_get(o, "xlate")), "DST");
	assert_string_equal(json_string_value(json_object_get(o, "to_address")), "203.0.113.10");
	assert_int_equal(json_integer_value(json_object_get(o, "to_port")), 52000);
	assert_int_equal(json_integer_value(json_object_get(o, "created_sec_ago")), 3);
	assert_true(json_is_true(json_object_get(o, "nodeport")));
	assert_true(json_is_false(json_object_get(o, "masquerade")));
	assert_true(json_is_false(json_object_get(o, "needs_ct")));
	assert_int_equal(json_integer_value(json_object_get(o, "rev_nat_index")), 62032);
	json_decref(j);
}

/* An entry stored under its normalised key, as the datapath writes it. */
static struct ct_dump_entry ct(uint8_t scope, const char *s, uint16_t sp, const char *d,
			       uint16_t dp)
{
	struct ct_dump_entry e;
	struct ct_key orig;
	uint8_t flags;

	memset(&e, 0, sizeof(e));
	memset(&orig, 0, sizeof(orig));
	orig.family = CILIATE_AF_INET;
	orig.proto = IPPROTO_TCP;
	orig.scope = scope;
	orig.saddr.v4 = ip(s);
	orig.daddr.v4 = ip(d);
	orig.sport = htons(sp);
	orig.dport = htons(dp);
	ct_key_normalise(&orig, &e.key, &flags);
	e.val.flags = flags;
	return e;
}

static void test_ct_lines(void **state)
{
	/* a service connection: the tuple before DNAT, its backend */
	struct ct_dump_entry svc = ct(CT_SVC, "10.244.0.21", 41000, "10.96.0.10", 80);
	/* the same connection to the backend, stored reversed (the source orders higher) */
	struct ct_dump_entry out = ct(CT_OUT, "10.244.0.21", 41000, "10.244.0.5", 8080);
	char line[512], *buf = NULL;
	struct ct_dump_entry v[2];
	size_t len = 0;
	FILE *f;

	(void)state;
	svc.val.expires_ns = 21700 * SEC + 3;
	svc.val.packets_fwd = 3;
	svc.val.bytes_fwd = 180;
	svc.val.tcp_flags_fwd = 0x12;
	svc.val.tcp_state = CT_TCP_ESTABLISHED;
	svc.val.src_identity = 300;
	svc.val.backend_id = 5;
	svc.val.rev_nat_index = 7;
	assert_string_equal(ct_entry_format(line, sizeof(line), &svc.key, &svc.val, 100 * SEC, 1),
			    "TCP OUT 10.244.0.21:41000 -> 10.96.0.10:80 service expires=21700 "
			    "(remaining: 21600 sec(s)) RxPackets=0 RxBytes=0 RxFlagsSeen=0x0 "
			    "LastRxReport=0 TxPackets=3 TxBytes=180 TxFlagsSeen=0x12 "
			    "LastTxReport=0 Flags=0x10 [ SeenNonSyn ] RevNAT=7 "
			    "SourceSecurityID=300 IfIndex=0 BackendID=5");
	assert_true(out.val.flags & CT_F_REVERSED);
	out.val.expires_ns = 160 * SEC;
	out.val.packets_fwd = 2;
	out.val.bytes_fwd = 120;
	out.val.packets_rev = 1;
	out.val.bytes_rev = 60;
	out.val.tcp_flags_fwd = 0x11; /* FIN, ACK */
	out.val.tcp_flags_rev = 0x12;
	out.val.tcp_state = CT_TCP_CLOSING;
	out.val.src_identity = 300;
	out.val.rev_nat_index = 7;
	out.val.flags |= CT_F_NODEPORT;
	v[0] = out;
	v[1] = svc;
	ct_dump_sort(v, 2);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	ct_print_list(f, v, 2, 100 * SEC, 0);
	fclose(f);
	/* the original tuple, whatever the key's order; sorted by it (10.96 < 10.244 bytewise) */
	assert_string_equal(buf,
			    "TCP OUT 10.244.0.21:41000 -> 10.96.0.10:80 service expires=21700 "
			    "RxPackets=0 RxBytes=0 RxFlagsSeen=0x0 LastRxReport=0 TxPackets=3 "
			    "TxBytes=180 TxFlagsSeen=0x12 LastTxReport=0 Flags=0x10 [ SeenNonSyn ] "
			    "RevNAT=7 SourceSecurityID=300 IfIndex=0 BackendID=5\n"
			    "TCP OUT 10.244.0.21:41000 -> 10.244.0.5:8080 expires=160 "
			    "RxPackets=1 RxBytes=60 RxFlagsSeen=0x12 LastRxReport=0 TxPackets=2 "
			    "TxBytes=120 TxFlagsSeen=0x11 LastTxReport=0 Flags=0x32 [ TxClosing "
			    "SeenNonSyn NodePort ] RevNAT=7 SourceSecurityID=300 IfIndex=0\n");
	free(buf);
}

static void test_ct_json(void **state)
{
	struct ct_dump_entry v[1] = { ct(CT_IN, "10.244.1.7", 5000, "10.244.0.21", 80) };
	json_t *j, *o;

	(void)state;
	v[0].val.expires_ns = 70 * SEC;
	v[0].val.tcp_state = CT_TCP_SYN_SENT;
	v[0].val.tcp_flags_fwd = 0x02;
	v[0].val.src_identity = 301;
	v[0].val.rule_id = 4;
	j = ct_list_json(v, 1, 10 * SEC);
	o = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(o, "scope")), "IN");
	assert_string_equal(json_string_value(json_object_get(o, "source")), "10.244.1.7");
	assert_int_equal(json_integer_value(json_object_get(o, "source_port")), 5000);
	assert_string_equal(json_string_value(json_object_get(o, "destination")), "10.244.0.21");
	assert_int_equal(json_integer_value(json_object_get(o, "destination_port")), 80);
	assert_int_equal(json_integer_value(json_object_get(o, "expires_in_sec")), 60);
	assert_string_equal(json_string_value(json_object_get(o, "tcp_state")), "syn_sent");
	assert_int_equal(json_integer_value(json_object_get(o, "src_identity")), 301);
	assert_int_equal(json_integer_value(json_object_get(o, "rule_id")), 4);
	assert_null(json_object_get(o, "backend_id"));
	assert_int_equal(json_integer_value(json_object_get(o, "cilium_flags")), 0);
	json_decref(j);
	/* a service entry names its backend */
	v[0] = ct(CT_SVC, "10.244.0.21", 41000, "10.96.0.10", 80);
	v[0].val.backend_id = 9;
	j = ct_list_json(v, 1, 0);
	o = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(o, "scope")), "SERVICE");
	assert_int_equal(json_integer_value(json_object_get(o, "backend_id")), 9);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nat_lines),
		cmocka_unit_test(test_nat_json),
		cmocka_unit_test(test_ct_lines),
		cmocka_unit_test(test_ct_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
