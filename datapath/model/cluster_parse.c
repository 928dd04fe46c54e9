/* SPDX-License-Identifier: Apache-2.0 */
/* The sim.ciliate.dev/v1 Cluster document: nodes and their addressing, external hosts,
 * cilium-config keys. Strict: unknown fields are errors. */
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"
#include "labels.h"

static int parse_cidr_field(struct parse_ctx *p, const yaml_node_t *spec, const char *key,
			    const char *path, uint32_t *addr, uint8_t *len)
{
	yaml_node_t *n = yt_map_get(&p->yt, spec, key);
	const char *v;
	int err;

	if (!n)
		return 0; /* keep the default */
	err = yt_want_scalar(&p->yt, n, path);
	if (err)
		return err;
	v = yt_scalar(n);
	if (cidr4_parse(v, true, addr, len))
		return yt_fail(&p->yt, n, path, "bad CIDR \"%s\" (want A.B.C.D/N with no host bits)",
			       v);
	return 0;
}

static int parse_enum(struct parse_ctx *p, const yaml_node_t *spec, const char *key,
		      const char *const *names, int *out)
{
	yaml_node_t *n = yt_map_get(&p->yt, spec, key);
	char path[YT_PATH_MAX];
	const char *v;
	int i;

	if (!n)
		return 0;
	yt_path(path, "spec.%s", key);
	v = yt_scalar(n);
	for (i = 0; v && names[i]; i++) {
		if (!strcmp(v, names[i])) {
			*out = i;
			return 0;
		}
	}
	return yt_fail(&p->yt, n, path, "unknown value \"%s\" (want %s | %s%s%s)", v ? v : "",
		       names[0], names[1], names[2] ? " | " : "", names[2] ? names[2] : "");
}

/* Gives node i its address and pod range; pinned ranges are validated here. */
static int node_addressing(struct parse_ctx *p, struct m_cluster *cl, size_t i,
			   const yaml_node_t *item, const char *path)
{
	struct m_node *nd = &cl->nodes[i];
	uint64_t host_count = 1ull << (32 - cl->underlay_cidr_len);
	char sub[YT_PATH_MAX], a[CIDR4_STR_MAX], b[CIDR4_STR_MAX];
	yaml_node_t *pin = yt_map_get(&p->yt, item, "podCIDR");
	int err;

	if (cl->underlay_cidr_len > 30 || i + 2 >= host_count)
		return yt_fail(&p->yt, item, path, "underlayCIDR %s has no address left for node",
			       cidr4_format(cl->underlay_cidr, cl->underlay_cidr_len, a));
	nd->ip = htonl(ntohl(cl->underlay_cidr) + (uint32_t)i + 1);

	yt_path(sub, "%s.podCIDR", path);
	if (pin) {
		err = parse_cidr_field(p, item, "podCIDR", sub, &nd->pod_cidr, &nd->pod_cidr_len);
		if (err)
			return err;
		if (!cidr4_contains(cl->pod_cidr, cl->pod_cidr_len, nd->pod_cidr, nd->pod_cidr_len))
			return yt_fail(&p->yt, pin, sub, "%s is not inside the cluster podCIDR %s",
				       yt_scalar(pin),
				       cidr4_format(cl->pod_cidr, cl->pod_cidr_len, a));
		if (nd->pod_cidr_len > 28)
			return yt_fail(&p->yt, pin, sub, "%s is too small (at most /28)",
				       yt_scalar(pin));
		return 0;
	}
	if (cl->pod_cidr_len > 24 || (cl->pod_cidr_len < 24 && i >> (24 - cl->pod_cidr_len)) ||
	    (cl->pod_cidr_len == 24 && i > 0))
		return yt_fail(&p->yt, item, path, "podCIDR %s has no /24 left for this node",
			       cidr4_format(cl->pod_cidr, cl->pod_cidr_len, b));
	nd->pod_cidr = htonl(ntohl(cl->pod_cidr) + ((uint32_t)i << 8));
	nd->pod_cidr_len = 24;
	return 0;
}

/* A node's `addresses` (SPEC section 5): extra IPv4 addresses on its fabric interface, e.g.
 * an egress IP. Inside underlayCIDR (external hosts reach them on-link), not its network or
 * broadcast address, no address twice; the other nodes' and external hosts' are checked once
 * the Cluster is parsed (node_addresses_check). */
