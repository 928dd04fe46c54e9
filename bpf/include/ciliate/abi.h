/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate map and event ABI: the only definition of every structure that crosses the
 * BPF/userspace boundary. Included verbatim by BPF C (clang -target bpf) and by userspace C11.
 * Layouts are fixed-size, explicitly padded, and checked with _Static_assert at the bottom:
 * a change here is an ABI change for pinned maps (bump CILIATE_ABI_VERSION).
 *
 * Byte order: addresses and ports are in network byte order everywhere (as on the wire);
 * identities, endpoint ids, counters and timestamps are host order.
 */
#ifndef CILIATE_ABI_H
#define CILIATE_ABI_H

#include <linux/types.h>
#include "drop_reasons.h"

#define CILIATE_ABI_VERSION 2 /* 2: direction-normalised conntrack keys */

/* Address families carried in every key and event (Linux values). */
#define CILIATE_AF_INET 2
#define CILIATE_AF_INET6 10

/* An IPv4 address uses v4 (first 4 bytes) with the remaining 12 bytes zero. */
union ciliate_addr {
	__be32 v4;
	__be32 v6[4];
	__u8 bytes[16];
};

/* ---- Reserved security identities (SPEC section 3) ---------------------------------- */
#define IDENTITY_UNKNOWN 0 /* also: wildcard in policy keys */
#define IDENTITY_HOST 1
#define IDENTITY_WORLD 2
#define IDENTITY_UNMANAGED 3
#define IDENTITY_HEALTH 4
#define IDENTITY_INIT 5
#define IDENTITY_REMOTE_NODE 6
#define IDENTITY_KUBE_APISERVER 7
#define IDENTITY_CLUSTER_MIN 256     /* first identity allocated for a label set */
#define IDENTITY_LOCAL_CIDR_MIN (1u << 24) /* CIDR identities, node-local scope */

/* ---- Hooks (observation points) ------------------------------------------------------ */
enum ciliate_hook {
	HOOK_UNSPEC = 0,
	HOOK_FROM_CONTAINER = 1, /* TC ingress on the pod's host-side veth */
	HOOK_TO_CONTAINER = 2,   /* TC egress on the pod's host-side veth */
	HOOK_FROM_NETDEV = 3,
	HOOK_TO_NETDEV = 4,
	HOOK_FROM_OVERLAY = 5,   /* TC ingress on the overlay (VXLAN) device */
	HOOK_XDP = 6,
	HOOK_TO_OVERLAY = 7,     /* TC egress on the overlay (VXLAN) device */
	HOOK_MAX,
};

/* Policy/traffic direction from the endpoint's point of view. */
enum ciliate_dir {
	DIR_INGRESS = 0,
	DIR_EGRESS = 1,
	DIR_MAX = 2,
};

/* ---- Endpoints ------------------------------------------------------------------------
 * One entry per local pod. Looked up by IP (ciliate_endpoints) and by the host-side veth
 * ifindex (ciliate_lxc): a program attached to a veth learns which endpoint it serves from
 * its ifindex, so one loaded program serves every pod.
 */
#define EP_F_INGRESS_ENFORCED (1u << 0) /* some policy isolates ingress */
#define EP_F_EGRESS_ENFORCED (1u << 1)  /* some policy isolates egress */
#define EP_F_HOST (1u << 2)             /* the node itself (hostNetwork) */

struct endpoint_key {
	union ciliate_addr addr;
	__u8 family;
	__u8 pad[3];
};

struct endpoint_info {
	__u32 ifindex;     /* host-side veth: redirect target for delivery */
	__u32 ep_id;       /* endpoint id: policy keys are scoped by it */
	__u32 identity;    /* security identity of the pod */
	__u32 flags;       /* EP_F_* */
	__u8 mac[6];       /* pod's eth0 MAC */
	__u8 node_mac[6];  /* host-side veth MAC: the pod's gateway */
	union ciliate_addr addr;
	__u8 family;
	__u8 pad[3];
};

