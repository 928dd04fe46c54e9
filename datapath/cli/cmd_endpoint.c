/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate endpoint list / ciliate status: asked of the agents over their local API
 * (/run/ciliate/<node>/agent.sock, see datapath/agent/api.h). Without --node every agent
 * socket found under /run/ciliate/ is asked.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/api.h"
#include "cli.h"
#include "store/store.h"

#define SOCKETS_MAX CLI_SOCKETS_MAX

struct agent_opts_cli {
	const char *node;
	const char *socket;
	const char *store;
	bool json;
	bool verbose;
};

static int parse(int argc, char **argv, const char *cmd, struct agent_opts_cli *o)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"node", required_argument, NULL, 'n'},
		{"socket", required_argument, NULL, 'S'},
		{"store", required_argument, NULL, 's'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:hv", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (cli_output_format(cmd, optarg, &o->json))
				return EXIT_USAGE;
			break;
		case 'n':
			o->node = optarg;
			break;
		case 'S':
			o->socket = optarg;
			break;
		case 's':
			o->store = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			printf("usage: ciliate %s [-o json] [--node NAME | --socket PATH]%s\n", cmd,
			       strcmp(cmd, "status") ? "" : " [--store DIR|URI] [--verbose]");
			exit(EXIT_OK);
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ciliate %s: unexpected argument \"%s\"\n", cmd, argv[optind]);
		return EXIT_USAGE;
	}
	return 0;
}

size_t cli_agent_sockets(const char *node, const char *socket,
			 char (*out)[CLI_SOCKET_PATH_MAX])
{
	const char *prefix;
	struct dirent *de;
	size_t n = 0;
	DIR *dh;

	if (socket) {
		snprintf(out[0], CLI_SOCKET_PATH_MAX, "%s", socket);
		return 1;
	}
	if (node) {
		agent_sock_path(node, out[0], CLI_SOCKET_PATH_MAX);
		return 1;
	}
	/* --cluster TAG (cluster_opt.c): that cluster's agents only, not every one here */
	prefix = getenv(CLI_AGENT_PREFIX_ENV);
	dh = opendir(AGENT_RUN_ROOT);
	while (dh && (de = readdir(dh)) && n < CLI_SOCKETS_MAX) {
		if (de->d_name[0] == '.' || (prefix && strncmp(de->d_name, prefix, strlen(prefix))))
			continue;
		agent_sock_path(de->d_name, out[n], CLI_SOCKET_PATH_MAX);
		if (access(out[n], F_OK) == 0)
			n++;
	}
	if (dh)
		closedir(dh);
	return n;
}

/* The agent sockets to ask: --socket, --node, or every /run/ciliate/<node>/agent.sock. */
static size_t sockets(const struct agent_opts_cli *o, char (*out)[CLI_SOCKET_PATH_MAX])
{
	return cli_agent_sockets(o->node, o->socket, out);
}

json_t *cli_agent_ask(const char *sock, const char *op, char *err, size_t errsize)
{
	json_t *req = json_pack("{s:s}", "op", op), *resp = NULL;
	int rc = agent_call(sock, req, 5000, &resp, err, errsize);

	json_decref(req);
	if (rc)
		return NULL;
	if (!json_is_true(json_object_get(resp, "ok"))) {
		snprintf(err, errsize, "%s: %s", sock,
			 json_string_value(json_object_get(resp, "error")) ?: "request failed");
		json_decref(resp);
		return NULL;
	}
	return resp;
}

/* The table, laid out like `cilium-dbg endpoint list`: a two-line header, one label per line
 * in the LABELS column. */
