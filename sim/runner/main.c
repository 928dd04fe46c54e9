/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate-sim: the network-namespace cluster simulator (SPEC section 5, docs/SIMULATOR.md). */
#include <stdio.h>
#include <string.h>

#include "sim.h"

static void usage(FILE *f)
{
	fputs("NAME\n"
	      "    ciliate-sim - the network-namespace cluster simulator\n"
	      "\n"
	      "SYNOPSIS\n"
	      "    ciliate-sim up FILE [--store URI] [--routing tunnel|native] [--no-datapath]\n"
	      "    ciliate-sim run FILE... [-r|--report FILE.json] [--flows FILE.jsonl]\n"
	      "                    [--html FILE.html] [--store URI] [--routing tunnel|native]\n"
	      "                    [--no-datapath]\n"
	      "    ciliate-sim down [FILE|TAG|--all]\n"
	      "    ciliate-sim exec [-c TAG] TARGET [--] CMD...\n"
	      "    ciliate-sim status [-o json]\n"
	      "    ciliate-sim capture [-c TAG] TARGET [-i IFACE] [-w FILE.pcap] [--count N]\n"
	      "                    [--timeout S] [--] [FILTER...]\n"
	      "    ciliate-sim -h|--help|help\n"
	      "\n"
	      "DESCRIPTION\n"
	      "    Turns a scenario file (a Cluster document, workloads, Test and Replay\n"
	      "    documents: SPEC section 5) into a cluster on this machine: every node,\n"
	      "    pod, external host and the fabric is a network namespace named\n"
	      "    cil-TAG-... (TAG: up to 8 lower-case letters and digits, from the\n"
	      "    Cluster's name), with one ciliate-agent per node, pods wired by\n"
	      "    ciliate-cni, echo servers and one ciliate-operator; then runs the Test\n"
	      "    documents with real TCP/UDP traffic and removes everything again.\n"
	      "    Every command but status needs root. A malformed command line prints\n"
	      "    the command's usage line and exits 2.\n"
	      "\n"
	      "COMMANDS\n"
	      "    up FILE       bring the scenario's cluster up and leave it running (one\n"
	      "                  already up from FILE is left as it is)\n"
	      "    run FILE...   for each file: run its Replay documents (no cluster\n"
	      "                  needed); if it has Test documents, bring its cluster up\n"
	      "                  (or reuse the one `up` left for that file, and leave it\n"
	      "                  up), run every Test's steps and checks, tear down. Prints\n"
	      "                  one line per check, failed matrices expected vs observed,\n"
	      "                  and a summary. A file with nothing to check fails.\n"
	      "    down [FILE|TAG|--all]\n"
	      "                  remove the cluster of FILE or TAG, the only one up (no\n"
	      "                  argument), or every one (--all); idempotent, also after\n"
	      "                  a crash\n"
	      "    exec [-c TAG] TARGET [--] CMD...\n"
	      "                  run CMD in TARGET's namespace (ip netns exec): NODE (or\n"
	      "                  node/NODE), NAMESPACE/POD, ext/NAME or fabric\n"
	      "    status        the running clusters: hosts, addresses, store, server pids\n"
	      "    capture [-c TAG] TARGET ... [FILTER...]\n"
	      "                  tcpdump inside TARGET's namespace (FILTER: a tcpdump\n"
	      "                  filter), bounded by --count and --timeout; Ctrl-C\n"
	      "                  reaches tcpdump\n"
	      "\n",
	      f);
	fputs("OPTIONS\n"
	      "  up and run (anywhere on the line):\n"
	      "    --store URI, --store=URI\n"
	      "                  etcd://HOST:PORT[,HOST:PORT...] (or etcd+https://..., with\n"
	      "                  ?ca=&cert=&key=, docs/STORE.md): every agent, the operator,\n"
	      "                  the steps' CLI calls and the simulator use that etcd; one\n"
	      "                  cluster owns its /ciliate/ keys at a time. Default: each\n"
	      "                  cluster has its own embedded store in its run directory.\n"
	      "                  Not used with --no-datapath.\n"
	      "    --routing tunnel|native, --routing=MODE\n"
	      "                  replaces every scenario's Cluster routing (default: the\n"
	      "                  scenario's); the cluster gets a tag of its own, so both\n"
	      "                  modes can run side by side\n"
	      "    --no-datapath plain kernel plumbing: no agents, no operator, no policy\n"
	      "  run (the long forms also after the files):\n"
	      "    -r, --report FILE.json\n"
	      "                  write every check, with its evidence, as JSON\n"
	      "    --flows FILE.jsonl\n"
	      "                  save every flow the agents decoded during the steps (Hubble\n"
	      "                  JSON lines, as `ciliate observe -o json`)\n"
	      "    --html FILE.html\n"
	      "                  write the flow page of those flows\n"
	      "  exec and capture:\n"
	      "    -c TAG        look for TARGET in cluster TAG only (needed when several\n"
	      "                  running clusters have it)\n"
	      "  capture (before or after TARGET):\n"
	      "    -i IFACE      the interface (default: any for nodes and hostNetwork pods,\n"
	      "                  eth0 for pods and external hosts, br0 for fabric)\n"
	      "    -w FILE.pcap  write the packets to FILE instead of printing them\n"
	      "    --count N     stop after N packets (1..1000000, default 100)\n"
	      "    --timeout S   stop after S seconds (1..3600, default 10)\n"
	      "  status:\n"
	      "    -o json       the clusters' state as a JSON array\n"
	      "  -h, --help      this help (also `ciliate-sim help`)\n"
	      "\n",
	      f);
	fprintf(f,
		"ENVIRONMENT\n"
		"    The agents, the operator and the steps' CLI calls inherit the\n"
		"    environment.\n"
		"    CILIATE_IDENTITY_GC_GRACE\n"
		"                  seconds before an unused identity is released: the agents'\n"
		"                  default, and given to the operator as --identity-gc-grace\n"
		"    CILIATE_HEALTH_INTERVAL\n"
		"                  the agents' seconds between health probe rounds\n"
		"    CILIATE_STORE_CA, CILIATE_STORE_CERT, CILIATE_STORE_KEY\n"
		"                  TLS files for a --store etcd\n"
		"\n"
		"FILES\n"
		"    " SIM_STATE_DIR "/TAG.json\n"
		"                  the state file: every namespace, device, process and pin\n"
		"                  of the cluster, recorded before it is created\n"
		"    " SIM_STATE_DIR "/TAG/\n"
		"                  the run directory: store/ (the embedded store),\n"
		"                  agent-NODE.log, operator.log, echo server logs\n"
		"    " SIM_BPFFS_DIR "/cil-TAG-NODE/\n"
		"                  the nodes' pinned maps\n"
		"    /run/ciliate/sim-captures/\n"
		"                  encryption captures kept because they showed a leak\n"
		"    ciliate, ciliate-agent, ciliate-cni, ciliate-echo, ciliate-probe,\n"
		"    ciliate-operator\n"
		"                  run from the directory ciliate-sim is in (installed:\n"
		"                  LIBEXECDIR, /usr/local/libexec/ciliate)\n"
		"\n"
		"EXIT STATUS\n"
		"    0 ok (run: no check failed; skipped checks are counted apart), 1 failure\n"
		"    (a failed check, bring-up or teardown; not root), 2 usage error, 130 run\n"
		"    interrupted (SIGINT, SIGTERM or SIGHUP: the cluster is torn down). exec\n"
		"    exits with CMD's status.\n"
		"\n"
		"SEE ALSO\n"
		"    docs/SIMULATOR.md, docs/STORE.md, docs/AGENT.md, docs/OBSERVABILITY.md,\n"
		"    docs/CNI.md, docs/INSTALL.md; ciliate-agent --help, ciliate --help,\n"
		"    ciliate-echo --help, ciliate-probe --help\n");
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
