/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reconcile: model -> node state -> wanted map contents -> the difference against what the
 * maps hold -> writes. Only changed entries are written and only removed ones deleted, so a
 * restart that finds everything in place writes nothing. Upserts go first in dependency
 * order (ipcache, policy, then endpoints: a pod becomes reachable only once its policy is
 * in place; service backends, reverse NAT, then frontends: a frontend never names a backend
 * the map lacks), deletions after in reverse order.
 *
 * The agent's endpoint ids are derived from the pod address (low 16 bits), so they stay the
 * same across restarts and while other pods come and go.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "agent/api.h"
#include "loader/maps.h"

static const struct {
	const char *name;
	size_t ksz, vsz;
	bool lpm;
} map_desc[AM_COUNT] = {
	[AM_IPCACHE] = {MAP_IPCACHE, sizeof(struct ipcache_key), sizeof(struct ipcache_value),
			true},
	[AM_POLICY] = {MAP_POLICY, sizeof(struct policy_key), sizeof(struct policy_value), true},
	[AM_ENDPOINTS] = {MAP_ENDPOINTS, sizeof(struct endpoint_key), sizeof(struct endpoint_info),
			  false},
	[AM_LXC] = {MAP_LXC, sizeof(uint32_t), sizeof(struct endpoint_info), false},
	[AM_LB_SERVICES] = {MAP_LB_SERVICES, sizeof(struct lb_key), sizeof(struct lb_service),
			    false},
	[AM_LB_BACKENDS] = {MAP_LB_BACKENDS, sizeof(uint32_t), sizeof(struct lb_backend), false},
	[AM_LB_REVNAT] = {MAP_LB_REVNAT, sizeof(uint32_t), sizeof(struct lb_reverse_nat), false},
	[AM_LB_AFFINITY_MATCH] = {MAP_LB_AFFINITY_MATCH, sizeof(struct lb_affinity_match),
				  sizeof(uint32_t), false},
	[AM_LB_SRC_RANGES] = {MAP_LB_SRC_RANGES, sizeof(struct lb_src_range_key), sizeof(uint8_t),
			      true},
};

static uint32_t stable_ep_id(uint32_t ip)
{
	uint32_t id = ntohl(ip) & 0xffff;

	return id ? id : 0x10000;
}

static int map_dump(struct agent *a, enum agent_map m, struct kvset *out, struct diag *d)
{
	int fd = datapath_map_fd(a->dp, map_desc[m].name);
	uint8_t key[64], next[64], val[64];
	void *prev = NULL;
	size_t guard = 0;
	int err;

	kvset_init(out, map_desc[m].ksz, map_desc[m].vsz);
	if (fd < 0)
		return diag_fail_errno(d, fd, "map %s not found", map_desc[m].name);
	while (bpf_map_get_next_key(fd, prev, next) == 0 && guard++ < (1u << 22)) {
		memcpy(key, next, map_desc[m].ksz);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, val) < 0)
			continue; /* deleted meanwhile */
		if (map_desc[m].lpm)
			kvset_lpm_canonical(key, map_desc[m].ksz);
		err = kvset_add(out, key, val);
		if (err) {
			kvset_free(out);
			return diag_fail_errno(d, err, "out of memory");
		}
	}
	kvset_sort(out);
	return 0;
}

/* The Maglev tables as ciliate_lb_maglev holds them, into a->maglev_cur. */
static int maglev_load(struct agent *a, struct diag *d)
{
	int fd = datapath_map_fd(a->dp, MAP_LB_MAGLEV);
	struct lb_maglev_table *t;
	size_t n;
	int err;

	if (fd < 0)
		return diag_fail_errno(d, fd, "map %s not found", MAP_LB_MAGLEV);
	err = lb_maglev_map_read(fd, &t, &n, d);
	if (err)
		return err;
	lb_maglev_tables_free(a->maglev_cur, a->nmaglev_cur);
	a->maglev_cur = t;
	a->nmaglev_cur = n;
	return 0;
}