static void print_table(json_t *all)
{
	const char *fmt = "%-6s %-12s %-28s %-15s %-17s %-17s %-9s %-48s %s\n";
	json_t *ep, *labels;
	size_t i, k;

	printf(fmt, "ID", "NODE", "POD", "IPv4", "POLICY (ingress)", "POLICY (egress)",
	       "IDENTITY", "LABELS (source:key[=value])", "STATUS");
	printf(fmt, "", "", "", "", "ENFORCEMENT", "ENFORCEMENT", "", "", "");
	json_array_foreach(all, i, ep)
	{
		const char *e = json_string_value(json_object_get(ep, "error")) ?: "";
		char id[24], ident[24];

		labels = json_object_get(ep, "labels");
		snprintf(id, sizeof(id), "%lld", json_integer_value(json_object_get(ep, "id")));
		snprintf(ident, sizeof(ident), "%lld",
			 json_integer_value(json_object_get(ep, "identity")));
		printf(fmt, id, json_string_value(json_object_get(ep, "node")) ?: "",
		       json_string_value(json_object_get(ep, "pod")) ?: "",
		       json_string_value(json_object_get(ep, "ip")) ?: "",
		       json_string_value(json_object_get(ep, "policyIngressEnforcement")) ?: "?",
		       json_string_value(json_object_get(ep, "policyEgressEnforcement")) ?: "?",
		       ident, json_string_value(json_array_get(labels, 0)) ?: "",
		       json_is_true(json_object_get(ep, "ready")) ? "ready" : e);
		for (k = 1; k < json_array_size(labels); k++)
			printf(fmt, "", "", "", "", "", "", "",
			       json_string_value(json_array_get(labels, k)) ?: "", "");
	}
}

int cmd_endpoint(int argc, char **argv)
{
	struct agent_opts_cli o = {0};
	static char socks[SOCKETS_MAX][300];
	json_t *all = json_array(), *resp, *ep;
	size_t n, i, k;
	char err[600];
	int rc;

	if (argc < 2 || strcmp(argv[1], "list")) {
		fprintf(stderr,
			"usage: ciliate endpoint list [-o json] [--node NAME | --socket PATH]\n");
		json_decref(all);
		return EXIT_USAGE;
	}
	rc = parse(argc - 1, argv + 1, "endpoint list", &o);
	if (rc) {
		json_decref(all);
		return rc;
	}
	n = sockets(&o, socks);
	if (!n) {
		fprintf(stderr,
			"ciliate endpoint list: no agent socket under %s (give --node or "
			"--socket)\n",
			AGENT_RUN_ROOT);
		json_decref(all);
		return EXIT_FAILURE_;
	}
	for (i = 0; i < n; i++) {
		resp = cli_agent_ask(socks[i], AGENT_OP_ENDPOINT_LIST, err, sizeof(err));
		if (!resp) {
			fprintf(stderr, "ciliate endpoint list: %s\n", err);
			rc = EXIT_FAILURE_;
			continue;
		}
		json_array_foreach(json_object_get(resp, "endpoints"), k, ep)
		{
			json_object_set(ep, "node", json_object_get(resp, "node"));
			json_array_append(all, ep);
		}
		json_decref(resp);
	}
	if (o.json) {
		json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
	} else {
		print_table(all);
	}
	json_decref(all);
	return rc;
}

/* Store summary: revision and objects per kind. */
static json_t *store_summary(const char *uri, char *err, size_t errsize)
{
	struct diag d = {{0}};
	struct store_list l;
	struct store *st;
	json_t *kinds = json_object(), *r;
	size_t i, plen = strlen("/ciliate/objects/");

	if (store_open(uri, &st, &d) || store_list(st, "/ciliate/", &l, &d)) {
		snprintf(err, errsize, "%s", d.msg);
		json_decref(kinds);
		return NULL;
	}
	for (i = 0; i < l.n; i++) {
		const char *k = l.items[i].key, *slash;
		char kind[128];

		if (strncmp(k, "/ciliate/objects/", plen))
			continue;
		slash = strchr(k + plen, '/');
		snprintf(kind, sizeof(kind), "%.*s", slash ? (int)(slash - k - plen) : 0, k + plen);
		json_object_set_new(
			kinds, kind,
			json_integer(json_integer_value(json_object_get(kinds, kind)) + 1));
	}
	r = json_pack("{s:s, s:I, s:o}", "uri", uri, "revision", (json_int_t)l.revision, "objects",
		      kinds);
	store_list_free(&l);
	store_close(st);
	return r;
}

