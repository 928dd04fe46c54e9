/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TC attachment of the pod programs to a host-side veth: a clsact qdisc, from_container on
 * its ingress (what the pod sends) and to_container on its egress (what the pod receives);
 * in tunnel routing, from_overlay / to_overlay on the overlay device's ingress / egress.
 * The filters use a fixed handle and priority and are replaced in place, so re-attaching
 * after an agent restart swaps the programs atomically without a gap.
 */
#include "agent.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <bpf/libbpf.h>

#define CILIATE_TC_HANDLE 1
#define CILIATE_TC_PRIO	  1

static int attach_one(int ifindex, enum bpf_tc_attach_point where, int prog_fd, struct diag *d)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = CILIATE_TC_HANDLE,
			    .priority = CILIATE_TC_PRIO, .prog_fd = prog_fd,
			    .flags = BPF_TC_F_REPLACE);
	int err = bpf_tc_attach(&hook, &opts);

	if (err)
		return diag_fail_errno(d, err, "attaching to TC %s of ifindex %d: %s",
				       where == BPF_TC_INGRESS ? "ingress" : "egress", ifindex,
				       strerror(-err));
	return 0;
}

int agent_tc_attach(int ifindex, int ingress_fd, int egress_fd, struct diag *d)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int err;

	if (ingress_fd < 0 || egress_fd < 0)
		return diag_fail_errno(d, -ENOENT, "the programs are not loaded");
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return diag_fail_errno(d, err, "creating clsact on ifindex %d: %s", ifindex,
				       strerror(-err));
	err = attach_one(ifindex, BPF_TC_INGRESS, ingress_fd, d);
	if (!err)
		err = attach_one(ifindex, BPF_TC_EGRESS, egress_fd, d);
	return err;
}

int agent_tc_detach(int ifindex, struct diag *d)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int err = bpf_tc_hook_destroy(&hook);

	if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
		return diag_fail_errno(d, err, "removing clsact from ifindex %d: %s", ifindex,
				       strerror(-err));
	return 0;
}

uint32_t agent_ifindex(struct agent *a, const char *name)
{
	struct ifreq ifr;

	if (strlen(name) >= sizeof(ifr.ifr_name))
		return 0;
	if (a->ifreq_fd < 0)
		a->ifreq_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (a->ifreq_fd < 0)
		return if_nametoindex(name);
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(a->ifreq_fd, SIOCGIFINDEX, &ifr) < 0)
		return 0;
	return (uint32_t)ifr.ifr_ifindex;
}

/* The overlay device's ifindex when the model routes through the tunnel (0: none). */
static uint32_t overlay_wanted(const struct agent *a)
{
	if (!a->model || a->model->cluster.routing != ROUTING_TUNNEL)
		return 0;
	return if_nametoindex(CILIATE_OVERLAY_DEV);
}

bool agent_overlay_changed(const struct agent *a)
{
	return overlay_wanted(a) != a->overlay_ifindex;
}

int agent_overlay_sync(struct agent *a, struct diag *d)
{
	uint32_t ifindex = overlay_wanted(a);

	if (ifindex == a->overlay_ifindex)
		return 0;
	a->overlay_ifindex = 0;
	if (!ifindex)
		return 0; /* gone with its device, or native routing */
	if (agent_tc_attach((int)ifindex, datapath_prog_fd(a->dp, HOOK_FROM_OVERLAY),
			    datapath_prog_fd(a->dp, HOOK_TO_OVERLAY), d)) {
		diag_prefix(d, "overlay " CILIATE_OVERLAY_DEV);
		return -EIO;
	}
	a->overlay_ifindex = ifindex;
	agent_log(a, "overlay: from-overlay and to-overlay attached to %s (ifindex %u)",
		  CILIATE_OVERLAY_DEV, ifindex);
	return 0;
}
