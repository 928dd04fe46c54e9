// SPDX-License-Identifier: Apache-2.0
/*
 * ciliate-pktgen: writes the golden replay cases, byte-identical on every run:
 *   ROOT/pcaps/replay/NAME.pcap       input packets
 *   ROOT/pcaps/replay/NAME.out.pcap   expected outputs of the packets that are not dropped
 *   ROOT/scenarios/replay/CASE.yaml   cluster, policies and Replay documents
 *   ROOT/pcaps/README.md              the list of cases, packets and verdicts
 *
 * Expected outputs are computed here from the datapath's documented rules, never by running
 * the datapath: a same-node redirect rewrites the MACs to the receiver's pod MAC (0a:58:IP)
 * and gateway MAC (0e:58:IP) and decrements the TTL (IPv4 header checksum recomputed); "ok"
 * leaves the frame unchanged; drops produce nothing. Service and NAT cases (svc-*) expect the
 * translation the datapath documents (docs/SERVICES.md): the output is the same frame built
 * again with the translated addresses and ports, every checksum computed afresh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "decode/decode.h"
#include "pktbuild.h"

#define FRAME_MAX 1600 /* a full 1500-byte IP packet (the DSR MTU cases) */
#define REPLAY_MAX_PKTS 12
#define SCENARIO_MAX_REPLAYS 3
#define PATH_MAX_LEN 4096

#define NS "replay"
#define IP_CLIENT PB_IP4(10, 244, 0, 10)
#define IP_SERVER PB_IP4(10, 244, 0, 20)
#define IP_REMOTE PB_IP4(10, 244, 1, 30)
#define IP_NODE1 PB_IP4(192, 0, 2, 1)
#define IP_NODE2 PB_IP4(192, 0, 2, 2)
#define IP_GONE PB_IP4(10, 244, 1, 99)   /* in node-2's range, no pod */
#define IP_NO_NODE PB_IP4(10, 244, 9, 99) /* in the cluster range, no node's pod CIDR */
#define IP_WORLD PB_IP4(203, 0, 113, 10)
#define IP_CLUSTERIP PB_IP4(10, 96, 0, 80) /* service replay/web */
#define NODEPORT 30080			   /* service replay/web-nodeport */

struct frame {
	uint8_t b[FRAME_MAX];
	size_t len;
	int err;
};

struct replay {
	const char *name; /* Replay document name and pcap base name */
	const char *node;
	const char *hook;
	const char *endpoint;
	const char *what; /* one sentence for comments and the README */
	size_t n;
	struct frame in[REPLAY_MAX_PKTS];
	const char *verdict[REPLAY_MAX_PKTS];
	const char *note[REPLAY_MAX_PKTS];
	bool has_out[REPLAY_MAX_PKTS];
	struct frame out[REPLAY_MAX_PKTS];
	int err;
};

struct scenario {
	const char *name; /* scenarios/replay/NAME.yaml */
	const char *title;
	const char *policies; /* extra YAML documents (each starting with "---"), or NULL */
	const char *routing;  /* Cluster spec.routing; NULL: native */
	const char *config;   /* Cluster spec.config (a flow mapping), or NULL */
	const char *spec_extra; /* more Cluster spec lines ("  key: ...\n"), or NULL */
	size_t nreplays;
	struct replay r[SCENARIO_MAX_REPLAYS];
};

/* L2 addressing of a frame as seen on a pod's veth. */
struct l2 {
	uint8_t dst[6], src[6];
};

/* ---- frames ---- */

/* A frame sent by the pod with address ip: pod MAC -> its gateway. */
static struct l2 from_pod(uint32_t ip)
{
	struct l2 l;

	pb_gw_mac(ip, l.dst);
	pb_pod_mac(ip, l.src);
	return l;
}

/* A frame delivered to the pod with address ip: gateway -> pod MAC. */
static struct l2 to_pod(uint32_t ip)
{
	struct l2 l;

	pb_pod_mac(ip, l.dst);
	pb_gw_mac(ip, l.src);
	return l;
}

static struct pb_ipv4 ip4(uint32_t saddr, uint32_t daddr, uint16_t id)
{
	struct pb_ipv4 h = pb_ipv4_hdr(saddr, daddr);

	h.id = id;
	return h;
}

static void frame_finish(struct frame *f, struct pb_pkt *p)
{
	int n = pb_finish(p);

	f->err = n < 0 ? n : 0;
	f->len = n < 0 ? 0 : (size_t)n;
}

static struct frame tcp_frame(const struct l2 *l2, const struct pb_ipv4 *ip, uint16_t sport,
			      uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
			      const char *data)
{
	struct pb_tcp t = pb_tcp_hdr(sport, dport, flags);
	struct frame f;
	struct pb_pkt p;

	t.seq = seq;
	t.ack = ack;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2->dst, l2->src, PB_AUTO);
	pb_ipv4(&p, ip);
	pb_tcp(&p, &t);
	if (data)
		pb_bytes(&p, data, strlen(data));
	frame_finish(&f, &p);
	return f;
}

static struct frame udp_frame(const struct l2 *l2, const struct pb_ipv4 *ip, uint16_t sport,
			      uint16_t dport, const void *data, size_t len)
{
	struct pb_udp u = { .sport = sport, .dport = dport, .len = PB_AUTO };
	struct frame f;
	struct pb_pkt p;

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2->dst, l2->src, PB_AUTO);
	pb_ipv4(&p, ip);
	pb_udp(&p, &u);
	pb_bytes(&p, data, len);
	frame_finish(&f, &p);
	return f;
}

static struct frame sctp_init_frame(const struct l2 *l2, const struct pb_ipv4 *ip,
				    uint16_t sport, uint16_t dport, uint32_t init_tag)
{
	/* INIT chunk value: initiate tag, a_rwnd, outbound/inbound streams, initial TSN */
	uint8_t v[16] = { (uint8_t)(init_tag >> 24), (uint8_t)(init_tag >> 16),
			  (uint8_t)(init_tag >> 8), (uint8_t)init_tag, 0, 1, 0, 0, 0, 10, 0, 10,
			  (uint8_t)(init_tag >> 24), (uint8_t)(init_tag >> 16), 0, 1 };
	struct pb_sctp c = { .sport = sport, .dport = dport, .vtag = 0, .chunk_type = 1,
			     .chunk_value = v, .chunk_value_len = sizeof(v) };
	struct frame f;
	struct pb_pkt p;

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2->dst, l2->src, PB_AUTO);
	pb_ipv4(&p, ip);
	pb_sctp(&p, &c);
	frame_finish(&f, &p);
	return f;
}

static struct frame echo_frame(const struct l2 *l2, const struct pb_ipv4 *ip, uint8_t type,
			       uint16_t id, uint16_t seq)
{
	static const char data[] = "ciliate-ping-0123456789abcdef";
	struct pb_icmp c = { .type = type, .rest = (uint32_t)id << 16 | seq };
	struct frame f;
	struct pb_pkt p;

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2->dst, l2->src, PB_AUTO);
	pb_ipv4(&p, ip);
	pb_icmp4(&p, &c);
	pb_bytes(&p, data, sizeof(data) - 1);
	frame_finish(&f, &p);
	return f;
}

/* An ICMP error quoting the IPv4 packet at the start of quoted (IP header + 8 bytes). */
static struct frame icmp_error_frame(const struct l2 *l2, const struct pb_ipv4 *ip, uint8_t type,
				     uint8_t code, const struct frame *quoted)
{
	struct frame f;
	struct pb_pkt p;

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2->dst, l2->src, PB_AUTO);
	pb_ipv4(&p, ip);
	pb_icmp4_error(&p, type, code, 0, quoted->b, quoted->len);
	frame_finish(&f, &p);
	if (!f.err && quoted->err)
		f.err = quoted->err;
	return f;
}

/* An IPv4 packet without L2 (what an ICMP error quotes). */
static struct frame bare_tcp(const struct pb_ipv4 *ip, uint16_t sport, uint16_t dport,
			     uint8_t flags, uint32_t seq, uint32_t ack)
{
	struct pb_tcp t = pb_tcp_hdr(sport, dport, flags);
	struct frame f;
	struct pb_pkt p;

	t.seq = seq;
	t.ack = ack;
	pb_init(&p, f.b, sizeof(f.b));
	pb_ipv4(&p, ip);
	pb_tcp(&p, &t);
	frame_finish(&f, &p);
	return f;
}

static struct frame bare_udp(const struct pb_ipv4 *ip, uint16_t sport, uint16_t dport,
			     const char *data)
{
	struct pb_udp u = { .sport = sport, .dport = dport, .len = PB_AUTO };
	struct frame f;
	struct pb_pkt p;

	pb_init(&p, f.b, sizeof(f.b));
	pb_ipv4(&p, ip);
	pb_udp(&p, &u);
	pb_bytes(&p, data, strlen(data));
	frame_finish(&f, &p);
	return f;
}

/* Fragment [off, off + len) of the IP payload of an Ethernet+IPv4 frame. */
static struct frame fragment(const struct frame *whole, size_t off, size_t len, bool more)
{
	struct frame f = { .err = whole->err };
	int n;

	if (f.err)
		return f;
	n = pb_ipv4_fragment(whole->b, whole->len, 14, off, len, more, f.b, sizeof(f.b));
	f.err = n < 0 ? n : 0;
	f.len = n < 0 ? 0 : (size_t)n;
	return f;
}

/* ---- expectations ---- */

static void add(struct replay *r, const struct frame *in, const char *verdict,
		const struct frame *out, const char *note)
{
	if (r->n >= REPLAY_MAX_PKTS) {
		r->err = -E2BIG;
		return;
	}
	if (in->err && !r->err)
		r->err = in->err;
	r->in[r->n] = *in;
	r->verdict[r->n] = verdict;
	r->note[r->n] = note;
	r->has_out[r->n] = out != NULL;
	if (out)
		r->out[r->n] = *out;
	r->n++;
}

/* Same-node delivery to the pod with address receiver: MACs rewritten, TTL - 1. */
static void expect_redirect(struct replay *r, const struct frame *in, uint32_t receiver,
			    const char *note)
{
	struct frame out = *in;
	uint8_t *ip = out.b + 14;

	if (out.len < 34 || out.b[12] != 0x08 || out.b[13] != 0x00 || ip[8] <= 1) {
		r->err = -EINVAL; /* a redirect needs an untagged IPv4 frame with TTL > 1 */
		return;
	}
	pb_pod_mac(receiver, out.b);
	pb_gw_mac(receiver, out.b + 6);
	ip[8]--;
	pb_ipv4_fix_csum(ip, out.len - 14);
	add(r, in, "redirect", &out, note);
}

static void expect_ok(struct replay *r, const struct frame *in, const char *note)
{
	add(r, in, "ok", in, note);
}

static void expect_drop(struct replay *r, const struct frame *in, const char *verdict,
			const char *note)
{
	add(r, in, verdict, NULL, note);
}

static struct replay *new_replay(struct scenario *s, const char *name, const char *node,
				 const char *hook, const char *endpoint, const char *what)
{
	struct replay *r = &s->r[s->nreplays++];

	r->name = name;
	r->node = node;
	r->hook = hook;
	r->endpoint = endpoint;
	r->what = what;
	return r;
}

/* ---- cases ---- */

static const char policy_server_http_from_client[] =
	"---\n"
	"apiVersion: networking.k8s.io/v1\n"
	"kind: NetworkPolicy\n"
	"metadata: {name: server-http-from-client, namespace: replay}\n"
	"spec:\n"
	"  podSelector:\n"
	"    matchLabels: {app: server}\n"
	"  policyTypes: [Ingress]\n"
	"  ingress:\n"
	"  - from:\n"
	"    - podSelector:\n"
	"        matchLabels: {app: client}\n"
	"    ports:\n"
	"    - {port: 80, protocol: TCP}\n";

static void case_tcp_same_node(struct scenario *s)
{
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "tcp-same-node-allowed";
	s->title = "TCP handshake, data and FIN from client to server on the same node, allowed "
		   "by server's ingress policy: every packet is redirected to server's veth.";
	s->policies = policy_server_http_from_client;
	r = new_replay(s, "tcp-same-node-allowed", "node-1", "from-container", NS "/client",
		       "client -> server:80 (same node), allowed");

	ip = ip4(IP_CLIENT, IP_SERVER, 1);
	f = tcp_frame(&l2, &ip, 41000, 80, PB_TCP_SYN, 1000, 0, NULL);
	expect_redirect(r, &f, IP_SERVER, "SYN");
	ip.id = 2;
	f = tcp_frame(&l2, &ip, 41000, 80, PB_TCP_ACK, 1001, 5001, NULL);
	expect_redirect(r, &f, IP_SERVER, "ACK completing the handshake");
	ip.id = 3;
	f = tcp_frame(&l2, &ip, 41000, 80, PB_TCP_PSH | PB_TCP_ACK, 1001, 5001,
		      "GET / HTTP/1.0\r\n\r\n");
	expect_redirect(r, &f, IP_SERVER, "request data");
	ip.id = 4;
	f = tcp_frame(&l2, &ip, 41000, 80, PB_TCP_FIN | PB_TCP_ACK, 1019, 5101, NULL);
	expect_redirect(r, &f, IP_SERVER, "FIN");
	ip.id = 5;
	f = tcp_frame(&l2, &ip, 41000, 80, PB_TCP_ACK, 1020, 5102, NULL);
	expect_redirect(r, &f, IP_SERVER, "last ACK");
}

