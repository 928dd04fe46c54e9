/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-echo's configuration: the command line, the --sites file (one site per line, in
 * the command line's per-site options) and the checks on both; errors name FILE:LINE.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo.h"

#define MAX_PORTS 64

static void usage(FILE *f)
{
	fprintf(f,
		"NAME\n"
		"    ciliate-echo - the echo server of every simulated pod and external host\n"
		"\n"
		"SYNOPSIS\n"
		"    ciliate-echo [--pod NAME] [--namespace NS] [--node NODE] [--netns FILE]\n"
		"                 (--tcp PORT | --udp PORT | --port PORT)... [--bind ADDR]\n"
		"                 [--pidfile FILE] [--idle-timeout-ms MS] [--max-conns N] [--quiet]\n"
		"    ciliate-echo --sites FILE [--pidfile FILE] [--idle-timeout-ms MS]\n"
		"                 [--max-conns N] [--quiet]\n"
		"    ciliate-echo --help\n"
		"\n"
		"DESCRIPTION\n"
		"    Answers every TCP/UDP request with one JSON object naming the pod, namespace,\n"
		"    node and the client address it saw; HTTP requests get an HTTP/1.1 JSON\n"
		"    response. The simulator (ciliate-sim) runs one per node; see\n"
		"    docs/SIMULATOR.md, ciliate-echo.\n"
		"\n"
		"OPTIONS (one site; the words of a --sites line)\n"
		"    --pod NAME           the pod name the answers carry (default \"\")\n"
		"    --namespace NS       the pod's namespace the answers carry\n"
		"    --node NODE          the node name the answers carry\n"
		"    --netns FILE         listen in the network namespace FILE (e.g.\n"
		"                         /run/netns/NAME; default: the current one)\n"
		"    --tcp PORT           serve PORT (1..65535) on TCP (repeatable)\n"
		"    --udp PORT           serve PORT on UDP (repeatable)\n"
		"    --port PORT          serve PORT on both TCP and UDP (repeatable)\n"
		"    --bind ADDR          listen on ADDR only (default: every IPv4 and IPv6\n"
		"                         address)\n"
		"    At least one of --tcp, --udp, --port; at most 64 ports per protocol.\n"
		"\n"
		"OPTIONS (the process)\n"
		"    --sites FILE         serve many pods from one process: one line per pod\n"
		"                         holding its --netns, --pod, --namespace, --node,\n"
		"                         --tcp/--udp/--port and --bind options ('#' starts a\n"
		"                         comment line)\n"
		"    --pidfile FILE       write the pid once every port listens; removed on exit\n"
		"    --idle-timeout-ms MS close connections idle this long (100..600000,\n"
		"                         default %d)\n"
		"    --max-conns N        open TCP connections at most (1..1000000, default %d;\n"
		"                         lowered to fit RLIMIT_NOFILE)\n"
		"    --quiet              log errors only, not every request\n"
		"    --help               this help\n"
		"\n"
		"EXIT STATUS\n"
		"    0 after SIGTERM/SIGINT or --help, 1 a listener or the event loop failed,\n"
		"    2 a usage error (FILE:LINE for a sites file).\n",
		DEFAULT_IDLE_MS, DEFAULT_MAX_CONNS);
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

static int add_port(const struct site *s, struct port_list *l, const char *arg)
{
	unsigned int port, i, *v;

	if (parse_uint(arg, 1, 65535, &port)) {
		echo_site_error(s, "invalid port \"%s\" (1..65535)", arg);
		return -EINVAL;
	}
	for (i = 0; i < l->n; i++)
		if (l->v[i] == port)
			return 0;
	if (l->n == MAX_PORTS) {
		echo_site_error(s, "too many ports (at most %d per protocol)", MAX_PORTS);
		return -E2BIG;
	}
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v) {
		echo_site_error(s, "out of memory");
		return -ENOMEM;
	}
	v[l->n++] = port;
	l->v = v;
	return 0;
}

/* The options; the per-site ones (O_POD..O_NETNS) are also the words of a sites-file line. */
enum opt { O_POD = 256, O_NS, O_NODE, O_TCP, O_UDP, O_PORT, O_BIND, O_NETNS, O_SITES,
	   O_PIDFILE, O_IDLE, O_MAXCONNS, O_QUIET, O_HELP };

