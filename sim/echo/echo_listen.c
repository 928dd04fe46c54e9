/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-echo's listening sockets: each site's TCP and UDP listeners, opened inside the
 * site's network namespace; the fd limit they need; the pidfile once they all listen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo.h"

/* fds besides listeners and connections: epoll, signalfd, home namespace, stdio, pidfile */
#define FD_RESERVE 32
/* starting with fewer fds than this left for connections is an error */
#define MIN_CONNS 64

/*
 * Opens one listening socket of site s, in the current network namespace, which it keeps;
 * -EAFNOSUPPORT/-EADDRNOTAVAIL mean the family is unavailable.
 */
static int open_listener(struct server *srv, const struct site *s, enum src_kind kind,
			 int family, const void *addr, unsigned int port)
{
	struct sockaddr_storage ss = { 0 };
	struct listener *l;
	socklen_t sl;
	int fd, one = 1, err = 0;

	fd = socket(family, (kind == SRC_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
				    SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		sl = sizeof(*sin);
		if (kind == SRC_UDP && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)))
			err = -errno;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		sl = sizeof(*sin6);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
			err = -errno;
		if (!err && kind == SRC_UDP &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)))
			err = -errno;
	}
	if (!err && bind(fd, (struct sockaddr *)&ss, sl))
		err = -errno;
	if (!err && kind == SRC_TCP_LISTEN && listen(fd, 1024))
		err = -errno;
	if (!err && kind == SRC_TCP_LISTEN) {
		/* TCP Fast Open: data in a client's SYN is accepted (without a cookie), so a
		 * probe can send a SYN carrying data; best effort, older kernels lack it */
		int qlen = 64;

		setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen));
		setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, &one, sizeof(one));
	}
	if (err)
		goto out;
	l = malloc(sizeof(*l));
	if (!l) {
		err = -ENOMEM;
		goto out;
	}
	*l = (struct listener){ .kind = kind, .fd = fd, .family = family, .port = port,
				.site = s, .next = srv->listeners };
	err = echo_epoll_add(srv, fd, EPOLLIN, l);
	if (err) {
		free(l);
		goto out;
	}
	srv->listeners = l;
	srv->n_listeners++;
	return 0;
out:
	close(fd);
	return err;
}

/* Opens site s's listeners in the current network namespace. */
static int open_listeners(struct server *srv, const struct site *s)
{
	unsigned char addr4[sizeof(struct in_addr)] = { 0 };
	unsigned char addr6[sizeof(struct in6_addr)] = { 0 };
	bool want4 = true, want6 = true;
	unsigned int i, p;
	int err = 0;

	if (s->bind_addr) {
		if (inet_pton(AF_INET, s->bind_addr, addr4) == 1) {
			want6 = false;
		} else if (inet_pton(AF_INET6, s->bind_addr, addr6) == 1) {
			want4 = false;
		} else {
			echo_site_error(s, "--bind: \"%s\" is not an IP address", s->bind_addr);
			return -EINVAL;
		}
	}
	for (i = 0; i < 2; i++) {
		enum src_kind kind = i ? SRC_UDP : SRC_TCP_LISTEN;
		const struct port_list *ports = i ? &s->udp : &s->tcp;
		const char *proto = i ? "udp" : "tcp";

		for (p = 0; p < ports->n; p++) {
			if (want4) {
				err = open_listener(srv, s, kind, AF_INET, addr4, ports->v[p]);
				if (err) {
					echo_site_error(s, "cannot listen on %s %s:%u: %s", proto,
							s->bind_addr ? s->bind_addr : "0.0.0.0",
							ports->v[p], strerror(-err));
					return err;
				}
			}
			if (want6) {
				err = open_listener(srv, s, kind, AF_INET6, addr6, ports->v[p]);
				if (err && !s->bind_addr &&
				    (err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL)) {
					err = 0; /* no IPv6 in this namespace: IPv4 only */
				} else if (err) {
					echo_site_error(s, "cannot listen on %s [%s]:%u: %s", proto,
							s->bind_addr ? s->bind_addr : "::",
							ports->v[p], strerror(-err));
					return err;
				}
			}
		}
	}
	return 0;
}

