/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF program tests for from-container / to-container through BPF_PROG_TEST_RUN: verdicts,
 * output bytes (with valid checksums), conntrack entries, events and metrics.
 *
 * Cast: pod A 10.244.0.21 (ep 1, identity 300) and pod B 10.244.0.22 (ep 2, identity 301) on
 * this node; remote pod R 10.244.1.30 (identity 400) on another node; world beyond.
 */
#include <arpa/inet.h>
#include <sched.h>
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
#include "loader/conntrack.h"
#include "loader/maps.h"
#include "replay/replay.h"

#define IP_A PB_IP4(10, 244, 0, 21)
#define IP_B PB_IP4(10, 244, 0, 22)
#define IP_R PB_IP4(10, 244, 1, 30)
#define IP_W PB_IP4(203, 0, 113, 10)
#define ID_A 300
#define ID_B 301
#define ID_R 400

static const uint8_t any_mac[6] = { 0x02, 0, 0, 0, 0, 1 };



/* A on ifindex 1 (the test-run device), B as a same-node peer, R remote. */
static int setup_opts(void **state, const struct datapath_opts *opts)
{
	struct harness *h = harness_new_opts(opts);
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, 0);
	struct endpoint_info b = harness_endpoint(IP_B, 2, ID_B, EP_F_INGRESS_ENFORCED);

	harness_add_endpoint(h, &a, true);
	harness_add_endpoint(h, &b, false);
	harness_add_ipcache(h, IP_A, 32, ID_A);
	harness_add_ipcache(h, IP_B, 32, ID_B);
	harness_add_ipcache(h, IP_R, 32, ID_R);
	/* B admits A on TCP 5432 only */
	harness_add_policy(h, 2, ID_A, DIR_INGRESS, IPPROTO_TCP, 5432, 16, false);
	*state = h;
	return 0;
}

static int setup(void **state)
{
	struct datapath_opts opts = { .trace_all = true };

	return setup_opts(state, &opts);
}

/* The datapath as agents run it: verdicts and drops aggregated per flow. */
static int setup_aggregated(void **state)
{
	struct datapath_opts opts = { 0 };

	return setup_opts(state, &opts);
}

static int teardown(void **state)
{
	harness_free(*state);
	return 0;
}

static void test_same_node_allowed_handshake(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, IP_B, 41000, 5432, PB_TCP_SYN, 64);
	struct frame ack = frame_tcp4(IP_A, IP_B, 41000, 5432, PB_TCP_ACK, 64);
	const struct ciliate_event *ev;
	struct ct_entry ct;
	uint8_t mac[6];
	char why[128];

	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_REDIRECT);
	ev = harness_event(h, EVENT_TRACE);
	assert_non_null(ev);
	assert_int_equal(ev->target_ifindex, 1002);
	assert_int_equal(ev->ct_status, CT_NEW);
	assert_int_equal(ev->src_identity, ID_A);
	assert_int_equal(ev->dst_identity, ID_B);
	assert_non_null(harness_event(h, EVENT_POLICY_VERDICT));

	/* routed delivery: MACs rewritten to gateway -> B, TTL 63, checksums valid */
	assert_int_equal(h->out_len, syn.len);
	pb_pod_mac(IP_B, mac);
	assert_memory_equal(h->out, mac, 6);
	pb_gw_mac(IP_B, mac);
	assert_memory_equal(h->out + 6, mac, 6);
	assert_int_equal(h->out[14 + 8], 63);
	assert_int_equal(replay_checksums_valid(h->out, h->out_len, why, sizeof(why)), 0);
	assert_memory_equal(h->out + 12, syn.buf + 12, 10); /* nothing else before TTL moved */

	/* both sides tracked: A opened it, B accepted it */
	assert_true(harness_ct_get(h, IP_A, IP_B, 41000, 5432, IPPROTO_TCP, CT_OUT, &ct));
	assert_int_equal(ct.tcp_state, CT_TCP_SYN_SENT);
	assert_true(ct.flags & CT_F_PEER_LOCAL);
	assert_true(harness_ct_get(h, IP_A, IP_B, 41000, 5432, IPPROTO_TCP, CT_IN, &ct));
	assert_true(ct.flags & CT_F_PEER_LOCAL);

	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, ack.buf, ack.len), TC_ACT_REDIRECT);
	ev = harness_event(h, EVENT_TRACE);
	assert_int_equal(ev->ct_status, CT_ESTABLISHED);
	assert_true(harness_ct_get(h, IP_A, IP_B, 41000, 5432, IPPROTO_TCP, CT_OUT, &ct));
	assert_int_equal(ct.tcp_state, CT_TCP_ESTABLISHED);
	assert_int_equal(ct.packets_fwd, 2);
}

