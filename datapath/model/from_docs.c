/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Building the model from a set of separate documents instead of one scenario file: the
 * agent's view of the store (a Cluster document plus one Kubernetes object per store key),
 * and `ciliate apply`'s check of a manifest file before anything is written.
 *
 * Each document keeps its own name in messages ("NAME:LINE: FIELD: reason"). The names are
 * copied into one buffer owned by the cluster model: its `name` holds the model's name
 * followed by every document name (NUL-separated), so pods' `file` pointers stay valid for
 * the model's lifetime and cluster_model_free() releases them.
 */
#include "parse.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"

static void streams_free(struct doc_stream *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		doc_stream_clear(&v[i]);
	free(v);
}

void doc_stream_clear(struct doc_stream *st)
{
	size_t j;

	for (j = 0; j < st->n; j++)
		yaml_document_delete(&st->docs[j]);
	free(st->docs);
	st->docs = NULL;
	st->n = 0;
}

int doc_stream_load(const char *name, const char *text, size_t len, struct doc_stream *st,
		       struct diag *d)
{
	yaml_parser_t parser;
	yaml_document_t doc, *v;
	int err = 0;

	if (!yaml_parser_initialize(&parser))
		return diag_fail_errno(d, -ENOMEM, "%s: out of memory", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		if (!yaml_parser_load(&parser, &doc)) {
			err = diag_fail(d, "%s:%zu: YAML syntax error: %s%s%s", name,
					parser.problem_mark.line + 1,
					parser.problem ? parser.problem : "unknown",
					parser.context ? " " : "",
					parser.context ? parser.context : "");
			break;
		}
		if (!yaml_document_get_root_node(&doc)) {
			yaml_document_delete(&doc);
			break;
		}
		v = realloc(st->docs, (st->n + 1) * sizeof(*v));
		if (!v) {
			yaml_document_delete(&doc);
			err = diag_fail_errno(d, -ENOMEM, "%s: out of memory", name);
			break;
		}
		st->docs = v;
		st->docs[st->n++] = doc;
	}
	yaml_parser_delete(&parser);
	return err;
}

static const char *root_field(const struct yt_ctx *c, const yaml_node_t *root, const char *key)
{
	if (!root || root->type != YAML_MAPPING_NODE)
		return NULL;
	return yt_scalar(yt_map_get(c, root, key));
}

static bool is_sim_doc(const struct yt_ctx *c, const yaml_node_t *root)
{
	const char *api = root_field(c, root, "apiVersion");

	return api && !strncmp(api, "sim.ciliate.dev/", 16);
}

static bool is_kind(const struct yt_ctx *c, const yaml_node_t *root, const char *api,
		    const char *kind)
{
	const char *a = root_field(c, root, "apiVersion"), *k = root_field(c, root, "kind");

	return a && k && !strcmp(a, api) && !strcmp(k, kind);
}

/* Index of the document whose name starts the diag message ("NAME:..."), else ndocs. */
static size_t doc_of_message(const struct diag *d, char *const *names, size_t ndocs)
{
	size_t i, best = ndocs, best_len = 0, l;

	if (!d)
		return ndocs;
	for (i = 0; i < ndocs; i++) {
		l = strlen(names[i]);
		if (l > best_len && !strncmp(d->msg, names[i], l) && d->msg[l] == ':') {
			best = i;
			best_len = l;
		}
	}
	return best;
}

static int manifest_item(struct parse_ctx *p, yaml_node_t *item, const char *path, void *arg)
{
	return manifest_parse(p, item, path);
}

int doc_stream_manifests(struct parse_ctx *p, struct doc_stream *st)
{
	yaml_node_t *root;
	size_t j;
	int err;

	for (j = 0; j < st->n; j++) {
		p->yt.doc = &st->docs[j];
		root = yaml_document_get_root_node(&st->docs[j]);
		if (!root || yt_is_null(root))
			continue;
		if (is_kind(&p->yt, root, SIM_API_VERSION, "Cluster"))
			continue; /* parsed in the first pass */
		if (is_kind(&p->yt, root, "v1", "List"))
			err = list_items_each(p, root, manifest_item, NULL);
		else
			err = manifest_parse(p, root, "");
		if (err)
			return err;
	}
	return 0;
}

