/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-echo: the echo server every simulated pod and external host runs. One process
 * serves all its TCP and UDP ports from one epoll loop; every request gets one JSON answer
 * naming the server's identity and the addresses it saw (see docs/SIMULATOR.md). With
 * --sites one process serves many pods ("sites"), each listening in its own network
 * namespace and answering with its own identity.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "echo_proto.h"

#define MAX_PORTS 64
#define CONN_BUF 8192
#define SNIFF_WAIT_MS 200
#define DRAIN_MS 1000
#define BATCH 64
#define UDP_BUF 65536
#define DEFAULT_IDLE_MS 10000
#define DEFAULT_MAX_CONNS 4096
/* fds besides listeners and connections: epoll, signalfd, home namespace, stdio, pidfile */
#define FD_RESERVE 32
/* starting with fewer fds than this left for connections is an error */
#define MIN_CONNS 64

enum src_kind { SRC_TCP_LISTEN, SRC_UDP, SRC_CONN, SRC_SIGNAL };

/* The ports of one protocol, without repeats. */
struct port_list {
	unsigned int *v;
	unsigned int n;
};

/*
 * One served pod: where it listens and the identity it answers with. Single-site mode has
 * one, from the command line; --sites one per line of the sites file.
 */
struct site {
	struct echo_ident id;
	const char *netns; /* netns file to listen in; NULL: the process's own namespace */
	const char *bind_addr;
	struct port_list tcp, udp;
	const char *file; /* the sites file and line the site comes from; NULL: command line */
	unsigned int line;
};

/* Every epoll registration points at a struct that starts with its kind. */
struct listener {
	enum src_kind kind;
	int fd;
	int family;
	unsigned int port;
	const struct site *site;
	struct listener *next;
};

enum conn_state { CONN_READ, CONN_WRITE, CONN_DRAIN };

struct conn {
	enum src_kind kind;
	int fd;
	enum conn_state state;
	const struct site *site; /* of the listener it was accepted on */
	bool mode_known;
	bool http;
	bool close_after_write;
	struct echo_peer peer;
	uint64_t deadline;
	uint64_t sniff_deadline;
	char *out;
	size_t out_len, out_off;
	size_t in_len;
	struct conn *prev, *next;
	char in[CONN_BUF];
};

struct server {
	const char *sites_file;
	char *sites_text; /* the sites file, split in place: the sites' strings point into it */
	struct site *sites;
	unsigned int n_sites, cap_sites;
	const struct echo_ident *log_id; /* process-wide messages: the single site's identity */
	const char *pidfile;
	bool quiet;
	unsigned int idle_ms;
	unsigned int max_conns;

