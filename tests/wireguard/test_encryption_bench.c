/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Encryption bench in the kernel matrix (suite "encryption-bench", docs/ENCRYPTION-KERNEL.md).
 * For each mode a fresh pair of network namespaces joined by a veth (node-1 192.0.2.1 /
 * pod 10.244.0.10, node-2 192.0.2.2 / pod 10.244.1.10), pod to pod:
 *
 *   plain      routes via the veth, no encryption: the floor
 *   wireguard  kernel WireGuard ciliate_wg0 on both nodes through datapath/encrypt/wg_netlink.c
 *   ipsec      xfrm_ipsec_sync() tunnel mode, rfc4106(gcm(aes)) between the node addresses
 *
 * measured: bulk TCP throughput (BULK_MIB MiB over one connection, node-1 pod -> node-2 pod,
 * ROUNDS rounds, median) and the request rate (sequential connections, each connect, a
 * REQ_LEN-byte request, the same-sized answer, close, for RR_SECS seconds). An encrypted run
 * only counts when the receiving node's counters prove it went through the encryption:
 * WireGuard: node-2's peer rx bytes grew by at least the bytes sent; IPsec: node-2's inbound
 * SA bytes did. It reports numbers and ratios against plain; it does not assert speed.
 * Prints "RESULT pass=N fail=N skip=N"; without kernel WireGuard "SKIP: <reason>", exit 77.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "encrypt/ipsec_keys.h"
#include "encrypt/wg_netlink.h"
#include "encrypt/xfrm.h"
#include "wg_guest.h"

#define BULK_MIB 32u
#define BULK_BYTES ((uint64_t)BULK_MIB << 20)
#define ROUNDS 3
#define RR_SECS 2.0
#define RR_MAX 5000
#define REQ_LEN 100
#define HARD_TIMEOUT_S 540

static const char *KEYS_TEXT = "3+ rfc4106(gcm(aes)) 0x3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f 128\n";

enum { M_PLAIN, M_WG, M_IPSEC, N_MODES };
static const char *mode_name[N_MODES] = { "plain", "wireguard", "ipsec" };

struct result {
	int ran, skipped, failed;
	char why[1200];
	double mbps[ROUNDS], mbps_med;
	double cps;
	unsigned conns;
	uint64_t bulk_sent, rr_bytes;
	uint64_t proof_before, proof_after; /* receiving node's encrypted-bytes counter */
	int proven;
};

static struct result res[N_MODES];
static uint8_t priv1[32], pub1[32], priv2[32], pub2[32];
static struct ipsec_keyset keys;

static void on_alarm(int sig)
{
	static const char m[] = "FAIL: test_encryption_bench exceeded its hard time limit\nRESULT pass=0 fail=1 skip=0\n";

	(void)sig;
	if (write(1, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

/* ---- sockets (blocking, with timeouts) ------------------------------------------------------ */

static int tcp_sock(int ns, const char *addr, unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 20 };
	int one = 1, fd;

	ns_enter(ns);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	inet_pton(AF_INET, addr, &sa.sin_addr);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tcp_connect(int fd, const char *addr, unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	inet_pton(AF_INET, addr, &sa.sin_addr);
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa));
}

/* ---- bulk ------------------------------------------------------------------------------------ */

struct sink {
	int lst;
	uint64_t want, got;
	double t_end;
	int err;
};

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	static char buf[1 << 17];
	int fd, rounds = 0;

	if (!wait_fd(s->lst, POLLIN, 20000)) {
		s->err = ETIMEDOUT;
		return NULL;
	}
	fd = accept(s->lst, NULL, NULL);
	if (fd < 0) {
		s->err = errno;
		return NULL;
	}
	while (s->got < s->want && rounds++ < 10000000) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0) {
			s->err = n < 0 ? errno : EPIPE;
			break;
		}
		s->got += (uint64_t)n;
	}
	s->t_end = now_s();
	close(fd);
	return NULL;
}

