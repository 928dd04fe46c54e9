/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF program tests of north-south services and the NAT engine (bpf/progs/netdev.bpf.c,
 * bpf/lib/nodeport.h, bpf/lib/nat.h) through BPF_PROG_TEST_RUN: NodePort to a remote backend
 * with SNAT to the node and its reply translated back (valid checksums both ways), a second
 * client colliding on the reply tuple getting another port, exhaustion of a small port range
 * (NO_MAPPING_FOR_NAT_MASQUERADE), a local backend delivered to its veth and its reply leaving
 * the pod from the frontend, loadBalancerSourceRanges, masquerade of a pod's TCP and ICMP echo
 * to the outside, an ICMP error about a masqueraded flow translated back, and what is not
 * masqueraded.
 *
 * Cast: node 192.0.2.1 (pod range 10.244.0.0/24, native routing 10.244.0.0/16), other node
 * 192.0.2.2; pod A 10.244.0.21 (ep 1, the test-run device); remote backend R 10.244.1.30;
 * external clients C1 203.0.113.10, C2 203.0.113.11, C3 203.0.113.50.
 * Frontends: NodePort 192.0.2.1:30080 -> R:8080 (rev-NAT 5), NodePort 192.0.2.1:30090 -> A:8080
 * (rev-NAT 6), LoadBalancer 198.51.100.10:80 -> R:8080 with source range 203.0.113.0/28
 * (rev-NAT 9).
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
#define IP_A PB_IP4(10, 244, 0, 21)
#define IP_R PB_IP4(10, 244, 1, 30)
#define IP_C1 PB_IP4(203, 0, 113, 10)
#define IP_C2 PB_IP4(203, 0, 113, 11)
#define IP_C3 PB_IP4(203, 0, 113, 50)
#define LB_IP PB_IP4(198, 51, 100, 10)
#define ID_A 300
#define ID_R 400
#define BE_R 1
#define BE_A 2

static int setup_range(void **state, uint16_t nat_min, uint16_t nat_max)
{
	struct datapath_opts opts = { .trace_all = true, .nat_port_min = nat_min,
				      .nat_port_max = nat_max };
	struct harness *h = harness_new_opts(&opts);
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, 0);
	struct node_config cfg;
	struct lb_src_range_key rk;
	struct diag d = { "" };
	uint8_t one = 1;

	harness_add_endpoint(h, &a, true);
	harness_add_ipcache(h, IP_A, 32, ID_A);
	harness_add_ipcache(h, IP_R, 32, ID_R);
	harness_add_ipcache(h, NODE2_IP, 32, IDENTITY_REMOTE_NODE);
	memset(&cfg, 0, sizeof(cfg));
	cfg.node_ip = NODE_IP;
	cfg.pod_cidr = PB_IP4(10, 244, 0, 0);
	cfg.pod_cidr_len = 24;
	cfg.native_cidr = PB_IP4(10, 244, 0, 0);
	cfg.native_cidr_len = 16;
	cfg.flags = NODE_CFG_F_KPR | NODE_CFG_F_MASQUERADE;
	assert_int_equal(dp_node_config_set(h->dp, &cfg, &d), 0);
	harness_lb_backend(h, BE_R, IP_R);
	harness_lb_backend(h, BE_A, IP_A);
	harness_lb_frontend(h, NODE_IP, 30080, 5, BE_R, LB_SVC_F_NODEPORT);
	harness_lb_frontend(h, NODE_IP, 30090, 6, BE_A, LB_SVC_F_NODEPORT);
	harness_lb_frontend(h, LB_IP, 80, 9, BE_R, LB_SVC_F_LOADBALANCER | LB_SVC_F_SOURCE_RANGE);
	memset(&rk, 0, sizeof(rk));
	rk.prefixlen = LB_SRC_RANGE_PREFIX_BASE + 28;
	rk.rev_nat_index = 9;
	rk.family = CILIATE_AF_INET;
	rk.addr.v4 = PB_IP4(203, 0, 113, 0);
	harness_map_put(h, MAP_LB_SRC_RANGES, &rk, &one);
	*state = h;
	return 0;
}

static int setup(void **state)
{
	return setup_range(state, 0, 0);
}

/* Two ports only: the third connection finds none. */
static int setup_tiny_range(void **state)
{
	return setup_range(state, 40000, 40001);
}

