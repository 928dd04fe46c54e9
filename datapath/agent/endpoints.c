/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local endpoint records: what the CNI plugin told the agent (pod, container, host veth,
 * netns), persisted in <state-dir>/endpoints.json so that a restarted agent knows them.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/ipaddr.h"

#define EPS_FILE "endpoints.json"

struct agent_ep *agent_ep_find(struct agent *a, const char *pod)
{
	size_t i;

	for (i = 0; i < a->neps; i++)
		if (!strcmp(a->eps[i].pod, pod))
			return &a->eps[i];
	return NULL;
}

struct agent_ep *agent_ep_find_cid(struct agent *a, const char *container_id)
{
	size_t i;

	if (!container_id || !*container_id)
		return NULL;
	for (i = 0; i < a->neps; i++)
		if (!strcmp(a->eps[i].container_id, container_id))
			return &a->eps[i];
	return NULL;
}

struct agent_ep *agent_ep_get(struct agent *a, const char *pod)
{
	struct agent_ep *ep = agent_ep_find(a, pod), *v;

	if (ep)
		return ep;
	v = realloc(a->eps, (a->neps + 1) * sizeof(*v));
	if (!v)
		return NULL;
	a->eps = v;
	ep = &v[a->neps++];
	memset(ep, 0, sizeof(*ep));
	snprintf(ep->pod, sizeof(ep->pod), "%s", pod);
	return ep;
}

void agent_ep_remove(struct agent *a, size_t i)
{
	memmove(&a->eps[i], &a->eps[i + 1], (a->neps - i - 1) * sizeof(a->eps[0]));
	a->neps--;
}

int agent_eps_load(struct agent *a, struct diag *d)
{
	char path[512], ipbuf[IP4_STR_MAX];
	json_t *root, *arr, *it;
	json_error_t je;
	size_t i;

	snprintf(path, sizeof(path), "%s/%s", a->state_dir, EPS_FILE);
	if (access(path, F_OK) < 0)
		return 0;
	root = json_load_file(path, 0, &je);
	if (!root)
		return diag_fail(d, "%s:%d: %s", path, je.line, je.text);
	arr = json_object_get(root, "endpoints");
	json_array_foreach(arr, i, it)
	{
		const char *pod = json_string_value(json_object_get(it, "pod"));
		const char *cid = json_string_value(json_object_get(it, "containerID"));
		const char *ifn = json_string_value(json_object_get(it, "ifname"));
		const char *netns = json_string_value(json_object_get(it, "netns"));
		const char *ip = json_string_value(json_object_get(it, "ip"));
		struct agent_ep *ep;

		if (!pod || !ifn || strlen(ifn) >= IF_NAMESIZE || strlen(pod) >= IPAM_POD_MAX) {
			agent_log(a, "%s: endpoints[%zu]: missing pod or ifname; ignored", path, i);
			continue;
		}
		ep = agent_ep_get(a, pod);
		if (!ep) {
			json_decref(root);
			return diag_fail_errno(d, -ENOMEM, "out of memory");
		}
		snprintf(ep->container_id, sizeof(ep->container_id), "%s", cid ? cid : "");
		snprintf(ep->ifname, sizeof(ep->ifname), "%s", ifn);
		snprintf(ep->netns, sizeof(ep->netns), "%s", netns ? netns : "");
		snprintf(ipbuf, sizeof(ipbuf), "%s", ip ? ip : "");
		if (ip4_parse(ipbuf, &ep->ip))
			ep->ip = 0;
		ep->recorded = true;
	}
	json_decref(root);
	return 0;
}

int agent_eps_save(struct agent *a, struct diag *d)
{
	char path[512], tmp[520], ip[IP4_STR_MAX];
	json_t *root, *arr = json_array();
	size_t i;
	int err = 0;

	root = json_pack("{s:s, s:o}", "node", a->o.node, "endpoints", arr);
	if (!root)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	for (i = 0; i < a->neps; i++) {
		const struct agent_ep *ep = &a->eps[i];

		if (!ep->recorded)
			continue;
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s}", "pod", ep->pod,
						     "containerID", ep->container_id, "ifname",
						     ep->ifname, "netns", ep->netns, "ip",
						     ep->ip ? ip4_format(ep->ip, ip) : ""));
	}
	snprintf(path, sizeof(path), "%s/%s", a->state_dir, EPS_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(root, tmp, JSON_INDENT(1) | JSON_PRESERVE_ORDER) < 0)
		err = diag_fail_errno(d, -EIO, "writing %s failed", tmp);
	else if (rename(tmp, path) < 0)
		err = diag_fail_errno(d, -errno, "renaming %s: %s", tmp, strerror(errno));
	json_decref(root);
	return err;
}

json_t *agent_ep_json(const struct agent *a, const struct agent_ep *ep)
{
	char ip[IP4_STR_MAX], mac[24], hmac[24];
	const struct endpoint_info *in = &ep->info;

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", in->mac[0], in->mac[1],
		 in->mac[2], in->mac[3], in->mac[4], in->mac[5]);
	snprintf(hmac, sizeof(hmac), "%02x:%02x:%02x:%02x:%02x:%02x", in->node_mac[0],
		 in->node_mac[1], in->node_mac[2], in->node_mac[3], in->node_mac[4],
		 in->node_mac[5]);
	bool ing = in->flags & EP_F_INGRESS_ENFORCED, eg = in->flags & EP_F_EGRESS_ENFORCED;

	/* policyEnforcement: booleans; policyIngress/EgressEnforcement: as cilium-dbg shows */
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:o, s:s, s:s, s:b, "
			 "s:{s:b, s:b}, s:s, s:s, s:s, s:s}",
			 "pod", ep->pod, "containerID", ep->container_id, "ifname", ep->ifname,
			 "ifindex", (json_int_t)ep->ifindex, "netns", ep->netns, "ip",
			 ep->ip ? ip4_format(ep->ip, ip) : "", "id", (json_int_t)in->ep_id,
			 "identity", (json_int_t)in->identity, "labels",
			 in->ep_id ? agent_identity_labels_json(a, in->identity) : json_array(),
			 "mac", in->ep_id ? mac : "", "hostMAC", in->ep_id ? hmac : "", "ready",
			 ep->ifindex && ep->attached_ifindex == ep->ifindex && in->ep_id,
			 "policyEnforcement", "ingress", ing, "egress", eg,
			 "policyIngressEnforcement", ing ? "Enabled" : "Disabled",
			 "policyEgressEnforcement", eg ? "Enabled" : "Disabled", "source",
			 ep->recorded ? "cni" : "discovered", "error", ep->error);
}