/* ciliate_lxc_slots: a direct-mapped copy of ciliate_lxc (slot = ifindex % LXC_SLOTS), so that
 * "which endpoint does this veth serve", asked by every packet, is an array lookup (inlined by
 * the verifier) instead of a hash lookup. ciliate_lxc stays authoritative: a veth whose slot
 * holds another ifindex (a collision) or nothing is looked up there. Userspace writes both
 * through loader/maps.c only (slot first, so the array is never staler than the hash).
 */
struct lxc_slot {
	__u32 ifindex; /* the ciliate_lxc key held here; 0: empty */
	__u32 pad;
	struct endpoint_info info;
};
#define LXC_SLOTS 4096 /* a power of two */

/* ---- ipcache: LPM trie, IP prefix -> identity ------------------------------------------
 * prefixlen counts bits from `family` on: 32 + the IP prefix length.
 */
#define IPCACHE_F_LOCAL_NODE (1u << 0) /* address of this node */
#define IPCACHE_F_ENDPOINT (1u << 1)   /* a pod */

struct ipcache_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	union ciliate_addr addr;
};
#define IPCACHE_PREFIX_BASE 32

struct ipcache_value {
	__u32 identity;
	__be32 tunnel_endpoint; /* node IP hosting the prefix (0: not tunnelled) */
	__u8 flags;             /* IPCACHE_F_* */
	__u8 encrypt_key;       /* != 0: traffic to it is encrypted (WireGuard: its node is a
				 * configured peer, 1; IPsec: the key id) */
	__u16 pad;
};

/* ---- Policy: LPM trie per (endpoint, identity, direction) ------------------------------
 * prefixlen counts bits after the prefixlen field. The first 72 bits (ep_id, identity, dir)
 * are always matched; then 8 bits of protocol and up to 16 bits of port. So:
 *   72      any protocol, any port      (L3-only rule)
 *   80      one protocol, any port
 *   80 + n  one protocol, port prefix of n bits (ranges are split into prefixes)
 * identity 0 is the wildcard identity. The datapath looks up the exact identity and the
 * wildcard; a deny from either wins. Userspace turns allows covered by a same-identity deny
 * into denies, so longest-prefix matching can never let an allow shadow a deny.
 * For ICMP the "port" is the ICMP type.
 */
#define POLICY_PREFIX_FIXED 72
#define POLICY_PREFIX_PROTO 80
#define POLICY_PREFIX_FULL 96

struct policy_key {
	__u32 prefixlen;
	__u32 ep_id;
	__u32 identity;
	__u8 dir;    /* enum ciliate_dir */
	__u8 proto;  /* IPPROTO_* */
	__be16 dport;
};

#define POLICY_F_DENY (1u << 0)
#define POLICY_F_L4 (1u << 1) /* set by the loader: the key names a protocol (prefixlen > 72) */

struct policy_value {
	__u32 flags;   /* POLICY_F_* */
	__u32 rule_id; /* userspace index of the rule that produced it (for traces) */
};

/* ---- Conntrack ---------------------------------------------------------------------------
 * A connection is its original tuple plus the local endpoint's point of view: CT_OUT for
 * connections a local endpoint opened (its egress), CT_IN for connections a local endpoint
 * accepted (its ingress). Same-node traffic gets one entry of each kind.
 *
 * The map key is direction-normalised so that every packet of a connection, either way,
 * finds it with one lookup: it is the original (tuple, scope) when the tuple's source orders
 * below its destination, else the reversed tuple with the scope flipped, and then the entry
 * carries CT_F_REVERSED. A side orders as (address folded to 32 bits by XOR of its words) << 16
 * | port, each as the unsigned value in memory (bpf/lib/conntrack.h ct_side; userspace
 * loader/conntrack.c must agree). Tuples whose sides tie (source == destination) are stored
 * as they are, and looked up as two slots.
 */
enum ct_scope {
	CT_OUT = 0,
	CT_IN = 1,
	CT_SVC = 2, /* a client's connection to a service frontend (the tuple before DNAT): the
		     * backend chosen for it (lb.h), so later packets keep it */
};

struct ct_key {
	union ciliate_addr saddr;
	union ciliate_addr daddr;
	__be16 sport; /* ICMP echo: identifier in sport (request) / dport (reply) */
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 scope; /* enum ct_scope */
	__u8 pad;
};

