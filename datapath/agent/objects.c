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

static int cmp_obj_key(const void *a, const void *b)
{
	return strcmp(((const struct agent_obj *)a)->key, ((const struct agent_obj *)b)->key);
}

static void obj_clear(struct agent_obj *o)
{
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

	for (i = 0; i < a->nobjs; i++)
		obj_clear(&a->objs[i]);
	free(a->objs);
	a->objs = NULL;
	a->nobjs = 0;
}

struct agent_obj *agent_obj_find(const struct agent *a, const char *key)
{
	struct agent_obj k = {.key = (char *)key};

	return bsearch(&k, a->objs, a->nobjs, sizeof(k), cmp_obj_key);
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
	free(o->src);
	o->src = NULL;
	if (!strncmp(o->key, AGENT_OBJ_PREFIX, strlen(AGENT_OBJ_PREFIX))) {
		json_t *j = json_loadb(v, kv->value_len, 0, NULL);
		const char *src = json_string_value(json_object_get(
			json_object_get(json_object_get(j, "metadata"), "annotations"),
			MANIFEST_SOURCE_ANNOTATION));

		o->src = src ? strdup(src) : NULL;
		json_decref(j);
	}
	return 0;
}

static int obj_put(struct agent *a, const struct store_kv *kv)
{
	struct agent_obj *o = agent_obj_find(a, kv->key), *v;
	size_t i;

	if (o)
		return obj_set_value(o, kv);
	v = realloc(a->objs, (a->nobjs + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	a->objs = v;
	for (i = a->nobjs; i > 0 && strcmp(v[i - 1].key, kv->key) > 0; i--)
		v[i] = v[i - 1];
	memset(&v[i], 0, sizeof(v[i]));
	v[i].key = strdup(kv->key);
	a->nobjs++;
	if (!v[i].key)
		return -ENOMEM;
	return obj_set_value(&v[i], kv);
}

static void obj_delete(struct agent *a, const char *key)
{
	struct agent_obj *o = agent_obj_find(a, key);
	size_t i;

	if (!o)
		return;
	i = (size_t)(o - a->objs);
	obj_clear(o);
	memmove(&a->objs[i], &a->objs[i + 1], (a->nobjs - i - 1) * sizeof(*o));
	a->nobjs--;
}

int agent_objects_sync(struct agent *a, struct diag *d)
{
	struct agent_obj *old = a->objs;
	size_t nold = a->nobjs, i;
	struct store_list l;
	int err;

	store_watch_close(a->w);
	a->w = NULL;
	err = store_list(a->st, AGENT_PREFIX, &l, d);
	if (err)
		return err;
	a->objs = NULL;
	a->nobjs = 0;
	for (i = 0; !err && i < l.n; i++)
		err = obj_put(a, &l.items[i]);
	/* carry over what is known about objects that are still there */
	for (i = 0; !err && i < nold; i++) {
		struct agent_obj *o = agent_obj_find(a, old[i].key);

		if (!o)
			continue;
		o->good = old[i].good;
		o->good_len = old[i].good_len;
		o->idle_since_ms = old[i].idle_since_ms;
		old[i].good = NULL;
		if (old[i].mod_rev == o->mod_rev) {
			o->bad_rev = old[i].bad_rev;
			o->error = old[i].error;
			old[i].error = NULL;
		}
	}
	for (i = 0; i < nold; i++)
		obj_clear(&old[i]);
	free(old);
	a->rev = l.revision;
	store_list_free(&l);
	if (err)
		return diag_fail_errno(d, err, "store: out of memory");
	a->watch_gen++;
	return store_watch_open(a->st, AGENT_PREFIX, a->rev, &a->w, d);
}

int agent_objects_poll(struct agent *a, int timeout_ms, bool *changed, struct diag *d)
{
	struct store_event *evs = NULL;
	size_t n = 0, i;
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
		for (i = 0; i < n; i++) {
			if (evs[i].type == STORE_EVENT_PUT)
				err = obj_put(a, &evs[i].kv);
			else
				obj_delete(a, evs[i].kv.key);
			if (err)
				break;
			if (evs[i].revision > a->rev)
				a->rev = evs[i].revision;
		}
		store_events_free(evs, n);
		*changed = true;
		if (err)
			return diag_fail_errno(d, err, "store cache: out of memory");
	}
	return 0;
}

int agent_ipam_recs(const struct agent *a, struct ipam_rec **recs, size_t *n)
{
	size_t plen = strlen(IPAM_KEY_PREFIX), i;
	struct ipam_rec *v = NULL, *nv;
	char err[128];

	*recs = NULL;
	*n = 0;
	for (i = 0; i < a->nobjs; i++) {
		const struct agent_obj *o = &a->objs[i];

		if (strncmp(o->key, IPAM_KEY_PREFIX, plen))
			continue;
		nv = realloc(v, (*n + 1) * sizeof(*v));
		if (!nv) {
			agent_ipam_recs_free(v, *n);
			return -ENOMEM;
		}
		v = nv;
		if (ipam_rec_parse(o->value, o->len, &v[*n], err, sizeof(err))) {
			agent_log(a, "ignoring malformed IPAM record %s: %s", o->key, err);
			continue;
		}
		(*n)++;
	}
	*recs = v;
	return 0;
}

void agent_ipam_recs_free(struct ipam_rec *recs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		ipam_rec_free(&recs[i]);
	free(recs);
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

/* Orders "FILE:LINE" sources by file, then numerically by line. */
static int cmp_src(const char *a, const char *b)
{
	const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
	size_t la = ca ? (size_t)(ca - a) : strlen(a), lb = cb ? (size_t)(cb - b) : strlen(b);
	long na = ca ? strtol(ca + 1, NULL, 10) : 0, nb = cb ? strtol(cb + 1, NULL, 10) : 0;
	int c = strncmp(a, b, la < lb ? la : lb);

	if (c || la != lb)
		return c ? c : (la < lb ? -1 : 1);
	return na < nb ? -1 : na > nb;
}

/* Creation order; objects created together (one `ciliate apply`) in manifest order, so that
 * identities are numbered as the scenario model numbers them. */
static int cmp_create_rev(const void *x, const void *y)
{
	const struct agent_obj *a = *(const struct agent_obj *const *)x;
	const struct agent_obj *b = *(const struct agent_obj *const *)y;
	int c;

	if (a->create_rev != b->create_rev)
		return a->create_rev < b->create_rev ? -1 : 1;
	if (a->src && b->src) {
		c = cmp_src(a->src, b->src);
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
		if (!strncmp(a->objs[i].key, AGENT_NODE_PREFIX, plen) && a->objs[i].key[plen])
			v[n++] = &a->objs[i];
	qsort(v, n, sizeof(*v), cmp_create_rev);
	for (i = 0; i < n; i++)
		json_array_append_new(nodes, json_pack("{s:s}", "name", v[i]->key + plen));
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
	struct scenario *s;
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
	err = scenario_from_docs(a->cluster_name, &doc, 1, &s, NULL, d);
	if (err)
		return err;
	if (!s->has_cluster) {
		scenario_free(s);
		return diag_fail(d,
				 "%s: no Cluster document (apiVersion: sim.ciliate.dev/v1, "
				 "kind: Cluster)",
				 a->cluster_name);
	}
	nd = scenario_find_node(s, a->o.node);
	if (!nd) {
		err = diag_fail_errno(d, -ENOENT,
				      "%s: node \"%s\" is not in the Cluster's "
				      "spec.nodes",
				      a->cluster_name, a->o.node);
		scenario_free(s);
		return err;
	}
	a->pod_cidr = nd->pod_cidr;
	a->pod_cidr_len = nd->pod_cidr_len;
	scenario_free(s);
	return 0;
}

int agent_node_register(struct agent *a, struct diag *d)
{
	char key[STORE_KEY_MAX + 1];
	json_t *j;
	char *v;
	int err;

	snprintf(key, sizeof(key), "%s%s", AGENT_NODE_PREFIX, a->o.node);
	j = json_pack("{s:s}", "name", a->o.node);
	v = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!v)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	err = store_put(a->st, key, v, strlen(v), 0, 0, NULL, d);
	free(v);
	if (err == -ECANCELED)
		return 0; /* registered before: keep its place in the node order */
	return err;
}

/* ---- building the model ---------------------------------------------------------------- */

/* What each document given to the model stands for. */
struct doc_src {
	struct agent_obj *obj; /* NULL: the Cluster or a stand-in pod */
	char *owned;	       /* text allocated for this build */
	char name[IPAM_POD_MAX + 96];
	bool used_good;
};

struct build {
	struct model_doc *docs;
	struct doc_src *src;
	size_t n, cap;
};

static int build_add(struct build *b, const char *name, const char *text, size_t len,
		     unsigned int flags, struct agent_obj *obj, char *owned, bool used_good)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 32;
		struct model_doc *d = realloc(b->docs, cap * sizeof(*d));
		struct doc_src *s;

		if (!d) {
			free(owned);
			return -ENOMEM;
		}
		b->docs = d;
		s = realloc(b->src, cap * sizeof(*s));
		if (!s) {
			free(owned);
			return -ENOMEM;
		}
		b->src = s;
		b->cap = cap;
	}
	memset(&b->src[b->n], 0, sizeof(b->src[0]));
	snprintf(b->src[b->n].name, sizeof(b->src[0].name), "%s", name);
	b->src[b->n].obj = obj;
	b->src[b->n].owned = owned;
	b->src[b->n].used_good = used_good;
	b->docs[b->n] = (struct model_doc){
		.name = b->src[b->n].name, .text = text, .len = len, .flags = flags};
	b->n++;
	return 0;
}

