/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate policy get | trace, ciliate bpf policy get: the compiled policy of a scenario, per
 * endpoint (with rule names) or as map entries, and the verdict of a connection traced with
 * the datapath's lookup rule (datapath/model/policy_trace.h). The entries come from a
 * policy_view; today it is computed from --scenario.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "lb/lb_format.h"
#include "common/names.h"
#include "model/ipaddr.h"
#include "model/model.h"
#include "model/policy.h"
#include "model/policy_cilium.h"
#include "model/policy_trace.h"

static const char *dir_name(uint8_t dir)
{
	return dir == DIR_INGRESS ? "ingress" : "egress";
}

static void print_json(json_t *o)
{
	json_dumpf(o, stdout, JSON_INDENT(2));
	printf("\n");
	json_decref(o);
}

#define OPT_NEXT (-1) /* common_opt(): -o was valid, go on parsing */

/* Handles the options the policy commands share: -o json|text, -h and an unknown option.
 * Returns OPT_NEXT after a valid -o (setting *json), else the exit code of the command. */
static int common_opt(int c, int *json, void (*usage)(FILE *f))
{
	switch (c) {
	case 'o':
		if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
			usage(stderr);
			return EXIT_USAGE;
		}
		*json = !strcmp(optarg, "json");
		return OPT_NEXT;
	case 'h':
		usage(stdout);
		return EXIT_OK;
	default:
		usage(stderr);
		return EXIT_USAGE;
	}
}

/* Parses "80/tcp", "80" (TCP), "8/icmp" (ICMP type) into proto and port. */
static int parse_dport(const char *s, uint8_t *proto, uint16_t *port)
{
	const char *slash = strchr(s, '/');
	char *end;
	unsigned long v;
	int p;

	v = strtoul(s, &end, 10);
	if (end == s || (*end && *end != '/') || v > 65535)
		return -1;
	*port = (uint16_t)v;
	*proto = IPPROTO_TCP;
	if (!slash)
		return 0;
	p = proto_from_name(slash + 1);
	if (p < 0 || (p != IPPROTO_TCP && p != IPPROTO_UDP && p != IPPROTO_SCTP &&
		      p != IPPROTO_ICMP && p != IPPROTO_ICMPV6))
		return -1;
	if ((p == IPPROTO_ICMP || p == IPPROTO_ICMPV6) && v > 255)
		return -1;
	*proto = (uint8_t)p;
	return 0;
}

static void print_warnings(const struct cluster_model *m, FILE *f)
{
	size_t i, j;

	for (i = 0; i < m->npolicies; i++)
		for (j = 0; j < policy_warning_count(m->policies[i]); j++)
			fprintf(f, "warning: %s\n", policy_warning(m->policies[i], j));
}

static json_t *warnings_json(const struct cluster_model *m)
{
	json_t *arr = json_array();
	size_t i, j;

	for (i = 0; i < m->npolicies; i++)
		for (j = 0; j < policy_warning_count(m->policies[i]); j++)
			json_array_append_new(arr, json_string(policy_warning(m->policies[i], j)));
	return arr;
}

/* ---- trace --------------------------------------------------------------------------------- */

static json_t *entry_json(const struct policy_view *v, const struct node_state *ns,
			  const struct node_policy_entry *e)
{
	char peer[400], l4[32];

	if (!e)
		return json_null();
	policy_identity_name(v, ns, e->key.identity, peer, sizeof(peer));
	policy_entry_l4(&e->key, l4, sizeof(l4));
	return json_pack("{s:i, s:s, s:s, s:s, s:i, s:s, s:s}", "identity", (int)e->key.identity,
			 "peer", peer, "direction", dir_name(e->key.dir), "l4", l4, "prefixlen",
			 (int)e->key.prefixlen, "action",
			 (e->val.flags & POLICY_F_DENY) ? "deny" : "allow", "rule",
			 policy_entry_rule(ns, e));
}

