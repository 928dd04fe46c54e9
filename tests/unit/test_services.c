/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Services in the cluster model (docs/SERVICES.md): Service and EndpointSlice parsing and
 * its errors ("FILE:LINE: FIELD.PATH: reason"), clusterIP / nodePort allocation (the same
 * through a scenario file, separate documents and model parts), derived EndpointSlices, the
 * service cilium-config keys, and the per-node entries of a two-node cluster: frontends and
 * their flags, backend states, backend ids, reverse-NAT indexes and Maglev tables.
 * Run from the repository root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ipaddr.h"
#include "model/model.h"
#include "model/parse.h"

#define FIXTURE "tests/unit/fixtures/services/two-node.yaml"

/* 7 lines: a Service document that follows starts on line 8 */
#define CLUSTER                                                                  \
	"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: t}\nspec:\n" \
	"  nodes: [{name: node-1}, {name: node-2}]\n  serviceCIDR: 10.96.0.0/28\n---\n"
/* lines 8-11: the spec's fields start on line 12 */
#define SVC_HEAD "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"

static struct scenario *load_fixture(void)
{
	struct scenario *s = NULL;
	struct diag d = { { 0 } };

	if (scenario_load(FIXTURE, &s, &d)) {
		print_error("scenario_load: %s\n", d.msg);
		fail();
	}
	return s;
}

static uint32_t ip(const char *s)
{
	uint32_t v = 0;

	assert_int_equal(ip4_parse(s, &v), 0);
	return v;
}

static const struct m_service *svc(const struct cluster_model *m, const char *name)
{
	const struct m_service *v = cluster_find_service(m, name);

	if (!v) {
		print_error("no service %s\n", name);
		fail();
	}
	return v;
}

/* ---- parse, allocations ------------------------------------------------------------------ */

static void test_parse_fixture(void **state)
{
	struct scenario *s = load_fixture();
	const struct cluster_model *m = &s->model;
	const struct m_service *lb = svc(m, "shop/lb"), *web = svc(m, "shop/web");

	assert_int_equal(m->nservices, 6); /* the ExternalName service is left out */
	assert_null(cluster_find_service(m, "shop/ext"));
	assert_int_equal(web->type, SVC_CLUSTER_IP);
	assert_int_equal(web->nports, 2);
	assert_string_equal(web->ports[0].target_name, "http");
	assert_int_equal(web->ports[1].proto, IPPROTO_UDP);
	assert_int_equal(web->affinity_timeout, 10800);
	assert_false(web->affinity);
	assert_int_equal(lb->type, SVC_LOAD_BALANCER);
	assert_true(lb->affinity);
	assert_int_equal(lb->affinity_timeout, 60);
	assert_true(lb->etp_local);
	assert_int_equal(lb->algorithm, SVC_ALG_MAGLEV);
	assert_int_equal(lb->fwd_mode, SVC_FWD_SNAT);
	assert_int_equal(lb->nexternal_ips, 1);
	assert_int_equal(lb->external_ips[0], ip("198.51.100.5"));
	assert_int_equal(lb->nlb_ips, 1); /* the hostname entry is ignored */
	assert_int_equal(lb->lb_ips[0], ip("203.0.113.50"));
	assert_int_equal(lb->nsource_ranges, 1);
	assert_int_equal(lb->source_ranges[0].len, 24);
	assert_true(svc(m, "shop/itp")->itp_local);
	assert_true(svc(m, "shop/headless")->headless);
	scenario_free(s);
}

static void assert_allocations(const struct cluster_model *m)
{
	const struct m_service *lb = svc(m, "shop/lb");

	/* np's given .2 is skipped; the others in model order from .3 */
	assert_int_equal(svc(m, "shop/np")->cluster_ip, ip("10.96.0.2"));
	assert_int_equal(svc(m, "shop/web")->cluster_ip, ip("10.96.0.3"));
	assert_int_equal(lb->cluster_ip, ip("10.96.0.4"));
	assert_int_equal(svc(m, "shop/itp")->cluster_ip, ip("10.96.0.5"));
	assert_int_equal(svc(m, "shop/manual")->cluster_ip, ip("10.96.0.6"));
	assert_int_equal(svc(m, "shop/headless")->cluster_ip, 0);
	/* lb's given 30080 is reserved first; np gets 30000, lb's health check 30001 */
	assert_int_equal(svc(m, "shop/np")->ports[0].node_port, 30000);
	assert_int_equal(lb->ports[0].node_port, 30080);
	assert_int_equal(lb->health_check_node_port, 30001);
	assert_int_equal(svc(m, "shop/web")->ports[0].node_port, 0);
	assert_int_equal(svc(m, "shop/np")->health_check_node_port, 0);
}

