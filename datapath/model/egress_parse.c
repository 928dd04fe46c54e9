/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cilium.io/v2 CiliumEgressGatewayPolicy documents (docs/EGRESS.md "Model") and v1 Node
 * documents (a node's labels, which egress gateway node selectors read).
 *
 * The policy's spec is checked strictly (unknown fields are errors: a misspelt field would
 * otherwise silently route traffic elsewhere); metadata is read as for other Kubernetes
 * kinds. A policy Cilium would ignore (egressIP and interface both given) is rejected with
 * a message instead, so that the user learns about it at apply time.
 */
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"
#include "labels.h"

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* podSelector keys in the identity label form ("k8s:app"), as CiliumNetworkPolicy's
 * endpointSelector: no prefix, k8s: or any:. */
static int norm_pod_key(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
			char **key)
{
	const char *colon = strchr(*key, ':'), *rest = *key;
	char *k;

	if (colon) {
		if ((colon - *key == 3) && (!strncmp(*key, "k8s", 3) || !strncmp(*key, "any", 3)))
			rest = colon + 1;
		else
			rest = "";
	}
	if (!*rest)
		return yt_fail(c, n, path,
			       "label key \"%s\": unsupported source (use k8s:, any: or no prefix)",
			       *key);
	if (asprintf(&k, "k8s:%s", rest) < 0)
		return -ENOMEM;
	free(*key);
	*key = k;
	return 0;
}

/* A selector field into a newly allocated selector (*out; NULL when the field is absent). */
static int sel_field(struct parse_ctx *p, const yaml_node_t *map, const char *key,
		     const char *path, bool pod_keys, struct selector **out)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *n = yt_map_get(c, map, key);
	struct selector *sel;
	size_t i;
	int err;

	*out = NULL;
	if (!n) {
		/* "podSelector:" with no value is the empty selector, not an absent one */
		yaml_node_pair_t *pr;

		for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
			const char *k = yt_scalar(yt_node(c, pr->key));

			if (k && !strcmp(k, key))
				n = yt_node(c, pr->value);
		}
		if (!n)
			return 0;
	}
	sel = calloc(1, sizeof(*sel));
	if (!sel)
		return -ENOMEM;
	*out = sel;
	err = selector_parse(c, n, path, sel);
	for (i = 0; !err && pod_keys && i < sel->match.n; i++)
		err = norm_pod_key(c, n, path, &sel->match.v[i].key);
	for (i = 0; !err && pod_keys && i < sel->nreqs; i++)
		err = norm_pod_key(c, n, path, &sel->reqs[i].key);
	if (!err)
		labelset_sort(&sel->match);
	return err;
}

static void sel_free(struct selector *sel)
{
	selector_free(sel);
	free(sel);
}

void egress_policy_clear(struct m_egress_policy *pol)
{
	size_t i;

	for (i = 0; i < pol->nselectors; i++) {
		sel_free(pol->selectors[i].pods);
		sel_free(pol->selectors[i].namespaces);
		sel_free(pol->selectors[i].nodes);
	}
	free(pol->selectors);
	for (i = 0; i < pol->ngateways; i++)
		sel_free(pol->gateways[i].nodes);
	free(pol->gateways);
	free(pol->dst);
	free(pol->excluded);
	memset(pol, 0, sizeof(*pol));
}

static int parse_selectors(struct parse_ctx *p, struct m_egress_policy *pol,
			   const yaml_node_t *seq)
{
	static const char *const fields[] = { "podSelector", "namespaceSelector", "nodeSelector",
					      NULL };
	const struct yt_ctx *c = &p->yt;
	char path[YT_PATH_MAX], sub[YT_PATH_MAX];
	yaml_node_item_t *it;
	int err;

	err = yt_want_seq(c, seq, "spec.selectors");
	if (err)
		return err;
	if (!seq_len(seq))
		return yt_fail(c, seq, "spec.selectors", "at least one selector is required");
	pol->selectors = calloc(seq_len(seq), sizeof(*pol->selectors));
	if (!pol->selectors)
		return -ENOMEM;
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		struct m_egress_selector *s = &pol->selectors[pol->nselectors];
		yaml_node_t *item = yt_node(c, *it);

		yt_path(path, "spec.selectors[%zu]", pol->nselectors++);
		err = yt_check_fields(c, item, path, fields);
		if (!err)
			err = sel_field(p, item, "podSelector", yt_path(sub, "%s.podSelector", path),
					true, &s->pods);
		if (!err)
			err = sel_field(p, item, "namespaceSelector",
					yt_path(sub, "%s.namespaceSelector", path), false,
					&s->namespaces);
		if (!err)
			err = sel_field(p, item, "nodeSelector",
					yt_path(sub, "%s.nodeSelector", path), false, &s->nodes);
		if (err)
			return err;
		if (!s->pods && !s->namespaces)
			return yt_fail(c, item, path,
				       "needs a podSelector or a namespaceSelector (a nodeSelector "
				       "cannot be used alone)");
	}
	return 0;
}

