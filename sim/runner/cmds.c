/* SPDX-License-Identifier: Apache-2.0 */
/* The ciliate-sim subcommands: up, down, run, exec, status, capture. */
#include "run.h"
#include "flow/flowpage.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAPTURE_COUNT_DEFAULT 100
#define CAPTURE_COUNT_MAX 1000000
#define CAPTURE_TIMEOUT_DEFAULT 10
#define CAPTURE_TIMEOUT_MAX 3600

static int need_root(const char *cmd)
{
	if (geteuid() == 0)
		return 0;
	fprintf(stderr, "ciliate-sim %s: needs root (network namespaces)\n", cmd);
	return -EPERM;
}

static void on_signal(int sig)
{
	sim_interrupted = 1;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: waits return EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static bool is_tag(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n > SIM_TAG_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * Makes c (planned from a scenario) ready to bring up, or finds it already running.
 * A cluster left by a crashed run (phase other than "up", or a `run` cluster, whose owner
 * is gone) is removed first; one another live process is bringing up or running is refused.
 * Sets *running when a cluster that `up` left for the same scenario is up.
 */
static int check_existing(struct sim_cluster *c, bool *running, struct diag *d)
{
	struct sim_cluster old;
	char prefix[64], **found = NULL;
	size_t nfound = 0;
	bool owner_alive;
	int err;

	*running = false;
	err = sim_state_load(c->tag, &old, d);
	if (err == -ENOENT) {
		sim_netns_prefix(c->tag, prefix, sizeof(prefix));
		if (!netns_list(prefix, &found, &nfound) && nfound) {
			fprintf(stderr, "ciliate-sim: %zu namespace(s) %s* without a state file "
				"(crashed run?): removing them\n", nfound, prefix);
			strv_free(found, nfound);
			return sim_down_tag(c->tag, true, d);
		}
		return 0;
	}
	if (err) {
		fprintf(stderr, "ciliate-sim: %s: removing the cluster it describes\n", d->msg);
		return sim_down_tag(c->tag, true, d);
	}
	owner_alive = old.owner.pid != getpid() && proc_alive(old.owner.pid, old.owner.start);
	if (owner_alive && (strcmp(old.phase, "up") || !old.keep)) {
		err = diag_fail_errno(d, -EBUSY, "cluster %s is in use by ciliate-sim pid %d",
				      c->tag, (int)old.owner.pid);
	} else if (!strcmp(old.phase, "up") && old.keep && strcmp(old.scenario, c->scenario)) {
		err = diag_fail_errno(d, -EEXIST, "cluster tag %s is up from %s; run "
				      "`ciliate-sim down %s` first", c->tag, old.scenario, c->tag);
	} else if (!strcmp(old.phase, "up") && old.keep) {
		*running = true;
		c->datapath = old.datapath;
		c->keep = true;
		/* the store it was brought up with, whatever this command's --store says */
		memcpy(c->store_uri, old.store_uri, sizeof(c->store_uri));
		c->operator_proc = old.operator_proc;
		/* keep the recorded processes: the runner does not touch them */
		free(c->hosts);
		c->hosts = old.hosts;
		c->nhosts = old.nhosts;
		old.hosts = NULL;
		old.nhosts = 0;
	} else {
		fprintf(stderr, "ciliate-sim: cluster %s was left in phase \"%s\" by a crashed "
			"%s: removing it first\n", c->tag, old.phase, old.keep ? "up" : "run");
		err = sim_down_tag(c->tag, true, d);
	}
	sim_cluster_free(&old);
	return err;
}

static int load_and_plan(const char *file, struct scenario **s, struct sim_cluster *c,
			 struct diag *d)
{
	int err;

	err = scenario_load(file, s, d);
	if (err)
		return err;
	err = sim_plan(*s, c, d);
	if (!err)
		err = sim_store_configure(c, d);
	if (err) {
		scenario_free(*s);
		*s = NULL;
	}
	return err;
}

static size_t count_kind(const struct sim_cluster *c, enum sim_kind kind)
{
	size_t i, n = 0;

	for (i = 0; i < c->nhosts; i++)
		n += c->hosts[i].kind == kind;
	return n;
}

/* Removes the options every command takes anywhere on its line from argv: --no-datapath
 * (sets sim_no_datapath) and --routing tunnel|native (sets sim_routing_override: the
 * scenario's Cluster routing is replaced, so one scenario runs in both modes). Returns the
 * new argc, or -1 after a usage message. */
static int strip_global_opts(int argc, char **argv)
{
	const char *v;
	int i, k = 1;

	for (i = 1; i < argc; i++) {
		v = NULL;
		if (!strcmp(argv[i], "--no-datapath")) {
			sim_no_datapath = true;
			continue;
		}
		if (!strcmp(argv[i], "--store") || !strncmp(argv[i], "--store=", 8)) {
			sim_store_override = argv[i][7] == '=' ? argv[i] + 8 : i + 1 < argc ? argv[++i] : "";
			if (!*sim_store_override) {
				fprintf(stderr, "ciliate-sim: --store: want etcd://HOST:PORT[,HOST:PORT...]\n");
				return -1;
			}
			continue;
		}
		if (!strcmp(argv[i], "--routing"))
			v = i + 1 < argc ? argv[++i] : "";
		else if (!strncmp(argv[i], "--routing=", 10))
			v = argv[i] + 10;
		if (!v) {
			argv[k++] = argv[i];
			continue;
		}
		if (!strcmp(v, "tunnel")) {
			sim_routing_override = SIM_ROUTING_TUNNEL;
		} else if (!strcmp(v, "native")) {
			sim_routing_override = SIM_ROUTING_NATIVE;
		} else {
			fprintf(stderr, "ciliate-sim: --routing: \"%s\" is not tunnel or native\n", v);
			return -1;
		}
	}
	argv[k] = NULL;
	return k;
}

int cmd_up(int argc, char **argv)
{
	struct scenario *s = NULL;
	struct sim_cluster c = { 0 };
	struct diag d = { "" };
	bool running;
	int err;

	argc = strip_global_opts(argc, argv);
	if (argc < 0)
		return SIM_EXIT_USAGE;
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ciliate-sim up FILE [--no-datapath] [--routing tunnel|native] [--store etcd://HOST:PORT[,...]]\n");
		return SIM_EXIT_USAGE;
	}
	if (need_root("up"))
		return SIM_EXIT_FAIL;
	err = load_and_plan(argv[1], &s, &c, &d);
	if (!err)
		err = check_existing(&c, &running, &d);
	if (!err && running) {
		printf("cluster %s (tag %s) is already up from %s\n", c.name, c.tag, c.scenario);
		goto out;
	}
	c.keep = true;
	if (!err)
		err = sim_up(&c, s, &d);
	if (!err)
		printf("cluster %s (tag %s) up in %lld ms: %zu node(s), %zu pod(s), %zu external "
		       "host(s); `ciliate-sim down %s` removes it\n", c.name, c.tag, c.up_ms,
		       count_kind(&c, SIM_NODE), count_kind(&c, SIM_POD), count_kind(&c, SIM_EXT),
		       argv[1]);
out:
	if (err)
		fprintf(stderr, "ciliate-sim up: %s\n", d.msg);
	sim_cluster_free(&c);
	scenario_free(s);
	return err ? SIM_EXIT_FAIL : SIM_EXIT_OK;
}

/* Tags known from state files or from a cil-<tag>-fabric namespace (a lost state file);
 * other cil-* namespaces are not the simulator's to remove. */
static int all_tags(char ***tags, size_t *n)
{
	char **names = NULL, **nv, tag[SIM_TAG_MAX + 2];
	size_t nnames = 0, i, k;
	const char *p, *dash;
	int err;

	err = sim_state_tags(tags, n);
	if (err)
		return err;
	if (netns_list(SIM_PREFIX, &names, &nnames))
		return 0;
	for (i = 0; i < nnames; i++) {
		p = names[i] + strlen(SIM_PREFIX);
		dash = strchr(p, '-');
		if (!dash || dash == p || (size_t)(dash - p) > SIM_TAG_MAX)
			continue;
		snprintf(tag, sizeof(tag), "%.*s", (int)(dash - p), p);
		if (!is_tag(tag) || strcmp(dash, "-fabric"))
			continue;
		for (k = 0; k < *n && strcmp((*tags)[k], tag); k++)
			;
		if (k < *n)
			continue;
		nv = realloc(*tags, (*n + 1) * sizeof(*nv));
		if (!nv)
			break;
		*tags = nv;
		nv[*n] = strdup(tag);
		if (nv[*n])
			(*n)++;
	}
	strv_free(names, nnames);
	return 0;
}

int cmd_down(int argc, char **argv)
{
	struct scenario *s = NULL;
	char tag[SIM_TAG_MAX + 1], **tags = NULL;
	struct diag d = { "" };
	size_t ntags = 0, i;
	struct stat st;
	int err = 0, rc = SIM_EXIT_OK;

	if (argc > 2 || (argc == 2 && !strcmp(argv[1], "-h"))) {
		fprintf(stderr, "usage: ciliate-sim down [FILE|TAG|--all]\n");
		return SIM_EXIT_USAGE;
	}
	if (need_root("down"))
		return SIM_EXIT_FAIL;
	if (argc == 2 && strcmp(argv[1], "--all")) {
		if (!stat(argv[1], &st)) {
			err = scenario_load(argv[1], &s, &d);
			if (!err && !s->model.has_cluster)
				err = diag_fail(&d, "%s: no Cluster document", argv[1]);
			if (!err)
				sim_tag(s->model.cluster.name, tag);
			scenario_free(s);
		} else if (is_tag(argv[1])) {
			snprintf(tag, sizeof(tag), "%s", argv[1]);
		} else {
			err = diag_fail(&d, "%s: neither a scenario file nor a cluster tag", argv[1]);
		}
		if (!err)
			err = sim_down_tag(tag, false, &d);
		if (err) {
			fprintf(stderr, "ciliate-sim down: %s\n", d.msg);
			return SIM_EXIT_FAIL;
		}
		return SIM_EXIT_OK;
	}
	err = all_tags(&tags, &ntags);
	if (err) {
		fprintf(stderr, "ciliate-sim down: cannot list clusters: %s\n", strerror(-err));
		return SIM_EXIT_FAIL;
	}
	if (argc == 1 && ntags > 1) {
		fprintf(stderr, "ciliate-sim down: %zu clusters are up (", ntags);
		for (i = 0; i < ntags; i++)
			fprintf(stderr, "%s%s", i ? ", " : "", tags[i]);
		fprintf(stderr, "): name one, or use --all\n");
		rc = SIM_EXIT_USAGE;
		goto out;
	}
	if (!ntags)
		fprintf(stderr, "ciliate-sim down: no simulated cluster to remove\n");
	for (i = 0; i < ntags; i++) {
		if (sim_down_tag(tags[i], false, &d)) {
			fprintf(stderr, "ciliate-sim down: %s\n", d.msg);
			rc = SIM_EXIT_FAIL;
		}
	}
	rmdir(SIM_STATE_DIR); /* only if empty */
out:
	strv_free(tags, ntags);
	return rc;
}

/* Brings up (or reuses) one scenario's cluster, runs its Tests, tears down. */
static void run_one(const char *file, struct sim_report *r)
{
	long long up_ms = 0, down_ms = 0, t0;
	struct scenario *s = NULL;
	struct sim_cluster c = { 0 };
	struct diag d = { "" };
	bool running = false;
	int err;

	printf("=== %s\n", file);
	fflush(stdout);
	err = load_and_plan(file, &s, &c, &d);
	if (err) {
		sim_report_error(r, file, "load", d.msg);
		return;
	}
	if (!s->ntests && !s->nreplays) {
		sim_report_error(r, file, "load", "no Test or Replay document: nothing to check");
		goto out;
	}
	sim_run_replays(s, r); /* BPF_PROG_TEST_RUN on private maps: no cluster needed */
	if (!s->ntests)
		goto out;
	err = check_existing(&c, &running, &d);
	if (!err && running)
		fprintf(stderr, "ciliate-sim: reusing cluster %s (tag %s), left up by `up`\n",
			c.name, c.tag);
	else if (!err)
		err = sim_up(&c, s, &d);
	if (err) {
		sim_report_error(r, file, "bring-up", d.msg);
		goto out;
	}
	up_ms = running ? 0 : c.up_ms;
	if (!running)
		fprintf(stderr, "ciliate-sim: cluster %s (tag %s) up in %lld ms\n", c.name, c.tag,
			up_ms);
	sim_run_tests(&c, s, r);
	if (!running) {
		t0 = sim_now_ms();
		err = sim_down_tag(c.tag, true, &d);
		down_ms = sim_now_ms() - t0;
		if (err)
			sim_report_error(r, file, "teardown", d.msg);
		else
			fprintf(stderr, "ciliate-sim: cluster %s torn down in %lld ms\n", c.tag,
				down_ms);
	}
	sim_report_scenario(r, file, c.tag, up_ms, down_ms, running);
out:
	sim_cluster_free(&c);
	scenario_free(s);
}

#define RUN_USAGE "usage: ciliate-sim run FILE... [-r|--report FILE.json] [--flows FILE.jsonl] [--html FILE.html] [--no-datapath] [--routing tunnel|native] [--store etcd://HOST:PORT[,...]]\n"

/* --flows (JSON lines, as `ciliate observe -o json`) and --html (the flow page) of the run. */
static int write_flow_log(const char *flows, const char *html)
{
	size_t n = json_array_size(sim_flow_log), i;
	json_t **v = calloc(n + 1, sizeof(*v));
	struct diag d = { "" };
	int failed = 0;
	FILE *f;

	for (i = 0; v && i < n; i++)
		v[i] = json_array_get(sim_flow_log, i);
	if (flows) {
		f = fopen(flows, "w");
		for (i = 0; f && i < n; i++) {
			json_dumpf(v[i], f, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', f);
		}
		if (!f || fclose(f)) {
			fprintf(stderr, "ciliate-sim run: --flows %s: %s\n", flows, strerror(errno));
			failed++;
		} else {
			printf("flow log: %zu flow(s) in %s\n", n, flows);
		}
	}
	if (html && v && flowpage_write(html, v, n, "ciliate-sim run", &d)) {
		fprintf(stderr, "ciliate-sim run: --html: %s\n", d.msg);
		failed++;
	} else if (html) {
		printf("flow page: %s\n", html);
	}
	free(v);
	json_decref(sim_flow_log);
	sim_flow_log = NULL;
	return failed;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "report", required_argument, NULL, 'r' },
		{ "flows", required_argument, NULL, 'F' },
		{ "html", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *report = NULL, *flows = NULL, *html = NULL;
	struct sim_report *r;
	struct diag d = { "" };
	int opt, i, failed;

	argc = strip_global_opts(argc, argv);
	if (argc < 0)
		return SIM_EXIT_USAGE;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+r:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			report = optarg;
			break;
		case 'F':
			flows = optarg;
			break;
		case 'H':
			html = optarg;
			break;
		default:
			fprintf(stderr, "%s", RUN_USAGE);
			return SIM_EXIT_USAGE;
		}
	}
	/* options may also follow the files */
	for (i = optind; i < argc; i++) {
		const char **dst = !strcmp(argv[i], "--report") ? &report :
				   !strcmp(argv[i], "--flows")	? &flows :
				   !strcmp(argv[i], "--html")	? &html : NULL;

		if (dst && i + 1 < argc) {
			*dst = argv[i + 1];
			memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 2) * sizeof(*argv));
			argc -= 2;
			i--;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s", RUN_USAGE);
		return SIM_EXIT_USAGE;
	}
	if (need_root("run"))
		return SIM_EXIT_FAIL;
	r = sim_report_new();
	if (!r)
		return SIM_EXIT_FAIL;
	catch_signals();
	if (flows || html)
		sim_flow_log = json_array();
	for (i = optind; i < argc && !sim_interrupted; i++)
		run_one(argv[i], r);
	failed = sim_report_summary(r);
	failed += write_flow_log(flows, html);
	if (report && sim_report_write(r, report, &d)) {
		fprintf(stderr, "ciliate-sim run: %s\n", d.msg);
		failed++;
	}
	sim_report_free(r);
	if (sim_interrupted)
		return 130;
	return failed ? SIM_EXIT_FAIL : SIM_EXIT_OK;
}

