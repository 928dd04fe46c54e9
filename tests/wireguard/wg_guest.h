/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the kernel-matrix WireGuard suites (test_wg_kernel, test_encryption_bench): network
 * namespaces, a veth between two "nodes", addresses and routes over rtnetlink, X25519 keys,
 * sockets and a checked byte stream. Everything works in namespaces the caller made; the
 * namespace the process started in is never configured.
 */
#ifndef CILIATE_TESTS_WG_GUEST_H
#define CILIATE_TESTS_WG_GUEST_H

#include <stdint.h>
#include <stddef.h>

#include "encrypt/wg_netlink.h"

#define WG_PORT 51871
#define WG_IFNAME "ciliate_wg0"
#define WG_MTU 1420

double now_s(void);
/* a new network namespace (the calling thread moves into it): fd, or -errno */
int ns_new(void);
/* moves the calling thread into ns (exits the process on failure) */
void ns_enter(int ns);

/* rtnetlink, in the current namespace; 0 or -errno */
int rt_link_up(const char *ifname);
int rt_veth(const char *name, const char *peer, int peer_ns);
int rt_addr(const char *ifname, const char *addr, unsigned prefix);
/* dst/prefix via gw (NULL: directly on the device), preferred source src (NULL: none) */
int rt_route(const char *dst, unsigned prefix, const char *gw, const char *ifname, const char *src);
/* writes value to /proc/sys/... of the current namespace */
int sysctl_set(const char *path, const char *value);

/* Two nodes: node-1 192.0.2.1 on veth-n1, pod 10.244.0.10/32 on lo; node-2 192.0.2.2 on
 * veth-n2, pod 10.244.1.10/32 on lo. No route between the pods yet. IPv6 off. */
struct pair {
	int ns[3]; /* [1], [2] */
};
int pair_make(struct pair *p, char *err, size_t errlen);

/* X25519: a fresh private key and its public key (OpenSSL); 0 or -1 */
int x25519_new(uint8_t priv[32], uint8_t pub[32]);
int x25519_pub(const uint8_t priv[32], uint8_t pub[32]);
void key_b64(const uint8_t key[32], char out[45]);

/* node n's WireGuard device: created, key, port, one peer (the other node: endpoint
 * 192.0.2.x:51871, allowed IPs its pod CIDR 10.244.y.0/24); in p->ns[n] */
int wg_node_setup(const struct pair *p, int n, const uint8_t priv[32], const uint8_t peer_pub[32],
		  struct diag *d);
/* the pod route of node n through ciliate_wg0 (1) or via the veth (0) */
int pod_route(const struct pair *p, int n, int via_wg);

/* sockets bound in ns (non-blocking) */
int sock_in(int ns, int type, const char *addr, unsigned port);
int wait_fd(int fd, short ev, int ms);
/* n datagrams each way carrying marker; how many arrived intact */
int udp_exchange(int ns_a, const char *a, int ns_b, const char *b, unsigned port, int n,
		 const char *marker, int wait_ms);
/* a connected TCP pair (client in ns_a, accepted socket in ns_b); 0 or -1 */
int tcp_pair(int ns_a, const char *a, int ns_b, const char *b, unsigned port, int *cl, int *sv);

/* byte i of a checked stream: 64-byte blocks starting with marker (24 bytes) */
uint8_t stream_byte(const char *marker, uint64_t i);
struct stream_result {
	uint64_t sent, received;
	uint64_t first_bad; /* UINT64_MAX: every byte right */
	double secs, max_gap; /* longest time without received bytes */
};
typedef void (*stream_hook)(uint64_t received, void *ctx);
typedef void (*stream_idle)(void *ctx);
void stream_run(int tx, int rx, uint64_t total, const char *marker, stream_hook hook, stream_idle idle,
		void *ctx, double limit_s, struct stream_result *r);

#endif
