/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WireGuard device's keys, its userspace implementation and its UAPI socket
 * (wg_device.h). Keys are X25519 through OpenSSL; the UAPI is the line protocol wireguard-go
 * serves on /run/wireguard/<ifname>.sock (keys in hex there, base64 everywhere users look).
 */
#include "agent/wg_device.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define WG_SPAWN_WAIT_MS 5000 /* wireguard-go must answer on its socket within this */
#define WG_UAPI_TIMEOUT_MS 2000
#define WG_UAPI_MAX (1u << 20)

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void wg_key_to_b64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN + 1])
{
	EVP_EncodeBlock((unsigned char *)out, key, WG_KEY_LEN);
	out[WG_KEY_B64_LEN] = '\0';
}

int wg_key_from_b64(const char *s, uint8_t key[WG_KEY_LEN])
{
	unsigned char buf[WG_KEY_LEN + 3];

	if (strlen(s) != WG_KEY_B64_LEN || s[WG_KEY_B64_LEN - 1] != '=' ||
	    s[WG_KEY_B64_LEN - 2] == '=')
		return -EINVAL;
	if (EVP_DecodeBlock(buf, (const unsigned char *)s, WG_KEY_B64_LEN) != WG_KEY_LEN + 1)
		return -EINVAL;
	memcpy(key, buf, WG_KEY_LEN);
	return 0;
}

void wg_key_to_hex(const uint8_t key[WG_KEY_LEN], char out[2 * WG_KEY_LEN + 1])
{
	size_t i;

	for (i = 0; i < WG_KEY_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", key[i]);
}

static int key_from_hex(const char *s, uint8_t key[WG_KEY_LEN])
{
	size_t i;

	if (strlen(s) != 2 * WG_KEY_LEN)
		return -EINVAL;
	for (i = 0; i < WG_KEY_LEN; i++) {
		unsigned int b;

		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -EINVAL;
		key[i] = (uint8_t)b;
	}
	return 0;
}

int wg_key_public(const uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN], struct diag *d)
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WG_KEY_LEN);
	size_t len = WG_KEY_LEN;
	int ok;

	if (!k)
		return diag_fail_errno(d, -EINVAL, "X25519: not a private key");
	ok = EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == WG_KEY_LEN;
	EVP_PKEY_free(k);
	return ok ? 0 : diag_fail_errno(d, -EINVAL, "X25519: no public key");
}

int wg_key_load_or_create(const char *path, uint8_t priv[WG_KEY_LEN], bool *created,
			  struct diag *d)
{
	char buf[WG_KEY_B64_LEN + 8], tmp[512];
	ssize_t n;
	int fd;

	*created = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0)
			return diag_fail_errno(d, -errno, "%s: %s", path, strerror(errno));
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		if (wg_key_from_b64(buf, priv))
			return diag_fail_errno(d, -EINVAL, "%s: not a WireGuard private key (base64 "
					       "of 32 bytes)", path);
		return 0;
	}
	if (errno != ENOENT)
		return diag_fail_errno(d, -errno, "%s: %s", path, strerror(errno));
	if (RAND_bytes(priv, WG_KEY_LEN) != 1)
		return diag_fail_errno(d, -EIO, "no random bytes for a WireGuard key");
	/* X25519's clamping, as `wg genkey` stores it */
	priv[0] &= 248;
	priv[31] = (uint8_t)((priv[31] & 127) | 64);
	wg_key_to_b64(priv, buf);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return diag_fail_errno(d, -errno, "%s: %s", tmp, strerror(errno));
	strcat(buf, "\n");
	n = write(fd, buf, strlen(buf));
	if (n != (ssize_t)strlen(buf) || fsync(fd) || close(fd) || rename(tmp, path)) {
		unlink(tmp);
		return diag_fail_errno(d, -EIO, "%s: cannot write the key", path);
	}
	*created = true;
	return 0;
}

void wg_sock_path(const char *dir, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.sock", dir, WG_IFNAME);
}

