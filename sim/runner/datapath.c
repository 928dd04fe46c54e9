/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's datapath: one ciliate-agent per node, the scenario's Kubernetes documents
 * in a per-cluster store, pods through ciliate-cni (sim/kubelet.c), Test steps' state
 * changes through `ciliate apply/delete`, and drop reasons from the nodes' pinned
 * ciliate_metrics counters (docs/SIMULATOR.md, "Datapath").
 *
 * Agents run in their node's namespace entered with setns(CLONE_NEWNET) only (what
 * `nsenter --net=/run/netns/NS` does; not `ip netns exec`, whose private /sys would hide the
 * host's bpffs). Each is named by its node's namespace (--instance cil-<tag>-<node>): pins at
 * /sys/fs/bpf/ciliate/cil-<tag>-<node>, state dir /run/ciliate/cil-<tag>-<node>, while
 * --node keeps the scenario's node name for the model.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/api.h"
#include "ciliate/abi.h"
#include "ciliate/drop_reasons.h"
#include "common/names.h"
#include "store/store.h"

#define SIM_AGENT_READY_MS 30000 /* a bound: agents under emulation (the kernel matrix) took up to 17 s */
#define SIM_RECONCILE_MS 10000 /* bound, not an expectation: a loaded 2-core CI host */

_Static_assert(SIM_DROP_REASONS == CILIATE_REASON_MAX, "SIM_DROP_REASONS");

bool sim_no_datapath;

void sim_store_dir(const char *tag, char *buf, size_t size)
{
	char dir[128];

	sim_run_dir(tag, dir, sizeof(dir));
	snprintf(buf, size, "%s/store", dir);
}

void sim_agent_sock(const struct sim_host *node, char *buf, size_t size)
{
	agent_sock_path(node->netns, buf, size);
}

static char *cli_bin(char *buf, size_t size)
{
	snprintf(buf, size, "%s/ciliate", sim_bin_dir());
	return buf;
}

/* Runs `ciliate VERB -f FILE --store DIR [extra]`; on failure d->msg holds the CLI's
 * message (FILE:LINE: FIELD: reason). */
static int run_cli(const struct sim_cluster *c, const char *verb, const char *file,
		   const char *extra, struct diag *d)
{
	char bin[PATH_MAX], store[PATH_MAX];

	cli_bin(bin, sizeof(bin));
	sim_store_uri(c, store, sizeof(store));
	if (extra)
		return SYS(d, bin, (char *)verb, "-f", (char *)file, "--store", store,
			   (char *)extra);
	return SYS(d, bin, (char *)verb, "-f", (char *)file, "--store", store);
}

int sim_datapath_prepare(struct sim_cluster *c, struct diag *d)
{
	char store[PATH_MAX], dir[128];

	if (sim_no_datapath)
		return 0;
	sim_run_dir(c->tag, dir, sizeof(dir));
	sim_store_dir(c->tag, store, sizeof(store));
	if (mkdir(store, 0755) < 0 && errno != EEXIST)
		return diag_fail_errno(d, -errno, "mkdir %s: %s", store, strerror(errno));
	if (c->store_uri[0]) { /* --store etcd://: its /ciliate/ keys become this cluster's */
		int err = sim_store_claim(c, d);

		if (err)
			return err;
	}
	/* the Kubernetes documents (sim.ciliate.dev ones are skipped by the CLI) */
	return run_cli(c, "apply", c->scenario, NULL, d);
}

