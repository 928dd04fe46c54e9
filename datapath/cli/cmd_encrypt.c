/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ciliate encrypt status`: transparent encryption as each node's agent sees it (op
 * encrypt-status), shaped like `cilium-dbg encrypt status` (REFERENCE.md section 11):
 *
 *   Encryption: Wireguard
 *   Interface: ciliate_wg0
 *   	Public key: <base64>
 *   	Listen port: 51871
 *   	Number of peers: 1
 *   	Peer: node-2
 *   		Public key: <base64>
 *   		Endpoint: 192.0.2.2:51871
 *   		Allowed IPs: 10.244.1.0/24
 *   		Latest handshake: 2026-12-05T02:30:01Z (3 s ago)
 *   		Transfer: 1460 B received, 2920 B sent
 *   Strict mode: enabled (10.244.0.0/16)
 *
 * With several nodes, one block per node after a "Node: NAME" line. -o json: the agents'
 * answers as an array.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agent/api.h"
#include "cli.h"

#define ENCRYPT_USAGE "usage: ciliate encrypt status [-o json] [--node NAME | --socket PATH]"

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static long long num(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static void print_handshake(long long sec)
{
	char at[64];
	time_t t = (time_t)sec;
	struct tm tm;

	if (!sec) {
		printf("\t\tLatest handshake: none yet\n");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("\t\tLatest handshake: %s (%lld s ago)\n", at, (long long)time(NULL) - sec);
}

/* Cilium's `cilium-dbg encrypt status` lines for IPsec, then ours. */
static void print_ipsec(json_t *r)
{
	json_t *sa, *v;
	size_t i;

	printf("Encryption: IPsec\n");
	printf("Key file: %s\n", str(r, "keyFile"));
	v = json_object_get(r, "currentKeyId");
	if (json_is_integer(v))
		printf("Current key id (SPI): %lld\n", (long long)json_integer_value(v));
	v = json_object_get(r, "previousKeyId");
	if (json_is_integer(v))
		printf("Previous key id (SPI): %lld (removed in %lld ms)\n",
		       (long long)json_integer_value(v), num(r, "previousKeyRemovedInMs"));
	if (json_object_get(r, "keysInUse")) {
		printf("Keys in use: %lld\n", num(r, "keysInUse"));
		printf("Max Seq. Number: 0x%llx/0x%llx\n", (unsigned long long)num(r, "maxSeq"),
		       (unsigned long long)json_integer_value(json_object_get(r, "maxSeqLimit")));
		v = json_object_get(r, "errors");
		if (json_is_integer(v))
			printf("Errors: %lld\n", (long long)json_integer_value(v));
		json_array_foreach(json_object_get(r, "sas"), i, sa)
			printf("\tSA spi=0x%08llx %-3s %s -> %s %s seq=0x%llx/0x%llx bytes=%lld\n",
			       (unsigned long long)num(sa, "spi"), str(sa, "direction"),
			       str(sa, "src"), str(sa, "dst"), str(sa, "algorithm"),
			       (unsigned long long)num(sa, "oseq"), (unsigned long long)num(sa, "seq"),
			       num(sa, "bytes"));
	}
	if (*str(r, "xfrmError"))
		printf("XFRM: %s\n", str(r, "xfrmError"));
	if (*str(r, "keyFileError"))
		printf("Key file error: %s\n", str(r, "keyFileError"));
	if (*str(r, "error"))
		printf("Error: %s\n", str(r, "error"));
}

static void print_status(json_t *r)
{
	json_t *peers = json_object_get(r, "peers"), *p, *ip;
	json_t *strict = json_object_get(r, "strictMode");
	size_t i, j;

	if (!strcmp(str(r, "mode"), "ipsec")) {
		print_ipsec(r);
		return;
	}
	if (strcmp(str(r, "mode"), "wireguard")) {
		printf("Encryption: Disabled\n");
		return;
	}
	printf("Encryption: Wireguard\n");
	printf("Interface: %s\n", str(r, "interface"));
	printf("\tPublic key: %s\n", str(r, "publicKey"));
	printf("\tListen port: %lld\n", num(r, "listenPort"));
	printf("\tImplementation: %s (pid %lld)\n", str(r, "implementation"), num(r, "pid"));
	printf("\tNumber of peers: %zu\n", json_array_size(peers));
	json_array_foreach(peers, i, p)
	{
		printf("\tPeer: %s\n", json_string_value(json_object_get(p, "node")) ?: "(unknown)");
		printf("\t\tPublic key: %s\n", str(p, "publicKey"));
		printf("\t\tEndpoint: %s\n", str(p, "endpoint"));
		printf("\t\tAllowed IPs:");
		json_array_foreach(json_object_get(p, "allowedIPs"), j, ip)
			printf("%s %s", j ? "," : "", json_string_value(ip));
		printf("\n");
		print_handshake(num(p, "lastHandshakeTime"));
		printf("\t\tTransfer: %lld B received, %lld B sent\n", num(p, "rxBytes"),
		       num(p, "txBytes"));
	}
	if (json_is_true(json_object_get(strict, "enabled")))
		printf("Strict mode: enabled (%s)\n", str(strict, "cidr"));
	else
		printf("Strict mode: disabled\n");
	if (*str(r, "error"))
		printf("Error: %s\n", str(r, "error"));
	if (*str(r, "deviceError"))
		printf("Device error: %s\n", str(r, "deviceError"));
}

int cmd_encrypt(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'}, {"node", required_argument, NULL, 'n'},
		{"socket", required_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
		{0},
	};
	static char socks[CLI_SOCKETS_MAX][CLI_SOCKET_PATH_MAX];
	const char *node = NULL, *sock = NULL;
	bool json = false;
	json_t *all;
	size_t n, i;
	int c, rc = EXIT_OK;

	if (argc < 2 || strcmp(argv[1], "status")) {
		fprintf(stderr, "%s\n", ENCRYPT_USAGE);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (c == 'o' && cli_output_format("encrypt status", optarg, &json))
			return EXIT_USAGE;
		else if (c == 'n')
			node = optarg;
		else if (c == 'S')
			sock = optarg;
		else if (c == 'h') {
			printf("%s\n", ENCRYPT_USAGE);
			return EXIT_OK;
		} else if (c != 'o') {
			fprintf(stderr, "%s\n", ENCRYPT_USAGE);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || (node && sock)) {
		fprintf(stderr, "%s\n", ENCRYPT_USAGE);
		return EXIT_USAGE;
	}
	n = cli_agent_sockets(node, sock, socks);
	if (!n) {
		fprintf(stderr, "ciliate encrypt status: no agent socket under %s (give --node or "
				"--socket)\n", AGENT_RUN_ROOT);
		return EXIT_FAILURE_;
	}
	all = json_array();
	for (i = 0; i < n; i++) {
		char err[600];
		json_t *r = cli_agent_ask(socks[i], AGENT_OP_ENCRYPT_STATUS, err, sizeof(err));

		if (!r) {
			fprintf(stderr, "ciliate encrypt status: %s\n", err);
			rc = EXIT_FAILURE_;
			continue;
		}
		json_object_del(r, "ok");
		json_array_append_new(all, r);
	}
	if (json) {
		json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
	} else {
		json_t *r;

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
