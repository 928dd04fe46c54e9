/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy change to enforcement on every node (tests/bench/bench_store_sim.sh, docs/
 * PERFORMANCE.md "Store operations"): runs `ciliate apply -f FILE --store URI`, reads the
 * applied object's mod_revision R from the store, then asks every given node's agent for its
 * status (the agent API's "status" op over its unix socket) until its modelRevision — the
 * store revision whose model the agent's maps and attachments reflect, set only when a
 * reconcile has written them — is at least R. One JSON line:
 *
 *   {"rev":R,"apply_ms":A,"all_ms":T,"nodes_ms":[t1,t2,...]}
 *
 * all_ms and nodes_ms count from just before the apply process starts; apply_ms is how long
 * the apply process ran. Agents are asked in turn, each answer costing one round trip (well
 * under a millisecond when the agent is idle; an agent answers after a reconcile it is
 * running), with a 1 ms sleep between rounds; at most 30 s.
 *
 * Usage: enforce_wait CLI URI FILE KEY AGENT_NODE...   (AGENT_NODE: the name under
 * /run/ciliate/, e.g. cil-TAG-node-1)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/api.h"
#include "store/store.h"

#define MAX_NODES 64
#define LIMIT_MS  30000

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int64_t model_revision(const char *sock)
{
	json_t *req = json_pack("{s:s}", "op", AGENT_OP_STATUS), *resp = NULL, *v;
	char err[256];
	int64_t rev = -1;

	if (!req)
		return -1;
	if (agent_call(sock, req, 5000, &resp, err, sizeof(err)) == 0) {
		v = json_object_get(resp, "modelRevision");
		if (json_is_true(json_object_get(resp, "ok")) && json_is_integer(v))
			rev = json_integer_value(v);
		json_decref(resp);
	}
	json_decref(req);
	return rev;
}

int main(int argc, char **argv)
{
	struct diag d = {{0}};
	char socks[MAX_NODES][256];
	double t0, t_apply, done[MAX_NODES], last = 0;
	struct store_kv kv;
	struct store *s;
	int i, n, left, status;
	int64_t r;
	pid_t pid;

	if (argc < 6 || argc - 5 > MAX_NODES) {
		fprintf(stderr, "usage: enforce_wait CLI URI FILE KEY AGENT_NODE...\n");
		return 2;
	}
	n = argc - 5;
	for (i = 0; i < n; i++) {
		agent_sock_path(argv[5 + i], socks[i], sizeof(socks[i]));
		done[i] = -1;
	}
	if (store_open(argv[2], &s, &d)) {
		fprintf(stderr, "enforce_wait: %s\n", d.msg);
		return 1;
	}
	t0 = now_ms();
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0)
			dup2(fd, 1);
		execl(argv[1], argv[1], "apply", "-f", argv[3], "--store", argv[2], (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "enforce_wait: %s apply -f %s failed\n", argv[1], argv[3]);
		return 1;
	}
	t_apply = now_ms();
	if (store_get(s, argv[4], &kv, &d)) {
		fprintf(stderr, "enforce_wait: %s\n", d.msg);
		return 1;
	}
	r = kv.mod_revision;
	store_kv_free(&kv);
	store_close(s);
	for (left = n; left && now_ms() - t0 < LIMIT_MS;) {
		for (i = 0; i < n; i++) {
			if (done[i] >= 0)
				continue;
			if (model_revision(socks[i]) >= r) {
				done[i] = now_ms() - t0;
				if (done[i] > last)
					last = done[i];
				left--;
			}
		}
		if (left)
			usleep(1000);
	}
	if (left) {
		fprintf(stderr, "enforce_wait: %d of %d agents below revision %lld after %d ms\n", left,
			n, (long long)r, LIMIT_MS);
		return 1;
	}
	printf("{\"rev\":%lld,\"apply_ms\":%.2f,\"all_ms\":%.2f,\"nodes_ms\":[", (long long)r,
	       t_apply - t0, last);
	for (i = 0; i < n; i++)
		printf("%s%.2f", i ? "," : "", done[i]);
	printf("]}\n");
	return 0;
}
