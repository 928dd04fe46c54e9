/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate identity list: the security identities, like `cilium-dbg identity list`. By
 * default from the store (the cluster identities every agent allocates there, see
 * datapath/agent/identity_alloc.h, plus the reserved ones); with --node or --socket from
 * that agent (the identities its model uses, which pods hold them, and its node-local CIDR
 * identities).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/api.h"
#include "agent/identity_alloc.h"
#include "cli.h"
#include "store/store.h"

static const char *const reserved[] = {
	NULL,
	"reserved:host",
	"reserved:world",
	"reserved:unmanaged",
	"reserved:health",
	"reserved:init",
	"reserved:remote-node",
	"reserved:kube-apiserver",
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ciliate identity list [-o json] [--store DIR|URI | --node NAME | "
		   "--socket PATH]\n"
		   "  default: the store's cluster identities and the reserved ones; --node or\n"
		   "  --socket: that agent's identities in force, with the pods holding them\n");
}

/* {"id","labels":["k8s:a=b",...],"scope":"cluster"} from a stored record, or NULL. */
static json_t *record_json(const struct store_kv *kv)
{
	json_t *rec = json_loadb(kv->value, kv->value_len, 0, NULL), *labels, *out, *v;
	json_int_t id = json_integer_value(json_object_get(rec, "id"));
	const char *k;
	char *kvs;

	labels = json_object_get(rec, "labels");
	if (!json_is_object(labels) || id < IDENTITY_CLUSTER_MIN) {
		json_decref(rec);
		return NULL;
	}
	out = json_pack("{s:I, s:[], s:s}", "id", id, "labels", "scope", "cluster");
	json_object_foreach(labels, k, v)
	{
		if (asprintf(&kvs, "%s=%s", k, json_string_value(v) ?: "") < 0)
			continue;
		json_array_append_new(json_object_get(out, "labels"), json_string(kvs));
		free(kvs);
	}
	json_decref(rec);
	return out;
}

static int cmp_id(const void *x, const void *y)
{
	json_int_t a = json_integer_value(json_object_get(*(json_t *const *)x, "id"));
	json_int_t b = json_integer_value(json_object_get(*(json_t *const *)y, "id"));

	return a < b ? -1 : a > b;
}

static json_t *from_store(const char *store_flag, int *rc)
{
	struct diag d = {{0}};
	struct store_list l;
	struct store *st;
	json_t *out = json_array(), **v, *e;
	size_t i, n = 0;
	uint32_t id;

	for (id = IDENTITY_HOST; id <= IDENTITY_KUBE_APISERVER; id++)
		json_array_append_new(out, json_pack("{s:I, s:[s], s:s}", "id", (json_int_t)id,
						     "labels", reserved[id], "scope", "reserved"));
	if (store_open(cli_store_uri(store_flag), &st, &d)) {
		fprintf(stderr, "ciliate identity list: %s\n", d.msg);
		json_decref(out);
		return NULL;
	}
	if (store_list(st, IDENTITY_KEY_PREFIX, &l, &d)) {
		fprintf(stderr, "ciliate identity list: %s\n", d.msg);
		store_close(st);
		json_decref(out);
		return NULL;
	}
	v = calloc(l.n + 1, sizeof(*v));
	for (i = 0; v && i < l.n; i++) {
		e = record_json(&l.items[i]);
		if (!e) {
			fprintf(stderr,
				"ciliate identity list: %s is not an identity record; "
				"skipped\n",
				l.items[i].key);
			*rc = EXIT_FAILURE_;
			continue;
		}
		v[n++] = e;
	}
	if (v) {
		qsort(v, n, sizeof(*v), cmp_id); /* keys sort as text: 1000 before 256 */
		for (i = 0; i < n; i++)
			json_array_append_new(out, v[i]);
	}
	free(v);
	store_list_free(&l);
	store_close(st);
	return out;
}

static json_t *from_agent(const char *node, const char *sock_flag)
{
	json_t *req = json_pack("{s:s}", "op", AGENT_OP_IDENTITY_LIST), *resp = NULL, *out;
	char sock[300], err[600];

	if (sock_flag)
		snprintf(sock, sizeof(sock), "%s", sock_flag);
	else
		agent_sock_path(node, sock, sizeof(sock));
	if (agent_call(sock, req, 5000, &resp, err, sizeof(err))) {
		fprintf(stderr, "ciliate identity list: %s\n", err);
		json_decref(req);
		return NULL;
	}
	json_decref(req);
	if (!json_is_true(json_object_get(resp, "ok"))) {
		fprintf(stderr, "ciliate identity list: %s: %s\n", sock,
			json_string_value(json_object_get(resp, "error")) ?: "request failed");
		json_decref(resp);
		return NULL;
	}
	out = json_incref(json_object_get(resp, "identities"));
	json_decref(resp);
	return out;
}

static void print_table(json_t *ids)
{
	json_t *e, *labels, *pods;
	size_t i, k;
	bool with_pods = false;

	json_array_foreach(ids, i, e)
	{
		with_pods |= json_object_get(e, "pods") != NULL;
	}
	printf(with_pods ? "%-10s %-60s %s\n" : "%-10s %s\n", "ID", "LABELS", "PODS");
	json_array_foreach(ids, i, e)
	{
		labels = json_object_get(e, "labels");
		pods = json_object_get(e, "pods");
		for (k = 0; k < json_array_size(labels) || k == 0; k++) {
			char id[24] = "";
			const char *l = json_string_value(json_array_get(labels, k)) ?: "";

			if (!k)
				snprintf(id, sizeof(id), "%lld",
					 json_integer_value(json_object_get(e, "id")));
			if (with_pods)
				printf("%-10s %-60s %s\n", id, l,
				       json_string_value(json_array_get(pods, k)) ?: "");
			else
				printf("%-10s %s\n", id, l);
		}
		/* more pods than labels: the rest on their own lines */
		for (; with_pods && k < json_array_size(pods); k++)
			printf("%-10s %-60s %s\n", "", "",
			       json_string_value(json_array_get(pods, k)) ?: "");
	}
}

int cmd_identity(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'}, {"store", required_argument, NULL, 's'},
		{"node", required_argument, NULL, 'n'},	  {"socket", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},	  {0},
	};
	const char *store = NULL, *node = NULL, *sock = NULL;
	bool json = false;
	int c, rc = EXIT_OK;
	json_t *ids;

	if (argc < 2 || strcmp(argv[1], "list")) {
		usage(stderr);
		return EXIT_USAGE;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (cli_output_format("identity list", optarg, &json))
				return EXIT_USAGE;
			break;
		case 's':
			store = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 'S':
			sock = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc - 1) {
		fprintf(stderr, "ciliate identity list: unexpected argument \"%s\"\n",
			argv[optind + 1]);
		return EXIT_USAGE;
	}
	if ((node || sock) && store) {
		fprintf(stderr, "ciliate identity list: give --store or --node/--socket, not "
				"both\n");
		return EXIT_USAGE;
	}
	ids = node || sock ? from_agent(node, sock) : from_store(store, &rc);
	if (!ids)
		return EXIT_FAILURE_;
	if (json) {
		json_dumpf(ids, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
	} else {
		print_table(ids);
	}
	json_decref(ids);
	return rc;
}