static json_t *side_json(const struct policy_view *v, const struct policy_trace *t, uint8_t dir)
{
	const struct trace_side *sd = &t->side[dir];
	const struct trace_peer *self = dir == DIR_EGRESS ? &t->src : &t->dst;
	json_t *sel = json_array();
	char name[MODEL_NAME_MAX + 80];
	size_t i;

	if (!sd->applies) {
		json_decref(sel);
		return json_pack("{s:b}", "applies", 0);
	}
	for (i = 0; i < v->m->npolicies; i++) {
		if (!policy_selects(v->m, v->m->policies[i], self->pod))
			continue;
		policy_display_name(v->m->policies[i], name, sizeof(name));
		json_array_append_new(sel, json_string(name));
	}
	return json_pack("{s:b, s:s, s:i, s:o, s:b, s:i, s:o, s:o, s:o, s:s, s:b, s:s}", "applies",
			 1, "node", sd->ns->node->name, "endpoint", (int)sd->ep->info.ep_id,
			 "selected_by", sel, "enforced", sd->res.enforced, "peer_identity",
			 (int)sd->peer_identity, "exact", entry_json(v, sd->ns, sd->res.exact),
			 "wildcard", entry_json(v, sd->ns, sd->res.any), "match",
			 entry_json(v, sd->ns, sd->res.match), "match_type",
			 policy_match_name(sd->res.match_type), "allowed", sd->res.allowed,
			 "reason", sd->res.reason ? reason_name(sd->res.reason) : "");
}

/* ---- trace through a service frontend -------------------------------------------------- */

#define SVC_TRACE_MAX 64 /* backends traced at most */

/* A connection to a service frontend: the datapath translates it to one of the frontend's
 * backends first (lb.h for pods and nodes, nodeport.h from outside), then applies policy to
 * the backend (docs/SERVICES.md "CLI"). */
struct svc_trace {
	const struct node_state *ns; /* the node whose datapath translates */
	const struct node_lb_entry *slot0;
	const struct m_service *svc;
	bool external; /* the client is outside the cluster (from-netdev) */
	size_t nbackends;
	struct {
		uint32_t id;
		const struct lb_backend *be; /* NULL: not in the backend map */
		char addr[LB_TEXT_MAX], ref[64], src_ref[512];
		struct policy_trace t;
		bool traced;
	} b[SVC_TRACE_MAX];
};

/* The node of an in-cluster source ("ns/pod", "node/NAME", "ip/A" of a pod or node), or
 * NULL for a client outside the cluster. */
static const char *source_node(const struct cluster_model *m, const char *ref)
{
	const struct m_pod *pod;
	uint32_t ip;
	size_t i;

	if (!strncmp(ref, "node/", 5))
		return cluster_find_node(m, ref + 5) ? ref + 5 : NULL;
	if (!strncmp(ref, "ip/", 3)) {
		if (ip4_parse(ref + 3, &ip))
			return NULL;
		for (i = 0; i < m->npods; i++)
			if (m->pods[i].ip == ip)
				return m->pods[i].node;
		for (i = 0; i < m->cluster.nnodes; i++)
			if (m->cluster.nodes[i].ip == ip)
				return m->cluster.nodes[i].name;
		return NULL;
	}
	if (!strncmp(ref, "ext/", 4))
		return NULL;
	pod = cluster_find_pod(m, ref);
	return pod ? pod->node : NULL;
}

/* The frontend address a destination ref names: svc/NS/NAME (its clusterIP), ip/A, node/N
 * (its address). 0: none. */
static uint32_t frontend_addr(const struct cluster_model *m, const char *ref,
			      const struct m_service **svc)
{
	const struct m_node *node;
	const char *slash;
	char ns[64];
	uint32_t ip;
	size_t i;

	*svc = NULL;
	if (!strncmp(ref, "svc/", 4) && (slash = strchr(ref + 4, '/')) &&
	    (size_t)(slash - (ref + 4)) < sizeof(ns)) {
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - (ref + 4)), ref + 4);
		for (i = 0; i < m->nservices; i++)
			if (!strcmp(m->services[i].ns, ns) &&
			    !strcmp(m->services[i].name, slash + 1)) {
				*svc = &m->services[i];
				return m->services[i].cluster_ip;
			}
		return 0;
	}
	if (!strncmp(ref, "ip/", 3))
		return ip4_parse(ref + 3, &ip) ? 0 : ip;
	if (!strncmp(ref, "node/", 5) && (node = cluster_find_node(m, ref + 5)))
		return node->ip;
	return 0;
}

/* Finds the frontend (addr, port, proto) the datapath of the right node translates.
 * Returns 1 (found: st filled), 0 (not a frontend), -1 (a svc/ ref naming no service). */
