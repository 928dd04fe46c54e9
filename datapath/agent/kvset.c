/* SPDX-License-Identifier: Apache-2.0 */
#include "kvset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void kvset_init(struct kvset *s, size_t ksz, size_t vsz)
{
	memset(s, 0, sizeof(*s));
	s->ksz = ksz;
	s->vsz = vsz;
}

void kvset_free(struct kvset *s)
{
	free(s->d);
	s->d = NULL;
	s->n = s->cap = 0;
}

static size_t rec_size(const struct kvset *s)
{
	return s->ksz + s->vsz;
}

int kvset_add(struct kvset *s, const void *k, const void *v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint8_t *d = realloc(s->d, cap * rec_size(s));

		if (!d)
			return -ENOMEM;
		s->d = d;
		s->cap = cap;
	}
	memcpy(s->d + s->n * rec_size(s), k, s->ksz);
	memcpy(s->d + s->n * rec_size(s) + s->ksz, v, s->vsz);
	s->n++;
	return 0;
}

const void *kvset_key(const struct kvset *s, size_t i)
{
	return s->d + i * rec_size(s);
}

const void *kvset_val(const struct kvset *s, size_t i)
{
	return s->d + i * rec_size(s) + s->ksz;
}

/* While sorting, records carry their index after the value so that equal keys keep their
 * insertion order (a stable sort). */
static int cmp_rec(const void *a, const void *b, void *arg)
{
	const struct kvset *s = arg;
	int c = memcmp(a, b, s->ksz);
	size_t ia, ib;

	if (c)
		return c;
	memcpy(&ia, (const uint8_t *)a + rec_size(s), sizeof(ia));
	memcpy(&ib, (const uint8_t *)b + rec_size(s), sizeof(ib));
	return ia < ib ? -1 : ia > ib;
}

void kvset_sort(struct kvset *s)
{
	size_t rs = rec_size(s), ts = rs + sizeof(size_t), i, w;
	uint8_t *tmp;

	if (s->n < 2)
		return;
	tmp = malloc(s->n * ts);
	if (!tmp)
		return; /* unsorted sets only cost extra writes; diff treats them as sorted */
	for (i = 0; i < s->n; i++) {
		memcpy(tmp + i * ts, s->d + i * rs, rs);
		memcpy(tmp + i * ts + rs, &i, sizeof(i));
	}
	qsort_r(tmp, s->n, ts, cmp_rec, s);
	/* keep the last of each run of equal keys */
	for (i = 0, w = 0; i < s->n; i++) {
		if (i + 1 < s->n && !memcmp(tmp + i * ts, tmp + (i + 1) * ts, s->ksz))
			continue;
		memcpy(s->d + w * rs, tmp + i * ts, rs);
		w++;
	}
	s->n = w;
	free(tmp);
}

const void *kvset_get(const struct kvset *s, const void *k)
{
	size_t lo = 0, hi = s->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(kvset_key(s, mid), k, s->ksz);
		if (!c)
			return kvset_val(s, mid);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int kvset_diff(const struct kvset *cur, const struct kvset *want, struct kvset *ups,
	       struct kvset *dels)
{
	size_t i = 0, j = 0;
	int c, err = 0;

	kvset_init(ups, want->ksz, want->vsz);
	kvset_init(dels, cur->ksz, cur->vsz);
	while (!err && (i < cur->n || j < want->n)) {
		if (i >= cur->n)
			c = 1;
		else if (j >= want->n)
			c = -1;
		else
			c = memcmp(kvset_key(cur, i), kvset_key(want, j), cur->ksz);
		if (c < 0) {
			err = kvset_add(dels, kvset_key(cur, i), kvset_val(cur, i));
			i++;
		} else if (c > 0) {
			err = kvset_add(ups, kvset_key(want, j), kvset_val(want, j));
			j++;
		} else {
			if (memcmp(kvset_val(cur, i), kvset_val(want, j), cur->vsz))
				err = kvset_add(ups, kvset_key(want, j), kvset_val(want, j));
			i++;
			j++;
		}
	}
	if (err) {
		kvset_free(ups);
		kvset_free(dels);
	}
	return err;
}

void kvset_move(struct kvset *dst, struct kvset *src)
{
	kvset_free(dst);
	*dst = *src;
	src->d = NULL;
	src->n = src->cap = 0;
}

void kvset_lpm_canonical(void *key, size_t ksz)
{
	uint8_t *b = (uint8_t *)key + 4;
	size_t data = ksz - 4, i;
	uint32_t plen;

	memcpy(&plen, key, sizeof(plen));
	if ((size_t)plen >= data * 8)
		return;
	for (i = plen / 8; i < data; i++) {
		if (i == plen / 8 && plen % 8)
			b[i] &= (uint8_t)(0xff << (8 - plen % 8));
		else
			b[i] = 0;
	}
}
