/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-echo's internals: the server, its sites, listeners and connections, and the
 * functions its files call across each other: configuration (echo_config.c), messages
 * (echo_log.c), listening sockets (echo_listen.c), TCP connections (echo_conn.c), UDP
 * (echo_udp.c) and the event loop (echo.c).
 */
#ifndef CILIATE_SIM_ECHO_H
#define CILIATE_SIM_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "echo_proto.h"

#define CONN_BUF 8192
/* at most this many accepts or datagrams per epoll event */
#define BATCH 64
#define UDP_BUF 65536
#define DEFAULT_IDLE_MS 10000
#define DEFAULT_MAX_CONNS 4096

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

/* echo_config.c */

/* Parses the command line and any sites file: -1 to go on, else the exit status. */
int echo_configure(struct server *srv, int argc, char **argv);

/* echo_log.c */

/* Logs one line tagged with the identity id (NULL: untagged, for the multi-site process). */
void echo_log(const struct echo_ident *id, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reports a problem with site s, "FILE:LINE: " first when it comes from a sites file. */
void echo_site_error(const struct site *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* echo_listen.c */

/* Makes room under RLIMIT_NOFILE for every listener, shrinking max_conns to fit; 0 or -errno. */
int echo_fit_fd_limit(struct server *srv);

/* Opens every site's listeners, each in its network namespace. 0 or -errno (reported). */
int echo_open_sites(struct server *srv);

/* Writes the pid to path through a temporary file; 0 or -errno. */
int echo_write_pidfile(const char *path);

/* echo_conn.c */

/* Accepts a batch of connections on TCP listener l. */
void echo_accept_conns(struct server *srv, struct listener *l);

/* Reads what c sent and answers a complete request (discards input once draining); -errno
 * to close. */
int echo_conn_read(struct server *srv, struct conn *c);

/* Sends pending output; 0 when done or waiting for the socket, -errno to close. */
int echo_conn_flush(struct server *srv, struct conn *c);

/* Unregisters, closes and frees c. */
void echo_conn_close(struct server *srv, struct conn *c);

/* Closes timed-out connections, answers stalled sniffs; returns ms until the next deadline. */
int echo_sweep(struct server *srv);

/* echo_udp.c */

/* Answers a batch of datagrams on UDP listener l. */
void echo_serve_udp(struct server *srv, struct listener *l);

/* echo.c */

/* Registers fd with the server's epoll, events pointing at ptr; 0 or -errno. */
int echo_epoll_add(struct server *srv, int fd, uint32_t events, void *ptr);

#endif
