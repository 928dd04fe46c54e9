/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate: CLI for users and operators (SPEC section 7). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  replay     replay a pcap through the real BPF programs (BPF_PROG_TEST_RUN)\n"
		"  bpf        inspect datapath maps (bpf reasons list, bpf lb list, bpf lb maglev list,\n"
		"             bpf nat list, bpf ct list, bpf prefilter list, bpf egress list)\n"
		"  policy     compiled policy per endpoint (get) and verdict traces (trace)\n"
		"  apply      write Kubernetes manifests to the store (apply -f FILE)\n"
		"  delete     delete the manifests' objects from the store (delete -f FILE)\n"
		"  ipam list  pod address allocations of every node\n"
		"  endpoint   endpoint list (asks the node agents)\n"
		"  identity   identity list: security identities (store, or --node's agent)\n"
		"  service    service list: the node's service frontends and backends (its agent)\n"
		"  encrypt    encrypt status: WireGuard device, key, peers, handshakes, strict mode\n"
		"  status     store and agent health\n"
		"  observe    Hubble-style flows of every node (filters, --last, -f, -o, --html)\n"
		"  monitor    follow datapath events as cilium monitor lines\n"
		"  version    print the version\n"
		"\n"
		"Run 'ciliate COMMAND --help' for a command's options. Exit codes: 0 ok, 1 failure,\n"
		"2 usage error.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "version")) {
		printf("ciliate 0.1.0 (ABI %d)\n", 1);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "replay"))
		return cmd_replay(argc - 1, argv + 1);
	if (!strcmp(argv[1], "apply"))
		return cmd_apply(argc - 1, argv + 1);
	if (!strcmp(argv[1], "delete"))
		return cmd_delete(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ipam"))
		return cmd_ipam(argc - 1, argv + 1);
	if (!strcmp(argv[1], "endpoint"))
		return cmd_endpoint(argc - 1, argv + 1);
	if (!strcmp(argv[1], "identity"))
		return cmd_identity(argc - 1, argv + 1);
	if (!strcmp(argv[1], "service"))
		return cmd_service(argc - 1, argv + 1);
	if (!strcmp(argv[1], "encrypt"))
		return cmd_encrypt(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "observe"))
		return cmd_observe(argc - 1, argv + 1);
	if (!strcmp(argv[1], "monitor"))
		return cmd_monitor(argc - 1, argv + 1);
	if (!strcmp(argv[1], "policy"))
		return cmd_policy(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bpf") && argc > 2 && !strcmp(argv[2], "lb"))
		return cmd_bpf_lb(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bpf") && argc > 2 && !strcmp(argv[2], "nat"))
		return cmd_bpf_nat(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bpf") && argc > 2 && !strcmp(argv[2], "egress"))
		return cmd_bpf_egress(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bpf") && argc > 2 && !strcmp(argv[2], "ct"))
		return cmd_bpf_ct(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bpf") && argc > 2 && !strcmp(argv[2], "policy"))
		return cmd_bpf_policy(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bpf"))
		return cmd_bpf(argc - 1, argv + 1);
	fprintf(stderr, "ciliate: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}

int cli_output_format(const char *cmd, const char *arg, bool *json)
{
	if (strcmp(arg, "json") && strcmp(arg, "table")) {
		fprintf(stderr, "ciliate %s: -o json|table\n", cmd);
		return EXIT_USAGE;
	}
	*json = !strcmp(arg, "json");
	return 0;
}
