/* SPDX-License-Identifier: Apache-2.0 */
#include "traffic.h"

#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pktbuild.h"

#define TX_BATCH 32
#define RX_BATCH 64

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int frameset_build(struct frameset *fs, int n, const struct flow_spec *spec)
{
	memset(fs, 0, sizeof(*fs));
	fs->frames = calloc((size_t)n, sizeof(*fs->frames));
	fs->iov = calloc((size_t)n, sizeof(*fs->iov));
	fs->msgs = calloc((size_t)n, sizeof(*fs->msgs));
	if (!fs->frames || !fs->iov || !fs->msgs) {
		fprintf(stderr, "traffic: out of memory for %d frames\n", n);
		frameset_free(fs);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct pb_ipv4 ip = pb_ipv4_hdr(spec->saddr, spec->daddr);
		struct pb_udp udp = {.sport = (uint16_t)(spec->sport0 + i),
				     .dport = spec->dport,
				     .len = PB_AUTO};
		struct pb_pkt p;
		int len;

		static const uint8_t any_mac[6] = {0x02, 0, 0, 0, 0, 1};

		/* built as a frame; the raw IP socket gets it from the IP header on */
		pb_init(&p, fs->frames[i], TRAFFIC_FRAME_LEN);
		pb_eth(&p, any_mac, any_mac, PB_AUTO);
		pb_ipv4(&p, &ip);
		pb_udp(&p, &udp);
		pb_fill(&p, 0x5a, 18); /* 60 bytes on the wire: the Ethernet minimum */
		len = pb_finish(&p);
		if (len <= ETH_HLEN) {
			fprintf(stderr, "traffic: building frame %d failed\n", i);
			frameset_free(fs);
			return -1;
		}
		fs->iov[i].iov_base = fs->frames[i] + ETH_HLEN;
		fs->iov[i].iov_len = (size_t)len - ETH_HLEN;
		fs->msgs[i].msg_hdr.msg_name = &fs->dst;
		fs->msgs[i].msg_hdr.msg_namelen = sizeof(fs->dst);
		fs->msgs[i].msg_hdr.msg_iov = &fs->iov[i];
		fs->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	fs->dst.sin_family = AF_INET;
	fs->dst.sin_addr.s_addr = spec->daddr;
	fs->n = n;
	return 0;
}

void frameset_free(struct frameset *fs)
{
	free(fs->frames);
	free(fs->iov);
	free(fs->msgs);
	memset(fs, 0, sizeof(*fs));
}

void frameset_slice(const struct frameset *fs, int off, int n, struct frameset *out)
{
	*out = *fs;
	out->n = n;
	out->frames += off;
	out->iov += off;
	out->msgs += off;
}

int traffic_tx_socket(void)
{
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW); /* implies IP_HDRINCL */

	if (fd < 0)
		fprintf(stderr, "traffic: raw IP socket: %s\n", strerror(errno));
	return fd;
}

int traffic_rx_socket(uint32_t addr, uint16_t port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int buf = 8 << 20;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		fprintf(stderr, "traffic: UDP socket on port %u: %s\n", port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* room for a whole burst even if the drain falls behind (root may exceed rmem_max) */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	return fd;
}

static int drain_count(int rx_fd)
{
	uint8_t bufs[RX_BATCH][64];
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iov[RX_BATCH];
	int total = 0;

	for (int i = 0; i < RX_BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	for (;;) {
		int r = recvmmsg(rx_fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);

		if (r <= 0)
			return total;
		total += r;
	}
}

void traffic_drain(int rx_fd)
{
	drain_count(rx_fd);
}

int traffic_burst(int tx_fd, const struct frameset *fs, int rx_fd, int idle_ms,
		  volatile sig_atomic_t *stop, struct burst_result *r)
{
	double t0, t_last;
	int sent = 0;

	r->received = 0;
	t0 = now_s();
	while (sent < fs->n) {
		int b = fs->n - sent < TX_BATCH ? fs->n - sent : TX_BATCH;
		int k = sendmmsg(tx_fd, fs->msgs + sent, (unsigned int)b, 0);

		if (k < 0) {
			if (errno == EINTR && !*stop)
				continue;
			if (*stop)
				return 1;
			fprintf(stderr, "traffic: sendmmsg: %s\n", strerror(errno));
			return -1;
		}
		sent += k;
		r->received += drain_count(rx_fd);
	}
	t_last = now_s();
	while (r->received < fs->n && !*stop) {
		struct pollfd pfd = {.fd = rx_fd, .events = POLLIN};
		int got;

		if (poll(&pfd, 1, idle_ms) <= 0)
			break;
		got = drain_count(rx_fd);
		if (got) {
			r->received += got;
			t_last = now_s();
		}
	}
	r->seconds = t_last - t0;
	return *stop ? 1 : 0;
}
