/* SPDX-License-Identifier: Apache-2.0 */
#include "maps.h"

#include <errno.h>
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
		err = map_update(dp, MAP_LXC, &ep->ifindex, ep, d);
	return err;
}

int dp_endpoint_bind_ifindex(struct datapath *dp, uint32_t ifindex, const struct endpoint_info *ep,
			     struct diag *d)
{
	return map_update(dp, MAP_LXC, &ifindex, ep, d);
}

int dp_endpoint_delete(struct datapath *dp, const struct endpoint_info *ep, struct diag *d)
{
	struct endpoint_key k;
	int err;

	endpoint_key_of(ep, &k);
	err = map_delete(dp, MAP_ENDPOINTS, &k, d);
	if (!err)
		err = map_delete(dp, MAP_LXC, &ep->ifindex, d);
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

int dp_apply_node_state(struct datapath *dp, const struct node_state *ns, struct diag *d)
{
	int err;

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
