/* SPDX-License-Identifier: Apache-2.0 */
/* The policy map builder: entries keyed as in struct policy_key (abi.h), rule names for
 * traces, port ranges split into LPM prefixes, deny normalisation and de-duplication. */
#include "policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int polb_init(struct policy_builder *pb)
{
	memset(pb, 0, sizeof(*pb));
	pb->names = calloc(8, sizeof(*pb->names));
	if (!pb->names)
		return -ENOMEM;
	pb->cap_names = 8;
	pb->names[0] = strdup("");
	if (!pb->names[0]) {
		free(pb->names);
		pb->names = NULL;
		return -ENOMEM;
	}
	pb->nnames = 1;
	return 0;
}

int polb_rule_id(struct policy_builder *pb, const char *name, uint32_t *id)
{
	char **v;
	size_t i;

	for (i = 1; i < pb->nnames; i++) {
		if (!strcmp(pb->names[i], name)) {
			*id = (uint32_t)i;
			return 0;
		}
	}
	if (pb->nnames == pb->cap_names) {
		v = realloc(pb->names, pb->cap_names * 2 * sizeof(*v));
		if (!v)
			return -ENOMEM;
		pb->names = v;
		pb->cap_names *= 2;
	}
	pb->names[pb->nnames] = strdup(name);
	if (!pb->names[pb->nnames])
		return -ENOMEM;
	*id = (uint32_t)pb->nnames++;
	return 0;
}

