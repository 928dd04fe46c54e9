/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy trace: the verdict of a new connection from the policy map entries, with the lookup
 * rule of bpf/lib/policy.h re-done in C over the entry list (LPM over the key bytes exactly
 * as the kernel's LPM trie compares them), independently of how the entries were compiled.
 */
#include "policy_trace.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"
#include "ipaddr.h"
#include "labels.h"
#include "parse.h"
#include "policy.h"
#include "policy_cilium.h"

/* ---- views --------------------------------------------------------------------------------- */

int policy_view_compute(struct policy_view *v, const struct cluster_model *m, struct diag *d)
{
	size_t i;
	int err;

	memset(v, 0, sizeof(*v));
	v->m = m;
	v->nodes = calloc(m->cluster.nnodes ? m->cluster.nnodes : 1, sizeof(*v->nodes));
	if (!v->nodes)
		return diag_fail_errno(d, -ENOMEM, "%s: out of memory", m->name);
	for (i = 0; i < m->cluster.nnodes; i++) {
		err = node_state_compute(m, m->cluster.nodes[i].name, &v->nodes[i], d);
		if (err) {
			policy_view_free(v);
			return err;
		}
		v->nnodes++;
	}
	return 0;
}

void policy_view_free(struct policy_view *v)
{
	size_t i;

	for (i = 0; v->nodes && i < v->nnodes; i++)
		node_state_free(&v->nodes[i]);
	free(v->nodes);
	v->nodes = NULL;
	v->nnodes = 0;
}

const struct node_state *policy_view_node(const struct policy_view *v, const char *node)
{
	size_t i;

	for (i = 0; i < v->nnodes; i++)
		if (v->nodes[i].node && !strcmp(v->nodes[i].node->name, node))
			return &v->nodes[i];
	return NULL;
}

/* ---- the datapath's lookups ---------------------------------------------------------------- */

/* True if the first `bits` bits of a and b are equal (MSB first, byte by byte: how the LPM
 * trie compares keys). */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, uint32_t bits)
{
	uint32_t full = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, full))
		return false;
	if (!rest)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* The entry with the longest prefix that matches key (key->prefixlen is the full length). */
static const struct node_policy_entry *policy_lpm(const struct node_policy_entry *v, size_t n,
						  const struct policy_key *key)
{
	const uint8_t *want = (const uint8_t *)&key->ep_id;
	const struct node_policy_entry *best = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct policy_key *k = &v[i].key;

		if (k->prefixlen > POLICY_PREFIX_FULL)
			continue;
		if (!prefix_equal((const uint8_t *)&k->ep_id, want, k->prefixlen))
			continue;
		if (!best || k->prefixlen > best->key.prefixlen)
			best = &v[i];
	}
	return best;
}

void policy_lookup(const struct node_policy_entry *v, size_t n, uint32_t ep_id, uint32_t ep_flags,
		   uint32_t identity, uint8_t dir, uint8_t proto, uint16_t port,
		   struct policy_lookup *out)
{
	struct policy_key key;
	const struct node_policy_entry *deny = NULL;
	bool l4;

	memset(&key, 0, sizeof(key));
	key.prefixlen = POLICY_PREFIX_FULL;
	key.ep_id = ep_id;
	key.identity = identity;
	key.dir = dir;
	key.proto = proto;
	key.dport = htons(port);
	memset(out, 0, sizeof(*out));
	out->enforced =
		!!(ep_flags & (dir == DIR_INGRESS ? EP_F_INGRESS_ENFORCED : EP_F_EGRESS_ENFORCED));
	out->exact = policy_lpm(v, n, &key);
	key.identity = IDENTITY_UNKNOWN;
	out->any = policy_lpm(v, n, &key);

