/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate apply -f FILE / ciliate delete -f FILE: Kubernetes manifests to and from the store.
 * Each object is stored as JSON at /ciliate/objects/<kind>/<namespace>/<name> (namespace ""
 * for cluster-scoped kinds). Every file is checked first; one bad object rejects the whole
 * run and nothing is written. Deleting needs only each object's kind, metadata.namespace and
 * metadata.name, as `kubectl delete -f` does (SPEC section 4). Writes go in one transaction (per 1024 objects) guarded by
 * compare-and-swap, so a concurrent writer cannot be overwritten unseen.
 * A Service is stored with its clusterIP, nodePorts and healthCheckNodePort filled in, as the
 * API server does: kept from the stored object, else allocated by the model's allocator
 * among the stored Services (docs/SERVICES.md "Allocations").
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "model/model.h"
#include "store/store.h"

#define CAS_TRIES 8
#define FILES_MAX 64

/* Service allocations (docs/SERVICES.md "Allocations"): the Cluster document the last
 * apply of a scenario file carried (its serviceCIDR), and a key every apply writing a
 * Service bumps in the same transaction, so that two applies allocating at once cannot both
 * commit the same clusterIP or nodePort (the later one re-reads and allocates again). */
#define CLUSTER_KEY	     "/ciliate/cluster"
#define SVC_VERSION_KEY	     "/ciliate/services/version"
#define SVC_OBJ_PREFIX	     "/ciliate/objects/Service/"

struct store_opts {
	const char *files[FILES_MAX];
	int nfiles;
	const char *store;
	bool ignore_not_found;
	bool dry_run;
};

const char *cli_store_uri(const char *flag)
{
	const char *env = getenv("CILIATE_STORE");

	if (flag && *flag)
		return flag;
	if (env && *env)
		return env;
	return STORE_DEFAULT_URI;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t cap = 65536;
	char *buf, *n;

	*len = 0;
	if (!f)
		return NULL;
	buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + *len, 1, cap - *len - 1, f);

		*len += r;
		if (r == 0)
			break;
		if (*len + 1 == cap) {
			if (cap >= STORE_VALUE_MAX * 4u) {
				free(buf);
				buf = NULL;
				errno = EFBIG;
				break;
			}
			cap *= 2;
			n = realloc(buf, cap);
			if (!n) {
				free(buf);
				buf = NULL;
			}
			buf = n;
		}
	}
	if (buf)
		buf[*len] = '\0';
	if (f != stdin)
		fclose(f);
	return buf;
}

static int parse_opts(int argc, char **argv, const char *cmd, struct store_opts *o)
{
	static const struct option opts[] = {
		{"filename", required_argument, NULL, 'f'},
		{"store", required_argument, NULL, 's'},
		{"ignore-not-found", no_argument, NULL, 'i'},
		{"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (o->nfiles == FILES_MAX) {
				fprintf(stderr, "ciliate %s: at most %d files\n", cmd, FILES_MAX);
				return EXIT_USAGE;
			}
			o->files[o->nfiles++] = optarg;
			break;
		case 's':
			o->store = optarg;
			break;
		case 'i':
			o->ignore_not_found = true;
			break;
		case 'n':
			o->dry_run = true;
			break;
		case 'h':
			printf("usage: ciliate %s -f FILE [-f FILE...] [--store DIR|URI]%s "
			       "[--dry-run]\n"
			       "FILE '-' reads stdin. The store defaults to $CILIATE_STORE, then "
			       "%s.\n%s",
			       cmd, strcmp(cmd, "delete") ? "" : " [--ignore-not-found]",
			       STORE_DEFAULT_URI,
			       strcmp(cmd, "delete")
				       ? ""
				       : "Each document needs only kind, metadata.name and (namespaced "
					 "kinds) metadata.namespace\n(default \"default\").\n");
			exit(EXIT_OK);
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc || !o->nfiles) {
		fprintf(stderr, "usage: ciliate %s -f FILE [-f FILE...] [--store DIR|URI]\n", cmd);
		return EXIT_USAGE;
	}
	return 0;
}

