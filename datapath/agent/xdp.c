/* SPDX-License-Identifier: Apache-2.0 */
/*
 * XDP on the node's fabric device (docs/XDP.md): the prefilter's entries and the attachment
 * of xdp_netdev (bpf/progs/xdp.bpf.c) in native (driver) mode.
 *
 * - ciliate_prefilter holds exactly the model's prefilter-deny-cidrs: entries not wanted are
 *   deleted, wanted ones written (the map is small; a full pass per sync).
 * - The program is attached when ciliate_node_cfg enables acceleration or the prefilter, and
 *   detached when neither is. The netlink attachment outlives the agent like the TC filters
 *   do; a restarted agent replaces it atomically with its own load of the program. A leftover
 *   attachment of ours (by program name) is removed on the first sync when XDP is not wanted;
 *   another program's XDP on the device is never touched unless we replace it.
 */
#include "agent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <unistd.h>

#define XDP_PROG_NAME "xdp_netdev"

static bool prefilter_wanted(const struct agent *a, const struct prefilter_key *k)
{
	for (size_t i = 0; i < a->ns.nprefilter; i++)
		if (!memcmp(&a->ns.prefilter[i], k, sizeof(*k)))
			return true;
	return false;
}

static int prefilter_sync(struct agent *a, struct diag *d)
{
	int fd = datapath_map_fd(a->dp, MAP_PREFILTER);
	struct prefilter_key k, next, stale[64];
	size_t nstale, i;
	uint8_t one = 1;
	bool more;

	if (fd < 0)
		return diag_fail_errno(d, fd, "map " MAP_PREFILTER " is not loaded");
	/* deletions in rounds: deleting while walking an LPM trie restarts the walk */
	for (int round = 0; round < 1024; round++) {
		nstale = 0;
		more = bpf_map_get_next_key(fd, NULL, &next) == 0;
		while (more && nstale < 64) {
			k = next;
			if (!prefilter_wanted(a, &k))
				stale[nstale++] = k;
			more = bpf_map_get_next_key(fd, &k, &next) == 0;
		}
		for (i = 0; i < nstale; i++)
			if (bpf_map_delete_elem(fd, &stale[i]) && errno != ENOENT)
				return diag_fail_errno(d, -errno, "deleting a prefilter entry: %s",
						       strerror(errno));
		if (nstale < 64)
			break;
	}
	for (i = 0; i < a->ns.nprefilter; i++)
		if (bpf_map_update_elem(fd, &a->ns.prefilter[i], &one, BPF_ANY))
			return diag_fail_errno(d, -errno, "writing a prefilter entry: %s",
					       strerror(errno));
	return 0;
}

/* Whether the program XDP-attached to ifindex is ours (by name). */
static bool attached_is_ours(uint32_t ifindex)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info), id = 0;
	bool ours;
	int fd;

	if (bpf_xdp_query_id((int)ifindex, XDP_FLAGS_DRV_MODE, &id) || !id)
		return false;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	ours = !bpf_obj_get_info_by_fd(fd, &info, &len) &&
	       !strncmp(info.name, XDP_PROG_NAME, sizeof(info.name));
	close(fd);
	return ours;
}

int agent_xdp_sync(struct agent *a, uint32_t ifindex, const char *name, struct diag *d)
{
	const struct node_config *cfg = &a->ns.cfg;
	bool wanted = ifindex && (cfg->flags & (NODE_CFG_F_XDP_ACCEL | NODE_CFG_F_PREFILTER));
	int err;

	err = prefilter_sync(a, d);
	if (err)
		return err;
	if (a->xdp_ifindex && a->xdp_ifindex != ifindex) {
		/* the device changed or went away: the old attachment went with it, or goes */
		bpf_xdp_detach((int)a->xdp_ifindex, XDP_FLAGS_DRV_MODE, NULL);
		a->xdp_ifindex = 0;
	}
	if (!wanted) {
		if (ifindex && (a->xdp_ifindex == ifindex ||
				(!a->xdp_synced && attached_is_ours(ifindex)))) {
			err = bpf_xdp_detach((int)ifindex, XDP_FLAGS_DRV_MODE, NULL);
			if (err && err != -ENODEV)
				return diag_fail_errno(d, err, "detaching XDP from %s: %s", name,
						       strerror(-err));
			agent_log(a, "xdp: detached from %s", name);
		}
		a->xdp_ifindex = 0;
		a->xdp_synced = true;
		return 0;
	}
	a->xdp_synced = true;
	if (a->xdp_ifindex == ifindex)
		return 0;
	err = bpf_xdp_attach((int)ifindex, datapath_prog_fd(a->dp, HOOK_XDP), XDP_FLAGS_DRV_MODE,
			     NULL);
	if (err)
		return diag_fail_errno(d, err,
				       "attaching XDP (native mode) to fabric device %s: %s "
				       "(bpf-lb-acceleration: native needs a driver with XDP "
				       "support)",
				       name, strerror(-err));
	a->xdp_ifindex = ifindex;
	agent_log(a, "xdp: xdp_netdev attached to %s (ifindex %u, native):%s%s", name, ifindex,
		  (cfg->flags & NODE_CFG_F_XDP_ACCEL) ? " NodePort acceleration" : "",
		  (cfg->flags & NODE_CFG_F_PREFILTER) ? " prefilter" : "");
	return 0;
}
