/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Maglev table map ciliate_lb_maglev (abi.h, bpf/lib/maglev.h): a hash of maps from
 * LB_MAGLEV_KEY(rev_nat_index, scope) to an array of u32 — LB_MAGLEV_HDR header words (M,
 * the tuple-hash seeds) then the M backend ids. Every table is its own array, created here
 * with BPF_F_INNER_MAP so that arrays of different sizes share the outer map, and replaced
 * whole: a new array is filled and then swapped in with one update of the outer map, so the
 * datapath sees the old table or the new one, never a mixture (nor a new M with an old
 * table). Used by the agent (writes) and `ciliate bpf lb maglev list` (reads).
 */
#ifndef CILIATE_LOADER_LB_MAGLEV_H
#define CILIATE_LOADER_LB_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

#include "ciliate/abi.h"
#include "common/diag.h"

/* One table as the map holds it: words[LB_MAGLEV_HDR_SIZE] is M, words[LB_MAGLEV_HDR + i]
 * entry i (nwords = LB_MAGLEV_HDR + M). */
struct lb_maglev_table {
	uint32_t key; /* LB_MAGLEV_KEY(rev_nat_index, scope) */
	uint32_t nwords;
	uint32_t *words;
};

/* The words of a table of m ids (header included), allocated into t (key set by the caller).
 * 0 or -ENOMEM / -EINVAL (m 0 or above LB_MAGLEV_M_MAX). */
int lb_maglev_table_make(struct lb_maglev_table *t, uint32_t key, uint32_t m, uint32_t seed4,
			 uint32_t seed6, const uint32_t *ids);

/* True when both hold the same key and words. */
int lb_maglev_table_equal(const struct lb_maglev_table *a, const struct lb_maglev_table *b);

void lb_maglev_tables_free(struct lb_maglev_table *t, size_t n);

/* Installs t under t->key of the outer map (replacing what is there). */
int lb_maglev_map_set(int outer_fd, const struct lb_maglev_table *t, struct diag *d);

/* Removes the table under key; a missing one is not an error. */
int lb_maglev_map_delete(int outer_fd, uint32_t key, struct diag *d);

/* Reads every table of the outer map, sorted by key. *out is NULL when there is none. */
int lb_maglev_map_read(int outer_fd, struct lb_maglev_table **out, size_t *n, struct diag *d);

#endif