struct objset {
	struct manifest_obj *v;
	size_t n;
	char **keys;
	char **src; /* "FILE:LINE" of each */
	/* apply: each Service as the checks parsed it (NULL: not a v1 Service, or an
	 * ExternalName one), pointing into models; filled: the JSON to write, with its
	 * allocations (NULL: v[i].json as it is), remade on each compare-and-swap try */
	const struct m_service **svc;
	char **filled;
	size_t nsvc;
	struct cluster_model **models;
	size_t nmodels;
	char *cluster_json; /* the files' Cluster document (the last one), or NULL */
	struct cluster_model *cluster; /* ... checked */
};

static void filled_free(struct objset *s)
{
	size_t i;

	for (i = 0; s->filled && i < s->n; i++) {
		free(s->filled[i]);
		s->filled[i] = NULL;
	}
}

static void objset_free(struct objset *s)
{
	size_t i;

	filled_free(s);
	for (i = 0; i < s->n; i++) {
		free(s->keys[i]);
		free(s->src[i]);
	}
	for (i = 0; i < s->nmodels; i++)
		cluster_model_free(s->models[i]);
	free(s->models);
	free(s->filled);
	free(s->svc);
	free(s->keys);
	free(s->src);
	free(s->cluster_json);
	cluster_model_free(s->cluster);
	manifests_free(s->v, s->n);
	memset(s, 0, sizeof(*s));
}

static const char *obj_json(const struct objset *s, size_t i)
{
	return s->filled && s->filled[i] ? s->filled[i] : s->v[i].json;
}

/* The file's Cluster document, checked with the file's lines, becomes the one this apply
 * allocates clusterIPs in and stores at CLUSTER_KEY. */
static int take_cluster(struct objset *set, const char *name, const char *text, size_t len,
			char *json)
{
	struct model_doc doc = {.name = name, .text = text, .len = len,
				.flags = MODEL_DOC_CLUSTER_ONLY};
	struct cluster_model *m = NULL;
	struct diag d = {{0}};

	if (!json)
		return 0;
	if (cluster_model_from_docs(name, &doc, 1, &m, NULL, &d)) {
		fprintf(stderr, "%s\n", d.msg);
		free(json);
		return -1;
	}
	free(set->cluster_json);
	cluster_model_free(set->cluster);
	set->cluster_json = json;
	set->cluster = m;
	return 0;
}

/* Loads and checks every file; all or nothing. refs: only what names each object (delete). */
static int load_all(const struct store_opts *o, bool refs, struct objset *set)
{
	struct manifest_obj *v;
	struct cluster_model *m = NULL, **nm;
	struct diag d = {{0}};
	size_t len, n, skipped, i, j;
	char *text, *cluster = NULL;
	int f;

	for (f = 0; f < o->nfiles; f++) {
		const char *name = strcmp(o->files[f], "-") ? o->files[f] : "<stdin>";

		text = read_all(o->files[f], &len);
		if (!text) {
			fprintf(stderr, "%s: cannot read: %s\n", name, strerror(errno));
			return -1;
		}
		if (refs ? manifest_refs_load(name, text, len, &v, &n, &skipped, &d)
			 : manifests_load_model(name, text, len, &v, &n, &skipped, &m, &cluster,
						&d)) {
			fprintf(stderr, "%s\n", d.msg);
			free(text);
			return -1;
		}
		if (!refs && take_cluster(set, name, text, len, cluster)) {
			free(text);
			cluster_model_free(m);
			manifests_free(v, n);
			return -1;
		}
		free(text);
		if (skipped)
			fprintf(stderr,
				"%s: %zu sim.ciliate.dev document(s) skipped (not stored)\n", name,
				skipped);
		if (m) {
			nm = realloc(set->models, (set->nmodels + 1) * sizeof(*nm));
			if (!nm) {
				fprintf(stderr, "out of memory\n");
				exit(EXIT_FAILURE_);
			}
			set->models = nm;
			nm[set->nmodels++] = m;
		}
		set->v = realloc(set->v, (set->n + n) * sizeof(*set->v));
		set->keys = realloc(set->keys, (set->n + n) * sizeof(*set->keys));
		set->src = realloc(set->src, (set->n + n) * sizeof(*set->src));
		set->svc = realloc(set->svc, (set->n + n) * sizeof(*set->svc));
		if (!set->v || !set->keys || !set->src || !set->svc) {
			fprintf(stderr, "out of memory\n");
			exit(EXIT_FAILURE_);
		}
		for (i = 0; i < n; i++) {
			char *key = NULL, *src = NULL;

			if (asprintf(&key, "/ciliate/objects/%s/%s/%s", v[i].kind, v[i].ns,
				     v[i].name) < 0 ||
			    asprintf(&src, "%s:%d", name, v[i].line) < 0) {
				fprintf(stderr, "out of memory\n");
				exit(EXIT_FAILURE_);
			}
			for (j = 0; j < set->n; j++) {
				if (strcmp(set->keys[j], key))
					continue;
				fprintf(stderr,
					"%s: metadata.name: %s \"%s%s%s\" is also defined at %s\n",
					src, v[i].kind, v[i].ns, *v[i].ns ? "/" : "", v[i].name,
					set->src[j]);
				free(key);
				free(src);
				manifests_free(v, n);
				return -1;
			}
			set->v[set->n] = v[i];
			set->keys[set->n] = key;
			set->src[set->n] = src;
			set->svc[set->n] = NULL;
			if (m && !strcmp(v[i].kind, "Service") && v[i].api_version &&
			    !strcmp(v[i].api_version, "v1")) {
				char nsname[512];

				snprintf(nsname, sizeof(nsname), "%s/%s", v[i].ns, v[i].name);
				set->svc[set->n] = cluster_find_service(m, nsname);
				set->nsvc += set->svc[set->n] != NULL;
			}
			set->n++;
		}
		free(v); /* the members moved into set */
		m = NULL;
	}
	if (!refs) {
		set->filled = calloc(set->n + 1, sizeof(*set->filled));
		if (!set->filled) {
			fprintf(stderr, "out of memory\n");
			exit(EXIT_FAILURE_);
		}
	}
	return 0;
}

