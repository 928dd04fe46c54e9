/* SPDX-License-Identifier: Apache-2.0 */
/* Text forms of the service map entries (lb_format.h). */
#include "lb/lb_format.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"

const char *lb_ip_format(char *buf, size_t size, uint8_t family, const union ciliate_addr *a)
{
	int af = family == CILIATE_AF_INET6 ? AF_INET6 : AF_INET;

	if (!inet_ntop(af, af == AF_INET6 ? (const void *)a->v6 : (const void *)&a->v4, buf,
		       (socklen_t)size))
		snprintf(buf, size, "?");
	return buf;
}

const char *lb_addr_format(char *buf, size_t size, uint8_t family, const union ciliate_addr *a,
			   uint16_t port, uint8_t proto)
{
	char ip[INET6_ADDRSTRLEN], pb[16];

	lb_ip_format(ip, sizeof(ip), family, a);
	snprintf(buf, size, family == CILIATE_AF_INET6 ? "[%s]:%u/%s" : "%s:%u/%s", ip, port,
		 proto_name(proto, pb, sizeof(pb)));
	return buf;
}

const char *lb_svc_type(uint8_t flags)
{
	if (flags & LB_SVC_F_EXTERNAL_IP)
		return "ExternalIPs";
	if (flags & LB_SVC_F_NODEPORT)
		return "NodePort";
	if (flags & LB_SVC_F_LOADBALANCER)
		return "LoadBalancer";
	if (flags & LB_SVC_F_HOSTPORT)
		return "HostPort";
	return "ClusterIP";
}

static void words_add(char *buf, size_t size, size_t *len, const char *w)
{
	int n = snprintf(buf + *len, size - *len, "%s%s", *len ? ", " : "", w);

	if (n > 0 && (size_t)n < size - *len)
		*len += (size_t)n;
	else
		buf[*len] = '\0'; /* a word that does not fit is left out whole */
}

/* In Cilium's order (pkg/loadbalancer ServiceFlags.String). */
const char *lb_flags_format(char *buf, size_t size, uint8_t flags, uint8_t flags2)
{
	size_t len = 0;

	buf[0] = '\0';
	words_add(buf, size, &len, lb_svc_type(flags));
	if (flags & LB_SVC_F_EXT_LOCAL_SCOPE)
		words_add(buf, size, &len, "Local");
	if (flags2 & LB_SVC_F2_INT_LOCAL_SCOPE)
		words_add(buf, size, &len, "InternalLocal");
	if (flags2 & LB_SVC_F2_TWO_SCOPES)
		words_add(buf, size, &len, "two-scopes");
	if (flags & LB_SVC_F_AFFINITY)
		words_add(buf, size, &len, "sessionAffinity");
	if (!(flags & LB_SVC_F_ROUTABLE))
		words_add(buf, size, &len, "non-routable");
	if (flags & LB_SVC_F_SOURCE_RANGE)
		words_add(buf, size, &len, "check source-range");
	if (flags2 & LB_SVC_F2_FWD_MODE_DSR)
		words_add(buf, size, &len, "dsr");
	if (flags2 & LB_SVC_F2_MAGLEV)
		words_add(buf, size, &len, "maglev");
	return buf;
}

const char *lb_backend_state_name(uint8_t state)
{
	switch (state) {
	case LB_BACKEND_ACTIVE:
		return "active";
	case LB_BACKEND_TERMINATING:
		return "terminating";
	case LB_BACKEND_QUARANTINED:
		return "quarantined";
	case LB_BACKEND_MAINTENANCE:
		return "maintenance";
	default:
		return "unknown";
	}
}

/* A key's scope as listings name it (bpf/include/ciliate/abi.h LB_SCOPE_*). */
const char *lb_scope_name(uint8_t scope)
{
	return scope == LB_SCOPE_INTERNAL ? "internal"
	       : scope == LB_SCOPE_DSR_LOCAL ? "dsr-local"
					     : "external";
}

