/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-node datapath state: the endpoints (non-hostNetwork pods of the node), the ipcache
 * (every pod /32, every node /32, every policy CIDR), the policy map entries of the
 * node's endpoints and the service entries (node_services.c).
 */
#include "model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"
#include "policy.h"
#include "policy_cilium.h"

/* Endpoint ids are 1-based positions among all pods, so they agree across nodes. */
static uint32_t pod_ep_id(const struct cluster_model *m, const struct m_pod *pod)
{
	return (uint32_t)(pod - m->pods) + 1;
}

static void fill_endpoint(const struct cluster_model *m, const struct m_pod *pod,
			  struct node_endpoint *ep)
{
	const uint8_t *ip = (const uint8_t *)&pod->ip;

	memset(ep, 0, sizeof(*ep));
	ep->pod = pod;
	ep->info.ep_id = pod_ep_id(m, pod);
	ep->info.ifindex = NODE_STATE_IFINDEX_BASE + ep->info.ep_id;
	ep->info.identity = pod->identity;
	ep->info.mac[0] = 0x0a;
	ep->info.mac[1] = 0x58;
	ep->info.node_mac[0] = 0x0e;
	ep->info.node_mac[1] = 0x58;
	memcpy(&ep->info.mac[2], ip, 4);
	memcpy(&ep->info.node_mac[2], ip, 4);
	ep->info.family = CILIATE_AF_INET;
	ep->info.addr.v4 = pod->ip;
}

static int build_endpoints(const struct cluster_model *m, const struct m_node *node,
			   struct node_state *ns)
{
	size_t i, n = 0;

	for (i = 0; i < m->npods; i++)
		if (!m->pods[i].host_network && !strcmp(m->pods[i].node, node->name))
			n++;
	ns->eps = calloc(n ? n : 1, sizeof(*ns->eps));
	if (!ns->eps)
		return -ENOMEM;
	for (i = 0; i < m->npods; i++)
		if (!m->pods[i].host_network && !strcmp(m->pods[i].node, node->name))
			fill_endpoint(m, &m->pods[i], &ns->eps[ns->neps++]);
	return 0;
}

static bool ipcache_has(const struct node_state *ns, uint32_t addr, uint8_t len)
{
	size_t i;

	for (i = 0; i < ns->nipcache; i++)
		if (ns->ipcache[i].key.addr.v4 == addr &&
		    ns->ipcache[i].key.prefixlen == (uint32_t)(IPCACHE_PREFIX_BASE + len))
			return true;
	return false;
}

static void ipcache_add(struct node_state *ns, uint32_t addr, uint8_t len, uint32_t identity,
			uint32_t tunnel, uint8_t flags)
{
	struct node_ipcache_entry *e = &ns->ipcache[ns->nipcache++];

	memset(e, 0, sizeof(*e));
	e->key.prefixlen = IPCACHE_PREFIX_BASE + len;
	e->key.family = CILIATE_AF_INET;
	e->key.addr.v4 = addr;
	e->val.identity = identity;
	e->val.tunnel_endpoint = tunnel;
	e->val.flags = flags;
}

/* A remote node's pod CIDR routes to that node even for a pod this node has not heard of yet
 * (its agent is a store event behind): the tunnel endpoint is the node, the identity what the
 * address resolved to without this entry (the longest enclosing policy CIDR, else world). */
static void add_remote_pod_cidr(struct node_state *ns, const struct m_node *n,
				const struct cidr_table *cidrs)
{
	uint32_t identity = IDENTITY_WORLD;
	int best = -1;
	size_t i;

	if (!n->pod_cidr_len)
		return;
	for (i = 0; i < ns->nipcache; i++) {
		struct node_ipcache_entry *e = &ns->ipcache[i];

		if (e->key.addr.v4 == n->pod_cidr &&
		    e->key.prefixlen == (uint32_t)(IPCACHE_PREFIX_BASE + n->pod_cidr_len)) {
			e->val.tunnel_endpoint = n->ip; /* a policy CIDR of exactly this range */
			return;
		}
	}
	for (i = 0; i < cidrs->n; i++) {
		const struct cidr4 *c = &cidrs->v[i].cidr;

		if ((int)c->len > best && cidr4_contains(c->addr, c->len, n->pod_cidr, n->pod_cidr_len)) {
			best = c->len;
			identity = cidrs->v[i].id;
		}
	}
	ipcache_add(ns, n->pod_cidr, n->pod_cidr_len, identity, n->ip, 0);
}

