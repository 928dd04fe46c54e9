/* SPDX-License-Identifier: Apache-2.0 */
/*
 * North-south service traffic arriving on the node's fabric device (from-netdev;
 * docs/SERVICES.md "North-south"): NodePort on this node's address, LoadBalancer IPs and
 * externalIPs.
 *
 * - The frontend's external scope: with externalTrafficPolicy Local it holds only this node's
 *   backends, so a node without one drops (SERVICE_BACKEND_NOT_FOUND) and the client's
 *   address is always preserved. ClusterIPs are not served from outside the cluster.
 * - loadBalancerSourceRanges: a client outside them is dropped (DENIED_BY_LB_SRC_RANGE_CHECK).
 * - The backend comes from lb_select() (the connection's CT_SVC entry keeps it).
 * - A local backend: DNAT, the pod's ingress policy and conntrack as from-overlay does, and a
 *   redirect to its veth. The entry carries CT_F_NODEPORT, so the backend's replies get the
 *   frontend back as their source when they leave the pod (from-container).
 * - A remote backend: DNAT and SNAT to this node's address (nat.h, NAT_F_NODEPORT), then the
 *   stack routes it to the backend's node; the replies come back to this node, where
 *   nat_rev4() restores the client as destination and the frontend as source.
 */
#ifndef CILIATE_BPF_NODEPORT_H
#define CILIATE_BPF_NODEPORT_H

#include "common.h"
#include "admit.h"
#include "endpoint.h"
#include "forward.h"
#include "lb.h"
#include "nat.h"
#include "dsr.h"

#define NODEPORT_PASS 0x7fff /* not a frontend served here: the stack decides */

static __always_inline struct node_config *node_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ciliate_node_cfg, &zero);
}

static __always_inline int addr_in_cidr4(__be32 addr, __be32 net, __u8 len)
{
	__u32 mask = len >= 32 ? ~0u : len ? ~0u << (32 - len) : 0;

	return ((bpf_ntohl(addr) ^ bpf_ntohl(net)) & mask) == 0;
}

/* The frontend's entry for clients outside the cluster (the external scope). */
static __always_inline struct lb_service *nodeport_frontend(const struct pkt *p,
							    struct lb_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->addr = p->daddr;
	k->dport = p->dport;
	k->proto = p->proto;
	k->family = p->family;
	k->scope = LB_SCOPE_EXTERNAL;
	return bpf_map_lookup_elem(&ciliate_lb_services, k);
}

static __always_inline int nodeport_src_range_ok(const struct pkt *p, __u16 rev_nat_index)
{
	struct lb_src_range_key k = {
		.prefixlen = LB_SRC_RANGE_PREFIX_BASE + 32,
		.rev_nat_index = rev_nat_index,
		.family = p->family,
	};

	k.addr = p->saddr;
	return bpf_map_lookup_elem(&ciliate_lb_src_ranges, &k) != NULL;
}

/* A local backend: its ingress policy and conntrack here, then straight to its veth. */
static __always_inline int nodeport_to_local(struct pipeline *pl, struct endpoint_info *ep)
{
	struct policy_decision d;
	struct ct_result r;
	int ret;

	pl->ep_id = ep->ep_id;
	pl->dst_identity = ep->identity;
	ret = endpoint_admit(pl, ep, 0, &r, &d);
	if (ret < 0)
		return ret;
	pipeline_note_ct(pl, &r);
	ret = forward_rewrite_l2l3(pl->skb, &pl->pkt, ep);
	if (ret < 0)
		return ret;
	ret = endpoint_commit(pl, &r, pl->src_identity, &d, CT_F_NODEPORT);
	if (ret < 0)
		return ret;
	pl->target_ifindex = ep->ifindex;
	return bpf_redirect(ep->ifindex, 0);
}

/*
 * A packet to one of this node's service frontends: returns the TC verdict, -reason for a
 * drop, or NODEPORT_PASS when it is not a frontend served here.
 */
static __always_inline int nodeport_lb(struct pipeline *pl, const struct node_config *cfg)
{
	struct pkt *p = &pl->pkt;
	struct endpoint_info *ep;
	struct lb_service *svc;
	struct lb_backend *be;
	struct lb_scratch *sc;
	int ret;

	if (!lb_translatable(p))
		return NODEPORT_PASS;
	sc = lb_scratch_get();
	if (!sc)
		return NODEPORT_PASS;
	svc = nodeport_frontend(p, &sc->fk);
	if (!svc || !(svc->flags & LB_SVC_F_ROUTABLE))
		return NODEPORT_PASS;
	if ((svc->flags & LB_SVC_F_SOURCE_RANGE) &&
	    !nodeport_src_range_ok(p, svc->rev_nat_index))
		return -REASON_DENIED_BY_LB_SRC_RANGE_CHECK;
	be = lb_select(pl, svc, sc);
	if (!be)
		return -REASON_SERVICE_BACKEND_NOT_FOUND;
	pl->rev_nat_index = svc->rev_nat_index;
	ret = nat_rewrite4(pl->skb, p, 1, be->addr.v4, be->port);
	if (ret < 0)
		return ret;
	ep = endpoint_by_addr(p->family, &p->daddr);
	if (ep)
		return nodeport_to_local(pl, ep);
	/* DSR: the client stays the source, the option names the frontend (dsr.h) */
	if ((svc->flags2 & LB_SVC_F2_FWD_MODE_DSR) && (cfg->flags & NODE_CFG_F_DSR_OPT)) {
		if (dsr_wants_opt(p) && dsr_too_big(p, cfg->mtu)) {
			ret = dsr_frag_needed(pl->skb, p, sc->fk.addr.v4, sc->fk.dport, cfg->mtu);
			if (ret < 0)
				return ret;
			/* counted and reported as the drop of the request it replaces */
			drop_packet(pl, -REASON_FRAG_NEEDED, CILIATE_SRC_FILE, __LINE__);
			return ret;
		}
		ret = dsr_wants_opt(p) ? dsr_set_opt4(pl->skb, p, sc->fk.addr.v4, sc->fk.dport) : 0;
		if (ret != DSR_NO_ROOM) {
			pl->dst_identity = ipcache_identity(p->family, &p->daddr);
			return ret < 0 ? ret : TC_ACT_OK;
		}
	}
	ret = nat_snat4(pl, cfg->node_ip, NAT_F_NODEPORT, svc->rev_nat_index);
	if (ret < 0)
		return ret;
	pl->dst_identity = ipcache_identity(p->family, &p->daddr);
	return TC_ACT_OK;
}

/* The frontend a translated reply's source becomes again (rev_nat_index of its mapping). */
static __always_inline int nodeport_rev_frontend(struct pipeline *pl, __u16 rev_nat_index)
{
	__u32 index = rev_nat_index;
	struct lb_reverse_nat *rn;

	if (!index)
		return 0;
	rn = bpf_map_lookup_elem(&ciliate_lb_revnat, &index);
	if (!rn)
		return -REASON_SERVICE_BACKEND_NOT_FOUND;
	return nat_rewrite4(pl->skb, &pl->pkt, 0, rn->addr.v4, rn->port);
}

#endif
