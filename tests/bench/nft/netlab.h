/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small network-namespace lab for benches: named namespaces (all under one prefix that
 * carries the creating pid), commands run inside them through iproute2, moving the calling
 * thread in and out of them (to open sockets or attach TC programs there), and teardown.
 * Nothing here touches the root namespace's configuration.
 */
#ifndef CILIATE_BENCH_NETLAB_H
#define CILIATE_BENCH_NETLAB_H

#include <signal.h>
#include <stdio.h>

#define LAB_MAX_NS 4

struct netlab {
	char tag[32]; /* "<prefix><pid>": every namespace name starts with it */
	char ns[LAB_MAX_NS][48];
	int nns;
	int home_fd; /* the namespace the process started in */
};

/* Set by the signal handlers lab_catch_signals() installs; long loops poll it. */
extern volatile sig_atomic_t lab_stop;

/* SIGINT/SIGTERM/SIGHUP set lab_stop; SIGALRM after `seconds` too (global time bound). */
void lab_catch_signals(unsigned int seconds);

/* Opens the home namespace and names the lab "<prefix><pid>". Removes namespaces left by
 * earlier runs under the same prefix whose process is gone. Returns 0 or -1 (message). */
int lab_init(struct netlab *l, const char *prefix);

/* Creates namespace "<tag>-<suffix>" (loopback up, IPv6 off); its name in *name. */
int lab_add_ns(struct netlab *l, const char *suffix, const char **name);

/* Runs a shell command (printf-style); returns its exit status, printing the command and
 * its output to stderr when it fails. */
int lab_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Same, but the command's output is discarded and failure is silent. */
int lab_sh_quiet(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Moves the calling thread into namespace `ns` / back home. 0 or -1 (message). */
int lab_enter(const char *ns);
int lab_leave(const struct netlab *l);

/* Interface index and MAC of `dev` inside namespace `ns` (enters and leaves it). */
int lab_if_info(const struct netlab *l, const char *ns, const char *dev, int *ifindex,
		unsigned char mac[6]);

/* Deletes every namespace of the lab (veths go with them) and closes home_fd. Idempotent. */
void lab_destroy(struct netlab *l);

#endif
