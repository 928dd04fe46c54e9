/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate-echo's UDP: one JSON datagram back per datagram, from the address it was sent to. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "echo.h"

/* The datagram's destination address (our side) from its IP_PKTINFO / IPV6_PKTINFO. */
static bool udp_dest(struct msghdr *msg, struct sockaddr_storage *dst, int *ifindex)
{
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct sockaddr_in *sin = (struct sockaddr_in *)dst;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			sin->sin_family = AF_INET;
			sin->sin_addr = pi.ipi_addr;
			*ifindex = pi.ipi_ifindex;
			return true;
		}
		if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)dst;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			sin6->sin6_family = AF_INET6;
			sin6->sin6_addr = pi.ipi6_addr;
			*ifindex = (int)pi.ipi6_ifindex;
			return true;
		}
	}
	return false;
}

/* Sends the reply from the address the request was sent to. */
static int udp_send(struct listener *l, const char *buf, size_t len,
		    const struct sockaddr_storage *to, socklen_t tolen,
		    const struct sockaddr_storage *from, bool have_from, int ifindex)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov,
			      .msg_iovlen = 1 };
	struct cmsghdr *cm;

	memset(&ctl, 0, sizeof(ctl));
	if (have_from) {
		msg.msg_control = ctl.buf;
		if (l->family == AF_INET) {
			struct in_pktinfo pi = { 0 };

			pi.ipi_spec_dst = ((const struct sockaddr_in *)from)->sin_addr;
			msg.msg_controllen = CMSG_SPACE(sizeof(pi));
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		} else {
			struct in6_pktinfo pi = { 0 };

			pi.ipi6_addr = ((const struct sockaddr_in6 *)from)->sin6_addr;
			pi.ipi6_ifindex = (unsigned int)ifindex;
			msg.msg_controllen = CMSG_SPACE(sizeof(pi));
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = IPPROTO_IPV6;
			cm->cmsg_type = IPV6_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		}
	}
	if (sendmsg(l->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
		return 0;
	if (have_from && errno == EINVAL) {
		/* e.g. a broadcast destination: let routing pick the source */
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		if (sendmsg(l->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return 0;
	}
	return -errno;
}

void echo_serve_udp(struct server *srv, struct listener *l)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct sockaddr_storage src, dst;
	struct echo_peer peer;
	struct iovec iov;
	struct msghdr msg;
	unsigned int dummy;
	bool have_dst;
	ssize_t n;
	json_t *reply;
	char *text;
	int i, ifindex, err;

	for (i = 0; i < BATCH; i++) {
		iov = (struct iovec){ .iov_base = srv->udp_buf, .iov_len = sizeof(srv->udp_buf) };
		msg = (struct msghdr){ .msg_name = &src, .msg_namelen = sizeof(src),
				       .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				       .msg_controllen = sizeof(ctl.buf) };
		n = recvmsg(l->fd, &msg, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				echo_log(&l->site->id, "udp port %u: recv: %s", l->port,
					 strerror(errno));
			return;
		}
		memset(&peer, 0, sizeof(peer));
		memset(&dst, 0, sizeof(dst));
		peer.protocol = "UDP";
		peer.server_port = l->port;
		ifindex = 0;
		have_dst = udp_dest(&msg, &dst, &ifindex);
		if (echo_addr_format((struct sockaddr *)&src, peer.client_ip,
				     sizeof(peer.client_ip), &peer.client_port))
			continue;
		if (have_dst)
			echo_addr_format((struct sockaddr *)&dst, peer.server_ip,
					 sizeof(peer.server_ip), &dummy);
		else
			snprintf(peer.server_ip, sizeof(peer.server_ip), "%s",
				 l->site->bind_addr ? l->site->bind_addr : "");
		reply = echo_reply_json(&l->site->id, &peer, NULL, srv->udp_buf, (size_t)n);
		text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
		json_decref(reply);
		if (!text) {
			echo_log(&l->site->id, "udp port %u: out of memory", l->port);
			return;
		}
		err = udp_send(l, text, strlen(text), &src, msg.msg_namelen, &dst, have_dst,
			       ifindex);
		free(text);
		if (err)
			echo_log(&l->site->id, "udp %s:%u -> %s:%u: reply: %s", peer.client_ip,
				 peer.client_port, peer.server_ip, peer.server_port,
				 strerror(-err));
		else if (!srv->quiet)
			echo_log(&l->site->id, "udp %s:%u -> %s:%u echo %zd bytes", peer.client_ip,
				 peer.client_port, peer.server_ip, peer.server_port, n);
	}
}
