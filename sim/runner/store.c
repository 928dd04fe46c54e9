/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated cluster's store and its operator (docs/SIMULATOR.md, "Store").
 *
 * By default each cluster has its own embedded store in its run directory. With
 * `--store etcd://HOST:PORT[,...]` every agent, the CLI calls and the simulator use that etcd
 * instead. The agents live in their nodes' namespaces, while the etcd endpoints are addresses
 * as seen from where the simulator runs (often 127.0.0.1), so the URI given to everyone
 * carries `netns=`: the namespace the simulator runs in (the root one, or a named one under
 * /run/netns), where the etcd backend makes its connections.
 *
 * One simulated cluster owns an etcd's /ciliate/ keys at a time: `up` refuses an etcd another
 * live cluster owns (SIM_STORE_OWNER_KEY), removes what a finished one left, and `down`
 * deletes the keys. One ciliate-operator per cluster runs beside the agents.
 */
#include "sim.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

#define SIM_STORE_OWNER_KEY "/ciliate/sim/owner"
#define SIM_STORE_PREFIX    "/ciliate/"
#define WIPE_BATCH          100 /* deletes per txn (etcd's default --max-txn-ops is 128) */
/* one operator pass per second: a simulated cluster's scenarios expect its chores (identity
 * GC after a short $CILIATE_IDENTITY_GC_GRACE) in seconds; a pass is one list of /ciliate/ */
#define SIM_OPERATOR_INTERVAL "1"

const char *sim_store_override;

void sim_store_uri(const struct sim_cluster *c, char *buf, size_t size)
{
	char dir[256];

	if (c->store_uri[0]) {
		snprintf(buf, size, "%s", c->store_uri);
		return;
	}
	/* a simulated cluster needs no long history (watchers are all local and keep up), and
	 * a short one keeps compactions — done under the write lock — cheap when thousands of
	 * pods each rewrite their node's IPAM record */
	sim_store_dir(c->tag, dir, sizeof(dir));
	snprintf(buf, size, "file://%s?keep_revisions=%d", dir, SIM_STORE_KEEP_REVISIONS);
}

/* The path of the network namespace this process runs in: /proc/1/ns/net for the root one,
 * else its name under /run/netns. */
static int own_netns_path(char *buf, size_t size, struct diag *d)
{
	struct stat self, other;
	struct dirent *e;
	DIR *dh;

	if (stat("/proc/self/ns/net", &self) < 0)
		return diag_fail_errno(d, -errno, "/proc/self/ns/net: %s", strerror(errno));
	if (stat("/proc/1/ns/net", &other) == 0 && other.st_ino == self.st_ino &&
	    other.st_dev == self.st_dev) {
		snprintf(buf, size, "/proc/1/ns/net");
		return 0;
	}
	dh = opendir("/run/netns");
	while (dh && (e = readdir(dh))) {
		char path[PATH_MAX];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/run/netns/%s", e->d_name);
		if (stat(path, &other) == 0 && other.st_ino == self.st_ino && other.st_dev == self.st_dev) {
			snprintf(buf, size, "%s", path);
			closedir(dh);
			return 0;
		}
	}
	if (dh)
		closedir(dh);
	return diag_fail_errno(d, -ENOENT,
			       "--store %s: the simulator runs in a network namespace that has no name "
			       "under /run/netns, so its agents cannot reach the store from there; run "
			       "it in the root namespace or enter a named one with nsenter --net=/run/netns/NAME",
			       sim_store_override);
}

int sim_store_configure(struct sim_cluster *c, struct diag *d)
{
	char ns[PATH_MAX];
	int err;

	c->store_uri[0] = '\0';
	if (!sim_store_override || sim_no_datapath)
		return 0;
	if (!store_uri_is_etcd(sim_store_override))
		return diag_fail(d, "--store %s: the simulator takes an etcd store (etcd://HOST:PORT[,...]); "
				 "without --store each cluster has its own embedded one", sim_store_override);
	if (strstr(sim_store_override, "netns=")) {
		snprintf(c->store_uri, sizeof(c->store_uri), "%s", sim_store_override);
		return 0;
	}
	err = own_netns_path(ns, sizeof(ns), d);
	if (err)
		return err;
	if ((size_t)snprintf(c->store_uri, sizeof(c->store_uri), "%s%snetns=%s", sim_store_override,
			     strchr(sim_store_override, '?') ? "&" : "?", ns) >= sizeof(c->store_uri))
		return diag_fail(d, "--store %s: too long", sim_store_override);
	return 0;
}

/* Deletes every key under /ciliate/ (bounded batches). */
static int wipe(struct store *st, struct diag *d)
{
	struct store_op ops[WIPE_BATCH];
	struct store_list l;
	size_t i, k;
	int err, round;

	for (round = 0; round < 1000; round++) {
		err = store_list(st, SIM_STORE_PREFIX, &l, d);
		if (err || !l.n) {
			store_list_free(&l);
			return err;
		}
		for (i = 0; !err && i < l.n; i += k) {
			for (k = 0; k < WIPE_BATCH && i + k < l.n; k++)
				ops[k] = (struct store_op){ .type = STORE_OP_DELETE, .key = l.items[i + k].key };
			err = store_txn(st, NULL, 0, ops, k, NULL, d);
		}
		store_list_free(&l);
		if (err)
			return err;
	}
	return 0;
}

