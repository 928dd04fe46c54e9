/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy (cilium.io/v2): parsing and
 * compilation into policy map entries, per Cilium's semantics (docs/POLICY.md):
 *
 * - `spec` and/or `specs`: each Rule has its own endpointSelector, sections and
 *   enableDefaultDeny. A CNP's endpointSelector picks pods of its namespace only.
 * - Peer fields of one rule (endpoints, CIDRs, CIDR sets, entities) are alternatives; the L4
 *   part (toPorts, icmps) is ANDed with them. A rule with only an L4 part admits every peer;
 *   an empty rule admits nothing (it only turns default deny on).
 * - Endpoint selectors of a CNP without a namespace key are limited to the policy's
 *   namespace (unless they select on namespace labels); in a CCNP to pods of any namespace.
 * - Deny sections compile to POLICY_F_DENY entries; policy_entries_normalize gives them
 *   precedence over every allow.
 * - enableDefaultDeny defaults to true for a direction with rules (allow or deny).
 */
#include "policy_cilium.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"

#define NS_KEY		 "k8s:io.kubernetes.pod.namespace"
#define NS_LABELS_PREFIX "k8s:io.cilium.k8s.namespace.labels."
#define RESERVED_PREFIX	 "reserved:"

static const char *const section_names[CNP_SECTION_MAX] = {"ingress", "egress", "ingressDeny",
							   "egressDeny"};

static int section_dir(int sec)
{
	return sec == CNP_INGRESS || sec == CNP_INGRESS_DENY ? DIR_INGRESS : DIR_EGRESS;
}

static bool section_deny(int sec)
{
	return sec == CNP_INGRESS_DENY || sec == CNP_EGRESS_DENY;
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* Like yt_map_get, but also returns a key whose value is null (so "present" is known). */
static yaml_node_t *map_get_raw(const struct yt_ctx *c, const yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p;
	yaml_node_t *k;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		k = yt_node(c, p->key);
		if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yt_node(c, p->value);
	}
	return NULL;
}

/* ---- names and warnings -------------------------------------------------------------------- */

const char *policy_kind_name(enum m_policy_kind kind)
{
	switch (kind) {
	case POLICY_KIND_K8S:
		return "NetworkPolicy";
	case POLICY_KIND_CNP:
		return "CiliumNetworkPolicy";
	case POLICY_KIND_CCNP:
		return "CiliumClusterwideNetworkPolicy";
	}
	return "?";
}

void policy_display_name(const struct m_policy *pol, char *buf, size_t size)
{
	switch (pol->kind) {
	case POLICY_KIND_CNP:
		snprintf(buf, size, "cnp:%s/%s", pol->ns, pol->name);
		break;
	case POLICY_KIND_CCNP:
		snprintf(buf, size, "ccnp:%s", pol->name);
		break;
	default:
		snprintf(buf, size, "%s/%s", pol->ns, pol->name);
		break;
	}
}

size_t policy_warning_count(const struct m_policy *pol)
{
	return pol->cnp ? pol->cnp->nwarnings : 0;
}

const char *policy_warning(const struct m_policy *pol, size_t i)
{
	return pol->cnp && i < pol->cnp->nwarnings ? pol->cnp->warnings[i] : NULL;
}

