/* SPDX-License-Identifier: Apache-2.0 */
/* Userspace side of conntrack: listing and garbage collection of the ciliate_ct map. */
#ifndef CILIATE_LOADER_CONNTRACK_H
#define CILIATE_LOADER_CONNTRACK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ciliate/abi.h"
#include "common/diag.h"

/* The datapath's clock (bpf_ktime_get_coarse_ns): CLOCK_MONOTONIC_COARSE in ns. */
uint64_t ct_clock_now_ns(void);

/* Calls fn for every entry of the conntrack map fd (stops early if fn returns non-zero). */
int ct_foreach(int ct_fd, int (*fn)(const struct ct_key *k, const struct ct_entry *e, void *arg),
	       void *arg);

/* Deletes entries whose expiry is at or before now_ns; *deleted counts them. */
int ct_gc(int ct_fd, uint64_t now_ns, size_t *deleted, struct diag *d);

/* "TCP 10.0.0.1:1234 -> 10.0.0.2:80 out expires 21599s syn_sent ..." like `cilium bpf ct list`. */
void ct_format(const struct ct_key *k, const struct ct_entry *e, uint64_t now_ns, char *buf,
	       size_t len);

/* "syn_sent", "established", ... */
const char *ct_tcp_state_name(unsigned int state);

#endif
