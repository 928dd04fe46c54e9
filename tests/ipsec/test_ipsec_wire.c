/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPsec on the wire (kernel-matrix suite "ipsec", docs/IPSEC.md). Two network namespaces,
 * node-1 and node-2, joined by a veth pair (192.0.2.1/24 <-> 192.0.2.2/24); each has a "pod"
 * address on lo (10.244.0.10, 10.244.1.10) routed via the other node. XFRM is programmed in
 * each with xfrm_ipsec_sync() (datapath/encrypt/xfrm.c) and libpcap captures node-1's veth:
 *
 *  (a) tunnel mode, key 3+ rfc4106(gcm(aes)): UDP both ways and a TCP exchange between the
 *      pods; every captured packet between the pods is ESP SPI 3 between the node addresses,
 *      no captured byte sequence contains the payload marker or the inner address pair
 *  (b) rotation under a live 2 MB TCP stream: node-1 installs key 4 (peer still on 3: its
 *      out SPI stays 3), node-2 switches (SPI 4 from node-2), node-1 switches (SPI 4 from
 *      node-1), both drop key 3 (no SPI 3 any more); every byte arrives in order
 *  (c) transport mode, key 5+ hmac(sha256)/cbc(aes): node IP to node IP UDP and TCP are ESP
 *      SPI 5; then delete-by-SPI and flush leave a foreign SA (not ciliate's) alone
 *
 * Never touches the namespace it starts in. Prints "RESULT pass=N fail=N skip=N"; without ESP
 * in the kernel prints "SKIP: <reason>" and exits 77.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <linux/xfrm.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "encrypt/ipsec_keys.h"
#include "encrypt/xfrm.h"

#define MARKER "CILIATE-SECRET-PAYLOAD-7" /* 24 bytes, in every payload */
#define MARKER_LEN 24
#define STREAM_BYTES (2u << 20)
#define HARD_TIMEOUT_S 480

static const char *KEYS_TEXT =
	"# key 3 and key 4: AES-128-GCM + salt; key 5: HMAC-SHA256 + AES-128-CBC\n"
	"3+ rfc4106(gcm(aes)) 0x6b3c1f0e9d2a4b5c6d7e8f90a1b2c3d4e5f60718 128\n"
	"5+ hmac(sha256) 0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff "
	"cbc(aes) 0x0f1e2d3c4b5a69788796a5b4c3d2e1f0\n"
	"4+ rfc4106(gcm(aes)) 0xd4c3b2a1908f7e6d5c4b3a291807f6e5d4c3b2a1 128\n";

static int n_pass, n_fail;
static int ns1 = -1, ns2 = -1;

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

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_alarm(int sig)
{
	static const char m[] = "FAIL: test_ipsec_wire exceeded its hard time limit\n";

	(void)sig;
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

static void enter(int fd)
{
	if (setns(fd, CLONE_NEWNET) != 0) {
		printf("FAIL: setns: %s\n", strerror(errno));
		exit(1);
	}
}

static int ns_new(void)
{
	if (unshare(CLONE_NEWNET) != 0)
		return -errno;
	return open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
}

/* ---- rtnetlink: links, addresses, routes (in the current namespace) ---------------------- */

static int rt_do(struct nlmsghdr *nlh)
{
	struct mnl_socket *s = mnl_socket_open(NETLINK_ROUTE);
	char buf[8192];
	unsigned seq = nlh->nlmsg_seq = (unsigned)time(NULL);
	int ret = -1, rounds = 0;
	ssize_t n;

	if (!s)
		return -errno;
	if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(s, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	while (rounds++ < 16) {
		n = mnl_socket_recvfrom(s, buf, sizeof(buf));
		if (n < 0) {
			ret = -errno;
			break;
		}
		ret = mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(s), NULL, NULL);
		if (ret < 0) {
			ret = -errno;
			break;
		}
		if (ret == MNL_CB_STOP) {
			ret = 0;
			break;
		}
	}
out:
	mnl_socket_close(s);
	return ret;
}

static int link_up(const char *ifname)
{
	char buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	unsigned idx = if_nametoindex(ifname);

	if (!idx)
		return -ENODEV;
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)idx;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return rt_do(nlh);
}

static int veth_create(const char *name, const char *peer, int peer_ns)
{
	char buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi, *pifi;
	struct nlattr *linkinfo, *data, *peer_nest;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer_nest = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	pifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifi));
	pifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_ns);
	mnl_attr_nest_end(nlh, peer_nest);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	return rt_do(nlh);
}

static int addr_add(const char *ifname, const char *addr, unsigned prefix)
{
	char buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	struct in_addr a;
	unsigned idx = if_nametoindex(ifname);

	if (!idx)
		return -ENODEV;
	inet_pton(AF_INET, addr, &a);
	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_index = idx;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	mnl_attr_put(nlh, IFA_LOCAL, 4, &a);
	mnl_attr_put(nlh, IFA_ADDRESS, 4, &a);
	return rt_do(nlh);
}

static int route_add(const char *dst, unsigned prefix, const char *gw, const char *ifname,
		     const char *src)
{
	char buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	struct in_addr d, g, s;
	unsigned idx = if_nametoindex(ifname);

	if (!idx)
		return -ENODEV;
	inet_pton(AF_INET, dst, &d);
	inet_pton(AF_INET, gw, &g);
	inet_pton(AF_INET, src, &s);
	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (unsigned char)prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_DST, 4, &d);
	mnl_attr_put(nlh, RTA_GATEWAY, 4, &g);
	mnl_attr_put(nlh, RTA_PREFSRC, 4, &s);
	mnl_attr_put_u32(nlh, RTA_OIF, idx);
	return rt_do(nlh);
}

