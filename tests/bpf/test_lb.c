/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF program tests of service translation (bpf/lib/lb.h) through BPF_PROG_TEST_RUN:
 * ClusterIP DNAT in from-container with valid checksums, the connection's backend kept in
 * its CT_SVC entry, reverse NAT of replies in to-container, an established connection
 * keeping its backend when the slots change, and a service with no backend dropped with
 * SERVICE_BACKEND_NOT_FOUND.
 *
 * Cast: pod A 10.244.0.21 (ep 1, the test-run device) on this node; backends R1 10.244.1.30
 * and R2 10.244.1.31 on another node; service 10.96.0.10:80/TCP (rev-NAT 7) -> :8080.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>

#include "bpf_harness.h"
#include "frames.h"
#include "pktbuild.h"
#include "replay/replay.h"

#define IP_A PB_IP4(10, 244, 0, 21)
#define IP_R1 PB_IP4(10, 244, 1, 30)
#define IP_R2 PB_IP4(10, 244, 1, 31)
#define VIP PB_IP4(10, 96, 0, 10)
#define VIP_EMPTY PB_IP4(10, 96, 0, 11)
#define ID_A 300
#define ID_R 400
#define REVNAT 7

static struct lb_key frontend(uint32_t vip, uint16_t port, uint16_t slot)
{
	struct lb_key k;

	memset(&k, 0, sizeof(k));
	k.addr.v4 = vip;
	k.dport = htons(port);
	k.backend_slot = slot;
	k.proto = IPPROTO_TCP;
	k.family = CILIATE_AF_INET;
	return k;
}

static void map_put(struct harness *h, const char *map, const void *k, const void *v)
{
	assert_int_equal(bpf_map_update_elem(datapath_map_fd(h->dp, map), k, v, BPF_ANY), 0);
}

static void put_backend(struct harness *h, uint32_t id, uint32_t ip)
{
	struct lb_backend b;

	memset(&b, 0, sizeof(b));
	b.addr.v4 = ip;
	b.port = htons(8080);
	b.proto = IPPROTO_TCP;
	b.family = CILIATE_AF_INET;
	map_put(h, MAP_LB_BACKENDS, &id, &b);
}

/* The service's slot 0 with count slots, and slot i -> backend ids[i-1]. */
static void put_service(struct harness *h, uint32_t vip, const uint32_t *ids, uint16_t count)
{
	struct lb_key k = frontend(vip, 80, 0);
	struct lb_service s;

	memset(&s, 0, sizeof(s));
	s.count = count;
	s.rev_nat_index = REVNAT;
	map_put(h, MAP_LB_SERVICES, &k, &s);
	for (uint16_t i = 1; i <= count; i++) {
		k = frontend(vip, 80, i);
		memset(&s, 0, sizeof(s));
		s.backend_id = ids[i - 1];
		s.rev_nat_index = REVNAT;
		map_put(h, MAP_LB_SERVICES, &k, &s);
	}
}

static int setup(void **state)
{
	struct harness *h = harness_new();
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, 0);
	struct lb_reverse_nat rn;
	uint32_t index = REVNAT, one = 1;

	harness_add_endpoint(h, &a, true);
	harness_add_ipcache(h, IP_A, 32, ID_A);
	harness_add_ipcache(h, IP_R1, 32, ID_R);
	harness_add_ipcache(h, IP_R2, 32, ID_R);
	put_backend(h, 1, IP_R1);
	put_backend(h, 2, IP_R2);
	put_service(h, VIP, &one, 1); /* one slot: the choice is R1 */
	put_service(h, VIP_EMPTY, NULL, 0);
	memset(&rn, 0, sizeof(rn));
	rn.addr.v4 = VIP;
	rn.port = htons(80);
	rn.family = CILIATE_AF_INET;
	map_put(h, MAP_LB_REVNAT, &index, &rn);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	harness_free(*state);
	return 0;
}

/* The destination (or source) address and port of the output frame. */
static void assert_out_addr(const struct harness *h, int dst, uint32_t ip, uint16_t port)
{
	uint32_t a;
	uint16_t p;

	memcpy(&a, h->out + 14 + (dst ? 16 : 12), 4);
	memcpy(&p, h->out + 14 + 20 + (dst ? 2 : 0), 2);
	assert_int_equal(a, ip);
	assert_int_equal(ntohs(p), port);
}

