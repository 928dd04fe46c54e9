/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes v1 Namespace and Pod documents. Lenient: upstream fields that do not affect
 * networking are accepted and ignored; the fields read here are type-checked. */
#include "parse.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"
#include "labels.h"

int k8s_metadata_parse(struct parse_ctx *p, const yaml_node_t *root, char *name, size_t nsize,
			char *ns, size_t nssize, struct labelset *labels)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *md = yt_map_get(c, root, "metadata"), *n;
	int err;

	if (!md)
		return yt_fail(c, root, "metadata.name", "required field missing");
	err = yt_want_map(c, md, "metadata");
	if (!err)
		err = yt_require(c, md, "metadata", "name");
	if (!err)
		err = yt_str(c, yt_map_get(c, md, "name"), "metadata.name", name, nsize);
	if (err)
		return err;
	if (strchr(name, '/'))
		return yt_fail(c, yt_map_get(c, md, "name"), "metadata.name",
			       "\"%s\" must not contain '/'", name);
	if (ns) {
		n = yt_map_get(c, md, "namespace");
		if (n) {
			err = yt_str(c, n, "metadata.namespace", ns, nssize);
			if (err)
				return err;
			if (strchr(ns, '/'))
				return yt_fail(c, n, "metadata.namespace",
					       "\"%s\" must not contain '/'", ns);
		} else {
			strcpy(ns, "default");
		}
	}
	n = yt_map_get(c, md, "labels");
	if (labels && n)
		return labelset_parse(c, n, "metadata.labels", labels);
	return 0;
}

int namespace_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	struct cluster_model *m = p->m;
	struct m_namespace *v, *ns;
	size_t i;
	int err;

	v = realloc(m->namespaces, (m->nnamespaces + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->namespaces = v;
	ns = &v[m->nnamespaces];
	memset(ns, 0, sizeof(*ns));
	m->nnamespaces++;
	ns->line = yt_line(root);
	err = k8s_metadata_parse(p, root, ns->name, sizeof(ns->name), NULL, 0, &ns->labels);
	if (err)
		return err;
	for (i = 0; i + 1 < m->nnamespaces; i++)
		if (!strcmp(m->namespaces[i].name, ns->name))
			return yt_fail(&p->yt, root, "metadata.name",
				       "duplicate Namespace \"%s\" (first at line %d)", ns->name,
				       m->namespaces[i].line);
	/* Kubernetes sets this label on every namespace and it cannot be changed */
	return labelset_set(&ns->labels, "kubernetes.io/metadata.name", ns->name);
}

bool k8s_port_name_valid(const char *s)
{
	bool letter = false;
	size_t i, n = strlen(s);

	if (!n || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			letter = true;
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
			return false;
	}
	return letter;
}

static int parse_container_port(struct parse_ctx *p, const yaml_node_t *n, const char *path,
				struct m_container_port *cp)
{
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX];
	unsigned long port;
	yaml_node_t *v;
	int err;

	err = yt_want_map(c, n, path);
	if (!err)
		err = yt_require(c, n, path, "containerPort");
	if (!err)
		err = yt_uint(c, yt_map_get(c, n, "containerPort"),
			      yt_path(sub, "%s.containerPort", path), 1, 65535, &port);
	if (err)
		return err;
	cp->port = (uint16_t)port;
	cp->proto = IPPROTO_TCP;
	v = yt_map_get(c, n, "protocol");
	if (v && (!yt_scalar(v) || proto_parse(yt_scalar(v), false, &cp->proto)))
		return yt_fail(c, v, yt_path(sub, "%s.protocol", path),
			       "unknown protocol \"%s\" (TCP, UDP or SCTP)",
			       yt_scalar(v) ? yt_scalar(v) : "");
	v = yt_map_get(c, n, "name");
	if (v) {
		yt_path(sub, "%s.name", path);
		err = yt_str(c, v, sub, cp->name, sizeof(cp->name));
		if (err)
			return err;
		if (!k8s_port_name_valid(cp->name))
			return yt_fail(c, v, sub, "\"%s\" is not a valid port name (IANA_SVC_NAME)",
				       cp->name);
	}
	return 0;
}

static int parse_containers(struct parse_ctx *p, struct m_pod *pod, const yaml_node_t *seq)
{
	const struct yt_ctx *c = &p->yt;
	char path[YT_PATH_MAX], sub[YT_PATH_MAX], pp[YT_PATH_MAX];
	yaml_node_item_t *it, *pit;
	yaml_node_t *cn, *ports;
	struct m_container_port *v;
	size_t i = 0, j;
	int err;

	err = yt_want_seq(c, seq, "spec.containers");
	if (err)
		return err;
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++, i++) {
		cn = yt_node(c, *it);
		yt_path(path, "spec.containers[%zu]", i);
		err = yt_want_map(c, cn, path);
		if (err)
			return err;
		ports = yt_map_get(c, cn, "ports");
		if (!ports)
			continue;
		yt_path(sub, "%s.ports", path);
		err = yt_want_seq(c, ports, sub);
		if (err)
			return err;
		j = 0;
		for (pit = ports->data.sequence.items.start; pit < ports->data.sequence.items.top;
		     pit++, j++) {
			v = realloc(pod->ports, (pod->nports + 1) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			pod->ports = v;
			memset(&v[pod->nports], 0, sizeof(*v));
			err = parse_container_port(p, yt_node(c, *pit),
						   yt_path(pp, "%s[%zu]", sub, j), &v[pod->nports]);
			if (err)
				return err;
			pod->nports++;
		}
	}
	return 0;
}