static int svc_trace_find(const struct policy_view *v, const char *src, const char *dst,
			  uint8_t proto, uint16_t port, struct svc_trace *st, struct diag *d)
{
	const struct cluster_model *m = v->m;
	const struct m_service *named;
	const char *node = source_node(m, src);
	uint32_t addr = frontend_addr(m, dst, &named);
	size_t i, k;

	memset(st, 0, sizeof(*st));
	if (!strncmp(dst, "svc/", 4) && !named) {
		diag_fail(d, "\"%s\": no such service (svc/NAMESPACE/NAME)", dst);
		return -1;
	}
	if (!addr || (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP))
		return 0;
	st->external = !node;
	if (!node) { /* from outside: the node owning the address, else the first (the
			simulator routes LoadBalancer IPs and externalIPs through it) */
		for (i = 0; i < m->cluster.nnodes; i++)
			if (m->cluster.nodes[i].ip == addr)
				node = m->cluster.nodes[i].name;
		if (!node && m->cluster.nnodes)
			node = m->cluster.nodes[0].name;
	}
	st->ns = node ? policy_view_node(v, node) : NULL;
	if (!st->ns)
		return 0;
	for (i = 0; i < st->ns->nlb_frontends; i++) {
		const struct node_lb_entry *e = &st->ns->lb[st->ns->lb_frontends[i].slot0];

		if (e->key.family != CILIATE_AF_INET || e->key.addr.v4 != addr ||
		    ntohs(e->key.dport) != port || e->key.proto != proto)
			continue;
		/* pods and nodes use the internal scope of a two-scope frontend */
		if ((e->val.flags2 & LB_SVC_F2_TWO_SCOPES) &&
		    e->key.scope != (st->external ? LB_SCOPE_EXTERNAL : LB_SCOPE_INTERNAL))
			continue;
		/* a ClusterIP is not reachable from outside */
		if (st->external && !(e->val.flags & LB_SVC_F_ROUTABLE))
			continue;
		st->slot0 = e;
		st->svc = st->ns->lb_frontends[i].svc;
		break;
	}
	if (!st->slot0)
		return 0;
	for (k = 1; k <= st->slot0->val.count && st->nbackends < SVC_TRACE_MAX; k++) {
		const struct node_lb_entry *e = st->slot0 + k;
		size_t n = st->nbackends;
		char ip[INET_ADDRSTRLEN];

		if (e >= st->ns->lb + st->ns->nlb || e->key.backend_slot != k)
			break;
		st->b[n].id = e->val.backend_id;
		for (i = 0; i < st->ns->nlb_backends; i++)
			if (st->ns->lb_backends[i].id == e->val.backend_id)
				st->b[n].be = &st->ns->lb_backends[i].val;
		if (st->b[n].be) {
			lb_addr_format(st->b[n].addr, sizeof(st->b[n].addr), st->b[n].be->family,
				       &st->b[n].be->addr, ntohs(st->b[n].be->port),
				       st->b[n].be->proto);
			inet_ntop(AF_INET, &st->b[n].be->addr.v4, ip, sizeof(ip));
			snprintf(st->b[n].ref, sizeof(st->b[n].ref), "ip/%s", ip);
		} else {
			snprintf(st->b[n].addr, sizeof(st->b[n].addr), "backend %u not found",
				 e->val.backend_id);
		}
		st->nbackends++;
	}
	return 1;
}

/* The source as the backend's node sees it: an outside client of a remote backend is
 * SNATed to the translating node (unless the frontend forwards with DSR). */
static void svc_trace_source(const struct policy_view *v, const struct svc_trace *st,
			     const char *src, size_t i, char *out, size_t size)
{
	const struct m_pod *pod = NULL;
	uint32_t ip = st->b[i].be ? st->b[i].be->addr.v4 : 0;
	size_t k;

	for (k = 0; k < v->m->npods; k++)
		if (!v->m->pods[k].host_network && v->m->pods[k].ip == ip)
			pod = &v->m->pods[k];
	if (st->external && !(st->slot0->val.flags2 & LB_SVC_F2_FWD_MODE_DSR) &&
	    (!pod || strcmp(pod->node, st->ns->node->name)))
		snprintf(out, size, "node/%s", st->ns->node->name);
	else
		snprintf(out, size, "%s", src);
}