static int warn(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n, const char *path,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int warn(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n, const char *path,
		const char *fmt, ...)
{
	char reason[512], **v;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	v = realloc(cnp->warnings, (cnp->nwarnings + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	cnp->warnings = v;
	if (asprintf(&v[cnp->nwarnings], "%s:%d: %s: %s", p->yt.file, yt_line(n), path, reason) < 0)
		return -ENOMEM;
	cnp->nwarnings++;
	return 0;
}

/* ---- freeing ------------------------------------------------------------------------------- */

static void rule_free(struct cnp_rule *r)
{
	size_t i;

	for (i = 0; i < r->neps; i++)
		selector_free(&r->eps[i]);
	free(r->eps);
	for (i = 0; i < r->ncidrs; i++)
		free(r->cidrs[i].except);
	free(r->cidrs);
	free(r->ports);
	free(r->icmps);
}

void cnp_policy_free(struct cnp_policy *cnp)
{
	struct cnp_spec *sp;
	size_t i, j;
	int sec;

	if (!cnp)
		return;
	for (i = 0; i < cnp->nspecs; i++) {
		sp = &cnp->specs[i];
		selector_free(&sp->ep_sel);
		for (sec = 0; sec < CNP_SECTION_MAX; sec++) {
			for (j = 0; j < sp->nrules[sec]; j++)
				rule_free(&sp->rules[sec][j]);
			free(sp->rules[sec]);
		}
	}
	free(cnp->specs);
	for (i = 0; i < cnp->nwarnings; i++)
		free(cnp->warnings[i]);
	free(cnp->warnings);
	free(cnp);
}

/* ---- parsing ------------------------------------------------------------------------------- */

/* Rewrites a Cilium selector key into the identity label form; -EINVAL for a label source
 * the model does not know. */
static int norm_key(const char *key, char **out)
{
	const char *colon = strchr(key, ':');
	const char *rest = key;

	if (colon) {
		size_t n = (size_t)(colon - key);

		if ((n == 3 && !strncmp(key, "k8s", 3)) || (n == 3 && !strncmp(key, "any", 3)))
			rest = colon + 1;
		else if (n == 8 && !strncmp(key, "reserved", 8))
			return (*out = strdup(key)) ? 0 : -ENOMEM;
		else
			return -EINVAL;
	}
	if (!*rest)
		return -EINVAL;
	return asprintf(out, "k8s:%s", rest) < 0 ? -ENOMEM : 0;
}

static int parse_selector(struct parse_ctx *p, const yaml_node_t *n, const char *path,
			  struct selector *sel)
{
	const struct yt_ctx *c = &p->yt;
	char *k;
	size_t i;
	int err;

	err = selector_parse(c, n, path, sel);
	if (err)
		return err;
	for (i = 0; i < sel->match.n; i++) {
		err = norm_key(sel->match.v[i].key, &k);
		if (err == -EINVAL)
			return yt_fail(c, n, path,
				       "label key \"%s\": unsupported source (use k8s:, any:, "
				       "reserved: or no prefix)",
				       sel->match.v[i].key);
		if (err)
			return err;
		free(sel->match.v[i].key);
		sel->match.v[i].key = k;
	}
	for (i = 0; i < sel->nreqs; i++) {
		err = norm_key(sel->reqs[i].key, &k);
		if (err == -EINVAL)
			return yt_fail(c, n, path,
				       "label key \"%s\": unsupported source (use k8s:, any:, "
				       "reserved: or no prefix)",
				       sel->reqs[i].key);
		if (err)
			return err;
		free(sel->reqs[i].key);
		sel->reqs[i].key = k;
	}
	labelset_sort(&sel->match);
	return 0;
}

static int parse_cidr_str(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
			  const char *path, struct cidr4 *out, bool *skip)
{
	const struct yt_ctx *c = &p->yt;
	const char *s = yt_scalar(n);

	*skip = false;
	if (!s || !*s)
		return yt_fail(c, n, path, "expected a CIDR string");
	if (strchr(s, ':')) {
		*skip = true;
		return warn(p, cnp, n, path, "IPv6 CIDR %s ignored (IPv4 only)", s);
	}
	if (strchr(s, '/') ? cidr4_parse(s, false, &out->addr, &out->len)
			   : ip4_parse(s, &out->addr))
		return yt_fail(c, n, path, "bad CIDR \"%s\"", s);
	if (!strchr(s, '/'))
		out->len = 32;
	return 0;
}

static int add_cidr(struct cnp_rule *r, struct cidr4 c)
{
	struct cnp_cidr *v = realloc(r->cidrs, (r->ncidrs + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	r->cidrs = v;
	memset(&v[r->ncidrs], 0, sizeof(v[0]));
	v[r->ncidrs++].cidr = c;
	return 0;
}

static int parse_cidrs(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
		       const char *path, struct cnp_rule *r)
{
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_item_t *it;
	struct cidr4 cidr;
	size_t i = 0;
	bool skip;
	int err;

	err = yt_want_seq(c, n, path);
	for (it = n->data.sequence.items.start; !err && it < n->data.sequence.items.top; it++) {
		err = parse_cidr_str(p, cnp, yt_node(c, *it), yt_path(sub, "%s[%zu]", path, i++),
				     &cidr, &skip);
		if (!err && !skip)
			err = add_cidr(r, cidr);
	}
	return err;
}

static int parse_cidr_set(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
			  const char *path, struct cnp_rule *r)
{
	static const char *const fields[] = {"cidr", "except", "cidrGroupRef", "cidrGroupSelector",
					     NULL};
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], ep[YT_PATH_MAX];
	yaml_node_item_t *it, *jt;
	yaml_node_t *e, *cn, *ex;
	struct cnp_cidr *cs;
	struct cidr4 x;
	size_t i = 0;
	bool skip;
	int err;

	err = yt_want_seq(c, n, path);
	if (err)
		return err;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
		e = yt_node(c, *it);
		yt_path(sub, "%s[%zu]", path, i);
		err = yt_check_fields(c, e, sub, fields);
		if (err)
			return err;
		if (map_get_raw(c, e, "cidrGroupRef") || map_get_raw(c, e, "cidrGroupSelector"))
			return yt_fail(c, e, sub,
				       "cidrGroupRef/cidrGroupSelector (CiliumCIDRGroup) "
				       "are not supported");
		err = yt_require(c, e, sub, "cidr");
		if (err)
			return err;
		cn = yt_map_get(c, e, "cidr");
		yt_path(ep, "%s.cidr", sub);
		err = parse_cidr_str(p, cnp, cn, ep, &x, &skip);
		if (err)
			return err;
		if (skip)
			continue;
		err = add_cidr(r, x);
		if (err)
			return err;
		cs = &r->cidrs[r->ncidrs - 1];
		ex = yt_map_get(c, e, "except");
		if (!ex)
			continue;
		yt_path(ep, "%s.except", sub);
		err = yt_want_seq(c, ex, ep);
		if (err)
			return err;
		cs->except = calloc(seq_len(ex) + 1, sizeof(*cs->except));
		if (!cs->except)
			return -ENOMEM;
		for (jt = ex->data.sequence.items.start; jt < ex->data.sequence.items.top; jt++) {
			char xp[YT_PATH_MAX];
			yaml_node_t *xn = yt_node(c, *jt);

			yt_path(xp, "%s[%zu]", ep, (size_t)(jt - ex->data.sequence.items.start));
			err = parse_cidr_str(p, cnp, xn, xp, &x, &skip);
			if (err)
				return err;
			if (skip)
				continue;
			if (!cidr4_contains(cs->cidr.addr, cs->cidr.len, x.addr, x.len))
				return yt_fail(c, xn, xp, "%s is not inside cidr %s", yt_scalar(xn),
					       yt_scalar(cn));
			cs->except[cs->nexcept++] = x;
		}
	}
	return 0;
}

static int parse_entities(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
			  const char *path, uint32_t *out)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {
		{"host", CNP_ENT_HOST},
		{"remote-node", CNP_ENT_REMOTE_NODE},
		{"world", CNP_ENT_WORLD},
		{"world-ipv4", CNP_ENT_WORLD},
		{"world-ipv6", 0},
		{"cluster", CNP_ENT_CLUSTER},
		{"all", CNP_ENT_ALL},
		{"health", CNP_ENT_HEALTH},
		{"init", CNP_ENT_INIT},
		{"kube-apiserver", CNP_ENT_KUBE_APISERVER},
		{"unmanaged", CNP_ENT_UNMANAGED},
	};
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_item_t *it;
	yaml_node_t *e;
	const char *s;
	size_t i = 0, k;
	int err;

	err = yt_want_seq(c, n, path);
	for (it = n->data.sequence.items.start; !err && it < n->data.sequence.items.top; it++) {
		e = yt_node(c, *it);
		s = yt_scalar(e);
		yt_path(sub, "%s[%zu]", path, i++);
		for (k = 0; s && k < sizeof(names) / sizeof(names[0]); k++)
			if (!strcmp(s, names[k].name))
				break;
		if (!s || k == sizeof(names) / sizeof(names[0]))
			return yt_fail(
				c, e, sub,
				"unknown entity \"%s\" (world, world-ipv4, world-ipv6, cluster, "
				"host, remote-node, kube-apiserver, health, init, unmanaged, "
				"all)",
				s ? s : "");
		if (!names[k].bit)
			err = warn(p, cnp, e, sub, "entity %s ignored (IPv4 only)", s);
		*out |= names[k].bit;
	}
	return err;
}

static int parse_proto(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		       uint8_t *proto)
{
	const char *s = yt_scalar(n);

	*proto = CNP_PROTO_ANY;
	if (!n)
		return 0;
	if (s && !strcmp(s, "ANY"))
		return 0;
	if (s && !proto_parse(s, false, proto))
		return 0;
	return yt_fail(c, n, path, "unknown protocol \"%s\" (TCP, UDP, SCTP or ANY)", s ? s : "");
}

static int parse_port(struct parse_ctx *p, const yaml_node_t *n, const char *path,
		      struct cnp_port *pt)
{
	static const char *const fields[] = {"port", "endPort", "protocol", NULL};
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *pn, *en;
	char sub[YT_PATH_MAX];
	unsigned long v;
	const char *s;
	char *end;
	int err;

	err = yt_check_fields(c, n, path, fields);
	if (!err)
		err = parse_proto(c, yt_map_get(c, n, "protocol"),
				  yt_path(sub, "%s.protocol", path), &pt->proto);
	if (err)
		return err;
	pn = yt_map_get(c, n, "port");
	en = yt_map_get(c, n, "endPort");
	yt_path(sub, "%s.port", path);
	s = yt_scalar(pn);
	if (pn && !s)
		return yt_fail(c, pn, sub, "expected a port number or name");
	if (s && s[0] >= '0' && s[0] <= '9') {
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno || *end || v > 65535)
			return yt_fail(c, pn, sub, "\"%s\" is not a port number (0-65535)", s);
		pt->port = pt->end_port = (uint16_t)v;
	} else if (s) {
		if (!k8s_port_name_valid(s))
			return yt_fail(c, pn, sub,
				       "\"%s\" is not a valid port name (IANA_SVC_NAME)", s);
		strcpy(pt->name, s);
	}
	if (!en)
		return 0;
	yt_path(sub, "%s.endPort", path);
	if (!pt->port)
		return yt_fail(c, en, sub, "endPort needs a numeric, non-zero port");
	err = yt_uint(c, en, sub, 0, 65535, &v);
	if (err)
		return err;
	if (v && v < pt->port)
		return yt_fail(c, en, sub, "endPort %lu is below port %u", v, pt->port);
	if (v)
		pt->end_port = (uint16_t)v;
	return 0;
}

static int parse_to_ports(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
			  const char *path, bool deny, struct cnp_rule *r)
{
	static const char *const fields[] = {
		"ports",    "rules", "originatingTLS", "terminatingTLS", "serverNames",
		"listener", NULL};
	static const char *const l7_fields[] = {"rules",       "originatingTLS", "terminatingTLS",
						"serverNames", "listener",	 NULL};
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], pp[YT_PATH_MAX], ip[YT_PATH_MAX];
	yaml_node_item_t *it, *jt;
	yaml_node_t *e, *ports, *l7;
	struct cnp_port *v;
	size_t i = 0, k;
	int err;

	err = yt_want_seq(c, n, path);
	if (err)
		return err;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
		e = yt_node(c, *it);
		yt_path(sub, "%s[%zu]", path, i);
		err = yt_check_fields(c, e, sub, fields);
		if (err)
			return err;
		for (k = 0; l7_fields[k]; k++) {
			l7 = yt_map_get(c, e, l7_fields[k]);
			if (!l7)
				continue;
			yt_path(pp, "%s.%s", sub, l7_fields[k]);
			if (deny)
				return yt_fail(c, l7, pp, "L7 rules are not allowed in deny rules");
			r->l7 = true;
			err = warn(p, cnp, l7, pp,
				   "L7 rules are not enforced yet; L3/L4 part applied");
			if (err)
				return err;
		}
		ports = yt_map_get(c, e, "ports");
		yt_path(pp, "%s.ports", sub);
		if (!ports || (ports->type == YAML_SEQUENCE_NODE && !seq_len(ports)))
			return yt_fail(c, ports ? ports : e, pp,
				       "required: a toPorts entry needs at least one port");
		err = yt_want_seq(c, ports, pp);
		if (err)
			return err;
		v = realloc(r->ports, (r->nports + seq_len(ports)) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->ports = v;
		for (jt = ports->data.sequence.items.start; jt < ports->data.sequence.items.top;
		     jt++) {
			memset(&r->ports[r->nports], 0, sizeof(r->ports[0]));
			yt_path(ip, "%s[%zu]", pp, (size_t)(jt - ports->data.sequence.items.start));
			err = parse_port(p, yt_node(c, *jt), ip, &r->ports[r->nports]);
			if (err)
				return err;
			r->nports++;
		}
	}
	return 0;
}