/* ---- a foreign SA (reqid 77: not ciliate's), raw XFRM netlink ---------------------------- */

#define FOREIGN_SPI 0x777u
#define FOREIGN_DST "192.0.2.99"

/* op 1: add, 0: look up (0 = present), 2: delete */
static int foreign_sa(int op, const char *dst_s, uint32_t spi)
{
	int add = op == 1;
	char buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct mnl_socket *s;
	struct in_addr dst;
	char rbuf[8192];
	int ret = -1, rounds = 0;
	unsigned seq;
	ssize_t n;

	inet_pton(AF_INET, dst_s, &dst);
	if (add) {
		struct xfrm_usersa_info *p;
		struct {
			struct xfrm_algo_aead a;
			char key[20];
		} alg;

		nlh->nlmsg_type = XFRM_MSG_NEWSA;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
		p = mnl_nlmsg_put_extra_header(nlh, sizeof(*p));
		p->sel.family = AF_INET;
		p->id.daddr.a4 = dst.s_addr;
		p->id.spi = htonl(spi);
		p->id.proto = IPPROTO_ESP;
		p->family = AF_INET;
		p->mode = XFRM_MODE_TUNNEL;
		p->reqid = 77;
		p->lft.soft_byte_limit = p->lft.hard_byte_limit = XFRM_INF;
		p->lft.soft_packet_limit = p->lft.hard_packet_limit = XFRM_INF;
		memset(&alg, 0x5a, sizeof(alg));
		snprintf(alg.a.alg_name, sizeof(alg.a.alg_name), "rfc4106(gcm(aes))");
		alg.a.alg_key_len = 160;
		alg.a.alg_icv_len = 128;
		mnl_attr_put(nlh, XFRMA_ALG_AEAD, sizeof(alg), &alg);
	} else {
		struct xfrm_usersa_id *id;

		nlh->nlmsg_type = op == 2 ? XFRM_MSG_DELSA : XFRM_MSG_GETSA;
		nlh->nlmsg_flags = NLM_F_REQUEST | (op == 2 ? NLM_F_ACK : 0);
		id = mnl_nlmsg_put_extra_header(nlh, sizeof(*id));
		id->daddr.a4 = dst.s_addr;
		id->spi = htonl(spi);
		id->family = AF_INET;
		id->proto = IPPROTO_ESP;
	}
	seq = nlh->nlmsg_seq = 4242;
	s = mnl_socket_open(NETLINK_XFRM);
	if (!s)
		return -errno;
	if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(s, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	while (rounds++ < 8) {
		n = mnl_socket_recvfrom(s, rbuf, sizeof(rbuf));
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (!add && n >= (ssize_t)sizeof(struct nlmsghdr) &&
		    ((struct nlmsghdr *)rbuf)->nlmsg_type == XFRM_MSG_NEWSA) {
			ret = 0; /* found */
			break;
		}
		ret = mnl_cb_run(rbuf, (size_t)n, seq, mnl_socket_get_portid(s), NULL, NULL);
		if (ret < 0) {
			ret = -errno;
			break;
		}
		if (ret == MNL_CB_STOP) {
			ret = 0;
			break;
		}
	}
out:
	mnl_socket_close(s);
	return ret;
}

/* ---- capture ----------------------------------------------------------------------------- */

#define PHASES 8

struct capture {
	pcap_t *p[2]; /* veth-n1 and veth-n2, outgoing frames only: together, the wire */
	int phase;
	/* ESP packets by phase, direction (0: from node-1, 1: from node-2) and SPI (16: other) */
	unsigned esp[PHASES][2][17];
	unsigned pod_plain[PHASES];  /* IPv4 between pod addresses, not ESP */
	unsigned node_plain[PHASES]; /* UDP/TCP between the node addresses, not ESP */
	unsigned leak_marker, leak_pair, total, ipv4;
};

static struct capture cap;
static const uint8_t pair_fwd[8] = { 10, 244, 0, 10, 10, 244, 1, 10 };
static const uint8_t pair_rev[8] = { 10, 244, 1, 10, 10, 244, 0, 10 };

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *pkt)
{
	struct capture *c = (struct capture *)user;
	const uint8_t *ip;
	unsigned ihl, proto;
	uint32_t src, dst;
	int ph = c->phase;

	c->total++;
	if (memmem(pkt, h->caplen, MARKER, MARKER_LEN))
		c->leak_marker++;
	if (memmem(pkt, h->caplen, pair_fwd, 8) || memmem(pkt, h->caplen, pair_rev, 8))
		c->leak_pair++;
	if (h->caplen < 14 + 20 || pkt[12] != 0x08 || pkt[13] != 0x00)
		return;
	c->ipv4++;
	ip = pkt + 14;
	ihl = (ip[0] & 0x0f) * 4u;
	proto = ip[9];
	memcpy(&src, ip + 12, 4);
	memcpy(&dst, ip + 16, 4);
	src = ntohl(src);
	dst = ntohl(dst);
	if (proto == IPPROTO_ESP && h->caplen >= 14 + ihl + 8) {
		uint32_t spi;
		int dir = src == 0xc0000201u ? 0 : 1;

		memcpy(&spi, ip + ihl, 4);
		spi = ntohl(spi);
		c->esp[ph][dir][spi <= 15 ? spi : 16]++;
		return;
	}
	if ((src >> 16) == 0x0af4 || (dst >> 16) == 0x0af4)
		c->pod_plain[ph]++;
	else if ((src >> 8) == 0xc00002 && (dst >> 8) == 0xc00002 &&
		 (proto == IPPROTO_TCP || proto == IPPROTO_UDP))
		c->node_plain[ph]++;
}

