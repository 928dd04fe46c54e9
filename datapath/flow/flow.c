/* SPDX-License-Identifier: Apache-2.0 */
/* Flows: decoding events, the enrichment directory, Hubble JSON, the flow buffer. */
#include "flow.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/names.h"
#include "flow/render.h"

/* ---- reference counting ---- */

static void ref_get(unsigned int *refs)
{
	__atomic_add_fetch(refs, 1, __ATOMIC_RELAXED);
}

static bool ref_put(unsigned int *refs)
{
	return __atomic_sub_fetch(refs, 1, __ATOMIC_ACQ_REL) == 0;
}

static void labels_put(struct flow_labels *l)
{
	if (!l || !ref_put(&l->refs))
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l);
}

static struct flow_ep *ep_get(struct flow_ep *e)
{
	if (e)
		ref_get(&e->refs);
	return e;
}

static struct flow_svc *svc_get(struct flow_svc *v)
{
	if (v)
		ref_get(&v->refs);
	return v;
}

static void svc_put(struct flow_svc *v)
{
	if (!v || !ref_put(&v->refs))
		return;
	free(v->ns);
	free(v->name);
	free(v);
}

static void ep_put(struct flow_ep *e)
{
	if (!e || !ref_put(&e->refs))
		return;
	labels_put(e->labels);
	free(e->ns);
	free(e->pod);
	free(e);
}

/* ---- the directory: open addressing on 32-bit keys ---- */

struct slot {
	uint32_t key; /* 0: empty (neither address 0.0.0.0 nor identity 0 is ever looked up) */
	void *val;
};

struct table {
	struct slot *v;
	size_t cap, n; /* cap: a power of two */
};

struct ifname {
	uint32_t ifindex;
	char name[16];
};

struct flow_dir {
	unsigned int refs;
	struct table addrs;	 /* address -> struct flow_ep */
	struct table identities; /* identity -> struct flow_labels */
	struct table revnat;	 /* rev_nat_index -> struct flow_svc (holds the reference) */
	struct table frontends;	 /* frontend_key() -> struct flow_svc (same records; a key may
				    repeat: lookups compare the frontend itself) */
	struct ifname *ifnames;
	size_t nifnames;
};

static size_t hash32(uint32_t k)
{
	k ^= k >> 16;
	k *= 0x7feb352dU;
	k ^= k >> 15;
	k *= 0x846ca68bU;
	k ^= k >> 16;
	return k;
}

static void *table_find(const struct table *t, uint32_t key)
{
	size_t i;

	if (!t->cap || !key)
		return NULL;
	for (i = hash32(key) & (t->cap - 1); t->v[i].key; i = (i + 1) & (t->cap - 1))
		if (t->v[i].key == key)
			return t->v[i].val;
	return NULL;
}

static int table_grow(struct table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64, i, j;
	struct slot *v = calloc(cap, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++) {
		if (!t->v[i].key)
			continue;
		for (j = hash32(t->v[i].key) & (cap - 1); v[j].key; j = (j + 1) & (cap - 1))
			;
		v[j] = t->v[i];
	}
	free(t->v);
	t->v = v;
	t->cap = cap;
	return 0;
}

/* Inserts key (absent) -> val. */
static int table_put(struct table *t, uint32_t key, void *val)
{
	size_t i;

	if ((t->n + 1) * 2 > t->cap && table_grow(t))
		return -ENOMEM;
	for (i = hash32(key) & (t->cap - 1); t->v[i].key; i = (i + 1) & (t->cap - 1))
		;
	t->v[i].key = key;
	t->v[i].val = val;
	t->n++;
	return 0;
}

struct flow_dir *flow_dir_new(void)
{
	struct flow_dir *dir = calloc(1, sizeof(*dir));

	if (dir)
		dir->refs = 1;
	return dir;
}

int flow_dir_add_identity(struct flow_dir *dir, uint32_t id, const char *const *labels, size_t n)
{
	struct flow_labels *l;

	if (!id || table_find(&dir->identities, id))
		return 0;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->refs = 1;
	l->identity = id;
	l->v = calloc(n + 1, sizeof(*l->v));
	if (!l->v)
		goto nomem;
	for (l->n = 0; l->n < n; l->n++)
		if (!(l->v[l->n] = strdup(labels[l->n])))
			goto nomem;
	if (table_put(&dir->identities, id, l) == 0)
		return 0;
nomem:
	labels_put(l);
	return -ENOMEM;
}