static const struct {
	const char *name;
	uint8_t v4, v6; /* 255: none in that family */
} icmp_names[] = {
	{"EchoReply", 0, 129},
	{"DestinationUnreachable", 3, 1},
	{"Redirect", 5, 137},
	{"EchoRequest", 8, 128},
	{"Echo", 8, 128},
	{"RouterAdvertisement", 9, 134},
	{"RouterSolicitation", 10, 133},
	{"TimeExceeded", 11, 3},
	{"ParameterProblem", 12, 4},
	{"PacketTooBig", 255, 2},
	{"NeighborSolicitation", 255, 135},
	{"NeighborAdvertisement", 255, 136},
};

static int parse_icmp_field(struct parse_ctx *p, const yaml_node_t *n, const char *path,
			    struct cnp_icmp *out)
{
	static const char *const fields[] = {"type", "family", NULL};
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *tn, *fn;
	char sub[YT_PATH_MAX];
	unsigned long v;
	const char *s;
	bool v6 = false;
	size_t k;
	int err;

	err = yt_check_fields(c, n, path, fields);
	if (!err)
		err = yt_require(c, n, path, "type");
	if (err)
		return err;
	fn = yt_map_get(c, n, "family");
	if (fn) {
		s = yt_scalar(fn);
		if (s && !strcmp(s, "IPv6"))
			v6 = true;
		else if (!s || strcmp(s, "IPv4"))
			return yt_fail(c, fn, yt_path(sub, "%s.family", path),
				       "unknown family \"%s\" (IPv4 or IPv6)", s ? s : "");
	}
	out->proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	tn = yt_map_get(c, n, "type");
	yt_path(sub, "%s.type", path);
	s = yt_scalar(tn);
	if (s && s[0] >= '0' && s[0] <= '9') {
		err = yt_uint(c, tn, sub, 0, 255, &v);
		if (!err)
			out->type = (uint8_t)v;
		return err;
	}
	for (k = 0; s && k < sizeof(icmp_names) / sizeof(icmp_names[0]); k++) {
		if (strcmp(s, icmp_names[k].name))
			continue;
		if ((v6 ? icmp_names[k].v6 : icmp_names[k].v4) == 255)
			break;
		out->type = v6 ? icmp_names[k].v6 : icmp_names[k].v4;
		return 0;
	}
	return yt_fail(c, tn, sub, "unknown ICMP%s type \"%s\"", v6 ? "v6" : "", s ? s : "");
}

