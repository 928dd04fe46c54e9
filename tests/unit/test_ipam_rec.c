/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the agent's pure parts: IPAM records (datapath/agent/ipam_rec.c) and the
 * sorted sets the map reconcile diffs (datapath/agent/kvset.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "agent/ipam_rec.h"
#include "agent/kvset.h"

static uint32_t ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void fresh(struct ipam_rec *r, const char *cidr_net, uint8_t len)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->node, "node-1");
	r->cidr = ip(cidr_net);
	r->cidr_len = len;
}

static void test_allocate_sequence(void **state)
{
	struct ipam_rec r;
	uint32_t got;
	bool changed;

	fresh(&r, "10.244.0.0", 24);
	assert_int_equal(ipam_rec_allocate(&r, "x/a", "c1", 0, NULL, 0, &got, &changed), 0);
	assert_true(changed);
	assert_int_equal(got, ip("10.244.0.10"));
	assert_int_equal(ipam_rec_allocate(&r, "x/b", "c2", 0, NULL, 0, &got, &changed), 0);
	assert_int_equal(got, ip("10.244.0.11"));
	/* idempotent per pod: same address, nothing changes */
	assert_int_equal(ipam_rec_allocate(&r, "x/a", "c1", 0, NULL, 0, &got, &changed), 0);
	assert_false(changed);
	assert_int_equal(got, ip("10.244.0.10"));
	/* a new sandbox of the same pod keeps the address, the container id follows */
	assert_int_equal(ipam_rec_allocate(&r, "x/a", "c9", 0, NULL, 0, &got, &changed), 0);
	assert_true(changed);
	assert_string_equal(ipam_rec_find_pod(&r, "x/a")->container_id, "c9");
	ipam_rec_free(&r);
}

static void test_allocate_requested_and_reserved(void **state)
{
	uint32_t reserved[] = {ip("10.244.0.10"), ip("10.244.0.12")};
	struct ipam_rec r;
	uint32_t got;
	bool changed;

	fresh(&r, "10.244.0.0", 24);
	assert_int_equal(
		ipam_rec_allocate(&r, "x/a", "", ip("10.244.0.20"), NULL, 0, &got, &changed), 0);
	assert_int_equal(got, ip("10.244.0.20"));
	/* taken by another pod, outside the range, network and broadcast addresses */
	assert_int_equal(
		ipam_rec_allocate(&r, "x/b", "", ip("10.244.0.20"), NULL, 0, &got, &changed),
		-EEXIST);
	assert_int_equal(
		ipam_rec_allocate(&r, "x/b", "", ip("10.244.1.5"), NULL, 0, &got, &changed),
		-ERANGE);
	assert_int_equal(
		ipam_rec_allocate(&r, "x/b", "", ip("10.244.0.0"), NULL, 0, &got, &changed),
		-ERANGE);
	assert_int_equal(
		ipam_rec_allocate(&r, "x/b", "", ip("10.244.0.255"), NULL, 0, &got, &changed),
		-ERANGE);
	/* the pod already holds another address */
	assert_int_equal(
		ipam_rec_allocate(&r, "x/a", "", ip("10.244.0.21"), NULL, 0, &got, &changed),
		-EBUSY);
	/* addresses pinned by other pods are skipped and cannot be requested */
	assert_int_equal(ipam_rec_allocate(&r, "x/c", "", 0, reserved, 2, &got, &changed), 0);
	assert_int_equal(got, ip("10.244.0.11"));
	assert_int_equal(ipam_rec_allocate(&r, "x/d", "", 0, reserved, 2, &got, &changed), 0);
	assert_int_equal(got, ip("10.244.0.13"));
	assert_int_equal(
		ipam_rec_allocate(&r, "x/e", "", ip("10.244.0.12"), reserved, 2, &got, &changed),
		-EEXIST);
	ipam_rec_free(&r);
}

static void test_allocate_exhausted(void **state)
{
	struct ipam_rec r;
	char pod[16];
	uint32_t got;
	bool changed;
	int i;

	fresh(&r, "10.244.7.0", 28); /* hosts .10 .. .14 */
	for (i = 0; i < 5; i++) {
		snprintf(pod, sizeof(pod), "x/p%d", i);
		assert_int_equal(ipam_rec_allocate(&r, pod, "", 0, NULL, 0, &got, &changed), 0);
	}
	assert_int_equal(got, ip("10.244.7.14"));
	assert_int_equal(ipam_rec_allocate(&r, "x/last", "", 0, NULL, 0, &got, &changed), -ENOSPC);
	ipam_rec_free(&r);
}

