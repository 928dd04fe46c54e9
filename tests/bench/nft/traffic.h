/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounded UDP bursts for veth benches: prebuilt IPv4/UDP packets sent through a raw IP socket
 * (IP_HDRINCL) in the client namespace, so they leave through the client's own routing and
 * neighbour entry with linear headers as a pod's stack would send them (one new 5-tuple per
 * packet: the source port varies), and counted at a UDP socket in the server namespace. veth hands
 * each frame to the peer's backlog and the softirq that runs when the send returns carries it
 * through the whole path (router hooks, forwarding, the server's socket) on the sending CPU, so the
 * wall time of a burst, from the first send to the last receive, is the path's cost.
 */
#ifndef CILIATE_BENCH_TRAFFIC_H
#define CILIATE_BENCH_TRAFFIC_H

#include <signal.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define TRAFFIC_FRAME_LEN 64

struct frameset {
	int n;
	uint8_t (*frames)[TRAFFIC_FRAME_LEN];
	struct iovec *iov;
	struct mmsghdr *msgs;
	struct sockaddr_in dst;
};

struct flow_spec {
	uint32_t saddr, daddr; /* network order */
	uint16_t sport0;       /* frame i uses sport0 + i */
	uint16_t dport;
};

/* Builds n UDP packets (valid checksums, 60 bytes with Ethernet). 0 or -1 (message). */
int frameset_build(struct frameset *fs, int n, const struct flow_spec *spec);
void frameset_free(struct frameset *fs);

/* A view of n frames of fs from `off` on (shares fs's memory; do not free it). */
void frameset_slice(const struct frameset *fs, int off, int n, struct frameset *out);

/* A raw IP socket of the current namespace that sends frameset packets as they are. */
int traffic_tx_socket(void);

/* A UDP socket of the current namespace bound to addr:port (network order addr). */
int traffic_rx_socket(uint32_t addr, uint16_t port);

/* Discards everything queued on a receive socket. */
void traffic_drain(int rx_fd);

struct burst_result {
	double seconds; /* first send to last receive (or to the end of sending) */
	int received;
};

/* Sends every frame of fs in batches, counting arrivals on rx_fd; after the last send waits
 * until all arrived or nothing arrived for idle_ms. -1 on a send error, 1 when interrupted
 * (`stop` set), else 0. */
int traffic_burst(int tx_fd, const struct frameset *fs, int rx_fd, int idle_ms,
		  volatile sig_atomic_t *stop, struct burst_result *r);

#endif