static int build_ipcache(const struct cluster_model *m, const struct m_node *node,
			 const struct cidr_table *cidrs, struct node_state *ns)
{
	const struct m_cluster *cl = &m->cluster;
	const struct m_node *host;
	size_t i, max = m->npods + 2 * cl->nnodes + cidrs->n;

	ns->ipcache = calloc(max ? max : 1, sizeof(*ns->ipcache));
	if (!ns->ipcache)
		return -ENOMEM;
	for (i = 0; i < m->npods; i++) {
		if (m->pods[i].host_network)
			continue;
		host = cluster_find_node(m, m->pods[i].node);
		ipcache_add(ns, m->pods[i].ip, 32, m->pods[i].identity, host ? host->ip : 0,
			    IPCACHE_F_ENDPOINT);
	}
	for (i = 0; i < cl->nnodes; i++) {
		if (&cl->nodes[i] == node)
			ipcache_add(ns, node->ip, 32, IDENTITY_HOST, 0, IPCACHE_F_LOCAL_NODE);
		else
			ipcache_add(ns, cl->nodes[i].ip, 32, IDENTITY_REMOTE_NODE, cl->nodes[i].ip,
				    0);
	}
	/* a CIDR equal to a pod or node /32 keeps the pod/node identity */
	for (i = 0; i < cidrs->n; i++)
		if (!ipcache_has(ns, cidrs->v[i].cidr.addr, cidrs->v[i].cidr.len))
			ipcache_add(ns, cidrs->v[i].cidr.addr, cidrs->v[i].cidr.len, cidrs->v[i].id,
				    0, 0);
	for (i = 0; i < cl->nnodes; i++)
		if (&cl->nodes[i] != node)
			add_remote_pod_cidr(ns, &cl->nodes[i], cidrs);
	return 0;
}

static int build_policy(const struct cluster_model *m, const struct cidr_table *cidrs,
			struct node_state *ns)
{
	const char *localhost = cluster_config(m, "allow-localhost");
	struct policy_compile_ctx cc;
	struct policy_builder pb;
	struct node_endpoint *ep;
	uint32_t flags, host_rule = 0;
	size_t i, j;
	int err;

	err = polb_init(&pb);
	if (err)
		return err;
	cc.m = m;
	cc.cidrs = cidrs;
	cc.pb = &pb;
	for (i = 0; i < ns->neps; i++) {
		ep = &ns->eps[i];
		flags = 0;
		for (j = 0; j < m->npolicies; j++) {
			err = netpol_compile_endpoint(&cc, m->policies[j], ep->pod, ep->info.ep_id,
						      &flags);
			if (!err)
				err = cnp_compile_endpoint(&cc, m->policies[j], ep->pod,
							   ep->info.ep_id, &flags);
			if (err)
				goto out;
		}
		ep->info.flags |= flags;
		/* Cilium's allow-localhost default: the node may always reach its pods */
		if (!(flags & EP_F_INGRESS_ENFORCED) || (localhost && !strcmp(localhost, "policy")))
			continue;
		if (!host_rule) {
			err = polb_rule_id(&pb, "reserved:host allow-localhost", &host_rule);
			if (err)
				goto out;
		}
		err = polb_add(&pb, ep->info.ep_id, DIR_INGRESS, IDENTITY_HOST, POLB_ANY_PROTO, 0, 0,
			       0, host_rule);
		if (err)
			goto out;
	}
	err = polb_finish(&pb, ns);
out:
	polb_free(&pb);
	return err;
}

/* What the netdev programs need to know of the node (ciliate_node_cfg). */
static void node_config_of(const struct cluster_model *m, const struct m_node *nd,
			   struct node_config *c)
{
	const struct m_lb_config *lb = cluster_lb_config(m);