static int add_pin(struct sim_cluster *c, const char *path)
{
	char **nv;
	size_t i;

	for (i = 0; i < c->npins; i++)
		if (!strcmp(c->pins[i], path))
			return 0;
	nv = realloc(c->pins, (c->npins + 2) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	c->pins = nv;
	nv[c->npins] = strdup(path);
	if (!nv[c->npins])
		return -ENOMEM;
	nv[++c->npins] = NULL;
	return 0;
}

int sim_attach_datapath(struct sim_cluster *c, struct sim_host *node, bool *attached,
			struct diag *d)
{
	char bin[PATH_MAX], store[PATH_MAX], log[PATH_MAX], dir[128], pin[PATH_MAX];
	pid_t pid;

	*attached = false;
	if (sim_no_datapath)
		return 0;
	snprintf(bin, sizeof(bin), "%s/ciliate-agent", sim_bin_dir());
	sim_store_uri(c, store, sizeof(store));
	sim_run_dir(c->tag, dir, sizeof(dir));
	snprintf(log, sizeof(log), "%s/agent-%s.log", dir, node->name);
	snprintf(pin, sizeof(pin), "%s/%s", SIM_BPFFS_DIR, node->netns);
	/* recorded before it exists, so down removes it whatever happens next */
	if (add_pin(c, pin))
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	/* --routing: the plumbing the simulator made (its --routing may replace the file's) */
	pid = netns_spawn(node->netns,
			  (char *const[]){ bin, "--node", node->name, "--instance", node->netns,
					   "--store", store, "--scenario-cluster", c->scenario,
					   "--routing", c->tunnel ? "tunnel" : "native", NULL },
			  log, d);
	if (pid < 0)
		return (int)pid;
	node->agent.pid = pid;
	if (proc_start_time(pid, &node->agent.start))
		node->agent.start = 0;
	*attached = true;
	return 0;
}

/* Status of one agent; NULL if it does not answer. */
/* The agent's answer to op (no arguments), when it says "ok" (NULL: no such answer). */
static json_t *agent_ask(const struct sim_host *node, const char *op, int timeout_ms)
{
	char sock[PATH_MAX], err[256];
	json_t *req, *resp = NULL;

	sim_agent_sock(node, sock, sizeof(sock));
	req = json_pack("{s:s}", "op", op);
	if (!req)
		return NULL;
	if (agent_call(sock, req, timeout_ms, &resp, err, sizeof(err))) {
		json_decref(req);
		return NULL;
	}
	json_decref(req);
	if (!json_is_true(json_object_get(resp, "ok"))) {
		json_decref(resp);
		return NULL;
	}
	return resp;
}

/* A node whose WireGuard peers have not all had a handshake yet ("" when all have, or when
 * it does not run WireGuard): the first one it names, in why. */
static bool wg_pending(const struct sim_host *n, char *why, size_t size)
{
	json_t *st = agent_ask(n, AGENT_OP_ENCRYPT_STATUS, 500), *p;
	bool pending = false;
	size_t i;

	if (!st) {
		snprintf(why, size, "%.64s: no encrypt-status answer", n->name);
		return true;
	}
	if (!strcmp(json_string_value(json_object_get(st, "mode")) ?: "", "wireguard"))
		json_array_foreach(json_object_get(st, "peers"), i, p)
			if (!json_integer_value(json_object_get(p, "lastHandshakeTime"))) {
				snprintf(why, size, "%.64s has had no handshake with %.64s", n->name,
					 json_string_value(json_object_get(p, "node")) ?: "a peer");
				pending = true;
				break;
			}
	json_decref(st);
	return pending;
}

int sim_encryption_ready(const struct sim_cluster *c, struct diag *d)
{
	long long deadline = sim_now_ms() + SIM_WG_READY_MS;
	char why[256] = "";
	size_t i;

	if (!c->datapath)
		return 0;
	for (i = 0; i < c->nhosts; i++) {
		const struct sim_host *n = &c->hosts[i];

		if (n->kind != SIM_NODE || n->agent_stopped)
			continue;
		while (wg_pending(n, why, sizeof(why))) {
			if (sim_now_ms() > deadline)
				return diag_fail_errno(d, -ETIMEDOUT, "WireGuard not ready within %d ms: "
						       "%s", SIM_WG_READY_MS, why);
			usleep(50000);
		}
	}
	return 0;
}

int sim_datapath_wait(struct sim_cluster *c, struct diag *d)
{
	long long deadline = sim_now_ms() + SIM_AGENT_READY_MS;
	char dir[128];
	size_t i;
	json_t *st;

	sim_run_dir(c->tag, dir, sizeof(dir));
	for (i = 0; i < c->nhosts; i++) {
		struct sim_host *n = &c->hosts[i];

		if (n->kind != SIM_NODE || !n->agent.pid)
			continue;
		for (;;) {
			st = agent_ask(n, AGENT_OP_STATUS, 500);
			if (st) {
				json_decref(st);
				break;
			}
			if (!proc_alive(n->agent.pid, n->agent.start))
				return diag_fail_errno(d, -EIO, "ciliate-agent of %s exited (log "
						       "%s/agent-%s.log)", n->name, dir, n->name);
			if (sim_now_ms() > deadline || sim_interrupted)
				return diag_fail_errno(d, -ETIMEDOUT, "ciliate-agent of %s not "
						       "answering after %d ms (log %s/agent-%s.log)",
						       n->name, SIM_AGENT_READY_MS, dir, n->name);
			usleep(20000);
		}
	}
	return 0;
}

/* ---- Test steps ------------------------------------------------------------------------ */

static int write_file(const char *path, const char *text, struct diag *d)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return diag_fail_errno(d, -errno, "%s: %s", path, strerror(errno));
	fputs(text, f);
	if (fclose(f))
		return diag_fail_errno(d, -EIO, "%s: write failed", path);
	return 0;
}