static int parse_node_addresses(struct parse_ctx *p, struct m_cluster *cl, size_t i,
				const yaml_node_t *item, const char *path)
{
	const struct yt_ctx *c = &p->yt;
	struct m_node *nd = &cl->nodes[i];
	yaml_node_t *seq = yt_map_get(c, item, "addresses"), *n;
	char sub[YT_PATH_MAX], ap[YT_PATH_MAX], a[CIDR4_STR_MAX];
	uint32_t mask = ip4_mask(cl->underlay_cidr_len), ip;
	yaml_node_item_t *it;
	size_t j;
	int err;

	if (!seq)
		return 0;
	yt_path(sub, "%s.addresses", path);
	err = yt_want_seq(c, seq, sub);
	if (err)
		return err;
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		n = yt_node(c, *it);
		yt_path(ap, "%s[%zu]", sub, nd->naddresses);
		if (nd->naddresses == M_NODE_ADDRESSES_MAX)
			return yt_fail(c, n, ap, "too many addresses (at most %d)",
				       M_NODE_ADDRESSES_MAX);
		if (!yt_scalar(n) || ip4_parse(yt_scalar(n), &ip))
			return yt_fail(c, n, ap, "bad IPv4 address \"%s\"",
				       yt_scalar(n) ? yt_scalar(n) : "");
		if (!cidr4_contains_ip(cl->underlay_cidr, cl->underlay_cidr_len, ip) ||
		    ip == cl->underlay_cidr || (cl->underlay_cidr_len < 31 && (ip | mask) == ~0u))
			return yt_fail(c, n, ap, "%s is not a host address of underlayCIDR %s",
				       yt_scalar(n),
				       cidr4_format(cl->underlay_cidr, cl->underlay_cidr_len, a));
		if (ip == nd->ip)
			return yt_fail(c, n, ap, "%s is the node's own address", yt_scalar(n));
		for (j = 0; j < nd->naddresses; j++)
			if (nd->addresses[j] == ip)
				return yt_fail(c, n, ap, "duplicate address %s", yt_scalar(n));
		nd->addresses[nd->naddresses++] = ip;
	}
	return 0;
}

/* Once nodes and external hosts are known: no node address (assigned or extra) is another
 * node's or an external host's. */
static int node_addresses_check(struct parse_ctx *p, struct m_cluster *cl,
				const yaml_node_t *spec)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *nodes = yt_map_get(c, spec, "nodes"), *item, *seq;
	char ap[YT_PATH_MAX], a[IP4_STR_MAX];
	size_t i, j, k, h;

	for (i = 0; i < cl->nnodes; i++) {
		const struct m_node *nd = &cl->nodes[i];

		for (k = 0; k < nd->naddresses; k++) {
			const char *other = NULL, *what = NULL;

			for (j = 0; !other && j < cl->nnodes; j++) {
				if (j == i)
					continue;
				if (cl->nodes[j].ip == nd->addresses[k])
					other = cl->nodes[j].name, what = "node";
				for (h = 0; !other && h < cl->nodes[j].naddresses; h++)
					if (cl->nodes[j].addresses[h] == nd->addresses[k])
						other = cl->nodes[j].name, what = "node";
			}
			for (h = 0; !other && h < cl->next_hosts; h++)
				if (cl->ext_hosts[h].ip == nd->addresses[k])
					other = cl->ext_hosts[h].name, what = "external host";
			if (!other)
				continue;
			item = yt_node(c, nodes->data.sequence.items.start[i]);
			seq = yt_map_get(c, item, "addresses");
			return yt_fail(c, yt_node(c, seq->data.sequence.items.start[k]),
				       yt_path(ap, "spec.nodes[%zu].addresses[%zu]", i, k),
				       "%s is already %s \"%s\"'s address",
				       ip4_format(nd->addresses[k], a), what, other);
		}
	}
	return 0;
}

