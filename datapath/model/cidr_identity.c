/* SPDX-License-Identifier: Apache-2.0 */
/* Node-local CIDR identities: one per distinct prefix a policy mentions, numbered from
 * IDENTITY_LOCAL_CIDR_MIN in order of first mention. 0.0.0.0/0 is the world identity. */
#include "policy.h"

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
