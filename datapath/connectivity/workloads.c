/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The suite's workloads, as a kubelet and an operator would make them: the objects go to
 * the store through `ciliate apply`'s own code, each pod gets a network namespace
 * (cil-ct-<tag>-<namespace>-<pod>) plumbed by `ciliate-cni` ADD in its node's namespace
 * (sim/kubelet.c), and one ciliate-echo process serves the echo pods. ct_cleanup() removes
 * all of it, found by name, so it also removes what a killed run left behind.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/api.h"
#include "cli/cli.h"
#include "ct.h"
#include "kubelet.h"
#include "model/model.h"
#include "netns.h"
#include "store/store.h"

/* The workloads, as Cilium's suite names and labels them. */
static const struct {
	const char *name;
	const char *labels;
	bool echo;
} POD_DEFS[CT_PODS_MAX] = {
	[CT_CLIENT] = {"client", "{kind: client, name: client}", false},
	[CT_CLIENT2] = {"client2", "{kind: client, name: client2, other: client}", false},
	[CT_ECHO_SAME] = {"echo-same-node", "{kind: echo, name: echo-same-node}", true},
	[CT_ECHO_OTHER] = {"echo-other-node", "{kind: echo, name: echo-other-node}", true},
};

static int write_file(const char *path, const char *text, char *err, size_t errsize)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	if (fclose(f)) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void read_tail(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t r;

	out[0] = '\0';
	if (!f)
		return;
	r = fread(out, 1, size - 1, f);
	out[r] = '\0';
	while (r && (out[r - 1] == '\n'))
		out[--r] = '\0';
	fclose(f);
}

int ct_store_apply(struct ct_ctx *c, const char *name, const char *manifest, bool delete, char *err,
		   size_t errsize)
{
	char path[700], log[700], msg[600];
	int status = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s.yaml", c->run_dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", c->run_dir, name);
	if (write_file(path, manifest, err, errsize))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errsize, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) { /* the CLI's own apply/delete, its output kept aside */
		char *argv[] = {
			delete ? "delete" : "apply",	      "-f", path, "--store", c->env.store,
			delete ? "--ignore-not-found" : NULL, NULL};
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		_exit(delete ? cmd_delete(6, argv) : cmd_apply(5, argv));
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		read_tail(log, msg, sizeof(msg));
		snprintf(err, errsize, "ciliate %s -f %s failed: %s", delete ? "delete" : "apply",
			 path, msg);
		return -1;
	}
	unlink(log);
	return ct_settle(c, err, errsize);
}

static void pod_netns(const struct ct_ctx *c, const char *pod, char *out, size_t size)
{
	snprintf(out, size, "%.100s%.20s", c->netns_prefix, pod);
}

static void kubelet_of(const struct ct_ctx *c, const struct ct_node *n, const char *pod,
		       uint32_t ip, struct kubelet_pod *kp)
{
	char netns[128];

	pod_netns(c, pod, netns, sizeof(netns));
	kubelet_pod_init(kp, netns, n->netns, c->ns, pod, ip, c->env.mtu);
	snprintf(kp->agent_sock, sizeof(kp->agent_sock), "%s", n->sock);
	snprintf(kp->cni_dir, sizeof(kp->cni_dir), "%s", c->env.bin_dir);
}