int agent_maps_load(struct agent *a, struct diag *d)
{
	struct kvset s;
	int m, err;

	for (m = 0; m < AM_COUNT; m++) {
		err = map_dump(a, m, &s, d);
		if (err)
			return err;
		kvset_move(&a->cur[m], &s);
	}
	err = maglev_load(a, d);
	if (err)
		return err;
	/* a restart may have cut an endpoint write short between the two copies */
	return dp_lxc_resync(a->dp, d);
}

/* The maps' write API (loader/maps.h) has no per-map deletes or endpoint-map-only writes,
 * which an incremental diff needs; these two are the agent's only raw map writes (the
 * endpoint-by-veth map goes through loader/maps.h, which keeps its slot copy in step). */
static int map_write(struct agent *a, enum agent_map m, const void *k, const void *v, bool del,
		     struct diag *d)
{
	int fd = datapath_map_fd(a->dp, map_desc[m].name);

	if (m == AM_LXC) {
		uint32_t ifindex;
		struct endpoint_info ep;

		memcpy(&ifindex, k, sizeof(ifindex));
		if (del)
			return dp_lxc_delete(a->dp, ifindex, d);
		memcpy(&ep, v, sizeof(ep));
		return dp_lxc_set(a->dp, ifindex, &ep, d);
	}
	if (fd < 0)
		return diag_fail_errno(d, fd, "map %s not found", map_desc[m].name);
	if (del) {
		if (bpf_map_delete_elem(fd, k) < 0 && errno != ENOENT)
			return diag_fail_errno(d, -errno, "deleting from %s: %s", map_desc[m].name,
					       strerror(errno));
		return 0;
	}
	if (bpf_map_update_elem(fd, k, v, BPF_ANY) < 0)
		return diag_fail_errno(d, -errno, "updating %s: %s", map_desc[m].name,
				       strerror(errno));
	return 0;
}

/* The endpoints by pod name (open addressing over indexes + 1 into a->eps), so that a
 * reconcile of n local pods costs n lookups, not n scans. */
struct ep_index {
	uint32_t *slot;
	size_t mask;
};

static uint64_t pod_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static void ep_index_add(struct ep_index *x, const struct agent *a, size_t i)
{
	size_t k = (size_t)pod_hash(a->eps[i].pod) & x->mask;

	while (x->slot[k])
		k = (k + 1) & x->mask;
	x->slot[k] = (uint32_t)i + 1;
}

static int ep_index_init(struct ep_index *x, const struct agent *a, size_t more)
{
	size_t cap = 64, i;

	while (cap < 2 * (a->neps + more))
		cap *= 2;
	x->slot = calloc(cap, sizeof(*x->slot));
	x->mask = cap - 1;
	if (!x->slot)
		return -ENOMEM;
	for (i = 0; i < a->neps; i++)
		ep_index_add(x, a, i);
	return 0;
}

/* Finds (or creates, for discovery by the conventional veth name) the endpoint of a pod of
 * the model. */
static struct agent_ep *model_ep(struct agent *a, struct ep_index *x, const struct m_pod *pod)
{
	char key[IPAM_POD_MAX];
	struct agent_ep *ep;
	size_t k;

	snprintf(key, sizeof(key), "%s/%s", pod->ns, pod->name);
	for (k = (size_t)pod_hash(key) & x->mask; x->slot[k]; k = (k + 1) & x->mask)
		if (!strcmp(a->eps[x->slot[k] - 1].pod, key))
			return &a->eps[x->slot[k] - 1];
	ep = agent_ep_get(a, key);
	if (ep) {
		agent_lxc_ifname(key, ep->ifname, sizeof(ep->ifname));
		ep_index_add(x, a, (size_t)(ep - a->eps));
	}
	return ep;
}

struct wanted {
	struct kvset m[AM_COUNT];
	struct lb_maglev_table *mg; /* the Maglev tables, sorted by key */
	size_t nmg;
	uint32_t *idmap; /* model ep_id -> agent ep_id, indexed by model ep_id */
	size_t nidmap;
};

static void wanted_free(struct wanted *w)
{
	int m;

	for (m = 0; m < AM_COUNT; m++)
		kvset_free(&w->m[m]);
	lb_maglev_tables_free(w->mg, w->nmg);
	free(w->idmap);
}

