/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pod sandboxes for the simulator: what a container runtime plus a CNI plugin would do for
 * one pod. kubelet_add_pod() creates the pod's network namespace and plumbs it into its
 * node; kubelet_del_pod() undoes that. A later change replaces the plumbing with a call to
 * the real `ciliate-cni` plugin, keeping these conventions:
 *
 *   pod side   eth0, MAC 0a:58:A:B:C:D, address A.B.C.D/32, routes
 *              "169.254.1.1 dev eth0 scope link" and "default via 169.254.1.1 dev eth0"
 *   node side  lxc<hash8> (hash of "ns/name"), MAC 0e:58:A:B:C:D, proxy_arp=1,
 *              route "A.B.C.D/32 dev lxc<hash8>"
 *
 * The node itself holds 169.254.1.1/32 (scope host, on lo: see kubelet_node_init()) so the
 * pod's ARP for its gateway is answered with the lxc device's MAC.
 */
#ifndef CILIATE_SIM_KUBELET_H
#define CILIATE_SIM_KUBELET_H

#include <net/if.h>
#include <stdint.h>

#include "common/diag.h"
#include "netns.h"

#define KUBELET_GATEWAY "169.254.1.1"
#define KUBELET_ID_MAX 320

struct kubelet_pod {
	char id[KUBELET_ID_MAX];          /* "ns/name" */
	char netns[NETNS_NAME_MAX];       /* the pod's sandbox namespace */
	char node_netns[NETNS_NAME_MAX];  /* the node it runs on */
	char lxc[IFNAMSIZ];               /* host-side veth in the node */
	uint32_t ip;                      /* network order */
	unsigned int mtu;
	char agent_sock[300];             /* set: plumb through ciliate-cni with this agent */
	char cni_dir[4096];               /* where ciliate-cni is (CNI_PATH) */
};

/* Writes the 32-bit FNV-1a hash of s as 8 lowercase hex digits into out. */
void kubelet_hash8(const char *s, char out[9]);

/* Fills kp for pod ns/name with the given sandbox and node namespaces (lxc name derived). */
void kubelet_pod_init(struct kubelet_pod *kp, const char *netns, const char *node_netns,
		      const char *ns, const char *name, uint32_t ip, unsigned int mtu);

/* Prepares a node netns for pods: the gateway address 169.254.1.1/32 on lo. */
int kubelet_node_init(const char *node_netns, struct diag *d);

/* Creates the pod's sandbox namespace and connects it to its node (conventions above):
 * with kp->agent_sock set by running `ciliate-cni` ADD in the node namespace (the agent
 * attaches the datapath), else by plumbing the veth directly. */
int kubelet_add_pod(const struct kubelet_pod *kp, struct diag *d);

/* CNI DEL of the pod (kp->agent_sock and cni_dir set); the sandbox namespace stays. */
int kubelet_cni_del(const struct kubelet_pod *kp, struct diag *d);

/* Removes the node side (veth and route) and the sandbox namespace; absent parts are fine. */
int kubelet_del_pod(const struct kubelet_pod *kp, struct diag *d);

#endif