/*
 * The TFO listeners above only take data from a SYN when the namespace's
 * net.ipv4.tcp_fastopen has the server bit (0x2; the default is 1, client only). Set it in
 * a site's own namespace (never in the process's: that may be the host's). Best effort: a
 * SYN's data is then merely acknowledged after the handshake instead.
 */
static void enable_tfo_server(void)
{
	char buf[32];
	ssize_t n;
	long v;
	int fd;

	/* /proc/sys/net follows the opener's network namespace: the site's, after setns */
	fd = open("/proc/sys/net/ipv4/tcp_fastopen", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		v = strtol(buf, NULL, 0);
		if (!(v & 0x2)) {
			n = snprintf(buf, sizeof(buf), "%ld\n", v | 0x2);
			n = pwrite(fd, buf, (size_t)n, 0); /* failing: left as it is */
			(void)n;
		}
	}
	close(fd);
}

/*
 * Opens site s's listeners inside its network namespace (sockets stay in the namespace they
 * were created in), then returns to the home namespace.
 */
static int open_site(struct server *srv, const struct site *s)
{
	int fd, err;

	if (!s->netns)
		return open_listeners(srv, s);
	fd = open(s->netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		echo_site_error(s, "netns %s: %s", s->netns, strerror(-err));
		return err;
	}
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	if (err) {
		echo_site_error(s, "netns %s: cannot enter: %s", s->netns, strerror(-err));
		return err;
	}
	if (s->tcp.n)
		enable_tfo_server();
	err = open_listeners(srv, s);
	if (setns(srv->home_ns, CLONE_NEWNET)) {
		/* the next site without --netns would listen in this one */
		err = -errno;
		echo_site_error(s, "cannot return to the original network namespace: %s",
				strerror(-err));
	}
	return err;
}

int echo_open_sites(struct server *srv)
{
	unsigned int i;
	int err;

	for (i = 0; i < srv->n_sites; i++) {
		if (srv->sites[i].netns && srv->home_ns < 0) {
			/* opened before entering any site's namespace: the way back */
			srv->home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
			if (srv->home_ns < 0) {
				err = -errno;
				echo_log(srv->log_id, "/proc/self/ns/net: %s", strerror(-err));
				return err;
			}
		}
		err = open_site(srv, &srv->sites[i]);
		if (err)
			return err;
	}
	return 0;
}

/* The most listening sockets the sites need: v4 and v6 for each port unless --bind. */
static unsigned long listeners_needed(const struct server *srv)
{
	unsigned long n = 0;
	unsigned int i;

	for (i = 0; i < srv->n_sites; i++) {
		const struct site *s = &srv->sites[i];

		n += (unsigned long)(s->tcp.n + s->udp.n) * (s->bind_addr ? 1 : 2);
	}
	return n;
}

/*
 * Makes room under RLIMIT_NOFILE for every listener, FD_RESERVE and at least MIN_CONNS
 * connections, raising the soft limit to the hard one when that is needed (thousands of
 * sites); --max-conns shrinks to the fds left.
 */
int echo_fit_fd_limit(struct server *srv)
{
	unsigned long listeners = listeners_needed(srv);
	rlim_t fixed = listeners + FD_RESERVE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	if (rl.rlim_cur < fixed + MIN_CONNS && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) && getrlimit(RLIMIT_NOFILE, &rl))
			return -errno;
	}
	if (rl.rlim_cur < fixed + MIN_CONNS) {
		echo_log(srv->log_id,
			 "too few file descriptors: %lu listening sockets and %d connections need "
			 "%llu, RLIMIT_NOFILE is %llu (hard limit %llu)",
			 listeners, MIN_CONNS, (unsigned long long)(fixed + MIN_CONNS),
			 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	if (rl.rlim_cur - fixed < srv->max_conns)
		srv->max_conns = (unsigned int)(rl.rlim_cur - fixed);
	return 0;
}

int echo_write_pidfile(const char *path)
{
	char tmp[4096];
	FILE *f;
	int err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f))
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}
