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
#include "dsr_ipip.h"
#include "dsr_geneve.h"

#define NODEPORT_PASS 0x7fff /* not a frontend served here: the stack decides */

static __always_inline struct node_config *node_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ciliate_node_cfg, &zero);
}

/*
 * The frontend's entry for clients outside the cluster (scope LB_SCOPE_EXTERNAL), or, for a
 * request an entry node sent here by IPIP (LB_SCOPE_DSR_LOCAL), its entry with this node's
 * backends: the frontend's own, else (another node's NodePort) the NodePort's any-node entry.
 */
static __always_inline struct lb_service *nodeport_frontend(const struct pkt *p,
							    struct lb_key *k, __u8 scope)
{
	struct lb_service *svc;

	__builtin_memset(k, 0, sizeof(*k));
	k->addr = p->daddr;
	k->dport = p->dport;
	k->proto = p->proto;
	k->family = p->family;
	k->scope = scope;
	svc = bpf_map_lookup_elem(&ciliate_lb_services, k);
	if (svc || scope != LB_SCOPE_DSR_LOCAL)
		return svc;
	k->addr.v4 = 0;
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

/*
 * The frontend of the packet (scope as nodeport_frontend()), its loadBalancerSourceRanges
 * and its backend (lb_select: the connection's CT_SVC entry, else a new pick): 0 with
 * *sc, *svc and *be set, NODEPORT_PASS (not a frontend served here) or -reason. Shared by
 * the TC path and XDP (xdp_nodeport.h).
 */
static __always_inline int nodeport_select(struct pipeline *pl, __u8 scope,
					   struct lb_scratch **sc, struct lb_service **svc,
					   struct lb_backend **be)
{
	struct pkt *p = &pl->pkt;

	*sc = lb_scratch_get();
	if (!*sc)
		return NODEPORT_PASS;
	*svc = nodeport_frontend(p, &(*sc)->fk, scope);
	if (!*svc || !((*svc)->flags & LB_SVC_F_ROUTABLE))
		return NODEPORT_PASS;
	if (((*svc)->flags & LB_SVC_F_SOURCE_RANGE) &&
	    !nodeport_src_range_ok(p, (*svc)->rev_nat_index))
		return -REASON_DENIED_BY_LB_SRC_RANGE_CHECK;
	*be = lb_select(pl, *svc, *sc);
	return *be ? 0 : -REASON_SERVICE_BACKEND_NOT_FOUND;
}

/* A local backend: its ingress policy and conntrack here, then straight to its veth.
 * ct_flags: CT_F_NODEPORT where the backend's replies leave from this node's frontend. */
static __always_inline int nodeport_to_local(struct pipeline *pl, struct endpoint_info *ep,
					     __u8 ct_flags)
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
	ret = endpoint_commit(pl, &r, pl->src_identity, &d, ct_flags);
	if (ret < 0)
		return ret;
	pl->target_ifindex = ep->ifindex;
	return bpf_redirect(ep->ifindex, 0);
}

/* The backend's node (network order), or 0 when the ipcache has none. */
static __always_inline __be32 nodeport_backend_node(const union ciliate_addr *backend)
{
	struct ipcache_value *v = ipcache_lookup(CILIATE_AF_INET, backend);

	return v ? v->tunnel_endpoint : 0;
}

/*
 * The MTU outcome of a DSR dispatch adding `overhead` bytes: ICMP fragmentation needed to
 * the client instead of a request that would not fit (dsr.h). Returns 1 when the packet
 * fits, else the verdict of the ICMP reply or -reason.
 */
static __always_inline int nodeport_dsr_fits(struct pipeline *pl, const struct node_config *cfg,
					      const struct lb_key *fk, __u32 overhead)
{
	struct pkt *p = &pl->pkt;
	int ret;

	if (!dsr_too_big(p, cfg->mtu, overhead))
		return 1;
	ret = dsr_frag_needed(pl->skb, p, fk->addr.v4, fk->dport, cfg->mtu - overhead);
	if (ret < 0)
		return ret;
	/* counted and reported as the drop of the request it replaces */
	drop_packet(pl, -REASON_FRAG_NEEDED, CILIATE_SRC_FILE, __LINE__);
	return ret;
}

/* An encapsulated DSR request (ipip, geneve) leaves through the fabric device for the
 * backend's node: the neighbour subsystem fills in the next hop's Ethernet header. */
static __always_inline int nodeport_dsr_send(struct pipeline *pl)
{
	pl->target_ifindex = pl->skb->ifindex;
	return bpf_redirect_neigh(pl->skb->ifindex, NULL, 0, 0);
}

/*
 * DSR to a remote backend with the IPIP dispatch: the request unchanged (not DNATed), in an
 * outer header to the backend's node. Returns the verdict or -reason.
 */
