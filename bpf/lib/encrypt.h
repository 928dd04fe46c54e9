/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transparent encryption between nodes (docs/ENCRYPTION.md): which packets go into the
 * WireGuard device, and strict mode.
 *
 * The agent sets NODE_ENC_F_WIREGUARD and the device's ifindex in the node config, and marks
 * every ipcache entry hosted by a node whose WireGuard peer it has configured with
 * encrypt_key 1 (the remote node's own /32, its pods, its pod CIDR). Then:
 *
 *   native routing: a local pod's packet leaving by the fabric device for a pod of another
 *                   node (the destination's ipcache entry has another node as tunnel
 *                   endpoint and is not that node itself) is redirected into the device;
 *   tunnel routing: the overlay's VXLAN packet from this node to another node (UDP 8472)
 *                   is redirected into the device: encapsulated twice, as in Cilium.
 *
 * The device encrypts it to the peer, whose device hands the plain packet to that node's
 * stack. Node-to-node traffic that is not tunnelled pod traffic (and the WireGuard UDP itself)
 * passes in the clear, as Cilium does without node encryption.
 *
 * Strict mode: pod traffic between two addresses of encryption-strict-mode-cidr that would
 * leave in plaintext because the destination's node has no known peer (its key is not
 * published yet, or was withdrawn) is dropped with UNENCRYPTED_TRAFFIC (195): to-netdev in
 * native routing, to-overlay in tunnel routing (where the inner addresses are still visible).
 */
#ifndef CILIATE_BPF_ENCRYPT_H
#define CILIATE_BPF_ENCRYPT_H

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "ipcache.h"

#define ENCRYPT_VXLAN_PORT 8472 /* the overlay device's destination port (sim, Cilium) */
#define ENCRYPT_PASS 0		/* nothing to do: the caller goes on */

/* A pod of another node: an entry hosted by a node other than this one, not the node. */
static __always_inline int encrypt_remote_pod(const struct ipcache_value *v, __be32 node_ip)
{
	return v && v->tunnel_endpoint && v->tunnel_endpoint != node_ip &&
	       v->identity != IDENTITY_REMOTE_NODE && v->identity != IDENTITY_HOST;
}

/* Strict mode's rule: both ends inside encryption-strict-mode-cidr. */
static __always_inline int encrypt_strict_applies(const struct node_config *cfg,
						  const struct pkt *p)
{
	return (cfg->encrypt & NODE_ENC_F_STRICT) &&
	       addr_in_cidr4(p->saddr.v4, cfg->strict_cidr, cfg->strict_cidr_len) &&
	       addr_in_cidr4(p->daddr.v4, cfg->strict_cidr, cfg->strict_cidr_len);
}

/*
 * to-netdev's encryption stage. local: the source is a pod of this node. Returns
 * ENCRYPT_PASS, a redirect into the WireGuard device, or -REASON_UNENCRYPTED_TRAFFIC.
 */
static __always_inline int encrypt_to_netdev(struct pipeline *pl, const struct node_config *cfg,
					     int local)
{
	const struct pkt *p = &pl->pkt;
	struct ipcache_value *v;

	if (!(cfg->encrypt & NODE_ENC_F_WIREGUARD))
		return ENCRYPT_PASS;
	if (local) {
		/* native routing: the pod's own packet */
		v = ipcache_lookup(p->family, &p->daddr);
		if (!encrypt_remote_pod(v, cfg->node_ip))
			return ENCRYPT_PASS;
		pl->src_identity = ipcache_identity(p->family, &p->saddr);
		pl->dst_identity = v->identity;
		pl->peer_resolved = 1;
		if (!v->encrypt_key || !cfg->wg_ifindex)
			return encrypt_strict_applies(cfg, p) ? -REASON_UNENCRYPTED_TRAFFIC
							      : ENCRYPT_PASS;
	} else {
		/* tunnel routing: this node's VXLAN packet to another node */
		if (p->proto != IPPROTO_UDP || p->saddr.v4 != cfg->node_ip ||
		    p->dport != bpf_htons(ENCRYPT_VXLAN_PORT))
			return ENCRYPT_PASS;
		v = ipcache_lookup(p->family, &p->daddr);
		if (!v || v->identity != IDENTITY_REMOTE_NODE || !v->encrypt_key ||
		    !cfg->wg_ifindex)
			return ENCRYPT_PASS; /* strict mode was decided by to-overlay */
		pl->src_identity = IDENTITY_HOST;
		pl->dst_identity = IDENTITY_REMOTE_NODE;
		pl->peer_resolved = 1;
	}
	pl->target_ifindex = cfg->wg_ifindex;
	return bpf_redirect(cfg->wg_ifindex, 0);
}

/*
 * to-overlay's strict-mode check: the inner packet to a node with no known peer. v is the
 * destination's ipcache entry (its tunnel endpoint is where the packet goes). Returns 0 or
 * -REASON_UNENCRYPTED_TRAFFIC.
 */
static __always_inline int encrypt_overlay_strict(const struct pkt *p,
						  const struct ipcache_value *v)
{
	struct node_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&ciliate_node_cfg, &zero);
	if (!cfg || !(cfg->encrypt & NODE_ENC_F_WIREGUARD) || !encrypt_strict_applies(cfg, p))
		return 0;
	if (v && v->encrypt_key)
		return 0;
	return -REASON_UNENCRYPTED_TRAFFIC;
}

#endif
