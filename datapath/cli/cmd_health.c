/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ciliate health status [--probe] [-o json] [--node NAME | --socket PATH]`: node-to-node
 * reachability as each agent's prober last saw it (op health-status, docs/HEALTH.md), in the
 * shape of `cilium-health status` (REFERENCE.md section 10):
 *
 *   Probe time:   2026-12-05T06:11:57Z
 *   Nodes:
 *     default/node-1 (localhost):
 *       Host connectivity to 192.0.2.1:
 *         ICMP to stack:   OK, RTT=306.523µs
 *         HTTP to agent:   OK, RTT=206.191µs
 *     default/node-2:
 *       Host connectivity to 192.0.2.2:
 *         ICMP to stack:   Connection timed out
 *         HTTP to agent:   Get "http://192.0.2.2:4240/hello": dial tcp ...: i/o timeout
 *
 * --probe asks for a fresh round and waits for it (bounded by the agent). With several
 * agents, one block per agent after a "Node: NAME" line. -o json: the answers as an array.
 * Exit 1 when an agent does not answer or a node failed a probe of the last round.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "agent/api.h"
#include "agent/health.h"
#include "cli.h"

#define HEALTH_USAGE                                                                       \
	"usage: ciliate health status [--probe] [-o json] [--node NAME | --socket PATH]"
#define HEALTH_CALL_MS (HEALTH_WAIT_MAX_MS + 5000)

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

/* A duration as Go's time.Duration prints it: 306.523µs, 1.5ms, 2s. */
static void go_duration(long long ns, char *buf, size_t size)
{
	const char *unit = "ns";
	long long div = 1;
	int n, i;

	if (ns >= 1000000000LL) {
		unit = "s";
		div = 1000000000LL;
	} else if (ns >= 1000000LL) {
		unit = "ms";
		div = 1000000LL;
	} else if (ns >= 1000LL) {
		unit = "µs";
		div = 1000LL;
	}
	if (div == 1) {
		snprintf(buf, size, "%lldns", ns);
		return;
	}
	n = snprintf(buf, size, "%lld.%0*lld", ns / div, div == 1000 ? 3 : div == 1000000 ? 6 : 9,
		     ns % div);
	if (n < 0 || (size_t)n >= size)
		return;
	for (i = n - 1; i > 0 && buf[i] == '0'; i--)
		buf[i] = '\0';
	if (buf[i] == '.')
		buf[i] = '\0';
	snprintf(buf + strlen(buf), size - strlen(buf), "%s", unit);
}

static void print_probe(const char *path, json_t *p)
{
	const char *st = str(p, "status");
	char rtt[48];

	if (!strcmp(st, "ok")) {
		go_duration((long long)json_integer_value(json_object_get(p, "rttNs")), rtt,
			    sizeof(rtt));
		printf("      %s:   OK, RTT=%s\n", path, rtt);
	} else if (!strcmp(st, "error")) {
		printf("      %s:   %s\n", path, str(p, "error"));
	} else {
		printf("      %s:   not probed yet\n", path);
	}
}

/* One agent's answer; false when a node is unreachable. */
static bool print_status(json_t *r)
{
	json_t *nodes = json_object_get(r, "nodes"), *n;
	bool all_ok = true;
	size_t i;

	printf("Probe time:   %s\n", json_is_string(json_object_get(r, "probeTime"))
					     ? str(r, "probeTime")
					     : "never (no probe round yet)");
	if (*str(r, "probeError"))
		printf("Probe:        %s\n", str(r, "probeError"));
	printf("Nodes:\n");
	json_array_foreach(nodes, i, n)
	{
		json_t *icmp = json_object_get(n, "icmp"), *http = json_object_get(n, "http");

		printf("  %s/%s%s:\n", str(r, "cluster"), str(n, "name"),
		       json_is_true(json_object_get(n, "localhost")) ? " (localhost)" : "");
		printf("    Host connectivity to %s:\n", str(n, "ip"));
		print_probe("ICMP to stack", icmp);
		print_probe("HTTP to agent", http);
		if (strcmp(str(icmp, "status"), "ok") || strcmp(str(http, "status"), "ok"))
			all_ok = false;
	}
	return all_ok;
}

int cmd_health(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'}, {"node", required_argument, NULL, 'n'},
		{"socket", required_argument, NULL, 'S'}, {"probe", no_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},	  {0},
	};
	static char socks[CLI_SOCKETS_MAX][CLI_SOCKET_PATH_MAX];
	const char *node = NULL, *sock = NULL;
	bool json = false, probe = false;
	json_t *all, *r;
	size_t n, i;
	int c, rc = EXIT_OK;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("%s\n", HEALTH_USAGE);
		return EXIT_OK;
	}
	if (argc < 2 || strcmp(argv[1], "status")) {
		fprintf(stderr, "%s\n", HEALTH_USAGE);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (c == 'o') {
			if (cli_output_format("health status", optarg, &json))
				return EXIT_USAGE;
		} else if (c == 'n') {
			node = optarg;
		} else if (c == 'S') {
			sock = optarg;
		} else if (c == 'p') {
			probe = true;
		} else if (c == 'h') {
			printf("%s\n", HEALTH_USAGE);
			return EXIT_OK;
		} else {
			fprintf(stderr, "%s\n", HEALTH_USAGE);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || (node && sock)) {
		fprintf(stderr, "%s\n", HEALTH_USAGE);
		return EXIT_USAGE;
	}
	n = cli_agent_sockets(node, sock, socks);
	if (!n) {
		fprintf(stderr, "ciliate health status: no agent socket under %s (give --node or "
				"--socket)\n", AGENT_RUN_ROOT);
		return EXIT_FAILURE_;
	}
	all = json_array();
	for (i = 0; i < n; i++) {
		json_t *req = json_pack("{s:s, s:b}", "op", AGENT_OP_HEALTH_STATUS, "probe", probe);
		char err[600];

		r = NULL;
		if (agent_call(socks[i], req, HEALTH_CALL_MS, &r, err, sizeof(err))) {
			fprintf(stderr, "ciliate health status: %s\n", err);
			rc = EXIT_FAILURE_;
		} else if (!json_is_true(json_object_get(r, "ok"))) {
			fprintf(stderr, "ciliate health status: %s: %s\n", socks[i],
				str(r, "error")[0] ? str(r, "error") : "request failed");
			json_decref(r);
			rc = EXIT_FAILURE_;
		} else {
			json_object_del(r, "ok");
			json_array_append_new(all, r);
		}
		json_decref(req);
	}
	json_array_foreach(all, i, r)
	{
		json_t *sum = json_object_get(r, "summary");

		if (json_integer_value(json_object_get(sum, "unreachable")) > 0)
			rc = EXIT_FAILURE_; /* a node failed a probe (not: none probed yet) */
	}
	if (json) {
		json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
	} else {
		json_array_foreach(all, i, r)
		{
			if (json_array_size(all) > 1)
				printf("%sNode: %s\n", i ? "\n" : "", str(r, "node"));
			print_status(r);
		}
	}
	json_decref(all);
	return rc;
}