int polb_add(struct policy_builder *pb, uint32_t ep_id, uint8_t dir, uint32_t identity,
	     uint8_t proto, uint16_t port, uint8_t port_bits, uint32_t flags, uint32_t rule_id)
{
	struct node_policy_entry *e, *v;
	uint16_t mask;

	if (port_bits > 16 || (proto == POLB_ANY_PROTO && port_bits))
		return -EINVAL;
	if (pb->n == pb->cap) {
		v = realloc(pb->v, (pb->cap ? pb->cap * 2 : 64) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		pb->v = v;
		pb->cap = pb->cap ? pb->cap * 2 : 64;
	}
	e = &pb->v[pb->n++];
	memset(e, 0, sizeof(*e));
	mask = port_bits ? (uint16_t)(0xffffu << (16 - port_bits)) : 0;
	e->key.prefixlen = proto == POLB_ANY_PROTO ? POLICY_PREFIX_FIXED :
						  POLICY_PREFIX_PROTO + port_bits;
	e->key.ep_id = ep_id;
	e->key.identity = identity;
	e->key.dir = dir;
	e->key.proto = proto;
	e->key.dport = htons(port & mask);
	e->val.flags = flags;
	e->val.rule_id = rule_id;
	return 0;
}

size_t port_range_split(uint16_t lo, uint16_t hi, uint16_t *starts, uint8_t *bits)
{
	uint32_t cur = lo, end = hi;
	size_t n = 0;
	unsigned int k;

	while (cur <= end) {
		k = 0;
		while (k < 16 && !(cur & ((2u << k) - 1)) && cur + (2u << k) - 1 <= end)
			k++;
		starts[n] = (uint16_t)cur;
		bits[n] = (uint8_t)(16 - k);
		n++;
		cur += 1u << k;
	}
	return n;
}

int polb_add_range(struct policy_builder *pb, uint32_t ep_id, uint8_t dir, uint32_t identity,
		   uint8_t proto, uint16_t lo, uint16_t hi, uint32_t flags, uint32_t rule_id)
{
	uint16_t starts[32];
	uint8_t bits[32];
	size_t i, n;
	int err;

	if (lo > hi || proto == POLB_ANY_PROTO)
		return -EINVAL;
	n = port_range_split(lo, hi, starts, bits);
	for (i = 0; i < n; i++) {
		err = polb_add(pb, ep_id, dir, identity, proto, starts[i], bits[i], flags, rule_id);
		if (err)
			return err;
	}
	return 0;
}

static int key_cmp(const struct policy_key *a, const struct policy_key *b)
{
	if (a->ep_id != b->ep_id)
		return a->ep_id < b->ep_id ? -1 : 1;
	if (a->dir != b->dir)
		return a->dir < b->dir ? -1 : 1;
	if (a->identity != b->identity)
		return a->identity < b->identity ? -1 : 1;
	if (a->prefixlen == POLICY_PREFIX_FIXED || b->prefixlen == POLICY_PREFIX_FIXED) {
		if (a->prefixlen != b->prefixlen)
			return a->prefixlen < b->prefixlen ? -1 : 1;
		return 0;
	}
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (ntohs(a->dport) != ntohs(b->dport))
		return ntohs(a->dport) < ntohs(b->dport) ? -1 : 1;
	if (a->prefixlen != b->prefixlen)
		return a->prefixlen < b->prefixlen ? -1 : 1;
	return 0;
}

static int entry_cmp(const void *x, const void *y)
{
	const struct node_policy_entry *a = x, *b = y;
	int r = key_cmp(&a->key, &b->key);

	if (r)
		return r;
	/* equal keys: deny first, then the lowest rule id, so the first one is kept */
	if ((a->val.flags & POLICY_F_DENY) != (b->val.flags & POLICY_F_DENY))
		return (a->val.flags & POLICY_F_DENY) ? -1 : 1;
	if (a->val.rule_id != b->val.rule_id)
		return a->val.rule_id < b->val.rule_id ? -1 : 1;
	return 0;
}

static bool same_scope(const struct policy_key *a, const struct policy_key *b)
{
	return a->ep_id == b->ep_id && a->dir == b->dir && a->identity == b->identity;
}

/* True if every packet matching key a also matches deny key d (same scope assumed). */
static bool covers(const struct policy_key *d, const struct policy_key *a)
{
	uint16_t mask;

	if (d->prefixlen > a->prefixlen)
		return false;
	if (d->prefixlen <= POLICY_PREFIX_FIXED)
		return true;
	if (d->proto != a->proto)
		return false;
	if (d->prefixlen <= POLICY_PREFIX_PROTO)
		return true;
	mask = (uint16_t)(0xffffu << (POLICY_PREFIX_FULL - d->prefixlen));
	return (ntohs(d->dport) & mask) == (ntohs(a->dport) & mask);
}

void policy_entries_normalize(struct node_policy_entry *v, size_t *n)
{
	size_t start, end, i, j, out;

	if (!*n)
		return;
	qsort(v, *n, sizeof(*v), entry_cmp);
	for (start = 0; start < *n; start = end) {
		for (end = start + 1; end < *n && same_scope(&v[start].key, &v[end].key); end++)
			;
		for (j = start; j < end; j++) {
			if (!(v[j].val.flags & POLICY_F_DENY))
				continue;
			for (i = start; i < end; i++) {
				if ((v[i].val.flags & POLICY_F_DENY) || !covers(&v[j].key, &v[i].key))
					continue;
				v[i].val.flags |= POLICY_F_DENY;
				v[i].val.rule_id = v[j].val.rule_id;
			}
		}
	}
	qsort(v, *n, sizeof(*v), entry_cmp);
	for (i = 1, out = 1; i < *n; i++) {
		if (!key_cmp(&v[i].key, &v[out - 1].key))
			continue;
		v[out++] = v[i];
	}
	*n = out;
}

int polb_finish(struct policy_builder *pb, struct node_state *ns)
{
	policy_entries_normalize(pb->v, &pb->n);
	ns->policy = pb->v;
	ns->npolicy = pb->n;
	ns->rule_names = pb->names;
	ns->nrule_names = pb->nnames;
	memset(pb, 0, sizeof(*pb));
	return 0;
}

void polb_free(struct policy_builder *pb)
{
	size_t i;

	free(pb->v);
	for (i = 0; i < pb->nnames; i++)
		free(pb->names[i]);
	free(pb->names);
	memset(pb, 0, sizeof(*pb));
}
