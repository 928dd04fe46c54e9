/* SPDX-License-Identifier: Apache-2.0 */
#include "maps.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "model/model.h"

static int map_update(struct datapath *dp, const char *map, const void *k, const void *v,
		      struct diag *d)
{
	int fd = datapath_map_fd(dp, map);

	if (fd < 0)
		return diag_fail_errno(d, fd, "map %s not found", map);
	if (bpf_map_update_elem(fd, k, v, BPF_ANY) < 0)
		return diag_fail_errno(d, -errno, "updating %s: %s", map, strerror(errno));
	return 0;
}

static int map_delete(struct datapath *dp, const char *map, const void *k, struct diag *d)
{
	int fd = datapath_map_fd(dp, map);

	if (fd < 0)
		return diag_fail_errno(d, fd, "map %s not found", map);
	if (bpf_map_delete_elem(fd, k) < 0 && errno != ENOENT)
		return diag_fail_errno(d, -errno, "deleting from %s: %s", map, strerror(errno));
	return 0;
}

/* ---- endpoint by veth ifindex: ciliate_lxc plus its direct-mapped copy ciliate_lxc_slots
 * (abi.h, lxc_slot). Every write of ciliate_lxc goes through these. */

static int lxc_slot_read(int fd, uint32_t ifindex, struct lxc_slot *s, struct diag *d)
{
	uint32_t idx = ifindex & (LXC_SLOTS - 1);

	if (bpf_map_lookup_elem(fd, &idx, s) < 0)
		return diag_fail_errno(d, -errno, "reading %s[%u]: %s", MAP_LXC_SLOTS, idx,
				       strerror(errno));
	return 0;
}

static int lxc_slot_write(int fd, uint32_t ifindex, const struct lxc_slot *s, struct diag *d)
{
	uint32_t idx = ifindex & (LXC_SLOTS - 1);

	if (bpf_map_update_elem(fd, &idx, s, BPF_ANY) < 0)
		return diag_fail_errno(d, -errno, "updating %s[%u]: %s", MAP_LXC_SLOTS, idx,
				       strerror(errno));
	return 0;
}