/* Finds the namespace of TARGET (NODE, ns/pod, ext/NAME or fabric) among running clusters
 * (only tag's when given). */
static int find_target(const char *tag, const char *target, char *netns, char *kind,
		       struct diag *d)
{
	char **tags = NULL, found_in[SIM_TAG_MAX + 1] = "";
	const struct sim_host *h;
	struct sim_cluster c;
	size_t ntags = 0, i;
	int err, hits = 0;

	err = sim_state_tags(&tags, &ntags);
	if (err)
		return diag_fail_errno(d, err, "cannot list clusters: %s", strerror(-err));
	for (i = 0; i < ntags; i++) {
		if (tag && strcmp(tag, tags[i]))
			continue;
		if (sim_state_load(tags[i], &c, NULL))
			continue;
		h = NULL;
		if (!strcmp(target, "fabric")) {
			snprintf(netns, NETNS_NAME_MAX, "%s", c.fabric);
			snprintf(kind, 16, "fabric");
			hits++;
			snprintf(found_in, sizeof(found_in), "%s", c.tag);
		} else if (!strncmp(target, "ext/", 4)) {
			h = sim_find_host(&c, SIM_EXT, target + 4);
		} else if (!strncmp(target, "node/", 5)) {
			h = sim_find_host(&c, SIM_NODE, target + 5);
		} else if (strchr(target, '/')) {
			h = sim_find_host(&c, SIM_POD, target);
		} else {
			h = sim_find_host(&c, SIM_NODE, target);
		}
		if (h) {
			snprintf(netns, NETNS_NAME_MAX, "%s", h->netns);
			snprintf(kind, 16, "%s", h->kind == SIM_NODE ? "node" :
						 h->kind == SIM_EXT ? "ext" :
						 h->host_network ? "hostpod" : "pod");
			hits++;
			snprintf(found_in, sizeof(found_in), "%s", c.tag);
		}
		sim_cluster_free(&c);
	}
	strv_free(tags, ntags);
	if (!hits)
		return diag_fail_errno(d, -ENOENT, "no running cluster%s%s has %s", tag ? " " : "",
				       tag ? tag : "", target);
	if (hits > 1)
		return diag_fail_errno(d, -EEXIST, "%s exists in several clusters: pick one with "
				       "-c TAG", target);
	return 0;
}