	if (out->exact && (out->exact->val.flags & POLICY_F_DENY))
		deny = out->exact;
	else if (out->any && (out->any->val.flags & POLICY_F_DENY))
		deny = out->any;
	if (deny) {
		l4 = deny->key.prefixlen > POLICY_PREFIX_FIXED;
		out->match = deny;
		out->reason = REASON_POLICY_DENY;
		out->match_type = deny == out->exact
					  ? (l4 ? POLICY_MATCH_L3_L4 : POLICY_MATCH_L3_ONLY)
					  : (l4 ? POLICY_MATCH_L4_ONLY : POLICY_MATCH_ALL);
		return;
	}
	if (out->exact || out->any) {
		out->match = out->exact ? out->exact : out->any;
		l4 = out->match->key.prefixlen > POLICY_PREFIX_FIXED;
		out->allowed = true;
		out->match_type = out->exact ? (l4 ? POLICY_MATCH_L3_L4 : POLICY_MATCH_L3_ONLY)
					     : (l4 ? POLICY_MATCH_L4_ONLY : POLICY_MATCH_ALL);
		return;
	}
	if (!out->enforced) {
		out->allowed = true;
		out->match_type = POLICY_MATCH_NOT_ENFORCED;
		return;
	}
	out->reason = REASON_POLICY_DENIED;
	out->match_type = POLICY_MATCH_NONE;
}

uint32_t policy_ipcache_identity(const struct node_state *ns, uint32_t ip)
{
	const struct node_ipcache_entry *best = NULL;
	struct ipcache_key want;
	size_t i;

	memset(&want, 0, sizeof(want));
	want.family = CILIATE_AF_INET;
	want.addr.v4 = ip;
	for (i = 0; i < ns->nipcache; i++) {
		const struct ipcache_key *k = &ns->ipcache[i].key;

		if (k->prefixlen > IPCACHE_PREFIX_BASE + 128)
			continue;
		if (!prefix_equal(&k->family, &want.family, k->prefixlen))
			continue;
		if (!best || k->prefixlen > best->key.prefixlen)
			best = &ns->ipcache[i];
	}
	return best ? best->val.identity : IDENTITY_WORLD;
}

/* ---- names --------------------------------------------------------------------------------- */

void policy_identity_name(const struct policy_view *v, const struct node_state *ns, uint32_t id,
			  char *buf, size_t size)
{
	static const char *const reserved[] = {"any",
					       "reserved:host",
					       "reserved:world",
					       "reserved:unmanaged",
					       "reserved:health",
					       "reserved:init",
					       "reserved:remote-node",
					       "reserved:kube-apiserver"};
	const struct cluster_model *m = v->m;
	char c[CIDR4_STR_MAX];
	size_t i, off = 0, npods = 0;

	if (id < sizeof(reserved) / sizeof(reserved[0])) {
		snprintf(buf, size, "%s", reserved[id]);
		return;
	}
	if (id >= IDENTITY_LOCAL_CIDR_MIN) {
		for (i = 0; ns && i < ns->nipcache; i++) {
			if (ns->ipcache[i].val.identity != id)
				continue;
			snprintf(buf, size, "cidr:%s",
				 cidr4_format(ns->ipcache[i].key.addr.v4,
					      (uint8_t)(ns->ipcache[i].key.prefixlen -
							IPCACHE_PREFIX_BASE),
					      c));
			return;
		}
		snprintf(buf, size, "cidr:%u", id);
		return;
	}
	buf[0] = '\0';
	for (i = 0; m && i < m->npods && off < size; i++) {
		if (m->pods[i].host_network || m->pods[i].identity != id)
			continue;
		if (npods++ == 3) {
			off += (size_t)snprintf(buf + off, size - off, ",...");
			break;
		}
		off += (size_t)snprintf(buf + off, size - off, "%s%s/%s", off ? "," : "",
					m->pods[i].ns, m->pods[i].name);
	}
	if (!npods)
		snprintf(buf, size, "%u", id);
}