/* Result of a lookup, reported in events and replay output. */
enum ct_status {
	CT_NEW = 0,
	CT_ESTABLISHED = 1,
	CT_REPLY = 2,
	CT_RELATED = 3,
};

/* ct_entry.tcp_state */
enum ct_tcp_state {
	CT_TCP_NONE = 0,     /* not TCP */
	CT_TCP_SYN_SENT = 1, /* SYN seen from the originator */
	CT_TCP_SYN_RECV = 2, /* SYN-ACK seen from the responder */
	CT_TCP_ESTABLISHED = 3,
	CT_TCP_CLOSING = 4,  /* FIN seen from one side */
	CT_TCP_CLOSED = 5,   /* RST, or FIN from both sides */
};

struct ct_entry {
	__u64 created_ns;  /* bpf_ktime_get_ns() at creation */
	__u64 expires_ns;  /* entry is dead after this (bpf_ktime_get_ns clock) */
	__u64 packets_fwd;
	__u64 bytes_fwd;
	__u64 packets_rev;
	__u64 bytes_rev;
	__u32 src_identity; /* identity of the originator */
	union {
		__u32 rule_id;    /* policy rule that admitted the connection */
		__u32 backend_id; /* CT_SVC entries: the backend chosen for the connection */
	};
	__u8 tcp_state;     /* enum ct_tcp_state */
	__u8 tcp_flags_fwd; /* OR of TCP flags seen from the originator */
	__u8 tcp_flags_rev; /* OR of TCP flags seen from the responder */
	__u8 flags;         /* CT_F_* */
	__u16 rev_nat_index; /* a service connection (the backend tuple): replies to the client
			      * get the frontend's address and port back (0: none) */
	__u8 pad[2];
};

/* The other side of the connection is a pod on this node: established packets need the
 * local-endpoint lookup (for delivery) only when this is set. */
#define CT_F_PEER_LOCAL (1u << 0)
/* The key is the connection's original tuple reversed, with the scope flipped. */
#define CT_F_REVERSED (1u << 1)
/* A north-south service connection delivered to a local backend by from-netdev: the
 * backend's replies get the frontend back as their source where they leave the pod
 * (from-container), since the client is not a pod whose hook could do it. */
#define CT_F_NODEPORT (1u << 2)

/* Conntrack lifetimes in seconds (Cilium-like defaults). */
#define CT_LIFETIME_TCP_SYN 60
#define CT_LIFETIME_TCP 21600
#define CT_LIFETIME_TCP_CLOSE 10
#define CT_LIFETIME_NONTCP 60

/* ---- IPv4 fragment tracking: non-first fragments carry no ports ---------------------- */
struct frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};

struct frag_ports {
	__be16 sport;
	__be16 dport;
};

/* ---- Metrics: per-CPU array indexed by reason * DIR_MAX + dir -------------------------- */
struct metrics_value {
	__u64 packets;
	__u64 bytes;
};
#define METRICS_ENTRIES (CILIATE_REASON_MAX * DIR_MAX)

/* ---- Events (ring buffer) --------------------------------------------------------------- */
enum ciliate_event_type {
	EVENT_TRACE = 1,
	EVENT_DROP = 2,
	EVENT_POLICY_VERDICT = 3,
};

/* Where a drop was decided: file id + line. File ids name the bpf/lib header. */
enum ciliate_src_file {
	SRC_UNKNOWN = 0,
	SRC_LXC = 1,
	SRC_PARSE = 2,
	SRC_CONNTRACK = 3,
	SRC_POLICY = 4,
	SRC_FORWARD = 5,
	SRC_FRAG = 6,
	SRC_NETDEV = 7,
	SRC_OVERLAY = 8,
	SRC_XDP = 9,
	SRC_MAX,
};

#define EVENT_F_IS_REPLY (1u << 0)
#define EVENT_F_POLICY_DENY_RULE (1u << 1)
#define EVENT_F_POLICY_AUDIT (1u << 2)
/* from-overlay: the packet carried no tunnel key (BPF_PROG_TEST_RUN, replay), so the source
 * identity came from the ipcache instead of the VNI */
