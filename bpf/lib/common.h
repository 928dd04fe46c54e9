/* SPDX-License-Identifier: Apache-2.0 */
/* Base includes and helpers shared by every ciliate BPF program. */
#ifndef CILIATE_BPF_COMMON_H
#define CILIATE_BPF_COMMON_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "ciliate/abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* A BPF-to-BPF call: its own stack frame, verified once per call site's state. Used for cold or
 * stack-heavy steps so the hot path stays inlined and the 512-byte stack is not exceeded. */
#define __subprog static __attribute__((noinline))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define NSEC_PER_SEC 1000000000ull

/* <linux/icmp.h> drags in libc headers; the few ICMP constants needed are here. */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_REDIRECT 5
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

/*
 * Load-time configuration (.rodata): the loader sets these before load and the verifier
 * prunes the branches they disable. One object serves every configuration.
 */
extern const volatile __u8 cfg_enable_ipv6;
extern const volatile __u8 cfg_trace_all; /* 1: a trace event per forwarded packet */
extern const volatile __u8 cfg_no_events; /* 1: no ring-buffer events (metrics stay): the
					   * bench's "events off" column */
extern const volatile __u8 cfg_every_drop; /* 1: no drop aggregation (events.h) */

static __always_inline void addr_set_v4(union ciliate_addr *a, __be32 v4)
{
	a->v6[0] = v4;
	a->v6[1] = 0;
	a->v6[2] = 0;
	a->v6[3] = 0;
}

/* An IPv4 address (network order) inside net/len. */
static __always_inline int addr_in_cidr4(__be32 addr, __be32 net, __u8 len)
{
	__u32 mask = len >= 32 ? ~0u : len ? ~0u << (32 - len) : 0;

	return ((bpf_ntohl(addr) ^ bpf_ntohl(net)) & mask) == 0;
}

static __always_inline int addr_eq(const union ciliate_addr *a, const union ciliate_addr *b)
{
	return a->v6[0] == b->v6[0] && a->v6[1] == b->v6[1] && a->v6[2] == b->v6[2] &&
	       a->v6[3] == b->v6[3];
}

#endif
