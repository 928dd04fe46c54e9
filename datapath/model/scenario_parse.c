/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scenario files: a multi-document YAML stream split by apiVersion/kind. The Cluster and the
 * Kubernetes documents make the scenario's cluster model, the Test and Replay documents its
 * checks. The Cluster is parsed first (pods refer to its nodes), then the Kubernetes
 * documents in order, then the passes that complete the workloads (implicit namespaces,
 * IPAM, identities), then the Test and Replay documents (which refer to nodes and pods).
 */
#include "parse.h"

#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "policy.h"
#include "policy_cilium.h"

enum doc_kind {
	DOC_EMPTY = 0,
	DOC_CLUSTER,
	DOC_TEST,
	DOC_REPLAY,
	DOC_NAMESPACE,
	DOC_POD,
	DOC_NETPOL,
	DOC_CNP,
	DOC_CCNP,
	DOC_SERVICE,
	DOC_SLICE,
	DOC_EGRESS,
	DOC_NODE,
	DOC_LIST,
	DOC_IGNORED,
};

struct doc_item {
	yaml_document_t *doc;
	yaml_node_t *root;
	enum doc_kind kind;
};

struct doc_set {
	yaml_document_t *docs;
	size_t ndocs;
	struct doc_item *items;
	size_t nitems;
};

void cluster_defaults(struct m_cluster *cl)
{
	cl->routing = ROUTING_TUNNEL;
	cl->encryption = ENCRYPTION_NONE;
	cl->pod_cidr = htonl(0x0af40000u); /* 10.244.0.0/16 */
	cl->pod_cidr_len = 16;
	cl->service_cidr = htonl(0x0a600000u); /* 10.96.0.0/12 */
	cl->service_cidr_len = 12;
	cl->underlay_cidr = htonl(0xc0000200u); /* 192.0.2.0/24 */
	cl->underlay_cidr_len = 24;
	lb_config_defaults(cl);
}

/* Sorts a document into a kind; errors for missing apiVersion/kind and unknown sim kinds. */
static int classify(const struct yt_ctx *c, const yaml_node_t *root, const char *path,
		    enum doc_kind *kind)
{
	static const struct {
		const char *api, *kind;
		enum doc_kind dk;
	} known[] = {
		{ SIM_API_VERSION, "Cluster", DOC_CLUSTER },
		{ SIM_API_VERSION, "Test", DOC_TEST },
		{ SIM_API_VERSION, "Replay", DOC_REPLAY },
		{ "v1", "Namespace", DOC_NAMESPACE },
		{ "v1", "Pod", DOC_POD },
		{ "v1", "List", DOC_LIST },
		{ "v1", "Service", DOC_SERVICE },
		{ "discovery.k8s.io/v1", "EndpointSlice", DOC_SLICE },
		{ "networking.k8s.io/v1", "NetworkPolicy", DOC_NETPOL },
		{ "cilium.io/v2", "CiliumNetworkPolicy", DOC_CNP },
		{ "cilium.io/v2", "CiliumClusterwideNetworkPolicy", DOC_CCNP },
		{ "cilium.io/v2", "CiliumEgressGatewayPolicy", DOC_EGRESS },
		{ "v1", "Node", DOC_NODE },
	};
	char sub[YT_PATH_MAX];
	yaml_node_t *an, *kn;
	const char *api, *k;
	size_t i;

	if (!root || yt_is_null(root)) {
		*kind = DOC_EMPTY;
		return 0;
	}
	if (root->type != YAML_MAPPING_NODE)
		return yt_fail(c, root, path,
			       "a document must be a mapping with apiVersion and kind");
	an = yt_map_get(c, root, "apiVersion");
	kn = yt_map_get(c, root, "kind");
	if (!an || !yt_scalar(an))
		return yt_fail(c, an ? an : root, yt_path(sub, "%s%sapiVersion", path,
							  *path ? "." : ""),
			       "required field missing (every document needs apiVersion and kind)");
	if (!kn || !yt_scalar(kn))
		return yt_fail(c, kn ? kn : root, yt_path(sub, "%s%skind", path, *path ? "." : ""),
			       "required field missing (every document needs apiVersion and kind)");
	api = yt_scalar(an);
	k = yt_scalar(kn);
	if (!strncmp(api, "sim.ciliate.dev/", 16) && strcmp(api, SIM_API_VERSION))
		return yt_fail(c, an, yt_path(sub, "%s%sapiVersion", path, *path ? "." : ""),
			       "unsupported version \"%s\" (want %s)", api, SIM_API_VERSION);
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(k, known[i].kind))
			continue;
		if (strcmp(api, known[i].api))
			return yt_fail(c, an, yt_path(sub, "%s%sapiVersion", path, *path ? "." : ""),
				       "kind %s needs apiVersion %s, not \"%s\"", k, known[i].api,
				       api);
		*kind = known[i].dk;
		return 0;
	}
	if (!strcmp(api, SIM_API_VERSION))
		return yt_fail(c, kn, yt_path(sub, "%s%skind", path, *path ? "." : ""),
			       "unknown %s kind \"%s\" (Cluster, Test or Replay)", SIM_API_VERSION,
			       k);
	*kind = DOC_IGNORED; /* ConfigMap, ... */
	return 0;
}

