/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service entries of one node (docs/SERVICES.md, "Per-node entries"): for every service
 * port, its frontends on this node (slot 0 and the backend slots, struct lb_key/lb_service),
 * the backends they use (struct lb_backend), the reverse-NAT entries (struct
 * lb_reverse_nat), the Maglev tables and the source ranges.
 *
 * Numbers that the datapath keeps in connection state must mean the same on every node and
 * survive unrelated changes: a backend id is a hash of "ADDR:PORT/PROTO", a reverse-NAT index
 * a hash of the frontend's "ADDR:PORT/PROTO", each taken over the whole cluster model (every
 * node's NodePort frontends included) with linear probing, in name order, on a collision.
 */
#include "model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"

#define BACKEND_ID_SPACE 0xffffffu /* backend ids 1..2^24-1 */
#define REVNAT_SPACE	 0xffffu   /* reverse-NAT indexes 1..65535 */

/* ---- names and hashed ids ------------------------------------------------------------------ */

struct named_id {
	char name[MAGLEV_NAME_MAX]; /* "ADDR:PORT/PROTO" */
	uint32_t owner;		    /* frontends: the first (service, port) in model order */
	uint32_t id;
};

struct name_table {
	struct named_id *v;
	size_t n, cap;
};

static void addr_name(char *buf, uint32_t addr, uint16_t port, uint8_t proto)
{
	maglev_backend_name(buf, MAGLEV_NAME_MAX, AF_INET, &addr, port, svc_proto_name(proto));
}

static int names_add(struct name_table *t, uint32_t addr, uint16_t port, uint8_t proto,
		     uint32_t owner)
{
	struct named_id *v;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;

		v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	v = &t->v[t->n++];
	addr_name(v->name, addr, port, proto);
	v->owner = owner;
	v->id = 0;
	return 0;
}

static int named_cmp(const void *a, const void *b)
{
	const struct named_id *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->owner > y->owner) - (x->owner < y->owner);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

/* An open-addressing set of the ids taken so far. */
struct id_set {
	uint32_t *slot;
	size_t mask;
};

static bool id_set_add(struct id_set *s, uint32_t id)
{
	size_t i = (size_t)(id * 0x9e3779b9u) & s->mask;

	while (s->slot[i]) {
		if (s->slot[i] == id)
			return false;
		i = (i + 1) & s->mask;
	}
	s->slot[i] = id;
	return true;
}

/* Sorts t, keeps the first of equal names (the lowest owner) and gives each name the id
 * 1 + hash % space, the next free one on a collision. */
static int names_assign(struct name_table *t, uint32_t space)
{
	struct id_set set = { 0 };
	size_t cap = 64, i, n = 0;
	uint32_t id;

	qsort(t->v, t->n, sizeof(*t->v), named_cmp);
	for (i = 0; i < t->n; i++)
		if (!n || strcmp(t->v[n - 1].name, t->v[i].name))
			t->v[n++] = t->v[i];
	t->n = n;
	if (n >= space)
		return -ENOSPC;
	while (cap < 2 * n)
		cap *= 2;
	set.slot = calloc(cap, sizeof(*set.slot));
	if (!set.slot)
		return -ENOMEM;
	set.mask = cap - 1;
	for (i = 0; i < n; i++) {
		id = (uint32_t)(fnv1a(t->v[i].name) % space) + 1;
		while (!id_set_add(&set, id))
			id = id % space + 1;
		t->v[i].id = id;
	}
	free(set.slot);
	return 0;
}