static void case_tcp_syn_denied(struct scenario *s)
{
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "tcp-syn-denied";
	s->title = "TCP SYN from client to server (same node) denied by server's ingress policy, "
		   "which only admits app=frontend; the retransmitted SYN is denied too.";
	s->policies = "---\n"
		      "apiVersion: networking.k8s.io/v1\n"
		      "kind: NetworkPolicy\n"
		      "metadata: {name: server-http-from-frontend, namespace: replay}\n"
		      "spec:\n"
		      "  podSelector:\n"
		      "    matchLabels: {app: server}\n"
		      "  policyTypes: [Ingress]\n"
		      "  ingress:\n"
		      "  - from:\n"
		      "    - podSelector:\n"
		      "        matchLabels: {app: frontend}\n"
		      "    ports:\n"
		      "    - {port: 80, protocol: TCP}\n";
	r = new_replay(s, "tcp-syn-denied", "node-1", "from-container", NS "/client",
		       "client -> server:80 (same node), denied by server's ingress policy");

	ip = ip4(IP_CLIENT, IP_SERVER, 1);
	f = tcp_frame(&l2, &ip, 41100, 80, PB_TCP_SYN, 2000, 0, NULL);
	expect_drop(r, &f, "drop:POLICY_DENIED", "SYN");
	ip.id = 2;
	f = tcp_frame(&l2, &ip, 41100, 80, PB_TCP_SYN, 2000, 0, NULL);
	expect_drop(r, &f, "drop:POLICY_DENIED", "retransmitted SYN");
}

static void case_tcp_remote_node(struct scenario *s)
{
	struct l2 out = from_pod(IP_CLIENT), in = to_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "tcp-remote-node";
	s->title = "TCP from client (node-1) to remote (node-2), native routing: client's egress "
		   "policy allows TCP 80 to app=remote, so the packets leave unchanged (ok) and "
		   "port 8080 is denied; the replies from remote pass client's to-container.";
	s->policies = "---\n"
		      "apiVersion: networking.k8s.io/v1\n"
		      "kind: NetworkPolicy\n"
		      "metadata: {name: client-egress-http-to-remote, namespace: replay}\n"
		      "spec:\n"
		      "  podSelector:\n"
		      "    matchLabels: {app: client}\n"
		      "  policyTypes: [Egress]\n"
		      "  egress:\n"
		      "  - to:\n"
		      "    - podSelector:\n"
		      "        matchLabels: {app: remote}\n"
		      "    ports:\n"
		      "    - {port: 80, protocol: TCP}\n";

	r = new_replay(s, "tcp-remote-node-egress", "node-1", "from-container", NS "/client",
		       "client -> remote:80 on node-2, allowed by client's egress policy");
	ip = ip4(IP_CLIENT, IP_REMOTE, 1);
	f = tcp_frame(&out, &ip, 42000, 80, PB_TCP_SYN, 3000, 0, NULL);
	expect_ok(r, &f, "SYN");
	ip.id = 2;
	f = tcp_frame(&out, &ip, 42000, 80, PB_TCP_ACK, 3001, 7001, NULL);
	expect_ok(r, &f, "ACK");
	ip.id = 3;
	f = tcp_frame(&out, &ip, 42000, 80, PB_TCP_PSH | PB_TCP_ACK, 3001, 7001,
		      "GET /remote HTTP/1.0\r\n\r\n");
	expect_ok(r, &f, "request data");
	ip.id = 4;
	f = tcp_frame(&out, &ip, 42001, 8080, PB_TCP_SYN, 3500, 0, NULL);
	expect_drop(r, &f, "drop:POLICY_DENIED", "SYN to remote:8080, not in the egress policy");

	r = new_replay(s, "tcp-remote-node-reply", "node-1", "to-container", NS "/client",
		       "remote:80 -> client, the reply path (client has no ingress policy)");
	ip = ip4(IP_REMOTE, IP_CLIENT, 101);
	f = tcp_frame(&in, &ip, 80, 42000, PB_TCP_SYN | PB_TCP_ACK, 7000, 3001, NULL);
	expect_ok(r, &f, "SYN-ACK");
	ip.id = 102;
	f = tcp_frame(&in, &ip, 80, 42000, PB_TCP_PSH | PB_TCP_ACK, 7001, 3025,
		      "HTTP/1.0 200 OK\r\n\r\n");
	expect_ok(r, &f, "response data");
	ip.id = 103;
	f = tcp_frame(&in, &ip, 80, 42000, PB_TCP_FIN | PB_TCP_ACK, 7020, 3025, NULL);
	expect_ok(r, &f, "FIN");
}

static void case_udp(struct scenario *s)
{
	static const uint8_t query[] = { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00,
					 0x00, 0x00, 0x00, 0x00, 0x03, 'w',  'e',  'b',
					 0x00, 0x00, 0x01, 0x00, 0x01 };
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "udp-allow-deny";
	s->title = "UDP from client to server (same node): server's ingress policy allows UDP 53 "
		   "from client (redirected), UDP 5353 is denied.";
	s->policies = "---\n"
		      "apiVersion: networking.k8s.io/v1\n"
		      "kind: NetworkPolicy\n"
		      "metadata: {name: server-dns-from-client, namespace: replay}\n"
		      "spec:\n"
		      "  podSelector:\n"
		      "    matchLabels: {app: server}\n"
		      "  policyTypes: [Ingress]\n"
		      "  ingress:\n"
		      "  - from:\n"
		      "    - podSelector:\n"
		      "        matchLabels: {app: client}\n"
		      "    ports:\n"
		      "    - {port: 53, protocol: UDP}\n";
	r = new_replay(s, "udp-allow-deny", "node-1", "from-container", NS "/client",
		       "client -> server UDP 53 allowed, UDP 5353 denied");
	ip = ip4(IP_CLIENT, IP_SERVER, 11);
	f = udp_frame(&l2, &ip, 40000, 53, query, sizeof(query));
	expect_redirect(r, &f, IP_SERVER, "query to port 53");
	ip.id = 12;
	f = udp_frame(&l2, &ip, 40001, 5353, query, sizeof(query));
	expect_drop(r, &f, "drop:POLICY_DENIED", "datagram to port 5353");
	ip.id = 13;
	f = udp_frame(&l2, &ip, 40000, 53, query, sizeof(query));
	expect_redirect(r, &f, IP_SERVER, "second query on the same flow");
}

static void case_icmp_echo(struct scenario *s)
{
	struct l2 out = from_pod(IP_CLIENT), in = to_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "icmp-echo";
	s->title = "ICMP echo: client pings server (same node; server admits everything from "
		   "client) and remote (node-2); remote's echo reply passes client's to-container.";
	s->policies = "---\n"
		      "apiVersion: networking.k8s.io/v1\n"
		      "kind: NetworkPolicy\n"
		      "metadata: {name: server-all-from-client, namespace: replay}\n"
		      "spec:\n"
		      "  podSelector:\n"
		      "    matchLabels: {app: server}\n"
		      "  policyTypes: [Ingress]\n"
		      "  ingress:\n"
		      "  - from:\n"
		      "    - podSelector:\n"
		      "        matchLabels: {app: client}\n";

	r = new_replay(s, "icmp-echo-request", "node-1", "from-container", NS "/client",
		       "echo requests from client to server (same node) and remote (node-2)");
	ip = ip4(IP_CLIENT, IP_SERVER, 21);
	f = echo_frame(&out, &ip, PB_ICMP_ECHO, 7, 1);
	expect_redirect(r, &f, IP_SERVER, "echo request to server");
	ip = ip4(IP_CLIENT, IP_REMOTE, 22);
	f = echo_frame(&out, &ip, PB_ICMP_ECHO, 8, 1);
	expect_ok(r, &f, "echo request to remote");

	r = new_replay(s, "icmp-echo-reply", "node-1", "to-container", NS "/client",
		       "echo reply from remote to client");
	ip = ip4(IP_REMOTE, IP_CLIENT, 201);
	f = echo_frame(&in, &ip, PB_ICMP_ECHOREPLY, 8, 1);
	expect_ok(r, &f, "echo reply from remote");
}

static void case_icmp_related(struct scenario *s)
{
	struct l2 in = to_pod(IP_CLIENT);
	struct pb_ipv4 ip, qip;
	struct frame f, q;
	struct replay *r;

	s->name = "icmp-error-related";
	s->title = "ICMP errors at client's to-container under an ingress policy that admits only "
		   "TCP 80 from app=remote (all other ingress, ICMP included, is denied): errors "
		   "quoting the tracked connection pass as related, an unrelated one is dropped.";
	s->policies = "---\n"
		      "apiVersion: networking.k8s.io/v1\n"
		      "kind: NetworkPolicy\n"
		      "metadata: {name: client-http-from-remote-only, namespace: replay}\n"
		      "spec:\n"
		      "  podSelector:\n"
		      "    matchLabels: {app: client}\n"
		      "  policyTypes: [Ingress]\n"
		      "  ingress:\n"
		      "  - from:\n"
		      "    - podSelector:\n"
		      "        matchLabels: {app: remote}\n"
		      "    ports:\n"
		      "    - {port: 80, protocol: TCP}\n";
	r = new_replay(s, "icmp-error-related", "node-1", "to-container", NS "/client",
		       "remote -> client:80 tracked, then ICMP errors related and unrelated");

	ip = ip4(IP_REMOTE, IP_CLIENT, 301);
	f = tcp_frame(&in, &ip, 43000, 80, PB_TCP_SYN, 9000, 0, NULL);
	expect_ok(r, &f, "SYN from remote to client:80 (allowed, now tracked)");

	/* client's SYN-ACK back to remote could not be delivered: node-2 says so */
	qip = ip4(IP_CLIENT, IP_REMOTE, 1);
	qip.ttl = 63;
	q = bare_tcp(&qip, 80, 43000, PB_TCP_SYN | PB_TCP_ACK, 12000, 9001);
	ip = ip4(IP_NODE2, IP_CLIENT, 302);
	ip.frag = 0;
	f = icmp_error_frame(&in, &ip, PB_ICMP_DEST_UNREACH, 1, &q);
	expect_ok(r, &f, "host unreachable quoting client:80 -> remote:43000 (related)");

	ip.id = 303;
	f = icmp_error_frame(&in, &ip, PB_ICMP_TIME_EXCEEDED, 0, &q);
	expect_ok(r, &f, "time exceeded quoting the same SYN-ACK (related)");

	qip = ip4(IP_CLIENT, IP_REMOTE, 2);
	qip.ttl = 63;
	q = bare_udp(&qip, 40500, 9999, "hello");
	ip = ip4(IP_REMOTE, IP_CLIENT, 304);
	ip.frag = 0;
	f = icmp_error_frame(&in, &ip, PB_ICMP_DEST_UNREACH, 3, &q);
	expect_drop(r, &f, "drop:POLICY_DENIED",
		    "port unreachable quoting an untracked UDP flow (unrelated)");
}

static void case_ipv4_options(struct scenario *s)
{
	static const uint8_t router_alert[] = { 0x94, 0x04, 0x00, 0x00 };
	static const uint8_t record_route[] = { 0x01, 0x07, 0x0b, 0x04, 0, 0, 0, 0, 0, 0, 0, 0 };
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "ipv4-options";
	s->title = "IPv4 packets with options (IHL 6 and 8) from client to server (same node, no "
		   "policy): redirected with the options intact.";
	s->policies = NULL;
	r = new_replay(s, "ipv4-options", "node-1", "from-container", NS "/client",
		       "client -> server:80 with IPv4 options");
	ip = ip4(IP_CLIENT, IP_SERVER, 31);
	ip.options = router_alert;
	ip.options_len = sizeof(router_alert);
	f = tcp_frame(&l2, &ip, 44000, 80, PB_TCP_SYN, 4000, 0, NULL);
	expect_redirect(r, &f, IP_SERVER, "SYN, router alert option (IHL 6)");
	ip.id = 32;
	ip.options = record_route;
	ip.options_len = sizeof(record_route);
	f = tcp_frame(&l2, &ip, 44000, 80, PB_TCP_ACK, 4001, 6001, NULL);
	expect_redirect(r, &f, IP_SERVER, "ACK, NOP + record route option (IHL 8)");
}

static void case_fragments(struct scenario *s)
{
	struct l2 l2 = from_pod(IP_CLIENT);
	uint8_t data[120];
	struct frame whole, f;
	struct pb_ipv4 ip;
	struct replay *r;
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)('a' + i % 26);
	s->name = "ipv4-fragments";
	s->title = "Fragmented UDP datagrams from client to server (same node); server admits UDP "
		   "53 from client. Later fragments follow the first one's verdict; a fragment "
		   "whose first fragment was never seen is dropped.";
	s->policies = "---\n"
		      "apiVersion: networking.k8s.io/v1\n"
		      "kind: NetworkPolicy\n"
		      "metadata: {name: server-dns-from-client, namespace: replay}\n"
		      "spec:\n"
		      "  podSelector:\n"
		      "    matchLabels: {app: server}\n"
		      "  policyTypes: [Ingress]\n"
		      "  ingress:\n"
		      "  - from:\n"
		      "    - podSelector:\n"
		      "        matchLabels: {app: client}\n"
		      "    ports:\n"
		      "    - {port: 53, protocol: UDP}\n";
	r = new_replay(s, "ipv4-fragments", "node-1", "from-container", NS "/client",
		       "UDP datagrams of 128 bytes in two fragments of 64");

	/* 8 bytes of UDP header + 120 of data = 128 bytes of IP payload: 64 + 64 */
	ip = ip4(IP_CLIENT, IP_SERVER, 100);
	ip.frag = 0;
	whole = udp_frame(&l2, &ip, 40100, 53, data, sizeof(data));
	f = fragment(&whole, 0, 64, true);
	expect_redirect(r, &f, IP_SERVER, "id 100 first fragment, to port 53");
	f = fragment(&whole, 64, 64, false);
	expect_redirect(r, &f, IP_SERVER, "id 100 second fragment");

	ip.id = 101;
	whole = udp_frame(&l2, &ip, 40101, 5353, data, sizeof(data));
	f = fragment(&whole, 0, 64, true);
	expect_drop(r, &f, "drop:POLICY_DENIED", "id 101 first fragment, to port 5353");
	f = fragment(&whole, 64, 64, false);
	expect_drop(r, &f, "drop:POLICY_DENIED", "id 101 second fragment");

	ip.id = 102;
	whole = udp_frame(&l2, &ip, 40102, 53, data, sizeof(data));
	f = fragment(&whole, 64, 64, false);
	expect_drop(r, &f, "drop:FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND",
		    "id 102 second fragment only (orphan)");
}

