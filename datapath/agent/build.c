/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The model from the agent's store cache (docs/AGENT.md, "Reconcile loop"). The model gets:
 * the Cluster document, every stored object in creation order (so that the model's own
 * identity numbering follows the manifests; the numbers that count come from the identity
 * records, see identities.c), Pods only once they have an address (status.podIP is set to
 * their IPAM allocation), and a label-less stand-in Pod for every allocation without a
 * usable Pod object (pods created through the CNI plugin alone). A bad object is reported
 * once per version and skipped; if an earlier version of it was good, that version stays in
 * force.
 *
 * Scaling: every object version (with the address given to it) is parsed once into a model
 * part (model.h) kept in the cache, and each build puts the model together from the parts,
 * so one build costs a copy per pod instead of a parse per object: what changed is parsed,
 * the rest is reused. When the parts are in conflict (duplicates, one address twice) the
 * build falls back to cluster_model_from_docs over every document, which names the culprit.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ipaddr.h"

/* One document of a build: a stored object, or a stand-in for an allocation. */
struct sel {
	struct agent_obj *obj;	    /* NULL: a stand-in */
	size_t oi;		    /* obj's index in the order */
	uint32_t ip;		    /* Pods: the allocation that becomes status.podIP (0: none) */
	const struct ipam_rec *rec; /* stand-ins */
	const struct ipam_alloc *al;
	struct model_part *part;
};

struct build {
	struct agent_obj **order;
	size_t norder;
	bool *use_good;
	const struct ipam_rec **recs;
	size_t nrecs;
	struct sel *sel;
	size_t nsel;
	char **skip; /* stand-ins that do not fit the model */
	size_t nskip, capskip;
	struct agent_standin *standins; /* the stand-ins of this attempt */
	size_t nstandins;
	struct agent_standin *prev; /* those of the previous attempt, sorted */
	size_t nprev;
};

/* ---- hash tables of pods by name ------------------------------------------------------ */

/* Open addressing over pointers, keyed by a "ns/name" string the caller's function finds. */
struct ptab {
	const void **slot;
	size_t mask;
	const char *(*pod_of)(const void *item);
};

