/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF program tests of transparent encryption (bpf/lib/encrypt.h in to-netdev and to-overlay)
 * through BPF_PROG_TEST_RUN, with the node config and ipcache marks an agent would write:
 * - native routing: a local pod's packet for a pod of a node whose peer is configured
 *   (encrypt_key 1) is redirected into the WireGuard device, unchanged; for a pod of a node
 *   without a peer it passes in plaintext, or, in strict mode, is dropped with
 *   UNENCRYPTED_TRAFFIC (195) — also for a pod address only the node's pod CIDR entry covers;
 * - pod to a remote node's own address, and node-to-node traffic, are never redirected;
 * - tunnel routing: this node's VXLAN packet (UDP 8472) to a node with a peer is redirected,
 *   the WireGuard UDP itself (51871) is not; to-overlay drops a pod's packet to a node
 *   without a peer in strict mode, but not outside the strict CIDR;
 * - without the WireGuard flag nothing is redirected.
 *
 * Cast: this node 192.0.2.1 (pods 10.244.0.0/24, pod A 10.244.0.21), node 2 192.0.2.2 with a
 * peer (pod B 10.244.1.30, CIDR 10.244.1.0/24), node 3 192.0.2.3 without one (pod C
 * 10.244.2.40, CIDR 10.244.2.0/24); the device's ifindex 77.
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

#define NODE_IP PB_IP4(192, 0, 2, 1)
#define NODE2_IP PB_IP4(192, 0, 2, 2)
#define NODE3_IP PB_IP4(192, 0, 2, 3)
#define IP_A PB_IP4(10, 244, 0, 21)
#define IP_B PB_IP4(10, 244, 1, 30)
#define IP_C PB_IP4(10, 244, 2, 40)
#define IP_C_UNKNOWN PB_IP4(10, 244, 2, 99) /* only node 3's pod CIDR covers it */
#define WG_IFINDEX 77
#define ID_A 300

static void put_ipcache(struct harness *h, uint32_t ip, uint8_t plen, uint32_t identity,
			uint32_t tunnel, uint8_t flags, uint8_t encrypt_key)
{
	struct ipcache_key k = { .prefixlen = IPCACHE_PREFIX_BASE + plen,
				 .family = CILIATE_AF_INET };
	struct ipcache_value v = { .identity = identity, .tunnel_endpoint = tunnel,
				   .flags = flags, .encrypt_key = encrypt_key };
	struct diag d = { "" };

	k.addr.v4 = ip;
	if (dp_ipcache_upsert(h->dp, &k, &v, &d))
		fail_msg("ipcache: %s", d.msg);
}

static void set_config(struct harness *h, uint8_t encrypt)
{
	struct node_config cfg;
	struct diag d = { "" };

	memset(&cfg, 0, sizeof(cfg));
	cfg.node_ip = NODE_IP;
	cfg.pod_cidr = PB_IP4(10, 244, 0, 0);
	cfg.pod_cidr_len = 24;
	cfg.native_cidr = PB_IP4(10, 244, 0, 0);
	cfg.native_cidr_len = 16;
	cfg.mtu = 1500;
	cfg.encrypt = encrypt;
	cfg.strict_cidr = PB_IP4(10, 244, 0, 0);
	cfg.strict_cidr_len = 16;
	cfg.wg_ifindex = WG_IFINDEX;
	assert_int_equal(dp_node_config_set(h->dp, &cfg, &d), 0);
}