#define EVENT_F_IDENTITY_FROM_IPCACHE (1u << 3)

/* policy-verdict match type */
enum policy_match {
	POLICY_MATCH_NONE = 0,
	POLICY_MATCH_L3_ONLY = 1,    /* identity, any port */
	POLICY_MATCH_L3_L4 = 2,      /* identity + port */
	POLICY_MATCH_L4_ONLY = 3,    /* any identity, port */
	POLICY_MATCH_ALL = 4,        /* any identity, any port */
	POLICY_MATCH_NOT_ENFORCED = 5,
};

struct ciliate_event {
	__u64 ts_ns;
	__u8 type;      /* enum ciliate_event_type */
	__u8 hook;      /* enum ciliate_hook */
	__u8 family;
	__u8 proto;
	__u16 reason;   /* enum ciliate_reason: a drop code for EVENT_DROP */
	__u16 src_line; /* drops: source line of the decision */
	__u8 src_file;  /* enum ciliate_src_file */
	__u8 ct_status; /* enum ct_status */
	__u8 dir;       /* enum ciliate_dir */
	__u8 flags;     /* EVENT_F_* */
	__u8 match;     /* policy-verdict: enum policy_match */
	__u8 tcp_flags;
	__u8 verdict;   /* TC/XDP action returned */
	__u8 pad0;
	__u32 ifindex;        /* device the hook runs on */
	__u32 target_ifindex; /* redirect target (0: none) */
	__u32 ep_id;          /* local endpoint involved (0: none) */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 rule_id;
	__u32 pkt_len;
	union ciliate_addr saddr;
	union ciliate_addr daddr;
	__be16 sport;
	__be16 dport;
	__be32 tunnel_endpoint; /* overlay hooks: the node tunnelled to / from (0: none) */
	__u16 rev_nat_index; /* a packet a service translated (lb.h, nodeport.h): the frontend
			      * it was sent to, so flows name the service (0: none) */
	__u16 pad1;
};

/* ---- Services (kube-proxy replacement; docs/SERVICES.md) ------------------------------
 * Cilium's layout (REFERENCE.md section 3) with a family in every key: a frontend (address,
 * port, protocol) has one entry per backend slot; slot 0 is the service itself (count, flags,
 * reverse-NAT index, affinity timeout), slots 1..count name backend ids.
 */
#define LB_SVC_F_EXTERNAL_IP (1u << 0)
#define LB_SVC_F_NODEPORT (1u << 1)
#define LB_SVC_F_EXT_LOCAL_SCOPE (1u << 2) /* externalTrafficPolicy: Local */
#define LB_SVC_F_HOSTPORT (1u << 3)
#define LB_SVC_F_AFFINITY (1u << 4)	   /* sessionAffinity: ClientIP */
#define LB_SVC_F_LOADBALANCER (1u << 5)
#define LB_SVC_F_ROUTABLE (1u << 6)	   /* reachable from outside the cluster */
#define LB_SVC_F_SOURCE_RANGE (1u << 7)	   /* loadBalancerSourceRanges apply */

#define LB_SVC_F2_INT_LOCAL_SCOPE (1u << 4) /* internalTrafficPolicy: Local */
#define LB_SVC_F2_TWO_SCOPES (1u << 5)
#define LB_SVC_F2_FWD_MODE_DSR (1u << 6)
#define LB_SVC_F2_MAGLEV (1u << 7)	    /* backend chosen through the service's Maglev table */

#define LB_SCOPE_EXTERNAL 0
#define LB_SCOPE_INTERNAL 1
/* bpf-lb-dsr-dispatch ipip, on the backend's node: every node's DSR frontends (NodePorts
 * with address 0: any node's), with this node's backends only. A decapsulated request names
 * the entry node's frontend; it is served by a backend here (bpf/lib/dsr_ipip.h). */
#define LB_SCOPE_DSR_LOCAL 2