static int parse_nodes(struct parse_ctx *p, struct m_cluster *cl, const yaml_node_t *seq)
{
	static const char *const fields[] = { "name", "labels", "podCIDR", "addresses", NULL };
	const struct yt_ctx *c = &p->yt;
	char path[YT_PATH_MAX], sub[YT_PATH_MAX], a[CIDR4_STR_MAX], b[CIDR4_STR_MAX];
	yaml_node_item_t *it;
	yaml_node_t *item, *ln;
	size_t cnt, i, j;
	int err;

	err = yt_want_seq(c, seq, "spec.nodes");
	if (err)
		return err;
	cnt = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (!cnt)
		return yt_fail(c, seq, "spec.nodes", "at least one node is required");
	cl->nodes = calloc(cnt, sizeof(*cl->nodes));
	if (!cl->nodes)
		return -ENOMEM;
	for (it = seq->data.sequence.items.start, i = 0; i < cnt; it++, i++) {
		struct m_node *nd = &cl->nodes[i];

		item = yt_node(c, *it);
		yt_path(path, "spec.nodes[%zu]", i);
		cl->nnodes = i + 1;
		err = yt_check_fields(c, item, path, fields);
		if (!err)
			err = yt_require(c, item, path, "name");
		if (!err)
			err = yt_str(c, yt_map_get(c, item, "name"), yt_path(sub, "%s.name", path),
				     nd->name, sizeof(nd->name));
		if (err)
			return err;
		nd->line = yt_line(item);
		for (j = 0; j < i; j++)
			if (!strcmp(cl->nodes[j].name, nd->name))
				return yt_fail(c, yt_map_get(c, item, "name"), sub,
					       "duplicate node \"%s\"", nd->name);
		ln = yt_map_get(c, item, "labels");
		if (ln) {
			err = labelset_parse(c, ln, yt_path(sub, "%s.labels", path), &nd->labels);
			if (err)
				return err;
		}
		err = node_addressing(p, cl, i, item, path);
		if (!err)
			err = parse_node_addresses(p, cl, i, item, path);
		if (err)
			return err;
		for (j = 0; j < i; j++) {
			if (!cidr4_overlaps(cl->nodes[j].pod_cidr, cl->nodes[j].pod_cidr_len,
					    nd->pod_cidr, nd->pod_cidr_len))
				continue;
			return yt_fail(c, item, yt_path(sub, "%s.podCIDR", path),
				       "pod range %s overlaps node \"%s\"'s %s",
				       cidr4_format(nd->pod_cidr, nd->pod_cidr_len, a),
				       cl->nodes[j].name,
				       cidr4_format(cl->nodes[j].pod_cidr, cl->nodes[j].pod_cidr_len,
						    b));
		}
	}
	return 0;
}

static int parse_ext_hosts(struct parse_ctx *p, struct m_cluster *cl, const yaml_node_t *seq)
{
	static const char *const fields[] = { "name", "ip", "ports", NULL };
	const struct yt_ctx *c = &p->yt;
	char path[YT_PATH_MAX], sub[YT_PATH_MAX], pp[YT_PATH_MAX];
	yaml_node_item_t *it, *pit;
	yaml_node_t *item, *ports, *ipn;
	unsigned long port;
	size_t cnt, i, j;
	int err;

	err = yt_want_seq(c, seq, "spec.externalHosts");
	if (err)
		return err;
	cnt = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	cl->ext_hosts = calloc(cnt ? cnt : 1, sizeof(*cl->ext_hosts));
	if (!cl->ext_hosts)
		return -ENOMEM;
	for (it = seq->data.sequence.items.start, i = 0; i < cnt; it++, i++) {
		struct m_external_host *h = &cl->ext_hosts[i];

		item = yt_node(c, *it);
		yt_path(path, "spec.externalHosts[%zu]", i);
		cl->next_hosts = i + 1;
		err = yt_check_fields(c, item, path, fields);
		if (!err)
			err = yt_require(c, item, path, "name");
		if (!err)
			err = yt_require(c, item, path, "ip");
		if (!err)
			err = yt_str(c, yt_map_get(c, item, "name"), yt_path(sub, "%s.name", path),
				     h->name, sizeof(h->name));
		if (err)
			return err;
		h->line = yt_line(item);
		for (j = 0; j < i; j++)
			if (!strcmp(cl->ext_hosts[j].name, h->name))
				return yt_fail(c, yt_map_get(c, item, "name"), sub,
					       "duplicate external host \"%s\"", h->name);
		ipn = yt_map_get(c, item, "ip");
		yt_path(sub, "%s.ip", path);
		if (!yt_scalar(ipn) || ip4_parse(yt_scalar(ipn), &h->ip))
			return yt_fail(c, ipn, sub, "bad IPv4 address \"%s\"",
				       yt_scalar(ipn) ? yt_scalar(ipn) : "");
		if (cidr4_contains_ip(cl->pod_cidr, cl->pod_cidr_len, h->ip) ||
		    cidr4_contains_ip(cl->service_cidr, cl->service_cidr_len, h->ip))
			return yt_fail(c, ipn, sub,
				       "%s lies inside the cluster's pod or service CIDR",
				       yt_scalar(ipn));
		for (j = 0; j < cl->nnodes; j++)
			if (cl->nodes[j].ip == h->ip)
				return yt_fail(c, ipn, sub, "%s is node \"%s\"'s address",
					       yt_scalar(ipn), cl->nodes[j].name);
		ports = yt_map_get(c, item, "ports");
		if (!ports)
			continue;
		yt_path(sub, "%s.ports", path);
		err = yt_want_seq(c, ports, sub);
		if (err)
			return err;
		j = (size_t)(ports->data.sequence.items.top - ports->data.sequence.items.start);
		h->ports = calloc(j ? j : 1, sizeof(*h->ports));
		if (!h->ports)
			return -ENOMEM;
		for (pit = ports->data.sequence.items.start; pit < ports->data.sequence.items.top;
		     pit++) {
			err = yt_uint(c, yt_node(c, *pit), yt_path(pp, "%s[%zu]", sub, h->nports),
				      1, 65535, &port);
			if (err)
				return err;
			h->ports[h->nports++] = (uint16_t)port;
		}
	}
	return 0;
}