const char *lb_key_format(char *buf, size_t size, const struct lb_key *k)
{
	char a[LB_TEXT_MAX];

	lb_addr_format(a, sizeof(a), k->family, &k->addr, ntohs(k->dport), k->proto);
	snprintf(buf, size, "%s%s (%u)", a,
		 k->scope == LB_SCOPE_INTERNAL	 ? "/i"
		 : k->scope == LB_SCOPE_DSR_LOCAL ? "/dsr"
						  : "",
		 k->backend_slot);
	return buf;
}

const char *lb_entry_format(char *buf, size_t size, const struct lb_key *k,
			    const struct lb_service *v, const struct lb_backend *backend)
{
	char w[LB_TEXT_MAX], a[LB_TEXT_MAX];

	if (k->backend_slot == 0) {
		snprintf(buf, size, "%s:0 (%u) (0) [%s]",
			 k->family == CILIATE_AF_INET6 ? "[::]" : "0.0.0.0", v->rev_nat_index,
			 lb_flags_format(w, sizeof(w), v->flags, v->flags2));
		return buf;
	}
	if (!backend) {
		snprintf(buf, size, "backend %u not found", v->backend_id);
		return buf;
	}
	snprintf(buf, size, "%s (%u) (%u)",
		 lb_addr_format(a, sizeof(a), backend->family, &backend->addr,
				ntohs(backend->port), backend->proto),
		 v->rev_nat_index, k->backend_slot);
	return buf;
}

/* ---- the dump ------------------------------------------------------------------------- */

static int cmp_bytes(const void *x, const void *y, size_t n)
{
	return memcmp(x, y, n);
}

static int svc_cmp(const void *x, const void *y)
{
	const struct lb_key *a = &((const struct lb_dump_svc *)x)->key;
	const struct lb_key *b = &((const struct lb_dump_svc *)y)->key;
	int c;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	c = cmp_bytes(&a->addr, &b->addr, sizeof(a->addr)); /* network order: numeric */
	if (c)
		return c;
	if (a->dport != b->dport)
		return ntohs(a->dport) < ntohs(b->dport) ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->scope != b->scope)
		return a->scope < b->scope ? -1 : 1;
	return (a->backend_slot > b->backend_slot) - (a->backend_slot < b->backend_slot);
}

static int id_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return (a > b) - (a < b);
}

void lb_dump_sort(struct lb_dump *d)
{
	if (d->nsvc)
		qsort(d->svc, d->nsvc, sizeof(*d->svc), svc_cmp);
	if (d->nbackends)
		qsort(d->backends, d->nbackends, sizeof(*d->backends), id_cmp);
	if (d->nrevnat)
		qsort(d->revnat, d->nrevnat, sizeof(*d->revnat), id_cmp);
}

const struct lb_backend *lb_dump_backend(const struct lb_dump *d, uint32_t id)
{
	const struct lb_dump_backend *b;

	if (!d->nbackends)
		return NULL;
	b = bsearch(&id, d->backends, d->nbackends, sizeof(*d->backends), id_cmp);
	return b ? &b->val : NULL;
}

void lb_dump_free(struct lb_dump *d)
{
	free(d->svc);
	free(d->backends);
	free(d->revnat);
	memset(d, 0, sizeof(*d));
}

/* ---- tables: tab-separated cells padded like Go's tabwriter (min width 5, padding 3) -- */

struct table {
	char **cells; /* rows * cols */
	size_t rows, cols, cap;
};

static void table_add(struct table *t, const char *const *row)
{
	size_t c;

	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		char **n = realloc(t->cells, cap * t->cols * sizeof(*n));

		if (!n)
			return;
		t->cells = n;
		t->cap = cap;
	}
	for (c = 0; c < t->cols; c++)
		t->cells[t->rows * t->cols + c] = strdup(row[c] ? row[c] : "");
	t->rows++;
}

static void table_print(FILE *f, struct table *t)
{
	size_t *w = calloc(t->cols, sizeof(*w)), r, c;

	for (r = 0; w && r < t->rows; r++)
		for (c = 0; c < t->cols; c++) {
			const char *s = t->cells[r * t->cols + c];
			size_t n = (s ? strlen(s) : 0) + 3;

			w[c] = n > w[c] ? n : w[c];
		}
	for (r = 0; w && r < t->rows; r++) {
		size_t last = 0;

		for (c = 0; c < t->cols; c++) /* no padding after the last non-empty cell */
			if (t->cells[r * t->cols + c] && t->cells[r * t->cols + c][0])
				last = c;
		for (c = 0; c <= last; c++) {
			const char *s = t->cells[r * t->cols + c] ? t->cells[r * t->cols + c] : "";

			if (c < last)
				fprintf(f, "%-*s", (int)(w[c] < 5 ? 5 : w[c]), s);
			else
				fprintf(f, "%s\n", s);
		}
	}
	for (r = 0; r < t->rows * t->cols; r++)
		free(t->cells[r]);
	free(t->cells);
	free(w);
}