static int parse_icmps(struct parse_ctx *p, const yaml_node_t *n, const char *path,
		       struct cnp_rule *r)
{
	static const char *const fields[] = {"fields", NULL};
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], fp[YT_PATH_MAX], ip[YT_PATH_MAX];
	yaml_node_item_t *it, *jt;
	yaml_node_t *e, *fl;
	struct cnp_icmp *v;
	size_t i = 0;
	int err;

	err = yt_want_seq(c, n, path);
	if (err)
		return err;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
		e = yt_node(c, *it);
		yt_path(sub, "%s[%zu]", path, i);
		err = yt_check_fields(c, e, sub, fields);
		if (!err)
			err = yt_require(c, e, sub, "fields");
		if (err)
			return err;
		fl = yt_map_get(c, e, "fields");
		yt_path(fp, "%s.fields", sub);
		err = yt_want_seq(c, fl, fp);
		if (err)
			return err;
		v = realloc(r->icmps, (r->nicmps + seq_len(fl)) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->icmps = v;
		for (jt = fl->data.sequence.items.start; jt < fl->data.sequence.items.top; jt++) {
			yt_path(ip, "%s[%zu]", fp, (size_t)(jt - fl->data.sequence.items.start));
			err = parse_icmp_field(p, yt_node(c, *jt), ip, &r->icmps[r->nicmps]);
			if (err)
				return err;
			r->nicmps++;
		}
	}
	return 0;
}

static int parse_endpoints(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
			   const char *path, struct cnp_rule *r)
{
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_item_t *it;
	int err;

	err = yt_want_seq(c, n, path);
	if (err)
		return err;
	r->eps = calloc(seq_len(n) + 1, sizeof(*r->eps));
	if (!r->eps)
		return -ENOMEM;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yt_path(sub, "%s[%zu]", path, r->neps);
		err = parse_selector(p, yt_node(c, *it), sub, &r->eps[r->neps]);
		r->neps++;
		if (err)
			return err;
	}
	return 0;
}

static int parse_rule_entities(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
			       const char *path, struct cnp_rule *r)
{
	return parse_entities(p, cnp, n, path, &r->entities);
}

