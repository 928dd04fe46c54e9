/* SPDX-License-Identifier: Apache-2.0 */
/*
 * First-packet service cost through a real veth: every packet is the first of a new UDP flow
 * (its own source port) to the ClusterIP of one of N services (10 backends each), for
 * ciliate's from-container program against kube-proxy-style iptables rules, an nftables
 * verdict map and no rules at all, side by side in one run (docs/PERFORMANCE.md).
 *
 * Each row has its own three namespaces (all "fpb-<tag><pid>-*", removed on exit, on
 * SIGINT/SIGTERM and at the time limit):
 *
 *   client (pod) --veth-- node (eth: vc, vs) --veth-- backends (server)
 *
 * The client sends prebuilt IPv4/UDP packets from a raw IP socket (its own routing and a
 * static neighbour entry); they enter the node namespace on vc, are translated there (or
 * not: floor), forwarded out of vs and received by one UDP socket in the server namespace,
 * where the ClusterIP range and the backend range are local (AnyIP routes). The wall time from
 * the first send to the last receive of a slice is the path's cost (veth hands each frame to
 * the peer's backlog; the softirq that runs when sendmmsg returns carries it through the
 * node to the server's socket on the same CPU).
 *
 *   floor       nothing installed: the node routes ClusterIPs to the server untranslated
 *   tc-empty    floor + an empty TC program on vc's ingress and egress (attaching anything)
 *   ciliate N   from_container/to_container on vc as the agent attaches them; a pod with no
 *               network policy; N services (slot 0 + 10 backend slots, backends, reverse
 *               NAT) written into the LB maps as the agent writes them; backends are remote
 *               pods (an ipcache /15). Conntrack emptied before every round. Per packet:
 *               frontend lookup, CT_SVC miss, random slot, backend, CT_SVC insert, DNAT,
 *               conntrack miss, ipcache, policy lookups, conntrack insert, trace event.
 *   ciliate-noev N       the largest ciliate datapath loaded with no_events (no ring output)
 *   ciliate-direct N     the largest ciliate datapath, packets sent to a backend address
 *               directly: the same new flow without the service translation
 *   ciliate-hot10 N      the largest ciliate datapath, packets to 10 of its services only:
 *               the map sizes of N, the cache footprint of 10
 *   iptables N  kube-proxy's iptables-mode shape in the node's nat table: PREROUTING ->
 *               KUBE-SERVICES (one rule per service) -> KUBE-SVC-* (statistic random) ->
 *               KUBE-SEP-* (mark for masquerade if hairpin, DNAT), POSTROUTING ->
 *               KUBE-POSTROUTING (masquerade marked); netfilter conntrack flushed per round
 *   nft N       a verdict map "ip daddr . udp dport vmap" -> a chain per service with
 *               "numgen random mod 10 vmap" -> a chain per backend with its dnat
 *
 * The LB maps of the shipping datapath hold 65,536 entries; 10,000 services x 11 slots need
 * 110,000. The bench loads the same programs with larger ciliate_lb_services and
 * ciliate_lb_backends (--wrap of bpf_object__open_skeleton, mk/bench-svc-fp.mk): a hash map's
 * lookup does not depend on its size, only its memory does.
 *
 * Before timing, every row must deliver every probe packet to the port it should arrive on
 * (8080, the backends' targetPort, for translated rows; 80 for the floor and tc-empty), else
 * the bench fails. Timing as bench_policy_nft: per row and round, SLICES slices of up to
 * PACKETS/SLICES new flows (fewer for a slow row, so a slice lasts ~2 ms) timed one by one, the
 * best slice kept; the table shows the median over rounds, min and max.
 *
 * Usage: bench_svc_first_packet [-n PACKETS] [-r ROUNDS] [-s N,N,...] [-t SECONDS]
 *                              [-I legacy|nft] [-q]
 * Needs root; prints SKIP and exits 0 without it or without iptables/nft support.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_ether.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench_floor.skel.h"
#include "ciliate/abi.h"
#include "loader/datapath.h"
#include "loader/maps.h"
#include "nft/netlab.h"
#include "nft/tcattach.h"
#include "nft/traffic.h"
#include "pktbuild.h"

#define MAX_SIZES   4
#define MAX_ROUNDS  50
#define MAX_ROWS    (5 + 3 * MAX_SIZES)
#define PACKETS_MAX 4000
#define PROBES	    16
#define IDLE_MS	    300
#define SLICE_NS    2e6
#define SLICES	    8
#define BACKENDS    10
#define LB_MAX_BENCH 131072 /* >= 10,000 services x 11 slots, and 100,000 backends */

#define CLIENT_IP PB_IP4(10, 244, 0, 21)
#define SERVER_IP PB_IP4(10, 244, 1, 10)
#define SVC_BASE  0x0a600000u /* 10.96.0.0/16: ClusterIPs, service s at .1 + s */
#define BE_BASE	  0x0a700000u /* 10.112.0.0/15: backend j of service s at .1 + 10 s + j */
#define SVC_PORT  80
#define BE_PORT	  8080
#define SPORT0	  20000
#define ID_CLIENT 300
#define ID_REMOTE 400