/* The agent's event pipeline: lost events are shown, never hidden. */
static void print_events(json_t *ev)
{
	if (!ev)
		return;
	printf("         events: %lld decoded, %lld lost%s, flow buffer %lld/%lld\n",
	       json_integer_value(json_object_get(ev, "seen")),
	       json_integer_value(json_object_get(ev, "lost")),
	       json_integer_value(json_object_get(ev, "lost")) ? " (the ring buffer was full)" : "",
	       json_integer_value(json_object_get(ev, "bufferSize")),
	       json_integer_value(json_object_get(ev, "bufferCapacity")));
}

/* Egress gateway policies as this agent's model has them: the chosen gateway node each. */
static void print_egress(json_t *eg)
{
	json_t *pol, *gw;
	size_t i, j;

	if (!eg || !json_array_size(json_object_get(eg, "policies")))
		return;
	printf("         egress gateway: %lld map entries\n",
	       json_integer_value(json_object_get(eg, "entries")));
	json_array_foreach(json_object_get(eg, "policies"), i, pol)
		json_array_foreach(json_object_get(pol, "gateways"), j, gw)
	{
		const char *node = json_string_value(json_object_get(gw, "node"));
		const char *eip = json_string_value(json_object_get(gw, "egressIP"));
		const char *ifc = json_string_value(json_object_get(gw, "interface"));

		printf("           policy %s: gateway %s%s, egress IP %s%s%s\n",
		       json_string_value(json_object_get(pol, "policy")),
		       node ? node : "none (NO_EGRESS_GATEWAY)",
		       json_is_true(json_object_get(gw, "thisNode")) ? " (this node)" : "",
		       eip ? eip : "of ", eip ? "" : (ifc && *ifc ? "interface " : "the default-route device"),
		       eip ? "" : (ifc ? ifc : ""));
	}
}

/* A duration as "2m10s", "3s", "1h2m", "3d4h". */
static void fmt_dur(long long s, char *out, size_t size)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, size, "%llds", s);
	else if (s < 3600)
		snprintf(out, size, "%lldm%llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, size, "%lldh%lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, size, "%lldd%lldh", s / 86400, s % 86400 / 3600);
}

/* The operator (docs/OPERATOR.md): its leader key and the status its leader writes each
 * pass, as one object: leader (null: none elected), since, leaseTTL, healthy, lastPass
 * (unix seconds of the leader's last pass, null before its first), lastPassAgo, interval,
 * the chores' totals and lastError. NULL when the store cannot be read. */
static json_t *operator_summary(const char *uri)
{
	struct diag d = {{0}};
	struct store_kv lk = {0}, sk = {0};
	json_t *leader = NULL, *st = NULL, *out;
	const char *id, *sid;
	struct store *s;
	int e1, e2;

	if (store_open(uri, &s, &d))
		return NULL;
	e1 = store_get(s, "/ciliate/operator/leader", &lk, &d);
	e2 = store_get(s, "/ciliate/operator/status", &sk, &d);
	store_close(s);
	if ((e1 && e1 != -ENOENT) || (e2 && e2 != -ENOENT)) {
		store_kv_free(&lk);
		store_kv_free(&sk);
		return NULL;
	}
	if (!e1)
		leader = json_loadb(lk.value, lk.value_len, 0, NULL);
	if (!e2)
		st = json_loadb(sk.value, sk.value_len, 0, NULL);
	store_kv_free(&lk);
	store_kv_free(&sk);
	id = json_string_value(json_object_get(leader, "id"));
	sid = json_string_value(json_object_get(st, "leader"));
	out = json_object();
	json_object_set_new(out, "leader", id ? json_string(id) : json_null());
	if (id) {
		json_object_set(out, "since", json_object_get(leader, "since"));
		json_object_set(out, "leaseTTL", json_object_get(leader, "leaseTTL"));
	}
	if (st && (!id || (sid && !strcmp(sid, id)))) {
		long long upd = json_integer_value(json_object_get(st, "updated"));

		if (!id)
			json_object_set(out, "lastLeader", json_object_get(st, "leader"));
		json_object_set(out, "healthy", json_object_get(st, "healthy"));
		json_object_set_new(out, "lastPass", json_integer(upd));
		json_object_set_new(out, "lastPassAgo", json_integer((long long)time(NULL) - upd));
		json_object_set(out, "interval", json_object_get(st, "interval"));
		json_object_set(out, "identitiesCollected",
				json_object_get(st, "identitiesCollected"));
		json_object_set(out, "nodesReleased", json_object_get(st, "nodesReleased"));
		json_object_set(out, "policies", json_object_get(st, "policies"));
		json_object_set(out, "lastError", json_object_get(st, "lastError"));
	} else {
		json_object_set_new(out, "healthy", json_null());
		json_object_set_new(out, "lastPass", json_null());
	}
	json_decref(leader);
	json_decref(st);
	return out;
}