static void case_ipv4_malformed(struct scenario *s)
{
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "ipv4-malformed";
	s->title = "Malformed IPv4 from client: header cut short, IHL 4, version 5, total length "
		   "beyond the frame (all invalid packets), then a good SYN that is redirected.";
	s->policies = NULL;
	r = new_replay(s, "ipv4-malformed", "node-1", "from-container", NS "/client",
		       "malformed IPv4 headers, then a valid SYN");

	ip = ip4(IP_CLIENT, IP_SERVER, 41);
	f = tcp_frame(&l2, &ip, 45000, 80, PB_TCP_SYN, 5000, 0, NULL);
	f.len = 14 + 12; /* raw cut inside the IPv4 header */
	expect_drop(r, &f, "drop:INVALID_PACKET_DROPPED", "IPv4 header cut at 12 of 20 bytes");

	ip.id = 42;
	ip.ihl = 4;
	f = tcp_frame(&l2, &ip, 45000, 80, PB_TCP_SYN, 5000, 0, NULL);
	expect_drop(r, &f, "drop:INVALID_PACKET_DROPPED", "IHL 4");

	ip = ip4(IP_CLIENT, IP_SERVER, 43);
	ip.version = 5;
	f = tcp_frame(&l2, &ip, 45000, 80, PB_TCP_SYN, 5000, 0, NULL);
	expect_drop(r, &f, "drop:INVALID_PACKET_DROPPED", "version 5");

	ip = ip4(IP_CLIENT, IP_SERVER, 44);
	ip.tot_len = 1500;
	f = tcp_frame(&l2, &ip, 45000, 80, PB_TCP_SYN, 5000, 0, NULL);
	expect_drop(r, &f, "drop:INVALID_PACKET_DROPPED", "total length 1500 in a 54-byte frame");

	ip = ip4(IP_CLIENT, IP_SERVER, 45);
	f = tcp_frame(&l2, &ip, 45001, 80, PB_TCP_SYN, 5100, 0, NULL);
	expect_redirect(r, &f, IP_SERVER, "valid SYN");
}

static void case_l4_truncated(struct scenario *s)
{
	struct pb_udp u = { .sport = 40200, .dport = 53, .len = PB_AUTO };
	struct pb_tcp t = pb_tcp_hdr(46000, 80, PB_TCP_SYN);
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct pb_pkt p;
	struct frame f;

	s->name = "l4-truncated";
	s->title = "Truncated L4 headers from client to server (same node, no policy): IPv4 is "
		   "consistent but the TCP / UDP header is cut; then a good SYN is redirected.";
	s->policies = NULL;
	r = new_replay(s, "l4-truncated", "node-1", "from-container", NS "/client",
		       "TCP and UDP headers cut short, then a valid SYN");

	/* the IP total length matches the frame; only the TCP header is short */
	ip = ip4(IP_CLIENT, IP_SERVER, 51);
	t.seq = 6000;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2.dst, l2.src, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	pb_truncate(&p, 14 + 20 + 12);
	frame_finish(&f, &p);
	expect_drop(r, &f, "drop:CT_TRUNCATED_OR_INVALID_HEADER", "TCP header of 12 bytes");

	ip.id = 52;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2.dst, l2.src, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_truncate(&p, 14 + 20 + 4);
	frame_finish(&f, &p);
	expect_drop(r, &f, "drop:CT_TRUNCATED_OR_INVALID_HEADER", "UDP header of 4 bytes");

	ip.id = 53;
	f = tcp_frame(&l2, &ip, 46001, 80, PB_TCP_SYN, 6100, 0, NULL);
	expect_redirect(r, &f, IP_SERVER, "valid SYN");
}

static void case_vlan(struct scenario *s)
{
	struct pb_tcp t = pb_tcp_hdr(47000, 80, PB_TCP_SYN);
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct pb_pkt p;
	struct frame f;

	s->name = "vlan-from-pod";
	s->title = "802.1Q-tagged frames from client (one tag, then two tags) are filtered.";
	s->policies = NULL;
	r = new_replay(s, "vlan-from-pod", "node-1", "from-container", NS "/client",
		       "VLAN-tagged SYNs from client to server");

	ip = ip4(IP_CLIENT, IP_SERVER, 61);
	t.seq = 7000;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2.dst, l2.src, PB_AUTO);
	pb_vlan(&p, PB_ETH_P_8021Q, 100, 0, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	frame_finish(&f, &p);
	expect_drop(r, &f, "drop:VLAN_FILTERED", "SYN in VLAN 100");

	ip.id = 62;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2.dst, l2.src, PB_AUTO);
	pb_vlan(&p, PB_ETH_P_8021Q, 200, 0, PB_AUTO);
	pb_vlan(&p, PB_ETH_P_8021Q, 100, 0, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	frame_finish(&f, &p);
	expect_drop(r, &f, "drop:VLAN_FILTERED", "SYN in VLAN 200 / VLAN 100 (two 802.1Q tags)");
}

static void case_arp(struct scenario *s)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct pb_arp a = { .op = PB_ARP_REQUEST };
	struct replay *r;
	struct pb_pkt p;
	struct frame f;

	s->name = "arp";
	s->title = "ARP from client (a request for its gateway, a gratuitous reply) is passed "
		   "unchanged.";
	s->policies = NULL;
	r = new_replay(s, "arp", "node-1", "from-container", NS "/client", "ARP from client");

	pb_pod_mac(IP_CLIENT, a.sha);
	a.spa = IP_CLIENT;
	a.tpa = PB_IP4(10, 244, 0, 1);
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, bcast, a.sha, PB_AUTO);
	pb_arp(&p, &a);
	frame_finish(&f, &p);
	expect_ok(r, &f, "who-has 10.244.0.1");

	a.op = PB_ARP_REPLY;
	a.tpa = IP_CLIENT;
	memcpy(a.tha, bcast, 6);
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, bcast, a.sha, PB_AUTO);
	pb_arp(&p, &a);
	frame_finish(&f, &p);
	expect_ok(r, &f, "gratuitous reply");
}

static void case_ipv6(struct scenario *s)
{
	static const uint8_t src[16] = { 0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 0,
					 0,    0, 0, 0,    0,    0,    0, 0x10 };
	static const uint8_t dst[16] = { 0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 0,
					 0,    0, 0, 0,    0,    0,    0, 0x20 };
	static const uint8_t ll[16] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0,
					0x08, 0x58, 0x0a, 0xff, 0xfe, 0xf4, 0x00, 0x0a };
	static const uint8_t snm[16] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0,
					 0,    0,    0, 1, 0xff, 0, 0, 0x20 };
	static const uint8_t router_alert[] = { 0x05, 0x02, 0x00, 0x00 };
	struct pb_tcp t = pb_tcp_hdr(48000, 80, PB_TCP_SYN);
	struct pb_udp u = { .sport = 40300, .dport = 53, .len = PB_AUTO };
	struct pb_icmp ns = { .type = PB_ICMP6_NEIGH_SOLICIT };
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv6 ip;
	struct replay *r;
	struct pb_pkt p;
	struct frame f;

	s->name = "ipv6-from-pod";
	s->title = "IPv6 from client (IPv6 is disabled): TCP with a hop-by-hop header, a neighbor "
		   "solicitation and a fragmented UDP datagram are all dropped.";
	s->policies = NULL;
	r = new_replay(s, "ipv6-from-pod", "node-1", "from-container", NS "/client",
		       "IPv6 packets from client");

	ip = pb_ipv6_hdr(src, dst);
	t.seq = 8000;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2.dst, l2.src, PB_AUTO);
	pb_ipv6(&p, &ip);
	pb_ipv6_ext(&p, 0, router_alert, sizeof(router_alert));
	pb_tcp(&p, &t);
	frame_finish(&f, &p);
	expect_drop(r, &f, "drop:UNSUPPORTED_L3_PROTOCOL", "TCP SYN with a hop-by-hop header");

	ip = pb_ipv6_hdr(ll, snm);
	ip.hop_limit = 255;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, (const uint8_t[]){ 0x33, 0x33, 0xff, 0x00, 0x00, 0x20 }, l2.src, PB_AUTO);
	pb_ipv6(&p, &ip);
	pb_icmp6(&p, &ns);
	pb_bytes(&p, dst, 16);
	frame_finish(&f, &p);
	expect_drop(r, &f, "drop:UNSUPPORTED_L3_PROTOCOL", "neighbor solicitation");

	ip = pb_ipv6_hdr(src, dst);
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, l2.dst, l2.src, PB_AUTO);
	pb_ipv6(&p, &ip);
	pb_ipv6_frag(&p, 0, true, 0x1234);
	pb_udp(&p, &u);
	pb_fill(&p, 'x', 24);
	frame_finish(&f, &p);
	expect_drop(r, &f, "drop:UNSUPPORTED_L3_PROTOCOL", "first fragment of a UDP datagram");
}

static void case_spoofed(struct scenario *s)
{
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "spoofed-source";
	s->title = "Packets from client's veth with a source IP that is not client's are dropped; "
		   "a genuine SYN afterwards is redirected.";
	s->policies = NULL;
	r = new_replay(s, "spoofed-source", "node-1", "from-container", NS "/client",
		       "spoofed sources from client");

	ip = ip4(PB_IP4(10, 244, 0, 99), IP_SERVER, 71);
	f = tcp_frame(&l2, &ip, 49000, 80, PB_TCP_SYN, 9100, 0, NULL);
	expect_drop(r, &f, "drop:INVALID_SOURCE_IP", "SYN from unassigned 10.244.0.99");
	ip = ip4(IP_SERVER, IP_REMOTE, 72);
	f = tcp_frame(&l2, &ip, 49001, 80, PB_TCP_SYN, 9200, 0, NULL);
	expect_drop(r, &f, "drop:INVALID_SOURCE_IP", "SYN claiming server's address");
	ip = ip4(PB_IP4(203, 0, 113, 5), IP_SERVER, 73);
	f = echo_frame(&l2, &ip, PB_ICMP_ECHO, 9, 1);
	expect_drop(r, &f, "drop:INVALID_SOURCE_IP", "echo request from an outside address");
	ip = ip4(IP_CLIENT, IP_SERVER, 74);
	f = tcp_frame(&l2, &ip, 49002, 80, PB_TCP_SYN, 9300, 0, NULL);
	expect_redirect(r, &f, IP_SERVER, "genuine SYN");
}

static void case_ttl(struct scenario *s)
{
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "ttl-exceeded";
	s->title = "TTL on same-node delivery: TTL 1 and 0 are dropped, TTL 2 is redirected with "
		   "TTL 1; TTL 1 to a pod on another node leaves unchanged (the stack routes it).";
	s->policies = NULL;
	r = new_replay(s, "ttl-exceeded", "node-1", "from-container", NS "/client",
		       "low TTLs from client");

	ip = ip4(IP_CLIENT, IP_SERVER, 81);
	ip.ttl = 1;
	f = tcp_frame(&l2, &ip, 50000, 80, PB_TCP_SYN, 9400, 0, NULL);
	expect_drop(r, &f, "drop:TTL_EXCEEDED", "SYN to server, TTL 1");
	ip.id = 82;
	ip.ttl = 0;
	f = tcp_frame(&l2, &ip, 50001, 80, PB_TCP_SYN, 9500, 0, NULL);
	expect_drop(r, &f, "drop:TTL_EXCEEDED", "SYN to server, TTL 0");
	ip.id = 83;
	ip.ttl = 2;
	f = tcp_frame(&l2, &ip, 50002, 80, PB_TCP_SYN, 9600, 0, NULL);
	expect_redirect(r, &f, IP_SERVER, "SYN to server, TTL 2");
	ip = ip4(IP_CLIENT, IP_REMOTE, 84);
	ip.ttl = 1;
	f = tcp_frame(&l2, &ip, 50003, 80, PB_TCP_SYN, 9700, 0, NULL);
	expect_ok(r, &f, "SYN to remote (node-2), TTL 1");
}

/* The overlay device's MAC on the node with underlay address ip (the simulator's scheme). */
static void vxlan_mac(uint32_t ip, uint8_t mac[6])
{
	mac[0] = 0x0e;
	mac[1] = 0x5a;
	memcpy(mac + 2, &ip, 4);
}

