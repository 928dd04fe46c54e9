/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the model derives from its Services (docs/SERVICES.md, "Allocations" and "Derived
 * EndpointSlices"), once every document is parsed: the checks that need the Cluster and every
 * service (clusterIP inside serviceCIDR, nothing taken twice), the clusterIP / nodePort /
 * healthCheckNodePort allocations, and the EndpointSlices of selector services that have
 * none, made like the endpoints controller.
 *
 * Allocation is a pure function of the model: services in model order, each taking the
 * first free value (clusterIP from the serviceCIDR's .2, nodePorts from 30000), given values
 * reserved first. Every node building the same model gets the same numbers; re-applying a
 * service keeps its place in the order, hence its numbers.
 */
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"
#include "labels.h"

#define NODEPORT_COUNT (SVC_NODEPORT_MAX - SVC_NODEPORT_MIN + 1)

const char *svc_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	default:
		return "TCP";
	}
}

const struct m_lb_config *cluster_lb_config(const struct cluster_model *m)
{
	return &m->cluster.lb;
}

const struct m_service *cluster_find_service(const struct cluster_model *m,
					     const char *ns_slash_name)
{
	const char *slash = strchr(ns_slash_name, '/');
	size_t nslen, i;

	if (!slash)
		return NULL;
	nslen = (size_t)(slash - ns_slash_name);
	for (i = 0; i < m->nservices; i++)
		if (strlen(m->services[i].ns) == nslen &&
		    !strncmp(m->services[i].ns, ns_slash_name, nslen) &&
		    !strcmp(m->services[i].name, slash + 1))
			return &m->services[i];
	return NULL;
}

void services_drop_derived(struct cluster_model *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->nslices; i++) {
		if (m->slices[i].derived)
			slice_clear(&m->slices[i]);
		else
			m->slices[n++] = m->slices[i];
	}
	m->nslices = n;
}

/* ---- checks and allocations --------------------------------------------------------------- */

/* Who holds each nodePort (index + 1 into the services; 0: free). */
struct port_owners {
	uint32_t owner[NODEPORT_COUNT];
};

static int reserve_port(const struct m_service *v, struct port_owners *po, size_t si,
			uint16_t port, int line, const char *field, size_t *bad, struct diag *d)
{
	uint32_t *slot = &po->owner[port - SVC_NODEPORT_MIN];
	const struct m_service *svc = &v[si], *o;

	if (*slot && *slot != si + 1) {
		o = &v[*slot - 1];
		*bad = si;
		return diag_fail(d, "%s:%d: %s: %u is already taken by service \"%s/%s\"",
				 svc->file, line, field, port, o->ns, o->name);
	}
	*slot = (uint32_t)si + 1;
	return 0;
}

/* Reserves every given nodePort and healthCheckNodePort. */
static int reserve_given_ports(const struct m_service *v, size_t n, struct port_owners *po,
			       size_t *bad, struct diag *d)
{
	char field[64];
	size_t i, j;
	int err;

	for (i = 0; i < n; i++) {
		const struct m_service *svc = &v[i];

		for (j = 0; j < svc->nports; j++) {
			if (!svc->ports[j].node_port_given)
				continue;
			snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", j);
			err = reserve_port(v, po, i, svc->ports[j].node_port,
					   svc->ports[j].node_port_line, field, bad, d);
			if (err)
				return err;
		}
		if (svc->health_check_given) {
			err = reserve_port(v, po, i, svc->health_check_node_port,
					   svc->health_check_line, "spec.healthCheckNodePort", bad,
					   d);
			if (err)
				return err;
		}
	}
	return 0;
}

static int allocate_port(const struct m_service *v, struct port_owners *po, size_t si,
			 uint16_t *out, size_t *bad, struct diag *d)
{
	const struct m_service *svc = &v[si];
	size_t k;

	for (k = 0; k < NODEPORT_COUNT; k++) {
		if (po->owner[k])
			continue;
		po->owner[k] = (uint32_t)si + 1;
		*out = (uint16_t)(SVC_NODEPORT_MIN + k);
		return 0;
	}
	*bad = si;
	return diag_fail(d, "%s:%d: spec.ports: no nodePort left in %d-%d", svc->file, svc->line,
			 SVC_NODEPORT_MIN, SVC_NODEPORT_MAX);
}