struct lb_key {
	union ciliate_addr addr; /* frontend address */
	__be16 dport;
	__u16 backend_slot; /* 0: the service entry */
	__u8 proto;
	__u8 scope; /* LB_SCOPE_* (two-scope services: a local-backends entry) */
	__u8 family;
	__u8 pad;
};

struct lb_service {
	__u32 backend_id;  /* slots >= 1; slot 0: the affinity timeout in seconds */
	__u16 count;	   /* slot 0: number of backend slots (0: no usable backend) */
	__u16 rev_nat_index;
	__u8 flags;	   /* LB_SVC_F_* */
	__u8 flags2;	   /* LB_SVC_F2_* */
	__u8 pad[2];
};

#define LB_BACKEND_ACTIVE 0
#define LB_BACKEND_TERMINATING 1 /* keeps its flows, takes no new ones */
#define LB_BACKEND_QUARANTINED 2
#define LB_BACKEND_MAINTENANCE 3

struct lb_backend {
	union ciliate_addr addr;
	__be16 port;
	__u8 proto;
	__u8 state; /* LB_BACKEND_* */
	__u8 family;
	__u8 pad[3];
};

/* rev_nat_index -> the frontend replies are translated back to */
struct lb_reverse_nat {
	union ciliate_addr addr;
	__be16 port;
	__u8 family;
	__u8 pad;
};

struct lb_affinity_key {
	union ciliate_addr client;
	__u16 rev_nat_index;
	__u8 family;
	__u8 pad[5];
};

struct lb_affinity_value {
	__u64 last_used_ns; /* coarse clock */
	__u32 backend_id;
	__u32 pad;
};

/* (backend, frontend entry) pairs of services with ClientIP affinity, one per backend slot:
 * an affinity entry naming a backend without its pair (the backend left the service, or is
 * terminating) is dropped (bpf/lib/affinity.h). Value: a u32, always 1. */
struct lb_affinity_match {
	__u32 backend_id;
	__u16 rev_nat_index;
	__u8 scope; /* LB_SCOPE_* of the entry the backend has a slot in */
	__u8 pad;
};

/*
 * Maglev lookup tables (bpf/lib/maglev.h, docs/SERVICES.md "Maglev in the datapath"): a hash
 * of maps keyed by LB_MAGLEV_KEY(rev_nat_index, scope) whose values are arrays of u32 made by
 * the agent with BPF_F_INNER_MAP, so each may have its own size. An inner array holds a
 * header of LB_MAGLEV_HDR words, then the M backend ids of the table: [LB_MAGLEV_HDR + i] is
 * entry i. Header: the table size M and the tuple-hash seeds, so that a table and the M it
 * is indexed with are replaced in one atomic update (M may change while programs run).
 */
#define LB_MAGLEV_KEY(rev_nat_index, scope) ((__u32)(rev_nat_index) | ((__u32)(scope) << 16))
#define LB_MAGLEV_HDR_SIZE 0  /* M */
#define LB_MAGLEV_HDR_SEED4 1 /* IPv4 tuple-hash seed (bpf-lb-maglev-hash-seed bytes 4-7) */
#define LB_MAGLEV_HDR_SEED6 2 /* IPv6 tuple-hash seed (bytes 8-11) */
#define LB_MAGLEV_HDR 4	      /* header words (word 3 is reserved, 0) */
#define LB_MAGLEV_M_MAX 131071 /* the largest allowed table size */

/* ---- NAT: NodePort SNAT and BPF masquerade (bpf/lib/nat.h; docs/SERVICES.md) ----------
 * Cilium's layout (REFERENCE.md section 4): one LRU map, two entries per translated
 * connection. The OUT entry is keyed by the original tuple (as the packet left the client
 * side) and holds the new source; the IN entry is keyed by the reply's tuple as it arrives
 * (from the peer to the translated address and port) and holds the original source the
 * reply's destination becomes again.
 */
#define NAT_DIR_EGRESS 0 /* TUPLE_F_OUT */
#define NAT_DIR_INGRESS 1 /* TUPLE_F_IN */

struct nat_key {
	union ciliate_addr saddr;
	union ciliate_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 dir; /* NAT_DIR_* */
	__u8 pad;
};