/* "Operator: leader ID (since 2m10s), healthy, last pass 3s ago" or "no leader elected". */
static void print_operator(json_t *op)
{
	const char *id = json_string_value(json_object_get(op, "leader"));
	json_t *last = json_object_get(op, "lastPass");
	char since[32], ago[32];

	fmt_dur(json_integer_value(json_object_get(op, "lastPassAgo")), ago, sizeof(ago));
	if (!id) {
		printf("Operator: no leader elected");
		if (json_is_integer(last))
			printf(" (last leader %s, last pass %s ago)",
			       json_string_value(json_object_get(op, "lastLeader")) ?: "?", ago);
		printf("\n");
		return;
	}
	fmt_dur((long long)time(NULL) - json_integer_value(json_object_get(op, "since")), since,
		sizeof(since));
	printf("Operator: leader %s (since %s), ", id, since);
	if (!json_is_integer(last)) {
		printf("no pass yet\n");
		return;
	}
	if (json_is_true(json_object_get(op, "healthy")))
		printf("healthy");
	else
		printf("UNHEALTHY: %s", json_string_value(json_object_get(op, "lastError")) ?: "?");
	printf(", last pass %s ago", ago);
	if (json_integer_value(json_object_get(op, "lastPassAgo")) >
	    3 * json_integer_value(json_object_get(op, "interval")) + 5)
		printf(" (late: passes run every %llds)",
		       json_integer_value(json_object_get(op, "interval")));
	printf(", %lld identities collected, %lld nodes released, %lld policies\n",
	       json_integer_value(json_object_get(op, "identitiesCollected")),
	       json_integer_value(json_object_get(op, "nodesReleased")),
	       json_integer_value(json_object_get(op, "policies")));
}

/* The agent's own view of its store: "Store: etcd (URI) reachable" or UNREACHABLE. */
static void print_agent_store(json_t *s)
{
	json_t *since = json_object_get(s, "unreachableSince");
	char dur[32];

	if (!json_is_object(s))
		return;
	printf("         Store: %s (%s) ",
	       json_string_value(json_object_get(s, "backend")) ?: "?",
	       json_string_value(json_object_get(s, "uri")) ?: "?");
	if (json_is_true(json_object_get(s, "reachable"))) {
		printf("reachable\n");
		return;
	}
	printf("UNREACHABLE");
	if (json_is_integer(since)) {
		fmt_dur((long long)time(NULL) - json_integer_value(since), dur, sizeof(dur));
		printf(" for %s", dur);
	}
	printf(": %s\n", json_string_value(json_object_get(s, "lastError")) ?: "?");
}

/* "Cluster health: N/M reachable" (nodes, itself included, whose ICMP and HTTP probes both
 * succeeded in the agent's last round; docs/HEALTH.md), and which are not. */
static void print_cluster_health(json_t *h)
{
	json_t *un = json_object_get(h, "unreachable"), *v;
	size_t i;

	if (!json_is_object(h))
		return;
	printf("         Cluster health: %lld/%lld reachable",
	       json_integer_value(json_object_get(h, "reachable")),
	       json_integer_value(json_object_get(h, "total")));
	if (!json_is_string(json_object_get(h, "probeTime")))
		printf(" (no probe round yet)");
	else if (json_array_size(un)) {
		printf(" (unreachable:");
		json_array_foreach(un, i, v)
			printf(" %s", json_string_value(v));
		printf(")");
	}
	printf("\n");
}