int flow_dir_add_addr(struct flow_dir *dir, uint32_t ip, uint32_t identity, uint32_t ep_id,
		      const char *ns, const char *pod)
{
	struct flow_labels *l = table_find(&dir->identities, identity);
	struct flow_ep *e;

	if (!ip || table_find(&dir->addrs, ip))
		return 0;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->refs = 1;
	e->identity = identity;
	e->ep_id = ep_id;
	if (ns && (!(e->ns = strdup(ns)) || !(e->pod = strdup(pod ? pod : ""))))
		goto nomem;
	if (l) {
		ref_get(&l->refs);
		e->labels = l;
	}
	if (table_put(&dir->addrs, ip, e) == 0)
		return 0;
nomem:
	ep_put(e);
	return -ENOMEM;
}

int flow_dir_add_ifname(struct flow_dir *dir, uint32_t ifindex, const char *name)
{
	struct ifname *v = realloc(dir->ifnames, (dir->nifnames + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	dir->ifnames = v;
	v[dir->nifnames].ifindex = ifindex;
	snprintf(v[dir->nifnames].name, sizeof(v->name), "%s", name);
	dir->nifnames++;
	return 0;
}

/* A frontend's (address, port, protocol) folded into a non-zero table key. */
static uint32_t frontend_key(uint8_t family, const union ciliate_addr *a, uint16_t port,
			     uint8_t proto)
{
	uint32_t fold = family == CILIATE_AF_INET6 ? a->v6[0] ^ a->v6[1] ^ a->v6[2] ^ a->v6[3] :
						     a->v4;
	uint32_t k = (uint32_t)hash32(fold ^ ((uint32_t)port << 16 | proto));

	return k ? k : 1;
}

static bool frontend_is(const struct flow_svc *v, uint8_t family, const union ciliate_addr *a,
			uint16_t port, uint8_t proto)
{
	size_t len = family == CILIATE_AF_INET6 ? 16 : 4;

	return v->family == family && v->port == port && v->proto == proto &&
	       !memcmp(v->addr.bytes, a->bytes, len);
}

static struct flow_svc *frontend_find(const struct flow_dir *dir, uint8_t family,
				      const union ciliate_addr *a, uint16_t port, uint8_t proto)
{
	const struct table *t = &dir->frontends;
	uint32_t key;
	size_t i;

	if (!t->cap || (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP))
		return NULL;
	key = frontend_key(family, a, port, proto);
	for (i = hash32(key) & (t->cap - 1); t->v[i].key; i = (i + 1) & (t->cap - 1))
		if (t->v[i].key == key && frontend_is(t->v[i].val, family, a, port, proto))
			return t->v[i].val;
	return NULL;
}

int flow_dir_add_service(struct flow_dir *dir, uint16_t rev_nat_index, uint8_t family,
			 const union ciliate_addr *addr, uint16_t port, uint8_t proto,
			 const char *ns, const char *name)
{
	char ip[INET6_ADDRSTRLEN], pb[8];
	struct flow_svc *v;

	if (!rev_nat_index || table_find(&dir->revnat, rev_nat_index))
		return 0;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->refs = 1;
	v->rev_nat_index = rev_nat_index;
	v->family = family;
	v->proto = proto;
	v->addr = *addr;
	v->port = port;
	if (!(v->ns = strdup(ns ? ns : "")) || !(v->name = strdup(name ? name : "")))
		goto nomem;
	inet_ntop(family == CILIATE_AF_INET6 ? AF_INET6 : AF_INET, addr->bytes, ip, sizeof(ip));
	snprintf(v->frontend, sizeof(v->frontend), family == CILIATE_AF_INET6 ? "[%s]:%u/%s" :
				 "%s:%u/%s", ip, port, proto_name(proto, pb, sizeof(pb)));
	if (table_put(&dir->revnat, rev_nat_index, v))
		goto nomem;
	if (!frontend_find(dir, family, addr, port, proto) &&
	    table_put(&dir->frontends, frontend_key(family, addr, port, proto), v))
		return -ENOMEM; /* the revnat table holds v */
	return 0;
nomem:
	svc_put(v);
	return -ENOMEM;
}

struct flow_dir *flow_dir_get(struct flow_dir *dir)
{
	if (dir)
		ref_get(&dir->refs);
	return dir;
}

void flow_dir_put(struct flow_dir *dir)
{
	size_t i;

	if (!dir || !ref_put(&dir->refs))
		return;
	for (i = 0; i < dir->addrs.cap; i++)
		if (dir->addrs.v[i].key)
			ep_put(dir->addrs.v[i].val);
	for (i = 0; i < dir->identities.cap; i++)
		if (dir->identities.v[i].key)
			labels_put(dir->identities.v[i].val);
	for (i = 0; i < dir->revnat.cap; i++)
		if (dir->revnat.v[i].key)
			svc_put(dir->revnat.v[i].val);
	free(dir->revnat.v);
	free(dir->frontends.v);
	free(dir->addrs.v);
	free(dir->identities.v);
	free(dir->ifnames);
	free(dir);
}

/* An end of the flow: the directory's record for its address; else, when the event names
 * an identity the directory knows, a record holding just that (owned by the flow). */
static struct flow_ep *lookup_end(const struct flow_dir *dir, uint8_t family,
				  const union ciliate_addr *a, uint32_t identity)
{
	struct flow_ep *e;
	struct flow_labels *l;

	if (!dir)
		return NULL;
	/* the directory holds IPv4 addresses; IPv6 ends are known by identity only */
	e = family == CILIATE_AF_INET ? table_find(&dir->addrs, a->v4) : NULL;
	if (e)
		return ep_get(e);
	l = table_find(&dir->identities, identity);
	if (!l)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->refs = 1;
	e->identity = identity;
	ref_get(&l->refs);
	e->labels = l;
	return e;
}

void flow_decode(struct flow *f, const struct ciliate_event *ev, const struct flow_dir *dir)
{
	size_t i;

	f->kind = FLOW_EVENT;
	f->ev = *ev;
	f->ifname[0] = '\0';
	f->src = lookup_end(dir, ev->family, &ev->saddr, ev->src_identity);
	f->dst = lookup_end(dir, ev->family, &ev->daddr, ev->dst_identity);
	f->src_svc = f->dst_svc = NULL;
	if (dir) {
		f->dst_svc = ev->rev_nat_index ? table_find(&dir->revnat, ev->rev_nat_index) :
						 frontend_find(dir, ev->family, &ev->daddr,
							       ntohs(ev->dport), ev->proto);
		f->src_svc = frontend_find(dir, ev->family, &ev->saddr, ntohs(ev->sport),
					   ev->proto);
		svc_get(f->dst_svc);
		svc_get(f->src_svc);
	}
	for (i = 0; dir && i < dir->nifnames; i++)
		if (dir->ifnames[i].ifindex == ev->ifindex) {
			memcpy(f->ifname, dir->ifnames[i].name, sizeof(f->ifname));
			break;
		}
}

void flow_copy(struct flow *dst, const struct flow *src)
{
	*dst = *src;
	ep_get(dst->src);
	ep_get(dst->dst);
	svc_get(dst->src_svc);
	svc_get(dst->dst_svc);
}

void flow_release(struct flow *f)
{
	ep_put(f->src);
	ep_put(f->dst);
	svc_put(f->src_svc);
	svc_put(f->dst_svc);
	memset(f, 0, sizeof(*f));
}

/* ---- JSON ---- */

static const char *ip_str(const union ciliate_addr *a, uint8_t family, char *buf)
{
	return inet_ntop(family == CILIATE_AF_INET6 ? AF_INET6 : AF_INET, a->bytes, buf,
			 INET6_ADDRSTRLEN) ?: "?";
}

static json_t *endpoint_json(const struct flow_ep *e, uint32_t event_identity)
{
	json_t *o = json_object(), *labels;
	uint32_t identity = event_identity ? event_identity : e ? e->identity : 0;

	if (e && e->ep_id)
		json_object_set_new(o, "ID", json_integer(e->ep_id));
	if (identity)
		json_object_set_new(o, "identity", json_integer(identity));
	if (e && e->ns) {
		json_object_set_new(o, "namespace", json_string(e->ns));
	}
	if (e && e->labels && e->labels->n) {
		labels = json_array();
		for (size_t i = 0; i < e->labels->n; i++)
			json_array_append_new(labels, json_string(e->labels->v[i]));
		json_object_set_new(o, "labels", labels);
	}
	if (e && e->ns)
		json_object_set_new(o, "pod_name", json_string(e->pod));
	return o;
}

static const char *const tcp_flag_names[8] = { "FIN", "SYN", "RST", "PSH",
					       "ACK", "URG", "ECE", "CWR" };

static json_t *l4_json(const struct ciliate_event *ev, char *summary, size_t ssize)
{
	json_t *l4 = json_object(), *p, *flags;
	size_t len;
	int i;

	summary[0] = '\0';
	switch (ev->proto) {
	case IPPROTO_TCP:
		flags = json_object();
		snprintf(summary, ssize, "TCP Flags:");
		for (i = 0; i < 8; i++) {
			if (!(ev->tcp_flags & (1u << i)))
				continue;
			json_object_set_new(flags, tcp_flag_names[i], json_true());
			len = strlen(summary);
			snprintf(summary + len, ssize - len, "%s %s",
				 summary[len - 1] == ':' ? "" : ",", tcp_flag_names[i]);
		}
		p = json_pack("{s:i,s:i,s:o}", "source_port", ntohs(ev->sport), "destination_port",
			      ntohs(ev->dport), "flags", flags);
		json_object_set_new(l4, "TCP", p);
		break;
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		p = json_pack("{s:i,s:i}", "source_port", ntohs(ev->sport), "destination_port",
			      ntohs(ev->dport));
		json_object_set_new(l4, ev->proto == IPPROTO_UDP ? "UDP" : "SCTP", p);
		snprintf(summary, ssize, ev->proto == IPPROTO_UDP ? "UDP" : "SCTP");
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* the datapath puts ICMP type and code where the ports would be */
		p = json_pack("{s:i,s:i}", "type", ev->sport, "code", ev->dport);
		json_object_set_new(l4, ev->proto == IPPROTO_ICMP ? "ICMPv4" : "ICMPv6", p);
		snprintf(summary, ssize, "%s type %u code %u",
			 ev->proto == IPPROTO_ICMP ? "ICMPv4" : "ICMPv6", ev->sport, ev->dport);
		break;
	default:
		json_decref(l4);
		return NULL;
	}
	return l4;
}

/* Cilium's trace observation points: monitor TraceTo.. / TraceFrom.. codes, Hubble names. */
struct obs_point {
	int code;
	const char *name;
};

static struct obs_point observation_point(const struct ciliate_event *ev)
{
	switch (ev->hook) {
	case HOOK_FROM_CONTAINER:
		return ev->target_ifindex ? (struct obs_point){ 0, "TO_ENDPOINT" } :
					    (struct obs_point){ 3, "TO_STACK" };
	case HOOK_TO_CONTAINER:
		return (struct obs_point){ 0, "TO_ENDPOINT" };
	case HOOK_FROM_OVERLAY:
		return ev->target_ifindex ? (struct obs_point){ 0, "TO_ENDPOINT" } :
					    (struct obs_point){ 9, "FROM_OVERLAY" };
	case HOOK_TO_OVERLAY:
		return (struct obs_point){ 4, "TO_OVERLAY" };
	case HOOK_FROM_NETDEV:
	case HOOK_XDP:
		return (struct obs_point){ 10, "FROM_NETWORK" };
	case HOOK_TO_NETDEV:
		return (struct obs_point){ 11, "TO_NETWORK" };
	default:
		return (struct obs_point){ -1, NULL };
	}
}

/* Hubble's MessageType numbers. */
enum { MSG_DROP = 1, MSG_TRACE = 4, MSG_POLICY_VERDICT = 5 };

static void set_verdict(json_t *fl, const struct ciliate_event *ev)
{
	bool dropped = ev->type == EVENT_DROP ||
		       (ev->type == EVENT_POLICY_VERDICT && ev->reason >= CILIATE_DROP_REASON_MIN);
	int type = ev->type == EVENT_DROP ? MSG_DROP :
		   ev->type == EVENT_TRACE ? MSG_TRACE : MSG_POLICY_VERDICT;
	struct obs_point op = observation_point(ev);
	int sub = ev->type == EVENT_DROP ? ev->reason : ev->type == EVENT_TRACE ? op.code : 0;

	json_object_set_new(fl, "verdict", json_string(dropped ? "DROPPED" : "FORWARDED"));
	if (dropped) {
		json_object_set_new(fl, "drop_reason", json_integer(ev->reason));
		json_object_set_new(fl, "drop_reason_desc", json_string(reason_name(ev->reason)));
	}
	json_object_set_new(fl, "event_type", sub > 0 ?
			    json_pack("{s:i,s:i}", "type", type, "sub_type", sub) :
			    json_pack("{s:i}", "type", type));
	if (ev->type == EVENT_TRACE && op.name)
		json_object_set_new(fl, "trace_observation_point", json_string(op.name));
}

/* Hubble's Service message: {name, namespace}. */
static json_t *service_json(const struct flow_svc *v)
{
	return json_pack("{s:s,s:s}", "name", v->name, "namespace", v->ns);
}

static json_t *extension_json(const struct flow *f)
{
	const struct ciliate_event *ev = &f->ev;
	json_t *x = json_pack("{s:I,s:s,s:s}", "seq", (json_int_t)f->seq, "hook",
			      hook_name(ev->hook), "ct_state", ct_status_name(ev->ct_status));
	char buf[INET6_ADDRSTRLEN];

	if (ev->type == EVENT_POLICY_VERDICT)
		json_object_set_new(x, "policy_match_name",
				    json_string(policy_match_name(ev->match)));
	if (ev->rule_id)
		json_object_set_new(x, "rule_id", json_integer(ev->rule_id));
	if (ev->target_ifindex)
		json_object_set_new(x, "ifindex_target", json_integer(ev->target_ifindex));
	if (ev->tunnel_endpoint)
		json_object_set_new(x, "tunnel_endpoint",
				    json_string(inet_ntop(AF_INET, &ev->tunnel_endpoint, buf,
							  sizeof(buf)) ?: "?"));
	if (ev->flags & EVENT_F_IDENTITY_FROM_IPCACHE)
		json_object_set_new(x, "identity_source", json_string("ipcache"));
	/* the service translation: the frontend the client sent to (IP.destination is then
	 * the backend the datapath chose) */
	if (ev->rev_nat_index) {
		json_object_set_new(x, "rev_nat_index", json_integer(ev->rev_nat_index));
		if (f->dst_svc)
			json_object_set_new(x, "service_frontend",
					    json_string(f->dst_svc->frontend));
	}
	json_object_set_new(x, "bytes", json_integer(ev->pkt_len));
	return x;
}

/* Cilium's match types (0 none .. 4 all). An endpoint no policy isolates admits everything,
 * as Cilium's allow-all entry does: "all" (ciliate.policy_match_name says not-enforced). */
static int policy_match_type(uint8_t match)
{
	return match == POLICY_MATCH_NOT_ENFORCED ? POLICY_MATCH_ALL : match;
}

/* Protobuf JSON omits empty messages. */
static void set_nonempty(json_t *obj, const char *key, json_t *v)
{
	if (json_object_size(v))
		json_object_set_new(obj, key, v);
	else
		json_decref(v);
}

static json_t *event_flow_json(const struct flow *f, const char *node, const char *time)
{
	const struct ciliate_event *ev = &f->ev;
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], summary[96], uuid[128];
	json_t *fl = json_object(), *l4;

	snprintf(uuid, sizeof(uuid), "%s/%llu", node, (unsigned long long)f->seq);
	json_object_set_new(fl, "time", json_string(time));
	json_object_set_new(fl, "uuid", json_string(uuid));
	set_verdict(fl, ev);
	if (ev->family == CILIATE_AF_INET || ev->family == CILIATE_AF_INET6)
		json_object_set_new(fl, "IP",
				    json_pack("{s:s,s:s,s:s}", "source",
					      ip_str(&ev->saddr, ev->family, src), "destination",
					      ip_str(&ev->daddr, ev->family, dst), "ipVersion",
					      ev->family == CILIATE_AF_INET6 ? "IPv6" : "IPv4"));
	l4 = l4_json(ev, summary, sizeof(summary));
	if (l4)
		json_object_set_new(fl, "l4", l4);
	set_nonempty(fl, "source", endpoint_json(f->src, ev->src_identity));
	set_nonempty(fl, "destination", endpoint_json(f->dst, ev->dst_identity));
	if (f->src_svc)
		json_object_set_new(fl, "source_service", service_json(f->src_svc));
	if (f->dst_svc)
		json_object_set_new(fl, "destination_service", service_json(f->dst_svc));
	json_object_set_new(fl, "Type", json_string("L3_L4"));
	json_object_set_new(fl, "node_name", json_string(node));
	json_object_set_new(fl, "traffic_direction",
			    json_string(ev->dir == DIR_EGRESS ? "EGRESS" : "INGRESS"));
	if (ev->type == EVENT_POLICY_VERDICT && policy_match_type(ev->match))
		json_object_set_new(fl, "policy_match_type",
				    json_integer(policy_match_type(ev->match)));
	json_object_set_new(fl, "is_reply", json_boolean(ev->flags & EVENT_F_IS_REPLY));
	if (ev->ifindex) {
		json_t *itf = json_pack("{s:i}", "index", ev->ifindex);

		if (f->ifname[0])
			json_object_set_new(itf, "name", json_string(f->ifname));
		json_object_set_new(fl, "interface", itf);
	}
	if (ev->type == EVENT_DROP && ev->src_line)
		json_object_set_new(fl, "file", json_pack("{s:s,s:i}", "name",
							  src_file_name(ev->src_file), "line",
							  ev->src_line));
	if (summary[0])
		json_object_set_new(fl, "Summary", json_string(summary));
	json_object_set_new(fl, "ciliate", extension_json(f));
	return fl;
}

json_t *flow_to_json(const struct flow *f, const char *node)
{
	char time[48];
	json_t *body;

	flow_time_format(f->time_ns, time, sizeof(time));
	if (f->kind == FLOW_LOST)
		body = json_pack("{s:s,s:I}", "source", "PERF_EVENT_RING_BUFFER", "num_events_lost",
				 (json_int_t)f->lost);
	else
		body = event_flow_json(f, node, time);
	return json_pack("{s:o,s:s,s:s}", f->kind == FLOW_LOST ? "lost_events" : "flow", body,
			 "node_name", node, "time", time);
}

/* ---- the buffer ---- */

int flow_buf_init(struct flow_buf *b, size_t cap)
{
	b->v = calloc(cap ? cap : 1, sizeof(*b->v));
	b->cap = cap ? cap : 1;
	b->next_seq = 1;
	return b->v ? 0 : -ENOMEM;
}

void flow_buf_free(struct flow_buf *b)
{
	for (size_t i = 0; b->v && i < b->cap; i++)
		flow_release(&b->v[i]);
	free(b->v);
	b->v = NULL;
}

void flow_buf_append(struct flow_buf *b, struct flow *f)
{
	struct flow *slot = &b->v[(b->next_seq - 1) % b->cap];

	flow_release(slot);
	f->seq = b->next_seq++;
	*slot = *f;
	memset(f, 0, sizeof(*f));
}

size_t flow_buf_size(const struct flow_buf *b)
{
	uint64_t held = b->next_seq - 1;

	return held < b->cap ? (size_t)held : b->cap;
}

int flow_buf_copy_since(const struct flow_buf *b, uint64_t since_seq, struct flow **out,
			size_t *n)
{
	uint64_t first = b->next_seq - flow_buf_size(b), seq;
	struct flow *v;

	if (since_seq + 1 > first)
		first = since_seq + 1;
	*n = 0;
	*out = NULL;
	if (first >= b->next_seq)
		return 0;
	v = malloc((size_t)(b->next_seq - first) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (seq = first; seq < b->next_seq; seq++)
		flow_copy(&v[(*n)++], &b->v[(seq - 1) % b->cap]);
	*out = v;
	return 0;
}
