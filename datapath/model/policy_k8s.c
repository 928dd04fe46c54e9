/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes NetworkPolicy (networking.k8s.io/v1): parsing and compilation into policy map
 * entries, per upstream semantics. podSelector picks the pods of the policy's namespace;
 * policyTypes default to Ingress, plus Egress when egress rules exist; a pod is isolated in
 * a direction when any policy selecting it has that type; allows are additive; a rule with
 * no peers allows every peer (wildcard identity), with no ports every port.
 */
#include "policy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"
#include "parse.h"

static const char *const dir_names[DIR_MAX] = { "ingress", "egress" };
static const char *const peer_keys[DIR_MAX] = { "from", "to" };

/* ---- parsing --------------------------------------------------------------------------- */

static int parse_ipblock(struct parse_ctx *p, const yaml_node_t *n, const char *path,
			 struct np_peer *peer)
{
	static const char *const fields[] = { "cidr", "except", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], ep[YT_PATH_MAX];
	yaml_node_item_t *it;
	yaml_node_t *cn, *ex, *e;
	size_t cnt;
	int err;

	err = yt_check_fields(c, n, path, fields);
	if (!err)
		err = yt_require(c, n, path, "cidr");
	if (err)
		return err;
	peer->has_ipblock = true;
	cn = yt_map_get(c, n, "cidr");
	yt_path(sub, "%s.cidr", path);
	if (!yt_scalar(cn) || cidr4_parse(yt_scalar(cn), false, &peer->cidr.addr, &peer->cidr.len))
		return yt_fail(c, cn, sub, "bad CIDR \"%s\"", yt_scalar(cn) ? yt_scalar(cn) : "");
	ex = yt_map_get(c, n, "except");
	if (!ex)
		return 0;
	yt_path(sub, "%s.except", path);
	err = yt_want_seq(c, ex, sub);
	if (err)
		return err;
	cnt = (size_t)(ex->data.sequence.items.top - ex->data.sequence.items.start);
	peer->except = calloc(cnt ? cnt : 1, sizeof(*peer->except));
	if (!peer->except)
		return -ENOMEM;
	for (it = ex->data.sequence.items.start; it < ex->data.sequence.items.top; it++) {
		struct cidr4 *x = &peer->except[peer->nexcept];

		e = yt_node(c, *it);
		yt_path(ep, "%s[%zu]", sub, peer->nexcept);
		if (!yt_scalar(e) || cidr4_parse(yt_scalar(e), false, &x->addr, &x->len))
			return yt_fail(c, e, ep, "bad CIDR \"%s\"", yt_scalar(e) ? yt_scalar(e) : "");
		if (!cidr4_contains(peer->cidr.addr, peer->cidr.len, x->addr, x->len) ||
		    x->len == peer->cidr.len)
			return yt_fail(c, e, ep, "%s is not strictly inside cidr %s", yt_scalar(e),
				       yt_scalar(cn));
		peer->nexcept++;
	}
	return 0;
}

static int parse_peer(struct parse_ctx *p, const yaml_node_t *n, const char *path,
		      struct np_peer *peer)
{
	static const char *const fields[] = { "podSelector", "namespaceSelector", "ipBlock",
					      NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_t *ps, *nss, *ib;
	int err;

	err = yt_check_fields(c, n, path, fields);
	if (err)
		return err;
	ps = yt_map_get(c, n, "podSelector");
	nss = yt_map_get(c, n, "namespaceSelector");
	ib = yt_map_get(c, n, "ipBlock");
	if (!ps && !nss && !ib)
		return yt_fail(c, n, path,
			       "a peer needs podSelector, namespaceSelector or ipBlock");
	if (ib && (ps || nss))
		return yt_fail(c, ib, yt_path(sub, "%s.ipBlock", path),
			       "ipBlock cannot be combined with podSelector or namespaceSelector");
	if (ib)
		return parse_ipblock(p, ib, yt_path(sub, "%s.ipBlock", path), peer);
	if (ps) {
		peer->has_pod_sel = true;
		err = selector_parse(c, ps, yt_path(sub, "%s.podSelector", path), &peer->pod_sel);
		if (err)
			return err;
	}
	if (nss) {
		peer->has_ns_sel = true;
		err = selector_parse(c, nss, yt_path(sub, "%s.namespaceSelector", path),
				     &peer->ns_sel);
	}
	return err;
}

static int parse_port(struct parse_ctx *p, const yaml_node_t *n, const char *path,
		      struct np_port *pt)
{
	static const char *const fields[] = { "protocol", "port", "endPort", NULL };
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *pn, *en, *prn;
	char sub[YT_PATH_MAX];
	unsigned long v;
	const char *s;
	int err;

