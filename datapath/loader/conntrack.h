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

/*
 * Keys are direction-normalised (abi.h): the map key of a connection is its original
 * (tuple, scope) or that reversed with the scope flipped (then the entry has CT_F_REVERSED).
 */

/* The map key (and the CT_F_REVERSED bit its entry carries) of the connection `orig`. */
void ct_key_normalise(const struct ct_key *orig, struct ct_key *key, uint8_t *flags);

/* The connection's original (tuple, scope) from its map key and entry. */
void ct_key_original(const struct ct_key *key, const struct ct_entry *e, struct ct_key *orig);

/* Looks up the connection whose original (tuple, scope) is `orig`: 0 and *e, or -ENOENT. */
int ct_lookup_conn(int ct_fd, const struct ct_key *orig, struct ct_entry *e);

/* Calls fn for every entry of the conntrack map fd with its map key (see ct_key_original) and
 * stops early if fn returns non-zero. */
int ct_foreach(int ct_fd, int (*fn)(const struct ct_key *k, const struct ct_entry *e, void *arg),
	       void *arg);

/* Deletes entries whose expiry is at or before now_ns; *deleted counts them. */
int ct_gc(int ct_fd, uint64_t now_ns, size_t *deleted, struct diag *d);

/* "TCP 10.0.0.1:1234 -> 10.0.0.2:80 out expires 21599s syn_sent ..." like `cilium bpf ct list`,
 * from the entry's map key: the tuple shown is the connection's original. */
void ct_format(const struct ct_key *k, const struct ct_entry *e, uint64_t now_ns, char *buf,
	       size_t len);

/* "syn_sent", "established", ... */
const char *ct_tcp_state_name(unsigned int state);

#endif