static void test_allocation_deterministic(void **state)
{
	struct scenario *a = load_fixture(), *b = load_fixture();

	assert_allocations(&a->model);
	assert_allocations(&b->model);
	scenario_free(a);
	scenario_free(b);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = calloc(1, *len + 1);
	assert_int_equal(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

/* The fixture's documents, one string each (the first is the Cluster). */
static size_t split_docs(char *text, char **docs, size_t max)
{
	size_t n = 0;
	char *p = text, *sep;

	while (p && n < max) {
		docs[n++] = p;
		sep = strstr(p, "\n---\n");
		if (!sep)
			break;
		sep[1] = '\0';
		p = sep + 5;
	}
	return n;
}

static void test_allocation_same_through_docs_and_parts(void **state)
{
	struct model_doc md[32];
	struct model_part *parts[32];
	struct cluster_model *m = NULL, *base = NULL, *pm = NULL;
	struct diag d = { { 0 } };
	char *docs[32], name[32][16];
	size_t len, n, i;
	char *text = read_file(FIXTURE, &len);

	n = split_docs(text, docs, 32);
	for (i = 0; i < n; i++) {
		snprintf(name[i], sizeof(name[i]), "doc%zu", i);
		md[i] = (struct model_doc){ .name = name[i], .text = docs[i], .len = strlen(docs[i]) };
	}
	if (cluster_model_from_docs("docs", md, n, &m, NULL, &d))
		print_error("%s\n", d.msg);
	assert_non_null(m);
	assert_allocations(m);
	assert_int_equal(m->nslices, 8);

	assert_int_equal(cluster_model_from_docs("base", md, 1, &base, NULL, &d), 0);
	for (i = 1; i < n; i++)
		assert_int_equal(model_part_parse(base, name[i], docs[i], strlen(docs[i]), &parts[i],
						  &d), 0);
	assert_int_equal(model_part_nservices(parts[5]), 1);
	assert_int_equal(cluster_model_copy_cluster(base, &pm), 0);
	if (cluster_model_from_parts(pm, parts + 1, n - 1, &d))
		print_error("from_parts: %s\n", d.msg);
	assert_allocations(pm);
	assert_int_equal(pm->nslices, 8);
	/* built again from the same parts: the same numbers */
	cluster_model_free(pm);
	assert_int_equal(cluster_model_copy_cluster(base, &pm), 0);
	assert_int_equal(cluster_model_from_parts(pm, parts + 1, n - 1, &d), 0);
	assert_allocations(pm);

	for (i = 1; i < n; i++)
		model_part_unref(parts[i]);
	cluster_model_free(pm);
	cluster_model_free(base);
	cluster_model_free(m);
	free(text);
}

/* ---- derived slices ------------------------------------------------------------------------ */

static const struct m_endpoint_slice *slice(const struct cluster_model *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nslices; i++)
		if (!strcmp(m->slices[i].name, name))
			return &m->slices[i];
	print_error("no slice %s\n", name);
	fail();
	return NULL;
}

static void test_derived_slices(void **state)
{
	struct scenario *s = load_fixture();
	const struct cluster_model *m = &s->model;
	const struct m_endpoint_slice *w0 = slice(m, "web-derived-0"), *w1 = slice(m, "web-derived-1");
	const struct m_endpoint_slice *np = slice(m, "np-derived-0");

	assert_int_equal(m->nslices, 8);
	assert_false(slice(m, "manual-1")->derived);
	assert_string_equal(slice(m, "manual-1")->service, "manual");
	/* named targetPort: api-1 has http only, api-2 http and dns, api-3 no port at all */
	assert_true(w0->derived);
	assert_string_equal(w0->service, "web");
	assert_int_equal(w0->neps, 1);
	assert_string_equal(w0->eps[0].pod_name, "api-1");
	assert_string_equal(w0->eps[0].node, "node-1");
	assert_true(w0->eps[0].ready && w0->eps[0].serving && !w0->eps[0].terminating);
	assert_int_equal(w0->nports, 1);
	assert_string_equal(w0->ports[0].name, "http");
	assert_int_equal(w0->ports[0].port, 8080);
	assert_int_equal(w1->neps, 1);
	assert_string_equal(w1->eps[0].pod_name, "api-2");
	assert_int_equal(w1->nports, 2);
	assert_int_equal(w1->ports[0].port, 9090);
	assert_int_equal(w1->ports[1].port, 53);
	assert_int_equal(w1->ports[1].proto, IPPROTO_UDP);
	/* a numeric targetPort: every selected pod of the namespace (not dev/other) */
	assert_int_equal(np->neps, 3);
	assert_int_equal(np->ports[0].port, 8080);
	scenario_free(s);
}

static void test_derived_slices_skip_pods_without_address(void **state)
{
	struct scenario *s = load_fixture();
	struct cluster_model *m = &s->model;
	struct diag d = { { 0 } };
	struct m_pod *api1 = (struct m_pod *)cluster_find_pod(m, "shop/api-1");

	api1->ip = 0;
	assert_int_equal(services_complete(m, &d), 0);
	assert_int_equal(slice(m, "np-derived-0")->neps, 2);
	assert_int_equal(slice(m, "web-derived-0")->eps[0].pod_name[4], '2'); /* api-2 only */
	assert_int_equal(m->nslices, 6); /* web and lb: api-2's slice only */
	assert_allocations(m);
	scenario_free(s);
}

/* ---- per-node entries ------------------------------------------------------------------- */

static const struct node_lb_entry *entry(const struct node_state *ns, const char *addr,
					 uint16_t port, uint8_t proto, uint16_t slot, uint8_t scope)
{
	size_t i;

	for (i = 0; i < ns->nlb; i++) {
		const struct lb_key *k = &ns->lb[i].key;

		if (k->addr.v4 == ip(addr) && k->dport == htons(port) && k->proto == proto &&
		    k->backend_slot == slot && k->scope == scope && k->family == CILIATE_AF_INET)
			return &ns->lb[i];
	}
	return NULL;
}

static const struct node_lb_entry *slot0(const struct node_state *ns, const char *addr,
					 uint16_t port, uint8_t scope)
{
	const struct node_lb_entry *e = entry(ns, addr, port, IPPROTO_TCP, 0, scope);

	if (!e) {
		print_error("no entry %s:%u scope %u\n", addr, port, scope);
		fail();
	}
	return e;
}

static const struct node_lb_backend *backend_by_id(const struct node_state *ns, uint32_t id)
{
	size_t i;

	for (i = 0; i < ns->nlb_backends; i++)
		if (ns->lb_backends[i].id == id)
			return &ns->lb_backends[i];
	return NULL;
}

static const struct node_lb_backend *backend_by_addr(const struct node_state *ns,
						     const char *addr, uint16_t port)
{
	size_t i;

	for (i = 0; i < ns->nlb_backends; i++)
		if (ns->lb_backends[i].val.addr.v4 == ip(addr) &&
		    ns->lb_backends[i].val.port == htons(port))
			return &ns->lb_backends[i];
	return NULL;
}

/* The addresses of the backend slots of a slot-0 entry, as "a b c". */
static void slot_backends(const struct node_state *ns, const struct node_lb_entry *e0,
			  char *out, size_t size)
{
	char a[IP4_STR_MAX];
	size_t n = 0;
	uint16_t i;

	out[0] = '\0';
	for (i = 1; i <= e0->val.count; i++) {
		union ciliate_addr addr = e0->key.addr;
		const struct node_lb_entry *e;
		const struct node_lb_backend *b;

		ip4_format(addr.v4, a);
		e = entry(ns, a, ntohs(e0->key.dport), e0->key.proto, i, e0->key.scope);
		assert_non_null(e);
		assert_int_equal(e->val.rev_nat_index, e0->val.rev_nat_index);
		b = backend_by_id(ns, e->val.backend_id);
		assert_non_null(b);
		assert_int_equal(b->val.state, LB_BACKEND_ACTIVE);
		n += (size_t)snprintf(out + n, size - n, "%s%s:%u", n ? " " : "",
				      ip4_format(b->val.addr.v4, a), ntohs(b->val.port));
	}
}

static void assert_slots(const struct node_state *ns, const struct node_lb_entry *e0,
			 const char *want)
{
	char got[512];

	slot_backends(ns, e0, got, sizeof(got));
	assert_string_equal(got, want);
}

static void compute(const struct cluster_model *m, const char *node, struct node_state *ns)
{
	struct diag d = { { 0 } };

	if (node_state_compute(m, node, ns, &d)) {
		print_error("%s\n", d.msg);
		fail();
	}
}

static void test_cluster_ip_frontends(void **state)
{
	struct scenario *s = load_fixture();
	struct node_state n1, n2;
	const struct node_lb_entry *e;

	compute(&s->model, "node-1", &n1);
	compute(&s->model, "node-2", &n2);
	/* web: ClusterIP, not routable, every backend, random */
	e = slot0(&n1, "10.96.0.3", 80, LB_SCOPE_EXTERNAL);
	assert_int_equal(e->val.flags, 0);
	assert_int_equal(e->val.flags2, 0);
	assert_int_equal(e->val.backend_id, 0);
	assert_slots(&n1, e, "10.244.0.10:8080 10.244.1.10:9090");
	e = entry(&n1, "10.96.0.3", 53, IPPROTO_UDP, 0, LB_SCOPE_EXTERNAL);
	assert_non_null(e);
	assert_int_equal(e->val.count, 1);
	/* np's ClusterIP ignores externalTrafficPolicy: every backend, one scope */
	e = slot0(&n1, "10.96.0.2", 80, LB_SCOPE_EXTERNAL);
	assert_int_equal(e->val.flags, 0);
	assert_slots(&n1, e, "10.244.0.10:8080 10.244.0.11:8080 10.244.1.10:8080");
	assert_null(entry(&n1, "10.96.0.2", 80, IPPROTO_TCP, 0, LB_SCOPE_INTERNAL));
	/* itp: internalTrafficPolicy Local, only this node's backends */
	e = slot0(&n1, "10.96.0.5", 8080, LB_SCOPE_EXTERNAL);
	assert_int_equal(e->val.flags2, LB_SVC_F2_INT_LOCAL_SCOPE);
	assert_slots(&n1, e, "10.244.0.10:8080 10.244.0.11:8080");
	e = slot0(&n2, "10.96.0.5", 8080, LB_SCOPE_EXTERNAL);
	assert_slots(&n2, e, "10.244.1.10:8080");
	/* headless: no frontend at all */
	for (size_t i = 0; i < n1.nlb_frontends; i++)
		assert_string_not_equal(n1.lb_frontends[i].svc->name, "headless");
	node_state_free(&n1);
	node_state_free(&n2);
	scenario_free(s);
}

static void test_nodeport_etp_local_two_scopes(void **state)
{
	struct scenario *s = load_fixture();
	struct node_state n1, n2;
	const struct node_lb_entry *e;
	const uint8_t flags = LB_SVC_F_NODEPORT | LB_SVC_F_ROUTABLE | LB_SVC_F_EXT_LOCAL_SCOPE;
	const uint8_t flags2 = LB_SVC_F2_TWO_SCOPES | LB_SVC_F2_FWD_MODE_DSR; /* hybrid: TCP */

	compute(&s->model, "node-1", &n1);
	compute(&s->model, "node-2", &n2);
	/* each node serves its own address only */
	assert_null(entry(&n1, "192.0.2.2", 30000, IPPROTO_TCP, 0, LB_SCOPE_EXTERNAL));
	e = slot0(&n1, "192.0.2.1", 30000, LB_SCOPE_EXTERNAL);
	assert_int_equal(e->val.flags, flags);
	assert_int_equal(e->val.flags2, flags2);
	assert_slots(&n1, e, "10.244.0.10:8080 10.244.0.11:8080");
	e = slot0(&n1, "192.0.2.1", 30000, LB_SCOPE_INTERNAL); /* from inside: every backend */
	assert_int_equal(e->val.flags, flags);
	assert_slots(&n1, e, "10.244.0.10:8080 10.244.0.11:8080 10.244.1.10:8080");
	e = slot0(&n2, "192.0.2.2", 30000, LB_SCOPE_EXTERNAL);
	assert_slots(&n2, e, "10.244.1.10:8080");
	assert_int_equal(e->val.flags2, flags2);
	node_state_free(&n1);
	node_state_free(&n2);
	scenario_free(s);
}

static void test_loadbalancer_frontends(void **state)
{
	struct scenario *s = load_fixture();
	struct node_state n1;
	const struct node_lb_entry *e;
	const uint8_t common = LB_SVC_F_AFFINITY | LB_SVC_F_ROUTABLE | LB_SVC_F_EXT_LOCAL_SCOPE;
	/* annotation snat: no DSR despite hybrid; annotation maglev */
	const uint8_t flags2 = LB_SVC_F2_MAGLEV | LB_SVC_F2_TWO_SCOPES;

	compute(&s->model, "node-1", &n1);
	e = slot0(&n1, "10.96.0.4", 443, LB_SCOPE_EXTERNAL);
	assert_int_equal(e->val.flags, LB_SVC_F_AFFINITY);
	assert_int_equal(e->val.flags2, LB_SVC_F2_MAGLEV);
	assert_int_equal(e->val.backend_id, 60); /* the affinity timeout */
	assert_slots(&n1, e, "10.244.0.10:8080 10.244.1.10:9090");
	e = slot0(&n1, "198.51.100.5", 443, LB_SCOPE_EXTERNAL);
	assert_int_equal(e->val.flags, common | LB_SVC_F_EXTERNAL_IP);
	assert_int_equal(e->val.flags2, flags2);
	assert_int_equal(e->val.backend_id, 60);
	assert_slots(&n1, e, "10.244.0.10:8080");
	e = slot0(&n1, "203.0.113.50", 443, LB_SCOPE_EXTERNAL);
	assert_int_equal(e->val.flags, common | LB_SVC_F_LOADBALANCER | LB_SVC_F_SOURCE_RANGE);
	assert_int_equal(e->val.flags2, flags2);
	assert_int_equal(n1.nlb_source_ranges, 1);
	assert_int_equal(n1.lb_source_ranges[0].rev_nat_index, e->val.rev_nat_index);
	assert_int_equal(n1.lb_source_ranges[0].cidr.addr, ip("203.0.113.0"));
	e = slot0(&n1, "192.0.2.1", 30080, LB_SCOPE_EXTERNAL);
	assert_int_equal(e->val.flags, common | LB_SVC_F_NODEPORT);
	assert_slots(&n1, e, "10.244.0.10:8080");
	e = slot0(&n1, "192.0.2.1", 30080, LB_SCOPE_INTERNAL);
	assert_slots(&n1, e, "10.244.0.10:8080 10.244.1.10:9090");
	node_state_free(&n1);
	scenario_free(s);
}

static void test_backend_states(void **state)
{
	struct scenario *s = load_fixture();
	struct node_state n1;
	const struct node_lb_backend *b;

	compute(&s->model, "node-1", &n1);
	/* ready (and no conditions: ready) -> selectable; serving + terminating -> kept in the
	 * backend map only; not serving -> left out */
	assert_slots(&n1, slot0(&n1, "10.96.0.6", 5000, LB_SCOPE_EXTERNAL),
		     "10.244.0.50:5000 10.244.0.51:5000");
	b = backend_by_addr(&n1, "10.244.1.50", 5000);
	assert_non_null(b);
	assert_int_equal(b->val.state, LB_BACKEND_TERMINATING);
	assert_int_equal(b->val.proto, IPPROTO_TCP);
	assert_null(backend_by_addr(&n1, "10.244.1.51", 5000));
	node_state_free(&n1);
	scenario_free(s);
}

static void test_ids_identical_on_both_nodes(void **state)
{
	struct scenario *s = load_fixture();
	struct node_state n1, n2;
	size_t i, j, shared = 0;

	compute(&s->model, "node-1", &n1);
	compute(&s->model, "node-2", &n2);
	/* every backend: the same id on both nodes (both use all of them here) */
	assert_int_equal(n1.nlb_backends, n2.nlb_backends);
	for (i = 0; i < n1.nlb_backends; i++) {
		assert_int_not_equal(n1.lb_backends[i].id, 0);
		assert_memory_equal(&n1.lb_backends[i], &n2.lb_backends[i],
				    sizeof(n1.lb_backends[i]));
		if (i)
			assert_true(n1.lb_backends[i - 1].id < n1.lb_backends[i].id);
	}
	/* reverse NAT: the frontends both nodes have share their index; indexes are distinct */
	for (i = 0; i < n1.nlb_revnat; i++) {
		assert_int_not_equal(n1.lb_revnat[i].index, 0);
		if (i)
			assert_true(n1.lb_revnat[i - 1].index < n1.lb_revnat[i].index);
		for (j = 0; j < n2.nlb_revnat; j++) {
			if (memcmp(&n1.lb_revnat[i].val, &n2.lb_revnat[j].val,
				   sizeof(n1.lb_revnat[i].val)))
				continue;
			assert_int_equal(n1.lb_revnat[i].index, n2.lb_revnat[j].index);
			shared++;
		}
	}
	/* ClusterIPs: web x2, np, lb, itp, manual; externalIP and LB ingress of lb */
	assert_int_equal(shared, 8);
	/* the NodePort frontends differ per node, and so do their indexes */
	assert_int_not_equal(slot0(&n1, "192.0.2.1", 30000, 0)->val.rev_nat_index,
			     slot0(&n2, "192.0.2.2", 30000, 0)->val.rev_nat_index);
	assert_int_equal(n1.nlb_revnat, 10); /* and the NodePorts of np and lb */
	node_state_free(&n1);
	node_state_free(&n2);
	scenario_free(s);
}

static const struct node_lb_maglev *maglev_of(const struct node_state *ns, uint16_t rev,
					      uint8_t scope)
{
	size_t i;

	for (i = 0; i < ns->nlb_maglev; i++)
		if (ns->lb_maglev[i].rev_nat_index == rev && ns->lb_maglev[i].scope == scope)
			return &ns->lb_maglev[i];
	return NULL;
}

static void test_maglev_tables_identical(void **state)
{
	struct scenario *s = load_fixture();
	struct node_state n1, n2;
	const struct node_lb_maglev *t1, *t2;
	uint16_t rev;
	size_t i;

	compute(&s->model, "node-1", &n1);
	compute(&s->model, "node-2", &n2);
	/* lb (annotation maglev): ClusterIP, externalIP x2 scopes, LB x2, NodePort x2 */
	assert_int_equal(n1.nlb_maglev, 7);
	assert_int_equal(n2.nlb_maglev, 7);
	rev = slot0(&n1, "10.96.0.4", 443, 0)->val.rev_nat_index;
	t1 = maglev_of(&n1, rev, LB_SCOPE_EXTERNAL);
	t2 = maglev_of(&n2, rev, LB_SCOPE_EXTERNAL);
	assert_non_null(t1);
	assert_non_null(t2);
	assert_int_equal(t1->size, 251);
	assert_memory_equal(t1->table, t2->table, t1->size * sizeof(*t1->table));
	for (i = 0; i < t1->size; i++)
		assert_non_null(backend_by_id(&n1, t1->table[i]));
	/* the internal scope of the externalIP: every backend, identical too */
	rev = slot0(&n1, "198.51.100.5", 443, 0)->val.rev_nat_index;
	t1 = maglev_of(&n1, rev, LB_SCOPE_INTERNAL);
	t2 = maglev_of(&n2, rev, LB_SCOPE_INTERNAL);
	assert_memory_equal(t1->table, t2->table, t1->size * sizeof(*t1->table));
	/* its external scope: this node's backend only */
	t1 = maglev_of(&n1, rev, LB_SCOPE_EXTERNAL);
	for (i = 0; i < t1->size; i++)
		assert_int_equal(backend_by_id(&n1, t1->table[i])->val.addr.v4, ip("10.244.0.10"));
	/* random services have no table */
	assert_null(maglev_of(&n1, slot0(&n1, "10.96.0.3", 80, 0)->val.rev_nat_index, 0));
	node_state_free(&n1);
	node_state_free(&n2);
	scenario_free(s);
}

static void test_kube_proxy_replacement_off(void **state)
{
	static const char text[] =
		"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: t}\nspec:\n"
		"  nodes: [{name: node-1}]\n  config: {kube-proxy-replacement: \"false\"}\n---\n"
		SVC_HEAD "  ports: [{port: 80}]\n";
	struct scenario *s = NULL;
	struct node_state n1;
	struct diag d = { { 0 } };

	assert_int_equal(scenario_load_buffer("inline.yaml", text, strlen(text), &s, &d), 0);
	assert_false(cluster_lb_config(&s->model)->kube_proxy_replacement);
	compute(&s->model, "node-1", &n1);
	assert_int_equal(n1.nlb, 0);
	assert_int_equal(n1.nlb_revnat, 0);
	node_state_free(&n1);
	scenario_free(s);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void expect_error(const char *yaml, const char *want)
{
	struct scenario *s = NULL;
	struct diag d = { { 0 } };

	assert_int_not_equal(scenario_load_buffer("inline.yaml", yaml, strlen(yaml), &s, &d), 0);
	assert_null(s);
	if (strcmp(d.msg, want)) {
		print_error("want: %s\ngot:  %s\n", want, d.msg);
		fail();
	}
}

static void expect_prefix(const char *yaml, const char *want)
{
	struct scenario *s = NULL;
	struct diag d = { { 0 } };

	assert_int_not_equal(scenario_load_buffer("inline.yaml", yaml, strlen(yaml), &s, &d), 0);
	if (strncmp(d.msg, want, strlen(want))) {
		print_error("want: %s...\ngot:  %s\n", want, d.msg);
		fail();
	}
}

#define SECOND_SVC "---\napiVersion: v1\nkind: Service\nmetadata: {name: t}\nspec:\n"

static void test_service_errors(void **state)
{
	expect_error(CLUSTER SVC_HEAD "  type: Foo\n",
		     "inline.yaml:12: spec.type: unknown type \"Foo\" (ClusterIP, NodePort, "
		     "LoadBalancer or ExternalName)");
	expect_error(CLUSTER SVC_HEAD "  ports: [{port: 70000}]\n",
		     "inline.yaml:12: spec.ports[0].port: 70000 out of range [1, 65535]");
	expect_error(CLUSTER SVC_HEAD "  ports: [{port: 0}]\n",
		     "inline.yaml:12: spec.ports[0].port: 0 out of range [1, 65535]");
	expect_error(CLUSTER SVC_HEAD "  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n",
		     "inline.yaml:13: spec.ports[0].nodePort: 8080 is outside the NodePort range "
		     "30000-32767");
	expect_error(CLUSTER SVC_HEAD "  ports: [{port: 80, nodePort: 30001}]\n",
		     "inline.yaml:12: spec.ports[0].nodePort: may not be used when type is "
		     "ClusterIP");
	expect_error(CLUSTER SVC_HEAD "  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n"
		     SECOND_SVC "  type: NodePort\n  ports:\n  - {port: 81, nodePort: 30080}\n",
		     "inline.yaml:21: spec.ports[0].nodePort: 30080 is already taken by service "
		     "\"default/s\"");
	expect_error(CLUSTER SVC_HEAD "  ports:\n  - {name: a, port: 80}\n  - {name: a, port: 81}\n",
		     "inline.yaml:14: spec.ports[1].name: duplicate port name \"a\" (spec.ports[0])");
	expect_error(CLUSTER SVC_HEAD "  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 80}\n",
		     "inline.yaml:14: spec.ports[1].port: duplicate port 80/TCP (spec.ports[0])");
	expect_error(CLUSTER SVC_HEAD "  ports:\n  - {port: 80}\n  - {name: b, port: 81}\n",
		     "inline.yaml:13: spec.ports[0].name: required when a service has more than "
		     "one port");
	expect_error(CLUSTER SVC_HEAD "  ports: [{port: 80, targetPort: http_x}]\n",
		     "inline.yaml:12: spec.ports[0].targetPort: \"http_x\" is neither a port "
		     "number nor a port name (IANA_SVC_NAME)");
	expect_error(CLUSTER SVC_HEAD "  clusterIP: 10.0.0.1\n  ports: [{port: 80}]\n",
		     "inline.yaml:12: spec.clusterIP: 10.0.0.1 is outside the serviceCIDR "
		     "10.96.0.0/28");
	expect_error(CLUSTER SVC_HEAD "  clusterIP: 10.96.0.5\n  ports: [{port: 80}]\n"
		     SECOND_SVC "  clusterIP: 10.96.0.5\n  ports: [{port: 80}]\n",
		     "inline.yaml:19: spec.clusterIP: 10.96.0.5 is already service "
		     "\"default/s\"'s clusterIP");
	expect_error(CLUSTER SVC_HEAD "  type: NodePort\n  clusterIP: None\n  ports: [{port: 80}]\n",
		     "inline.yaml:13: spec.clusterIP: may not be \"None\" for a NodePort service");
	expect_error(CLUSTER SVC_HEAD "  loadBalancerSourceRanges: [1.2.3.4/33]\n"
		     "  ports: [{port: 80}]\n",
		     "inline.yaml:12: spec.loadBalancerSourceRanges[0]: bad CIDR \"1.2.3.4/33\" "
		     "(want A.B.C.D/N with no host bits)");
	expect_error(CLUSTER SVC_HEAD "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n"
		     "  ports: [{port: 80}]\n",
		     "inline.yaml:12: spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 out "
		     "of range [1, 86400]");
	expect_error(CLUSTER SVC_HEAD "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}\n"
		     "  ports: [{port: 80}]\n",
		     "inline.yaml:12: spec.sessionAffinityConfig.clientIP.timeoutSeconds: 86401 "
		     "out of range [1, 86400]");
	expect_error(CLUSTER SVC_HEAD "  sessionAffinity: Sticky\n  ports: [{port: 80}]\n",
		     "inline.yaml:12: spec.sessionAffinity: unknown session affinity \"Sticky\" "
		     "(None or ClientIP)");
	expect_error(CLUSTER SVC_HEAD "  externalTrafficPolicy: Global\n  ports: [{port: 80}]\n",
		     "inline.yaml:12: spec.externalTrafficPolicy: unknown traffic policy "
		     "\"Global\" (Cluster or Local)");
	expect_error(CLUSTER SVC_HEAD "  externalIPs: [1.2.3]\n  ports: [{port: 80}]\n",
		     "inline.yaml:12: spec.externalIPs[0]: bad IPv4 address \"1.2.3\"");
	expect_error(CLUSTER SVC_HEAD "  type: NodePort\n  healthCheckNodePort: 30100\n"
		     "  ports: [{port: 80}]\n",
		     "inline.yaml:13: spec.healthCheckNodePort: may only be set when type is "
		     "LoadBalancer and externalTrafficPolicy is Local");
	expect_error(CLUSTER SVC_HEAD "  selector: {app: a}\n",
		     "inline.yaml:12: spec.ports: required field missing");
	expect_error(CLUSTER "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n"
		     "  annotations: {service.cilium.io/forwarding-mode: fast}\n"
		     "spec:\n  ports: [{port: 80}]\n",
		     "inline.yaml:12: metadata.annotations.service.cilium.io/forwarding-mode: "
		     "unknown forwarding mode \"fast\" (snat or dsr)");
	expect_error(CLUSTER "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n"
		     "  annotations: {service.cilium.io/lb-algorithm: hash}\n"
		     "spec:\n  ports: [{port: 80}]\n",
		     "inline.yaml:12: metadata.annotations.service.cilium.io/lb-algorithm: "
		     "unknown load-balancing algorithm \"hash\" (random or maglev)");
	expect_error(CLUSTER SVC_HEAD "  ports: [{port: 80}]\n" SECOND_SVC
		     "  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Service\n"
		     "metadata: {name: s}\nspec: {ports: [{port: 1}]}\n",
		     "inline.yaml:20: metadata.name: duplicate Service \"default/s\" (first at "
		     "line 8)");
}

static void test_slice_errors(void **state)
{
#define SLICE_HEAD                                                       \
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n" \
	"  name: e\n  labels: {kubernetes.io/service-name: s}\n"
	expect_error(CLUSTER SLICE_HEAD "addressType: IPv5\n",
		     "inline.yaml:13: addressType: unknown address type \"IPv5\" (IPv4, IPv6 or "
		     "FQDN)");
	expect_error(CLUSTER SLICE_HEAD "addressType: IPv4\nendpoints:\n- addresses: [10.1.2]\n",
		     "inline.yaml:15: endpoints[0].addresses[0]: bad IPv4 address \"10.1.2\"");
	expect_error(CLUSTER SLICE_HEAD "endpoints:\n- addresses: []\n",
		     "inline.yaml:14: endpoints[0].addresses: at least one address is required");
	expect_error(CLUSTER SLICE_HEAD "endpoints:\n- addresses: [10.0.0.1]\n"
		     "  conditions: {ready: maybe}\n",
		     "inline.yaml:15: endpoints[0].conditions.ready: expected true or false");
	expect_error(CLUSTER SLICE_HEAD "ports: [{port: 99999}]\n",
		     "inline.yaml:13: ports[0].port: 99999 out of range [1, 65535]");
}

static void test_slice_conditions_defaults(void **state)
{
	static const char yaml[] =
		CLUSTER SLICE_HEAD "endpoints:\n- addresses: [10.0.0.1]\n"
		"- addresses: [10.0.0.2]\n  conditions: {ready: false}\n"
		"- addresses: [10.0.0.3]\n  conditions: {ready: false, terminating: true}\n"
		"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: v6}\n"
		"addressType: IPv6\nendpoints: [{addresses: ['fd00::1']}]\n";
	struct scenario *s = NULL;
	struct diag d = { { 0 } };
	const struct m_endpoint_slice *sl;

	assert_int_equal(scenario_load_buffer("inline.yaml", yaml, strlen(yaml), &s, &d), 0);
	assert_int_equal(s->model.nslices, 1); /* IPv6 slices are accepted, not used */
	sl = &s->model.slices[0];
	assert_string_equal(sl->service, "s");
	assert_true(sl->eps[0].ready && sl->eps[0].serving && !sl->eps[0].terminating);
	assert_true(!sl->eps[1].ready && !sl->eps[1].serving); /* serving follows ready */
	assert_true(!sl->eps[2].ready && !sl->eps[2].serving && sl->eps[2].terminating);
	scenario_free(s);
}

static void test_error_through_docs_names_document(void **state)
{
	static const char a[] = SVC_HEAD "  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n";
	static const char b[] = "apiVersion: v1\nkind: Service\nmetadata: {name: t}\nspec:\n"
				"  type: NodePort\n  ports: [{port: 81, nodePort: 30080}]\n";
	static const char cl[] = CLUSTER;
	struct model_doc md[3] = {
		{ .name = "cluster", .text = cl, .len = sizeof(cl) - 1 },
		{ .name = "svc-s", .text = a, .len = sizeof(a) - 1 },
		{ .name = "svc-t", .text = b, .len = sizeof(b) - 1 },
	};
	struct model_part *parts[2];
	struct cluster_model *m = NULL, *base = NULL;
	struct diag d = { { 0 } };
	size_t bad = 0;

	assert_int_not_equal(cluster_model_from_docs("store", md, 3, &m, &bad, &d), 0);
	assert_int_equal(bad, 2);
	assert_string_equal(d.msg, "svc-t:6: spec.ports[0].nodePort: 30080 is already taken by "
				   "service \"default/s\"");
	/* parts alone are fine; put together they conflict: -EAGAIN (from_docs names it) */
	assert_int_equal(cluster_model_from_docs("base", md, 1, &base, NULL, &d), 0);
	assert_int_equal(model_part_parse(base, "svc-s", a, sizeof(a) - 1, &parts[0], &d), 0);
	assert_int_equal(model_part_parse(base, "svc-t", b, sizeof(b) - 1, &parts[1], &d), 0);
	assert_int_equal(cluster_model_copy_cluster(base, &m), 0);
	assert_int_equal(cluster_model_from_parts(m, parts, 2, &d), -EAGAIN);
	cluster_model_free(m);
	model_part_unref(parts[0]);
	model_part_unref(parts[1]);
	cluster_model_free(base);
}

/* ---- cilium-config ----------------------------------------------------------------------- */

#define CONFIG_CLUSTER(cfg)                                                          \
	"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: t}\nspec:\n" \
	"  nodes: [{name: node-1}]\n  config:\n    " cfg "\n"

static void test_config_defaults(void **state)
{
	static const char yaml[] = CONFIG_CLUSTER("allow-localhost: policy");
	struct scenario *s = NULL;
	struct diag d = { { 0 } };
	const struct m_lb_config *c;

	assert_int_equal(scenario_load_buffer("inline.yaml", yaml, strlen(yaml), &s, &d), 0);
	c = cluster_lb_config(&s->model);
	assert_true(c->kube_proxy_replacement);
	assert_int_equal(c->mode, LB_MODE_SNAT);
	assert_int_equal(c->algorithm, LB_ALG_RANDOM);
	assert_int_equal(c->maglev_table_size, 16381);
	assert_int_equal(c->maglev_seed.murmur, 0x24b7ef82); /* "JLfv..." bytes 0-3 */
	assert_int_equal(c->dsr_dispatch, DSR_DISPATCH_OPT);
	assert_false(c->bpf_masquerade);
	assert_true(c->health_check_nodeport);
	assert_int_equal(c->native_routing_cidr, ip("10.244.0.0"));
	assert_int_equal(c->native_routing_cidr_len, 16);
	scenario_free(s);
}

static void test_config_values(void **state)
{
	static const char yaml[] = CONFIG_CLUSTER(
		"{bpf-lb-mode: annotation, bpf-lb-algorithm: maglev, bpf-lb-maglev-table-size: 65521,"
		" bpf-lb-dsr-dispatch: geneve, enable-bpf-masquerade: 'true',"
		" ipv4-native-routing-cidr: 10.0.0.0/8, enable-health-check-nodeport: 'false',"
		" kube-proxy-replacement: 'true', bpf-lb-maglev-hash-seed: AAAAAQAAAAIAAAAD}");
	struct scenario *s = NULL;
	struct diag d = { { 0 } };
	const struct m_lb_config *c;

	if (scenario_load_buffer("inline.yaml", yaml, strlen(yaml), &s, &d))
		print_error("%s\n", d.msg);
	assert_non_null(s);
	c = cluster_lb_config(&s->model);
	assert_int_equal(c->mode, LB_MODE_ANNOTATION);
	assert_int_equal(c->algorithm, LB_ALG_MAGLEV);
	assert_int_equal(c->maglev_table_size, 65521);
	assert_int_equal(c->dsr_dispatch, DSR_DISPATCH_GENEVE);
	assert_true(c->bpf_masquerade);
	assert_false(c->health_check_nodeport);
	assert_int_equal(c->native_routing_cidr, ip("10.0.0.0"));
	assert_int_equal(c->native_routing_cidr_len, 8);
	assert_int_equal(c->maglev_seed.murmur, 1);
	assert_int_equal(c->maglev_seed.jhash0, 2);
	assert_int_equal(c->maglev_seed.jhash1, 3);
	assert_string_equal(cluster_config(&s->model, "bpf-lb-mode"), "annotation");
	scenario_free(s);
}

static void test_config_errors(void **state)
{
	expect_error(CONFIG_CLUSTER("bpf-lb-mode: fast"),
		     "inline.yaml:7: spec.config.bpf-lb-mode: bad value \"fast\" (want snat | dsr "
		     "| hybrid | annotation)");
	expect_error(CONFIG_CLUSTER("bpf-lb-algorithm: hash"),
		     "inline.yaml:7: spec.config.bpf-lb-algorithm: bad value \"hash\" (want random "
		     "| maglev)");
	expect_error(CONFIG_CLUSTER("bpf-lb-dsr-dispatch: gre"),
		     "inline.yaml:7: spec.config.bpf-lb-dsr-dispatch: bad value \"gre\" (want opt "
		     "| ipip | geneve)");
	expect_error(CONFIG_CLUSTER("kube-proxy-replacement: strict"),
		     "inline.yaml:7: spec.config.kube-proxy-replacement: bad value \"strict\" "
		     "(want true or false)");
	expect_error(CONFIG_CLUSTER("enable-bpf-masquerade: yes"),
		     "inline.yaml:7: spec.config.enable-bpf-masquerade: bad value \"yes\" (want "
		     "true or false)");
	expect_error(CONFIG_CLUSTER("enable-health-check-nodeport: 1"),
		     "inline.yaml:7: spec.config.enable-health-check-nodeport: bad value \"1\" "
		     "(want true or false)");
	expect_error(CONFIG_CLUSTER("bpf-lb-maglev-table-size: 1000"),
		     "inline.yaml:7: spec.config.bpf-lb-maglev-table-size: bad value \"1000\" "
		     "(want one of the primes 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, "
		     "65521, 131071)");
	expect_prefix(CONFIG_CLUSTER("bpf-lb-maglev-hash-seed: abc"),
		      "inline.yaml:7: spec.config.bpf-lb-maglev-hash-seed: \"abc\" is not base64");
	expect_error(CONFIG_CLUSTER("ipv4-native-routing-cidr: 10.0.0.1/8"),
		     "inline.yaml:7: spec.config.ipv4-native-routing-cidr: bad CIDR \"10.0.0.1/8\" "
		     "(want A.B.C.D/N with no host bits)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fixture),
		cmocka_unit_test(test_allocation_deterministic),
		cmocka_unit_test(test_allocation_same_through_docs_and_parts),
		cmocka_unit_test(test_derived_slices),
		cmocka_unit_test(test_derived_slices_skip_pods_without_address),
		cmocka_unit_test(test_cluster_ip_frontends),
		cmocka_unit_test(test_nodeport_etp_local_two_scopes),
		cmocka_unit_test(test_loadbalancer_frontends),
		cmocka_unit_test(test_backend_states),
		cmocka_unit_test(test_ids_identical_on_both_nodes),
		cmocka_unit_test(test_maglev_tables_identical),
		cmocka_unit_test(test_kube_proxy_replacement_off),
		cmocka_unit_test(test_service_errors),
		cmocka_unit_test(test_slice_errors),
		cmocka_unit_test(test_slice_conditions_defaults),
		cmocka_unit_test(test_error_through_docs_names_document),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_values),
		cmocka_unit_test(test_config_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