/* Validates a pinned status.podIP against the pod's node and the pods parsed so far. */
static int check_pinned_ip(struct parse_ctx *p, const struct m_pod *pod, const yaml_node_t *n,
			   const struct m_node *node)
{
	const struct cluster_model *m = p->m;
	char a[CIDR4_STR_MAX], b[IP4_STR_MAX];
	uint32_t host_mask;
	size_t i;

	if (pod->host_network) {
		if (pod->ip != node->ip)
			return yt_fail(&p->yt, n, "status.podIP",
				       "%s: a hostNetwork pod has its node's address %s",
				       yt_scalar(n), ip4_format(node->ip, b));
		return 0;
	}
	host_mask = ~ip4_mask(node->pod_cidr_len);
	if (!cidr4_contains_ip(node->pod_cidr, node->pod_cidr_len, pod->ip))
		return yt_fail(&p->yt, n, "status.podIP",
			       "%s is outside node \"%s\"'s pod range %s", yt_scalar(n),
			       node->name, cidr4_format(node->pod_cidr, node->pod_cidr_len, a));
	if (!(pod->ip & host_mask) || (pod->ip & host_mask) == host_mask)
		return yt_fail(&p->yt, n, "status.podIP",
			       "%s is the network or broadcast address of node \"%s\"'s pod range %s",
			       yt_scalar(n), node->name,
			       cidr4_format(node->pod_cidr, node->pod_cidr_len, a));
	for (i = 0; i + 1 < m->npods; i++)
		if (!m->pods[i].host_network && m->pods[i].ip_pinned && m->pods[i].ip == pod->ip)
			return yt_fail(&p->yt, n, "status.podIP",
				       "%s is already pod \"%s/%s\"'s address", yt_scalar(n),
				       m->pods[i].ns, m->pods[i].name);
	return 0;
}

int pod_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	const struct yt_ctx *c = &p->yt;
	struct cluster_model *m = p->m;
	const struct m_node *node;
	yaml_node_t *spec, *n, *st;
	struct m_pod *v, *pod;
	size_t i;
	int err;

	v = realloc(m->pods, (m->npods + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->pods = v;
	pod = &v[m->npods];
	memset(pod, 0, sizeof(*pod));
	m->npods++;
	pod->file = c->file;
	pod->line = yt_line(root);
	err = k8s_metadata_parse(p, root, pod->name, sizeof(pod->name), pod->ns, sizeof(pod->ns),
			   &pod->labels);
	if (err)
		return err;
	for (i = 0; i + 1 < m->npods; i++)
		if (!strcmp(m->pods[i].ns, pod->ns) && !strcmp(m->pods[i].name, pod->name))
			return yt_fail(c, root, "metadata.name",
				       "duplicate Pod \"%s/%s\" (first at line %d)", pod->ns,
				       pod->name, m->pods[i].line);
	spec = yt_map_get(c, root, "spec");
	if (!spec)
		return yt_fail(c, root, "spec.nodeName", "required field missing");
	err = yt_want_map(c, spec, "spec");
	if (!err)
		err = yt_require(c, spec, "spec", "nodeName");
	if (!err)
		err = yt_str(c, yt_map_get(c, spec, "nodeName"), "spec.nodeName", pod->node,
			     sizeof(pod->node));
	if (err)
		return err;
	if (!m->has_cluster)
		return yt_fail(c, yt_map_get(c, spec, "nodeName"), "spec.nodeName",
			       "pods need a Cluster document (apiVersion: %s, kind: Cluster)",
			       SIM_API_VERSION);
	node = cluster_find_node(m, pod->node);
	if (!node)
		return yt_fail(c, yt_map_get(c, spec, "nodeName"), "spec.nodeName",
			       "no node named \"%s\" in the Cluster", pod->node);
	n = yt_map_get(c, spec, "hostNetwork");
	if (n) {
		err = yt_bool(c, n, "spec.hostNetwork", &pod->host_network);
		if (err)
			return err;
	}
	n = yt_map_get(c, spec, "containers");
	if (n) {
		err = parse_containers(p, pod, n);
		if (err)
			return err;
	}
	if (pod->host_network)
		pod->ip = node->ip;
	st = yt_map_get(c, root, "status");
	n = st ? yt_map_get(c, st, "podIP") : NULL;
	if (!n)
		return 0;
	err = yt_want_map(c, st, "status");
	if (err)
		return err;
	if (!yt_scalar(n) || ip4_parse(yt_scalar(n), &pod->ip))
		return yt_fail(c, n, "status.podIP", "bad IPv4 address \"%s\"",
			       yt_scalar(n) ? yt_scalar(n) : "");
	pod->ip_pinned = true;
	return check_pinned_ip(p, pod, n, node);
}