static int parse_rule(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
		      const char *path, int sec, struct cnp_rule *r)
{
	static const char *const in_fields[] = {
		"fromEndpoints", "fromRequires",   "fromCIDR",	"fromCIDRSet",
		"fromEntities",	 "fromGroups",	   "fromNodes", "toPorts",
		"icmps",	 "authentication", NULL};
	static const char *const eg_fields[] = {
		"toEndpoints", "toRequires",	 "toCIDR",   "toCIDRSet", "toEntities",
		"toServices",  "toFQDNs",	 "toGroups", "toNodes",	  "toPorts",
		"icmps",       "authentication", NULL};
	static const char *const unsupported[] = {
		"fromRequires", "toRequires", "fromGroups", "toGroups",	      "fromNodes",
		"toNodes",	"toServices", "toFQDNs",    "authentication", NULL};
	/* the peer fields: {from,to} + suffix */
	static const struct {
		const char *suffix;
		int (*parse)(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
			     const char *path, struct cnp_rule *r);
	} l3_fields[] = {
		{"Endpoints", parse_endpoints},
		{"CIDR", parse_cidrs},
		{"CIDRSet", parse_cidr_set},
		{"Entities", parse_rule_entities},
	};
	const bool in = section_dir(sec) == DIR_INGRESS;
	const char *pfx = in ? "from" : "to";
	const struct yt_ctx *c = &p->yt;
	char key[32], sub[YT_PATH_MAX];
	yaml_node_t *f;
	size_t k;
	int err;

	r->line = yt_line(n);
	if (yt_is_null(n))
		return 0;
	err = yt_check_fields(c, n, path, in ? in_fields : eg_fields);
	if (err)
		return err;
	for (k = 0; unsupported[k]; k++) {
		f = map_get_raw(c, n, unsupported[k]);
		if (f)
			return yt_fail(c, f, yt_path(sub, "%s.%s", path, unsupported[k]),
				       "not supported by ciliate (policy would not be enforced as "
				       "written)");
	}
	for (k = 0; k < sizeof(l3_fields) / sizeof(l3_fields[0]); k++) {
		snprintf(key, sizeof(key), "%s%s", pfx, l3_fields[k].suffix);
		f = map_get_raw(c, n, key);
		if (!f)
			continue;
		r->has_l3 = true;
		if (yt_is_null(f))
			continue;
		err = l3_fields[k].parse(p, cnp, f, yt_path(sub, "%s.%s", path, key), r);
		if (err)
			return err;
	}
	f = yt_map_get(c, n, "toPorts");
	if (f) {
		err = parse_to_ports(p, cnp, f, yt_path(sub, "%s.toPorts", path), section_deny(sec),
				     r);
		if (err)
			return err;
	}
	f = yt_map_get(c, n, "icmps");
	if (f)
		return parse_icmps(p, f, yt_path(sub, "%s.icmps", path), r);
	return 0;
}

static int parse_default_deny(struct parse_ctx *p, const yaml_node_t *n, const char *path,
			      struct cnp_spec *sp)
{
	static const char *const fields[] = {"ingress", "egress", NULL};
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_t *v;
	bool b;
	int dir, err;

	err = yt_check_fields(c, n, path, fields);
	for (dir = 0; !err && dir < DIR_MAX; dir++) {
		v = yt_map_get(c, n, dir == DIR_INGRESS ? "ingress" : "egress");
		if (!v)
			continue;
		err = yt_bool(
			c, v,
			yt_path(sub, "%s.%s", path, dir == DIR_INGRESS ? "ingress" : "egress"), &b);
		sp->default_deny[dir] = b;
	}
	return err;
}

static int parse_spec(struct parse_ctx *p, struct cnp_policy *cnp, const yaml_node_t *n,
		      const char *path, struct cnp_spec *sp)
{
	static const char *const fields[] = {"endpointSelector",
					     "nodeSelector",
					     "ingress",
					     "ingressDeny",
					     "egress",
					     "egressDeny",
					     "labels",
					     "description",
					     "enableDefaultDeny",
					     "log",
					     NULL};
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], rp[YT_PATH_MAX];
	yaml_node_item_t *it;
	yaml_node_t *f;
	int sec, err;

	snprintf(sp->path, sizeof(sp->path), "%s", path);
	sp->line = yt_line(n);
	sp->default_deny[DIR_INGRESS] = sp->default_deny[DIR_EGRESS] = -1;
	err = yt_check_fields(c, n, path, fields);
	if (err)
		return err;
	f = map_get_raw(c, n, "nodeSelector");
	if (f)
		return yt_fail(c, f, yt_path(sub, "%s.nodeSelector", path),
			       "host policies (nodeSelector) are not supported");
	f = map_get_raw(c, n, "endpointSelector");
	if (!f) {
		/* Cilium's schema requires it; leniently, such a rule selects nothing */
		sp->selects_nothing = true;
		err = warn(p, cnp, n, yt_path(sub, "%s.endpointSelector", path),
			   "missing: this rule selects no endpoint");
	} else {
		err = parse_selector(p, f, yt_path(sub, "%s.endpointSelector", path), &sp->ep_sel);
	}
	if (err)
		return err;
	f = yt_map_get(c, n, "enableDefaultDeny");
	if (f) {
		err = parse_default_deny(p, f, yt_path(sub, "%s.enableDefaultDeny", path), sp);
		if (err)
			return err;
	}
	for (sec = 0; sec < CNP_SECTION_MAX; sec++) {
		f = yt_map_get(c, n, section_names[sec]);
		if (!f)
			continue;
		yt_path(sub, "%s.%s", path, section_names[sec]);
		err = yt_want_seq(c, f, sub);
		if (err)
			return err;
		sp->rules[sec] = calloc(seq_len(f) + 1, sizeof(*sp->rules[sec]));
		if (!sp->rules[sec])
			return -ENOMEM;
		for (it = f->data.sequence.items.start; it < f->data.sequence.items.top; it++) {
			yt_path(rp, "%s[%zu]", sub, sp->nrules[sec]);
			err = parse_rule(p, cnp, yt_node(c, *it), rp, sec,
					 &sp->rules[sec][sp->nrules[sec]]);
			sp->nrules[sec]++;
			if (err)
				return err;
		}
	}
	return 0;
}

