/* SPDX-License-Identifier: Apache-2.0 */
/* Network-namespace plumbing for the simulator (see netns.h). */
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUT_MAX 2048

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "ip -n x link add ..." with arguments holding spaces quoted. */
static void format_cmdline(char *const argv[], char *buf, size_t size)
{
	size_t off = 0;
	int i, w;

	buf[0] = '\0';
	for (i = 0; argv[i] && off < size; i++) {
		bool q = strpbrk(argv[i], " \t\n") || !argv[i][0];

		w = snprintf(buf + off, size - off, "%s%s%s%s", i ? " " : "", q ? "'" : "",
			     argv[i], q ? "'" : "");
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

/* For "Command failed -:N" from a batch run, appends script line N to msg. */
static void batch_failed_line(const char *out, const char *script, char *buf, size_t size)
{
	const char *p = strstr(out, "Command failed -:"), *line = script, *end;
	int n, i;

	buf[0] = '\0';
	if (!p || !script || sscanf(p, "Command failed -:%d", &n) != 1 || n < 1)
		return;
	for (i = 1; i < n && line; i++) {
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!line)
		return;
	end = strchr(line, '\n');
	snprintf(buf, size, " [batch line %d: %.*s]", n, end ? (int)(end - line) : (int)strlen(line),
		 line);
}

static void child_exec(int in_fd, int out_fd, const char *netns, char *const envp[],
		       char *const argv[])
{
	struct diag d;

	/* a command must not outlive a simulator that was killed: it could create a
	 * namespace after `down` looked */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(out_fd, STDERR_FILENO) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	if (netns && netns_enter(netns, &d)) {
		fprintf(stderr, "%s\n", d.msg);
		_exit(127);
	}
	if (envp)
		execvpe(argv[0], argv, envp);
	else
		execvp(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int sys_runv(const char *stdin_text, char *const argv[], struct diag *d)
{
	return sys_runv_in(NULL, NULL, stdin_text, argv, d);
}

int sys_runv_in(const char *netns, char *const envp[], const char *stdin_text,
		char *const argv[], struct diag *d)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, status = 0, err = 0, rc;
	size_t in_len = stdin_text ? strlen(stdin_text) : 0, in_off = 0, out_len = 0;
	char output[OUT_MAX + 1], cmd[1024], extra[300];
	long long deadline = now_ms() + SYS_TIMEOUT_MS;
	bool timed_out = false;
	struct pollfd pfd[2];
	pid_t pid;

	output[0] = '\0';
	format_cmdline(argv, cmd, sizeof(cmd));
	if (netns)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " (in %s)", netns);
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0) {
		err = diag_fail_errno(d, -errno, "%s: pipe: %s", cmd, strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		err = diag_fail_errno(d, -errno, "%s: fork: %s", cmd, strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(in[0], out[1], netns, envp, argv);
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	if (!in_len) {
		close(in[1]);
		in[1] = -1;
	} else {
		fcntl(in[1], F_SETFL, O_NONBLOCK);
	}
	signal(SIGPIPE, SIG_IGN);
	while (out[0] >= 0) {
		long long left = deadline - now_ms();
		nfds_t nfd = 0;
		ssize_t r;

		if (left <= 0) {
			kill(pid, SIGKILL);
			timed_out = true;
			break;
		}
		pfd[nfd++] = (struct pollfd){ .fd = out[0], .events = POLLIN };
		if (in[1] >= 0)
			pfd[nfd++] = (struct pollfd){ .fd = in[1], .events = POLLOUT };
		if (poll(pfd, nfd, (int)left) < 0 && errno != EINTR)
			break;
		if (nfd > 1 && pfd[1].revents) {
			r = write(in[1], stdin_text + in_off, in_len - in_off);
			if (r > 0)
				in_off += (size_t)r;
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				in_off = in_len;
			if (in_off >= in_len) {
				close(in[1]);
				in[1] = -1;
			}
		}
		if (pfd[0].revents) {
			char tmp[512];

			r = read(out[0], tmp, sizeof(tmp));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				close(out[0]);
				out[0] = -1;
				break;
			}
			if (out_len < OUT_MAX) {
				size_t c = (size_t)r < OUT_MAX - out_len ? (size_t)r : OUT_MAX - out_len;

				memcpy(output + out_len, tmp, c);
				out_len += c;
				output[out_len] = '\0';
			}
		}
	}
	while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	while (out_len && (output[out_len - 1] == '\n' || output[out_len - 1] == ' '))
		output[--out_len] = '\0';
	batch_failed_line(output, stdin_text, extra, sizeof(extra));
	if (timed_out)
		err = diag_fail_errno(d, -ETIMEDOUT, "command timed out after %d ms: %s%s%s%s",
				      SYS_TIMEOUT_MS, cmd, out_len ? ": " : "", output, extra);
	else if (rc < 0)
		err = diag_fail_errno(d, -ECHILD, "command lost: %s", cmd);
	else if (WIFSIGNALED(status))
		err = diag_fail_errno(d, -EIO, "command killed by signal %d: %s%s%s%s",
				      WTERMSIG(status), cmd, out_len ? ": " : "", output, extra);
	else if (WEXITSTATUS(status))
		err = diag_fail_errno(d, -EIO, "command failed (exit %d): %s%s%s%s",
				      WEXITSTATUS(status), cmd, out_len ? ": " : "", output, extra);
out:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	return err;
}

/* The tool runs inside netns by setns() in the child rather than `ip -n`: `-n` makes ip
 * unshare a mount namespace (to remount /sys), which copies every mount, including one per
 * named netns: at thousands of pods each call cost milliseconds more than the last. */
int ip_batch(const char *netns, const char *script, struct diag *d)
{
	if (!script || !*script)
		return 0;
	return sys_runv_in(netns, NULL, script, (char *const[]){ "ip", "-batch", "-", NULL }, d);
}

int bridge_batch(const char *netns, const char *script, struct diag *d)
{
	if (!script || !*script)
		return 0;
	return sys_runv_in(netns, NULL, script, (char *const[]){ "bridge", "-batch", "-", NULL },
			   d);
}

int netns_enter(const char *netns, struct diag *d)
{
	char path[sizeof(NETNS_RUN_DIR) + NETNS_NAME_MAX + 2];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, netns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return diag_fail_errno(d, -errno, "network namespace %s: %s", netns,
				       strerror(errno));
	if (setns(fd, CLONE_NEWNET) < 0)
		err = diag_fail_errno(d, -errno, "setns %s: %s", netns, strerror(errno));
	close(fd);
	return err;
}

bool netns_exists(const char *netns)
{
	char path[sizeof(NETNS_RUN_DIR) + NETNS_NAME_MAX + 2];

	snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, netns);
	return access(path, F_OK) == 0;
}

int netns_add(const char *netns, struct diag *d)
{
	return SYS(d, "ip", "netns", "add", (char *)netns);
}

/* The calling thread's network namespace, to come back to (-1 with d set on failure). */
static int netns_here(struct diag *d)
{
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		diag_fail_errno(d, -errno, "own network namespace: %s", strerror(errno));
	return fd;
}

/* Back into self (from netns_here), which is closed. A worker that cannot come back would
 * plumb the next pod in the wrong namespace: it stops instead. */
static void netns_return(int self)
{
	if (setns(self, CLONE_NEWNET) < 0) {
		fprintf(stderr, "ciliate-sim: cannot return to the original namespace: %s\n",
			strerror(errno));
		_exit(127);
	}
	close(self);
}

/* What `ip netns add` does, without its exec: an empty file, a new network namespace for
 * this thread, the namespace bind-mounted on the file, and back to where it was. */
int netns_add_here(const char *netns, struct diag *d)
{
	char path[sizeof(NETNS_RUN_DIR) + NETNS_NAME_MAX + 2];
	int self, fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, netns);
	if (access(NETNS_RUN_DIR, F_OK) < 0)
		return netns_add(netns, d); /* first namespace: ip sets up the shared mount */
	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return diag_fail_errno(d, -errno, "netns add %s: %s: %s", netns, path,
				       strerror(errno));
	close(fd);
	self = netns_here(d);
	if (self < 0) {
		unlink(path);
		return -EIO;
	}
	if (unshare(CLONE_NEWNET) < 0)
		err = diag_fail_errno(d, -errno, "netns add %s: unshare: %s", netns, strerror(errno));
	else if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
		err = diag_fail_errno(d, -errno, "netns add %s: bind mount: %s", netns,
				      strerror(errno));
	netns_return(self); /* whatever happened: the caller goes on in its own namespace */
	if (err)
		unlink(path);
	return err;
}

int netns_link_up(const char *netns, const char *ifname, struct diag *d)
{
	struct ifreq ifr;
	int self, sock = -1, err = 0;

	if (strlen(ifname) >= sizeof(ifr.ifr_name))
		return diag_fail_errno(d, -EINVAL, "interface name %s too long", ifname);
	self = netns_here(d);
	if (self < 0)
		return -EIO;
	err = netns_enter(netns, d);
	if (!err) {
		sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		memset(&ifr, 0, sizeof(ifr));
		memcpy(ifr.ifr_name, ifname, strlen(ifname));
		if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
			err = -errno;
		ifr.ifr_flags |= IFF_UP;
		if (!err && ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
			err = -errno;
		if (err)
			diag_fail_errno(d, err, "%s in %s: set up: %s", ifname, netns,
					strerror(-err));
		if (sock >= 0)
			close(sock);
	}
	netns_return(self);
	return err;
}

int netns_del_many(char *const *names, size_t n, struct diag *d)
{
	size_t i, len = 0, off = 0;
	char *script;
	int err;

	for (i = 0; i < n; i++)
		len += strlen(names[i]) + 12;
	script = malloc(len + 1);
	if (!script)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	script[0] = '\0';
	for (i = 0; i < n; i++) {
		if (!netns_exists(names[i]))
			continue;
		off += (size_t)snprintf(script + off, len + 1 - off, "netns del %s\n", names[i]);
	}
	err = off ? sys_runv(script, (char *const[]){ "ip", "-force", "-batch", "-", NULL }, d) :
		    0;
	free(script);
	return err;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int netns_list(const char *prefix, char ***names, size_t *n)
{
	size_t plen = strlen(prefix), cnt = 0, cap = 0;
	char **v = NULL, **nv;
	struct dirent *e;
	DIR *dir;
	int err = 0;

	*names = NULL;
	*n = 0;
	dir = opendir(NETNS_RUN_DIR);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, prefix, plen) || e->d_name[0] == '.')
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[cnt] = strdup(e->d_name);
		if (!v[cnt]) {
			err = -ENOMEM;
			goto out;
		}
		cnt++;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_str);
out:
	closedir(dir);
	if (err) {
		strv_free(v, cnt);
		return err;
	}
	*names = v;
	*n = cnt;
	return 0;
}

