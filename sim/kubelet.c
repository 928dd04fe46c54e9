/* SPDX-License-Identifier: Apache-2.0 */
/* Pod sandboxes for the simulator (see kubelet.h). */
#include "kubelet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kubelet_hash8(const char *s, char out[9])
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	snprintf(out, 9, "%08x", h);
}

void kubelet_pod_init(struct kubelet_pod *kp, const char *netns, const char *node_netns,
		      const char *ns, const char *name, uint32_t ip, unsigned int mtu)
{
	char h[9];

	memset(kp, 0, sizeof(*kp));
	snprintf(kp->id, sizeof(kp->id), "%s/%s", ns, name);
	snprintf(kp->netns, sizeof(kp->netns), "%s", netns);
	snprintf(kp->node_netns, sizeof(kp->node_netns), "%s", node_netns);
	kubelet_hash8(kp->id, h);
	snprintf(kp->lxc, sizeof(kp->lxc), "lxc%s", h);
	kp->ip = ip;
	kp->mtu = mtu;
}

int kubelet_node_init(const char *node_netns, struct diag *d)
{
	return SYS(d, "ip", "-n", (char *)node_netns, "addr", "add", KUBELET_GATEWAY "/32", "dev",
		   "lo", "scope", "host");
}

/* "0e:58:0a:f4:00:0a" for prefix 0x0e and 10.244.0.10. */
static void pod_mac(uint8_t prefix, uint32_t ip, char *buf, size_t size)
{
	const uint8_t *b = (const uint8_t *)&ip;

	snprintf(buf, size, "%02x:58:%02x:%02x:%02x:%02x", prefix, b[0], b[1], b[2], b[3]);
}

/* Runs ciliate-cni COMMAND for kp inside its node's namespace (like a runtime running on
 * that node; entered by setns in the child), the network configuration on stdin and the CNI
 * variables as its whole environment plus PATH (the plugin runs iproute2). */
static int cni_run(const struct kubelet_pod *kp, const char *command, struct diag *d)
{
	char ip[INET_ADDRSTRLEN], bin[4200], conf[600], mtu[32] = "";
	char e_cmd[32], e_id[64], e_netns[NETNS_NAME_MAX + 32], e_args[KUBELET_ID_MAX + 96];
	char e_path[4120], e_syspath[4200], h[9], ns[64];
	const char *slash = strchr(kp->id, '/'), *path = getenv("PATH");

	if (!slash)
		return diag_fail(d, "pod %s: no namespace", kp->id);
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - kp->id), kp->id);
	inet_ntop(AF_INET, &kp->ip, ip, sizeof(ip));
	kubelet_hash8(kp->id, h);
	snprintf(bin, sizeof(bin), "%s/ciliate-cni", kp->cni_dir);
	if (kp->mtu && kp->mtu != 1500)
		snprintf(mtu, sizeof(mtu), ",\"mtu\":%u", kp->mtu);
	snprintf(conf, sizeof(conf),
		 "{\"cniVersion\":\"1.1.0\",\"name\":\"ciliate\",\"type\":\"ciliate-cni\","
		 "\"agentSocket\":\"%s\"%s}", kp->agent_sock, mtu);
	snprintf(e_cmd, sizeof(e_cmd), "CNI_COMMAND=%s", command);
	snprintf(e_id, sizeof(e_id), "CNI_CONTAINERID=sim-%s", h);
	snprintf(e_netns, sizeof(e_netns), "CNI_NETNS=" NETNS_RUN_DIR "/%s", kp->netns);
	snprintf(e_args, sizeof(e_args), "CNI_ARGS=K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;IP=%s", ns,
		 slash + 1, ip);
	snprintf(e_path, sizeof(e_path), "CNI_PATH=%s", kp->cni_dir);
	snprintf(e_syspath, sizeof(e_syspath), "PATH=%s",
		 path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	return sys_runv_in(kp->node_netns,
			   (char *const[]){ e_cmd, e_id, e_netns, "CNI_IFNAME=eth0", e_args, e_path,
					    e_syspath, NULL },
			   conf, (char *const[]){ bin, NULL }, d);
}

int kubelet_cni_del(const struct kubelet_pod *kp, struct diag *d)
{
	return cni_run(kp, "DEL", d);
}

/* In-process where a runtime would be (namespace, loopback) and one exec of the plugin,
 * which sets the tunnel's MTU from the configuration's "mtu": at 10,000 pods each exec
 * saved is seconds. */
static int cni_add_pod(const struct kubelet_pod *kp, struct diag *d)
{
	int err;

	err = netns_add_here(kp->netns, d);
	if (!err)
		err = cni_run(kp, "ADD", d);
	if (!err) /* the plugin leaves lo alone, as CNI plugins do: the runtime's part */
		err = netns_link_up(kp->netns, "lo", d);
	if (err) {
		diag_prefix(d, "pod %s (ciliate-cni)", kp->id);
		cni_run(kp, "DEL", NULL);
		kubelet_del_pod(kp, NULL);
	}
	return err;
}

int kubelet_add_pod(const struct kubelet_pod *kp, struct diag *d)
{
	char ip[INET_ADDRSTRLEN], host_mac[18], pod_mac_s[18], script[1024], key[64];
	const char *kv[2];
	int err;

	if (kp->agent_sock[0])
		return cni_add_pod(kp, d);
	inet_ntop(AF_INET, &kp->ip, ip, sizeof(ip));
	pod_mac(0x0e, kp->ip, host_mac, sizeof(host_mac));
	pod_mac(0x0a, kp->ip, pod_mac_s, sizeof(pod_mac_s));

	err = netns_add_here(kp->netns, d);
	if (err)
		goto out;
	snprintf(script, sizeof(script),
		 "link add %s mtu %u address %s type veth peer name eth0 mtu %u address %s "
		 "netns %s\n"
		 "link set %s up\n"
		 "route add %s/32 dev %s\n",
		 kp->lxc, kp->mtu, host_mac, kp->mtu, pod_mac_s, kp->netns, kp->lxc, ip, kp->lxc);
	err = ip_batch(kp->node_netns, script, d);
	if (err)
		goto out;
	snprintf(key, sizeof(key), "net/ipv4/conf/%s/proxy_arp", kp->lxc);
	kv[0] = key;
	kv[1] = "1";
	err = netns_sysctl(kp->node_netns, kv, 1, d);
	if (err)
		goto out;
	snprintf(script, sizeof(script),
		 "link set lo up\n"
		 "addr add %s/32 dev eth0\n"
		 "link set eth0 up\n"
		 "route add " KUBELET_GATEWAY " dev eth0 scope link\n"
		 "route add default via " KUBELET_GATEWAY " dev eth0\n",
		 ip);
	err = ip_batch(kp->netns, script, d);
out:
	if (err) {
		diag_prefix(d, "pod %s", kp->id);
		kubelet_del_pod(kp, NULL);
	}
	return err;
}

int kubelet_del_pod(const struct kubelet_pod *kp, struct diag *d)
{
	char *names[1] = { (char *)kp->netns };

	/* the veth pair (and with it the node's route) goes away with either end */
	if (netns_exists(kp->node_netns))
		SYS(NULL, "ip", "-n", (char *)kp->node_netns, "link", "del", (char *)kp->lxc);
	return netns_del_many(names, 1, d);
}
