/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node state the hook benches program into a private datapath (the one bench_hooks
 * describes in docs/PERFORMANCE.md), so that benches measuring different things measure them
 * on the same node:
 *
 *   pod A  10.244.0.21  endpoint 1, identity 300, ingress and egress enforced, bound to the
 *                       test-run device (from-container runs as A's veth)
 *   pod B  10.244.0.22  endpoint 2, identity 301, ingress enforced
 *   both pods' /32 in the ipcache (as the agent writes every pod); 10.244.1.0/24 (remote
 *   pods) -> identity 400
 *   A's egress admits identity 400 on TCP 80 and identity 301 (B) on TCP 81; B's ingress
 *   admits identity 300 (A) on TCP 5432 only
 *
 * Paths from A (from-container), each a new connection:
 *   allowed          A -> remote:80: an allowing egress policy verdict, a trace
 *   denied-egress    A -> B:82, denied by A's egress: a denying policy verdict, a drop
 *   denied-ingress   A -> B:81, admitted by A's egress, denied by B's ingress: an allowing
 *                    and a denying policy verdict, a drop
 */
#ifndef CILIATE_TEST_BENCH_NODE_H
#define CILIATE_TEST_BENCH_NODE_H

#include <stdint.h>

#include "bpf_harness.h"
#include "frames.h"

/* Installs the endpoints, ipcache entries and policy above. Aborts on failure. */
void bench_node_program(struct harness *h);

/* TCP SYN from A to remote pod 10.244.1.(10 + i % 64), port 80, source port `sport`. */
struct frame bench_node_syn_allowed(unsigned int i, uint16_t sport);

/* TCP SYN from A to B port 82 (denied by A's egress), source port `sport`. */
struct frame bench_node_syn_denied_egress(uint16_t sport);

/* TCP SYN from A to B port 81 (denied by B's ingress), source port `sport`. */
struct frame bench_node_syn_denied_ingress(uint16_t sport);

#endif