struct ns_id {
	dev_t dev;
	ino_t ino;
	size_t idx;
};

static int cmp_ns_id(const void *a, const void *b)
{
	const struct ns_id *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return 0;
}

int netns_pids_many(char *const *names, size_t n, struct netns_pid **out, size_t *nout)
{
	char path[sizeof(NETNS_RUN_DIR) + NETNS_NAME_MAX + 2], p[64];
	struct netns_pid *v = NULL, *nv;
	size_t i, nids = 0, cnt = 0, cap = 0;
	struct ns_id *ids, key, *hit;
	struct dirent *e;
	struct stat st;
	DIR *dir;
	int err = 0;

	*out = NULL;
	*nout = 0;
	ids = calloc(n + 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, names[i]);
		if (stat(path, &st) < 0)
			continue;
		ids[nids++] = (struct ns_id){ .dev = st.st_dev, .ino = st.st_ino, .idx = i };
	}
	qsort(ids, nids, sizeof(*ids), cmp_ns_id);
	dir = nids ? opendir("/proc") : NULL;
	if (!dir)
		goto out;
	while ((e = readdir(dir))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		snprintf(p, sizeof(p), "/proc/%ld/ns/net", pid);
		if (stat(p, &st) < 0)
			continue;
		key.dev = st.st_dev;
		key.ino = st.st_ino;
		hit = bsearch(&key, ids, nids, sizeof(*ids), cmp_ns_id);
		if (!hit)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[cnt++] = (struct netns_pid){ .pid = (pid_t)pid, .ns = hit->idx };
	}
	closedir(dir);
