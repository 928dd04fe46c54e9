/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF program tests of service translation (bpf/lib/lb.h) through BPF_PROG_TEST_RUN:
 * ClusterIP DNAT in from-container with valid checksums, the connection's backend kept in
 * its CT_SVC entry, reverse NAT of replies in to-container, an established connection
 * keeping its backend when the slots change, and a service with no backend dropped with
 * SERVICE_BACKEND_NOT_FOUND. Backend selection (lb_pick): Maglev takes the entry the
 * userspace table names for the tuple hash, the same client tuple to another VIP of the same
 * backends takes the same backend, a new table (another M) applies at once, terminating
 * backends keep their connections and take no new ones; ClientIP affinity keeps a client
 * on one backend, expires exactly at last_used + timeout (the program's clock), and drops a
 * backend that left the service.
 *
 * Cast: pod A 10.244.0.21 (ep 1, the test-run device) on this node; backends R1 10.244.1.30
 * and R2 10.244.1.31 on another node; service 10.96.0.10:80/TCP (rev-NAT 7) -> :8080.
 * Selection cases: backends R1..R4 (ids 1..4, 10.244.1.30-33); Maglev services
 * 10.96.0.20 and 10.96.0.21 (rev-NAT 20, 21); affinity service 10.96.0.30 (rev-NAT 30,
 * timeout 10 s), random or Maglev.
 */
#include <arpa/inet.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_harness.h"
#include "frames.h"
#include "lb/maglev.h"
#include "loader/lb_maglev.h"
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

/* The service's slot 0 with count slots, and slot i -> backend ids[i-1]. */
static void put_service(struct harness *h, uint32_t vip, const uint32_t *ids, uint16_t count)
{
	struct lb_key k = frontend(vip, 80, 0);
	struct lb_service s;

	memset(&s, 0, sizeof(s));
	s.count = count;
	s.rev_nat_index = REVNAT;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
	for (uint16_t i = 1; i <= count; i++) {
		k = frontend(vip, 80, i);
		memset(&s, 0, sizeof(s));
		s.backend_id = ids[i - 1];
		s.rev_nat_index = REVNAT;
		harness_map_put(h, MAP_LB_SERVICES, &k, &s);
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
	harness_lb_backend(h, 1, IP_R1);
	harness_lb_backend(h, 2, IP_R2);
	put_service(h, VIP, &one, 1); /* one slot: the choice is R1 */
	put_service(h, VIP_EMPTY, NULL, 0);
	memset(&rn, 0, sizeof(rn));
	rn.addr.v4 = VIP;
	rn.port = htons(80);
	rn.family = CILIATE_AF_INET;
	harness_map_put(h, MAP_LB_REVNAT, &index, &rn);
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

/* ---- backend selection: Maglev and ClientIP affinity --------------------------------- */

#define VIP_MG PB_IP4(10, 96, 0, 20)
#define VIP_MG2 PB_IP4(10, 96, 0, 21)
#define VIP_AF PB_IP4(10, 96, 0, 30)
#define REV_MG 20
#define REV_MG2 21
#define REV_AF 30
#define AF_TIMEOUT 10 /* seconds */
#define NBE 4

static const uint32_t be_ip[NBE + 1] = {0, PB_IP4(10, 244, 1, 30), PB_IP4(10, 244, 1, 31),
					PB_IP4(10, 244, 1, 32), PB_IP4(10, 244, 1, 33)};

/* Slot 0 (count, flags, slot0_id: the affinity timeout) and slots 1..count of a frontend;
 * slots past count left from before are deleted. */
static void put_frontend(struct harness *h, uint32_t vip, uint16_t rev, const uint32_t *ids,
			 uint16_t count, uint8_t flags, uint8_t flags2, uint32_t slot0_id)
{
	struct lb_key k = frontend(vip, 80, 0);
	struct lb_service s;

	for (uint16_t i = 1; i <= count; i++) {
		k = frontend(vip, 80, i);
		memset(&s, 0, sizeof(s));
		s.backend_id = ids[i - 1];
		s.rev_nat_index = rev;
		s.flags = flags;
		s.flags2 = flags2;
		harness_map_put(h, MAP_LB_SERVICES, &k, &s);
	}
	for (uint16_t i = count + 1; i <= NBE; i++) {
		k = frontend(vip, 80, i);
		bpf_map_delete_elem(datapath_map_fd(h->dp, MAP_LB_SERVICES), &k);
	}
	k = frontend(vip, 80, 0);
	memset(&s, 0, sizeof(s));
	s.backend_id = slot0_id;
	s.count = count;
	s.rev_nat_index = rev;
	s.flags = flags;
	s.flags2 = flags2;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
}

static void put_backend_state(struct harness *h, uint32_t id, uint8_t state)
{
	struct lb_backend b;

	memset(&b, 0, sizeof(b));
	b.addr.v4 = be_ip[id];
	b.port = htons(8080);
	b.proto = IPPROTO_TCP;
	b.family = CILIATE_AF_INET;
	b.state = state;
	harness_map_put(h, MAP_LB_BACKENDS, &id, &b);
}

static struct maglev_seed test_seed(void)
{
	struct maglev_seed seed;
	struct diag d = {""};

	assert_int_equal(maglev_seed_parse(MAGLEV_HASH_SEED_DEFAULT, &seed, &d), 0);
	return seed;
}

/* The table of backends ids[0..n-1] (named as the agent names them), size m, computed by
 * datapath/lb/maglev.c and installed for (rev, external scope) as the agent does. */
static uint32_t *put_maglev(struct harness *h, uint16_t rev, const uint32_t *ids, size_t n,
			    uint32_t m)
{
	struct maglev_seed seed = test_seed();
	char names[NBE][MAGLEV_NAME_MAX];
	struct maglev_backend mb[NBE];
	uint32_t *table = calloc(m, sizeof(*table));
	struct lb_maglev_table t;
	struct diag d = {""};

	assert_non_null(table);
	for (size_t i = 0; i < n; i++) {
		uint32_t ip = be_ip[ids[i]];

		assert_true(maglev_backend_name(names[i], sizeof(names[i]), AF_INET, &ip, 8080,
						"TCP") > 0);
		mb[i] = (struct maglev_backend){.name = names[i], .id = ids[i], .weight = 1};
	}
	assert_int_equal(maglev_build(mb, n, m, &seed, table), 0);
	assert_int_equal(lb_maglev_table_make(&t, LB_MAGLEV_KEY(rev, LB_SCOPE_EXTERNAL), m,
					      seed.jhash0, seed.jhash1, table),
			 0);
	if (lb_maglev_map_set(datapath_map_fd(h->dp, MAP_LB_MAGLEV), &t, &d))
		fail_msg("lb_maglev_map_set: %s", d.msg);
	free(t.words);
	return table;
}

static void put_match(struct harness *h, uint32_t id, uint16_t rev, bool present)
{
	struct lb_affinity_match k;
	uint32_t one = 1;

	memset(&k, 0, sizeof(k));
	k.backend_id = id;
	k.rev_nat_index = rev;
	k.scope = LB_SCOPE_EXTERNAL;
	if (present)
		harness_map_put(h, MAP_LB_AFFINITY_MATCH, &k, &one);
	else
		bpf_map_delete_elem(datapath_map_fd(h->dp, MAP_LB_AFFINITY_MATCH), &k);
}

static int setup_select(void **state)
{
	struct harness *h = harness_new();
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, 0);
	const uint16_t revs[] = {REV_MG, REV_MG2, REV_AF};
	const uint32_t vips[] = {VIP_MG, VIP_MG2, VIP_AF};
	uint32_t ids[NBE] = {1, 2, 3, 4};

	harness_add_endpoint(h, &a, true);
	harness_add_ipcache(h, IP_A, 32, ID_A);
	for (uint32_t id = 1; id <= NBE; id++) {
		harness_add_ipcache(h, be_ip[id], 32, ID_R);
		put_backend_state(h, id, LB_BACKEND_ACTIVE);
	}
	for (size_t i = 0; i < 3; i++) {
		struct lb_reverse_nat rn;
		uint32_t index = revs[i];

		memset(&rn, 0, sizeof(rn));
		rn.addr.v4 = vips[i];
		rn.port = htons(80);
		rn.family = CILIATE_AF_INET;
		harness_map_put(h, MAP_LB_REVNAT, &index, &rn);
	}
	put_frontend(h, VIP_MG, REV_MG, ids, NBE, 0, LB_SVC_F2_MAGLEV, 0);
	put_frontend(h, VIP_MG2, REV_MG2, ids, NBE, 0, LB_SVC_F2_MAGLEV, 0);
	put_frontend(h, VIP_AF, REV_AF, ids, NBE, LB_SVC_F_AFFINITY, 0, AF_TIMEOUT);
	for (uint32_t id = 1; id <= NBE; id++)
		put_match(h, id, REV_AF, true);
	*state = h;
	return 0;
}

/* The backend id the last run translated to (by its address), 0 if none of R1..R4. */
static uint32_t out_backend(const struct harness *h)
{
	uint32_t a;

	memcpy(&a, h->out + 14 + 16, 4);
	for (uint32_t id = 1; id <= NBE; id++)
		if (a == be_ip[id])
			return id;
	return 0;
}

static uint32_t syn_to(struct harness *h, uint32_t vip, uint16_t sport)
{
	struct frame syn = frame_tcp4(IP_A, vip, sport, 80, PB_TCP_SYN, 64);

	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_OK);
	return out_backend(h);
}

static uint32_t predicted(const uint32_t *table, uint32_t m, uint16_t sport, bool affinity)
{
	struct maglev_seed seed = test_seed();

	return table[maglev_index4(IP_A, affinity ? 0 : htons(sport), htons(80), IPPROTO_TCP,
				   seed.jhash0, m)];
}

static void test_maglev_picks_table_entry(void **state)
{
	struct harness *h = *state;
	uint32_t ids[NBE] = {1, 2, 3, 4}, seen = 0;
	uint32_t *table = put_maglev(h, REV_MG, ids, NBE, 251);

	for (uint16_t sport = 42000; sport < 42040; sport++) {
		uint32_t want = predicted(table, 251, sport, false), got = syn_to(h, VIP_MG, sport);

		assert_int_equal(got, want);
		seen |= 1u << got;
	}
	/* the tuples spread over several backends (the check is not about one entry) */
	assert_true(__builtin_popcount(seen) >= 3);
	free(table);
}

/* The destination address is not hashed: the same client tuple to another VIP whose table
 * was built from the same backends (given in another order, with the same ids) picks the
 * same backend. */
static void test_maglev_same_backend_other_vip(void **state)
{
	struct harness *h = *state;
	uint32_t ids[NBE] = {1, 2, 3, 4}, rev_ids[NBE] = {4, 3, 2, 1}, seen = 0;
	uint32_t *t1 = put_maglev(h, REV_MG, ids, NBE, 251);
	uint32_t *t2 = put_maglev(h, REV_MG2, rev_ids, NBE, 251);

	assert_memory_equal(t1, t2, 251 * sizeof(*t1));
	for (uint16_t sport = 43000; sport < 43030; sport++) {
		uint32_t b1 = syn_to(h, VIP_MG, sport), b2 = syn_to(h, VIP_MG2, sport);

		assert_int_equal(b1, b2);
		assert_int_equal(b1, predicted(t1, 251, sport, false));
		seen |= 1u << b1;
	}
	assert_true(__builtin_popcount(seen) >= 3);
	free(t1);
	free(t2);
}

/* Another table size (bpf-lb-maglev-table-size changed): the table replaced under the same
 * key with its new M applies to the next connection, without reloading anything. */
static void test_maglev_table_size_changes(void **state)
{
	struct harness *h = *state;
	uint32_t ids[NBE] = {1, 2, 3, 4}, differ = 0;
	uint32_t *small = put_maglev(h, REV_MG, ids, NBE, 251);
	uint32_t *big = put_maglev(h, REV_MG, ids, NBE, 1021);

	for (uint16_t sport = 44000; sport < 44040; sport++) {
		uint32_t want = predicted(big, 1021, sport, false);

		assert_int_equal(syn_to(h, VIP_MG, sport), want);
		differ += want != predicted(small, 251, sport, false);
	}
	assert_true(differ > 0); /* the old table would have answered otherwise */
	free(small);
	free(big);
}

/* A backend turning terminating under Maglev: it leaves the slots and the new table, stays in
 * the backend map; its established connection keeps it, new connections never take it. */
static void test_maglev_terminating_drains(void **state)
{
	struct harness *h = *state;
	uint32_t ids[NBE] = {1, 2, 3, 4}, left[NBE - 1], victim, *t2, n = 0;
	uint32_t *t1 = put_maglev(h, REV_MG, ids, NBE, 251);
	uint16_t sport = 45000;
	struct frame ack;

	victim = syn_to(h, VIP_MG, sport);
	assert_int_not_equal(victim, 0);
	for (uint32_t id = 1; id <= NBE; id++)
		if (id != victim)
			left[n++] = id;
	put_backend_state(h, victim, LB_BACKEND_TERMINATING);
	t2 = put_maglev(h, REV_MG, left, NBE - 1, 251);
	put_frontend(h, VIP_MG, REV_MG, left, NBE - 1, 0, LB_SVC_F2_MAGLEV, 0);

	ack = frame_tcp4(IP_A, VIP_MG, sport, 80, PB_TCP_ACK, 64);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, ack.buf, ack.len), TC_ACT_OK);
	assert_int_equal(out_backend(h), victim);
	for (uint16_t p = 45001; p < 45061; p++) {
		uint32_t got = syn_to(h, VIP_MG, p);

		assert_int_not_equal(got, victim);
		assert_int_equal(got, predicted(t2, 251, p, false));
	}
	free(t1);
	free(t2);
}

