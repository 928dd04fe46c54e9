/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster models put together from parts: each document of cluster_model_from_docs parsed
 * once on its own (against the Cluster) into what it adds, so that the agent, which rebuilds
 * its model on every store change, parses only the objects that changed. Putting parts
 * together copies pods and namespaces and shares the pods' labels and ports and the policies
 * with the parts (the model holds a reference to each part). What depends on more than one
 * document is done here again for the whole model: duplicate objects and addresses (hash
 * tables, so that the cost stays linear), then the namespace, IPAM and identity passes.
 * Anything that fails there is left to cluster_model_from_docs, whose messages name the
 * culprit document.
 */
#include "parse.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "policy.h"

struct model_part {
	int refs;
	char *name;
	struct m_namespace *namespaces;
	size_t nnamespaces;
	struct m_pod *pods;
	size_t npods;
	struct m_policy **policies;
	size_t npolicies;
	struct m_service *services;
	size_t nservices;
	struct m_endpoint_slice *slices;
	size_t nslices;
	struct m_egress_policy *egress_policies;
	size_t negress_policies;
	struct m_node_doc *node_docs;
	size_t nnode_docs;
};

static void part_free(struct model_part *p)
{
	struct cluster_model tmp = {0};

	/* the workloads as a model owning them, to free them the one way */
	tmp.namespaces = p->namespaces;
	tmp.nnamespaces = p->nnamespaces;
	tmp.pods = p->pods;
	tmp.npods = p->npods;
	tmp.policies = p->policies;
	tmp.npolicies = p->npolicies;
	tmp.services = p->services;
	tmp.nservices = p->nservices;
	tmp.slices = p->slices;
	tmp.nslices = p->nslices;
	tmp.egress_policies = p->egress_policies;
	tmp.negress_policies = p->negress_policies;
	tmp.node_docs = p->node_docs;
	tmp.nnode_docs = p->nnode_docs;
	cluster_model_free_workloads(&tmp);
	free(p->name);
	free(p);
}

struct model_part *model_part_ref(struct model_part *p)
{
	p->refs++;
	return p;
}

void model_part_unref(struct model_part *p)
{
	if (p && --p->refs == 0)
		part_free(p);
}

size_t model_part_npods(const struct model_part *p)
{
	return p->npods;
}

size_t model_part_nservices(const struct model_part *p)
{
	return p->nservices;
}

int model_part_parse(const struct cluster_model *base, const char *name, const char *text,
		     size_t len, struct model_part **out, struct diag *d)
{
	struct cluster_model tmp = {0};
	struct doc_stream st = {0};
	struct parse_ctx p = {0};
	struct model_part *part;
	int cluster_line = base->cluster.line, err;

	*out = NULL;
	if (d)
		d->msg[0] = '\0';
	if (!base->has_cluster)
		return diag_fail(d, "%s: parts need a Cluster to be parsed against", name);
	part = calloc(1, sizeof(*part));
	if (part)
		part->name = strdup(name);
	if (!part || !part->name) {
		free(part);
		return diag_fail_errno(d, -ENOMEM, "%s: out of memory", name);
	}
	part->refs = 1;
	/* base's Cluster, borrowed: pods are checked against its nodes */
	tmp.has_cluster = true;
	tmp.cluster = base->cluster;
	p.m = &tmp;
	p.dir = ".";
	p.yt.d = d;
	p.yt.file = part->name;
	err = doc_stream_load(part->name, text, len, &st, d);
	if (!err)
		err = doc_stream_cluster(&p, &st, &cluster_line); /* only an error here */
	if (!err)
		err = doc_stream_manifests(&p, &st);
	doc_stream_clear(&st);
	memset(&tmp.cluster, 0, sizeof(tmp.cluster));
	if (err) {
		if (err == -ENOMEM && d && !d->msg[0])
			diag_fail_errno(d, err, "%s: out of memory", name);
		cluster_model_free_workloads(&tmp);
		part_free(part);
		return err;
	}
	part->namespaces = tmp.namespaces;
	part->nnamespaces = tmp.nnamespaces;
	part->pods = tmp.pods;
	part->npods = tmp.npods;
	part->policies = tmp.policies;
	part->npolicies = tmp.npolicies;
	part->services = tmp.services;
	part->nservices = tmp.nservices;
	part->slices = tmp.slices;
	part->nslices = tmp.nslices;
	part->egress_policies = tmp.egress_policies;
	part->negress_policies = tmp.negress_policies;
	part->node_docs = tmp.node_docs;
	part->nnode_docs = tmp.nnode_docs;
	*out = part;
	return 0;
}