static void test_release(void **state)
{
	struct ipam_rec r;
	uint32_t got, rel;
	bool changed;

	fresh(&r, "10.244.0.0", 24);
	ipam_rec_allocate(&r, "x/a", "c1", 0, NULL, 0, &got, &changed);
	ipam_rec_allocate(&r, "x/b", "c2", 0, NULL, 0, &got, &changed);
	/* a late DEL of an older sandbox keeps the newer allocation */
	ipam_rec_release(&r, "x/a", "c0", &rel);
	assert_int_equal(rel, 0);
	assert_int_equal(r.n, 2);
	ipam_rec_release(&r, "x/a", "c1", &rel);
	assert_int_equal(rel, ip("10.244.0.10"));
	/* by container id alone */
	ipam_rec_release(&r, NULL, "c2", &rel);
	assert_int_equal(rel, ip("10.244.0.11"));
	assert_int_equal(r.n, 0);
	ipam_rec_release(&r, "x/zz", "", &rel);
	assert_int_equal(rel, 0);
	/* the freed address is handed out again */
	ipam_rec_allocate(&r, "x/c", "", 0, NULL, 0, &got, &changed);
	assert_int_equal(got, ip("10.244.0.10"));
	ipam_rec_free(&r);
}

static void test_format_parse(void **state)
{
	struct ipam_rec r, back;
	char err[128], *text;
	uint32_t got;
	bool changed;

	fresh(&r, "10.244.1.0", 24);
	ipam_rec_allocate(&r, "x/b", "c2", ip("10.244.1.30"), NULL, 0, &got, &changed);
	ipam_rec_allocate(&r, "x/a", "c1", 0, NULL, 0, &got, &changed);
	text = ipam_rec_format(&r);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"cidr\":\"10.244.1.0/24\""));
	assert_int_equal(ipam_rec_parse(text, strlen(text), &back, err, sizeof(err)), 0);
	assert_string_equal(back.node, "node-1");
	assert_int_equal(back.n, 2);
	/* sorted by address */
	assert_string_equal(back.v[0].pod, "x/a");
	assert_int_equal(back.v[1].ip, ip("10.244.1.30"));
	assert_string_equal(back.v[1].container_id, "c2");
	free(text);
	ipam_rec_free(&back);
	ipam_rec_free(&r);

	assert_int_equal(ipam_rec_parse("nope", 4, &back, err, sizeof(err)), -EINVAL);
	text = "{\"node\":\"n\",\"cidr\":\"10.0.0.1/24\",\"allocations\":[]}";
	assert_int_equal(ipam_rec_parse(text, strlen(text), &back, err, sizeof(err)), -EINVAL);
	text = "{\"node\":\"n\",\"cidr\":\"10.0.0.0/24\",\"allocations\":[{\"ip\":\"x\"}]}";
	assert_int_equal(ipam_rec_parse(text, strlen(text), &back, err, sizeof(err)), -EINVAL);
}

