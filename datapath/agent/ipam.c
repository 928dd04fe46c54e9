/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pod IPAM through the store (layout in ipam_rec.h): this node's allocations are read from
 * the agent's cache into one record, changed with ipam_rec_*(), and the one allocation that
 * changed is written as its own key (create-only, or compare-and-swap on its mod_revision)
 * and put into the cache at once; a lost race refreshes that key and retries. Every agent
 * reads every allocation, so addresses agree cluster-wide.
 */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ipaddr.h"

#define IPAM_CAS_TRIES 16

/* status.podIP of the stored Pod "ns/name" if it is placed on node, else 0. */
static uint32_t stored_pod_ip(struct agent *a, struct agent_obj *o, const char *node)
{
	agent_obj_derive(a, o); /* read once per version */
	return o->pod_node && !strcmp(o->pod_node, node) ? o->pod_ip : 0;
}

/* The stored pods of this node that pin an address (status.podIP), gathered again only when
 * a Pod object came, changed or went: not once per allocation over every pod. Their keys
 * stay valid until then (objects are not moved). */
static int pinned_refresh(struct agent *a)
{
	const char *prefix = AGENT_OBJ_PREFIX "Pod/";
	size_t plen = strlen(prefix), i;
	uint32_t ip;

	if (a->pinned_valid && a->pinned_gen == a->pods_gen)
		return 0;
	a->npinned = 0;
	for (i = agent_objs_lower_bound(a, prefix);
	     i < a->nobjs && !strncmp(a->objs[i]->key, prefix, plen); i++) {
		ip = stored_pod_ip(a, a->objs[i], a->o.node);
		if (!ip)
			continue;
		if (a->npinned == a->pinned_cap) {
			size_t cap = a->pinned_cap ? 2 * a->pinned_cap : 64;
			struct agent_pinned *v = realloc(a->pinned, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			a->pinned = v;
			a->pinned_cap = cap;
		}
		a->pinned[a->npinned++] = (struct agent_pinned){.ip = ip,
								.pod = a->objs[i]->key + plen};
	}
	a->pinned_gen = a->pods_gen;
	a->pinned_valid = true;
	return 0;
}

/* Addresses pinned by other stored pods of this node (they must not be handed out), and
 * the one pinned for pod itself (*own). */
static int pinned_addresses(struct agent *a, const char *pod, uint32_t **out, size_t *n,
			    uint32_t *own)
{
	uint32_t *v;
	size_t i;
	int err = pinned_refresh(a);

	*n = 0;
	*own = 0;
	if (err)
		return err;
	v = calloc(a->npinned + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < a->npinned; i++) {
		if (!strcmp(a->pinned[i].pod, pod))
			*own = a->pinned[i].ip;
		else
			v[(*n)++] = a->pinned[i].ip;
	}
	*out = v;
	return 0;
}

static void range_key(const struct agent *a, char *key, size_t size)
{
	snprintf(key, size, "%s%s", IPAM_KEY_PREFIX, a->o.node);
}

/* Puts what the store now holds at key into the cache (deleting it there when absent). */
static int refresh(struct agent *a, const char *key, struct diag *d)
{
	struct store_kv kv;
	int err = store_get(a->st, key, &kv, d);

	if (err == -ENOENT) {
		agent_objects_delete(a, key);
		return 0;
	}
	if (err)
		return err;
	err = agent_objects_put(a, &kv);
	store_kv_free(&kv);
	return err ? diag_fail_errno(d, err, "out of memory") : 0;
}

/* Writes key (if_rev: 0 create-only, else compare-and-swap) and caches what was written. */
static int put_cached(struct agent *a, const char *key, const char *text, int64_t if_rev,
		      struct diag *d)
{
	struct store_kv kv = {.key = (char *)key, .value = (char *)text, .value_len = strlen(text)};
	const struct agent_obj *o;
	int64_t rev = 0;
	int err;

	err = store_put(a->st, key, text, kv.value_len, 0, if_rev, &rev, d);
	if (err)
		return err;
	o = if_rev ? agent_obj_find(a, key) : NULL;
	kv.create_revision = o ? o->create_rev : rev;
	kv.mod_revision = rev;
	return agent_objects_put(a, &kv) ? diag_fail_errno(d, -ENOMEM, "out of memory") : 0;
}

/* Moves allocations kept inside the range record (the earlier format) to keys of their own,
 * in one transaction that also empties the record. */
static int migrate_legacy(struct agent *a, const struct agent_obj *o, struct diag *d)
{
	const struct ipam_rec *r = o->ipam;
	struct ipam_rec empty = *r;
	struct store_op *ops = calloc(r->n + 1, sizeof(*ops));
	char **keys = calloc(r->n + 1, sizeof(*keys)), **texts = calloc(r->n + 2, sizeof(*texts));
	struct store_cmp cmp = {.key = o->key, .mod_revision = o->mod_rev};
	size_t i, n = 0;
	int err = -ENOMEM;

	if (!ops || !keys || !texts || r->n + 1 > STORE_TXN_OPS_MAX)
		goto out;
	for (i = 0; i < r->n; i++, n++) {
		keys[i] = malloc(STORE_KEY_MAX + 1);
		texts[i] = ipam_alloc_format(&r->v[i]);
		if (!keys[i] || !texts[i])
			goto out;
		ipam_alloc_key(r->node, r->v[i].ip, keys[i], STORE_KEY_MAX + 1);
		ops[i] = (struct store_op){.type = STORE_OP_PUT, .key = keys[i], .value = texts[i],
					   .value_len = strlen(texts[i])};
	}
	empty.v = NULL;
	empty.n = 0;
	texts[n] = ipam_rec_format(&empty);
	if (!texts[n])
		goto out;
	ops[n] = (struct store_op){.type = STORE_OP_PUT, .key = o->key, .value = texts[n],
				   .value_len = strlen(texts[n])};
	err = store_txn(a->st, &cmp, 1, ops, n + 1, NULL, d);
	if (!err)
		agent_log(a, "ipam: moved %zu allocations of %s to a key each", n, o->key);
	/* into the cache now (o goes stale with the first put: nothing below reads it) */
	for (i = 0; !err && i < n; i++)
		err = refresh(a, keys[i], d);
out:
	if (err == -ENOMEM)
		diag_fail_errno(d, err, "out of memory");
	for (i = 0; keys && i < n; i++)
		free(keys[i]);
	for (i = 0; texts && i <= n; i++)
		free(texts[i]);
	free(keys);
	free(texts);
	free(ops);
	return err;
}

/* This node's range record, checked against the node's range; created when absent (with
 * create, else -ENOENT). Allocations still inside it are moved out first. */
static int range_ensure(struct agent *a, bool create, struct diag *d)
{
	char key[STORE_KEY_MAX + 1], c1[CIDR4_STR_MAX], c2[CIDR4_STR_MAX], *text;
	struct agent_obj *o;
	struct ipam_rec r;
	int err = 0, tries;

	range_key(a, key, sizeof(key));
	for (tries = 0; tries < IPAM_CAS_TRIES; tries++) {
		o = agent_obj_find(a, key);
		if (!o) {
			err = refresh(a, key, d);
			if (err)
				return err;
			o = agent_obj_find(a, key);
		}
		if (!o) {
			if (!create)
				return -ENOENT;
			memset(&r, 0, sizeof(r));
			snprintf(r.node, sizeof(r.node), "%s", a->o.node);
			r.cidr = a->pod_cidr;
			r.cidr_len = a->pod_cidr_len;
			text = ipam_rec_format(&r);
			if (!text)
				return diag_fail_errno(d, -ENOMEM, "out of memory");
			err = put_cached(a, key, text, 0, d);
			free(text);
			if (err && err != -ECANCELED)
				return err;
			continue;
		}
		agent_obj_derive(a, o);
		if (!o->ipam)
			return diag_fail_errno(d, -EINVAL, "IPAM record %s is malformed (see the "
					       "agent log)", key);
		if (o->ipam->cidr != a->pod_cidr || o->ipam->cidr_len != a->pod_cidr_len)
			return diag_fail_errno(d, -EEXIST,
					       "IPAM record %s is for pod range %s but the node's "
					       "range is now %s (remove the stale record)",
					       key, cidr4_format(o->ipam->cidr, o->ipam->cidr_len, c1),
					       cidr4_format(a->pod_cidr, a->pod_cidr_len, c2));
		if (!o->ipam->n)
			return 0;
		err = migrate_legacy(a, o, d);
		if (err && err != -ECANCELED)
			return err;
		err = refresh(a, key, d);
		if (err)
			return err;
	}
	return diag_fail_errno(d, -EAGAIN, "IPAM record %s keeps changing: try again", key);
}

/* This node's allocations as one record (from the cache, where the agent's own writes land
 * at once), sorted by address. */
static int view_build(struct agent *a, struct ipam_rec *r, struct diag *d)
{
	char prefix[STORE_KEY_MAX + 1];
	size_t plen, lo, n = 0, i;

	memset(r, 0, sizeof(*r));
	snprintf(r->node, sizeof(r->node), "%s", a->o.node);
	r->cidr = a->pod_cidr;
	r->cidr_len = a->pod_cidr_len;
	snprintf(prefix, sizeof(prefix), "%s%s/", IPAM_KEY_PREFIX, a->o.node);
	plen = strlen(prefix);
	lo = agent_objs_lower_bound(a, prefix); /* the node's keys follow in a row */
	for (i = lo; i < a->nobjs && !strncmp(a->objs[i]->key, prefix, plen); i++)
		n++;
	r->v = calloc(n + 1, sizeof(*r->v));
	if (!r->v)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	for (i = lo; i < lo + n; i++) {
		struct agent_obj *o = a->objs[i];

		agent_obj_derive(a, o);
		if (o->ipam && o->ipam->n == 1)
			r->v[r->n++] = o->ipam->v[0];
	}
	return 0;
}

/* The cached object of the allocation key of ip (NULL: none). */
static struct agent_obj *alloc_obj(struct agent *a, uint32_t ip, char *key, size_t size)
{
	ipam_alloc_key(a->o.node, ip, key, size);
	return agent_obj_find(a, key);
}

int agent_ipam_allocate(struct agent *a, const char *pod, const char *container_id,
			uint32_t requested, uint32_t *ip, struct diag *d)
{
	char addr[IP4_STR_MAX], c[CIDR4_STR_MAX], key[STORE_KEY_MAX + 1], *text;
	uint32_t *reserved = NULL, own = 0;
	const struct ipam_alloc *al;
	struct agent_obj *o;
	size_t nreserved = 0;
	struct ipam_rec r;
	bool changed;
	int err = 0, tries;

	*ip = 0;
	if (!a->pod_cidr_len && !a->pod_cidr)
		return diag_fail_errno(d, -EAGAIN, "node %s has no pod range yet", a->o.node);
	err = range_ensure(a, true, d);
	if (err)
		return err;
	for (tries = 0; tries < IPAM_CAS_TRIES; tries++) {
		free(reserved);
		reserved = NULL;
		err = pinned_addresses(a, pod, &reserved, &nreserved, &own);
		if (err)
			break;
		err = view_build(a, &r, d);
		if (err)
			break;
		err = ipam_rec_allocate(&r, pod, container_id, requested ? requested : own,
					reserved, nreserved, ip, &changed);
		if (err == -EBUSY && !requested) /* pinned address differs: keep the held one */
			err = ipam_rec_allocate(&r, pod, container_id, 0, reserved, nreserved, ip,
						&changed);
		if (err) {
			const struct ipam_alloc *have = ipam_rec_find_pod(&r, pod);
			const struct ipam_alloc *other =
				ipam_rec_find_ip(&r, requested ? requested : own);

			switch (err) {
			case -EBUSY:
				diag_fail_errno(d, err, "pod %s already has address %s", pod,
						have ? ip4_format(have->ip, addr) : "?");
				break;
			case -EEXIST:
				diag_fail_errno(d, err, "address %s is taken%s%s",
						ip4_format(requested ? requested : own, addr),
						other ? " by pod " : " (pinned by another pod)",
						other ? other->pod : "");
				break;
			case -ERANGE:
				diag_fail_errno(d, err,
						"address %s is not a host address of node %s's pod "
						"range %s",
						ip4_format(requested ? requested : own, addr),
						a->o.node, cidr4_format(r.cidr, r.cidr_len, c));
				break;
			case -ENOSPC:
				diag_fail_errno(d, err, "node %s's pod range %s is full", a->o.node,
						cidr4_format(r.cidr, r.cidr_len, c));
				break;
			default:
				diag_fail_errno(d, err, "allocating an address: %s",
						strerror(-err));
			}
			ipam_rec_free(&r);
			break;
		}
		if (changed) {
			/* a new key is created only if absent; a new container id replaces the
			 * version this view was built from */
			al = ipam_rec_find_ip(&r, *ip);
			o = alloc_obj(a, *ip, key, sizeof(key));
			text = al ? ipam_alloc_format(al) : NULL;
			err = text ? put_cached(a, key, text, o ? o->mod_rev : 0, d)
				   : diag_fail_errno(d, -ENOMEM, "out of memory");
			free(text);
			if (err == -ECANCELED)
				err = refresh(a, key, d) ?: -ECANCELED;
		}
		ipam_rec_free(&r);
		if (err != -ECANCELED)
			break;
	}
	free(reserved);
	if (err == -ECANCELED)
		return diag_fail_errno(d, -EAGAIN,
				       "IPAM allocations of node %s keep changing: try again",
				       a->o.node);
	if (!err)
		agent_log(a, "ipam: %s has %s", pod, ip4_format(*ip, addr));
	return err;
}

int agent_ipam_release(struct agent *a, const char *pod, const char *container_id, uint32_t *ip,
		       struct diag *d)
{
	char addr[IP4_STR_MAX], key[STORE_KEY_MAX + 1];
	struct agent_obj *o;
	struct ipam_rec r;
	int err = 0, tries;

	*ip = 0;
	err = range_ensure(a, false, d);
	if (err == -ENOENT || err == -EEXIST) /* no record, or a stale one: nothing of ours */
		return 0;
	if (err)
		return err;
	for (tries = 0; tries < IPAM_CAS_TRIES; tries++) {
		err = view_build(a, &r, d);
		if (err)
			return err;
		ipam_rec_release(&r, pod, container_id, ip);
		ipam_rec_free(&r);
		if (!*ip)
			break;
		o = alloc_obj(a, *ip, key, sizeof(key));
		err = store_delete(a->st, key, o ? o->mod_rev : STORE_ANY_REV, NULL, d);
		if (!err || err == -ENOENT) {
			agent_objects_delete(a, key);
			err = 0;
			break;
		}
		if (err != -ECANCELED)
			return err;
		err = refresh(a, key, d);
		if (err)
			return err;
		err = -ECANCELED;
	}
	if (err == -ECANCELED)
		return diag_fail_errno(d, -EAGAIN,
				       "IPAM allocations of node %s keep changing: try again",
				       a->o.node);
	if (*ip)
		agent_log(a, "ipam: released %s of %s", ip4_format(*ip, addr),
			  pod && *pod ? pod : container_id);
	return 0;
}