/* Endpoints: attach the programs to each present veth and describe its entries. An
 * endpoint whose attachment fails is left out of the maps (its error says why); the first
 * such failure goes to attach_err and the count to *nattach_err: the reconcile then fails
 * after the rest is written. */
static int want_endpoints(struct agent *a, struct wanted *w, char *attach_err, size_t errsize,
			  size_t *nattach_err, struct diag *d)
{
	int in_fd = datapath_prog_fd(a->dp, HOOK_FROM_CONTAINER);
	int out_fd = datapath_prog_fd(a->dp, HOOK_TO_CONTAINER);
	struct ep_index x;
	struct diag ad;
	size_t i;
	int err;

	if (ep_index_init(&x, a, a->ns.neps))
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	for (i = 0; i < a->neps; i++)
		a->eps[i].info.ep_id = 0; /* set again for the endpoints still in the model */
	for (i = 0; i < a->ns.neps; i++) {
		const struct node_endpoint *ne = &a->ns.eps[i];
		struct endpoint_info info = ne->info;
		struct endpoint_key k = {0};
		struct agent_ep *ep = model_ep(a, &x, ne->pod);

		if (!ep) {
			free(x.slot);
			return diag_fail_errno(d, -ENOMEM, "out of memory");
		}
		info.ep_id = stable_ep_id(ne->pod->ip);
		if (ne->info.ep_id < w->nidmap)
			w->idmap[ne->info.ep_id] = info.ep_id;
		ep->ip = ne->pod->ip;
		ep->ifindex = agent_ifindex(a, ep->ifname);
		info.ifindex = ep->ifindex;
		ep->info = info;
		if (!ep->ifindex) {
			snprintf(ep->error, sizeof(ep->error), "veth %s not found", ep->ifname);
			continue;
		}
		if (ep->attached_ifindex != ep->ifindex) {
			err = agent_tc_attach((int)ep->ifindex, in_fd, out_fd, &ad);
			if (err) {
				snprintf(ep->error, sizeof(ep->error), "%.255s", ad.msg);
				agent_log(a, "endpoint %s: %s", ep->pod, ad.msg);
				if (!(*nattach_err)++)
					snprintf(attach_err, errsize, "endpoint %s: %s", ep->pod,
						 ep->error);
				continue;
			}
			ep->attached_ifindex = ep->ifindex;
			agent_log(a,
				  "endpoint %s: programs attached to %s (ifindex %u), id %u, "
				  "identity %u",
				  ep->pod, ep->ifname, ep->ifindex, info.ep_id, info.identity);
		}
		ep->error[0] = '\0';
		k.family = info.family;
		k.addr = info.addr;
		err = kvset_add(&w->m[AM_ENDPOINTS], &k, &info);
		if (!err)
			err = kvset_add(&w->m[AM_LXC], &info.ifindex, &info);
		if (err) {
			free(x.slot);
			return diag_fail_errno(d, err, "out of memory");
		}
	}
	free(x.slot);
	/* forget discovered endpoints that left the model; recorded ones stay until deleted */
	for (i = a->neps; i-- > 0;) {
		if (a->eps[i].info.ep_id)
			continue;
		if (!a->eps[i].recorded) {
			agent_ep_remove(a, i);
			continue;
		}
		a->eps[i].ifindex = agent_ifindex(a, a->eps[i].ifname);
		snprintf(a->eps[i].error, sizeof(a->eps[i].error),
			 "not in the model (no address allocated on this node, or the pod is "
			 "placed on another node)");
	}
	return 0;
}