int doc_stream_cluster(struct parse_ctx *p, struct doc_stream *st, int *cluster_line)
{
	yaml_node_t *root;
	size_t j;
	int err;

	for (j = 0; j < st->n; j++) {
		p->yt.doc = &st->docs[j];
		root = yaml_document_get_root_node(&st->docs[j]);
		if (!is_kind(&p->yt, root, SIM_API_VERSION, "Cluster"))
			continue;
		if (p->m->has_cluster)
			return yt_fail(&p->yt, root, "kind",
				       "only one Cluster document is allowed (another one, at "
				       "line %d, was given first)",
				       *cluster_line);
		*cluster_line = yt_line(root);
		p->m->has_cluster = true;
		err = cluster_parse(p, root);
		if (err)
			return err;
	}
	return 0;
}

/* Creates a cluster model holding only the defaults, whose name buffer also holds every
 * document's name. */
static int model_with_names(const char *name, const struct model_doc *docs, size_t ndocs,
			    struct cluster_model **out, char ***names_out, struct diag *d)
{
	struct cluster_model *m;
	size_t i, size = strlen(name) + 1;
	char **names, *buf, *w;
	int err;

	for (i = 0; i < ndocs; i++)
		size += strlen(docs[i].name ? docs[i].name : "") + 1;
	buf = malloc(size);
	names = calloc(ndocs ? ndocs : 1, sizeof(*names));
	if (!buf || !names) {
		free(buf);
		free(names);
		return diag_fail_errno(d, -ENOMEM, "%s: out of memory", name);
	}
	err = cluster_model_new(name, &m); /* the Cluster defaults */
	if (err) {
		free(buf);
		free(names);
		return diag_fail_errno(d, err, "%s: out of memory", name);
	}
	w = buf;
	w += sprintf(w, "%s", name) + 1;
	for (i = 0; i < ndocs; i++) {
		names[i] = w;
		w += sprintf(w, "%s", docs[i].name ? docs[i].name : "") + 1;
	}
	free(m->name);
	m->name = buf;
	*out = m;
	*names_out = names;
	return 0;
}

int cluster_model_from_docs(const char *name, const struct model_doc *docs, size_t ndocs,
			    struct cluster_model **out, size_t *bad, struct diag *d)
{
	struct doc_stream *st = NULL;
	struct parse_ctx p = {0};
	struct cluster_model *m = NULL;
	char **names = NULL;
	int cluster_line = 0, err;
	size_t i, at = ndocs;

