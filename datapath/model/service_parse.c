/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes v1 Service and discovery.k8s.io/v1 EndpointSlice documents (docs/SERVICES.md,
 * "Objects"). Lenient like the other Kubernetes kinds (upstream fields that do not affect the
 * datapath are ignored); the fields read here are checked, with errors as
 * "FILE:LINE: FIELD.PATH: reason". What needs the whole model (the serviceCIDR, allocations,
 * derived slices) is services_complete's (services.c).
 */
#include "parse.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"
#include "labels.h"

#define FWD_MODE_ANNOTATION "service.cilium.io/forwarding-mode"
#define LB_ALG_ANNOTATION   "service.cilium.io/lb-algorithm"

/* ---- freeing and copying ----------------------------------------------------------------- */

void service_clear(struct m_service *svc)
{
	labelset_free(&svc->selector);
	free(svc->ports);
	free(svc->external_ips);
	free(svc->lb_ips);
	free(svc->source_ranges);
	memset(svc, 0, sizeof(*svc));
}

void slice_clear(struct m_endpoint_slice *sl)
{
	free(sl->eps);
	free(sl->ports);
	memset(sl, 0, sizeof(*sl));
}

/* *dst = a malloc'd copy of n elements of src (a 1-element allocation for none). */
static int dup_array(void *dst, const void *src, size_t n, size_t size)
{
	void *v = malloc(n ? n * size : 1);

	if (!v)
		return -ENOMEM;
	if (n)
		memcpy(v, src, n * size);
	*(void **)dst = v;
	return 0;
}

