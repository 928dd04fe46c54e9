/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016) computed in userspace, the way
 * Cilium computes it (pkg/maglev), so that every node builds the identical lookup table for
 * the same backends. The datapath indexes the table with a hash of the packet's tuple and
 * finds a backend id. docs/SERVICES.md ("Maglev") describes the algorithm as implemented.
 */
#ifndef CILIATE_LB_MAGLEV_H
#define CILIATE_LB_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"

#define MAGLEV_TABLE_SIZE_DEFAULT 16381u
#define MAGLEV_HASH_SEED_DEFAULT  "JLfvgnHc2kaSUFaI"
#define MAGLEV_SEED_KEY		  "bpf-lb-maglev-hash-seed"
#define MAGLEV_TABLE_SIZE_KEY	  "bpf-lb-maglev-table-size"
/* A backend's weight when nothing says otherwise. Weight 0 is maintenance: never selected. */
#define MAGLEV_WEIGHT_DEFAULT 1u
/* Room for "[ffff:...:ffff]:65535/SCTP" and a terminating NUL. */
#define MAGLEV_NAME_MAX 64

/* The 12 bytes of bpf-lb-maglev-hash-seed, each group of 4 read big-endian. */
struct maglev_seed {
	uint32_t murmur; /* bytes 0-3: seeds MurmurHash3 of the backend names */
	uint32_t jhash0; /* bytes 4-7: the datapath's IPv4 tuple hash seed */
	uint32_t jhash1; /* bytes 8-11: the datapath's IPv6 tuple hash seed */
};

struct maglev_backend {
	/* What gets hashed, identical on every node: "ADDR:PORT/PROTO", e.g. "10.244.1.7:8080/TCP"
	 * or "[fd00::7]:8080/TCP" (maglev_backend_name). Names must be distinct. */
	const char *name;
	uint32_t id;	 /* what the table holds (node-local backend id) */
	uint16_t weight; /* 0 = maintenance (never selected); MAGLEV_WEIGHT_DEFAULT otherwise */
};

/* True for Cilium's allowed table sizes: 251, 509, 1021, 2039, 4093, 8191, 16381, 32749,
 * 65521, 131071 (primes; pick M > 100 x backends for at most ~1% disruption). */
bool maglev_table_size_valid(uint32_t m);

/* Decodes bpf-lb-maglev-hash-seed: standard base64 of exactly 12 bytes. 0, or -EINVAL with
 * a message in d naming the key and what is wrong. */
int maglev_seed_parse(const char *base64, struct maglev_seed *out, struct diag *d);

/* MurmurHash3_x64_128 (Austin Appleby's public-domain algorithm; h1 = h2 = seed at the start,
 * blocks read little-endian). out[0] = h1, out[1] = h2. */
void maglev_murmur3_x64_128(const void *data, size_t len, uint32_t seed, uint64_t out[2]);

/* Formats the hashed name of a backend: af AF_INET or AF_INET6, addr in network order, port in
 * host order, proto "TCP", "UDP" or "SCTP". Returns the length, or -EINVAL (unknown family,
 * does not fit). */
int maglev_backend_name(char *buf, size_t len, int af, const void *addr, uint16_t port,
			const char *proto);

/*
 * Fills table_out[0..m-1] with backend ids. The result depends only on the backends' names
 * and weights, the seed and m: not on the order of the array nor on the ids' values (the
 * ids are only what gets written). Returns 0, or:
 *   -ENOENT  n == 0, or every weight is 0: the service has no table (no backend to select)
 *   -EINVAL  m is not an allowed size, a name is NULL, two backends share a name
 *   -ENOMEM
 * table_out is untouched on error.
 */
int maglev_build(const struct maglev_backend *backends, size_t n, uint32_t m,
		 const struct maglev_seed *seed, uint32_t *table_out);

/*
 * The datapath's tuple hash (bpf/lib/maglev.h), for tools and tests: Bob Jenkins' lookup3
 * final mix of three words started at 0xdeadbeef + 12 + seed (what Linux's jhash_3words()
 * gives).
 */
uint32_t maglev_jhash3(uint32_t a, uint32_t b, uint32_t c, uint32_t seed);

/* The table entry an IPv4 packet takes: saddr and the ports as they are in the packet
 * (network order), sport 0 for a ClientIP-affinity service; seed is maglev_seed.jhash0. */
uint32_t maglev_index4(uint32_t saddr_be, uint16_t sport_be, uint16_t dport_be, uint8_t proto,
		       uint32_t seed, uint32_t m);

#endif