static int workloads_manifest(const struct ct_ctx *c, char *buf, size_t size)
{
	size_t len = 0, i;

#define OUT(...)                                                      \
	do {                                                          \
		int w = snprintf(buf + len, size - len, __VA_ARGS__); \
		if (w < 0 || (size_t)w >= size - len)                 \
			return -1;                                    \
		len += (size_t)w;                                     \
	} while (0)
	OUT("# ciliate connectivity test: its workloads (removed when the suite ends)\n"
	    "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n",
	    c->ns);
	for (i = 0; i < CT_PODS_MAX; i++) {
		const struct ct_pod *p = &c->pods[i];

		if (!p->name)
			continue;
		OUT("---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: "
		    "%s}\n"
		    "spec:\n  nodeName: %s\n  containers:\n  - name: %s\n    image: %s\n",
		    p->name, c->ns, p->labels, c->env.nodes[p->node].name,
		    p->echo ? "echo" : "client", p->echo ? "ciliate-echo" : "ciliate-probe");
		if (p->echo)
			OUT("    ports: [{name: http, containerPort: %d, protocol: TCP}]\n",
			    CT_ECHO_PORT);
	}
	for (i = 0; i < 2; i++) {
		if (!c->svcs[i].name)
			continue;
		OUT("---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\n"
		    "spec:\n  type: NodePort\n  selector: {name: %s}\n"
		    "  ports: [{name: http, port: %d, targetPort: %d, protocol: TCP}]\n",
		    c->svcs[i].name, c->ns, c->svcs[i].name, CT_ECHO_PORT, CT_ECHO_PORT);
	}
#undef OUT
	return 0;
}

/* The stored Service's clusterIP and first nodePort (allocated by apply). */
static int read_service(const struct ct_ctx *c, struct ct_svc *s, char *err, size_t errsize)
{
	struct store *st;
	struct store_kv kv = {0};
	struct diag d = {{0}};
	char key[512];
	json_t *o, *spec;
	int rc = -1;

	snprintf(key, sizeof(key), "/ciliate/objects/Service/%s/%s", c->ns, s->name);
	if (store_open(c->env.store, &st, &d)) {
		snprintf(err, errsize, "store: %s", d.msg);
		return -1;
	}
	if (store_get(st, key, &kv, &d)) {
		snprintf(err, errsize, "%s: %s", key, d.msg);
		store_close(st);
		return -1;
	}
	o = json_loads(kv.value, 0, NULL);
	spec = json_object_get(o, "spec");
	snprintf(s->cluster_ip, sizeof(s->cluster_ip), "%s",
		 json_string_value(json_object_get(spec, "clusterIP")) ?: "");
	s->node_port = (int)json_integer_value(
		json_object_get(json_array_get(json_object_get(spec, "ports"), 0), "nodePort"));
	if (!*s->cluster_ip || !s->node_port)
		snprintf(err, errsize, "%s: no clusterIP or nodePort allocated", key);
	else
		rc = 0;
	json_decref(o);
	store_kv_free(&kv);
	store_close(st);
	return rc;
}

/* A real host: the node is this network namespace, where the runtime runs the installed
 * plugin (the same configuration and CNI variables as sim/kubelet.c gives it). */
static int host_cni(const struct kubelet_pod *kp, const char *command, struct diag *d)
{
	char bin[4200], conf[600], e_cmd[32], e_id[64], e_netns[NETNS_NAME_MAX + 32];
	char e_args[KUBELET_ID_MAX + 96], e_path[4120], e_syspath[4200], h[9], ns[64], ip[16];
	const char *slash = strchr(kp->id, '/'), *path = getenv("PATH");

	if (!slash)
		return diag_fail(d, "pod %s: no namespace", kp->id);
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - kp->id), kp->id);
	inet_ntop(AF_INET, &kp->ip, ip, sizeof(ip));
	kubelet_hash8(kp->id, h);
	snprintf(bin, sizeof(bin), "%s/ciliate-cni", kp->cni_dir);
	snprintf(conf, sizeof(conf),
		 "{\"cniVersion\":\"1.1.0\",\"name\":\"ciliate\",\"type\":\"ciliate-cni\","
		 "\"agentSocket\":\"%s\"}",
		 kp->agent_sock);
	snprintf(e_cmd, sizeof(e_cmd), "CNI_COMMAND=%s", command);
	snprintf(e_id, sizeof(e_id), "CNI_CONTAINERID=sim-%s", h);
	snprintf(e_netns, sizeof(e_netns), "CNI_NETNS=" NETNS_RUN_DIR "/%s", kp->netns);
	snprintf(e_args, sizeof(e_args), "CNI_ARGS=K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;IP=%s", ns,
		 slash + 1, ip);
	snprintf(e_path, sizeof(e_path), "CNI_PATH=%s", kp->cni_dir);
	snprintf(e_syspath, sizeof(e_syspath), "PATH=%s",
		 path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	return sys_runv_in(NULL,
			   (char *const[]){e_cmd, e_id, e_netns, "CNI_IFNAME=eth0", e_args, e_path,
					   e_syspath, NULL},
			   conf, (char *const[]){bin, NULL}, d);
}