enum kind {
	K_FLOOR,
	K_TC_EMPTY,
	K_CILIATE,
	K_CILIATE_NOEV,
	K_CILIATE_DIRECT,
	K_CILIATE_HOT,
	K_IPT,
	K_NFT
};
static const char *const kind_names[] = {"floor",	   "tc-empty",	  "ciliate",  "ciliate-noev",
					  "ciliate-direct", "ciliate-hot10", "iptables", "nft"};

struct row {
	enum kind kind;
	unsigned int n; /* services (0: none installed) */
	struct netlab lab;
	const char *cli, *rtr, *srv;
	int vc[1];	  /* node-side veth toward the client */
	uint8_t pod_mac[6], host_mac[6];
	int tx, rx;	  /* client raw socket; server UDP socket on the expected port */
	int rx_other;	  /* server UDP socket on the other port (must stay empty) */
	struct frameset flows, probe;
	struct datapath *dp;
	struct ring_buffer *rb;
	double ns[MAX_ROUNDS];
	int slice;
	long lost;
};

struct bench {
	unsigned int sizes[MAX_SIZES];
	int nsizes;
	struct row r[MAX_ROWS];
	int nr;
	struct bench_floor *empty;
	int packets, rounds, quiet;
	const char *ipt_restore;
	double load;
};

/* ---- larger LB maps for the bench (see the header comment) ---------------------------- */

int __real_bpf_object__open_skeleton(struct bpf_object_skeleton *s,
				     const struct bpf_object_open_opts *opts);

int __wrap_bpf_object__open_skeleton(struct bpf_object_skeleton *s,
				     const struct bpf_object_open_opts *opts)
{
	int err = __real_bpf_object__open_skeleton(s, opts);
	struct bpf_map *m;

	if (err)
		return err;
	bpf_object__for_each_map(m, *s->obj) {
		const char *name = bpf_map__name(m);

		if (!strcmp(name, MAP_LB_SERVICES) || !strcmp(name, MAP_LB_BACKENDS)) {
			err = bpf_map__set_max_entries(m, LB_MAX_BENCH);
			if (err)
				return err;
		}
	}
	return 0;
}

/* ---- addresses ------------------------------------------------------------------------ */

static uint32_t svc_ip(unsigned int s)
{
	return htonl(SVC_BASE + 1 + s);
}

static uint32_t be_ip(unsigned int s, unsigned int j)
{
	return htonl(BE_BASE + 1 + s * BACKENDS + j);
}

static void ip_str(uint32_t a, char *buf, size_t len)
{
	uint32_t h = ntohl(a);

	snprintf(buf, len, "%u.%u.%u.%u", h >> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255);
}

/* The service of packet i: spread over all N services (a stride coprime to N mostly). */
static unsigned int svc_of(int i, unsigned int n)
{
	return (unsigned int)(((uint64_t)i * 7919u + 13u) % n);
}

/* ---- frames --------------------------------------------------------------------------- */

/* count packets of new UDP flows: to the ClusterIP of svc_of(i) (or, direct, to its first
 * backend on BE_PORT), source port SPORT0 + off + i. */