static int svc_trace_run(const struct policy_view *v, const char *src, uint8_t proto,
			 struct svc_trace *st, struct diag *d)
{
	for (size_t i = 0; i < st->nbackends; i++) {
		if (!st->b[i].be)
			continue;
		svc_trace_source(v, st, src, i, st->b[i].src_ref, sizeof(st->b[i].src_ref));
		if (policy_trace_run(v, st->b[i].src_ref, st->b[i].ref, proto,
				     ntohs(st->b[i].be->port), &st->b[i].t, d))
			return -1;
		st->b[i].traced = true;
	}
	return 0;
}

static size_t svc_trace_allowed(const struct svc_trace *st)
{
	size_t n = 0;

	for (size_t i = 0; i < st->nbackends; i++)
		n += st->b[i].traced && st->b[i].t.allowed;
	return n;
}

static const char *svc_trace_verdict(const struct svc_trace *st)
{
	size_t allowed = svc_trace_allowed(st);

	return st->nbackends && allowed == st->nbackends ? "ALLOWED" :
	       !allowed ? "DENIED" : "DEPENDS ON THE BACKEND";
}

static void svc_trace_print(FILE *f, const struct policy_view *v, const struct svc_trace *st,
			    const char *src, const char *dst)
{
	size_t allowed = svc_trace_allowed(st), i;
	char fe[LB_TEXT_MAX];

	lb_addr_format(fe, sizeof(fe), st->slot0->key.family, &st->slot0->key.addr,
		       ntohs(st->slot0->key.dport), st->slot0->key.proto);
	fprintf(f, "Service: %s is the %s frontend of %s/%s (rev NAT %u), translated by %s on "
		   "%s\n",
		fe, lb_svc_type(st->slot0->val.flags), st->svc ? st->svc->ns : "?",
		st->svc ? st->svc->name : "?", st->slot0->val.rev_nat_index,
		st->external ? "from-netdev" : "from-container", st->ns->node->name);
	fprintf(f, "Backends (policy applies to the one the datapath picks):\n");
	for (i = 0; i < st->nbackends; i++) {
		const struct trace_peer *p = &st->b[i].t.dst;

		fprintf(f, "  %zu => %s", i + 1, st->b[i].addr);
		if (st->b[i].traced && p->pod)
			fprintf(f, " (%s/%s)", p->pod->ns, p->pod->name);
		else if (st->b[i].traced && p->node)
			fprintf(f, " (node/%s)", p->node->name);
		fprintf(f, "\n");
	}
	if (!st->nbackends) {
		fprintf(f, "  (none)\n\nFinal verdict: DENIED (no backend: the datapath drops with "
			   "SERVICE_BACKEND_NOT_FOUND)\n");
		return;
	}
	for (i = 0; i < st->nbackends; i++) {
		char *buf = NULL, *l, *save = NULL;
		size_t len = 0;
		FILE *mf;

		if (!st->b[i].traced)
			continue;
		fprintf(f, "\n--- %s -> %s via backend %zu => %s ---\n", src, dst, i + 1,
			st->b[i].addr);
		if (strcmp(st->b[i].src_ref, src))
			fprintf(f, "(SNAT: the backend's node sees the connection from %s)\n",
				st->b[i].src_ref);
		mf = open_memstream(&buf, &len);
		if (!mf)
			continue;
		policy_trace_print(mf, v, &st->b[i].t);
		fclose(mf);
		/* each backend's own verdict, so that the last line stays the connection's */
		for (l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			if (!strncmp(l, "Final verdict: ", 15))
				fprintf(f, "Verdict via %s: %s\n", st->b[i].addr, l + 15);
			else
				fprintf(f, "%s\n", l);
		}
		free(buf);
	}
	fprintf(f, "\nFinal verdict: %s", svc_trace_verdict(st));
	if (allowed && allowed < st->nbackends)
		fprintf(f, " (ALLOWED via %zu of %zu)", allowed, st->nbackends);
	fprintf(f, "\n");
}

