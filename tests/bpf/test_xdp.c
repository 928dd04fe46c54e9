/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF program tests of the fabric device's XDP program (bpf/progs/xdp.bpf.c,
 * bpf/lib/xdp_nodeport.h, bpf/lib/prefilter.h; docs/XDP.md) through BPF_PROG_TEST_RUN with
 * the frame arriving on a real device: the test process runs in a network namespace of its
 * own (replay/xdp_fabric.c) where fab0 holds the node's address and the FIB knows the other
 * node and the client, so bpf_fib_lookup() answers as it would on a node.
 *
 * - prefilter: a denied source is dropped with PREFILTER_DENIED (event and metric), others
 *   pass; with the prefilter flag off nothing is dropped;
 * - NodePort to a remote backend: DNAT + SNAT + XDP_TX, the output compared byte for byte
 *   with the frame the stack would forward (TTL - 1, next hop's MACs);
 * - the reply: reverse NAT and XDP_TX to the client, byte for byte;
 * - a local backend, acceleration off, an ICMP echo: XDP_PASS, the frame untouched;
 * - loadBalancerSourceRanges: the TC drop, made at XDP;
 * - the state is the TC path's: a connection started in XDP continues in TC (from-netdev
 *   finds the mapping, translates the reply) and one started in TC continues in XDP.
 *
 * Cast: node 192.0.2.1 (pod range 10.244.0.0/24), other node 192.0.2.2 (10.244.1.0/24, routed
 * via it); pod A 10.244.0.21; remote backend R 10.244.1.30; client C1 203.0.113.10 (on-link
 * host route, as in the simulator); denied 198.18.0.0/15 (source 198.18.5.5).
 * Frontends: NodePort 192.0.2.1:30080 -> R:8080 (rev-NAT 5), 30090 -> A:8080 (rev-NAT 6),
 * LoadBalancer 198.51.100.10:80 -> R:8080 with source range 203.0.113.0/28 (rev-NAT 9).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_harness.h"
#include "frames.h"
#include "loader/maps.h"
#include "pktbuild.h"
#include "replay/replay.h"
#include "replay/xdp_fabric.h"

#define NODE_IP PB_IP4(192, 0, 2, 1)
#define NODE2_IP PB_IP4(192, 0, 2, 2)
#define IP_A PB_IP4(10, 244, 0, 21)
#define IP_R PB_IP4(10, 244, 1, 30)
#define IP_C1 PB_IP4(203, 0, 113, 10)
#define IP_C3 PB_IP4(203, 0, 113, 50)
#define IP_DENIED PB_IP4(198, 18, 5, 5)
#define LB_IP PB_IP4(198, 51, 100, 10)
#define ID_A 300
#define ID_R 400
#define BE_R 1
#define BE_A 2

static uint32_t fab_ifindex;

static void set_flags(struct harness *h, uint8_t flags)
{
	struct node_config cfg;
	struct diag d = { "" };

	memset(&cfg, 0, sizeof(cfg));
	cfg.node_ip = NODE_IP;
	cfg.pod_cidr = PB_IP4(10, 244, 0, 0);
	cfg.pod_cidr_len = 24;
	cfg.native_cidr = PB_IP4(10, 244, 0, 0);
	cfg.native_cidr_len = 16;
	cfg.flags = flags;
	cfg.mtu = 1500;
	cfg.fabric_ifindex = fab_ifindex;
	assert_int_equal(dp_node_config_set(h->dp, &cfg, &d), 0);
}

static int setup(void **state)
{
	struct harness *h = harness_new();
	struct endpoint_info a = harness_endpoint(IP_A, 1, ID_A, 0);
	struct lb_src_range_key rk;
	struct prefilter_key pk;
	uint8_t one = 1;

	harness_add_endpoint(h, &a, false);
	harness_add_ipcache(h, IP_A, 32, ID_A);
	harness_add_ipcache(h, IP_R, 32, ID_R);
	harness_add_ipcache(h, NODE2_IP, 32, IDENTITY_REMOTE_NODE);
	set_flags(h, NODE_CFG_F_KPR | NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_PREFILTER);
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
	memset(&pk, 0, sizeof(pk));
	pk.prefixlen = PREFILTER_PREFIX_BASE + 15;
	pk.family = CILIATE_AF_INET;
	pk.addr.v4 = PB_IP4(198, 18, 0, 0);
	harness_map_put(h, MAP_PREFILTER, &pk, &one);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	harness_free(*state);
	return 0;
}

