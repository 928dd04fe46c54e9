/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A node's fabric for running the XDP program outside a cluster (replay, tests, benches;
 * docs/XDP.md "Replay"): the XDP NodePort path asks the kernel's FIB for the next hop
 * (bpf_fib_lookup), so BPF_PROG_TEST_RUN needs a device with the node's address, its
 * neighbours and routes. xdp_fabric_enter() moves the calling process into a network
 * namespace of its own (unshare) and builds there: a veth pair fab0/fab1, fab0 with the
 * node's address and MAC, every peer a permanent neighbour on fab0, the routes, forwarding
 * on. Nothing outside the new namespace is touched; it goes away with the process.
 *
 * MACs follow one convention so that goldens are reproducible: 0e:5b followed by the host's
 * IPv4 address (xdp_fabric_mac; the replay goldens' fabric MACs, pcaps/builder/gen_pcaps.c).
 */
#ifndef CILIATE_REPLAY_XDP_FABRIC_H
#define CILIATE_REPLAY_XDP_FABRIC_H

#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"

struct cluster_model;

#define XDP_FABRIC_MAX 64
#define XDP_FABRIC_DEV "fab0"
#define XDP_FABRIC_PEER_DEV "fab1"

struct xdp_fabric_route {
	uint32_t net; /* network order */
	uint8_t len;
	uint32_t via; /* 0: on-link */
	int overlay;  /* through a veth "ovl0" (tunnel routing): not the fabric */
};

struct xdp_fabric {
	uint32_t ip; /* the node's address, network order */
	uint8_t plen;
	uint32_t peers[XDP_FABRIC_MAX]; /* neighbours on fab0 (MACs by convention) */
	size_t npeers;
	struct xdp_fabric_route routes[XDP_FABRIC_MAX];
	size_t nroutes;
};

/* The conventional MAC of a host address: 0e:5b:a:b:c:d. */
void xdp_fabric_mac(uint32_t ip, uint8_t mac[6]);

/* The fabric of a scenario's node: its underlay address; the other nodes and the external
 * hosts as neighbours (those outside the underlay with an on-link host route, as the
 * simulator has them); the other nodes' pod ranges via them (native routing) or via the
 * overlay (tunnel routing). */
int xdp_fabric_of_node(const struct cluster_model *m, const char *node, struct xdp_fabric *f,
		       struct diag *d);

/* Enters a private network namespace holding f (see above); *ifindex gets fab0's. */
int xdp_fabric_enter(const struct xdp_fabric *f, uint32_t *ifindex, struct diag *d);

/* The same, but the calling thread returns to its namespace: *ns_fd (close it when done)
 * names the fabric's, for setns() around each BPF_PROG_TEST_RUN (replay: the process that
 * replays may go on to build a simulated cluster). */
int xdp_fabric_open(const struct xdp_fabric *f, uint32_t *ifindex, int *ns_fd, struct diag *d);

#endif