#define NAT_F_NODEPORT (1u << 0)   /* NodePort SNAT of a forwarded service connection */
#define NAT_F_MASQUERADE (1u << 1) /* a pod's connection leaving the cluster */
#define NAT_F_NEEDS_CT (1u << 2)   /* Cilium's NeedsCT: the connection is also in conntrack */
#define NAT_F_DSR (1u << 3)        /* backend node: a DSR connection's replies leave from the
				    * frontend (to_addr/to_port), not translated back */
#define NAT_F_EGRESS_GW (1u << 4)  /* gateway node: a pod's connection SNATed to an egress IP
				    * (docs/EGRESS.md); replies go back to the pod's node */

struct nat_entry {
	__u64 created_ns;   /* bpf_ktime_get_ns() at creation */
	__u64 last_used_ns; /* coarse clock: LRU eviction is by use, this is for `bpf nat list` */
	union ciliate_addr to_addr; /* OUT: the new source; IN: the original source */
	__be16 to_port;
	__u8 flags; /* NAT_F_* */
	__u8 pad;
	__u16 rev_nat_index; /* NodePort IN entries: the frontend the reply's source becomes */
	__u8 pad2[2];
};

/* Ports NodePort SNAT and masquerade allocate from (Cilium's NODEPORT_PORT_MIN_NAT..MAX) */
#define NAT_PORT_MIN 32768
#define NAT_PORT_MAX 65535
#define NAT_COLLISION_RETRIES 32 /* then NO_MAPPING_FOR_NAT_MASQUERADE */

/* loadBalancerSourceRanges (LB_SVC_F_SOURCE_RANGE frontends): an LPM trie of (frontend,
 * client prefix); a client of such a frontend must match one. prefixlen counts from
 * rev_nat_index: LB_SRC_RANGE_PREFIX_BASE + the CIDR's length. */
struct lb_src_range_key {
	__u32 prefixlen;
	__u16 rev_nat_index;
	__u8 family;
	__u8 pad;
	union ciliate_addr addr;
};
#define LB_SRC_RANGE_PREFIX_BASE 32 /* rev_nat_index, family, pad */

/* ---- This node, as the netdev programs need it (one entry, written by the agent) ------- */
#define NODE_CFG_F_MASQUERADE (1u << 0) /* enable-bpf-masquerade */
#define NODE_CFG_F_KPR (1u << 1)	/* kube-proxy-replacement: NodePort/LB/externalIPs */
#define NODE_CFG_F_DSR_OPT (1u << 2)	/* bpf-lb-dsr-dispatch: opt */
#define NODE_CFG_F_DSR_IPIP (1u << 3)	/* bpf-lb-dsr-dispatch: ipip */
#define NODE_CFG_F_DSR_GENEVE (1u << 4) /* bpf-lb-dsr-dispatch: geneve */
#define NODE_CFG_F_DSR_ANY (NODE_CFG_F_DSR_OPT | NODE_CFG_F_DSR_IPIP | NODE_CFG_F_DSR_GENEVE)
#define NODE_CFG_F_XDP_ACCEL (1u << 5)	/* bpf-lb-acceleration: native (the XDP NodePort path) */
#define NODE_CFG_F_PREFILTER (1u << 6)	/* prefilter-deny-cidrs is not empty */
#define NODE_CFG_F_EGRESS_GW (1u << 7)	/* CiliumEgressGatewayPolicies exist (docs/EGRESS.md) */

/* node_config.encrypt (docs/ENCRYPTION.md) */
#define NODE_ENC_F_WIREGUARD (1u << 0) /* pod traffic to nodes with a known peer goes into wg */
#define NODE_ENC_F_STRICT (1u << 1)    /* enable-encryption-strict-mode: never in plaintext */

