/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF program tests of the egress gateway (bpf/lib/egress_gw.h, to-netdev and from-netdev of
 * bpf/progs/netdev.bpf.c) through BPF_PROG_TEST_RUN, with ciliate_egress_gw entries written
 * by hand:
 * - a selected pod's packet to a destination CIDR whose gateway is another node leaves in
 *   Geneve to that node (VNI: the pod's identity, no option), a redirect out of the device;
 * - an excludedCIDR inside it (a longer prefix) is masqueraded to the node as usual;
 * - no gateway: NO_EGRESS_GATEWAY; this node the gateway without an egress IP: NO_EGRESS_IP;
 * - this node the gateway: SNAT to the egress IP, and the reply translated back to the pod;
 * - the gateway side: a Geneve packet from the pod's node is decapsulated (from-netdev), the
 *   remote pod's packet leaving to-netdev is SNATed to the egress IP, and the reply goes
 *   back to the pod's node in Geneve.
 *
 * Cast: node 192.0.2.1 (pods 10.244.0.0/24), node 2 192.0.2.2; pod A 10.244.0.21 (identity
 * 300), remote pod R 10.244.1.30 (identity 400); external hosts 203.0.113.10 (gateway node
 * 2), 203.0.113.200 (excluded), 198.51.100.10 (no gateway), 8.8.8.8 (this node the gateway,
 * egress IP 192.0.2.101), 9.9.9.9 (this node the gateway, no egress IP).
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
#include "loader/maps.h"
#include "pktbuild.h"
#include "replay/replay.h"

#define NODE_IP PB_IP4(192, 0, 2, 1)
#define NODE2_IP PB_IP4(192, 0, 2, 2)
#define EGRESS_IP PB_IP4(192, 0, 2, 101)
#define IP_A PB_IP4(10, 244, 0, 21)
#define IP_R PB_IP4(10, 244, 1, 30)
#define EXT_GW2 PB_IP4(203, 0, 113, 10)
#define EXT_EXCLUDED PB_IP4(203, 0, 113, 200)
#define EXT_NO_GW PB_IP4(198, 51, 100, 10)
#define EXT_HERE PB_IP4(8, 8, 8, 8)
#define EXT_NO_IP PB_IP4(9, 9, 9, 9)
#define ID_A 300
#define ID_R 400

static void put_egress(struct harness *h, uint32_t pod, uint32_t net, uint8_t len,
		       uint32_t gateway, uint32_t egress_ip)
{
	struct egress_gw_key k = { .prefixlen = EGRESS_GW_PREFIX_BASE + len, .saddr = pod,
				   .daddr = net };
	struct egress_gw_value v = { .egress_ip = egress_ip, .gateway_ip = gateway };

	harness_map_put(h, MAP_EGRESS_GW, &k, &v);
}

static int setup(void **state)
{
	struct datapath_opts opts = { .trace_all = true };
	struct harness *h = harness_new_opts(&opts);
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, 0);
	struct node_config cfg;
	struct diag d = { "" };

	harness_add_endpoint(h, &a, true);
	harness_add_ipcache(h, IP_A, 32, ID_A);
	harness_add_ipcache_tunnel(h, IP_R, 32, ID_R, NODE2_IP, IPCACHE_F_ENDPOINT);
	harness_add_ipcache(h, NODE2_IP, 32, IDENTITY_REMOTE_NODE);
	memset(&cfg, 0, sizeof(cfg));
	cfg.node_ip = NODE_IP;
	cfg.pod_cidr = PB_IP4(10, 244, 0, 0);
	cfg.pod_cidr_len = 24;
	cfg.native_cidr = PB_IP4(10, 244, 0, 0);
	cfg.native_cidr_len = 16;
	cfg.flags = NODE_CFG_F_MASQUERADE | NODE_CFG_F_EGRESS_GW;
	cfg.mtu = 1500;
	assert_int_equal(dp_node_config_set(h->dp, &cfg, &d), 0);
	put_egress(h, IP_A, PB_IP4(203, 0, 113, 0), 24, NODE2_IP, 0);
	put_egress(h, IP_A, PB_IP4(203, 0, 113, 128), 25, htonl(EGRESS_GW_EXCLUDED_CIDR), 0);
	put_egress(h, IP_A, PB_IP4(198, 51, 100, 0), 24, EGRESS_GW_NO_GATEWAY, 0);
	put_egress(h, IP_A, PB_IP4(8, 8, 8, 0), 24, NODE_IP, EGRESS_IP);
	put_egress(h, IP_A, PB_IP4(9, 9, 9, 0), 24, NODE_IP, 0);
	put_egress(h, IP_R, PB_IP4(8, 8, 8, 0), 24, NODE_IP, EGRESS_IP);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	harness_free(*state);
	return 0;
}