static int cluster_copy(struct m_cluster *dst, const struct m_cluster *src)
{
	size_t i;

	*dst = *src;
	dst->nodes = NULL;
	dst->ext_hosts = NULL;
	dst->config = NULL;
	dst->nnodes = dst->next_hosts = dst->nconfig = 0;
	dst->nodes = calloc(src->nnodes + 1, sizeof(*dst->nodes));
	dst->ext_hosts = calloc(src->next_hosts + 1, sizeof(*dst->ext_hosts));
	dst->config = calloc(src->nconfig + 1, sizeof(*dst->config));
	if (!dst->nodes || !dst->ext_hosts || !dst->config)
		return -ENOMEM;
	for (i = 0; i < src->nnodes; i++) {
		dst->nodes[i] = src->nodes[i];
		if (labelset_copy(&dst->nodes[i].labels, &src->nodes[i].labels))
			return -ENOMEM;
		dst->nnodes++;
	}
	for (i = 0; i < src->next_hosts; i++) {
		const struct m_external_host *h = &src->ext_hosts[i];

		dst->ext_hosts[i] = *h;
		dst->ext_hosts[i].ports = calloc(h->nports + 1, sizeof(*h->ports));
		if (!dst->ext_hosts[i].ports)
			return -ENOMEM;
		memcpy(dst->ext_hosts[i].ports, h->ports, h->nports * sizeof(*h->ports));
		dst->next_hosts++;
	}
	for (i = 0; i < src->nconfig; i++) {
		dst->config[i].key = strdup(src->config[i].key);
		dst->config[i].value = strdup(src->config[i].value);
		dst->nconfig++;
		if (!dst->config[i].key || !dst->config[i].value)
			return -ENOMEM;
	}
	return 0;
}

int cluster_model_copy_cluster(const struct cluster_model *src, struct cluster_model **out)
{
	struct cluster_model *m = calloc(1, sizeof(*m));
	int err;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->name = strdup(src->name ? src->name : "");
	m->has_cluster = src->has_cluster;
	err = m->name ? cluster_copy(&m->cluster, &src->cluster) : -ENOMEM;
	if (err) {
		cluster_model_free(m);
		return err;
	}
	*out = m;
	return 0;
}

/* ---- an open-addressing table of indexes (+1) into one of the model's arrays ---------- */

struct idx_table {
	uint32_t *slot; /* 0: empty, else index + 1 */
	size_t mask;
};

static int table_init(struct idx_table *t, size_t n)
{
	size_t cap = 64;

	while (cap < 2 * n)
		cap *= 2;
	t->slot = calloc(cap, sizeof(*t->slot));
	t->mask = cap - 1;
	return t->slot ? 0 : -ENOMEM;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	h ^= 0x1f; /* separator, so that ("ab","c") and ("a","bc") differ */
	return h * 1099511628211ull;
}

#define HASH_INIT 14695981039346656037ull

/* All 32 bits matter (addresses of one range differ in their last bytes only). */
static uint64_t hash_u32(uint32_t v)
{
	uint64_t h = (uint64_t)v * 0x9e3779b97f4a7c15ull;

	return h ^ (h >> 32);
}

/* The slot holding an entry equal to the one at index want (by eq), else the empty slot
 * where it goes. */
static uint32_t *table_slot(const struct idx_table *t, uint64_t h,
			    bool (*eq)(const struct cluster_model *m, uint32_t a, uint32_t b),
			    const struct cluster_model *m, uint32_t want)
{
	size_t i = (size_t)h & t->mask;

	while (t->slot[i] && !eq(m, t->slot[i] - 1, want))
		i = (i + 1) & t->mask;
	return &t->slot[i];
}

static bool ns_eq(const struct cluster_model *m, uint32_t a, uint32_t b)
{
	return !strcmp(m->namespaces[a].name, m->namespaces[b].name);
}

static bool pod_eq(const struct cluster_model *m, uint32_t a, uint32_t b)
{
	return !strcmp(m->pods[a].name, m->pods[b].name) && !strcmp(m->pods[a].ns, m->pods[b].ns);
}

static bool pod_ip_eq(const struct cluster_model *m, uint32_t a, uint32_t b)
{
	return m->pods[a].ip == m->pods[b].ip;
}

static bool pol_eq(const struct cluster_model *m, uint32_t a, uint32_t b)
{
	const struct m_policy *x = m->policies[a], *y = m->policies[b];

	return x->kind == y->kind && !strcmp(x->name, y->name) && !strcmp(x->ns, y->ns);
}

