/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF program tests for to-overlay / from-overlay through BPF_PROG_TEST_RUN: the identity sent
 * as VNI, the tunnel endpoint, the drop for destinations without one, and on receive the VNI
 * identity (not the ipcache's) deciding ingress policy, conntrack, delivery and the fallback
 * when a packet carries no tunnel key.
 *
 * BPF_PROG_TEST_RUN cannot attach a tunnel key, so received packets are run through a test
 * program (tests/bpf/progs/tunnel_inject.bpf.c) that sets one, as the VXLAN device does, and
 * tail-calls from-overlay.
 *
 * Cast: this node 192.0.2.1 (host), node-2 192.0.2.2 (remote-node); local pods A 10.244.0.21
 * (ep 1, identity 300) and B 10.244.0.22 (ep 2, identity 301, ingress isolated: admits 400
 * on TCP 80 and remote-node on TCP 9090); remote pod R 10.244.1.30 (identity 400) on node-2.
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
#include "test/tunnel_inject.skel.h"

#define IP_N1 PB_IP4(192, 0, 2, 1)
#define IP_N2 PB_IP4(192, 0, 2, 2)
#define IP_A PB_IP4(10, 244, 0, 21)
#define IP_B PB_IP4(10, 244, 0, 22)
#define IP_R PB_IP4(10, 244, 1, 30)
#define IP_GONE PB_IP4(10, 244, 1, 99)
#define IP_W PB_IP4(203, 0, 113, 10)
#define IP_CIDR PB_IP4(198, 51, 100, 7)
#define ID_A 300
#define ID_B 301
#define ID_R 400
#define ID_WRONG 999

struct fixture {
	struct harness *h;
	struct tunnel_inject *inj;
};

/* The ipcache entry of R is passed in: some tests make it lie. */
static void cast(struct harness *h, uint32_t r_identity)
{
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, 0);
	struct endpoint_info b = harness_endpoint(IP_B, 2, ID_B, EP_F_INGRESS_ENFORCED);

	harness_add_endpoint(h, &a, true);
	harness_add_endpoint(h, &b, false);
	harness_add_ipcache_tunnel(h, IP_N1, 32, IDENTITY_HOST, 0, IPCACHE_F_LOCAL_NODE);
	harness_add_ipcache_tunnel(h, IP_N2, 32, IDENTITY_REMOTE_NODE, IP_N2, 0);
	harness_add_ipcache_tunnel(h, IP_A, 32, ID_A, IP_N1, IPCACHE_F_ENDPOINT);
	harness_add_ipcache_tunnel(h, IP_B, 32, ID_B, IP_N1, IPCACHE_F_ENDPOINT);
	harness_add_ipcache_tunnel(h, IP_R, 32, r_identity, IP_N2, IPCACHE_F_ENDPOINT);
	/* a policy CIDR: a node-local identity, no tunnel endpoint */
	harness_add_ipcache_tunnel(h, IP_CIDR & htonl(0xffffff00), 24, IDENTITY_LOCAL_CIDR_MIN + 5,
				   0, 0);
	harness_add_policy(h, 2, ID_R, DIR_INGRESS, IPPROTO_TCP, 80, 16, false);
	harness_add_policy(h, 2, IDENTITY_REMOTE_NODE, DIR_INGRESS, IPPROTO_TCP, 9090, 16, false);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint32_t zero = 0;
	int fd;

	assert_non_null(f);
	f->h = harness_new();
	cast(f->h, ID_WRONG); /* R's ipcache identity is wrong unless a test says otherwise */
	f->inj = tunnel_inject__open_and_load();
	assert_non_null(f->inj);
	fd = datapath_prog_fd(f->h->dp, HOOK_FROM_OVERLAY);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->inj->maps.next), &zero, &fd, BPF_ANY),
			 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tunnel_inject__destroy(f->inj);
	harness_free(f->h);
	free(f);
	return 0;
}

/* Runs a frame through from-overlay as if it arrived with VNI vni from node `remote`. */
static int recv_with_vni(struct fixture *f, uint32_t vni, uint32_t remote, const struct frame *fr)
{
	f->inj->bss->inject_vni = vni;
	f->inj->bss->inject_remote = ntohl(remote);
	return harness_run_fd(f->h, bpf_program__fd(f->inj->progs.inject_tunnel_key), fr->buf,
			      fr->len);
}