static void assert_addrs(const struct harness *h, size_t l3, uint32_t src, uint32_t dst)
{
	uint32_t a;

	memcpy(&a, h->out + l3 + 12, 4);
	assert_int_equal(a, src);
	memcpy(&a, h->out + l3 + 16, 4);
	assert_int_equal(a, dst);
}

/* To a gateway on node 2: Geneve to 192.0.2.2, VNI 300, no option, the packet unchanged. */
static void test_redirect_to_gateway(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, EXT_GW2, 41000, 80, PB_TCP_SYN, 64);
	static const uint8_t gnv[8] = { 0, 0, 0x65, 0x58, 0, 0x01, 0x2c, 0 }; /* VNI 300 */
	char why[128];
	uint16_t v;

	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, f.buf, f.len), TC_ACT_REDIRECT);
	assert_int_equal(h->out_len, f.len + 50);
	assert_addrs(h, 14, NODE_IP, NODE2_IP);
	assert_int_equal(h->out[14 + 9], IPPROTO_UDP);
	memcpy(&v, h->out + 14 + 22, 2);
	assert_int_equal(ntohs(v), 6081);
	assert_memory_equal(h->out + 14 + 28, gnv, sizeof(gnv));
	assert_memory_equal(h->out + 14 + 36 + 14, f.buf + 14, f.len - 14);
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("checksums: %s", why);
}

/* The excluded /25 inside the /24: masqueraded to the node, not sent to the gateway. */
static void test_excluded_cidr_masqueraded(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, EXT_EXCLUDED, 41001, 80, PB_TCP_SYN, 64);

	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, f.buf, f.len), TC_ACT_OK);
	assert_int_equal(h->out_len, f.len);
	assert_addrs(h, 14, NODE_IP, EXT_EXCLUDED);
}

static void test_no_gateway_and_no_egress_ip(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, EXT_NO_GW, 41002, 80, PB_TCP_SYN, 64);
	struct frame g = frame_tcp4(IP_A, EXT_NO_IP, 41003, 80, PB_TCP_SYN, 64);

	harness_run(h, HOOK_TO_NETDEV, f.buf, f.len);
	harness_assert_drop(h, REASON_NO_EGRESS_GATEWAY);
	harness_run(h, HOOK_TO_NETDEV, g.buf, g.len);
	harness_assert_drop(h, REASON_NO_EGRESS_IP);
}

/* This node is the gateway: SNAT to the egress IP; the reply goes back to the pod. */
static void test_local_gateway_snat_and_reply(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, EXT_HERE, 41004, 53, PB_TCP_SYN, 64);
	struct frame r;
	uint16_t port;
	char why[128];

	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, f.buf, f.len), TC_ACT_OK);
	assert_addrs(h, 14, EGRESS_IP, EXT_HERE);
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("checksums: %s", why);
	memcpy(&port, h->out + 14 + 20, 2);
	r = frame_tcp4(EXT_HERE, EGRESS_IP, 53, ntohs(port), PB_TCP_SYN | PB_TCP_ACK, 64);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, r.buf, r.len), TC_ACT_OK);
	assert_addrs(h, 14, EXT_HERE, IP_A);
	memcpy(&port, h->out + 14 + 22, 2);
	assert_int_equal(ntohs(port), 41004);
}

/*
 * The gateway side: node 2 sends R's packet in Geneve; from-netdev decapsulates it for the
 * stack, and when the stack forwards it out of the device, to-netdev SNATs it to the egress
 * IP (R is not a pod of this node); the reply, translated back, returns to node 2 in Geneve.
 * Geneve from outside the cluster is not decapsulated.
 */
