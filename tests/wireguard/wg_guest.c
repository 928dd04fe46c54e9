/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the kernel-matrix WireGuard suites: see wg_guest.h. */
#include "wg_guest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int ns_new(void)
{
	int fd;

	if (unshare(CLONE_NEWNET) != 0)
		return -errno;
	fd = open("/proc/self/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

void ns_enter(int ns)
{
	if (setns(ns, CLONE_NEWNET) != 0) {
		printf("FAIL: setns: %s\nRESULT pass=0 fail=1 skip=0\n", strerror(errno));
		exit(1);
	}
}

/* ---- rtnetlink ----------------------------------------------------------------------------- */

static int rt_request(struct nlmsghdr *nlh)
{
	struct mnl_socket *s = mnl_socket_open(NETLINK_ROUTE);
	char buf[8192];
	unsigned seq;
	int ret = -EIO, rounds = 0;

	if (!s)
		return -errno;
	seq = nlh->nlmsg_seq = (unsigned)time(NULL) ^ 0x5a5a;
	if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0 || mnl_socket_sendto(s, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	while (rounds++ < 32) {
		ssize_t n = mnl_socket_recvfrom(s, buf, sizeof(buf));
		int r;

		if (n < 0) {
			ret = -errno;
			break;
		}
		r = mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(s), NULL, NULL);
		if (r == MNL_CB_ERROR) {
			ret = -errno;
			break;
		}
		if (r == MNL_CB_STOP) {
			ret = 0;
			break;
		}
	}
out:
	mnl_socket_close(s);
	return ret;
}

int rt_link_up(const char *ifname)
{
	char buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	unsigned idx = if_nametoindex(ifname);

	if (!idx)
		return -ENODEV;
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_index = (int)idx;
	ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	return rt_request(nlh);
}

int rt_veth(const char *name, const char *peer, int peer_ns)
{
	char buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	struct nlattr *info, *data, *pn;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	(void)ifi;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	pn = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_ns);
	mnl_attr_nest_end(nlh, pn);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	return rt_request(nlh);
}

int rt_addr(const char *ifname, const char *addr, unsigned prefix)
{
	char buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	struct in_addr a;
	unsigned idx = if_nametoindex(ifname);

	if (!idx)
		return -ENODEV;
	if (inet_pton(AF_INET, addr, &a) != 1)
		return -EINVAL;
	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (uint8_t)prefix;
	ifa->ifa_index = idx;
	mnl_attr_put(nlh, IFA_LOCAL, 4, &a);
	mnl_attr_put(nlh, IFA_ADDRESS, 4, &a);
	return rt_request(nlh);
}

int rt_route(const char *dst, unsigned prefix, const char *gw, const char *ifname, const char *src)
{
	char buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	struct in_addr a;
	unsigned idx = if_nametoindex(ifname);

	if (!idx)
		return -ENODEV;
	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (uint8_t)prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (inet_pton(AF_INET, dst, &a) != 1)
		return -EINVAL;
	mnl_attr_put(nlh, RTA_DST, 4, &a);
	if (gw) {
		if (inet_pton(AF_INET, gw, &a) != 1)
			return -EINVAL;
		mnl_attr_put(nlh, RTA_GATEWAY, 4, &a);
	}
	if (src) {
		if (inet_pton(AF_INET, src, &a) != 1)
			return -EINVAL;
		mnl_attr_put(nlh, RTA_PREFSRC, 4, &a);
	}
	mnl_attr_put_u32(nlh, RTA_OIF, idx);
	return rt_request(nlh);
}

int sysctl_set(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	close(fd);
	return n < 0 ? -errno : 0;
}

int pair_make(struct pair *p, char *err, size_t errlen)
{
	static const char *node[3] = { "", "192.0.2.1", "192.0.2.2" };
	static const char *pod[3] = { "", "10.244.0.10", "10.244.1.10" };
	static const char *veth[3] = { "", "veth-n1", "veth-n2" };
	int n, e = 0;

	memset(p, 0, sizeof(*p));
	for (n = 1; n <= 2; n++) {
		p->ns[n] = ns_new();
		if (p->ns[n] < 0) {
			snprintf(err, errlen, "network namespace: %s", strerror(-p->ns[n]));
			return p->ns[n];
		}
		sysctl_set("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
		sysctl_set("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	}
	ns_enter(p->ns[1]);
	e = rt_veth("veth-n1", "veth-n2", p->ns[2]);
	if (e) {
		snprintf(err, errlen, "veth pair: %s", strerror(-e));
		return e;
	}
	for (n = 1; n <= 2 && !e; n++) {
		ns_enter(p->ns[n]);
		if (!(e = rt_link_up("lo")) && !(e = rt_addr(veth[n], node[n], 24)) &&
		    !(e = rt_link_up(veth[n])) && !(e = rt_addr("lo", pod[n], 32)))
			continue;
		snprintf(err, errlen, "node-%d: %s %s, pod %s: %s", n, veth[n], node[n], pod[n], strerror(-e));
	}
	return e;
}

/* ---- keys ---------------------------------------------------------------------------------- */

int x25519_new(uint8_t priv[32], uint8_t pub[32])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
	EVP_PKEY *k = NULL;
	size_t l1 = 32, l2 = 32;
	int ok;

	ok = c && EVP_PKEY_keygen_init(c) == 1 && EVP_PKEY_keygen(c, &k) == 1 &&
	     EVP_PKEY_get_raw_private_key(k, priv, &l1) == 1 && EVP_PKEY_get_raw_public_key(k, pub, &l2) == 1 &&
	     l1 == 32 && l2 == 32;
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -1;
}

int x25519_pub(const uint8_t priv[32], uint8_t pub[32])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
	size_t l = 32;
	int ok = k && EVP_PKEY_get_raw_public_key(k, pub, &l) == 1 && l == 32;

	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

void key_b64(const uint8_t key[32], char out[45])
{
	EVP_EncodeBlock((unsigned char *)out, key, 32);
}

/* ---- WireGuard nodes ----------------------------------------------------------------------- */

int wg_node_setup(const struct pair *p, int n, const uint8_t priv[32], const uint8_t peer_pub[32],
		  struct diag *d)
{
	struct wg_nl_allowed_ip aip = { .family = AF_INET, .prefix = 24 };
	struct wg_nl_peer peer = { .has_endpoint = true, .endpoint_port = WG_PORT, .keepalive = -1,
				   .replace_allowed_ips = true, .allowed_ips = &aip, .n_allowed_ips = 1 };
	struct wg_nl_config c = { .has_private_key = true, .listen_port = WG_PORT, .replace_peers = true,
				  .peers = &peer, .n_peers = 1 };
	int e;

	memcpy(c.private_key, priv, 32);
	memcpy(peer.public_key, peer_pub, 32);
	inet_pton(AF_INET, n == 1 ? "192.0.2.2" : "192.0.2.1", &peer.endpoint);
	inet_pton(AF_INET, n == 1 ? "10.244.1.0" : "10.244.0.0", &aip.ip);
	ns_enter(p->ns[n]);
	e = wg_nl_link_add(WG_IFNAME, WG_MTU, d);
	if (!e)
		e = wg_nl_set(WG_IFNAME, &c, d);
	return e;
}

int pod_route(const struct pair *p, int n, int via_wg)
{
	ns_enter(p->ns[n]);
	if (via_wg)
		return rt_route(n == 1 ? "10.244.1.0" : "10.244.0.0", 24, NULL, WG_IFNAME,
				n == 1 ? "10.244.0.10" : "10.244.1.10");
	return rt_route(n == 1 ? "10.244.1.0" : "10.244.0.0", 24, n == 1 ? "192.0.2.2" : "192.0.2.1",
			n == 1 ? "veth-n1" : "veth-n2", n == 1 ? "10.244.0.10" : "10.244.1.10");
}

/* ---- sockets ------------------------------------------------------------------------------- */

int sock_in(int ns, int type, const char *addr, unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd;

	ns_enter(ns);
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

int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };

	return poll(&p, 1, ms) == 1 && (p.revents & ev);
}

int udp_exchange(int ns_a, const char *a, int ns_b, const char *b, unsigned port, int n,
		 const char *marker, int wait_ms)
{
	int sa = sock_in(ns_a, SOCK_DGRAM, a, port), sb = sock_in(ns_b, SOCK_DGRAM, b, port + 1);
	struct sockaddr_in to[2] = { { .sin_family = AF_INET, .sin_port = htons((uint16_t)(port + 1)) },
				     { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) } };
	int ok = 0, i, dir;

	if (sa < 0 || sb < 0)
		goto out;
	inet_pton(AF_INET, b, &to[0].sin_addr);
	inet_pton(AF_INET, a, &to[1].sin_addr);
	for (i = 0; i < n; i++)
		for (dir = 0; dir < 2; dir++) {
			char msg[128], got[256];
			int len = snprintf(msg, sizeof(msg), "%s udp %d dir %d", marker, i, dir);
			int tx = dir ? sb : sa, rx = dir ? sa : sb;
			ssize_t r;

			if (sendto(tx, msg, (size_t)len, 0, (const struct sockaddr *)&to[dir], sizeof(to[dir])) != len)
				continue;
			if (!wait_fd(rx, POLLIN, wait_ms))
				continue;
			r = recv(rx, got, sizeof(got), 0);
			if (r == len && memcmp(got, msg, (size_t)len) == 0)
				ok++;
		}
out:
	if (sa >= 0)
		close(sa);
	if (sb >= 0)
		close(sb);
	return ok;
}

int tcp_pair(int ns_a, const char *a, int ns_b, const char *b, unsigned port, int *cl, int *sv)
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
	if (!wait_fd(c, POLLOUT, 15000) || getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
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

/* ---- the checked stream -------------------------------------------------------------------- */

uint8_t stream_byte(const char *marker, uint64_t i)
{
	uint64_t block = i / 64;
	unsigned off = (unsigned)(i % 64);

	if (off < 24)
		return (uint8_t)marker[off];
	if (off < 32)
		return (uint8_t)(block >> (8 * (31 - off)));
	return (uint8_t)(block * 29 + off);
}

void stream_run(int tx, int rx, uint64_t total, const char *marker, stream_hook hook, stream_idle idle,
		void *ctx, double limit_s, struct stream_result *r)
{
	static uint8_t wbuf[16384], rbuf[65536];
	double t0 = now_s(), last_rx = t0;
	long iter = 0;

	memset(r, 0, sizeof(*r));
	r->first_bad = UINT64_MAX;
	while (r->received < total && iter++ < 10000000 && now_s() - t0 < limit_s &&
	       r->first_bad == UINT64_MAX) {
		struct pollfd p[2] = { { .fd = tx, .events = r->sent < total ? POLLOUT : 0 },
				       { .fd = rx, .events = POLLIN } };

		if (poll(p, 2, 100) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLOUT) {
			size_t n = total - r->sent < sizeof(wbuf) ? (size_t)(total - r->sent) : sizeof(wbuf);
			ssize_t w;
			size_t i;

			for (i = 0; i < n; i++)
				wbuf[i] = stream_byte(marker, r->sent + i);
			w = send(tx, wbuf, n, MSG_NOSIGNAL);
			if (w > 0)
				r->sent += (uint64_t)w;
			else if (w < 0 && errno != EAGAIN)
				break;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(rx, rbuf, sizeof(rbuf), 0), i;

			if (n == 0 || (n < 0 && errno != EAGAIN))
				break;
			for (i = 0; i < n; i++)
				if (rbuf[i] != stream_byte(marker, r->received + (uint64_t)i)) {
					r->first_bad = r->received + (uint64_t)i;
					break;
				}
			if (n > 0) {
				double t = now_s();

				if (t - last_rx > r->max_gap)
					r->max_gap = t - last_rx;
				last_rx = t;
				r->received += (uint64_t)n;
				if (hook)
					hook(r->received, ctx);
			}
		}
		if (idle)
			idle(ctx);
	}
	r->secs = now_s() - t0;
	if (idle)
		idle(ctx);
}
