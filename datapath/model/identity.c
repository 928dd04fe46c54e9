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

int identity_labels_for_pod(const struct scenario *s, const struct m_pod *pod,
			    struct labelset *out)
{
	const struct m_namespace *ns = scenario_find_namespace(s, pod->ns);
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

int identity_assign(struct scenario *s, struct diag *d)
{
	struct m_identity *v;
	struct labelset ls;
	size_t i, j;
	int err;

	for (i = 0; i < s->npods; i++) {
		struct m_pod *pod = &s->pods[i];

		if (pod->host_network) {
			pod->identity = IDENTITY_HOST;
			continue;
		}
		err = identity_labels_for_pod(s, pod, &ls);
		if (err)
			return diag_fail_errno(d, err, "%s:%d: identity labels: out of memory",
					       pod->file, pod->line);
		for (j = 0; j < s->nidentities; j++)
			if (labelset_equal(&s->identities[j].labels, &ls))
				break;
		if (j < s->nidentities) {
			pod->identity = s->identities[j].id;
			labelset_free(&ls);
			continue;
		}
		v = realloc(s->identities, (s->nidentities + 1) * sizeof(*v));
		if (!v) {
			labelset_free(&ls);
			return diag_fail_errno(d, -ENOMEM, "identities: out of memory");
		}
		s->identities = v;
		v[s->nidentities].id = IDENTITY_CLUSTER_MIN + (uint32_t)s->nidentities;
		v[s->nidentities].labels = ls;
		pod->identity = v[s->nidentities].id;
		s->nidentities++;
	}
	return 0;
}

const struct m_identity *scenario_find_identity(const struct scenario *s, uint32_t id)
{
	size_t i;

	for (i = 0; i < s->nidentities; i++)
		if (s->identities[i].id == id)
			return &s->identities[i];
	return NULL;
}

int scenario_renumber_identities(struct scenario *s, const uint32_t *ids)
{
	size_t i, j;

	for (i = 0; i < s->nidentities; i++) {
		if (ids[i] < IDENTITY_CLUSTER_MIN || ids[i] >= IDENTITY_LOCAL_CIDR_MIN)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (ids[j] == ids[i])
				return -EINVAL;
	}
	for (i = 0; i < s->npods; i++) {
		struct m_pod *pod = &s->pods[i];

		for (j = 0; j < s->nidentities; j++)
			if (pod->identity == s->identities[j].id)
				break;
		if (j < s->nidentities)
			pod->identity = ids[j];
	}
	for (i = 0; i < s->nidentities; i++)
		s->identities[i].id = ids[i];
	return 0;
}