static void test_same_node_denied_by_receiver(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, IP_B, 41001, 80, PB_TCP_SYN, 64);
	uint64_t before = harness_metric_packets(h, REASON_POLICY_DENIED, DIR_EGRESS);
	struct ct_entry ct;

	harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len);
	harness_assert_drop(h, REASON_POLICY_DENIED);
	assert_int_equal(harness_metric_packets(h, REASON_POLICY_DENIED, DIR_EGRESS), before + 1);
	/* nothing tracked for a denied connection, so a retransmission is denied too */
	assert_false(harness_ct_get(h, IP_A, IP_B, 41001, 80, IPPROTO_TCP, CT_OUT, &ct));
	harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len);
	harness_assert_drop(h, REASON_POLICY_DENIED);
}

static void test_reply_passes_ingress_isolation(void **state)
{
	struct harness *h = *state;
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, EP_F_INGRESS_ENFORCED);
	struct frame syn = frame_tcp4(IP_A, IP_R, 42000, 80, PB_TCP_SYN, 64);
	struct frame synack = frame_tcp4(IP_R, IP_A, 80, 42000, PB_TCP_SYN | PB_TCP_ACK, 64);
	struct frame other = frame_tcp4(IP_R, IP_A, 81, 42000, PB_TCP_SYN, 64);
	const struct ciliate_event *ev;

	harness_add_endpoint(h, &a, true); /* A now denies all ingress */
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_OK);
	assert_memory_equal(h->out, syn.buf, syn.len); /* to the stack unchanged */
	{
		struct ct_entry ct;

		/* a remote peer: established packets skip the local-endpoint lookup */
		assert_true(harness_ct_get(h, IP_A, IP_R, 42000, 80, IPPROTO_TCP, CT_OUT, &ct));
		assert_false(ct.flags & CT_F_PEER_LOCAL);
	}

	assert_int_equal(harness_run(h, HOOK_TO_CONTAINER, synack.buf, synack.len), TC_ACT_OK);
	ev = harness_event(h, EVENT_TRACE);
	assert_int_equal(ev->ct_status, CT_REPLY);
	assert_true(ev->flags & EVENT_F_IS_REPLY);

	harness_run(h, HOOK_TO_CONTAINER, other.buf, other.len);
	harness_assert_drop(h, REASON_POLICY_DENIED);
	ev = harness_event(h, EVENT_DROP);
	assert_int_equal(ev->src_identity, ID_R);
}

static void test_icmp_error_related(void **state)
{
	struct harness *h = *state;
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, EP_F_INGRESS_ENFORCED);
	struct frame out = frame_udp4(IP_A, IP_W, 5000, 53);
	struct frame unrel = frame_udp4(IP_A, IP_W, 5001, 53);
	uint8_t err_buf[512];
	struct pb_ipv4 ip = pb_ipv4_hdr(IP_W, IP_A);
	struct pb_pkt p;
	int n;

	harness_add_endpoint(h, &a, true);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, out.buf, out.len), TC_ACT_OK);

	/* port unreachable from the world about A's datagram: RELATED, passes deny-all */
	pb_init(&p, err_buf, sizeof(err_buf));
	pb_eth(&p, any_mac, any_mac, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_icmp4_error(&p, PB_ICMP_DEST_UNREACH, 3, 0, out.buf + 14, out.len - 14);
	n = pb_finish(&p);
	assert_true(n > 0);
	assert_int_equal(harness_run(h, HOOK_TO_CONTAINER, err_buf, (size_t)n), TC_ACT_OK);
	assert_int_equal(harness_event(h, EVENT_TRACE)->ct_status, CT_RELATED);

	/* the same error about a flow nobody opened: subject to policy, denied */
	pb_init(&p, err_buf, sizeof(err_buf));
	pb_eth(&p, any_mac, any_mac, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_icmp4_error(&p, PB_ICMP_DEST_UNREACH, 3, 0, unrel.buf + 14, unrel.len - 14);
	n = pb_finish(&p);
	harness_run(h, HOOK_TO_CONTAINER, err_buf, (size_t)n);
	harness_assert_drop(h, REASON_POLICY_DENIED);
}

static void test_deny_precedence_and_port_ranges(void **state)
{
	struct harness *h = *state;
	struct frame f;

	/* B: allow A on 8080-8083 (a /14 port prefix); deny every identity on 8081 */
	harness_add_policy(h, 2, ID_A, DIR_INGRESS, IPPROTO_TCP, 8080, 14, false);
	harness_add_policy(h, 2, 0, DIR_INGRESS, IPPROTO_TCP, 8081, 16, true);

	f = frame_tcp4(IP_A, IP_B, 43000, 8083, PB_TCP_SYN, 64);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len), TC_ACT_REDIRECT);
	f = frame_tcp4(IP_A, IP_B, 43001, 8084, PB_TCP_SYN, 64);
	harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len);
	harness_assert_drop(h, REASON_POLICY_DENIED);
	f = frame_tcp4(IP_A, IP_B, 43002, 8081, PB_TCP_SYN, 64);
	harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len);
	harness_assert_drop(h, REASON_POLICY_DENY);
	assert_true(harness_event(h, EVENT_DROP)->flags & EVENT_F_POLICY_DENY_RULE);
	/* UDP on an allowed TCP port is not allowed */
	f = frame_udp4(IP_A, IP_B, 43003, 8080);
	harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len);
	harness_assert_drop(h, REASON_POLICY_DENIED);
}