static void obj_label(const struct manifest_obj *o, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s%s%s", o->kind, o->ns, *o->ns ? "/" : "", o->name);
}

/* The value without the source annotation, to tell "unchanged" from "configured" no matter
 * which file the object was applied from. */
static char *strip_source(const char *json, size_t len)
{
	json_t *j = json_loadb(json, len, 0, NULL), *ann;
	char *out;

	if (!j)
		return NULL;
	ann = json_object_get(json_object_get(j, "metadata"), "annotations");
	json_object_del(ann, MANIFEST_SOURCE_ANNOTATION);
	if (json_is_object(ann) && !json_object_size(ann))
		json_object_del(json_object_get(j, "metadata"), "annotations");
	out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return out;
}

static bool same_object(const struct store_kv *kv, const char *json)
{
	char *a = strip_source(kv->value, kv->value_len), *b = strip_source(json, strlen(json));
	bool same = a && b && !strcmp(a, b);

	free(a);
	free(b);
	return same;
}

/* What one compare-and-swap try of an apply holds besides the objects: the compares and
 * writes of CLUSTER_KEY and SVC_VERSION_KEY, and their values. */
struct alloc_try {
	struct store_cmp cmps[2];
	struct store_op ops[2];
	size_t nc, nops;
	char version[64];
	int64_t cluster_rev, version_rev;
};

static int cmp_create_rev(const void *a, const void *b)
{
	const struct store_kv *x = *(const struct store_kv *const *)a;
	const struct store_kv *y = *(const struct store_kv *const *)b;

	if (x->create_revision != y->create_revision)
		return x->create_revision < y->create_revision ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* The Service a stored object holds, parsed as apply parses (NULL: none or bad: the agents
 * report bad objects; apply neither reserves nor keeps their values). *model owns it. */
static const struct m_service *stored_service(const struct store_kv *kv,
					      struct cluster_model **model)
{
	struct manifest_obj *v = NULL;
	struct diag d = {{0}};
	size_t n = 0;

	*model = NULL;
	if (manifests_load_model(kv->key, kv->value, kv->value_len, &v, &n, NULL, model, NULL,
				 &d))
		return NULL;
	manifests_free(v, n);
	return (*model)->nservices ? &(*model)->services[0] : NULL;
}

static bool key_applied(const struct objset *set, const char *key)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (set->svc[i] && !strcmp(set->keys[i], key))
			return true;
	return false;
}

/* The Cluster this apply allocates in: the files' one, else the stored one, else the
 * default Cluster (the agents' without --scenario-cluster); *known false for the default,
 * whose serviceCIDR given clusterIPs are then not checked against (the agents check). */