static void case_overlay(struct scenario *s)
{
	struct l2 tun, out = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	vxlan_mac(IP_NODE1, tun.dst); /* node-2's vxlan0 -> node-1's vxlan0, as decapsulated */
	vxlan_mac(IP_NODE2, tun.src);
	s->name = "overlay";
	s->title = "Tunnel routing, node-1's overlay device: from-overlay applies server's "
		   "ingress policy (TCP 80 from app=remote) and redirects to server; traffic for "
		   "the node passes to the stack. Replay carries no tunnel key, so the source "
		   "identity comes from the ipcache (flagged in the output). to-overlay passes "
		   "what has a tunnel endpoint and drops what has none.";
	s->routing = "tunnel";
	s->policies = "---\n"
		      "apiVersion: networking.k8s.io/v1\n"
		      "kind: NetworkPolicy\n"
		      "metadata: {name: server-http-from-remote, namespace: replay}\n"
		      "spec:\n"
		      "  podSelector:\n"
		      "    matchLabels: {app: server}\n"
		      "  policyTypes: [Ingress]\n"
		      "  ingress:\n"
		      "  - from:\n"
		      "    - podSelector:\n"
		      "        matchLabels: {app: remote}\n"
		      "    ports:\n"
		      "    - {port: 80, protocol: TCP}\n";

	r = new_replay(s, "overlay-from-remote", "node-1", "from-overlay", NULL,
		       "decapsulated packets from node-2 arriving on node-1's vxlan0");
	ip = ip4(IP_REMOTE, IP_SERVER, 401);
	ip.ttl = 63; /* routed once on node-2 */
	f = tcp_frame(&tun, &ip, 46000, 80, PB_TCP_SYN, 8000, 0, NULL);
	expect_redirect(r, &f, IP_SERVER, "SYN remote -> server:80, admitted");
	ip.id = 402;
	f = tcp_frame(&tun, &ip, 46000, 80, PB_TCP_ACK, 8001, 9001, NULL);
	expect_redirect(r, &f, IP_SERVER, "ACK on the tracked connection");
	ip.id = 403;
	f = tcp_frame(&tun, &ip, 46001, 8080, PB_TCP_SYN, 8100, 0, NULL);
	expect_drop(r, &f, "drop:POLICY_DENIED", "SYN remote -> server:8080, not admitted");
	ip = ip4(IP_NODE2, IP_SERVER, 404);
	ip.ttl = 64;
	f = tcp_frame(&tun, &ip, 46002, 80, PB_TCP_SYN, 8200, 0, NULL);
	expect_drop(r, &f, "drop:POLICY_DENIED", "SYN node-2 (remote-node) -> server:80");
	ip = ip4(IP_REMOTE, IP_NODE1, 405);
	ip.ttl = 63;
	f = tcp_frame(&tun, &ip, 46003, 10250, PB_TCP_SYN, 8300, 0, NULL);
	expect_ok(r, &f, "SYN remote -> node-1 itself: to the stack");

	r = new_replay(s, "overlay-to-remote", "node-1", "to-overlay", NULL,
		       "packets node-1 routes into vxlan0");
	vxlan_mac(IP_NODE1, out.src);
	vxlan_mac(IP_NODE2, out.dst);
	ip = ip4(IP_CLIENT, IP_REMOTE, 501);
	ip.ttl = 63;
	f = tcp_frame(&out, &ip, 47000, 80, PB_TCP_SYN, 9000, 0, NULL);
	expect_ok(r, &f, "SYN client -> remote: tunnel to node-2, VNI = client's identity");
	ip = ip4(IP_CLIENT, IP_GONE, 502);
	ip.ttl = 63;
	f = tcp_frame(&out, &ip, 47001, 80, PB_TCP_SYN, 9100, 0, NULL);
	expect_ok(r, &f, "SYN to node-2's range, a pod not known here (yet): tunnel to node-2 "
		  "by the pod CIDR");
	ip = ip4(IP_CLIENT, IP_NO_NODE, 504);
	ip.ttl = 63;
	f = tcp_frame(&out, &ip, 47003, 80, PB_TCP_SYN, 9300, 0, NULL);
	expect_drop(r, &f, "drop:NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
		    "SYN to the cluster range outside every node's pod CIDR");
	ip = ip4(IP_CLIENT, IP_WORLD, 503);
	ip.ttl = 63;
	f = tcp_frame(&out, &ip, 47002, 80, PB_TCP_SYN, 9200, 0, NULL);
	expect_drop(r, &f, "drop:NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
		    "SYN to the world: never tunnelled");
}

/* NetworkPolicy SCTP semantics, checked by replay because the simulator has no SCTP
 * sockets (SPEC section 5): an SCTP-only rule opens SCTP on its port and nothing else. */
static void case_sctp_policy(struct scenario *s)
{
	static const char dns[] = "sctp-is-not-udp";
	struct l2 l2 = from_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f;

	s->name = "sctp-policy";
	s->title = "server admits SCTP on port 80 from client, nothing else: an SCTP INIT to 80 "
		   "is delivered, SCTP to 81 and TCP or UDP to 80 are denied.";
	s->policies = "---\n"
		      "apiVersion: networking.k8s.io/v1\n"
		      "kind: NetworkPolicy\n"
		      "metadata: {name: server-sctp-from-client, namespace: replay}\n"
		      "spec:\n"
		      "  podSelector:\n"
		      "    matchLabels: {app: server}\n"
		      "  policyTypes: [Ingress]\n"
		      "  ingress:\n"
		      "  - from:\n"
		      "    - podSelector:\n"
		      "        matchLabels: {app: client}\n"
		      "    ports:\n"
		      "    - {port: 80, protocol: SCTP}\n";
	r = new_replay(s, "sctp-policy", "node-1", "from-container", NS "/client",
		       "client -> server (same node) under an SCTP-only ingress rule");

	ip = ip4(IP_CLIENT, IP_SERVER, 301);
	f = sctp_init_frame(&l2, &ip, 40000, 80, 0x5c7a0001);
	expect_redirect(r, &f, IP_SERVER, "SCTP INIT to 80: the rule's port and protocol");
	ip.id = 302;
	f = sctp_init_frame(&l2, &ip, 40001, 81, 0x5c7a0002);
	expect_drop(r, &f, "drop:POLICY_DENIED", "SCTP INIT to 81: not in the rule");
	ip = ip4(IP_CLIENT, IP_SERVER, 303);
	f = tcp_frame(&l2, &ip, 40002, 80, PB_TCP_SYN, 3000, 0, NULL);
	expect_drop(r, &f, "drop:POLICY_DENIED", "TCP SYN to 80: an SCTP rule never opens TCP");
	ip.id = 304;
	f = udp_frame(&l2, &ip, 40003, 80, dns, sizeof(dns) - 1);
	expect_drop(r, &f, "drop:POLICY_DENIED", "UDP to 80: nor UDP");
}

/* ---- services and NAT ---- */

/* The fabric MAC of the node or external host with underlay address ip: 0e:5b:IP. */
static void fabric_mac(uint32_t ip, uint8_t mac[6])
{
	mac[0] = 0x0e;
	mac[1] = 0x5b;
	memcpy(mac + 2, &ip, 4);
}

/* A frame on node-1's fabric device, from the host (or next hop) `from` to `to`. */
static struct l2 on_fabric(uint32_t to, uint32_t from)
{
	struct l2 l;

	fabric_mac(to, l.dst);
	fabric_mac(from, l.src);
	return l;
}

/* Verdict ok with a translated output (addresses, ports, checksums rewritten). */
static void expect_translated(struct replay *r, const struct frame *in, const struct frame *out,
			      const char *note)
{
	add(r, in, "ok", out, note);
}

static const char svc_web[] =
	"---\n"
	"# ClusterIP service: its only backend is remote (node-2), port 8080\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: web, namespace: replay}\n"
	"spec:\n"
	"  clusterIP: 10.96.0.80\n"
	"  selector: {app: remote}\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080, protocol: TCP}\n";

static void case_svc_clusterip(struct scenario *s)
{
	struct l2 out = from_pod(IP_CLIENT), in = to_pod(IP_CLIENT);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f, o;

	s->name = "svc-clusterip";
	s->title = "ClusterIP: client's SYN to the service replay/web (10.96.0.80:80) is translated "
		   "in client's from-container to the only backend, remote:8080 on node-2 (it "
		   "leaves unchanged otherwise: ok); remote's SYN-ACK gets the ClusterIP back as "
		   "its source in client's to-container. One hook per packet on the same maps: the "
		   "SYN's conntrack entry carries the frontend its reply is translated to.";
	s->policies = svc_web;
	r = new_replay(s, "svc-clusterip", "node-1", "from-container,to-container", NS "/client",
		       "client -> ClusterIP 10.96.0.80:80 and the backend's reply");

	ip = ip4(IP_CLIENT, IP_CLUSTERIP, 601);
	f = tcp_frame(&out, &ip, 41500, 80, PB_TCP_SYN, 11000, 0, NULL);
	ip = ip4(IP_CLIENT, IP_REMOTE, 601);
	o = tcp_frame(&out, &ip, 41500, 8080, PB_TCP_SYN, 11000, 0, NULL);
	expect_translated(r, &f, &o,
			  "from-container: SYN to the ClusterIP, DNAT to remote:8080");
	ip = ip4(IP_REMOTE, IP_CLIENT, 602);
	ip.ttl = 63;
	f = tcp_frame(&in, &ip, 8080, 41500, PB_TCP_SYN | PB_TCP_ACK, 21000, 11001, NULL);
	ip = ip4(IP_CLUSTERIP, IP_CLIENT, 602);
	ip.ttl = 63;
	o = tcp_frame(&in, &ip, 80, 41500, PB_TCP_SYN | PB_TCP_ACK, 21000, 11001, NULL);
	expect_translated(r, &f, &o,
			  "to-container: remote's SYN-ACK, source back to 10.96.0.80:80");
}

/* The NodePort services of svc-nodeport and svc-xdp-nodeport: 30080 -> remote (node-2),
 * 30081 -> server (node-1 itself), both port 8080. */
static const char svc_nodeports[] =
	"---\n"
	"# NodePort service: its only backend is remote (node-2), port 8080\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: web-nodeport, namespace: replay}\n"
	"spec:\n"
	"  type: NodePort\n"
	"  clusterIP: 10.96.0.81\n"
	"  selector: {app: remote}\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}\n"
	"---\n"
	"# NodePort service: its only backend is server (node-1 itself), port 8080\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: web-local, namespace: replay}\n"
	"spec:\n"
	"  type: NodePort\n"
	"  clusterIP: 10.96.0.82\n"
	"  selector: {app: server}\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080, nodePort: 30081, protocol: TCP}\n";

static void case_svc_nodeport(struct scenario *s)
{
	struct l2 l2 = on_fabric(IP_NODE1, IP_WORLD), back = on_fabric(IP_NODE1, IP_NODE2);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f, o;

	s->name = "svc-nodeport";
	s->title = "NodePort with SNAT (bpf-lb-mode snat): an external client's SYN to node-1's "
		   "NodePort 30080, whose only backend is remote on node-2, leaves node-1's "
		   "from-netdev translated to remote:8080 and from node-1's address (the client's "
		   "port 40000 is kept: it is in 32768-65535); the backend's SYN-ACK to node-1 gets "
		   "the client back as destination and the NodePort as source; the client's ACK "
		   "follows its connection's mapping. A NodePort whose backend (server) is on "
		   "node-1 itself: DNAT only and a redirect to server's veth, and server's reply "
		   "leaves from-container with the NodePort as source.";
	s->config = "{bpf-lb-mode: snat}";
	s->policies = svc_nodeports;
	r = new_replay(s, "svc-nodeport-snat", "node-1", "from-netdev", NULL,
		       "an external client's connection to node-1:30080 and the backend's reply");

	ip = ip4(IP_WORLD, IP_NODE1, 701);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40000, NODEPORT, PB_TCP_SYN, 12000, 0, NULL);
	ip = ip4(IP_NODE1, IP_REMOTE, 701);
	ip.ttl = 62;
	o = tcp_frame(&l2, &ip, 40000, 8080, PB_TCP_SYN, 12000, 0, NULL);
	expect_translated(r, &f, &o,
			  "SYN from 203.0.113.10 to node-1:30080: DNAT to remote:8080, SNAT to "
			  "192.0.2.1:40000");
	ip = ip4(IP_REMOTE, IP_NODE1, 702);
	ip.ttl = 63;
	f = tcp_frame(&back, &ip, 8080, 40000, PB_TCP_SYN | PB_TCP_ACK, 22000, 12001, NULL);
	ip = ip4(IP_NODE1, IP_WORLD, 702);
	ip.ttl = 63;
	o = tcp_frame(&back, &ip, NODEPORT, 40000, PB_TCP_SYN | PB_TCP_ACK, 22000, 12001, NULL);
	expect_translated(r, &f, &o,
			  "remote's SYN-ACK to 192.0.2.1:40000: to the client, from node-1:30080");
	ip = ip4(IP_WORLD, IP_NODE1, 703);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40000, NODEPORT, PB_TCP_ACK, 12001, 22001, NULL);
	ip = ip4(IP_NODE1, IP_REMOTE, 703);
	ip.ttl = 62;
	o = tcp_frame(&l2, &ip, 40000, 8080, PB_TCP_ACK, 12001, 22001, NULL);
	expect_translated(r, &f, &o, "the client's ACK: the same backend and mapping");

	/* a local backend: DNAT only, delivered to its veth; its reply leaves the pod from the
	 * NodePort again (from-container, the conntrack entry's CT_F_NODEPORT) */
	r = new_replay(s, "svc-nodeport-local", "node-1", "from-netdev,from-container",
		       NS "/server",
		       "an external client's SYN to node-1:30081 (backend server on node-1) and "
		       "server's SYN-ACK");
	l2 = on_fabric(IP_NODE1, IP_WORLD);
	ip = ip4(IP_WORLD, IP_NODE1, 711);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40001, NODEPORT + 1, PB_TCP_SYN, 15000, 0, NULL);
	back = to_pod(IP_SERVER);
	ip = ip4(IP_WORLD, IP_SERVER, 711);
	ip.ttl = 61;
	o = tcp_frame(&back, &ip, 40001, 8080, PB_TCP_SYN, 15000, 0, NULL);
	add(r, &f, "redirect", &o,
	    "from-netdev: SYN to node-1:30081, DNAT to server:8080 (client kept), to server's "
	    "veth");
	back = from_pod(IP_SERVER);
	ip = ip4(IP_SERVER, IP_WORLD, 712);
	f = tcp_frame(&back, &ip, 8080, 40001, PB_TCP_SYN | PB_TCP_ACK, 25000, 15001, NULL);
	ip = ip4(IP_NODE1, IP_WORLD, 712);
	o = tcp_frame(&back, &ip, NODEPORT + 1, 40001, PB_TCP_SYN | PB_TCP_ACK, 25000, 15001,
		      NULL);
	expect_translated(r, &f, &o,
			  "from-container: server's SYN-ACK leaves from node-1:30081");
}

