// SPDX-License-Identifier: Apache-2.0
/*
 * Programs on the node's fabric device (the interface holding the node's address):
 *   from-netdev  TC ingress: what arrives from the network
 *   to-netdev    TC egress:  what leaves the node for the network
 *
 * from-netdev pipeline: parse -> node config -> DSR requests encapsulated by entry nodes
 * (ipip, geneve: decapsulated, dsr_ipip.h, dsr_geneve.h) -> reverse NAT of replies (nat.h)
 * -> DSR requests carrying the option (dsr.h) -> service frontends (nodeport.h: NodePort,
 * LoadBalancer IPs, externalIPs) -> the stack.
 * to-netdev pipeline: parse -> node config -> encryption (pod traffic to other nodes into
 * the WireGuard device; strict mode drops what would leave in plaintext, encrypt.h) -> DSR replies (a pod's answer to a DSR request
 * leaves from the frontend, dsr.h) -> egress gateway (a selected pod's packet goes to its
 * gateway node, or is SNATed to the egress IP on the gateway, egress_gw.h) -> masquerade
 * (pods' traffic leaving the cluster gets the node's address, nat.h) -> out. from-netdev also records DSR requests for local pods.
 *
 * Everything else (node traffic, tunnel packets, routed pod traffic, what these programs
 * cannot parse) passes unchanged and without events: these hooks see all of the node's
 * traffic, and only what they translate or drop is theirs to report.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/clock.h"
#include "lib/parse.h"
#include "lib/events.h"
#include "lib/endpoint.h"
#include "lib/ipcache.h"
#include "lib/frag.h"
#include "lib/conntrack.h"
#include "lib/policy.h"
#include "lib/forward.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_NETDEV

const volatile __u8 cfg_enable_ipv6 = 0;
const volatile __u8 cfg_trace_all = 0;
const volatile __u8 cfg_no_events = 0;
const volatile __u8 cfg_every_drop = 0;
const volatile __u16 cfg_nat_port_min = NAT_PORT_MIN;
const volatile __u16 cfg_nat_port_max = NAT_PORT_MAX;

#include "lib/admit.h"
#include "lib/nodeport.h"
#include "lib/egress_gw.h"
#include "lib/encrypt.h"

/* IPv4 with its L4 header parsed, or nothing for these hooks to act on. */
static __always_inline int netdev_parse(struct pipeline *pl)
{
	if (parse_packet(pl->skb, &pl->pkt) < 0 || pl->pkt.vlan_depth)
		return 0;
	return pl->pkt.family == CILIATE_AF_INET && !(pl->pkt.flags & PKT_F_NO_L4);
}

/* The stage's outcome: a drop (reported with the stage's line) or the TC verdict. */
static __always_inline int netdev_verdict(struct pipeline *pl, int ret, __u16 line)
{
	if (ret < 0)
		return drop_packet(pl, ret, CILIATE_SRC_FILE, line);
	return forward_packet(pl, ret, REASON_CT_NEW + pl->ct_status);
}

#define NETDEV_VERDICT(pl, ret) netdev_verdict(pl, ret, __LINE__)

/*
 * A DSR request an entry node encapsulated for a backend here: IPIP (protocol 4) or Geneve
 * (UDP 6081) to this node's address, from another node of the cluster (anything else is not
 * ours: the stack decides). Decapsulated; an IPIP request is then served by one of this
 * node's backends, a Geneve one (DNATed already) goes on to its pod with its frontend
 * recorded for the replies. A pod's packet another node sent to this egress gateway comes
 * in Geneve too (without the option): decapsulated, it goes on to the stack, which forwards
 * it out of the fabric device, where to-netdev SNATs it (egress_gw.h). Returns the verdict, -reason, NODEPORT_PASS, or DSR_SERVE_LOCAL
 * (an IPIP request, decapsulated: for the frontends stage, with this node's backends).
 */
#define DSR_SERVE_LOCAL (NODEPORT_PASS - 1)