static bool svc_eq(const struct cluster_model *m, uint32_t a, uint32_t b)
{
	return !strcmp(m->services[a].name, m->services[b].name) &&
	       !strcmp(m->services[a].ns, m->services[b].ns);
}

static bool slice_eq(const struct cluster_model *m, uint32_t a, uint32_t b)
{
	return !strcmp(m->slices[a].name, m->slices[b].name) &&
	       !strcmp(m->slices[a].ns, m->slices[b].ns);
}

/* Copies the parts' services and slices into m (the model owns its own: allocations and
 * derived slices are written into them), failing with -EAGAIN on a duplicate name. A
 * clusterIP or nodePort given twice is services_complete's to find. */
static int append_services(struct cluster_model *m, struct model_part *const *parts, size_t n)
{
	struct idx_table tsvc = {0}, tsl = {0};
	size_t i, j, nsvc = 0, nsl = 0;
	uint32_t *slot, k;
	int err = 0;

	for (i = 0; i < n; i++) {
		nsvc += parts[i]->nservices;
		nsl += parts[i]->nslices;
	}
	if (m->nservices || m->nslices || nsvc >= UINT32_MAX || nsl >= UINT32_MAX)
		return -EAGAIN;
	m->services = calloc(nsvc ? nsvc : 1, sizeof(*m->services));
	m->slices = calloc(nsl ? nsl : 1, sizeof(*m->slices));
	if (!m->services || !m->slices || table_init(&tsvc, nsvc) || table_init(&tsl, nsl)) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; !err && i < n; i++) {
		const struct model_part *p = parts[i];

		for (j = 0; !err && j < p->nservices; j++) {
			const struct m_service *svc = &p->services[j];

			err = service_copy(&m->services[m->nservices], svc);
			if (err)
				break;
			k = (uint32_t)m->nservices++;
			slot = table_slot(&tsvc, hash_str(hash_str(HASH_INIT, svc->ns), svc->name),
					  svc_eq, m, k);
			if (*slot)
				err = -EAGAIN;
			*slot = k + 1;
		}
		for (j = 0; !err && j < p->nslices; j++) {
			const struct m_endpoint_slice *sl = &p->slices[j];

			err = slice_copy(&m->slices[m->nslices], sl);
			if (err)
				break;
			k = (uint32_t)m->nslices++;
			slot = table_slot(&tsl, hash_str(hash_str(HASH_INIT, sl->ns), sl->name),
					  slice_eq, m, k);
			if (*slot)
				err = -EAGAIN;
			*slot = k + 1;
		}
	}
out:
	free(tsvc.slot);
	free(tsl.slot);
	return err;
}

/* Appends the parts' workloads to m, failing with -EAGAIN on any duplicate
 * cluster_model_from_docs would report (namespace, pod, policy, pinned pod address). */
static int append_parts(struct cluster_model *m, struct model_part *const *parts, size_t n)
{
	struct idx_table tns = {0}, tpod = {0}, tip = {0}, tpol = {0};
	size_t i, j, nns = m->nnamespaces, npods = m->npods, npol = m->npolicies;
	uint32_t *slot, k;
	void *v;
	int err = 0;

	for (i = 0; i < n; i++) {
		nns += parts[i]->nnamespaces;
		npods += parts[i]->npods;
		npol += parts[i]->npolicies;
	}
	if (m->nnamespaces || m->npods || m->npolicies || npods >= UINT32_MAX)
		return -EAGAIN; /* only a Cluster is expected in m */
	m->parts = calloc(n ? n : 1, sizeof(*m->parts));
	if (!m->parts)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		m->parts[m->nparts++] = model_part_ref(parts[i]);
	v = realloc(m->namespaces, (nns ? nns : 1) * sizeof(*m->namespaces));
	if (!v)
		return -ENOMEM;
	m->namespaces = v;
	v = realloc(m->pods, (npods ? npods : 1) * sizeof(*m->pods));
	if (!v)
		return -ENOMEM;
	m->pods = v;
	v = realloc(m->policies, (npol ? npol : 1) * sizeof(*m->policies));
	if (!v)
		return -ENOMEM;
	m->policies = v;
	if (table_init(&tns, nns) || table_init(&tpod, npods) || table_init(&tip, npods) ||
	    table_init(&tpol, npol)) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; !err && i < n; i++) {
		const struct model_part *p = parts[i];

		for (j = 0; !err && j < p->nnamespaces; j++) {
			struct m_namespace *ns = &m->namespaces[m->nnamespaces];

			*ns = p->namespaces[j];
			ns->labels.v = NULL;
			ns->labels.n = 0;
			if (labelset_copy(&ns->labels, &p->namespaces[j].labels)) {
				err = -ENOMEM;
				break;
			}
			k = (uint32_t)m->nnamespaces++;
			slot = table_slot(&tns, hash_str(HASH_INIT, ns->name), ns_eq, m, k);
			if (*slot)
				err = -EAGAIN;
			*slot = k + 1;
		}
		for (j = 0; !err && j < p->npods; j++) {
			const struct m_pod *pod = &p->pods[j];

			m->pods[m->npods] = *pod; /* labels and ports stay the part's */
			k = (uint32_t)m->npods++;
			slot = table_slot(&tpod, hash_str(hash_str(HASH_INIT, pod->ns), pod->name),
					  pod_eq, m, k);
			if (*slot)
				err = -EAGAIN;
			*slot = k + 1;
			if (err || pod->host_network || !pod->ip_pinned)
				continue;
			slot = table_slot(&tip, hash_u32(pod->ip), pod_ip_eq, m, k);
			if (*slot)
				err = -EAGAIN;
			*slot = k + 1;
		}
		for (j = 0; !err && j < p->npolicies; j++) {
			const struct m_policy *pol = p->policies[j];
			uint64_t h = hash_str(hash_str(HASH_INIT + pol->kind, pol->ns), pol->name);

			m->policies[m->npolicies] = p->policies[j];
			k = (uint32_t)m->npolicies++;
			slot = table_slot(&tpol, h, pol_eq, m, k);
			if (*slot)
				err = -EAGAIN;
			*slot = k + 1;
		}
	}
