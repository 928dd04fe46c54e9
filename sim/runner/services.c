/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a step's service probes are checked against (docs/SIMULATOR.md, "Services"): the
 * services, EndpointSlices and pods of the cluster *as the store holds them when the step's
 * probes run* (its own changes applied), put together into a cluster model the way an agent
 * does (cluster_model_from_docs over the scenario's Cluster and the stored objects in
 * creation order), independently of the agents. Without a datapath nothing changes during a
 * run and the scenario's own model is used.
 *
 * A service probe's backends are the pods its EndpointSlices (given or derived) name for the
 * probed service port, with a ready or serving endpoint; `ready` ones are those the datapath
 * may pick for a new connection (what `spread` expects to see).
 */
#include "run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "store/store.h"

/* The kinds a service's backends and an egress gateway policy's gateway depend on; network
 * policies and the rest are left out. */
static const char *const backend_kinds[] = { "Namespace/", "Pod/", "Service/",
					     "EndpointSlice/", "CiliumEgressGatewayPolicy/",
					     "Node/", NULL };

struct stored_doc {
	const struct store_kv *kv;
	char src_file[PATH_MAX]; /* the ciliate.dev/source annotation, split */
	long src_line;
};

static bool wanted_key(const char *key)
{
	size_t plen = strlen(AGENT_OBJ_PREFIX), i;

	if (strncmp(key, AGENT_OBJ_PREFIX, plen))
		return false;
	for (i = 0; backend_kinds[i]; i++)
		if (!strncmp(key + plen, backend_kinds[i], strlen(backend_kinds[i])))
			return true;
	return false;
}

static void read_source(struct stored_doc *sd)
{
	json_t *j = json_loadb(sd->kv->value, sd->kv->value_len, 0, NULL);
	const char *src = json_string_value(json_object_get(
		json_object_get(json_object_get(j, "metadata"), "annotations"),
		MANIFEST_SOURCE_ANNOTATION));
	const char *colon;

	sd->src_file[0] = '\0';
	sd->src_line = 0;
	if (src) {
		colon = strrchr(src, ':');
		snprintf(sd->src_file, sizeof(sd->src_file), "%.*s",
			 (int)(colon ? (size_t)(colon - src) : strlen(src)), src);
		sd->src_line = colon ? strtol(colon + 1, NULL, 10) : 0;
	}
	json_decref(j);
}

/* The agents' model order: creation revision, then source file and line, then key. */
static int cmp_model_order(const void *x, const void *y)
{
	const struct stored_doc *a = x, *b = y;
	int c;

	if (a->kv->create_revision != b->kv->create_revision)
		return a->kv->create_revision < b->kv->create_revision ? -1 : 1;
	c = strcmp(a->src_file, b->src_file);
	if (c)
		return c;
	if (a->src_line != b->src_line)
		return a->src_line < b->src_line ? -1 : 1;
	return strcmp(a->kv->key, b->kv->key);
}

static char *read_whole_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long sz;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (sz = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc((size_t)sz + 1);
		if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
			free(buf);
			buf = NULL;
		}
		if (buf) {
			buf[sz] = '\0';
			*len = (size_t)sz;
		}
	}
	fclose(f);
	return buf;
}

static int model_from_docs(const struct sim_cluster *c, struct stored_doc *sd, size_t n,
			   struct cluster_model **out, struct diag *d)
{
	struct model_doc *docs = calloc(n + 1, sizeof(*docs));
	size_t i, len = 0;
	char *cluster = read_whole_file(c->scenario, &len);
	int err;

	if (!docs || !cluster) {
		free(docs);
		free(cluster);
		return diag_fail_errno(d, -EIO, "%s: cannot read the Cluster document", c->scenario);
	}
	docs[0] = (struct model_doc){ .name = c->scenario, .text = cluster, .len = len,
				      .flags = MODEL_DOC_CLUSTER_ONLY };
	for (i = 0; i < n; i++)
		docs[i + 1] = (struct model_doc){ .name = sd[i].kv->key, .text = sd[i].kv->value,
						  .len = sd[i].kv->value_len };
	err = cluster_model_from_docs("store", docs, n + 1, out, NULL, d);
	free(docs);
	free(cluster);
	return err;
}

