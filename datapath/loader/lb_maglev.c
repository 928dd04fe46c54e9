/* SPDX-License-Identifier: Apache-2.0 */
/* The Maglev table map (lb_maglev.h). */
#include "loader/lb_maglev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#define OUTER_READ_MAX (1u << 20) /* tables read from one outer map at most */

int lb_maglev_table_make(struct lb_maglev_table *t, uint32_t key, uint32_t m, uint32_t seed4,
			 uint32_t seed6, const uint32_t *ids)
{
	memset(t, 0, sizeof(*t));
	if (!m || m > LB_MAGLEV_M_MAX)
		return -EINVAL;
	t->words = calloc(LB_MAGLEV_HDR + (size_t)m, sizeof(*t->words));
	if (!t->words)
		return -ENOMEM;
	t->key = key;
	t->nwords = LB_MAGLEV_HDR + m;
	t->words[LB_MAGLEV_HDR_SIZE] = m;
	t->words[LB_MAGLEV_HDR_SEED4] = seed4;
	t->words[LB_MAGLEV_HDR_SEED6] = seed6;
	memcpy(t->words + LB_MAGLEV_HDR, ids, (size_t)m * sizeof(*ids));
	return 0;
}

int lb_maglev_table_equal(const struct lb_maglev_table *a, const struct lb_maglev_table *b)
{
	return a->key == b->key && a->nwords == b->nwords &&
	       !memcmp(a->words, b->words, (size_t)a->nwords * sizeof(*a->words));
}

void lb_maglev_tables_free(struct lb_maglev_table *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		free(t[i].words);
	free(t);
}

/* Writes words[0..n-1] into the array fd: one batch, or element by element where the
 * kernel has no batch updates for arrays. */
static int array_fill(int fd, const uint32_t *words, uint32_t n)
{
	uint32_t *keys = malloc((size_t)n * sizeof(*keys)), count = n, i;
	int err = -ENOMEM;

	if (keys) {
		for (i = 0; i < n; i++)
			keys[i] = i;
		err = bpf_map_update_batch(fd, keys, words, &count, NULL) ? -errno : 0;
		free(keys);
	}
	if (!err)
		return 0;
	for (i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, &i, &words[i], BPF_ANY) < 0)
			return -errno;
	return 0;
}

int lb_maglev_map_set(int outer_fd, const struct lb_maglev_table *t, struct diag *d)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP);
	int fd, err;

	if (t->nwords <= LB_MAGLEV_HDR || t->words[LB_MAGLEV_HDR_SIZE] != t->nwords - LB_MAGLEV_HDR)
		return diag_fail_errno(d, -EINVAL, "Maglev table %u: %u words do not hold M = %u",
				       t->key, t->nwords, t->nwords ? t->words[0] : 0);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ciliate_maglev", sizeof(uint32_t),
			    sizeof(uint32_t), t->nwords, &opts);
	if (fd < 0)
		return diag_fail_errno(d, -errno, "creating a Maglev table of %u entries: %s",
				       t->nwords - LB_MAGLEV_HDR, strerror(errno));
	err = array_fill(fd, t->words, t->nwords);
	if (err) {
		close(fd);
		return diag_fail_errno(d, err, "filling Maglev table %u: %s", t->key,
				       strerror(-err));
	}
	/* the swap: the datapath sees the old array or this one */
	if (bpf_map_update_elem(outer_fd, &t->key, &fd, BPF_ANY) < 0) {
		err = -errno;
		close(fd);
		return diag_fail_errno(d, err, "updating %s at %u: %s", MAP_LB_MAGLEV, t->key,
				       strerror(-err));
	}
	close(fd); /* the outer map holds it now */
	return 0;
}

int lb_maglev_map_delete(int outer_fd, uint32_t key, struct diag *d)
{
	if (bpf_map_delete_elem(outer_fd, &key) < 0 && errno != ENOENT)
		return diag_fail_errno(d, -errno, "deleting Maglev table %u from %s: %s", key,
				       MAP_LB_MAGLEV, strerror(errno));
	return 0;
}

/* Reads the inner array with id `id` into t. */
static int inner_read(uint32_t id, struct lb_maglev_table *t, struct diag *d)
{
	struct bpf_map_info info = {0};
	uint32_t len = sizeof(info), n, i, count, *keys = NULL, batch = 0;
	int fd = bpf_map_get_fd_by_id(id), err = 0;

	if (fd < 0)
		return diag_fail_errno(d, -errno, "Maglev table %u (map id %u): %s", t->key, id,
				       strerror(errno));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_MAP_TYPE_ARRAY ||
	    info.key_size != 4 || info.value_size != 4 || info.max_entries <= LB_MAGLEV_HDR ||
	    info.max_entries > LB_MAGLEV_HDR + LB_MAGLEV_M_MAX) {
		close(fd);
		return diag_fail_errno(d, -EINVAL, "Maglev table %u (map id %u) is no table",
				       t->key, id);
	}
	n = info.max_entries;
	t->words = calloc(n, sizeof(*t->words));
	keys = malloc((size_t)n * sizeof(*keys));
	if (!t->words || !keys) {
		err = diag_fail_errno(d, -ENOMEM, "out of memory");
		goto out;
	}
	t->nwords = n;
	count = n;
	if (bpf_map_lookup_batch(fd, NULL, &batch, keys, t->words, &count, NULL) < 0 &&
	    !(errno == ENOENT && count == n)) {
		for (i = 0; i < n; i++) /* no batch lookups on arrays in this kernel */
			if (bpf_map_lookup_elem(fd, &i, &t->words[i]) < 0) {
				err = diag_fail_errno(d, -errno, "reading Maglev table %u: %s",
						      t->key, strerror(errno));
				goto out;
			}
	}
out:
	free(keys);
	close(fd);
	return err;
}

static int table_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct lb_maglev_table *)a)->key;
	uint32_t y = ((const struct lb_maglev_table *)b)->key;

	return x < y ? -1 : x > y;
}

int lb_maglev_map_read(int outer_fd, struct lb_maglev_table **out, size_t *n, struct diag *d)
{
	struct lb_maglev_table *v = NULL;
	uint32_t key, next, id;
	size_t cap = 0, cnt = 0;
	void *prev = NULL;
	int err;

	*out = NULL;
	*n = 0;
	while (cnt < OUTER_READ_MAX && bpf_map_get_next_key(outer_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(outer_fd, &key, &id) < 0)
			continue; /* deleted meanwhile */
		if (cnt == cap) {
			void *g = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (!g) {
				lb_maglev_tables_free(v, cnt);
				return diag_fail_errno(d, -ENOMEM, "out of memory");
			}
			v = g;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		v[cnt].key = key;
		err = inner_read(id, &v[cnt], d);
		if (err) {
			lb_maglev_tables_free(v, cnt + 1);
			return err;
		}
		cnt++;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), table_cmp);
	*out = v;
	*n = cnt;
	return 0;
}
