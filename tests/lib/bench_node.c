/* SPDX-License-Identifier: Apache-2.0 */
#include "bench_node.h"

#include <netinet/in.h>

#include "pktbuild.h"

#define POD_A PB_IP4(10, 244, 0, 21)
#define POD_B PB_IP4(10, 244, 0, 22)

void bench_node_program(struct harness *h)
{
	struct endpoint_info a = harness_endpoint(POD_A, 1, 300,
						  EP_F_INGRESS_ENFORCED | EP_F_EGRESS_ENFORCED);
	struct endpoint_info b = harness_endpoint(POD_B, 2, 301, EP_F_INGRESS_ENFORCED);

	harness_add_endpoint(h, &a, true);
	harness_add_endpoint(h, &b, false);
	harness_add_ipcache(h, POD_A, 32, 300);
	harness_add_ipcache(h, POD_B, 32, 301);
	harness_add_ipcache(h, PB_IP4(10, 244, 1, 0), 24, 400);
	harness_add_policy(h, 1, 400, DIR_EGRESS, IPPROTO_TCP, 80, 16, false);
	harness_add_policy(h, 1, 301, DIR_EGRESS, IPPROTO_TCP, 81, 16, false);
	harness_add_policy(h, 2, 300, DIR_INGRESS, IPPROTO_TCP, 5432, 16, false);
}

struct frame bench_node_syn_allowed(unsigned int i, uint16_t sport)
{
	return frame_tcp4(POD_A, PB_IP4(10, 244, 1, 10 + i % 64), sport, 80, PB_TCP_SYN, 64);
}

struct frame bench_node_syn_denied_egress(uint16_t sport)
{
	return frame_tcp4(POD_A, POD_B, sport, 82, PB_TCP_SYN, 64);
}

struct frame bench_node_syn_denied_ingress(uint16_t sport)
{
	return frame_tcp4(POD_A, POD_B, sport, 81, PB_TCP_SYN, 64);
}