	*out = NULL;
	if (d)
		d->msg[0] = '\0';
	err = model_with_names(name, docs, ndocs, &m, &names, d);
	if (err)
		goto out;
	st = calloc(ndocs ? ndocs : 1, sizeof(*st));
	if (!st) {
		err = diag_fail_errno(d, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	p.m = m;
	p.dir = ".";
	p.yt.d = d;
	for (i = 0; i < ndocs; i++) {
		err = doc_stream_load(names[i], docs[i].text, docs[i].len, &st[i], d);
		if (err) {
			at = i;
			goto out;
		}
	}
	for (i = 0; i < ndocs; i++) {
		p.yt.file = names[i];
		err = doc_stream_cluster(&p, &st[i], &cluster_line);
		if (err) {
			at = i;
			goto out;
		}
	}
	for (i = 0; i < ndocs; i++) {
		if (docs[i].flags & MODEL_DOC_CLUSTER_ONLY)
			continue;
		p.yt.file = names[i];
		err = doc_stream_manifests(&p, &st[i]);
		if (err) {
			at = i;
			goto out;
		}
	}
	err = node_docs_apply(m); /* parsed Node documents name Cluster nodes */
	if (!err)
		err = namespaces_complete(m, d);
	if (!err)
		err = ipam_assign(m, d);
	if (!err)
		err = identity_assign(m, d);
	if (!err)
		err = services_complete(m, d);
	if (err)
		at = doc_of_message(d, names, ndocs);
out:
	if (err == -ENOMEM && d && !d->msg[0])
		diag_fail_errno(d, err, "%s: out of memory", name);
	streams_free(st, ndocs);
	free(names);
	if (bad)
		*bad = err ? at : ndocs;
	if (err) {
		cluster_model_free(m);
		return err;
	}
	*out = m;
	return 0;
}

/* ---- manifest files: check and convert to JSON -------------------------------------------- */

bool manifest_kind_cluster_scoped(const char *kind)
{
	static const char *const kinds[] = {
		"Namespace",
		"Node",
		"CiliumClusterwideNetworkPolicy",
		"CiliumEgressGatewayPolicy",
		"CiliumNode",
		"CiliumIdentity",
		"ClusterRole",
		"ClusterRoleBinding",
		"CustomResourceDefinition",
		"PersistentVolume",
		"StorageClass",
		"PriorityClass",
		"IngressClass",
		"APIService",
		"ValidatingWebhookConfiguration",
		"MutatingWebhookConfiguration",
		"CiliumLoadBalancerIPPool",
		NULL,
	};
	size_t i;

	for (i = 0; kinds[i]; i++)
		if (!strcmp(kind, kinds[i]))
			return true;
	return false;
}

/* A plain scalar as JSON the way a YAML 1.2 core schema reader sees it. */
static json_t *plain_scalar_json(const char *v)
{
	const char *c = v;
	bool digits = false, frac = false, exp = false;
	char *end;

	if (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	    !strcmp(v, "NULL"))
		return json_null();
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
		return json_true();
	if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
		return json_false();
	if (*c == '-' || *c == '+')
		c++;
	for (; *c; c++) {
		if (*c >= '0' && *c <= '9') {
			digits = true;
		} else if (*c == '.' && !frac && !exp) {
			frac = true;
		} else if ((*c == 'e' || *c == 'E') && digits && !exp) {
			exp = true;
			if (c[1] == '-' || c[1] == '+')
				c++;
		} else {
			return json_string(v);
		}
	}
	if (!digits)
		return json_string(v);
	if (!frac && !exp) {
		long long n;

		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno || *end)
			return json_string(v); /* out of range: keep the text */
		return json_integer(n);
	}
	return json_real(strtod(v, NULL));
}

static int node_json(const struct yt_ctx *c, const yaml_node_t *n, const char *path, json_t **out,
		     int depth)
{
	char sub[YT_PATH_MAX];
	yaml_node_item_t *it;
	yaml_node_pair_t *pr;
	json_t *j, *v;
	size_t i = 0;
	int err;

	*out = NULL;
	if (depth > 64)
		return yt_fail(c, n, path, "nested too deeply");
	switch (n->type) {
	case YAML_SCALAR_NODE:
		if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			j = plain_scalar_json(yt_scalar(n));
		else
			j = json_stringn((const char *)n->data.scalar.value, n->data.scalar.length);
		if (!j)
			return yt_fail(c, n, path, "not valid UTF-8 text");
		*out = j;
		return 0;
	case YAML_SEQUENCE_NODE:
		j = json_array();
		for (it = n->data.sequence.items.start; j && it < n->data.sequence.items.top;
		     it++, i++) {
			err = node_json(c, yt_node(c, *it), yt_path(sub, "%s[%zu]", path, i), &v,
					depth + 1);
			if (err) {
				json_decref(j);
				return err;
			}
			json_array_append_new(j, v);
		}
		break;
	case YAML_MAPPING_NODE:
		j = json_object();
		for (pr = n->data.mapping.pairs.start; j && pr < n->data.mapping.pairs.top; pr++) {
			const yaml_node_t *k = yt_node(c, pr->key);
			const char *ks = yt_scalar(k);

			if (!ks) {
				json_decref(j);
				return yt_fail(c, k, path, "mapping keys must be strings");
			}
			if (json_object_get(j, ks)) {
				json_decref(j);
				return yt_fail(c, k,
					       yt_path(sub, "%s%s%s", path, *path ? "." : "", ks),
					       "duplicate key");
			}
			err = node_json(c, yt_node(c, pr->value),
					yt_path(sub, "%s%s%s", path, *path ? "." : "", ks), &v,
					depth + 1);
			if (err) {
				json_decref(j);
				return err;
			}
			json_object_set_new(j, ks, v);
		}
		break;
	default:
		return yt_fail(c, n, path, "unsupported YAML node");
	}
	if (!j)
		return -ENOMEM;
	*out = j;
	return 0;
}

/* Gives a Pod's node (by spec.nodeName) a permissive stand-in in p->m's cluster: apply does not
 * know the real cluster, so any node name and any pod address are accepted here and checked
 * by the agents. */
static int stand_in_node(struct parse_ctx *p, const yaml_node_t *root)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *spec = yt_map_get(c, root, "spec"), *st = yt_map_get(c, root, "status");
	const char *node = yt_scalar(yt_map_get(c, spec, "nodeName"));
	const char *ip = yt_scalar(yt_map_get(c, st, "podIP"));
	struct m_cluster *cl = &p->m->cluster;
	struct m_node *v;
	uint32_t addr = 0;
	bool hostnet = false;

