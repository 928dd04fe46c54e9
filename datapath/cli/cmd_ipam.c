/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate ipam list: every node's pod range and allocations, read from the store (the range
 * records agents keep at /ciliate/ipam/<node> and one key per allocation under it; see
 * datapath/agent/ipam_rec.h), shown as one record per node. */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "store/store.h"

#define IPAM_PREFIX "/ciliate/ipam/"

/* The record of node in out, added (range unknown: "cidr" null) when not there yet. */
static json_t *node_rec(json_t *out, const char *node, size_t len)
{
	json_t *rec;
	size_t i;

	json_array_foreach(out, i, rec)
	{
		const char *n = json_string_value(json_object_get(rec, "node"));

		if (n && strlen(n) == len && !strncmp(n, node, len))
			return rec;
	}
	rec = json_pack("{s:s#, s:n, s:[]}", "node", node, (int)len, "cidr", "allocations");
	json_array_append_new(out, rec);
	return rec;
}

static uint32_t addr_of(json_t *al)
{
	const char *s = json_string_value(json_object_get(al, "ip"));
	struct in_addr a;

	return s && inet_pton(AF_INET, s, &a) == 1 ? ntohl(a.s_addr) : 0;
}

static int cmp_alloc(const void *x, const void *y)
{
	uint32_t a = addr_of(*(json_t *const *)x), b = addr_of(*(json_t *const *)y);

	return a < b ? -1 : a > b;
}

/* Each node's allocations in address order (keys list "10.0.0.100" before "10.0.0.11"). */
static void sort_allocations(json_t *out)
{
	json_t *rec, *allocs, **v;
	size_t i, k, n;

	json_array_foreach(out, i, rec)
	{
		allocs = json_object_get(rec, "allocations");
		n = json_array_size(allocs);
		v = calloc(n + 1, sizeof(*v));
		if (!v)
			return;
		for (k = 0; k < n; k++)
			v[k] = json_incref(json_array_get(allocs, k));
		qsort(v, n, sizeof(*v), cmp_alloc);
		json_array_clear(allocs);
		for (k = 0; k < n; k++)
			json_array_append_new(allocs, v[k]);
		free(v);
	}
}

static int ipam_list(const char *store_flag, bool json, const char *node)
{
	struct diag d = {{0}};
	struct store_list l;
	struct store *st;
	json_t *out = json_array(), *rec, *al, *have;
	size_t i, k;
	int rc = EXIT_OK;

	if (store_open(cli_store_uri(store_flag), &st, &d) || store_list(st, IPAM_PREFIX, &l, &d)) {
		fprintf(stderr, "ciliate ipam list: %s\n", d.msg);
		json_decref(out);
		return EXIT_FAILURE_;
	}
	for (i = 0; i < l.n; i++) {
		const char *name = l.items[i].key + strlen(IPAM_PREFIX);
		const char *slash = strchr(name, '/');
		size_t nlen = slash ? (size_t)(slash - name) : strlen(name);

		if (node && (strlen(node) != nlen || strncmp(name, node, nlen)))
			continue;
		rec = json_loadb(l.items[i].value, l.items[i].value_len, 0, NULL);
		if (!json_is_object(rec)) {
			fprintf(stderr, "ciliate ipam list: %s is not a JSON object; skipped\n",
				l.items[i].key);
			json_decref(rec);
			rc = EXIT_FAILURE_;
			continue;
		}
		have = node_rec(out, name, nlen);
		if (slash) { /* one allocation */
			json_array_append_new(json_object_get(have, "allocations"), rec);
			continue;
		}
		json_object_set(have, "cidr", json_object_get(rec, "cidr"));
		json_array_foreach(json_object_get(rec, "allocations"), k, al)
			json_array_append(json_object_get(have, "allocations"), al);
		json_decref(rec);
	}
	sort_allocations(out);
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