static __always_inline int dsr_decap_stage(struct pipeline *pl, const struct node_config *cfg)
{
	const struct dsr_geneve_opt4 *opt;
	struct pkt *p = &pl->pkt;
	int ipip, ret;

	ipip = p->proto == IPPROTO_IPIP && (cfg->flags & NODE_CFG_F_DSR_IPIP);
	if (!ipip && !(p->proto == IPPROTO_UDP && p->dport == bpf_htons(DSR_GENEVE_PORT) &&
		       (cfg->flags & (NODE_CFG_F_DSR_GENEVE | NODE_CFG_F_EGRESS_GW))))
		return NODEPORT_PASS;
	if (p->daddr.v4 != cfg->node_ip ||
	    ipcache_identity(p->family, &p->saddr) != IDENTITY_REMOTE_NODE)
		return NODEPORT_PASS;
	pl->tunnel_endpoint = p->saddr.v4;
	ret = ipip ? dsr_ipip_decap4(pl->skb, p) : dsr_geneve_decap4(pl->skb, p);
	if (ret < 0)
		return ret;
	ret = parse_packet(pl->skb, p); /* what it carried */
	if (ret < 0)
		return ret;
	if (p->family != CILIATE_AF_INET || p->vlan_depth)
		return -REASON_INVALID_PACKET_DROPPED;
	if (ipip)
		return DSR_SERVE_LOCAL;
	opt = dsr_geneve_found();
	if (opt && (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP)) {
		ret = dsr_record4(pl, p, opt->addr, opt->port);
		if (ret < 0)
			return ret;
	}
	pl->dst_identity = ipcache_identity(p->family, &p->daddr);
	return TC_ACT_OK;
}

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	struct pipeline pl = { .skb = skb, .hook = HOOK_FROM_NETDEV, .dir = DIR_INGRESS,
			       .now = clock_now_ns(), .ct_status = CT_ESTABLISHED };
	__u8 scope = LB_SCOPE_EXTERNAL, nat_flags = 0;
	struct node_config *cfg;
	__u16 rev_nat_index = 0;
	int ret;

	if (!netdev_parse(&pl))
		return TC_ACT_OK;
	cfg = node_config();
	if (!cfg || !cfg->node_ip)
		return TC_ACT_OK;

	if (cfg->flags & (NODE_CFG_F_DSR_IPIP | NODE_CFG_F_DSR_GENEVE | NODE_CFG_F_EGRESS_GW)) {
		ret = dsr_decap_stage(&pl, cfg);
		if (ret == DSR_SERVE_LOCAL) {
			scope = LB_SCOPE_DSR_LOCAL;
			goto frontends;
		}
		if (ret != NODEPORT_PASS)
			return NETDEV_VERDICT(&pl, ret);
	}

	/* replies of connections this node translated: NodePort SNAT and masquerade, and
	 * ICMP errors about them */
	if (pl.pkt.flags & PKT_F_ICMP_ERROR)
		ret = nat_rev_icmp_error4(skb, &pl.pkt);
	else
		ret = nat_rev4(&pl, &rev_nat_index, &nat_flags);
	if (ret > 0 && (nat_flags & NAT_F_NODEPORT)) {
		ret = nodeport_rev_frontend(&pl, rev_nat_index);
		if (ret == 0)
			ret = 1; /* translated: a reply, not a new packet for the frontends */
	}
	if (ret != 0) {
		pl.src_identity = ipcache_identity(pl.pkt.family, &pl.pkt.saddr);
		pl.dst_identity = ipcache_identity(pl.pkt.family, &pl.pkt.daddr);
		/* an egress gateway's reply for a pod of another node: back through the tunnel */
		if (ret > 0 && (nat_flags & NAT_F_EGRESS_GW))
			ret = egress_gw_reply(&pl);
		return NETDEV_VERDICT(&pl, ret < 0 ? ret : ret > 1 ? ret : TC_ACT_OK);
	}

	/* a DSR request for a pod here: its frontend, for the replies (dsr.h) */
	if ((cfg->flags & NODE_CFG_F_DSR_OPT) &&
	    pl.pkt.l4_off - pl.pkt.l3_off > sizeof(struct iphdr)) {
		ret = dsr_learn4(&pl);
		if (ret < 0)
			return NETDEV_VERDICT(&pl, ret);
	}

	/* service frontends served on this node */
	if (!(cfg->flags & NODE_CFG_F_KPR))
		return TC_ACT_OK;
