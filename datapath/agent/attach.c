/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TC attachment of the pod programs to a host-side veth: a clsact qdisc, from_container on
 * its ingress (what the pod sends) and to_container on its egress (what the pod receives).
 * The filters use a fixed handle and priority and are replaced in place, so re-attaching
 * after an agent restart swaps the programs atomically without a gap.
 */
#include "agent.h"

#include <errno.h>
#include <string.h>

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
		return diag_fail_errno(d, -ENOENT, "the pod programs are not loaded");
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