	int epfd;
	int home_ns; /* the namespace the process started in, to return to after each site */
	enum src_kind sig_kind;
	int sigfd;
	struct listener *listeners;
	unsigned int n_listeners;
	struct conn *conns;
	unsigned int n_conns;
	bool stop;
	uint64_t last_accept_warn;
	char udp_buf[UDP_BUF];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Logs one line tagged with the identity id (NULL: untagged, for the multi-site process). */
static void logmsg(const struct echo_ident *id, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void logmsg(const struct echo_ident *id, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!id) {
		fprintf(stderr, "ciliate-echo: %s\n", line);
		return;
	}
	fprintf(stderr, "ciliate-echo[%s%s%s]: %s\n", id->namespace ? id->namespace : "",
		id->namespace && *id->namespace ? "/" : "", id->pod ? id->pod : "", line);
}

/* Reports a problem with site s, "FILE:LINE: " first when it comes from a sites file. */
static void site_error(const struct site *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void site_error(const struct site *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->file)
		fprintf(stderr, "ciliate-echo: %s:%u: %s\n", s->file, s->line, msg);
	else
		fprintf(stderr, "ciliate-echo: %s\n", msg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate-echo [--pod NAME] [--namespace NS] [--node NODE] [--netns FILE]\n"
		"                    (--tcp PORT | --udp PORT | --port PORT)... [--bind ADDR]\n"
		"                    [--pidfile FILE] [--idle-timeout-ms MS] [--max-conns N] [--quiet]\n"
		"       ciliate-echo --sites FILE [--pidfile FILE] [--idle-timeout-ms MS]\n"
		"                    [--max-conns N] [--quiet]\n"
		"Answers every TCP/UDP request with one JSON object naming the pod, namespace, node\n"
		"and the client address it saw; HTTP requests get an HTTP/1.1 JSON response.\n"
		"  --port PORT          serve PORT on both TCP and UDP (repeatable)\n"
		"  --bind ADDR          listen on ADDR only (default: every IPv4 and IPv6 address)\n"
		"  --netns FILE         listen in the network namespace FILE (e.g. /run/netns/NAME)\n"
		"  --sites FILE         serve many pods from one process: one line per pod holding\n"
		"                       its --netns, --pod, --namespace, --node, --tcp/--udp/--port\n"
		"                       and --bind options ('#' starts a comment line)\n"
		"  --pidfile FILE       write the pid once every port listens; removed on exit\n"
		"  --idle-timeout-ms MS close connections idle this long (default %d)\n"
		"  --quiet              log errors only, not every request\n",
		DEFAULT_IDLE_MS);
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
		site_error(s, "invalid port \"%s\" (1..65535)", arg);
		return -EINVAL;
	}
	for (i = 0; i < l->n; i++)
		if (l->v[i] == port)
			return 0;
	if (l->n == MAX_PORTS) {
		site_error(s, "too many ports (at most %d per protocol)", MAX_PORTS);
		return -E2BIG;
	}
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v) {
		site_error(s, "out of memory");
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
		site_error(s, "option \"%s\" needs a value", argv[optind - 1]);
	else if (optopt >= O_POD)
		site_error(s, "option --%s takes no value", option_name(optopt));
	else if (optopt > 0)
		site_error(s, "unknown option \"-%c\"", optopt);
	else
		site_error(s, "unknown or ambiguous option \"%s\"", argv[optind - 1]);
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
			site_error(s, "--%s is not a per-site option", option_name(c));
			err = -EINVAL;
		}
	}
	if (err)
		return err > 0 ? err : -EINVAL;
	if (optind < argc) {
		site_error(s, "unexpected argument \"%s\"", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int check_site(const struct site *s)
{
	if (s->tcp.n || s->udp.n)
		return 0;
	site_error(s, "give at least one --tcp, --udp or --port");
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

static int epoll_add(struct server *srv, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int epoll_mod(struct server *srv, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(srv->epfd, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
}

/*
 * Opens one listening socket of site s, in the current network namespace, which it keeps;
 * -EAFNOSUPPORT/-EADDRNOTAVAIL mean the family is unavailable.
 */
static int open_listener(struct server *srv, const struct site *s, enum src_kind kind,
			 int family, const void *addr, unsigned int port)
{
	struct sockaddr_storage ss = { 0 };
	struct listener *l;
	socklen_t sl;
	int fd, one = 1, err = 0;

	fd = socket(family, (kind == SRC_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
				    SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		sl = sizeof(*sin);
		if (kind == SRC_UDP && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)))
			err = -errno;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		sl = sizeof(*sin6);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
			err = -errno;
		if (!err && kind == SRC_UDP &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)))
			err = -errno;
	}
	if (!err && bind(fd, (struct sockaddr *)&ss, sl))
		err = -errno;
	if (!err && kind == SRC_TCP_LISTEN && listen(fd, 1024))
		err = -errno;
	if (err)
		goto out;
	l = malloc(sizeof(*l));
	if (!l) {
		err = -ENOMEM;
		goto out;
	}
	*l = (struct listener){ .kind = kind, .fd = fd, .family = family, .port = port,
				.site = s, .next = srv->listeners };
	err = epoll_add(srv, fd, EPOLLIN, l);
	if (err) {
		free(l);
		goto out;
	}
	srv->listeners = l;
	srv->n_listeners++;
	return 0;
out:
	close(fd);
	return err;
}

/* Opens site s's listeners in the current network namespace. */
static int open_listeners(struct server *srv, const struct site *s)
{
	unsigned char addr4[sizeof(struct in_addr)] = { 0 };
	unsigned char addr6[sizeof(struct in6_addr)] = { 0 };
	bool want4 = true, want6 = true;
	unsigned int i, p;
	int err = 0;

	if (s->bind_addr) {
		if (inet_pton(AF_INET, s->bind_addr, addr4) == 1) {
			want6 = false;
		} else if (inet_pton(AF_INET6, s->bind_addr, addr6) == 1) {
			want4 = false;
		} else {
			site_error(s, "--bind: \"%s\" is not an IP address", s->bind_addr);
			return -EINVAL;
		}
	}
	for (i = 0; i < 2; i++) {
		enum src_kind kind = i ? SRC_UDP : SRC_TCP_LISTEN;
		const struct port_list *ports = i ? &s->udp : &s->tcp;
		const char *proto = i ? "udp" : "tcp";

		for (p = 0; p < ports->n; p++) {
			if (want4) {
				err = open_listener(srv, s, kind, AF_INET, addr4, ports->v[p]);
				if (err) {
					site_error(s, "cannot listen on %s %s:%u: %s", proto,
						   s->bind_addr ? s->bind_addr : "0.0.0.0",
						   ports->v[p], strerror(-err));
					return err;
				}
			}
			if (want6) {
				err = open_listener(srv, s, kind, AF_INET6, addr6, ports->v[p]);
				if (err && !s->bind_addr &&
				    (err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL)) {
					err = 0; /* no IPv6 in this namespace: IPv4 only */
				} else if (err) {
					site_error(s, "cannot listen on %s [%s]:%u: %s", proto,
						   s->bind_addr ? s->bind_addr : "::", ports->v[p],
						   strerror(-err));
					return err;
				}
			}
		}
	}
	return 0;
}

/*
 * Opens site s's listeners inside its network namespace (sockets stay in the namespace they
 * were created in), then returns to the home namespace.
 */
static int open_site(struct server *srv, const struct site *s)
{
	int fd, err;

	if (!s->netns)
		return open_listeners(srv, s);
	fd = open(s->netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		site_error(s, "netns %s: %s", s->netns, strerror(-err));
		return err;
	}
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	if (err) {
		site_error(s, "netns %s: cannot enter: %s", s->netns, strerror(-err));
		return err;
	}
	err = open_listeners(srv, s);
	if (setns(srv->home_ns, CLONE_NEWNET)) {
		/* the next site without --netns would listen in this one */
		err = -errno;
		site_error(s, "cannot return to the original network namespace: %s",
			   strerror(-err));
	}
	return err;
}

static int open_sites(struct server *srv)
{
	unsigned int i;
	int err;

	for (i = 0; i < srv->n_sites; i++) {
		if (srv->sites[i].netns && srv->home_ns < 0) {
			/* opened before entering any site's namespace: the way back */
			srv->home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
			if (srv->home_ns < 0) {
				err = -errno;
				logmsg(srv->log_id, "/proc/self/ns/net: %s", strerror(-err));
				return err;
			}
		}
		err = open_site(srv, &srv->sites[i]);
		if (err)
			return err;
	}
	return 0;
}

/* The most listening sockets the sites need: v4 and v6 for each port unless --bind. */
static unsigned long listeners_needed(const struct server *srv)
{
	unsigned long n = 0;
	unsigned int i;

	for (i = 0; i < srv->n_sites; i++) {
		const struct site *s = &srv->sites[i];

		n += (unsigned long)(s->tcp.n + s->udp.n) * (s->bind_addr ? 1 : 2);
	}
	return n;
}

/*
 * Makes room under RLIMIT_NOFILE for every listener, FD_RESERVE and at least MIN_CONNS
 * connections, raising the soft limit to the hard one when that is needed (thousands of
 * sites); --max-conns shrinks to the fds left.
 */
static int fit_fd_limit(struct server *srv)
{
	unsigned long listeners = listeners_needed(srv);
	rlim_t fixed = listeners + FD_RESERVE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	if (rl.rlim_cur < fixed + MIN_CONNS && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) && getrlimit(RLIMIT_NOFILE, &rl))
			return -errno;
	}
	if (rl.rlim_cur < fixed + MIN_CONNS) {
		logmsg(srv->log_id,
		       "too few file descriptors: %lu listening sockets and %d connections need "
		       "%llu, RLIMIT_NOFILE is %llu (hard limit %llu)",
		       listeners, MIN_CONNS, (unsigned long long)(fixed + MIN_CONNS),
		       (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	if (rl.rlim_cur - fixed < srv->max_conns)
		srv->max_conns = (unsigned int)(rl.rlim_cur - fixed);
	return 0;
}

static int write_pidfile(const char *path)
{
	char tmp[4096];
	FILE *f;
	int err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f))
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static void conn_close(struct server *srv, struct conn *c)
{
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	free(c->out);
	free(c);
}

/* Sends pending output; 0 when done or waiting for the socket, -errno to close. */
static int conn_flush(struct server *srv, struct conn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return epoll_mod(srv, c->fd, EPOLLOUT, c);
		if (n < 0)
			return -errno;
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->close_after_write) {
		/* let the client read everything before the close: no RST on unread input */
		shutdown(c->fd, SHUT_WR);
		c->state = CONN_DRAIN;
		c->deadline = now_ms() + DRAIN_MS;
	} else {
		c->state = CONN_READ;
		c->deadline = now_ms() + srv->idle_ms;
	}
	return epoll_mod(srv, c->fd, EPOLLIN | EPOLLRDHUP, c);
}

static int conn_send(struct server *srv, struct conn *c, char *buf, size_t len, bool last)
{
	c->out = buf;
	c->out_len = len;
	c->out_off = 0;
	c->close_after_write = c->close_after_write || last;
	c->state = CONN_WRITE;
	return conn_flush(srv, c);
}

static int conn_reply_echo(struct server *srv, struct conn *c)
{
	json_t *reply;
	char *text, *line;
	size_t len;

	reply = echo_reply_json(&c->site->id, &c->peer, NULL, c->in, c->in_len);
	text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	line = realloc(text, len + 2);
	if (!line) {
		free(text);
		return -ENOMEM;
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	if (!srv->quiet)
		logmsg(&c->site->id, "tcp %s:%u -> %s:%u echo %zu bytes", c->peer.client_ip,
		       c->peer.client_port, c->peer.server_ip, c->peer.server_port, c->in_len);
	c->in_len = 0;
	return conn_send(srv, c, line, len + 1, false);
}

static int conn_reply_http(struct server *srv, struct conn *c, int status,
			   const struct echo_http_req *req)
{
	bool head = req && req->method.len == 4 && !memcmp(req->method.p, "HEAD", 4);
	json_t *reply;
	char *body, *resp;
	size_t len;

	if (status == 200) {
		reply = echo_reply_json(&c->site->id, &c->peer, req, NULL, 0);
	} else {
		reply = json_pack("{s:i,s:s,s:s,s:s}", "status", status, "error",
				  status == 431 ? "request head too large" : "malformed request",
				  "pod", c->site->id.pod ? c->site->id.pod : "", "node",
				  c->site->id.node ? c->site->id.node : "");
	}
	body = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	if (!body)
		return -ENOMEM;
	len = strlen(body);
	body[len] = '\n'; /* replaces the NUL: the body is sent with its length */
	resp = echo_http_response(status, body, len + 1, head, &len);
	free(body);
	if (!resp)
		return -ENOMEM;
	if (!srv->quiet)
		logmsg(&c->site->id, "tcp %s:%u -> %s:%u http %.*s %.*s -> %d", c->peer.client_ip,
		       c->peer.client_port, c->peer.server_ip, c->peer.server_port,
		       req ? (int)req->method.len : 1, req ? req->method.p : "-",
		       req ? (int)(req->target.len > 200 ? 200 : req->target.len) : 1,
		       req ? req->target.p : "-", status);
	return conn_send(srv, c, resp, len, true);
}

/* Acts on the bytes read so far; timed_out says the sniff wait is over. */
static int conn_process(struct server *srv, struct conn *c, bool timed_out)
{
	struct echo_http_req req;
	int r;

	if (!c->mode_known) {
		r = echo_http_sniff(c->in, c->in_len);
		if (r == -EAGAIN && !timed_out && c->in_len < CONN_BUF) {
			if (!c->sniff_deadline)
				c->sniff_deadline = now_ms() + SNIFF_WAIT_MS;
			return 0;
		}
		c->mode_known = true;
		c->http = r == 1;
		c->sniff_deadline = 0;
	}
	if (!c->http)
		return c->in_len ? conn_reply_echo(srv, c) : 0;
	r = echo_http_parse(c->in, c->in_len, &req);
	if (r == -EAGAIN && c->in_len < CONN_BUF)
		return 0;
	if (r == -EAGAIN || r == -E2BIG)
		return conn_reply_http(srv, c, 431, NULL);
	if (r < 0)
		return conn_reply_http(srv, c, 400, NULL);
	return conn_reply_http(srv, c, 200, &req);
}

static int conn_read(struct server *srv, struct conn *c)
{
	char scratch[4096];
	ssize_t n;

	if (c->state == CONN_DRAIN) {
		for (;;) {
			n = recv(c->fd, scratch, sizeof(scratch), 0);
			if (n > 0)
				continue;
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return 0;
			return -ECONNRESET; /* EOF or error: done */
		}
	}
	n = recv(c->fd, c->in + c->in_len, CONN_BUF - c->in_len, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0) {
		/* EOF: answer a pending short request, then close */
		if (c->in_len && !c->mode_known) {
			int err;

			c->close_after_write = true;
			err = conn_process(srv, c, true);
			return err ? err : (c->state == CONN_READ ? -ECONNRESET : 0);
		}
		return -ECONNRESET;
	}
	c->in_len += (size_t)n;
	c->deadline = now_ms() + srv->idle_ms;
	return conn_process(srv, c, false);
}

static void accept_conns(struct server *srv, struct listener *l)
{
	struct sockaddr_storage peer, local;
	socklen_t pl, ll;
	struct conn *c;
	int fd, i, err;

	for (i = 0; i < BATCH; i++) {
		pl = sizeof(peer);
		fd = accept4(l->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && now_ms() - srv->last_accept_warn > 1000) {
				logmsg(&l->site->id, "accept on port %u: %s", l->port, strerror(errno));
				srv->last_accept_warn = now_ms();
			}
			return;
		}
		if (srv->n_conns >= srv->max_conns) {
			if (now_ms() - srv->last_accept_warn > 1000) {
				logmsg(&l->site->id, "too many connections (%u): refusing", srv->n_conns);
				srv->last_accept_warn = now_ms();
			}
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->kind = SRC_CONN;
		c->fd = fd;
		c->site = l->site;
		c->state = CONN_READ;
		c->peer.protocol = "TCP";
		c->deadline = now_ms() + srv->idle_ms;
		ll = sizeof(local);
		err = echo_addr_format((struct sockaddr *)&peer, c->peer.client_ip,
				       sizeof(c->peer.client_ip), &c->peer.client_port);
		if (!err && getsockname(fd, (struct sockaddr *)&local, &ll))
			err = -errno;
		if (!err)
			err = echo_addr_format((struct sockaddr *)&local, c->peer.server_ip,
					       sizeof(c->peer.server_ip), &c->peer.server_port);
		if (!err)
			err = epoll_add(srv, fd, EPOLLIN | EPOLLRDHUP, c);
		if (err) {
			logmsg(&l->site->id, "dropping connection on port %u: %s", l->port, strerror(-err));
			close(fd);
			free(c);
			continue;
		}
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->n_conns++;
	}
}

/* The datagram's destination address (our side) from its IP_PKTINFO / IPV6_PKTINFO. */
static bool udp_dest(struct msghdr *msg, struct sockaddr_storage *dst, int *ifindex)
{
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct sockaddr_in *sin = (struct sockaddr_in *)dst;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			sin->sin_family = AF_INET;
			sin->sin_addr = pi.ipi_addr;
			*ifindex = pi.ipi_ifindex;
			return true;
		}
		if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)dst;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			sin6->sin6_family = AF_INET6;
			sin6->sin6_addr = pi.ipi6_addr;
			*ifindex = (int)pi.ipi6_ifindex;
			return true;
		}
	}
	return false;
}