void policy_entry_l4(const struct policy_key *k, char *buf, size_t size)
{
	char pbuf[16];
	const char *pn;
	unsigned int bits, lo, hi;

	if (k->prefixlen <= POLICY_PREFIX_FIXED) {
		snprintf(buf, size, "any");
		return;
	}
	pn = proto_name(k->proto, pbuf, sizeof(pbuf));
	if (k->prefixlen <= POLICY_PREFIX_PROTO) {
		snprintf(buf, size, "%s", pn);
		return;
	}
	bits = k->prefixlen - POLICY_PREFIX_PROTO;
	lo = ntohs(k->dport) & (0xffffu << (16 - bits)) & 0xffffu;
	hi = lo | (0xffffu >> bits);
	if (lo == hi)
		snprintf(buf, size, "%s/%u", pn, lo);
	else
		snprintf(buf, size, "%s/%u-%u", pn, lo, hi);
}

const char *policy_entry_rule(const struct node_state *ns, const struct node_policy_entry *e)
{
	if (!e || e->val.rule_id >= ns->nrule_names)
		return "";
	return ns->rule_names[e->val.rule_id];
}

/* ---- resolving the two sides --------------------------------------------------------------- */

static const struct m_external_host *find_ext(const struct cluster_model *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->cluster.next_hosts; i++)
		if (!strcmp(m->cluster.ext_hosts[i].name, name))
			return &m->cluster.ext_hosts[i];
	return NULL;
}

static void peer_from_node(struct trace_peer *p, const struct m_node *node)
{
	p->kind = TRACE_PEER_NODE;
	p->node = node;
	p->ip = node->ip;
}

static int resolve_peer(const struct cluster_model *m, const char *ref, struct trace_peer *p,
			struct diag *d)
{
	const struct m_external_host *ext;
	const struct m_node *node;
	size_t i;

	memset(p, 0, sizeof(*p));
	snprintf(p->ref, sizeof(p->ref), "%s", ref);
	if (!strncmp(ref, "node/", 5)) {
		node = cluster_find_node(m, ref + 5);
		if (!node)
			return diag_fail(d, "\"%s\": no node named \"%s\"", ref, ref + 5);
		peer_from_node(p, node);
		return 0;
	}
	if (!strncmp(ref, "ext/", 4)) {
		ext = find_ext(m, ref + 4);
		if (!ext)
			return diag_fail(d, "\"%s\": no external host named \"%s\"", ref, ref + 4);
		p->kind = TRACE_PEER_IP;
		p->ip = ext->ip;
		return 0;
	}
	if (!strncmp(ref, "ip/", 3)) {
		if (ip4_parse(ref + 3, &p->ip))
			return diag_fail(d, "\"%s\": bad IPv4 address", ref);
		p->kind = TRACE_PEER_IP;
		for (i = 0; i < m->npods; i++) {
			if (m->pods[i].host_network || m->pods[i].ip != p->ip)
				continue;
			p->kind = TRACE_PEER_POD;
			p->pod = &m->pods[i];
			p->node = cluster_find_node(m, m->pods[i].node);
			return 0;
		}
		for (i = 0; i < m->cluster.nnodes; i++)
			if (m->cluster.nodes[i].ip == p->ip)
				peer_from_node(p, &m->cluster.nodes[i]);
		return 0;
	}
	p->pod = cluster_find_pod(m, ref);
	if (!p->pod || strchr(strchr(ref, '/') + 1, '/'))
		return diag_fail(d,
				 "\"%s\": no such pod (expected ns/pod, node/NAME, ext/NAME, "
				 "ip/A.B.C.D or a label list)",
				 ref);
	p->node = cluster_find_node(m, p->pod->node);
	if (!p->node)
		return diag_fail(d, "\"%s\": pod on unknown node \"%s\"", ref, p->pod->node);
	if (p->pod->host_network) {
		peer_from_node(p, p->node);
		return 0;
	}
	p->kind = TRACE_PEER_POD;
	p->ip = p->pod->ip;
	return 0;
}

