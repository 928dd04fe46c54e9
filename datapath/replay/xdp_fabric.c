/* SPDX-License-Identifier: Apache-2.0 */
#include "replay/xdp_fabric.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/cluster_model.h"

void xdp_fabric_mac(uint32_t ip, uint8_t mac[6])
{
	mac[0] = 0x0e;
	mac[1] = 0x5b;
	memcpy(mac + 2, &ip, 4);
}

static int in_prefix(uint32_t ip, uint32_t net, uint8_t len)
{
	uint32_t mask = len ? htonl(~0u << (32 - len)) : 0;

	return (ip & mask) == (net & mask);
}

int xdp_fabric_of_node(const struct cluster_model *m, const char *node, struct xdp_fabric *f,
		       struct diag *d)
{
	const struct m_cluster *c = &m->cluster;
	const struct m_node *self = cluster_find_node(m, node);
	size_t i;

	memset(f, 0, sizeof(*f));
	if (!self)
		return diag_fail(d, "%s: no node \"%s\" in the scenario", m->name, node);
	f->ip = self->ip;
	f->plen = c->underlay_cidr_len;
	for (i = 0; i < c->nnodes && f->npeers < XDP_FABRIC_MAX; i++) {
		const struct m_node *n = &c->nodes[i];

		if (n == self)
			continue;
		f->peers[f->npeers++] = n->ip;
		f->routes[f->nroutes++] = (struct xdp_fabric_route){
			.net = n->pod_cidr, .len = n->pod_cidr_len, .via = n->ip,
			.overlay = c->routing == ROUTING_TUNNEL,
		};
	}
	for (i = 0; i < c->next_hosts && f->npeers < XDP_FABRIC_MAX; i++) {
		uint32_t ip = c->ext_hosts[i].ip;

		f->peers[f->npeers++] = ip;
		if (!in_prefix(ip, c->underlay_cidr, c->underlay_cidr_len) &&
		    f->nroutes < XDP_FABRIC_MAX)
			f->routes[f->nroutes++] = (struct xdp_fabric_route){ .net = ip, .len = 32 };
	}
	return 0;
}

static int write_file(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0 || write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		err = -errno;
	if (fd >= 0)
		close(fd);
	return err;
}

static void add(char *buf, size_t sz, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add(char *buf, size_t sz, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*len >= sz)
		return;
	va_start(ap, fmt);
	w = vsnprintf(buf + *len, sz - *len, fmt, ap);
	va_end(ap);
	*len += w > 0 ? (size_t)w : 0;
}

static const char *ip4(uint32_t ip, char *buf)
{
	return inet_ntop(AF_INET, &ip, buf, INET_ADDRSTRLEN);
}

static const char *mac_str(uint32_t ip, char *buf)
{
	uint8_t m[6];

	xdp_fabric_mac(ip, m);
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

int xdp_fabric_enter(const struct xdp_fabric *f, uint32_t *ifindex, struct diag *d)
{
	static char script[16384];
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], mac[18];
	size_t len = 0, i;
	int status, err;
	FILE *ip;

	if (unshare(CLONE_NEWNET) < 0)
		return diag_fail_errno(d, -errno, "unshare(CLONE_NEWNET): %s (needs root)",
				       strerror(errno));
	add(script, sizeof(script), &len, "link set lo up\n");
	add(script, sizeof(script), &len,
	    "link add " XDP_FABRIC_DEV " address %s type veth peer name " XDP_FABRIC_PEER_DEV
	    "\n", mac_str(f->ip, mac));
	add(script, sizeof(script), &len, "link add ovl0 type veth peer name ovl1\nlink set ovl0 up\nlink set ovl1 up\n");
	add(script, sizeof(script), &len, "addr add %s/%u dev " XDP_FABRIC_DEV "\n", ip4(f->ip, a),
	    f->plen);
	add(script, sizeof(script), &len,
	    "link set " XDP_FABRIC_DEV " up\nlink set " XDP_FABRIC_PEER_DEV " up\n");
	for (i = 0; i < f->npeers; i++)
		add(script, sizeof(script), &len,
		    "neigh replace %s lladdr %s dev " XDP_FABRIC_DEV " nud permanent\n",
		    ip4(f->peers[i], a), mac_str(f->peers[i], mac));
	for (i = 0; i < f->nroutes; i++) {
		const struct xdp_fabric_route *r = &f->routes[i];

		if (r->overlay)
			add(script, sizeof(script), &len, "route add %s/%u dev ovl0\n",
			    ip4(r->net, a), r->len);
		else if (r->via)
			add(script, sizeof(script), &len,
			    "route add %s/%u via %s dev " XDP_FABRIC_DEV " onlink\n", ip4(r->net, a),
			    r->len, ip4(r->via, b));
		else
			add(script, sizeof(script), &len, "route add %s/%u dev " XDP_FABRIC_DEV "\n",
			    ip4(r->net, a), r->len);
	}
	if (len >= sizeof(script))
		return diag_fail(d, "fabric script too long");
	ip = popen("ip -batch - >/dev/null", "w");
	if (!ip)
		return diag_fail_errno(d, -errno, "running ip: %s", strerror(errno));
	fputs(script, ip);
	status = pclose(ip);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status))
		return diag_fail_errno(d, -EIO, "setting up the XDP fabric (ip -batch) failed");
	err = write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1");
	if (err)
		return diag_fail_errno(d, err, "enabling forwarding: %s", strerror(-err));
	*ifindex = if_nametoindex(XDP_FABRIC_DEV);
	if (!*ifindex)
		return diag_fail_errno(d, -ENODEV, XDP_FABRIC_DEV " did not appear");
	return 0;
}

int xdp_fabric_open(const struct xdp_fabric *f, uint32_t *ifindex, int *ns_fd, struct diag *d)
{
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), err;

	*ns_fd = -1;
	if (orig < 0)
		return diag_fail_errno(d, -errno, "opening this thread's network namespace: %s",
				       strerror(errno));
	err = xdp_fabric_enter(f, ifindex, d);
	if (!err) {
		*ns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (*ns_fd < 0)
			err = diag_fail_errno(d, -errno, "opening the fabric namespace: %s",
					      strerror(errno));
	}
	if (setns(orig, CLONE_NEWNET) < 0 && !err)
		err = diag_fail_errno(d, -errno, "returning to the original namespace: %s",
				      strerror(errno));
	close(orig);
	if (err && *ns_fd >= 0) {
		close(*ns_fd);
		*ns_fd = -1;
	}
	return err;
}