int cmd_exec(int argc, char **argv)
{
	char netns[NETNS_NAME_MAX], kind[16];
	const char *tag = NULL;
	struct diag d = { "" };
	char **args;
	int i = 1, k, n;

	if (i + 1 < argc && !strcmp(argv[i], "-c")) {
		tag = argv[i + 1];
		i += 2;
	}
	if (i >= argc || argv[i][0] == '-') {
		fprintf(stderr, "usage: ciliate-sim exec [-c TAG] NODE|ns/pod|ext/NAME|fabric -- "
			"CMD...\n");
		return SIM_EXIT_USAGE;
	}
	if (need_root("exec"))
		return SIM_EXIT_FAIL;
	if (find_target(tag, argv[i], netns, kind, &d)) {
		fprintf(stderr, "ciliate-sim exec: %s\n", d.msg);
		return SIM_EXIT_FAIL;
	}
	i++;
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		fprintf(stderr, "ciliate-sim exec: no command given\n");
		return SIM_EXIT_USAGE;
	}
	n = argc - i;
	args = calloc((size_t)n + 5, sizeof(*args));
	if (!args)
		return SIM_EXIT_FAIL;
	args[0] = "ip";
	args[1] = "netns";
	args[2] = "exec";
	args[3] = netns;
	for (k = 0; k < n; k++)
		args[4 + k] = argv[i + k];
	execvp("ip", args);
	fprintf(stderr, "ciliate-sim exec: ip: %s\n", strerror(errno));
	free(args);
	return SIM_EXIT_FAIL;
}