static bool ct_svc_get(struct harness *h, uint16_t sport, uint32_t vip, struct ct_entry *e)
{
	struct ct_key k;

	memset(&k, 0, sizeof(k));
	k.saddr.v4 = IP_A;
	k.daddr.v4 = vip;
	k.sport = htons(sport);
	k.dport = htons(80);
	k.proto = IPPROTO_TCP;
	k.family = CILIATE_AF_INET;
	k.scope = CT_SVC;
	return bpf_map_lookup_elem(datapath_map_fd(h->dp, MAP_CT), &k, e) == 0;
}

static void test_clusterip_dnat_and_reverse(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, VIP, 41000, 80, PB_TCP_SYN, 64);
	struct frame synack = frame_tcp4(IP_R1, IP_A, 8080, 41000, PB_TCP_SYN | PB_TCP_ACK, 63);
	struct ct_entry e;
	char why[128];

	/* to the backend: through the node's stack (the backend is remote) */
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_OK);
	assert_out_addr(h, 1, IP_R1, 8080);
	assert_out_addr(h, 0, IP_A, 41000);
	assert_int_equal(replay_checksums_valid(h->out, h->out_len, why, sizeof(why)), 0);
	/* the connection remembers its backend, and its tracked tuple carries the frontend */
	assert_true(ct_svc_get(h, 41000, VIP, &e));
	assert_int_equal(e.backend_id, 1);
	assert_int_equal(e.rev_nat_index, REVNAT);
	assert_true(harness_ct_get(h, IP_A, IP_R1, 41000, 8080, IPPROTO_TCP, CT_OUT, &e));
	assert_int_equal(e.rev_nat_index, REVNAT);

	/* the reply reaches A from the frontend */
	assert_int_equal(harness_run(h, HOOK_TO_CONTAINER, synack.buf, synack.len), TC_ACT_OK);
	assert_out_addr(h, 0, VIP, 80);
	assert_out_addr(h, 1, IP_A, 41000);
	assert_int_equal(replay_checksums_valid(h->out, h->out_len, why, sizeof(why)), 0);
	assert_int_equal(harness_event(h, EVENT_TRACE)->ct_status, CT_REPLY);
}

static void test_established_keeps_backend(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, VIP, 41001, 80, PB_TCP_SYN, 64);
	struct frame ack = frame_tcp4(IP_A, VIP, 41001, 80, PB_TCP_ACK, 64);
	struct frame other = frame_tcp4(IP_A, VIP, 41002, 80, PB_TCP_SYN, 64);
	uint32_t two = 2;

	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_OK);
	assert_out_addr(h, 1, IP_R1, 8080);
	/* the backend set changes: R2 only. The connection stays on R1, a new one goes to R2 */
	put_service(h, VIP, &two, 1);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, ack.buf, ack.len), TC_ACT_OK);
	assert_out_addr(h, 1, IP_R1, 8080);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, other.buf, other.len), TC_ACT_OK);
	assert_out_addr(h, 1, IP_R2, 8080);
}

static void test_backend_gone_picks_another(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, VIP, 41003, 80, PB_TCP_SYN, 64);
	uint32_t id = 1, two = 2;

	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_OK);
	assert_out_addr(h, 1, IP_R1, 8080);
	put_service(h, VIP, &two, 1);
	assert_int_equal(bpf_map_delete_elem(datapath_map_fd(h->dp, MAP_LB_BACKENDS), &id), 0);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_OK);
	assert_out_addr(h, 1, IP_R2, 8080);
}

static void test_no_backend_dropped(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, VIP_EMPTY, 41004, 80, PB_TCP_SYN, 64);
	const struct ciliate_event *ev;

	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_SHOT);
	ev = harness_event(h, EVENT_DROP);
	assert_non_null(ev);
	assert_int_equal(ev->reason, REASON_SERVICE_BACKEND_NOT_FOUND);
	/* the drop names the frontend the client asked for */
	assert_int_equal(ev->daddr.v4, VIP_EMPTY);
	assert_int_equal(ntohs(ev->dport), 80);
}

/* Not a service: untouched. */
static void test_other_destinations_untouched(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, IP_R1, 41005, 80, PB_TCP_SYN, 64);

	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_OK);
	assert_memory_equal(h->out + 14 + 12, syn.buf + 14 + 12, 8 + 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clusterip_dnat_and_reverse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_established_keeps_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_gone_picks_another, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_backend_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_destinations_untouched, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