int cmd_status(int argc, char **argv)
{
	struct agent_opts_cli o = {0};
	static char socks[SOCKETS_MAX][300];
	json_t *agents = json_array(), *store, *resp, *out, *v, *op = NULL;
	const char *key;
	char err[1100];
	size_t n, i;
	int rc;

	rc = parse(argc, argv, "status", &o);
	if (rc) {
		json_decref(agents);
		return rc;
	}
	store = store_summary(cli_store_uri(o.store), err, sizeof(err));
	if (!store) {
		store = json_pack("{s:s, s:s}", "uri", cli_store_uri(o.store), "error", err);
		rc = EXIT_FAILURE_;
	} else {
		op = operator_summary(cli_store_uri(o.store));
	}
	n = sockets(&o, socks);
	for (i = 0; i < n; i++) {
		resp = cli_agent_ask(socks[i], AGENT_OP_STATUS, err, sizeof(err));
		if (!resp) {
			json_array_append_new(agents, json_pack("{s:s, s:b, s:s}", "socket",
								socks[i], "ok", 0, "error", err));
			rc = EXIT_FAILURE_;
			continue;
		}
		json_array_append_new(agents, resp);
	}
	if ((o.node || o.socket) && !n)
		rc = EXIT_FAILURE_;
	out = json_pack("{s:o, s:o}", "store", store, "agents", agents);
	if (op)
		json_object_set_new(out, "operator", op);
	if (o.json) {
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
		json_decref(out);
		return rc;
	}
	if (json_object_get(store, "error")) {
		printf("Store:   %s: %s\n", json_string_value(json_object_get(store, "uri")),
		       json_string_value(json_object_get(store, "error")));
	} else {
		printf("Store:   %s, revision %lld, objects:",
		       json_string_value(json_object_get(store, "uri")),
		       json_integer_value(json_object_get(store, "revision")));
		json_object_foreach(json_object_get(store, "objects"), key, v)
			printf(" %s %lld", key, json_integer_value(v));
		printf("%s\n", json_object_size(json_object_get(store, "objects")) ? "" : " none");
	}
	if (op)
		print_operator(op);
	if (!n)
		printf("Agents:  none running (no socket under %s)\n", AGENT_RUN_ROOT);
	json_array_foreach(agents, i, resp)
	{
		json_t *eps = json_object_get(resp, "endpoints");
		json_t *rec = json_object_get(resp, "reconcile");
		json_t *bad = json_object_get(resp, "badObjects");
		json_t *b;
		size_t k;

		if (!json_is_true(json_object_get(resp, "ok"))) {
			printf("Agent:   %s: unreachable: %s\n",
			       json_string_value(json_object_get(resp, "socket")),
			       json_string_value(json_object_get(resp, "error")));
			continue;
		}
		printf("Agent:   %s OK, pod CIDR %s, store revision %lld (model %lld), endpoints "
		       "%lld/%lld ready, reconciles %lld (%lld failed, last %.0f ms), bad objects "
		       "%zu\n",
		       json_string_value(json_object_get(resp, "node")),
		       json_string_value(json_object_get(resp, "podCIDR")),
		       json_integer_value(json_object_get(resp, "storeRevision")),
		       json_integer_value(json_object_get(resp, "modelRevision")),
		       json_integer_value(json_object_get(eps, "ready")),
		       json_integer_value(json_object_get(eps, "total")),
		       json_integer_value(json_object_get(rec, "runs")),
		       json_integer_value(json_object_get(rec, "errors")),
		       json_number_value(json_object_get(rec, "lastMs")), json_array_size(bad));
		print_agent_store(json_object_get(resp, "storeHealth")); /* store_health.c */
		print_cluster_health(json_object_get(resp, "clusterHealth")); /* health.c */
		print_events(json_object_get(resp, "events"));
		print_egress(json_object_get(resp, "egressGateway"));
		json_array_foreach(bad, k, b)
			printf("         bad object: %s\n",
			       json_string_value(json_object_get(b, "error")));
		if (o.verbose && *(json_string_value(json_object_get(rec, "lastError")) ?: ""))
			printf("         last error: %s\n",
			       json_string_value(json_object_get(rec, "lastError")));
	}
	json_decref(out);
	return rc;
}