static void case_svc_masquerade(struct scenario *s)
{
	/* leaving node-1 for the world (routed by the node: TTL 63) and coming back */
	struct l2 out = on_fabric(IP_WORLD, IP_NODE1), in = on_fabric(IP_NODE1, IP_WORLD);
	struct l2 peer = on_fabric(IP_NODE2, IP_NODE1);
	struct pb_ipv4 ip, qip;
	struct replay *r;
	struct frame f, o, q;

	s->name = "svc-masquerade";
	s->title = "BPF masquerade (enable-bpf-masquerade: \"true\"): client's connection to an "
		   "external host leaves node-1's to-netdev from node-1's address (port kept: "
		   "41600 is in 32768-65535) and the reply gets client back as destination in "
		   "from-netdev; a port unreachable from the external host about a masqueraded UDP "
		   "flow is translated back in from-netdev (outer destination and quoted source "
		   "become client's); traffic to other pods and nodes is never masqueraded. One "
		   "hook per packet where a reply crosses another hook than its request.";
	s->config = "{enable-bpf-masquerade: \"true\"}";
	s->policies = NULL;

	r = new_replay(s, "svc-masquerade-tcp", "node-1", "to-netdev,from-netdev", NULL,
		       "client -> 203.0.113.10:80 masqueraded, and the SYN-ACK back");
	ip = ip4(IP_CLIENT, IP_WORLD, 801);
	ip.ttl = 63;
	f = tcp_frame(&out, &ip, 41600, 80, PB_TCP_SYN, 13000, 0, NULL);
	ip = ip4(IP_NODE1, IP_WORLD, 801);
	ip.ttl = 63;
	o = tcp_frame(&out, &ip, 41600, 80, PB_TCP_SYN, 13000, 0, NULL);
	expect_translated(r, &f, &o, "to-netdev: client's SYN to the world, source 192.0.2.1:41600");
	ip = ip4(IP_WORLD, IP_NODE1, 802);
	ip.ttl = 60;
	f = tcp_frame(&in, &ip, 80, 41600, PB_TCP_SYN | PB_TCP_ACK, 23000, 13001, NULL);
	ip = ip4(IP_WORLD, IP_CLIENT, 802);
	ip.ttl = 60;
	o = tcp_frame(&in, &ip, 80, 41600, PB_TCP_SYN | PB_TCP_ACK, 23000, 13001, NULL);
	expect_translated(r, &f, &o, "from-netdev: the SYN-ACK to 192.0.2.1:41600, to client again");

	r = new_replay(s, "svc-masquerade-icmp-error", "node-1", "to-netdev,from-netdev", NULL,
		       "client's UDP to 203.0.113.10:9999 masqueraded, the port unreachable back");
	ip = ip4(IP_CLIENT, IP_WORLD, 811);
	ip.ttl = 63;
	f = udp_frame(&out, &ip, 40600, 9999, "query", 5);
	ip = ip4(IP_NODE1, IP_WORLD, 811);
	ip.ttl = 63;
	o = udp_frame(&out, &ip, 40600, 9999, "query", 5);
	expect_translated(r, &f, &o, "to-netdev: client's datagram, source 192.0.2.1:40600");
	/* the external host quotes what it received: the masqueraded datagram */
	qip = ip4(IP_NODE1, IP_WORLD, 811);
	qip.ttl = 60;
	q = bare_udp(&qip, 40600, 9999, "query");
	ip = ip4(IP_WORLD, IP_NODE1, 812);
	ip.ttl = 60;
	ip.frag = 0;
	f = icmp_error_frame(&in, &ip, PB_ICMP_DEST_UNREACH, 3, &q);
	/* translated back: the quoted source and its header checksum (the quoted UDP checksum
	 * is left as it is: nobody verifies it), the outer destination, both checksums */
	if (!q.err) {
		memcpy(q.b + 12, &(uint32_t){ IP_CLIENT }, 4);
		pb_ipv4_fix_csum(q.b, q.len);
	}
	ip.daddr = IP_CLIENT;
	o = icmp_error_frame(&in, &ip, PB_ICMP_DEST_UNREACH, 3, &q);
	expect_translated(r, &f, &o,
			  "from-netdev: port unreachable about it, to client, quoting client's "
			  "address");

	r = new_replay(s, "svc-masquerade-exempt", "node-1", "to-netdev", NULL,
		       "what node-1's to-netdev never masquerades");
	ip = ip4(IP_CLIENT, IP_REMOTE, 821);
	ip.ttl = 63;
	f = tcp_frame(&peer, &ip, 41700, 80, PB_TCP_SYN, 14000, 0, NULL);
	expect_ok(r, &f, "client -> remote (a pod, native routing): unchanged");
	ip = ip4(IP_CLIENT, IP_NODE2, 822);
	ip.ttl = 63;
	f = tcp_frame(&peer, &ip, 41701, 10250, PB_TCP_SYN, 14100, 0, NULL);
	expect_ok(r, &f, "client -> node-2's address (another node): unchanged");
	ip = ip4(IP_NODE1, IP_WORLD, 823);
	f = tcp_frame(&out, &ip, 41702, 80, PB_TCP_SYN, 14200, 0, NULL);
	expect_ok(r, &f, "node-1's own connection to the world: unchanged");
}

/* Cilium's DSR option (dsr.h, REFERENCE.md 1.3) naming the frontend 192.0.2.1:30090: type
 * 0x9A, length 8, then the port and the address byte-swapped as Cilium stores them
 * (bpf_htons/bpf_htonl of network-order values on a little-endian host). */
#define DSR_NODEPORT 30090 /* service replay/web-dsr, TCP; UDP on DSR_NODEPORT + 1 */
static const uint8_t dsr_opt_tcp[] = { 0x9a, 0x08, DSR_NODEPORT & 0xff, DSR_NODEPORT >> 8,
				       1, 2, 0, 192 };
static const uint8_t dsr_opt_udp[] = { 0x9a, 0x08, (DSR_NODEPORT + 1) & 0xff,
				       (DSR_NODEPORT + 1) >> 8, 1, 2, 0, 192 };

static void case_svc_dsr_opt(struct scenario *s)
{
	struct l2 l2 = on_fabric(IP_NODE1, IP_WORLD), fwd = on_fabric(IP_NODE2, IP_NODE1);
	struct l2 reply = on_fabric(IP_WORLD, IP_NODE2);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f, o;

	s->name = "svc-dsr-opt";
	s->title = "DSR with the IPv4 option dispatch (bpf-lb-mode dsr, native routing): an "
		   "external client's SYN to node-1's NodePort 30090, whose only backend is remote "
		   "on node-2, leaves node-1's from-netdev DNATed to remote:8080 with the client "
		   "kept as source and Cilium's option 0x9A/8 (the frontend's port and address, "
		   "byte-swapped as Cilium stores them) right after the base header (IHL 7); the "
		   "client's ACK is DNATed without the option; a UDP datagram to the UDP NodePort "
		   "30091 carries the option too. On node-2 the option-carrying SYN for remote "
		   "passes from-netdev unchanged (the frontend is recorded), and remote's SYN-ACK "
		   "leaves to-netdev from the frontend 192.0.2.1:30090 straight to the client.";
	s->config = "{bpf-lb-mode: dsr}";
	s->policies = "---\n"
		      "# NodePort service (DSR): its only backend is remote (node-2), TCP 8080 and "
		      "UDP 9999\n"
		      "apiVersion: v1\n"
		      "kind: Service\n"
		      "metadata: {name: web-dsr, namespace: replay}\n"
		      "spec:\n"
		      "  type: NodePort\n"
		      "  clusterIP: 10.96.0.83\n"
		      "  selector: {app: remote}\n"
		      "  ports:\n"
		      "  - {name: http, port: 80, targetPort: 8080, nodePort: 30090, protocol: TCP}\n"
		      "  - {name: udp, port: 9999, targetPort: 9999, nodePort: 30091, protocol: UDP}\n";

	r = new_replay(s, "svc-dsr-entry", "node-1", "from-netdev", NULL,
		       "the entry node: an external client's requests to node-1's DSR NodePorts");
	ip = ip4(IP_WORLD, IP_NODE1, 901);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40010, DSR_NODEPORT, PB_TCP_SYN, 16000, 0, NULL);
	ip = ip4(IP_WORLD, IP_REMOTE, 901);
	ip.ttl = 62;
	ip.options = dsr_opt_tcp;
	ip.options_len = sizeof(dsr_opt_tcp);
	o = tcp_frame(&l2, &ip, 40010, 8080, PB_TCP_SYN, 16000, 0, NULL);
	expect_translated(r, &f, &o,
			  "SYN from 203.0.113.10 to node-1:30090: DNAT to remote:8080, client "
			  "kept, option 9a 08 8a 75 01 02 00 c0 (IHL 7)");
	ip = ip4(IP_WORLD, IP_NODE1, 902);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40010, DSR_NODEPORT, PB_TCP_ACK, 16001, 26001, NULL);
	ip = ip4(IP_WORLD, IP_REMOTE, 902);
	ip.ttl = 62;
	o = tcp_frame(&l2, &ip, 40010, 8080, PB_TCP_ACK, 16001, 26001, NULL);
	expect_translated(r, &f, &o, "the client's ACK: DNAT to remote:8080, no option");
	ip = ip4(IP_WORLD, IP_NODE1, 903);
	ip.ttl = 62;
	f = udp_frame(&l2, &ip, 40011, DSR_NODEPORT + 1, "query", 5);
	ip = ip4(IP_WORLD, IP_REMOTE, 903);
	ip.ttl = 62;
	ip.options = dsr_opt_udp;
	ip.options_len = sizeof(dsr_opt_udp);
	o = udp_frame(&l2, &ip, 40011, 9999, "query", 5);
	expect_translated(r, &f, &o,
			  "UDP to node-1:30091: DNAT to remote:9999, client kept, option 9a 08 8b 75 "
			  "01 02 00 c0");

	/* the backend's node: what node-1 sent (routed: TTL 61), and remote's reply */
	r = new_replay(s, "svc-dsr-backend", "node-2", "from-netdev,to-netdev", NULL,
		       "the backend's node: the option-carrying SYN for remote and remote's "
		       "SYN-ACK");
	ip = ip4(IP_WORLD, IP_REMOTE, 901);
	ip.ttl = 61;
	ip.options = dsr_opt_tcp;
	ip.options_len = sizeof(dsr_opt_tcp);
	f = tcp_frame(&fwd, &ip, 40010, 8080, PB_TCP_SYN, 16000, 0, NULL);
	expect_ok(r, &f,
		  "from-netdev: SYN for remote:8080 with the option: passes, its frontend "
		  "recorded");
	ip = ip4(IP_REMOTE, IP_WORLD, 911);
	ip.ttl = 63;
	f = tcp_frame(&reply, &ip, 8080, 40010, PB_TCP_SYN | PB_TCP_ACK, 26000, 16001, NULL);
	ip = ip4(IP_NODE1, IP_WORLD, 911);
	ip.ttl = 63;
	o = tcp_frame(&reply, &ip, DSR_NODEPORT, 40010, PB_TCP_SYN | PB_TCP_ACK, 26000, 16001,
		      NULL);
	expect_translated(r, &f, &o,
			  "to-netdev: remote's SYN-ACK leaves from the frontend 192.0.2.1:30090 "
			  "to the client");
}

/* ---- DSR: the ipip and geneve dispatches (dsr_ipip.h, dsr_geneve.h, REFERENCE.md 1.5-1.7) */

static const char svc_web_dsr[] =
	"---\n"
	"# NodePort service (DSR): its only backend is remote (node-2), TCP 8080 and UDP 9999\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: web-dsr, namespace: replay}\n"
	"spec:\n"
	"  type: NodePort\n"
	"  clusterIP: 10.96.0.83\n"
	"  selector: {app: remote}\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: 8080, nodePort: 30090, protocol: TCP}\n"
	"  - {name: udp, port: 9999, targetPort: 9999, nodePort: 30091, protocol: UDP}\n";

/* An IPv4 packet (the frame's Ethernet header and all after it) put inside an outer IPv4
 * header: node-1 -> node-2, protocol 4, id 0, TTL 64, DF as the inner packet's. */
static struct frame ipip_encap(const struct frame *in, uint32_t from, uint32_t to)
{
	struct pb_ipv4 o = ip4(from, to, 0);
	struct frame f;
	struct pb_pkt p;

	o.proto = IPPROTO_IPIP;
	o.frag = (uint16_t)((in->b[14 + 6] & 0x40) ? PB_IP_DF : 0);
	o.tos = in->b[14 + 1];
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, in->b, in->b + 6, PB_AUTO);
	pb_ipv4(&p, &o);
	pb_bytes(&p, in->b + 14, in->len - 14);
	frame_finish(&f, &p);
	f.err = f.err ? f.err : in->err;
	return f;
}

/* The UDP source port of dsr_geneve_sport(): a hash of the inner flow as the datapath holds
 * it (network-order fields read as host words), in 49152..65535. */
static uint16_t geneve_sport(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport,
			     uint8_t proto)
{
	uint32_t h = saddr ^ daddr ^ ((uint32_t)htons(sport) << 16 | htons(dport)) ^ proto;

	h ^= h >> 16;
	h *= 0x7feb352d;
	h ^= h >> 15;
	return (uint16_t)(0xc000 | (h & 0x3fff));
}

/*
 * The Geneve encapsulation of a DNATed frame (node-1 -> node-2: outer IPv4 id 0, DF, TTL 64;
 * UDP to 6081, checksum 0; Geneve VNI 2 carrying Ethernet; the inner frame keeps its
 * Ethernet header), with Cilium's DSR option naming frontend:port when `opt`.
 */