static void test_egress_policy(void **state)
{
	struct harness *h = *state;
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, EP_F_EGRESS_ENFORCED);
	struct frame f;

	harness_add_endpoint(h, &a, true);
	harness_add_policy(h, 1, ID_R, DIR_EGRESS, IPPROTO_UDP, 0, 0, false); /* UDP to R */
	f = frame_udp4(IP_A, IP_R, 6000, 9999);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len), TC_ACT_OK);
	f = frame_tcp4(IP_A, IP_R, 6000, 9999, PB_TCP_SYN, 64);
	harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len);
	harness_assert_drop(h, REASON_POLICY_DENIED);
	f = frame_udp4(IP_A, IP_W, 6000, 9999); /* world: not allowed */
	harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len);
	harness_assert_drop(h, REASON_POLICY_DENIED);
	assert_int_equal(harness_event(h, EVENT_DROP)->dst_identity, IDENTITY_WORLD);
}

static void test_tcp_close_and_reopen(void **state)
{
	struct harness *h = *state;
	struct frame f;
	struct ct_entry ct;

	f = frame_tcp4(IP_A, IP_R, 44000, 80, PB_TCP_SYN, 64);
	harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len);
	f = frame_tcp4(IP_A, IP_R, 44000, 80, PB_TCP_FIN | PB_TCP_ACK, 64);
	harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len);
	assert_true(harness_ct_get(h, IP_A, IP_R, 44000, 80, IPPROTO_TCP, CT_OUT, &ct));
	assert_int_equal(ct.tcp_state, CT_TCP_CLOSING);
	f = frame_tcp4(IP_R, IP_A, 80, 44000, PB_TCP_FIN | PB_TCP_ACK, 64);
	assert_int_equal(harness_run(h, HOOK_TO_CONTAINER, f.buf, f.len), TC_ACT_OK);
	assert_true(harness_ct_get(h, IP_A, IP_R, 44000, 80, IPPROTO_TCP, CT_OUT, &ct));
	assert_int_equal(ct.tcp_state, CT_TCP_CLOSED);
	/* a new SYN on the closed tuple is a new connection again */
	f = frame_tcp4(IP_A, IP_R, 44000, 80, PB_TCP_SYN, 64);
	harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len);
	assert_int_equal(harness_event(h, EVENT_TRACE)->ct_status, CT_NEW);
	assert_true(harness_ct_get(h, IP_A, IP_R, 44000, 80, IPPROTO_TCP, CT_OUT, &ct));
	assert_int_equal(ct.tcp_state, CT_TCP_SYN_SENT);
}