int sim_store_revision(const struct sim_cluster *c, int64_t *rev, struct diag *d)
{
	char store[PATH_MAX];
	struct store *s;
	int err;

	sim_store_uri(c, store, sizeof(store));
	err = store_open(store, &s, d);
	if (err)
		return err;
	err = store_revision(s, rev, d);
	store_close(s);
	return err;
}

/* Waits (bounded) until every agent has reconciled store revision rev or later: its
 * modelRevision (published only after the maps are written and the programs attached) has
 * reached rev. An agent whose reconcile of rev (or later) failed ends the wait at once with
 * its error: a failure is not waited out. */
static int wait_reconciled(const struct sim_cluster *c, int64_t rev, struct diag *d)
{
	long long deadline = sim_now_ms() + SIM_RECONCILE_MS;
	size_t i;

	for (i = 0; i < c->nhosts; i++) {
		const struct sim_host *n = &c->hosts[i];
		json_int_t mrev = -1;
		json_t *st;

		if (n->kind != SIM_NODE || n->agent_stopped)
			continue;
		for (;;) {
			st = agent_ask(n, AGENT_OP_STATUS, 500);
			if (st) {
				json_t *rec = json_object_get(st, "reconcile");
				const char *lerr =
					json_string_value(json_object_get(rec, "lastError"));
				json_int_t erev = json_integer_value(
					json_object_get(rec, "lastErrorRevision"));

				mrev = json_integer_value(json_object_get(st, "modelRevision"));
				if (mrev >= rev) {
					json_decref(st);
					break;
				}
				if (lerr && *lerr && erev >= rev) {
					diag_fail_errno(d, -EIO, "agent of %s failed to reconcile store "
							"revision %lld (modelRevision stays %lld): %.700s",
							n->name, (long long)erev, (long long)mrev,
							lerr);
					json_decref(st);
					return -EIO;
				}
				json_decref(st);
			}
			if (sim_now_ms() > deadline)
				return diag_fail_errno(d, -ETIMEDOUT, "agent of %s has not "
						       "reconciled store revision %lld within %d ms "
						       "(model at %lld)", n->name, (long long)rev,
						       SIM_RECONCILE_MS, (long long)mrev);
			usleep(5000);
		}
	}
	return 0;
}