/* Runs a frame through xdp_netdev arriving on fab0. */
static int run_xdp(struct harness *h, const struct frame *f)
{
	struct xdp_md ctx = { .data_end = (uint32_t)f->len, .ingress_ifindex = fab_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->buf, .data_size_in = (uint32_t)f->len,
		    .data_out = h->out, .data_size_out = sizeof(h->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	h->nevents = 0;
	if (bpf_prog_test_run_opts(datapath_prog_fd(h->dp, HOOK_XDP), &o) < 0)
		fail_msg("BPF_PROG_TEST_RUN (xdp): %s", strerror(errno));
	h->retval = (int)o.retval;
	h->out_len = o.data_size_out;
	ring_buffer__consume(h->rb);
	return h->retval;
}

/* What the node would send: f with the next hop's Ethernet addresses (by xdp_fabric_mac). */
static struct frame routed(struct frame f, uint32_t from, uint32_t next_hop)
{
	xdp_fabric_mac(next_hop, f.buf);
	xdp_fabric_mac(from, f.buf + 6);
	return f;
}

static void assert_bytes(const struct harness *h, const struct frame *want, const char *what)
{
	char why[128];

	if (h->out_len != want->len || memcmp(h->out, want->buf, want->len)) {
		size_t at = 0;

		while (at < want->len && at < h->out_len && h->out[at] == want->buf[at])
			at++;
		fail_msg("%s: output differs from the expected frame at byte %zu (len %u vs %zu)",
			 what, at, h->out_len, want->len);
	}
	if (replay_checksums_valid(h->out, h->out_len, why, sizeof(why)))
		fail_msg("%s: output checksums: %s", what, why);
}

static void assert_passed_untouched(const struct harness *h, const struct frame *in,
				    const char *what)
{
	if (h->retval != XDP_PASS)
		fail_msg("%s: verdict %d, want XDP_PASS (%d)", what, h->retval, XDP_PASS);
	if (h->out_len != in->len || memcmp(h->out, in->buf, in->len))
		fail_msg("%s: a passed frame was changed", what);
}

/* The connection's CT_SVC entry (keyed by the tuple as the client sent it, lb.h). */
static bool svc_entry(struct harness *h, uint32_t saddr, uint32_t daddr, uint16_t sport,
		      uint16_t dport, struct ct_entry *out)
{
	struct ct_key k;

	memset(&k, 0, sizeof(k));
	k.saddr.v4 = saddr;
	k.daddr.v4 = daddr;
	k.sport = htons(sport);
	k.dport = htons(dport);
	k.proto = IPPROTO_TCP;
	k.family = CILIATE_AF_INET;
	k.scope = CT_SVC;
	return bpf_map_lookup_elem(datapath_map_fd(h->dp, MAP_CT), &k, out) == 0;
}

static void test_prefilter_drop(void **state)
{
	struct harness *h = *state;
	struct frame denied = frame_tcp4(IP_DENIED, NODE_IP, 40000, 22, PB_TCP_SYN, 64);
	struct frame ok = frame_tcp4(IP_C1, NODE_IP, 40000, 22, PB_TCP_SYN, 64);
	uint64_t before = harness_metric_packets(h, REASON_PREFILTER_DENIED, DIR_INGRESS);
	const struct ciliate_event *ev;

	assert_int_equal(run_xdp(h, &denied), XDP_DROP);
	ev = harness_event(h, EVENT_DROP);
	assert_non_null(ev);
	assert_int_equal(ev->reason, REASON_PREFILTER_DENIED);
	assert_int_equal(ev->hook, HOOK_XDP);
	assert_int_equal(ev->ifindex, fab_ifindex);
	assert_int_equal(harness_metric_packets(h, REASON_PREFILTER_DENIED, DIR_INGRESS),
			 before + 1);
	/* not a denied source: on to the stack */
	run_xdp(h, &ok);
	assert_passed_untouched(h, &ok, "allowed source");
	/* the prefilter flag off: nothing denied */
	set_flags(h, NODE_CFG_F_KPR | NODE_CFG_F_XDP_ACCEL);
	run_xdp(h, &denied);
	assert_passed_untouched(h, &denied, "prefilter off");
}

static void test_nodeport_tx_and_reply(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_C1, NODE_IP, 40000, 30080, PB_TCP_SYN, 64);
	struct frame synack = frame_tcp4(IP_R, NODE_IP, 8080, 40000, PB_TCP_SYN | PB_TCP_ACK, 64);
	struct frame want;
	const struct ciliate_event *ev;
	struct ct_entry ct;

	/* DNAT to R, SNAT to the node (the client's port is in range and kept), TTL - 1,
	 * towards the backend's node */
	assert_int_equal(run_xdp(h, &syn), XDP_TX);
	want = routed(frame_tcp4(NODE_IP, IP_R, 40000, 8080, PB_TCP_SYN, 63), NODE_IP, NODE2_IP);
	assert_bytes(h, &want, "NodePort SYN");
	ev = harness_event(h, EVENT_TRACE);
	assert_non_null(ev);
	assert_int_equal(ev->hook, HOOK_XDP);
	assert_int_equal(ev->verdict, XDP_TX);
	assert_int_equal(ev->rev_nat_index, 5);
	assert_int_equal(ev->dst_identity, ID_R);
	/* the connection's CT_SVC entry: the TC path's */
	assert_true(svc_entry(h, IP_C1, NODE_IP, 40000, 30080, &ct));
	assert_int_equal(ct.backend_id, BE_R);
	/* the reply: to the client, from the NodePort */
	assert_int_equal(run_xdp(h, &synack), XDP_TX);
	want = routed(frame_tcp4(NODE_IP, IP_C1, 30080, 40000, PB_TCP_SYN | PB_TCP_ACK, 63),
		      NODE_IP, IP_C1);
	assert_bytes(h, &want, "reply");
}

static void test_udp_nodeport(void **state)
{
	struct harness *h = *state;
	struct frame req = frame_udp4(IP_C1, NODE_IP, 40001, 30053);
	struct lb_key k;
	struct lb_service s;
	struct lb_backend be;
	struct frame want;
	uint32_t id = 3;

	/* a UDP frontend 30053 -> R:5353 */
	memset(&be, 0, sizeof(be));
	be.addr.v4 = IP_R;
	be.port = htons(5353);
	be.proto = IPPROTO_UDP;
	be.family = CILIATE_AF_INET;
	harness_map_put(h, MAP_LB_BACKENDS, &id, &be);
	memset(&k, 0, sizeof(k));
	k.addr.v4 = NODE_IP;
	k.dport = htons(30053);
	k.proto = IPPROTO_UDP;
	k.family = CILIATE_AF_INET;
	memset(&s, 0, sizeof(s));
	s.count = 1;
	s.rev_nat_index = 7;
	s.flags = LB_SVC_F_ROUTABLE | LB_SVC_F_NODEPORT;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
	k.backend_slot = 1;
	s.count = 0;
	s.backend_id = id;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
	assert_int_equal(run_xdp(h, &req), XDP_TX);
	want = frame_udp4(NODE_IP, IP_R, 40001, 5353);
	want.buf[14 + 8] = 63; /* TTL: frame_udp4 builds 64 */
	{
		/* the IPv4 checksum of the expected frame after the TTL change */
		uint32_t sum = 0;

		want.buf[14 + 10] = want.buf[14 + 11] = 0;
		for (int i = 0; i < 20; i += 2)
			sum += (uint32_t)want.buf[14 + i] << 8 | want.buf[14 + i + 1];
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		want.buf[14 + 10] = (uint8_t)(~sum >> 8);
		want.buf[14 + 11] = (uint8_t)~sum;
	}
	want = routed(want, NODE_IP, NODE2_IP);
	assert_bytes(h, &want, "NodePort UDP");
}

static void test_passes(void **state)
{
	struct harness *h = *state;
	struct frame local = frame_tcp4(IP_C1, NODE_IP, 40000, 30090, PB_TCP_SYN, 64);
	struct frame ping = frame_icmp4_echo(IP_C1, NODE_IP, 8, 7, 1);
	struct frame syn = frame_tcp4(IP_C1, NODE_IP, 40002, 30080, PB_TCP_SYN, 64);
	struct frame ttl1 = frame_tcp4(IP_C1, NODE_IP, 40003, 30080, PB_TCP_SYN, 1);
	struct ct_entry ct;

	/* a local backend: TC delivers it (and finds the backend this CT_SVC entry names) */
	run_xdp(h, &local);
	assert_passed_untouched(h, &local, "local backend");
	assert_true(svc_entry(h, IP_C1, NODE_IP, 40000, 30090, &ct));
	assert_int_equal(ct.backend_id, BE_A);
	run_xdp(h, &ping);
	assert_passed_untouched(h, &ping, "ICMP echo");
	/* TTL 1: the stack answers with time exceeded */
	run_xdp(h, &ttl1);
	assert_passed_untouched(h, &ttl1, "TTL 1");
	/* acceleration off: the NodePort is TC's */
	set_flags(h, NODE_CFG_F_KPR | NODE_CFG_F_PREFILTER);
	run_xdp(h, &syn);
	assert_passed_untouched(h, &syn, "acceleration off");
}

static void test_source_range_drop(void **state)
{
	struct harness *h = *state;
	struct frame out = frame_tcp4(IP_C3, LB_IP, 40000, 80, PB_TCP_SYN, 64);
	struct frame in = frame_tcp4(IP_C1, LB_IP, 40000, 80, PB_TCP_SYN, 64);
	const struct ciliate_event *ev;

	assert_int_equal(run_xdp(h, &out), XDP_DROP);
	ev = harness_event(h, EVENT_DROP);
	assert_non_null(ev);
	assert_int_equal(ev->reason, REASON_DENIED_BY_LB_SRC_RANGE_CHECK);
	assert_int_equal(run_xdp(h, &in), XDP_TX);
}

/* XDP and TC share one state: either may see any packet of a connection. */
static void test_xdp_then_tc_and_back(void **state)
{
	struct harness *h = *state;
	struct frame syn = frame_tcp4(IP_C1, NODE_IP, 41000, 30080, PB_TCP_SYN, 64);
	struct frame ack = frame_tcp4(IP_C1, NODE_IP, 41000, 30080, PB_TCP_ACK, 64);
	struct frame synack = frame_tcp4(IP_R, NODE_IP, 8080, 41000, PB_TCP_SYN | PB_TCP_ACK, 64);
	struct frame syn2 = frame_tcp4(IP_C1, NODE_IP, 42000, 30080, PB_TCP_SYN, 64);
	struct frame synack2 = frame_tcp4(IP_R, NODE_IP, 8080, 42000, PB_TCP_SYN | PB_TCP_ACK, 64);
	struct frame want;
	uint32_t a;
	uint16_t p;

	/* started in XDP ... */
	assert_int_equal(run_xdp(h, &syn), XDP_TX);
	/* ... its reply and next packet in TC (from-netdev) */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, synack.buf, synack.len), TC_ACT_OK);
	memcpy(&a, h->out + 14 + 16, 4);
	memcpy(&p, h->out + 14 + 20, 2);
	assert_int_equal(a, IP_C1);
	assert_int_equal(ntohs(p), 30080);
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, ack.buf, ack.len), TC_ACT_OK);
	memcpy(&a, h->out + 14 + 12, 4);
	memcpy(&p, h->out + 14 + 20, 2);
	assert_int_equal(a, NODE_IP);
	assert_int_equal(ntohs(p), 41000);
	memcpy(&a, h->out + 14 + 16, 4);
	assert_int_equal(a, IP_R);

	/* started in TC, its reply in XDP */
	assert_int_equal(harness_run(h, HOOK_FROM_NETDEV, syn2.buf, syn2.len), TC_ACT_OK);
	assert_int_equal(run_xdp(h, &synack2), XDP_TX);
	want = routed(frame_tcp4(NODE_IP, IP_C1, 30080, 42000, PB_TCP_SYN | PB_TCP_ACK, 63),
		      NODE_IP, IP_C1);
	assert_bytes(h, &want, "TC-started connection's reply at XDP");
}