static void status_text(const struct sim_cluster *c)
{
	char ip[IP4_STR_MAX];
	size_t i, alive = 0, servers = 0;

	for (i = 0; i < c->nhosts; i++) {
		servers += c->hosts[i].echo.pid > 0;
		alive += c->hosts[i].echo.pid > 0 &&
			 proc_alive(c->hosts[i].echo.pid, c->hosts[i].echo.start);
	}
	printf("cluster %s (tag %s): %s, routing %s, datapath %s, %zu node(s), %zu pod(s), "
	       "%zu external host(s), echo servers %zu/%zu alive\n  scenario %s\n",
	       c->name, c->tag, c->phase, c->tunnel ? "tunnel" : "native",
	       c->datapath ? "attached" : "not attached", count_kind(c, SIM_NODE),
	       count_kind(c, SIM_POD), count_kind(c, SIM_EXT), alive, servers, c->scenario);
	printf("  store %s, operator %s\n", c->store_uri[0] ? c->store_uri : "embedded (run directory)",
	       !c->operator_proc.pid ? "none"
	       : proc_alive(c->operator_proc.pid, c->operator_proc.start) ? "running" : "GONE");
	printf("  %-5s %-32s %-15s %-10s %-24s %s\n", "KIND", "NAME", "IP", "NODE", "NETNS",
	       "ECHO");
	for (i = 0; i < c->nhosts; i++) {
		const struct sim_host *h = &c->hosts[i];
		char echo[48] = "-";

		if (h->echo.pid)
			snprintf(echo, sizeof(echo), "pid %d %s", (int)h->echo.pid,
				 proc_alive(h->echo.pid, h->echo.start) ? "running" : "GONE");
		printf("  %-5s %-32s %-15s %-10s %-24s %s\n",
		       h->kind == SIM_NODE ? "node" : h->kind == SIM_EXT ? "ext" : "pod", h->name,
		       ip4_format(h->ip, ip), h->kind == SIM_POD ? h->node : "-", h->netns, echo);
	}
}

