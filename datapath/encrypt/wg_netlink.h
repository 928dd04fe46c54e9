/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel WireGuard over netlink (libmnl): the device (rtnetlink, link kind "wireguard") and
 * its configuration (generic netlink family "wireguard", <linux/wireguard.h>). Every call
 * works in the calling thread's network namespace. IPv4 only for endpoints and allowed IPs
 * written; read back, IPv6 entries are reported with their family.
 *
 * Large configurations are split over several WG_CMD_SET_DEVICE messages as the UAPI header
 * describes: the device attributes (flags, private key, port) only in the first, a peer cut
 * between messages continues in the next with only its public key and the rest of its
 * allowed IPs. Each message is acknowledged before the next is sent; when one fails, the
 * earlier ones stay applied (the error names which message failed).
 */
#ifndef CILIATE_ENCRYPT_WG_NETLINK_H
#define CILIATE_ENCRYPT_WG_NETLINK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"

#define WG_NL_KEY_LEN 32
/* Size of one WG_CMD_SET_DEVICE message wg_nl_set() sends (the kernel refuses messages
 * beyond the socket's send buffer; wireguard-tools uses a page as well). */
#define WG_NL_MSG_SIZE 8192u
/* wg_nl_get() stops (-E2BIG) past this many peers / allowed IPs per peer. */
#define WG_NL_MAX_PEERS 65536u
#define WG_NL_MAX_ALLOWED_IPS 65536u

struct wg_nl_allowed_ip {
	uint16_t family;   /* AF_INET (AF_INET6 only in what wg_nl_get reads back) */
	struct in_addr ip; /* AF_INET: network address */
	struct in6_addr ip6;
	uint8_t prefix;
};

/* One peer of a SET. */
struct wg_nl_peer {
	uint8_t public_key[WG_NL_KEY_LEN];
	bool remove;              /* WGPEER_F_REMOVE_ME: nothing else of the peer is sent */
	bool update_only;         /* WGPEER_F_UPDATE_ONLY: only if the peer exists */
	bool has_endpoint;
	struct in_addr endpoint;  /* IPv4 */
	uint16_t endpoint_port;   /* host order */
	int keepalive;            /* persistent keepalive seconds 0..65535 (0: off); -1 unset */
	bool replace_allowed_ips; /* WGPEER_F_REPLACE_ALLOWEDIPS */
	const struct wg_nl_allowed_ip *allowed_ips;
	size_t n_allowed_ips;
};

/* A WG_CMD_SET_DEVICE. */
struct wg_nl_config {
	bool has_private_key;
	uint8_t private_key[WG_NL_KEY_LEN];
	int listen_port;    /* 0..65535 (0: random); -1 unset */
	bool replace_peers; /* WGDEVICE_F_REPLACE_PEERS */
	const struct wg_nl_peer *peers;
	size_t n_peers;
};

/* A peer as the kernel reports it. */
struct wg_nl_peer_state {
	uint8_t public_key[WG_NL_KEY_LEN];
	bool has_preshared_key; /* a nonzero preshared key is set */
	uint16_t endpoint_family; /* 0: none, AF_INET, AF_INET6 */
	struct in_addr endpoint;
	struct in6_addr endpoint6;
	uint16_t endpoint_port;
	uint16_t keepalive;
	int64_t last_handshake_sec; /* unix time, 0: never */
	int64_t last_handshake_nsec;
	uint64_t rx_bytes, tx_bytes;
	struct wg_nl_allowed_ip *allowed_ips;
	size_t n_allowed_ips;
};

/* A WG_CMD_GET_DEVICE dump. */
struct wg_nl_state {
	int ifindex;
	char ifname[16];
	bool has_private_key;
	bool has_public_key;
	uint8_t public_key[WG_NL_KEY_LEN];
	uint16_t listen_port;
	uint32_t fwmark;
	struct wg_nl_peer_state *peers;
	size_t n_peers;
};

/* Creates the WireGuard link ifname (or finds it: 0 when a wireguard link of that name
 * exists), sets its MTU (if nonzero) and brings it up. -EOPNOTSUPP with d naming the kernel
 * when it has no WireGuard; -EEXIST when ifname exists as another kind of link. */
int wg_nl_link_add(const char *ifname, unsigned int mtu, struct diag *d);

/* Deletes the WireGuard link ifname: 0 also when there is none; -EEXIST (nothing deleted)
 * when ifname is not a wireguard link. */
int wg_nl_link_del(const char *ifname, struct diag *d);

/* Applies c to ifname (one or more WG_CMD_SET_DEVICE messages, each acknowledged). */
int wg_nl_set(const char *ifname, const struct wg_nl_config *c, struct diag *d);

/* Reads ifname's configuration and counters (st is overwritten; free with wg_nl_state_free). */
int wg_nl_get(const char *ifname, struct wg_nl_state *st, struct diag *d);
void wg_nl_state_free(struct wg_nl_state *st);

/* Finds a peer of st by public key, or NULL. */
const struct wg_nl_peer_state *wg_nl_state_peer(const struct wg_nl_state *st,
						const uint8_t key[WG_NL_KEY_LEN]);

/* ---- message building (exposed for tests) -------------------------------------------- */

/* The SET messages for c: n buffers, each one netlink message (nlmsghdr + genlmsghdr +
 * attributes) of at most msg_size bytes, with nlmsg_type = family and NLM_F_REQUEST|NLM_F_ACK;
 * sequence numbers are left 0. */
struct wg_nl_msgs {
	size_t n;
	void **msg;
};

int wg_nl_build_set(const char *ifname, uint16_t family, const struct wg_nl_config *c,
		    size_t msg_size, struct wg_nl_msgs *out, struct diag *d);
void wg_nl_msgs_free(struct wg_nl_msgs *m);

/* The generic netlink id of family "wireguard" in this namespace's kernel: > 0, or -errno
 * (-EOPNOTSUPP when the kernel has no such family). */
int wg_nl_family(struct diag *d);

#endif