	err = yt_check_fields(c, n, path, fields);
	if (err)
		return err;
	pt->proto = IPPROTO_TCP;
	prn = yt_map_get(c, n, "protocol");
	if (prn && (!yt_scalar(prn) || proto_parse(yt_scalar(prn), false, &pt->proto)))
		return yt_fail(c, prn, yt_path(sub, "%s.protocol", path),
			       "unknown protocol \"%s\" (TCP, UDP or SCTP)",
			       yt_scalar(prn) ? yt_scalar(prn) : "");
	pn = yt_map_get(c, n, "port");
	en = yt_map_get(c, n, "endPort");
	if (!pn) {
		if (en)
			return yt_fail(c, en, yt_path(sub, "%s.endPort", path),
				       "endPort needs a numeric port");
		pt->any_port = true;
		return 0;
	}
	yt_path(sub, "%s.port", path);
	s = yt_scalar(pn);
	if (!s)
		return yt_fail(c, pn, sub, "expected a port number or name");
	if (yt_is_plain(pn) && s[0] >= '0' && s[0] <= '9') {
		err = yt_uint(c, pn, sub, 1, 65535, &v);
		if (err)
			return err;
		pt->port = pt->end_port = (uint16_t)v;
	} else {
		if (!k8s_port_name_valid(s))
			return yt_fail(c, pn, sub, "\"%s\" is not a valid port name (IANA_SVC_NAME)",
				       s);
		strcpy(pt->name, s);
		if (en)
			return yt_fail(c, en, yt_path(sub, "%s.endPort", path),
				       "endPort needs a numeric port, not a named one");
		return 0;
	}
	if (!en)
		return 0;
	yt_path(sub, "%s.endPort", path);
	err = yt_uint(c, en, sub, 1, 65535, &v);
	if (err)
		return err;
	if (v < pt->port)
		return yt_fail(c, en, sub, "endPort %lu is below port %u", v, pt->port);
	pt->end_port = (uint16_t)v;
	return 0;
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static int parse_rule(struct parse_ctx *p, const yaml_node_t *n, const char *path, int dir,
		      struct np_rule *r)
{
	const char *const fields[] = { peer_keys[dir], "ports", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], ip[YT_PATH_MAX];
	yaml_node_item_t *it;
	yaml_node_t *peers, *ports;
	int err;

	r->line = yt_line(n);
	if (yt_is_null(n))
		return 0; /* "- " is the empty rule */
	err = yt_check_fields(c, n, path, fields);
	if (err)
		return err;
	peers = yt_map_get(c, n, peer_keys[dir]);
	if (peers) {
		yt_path(sub, "%s.%s", path, peer_keys[dir]);
		err = yt_want_seq(c, peers, sub);
		if (err)
			return err;
		r->peers = calloc(seq_len(peers) + 1, sizeof(*r->peers));
		if (!r->peers)
			return -ENOMEM;
		for (it = peers->data.sequence.items.start; it < peers->data.sequence.items.top;
		     it++) {
			r->npeers++;
			yt_path(ip, "%s[%zu]", sub, r->npeers - 1);
			err = parse_peer(p, yt_node(c, *it), ip, &r->peers[r->npeers - 1]);
			if (err)
				return err;
		}
	}
	ports = yt_map_get(c, n, "ports");
	if (ports) {
		yt_path(sub, "%s.ports", path);
		err = yt_want_seq(c, ports, sub);
		if (err)
			return err;
		r->ports = calloc(seq_len(ports) + 1, sizeof(*r->ports));
		if (!r->ports)
			return -ENOMEM;
		for (it = ports->data.sequence.items.start; it < ports->data.sequence.items.top;
		     it++) {
			err = parse_port(p, yt_node(c, *it), yt_path(ip, "%s[%zu]", sub, r->nports),
					 &r->ports[r->nports]);
			if (err)
				return err;
			r->nports++;
		}
	}
	return 0;
}

static int parse_rules(struct parse_ctx *p, const yaml_node_t *spec, int dir,
		       struct m_policy *pol)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *n = yt_map_get(c, spec, dir_names[dir]);
	char path[YT_PATH_MAX], ip[YT_PATH_MAX];
	yaml_node_item_t *it;
	int err;

