/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service-list op: this node's service frontends as the node state has them (which is
 * what the reconcile wrote into ciliate_lb_services), one object per frontend entry (a
 * two-scope frontend has two), with its backend slots in slot order.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"
#include "lb/lb_format.h"

static int backend_id_cmp(const void *key, const void *elem)
{
	uint32_t a = *(const uint32_t *)key, b = ((const struct node_lb_backend *)elem)->id;

	return (a > b) - (a < b);
}

/* The backend with id (lb_backends is sorted by id), or NULL. */
static const struct node_lb_backend *backend_find(const struct node_state *ns, uint32_t id)
{
	if (!ns->nlb_backends)
		return NULL;
	return bsearch(&id, ns->lb_backends, ns->nlb_backends, sizeof(*ns->lb_backends),
		       backend_id_cmp);
}

static json_t *backend_json(const struct node_state *ns, const struct node_lb_entry *e)
{
	const struct node_lb_backend *b = backend_find(ns, e->val.backend_id);
	char a[LB_TEXT_MAX], ip[INET6_ADDRSTRLEN], pb[16];

	if (!b)
		return json_pack("{s:I, s:i, s:s, s:s}", "id", (json_int_t)e->val.backend_id,
				 "slot", (int)e->key.backend_slot, "address", "?", "state",
				 "not-found");
	return json_pack("{s:I, s:i, s:s, s:s, s:i, s:s, s:s}", "id", (json_int_t)b->id, "slot",
			 (int)e->key.backend_slot, "address",
			 lb_addr_format(a, sizeof(a), b->val.family, &b->val.addr,
					ntohs(b->val.port), b->val.proto),
			 "ip", lb_ip_format(ip, sizeof(ip), b->val.family, &b->val.addr), "port",
			 (int)ntohs(b->val.port), "protocol", proto_name(b->val.proto, pb, sizeof(pb)),
			 "state", lb_backend_state_name(b->val.state));
}

static const char *policy_word(bool local)
{
	return local ? "Local" : "Cluster";
}

/* One frontend entry: its slot 0 at ns->lb[fe->slot0], the backend slots after it. */
static json_t *frontend_json(const struct node_state *ns, const struct node_lb_frontend *fe)
{
	const struct node_lb_entry *e0 = &ns->lb[fe->slot0];
	const struct lb_key *k = &e0->key;
	char a[LB_TEXT_MAX], ip[INET6_ADDRSTRLEN], pb[16], w[LB_TEXT_MAX];
	json_t *bes = json_array(), *o;
	size_t i;

	for (i = 1; i <= e0->val.count && fe->slot0 + i < ns->nlb; i++)
		json_array_append_new(bes, backend_json(ns, &ns->lb[fe->slot0 + i]));
	lb_addr_format(a, sizeof(a), k->family, &k->addr, ntohs(k->dport), k->proto);
	if (k->scope == LB_SCOPE_INTERNAL)
		strcat(a, "/i");
	else if (k->scope == LB_SCOPE_DSR_LOCAL)
		strcat(a, "/dsr"); /* the ipip dispatch's backend side (NodePort: any node's) */
	o = json_pack("{s:i, s:s, s:{s:s, s:i, s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
		      "id", (int)e0->val.rev_nat_index, "frontend", a, "frontendAddress", "ip",
		      lb_ip_format(ip, sizeof(ip), k->family, &k->addr), "port",
		      (int)ntohs(k->dport), "protocol", proto_name(k->proto, pb, sizeof(pb)),
		      "scope", lb_scope_name(k->scope), "type",
		      lb_svc_type(e0->val.flags), "flags",
		      lb_flags_format(w, sizeof(w), e0->val.flags, e0->val.flags2), "namespace",
		      fe->svc ? fe->svc->ns : "", "name", fe->svc ? fe->svc->name : "", "portName",
		      fe->port ? fe->port->name : "", "extTrafficPolicy",
		      policy_word(fe->svc && fe->svc->etp_local), "backends", bes);
	json_object_set_new(o, "intTrafficPolicy", json_string(policy_word(fe->svc &&
									   fe->svc->itp_local)));
	if (e0->val.flags & LB_SVC_F_AFFINITY)
		json_object_set_new(o, "sessionAffinityTimeoutSeconds",
				    json_integer(e0->val.backend_id));
	return o;
}

json_t *agent_services_json(const struct agent *a)
{
	json_t *arr = json_array();
	size_t i;

	if (!a->have_ns)
		return arr;
	for (i = 0; i < a->ns.nlb_frontends; i++)
		if (a->ns.lb_frontends[i].slot0 < a->ns.nlb)
			json_array_append_new(arr, frontend_json(&a->ns, &a->ns.lb_frontends[i]));
	return arr;
}