static void assert_drop(struct harness *h, unsigned int reason, uint32_t src_identity)
{
	const struct ciliate_event *ev = harness_event(h, EVENT_DROP);

	assert_int_equal(h->retval, TC_ACT_SHOT);
	assert_non_null(ev);
	assert_int_equal(ev->reason, reason);
	assert_int_equal(ev->src_identity, src_identity);
	assert_int_equal(ev->src_file, SRC_OVERLAY);
	assert_true(ev->src_line > 0);
}

/* ---- to-overlay ---- */

static void test_to_overlay_pod_identity_is_the_vni(void **state)
{
	struct harness *h = ((struct fixture *)*state)->h;
	struct frame syn = frame_tcp4(IP_A, IP_R, 41000, 80, PB_TCP_SYN, 63);
	const struct ciliate_event *ev;

	assert_int_equal(harness_run(h, HOOK_TO_OVERLAY, syn.buf, syn.len), TC_ACT_OK);
	assert_int_equal(h->out_len, syn.len);
	assert_memory_equal(h->out, syn.buf, syn.len); /* the device encapsulates, not us */
	ev = harness_event(h, EVENT_TRACE);
	assert_non_null(ev);
	assert_int_equal(ev->hook, HOOK_TO_OVERLAY);
	assert_int_equal(ev->src_identity, ID_A); /* the endpoint's, not a lookup by address */
	assert_int_equal(ev->dst_identity, ID_WRONG);
	assert_int_equal(ev->tunnel_endpoint, IP_N2);
	assert_null(harness_event(h, EVENT_DROP));
}

static void test_to_overlay_node_and_other_sources(void **state)
{
	struct harness *h = ((struct fixture *)*state)->h;
	struct frame host = frame_tcp4(IP_N1, IP_R, 41001, 80, PB_TCP_SYN, 64);
	struct frame world = frame_udp4(IP_W, IP_R, 5000, 53);
	struct frame cidr = frame_udp4(IP_CIDR, IP_R, 5000, 53);

	assert_int_equal(harness_run(h, HOOK_TO_OVERLAY, host.buf, host.len), TC_ACT_OK);
	assert_int_equal(harness_event(h, EVENT_TRACE)->src_identity, IDENTITY_HOST);
	assert_int_equal(harness_run(h, HOOK_TO_OVERLAY, world.buf, world.len), TC_ACT_OK);
	assert_int_equal(harness_event(h, EVENT_TRACE)->src_identity, IDENTITY_WORLD);
	/* a node-local CIDR identity does not fit the VNI and means nothing elsewhere */
	assert_int_equal(harness_run(h, HOOK_TO_OVERLAY, cidr.buf, cidr.len), TC_ACT_OK);
	assert_int_equal(harness_event(h, EVENT_TRACE)->src_identity, IDENTITY_WORLD);
}

static void test_to_overlay_without_tunnel_endpoint_drops(void **state)
{
	struct harness *h = ((struct fixture *)*state)->h;
	uint64_t before = harness_metric_packets(h, REASON_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT,
						 DIR_EGRESS);
	struct frame gone = frame_tcp4(IP_A, IP_GONE, 41002, 80, PB_TCP_SYN, 63);
	struct frame world = frame_tcp4(IP_A, IP_W, 41003, 80, PB_TCP_SYN, 63);
	struct frame cidr = frame_tcp4(IP_A, IP_CIDR, 41004, 80, PB_TCP_SYN, 63);

	harness_run(h, HOOK_TO_OVERLAY, gone.buf, gone.len);
	assert_drop(h, REASON_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT, ID_A);
	harness_run(h, HOOK_TO_OVERLAY, world.buf, world.len);
	assert_drop(h, REASON_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT, ID_A);
	harness_run(h, HOOK_TO_OVERLAY, cidr.buf, cidr.len);
	assert_drop(h, REASON_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT, ID_A);
	assert_int_equal(harness_metric_packets(h, REASON_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT,
						DIR_EGRESS),
			 before + 3);
}

/* ---- from-overlay ---- */