	if (!n)
		return 0;
	yt_path(path, "spec.%s", dir_names[dir]);
	err = yt_want_seq(c, n, path);
	if (err)
		return err;
	pol->rules[dir] = calloc(seq_len(n) + 1, sizeof(*pol->rules[dir]));
	if (!pol->rules[dir])
		return -ENOMEM;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		pol->nrules[dir]++;
		yt_path(ip, "%s[%zu]", path, pol->nrules[dir] - 1);
		err = parse_rule(p, yt_node(c, *it), ip, dir,
				 &pol->rules[dir][pol->nrules[dir] - 1]);
		if (err)
			return err;
	}
	return 0;
}

static int parse_policy_types(struct parse_ctx *p, const yaml_node_t *spec,
			      struct m_policy *pol)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *n = yt_map_get(c, spec, "policyTypes"), *t;
	char sub[YT_PATH_MAX];
	yaml_node_item_t *it;
	size_t i = 0;
	int err;

	if (n) {
		err = yt_want_seq(c, n, "spec.policyTypes");
		if (err)
			return err;
		for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
			t = yt_node(c, *it);
			yt_path(sub, "spec.policyTypes[%zu]", i++);
			if (yt_scalar(t) && !strcmp(yt_scalar(t), "Ingress"))
				pol->isolates[DIR_INGRESS] = true;
			else if (yt_scalar(t) && !strcmp(yt_scalar(t), "Egress"))
				pol->isolates[DIR_EGRESS] = true;
			else
				return yt_fail(c, t, sub,
					       "unknown policy type \"%s\" (Ingress, Egress)",
					       yt_scalar(t) ? yt_scalar(t) : "");
		}
	}
	if (i)
		return 0;
	/* upstream defaulting: Ingress always, Egress when there are egress rules */
	pol->isolates[DIR_INGRESS] = true;
	pol->isolates[DIR_EGRESS] = pol->nrules[DIR_EGRESS] > 0;
	return 0;
}

int netpol_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	static const char *const fields[] = { "podSelector", "policyTypes", "ingress", "egress",
					      NULL };
	const struct yt_ctx *c = &p->yt;
	struct cluster_model *m = p->m;
	struct m_policy *pol;
	yaml_node_t *spec, *ps;
	size_t i;
	int err;

	pol = policy_append(m);
	if (!pol)
		return -ENOMEM;
	pol->kind = POLICY_KIND_K8S;
	pol->file = c->file;
	pol->line = yt_line(root);
	err = k8s_metadata_parse(p, root, pol->name, sizeof(pol->name), pol->ns, sizeof(pol->ns),
				 NULL);
	if (err)
		return err;
	for (i = 0; i + 1 < m->npolicies; i++)
		if (m->policies[i]->kind == pol->kind && !strcmp(m->policies[i]->ns, pol->ns) &&
		    !strcmp(m->policies[i]->name, pol->name))
			return yt_fail(c, root, "metadata.name",
				       "duplicate NetworkPolicy \"%s/%s\" (first at line %d)",
				       pol->ns, pol->name, m->policies[i]->line);
	spec = yt_map_get(c, root, "spec");
	if (spec) {
		err = yt_check_fields(c, spec, "spec", fields);
		if (err)
			return err;
		ps = yt_map_get(c, spec, "podSelector");
		if (ps) {
			err = selector_parse(c, ps, "spec.podSelector", &pol->pod_sel);
			if (err)
				return err;
		}
		err = parse_rules(p, spec, DIR_INGRESS, pol);
		if (!err)
			err = parse_rules(p, spec, DIR_EGRESS, pol);
		if (err)
			return err;
	}
	return parse_policy_types(p, spec, pol);
}

