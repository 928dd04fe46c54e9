/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Egress gateway entries (docs/EGRESS.md): ciliate_egress_gw holds exactly the model's
 * entries for this node (node_state.egress), after each reconcile, so that a relabelled node
 * or a deleted policy moves new connections at the next reconcile.
 *
 * The one thing the model cannot know: on the gateway node, a policy without egressIP SNATs
 * to the first IPv4 address of its `interface`, else of the default-route device — this
 * node's own interfaces. The agent looks them up (getifaddrs, /proc/net/route) at every
 * sync, once per interface; none found leaves the egress IP 0, and the datapath drops with
 * NO_EGRESS_IP. A sync whose entries and addresses are those written last time writes
 * nothing.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <jansson.h>

#define EGRESS_STALE_BATCH 64

/* The device of the IPv4 default route (/proc/net/route), or "" when there is none. */
static void default_route_dev(char dev[IF_NAMESIZE])
{
	char line[256], name[IF_NAMESIZE + 1] = "";
	unsigned long dst, mask;
	FILE *f = fopen("/proc/net/route", "r");

	dev[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%16s %lx %*x %*x %*d %*d %*d %lx", name, &dst, &mask) == 3 &&
		    dst == 0 && mask == 0) {
			name[IF_NAMESIZE - 1] = '\0'; /* a device name fits; make it plain */
			memcpy(dev, name, IF_NAMESIZE);
			break;
		}
	}
	fclose(f);
}