static void test_fragments(void **state)
{
	struct harness *h = *state;
	struct frame whole = frame_udp4(IP_A, IP_B, 7000, 5432);
	uint8_t frag[512];
	int n;

	/* B admits A on UDP 5432 too */
	harness_add_policy(h, 2, ID_A, DIR_INGRESS, IPPROTO_UDP, 5432, 16, false);
	/* first fragment: 8 bytes of UDP header; second: the payload */
	n = pb_ipv4_fragment(whole.buf, whole.len, 14, 0, 8, true, frag, sizeof(frag));
	assert_true(n > 0);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, frag, (size_t)n), TC_ACT_REDIRECT);
	n = pb_ipv4_fragment(whole.buf, whole.len, 14, 8, whole.len - 14 - 20 - 8, false, frag,
			     sizeof(frag));
	assert_true(n > 0);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, frag, (size_t)n), TC_ACT_REDIRECT);
	/* an orphan non-first fragment with another id */
	frag[14 + 5] ^= 0x55;
	pb_ipv4_fix_csum(frag + 14, (size_t)n - 14);
	harness_run(h, HOOK_FROM_CONTAINER, frag, (size_t)n);
	harness_assert_drop(h, REASON_FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND);
}

static void test_malformed_and_filtered(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, IP_B, 45000, 5432, PB_TCP_SYN, 64);
	struct frame g;
	uint8_t buf[512];
	struct pb_pkt p;
	int n;

	/* TCP header cut short: IPv4 total length shrunk to cover 10 bytes of it */
	g = f;
	g.buf[14 + 3] = 20 + 10;
	g.len = 14 + 20 + 10;
	pb_ipv4_fix_csum(g.buf + 14, 20);
	harness_run(h, HOOK_FROM_CONTAINER, g.buf, g.len);
	harness_assert_drop(h, REASON_CT_TRUNCATED_OR_INVALID_HEADER);

	/* IHL 4 */
	g = f;
	g.buf[14] = 0x44;
	harness_run(h, HOOK_FROM_CONTAINER, g.buf, g.len);
	harness_assert_drop(h, REASON_INVALID_PACKET_DROPPED);

	/* total length beyond the frame */
	g = f;
	g.buf[14 + 2] = 0x05;
	harness_run(h, HOOK_FROM_CONTAINER, g.buf, g.len);
	harness_assert_drop(h, REASON_INVALID_PACKET_DROPPED);

	/* spoofed source */
	g = frame_tcp4(IP_R, IP_B, 45001, 5432, PB_TCP_SYN, 64);
	harness_run(h, HOOK_FROM_CONTAINER, g.buf, g.len);
	harness_assert_drop(h, REASON_INVALID_SOURCE_IP);

	/* TTL 1 to a same-node pod */
	g = frame_tcp4(IP_A, IP_B, 45002, 5432, PB_TCP_SYN, 1);
	harness_run(h, HOOK_FROM_CONTAINER, g.buf, g.len);
	harness_assert_drop(h, REASON_TTL_EXCEEDED);

	/* VLAN-tagged from a pod */
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, any_mac, any_mac, PB_AUTO);
	pb_vlan(&p, PB_ETH_P_8021Q, 100, 0, PB_ETH_P_IP);
	pb_bytes(&p, f.buf + 14, f.len - 14);
	n = pb_finish(&p);
	harness_run(h, HOOK_FROM_CONTAINER, buf, (size_t)n);
	harness_assert_drop(h, REASON_VLAN_FILTERED);

	/* ARP passes untouched */
	{
		struct pb_arp arp = { .op = PB_ARP_REQUEST, .spa = IP_A, .tpa = IP_B };

		memcpy(arp.sha, any_mac, 6);
		pb_init(&p, buf, sizeof(buf));
		pb_eth(&p, any_mac, any_mac, PB_AUTO);
		pb_arp(&p, &arp);
		n = pb_finish(&p);
		assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, buf, (size_t)n), TC_ACT_OK);
		assert_memory_equal(h->out, buf, (size_t)n);
	}

	/* IPv6 while IPv6 is disabled */
	{
		uint8_t s6[16] = { 0xfd, 0, [15] = 1 }, d6[16] = { 0xfd, 0, [15] = 2 };
		struct pb_ipv6 ip6 = pb_ipv6_hdr(s6, d6);
		struct pb_udp udp = { .sport = 1, .dport = 2, .len = PB_AUTO };

		pb_init(&p, buf, sizeof(buf));
		pb_eth(&p, any_mac, any_mac, PB_AUTO);
		pb_ipv6(&p, &ip6);
		pb_udp(&p, &udp);
		n = pb_finish(&p);
		harness_run(h, HOOK_FROM_CONTAINER, buf, (size_t)n);
		harness_assert_drop(h, REASON_UNSUPPORTED_L3_PROTOCOL);
	}
}