void lb_print_bpf_list(FILE *f, const struct lb_dump *d)
{
	struct table t = {.cols = 2};
	const char *head[] = {"SERVICE ADDRESS", "BACKEND ADDRESS (REVNAT_ID) (SLOT)"};
	char k[LB_TEXT_MAX], e[2 * LB_TEXT_MAX];
	size_t i;

	table_add(&t, head);
	for (i = 0; i < d->nsvc; i++) {
		const struct lb_dump_svc *s = &d->svc[i];
		const char *row[2] = {lb_key_format(k, sizeof(k), &s->key),
				      lb_entry_format(e, sizeof(e), &s->key, &s->val,
						      lb_dump_backend(d, s->val.backend_id))};

		table_add(&t, row);
	}
	table_print(f, &t);
}

static json_t *svc_entry_json(const struct lb_dump *d, const struct lb_dump_svc *s)
{
	char k[LB_TEXT_MAX], e[2 * LB_TEXT_MAX], ip[INET6_ADDRSTRLEN], pb[16], w[LB_TEXT_MAX];
	const struct lb_key *key = &s->key;

	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:I, s:i, s:i, s:s}", "service",
			 lb_key_format(k, sizeof(k), key), "entry",
			 lb_entry_format(e, sizeof(e), key, &s->val,
					 lb_dump_backend(d, s->val.backend_id)),
			 "address", lb_ip_format(ip, sizeof(ip), key->family, &key->addr), "port",
			 (int)ntohs(key->dport), "protocol", proto_name(key->proto, pb, sizeof(pb)),
			 "scope", lb_scope_name(key->scope), "slot",
			 (int)key->backend_slot, "backendId", (json_int_t)s->val.backend_id, "count",
			 (int)s->val.count, "revNatIndex", (int)s->val.rev_nat_index, "flags",
			 lb_flags_format(w, sizeof(w), s->val.flags, s->val.flags2));
}

json_t *lb_bpf_list_json(const struct lb_dump *d)
{
	json_t *svcs = json_array(), *bes = json_array(), *rns = json_array();
	char a[LB_TEXT_MAX];
	size_t i;

	for (i = 0; i < d->nsvc; i++)
		json_array_append_new(svcs, svc_entry_json(d, &d->svc[i]));
	for (i = 0; i < d->nbackends; i++) {
		const struct lb_backend *b = &d->backends[i].val;

		json_array_append_new(
			bes, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)d->backends[i].id,
				       "address",
				       lb_addr_format(a, sizeof(a), b->family, &b->addr,
						      ntohs(b->port), b->proto),
				       "state", lb_backend_state_name(b->state)));
	}
	for (i = 0; i < d->nrevnat; i++) {
		const struct lb_reverse_nat *r = &d->revnat[i].val;
		char ip[INET6_ADDRSTRLEN];

		json_array_append_new(rns, json_pack("{s:I, s:s, s:i}", "id",
						     (json_int_t)d->revnat[i].id, "address",
						     lb_ip_format(ip, sizeof(ip), r->family, &r->addr),
						     "port", (int)ntohs(r->port)));
	}
	return json_pack("{s:o, s:o, s:o}", "services", svcs, "backends", bes, "revnat", rns);
}

/* ---- service list ---------------------------------------------------------------------- */

static int service_cmp(const void *x, const void *y)
{
	json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
	json_int_t ia = json_integer_value(json_object_get(a, "id"));
	json_int_t ib = json_integer_value(json_object_get(b, "id"));

	if (ia != ib)
		return ia < ib ? -1 : 1;
	return strcmp(json_string_value(json_object_get(a, "frontend")) ?: "",
		      json_string_value(json_object_get(b, "frontend")) ?: "");
}