static bool same_node(const struct trace_peer *a, const struct trace_peer *b)
{
	return a->node && b->node && a->node == b->node;
}

static char *pod_ref(const struct m_pod *pod, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", pod->ns, pod->name);
	return buf;
}

/* Evaluates the side of endpoint `self` (a pod) against `peer`. */
static int eval_side(const struct policy_view *v, const struct trace_peer *self,
		     const struct trace_peer *peer, uint8_t dir, uint8_t proto, uint16_t port,
		     struct trace_side *side, struct diag *d)
{
	char ref[MODEL_NAME_MAX + 70];

	side->ns = policy_view_node(v, self->node->name);
	if (!side->ns)
		return diag_fail(d, "node %s: no policy state", self->node->name);
	side->ep = node_state_find_endpoint(side->ns, pod_ref(self->pod, ref, sizeof(ref)));
	if (!side->ep)
		return diag_fail(d, "%s: not an endpoint of node %s", ref, self->node->name);
	side->applies = true;
	if (peer->kind == TRACE_PEER_POD && same_node(self, peer))
		side->peer_identity = peer->pod->identity; /* the endpoint map's identity */
	else
		side->peer_identity = policy_ipcache_identity(side->ns, peer->ip);
	policy_lookup(side->ns->policy, side->ns->npolicy, side->ep->info.ep_id,
		      side->ep->info.flags, side->peer_identity, dir, proto, port, &side->res);
	return 0;
}

int policy_trace_run(const struct policy_view *v, const char *src, const char *dst, uint8_t proto,
		     uint16_t port, struct policy_trace *t, struct diag *d)
{
	int err;

	memset(t, 0, sizeof(*t));
	t->proto = proto;
	t->port = port;
	err = resolve_peer(v->m, src, &t->src, d);
	if (!err)
		err = resolve_peer(v->m, dst, &t->dst, d);
	if (err)
		return err;
	if (t->src.kind != TRACE_PEER_POD && t->dst.kind != TRACE_PEER_POD)
		return diag_fail(d, "%s -> %s: neither side is a pod, no endpoint policy applies",
				 src, dst);
	if (t->src.kind == TRACE_PEER_POD) {
		err = eval_side(v, &t->src, &t->dst, DIR_EGRESS, proto, port, &t->side[DIR_EGRESS],
				d);
		if (err)
			return err;
	}
	if (t->dst.kind == TRACE_PEER_POD) {
		err = eval_side(v, &t->dst, &t->src, DIR_INGRESS, proto, port,
				&t->side[DIR_INGRESS], d);
		if (err)
			return err;
	}
	t->allowed = (!t->side[DIR_EGRESS].applies || t->side[DIR_EGRESS].res.allowed) &&
		     (!t->side[DIR_INGRESS].applies || t->side[DIR_INGRESS].res.allowed);
	return 0;
}

/* ---- printing ------------------------------------------------------------------------------ */

static void print_peer(FILE *f, const struct policy_view *v, const struct trace_peer *p)
{
	const struct m_identity *id;
	char ip[IP4_STR_MAX];
	size_t i;

	fprintf(f, "%s", p->ref);
	switch (p->kind) {
	case TRACE_PEER_POD:
		fprintf(f, " (%s, node %s, identity %u", ip4_format(p->ip, ip), p->node->name,
			p->pod->identity);
		id = cluster_find_identity(v->m, p->pod->identity);
		for (i = 0; id && i < id->labels.n; i++)
			fprintf(f, "%s%s=%s", i ? "," : ": ", id->labels.v[i].key,
				id->labels.v[i].value);
		fprintf(f, ")");
		break;
	case TRACE_PEER_NODE:
		fprintf(f, " (node %s, %s)", p->node->name, ip4_format(p->ip, ip));
		break;
	case TRACE_PEER_IP:
		fprintf(f, " (%s, outside the cluster)", ip4_format(p->ip, ip));
		break;
	}
}