/* Frontend 30080 (-> R on node 2) as a DSR frontend, and the given dispatch on. */
static void dsr_on(struct harness *h, uint8_t dispatch)
{
	struct lb_service svc;
	struct lb_key k;

	set_flags(h, NODE_CFG_F_KPR | NODE_CFG_F_XDP_ACCEL | dispatch);
	harness_add_ipcache_tunnel(h, IP_R, 32, ID_R, NODE2_IP, IPCACHE_F_ENDPOINT);
	memset(&k, 0, sizeof(k));
	k.addr.v4 = NODE_IP;
	k.dport = htons(30080);
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

/*
 * DSR at XDP gives what the TC path puts on the wire, for each dispatch: the frame from-netdev
 * makes (TC output), with the next hop's Ethernet addresses (TC leaves them to the neighbour
 * subsystem), and for opt the TTL less one (TC leaves the forwarding to the stack); XDP_TX.
 * A SYN (the option / Geneve option) and the ACK after it (no option). A request the dispatch
 * would push past the MTU passes to TC (its ICMP).
 */
static void dsr_matches_tc(struct harness *h, uint8_t dispatch)
{
	struct frame syn = frame_tcp4(IP_C1, NODE_IP, 40100 + dispatch, 30080, PB_TCP_SYN, 64);
	struct frame ack = frame_tcp4(IP_C1, NODE_IP, 40100 + dispatch, 30080, PB_TCP_ACK, 64);
	const struct frame *in[2] = { &syn, &ack };
	static uint8_t big[1600];
	struct frame want;
	size_t l3;

	dsr_on(h, dispatch);
	for (int i = 0; i < 2; i++) {
		/* TC first (it makes the connection's CT_SVC entry; XDP finds the same backend) */
		harness_run(h, HOOK_FROM_NETDEV, in[i]->buf, in[i]->len);
		assert_true(h->retval == TC_ACT_OK || h->retval == TC_ACT_REDIRECT);
		memcpy(want.buf, h->out, h->out_len);
		want.len = h->out_len;
		want = routed(want, NODE_IP, NODE2_IP);
		if (dispatch == NODE_CFG_F_DSR_OPT) {
			l3 = 14;
			want.buf[l3 + 8]--; /* TTL */
			pb_ipv4_fix_csum(want.buf + l3, want.len - l3);
		}
		assert_int_equal(run_xdp(h, in[i]), XDP_TX);
		assert_bytes(h, &want, i ? "DSR ACK at XDP" : "DSR SYN at XDP");
	}
	{
		struct pb_ipv4 ip = pb_ipv4_hdr(IP_C1, NODE_IP);
		struct pb_tcp tcp = pb_tcp_hdr(40200 + dispatch, 30080, PB_TCP_SYN);
		struct xdp_md ctx = { .ingress_ifindex = fab_ifindex };
		static uint8_t out[1600];
		struct pb_pkt pk;
		int n;

		pb_init(&pk, big, sizeof(big));
		pb_eth(&pk, syn.buf, syn.buf + 6, PB_AUTO);
		pb_ipv4(&pk, &ip);
		pb_tcp(&pk, &tcp);
		pb_fill(&pk, 'x', 1460);
		n = pb_finish(&pk);
		assert_int_equal(n, 1514);
		ctx.data_end = (uint32_t)n;
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = big, .data_size_in = (uint32_t)n,
			    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);
		assert_int_equal(bpf_prog_test_run_opts(datapath_prog_fd(h->dp, HOOK_XDP), &o), 0);
		assert_int_equal(o.retval, XDP_PASS); /* TC answers with ICMP frag needed */
		assert_int_equal(o.data_size_out, (uint32_t)n);
		assert_memory_equal(out, big, (size_t)n);
	}
}