static void build_free(struct build *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free(b->src[i].owned);
	free(b->docs);
	free(b->src);
	memset(b, 0, sizeof(*b));
}

/* Splits "/ciliate/objects/<kind>/<ns>/<name>"; false for other keys. */
static bool obj_key_split(const char *key, char *kind, size_t ksz, char *ns_name, size_t nsz)
{
	const char *p = key + strlen(AGENT_OBJ_PREFIX), *slash;

	if (strncmp(key, AGENT_OBJ_PREFIX, strlen(AGENT_OBJ_PREFIX)))
		return false;
	slash = strchr(p, '/');
	if (!slash || (size_t)(slash - p) >= ksz)
		return false;
	snprintf(kind, ksz, "%.*s", (int)(slash - p), p);
	snprintf(ns_name, nsz, "%s", slash + 1);
	return strchr(slash + 1, '/') != NULL;
}

static const struct ipam_alloc *find_alloc(const struct ipam_rec *recs, size_t nrecs,
					   const char *node, const char *pod)
{
	size_t i;

	for (i = 0; i < nrecs; i++)
		if (!node || !strcmp(recs[i].node, node)) {
			const struct ipam_alloc *al = ipam_rec_find_pod(&recs[i], pod);

			if (al)
				return al;
		}
	return NULL;
}

