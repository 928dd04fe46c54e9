/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Teardown: stop the processes the state file records (checked against their start time so
 * a reused pid is never hit), stop any of the simulator's own binaries still running inside
 * the cluster's namespaces (a crash between spawn and state save), delete every
 * cil-<tag>-* namespace (which takes every veth, bridge and vxlan device with it), remove
 * pinned paths, the run directory and the state file. Safe to repeat.
 */
#include "sim.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DOWN_ROUNDS 5
#define STRAY_WAIT_MS 1000

static bool all_gone(struct sim_proc *const *procs, size_t n)
{
	int status;
	size_t i;

	for (i = 0; i < n; i++) {
		if (procs[i]->pid <= 0)
			continue;
		/* reap our own children (a `run` that started them) so they are not zombies */
		waitpid(procs[i]->pid, &status, WNOHANG);
		if (procs[i]->start && proc_alive(procs[i]->pid, procs[i]->start))
			return false;
	}
	return true;
}

static void wait_gone(struct sim_proc *const *procs, size_t n, long long ms)
{
	long long deadline = sim_now_ms() + ms;

	while (!all_gone(procs, n) && sim_now_ms() < deadline)
		usleep(20000);
}

/* Only a pid whose start time was recorded and still matches is ours to signal. */
static bool ours(const struct sim_proc *p)
{
	return p->pid > 0 && p->start && proc_alive(p->pid, p->start);
}

void sim_stop_procs(struct sim_proc *const *procs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ours(procs[i]))
			kill(procs[i]->pid, SIGTERM);
	wait_gone(procs, n, SIM_STOP_GRACE_MS);
	for (i = 0; i < n; i++)
		if (ours(procs[i]))
			kill(procs[i]->pid, SIGKILL);
	wait_gone(procs, n, 1000);
}

/* True for ciliate-echo, ciliate-probe, ciliate-agent...: only the simulator starts those
 * inside its namespaces. */
static bool is_sim_binary(pid_t pid, char *comm, size_t size)
{
	char path[64], exe[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(comm, size, "?");
		return false;
	}
	exe[n] = '\0';
	base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	snprintf(comm, size, "%.200s", base);
	return !strncmp(base, "ciliate-", 8) && strncmp(base, "ciliate-sim", 11);
}

/* Stops the simulator's binaries found in the namespaces; returns how many other processes
 * are there (first one described in first). */
static size_t scan_strays(char **names, size_t nnames, bool quiet, char *first, size_t size)
{
	struct sim_proc *procs = NULL, **refs = NULL;
	size_t i, n = 0, cnt = 0, foreign = 0;
	struct netns_pid *found = NULL;
	char comm[256];

	if (netns_pids_many(names, nnames, &found, &n) || !n)
		goto out;
	procs = calloc(n, sizeof(*procs));
	refs = calloc(n, sizeof(*refs));
	if (!procs || !refs)
		goto out;
	for (i = 0; i < n; i++) {
		if (found[i].pid == getpid())
			continue;
		if (!is_sim_binary(found[i].pid, comm, sizeof(comm))) {
			if (!foreign++)
				snprintf(first, size, "pid %d (%s) in %s", (int)found[i].pid, comm,
					 names[found[i].ns]);
			continue;
		}
		procs[cnt].pid = found[i].pid;
		if (!proc_start_time(found[i].pid, &procs[cnt].start)) {
			refs[cnt] = &procs[cnt];
			cnt++;
		}
	}
	if (cnt) {
		if (!quiet)
			fprintf(stderr, "ciliate-sim: stopping %zu simulator process(es) not in the "
				"state file\n", cnt);
		sim_stop_procs(refs, cnt);
	}
out:
	free(refs);
	free(procs);
	free(found);
	return foreign;
}

/* Stops the simulator's binaries left in the namespaces. Other processes there (an `ip`
 * of a killed `up` still exiting, or someone's shell) get STRAY_WAIT_MS to go away; those
 * that stay are reported, never signalled. */