static json_t *svc_trace_json(const struct policy_view *v, const struct svc_trace *st)
{
	char fe[LB_TEXT_MAX];
	json_t *bes = json_array();

	lb_addr_format(fe, sizeof(fe), st->slot0->key.family, &st->slot0->key.addr,
		       ntohs(st->slot0->key.dport), st->slot0->key.proto);
	for (size_t i = 0; i < st->nbackends; i++) {
		json_t *b = json_pack("{s:i, s:s}", "id", (int)st->b[i].id, "address",
				      st->b[i].addr);
		const struct trace_peer *p = &st->b[i].t.dst;

		if (st->b[i].traced) {
			if (p->pod)
				json_object_set_new(b, "pod",
						    json_sprintf("%s/%s", p->pod->ns, p->pod->name));
			json_object_set_new(b, "src", json_string(st->b[i].src_ref));
			json_object_set_new(b, "egress", side_json(v, &st->b[i].t, DIR_EGRESS));
			json_object_set_new(b, "ingress", side_json(v, &st->b[i].t, DIR_INGRESS));
			json_object_set_new(b, "verdict",
					    json_string(st->b[i].t.allowed ? "ALLOWED" : "DENIED"));
		}
		json_array_append_new(bes, b);
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:o}", "frontend", fe, "type",
			 lb_svc_type(st->slot0->val.flags), "namespace",
			 st->svc ? st->svc->ns : "", "name", st->svc ? st->svc->name : "",
			 "rev_nat_index", (int)st->slot0->val.rev_nat_index, "node",
			 st->ns->node->name, "hook", st->external ? "from-netdev" : "from-container",
			 "backends", bes);
}

static void trace_usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate policy trace --scenario S --src REF --dst REF --dport PORT/PROTO "
		"[-o json]\n"
		"\n"
		"REF: ns/pod, node/NAME, ext/NAME, ip/A.B.C.D, or a label list for a hypothetical\n"
		"endpoint (k8s:app=web,k8s:io.kubernetes.pod.namespace=x); --dst may also be\n"
		"svc/NS/NAME (its clusterIP). A destination that is a service frontend (ClusterIP,\n"
		"NodePort on a node address, LoadBalancer IP, externalIP) is traced to each of its\n"
		"backends. PORT/PROTO: 80/tcp, 53/udp, 5000/sctp, 8/icmp (ICMP type). Ends with\n"
		"\"Final verdict: ALLOWED\" or \"Final verdict: DENIED\" (a service whose backends\n"
		"differ: \"Final verdict: DEPENDS ON THE BACKEND ...\"); exit 0 either way, 1 on\n"
		"errors.\n");
}

static int policy_trace(int argc, char **argv)
{
	static const struct option opts[] = {
		{"scenario", required_argument, NULL, 's'},
		{"src", required_argument, NULL, 'S'},
		{"dst", required_argument, NULL, 'D'},
		{"dport", required_argument, NULL, 'p'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *scen = NULL, *src = NULL, *dst = NULL, *dport = NULL;
	char src_ref[512], dst_ref[512], pn[16];
	struct scenario *s = NULL;
	struct policy_view v = {0};
	struct policy_trace t;
	struct svc_trace *st = NULL;
	struct diag d = {""};
	uint16_t port = 0;
	uint8_t proto = 0;
	int json = 0, c, ex, rc = EXIT_FAILURE_, found;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			scen = optarg;
			break;
		case 'S':
			src = optarg;
			break;
		case 'D':
			dst = optarg;
			break;
		case 'p':
			dport = optarg;
			break;
		default:
			ex = common_opt(c, &json, trace_usage);
			if (ex != OPT_NEXT)
				return ex;
		}
	}
	if (optind != argc || !scen || !src || !dst || !dport) {
		trace_usage(stderr);
		return EXIT_USAGE;
	}
	if (parse_dport(dport, &proto, &port)) {
		fprintf(stderr,
			"ciliate policy trace: bad --dport \"%s\" (PORT/tcp|udp|sctp, "
			"TYPE/icmp)\n",
			dport);
		return EXIT_USAGE;
	}
	if (policy_trace_load(scen, src, dst, &s, src_ref, dst_ref, sizeof(src_ref), &d) ||
	    policy_view_compute(&v, &s->model, &d)) {
		fprintf(stderr, "ciliate policy trace: %s\n", d.msg);
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		goto out;
	found = svc_trace_find(&v, src_ref, dst_ref, proto, port, st, &d);
	if (found < 0 || (found && svc_trace_run(&v, src_ref, proto, st, &d)) ||
	    (!found && policy_trace_run(&v, src_ref, dst_ref, proto, port, &t, &d))) {
		fprintf(stderr, "ciliate policy trace: %s\n", d.msg);
		goto out;
	}
	if (found && json) {
		print_json(json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:s}", "src", src_ref, "dst",
				     dst_ref, "protocol", proto_name(proto, pn, sizeof(pn)), "port",
				     (int)port, "service", svc_trace_json(&v, st), "warnings",
				     warnings_json(&s->model), "verdict", svc_trace_verdict(st)));
	} else if (found) {
		print_warnings(&s->model, stdout);
		svc_trace_print(stdout, &v, st, src_ref, dst_ref);
	}
	if (found) {
		rc = EXIT_OK;
		goto out;
	}
	if (json) {
		print_json(json_pack(
			"{s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:s}", "src", t.src.ref, "dst",
			t.dst.ref, "protocol", proto_name(proto, pn, sizeof(pn)), "port", (int)port,
			"egress", side_json(&v, &t, DIR_EGRESS), "ingress",
			side_json(&v, &t, DIR_INGRESS), "warnings", warnings_json(&s->model),
			"verdict", t.allowed ? "ALLOWED" : "DENIED"));
	} else {
		print_warnings(&s->model, stdout);
		policy_trace_print(stdout, &v, &t);
	}
	rc = EXIT_OK;