	memset(c, 0, sizeof(*c));
	c->node_ip = nd->ip;
	c->pod_cidr = nd->pod_cidr;
	c->pod_cidr_len = nd->pod_cidr_len;
	c->native_cidr = lb->native_routing_cidr;
	c->native_cidr_len = lb->native_routing_cidr_len;
	c->lb_mode = (uint8_t)lb->mode;
	c->mtu = 1500; /* the agent writes its fabric device's */
	if (lb->bpf_masquerade)
		c->flags |= NODE_CFG_F_MASQUERADE;
	if (lb->kube_proxy_replacement)
		c->flags |= NODE_CFG_F_KPR;
	/* The IPv4 option dispatch works in native routing only (as Cilium's: in tunnel routing
	 * DSR frontends are served with SNAT). The ipip and geneve dispatches are built in BPF
	 * and sent on the fabric device to the backend's node, so they work in both routing
	 * modes (Cilium refuses geneve dispatch with VXLAN tunnelling; docs/SERVICES.md). */
	if (lb->dsr_dispatch == DSR_DISPATCH_OPT && m->cluster.routing == ROUTING_NATIVE)
		c->flags |= NODE_CFG_F_DSR_OPT;
	else if (lb->dsr_dispatch == DSR_DISPATCH_IPIP)
		c->flags |= NODE_CFG_F_DSR_IPIP;
	else if (lb->dsr_dispatch == DSR_DISPATCH_GENEVE)
		c->flags |= NODE_CFG_F_DSR_GENEVE;
	/* XDP on the fabric device (docs/XDP.md): NodePort acceleration serves the frontends
	 * of kube-proxy replacement; the prefilter works on its own */
	if (lb->xdp_acceleration && lb->kube_proxy_replacement)
		c->flags |= NODE_CFG_F_XDP_ACCEL;
	if (lb->nprefilter)
		c->flags |= NODE_CFG_F_PREFILTER;
	if (m->negress_policies)
		c->flags |= NODE_CFG_F_EGRESS_GW;
}

/* The prefilter's LPM entries (ciliate_prefilter) from prefilter-deny-cidrs. */
static int build_prefilter(const struct cluster_model *m, struct node_state *ns)
{
	const struct m_lb_config *lb = cluster_lb_config(m);
	size_t i;

	if (!lb->nprefilter)
		return 0;
	ns->prefilter = calloc(lb->nprefilter, sizeof(*ns->prefilter));
	if (!ns->prefilter)
		return -ENOMEM;
	for (i = 0; i < lb->nprefilter; i++) {
		struct prefilter_key *k = &ns->prefilter[i];

		k->prefixlen = PREFILTER_PREFIX_BASE + lb->prefilter_len[i];
		k->family = CILIATE_AF_INET;
		k->addr.v4 = lb->prefilter_net[i];
	}
	ns->nprefilter = lb->nprefilter;
	return 0;
}

int node_state_compute(const struct cluster_model *m, const char *node, struct node_state *out,
		       struct diag *d)
{
	struct cidr_table cidrs = { 0 };
	const struct m_node *nd;
	size_t i;
	int err = 0;

	memset(out, 0, sizeof(*out));
	nd = cluster_find_node(m, node);
	if (!nd)
		return diag_fail_errno(d, -ENOENT, "%s: no node named \"%s\" in the Cluster",
				       m->name, node);
	out->node = nd;
	for (i = 0; !err && i < m->npolicies; i++) {
		err = netpol_collect_cidrs(m->policies[i], &cidrs);
		if (!err)
			err = cnp_collect_cidrs(m->policies[i], &cidrs);
	}
	if (!err)
		err = build_endpoints(m, nd, out);
	if (!err)
		err = build_ipcache(m, nd, &cidrs, out);
	if (!err)
		err = build_policy(m, &cidrs, out);
	if (!err)
		err = node_services_compute(m, out);
	if (!err)
		err = build_prefilter(m, out);
	if (!err)
		err = node_egress_compute(m, nd, out);
	if (!err)
		node_config_of(m, nd, &out->cfg);
	cidr_table_free(&cidrs);
	if (err) {
		node_state_free(out);
		return diag_fail_errno(d, err, "node %s: computing datapath state: out of memory",
				       node);
	}
	return 0;
}

void node_state_free(struct node_state *ns)
{
	size_t i;

	if (!ns)
		return;
	free(ns->eps);
	free(ns->ipcache);
	free(ns->policy);
	for (i = 0; i < ns->nrule_names; i++)
		free(ns->rule_names[i]);
	free(ns->rule_names);
	node_services_free(ns);
	free(ns->prefilter);
	free(ns->egress);
	memset(ns, 0, sizeof(*ns));
}

const struct node_endpoint *node_state_find_endpoint(const struct node_state *ns,
						     const char *ns_slash_name)
{
	const char *slash = strchr(ns_slash_name, '/');
	size_t nslen, i;

	if (!slash)
		return NULL;
	nslen = (size_t)(slash - ns_slash_name);
	for (i = 0; i < ns->neps; i++) {
		const struct m_pod *pod = ns->eps[i].pod;

		if (strlen(pod->ns) == nslen && !strncmp(pod->ns, ns_slash_name, nslen) &&
		    !strcmp(pod->name, slash + 1))
			return &ns->eps[i];
	}
	return NULL;
}