static int frames_build(struct frameset *fs, int count, int off, unsigned int n, int direct)
{
	static const uint8_t any_mac[6] = {0x02, 0, 0, 0, 0, 1};

	memset(fs, 0, sizeof(*fs));
	fs->frames = calloc((size_t)count, sizeof(*fs->frames));
	fs->iov = calloc((size_t)count, sizeof(*fs->iov));
	fs->msgs = calloc((size_t)count, sizeof(*fs->msgs));
	if (!fs->frames || !fs->iov || !fs->msgs) {
		fprintf(stderr, "bench_svc_first_packet: out of memory\n");
		return -1;
	}
	for (int i = 0; i < count; i++) {
		unsigned int s = svc_of(i + off, n);
		struct pb_ipv4 ip = pb_ipv4_hdr(CLIENT_IP, direct ? be_ip(s, 0) : svc_ip(s));
		struct pb_udp udp = {.sport = (uint16_t)(SPORT0 + off + i),
				     .dport = direct ? BE_PORT : SVC_PORT,
				     .len = PB_AUTO};
		struct pb_pkt p;
		int len;

		pb_init(&p, fs->frames[i], TRAFFIC_FRAME_LEN);
		pb_eth(&p, any_mac, any_mac, PB_AUTO);
		pb_ipv4(&p, &ip);
		pb_udp(&p, &udp);
		pb_fill(&p, 0x5a, 18);
		len = pb_finish(&p);
		if (len <= ETH_HLEN)
			return -1;
		fs->iov[i].iov_base = fs->frames[i] + ETH_HLEN;
		fs->iov[i].iov_len = (size_t)len - ETH_HLEN;
		/* the raw socket routes by this address: the client's default route either way */
		fs->msgs[i].msg_hdr.msg_name = &fs->dst;
		fs->msgs[i].msg_hdr.msg_namelen = sizeof(fs->dst);
		fs->msgs[i].msg_hdr.msg_iov = &fs->iov[i];
		fs->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	fs->dst.sin_family = AF_INET;
	fs->dst.sin_addr.s_addr = SERVER_IP;
	fs->n = count;
	return 0;
}

/* ---- topology ------------------------------------------------------------------------- */

static int set_neigh(const char *ns, const char *dev, const char *ip, const uint8_t m[6])
{
	return lab_sh("ip -n %s neigh replace %s lladdr %02x:%02x:%02x:%02x:%02x:%02x dev %s "
		      "nud permanent",
		      ns, ip, m[0], m[1], m[2], m[3], m[4], m[5], dev);
}

static int build_topology(struct row *w, int idx)
{
	char prefix[16];
	uint8_t srv_mac[6];
	int ifi;

	snprintf(prefix, sizeof(prefix), "fpb%d-", idx);
	if (lab_init(&w->lab, prefix) || lab_add_ns(&w->lab, "cli", &w->cli) ||
	    lab_add_ns(&w->lab, "node", &w->rtr) || lab_add_ns(&w->lab, "be", &w->srv))
		return -1;
	if (lab_sh("ip -n %s link add vc type veth peer name eth0 netns %s", w->rtr, w->cli) ||
	    lab_sh("ip -n %s link add vs type veth peer name eth0 netns %s", w->rtr, w->srv) ||
	    lab_sh("ip -n %s addr add 10.244.0.1/24 dev vc", w->rtr) ||
	    lab_sh("ip -n %s addr add 10.244.1.1/24 dev vs", w->rtr) ||
	    lab_sh("ip -n %s addr add 10.244.0.21/24 dev eth0", w->cli) ||
	    lab_sh("ip -n %s addr add 10.244.1.10/24 dev eth0", w->srv) ||
	    lab_sh("ip -n %s link set vc up && ip -n %s link set vs up", w->rtr, w->rtr) ||
	    lab_sh("ip -n %s link set eth0 up", w->cli) ||
	    lab_sh("ip -n %s link set eth0 up", w->srv) ||
	    lab_sh("ip -n %s route add default via 10.244.0.1", w->cli) ||
	    lab_sh("ip -n %s route add default via 10.244.1.1", w->srv) ||
	    /* the node routes ClusterIPs (the floor: untranslated) and backends to the server */
	    lab_sh("ip -n %s route add 10.96.0.0/16 via 10.244.1.10", w->rtr) ||
	    lab_sh("ip -n %s route add 10.112.0.0/15 via 10.244.1.10", w->rtr) ||
	    /* where both ranges are local addresses (AnyIP) */
	    lab_sh("ip -n %s route add local 10.96.0.0/16 dev lo table local", w->srv) ||
	    lab_sh("ip -n %s route add local 10.112.0.0/15 dev lo table local", w->srv) ||
	    lab_sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=1", w->rtr))
		return -1;
	if (lab_if_info(&w->lab, w->rtr, "vc", &w->vc[0], w->host_mac) ||
	    lab_if_info(&w->lab, w->cli, "eth0", &ifi, w->pod_mac) ||
	    lab_if_info(&w->lab, w->srv, "eth0", &ifi, srv_mac))
		return -1;
	return set_neigh(w->rtr, "vs", "10.244.1.10", srv_mac) ||
	       set_neigh(w->cli, "eth0", "10.244.0.1", w->host_mac);
}

static int open_sockets(struct row *w)
{
	int translated = w->kind != K_FLOOR && w->kind != K_TC_EMPTY;

	if (lab_enter(w->cli))
		return -1;
	w->tx = traffic_tx_socket();
	if (lab_leave(&w->lab) || w->tx < 0 || lab_enter(w->srv))
		return -1;
	w->rx = traffic_rx_socket(0, translated ? BE_PORT : SVC_PORT);
	w->rx_other = traffic_rx_socket(0, translated ? SVC_PORT : BE_PORT);
	if (lab_leave(&w->lab) || w->rx < 0 || w->rx_other < 0)
		return -1;
	return 0;
}

/* ---- ciliate ---------------------------------------------------------------------------- */

static int discard_event(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

static int lb_write(struct datapath *dp, unsigned int n)
{
	int fs = datapath_map_fd(dp, MAP_LB_SERVICES), fb = datapath_map_fd(dp, MAP_LB_BACKENDS),
	    fr = datapath_map_fd(dp, MAP_LB_REVNAT);

	if (fs < 0 || fb < 0 || fr < 0)
		return -1;
	/* the agent's order: backends, reverse NAT, backend slots, slot 0 (SERVICES.md) */
	for (unsigned int s = 0; s < n; s++) {
		struct lb_key k = {.dport = htons(SVC_PORT),
				   .proto = IPPROTO_UDP,
				   .scope = LB_SCOPE_EXTERNAL,
				   .family = CILIATE_AF_INET};
		struct lb_service sv = {.rev_nat_index = (uint16_t)(s + 1)};
		struct lb_reverse_nat rn = {.port = htons(SVC_PORT), .family = CILIATE_AF_INET};
		uint32_t idx = s + 1;

		rn.addr.v4 = svc_ip(s);
		k.addr.v4 = svc_ip(s);
		for (unsigned int j = 0; j < BACKENDS; j++) {
			uint32_t id = s * BACKENDS + j + 1;
			struct lb_backend be = {.port = htons(BE_PORT),
						.proto = IPPROTO_UDP,
						.state = LB_BACKEND_ACTIVE,
						.family = CILIATE_AF_INET};

			be.addr.v4 = be_ip(s, j);
			if (bpf_map_update_elem(fb, &id, &be, BPF_ANY))
				return -1;
		}
		if (bpf_map_update_elem(fr, &idx, &rn, BPF_ANY))
			return -1;
		for (unsigned int j = 0; j < BACKENDS; j++) {
			struct lb_service slot = {.backend_id = s * BACKENDS + j + 1,
						  .rev_nat_index = (uint16_t)(s + 1)};

			k.backend_slot = (uint16_t)(j + 1);
			if (bpf_map_update_elem(fs, &k, &slot, BPF_ANY))
				return -1;
		}
		k.backend_slot = 0;
		sv.count = BACKENDS;
		if (bpf_map_update_elem(fs, &k, &sv, BPF_ANY))
			return -1;
	}
	return 0;
}

static int ciliate_open(struct row *w)
{
	struct datapath_opts o = {.node = NULL, .trace_all = false,
				  .no_events = w->kind == K_CILIATE_NOEV};
	struct endpoint_info ep = {.ifindex = (uint32_t)w->vc[0],
				   .ep_id = 1,
				   .identity = ID_CLIENT,
				   .flags = 0, /* no network policy selects the pod */
				   .family = CILIATE_AF_INET};
	struct ipcache_key k = {.prefixlen = IPCACHE_PREFIX_BASE + 32, .family = CILIATE_AF_INET};
	struct ipcache_value v = {.identity = ID_CLIENT, .flags = IPCACHE_F_ENDPOINT};
	struct ipcache_key kb = {.prefixlen = IPCACHE_PREFIX_BASE + 15, .family = CILIATE_AF_INET};
	struct ipcache_value vb = {.identity = ID_REMOTE};
	struct diag d = {""};
	int err;

	ep.addr.v4 = CLIENT_IP;
	memcpy(ep.mac, w->pod_mac, 6);
	memcpy(ep.node_mac, w->host_mac, 6);
	k.addr.v4 = CLIENT_IP;
	kb.addr.v4 = htonl(BE_BASE);
	if (datapath_open(&o, &w->dp, &d) || dp_endpoint_upsert(w->dp, &ep, &d) ||
	    dp_ipcache_upsert(w->dp, &k, &v, &d) || dp_ipcache_upsert(w->dp, &kb, &vb, &d)) {
		fprintf(stderr, "bench_svc_first_packet: ciliate datapath: %s\n", d.msg);
		return -1;
	}
	if (lb_write(w->dp, w->n)) {
		fprintf(stderr, "bench_svc_first_packet: writing %u services: %s\n", w->n,
			strerror(errno));
		return -1;
	}
	w->rb = ring_buffer__new(datapath_map_fd(w->dp, MAP_EVENTS), discard_event, NULL, NULL);
	if (!w->rb) {
		fprintf(stderr, "bench_svc_first_packet: ring buffer: %s\n", strerror(errno));
		return -1;
	}
	if (lab_enter(w->rtr))
		return -1;
	err = tc_attach_all(w->vc, 1, datapath_prog_fd(w->dp, HOOK_FROM_CONTAINER),
			    datapath_prog_fd(w->dp, HOOK_TO_CONTAINER));
	return lab_leave(&w->lab) || err ? -1 : 0;
}

/* Empties conntrack: every measured packet is a new connection again. */
static int ct_flush(struct datapath *dp)
{
	int fd = datapath_map_fd(dp, MAP_CT);
	struct ct_key *keys = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	if (fd < 0)
		return -1;
	for (;;) {
		if (n == cap) {
			struct ct_key *k2 = realloc(keys, (cap ? cap * 2 : 4096) * sizeof(*keys));

			if (!k2) {
				free(keys);
				return -1;
			}
			keys = k2;
			cap = cap ? cap * 2 : 4096;
		}
		if (bpf_map_get_next_key(fd, n ? &keys[n - 1] : NULL, &keys[n]))
			break;
		n++;
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, &keys[i]) && errno != ENOENT) {
			ret = -1;
			break;
		}
	free(keys);
	return ret;
}

static uint64_t events_lost(struct datapath *dp)
{
	int ncpu = libbpf_num_possible_cpus(), fd = datapath_map_fd(dp, MAP_EVENTS_LOST);
	uint64_t v[1024] = {0}, sum = 0;
	uint32_t zero = 0;

	if (ncpu <= 0 || ncpu > 1024 || fd < 0 || bpf_map_lookup_elem(fd, &zero, v))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

/* ---- iptables / nft --------------------------------------------------------------------- */

static int run_file(const struct row *w, const char *tool, const char *path)
{
	/* bounded: a restore that takes longer than this is reported, not waited for */
	int st = lab_sh("timeout 300 ip netns exec %s %s < %s", w->rtr, tool, path);

	if (st)
		fprintf(stderr, "bench_svc_first_packet: %s of %u services failed (status %d%s)\n",
			tool, w->n, st, st == 124 ? ": timed out after 300 s" : "");
	return st ? -1 : 0;
}

/* kube-proxy's iptables-mode shape (written from its documented chain layout). */
static void write_iptables(FILE *f, unsigned int n)
{
	char a[32];

	fprintf(f, "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
		   ":POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
		   ":KUBE-MARK-MASQ - [0:0]\n");
	for (unsigned int s = 0; s < n; s++) {
		fprintf(f, ":KUBE-SVC-%08X - [0:0]\n", s);
		for (unsigned int j = 0; j < BACKENDS; j++)
			fprintf(f, ":KUBE-SEP-%08X - [0:0]\n", s * BACKENDS + j);
	}
	fprintf(f, "-A PREROUTING -m comment --comment \"kubernetes service portals\" "
		   "-j KUBE-SERVICES\n"
		   "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" "
		   "-j KUBE-POSTROUTING\n"
		   "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
		   "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n"
		   "-A KUBE-POSTROUTING -j MASQUERADE\n"
		   "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n");
	for (unsigned int s = 0; s < n; s++) {
		ip_str(svc_ip(s), a, sizeof(a));
		fprintf(f, "-A KUBE-SERVICES -d %s/32 -p udp -m udp --dport %d -j KUBE-SVC-%08X\n",
			a, SVC_PORT, s);
	}
	for (unsigned int s = 0; s < n; s++)
		for (unsigned int j = 0; j < BACKENDS; j++) {
			unsigned int id = s * BACKENDS + j;

			/* backend j of the n left: probability 1/(BACKENDS - j), the last always */
			if (j < BACKENDS - 1)
				fprintf(f,
					"-A KUBE-SVC-%08X -m statistic --mode random --probability "
					"%.11f -j KUBE-SEP-%08X\n",
					s, 1.0 / (BACKENDS - j), id);
			else
				fprintf(f, "-A KUBE-SVC-%08X -j KUBE-SEP-%08X\n", s, id);
			ip_str(be_ip(s, j), a, sizeof(a));
			fprintf(f, "-A KUBE-SEP-%08X -s %s/32 -j KUBE-MARK-MASQ\n", id, a);
			fprintf(f,
				"-A KUBE-SEP-%08X -p udp -m udp -j DNAT --to-destination %s:%d\n",
				id, a, BE_PORT);
		}
	fprintf(f, "COMMIT\n");
}

static void write_nft(FILE *f, unsigned int n)
{
	char a[32];

	fprintf(f, "add table ip fpb\n");
	for (unsigned int s = 0; s < n; s++) {
		for (unsigned int j = 0; j < BACKENDS; j++) {
			ip_str(be_ip(s, j), a, sizeof(a));
			fprintf(f, "add chain ip fpb ep_%u_%u\nadd rule ip fpb ep_%u_%u meta l4proto udp dnat to %s:%d\n",
				s, j, s, j, a, BE_PORT);
		}
		fprintf(f, "add chain ip fpb svc_%u\nadd rule ip fpb svc_%u numgen random mod %d vmap {",
			s, s, BACKENDS);
		for (unsigned int j = 0; j < BACKENDS; j++)
			fprintf(f, "%s %u : goto ep_%u_%u", j ? "," : "", j, s, j);
		fprintf(f, " }\n");
	}
	fprintf(f, "add map ip fpb svc_ips { type ipv4_addr . inet_service : verdict; }\n");
	for (unsigned int s = 0; s < n; s += 500) {
		fprintf(f, "add element ip fpb svc_ips {");
		for (unsigned int t = s; t < n && t < s + 500; t++) {
			ip_str(svc_ip(t), a, sizeof(a));
			fprintf(f, "%s %s . %d : goto svc_%u", t > s ? "," : "", a, SVC_PORT, t);
		}
		fprintf(f, " }\n");
	}
	fprintf(f, "add chain ip fpb prerouting { type nat hook prerouting priority dstnat; "
		   "policy accept; }\n"
		   "add rule ip fpb prerouting ip daddr . udp dport vmap @svc_ips\n");
}

static int rules_load(struct row *w, const char *ipt_restore)
{
	char path[] = "/tmp/fpb-rules-XXXXXX";
	int fd = mkstemp(path), err;
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!f) {
		fprintf(stderr, "bench_svc_first_packet: temp file: %s\n", strerror(errno));
		return -1;
	}
	if (w->kind == K_IPT)
		write_iptables(f, w->n);
	else
		write_nft(f, w->n);
	if (fclose(f)) {
		unlink(path);
		return -1;
	}
	err = run_file(w, w->kind == K_IPT ? ipt_restore : "nft -f -", path);
	unlink(path);
	return err;
}

/* ---- measuring -------------------------------------------------------------------------- */

static int reset(struct row *w)
{
	if (w->dp) {
		ring_buffer__consume(w->rb);
		return ct_flush(w->dp);
	}
	if (w->kind == K_IPT || w->kind == K_NFT)
		return lab_sh_quiet("ip netns exec %s conntrack -F", w->rtr) > 1 ? -1 : 0;
	return 0;
}

static int burst(struct row *w, const struct frameset *fs, struct burst_result *r)
{
	traffic_drain(w->rx);
	traffic_drain(w->rx_other);
	return traffic_burst(w->tx, fs, w->rx, IDLE_MS, &lab_stop, r);
}

static int timed_slices(struct row *w, int slice, double *best, long *lost)
{
	*best = 0;
	for (int i = 0; i < SLICES && !lab_stop; i++) {
		struct frameset part;
		struct burst_result r;
		double ns;

		frameset_slice(&w->flows, i * slice, slice, &part);
		if (burst(w, &part, &r))
			return -1;
		if (w->rb)
			ring_buffer__consume(w->rb);
		*lost += slice - r.received;
		ns = r.seconds * 1e9 / slice;
		if (!*best || ns < *best)
			*best = ns;
	}
	return 0;
}

/* Datagrams queued on a socket (read and discarded). */
static int pending(int fd)
{
	char buf[64];
	int n = 0;

	while (n < 1 << 20 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		n++;
	return n;
}

/* Untimed: the probe arrives where it should and nowhere else; sizes the slices. */
static int verify(struct row *w, int slice)
{
	struct burst_result r;
	long lost = 0;
	double ns;
	int other;

	if (reset(w) || burst(w, &w->probe, &r))
		return -1;
	other = pending(w->rx_other);
	if (r.received != PROBES || other) {
		fprintf(stderr,
			"bench_svc_first_packet: %s %u: %d of %d probes arrived on port %d, %d on "
			"the other port\n",
			kind_names[w->kind], w->n, r.received, PROBES,
			w->kind == K_FLOOR || w->kind == K_TC_EMPTY ? SVC_PORT : BE_PORT, other);
		return -1;
	}
	if (reset(w) || timed_slices(w, slice, &ns, &lost))
		return -1;
	if (lost) {
		fprintf(stderr, "bench_svc_first_packet: %s %u: %ld of %d packets did not arrive\n",
			kind_names[w->kind], w->n, lost, SLICES * slice);
		return -1;
	}
	w->slice = (int)(SLICE_NS / ns);
	if (w->slice > slice)
		w->slice = slice;
	if (w->slice < 4)
		w->slice = 4;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_of(const double *xs, int n, double *lo, double *hi)
{
	double s[MAX_ROUNDS];

	memcpy(s, xs, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	if (lo)
		*lo = s[0];
	if (hi)
		*hi = s[n - 1];
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static const struct row *find(const struct bench *b, enum kind k, unsigned int n)
{
	for (int i = 0; i < b->nr; i++)
		if (b->r[i].kind == k && b->r[i].n == n)
			return &b->r[i];
	return NULL;
}

static void target(const char *what, double v, int ok_if_below, double bound)
{
	int pass = ok_if_below ? v <= bound : v >= bound;

	printf("  %-52s %8.2fx  (%s %.1fx)  %s\n", what, v, ok_if_below ? "<=" : ">=", bound,
	       pass ? "PASS" : "FAIL");
}

static void report(const struct bench *b)
{
	const struct row *fl = find(b, K_FLOOR, 0);
	double floor_ns = median_of(fl->ns, b->rounds, NULL, NULL);
	unsigned int lo = b->sizes[0], hi = b->sizes[b->nsizes - 1];

	printf("each packet a new UDP flow to a ClusterIP (%d backends per service); per row and "
	       "round %d timed slices, the best kept; median over %d rounds; load average %.2f at "
	       "start\n",
	       BACKENDS, SLICES, b->rounds, b->load);
	printf("%-15s %8s %10s %10s %10s %9s %10s %6s\n", "VARIANT", "SERVICES", "NS/PACKET",
	       "MIN", "MAX", "VS FLOOR", "+NS", "SLICE");
	for (int i = 0; i < b->nr; i++) {
		const struct row *w = &b->r[i];
		double mn, mx, med = median_of(w->ns, b->rounds, &mn, &mx);
		double ratio[MAX_ROUNDS];
		char svcs[16] = "-";

		for (int r = 0; r < b->rounds; r++)
			ratio[r] = w->ns[r] / fl->ns[r];
		if (w->n)
			snprintf(svcs, sizeof(svcs), "%u", w->n);
		printf("%-15s %8s %10.1f %10.1f %10.1f %8.2fx %10.1f %6d\n", kind_names[w->kind],
		       svcs, med, mn, mx, median_of(ratio, b->rounds, NULL, NULL), med - floor_ns,
		       w->slice);
	}
	{
		const struct row *c_lo = find(b, K_CILIATE, lo), *c_hi = find(b, K_CILIATE, hi),
				 *i_hi = find(b, K_IPT, hi), *n_hi = find(b, K_NFT, hi);
		double chi = median_of(c_hi->ns, b->rounds, NULL, NULL);
		char what[96];

		printf("\ntargets (medians over rounds; reports, not assertions):\n");
		snprintf(what, sizeof(what), "ciliate@%u / ciliate@%u", hi, lo);
		target(what, chi / median_of(c_lo->ns, b->rounds, NULL, NULL), 1, 1.2);
		snprintf(what, sizeof(what), "ciliate@%u / floor", hi);
		target(what, chi / floor_ns, 1, 1.5);
		if (i_hi) {
			snprintf(what, sizeof(what), "iptables@%u / ciliate@%u", hi, hi);
			target(what, median_of(i_hi->ns, b->rounds, NULL, NULL) / chi, 0, 50);
		}
		if (n_hi)
			printf("  %-52s %8.2fx  (context)\n", "nft@max / ciliate@max",
			       median_of(n_hi->ns, b->rounds, NULL, NULL) / chi);
		printf("  over the floor: ciliate@%u +%.0f ns", hi, chi - floor_ns);
		if (i_hi)
			printf(", iptables@%u +%.0f ns (%.1fx ciliate's increment)", hi,
			       median_of(i_hi->ns, b->rounds, NULL, NULL) - floor_ns,
			       (median_of(i_hi->ns, b->rounds, NULL, NULL) - floor_ns) /
				       (chi - floor_ns));
		printf("\n");
	}
}

/* ---- main ----------------------------------------------------------------------------- */

static int parse_sizes(struct bench *b, const char *s)
{
	char *dup = strdup(s), *save = NULL;

	b->nsizes = 0;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;
		long n = strtol(t, &end, 10);

		if (*end || n < 1 || n > 10000 || b->nsizes == MAX_SIZES ||
		    (b->nsizes && (unsigned int)n <= b->sizes[b->nsizes - 1])) {
			fprintf(stderr, "bench_svc_first_packet: -s %s: want up to %d increasing "
					"service counts in 1..10000\n",
				s, MAX_SIZES);
			free(dup);
			return -1;
		}
		b->sizes[b->nsizes++] = (unsigned int)n;
	}
	free(dup);
	return b->nsizes ? 0 : -1;
}

static void add_row(struct bench *b, enum kind k, unsigned int n)
{
	struct row *w = &b->r[b->nr++];

	memset(w, 0, sizeof(*w));
	w->kind = k, w->n = n, w->tx = w->rx = w->rx_other = -1;
}

static int setup_row(struct bench *b, struct row *w, int idx)
{
	unsigned int nmax = b->sizes[b->nsizes - 1];
	unsigned int nf = w->kind == K_CILIATE_HOT ? 10 : w->n ? w->n : nmax;
	int direct = w->kind == K_CILIATE_DIRECT;

	if (build_topology(w, idx) || open_sockets(w) ||
	    frames_build(&w->flows, b->packets, 0, nf, direct) ||
	    frames_build(&w->probe, PROBES, b->packets, nf, direct))
		return -1;
	switch (w->kind) {
	case K_FLOOR:
		return 0;
	case K_TC_EMPTY: {
		int err;

		if (lab_enter(w->rtr))
			return -1;
		err = tc_attach_all(w->vc, 1, bpf_program__fd(b->empty->progs.bench_empty),
				    bpf_program__fd(b->empty->progs.bench_empty));
		return lab_leave(&w->lab) || err ? -1 : 0;
	}
	case K_CILIATE:
	case K_CILIATE_NOEV:
	case K_CILIATE_DIRECT:
	case K_CILIATE_HOT:
		return ciliate_open(w);
	case K_IPT:
	case K_NFT:
		return rules_load(w, b->ipt_restore);
	}
	return -1;
}

static void free_row(struct row *w)
{
	ring_buffer__free(w->rb);
	datapath_close(w->dp);
	if (w->tx >= 0)
		close(w->tx);
	if (w->rx >= 0)
		close(w->rx);
	if (w->rx_other >= 0)
		close(w->rx_other);
	frameset_free(&w->flows);
	frameset_free(&w->probe);
	lab_destroy(&w->lab);
}

static int run(struct bench *b)
{
	unsigned int nmax = b->sizes[b->nsizes - 1];
	int slice = b->packets / SLICES;

	add_row(b, K_FLOOR, 0);
	add_row(b, K_TC_EMPTY, 0);
	for (int s = 0; s < b->nsizes; s++)
		add_row(b, K_CILIATE, b->sizes[s]);
	add_row(b, K_CILIATE_NOEV, nmax);
	add_row(b, K_CILIATE_DIRECT, nmax);
	if (nmax > 10)
		add_row(b, K_CILIATE_HOT, nmax);
	for (int s = 0; s < b->nsizes; s++)
		add_row(b, K_IPT, b->sizes[s]);
	for (int s = 0; s < b->nsizes; s++)
		add_row(b, K_NFT, b->sizes[s]);

	for (int i = 0; i < b->nr && !lab_stop; i++) {
		if (!b->quiet)
			fprintf(stderr, "bench_svc_first_packet: setting up %s %u...\n",
				kind_names[b->r[i].kind], b->r[i].n);
		if (setup_row(b, &b->r[i], i))
			return -1;
	}
	for (int i = 0; i < b->nr && !lab_stop; i++)
		if (verify(&b->r[i], slice))
			return -1;
	for (int r = 0; r < b->rounds && !lab_stop; r++) {
		if (!b->quiet)
			fprintf(stderr, "bench_svc_first_packet: round %d/%d\n", r + 1, b->rounds);
		for (int i = 0; i < b->nr && !lab_stop; i++) {
			struct row *w = &b->r[(i + r) % b->nr];

			if (reset(w) || timed_slices(w, w->slice, &w->ns[r], &w->lost))
				return -1;
		}
	}
	if (lab_stop) {
		fprintf(stderr, "bench_svc_first_packet: interrupted (signal or time limit)\n");
		return -1;
	}
	for (int i = 0; i < b->nr; i++) {
		if (b->r[i].lost) {
			fprintf(stderr, "bench_svc_first_packet: %s %u lost %ld packets\n",
				kind_names[b->r[i].kind], b->r[i].n, b->r[i].lost);
			return -1;
		}
		if (b->r[i].dp && events_lost(b->r[i].dp))
			fprintf(stderr, "bench_svc_first_packet: %s %u: %llu events lost\n",
				kind_names[b->r[i].kind], b->r[i].n,
				(unsigned long long)events_lost(b->r[i].dp));
	}
	report(b);
	return 0;
}

static void pin_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort: less migration noise */
}

int main(int argc, char **argv)
{
	static struct bench b;
	unsigned int limit = 600;
	const char *flavour = "legacy";
	int rc;

	b.packets = 2000, b.rounds = 11;
	parse_sizes(&b, "10,1000,10000");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-n") && val)
			b.packets = atoi(val), i++;
		else if (!strcmp(a, "-r") && val)
			b.rounds = atoi(val), i++;
		else if (!strcmp(a, "-t") && val)
			limit = (unsigned int)atoi(val), i++;
		else if (!strcmp(a, "-I") && val)
			flavour = val, i++;
		else if (!strcmp(a, "-q"))
			b.quiet = 1;
		else if (!strcmp(a, "-s") && val) {
			if (parse_sizes(&b, val))
				return 2;
			i++;
		} else {
			fprintf(stderr, "usage: bench_svc_first_packet [-n PACKETS] [-r ROUNDS] "
					"[-s N,N,...] [-t SECONDS] [-I legacy|nft] [-q]\n");
			return 2;
		}
	}
	if (b.packets < 2 * SLICES || b.packets > PACKETS_MAX || b.rounds < 1 ||
	    b.rounds > MAX_ROUNDS || limit < 5 || limit > 3600 ||
	    (strcmp(flavour, "legacy") && strcmp(flavour, "nft"))) {
		fprintf(stderr, "bench_svc_first_packet: want -n %d..%d, -r 1..%d, -t 5..3600, "
				"-I legacy|nft\n",
			2 * SLICES, PACKETS_MAX, MAX_ROUNDS);
		return 2;
	}
	b.ipt_restore = !strcmp(flavour, "legacy") ? "iptables-legacy-restore" :
						    "iptables-nft-restore";
	if (geteuid() != 0) {
		printf("SKIP: network namespaces, BPF and iptables need root\n");
		return 0;
	}
	if (lab_sh_quiet("command -v %s && command -v nft && command -v conntrack",
			 b.ipt_restore)) {
		printf("SKIP: %s, nft or conntrack missing (ci/install-deps.sh installs them)\n",
		       b.ipt_restore);
		return 0;
	}
	if (getloadavg(&b.load, 1) != 1)
		b.load = -1;
	lab_catch_signals(limit);
	pin_cpu();
	b.empty = bench_floor__open_and_load();
	if (!b.empty) {
		fprintf(stderr, "bench_svc_first_packet: loading bench_floor: %s\n",
			strerror(errno));
		return 1;
	}
	rc = run(&b);
	for (int i = 0; i < b.nr; i++)
		free_row(&b.r[i]);
	bench_floor__destroy(b.empty);
	return rc < 0 ? 1 : 0;
}
