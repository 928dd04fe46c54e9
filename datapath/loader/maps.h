/* SPDX-License-Identifier: Apache-2.0 */
/* Typed map programming: the only place userspace writes datapath maps. */
#ifndef CILIATE_LOADER_MAPS_H
#define CILIATE_LOADER_MAPS_H

#include <stdint.h>

#include "ciliate/abi.h"
#include "common/diag.h"
#include "loader/datapath.h"

struct node_state;

/* Inserts or replaces an endpoint, by address and by its veth ifindex. */
int dp_endpoint_upsert(struct datapath *dp, const struct endpoint_info *ep, struct diag *d);

/* Makes `ep` the endpoint served by the veth with ifindex `ifindex` (replay: the fake device). */
int dp_endpoint_bind_ifindex(struct datapath *dp, uint32_t ifindex, const struct endpoint_info *ep,
			     struct diag *d);

/* Removes an endpoint (both keys). Missing entries are not an error. */
int dp_endpoint_delete(struct datapath *dp, const struct endpoint_info *ep, struct diag *d);

/*
 * The endpoint-by-veth map ciliate_lxc and its direct-mapped copy ciliate_lxc_slots (abi.h,
 * lxc_slot), kept in step: every write of ciliate_lxc goes through these.
 */
int dp_lxc_set(struct datapath *dp, uint32_t ifindex, const struct endpoint_info *ep,
	       struct diag *d);
/* Missing entries are not an error; a colliding endpoint inherits the freed slot. */
int dp_lxc_delete(struct datapath *dp, uint32_t ifindex, struct diag *d);
/* Rebuilds the slots from ciliate_lxc (after a restart that may have cut a write short). */
int dp_lxc_resync(struct datapath *dp, struct diag *d);

int dp_ipcache_upsert(struct datapath *dp, const struct ipcache_key *k,
		      const struct ipcache_value *v, struct diag *d);

/* Inserts or replaces a policy entry; derives POLICY_F_L4 from the key's prefix length. */
int dp_policy_upsert(struct datapath *dp, const struct policy_key *k,
		     const struct policy_value *v, struct diag *d);

/* The node's entry of ciliate_node_cfg (what the netdev programs need). */
int dp_node_config_set(struct datapath *dp, const struct node_config *cfg, struct diag *d);

/* Writes a node's computed state: its config, service entries (not the Maglev tables),
 * ipcache, policy and endpoints. */
int dp_apply_node_state(struct datapath *dp, const struct node_state *ns, struct diag *d);

#endif