/* destinationCIDRs / excludedCIDRs: "A.B.C.D/N" (host bits are cleared, as Cilium's
 * net.ParseCIDR does); IPv6 ones are checked and left out (the model is IPv4 only). */
static int parse_cidrs(struct parse_ctx *p, const yaml_node_t *seq, const char *path,
		       bool required, struct m_cidr **out, size_t *n)
{
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], buf[INET6_ADDRSTRLEN + 8], *slash;
	unsigned char a6[16];
	yaml_node_item_t *it;
	size_t i, j;
	int err;

	err = yt_want_seq(c, seq, path);
	if (err)
		return err;
	if (required && !seq_len(seq))
		return yt_fail(c, seq, path, "at least one CIDR is required");
	*out = calloc(seq_len(seq) + 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (it = seq->data.sequence.items.start, i = 0; it < seq->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *v = yt_node(c, *it);
		const char *s = yt_scalar(v);
		struct m_cidr cd;

		yt_path(sub, "%s[%zu]", path, i);
		if (!s || !*s)
			return yt_fail(c, v, sub, "expected a CIDR string");
		if (strchr(s, ':')) {
			long len;
			char *end;

			snprintf(buf, sizeof(buf), "%s", s);
			slash = strchr(buf, '/');
			if (slash)
				*slash = '\0';
			len = slash ? strtol(slash + 1, &end, 10) : -1;
			if (!slash || !slash[1] || *end || len < 0 || len > 128 ||
			    inet_pton(AF_INET6, buf, a6) != 1)
				return yt_fail(c, v, sub,
					       "bad CIDR \"%s\" (want A.B.C.D/N or an IPv6 prefix)",
					       s);
			continue; /* IPv6: not modelled */
		}
		if (!strchr(s, '/') || cidr4_parse(s, false, &cd.addr, &cd.len))
			return yt_fail(c, v, sub, "bad CIDR \"%s\" (want A.B.C.D/N)", s);
		for (j = 0; j < *n; j++)
			if ((*out)[j].addr == cd.addr && (*out)[j].len == cd.len)
				break;
		if (j == *n) /* a CIDR given twice adds nothing */
			(*out)[(*n)++] = cd;
	}
	return 0;
}

static int parse_gateway(struct parse_ctx *p, const yaml_node_t *n, const char *path,
			 struct m_egress_gateway *gw)
{
	static const char *const fields[] = { "nodeSelector", "egressIP", "interface", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_t *ipn, *ifn;
	const char *s;
	int err;

	err = yt_check_fields(c, n, path, fields);
	if (!err)
		err = yt_require(c, n, path, "nodeSelector");
	if (!err)
		err = sel_field(p, n, "nodeSelector", yt_path(sub, "%s.nodeSelector", path), false,
				&gw->nodes);
	if (err)
		return err;
	ipn = yt_map_get(c, n, "egressIP");
	ifn = yt_map_get(c, n, "interface");
	if (ipn && ifn)
		return yt_fail(c, n, path,
			       "egressIP and interface are mutually exclusive (Cilium ignores such "
			       "a policy)");
	if (ipn) {
		yt_path(sub, "%s.egressIP", path);
		s = yt_scalar(ipn);
		if (s && strchr(s, ':'))
			return yt_fail(c, ipn, sub, "IPv6 egress IP \"%s\" is not supported (IPv4 only)",
				       s);
		if (!s || ip4_parse(s, &gw->egress_ip) || !gw->egress_ip)
			return yt_fail(c, ipn, sub, "bad IPv4 address \"%s\"", s ? s : "");
	}
	if (ifn) {
		yt_path(sub, "%s.interface", path);
		err = yt_str(c, ifn, sub, gw->iface, sizeof(gw->iface));
		if (err)
			return err;
		if (strpbrk(gw->iface, "/: \t") || !strcmp(gw->iface, ".") ||
		    !strcmp(gw->iface, ".."))
			return yt_fail(c, ifn, sub, "\"%s\" is not a valid interface name",
				       gw->iface);
	}
	return 0;
}

static int parse_gateways(struct parse_ctx *p, struct m_egress_policy *pol,
			  const yaml_node_t *spec)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *one = yt_map_get(c, spec, "egressGateway");
	yaml_node_t *many = yt_map_get(c, spec, "egressGateways");
	char path[YT_PATH_MAX];
	yaml_node_item_t *it;
	int err;

