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

static void trace_usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate policy trace --scenario S --src REF --dst REF --dport PORT/PROTO "
		"[-o json]\n"
		"\n"
		"REF: ns/pod, node/NAME, ext/NAME, ip/A.B.C.D, or a label list for a hypothetical\n"
		"endpoint (k8s:app=web,k8s:io.kubernetes.pod.namespace=x). PORT/PROTO: 80/tcp,\n"
		"53/udp, 5000/sctp, 8/icmp (ICMP type). Ends with \"Final verdict: ALLOWED\" or\n"
		"\"Final verdict: DENIED\"; exit 0 either way, 1 on errors.\n");
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
	struct diag d = {""};
	uint16_t port = 0;
	uint8_t proto = 0;
	int json = 0, c, ex, rc = EXIT_FAILURE_;

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
	    policy_view_compute(&v, &s->model, &d) ||
	    policy_trace_run(&v, src_ref, dst_ref, proto, port, &t, &d)) {
		fprintf(stderr, "ciliate policy trace: %s\n", d.msg);
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
