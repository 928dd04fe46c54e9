/* SPDX-License-Identifier: Apache-2.0 */
/* Client side of the agent API and the shared naming conventions (libc + jansson only). */
#include "api.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void agent_sock_path(const char *node, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s/%s", AGENT_RUN_ROOT, node, AGENT_SOCK_NAME);
}

void agent_lxc_ifname(const char *ns_slash_name, char *buf, size_t size)
{
	uint32_t h = 2166136261u;
	const unsigned char *c;

	for (c = (const unsigned char *)ns_slash_name; *c; c++) {
		h ^= *c;
		h *= 16777619u;
	}
	snprintf(buf, size, "lxc%08x", h);
}

void agent_mac_format(uint8_t prefix, uint32_t ip, char *buf, size_t size)
{
	const uint8_t *b = (const uint8_t *)&ip;

	snprintf(buf, size, "%02x:58:%02x:%02x:%02x:%02x", prefix, b[0], b[1], b[2], b[3]);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(char *err, size_t errsize, int code, const char *fmt, const char *a)
{
	if (err)
		snprintf(err, errsize, fmt, a, strerror(-code));
	return code;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int agent_call(const char *sock_path, json_t *req, int timeout_ms, json_t **resp, char *err,
	       size_t errsize)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : AGENT_DEFAULT_TIMEOUT_MS);
	char *line = NULL, *out = NULL;
	size_t len = 0, cap = 0, off = 0, olen;
	json_error_t je;
	ssize_t r;
	int fd, rc;

	*resp = NULL;
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return fail(err, errsize, -ENAMETOOLONG, "agent socket %s: %s", sock_path);
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(err, errsize, -errno, "socket for %s: %s", sock_path);
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINPROGRESS)
			break;
		if (errno != EAGAIN || now_ms() >= deadline) { /* EAGAIN: backlog full */
			rc = fail(err, errsize, -errno, "connecting to the agent at %s: %s",
				  sock_path);
			goto out;
		}
		usleep(10000);
	}
	out = json_dumps(req, JSON_COMPACT);
	if (!out) {
		rc = fail(err, errsize, -ENOMEM, "encoding the request for %s: %s", sock_path);
		goto out;
	}
	olen = strlen(out);
	out[olen++] = '\n'; /* json_dumps leaves room: replace the NUL, length is tracked */
	while (off < olen) {
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc)
			goto io_fail;
		r = send(fd, out + off, olen - off, MSG_NOSIGNAL);
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			goto io_fail;
		}
		if (r > 0)
			off += (size_t)r;
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *n;

			if (cap >= AGENT_LINE_MAX) {
				rc = -EPROTO;
				goto io_fail;
			}
			cap = cap ? cap * 2 : 8192;
			n = realloc(line, cap);
			if (!n) {
				rc = -ENOMEM;
				goto io_fail;
			}
			line = n;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc)
			goto io_fail;
		r = recv(fd, line + len, cap - len - 1, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r < 0) {
			rc = -errno;
			goto io_fail;
		}
		if (r == 0) {
			rc = -EPROTO;
			goto io_fail;
		}
		len += (size_t)r;
		line[len] = '\0';
		if (memchr(line + len - (size_t)r, '\n', (size_t)r))
			break;
	}
	*strchr(line, '\n') = '\0';
	*resp = json_loads(line, 0, &je);
	if (!*resp || !json_is_object(*resp)) {
		json_decref(*resp);
		*resp = NULL;
		rc = fail(err, errsize, -EPROTO, "malformed response from the agent at %s: %s",
			  sock_path);
		goto out;
	}
	rc = 0;
	goto out;
io_fail:
	fail(err, errsize, rc, "talking to the agent at %s: %s", sock_path);
out:
	free(out);
	free(line);
	close(fd);
	return rc;
}