/* The egress gateway kinds (egress_parse.c): CiliumEgressGatewayPolicy and v1 Node. */
static int egress_kinds_parse(struct parse_ctx *p, const yaml_node_t *root, enum doc_kind kind)
{
	return kind == DOC_EGRESS ? egress_policy_parse(p, root) : node_doc_parse(p, root);
}

/* Turns "FILE:LINE: rest" into "FILE:LINE: PREFIX.rest" so nested documents name their
 * place in the enclosing one. */
static void diag_nest(struct diag *d, const char *file, const char *prefix)
{
	char tmp[sizeof(d->msg)];
	size_t flen = strlen(file);
	char *p;

	if (!d || !*prefix || strncmp(d->msg, file, flen) || d->msg[flen] != ':')
		return;
	p = strchr(d->msg + flen + 1, ':');
	if (!p || p[1] != ' ')
		return;
	p += 2;
	snprintf(tmp, sizeof(tmp), "%.*s%s.%s", (int)(p - d->msg), d->msg, prefix, p);
	memcpy(d->msg, tmp, sizeof(tmp));
}

int manifest_parse(struct parse_ctx *p, const yaml_node_t *root, const char *path)
{
	enum doc_kind kind;
	int err;

	err = classify(&p->yt, root, path, &kind);
	if (err)
		return err;
	switch (kind) {
	case DOC_NAMESPACE:
		err = namespace_parse(p, root);
		break;
	case DOC_POD:
		err = pod_parse(p, root);
		break;
	case DOC_NETPOL:
		err = netpol_parse(p, root);
		break;
	case DOC_CNP:
	case DOC_CCNP:
		err = cnp_parse(p, root, kind == DOC_CCNP);
		break;
	case DOC_SERVICE:
		err = service_parse(p, root);
		break;
	case DOC_SLICE:
		err = endpoint_slice_parse(p, root);
		break;
	case DOC_EGRESS:
	case DOC_NODE:
		err = egress_kinds_parse(p, root, kind);
		break;
	case DOC_CLUSTER:
	case DOC_TEST:
	case DOC_REPLAY:
	case DOC_LIST:
		return yt_fail(&p->yt, root, path, "%s documents are not allowed here",
			       yt_scalar(yt_map_get(&p->yt, root, "kind")));
	default:
		return 0;
	}
	if (err)
		diag_nest(p->yt.d, p->yt.file, path);
	return err;
}