static int host_add_pod(const struct kubelet_pod *kp, struct diag *d)
{
	int err = netns_add_here(kp->netns, d);

	if (!err)
		err = host_cni(kp, "ADD", d);
	if (!err)
		err = netns_link_up(kp->netns, "lo", d);
	if (err) {
		char *names[1] = {(char *)kp->netns};

		diag_prefix(d, "pod %s (ciliate-cni)", kp->id);
		host_cni(kp, "DEL", NULL);
		netns_del_many(names, 1, NULL);
	}
	return err;
}

static int plumb_pod(struct ct_ctx *c, struct ct_pod *p, char *err, size_t errsize)
{
	const struct ct_node *n = &c->env.nodes[p->node];
	struct kubelet_pod kp;
	struct diag d = {{0}};
	char id[300], h[9], cid[16];
	uint32_t ip = 0;
	json_t *resp;

	/* the address first (as the plugin will ask: idempotent for the pod and container) */
	snprintf(id, sizeof(id), "%s/%s", c->ns, p->name);
	kubelet_hash8(id, h);
	snprintf(cid, sizeof(cid), "sim-%s", h);
	resp = ct_agent(n, AGENT_OP_IPAM_ALLOCATE,
			json_pack("{s:s,s:s}", "pod", id, "container_id", cid), 5000, err, errsize);
	if (!resp)
		return -1;
	snprintf(p->ip, sizeof(p->ip), "%s", json_string_value(json_object_get(resp, "ip")) ?: "");
	json_decref(resp);
	if (inet_pton(AF_INET, p->ip, &ip) != 1) {
		snprintf(err, errsize, "agent of %s gave %s no address", n->name, id);
		return -1;
	}
	kubelet_of(c, n, p->name, ip, &kp);
	snprintf(p->netns, sizeof(p->netns), "%s", kp.netns);
	if (n->netns[0] ? kubelet_add_pod(&kp, &d) : host_add_pod(&kp, &d)) {
		snprintf(err, errsize, "%s", d.msg);
		return -1;
	}
	p->deployed = true;
	return 0;
}

static int start_echo(struct ct_ctx *c, char *err, size_t errsize)
{
	char sites[4096] = "", path[700], pidfile[700], log[700], bin[4200];
	struct diag d = {{0}};
	long long deadline;
	size_t i, len = 0;
	pid_t pid;

	for (i = 0; i < CT_PODS_MAX; i++) {
		const struct ct_pod *p = &c->pods[i];

		if (!p->name || !p->echo || !p->deployed)
			continue;
		len += (size_t)snprintf(
			sites + len, sizeof(sites) - len,
			"--netns %s/%s --pod %s --namespace %s --node %s --port %d\n",
			NETNS_RUN_DIR, p->netns, p->name, c->ns, c->env.nodes[p->node].name,
			CT_ECHO_PORT);
	}
	snprintf(path, sizeof(path), "%s/echo.sites", c->run_dir);
	snprintf(pidfile, sizeof(pidfile), "%s/echo.pid", c->run_dir);
	snprintf(log, sizeof(log), "%s/echo.log", c->run_dir);
	snprintf(bin, sizeof(bin), "%s/ciliate-echo", c->env.bin_dir);
	unlink(pidfile);
	if (write_file(path, sites, err, errsize))
		return -1;
	/* inside the client's namespace: a leftover is found there by the next run */
	pid = netns_spawn(
		c->pods[CT_CLIENT].netns,
		(char *const[]){bin, "--sites", path, "--pidfile", pidfile, "--quiet", NULL}, log,
		&d);
	if (pid < 0) {
		snprintf(err, errsize, "%s", d.msg);
		return -1;
	}
	c->echo_pid = pid;
	proc_start_time(pid, &c->echo_start);
	for (deadline = ct_now_ms() + 3000; access(pidfile, F_OK); usleep(10000)) {
		if (ct_now_ms() > deadline || !proc_alive(pid, 0)) {
			char msg[400];

			read_tail(log, msg, sizeof(msg));
			snprintf(err, errsize, "ciliate-echo did not start within 3 s: %s", msg);
			return -1;
		}
	}
	return 0;
}

