/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-operator: options and the event loop (docs/OPERATOR.md). One thread: a poll on a
 * signalfd and the leader key's watch, with timers for the lease keepalive, the standby's
 * campaign retry and the leader's chore pass.
 */
#include "operator.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

void op_log(const struct op *op, const char *fmt, ...)
{
	char msg[2048], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld ciliate-operator[%s]: %s\n", ts, now.tv_nsec / 1000000,
		op ? op->o.id : "-", msg);
}

int64_t op_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t op_unix_s(void)
{
	return (int64_t)time(NULL);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate-operator [--store DIR|URI] [--id NAME] [--lease-ttl S]\n"
		"                        [--identity-gc-grace S] [--node-gc-timeout S]\n"
		"                        [--interval S] [--pidfile FILE]\n"
		"                        [--store-ca FILE] [--store-cert FILE] [--store-key FILE]\n"
		"\n"
		"The cluster's operator (docs/OPERATOR.md): run one or more per store; one is\n"
		"elected leader through a store lease on %s, the others stand by and\n"
		"take over when its lease expires (at once when it exits on SIGTERM/SIGINT).\n"
		"Each --interval the leader garbage-collects identities no node uses, releases the\n"
		"records of nodes without a heartbeat and publishes per-policy status.\n"
		"\n"
		"  --store DIR|URI         the store (default $CILIATE_STORE, then %s)\n"
		"  --store-ca/--store-cert/--store-key FILE\n"
		"                          TLS for an etcd store (as $CILIATE_STORE_CA/CERT/KEY)\n"
		"  --id NAME               this instance's name (default HOSTNAME-PID)\n"
		"  --lease-ttl S           the leader lease's TTL (default 15; kept alive every\n"
		"                          TTL/3); a standby takes over within it\n"
		"  --identity-gc-grace S   release an identity no node has used for S seconds\n"
		"                          (default 60; 0: never)\n"
		"  --node-gc-timeout S     release a node without an agent heartbeat for S seconds:\n"
		"                          registry, pod CIDR claim, IPAM and status (default 300;\n"
		"                          0: never)\n"
		"  --interval S            seconds between chore passes (default 5)\n"
		"  --pidfile FILE          write the pid to FILE (removed on exit)\n"
		"\n"
		"Logs one line per event on stderr. Exits 0 on SIGTERM/SIGINT after revoking its\n"
		"lease, 2 on a usage error, 1 when the store cannot be opened.\n",
		OP_LEADER_KEY, STORE_DEFAULT_URI);
}