static void test_dsr_opt_at_xdp(void **state)
{
	dsr_matches_tc(*state, NODE_CFG_F_DSR_OPT);
}

static void test_dsr_ipip_at_xdp(void **state)
{
	dsr_matches_tc(*state, NODE_CFG_F_DSR_IPIP);
}

static void test_dsr_geneve_at_xdp(void **state)
{
	dsr_matches_tc(*state, NODE_CFG_F_DSR_GENEVE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prefilter_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodeport_tx_and_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_nodeport, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_range_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xdp_then_tc_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_opt_at_xdp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_ipip_at_xdp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsr_geneve_at_xdp, setup, teardown),
	};
	struct xdp_fabric f = { .ip = NODE_IP, .plen = 24 };
	struct diag d = { "" };

	f.peers[f.npeers++] = NODE2_IP;
	f.peers[f.npeers++] = IP_C1;
	f.peers[f.npeers++] = IP_C3;
	f.routes[f.nroutes++] = (struct xdp_fabric_route){ .net = PB_IP4(10, 244, 1, 0), .len = 24,
							   .via = NODE2_IP };
	f.routes[f.nroutes++] = (struct xdp_fabric_route){ .net = IP_C1, .len = 32 };
	f.routes[f.nroutes++] = (struct xdp_fabric_route){ .net = IP_C3, .len = 32 };
	if (xdp_fabric_enter(&f, &fab_ifindex, &d)) {
		fprintf(stderr, "test_xdp: %s\n", d.msg);
		return 1;
	}
	return cmocka_run_group_tests_name("bpf_xdp", tests, NULL, NULL);
}
