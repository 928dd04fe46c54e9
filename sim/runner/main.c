/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate-sim: the network-namespace cluster simulator (SPEC section 5, docs/SIMULATOR.md). */
#include <stdio.h>
#include <string.h>

#include "sim.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate-sim COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  up FILE                          bring a scenario's cluster up and leave it running\n"
		"  down [FILE|TAG|--all]            remove a cluster (idempotent; also after a crash)\n"
		"  run FILE... [--report FILE.json] bring up (or reuse), run every Replay and Test,\n"
		"                                   tear down\n"
		"  exec [-c TAG] TARGET -- CMD...   run CMD in NODE, ns/pod, ext/NAME or fabric\n"
		"  status [-o json]                 list running clusters and their hosts\n"
		"  capture [-c TAG] TARGET [-i IFACE] [-w FILE.pcap] [--count N] [--timeout S]\n"
		"                                   bounded tcpdump inside a host's namespace\n"
		"\n"
		"up and run also take --routing tunnel|native (replaces the scenarios' Cluster\n"
		"routing) and --no-datapath (plain kernel plumbing, no agents, no policy).\n"
		"Every simulated host is a network namespace named cil-<tag>-...; state lives in\n"
		SIM_STATE_DIR "/<tag>.json. Exit codes: 0 ok (run: every check held), 1 failure,\n"
		"2 usage error.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return SIM_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return SIM_EXIT_OK;
	}
	if (!strcmp(argv[1], "up"))
		return cmd_up(argc - 1, argv + 1);
	if (!strcmp(argv[1], "down"))
		return cmd_down(argc - 1, argv + 1);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "exec"))
		return cmd_exec(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "capture"))
		return cmd_capture(argc - 1, argv + 1);
	fprintf(stderr, "ciliate-sim: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return SIM_EXIT_USAGE;
}
