/* SPDX-License-Identifier: Apache-2.0 */
#include "ciliate_dp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ciliate/abi.h"
#include "loader/datapath.h"
#include "loader/maps.h"
#include "tcattach.h"

struct ciliate_side {
	struct datapath *dp;
	struct ring_buffer *rb;
	int ifindex[2];
};

static int discard_event(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

static int add_pod(struct ciliate_side *c, const struct pod_wiring *w, struct diag *d)
{
	struct endpoint_info ep = {.ifindex = (uint32_t)w->host_ifindex,
				   .ep_id = w->ep_id,
				   .identity = w->identity,
				   .flags = w->flags,
				   .family = CILIATE_AF_INET};
	struct ipcache_key k = {.prefixlen = IPCACHE_PREFIX_BASE + 32, .family = CILIATE_AF_INET};
	struct ipcache_value v = {.identity = w->identity, .flags = IPCACHE_F_ENDPOINT};

	ep.addr.v4 = w->addr;
	memcpy(ep.mac, w->pod_mac, 6);
	memcpy(ep.node_mac, w->host_mac, 6);
	k.addr.v4 = w->addr;
	if (dp_endpoint_upsert(c->dp, &ep, d))
		return -1;
	return dp_ipcache_upsert(c->dp, &k, &v, d);
}

static int add_rules(struct ciliate_side *c, uint32_t ep_id, const struct peer_rule *r,
		     unsigned int n, struct diag *d)
{
	for (unsigned int i = 0; i < n; i++) {
		struct policy_key pk = {.prefixlen = POLICY_PREFIX_FULL,
					.ep_id = ep_id,
					.identity = r[i].identity,
					.dir = DIR_EGRESS,
					.proto = IPPROTO_UDP,
					.dport = htons(r[i].port)};
		struct policy_value pv = {.rule_id = i + 1};
		struct ipcache_key ik = {.prefixlen = IPCACHE_PREFIX_BASE + 32,
					 .family = CILIATE_AF_INET};
		struct ipcache_value iv = {.identity = r[i].identity};

		if (dp_policy_upsert(c->dp, &pk, &pv, d))
			return -1;
		ik.addr.v4 = r[i].addr;
		if (dp_ipcache_upsert(c->dp, &ik, &iv, d))
			return -1;
	}
	return 0;
}

struct ciliate_side *cside_open(const struct pod_wiring *client, const struct pod_wiring *server,
				const struct peer_rule *rules, unsigned int n)
{
	struct datapath_opts o = {.node = NULL, .trace_all = false};
	struct ciliate_side *c = calloc(1, sizeof(*c));
	struct diag d = {""};

	if (!c)
		return NULL;
	c->ifindex[0] = client->host_ifindex;
	c->ifindex[1] = server->host_ifindex;
	if (datapath_open(&o, &c->dp, &d) || add_pod(c, client, &d) || add_pod(c, server, &d) ||
	    add_rules(c, client->ep_id, rules, n, &d)) {
		fprintf(stderr, "ciliate datapath (%u rules): %s\n", n, d.msg);
		cside_close(c);
		return NULL;
	}
	c->rb = ring_buffer__new(datapath_map_fd(c->dp, MAP_EVENTS), discard_event, NULL, NULL);
	if (!c->rb) {
		fprintf(stderr, "ciliate datapath: ring buffer: %s\n", strerror(errno));
		cside_close(c);
		return NULL;
	}
	return c;
}

void cside_close(struct ciliate_side *c)
{
	if (!c)
		return;
	ring_buffer__free(c->rb);
	datapath_close(c->dp);
	free(c);
}

int cside_attach(const struct ciliate_side *c)
{
	return tc_attach_all(c->ifindex, 2, datapath_prog_fd(c->dp, HOOK_FROM_CONTAINER),
			     datapath_prog_fd(c->dp, HOOK_TO_CONTAINER));
}

int cside_detach(const struct ciliate_side *c)
{
	return tc_detach_all(c->ifindex, 2);
}

long cside_reset(struct ciliate_side *c)
{
	int fd = datapath_map_fd(c->dp, MAP_CT);
	struct ct_key *keys = NULL, *prev = NULL;
	size_t n = 0, cap = 0;
	long ret;

	ring_buffer__consume(c->rb);
	if (fd < 0)
		return -1;
	/* collect first, delete after: deleting during get_next_key iteration restarts it */
	for (;;) {
		if (n == cap) {
			struct ct_key *k2 = realloc(keys, (cap ? cap * 2 : 1024) * sizeof(*keys));

			if (!k2) {
				free(keys);
				return -1;
			}
			keys = k2;
			cap = cap ? cap * 2 : 1024;
			prev = n ? &keys[n - 1] : NULL;
		}
		if (bpf_map_get_next_key(fd, prev, &keys[n]))
			break;
		prev = &keys[n++];
	}
	ret = (long)n;
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, &keys[i]) && errno != ENOENT) {
			fprintf(stderr, "conntrack flush: %s\n", strerror(errno));
			ret = -1;
			break;
		}
	free(keys);
	return ret;
}
