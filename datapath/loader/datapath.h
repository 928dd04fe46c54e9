/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading the datapath: opens the BPF objects (lxc: the pod programs; overlay: the tunnel
 * programs; netdev: the fabric device's TC programs; xdp: its XDP program; the last three
 * share the lxc object's maps) through their libbpf skeletons, writes the load-time configuration, and (for a node) pins every map under /sys/fs/bpf/ciliate/<node>/,
 * reusing maps already pinned there so that a reload keeps endpoints, policy and conntrack.
 */
#ifndef CILIATE_DATAPATH_H
#define CILIATE_DATAPATH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/diag.h"

#define CILIATE_BPFFS "/sys/fs/bpf"
#define CILIATE_PIN_ROOT CILIATE_BPFFS "/ciliate"

/* The node's VXLAN device in tunnel routing (external / collect_md mode): the agent attaches
 * from-overlay and to-overlay to it. The node's plumbing creates it (docs/AGENT.md). */
#define CILIATE_OVERLAY_DEV "vxlan0"

struct datapath_opts {
	const char *node;  /* pin under CILIATE_PIN_ROOT/<node>; NULL: private, unpinned maps */
	bool enable_ipv6;
	bool trace_all;    /* a trace event for every forwarded packet (replay, debugging) */
	bool no_events;    /* no ring-buffer events at all (benches: the cost of emitting them) */
	bool every_drop;   /* no drop aggregation: an event for every dropped packet (benches) */
	uint16_t nat_port_min; /* NAT port range; 0/0: NAT_PORT_MIN..NAT_PORT_MAX (abi.h) */
	uint16_t nat_port_max;
};

struct datapath; /* opaque */

/* Opens, configures and loads the datapath. */
int datapath_open(const struct datapath_opts *opts, struct datapath **out, struct diag *d);

/* What datapath_open found pinned and did with it (reused, migrated, replaced: one line
 * each, see pin_layout.h); "" for private maps or a first start. */
const char *datapath_upgrade_notes(const struct datapath *dp);

/* Releases file descriptors; pinned maps stay pinned. NULL is fine. */
void datapath_close(struct datapath *dp);

/* Program fd for a hook (enum ciliate_hook: the pod, overlay, netdev hooks and xdp); -ENOENT
 * if this build has no such hook. */
int datapath_prog_fd(const struct datapath *dp, int hook);

/* Map fd by pinned name (MAP_* in abi.h); -ENOENT if unknown. */
int datapath_map_fd(const struct datapath *dp, const char *name);

/* The pin directory ("" when unpinned). */
const char *datapath_pin_dir(const struct datapath *dp);

/* Removes a node's pinned maps and its pin directory. Idempotent. */
int datapath_unpin_node(const char *node, struct diag *d);

/* Mounts bpffs at /sys/fs/bpf if nothing is mounted there. */
int bpffs_ensure_mounted(struct diag *d);

#endif