static void test_from_overlay_vni_identity_decides_policy(void **state)
{
	struct fixture *f = *state;
	struct harness *h = f->h;
	struct frame syn = frame_tcp4(IP_R, IP_B, 42000, 80, PB_TCP_SYN, 63);
	struct frame lie = frame_tcp4(IP_R, IP_B, 42001, 80, PB_TCP_SYN, 63);
	const struct ciliate_event *ev;
	struct endpoint_info b = harness_endpoint(IP_B, 2, ID_B, EP_F_INGRESS_ENFORCED);
	struct ct_entry ct;
	uint8_t mac[6], delivered[512];
	uint32_t delivered_len;
	char why[128];

	/* the ipcache says R is ID_WRONG (not admitted); the VNI says ID_R (admitted) */
	assert_int_equal(recv_with_vni(f, ID_R, IP_N2, &syn), TC_ACT_REDIRECT);
	ev = harness_event(h, EVENT_POLICY_VERDICT);
	assert_non_null(ev);
	assert_int_equal(ev->src_identity, ID_R);
	assert_int_equal(ev->verdict, TC_ACT_OK);
	ev = harness_event(h, EVENT_TRACE);
	assert_non_null(ev);
	assert_int_equal(ev->hook, HOOK_FROM_OVERLAY);
	assert_int_equal(ev->src_identity, ID_R);
	assert_int_equal(ev->dst_identity, ID_B);
	assert_int_equal(ev->target_ifindex, 1002);
	assert_int_equal(ev->tunnel_endpoint, IP_N2);
	assert_false(ev->flags & EVENT_F_IDENTITY_FROM_IPCACHE);

	/* routed delivery: gateway -> B's MAC, TTL 62, checksums valid */
	pb_pod_mac(IP_B, mac);
	assert_memory_equal(h->out, mac, 6);
	pb_gw_mac(IP_B, mac);
	assert_memory_equal(h->out + 6, mac, 6);
	assert_int_equal(h->out[14 + 8], 62);
	assert_int_equal(replay_checksums_valid(h->out, h->out_len, why, sizeof(why)), 0);

	/* tracked for B's ingress with the VNI identity */
	assert_true(harness_ct_get(h, IP_R, IP_B, 42000, 80, IPPROTO_TCP, CT_IN, &ct));
	assert_int_equal(ct.src_identity, ID_R);
	assert_false(ct.flags & CT_F_PEER_LOCAL);

	/* to-container on B's veth (where the redirect lands) finds it tracked: no second policy
	 * lookup, which with the lying ipcache would deny it */
	delivered_len = h->out_len;
	memcpy(delivered, h->out, delivered_len);
	harness_add_endpoint(h, &b, true);
	assert_int_equal(harness_run(h, HOOK_TO_CONTAINER, delivered, delivered_len), TC_ACT_OK);
	assert_null(harness_event(h, EVENT_POLICY_VERDICT));
	assert_int_equal(harness_event(h, EVENT_TRACE)->ct_status, CT_ESTABLISHED);

	/* a VNI the policy does not admit is denied */
	assert_int_equal(recv_with_vni(f, ID_WRONG, IP_N2, &lie), TC_ACT_SHOT);
	assert_drop(h, REASON_POLICY_DENIED, ID_WRONG);
	assert_false(harness_ct_get(h, IP_R, IP_B, 42001, 80, IPPROTO_TCP, CT_IN, &ct));
}

static void test_from_overlay_vni_beats_a_correct_ipcache_too(void **state)
{
	struct fixture *f = *state;
	struct harness *h = f->h;
	struct frame syn = frame_tcp4(IP_R, IP_B, 42002, 80, PB_TCP_SYN, 63);

	harness_add_ipcache_tunnel(h, IP_R, 32, ID_R, IP_N2, IPCACHE_F_ENDPOINT);
	/* the ipcache would admit R; the sending node says the source is ID_WRONG */
	assert_int_equal(recv_with_vni(f, ID_WRONG, IP_N2, &syn), TC_ACT_SHOT);
	assert_drop(h, REASON_POLICY_DENIED, ID_WRONG);
}

static void test_from_overlay_host_vni_is_remote_node(void **state)
{
	struct fixture *f = *state;
	struct harness *h = f->h;
	struct frame ok = frame_tcp4(IP_N2, IP_B, 43000, 9090, PB_TCP_SYN, 63);
	struct frame no = frame_tcp4(IP_N2, IP_B, 43001, 80, PB_TCP_SYN, 63);
	struct ct_entry ct;

	assert_int_equal(recv_with_vni(f, IDENTITY_HOST, IP_N2, &ok), TC_ACT_REDIRECT);
	assert_int_equal(harness_event(h, EVENT_TRACE)->src_identity, IDENTITY_REMOTE_NODE);
	assert_true(harness_ct_get(h, IP_N2, IP_B, 43000, 9090, IPPROTO_TCP, CT_IN, &ct));
	assert_int_equal(ct.src_identity, IDENTITY_REMOTE_NODE);
	assert_int_equal(recv_with_vni(f, IDENTITY_HOST, IP_N2, &no), TC_ACT_SHOT);
	assert_drop(h, REASON_POLICY_DENIED, IDENTITY_REMOTE_NODE);
}