static void test_conntrack_gc(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, IP_R, 46000, 80, PB_TCP_SYN, 64);
	int fd = datapath_map_fd(h->dp, MAP_CT);
	struct diag d = { "" };
	struct ct_entry ct;
	size_t deleted;

	harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len);
	assert_true(harness_ct_get(h, IP_A, IP_R, 46000, 80, IPPROTO_TCP, CT_OUT, &ct));
	/* the datapath's clock is the coarse monotonic clock: a SYN lives 60 s from now */
	assert_true(ct.expires_ns > ct_clock_now_ns() + 50ull * 1000000000ull);
	assert_true(ct.expires_ns <= ct_clock_now_ns() + 61ull * 1000000000ull);
	assert_int_equal(ct_gc(fd, ct.expires_ns - 1, &deleted, &d), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(ct_gc(fd, ct.expires_ns, &deleted, &d), 0);
	assert_int_equal(deleted, 1);
	assert_false(harness_ct_get(h, IP_A, IP_R, 46000, 80, IPPROTO_TCP, CT_OUT, &ct));
}

/* ---- direction-normalised conntrack keys: one map slot per connection ----------------- */

static int count_slot(const struct ct_key *k, const struct ct_entry *e, void *arg)
{
	(*(size_t *)arg)++;
	return 0;
}

static size_t ct_slots(struct harness *h)
{
	size_t n = 0;

	assert_int_equal(ct_foreach(datapath_map_fd(h->dp, MAP_CT), count_slot, &n), 0);
	return n;
}

/* The raw map slot for (tuple, scope) exactly as given, without normalising. */
static bool ct_raw(struct harness *h, uint32_t saddr, uint32_t daddr, uint16_t sport,
		   uint16_t dport, uint8_t scope, struct ct_entry *e)
{
	struct ct_key k = { 0 };

	k.saddr.v4 = saddr;
	k.daddr.v4 = daddr;
	k.sport = htons(sport);
	k.dport = htons(dport);
	k.proto = IPPROTO_TCP;
	k.family = CILIATE_AF_INET;
	k.scope = scope;
	return bpf_map_lookup_elem(datapath_map_fd(h->dp, MAP_CT), &k, e) == 0;
}

static void run_status(struct harness *h, int hook, const struct frame *f, int verdict,
		       unsigned int status)
{
	assert_int_equal(harness_run(h, hook, f->buf, f->len), verdict);
	assert_int_equal(harness_event(h, EVENT_TRACE)->ct_status, status);
}

/* A opens a connection to R: A's address orders below R's, so the slot's key is the
 * original tuple; the reply and later packets update that same entry. */
static void test_ct_opened_one_slot(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, IP_R, 47000, 80, PB_TCP_SYN, 64);
	struct frame synack = frame_tcp4(IP_R, IP_A, 80, 47000, PB_TCP_SYN | PB_TCP_ACK, 64);
	struct frame ack = frame_tcp4(IP_A, IP_R, 47000, 80, PB_TCP_ACK, 64);
	struct ct_entry ct;

	run_status(h, HOOK_FROM_CONTAINER, &syn, TC_ACT_OK, CT_NEW);
	run_status(h, HOOK_TO_CONTAINER, &synack, TC_ACT_OK, CT_REPLY);
	run_status(h, HOOK_FROM_CONTAINER, &ack, TC_ACT_OK, CT_ESTABLISHED);
	assert_int_equal(ct_slots(h), 1);
	assert_true(ct_raw(h, IP_A, IP_R, 47000, 80, CT_OUT, &ct));
	assert_false(ct.flags & CT_F_REVERSED);
	assert_int_equal(ct.packets_fwd, 2);
	assert_int_equal(ct.packets_rev, 1);
	assert_int_equal(ct.tcp_state, CT_TCP_ESTABLISHED);
	/* the pair's other member names the same slot, but it is not that connection */
	assert_false(harness_ct_get(h, IP_R, IP_A, 80, 47000, IPPROTO_TCP, CT_IN, &ct));
}

/* R opens a connection to A (A accepts it): the original (R -> A, in) orders the other way,
 * so the slot's key is (A -> R, out) marked reversed; listing, lookups, replies and GC all
 * see the original connection. */
