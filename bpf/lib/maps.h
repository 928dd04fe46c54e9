/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every map of the datapath, defined once. All are pinned by the loader under the node's
 * prefix (/sys/fs/bpf/ciliate/<node>/), so an agent restart keeps state and connections.
 */
#ifndef CILIATE_BPF_MAPS_H
#define CILIATE_BPF_MAPS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINTS_MAX);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
} ciliate_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINTS_MAX);
	__type(key, __u32); /* host-side veth ifindex */
	__type(value, struct endpoint_info);
} ciliate_lxc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LXC_SLOTS);
	__type(key, __u32); /* ifindex % LXC_SLOTS */
	__type(value, struct lxc_slot);
} ciliate_lxc_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, IPCACHE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
} ciliate_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
} ciliate_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_MAX);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} ciliate_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FRAG_MAX);
	__type(key, struct frag_key);
	__type(value, struct frag_ports);
} ciliate_frag SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, METRICS_ENTRIES);
	__type(key, __u32);
	__type(value, struct metrics_value);
} ciliate_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RING_BYTES);
} ciliate_events SEC(".maps");

/* Services (bpf/lib/lb.h): frontends with their backend slots, backends, reverse NAT. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_SERVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lb_key);
	__type(value, struct lb_service);
} ciliate_lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_BACKENDS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct lb_backend);
} ciliate_lb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_REVNAT_MAX);
	__type(key, __u32);
	__type(value, struct lb_reverse_nat);
} ciliate_lb_revnat SEC(".maps");

/* Maglev lookup tables (maglev.h): LB_MAGLEV_KEY(rev_nat_index, scope) -> an array of u32
 * (LB_MAGLEV_HDR header words, then the table) the agent creates per table. BPF_F_INNER_MAP:
 * an inner array may have any size (M changes without reloading); this one is the template. */
struct lb_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, LB_MAGLEV_HDR + 251);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, LB_MAGLEV_MAX);
	__type(key, __u32);
	__array(values, struct lb_maglev_inner);
} ciliate_lb_maglev SEC(".maps");

/* sessionAffinity: ClientIP (affinity.h): a client's backend per frontend, and the
 * (backend, frontend entry) pairs an affinity entry may still name. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_AFFINITY_MAX);
	__type(key, struct lb_affinity_key);
	__type(value, struct lb_affinity_value);
} ciliate_lb_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_AFFINITY_MATCH_MAX);
	__type(key, struct lb_affinity_match);
	__type(value, __u32);
} ciliate_lb_affinity_match SEC(".maps");

/* NodePort SNAT and masquerade translations (nat.h), both directions of each. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NAT_MAX);
	__type(key, struct nat_key);
	__type(value, struct nat_entry);
} ciliate_nat SEC(".maps");

/* loadBalancerSourceRanges of the frontends that have them. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, LB_SRC_RANGES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lb_src_range_key);
	__type(value, __u8);
} ciliate_lb_src_ranges SEC(".maps");

/* The XDP prefilter's denied source prefixes (prefilter.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PREFILTER_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct prefilter_key);
	__type(value, __u8);
} ciliate_prefilter SEC(".maps");

/* Egress gateway policies: (pod, destination prefix) -> gateway node and egress IP
 * (egress_gw.h, docs/EGRESS.md). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, EGRESS_GW_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct egress_gw_key);
	__type(value, struct egress_gw_value);
} ciliate_egress_gw SEC(".maps");

/* This node's addresses and NAT settings (the netdev programs). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_config);
} ciliate_node_cfg SEC(".maps");

/* Events the ring buffer had no room for (per CPU): the agent shows them as lost events. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ciliate_events_lost SEC(".maps");

#endif
