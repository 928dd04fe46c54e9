/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hand-written wrapped flows (docs/OBSERVABILITY.md), one per event type and shape, shared by
 * test_flow_filter.c and test_flow_render.c.
 */
#ifndef CILIATE_TEST_FLOW_FIXTURES_H
#define CILIATE_TEST_FLOW_FIXTURES_H

/* x/a (node-1, endpoint 10, identity 256) -> y/b:80, SYN dropped by x/a's egress policy. */
#define FX_DROP                                                                              \
	"{\"flow\":{\"time\":\"2026-12-04T17:40:00.123456789Z\",\"uuid\":\"node-1/42\","       \
	"\"verdict\":\"DROPPED\",\"drop_reason\":133,\"drop_reason_desc\":\"POLICY_DENIED\","  \
	"\"IP\":{\"source\":\"10.244.0.10\",\"destination\":\"10.244.1.10\","                  \
	"\"ipVersion\":\"IPv4\"},"                                                             \
	"\"l4\":{\"TCP\":{\"source_port\":41000,\"destination_port\":80,"                      \
	"\"flags\":{\"SYN\":true}}},"                                                          \
	"\"source\":{\"ID\":10,\"identity\":256,\"namespace\":\"x\","                          \
	"\"labels\":[\"k8s:app=a\"],\"pod_name\":\"a\"},"                                      \
	"\"destination\":{\"identity\":257,\"namespace\":\"y\",\"labels\":[\"k8s:app=b\"],"    \
	"\"pod_name\":\"b\"},"                                                                 \
	"\"Type\":\"L3_L4\",\"node_name\":\"node-1\",\"event_type\":{\"type\":1,"              \
	"\"sub_type\":133},"                                                                   \
	"\"traffic_direction\":\"EGRESS\",\"is_reply\":false,"                                 \
	"\"interface\":{\"index\":12,\"name\":\"lxc1a2b3c4d\"},"                               \
	"\"file\":{\"name\":\"lxc.bpf.c\",\"line\":116},\"Summary\":\"TCP Flags: SYN\","       \
	"\"ciliate\":{\"seq\":42,\"hook\":\"from-container\",\"ct_state\":\"new\","              \
	"\"bytes\":74}},"                                                                       \
	"\"node_name\":\"node-1\",\"time\":\"2026-12-04T17:40:00.123456789Z\"}"

/* y/b:53 -> x/a:42132 (udp), a reply redirected into x/a (endpoint 10) on node-1. */
#define FX_TRACE_REPLY                                                                       \
	"{\"flow\":{\"time\":\"2026-12-04T17:40:01.5Z\",\"verdict\":\"FORWARDED\","            \
	"\"IP\":{\"source\":\"10.244.1.10\",\"destination\":\"10.244.0.10\","                  \
	"\"ipVersion\":\"IPv4\"},"                                                             \
	"\"l4\":{\"UDP\":{\"source_port\":53,\"destination_port\":42132}},"                    \
	"\"source\":{\"identity\":257,\"namespace\":\"y\",\"labels\":[\"k8s:app=b\"],"         \
	"\"pod_name\":\"b\"},"                                                                 \
	"\"destination\":{\"ID\":10,\"identity\":256,\"namespace\":\"x\","                     \
	"\"labels\":[\"k8s:app=a\"],\"pod_name\":\"a\"},"                                      \
	"\"Type\":\"L3_L4\",\"node_name\":\"node-1\",\"event_type\":{\"type\":4},"             \
	"\"traffic_direction\":\"INGRESS\",\"trace_observation_point\":\"TO_ENDPOINT\","       \
	"\"is_reply\":true,\"interface\":{\"index\":12,\"name\":\"lxc1a2b3c4d\"},"             \
	"\"Summary\":\"UDP\","                                                                 \
	"\"ciliate\":{\"seq\":43,\"hook\":\"from-overlay\",\"ct_state\":\"reply\"}},"          \
	"\"node_name\":\"node-1\",\"time\":\"2026-12-04T17:40:01.5Z\"}"

/* x/a -> y/b:80 denied by x/a's egress policy (no rule matched). */
#define FX_VERDICT_DENY                                                                      \
	"{\"flow\":{\"time\":\"2026-12-04T17:40:00.123Z\",\"verdict\":\"DROPPED\","            \
	"\"drop_reason\":133,\"drop_reason_desc\":\"POLICY_DENIED\","                          \
	"\"IP\":{\"source\":\"10.244.0.10\",\"destination\":\"10.244.1.10\","                  \
	"\"ipVersion\":\"IPv4\"},"                                                             \
	"\"l4\":{\"TCP\":{\"source_port\":41000,\"destination_port\":80,"                      \
	"\"flags\":{\"SYN\":true}}},"                                                          \
	"\"source\":{\"ID\":10,\"identity\":256,\"namespace\":\"x\","                          \
	"\"labels\":[\"k8s:app=a\"],\"pod_name\":\"a\"},"                                      \
	"\"destination\":{\"identity\":257,\"namespace\":\"y\",\"labels\":[\"k8s:app=b\"],"    \
	"\"pod_name\":\"b\"},"                                                                 \
	"\"Type\":\"L3_L4\",\"node_name\":\"node-1\",\"event_type\":{\"type\":5,"              \
	"\"sub_type\":0},"                                                                     \
	"\"traffic_direction\":\"EGRESS\",\"is_reply\":false,\"policy_match_type\":0,"         \
	"\"Summary\":\"TCP Flags: SYN\","                                                      \
	"\"ciliate\":{\"seq\":41,\"hook\":\"from-container\",\"ct_state\":\"new\","            \
	"\"policy_match_name\":\"none\"}},"                                                    \
	"\"node_name\":\"node-1\",\"time\":\"2026-12-04T17:40:00.123Z\"}"

