/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel WireGuard on the wire (kernel-matrix suite "wireguard-kernel", docs/ENCRYPTION-KERNEL.md).
 * Two network namespaces, node-1 and node-2, joined by a veth (192.0.2.1/24 <-> 192.0.2.2/24);
 * each has a "pod" address on lo (10.244.0.10, 10.244.1.10) and routes the other's pod range
 * (10.244.x.0/24) through its kernel WireGuard device ciliate_wg0 (UDP 51871), which is created
 * and configured only through datapath/encrypt/wg_netlink.c with X25519 keys from OpenSSL.
 * libpcap captures the frames each veth end sends (together: the wire).
 *
 *  (a) pod-to-pod UDP and TCP with a marker payload: every IPv4 packet on the wire is UDP
 *      51871 <-> 51871 between the node addresses; no captured byte sequence contains the
 *      marker or the inner pod address pair
 *  (b) wg_nl_get on both nodes: private key set, public key = the X25519 public key of the
 *      private key we set, port 51871, the one peer with its endpoint, allowed IPs as set,
 *      a handshake time, rx and tx bytes > 0
 *  (c) re-key under a live 2 MB TCP stream: node-1 gets a new private key, node-2 replaces the
 *      peer (old public key removed, new one added); every byte arrives in order; afterwards
 *      node-2 has only the new key, with a handshake newer than the re-key
 *  (d) node-1 removes its peer: no datagram crosses either way and node-1 sends nothing on
 *      51871; adding the peer back restores traffic
 *
 * Never touches the namespace it starts in. Prints "RESULT pass=N fail=N skip=N"; without
 * WireGuard in the kernel prints "SKIP: <reason>" and exits 77.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "encrypt/wg_netlink.h"
#include "wg_guest.h"

#define MARKER "CILIATE-WG-KERNEL-SECRET" /* 24 bytes */
#define STREAM_BYTES (2u << 20)
#define HARD_TIMEOUT_S 420

static int n_pass, n_fail;
static struct pair P;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf(ok ? "ok - " : "FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		n_pass++;
	else
		n_fail++;
}

static void on_alarm(int sig)
{
	static const char m[] = "FAIL: test_wg_kernel exceeded its hard time limit\nRESULT pass=0 fail=1 skip=0\n";

	(void)sig;
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

/* ---- capture ------------------------------------------------------------------------------- */

#define PHASES 6
struct capture {
	pcap_t *p[2]; /* frames sent by veth-n1 / veth-n2 */
	int phase;
	unsigned wg[PHASES][2];    /* UDP 51871<->51871 between the node addresses, by sender */
	unsigned other[PHASES];    /* any other IPv4 packet */
	unsigned leak_marker, leak_pair, total, ipv4;
	unsigned first_other_proto, first_other_src, first_other_dst;
};
static struct capture cap;
static const uint8_t pair_fwd[8] = { 10, 244, 0, 10, 10, 244, 1, 10 };
static const uint8_t pair_rev[8] = { 10, 244, 1, 10, 10, 244, 0, 10 };

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *pkt)
{
	struct capture *c = (struct capture *)user;
	const uint8_t *ip;
	unsigned ihl, proto, sport = 0, dport = 0;
	uint32_t src, dst;

	c->total++;
	if (memmem(pkt, h->caplen, MARKER, 24))
		c->leak_marker++;
	if (memmem(pkt, h->caplen, pair_fwd, 8) || memmem(pkt, h->caplen, pair_rev, 8))
		c->leak_pair++;
	if (h->caplen < 14 + 20 || pkt[12] != 0x08 || pkt[13] != 0x00)
		return;
	c->ipv4++;
	ip = pkt + 14;
	ihl = (ip[0] & 0x0fu) * 4u;
	proto = ip[9];
	memcpy(&src, ip + 12, 4);
	memcpy(&dst, ip + 16, 4);
	src = ntohl(src);
	dst = ntohl(dst);
	if (proto == IPPROTO_UDP && h->caplen >= 14 + ihl + 8) {
		sport = (unsigned)ip[ihl] << 8 | ip[ihl + 1];
		dport = (unsigned)ip[ihl + 2] << 8 | ip[ihl + 3];
	}
	if (proto == IPPROTO_UDP && sport == WG_PORT && dport == WG_PORT &&
	    ((src == 0xc0000201u && dst == 0xc0000202u) || (src == 0xc0000202u && dst == 0xc0000201u))) {
		c->wg[c->phase][src == 0xc0000201u ? 0 : 1]++;
		return;
	}
	if (!c->other[c->phase]) {
		c->first_other_proto = proto;
		c->first_other_src = src;
		c->first_other_dst = dst;
	}
	c->other[c->phase]++;
}