static int parse_config(struct parse_ctx *p, struct m_cluster *cl, const yaml_node_t *map)
{
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	yaml_node_pair_t *pr;
	yaml_node_t *v;
	const char *key;
	size_t cnt;
	int err;

	err = yt_check_fields(c, map, "spec.config", NULL);
	if (err)
		return err;
	cnt = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
	cl->config = calloc(cnt ? cnt : 1, sizeof(*cl->config));
	if (!cl->config)
		return -ENOMEM;
	for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		key = yt_scalar(yt_node(c, pr->key));
		v = yt_node(c, pr->value);
		yt_path(sub, "spec.config.%s", key);
		if (!yt_scalar(v))
			return yt_fail(c, v, sub, "config values must be scalars");
		cl->config[cl->nconfig].key = strdup(key);
		cl->config[cl->nconfig].value = strdup(yt_is_null(v) ? "" : yt_scalar(v));
		cl->nconfig++;
		if (!cl->config[cl->nconfig - 1].key || !cl->config[cl->nconfig - 1].value)
			return -ENOMEM;
	}
	return 0;
}

int cluster_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	static const char *const top[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	static const char *const fields[] = { "nodes", "routing", "encryption", "podCIDR",
					      "serviceCIDR", "underlayCIDR", "externalHosts",
					      "config", NULL };
	static const char *const routing[] = { "tunnel", "native", NULL };
	static const char *const encryption[] = { "none", "wireguard", "ipsec", NULL };
	const struct yt_ctx *c = &p->yt;
	struct m_cluster *cl = &p->m->cluster;
	char a[CIDR4_STR_MAX];
	yaml_node_t *spec, *n;
	int err, v;

	err = yt_check_fields(c, root, "", top);
	if (!err)
		err = sim_metadata_parse(p, root, false, cl->name, sizeof(cl->name));
	if (!err)
		err = yt_require(c, root, "", "spec");
	if (err)
		return err;
	spec = yt_map_get(c, root, "spec");
	cl->line = yt_line(root);
	err = yt_check_fields(c, spec, "spec", fields);
	if (!err)
		err = yt_require(c, spec, "spec", "nodes");
	if (err)
		return err;
	v = (int)cl->routing;
	err = parse_enum(p, spec, "routing", routing, &v);
	if (err)
		return err;
	cl->routing = (enum m_routing)v;
	v = (int)cl->encryption;
	err = parse_enum(p, spec, "encryption", encryption, &v);
	if (err)
		return err;
	cl->encryption = (enum m_encryption)v;
	err = parse_cidr_field(p, spec, "podCIDR", "spec.podCIDR", &cl->pod_cidr,
			       &cl->pod_cidr_len);
	if (!err)
		err = parse_cidr_field(p, spec, "serviceCIDR", "spec.serviceCIDR", &cl->service_cidr,
				       &cl->service_cidr_len);
	if (!err)
		err = parse_cidr_field(p, spec, "underlayCIDR", "spec.underlayCIDR",
				       &cl->underlay_cidr, &cl->underlay_cidr_len);
	if (err)
		return err;
	if (cidr4_overlaps(cl->pod_cidr, cl->pod_cidr_len, cl->service_cidr, cl->service_cidr_len))
		return yt_fail(c, yt_map_get(c, spec, "podCIDR") ? yt_map_get(c, spec, "podCIDR") :
								   spec,
			       "spec.podCIDR", "overlaps serviceCIDR %s",
			       cidr4_format(cl->service_cidr, cl->service_cidr_len, a));
	if (cidr4_overlaps(cl->pod_cidr, cl->pod_cidr_len, cl->underlay_cidr,
			   cl->underlay_cidr_len))
		return yt_fail(c, yt_map_get(c, spec, "podCIDR") ? yt_map_get(c, spec, "podCIDR") :
								   spec,
			       "spec.podCIDR", "overlaps underlayCIDR %s",
			       cidr4_format(cl->underlay_cidr, cl->underlay_cidr_len, a));
	err = parse_nodes(p, cl, yt_map_get(c, spec, "nodes"));
	if (err)
		return err;
	n = yt_map_get(c, spec, "externalHosts");
	if (n) {
		err = parse_ext_hosts(p, cl, n);
		if (err)
			return err;
	}
	err = node_addresses_check(p, cl, spec);
	if (err)
		return err;
	n = yt_map_get(c, spec, "config");
	if (n)
		err = parse_config(p, cl, n);
	if (!err)
		err = lb_config_parse(p, cl, n); /* defaults follow podCIDR */
	return err;
}