static void print_entry(FILE *f, const struct policy_view *v, const struct trace_side *side,
			const char *what, const struct node_policy_entry *e)
{
	char peer[400], l4[32];

	if (!e) {
		fprintf(f, "    %s: no entry\n", what);
		return;
	}
	policy_identity_name(v, side->ns, e->key.identity, peer, sizeof(peer));
	policy_entry_l4(&e->key, l4, sizeof(l4));
	fprintf(f, "    %s: %s %s %s (prefix %u, rule \"%s\")\n", what, peer, l4,
		(e->val.flags & POLICY_F_DENY) ? "DENY" : "allow", e->key.prefixlen,
		policy_entry_rule(side->ns, e));
}

/* Every distinct rule name with entries for the side's endpoint and direction. */
static void print_rules(FILE *f, const struct trace_side *side, uint8_t dir)
{
	const struct node_state *ns = side->ns;
	bool *seen = calloc(ns->nrule_names + 1, sizeof(*seen));
	size_t i, n = 0;

	if (!seen)
		return;
	for (i = 0; i < ns->npolicy; i++) {
		const struct node_policy_entry *e = &ns->policy[i];

		if (e->key.ep_id != side->ep->info.ep_id || e->key.dir != dir ||
		    e->val.rule_id >= ns->nrule_names || seen[e->val.rule_id])
			continue;
		seen[e->val.rule_id] = true;
		fprintf(f, "%s%s",
			n++ ? ", " : "    rules with entries: ", ns->rule_names[e->val.rule_id]);
	}
	fprintf(f, n ? "\n" : "    rules with entries: none\n");
	free(seen);
}

static void print_side(FILE *f, const struct policy_view *v, const struct policy_trace *t,
		       uint8_t dir)
{
	const struct trace_side *side = &t->side[dir];
	const struct trace_peer *self = dir == DIR_EGRESS ? &t->src : &t->dst;
	const char *dname = dir == DIR_EGRESS ? "egress" : "ingress";
	char peer[400], name[MODEL_NAME_MAX + 80];
	size_t i, n = 0;

	if (!side->applies) {
		fprintf(f, "%s policy: %s is not a local endpoint; nothing to check\n\n",
			dir == DIR_EGRESS ? "Egress" : "Ingress", self->ref);
		return;
	}
	fprintf(f, "Resolving %s policy for %s (endpoint %u on %s)\n", dname, self->ref,
		side->ep->info.ep_id, side->ns->node->name);
	for (i = 0; v->m && i < v->m->npolicies; i++) {
		if (!policy_selects(v->m, v->m->policies[i], self->pod))
			continue;
		policy_display_name(v->m->policies[i], name, sizeof(name));
		fprintf(f, "%s%s (%s)", n++ ? ", " : "    selected by: ", name,
			policy_kind_name(v->m->policies[i]->kind));
	}
	fprintf(f, n ? "\n" : "    selected by: no policy\n");
	print_rules(f, side, dir);
	fprintf(f, "    %s enforced: %s\n", dname, side->res.enforced ? "yes" : "no");
	policy_identity_name(v, side->ns, side->peer_identity, peer, sizeof(peer));
	fprintf(f, "    peer identity: %u (%s)\n", side->peer_identity, peer);
	print_entry(f, v, side, "exact-identity match", side->res.exact);
	print_entry(f, v, side, "wildcard-identity match", side->res.any);
	if (side->res.allowed && side->res.match)
		fprintf(f, "%s verdict: allowed by \"%s\" (%s)\n\n",
			dir == DIR_EGRESS ? "Egress" : "Ingress",
			policy_entry_rule(side->ns, side->res.match),
			policy_match_name(side->res.match_type));
	else if (side->res.allowed)
		fprintf(f, "%s verdict: allowed (%s not enforced)\n\n",
			dir == DIR_EGRESS ? "Egress" : "Ingress", dname);
	else if (side->res.reason == REASON_POLICY_DENY)
		fprintf(f, "%s verdict: denied by deny rule \"%s\" (%s)\n\n",
			dir == DIR_EGRESS ? "Egress" : "Ingress",
			policy_entry_rule(side->ns, side->res.match),
			reason_name(side->res.reason));
	else
		fprintf(f, "%s verdict: denied, no rule allows it (%s)\n\n",
			dir == DIR_EGRESS ? "Egress" : "Ingress", reason_name(side->res.reason));
}