static void drain(void)
{
	int i, guard = 0;

	for (i = 0; i < 2; i++)
		while (cap.p[i] && guard++ < 100000 && pcap_dispatch(cap.p[i], -1, on_packet, (u_char *)&cap) > 0)
			;
}

static int capture_open(int i, int ns, const char *ifname, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p;

	ns_enter(ns);
	p = pcap_create(ifname, ebuf);
	if (!p) {
		snprintf(err, errlen, "pcap_create %s: %s", ifname, ebuf);
		return -1;
	}
	cap.p[i] = p;
	pcap_set_snaplen(p, 65535);
	pcap_set_immediate_mode(p, 1);
	pcap_set_buffer_size(p, 16 << 20);
	pcap_set_timeout(p, 10);
	if (pcap_activate(p) < 0 || pcap_setdirection(p, PCAP_D_OUT) < 0 || pcap_setnonblock(p, 1, ebuf) < 0) {
		snprintf(err, errlen, "pcap on %s: %s", ifname, pcap_geterr(p));
		return -1;
	}
	return 0;
}

static void set_phase(int ph)
{
	drain();
	cap.phase = ph;
}

static void ip_s(uint32_t a, char *out)
{
	struct in_addr x = { .s_addr = htonl(a) };

	inet_ntop(AF_INET, &x, out, 16);
}

/* ---- state --------------------------------------------------------------------------------- */

static uint8_t priv1[32], pub1[32], priv2[32], pub2[32], priv1b[32], pub1b[32], priv1c[32], pub1c[32];

static int get_state(int n, struct wg_nl_state *st)
{
	struct diag d = { { 0 } };
	int e;

	ns_enter(P.ns[n]);
	e = wg_nl_get(WG_IFNAME, st, &d);
	if (e)
		printf("# node-%d wg_nl_get: %s\n", n, d.msg);
	return e;
}

static void print_state(int n, const struct wg_nl_state *st)
{
	char k[45], ep[16];
	size_t i, j;

	key_b64(st->public_key, k);
	printf("# node-%d %s (ifindex %d): public key %s, private key %s, port %u, %zu peer(s)\n", n,
	       st->ifname, st->ifindex, k, st->has_private_key ? "set" : "none", st->listen_port, st->n_peers);
	for (i = 0; i < st->n_peers; i++) {
		const struct wg_nl_peer_state *p = &st->peers[i];

		key_b64(p->public_key, k);
		ip_s(ntohl(p->endpoint.s_addr), ep);
		printf("#   peer %s endpoint %s:%u handshake %lld rx %llu tx %llu allowed", k, ep,
		       p->endpoint_port, (long long)p->last_handshake_sec, (unsigned long long)p->rx_bytes,
		       (unsigned long long)p->tx_bytes);
		for (j = 0; j < p->n_allowed_ips; j++) {
			ip_s(ntohl(p->allowed_ips[j].ip.s_addr), ep);
			printf(" %s/%u", ep, p->allowed_ips[j].prefix);
		}
		printf("\n");
	}
}