int cnp_parse(struct parse_ctx *p, const yaml_node_t *root, bool clusterwide)
{
	const struct yt_ctx *c = &p->yt;
	struct cluster_model *m = p->m;
	struct m_policy *pol;
	struct cnp_policy *cnp;
	yaml_node_t *spec, *specs;
	yaml_node_item_t *it;
	char sub[YT_PATH_MAX];
	size_t i, n;
	int err;

	pol = policy_append(m);
	if (!pol)
		return -ENOMEM;
	pol->kind = clusterwide ? POLICY_KIND_CCNP : POLICY_KIND_CNP;
	pol->file = c->file;
	pol->line = yt_line(root);
	pol->cnp = cnp = calloc(1, sizeof(*cnp));
	if (!cnp)
		return -ENOMEM;
	err = k8s_metadata_parse(p, root, pol->name, sizeof(pol->name),
				 clusterwide ? NULL : pol->ns, sizeof(pol->ns), NULL);
	if (err)
		return err;
	for (i = 0; i + 1 < m->npolicies; i++)
		if (m->policies[i]->kind == pol->kind && !strcmp(m->policies[i]->ns, pol->ns) &&
		    !strcmp(m->policies[i]->name, pol->name))
			return yt_fail(c, root, "metadata.name",
				       "duplicate %s \"%s%s%s\" (first at "
				       "line %d)",
				       policy_kind_name(pol->kind), pol->ns, clusterwide ? "" : "/",
				       pol->name, m->policies[i]->line);
	spec = yt_map_get(c, root, "spec");
	specs = yt_map_get(c, root, "specs");
	if (!spec && !specs)
		return yt_fail(c, root, "spec", "required field missing (spec or specs)");
	if (specs) {
		err = yt_want_seq(c, specs, "specs");
		if (err)
			return err;
	}
	n = (spec ? 1 : 0) + (specs ? seq_len(specs) : 0);
	cnp->specs = calloc(n + 1, sizeof(*cnp->specs));
	if (!cnp->specs)
		return -ENOMEM;
	if (spec) {
		err = parse_spec(p, cnp, spec, "spec", &cnp->specs[cnp->nspecs++]);
		if (err)
			return err;
	}
	if (!specs)
		return 0;
	for (it = specs->data.sequence.items.start; it < specs->data.sequence.items.top; it++) {
		yt_path(sub, "specs[%zu]", (size_t)(it - specs->data.sequence.items.start));
		err = parse_spec(p, cnp, yt_node(c, *it), sub, &cnp->specs[cnp->nspecs++]);
		if (err)
			return err;
	}
	return 0;
}

/* ---- selection ----------------------------------------------------------------------------- */

static bool sel_has_key(const struct selector *sel, const char *key, bool prefix)
{
	size_t n = strlen(key), i;

	for (i = 0; i < sel->match.n; i++)
		if (prefix ? !strncmp(sel->match.v[i].key, key, n)
			   : !strcmp(sel->match.v[i].key, key))
			return true;
	for (i = 0; i < sel->nreqs; i++)
		if (prefix ? !strncmp(sel->reqs[i].key, key, n) : !strcmp(sel->reqs[i].key, key))
			return true;
	return false;
}

static const struct labelset *pod_labels(const struct cluster_model *m, const struct m_pod *pod)
{
	const struct m_identity *id = cluster_find_identity(m, pod->identity);

	return id ? &id->labels : NULL;
}

static bool spec_selects(const struct cluster_model *m, const struct m_policy *pol,
			 const struct cnp_spec *sp, const struct m_pod *pod)
{
	const struct labelset *ls;

	if (pod->host_network || sp->selects_nothing)
		return false;
	if (pol->kind == POLICY_KIND_CNP && strcmp(pol->ns, pod->ns))
		return false;
	ls = pod_labels(m, pod);
	return ls && selector_matches(&sp->ep_sel, ls);
}

bool cnp_selects(const struct cluster_model *m, const struct m_policy *pol,
		 const struct m_pod *pod)
{
	size_t i;

	if (pol->kind != POLICY_KIND_CNP && pol->kind != POLICY_KIND_CCNP)
		return false;
	for (i = 0; i < pol->cnp->nspecs; i++)
		if (spec_selects(m, pol, &pol->cnp->specs[i], pod))
			return true;
	return false;
}

bool policy_selects(const struct cluster_model *m, const struct m_policy *pol,
		    const struct m_pod *pod)
{
	return pol->kind == POLICY_KIND_K8S ? netpol_selects(m, pol, pod)
					    : cnp_selects(m, pol, pod);
}

int cnp_collect_cidrs(const struct m_policy *pol, struct cidr_table *t)
{
	const struct cnp_spec *sp;
	const struct cnp_rule *r;
	size_t i, j, k, x;
	int sec, err;

	if (!pol->cnp)
		return 0;
	for (i = 0; i < pol->cnp->nspecs; i++) {
		sp = &pol->cnp->specs[i];
		for (sec = 0; sec < CNP_SECTION_MAX; sec++) {
			for (j = 0; j < sp->nrules[sec]; j++) {
				r = &sp->rules[sec][j];
				for (k = 0; k < r->ncidrs; k++) {
					err = cidr_table_add(t, r->cidrs[k].cidr);
					for (x = 0; !err && x < r->cidrs[k].nexcept; x++)
						err = cidr_table_add(t, r->cidrs[k].except[x]);
					if (err)
						return err;
				}
			}
		}
	}
	return 0;
}

/* ---- compilation --------------------------------------------------------------------------- */

