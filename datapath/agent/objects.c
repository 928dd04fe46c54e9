/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's cache of the store (an informer: list, then watch from the list's revision)
 * and the model built from it. Objects live at /ciliate/objects/<kind>/<ns>/<name>; IPAM
 * records at /ciliate/ipam/<node>; the node registry at /ciliate/nodes/<node>.
 *
 * The model gets: the Cluster document, every stored object in creation order (so that
 * the model's own identity numbering follows the manifests; the numbers that count come
 * from the identity records, see identities.c), Pods only once they have an
 * address (status.podIP is set to their IPAM allocation), and a label-less stand-in Pod for
 * every allocation without a usable Pod object (pods created through the CNI plugin alone).
 * A bad object is reported once per version and skipped; if an earlier version of it was
 * good, that version stays in force.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ipaddr.h"

size_t agent_objs_lower_bound(const struct agent *a, const char *key)
{
	size_t lo = 0, hi = a->nobjs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(a->objs[mid]->key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void obj_clear(struct agent_obj *o)
{
	agent_obj_underive(o);
	model_part_unref(o->part);
	free(o->src);
	free(o->key);
	free(o->value);
	free(o->good);
	free(o->error);
	memset(o, 0, sizeof(*o));
}

void agent_objects_free(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->nobjs; i++) {
		obj_clear(a->objs[i]);
		free(a->objs[i]);
	}
	free(a->objs);
	a->objs = NULL;
	a->nobjs = a->objs_cap = 0;
	free(a->pinned);
	a->pinned = NULL;
	a->npinned = a->pinned_cap = 0;
	a->pinned_valid = false;
}

struct agent_obj *agent_obj_find(const struct agent *a, const char *key)
{
	size_t i = agent_objs_lower_bound(a, key);

	return i < a->nobjs && !strcmp(a->objs[i]->key, key) ? a->objs[i] : NULL;
}

static int obj_set_value(struct agent_obj *o, const struct store_kv *kv)
{
	char *v = malloc(kv->value_len + 1);

	if (!v)
		return -ENOMEM;
	memcpy(v, kv->value, kv->value_len);
	v[kv->value_len] = '\0';
	free(o->value);
	o->value = v;
	o->len = kv->value_len;
	o->create_rev = kv->create_revision;
	o->mod_rev = kv->mod_revision;
	agent_obj_underive(o); /* read again from the new value when needed */
	return 0;
}

void agent_obj_underive(struct agent_obj *o)
{
	free(o->pod_node);
	o->pod_node = NULL;
	if (o->ipam)
		ipam_rec_free(o->ipam);
	free(o->ipam);
	o->ipam = NULL;
	o->derived_rev = 0;
}

static void derive_pod(struct agent_obj *o, json_t *j)
{
	json_t *spec = json_object_get(j, "spec");
	const char *node = json_string_value(json_object_get(spec, "nodeName"));
	const char *ip = json_string_value(
		json_object_get(json_object_get(j, "status"), "podIP"));

	o->not_json = !json_is_object(j);
	o->pod_hostnet = json_is_true(json_object_get(spec, "hostNetwork"));
	o->pod_node = node ? strdup(node) : NULL;
	if (!ip || ip4_parse(ip, &o->pod_ip))
		o->pod_ip = 0;
}

/* An IPAM key as a record: the range record itself, or an allocation key as a record of its
 * node holding just that allocation (the model build reads both alike). */
static void derive_ipam(struct agent *a, struct agent_obj *o)
{
	struct ipam_rec *r = calloc(1, sizeof(*r));
	char why[128] = "out of memory";
	uint32_t ip;
	int kind;

	if (!r) {
		agent_log(a, "IPAM record %s: out of memory", o->key);
		return;
	}
	kind = ipam_key_split(o->key, r->node, sizeof(r->node), &ip);
	if (kind == 0 && !ipam_rec_parse(o->value, o->len, r, why, sizeof(why))) {
		o->ipam = r;
		return;
	}
	if (kind == 1) {
		r->v = calloc(1, sizeof(*r->v));
		if (r->v && !ipam_alloc_parse(o->value, o->len, ip, r->v, why, sizeof(why))) {
			r->n = 1;
			o->ipam = r;
			return;
		}
	}
	if (kind < 0)
		snprintf(why, sizeof(why), "not /ciliate/ipam/<node>[/<address>]");
	agent_log(a, "ignoring malformed IPAM record %s: %s", o->key, why);
	ipam_rec_free(r);
	free(r);
}

void agent_obj_derive(struct agent *a, struct agent_obj *o)
{
	const char *pod_prefix = AGENT_OBJ_PREFIX "Pod/", *c;
	json_t *j;

	if (o->derived_rev == o->mod_rev && o->mod_rev)
		return;
	agent_obj_underive(o);
	o->derived_rev = o->mod_rev;
	o->not_json = false;
	o->pod_hostnet = false;
	o->pod_ip = 0;
	o->obj_model = o->obj_pod = false;
	o->obj_name = NULL;
	if (!strncmp(o->key, IPAM_KEY_PREFIX, strlen(IPAM_KEY_PREFIX))) {
		derive_ipam(a, o);
		return;
	}
	if (strncmp(o->key, AGENT_OBJ_PREFIX, strlen(AGENT_OBJ_PREFIX)))
		return;
	/* "<kind>/<ns>/<name>": what the model build needs of the key, split once */
	c = strchr(o->key + strlen(AGENT_OBJ_PREFIX), '/');
	o->obj_model = c && c - (o->key + strlen(AGENT_OBJ_PREFIX)) < 64 && strchr(c + 1, '/');
	o->obj_name = o->obj_model ? c + 1 : NULL;
	o->obj_pod = o->obj_model && !strncmp(o->key, pod_prefix, strlen(pod_prefix));
	j = json_loadb(o->value, o->len, 0, NULL);
	c = json_string_value(json_object_get(
		json_object_get(json_object_get(j, "metadata"), "annotations"),
		MANIFEST_SOURCE_ANNOTATION));
	if (!c != !o->src || (c && strcmp(c, o->src)))
		a->objs_gen++; /* the object's place in the model order may change */
	free(o->src);
	o->src = c ? strdup(c) : NULL;
	o->src_flen = 0;
	o->src_line = 0;
	if (o->src) {
		c = strrchr(o->src, ':');
		o->src_flen = c ? (size_t)(c - o->src) : strlen(o->src);
		o->src_line = c ? strtol(c + 1, NULL, 10) : 0;
	}
	if (o->obj_pod)
		derive_pod(o, j);
	json_decref(j);
}

static bool is_pod_key(const char *key)
{
	return !strncmp(key, AGENT_OBJ_PREFIX "Pod/", strlen(AGENT_OBJ_PREFIX "Pod/"));
}

/* What depends on the set of keys: the model order (model objects only, so the IPAM keys a
 * bring-up adds by the thousand do not re-sort it) and IPAM's list of pinning pods. */
static void key_came_or_went(struct agent *a, const char *key)
{
	if (!strncmp(key, AGENT_OBJ_PREFIX, strlen(AGENT_OBJ_PREFIX)))
		a->objs_gen++;
	if (is_pod_key(key))
		a->pods_gen++;
}

/* A key's place is found by binary search and only pointers move: with 10,000s of keys,
 * inserting by comparing and shifting whole objects cost more than the rest of a pod's
 * bring-up. */
/* Keys agents and the operator write for each other (heartbeats, status): never cached, and
 * a change to them wakes no reconcile, or every agent's status write would wake them all. */
static bool key_not_cached(const char *key)
{
	return !strncmp(key, AGENT_STATUS_PREFIX, strlen(AGENT_STATUS_PREFIX)) ||
	       !strncmp(key, AGENT_HEALTH_PREFIX, strlen(AGENT_HEALTH_PREFIX));
}

/* The operator's keys are cached (identity GC defers to a leader) but change no model. */
static bool key_no_model(const char *key)
{
	return key_not_cached(key) || !strncmp(key, "/ciliate/operator/", 18);
}

int agent_objects_put(struct agent *a, const struct store_kv *kv)
{
	size_t i = agent_objs_lower_bound(a, kv->key);
	struct agent_obj *o, **v;

	if (key_not_cached(kv->key))
		return 0;

	if (i < a->nobjs && !strcmp(a->objs[i]->key, kv->key)) {
		if (is_pod_key(kv->key))
			a->pods_gen++; /* its status.podIP may have changed */
		return obj_set_value(a->objs[i], kv);
	}
	if (a->nobjs == a->objs_cap) {
		size_t cap = a->objs_cap ? 2 * a->objs_cap : 256;

		v = realloc(a->objs, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		a->objs = v;
		a->objs_cap = cap;
	}
	o = calloc(1, sizeof(*o));
	if (!o || !(o->key = strdup(kv->key))) {
		free(o);
		return -ENOMEM;
	}
	memmove(&a->objs[i + 1], &a->objs[i], (a->nobjs - i) * sizeof(*a->objs));
	a->objs[i] = o;
	a->nobjs++;
	key_came_or_went(a, kv->key);
	return obj_set_value(o, kv);
}

void agent_objects_delete(struct agent *a, const char *key)
{
	size_t i = agent_objs_lower_bound(a, key);

	if (i >= a->nobjs || strcmp(a->objs[i]->key, key))
		return;
	key_came_or_went(a, key);
	obj_clear(a->objs[i]);
	free(a->objs[i]);
	memmove(&a->objs[i], &a->objs[i + 1], (a->nobjs - i - 1) * sizeof(*a->objs));
	a->nobjs--;
}

int agent_objects_sync(struct agent *a, struct diag *d)
{
	struct agent_obj **old = a->objs;
	size_t nold = a->nobjs, i;
	struct store_list l;
	int err;

	store_watch_close(a->w);
	a->w = NULL;
	err = store_list(a->st, AGENT_PREFIX, &l, d);
	if (err)
		return err;
	a->objs = NULL;
	a->nobjs = a->objs_cap = 0;
	a->pods_gen++; /* the pinned list points into the old objects */
	for (i = 0; !err && i < l.n; i++)
		err = agent_objects_put(a, &l.items[i]);
	/* carry over what is known about objects that are still there */
	for (i = 0; !err && i < nold; i++) {
		struct agent_obj *o = agent_obj_find(a, old[i]->key);

		if (!o)
			continue;
		o->good = old[i]->good;
		o->good_len = old[i]->good_len;
		o->good_rev = old[i]->good_rev;
		o->idle_since_ms = old[i]->idle_since_ms;
		old[i]->good = NULL;
		/* the part stays valid for the same version (build.c checks) */
		o->part = old[i]->part;
		o->part_rev = old[i]->part_rev;
		o->part_ip = old[i]->part_ip;
		o->part_gen = old[i]->part_gen;
		o->part_good = old[i]->part_good;
		old[i]->part = NULL;
		if (old[i]->mod_rev == o->mod_rev) {
			o->bad_rev = old[i]->bad_rev;
			o->error = old[i]->error;
			old[i]->error = NULL;
		}
	}
	for (i = 0; i < nold; i++)
		{
		obj_clear(old[i]);
		free(old[i]);
	}
	free(old);
	a->rev = l.revision;
	a->objs_gen++;
	store_list_free(&l);
	if (err)
		return diag_fail_errno(d, err, "store: out of memory");
	a->watch_gen++;
	return store_watch_open(a->st, AGENT_PREFIX, a->rev, &a->w, d);
}

int agent_objects_poll(struct agent *a, int timeout_ms, bool *changed, struct diag *d)
{
	struct store_event *evs = NULL;
	bool model_changed;
	size_t n = 0, i;
	int64_t before;
	int err;

	*changed = false;
	for (int round = 0; round < 64; round++) {
		err = store_watch_next(a->w, round ? 0 : timeout_ms, &evs, &n, d);
		if (err == -ESTALE) {
			agent_log(a, "store watch fell behind a compaction: listing again");
			*changed = true;
			return agent_objects_sync(a, d);
		}
		if (err)
			return err;
		if (!n)
			return 0;
		before = a->rev;
		model_changed = false;
		for (i = 0; i < n; i++) {
			if (evs[i].type == STORE_EVENT_PUT)
				err = agent_objects_put(a, &evs[i].kv);
			else
				agent_objects_delete(a, evs[i].kv.key);
			if (err)
				break;
			if (evs[i].revision > a->rev)
				a->rev = evs[i].revision;
			if (!key_no_model(evs[i].kv.key))
				*changed = model_changed = true;
		}
		store_events_free(evs, n);
		/* heartbeats and status only: a model built at the old revision is the one of the
		 * new, and so are the maps written from it */
		if (!model_changed && !err) {
			if (a->built_rev == before)
				a->built_rev = a->rev;
			if (a->model_rev == before)
				a->model_rev = a->rev;
			if (a->last_error[0] && a->last_error_rev == before) { /* and so is its failure */
				if (a->last_failure_rev == before)
					a->last_failure_rev = a->rev;
				a->last_error_rev = a->rev;
			}
		}
		if (err)
			return diag_fail_errno(d, err, "store cache: out of memory");
	}
	return 0;
}

/* ---- the Cluster document -------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long sz;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)sz + 1);
		if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
			free(buf);
			buf = NULL;
		}
		if (buf) {
			buf[sz] = '\0';
			*len = (size_t)sz;
		}
	}
	fclose(f);
	return buf;
}

/* Orders "FILE:LINE" sources by file, then numerically by line (split by agent_obj_derive). */
static int cmp_src(const struct agent_obj *a, const struct agent_obj *b)
{
	size_t la = a->src_flen, lb = b->src_flen;
	int c = strncmp(a->src, b->src, la < lb ? la : lb);

	if (c || la != lb)
		return c ? c : (la < lb ? -1 : 1);
	return a->src_line < b->src_line ? -1 : a->src_line > b->src_line;
}

/* Creation order; objects created together (one `ciliate apply`) in manifest order, so that
 * identities are numbered as a scenario file's model numbers them. */
int agent_obj_cmp_order(const void *x, const void *y)
{
	const struct agent_obj *a = *(const struct agent_obj *const *)x;
	const struct agent_obj *b = *(const struct agent_obj *const *)y;
	int c;

	if (a->create_rev != b->create_rev)
		return a->create_rev < b->create_rev ? -1 : 1;
	if (a->src && b->src) {
		c = cmp_src(a, b);
		if (c)
			return c;
	}
	return strcmp(a->key, b->key);
}

/* Builds the Cluster document from the node registry: nodes in registration order. */
static int registry_cluster(struct agent *a, struct diag *d)
{
	size_t plen = strlen(AGENT_NODE_PREFIX), i, n = 0;
	const struct agent_obj **v;
	json_t *nodes = json_array(), *doc;
	char *text;

	v = calloc(a->nobjs + 1, sizeof(*v));
	if (!v || !nodes) {
		free(v);
		json_decref(nodes);
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	}
	for (i = 0; i < a->nobjs; i++)
		if (!strncmp(a->objs[i]->key, AGENT_NODE_PREFIX, plen) && a->objs[i]->key[plen])
			v[n++] = a->objs[i];
	qsort(v, n, sizeof(*v), agent_obj_cmp_order);
	for (i = 0; i < n; i++) {
		json_t *rec = json_loadb(v[i]->value, v[i]->len, 0, NULL);
		const char *cidr = json_string_value(json_object_get(rec, "podCIDR"));

		/* the range it claimed at registration (older records: by registration order) */
		json_array_append_new(nodes, cidr ? json_pack("{s:s, s:s}", "name", v[i]->key + plen,
							      "podCIDR", cidr)
						  : json_pack("{s:s}", "name", v[i]->key + plen));
		json_decref(rec);
	}
	free(v);
	doc = json_pack("{s:s, s:s, s:{s:s}, s:{s:o}}", "apiVersion", "sim.ciliate.dev/v1", "kind",
			"Cluster", "metadata", "name", "ciliate", "spec", "nodes", nodes);
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!text)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	free(a->cluster_text);
	a->cluster_text = text;
	a->cluster_len = strlen(text);
	a->cluster_flags = 0;
	snprintf(a->cluster_name, sizeof(a->cluster_name), "%s", AGENT_NODE_PREFIX);
	return 0;
}

int agent_cluster_load(struct agent *a, struct diag *d)
{
	struct model_doc doc;
	struct cluster_model *m;
	const struct m_node *nd;
	int err;

	if (a->o.cluster_file) {
		if (!a->cluster_text) {
			a->cluster_text = read_file(a->o.cluster_file, &a->cluster_len);
			if (!a->cluster_text)
				return diag_fail_errno(d, -errno, "%s: cannot read: %s",
						       a->o.cluster_file, strerror(errno));
			a->cluster_flags = MODEL_DOC_CLUSTER_ONLY;
			snprintf(a->cluster_name, sizeof(a->cluster_name), "%s", a->o.cluster_file);
		}
	} else {
		err = registry_cluster(a, d);
		if (err)
			return err;
	}
	doc = (struct model_doc){.name = a->cluster_name,
				 .text = a->cluster_text,
				 .len = a->cluster_len,
				 .flags = MODEL_DOC_CLUSTER_ONLY};
	err = cluster_model_from_docs(a->cluster_name, &doc, 1, &m, NULL, d);
	if (err)
		return err;
	if (!m->has_cluster) {
		cluster_model_free(m);
		return diag_fail(d,
				 "%s: no Cluster document (apiVersion: sim.ciliate.dev/v1, "
				 "kind: Cluster)",
				 a->cluster_name);
	}
	nd = cluster_find_node(m, a->o.node);
	if (!nd) {
		err = diag_fail_errno(d, -ENOENT,
				      "%s: node \"%s\" is not in the Cluster's "
				      "spec.nodes",
				      a->cluster_name, a->o.node);
		cluster_model_free(m);
		return err;
	}
	a->pod_cidr = nd->pod_cidr;
	a->pod_cidr_len = nd->pod_cidr_len;
	cluster_model_free(m);
	return 0;
}

#define REGISTRY_BASE	 0x0af40000u /* 10.244.0.0/16: one /24 per node (SPEC section 5) */
#define REGISTRY_SLOTS	 256
#define REGISTRY_RETRIES 16

/* The lowest /24 of 10.244.0.0/16 no node claims into *slot (-1: none left). */
static int free_pod_cidr(struct store *st, int *slot, struct diag *d)
{
	bool used[REGISTRY_SLOTS] = { false };
	size_t plen = strlen(AGENT_PODCIDR_PREFIX), i;
	struct store_list l;
	unsigned int a, b, c, x, len;
	int err = store_list(st, AGENT_PODCIDR_PREFIX, &l, d);

	if (err)
		return err;
	for (i = 0; i < l.n; i++)
		if (sscanf(l.items[i].key + plen, "%u.%u.%u.%u-%u", &a, &b, &c, &x, &len) == 5 &&
		    a == 10 && b == 244 && c < REGISTRY_SLOTS && len == 24)
			used[c] = true;
	store_list_free(&l);
	for (*slot = 0; *slot < REGISTRY_SLOTS && used[*slot]; (*slot)++)
		;
	if (*slot == REGISTRY_SLOTS)
		*slot = -1;
	return 0;
}

/*
 * Registers the node under /ciliate/nodes/<node> with the lowest free /24 of 10.244.0.0/16,
 * claimed at /ciliate/podcidrs/10.244.K.0-24 in the same txn, so two nodes registering at
 * once never share a range, and a departed node's range can be given back (by ciliate-operator,
 * which deletes both keys) without moving any other node's.
 */
int agent_node_register(struct agent *a, struct diag *d)
{
	char key[STORE_KEY_MAX + 1], claim[STORE_KEY_MAX + 1], cidr[32], *v = NULL, *cv = NULL;
	struct store_kv kv;
	int err, slot, tries;

	snprintf(key, sizeof(key), "%s%s", AGENT_NODE_PREFIX, a->o.node);
	err = store_get(a->st, key, &kv, d);
	if (!err) { /* registered before: keep its range (and its place in the node order) */
		store_kv_free(&kv);
		return 0;
	}
	if (err != -ENOENT)
		return err;
	for (tries = 0; tries < REGISTRY_RETRIES; tries++) {
		struct store_cmp cmps[2];
		struct store_op ops[2];
		json_t *j;

		err = free_pod_cidr(a->st, &slot, d);
		if (err)
			return err;
		if (slot < 0)
			return diag_fail_errno(d, -ENOSPC, "node registry: every /24 of 10.244.0.0/16 is "
					       "claimed under %s", AGENT_PODCIDR_PREFIX);
		snprintf(cidr, sizeof(cidr), "10.244.%d.0/24", slot);
		snprintf(claim, sizeof(claim), "%s10.244.%d.0-24", AGENT_PODCIDR_PREFIX, slot);
		j = json_pack("{s:s, s:s}", "name", a->o.node, "podCIDR", cidr);
		v = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		j = json_pack("{s:s}", "node", a->o.node);
		cv = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!v || !cv) {
			free(v);
			free(cv);
			return diag_fail_errno(d, -ENOMEM, "out of memory");
		}
		cmps[0] = (struct store_cmp){ .key = key, .mod_revision = 0 };
		cmps[1] = (struct store_cmp){ .key = claim, .mod_revision = 0 };
		ops[0] = (struct store_op){ .type = STORE_OP_PUT, .key = key, .value = v, .value_len = strlen(v) };
		ops[1] = (struct store_op){ .type = STORE_OP_PUT, .key = claim, .value = cv,
					    .value_len = strlen(cv) };
		err = store_txn(a->st, cmps, 2, ops, 2, NULL, d);
		free(v);
		free(cv);
		if (!err) {
			agent_log(a, "registered node %s with pod CIDR %s", a->o.node, cidr);
			return 0;
		}
		if (err != -ECANCELED)
			return err;
		if (store_get(a->st, key, &kv, d) == 0) { /* another instance registered it */
			store_kv_free(&kv);
			return 0;
		}
	}
	return diag_fail_errno(d, -EAGAIN, "node registry: %d tries to claim a pod CIDR lost a race",
			       REGISTRY_RETRIES);
}
