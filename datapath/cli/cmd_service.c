/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate service list: the node's service frontends and their backends, asked of its agent
 * (op service-list), as `cilium-dbg service list`.
 * ciliate bpf lb list: the node's pinned service maps read directly (ciliate_lb_services,
 * ciliate_lb_backends, ciliate_lb_revnat under /sys/fs/bpf/ciliate/<instance>/), as
 * `cilium-dbg bpf lb list`. Text forms: datapath/lb/lb_format.h.
 * ciliate bpf lb maglev list: the Maglev tables of ciliate_lb_maglev, as `cilium-dbg bpf lb
 * maglev list`.
 * ciliate bpf nat list / bpf ct list: ciliate_nat and ciliate_ct read from the pins, as
 * `cilium-dbg bpf nat list` / `bpf ct list global`. Text forms: datapath/lb/nat_format.h.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <jansson.h>

#include "agent/api.h"
#include "cli.h"
#include "lb/lb_format.h"
#include "lb/nat_format.h"
#include "loader/datapath.h"
#include "loader/lb_maglev.h"

struct svc_opts {
	const char *node;
	const char *socket;
	const char *pin_dir;
	bool json;
};

/* -o, --node, --socket (service list) or --pin-dir (bpf lb list). */
static int svc_parse(int argc, char **argv, const char *cmd, const char *usage, bool pins,
		     struct svc_opts *o)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'}, {"node", required_argument, NULL, 'n'},
		{"socket", required_argument, NULL, 'S'}, {"pin-dir", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},	  {0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (c == 'o' && cli_output_format(cmd, optarg, &o->json))
			return EXIT_USAGE;
		else if (c == 'n')
			o->node = optarg;
		else if (c == 'S' && !pins)
			o->socket = optarg;
		else if (c == 'P' && pins)
			o->pin_dir = optarg;
		else if (c == 'h') {
			printf("%s\n", usage);
			exit(EXIT_OK);
		} else if (c != 'o') {
			fprintf(stderr, "%s\n", usage);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ciliate %s: unexpected argument \"%s\"\n%s\n", cmd, argv[optind],
			usage);
		return EXIT_USAGE;
	}
	if ((o->node && (o->socket || o->pin_dir))) {
		fprintf(stderr, "ciliate %s: --node and --%s exclude each other\n", cmd,
			pins ? "pin-dir" : "socket");
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- service list ------------------------------------------------------------------------ */

#define SERVICE_USAGE "usage: ciliate service list [-o json] [--node NAME | --socket PATH]"

/* Asks one agent; appends its services (with "node") to all. */
static int services_of(const char *sock, json_t *all, json_t *nodes)
{
	char err[600];
	json_t *resp = cli_agent_ask(sock, AGENT_OP_SERVICE_LIST, err, sizeof(err)), *s;
	size_t i;

	if (!resp) {
		fprintf(stderr, "ciliate service list: %s\n", err);
		return EXIT_FAILURE_;
	}
	json_array_append(nodes, json_object_get(resp, "node"));
	json_array_foreach(json_object_get(resp, "services"), i, s)
	{
		json_object_set(s, "node", json_object_get(resp, "node"));
		json_array_append(all, s);
	}
	json_decref(resp);
	return 0;
}

/* The table; with several nodes, one table per node after a "Node: NAME" line. */
static void services_print(json_t *all, json_t *nodes)
{
	json_t *node, *s, *mine;
	size_t i, k;

	if (json_array_size(nodes) <= 1) {
		lb_print_service_list(stdout, all);
		return;
	}
	json_array_foreach(nodes, i, node)
	{
		mine = json_array();
		json_array_foreach(all, k, s) if (json_equal(json_object_get(s, "node"), node))
			json_array_append(mine, s);
		printf("%sNode: %s\n", i ? "\n" : "", json_string_value(node) ?: "?");
		lb_print_service_list(stdout, mine);
		json_decref(mine);
	}
}

int cmd_service(int argc, char **argv)
{
	static char socks[CLI_SOCKETS_MAX][CLI_SOCKET_PATH_MAX];
	struct svc_opts o = {0};
	json_t *all, *nodes;
	size_t n, i;
	int rc;

	if (argc < 2 || strcmp(argv[1], "list")) {
		fprintf(stderr, "%s\n", SERVICE_USAGE);
		return EXIT_USAGE;
	}
	rc = svc_parse(argc - 1, argv + 1, "service list", SERVICE_USAGE, false, &o);
	if (rc)
		return rc;
	n = cli_agent_sockets(o.node, o.socket, socks);
	if (!n) {
		fprintf(stderr,
			"ciliate service list: no agent socket under %s (give --node or "
			"--socket)\n",
			AGENT_RUN_ROOT);
		return EXIT_FAILURE_;
	}
	all = json_array();
	nodes = json_array();
	for (i = 0; i < n; i++)
		rc |= services_of(socks[i], all, nodes);
	if (o.json) {
		json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
	} else {
		services_print(all, nodes);
	}
	json_decref(all);
	json_decref(nodes);
	return rc ? EXIT_FAILURE_ : EXIT_OK;
}

/* ---- bpf lb list ------------------------------------------------------------------------- */

#define BPF_LB_USAGE "usage: ciliate bpf lb list [-o json] [--node NAME | --pin-dir DIR]"

static int lb_dump_read(const char *dir, struct lb_dump *d)
{
	void *p;
	int err;

	memset(d, 0, sizeof(*d));
	err = cli_pin_read("bpf lb list", dir, MAP_LB_SERVICES, sizeof(struct lb_key),
			   sizeof(struct lb_service), sizeof(*d->svc),
			   offsetof(struct lb_dump_svc, val), &p, &d->nsvc);
	d->svc = p;
	if (!err) {
		err = cli_pin_read("bpf lb list", dir, MAP_LB_BACKENDS, sizeof(uint32_t),
				   sizeof(struct lb_backend), sizeof(*d->backends),
				   offsetof(struct lb_dump_backend, val), &p, &d->nbackends);
		d->backends = p;
	}
	if (!err) {
		err = cli_pin_read("bpf lb list", dir, MAP_LB_REVNAT, sizeof(uint32_t),
				   sizeof(struct lb_reverse_nat), sizeof(*d->revnat),
				   offsetof(struct lb_dump_revnat, val), &p, &d->nrevnat);
		d->revnat = p;
	}
	if (err)
		lb_dump_free(d);
	else
		lb_dump_sort(d);
	return err;
}

/* --pin-dir, --node's, or the only node pinned under CILIATE_PIN_ROOT. */
static int pin_dir_pick(const struct svc_opts *o, char *dir, size_t size)
{
	return cli_pin_dir("bpf lb list", BPF_LB_USAGE, o->pin_dir, o->node, dir, size);
}

/* ---- bpf lb maglev list ------------------------------------------------------------------ */

#define BPF_LB_MAGLEV_USAGE \
	"usage: ciliate bpf lb maglev list [-o json] [--node NAME | --pin-dir DIR]"

/* The Maglev tables of DIR/ciliate_lb_maglev (every inner array read back). */
static int cmd_bpf_lb_maglev(int argc, char **argv)
{
	struct svc_opts o = {0};
	struct lb_maglev_table *t = NULL;
	char dir[PATH_MAX], path[PATH_MAX + 32];
	struct diag d = {""};
	size_t n = 0;
	int rc, fd;

	if (argc < 2 || strcmp(argv[1], "list")) {
		fprintf(stderr, "%s\n", BPF_LB_MAGLEV_USAGE);
		return EXIT_USAGE;
	}
	rc = svc_parse(argc - 1, argv + 1, "bpf lb maglev list", BPF_LB_MAGLEV_USAGE, true, &o);
	if (!rc)
		rc = pin_dir_pick(&o, dir, sizeof(dir));
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", dir, MAP_LB_MAGLEV);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr, "ciliate bpf lb maglev list: %s: %s\n", path, strerror(errno));
		return EXIT_FAILURE_;
	}
	rc = lb_maglev_map_read(fd, &t, &n, &d);
	close(fd);
	if (rc) {
		fprintf(stderr, "ciliate bpf lb maglev list: %s\n", d.msg);
		return EXIT_FAILURE_;
	}
	if (o.json) {
		json_t *j = lb_maglev_list_json(t, n);

		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
		json_decref(j);
	} else {
		lb_print_maglev_list(stdout, t, n);
	}
	lb_maglev_tables_free(t, n);
	return EXIT_OK;
}