static int alloc_cluster(struct store *st, struct objset *set, struct alloc_try *t,
			 struct cluster_model **out, bool *known)
{
	struct store_kv kv = {0};
	struct model_doc doc;
	struct diag d = {{0}};
	int err;

	*out = NULL;
	*known = true;
	err = store_get(st, CLUSTER_KEY, &kv, &d);
	if (err && err != -ENOENT) {
		fprintf(stderr, "ciliate apply: %s\n", d.msg);
		return err;
	}
	t->cluster_rev = err ? 0 : kv.mod_revision;
	t->cmps[t->nc++] = (struct store_cmp){CLUSTER_KEY, t->cluster_rev};
	if (set->cluster_json) {
		if (err || strcmp(kv.value, set->cluster_json))
			t->ops[t->nops++] = (struct store_op){
				.type = STORE_OP_PUT, .key = CLUSTER_KEY,
				.value = set->cluster_json,
				.value_len = strlen(set->cluster_json)};
		store_kv_free(&kv);
		return 0;
	}
	if (err) {
		*known = false;
		err = cluster_model_from_docs("default Cluster", NULL, 0, out, NULL, &d);
		if (err)
			fprintf(stderr, "ciliate apply: %s\n", d.msg);
		return err;
	}
	doc = (struct model_doc){.name = CLUSTER_KEY, .text = kv.value, .len = kv.value_len,
				 .flags = MODEL_DOC_CLUSTER_ONLY};
	err = cluster_model_from_docs(CLUSTER_KEY, &doc, 1, out, NULL, &d);
	store_kv_free(&kv);
	if (err)
		fprintf(stderr, "ciliate apply: the stored Cluster: %s\n", d.msg);
	return err;
}

/* One try's allocations: every applied Service's JSON with the stored object's values kept
 * and the missing ones allocated among the store's other Services (creation order, as the
 * agents' model orders them) and this apply's (file order), into set->filled. Returns 0, or
 * a negative errno once reported (a conflict is not retried: the user must change a value). */
static int alloc_services(struct store *st, struct objset *set, struct alloc_try *t)
{
	struct store_list l = {0};
	struct store_kv kv = {0}, **stored = NULL;
	struct cluster_model *cl = NULL, **models = NULL;
	struct m_service *v = NULL;
	const struct m_service *old;
	struct diag d = {{0}};
	size_t i, j, n = 0, nm = 0, bad, *obj_of = NULL;
	long long gen = 0;
	bool known;
	int err;

	memset(t, 0, sizeof(*t));
	filled_free(set);
	if (!set->nsvc && !set->cluster_json)
		return 0;
	err = alloc_cluster(st, set, t, &cl, &known);
	if (err || !set->nsvc)
		goto out;
	/* the version first: a Service written after this read cancels our txn */
	err = store_get(st, SVC_VERSION_KEY, &kv, &d);
	if (err && err != -ENOENT)
		goto store_err;
	if (!err)
		sscanf(kv.value, "{\"generation\":%lld", &gen);
	t->version_rev = err ? 0 : kv.mod_revision;
	store_kv_free(&kv);
	snprintf(t->version, sizeof(t->version), "{\"generation\":%lld}", gen + 1);
	t->cmps[t->nc++] = (struct store_cmp){SVC_VERSION_KEY, t->version_rev};
	t->ops[t->nops++] = (struct store_op){.type = STORE_OP_PUT, .key = SVC_VERSION_KEY,
					      .value = t->version,
					      .value_len = strlen(t->version)};
	err = store_list(st, SVC_OBJ_PREFIX, &l, &d);
	if (err)
		goto store_err;
	err = -ENOMEM;
	stored = calloc(l.n + 1, sizeof(*stored));
	v = calloc(l.n + set->nsvc + 1, sizeof(*v));
	obj_of = calloc(l.n + set->nsvc + 1, sizeof(*obj_of));
	models = calloc(l.n + 1, sizeof(*models));
	if (!stored || !v || !obj_of || !models)
		goto oom;
	for (i = 0; i < l.n; i++)
		stored[i] = &l.items[i];
	qsort(stored, l.n, sizeof(*stored), cmp_create_rev);
	for (i = 0; i < l.n; i++) {
		if (key_applied(set, stored[i]->key))
			continue;
		old = stored_service(stored[i], &models[nm]);
		nm++;
		if (!old)
			continue;
		if (service_copy(&v[n], old))
			goto oom;
		obj_of[n++] = set->n; /* not ours */
	}
	for (i = 0; i < set->n; i++) {
		if (!set->svc[i])
			continue;
		if (service_copy(&v[n], set->svc[i]))
			goto oom;
		obj_of[n] = i;
		for (j = 0; j < l.n; j++) {
			struct cluster_model *sm = NULL;

			if (strcmp(l.items[j].key, set->keys[i]))
				continue;
			old = stored_service(&l.items[j], &sm);
			if (old)
				service_keep_allocations(&v[n], old);
			cluster_model_free(sm);
			break;
		}
		n++;
	}
	err = services_allocate(v, n, cl ? &cl->cluster : &set->cluster->cluster, known, &bad,
				&d);
	if (err == -ENOMEM)
		goto oom;
	if (err) {
		if (bad < n && obj_of[bad] < set->n)
			fprintf(stderr, "%s (%s/%s/%s of %s)\n", d.msg, set->v[obj_of[bad]].kind,
				set->v[obj_of[bad]].ns, set->v[obj_of[bad]].name,
				set->src[obj_of[bad]]);
		else
			fprintf(stderr, "%s\n", d.msg);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (obj_of[i] >= set->n)
			continue;
		err = service_json_fill(set->v[obj_of[i]].json, &v[i], &set->filled[obj_of[i]]);
		if (err)
			goto oom;
	}
	goto out;
store_err:
	fprintf(stderr, "ciliate apply: %s\n", d.msg);
	goto out;
oom:
	err = -ENOMEM;
	fprintf(stderr, "ciliate apply: out of memory\n");
out:
	for (i = 0; v && i < l.n + set->nsvc; i++)
		service_clear(&v[i]);
	for (i = 0; i < nm; i++)
		cluster_model_free(models[i]);
	free(models);
	free(v);
	free(obj_of);
	free(stored);
	store_list_free(&l);
	cluster_model_free(cl);
	return err;
}