static void drain(void)
{
	int guard = 0;

	int i;

	for (i = 0; i < 2; i++)
		while (cap.p[i] && guard++ < 100000 && pcap_dispatch(cap.p[i], -1, on_packet, (u_char *)&cap) > 0)
			;
}

/* Outgoing frames of ifname in the current namespace. Only outgoing: in tunnel mode the
 * kernel hands the decrypted inner packet to the receiving device again (xfrm input re-injects
 * it on veth), so a capture of received frames shows plaintext that never was on the wire. */
static int capture_open(int i, const char *ifname, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_create(ifname, ebuf);

	if (!p) {
		snprintf(err, errlen, "pcap_create %s: %s", ifname, ebuf);
		return -1;
	}
	cap.p[i] = p;
	pcap_set_snaplen(p, 65535);
	pcap_set_immediate_mode(p, 1);
	pcap_set_buffer_size(p, 16 << 20);
	pcap_set_timeout(p, 10);
	if (pcap_activate(p) < 0 || pcap_setdirection(p, PCAP_D_OUT) < 0 ||
	    pcap_setnonblock(p, 1, ebuf) < 0) {
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

/* ---- traffic ----------------------------------------------------------------------------- */

static int sock_in(int ns, int type, const char *addr, unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd;

	enter(ns);
	fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, addr, &sa.sin_addr);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("# bind %s:%u: %s\n", addr, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };

	return poll(&p, 1, ms) == 1 && (p.revents & ev);
}

/* n datagrams each way; returns how many arrived intact */
static int udp_exchange(int ns_a, const char *a, int ns_b, const char *b, unsigned port_base, int n)
{
	int sa = sock_in(ns_a, SOCK_DGRAM, a, port_base), sb = sock_in(ns_b, SOCK_DGRAM, b, port_base + 1);
	struct sockaddr_in to_b = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(port_base + 1)) };
	struct sockaddr_in to_a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port_base) };
	int ok = 0, i, dir;

	if (sa < 0 || sb < 0)
		goto out;
	inet_pton(AF_INET, b, &to_b.sin_addr);
	inet_pton(AF_INET, a, &to_a.sin_addr);
	for (i = 0; i < n; i++) {
		for (dir = 0; dir < 2; dir++) {
			char msg[128], got[256];
			int len = snprintf(msg, sizeof(msg), MARKER " udp %d dir %d", i, dir);
			int tx = dir ? sb : sa, rx = dir ? sa : sb;
			const struct sockaddr_in *to = dir ? &to_a : &to_b;
			ssize_t r;

			if (sendto(tx, msg, (size_t)len, 0, (const struct sockaddr *)to, sizeof(*to)) != len)
				continue;
			if (!wait_fd(rx, POLLIN, 3000))
				continue;
			r = recv(rx, got, sizeof(got), 0);
			if (r == len && memcmp(got, msg, (size_t)len) == 0)
				ok++;
		}
	}
out:
	if (sa >= 0)
		close(sa);
	if (sb >= 0)
		close(sb);
	return ok;
}

/* A connected TCP pair: *cl in ns_a (bound to a), *sv in ns_b (accepted on b:port). */
static int tcp_pair(int ns_a, const char *a, int ns_b, const char *b, unsigned port, int *cl, int *sv)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int lst = sock_in(ns_b, SOCK_STREAM, b, port), c = -1, s = -1, err = 0;
	socklen_t el = sizeof(err);

	*cl = *sv = -1;
	if (lst < 0 || listen(lst, 4) < 0)
		goto fail;
	c = sock_in(ns_a, SOCK_STREAM, a, 0);
	if (c < 0)
		goto fail;
	inet_pton(AF_INET, b, &to.sin_addr);
	if (connect(c, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS)
		goto fail;
	if (!wait_fd(c, POLLOUT, 10000) || getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
		printf("# connect %s -> %s:%u: %s\n", a, b, port, err ? strerror(err) : "timeout");
		goto fail;
	}
	if (!wait_fd(lst, POLLIN, 5000))
		goto fail;
	s = accept4(lst, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s < 0)
		goto fail;
	close(lst);
	*cl = c;
	*sv = s;
	return 0;
fail:
	if (lst >= 0)
		close(lst);
	if (c >= 0)
		close(c);
	return -1;
}

/* Byte i of a stream: 64-byte blocks = marker, the block number (big endian), filler. */
static uint8_t gen(uint64_t i)
{
	uint64_t block = i / 64;
	unsigned off = (unsigned)(i % 64);

	if (off < MARKER_LEN)
		return (uint8_t)MARKER[off];
	if (off < 32)
		return (uint8_t)(block >> (8 * (31 - off)));
	return (uint8_t)(block * 31 + off);
}

typedef void (*stream_hook)(uint64_t received);

