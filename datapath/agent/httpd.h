/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's small HTTP/1.1 servers (Prometheus /metrics, metrics.c; the health-check
 * NodePorts, healthcheck.c): one listening socket and its connections, all non-blocking and
 * registered in the agent's epoll loop, so a slow or idle client never holds the loop up.
 * One request per connection (the answer says Connection: close); GET and HEAD only (405
 * with Allow otherwise), a request head over 8 KiB gets 431, HTTP/2+ 505, garbage 400; at
 * most 32 connections per server (a new one closes the oldest), each closed after 10 s
 * answered or not.
 */
#ifndef CILIATE_AGENT_HTTPD_H
#define CILIATE_AGENT_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"

struct httpd;
struct httpd_conn;

struct httpd_request {
	const char *method; /* "GET" or "HEAD" */
	const char *path;   /* the target without its query */
};

/* Answers one request, through httpd_respond() exactly once (else the connection closes
 * without an answer). */
typedef void (*httpd_handler)(void *arg, const struct httpd_request *req, struct httpd_conn *c);

/* A listening TCP socket (non-blocking) on host:port; host "" is every address of the
 * namespace (dual-stack where IPv6 is up, else IPv4). Returns the fd, or a negative errno
 * with d->msg (-EADDRINUSE when the port is taken). */
int httpd_listen(const char *host, uint16_t port, struct diag *d);

/* A server on listen_fd (which it then owns), registered in epfd: requests go to fn(arg).
 * NULL when out of memory or epoll refuses (the fd is closed then; d says why). */
struct httpd *httpd_new(int epfd, int listen_fd, httpd_handler fn, void *arg, struct diag *d);

/* Handles an event of fd if it is s's listener or one of its connections (true). */
bool httpd_handle(struct httpd *s, int fd);

/* Sets the answer: status code, Content-Type, extra header lines (each ending "\r\n"; NULL:
 * none) and the body (left out for HEAD, its Content-Length kept). */
void httpd_respond(struct httpd_conn *c, int code, const char *ctype, const char *headers,
		   const char *body, size_t body_len);

/* Closes the listener and every connection, and frees s (NULL is fine). */
void httpd_free(struct httpd *s);

#endif