/* A Pod object prepared for the model: with its allocation as status.podIP. Returns 0 and
 * *text (NULL: leave the pod out, it has no address yet), or -EINVAL with why. */
static int pod_text(const char *text, size_t len, const char *pod, const struct ipam_rec *recs,
		    size_t nrecs, char **out, char *why, size_t whysize)
{
	json_t *j, *spec, *status;
	const struct ipam_alloc *al;
	const char *node;
	char ip[IP4_STR_MAX];
	json_error_t je;

	*out = NULL;
	j = json_loadb(text, len, 0, &je);
	if (!j || !json_is_object(j)) {
		snprintf(why, whysize, "not a JSON object (%s)", j ? "" : je.text);
		json_decref(j);
		return -EINVAL;
	}
	spec = json_object_get(j, "spec");
	node = json_string_value(json_object_get(spec, "nodeName"));
	if (json_is_true(json_object_get(spec, "hostNetwork"))) {
		*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(j);
		return *out ? 0 : -ENOMEM;
	}
	al = node ? find_alloc(recs, nrecs, node, pod) : NULL;
	if (!al) {
		json_decref(j);
		return 0;
	}
	status = json_object_get(j, "status");
	if (!json_is_object(status)) {
		status = json_object();
		json_object_set_new(j, "status", status);
	}
	json_object_set_new(status, "podIP", json_string(ip4_format(al->ip, ip)));
	*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return *out ? 0 : -ENOMEM;
}