static int do_apply(struct store *st, struct objset *set, bool dry_run)
{
	struct store_cmp *cmps = calloc(set->n + 3, sizeof(*cmps));
	struct store_op *ops = calloc(set->n + 3, sizeof(*ops));
	const char **what = calloc(set->n + 1, sizeof(*what));
	struct diag d = {{0}};
	size_t i, start, nops, nc;
	int64_t rev = 0;
	int err = 0, tries;

	if (!cmps || !ops || !what) {
		fprintf(stderr, "out of memory\n");
		return EXIT_FAILURE_;
	}
	/* txns of at most the store's limit (etcd: --max-txn-ops), two keys kept for the
	 * allocation version and the Cluster document */
	size_t batch = store_txn_max(st) - 2;

	for (start = 0; start < set->n || (!set->n && !start); start += batch) {
		size_t end = start + batch < set->n ? start + batch : set->n;

		for (tries = 0; tries < CAS_TRIES; tries++) {
			struct alloc_try t;

			nops = nc = 0;
			err = alloc_services(st, set, &t);
			if (err)
				goto out;
			for (i = start; i < end; i++) {
				struct store_kv kv;

				err = store_get(st, set->keys[i], &kv, &d);
				if (err == -ENOENT) {
					cmps[nc++] = (struct store_cmp){set->keys[i], 0};
					what[i] = "created";
				} else if (err) {
					fprintf(stderr, "ciliate apply: %s\n", d.msg);
					goto out;
				} else {
					cmps[nc++] =
						(struct store_cmp){set->keys[i], kv.mod_revision};
					what[i] = same_object(&kv, obj_json(set, i)) ? "unchanged"
										     : "configured";
					store_kv_free(&kv);
					if (!strcmp(what[i], "unchanged"))
						continue;
				}
				ops[nops++] =
					(struct store_op){.type = STORE_OP_PUT,
							  .key = set->keys[i],
							  .value = obj_json(set, i),
							  .value_len = strlen(obj_json(set, i))};
			}
			err = 0;
			if ((!nops && !(t.nops && !strcmp(t.ops[0].key, CLUSTER_KEY))) || dry_run)
				break;
			/* the allocation keys with the objects they guard, or a new Cluster */
			for (i = 0; i < t.nc; i++)
				cmps[nc++] = t.cmps[i];
			for (i = 0; i < t.nops; i++)
				ops[nops++] = t.ops[i];
			err = store_txn(st, cmps, nc, ops, nops, &rev, &d);
			if (err != -ECANCELED)
				break;
		}
		if (err) {
			fprintf(stderr, "ciliate apply: %s\n",
				err == -ECANCELED ? "objects keep changing under us: try again"
						  : d.msg);
			goto out;
		}
		for (i = start; i < end; i++) {
			char label[600];

			obj_label(&set->v[i], label, sizeof(label));
			printf("%s %s%s\n", label, what[i], dry_run ? " (dry run)" : "");
		}
	}
out:
	free(cmps);
	free(ops);
	free(what);
	return err ? EXIT_FAILURE_ : EXIT_OK;
}