/* One key per allocation: key naming, value round trip, and what is refused. */
static void test_alloc_keys(void **state)
{
	struct ipam_alloc al = { .ip = 0 }, back;
	char node[64], key[256], err[128], *text;
	uint32_t a;

	(void)state;
	assert_int_equal(ipam_key_split("/ciliate/ipam/node-1", node, sizeof(node), &a), 0);
	assert_string_equal(node, "node-1");
	assert_int_equal(a, 0);
	assert_int_equal(ipam_key_split("/ciliate/ipam/node-1/10.244.0.12", node, sizeof(node), &a),
			 1);
	assert_string_equal(node, "node-1");
	assert_int_equal(a, ip("10.244.0.12"));
	assert_int_equal(ipam_key_split("/ciliate/ipam/node-1/bogus", node, sizeof(node), &a),
			 -EINVAL);
	assert_int_equal(ipam_key_split("/ciliate/ipam/", node, sizeof(node), &a), -EINVAL);
	assert_int_equal(ipam_key_split("/ciliate/nodes/node-1", node, sizeof(node), &a), -EINVAL);
	assert_int_equal(ipam_key_split("/ciliate/ipam/node-1", node, 4, &a), -EINVAL);

	al.ip = ip("10.244.0.12");
	snprintf(al.pod, sizeof(al.pod), "shop/web");
	snprintf(al.container_id, sizeof(al.container_id), "c0ffee");
	ipam_alloc_key("node-1", al.ip, key, sizeof(key));
	assert_string_equal(key, "/ciliate/ipam/node-1/10.244.0.12");
	text = ipam_alloc_format(&al);
	assert_non_null(text);
	assert_string_equal(text, "{\"ip\":\"10.244.0.12\",\"pod\":\"shop/web\",\"containerID\":"
				  "\"c0ffee\"}");
	assert_int_equal(ipam_alloc_parse(text, strlen(text), al.ip, &back, err, sizeof(err)), 0);
	assert_int_equal(back.ip, al.ip);
	assert_string_equal(back.pod, "shop/web");
	assert_string_equal(back.container_id, "c0ffee");
	/* the value must name the key's address */
	assert_int_equal(ipam_alloc_parse(text, strlen(text), ip("10.244.0.13"), &back, err,
					  sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "ip"));
	free(text);
	text = "{\"ip\":\"10.244.0.12\"}";
	assert_int_equal(ipam_alloc_parse(text, strlen(text), al.ip, &back, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "pod"));
	assert_int_equal(ipam_alloc_parse("[1]", 3, al.ip, &back, err, sizeof(err)), -EINVAL);
}

static void test_kvset_diff(void **state)
{
	struct kvset cur, want, ups, dels;
	uint32_t k, v;

	kvset_init(&cur, 4, 4);
	kvset_init(&want, 4, 4);
	for (k = 1; k <= 5; k++) {
		v = k * 10;
		kvset_add(&cur, &k, &v);
	}
	/* want: 1 same, 2 changed, 3 and 5 gone, 4 same, 6 new; the last of equal keys wins */
	k = 6, v = 60, kvset_add(&want, &k, &v);
	k = 2, v = 99, kvset_add(&want, &k, &v);
	k = 4, v = 40, kvset_add(&want, &k, &v);
	k = 1, v = 11, kvset_add(&want, &k, &v);
	k = 1, v = 10, kvset_add(&want, &k, &v);
	kvset_sort(&cur);
	kvset_sort(&want);
	assert_int_equal(want.n, 4);
	k = 1;
	assert_int_equal(*(const uint32_t *)kvset_get(&want, &k), 10);
	assert_int_equal(kvset_diff(&cur, &want, &ups, &dels), 0);
	assert_int_equal(ups.n, 2);
	assert_int_equal(*(const uint32_t *)kvset_key(&ups, 0), 2);
	assert_int_equal(*(const uint32_t *)kvset_val(&ups, 0), 99);
	assert_int_equal(*(const uint32_t *)kvset_key(&ups, 1), 6);
	assert_int_equal(dels.n, 2);
	assert_int_equal(*(const uint32_t *)kvset_key(&dels, 0), 3);
	assert_int_equal(*(const uint32_t *)kvset_key(&dels, 1), 5);
	kvset_free(&ups);
	kvset_free(&dels);
	/* equal sets: nothing to do */
	assert_int_equal(kvset_diff(&want, &want, &ups, &dels), 0);
	assert_int_equal(ups.n + dels.n, 0);
	kvset_free(&cur);
	kvset_free(&want);
}

static void test_lpm_canonical(void **state)
{
	uint8_t key[8] = {0}, want[8] = {0};
	uint32_t plen = 12;

	memcpy(key, &plen, 4);
	memcpy(want, &plen, 4);
	key[4] = 0xff, key[5] = 0xff, key[6] = 0xff, key[7] = 0xff;
	want[4] = 0xff, want[5] = 0xf0;
	kvset_lpm_canonical(key, sizeof(key));
	assert_memory_equal(key, want, sizeof(key));
	plen = 32; /* full length: untouched */
	memcpy(key, &plen, 4);
	key[7] = 0x5a;
	kvset_lpm_canonical(key, sizeof(key));
	assert_int_equal(key[7], 0x5a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocate_sequence),
		cmocka_unit_test(test_allocate_requested_and_reserved),
		cmocka_unit_test(test_allocate_exhausted),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_format_parse),
		cmocka_unit_test(test_alloc_keys),
		cmocka_unit_test(test_kvset_diff),
		cmocka_unit_test(test_lpm_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