struct node_config {
	__be32 node_ip;		 /* the address NodePort SNAT and masquerade translate to */
	__be32 pod_cidr;	 /* this node's pod range */
	__be32 native_cidr;	 /* ipv4-native-routing-cidr: not masqueraded */
	__u8 pod_cidr_len;
	__u8 native_cidr_len;
	__u8 flags;		 /* NODE_CFG_F_* */
	__u8 lb_mode;		 /* LB_MODE_* as in the model (0 snat) */
	__u32 fabric_ifindex;	 /* the device from-netdev / to-netdev are attached to */
	__u16 mtu;		 /* its MTU: a DSR request growing past it gets ICMP frag needed */
	__u8 encrypt;		 /* NODE_ENC_F_* */
	__u8 strict_cidr_len;	 /* encryption-strict-mode-cidr */
	__be32 strict_cidr;
	__u32 wg_ifindex;	 /* the WireGuard device pod traffic is redirected into (0: none) */
};

/* ---- XDP prefilter (docs/XDP.md): source prefixes dropped at XDP, before anything else ----
 * An LPM trie of (family, address); prefixlen counts from the family byte:
 * PREFILTER_PREFIX_BASE + the CIDR's length. The value is unused (1). */
struct prefilter_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	union ciliate_addr addr;
};
#define PREFILTER_PREFIX_BASE 32 /* family, pad */
#define PREFILTER_MAX 16384

/* ---- Egress gateway (CiliumEgressGatewayPolicy; docs/EGRESS.md; REFERENCE.md section 5) ----
 * An LPM trie as Cilium's cilium_egress_gw_policy_v4: the pod's address is matched exactly,
 * the destination by prefix, so prefixlen = EGRESS_GW_PREFIX_BASE + the destination CIDR's
 * length and the longest destination prefix wins (an excludedCIDR inside a destinationCIDR
 * is longer). The value names the gateway node and the egress IP the gateway SNATs to. */
struct egress_gw_key {
	__u32 prefixlen;
	__be32 saddr; /* the pod */
	__be32 daddr; /* the destination prefix */
};
#define EGRESS_GW_PREFIX_BASE 32 /* saddr */
#define EGRESS_GW_MAX 16384

struct egress_gw_value {
	__be32 egress_ip;  /* 0: none (the gateway drops with NO_EGRESS_IP) */
	__be32 gateway_ip; /* the gateway node's address, or a sentinel below */
};
#define EGRESS_GW_NO_GATEWAY 0	  /* no node matches the gateway selector: NO_EGRESS_GATEWAY */
#define EGRESS_GW_EXCLUDED_CIDR 1 /* an excludedCIDR, in network order (htonl(1)): not via a
				   * gateway, ordinary masquerading */