/* True if the cluster of tag is still there (its state file exists and is not ours). */
static bool owner_alive(const char *owner_tag, const char *our_tag)
{
	char path[PATH_MAX];

	if (!strcmp(owner_tag, our_tag))
		return false;
	sim_state_path(owner_tag, path, sizeof(path));
	return access(path, F_OK) == 0;
}

int sim_store_claim(struct sim_cluster *c, struct diag *d)
{
	struct store *st;
	struct store_kv kv;
	json_t *j;
	char *v;
	int err;

	if (!c->store_uri[0])
		return 0;
	err = store_open(c->store_uri, &st, d);
	if (err)
		return err;
	err = store_get(st, SIM_STORE_OWNER_KEY, &kv, d);
	if (!err) {
		j = json_loads(kv.value, 0, NULL);
		const char *tag = json_string_value(json_object_get(j, "tag"));

		if (tag && owner_alive(tag, c->tag))
			err = diag_fail_errno(d, -EBUSY,
					      "--store %s: simulated cluster %s owns its /ciliate/ keys "
					      "(`ciliate-sim down %s` first; one cluster per etcd)",
					      sim_store_override ? sim_store_override : c->store_uri, tag, tag);
		json_decref(j);
		store_kv_free(&kv);
	} else if (err == -ENOENT) {
		err = 0;
	}
	if (!err) /* what a finished or crashed cluster left, and any other /ciliate/ keys */
		err = wipe(st, d);
	if (!err) {
		j = json_pack("{s:s, s:s, s:i}", "tag", c->tag, "cluster", c->name, "pid", (int)getpid());
		v = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		err = v ? store_put(st, SIM_STORE_OWNER_KEY, v, strlen(v), 0, STORE_ANY_REV, NULL, d)
			: diag_fail_errno(d, -ENOMEM, "out of memory");
		free(v);
	}
	store_close(st);
	if (err)
		diag_prefix(d, "etcd store");
	return err;
}

void sim_store_release(const struct sim_cluster *c, bool quiet)
{
	struct diag d = { "" };
	struct store *st;
	struct store_kv kv;
	bool ours = false;

	if (!c->store_uri[0])
		return; /* the embedded store goes with the run directory */
	if (store_open(c->store_uri, &st, &d)) {
		fprintf(stderr, "ciliate-sim: %s: cannot remove the cluster's keys: %s\n", c->tag, d.msg);
		return;
	}
	if (!store_get(st, SIM_STORE_OWNER_KEY, &kv, &d)) {
		json_t *j = json_loads(kv.value, 0, NULL);

		ours = !strcmp(json_string_value(json_object_get(j, "tag")) ?: "", c->tag);
		json_decref(j);
		store_kv_free(&kv);
	}
	if (ours && wipe(st, &d))
		fprintf(stderr, "ciliate-sim: %s: removing the cluster's keys from %s: %s\n", c->tag,
			c->store_uri, d.msg);
	else if (ours && !quiet)
		fprintf(stderr, "ciliate-sim: %s: removed the cluster's keys from the etcd store\n", c->tag);
	store_close(st);
}

int sim_operator_start(struct sim_cluster *c, struct diag *d)
{
	char bin[PATH_MAX], store[PATH_MAX], log[PATH_MAX], dir[128], id[64];
	const char *grace;
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/ciliate-operator", sim_bin_dir());
	if (access(bin, X_OK) < 0)
		return diag_fail_errno(d, -ENOENT, "%s: %s (make builds it)", bin, strerror(errno));
	sim_store_uri(c, store, sizeof(store));
	sim_run_dir(c->tag, dir, sizeof(dir));
	snprintf(log, sizeof(log), "%s/operator.log", dir);
	snprintf(id, sizeof(id), "%s-operator-%d", c->tag, (int)getpid());
	/* where the simulator runs: it is no node's, and reaches the store like the CLI */
	/* the agents' grace ($CILIATE_IDENTITY_GC_GRACE) is the operator's: it collects for them */
	grace = getenv("CILIATE_IDENTITY_GC_GRACE");
	if (grace && *grace)
		pid = netns_spawn(NULL, (char *const[]){ bin, "--store", store, "--id", id, "--interval",
							 SIM_OPERATOR_INTERVAL, "--identity-gc-grace",
							 (char *)grace, NULL }, log, d);
	else
		pid = netns_spawn(NULL, (char *const[]){ bin, "--store", store, "--id", id, "--interval",
							 SIM_OPERATOR_INTERVAL, NULL }, log, d);
	if (pid < 0)
		return (int)pid;
	c->operator_proc.pid = pid;
	if (proc_start_time(pid, &c->operator_proc.start))
		c->operator_proc.start = 0;
	return 0;
}