static int teardown(void **state)
{
	harness_free(*state);
	return 0;
}

static void assert_out(const struct harness *h, uint32_t src, uint16_t sport, uint32_t dst,
		       uint16_t dport)
{
	uint32_t a;
	uint16_t p;
	char why[128];

	memcpy(&a, h->out + 14 + 12, 4);
	assert_int_equal(a, src);
	memcpy(&a, h->out + 14 + 16, 4);
	assert_int_equal(a, dst);
	memcpy(&p, h->out + 14 + 20, 2);
	assert_int_equal(ntohs(p), sport);
	memcpy(&p, h->out + 14 + 22, 2);
	assert_int_equal(ntohs(p), dport);
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("output checksums: %s", why);
}

static uint16_t out_sport(const struct harness *h)
{
	uint16_t p;

	memcpy(&p, h->out + 14 + 20, 2);
	return ntohs(p);
}

static void test_nodeport_remote_backend_snat_and_reply(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_C1, NODE_IP, 40000, 30080, PB_TCP_SYN, 64);
	struct frame synack = frame_tcp4(IP_R, NODE_IP, 8080, 40000, PB_TCP_SYN | PB_TCP_ACK, 64);
	struct frame ack = frame_tcp4(IP_C1, NODE_IP, 40000, 30080, PB_TCP_ACK, 64);

	/* DNAT to R and SNAT to the node; the client's port is in range and kept */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, syn.buf, syn.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 40000, IP_R, 8080);
	assert_non_null(harness_event(h, EVENT_TRACE));
	/* the reply: to the client again, from the NodePort */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, synack.buf, synack.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 30080, IP_C1, 40000);
	/* later packets keep the mapping */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, ack.buf, ack.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 40000, IP_R, 8080);
}

static void test_nodeport_snat_port_collision(void **state)
{
	struct harness *h = *state;
	struct frame c1 = frame_tcp4(IP_C1, NODE_IP, 40000, 30080, PB_TCP_SYN, 64);
	struct frame c2 = frame_tcp4(IP_C2, NODE_IP, 40000, 30080, PB_TCP_SYN, 64);
	struct frame r1 = frame_tcp4(IP_R, NODE_IP, 8080, 40000, PB_TCP_SYN | PB_TCP_ACK, 64);
	struct frame r2;
	uint16_t port2;

	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, c1.buf, c1.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 40000, IP_R, 8080);
	/* the same reply tuple is taken: C2 gets another port */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, c2.buf, c2.len), TC_ACT_OK);
	port2 = out_sport(h);
	assert_int_not_equal(port2, 40000);
	assert_true(port2 >= NAT_PORT_MIN);
	assert_out(h, NODE_IP, port2, IP_R, 8080);
	/* each reply finds its own client */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, r1.buf, r1.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 30080, IP_C1, 40000);
	r2 = frame_tcp4(IP_R, NODE_IP, 8080, port2, PB_TCP_SYN | PB_TCP_ACK, 64);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, r2.buf, r2.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 30080, IP_C2, 40000);
}

static void test_nat_exhaustion(void **state)
{
	struct harness *h = *state;
	uint16_t got[2];

	for (int i = 0; i < 2; i++) {
		struct frame f = frame_tcp4(IP_C1 + htonl((uint32_t)i), NODE_IP, 1000, 30080,
					    PB_TCP_SYN, 64);

		assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, f.buf, f.len), TC_ACT_OK);
		got[i] = out_sport(h);
		assert_true(got[i] == 40000 || got[i] == 40001);
	}
	assert_int_not_equal(got[0], got[1]);
	{
		struct frame f = frame_tcp4(IP_C3, NODE_IP, 1000, 30080, PB_TCP_SYN, 64);

		harness_run(h, HOOK_FROM_NETDEV, f.buf, f.len);
		harness_assert_drop(h, REASON_NO_MAPPING_FOR_NAT_MASQUERADE);
	}
}