/* node n's device as configured, the peer with handshake and traffic */
static void check_state_b(int n, const uint8_t *my_pub, const uint8_t *peer_pub, const char *cidr)
{
	struct wg_nl_state st;
	const struct wg_nl_peer_state *p;
	char ep[16], aip[16];
	time_t now = time(NULL);

	if (get_state(n, &st)) {
		check(0, "(b) node-%d: wg_nl_get", n);
		return;
	}
	print_state(n, &st);
	check(st.has_private_key && st.has_public_key && memcmp(st.public_key, my_pub, 32) == 0 &&
	      st.listen_port == WG_PORT && strcmp(st.ifname, WG_IFNAME) == 0,
	      "(b) node-%d: private key set, public key = X25519(private), port %u", n, st.listen_port);
	p = st.n_peers == 1 ? wg_nl_state_peer(&st, peer_pub) : NULL;
	check(p != NULL, "(b) node-%d: exactly the one peer, by its public key (%zu peers)", n, st.n_peers);
	if (p) {
		ip_s(ntohl(p->endpoint.s_addr), ep);
		if (p->n_allowed_ips)
			ip_s(ntohl(p->allowed_ips[0].ip.s_addr), aip);
		else
			snprintf(aip, sizeof(aip), "-");
		check(p->endpoint_family == AF_INET && strcmp(ep, n == 1 ? "192.0.2.2" : "192.0.2.1") == 0 &&
		      p->endpoint_port == WG_PORT,
		      "(b) node-%d: peer endpoint %s:%u", n, ep, p->endpoint_port);
		check(p->n_allowed_ips == 1 && p->allowed_ips[0].family == AF_INET && strcmp(aip, cidr) == 0 &&
		      p->allowed_ips[0].prefix == 24,
		      "(b) node-%d: allowed IPs as set (%zu: %s/%u)", n, p->n_allowed_ips, aip,
		      p->n_allowed_ips ? p->allowed_ips[0].prefix : 0);
		check(p->last_handshake_sec > 0 && p->last_handshake_sec <= now + 5,
		      "(b) node-%d: handshake at %lld (now %lld)", n, (long long)p->last_handshake_sec,
		      (long long)now);
		check(p->rx_bytes > 0 && p->tx_bytes > 0, "(b) node-%d: rx %llu bytes, tx %llu bytes", n,
		      (unsigned long long)p->rx_bytes, (unsigned long long)p->tx_bytes);
	}
	wg_nl_state_free(&st);
}

/* ---- re-key during the stream -------------------------------------------------------------- */

struct rekey {
	const uint8_t *old_pub, *new_priv, *new_pub;
	int ordered; /* the agent's order (docs/ENCRYPTION.md): no crossing handshakes */
	int done;
	int ok1, ok2;
	double t;
	time_t wall;
	char msg[1200];
};

static void peer_counters(int n, const uint8_t *key, long long *hs, unsigned long long *tx,
			  unsigned long long *rx);

/* node-1's peer entry for node-2 with only a keepalive interval (1: a keepalive goes out now) */
static int node1_keepalive(int secs, struct diag *d)
{
	struct wg_nl_peer p = { .keepalive = secs, .update_only = true };
	struct wg_nl_config c = { .listen_port = -1, .peers = &p, .n_peers = 1 };

	memcpy(p.public_key, pub2, 32);
	ns_enter(P.ns[1]);
	return wg_nl_set(WG_IFNAME, &c, d);
}

/*
 * naive: node-1 sets its new key, node-2 replaces the peer right after. Both may start a
 *   handshake at once; crossing handshakes are dropped and retried after REKEY_TIMEOUT (5 s).
 * ordered: node-1 sets the key together with a keepalive (its handshake starts now), node-2
 *   rejects it (unknown key) -- we wait for it to have gone out; then node-2 replaces the peer
 *   with a keepalive, and node-1 (which starts none for 5 s) accepts node-2's handshake.
 *   Keepalives are switched off again right after.
 */
