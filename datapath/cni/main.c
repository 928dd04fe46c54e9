/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-cni: CNI 1.1 plugin (docs/CNI.md). Runs in the node's network namespace, as a
 * container runtime would run it. ADD creates the pod's veth pair by the shared conventions
 * (agent/api.h), gets the address from the agent and hands it the endpoint; DEL undoes it
 * idempotently; CHECK verifies it; STATUS asks the agent; GC removes endpoints that are not
 * in cni.dev/valid-attachments; VERSION lists the supported versions.
 *
 * Interfaces are configured by running iproute2 (`ip -batch -`), inside the container's
 * namespace where needed (fork, setns, exec).
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/api.h"
#include "cni.h"

#define STDIN_MAX     (1u << 20)
#define IP_TIMEOUT_MS 10000
#define POD_MAX	      320 /* "namespace/name" */

struct cni_ctx {
	const char *command;
	const char *container_id;
	const char *netns;
	const char *ifname;
	struct cni_netconf nc;
	struct cni_args args;
	char pod[POD_MAX];
	char host_if[IF_NAMESIZE];
	struct cni_error e;
};

static char *read_stdin(size_t *len)
{
	size_t cap = 8192;
	char *buf = malloc(cap);
	ssize_t r;

	*len = 0;
	while (buf) {
		if (*len + 1 >= cap) {
			char *n;

			if (cap >= STDIN_MAX) {
				free(buf);
				return NULL;
			}
			cap *= 2;
			n = realloc(buf, cap);
			if (!n) {
				free(buf);
				return NULL;
			}
			buf = n;
		}
		r = read(0, buf + *len, cap - *len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		*len += (size_t)r;
	}
	if (buf)
		buf[*len] = '\0';
	return buf;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Runs `ip -batch -` with the given commands, inside netns (a path) unless it is NULL.
 * With out != NULL, runs `ip -json -batch -` and captures stdout there (malloc'd).
 * Returns 0, or -1 with the commands' stderr in err.
 */
static int run_ip(const char *netns, const char *batch, char **out, char *err, size_t errsize)
{
	int in[2], eo[2], oo[2] = {-1, -1}, status = 0;
	size_t olen = 0, ocap = 0, elen = 0;
	int64_t deadline = now_ms() + IP_TIMEOUT_MS;
	char *obuf = NULL;
	pid_t pid;

	err[0] = '\0';
	if (out)
		*out = NULL;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(eo, O_CLOEXEC) < 0 ||
	    (out && pipe2(oo, O_CLOEXEC) < 0)) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errsize, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int nsfd;

		dup2(in[0], 0);
		dup2(eo[1], 2);
		dup2(out ? oo[1] : eo[1], 1);
		if (netns) {
			nsfd = open(netns, O_RDONLY | O_CLOEXEC);
			if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
				fprintf(stderr, "entering %s: %s\n", netns, strerror(errno));
				_exit(127);
			}
		}
		/* with out: `ip -json` for the show commands whose output is parsed */
		execlp("ip", "ip", out ? "-json" : "-batch", out ? "-batch" : "-",
		       out ? "-" : (char *)NULL, (char *)NULL);
		execl("/usr/sbin/ip", "ip", out ? "-json" : "-batch", out ? "-batch" : "-",
		      out ? "-" : (char *)NULL, (char *)NULL);
		execl("/sbin/ip", "ip", out ? "-json" : "-batch", out ? "-batch" : "-",
		      out ? "-" : (char *)NULL, (char *)NULL);
		fprintf(stderr, "cannot run ip (iproute2): %s\n", strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(eo[1]);
	if (out)
		close(oo[1]);
	if (write(in[1], batch, strlen(batch)) < 0) {
		/* reported through ip's exit status */
	}
	close(in[1]);
	fcntl(eo[0], F_SETFL, O_NONBLOCK);
	if (out)
		fcntl(oo[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		ssize_t r;
		bool any = false;

		if (out) {
			if (olen + 4096 + 1 > ocap) {
				char *n = realloc(obuf, ocap ? ocap * 2 : 16384);

				if (!n)
					break;
				obuf = n;
				ocap = ocap ? ocap * 2 : 16384;
			}
			r = read(oo[0], obuf + olen, ocap - olen - 1);
			if (r > 0) {
				olen += (size_t)r;
				any = true;
			}
		}
		r = read(eo[0], err + elen, errsize - elen - 1);
		if (r > 0) {
			elen += (size_t)r;
			err[elen] = '\0';
			any = true;
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(err + elen, errsize - elen, " (ip timed out)");
			status = 1;
			break;
		}
		if (!any)
			usleep(2000);
	}
	/* drain what is left */
	if (out && obuf) {
		ssize_t r;

		while (olen + 1 < ocap && (r = read(oo[0], obuf + olen, ocap - olen - 1)) > 0)
			olen += (size_t)r;
		obuf[olen] = '\0';
	}
	{
		ssize_t r;

		while (elen + 1 < errsize && (r = read(eo[0], err + elen, errsize - elen - 1)) > 0)
			elen += (size_t)r;
		err[elen] = '\0';
	}
	close(eo[0]);
	if (out) {
		close(oo[0]);
		*out = obuf;
	} else {
		free(obuf);
	}
	while (elen && (err[elen - 1] == '\n' || err[elen - 1] == ' '))
		err[--elen] = '\0';
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Runs `ip -j ...` inside netns and parses its JSON output. */
static json_t *ip_json(const char *netns, const char *cmd)
{
	char batch[256], err[512], *out = NULL;
	json_t *j;

	snprintf(batch, sizeof(batch), "%s\n", cmd);
	if (run_ip(netns, batch, &out, err, sizeof(err))) {
		free(out);
		return NULL;
	}
	j = out ? json_loads(out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	free(out);
	return j;
}

/* Looked up in-process (enter, look, come back): the plugin is single-threaded. */
static bool link_exists_in(const char *netns, const char *ifname)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int target = open(netns, O_RDONLY | O_CLOEXEC);
	bool yes = false;

	if (self >= 0 && target >= 0 && setns(target, CLONE_NEWNET) == 0) {
		yes = if_nametoindex(ifname) != 0;
		if (setns(self, CLONE_NEWNET) < 0) {
			fprintf(stderr, "ciliate-cni: cannot return to the node's namespace: %s\n",
				strerror(errno));
			_exit(1);
		}
	}
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return yes;
}

static void write_sysctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, val, strlen(val)) < 0) {
		/* best effort: proxy_arp also works with the default proxy_delay */
	}
	close(fd);
}

/* ---- agent calls ------------------------------------------------------------------------- */

static int agent_req(struct cni_ctx *c, json_t *req, json_t **resp)
{
	char err[512];
	int rc;

	*resp = NULL;
	rc = agent_call(c->nc.agent_socket, req, AGENT_DEFAULT_TIMEOUT_MS, resp, err, sizeof(err));
	json_decref(req);
	if (rc == -ENOENT || rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -EAGAIN)
		return cni_fail(&c->e, CNI_ERR_TRY_AGAIN, err,
				"the ciliate agent is not reachable: try again later");
	if (rc)
		return cni_fail(&c->e, CNI_ERR_AGENT, err, "talking to the ciliate agent failed");
	if (!json_is_true(json_object_get(*resp, "ok"))) {
		const char *code = json_string_value(json_object_get(*resp, "code"));
		const char *msg = json_string_value(json_object_get(*resp, "error"));
		int cc = CNI_ERR_AGENT;

		if (code && (!strcmp(code, AGENT_E_CONFLICT) || !strcmp(code, AGENT_E_EXHAUSTED)))
			cc = CNI_ERR_IPAM;
		else if (code && !strcmp(code, AGENT_E_NOT_READY))
			cc = CNI_ERR_TRY_AGAIN;
		cni_fail(&c->e, cc, code, "agent: %s", msg ? msg : "request failed");
		json_decref(*resp);
		*resp = NULL;
		return -1;
	}
	return 0;
}

/* ---- commands ---------------------------------------------------------------------------- */

static int need_env(struct cni_ctx *c, bool netns, bool path)
{
	if (!c->container_id || !*c->container_id)
		return cni_fail(&c->e, CNI_ERR_INVALID_ENV, "CNI_CONTAINERID",
				"CNI_CONTAINERID is required");
	if (!cni_container_id_valid(c->container_id))
		return cni_fail(&c->e, CNI_ERR_INVALID_ENV, "CNI_CONTAINERID",
				"CNI_CONTAINERID \"%.64s\" is invalid (letters, digits, '_', '.', "
				"'-')",
				c->container_id);
	if (!c->ifname || !*c->ifname)
		return cni_fail(&c->e, CNI_ERR_INVALID_ENV, "CNI_IFNAME", "CNI_IFNAME is required");
	if (!cni_ifname_valid(c->ifname))
		return cni_fail(&c->e, CNI_ERR_INVALID_ENV, "CNI_IFNAME",
				"CNI_IFNAME \"%.32s\" is not a valid interface name", c->ifname);
	if (netns && (!c->netns || !*c->netns))
		return cni_fail(&c->e, CNI_ERR_INVALID_ENV, "CNI_NETNS", "CNI_NETNS is required");
	if (path && !getenv("CNI_PATH"))
		return cni_fail(&c->e, CNI_ERR_INVALID_ENV, "CNI_PATH", "CNI_PATH is required");
	return cni_args_parse(getenv("CNI_ARGS"), &c->args, &c->e);
}

/* The pod is K8S_POD_NAMESPACE/K8S_POD_NAME, or default/<container id> without them. */
static void pod_of(struct cni_ctx *c)
{
	if (*c->args.pod_name)
		snprintf(c->pod, sizeof(c->pod), "%s/%s",
			 *c->args.pod_ns ? c->args.pod_ns : "default", c->args.pod_name);
	else
		snprintf(c->pod, sizeof(c->pod), "default/%.63s", c->container_id);
	agent_lxc_ifname(c->pod, c->host_if, sizeof(c->host_if));
}

static bool netns_ok(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int cmd_add(struct cni_ctx *c)
{
	char batch[1024], err[1024], pmac[24], hmac[24], addr[INET_ADDRSTRLEN], path[160], mtu[16] = "";
	json_t *resp, *res;
	uint32_t ip = 0;
	const char *ips;

	if (need_env(c, true, true))
		return -1;
	pod_of(c);
	if (!netns_ok(c->netns))
		return cni_fail(&c->e, CNI_ERR_UNKNOWN_CONTAINER, c->netns,
				"network namespace %s does not exist", c->netns);
	if (if_nametoindex(c->host_if))
		return cni_fail(&c->e, CNI_ERR_IF_EXISTS, c->host_if,
				"host interface %s for pod %s already exists", c->host_if, c->pod);
	if (link_exists_in(c->netns, c->ifname))
		return cni_fail(&c->e, CNI_ERR_IF_EXISTS, c->ifname,
				"interface %s already exists in %s", c->ifname, c->netns);

	if (c->args.ip)
		inet_ntop(AF_INET, &c->args.ip, addr, sizeof(addr));
	if (agent_req(c,
		      json_pack("{s:s, s:s, s:s, s:s}", "op", AGENT_OP_IPAM_ALLOCATE, "pod", c->pod,
				"container_id", c->container_id, "ip", c->args.ip ? addr : ""),
		      &resp))
		return -1;
	ips = json_string_value(json_object_get(resp, "ip"));
	if (!ips || inet_pton(AF_INET, ips, &ip) != 1) {
		json_decref(resp);
		return cni_fail(&c->e, CNI_ERR_AGENT, NULL, "agent returned no address");
	}
	json_decref(resp);
	inet_ntop(AF_INET, &ip, addr, sizeof(addr));
	agent_mac_format(AGENT_POD_MAC_PREFIX, ip, pmac, sizeof(pmac));
	agent_mac_format(AGENT_HOST_MAC_PREFIX, ip, hmac, sizeof(hmac));

	/* the pair, with the container end created right in its namespace, and the node's
	 * route to the pod: one iproute2 run (each exec counts at thousands of pods) */
	if (c->nc.mtu)
		snprintf(mtu, sizeof(mtu), " mtu %u", c->nc.mtu);
	snprintf(batch, sizeof(batch),
		 "link add %s%s address %s type veth peer name %s%s address %s netns %s\n"
		 "link set dev %s up\n"
		 "route replace %s/32 dev %s scope link\n",
		 c->host_if, mtu, hmac, c->ifname, mtu, pmac, c->netns, c->host_if, addr,
		 c->host_if);
	if (run_ip(NULL, batch, NULL, err, sizeof(err))) {
		cni_fail(&c->e, CNI_ERR_SETUP, err, "creating veth %s/%s with a route to %s failed",
			 c->host_if, c->ifname, addr);
		goto undo_link; /* the link may exist when the route failed */
	}
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/proxy_arp", c->host_if);
	write_sysctl(path, "1");
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/neigh/%s/proxy_delay", c->host_if);
	write_sysctl(path, "0");
	snprintf(batch, sizeof(batch),
		 "addr add %s/32 dev %s\n"
		 "link set dev %s up\n"
		 "route add %s dev %s scope link\n"
		 "route add default via %s dev %s\n",
		 addr, c->ifname, c->ifname, AGENT_GATEWAY, c->ifname, AGENT_GATEWAY, c->ifname);
	if (run_ip(c->netns, batch, NULL, err, sizeof(err))) {
		cni_fail(&c->e, CNI_ERR_SETUP, err, "configuring %s in %s failed", c->ifname,
			 c->netns);
		goto undo_link;
	}
	if (agent_req(c,
		      json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", AGENT_OP_ENDPOINT_ADD, "pod",
				c->pod, "container_id", c->container_id, "ifname", c->host_if,
				"netns", c->netns),
		      &resp))
		goto undo_link;
	json_decref(resp);
	res = cni_result_json(c->nc.version, c->host_if, c->ifname, c->netns, ip);
	json_dumpf(res, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("\n");
	json_decref(res);
	return 0;

undo_link:
	snprintf(batch, sizeof(batch), "link del dev %s\n", c->host_if);
	run_ip(NULL, batch, NULL, err, sizeof(err));
	{
		struct cni_error keep = c->e;

		if (!agent_req(c,
			       json_pack("{s:s, s:s, s:s}", "op", AGENT_OP_IPAM_RELEASE, "pod",
					 c->pod, "container_id", c->container_id),
			       &resp))
			json_decref(resp);
		c->e = keep;
	}
	return -1;
}

/* Finds the endpoint of this container (for DEL/GC without pod arguments). */
static void endpoint_by_container(struct cni_ctx *c)
{
	json_t *resp, *ep;
	size_t i;

	if (agent_req(c, json_pack("{s:s}", "op", AGENT_OP_ENDPOINT_LIST), &resp))
		return;
	json_array_foreach(json_object_get(resp, "endpoints"), i, ep)
	{
		const char *cid = json_string_value(json_object_get(ep, "containerID"));
		const char *pod = json_string_value(json_object_get(ep, "pod"));
		const char *ifn = json_string_value(json_object_get(ep, "ifname"));

		if (cid && pod && ifn && !strcmp(cid, c->container_id)) {
			snprintf(c->pod, sizeof(c->pod), "%s", pod);
			snprintf(c->host_if, sizeof(c->host_if), "%s", ifn);
			break;
		}
	}
	json_decref(resp);
}

/* Removes one attachment: the veth (host side; the peer goes with it), the endpoint, the
 * address. Missing pieces are fine. */
static int teardown(struct cni_ctx *c, bool by_pod)
{
	char batch[128], err[512];
	json_t *resp;

	if (*c->host_if && if_nametoindex(c->host_if)) {
		snprintf(batch, sizeof(batch), "link del dev %s\n", c->host_if);
		if (run_ip(NULL, batch, NULL, err, sizeof(err)) && if_nametoindex(c->host_if))
			return cni_fail(&c->e, CNI_ERR_IO, err, "deleting %s failed", c->host_if);
	} else if (c->netns && *c->netns && netns_ok(c->netns) && c->ifname &&
		   link_exists_in(c->netns, c->ifname)) {
		snprintf(batch, sizeof(batch), "link del dev %s\n", c->ifname);
		run_ip(c->netns, batch, NULL, err, sizeof(err));
	}
	if (agent_req(c,
		      json_pack("{s:s, s:s, s:s}", "op", AGENT_OP_ENDPOINT_DEL, "pod",
				by_pod ? c->pod : "", "container_id", c->container_id),
		      &resp))
		return -1;
	json_decref(resp);
	if (agent_req(c,
		      json_pack("{s:s, s:s, s:s}", "op", AGENT_OP_IPAM_RELEASE, "pod",
				by_pod ? c->pod : "", "container_id", c->container_id),
		      &resp))
		return -1;
	json_decref(resp);
	return 0;
}

static int cmd_del(struct cni_ctx *c)
{
	bool by_pod;

	if (need_env(c, false, false))
		return -1;
	by_pod = *c->args.pod_name != '\0';
	if (by_pod)
		pod_of(c);
	else
		endpoint_by_container(c);
	if (c->e.code && c->e.code != CNI_ERR_TRY_AGAIN)
		c->e.code = 0;
	if (c->e.code)
		return -1;
	return teardown(c, by_pod);
}

/* CHECK: the interface, its address and routes in the container, the host side, and the
 * agent's endpoint must all be as ADD left them. */
static int cmd_check(struct cni_ctx *c)
{
	char cmd[96], addr[INET_ADDRSTRLEN] = "", want_mac[24];
	json_t *resp, *ep, *j, *it, *ai;
	bool found = false, link_rt = false, def_rt = false, has_addr = false;
	const char *ip = NULL;
	uint32_t ipn = 0;
	size_t i, k;

	if (cni_version_cmp(c->nc.version, "0.4.0") < 0)
		return cni_fail(&c->e, CNI_ERR_INCOMPATIBLE_VERSION, c->nc.version,
				"CHECK needs cniVersion 0.4.0 or later");
	if (need_env(c, true, true))
		return -1;
	pod_of(c);
	if (!netns_ok(c->netns))
		return cni_fail(&c->e, CNI_ERR_UNKNOWN_CONTAINER, c->netns,
				"network namespace %s does not exist", c->netns);
	if (agent_req(c, json_pack("{s:s}", "op", AGENT_OP_ENDPOINT_LIST), &resp))
		return -1;
	json_array_foreach(json_object_get(resp, "endpoints"), i, ep)
	{
		const char *pod = json_string_value(json_object_get(ep, "pod"));

		if (!pod || strcmp(pod, c->pod))
			continue;
		found = true;
		ip = json_string_value(json_object_get(ep, "ip"));
		snprintf(addr, sizeof(addr), "%s", ip ? ip : "");
		if (!json_is_true(json_object_get(ep, "ready"))) {
			const char *why = json_string_value(json_object_get(ep, "error"));

			json_decref(resp);
			return cni_fail(&c->e, CNI_ERR_CHECK, why, "endpoint %s is not ready",
					c->pod);
		}
	}
	json_decref(resp);
	if (!found)
		return cni_fail(&c->e, CNI_ERR_CHECK, c->pod, "the agent has no endpoint for %s",
				c->pod);
	if (inet_pton(AF_INET, addr, &ipn) != 1)
		return cni_fail(&c->e, CNI_ERR_CHECK, addr, "endpoint %s has no address", c->pod);
	if (!if_nametoindex(c->host_if))
		return cni_fail(&c->e, CNI_ERR_CHECK, c->host_if, "host interface %s is missing",
				c->host_if);
	snprintf(cmd, sizeof(cmd), "addr show dev %s", c->ifname);
	j = ip_json(c->netns, cmd);
	if (!json_array_size(j)) {
		json_decref(j);
		return cni_fail(&c->e, CNI_ERR_CHECK, c->ifname, "interface %s is missing in %s",
				c->ifname, c->netns);
	}
	agent_mac_format(AGENT_POD_MAC_PREFIX, ipn, want_mac, sizeof(want_mac));
	it = json_array_get(j, 0);
	if (strcmp(json_string_value(json_object_get(it, "address")) ?: "", want_mac)) {
		json_decref(j);
		return cni_fail(&c->e, CNI_ERR_CHECK, want_mac, "%s has the wrong MAC address",
				c->ifname);
	}
	json_array_foreach(json_object_get(it, "addr_info"), k, ai)
	{
		const char *local = json_string_value(json_object_get(ai, "local"));

		if (local && !strcmp(local, addr) &&
		    json_integer_value(json_object_get(ai, "prefixlen")) == 32)
			has_addr = true;
	}
	json_decref(j);
	if (!has_addr)
		return cni_fail(&c->e, CNI_ERR_CHECK, addr, "%s lacks address %s/32", c->ifname,
				addr);
	j = ip_json(c->netns, "route show");
	json_array_foreach(j, k, it)
	{
		const char *dst = json_string_value(json_object_get(it, "dst"));
		const char *dev = json_string_value(json_object_get(it, "dev"));
		const char *gw = json_string_value(json_object_get(it, "gateway"));

		if (!dst || !dev || strcmp(dev, c->ifname))
			continue;
		if (!strcmp(dst, AGENT_GATEWAY) && !gw)
			link_rt = true;
		if (!strcmp(dst, "default") && gw && !strcmp(gw, AGENT_GATEWAY))
			def_rt = true;
	}
	json_decref(j);
	if (!link_rt || !def_rt)
		return cni_fail(&c->e, CNI_ERR_CHECK, c->ifname, "%s lacks the route %s", c->ifname,
				!link_rt ? AGENT_GATEWAY " dev IFNAME scope link"
					 : "default via " AGENT_GATEWAY);
	return 0;
}

static int cmd_status(struct cni_ctx *c)
{
	char err[512];
	json_t *req = json_pack("{s:s}", "op", AGENT_OP_STATUS), *resp = NULL;
	int rc;

	if (cni_version_cmp(c->nc.version, "1.1.0") < 0)
		return cni_fail(&c->e, CNI_ERR_INCOMPATIBLE_VERSION, c->nc.version,
				"STATUS needs cniVersion 1.1.0");
	rc = agent_call(c->nc.agent_socket, req, AGENT_DEFAULT_TIMEOUT_MS, &resp, err, sizeof(err));
	json_decref(req);
	if (rc || !json_is_true(json_object_get(resp, "ok"))) {
		json_decref(resp);
		return cni_fail(&c->e, CNI_ERR_NOT_AVAILABLE, rc ? err : NULL,
				"the ciliate agent is not available");
	}
	json_decref(resp);
	return 0;
}

static bool attachment_valid(json_t *valid, const char *cid)
{
	json_t *it;
	size_t i;

	json_array_foreach(valid, i, it)
	{
		const char *v = json_string_value(json_object_get(it, "containerID"));

		if (v && !strcmp(v, cid))
			return true;
	}
	return false;
}

static int cmd_gc(struct cni_ctx *c)
{
	json_t *resp, *ep;
	size_t i;
	int rc = 0;

	if (cni_version_cmp(c->nc.version, "1.1.0") < 0)
		return cni_fail(&c->e, CNI_ERR_INCOMPATIBLE_VERSION, c->nc.version,
				"GC needs cniVersion 1.1.0");
	if (agent_req(c, json_pack("{s:s}", "op", AGENT_OP_ENDPOINT_LIST), &resp))
		return -1;
	json_array_foreach(json_object_get(resp, "endpoints"), i, ep)
	{
		const char *cid = json_string_value(json_object_get(ep, "containerID"));
		const char *pod = json_string_value(json_object_get(ep, "pod"));
		const char *ifn = json_string_value(json_object_get(ep, "ifname"));
		const char *src = json_string_value(json_object_get(ep, "source"));

		if (!cid || !*cid || !pod || !ifn || !src || strcmp(src, "cni") ||
		    attachment_valid(c->nc.valid_attachments, cid))
			continue;
		c->container_id = cid;
		c->netns = NULL;
		c->ifname = NULL;
		snprintf(c->pod, sizeof(c->pod), "%s", pod);
		snprintf(c->host_if, sizeof(c->host_if), "%s", ifn);
		if (teardown(c, true))
			rc = -1;
	}
	json_decref(resp);
	return rc;
}

static int fail_out(struct cni_ctx *c)
{
	json_t *j = cni_error_json(c->nc.version[0] ? c->nc.version : NULL, &c->e);

	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("\n");
	json_decref(j);
	fprintf(stderr, "ciliate-cni %s: %s%s%s\n", c->command ? c->command : "?", c->e.msg,
		*c->e.details ? ": " : "", c->e.details);
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"NAME\n"
		"    ciliate-cni - the ciliate CNI 1.1 plugin (docs/CNI.md)\n"
		"\n"
		"SYNOPSIS\n"
		"    CNI_COMMAND=ADD|DEL|CHECK|STATUS|GC|VERSION CNI_CONTAINERID=ID \\\n"
		"    CNI_NETNS=PATH CNI_IFNAME=NAME CNI_PATH=DIRS [CNI_ARGS=K=V;...] \\\n"
		"        ciliate-cni < NETWORK-CONFIG.json\n"
		"    ciliate-cni --help\n"
		"\n"
		"DESCRIPTION\n"
		"    Run by a container runtime (libcni, podman, containerd, kubelet) in the node's\n"
		"    network namespace. ADD asks the node's ciliate-agent for an address, creates\n"
		"    the pod's veth pair (host side lxc..., container side CNI_IFNAME with IP/32,\n"
		"    routes via 169.254.1.1), hands the endpoint to the agent (programs attached)\n"
		"    and prints the result; DEL undoes it (idempotent); CHECK verifies it; STATUS\n"
		"    asks the agent; GC removes endpoints not in cni.dev/valid-attachments;\n"
		"    VERSION prints the supported versions. Results and errors go to stdout as\n"
		"    JSON; a diagnostic line goes to stderr on failure.\n"
		"\n"
		"NETWORK CONFIGURATION (stdin)\n"
		"    cniVersion    0.3.0, 0.3.1, 0.4.0, 1.0.0 or 1.1.0\n"
		"    name, type    required (type: ciliate-cni)\n"
		"    agentSocket   the agent's API socket, /run/ciliate/NODE/agent.sock\n"
		"                  (default $CILIATE_AGENT_SOCKET; neither: error 7)\n"
		"    mtu           MTU of both veth ends (68..65535; optional)\n"
		"    ipam          not supported (the agent allocates); {} is accepted\n"
		"    prevResult    accepted (CHECK compares it with the agent's record)\n"
		"    Example: {\"cniVersion\":\"1.0.0\",\"name\":\"ciliate\",\"type\":\"ciliate-cni\",\n"
		"              \"agentSocket\":\"/run/ciliate/node-1/agent.sock\"}\n"
		"\n"
		"ENVIRONMENT\n"
		"    CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH  as the CNI spec\n"
		"    CNI_ARGS   K8S_POD_NAMESPACE, K8S_POD_NAME (the pod is NS/NAME; without them\n"
		"               default/CNI_CONTAINERID, without a namespace default/NAME), IP\n"
		"               (request an address), K8S_POD_UID, K8S_POD_INFRA_CONTAINER_ID;\n"
		"               other keys need IgnoreUnknown=1\n"
		"    CILIATE_AGENT_SOCKET  the agent socket when the configuration has none\n"
		"\n"
		"EXIT STATUS\n"
		"    0 success; 1 with a CNI error object on stdout: code 1 version, 2 ipam,\n"
		"    3 no netns, 4 environment, 5 I/O, 6 not JSON, 7 invalid configuration,\n"
		"    11 agent unreachable (retry), 50 STATUS: agent not available, 100 interface\n"
		"    exists, 101 agent refused, 102 no address, 103 CHECK differs, 104 interface\n"
		"    setup failed. --help: 0; an unknown argument: 2.\n"
		"\n"
		"FILES\n"
		"    /etc/cni/net.d/05-ciliate.conflist  the network list `make install` writes\n"
		"\n"
		"SEE ALSO\n"
		"    ciliate-agent --help, docs/CNI.md, docs/INSTALL.md\n");
}

int main(int argc, char **argv)
{
	struct cni_ctx c = {0};
	size_t len = 0;
	char *in;
	int rc;

	/* Runtimes run plugins without arguments (the CNI protocol is environment + stdin). */
	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			usage(stdout);
			return 0;
		}
		fprintf(stderr, "ciliate-cni: unexpected argument \"%s\"\n\n", argv[1]);
		usage(stderr);
		return 2;
	}
	c.command = getenv("CNI_COMMAND");
	if ((!c.command || !*c.command) && isatty(STDIN_FILENO)) {
		/* a person at a terminal, not a runtime: say how, rather than wait for stdin */
		fprintf(stderr, "ciliate-cni: a CNI plugin, run by a container runtime with "
				"CNI_COMMAND set and the network configuration on stdin; "
				"ciliate-cni --help\n");
		return 2;
	}
	c.container_id = getenv("CNI_CONTAINERID");
	c.netns = getenv("CNI_NETNS");
	c.ifname = getenv("CNI_IFNAME");
	in = read_stdin(&len);
	if (c.command && !strcmp(c.command, "VERSION")) {
		json_t *v = in ? json_loadb(in, len, 0, NULL) : NULL, *out;

		out = cni_version_json(json_string_value(json_object_get(v, "cniVersion")));
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
		json_decref(out);
		json_decref(v);
		free(in);
		return 0;
	}
	if (!c.command || !*c.command) {
		cni_fail(&c.e, CNI_ERR_INVALID_ENV, "CNI_COMMAND", "CNI_COMMAND is required");
		goto fail;
	}
	if (!in) {
		cni_fail(&c.e, CNI_ERR_IO, NULL, "reading the network configuration failed");
		goto fail;
	}
	if (cni_netconf_parse(in, len, &c.nc, &c.e))
		goto fail;
	if (!strcmp(c.command, "ADD"))
		rc = cmd_add(&c);
	else if (!strcmp(c.command, "DEL"))
		rc = cmd_del(&c);
	else if (!strcmp(c.command, "CHECK"))
		rc = cmd_check(&c);
	else if (!strcmp(c.command, "STATUS"))
		rc = cmd_status(&c);
	else if (!strcmp(c.command, "GC"))
		rc = cmd_gc(&c);
	else
		rc = cni_fail(
			&c.e, CNI_ERR_INVALID_ENV, "CNI_COMMAND",
			"unknown CNI_COMMAND \"%.32s\" (ADD, DEL, CHECK, STATUS, GC, VERSION)",
			c.command);
	if (rc)
		goto fail;
	cni_netconf_free(&c.nc);
	free(in);
	return 0;
fail:
	rc = fail_out(&c);
	cni_netconf_free(&c.nc);
	free(in);
	return rc;
}