int ct_deploy(struct ct_ctx *c, char *err, size_t errsize)
{
	char manifest[8192];
	long long t0, t1, t2, t3;
	size_t i;

	if (mkdir(CT_RUN_DIR, 0755) && errno != EEXIST) {
		snprintf(err, errsize, "%s: %s", CT_RUN_DIR, strerror(errno));
		return -1;
	}
	if (mkdir(c->run_dir, 0755) && errno != EEXIST) {
		snprintf(err, errsize, "%s: %s", c->run_dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < CT_PODS_MAX; i++) {
		if (i == CT_ECHO_OTHER && (c->single_node || c->env.nnodes < 2))
			continue;
		c->pods[i].name = POD_DEFS[i].name;
		c->pods[i].labels = POD_DEFS[i].labels;
		c->pods[i].echo = POD_DEFS[i].echo;
		c->pods[i].node = i == CT_ECHO_OTHER ? 1 : 0;
	}
	c->svcs[0] = (struct ct_svc){.name = "echo-same-node", .pod = CT_ECHO_SAME};
	if (c->pods[CT_ECHO_OTHER].name)
		c->svcs[1] = (struct ct_svc){.name = "echo-other-node", .pod = CT_ECHO_OTHER};
	fprintf(stderr,
		"✨ [%s] Deploying %s namespace, client, client2, echo-same-node%s pods "
		"and their services on %s...\n",
		c->env.tag, c->ns, c->pods[CT_ECHO_OTHER].name ? ", echo-other-node" : "",
		c->env.nodes[0].name);
	if (workloads_manifest(c, manifest, sizeof(manifest))) {
		snprintf(err, errsize, "workload manifest too long");
		return -1;
	}
	t0 = ct_now_ms();
	if (ct_store_apply(c, "workloads", manifest, false, err, errsize))
		return -1;
	t1 = ct_now_ms();
	for (i = 0; i < CT_PODS_MAX; i++) {
		if (c->stop && *c->stop) {
			snprintf(err, errsize, "interrupted");
			return -1;
		}
		if (c->pods[i].name && plumb_pod(c, &c->pods[i], err, errsize))
			return -1;
	}
	t2 = ct_now_ms();
	if (start_echo(c, err, errsize))
		return -1;
	t3 = ct_now_ms();
	if (ct_settle(c, err, errsize))
		return -1;
	fprintf(stderr,
		"⌛ [%s] Objects stored and in force %.2fs, pods plumbed by ciliate-cni "
		"%.2fs, echo servers listening %.2fs, agents reconciled %.2fs\n",
		c->env.tag, (t1 - t0) / 1000.0, (t2 - t1) / 1000.0, (t3 - t2) / 1000.0,
		(ct_now_ms() - t3) / 1000.0);
	for (i = 0; i < 2; i++)
		if (c->svcs[i].name && read_service(c, &c->svcs[i], err, errsize))
			return -1;
	return 0;
}

/* ---- cleanup ------------------------------------------------------------------------- */

static bool is_ours(pid_t pid)
{
	static const char *const names[] = {"ciliate-echo", "ciliate-probe", "tcpdump"};
	char path[64], comm[64] = "";
	size_t i;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strncmp(comm, names[i], 15))
			return true;
	return false;
}