static void test_ct_accepted_reversed_slot(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_R, IP_A, 50000, 8080, PB_TCP_SYN, 64);
	struct frame synack = frame_tcp4(IP_A, IP_R, 8080, 50000, PB_TCP_SYN | PB_TCP_ACK, 64);
	struct frame ack = frame_tcp4(IP_R, IP_A, 50000, 8080, PB_TCP_ACK, 64);
	int fd = datapath_map_fd(h->dp, MAP_CT);
	struct ct_key key = { 0 }, orig;
	struct diag d = { "" };
	struct ct_entry ct;
	size_t deleted;
	char line[256];

	run_status(h, HOOK_TO_CONTAINER, &syn, TC_ACT_OK, CT_NEW);
	assert_int_equal(harness_event(h, EVENT_TRACE)->src_identity, ID_R);
	run_status(h, HOOK_FROM_CONTAINER, &synack, TC_ACT_OK, CT_REPLY);
	assert_true(harness_event(h, EVENT_TRACE)->flags & EVENT_F_IS_REPLY);
	run_status(h, HOOK_TO_CONTAINER, &ack, TC_ACT_OK, CT_ESTABLISHED);

	assert_int_equal(ct_slots(h), 1);
	assert_true(ct_raw(h, IP_A, IP_R, 8080, 50000, CT_OUT, &ct));
	assert_true(ct.flags & CT_F_REVERSED);
	assert_false(ct_raw(h, IP_R, IP_A, 50000, 8080, CT_IN, &ct));
	assert_true(harness_ct_get(h, IP_R, IP_A, 50000, 8080, IPPROTO_TCP, CT_IN, &ct));
	assert_int_equal(ct.packets_fwd, 2);
	assert_int_equal(ct.packets_rev, 1);
	assert_int_equal(ct.src_identity, ID_R);
	/* A opening "the same" tuple itself is not a connection that exists */
	assert_false(harness_ct_get(h, IP_A, IP_R, 8080, 50000, IPPROTO_TCP, CT_OUT, &ct));

	/* listing shows the original connection */
	key.saddr.v4 = IP_A;
	key.daddr.v4 = IP_R;
	key.sport = htons(8080);
	key.dport = htons(50000);
	key.proto = IPPROTO_TCP;
	key.family = CILIATE_AF_INET;
	key.scope = CT_OUT;
	assert_int_equal(bpf_map_lookup_elem(fd, &key, &ct), 0);
	ct_key_original(&key, &ct, &orig);
	assert_int_equal(orig.saddr.v4, IP_R);
	assert_int_equal(orig.sport, htons(50000));
	assert_int_equal(orig.scope, CT_IN);
	ct_format(&key, &ct, ct_clock_now_ns(), line, sizeof(line));
	assert_non_null(strstr(line, "TCP 10.244.1.30:50000 -> 10.244.0.21:8080 in "));
	assert_non_null(strstr(line, "packets=2/1"));

	/* GC removes it by its map key */
	assert_int_equal(ct_gc(fd, ct.expires_ns - 1, &deleted, &d), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(ct_gc(fd, ct.expires_ns, &deleted, &d), 0);
	assert_int_equal(deleted, 1);
	assert_int_equal(ct_slots(h), 0);
}

/* A pod talking to its own address and port has no direction to normalise: both sides keep
 * their own slot, as without normalisation (the sender's side then sees later packets as
 * replies of the receiver's side). */
static void test_ct_symmetric_tuple(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, IP_A, 7000, 7000, PB_TCP_SYN, 64);
	struct ct_entry ct;

	run_status(h, HOOK_FROM_CONTAINER, &f, TC_ACT_REDIRECT, CT_NEW);
	assert_int_equal(ct_slots(h), 2);
	assert_true(ct_raw(h, IP_A, IP_A, 7000, 7000, CT_OUT, &ct));
	assert_false(ct.flags & CT_F_REVERSED);
	assert_true(ct_raw(h, IP_A, IP_A, 7000, 7000, CT_IN, &ct));
	assert_false(ct.flags & CT_F_REVERSED);
	run_status(h, HOOK_FROM_CONTAINER, &f, TC_ACT_REDIRECT, CT_REPLY);
	assert_int_equal(ct_slots(h), 2);
}