/* "KEY:1: field: reason" -> "KEY (applied from FILE:LINE): field: reason". */
static void describe_error(const struct agent_obj *o, const char *text, size_t len, const char *msg,
			   char **out)
{
	const char *src = NULL, *rest = msg;
	size_t klen = strlen(o->key);
	json_t *j = json_loadb(text, len, 0, NULL);
	char *s = NULL;

	if (j)
		src = json_string_value(json_object_get(
			json_object_get(json_object_get(j, "metadata"), "annotations"),
			MANIFEST_SOURCE_ANNOTATION));
	if (!strncmp(msg, o->key, klen) && msg[klen] == ':') {
		rest = msg + klen + 1;
		if (!memchr(text, '\n', len)) /* one-line JSON: the line number says nothing */
			while (*rest >= '0' && *rest <= '9')
				rest++;
		if (*rest == ':')
			rest++;
		while (*rest == ' ')
			rest++;
	}
	if (asprintf(&s, "%s%s%s%s: %s", o->key, src ? " (applied from " : "", src ? src : "",
		     src ? ")" : "", rest) < 0)
		s = NULL;
	json_decref(j);
	free(*out);
	*out = s;
}

/* Sets up the documents of one build attempt. */
static int build_docs(struct agent *a, struct agent_obj **order, size_t norder, bool *use_good,
		      const struct ipam_rec *recs, size_t nrecs, char **skip_synth, size_t nskip,
		      struct build *b)
{
	char kind[64], pod[IPAM_POD_MAX], why[256], name[IPAM_POD_MAX + 96];
	size_t i, j, k;
	int err;

	err = build_add(b, a->cluster_name, a->cluster_text, a->cluster_len,
			a->cluster_flags | MODEL_DOC_CLUSTER_ONLY, NULL, NULL, false);
	for (i = 0; !err && i < norder; i++) {
		struct agent_obj *o = order[i];
		const char *text = use_good[i] ? o->good : o->value;
		size_t len = use_good[i] ? o->good_len : o->len;
		char *owned = NULL;

		if (o->excluded)
			continue;
		if (!obj_key_split(o->key, kind, sizeof(kind), pod, sizeof(pod)))
			continue;
		if (!strcmp(kind, "Pod")) {
			err = pod_text(text, len, pod, recs, nrecs, &owned, why, sizeof(why));
			if (err == -EINVAL) {
				/* reported like any other bad object */
				free(o->error);
				if (asprintf(&o->error, "%s: %s", o->key, why) < 0)
					o->error = NULL;
				if (o->bad_rev != o->mod_rev)
					agent_log(a, "bad object %s; skipped",
						  o->error ? o->error : o->key);
				o->bad_rev = o->mod_rev;
				o->excluded = true;
				err = 0;
				continue;
			}
			if (err)
				break;
			if (!owned)
				continue; /* no address yet */
			text = owned;
			len = strlen(owned);
		}
		err = build_add(b, o->key, text, len, 0, o, owned, use_good[i]);
	}
	/* stand-in pods for allocations without a usable Pod object */
	for (i = 0; !err && i < nrecs; i++) {
		for (j = 0; !err && j < recs[i].n; j++) {
			const struct ipam_alloc *al = &recs[i].v[j];
			char key[STORE_KEY_MAX + 1], ip[IP4_STR_MAX], *text;
			const char *slash = strchr(al->pod, '/');
			bool have = false;
			json_t *doc;

			snprintf(key, sizeof(key), "%sPod/%s", AGENT_OBJ_PREFIX, al->pod);
			for (k = 0; k < b->n && !have; k++)
				have = b->src[k].obj && !strcmp(b->src[k].obj->key, key);
			snprintf(name, sizeof(name), "%s%s#%s", IPAM_KEY_PREFIX, recs[i].node,
				 al->pod);
			for (k = 0; k < nskip && !have; k++)
				have = !strcmp(skip_synth[k], name);
			if (have || !slash)
				continue;
			doc = json_pack("{s:s, s:s, s:{s:s#, s:s}, s:{s:s}, s:{s:s}}", "apiVersion",
					"v1", "kind", "Pod", "metadata", "namespace", al->pod,
					(int)(slash - al->pod), "name", slash + 1, "spec",
					"nodeName", recs[i].node, "status", "podIP",
					ip4_format(al->ip, ip));
			text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
			json_decref(doc);
			if (!text)
				return -ENOMEM;
			err = build_add(b, name, text, strlen(text), 0, NULL, text, false);
		}
	}
	return err;
}