static int stop_strays(char **names, size_t nnames, bool quiet, struct diag *d)
{
	long long deadline = sim_now_ms() + STRAY_WAIT_MS;
	char first[512] = "";
	size_t foreign;

	while ((foreign = scan_strays(names, nnames, quiet, first, sizeof(first))) &&
	       sim_now_ms() < deadline)
		usleep(50000);
	if (!foreign)
		return 0;
	return diag_fail_errno(d, -EBUSY, "%zu process(es) not started by the simulator still "
			       "run inside its namespaces (first: %s); left running, their "
			       "namespaces are unnamed but alive until they exit", foreign, first);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* Removes a pinned path, only below /sys/fs/bpf/ciliate/. */
static void remove_pin(const char *path)
{
	size_t n = strlen(SIM_BPFFS_DIR);

	if (strncmp(path, SIM_BPFFS_DIR "/", n + 1) || strstr(path, "/../") || !path[n + 1])
		return;
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_run_dir(const char *tag)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *e;
	DIR *dh;

	sim_run_dir(tag, dir, sizeof(dir));
	dh = opendir(dir);
	if (dh) {
		while ((e = readdir(dh))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (e->d_type == DT_DIR) /* the cluster's store */
				nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
			else
				unlink(path);
		}
		closedir(dh);
	}
	rmdir(dir);
}

/*
 * Stops what the simulator's agents started: the wireguard-go of each node (encryption:
 * wireguard), whose pid the agent records in <state dir>/wireguard/wireguard-go.pid. A pid is
 * signalled only while it still is a wireguard-go (the file may be stale).
 */
static void stop_agent_children(const char *prefix)
{
	struct sim_proc procs[64], *refs[64];
	char path[PATH_MAX + 256], exe[PATH_MAX], link[64];
	struct dirent *e;
	size_t n = 0;
	DIR *dh;

	dh = opendir("/run/ciliate");
	if (!dh)
		return;
	while ((e = readdir(dh)) && n < 64) {
		const char *base;
		ssize_t len;
		FILE *f;
		int pid = 0;

		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		snprintf(path, sizeof(path), "/run/ciliate/%s/wireguard/wireguard-go.pid",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
		if (pid <= 1)
			continue;
		snprintf(link, sizeof(link), "/proc/%d/exe", pid);
		len = readlink(link, exe, sizeof(exe) - 1);
		if (len <= 0)
			continue;
		exe[len] = '\0';
		base = strrchr(exe, '/');
		if (strcmp(base ? base + 1 : exe, "wireguard-go"))
			continue;
		procs[n].pid = pid;
		if (proc_start_time(pid, &procs[n].start))
			continue;
		refs[n] = &procs[n];
		n++;
	}
	closedir(dh);
	if (n)
		sim_stop_procs(refs, n);
}

/*
 * The cluster's ciliate-operator found by what the simulator started it with (`--id
 * <tag>-operator-<pid>`, sim/runner/store.c): it runs where the simulator runs, in no
 * cluster namespace, so a lost state file would leave it running for ever otherwise.
 */
static void stop_operators(const char *tag)
{
	struct sim_proc procs[16], *refs[16];
	char want[64], path[64], exe[PATH_MAX], args[4096];
	struct dirent *e;
	size_t n = 0;
	DIR *dh;

	snprintf(want, sizeof(want), "%s-operator-", tag);
	dh = opendir("/proc");
	if (!dh)
		return;
	while ((e = readdir(dh)) && n < 16) {
		int pid = atoi(e->d_name);
		const char *base, *a;
		ssize_t len;
		size_t got;
		FILE *f;
		bool ours = false;

		if (pid <= 1 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		len = readlink(path, exe, sizeof(exe) - 1);
		if (len <= 0)
			continue;
		exe[len] = '\0';
		base = strrchr(exe, '/');
		if (strcmp(base ? base + 1 : exe, "ciliate-operator"))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		f = fopen(path, "r");
		if (!f)
			continue;
		got = fread(args, 1, sizeof(args) - 1, f);
		fclose(f);
		args[got] = '\0';
		/* the NUL-separated arguments: "--id" followed by <tag>-operator-... */
		for (a = args; a < args + got; a += strlen(a) + 1)
			if (!strcmp(a, "--id") && a + strlen(a) + 1 < args + got &&
			    !strncmp(a + strlen(a) + 1, want, strlen(want)))
				ours = true;
		if (!ours)
			continue;
		procs[n].pid = pid;
		if (proc_start_time(pid, &procs[n].start))
			continue;
		refs[n] = &procs[n];
		n++;
	}
	closedir(dh);
	if (n)
		sim_stop_procs(refs, n);
}

/* Removes the agents' pins (/sys/fs/bpf/ciliate/cil-<tag>-*) and state dirs
 * (/run/ciliate/cil-<tag>-*) by the cluster's prefix: also those of a lost state file. */
static void remove_agent_dirs(const char *prefix)
{
	static const char *const roots[] = { SIM_BPFFS_DIR, "/run/ciliate" };
	char path[PATH_MAX + 256];
	struct dirent *e;
	size_t r;
	DIR *dh;

	for (r = 0; r < sizeof(roots) / sizeof(roots[0]); r++) {
		dh = opendir(roots[r]);
		if (!dh)
			continue;
		while ((e = readdir(dh))) {
			if (strncmp(e->d_name, prefix, strlen(prefix)) || strchr(e->d_name, '/'))
				continue;
			snprintf(path, sizeof(path), "%s/%s", roots[r], e->d_name);
			nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		}
		closedir(dh);
	}
}

static int add_name(char ***v, size_t *n, const char *s)
{
	char **nv;
	size_t i;

	for (i = 0; i < *n; i++)
		if (!strcmp((*v)[i], s))
			return 0;
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

int sim_down_tag(const char *tag, bool quiet, struct diag *d)
{
	char prefix[64], path[PATH_MAX], tmp[PATH_MAX + 8];
	struct sim_proc **procs = NULL;
	struct sim_cluster c;
	char **names = NULL, **found = NULL;
	size_t i, nnames = 0, nfound = 0, nprocs = 0;
	bool have_state;
	struct diag dd;
	int err = 0, e, round;

	sim_netns_prefix(tag, prefix, sizeof(prefix));
	e = sim_state_load(tag, &c, &dd);
	have_state = !e;
	if (e && e != -ENOENT)
		fprintf(stderr, "ciliate-sim: %s (removing by name prefix %s only)\n", dd.msg,
			prefix);
	if (have_state) {
		snprintf(c.phase, sizeof(c.phase), "deleting");
		sim_state_save(&c, NULL);
		procs = calloc(2 * c.nhosts + 2, sizeof(*procs));
		for (i = 0; procs && i < c.nhosts; i++) {
			procs[nprocs++] = &c.hosts[i].echo;
			procs[nprocs++] = &c.hosts[i].agent;
		}
		if (procs)
			procs[nprocs++] = &c.operator_proc;
		if (procs)
			sim_stop_procs(procs, nprocs);
		add_name(&names, &nnames, c.fabric);
		for (i = 0; i < c.nhosts; i++)
			if (c.hosts[i].own_netns)
				add_name(&names, &nnames, c.hosts[i].netns);
	}
	if (!netns_list(prefix, &found, &nfound))
		for (i = 0; i < nfound; i++)
			add_name(&names, &nnames, found[i]);
	stop_agent_children(prefix);
	stop_operators(tag); /* also without a state file */
	e = stop_strays(names, nnames, quiet, &dd);
	if (e) {
		fprintf(stderr, "ciliate-sim: %s\n", dd.msg);
		err = diag_fail_errno(d, e, "%s", dd.msg);
	}
	e = netns_del_many(names, nnames, &dd);
	if (e && !err)
		err = diag_fail_errno(d, e, "%s", dd.msg);
	/* a command of a killed `up` may still have been creating one: look again */
	for (round = 0; round < DOWN_ROUNDS; round++) {
		strv_free(found, nfound);
		found = NULL;
		nfound = 0;
		if (netns_list(prefix, &found, &nfound) || !nfound)
			break;
		usleep(100000);
		stop_strays(found, nfound, true, NULL);
		netns_del_many(found, nfound, NULL);
	}
	for (i = 0; have_state && i < c.npins; i++)
		remove_pin(c.pins[i]);
	if (have_state)
		sim_store_release(&c, quiet); /* etcd: the cluster's keys */
	remove_agent_dirs(prefix);
	remove_run_dir(tag);
	sim_state_path(tag, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if (unlink(path) < 0 && errno != ENOENT && !err)
		err = diag_fail_errno(d, -errno, "unlink %s: %s", path, strerror(errno));
	strv_free(found, nfound);
	found = NULL;
	nfound = 0;
	if (!netns_list(prefix, &found, &nfound) && nfound && !err)
		err = diag_fail_errno(d, -EBUSY, "%zu namespace(s) %s* still present (first: %s)",
				      nfound, prefix, found[0]);
	if (!quiet && !err)
		fprintf(stderr, "ciliate-sim: %s: removed %zu namespace(s)%s\n", tag, nnames,
			have_state ? "" : " (no state file)");
	strv_free(found, nfound);
	strv_free(names, nnames);
	free(procs);
	if (have_state)
		sim_cluster_free(&c);
	return err;
}