/* Userspace normalisation agrees with itself both ways, for IPv4 and IPv6. */
static void test_ct_key_normalise_roundtrip(void **state)
{
	struct ct_key a = { 0 }, key, back;
	struct ct_entry e = { 0 };
	uint8_t flags;

	a.saddr.v4 = IP_R;
	a.daddr.v4 = IP_A;
	a.sport = htons(1);
	a.dport = htons(2);
	a.proto = IPPROTO_UDP;
	a.family = CILIATE_AF_INET;
	a.scope = CT_IN;
	for (int fam = 0; fam < 2; fam++) {
		for (int swap = 0; swap < 2; swap++) {
			struct ct_key o = a;

			if (fam) { /* IPv6: differ only in the last word */
				o.family = CILIATE_AF_INET6;
				o.saddr.v6[0] = o.daddr.v6[0] = htonl(0xfd000000);
				o.saddr.v6[3] = htonl(swap ? 1 : 2);
				o.daddr.v6[3] = htonl(swap ? 2 : 1);
			} else if (swap) {
				o.saddr = a.daddr;
				o.daddr = a.saddr;
			}
			ct_key_normalise(&o, &key, &flags);
			e.flags = flags;
			ct_key_original(&key, &e, &back);
			assert_memory_equal(&back, &o, sizeof(o));
			/* the reversed member of the pair normalises to the same slot */
			{
				struct ct_key r = o, key2;
				uint8_t flags2;

				r.saddr = o.daddr;
				r.daddr = o.saddr;
				r.sport = o.dport;
				r.dport = o.sport;
				r.scope = o.scope == CT_OUT ? CT_IN : CT_OUT;
				ct_key_normalise(&r, &key2, &flags2);
				assert_memory_equal(&key2, &key, sizeof(key));
				assert_int_not_equal(flags2, flags);
			}
		}
	}
	/* IPv6 sides that differ but fold alike (XOR of the words) tie: stored as they are,
	 * like symmetric tuples, both members of the pair in their own slots */
	a.family = CILIATE_AF_INET6;
	a.sport = a.dport = htons(9);
	memset(&a.saddr, 0, sizeof(a.saddr));
	memset(&a.daddr, 0, sizeof(a.daddr));
	a.saddr.v6[0] = a.saddr.v6[1] = htonl(1);
	a.daddr.v6[2] = a.daddr.v6[3] = htonl(1);
	ct_key_normalise(&a, &key, &flags);
	assert_memory_equal(&key, &a, sizeof(a));
	assert_int_equal(flags, 0);
}

/* ---- endpoint by veth: direct-mapped slots in front of the authoritative hash ---------- */

static struct lxc_slot lxc_slot_of(struct harness *h, uint32_t ifindex)
{
	uint32_t idx = ifindex & (LXC_SLOTS - 1);
	struct lxc_slot s;

	assert_int_equal(bpf_map_lookup_elem(datapath_map_fd(h->dp, MAP_LXC_SLOTS), &idx, &s), 0);
	return s;
}

static void test_lxc_slot_collision_and_resync(void **state)
{
	struct harness *h = *state;
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, 0);
	struct endpoint_info b = harness_endpoint(IP_B, 2, ID_B, EP_F_INGRESS_ENFORCED);
	struct frame f = frame_tcp4(IP_A, IP_R, 48000, 80, PB_TCP_SYN, 64);
	struct frame spoof = frame_tcp4(IP_B, IP_R, 48001, 80, PB_TCP_SYN, 64);
	int fd = datapath_map_fd(h->dp, MAP_LXC_SLOTS);
	struct diag d = { "" };
	struct lxc_slot s;
	uint32_t idx;

	/* the bound test device (ifindex 1) is served from its slot */
	s = lxc_slot_of(h, 1);
	assert_int_equal(s.ifindex, 1);
	assert_int_equal(s.info.ep_id, 1);

	/* another veth takes slot 1 first: the test device is then served by the hash */
	assert_int_equal(dp_lxc_delete(h->dp, 1, &d), 0);
	assert_int_equal(lxc_slot_of(h, 1).ifindex, 0);
	assert_int_equal(dp_lxc_set(h->dp, 1 + LXC_SLOTS, &b, &d), 0);
	assert_int_equal(dp_lxc_set(h->dp, 1, &a, &d), 0);
	assert_int_equal(lxc_slot_of(h, 1).ifindex, 1 + LXC_SLOTS);
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len), TC_ACT_OK);
	assert_int_equal(harness_event(h, EVENT_TRACE)->ep_id, 1);
	assert_int_equal(harness_event(h, EVENT_TRACE)->src_identity, ID_A);
	harness_run(h, HOOK_FROM_CONTAINER, spoof.buf, spoof.len); /* B's address is not ours */
	harness_assert_drop(h, REASON_INVALID_SOURCE_IP);

	/* the slot's holder goes: the colliding endpoint inherits the slot */
	assert_int_equal(dp_lxc_delete(h->dp, 1 + LXC_SLOTS, &d), 0);
	s = lxc_slot_of(h, 1);
	assert_int_equal(s.ifindex, 1);
	assert_int_equal(s.info.identity, ID_A);

	/* resync repairs slots that disagree with the hash: a stale copy and an orphan */
	s.info.identity = 999;
	idx = 1;
	assert_int_equal(bpf_map_update_elem(fd, &idx, &s, BPF_ANY), 0);
	memset(&s, 0, sizeof(s));
	s.ifindex = 7;
	s.info = b;
	idx = 7;
	assert_int_equal(bpf_map_update_elem(fd, &idx, &s, BPF_ANY), 0);
	assert_int_equal(dp_lxc_resync(h->dp, &d), 0);
	assert_int_equal(lxc_slot_of(h, 1).info.identity, ID_A);
	assert_int_equal(lxc_slot_of(h, 7).ifindex, 0);
	assert_int_equal(lxc_slot_of(h, 1002).ifindex, 1002); /* B's own veth, untouched */
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len), TC_ACT_OK);
	assert_int_equal(harness_event(h, EVENT_TRACE)->src_identity, ID_A);
}