static bool affinity_get(struct harness *h, uint16_t rev, struct lb_affinity_value *v)
{
	struct lb_affinity_key k;

	memset(&k, 0, sizeof(k));
	k.client.v4 = IP_A;
	k.rev_nat_index = rev;
	k.family = CILIATE_AF_INET;
	return bpf_map_lookup_elem(datapath_map_fd(h->dp, MAP_LB_AFFINITY), &k, v) == 0;
}

static void affinity_set(struct harness *h, uint16_t rev, uint32_t id, uint64_t last_used)
{
	struct lb_affinity_key k;
	struct lb_affinity_value v;

	memset(&k, 0, sizeof(k));
	k.client.v4 = IP_A;
	k.rev_nat_index = rev;
	k.family = CILIATE_AF_INET;
	memset(&v, 0, sizeof(v));
	v.backend_id = id;
	v.last_used_ns = last_used;
	harness_map_put(h, MAP_LB_AFFINITY, &k, &v);
}

/* Random selection with ClientIP affinity: every new connection of the client goes where
 * its first went (without affinity, 30 random picks over 4 backends would not). */
static void test_affinity_sticky(void **state)
{
	struct harness *h = *state;
	struct lb_affinity_value v;
	uint32_t first = syn_to(h, VIP_AF, 46000);

	assert_int_not_equal(first, 0);
	assert_true(affinity_get(h, REV_AF, &v));
	assert_int_equal(v.backend_id, first);
	for (uint16_t sport = 46001; sport < 46031; sport++)
		assert_int_equal(syn_to(h, VIP_AF, sport), first);
}