/* Sends the reply from the address the request was sent to. */
static int udp_send(struct listener *l, const char *buf, size_t len,
		    const struct sockaddr_storage *to, socklen_t tolen,
		    const struct sockaddr_storage *from, bool have_from, int ifindex)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov,
			      .msg_iovlen = 1 };
	struct cmsghdr *cm;

	memset(&ctl, 0, sizeof(ctl));
	if (have_from) {
		msg.msg_control = ctl.buf;
		if (l->family == AF_INET) {
			struct in_pktinfo pi = { 0 };

			pi.ipi_spec_dst = ((const struct sockaddr_in *)from)->sin_addr;
			msg.msg_controllen = CMSG_SPACE(sizeof(pi));
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		} else {
			struct in6_pktinfo pi = { 0 };

			pi.ipi6_addr = ((const struct sockaddr_in6 *)from)->sin6_addr;
			pi.ipi6_ifindex = (unsigned int)ifindex;
			msg.msg_controllen = CMSG_SPACE(sizeof(pi));
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = IPPROTO_IPV6;
			cm->cmsg_type = IPV6_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		}
	}
	if (sendmsg(l->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
		return 0;
	if (have_from && errno == EINVAL) {
		/* e.g. a broadcast destination: let routing pick the source */
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		if (sendmsg(l->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return 0;
	}
	return -errno;
}

static void serve_udp(struct server *srv, struct listener *l)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct sockaddr_storage src, dst;
	struct echo_peer peer;
	struct iovec iov;
	struct msghdr msg;
	unsigned int dummy;
	bool have_dst;
	ssize_t n;
	json_t *reply;
	char *text;
	int i, ifindex, err;

	for (i = 0; i < BATCH; i++) {
		iov = (struct iovec){ .iov_base = srv->udp_buf, .iov_len = sizeof(srv->udp_buf) };
		msg = (struct msghdr){ .msg_name = &src, .msg_namelen = sizeof(src),
				       .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				       .msg_controllen = sizeof(ctl.buf) };
		n = recvmsg(l->fd, &msg, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				logmsg(&l->site->id, "udp port %u: recv: %s", l->port, strerror(errno));
			return;
		}
		memset(&peer, 0, sizeof(peer));
		memset(&dst, 0, sizeof(dst));
		peer.protocol = "UDP";
		peer.server_port = l->port;
		ifindex = 0;
		have_dst = udp_dest(&msg, &dst, &ifindex);
		if (echo_addr_format((struct sockaddr *)&src, peer.client_ip,
				     sizeof(peer.client_ip), &peer.client_port))
			continue;
		if (have_dst)
			echo_addr_format((struct sockaddr *)&dst, peer.server_ip,
					 sizeof(peer.server_ip), &dummy);
		else
			snprintf(peer.server_ip, sizeof(peer.server_ip), "%s",
				 l->site->bind_addr ? l->site->bind_addr : "");
		reply = echo_reply_json(&l->site->id, &peer, NULL, srv->udp_buf, (size_t)n);
		text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
		json_decref(reply);
		if (!text) {
			logmsg(&l->site->id, "udp port %u: out of memory", l->port);
			return;
		}
		err = udp_send(l, text, strlen(text), &src, msg.msg_namelen, &dst, have_dst,
			       ifindex);
		free(text);
		if (err)
			logmsg(&l->site->id, "udp %s:%u -> %s:%u: reply: %s", peer.client_ip,
			       peer.client_port, peer.server_ip, peer.server_port, strerror(-err));
		else if (!srv->quiet)
			logmsg(&l->site->id, "udp %s:%u -> %s:%u echo %zd bytes", peer.client_ip,
			       peer.client_port, peer.server_ip, peer.server_port, n);
	}
}

/* Closes timed-out connections, answers stalled sniffs; returns ms until the next deadline. */
static int sweep(struct server *srv)
{
	uint64_t now = now_ms(), next = now + 1000;
	struct conn *c, *nx;

	for (c = srv->conns; c; c = nx) {
		nx = c->next;
		if (c->sniff_deadline && now >= c->sniff_deadline && c->state == CONN_READ) {
			if (conn_process(srv, c, true)) {
				conn_close(srv, c);
				continue;
			}
		}
		if (now >= c->deadline) {
			if (!srv->quiet && c->state != CONN_DRAIN)
				logmsg(&c->site->id, "tcp %s:%u: idle timeout, closing", c->peer.client_ip,
				       c->peer.client_port);
			conn_close(srv, c);
			continue;
		}
		if (c->deadline < next)
			next = c->deadline;
		if (c->sniff_deadline && c->sniff_deadline < next)
			next = c->sniff_deadline;
	}
	return next > now ? (int)(next - now) : 0;
}

static int setup_signals(struct server *srv)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->sigfd < 0)
		return -errno;
	srv->sig_kind = SRC_SIGNAL;
	return epoll_add(srv, srv->sigfd, EPOLLIN, &srv->sig_kind);
}