static void rekey_hook(uint64_t received, void *ctx)
{
	struct rekey *rk = ctx;
	struct wg_nl_config c1 = { .has_private_key = true, .listen_port = -1 };
	struct wg_nl_allowed_ip aip = { .family = AF_INET, .prefix = 24 };
	struct wg_nl_peer peers[2] = {
		{ .remove = true, .keepalive = -1 },
		{ .has_endpoint = true, .endpoint_port = WG_PORT, .keepalive = -1, .replace_allowed_ips = true,
		  .allowed_ips = &aip, .n_allowed_ips = 1 },
	};
	struct wg_nl_config c2 = { .listen_port = -1, .peers = peers, .n_peers = 2 };
	struct wg_nl_peer n1peer = { .keepalive = 1, .update_only = true };
	struct diag d = { { 0 } };
	double t_sent = 0;
	long long hs0 = 0;
	unsigned long long tx0 = 0, rx0 = 0;

	if (rk->done || received < STREAM_BYTES / 4)
		return;
	rk->done = 1;
	memcpy(c1.private_key, rk->new_priv, 32);
	memcpy(peers[0].public_key, rk->old_pub, 32);
	memcpy(peers[1].public_key, rk->new_pub, 32);
	inet_pton(AF_INET, "192.0.2.1", &peers[1].endpoint);
	inet_pton(AF_INET, "10.244.0.0", &aip.ip);
	if (rk->ordered) {
		memcpy(n1peer.public_key, pub2, 32);
		c1.peers = &n1peer;
		c1.n_peers = 1;
		peers[1].keepalive = 1;
	}
	if (rk->ordered) /* before the set: the keepalive's initiation leaves during it */
		peer_counters(1, pub2, &hs0, &tx0, &rx0);
	rk->t = now_s();
	rk->wall = time(NULL);
	ns_enter(P.ns[1]);
	rk->ok1 = wg_nl_set(WG_IFNAME, &c1, &d) == 0;
	if (!rk->ok1)
		snprintf(rk->msg, sizeof(rk->msg), "node-1: %s", d.msg);
	if (rk->ordered && rk->ok1) {
		long long hs;
		unsigned long long tx = 0, rx;
		int i;

		/* node-1's handshake initiation (148 bytes) has gone out; give node-2 time to drop it */
		for (i = 0; i < 100; i++) {
			peer_counters(1, pub2, &hs, &tx, &rx);
			if (tx >= tx0 + 148)
				break;
			usleep(20000);
		}
		t_sent = now_s() - rk->t;
		usleep(300000);
		rk->ok1 = node1_keepalive(0, &d) == 0;
		if (!rk->ok1)
			snprintf(rk->msg, sizeof(rk->msg), "node-1 keepalive off: %s", d.msg);
	}
	ns_enter(P.ns[2]);
	rk->ok2 = wg_nl_set(WG_IFNAME, &c2, &d) == 0;
	if (!rk->ok2)
		snprintf(rk->msg, sizeof(rk->msg), "node-2: %s", d.msg);
	if (rk->ordered && rk->ok2) {
		struct wg_nl_peer off = { .keepalive = 0, .update_only = true };
		struct wg_nl_config c3 = { .listen_port = -1, .peers = &off, .n_peers = 1 };

		memcpy(off.public_key, rk->new_pub, 32);
		rk->ok2 = wg_nl_set(WG_IFNAME, &c3, &d) == 0;
		if (!rk->ok2)
			snprintf(rk->msg, sizeof(rk->msg), "node-2 keepalive off: %s", d.msg);
	}
	printf("# re-key (%s) at %llu bytes: node-1 new private key%s, node-2 peer replaced (%.3f s)\n",
	       rk->ordered ? "ordered" : "naive", (unsigned long long)received,
	       rk->ordered ? " + keepalive" : "", now_s() - rk->t);
	if (rk->ordered)
		printf("#   node-1's initiation out after %.3f s\n", t_sent);
}