int sim_store_model(const struct sim_cluster *c, struct cluster_model **out, struct diag *d)
{
	struct store_list l = { 0 };
	struct stored_doc *sd = NULL;
	char dir[PATH_MAX];
	struct store *st;
	size_t i, n = 0;
	int err;

	*out = NULL;
	sim_store_uri(c, dir, sizeof(dir));
	err = store_open(dir, &st, d);
	if (err)
		return err;
	err = store_list(st, AGENT_OBJ_PREFIX, &l, d);
	if (!err) {
		sd = calloc(l.n + 1, sizeof(*sd));
		if (!sd)
			err = diag_fail_errno(d, -ENOMEM, "out of memory");
	}
	for (i = 0; !err && i < l.n; i++) {
		if (!wanted_key(l.items[i].key))
			continue;
		sd[n].kv = &l.items[i];
		read_source(&sd[n++]);
	}
	if (!err) {
		qsort(sd, n, sizeof(*sd), cmp_model_order);
		err = model_from_docs(c, sd, n, out, d);
	}
	free(sd);
	store_list_free(&l);
	store_close(st);
	return err;
}

/* ---- a service port's backends ------------------------------------------------------- */

static const struct m_slice_port *slice_port_for(const struct m_endpoint_slice *sl,
						 const struct m_service_port *sp)
{
	size_t i;

	for (i = 0; i < sl->nports; i++)
		if (!strcmp(sl->ports[i].name, sp->name) && sl->ports[i].proto == sp->proto)
			return &sl->ports[i];
	return NULL;
}

/* "ns/pod" of an endpoint: its targetRef, else the pod of the simulation owning its address
 * (else "ip/A.B.C.D"); its address: the simulation's for a pod of the simulation. */
static void endpoint_identity(const struct sim_cluster *c, const struct m_slice_endpoint *ep,
			      char *name, size_t size, uint32_t *ip)
{
	const struct sim_host *h = NULL;
	char a[IP4_STR_MAX];

	*ip = ep->addr;
	if (ep->pod_name[0]) {
		snprintf(name, size, "%s/%s", ep->pod_ns, ep->pod_name);
		h = sim_find_host(c, SIM_POD, name);
	} else {
		h = sim_host_by_ip(c, ep->addr);
		if (h && h->kind == SIM_POD)
			snprintf(name, size, "%s", h->name);
		else
			snprintf(name, size, "ip/%s", ip4_format(ep->addr, a));
	}
	if (h)
		*ip = h->ip;
}

