/* SPDX-License-Identifier: Apache-2.0 */
/* Node-local CIDR identities: one per distinct prefix a policy mentions, numbered from
 * IDENTITY_LOCAL_CIDR_MIN in order of first mention. 0.0.0.0/0 is the world identity. Also
 * the identity sets the policy compilers collect peers into. */
#include "policy.h"
#include "ipaddr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint32_t cidr_table_find(const struct cidr_table *t, struct cidr4 c)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].cidr.addr == c.addr && t->v[i].cidr.len == c.len)
			return t->v[i].id;
	return 0;
}

int cidr_table_add(struct cidr_table *t, struct cidr4 c)
{
	struct cidr_ident *v;

	if (c.len == 0 || cidr_table_find(t, c))
		return 0;
	v = realloc(t->v, (t->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	v[t->n].cidr = c;
	v[t->n].id = IDENTITY_LOCAL_CIDR_MIN + (uint32_t)t->n;
	t->n++;
	return 0;
}

void cidr_table_free(struct cidr_table *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

int id_set_add(struct id_set *s, uint32_t id)
{
	uint32_t *v;
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return 0;
	if (s->n == s->cap) {
		v = realloc(s->v, (s->cap ? s->cap * 2 : 16) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = s->cap ? s->cap * 2 : 16;
	}
	s->v[s->n++] = id;
	return 0;
}

int cidr_table_ids(const struct cidr_table *t, struct cidr4 cidr, const struct cidr4 *except,
		   size_t nexcept, struct id_set *ids)
{
	const struct cidr_ident *ci;
	size_t i, k;
	int err;

	if (cidr.len == 0) {
		err = id_set_add(ids, IDENTITY_WORLD);
		if (err)
			return err;
	}
	for (i = 0; i < t->n; i++) {
		ci = &t->v[i];
		if (!cidr4_contains(cidr.addr, cidr.len, ci->cidr.addr, ci->cidr.len))
			continue;
		for (k = 0; k < nexcept; k++)
			if (cidr4_contains(except[k].addr, except[k].len, ci->cidr.addr,
					   ci->cidr.len))
				break;
		if (k < nexcept)
			continue;
		err = id_set_add(ids, ci->id);
		if (err)
			return err;
	}
	return 0;
}
