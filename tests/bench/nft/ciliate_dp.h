/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ciliate side of the veth bench: a private (unpinned) datapath programmed through the
 * loader's map API with two endpoints (client, server), their ipcache entries and the
 * client's egress rules, attached with TC like the agent does: from_container on the
 * host-side veth's ingress, to_container on its egress.
 */
#ifndef CILIATE_BENCH_CILIATE_DP_H
#define CILIATE_BENCH_CILIATE_DP_H

#include <stdint.h>

#include "rulegen.h"

struct pod_wiring {
	int host_ifindex;    /* host-side veth (router namespace) */
	uint8_t pod_mac[6];  /* the pod's eth0 */
	uint8_t host_mac[6]; /* the host-side veth: the pod's gateway */
	uint32_t addr;	     /* network order */
	uint32_t ep_id, identity, flags;
};

struct ciliate_side; /* opaque */

/* Loads a datapath holding the two endpoints and the rules (client egress). NULL on error. */
struct ciliate_side *cside_open(const struct pod_wiring *client, const struct pod_wiring *server,
				const struct peer_rule *rules, unsigned int n);
void cside_close(struct ciliate_side *c);

/* Attaches the pod programs to both host-side veths (in the current namespace). */
int cside_attach(const struct ciliate_side *c);

/* Removes the clsact qdiscs from both veths (in the current namespace). */
int cside_detach(const struct ciliate_side *c);

/* Empties conntrack (the next packets are new connections again) and discards queued
 * events (so the ring has room for the next burst). Returns entries removed or -1. */
long cside_reset(struct ciliate_side *c);

#endif