/* peer counters of node n for key (0 when absent) */
static void peer_counters(int n, const uint8_t *key, long long *hs, unsigned long long *tx, unsigned long long *rx)
{
	struct wg_nl_state st;
	const struct wg_nl_peer_state *p;

	*hs = -1;
	*tx = *rx = 0;
	if (get_state(n, &st))
		return;
	p = wg_nl_state_peer(&st, key);
	if (p) {
		*hs = (long long)p->last_handshake_sec;
		*tx = (unsigned long long)p->tx_bytes;
		*rx = (unsigned long long)p->rx_bytes;
	}
	wg_nl_state_free(&st);
}

static void idle_drain(void *ctx)
{
	struct rekey *rk = ctx;
	static double last;
	double t = now_s();

	drain();
	/* after the re-key, once a second for 30 s: the handshake and the counters of both
	 * sides and the WireGuard packets on the wire, to see where a pause comes from */
	if (rk && rk->done && t - rk->t < 30 && t - last >= 1.0) {
		long long h1, h2;
		unsigned long long tx1, rx1, tx2, rx2;

		last = t;
		peer_counters(1, pub2, &h1, &tx1, &rx1);
		peer_counters(2, rk->new_pub, &h2, &tx2, &rx2);
		printf("# t+%.1f s: node-1 peer: handshake %lld tx %llu rx %llu | node-2 peer (new key): "
		       "handshake %lld tx %llu rx %llu | wire since start of stream: %u from node-1, %u from node-2\n",
		       t - rk->t, h1, tx1, rx1, h2, tx2, rx2, cap.wg[cap.phase][0], cap.wg[cap.phase][1]);
	}
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(void)
{
	struct diag d = { { 0 } };
	struct stream_result sr;
	struct wg_nl_state st;
	char err[512], k[45];
	double t0 = now_s();
	int cl, sv, n, e, ns0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(HARD_TIMEOUT_S);

	ns0 = ns_new(); /* a scratch namespace for the probe: never the one we started in */
	if (ns0 < 0) {
		printf("SKIP: cannot create a network namespace (%s): needs root / CAP_SYS_ADMIN\n", strerror(-ns0));
		printf("RESULT pass=0 fail=0 skip=1\n");
		return 77;
	}
	e = wg_nl_link_add(WG_IFNAME, WG_MTU, &d);
	if (e == -EOPNOTSUPP) {
		printf("SKIP: %s\n", d.msg);
		printf("RESULT pass=0 fail=0 skip=1\n");
		return 77;
	}
	check(e == 0, "kernel WireGuard available: %s created in a scratch namespace (%s)", WG_IFNAME,
	      e ? d.msg : "ok");
	if (e)
		goto done;
	e = wg_nl_link_add(WG_IFNAME, WG_MTU, &d);
	check(e == 0, "wg_nl_link_add again: the existing wireguard link is accepted (%s)", e ? d.msg : "ok");
	e = wg_nl_link_del(WG_IFNAME, &d);
	check(e == 0 && wg_nl_link_del(WG_IFNAME, &d) == 0, "wg_nl_link_del, twice (%s)", e ? d.msg : "ok");
	close(ns0);

	if (x25519_new(priv1, pub1) || x25519_new(priv2, pub2) || x25519_new(priv1b, pub1b) ||
	    x25519_new(priv1c, pub1c)) {
		check(0, "X25519 keys from OpenSSL");
		goto done;
	}
	if (pair_make(&P, err, sizeof(err))) {
		check(0, "topology: %s", err);
		goto done;
	}
	check(1, "topology: node-1 192.0.2.1 / pod 10.244.0.10, node-2 192.0.2.2 / pod 10.244.1.10, one veth");
	e = wg_node_setup(&P, 1, priv1, pub2, &d);
	check(e == 0, "node-1: %s created (MTU %d) and configured through wg_netlink (%s)", WG_IFNAME, WG_MTU,
	      e ? d.msg : "ok");
	if (!e) {
		e = wg_node_setup(&P, 2, priv2, pub1, &d);
		check(e == 0, "node-2: %s created and configured (%s)", WG_IFNAME, e ? d.msg : "ok");
	}
	if (e)
		goto done;
	e = pod_route(&P, 1, 1);
	if (!e)
		e = pod_route(&P, 2, 1);
	check(e == 0, "pod routes through %s on both nodes (%s)", WG_IFNAME, e ? strerror(-e) : "ok");
	if (get_state(1, &st) == 0) {
		check(st.n_peers == 1 && st.peers[0].last_handshake_sec == 0 && st.peers[0].rx_bytes == 0,
		      "before traffic: node-1 has its peer, no handshake yet (%lld)",
		      st.n_peers ? (long long)st.peers[0].last_handshake_sec : -1LL);
		wg_nl_state_free(&st);
	}

	ns_enter(P.ns[1]);
	e = capture_open(0, P.ns[1], "veth-n1", err, sizeof(err));
	if (!e)
		e = capture_open(1, P.ns[2], "veth-n2", err, sizeof(err));
	if (e) {
		check(0, "%s", err);
		goto done;
	}

	/* (a) */
	set_phase(1);
	n = udp_exchange(P.ns[1], "10.244.0.10", P.ns[2], "10.244.1.10", 5000, 10, MARKER, 5000);
	check(n == 20, "(a) pod-to-pod UDP through kernel WireGuard: %d/20 datagrams intact", n);
	if (tcp_pair(P.ns[1], "10.244.0.10", P.ns[2], "10.244.1.10", 7000, &cl, &sv) == 0) {
		stream_run(cl, sv, 65536, MARKER, NULL, idle_drain, NULL, 60, &sr);
		check(sr.received == 65536 && sr.first_bad == UINT64_MAX,
		      "(a) pod-to-pod TCP node-1 -> node-2: %llu/65536 bytes in order", (unsigned long long)sr.received);
		stream_run(sv, cl, 32768, MARKER, NULL, idle_drain, NULL, 60, &sr);
		check(sr.received == 32768 && sr.first_bad == UINT64_MAX,
		      "(a) pod-to-pod TCP node-2 -> node-1: %llu/32768 bytes in order", (unsigned long long)sr.received);
		close(cl);
		close(sv);
	} else {
		check(0, "(a) TCP connection 10.244.0.10 -> 10.244.1.10:7000");
	}
	set_phase(2);
	printf("# (a) wire: %u WireGuard packets from node-1, %u from node-2, %u other IPv4\n", cap.wg[1][0],
	       cap.wg[1][1], cap.other[1]);
	check(cap.wg[1][0] >= 20 && cap.wg[1][1] >= 20,
	      "(a) the wire carries UDP 51871 between the node addresses both ways (%u / %u packets)",
	      cap.wg[1][0], cap.wg[1][1]);
	{
		char s[16], t[16];

		ip_s(cap.first_other_src, s);
		ip_s(cap.first_other_dst, t);
		check(cap.other[1] == 0, "(a) no other IPv4 packet on the wire (%u; first: proto %u %s -> %s)",
		      cap.other[1], cap.first_other_proto, s, t);
	}
	check(cap.leak_marker == 0 && cap.leak_pair == 0,
	      "(a) no captured frame contains the payload marker (%u) or the inner pod address pair (%u)",
	      cap.leak_marker, cap.leak_pair);

	/* (b) */
	check_state_b(1, pub1, pub2, "10.244.1.0");
	check_state_b(2, pub2, pub1, "10.244.0.0");

	/* (c) re-key under a live stream */
	set_phase(2);
	if (tcp_pair(P.ns[1], "10.244.0.10", P.ns[2], "10.244.1.10", 7001, &cl, &sv) == 0) {
		struct rekey rk = { .old_pub = pub1, .new_priv = priv1b, .new_pub = pub1b };
		int one = 1;

		setsockopt(cl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		stream_run(cl, sv, STREAM_BYTES, MARKER, rekey_hook, idle_drain, &rk, 180, &sr);
		printf("# (c) stream: %llu sent, %llu received in %.2f s; longest pause %.2f s\n",
		       (unsigned long long)sr.sent, (unsigned long long)sr.received, sr.secs, sr.max_gap);
		check(rk.done && rk.ok1 && rk.ok2, "(c) re-key applied during the stream: node-1 private key, node-2 "
						   "peer replaced (%s)", rk.msg[0] ? rk.msg : "ok");
		check(sr.received == STREAM_BYTES && sr.first_bad == UINT64_MAX,
		      "(c) every byte of the 2 MB stream arrived in order across the re-key (%llu/%u%s)",
		      (unsigned long long)sr.received, STREAM_BYTES, sr.first_bad != UINT64_MAX ? ", a byte differs" : "");
		close(cl);
		close(sv);
		if (get_state(1, &st) == 0) {
			key_b64(st.public_key, k);
			check(memcmp(st.public_key, pub1b, 32) == 0, "(c) node-1 reports the new public key %s", k);
			wg_nl_state_free(&st);
		}
		if (get_state(2, &st) == 0) {
			const struct wg_nl_peer_state *p = wg_nl_state_peer(&st, pub1b);

			print_state(2, &st);
			check(st.n_peers == 1 && p && !wg_nl_state_peer(&st, pub1),
			      "(c) node-2: only the new key of node-1 is a peer (%zu peers)", st.n_peers);
			check(p && p->last_handshake_sec >= rk.wall - 1 && p->rx_bytes > STREAM_BYTES / 2,
			      "(c) node-2: handshake with the new key at %lld (re-key at %lld), %llu bytes received",
			      p ? (long long)p->last_handshake_sec : 0LL, (long long)rk.wall,
			      p ? (unsigned long long)p->rx_bytes : 0ULL);
			wg_nl_state_free(&st);
		}
	} else {
		check(0, "(c) TCP connection 10.244.0.10 -> 10.244.1.10:7001");
	}
	/* (c2) the same again in the agent's order: node-1 to a third key, no crossing handshakes */
	if (tcp_pair(P.ns[1], "10.244.0.10", P.ns[2], "10.244.1.10", 7002, &cl, &sv) == 0) {
		struct rekey rk = { .old_pub = pub1b, .new_priv = priv1c, .new_pub = pub1c, .ordered = 1 };
		int one = 1;

		setsockopt(cl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		stream_run(cl, sv, STREAM_BYTES, MARKER, rekey_hook, idle_drain, &rk, 180, &sr);
		printf("# (c2) stream: %llu sent, %llu received in %.2f s; longest pause %.2f s\n",
		       (unsigned long long)sr.sent, (unsigned long long)sr.received, sr.secs, sr.max_gap);
		check(rk.done && rk.ok1 && rk.ok2, "(c2) ordered re-key applied during the stream (%s)",
		      rk.msg[0] ? rk.msg : "ok");
		check(sr.received == STREAM_BYTES && sr.first_bad == UINT64_MAX,
		      "(c2) every byte of the second 2 MB stream arrived in order (%llu/%u%s)",
		      (unsigned long long)sr.received, STREAM_BYTES, sr.first_bad != UINT64_MAX ? ", a byte differs" : "");
		check(sr.max_gap < 4.5,
		      "(c2) the stream paused %.2f s, less than REKEY_TIMEOUT (5 s): no handshake was retried", sr.max_gap);
		close(cl);
		close(sv);
		if (get_state(2, &st) == 0) {
			const struct wg_nl_peer_state *p = wg_nl_state_peer(&st, pub1c);

			print_state(2, &st);
			check(st.n_peers == 1 && p && p->last_handshake_sec >= rk.wall - 1 && p->keepalive == 0,
			      "(c2) node-2: only node-1's third key, handshake at %lld (re-key at %lld), keepalive %u",
			      p ? (long long)p->last_handshake_sec : 0LL, (long long)rk.wall, p ? p->keepalive : 0);
			wg_nl_state_free(&st);
		}
		if (get_state(1, &st) == 0) {
			check(memcmp(st.public_key, pub1c, 32) == 0 && st.n_peers == 1 && st.peers[0].keepalive == 0,
			      "(c2) node-1: third public key, its peer's keepalive back to 0 (%u)",
			      st.n_peers ? st.peers[0].keepalive : 0);
			wg_nl_state_free(&st);
		}
	} else {
		check(0, "(c2) TCP connection 10.244.0.10 -> 10.244.1.10:7002");
	}
	set_phase(3);
	check(cap.other[2] == 0 && cap.leak_marker == 0 && cap.leak_pair == 0,
	      "(c) during the re-key too: only WireGuard on the wire (%u other), no marker (%u), no pod pair (%u)",
	      cap.other[2], cap.leak_marker, cap.leak_pair);

	/* (d) removing the peer stops the traffic */
	{
		struct wg_nl_peer rm = { .remove = true, .keepalive = -1 };
		struct wg_nl_config c = { .listen_port = -1, .peers = &rm, .n_peers = 1 };

		memcpy(rm.public_key, pub2, 32);
		ns_enter(P.ns[1]);
		e = wg_nl_set(WG_IFNAME, &c, &d);
		check(e == 0, "(d) node-1 removes its peer (node-2) (%s)", e ? d.msg : "ok");
		if (get_state(1, &st) == 0) {
			check(st.n_peers == 0, "(d) node-1 has no peer (%zu)", st.n_peers);
			wg_nl_state_free(&st);
		}
		set_phase(4);
		n = udp_exchange(P.ns[1], "10.244.0.10", P.ns[2], "10.244.1.10", 5100, 5, MARKER, 1500);
		set_phase(5);
		check(n == 0, "(d) without the peer no datagram crosses either way (%d/10 arrived)", n);
		check(cap.wg[4][0] == 0, "(d) node-1 sends nothing on UDP 51871 (%u packets; node-2 still sent %u)",
		      cap.wg[4][0], cap.wg[4][1]);
		check(cap.other[4] == 0, "(d) and nothing in plaintext (%u other IPv4)", cap.other[4]);
		e = wg_node_setup(&P, 1, priv1c, pub2, &d);
		n = e ? 0 : udp_exchange(P.ns[1], "10.244.0.10", P.ns[2], "10.244.1.10", 5200, 5, MARKER, 5000);
		check(e == 0 && n == 10, "(d) peer added back: traffic flows again (%d/10) (%s)", n, e ? d.msg : "ok");
	}

	/* the whole capture */
	drain();
	{
		struct pcap_stat ps0 = { 0 }, ps1 = { 0 };

		pcap_stats(cap.p[0], &ps0);
		pcap_stats(cap.p[1], &ps1);
		printf("# capture: %u frames (%u IPv4), pcap drops %u + %u\n", cap.total, cap.ipv4, ps0.ps_drop,
		       ps1.ps_drop);
		check(ps0.ps_drop == 0 && ps1.ps_drop == 0, "capture lost no frame (%u + %u dropped)", ps0.ps_drop,
		      ps1.ps_drop);
	}
	check(cap.leak_marker == 0, "no captured frame contains the payload marker (%u do)", cap.leak_marker);
	check(cap.leak_pair == 0, "no captured frame contains the inner pod address pair (%u do)", cap.leak_pair);
	for (n = 1; n <= 2; n++) {
		ns_enter(P.ns[n]);
		e = wg_nl_link_del(WG_IFNAME, &d);
		check(e == 0, "node-%d: %s deleted (%s)", n, WG_IFNAME, e ? d.msg : "ok");
	}

done:
	if (cap.p[0])
		pcap_close(cap.p[0]);
	if (cap.p[1])
		pcap_close(cap.p[1]);
	printf("# total %.2f s\n", now_s() - t0);
	printf("RESULT pass=%d fail=%d skip=0\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}