	if (one && many)
		return yt_fail(c, many, "spec.egressGateways",
			       "egressGateway and egressGateways are mutually exclusive");
	if (!one && !many)
		return yt_fail(c, spec, "spec.egressGateway",
			       "required field missing (egressGateway or egressGateways)");
	if (one) {
		pol->gateways = calloc(1, sizeof(*pol->gateways));
		if (!pol->gateways)
			return -ENOMEM;
		pol->ngateways = 1;
		return parse_gateway(p, one, "spec.egressGateway", &pol->gateways[0]);
	}
	pol->multi = true;
	err = yt_want_seq(c, many, "spec.egressGateways");
	if (err)
		return err;
	if (!seq_len(many))
		return yt_fail(c, many, "spec.egressGateways", "at least one gateway is required");
	pol->gateways = calloc(seq_len(many), sizeof(*pol->gateways));
	if (!pol->gateways)
		return -ENOMEM;
	for (it = many->data.sequence.items.start; it < many->data.sequence.items.top; it++) {
		yt_path(path, "spec.egressGateways[%zu]", pol->ngateways);
		err = parse_gateway(p, yt_node(c, *it), path, &pol->gateways[pol->ngateways++]);
		if (err)
			return err;
	}
	return 0;
}

int egress_policy_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	static const char *const top[] = { "apiVersion", "kind", "metadata", "spec", "status",
					   NULL };
	static const char *const fields[] = { "selectors", "destinationCIDRs", "excludedCIDRs",
					      "egressGateway", "egressGateways", NULL };
	const struct yt_ctx *c = &p->yt;
	struct cluster_model *m = p->m;
	struct m_egress_policy *v, *pol;
	yaml_node_t *spec, *n;
	size_t i;
	int err;

	v = realloc(m->egress_policies, (m->negress_policies + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->egress_policies = v;
	pol = &v[m->negress_policies++]; /* the model owns it from here, parsed or not */
	memset(pol, 0, sizeof(*pol));
	pol->file = c->file;
	pol->line = yt_line(root);
	err = yt_check_fields(c, root, "", top);
	if (!err)
		err = k8s_metadata_parse(p, root, pol->name, sizeof(pol->name), NULL, 0, NULL);
	if (err)
		return err;
	for (i = 0; i + 1 < m->negress_policies; i++)
		if (!strcmp(m->egress_policies[i].name, pol->name))
			return yt_fail(c, root, "metadata.name",
				       "duplicate CiliumEgressGatewayPolicy \"%s\" (first at %s:%d)",
				       pol->name, m->egress_policies[i].file,
				       m->egress_policies[i].line);
	err = yt_require(c, root, "", "spec");
	if (err)
		return err;
	spec = yt_map_get(c, root, "spec");
	err = yt_check_fields(c, spec, "spec", fields);
	if (!err)
		err = yt_require(c, spec, "spec", "selectors");
	if (!err)
		err = parse_selectors(p, pol, yt_map_get(c, spec, "selectors"));
	if (!err)
		err = yt_require(c, spec, "spec", "destinationCIDRs");
	if (!err)
		err = parse_cidrs(p, yt_map_get(c, spec, "destinationCIDRs"),
				  "spec.destinationCIDRs", true, &pol->dst, &pol->ndst);
	if (err)
		return err;
	n = yt_map_get(c, spec, "excludedCIDRs");
	if (n) {
		err = parse_cidrs(p, n, "spec.excludedCIDRs", false, &pol->excluded,
				  &pol->nexcluded);
		if (err)
			return err;
	}
	return parse_gateways(p, pol, spec);
}

/* ---- v1 Node ------------------------------------------------------------------------------ */

int node_doc_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	const struct yt_ctx *c = &p->yt;
	struct cluster_model *m = p->m;
	struct m_node_doc *v, *nd;
	size_t i;
	int err;

	v = realloc(m->node_docs, (m->nnode_docs + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->node_docs = v;
	nd = &v[m->nnode_docs++];
	memset(nd, 0, sizeof(*nd));
	nd->file = c->file;
	nd->line = yt_line(root);
	err = k8s_metadata_parse(p, root, nd->name, sizeof(nd->name), NULL, 0, &nd->labels);
	if (err)
		return err;
	if (!cluster_find_node(m, nd->name))
		return yt_fail(c, yt_map_get(c, yt_map_get(c, root, "metadata"), "name"),
			       "metadata.name", "no node named \"%s\" in the Cluster", nd->name);
	for (i = 0; i + 1 < m->nnode_docs; i++)
		if (!strcmp(m->node_docs[i].name, nd->name))
			return yt_fail(c, root, "metadata.name",
				       "duplicate Node \"%s\" (first at %s:%d)", nd->name,
				       m->node_docs[i].file, m->node_docs[i].line);
	return 0;
}

int node_docs_apply(struct cluster_model *m)
{
	struct labelset ls;
	struct m_node *nd;
	size_t i;

	for (i = 0; i < m->nnode_docs; i++) {
		nd = (struct m_node *)cluster_find_node(m, m->node_docs[i].name);
		if (!nd)
			return -ENOENT;
		if (labelset_copy(&ls, &m->node_docs[i].labels))
			return -ENOMEM;
		labelset_free(&nd->labels);
		nd->labels = ls;
	}
	return 0;
}
