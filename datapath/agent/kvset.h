/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sorted sets of fixed-size (key, value) records: the agent's picture of a BPF map, used to
 * compute the smallest set of writes that turns the map's current contents into the wanted
 * ones (incremental reconcile).
 */
#ifndef CILIATE_AGENT_KVSET_H
#define CILIATE_AGENT_KVSET_H

#include <stddef.h>
#include <stdint.h>

struct kvset {
	size_t ksz, vsz;
	size_t n, cap;
	uint8_t *d; /* n records of ksz + vsz bytes */
};

/* Initialises an empty set of records with the given key and value sizes. */
void kvset_init(struct kvset *s, size_t ksz, size_t vsz);

/* Frees the records (sizes are kept, the set is empty afterwards). */
void kvset_free(struct kvset *s);

/* Appends a record (call kvset_sort before lookups or diffs). */
int kvset_add(struct kvset *s, const void *k, const void *v);

/* Sorts by key bytes; of records with equal keys the last added wins. */
void kvset_sort(struct kvset *s);

/* Key of record i. */
const void *kvset_key(const struct kvset *s, size_t i);

/* Value of record i. */
const void *kvset_val(const struct kvset *s, size_t i);

/* The value stored for key in a sorted set, or NULL. */
const void *kvset_get(const struct kvset *s, const void *k);

/* Fills ups with the records of want that cur lacks or holds with another value, and dels
 * with the records of cur whose key want lacks (both inputs sorted; outputs initialised
 * here with the same sizes and sorted). */
int kvset_diff(const struct kvset *cur, const struct kvset *want, struct kvset *ups,
	       struct kvset *dels);

/* Moves src into dst (dst's old records are freed). */
void kvset_move(struct kvset *dst, struct kvset *src);

/* Zeroes every key bit after the first `4 * 8 + prefixlen` bits, where prefixlen is the
 * key's leading u32 (LPM trie keys): equal prefixes then compare equal. */
void kvset_lpm_canonical(void *key, size_t ksz);

#endif