static int uapi_connect(const char *sock, struct diag *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return diag_fail_errno(d, -ENAMETOOLONG, "%s: path too long", sock);
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return diag_fail_errno(d, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		close(fd);
		return diag_fail_errno(d, -e, "WireGuard UAPI %s: %s", sock, strerror(e));
	}
	return fd;
}

/* Sends req, reads the answer up to the blank line ending it (bounded in size and time). */
static int uapi_exchange(const char *sock, const char *req, char **resp, struct diag *d)
{
	int64_t deadline = mono_ms() + WG_UAPI_TIMEOUT_MS;
	size_t len = 0, cap = 4096, off = 0, rlen = strlen(req);
	char *buf;
	int fd;

	fd = uapi_connect(sock, d);
	if (fd < 0)
		return fd;
	while (off < rlen) {
		ssize_t n = send(fd, req + off, rlen - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return diag_fail_errno(d, -EIO, "WireGuard UAPI %s: write: %s", sock,
					       strerror(errno));
		}
		off += (size_t)n;
	}
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - mono_ms();
		ssize_t n;

		buf[len] = '\0';
		if (len >= 2 && !strcmp(buf + len - 2, "\n\n"))
			break;
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			free(buf);
			close(fd);
			return diag_fail_errno(d, -ETIMEDOUT, "WireGuard UAPI %s: no answer within %d ms",
					       sock, WG_UAPI_TIMEOUT_MS);
		}
		if (len + 1 >= cap) {
			char *nb = cap < WG_UAPI_MAX ? realloc(buf, cap * 2) : NULL;

			if (!nb) {
				free(buf);
				close(fd);
				return diag_fail_errno(d, -E2BIG, "WireGuard UAPI %s: answer too long",
						       sock);
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* closed: what came is the answer */
		len += (size_t)n;
	}
	close(fd);
	*resp = buf;
	return 0;
}

/* The errno=N line of an answer (-EPROTO when it has none). */
static int uapi_errno(const char *resp)
{
	const char *e = strstr(resp, "errno=");

	if (!e || (e != resp && e[-1] != '\n'))
		return -EPROTO;
	return -atoi(e + 6);
}

int wg_uapi_set(const char *sock, const char *body, struct diag *d)
{
	size_t len = strlen(body) + 16;
	char *req = malloc(len), *resp = NULL;
	int err;

	if (!req)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	snprintf(req, len, "set=1\n%s\n", body);
	err = uapi_exchange(sock, req, &resp, d);
	free(req);
	if (err)
		return err;
	err = uapi_errno(resp);
	free(resp);
	if (err)
		return diag_fail_errno(d, err < 0 ? err : -EPROTO,
				       "WireGuard UAPI %s: set failed (errno=%d)", sock, -err);
	return 0;
}

int wg_uapi_set_config(const char *sock, const struct wg_nl_config *c, struct diag *d)
{
	char hex[2 * WG_KEY_LEN + 1], ip[INET_ADDRSTRLEN];
	size_t i, j, size = 128, len = 0;
	char *body;
	int err;

	for (i = 0; i < c->n_peers; i++)
		size += 256 + c->peers[i].n_allowed_ips * 48;
	body = calloc(1, size);
	if (!body)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
#define ADD(...) (len += (size_t)snprintf(body + len, size - len, __VA_ARGS__))
	if (c->has_private_key) {
		wg_key_to_hex(c->private_key, hex);
		ADD("private_key=%s\n", hex);
	}
	if (c->listen_port >= 0)
		ADD("listen_port=%d\n", c->listen_port);
	if (c->replace_peers)
		ADD("replace_peers=true\n");
	for (i = 0; i < c->n_peers; i++) {
		const struct wg_nl_peer *p = &c->peers[i];

		wg_key_to_hex(p->public_key, hex);
		ADD("public_key=%s\n", hex);
		if (p->remove) {
			ADD("remove=true\n");
			continue;
		}
		if (p->update_only)
			ADD("update_only=true\n");
		if (p->has_endpoint)
			ADD("endpoint=%s:%u\n", inet_ntop(AF_INET, &p->endpoint, ip, sizeof(ip)),
			    p->endpoint_port);
		if (p->keepalive >= 0)
			ADD("persistent_keepalive_interval=%d\n", p->keepalive);
		if (p->replace_allowed_ips)
			ADD("replace_allowed_ips=true\n");
		for (j = 0; j < p->n_allowed_ips; j++)
			ADD("allowed_ip=%s/%u\n",
			    inet_ntop(AF_INET, &p->allowed_ips[j].ip, ip, sizeof(ip)),
			    p->allowed_ips[j].prefix);
	}
#undef ADD
	err = wg_uapi_set(sock, body, d);
	free(body);
	return err;
}