struct m_policy *policy_append(struct cluster_model *m)
{
	struct m_policy **v, *pol;

	v = realloc(m->policies, (m->npolicies + 1) * sizeof(*v));
	if (!v)
		return NULL;
	m->policies = v;
	pol = calloc(1, sizeof(*pol));
	if (!pol)
		return NULL;
	v[m->npolicies++] = pol;
	return pol;
}

void policy_free(struct m_policy *pol)
{
	struct np_rule *r;
	size_t i, j;
	int dir;

	if (!pol)
		return;
	cnp_policy_free(pol->cnp);
	selector_free(&pol->pod_sel);
	for (dir = 0; dir < DIR_MAX; dir++) {
		for (i = 0; i < pol->nrules[dir]; i++) {
			r = &pol->rules[dir][i];
			for (j = 0; j < r->npeers; j++) {
				selector_free(&r->peers[j].pod_sel);
				selector_free(&r->peers[j].ns_sel);
				free(r->peers[j].except);
			}
			free(r->peers);
			free(r->ports);
		}
		free(pol->rules[dir]);
	}
	free(pol);
}

/* ---- compilation ----------------------------------------------------------------------- */

bool netpol_selects(const struct cluster_model *m, const struct m_policy *pol,
		    const struct m_pod *pod)
{
	return pol->kind == POLICY_KIND_K8S && !pod->host_network && !strcmp(pol->ns, pod->ns) &&
	       selector_matches(&pol->pod_sel, &pod->labels);
}

int netpol_collect_cidrs(const struct m_policy *pol, struct cidr_table *t)
{
	const struct np_peer *peer;
	size_t i, j, k;
	int dir, err;

	for (dir = 0; dir < DIR_MAX; dir++) {
		for (i = 0; i < pol->nrules[dir]; i++) {
			for (j = 0; j < pol->rules[dir][i].npeers; j++) {
				peer = &pol->rules[dir][i].peers[j];
				if (!peer->has_ipblock)
					continue;
				err = cidr_table_add(t, peer->cidr);
				for (k = 0; !err && k < peer->nexcept; k++)
					err = cidr_table_add(t, peer->except[k]);
				if (err)
					return err;
			}
		}
	}
	return 0;
}

/* True if a selector peer selects pod q (both selectors ANDed; no namespaceSelector means
 * the policy's own namespace). */
static bool peer_selects_pod(const struct cluster_model *m, const struct m_policy *pol,
			     const struct np_peer *peer, const struct m_pod *q)
{
	const struct m_namespace *ns;

	if (peer->has_ipblock || q->host_network)
		return false;
	if (peer->has_ns_sel) {
		ns = cluster_find_namespace(m, q->ns);
		if (!ns || !selector_matches(&peer->ns_sel, &ns->labels))
			return false;
	} else if (strcmp(q->ns, pol->ns)) {
		return false;
	}
	return !peer->has_pod_sel || selector_matches(&peer->pod_sel, &q->labels);
}