int cmd_status(int argc, char **argv)
{
	bool json = argc == 3 && !strcmp(argv[1], "-o") && !strcmp(argv[2], "json");
	struct sim_cluster c;
	char **tags = NULL, *s;
	size_t ntags = 0, i;
	struct diag d;
	int err;

	if (argc != 1 && !json) {
		fprintf(stderr, "usage: ciliate-sim status [-o json]\n");
		return SIM_EXIT_USAGE;
	}
	err = sim_state_tags(&tags, &ntags);
	if (err) {
		fprintf(stderr, "ciliate-sim status: %s\n", strerror(-err));
		return SIM_EXIT_FAIL;
	}
	if (json)
		printf("[");
	else if (!ntags)
		printf("no simulated cluster is up\n");
	for (i = 0; i < ntags; i++) {
		if (sim_state_load(tags[i], &c, &d)) {
			fprintf(stderr, "ciliate-sim status: %s\n", d.msg);
			continue;
		}
		if (json) {
			s = sim_state_dump(&c, true);
			printf("%s%s", i ? ",\n" : "\n", s ? s : "null");
			free(s);
		} else {
			status_text(&c);
		}
		sim_cluster_free(&c);
	}
	if (json)
		printf("\n]\n");
	strv_free(tags, ntags);
	return SIM_EXIT_OK;
}