/* one round: MB/s (1e6 bytes/s), or < 0 */
static double bulk_round(const struct pair *P, unsigned port, uint64_t *sent, char *why, size_t whylen)
{
	static char buf[1 << 16];
	struct sink s = { .want = BULK_BYTES };
	pthread_t th;
	double t0, mbps = -1;
	int c;

	memset(buf, 0x5a, sizeof(buf));
	s.lst = tcp_sock(P->ns[2], "10.244.1.10", port);
	if (s.lst < 0 || listen(s.lst, 4) < 0) {
		snprintf(why, whylen, "listen 10.244.1.10:%u: %s", port, strerror(errno));
		return -1;
	}
	if (pthread_create(&th, NULL, sink_main, &s) != 0) {
		close(s.lst);
		snprintf(why, whylen, "pthread_create");
		return -1;
	}
	c = tcp_sock(P->ns[1], "10.244.0.10", 0);
	t0 = now_s();
	*sent = 0;
	if (c >= 0 && tcp_connect(c, "10.244.1.10", port) == 0) {
		int guard = 0;

		while (*sent < BULK_BYTES && guard++ < 1000000) {
			size_t n = BULK_BYTES - *sent < sizeof(buf) ? (size_t)(BULK_BYTES - *sent) : sizeof(buf);
			ssize_t w = send(c, buf, n, MSG_NOSIGNAL);

			if (w <= 0)
				break;
			*sent += (uint64_t)w;
		}
		shutdown(c, SHUT_WR);
	} else {
		snprintf(why, whylen, "connect 10.244.0.10 -> 10.244.1.10:%u: %s", port, strerror(errno));
	}
	pthread_join(th, NULL);
	if (c >= 0)
		close(c);
	close(s.lst);
	if (s.got == BULK_BYTES && s.t_end > t0)
		mbps = (double)BULK_BYTES / (s.t_end - t0) / 1e6;
	else if (!why[0])
		snprintf(why, whylen, "bulk: %llu of %llu bytes arrived (%s)", (unsigned long long)s.got,
			 (unsigned long long)BULK_BYTES, strerror(s.err));
	return mbps;
}

/* ---- request rate ---------------------------------------------------------------------------- */

struct server {
	int lst;
	volatile int stop;
	unsigned served;
};