/* The first IPv4 address of device `name` (network order), 0 if none. */
static uint32_t first_ipv4_of(const char *name)
{
	struct ifaddrs *all, *i;
	uint32_t addr = 0;

	if (!*name || getifaddrs(&all))
		return 0;
	for (i = all; i; i = i->ifa_next) {
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !strcmp(i->ifa_name, name)) {
			addr = ((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr.s_addr;
			break;
		}
	}
	freeifaddrs(all);
	return addr;
}

/* One interface's (or, for "", the default-route device's) first IPv4 address, looked up
 * once per sync however many entries name it. */
struct iface_addr {
	char name[IF_NAMESIZE];
	uint32_t addr;
};

#define IFACE_CACHE 8 /* distinct interfaces a sync looks up (more: looked up again) */

static uint32_t iface_addr(struct iface_addr *cache, size_t *n, const char *iface)
{
	char dev[IF_NAMESIZE];
	size_t i;

	for (i = 0; i < *n; i++)
		if (!strncmp(cache[i].name, iface, IF_NAMESIZE))
			return cache[i].addr;
	if (iface[0]) {
		memcpy(dev, iface, sizeof(dev) - 1);
		dev[sizeof(dev) - 1] = '\0';
	} else {
		default_route_dev(dev);
	}
	if (*n == IFACE_CACHE)
		return first_ipv4_of(dev);
	snprintf(cache[*n].name, sizeof(cache[*n].name), "%s", iface);
	cache[*n].addr = first_ipv4_of(dev);
	return cache[(*n)++].addr;
}

static int rec_cmp(const void *x, const void *y)
{
	return memcmp(x, y, sizeof(struct egress_gw_key));
}

/* The entries as they are to be written (an interface's address filled in where this node
 * resolves it), sorted by key bytes for lookups. */
static struct egress_rec *egress_wanted_recs(struct agent *a)
{
	struct egress_rec *r = calloc(a->ns.negress ? a->ns.negress : 1, sizeof(*r));
	struct iface_addr cache[IFACE_CACHE];
	size_t i, ncache = 0;
	bool warned = false;

	for (i = 0; r && i < a->ns.negress; i++) {
		const struct node_egress_entry *e = &a->ns.egress[i];

		r[i].key = e->key;
		r[i].val = e->val;
		if (!e->resolve)
			continue;
		r[i].val.egress_ip = iface_addr(cache, &ncache, e->iface);
		if (!r[i].val.egress_ip && !warned) {
			agent_log(a, "warning: egress gateway: this node is a gateway but %s%s has no "
				  "IPv4 address: its traffic is dropped (NO_EGRESS_IP)",
				  e->iface[0] ? "interface " : "the default-route device",
				  e->iface);
			warned = true;
		}
	}
	if (r && a->ns.negress)
		qsort(r, a->ns.negress, sizeof(*r), rec_cmp);
	return r;
}

/*
 * Writes what changed since the last sync: nothing when the entries (with their resolved
 * addresses) are those written last time. The first sync after a start also deletes what
 * a previous agent left in the pinned map that the model no longer has.
 */
int agent_egress_sync(struct agent *a, struct diag *d)
{
	int fd = datapath_map_fd(a->dp, MAP_EGRESS_GW);
	struct egress_gw_key k, next, stale[EGRESS_STALE_BATCH];
	struct egress_rec *want;
	size_t i, n;
	bool more;

	if (fd < 0)
		return diag_fail_errno(d, fd, "map " MAP_EGRESS_GW " is not loaded");
	want = egress_wanted_recs(a);
	if (!want)
		return diag_fail_errno(d, -ENOMEM, "egress gateway entries: out of memory");
	if (a->egress_synced && a->negress_written == a->ns.negress &&
	    !memcmp(a->egress_written, want, a->ns.negress * sizeof(*want))) {
		free(want);
		return 0;
	}
	/* stale entries out, in batches (deleting while iterating restarts the walk) */
	do {
		n = 0;
		more = false;
		for (int err = bpf_map_get_next_key(fd, NULL, &next); !err;
		     err = bpf_map_get_next_key(fd, &k, &next)) {
			k = next;
			if (a->ns.negress &&
			    bsearch(&k, want, a->ns.negress, sizeof(*want), rec_cmp))
				continue;
			if (n == EGRESS_STALE_BATCH) {
				more = true;
				break;
			}
			stale[n++] = k;
		}
		for (i = 0; i < n; i++)
			if (bpf_map_delete_elem(fd, &stale[i]) && errno != ENOENT)
				goto fail_errno;
	} while (more);
	for (i = 0; i < a->ns.negress; i++)
		if (bpf_map_update_elem(fd, &want[i].key, &want[i].val, BPF_ANY))
			goto fail_errno;
	free(a->egress_written);
	a->egress_written = want;
	a->negress_written = a->ns.negress;
	a->egress_synced = true;
	return 0;
fail_errno:
	free(want);
	a->egress_synced = false; /* the next sync writes everything again */
	return diag_fail_errno(d, -errno, "writing the egress gateway map: %s", strerror(errno));
}

/* `ciliate status`: every egress gateway policy with the node each of its gateways chooses,
 * its egress IP or interface, and how many map entries this node holds. */
json_t *agent_egress_status(const struct agent *a)
{
	const struct cluster_model *m = a->model;
	json_t *pols = json_array();
	char ip[INET_ADDRSTRLEN];
	size_t i, j;

	for (i = 0; m && i < m->negress_policies; i++) {
		const struct m_egress_policy *pol = &m->egress_policies[i];
		json_t *gws = json_array();

		for (j = 0; j < pol->ngateways; j++) {
			const struct m_egress_gateway *gw = &pol->gateways[j];
			const struct m_node *nd = egress_gateway_node(m, gw);

			inet_ntop(AF_INET, &gw->egress_ip, ip, sizeof(ip));
			json_array_append_new(
				gws, json_pack("{s:o, s:o, s:s, s:b}", "node",
					       nd ? json_string(nd->name) : json_null(), "egressIP",
					       gw->egress_ip ? json_string(ip) : json_null(),
					       "interface", gw->iface,
					       "thisNode", nd && !strcmp(nd->name, a->o.node)));
		}
		json_array_append_new(pols, json_pack("{s:s, s:o}", "policy", pol->name,
						      "gateways", gws));
	}
	return json_pack("{s:o, s:I}", "policies", pols, "entries", (json_int_t)a->ns.negress);
}
