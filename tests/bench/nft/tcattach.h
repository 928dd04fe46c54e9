/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TC attachment for the veth bench, the way the agent does it (datapath/agent/attach.c): a
 * clsact qdisc, one program on ingress and one on egress, on each of n devices of the
 * current network namespace.
 */
#ifndef CILIATE_BENCH_TCATTACH_H
#define CILIATE_BENCH_TCATTACH_H

/* 0 or -1 (message printed). */
int tc_attach_all(const int *ifindex, int n, int ingress_fd, int egress_fd);

/* Removes the clsact qdiscs (and their filters); missing ones are fine. 0 or -1. */
int tc_detach_all(const int *ifindex, int n);

#endif