int agent_model_build(struct agent *a, struct diag *d)
{
	struct agent_obj **order = NULL;
	struct ipam_rec *recs = NULL;
	struct scenario *s = NULL;
	struct build b = {0};
	char **skip = NULL;
	size_t norder = 0, nrecs = 0, nskip = 0, bad, i, iter;
	bool *use_good = NULL;
	int err;

	err = agent_ipam_recs(a, &recs, &nrecs);
	if (err)
		return diag_fail_errno(d, err, "out of memory");
	order = calloc(a->nobjs + 1, sizeof(*order));
	use_good = calloc(a->nobjs + 1, sizeof(*use_good));
	skip = calloc(a->nobjs + 64, sizeof(*skip));
	if (!order || !use_good || !skip) {
		err = diag_fail_errno(d, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < a->nobjs; i++) {
		struct agent_obj *o = &a->objs[i];

		if (strncmp(o->key, AGENT_OBJ_PREFIX, strlen(AGENT_OBJ_PREFIX)))
			continue;
		o->excluded = false;
		order[norder++] = o;
	}
	qsort(order, norder, sizeof(*order), cmp_create_rev);
	/* versions already known to be bad are not tried again */
	for (i = 0; i < norder; i++) {
		if (order[i]->bad_rev != order[i]->mod_rev)
			continue;
		if (order[i]->good)
			use_good[i] = true;
		else
			order[i]->excluded = true;
	}
	for (iter = 0; iter < norder + 64; iter++) {
		build_free(&b);
		err = build_docs(a, order, norder, use_good, recs, nrecs, skip, nskip, &b);
		if (err) {
			diag_fail_errno(d, err, "building the model: out of memory");
			goto out;
		}
		err = scenario_from_docs("store", b.docs, b.n, &s, &bad, d);
		if (!err)
			break;
		if (bad >= b.n || bad == 0) {
			diag_prefix(d, "model");
			goto out; /* not one object's fault: keep the previous state */
		}
		if (!b.src[bad].obj) {
			agent_log(a, "allocation %s does not fit the model: %s; skipped",
				  b.src[bad].name, d->msg);
			if (nskip < a->nobjs + 64)
				skip[nskip++] = strdup(b.src[bad].name);
			continue;
		}
		for (i = 0; i < norder && order[i] != b.src[bad].obj; i++)
			;
		if (i == norder) /* cannot happen */
			goto out;
		describe_error(order[i], b.docs[bad].text, b.docs[bad].len, d->msg,
			       &order[i]->error);
		if (!use_good[i] && order[i]->good) {
			if (order[i]->bad_rev != order[i]->mod_rev)
				agent_log(a, "bad object %s; keeping its previous version",
					  order[i]->error ? order[i]->error : order[i]->key);
			order[i]->bad_rev = order[i]->mod_rev;
			use_good[i] = true;
		} else {
			if (order[i]->bad_rev != order[i]->mod_rev || use_good[i])
				agent_log(a, "bad object %s; skipped",
					  order[i]->error ? order[i]->error : order[i]->key);
			order[i]->bad_rev = order[i]->mod_rev;
			order[i]->excluded = true;
		}
	}
	if (err)
		goto out;
	/* the store's identity numbers replace the model's manifest-order ones */
	err = agent_identities_resolve(a, s, d);
	if (err) {
		scenario_free(s);
		goto out;
	}
	/* remember what was good */
	for (i = 0; i < b.n; i++) {
		struct agent_obj *o = b.src[i].obj;

		if (!o || b.src[i].used_good)
			continue;
		if (o->bad_rev) { /* its current version is part of the model: good */
			o->bad_rev = 0;
			free(o->error);
			o->error = NULL;
		}
		if (o->good && o->good_len == o->len && !memcmp(o->good, o->value, o->len))
			continue;
		free(o->good);
		o->good = malloc(o->len + 1);
		if (o->good) {
			memcpy(o->good, o->value, o->len + 1);
			o->good_len = o->len;
		}
	}
	scenario_free(a->model);
	a->model = s;
	a->model_rev = a->rev;
	{
		const struct m_node *nd = scenario_find_node(s, a->o.node);

		if (nd) {
			a->pod_cidr = nd->pod_cidr;
			a->pod_cidr_len = nd->pod_cidr_len;
		}
	}
	err = 0;
out:
	build_free(&b);
	for (i = 0; i < nskip; i++)
		free(skip[i]);
	free(skip);
	free(order);
	free(use_good);
	agent_ipam_recs_free(recs, nrecs);
	return err;
}