static int want_rest(struct agent *a, struct wanted *w, struct diag *d)
{
	size_t i;
	int err = 0;

	for (i = 0; !err && i < a->ns.nipcache; i++) {
		struct ipcache_key k = a->ns.ipcache[i].key;

		kvset_lpm_canonical(&k, sizeof(k));
		err = kvset_add(&w->m[AM_IPCACHE], &k, &a->ns.ipcache[i].val);
	}
	for (i = 0; !err && i < a->ns.npolicy; i++) {
		struct policy_key k = a->ns.policy[i].key;
		struct policy_value v = a->ns.policy[i].val;

		if (k.ep_id >= w->nidmap || !w->idmap[k.ep_id])
			continue;
		k.ep_id = w->idmap[k.ep_id];
		kvset_lpm_canonical(&k, sizeof(k));
		/* what dp_policy_upsert would store, so that equal entries compare equal */
		if (k.prefixlen > POLICY_PREFIX_FIXED)
			v.flags |= POLICY_F_L4;
		else
			v.flags &= ~POLICY_F_L4;
		err = kvset_add(&w->m[AM_POLICY], &k, &v);
	}
	if (err)
		return diag_fail_errno(d, err, "out of memory");
	return 0;
}

static int maglev_key_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct lb_maglev_table *)a)->key;
	uint32_t y = ((const struct lb_maglev_table *)b)->key;

	return x < y ? -1 : x > y;
}

/* The Maglev tables of the node state, each with its header (M, the tuple-hash seeds of
 * bpf-lb-maglev-hash-seed), sorted by key. */
static int want_maglev(struct agent *a, struct wanted *w)
{
	const struct m_lb_config *cfg = cluster_lb_config(a->model);
	size_t i;
	int err;

	if (!a->ns.nlb_maglev)
		return 0;
	w->mg = calloc(a->ns.nlb_maglev, sizeof(*w->mg));
	if (!w->mg)
		return -ENOMEM;
	for (i = 0; i < a->ns.nlb_maglev; i++) {
		const struct node_lb_maglev *t = &a->ns.lb_maglev[i];

		err = lb_maglev_table_make(&w->mg[w->nmg],
					   LB_MAGLEV_KEY(t->rev_nat_index, t->scope), t->size,
					   cfg->maglev_seed.jhash0, cfg->maglev_seed.jhash1,
					   t->table);
		if (err)
			return err;
		w->nmg++;
	}
	qsort(w->mg, w->nmg, sizeof(*w->mg), maglev_key_cmp);
	return 0;
}

/* The service maps: every frontend slot, backend and reverse-NAT entry of the node state
 * (docs/SERVICES.md "Per-node entries"), as they are; an affinity pair per backend slot of
 * a ClientIP-affinity service; the Maglev tables. */
static int want_lb(struct agent *a, struct wanted *w, struct diag *d)
{
	size_t i;
	int err = 0;

	for (i = 0; !err && i < a->ns.nlb; i++) {
		const struct node_lb_entry *e = &a->ns.lb[i];
		struct lb_affinity_match am;
		uint32_t one = 1;

		err = kvset_add(&w->m[AM_LB_SERVICES], &e->key, &e->val);
		if (err || !e->key.backend_slot || !(e->val.flags & LB_SVC_F_AFFINITY))
			continue;
		memset(&am, 0, sizeof(am));
		am.backend_id = e->val.backend_id;
		am.rev_nat_index = e->val.rev_nat_index;
		am.scope = e->key.scope;
		err = kvset_add(&w->m[AM_LB_AFFINITY_MATCH], &am, &one);
	}
	if (!err)
		err = want_maglev(a, w);
	for (i = 0; !err && i < a->ns.nlb_backends; i++)
		err = kvset_add(&w->m[AM_LB_BACKENDS], &a->ns.lb_backends[i].id,
				&a->ns.lb_backends[i].val);
	for (i = 0; !err && i < a->ns.nlb_revnat; i++) {
		uint32_t k = a->ns.lb_revnat[i].index;

		err = kvset_add(&w->m[AM_LB_REVNAT], &k, &a->ns.lb_revnat[i].val);
	}
	for (i = 0; !err && i < a->ns.nlb_source_ranges; i++) {
		struct lb_src_range_key k;
		uint8_t one = 1;

		lb_src_range_key_of(&a->ns.lb_source_ranges[i], &k);
		err = kvset_add(&w->m[AM_LB_SRC_RANGES], &k, &one);
	}
	if (err)
		return diag_fail_errno(d, err, "out of memory");
	return 0;
}