static struct frame geneve_encap_vni(const struct frame *in, uint32_t from, uint32_t to,
				     uint32_t frontend, uint16_t port, bool opt, uint16_t sport,
				     uint8_t proto, uint16_t dport, uint32_t vni)
{
	struct pb_ipv4 o = ip4(from, to, 0);
	struct pb_udp u = { .dport = 6081, .len = PB_AUTO, .no_csum = true };
	uint8_t g[20] = { 0x00, 0x00, 0x65, 0x58, 0, 0, 0, 0, 0x01, 0x4b, 0x81, 0x02 };
	uint32_t inner_src, inner_dst;
	uint16_t port_be = htons(port);
	struct frame f;
	struct pb_pkt p;

	memcpy(&inner_src, in->b + 14 + 12, 4);
	memcpy(&inner_dst, in->b + 14 + 16, 4);
	u.sport = geneve_sport(inner_src, inner_dst, sport, dport, proto);
	g[4] = (uint8_t)(vni >> 16);
	g[5] = (uint8_t)(vni >> 8);
	g[6] = (uint8_t)vni;
	if (opt) {
		g[0] = 3;    /* 12 bytes of options */
		g[1] = 0x40; /* C: a critical option is present */
		memcpy(g + 12, &frontend, 4);
		memcpy(g + 16, &port_be, 2);
	}
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, in->b, in->b + 6, PB_AUTO);
	pb_ipv4(&p, &o);
	pb_udp(&p, &u);
	pb_bytes(&p, g, opt ? 20 : 8);
	pb_bytes(&p, in->b, in->len);
	frame_finish(&f, &p);
	f.err = f.err ? f.err : in->err;
	return f;
}

/* The DSR dispatch's encapsulation: VNI 2, the world identity (the client is outside). */
static struct frame geneve_encap(const struct frame *in, uint32_t frontend, uint16_t port,
				 bool opt, uint16_t sport, uint8_t proto, uint16_t dport)
{
	return geneve_encap_vni(in, IP_NODE1, IP_NODE2, frontend, port, opt, sport, proto, dport,
				2);
}

/* What node-1 sends node-2 arrives with node-1 -> node-2 MACs (the neighbour's). */
static struct frame on_wire_to_node2(const struct frame *sent)
{
	struct frame f = *sent;
	struct l2 l = on_fabric(IP_NODE2, IP_NODE1);

	memcpy(f.b, l.dst, 6);
	memcpy(f.b + 6, l.src, 6);
	return f;
}

/*
 * ICMP fragmentation needed from the frontend to the client, in place of a request `in`
 * (addressed to the frontend) that the dispatch's header would push past the fabric MTU:
 * MACs swapped, IPv4 id 0/DF/TTL 64, next-hop MTU `mtu`, quoting the request's IP header and
 * the first 8 bytes after it.
 */
static struct frame frag_needed(const struct frame *in, uint16_t mtu)
{
	struct pb_ipv4 o;
	uint32_t src, dst;
	struct frame f;
	struct pb_pkt p;

	memcpy(&src, in->b + 14 + 12, 4);
	memcpy(&dst, in->b + 14 + 16, 4);
	o = ip4(dst, src, 0);
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, in->b + 6, in->b, PB_AUTO);
	pb_ipv4(&p, &o);
	pb_icmp4_error(&p, 3, 4, mtu, in->b + 14, 28);
	frame_finish(&f, &p);
	f.err = f.err ? f.err : in->err;
	return f;
}

static void case_svc_dsr_ipip(struct scenario *s)
{
	struct l2 l2 = on_fabric(IP_NODE1, IP_WORLD);
	struct l2 reply = on_fabric(IP_WORLD, IP_NODE2);
	static char big[1461];
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f, o, w;

	s->name = "svc-dsr-ipip";
	s->title = "DSR with the IPIP dispatch (bpf-lb-mode dsr, bpf-lb-dsr-dispatch ipip): an "
		   "external client's SYN to node-1's NodePort 30090, whose only backend is remote "
		   "on node-2, leaves node-1's from-netdev unchanged inside an outer IPv4 header "
		   "from node-1 to node-2 (protocol 4, TTL 64, DF as the inner packet's; sent out "
		   "of the device: redirect); so does a UDP datagram to 30091; a SYN with 1460 "
		   "bytes of data (1500 bytes) has no room for the 20-byte header and is answered "
		   "with ICMP fragmentation needed (MTU 1480) quoting it, a FRAG_NEEDED drop. On "
		   "node-2 the IPIP packet is decapsulated and its request served by node-2's own "
		   "backend of that NodePort: DNAT to remote:8080 and a redirect to its veth; "
		   "remote's SYN-ACK leaves to-netdev from node-1's frontend 192.0.2.1:30090 "
		   "straight to the client.";
	s->config = "{bpf-lb-mode: dsr, bpf-lb-dsr-dispatch: ipip}";
	s->policies = svc_web_dsr;

	r = new_replay(s, "svc-dsr-ipip-entry", "node-1", "from-netdev", NULL,
		       "the entry node: an external client's requests to node-1's DSR NodePorts");
	ip = ip4(IP_WORLD, IP_NODE1, 931);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40030, DSR_NODEPORT, PB_TCP_SYN, 17000, 0, NULL);
	o = ipip_encap(&f, IP_NODE1, IP_NODE2);
	add(r, &f, "redirect", &o,
	    "SYN from 203.0.113.10 to node-1:30090: in IPIP 192.0.2.1 -> 192.0.2.2, unchanged");
	ip.id = 932;
	f = udp_frame(&l2, &ip, 40031, DSR_NODEPORT + 1, "query", 5);
	o = ipip_encap(&f, IP_NODE1, IP_NODE2);
	add(r, &f, "redirect", &o, "UDP to node-1:30091: in IPIP, unchanged");
	memset(big, 'x', sizeof(big) - 1);
	ip.id = 933;
	f = tcp_frame(&l2, &ip, 40032, DSR_NODEPORT, PB_TCP_SYN, 18000, 0, big);
	o = frag_needed(&f, 1480);
	add(r, &f, "redirect", &o,
	    "a 1500-byte SYN with data: no room for IPIP: ICMP frag needed, MTU 1480, back to "
	    "the client (FRAG_NEEDED)");

	/* node-2: what node-1 sent, and remote's reply */
	r = new_replay(s, "svc-dsr-ipip-backend", "node-2", "from-netdev,to-netdev", NULL,
		       "the backend's node: the IPIP request from node-1 and remote's SYN-ACK");
	ip = ip4(IP_WORLD, IP_NODE1, 931);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40030, DSR_NODEPORT, PB_TCP_SYN, 17000, 0, NULL);
	w = on_wire_to_node2(&f);
	f = ipip_encap(&w, IP_NODE1, IP_NODE2);
	ip = ip4(IP_WORLD, IP_REMOTE, 931);
	ip.ttl = 61;
	o = tcp_frame(&l2, &ip, 40030, 8080, PB_TCP_SYN, 17000, 0, NULL);
	pb_pod_mac(IP_REMOTE, o.b);
	pb_gw_mac(IP_REMOTE, o.b + 6);
	add(r, &f, "redirect", &o,
	    "from-netdev: decapsulated, served by node-2's backend remote: DNAT to "
	    "remote:8080, to its veth");
	ip = ip4(IP_REMOTE, IP_WORLD, 941);
	ip.ttl = 63;
	f = tcp_frame(&reply, &ip, 8080, 40030, PB_TCP_SYN | PB_TCP_ACK, 27000, 17001, NULL);
	ip = ip4(IP_NODE1, IP_WORLD, 941);
	ip.ttl = 63;
	o = tcp_frame(&reply, &ip, DSR_NODEPORT, 40030, PB_TCP_SYN | PB_TCP_ACK, 27000, 17001,
		      NULL);
	expect_translated(r, &f, &o,
			  "to-netdev: remote's SYN-ACK leaves from node-1's frontend "
			  "192.0.2.1:30090 to the client");
}

static void case_svc_dsr_geneve(struct scenario *s)
{
	struct l2 l2 = on_fabric(IP_NODE1, IP_WORLD);
	struct l2 reply = on_fabric(IP_WORLD, IP_NODE2);
	static char big[1461];
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f, o, d;

	s->name = "svc-dsr-geneve";
	s->title = "DSR with the Geneve dispatch (bpf-lb-mode dsr, bpf-lb-dsr-dispatch geneve): "
		   "an external client's SYN to node-1's NodePort 30090, whose only backend is "
		   "remote on node-2, is DNATed to remote:8080 (client kept) and leaves node-1's "
		   "from-netdev in Geneve to node-2 (outer IPv4 DF/TTL 64, UDP 6081 with checksum "
		   "0, VNI 2, Ethernet inside) with Cilium's DSR option: class 0x014B, type 0x81 "
		   "(critical, C flag set), length 2, the frontend's address and port in network "
		   "order; the client's ACK in Geneve without the option; a UDP datagram with it; "
		   "a 1500-byte SYN with data gets ICMP fragmentation needed (MTU 1438: 1500 - 62) "
		   "quoting it, a FRAG_NEEDED drop. On node-2 the Geneve packet is decapsulated "
		   "and passes on to remote (its frontend recorded); remote's SYN-ACK leaves "
		   "to-netdev from the frontend 192.0.2.1:30090 straight to the client.";
	s->config = "{bpf-lb-mode: dsr, bpf-lb-dsr-dispatch: geneve}";
	s->policies = svc_web_dsr;

	r = new_replay(s, "svc-dsr-geneve-entry", "node-1", "from-netdev", NULL,
		       "the entry node: an external client's requests to node-1's DSR NodePorts");
	ip = ip4(IP_WORLD, IP_NODE1, 951);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40040, DSR_NODEPORT, PB_TCP_SYN, 19000, 0, NULL);
	ip = ip4(IP_WORLD, IP_REMOTE, 951);
	ip.ttl = 62;
	d = tcp_frame(&l2, &ip, 40040, 8080, PB_TCP_SYN, 19000, 0, NULL);
	o = geneve_encap(&d, IP_NODE1, DSR_NODEPORT, true, 40040, IPPROTO_TCP, 8080);
	add(r, &f, "redirect", &o,
	    "SYN to node-1:30090: DNAT to remote:8080, in Geneve to 192.0.2.2 with the DSR "
	    "option 014b 81 02 c0000201 758a");
	ip = ip4(IP_WORLD, IP_NODE1, 952);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40040, DSR_NODEPORT, PB_TCP_ACK, 19001, 29001, NULL);
	ip = ip4(IP_WORLD, IP_REMOTE, 952);
	ip.ttl = 62;
	d = tcp_frame(&l2, &ip, 40040, 8080, PB_TCP_ACK, 19001, 29001, NULL);
	o = geneve_encap(&d, IP_NODE1, DSR_NODEPORT, false, 40040, IPPROTO_TCP, 8080);
	add(r, &f, "redirect", &o, "the client's ACK: DNAT, in Geneve without the option");
	ip = ip4(IP_WORLD, IP_NODE1, 953);
	ip.ttl = 62;
	f = udp_frame(&l2, &ip, 40041, DSR_NODEPORT + 1, "query", 5);
	ip = ip4(IP_WORLD, IP_REMOTE, 953);
	ip.ttl = 62;
	d = udp_frame(&l2, &ip, 40041, 9999, "query", 5);
	o = geneve_encap(&d, IP_NODE1, DSR_NODEPORT + 1, true, 40041, IPPROTO_UDP, 9999);
	add(r, &f, "redirect", &o, "UDP to node-1:30091: DNAT, in Geneve with the option");
	memset(big, 'x', sizeof(big) - 1);
	ip = ip4(IP_WORLD, IP_NODE1, 954);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40042, DSR_NODEPORT, PB_TCP_SYN, 20000, 0, big);
	o = frag_needed(&f, 1438);
	add(r, &f, "redirect", &o,
	    "a 1500-byte SYN with data: no room for Geneve and the option: ICMP frag needed, "
	    "MTU 1438, quoting the request to the frontend (FRAG_NEEDED)");

	r = new_replay(s, "svc-dsr-geneve-backend", "node-2", "from-netdev,to-netdev", NULL,
		       "the backend's node: the Geneve request from node-1 and remote's SYN-ACK");
	ip = ip4(IP_WORLD, IP_REMOTE, 951);
	ip.ttl = 62;
	d = tcp_frame(&l2, &ip, 40040, 8080, PB_TCP_SYN, 19000, 0, NULL);
	f = geneve_encap(&d, IP_NODE1, DSR_NODEPORT, true, 40040, IPPROTO_TCP, 8080);
	f = on_wire_to_node2(&f);
	o = d;
	memcpy(o.b, f.b, 12); /* the outer Ethernet header stays */
	add(r, &f, "ok", &o,
	    "from-netdev: decapsulated; the SYN for remote:8080 passes on, its frontend "
	    "recorded");
	ip = ip4(IP_REMOTE, IP_WORLD, 961);
	ip.ttl = 63;
	f = tcp_frame(&reply, &ip, 8080, 40040, PB_TCP_SYN | PB_TCP_ACK, 29000, 19001, NULL);
	ip = ip4(IP_NODE1, IP_WORLD, 961);
	ip.ttl = 63;
	o = tcp_frame(&reply, &ip, DSR_NODEPORT, 40040, PB_TCP_SYN | PB_TCP_ACK, 29000, 19001,
		      NULL);
	expect_translated(r, &f, &o,
			  "to-netdev: remote's SYN-ACK leaves from the frontend 192.0.2.1:30090 "
			  "to the client");
}

/* ---- XDP (docs/XDP.md): the fabric device's xdp_netdev, replayed on node-1's fabric (the
 * replay builds it in a namespace of its own: neighbours with these fabric MACs) ---- */