struct stream_result {
	uint64_t sent, received;
	uint64_t first_bad; /* offset of the first wrong byte, or UINT64_MAX */
	double secs;
};

/* Sends total bytes tx -> rx, checking every byte in order; calls hook after each read. */
static void stream(int tx, int rx, uint64_t total, stream_hook hook, double limit_s,
		   struct stream_result *r)
{
	static uint8_t wbuf[16384], rbuf[65536];
	double t0 = now_s();
	long iter = 0;

	memset(r, 0, sizeof(*r));
	r->first_bad = UINT64_MAX;
	while (r->received < total && iter++ < 5000000 && now_s() - t0 < limit_s &&
	       r->first_bad == UINT64_MAX) {
		struct pollfd p[2] = { { .fd = tx, .events = r->sent < total ? POLLOUT : 0 },
				       { .fd = rx, .events = POLLIN } };

		if (poll(p, 2, 200) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLOUT) {
			size_t n = total - r->sent < sizeof(wbuf) ? (size_t)(total - r->sent) : sizeof(wbuf);
			ssize_t w;
			size_t i;

			for (i = 0; i < n; i++)
				wbuf[i] = gen(r->sent + i);
			w = send(tx, wbuf, n, MSG_NOSIGNAL);
			if (w > 0)
				r->sent += (uint64_t)w;
			else if (w < 0 && errno != EAGAIN)
				break;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(rx, rbuf, sizeof(rbuf), 0);
			ssize_t i;

			if (n == 0 || (n < 0 && errno != EAGAIN))
				break;
			for (i = 0; i < n; i++)
				if (rbuf[i] != gen(r->received + (uint64_t)i)) {
					r->first_bad = r->received + (uint64_t)i;
					break;
				}
			if (n > 0)
				r->received += (uint64_t)n;
			if (hook)
				hook(r->received);
		}
		drain();
	}
	r->secs = now_s() - t0;
	drain();
}

/* ---- the spec of a node ------------------------------------------------------------------ */

static struct ipsec_keyset keys;

static struct ipsec_peer peer_of1, peer_of2; /* node-1's peer (node-2) and node-2's peer */

static void make_spec(int node, enum ipsec_mode mode, uint8_t cur, uint8_t prev, uint8_t peer_key,
		      struct ipsec_sync_spec *s)
{
	struct ipsec_peer *p = node == 1 ? &peer_of1 : &peer_of2;

	memset(s, 0, sizeof(*s));
	memset(p, 0, sizeof(*p));
	inet_pton(AF_INET, node == 1 ? "192.0.2.1" : "192.0.2.2", &s->local_ip);
	inet_pton(AF_INET, node == 1 ? "10.244.0.0" : "10.244.1.0", &s->local_pod_cidr);
	s->local_pod_prefix = 24;
	inet_pton(AF_INET, node == 1 ? "192.0.2.2" : "192.0.2.1", &p->node_ip);
	inet_pton(AF_INET, node == 1 ? "10.244.1.0" : "10.244.0.0", &p->pod_cidr);
	p->pod_prefix = 24;
	p->key_id = peer_key;
	s->mode = mode;
	s->peers = p;
	s->n_peers = 1;
	s->current = ipsec_keys_find(&keys, cur);
	s->previous = prev ? ipsec_keys_find(&keys, prev) : NULL;
}

static int sync_node(int node, enum ipsec_mode mode, uint8_t cur, uint8_t prev, uint8_t peer_key,
		     struct ipsec_sync_result *res)
{
	struct ipsec_sync_spec s;
	struct ipsec_sync_result r;
	struct diag d = { { 0 } };
	int err;

	make_spec(node, mode, cur, prev, peer_key, &s);
	enter(node == 1 ? ns1 : ns2);
	err = xfrm_ipsec_sync(&s, &r, &d);
	printf("# node-%d sync %s key %u prev %u peer-key %u: %s sa +%u ~%u -%u pol +%u ~%u -%u\n",
	       node, mode == IPSEC_MODE_TUNNEL ? "tunnel" : "transport", cur, prev, peer_key,
	       err ? d.msg : "ok", r.sa_added, r.sa_replaced, r.sa_removed, r.pol_added,
	       r.pol_replaced, r.pol_removed);
	if (res)
		*res = r;
	return err;
}

static int status_of(int node, struct ipsec_status *st, int print)
{
	struct diag d = { { 0 } };
	char buf[4096];
	int err;

	enter(node == 1 ? ns1 : ns2);
	err = xfrm_ipsec_status(st, &d);
	if (err) {
		printf("# node-%d status: %s\n", node, d.msg);
		return err;
	}
	if (print) {
		char *line, *save = NULL;

		xfrm_ipsec_status_format(st, buf, sizeof(buf));
		for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			printf("# node-%d | %s\n", node, line);
	}
	return 0;
}

/* rotation steps, driven by the stream's progress */
static int rot_step;
static double rot_t[6];