int cmd_bpf_lb(int argc, char **argv)
{
	struct svc_opts o = {0};
	struct lb_dump d;
	char dir[PATH_MAX];
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "maglev"))
		return cmd_bpf_lb_maglev(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "list")) {
		fprintf(stderr, "%s\n", BPF_LB_USAGE);
		return EXIT_USAGE;
	}
	rc = svc_parse(argc - 1, argv + 1, "bpf lb list", BPF_LB_USAGE, true, &o);
	if (!rc)
		rc = pin_dir_pick(&o, dir, sizeof(dir));
	if (rc)
		return rc;
	if (lb_dump_read(dir, &d))
		return EXIT_FAILURE_;
	if (o.json) {
		json_t *j = lb_bpf_list_json(&d);

		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
		json_decref(j);
	} else {
		lb_print_bpf_list(stdout, &d);
	}
	lb_dump_free(&d);
	return EXIT_OK;
}

/* ---- bpf nat list / bpf ct list ---------------------------------------------------------- */

#define BPF_NAT_USAGE "usage: ciliate bpf nat list [-o json] [--node NAME | --pin-dir DIR]"
#define BPF_CT_USAGE \
	"usage: ciliate bpf ct list [global] [-d] [-o json] [--node NAME | --pin-dir DIR]"