	if (!node || strlen(node) >= sizeof(cl->nodes[0].name))
		return 0; /* the pod parser reports it */
	if (ip)
		ip4_parse(ip, &addr);
	if (yt_map_get(c, spec, "hostNetwork")) {
		struct yt_ctx quiet = {.file = c->file, .doc = c->doc, .d = NULL};

		yt_bool(&quiet, yt_map_get(c, spec, "hostNetwork"), "", &hostnet);
	}
	if (cluster_find_node(p->m, node)) {
		struct m_node *nd = (struct m_node *)cluster_find_node(p->m, node);

		if (hostnet && addr && !nd->ip)
			nd->ip = addr;
		return 0;
	}
	v = realloc(cl->nodes, (cl->nnodes + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	cl->nodes = v;
	memset(&v[cl->nnodes], 0, sizeof(*v));
	snprintf(v[cl->nnodes].name, sizeof(v[0].name), "%s", node);
	v[cl->nnodes].pod_cidr = 0;
	v[cl->nnodes].pod_cidr_len = 0; /* every address */
	v[cl->nnodes].ip = hostnet ? addr : 0;
	cl->nnodes++;
	return 0;
}

/* A Node document's node, as stand_in_node does for pods: apply does not know the
 * Cluster's nodes, the agents check the name. */
static int stand_in_named_node(struct parse_ctx *p, const char *name)
{
	struct m_cluster *cl = &p->m->cluster;
	struct m_node *v;

	if (strlen(name) >= sizeof(cl->nodes[0].name) || cluster_find_node(p->m, name))
		return 0; /* too long: the Node parser reports it */
	v = realloc(cl->nodes, (cl->nnodes + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	cl->nodes = v;
	memset(&v[cl->nnodes], 0, sizeof(*v));
	snprintf(v[cl->nnodes].name, sizeof(v[0].name), "%s", name);
	cl->nnodes++;
	return 0;
}

static int str_field(const struct yt_ctx *c, const yaml_node_t *map, const char *key,
		     const char *path, char **out)
{
	yaml_node_t *n = yt_map_get(c, map, key);

	if (!n)
		return yt_fail(c, map, path, "required field missing");
	if (!yt_scalar(n) || !*yt_scalar(n))
		return yt_fail(c, n, path, "must be a non-empty string");
	*out = strdup(yt_scalar(n));
	return *out ? 0 : -ENOMEM;
}

static bool name_ok(const char *s)
{
	if (!*s || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == ' ')
			return false;
	return true;
}

static void manifest_obj_clear(struct manifest_obj *o)
{
	free(o->api_version);
	free(o->kind);
	free(o->ns);
	free(o->name);
	free(o->json);
	memset(o, 0, sizeof(*o));
}

/* What names an object: kind, metadata.namespace (cluster-scoped kinds: "", ignored if
 * given; namespaced kinds without one: "default", as kubectl does) and metadata.name, and
 * whether an earlier object of *out has the same. With refs (delete) apiVersion is not
 * needed, as `kubectl delete -f` needs only what names the object. Fills o (the caller
 * clears it on failure). */
static int object_ref(struct parse_ctx *p, const yaml_node_t *root, const char *path, bool refs,
		      const struct manifest_obj *out, size_t n, struct manifest_obj *o)
{
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_t *md, *nsn;
	size_t i;
	int err = 0;

#define P(f) yt_path(sub, "%s%s" f, path, *path ? "." : "")
	if (root->type != YAML_MAPPING_NODE)
		return yt_fail(c, root, path,
			       refs ? "a document must be a mapping with kind and metadata.name"
				    : "a document must be a mapping with apiVersion and kind");
	o->line = yt_line(root);
	if (!refs || yt_map_get(c, root, "apiVersion"))
		err = str_field(c, root, "apiVersion", P("apiVersion"), &o->api_version);
	if (!err)
		err = str_field(c, root, "kind", P("kind"), &o->kind);
	if (err)
		return err;
	if (!name_ok(o->kind))
		return yt_fail(c, yt_map_get(c, root, "kind"), P("kind"),
			       "\"%s\" is not a valid kind", o->kind);
	md = yt_map_get(c, root, "metadata");
	if (!md)
		return yt_fail(c, root, P("metadata.name"), "required field missing");
	err = yt_want_map(c, md, P("metadata"));
	if (!err)
		err = str_field(c, md, "name", P("metadata.name"), &o->name);
	if (err)
		return err;
	if (!name_ok(o->name))
		return yt_fail(c, yt_map_get(c, md, "name"), P("metadata.name"),
			       "\"%s\" is not a valid object name", o->name);
	nsn = yt_map_get(c, md, "namespace");
	if (manifest_kind_cluster_scoped(o->kind)) {
		o->ns = strdup("");
	} else if (nsn) {
		err = str_field(c, md, "namespace", P("metadata.namespace"), &o->ns);
		if (!err && !name_ok(o->ns))
			err = yt_fail(c, nsn, P("metadata.namespace"),
				      "\"%s\" is not a valid namespace name", o->ns);
		if (err)
			return err;
	} else {
		o->ns = strdup("default");
	}
	if (!o->ns)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (strcmp(out[i].kind, o->kind) || strcmp(out[i].ns, o->ns) ||
		    strcmp(out[i].name, o->name))
			continue;
		return yt_fail(c, root, P("metadata.name"),
			       "duplicate %s \"%s%s%s\" (first at line %d)", o->kind, o->ns,
			       *o->ns ? "/" : "", o->name, out[i].line);
	}
	return 0;
#undef P
}

static int append_obj(struct manifest_obj **out, size_t *n, const struct manifest_obj *o)
{
	struct manifest_obj *v = realloc(*out, (*n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	*out = v;
	v[(*n)++] = *o;
	return 0;
}

/* Checks one object (a document or a List item) and appends it to the output array; with
 * refs only what names it (object_ref), and no JSON. */
static int one_object(struct parse_ctx *p, const yaml_node_t *root, const char *path, bool refs,
		      struct manifest_obj **out, size_t *n)
{
	const struct yt_ctx *c = &p->yt;
	char src[512];
	struct manifest_obj o = {0};
	json_t *j = NULL, *jmd, *ann;
	int err;

	err = object_ref(p, root, path, refs, *out, *n, &o);
	if (err)
		goto fail;
	if (refs) {
		err = append_obj(out, n, &o);
		if (err)
			goto fail;
		return 0;
	}
	/* the model's own checks for the kinds it knows (others are stored as they are) */
	if (!strcmp(o.kind, "Pod")) {
		err = stand_in_node(p, root);
		if (err)
			goto fail;
	}
	if (!strcmp(o.kind, "Node")) {
		err = stand_in_named_node(p, o.name);
		if (err)
			goto fail;
	}
	err = manifest_parse(p, root, path);
	if (err)
		goto fail;
	err = node_json(c, root, path, &j, 0);
	if (err)
		goto fail;
	jmd = json_object_get(j, "metadata");
	ann = json_object_get(jmd, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(jmd, "annotations", ann);
	}
	snprintf(src, sizeof(src), "%s:%d", c->file, o.line);
	json_object_set_new(ann, MANIFEST_SOURCE_ANNOTATION, json_string(src));
	o.json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!o.json) {
		err = -ENOMEM;
		goto fail;
	}
	err = append_obj(out, n, &o);
	if (err)
		goto fail;
	return 0;
fail:
	manifest_obj_clear(&o);
	return err;
}

/* The file's Cluster document as compact JSON into *out (the first one; unchecked). */
static int cluster_doc_json(const struct yt_ctx *c, const yaml_node_t *root, char **out)
{
	json_t *j = NULL;
	int err;

	if (*out || !is_kind(c, root, SIM_API_VERSION, "Cluster"))
		return 0;
	err = node_json(c, root, "", &j, 0);
	if (err)
		return err;
	*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return *out ? 0 : -ENOMEM;
}

static int load_objects(const char *name, const char *text, size_t len, bool refs,
			struct manifest_obj **out, size_t *n, size_t *skipped,
			struct cluster_model **model, char **cluster_json, struct diag *d)
{
	struct doc_stream st = {0};
	struct parse_ctx p = {0};
	struct cluster_model *m = NULL;
	char sub[YT_PATH_MAX];
	yaml_node_item_t *it;
	yaml_node_t *root, *items;
	size_t j, k;
	int err;

	*out = NULL;
	*n = 0;
	if (skipped)
		*skipped = 0;
	if (model)
		*model = NULL;
	if (cluster_json)
		*cluster_json = NULL;
	if (d)
		d->msg[0] = '\0';
	err = cluster_model_new(name, &m);
	if (err)
		return diag_fail_errno(d, err, "%s: out of memory", name);
	m->has_cluster = true; /* stand-in nodes are added per pod */
	p.m = m;
	p.dir = ".";
	p.yt.file = name;
	p.yt.d = d;
	err = doc_stream_load(name, text, len, &st, d);
	for (j = 0; !err && j < st.n; j++) {
		p.yt.doc = &st.docs[j];
		root = yaml_document_get_root_node(&st.docs[j]);
		if (!root || yt_is_null(root))
			continue;
		if (is_sim_doc(&p.yt, root)) {
			if (skipped)
				(*skipped)++;
			if (cluster_json)
				err = cluster_doc_json(&p.yt, root, cluster_json);
			continue;
		}
		if (!(refs ? root->type == YAML_MAPPING_NODE &&
				     root_field(&p.yt, root, "kind") &&
				     !strcmp(root_field(&p.yt, root, "kind"), "List")
			   : is_kind(&p.yt, root, "v1", "List"))) {
			err = one_object(&p, root, "", refs, out, n);
			continue;
		}
		items = yt_map_get(&p.yt, root, "items");
		if (!items)
			continue;
		err = yt_want_seq(&p.yt, items, "items");
		k = 0;
		for (it = items ? items->data.sequence.items.start : NULL;
		     !err && it < items->data.sequence.items.top; it++, k++)
			err = one_object(&p, yt_node(&p.yt, *it), yt_path(sub, "items[%zu]", k),
					 refs, out, n);
	}
	if (err == -ENOMEM && d && !d->msg[0])
		diag_fail_errno(d, err, "%s: out of memory", name);
	if (st.docs) {
		for (j = 0; j < st.n; j++)
			yaml_document_delete(&st.docs[j]);
		free(st.docs);
	}
	if (model && !err)
		*model = m;
	else
		cluster_model_free(m);
	if (err) {
		manifests_free(*out, *n);
		*out = NULL;
		*n = 0;
		if (cluster_json) {
			free(*cluster_json);
			*cluster_json = NULL;
		}
	}
	return err;
}

int manifests_load(const char *name, const char *text, size_t len, struct manifest_obj **out,
		   size_t *n, size_t *skipped, struct diag *d)
{
	return load_objects(name, text, len, false, out, n, skipped, NULL, NULL, d);
}

int manifests_load_model(const char *name, const char *text, size_t len,
			 struct manifest_obj **out, size_t *n, size_t *skipped,
			 struct cluster_model **model, char **cluster_json, struct diag *d)
{
	return load_objects(name, text, len, false, out, n, skipped, model, cluster_json, d);
}

int manifest_refs_load(const char *name, const char *text, size_t len,
		       struct manifest_obj **out, size_t *n, size_t *skipped, struct diag *d)
{
	return load_objects(name, text, len, true, out, n, skipped, NULL, NULL, d);
}

void manifests_free(struct manifest_obj *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		manifest_obj_clear(&v[i]);
	free(v);
}