static void test_nodeport_local_backend(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_C1, NODE_IP, 40000, 30090, PB_TCP_SYN, 64);
	struct frame synack = frame_tcp4(IP_A, IP_C1, 8080, 40000, PB_TCP_SYN | PB_TCP_ACK, 64);
	const struct ciliate_event *ev;
	struct ct_entry ct;

	/* DNAT only (the client's address preserved), to the pod's veth */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, syn.buf, syn.len), TC_ACT_REDIRECT);
	assert_out(h, IP_C1, 40000, IP_A, 8080);
	ev = harness_event(h, EVENT_TRACE);
	assert_non_null(ev);
	assert_int_equal(ev->src_identity, IDENTITY_WORLD);
	assert_int_equal(ev->dst_identity, ID_A);
	assert_true(harness_ct_get(h, IP_C1, IP_A, 40000, 8080, IPPROTO_TCP, CT_IN, &ct));
	assert_true(ct.flags & CT_F_NODEPORT);
	assert_int_equal(ct.rev_nat_index, 6);
	/* the pod's reply leaves it from the NodePort */
	assert_int_equal(harness_run(h, HOOK_FROM_CONTAINER, synack.buf, synack.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 30090, IP_C1, 40000);
}

static void test_lb_source_ranges(void **state)
{
	struct harness *h = *state;
	struct frame in = frame_tcp4(IP_C1, LB_IP, 40000, 80, PB_TCP_SYN, 64);
	struct frame out = frame_tcp4(IP_C3, LB_IP, 40000, 80, PB_TCP_SYN, 64);

	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, in.buf, in.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 40000, IP_R, 8080);
	harness_run(h, HOOK_FROM_NETDEV, out.buf, out.len);
	harness_assert_drop(h, REASON_DENIED_BY_LB_SRC_RANGE_CHECK);
}

static void test_masquerade_tcp_and_reply(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_A, IP_C1, 41000, 80, PB_TCP_SYN, 64);
	struct frame synack = frame_tcp4(IP_C1, NODE_IP, 80, 41000, PB_TCP_SYN | PB_TCP_ACK, 64);
	struct frame low = frame_tcp4(IP_A, IP_C1, 1234, 80, PB_TCP_SYN, 64);

	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, syn.buf, syn.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 41000, IP_C1, 80);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, synack.buf, synack.len), TC_ACT_OK);
	assert_out(h, IP_C1, 80, IP_A, 41000);
	/* a source port below the range is moved into it */
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, low.buf, low.len), TC_ACT_OK);
	assert_true(out_sport(h) >= NAT_PORT_MIN);
}

static void test_masquerade_icmp_echo(void **state)
{
	struct harness *h = *state;
	struct frame req = frame_icmp4_echo(IP_A, IP_C1, 8, 77, 1);
	struct frame rep;
	uint16_t id;
	uint32_t a;
	char why[128];

	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, req.buf, req.len), TC_ACT_OK);
	memcpy(&a, h->out + 14 + 12, 4);
	assert_int_equal(a, NODE_IP);
	memcpy(&id, h->out + 14 + 20 + 4, 2);
	id = ntohs(id);
	assert_true(id >= NAT_PORT_MIN);
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("echo request checksums: %s", why);
	rep = frame_icmp4_echo(IP_C1, NODE_IP, 0, id, 1);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, rep.buf, rep.len), TC_ACT_OK);
	memcpy(&a, h->out + 14 + 16, 4);
	assert_int_equal(a, IP_A);
	memcpy(&id, h->out + 14 + 20 + 4, 2);
	assert_int_equal(ntohs(id), 77);
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("echo reply checksums: %s", why);
}

/* An ICMP port unreachable about a masqueraded UDP flow reaches the pod, about its own
 * packet: outer destination, quoted source and port translated back, checksums right. */
static void test_masquerade_icmp_error_translated_back(void **state)
{
	struct harness *h = *state;
	struct frame dns = frame_udp4(IP_A, IP_C1, 41000, 53);
	struct frame quoted = frame_udp4(NODE_IP, IP_C1, 41000, 53);
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	struct pb_ipv4 ip = pb_ipv4_hdr(IP_C1, NODE_IP);
	uint8_t err_buf[256];
	const uint8_t *inner;
	struct pb_pkt pk;
	uint32_t a;
	uint16_t port;
	char why[128];
	int n;

	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, dns.buf, dns.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 41000, IP_C1, 53);
	pb_init(&pk, err_buf, sizeof(err_buf));
	pb_eth(&pk, mac, mac, PB_AUTO);
	pb_ipv4(&pk, &ip);
	pb_icmp4_error(&pk, 3, 3, 0, quoted.buf + 14, quoted.len - 14);
	n = pb_finish(&pk);
	assert_true(n > 0);

	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, err_buf, (size_t)n), TC_ACT_OK);
	memcpy(&a, h->out + 14 + 16, 4);
	assert_int_equal(a, IP_A);
	inner = h->out + 14 + 20 + 8;
	memcpy(&a, inner + 12, 4);
	assert_int_equal(a, IP_A);
	memcpy(&port, inner + 20, 2);
	assert_int_equal(ntohs(port), 41000);
	assert_int_equal(pb_csum(inner, 20), 0); /* the quoted header's checksum holds */
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("ICMP error checksums: %s", why);
	assert_int_equal(pb_csum(h->out + 14 + 20, h->out_len - 14 - 20), 0);
}