static int do_delete(struct store *st, struct objset *set, bool ignore_missing, bool dry_run)
{
	struct store_cmp *cmps = calloc(set->n + 1, sizeof(*cmps));
	struct store_op *ops = calloc(set->n + 1, sizeof(*ops));
	bool *missing = calloc(set->n + 1, sizeof(*missing));
	struct diag d = {{0}};
	size_t i, start, nops;
	int err = 0, tries, rc = EXIT_OK;
	char label[600];

	if (!cmps || !ops || !missing) {
		fprintf(stderr, "out of memory\n");
		return EXIT_FAILURE_;
	}
	size_t batch = store_txn_max(st); /* etcd: its --max-txn-ops */

	for (start = 0; start < set->n; start += batch) {
		size_t end = start + batch < set->n ? start + batch : set->n;

		for (tries = 0; tries < CAS_TRIES; tries++) {
			nops = 0;
			for (i = start; i < end; i++) {
				struct store_kv kv;

				err = store_get(st, set->keys[i], &kv, &d);
				missing[i] = err == -ENOENT;
				if (err == -ENOENT)
					continue;
				if (err) {
					fprintf(stderr, "ciliate delete: %s\n", d.msg);
					goto out;
				}
				cmps[nops] = (struct store_cmp){set->keys[i], kv.mod_revision};
				ops[nops++] = (struct store_op){.type = STORE_OP_DELETE,
								.key = set->keys[i]};
				store_kv_free(&kv);
			}
			err = 0;
			if (!nops || dry_run)
				break;
			err = store_txn(st, cmps, nops, ops, nops, NULL, &d);
			if (err != -ECANCELED)
				break;
		}
		if (err) {
			fprintf(stderr, "ciliate delete: %s\n",
				err == -ECANCELED ? "objects keep changing under us: try again"
						  : d.msg);
			goto out;
		}
		for (i = start; i < end; i++) {
			obj_label(&set->v[i], label, sizeof(label));
			if (!missing[i]) {
				printf("%s deleted%s\n", label, dry_run ? " (dry run)" : "");
			} else if (!ignore_missing) {
				fprintf(stderr, "%s: %s not found\n", set->src[i], label);
				rc = EXIT_FAILURE_;
			}
		}
	}
out:
	free(cmps);
	free(ops);
	free(missing);
	return err ? EXIT_FAILURE_ : rc;
}

static int run(int argc, char **argv, bool apply)
{
	struct store_opts o = {0};
	struct objset set = {0};
	struct diag d = {{0}};
	struct store *st;
	int rc;

	rc = parse_opts(argc, argv, apply ? "apply" : "delete", &o);
	if (rc)
		return rc;
	if (load_all(&o, !apply, &set)) {
		objset_free(&set);
		return EXIT_FAILURE_;
	}
	if (store_open(cli_store_uri(o.store), &st, &d)) {
		fprintf(stderr, "ciliate: %s\n", d.msg);
		objset_free(&set);
		return EXIT_FAILURE_;
	}
	rc = apply ? do_apply(st, &set, o.dry_run)
		   : do_delete(st, &set, o.ignore_not_found, o.dry_run);
	store_close(st);
	objset_free(&set);
	return rc;
}

int cmd_apply(int argc, char **argv)
{
	return run(argc, argv, true);
}

int cmd_delete(int argc, char **argv)
{
	return run(argc, argv, false);
}