static void test_gateway_decap_and_snat(void **state)
{
	struct harness *h = *state;
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 2 };
	struct pb_ipv4 outer = pb_ipv4_hdr(NODE2_IP, NODE_IP);
	struct pb_ipv4 inner = pb_ipv4_hdr(IP_R, EXT_HERE);
	struct pb_tcp tcp = pb_tcp_hdr(42000, 53, PB_TCP_SYN);
	struct pb_udp udp = { .sport = 50000, .dport = 6081, .len = PB_AUTO, .no_csum = true };
	static const uint8_t gnv[8] = { 0, 0, 0x65, 0x58, 0, 0x01, 0x90, 0 }; /* VNI 400 */
	struct frame fwd = frame_tcp4(IP_R, EXT_HERE, 42000, 53, PB_TCP_SYN, 63), reply;
	static const uint8_t gnv_world[8] = { 0, 0, 0x65, 0x58, 0, 0, 2, 0 };
	uint16_t port;
	uint8_t buf[256];
	struct pb_pkt pk;
	int n;

	pb_init(&pk, buf, sizeof(buf));
	pb_eth(&pk, mac, mac, PB_AUTO);
	pb_ipv4(&pk, &outer);
	pb_udp(&pk, &udp);
	pb_bytes(&pk, gnv, sizeof(gnv));
	pb_eth(&pk, mac, mac, PB_AUTO);
	pb_ipv4(&pk, &inner);
	pb_tcp(&pk, &tcp);
	n = pb_finish(&pk);
	assert_true(n > 0);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, buf, (size_t)n), TC_ACT_OK);
	assert_int_equal(h->out_len, (size_t)n - 50);
	assert_addrs(h, 14, IP_R, EXT_HERE);

	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, fwd.buf, fwd.len), TC_ACT_OK);
	assert_addrs(h, 14, EGRESS_IP, EXT_HERE);
	memcpy(&port, h->out + 14 + 20, 2);

	/* the reply: translated back to R, and back through the tunnel to R's node (VNI 2) */
	reply = frame_tcp4(EXT_HERE, EGRESS_IP, 53, ntohs(port), PB_TCP_SYN | PB_TCP_ACK, 60);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, reply.buf, reply.len), TC_ACT_REDIRECT);
	assert_int_equal(h->out_len, reply.len + 50);
	assert_addrs(h, 14, NODE_IP, NODE2_IP);
	assert_memory_equal(h->out + 14 + 28, gnv_world, sizeof(gnv_world));
	assert_addrs(h, 14 + 50, EXT_HERE, IP_R);
	memcpy(&port, h->out + 14 + 50 + 22, 2);
	assert_int_equal(ntohs(port), 42000);

	/* the same Geneve packet from a host outside the cluster */
	memcpy(buf + 14 + 12, &(uint32_t){ EXT_GW2 }, 4);
	pb_ipv4_fix_csum(buf + 14, 20);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, buf, (size_t)n), TC_ACT_OK);
	assert_int_equal(h->out_len, (size_t)n);
}

/*
 * A pod packet with no room for the 50-byte encapsulation to its remote gateway: ICMP
 * fragmentation needed from this node to the pod (MTU 1450, its packet quoted), delivered
 * to the pod's veth with its MACs, counted as a FRAG_NEEDED drop: never a silent loss.
 */
static void test_too_big_for_the_tunnel(void **state)
{
	struct harness *h = *state;
	struct pb_ipv4 ip = pb_ipv4_hdr(IP_A, EXT_GW2);
	struct pb_tcp tcp = pb_tcp_hdr(41010, 80, PB_TCP_ACK);
	const struct ciliate_event *ev;
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 9 };
	static uint8_t buf[1600];
	struct pb_pkt pk;
	uint16_t v;
	char why[128];
	int n;

	pb_init(&pk, buf, sizeof(buf));
	pb_eth(&pk, mac, mac, PB_AUTO);
	pb_ipv4(&pk, &ip);
	pb_tcp(&pk, &tcp);
	pb_fill(&pk, 'x', 1460);
	n = pb_finish(&pk);
	assert_int_equal(n, 1514);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, buf, (size_t)n), TC_ACT_REDIRECT);
	ev = harness_event(h, EVENT_DROP);
	assert_non_null(ev);
	assert_int_equal(ev->reason, REASON_FRAG_NEEDED);
	assert_int_equal(h->out_len, 14 + 20 + 8 + 28);
	assert_addrs(h, 14, NODE_IP, IP_A);
	assert_int_equal(h->out[14 + 20], 3);
	assert_int_equal(h->out[14 + 21], 4);
	memcpy(&v, h->out + 14 + 20 + 6, 2);
	assert_int_equal(ntohs(v), 1450);
	assert_memory_equal(h->out + 14 + 28, buf + 14, 20); /* the pod's own header quoted */
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("checksums: %s", why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_redirect_to_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_excluded_cidr_masqueraded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_gateway_and_no_egress_ip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_gateway_snat_and_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_decap_and_snat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big_for_the_tunnel, setup, teardown),
	};

	return cmocka_run_group_tests_name("bpf_egress", tests, NULL, NULL);
}
