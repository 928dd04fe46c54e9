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
 *   and routed to the pod: to its veth here, or to its node (the overlay in tunnel routing,
 *   the native route otherwise).
 */
#ifndef CILIATE_BPF_EGRESS_GW_H
#define CILIATE_BPF_EGRESS_GW_H

#include "common.h"
#include "maps.h"
#include "nat.h"
#include "dsr_geneve.h"

#define EGRESS_GW_PASS 0x7ffe /* not the egress gateway's: masquerading decides */

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
	ret = dsr_geneve_encap4(pl->skb, p, gateway, NULL, pl->src_identity);
	if (ret < 0)
		return ret;
	pl->tunnel_endpoint = gateway;
	pl->target_ifindex = pl->skb->ifindex;
	return bpf_redirect_neigh(pl->skb->ifindex, NULL, 0, 0);
}

#endif