int sim_apply_step(struct sim_cluster *c, const struct m_step *st, struct diag *d)
{
	char dir[128], path[PATH_MAX], *text = NULL;
	size_t i, len = 0, cap = 0;
	int err = 0;

	if (!st->apply && !st->manifests_yaml && !st->ndeletes)
		return 0;
	if (!c->datapath)
		return diag_fail_errno(d, -EOPNOTSUPP,
				       "policy changes need the datapath: not applied");
	sim_run_dir(c->tag, dir, sizeof(dir));
	if (st->apply)
		err = run_cli(c, "apply", st->apply, NULL, d);
	if (!err && st->manifests_yaml) {
		snprintf(path, sizeof(path), "%s/step-%s.yaml", dir, st->name);
		err = write_file(path, st->manifests_yaml, d);
		if (!err)
			err = run_cli(c, "apply", path, NULL, d);
	}
	/* delete refs become a manifest of references: `ciliate delete -f` needs only kind,
	 * metadata.name and metadata.namespace (SPEC section 4; "" for cluster-scoped kinds) */
	if (!err && st->ndeletes) {
		for (i = 0; i < st->ndeletes && !err; i++) {
			const struct m_delete_ref *r = &st->deletes[i];
			char doc[512];
			int w;

			w = snprintf(doc, sizeof(doc), "---\nkind: %s\nmetadata:\n  name: \"%s\"\n%s%s%s",
				     r->kind, r->name, r->ns[0] ? "  namespace: \"" : "", r->ns,
				     r->ns[0] ? "\"\n" : "");
			if (w < 0 || (size_t)w >= sizeof(doc))
				continue;
			if (len + (size_t)w + 1 > cap) {
				char *nt;

				cap = (len + (size_t)w + 1) * 2;
				nt = realloc(text, cap);
				if (!nt) {
					err = diag_fail_errno(d, -ENOMEM, "out of memory");
					break;
				}
				text = nt;
			}
			memcpy(text + len, doc, (size_t)w + 1);
			len += (size_t)w;
		}
		snprintf(path, sizeof(path), "%s/step-%s-delete.yaml", dir, st->name);
		if (!err && text)
			err = write_file(path, text, d);
		if (!err && text)
			err = run_cli(c, "delete", path, NULL, d);
		free(text);
	}
	/* whatever was written (also before a rejected part) must be in force before probing */
	{
		struct diag dd;

		int serr = sim_datapath_settle(c, &dd);

		if (serr && !err)
			err = diag_fail_errno(d, serr, "%s", dd.msg);
	}
	return err;
}

int sim_datapath_settle(const struct sim_cluster *c, struct diag *d)
{
	int64_t rev = 0;
	int err;

	if (!c->datapath)
		return 0;
	err = sim_store_revision(c, &rev, d);
	if (!err)
		err = wait_reconciled(c, rev, d);
	return err;
}

/* ---- drop reasons from the nodes' ciliate_metrics ------------------------------------- */

int sim_drops_read(const struct sim_cluster *c, const struct sim_host *node, uint64_t *out)
{
	char path[PATH_MAX];
	struct metrics_value *vals;
	int fd, ncpu, k, cpu;

	memset(out, 0, CILIATE_REASON_MAX * sizeof(*out));
	(void)c;
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s/%s", SIM_BPFFS_DIR, node->netns, MAP_METRICS);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals) {
		close(fd);
		return -ENOMEM;
	}
	for (k = CILIATE_DROP_REASON_MIN * DIR_MAX; k < METRICS_ENTRIES; k++) {
		__u32 key = (__u32)k;

		if (bpf_map_lookup_elem(fd, &key, vals))
			continue;
		for (cpu = 0; cpu < ncpu; cpu++)
			out[k / DIR_MAX] += vals[cpu].packets;
	}
	free(vals);
	close(fd);
	return 0;
}

const char *sim_drop_reason_name(unsigned int code)
{
	return reason_name(code);
}