/* The datapath's clock: bpf_ktime_get_ns() is CLOCK_MONOTONIC. */
static uint64_t mono_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void json_print(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("\n");
	json_decref(j);
}

/* ciliate_nat of the node: OUT and IN entries of NodePort SNAT and masquerade. */
int cmd_bpf_nat(int argc, char **argv)
{
	struct svc_opts o = {0};
	struct nat_dump_entry *v;
	char dir[PATH_MAX];
	void *p;
	size_t n;
	int rc;

	if (argc < 2 || strcmp(argv[1], "list")) {
		fprintf(stderr, "%s\n", BPF_NAT_USAGE);
		return EXIT_USAGE;
	}
	rc = svc_parse(argc - 1, argv + 1, "bpf nat list", BPF_NAT_USAGE, true, &o);
	if (!rc)
		rc = pin_dir_pick(&o, dir, sizeof(dir));
	if (rc)
		return rc;
	if (cli_pin_read("bpf nat list", dir, MAP_NAT, sizeof(struct nat_key),
			 sizeof(struct nat_entry), sizeof(*v), offsetof(struct nat_dump_entry, val),
			 &p, &n))
		return EXIT_FAILURE_;
	v = p;
	nat_dump_sort(v, n);
	if (o.json)
		json_print(nat_list_json(v, n, mono_now_ns()));
	else
		nat_print_list(stdout, v, n, mono_now_ns());
	free(v);
	return EXIT_OK;
}

/* ciliate_ct of the node, as `cilium-dbg bpf ct list global` (the one map holds every
 * endpoint's entries, so "global" is the only kind and may be left out). */
int cmd_bpf_ct(int argc, char **argv)
{
	char *args[32], dir[PATH_MAX];
	struct svc_opts o = {0};
	struct ct_dump_entry *v;
	int nargs = 0, time_diff = 0, rc;
	void *p;
	size_t n;

	if (argc < 2 || strcmp(argv[1], "list") || argc > 30) {
		fprintf(stderr, "%s\n", BPF_CT_USAGE);
		return EXIT_USAGE;
	}
	args[nargs++] = argv[1];
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-d") || !strcmp(argv[i], "--time-diff"))
			time_diff = 1;
		else if (!(i == 2 && !strcmp(argv[i], "global")))
			args[nargs++] = argv[i];
	}
	args[nargs] = NULL;
	rc = svc_parse(nargs, args, "bpf ct list", BPF_CT_USAGE, true, &o);
	if (!rc)
		rc = pin_dir_pick(&o, dir, sizeof(dir));
	if (rc)
		return rc;
	if (cli_pin_read("bpf ct list", dir, MAP_CT, sizeof(struct ct_key), sizeof(struct ct_entry),
			 sizeof(*v), offsetof(struct ct_dump_entry, val), &p, &n))
		return EXIT_FAILURE_;
	v = p;
	ct_dump_sort(v, n);
	if (o.json)
		json_print(ct_list_json(v, n, mono_now_ns()));
	else
		ct_print_list(stdout, v, n, mono_now_ns(), time_diff);
	free(v);
	return EXIT_OK;
}