static void test_from_overlay_vni_zero_is_invalid(void **state)
{
	struct fixture *f = *state;
	struct frame syn = frame_tcp4(IP_R, IP_B, 42003, 80, PB_TCP_SYN, 63);

	assert_int_equal(recv_with_vni(f, 0, IP_N2, &syn), TC_ACT_SHOT);
	assert_drop(f->h, REASON_INVALID_IDENTITY, 0);
}

static void test_from_overlay_without_key_uses_ipcache(void **state)
{
	struct harness *h = ((struct fixture *)*state)->h;
	struct frame syn = frame_tcp4(IP_R, IP_B, 42004, 80, PB_TCP_SYN, 63);
	const struct ciliate_event *ev;

	/* no key: the ipcache's (wrong) identity is used, and the events say so */
	assert_int_equal(harness_run(h, HOOK_FROM_OVERLAY, syn.buf, syn.len), TC_ACT_SHOT);
	assert_drop(h, REASON_POLICY_DENIED, ID_WRONG);
	ev = harness_event(h, EVENT_DROP);
	assert_true(ev->flags & EVENT_F_IDENTITY_FROM_IPCACHE);
	assert_int_equal(ev->tunnel_endpoint, 0);

	harness_add_ipcache_tunnel(h, IP_R, 32, ID_R, IP_N2, IPCACHE_F_ENDPOINT);
	assert_int_equal(harness_run(h, HOOK_FROM_OVERLAY, syn.buf, syn.len), TC_ACT_REDIRECT);
	ev = harness_event(h, EVENT_TRACE);
	assert_int_equal(ev->src_identity, ID_R);
	assert_true(ev->flags & EVENT_F_IDENTITY_FROM_IPCACHE);
}

static void test_from_overlay_to_the_node_passes(void **state)
{
	struct fixture *f = *state;
	struct harness *h = f->h;
	struct frame syn = frame_tcp4(IP_R, IP_N1, 42005, 10250, PB_TCP_SYN, 63);
	struct ct_entry ct;

	assert_int_equal(recv_with_vni(f, ID_R, IP_N2, &syn), TC_ACT_OK);
	assert_memory_equal(h->out, syn.buf, syn.len);
	assert_int_equal(harness_event(h, EVENT_TRACE)->dst_identity, IDENTITY_HOST);
	assert_false(harness_ct_get(h, IP_R, IP_N1, 42005, 10250, IPPROTO_TCP, CT_IN, &ct));
}

static void test_from_overlay_reply_passes_isolation(void **state)
{
	struct fixture *f = *state;
	struct harness *h = f->h;
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, EP_F_INGRESS_ENFORCED);
	struct frame syn = frame_tcp4(IP_A, IP_R, 44000, 80, PB_TCP_SYN, 64);
	struct frame synack = frame_tcp4(IP_R, IP_A, 80, 44000, PB_TCP_SYN | PB_TCP_ACK, 63);
	struct frame stray = frame_tcp4(IP_R, IP_A, 81, 44000, PB_TCP_SYN, 63);
	const struct ciliate_event *ev;

	harness_add_endpoint(h, &a, true); /* A denies all ingress */
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, syn.buf, syn.len), TC_ACT_OK);
	assert_int_equal(recv_with_vni(f, ID_R, IP_N2, &synack), TC_ACT_REDIRECT);
	ev = harness_event(h, EVENT_TRACE);
	assert_int_equal(ev->ct_status, CT_REPLY);
	assert_true(ev->flags & EVENT_F_IS_REPLY);
	assert_int_equal(recv_with_vni(f, ID_R, IP_N2, &stray), TC_ACT_SHOT);
	assert_drop(h, REASON_POLICY_DENIED, ID_R);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_to_overlay_pod_identity_is_the_vni, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_to_overlay_node_and_other_sources, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_to_overlay_without_tunnel_endpoint_drops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_from_overlay_vni_identity_decides_policy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_from_overlay_vni_beats_a_correct_ipcache_too,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_from_overlay_host_vni_is_remote_node, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_from_overlay_vni_zero_is_invalid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_from_overlay_without_key_uses_ipcache, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_from_overlay_to_the_node_passes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_from_overlay_reply_passes_isolation, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