/* x/a -> y/b:8080 allowed by y/b's ingress policy (L3-L4 rule) on node-2 (endpoint 20). */
#define FX_VERDICT_ALLOW                                                                     \
	"{\"flow\":{\"time\":\"2026-12-04T17:40:02Z\",\"verdict\":\"FORWARDED\","              \
	"\"IP\":{\"source\":\"10.244.0.10\",\"destination\":\"10.244.1.10\","                  \
	"\"ipVersion\":\"IPv4\"},"                                                             \
	"\"l4\":{\"TCP\":{\"source_port\":41001,\"destination_port\":8080,"                    \
	"\"flags\":{\"SYN\":true}}},"                                                          \
	"\"source\":{\"identity\":256,\"namespace\":\"x\",\"labels\":[\"k8s:app=a\"],"         \
	"\"pod_name\":\"a\"},"                                                                 \
	"\"destination\":{\"ID\":20,\"identity\":257,\"namespace\":\"y\","                     \
	"\"labels\":[\"k8s:app=b\"],\"pod_name\":\"b\"},"                                      \
	"\"Type\":\"L3_L4\",\"node_name\":\"node-2\",\"event_type\":{\"type\":5},"             \
	"\"traffic_direction\":\"INGRESS\",\"is_reply\":false,\"policy_match_type\":2,"        \
	"\"Summary\":\"TCP Flags: SYN\","                                                      \
	"\"ciliate\":{\"seq\":7,\"hook\":\"from-overlay\",\"ct_state\":\"new\","               \
	"\"policy_match_name\":\"L3-L4\"}},"                                                   \
	"\"node_name\":\"node-2\",\"time\":\"2026-12-04T17:40:02Z\"}"

/* z/c (node-2, endpoint 30) pings the world (1.1.1.1): ICMP echo request to the stack. */
#define FX_TRACE_ICMP                                                                        \
	"{\"flow\":{\"time\":\"2026-12-04T17:40:03.000999Z\",\"verdict\":\"FORWARDED\","       \
	"\"IP\":{\"source\":\"10.244.1.20\",\"destination\":\"1.1.1.1\","                      \
	"\"ipVersion\":\"IPv4\"},"                                                             \
	"\"l4\":{\"ICMPv4\":{\"type\":8,\"code\":0}},"                                         \
	"\"source\":{\"ID\":30,\"identity\":300,\"namespace\":\"z\",\"labels\":[\"k8s:app=c\"]," \
	"\"pod_name\":\"c\"},"                                                                 \
	"\"destination\":{\"identity\":2,\"labels\":[\"reserved:world\"]},"                    \
	"\"Type\":\"L3_L4\",\"node_name\":\"node-2\",\"event_type\":{\"type\":4},"             \
	"\"traffic_direction\":\"EGRESS\",\"trace_observation_point\":\"TO_STACK\","           \
	"\"is_reply\":false,\"interface\":{\"index\":7,\"name\":\"lxc00c0ffee\"},"             \
	"\"Summary\":\"ICMPv4 EchoRequest\","                                                  \
	"\"ciliate\":{\"seq\":8,\"hook\":\"from-container\",\"ct_state\":\"new\"}},"           \
	"\"node_name\":\"node-2\",\"time\":\"2026-12-04T17:40:03.000999Z\"}"

/* An IPv6 UDP flow to an address the model does not know (no direction known). */
#define FX_TRACE_V6                                                                          \
	"{\"flow\":{\"time\":\"2026-12-04T17:40:04+01:00\",\"verdict\":\"FORWARDED\","         \
	"\"IP\":{\"source\":\"fd00::10\",\"destination\":\"fd00::1:20\","                      \
	"\"ipVersion\":\"IPv6\"},"                                                             \
	"\"l4\":{\"UDP\":{\"source_port\":5353,\"destination_port\":53}},"                     \
	"\"source\":{\"ID\":11,\"identity\":256,\"namespace\":\"x\",\"pod_name\":\"a6\"},"     \
	"\"destination\":{\"identity\":2},"                                                    \
	"\"node_name\":\"node-1\",\"event_type\":{\"type\":4},"                                \
	"\"trace_observation_point\":\"TO_OVERLAY\","                                          \
	"\"interface\":{\"index\":4},\"Summary\":\"UDP\","                                     \
	"\"ciliate\":{\"seq\":44,\"hook\":\"to-overlay\",\"ct_state\":\"established\"}},"      \
	"\"node_name\":\"node-1\",\"time\":\"2026-12-04T17:40:04+01:00\"}"

#define FX_LOST                                                                              \
	"{\"lost_events\":{\"source\":\"PERF_EVENT_RING_BUFFER\",\"num_events_lost\":17},"     \
	"\"node_name\":\"node-2\",\"time\":\"2026-12-04T17:40:05Z\"}"

#endif
