/* SPDX-License-Identifier: Apache-2.0 */
/* Namespaces: explicit Namespace documents plus implicit ones for every namespace a pod or
 * policy uses without a document. Every namespace carries kubernetes.io/metadata.name. */
#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "policy.h"

static int ensure_ns(struct cluster_model *m, const char *name)
{
	struct m_namespace *v, *ns;
	int err;

	if (cluster_find_namespace(m, name))
		return 0;
	v = realloc(m->namespaces, (m->nnamespaces + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->namespaces = v;
	ns = &v[m->nnamespaces++];
	memset(ns, 0, sizeof(*ns));
	strncpy(ns->name, name, sizeof(ns->name) - 1);
	ns->implicit = true;
	err = labelset_set(&ns->labels, "kubernetes.io/metadata.name", name);
	return err;
}

int namespaces_complete(struct cluster_model *m, struct diag *d)
{
	size_t i;
	int err = 0;

	for (i = 0; !err && i < m->npods; i++)
		err = ensure_ns(m, m->pods[i].ns);
	for (i = 0; !err && i < m->npolicies; i++)
		if (m->policies[i]->ns[0]) /* cluster-wide policies have no namespace */
			err = ensure_ns(m, m->policies[i]->ns);
	for (i = 0; !err && i < m->nnamespaces; i++) {
		err = labelset_set(&m->namespaces[i].labels, "kubernetes.io/metadata.name",
				   m->namespaces[i].name);
		labelset_sort(&m->namespaces[i].labels);
	}
	if (err)
		return diag_fail_errno(d, err, "namespaces: out of memory");
	return 0;
}

const struct m_namespace *cluster_find_namespace(const struct cluster_model *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nnamespaces; i++)
		if (!strcmp(m->namespaces[i].name, name))
			return &m->namespaces[i];
	return NULL;
}