out:
	free(st);
	policy_view_free(&v);
	scenario_free(s);
	return rc;
}

/* ---- policy get ---------------------------------------------------------------------------- */

static void get_usage(FILE *f)
{
	fprintf(f, "usage: ciliate policy get --scenario S [--endpoint ns/pod] [-o json]\n"
		   "\n"
		   "Per endpoint: node, identity, enforcement, the policies selecting it, and its\n"
		   "compiled entries (direction, peer, L4, allow/deny, rule).\n");
}

static json_t *entries_json(const struct policy_view *v, const struct node_state *ns,
			    uint32_t ep_id)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < ns->npolicy; i++)
		if (!ep_id || ns->policy[i].key.ep_id == ep_id)
			json_array_append_new(arr, entry_json(v, ns, &ns->policy[i]));
	return arr;
}

static void print_entries(const struct policy_view *v, const struct node_state *ns, uint32_t ep_id,
			  const char *indent)
{
	const struct node_policy_entry *e;
	char peer[400], l4[32];
	size_t i, n = 0;

	for (i = 0; i < ns->npolicy; i++) {
		e = &ns->policy[i];
		if (ep_id && e->key.ep_id != ep_id)
			continue;
		if (!n++)
			printf("%s%-8s %-10s %-28s %-16s %-6s %s\n", indent, "DIR", "IDENTITY",
			       "PEER", "L4", "ACTION", "RULE");
		policy_identity_name(v, ns, e->key.identity, peer, sizeof(peer));
		policy_entry_l4(&e->key, l4, sizeof(l4));
		printf("%s%-8s %-10u %-28s %-16s %-6s %s\n", indent, dir_name(e->key.dir),
		       e->key.identity, peer, l4, (e->val.flags & POLICY_F_DENY) ? "deny" : "allow",
		       policy_entry_rule(ns, e));
	}
	if (!n)
		printf("%s(no entries)\n", indent);
}

static const char *enforcement(uint32_t flags, uint8_t dir)
{
	return (flags & (dir == DIR_INGRESS ? EP_F_INGRESS_ENFORCED : EP_F_EGRESS_ENFORCED))
		       ? "enforced"
		       : "not enforced";
}

