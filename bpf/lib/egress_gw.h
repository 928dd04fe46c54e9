/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Egress gateway (CiliumEgressGatewayPolicy; docs/EGRESS.md; REFERENCE.md section 5), in
 * to-netdev: a pod's packet leaving the cluster is looked up in ciliate_egress_gw by (pod,
 * destination); the longest destination prefix wins.
 *
 * - No entry, or an excludedCIDR: not the gateway's: ordinary masquerading.
 * - No gateway node matched the policy's selector: dropped, NO_EGRESS_GATEWAY.
 * - The pod's node is not the gateway: the packet goes to the gateway node in the Geneve
 *   encapsulation built in BPF (dsr_geneve.h: UDP 6081, VNI = the pod's identity, no option),
 *   in native and tunnel routing alike. The gateway's from-netdev decapsulates it (a Geneve
 *   packet from a cluster node) and its stack forwards it out of its fabric device, where
 *   this stage meets it again.
 * - This node is the gateway (the pod's own node, or the packet came decapsulated from the
 *   pod's node): SNAT to the egress IP through the shared NAT engine (NAT_F_EGRESS_GW); no
 *   egress IP -> NO_EGRESS_IP. The replies are translated back by from-netdev's reverse NAT
 *   and go to the pod: to its veth here (the stack), or back through the tunnel to its node
 *   (egress_gw_reply()).
 */
#ifndef CILIATE_BPF_EGRESS_GW_H
#define CILIATE_BPF_EGRESS_GW_H

#include "common.h"
#include "maps.h"
#include "nat.h"
#include "dsr_geneve.h"
#include "nodeport.h"
#include "endpoint.h"
#include "events.h"

#define EGRESS_GW_PASS 0x7ffe /* not the egress gateway's: masquerading decides */

/*
 * A pod's packet with no room for the encapsulation to its gateway (a pod MTU that leaves no
 * 50 bytes, native routing): ICMP fragmentation needed from this node back to the pod, with
 * the fabric MTU less the encapsulation, delivered to the pod's veth, so that its path-MTU
 * cache fixes the next attempt (never a silent loss). Returns the verdict or -reason.
 */
static __attribute__((noinline, unused)) int egress_gw_frag_needed(struct __sk_buff *skb,
								  const struct pkt *p,
								  __be32 node_ip, __u32 mtu_left)
{
	struct endpoint_info *ep = endpoint_by_addr(p->family, &p->saddr);
	__u8 macs[12];
	int ret;

	if (!ep)
		return -REASON_FRAG_NEEDED;
	ret = icmp_frag_needed4(skb, p, node_ip, mtu_left);
	if (ret < 0)
		return ret;
	__builtin_memcpy(macs, ep->mac, 6);
	__builtin_memcpy(macs + 6, ep->node_mac, 6);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	return bpf_redirect(ep->ifindex, 0);
}

static __always_inline const struct egress_gw_value *egress_gw_lookup(__be32 pod, __be32 dst)
{
	struct egress_gw_key k = {
		.prefixlen = EGRESS_GW_PREFIX_BASE + 32,
		.saddr = pod,
		.daddr = dst,
	};

	return bpf_map_lookup_elem(&ciliate_egress_gw, &k);
}

/*
 * The gateway: a reply translated back to a pod (nat_rev4, NAT_F_EGRESS_GW). A pod of
 * another node gets it in Geneve to that node (VNI world: it comes from outside), whose
 * from-netdev decapsulates it: back through the tunnel, in native routing too (not the
 * native route, out of the device it came in on). Returns the verdict (a redirect), 1 (a
 * pod of this node: the stack delivers it) or -reason. A subprogram: from-netdev's stack is
 * nearly full.
 */
static __attribute__((noinline, unused)) int egress_gw_reply(struct pipeline *pl)
{
	struct pkt *p = &pl->pkt;
	__be32 node;
	int ret;

	if (endpoint_by_addr(p->family, &p->daddr))
		return 1;
	node = nodeport_backend_node(&p->daddr);
	if (!node)
		return 1; /* not a pod the ipcache knows: the stack decides */
	ret = dsr_geneve_encap4(pl->skb, p, node, NULL, IDENTITY_WORLD);
	if (ret < 0)
		return ret;
	pl->tunnel_endpoint = node;
	pl->target_ifindex = pl->skb->ifindex;
	return bpf_redirect_neigh(pl->skb->ifindex, NULL, 0, 0);
}

/*
 * A pod's packet to outside the cluster (`local`: a pod of this node; else a packet another
 * node sent to this gateway). Returns the TC verdict, -reason, or EGRESS_GW_PASS.
 */
static __always_inline int egress_gw_stage(struct pipeline *pl, const struct node_config *cfg,
					   int local)
{
	struct pkt *p = &pl->pkt;
	const struct egress_gw_value *v;
	__be32 gateway, egress_ip;
	int ret;

	v = egress_gw_lookup(p->saddr.v4, p->daddr.v4);
	if (!v || v->gateway_ip == bpf_htonl(EGRESS_GW_EXCLUDED_CIDR))
		return EGRESS_GW_PASS;
	gateway = v->gateway_ip;
	egress_ip = v->egress_ip;
	if (gateway == cfg->node_ip) {
		if (!egress_ip)
			return -REASON_NO_EGRESS_IP;
		ret = nat_snat4(pl, egress_ip, NAT_F_EGRESS_GW, 0);
		return ret < 0 ? ret : TC_ACT_OK;
	}
	if (!local)
		return EGRESS_GW_PASS; /* sent here for a gateway this node is no longer */
	if (gateway == EGRESS_GW_NO_GATEWAY)
		return -REASON_NO_EGRESS_GATEWAY;
	if (dsr_too_big(p, cfg->mtu, DSR_GENEVE_OVERHEAD)) {
		ret = egress_gw_frag_needed(pl->skb, p, cfg->node_ip,
					    cfg->mtu - DSR_GENEVE_OVERHEAD);
		if (ret < 0)
			return ret;
		/* counted and reported as the drop of the packet it replaces */
		drop_packet(pl, -REASON_FRAG_NEEDED, CILIATE_SRC_FILE, __LINE__);
		return ret;
	}
	ret = dsr_geneve_encap4(pl->skb, p, gateway, NULL, pl->src_identity);
	if (ret < 0)
		return ret;
	pl->tunnel_endpoint = gateway;
	pl->target_ifindex = pl->skb->ifindex;
	return bpf_redirect_neigh(pl->skb->ifindex, NULL, 0, 0);
}

#endif
