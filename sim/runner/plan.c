/* SPDX-License-Identifier: Apache-2.0 */
/* Planning: a scenario's Cluster, external hosts and pods → named namespaces, devices and
 * addresses (nothing is created here). */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ipaddr.h"

enum sim_routing sim_routing_override;

void sim_tag(const char *cluster_name, char out[SIM_TAG_MAX + 1])
{
	char clean[64], h[9];
	size_t n = 0;
	const char *p;

	for (p = cluster_name; *p && n < sizeof(clean) - 1; p++)
		if (isalnum((unsigned char)*p))
			clean[n++] = (char)tolower((unsigned char)*p);
	clean[n] = '\0';
	if (n && n <= SIM_TAG_MAX) {
		memcpy(out, clean, n + 1);
		return;
	}
	/* too long or empty: keep it readable and unique, "connectivity-same-node" → conn1a2b */
	kubelet_hash8(cluster_name, h);
	snprintf(out, SIM_TAG_MAX + 1, "%.4s%.4s", n ? clean : "c", h);
}

void sim_netns_prefix(const char *tag, char *buf, size_t size)
{
	snprintf(buf, size, SIM_PREFIX "%s-", tag);
}

/* Host names become namespace names: keep them to DNS-label characters. */
static int check_name(const char *what, const char *name, struct diag *d)
{
	const char *p;

	if (!*name || strlen(name) > 63)
		return diag_fail(d, "%s \"%s\": name must be 1..63 characters", what, name);
	for (p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return diag_fail(d, "%s \"%s\": only letters, digits, '-', '.' and '_' "
					 "can name a simulated host", what, name);
	return 0;
}

static int add_port(struct sim_host *h, uint16_t port, struct diag *d)
{
	size_t i;

	for (i = 0; i < h->nports; i++)
		if (h->ports[i] == port)
			return 0;
	if (h->nports == SIM_MAX_PORTS)
		return diag_fail(d, "%s: more than %d ports", h->name, SIM_MAX_PORTS);
	h->ports[h->nports++] = port;
	return 0;
}

static int plan_nodes(const struct cluster_model *m, struct sim_cluster *c, struct diag *d)
{
	const struct m_cluster *mc = &m->cluster;
	size_t i;
	int err;

	for (i = 0; i < mc->nnodes; i++) {
		const struct m_node *n = &mc->nodes[i];
		struct sim_host *h = &c->hosts[c->nhosts++];

		err = check_name("node", n->name, d);
		if (err)
			return err;
		if (!strcmp(n->name, "fabric") || !strncmp(n->name, "p-", 2) ||
		    !strncmp(n->name, "x-", 2))
			return diag_fail(d, "node \"%s\": the names \"fabric\", \"p-*\" and \"x-*\" "
					 "are reserved by the simulator's namespace naming", n->name);
		h->kind = SIM_NODE;
		snprintf(h->name, sizeof(h->name), "%s", n->name);
		snprintf(h->netns, sizeof(h->netns), SIM_PREFIX "%s-%s", c->tag, n->name);
		snprintf(h->node, sizeof(h->node), "%s", n->name);
		snprintf(h->ifname, sizeof(h->ifname), "n%u", (unsigned int)(i % 100000));
		h->ip = n->ip;
		h->pod_cidr = n->pod_cidr;
		h->pod_cidr_len = n->pod_cidr_len;
		h->own_netns = true;
	}
	return 0;
}

static int plan_ext(const struct cluster_model *m, struct sim_cluster *c, struct diag *d)
{
	const struct m_cluster *mc = &m->cluster;
	size_t i, k;
	int err;

	for (i = 0; i < mc->next_hosts; i++) {
		const struct m_external_host *x = &mc->ext_hosts[i];
		struct sim_host *h = &c->hosts[c->nhosts++];

		err = check_name("external host", x->name, d);
		if (err)
			return err;
		h->kind = SIM_EXT;
		snprintf(h->name, sizeof(h->name), "%s", x->name);
		snprintf(h->netns, sizeof(h->netns), SIM_PREFIX "%s-x-%s", c->tag, x->name);
		snprintf(h->ifname, sizeof(h->ifname), "x%u", (unsigned int)(i % 100000));
		h->ip = x->ip;
		h->own_netns = true;
		for (k = 0; k < x->nports; k++) {
			err = add_port(h, x->ports[k], d);
			if (err)
				return err;
		}
	}
	return 0;
}

static int plan_pods(const struct cluster_model *m, struct sim_cluster *c, struct diag *d)
{
	size_t i, j, k;
	int err;

	for (i = 0; i < m->npods; i++) {
		const struct m_pod *p = &m->pods[i];
		struct sim_host *h = &c->hosts[c->nhosts], *node;
		struct kubelet_pod kp;
		char hash[9];

		node = sim_find_host(c, SIM_NODE, p->node);
		if (!node)
			return diag_fail(d, "%s:%d: pod %s/%s: node \"%s\" is not in the Cluster",
					 p->file, p->line, p->ns, p->name, p->node);
		h->kind = SIM_POD;
		snprintf(h->name, sizeof(h->name), "%s/%s", p->ns, p->name);
		snprintf(h->node, sizeof(h->node), "%s", p->node);
		h->host_network = p->host_network;
		if (p->host_network) {
			snprintf(h->netns, sizeof(h->netns), "%s", node->netns);
			h->ip = node->ip;
		} else {
			kubelet_hash8(h->name, hash);
			snprintf(h->netns, sizeof(h->netns), SIM_PREFIX "%s-p-%s", c->tag, hash);
			kubelet_pod_init(&kp, h->netns, node->netns, p->ns, p->name, p->ip, c->mtu);
			snprintf(h->ifname, sizeof(h->ifname), "%s", kp.lxc);
			h->ip = p->ip;
			h->own_netns = true;
			for (j = c->nhosts; j-- > 0;)
				if (c->hosts[j].kind == SIM_POD && c->hosts[j].own_netns &&
				    !strcmp(c->hosts[j].netns, h->netns))
					return diag_fail(d, "pods %s and %s hash to the same namespace "
							 "%s: rename one", c->hosts[j].name,
							 h->name, h->netns);
		}
		for (k = 0; k < p->nports; k++) {
			if (p->ports[k].proto != IPPROTO_TCP && p->ports[k].proto != IPPROTO_UDP)
				continue; /* SCTP is checked by replay only */
			err = add_port(h, p->ports[k].port, d);
			if (err)
				return err;
		}
		c->nhosts++;
	}
	return 0;
}

/* A hostNetwork pod of the node already serves this port in the node's namespace. */
static bool node_port_taken(const struct sim_cluster *c, const struct sim_host *node,
			    uint16_t port)
{
	size_t i, k;

	for (i = 0; i < c->nhosts; i++) {
		const struct sim_host *h = &c->hosts[i];

		if (h->kind != SIM_POD || !h->host_network || strcmp(h->node, node->name))
			continue;
		for (k = 0; k < h->nports; k++)
			if (h->ports[k] == port)
				return true;
	}
	return false;
}

static int node_service(struct sim_cluster *c, const char *to, uint16_t port, uint8_t proto,
			struct diag *d)
{
	struct sim_host *node;

	if (strncmp(to, "node/", 5) || (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return 0;
	if (port >= SIM_NODEPORT_MIN && port <= SIM_NODEPORT_MAX)
		return 0; /* NodePort range: the datapath answers, not a host service */
	node = sim_find_host(c, SIM_NODE, to + 5);
	if (!node || node_port_taken(c, node, port))
		return 0;
	return add_port(node, port, d);
}

/* Probes to node/NAME on a port outside the NodePort range reach a service of the node
 * itself (like a kubelet or node-exporter port): the node runs an echo server on every such
 * port the scenario's Tests probe. */
static int plan_node_services(const struct scenario *s, struct sim_cluster *c, struct diag *d)
{
	size_t t, k, i, col;
	int err = 0;

	for (t = 0; t < s->ntests; t++) {
		for (k = 0; k < s->tests[t].nsteps; k++) {
			const struct m_step *st = &s->tests[t].steps[k];

			for (i = 0; !err && i < st->nprobes; i++)
				err = node_service(c, st->probes[i].to, st->probes[i].port,
						   st->probes[i].proto, d);
			for (i = 0; !err && i < st->nmatrices; i++)
				for (col = 0; !err && col < st->matrices[i].ncols; col++)
					err = node_service(c, st->matrices[i].cols[col],
							   st->matrices[i].port,
							   st->matrices[i].proto, d);
			if (err)
				return err;
		}
	}
	return 0;
}

int sim_plan(const struct scenario *s, struct sim_cluster *c, struct diag *d)
{
	int err;

	memset(c, 0, sizeof(*c));
	if (!s->model.has_cluster)
		return diag_fail(d, "%s: no Cluster document (apiVersion sim.ciliate.dev/v1, kind "
				 "Cluster)", s->path);
	if (sim_routing_override) {
		/* its own tag: the same scenario may run in both modes at once */
		char key[MODEL_NAME_MAX + 16];

		snprintf(key, sizeof(key), "%s@%s", s->model.cluster.name,
			 sim_routing_override == SIM_ROUTING_TUNNEL ? "tunnel" : "native");
		sim_tag(key, c->tag);
	} else {
		sim_tag(s->model.cluster.name, c->tag);
	}
	snprintf(c->name, sizeof(c->name), "%s", s->model.cluster.name);
	if (!realpath(s->path, c->scenario))
		snprintf(c->scenario, sizeof(c->scenario), "%s", s->path);
	snprintf(c->fabric, sizeof(c->fabric), SIM_PREFIX "%s-fabric", c->tag);
	snprintf(c->phase, sizeof(c->phase), "planned");
	c->tunnel = sim_routing_override ? sim_routing_override == SIM_ROUTING_TUNNEL
					 : s->model.cluster.routing == ROUTING_TUNNEL;
	c->mtu = c->tunnel ? SIM_TUNNEL_MTU : SIM_MTU;
	/* WireGuard wraps a pod packet in 60 more bytes (IPv4 outer); pods get the MTU Cilium
	 * gives them, 80 less (docs/ENCRYPTION.md) */
	if (s->model.cluster.encryption == ENCRYPTION_WIREGUARD ||
	    (cluster_config(&s->model, "enable-wireguard") &&
	     !strcmp(cluster_config(&s->model, "enable-wireguard"), "true")))
		c->mtu -= SIM_WIREGUARD_OVERHEAD;
	c->underlay = s->model.cluster.underlay_cidr;
	c->underlay_len = s->model.cluster.underlay_cidr_len;
	c->hosts = calloc(s->model.cluster.nnodes + s->model.cluster.next_hosts + s->model.npods + 1,
			  sizeof(*c->hosts));
	if (!c->hosts)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	err = plan_nodes(&s->model, c, d);
	if (!err)
		err = plan_ext(&s->model, c, d);
	if (!err)
		err = plan_pods(&s->model, c, d);
	if (!err)
		err = plan_node_services(s, c, d);
	if (err)
		sim_cluster_free(c);
	return err;
}

void sim_cluster_free(struct sim_cluster *c)
{
	free(c->hosts);
	strv_free(c->pins, c->npins);
	memset(c, 0, sizeof(*c));
}

struct sim_host *sim_find_host(const struct sim_cluster *c, enum sim_kind kind,
			       const char *name)
{
	size_t i;

	for (i = 0; i < c->nhosts; i++)
		if (c->hosts[i].kind == kind && !strcmp(c->hosts[i].name, name))
			return &c->hosts[i];
	return NULL;
}

const struct sim_host *sim_host_by_ip(const struct sim_cluster *c, uint32_t ip)
{
	const struct sim_host *node = NULL;
	size_t i;

	for (i = 0; i < c->nhosts; i++) {
		if (c->hosts[i].ip != ip)
			continue;
		if (c->hosts[i].kind != SIM_NODE && !c->hosts[i].host_network)
			return &c->hosts[i];
		if (c->hosts[i].kind == SIM_NODE)
			node = &c->hosts[i];
	}
	return node;
}