static void test_not_masqueraded(void **state)
{
	struct harness *h = *state;
	struct frame pod = frame_tcp4(IP_A, IP_R, 41001, 80, PB_TCP_SYN, 64);
	struct frame node = frame_tcp4(IP_A, NODE2_IP, 41002, 80, PB_TCP_SYN, 64);
	struct frame host = frame_tcp4(NODE_IP, IP_C1, 41003, 80, PB_TCP_SYN, 64);

	/* another pod (native routing CIDR), another node, the node's own traffic */
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, pod.buf, pod.len), TC_ACT_OK);
	assert_out(h, IP_A, 41001, IP_R, 80);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, node.buf, node.len), TC_ACT_OK);
	assert_out(h, IP_A, 41002, NODE2_IP, 80);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, host.buf, host.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 41003, IP_C1, 80);
}

/* Node config with a DSR dispatch (NODE_CFG_F_DSR_*; mtu: the fabric's, 0 none) and a DSR
 * NodePort 192.0.2.1:30070 -> R:8080 (rev-NAT 8); R lives on node 2. */
static void dsr_frontend_dispatch(struct harness *h, uint16_t mtu, uint8_t dispatch)
{
	struct node_config cfg;
	struct lb_service svc;
	struct diag d = { "" };
	struct lb_key k;

	memset(&cfg, 0, sizeof(cfg));
	cfg.node_ip = NODE_IP;
	cfg.pod_cidr = PB_IP4(10, 244, 0, 0);
	cfg.pod_cidr_len = 24;
	cfg.native_cidr = PB_IP4(10, 244, 0, 0);
	cfg.native_cidr_len = 16;
	cfg.flags = NODE_CFG_F_KPR | dispatch;
	cfg.mtu = mtu;
	harness_add_ipcache_tunnel(h, IP_R, 32, ID_R, NODE2_IP, IPCACHE_F_ENDPOINT);
	assert_int_equal(dp_node_config_set(h->dp, &cfg, &d), 0);
	harness_lb_frontend(h, NODE_IP, 30070, 8, BE_R, LB_SVC_F_NODEPORT);
	memset(&k, 0, sizeof(k)); /* its slot 0 and slot 1 as a DSR frontend */
	k.addr.v4 = NODE_IP;
	k.dport = htons(30070);
	k.proto = IPPROTO_TCP;
	k.family = CILIATE_AF_INET;
	for (uint16_t slot = 0; slot < 2; slot++) {
		k.backend_slot = slot;
		assert_int_equal(bpf_map_lookup_elem(datapath_map_fd(h->dp, MAP_LB_SERVICES), &k,
						     &svc), 0);
		svc.flags2 |= LB_SVC_F2_FWD_MODE_DSR;
		harness_map_put(h, MAP_LB_SERVICES, &k, &svc);
	}
}

static void dsr_frontend(struct harness *h, uint16_t mtu)
{
	dsr_frontend_dispatch(h, mtu, NODE_CFG_F_DSR_OPT);
}

/*
 * DSR, IPv4 option dispatch. Entry node: the SYN to a DSR NodePort is DNATed to the remote
 * backend, keeps the client as source, and carries option 0x9A/8 with the frontend (port
 * and address byte-swapped as Cilium stores them) right after the base header; valid
 * checksums; the ACK that follows carries none. Backend node: such a request to its pod A
 * records the frontend, and A's reply leaves to-netdev from the frontend.
 */