/* The endpoint ciliate_lxc holds for another ifindex sharing `ifindex`'s slot, if any. */
static bool lxc_collider(int lxc_fd, uint32_t ifindex, struct lxc_slot *out)
{
	uint32_t key, next;
	void *prev = NULL;

	while (bpf_map_get_next_key(lxc_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (key == ifindex || ((key ^ ifindex) & (LXC_SLOTS - 1)))
			continue;
		memset(out, 0, sizeof(*out));
		if (bpf_map_lookup_elem(lxc_fd, &key, &out->info) == 0) {
			out->ifindex = key;
			return true;
		}
	}
	return false;
}

int dp_lxc_set(struct datapath *dp, uint32_t ifindex, const struct endpoint_info *ep,
	       struct diag *d)
{
	int fd = datapath_map_fd(dp, MAP_LXC_SLOTS);
	struct lxc_slot s;
	int err;

	if (fd < 0)
		return diag_fail_errno(d, fd, "map %s not found", MAP_LXC_SLOTS);
	if (!ifindex)
		return diag_fail(d, "endpoint %s: ifindex 0 is not a device", MAP_LXC);
	err = lxc_slot_read(fd, ifindex, &s, d);
	if (err)
		return err;
	/* slot first: the array is never staler than the hash it copies */
	if (!s.ifindex || s.ifindex == ifindex) {
		memset(&s, 0, sizeof(s));
		s.ifindex = ifindex;
		s.info = *ep;
		err = lxc_slot_write(fd, ifindex, &s, d);
		if (err)
			return err;
	}
	return map_update(dp, MAP_LXC, &ifindex, ep, d);
}

int dp_lxc_delete(struct datapath *dp, uint32_t ifindex, struct diag *d)
{
	int fd = datapath_map_fd(dp, MAP_LXC_SLOTS);
	int lxc_fd = datapath_map_fd(dp, MAP_LXC);
	struct lxc_slot s;
	int err;

	if (fd < 0 || lxc_fd < 0)
		return diag_fail_errno(d, fd < 0 ? fd : lxc_fd, "map %s not found",
				       fd < 0 ? MAP_LXC_SLOTS : MAP_LXC);
	err = lxc_slot_read(fd, ifindex, &s, d);
	if (err)
		return err;
	if (s.ifindex == ifindex && ifindex) {
		/* hand the slot to a colliding endpoint, or empty it */
		if (!lxc_collider(lxc_fd, ifindex, &s))
			memset(&s, 0, sizeof(s));
		err = lxc_slot_write(fd, ifindex, &s, d);
		if (err)
			return err;
	}
	return map_delete(dp, MAP_LXC, &ifindex, d);
}

int dp_lxc_resync(struct datapath *dp, struct diag *d)
{
	int fd = datapath_map_fd(dp, MAP_LXC_SLOTS);
	int lxc_fd = datapath_map_fd(dp, MAP_LXC);
	struct lxc_slot *cur, *want;
	uint32_t key, next;
	void *prev = NULL;
	int err = 0;

	if (fd < 0 || lxc_fd < 0)
		return diag_fail_errno(d, fd < 0 ? fd : lxc_fd, "map %s not found",
				       fd < 0 ? MAP_LXC_SLOTS : MAP_LXC);
	cur = calloc(LXC_SLOTS, sizeof(*cur));
	want = calloc(LXC_SLOTS, sizeof(*want));
	if (!cur || !want) {
		err = diag_fail_errno(d, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t idx = 0; !err && idx < LXC_SLOTS; idx++)
		err = lxc_slot_read(fd, idx, &cur[idx], d);
	/* each slot: its current holder if ciliate_lxc still has it, else any endpoint of the
	 * slot, else empty */
	while (!err && bpf_map_get_next_key(lxc_fd, prev, &next) == 0) {
		uint32_t idx = next & (LXC_SLOTS - 1);
		struct lxc_slot s = {.ifindex = next};

		key = next;
		prev = &key;
		if (!key || bpf_map_lookup_elem(lxc_fd, &key, &s.info) < 0)
			continue;
		if (!want[idx].ifindex || cur[idx].ifindex == key)
			want[idx] = s;
	}
	for (uint32_t idx = 0; !err && idx < LXC_SLOTS; idx++)
		if (memcmp(&cur[idx], &want[idx], sizeof(want[idx])))
			err = lxc_slot_write(fd, idx, &want[idx], d);
out:
	free(cur);
	free(want);
	return err;
}

static void endpoint_key_of(const struct endpoint_info *ep, struct endpoint_key *k)
{
	memset(k, 0, sizeof(*k));
	k->addr = ep->addr;
	k->family = ep->family;
}

int dp_endpoint_upsert(struct datapath *dp, const struct endpoint_info *ep, struct diag *d)
{
	struct endpoint_key k;
	int err;

	endpoint_key_of(ep, &k);
	err = map_update(dp, MAP_ENDPOINTS, &k, ep, d);
	if (!err)
		err = dp_lxc_set(dp, ep->ifindex, ep, d);
	return err;
}

int dp_endpoint_bind_ifindex(struct datapath *dp, uint32_t ifindex, const struct endpoint_info *ep,
			     struct diag *d)
{
	return dp_lxc_set(dp, ifindex, ep, d);
}

int dp_endpoint_delete(struct datapath *dp, const struct endpoint_info *ep, struct diag *d)
{
	struct endpoint_key k;
	int err;

	endpoint_key_of(ep, &k);
	err = map_delete(dp, MAP_ENDPOINTS, &k, d);
	if (!err)
		err = dp_lxc_delete(dp, ep->ifindex, d);
	return err;
}

int dp_ipcache_upsert(struct datapath *dp, const struct ipcache_key *k,
		      const struct ipcache_value *v, struct diag *d)
{
	return map_update(dp, MAP_IPCACHE, k, v, d);
}

int dp_policy_upsert(struct datapath *dp, const struct policy_key *k,
		     const struct policy_value *v, struct diag *d)
{
	struct policy_value val = *v;

	if (k->prefixlen > POLICY_PREFIX_FIXED)
		val.flags |= POLICY_F_L4;
	else
		val.flags &= ~POLICY_F_L4;
	return map_update(dp, MAP_POLICY, k, &val, d);
}

/* The node's service frontends, backends, reverse-NAT entries and source ranges (the
 * agent writes the same entries through its diff, datapath/agent/reconcile.c). Backends
 * first: a frontend never names one the map lacks. */
static int apply_services(struct datapath *dp, const struct node_state *ns, struct diag *d)
{
	uint8_t one = 1;
	size_t i;
	int err = 0;

	for (i = 0; !err && i < ns->nlb_backends; i++)
		err = map_update(dp, MAP_LB_BACKENDS, &ns->lb_backends[i].id,
				 &ns->lb_backends[i].val, d);
	for (i = 0; !err && i < ns->nlb_revnat; i++) {
		uint32_t k = ns->lb_revnat[i].index;

		err = map_update(dp, MAP_LB_REVNAT, &k, &ns->lb_revnat[i].val, d);
	}
	for (i = 0; !err && i < ns->nlb_source_ranges; i++) {
		struct lb_src_range_key k;

		lb_src_range_key_of(&ns->lb_source_ranges[i], &k);
		err = map_update(dp, MAP_LB_SRC_RANGES, &k, &one, d);
	}
	for (i = 0; !err && i < ns->nlb; i++)
		err = map_update(dp, MAP_LB_SERVICES, &ns->lb[i].key, &ns->lb[i].val, d);
	return err;
}

int dp_node_config_set(struct datapath *dp, const struct node_config *cfg, struct diag *d)
{
	uint32_t zero = 0;

	return map_update(dp, MAP_NODE_CFG, &zero, cfg, d);
}

int dp_apply_node_state(struct datapath *dp, const struct node_state *ns, struct diag *d)
{
	int err;

	err = dp_node_config_set(dp, &ns->cfg, d);
	if (!err)
		err = apply_services(dp, ns, d);
	for (size_t i = 0; !err && i < ns->nprefilter; i++) {
		uint8_t one = 1;

		err = map_update(dp, MAP_PREFILTER, &ns->prefilter[i], &one, d);
	}
	/* egress gateway entries as computed (an interface's egress IP is the agent's to
	 * resolve: replay has no node to ask, so such entries keep 0) */
	for (size_t i = 0; !err && i < ns->negress; i++)
		err = map_update(dp, MAP_EGRESS_GW, &ns->egress[i].key, &ns->egress[i].val, d);
	if (err)
		return err;

	for (size_t i = 0; i < ns->nipcache; i++) {
		err = dp_ipcache_upsert(dp, &ns->ipcache[i].key, &ns->ipcache[i].val, d);
		if (err)
			return err;
	}
	for (size_t i = 0; i < ns->npolicy; i++) {
		err = dp_policy_upsert(dp, &ns->policy[i].key, &ns->policy[i].val, d);
		if (err)
			return err;
	}
	/* endpoints last: a pod becomes reachable only once its policy is in place */
	for (size_t i = 0; i < ns->neps; i++) {
		err = dp_endpoint_upsert(dp, &ns->eps[i].info, d);
		if (err)
			return err;
	}
	return 0;
}
