/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's datapath hooks. In this version no datapath is attached: nodes forward
 * with plain kernel routing, so pods are reachable and only probes that need no policy can
 * pass (the runner fails every `deny` expectation honestly while c->datapath is false).
 *
 * sim_attach_datapath() is where the node's ciliate-agent starts: run it inside node->netns
 * with netns_spawn(), record it in node->agent (and any pinned path, e.g.
 * /sys/fs/bpf/ciliate/<node>, in c->pins) so that `down` stops and removes it, attach its
 * programs to the node's lxc devices (and vxlan0 / eth0), then set *attached.
 */
#include "sim.h"

#include <errno.h>

int sim_attach_datapath(struct sim_cluster *c, struct sim_host *node, bool *attached,
			struct diag *d)
{
	*attached = false;
	return 0;
}

int sim_detach_datapath(struct sim_cluster *c, struct sim_host *node, struct diag *d)
{
	/* the agent's process is stopped with the others from the state file */
	return 0;
}

int sim_apply_step(struct sim_cluster *c, const struct m_step *st, struct diag *d)
{
	if (!st->apply && !st->manifests_yaml && !st->ndeletes)
		return 0;
	return diag_fail_errno(d, -EOPNOTSUPP, "policy changes need the datapath: not applied");
}
