/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate apply -f FILE / ciliate delete -f FILE: Kubernetes manifests to and from the store.
 * Each object is stored as JSON at /ciliate/objects/<kind>/<namespace>/<name> (namespace ""
 * for cluster-scoped kinds). Every file is checked first; one bad object rejects the whole
 * run and nothing is written. Deleting needs only each object's kind, metadata.namespace and
 * metadata.name, as `kubectl delete -f` does (SPEC section 4). Writes go in one transaction (per 1024 objects) guarded by
 * compare-and-swap, so a concurrent writer cannot be overwritten unseen.
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
};

static void objset_free(struct objset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->keys[i]);
		free(s->src[i]);
	}
	free(s->keys);
	free(s->src);
	manifests_free(s->v, s->n);
	memset(s, 0, sizeof(*s));
}

/* Loads and checks every file; all or nothing. refs: only what names each object (delete). */
static int load_all(const struct store_opts *o, bool refs, struct objset *set)
{
	struct manifest_obj *v;
	struct diag d = {{0}};
	size_t len, n, skipped, i, j;
	char *text;
	int f;

	for (f = 0; f < o->nfiles; f++) {
		const char *name = strcmp(o->files[f], "-") ? o->files[f] : "<stdin>";

		text = read_all(o->files[f], &len);
		if (!text) {
			fprintf(stderr, "%s: cannot read: %s\n", name, strerror(errno));
			return -1;
		}
		if ((refs ? manifest_refs_load : manifests_load)(name, text, len, &v, &n, &skipped,
								 &d)) {
			fprintf(stderr, "%s\n", d.msg);
			free(text);
			return -1;
		}
		free(text);
		if (skipped)
			fprintf(stderr,
				"%s: %zu sim.ciliate.dev document(s) skipped (not stored)\n", name,
				skipped);
		set->v = realloc(set->v, (set->n + n) * sizeof(*set->v));
		set->keys = realloc(set->keys, (set->n + n) * sizeof(*set->keys));
		set->src = realloc(set->src, (set->n + n) * sizeof(*set->src));
		if (!set->v || !set->keys || !set->src) {
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
			set->n++;
		}
		free(v); /* the members moved into set */
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

static int do_apply(struct store *st, struct objset *set, bool dry_run)
{
	struct store_cmp *cmps = calloc(set->n + 1, sizeof(*cmps));
	struct store_op *ops = calloc(set->n + 1, sizeof(*ops));
	const char **what = calloc(set->n + 1, sizeof(*what));
	struct diag d = {{0}};
	size_t i, start, nops, nc;
	int64_t rev = 0;
	int err = 0, tries;

	if (!cmps || !ops || !what) {
		fprintf(stderr, "out of memory\n");
		return EXIT_FAILURE_;
	}
	for (start = 0; start < set->n; start += STORE_TXN_OPS_MAX) {
		size_t end =
			start + STORE_TXN_OPS_MAX < set->n ? start + STORE_TXN_OPS_MAX : set->n;

		for (tries = 0; tries < CAS_TRIES; tries++) {
			nops = nc = 0;
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
					what[i] = same_object(&kv, set->v[i].json) ? "unchanged"
										   : "configured";
					store_kv_free(&kv);
					if (!strcmp(what[i], "unchanged"))
						continue;
				}
				ops[nops++] =
					(struct store_op){.type = STORE_OP_PUT,
							  .key = set->keys[i],
							  .value = set->v[i].json,
							  .value_len = strlen(set->v[i].json)};
			}
			err = 0;
			if (!nops || dry_run)
				break;
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
	for (start = 0; start < set->n; start += STORE_TXN_OPS_MAX) {
		size_t end =
			start + STORE_TXN_OPS_MAX < set->n ? start + STORE_TXN_OPS_MAX : set->n;

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