bool service_needs_node_ports(const struct m_service *svc)
{
	return svc->type == SVC_NODE_PORT || svc->type == SVC_LOAD_BALANCER;
}

bool service_needs_health_check(const struct m_service *svc)
{
	return svc->type == SVC_LOAD_BALANCER && svc->etp_local;
}

static int allocate_node_ports(struct m_service *v, size_t n, size_t *bad, struct diag *d)
{
	struct port_owners *po = calloc(1, sizeof(*po));
	size_t i, j;
	int err;

	if (!po)
		return -ENOMEM;
	err = reserve_given_ports(v, n, po, bad, d);
	for (i = 0; !err && i < n; i++) {
		struct m_service *svc = &v[i];

		for (j = 0; !err && j < svc->nports; j++) {
			if (!service_needs_node_ports(svc))
				svc->ports[j].node_port = 0;
			else if (!svc->ports[j].node_port_given)
				err = allocate_port(v, po, i, &svc->ports[j].node_port, bad, d);
		}
		if (!err && service_needs_health_check(svc) && !svc->health_check_given)
			err = allocate_port(v, po, i, &svc->health_check_node_port, bad, d);
	}
	free(po);
	return err;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Checks a given clusterIP against the serviceCIDR (host order: base, last). */
static int check_given_ip(const struct m_cluster *cl, const struct m_service *svc,
			  uint32_t base, uint32_t last, struct diag *d)
{
	char a[IP4_STR_MAX], b[CIDR4_STR_MAX];
	uint32_t ip = ntohl(svc->cluster_ip);

	if (!cidr4_contains_ip(cl->service_cidr, cl->service_cidr_len, svc->cluster_ip))
		return diag_fail(d, "%s:%d: spec.clusterIP: %s is outside the serviceCIDR %s",
				 svc->file, svc->cluster_ip_line, ip4_format(svc->cluster_ip, a),
				 cidr4_format(cl->service_cidr, cl->service_cidr_len, b));
	if (ip == base || (ip == last && last > base + 1))
		return diag_fail(d, "%s:%d: spec.clusterIP: %s is the network or broadcast "
				 "address of the serviceCIDR %s", svc->file, svc->cluster_ip_line,
				 ip4_format(svc->cluster_ip, a),
				 cidr4_format(cl->service_cidr, cl->service_cidr_len, b));
	return 0;
}

/* A given clusterIP of an earlier service equal to svc's (parts come together unchecked). */
static int check_given_ip_unique(const struct m_service *v, size_t si, struct diag *d)
{
	const struct m_service *svc = &v[si];
	char a[IP4_STR_MAX];
	size_t i;

	for (i = 0; i < si; i++)
		if (v[i].cluster_ip_given && v[i].cluster_ip == svc->cluster_ip)
			return diag_fail(d, "%s:%d: spec.clusterIP: %s is already service "
					 "\"%s/%s\"'s clusterIP", svc->file, svc->cluster_ip_line,
					 ip4_format(svc->cluster_ip, a), v[i].ns, v[i].name);
	return 0;
}

static int allocate_cluster_ips(struct m_service *v, size_t n, const struct m_cluster *cl,
				bool check_cidr, size_t *bad, struct diag *d)
{
	uint32_t base = ntohl(cl->service_cidr), last = base | ~ip4_mask(cl->service_cidr_len);
	uint32_t next = base + 2, *given;
	char b[CIDR4_STR_MAX];
	size_t i, ngiven = 0;
	int err = 0;

	given = calloc(n + 1, sizeof(*given));
	if (!given)
		return -ENOMEM;
	for (i = 0; !err && i < n; i++) {
		if (!v[i].cluster_ip_given)
			continue;
		if (check_cidr)
			err = check_given_ip(cl, &v[i], base, last, d);
		if (!err)
			err = check_given_ip_unique(v, i, d);
		if (err)
			*bad = i;
		given[ngiven++] = ntohl(v[i].cluster_ip);
	}
	qsort(given, ngiven, sizeof(*given), cmp_u32);
	for (i = 0; !err && i < n; i++) {
		struct m_service *svc = &v[i];

		if (svc->cluster_ip_given || svc->headless) {
			if (svc->headless)
				svc->cluster_ip = 0;
			continue;
		}
		while (next < last && bsearch(&next, given, ngiven, sizeof(*given), cmp_u32))
			next++;
		if (next >= last)
			*bad = i, err = diag_fail(d, "%s:%d: spec.clusterIP: the serviceCIDR %s has no address "
					"left", svc->file, svc->line,
					cidr4_format(cl->service_cidr, cl->service_cidr_len, b));
		else
			svc->cluster_ip = htonl(next++);
	}
	free(given);
	return err;
}

int services_allocate(struct m_service *v, size_t n, const struct m_cluster *cl,
		      bool check_cidr, size_t *bad, struct diag *d)
{
	size_t culprit = n;
	int err = allocate_cluster_ips(v, n, cl, check_cidr, &culprit, d);

	if (!err)
		err = allocate_node_ports(v, n, &culprit, d);
	if (bad)
		*bad = culprit;
	return err;
}

/* ---- derived EndpointSlices --------------------------------------------------------------- */

/* The services that have EndpointSlices of their own, as "ns/name" strings, sorted: each
 * service's check is a binary search, not a scan of every slice. */
struct named_set {
	char **v;
	size_t n;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int given_slices_collect(const struct cluster_model *m, struct named_set *set)
{
	size_t i;

	set->n = 0;
	set->v = calloc(m->nslices + 1, sizeof(*set->v));
	if (!set->v)
		return -ENOMEM;
	for (i = 0; i < m->nslices; i++) {
		if (!m->slices[i].service[0])
			continue;
		if (asprintf(&set->v[set->n], "%s/%s", m->slices[i].ns, m->slices[i].service) < 0)
			return -ENOMEM;
		set->n++;
	}
	qsort(set->v, set->n, sizeof(*set->v), cmp_str);
	return 0;
}

static void named_set_free(struct named_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		free(set->v[i]);
	free(set->v);
}

static bool slice_exists_for(const struct named_set *given, const struct m_service *svc)
{
	char key[2 * MODEL_NAME_MAX + 2], *k = key;

	snprintf(key, sizeof(key), "%s/%s", svc->ns, svc->name);
	return bsearch(&k, given->v, given->n, sizeof(*given->v), cmp_str) != NULL;
}

static bool pod_selected(const struct m_service *svc, const struct m_pod *pod)
{
	size_t i;

	if (strcmp(pod->ns, svc->ns) || !pod->ip)
		return false;
	for (i = 0; i < svc->selector.n; i++) {
		const char *v = labelset_get(&pod->labels, svc->selector.v[i].key);

		if (!v || strcmp(v, svc->selector.v[i].value))
			return false;
	}
	return true;
}

/* The pod's port for a service port: the number, or the containerPort with the named
 * targetPort's name and the service port's protocol (0: the pod has none). */
static uint16_t resolve_target_port(const struct m_service_port *sp, const struct m_pod *pod)
{
	size_t i;

	if (!sp->target_name[0])
		return sp->target_port;
	for (i = 0; i < pod->nports; i++)
		if (pod->ports[i].proto == sp->proto && !strcmp(pod->ports[i].name, sp->target_name))
			return pod->ports[i].port;
	return 0;
}

/* A derived slice holds the pods whose resolved ports are the same (as upstream, which
 * groups endpoints by port mapping): key[j] is the port for service port j (0: none). */
struct slice_group {
	uint16_t *key;
	struct m_endpoint_slice sl;
};

static int group_add_pod(struct slice_group *g, const struct m_pod *pod)
{
	struct m_slice_endpoint *v = realloc(g->sl.eps, (g->sl.neps + 1) * sizeof(*v)), *e;

	if (!v)
		return -ENOMEM;
	g->sl.eps = v;
	e = &v[g->sl.neps++];
	memset(e, 0, sizeof(*e));
	e->addr = pod->ip;
	e->ready = e->serving = true;
	snprintf(e->node, sizeof(e->node), "%s", pod->node);
	snprintf(e->pod_ns, sizeof(e->pod_ns), "%s", pod->ns);
	snprintf(e->pod_name, sizeof(e->pod_name), "%s", pod->name);
	return 0;
}

static int group_init(struct slice_group *g, const struct m_service *svc, const uint16_t *key,
		      size_t k)
{
	size_t j;

	memset(g, 0, sizeof(*g));
	g->key = malloc(svc->nports * sizeof(*key));
	g->sl.ports = calloc(svc->nports, sizeof(*g->sl.ports));
	if (!g->key || !g->sl.ports)
		return -ENOMEM;
	memcpy(g->key, key, svc->nports * sizeof(*key));
	snprintf(g->sl.ns, sizeof(g->sl.ns), "%s", svc->ns);
	snprintf(g->sl.name, sizeof(g->sl.name), "%.*s-derived-%u", MODEL_NAME_MAX - 30,
		 svc->name, (unsigned int)(k & 0xffff));
	snprintf(g->sl.service, sizeof(g->sl.service), "%s", svc->name);
	g->sl.derived = true;
	g->sl.file = svc->file;
	g->sl.line = svc->line;
	for (j = 0; j < svc->nports; j++) {
		if (!key[j])
			continue;
		struct m_slice_port *p = &g->sl.ports[g->sl.nports++];

		memcpy(p->name, svc->ports[j].name, sizeof(p->name));
		p->port = key[j];
		p->proto = svc->ports[j].proto;
	}
	return 0;
}

static int append_slice(struct cluster_model *m, struct m_endpoint_slice *sl)
{
	struct m_endpoint_slice *v = realloc(m->slices, (m->nslices + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	m->slices = v;
	v[m->nslices++] = *sl;
	memset(sl, 0, sizeof(*sl));
	return 0;
}

/* Puts the selected pods of svc into groups by resolved ports (pods resolving no port at
 * all are left out). */
static int group_pods(const struct cluster_model *m, const struct m_service *svc,
		      struct slice_group **groups, size_t *ngroups, uint16_t *key)
{
	struct slice_group *v;
	size_t i, j, g;
	bool any;
	int err;

	for (i = 0; i < m->npods; i++) {
		const struct m_pod *pod = &m->pods[i];

		if (!pod_selected(svc, pod))
			continue;
		any = false;
		for (j = 0; j < svc->nports; j++) {
			key[j] = resolve_target_port(&svc->ports[j], pod);
			any |= key[j] != 0;
		}
		if (!any)
			continue;
		for (g = 0; g < *ngroups; g++)
			if (!memcmp((*groups)[g].key, key, svc->nports * sizeof(*key)))
				break;
		if (g == *ngroups) {
			v = realloc(*groups, (*ngroups + 1) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			*groups = v;
			err = group_init(&v[g], svc, key, g);
			(*ngroups)++;
			if (err)
				return err;
		}
		err = group_add_pod(&(*groups)[g], pod);
		if (err)
			return err;
	}
	return 0;
}

static int derive_slices_of(struct cluster_model *m, size_t si)
{
	const struct m_service *svc = &m->services[si];
	struct slice_group *groups = NULL;
	size_t ngroups = 0, g;
	uint16_t *key = calloc(svc->nports + 1, sizeof(*key));
	int err = key ? 0 : -ENOMEM;

	if (!err)
		err = group_pods(m, svc, &groups, &ngroups, key);
	for (g = 0; g < ngroups; g++) {
		if (!err)
			err = append_slice(m, &groups[g].sl);
		slice_clear(&groups[g].sl);
		free(groups[g].key);
	}
	free(groups);
	free(key);
	return err;
}

static int derive_slices(struct cluster_model *m)
{
	struct named_set given = { NULL, 0 };
	size_t i, n = m->nservices;
	int err;

	/* only the slices given before any is derived: a derived slice names its own service,
	 * which has been decided already */
	err = given_slices_collect(m, &given);
	for (i = 0; !err && i < n; i++) {
		const struct m_service *svc = &m->services[i];

		if (!svc->selector.n || !svc->nports || slice_exists_for(&given, svc))
			continue;
		err = derive_slices_of(m, i);
	}
	named_set_free(&given);
	return err;
}

int services_complete(struct cluster_model *m, struct diag *d)
{
	int err;

	services_drop_derived(m);
	err = services_allocate(m->services, m->nservices, &m->cluster, true, NULL, d);
	if (!err)
		err = derive_slices(m);
	if (err == -ENOMEM)
		return diag_fail_errno(d, err, "%s: out of memory", m->name ? m->name : "model");
	return err;
}
