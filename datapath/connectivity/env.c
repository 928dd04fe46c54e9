/* SPDX-License-Identifier: Apache-2.0 */
/* The cluster under test: a simulated cluster's state file, or this host's agent. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/api.h"
#include "cli/cli.h"
#include "cli/cluster_opt.h"
#include "ct.h"
#include "store/store.h"

long long ct_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *ct_agent(const struct ct_node *n, const char *op, json_t *req, int timeout_ms, char *err,
		 size_t errsize)
{
	json_t *resp = NULL;
	char e[512] = "";

	if (!req)
		req = json_object();
	json_object_set_new(req, "op", json_string(op));
	if (agent_call(n->sock, req, timeout_ms, &resp, e, sizeof(e))) {
		snprintf(err, errsize, "agent of %s (%s): %s: %s", n->name, n->sock, op,
			 *e ? e : "no answer");
		json_decref(req);
		return NULL;
	}
	json_decref(req);
	if (!json_is_true(json_object_get(resp, "ok"))) {
		snprintf(err, errsize, "agent of %s: %s: %s", n->name, op,
			 json_string_value(json_object_get(resp, "error")) ?: "failed");
		json_decref(resp);
		return NULL;
	}
	return resp;
}

static void bin_dir(char *out, size_t size)
{
	char self[PATH_MAX], *slash;
	ssize_t r = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (r <= 0) {
		snprintf(out, size, "/usr/local/bin");
		return;
	}
	self[r] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(out, size, "%s", self);
}

static int load_sim(struct ct_env *env, const char *tag, char *err, size_t errsize)
{
	struct cli_sim_cluster c;
	size_t i;

	if (cli_sim_load(tag, &c, err, errsize))
		return -1;
	env->sim = true;
	snprintf(env->tag, sizeof(env->tag), "%s", c.tag);
	snprintf(env->store, sizeof(env->store), "%s", c.store);
	env->mtu = c.mtu > 0 ? (unsigned int)c.mtu : 1500;
	for (i = 0; i < c.nhosts; i++) {
		const struct cli_sim_host *h = &c.hosts[i];

		if (h->kind == CLI_SIM_NODE && env->nnodes < CT_NODES_MAX) {
			struct ct_node *n = &env->nodes[env->nnodes++];

			snprintf(n->name, sizeof(n->name), "%s", h->name);
			snprintf(n->netns, sizeof(n->netns), "%s", h->netns);
			snprintf(n->ip, sizeof(n->ip), "%s", h->ip);
			agent_sock_path(h->netns, n->sock, sizeof(n->sock));
		} else if (h->kind == CLI_SIM_EXT && env->nexts < CT_EXTS_MAX) {
			struct ct_ext *x = &env->exts[env->nexts++];

			snprintf(x->name, sizeof(x->name), "%s", h->name);
			snprintf(x->netns, sizeof(x->netns), "%s", h->netns);
			snprintf(x->ip, sizeof(x->ip), "%s", h->ip);
			x->port = h->nports ? h->ports[0] : 80;
		}
	}
	cli_sim_free(&c);
	if (!env->nnodes) {
		snprintf(err, errsize, "--cluster %s: the state file lists no nodes", tag);
		return -1;
	}
	return 0;
}

/* True when the process listening on the unix socket path runs in this network namespace
 * (a simulated node's agent does not: this host's CNI must never plumb for it here). */
static bool agent_in_my_netns(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct stat mine, theirs;
	char p[64];
	bool same = false;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)cred.pid);
		same = stat("/proc/self/ns/net", &mine) == 0 && stat(p, &theirs) == 0 &&
		       mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev;
	}
	close(fd);
	return same;
}

/* A real host's tag: "host-" and its agent's directory name (letters, digits and '-' only,
 * at most 25 of them), so two hosts' (or simulated nodes') runs never share names. */