/* Within ciliate_lb_services, a frontend's slot 0 (its count) is written after its backend
 * slots and deleted before them, so the datapath never picks a slot that is not there yet
 * or no longer. The pass a record is written in: 1 for a slot 0, else 0. */
static int write_pass(enum agent_map m, const void *key)
{
	return m == AM_LB_SERVICES && ((const struct lb_key *)key)->backend_slot == 0;
}

/* Upserts (del false) or deletes the records of s into map m, passes in the given order.
 * Counts the writes done in *n. */
static int write_set(struct agent *a, enum agent_map m, const struct kvset *s, bool del,
		     size_t *n, struct diag *d)
{
	int pass, err;
	size_t i, done = 0;

	for (pass = 0; pass < 2; pass++) {
		int want = del ? 1 - pass : pass;

		for (i = 0; i < s->n; i++) {
			if (write_pass(m, kvset_key(s, i)) != want)
				continue;
			err = map_write(a, m, kvset_key(s, i), del ? NULL : kvset_val(s, i), del,
					d);
			if (err) {
				char msg[sizeof(d->msg)];

				snprintf(msg, sizeof(msg), "%s", d->msg);
				return diag_fail_errno(d, err,
						       "%.700s (after %zu of %zu %s; nothing after "
						       "it written)",
						       msg, done, s->n,
						       del ? "deletions" : "new entries");
			}
			done++;
			(*n)++;
		}
	}
	return 0;
}

/* The Maglev tables: writes the wanted tables that are new or differ from the map's (each a
 * new inner array swapped in), or (del) deletes the map's tables no longer wanted. Both
 * lists are sorted by key. */
static int maglev_apply(struct agent *a, const struct wanted *w, bool del, size_t *n,
			struct diag *d)
{
	int fd = datapath_map_fd(a->dp, MAP_LB_MAGLEV);
	size_t i = 0, j = 0; /* i: a->maglev_cur, j: w->mg */
	int err = 0;

	if (fd < 0)
		return diag_fail_errno(d, fd, "map %s not found", MAP_LB_MAGLEV);
	while (!err && (i < a->nmaglev_cur || j < w->nmg)) {
		const struct lb_maglev_table *c = i < a->nmaglev_cur ? &a->maglev_cur[i] : NULL;
		const struct lb_maglev_table *t = j < w->nmg ? &w->mg[j] : NULL;

		if (c && (!t || c->key < t->key)) { /* only in the map */
			i++;
			if (del && !(err = lb_maglev_map_delete(fd, c->key, d)))
				(*n)++;
			continue;
		}
		j++;
		if (c && c->key == t->key) {
			i++;
			if (lb_maglev_table_equal(c, t))
				continue;
		}
		if (!del && !(err = lb_maglev_map_set(fd, t, d)))
			(*n)++;
	}
	return err;
}