frontends:
	pl.src_identity = ipcache_identity(pl.pkt.family, &pl.pkt.saddr);
	pl.peer_resolved = 1;
	ret = nodeport_lb(&pl, cfg, scope);
	if (ret == NODEPORT_PASS) /* an IPIP request for no frontend of ours is dropped */
		return scope == LB_SCOPE_EXTERNAL ? TC_ACT_OK
						  : NETDEV_VERDICT(&pl, -REASON_SERVICE_BACKEND_NOT_FOUND);
	return NETDEV_VERDICT(&pl, ret);
}

/* A pod's packet leaving the cluster: not to the native-routing range (other pods), not to
 * a node, not an ICMP error about a flow from outside. */
static __always_inline int leaves_cluster(const struct pkt *p, const struct node_config *cfg)
{
	__u32 id;

	if (addr_in_cidr4(p->daddr.v4, cfg->native_cidr, cfg->native_cidr_len))
		return 0;
	if (p->flags & PKT_F_ICMP_ERROR) /* a pod's error about a flow from outside */
		return 0;
	id = ipcache_identity(p->family, &p->daddr);
	/* other nodes reach pods directly (their addresses are not masqueraded to) */
	return id != IDENTITY_HOST && id != IDENTITY_REMOTE_NODE;
}

SEC("tc")
int to_netdev(struct __sk_buff *skb)
{
	struct pipeline pl = { .skb = skb, .hook = HOOK_TO_NETDEV, .dir = DIR_EGRESS,
			       .now = clock_now_ns(), .ct_status = CT_ESTABLISHED };
	struct node_config *cfg;
	int local, ret;

	if (!netdev_parse(&pl))
		return TC_ACT_OK;
	cfg = node_config();
	if (!cfg || !cfg->node_ip)
		return TC_ACT_OK;
	local = addr_in_cidr4(pl.pkt.saddr.v4, cfg->pod_cidr, cfg->pod_cidr_len);
	/* pod traffic to another node: into the WireGuard device, or dropped in strict mode
	 * when it would leave in plaintext (encrypt.h) */
	if (cfg->encrypt) {
		ret = encrypt_to_netdev(&pl, cfg, local);
		if (ret != ENCRYPT_PASS)
			return NETDEV_VERDICT(&pl, ret);
	}
	if (!local && !(cfg->flags & NODE_CFG_F_EGRESS_GW))
		return TC_ACT_OK;
	/* a pod's reply to a DSR request: from the frontend, straight to the client (a
	 * lookup per packet only where DSR is on) */
	ret = (local && (cfg->flags & NODE_CFG_F_DSR_ANY)) ? dsr_reply4(&pl) : 0;
	if (ret != 0) {
		pl.src_identity = IDENTITY_WORLD;
		pl.dst_identity = IDENTITY_WORLD;
		return NETDEV_VERDICT(&pl, ret < 0 ? ret : TC_ACT_OK);
	}
	/* only where there is something to do for a packet leaving the cluster (the check
	 * costs an ipcache lookup per packet) */
	if (!(cfg->flags & (NODE_CFG_F_EGRESS_GW | NODE_CFG_F_MASQUERADE)) ||
	    !leaves_cluster(&pl.pkt, cfg))
		return TC_ACT_OK;
	pl.src_identity = ipcache_identity(pl.pkt.family, &pl.pkt.saddr);
	pl.dst_identity = IDENTITY_WORLD;
	pl.peer_resolved = 1;
	/* egress gateway policies (egress_gw.h): a pod of this node, or one another node sent
	 * to this gateway */
	if (cfg->flags & NODE_CFG_F_EGRESS_GW) {
		ret = egress_gw_stage(&pl, cfg, local);
		if (ret != EGRESS_GW_PASS)
			return NETDEV_VERDICT(&pl, ret);
	}
	/* masquerade: a pod's packet leaving the cluster gets the node's address */
	if (!local || !(cfg->flags & NODE_CFG_F_MASQUERADE))
		return TC_ACT_OK;
	ret = nat_snat4(&pl, cfg->node_ip, NAT_F_MASQUERADE, 0);
	return NETDEV_VERDICT(&pl, ret < 0 ? ret : TC_ACT_OK);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