static int setup(void **state)
{
	struct datapath_opts opts = { .trace_all = true };
	struct harness *h = harness_new_opts(&opts);
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, 0);

	harness_add_endpoint(h, &a, true);
	put_ipcache(h, IP_A, 32, ID_A, NODE_IP, IPCACHE_F_ENDPOINT, 0);
	put_ipcache(h, NODE_IP, 32, IDENTITY_HOST, 0, IPCACHE_F_LOCAL_NODE, 0);
	/* node 2: a configured peer, every entry it hosts marked */
	put_ipcache(h, NODE2_IP, 32, IDENTITY_REMOTE_NODE, NODE2_IP, 0, 1);
	put_ipcache(h, IP_B, 32, 400, NODE2_IP, IPCACHE_F_ENDPOINT, 1);
	put_ipcache(h, PB_IP4(10, 244, 1, 0), 24, IDENTITY_WORLD, NODE2_IP, 0, 1);
	/* node 3: no peer (its key is unknown) */
	put_ipcache(h, NODE3_IP, 32, IDENTITY_REMOTE_NODE, NODE3_IP, 0, 0);
	put_ipcache(h, IP_C, 32, 500, NODE3_IP, IPCACHE_F_ENDPOINT, 0);
	put_ipcache(h, PB_IP4(10, 244, 2, 0), 24, IDENTITY_WORLD, NODE3_IP, 0, 0);
	set_config(h, NODE_ENC_F_WIREGUARD);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	harness_free(*state);
	return 0;
}

/* Native routing: pod A -> pod B (node 2 has a peer): into the device, unchanged. */
static void test_pod_to_peer_redirected(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, IP_B, 40000, 80, PB_TCP_SYN, 64);
	const struct ciliate_event *ev;

	set_config(h, NODE_ENC_F_WIREGUARD);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, f.buf, f.len), TC_ACT_REDIRECT);
	assert_int_equal(h->out_len, f.len);
	assert_memory_equal(h->out, f.buf, f.len);
	ev = harness_event(h, EVENT_TRACE);
	assert_non_null(ev);
	assert_int_equal(ev->target_ifindex, WG_IFINDEX);
	assert_int_equal(ev->src_identity, ID_A);
	assert_int_equal(ev->dst_identity, 400);
	/* a pod of node 2 this node has no /32 for: node 2's pod CIDR entry is marked too */
	f = frame_tcp4(IP_A, PB_IP4(10, 244, 1, 99), 40001, 80, PB_TCP_SYN, 64);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, f.buf, f.len), TC_ACT_REDIRECT);
}

/* Native routing: pod A -> pod C (node 3 without a peer): plaintext, or dropped in strict. */
static void test_pod_to_unknown_peer(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, IP_C, 40002, 80, PB_TCP_SYN, 64);
	struct frame u = frame_udp4(IP_A, IP_C_UNKNOWN, 40003, 53);

	set_config(h, NODE_ENC_F_WIREGUARD);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, f.buf, f.len), TC_ACT_OK);
	set_config(h, NODE_ENC_F_WIREGUARD | NODE_ENC_F_STRICT);
	harness_run(h, HOOK_TO_NETDEV, f.buf, f.len);
	harness_assert_drop(h, REASON_UNENCRYPTED_TRAFFIC);
	harness_run(h, HOOK_TO_NETDEV, u.buf, u.len);
	harness_assert_drop(h, REASON_UNENCRYPTED_TRAFFIC);
	/* a peer-less node's own address is not pod traffic: strict mode lets it pass */
	f = frame_tcp4(IP_A, NODE3_IP, 40004, 10250, PB_TCP_SYN, 64);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, f.buf, f.len), TC_ACT_OK);
	set_config(h, NODE_ENC_F_WIREGUARD);
}

/* Never into the device: pod to node 2's own address, node to node, WireGuard's own UDP. */
static void test_not_pod_traffic_passes(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, NODE2_IP, 40005, 10250, PB_TCP_SYN, 64);
	struct frame n = frame_tcp4(NODE_IP, NODE2_IP, 40006, 22, PB_TCP_SYN, 64);
	struct frame w = frame_udp4(NODE_IP, NODE2_IP, 51871, 51871);

	set_config(h, NODE_ENC_F_WIREGUARD | NODE_ENC_F_STRICT);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, f.buf, f.len), TC_ACT_OK);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, n.buf, n.len), TC_ACT_OK);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, w.buf, w.len), TC_ACT_OK);
	set_config(h, NODE_ENC_F_WIREGUARD);
}