int wg_dev_state_from_nl(const struct wg_nl_state *nl, struct wg_dev_state *st)
{
	size_t i, j;

	memset(st, 0, sizeof(*st));
	st->listen_port = nl->listen_port;
	/* the kernel never gives the private key back: has_private_key and the public key say
	 * which one it holds (the caller compares public keys) */
	st->has_private_key = false;
	st->peers = nl->n_peers ? calloc(nl->n_peers, sizeof(*st->peers)) : NULL;
	if (nl->n_peers && !st->peers)
		return -ENOMEM;
	for (i = 0; i < nl->n_peers; i++) {
		const struct wg_nl_peer_state *p = &nl->peers[i];
		struct wg_peer_conf *q = &st->peers[i];

		memcpy(q->pub, p->public_key, WG_KEY_LEN);
		if (p->endpoint_family == AF_INET) {
			q->endpoint_ip = p->endpoint.s_addr;
			q->endpoint_port = p->endpoint_port;
		}
		for (j = 0; j < p->n_allowed_ips && q->nallowed < WG_ALLOWED_MAX; j++) {
			if (p->allowed_ips[j].family != AF_INET)
				continue;
			q->allowed[q->nallowed] = p->allowed_ips[j].ip.s_addr;
			q->allowed_len[q->nallowed++] = p->allowed_ips[j].prefix;
		}
		q->handshake_sec = p->last_handshake_sec;
		q->rx_bytes = p->rx_bytes;
		q->tx_bytes = p->tx_bytes;
	}
	st->npeers = nl->n_peers;
	return 0;
}

void wg_dev_state_free(struct wg_dev_state *s)
{
	free(s->peers);
	memset(s, 0, sizeof(*s));
}

static int parse_endpoint(const char *v, struct wg_peer_conf *p)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strrchr(v, ':');

	if (!colon || (size_t)(colon - v) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, v, (size_t)(colon - v));
	ip[colon - v] = '\0';
	if (inet_pton(AF_INET, ip, &p->endpoint_ip) != 1)
		return -EINVAL; /* IPv6 endpoints: not used by ciliate */
	p->endpoint_port = (uint16_t)atoi(colon + 1);
	return 0;
}

static void parse_allowed(const char *v, struct wg_peer_conf *p)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = strchr(v, '/');
	uint32_t a;

	if (!slash || (size_t)(slash - v) >= sizeof(ip) || p->nallowed >= WG_ALLOWED_MAX)
		return;
	memcpy(ip, v, (size_t)(slash - v));
	ip[slash - v] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return;
	p->allowed[p->nallowed] = a;
	p->allowed_len[p->nallowed++] = (uint8_t)atoi(slash + 1);
}