static void dispatch(struct server *srv, struct epoll_event *ev)
{
	enum src_kind kind = *(enum src_kind *)ev->data.ptr;
	struct signalfd_siginfo si;
	struct conn *c;
	int err = 0;

	switch (kind) {
	case SRC_SIGNAL:
		if (read(srv->sigfd, &si, sizeof(si)) == sizeof(si)) {
			logmsg(srv->log_id, "signal %u: exiting", si.ssi_signo);
			srv->stop = true;
		}
		break;
	case SRC_TCP_LISTEN:
		accept_conns(srv, ev->data.ptr);
		break;
	case SRC_UDP:
		serve_udp(srv, ev->data.ptr);
		break;
	case SRC_CONN:
		c = ev->data.ptr;
		if (c->state == CONN_WRITE && (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			err = conn_flush(srv, c);
		else if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			err = conn_read(srv, c);
		if (err)
			conn_close(srv, c);
		break;
	}
}

static int run(struct server *srv)
{
	struct epoll_event evs[64];
	int n, i, timeout;

	while (!srv->stop) {
		timeout = sweep(srv);
		n = epoll_wait(srv->epfd, evs, 64, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		/* only a connection's own event closes it: no stale pointers in one batch */
		for (i = 0; i < n; i++)
			dispatch(srv, &evs[i]);
	}
	return 0;
}

static void cleanup(struct server *srv)
{
	struct listener *l;
	unsigned int i;

	while (srv->conns)
		conn_close(srv, srv->conns);
	while ((l = srv->listeners)) {
		srv->listeners = l->next;
		close(l->fd);
		free(l);
	}
	for (i = 0; i < srv->n_sites; i++) {
		free(srv->sites[i].tcp.v);
		free(srv->sites[i].udp.v);
	}
	free(srv->sites);
	free(srv->sites_text);
	if (srv->home_ns >= 0)
		close(srv->home_ns);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	if (srv->epfd >= 0)
		close(srv->epfd);
}

/* Parses the command line and any sites file: -1 to go on, else the exit status. */
static int configure(struct server *srv, int argc, char **argv)
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

/* Opens every site's listeners, then writes the pidfile; 0 or -errno (reported). */
static int start(struct server *srv)
{
	int err;

	err = fit_fd_limit(srv);
	if (err)
		return err;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		err = -errno;
		logmsg(srv->log_id, "epoll: %s", strerror(-err));
		return err;
	}
	err = setup_signals(srv);
	if (err) {
		logmsg(srv->log_id, "signals: %s", strerror(-err));
		return err;
	}
	err = open_sites(srv);
	if (err)
		return err;
	if (srv->pidfile) {
		err = write_pidfile(srv->pidfile);
		if (err) {
			logmsg(srv->log_id, "pidfile %s: %s", srv->pidfile, strerror(-err));
			return err;
		}
	}
	return 0;
}

static void log_serving(const struct server *srv)
{
	const struct site *s = &srv->sites[0];

	if (srv->sites_file)
		logmsg(NULL, "%s: serving %u site(s) on %u socket(s)", srv->sites_file,
		       srv->n_sites, srv->n_listeners);
	else
		logmsg(&s->id, "node %s: serving %u tcp and %u udp port(s)%s%s",
		       s->id.node ? s->id.node : "-", s->tcp.n, s->udp.n,
		       s->bind_addr ? " on " : "", s->bind_addr ? s->bind_addr : "");
}

int main(int argc, char **argv)
{
	struct server *srv;
	int err, rc;

	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		fprintf(stderr, "ciliate-echo: out of memory\n");
		return 1;
	}
	srv->epfd = srv->sigfd = srv->home_ns = -1;
	srv->idle_ms = DEFAULT_IDLE_MS;
	srv->max_conns = DEFAULT_MAX_CONNS;
	rc = configure(srv, argc, argv);
	if (rc >= 0)
		goto out;
	rc = 1;
	if (start(srv))
		goto out;
	log_serving(srv);
	err = run(srv);
	if (err)
		logmsg(srv->log_id, "event loop: %s", strerror(-err));
	rc = err ? 1 : 0;
	if (srv->pidfile)
		unlink(srv->pidfile);
out:
	cleanup(srv);
	free(srv);
	return rc;
}
