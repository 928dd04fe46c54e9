/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-echo: the echo server every simulated pod and external host runs. One process
 * serves all its TCP and UDP ports from one epoll loop; every request gets one JSON answer
 * naming the server's identity and the addresses it saw (see docs/SIMULATOR.md). With
 * --sites one process serves many pods ("sites"), each listening in its own network
 * namespace and answering with its own identity.
 *
 * This file: main, signals, the epoll loop and cleanup; echo.h lists the other files.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "echo.h"

int echo_epoll_add(struct server *srv, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int setup_signals(struct server *srv)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->sigfd < 0)
		return -errno;
	srv->sig_kind = SRC_SIGNAL;
	return echo_epoll_add(srv, srv->sigfd, EPOLLIN, &srv->sig_kind);
}

static void dispatch(struct server *srv, struct epoll_event *ev)
{
	enum src_kind kind = *(enum src_kind *)ev->data.ptr;
	struct signalfd_siginfo si;
	struct conn *c;
	int err = 0;

	switch (kind) {
	case SRC_SIGNAL:
		if (read(srv->sigfd, &si, sizeof(si)) == sizeof(si)) {
			echo_log(srv->log_id, "signal %u: exiting", si.ssi_signo);
			srv->stop = true;
		}
		break;
	case SRC_TCP_LISTEN:
		echo_accept_conns(srv, ev->data.ptr);
		break;
	case SRC_UDP:
		echo_serve_udp(srv, ev->data.ptr);
		break;
	case SRC_CONN:
		c = ev->data.ptr;
		if (c->state == CONN_WRITE && (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			err = echo_conn_flush(srv, c);
		else if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			err = echo_conn_read(srv, c);
		if (err)
			echo_conn_close(srv, c);
		break;
	}
}

static int run(struct server *srv)
{
	struct epoll_event evs[64];
	int n, i, timeout;

	while (!srv->stop) {
		timeout = echo_sweep(srv);
		n = epoll_wait(srv->epfd, evs, 64, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		/* only a connection's own event closes it: no stale pointers in one batch */
		for (i = 0; i < n; i++)
			dispatch(srv, &evs[i]);
	}
	return 0;
}

static void cleanup(struct server *srv)
{
	struct listener *l;
	unsigned int i;

	while (srv->conns)
		echo_conn_close(srv, srv->conns);
	while ((l = srv->listeners)) {
		srv->listeners = l->next;
		close(l->fd);
		free(l);
	}
	for (i = 0; i < srv->n_sites; i++) {
		free(srv->sites[i].tcp.v);
		free(srv->sites[i].udp.v);
	}
	free(srv->sites);
	free(srv->sites_text);
	if (srv->home_ns >= 0)
		close(srv->home_ns);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	if (srv->epfd >= 0)
		close(srv->epfd);
}

/* Opens every site's listeners, then writes the pidfile; 0 or -errno (reported). */
static int start(struct server *srv)
{
	int err;

	err = echo_fit_fd_limit(srv);
	if (err)
		return err;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		err = -errno;
		echo_log(srv->log_id, "epoll: %s", strerror(-err));
		return err;
	}
	err = setup_signals(srv);
	if (err) {
		echo_log(srv->log_id, "signals: %s", strerror(-err));
		return err;
	}
	err = echo_open_sites(srv);
	if (err)
		return err;
	if (srv->pidfile) {
		err = echo_write_pidfile(srv->pidfile);
		if (err) {
			echo_log(srv->log_id, "pidfile %s: %s", srv->pidfile, strerror(-err));
			return err;
		}
	}
	return 0;
}

static void log_serving(const struct server *srv)
{
	const struct site *s = &srv->sites[0];

	if (srv->sites_file)
		echo_log(NULL, "%s: serving %u site(s) on %u socket(s)", srv->sites_file,
			 srv->n_sites, srv->n_listeners);
	else
		echo_log(&s->id, "node %s: serving %u tcp and %u udp port(s)%s%s",
			 s->id.node ? s->id.node : "-", s->tcp.n, s->udp.n,
			 s->bind_addr ? " on " : "", s->bind_addr ? s->bind_addr : "");
}

int main(int argc, char **argv)
{
	struct server *srv;
	int err, rc;

	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		fprintf(stderr, "ciliate-echo: out of memory\n");
		return 1;
	}
	srv->epfd = srv->sigfd = srv->home_ns = -1;
	srv->idle_ms = DEFAULT_IDLE_MS;
	srv->max_conns = DEFAULT_MAX_CONNS;
	rc = echo_configure(srv, argc, argv);
	if (rc >= 0)
		goto out;
	rc = 1;
	if (start(srv))
		goto out;
	log_serving(srv);
	err = run(srv);
	if (err)
		echo_log(srv->log_id, "event loop: %s", strerror(-err));
	rc = err ? 1 : 0;
	if (srv->pidfile)
		unlink(srv->pidfile);
out:
	cleanup(srv);
	free(srv);
	return rc;
}