static void service_rows(struct table *t, json_t *svc)
{
	json_t *bes = json_object_get(svc, "backends"), *b;
	char id[24], be[2 * LB_TEXT_MAX];
	const char *row[4];
	size_t i;

	snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(svc, "id")));
	row[0] = id;
	row[1] = json_string_value(json_object_get(svc, "frontend"));
	row[2] = json_string_value(json_object_get(svc, "type"));
	row[3] = "";
	if (!json_array_size(bes))
		table_add(t, row);
	json_array_foreach(bes, i, b)
	{
		snprintf(be, sizeof(be), "%zu => %s (%s)", i + 1,
			 json_string_value(json_object_get(b, "address")) ?: "?",
			 json_string_value(json_object_get(b, "state")) ?: "?");
		row[3] = be;
		table_add(t, row);
		row[0] = row[1] = row[2] = ""; /* continuation rows hold only the backend */
	}
}

void lb_print_service_list(FILE *f, json_t *services)
{
	struct table t = {.cols = 4};
	const char *head[] = {"ID", "Frontend", "Service Type", "Backend"};
	size_t n = json_array_size(services), i;
	json_t **v = calloc(n + 1, sizeof(*v));

	table_add(&t, head);
	for (i = 0; v && i < n; i++)
		v[i] = json_array_get(services, i);
	if (v && n)
		qsort(v, n, sizeof(*v), service_cmp);
	for (i = 0; v && i < n; i++)
		service_rows(&t, v[i]);
	table_print(f, &t);
	free(v);
}

/* ---- bpf lb maglev list ------------------------------------------------------------------ */

static const char *maglev_id_format(char *buf, size_t size, uint32_t key)
{
	snprintf(buf, size, "%u%s", key & 0xffffu, (key >> 16) == LB_SCOPE_INTERNAL ? "/i" : "");
	return buf;
}

/* "[4 2 4 2 ...]" of the table's entries, allocated; NULL when out of memory. */
static char *maglev_entries_format(const struct lb_maglev_table *t)
{
	uint32_t m = t->nwords > LB_MAGLEV_HDR ? t->nwords - LB_MAGLEV_HDR : 0, i;
	size_t cap = 2 + (size_t)m * 11 + 1, len = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[len++] = '[';
	for (i = 0; i < m; i++)
		len += (size_t)snprintf(s + len, cap - len, i ? " %u" : "%u",
					t->words[LB_MAGLEV_HDR + i]);
	s[len++] = ']';
	s[len] = '\0';
	return s;
}

void lb_print_maglev_list(FILE *f, const struct lb_maglev_table *t, size_t n)
{
	struct table tb = {.cols = 2};
	const char *head[] = {"SVC ID", "LOOKUP TABLE"};
	char id[24];
	size_t i;

	table_add(&tb, head);
	for (i = 0; i < n; i++) {
		char *entries = maglev_entries_format(&t[i]);
		const char *row[2] = {maglev_id_format(id, sizeof(id), t[i].key), entries ?: "?"};

		table_add(&tb, row);
		free(entries);
	}
	table_print(f, &tb);
}

json_t *lb_maglev_list_json(const struct lb_maglev_table *t, size_t n)
{
	json_t *all = json_array();
	size_t i;

	for (i = 0; i < n; i++) {
		uint32_t m = t[i].nwords > LB_MAGLEV_HDR ? t[i].nwords - LB_MAGLEV_HDR : 0, k;
		json_t *entries = json_array();

		for (k = 0; k < m; k++)
			json_array_append_new(entries,
					      json_integer(t[i].words[LB_MAGLEV_HDR + k]));
		json_array_append_new(
			all, json_pack("{s:i, s:s, s:I, s:I, s:I, s:o}", "id",
				       (int)(t[i].key & 0xffffu), "scope",
				       lb_scope_name((uint8_t)(t[i].key >> 16)),
				       "size", (json_int_t)m, "seed4",
				       (json_int_t)t[i].words[LB_MAGLEV_HDR_SEED4], "seed6",
				       (json_int_t)t[i].words[LB_MAGLEV_HDR_SEED6], "table", entries));
	}
	return all;
}
