/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's small HTTP/1.1 servers (httpd.h): a listening socket and its connections in
 * the agent's epoll loop. Each connection reads one request head, gets its whole answer
 * built at once, writes it as the socket takes it and is closed. Shared by /metrics
 * (metrics.c) and the health-check NodePorts (healthcheck.c).
 */
#include "httpd.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTPD_REQ_MAX	  8192	/* request line + headers; larger requests get 431 */
#define HTTPD_CONNS_MAX	  32	/* open connections per server; the oldest goes first */
#define HTTPD_CONN_MS	  10000 /* a connection is closed after this long, answered or not */

enum conn_state { HC_READING, HC_WRITING };

struct httpd_conn {
	int fd;
	enum conn_state state;
	bool head; /* HEAD: the answer has no body */
	int64_t since_ms;
	char req[HTTPD_REQ_MAX];
	size_t req_len;
	char *resp; /* HC_WRITING: the whole answer (NULL: nothing to say, close) */
	size_t resp_len, resp_off;
};

struct httpd {
	int epfd, listen_fd;
	httpd_handler fn;
	void *arg;
	struct httpd_conn *conns[HTTPD_CONNS_MAX];
	size_t nconns;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the listener --------------------------------------------------------------------- */

static int bind_listen(int fd, const struct sockaddr *sa, socklen_t len)
{
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, sa, len) == 0 && listen(fd, 64) == 0)
		return 0;
	return -errno;
}

int httpd_listen(const char *host, uint16_t port, struct diag *d)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	char portstr[8];
	int fd = -1, zero = 0, err = 0, rc;

	snprintf(portstr, sizeof(portstr), "%u", port);
	if (!*host) {
		/* all addresses: dual-stack where the node has IPv6, else IPv4 */
		hints.ai_family = AF_INET6;
		rc = getaddrinfo(NULL, portstr, &hints, &res);
		if (rc == 0) {
			fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd >= 0) {
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
				err = bind_listen(fd, res->ai_addr, res->ai_addrlen);
				if (!err) {
					freeaddrinfo(res);
					return fd;
				}
				close(fd);
				fd = -1;
			}
			freeaddrinfo(res);
			res = NULL;
			if (err == -EADDRINUSE)
				return diag_fail_errno(d, err, "port %u: %s", port, strerror(-err));
		}
		hints.ai_family = AF_INET;
		rc = getaddrinfo(NULL, portstr, &hints, &res);
	} else {
		hints.ai_family = AF_UNSPEC;
		rc = getaddrinfo(host, portstr, &hints, &res);
	}
	if (rc)
		return diag_fail_errno(d, -EINVAL, "%s: %s", *host ? host : "(any)",
				       gai_strerror(rc));
	err = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		err = bind_listen(fd, ai->ai_addr, ai->ai_addrlen);
		if (!err)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return diag_fail_errno(d, err, "%s port %u: %s", *host ? host : "(any)", port,
				       strerror(-err));
	return fd;
}

struct httpd *httpd_new(int epfd, int listen_fd, httpd_handler fn, void *arg, struct diag *d)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
	struct httpd *s = calloc(1, sizeof(*s));

	if (!s) {
		close(listen_fd);
		diag_fail_errno(d, -ENOMEM, "out of memory");
		return NULL;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		diag_fail_errno(d, -errno, "epoll: %s", strerror(errno));
		close(listen_fd);
		free(s);
		return NULL;
	}
	s->epfd = epfd;
	s->listen_fd = listen_fd;
	s->fn = fn;
	s->arg = arg;
	return s;
}

/* ---- connections ---------------------------------------------------------------------- */

static void conn_close(struct httpd *s, size_t i)
{
	struct httpd_conn *c = s->conns[i];
	char sink[512];

	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	/* read what the client sent after its request, so close() does not reset the
	 * connection under the answer */
	shutdown(c->fd, SHUT_WR);
	for (int k = 0; k < 8 && read(c->fd, sink, sizeof(sink)) > 0; k++)
		;
	close(c->fd);
	free(c->resp);
	free(c);
	s->conns[i] = s->conns[--s->nconns];
}

static void expire_conns(struct httpd *s, int64_t now)
{
	for (size_t i = 0; i < s->nconns;) {
		if (now - s->conns[i]->since_ms > HTTPD_CONN_MS)
			conn_close(s, i);
		else
			i++;
	}
}