static void test_dsr_opt(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_C1, NODE_IP, 40000, 30070, PB_TCP_SYN, 64);
	struct frame ack = frame_tcp4(IP_C1, NODE_IP, 40000, 30070, PB_TCP_ACK, 64);
	struct frame reply = frame_tcp4(IP_A, IP_C1, 8080, 40000, PB_TCP_SYN | PB_TCP_ACK, 64);
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	uint8_t opt[8], buf[256];
	uint16_t port_be = htons(30070);
	uint32_t vip = NODE_IP, a;
	struct pb_ipv4 ip = pb_ipv4_hdr(IP_C1, IP_A);
	struct pb_tcp tcp = pb_tcp_hdr(40000, 8080, PB_TCP_SYN);
	struct pb_pkt pk;
	char why[128];
	int n;

	dsr_frontend(h, 0);

	/* entry node */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, syn.buf, syn.len), TC_ACT_OK);
	assert_int_equal(h->out_len, syn.len + 8);
	assert_int_equal(h->out[14] & 0x0f, 7);
	memcpy(&a, h->out + 14 + 12, 4);
	assert_int_equal(a, IP_C1);
	memcpy(&a, h->out + 14 + 16, 4);
	assert_int_equal(a, IP_R);
	opt[0] = 0x9a;
	opt[1] = 8;
	port_be = htons(port_be); /* Cilium's byte order: htons() of the network-order port */
	memcpy(opt + 2, &port_be, 2);
	vip = htonl(vip);
	memcpy(opt + 4, &vip, 4);
	assert_memory_equal(h->out + 14 + 20, opt, 8);
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("DSR SYN checksums: %s", why);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, ack.buf, ack.len), TC_ACT_OK);
	assert_int_equal(h->out_len, ack.len); /* no option after the SYN */
	assert_int_equal(h->out[14] & 0x0f, 5);

	/* backend node: the request for A carries the option; A answers */
	ip.options = opt;
	ip.options_len = sizeof(opt);
	pb_init(&pk, buf, sizeof(buf));
	pb_eth(&pk, mac, mac, PB_AUTO);
	pb_ipv4(&pk, &ip);
	pb_tcp(&pk, &tcp);
	n = pb_finish(&pk);
	assert_true(n > 0);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, buf, (size_t)n), TC_ACT_OK);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, reply.buf, reply.len), TC_ACT_OK);
	assert_out(h, NODE_IP, 30070, IP_C1, 40000);
}

/*
 * DSR MTU outcome: a 1500-byte SYN with data (TCP Fast Open style) to a DSR frontend, on a
 * 1500-byte fabric: no room for the option, so the client gets ICMP fragmentation needed
 * (MTU 1492) from the frontend, quoting its own packet to the frontend, sent back out of
 * the device; counted as a FRAG_NEEDED drop.
 */
static void test_dsr_frag_needed(void **state)
{
	struct harness *h = *state;
	static const uint8_t mac_c[6] = { 0x02, 0, 0, 0, 0, 0xc1 }, mac_n[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	struct pb_ipv4 ip = pb_ipv4_hdr(IP_C1, NODE_IP);
	struct pb_tcp tcp = pb_tcp_hdr(40000, 30070, PB_TCP_SYN);
	const struct ciliate_event *ev;
	static uint8_t buf[1600];
	const uint8_t *icmp, *quote;
	struct pb_pkt pk;
	uint32_t a;
	uint16_t v;
	char why[128];
	int n;

	dsr_frontend(h, 1500);
	pb_init(&pk, buf, sizeof(buf));
	pb_eth(&pk, mac_n, mac_c, PB_AUTO);
	pb_ipv4(&pk, &ip);
	pb_tcp(&pk, &tcp);
	pb_fill(&pk, 'x', 1460);
	n = pb_finish(&pk);
	assert_int_equal(n, 14 + 1500);

	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, buf, (size_t)n), TC_ACT_REDIRECT);
	ev = harness_event(h, EVENT_DROP);
	assert_non_null(ev);
	assert_int_equal(ev->reason, REASON_FRAG_NEEDED);
	assert_int_equal(h->out_len, 14 + 20 + 8 + 28);
	assert_memory_equal(h->out, mac_c, 6); /* back to the client's MAC */
	memcpy(&a, h->out + 14 + 12, 4);
	assert_int_equal(a, NODE_IP);
	memcpy(&a, h->out + 14 + 16, 4);
	assert_int_equal(a, IP_C1);
	icmp = h->out + 14 + 20;
	assert_int_equal(icmp[0], 3);
	assert_int_equal(icmp[1], 4);
	memcpy(&v, icmp + 6, 2);
	assert_int_equal(ntohs(v), 1492);
	quote = icmp + 8;
	memcpy(&a, quote + 16, 4);
	assert_int_equal(a, NODE_IP); /* the client's packet as it sent it: to the frontend */
	memcpy(&v, quote + 20 + 2, 2);
	assert_int_equal(ntohs(v), 30070);
	assert_int_equal(pb_csum(quote, 20), 0);
	assert_int_equal(pb_csum(icmp, 36), 0);
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("ICMP frag needed checksums: %s", why);
}