static int num_opt(const char *name, const char *arg, int min, int max, int *out)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (!*arg || *end || v < min || v > max) {
		fprintf(stderr, "ciliate-operator: --%s: want %d..%d seconds, got \"%s\"\n", name, min,
			max, arg);
		return 2;
	}
	*out = (int)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct op_opts *o)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, 's'},
		{"id", required_argument, NULL, 'i'},
		{"lease-ttl", required_argument, NULL, 'L'},
		{"identity-gc-grace", required_argument, NULL, 'G'},
		{"node-gc-timeout", required_argument, NULL, 'N'},
		{"interval", required_argument, NULL, 'I'},
		{"pidfile", required_argument, NULL, 'p'},
		{"store-ca", required_argument, NULL, 'a'},
		{"store-cert", required_argument, NULL, 'c'},
		{"store-key", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char host[64] = "operator";
	int c, rc = 0;

	o->store_uri = getenv("CILIATE_STORE");
	o->lease_ttl_s = 15;
	o->identity_gc_grace_s = 60;
	o->node_gc_timeout_s = 300;
	o->interval_s = 5;
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(o->id, sizeof(o->id), "%s-%ld", host, (long)getpid());
	while (!rc && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->store_uri = optarg;
			break;
		case 'i':
			if (!*optarg || strlen(optarg) >= sizeof(o->id)) {
				fprintf(stderr, "ciliate-operator: --id: 1..%zu characters\n",
					sizeof(o->id) - 1);
				return 2;
			}
			snprintf(o->id, sizeof(o->id), "%s", optarg);
			break;
		case 'L':
			rc = num_opt("lease-ttl", optarg, 2, 3600, &o->lease_ttl_s);
			break;
		case 'G':
			rc = num_opt("identity-gc-grace", optarg, 0, 86400 * 30,
				     &o->identity_gc_grace_s);
			break;
		case 'N':
			rc = num_opt("node-gc-timeout", optarg, 0, 86400 * 30, &o->node_gc_timeout_s);
			break;
		case 'I':
			rc = num_opt("interval", optarg, 1, 3600, &o->interval_s);
			break;
		case 'p':
			o->pidfile = optarg;
			break;
		case 'a':
		case 'c':
		case 'k':
			setenv(c == 'a' ? "CILIATE_STORE_CA"
			       : c == 'c' ? "CILIATE_STORE_CERT"
					  : "CILIATE_STORE_KEY",
			       optarg, 1);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (rc)
		return rc;
	if (optind < argc) {
		fprintf(stderr, "ciliate-operator: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!o->store_uri || !*o->store_uri)
		o->store_uri = STORE_DEFAULT_URI;
	return 0;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f) ? -errno : 0;
}

/* Opens the store, retrying while it cannot be reached (an etcd that is not up yet); stops
 * on a signal or an error retrying cannot fix. */
static int open_store(struct op *op, int sfd)
{
	struct diag d = {{0}};
	struct signalfd_siginfo si;
	struct pollfd p = {.fd = sfd, .events = POLLIN};
	bool logged = false;
	int err;

	for (;;) {
		err = store_open(op->o.store_uri, &op->st, &d);
		if (!err)
			return 0;
		if (err == -EINVAL || err == -ENOTSUP || err == -EACCES) {
			op_log(op, "store %s: %s", op->o.store_uri, d.msg);
			return err;
		}
		if (!logged)
			op_log(op, "store %s: %s (retrying every 2 s)", op->o.store_uri, d.msg);
		logged = true;
		if (poll(&p, 1, 2000) > 0 && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			return -EINTR;
	}
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int main(int argc, char **argv)
{
	static struct op op;
	struct signalfd_siginfo si;
	struct pollfd p[2];
	sigset_t set;
	int rc, sfd, wfd;

	rc = parse_args(argc, argv, &op.o);
	if (rc)
		return rc;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		op_log(&op, "signalfd: %s", strerror(errno));
		return 1;
	}
	if (op.o.pidfile && (rc = write_pidfile(op.o.pidfile))) {
		op_log(&op, "--pidfile %s: %s", op.o.pidfile, strerror(-rc));
		return 1;
	}
	op_log(&op,
	       "starting: store %s, lease TTL %d s, identity GC grace %d s%s, node GC timeout "
	       "%d s%s, interval %d s",
	       op.o.store_uri, op.o.lease_ttl_s, op.o.identity_gc_grace_s,
	       op.o.identity_gc_grace_s ? "" : " (never)", op.o.node_gc_timeout_s,
	       op.o.node_gc_timeout_s ? "" : " (never)", op.o.interval_s);
	rc = open_store(&op, sfd);
	if (rc) {
		if (op.o.pidfile)
			unlink(op.o.pidfile);
		return rc == -EINTR ? 0 : 1;
	}
	op_campaign(&op);
	for (;;) {
		int64_t now = op_now_ms(), due, timeout;

		if (op.leader && now >= op.next_pass_ms) {
			op_pass(&op);
			op.next_pass_ms = op_now_ms() + (int64_t)op.o.interval_s * 1000;
		}
		now = op_now_ms();
		if (now >= op.next_keepalive_ms)
			op_keepalive(&op);
		if ((!op.leader || !op.w) && now >= op.next_campaign_ms)
			op_campaign(&op); /* a standby's retry; a leader's watch reopened */
		due = op.next_keepalive_ms;
		if (!op.leader || !op.w)
			due = min64(due, op.next_campaign_ms);
		if (op.leader)
			due = min64(due, op.next_pass_ms);
		timeout = due - op_now_ms();
		timeout = timeout < 0 ? 0 : timeout > 1000 ? 1000 : timeout;
		p[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		wfd = op.w ? store_watch_fd(op.w) : -1;
		p[1] = (struct pollfd){.fd = wfd, .events = POLLIN};
		if (poll(p, wfd >= 0 ? 2 : 1, (int)timeout) < 0 && errno != EINTR) {
			op_log(&op, "poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGHUP)
				continue;
			op_log(&op, "%s: exiting", strsignal((int)si.ssi_signo));
			break;
		}
		if (wfd >= 0 && p[1].revents)
			op_watch_events(&op);
	}
	op_resign(&op);
	store_watch_close(op.w);
	store_close(op.st);
	free(op.idc);
	free(op.ndc);
	if (op.o.pidfile)
		unlink(op.o.pidfile);
	return 0;
}
