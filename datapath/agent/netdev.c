/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's fabric device: the interface holding the node's address (the model's, from
 * underlayCIDR). from-netdev and to-netdev (bpf/progs/netdev.bpf.c) go on its TC ingress and
 * egress, and ciliate_node_cfg tells them the node's address, pod range, native-routing CIDR
 * and NAT settings. Both follow the model and the device: a re-created device gets the
 * programs again, a changed setting is written before the reconcile is published.
 *
 * XDP on the same device (prefilter, NodePort acceleration) is xdp.c's.
 *
 * With kube-proxy replacement the node forwards packets whose source is one of its own
 * addresses (NodePort SNAT to the node's address, a local backend's reply from a NodePort
 * frontend), which Linux drops as martians unless accept_local is set: the agent sets
 * net.ipv4.conf.all.accept_local in the node's namespace (docs/SERVICES.md).
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "loader/maps.h"

/* The interface that holds addr (network order), or "" and 0. */
static uint32_t netdev_find(uint32_t addr, char name[IF_NAMESIZE])
{
	struct ifaddrs *ifs, *i;
	uint32_t ifindex = 0;

	name[0] = '\0';
	if (!addr || getifaddrs(&ifs) < 0)
		return 0;
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		if (((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr != addr)
			continue;
		ifindex = if_nametoindex(i->ifa_name);
		snprintf(name, IF_NAMESIZE, "%s", i->ifa_name);
		break;
	}
	freeifaddrs(ifs);
	return ifindex;
}

/* The device's MTU (SIOCGIFMTU), or fallback. */
static uint16_t netdev_mtu(const char *name, uint16_t fallback)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint16_t mtu = fallback;

	if (fd < 0)
		return fallback;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0 && ifr.ifr_mtu <= 65535)
		mtu = (uint16_t)ifr.ifr_mtu;
	close(fd);
	return mtu;
}

/* Writes "value" to /proc/sys/net/ipv4/conf/<dev>/<key>; logs what it could not set. */
static int conf_set(struct agent *a, const char *dev, const char *key, const char *value,
		    const char *why)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/%s", dev, key);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (err)
		agent_log(a, "netdev: cannot set %s (%s): %s", path, strerror(-err), why);
	return err;
}

static int accept_local_set(struct agent *a)
{
	return conf_set(a, "all", "accept_local", "1",
			"NodePort replies from this node's address may be dropped as martians");
}

/*
 * An egress gateway forwards the replies it translates back to pods out of the fabric
 * device they came in on; the kernel would answer the external host with an ICMP redirect
 * naming the pod's address (a pod address leaking out of the cluster). A node routes for
 * its pods by design, so it sends no redirects (both "all" and the device's own setting
 * count).
 */
static void send_redirects_off(struct agent *a, const char *dev)
{
	const char *why = "the node may send ICMP redirects naming pod addresses";

	conf_set(a, "all", "send_redirects", "0", why);
	conf_set(a, dev, "send_redirects", "0", why);
}

static uint32_t node_ip(const struct agent *a)
{
	return a->have_ns && a->ns.node ? a->ns.node->ip : 0;
}

/* Called on the agent's timer tick: one getifaddrs() a tick. */
bool agent_netdev_changed(struct agent *a)
{
	char name[IF_NAMESIZE];

	return node_ip(a) && netdev_find(node_ip(a), name) != a->netdev_ifindex;
}

int agent_netdev_sync(struct agent *a, struct diag *d)
{
	char name[IF_NAMESIZE];
	struct node_config cfg;
	uint32_t ifindex;
	int err;

	if (!a->have_ns)
		return 0;
	ifindex = netdev_find(node_ip(a), name);
	if (ifindex && ifindex != a->netdev_ifindex) {
		a->netdev_ifindex = 0;
		if (agent_tc_attach((int)ifindex, datapath_prog_fd(a->dp, HOOK_FROM_NETDEV),
				    datapath_prog_fd(a->dp, HOOK_TO_NETDEV), d)) {
			diag_prefix(d, "fabric device %s", name);
			return -EIO;
		}
		a->netdev_ifindex = ifindex;
		agent_log(a, "netdev: from-netdev and to-netdev attached to %s (ifindex %u)", name,
			  ifindex);
		send_redirects_off(a, name);
	} else if (!ifindex) {
		a->netdev_ifindex = 0;
	}
	cfg = a->ns.cfg;
	cfg.fabric_ifindex = a->netdev_ifindex;
	agent_wireguard_node_cfg(a, &cfg);
	if (a->netdev_ifindex)
		cfg.mtu = netdev_mtu(name, cfg.mtu);
	if (!a->netdev_cfg_written || memcmp(&cfg, &a->netdev_cfg, sizeof(cfg))) {
		err = dp_node_config_set(a->dp, &cfg, d);
		if (err)
			return err;
	}
	/* XDP after the config it reads (xdp.c) */
	err = agent_xdp_sync(a, a->netdev_ifindex, name, d);
	if (err)
		return err;
	if (a->netdev_cfg_written && !memcmp(&cfg, &a->netdev_cfg, sizeof(cfg)))
		return 0;
	if ((cfg.flags & NODE_CFG_F_KPR) && !(a->netdev_cfg.flags & NODE_CFG_F_KPR))
		accept_local_set(a);
	a->netdev_cfg = cfg;
	a->netdev_cfg_written = true;
	return 0;
}