static int backend_add(struct sim_service_target *t, const char *name, uint32_t ip,
		       uint16_t port, bool ready)
{
	struct sim_backend *v;
	size_t i;

	for (i = 0; i < t->nbackends; i++) {
		if (!strcmp(t->backends[i].name, name)) {
			t->backends[i].ready |= ready;
			return 0;
		}
	}
	v = realloc(t->backends, (t->nbackends + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->backends = v;
	v = &t->backends[t->nbackends++];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->ip = ip;
	v->port = port;
	v->ready = ready;
	v->host = sim_find_host(t->cluster, SIM_POD, name);
	return 0;
}

static int collect_backends(const struct cluster_model *m, struct sim_service_target *t)
{
	char name[KUBELET_ID_MAX];
	size_t i, k;
	uint32_t ip;
	int err;

	for (i = 0; i < m->nslices; i++) {
		const struct m_endpoint_slice *sl = &m->slices[i];
		const struct m_slice_port *p;

		if (strcmp(sl->ns, t->svc->ns) || strcmp(sl->service, t->svc->name))
			continue;
		p = slice_port_for(sl, t->port);
		if (!p)
			continue;
		for (k = 0; k < sl->neps; k++) {
			const struct m_slice_endpoint *ep = &sl->eps[k];

			if (!ep->ready && !ep->serving)
				continue;
			endpoint_identity(t->cluster, ep, name, sizeof(name), &ip);
			err = backend_add(t, name, ip, p->port, ep->ready && !ep->terminating);
			if (err)
				return err;
		}
	}
	return 0;
}

static const struct m_service_port *service_port(const struct m_service *svc, uint16_t port,
						 uint8_t proto)
{
	size_t i;

	for (i = 0; i < svc->nports; i++)
		if (svc->ports[i].port == port && svc->ports[i].proto == proto)
			return &svc->ports[i];
	return NULL;
}

static void list_ports(const struct m_service *svc, char *buf, size_t size)
{
	size_t i, len;

	buf[0] = '\0';
	for (i = 0; i < svc->nports; i++) {
		len = strlen(buf);
		snprintf(buf + len, size - len, "%s%u/%s", i ? ", " : "", svc->ports[i].port,
			 svc_proto_name(svc->ports[i].proto));
	}
}

int sim_service_resolve(const struct sim_cluster *c, const struct cluster_model *m,
			const char *ns_name, uint16_t port, uint8_t proto,
			struct sim_service_target *t, char *why, size_t wsize)
{
	char ports[256];

	memset(t, 0, sizeof(*t));
	t->cluster = c;
	t->svc = m ? cluster_find_service(m, ns_name) : NULL;
	if (!t->svc) {
		snprintf(why, wsize, "svc/%s: no such service in the cluster", ns_name);
		return -ENOENT;
	}
	if (t->svc->headless) {
		snprintf(why, wsize, "svc/%s: headless service (clusterIP: None): no address to "
			 "probe", ns_name);
		return -EINVAL;
	}
	if (proto == IPPROTO_ICMP) {
		snprintf(why, wsize, "svc/%s: a service answers on its ports only, not ICMP",
			 ns_name);
		return -EINVAL;
	}
	t->port = service_port(t->svc, port, proto);
	if (!t->port) {
		list_ports(t->svc, ports, sizeof(ports));
		snprintf(why, wsize, "svc/%s has no port %u/%s (its ports: %s)", ns_name, port,
			 svc_proto_name(proto), ports[0] ? ports : "none");
		return -ENOENT;
	}
	t->frontend = t->svc->cluster_ip;
	t->frontend_port = port;
	snprintf(t->label, sizeof(t->label), "svc/%s", ns_name);
	if (collect_backends(m, t)) {
		snprintf(why, wsize, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int sim_nodeport_resolve(const struct sim_cluster *c, const struct cluster_model *m,
			 const struct sim_host *node, uint16_t port, uint8_t proto,
			 struct sim_service_target *t, char *why, size_t wsize)
{
	size_t i, k;

	memset(t, 0, sizeof(*t));
	t->cluster = c;
	if (!m || port < SVC_NODEPORT_MIN || port > SVC_NODEPORT_MAX)
		return 0;
	for (i = 0; i < m->nservices && !t->svc; i++) {
		const struct m_service *svc = &m->services[i];

		if (svc->type == SVC_CLUSTER_IP)
			continue;
		for (k = 0; k < svc->nports; k++) {
			if (svc->ports[k].node_port == port && svc->ports[k].proto == proto) {
				t->svc = svc;
				t->port = &svc->ports[k];
				break;
			}
		}
	}
	if (!t->svc)
		return 0;
	t->frontend = node->ip;
	t->frontend_port = port;
	snprintf(t->label, sizeof(t->label), "NodePort %u of svc/%s/%s", port, t->svc->ns,
		 t->svc->name);
	if (collect_backends(m, t)) {
		snprintf(why, wsize, "out of memory");
		return -ENOMEM;
	}
	return 1;
}

static bool addr_listed(const uint32_t *v, size_t n, uint32_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == addr)
			return true;
	return false;
}

int sim_frontend_ip_resolve(const struct sim_cluster *c, const struct cluster_model *m,
			    uint32_t addr, uint16_t port, uint8_t proto,
			    struct sim_service_target *t, char *why, size_t wsize)
{
	char ip[IP4_STR_MAX];
	bool lb = false;
	size_t i;

	memset(t, 0, sizeof(*t));
	t->cluster = c;
	for (i = 0; m && i < m->nservices && !t->svc; i++) {
		const struct m_service *svc = &m->services[i];

		lb = svc->type == SVC_LOAD_BALANCER && addr_listed(svc->lb_ips, svc->nlb_ips, addr);
		if (!lb && !addr_listed(svc->external_ips, svc->nexternal_ips, addr))
			continue;
		t->port = service_port(svc, port, proto);
		if (t->port)
			t->svc = svc;
	}
	if (!t->svc)
		return 0;
	t->frontend = addr;
	t->frontend_port = port;
	snprintf(t->label, sizeof(t->label), "%s %s of svc/%s/%s",
		 lb ? "LoadBalancer IP" : "externalIP", ip4_format(addr, ip), t->svc->ns,
		 t->svc->name);
	if (collect_backends(m, t)) {
		snprintf(why, wsize, "out of memory");
		return -ENOMEM;
	}
	return 1;
}

/* The node a host is on ("" for external hosts). */
static const char *node_of(const struct sim_host *h)
{
	if (!h)
		return "";
	if (h->kind == SIM_NODE)
		return h->name;
	return h->kind == SIM_POD ? h->node : "";
}

void sim_service_traffic_policy(struct sim_service_target *t, const struct sim_host *client)
{
	const char *node = NULL;
	size_t i;

	if (!t->svc)
		return;
	if (t->frontend == t->svc->cluster_ip && t->svc->itp_local)
		node = node_of(client);
	else if (t->frontend != t->svc->cluster_ip && t->svc->etp_local && t->port &&
		 t->frontend_port == t->port->node_port)
		node = sim_host_by_ip(t->cluster, t->frontend) ?
			       node_of(sim_host_by_ip(t->cluster, t->frontend)) : NULL;
	if (!node || !*node)
		return;
	for (i = 0; i < t->nbackends; i++)
		if (strcmp(node_of(t->backends[i].host), node))
			t->backends[i].ready = false;
}

const struct sim_backend *sim_service_backend(const struct sim_service_target *t,
					      const char *name)
{
	size_t i;

	for (i = 0; i < t->nbackends; i++)
		if (!strcmp(t->backends[i].name, name))
			return &t->backends[i];
	return NULL;
}

void sim_service_backends_list(const struct sim_service_target *t, char *buf, size_t size)
{
	size_t i, len;

	snprintf(buf, size, "%s", t->nbackends ? "" : "none");
	for (i = 0; i < t->nbackends; i++) {
		len = strlen(buf);
		snprintf(buf + len, size - len, "%s%s%s", i ? "," : "", t->backends[i].name,
			 t->backends[i].ready ? "" : "(not ready)");
	}
}

size_t sim_service_ready_backends(const struct sim_service_target *t)
{
	size_t i, n = 0;

	for (i = 0; i < t->nbackends; i++)
		n += t->backends[i].ready;
	return n;
}

void sim_service_target_free(struct sim_service_target *t)
{
	free(t->backends);
	memset(t, 0, sizeof(*t));
}

/* ---- spread ---------------------------------------------------------------------------- */

/* The number after "key" and ':' (or after the key's '=' in "count=60"); -1 if absent. */
static double number_after(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	char *end;
	double v;

	if (!p)
		return -1;
	p += strlen(key);
	p += strspn(p, " \t\"'");
	if (*p != ':' && *p != '=')
		return -1;
	p++;
	v = strtod(p, &end);
	return end == p ? -1 : v;
}

int sim_spread_parse(const char *text, struct sim_spread *sp, char *why, size_t wsize)
{
	double count, tol;
	char *end;

	if (strstr(text, "count")) { /* {count: N, tolerance: T} (serialised by the parser) */
		count = number_after(text, "count");
		tol = number_after(text, "tolerance");
	} else { /* "N/T" */
		count = strtod(text, &end);
		tol = end != text && *end == '/' ? strtod(end + 1, NULL) : -1;
	}
	if (count < 1 || count > SIM_SAME_BACKEND_MAX || count != (int)count || tol <= 0 ||
	    tol > 1) {
		snprintf(why, wsize, "spread: bad value \"%.80s\" (want {count: N, tolerance: T} or "
			 "\"N/T\", N in 1..%d, T in (0, 1])", text, SIM_SAME_BACKEND_MAX);
		return -EINVAL;
	}
	sp->count = (int)count;
	sp->tolerance = tol;
	return 0;
}