int service_copy(struct m_service *dst, const struct m_service *src)
{
	*dst = *src;
	dst->selector.v = NULL;
	dst->selector.n = 0;
	dst->ports = NULL;
	dst->external_ips = dst->lb_ips = NULL;
	dst->source_ranges = NULL;
	if (labelset_copy(&dst->selector, &src->selector) ||
	    dup_array(&dst->ports, src->ports, src->nports, sizeof(*src->ports)) ||
	    dup_array(&dst->external_ips, src->external_ips, src->nexternal_ips,
		      sizeof(*src->external_ips)) ||
	    dup_array(&dst->lb_ips, src->lb_ips, src->nlb_ips, sizeof(*src->lb_ips)) ||
	    dup_array(&dst->source_ranges, src->source_ranges, src->nsource_ranges,
		      sizeof(*src->source_ranges))) {
		service_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

int slice_copy(struct m_endpoint_slice *dst, const struct m_endpoint_slice *src)
{
	*dst = *src;
	dst->eps = NULL;
	dst->ports = NULL;
	if (dup_array(&dst->eps, src->eps, src->neps, sizeof(*src->eps)) ||
	    dup_array(&dst->ports, src->ports, src->nports, sizeof(*src->ports))) {
		slice_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

/* ---- small field parsers ------------------------------------------------------------------ */

/* Matches a scalar against names[] (NULL-terminated); *out gets its index. The error lists
 * the names. */
static int enum_field(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		      const char *what, const char *const *names, int *out)
{
	char want[160] = "";
	const char *v = yt_scalar(n);
	size_t i;

	for (i = 0; v && names[i]; i++) {
		if (!strcmp(v, names[i])) {
			*out = (int)i;
			return 0;
		}
	}
	for (i = 0; names[i]; i++) {
		strcat(want, names[i]);
		strcat(want, !names[i + 1] ? "" : names[i + 2] ? ", " : " or ");
	}
	return yt_fail(c, n, path, "unknown %s \"%s\" (%s)", what, v ? v : "", want);
}

static int ip_field(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		    uint32_t *ip)
{
	if (!yt_scalar(n) || ip4_parse(yt_scalar(n), ip))
		return yt_fail(c, n, path, "bad IPv4 address \"%s\"", yt_scalar(n) ? yt_scalar(n) : "");
	return 0;
}

/* The number of items of a sequence (after checking it is one). */
static int seq_len(const struct yt_ctx *c, const yaml_node_t *n, const char *path, size_t *len)
{
	int err = yt_want_seq(c, n, path);

	if (!err)
		*len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	return err;
}

static yaml_node_t *seq_item(const struct yt_ctx *c, const yaml_node_t *n, size_t i)
{
	return yt_node(c, n->data.sequence.items.start[i]);
}

/* spec.externalIPs: a sequence of IPv4 addresses. */
static int parse_ip_list(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
			 uint32_t **out, size_t *nout)
{
	char sub[YT_PATH_MAX];
	size_t len, i;
	int err;

	err = seq_len(c, n, path, &len);
	if (err)
		return err;
	*out = calloc(len ? len : 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		size_t k;

		err = ip_field(c, seq_item(c, n, i), yt_path(sub, "%s[%zu]", path, i),
			       &(*out)[*nout]);
		if (err)
			return err;
		for (k = 0; k < *nout && (*out)[k] != (*out)[*nout]; k++)
			;
		if (k == *nout) /* a repeated address is the same frontend */
			(*nout)++;
	}
	return 0;
}

/* ---- Service ------------------------------------------------------------------------------ */

/* metadata.annotations: the forwarding mode and the algorithm. */
static int parse_service_annotations(struct parse_ctx *p, const yaml_node_t *root,
				     struct m_service *svc)
{
	static const char *const fwd[] = { "snat", "dsr", NULL };
	static const char *const alg[] = { "random", "maglev", NULL };
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *md = yt_map_get(c, root, "metadata");
	yaml_node_t *ann = md ? yt_map_get(c, md, "annotations") : NULL, *n;
	int v, err;

	if (!ann)
		return 0;
	err = yt_want_map(c, ann, "metadata.annotations");
	if (err)
		return err;
	n = yt_map_get(c, ann, FWD_MODE_ANNOTATION);
	if (n) {
		err = enum_field(c, n, "metadata.annotations." FWD_MODE_ANNOTATION,
				 "forwarding mode", fwd, &v);
		if (err)
			return err;
		svc->fwd_mode = v ? SVC_FWD_DSR : SVC_FWD_SNAT;
	}
	n = yt_map_get(c, ann, LB_ALG_ANNOTATION);
	if (n) {
		err = enum_field(c, n, "metadata.annotations." LB_ALG_ANNOTATION,
				 "load-balancing algorithm", alg, &v);
		if (err)
			return err;
		svc->algorithm = v ? SVC_ALG_MAGLEV : SVC_ALG_RANDOM;
	}
	return 0;
}

/* targetPort: a number 1..65535 or an IANA_SVC_NAME (a containerPort's name). */
static int parse_target_port(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
			     struct m_service_port *sp)
{
	const char *v = yt_scalar(n);
	unsigned long port;

	if (v && *v >= '0' && *v <= '9') {
		int err = yt_uint(c, n, path, 1, 65535, &port);

		if (!err)
			sp->target_port = (uint16_t)port;
		return err;
	}
	if (!v || strlen(v) >= sizeof(sp->target_name) || !k8s_port_name_valid(v))
		return yt_fail(c, n, path,
			       "\"%s\" is neither a port number nor a port name (IANA_SVC_NAME)",
			       v ? v : "");
	strcpy(sp->target_name, v);
	return 0;
}

/* The `port` (required, 1..65535) and `protocol` (default TCP) of a Service or EndpointSlice
 * port entry. */
static int parse_port_proto(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
			    uint16_t *port, uint8_t *proto)
{
	char sub[YT_PATH_MAX];
	unsigned long v;
	yaml_node_t *f;
	int err;

	err = yt_want_map(c, n, path);
	if (!err)
		err = yt_require(c, n, path, "port");
	if (!err)
		err = yt_uint(c, yt_map_get(c, n, "port"), yt_path(sub, "%s.port", path), 1, 65535,
			      &v);
	if (err)
		return err;
	*port = (uint16_t)v;
	*proto = IPPROTO_TCP;
	f = yt_map_get(c, n, "protocol");
	if (f && (!yt_scalar(f) || proto_parse(yt_scalar(f), false, proto)))
		return yt_fail(c, f, yt_path(sub, "%s.protocol", path),
			       "unknown protocol \"%s\" (TCP, UDP or SCTP)",
			       yt_scalar(f) ? yt_scalar(f) : "");
	return 0;
}

static int parse_service_port(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
			      struct m_service_port *sp)
{
	char sub[YT_PATH_MAX];
	unsigned long v;
	yaml_node_t *f;
	int err;

	err = parse_port_proto(c, n, path, &sp->port, &sp->proto);
	if (err)
		return err;
	sp->target_port = sp->port;
	f = yt_map_get(c, n, "name");
	if (f) {
		yt_path(sub, "%s.name", path);
		err = yt_str(c, f, sub, sp->name, sizeof(sp->name));
		if (err)
			return err;
		if (!k8s_port_name_valid(sp->name))
			return yt_fail(c, f, sub, "\"%s\" is not a valid port name (IANA_SVC_NAME)",
				       sp->name);
	}
	f = yt_map_get(c, n, "targetPort");
	if (f) {
		sp->target_port = 0;
		err = parse_target_port(c, f, yt_path(sub, "%s.targetPort", path), sp);
		if (err)
			return err;
	}
	f = yt_map_get(c, n, "nodePort");
	if (f) {
		yt_path(sub, "%s.nodePort", path);
		err = yt_uint(c, f, sub, 0, 65535, &v);
		if (err)
			return err;
		if (v && (v < SVC_NODEPORT_MIN || v > SVC_NODEPORT_MAX))
			return yt_fail(c, f, sub, "%lu is outside the NodePort range %d-%d", v,
				       SVC_NODEPORT_MIN, SVC_NODEPORT_MAX);
		sp->node_port = (uint16_t)v;
		sp->node_port_given = v != 0;
		sp->node_port_line = yt_line(f);
	}
	return 0;
}

/* A port of svc whose number and protocol, or whose name, an earlier port has. */
static int check_port_unique(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
			     const struct m_service *svc, size_t i)
{
	const struct m_service_port *sp = &svc->ports[i];
	char sub[YT_PATH_MAX];
	size_t j;

	for (j = 0; j < i; j++) {
		const struct m_service_port *o = &svc->ports[j];

		if (o->port == sp->port && o->proto == sp->proto)
			return yt_fail(c, yt_map_get(c, n, "port"), yt_path(sub, "%s.port", path),
				       "duplicate port %u/%s (spec.ports[%zu])", sp->port,
				       svc_proto_name(sp->proto), j);
		if (*sp->name && !strcmp(o->name, sp->name))
			return yt_fail(c, yt_map_get(c, n, "name"), yt_path(sub, "%s.name", path),
				       "duplicate port name \"%s\" (spec.ports[%zu])", sp->name, j);
		if (sp->node_port_given && o->node_port == sp->node_port && o->proto == sp->proto)
			return yt_fail(c, yt_map_get(c, n, "nodePort"),
				       yt_path(sub, "%s.nodePort", path),
				       "duplicate nodePort %u/%s (spec.ports[%zu])", sp->node_port,
				       svc_proto_name(sp->proto), j);
	}
	if (!*sp->name && svc->nports > 1)
		return yt_fail(c, n, yt_path(sub, "%s.name", path),
			       "required when a service has more than one port");
	return 0;
}

static int parse_service_ports(const struct yt_ctx *c, const yaml_node_t *seq,
			       struct m_service *svc)
{
	char path[YT_PATH_MAX];
	size_t len, i;
	int err;

	err = seq_len(c, seq, "spec.ports", &len);
	if (err)
		return err;
	svc->ports = calloc(len ? len : 1, sizeof(*svc->ports));
	if (!svc->ports)
		return -ENOMEM;
	svc->nports = len;
	for (i = 0; i < len; i++) {
		yt_path(path, "spec.ports[%zu]", i);
		err = parse_service_port(c, seq_item(c, seq, i), path, &svc->ports[i]);
		if (err)
			return err;
	}
	for (i = 0; i < len; i++) {
		err = check_port_unique(c, seq_item(c, seq, i), yt_path(path, "spec.ports[%zu]", i),
					svc, i);
		if (err)
			return err;
	}
	return 0;
}

static int parse_source_ranges(const struct yt_ctx *c, const yaml_node_t *seq,
			       struct m_service *svc)
{
	char path[YT_PATH_MAX];
	const char *v;
	size_t len, i;
	int err;

	err = seq_len(c, seq, "spec.loadBalancerSourceRanges", &len);
	if (err)
		return err;
	svc->source_ranges = calloc(len ? len : 1, sizeof(*svc->source_ranges));
	if (!svc->source_ranges)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		struct m_cidr *r = &svc->source_ranges[i];
		yaml_node_t *n = seq_item(c, seq, i);

		yt_path(path, "spec.loadBalancerSourceRanges[%zu]", i);
		v = yt_scalar(n);
		if (!v || cidr4_parse(v, true, &r->addr, &r->len))
			return yt_fail(c, n, path,
				       "bad CIDR \"%s\" (want A.B.C.D/N with no host bits)",
				       v ? v : "");
		svc->nsource_ranges++;
	}
	return 0;
}

/* spec.clusterIP: "" or absent (allocate), "None" (headless) or an address. */
static int parse_cluster_ip(const struct yt_ctx *c, const yaml_node_t *spec,
			    struct m_service *svc)
{
	yaml_node_t *n = yt_map_get(c, spec, "clusterIP");
	const char *v = n ? yt_scalar(n) : NULL;
	int err;

	if (!n || (v && !*v))
		return 0;
	if (v && !strcmp(v, "None")) {
		if (svc->type != SVC_CLUSTER_IP)
			return yt_fail(c, n, "spec.clusterIP",
				       "may not be \"None\" for a %s service",
				       svc->type == SVC_NODE_PORT ? "NodePort" : "LoadBalancer");
		svc->headless = true;
		return 0;
	}
	err = ip_field(c, n, "spec.clusterIP", &svc->cluster_ip);
	if (err)
		return err;
	svc->cluster_ip_given = true;
	svc->cluster_ip_line = yt_line(n);
	return 0;
}

static int parse_traffic_policies(const struct yt_ctx *c, const yaml_node_t *spec,
				  struct m_service *svc)
{
	static const char *const policies[] = { "Cluster", "Local", NULL };
	yaml_node_t *n;
	int v, err;

	n = yt_map_get(c, spec, "externalTrafficPolicy");
	if (n) {
		err = enum_field(c, n, "spec.externalTrafficPolicy", "traffic policy", policies,
				 &v);
		if (err)
			return err;
		svc->etp_local = v == 1;
	}
	n = yt_map_get(c, spec, "internalTrafficPolicy");
	if (n) {
		err = enum_field(c, n, "spec.internalTrafficPolicy", "traffic policy", policies,
				 &v);
		if (err)
			return err;
		svc->itp_local = v == 1;
	}
	return 0;
}

static int parse_affinity(const struct yt_ctx *c, const yaml_node_t *spec,
			  struct m_service *svc)
{
	static const char *const kinds[] = { "None", "ClientIP", NULL };
	yaml_node_t *n, *cfg, *cip;
	unsigned long t;
	int v, err;

	svc->affinity_timeout = SVC_AFFINITY_TIMEOUT_DEFAULT;
	n = yt_map_get(c, spec, "sessionAffinity");
	if (n) {
		err = enum_field(c, n, "spec.sessionAffinity", "session affinity", kinds, &v);
		if (err)
			return err;
		svc->affinity = v == 1;
	}
	cfg = yt_map_get(c, spec, "sessionAffinityConfig");
	if (!cfg)
		return 0;
	err = yt_want_map(c, cfg, "spec.sessionAffinityConfig");
	if (err)
		return err;
	cip = yt_map_get(c, cfg, "clientIP");
	if (!cip)
		return 0;
	err = yt_want_map(c, cip, "spec.sessionAffinityConfig.clientIP");
	if (err)
		return err;
	n = yt_map_get(c, cip, "timeoutSeconds");
	if (!n)
		return 0;
	err = yt_uint(c, n, "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 1, 86400, &t);
	if (err)
		return err;
	svc->affinity_timeout = (uint32_t)t;
	return 0;
}

static int parse_health_check_port(const struct yt_ctx *c, const yaml_node_t *spec,
				   struct m_service *svc)
{
	yaml_node_t *n = yt_map_get(c, spec, "healthCheckNodePort");
	unsigned long v;
	int err;

	if (!n)
		return 0;
	err = yt_uint(c, n, "spec.healthCheckNodePort", 0, 65535, &v);
	if (err || !v)
		return err;
	if (svc->type != SVC_LOAD_BALANCER || !svc->etp_local)
		return yt_fail(c, n, "spec.healthCheckNodePort",
			       "may only be set when type is LoadBalancer and "
			       "externalTrafficPolicy is Local");
	if (v < SVC_NODEPORT_MIN || v > SVC_NODEPORT_MAX)
		return yt_fail(c, n, "spec.healthCheckNodePort",
			       "%lu is outside the NodePort range %d-%d", v, SVC_NODEPORT_MIN,
			       SVC_NODEPORT_MAX);
	svc->health_check_node_port = (uint16_t)v;
	svc->health_check_given = true;
	svc->health_check_line = yt_line(n);
	return 0;
}

/* status.loadBalancer.ingress[].ip (hostname entries are ignored). */
static int parse_lb_ingress(const struct yt_ctx *c, const yaml_node_t *root,
			    struct m_service *svc)
{
	yaml_node_t *st = yt_map_get(c, root, "status"), *lb, *ing, *item, *ip;
	char path[YT_PATH_MAX];
	size_t len, i;
	int err;

	lb = st && st->type == YAML_MAPPING_NODE ? yt_map_get(c, st, "loadBalancer") : NULL;
	ing = lb && lb->type == YAML_MAPPING_NODE ? yt_map_get(c, lb, "ingress") : NULL;
	if (!ing)
		return 0;
	err = seq_len(c, ing, "status.loadBalancer.ingress", &len);
	if (err)
		return err;
	svc->lb_ips = calloc(len ? len : 1, sizeof(*svc->lb_ips));
	if (!svc->lb_ips)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		item = seq_item(c, ing, i);
		yt_path(path, "status.loadBalancer.ingress[%zu]", i);
		err = yt_want_map(c, item, path);
		if (err)
			return err;
		ip = yt_map_get(c, item, "ip");
		if (!ip)
			continue;
		err = ip_field(c, ip, yt_path(path, "status.loadBalancer.ingress[%zu].ip", i),
			       &svc->lb_ips[svc->nlb_ips]);
		if (err)
			return err;
		svc->nlb_ips++;
	}
	return 0;
}

/* Given addresses and ports already taken by an earlier service of the model. */
static int check_against_earlier(struct parse_ctx *p, const yaml_node_t *root,
				 const struct m_service *svc)
{
	const struct yt_ctx *c = &p->yt;
	const struct cluster_model *m = p->m;
	yaml_node_t *spec = yt_map_get(c, root, "spec");
	char a[IP4_STR_MAX];
	size_t i, j;

	for (i = 0; i + 1 < m->nservices; i++) {
		const struct m_service *o = &m->services[i];

		if (!strcmp(o->ns, svc->ns) && !strcmp(o->name, svc->name))
			return yt_fail(c, root, "metadata.name",
				       "duplicate Service \"%s/%s\" (first at line %d)", svc->ns,
				       svc->name, o->line);
		if (svc->cluster_ip_given && o->cluster_ip_given && o->cluster_ip == svc->cluster_ip)
			return yt_fail(c, yt_map_get(c, spec, "clusterIP"), "spec.clusterIP",
				       "%s is already service \"%s/%s\"'s clusterIP",
				       ip4_format(svc->cluster_ip, a), o->ns, o->name);
	}
	for (j = 0; j < svc->nports; j++) {
		const struct m_service_port *sp = &svc->ports[j];
		const struct m_service *owner;
		char path[YT_PATH_MAX];

		if (!sp->node_port_given)
			continue;
		owner = NULL;
		for (i = 0; !owner && i + 1 < m->nservices; i++) {
			const struct m_service *o = &m->services[i];
			size_t k;

			for (k = 0; k < o->nports; k++)
				if (o->ports[k].node_port_given && o->ports[k].node_port == sp->node_port)
					owner = o;
			if (o->health_check_given && o->health_check_node_port == sp->node_port)
				owner = o;
		}
		if (owner)
			return yt_fail(c, seq_item(c, yt_map_get(c, spec, "ports"), j),
				       yt_path(path, "spec.ports[%zu].nodePort", j),
				       "%u is already taken by service \"%s/%s\"", sp->node_port,
				       owner->ns, owner->name);
	}
	for (i = 0; svc->health_check_given && i < m->nservices; i++) {
		const struct m_service *o = &m->services[i];
		size_t k;

		for (k = 0; k < o->nports; k++)
			if (o->ports[k].node_port_given &&
			    o->ports[k].node_port == svc->health_check_node_port)
				break;
		if (k < o->nports || (o != svc && o->health_check_given &&
				      o->health_check_node_port == svc->health_check_node_port))
			return yt_fail(c, yt_map_get(c, spec, "healthCheckNodePort"),
				       "spec.healthCheckNodePort", "%u is already taken by service "
				       "\"%s/%s\"", svc->health_check_node_port, o->ns, o->name);
	}
	return 0;
}

/* Fields of spec that only some types may have. */
static int check_type_fields(const struct yt_ctx *c, const yaml_node_t *spec,
			     const struct m_service *svc)
{
	yaml_node_t *seq = yt_map_get(c, spec, "ports");
	char path[YT_PATH_MAX];
	size_t i;

	if (!svc->nports && !svc->headless)
		return yt_fail(c, seq ? seq : spec, "spec.ports", "required field missing");
	for (i = 0; svc->type == SVC_CLUSTER_IP && i < svc->nports; i++)
		if (svc->ports[i].node_port_given)
			return yt_fail(c, yt_map_get(c, seq_item(c, seq, i), "nodePort"),
				       yt_path(path, "spec.ports[%zu].nodePort", i),
				       "may not be used when type is ClusterIP");
	return 0;
}

static int parse_service_spec(struct parse_ctx *p, const yaml_node_t *spec,
			      struct m_service *svc)
{
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *n;
	int err;

	err = parse_cluster_ip(c, spec, svc);
	if (!err && (n = yt_map_get(c, spec, "ports")))
		err = parse_service_ports(c, n, svc);
	if (!err && (n = yt_map_get(c, spec, "selector")))
		err = labelset_parse(c, n, "spec.selector", &svc->selector);
	if (!err && (n = yt_map_get(c, spec, "externalIPs")))
		err = parse_ip_list(c, n, "spec.externalIPs", &svc->external_ips,
				    &svc->nexternal_ips);
	if (!err && (n = yt_map_get(c, spec, "loadBalancerSourceRanges")))
		err = parse_source_ranges(c, n, svc);
	if (!err)
		err = parse_traffic_policies(c, spec, svc);
	if (!err)
		err = parse_affinity(c, spec, svc);
	if (!err)
		err = parse_health_check_port(c, spec, svc);
	if (!err)
		err = check_type_fields(c, spec, svc);
	return err;
}

/* spec.type; *external_name for ExternalName (checked, then left out of the model). */
static int parse_service_type(const struct yt_ctx *c, const yaml_node_t *spec,
			      struct m_service *svc, bool *external_name)
{
	static const char *const types[] = { "ClusterIP", "NodePort", "LoadBalancer",
					     "ExternalName", NULL };
	yaml_node_t *n = yt_map_get(c, spec, "type");
	int v = 0, err;

	*external_name = false;
	if (!n)
		return 0;
	err = enum_field(c, n, "spec.type", "type", types, &v);
	if (err)
		return err;
	*external_name = v == 3;
	svc->type = v == 3 ? SVC_CLUSTER_IP : (enum m_svc_type)v;
	return 0;
}

int service_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	const struct yt_ctx *c = &p->yt;
	struct cluster_model *m = p->m;
	struct m_service *v, *svc;
	yaml_node_t *spec;
	bool external_name;
	int err;

	v = realloc(m->services, (m->nservices + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->services = v;
	svc = &v[m->nservices];
	memset(svc, 0, sizeof(*svc));
	m->nservices++;
	svc->file = c->file;
	svc->line = yt_line(root);
	err = k8s_metadata_parse(p, root, svc->name, sizeof(svc->name), svc->ns, sizeof(svc->ns),
				 NULL);
	if (!err)
		err = parse_service_annotations(p, root, svc);
	if (err)
		return err;
	spec = yt_map_get(c, root, "spec");
	if (!spec)
		return yt_fail(c, root, "spec.ports", "required field missing");
	err = yt_want_map(c, spec, "spec");
	if (!err)
		err = parse_service_type(c, spec, svc, &external_name);
	if (err)
		return err;
	if (external_name) { /* no frontend in a cluster without DNS: accepted, ignored */
		service_clear(svc);
		m->nservices--;
		return 0;
	}
	err = parse_service_spec(p, spec, svc);
	if (!err)
		err = parse_lb_ingress(c, root, svc);
	if (!err)
		err = check_against_earlier(p, root, svc);
	return err;
}

/* ---- EndpointSlice ------------------------------------------------------------------------ */

static int cond_field(const struct yt_ctx *c, const yaml_node_t *conds, const char *key,
		      const char *path, bool *out)
{
	char sub[YT_PATH_MAX];
	yaml_node_t *n = yt_map_get(c, conds, key);

	return n ? yt_bool(c, n, yt_path(sub, "%s.%s", path, key), out) : 0;
}

/* conditions: unset ready means ready, unset serving means what ready says (upstream). */
static int parse_conditions(const struct yt_ctx *c, const yaml_node_t *ep, const char *path,
			    struct m_slice_endpoint *e)
{
	char sub[YT_PATH_MAX];
	yaml_node_t *conds = yt_map_get(c, ep, "conditions");
	bool serving_set;
	int err;

	e->ready = true;
	e->terminating = false;
	if (!conds) {
		e->serving = true;
		return 0;
	}
	yt_path(sub, "%s.conditions", path);
	err = yt_want_map(c, conds, sub);
	if (!err)
		err = cond_field(c, conds, "ready", sub, &e->ready);
	if (!err)
		err = cond_field(c, conds, "terminating", sub, &e->terminating);
	if (err)
		return err;
	serving_set = yt_map_get(c, conds, "serving") != NULL;
	e->serving = e->ready;
	return serving_set ? cond_field(c, conds, "serving", sub, &e->serving) : 0;
}

/* targetRef of kind Pod (others are kept as no pod). */
static int parse_target_ref(const struct yt_ctx *c, const yaml_node_t *ep, const char *path,
			    const char *slice_ns, struct m_slice_endpoint *e)
{
	char sub[YT_PATH_MAX];
	yaml_node_t *ref = yt_map_get(c, ep, "targetRef"), *n;
	const char *kind;
	int err;

	if (!ref)
		return 0;
	yt_path(sub, "%s.targetRef", path);
	err = yt_want_map(c, ref, sub);
	if (err)
		return err;
	kind = yt_scalar(yt_map_get(c, ref, "kind"));
	if (!kind || strcmp(kind, "Pod") || !yt_map_get(c, ref, "name"))
		return 0;
	err = yt_str(c, yt_map_get(c, ref, "name"), yt_path(sub, "%s.targetRef.name", path),
		     e->pod_name, sizeof(e->pod_name));
	if (err)
		return err;
	n = yt_map_get(c, ref, "namespace");
	if (!n) {
		strcpy(e->pod_ns, slice_ns);
		return 0;
	}
	return yt_str(c, n, yt_path(sub, "%s.targetRef.namespace", path), e->pod_ns,
		      sizeof(e->pod_ns));
}

static int parse_slice_endpoint(const struct yt_ctx *c, const yaml_node_t *ep,
				const char *path, const char *slice_ns,
				struct m_slice_endpoint *e)
{
	char sub[YT_PATH_MAX];
	yaml_node_t *addrs, *n;
	size_t len;
	int err;

	err = yt_want_map(c, ep, path);
	if (!err)
		err = yt_require(c, ep, path, "addresses");
	yt_path(sub, "%s.addresses", path);
	addrs = yt_map_get(c, ep, "addresses");
	if (!err)
		err = seq_len(c, addrs, sub, &len);
	if (err)
		return err;
	if (!len)
		return yt_fail(c, addrs, sub, "at least one address is required");
	err = ip_field(c, seq_item(c, addrs, 0), yt_path(sub, "%s.addresses[0]", path), &e->addr);
	if (!err)
		err = parse_conditions(c, ep, path, e);
	if (!err && (n = yt_map_get(c, ep, "nodeName")))
		err = yt_str(c, n, yt_path(sub, "%s.nodeName", path), e->node, sizeof(e->node));
	if (!err)
		err = parse_target_ref(c, ep, path, slice_ns, e);
	return err;
}

static int parse_slice_port(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
			    struct m_slice_port *sp)
{
	char sub[YT_PATH_MAX];
	yaml_node_t *f;
	int err;

	err = parse_port_proto(c, n, path, &sp->port, &sp->proto);
	if (err)
		return err;
	f = yt_map_get(c, n, "name");
	return f ? yt_str(c, f, yt_path(sub, "%s.name", path), sp->name, sizeof(sp->name)) : 0;
}

static int parse_slice_lists(const struct yt_ctx *c, const yaml_node_t *root,
			     struct m_endpoint_slice *sl)
{
	char path[YT_PATH_MAX];
	yaml_node_t *eps = yt_map_get(c, root, "endpoints"), *ports = yt_map_get(c, root, "ports");
	size_t len = 0, i;
	int err;

	if (eps) {
		err = seq_len(c, eps, "endpoints", &len);
		if (err)
			return err;
		sl->eps = calloc(len ? len : 1, sizeof(*sl->eps));
		if (!sl->eps)
			return -ENOMEM;
		for (i = 0; i < len; i++, sl->neps++) {
			err = parse_slice_endpoint(c, seq_item(c, eps, i),
						   yt_path(path, "endpoints[%zu]", i), sl->ns,
						   &sl->eps[i]);
			if (err)
				return err;
		}
	}
	if (!ports)
		return 0;
	err = seq_len(c, ports, "ports", &len);
	if (err)
		return err;
	sl->ports = calloc(len ? len : 1, sizeof(*sl->ports));
	if (!sl->ports)
		return -ENOMEM;
	for (i = 0; i < len; i++, sl->nports++) {
		err = parse_slice_port(c, seq_item(c, ports, i), yt_path(path, "ports[%zu]", i),
				       &sl->ports[i]);
		if (err)
			return err;
	}
	return 0;
}

int endpoint_slice_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	static const char *const types[] = { "IPv4", "IPv6", "FQDN", NULL };
	const struct yt_ctx *c = &p->yt;
	struct cluster_model *m = p->m;
	struct m_endpoint_slice *v, *sl;
	struct labelset labels = { 0 };
	const char *svc_name;
	size_t i;
	int type = 0, err;

	v = realloc(m->slices, (m->nslices + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->slices = v;
	sl = &v[m->nslices];
	memset(sl, 0, sizeof(*sl));
	m->nslices++;
	sl->file = c->file;
	sl->line = yt_line(root);
	err = k8s_metadata_parse(p, root, sl->name, sizeof(sl->name), sl->ns, sizeof(sl->ns),
				 &labels);
	if (err)
		goto out;
	svc_name = labelset_get(&labels, SVC_SERVICE_NAME_LABEL);
	if (svc_name)
		snprintf(sl->service, sizeof(sl->service), "%s", svc_name);
	for (i = 0; i + 1 < m->nslices; i++) {
		if (!strcmp(m->slices[i].ns, sl->ns) && !strcmp(m->slices[i].name, sl->name)) {
			err = yt_fail(c, root, "metadata.name",
				      "duplicate EndpointSlice \"%s/%s\" (first at line %d)", sl->ns,
				      sl->name, m->slices[i].line);
			goto out;
		}
	}
	/* addressType is required upstream; leniently, absent means IPv4 */
	if (yt_map_get(c, root, "addressType"))
		err = enum_field(c, yt_map_get(c, root, "addressType"), "addressType",
				 "address type", types, &type);
	if (!err && type == 0)
		err = parse_slice_lists(c, root, sl);
	if (!err && type != 0) { /* IPv6 and FQDN slices: accepted, not used (IPv4 first) */
		slice_clear(sl);
		m->nslices--;
	}
out:
	labelset_free(&labels);
	return err;
}