/*
 * Drop aggregation reports each flow's drop once a second, and never hides one flow's drop
 * behind another's: every new source port gets its own drop event, only the same flow
 * again within the second is counted without one.
 */
static void test_drop_aggregation_per_exact_flow(void **state)
{
	struct harness *h = *state;
	uint64_t before = harness_metric_packets(h, REASON_POLICY_DENIED, DIR_EGRESS);
	cpu_set_t one;
	int port;

	/* the cache is per CPU: stay on one so the repeat meets its first packet's entry */
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	{	/* the same flow again at once: counted, not reported */
		struct frame syn = frame_tcp4(IP_A, IP_B, 29999, 80, PB_TCP_SYN, 64);

		harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len);
		assert_non_null(harness_event(h, EVENT_DROP));
		harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len);
		assert_int_equal(h->retval, TC_ACT_SHOT);
		assert_null(harness_event(h, EVENT_DROP));
	}
	for (port = 30000; port < 32048; port++) {
		struct frame syn = frame_tcp4(IP_A, IP_B, (uint16_t)port, 80, PB_TCP_SYN, 64);
		struct frame udp = frame_udp4(IP_A, IP_B, (uint16_t)port, (uint16_t)(port - 29000));

		harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len);
		if (!harness_event(h, EVENT_DROP))
			fail_msg("no drop event for the new flow from port %d", port);
		harness_run(h, HOOK_FROM_CONTAINER, udp.buf, udp.len);
		if (!harness_event(h, EVENT_DROP))
			fail_msg("no drop event for the new UDP flow from port %d", port);
	}
	assert_int_equal(harness_metric_packets(h, REASON_POLICY_DENIED, DIR_EGRESS),
			 before + 2 + 2 * 2048);
	/*
	 * Spoofed sources, dropped at the same hook: flows that differ in the source address
	 * and port together (a 64-bit hash of XORed fields once gave many of these one key).
	 */
	for (port = 0; port < 64 * 64; port++) {
		uint32_t src = PB_IP4(10, 244, 0, 100 + port / 64);
		struct frame f = frame_tcp4(src, IP_B, (uint16_t)(30000 + port % 64), 80,
					    PB_TCP_SYN, 64);

		harness_run(h, HOOK_FROM_CONTAINER, f.buf, f.len);
		assert_int_equal(h->retval, TC_ACT_SHOT);
		if (!harness_event(h, EVENT_DROP))
			fail_msg("no drop event for the new flow from 10.244.0.%d:%d", 100 + port / 64,
				 30000 + port % 64);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_node_allowed_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_node_denied_by_receiver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_passes_ingress_isolation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_error_related, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deny_precedence_and_port_ranges, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_egress_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_close_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fragments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_and_filtered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conntrack_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ct_opened_one_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ct_accepted_reversed_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ct_symmetric_tuple, setup, teardown),
		cmocka_unit_test(test_ct_key_normalise_roundtrip),
		cmocka_unit_test_setup_teardown(test_lxc_slot_collision_and_resync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_aggregation_per_exact_flow,
						setup_aggregated, teardown),
	};

	return cmocka_run_group_tests_name("bpf_lxc", tests, NULL, NULL);
}