static int read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;
	int guard = 0;

	while (got < len && guard++ < 1000) {
		ssize_t n = recv(fd, buf + got, len - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return got == len ? 0 : -1;
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	char buf[REQ_LEN];
	long guard = 0;

	while (!s->stop && guard++ < 10000000) {
		int fd;

		if (!wait_fd(s->lst, POLLIN, 100))
			continue;
		fd = accept(s->lst, NULL, NULL);
		if (fd < 0)
			continue;
		if (read_full(fd, buf, REQ_LEN) == 0 && send(fd, buf, REQ_LEN, MSG_NOSIGNAL) == REQ_LEN)
			s->served++;
		close(fd);
	}
	return NULL;
}

static double rr_run(const struct pair *P, unsigned port, unsigned *conns, char *why, size_t whylen)
{
	struct server s = { 0 };
	pthread_t th;
	char req[REQ_LEN], resp[REQ_LEN];
	double t0, t;
	unsigned ok = 0, failed = 0, i;

	memset(req, 'r', sizeof(req));
	s.lst = tcp_sock(P->ns[2], "10.244.1.10", port);
	if (s.lst < 0 || listen(s.lst, 128) < 0) {
		snprintf(why, whylen, "listen: %s", strerror(errno));
		return -1;
	}
	if (pthread_create(&th, NULL, server_main, &s) != 0) {
		close(s.lst);
		return -1;
	}
	ns_enter(P->ns[1]);
	t0 = now_s();
	for (i = 0; i < RR_MAX && now_s() - t0 < RR_SECS && failed < 20; i++) {
		int c = tcp_sock(P->ns[1], "10.244.0.10", 0);

		if (c >= 0 && tcp_connect(c, "10.244.1.10", port) == 0 &&
		    send(c, req, REQ_LEN, MSG_NOSIGNAL) == REQ_LEN && read_full(c, resp, REQ_LEN) == 0 &&
		    memcmp(req, resp, REQ_LEN) == 0)
			ok++;
		else
			failed++;
		if (c >= 0)
			close(c);
	}
	t = now_s() - t0;
	s.stop = 1;
	pthread_join(th, NULL);
	close(s.lst);
	*conns = ok;
	if (failed)
		snprintf(why, whylen, "request rate: %u of %u connections failed", failed, ok + failed);
	return failed ? -1 : ok / t;
}

/* ---- the encrypted-bytes counters of node-2 -------------------------------------------------- */

static int counter(int mode, const struct pair *P, uint64_t *v, char *why, size_t whylen)
{
	struct diag d = { { 0 } };

	*v = 0;
	ns_enter(P->ns[2]);
	if (mode == M_WG) {
		struct wg_nl_state st;
		const struct wg_nl_peer_state *p;

		if (wg_nl_get(WG_IFNAME, &st, &d)) {
			snprintf(why, whylen, "wg_nl_get: %s", d.msg);
			return -1;
		}
		p = wg_nl_state_peer(&st, pub1);
		if (p)
			*v = p->rx_bytes;
		wg_nl_state_free(&st);
		if (!p) {
			snprintf(why, whylen, "node-2 has no peer for node-1");
			return -1;
		}
		return 0;
	}
	if (mode == M_IPSEC) {
		static struct ipsec_status st;
		size_t i;

		if (xfrm_ipsec_status(&st, &d)) {
			snprintf(why, whylen, "xfrm_ipsec_status: %s", d.msg);
			return -1;
		}
		for (i = 0; i < st.n_sas; i++)
			if (st.sas[i].dir == XFRM_SA_IN)
				*v += st.sas[i].bytes;
		return 0;
	}
	return 0;
}

/* ---- modes ----------------------------------------------------------------------------------- */

static int ipsec_spec(int node, struct ipsec_sync_spec *s, struct ipsec_peer *p)
{
	memset(s, 0, sizeof(*s));
	memset(p, 0, sizeof(*p));
	inet_pton(AF_INET, node == 1 ? "192.0.2.1" : "192.0.2.2", &s->local_ip);
	inet_pton(AF_INET, node == 1 ? "10.244.0.0" : "10.244.1.0", &s->local_pod_cidr);
	s->local_pod_prefix = 24;
	inet_pton(AF_INET, node == 1 ? "192.0.2.2" : "192.0.2.1", &p->node_ip);
	inet_pton(AF_INET, node == 1 ? "10.244.1.0" : "10.244.0.0", &p->pod_cidr);
	p->pod_prefix = 24;
	s->mode = IPSEC_MODE_TUNNEL;
	s->peers = p;
	s->n_peers = 1;
	s->current = ipsec_keys_find(&keys, 3);
	return s->current ? 0 : -1;
}

/* 0 ready, 1 mode unavailable (skip, why set), -1 failure */
static int setup(int mode, struct pair *P, char *why, size_t whylen)
{
	struct diag d = { { 0 } };
	int e, n;

	if (pair_make(P, why, whylen))
		return -1;
	switch (mode) {
	case M_PLAIN:
		if ((e = pod_route(P, 1, 0)) || (e = pod_route(P, 2, 0)))
			goto route_fail;
		return 0;
	case M_WG:
		for (n = 1; n <= 2; n++)
			if (wg_node_setup(P, n, n == 1 ? priv1 : priv2, n == 1 ? pub2 : pub1, &d)) {
				snprintf(why, whylen, "node-%d: %s", n, d.msg);
				return -1;
			}
		if ((e = pod_route(P, 1, 1)) || (e = pod_route(P, 2, 1)))
			goto route_fail;
		return 0;
	case M_IPSEC:
		ns_enter(P->ns[1]);
		if (xfrm_ipsec_probe(&d)) {
			snprintf(why, whylen, "no ESP over XFRM: %s", d.msg);
			return 1;
		}
		for (n = 1; n <= 2; n++) {
			struct ipsec_sync_spec s;
			struct ipsec_peer p;

			ns_enter(P->ns[n]);
			if (ipsec_spec(n, &s, &p) || xfrm_ipsec_sync(&s, NULL, &d)) {
				snprintf(why, whylen, "node-%d xfrm_ipsec_sync: %s", n, d.msg);
				return -1;
			}
		}
		if ((e = pod_route(P, 1, 0)) || (e = pod_route(P, 2, 0)))
			goto route_fail;
		return 0;
	}
	return -1;
route_fail:
	snprintf(why, whylen, "pod routes: %s", strerror(-e));
	return -1;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v)
{
	double sorted[ROUNDS];

	memcpy(sorted, v, sizeof(sorted));
	qsort(sorted, ROUNDS, sizeof(double), cmp_d);
	return sorted[ROUNDS / 2];
}

static struct pair pairs[N_MODES];
static uint64_t cnt[N_MODES][3]; /* node-2 counter before, after the bulk rounds, after the requests */

/* Every mode is set up first (its own pair of namespaces); the rounds then alternate between
 * the modes (plain, wireguard, ipsec, plain, ...) so that a slow phase of the emulator does not
 * land on one mode only. */
static void run_all(void)
{
	int m, i, warm;

	for (m = 0; m < N_MODES; m++) {
		struct result *r = &res[m];
		int e = setup(m, &pairs[m], r->why, sizeof(r->why));

		if (e) {
			r->skipped = e > 0;
			r->failed = e < 0;
			printf("# %s: %s: %s\n", mode_name[m], e > 0 ? "unavailable" : "setup failed", r->why);
			continue;
		}
		r->ran = 1;
		/* warm-up: ARP, the WireGuard handshake, the first SA use */
		warm = udp_exchange(pairs[m].ns[1], "10.244.0.10", pairs[m].ns[2], "10.244.1.10", 4000, 3,
				    "warm-up", 5000);
		if (warm < 5)
			printf("# %s: warm-up: only %d/6 datagrams\n", mode_name[m], warm);
		if (counter(m, &pairs[m], &cnt[m][0], r->why, sizeof(r->why)))
			r->failed = 1;
	}
	for (i = 0; i < ROUNDS; i++)
		for (m = 0; m < N_MODES; m++) {
			struct result *r = &res[m];
			uint64_t sent = 0;

			if (!r->ran || r->failed)
				continue;
			r->mbps[i] = bulk_round(&pairs[m], 6000 + (unsigned)i, &sent, r->why, sizeof(r->why));
			r->bulk_sent += sent;
			if (r->mbps[i] < 0)
				r->failed = 1;
			else
				printf("# %s: bulk round %d: %.1f MB/s\n", mode_name[m], i + 1, r->mbps[i]);
		}
	for (m = 0; m < N_MODES; m++)
		if (res[m].ran && !res[m].failed) {
			res[m].mbps_med = median(res[m].mbps);
			if (counter(m, &pairs[m], &cnt[m][1], res[m].why, sizeof(res[m].why)))
				res[m].failed = 1;
		}
	{
		double cps[N_MODES][ROUNDS];

		for (i = 0; i < ROUNDS; i++)
			for (m = 0; m < N_MODES; m++) {
				struct result *r = &res[m];
				unsigned conns = 0;

				if (!r->ran || r->failed)
					continue;
				cps[m][i] = rr_run(&pairs[m], 6100 + (unsigned)i, &conns, r->why, sizeof(r->why));
				r->conns += conns;
				if (cps[m][i] < 0)
					r->failed = 1;
				else
					printf("# %s: request round %d: %u connections, %.1f per second\n", mode_name[m],
					       i + 1, conns, cps[m][i]);
			}
		for (m = 0; m < N_MODES; m++)
			if (res[m].ran && !res[m].failed)
				res[m].cps = median(cps[m]);
	}
	for (m = 0; m < N_MODES; m++) {
		struct result *r = &res[m];
		uint64_t *c = cnt[m];

		if (!r->ran || r->failed)
			continue;
		if (counter(m, &pairs[m], &c[2], r->why, sizeof(r->why))) {
			r->failed = 1;
			continue;
		}
		r->proof_before = c[0];
		r->proof_after = c[2];
		r->rr_bytes = (uint64_t)r->conns * REQ_LEN;
		if (m == M_PLAIN) {
			r->proven = 1;
			continue;
		}
		r->proven = c[1] - c[0] >= r->bulk_sent && r->bulk_sent == (uint64_t)ROUNDS * BULK_BYTES &&
			    c[2] - c[1] >= r->rr_bytes;
		printf("# %s: node-2's %s grew by %llu during the bulk rounds (%llu bytes sent) and by %llu "
		       "during the %u requests (%llu request bytes)\n",
		       mode_name[m], m == M_WG ? "peer rx bytes" : "inbound SA bytes",
		       (unsigned long long)(c[1] - c[0]), (unsigned long long)r->bulk_sent,
		       (unsigned long long)(c[2] - c[1]), r->conns, (unsigned long long)r->rr_bytes);
		if (!r->proven) {
			snprintf(r->why, sizeof(r->why), "not proven encrypted: node-2's counter grew by %llu / %llu",
				 (unsigned long long)(c[1] - c[0]), (unsigned long long)(c[2] - c[1]));
			r->failed = 1;
		}
	}
	for (m = 0; m < N_MODES; m++) {
		struct diag d = { { 0 } };

		if (!res[m].ran)
			continue;
		for (i = 1; i <= 2; i++) {
			ns_enter(pairs[m].ns[i]);
			if (m == M_WG)
				wg_nl_link_del(WG_IFNAME, &d);
			if (m == M_IPSEC)
				xfrm_ipsec_flush_ours(NULL, &d);
			close(pairs[m].ns[i]);
		}
	}
}

/* which implementations the kernel uses: /proc/crypto drivers, x86 SIMD modules present */
static void crypto_note(void)
{
	static const char *names[] = { "rfc4106(gcm(aes))", "gcm(aes)", "aes", "chacha20", "poly1305" };
	static const char *mods[] = { "aesni_intel", "ghash_clmulni_intel", "chacha_x86_64", "poly1305_x86_64",
				      "curve25519_x86_64" };
	char line[256], name[128] = "";
	FILE *f = fopen("/proc/crypto", "r");
	size_t i;
	int lines = 0;

	if (f) {
		while (lines++ < 20000 && fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (strncmp(line, "name", 4) == 0 && strchr(line, ':'))
				snprintf(name, sizeof(name), "%s", strchr(line, ':') + 2);
			else if (strncmp(line, "driver", 6) == 0 && strchr(line, ':'))
				for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
					if (strcmp(name, names[i]) == 0)
						printf("# crypto: %s -> driver %s\n", name, strchr(line, ':') + 2);
		}
		fclose(f);
	}
	printf("# x86 crypto modules:");
	for (i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		char path[96];

		snprintf(path, sizeof(path), "/sys/module/%s", mods[i]);
		printf(" %s=%s", mods[i], access(path, F_OK) == 0 ? "yes" : "no");
	}
	printf("\n");
}

int main(void)
{
	struct diag d = { { 0 } };
	struct utsname u;
	int ns0, e, m, pass = 0, fail = 0, skip = 0;
	double t0 = now_s();

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(HARD_TIMEOUT_S);
	uname(&u);

	ns0 = ns_new();
	if (ns0 < 0) {
		printf("SKIP: cannot create a network namespace (%s): needs root / CAP_SYS_ADMIN\n", strerror(-ns0));
		return 77;
	}
	e = wg_nl_link_add(WG_IFNAME, WG_MTU, &d);
	if (e == -EOPNOTSUPP) {
		printf("SKIP: %s\nRESULT pass=0 fail=0 skip=1\n", d.msg);
		return 77;
	}
	close(ns0);
	if (x25519_new(priv1, pub1) || x25519_new(priv2, pub2) ||
	    ipsec_keys_parse(KEYS_TEXT, strlen(KEYS_TEXT), "bench-keys", &keys, &d)) {
		printf("FAIL: keys: %s\nRESULT pass=0 fail=1 skip=0\n", d.msg);
		return 1;
	}
	printf("# encryption bench, kernel %s: bulk TCP %u MiB x %d rounds (median), sequential "
	       "request/response connections (%d bytes each way) for %.0f s x %d rounds (median); "
	       "pod to pod over one veth; rounds alternate between the modes\n",
	       u.release, BULK_MIB, ROUNDS, REQ_LEN, RR_SECS, ROUNDS);
	run_all();
	crypto_note();

	printf("#\n# %-10s %10s %-24s %8s %9s %8s  %s\n", "mode", "bulk MB/s", "(rounds)", "x plain", "conn/s",
	       "x plain", "encrypted (node-2 counter)");
	for (m = 0; m < N_MODES; m++) {
		struct result *r = &res[m];
		char rounds[64], proof[160];

		if (!r->ran || r->failed) {
			printf("# %-10s %s: %s\n", mode_name[m], r->skipped ? "n/a" : "FAILED", r->why);
			if (r->skipped)
				skip++;
			else
				fail++;
			if (!(r->ran && r->failed && r->proven == 0 && r->mbps_med > 0))
				continue;
		}
		snprintf(rounds, sizeof(rounds), "(%.1f %.1f %.1f)", r->mbps[0], r->mbps[1], r->mbps[2]);
		if (m == M_PLAIN)
			snprintf(proof, sizeof(proof), "- (floor)");
		else
			snprintf(proof, sizeof(proof), "%s: +%llu B for %llu B sent", r->proven ? "yes" : "NO",
				 (unsigned long long)(r->proof_after - r->proof_before),
				 (unsigned long long)(r->bulk_sent + r->rr_bytes));
		printf("# %-10s %10.1f %-24s %8.2f %9.1f %8.2f  %s\n", mode_name[m], r->mbps_med, rounds,
		       res[M_PLAIN].mbps_med > 0 ? r->mbps_med / res[M_PLAIN].mbps_med : 0, r->cps,
		       res[M_PLAIN].cps > 0 ? r->cps / res[M_PLAIN].cps : 0, proof);
		printf("BENCH kernel=%s mode=%s bulk_mbps=%.1f bulk_ratio=%.3f conn_per_s=%.1f conn_ratio=%.3f "
		       "encrypted=%s\n",
		       u.release, mode_name[m], r->mbps_med,
		       res[M_PLAIN].mbps_med > 0 ? r->mbps_med / res[M_PLAIN].mbps_med : 0, r->cps,
		       res[M_PLAIN].cps > 0 ? r->cps / res[M_PLAIN].cps : 0,
		       m == M_PLAIN ? "no" : r->proven ? "proven" : "NOT-PROVEN");
		if (r->ran && !r->failed)
			pass++;
	}
	printf("# total %.1f s\n", now_s() - t0);
	printf("RESULT pass=%d fail=%d skip=%d\n", pass, fail, skip);
	return fail ? 1 : 0;
}
