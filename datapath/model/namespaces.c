/* SPDX-License-Identifier: Apache-2.0 */
/* Namespaces: explicit Namespace documents plus implicit ones for every namespace a pod or
 * policy uses without a document. Every namespace carries kubernetes.io/metadata.name. */
#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "policy.h"

static int ensure_ns(struct scenario *s, const char *name)
{
	struct m_namespace *v, *ns;
	int err;

	if (scenario_find_namespace(s, name))
		return 0;
	v = realloc(s->namespaces, (s->nnamespaces + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->namespaces = v;
	ns = &v[s->nnamespaces++];
	memset(ns, 0, sizeof(*ns));
	strncpy(ns->name, name, sizeof(ns->name) - 1);
	ns->implicit = true;
	err = labelset_set(&ns->labels, "kubernetes.io/metadata.name", name);
	return err;
}

int namespaces_complete(struct scenario *s, struct diag *d)
{
	size_t i;
	int err = 0;

	for (i = 0; !err && i < s->npods; i++)
		err = ensure_ns(s, s->pods[i].ns);
	for (i = 0; !err && i < s->npolicies; i++)
		if (s->policies[i]->ns[0]) /* cluster-wide policies have no namespace */
			err = ensure_ns(s, s->policies[i]->ns);
	for (i = 0; !err && i < s->nnamespaces; i++) {
		err = labelset_set(&s->namespaces[i].labels, "kubernetes.io/metadata.name",
				   s->namespaces[i].name);
		labelset_sort(&s->namespaces[i].labels);
	}
	if (err)
		return diag_fail_errno(d, err, "namespaces: out of memory");
	return 0;
}

const struct m_namespace *scenario_find_namespace(const struct scenario *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nnamespaces; i++)
		if (!strcmp(s->namespaces[i].name, name))
			return &s->namespaces[i];
	return NULL;
}
