/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Security identities: one number per distinct identity label set, allocated from
 * IDENTITY_CLUSTER_MIN in order of first appearance in the manifest (deterministic: replay,
 * policy trace and the model tests use these). The agent replaces them with the numbers
 * allocated in the store (datapath/agent/identity_alloc.h), which agree with these for a
 * fresh store filled in manifest order. A pod's identity labels are its own labels as
 * k8s:KEY=VALUE, k8s:io.kubernetes.pod.namespace=NS, and each of its namespace's labels as
 * k8s:io.cilium.k8s.namespace.labels.KEY=VALUE. hostNetwork pods are the host.
 */
#include "parse.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"

#define NS_LABEL_PREFIX "k8s:io.cilium.k8s.namespace.labels."

static int add_prefixed(struct labelset *out, const char *prefix, const char *key,
			const char *value)
{
	char *k;
	int err;

	if (asprintf(&k, "%s%s", prefix, key) < 0)
		return -ENOMEM;
	err = labelset_set(out, k, value);
	free(k);
	return err;
}

int identity_labels_for_pod(const struct cluster_model *m, const struct m_pod *pod,
			    struct labelset *out)
{
	const struct m_namespace *ns = cluster_find_namespace(m, pod->ns);
	size_t i;
	int err = 0;

	out->v = NULL;
	out->n = 0;
	for (i = 0; !err && i < pod->labels.n; i++)
		err = add_prefixed(out, "k8s:", pod->labels.v[i].key, pod->labels.v[i].value);
	if (!err)
		err = labelset_set(out, "k8s:io.kubernetes.pod.namespace", pod->ns);
	if (ns) {
		for (i = 0; !err && i < ns->labels.n; i++)
			err = add_prefixed(out, NS_LABEL_PREFIX, ns->labels.v[i].key,
					   ns->labels.v[i].value);
	} else if (!err) {
		err = add_prefixed(out, NS_LABEL_PREFIX, "kubernetes.io/metadata.name", pod->ns);
	}
	if (err) {
		labelset_free(out);
		return err;
	}
	labelset_sort(out);
	return 0;
}

/* FNV-1a over strings, for the tables below. */
static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	h ^= 0x1f;
	return h * 1099511628211ull;
}

static uint64_t labels_hash(uint64_t h, const struct labelset *ls)
{
	size_t i;

	for (i = 0; i < ls->n; i++)
		h = fnv(fnv(h, ls->v[i].key), ls->v[i].value);
	return h;
}

/* Open addressing over indexes + 1, sized for n entries. */
struct idx_tab {
	uint32_t *slot;
	size_t mask;
};

static int tab_init(struct idx_tab *t, size_t n)
{
	size_t cap = 64;

	while (cap < 2 * n)
		cap *= 2;
	t->slot = calloc(cap, sizeof(*t->slot));
	t->mask = cap - 1;
	return t->slot ? 0 : -ENOMEM;
}

/*
 * Identities in pod order. Pods with the same namespace and the same labels in the same order
 * have the same identity, so a pod like one seen before takes its identity without building
 * its label set; identities are found by a hash of their label set. Both keep this linear in
 * the number of pods (the agent runs it on every model with every pod of the cluster).
 */
int identity_assign(struct cluster_model *m, struct diag *d)
{
	struct idx_tab seen = {0}, ids = {0};
	struct m_identity *v;
	struct labelset ls;
	uint64_t h;
	size_t i, k;
	int err = 0;

	if (tab_init(&seen, m->npods) || tab_init(&ids, m->npods)) {
		err = diag_fail_errno(d, -ENOMEM, "identities: out of memory");
		goto out;
	}
	for (i = 0; i < m->npods; i++) {
		struct m_pod *pod = &m->pods[i];
		uint32_t *ps, *is;

		if (pod->host_network) {
			pod->identity = IDENTITY_HOST;
			continue;
		}
		/* a pod like an earlier one */
		h = labels_hash(fnv(14695981039346656037ull, pod->ns), &pod->labels);
		for (k = h & seen.mask; (ps = &seen.slot[k])[0]; k = (k + 1) & seen.mask) {
			const struct m_pod *q = &m->pods[*ps - 1];

			if (!strcmp(q->ns, pod->ns) && labelset_equal(&q->labels, &pod->labels))
				break;
		}
		if (*ps) {
			pod->identity = m->pods[*ps - 1].identity;
			continue;
		}
		*ps = (uint32_t)i + 1;
		err = identity_labels_for_pod(m, pod, &ls);
		if (err) {
			err = diag_fail_errno(d, err, "%s:%d: identity labels: out of memory",
					      pod->file, pod->line);
			goto out;
		}
		h = labels_hash(14695981039346656037ull, &ls);
		for (k = h & ids.mask; (is = &ids.slot[k])[0]; k = (k + 1) & ids.mask)
			if (labelset_equal(&m->identities[*is - 1].labels, &ls))
				break;
		if (*is) {
			pod->identity = m->identities[*is - 1].id;
			labelset_free(&ls);
			continue;
		}
		v = realloc(m->identities, (m->nidentities + 1) * sizeof(*v));
		if (!v) {
			labelset_free(&ls);
			err = diag_fail_errno(d, -ENOMEM, "identities: out of memory");
			goto out;
		}
		m->identities = v;
		v[m->nidentities].id = IDENTITY_CLUSTER_MIN + (uint32_t)m->nidentities;
		v[m->nidentities].labels = ls;
		pod->identity = v[m->nidentities].id;
		*is = (uint32_t)++m->nidentities;
	}
out:
	free(seen.slot);
	free(ids.slot);
	return err;
}

const struct m_identity *cluster_find_identity(const struct cluster_model *m, uint32_t id)
{
	size_t i;

	for (i = 0; i < m->nidentities; i++)
		if (m->identities[i].id == id)
			return &m->identities[i];
	return NULL;
}

int cluster_renumber_identities(struct cluster_model *m, const uint32_t *ids)
{
	size_t i, j;

	for (i = 0; i < m->nidentities; i++) {
		if (ids[i] < IDENTITY_CLUSTER_MIN || ids[i] >= IDENTITY_LOCAL_CIDR_MIN)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (ids[j] == ids[i])
				return -EINVAL;
	}
	for (i = 0; i < m->npods; i++) {
		struct m_pod *pod = &m->pods[i];

		for (j = 0; j < m->nidentities; j++)
			if (pod->identity == m->identities[j].id)
				break;
		if (j < m->nidentities)
			pod->identity = ids[j];
	}
	for (i = 0; i < m->nidentities; i++)
		m->identities[i].id = ids[i];
	return 0;
}