/* The backend node's side of the ipip dispatch: node 2's NodePort 30070 (any node's, address
 * 0) with this node's backend A, rev-NAT 8, in the DSR-local scope. */
static void dsr_local_nodeport(struct harness *h)
{
	struct lb_key k;
	struct lb_service s;

	memset(&k, 0, sizeof(k));
	k.dport = htons(30070);
	k.proto = IPPROTO_TCP;
	k.family = CILIATE_AF_INET;
	k.scope = LB_SCOPE_DSR_LOCAL;
	memset(&s, 0, sizeof(s));
	s.count = 1;
	s.rev_nat_index = 8;
	s.flags = LB_SVC_F_ROUTABLE | LB_SVC_F_NODEPORT;
	s.flags2 = LB_SVC_F2_FWD_MODE_DSR;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
	k.backend_slot = 1;
	s.count = 0;
	s.backend_id = BE_A;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
}

static void assert_ipv4_outer(const uint8_t *ip, uint8_t proto, uint32_t src, uint32_t dst,
			      size_t tot_len)
{
	uint32_t a;
	uint16_t v;

	assert_int_equal(ip[0], 0x45);
	assert_int_equal(ip[8], 64); /* TTL */
	assert_int_equal(ip[9], proto);
	memcpy(&v, ip + 2, 2);
	assert_int_equal(ntohs(v), tot_len);
	memcpy(&a, ip + 12, 4);
	assert_int_equal(a, src);
	memcpy(&a, ip + 16, 4);
	assert_int_equal(a, dst);
	assert_int_equal(pb_csum(ip, 20), 0);
}

/*
 * DSR, IPIP dispatch. Entry node: the SYN to a DSR NodePort with a backend on node 2 leaves
 * (a redirect out of the device) unchanged inside an outer IPv4 header from this node to
 * node 2, protocol 4, TTL 64, DF copied. Backend node: an IPIP packet from node 2 carrying
 * a request to node 2's NodePort is decapsulated and served by the local backend A (DNAT,
 * redirect to its veth); A's reply leaves to-netdev from node 2's frontend. An IPIP packet
 * from outside the cluster is not decapsulated.
 */
static void test_dsr_ipip(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_C1, NODE_IP, 40000, 30070, PB_TCP_SYN, 64);
	struct frame reply = frame_tcp4(IP_A, IP_C1, 8080, 40000, PB_TCP_SYN | PB_TCP_ACK, 64);
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	struct pb_ipv4 outer = pb_ipv4_hdr(NODE2_IP, NODE_IP);
	struct pb_ipv4 inner = pb_ipv4_hdr(IP_C1, NODE2_IP);
	struct pb_tcp tcp = pb_tcp_hdr(40001, 30070, PB_TCP_SYN);
	uint8_t buf[256];
	struct pb_pkt pk;
	char why[128];
	int n;

	dsr_frontend_dispatch(h, 1500, NODE_CFG_F_DSR_IPIP);

	/* entry node */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, syn.buf, syn.len), TC_ACT_REDIRECT);
	assert_int_equal(h->out_len, syn.len + 20);
	assert_ipv4_outer(h->out + 14, IPPROTO_IPIP, NODE_IP, NODE2_IP, syn.len - 14 + 20);
	assert_memory_equal(h->out + 34, syn.buf + 14, syn.len - 14); /* the request unchanged */
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("IPIP checksums: %s", why);

	/* backend node */
	dsr_local_nodeport(h);
	inner.ttl = 63;
	pb_init(&pk, buf, sizeof(buf));
	pb_eth(&pk, mac, mac, PB_AUTO);
	pb_ipv4(&pk, &outer);
	pb_ipv4(&pk, &inner);
	pb_tcp(&pk, &tcp);
	n = pb_finish(&pk);
	assert_true(n > 0);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, buf, (size_t)n), TC_ACT_REDIRECT);
	assert_int_equal(h->out_len, (size_t)n - 20);
	assert_out(h, IP_C1, 40001, IP_A, 8080);
	reply = frame_tcp4(IP_A, IP_C1, 8080, 40001, PB_TCP_SYN | PB_TCP_ACK, 64);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, reply.buf, reply.len), TC_ACT_OK);
	assert_out(h, NODE2_IP, 30070, IP_C1, 40001);

	/* the same from a host outside the cluster: not decapsulated */
	memcpy(buf + 14 + 12, &(uint32_t){ IP_C2 }, 4);
	pb_ipv4_fix_csum(buf + 14, 20);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, buf, (size_t)n), TC_ACT_OK);
	assert_int_equal(h->out_len, (size_t)n);
}