static const struct {
	const char *label;
	uint32_t id;
} reserved_ids[] = {
	{"reserved:host", IDENTITY_HOST},
	{"reserved:world", IDENTITY_WORLD},
	{"reserved:unmanaged", IDENTITY_UNMANAGED},
	{"reserved:health", IDENTITY_HEALTH},
	{"reserved:init", IDENTITY_INIT},
	{"reserved:remote-node", IDENTITY_REMOTE_NODE},
	{"reserved:kube-apiserver", IDENTITY_KUBE_APISERVER},
};

/* Pods' identities a peer selector picks (with the namespace rule of the policy kind), or
 * reserved identities for a selector on reserved: labels. */
static bool peer_sel_matches_labels(const struct m_policy *pol, const struct selector *sel,
				    const struct labelset *ls)
{
	const char *ns;

	if (!sel_has_key(sel, NS_KEY, false)) {
		ns = labelset_get(ls, NS_KEY);
		if (!ns)
			return false; /* CCNP: only pods (which carry a namespace) */
		if (pol->kind == POLICY_KIND_CNP && !sel_has_key(sel, NS_LABELS_PREFIX, true) &&
		    strcmp(ns, pol->ns))
			return false;
	}
	return selector_matches(sel, ls);
}

static int peer_sel_ids(const struct policy_compile_ctx *cc, const struct m_policy *pol,
			const struct selector *sel, struct id_set *ids)
{
	const struct cluster_model *m = cc->m;
	struct label l = {0};
	struct labelset ls = {&l, 1};
	size_t i;
	int err;

	if (sel_has_key(sel, RESERVED_PREFIX, true)) {
		for (i = 0; i < sizeof(reserved_ids) / sizeof(reserved_ids[0]); i++) {
			l.key = (char *)reserved_ids[i].label;
			l.value = (char *)"";
			if (!selector_matches(sel, &ls))
				continue;
			err = id_set_add(ids, reserved_ids[i].id);
			if (err)
				return err;
		}
		return 0;
	}
	for (i = 0; i < m->nidentities; i++) {
		if (!peer_sel_matches_labels(pol, sel, &m->identities[i].labels))
			continue;
		err = id_set_add(ids, m->identities[i].id);
		if (err)
			return err;
	}
	return 0;
}

static int entity_ids(const struct policy_compile_ctx *cc, uint32_t ent, struct id_set *ids)
{
	static const struct {
		uint32_t bit, id;
	} simple[] = {
		{CNP_ENT_HOST, IDENTITY_HOST},
		{CNP_ENT_REMOTE_NODE, IDENTITY_REMOTE_NODE},
		{CNP_ENT_WORLD, IDENTITY_WORLD},
		{CNP_ENT_HEALTH, IDENTITY_HEALTH},
		{CNP_ENT_INIT, IDENTITY_INIT},
		{CNP_ENT_KUBE_APISERVER, IDENTITY_KUBE_APISERVER},
		{CNP_ENT_UNMANAGED, IDENTITY_UNMANAGED},
	};
	static const uint32_t cluster_reserved[] = {IDENTITY_HOST,	IDENTITY_REMOTE_NODE,
						    IDENTITY_HEALTH,	IDENTITY_INIT,
						    IDENTITY_UNMANAGED, IDENTITY_KUBE_APISERVER};
	size_t i;
	int err = 0;

	if (ent & CNP_ENT_ALL)
		return id_set_add(ids, IDENTITY_UNKNOWN);
	for (i = 0; !err && i < sizeof(simple) / sizeof(simple[0]); i++)
		if (ent & simple[i].bit)
			err = id_set_add(ids, simple[i].id);
	/* CIDR identities are outside the cluster: part of world */
	for (i = 0; !err && (ent & CNP_ENT_WORLD) && i < cc->cidrs->n; i++)
		err = id_set_add(ids, cc->cidrs->v[i].id);
	for (i = 0; !err && (ent & CNP_ENT_CLUSTER) &&
		    i < sizeof(cluster_reserved) / sizeof(cluster_reserved[0]);
	     i++)
		err = id_set_add(ids, cluster_reserved[i]);
	for (i = 0; !err && (ent & CNP_ENT_CLUSTER) && i < cc->m->nidentities; i++)
		err = id_set_add(ids, cc->m->identities[i].id);
	return err;
}

/* The peer identities of a rule; identity 0 (every peer) for a rule with only an L4 part. */
static int rule_ids(const struct policy_compile_ctx *cc, const struct m_policy *pol,
		    const struct cnp_rule *r, struct id_set *ids)
{
	size_t i;
	int err;

	if (!r->has_l3)
		return (r->nports || r->nicmps) ? id_set_add(ids, IDENTITY_UNKNOWN) : 0;
	for (i = 0; i < r->neps; i++) {
		err = peer_sel_ids(cc, pol, &r->eps[i], ids);
		if (err)
			return err;
	}
	for (i = 0; i < r->ncidrs; i++) {
		err = cidr_table_ids(cc->cidrs, r->cidrs[i].cidr, r->cidrs[i].except,
				     r->cidrs[i].nexcept, ids);
		if (err)
			return err;
	}
	return entity_ids(cc, r->entities, ids);
}

static bool proto_matches(uint8_t want, uint8_t proto)
{
	return want == CNP_PROTO_ANY
		       ? (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP)
		       : want == proto;
}

/* One numeric port entry for one identity. */
static int add_port(struct policy_compile_ctx *cc, const struct cnp_port *pt, uint32_t ep_id,
		    uint8_t dir, uint32_t identity, uint32_t flags, uint32_t rule_id)
{
	static const uint8_t any[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP};
	size_t i;
	int err = 0;

	if (pt->proto == CNP_PROTO_ANY && !pt->port)
		return polb_add(cc->pb, ep_id, dir, identity, POLB_ANY_PROTO, 0, 0, flags, rule_id);
	for (i = 0; !err && i < sizeof(any); i++) {
		if (!proto_matches(pt->proto, any[i]))
			continue;
		if (!pt->port)
			err = polb_add(cc->pb, ep_id, dir, identity, any[i], 0, 0, flags, rule_id);
		else
			err = polb_add_range(cc->pb, ep_id, dir, identity, any[i], pt->port,
					     pt->end_port, flags, rule_id);
	}
	return err;
}

