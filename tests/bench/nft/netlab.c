/* SPDX-License-Identifier: Apache-2.0 */
#include "netlab.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETNS_RUN_DIR "/run/netns"

volatile sig_atomic_t lab_stop;

static void on_signal(int sig)
{
	(void)sig;
	lab_stop = 1;
}

void lab_catch_signals(unsigned int seconds)
{
	struct sigaction sa = {.sa_handler = on_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	if (seconds)
		alarm(seconds);
}

static int vsh(int quiet, const char *fmt, va_list ap)
{
	char cmd[1024], out[2048];
	size_t n = 0;
	FILE *p;
	int st;

	if (vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap) >= (int)sizeof(cmd) - 8) {
		fprintf(stderr, "netlab: command too long: %.80s...\n", cmd);
		return -1;
	}
	strcat(cmd, " 2>&1");
	p = popen(cmd, "r");
	if (!p) {
		fprintf(stderr, "netlab: cannot run '%s': %s\n", cmd, strerror(errno));
		return -1;
	}
	while (n < sizeof(out) - 1) {
		size_t r = fread(out + n, 1, sizeof(out) - 1 - n, p);

		if (!r)
			break;
		n += r;
	}
	out[n] = '\0';
	/* drain whatever did not fit so the command never blocks on a full pipe */
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	st = st == -1 ? -1 : (WIFEXITED(st) ? WEXITSTATUS(st) : 128);
	if (st && !quiet)
		fprintf(stderr, "netlab: '%s' failed (status %d): %s", cmd, st, out);
	return st;
}

int lab_sh(const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsh(0, fmt, ap);
	va_end(ap);
	return r;
}

int lab_sh_quiet(const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsh(1, fmt, ap);
	va_end(ap);
	return r;
}

/* Namespaces "<prefix><pid>-*" whose pid no longer runs are leftovers of a killed run. */
static void reap_stale(const char *prefix)
{
	size_t plen = strlen(prefix);
	DIR *dir = opendir(NETNS_RUN_DIR);
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		char *end;
		long pid;

		if (strncmp(e->d_name, prefix, plen))
			continue;
		pid = strtol(e->d_name + plen, &end, 10);
		if (pid <= 0 || *end != '-' || pid == getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		fprintf(stderr, "netlab: removing stale namespace %s\n", e->d_name);
		lab_sh_quiet("ip netns del '%s'", e->d_name);
	}
	closedir(dir);
}

int lab_init(struct netlab *l, const char *prefix)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->tag, sizeof(l->tag), "%s%d", prefix, (int)getpid());
	l->home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (l->home_fd < 0) {
		fprintf(stderr, "netlab: opening /proc/self/ns/net: %s\n", strerror(errno));
		return -1;
	}
	reap_stale(prefix);
	return 0;
}

int lab_add_ns(struct netlab *l, const char *suffix, const char **name)
{
	char *ns;

	if (l->nns >= LAB_MAX_NS) {
		fprintf(stderr, "netlab: more than %d namespaces\n", LAB_MAX_NS);
		return -1;
	}
	char tag[sizeof(l->tag)];

	memcpy(tag, l->tag, sizeof(tag)); /* a copy: snprintf must not read from *l it writes */
	ns = l->ns[l->nns];
	snprintf(ns, sizeof(l->ns[0]), "%.31s-%.15s", tag, suffix);
	if (lab_sh("ip netns add '%s'", ns))
		return -1;
	l->nns++;
	if (lab_sh("ip -n '%s' link set lo up", ns) ||
	    lab_sh("ip netns exec '%s' sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
		   "net.ipv6.conf.default.disable_ipv6=1",
		   ns))
		return -1;
	*name = ns;
	return 0;
}

int lab_enter(const char *ns)
{
	char path[128];
	int fd, r;

	snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "netlab: opening %s: %s\n", path, strerror(errno));
		return -1;
	}
	r = setns(fd, CLONE_NEWNET);
	if (r)
		fprintf(stderr, "netlab: entering %s: %s\n", ns, strerror(errno));
	close(fd);
	return r ? -1 : 0;
}

int lab_leave(const struct netlab *l)
{
	if (setns(l->home_fd, CLONE_NEWNET)) {
		fprintf(stderr, "netlab: returning home: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int lab_if_info(const struct netlab *l, const char *ns, const char *dev, int *ifindex,
		unsigned char mac[6])
{
	struct ifreq ifr = {0};
	int fd, err = -1;

	if (lab_enter(ns))
		return -1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (fd >= 0 && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) {
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
		*ifindex = (int)if_nametoindex(dev);
		err = *ifindex > 0 ? 0 : -1;
	}
	if (err)
		fprintf(stderr, "netlab: no interface %s in %s\n", dev, ns);
	if (fd >= 0)
		close(fd);
	if (lab_leave(l))
		return -1;
	return err;
}

void lab_destroy(struct netlab *l)
{
	if (l->home_fd >= 0 && l->nns)
		lab_leave(l);
	for (int i = l->nns - 1; i >= 0; i--)
		lab_sh_quiet("ip netns del '%s'", l->ns[i]);
	l->nns = 0;
	if (l->home_fd > 0)
		close(l->home_fd);
	l->home_fd = -1;
}