static __always_inline int nodeport_dsr_ipip(struct pipeline *pl, const struct node_config *cfg,
					     const struct lb_key *fk, const struct lb_backend *be)
{
	__be32 remote = nodeport_backend_node(&be->addr);
	int ret;

	if (!remote)
		return -REASON_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT;
	ret = nodeport_dsr_fits(pl, cfg, fk, DSR_IPIP_OVERHEAD);
	if (ret != 1)
		return ret;
	ret = dsr_ipip_encap4(pl->skb, pl->pkt.l3_off, cfg->node_ip, remote);
	if (ret < 0)
		return ret;
	pl->dst_identity = ipcache_identity(CILIATE_AF_INET, &be->addr);
	pl->tunnel_endpoint = remote;
	return nodeport_dsr_send(pl);
}

/*
 * DSR to a remote backend, the request DNATed already: the option (opt) or the Geneve
 * encapsulation (geneve) names the frontend `fk`. Returns the verdict, -reason, or
 * DSR_NO_ROOM (the option cannot be added: SNAT instead).
 */
static __always_inline int nodeport_dsr(struct pipeline *pl, const struct node_config *cfg,
					const struct lb_key *fk)
{
	struct pkt *p = &pl->pkt;
	__u32 with_opt = dsr_wants_opt(p);
	__be32 remote;
	int ret;

	pl->dst_identity = ipcache_identity(p->family, &p->daddr);
	if (cfg->flags & NODE_CFG_F_DSR_GENEVE) {
		remote = nodeport_backend_node(&p->daddr);
		if (!remote)
			return -REASON_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT;
		ret = nodeport_dsr_fits(pl, cfg, fk,
					DSR_GENEVE_OVERHEAD + (with_opt ? DSR_GENEVE_OPT_LEN : 0));
		if (ret != 1)
			return ret;
		/* VNI: the world identity, the client is outside the cluster */
		ret = dsr_geneve_encap4(pl->skb, p, remote, with_opt ? fk : NULL, IDENTITY_WORLD);
		if (ret < 0)
			return ret;
		pl->tunnel_endpoint = remote;
		return nodeport_dsr_send(pl);
	}
	if (!with_opt)
		return TC_ACT_OK;
	ret = nodeport_dsr_fits(pl, cfg, fk, DSR_IPV4_OPT_LEN);
	if (ret != 1)
		return ret;
	ret = dsr_set_opt4(pl->skb, p, fk->addr.v4, fk->dport);
	return ret < 0 ? ret : ret == DSR_NO_ROOM ? DSR_NO_ROOM : TC_ACT_OK;
}

/*
 * A packet to one of this node's service frontends: returns the TC verdict, -reason for a
 * drop, or NODEPORT_PASS when it is not a frontend served here. scope LB_SCOPE_DSR_LOCAL: a
 * request another node sent here by IPIP, for one of this node's backends.
 */
static __always_inline int nodeport_lb(struct pipeline *pl, const struct node_config *cfg,
				       __u8 scope)
{
	struct pkt *p = &pl->pkt;
	struct endpoint_info *ep;
	struct lb_service *svc;
	struct lb_backend *be;
	struct lb_scratch *sc;
	int dsr, ret;

	if (!lb_translatable(p))
		return NODEPORT_PASS;
	ret = nodeport_select(pl, scope, &sc, &svc, &be);
	if (ret)
		return ret;
	pl->rev_nat_index = svc->rev_nat_index;
	sc->fk.addr = p->daddr; /* the frontend as the client sent to it (DSR names it) */
	dsr = (svc->flags2 & LB_SVC_F2_FWD_MODE_DSR) && (cfg->flags & NODE_CFG_F_DSR_ANY) &&
	      scope == LB_SCOPE_EXTERNAL;
	ep = endpoint_by_addr(p->family, &be->addr);
	if (!ep && dsr && (cfg->flags & NODE_CFG_F_DSR_IPIP))
		return nodeport_dsr_ipip(pl, cfg, &sc->fk, be);
	ret = nat_rewrite4(pl->skb, p, 1, be->addr.v4, be->port);
	if (ret < 0)
		return ret;
	if (scope == LB_SCOPE_DSR_LOCAL) {
		/* the replies leave from the entry node's frontend, straight to the client */
		if (!ep)
			return -REASON_SERVICE_BACKEND_NOT_FOUND;
		ret = dsr_record4(pl, p, sc->fk.addr.v4, sc->fk.dport);
		return ret < 0 ? ret : nodeport_to_local(pl, ep, 0);
	}
	if (ep)
		return nodeport_to_local(pl, ep, CT_F_NODEPORT);
	if (dsr) {
		ret = nodeport_dsr(pl, cfg, &sc->fk);
		if (ret != DSR_NO_ROOM)
			return ret;
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