static int apply(struct agent *a, struct wanted *w, struct diag *d)
{
	/* the Maglev tables go right before the frontends (upserts) and right after them
	 * (deletions): a frontend's table never names a backend the map lacks */
	static const enum agent_map up_order[AM_COUNT] = {
		AM_IPCACHE,	AM_POLICY,    AM_ENDPOINTS,	    AM_LXC,
		AM_LB_BACKENDS, AM_LB_REVNAT, AM_LB_AFFINITY_MATCH, AM_LB_SRC_RANGES,
		AM_LB_SERVICES};
	static const enum agent_map del_order[AM_COUNT] = {
		AM_LB_SERVICES, AM_LB_SRC_RANGES, AM_LB_AFFINITY_MATCH, AM_LB_REVNAT, AM_LB_BACKENDS,
		AM_LXC,		AM_ENDPOINTS,	      AM_POLICY,    AM_IPCACHE};
	struct kvset ups[AM_COUNT], dels[AM_COUNT];
	size_t k, nup = 0, ndel = 0;
	int m, err = 0, first_err = 0;

	for (m = 0; m < AM_COUNT; m++) {
		kvset_sort(&w->m[m]);
		kvset_init(&ups[m], map_desc[m].ksz, map_desc[m].vsz);
		kvset_init(&dels[m], map_desc[m].ksz, map_desc[m].vsz);
	}
	for (m = 0; !err && m < AM_COUNT; m++)
		err = kvset_diff(&a->cur[m], &w->m[m], &ups[m], &dels[m]);
	if (err) {
		err = diag_fail_errno(d, err, "out of memory");
		goto out;
	}
	/* a failed write stops the rest: what depends on it (an endpoint's entry, which makes
	 * its new policy enforced, on that policy; a frontend on its backends) and the
	 * deletions are not written */
	for (k = 0; !first_err && k < AM_COUNT; k++) {
		if (up_order[k] == AM_LB_SERVICES)
			first_err = maglev_apply(a, w, false, &nup, d);
		if (!first_err)
			first_err = write_set(a, up_order[k], &ups[up_order[k]], false, &nup, d);
	}
	for (k = 0; !first_err && k < AM_COUNT; k++) {
		first_err = write_set(a, del_order[k], &dels[del_order[k]], true, &ndel, d);
		if (!first_err && del_order[k] == AM_LB_SERVICES)
			first_err = maglev_apply(a, w, true, &ndel, d);
	}
	a->last_upserts = nup;
	a->last_deletes = ndel;
	if (first_err) {
		struct diag d2;

		/* the maps hold something in between: read them back to diff against truth */
		if (agent_maps_load(a, &d2))
			agent_log(a, "re-reading the maps failed: %s", d2.msg);
		err = first_err;
		goto out;
	}
	for (m = 0; m < AM_COUNT; m++)
		kvset_move(&a->cur[m], &w->m[m]);
	lb_maglev_tables_free(a->maglev_cur, a->nmaglev_cur);
	a->maglev_cur = w->mg;
	a->nmaglev_cur = w->nmg;
	w->mg = NULL;
	w->nmg = 0;
	err = 0;
out:
	for (m = 0; m < AM_COUNT; m++) {
		kvset_free(&ups[m]);
		kvset_free(&dels[m]);
	}
	return err;
}

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000

