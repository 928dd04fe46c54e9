/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The overlay (tunnel routing): the source's security identity crosses nodes in the VXLAN VNI.
 *
 * The overlay device runs in external (collect_md) mode: it has no VNI or peer of its own, every
 * packet it sends carries a tunnel key set by to-overlay and every packet it receives carries
 * the key it arrived with.
 *
 *   send:    VNI = identity of the source (a local pod: its identity; the node itself: host, 1;
 *            anything else: its ipcache identity, world when unknown or node-local in scope),
 *            remote = the destination's tunnel endpoint from the ipcache (the node hosting it).
 *   receive: source identity = VNI, except host (1) -> remote-node (6): the sending node is a
 *            remote node here. VNI 0 is no identity at all and is dropped (INVALID_IDENTITY).
 *
 * A packet with no tunnel key on the receive side (BPF_PROG_TEST_RUN cannot attach one, so
 * replay and program tests) falls back to the ipcache identity of its source address, and its
 * events say so with EVENT_F_IDENTITY_FROM_IPCACHE.
 */
#ifndef CILIATE_BPF_OVERLAY_H
#define CILIATE_BPF_OVERLAY_H

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "endpoint.h"
#include "ipcache.h"

#undef CILIATE_SRC_FILE
#define CILIATE_SRC_FILE SRC_OVERLAY

/* VXLAN's VNI is 24 bits; larger identities (node-local CIDR identities) never cross nodes. */
#define OVERLAY_VNI_MAX ((1u << 24) - 1)
#define OVERLAY_TUNNEL_TTL 64

/* The part of struct bpf_tunnel_key every supported kernel accepts (up to tunnel_label). */
#define OVERLAY_TUNNEL_KEY_SIZE __builtin_offsetof(struct bpf_tunnel_key, tunnel_label)

/* The identity a packet leaving through the overlay is sent with (the VNI). */
static __always_inline __u32 overlay_src_identity(const struct pkt *p)
{
	struct endpoint_info *ep = endpoint_by_addr(p->family, &p->saddr);
	struct ipcache_value *v;

	if (ep)
		return ep->identity;
	v = ipcache_lookup(p->family, &p->saddr);
	if (!v)
		return IDENTITY_WORLD;
	if (v->flags & IPCACHE_F_LOCAL_NODE)
		return IDENTITY_HOST;
	return v->identity > OVERLAY_VNI_MAX ? IDENTITY_WORLD : v->identity;
}

/* The node a destination is tunnelled to (network order), or 0 when the ipcache has none;
 * *entry gets the destination's ipcache entry (NULL: none). */
static __always_inline __be32 overlay_tunnel_endpoint(const struct pkt *p, __u32 *dst_identity,
						      struct ipcache_value **entry)
{
	struct ipcache_value *v = ipcache_lookup(p->family, &p->daddr);

	*entry = v;
	*dst_identity = v ? v->identity : IDENTITY_WORLD;
	return v ? v->tunnel_endpoint : 0;
}

/* Sets the key the overlay device encapsulates with. Returns 0 or -reason. */
static __always_inline int overlay_set_key(struct __sk_buff *skb, __be32 remote, __u32 vni)
{
	struct bpf_tunnel_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.tunnel_id = vni;
	key.remote_ipv4 = bpf_ntohl(remote); /* the helper takes the address in host order */
	key.tunnel_ttl = OVERLAY_TUNNEL_TTL;
	if (bpf_skb_set_tunnel_key(skb, &key, OVERLAY_TUNNEL_KEY_SIZE, 0) < 0)
		return -REASON_ERROR_WRITING_TO_PACKET;
	return 0;
}

/*
 * The source identity of a received packet. Returns 1 when the packet carried a tunnel key
 * (*identity from its VNI, *remote the sending node in network order), 0 when it carried none
 * (*identity from the ipcache), or -reason.
 */
static __always_inline int overlay_recv_identity(struct __sk_buff *skb, const struct pkt *p,
						 __u32 *identity, __be32 *remote)
{
	struct bpf_tunnel_key key;

	__builtin_memset(&key, 0, sizeof(key));
	*remote = 0;
	if (bpf_skb_get_tunnel_key(skb, &key, OVERLAY_TUNNEL_KEY_SIZE, 0) < 0) {
		*identity = ipcache_identity(p->family, &p->saddr);
		return 0;
	}
	*remote = bpf_htonl(key.remote_ipv4);
	if (key.tunnel_id == IDENTITY_UNKNOWN || key.tunnel_id > OVERLAY_VNI_MAX)
		return -REASON_INVALID_IDENTITY;
	*identity = key.tunnel_id == IDENTITY_HOST ? IDENTITY_REMOTE_NODE : key.tunnel_id;
	return 1;
}

#endif