struct clock_cache_val { /* bpf/lib/clock.h struct clock_cache */
	uint64_t jiffies;
	uint64_t ns;
};

/* The program's clock on `cpu` (the per-CPU cache of clock.h). */
static struct clock_cache_val prog_clock(struct harness *h, int cpu)
{
	int ncpu = libbpf_num_possible_cpus();
	struct clock_cache_val *v = calloc((size_t)ncpu, sizeof(*v)), r;
	uint32_t zero = 0;

	assert_non_null(v);
	assert_int_equal(bpf_map_lookup_elem(datapath_map_fd(h->dp, "clock_cache"), &zero, v), 0);
	r = v[cpu];
	free(v);
	return r;
}

/*
 * The expiry boundary, exactly, on the program's own clock. The test runs pinned to one CPU;
 * within one jiffy the program's now is the value its clock cache holds (clock.h), so after a
 * run the cache tells the next run's now, if the tick does not move in between (then the
 * step is tried again). Maglev + affinity: the fresh pick is the table's entry for the
 * client (source port left out), so an entry naming another backend shows which happened.
 *   last_used = now - timeout + 1 ns: sticky, and last_used becomes now;
 *   last_used = now - timeout: expired, deleted, the table's backend recorded.
 */
static void test_affinity_expires_exactly(void **state)
{
	struct harness *h = *state;
	uint32_t ids[NBE] = {1, 2, 3, 4}, fresh, other;
	uint32_t *table = put_maglev(h, REV_AF, ids, NBE, 251);
	const uint64_t timeout_ns = AF_TIMEOUT * 1000000000ull;
	int cpu = sched_getcpu(), tries, step;
	cpu_set_t set;
	uint16_t sport = 47000;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	assert_int_equal(sched_setaffinity(0, sizeof(set), &set), 0);
	put_frontend(h, VIP_AF, REV_AF, ids, NBE, LB_SVC_F_AFFINITY, LB_SVC_F2_MAGLEV, AF_TIMEOUT);
	fresh = predicted(table, 251, 0, true);
	other = fresh % NBE + 1;
	for (step = 0; step < 2; step++) {
		bool expire = step == 1, done = false;

		for (tries = 0; tries < 200 && !done; tries++) {
			struct clock_cache_val c0, c1;
			struct lb_affinity_value v;
			uint32_t got;

			syn_to(h, VIP_AF, sport++); /* refreshes this CPU's clock cache */
			c0 = prog_clock(h, cpu);
			affinity_set(h, REV_AF, other, c0.ns - timeout_ns + (expire ? 0 : 1));
			got = syn_to(h, VIP_AF, sport++);
			c1 = prog_clock(h, cpu);
			if (c1.jiffies != c0.jiffies)
				continue; /* the tick moved: now was not c0.ns */
			assert_true(affinity_get(h, REV_AF, &v));
			assert_int_equal(v.last_used_ns, c0.ns);
			assert_int_equal(got, expire ? fresh : other);
			assert_int_equal(v.backend_id, got);
			done = true;
		}
		assert_true(done);
	}
	free(table);
	CPU_ZERO(&set);
	for (int i = 0; i < libbpf_num_possible_cpus(); i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* The client's backend leaves the service (no slot, no affinity pair; still in the backend
 * map, terminating): its connection keeps it, the affinity entry is dropped and new
 * connections go elsewhere, sticking to the new choice. */
static void test_affinity_backend_left(void **state)
{
	struct harness *h = *state;
	uint32_t left[NBE - 1], victim, again, n = 0;
	struct lb_affinity_value v;
	struct frame ack = frame_tcp4(IP_A, VIP_AF, 48000, 80, PB_TCP_ACK, 64);

	victim = syn_to(h, VIP_AF, 48000);
	assert_int_not_equal(victim, 0);
	for (uint32_t id = 1; id <= NBE; id++)
		if (id != victim)
			left[n++] = id;
	put_backend_state(h, victim, LB_BACKEND_TERMINATING);
	put_frontend(h, VIP_AF, REV_AF, left, NBE - 1, LB_SVC_F_AFFINITY, 0, AF_TIMEOUT);
	put_match(h, victim, REV_AF, false);

	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, ack.buf, ack.len), TC_ACT_OK);
	assert_int_equal(out_backend(h), victim);
	again = syn_to(h, VIP_AF, 48001);
	assert_int_not_equal(again, victim);
	assert_int_not_equal(again, 0);
	assert_true(affinity_get(h, REV_AF, &v));
	assert_int_equal(v.backend_id, again);
	for (uint16_t sport = 48002; sport < 48022; sport++)
		assert_int_equal(syn_to(h, VIP_AF, sport), again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clusterip_dnat_and_reverse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_established_keeps_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_gone_picks_another, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_backend_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_destinations_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maglev_picks_table_entry, setup_select,
						teardown),
		cmocka_unit_test_setup_teardown(test_maglev_same_backend_other_vip, setup_select,
						teardown),
		cmocka_unit_test_setup_teardown(test_maglev_table_size_changes, setup_select,
						teardown),
		cmocka_unit_test_setup_teardown(test_maglev_terminating_drains, setup_select,
						teardown),
		cmocka_unit_test_setup_teardown(test_affinity_sticky, setup_select, teardown),
		cmocka_unit_test_setup_teardown(test_affinity_expires_exactly, setup_select,
						teardown),
		cmocka_unit_test_setup_teardown(test_affinity_backend_left, setup_select, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
