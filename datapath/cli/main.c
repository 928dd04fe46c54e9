/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate: CLI for users and operators (SPEC section 7). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cluster_opt.h"
#include "connectivity.h"

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
		"  health     health status: node-to-node ICMP and HTTP reachability (--probe)\n"
		"  connectivity test  Cilium's post-install suite on its own workloads (self-cleaning)\n"
		"  observe    Hubble-style flows of every node (filters, --last, -f, -o, --html)\n"
		"  monitor    follow datapath events as cilium monitor lines\n"
		"  version    print the version\n"
		"\n"
		"Run 'ciliate COMMAND --help' for a command's options. Exit codes: 0 ok, 1 failure,\n"
		"2 usage error.\n"
		"Every command that opens the store also takes --store-ca FILE, --store-cert FILE and\n"
		"--store-key FILE for an etcd store over TLS (docs/STORE.md), and --cluster TAG (a cluster\n"
		"of `ciliate-sim up`) in place of --store; its --node NAME names that cluster's node.\n");
}

/* Takes --store-ca/--store-cert/--store-key (" FILE" or "=FILE") out of argv into the
 * environment, where the etcd store backend reads them; returns the new argc or -1. */
static int store_tls_opts(int argc, char **argv)
{
	static const char *const opt[] = { "--store-ca", "--store-cert", "--store-key" };
	static const char *const env[] = { "CILIATE_STORE_CA", "CILIATE_STORE_CERT", "CILIATE_STORE_KEY" };
	int i, j, k, out = 1;
	size_t len;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		for (k = 0; k < 3; k++) {
			len = strlen(opt[k]);
			if (strncmp(argv[i], opt[k], len) || (argv[i][len] && argv[i][len] != '='))
				continue;
			if (!argv[i][len] && i + 1 >= argc) {
				fprintf(stderr, "ciliate: %s needs a FILE\n", opt[k]);
				return -1;
			}
			setenv(env[k], argv[i][len] ? argv[i] + len + 1 : argv[++i], 1);
			break;
		}
		if (k == 3)
			argv[out++] = argv[i];
	}
	for (j = out; j < argc; j++)
		argv[j] = NULL;
	return out;
}

int main(int argc, char **argv)
{
	argc = store_tls_opts(argc, argv);
	if (argc < 0)
		return EXIT_USAGE;
	argc = cli_cluster_opt(argc, &argv); /* --cluster TAG: a simulated cluster */
	if (argc < 0)
		return EXIT_USAGE;
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
	if (!strcmp(argv[1], "health"))
		return cmd_health(argc - 1, argv + 1);
	if (!strcmp(argv[1], "connectivity"))
		return cmd_connectivity(argc - 1, argv + 1);
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