static void rotation_hook(uint64_t received)
{
	static const uint64_t at[] = { STREAM_BYTES / 4, STREAM_BYTES * 2 / 5, STREAM_BYTES * 11 / 20,
				       STREAM_BYTES * 3 / 4 };
	struct ipsec_status st;

	if (rot_step >= 4 || received < at[rot_step])
		return;
	set_phase(2 + rot_step); /* phases 2..5 */
	switch (rot_step) {
	case 0: /* node-1 learns key 4; node-2 still announces 3: node-1 keeps sending with 3 */
		check(sync_node(1, IPSEC_MODE_TUNNEL, 4, 3, 3, NULL) == 0, "rotation 1: node-1 installs key 4 (out stays 3)");
		break;
	case 1: /* node-2 installs key 4 and switches (node-1 announces 4 now) */
		check(sync_node(2, IPSEC_MODE_TUNNEL, 4, 3, 4, NULL) == 0, "rotation 2: node-2 switches to key 4");
		break;
	case 2: /* node-1 sees node-2 on key 4: switches */
		check(sync_node(1, IPSEC_MODE_TUNNEL, 4, 3, 4, NULL) == 0, "rotation 3: node-1 switches to key 4");
		if (status_of(1, &st, 1) == 0)
			check(st.keys_in_use == 4, "node-1 during rotation: Keys in use %zu (want 4: in+out x keys 3,4)",
			      st.keys_in_use);
		break;
	case 3: /* grace period over: key 3 goes */
		check(sync_node(1, IPSEC_MODE_TUNNEL, 4, 0, 4, NULL) == 0 &&
		      sync_node(2, IPSEC_MODE_TUNNEL, 4, 0, 4, NULL) == 0, "rotation 4: both nodes drop key 3");
		if (status_of(1, &st, 0) == 0)
			check(st.keys_in_use == 2, "node-1 after the grace period: Keys in use %zu (want 2)",
			      st.keys_in_use);
		break;
	}
	rot_t[rot_step] = now_s();
	rot_step++;
}

/* "; kernel config: CONFIG_INET_ESP not set, ..." from /proc/config.gz, for SKIP reasons */
static void config_note(char *out, size_t len)
{
	static const char *syms[] = { "CONFIG_XFRM_USER", "CONFIG_INET_ESP", "CONFIG_CRYPTO_GCM",
				      "CONFIG_CRYPTO_SEQIV" };
	char line[256];
	gzFile f = gzopen("/proc/config.gz", "r");
	size_t off, i;
	int lines = 0;
	char val[4][64] = { { 0 } };

	out[0] = '\0';
	if (!f)
		return;
	while (lines++ < 100000 && gzgets(f, line, sizeof(line))) {
		for (i = 0; i < 4; i++) {
			size_t n = strlen(syms[i]);
			const char *p = line[0] == '#' ? line + 2 : line;

			if (strncmp(p, syms[i], n) == 0 && (p[n] == '=' || p[n] == ' ')) {
				line[strcspn(line, "\n")] = '\0';
				snprintf(val[i], sizeof(val[i]), "%s", p[n] == '=' ? p + n + 1 : "not set");
			}
		}
	}
	gzclose(f);
	off = (size_t)snprintf(out, len, " (/proc/config.gz: ");
	for (i = 0; i < 4 && off < len; i++)
		off += (size_t)snprintf(out + off, len - off, "%s%s=%s", i ? " " : "", syms[i] + 7,
				       val[i][0] ? val[i] : "?");
	if (off < len)
		snprintf(out + off, len - off, ")");
}

/* ---- main -------------------------------------------------------------------------------- */

static unsigned esp_sum(int ph, int dir, int spi)
{
	return cap.esp[ph][dir][spi];
}

static unsigned esp_other(int ph, int dir, int want_a, int want_b)
{
	unsigned n = 0;
	int s;

	for (s = 0; s <= 16; s++)
		if (s != want_a && s != want_b)
			n += cap.esp[ph][dir][s];
	return n;
}