static int policy_get(int argc, char **argv)
{
	static const struct option opts[] = {
		{"scenario", required_argument, NULL, 's'},
		{"endpoint", required_argument, NULL, 'e'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *scen = NULL, *endpoint = NULL;
	char ref[MODEL_NAME_MAX + 70], name[MODEL_NAME_MAX + 80], ip[IP4_STR_MAX];
	struct scenario *s = NULL;
	struct policy_view v = {0};
	struct diag d = {""};
	json_t *arr = NULL;
	size_t i, j, k, shown = 0;
	int json = 0, c, ex, rc = EXIT_FAILURE_;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			scen = optarg;
			break;
		case 'e':
			endpoint = optarg;
			break;
		default:
			ex = common_opt(c, &json, get_usage);
			if (ex != OPT_NEXT)
				return ex;
		}
	}
	if (optind != argc || !scen) {
		get_usage(stderr);
		return EXIT_USAGE;
	}
	if (scenario_load(scen, &s, &d) || policy_view_compute(&v, &s->model, &d)) {
		fprintf(stderr, "ciliate policy get: %s\n", d.msg);
		goto out;
	}
	if (endpoint && !cluster_find_pod(&s->model, endpoint)) {
		fprintf(stderr, "ciliate policy get: no pod \"%s\" in %s\n", endpoint, scen);
		goto out;
	}
	if (json)
		arr = json_array();
	else
		print_warnings(&s->model, stdout);
	for (i = 0; i < v.nnodes; i++) {
		const struct node_state *ns = &v.nodes[i];

		for (j = 0; j < ns->neps; j++) {
			const struct node_endpoint *ep = &ns->eps[j];
			json_t *sel = json ? json_array() : NULL;

			snprintf(ref, sizeof(ref), "%s/%s", ep->pod->ns, ep->pod->name);
			if (endpoint && strcmp(endpoint, ref))
				continue;
			shown++;
			if (!json)
				printf("Endpoint %s (id %u, identity %u, %s, node %s)\n"
				       "  ingress %s, egress %s\n",
				       ref, ep->info.ep_id, ep->info.identity,
				       ip4_format(ep->pod->ip, ip), ns->node->name,
				       enforcement(ep->info.flags, DIR_INGRESS),
				       enforcement(ep->info.flags, DIR_EGRESS));
			for (k = 0; k < s->model.npolicies; k++) {
				if (!policy_selects(&s->model, s->model.policies[k], ep->pod))
					continue;
				policy_display_name(s->model.policies[k], name, sizeof(name));
				if (json)
					json_array_append_new(sel, json_string(name));
				else
					printf("  selected by %s (%s)\n", name,
					       policy_kind_name(s->model.policies[k]->kind));
			}
			if (json) {
				json_array_append_new(
					arr,
					json_pack("{s:s, s:s, s:i, s:i, s:s, s:b, s:b, s:o, s:o}",
						  "endpoint", ref, "node", ns->node->name, "id",
						  (int)ep->info.ep_id, "identity",
						  (int)ep->info.identity, "ip",
						  ip4_format(ep->pod->ip, ip), "ingress_enforced",
						  !!(ep->info.flags & EP_F_INGRESS_ENFORCED),
						  "egress_enforced",
						  !!(ep->info.flags & EP_F_EGRESS_ENFORCED),
						  "selected_by", sel, "entries",
						  entries_json(&v, ns, ep->info.ep_id)));
			} else {
				print_entries(&v, ns, ep->info.ep_id, "  ");
				printf("\n");
			}
		}
	}
	if (endpoint && !shown) {
		fprintf(stderr, "ciliate policy get: %s is not an endpoint (hostNetwork pod?)\n",
			endpoint);
		json_decref(arr);
		goto out;
	}
	if (json)
		print_json(json_pack("{s:o, s:o}", "endpoints", arr, "warnings",
				     warnings_json(&s->model)));
	rc = EXIT_OK;
out:
	policy_view_free(&v);
	scenario_free(s);
	return rc;
}

int cmd_policy(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "trace"))
		return policy_trace(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "get"))
		return policy_get(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		get_usage(stdout);
		trace_usage(stdout);
		return EXIT_OK;
	}
	get_usage(stderr);
	trace_usage(stderr);
	return EXIT_USAGE;
}

/* ---- bpf policy get ------------------------------------------------------------------------ */

static void bpf_usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate bpf policy get --scenario S --node N (ns/pod | --all) [-o json]\n"
		"\n"
		"The policy map entries of the node as the datapath holds them: endpoint, "
		"identity,\n"
		"direction, protocol, port/prefix, allow/deny, rule.\n");
}

static json_t *raw_entry_json(const struct policy_view *v, const struct node_state *ns,
			      const struct node_policy_entry *e)
{
	char peer[400], l4[32], pn[16];
	unsigned int bits =
		e->key.prefixlen > POLICY_PREFIX_PROTO ? e->key.prefixlen - POLICY_PREFIX_PROTO : 0;

	policy_identity_name(v, ns, e->key.identity, peer, sizeof(peer));
	policy_entry_l4(&e->key, l4, sizeof(l4));
	return json_pack(
		"{s:i, s:i, s:s, s:s, s:i, s:s, s:i, s:i, s:i, s:s, s:s, s:i, s:s}", "ep_id",
		(int)e->key.ep_id, "identity", (int)e->key.identity, "peer", peer, "direction",
		dir_name(e->key.dir), "prefixlen", (int)e->key.prefixlen, "protocol",
		e->key.prefixlen > POLICY_PREFIX_FIXED ? proto_name(e->key.proto, pn, sizeof(pn))
						       : "any",
		"proto", (int)e->key.proto, "port", (int)ntohs(e->key.dport), "port_bits",
		(int)bits, "l4", l4, "action", (e->val.flags & POLICY_F_DENY) ? "deny" : "allow",
		"rule_id", (int)e->val.rule_id, "rule", policy_entry_rule(ns, e));
}