static void host_tag(const char *sock, char *out, size_t size)
{
	char dir[300], *slash, *p;
	size_t k = 0;

	snprintf(dir, sizeof(dir), "%s", sock);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	slash = strrchr(dir, '/');
	p = slash ? slash + 1 : dir;
	snprintf(out, size, "host-");
	for (k = strlen(out); *p && k + 1 < size && k < 30; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')
			out[k++] = *p;
		else if (*p >= 'A' && *p <= 'Z')
			out[k++] = (char)(*p - 'A' + 'a');
	out[k] = '\0';
}

static int load_host(struct ct_env *env, const char *node, const char *store, char *err,
		     size_t errsize)
{
	struct ct_node *n = &env->nodes[0];
	struct dirent *de;
	json_t *st;
	DIR *dh;

	snprintf(env->store, sizeof(env->store), "%s", cli_store_uri(store));
	env->mtu = 1500;
	if (node) {
		snprintf(n->name, sizeof(n->name), "%s", node);
		agent_sock_path(node, n->sock, sizeof(n->sock));
		env->nnodes = 1;
	} else {
		dh = opendir(AGENT_RUN_ROOT);
		while (dh && (de = readdir(dh))) {
			char sock[300];

			if (de->d_name[0] == '.')
				continue;
			agent_sock_path(de->d_name, sock, sizeof(sock));
			if (access(sock, F_OK) || !agent_in_my_netns(sock))
				continue;
			if (env->nnodes) {
				snprintf(err, errsize,
					 "more than one agent runs in this network "
					 "namespace (%s, %s): give --node NAME",
					 n->name, de->d_name);
				closedir(dh);
				return -1;
			}
			snprintf(n->name, sizeof(n->name), "%.120s", de->d_name);
			snprintf(n->sock, sizeof(n->sock), "%s", sock);
			env->nnodes = 1;
		}
		if (dh)
			closedir(dh);
		if (!env->nnodes) {
			snprintf(err, errsize,
				 "no agent of this host (none of %s/*/%s runs in this "
				 "network namespace); for a simulated cluster give --cluster TAG",
				 AGENT_RUN_ROOT, AGENT_SOCK_NAME);
			return -1;
		}
	}
	if (!agent_in_my_netns(n->sock)) {
		snprintf(err, errsize,
			 "the agent at %s does not run in this network namespace "
			 "(a simulated node's?): give --cluster TAG",
			 n->sock);
		return -1;
	}
	host_tag(n->sock, env->tag, sizeof(env->tag));
	st = ct_agent(n, AGENT_OP_STATUS, NULL, 5000, err, errsize);
	if (!st)
		return -1;
	/* the model's node name (pods are placed by it), not the instance's directory */
	if (json_string_value(json_object_get(st, "node")))
		snprintf(n->name, sizeof(n->name), "%s",
			 json_string_value(json_object_get(st, "node")));
	json_decref(st);
	return 0;
}

int ct_env_load(struct ct_env *env, const char *tag, const char *node, const char *store, char *err,
		size_t errsize)
{
	memset(env, 0, sizeof(*env));
	bin_dir(env->bin_dir, sizeof(env->bin_dir));
	return tag ? load_sim(env, tag, err, errsize) : load_host(env, node, store, err, errsize);
}

int ct_settle(const struct ct_ctx *c, char *err, size_t errsize)
{
	long long deadline = ct_now_ms() + CT_SETTLE_MS;
	struct store *st;
	struct diag d = {{0}};
	int64_t rev = 0;
	size_t i;

	if (store_open(c->env.store, &st, &d)) {
		snprintf(err, errsize, "store %s: %s", c->env.store, d.msg);
		return -1;
	}
	if (store_revision(st, &rev, &d)) {
		snprintf(err, errsize, "store %s: %s", c->env.store, d.msg);
		store_close(st);
		return -1;
	}
	store_close(st);
	for (i = 0; i < c->env.nnodes; i++) {
		const struct ct_node *n = &c->env.nodes[i];
		json_int_t mrev = -1;

		for (;;) {
			char e[512];
			json_t *s = ct_agent(n, AGENT_OP_STATUS, NULL, 1000, e, sizeof(e));

			if (s) {
				json_t *rec = json_object_get(s, "reconcile");
				const char *lerr =
					json_string_value(json_object_get(rec, "lastError"));

				mrev = json_integer_value(json_object_get(s, "modelRevision"));
				if (mrev >= rev) {
					json_decref(s);
					break;
				}
				if (lerr && *lerr &&
				    json_integer_value(json_object_get(rec, "lastErrorRevision")) >=
					    rev) {
					snprintf(err, errsize,
						 "agent of %s failed to reconcile store "
						 "revision %lld: %.400s",
						 n->name, (long long)rev, lerr);
					json_decref(s);
					return -1;
				}
				json_decref(s);
			}
			if (ct_now_ms() > deadline || (c->stop && *c->stop)) {
				snprintf(err, errsize,
					 "agent of %s has not reconciled store revision "
					 "%lld within %d ms (model at %lld)",
					 n->name, (long long)rev, CT_SETTLE_MS, (long long)mrev);
				return -1;
			}
			usleep(10000);
		}
	}
	return 0;
}