static const struct option options[] = {
	{ "pod", required_argument, NULL, O_POD },
	{ "namespace", required_argument, NULL, O_NS },
	{ "node", required_argument, NULL, O_NODE },
	{ "tcp", required_argument, NULL, O_TCP },
	{ "udp", required_argument, NULL, O_UDP },
	{ "port", required_argument, NULL, O_PORT },
	{ "bind", required_argument, NULL, O_BIND },
	{ "netns", required_argument, NULL, O_NETNS },
	{ "sites", required_argument, NULL, O_SITES },
	{ "pidfile", required_argument, NULL, O_PIDFILE },
	{ "idle-timeout-ms", required_argument, NULL, O_IDLE },
	{ "max-conns", required_argument, NULL, O_MAXCONNS },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static const char *option_name(int opt)
{
	const struct option *o;

	for (o = options; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

/* Applies one per-site option to s. */
static int site_option(struct site *s, int opt, const char *arg)
{
	int err;

	switch (opt) {
	case O_POD:
		s->id.pod = arg;
		return 0;
	case O_NS:
		s->id.namespace = arg;
		return 0;
	case O_NODE:
		s->id.node = arg;
		return 0;
	case O_TCP:
		return add_port(s, &s->tcp, arg);
	case O_UDP:
		return add_port(s, &s->udp, arg);
	case O_PORT:
		err = add_port(s, &s->tcp, arg);
		return err ? err : add_port(s, &s->udp, arg);
	case O_BIND:
		s->bind_addr = arg;
		return 0;
	case O_NETNS:
		s->netns = arg;
		return 0;
	}
	return -EINVAL;
}

/* Applies one process-wide option; 1 after --help. */
static int server_option(struct server *srv, int opt, const char *arg)
{
	switch (opt) {
	case O_SITES:
		srv->sites_file = arg;
		return 0;
	case O_PIDFILE:
		srv->pidfile = arg;
		return 0;
	case O_IDLE:
		if (!parse_uint(arg, 100, 600000, &srv->idle_ms))
			return 0;
		fprintf(stderr, "ciliate-echo: --idle-timeout-ms: 100..600000\n");
		return -EINVAL;
	case O_MAXCONNS:
		if (!parse_uint(arg, 1, 1000000, &srv->max_conns))
			return 0;
		fprintf(stderr, "ciliate-echo: --max-conns: 1..1000000\n");
		return -EINVAL;
	case O_QUIET:
		srv->quiet = true;
		return 0;
	case O_HELP:
		usage(stdout);
		return 1;
	}
	return -EINVAL;
}

/*
 * Reports what getopt_long rejected: a missing value (':'), or ('?') a value given to a flag,
 * an unknown short option or an unknown or ambiguous long one.
 */
static int bad_option(const struct site *s, int c, char **argv)
{
	if (c == ':')
		echo_site_error(s, "option \"%s\" needs a value", argv[optind - 1]);
	else if (optopt >= O_POD)
		echo_site_error(s, "option --%s takes no value", option_name(optopt));
	else if (optopt > 0)
		echo_site_error(s, "unknown option \"-%c\"", optopt);
	else
		echo_site_error(s, "unknown or ambiguous option \"%s\"", argv[optind - 1]);
	return -EINVAL;
}

/*
 * Parses argv: per-site options go to s, process-wide ones to srv, or are errors when srv
 * is NULL (a sites-file line). Returns 0, 1 after --help, or -EINVAL (already reported).
 */
static int parse_words(int argc, char **argv, struct server *srv, struct site *s)
{
	int c, err = 0;

	optind = 0; /* glibc: reinitialize, every sites-file line is a new argv */
	opterr = 0; /* reported by bad_option, with the sites-file line */
	while (!err && (c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (c == 'h')
			c = O_HELP;
		if (c == '?' || c == ':') {
			err = bad_option(s, c, argv);
		} else if (c >= O_POD && c <= O_NETNS) {
			err = site_option(s, c, optarg);
		} else if (srv) {
			err = server_option(srv, c, optarg);
		} else {
			echo_site_error(s, "--%s is not a per-site option", option_name(c));
			err = -EINVAL;
		}
	}
	if (err)
		return err > 0 ? err : -EINVAL;
	if (optind < argc) {
		echo_site_error(s, "unexpected argument \"%s\"", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int check_site(const struct site *s)
{
	if (s->tcp.n || s->udp.n)
		return 0;
	echo_site_error(s, "give at least one --tcp, --udp or --port");
	return -EINVAL;
}

/* Appends a zeroed site from file:line (NULL, 0: the command line); NULL when out of memory. */
static struct site *new_site(struct server *srv, const char *file, unsigned int line)
{
	struct site *sites = srv->sites;
	unsigned int cap = srv->cap_sites;

	if (srv->n_sites == cap) {
		cap = cap ? 2 * cap : 16;
		sites = realloc(sites, cap * sizeof(*sites));
		if (!sites) {
			fprintf(stderr, "ciliate-echo: out of memory\n");
			return NULL;
		}
		srv->sites = sites;
		srv->cap_sites = cap;
	}
	sites[srv->n_sites] = (struct site){ .file = file, .line = line };
	return &sites[srv->n_sites++];
}

/* Parses the command line: 0, 1 after --help, or -EINVAL (a usage error, reported). */
static int parse_command_line(int argc, char **argv, struct server *srv)
{
	struct site *s = new_site(srv, NULL, 0);
	int err;

	if (!s)
		return -ENOMEM;
	err = parse_words(argc, argv, srv, s);
	if (err)
		return err;
	if (!srv->sites_file)
		return check_site(s);
	if (s->id.pod || s->id.namespace || s->id.node || s->netns || s->bind_addr || s->tcp.n ||
	    s->udp.n) {
		fprintf(stderr, "ciliate-echo: --sites takes no per-site options (--pod, --namespace, "
				"--node, --netns, --tcp, --udp, --port, --bind): they go in the sites "
				"file\n");
		return -EINVAL;
	}
	srv->n_sites = 0; /* the sites come from the file */
	return 0;
}

/* Reads all of path into a new NUL-terminated buffer, its length in *len. */
static int read_text(const char *path, char **text, size_t *len)
{
	size_t cap = 0, n;
	char *buf = NULL, *nb;
	FILE *f;
	int err;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	*len = 0;
	do {
		if (cap - *len < 4096) {
			cap = cap ? 2 * cap : 65536;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				fclose(f);
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = fread(buf + *len, 1, cap - *len, f);
		*len += n;
	} while (n > 0);
	err = ferror(f) ? -EIO : 0;
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	buf[*len] = '\0';
	*text = buf;
	return 0;
}

/*
 * Parses the words of sites-file line lineno into a new site; argv[0] and argv[argc] are
 * free for getopt's program name and NULL.
 */
static int add_site_line(struct server *srv, unsigned int lineno, int argc, char **argv)
{
	struct site *s = new_site(srv, srv->sites_file, lineno);
	int err;

	if (!s)
		return -ENOMEM;
	argv[0] = "ciliate-echo";
	argv[argc] = NULL;
	err = parse_words(argc, argv, NULL, s);
	return err ? err : check_site(s);
}

/*
 * Loads --sites: one site per line, its per-site options as words (see echo_split_words).
 * Returns 0, -EINVAL for a bad file (reported with FILE:LINE), or another -errno (reported).
 */
static int load_sites(struct server *srv)
{
	const char *file = srv->sites_file;
	char *text, *line, **words = NULL, **nw;
	size_t len = 0, need, cap = 0, n;
	unsigned int lineno = 0;
	int err;

	err = read_text(file, &srv->sites_text, &len);
	if (err) {
		fprintf(stderr, "ciliate-echo: %s: %s\n", file, strerror(-err));
		return err;
	}
	if (strlen(srv->sites_text) != len) {
		fprintf(stderr, "ciliate-echo: %s: not a text file (NUL byte)\n", file);
		return -EINVAL;
	}
	text = srv->sites_text;
	while (!err && (line = strsep(&text, "\n"))) {
		lineno++;
		need = strlen(line) / 2 + 3; /* the line's words, program name and NULL */
		if (need > cap) {
			nw = realloc(words, need * sizeof(*words));
			if (!nw) {
				err = -ENOMEM;
				fprintf(stderr, "ciliate-echo: out of memory\n");
				break;
			}
			words = nw;
			cap = need;
		}
		n = echo_split_words(line, words + 1);
		if (n)
			err = add_site_line(srv, lineno, (int)n + 1, words);
	}
	free(words);
	if (!err && !srv->n_sites) {
		fprintf(stderr, "ciliate-echo: %s: no sites\n", file);
		err = -EINVAL;
	}
	return err;
}

/* Parses the command line and any sites file: -1 to go on, else the exit status. */
int echo_configure(struct server *srv, int argc, char **argv)
{
	int err = parse_command_line(argc, argv, srv);

	if (err == 1)
		return 0; /* --help */
	if (err == -EINVAL)
		usage(stderr);
	if (err)
		return err == -EINVAL ? 2 : 1;
	if (!srv->sites_file) {
		srv->log_id = &srv->sites[0].id;
		return -1;
	}
	err = load_sites(srv);
	if (err)
		return err == -EINVAL ? 2 : 1;
	return -1;
}