/* The Geneve header and the DSR option expected for frontend 192.0.2.1:30070. */
static void expect_geneve(const uint8_t *g, bool with_opt)
{
	static const uint8_t hdr_opt[8] = { 0x03, 0x40, 0x65, 0x58, 0, 0, 2, 0 };
	static const uint8_t hdr[8] = { 0x00, 0x00, 0x65, 0x58, 0, 0, 2, 0 };
	uint8_t opt[12] = { 0x01, 0x4b, 0x81, 0x02 };
	uint32_t vip = NODE_IP;
	uint16_t port = htons(30070);

	assert_memory_equal(g, with_opt ? hdr_opt : hdr, 8);
	if (!with_opt)
		return;
	memcpy(opt + 4, &vip, 4); /* network order, unlike the IPv4 option */
	memcpy(opt + 8, &port, 2);
	assert_memory_equal(g + 8, opt, 12);
}

/*
 * DSR, Geneve dispatch. Entry node: the SYN to a DSR NodePort with a backend on node 2 is
 * DNATed to it and leaves in Geneve to node 2 (outer IPv4 DF/TTL 64, UDP to 6081 with
 * checksum 0, VNI 2) with the option class 0x014B type 0x81 naming the frontend; the ACK
 * after it without the option. Backend node: such a packet from node 2 to a local pod is
 * decapsulated and goes on to the stack; the pod's reply leaves from the frontend.
 */