static void capture_usage(void)
{
	fprintf(stderr, "usage: ciliate-sim capture [-c TAG] NODE|ns/pod|ext/NAME|fabric "
		"[-i IFACE] [-w FILE.pcap] [--count N] [--timeout S] [FILTER...]\n"
		"  defaults: -i any (nodes), eth0 (pods, external hosts), br0 (fabric); "
		"--count %d (max %d), --timeout %d s (max %d)\n", CAPTURE_COUNT_DEFAULT,
		CAPTURE_COUNT_MAX, CAPTURE_TIMEOUT_DEFAULT, CAPTURE_TIMEOUT_MAX);
}

static int parse_bounded(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Runs tcpdump in netns until it has count packets or timeout seconds passed. */
static int run_tcpdump(const char *netns, const char *iface, const char *file, long count,
		       long timeout, char **filter, int nfilter)
{
	struct sim_tcpdump t = { .netns = netns, .iface = iface, .file = file, .count = count,
				 .filter = filter, .nfilter = nfilter };
	long long deadline = sim_now_ms() + timeout * 1000;
	char msg[96];
	pid_t pid;
	int err;

	snprintf(msg, sizeof(msg), "ciliate-sim capture: %ld s timeout reached\n", timeout);
	signal(SIGINT, SIG_IGN); /* Ctrl-C reaches tcpdump, which stops and reports */
	err = sim_tcpdump_start(&t, &pid, NULL);
	if (err)
		return err;
	return sim_tcpdump_wait(pid, deadline, msg);
}

struct capture_opts {
	const char *tag, *file, *iface;
	long count, timeout;
};

/* Parses capture options from optind on; stops at the first non-option. */
static int capture_parse(int argc, char **argv, struct capture_opts *o)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "+c:i:w:n:t:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o->tag = optarg;
			break;
		case 'i':
			o->iface = optarg;
			break;
		case 'w':
			o->file = optarg;
			break;
		case 'n':
			if (parse_bounded(optarg, 1, CAPTURE_COUNT_MAX, &o->count))
				return -EINVAL;
			break;
		case 't':
			if (parse_bounded(optarg, 1, CAPTURE_TIMEOUT_MAX, &o->timeout))
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

int cmd_capture(int argc, char **argv)
{
	struct capture_opts o = { .count = CAPTURE_COUNT_DEFAULT,
				  .timeout = CAPTURE_TIMEOUT_DEFAULT };
	char netns[NETNS_NAME_MAX], kind[16];
	struct diag d = { "" };
	const char *target;
	int err;

	optind = 1;
	/* options before and after the target */
	if (capture_parse(argc, argv, &o) || optind >= argc) {
		capture_usage();
		return SIM_EXIT_USAGE;
	}
	target = argv[optind++];
	if (capture_parse(argc, argv, &o)) {
		capture_usage();
		return SIM_EXIT_USAGE;
	}
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (need_root("capture"))
		return SIM_EXIT_FAIL;
	err = find_target(o.tag, target, netns, kind, &d);
	if (err) {
		fprintf(stderr, "ciliate-sim capture: %s\n", d.msg);
		return SIM_EXIT_FAIL;
	}
	if (!o.iface)
		o.iface = !strcmp(kind, "fabric") ? "br0" :
			  !strcmp(kind, "node") || !strcmp(kind, "hostpod") ? "any" : "eth0";
	fprintf(stderr, "ciliate-sim capture: %s (%s) -i %s, at most %ld packets / %ld s\n",
		target, netns, o.iface, o.count, o.timeout);
	err = run_tcpdump(netns, o.iface, o.file, o.count, o.timeout, argv + optind,
			  argc - optind);
	return err ? SIM_EXIT_FAIL : SIM_EXIT_OK;
}