static int rule_peer_ids(const struct policy_compile_ctx *cc, const struct m_policy *pol,
			 const struct np_rule *r, struct id_set *ids)
{
	const struct np_peer *peer;
	size_t i, j;
	int err;

	if (!r->npeers)
		return id_set_add(ids, IDENTITY_UNKNOWN); /* every peer, in or out of cluster */
	for (i = 0; i < r->npeers; i++) {
		peer = &r->peers[i];
		if (peer->has_ipblock) {
			err = cidr_table_ids(cc->cidrs, peer->cidr, peer->except, peer->nexcept,
					     ids);
			if (err)
				return err;
			continue;
		}
		for (j = 0; j < cc->m->npods; j++) {
			if (!peer_selects_pod(cc->m, pol, peer, &cc->m->pods[j]))
				continue;
			err = id_set_add(ids, cc->m->pods[j].identity);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Adds (identity, proto, port) for every container port of q named like pt. */
static int add_named(struct policy_compile_ctx *cc, const struct np_port *pt,
		     const struct m_pod *q, uint32_t ep_id, int dir, uint32_t identity,
		     uint32_t rule_id)
{
	size_t k;
	int err;

	for (k = 0; k < q->nports; k++) {
		if (q->ports[k].proto != pt->proto || strcmp(q->ports[k].name, pt->name))
			continue;
		err = polb_add(cc->pb, ep_id, (uint8_t)dir, identity, pt->proto, q->ports[k].port,
			       16, 0, rule_id);
		if (err)
			return err;
	}
	return 0;
}

/* Named egress ports resolve against the peer pods the rule selects (all pods if none). */
static int egress_named(struct policy_compile_ctx *cc, const struct m_policy *pol,
			const struct np_rule *r, const struct np_port *pt, uint32_t ep_id,
			uint32_t rule_id)
{
	const struct m_pod *q;
	size_t i, j;
	int err;

	for (j = 0; j < cc->m->npods; j++) {
		q = &cc->m->pods[j];
		if (!r->npeers) {
			err = add_named(cc, pt, q, ep_id, DIR_EGRESS, IDENTITY_UNKNOWN, rule_id);
			if (err)
				return err;
			continue;
		}
		for (i = 0; i < r->npeers; i++) {
			if (!peer_selects_pod(cc->m, pol, &r->peers[i], q))
				continue;
			err = add_named(cc, pt, q, ep_id, DIR_EGRESS, q->identity, rule_id);
			if (err)
				return err;
			break;
		}
	}
	return 0;
}

static int compile_rule(struct policy_compile_ctx *cc, const struct m_policy *pol,
			const struct np_rule *r, int dir, const struct m_pod *pod, uint32_t ep_id,
			uint32_t rule_id)
{
	struct id_set ids = { 0 };
	const struct np_port *pt;
	size_t i, k;
	int err;

	err = rule_peer_ids(cc, pol, r, &ids);
	if (err)
		goto out;
	for (i = 0; !r->nports && i < ids.n; i++) {
		err = polb_add(cc->pb, ep_id, (uint8_t)dir, ids.v[i], POLB_ANY_PROTO, 0, 0, 0,
			       rule_id);
		if (err)
			goto out;
	}
	for (k = 0; k < r->nports; k++) {
		pt = &r->ports[k];
		if (pt->name[0] && dir == DIR_EGRESS) {
			err = egress_named(cc, pol, r, pt, ep_id, rule_id);
			if (err)
				goto out;
			continue;
		}
		for (i = 0; i < ids.n; i++) {
			if (pt->name[0])
				err = add_named(cc, pt, pod, ep_id, dir, ids.v[i], rule_id);
			else if (pt->any_port)
				err = polb_add(cc->pb, ep_id, (uint8_t)dir, ids.v[i], pt->proto, 0,
					       0, 0, rule_id);
			else
				err = polb_add_range(cc->pb, ep_id, (uint8_t)dir, ids.v[i],
						     pt->proto, pt->port, pt->end_port, 0, rule_id);
			if (err)
				goto out;
		}
	}
out:
	free(ids.v);
	return err;
}

int netpol_compile_endpoint(struct policy_compile_ctx *cc, const struct m_policy *pol,
			    const struct m_pod *pod, uint32_t ep_id, uint32_t *ep_flags)
{
	char name[MODEL_NAME_MAX + 96];
	uint32_t rule_id;
	size_t i;
	int dir, err;

	if (!netpol_selects(cc->m, pol, pod))
		return 0;
	for (dir = 0; dir < DIR_MAX; dir++) {
		if (!pol->isolates[dir])
			continue;
		*ep_flags |= dir == DIR_INGRESS ? EP_F_INGRESS_ENFORCED : EP_F_EGRESS_ENFORCED;
		for (i = 0; i < pol->nrules[dir]; i++) {
			snprintf(name, sizeof(name), "%s/%s %s[%zu]", pol->ns, pol->name,
				 dir_names[dir], i);
			err = polb_rule_id(cc->pb, name, &rule_id);
			if (!err)
				err = compile_rule(cc, pol, &pol->rules[dir][i], dir, pod, ep_id,
						   rule_id);
			if (err)
				return err;
		}
	}
	return 0;
}