int wg_uapi_get(const char *sock, struct wg_dev_state *st, struct diag *d)
{
	char *resp = NULL, *line, *save = NULL;
	struct wg_peer_conf *cur = NULL;
	int err;

	memset(st, 0, sizeof(*st));
	err = uapi_exchange(sock, "get=1\n\n", &resp, d);
	if (err)
		return err;
	err = uapi_errno(resp);
	if (err) {
		free(resp);
		return diag_fail_errno(d, -EPROTO, "WireGuard UAPI %s: get failed", sock);
	}
	for (line = strtok_r(resp, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		const char *k = line, *v;

		if (!eq)
			continue;
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(k, "private_key")) {
			st->has_private_key = !key_from_hex(v, st->private_key);
		} else if (!strcmp(k, "listen_port")) {
			st->listen_port = (unsigned int)atoi(v);
		} else if (!strcmp(k, "public_key")) {
			struct wg_peer_conf *np = realloc(st->peers, (st->npeers + 1) * sizeof(*np));

			if (!np) {
				free(resp);
				wg_dev_state_free(st);
				return diag_fail_errno(d, -ENOMEM, "out of memory");
			}
			st->peers = np;
			cur = &st->peers[st->npeers++];
			memset(cur, 0, sizeof(*cur));
			key_from_hex(v, cur->pub);
		} else if (cur && !strcmp(k, "endpoint")) {
			parse_endpoint(v, cur);
		} else if (cur && !strcmp(k, "allowed_ip")) {
			parse_allowed(v, cur);
		} else if (cur && !strcmp(k, "last_handshake_time_sec")) {
			cur->handshake_sec = strtoll(v, NULL, 10);
		} else if (cur && !strcmp(k, "rx_bytes")) {
			cur->rx_bytes = strtoull(v, NULL, 10);
		} else if (cur && !strcmp(k, "tx_bytes")) {
			cur->tx_bytes = strtoull(v, NULL, 10);
		}
	}
	free(resp);
	return 0;
}

/* In the child: a private mount namespace where dir is /run/wireguard, then wireguard-go. */
static void __attribute__((noreturn)) child_exec(const char *dir, int logfd)
{
	sigset_t none;
	int fd;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the agent blocks the signals it reads */
	setsid(); /* it outlives an agent restart, like the pinned maps */
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		dprintf(logfd, "ciliate-agent: private mount namespace: %s\n", strerror(errno));
		_exit(126);
	}
	mkdir("/run/wireguard", 0755);
	if (mount(dir, "/run/wireguard", NULL, MS_BIND, NULL)) {
		dprintf(logfd, "ciliate-agent: bind %s on /run/wireguard: %s\n", dir,
			strerror(errno));
		_exit(126);
	}
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
	dup2(logfd, 1);
	dup2(logfd, 2);
	for (fd = 3; fd < 1024; fd++)
		close(fd);
	/* wireguard-go refuses to run where the kernel has WireGuard unless told: the agent
	 * only starts it where creating a kernel device failed */
	setenv("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1", 1);
	setenv("LOG_LEVEL", "error", 1);
	execlp(getenv("CILIATE_WIREGUARD_GO") ? getenv("CILIATE_WIREGUARD_GO") : "wireguard-go",
	       "wireguard-go", "-f", WG_IFNAME, (char *)NULL);
	dprintf(2, "ciliate-agent: exec wireguard-go: %s\n", strerror(errno));
	_exit(127);
}

pid_t wg_go_spawn(const char *dir, struct diag *d)
{
	char log[512], sock[512];
	int64_t deadline;
	pid_t pid;
	int logfd, status;

	snprintf(log, sizeof(log), "%s/wireguard-go.log", dir);
	wg_sock_path(dir, sock, sizeof(sock));
	unlink(sock);
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		return diag_fail_errno(d, -errno, "%s: %s", log, strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(logfd);
		return diag_fail_errno(d, -errno, "fork: %s", strerror(errno));
	}
	if (pid == 0)
		child_exec(dir, logfd);
	close(logfd);
	deadline = mono_ms() + WG_SPAWN_WAIT_MS;
	for (;;) {
		struct diag quiet = { 0 };
		int fd;

		if (waitpid(pid, &status, WNOHANG) == pid)
			return diag_fail_errno(d, -EIO, "wireguard-go exited (status %d) before "
					       "serving its socket; see %s", status, log);
		fd = uapi_connect(sock, &quiet);
		if (fd >= 0) {
			close(fd);
			return pid;
		}
		if (mono_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return diag_fail_errno(d, -ETIMEDOUT, "wireguard-go did not serve %s within "
					       "%d ms; see %s", sock, WG_SPAWN_WAIT_MS, log);
		}
		usleep(20000);
	}
}