static uint64_t hash_pod(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static int ptab_init(struct ptab *t, size_t n, const char *(*pod_of)(const void *))
{
	size_t cap = 64;

	while (cap < 2 * n)
		cap *= 2;
	t->slot = calloc(cap, sizeof(*t->slot));
	t->mask = cap - 1;
	t->pod_of = pod_of;
	return t->slot ? 0 : -ENOMEM;
}

static void ptab_add(struct ptab *t, const void *item)
{
	size_t i = (size_t)hash_pod(t->pod_of(item)) & t->mask;

	while (t->slot[i])
		i = (i + 1) & t->mask;
	t->slot[i] = item;
}

/* Calls match(item, arg) on each item for pod until it returns true; returns that item. */
static const void *ptab_find(const struct ptab *t, const char *pod,
			     bool (*match)(const void *item, const void *arg), const void *arg)
{
	size_t i = (size_t)hash_pod(pod) & t->mask;

	for (; t->slot[i]; i = (i + 1) & t->mask)
		if (!strcmp(t->pod_of(t->slot[i]), pod) && (!match || match(t->slot[i], arg)))
			return t->slot[i];
	return NULL;
}

/* Allocations: items are struct alloc_ref. */
struct alloc_ref {
	const struct ipam_rec *rec;
	const struct ipam_alloc *al;
};

static const char *alloc_pod(const void *item)
{
	return ((const struct alloc_ref *)item)->al->pod;
}

static bool alloc_on_node(const void *item, const void *node)
{
	return !strcmp(((const struct alloc_ref *)item)->rec->node, node);
}

/* Pod objects in the model: items are struct agent_obj, the pod is what follows "Pod/". */
static const char *obj_pod(const void *item)
{
	return ((const struct agent_obj *)item)->key + strlen(AGENT_OBJ_PREFIX "Pod/");
}

/* ---- documents ------------------------------------------------------------------------ */

static bool obj_is_pod(const struct agent_obj *o)
{
	return o->obj_pod;
}

static const char *obj_text(const struct agent_obj *o, bool good, size_t *len)
{
	*len = good ? o->good_len : o->len;
	return good ? o->good : o->value;
}

/* A Pod object prepared for the model: the JSON again, with ip as status.podIP unless it
 * is a hostNetwork pod (ip 0). *out is malloc'd. */
static int pod_text(const char *text, size_t len, uint32_t ip, char **out)
{
	char buf[IP4_STR_MAX];
	json_t *j, *status;

	*out = NULL;
	j = json_loadb(text, len, 0, NULL);
	if (!j)
		return -EINVAL;
	if (ip) {
		status = json_object_get(j, "status");
		if (!json_is_object(status)) {
			status = json_object();
			json_object_set_new(j, "status", status);
		}
		json_object_set_new(status, "podIP", json_string(ip4_format(ip, buf)));
	}
	*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return *out ? 0 : -ENOMEM;
}

/* The text of a stand-in Pod for an allocation (malloc'd). */
static char *standin_text(const struct ipam_rec *rec, const struct ipam_alloc *al)
{
	const char *slash = strchr(al->pod, '/');
	char ip[IP4_STR_MAX], *text;
	json_t *doc;

	doc = json_pack("{s:s, s:s, s:{s:s#, s:s}, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind",
			"Pod", "metadata", "namespace", al->pod, (int)(slash - al->pod), "name",
			slash + 1, "spec", "nodeName", rec->node, "status", "podIP",
			ip4_format(al->ip, ip));
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	return text;
}

static void standin_name(const struct sel *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s#%s", IPAM_KEY_PREFIX, s->rec->node, s->al->pod);
}

/* The document text of a selected entry (*owned: to free). */
static int sel_text(const struct build *b, const struct sel *s, const char **text, size_t *len,
		    char **owned)
{
	int err;

	*owned = NULL;
	if (!s->obj) {
		*owned = standin_text(s->rec, s->al);
		if (!*owned)
			return -ENOMEM;
		*text = *owned;
		*len = strlen(*owned);
		return 0;
	}
	*text = obj_text(s->obj, b->use_good[s->oi], len);
	if (!obj_is_pod(s->obj))
		return 0;
	err = pod_text(*text, *len, s->ip, owned);
	if (err)
		return err;
	*text = *owned;
	*len = strlen(*owned);
	return 0;
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

/* Object order[i] was found bad (msg about text): its previous good version takes over, or
 * it is left out. Returns true when the good version is to be tried. */
static bool mark_bad(struct agent *a, struct build *b, size_t i, const char *text, size_t len,
		     const char *msg)
{
	struct agent_obj *o = b->order[i];

	describe_error(o, text, len, msg, &o->error);
	if (!b->use_good[i] && o->good) {
		if (o->bad_rev != o->mod_rev)
			agent_log(a, "bad object %s; keeping its previous version",
				  o->error ? o->error : o->key);
		o->bad_rev = o->mod_rev;
		b->use_good[i] = true;
		return true;
	}
	if (o->bad_rev != o->mod_rev || b->use_good[i])
		agent_log(a, "bad object %s; skipped", o->error ? o->error : o->key);
	o->bad_rev = o->mod_rev;
	o->excluded = true;
	return false;
}

/* ---- caches: order, Cluster, parts ---------------------------------------------------- */

static int ensure_order(struct agent *a)
{
	size_t i, n = 0;
	struct agent_obj **v;

	if (a->have_order && a->order_gen == a->objs_gen)
		return 0;
	v = calloc(a->nobjs + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < a->nobjs; i++)
		if (!strncmp(a->objs[i]->key, AGENT_OBJ_PREFIX, strlen(AGENT_OBJ_PREFIX)))
			v[n++] = a->objs[i];
	qsort(v, n, sizeof(*v), agent_obj_cmp_order);
	free(a->order);
	a->order = v;
	a->norder = n;
	a->order_gen = a->objs_gen;
	a->have_order = true;
	return 0;
}

/* The Cluster alone, parsed again (and cluster_gen bumped) when its text changed. */
static int ensure_cluster(struct agent *a, struct diag *d)
{
	struct model_doc doc = {.name = a->cluster_name,
				.text = a->cluster_text,
				.len = a->cluster_len,
				.flags = a->cluster_flags | MODEL_DOC_CLUSTER_ONLY};
	struct cluster_model *m;
	char *copy;
	int err;

	if (a->cluster_base && a->cluster_base_text &&
	    !strcmp(a->cluster_base_text, a->cluster_text))
		return 0;
	err = cluster_model_from_docs("store", &doc, 1, &m, NULL, d);
	if (err)
		return err;
	copy = strdup(a->cluster_text);
	if (!copy) {
		cluster_model_free(m);
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	}
	cluster_model_free(a->cluster_base);
	free(a->cluster_base_text);
	a->cluster_base = m;
	a->cluster_base_text = copy;
	a->cluster_gen++;
	return 0;
}

/* The part of object order[i] (version per use_good, address ip), parsed unless cached.
 * Returns 0 with *part, -EINVAL with d set (a bad document: text/len tell which), or
 * another error. */
static int obj_part(struct agent *a, struct build *b, size_t i, uint32_t ip,
		    struct model_part **part, char **text, size_t *len, struct diag *d)
{
	struct agent_obj *o = b->order[i];
	bool good = b->use_good[i];
	int64_t rev = good ? o->good_rev : o->mod_rev;
	struct sel s = {.obj = o, .oi = i, .ip = ip};
	const char *t;
	int err;

	*text = NULL;
	if (o->part && o->part_good == good && o->part_rev == rev && o->part_ip == ip &&
	    o->part_gen == a->cluster_gen) {
		*part = o->part;
		return 0;
	}
	err = sel_text(b, &s, &t, len, text);
	if (err == -EINVAL)
		return diag_fail(d, "%s: not a JSON object", o->key);
	if (err)
		return diag_fail_errno(d, err, "out of memory");
	if (!*text) {
		*text = malloc(*len + 1);
		if (!*text)
			return diag_fail_errno(d, -ENOMEM, "out of memory");
		memcpy(*text, t, *len + 1);
	}
	a->objects_parsed++;
	err = model_part_parse(a->cluster_base, o->key, *text, *len, part, d);
	if (err)
		return err == -ENOMEM ? err : -EINVAL;
	model_part_unref(o->part);
	o->part = *part;
	o->part_good = good;
	o->part_rev = rev;
	o->part_ip = ip;
	o->part_gen = a->cluster_gen;
	return 0;
}

static int cmp_standin(const void *x, const void *y)
{
	return strcmp(((const struct agent_standin *)x)->name,
		      ((const struct agent_standin *)y)->name);
}

static void standins_free(struct agent_standin *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		model_part_unref(v[i].part);
	}
	free(v);
}

/* The part of a stand-in (NULL with d set when it does not fit), from the previous build's
 * stand-ins unless its address or the Cluster changed; kept in b->standins. */
static int standin_part(struct agent *a, struct build *b, const struct sel *s,
			struct model_part **part, struct diag *d)
{
	struct agent_standin key, *old, *v;
	char name[IPAM_POD_MAX + 96], *text;
	int err;

	*part = NULL;
	standin_name(s, name, sizeof(name));
	key.name = name;
	v = realloc(b->standins, (b->nstandins + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	b->standins = v;
	v = &v[b->nstandins];
	memset(v, 0, sizeof(*v));
	v->name = strdup(name);
	if (!v->name)
		return -ENOMEM;
	v->ip = s->al->ip;
	v->gen = a->cluster_gen;
	b->nstandins++;
	old = bsearch(&key, b->prev, b->nprev, sizeof(key), cmp_standin);
	if (!old || !old->part)
		old = bsearch(&key, a->standins, a->nstandins, sizeof(key), cmp_standin);
	if (old && old->ip == v->ip && old->gen == v->gen && old->part) {
		v->part = model_part_ref(old->part);
		*part = v->part;
		return 0;
	}
	text = standin_text(s->rec, s->al);
	if (!text)
		return -ENOMEM;
	a->objects_parsed++;
	err = model_part_parse(a->cluster_base, name, text, strlen(text), &v->part, d);
	free(text);
	if (err == -ENOMEM)
		return err;
	*part = v->part;
	return 0;
}

static bool skipped(const struct build *b, const char *name)
{
	size_t k;

	for (k = 0; k < b->nskip; k++)
		if (!strcmp(b->skip[k], name))
			return true;
	return false;
}

static int skip_add(struct build *b, const char *name)
{
	char **v;

	if (b->nskip == b->capskip) {
		v = realloc(b->skip, (b->capskip ? b->capskip * 2 : 8) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->skip = v;
		b->capskip = b->capskip ? b->capskip * 2 : 8;
	}
	b->skip[b->nskip] = strdup(name);
	return b->skip[b->nskip++] ? 0 : -ENOMEM;
}

/* ---- one attempt ---------------------------------------------------------------------- */

static int sel_add(struct build *b, const struct sel *s)
{
	struct sel *v;

	if ((b->nsel & (b->nsel - 1)) == 0 || !b->sel) { /* grow at powers of two */
		v = realloc(b->sel, (b->nsel ? 2 * b->nsel : 64) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->sel = v;
	}
	b->sel[b->nsel++] = *s;
	return 0;
}

/* Where object order[i] stands in this attempt: 1 with s filled (in the model), 0 (not in
 * the model: no address yet, or bad), or an error. */
static int select_obj(struct agent *a, struct build *b, const struct ptab *allocs, size_t i,
		      struct sel *s, struct diag *d)
{
	struct agent_obj *o = b->order[i];
	const char *pod = o->obj_name;
	char *text;
	const struct alloc_ref *ar;
	const char *node;
	bool hostnet;
	json_error_t je;
	json_t *j;
	size_t len;
	int err;

	if (!o->obj_model) /* not /ciliate/objects/<kind>/<ns>/<name> */
		return 0;
	for (;;) {
		memset(s, 0, sizeof(*s));
		s->obj = o;
		s->oi = i;
		if (o->obj_pod && !b->use_good[i] && o->not_json) {
			/* reported like any other bad object */
			j = json_loadb(o->value, o->len, 0, &je);
			free(o->error);
			if (asprintf(&o->error, "%s: not a JSON object (%s)", o->key,
				     j ? "" : je.text) < 0)
				o->error = NULL;
			json_decref(j);
			if (o->bad_rev != o->mod_rev)
				agent_log(a, "bad object %s; skipped",
					  o->error ? o->error : o->key);
			o->bad_rev = o->mod_rev;
			o->excluded = true;
			return 0;
		}
		if (o->obj_pod) {
			j = NULL;
			node = o->pod_node;
			hostnet = o->pod_hostnet;
			if (b->use_good[i]) { /* the good version (rare): read it again */
				json_t *spec;

				j = json_loadb(o->good, o->good_len, 0, NULL);
				spec = json_object_get(j, "spec");
				node = json_string_value(json_object_get(spec, "nodeName"));
				hostnet = json_is_true(json_object_get(spec, "hostNetwork"));
			}
			ar = node && !hostnet ? ptab_find(allocs, pod, alloc_on_node, node) : NULL;
			json_decref(j);
			if (!hostnet && !ar)
				return 0; /* no address yet */
			s->ip = ar ? ar->al->ip : 0;
		}
		err = obj_part(a, b, i, s->ip, &s->part, &text, &len, d);
		if (err != -EINVAL) {
			free(text);
			return err ? err : 1;
		}
		err = mark_bad(a, b, i, text ? text : "", text ? len : 0, d->msg);
		free(text);
		if (!err)
			return 0;
	}
}

/* Selects the documents of this attempt and their parts; documents that are bad on their
 * own are handled here (bad objects, stand-ins that do not fit). */
static int select_docs(struct agent *a, struct build *b, const struct ptab *allocs, struct diag *d)
{
	char name[IPAM_POD_MAX + 96];
	struct ptab have = {0};
	struct sel s;
	size_t i, j;
	int err = 0;

	b->nsel = 0;
	/* the stand-ins of the previous attempt are reused */
	standins_free(b->prev, b->nprev);
	qsort(b->standins, b->nstandins, sizeof(*b->standins), cmp_standin);
	b->prev = b->standins;
	b->nprev = b->nstandins;
	b->standins = NULL;
	b->nstandins = 0;
	if (ptab_init(&have, b->norder, obj_pod))
		return -ENOMEM;
	for (i = 0; !err && i < b->norder; i++) {
		if (b->order[i]->excluded)
			continue;
		err = select_obj(a, b, allocs, i, &s, d);
		if (err <= 0)
			continue;
		err = sel_add(b, &s);
		if (!err && obj_is_pod(s.obj))
			ptab_add(&have, s.obj);
	}
	/* stand-in pods for allocations without a usable Pod object */
	for (i = 0; !err && i < b->nrecs; i++) {
		for (j = 0; !err && j < b->recs[i]->n; j++) {
			const struct ipam_alloc *al = &b->recs[i]->v[j];

			memset(&s, 0, sizeof(s));
			s.rec = b->recs[i];
			s.al = al;
			if (!strchr(al->pod, '/') || ptab_find(&have, al->pod, NULL, NULL))
				continue;
			standin_name(&s, name, sizeof(name));
			if (skipped(b, name))
				continue;
			err = standin_part(a, b, &s, &s.part, d);
			if (err)
				break;
			if (!s.part) {
				agent_log(a, "allocation %s does not fit the model: %s; skipped",
					  name, d->msg);
				err = skip_add(b, name);
				continue;
			}
			err = sel_add(b, &s);
		}
	}
	free(have.slot);
	if (err == -ENOMEM)
		return diag_fail_errno(d, err, "building the model: out of memory");
	return err;
}

/* Every document given to cluster_model_from_docs, as before parts: names the culprit of a
 * conflict. *bad gets the index into b->sel (+1: 0 is the Cluster). */
static int build_full(struct agent *a, struct build *b, struct cluster_model **out,
		      size_t *bad, struct diag *d)
{
	struct model_doc *docs = calloc(b->nsel + 1, sizeof(*docs));
	char **owned = calloc(b->nsel + 1, sizeof(*owned));
	char(*names)[IPAM_POD_MAX + 96] = calloc(b->nsel + 1, sizeof(*names));
	size_t i;
	int err = 0;

	*bad = 0;
	a->full_builds++;
	if (!docs || !owned || !names) {
		err = diag_fail_errno(d, -ENOMEM, "building the model: out of memory");
		goto out;
	}
	docs[0] = (struct model_doc){.name = a->cluster_name,
				     .text = a->cluster_text,
				     .len = a->cluster_len,
				     .flags = a->cluster_flags | MODEL_DOC_CLUSTER_ONLY};
	for (i = 0; !err && i < b->nsel; i++) {
		const struct sel *s = &b->sel[i];

		if (s->obj)
			snprintf(names[i + 1], sizeof(names[0]), "%s", s->obj->key);
		else
			standin_name(s, names[i + 1], sizeof(names[0]));
		docs[i + 1].name = names[i + 1];
		err = sel_text(b, s, &docs[i + 1].text, &docs[i + 1].len, &owned[i + 1]);
	}
	if (err) {
		err = diag_fail_errno(d, -ENOMEM, "building the model: out of memory");
		goto out;
	}
	a->objects_parsed += b->nsel;
	err = cluster_model_from_docs("store", docs, b->nsel + 1, out, bad, d);
out:
	for (i = 0; owned && i <= b->nsel; i++)
		free(owned[i]);
	free(owned);
	free(docs);
	free(names);
	return err;
}

/* One attempt from the parts: 0 with *out, -EAGAIN when cluster_model_from_docs must
 * decide. */
static int build_from_parts(struct agent *a, struct build *b, struct cluster_model **out,
			    struct diag *d)
{
	struct model_part **parts;
	struct cluster_model *m;
	size_t i;
	int err;

	*out = NULL;
	parts = calloc(b->nsel + 1, sizeof(*parts));
	if (!parts)
		return diag_fail_errno(d, -ENOMEM, "building the model: out of memory");
	for (i = 0; i < b->nsel; i++)
		parts[i] = b->sel[i].part;
	err = cluster_model_copy_cluster(a->cluster_base, &m);
	if (err)
		diag_fail_errno(d, err, "building the model: out of memory");
	if (!err) {
		err = cluster_model_from_parts(m, parts, b->nsel, d);
		if (err)
			cluster_model_free(m);
		else
			*out = m;
	}
	free(parts);
	return err;
}

static void build_free(struct build *b)
{
	size_t i;

	for (i = 0; i < b->nskip; i++)
		free(b->skip[i]);
	free(b->skip);
	free(b->sel);
	free(b->use_good);
	free(b->recs);
	standins_free(b->standins, b->nstandins);
	standins_free(b->prev, b->nprev);
}

int agent_model_build(struct agent *a, struct diag *d)
{
	struct alloc_ref *refs = NULL;
	struct ptab allocs = {0};
	struct cluster_model *m = NULL;
	struct build b = {0};
	size_t i, j, n, bad, iter;
	int err;

	/* what the objects say, read once per version */
	for (i = 0; i < a->nobjs; i++)
		agent_obj_derive(a, a->objs[i]);
	err = ensure_order(a);
	if (!err)
		err = ensure_cluster(a, d);
	else
		err = diag_fail_errno(d, err, "out of memory");
	if (err)
		return err;
	b.order = a->order;
	b.norder = a->norder;
	b.use_good = calloc(b.norder + 1, sizeof(*b.use_good));
	b.recs = calloc(a->nobjs + 1, sizeof(*b.recs));
	if (!b.use_good || !b.recs) {
		err = diag_fail_errno(d, -ENOMEM, "out of memory");
		goto out;
	}
	/* the allocations, by pod */
	for (i = 0, n = 0; i < a->nobjs; i++)
		if (a->objs[i]->ipam) {
			b.recs[b.nrecs++] = a->objs[i]->ipam;
			n += a->objs[i]->ipam->n;
		}
	refs = calloc(n + 1, sizeof(*refs));
	if (!refs || ptab_init(&allocs, n, alloc_pod)) {
		err = diag_fail_errno(d, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0, n = 0; i < b.nrecs; i++)
		for (j = 0; j < b.recs[i]->n; j++, n++) {
			refs[n] = (struct alloc_ref){.rec = b.recs[i], .al = &b.recs[i]->v[j]};
			ptab_add(&allocs, &refs[n]);
		}
	/* versions already known to be bad are not tried again */
	for (i = 0; i < b.norder; i++) {
		b.order[i]->excluded = false;
		if (b.order[i]->bad_rev != b.order[i]->mod_rev)
			continue;
		if (b.order[i]->good)
			b.use_good[i] = true;
		else
			b.order[i]->excluded = true;
	}
	for (iter = 0; iter < b.norder + 64; iter++) {
		err = select_docs(a, &b, &allocs, d);
		if (err)
			goto out;
		err = build_from_parts(a, &b, &m, d);
		if (!err)
			break;
		if (err != -EAGAIN)
			goto out;
		err = build_full(a, &b, &m, &bad, d);
		if (!err)
			break;
		if (bad > b.nsel || bad == 0) {
			diag_prefix(d, "model");
			goto out; /* not one object's fault: keep the previous state */
		}
		if (!b.sel[bad - 1].obj) {
			char name[IPAM_POD_MAX + 96];

			standin_name(&b.sel[bad - 1], name, sizeof(name));
			agent_log(a, "allocation %s does not fit the model: %s; skipped", name,
				  d->msg);
			if (skip_add(&b, name)) {
				err = diag_fail_errno(d, -ENOMEM, "out of memory");
				goto out;
			}
			continue;
		}
		{
			const struct sel *bs = &b.sel[bad - 1];
			const char *text;
			size_t len;
			char *owned = NULL;
			char msg[sizeof(d->msg)];

			snprintf(msg, sizeof(msg), "%s", d->msg);
			if (sel_text(&b, bs, &text, &len, &owned)) {
				text = "";
				len = 0;
			}
			mark_bad(a, &b, bs->oi, text, len, msg);
			free(owned);
		}
	}
	if (err)
		goto out;
	/* the store's identity numbers replace the model's manifest-order ones */
	err = agent_identities_resolve(a, m, d);
	if (err) {
		cluster_model_free(m);
		goto out;
	}
	/* remember what was good */
	for (i = 0; i < b.nsel; i++) {
		struct agent_obj *o = b.sel[i].obj;

		if (!o || b.use_good[b.sel[i].oi])
			continue;
		if (o->bad_rev) { /* its current version is part of the model: good */
			o->bad_rev = 0;
			free(o->error);
			o->error = NULL;
		}
		if (o->good && o->good_rev == o->mod_rev)
			continue;
		o->good_rev = o->mod_rev;
		if (o->good && o->good_len == o->len && !memcmp(o->good, o->value, o->len))
			continue;
		free(o->good);
		o->good = malloc(o->len + 1);
		if (o->good) {
			memcpy(o->good, o->value, o->len + 1);
			o->good_len = o->len;
		}
	}
	if (a->o.routing) /* --routing: the node's plumbing, whatever the Cluster says */
		m->cluster.routing = (enum m_routing)(a->o.routing - 1);
	cluster_model_free(a->model);
	a->model = m;
	a->built_rev = a->rev;
	/* the stand-ins of this model are the cache for the next build */
	standins_free(a->standins, a->nstandins);
	qsort(b.standins, b.nstandins, sizeof(*b.standins), cmp_standin);
	a->standins = b.standins;
	a->nstandins = b.nstandins;
	b.standins = NULL;
	b.nstandins = 0;
	{
		const struct m_node *nd = cluster_find_node(m, a->o.node);

		if (nd) {
			a->pod_cidr = nd->pod_cidr;
			a->pod_cidr_len = nd->pod_cidr_len;
		}
	}
	err = 0;
out:
	free(allocs.slot);
	free(refs);
	build_free(&b);
	return err;
}

void agent_model_cache_free(struct agent *a)
{
	free(a->order);
	a->order = NULL;
	a->norder = 0;
	a->have_order = false;
	cluster_model_free(a->cluster_base);
	a->cluster_base = NULL;
	free(a->cluster_base_text);
	a->cluster_base_text = NULL;
	standins_free(a->standins, a->nstandins);
	a->standins = NULL;
	a->nstandins = 0;
}
