/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-echo's TCP connections: accept, read, tell HTTP from plain echo, reply, drain
 * before the close, and the sweep that closes idle ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "echo.h"

#define SNIFF_WAIT_MS 200
#define DRAIN_MS 1000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int epoll_mod(struct server *srv, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(srv->epfd, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
}

void echo_conn_close(struct server *srv, struct conn *c)
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
int echo_conn_flush(struct server *srv, struct conn *c)
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
	return echo_conn_flush(srv, c);
}

static int conn_reply_echo(struct server *srv, struct conn *c)
{
	long fill = echo_respond_bytes(c->in, c->in_len);
	json_t *reply;
	char *text, *line;
	size_t len;

	if (fill < 0)
		fill = 0; /* a bad respond= word: the answer alone */
	reply = echo_reply_json(&c->site->id, &c->peer, NULL, c->in, c->in_len);
	text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	line = realloc(text, len + 2 + (size_t)fill);
	if (!line) {
		free(text);
		return -ENOMEM;
	}
	line[len] = '\n';
	/* respond=N: N bytes of filler follow the answer line, the last one a newline */
	if (fill) {
		memset(line + len + 1, '.', (size_t)fill - 1);
		line[len + (size_t)fill] = '\n';
	}
	line[len + 1 + (size_t)fill] = '\0';
	if (!srv->quiet)
		echo_log(&c->site->id, "tcp %s:%u -> %s:%u echo %zu bytes%s", c->peer.client_ip,
			 c->peer.client_port, c->peer.server_ip, c->peer.server_port, c->in_len,
			 fill ? " (+ filler)" : "");
	c->in_len = 0;
	return conn_send(srv, c, line, len + 1 + (size_t)fill, false);
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
		echo_log(&c->site->id, "tcp %s:%u -> %s:%u http %.*s %.*s -> %d", c->peer.client_ip,
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

int echo_conn_read(struct server *srv, struct conn *c)
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

void echo_accept_conns(struct server *srv, struct listener *l)
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
				echo_log(&l->site->id, "accept on port %u: %s", l->port,
					 strerror(errno));
				srv->last_accept_warn = now_ms();
			}
			return;
		}
		if (srv->n_conns >= srv->max_conns) {
			if (now_ms() - srv->last_accept_warn > 1000) {
				echo_log(&l->site->id, "too many connections (%u): refusing",
					 srv->n_conns);
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
			err = echo_epoll_add(srv, fd, EPOLLIN | EPOLLRDHUP, c);
		if (err) {
			echo_log(&l->site->id, "dropping connection on port %u: %s", l->port,
				 strerror(-err));
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

/* Closes timed-out connections, answers stalled sniffs; returns ms until the next deadline. */
int echo_sweep(struct server *srv)
{
	uint64_t now = now_ms(), next = now + 1000;
	struct conn *c, *nx;

	for (c = srv->conns; c; c = nx) {
		nx = c->next;
		if (c->sniff_deadline && now >= c->sniff_deadline && c->state == CONN_READ) {
			if (conn_process(srv, c, true)) {
				echo_conn_close(srv, c);
				continue;
			}
		}
		if (now >= c->deadline) {
			if (!srv->quiet && c->state != CONN_DRAIN)
				echo_log(&c->site->id, "tcp %s:%u: idle timeout, closing",
					 c->peer.client_ip, c->peer.client_port);
			echo_conn_close(srv, c);
			continue;
		}
		if (c->deadline < next)
			next = c->deadline;
		if (c->sniff_deadline && c->sniff_deadline < next)
			next = c->sniff_deadline;
	}
	return next > now ? (int)(next - now) : 0;
}