out:
	free(ids);
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	*nout = cnt;
	return 0;
}

int netns_sysctl(const char *netns, const char *const *kv, size_t n, struct diag *d)
{
	int pfd[2], status, err = 0;
	char msg[512] = "";
	ssize_t r;
	pid_t pid;
	size_t i;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return diag_fail_errno(d, -errno, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		err = diag_fail_errno(d, -errno, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return err;
	}
	if (pid == 0) {
		struct diag cd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pfd[0]);
		if (netns_enter(netns, &cd)) {
			if (write(pfd[1], cd.msg, strlen(cd.msg)) < 0)
				_exit(1);
			_exit(1);
		}
		for (i = 0; i < n; i++) {
			char path[256];
			int fd;

			snprintf(path, sizeof(path), "/proc/sys/%s", kv[2 * i]);
			fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write(fd, kv[2 * i + 1], strlen(kv[2 * i + 1])) < 0) {
				dprintf(pfd[1], "sysctl %s=%s in %s: %s", kv[2 * i], kv[2 * i + 1],
					netns, strerror(errno));
				_exit(1);
			}
			close(fd);
		}
		_exit(0);
	}
	close(pfd[1]);
	r = read(pfd[0], msg, sizeof(msg) - 1);
	msg[r > 0 ? r : 0] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		err = diag_fail_errno(d, -EIO, "%s", msg[0] ? msg : "sysctl child failed");
	return err;
}