int cmd_bpf_policy(int argc, char **argv)
{
	static const struct option opts[] = {
		{"scenario", required_argument, NULL, 's'},
		{"node", required_argument, NULL, 'n'},
		{"all", no_argument, NULL, 'a'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *scen = NULL, *node = NULL, *endpoint = NULL;
	const struct node_endpoint *ep = NULL;
	const struct node_state *ns;
	struct scenario *s = NULL;
	struct policy_view v = {0};
	struct diag d = {""};
	char peer[400], pn[16];
	json_t *arr;
	size_t i;
	int json = 0, all = 0, c, ex, rc = EXIT_FAILURE_;

	if (argc < 2 || strcmp(argv[1], "get")) {
		bpf_usage(stderr);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			scen = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 'a':
			all = 1;
			break;
		default:
			ex = common_opt(c, &json, bpf_usage);
			if (ex != OPT_NEXT)
				return ex;
		}
	}
	if (optind < argc)
		endpoint = argv[optind++];
	if (optind != argc || !scen || !node || (all == !!endpoint)) {
		bpf_usage(stderr);
		return EXIT_USAGE;
	}
	if (scenario_load(scen, &s, &d) || policy_view_compute(&v, &s->model, &d)) {
		fprintf(stderr, "ciliate bpf policy get: %s\n", d.msg);
		goto out;
	}
	ns = policy_view_node(&v, node);
	if (!ns) {
		fprintf(stderr, "ciliate bpf policy get: no node \"%s\" in %s\n", node, scen);
		goto out;
	}
	if (endpoint) {
		ep = node_state_find_endpoint(ns, endpoint);
		if (!ep) {
			fprintf(stderr,
				"ciliate bpf policy get: %s is not an endpoint of node %s\n",
				endpoint, node);
			goto out;
		}
	}
	if (json) {
		arr = json_array();
		for (i = 0; i < ns->npolicy; i++)
			if (!ep || ns->policy[i].key.ep_id == ep->info.ep_id)
				json_array_append_new(arr, raw_entry_json(&v, ns, &ns->policy[i]));
		print_json(arr);
		rc = EXIT_OK;
		goto out;
	}
	printf("%-6s %-10s %-24s %-8s %-6s %-7s %-12s %-6s %s\n", "EP", "IDENTITY", "PEER", "DIR",
	       "PROTO", "PORT", "PREFIX", "ACTION", "RULE");
	for (i = 0; i < ns->npolicy; i++) {
		const struct node_policy_entry *e = &ns->policy[i];
		char port[16], prefix[24];

		if (ep && e->key.ep_id != ep->info.ep_id)
			continue;
		policy_identity_name(&v, ns, e->key.identity, peer, sizeof(peer));
		if (e->key.prefixlen > POLICY_PREFIX_PROTO)
			snprintf(port, sizeof(port), "%u", ntohs(e->key.dport));
		else
			snprintf(port, sizeof(port), "*");
		snprintf(prefix, sizeof(prefix), "%u (port/%u)", e->key.prefixlen,
			 e->key.prefixlen > POLICY_PREFIX_PROTO
				 ? e->key.prefixlen - POLICY_PREFIX_PROTO
				 : 0);
		printf("%-6u %-10u %-24s %-8s %-6s %-7s %-12s %-6s %s\n", e->key.ep_id,
		       e->key.identity, peer, dir_name(e->key.dir),
		       e->key.prefixlen > POLICY_PREFIX_FIXED
			       ? proto_name(e->key.proto, pn, sizeof(pn))
			       : "any",
		       port, prefix, (e->val.flags & POLICY_F_DENY) ? "deny" : "allow",
		       policy_entry_rule(ns, e));
	}
	rc = EXIT_OK;
out:
	policy_view_free(&v);
	scenario_free(s);
	return rc;
}
