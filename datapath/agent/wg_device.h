/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One WireGuard device as the agent drives it (docs/ENCRYPTION.md): X25519 keys (OpenSSL),
 * the userspace implementation (wireguard-go) started in the node's network namespace, and
 * its UAPI socket (the text protocol of wireguard.com/xplatform: "set=1" / "get=1").
 */
#ifndef CILIATE_AGENT_WG_DEVICE_H
#define CILIATE_AGENT_WG_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/diag.h"
#include "encrypt/wg_netlink.h"

#define WG_KEY_LEN 32
#define WG_KEY_B64_LEN 44 /* base64 of 32 bytes, '=' padded */
#define WG_IFNAME "ciliate_wg0"
#define WG_PORT 51871
#define WG_MTU 1420 /* a 1500-byte fabric minus WireGuard's 80 bytes (IPv4 outer: 60) */
#define WG_ALLOWED_MAX 4

/* Reads the private key at path (base64, as `wg genkey` writes it) or, when there is none,
 * makes one and writes it (mode 0600). *created tells which. */
int wg_key_load_or_create(const char *path, uint8_t priv[WG_KEY_LEN], bool *created,
			  struct diag *d);

/* The X25519 public key of priv. */
int wg_key_public(const uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN], struct diag *d);

void wg_key_to_b64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN + 1]);

/* 0, or -EINVAL when s is not the base64 of 32 bytes. */
int wg_key_from_b64(const char *s, uint8_t key[WG_KEY_LEN]);

/* A peer as configured (set) or read back (get). */
struct wg_peer_conf {
	uint8_t pub[WG_KEY_LEN];
	uint32_t endpoint_ip; /* network order (0: none) */
	uint16_t endpoint_port;
	uint32_t allowed[WG_ALLOWED_MAX]; /* network order */
	uint8_t allowed_len[WG_ALLOWED_MAX];
	size_t nallowed;
	/* get only */
	int64_t handshake_sec; /* unix time of the last handshake (0: none yet) */
	uint64_t rx_bytes, tx_bytes;
};

struct wg_dev_state {
	bool has_private_key;
	uint8_t private_key[WG_KEY_LEN];
	unsigned int listen_port;
	struct wg_peer_conf *peers;
	size_t npeers;
};

void wg_dev_state_free(struct wg_dev_state *s);

/*
 * Starts wireguard-go for WG_IFNAME in the caller's network namespace, in the foreground as a
 * child, with its UAPI socket in dir (a private mount namespace binds dir over
 * /run/wireguard: every simulated node shares one file system, and the socket's name is the
 * interface's). Its output goes to dir/wireguard-go.log. Waits (bounded) until the socket
 * answers. Returns the pid or -errno.
 */
pid_t wg_go_spawn(const char *dir, struct diag *d);

/* The UAPI socket of the device served from dir. */
void wg_sock_path(const char *dir, char *buf, size_t size);

/* Sends one "set=1" request (body: key=value lines, without the "set=1" line or the blank
 * line ending it); 0 when the device answered errno=0. */
int wg_uapi_set(const char *sock, const char *body, struct diag *d);

/* Sends c as one "set=1" request: the same structured configuration the kernel's netlink
 * interface takes (encrypt/wg_netlink.h), so one caller drives both implementations. */
int wg_uapi_set_config(const char *sock, const struct wg_nl_config *c, struct diag *d);

/* A kernel device's state (wg_nl_get) in the agent's terms. */
int wg_dev_state_from_nl(const struct wg_nl_state *nl, struct wg_dev_state *st);

/* Reads the device back ("get=1"). */
int wg_uapi_get(const char *sock, struct wg_dev_state *st, struct diag *d);

/* Hex of a key, as the UAPI writes keys (64 chars + NUL). */
void wg_key_to_hex(const uint8_t key[WG_KEY_LEN], char out[2 * WG_KEY_LEN + 1]);

#endif