int main(void)
{
	struct diag d = { { 0 } };
	struct ipsec_sync_result r;
	struct ipsec_status st1, st2;
	struct stream_result sr;
	char err[512];
	double t_start = now_s(), t;
	int cl, sv, n, e, has_stat;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(HARD_TIMEOUT_S);

	if (ipsec_keys_parse(KEYS_TEXT, strlen(KEYS_TEXT), "test-keys", &keys, &d) != 0) {
		printf("FAIL: %s\nRESULT pass=0 fail=1 skip=0\n", d.msg);
		return 1;
	}
	ns1 = ns_new();
	if (ns1 < 0) {
		printf("SKIP: cannot create a network namespace (%s): needs root / CAP_SYS_ADMIN\n",
		       strerror(-ns1));
		printf("RESULT pass=0 fail=0 skip=1\n");
		return 77;
	}
	/* ESP available? Asked inside node-1, never in the namespace we started in. */
	has_stat = access("/proc/net/xfrm_stat", R_OK) == 0;
	if (xfrm_ipsec_probe(&d) != 0) {
		char note[256];
		struct utsname u;

		config_note(note, sizeof(note));
		uname(&u);
		printf("SKIP: kernel %s cannot do ESP over XFRM%s: %s%s\n", u.release, note, d.msg,
		       has_stat ? "" : "; /proc/net/xfrm_stat absent");
		printf("RESULT pass=0 fail=0 skip=1\n");
		return 77;
	}
	check(1, "ESP over XFRM netlink available (probe SA added and removed in node-1)%s",
	      has_stat ? "" : " [no /proc/net/xfrm_stat]");
	ns2 = ns_new();
	if (ns2 < 0) {
		printf("FAIL: second namespace: %s\n", strerror(-ns2));
		return 1;
	}

	/* topology */
	enter(ns1);
	e = link_up("lo");
	if (!e)
		e = veth_create("veth-n1", "veth-n2", ns2);
	if (!e)
		e = addr_add("veth-n1", "192.0.2.1", 24);
	if (!e)
		e = link_up("veth-n1");
	if (!e)
		e = addr_add("lo", "10.244.0.10", 32);
	if (!e)
		e = route_add("10.244.1.0", 24, "192.0.2.2", "veth-n1", "10.244.0.10");
	check(e == 0, "node-1: veth-n1 192.0.2.1/24, pod 10.244.0.10 on lo, 10.244.1.0/24 via 192.0.2.2 (%s)",
	      e ? strerror(-e) : "ok");
	enter(ns2);
	e = link_up("lo");
	if (!e)
		e = addr_add("veth-n2", "192.0.2.2", 24);
	if (!e)
		e = link_up("veth-n2");
	if (!e)
		e = addr_add("lo", "10.244.1.10", 32);
	if (!e)
		e = route_add("10.244.0.0", 24, "192.0.2.1", "veth-n2", "10.244.1.10");
	check(e == 0, "node-2: veth-n2 192.0.2.2/24, pod 10.244.1.10 on lo, 10.244.0.0/24 via 192.0.2.1 (%s)",
	      e ? strerror(-e) : "ok");
	if (n_fail)
		goto done;
	/* plaintext first: the topology works without IPsec */
	n = udp_exchange(ns1, "10.244.0.10", ns2, "10.244.1.10", 4000, 2);
	check(n == 4, "pod-to-pod UDP works before IPsec (%d/4)", n);

	enter(ns1);
	e = capture_open(0, "veth-n1", err, sizeof(err));
	if (!e) {
		enter(ns2);
		e = capture_open(1, "veth-n2", err, sizeof(err));
	}
	if (e) {
		check(0, "%s", err);
		goto done;
	}
	set_phase(0);
	/* a foreign SA that no ciliate call may touch */
	enter(ns1);
	e = foreign_sa(1, FOREIGN_DST, FOREIGN_SPI);
	check(e == 0, "node-1: foreign SA (reqid 77, spi 0x%x) added (%s)", FOREIGN_SPI, e ? strerror(-e) : "ok");

	/* (a) tunnel mode, key 3 */
	t = now_s();
	check(sync_node(1, IPSEC_MODE_TUNNEL, 3, 0, 0, &r) == 0 && r.sa_added == 2 && r.pol_added == 3,
	      "node-1 sync key 3: 2 SAs + 3 policies added");
	check(sync_node(2, IPSEC_MODE_TUNNEL, 3, 0, 0, &r) == 0 && r.sa_added == 2 && r.pol_added == 3,
	      "node-2 sync key 3: 2 SAs + 3 policies added");
	printf("# both nodes programmed in %.3f s\n", now_s() - t);
	check(sync_node(1, IPSEC_MODE_TUNNEL, 3, 0, 0, &r) == 0 &&
	      r.sa_added + r.sa_replaced + r.sa_removed + r.pol_added + r.pol_replaced + r.pol_removed == 0,
	      "node-1 sync again: nothing changes");
	set_phase(1);
	n = udp_exchange(ns1, "10.244.0.10", ns2, "10.244.1.10", 5000, 10);
	check(n == 20, "(a) pod-to-pod UDP over IPsec: %d/20 datagrams intact", n);
	if (tcp_pair(ns1, "10.244.0.10", ns2, "10.244.1.10", 7000, &cl, &sv) == 0) {
		stream(cl, sv, 65536, NULL, 60, &sr);
		check(sr.received == 65536 && sr.first_bad == UINT64_MAX,
		      "(a) pod-to-pod TCP node-1 -> node-2: %llu/65536 bytes in order", (unsigned long long)sr.received);
		stream(sv, cl, 32768, NULL, 60, &sr);
		check(sr.received == 32768 && sr.first_bad == UINT64_MAX,
		      "(a) pod-to-pod TCP node-2 -> node-1: %llu/32768 bytes in order", (unsigned long long)sr.received);
		close(cl);
		close(sv);
	} else {
		check(0, "(a) TCP connection 10.244.0.10 -> 10.244.1.10:7000");
	}
	set_phase(7); /* scratch: teardown of the connection */
	printf("# (a) capture: %u packets, ESP spi 3: %u from node-1, %u from node-2\n", cap.total,
	       esp_sum(1, 0, 3), esp_sum(1, 1, 3));
	check(esp_sum(1, 0, 3) >= 10 && esp_sum(1, 1, 3) >= 10 && esp_other(1, 0, 3, 3) == 0 &&
	      esp_other(1, 1, 3, 3) == 0,
	      "(a) the wire carries ESP spi 3 both ways (%u / %u packets), no other SPI",
	      esp_sum(1, 0, 3), esp_sum(1, 1, 3));
	check(cap.pod_plain[1] == 0, "(a) no plaintext packet between the pods on the wire (%u)", cap.pod_plain[1]);
	e = status_of(1, &st1, 1);
	check(e == 0 && st1.keys_in_use == 2 && st1.n_policies == 3 && st1.max_seq > 0,
	      "node-1 status: Keys in use %zu, policies %zu, Max Seq. Number 0x%llx", st1.keys_in_use,
	      st1.n_policies, (unsigned long long)st1.max_seq);

	/* (b) rotation 3 -> 4 under a live stream */
	if (tcp_pair(ns1, "10.244.0.10", ns2, "10.244.1.10", 7001, &cl, &sv) == 0) {
		int one = 1;

		setsockopt(cl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		set_phase(1); /* until the first rotation step, counted with (a) */
		rot_step = 0;
		stream(cl, sv, STREAM_BYTES, rotation_hook, 300, &sr);
		set_phase(6);
		printf("# (b) stream: %llu bytes sent, %llu received in %.2f s (%.2f MB/s)\n",
		       (unsigned long long)sr.sent, (unsigned long long)sr.received, sr.secs,
		       sr.received / (sr.secs > 0 ? sr.secs : 1) / 1e6);
		check(rot_step == 4, "(b) all 4 rotation steps ran during the stream (%d)", rot_step);
		check(sr.received == STREAM_BYTES && sr.first_bad == UINT64_MAX,
		      "(b) every byte of the 2 MB stream arrived, in order (%llu/%u%s)",
		      (unsigned long long)sr.received, STREAM_BYTES,
		      sr.first_bad != UINT64_MAX ? ", a byte differs" : "");
		close(cl);
		close(sv);
	} else {
		check(0, "(b) TCP connection 10.244.0.10 -> 10.244.1.10:7001");
	}
	printf("# (b) ESP by phase (from node-1 spi3/spi4 | from node-2 spi3/spi4):\n");
	for (n = 1; n <= 5; n++)
		printf("#   phase %d: %u/%u | %u/%u\n", n, esp_sum(n, 0, 3), esp_sum(n, 0, 4),
		       esp_sum(n, 1, 3), esp_sum(n, 1, 4));
	check(esp_sum(2, 0, 3) > 0 && esp_sum(2, 0, 4) == 0,
	      "(b) step 1: node-1 has key 4 but keeps spi 3 while node-2 announces 3 (%u spi 3, %u spi 4)",
	      esp_sum(2, 0, 3), esp_sum(2, 0, 4));
	check(esp_sum(3, 1, 4) > 0, "(b) step 2: node-2 sends with spi 4 (%u packets)", esp_sum(3, 1, 4));
	check(esp_sum(3, 0, 3) > 0, "(b) step 2: node-1 still sends with spi 3 (%u), node-2 decrypts it",
	      esp_sum(3, 0, 3));
	check(esp_sum(4, 0, 4) > 0 && esp_sum(4, 1, 4) > 0,
	      "(b) step 3: both directions on spi 4 (%u / %u packets; spi 3 in flight: %u / %u)",
	      esp_sum(4, 0, 4), esp_sum(4, 1, 4), esp_sum(4, 0, 3), esp_sum(4, 1, 3));
	check(esp_sum(5, 0, 4) > 0 && esp_sum(5, 0, 3) == 0 && esp_sum(5, 1, 3) == 0,
	      "(b) after key 3 is dropped: only spi 4 (%u / %u packets), no spi 3 (%u / %u)",
	      esp_sum(5, 0, 4), esp_sum(5, 1, 4), esp_sum(5, 0, 3), esp_sum(5, 1, 3));
	for (n = 1; n <= 5; n++)
		if (esp_other(n, 0, 3, 4) || esp_other(n, 1, 3, 4) || cap.pod_plain[n])
			break;
	check(n == 6, "(b) no plaintext pod packet and no SPI but 3/4 in any phase");
	if (status_of(1, &st1, 1) == 0 && status_of(2, &st2, 1) == 0) {
		check(st1.errors_known && st2.errors_known && st1.errors == 0 && st2.errors == 0,
		      "no XFRM errors (xfrm_stat sums: node-1 %llu, node-2 %llu)",
		      (unsigned long long)st1.errors, (unsigned long long)st2.errors);
		check(st1.keys_in_use == 2 && st2.keys_in_use == 2 && st1.sas[0].spi == 4 && st1.sas[1].spi == 4,
		      "both nodes: 2 SAs, spi 4 (Max Seq. Number node-1 0x%llx/0x%llx)",
		      (unsigned long long)st1.max_seq, (unsigned long long)st1.max_seq_limit);
	} else {
		check(0, "status after rotation");
	}

	/* (c) transport mode, key 5 (HMAC-SHA256 + AES-CBC) */
	set_phase(6);
	check(sync_node(1, IPSEC_MODE_TRANSPORT, 5, 0, 0, &r) == 0 && r.sa_added == 2 && r.sa_removed == 2 &&
	      r.pol_removed == 3 && r.pol_added == 2, "(c) node-1 to transport mode, key 5 (cbc(aes)+hmac(sha256))");
	check(sync_node(2, IPSEC_MODE_TRANSPORT, 5, 0, 0, &r) == 0, "(c) node-2 to transport mode, key 5");
	check(sync_node(2, IPSEC_MODE_TRANSPORT, 5, 0, 0, &r) == 0 &&
	      r.sa_added + r.sa_replaced + r.sa_removed + r.pol_added + r.pol_replaced + r.pol_removed == 0,
	      "(c) node-2 sync again: nothing changes (auth+enc SAs read back equal)");
	n = udp_exchange(ns1, "192.0.2.1", ns2, "192.0.2.2", 5100, 10);
	check(n == 20, "(c) node-to-node UDP in transport mode: %d/20 intact", n);
	if (tcp_pair(ns1, "192.0.2.1", ns2, "192.0.2.2", 7100, &cl, &sv) == 0) {
		stream(cl, sv, 65536, NULL, 60, &sr);
		check(sr.received == 65536 && sr.first_bad == UINT64_MAX,
		      "(c) node-to-node TCP in transport mode: %llu/65536 bytes in order",
		      (unsigned long long)sr.received);
		close(cl);
		close(sv);
	} else {
		check(0, "(c) TCP connection 192.0.2.1 -> 192.0.2.2:7100");
	}
	set_phase(7);
	check(esp_sum(6, 0, 5) >= 10 && esp_sum(6, 1, 5) >= 10 && cap.node_plain[6] == 0,
	      "(c) wire: ESP spi 5 both ways (%u / %u), no plaintext UDP/TCP between the nodes (%u)",
	      esp_sum(6, 0, 5), esp_sum(6, 1, 5), cap.node_plain[6]);

	/* delete by SPI, flush, and the foreign SA survives */
	{
		unsigned removed = 0;

		enter(ns1);
		e = xfrm_ipsec_delete_spi(5, &removed, &d);
		check(e == 0 && removed == 2, "node-1: delete spi 5 removes its 2 SAs (%u)", removed);
		e = xfrm_ipsec_flush_ours(&removed, &d);
		check(e == 0 && removed == 2, "node-1: flush removes the 2 remaining policies (%u)", removed);
		e = status_of(1, &st1, 0);
		check(e == 0 && st1.keys_in_use == 0 && st1.n_policies == 0,
		      "node-1: nothing of ciliate's left (%zu SAs, %zu policies)", st1.keys_in_use, st1.n_policies);
		check(foreign_sa(0, FOREIGN_DST, FOREIGN_SPI) == 0, "node-1: the foreign SA (reqid 77) is still there");
		enter(ns2);
		e = xfrm_ipsec_flush_ours(&removed, &d);
		check(e == 0 && removed == 4, "node-2: flush removes 4 (%u)", removed);
	}

	/* a foreign SA where ciliate wants one: sync fails naming it, and leaves it alone */
	{
		struct ipsec_sync_spec sp;
		unsigned removed = 0;

		enter(ns1);
		e = foreign_sa(1, "192.0.2.1", 3);
		check(e == 0, "node-1: foreign SA dst 192.0.2.1 spi 3 (reqid 77) added");
		make_spec(1, IPSEC_MODE_TUNNEL, 3, 0, 0, &sp);
		memset(&d, 0, sizeof(d));
		e = xfrm_ipsec_sync(&sp, NULL, &d);
		printf("# node-1 sync over a foreign SA: %s\n", d.msg);
		check(e == -EEXIST && strstr(d.msg, "is not ciliate's") != NULL,
		      "node-1: sync refuses to replace a foreign SA with ciliate's id (%s)", strerror(-e));
		enter(ns1);
		check(foreign_sa(0, "192.0.2.1", 3) == 0, "node-1: the foreign SA spi 3 is untouched");
		foreign_sa(2, "192.0.2.1", 3);
		xfrm_ipsec_flush_ours(&removed, &d);

		/* marks (Cilium's datapath marks; programmed, not exercised by traffic here) */
		make_spec(1, IPSEC_MODE_TUNNEL, 3, 0, 0, &sp);
		sp.use_marks = true;
		e = xfrm_ipsec_sync(&sp, NULL, &d);
		if (e == 0)
			e = status_of(1, &st1, 0);
		for (n = 0; e == 0 && n < (int)st1.n_sas; n++) {
			const struct xfrm_sa_info *sa = &st1.sas[n];

			if (sa->dir == XFRM_SA_OUT ? sa->mark != 0x3E00 || sa->mark_mask != 0xFF00 :
						     sa->mark != 0x0D00 || sa->mark_mask != 0x0F00)
				e = -EINVAL;
		}
		check(e == 0 && st1.n_sas == 2,
		      "use_marks: out SA mark 0x3e00/0xff00 (or_encrypt_key(3)), in SA 0x0d00/0x0f00 (%s)",
		      e ? (d.msg[0] ? d.msg : "wrong marks") : "ok");
		enter(ns1);
		e = xfrm_ipsec_flush_ours(&removed, &d);
		check(e == 0 && removed == 5, "node-1: flush of the marked set removes 2 SAs + 3 policies (%u)",
		      removed);
	}

	/* the whole capture */
	drain();
	{
		struct pcap_stat ps0 = { 0 }, ps1 = { 0 };

		pcap_stats(cap.p[0], &ps0);
		pcap_stats(cap.p[1], &ps1);
		printf("# capture (frames sent by veth-n1 and veth-n2): %u packets (%u IPv4), pcap drops %u + %u\n",
		       cap.total, cap.ipv4, ps0.ps_drop, ps1.ps_drop);
		check(ps0.ps_drop == 0 && ps1.ps_drop == 0, "capture lost no packet (%u + %u dropped)",
		      ps0.ps_drop, ps1.ps_drop);
	}
	check(cap.leak_marker == 0, "no captured packet contains the payload marker (%u do)", cap.leak_marker);
	check(cap.leak_pair == 0, "no captured packet contains the inner pod address pair (%u do)", cap.leak_pair);

done:
	if (cap.p[0])
		pcap_close(cap.p[0]);
	if (cap.p[1])
		pcap_close(cap.p[1]);
	printf("# total %.2f s\n", now_s() - t_start);
	printf("RESULT pass=%d fail=%d skip=0\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}
