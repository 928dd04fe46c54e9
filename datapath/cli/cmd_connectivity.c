/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ciliate connectivity test`: Cilium's post-install suite, offline and self-cleaning
 * (docs/CONNECTIVITY-TEST.md; the pieces are in datapath/connectivity/). This file: the
 * options, Ctrl-C, and the order of things — leftovers of a killed run removed, workloads
 * deployed, the selected tests run, everything removed, the summary and JUnit file written.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "connectivity.h"
#include "connectivity/ct.h"

#define TESTS_FILTER_MAX 16
#define EXIT_INTERRUPTED 130

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate connectivity test [--cluster TAG | --store URI [--node NAME]]\n"
		"                                 [--test REGEX]... [--junit-file FILE] "
		"[--single-node]\n"
		"                                 [--external-target IP] [--namespace NAME] [-v] "
		"[-o json]\n"
		"       ciliate connectivity test --cleanup [--cluster TAG] [--namespace NAME]\n"
		"\n"
		"Deploys client, client2, echo-same-node and echo-other-node pods with their\n"
		"services in the namespace (default " CT_DEFAULT_NS "), runs Cilium's core tests\n"
		"and removes everything it made, also on Ctrl-C:\n"
		"  no-policies, no-policies-from-outside, all-ingress-deny, client-ingress,\n"
		"  echo-ingress, pod-to-pod-encryption, no-unexpected-packet-drops\n"
		"  --cluster TAG        a simulated cluster left up by `ciliate-sim up` (the tag\n"
		"                       `ciliate-sim status` prints)\n"
		"  --store URI          a real host: its agent (--node, or the only one running "
		"in\n"
		"                       this network namespace) and the store it uses\n"
		"  --test REGEX         run only the tests matching (repeatable; '!REGEX' "
		"excludes)\n"
		"  --junit-file FILE    write JUnit XML\n"
		"  --single-node        no other-node workloads or actions\n"
		"  --external-target IP pod-to-world's target: an external host of the cluster\n"
		"                       (default: its first one; port: the host's first port)\n"
		"  --cleanup            only remove what an earlier (killed) run left behind\n"
		"  -v, --verbose        every action's outcome (and a denial's drop event)\n"
		"  -v, --verbose        every action's outcome (a denial's with its drop event)\n"
		"  -o json              the summary as JSON on stdout\n"
		"Progress goes to stderr, the summary to stdout. Exit 0 all passed, 1 a test\n"
		"failed, 2 usage, 130 interrupted.\n");
}

struct opts {
	const char *cluster, *store, *node, *junit, *external, *ns;
	const char *tests[TESTS_FILTER_MAX];
	size_t ntests;
	bool single_node, json, cleanup_only, verbose;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"cluster", required_argument, NULL, 'c'},
		{"store", required_argument, NULL, 's'},
		{"node", required_argument, NULL, 'N'},
		{"test", required_argument, NULL, 't'},
		{"junit-file", required_argument, NULL, 'j'},
		{"single-node", no_argument, NULL, '1'},
		{"external-target", required_argument, NULL, 'e'},
		{"namespace", required_argument, NULL, 'n'},
		{"output", required_argument, NULL, 'o'},
		{"cleanup", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *p;
	int ch;

	memset(o, 0, sizeof(*o));
	o->ns = CT_DEFAULT_NS;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "o:hv", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->cluster = optarg;
			break;
		case 's':
			o->store = optarg;
			break;
		case 'N':
			o->node = optarg;
			break;
		case 'j':
			o->junit = optarg;
			break;
		case '1':
			o->single_node = true;
			break;
		case 'e':
			o->external = optarg;
			break;
		case 'n':
			o->ns = optarg;
			break;
		case 'C':
			o->cleanup_only = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 't':
			if (o->ntests == TESTS_FILTER_MAX) {
				fprintf(stderr, "ciliate connectivity test: at most %d --test\n",
					TESTS_FILTER_MAX);
				return EXIT_USAGE;
			}
			o->tests[o->ntests++] = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				fprintf(stderr, "ciliate connectivity test: -o json|text\n");
				return EXIT_USAGE;
			}
			o->json = !strcmp(optarg, "json");
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ciliate connectivity test: unexpected argument \"%s\"\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (o->cluster && (o->store || o->node)) {
		fprintf(stderr, "ciliate connectivity test: give --cluster or --store/--node, not "
				"both\n");
		return EXIT_USAGE;
	}
	for (p = o->ns; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			break;
	if (!*o->ns || *p || strlen(o->ns) > 40 || o->ns[0] == '-') {
		fprintf(stderr,
			"ciliate connectivity test: --namespace \"%s\": lowercase letters, "
			"digits and '-', at most 40\n",
			o->ns);
		return EXIT_USAGE;
	}
	return 0;
}

/* Marks the tests --test selects (none given: all). 0, or EXIT_USAGE for a bad regex. */
static int select_tests(const struct opts *o, struct ct_test *t, size_t n)
{
	regex_t re[TESTS_FILTER_MAX];
	bool positive = false;
	size_t i, k;
	int rc = 0;

	for (k = 0; k < o->ntests; k++) {
		const char *pat = o->tests[k][0] == '!' ? o->tests[k] + 1 : o->tests[k];

		positive |= o->tests[k][0] != '!';
		if (regcomp(&re[k], pat, REG_EXTENDED | REG_NOSUB)) {
			fprintf(stderr,
				"ciliate connectivity test: --test \"%s\": not a regular "
				"expression\n",
				o->tests[k]);
			while (k--)
				regfree(&re[k]);
			return EXIT_USAGE;
		}
	}
	for (i = 0; i < n; i++) {
		bool in = !positive, out = false;

		for (k = 0; k < o->ntests; k++) {
			bool m = regexec(&re[k], t[i].name, 0, NULL, 0) == 0;

			if (o->tests[k][0] == '!')
				out |= m;
			else
				in |= m;
		}
		t[i].selected = in && !out;
	}
	for (k = 0; k < o->ntests; k++)
		regfree(&re[k]);
	for (i = 0; i < n && !t[i].selected; i++)
		;
	if (i == n) {
		fprintf(stderr, "ciliate connectivity test: --test selects none of the tests\n");
		rc = EXIT_USAGE;
	}
	return rc;
}

/* The external target: --external-target (in a simulated cluster, one of its external
 * hosts: traffic stays inside the simulation), else the cluster's first external host. */
static int pick_world(struct ct_ctx *c, const char *ip)
{
	size_t i;

	if (c->env.sim) {
		for (i = 0; i < c->env.nexts; i++)
			if (!ip || !strcmp(ip, c->env.exts[i].ip))
				break;
		if (i == c->env.nexts) {
			if (!ip)
				return 0;
			fprintf(stderr,
				"ciliate connectivity test: --external-target %s is not an "
				"external host of cluster %s (its hosts:",
				ip, c->env.tag);
			for (i = 0; i < c->env.nexts; i++)
				fprintf(stderr, " %s", c->env.exts[i].ip);
			fprintf(stderr, ")\n");
			return EXIT_USAGE;
		}
		c->world = &c->env.exts[i];
		snprintf(c->world_ip, sizeof(c->world_ip), "%s", c->world->ip);
		c->world_port = c->world->port;
		return 0;
	}
	if (ip) {
		snprintf(c->world_ip, sizeof(c->world_ip), "%s", ip);
		c->world_port = 80;
	}
	return 0;
}

/* --cleanup of a cluster that is gone (no state file): what is left can only be found by
 * name (namespaces, the processes in them, the run directory). False for a bad tag. */
static bool gone_cluster(struct ct_env *env, const char *tag)
{
	const char *t;

	for (t = tag; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9')))
			return false;
	memset(env, 0, sizeof(*env));
	env->sim = true;
	snprintf(env->tag, sizeof(env->tag), "%.60s", tag);
	return *tag != '\0';
}

/* One run per cluster and namespace at a time: a second one would take the first one's
 * workloads for leftovers. Returns the held lock's fd, or -1 (reason printed). */
static int lock_run(const struct ct_ctx *c)
{
	char path[600];
	int fd;

	if (mkdir(CT_RUN_DIR, 0755) && errno != EEXIST) {
		fprintf(stderr, "ciliate connectivity test: %s: %s\n", CT_RUN_DIR, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/.lock-%s-%s", CT_RUN_DIR, c->env.tag, c->ns);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "ciliate connectivity test: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr,
			"ciliate connectivity test: another run against cluster %s, "
			"namespace %s, is in progress (%s is locked)\n",
			c->env.tag, c->ns, path);
		close(fd);
		return -1;
	}
	return fd;
}

static void unlock_run(const struct ct_ctx *c, int fd)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/.lock-%s-%s", CT_RUN_DIR, c->env.tag, c->ns);
	unlink(path);
	close(fd);
	rmdir(CT_RUN_DIR); /* only when no other run's files are there */
}

static int run_test(int argc, char **argv)
{
	static struct ct_ctx c;
	struct sigaction sa = {.sa_handler = on_signal};
	struct ct_test *tests;
	struct opts o;
	char err[1024];
	size_t n, i, k, selected = 0, failed;
	long long t0, t1;
	int rc, lock_fd;
	bool interrupted = false, setup_failed = false;

	rc = parse(argc, argv, &o);
	if (rc)
		return rc;
	n = ct_tests(&tests);
	rc = select_tests(&o, tests, n);
	if (rc)
		return rc;
	memset(&c, 0, sizeof(c));
	if (ct_env_load(&c.env, o.cluster, o.node, o.store, err, sizeof(err))) {
		if (!o.cleanup_only || !o.cluster || !gone_cluster(&c.env, o.cluster)) {
			fprintf(stderr, "ciliate connectivity test: %s\n", err);
			return EXIT_FAILURE_;
		}
		fprintf(stderr,
			"ciliate connectivity test: %s\nciliate connectivity test: "
			"removing the suite's namespaces and processes of cluster %s by name\n",
			err, o.cluster);
	}
	c.ns = o.ns;
	c.verbose = o.verbose;
	c.single_node = o.single_node || c.env.nnodes < 2;
	c.stop = &stop_flag;
	snprintf(c.run_dir, sizeof(c.run_dir), "%s/%s-%s", CT_RUN_DIR, c.env.tag, c.ns);
	snprintf(c.netns_prefix, sizeof(c.netns_prefix), "%s%s-%s-", CT_NETNS_PREFIX, c.env.tag,
		 c.ns);
	rc = pick_world(&c, o.external);
	if (rc)
		return rc;
	lock_fd = lock_run(&c);
	if (lock_fd < 0)
		return EXIT_FAILURE_;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* whatever a killed earlier run left (processes, endpoints, namespaces, objects) */
	if (ct_cleanup(&c, true)) {
		fprintf(stderr, "ciliate connectivity test: could not remove an earlier run's "
				"leftovers (above)\n");
		rc = EXIT_FAILURE_;
		goto out;
	}
	c.stop = &stop_flag;
	if (o.cleanup_only) {
		rc = EXIT_OK;
		goto out;
	}
	for (i = 0; i < n; i++)
		selected += tests[i].selected;
	t0 = ct_now_ms();
	if (ct_deploy(&c, err, sizeof(err))) {
		fprintf(stderr, "ciliate connectivity test: deploying the workloads: %s\n", err);
		setup_failed = true;
	} else if (ct_flows_mark(&c, err, sizeof(err))) {
		fprintf(stderr, "ciliate connectivity test: %s\n", err);
		setup_failed = true;
	}
	c.deploy_s = (double)(ct_now_ms() - t0) / 1000.0;
	if (!setup_failed) {
		fprintf(stderr,
			"🏃 [%s] Running %zu tests on cluster %s (%zu node(s)), external "
			"target %s ...\n",
			c.ns, selected, c.env.tag, c.single_node ? (size_t)1 : c.env.nnodes,
			c.world_ip[0] ? c.world_ip : "none");
		for (i = 0, k = 0; i < n; i++) {
			if (!tests[i].selected)
				continue;
			if (stop_flag)
				break;
			ct_report_test_start(&c, &tests[i], k++, selected);
			ct_run_test(&c, &tests[i]);
			if (stop_flag && !tests[i].skipped)
				break;
			ct_report_test_end(&c, &tests[i]);
		}
		/* tests that did not run are not reported */
		for (; i < n; i++)
			tests[i].selected = false;
	}
	interrupted = stop_flag;
	c.tests_s = (double)(ct_now_ms() - t0) / 1000.0 - c.deploy_s;
	if (interrupted)
		fprintf(stderr, "⚠️  [%s] Interrupted: cleaning up...\n", c.ns);
	t1 = ct_now_ms();
	rc = ct_cleanup(&c, false);
	c.cleanup_s = (double)(ct_now_ms() - t1) / 1000.0;
	if (setup_failed && interrupted) {
		rc = EXIT_INTERRUPTED;
		goto out;
	}
	if (setup_failed) /* reported (and in the JUnit file) as the first test's failure */
		for (i = 0, k = 0; i < n; i++) {
			if (!tests[i].selected)
				continue;
			tests[i].selected = k++ == 0;
			if (!tests[i].selected)
				continue;
			snprintf(tests[i].error, sizeof(tests[i].error),
				 "setup failed, no test ran: %.700s", err);
			tests[i].nfailed = 1;
		}
	failed = ct_report_summary(&c, tests, n, o.json, (double)(ct_now_ms() - t0) / 1000.0,
				   interrupted);
	if (o.junit && ct_junit_write(o.junit, tests, n, (double)(ct_now_ms() - t0) / 1000.0, c.ns,
				      err, sizeof(err))) {
		fprintf(stderr, "ciliate connectivity test: %s\n", err);
		rc = -1;
	}
	rc = interrupted ? EXIT_INTERRUPTED : failed || rc ? EXIT_FAILURE_ : EXIT_OK;
out:
	json_decref(c.expected_drops);
	unlock_run(&c, lock_fd);
	return rc;
}

int cmd_connectivity(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "test"))
		return run_test(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return EXIT_OK;
	}
	usage(stderr);
	return EXIT_USAGE;
}