void policy_trace_print(FILE *f, const struct policy_view *v, const struct policy_trace *t)
{
	char pbuf[16];
	const char *pn = proto_name(t->proto, pbuf, sizeof(pbuf));

	fprintf(f, "----------------------------------------------------------------\n");
	fprintf(f, "Tracing From: ");
	print_peer(f, v, &t->src);
	fprintf(f, "\n          To: ");
	print_peer(f, v, &t->dst);
	if (t->proto == IPPROTO_ICMP || t->proto == IPPROTO_ICMPV6)
		fprintf(f, "\n       Ports: [%s type %u]\n\n", pn, t->port);
	else
		fprintf(f, "\n       Ports: [%u/%s]\n\n", t->port, pn);
	print_side(f, v, t, DIR_EGRESS);
	print_side(f, v, t, DIR_INGRESS);
	fprintf(f, "Final verdict: %s\n", t->allowed ? "ALLOWED" : "DENIED");
}

/* ---- hypothetical endpoints ---------------------------------------------------------------- */

/* True if ref is a label list rather than an endpoint reference. */
static bool is_label_ref(const char *ref)
{
	return strchr(ref, '=') && strncmp(ref, "node/", 5) && strncmp(ref, "ext/", 4) &&
	       strncmp(ref, "ip/", 3);
}

/* Parses "k8s:a=b,c=d" into pod labels (no prefix) and a namespace. */
static int parse_label_ref(const char *ref, struct labelset *labels, char *ns, size_t nssize,
			   struct diag *d)
{
	char *copy = strdup(ref), *tok, *save = NULL, *eq, *key;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	snprintf(ns, nssize, "default");
	for (tok = strtok_r(copy, ",", &save); !err && tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		eq = strchr(tok, '=');
		if (!eq || eq == tok) {
			err = diag_fail(d, "\"%s\": \"%s\" is not key=value", ref, tok);
			break;
		}
		*eq = '\0';
		key = tok;
		if (!strncmp(key, "k8s:", 4) || !strncmp(key, "any:", 4))
			key += 4;
		else if (strchr(key, ':') &&
			 (!strchr(key, '/') || strchr(key, ':') < strchr(key, '/'))) {
			err = diag_fail(
				d,
				"\"%s\": label source of \"%s\" not supported (k8s: or "
				"none; use node/NAME or ip/A.B.C.D for reserved identities)",
				ref, tok);
			break;
		}
		if (!strcmp(key, "io.kubernetes.pod.namespace"))
			snprintf(ns, nssize, "%s", eq + 1);
		else if (strncmp(key, "io.cilium.k8s.namespace.labels.", 31))
			err = labelset_set(labels, key, eq + 1); /* namespace labels: from the ns */
	}
	free(copy);
	if (!err)
		labelset_sort(labels);
	return err;
}