/* A frame node-1 routes out of its fabric: TTL - 1, from node-1's MAC to the next hop's. */
static struct frame xdp_routed(uint32_t next_hop, struct pb_ipv4 *ip, uint16_t sport,
			       uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack)
{
	struct l2 l2 = on_fabric(next_hop, IP_NODE1);

	ip->ttl--;
	return tcp_frame(&l2, ip, sport, dport, flags, seq, ack, NULL);
}

static void case_svc_xdp_nodeport(struct scenario *s)
{
	struct l2 l2 = on_fabric(IP_NODE1, IP_WORLD), back = on_fabric(IP_NODE1, IP_NODE2);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f, o;

	s->name = "svc-xdp-nodeport";
	s->title = "XDP NodePort acceleration (bpf-lb-acceleration: native) and the prefilter on "
		   "node-1's fabric device: an external client's SYN to the NodePort 30080, whose "
		   "only backend is remote on node-2, is DNATed and SNATed at XDP and sent back out "
		   "of the device (tx) towards node-2 (TTL - 1, node-2's MAC), as the TC path and "
		   "the stack would; the backend's SYN-ACK is translated back and sent to the client "
		   "(tx); the client's ACK follows the mapping. A NodePort with a local backend "
		   "passes to TC untouched; a source in prefilter-deny-cidrs is dropped "
		   "(PREFILTER_DENIED). A connection started at XDP continues in from-netdev: the "
		   "same conntrack and NAT state.";
	s->config = "{bpf-lb-mode: snat, bpf-lb-acceleration: native, "
		    "prefilter-deny-cidrs: \"198.18.0.0/15, 192.0.2.128/25\"}";
	s->spec_extra = "  externalHosts:\n"
			"  - {name: client-1, ip: 203.0.113.10, ports: [80]}\n";
	s->policies = svc_nodeports;
	r = new_replay(s, "svc-xdp-nodeport", "node-1", "xdp", NULL,
		       "node-1's XDP: NodePort to a remote backend and its reply, a local backend, a "
		       "denied source");

	ip = ip4(IP_WORLD, IP_NODE1, 901);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40000, NODEPORT, PB_TCP_SYN, 13000, 0, NULL);
	ip = ip4(IP_NODE1, IP_REMOTE, 901);
	ip.ttl = 62;
	o = xdp_routed(IP_NODE2, &ip, 40000, 8080, PB_TCP_SYN, 13000, 0);
	add(r, &f, "tx", &o,
	    "SYN from 203.0.113.10 to node-1:30080: DNAT to remote:8080, SNAT to "
	    "192.0.2.1:40000, out of the fabric to node-2");
	ip = ip4(IP_REMOTE, IP_NODE1, 902);
	ip.ttl = 63;
	f = tcp_frame(&back, &ip, 8080, 40000, PB_TCP_SYN | PB_TCP_ACK, 23000, 13001, NULL);
	ip = ip4(IP_NODE1, IP_WORLD, 902);
	ip.ttl = 63;
	o = xdp_routed(IP_WORLD, &ip, NODEPORT, 40000, PB_TCP_SYN | PB_TCP_ACK, 23000, 13001);
	add(r, &f, "tx", &o,
	    "remote's SYN-ACK to 192.0.2.1:40000: to the client from node-1:30080, out of the "
	    "fabric to the client");
	ip = ip4(IP_WORLD, IP_NODE1, 903);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40000, NODEPORT, PB_TCP_ACK, 13001, 23001, NULL);
	ip = ip4(IP_NODE1, IP_REMOTE, 903);
	ip.ttl = 62;
	o = xdp_routed(IP_NODE2, &ip, 40000, 8080, PB_TCP_ACK, 13001, 23001);
	add(r, &f, "tx", &o, "the client's ACK: the same backend and mapping");
	ip = ip4(IP_WORLD, IP_NODE1, 904);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40001, NODEPORT + 1, PB_TCP_SYN, 16000, 0, NULL);
	add(r, &f, "pass", &f,
	    "SYN to node-1:30081 (backend server on node-1): passed untouched, from-netdev "
	    "delivers it");
	ip = ip4(PB_IP4(198, 18, 5, 5), IP_NODE1, 905);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40002, NODEPORT, PB_TCP_SYN, 17000, 0, NULL);
	expect_drop(r, &f, "drop:PREFILTER_DENIED", "SYN from 198.18.5.5 (in 198.18.0.0/15)");

	/* the same state in both paths: XDP's connection, its reply and ACK in from-netdev */
	r = new_replay(s, "svc-xdp-to-tc", "node-1", "xdp,from-netdev,from-netdev", NULL,
		       "a connection started at XDP continues in from-netdev");
	ip = ip4(IP_WORLD, IP_NODE1, 911);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40010, NODEPORT, PB_TCP_SYN, 14000, 0, NULL);
	ip = ip4(IP_NODE1, IP_REMOTE, 911);
	ip.ttl = 62;
	o = xdp_routed(IP_NODE2, &ip, 40010, 8080, PB_TCP_SYN, 14000, 0);
	add(r, &f, "tx", &o, "xdp: the SYN, DNAT + SNAT to 192.0.2.1:40010, out to node-2");
	ip = ip4(IP_REMOTE, IP_NODE1, 912);
	ip.ttl = 63;
	f = tcp_frame(&back, &ip, 8080, 40010, PB_TCP_SYN | PB_TCP_ACK, 24000, 14001, NULL);
	ip = ip4(IP_NODE1, IP_WORLD, 912);
	ip.ttl = 63;
	o = tcp_frame(&back, &ip, NODEPORT, 40010, PB_TCP_SYN | PB_TCP_ACK, 24000, 14001, NULL);
	expect_translated(r, &f, &o,
			  "from-netdev: remote's SYN-ACK finds XDP's mapping: to the client, from "
			  "node-1:30080 (the stack routes it)");
	ip = ip4(IP_WORLD, IP_NODE1, 913);
	ip.ttl = 62;
	f = tcp_frame(&l2, &ip, 40010, NODEPORT, PB_TCP_ACK, 14001, 24001, NULL);
	ip = ip4(IP_NODE1, IP_REMOTE, 913);
	ip.ttl = 62;
	o = tcp_frame(&l2, &ip, 40010, 8080, PB_TCP_ACK, 14001, 24001, NULL);
	expect_translated(r, &f, &o, "from-netdev: the client's ACK, XDP's backend and mapping");
}

/* ---- egress gateway (egress_gw.h, docs/EGRESS.md) ---- */

#define IP_EGRESS PB_IP4(192, 0, 2, 100)
#define ID_CLIENT_EGRESS 256 /* client's identity: the first label set the model allocates */

static void case_egress_gateway(struct scenario *s)
{
	struct l2 out = on_fabric(IP_WORLD, IP_NODE1), gw_out = on_fabric(IP_WORLD, IP_NODE2);
	struct l2 gw_in = on_fabric(IP_NODE2, IP_WORLD);
	struct pb_ipv4 ip;
	struct replay *r;
	struct frame f, o, w;

	s->name = "egress-gateway";
	s->title = "Egress gateway (CiliumEgressGatewayPolicy egress-client: app=client to "
		   "203.0.113.0/24 except 203.0.113.128/25, gateway the node labelled "
		   "egress-gw=yes, node-2, egress IP 192.0.2.100; policy egress-server: app=server "
		   "to 198.51.100.0/24 through a gateway no node matches). On node-1, client's SYN "
		   "to 203.0.113.10 leaves to-netdev in Geneve to node-2 (UDP 6081, VNI = client's "
		   "identity, no option; a redirect out of the device); its SYN to the excluded "
		   "203.0.113.200 is masqueraded to node-1 as usual; server's SYN to 198.51.100.10 "
		   "is dropped with NO_EGRESS_GATEWAY. On node-2, from-netdev decapsulates the Geneve "
		   "packet; the stack forwards client's SYN (TTL 62) and to-netdev SNATs it to "
		   "192.0.2.100 (port kept); the SYN-ACK to 192.0.2.100 gets client back as "
		   "destination in from-netdev and goes back through the tunnel to node-1 "
		   "(Geneve from node-2, VNI 2, the world identity).";
	s->config = "{enable-bpf-masquerade: \"true\"}";
	s->policies = "---\n"
		      "apiVersion: v1\n"
		      "kind: Node\n"
		      "metadata: {name: node-2, labels: {egress-gw: \"yes\"}}\n"
		      "---\n"
		      "apiVersion: cilium.io/v2\n"
		      "kind: CiliumEgressGatewayPolicy\n"
		      "metadata: {name: egress-client}\n"
		      "spec:\n"
		      "  selectors:\n"
		      "  - podSelector: {matchLabels: {app: client}}\n"
		      "  destinationCIDRs: [203.0.113.0/24]\n"
		      "  excludedCIDRs: [203.0.113.128/25]\n"
		      "  egressGateway:\n"
		      "    nodeSelector: {matchLabels: {egress-gw: \"yes\"}}\n"
		      "    egressIP: 192.0.2.100\n"
		      "---\n"
		      "apiVersion: cilium.io/v2\n"
		      "kind: CiliumEgressGatewayPolicy\n"
		      "metadata: {name: egress-server}\n"
		      "spec:\n"
		      "  selectors:\n"
		      "  - podSelector: {matchLabels: {app: server}}\n"
		      "  destinationCIDRs: [198.51.100.0/24]\n"
		      "  egressGateway:\n"
		      "    nodeSelector: {matchLabels: {egress-gw: \"nowhere\"}}\n";

	r = new_replay(s, "egress-pod-node", "node-1", "to-netdev", NULL,
		       "node-1: pods' packets leaving for the world");
	ip = ip4(IP_CLIENT, IP_WORLD, 1001);
	ip.ttl = 63;
	f = tcp_frame(&out, &ip, 42100, 80, PB_TCP_SYN, 30000, 0, NULL);
	o = geneve_encap_vni(&f, IP_NODE1, IP_NODE2, 0, 0, false, 42100, IPPROTO_TCP, 80,
			     ID_CLIENT_EGRESS);
	add(r, &f, "redirect", &o,
	    "client -> 203.0.113.10:80: in Geneve to node-2 (VNI 256), unchanged inside");
	ip = ip4(IP_CLIENT, PB_IP4(203, 0, 113, 200), 1002);
	ip.ttl = 63;
	f = tcp_frame(&out, &ip, 42101, 80, PB_TCP_SYN, 30100, 0, NULL);
	ip = ip4(IP_NODE1, PB_IP4(203, 0, 113, 200), 1002);
	ip.ttl = 63;
	o = tcp_frame(&out, &ip, 42101, 80, PB_TCP_SYN, 30100, 0, NULL);
	expect_translated(r, &f, &o,
			  "client -> 203.0.113.200 (excluded CIDR): masqueraded to 192.0.2.1");
	ip = ip4(IP_SERVER, PB_IP4(198, 51, 100, 10), 1003);
	ip.ttl = 63;
	f = tcp_frame(&out, &ip, 42102, 80, PB_TCP_SYN, 30200, 0, NULL);
	expect_drop(r, &f, "drop:NO_EGRESS_GATEWAY",
		    "server -> 198.51.100.10: its policy's gateway selector matches no node");

	r = new_replay(s, "egress-gateway-decap", "node-2", "from-netdev", NULL,
		       "node-2, the gateway: the Geneve packet from node-1");
	ip = ip4(IP_CLIENT, IP_WORLD, 1001);
	ip.ttl = 63;
	f = tcp_frame(&out, &ip, 42100, 80, PB_TCP_SYN, 30000, 0, NULL);
	w = geneve_encap_vni(&f, IP_NODE1, IP_NODE2, 0, 0, false, 42100, IPPROTO_TCP, 80,
			     ID_CLIENT_EGRESS);
	w = on_wire_to_node2(&w);
	o = f;
	memcpy(o.b, w.b, 12); /* the outer Ethernet header stays */
	add(r, &w, "ok", &o, "from-netdev: decapsulated, client's SYN goes on to the stack");

	r = new_replay(s, "egress-gateway-snat", "node-2", "to-netdev,from-netdev", NULL,
		       "node-2, the gateway: the SNAT to the egress IP and the reply");
	ip = ip4(IP_CLIENT, IP_WORLD, 1001);
	ip.ttl = 62;
	f = tcp_frame(&gw_out, &ip, 42100, 80, PB_TCP_SYN, 30000, 0, NULL);
	ip = ip4(IP_EGRESS, IP_WORLD, 1001);
	ip.ttl = 62;
	o = tcp_frame(&gw_out, &ip, 42100, 80, PB_TCP_SYN, 30000, 0, NULL);
	expect_translated(r, &f, &o,
			  "to-netdev: forwarded by node-2's stack, SNAT to the egress IP "
			  "192.0.2.100:42100");
	ip = ip4(IP_WORLD, IP_EGRESS, 1011);
	ip.ttl = 60;
	f = tcp_frame(&gw_in, &ip, 80, 42100, PB_TCP_SYN | PB_TCP_ACK, 40000, 30001, NULL);
	ip = ip4(IP_WORLD, IP_CLIENT, 1011);
	ip.ttl = 60;
	o = tcp_frame(&gw_in, &ip, 80, 42100, PB_TCP_SYN | PB_TCP_ACK, 40000, 30001, NULL);
	w = geneve_encap_vni(&o, IP_NODE2, IP_NODE1, 0, 0, false, 80, IPPROTO_TCP, 42100, 2);
	add(r, &f, "redirect", &w,
	    "from-netdev: the SYN-ACK to 192.0.2.100:42100, to client again, back through the "
	    "tunnel to node-1 (Geneve, VNI 2)");
}

