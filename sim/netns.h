/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network-namespace plumbing for the simulator: run commands (iproute2) with argv arrays,
 * bounded in time, failing loudly with the command line and its output in the message (like
 * the kernel selftests' SYS()); enter, list and inspect named namespaces (/run/netns/NAME);
 * spawn detached processes inside them. Nothing here touches the root namespace's links,
 * addresses or routes: every `ip` call the simulator makes runs inside a named namespace
 * (entered with setns() in the child).
 */
#ifndef CILIATE_SIM_NETNS_H
#define CILIATE_SIM_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/diag.h"

#define NETNS_RUN_DIR "/run/netns"
#define NETNS_NAME_MAX 128
#define SYS_TIMEOUT_MS 20000 /* any single plumbing command */

/* Runs argv (PATH lookup) with stdin_text (or /dev/null) as input; 0 if it exited 0, else
 * a negative errno with d->msg naming the command line, exit status and output. */
int sys_runv(const char *stdin_text, char *const argv[], struct diag *d);

/* sys_runv inside netns (NULL: here) with the environment envp (NULL: this one's). */
int sys_runv_in(const char *netns, char *const envp[], const char *stdin_text,
		char *const argv[], struct diag *d);

/* SYS(d, "ip", "-n", ns, "link", ...): sys_runv without input. */
#define SYS(d, ...) sys_runv(NULL, (char *const[]){ __VA_ARGS__, NULL }, d)

/* Runs `ip [-n netns] -batch -` with script (one ip command per line). */
int ip_batch(const char *netns, const char *script, struct diag *d);

/* Runs `bridge [-n netns] -batch -` with script. */
int bridge_batch(const char *netns, const char *script, struct diag *d);

/* Moves the calling process (thread) into the named namespace. */
int netns_enter(const char *netns, struct diag *d);

/* True if /run/netns/NAME exists. */
bool netns_exists(const char *netns);

/* Creates a named namespace (`ip netns add`). */
int netns_add(const char *netns, struct diag *d);

/* Creates a named namespace in-process (unshare + bind mount, as `ip netns add` does):
 * no exec, for thousands of pods. The calling thread ends in the namespace it started in;
 * it must be single-threaded (a pod worker). */
int netns_add_here(const char *netns, struct diag *d);

/* Sets ifname up inside the named namespace (in-process; same rule as netns_add_here). */
int netns_link_up(const char *netns, const char *ifname, struct diag *d);

/* Deletes named namespaces in one `ip -force -batch`; absent ones are skipped. */
int netns_del_many(char *const *names, size_t n, struct diag *d);

/* Lists namespace names starting with prefix (sorted); free with strv_free(). */
int netns_list(const char *prefix, char ***names, size_t *n);

/* A process found inside one of several namespaces. */
struct netns_pid {
	pid_t pid;
	size_t ns; /* index into the names given */
};

/* Lists processes inside any of the named namespaces with one scan of /proc; free() *out. */
int netns_pids_many(char *const *names, size_t n, struct netns_pid **out, size_t *nout);

/* Writes sysctls inside the namespace: kv holds n pairs ("net/ipv4/ip_forward", "1"),
 * paths relative to /proc/sys. */
int netns_sysctl(const char *netns, const char *const *kv, size_t n, struct diag *d);

/* Starts argv[0] (an absolute path) inside netns (NULL: here) as a detached process (own
 * session, stdin /dev/null, stdout and stderr appended to log_path or /dev/null). Returns the
 * pid, or a negative errno with d->msg set if fork or exec failed. */
pid_t netns_spawn(const char *netns, char *const argv[], const char *log_path, struct diag *d);

/* Reads /proc/PID/stat's start time (clock ticks since boot); -ESRCH if gone. */
int proc_start_time(pid_t pid, unsigned long long *start);

/* True if pid is alive (not a zombie) and, when start is non-zero, started at start. */
bool proc_alive(pid_t pid, unsigned long long start);

/* Frees a NULL-terminated or counted string vector from netns_list(). */
void strv_free(char **v, size_t n);

#endif