/* (identity, proto, port) for every container port of q named like pt. */
static int add_named(struct policy_compile_ctx *cc, const struct cnp_port *pt,
		     const struct m_pod *q, uint32_t ep_id, uint8_t dir, uint32_t identity,
		     uint32_t flags, uint32_t rule_id)
{
	size_t k;
	int err;

	for (k = 0; k < q->nports; k++) {
		if (!proto_matches(pt->proto, q->ports[k].proto) ||
		    strcmp(q->ports[k].name, pt->name))
			continue;
		err = polb_add(cc->pb, ep_id, dir, identity, q->ports[k].proto, q->ports[k].port,
			       16, flags, rule_id);
		if (err)
			return err;
	}
	return 0;
}

/* Named egress ports resolve against the peer pods: pods whose identity the rule selects,
 * or every pod (with the identity as selected) for a wildcard peer. */
static int egress_named(struct policy_compile_ctx *cc, const struct cnp_port *pt,
			const struct id_set *ids, uint32_t ep_id, uint32_t flags, uint32_t rule_id)
{
	const struct m_pod *q;
	size_t i, j;
	int err;

	for (j = 0; j < cc->m->npods; j++) {
		q = &cc->m->pods[j];
		if (q->host_network)
			continue;
		for (i = 0; i < ids->n; i++) {
			if (ids->v[i] != IDENTITY_UNKNOWN && ids->v[i] != q->identity)
				continue;
			err = add_named(cc, pt, q, ep_id, DIR_EGRESS, ids->v[i], flags, rule_id);
			if (err)
				return err;
		}
	}
	return 0;
}

static int compile_rule(struct policy_compile_ctx *cc, const struct m_policy *pol,
			const struct cnp_rule *r, int sec, const struct m_pod *pod, uint32_t ep_id,
			uint32_t rule_id)
{
	const uint8_t dir = (uint8_t)section_dir(sec);
	const uint32_t flags = section_deny(sec) ? POLICY_F_DENY : 0;
	struct id_set ids = {0};
	size_t i, k;
	int err;

	err = rule_ids(cc, pol, r, &ids);
	for (i = 0; !err && !r->nports && !r->nicmps && i < ids.n; i++)
		err = polb_add(cc->pb, ep_id, dir, ids.v[i], POLB_ANY_PROTO, 0, 0, flags, rule_id);
	for (k = 0; !err && k < r->nports; k++) {
		const struct cnp_port *pt = &r->ports[k];

		if (pt->name[0] && dir == DIR_EGRESS) {
			err = egress_named(cc, pt, &ids, ep_id, flags, rule_id);
			continue;
		}
		for (i = 0; !err && i < ids.n; i++)
			err = pt->name[0]
				      ? add_named(cc, pt, pod, ep_id, dir, ids.v[i], flags, rule_id)
				      : add_port(cc, pt, ep_id, dir, ids.v[i], flags, rule_id);
	}
	for (k = 0; !err && k < r->nicmps; k++)
		for (i = 0; !err && i < ids.n; i++)
			err = polb_add(cc->pb, ep_id, dir, ids.v[i], r->icmps[k].proto,
				       r->icmps[k].type, 16, flags, rule_id);
	free(ids.v);
	return err;
}

int cnp_compile_endpoint(struct policy_compile_ctx *cc, const struct m_policy *pol,
			 const struct m_pod *pod, uint32_t ep_id, uint32_t *ep_flags)
{
	char name[MODEL_NAME_MAX + 160], base[MODEL_NAME_MAX + 80];
	const struct cnp_spec *sp;
	uint32_t rule_id;
	size_t i, j;
	int sec, dir, dd, err;

	if (pol->kind != POLICY_KIND_CNP && pol->kind != POLICY_KIND_CCNP)
		return 0;
	policy_display_name(pol, base, sizeof(base));
	for (i = 0; i < pol->cnp->nspecs; i++) {
		sp = &pol->cnp->specs[i];
		if (!spec_selects(cc->m, pol, sp, pod))
			continue;
		for (dir = 0; dir < DIR_MAX; dir++) {
			dd = sp->default_deny[dir];
			if (dd < 0)
				dd = sp->nrules[dir == DIR_INGRESS ? CNP_INGRESS : CNP_EGRESS] ||
				     sp->nrules[dir == DIR_INGRESS ? CNP_INGRESS_DENY
								   : CNP_EGRESS_DENY];
			if (dd)
				*ep_flags |= dir == DIR_INGRESS ? EP_F_INGRESS_ENFORCED
								: EP_F_EGRESS_ENFORCED;
		}
		for (sec = 0; sec < CNP_SECTION_MAX; sec++) {
			for (j = 0; j < sp->nrules[sec]; j++) {
				if (pol->cnp->nspecs == 1 && !strcmp(sp->path, "spec"))
					snprintf(name, sizeof(name), "%s %s[%zu]", base,
						 section_names[sec], j);
				else
					snprintf(name, sizeof(name), "%s %s.%s[%zu]", base,
						 sp->path, section_names[sec], j);
				err = polb_rule_id(cc->pb, name, &rule_id);
				if (!err)
					err = compile_rule(cc, pol, &sp->rules[sec][j], sec, pod,
							   ep_id, rule_id);
				if (err)
					return err;
			}
		}
	}
	return 0;
}
