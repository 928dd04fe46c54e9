/* SPDX-License-Identifier: Apache-2.0 */
/* `--cluster TAG` for every CLI command (see cluster_opt.h). */
#include "cluster_opt.h"

#include "cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k)) ?: "";
}

int cli_sim_load(const char *tag, struct cli_sim_cluster *c, char *err, size_t errsize)
{
	char path[512];
	json_error_t je;
	json_t *root, *hosts, *h, *p;
	size_t i, k;
	const char *t;

	memset(c, 0, sizeof(*c));
	for (t = tag; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9')))
			break;
	if (!*tag || *t || strlen(tag) >= sizeof(c->tag)) {
		snprintf(err, errsize,
			 "--cluster: \"%.64s\" is not a cluster tag (lowercase letters "
			 "and digits, as `ciliate-sim status` prints it)",
			 tag);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s.json", CLI_SIM_STATE_DIR, tag);
	root = json_load_file(path, 0, &je);
	if (!root) {
		snprintf(err, errsize,
			 "--cluster %s: no simulated cluster with that tag (%s: %s); "
			 "`ciliate-sim status` lists them",
			 tag, path, je.text);
		return -1;
	}
	if (strcmp(jstr(root, "phase"), "up")) {
		snprintf(err, errsize, "--cluster %s: the cluster is not up (phase \"%s\" in %s)",
			 tag, jstr(root, "phase"), path);
		json_decref(root);
		return -1;
	}
	snprintf(c->tag, sizeof(c->tag), "%s", tag);
	snprintf(c->name, sizeof(c->name), "%s", jstr(root, "cluster"));
	snprintf(c->routing, sizeof(c->routing), "%s", jstr(root, "routing"));
	c->mtu = (int)json_integer_value(json_object_get(root, "mtu"));
	t = jstr(root, "store");
	if (!*t || !strcmp(t, "embedded")) /* sim/runner/store.c sim_store_uri() */
		snprintf(c->store, sizeof(c->store), "file://%s/%s/store?keep_revisions=1000",
			 CLI_SIM_STATE_DIR, tag);
	else
		snprintf(c->store, sizeof(c->store), "%s", t);
	hosts = json_object_get(root, "hosts");
	c->hosts = calloc(json_array_size(hosts) + 1, sizeof(*c->hosts));
	if (!c->hosts) {
		snprintf(err, errsize, "out of memory");
		json_decref(root);
		return -1;
	}
	json_array_foreach(hosts, i, h)
	{
		struct cli_sim_host *x = &c->hosts[c->nhosts];

		if (!strcmp(jstr(h, "kind"), "node"))
			x->kind = CLI_SIM_NODE;
		else if (!strcmp(jstr(h, "kind"), "ext"))
			x->kind = CLI_SIM_EXT;
		else
			continue;
		snprintf(x->name, sizeof(x->name), "%s", jstr(h, "name"));
		snprintf(x->netns, sizeof(x->netns), "%s", jstr(h, "netns"));
		snprintf(x->ip, sizeof(x->ip), "%s", jstr(h, "ip"));
		json_array_foreach(json_object_get(h, "ports"), k,
				   p) if (x->nports < sizeof(x->ports) / sizeof(x->ports[0]))
			x->ports[x->nports++] = (int)json_integer_value(p);
		c->nhosts++;
	}
	json_decref(root);
	return 0;
}

void cli_sim_free(struct cli_sim_cluster *c)
{
	free(c->hosts);
	memset(c, 0, sizeof(*c));
}

const struct cli_sim_host *cli_sim_find(const struct cli_sim_cluster *c, enum cli_sim_kind kind,
					const char *name)
{
	size_t i;

	for (i = 0; i < c->nhosts; i++)
		if (c->hosts[i].kind == kind && !strcmp(c->hosts[i].name, name))
			return &c->hosts[i];
	return NULL;
}

/* The value of option opt at argv[*i] ("--opt V" or "--opt=V"), advancing *i; NULL if
 * argv[*i] is not that option. *missing is set when the value is absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt, bool *missing)
{
	size_t len = strlen(opt);

	*missing = false;
	if (strncmp(argv[*i], opt, len) || (argv[*i][len] && argv[*i][len] != '='))
		return NULL;
	if (argv[*i][len] == '=')
		return argv[*i] + len + 1;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

int cli_cluster_opt(int argc, char ***argvp)
{
	char **argv = *argvp, **out, err[1024];
	const char *tag = NULL, *v;
	struct cli_sim_cluster c;
	bool missing, has_node = false, has_store = false, multi, ipam;
	int i, n = 0, extra;
	size_t k;

	if (argc < 2 || !strcmp(argv[1], "connectivity"))
		return argc;
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if ((v = opt_value(argc, argv, &i, "--cluster", &missing)))
			tag = v;
		else if (missing) {
			fprintf(stderr, "ciliate: --cluster needs a TAG (`ciliate-sim status` "
					"prints it)\n");
			return -1;
		}
	}
	if (!tag)
		return argc;
	if (cli_sim_load(tag, &c, err, sizeof(err))) {
		fprintf(stderr, "ciliate: %s\n", err);
		return -1;
	}
	setenv("CILIATE_STORE", c.store, 1);
	{ /* commands that ask every agent ask only this cluster's (cli_agent_sockets) */
		char prefix[sizeof(c.tag) + 8];

		snprintf(prefix, sizeof(prefix), "cil-%s-", c.tag);
		setenv(CLI_AGENT_PREFIX_ENV, prefix, 1);
	}
	ipam = !strcmp(argv[1], "ipam");
	multi = !strcmp(argv[1], "observe") || !strcmp(argv[1], "monitor");
	extra = 0;
	for (k = 0; k < c.nhosts; k++)
		extra += 2 * (c.hosts[k].kind == CLI_SIM_NODE);
	out = calloc((size_t)argc + (size_t)extra + 1, sizeof(*out));
	if (!out) {
		cli_sim_free(&c);
		return -1;
	}
	out[n++] = argv[0];
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				out[n++] = argv[i++];
			break;
		}
		if (opt_value(argc, argv, &i, "--cluster", &missing))
			continue;
		if ((v = opt_value(argc, argv, &i, "--store", &missing)) || missing) {
			has_store = true;
			continue;
		}
		if (!strcmp(argv[i], "--socket") || !strncmp(argv[i], "--socket=", 9))
			has_node = true;
		if ((v = opt_value(argc, argv, &i, "--node", &missing))) {
			const struct cli_sim_host *h = cli_sim_find(&c, CLI_SIM_NODE, v);
			char *mapped;

			has_node = true;
			out[n++] = "--node";
			if (ipam || !h) { /* the store's node name, or already an instance */
				out[n++] = (char *)v;
				continue;
			}
			mapped = strdup(h->netns);
			if (!mapped)
				return -1;
			out[n++] = mapped;
			continue;
		}
		out[n++] = argv[i];
	}
	if (has_store) {
		fprintf(stderr, "ciliate: give --cluster or --store, not both\n");
		cli_sim_free(&c);
		free(out);
		return -1;
	}
	if (multi && !has_node) /* only this cluster's agents, not every one on the machine */
		for (k = 0; k < c.nhosts; k++) {
			if (c.hosts[k].kind != CLI_SIM_NODE)
				continue;
			out[n++] = "--node";
			out[n++] = strdup(c.hosts[k].netns);
		}
	out[n] = NULL;
	cli_sim_free(&c);
	*argvp = out;
	return n;
}
