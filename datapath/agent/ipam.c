/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pod IPAM through the store: this node's record at /ciliate/ipam/<node> is read, changed
 * with ipam_rec_*() and written back with compare-and-swap on its mod_revision (create-only
 * when absent), retrying on a lost race. Every agent reads every record, so addresses agree
 * cluster-wide.
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

/* Addresses pinned by other stored pods of this node (they must not be handed out), and
 * the one pinned for pod itself (*own). */
static int pinned_addresses(struct agent *a, const char *pod, uint32_t **out, size_t *n,
			    uint32_t *own)
{
	const char *prefix = AGENT_OBJ_PREFIX "Pod/";
	size_t plen = strlen(prefix), i;
	uint32_t *v, ip;

	*n = 0;
	*own = 0;
	v = calloc(a->nobjs + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < a->nobjs; i++) {
		if (strncmp(a->objs[i].key, prefix, plen))
			continue;
		ip = stored_pod_ip(a, &a->objs[i], a->o.node);
		if (!ip)
			continue;
		if (!strcmp(a->objs[i].key + plen, pod))
			*own = ip;
		else
			v[(*n)++] = ip;
	}
	*out = v;
	return 0;
}

static void ipam_key(const struct agent *a, char *key, size_t size)
{
	snprintf(key, size, "%s%s", IPAM_KEY_PREFIX, a->o.node);
}

/* Reads this node's record (a fresh one when absent: *mod_rev 0). */
static int rec_read(struct agent *a, struct ipam_rec *r, int64_t *mod_rev, struct diag *d)
{
	char key[STORE_KEY_MAX + 1], why[128], c1[CIDR4_STR_MAX], c2[CIDR4_STR_MAX];
	struct store_kv kv;
	int err;

	ipam_key(a, key, sizeof(key));
	err = store_get(a->st, key, &kv, d);
	if (err == -ENOENT) {
		memset(r, 0, sizeof(*r));
		snprintf(r->node, sizeof(r->node), "%s", a->o.node);
		r->cidr = a->pod_cidr;
		r->cidr_len = a->pod_cidr_len;
		*mod_rev = 0;
		return 0;
	}
	if (err)
		return err;
	*mod_rev = kv.mod_revision;
	err = ipam_rec_parse(kv.value, kv.value_len, r, why, sizeof(why));
	store_kv_free(&kv);
	if (err)
		return diag_fail_errno(d, err, "IPAM record %s is malformed: %s", key, why);
	if (r->cidr != a->pod_cidr || r->cidr_len != a->pod_cidr_len) {
		err = diag_fail_errno(d, -EEXIST,
				      "IPAM record %s is for pod range %s but the node's range is "
				      "now %s (remove the stale record)",
				      key, cidr4_format(r->cidr, r->cidr_len, c1),
				      cidr4_format(a->pod_cidr, a->pod_cidr_len, c2));
		ipam_rec_free(r);
	}
	return err;
}

static int rec_write(struct agent *a, const struct ipam_rec *r, int64_t mod_rev, struct diag *d)
{
	char key[STORE_KEY_MAX + 1], *text = ipam_rec_format(r);
	int err;

	if (!text)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	ipam_key(a, key, sizeof(key));
	err = store_put(a->st, key, text, strlen(text), 0, mod_rev, NULL, d);
	free(text);
	return err;
}

int agent_ipam_allocate(struct agent *a, const char *pod, const char *container_id,
			uint32_t requested, uint32_t *ip, struct diag *d)
{
	char addr[IP4_STR_MAX], c[CIDR4_STR_MAX];
	uint32_t *reserved = NULL, own = 0;
	size_t nreserved = 0;
	struct ipam_rec r;
	int64_t mod_rev;
	bool changed;
	int err = 0, tries;

	*ip = 0;
	if (!a->pod_cidr_len && !a->pod_cidr)
		return diag_fail_errno(d, -EAGAIN, "node %s has no pod range yet", a->o.node);
	for (tries = 0; tries < IPAM_CAS_TRIES; tries++) {
		free(reserved);
		reserved = NULL;
		err = pinned_addresses(a, pod, &reserved, &nreserved, &own);
		if (err)
			break;
		err = rec_read(a, &r, &mod_rev, d);
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
		if (changed)
			err = rec_write(a, &r, mod_rev, d);
		ipam_rec_free(&r);
		if (err != -ECANCELED)
			break;
	}
	free(reserved);
	if (err == -ECANCELED)
		return diag_fail_errno(d, -EAGAIN,
				       "IPAM record of node %s keeps changing: try "
				       "again",
				       a->o.node);
	if (!err)
		agent_log(a, "ipam: %s has %s", pod, ip4_format(*ip, addr));
	return err;
}

int agent_ipam_release(struct agent *a, const char *pod, const char *container_id, uint32_t *ip,
		       struct diag *d)
{
	char addr[IP4_STR_MAX];
	struct ipam_rec r;
	int64_t mod_rev;
	int err = 0, tries;

	*ip = 0;
	for (tries = 0; tries < IPAM_CAS_TRIES; tries++) {
		err = rec_read(a, &r, &mod_rev, d);
		if (err == -EEXIST) /* a stale record: nothing of ours to release */
			return 0;
		if (err)
			return err;
		ipam_rec_release(&r, pod, container_id, ip);
		if (*ip)
			err = rec_write(a, &r, mod_rev, d);
		ipam_rec_free(&r);
		if (err != -ECANCELED)
			break;
	}
	if (err == -ECANCELED)
		return diag_fail_errno(d, -EAGAIN,
				       "IPAM record of node %s keeps changing: try "
				       "again",
				       a->o.node);
	if (!err && *ip)
		agent_log(a, "ipam: released %s of %s", ip4_format(*ip, addr),
			  pod && *pod ? pod : container_id);
	return err;
}