static int64_t unix_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int agent_reconcile(struct agent *a, struct diag *d)
{
	char attach_err[sizeof(d->msg)] = "";
	size_t nattach_err = 0;
	int64_t t0 = agent_now_ms();
	struct node_state ns;
	struct wanted w = {0};
	bool rebuilt = false;
	size_t i;
	int m, err;

	a->reconciles++;
	a->dirty = false;
	/* the store has not changed since the model was built (an endpoint came, a veth
	 * changed): its node state stands, only the endpoints are looked at again */
	if (!(a->model && a->have_ns && a->built_rev == a->rev)) {
		if (a->have_ns) /* it points into the model, which the build replaces */
			node_state_free(&a->ns);
		a->have_ns = false;
		err = agent_model_build(a, d);
		if (!err && !a->model)
			err = diag_fail(d, "no model");
		if (!err)
			err = node_state_compute(a->model, a->o.node, &ns, d);
		if (err)
			goto fail;
		a->ns = ns;
		a->have_ns = true;
		rebuilt = true;
	}
	for (m = 0; m < AM_COUNT; m++)
		kvset_init(&w.m[m], map_desc[m].ksz, map_desc[m].vsz);
	w.nidmap = a->model->npods + 2;
	w.idmap = calloc(w.nidmap, sizeof(*w.idmap));
	if (!w.idmap) {
		err = diag_fail_errno(d, -ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < a->ns.neps; i++)
		if (a->ns.eps[i].info.ep_id >= w.nidmap) {
			err = diag_fail(d, "endpoint id %u out of range", a->ns.eps[i].info.ep_id);
			goto fail;
		}
	/* the WireGuard device and its peers before the ipcache marks that use them */
	err = agent_wireguard_sync(a, d);
	if (!err)
		err = agent_ipsec_sync(a, d);
	if (!err)
		err = want_endpoints(a, &w, attach_err, sizeof(attach_err), &nattach_err, d);
	if (!err)
		err = want_rest(a, &w, d);
	if (!err)
		err = want_lb(a, &w, d);
	if (!err)
		err = apply(a, &w, d);
	if (!err)
		err = agent_overlay_sync(a, d); /* after the ipcache holds the tunnel endpoints */
	if (!err)
		err = agent_netdev_sync(a, d); /* after the service maps are in place */
	if (!err)
		err = agent_egress_sync(a, d);
	if (!err && nattach_err) /* the others' entries are written; these stay out */
		err = diag_fail_errno(d, -EIO, "%s%s", attach_err,
				      nattach_err > 1 ? " (and more endpoints, see endpoint list)"
						      : "");
	if (err)
		goto fail;
	if (rebuilt || a->last_upserts || a->last_deletes) /* names for the flows from now on */
		agent_monitor_refresh(a);
	agent_healthcheck_sync(a); /* health-check NodePorts follow the model in force */
	wanted_free(&w);
	a->last_reconcile_end_ms = agent_now_ms();
	a->last_reconcile_ms = (double)(a->last_reconcile_end_ms - t0);
	/* published only now: the maps and attachments are those of this model */
	a->model_rev = a->built_rev;
	a->last_error[0] = '\0';
	a->last_error_rev = 0;
	a->retry_ms = 0;
	a->retry_at_ms = 0;
	agent_store_status_publish(a); /* what is enforced now, for the operator */
	if (a->last_upserts || a->last_deletes)
		agent_log(a,
			  "reconciled store revision %lld: %zu entries written, %zu deleted "
			  "(%.0f ms)",
			  (long long)a->rev, a->last_upserts, a->last_deletes,
			  a->last_reconcile_ms);
	return 0;
fail:
	wanted_free(&w);
	a->reconcile_errors++;
	a->last_reconcile_end_ms = agent_now_ms();
	a->last_reconcile_ms = (double)(a->last_reconcile_end_ms - t0);
	snprintf(a->last_error, sizeof(a->last_error), "%s", d->msg);
	a->last_error_rev = a->rev;
	snprintf(a->last_failure, sizeof(a->last_failure), "%s", d->msg);
	a->last_failure_rev = a->rev;
	a->last_failure_unix_ms = unix_now_ms();
	a->retry_ms = a->retry_ms ? a->retry_ms * 2 : RETRY_MIN_MS;
	if (a->retry_ms > RETRY_MAX_MS)
		a->retry_ms = RETRY_MAX_MS;
	a->retry_at_ms = a->last_reconcile_end_ms + a->retry_ms;
	agent_log(a,
		  "reconcile failed for store revision %lld (modelRevision stays %lld; retry in "
		  "%lld ms): %s",
		  (long long)a->rev, (long long)a->model_rev, (long long)a->retry_ms, d->msg);
	return err;
}

void agent_reconcile_status(const struct agent *a, json_t *reconcile)
{
	char at[64] = "";
	time_t sec = (time_t)(a->last_failure_unix_ms / 1000);
	struct tm tm;

	if (!json_is_object(reconcile))
		return;
	json_object_set_new(reconcile, "lastErrorRevision",
			    json_integer(a->last_error[0] ? (json_int_t)a->last_error_rev : 0));
	if (!a->last_failure[0]) {
		json_object_set_new(reconcile, "lastFailure", json_null());
		return;
	}
	if (gmtime_r(&sec, &tm))
		snprintf(at, sizeof(at), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(a->last_failure_unix_ms % 1000));
	json_object_set_new(reconcile, "lastFailure",
			    json_pack("{s:s, s:I, s:s}", "error", a->last_failure, "storeRevision",
				      (json_int_t)a->last_failure_rev, "at", at));
}

bool agent_veths_changed(struct agent *a)
{
	size_t i;

	if (a->last_error[0] && a->retry_at_ms && agent_now_ms() >= a->retry_at_ms)
		return true; /* a failed reconcile's retry is due */

	for (i = 0; i < a->neps; i++) {
		const struct agent_ep *ep = &a->eps[i];

		if (!ep->info.ep_id)
			continue;
		if (agent_ifindex(a, ep->ifname) != ep->ifindex)
			return true;
	}
	return agent_overlay_changed(a) || agent_netdev_changed(a) || agent_wireguard_changed(a) ||
	       agent_ipsec_changed(a);
}