/* Tunnel routing: this node's VXLAN packet to node 2 goes into the device, to node 3 not. */
static void test_vxlan_to_peer_redirected(void **state)
{
	struct harness *h = *state;
	struct frame v2 = frame_udp4(NODE_IP, NODE2_IP, 43210, 8472);
	struct frame v3 = frame_udp4(NODE_IP, NODE3_IP, 43210, 8472);
	struct frame other = frame_udp4(PB_IP4(192, 0, 2, 9), NODE2_IP, 43210, 8472);

	set_config(h, NODE_ENC_F_WIREGUARD);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, v2.buf, v2.len), TC_ACT_REDIRECT);
	assert_memory_equal(h->out, v2.buf, v2.len);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, v3.buf, v3.len), TC_ACT_OK);
	/* not from this node's address: not its overlay */
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, other.buf, other.len), TC_ACT_OK);
}

/* Tunnel routing, strict mode: to-overlay drops pod A -> pod C (node 3 has no peer). */
static void test_overlay_strict(void **state)
{
	struct harness *h = *state;
	struct frame c = frame_tcp4(IP_A, IP_C, 40007, 80, PB_TCP_SYN, 64);
	struct frame b = frame_tcp4(IP_A, IP_B, 40008, 80, PB_TCP_SYN, 64);

	set_config(h, NODE_ENC_F_WIREGUARD | NODE_ENC_F_STRICT);
	harness_run(h, HOOK_TO_OVERLAY, c.buf, c.len);
	harness_assert_drop(h, REASON_UNENCRYPTED_TRAFFIC);
	assert_int_equal(harness_run(h, HOOK_TO_OVERLAY, b.buf, b.len), TC_ACT_OK);
	/* without strict mode the same packet is tunnelled (in plaintext) */
	set_config(h, NODE_ENC_F_WIREGUARD);
	assert_int_equal(harness_run(h, HOOK_TO_OVERLAY, c.buf, c.len), TC_ACT_OK);
}

/* Strict mode applies only inside its CIDR. */
static void test_strict_cidr_bounds(void **state)
{
	struct harness *h = *state;
	struct node_config cfg;
	struct frame c = frame_tcp4(IP_A, IP_C, 40009, 80, PB_TCP_SYN, 64);
	struct diag d = { "" };

	memset(&cfg, 0, sizeof(cfg));
	cfg.node_ip = NODE_IP;
	cfg.pod_cidr = PB_IP4(10, 244, 0, 0);
	cfg.pod_cidr_len = 24;
	cfg.mtu = 1500;
	cfg.encrypt = NODE_ENC_F_WIREGUARD | NODE_ENC_F_STRICT;
	cfg.strict_cidr = PB_IP4(10, 244, 1, 0); /* node 2's pods only */
	cfg.strict_cidr_len = 24;
	cfg.wg_ifindex = WG_IFINDEX;
	assert_int_equal(dp_node_config_set(h->dp, &cfg, &d), 0);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, c.buf, c.len), TC_ACT_OK);
	assert_int_equal(harness_run(h, HOOK_TO_OVERLAY, c.buf, c.len), TC_ACT_OK);
	set_config(h, NODE_ENC_F_WIREGUARD);
}

/* Encryption off: the marks alone redirect nothing. */
static void test_off_nothing_redirected(void **state)
{
	struct harness *h = *state;
	struct frame f = frame_tcp4(IP_A, IP_B, 40010, 80, PB_TCP_SYN, 64);
	struct frame v2 = frame_udp4(NODE_IP, NODE2_IP, 43210, 8472);

	set_config(h, 0);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, f.buf, f.len), TC_ACT_OK);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, v2.buf, v2.len), TC_ACT_OK);
	set_config(h, NODE_ENC_F_WIREGUARD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pod_to_peer_redirected),
		cmocka_unit_test(test_pod_to_unknown_peer),
		cmocka_unit_test(test_not_pod_traffic_passes),
		cmocka_unit_test(test_vxlan_to_peer_redirected),
		cmocka_unit_test(test_overlay_strict),
		cmocka_unit_test(test_strict_cidr_bounds),
		cmocka_unit_test(test_off_nothing_redirected),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