static void test_dsr_geneve(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_C1, NODE_IP, 40000, 30070, PB_TCP_SYN, 64);
	struct frame ack = frame_tcp4(IP_C1, NODE_IP, 40000, 30070, PB_TCP_ACK, 64);
	struct frame reply = frame_tcp4(IP_A, IP_C1, 8080, 40002, PB_TCP_SYN | PB_TCP_ACK, 64);
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	struct pb_ipv4 outer = pb_ipv4_hdr(NODE2_IP, NODE_IP);
	struct pb_ipv4 inner = pb_ipv4_hdr(IP_C1, IP_A);
	struct pb_tcp tcp = pb_tcp_hdr(40002, 8080, PB_TCP_SYN);
	struct pb_udp udp = { .sport = 50000, .dport = 6081, .len = PB_AUTO, .no_csum = true };
	uint8_t g[20] = { 0x03, 0x40, 0x65, 0x58, 0, 0, 2, 0, 0x01, 0x4b, 0x81, 0x02 };
	uint32_t frontend = NODE2_IP, a;
	uint16_t port = htons(30070), v;
	const uint8_t *o;
	uint8_t buf[256];
	struct pb_pkt pk;
	char why[128];
	int n;

	dsr_frontend_dispatch(h, 1500, NODE_CFG_F_DSR_GENEVE);

	/* entry node: SYN with the option */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, syn.buf, syn.len), TC_ACT_REDIRECT);
	assert_int_equal(h->out_len, syn.len + 62);
	o = h->out + 14;
	assert_ipv4_outer(o, IPPROTO_UDP, NODE_IP, NODE2_IP, syn.len - 14 + 62);
	assert_int_equal(o[6] & 0x40, 0x40); /* DF */
	memcpy(&v, o + 20 + 2, 2);
	assert_int_equal(ntohs(v), 6081);
	memcpy(&v, o + 20, 2);
	assert_true(ntohs(v) >= 0xc000);
	memcpy(&v, o + 20 + 4, 2);
	assert_int_equal(ntohs(v), syn.len - 14 + 62 - 20);
	memcpy(&v, o + 20 + 6, 2);
	assert_int_equal(v, 0);
	expect_geneve(o + 28, true);
	assert_int_equal(o[48 + 12], 0x08); /* inner Ethernet: IPv4 */
	assert_int_equal(o[48 + 13], 0x00);
	memcpy(&a, o + 62 + 12, 4);
	assert_int_equal(a, IP_C1);
	memcpy(&a, o + 62 + 16, 4);
	assert_int_equal(a, IP_R); /* DNATed inside */
	memcpy(&v, o + 62 + 22, 2);
	assert_int_equal(ntohs(v), 8080);
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("Geneve checksums: %s", why);

	/* the ACK: encapsulated, no option */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, ack.buf, ack.len), TC_ACT_REDIRECT);
	assert_int_equal(h->out_len, ack.len + 50);
	expect_geneve(h->out + 14 + 28, false);

	/* backend node: from node 2, for pod A, naming node 2's frontend */
	memcpy(g + 12, &frontend, 4);
	memcpy(g + 16, &port, 2);
	pb_init(&pk, buf, sizeof(buf));
	pb_eth(&pk, mac, mac, PB_AUTO);
	pb_ipv4(&pk, &outer);
	pb_udp(&pk, &udp);
	pb_bytes(&pk, g, sizeof(g));
	pb_eth(&pk, mac, mac, PB_AUTO);
	pb_ipv4(&pk, &inner);
	pb_tcp(&pk, &tcp);
	n = pb_finish(&pk);
	assert_true(n > 0);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, buf, (size_t)n), TC_ACT_OK);
	assert_int_equal(h->out_len, (size_t)n - 62);
	assert_memory_equal(h->out + 14, buf + 14 + 62, (size_t)n - 14 - 62);
	assert_int_equal(harness_run(h, HOOK_TO_NETDEV, reply.buf, reply.len), TC_ACT_OK);
	assert_out(h, NODE2_IP, 30070, IP_C1, 40002);
}

/* Geneve MTU outcome: a full-size ACK has no room for the 50-byte encapsulation: ICMP
 * fragmentation needed with MTU 1450, a FRAG_NEEDED drop. */
static void test_dsr_geneve_frag_needed(void **state)
{
	struct harness *h = *state;
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	struct pb_ipv4 ip = pb_ipv4_hdr(IP_C1, NODE_IP);
	struct pb_tcp tcp = pb_tcp_hdr(40003, 30070, PB_TCP_ACK);
	const struct ciliate_event *ev;
	static uint8_t buf[1600];
	struct pb_pkt pk;
	uint16_t v;
	int n;

	dsr_frontend_dispatch(h, 1500, NODE_CFG_F_DSR_GENEVE);
	pb_init(&pk, buf, sizeof(buf));
	pb_eth(&pk, mac, mac, PB_AUTO);
	pb_ipv4(&pk, &ip);
	pb_tcp(&pk, &tcp);
	pb_fill(&pk, 'x', 1460);
	n = pb_finish(&pk);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, buf, (size_t)n), TC_ACT_REDIRECT);
	ev = harness_event(h, EVENT_DROP);
	assert_non_null(ev);
	assert_int_equal(ev->reason, REASON_FRAG_NEEDED);
	assert_int_equal(h->out[14 + 20], 3);
	assert_int_equal(h->out[14 + 21], 4);
	memcpy(&v, h->out + 14 + 20 + 6, 2);
	assert_int_equal(ntohs(v), 1450);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nodeport_remote_backend_snat_and_reply, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nodeport_snat_port_collision, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nat_exhaustion, setup_tiny_range, teardown),
		cmocka_unit_test_setup_teardown(test_nodeport_local_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lb_source_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masquerade_tcp_and_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masquerade_icmp_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masquerade_icmp_error_translated_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_not_masqueraded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_opt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_frag_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_ipip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_geneve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_geneve_frag_needed, setup, teardown),
	};

	return cmocka_run_group_tests_name("bpf_nodeport", tests, NULL, NULL);
}
