/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate bpf ...: the datapath's vocabularies and maps. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <jansson.h>

#include "ciliate/abi.h"

#include "cli.h"
#include "common/names.h"
#include "loader/datapath.h"

static void print_reason_text(unsigned int code, const char *name, const char *desc, void *arg)
{
	printf("%-5u %-42s %s\n", code, name, desc);
}

static void add_reason_json(unsigned int code, const char *name, const char *desc, void *arg)
{
	json_t *o = json_pack("{s:i, s:s, s:s, s:b}", "code", (int)code, "name", name,
			      "description", desc, "drop", code >= CILIATE_DROP_REASON_MIN);

	json_array_append_new(arg, o);
}

static int reasons_list(int json)
{
	if (json) {
		json_t *arr = json_array();

		reason_foreach(add_reason_json, arr);
		json_dumpf(arr, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(arr);
		return EXIT_OK;
	}
	printf("%-5s %-42s %s\n", "CODE", "NAME", "DESCRIPTION");
	reason_foreach(print_reason_text, NULL);
	return EXIT_OK;
}

/* ---- bpf prefilter list (as `cilium-dbg prefilter list`; docs/XDP.md) ------------------- */

#define BPF_PREFILTER_USAGE \
	"usage: ciliate bpf prefilter list [-o json] [--node NAME | --pin-dir DIR]"

/* Rows by key (the key is their first member). */
static int prefilter_cmp(const void *a, const void *b)
{
	const struct prefilter_key *x = a, *y = b;
	uint32_t ax = ntohl(x->addr.v4), ay = ntohl(y->addr.v4);

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (ax != ay)
		return ax < ay ? -1 : 1;
	return x->prefixlen < y->prefixlen ? -1 : x->prefixlen > y->prefixlen;
}

struct prefilter_row {
	struct prefilter_key k;
	uint8_t v;
};

/* The denied prefixes of the node's XDP prefilter (ciliate_prefilter), sorted. */
static int prefilter_list(int argc, char **argv)
{
	const char *cmd = "bpf prefilter list", *node, *pin_dir;
	char dir[PATH_MAX], a[INET6_ADDRSTRLEN], pfx[INET6_ADDRSTRLEN + 8];
	struct prefilter_row *v;
	json_t *arr = NULL;
	size_t n;
	bool json;
	void *p;
	int rc;

	rc = cli_pin_args(cmd, BPF_PREFILTER_USAGE, argc, argv, &json, &node, &pin_dir);
	if (!rc)
		rc = cli_pin_dir(cmd, BPF_PREFILTER_USAGE, pin_dir, node, dir, sizeof(dir));
	if (rc)
		return rc;
	if (cli_pin_read(cmd, dir, MAP_PREFILTER, sizeof(struct prefilter_key), sizeof(uint8_t),
			 sizeof(*v), offsetof(struct prefilter_row, v), &p, &n))
		return EXIT_FAILURE_;
	v = p;
	if (n)
		qsort(v, n, sizeof(*v), prefilter_cmp);
	if (json)
		arr = json_array();
	else
		printf("%s\n", "PREFIX");
	for (size_t i = 0; i < n; i++) {
		int af = v[i].k.family == CILIATE_AF_INET6 ? AF_INET6 : AF_INET;

		inet_ntop(af, &v[i].k.addr, a, sizeof(a));
		snprintf(pfx, sizeof(pfx), "%s/%u", a, v[i].k.prefixlen - PREFILTER_PREFIX_BASE);
		if (json)
			json_array_append_new(arr, json_pack("{s:s}", "prefix", pfx));
		else
			printf("%s\n", pfx);
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(arr);
	}
	free(v);
	return EXIT_OK;
}

int cmd_bpf(int argc, char **argv)
{
	int json = argc >= 5 && !strcmp(argv[3], "-o") && !strcmp(argv[4], "json");

	if (argc >= 3 && !strcmp(argv[1], "reasons") && !strcmp(argv[2], "list") &&
	    (argc == 3 || json))
		return reasons_list(json);
	if (argc >= 3 && !strcmp(argv[1], "prefilter") && !strcmp(argv[2], "list"))
		return prefilter_list(argc - 3, argv + 3);
	fprintf(stderr, "usage: ciliate bpf reasons list [-o json]\n       %s\n",
		BPF_PREFILTER_USAGE + strlen("usage: "));
	return EXIT_USAGE;
}
