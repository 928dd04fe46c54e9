/* SPDX-License-Identifier: Apache-2.0 */
#include "tcattach.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

int tc_attach_all(const int *ifindex, int n, int ingress_fd, int egress_fd)
{
	for (int i = 0; i < n; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, both, .ifindex = ifindex[i],
				    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, ing, .ifindex = ifindex[i],
				    .attach_point = BPF_TC_INGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, egr, .ifindex = ifindex[i],
				    .attach_point = BPF_TC_EGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, oi, .handle = 1, .priority = 1,
				    .prog_fd = ingress_fd);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, oe, .handle = 1, .priority = 1,
				    .prog_fd = egress_fd);
		int err = bpf_tc_hook_create(&both);

		if (err && err != -EEXIST) {
			fprintf(stderr, "clsact on ifindex %d: %s\n", ifindex[i], strerror(-err));
			return -1;
		}
		err = bpf_tc_attach(&ing, &oi);
		if (!err)
			err = bpf_tc_attach(&egr, &oe);
		if (err) {
			fprintf(stderr, "attaching to ifindex %d: %s\n", ifindex[i],
				strerror(-err));
			return -1;
		}
	}
	return 0;
}

int tc_detach_all(const int *ifindex, int n)
{
	int ret = 0;

	for (int i = 0; i < n; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex[i],
				    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
		int err = bpf_tc_hook_destroy(&hook);

		if (err && err != -ENOENT && err != -EINVAL) {
			fprintf(stderr, "removing clsact from ifindex %d: %s\n", ifindex[i],
				strerror(-err));
			ret = -1;
		}
	}
	return ret;
}
