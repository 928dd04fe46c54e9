/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The health-check NodePort's numbers and answer (health_check.h; docs/SERVICES.md,
 * "Health-check NodePort").
 */
#include "health_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool health_check_enabled(const struct cluster_model *m)
{
	return m && m->cluster.lb.health_check_nodeport && m->cluster.lb.kube_proxy_replacement;
}

bool health_check_wanted(const struct m_service *svc)
{
	return svc->etp_local && svc->health_check_node_port &&
	       (svc->type == SVC_LOAD_BALANCER || svc->type == SVC_NODE_PORT);
}

/* Where an endpoint runs: its nodeName, else the node of the (non-hostNetwork) pod that
 * has its address ("" when none does). */
static const char *where(const struct cluster_model *m, const struct m_slice_endpoint *e)
{
	const struct m_pod *p;

	if (e->node[0])
		return e->node;
	for (p = m->pods; p < m->pods + m->npods; p++)
		if (p->ip == e->addr && !p->host_network)
			return p->node;
	return "";
}

/* The slice port serving service port sp: same name and protocol. */
static const struct m_slice_port *serving(const struct m_endpoint_slice *sl,
					  const struct m_service_port *sp)
{
	for (size_t k = 0; k < sl->nports; k++)
		if (sl->ports[k].proto == sp->proto && !strcmp(sl->ports[k].name, sp->name))
			return &sl->ports[k];
	return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

unsigned int health_check_local_endpoints(const struct cluster_model *m,
					  const struct m_service *svc, const char *node)
{
	uint64_t *seen = NULL, *grown;
	size_t n = 0, cap = 0, distinct = 0;

	for (size_t j = 0; j < svc->nports; j++) {
		for (size_t i = 0; i < m->nslices; i++) {
			const struct m_endpoint_slice *sl = &m->slices[i];
			const struct m_slice_port *p;

			if (strcmp(sl->ns, svc->ns) || strcmp(sl->service, svc->name))
				continue;
			p = serving(sl, &svc->ports[j]);
			for (size_t e = 0; p && e < sl->neps; e++) {
				const struct m_slice_endpoint *ep = &sl->eps[e];

				if (!ep->ready || ep->terminating || !ep->addr ||
				    strcmp(where(m, ep), node))
					continue;
				if (n == cap) {
					cap = cap ? cap * 2 : 16;
					grown = realloc(seen, cap * sizeof(*seen));
					if (!grown) { /* count what fits: still > 0 */
						free(seen);
						return n ? (unsigned int)n : 1;
					}
					seen = grown;
				}
				/* kube-proxy counts "address:port" strings: a pair */
				seen[n++] = (uint64_t)ep->addr << 16 | p->port;
			}
		}
	}
	if (n)
		qsort(seen, n, sizeof(*seen), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (!i || seen[i] != seen[i - 1])
			distinct++;
	free(seen);
	return (unsigned int)distinct;
}

/* s as the inside of a JSON string (", \ and control characters escaped). */
static void json_inner(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
}

size_t health_check_render(const char *ns, const char *name, unsigned int local, bool healthy,
			   int *status, char body[HEALTH_CHECK_BODY_MAX],
			   char headers[HEALTH_CHECK_HEADERS_MAX])
{
	char ens[2 * MODEL_NAME_MAX], ename[2 * MODEL_NAME_MAX]; /* names are DNS names */
	int n;

	json_inner(ens, sizeof(ens), ns);
	json_inner(ename, sizeof(ename), name);
	*status = local > 0 && healthy ? 200 : 503;
	snprintf(headers, HEALTH_CHECK_HEADERS_MAX,
		 "X-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: %u\r\n",
		 local);
	/* kube-proxy's text exactly: its spacing, no trailing newline */
	n = snprintf(body, HEALTH_CHECK_BODY_MAX,
		     "{\"service\": {\"namespace\": \"%s\",\"name\": \"%s\"},\"localEndpoints\": "
		     "%u,\"serviceProxyHealthy\": %s}",
		     ens, ename, local, healthy ? "true" : "false");
	if (n < 0)
		return 0;
	return (size_t)n < HEALTH_CHECK_BODY_MAX ? (size_t)n : HEALTH_CHECK_BODY_MAX - 1;
}