/* Stops the processes this suite started inside its namespaces (SIGTERM, 2 s, SIGKILL). */
static int stop_processes(struct ct_ctx *c, char **names, size_t n)
{
	struct netns_pid *pids = NULL;
	size_t np = 0, i, left;
	long long deadline;
	int rc = 0;

	if (c->echo_pid > 0 && proc_alive(c->echo_pid, c->echo_start))
		kill(c->echo_pid, SIGTERM);
	if (n && netns_pids_many(names, n, &pids, &np) == 0) {
		for (i = 0; i < np; i++) {
			if (is_ours(pids[i].pid))
				kill(pids[i].pid, SIGTERM);
			else
				fprintf(stderr,
					"ciliate connectivity test: leaving pid %d in %s "
					"alone (not started by the suite)\n",
					(int)pids[i].pid, names[pids[i].ns]);
		}
	}
	for (deadline = ct_now_ms() + 2000;; usleep(20000)) {
		left = 0;
		if (c->echo_pid > 0) {
			waitpid(c->echo_pid, NULL, WNOHANG);
			left += proc_alive(c->echo_pid, c->echo_start);
		}
		for (i = 0; i < np; i++)
			left += is_ours(pids[i].pid) && proc_alive(pids[i].pid, 0);
		if (!left || ct_now_ms() > deadline)
			break;
	}
	if (left) {
		if (c->echo_pid > 0 && proc_alive(c->echo_pid, c->echo_start))
			kill(c->echo_pid, SIGKILL);
		for (i = 0; i < np; i++)
			if (is_ours(pids[i].pid) && proc_alive(pids[i].pid, 0))
				kill(pids[i].pid, SIGKILL);
		usleep(100000);
	}
	if (c->echo_pid > 0) {
		waitpid(c->echo_pid, NULL, WNOHANG);
		if (proc_alive(c->echo_pid, c->echo_start)) {
			fprintf(stderr, "ciliate connectivity test: ciliate-echo pid %d survives\n",
				(int)c->echo_pid);
			rc = -1;
		}
		c->echo_pid = 0;
	}
	free(pids);
	return rc;
}

/* CNI DEL of every endpoint of the suite's namespace the agents have, and the addresses. */
static int release_endpoints(struct ct_ctx *c)
{
	char err[600], prefix[200];
	size_t i, k, j;
	int rc = 0;

	snprintf(prefix, sizeof(prefix), "%s/", c->ns);
	for (i = 0; i < c->env.nnodes; i++) {
		const struct ct_node *n = &c->env.nodes[i];
		json_t *resp = ct_agent(n, AGENT_OP_ENDPOINT_LIST, NULL, 5000, err, sizeof(err)),
		       *ep;

		if (!resp) {
			fprintf(stderr, "ciliate connectivity test: cleanup: %s\n", err);
			rc = -1;
			continue;
		}
		json_array_foreach(json_object_get(resp, "endpoints"), k, ep)
		{
			const char *pod = json_string_value(json_object_get(ep, "pod")) ?: "";
			struct kubelet_pod kp;
			struct diag d = {{0}};

			if (strncmp(pod, prefix, strlen(prefix)))
				continue;
			kubelet_of(c, n, pod + strlen(prefix), 0, &kp);
			if (n->netns[0] ? kubelet_cni_del(&kp, &d) : host_cni(&kp, "DEL", &d)) {
				fprintf(stderr,
					"ciliate connectivity test: cleanup: CNI DEL of %s on "
					"%s: %s\n",
					pod, n->name, d.msg);
				rc = -1;
			}
		}
		json_decref(resp);
		/* an address allocated before a killed run's CNI ADD */
		for (j = 0; j < CT_PODS_MAX; j++) {
			char id[300];
			json_t *r;

			snprintf(id, sizeof(id), "%s/%s", c->ns, POD_DEFS[j].name);
			r = ct_agent(n, AGENT_OP_IPAM_RELEASE, json_pack("{s:s}", "pod", id), 5000,
				     err, sizeof(err));
			json_decref(r);
		}
	}
	return rc;
}

/* Deletes the store objects this suite wrote: those of its namespace (and the namespace)
 * whose source annotation is a manifest of the suite's run directory. */
