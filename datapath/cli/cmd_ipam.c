/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate ipam list: every node's pod range and allocations, read from the store (the
 * records agents keep at /ciliate/ipam/<node>; see datapath/agent/ipam_rec.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "store/store.h"

#define IPAM_PREFIX "/ciliate/ipam/"

static int ipam_list(const char *store_flag, bool json, const char *node)
{
	struct diag d = {{0}};
	struct store_list l;
	struct store *st;
	json_t *out = json_array(), *rec, *al;
	size_t i, k;
	int rc = EXIT_OK;

	if (store_open(cli_store_uri(store_flag), &st, &d) || store_list(st, IPAM_PREFIX, &l, &d)) {
		fprintf(stderr, "ciliate ipam list: %s\n", d.msg);
		json_decref(out);
		return EXIT_FAILURE_;
	}
	for (i = 0; i < l.n; i++) {
		rec = json_loadb(l.items[i].value, l.items[i].value_len, 0, NULL);
		if (!json_is_object(rec)) {
			fprintf(stderr, "ciliate ipam list: %s is not a JSON object; skipped\n",
				l.items[i].key);
			json_decref(rec);
			rc = EXIT_FAILURE_;
			continue;
		}
		if (node && strcmp(json_string_value(json_object_get(rec, "node")) ?: "", node)) {
			json_decref(rec);
			continue;
		}
		json_array_append_new(out, rec);
	}
	if (json) {
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
	} else {
		printf("%-20s %-18s %-16s %-40s %s\n", "NODE", "POD CIDR", "IP", "POD",
		       "CONTAINER");
		json_array_foreach(out, i, rec)
		{
			const char *nn = json_string_value(json_object_get(rec, "node")) ?: "?";
			const char *cidr = json_string_value(json_object_get(rec, "cidr")) ?: "?";
			json_t *allocs = json_object_get(rec, "allocations");

			if (!json_array_size(allocs))
				printf("%-20s %-18s %-16s %-40s %s\n", nn, cidr, "-", "-", "-");
			json_array_foreach(allocs, k, al)
			{
				const char *cid =
					json_string_value(json_object_get(al, "containerID")) ?: "";

				printf("%-20s %-18s %-16s %-40s %.12s\n", nn, cidr,
				       json_string_value(json_object_get(al, "ip")) ?: "?",
				       json_string_value(json_object_get(al, "pod")) ?: "?",
				       *cid ? cid : "-");
			}
		}
	}
	json_decref(out);
	store_list_free(&l);
	store_close(st);
	return rc;
}

int cmd_ipam(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"store", required_argument, NULL, 's'},
		{"node", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *store = NULL, *node = NULL;
	bool json = false;
	int c;

	if (argc < 2 || strcmp(argv[1], "list")) {
		fprintf(stderr,
			"usage: ciliate ipam list [-o json] [--node NAME] [--store DIR|URI]\n");
		return EXIT_USAGE;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (cli_output_format("ipam list", optarg, &json))
				return EXIT_USAGE;
			break;
		case 's':
			store = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 'h':
			printf("usage: ciliate ipam list [-o json] [--node NAME] [--store "
			       "DIR|URI]\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc - 1) {
		fprintf(stderr, "ciliate ipam list: unexpected argument \"%s\"\n",
			argv[optind + 1]);
		return EXIT_USAGE;
	}
	return ipam_list(store, json, node);
}