static int add_item(struct doc_set *ds, yaml_document_t *doc, yaml_node_t *root,
		    enum doc_kind kind)
{
	struct doc_item *v = realloc(ds->items, (ds->nitems + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	ds->items = v;
	v[ds->nitems].doc = doc;
	v[ds->nitems].root = root;
	v[ds->nitems].kind = kind;
	ds->nitems++;
	return 0;
}

static int load_docs(yaml_parser_t *parser, const char *name, struct doc_set *ds,
		     struct diag *d)
{
	yaml_document_t doc, *v;

	for (;;) {
		if (!yaml_parser_load(parser, &doc))
			return diag_fail(d, "%s:%zu: YAML syntax error: %s%s%s", name,
					 parser->problem_mark.line + 1,
					 parser->problem ? parser->problem : "unknown",
					 parser->context ? " " : "",
					 parser->context ? parser->context : "");
		if (!yaml_document_get_root_node(&doc)) {
			yaml_document_delete(&doc);
			return 0;
		}
		v = realloc(ds->docs, (ds->ndocs + 1) * sizeof(*v));
		if (!v) {
			yaml_document_delete(&doc);
			return diag_fail_errno(d, -ENOMEM, "%s: out of memory", name);
		}
		ds->docs = v;
		ds->docs[ds->ndocs++] = doc;
	}
}

/* Classifies an item of the List document being read (p->yt.doc) and adds it to ds. */
static int classify_item(struct parse_ctx *p, yaml_node_t *item, const char *path, void *ds)
{
	enum doc_kind kind;
	int err;

	err = classify(&p->yt, item, path, &kind);
	if (!err &&
	    (kind == DOC_LIST || kind == DOC_CLUSTER || kind == DOC_TEST || kind == DOC_REPLAY))
		err = yt_fail(&p->yt, item, path, "%s documents are not allowed in a List",
			      yt_scalar(yt_map_get(&p->yt, item, "kind")));
	if (!err)
		err = add_item(ds, p->yt.doc, item, kind);
	return err;
}

/* Classifies every document (expanding v1 List items) in file order. */
static int classify_docs(struct parse_ctx *p, struct doc_set *ds)
{
	yaml_node_t *root;
	enum doc_kind kind;
	size_t i;
	int err;

	for (i = 0; i < ds->ndocs; i++) {
		p->yt.doc = &ds->docs[i];
		root = yaml_document_get_root_node(&ds->docs[i]);
		err = classify(&p->yt, root, "", &kind);
		if (err)
			return err;
		if (kind == DOC_LIST)
			err = list_items_each(p, root, classify_item, ds);
		else
			err = add_item(ds, &ds->docs[i], root, kind);
		if (err)
			return err;
	}
	return 0;
}

/* Runs the parser of every item whose kind is in kinds (0-terminated), in file order. */
static int parse_pass(struct parse_ctx *p, struct doc_set *ds, const enum doc_kind *kinds)
{
	const enum doc_kind *k;
	int cluster_line = 0, err = 0;
	size_t i;

	for (i = 0; i < ds->nitems && !err; i++) {
		struct doc_item *it = &ds->items[i];

		for (k = kinds; *k && *k != it->kind; k++)
			;
		if (!*k)
			continue;
		p->yt.doc = it->doc;
		switch (it->kind) {
		case DOC_CLUSTER:
			if (p->m->has_cluster)
				return yt_fail(&p->yt, it->root, "kind",
					       "only one Cluster document is allowed "
					       "(first at line %d)", cluster_line);
			cluster_line = yt_line(it->root);
			p->m->has_cluster = true;
			err = cluster_parse(p, it->root);
			break;
		case DOC_NAMESPACE:
			err = namespace_parse(p, it->root);
			break;
		case DOC_POD:
			err = pod_parse(p, it->root);
			break;
		case DOC_NETPOL:
			err = netpol_parse(p, it->root);
			break;
		case DOC_CNP:
		case DOC_CCNP:
			err = cnp_parse(p, it->root, it->kind == DOC_CCNP);
			break;
		case DOC_SERVICE:
			err = service_parse(p, it->root);
			break;
		case DOC_SLICE:
			err = endpoint_slice_parse(p, it->root);
			break;
		case DOC_EGRESS:
		case DOC_NODE:
			err = egress_kinds_parse(p, it->root, it->kind);
			break;
		case DOC_TEST:
			err = test_parse(p, it->root);
			break;
		case DOC_REPLAY:
			err = replay_parse(p, it->root);
			break;
		default:
			break;
		}
	}
	return err;
}

static int build(struct parse_ctx *p, struct doc_set *ds, struct diag *d)
{
	static const enum doc_kind cluster[] = { DOC_CLUSTER, 0 };
	static const enum doc_kind workloads[] = { DOC_NAMESPACE, DOC_POD, DOC_NETPOL, DOC_CNP,
						       DOC_CCNP, DOC_SERVICE, DOC_SLICE,
						       DOC_EGRESS, DOC_NODE, 0 };
	static const enum doc_kind checks[] = { DOC_TEST, DOC_REPLAY, 0 };
	int err;

	err = classify_docs(p, ds);
	if (!err)
		err = parse_pass(p, ds, cluster);
	if (!err)
		err = parse_pass(p, ds, workloads);
	if (!err)
		err = node_docs_apply(p->m); /* parsed Node documents name Cluster nodes */
	if (!err)
		err = namespaces_complete(p->m, d);
	if (!err)
		err = ipam_assign(p->m, d);
	if (!err)
		err = identity_assign(p->m, d);
	if (!err)
		err = services_complete(p->m, d);
	if (!err)
		err = parse_pass(p, ds, checks);
	return err;
}

static int load(const char *name, yaml_parser_t *parser, struct scenario **out, struct diag *d)
{
	struct doc_set ds = { 0 };
	struct parse_ctx p = { 0 };
	struct scenario *s;
	char *dcopy = NULL;
	size_t i;
	int err;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return diag_fail_errno(d, -ENOMEM, "%s: out of memory", name);
	s->path = strdup(name);
	s->model.name = strdup(name);
	dcopy = strdup(name);
	if (!s->path || !s->model.name || !dcopy) {
		err = diag_fail_errno(d, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	cluster_defaults(&s->model.cluster);
	p.m = &s->model;
	p.s = s;
	p.dir = dirname(dcopy);
	p.yt.file = s->model.name; /* the pods' `file` point into the model's name */
	p.yt.d = d;
	err = load_docs(parser, name, &ds, d);
	if (!err)
		err = build(&p, &ds, d);
	if (err == -ENOMEM && d && !d->msg[0])
		diag_fail_errno(d, err, "%s: out of memory", name);
out:
	for (i = 0; i < ds.ndocs; i++)
		yaml_document_delete(&ds.docs[i]);
	free(ds.docs);
	free(ds.items);
	free(dcopy);
	if (err) {
		scenario_free(s);
		return err;
	}
	*out = s;
	return 0;
}

int scenario_load(const char *path, struct scenario **out, struct diag *d)
{
	yaml_parser_t parser;
	FILE *f;
	int err;

	*out = NULL;
	if (d)
		d->msg[0] = '\0';
	f = fopen(path, "rb");
	if (!f)
		return diag_fail_errno(d, -errno, "%s: cannot open: %s", path, strerror(errno));
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return diag_fail_errno(d, -ENOMEM, "%s: out of memory", path);
	}
	yaml_parser_set_input_file(&parser, f);
	err = load(path, &parser, out, d);
	yaml_parser_delete(&parser);
	fclose(f);
	return err;
}

int scenario_load_buffer(const char *name, const char *buf, size_t len, struct scenario **out,
			 struct diag *d)
{
	yaml_parser_t parser;
	int err;

	*out = NULL;
	if (d)
		d->msg[0] = '\0';
	if (!yaml_parser_initialize(&parser))
		return diag_fail_errno(d, -ENOMEM, "%s: out of memory", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	err = load(name, &parser, out, d);
	yaml_parser_delete(&parser);
	return err;
}

/* ---- freeing and lookups ---------------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Egress gateway policies and Node documents: built from parts, they are the parts'. */
static void cluster_model_free_egress(struct cluster_model *m)
{
	size_t i;

	for (i = 0; !m->parts && i < m->negress_policies; i++)
		egress_policy_clear(&m->egress_policies[i]);
	free(m->egress_policies);
	m->egress_policies = NULL;
	m->negress_policies = 0;
	for (i = 0; !m->parts && i < m->nnode_docs; i++)
		labelset_free(&m->node_docs[i].labels);
	free(m->node_docs);
	m->node_docs = NULL;
	m->nnode_docs = 0;
}

void cluster_model_free_workloads(struct cluster_model *m)
{
	size_t i;

	for (i = 0; i < m->nnamespaces; i++)
		labelset_free(&m->namespaces[i].labels);
	free(m->namespaces);
	m->namespaces = NULL;
	m->nnamespaces = 0;
	for (i = 0; !m->parts && i < m->npods; i++) {
		labelset_free(&m->pods[i].labels);
		free(m->pods[i].ports);
	}
	free(m->pods);
	m->pods = NULL;
	m->npods = 0;
	for (i = 0; !m->parts && i < m->npolicies; i++)
		policy_free(m->policies[i]);
	free(m->policies);
	m->policies = NULL;
	m->npolicies = 0;
	cluster_model_free_egress(m);
	/* services and slices are always the model's own (parts.c copies them) */
	for (i = 0; i < m->nservices; i++)
		service_clear(&m->services[i]);
	free(m->services);
	m->services = NULL;
	m->nservices = 0;
	for (i = 0; i < m->nslices; i++)
		slice_clear(&m->slices[i]);
	free(m->slices);
	m->slices = NULL;
	m->nslices = 0;
	/* built from parts: the pods' labels and ports and the policies are theirs */
	for (i = 0; i < m->nparts; i++)
		model_part_unref(m->parts[i]);
	free(m->parts);
	m->parts = NULL;
	m->nparts = 0;
}

static void cluster_free(struct m_cluster *cl)
{
	size_t i;

	for (i = 0; i < cl->nnodes; i++)
		labelset_free(&cl->nodes[i].labels);
	free(cl->nodes);
	for (i = 0; i < cl->next_hosts; i++)
		free(cl->ext_hosts[i].ports);
	free(cl->ext_hosts);
	for (i = 0; i < cl->nconfig; i++) {
		free(cl->config[i].key);
		free(cl->config[i].value);
	}
	free(cl->config);
}

static void step_free(struct m_step *st)
{
	size_t i;

	free(st->apply);
	free(st->manifests_yaml);
	free(st->expect_rejected);
	free(st->faults);
	free(st->streams);
	free(st->deletes);
	for (i = 0; i < st->nprobes; i++) {
		strv_free(st->probes[i].backend_in, st->probes[i].nbackend_in);
		free(st->probes[i].spread);
	}
	free(st->probes);
	for (i = 0; i < st->nmatrices; i++) {
		strv_free(st->matrices[i].rows, st->matrices[i].nrows);
		strv_free(st->matrices[i].cols, st->matrices[i].ncols);
		free(st->matrices[i].cells);
	}
	free(st->matrices);
}

void cluster_model_clear(struct cluster_model *m)
{
	size_t i;

	cluster_free(&m->cluster);
	cluster_model_free_workloads(m);
	for (i = 0; i < m->nidentities; i++)
		labelset_free(&m->identities[i].labels);
	free(m->identities);
	free(m->name);
	memset(m, 0, sizeof(*m));
}

void cluster_model_free(struct cluster_model *m)
{
	if (!m)
		return;
	cluster_model_clear(m);
	free(m);
}

int cluster_model_new(const char *name, struct cluster_model **out)
{
	struct cluster_model *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->name = strdup(name);
	if (!m->name) {
		free(m);
		return -ENOMEM;
	}
	cluster_defaults(&m->cluster);
	*out = m;
	return 0;
}

void scenario_free(struct scenario *s)
{
	size_t i, j;

	if (!s)
		return;
	cluster_model_clear(&s->model);
	for (i = 0; i < s->nreplays; i++) {
		free(s->replays[i].pcap);
		strv_free(s->replays[i].expect_verdicts, s->replays[i].nexpect_verdicts);
		free(s->replays[i].expect_output);
	}
	free(s->replays);
	for (i = 0; i < s->ntests; i++) {
		for (j = 0; j < s->tests[i].nsteps; j++)
			step_free(&s->tests[i].steps[j]);
		free(s->tests[i].steps);
	}
	free(s->tests);
	free(s->path);
	free(s);
}

const struct m_pod *cluster_find_pod(const struct cluster_model *m, const char *ns_slash_name)
{
	const char *slash = strchr(ns_slash_name, '/');
	size_t nslen, i;

	if (!slash)
		return NULL;
	nslen = (size_t)(slash - ns_slash_name);
	for (i = 0; i < m->npods; i++)
		if (strlen(m->pods[i].ns) == nslen &&
		    !strncmp(m->pods[i].ns, ns_slash_name, nslen) &&
		    !strcmp(m->pods[i].name, slash + 1))
			return &m->pods[i];
	return NULL;
}

const struct m_node *cluster_find_node(const struct cluster_model *m, const char *name)
{
	size_t i;

	if (!m)
		return NULL;
	for (i = 0; i < m->cluster.nnodes; i++)
		if (!strcmp(m->cluster.nodes[i].name, name))
			return &m->cluster.nodes[i];
	return NULL;
}

const char *cluster_config(const struct cluster_model *m, const char *key)
{
	size_t i;

	for (i = 0; i < m->cluster.nconfig; i++)
		if (!strcmp(m->cluster.config[i].key, key))
			return m->cluster.config[i].value;
	return NULL;
}