/* The child side of netns_spawn: returns an errno only if it could not exec. */
static int spawn_child(const char *netns, char *const argv[], const char *log_path)
{
	int fd, err;

	setsid();
	err = netns ? netns_enter(netns, NULL) : 0;
	if (err)
		return -err;
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		return errno;
	if (log_path)
		fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	else
		fd = open("/dev/null", O_WRONLY);
	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
		return errno;
	signal(SIGPIPE, SIG_DFL);
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	execv(argv[0], argv);
	return errno;
}

pid_t netns_spawn(const char *netns, char *const argv[], const char *log_path, struct diag *d)
{
	int pfd[2], cerr = 0, status;
	char cmd[512];
	ssize_t r;
	pid_t pid;

	format_cmdline(argv, cmd, sizeof(cmd));
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return diag_fail_errno(d, -errno, "%s: pipe: %s", cmd, strerror(errno));
	pid = fork();
	if (pid < 0) {
		cerr = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return diag_fail_errno(d, cerr, "%s: fork: %s", cmd, strerror(-cerr));
	}
	if (pid == 0) {
		close(pfd[0]);
		cerr = spawn_child(netns, argv, log_path);
		if (write(pfd[1], &cerr, sizeof(cerr)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pfd[1]);
	r = read(pfd[0], &cerr, sizeof(cerr));
	close(pfd[0]);
	if (r == (ssize_t)sizeof(cerr)) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return diag_fail_errno(d, -cerr, "cannot start %s%s%s: %s", cmd,
				       netns ? " in " : "", netns ? netns : "", strerror(cerr));
	}
	return pid;
}

int proc_start_time(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t r;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return -ESRCH;
	buf[r] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	p += 2; /* now at field 3 (state) */
	if (*p == 'Z' || *p == 'X')
		return -ESRCH;
	for (i = 3; i < 22 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || sscanf(p, "%llu", &v) != 1)
		return -EINVAL;
	*start = v;
	return 0;
}

bool proc_alive(pid_t pid, unsigned long long start)
{
	unsigned long long s;

	if (pid <= 0 || proc_start_time(pid, &s))
		return false;
	return !start || s == start;
}

void strv_free(char **v, size_t n)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