static void accept_conns(struct httpd *s)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int64_t now = now_ms();
	struct httpd_conn *c;
	size_t oldest;
	int fd;

	expire_conns(s, now);
	for (int i = 0; i < 16; i++) {
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (s->nconns == HTTPD_CONNS_MAX) {
			oldest = 0;
			for (size_t k = 1; k < s->nconns; k++)
				if (s->conns[k]->since_ms < s->conns[oldest]->since_ms)
					oldest = k;
			conn_close(s, oldest);
		}
		c = calloc(1, sizeof(*c));
		ev.data.fd = fd;
		if (!c || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->since_ms = now;
		s->conns[s->nconns++] = c;
	}
}

static const char *status_text(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

void httpd_respond(struct httpd_conn *c, int code, const char *ctype, const char *headers,
		   const char *body, size_t body_len)
{
	char head[1024];
	size_t keep;
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n",
		     code, status_text(code), ctype, headers ? headers : "", body_len);
	free(c->resp);
	c->resp = NULL;
	c->resp_len = c->resp_off = 0;
	c->state = HC_WRITING;
	if (n < 0 || (size_t)n >= sizeof(head))
		return; /* nothing sensible to say: close */
	keep = c->head ? 0 : body_len;
	c->resp = malloc((size_t)n + keep);
	if (!c->resp)
		return;
	memcpy(c->resp, head, (size_t)n);
	if (keep)
		memcpy(c->resp + n, body, keep);
	c->resp_len = (size_t)n + keep;
}

static void respond_text(struct httpd_conn *c, int code, const char *headers, const char *msg)
{
	httpd_respond(c, code, "text/plain; charset=utf-8", headers, msg, strlen(msg));
}

/* A complete request head is in c->req: answers it. */
static void handle_request(struct httpd *s, struct httpd_conn *c)
{
	char method[16], target[1024], version[16], *q;
	struct httpd_request req;

	if (sscanf(c->req, "%15s %1023s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7)) {
		if (sscanf(c->req, "%15s %1023s %15s", method, target, version) == 3 &&
		    !strncmp(version, "HTTP/", 5))
			respond_text(c, 505, NULL, "HTTP/1.x only\n");
		else
			respond_text(c, 400, NULL, "bad request\n");
		return;
	}
	c->head = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !c->head) {
		respond_text(c, 405, "Allow: GET, HEAD\r\n", "only GET and HEAD\n");
		return;
	}
	q = strchr(target, '?');
	if (q)
		*q = '\0';
	req.method = c->head ? "HEAD" : "GET";
	req.path = target;
	c->state = HC_READING;
	s->fn(s->arg, &req, c);
	if (c->state != HC_WRITING) /* the handler said nothing: close */
		c->state = HC_WRITING;
}

/* Writes what the socket takes; true when the connection is done (closed or to close). */
static bool conn_write(struct httpd *s, struct httpd_conn *c)
{
	struct epoll_event ev = {.events = EPOLLOUT, .data.fd = c->fd};
	ssize_t n;

	while (c->resp_off < c->resp_len) {
		n = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->resp_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* the rest when the socket drains */
			epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
			return false;
		}
		return true;
	}
	return true;
}

/* Reads the request head; true when the connection is done. */
static bool conn_read(struct httpd *s, struct httpd_conn *c)
{
	ssize_t n;

	for (;;) {
		if (c->req_len == sizeof(c->req) - 1) {
			respond_text(c, 431, NULL, "request too large\n");
			return conn_write(s, c);
		}
		n = read(c->fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		if (n <= 0)
			return true; /* closed (or failed) before a whole request */
		c->req_len += (size_t)n;
		c->req[c->req_len] = '\0';
		if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
			handle_request(s, c);
			return conn_write(s, c);
		}
	}
}

bool httpd_handle(struct httpd *s, int fd)
{
	struct httpd_conn *c;
	size_t i;
	bool done;

	if (!s)
		return false;
	if (fd == s->listen_fd) {
		accept_conns(s);
		return true;
	}
	for (i = 0; i < s->nconns && s->conns[i]->fd != fd; i++)
		;
	if (i == s->nconns)
		return false;
	c = s->conns[i];
	done = c->state == HC_READING ? conn_read(s, c) : conn_write(s, c);
	if (done)
		conn_close(s, i);
	return true;
}

void httpd_free(struct httpd *s)
{
	if (!s)
		return;
	while (s->nconns)
		conn_close(s, s->nconns - 1);
	if (s->epfd >= 0)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
	close(s->listen_fd);
	free(s);
}
