/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Egress gateway entries of a node (ciliate_egress_gw; docs/EGRESS.md "Model").
 *
 * For every pod a CiliumEgressGatewayPolicy selects (never a hostNetwork pod) and every
 * destinationCIDR: (pod, CIDR) -> {gateway node's address, egress IP}; every excludedCIDR:
 * (pod, CIDR) -> the excluded sentinel. Every node gets every entry: the pod's node
 * redirects to the gateway, the gateway SNATs. The same (pod, CIDR) from two policies: the
 * policy first by name wins; within one policy an excludedCIDR wins over the same
 * destinationCIDR. Entries are sorted by pod address, destination, prefix length.
 *
 * The gateway: egressGateway.nodeSelector over the Cluster's nodes (their labels after v1
 * Node documents, plus kubernetes.io/hostname=<name> as a kubelet sets it), several matches:
 * the first by name. egressGateways[]: among the gateways that have a node, the pod's is
 * number FNV-1a-32("ns/name") modulo their count (Cilium spreads by CiliumEndpoint UID,
 * which the model does not have; the pod's name is as stable).
 */
#include "model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"
#include "labels.h"
#include "parse.h"

#define HOSTNAME_LABEL "kubernetes.io/hostname"

/* A node selector against a node's labels plus kubernetes.io/hostname (unless the node's
 * labels set it). */
static bool node_sel_matches(const struct selector *sel, const struct m_node *nd)
{
	struct labelset ls;
	bool r;

	if (!sel)
		return true;
	if (labelset_get(&nd->labels, HOSTNAME_LABEL))
		return selector_matches(sel, &nd->labels);
	ls.n = nd->labels.n + 1;
	ls.v = malloc(ls.n * sizeof(*ls.v));
	if (!ls.v)
		return false;
	if (nd->labels.n)
		memcpy(ls.v, nd->labels.v, nd->labels.n * sizeof(*ls.v));
	ls.v[nd->labels.n].key = (char *)HOSTNAME_LABEL;
	ls.v[nd->labels.n].value = (char *)nd->name;
	r = selector_matches(sel, &ls);
	free(ls.v); /* the strings are the node's */
	return r;
}

/* The first node by name whose labels sel matches; NULL if none. */
static const struct m_node *first_node(const struct cluster_model *m, const struct selector *sel)
{
	const struct m_node *best = NULL, *nd;
	size_t i;

	for (i = 0; i < m->cluster.nnodes; i++) {
		nd = &m->cluster.nodes[i];
		if ((!best || strcmp(nd->name, best->name) < 0) && node_sel_matches(sel, nd))
			best = nd;
	}
	return best;
}

const struct m_node *egress_gateway_node(const struct cluster_model *m,
					 const struct m_egress_gateway *gw)
{
	return first_node(m, gw->nodes);
}

static uint32_t pod_hash(const struct m_pod *pod)
{
	uint32_t h = 2166136261u;
	const char *s;

	for (s = pod->ns; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (s = pod->name; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

const struct m_node *egress_gateway_of(const struct cluster_model *m,
				       const struct m_egress_policy *pol, const struct m_pod *pod,
				       const struct m_egress_gateway **gw)
{
	const struct m_node *nd = NULL;
	size_t i, count = 0, pick;

	if (gw)
		*gw = NULL;
	if (!pol->ngateways)
		return NULL;
	if (!pol->multi) {
		if (gw)
			*gw = &pol->gateways[0];
		return first_node(m, pol->gateways[0].nodes);
	}
	for (i = 0; i < pol->ngateways; i++)
		if (first_node(m, pol->gateways[i].nodes))
			count++;
	if (!count)
		return NULL;
	pick = pod_hash(pod) % count;
	for (i = 0; i < pol->ngateways; i++) {
		nd = first_node(m, pol->gateways[i].nodes);
		if (!nd)
			continue;
		if (pick-- == 0) {
			if (gw)
				*gw = &pol->gateways[i];
			return nd;
		}
	}
	return NULL;
}

/* pol selects the pod whose identity labels are idl (the policy's podSelector keys carry
 * "k8s:", so io.kubernetes.pod.namespace and namespace labels select as in Cilium). */
static bool selects(const struct cluster_model *m, const struct m_egress_policy *pol,
		    const struct m_pod *pod, const struct labelset *idl)
{
	static const struct labelset none;
	const struct m_namespace *ns;
	const struct m_node *nd;
	size_t i;

	if (pod->host_network)
		return false;
	for (i = 0; i < pol->nselectors; i++) {
		const struct m_egress_selector *s = &pol->selectors[i];

		if (s->pods && !selector_matches(s->pods, idl))
			continue;
		if (s->namespaces) {
			ns = cluster_find_namespace(m, pod->ns);
			if (!selector_matches(s->namespaces, ns ? &ns->labels : &none))
				continue;
		}
		if (s->nodes) {
			nd = cluster_find_node(m, pod->node);
			if (!nd || !node_sel_matches(s->nodes, nd))
				continue;
		}
		return true;
	}
	return false;
}

bool egress_policy_selects(const struct cluster_model *m, const struct m_egress_policy *pol,
			   const struct m_pod *pod)
{
	struct labelset idl;
	bool r;

	if (pod->host_network || identity_labels_for_pod(m, pod, &idl))
		return false;
	r = selects(m, pol, pod, &idl);
	labelset_free(&idl);
	return r;
}

const struct m_egress_policy *cluster_find_egress_policy(const struct cluster_model *m,
							 const char *name)
{
	size_t i;

	for (i = 0; i < m->negress_policies; i++)
		if (!strcmp(m->egress_policies[i].name, name))
			return &m->egress_policies[i];
	return NULL;
}

/* ---- candidate entries ------------------------------------------------------------------ */

struct cand {
	struct egress_gw_key key;
	uint32_t rank; /* the policy's position by name */
	bool excluded;
	const struct m_egress_policy *pol;
	const struct m_egress_gateway *gw; /* NULL: none */
	const struct m_node *gwnode;	   /* NULL: no gateway node */
};

struct cands {
	struct cand *v;
	size_t n, cap;
};

static int cand_add(struct cands *c, const struct cand *x)
{
	struct cand *v;

	if (c->n == c->cap) {
		v = realloc(c->v, (c->cap ? 2 * c->cap : 64) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = c->cap ? 2 * c->cap : 64;
	}
	c->v[c->n++] = *x;
	return 0;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	uint32_t xs = ntohl(x->key.saddr), ys = ntohl(y->key.saddr);
	uint32_t xd = ntohl(x->key.daddr), yd = ntohl(y->key.daddr);

	if (xs != ys)
		return xs < ys ? -1 : 1;
	if (xd != yd)
		return xd < yd ? -1 : 1;
	if (x->key.prefixlen != y->key.prefixlen)
		return x->key.prefixlen < y->key.prefixlen ? -1 : 1;
	if (x->rank != y->rank) /* the first policy by name wins */
		return x->rank < y->rank ? -1 : 1;
	return (int)y->excluded - (int)x->excluded; /* excluded first */
}

static int pol_cmp(const void *a, const void *b)
{
	const struct m_egress_policy *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* The policies sorted by name (names are unique). */
static const struct m_egress_policy **policy_order(const struct cluster_model *m)
{
	const struct m_egress_policy **v = calloc(m->negress_policies + 1, sizeof(*v));
	size_t i;

	if (!v)
		return NULL;
	for (i = 0; i < m->negress_policies; i++)
		v[i] = &m->egress_policies[i];
	qsort(v, m->negress_policies, sizeof(*v), pol_cmp);
	return v;
}

/* Adds the candidate entries of one pod (every selecting policy's CIDRs). */
static int pod_cands(const struct cluster_model *m, const struct m_egress_policy *const *order,
		     const struct m_pod *pod, struct cands *out)
{
	struct labelset idl;
	struct cand c;
	size_t r, i;
	int err = 0;

	if (pod->host_network || !pod->ip)
		return 0;
	err = identity_labels_for_pod(m, pod, &idl);
	if (err)
		return err;
	for (r = 0; !err && r < m->negress_policies; r++) {
		const struct m_egress_policy *pol = order[r];

		if (!selects(m, pol, pod, &idl))
			continue;
		memset(&c, 0, sizeof(c));
		c.rank = (uint32_t)r;
		c.pol = pol;
		c.key.saddr = pod->ip;
		c.gwnode = egress_gateway_of(m, pol, pod, &c.gw);
		for (i = 0; !err && i < pol->ndst; i++) {
			c.key.prefixlen = EGRESS_GW_PREFIX_BASE + pol->dst[i].len;
			c.key.daddr = pol->dst[i].addr & ip4_mask(pol->dst[i].len);
			err = cand_add(out, &c);
		}
		c.excluded = true;
		for (i = 0; !err && i < pol->nexcluded; i++) {
			c.key.prefixlen = EGRESS_GW_PREFIX_BASE + pol->excluded[i].len;
			c.key.daddr = pol->excluded[i].addr & ip4_mask(pol->excluded[i].len);
			err = cand_add(out, &c);
		}
	}
	labelset_free(&idl);
	return err;
}

static bool same_key(const struct egress_gw_key *a, const struct egress_gw_key *b)
{
	return a->prefixlen == b->prefixlen && a->saddr == b->saddr && a->daddr == b->daddr;
}

int node_egress_compute(const struct cluster_model *m, const struct m_node *node,
			struct node_state *ns)
{
	struct cands c = {0};
	const struct m_egress_policy **order;
	size_t i;
	int err = 0;

	if (!m->negress_policies)
		return 0;
	order = policy_order(m);
	if (!order)
		return -ENOMEM;
	for (i = 0; !err && i < m->npods; i++)
		err = pod_cands(m, order, &m->pods[i], &c);
	free(order);
	if (!err && c.n) {
		qsort(c.v, c.n, sizeof(*c.v), cand_cmp);
		ns->egress = calloc(c.n, sizeof(*ns->egress));
		if (!ns->egress)
			err = -ENOMEM;
	}
	for (i = 0; !err && i < c.n; i++) {
		const struct cand *x = &c.v[i];
		struct node_egress_entry *e;

		if (ns->negress && same_key(&ns->egress[ns->negress - 1].key, &x->key))
			continue; /* the winner sorts first */
		e = &ns->egress[ns->negress++];
		e->key = x->key;
		if (x->excluded) {
			e->val.gateway_ip = htonl(EGRESS_GW_EXCLUDED_CIDR);
			continue;
		}
		e->val.gateway_ip = x->gwnode ? x->gwnode->ip : EGRESS_GW_NO_GATEWAY;
		e->val.egress_ip = x->gw ? x->gw->egress_ip : 0;
		/* only the gateway SNATs: only it needs the interface's address */
		if (x->gwnode == node && x->gw && !x->gw->egress_ip) {
			e->resolve = true;
			memcpy(e->iface, x->gw->iface, sizeof(e->iface));
		}
	}
	free(c.v);
	return err;
}

int egress_route_of(const struct cluster_model *m, const struct m_pod *pod, uint32_t daddr,
		    struct egress_route *out)
{
	const struct cand *best = NULL;
	struct cands c = {0};
	const struct m_egress_policy **order;
	size_t i;
	int err;

	memset(out, 0, sizeof(*out));
	if (!m->negress_policies)
		return 0;
	order = policy_order(m);
	if (!order)
		return -ENOMEM;
	err = pod_cands(m, order, pod, &c);
	free(order);
	for (i = 0; !err && i < c.n; i++) {
		const struct cand *x = &c.v[i];
		uint8_t len = (uint8_t)(x->key.prefixlen - EGRESS_GW_PREFIX_BASE);

		if (!cidr4_contains_ip(x->key.daddr, len, daddr))
			continue;
		if (!best || x->key.prefixlen > best->key.prefixlen ||
		    (x->key.prefixlen == best->key.prefixlen && cand_cmp(x, best) < 0))
			best = x;
	}
	if (best) {
		out->policy = best->pol;
		if (best->excluded) {
			out->verdict = EGRESS_EXCLUDED;
		} else if (!best->gwnode) {
			out->verdict = EGRESS_NO_GATEWAY;
		} else {
			out->verdict = EGRESS_VIA_GATEWAY;
			out->gateway = best->gwnode;
			out->egress_ip = best->gw ? best->gw->egress_ip : 0;
			out->iface = best->gw ? best->gw->iface : "";
		}
	}
	free(c.v);
	return err;
}