static int delete_objects(struct ct_ctx *c)
{
	struct store_list l = {0};
	struct diag d = {{0}};
	char *refs = NULL, err[800], srcpfx[300];
	size_t i, nrefs = 0;
	struct store *st;
	int rc = 0;

	if (!c->env.store[0]) /* the cluster is gone, with its store */
		return 0;
	if (store_open(c->env.store, &st, &d)) {
		fprintf(stderr, "ciliate connectivity test: cleanup: store: %s\n", d.msg);
		return -1;
	}
	if (store_list(st, "/ciliate/objects/", &l, &d)) {
		fprintf(stderr, "ciliate connectivity test: cleanup: store: %s\n", d.msg);
		store_close(st);
		return -1;
	}
	store_close(st);
	snprintf(srcpfx, sizeof(srcpfx), "%s/", CT_RUN_DIR);
	for (i = 0; i < l.n; i++) {
		char kind[128], ns[256], name[256];
		const char *src;
		json_t *o;
		char *doc = NULL;

		if (sscanf(l.items[i].key, "/ciliate/objects/%127[^/]/%255[^/]/%255s", kind, ns,
			   name) != 3) {
			if (sscanf(l.items[i].key, "/ciliate/objects/%127[^/]//%255s", kind,
				   name) != 2)
				continue;
			ns[0] = '\0';
		}
		if (ns[0] ? strcmp(ns, c->ns) : (strcmp(kind, "Namespace") || strcmp(name, c->ns)))
			continue;
		o = json_loads(l.items[i].value, 0, NULL);
		src = json_string_value(json_object_get(
			json_object_get(json_object_get(o, "metadata"), "annotations"),
			MANIFEST_SOURCE_ANNOTATION));
		if (!src || strncmp(src, srcpfx, strlen(srcpfx))) {
			json_decref(o);
			continue; /* not written by the suite */
		}
		json_decref(o);
		if (asprintf(&doc, "%s---\nkind: %s\nmetadata: {name: %s%s%s}\n", refs ? refs : "",
			     kind, name, ns[0] ? ", namespace: " : "", ns) < 0)
			break;
		free(refs);
		refs = doc;
		nrefs++;
	}
	store_list_free(&l);
	if (nrefs && ct_store_apply(c, "cleanup", refs, true, err, sizeof(err))) {
		fprintf(stderr, "ciliate connectivity test: cleanup: %s\n", err);
		rc = -1;
	}
	free(refs);
	return rc;
}

static void remove_run_dir(const struct ct_ctx *c)
{
	struct dirent *de;
	DIR *dh = opendir(c->run_dir);
	char path[1024];

	while (dh && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->run_dir, de->d_name);
		unlink(path);
	}
	if (dh)
		closedir(dh);
	rmdir(c->run_dir);
	rmdir(CT_RUN_DIR); /* only when no other run's directory is there */
}

int ct_cleanup(struct ct_ctx *c, bool quiet)
{
	char **names = NULL;
	size_t n = 0;
	struct diag d = {{0}};
	int rc = 0;

	c->stop = NULL; /* runs to the end, also after Ctrl-C (each step is bounded) */
	if (!quiet)
		fprintf(stderr,
			"🧹 [%s] Removing the %s namespace, its pods, services and "
			"policies...\n",
			c->env.tag, c->ns);
	if (netns_list(c->netns_prefix, &names, &n))
		n = 0;
	rc |= stop_processes(c, names, n);
	rc |= release_endpoints(c);
	if (n && netns_del_many(names, n, &d)) {
		fprintf(stderr, "ciliate connectivity test: cleanup: %s\n", d.msg);
		rc = -1;
	}
	strv_free(names, n);
	rc |= delete_objects(c);
	remove_run_dir(c);
	names = NULL;
	n = 0;
	if (netns_list(c->netns_prefix, &names, &n) == 0 && n) {
		fprintf(stderr, "ciliate connectivity test: cleanup: %zu namespace(s) %s* left\n",
			n, c->netns_prefix);
		rc = -1;
	}
	strv_free(names, n);
	return rc ? -1 : 0;
}