out:
	free(tns.slot);
	free(tpod.slot);
	free(tip.slot);
	free(tpol.slot);
	return err;
}

static bool egress_eq(const struct cluster_model *m, uint32_t a, uint32_t b)
{
	return !strcmp(m->egress_policies[a].name, m->egress_policies[b].name);
}

/* Appends the parts' egress gateway policies and Node documents to m (shared with the
 * parts, as the policies are), failing with -EAGAIN on a duplicate name, then gives the
 * nodes the Node documents' labels. */
static int append_egress(struct cluster_model *m, struct model_part *const *parts, size_t n)
{
	struct idx_table t = {0};
	size_t i, j, k, neg = 0, nnd = 0;
	uint32_t *slot;
	int err = 0;

	for (i = 0; i < n; i++) {
		neg += parts[i]->negress_policies;
		nnd += parts[i]->nnode_docs;
	}
	if (m->negress_policies || m->nnode_docs || neg >= UINT32_MAX)
		return -EAGAIN;
	m->egress_policies = calloc(neg ? neg : 1, sizeof(*m->egress_policies));
	m->node_docs = calloc(nnd ? nnd : 1, sizeof(*m->node_docs));
	if (!m->egress_policies || !m->node_docs || table_init(&t, neg)) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; !err && i < n; i++) {
		for (j = 0; !err && j < parts[i]->negress_policies; j++) {
			const struct m_egress_policy *pol = &parts[i]->egress_policies[j];

			m->egress_policies[m->negress_policies] = *pol;
			k = m->negress_policies++;
			slot = table_slot(&t, hash_str(HASH_INIT, pol->name), egress_eq, m,
					  (uint32_t)k);
			if (*slot)
				err = -EAGAIN;
			*slot = (uint32_t)k + 1;
		}
		for (j = 0; !err && j < parts[i]->nnode_docs; j++) {
			const struct m_node_doc *nd = &parts[i]->node_docs[j];

			for (k = 0; k < m->nnode_docs; k++) /* a handful: one per node at most */
				if (!strcmp(m->node_docs[k].name, nd->name))
					err = -EAGAIN;
			m->node_docs[m->nnode_docs++] = *nd;
		}
	}
	if (!err)
		err = node_docs_apply(m);
	if (err == -ENOENT)
		err = -EAGAIN;
out:
	free(t.slot);
	return err;
}

int cluster_model_from_parts(struct cluster_model *m, struct model_part *const *parts,
			     size_t n, struct diag *d)
{
	struct diag quiet;
	int err;

	err = append_parts(m, parts, n);
	if (!err)
		err = append_services(m, parts, n);
	if (!err)
		err = append_egress(m, parts, n);
	if (err == -ENOMEM)
		return diag_fail_errno(d, err, "%s: out of memory", m->name ? m->name : "model");
	if (err)
		return -EAGAIN;
	/* cluster_model_from_docs reports failures of these passes with the document at fault */
	if (namespaces_complete(m, &quiet) || ipam_assign(m, &quiet) || identity_assign(m, &quiet) ||
	    services_complete(m, &quiet))
		return -EAGAIN;
	return 0;
}