static void (*const cases[])(struct scenario *s) = {
	case_tcp_same_node, case_tcp_syn_denied, case_tcp_remote_node, case_udp,
	case_icmp_echo,	    case_icmp_related,	 case_ipv4_options,    case_fragments,
	case_ipv4_malformed, case_l4_truncated,	 case_vlan,	       case_arp,
	case_ipv6,	    case_spoofed,	 case_ttl,	       case_overlay,
	case_sctp_policy,   case_svc_clusterip,	 case_svc_nodeport,    case_svc_masquerade,
	case_svc_dsr_opt,   case_svc_dsr_ipip,	 case_svc_dsr_geneve,
	case_svc_xdp_nodeport, case_egress_gateway,
};

/* ---- output ---- */

struct out_ctx {
	const char *root;
	FILE *readme;
	char readme_tmp[PATH_MAX_LEN];
	unsigned int nscenarios, npcaps;
};

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX_LEN];
	size_t i, n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

__attribute__((format(printf, 3, 4))) static int path_fmt(char *buf, size_t n, const char *fmt,
							   ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

/* Writes frames (only those with has_out, if outputs) to path, through a temporary file. */
static int write_pcap(const struct out_ctx *o, const char *path, const struct replay *r,
		      bool outputs)
{
	char tmp[PATH_MAX_LEN];
	struct pb_pcap_writer *w;
	int err, cerr;
	size_t i;

	err = path_fmt(tmp, sizeof(tmp), "%s.tmp", path);
	if (err)
		return err;
	err = pb_pcap_create(tmp, &w);
	if (err)
		goto out;
	for (i = 0; i < r->n && !err; i++) {
		if (!outputs)
			err = pb_pcap_write(w, r->in[i].b, r->in[i].len);
		else if (r->has_out[i])
			err = pb_pcap_write(w, r->out[i].b, r->out[i].len);
	}
	cerr = pb_pcap_close(w);
	if (!err)
		err = cerr;
	if (!err && rename(tmp, path))
		err = -errno;
out:
	if (err) {
		fprintf(stderr, "ciliate-pktgen: %s: %s\n", path, strerror(-err));
		remove(tmp);
	}
	return err;
}

static void yaml_pods(FILE *f)
{
	static const struct {
		const char *name, *node, *ip;
	} pods[] = {
		{ "client", "node-1", "10.244.0.10" },
		{ "server", "node-1", "10.244.0.20" },
		{ "remote", "node-2", "10.244.1.30" },
	};
	size_t i;

	for (i = 0; i < sizeof(pods) / sizeof(pods[0]); i++)
		fprintf(f,
			"---\n"
			"apiVersion: v1\n"
			"kind: Pod\n"
			"metadata:\n"
			"  name: %s\n"
			"  namespace: " NS "\n"
			"  labels: {app: %s}\n"
			"spec:\n"
			"  nodeName: %s\n"
			"  containers:\n"
			"  - name: app\n"
			"    image: echo\n"
			"    ports:\n"
			"    - {name: http, containerPort: 80, protocol: TCP}\n"
			"    - {name: dns, containerPort: 53, protocol: UDP}\n"
			"status: {podIP: %s}\n",
			pods[i].name, pods[i].name, pods[i].node, pods[i].ip);
}

/* The decode of packet i's expected output when it reads differently from the input's (a
 * translation; a redirect's MAC and TTL rewrite does not show): 1, else 0. */
static int out_decode(const struct replay *r, size_t i, const char *in_line, char *buf,
		      size_t len)
{
	if (!r->has_out[i])
		return 0;
	decode_frame(r->out[i].b, r->out[i].len, buf, len);
	return strcmp(buf, in_line) != 0;
}

static void yaml_replay(FILE *f, const struct replay *r)
{
	char line[256], outl[256], v[64];
	size_t i;

	fprintf(f,
		"---\n"
		"# %s\n"
		"apiVersion: sim.ciliate.dev/v1\n"
		"kind: Replay\n"
		"metadata: {name: %s}\n"
		"spec:\n"
		"  node: %s\n"
		"  hook: %s\n",
		r->what, r->name, r->node, r->hook);
	if (r->endpoint) /* pod hooks only */
		fprintf(f, "  endpoint: %s\n", r->endpoint);
	fprintf(f,
		"  pcap: ../../pcaps/replay/%s.pcap\n"
		"  expect:\n"
		"    verdicts:\n",
		r->name);
	for (i = 0; i < r->n; i++) {
		decode_frame(r->in[i].b, r->in[i].len, line, sizeof(line));
		if (strchr(r->verdict[i], ':'))
			snprintf(v, sizeof(v), "'%s'", r->verdict[i]);
		else
			snprintf(v, sizeof(v), "%s", r->verdict[i]);
		fprintf(f, "    - %-48s # %zu: %s\n", v, i + 1, r->note[i]);
		fprintf(f, "    %-50s #    %s\n", "", line);
		if (out_decode(r, i, line, outl, sizeof(outl))) /* translated */
			fprintf(f, "    %-50s #    -> %s\n", "", outl);
	}
	fprintf(f, "    output: ../../pcaps/replay/%s.out.pcap\n", r->name);
}

static int write_scenario(const struct out_ctx *o, const struct scenario *s)
{
	char path[PATH_MAX_LEN], tmp[PATH_MAX_LEN];
	size_t i;
	FILE *f;
	int err;

	err = path_fmt(path, sizeof(path), "%s/scenarios/replay/%s.yaml", o->root, s->name);
	if (!err)
		err = path_fmt(tmp, sizeof(tmp), "%s.tmp", path);
	if (err)
		return err;
	f = fopen(tmp, "w");
	if (!f) {
		err = -errno;
		fprintf(stderr, "ciliate-pktgen: %s: %s\n", tmp, strerror(errno));
		return err;
	}
	fprintf(f,
		"# Generated by ciliate-pktgen (pcaps/builder/gen_pcaps.c): do not edit, run "
		"`make pcaps`.\n"
		"# %s\n"
		"apiVersion: sim.ciliate.dev/v1\n"
		"kind: Cluster\n"
		"metadata: {name: replay-%s}\n"
		"spec:\n"
		"  nodes:\n"
		"  - {name: node-1}\n"
		"  - {name: node-2}\n"
		"  routing: %s\n"
		"  encryption: none\n"
		"  podCIDR: 10.244.0.0/16\n"
		"  serviceCIDR: 10.96.0.0/12\n"
		"  underlayCIDR: 192.0.2.0/24\n"
		"%s"
		"%s%s%s"
		"---\n"
		"apiVersion: v1\n"
		"kind: Namespace\n"
		"metadata:\n"
		"  name: " NS "\n"
		"  labels: {purpose: replay}\n",
		s->title, s->name, s->routing ? s->routing : "native",
		s->spec_extra ? s->spec_extra : "", s->config ? "  config: " : "", s->config ? s->config : "", s->config ? "\n" : "");
	yaml_pods(f);
	if (s->policies)
		fputs(s->policies, f);
	for (i = 0; i < s->nreplays; i++)
		yaml_replay(f, &s->r[i]);
	if (ferror(f))
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		fprintf(stderr, "ciliate-pktgen: %s: %s\n", path, strerror(-err));
		remove(tmp);
	}
	return err;
}

static void readme_scenario(FILE *f, const struct scenario *s)
{
	char line[256], outl[256];
	size_t i, j, nout;

	fprintf(f, "## %s\n\n%s\n\n", s->name, s->title);
	for (i = 0; i < s->nreplays; i++) {
		const struct replay *r = &s->r[i];

		for (j = 0, nout = 0; j < r->n; j++)
			nout += r->has_out[j];
		fprintf(f,
			"Replay `%s`: %s, hook `%s`, endpoint `%s`; `replay/%s.pcap` (%zu packets) "
			"-> `replay/%s.out.pcap` (%zu packets).\n\n",
			r->name, r->node, r->hook, r->endpoint ? r->endpoint : "-", r->name, r->n,
			r->name, nout);
		fprintf(f, "| # | packet | verdict |\n|---|---|---|\n");
		for (j = 0; j < r->n; j++) {
			decode_frame(r->in[j].b, r->in[j].len, line, sizeof(line));
			if (out_decode(r, j, line, outl, sizeof(outl)))
				fprintf(f, "| %zu | %s: `%s` -> `%s` | `%s` |\n", j + 1, r->note[j],
					line, outl, r->verdict[j]);
			else
				fprintf(f, "| %zu | %s: `%s` | `%s` |\n", j + 1, r->note[j], line,
					r->verdict[j]);
		}
		fprintf(f, "\n");
	}
}

static int emit(struct out_ctx *o, const struct scenario *s)
{
	char path[PATH_MAX_LEN];
	size_t i;
	int err;

	for (i = 0; i < s->nreplays; i++) {
		const struct replay *r = &s->r[i];

		if (r->err) {
			fprintf(stderr, "ciliate-pktgen: case %s, replay %s: cannot build: %s\n",
				s->name, r->name, strerror(-r->err));
			return r->err;
		}
		err = path_fmt(path, sizeof(path), "%s/pcaps/replay/%s.pcap", o->root, r->name);
		if (!err)
			err = write_pcap(o, path, r, false);
		if (!err)
			err = path_fmt(path, sizeof(path), "%s/pcaps/replay/%s.out.pcap", o->root,
				       r->name);
		if (!err)
			err = write_pcap(o, path, r, true);
		if (err)
			return err;
		o->npcaps += 2;
	}
	err = write_scenario(o, s);
	if (err)
		return err;
	readme_scenario(o->readme, s);
	o->nscenarios++;
	return 0;
}

static int generate(const char *root)
{
	struct out_ctx o = { .root = root };
	char path[PATH_MAX_LEN];
	struct scenario *s = NULL;
	size_t i;
	int err;

	err = path_fmt(path, sizeof(path), "%s/pcaps/replay", root);
	if (!err)
		err = mkdir_p(path);
	if (!err)
		err = path_fmt(path, sizeof(path), "%s/scenarios/replay", root);
	if (!err)
		err = mkdir_p(path);
	if (!err)
		err = path_fmt(path, sizeof(path), "%s/pcaps/README.md", root);
	if (!err)
		err = path_fmt(o.readme_tmp, sizeof(o.readme_tmp), "%s.tmp", path);
	if (err) {
		fprintf(stderr, "ciliate-pktgen: %s: %s\n", root, strerror(-err));
		return err;
	}
	o.readme = fopen(o.readme_tmp, "w");
	if (!o.readme) {
		err = -errno;
		fprintf(stderr, "ciliate-pktgen: %s: %s\n", o.readme_tmp, strerror(errno));
		return err;
	}
	fprintf(o.readme,
		"# Replay pcaps\n\n"
		"Generated by `make pcaps` (`build/bin/ciliate-pktgen pcaps`, source "
		"`pcaps/builder/gen_pcaps.c`); do not edit by hand. Each case has a scenario "
		"`scenarios/replay/CASE.yaml` (two nodes, native routing unless the case says tunnel, namespace `replay` with "
		"pods `client` 10.244.0.10 and `server` 10.244.0.20 on node-1, `remote` "
		"10.244.1.30 on node-2) holding one or more `Replay` documents; each replay has an "
		"input `replay/NAME.pcap` and the expected output `replay/NAME.out.pcap` (the "
		"packets that are not dropped, as the datapath must emit them).\n\n"
		"Expected outputs follow the datapath rules, not a run of it: a same-node "
		"`redirect` rewrites the destination MAC to the receiver's pod MAC (0a:58:IP), the "
		"source MAC to its gateway MAC (0e:58:IP) and decrements the TTL (IPv4 checksum "
		"updated); `ok` leaves the frame unchanged, except in the service and NAT cases "
		"(`svc-*`), where it carries the translation the case names (`in -> out`: "
		"addresses and ports rewritten, every checksum valid). A hook list "
		"(`to-netdev,from-netdev`) gives each packet its hook, in order, all on the same "
		"maps: a reply crosses another hook than its request and finds the state the "
		"request left. Packet i of every pcap is stamped 1700000000 + i seconds.\n\n");

	s = malloc(sizeof(*s));
	if (!s) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(s, 0, sizeof(*s));
		cases[i](s);
		err = emit(&o, s);
		if (err)
			goto out;
	}
out:
	free(s);
	if (ferror(o.readme) && !err)
		err = -EIO;
	if (fclose(o.readme) && !err)
		err = -errno;
	if (!err && rename(o.readme_tmp, path))
		err = -errno;
	if (err) {
		remove(o.readme_tmp);
		fprintf(stderr, "ciliate-pktgen: failed: %s\n", strerror(-err));
		return err;
	}
	fprintf(stderr, "ciliate-pktgen: wrote %u scenarios and %u pcaps under %s\n",
		o.nscenarios, o.npcaps, root);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "NAME\n"
		   "    ciliate-pktgen - writes the golden replay cases (a development tool)\n"
		   "\n"
		   "SYNOPSIS\n"
		   "    ciliate-pktgen pcaps [-o ROOT]\n"
		   "    ciliate-pktgen --help\n"
		   "\n"
		   "DESCRIPTION\n"
		   "    Builds every golden replay case with the project's packet builder and\n"
		   "    writes them under ROOT (default: the current directory):\n"
		   "    ROOT/pcaps/replay/*.pcap, ROOT/scenarios/replay/*.yaml and\n"
		   "    ROOT/pcaps/README.md. `make pcaps` runs it; the outputs are committed.\n"
		   "\n"
		   "OPTIONS\n"
		   "    -o, --root ROOT   project root to write into\n"
		   "    -h, --help        this help\n"
		   "\n"
		   "EXIT STATUS\n"
		   "    0 written, 1 a case could not be built or written, 2 usage error.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *root = ".";
	int c;

	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			root = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc || strcmp(argv[optind], "pcaps")) {
		usage(stderr);
		return 2;
	}
	return generate(root) ? 1 : 0;
}