/* A pod whose identity labels are exactly those of a pod with `labels` in `ns`. */
static const struct m_pod *find_by_labels(const struct cluster_model *m,
					  const struct labelset *labels, const char *ns)
{
	struct m_pod tmp;
	struct labelset ls;
	const struct m_identity *id;
	const struct m_pod *found = NULL;
	size_t i;

	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.ns, sizeof(tmp.ns), "%s", ns);
	tmp.labels = *labels;
	if (identity_labels_for_pod(m, &tmp, &ls))
		return NULL;
	for (i = 0; i < m->npods && !found; i++) {
		if (m->pods[i].host_network)
			continue;
		id = cluster_find_identity(m, m->pods[i].identity);
		if (id && labelset_equal(&id->labels, &ls))
			found = &m->pods[i];
	}
	labelset_free(&ls);
	return found;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		if (buf) {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

/* Appends a YAML double-quoted string. */
static void yaml_quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

struct hypo {
	bool needed;
	char name[32];
	char ns[64];
	struct labelset labels;
	char node[64];
};

int policy_trace_load(const char *path, const char *src, const char *dst, struct scenario **out,
		      char *src_out, char *dst_out, size_t size, struct diag *d)
{
	const char *refs[2] = {src, dst};
	char *outs[2] = {src_out, dst_out};
	struct hypo h[2];
	struct scenario *s = NULL;
	const struct m_pod *pod;
	char *text = NULL, *buf = NULL;
	size_t len = 0, blen = 0, i, k;
	FILE *f;
	int err;

	*out = NULL;
	memset(h, 0, sizeof(h));
	err = scenario_load(path, &s, d);
	if (err)
		return err;
	for (i = 0; i < 2; i++) {
		snprintf(outs[i], size, "%s", refs[i]);
		if (!is_label_ref(refs[i]))
			continue;
		err = parse_label_ref(refs[i], &h[i].labels, h[i].ns, sizeof(h[i].ns), d);
		if (err)
			goto out;
		pod = find_by_labels(&s->model, &h[i].labels, h[i].ns);
		if (pod) {
			snprintf(outs[i], size, "%s/%s", pod->ns, pod->name);
			continue;
		}
		h[i].needed = true;
		snprintf(h[i].name, sizeof(h[i].name), "ciliate-trace-%s", i ? "dst" : "src");
		snprintf(outs[i], size, "%s/%s", h[i].ns, h[i].name);
	}
	if (!h[0].needed && !h[1].needed) {
		*out = s;
		s = NULL;
		goto out;
	}
	if (!s->model.cluster.nnodes) {
		err = diag_fail(d, "%s: no nodes to place a hypothetical endpoint on", path);
		goto out;
	}
	for (i = 0; i < 2; i++) {
		const char *other = refs[1 - i];

		if (!h[i].needed)
			continue;
		pod = is_label_ref(other) ? NULL : cluster_find_pod(&s->model, other);
		snprintf(h[i].node, sizeof(h[i].node), "%s",
			 pod ? pod->node
			 : !strncmp(other, "node/", 5) && cluster_find_node(&s->model, other + 5)
				 ? other + 5
				 : s->model.cluster.nodes[0].name);
	}
	text = read_file(path, &len);
	if (!text) {
		err = diag_fail_errno(d, -EIO, "%s: cannot read the scenario again", path);
		goto out;
	}
	f = open_memstream(&buf, &blen);
	if (!f) {
		err = -ENOMEM;
		goto out;
	}
	fwrite(text, 1, len, f);
	for (i = 0; i < 2; i++) {
		if (!h[i].needed)
			continue;
		fprintf(f, "\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: ",
			h[i].name);
		yaml_quote(f, h[i].ns);
		fprintf(f, "\n  labels: {");
		for (k = 0; k < h[i].labels.n; k++) {
			fprintf(f, "%s", k ? ", " : "");
			yaml_quote(f, h[i].labels.v[k].key);
			fprintf(f, ": ");
			yaml_quote(f, h[i].labels.v[k].value);
		}
		fprintf(f, "}\nspec:\n  nodeName: ");
		yaml_quote(f, h[i].node);
		fprintf(f, "\n");
	}
	fclose(f);
	scenario_free(s);
	s = NULL;
	err = scenario_load_buffer(path, buf, blen, out, d);
out:
	for (i = 0; i < 2; i++)
		labelset_free(&h[i].labels);
	free(text);
	free(buf);
	scenario_free(s);
	return err;
}