static const struct named_id *names_find(const struct name_table *t, uint32_t addr,
					 uint16_t port, uint8_t proto)
{
	struct named_id key = { .owner = 0 };
	size_t lo = 0, hi = t->n, mid;
	int c;

	addr_name(key.name, addr, port, proto);
	while (lo < hi) {
		mid = (lo + hi) / 2;
		c = strcmp(t->v[mid].name, key.name);
		if (!c)
			return &t->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- the backends of a service port ----------------------------------------------------- */

struct svc_backend {
	uint32_t addr;
	uint16_t port;
	uint8_t proto;
	uint8_t state; /* LB_BACKEND_ACTIVE / TERMINATING */
	bool local;    /* on the node being computed */
	uint32_t id;
	char name[MAGLEV_NAME_MAX];
};

struct backend_list {
	struct svc_backend *v;
	size_t n;
};

static const struct m_slice_port *slice_port_for(const struct m_endpoint_slice *sl,
						 const struct m_service_port *sp)
{
	size_t i;

	for (i = 0; i < sl->nports; i++)
		if (sl->ports[i].proto == sp->proto && !strcmp(sl->ports[i].name, sp->name))
			return &sl->ports[i];
	return NULL;
}

/* The node of a slice endpoint: its nodeName, else that of the pod with its address. */
static const char *endpoint_node(const struct cluster_model *m, const struct m_slice_endpoint *e)
{
	size_t i;

	if (e->node[0])
		return e->node;
	for (i = 0; i < m->npods; i++)
		if (!m->pods[i].host_network && m->pods[i].ip == e->addr)
			return m->pods[i].node;
	return "";
}

/* ready: ACTIVE; serving and terminating: TERMINATING; otherwise not a backend (-1). */
static int endpoint_state(const struct m_slice_endpoint *e)
{
	if (e->ready)
		return LB_BACKEND_ACTIVE;
	if (e->serving && e->terminating)
		return LB_BACKEND_TERMINATING;
	return -1;
}

static int backend_cmp(const void *a, const void *b)
{
	return strcmp(((const struct svc_backend *)a)->name, ((const struct svc_backend *)b)->name);
}

static int backends_add(const struct cluster_model *m, struct backend_list *bl,
			const struct m_slice_endpoint *e, const struct m_slice_port *p,
			const char *node)
{
	int state = endpoint_state(e);
	struct svc_backend *v, *b;

	if (state < 0 || !e->addr)
		return 0;
	v = realloc(bl->v, (bl->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	bl->v = v;
	b = &v[bl->n++];
	memset(b, 0, sizeof(*b));
	b->addr = e->addr;
	b->port = p->port;
	b->proto = p->proto;
	b->state = (uint8_t)state;
	b->local = node && !strcmp(endpoint_node(m, e), node);
	addr_name(b->name, b->addr, b->port, b->proto);
	return 0;
}

/* The model's EndpointSlices by (namespace, service): a service's slices without a scan of
 * all of them (10k services each scanning 10k slices was most of a reconcile). */
struct slice_index {
	const struct cluster_model *m;
	size_t *idx; /* slice indexes with a service, by (ns, service, index) */
	size_t n;
};

static int slice_cmp(const void *a, const void *b, void *model)
{
	const struct cluster_model *m = model;
	const struct m_endpoint_slice *x = &m->slices[*(const size_t *)a];
	const struct m_endpoint_slice *y = &m->slices[*(const size_t *)b];
	int c = strcmp(x->ns, y->ns);

	if (!c)
		c = strcmp(x->service, y->service);
	if (!c)
		c = (*(const size_t *)a > *(const size_t *)b) - (*(const size_t *)a < *(const size_t *)b);
	return c;
}

static int slice_index_build(const struct cluster_model *m, struct slice_index *si)
{
	size_t i;

	si->m = m;
	si->n = 0;
	si->idx = malloc((m->nslices + 1) * sizeof(*si->idx));
	if (!si->idx)
		return -ENOMEM;
	for (i = 0; i < m->nslices; i++)
		if (m->slices[i].service[0])
			si->idx[si->n++] = i;
	qsort_r(si->idx, si->n, sizeof(*si->idx), slice_cmp, (void *)m);
	return 0;
}

/* The first position of (ns, service) in si, and how many slices it has there. */
static size_t slice_index_find(const struct slice_index *si, const char *ns, const char *svc,
			       size_t *count)
{
	size_t lo = 0, hi = si->n, mid, end;
	int c;

	while (lo < hi) {
		const struct m_endpoint_slice *sl;

		mid = (lo + hi) / 2;
		sl = &si->m->slices[si->idx[mid]];
		c = strcmp(sl->ns, ns);
		if (!c)
			c = strcmp(sl->service, svc);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < si->n; end++) {
		const struct m_endpoint_slice *sl = &si->m->slices[si->idx[end]];

		if (strcmp(sl->ns, ns) || strcmp(sl->service, svc))
			break;
	}
	*count = end - lo;
	return lo;
}

/* The backends of (svc, sp) from the service's slices, sorted by name, one per name (an
 * active duplicate wins over a terminating one). */
static int collect_backends(const struct slice_index *si, const struct m_service *svc,
			    const struct m_service_port *sp, const char *node,
			    struct backend_list *bl)
{
	const struct cluster_model *m = si->m;
	size_t i, j, n = 0, first, count;
	int err;

	bl->v = NULL;
	bl->n = 0;
	first = slice_index_find(si, svc->ns, svc->name, &count);
	for (i = first; i < first + count; i++) {
		const struct m_endpoint_slice *sl = &m->slices[si->idx[i]];
		const struct m_slice_port *p;

		p = slice_port_for(sl, sp);
		for (j = 0; p && j < sl->neps; j++) {
			err = backends_add(m, bl, &sl->eps[j], p, node);
			if (err)
				return err;
		}
	}
	if (bl->n)
		qsort(bl->v, bl->n, sizeof(*bl->v), backend_cmp);
	for (i = 0; i < bl->n; i++) {
		if (n && !strcmp(bl->v[n - 1].name, bl->v[i].name)) {
			if (bl->v[i].state == LB_BACKEND_ACTIVE)
				bl->v[n - 1].state = LB_BACKEND_ACTIVE;
			continue;
		}
		bl->v[n++] = bl->v[i];
	}
	bl->n = n;
	return 0;
}

/* ---- frontends -------------------------------------------------------------------------- */

enum fe_kind { FE_CLUSTER_IP, FE_EXTERNAL_IP, FE_LOAD_BALANCER, FE_NODE_PORT };

struct frontend {
	enum fe_kind kind;
	uint32_t addr;
	uint16_t port;
};

/* Calls fn on every frontend of (svc, port j) that node serves; node NULL: every node's
 * NodePort frontend (the cluster-wide list of frontends). */
static int frontends_each(const struct cluster_model *m, const struct m_service *svc, size_t j,
			  const struct m_node *node,
			  int (*fn)(const struct frontend *fe, void *arg), void *arg)
{
	const struct m_service_port *sp = &svc->ports[j];
	struct frontend fe = { .kind = FE_CLUSTER_IP, .addr = svc->cluster_ip, .port = sp->port };
	size_t i;
	int err = 0;

	if (svc->headless)
		return 0;
	err = fn(&fe, arg);
	fe.kind = FE_EXTERNAL_IP;
	for (i = 0; !err && i < svc->nexternal_ips; i++) {
		fe.addr = svc->external_ips[i];
		err = fn(&fe, arg);
	}
	fe.kind = FE_LOAD_BALANCER;
	for (i = 0; !err && svc->type == SVC_LOAD_BALANCER && i < svc->nlb_ips; i++) {
		fe.addr = svc->lb_ips[i];
		err = fn(&fe, arg);
	}
	if (!sp->node_port)
		return err;
	fe.kind = FE_NODE_PORT;
	fe.port = sp->node_port;
	for (i = 0; !err && i < m->cluster.nnodes; i++) {
		if (node && &m->cluster.nodes[i] != node)
			continue;
		fe.addr = m->cluster.nodes[i].ip;
		err = fn(&fe, arg);
	}
	return err;
}

/* ---- what is computed once for the whole model ------------------------------------------- */

struct lb_ids {
	struct name_table frontends; /* reverse-NAT indexes */
	struct name_table backends;  /* backend ids */
};

struct collect_arg {
	struct name_table *t;
	uint8_t proto;
	uint32_t owner;
};

static int collect_frontend(const struct frontend *fe, void *arg)
{
	struct collect_arg *a = arg;

	return names_add(a->t, fe->addr, fe->port, a->proto, a->owner);
}

static int collect_port_ids(const struct slice_index *slices, size_t si, size_t j,
			    struct lb_ids *ids)
{
	const struct cluster_model *m = slices->m;
	const struct m_service *svc = &m->services[si];
	struct collect_arg a = { &ids->frontends, svc->ports[j].proto, 0 };
	struct backend_list bl = { NULL, 0 };
	size_t k;
	int err;

	a.owner = (uint32_t)(si << 8 | (j & 0xff)); /* model order; ports beyond 255: ties */
	err = frontends_each(m, svc, j, NULL, collect_frontend, &a);
	if (!err)
		err = collect_backends(slices, svc, &svc->ports[j], NULL, &bl);
	for (k = 0; !err && k < bl.n; k++)
		err = names_add(&ids->backends, bl.v[k].addr, bl.v[k].port, bl.v[k].proto, 0);
	free(bl.v);
	return err;
}

static int lb_ids_compute(const struct slice_index *slices, struct lb_ids *ids)
{
	const struct cluster_model *m = slices->m;
	size_t i, j;
	int err = 0;

	memset(ids, 0, sizeof(*ids));
	for (i = 0; !err && i < m->nservices; i++)
		for (j = 0; !err && j < m->services[i].nports; j++)
			err = collect_port_ids(slices, i, j, ids);
	if (!err)
		err = names_assign(&ids->frontends, REVNAT_SPACE);
	if (!err)
		err = names_assign(&ids->backends, BACKEND_ID_SPACE);
	return err;
}

static void lb_ids_free(struct lb_ids *ids)
{
	free(ids->frontends.v);
	free(ids->backends.v);
}

/* ---- the entries of one node ------------------------------------------------------------- */

struct port_ctx {
	const struct cluster_model *m;
	const struct m_lb_config *cfg;
	struct node_state *ns;
	const struct lb_ids *ids;
	const struct m_service *svc;
	const struct m_service_port *sp;
	uint32_t owner;
	struct backend_list bl;
	size_t cap_lb, cap_fe, cap_rn, cap_mg, cap_sr;
};

#define GROW(ptr, n, cap)                                                          \
	({                                                                         \
		int _e = 0;                                                        \
		if ((n) == (cap)) {                                                \
			size_t _c = (cap) ? 2 * (cap) : 16;                        \
			void *_v = realloc((ptr), _c * sizeof(*(ptr)));            \
			if (_v) {                                                  \
				(ptr) = _v;                                        \
				(cap) = _c;                                        \
			} else {                                                   \
				_e = -ENOMEM;                                      \
			}                                                          \
		}                                                                  \
		_e;                                                                \
	})

static bool uses_dsr(const struct port_ctx *c)
{
	if (c->svc->fwd_mode != SVC_FWD_DEFAULT)
		return c->svc->fwd_mode == SVC_FWD_DSR;
	return c->cfg->mode == LB_MODE_DSR ||
	       (c->cfg->mode == LB_MODE_HYBRID && c->sp->proto == IPPROTO_TCP);
}

static bool uses_maglev(const struct port_ctx *c)
{
	if (c->svc->algorithm != SVC_ALG_DEFAULT)
		return c->svc->algorithm == SVC_ALG_MAGLEV;
	return c->cfg->algorithm == LB_ALG_MAGLEV;
}

static void frontend_flags(const struct port_ctx *c, const struct frontend *fe, uint8_t *flags,
			   uint8_t *flags2)
{
	bool external = fe->kind != FE_CLUSTER_IP;

	*flags = c->svc->affinity ? LB_SVC_F_AFFINITY : 0;
	*flags2 = c->svc->itp_local ? LB_SVC_F2_INT_LOCAL_SCOPE : 0;
	if (uses_maglev(c))
		*flags2 |= LB_SVC_F2_MAGLEV;
	if (!external)
		return; /* ClusterIP: not routable from outside the cluster */
	*flags |= LB_SVC_F_ROUTABLE;
	if (c->svc->etp_local)
		*flags |= LB_SVC_F_EXT_LOCAL_SCOPE;
	if (c->svc->etp_local != c->svc->itp_local)
		*flags2 |= LB_SVC_F2_TWO_SCOPES;
	if (uses_dsr(c))
		*flags2 |= LB_SVC_F2_FWD_MODE_DSR;
	if (fe->kind == FE_EXTERNAL_IP)
		*flags |= LB_SVC_F_EXTERNAL_IP;
	else if (fe->kind == FE_NODE_PORT)
		*flags |= LB_SVC_F_NODEPORT;
	else
		*flags |= LB_SVC_F_LOADBALANCER;
	if (fe->kind == FE_LOAD_BALANCER && c->svc->nsource_ranges)
		*flags |= LB_SVC_F_SOURCE_RANGE;
}

static void fill_key(struct lb_key *k, const struct frontend *fe, uint8_t proto, uint16_t slot,
		     uint8_t scope)
{
	memset(k, 0, sizeof(*k));
	k->addr.v4 = fe->addr;
	k->dport = htons(fe->port);
	k->backend_slot = slot;
	k->proto = proto;
	k->scope = scope;
	k->family = CILIATE_AF_INET;
}

static int add_maglev(struct port_ctx *c, uint16_t rev, uint8_t scope, bool local_only)
{
	struct node_state *ns = c->ns;
	struct maglev_backend *mb = calloc(c->bl.n + 1, sizeof(*mb));
	struct node_lb_maglev *t;
	size_t i, n = 0;
	int err;

	if (!mb)
		return -ENOMEM;
	for (i = 0; i < c->bl.n; i++) {
		const struct svc_backend *b = &c->bl.v[i];

		if (b->state != LB_BACKEND_ACTIVE || (local_only && !b->local))
			continue;
		mb[n].name = b->name;
		mb[n].id = b->id;
		mb[n++].weight = MAGLEV_WEIGHT_DEFAULT;
	}
	err = GROW(ns->lb_maglev, ns->nlb_maglev, c->cap_mg);
	if (err || !n)
		goto out;
	t = &ns->lb_maglev[ns->nlb_maglev];
	memset(t, 0, sizeof(*t));
	t->rev_nat_index = rev;
	t->scope = scope;
	t->size = c->cfg->maglev_table_size;
	t->table = calloc(t->size, sizeof(*t->table));
	err = t->table ? maglev_build(mb, n, t->size, &c->cfg->maglev_seed, t->table) : -ENOMEM;
	if (err)
		free(t->table);
	else
		ns->nlb_maglev++;
out:
	free(mb);
	return err;
}

/* Slot 0 and the backend slots of one (frontend, scope) entry. */
static int add_entry(struct port_ctx *c, const struct frontend *fe, uint16_t rev, uint8_t scope,
		     bool local_only, uint8_t flags, uint8_t flags2)
{
	struct node_state *ns = c->ns;
	struct node_lb_entry *e0;
	size_t i, slot0;
	uint16_t count = 0;
	int err;

	err = GROW(ns->lb, ns->nlb, c->cap_lb);
	if (!err)
		err = GROW(ns->lb_frontends, ns->nlb_frontends, c->cap_fe);
	if (err)
		return err;
	slot0 = ns->nlb++;
	ns->lb_frontends[ns->nlb_frontends++] =
		(struct node_lb_frontend){ .svc = c->svc, .port = c->sp, .slot0 = slot0 };
	for (i = 0; i < c->bl.n; i++) {
		const struct svc_backend *b = &c->bl.v[i];
		struct node_lb_entry *e;

		if (b->state != LB_BACKEND_ACTIVE || (local_only && !b->local))
			continue;
		err = GROW(ns->lb, ns->nlb, c->cap_lb);
		if (err)
			return err;
		e = &ns->lb[ns->nlb++];
		fill_key(&e->key, fe, c->sp->proto, ++count, scope);
		memset(&e->val, 0, sizeof(e->val));
		e->val.backend_id = b->id;
		e->val.rev_nat_index = rev;
		e->val.flags = flags;
		e->val.flags2 = flags2;
	}
	e0 = &ns->lb[slot0];
	fill_key(&e0->key, fe, c->sp->proto, 0, scope);
	memset(&e0->val, 0, sizeof(e0->val));
	e0->val.backend_id = c->svc->affinity ? c->svc->affinity_timeout : 0;
	e0->val.count = count;
	e0->val.rev_nat_index = rev;
	e0->val.flags = flags;
	e0->val.flags2 = flags2;
	return (flags2 & LB_SVC_F2_MAGLEV) ? add_maglev(c, rev, scope, local_only) : 0;
}

static int add_revnat_and_ranges(struct port_ctx *c, const struct frontend *fe, uint16_t rev)
{
	struct node_state *ns = c->ns;
	struct node_lb_revnat *r;
	size_t i;
	int err;

	err = GROW(ns->lb_revnat, ns->nlb_revnat, c->cap_rn);
	if (err)
		return err;
	r = &ns->lb_revnat[ns->nlb_revnat++];
	memset(r, 0, sizeof(*r));
	r->index = rev;
	r->val.addr.v4 = fe->addr;
	r->val.port = htons(fe->port);
	r->val.family = CILIATE_AF_INET;
	for (i = 0; fe->kind == FE_LOAD_BALANCER && i < c->svc->nsource_ranges; i++) {
		err = GROW(ns->lb_source_ranges, ns->nlb_source_ranges, c->cap_sr);
		if (err)
			return err;
		ns->lb_source_ranges[ns->nlb_source_ranges++] =
			(struct node_lb_source_range){ .rev_nat_index = rev,
						       .cidr = c->svc->source_ranges[i] };
	}
	return 0;
}

/*
 * The IPIP dispatch's backend side (LB_SCOPE_DSR_LOCAL): a request an entry node sent here
 * still names the entry node's frontend, so this node serves it from an entry with its own
 * backends only. A NodePort gets one any-node entry (address 0): the request names the entry
 * node's address. Backends are picked at random (a Maglev table of the local backends would
 * not agree with the entry node's choice anyway); the CT_SVC entry keeps the connection's.
 */
static int add_dsr_local(struct port_ctx *c, const struct frontend *fe, uint16_t rev,
			 uint8_t flags, uint8_t flags2)
{
	struct frontend any = *fe;

	if (fe->kind == FE_NODE_PORT)
		any.addr = 0;
	return add_entry(c, &any, rev, LB_SCOPE_DSR_LOCAL, true, flags,
			 flags2 & ~(LB_SVC_F2_MAGLEV | LB_SVC_F2_TWO_SCOPES));
}

/* One frontend of this node: one entry, or two when the external and internal traffic
 * policies differ on an external frontend (Cilium's two scopes). */
static int add_frontend(const struct frontend *fe, void *arg)
{
	struct port_ctx *c = arg;
	const struct named_id *fid = names_find(&c->ids->frontends, fe->addr, fe->port,
						c->sp->proto);
	bool external = fe->kind != FE_CLUSTER_IP;
	uint8_t flags, flags2;
	uint16_t rev;
	int err;

	if (!fid || fid->owner != c->owner)
		return 0; /* an earlier service port has this frontend */
	rev = (uint16_t)fid->id;
	frontend_flags(c, fe, &flags, &flags2);
	err = add_revnat_and_ranges(c, fe, rev);
	if (err)
		return err;
	if (!external)
		return add_entry(c, fe, rev, LB_SCOPE_EXTERNAL, c->svc->itp_local, flags, flags2);
	err = add_entry(c, fe, rev, LB_SCOPE_EXTERNAL, c->svc->etp_local, flags, flags2);
	if (!err && (flags2 & LB_SVC_F2_TWO_SCOPES))
		err = add_entry(c, fe, rev, LB_SCOPE_INTERNAL, c->svc->itp_local, flags, flags2);
	if (!err && (flags2 & LB_SVC_F2_FWD_MODE_DSR) && c->cfg->dsr_dispatch == DSR_DISPATCH_IPIP)
		err = add_dsr_local(c, fe, rev, flags, flags2);
	return err;
}

static int backend_ids_fill(struct port_ctx *c)
{
	size_t i;

	for (i = 0; i < c->bl.n; i++) {
		const struct named_id *id = names_find(&c->ids->backends, c->bl.v[i].addr,
						       c->bl.v[i].port, c->bl.v[i].proto);

		if (!id)
			return -EINVAL; /* cannot happen: the same slices made the table */
		c->bl.v[i].id = id->id;
	}
	return 0;
}

static int node_backend_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct node_lb_backend *)a)->id;
	uint32_t y = ((const struct node_lb_backend *)b)->id;

	return (x > y) - (x < y);
}

static int revnat_cmp(const void *a, const void *b)
{
	uint16_t x = ((const struct node_lb_revnat *)a)->index;
	uint16_t y = ((const struct node_lb_revnat *)b)->index;

	return (x > y) - (x < y);
}

/* The backends of every frontend of the node, once each (sorted by id afterwards). */
static int add_backends(struct port_ctx *c, size_t *cap)
{
	struct node_state *ns = c->ns;
	size_t i;
	int err;

	for (i = 0; i < c->bl.n; i++) {
		const struct svc_backend *b = &c->bl.v[i];
		struct node_lb_backend *nb;

		err = GROW(ns->lb_backends, ns->nlb_backends, *cap);
		if (err)
			return err;
		nb = &ns->lb_backends[ns->nlb_backends++];
		memset(nb, 0, sizeof(*nb));
		nb->id = b->id;
		nb->val.addr.v4 = b->addr;
		nb->val.port = htons(b->port);
		nb->val.proto = b->proto;
		nb->val.state = b->state;
		nb->val.family = CILIATE_AF_INET;
	}
	return 0;
}

/* Sorts the backends by id, keeping one per id (active wins over terminating). */
static void backends_finish(struct node_state *ns)
{
	size_t i, n = 0;

	if (ns->nlb_backends)
		qsort(ns->lb_backends, ns->nlb_backends, sizeof(*ns->lb_backends),
		      node_backend_cmp);
	for (i = 0; i < ns->nlb_backends; i++) {
		if (n && ns->lb_backends[n - 1].id == ns->lb_backends[i].id) {
			if (ns->lb_backends[i].val.state == LB_BACKEND_ACTIVE)
				ns->lb_backends[n - 1].val.state = LB_BACKEND_ACTIVE;
			continue;
		}
		ns->lb_backends[n++] = ns->lb_backends[i];
	}
	ns->nlb_backends = n;
	if (ns->nlb_revnat)
		qsort(ns->lb_revnat, ns->nlb_revnat, sizeof(*ns->lb_revnat), revnat_cmp);
}

int node_services_compute(const struct cluster_model *m, struct node_state *ns)
{
	struct port_ctx c = { .m = m, .cfg = cluster_lb_config(m), .ns = ns };
	struct slice_index slices;
	struct lb_ids ids;
	size_t i, j, cap_be = 0;
	int err;

	if (!c.cfg->kube_proxy_replacement || !m->nservices)
		return 0;
	err = slice_index_build(m, &slices);
	if (err)
		return err;
	err = lb_ids_compute(&slices, &ids);
	c.ids = &ids;
	for (i = 0; !err && i < m->nservices; i++) {
		c.svc = &m->services[i];
		for (j = 0; !err && j < c.svc->nports; j++) {
			c.sp = &c.svc->ports[j];
			c.owner = (uint32_t)(i << 8 | (j & 0xff));
			err = collect_backends(&slices, c.svc, c.sp, ns->node->name, &c.bl);
			if (!err)
				err = backend_ids_fill(&c);
			if (!err && !c.svc->headless)
				err = add_backends(&c, &cap_be);
			if (!err)
				err = frontends_each(m, c.svc, j, ns->node, add_frontend, &c);
			free(c.bl.v);
			c.bl.v = NULL;
		}
	}
	lb_ids_free(&ids);
	free(slices.idx);
	if (!err)
		backends_finish(ns);
	return err;
}

void node_services_free(struct node_state *ns)
{
	size_t i;

	free(ns->lb);
	free(ns->lb_frontends);
	free(ns->lb_backends);
	free(ns->lb_revnat);
	for (i = 0; i < ns->nlb_maglev; i++)
		free(ns->lb_maglev[i].table);
	free(ns->lb_maglev);
	free(ns->lb_source_ranges);
	ns->lb = NULL;
	ns->lb_frontends = NULL;
	ns->lb_backends = NULL;
	ns->lb_revnat = NULL;
	ns->lb_maglev = NULL;
	ns->lb_source_ranges = NULL;
	ns->nlb = ns->nlb_frontends = ns->nlb_backends = ns->nlb_revnat = ns->nlb_maglev = 0;
	ns->nlb_source_ranges = 0;
}

void lb_src_range_key_of(const struct node_lb_source_range *r, struct lb_src_range_key *k)
{
	uint32_t mask = r->cidr.len >= 32 ? ~0u : r->cidr.len ? ~0u << (32 - r->cidr.len) : 0;

	memset(k, 0, sizeof(*k));
	k->prefixlen = LB_SRC_RANGE_PREFIX_BASE + r->cidr.len;
	k->rev_nat_index = r->rev_nat_index;
	k->family = CILIATE_AF_INET;
	k->addr.v4 = r->cidr.addr & htonl(mask);
}