/* ---- Layout checks: BPF and userspace must agree byte for byte ------------------------ */
#define CILIATE_ABI_CHECK(type, size) \
	_Static_assert(sizeof(struct type) == (size), "ABI: sizeof(struct " #type ") changed")

CILIATE_ABI_CHECK(endpoint_key, 20);
CILIATE_ABI_CHECK(endpoint_info, 48);
CILIATE_ABI_CHECK(lxc_slot, 56);
_Static_assert((LXC_SLOTS & (LXC_SLOTS - 1)) == 0, "ABI: LXC_SLOTS is a power of two");
CILIATE_ABI_CHECK(ipcache_key, 24);
CILIATE_ABI_CHECK(ipcache_value, 12);
CILIATE_ABI_CHECK(policy_key, 16);
CILIATE_ABI_CHECK(policy_value, 8);
CILIATE_ABI_CHECK(ct_key, 40);
CILIATE_ABI_CHECK(ct_entry, 64);
CILIATE_ABI_CHECK(frag_key, 12);
CILIATE_ABI_CHECK(frag_ports, 4);
CILIATE_ABI_CHECK(metrics_value, 16);
CILIATE_ABI_CHECK(ciliate_event, 96);
CILIATE_ABI_CHECK(lb_key, 24);
CILIATE_ABI_CHECK(lb_service, 12);
CILIATE_ABI_CHECK(lb_backend, 24);
CILIATE_ABI_CHECK(lb_reverse_nat, 20);
CILIATE_ABI_CHECK(lb_affinity_key, 24);
CILIATE_ABI_CHECK(lb_affinity_value, 16);
CILIATE_ABI_CHECK(lb_affinity_match, 8);
CILIATE_ABI_CHECK(nat_key, 40);
CILIATE_ABI_CHECK(nat_entry, 40);
CILIATE_ABI_CHECK(lb_src_range_key, 24);
CILIATE_ABI_CHECK(node_config, 32);
CILIATE_ABI_CHECK(prefilter_key, 24);
CILIATE_ABI_CHECK(egress_gw_key, 12);
CILIATE_ABI_CHECK(egress_gw_value, 8);

_Static_assert(__builtin_offsetof(struct ipcache_key, addr) == 8, "ABI: ipcache_key.addr");
_Static_assert(__builtin_offsetof(struct policy_key, dport) == 14, "ABI: policy_key.dport");
_Static_assert(__builtin_offsetof(struct ct_key, proto) == 36, "ABI: ct_key.proto");
_Static_assert(__builtin_offsetof(struct ciliate_event, saddr) == 52, "ABI: event.saddr");
_Static_assert(__builtin_offsetof(struct ciliate_event, rev_nat_index) == 92,
	       "ABI: event.rev_nat_index");
_Static_assert(__builtin_offsetof(struct lb_key, dport) == 16, "ABI: lb_key.dport");
_Static_assert(__builtin_offsetof(struct endpoint_info, addr) == 28, "ABI: endpoint_info.addr");

/* Pinned map names (under /sys/fs/bpf/ciliate/<node>/). */
#define MAP_ENDPOINTS "ciliate_endpoints"
#define MAP_LXC "ciliate_lxc"
#define MAP_LXC_SLOTS "ciliate_lxc_slots"
#define MAP_IPCACHE "ciliate_ipcache"
#define MAP_POLICY "ciliate_policy"
#define MAP_CT "ciliate_ct"
#define MAP_FRAG "ciliate_frag"
#define MAP_METRICS "ciliate_metrics"
#define MAP_EVENTS "ciliate_events"
#define MAP_EVENTS_LOST "ciliate_events_lost"
#define MAP_LB_SERVICES "ciliate_lb_services"	/* lb_key -> lb_service */
#define MAP_LB_BACKENDS "ciliate_lb_backends"	/* backend id (u32) -> lb_backend */
#define MAP_LB_REVNAT "ciliate_lb_revnat"	/* rev_nat_index (u32) -> lb_reverse_nat */
#define MAP_LB_MAGLEV "ciliate_lb_maglev"	/* LB_MAGLEV_KEY -> inner array (hash of maps) */
#define MAP_LB_AFFINITY "ciliate_lb_affinity"	/* lb_affinity_key -> lb_affinity_value (LRU) */
#define MAP_LB_AFFINITY_MATCH "ciliate_lb_affinity_match" /* lb_affinity_match -> u32 */
#define MAP_NAT "ciliate_nat"			/* nat_key -> nat_entry (LRU) */
#define MAP_LB_SRC_RANGES "ciliate_lb_src_ranges" /* lb_src_range_key -> u8 (LPM) */
#define MAP_NODE_CFG "ciliate_node_cfg"		/* 0 -> node_config */
#define MAP_PREFILTER "ciliate_prefilter"	/* prefilter_key -> u8 (LPM) */
#define MAP_EGRESS_GW "ciliate_egress_gw"	/* egress_gw_key -> egress_gw_value (LPM) */

/* Map sizes (max_entries). */
#define ENDPOINTS_MAX 4096
#define IPCACHE_MAX 65536
#define POLICY_MAX 65536
#define CT_MAX 262144
#define FRAG_MAX 8192
/* 10k services x 10 backends need 110k frontend slots (SERVICES.md); allocated on use */
#define LB_SERVICES_MAX 262144
#define LB_BACKENDS_MAX 262144
#define LB_REVNAT_MAX 65536
#define LB_MAGLEV_MAX 65536 /* tables: Maglev (frontend, scope) entries */
#define LB_AFFINITY_MAX 65536
#define LB_AFFINITY_MATCH_MAX 65536
#define NAT_MAX 131072
#define LB_SRC_RANGES_MAX 16384
#define EVENTS_RING_BYTES (8u << 20) /* ~80k events: 80 ms at 1 M/s (the reader can be descheduled that long) */

#endif
