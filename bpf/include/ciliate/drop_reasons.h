/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one vocabulary for packet outcomes, shared by BPF programs, metrics, the CLI, replay and
 * flows. Numbers and names follow the drop codes Cilium/Hubble users already know, so that a
 * "POLICY_DENIED (133)" here means what it means there.
 *
 * X(code, NAME, "human description")
 * Codes below 128 are not drops: they are trace reasons for packets that were forwarded.
 */
#ifndef CILIATE_DROP_REASONS_H
#define CILIATE_DROP_REASONS_H

#define CILIATE_TRACE_REASONS(X)                                                       \
	X(0, FORWARDED, "Forwarded")                                                   \
	X(1, CT_NEW, "New connection")                                                 \
	X(2, CT_ESTABLISHED, "Established connection")                                 \
	X(3, CT_REPLY, "Reply of a tracked connection")                                \
	X(4, CT_RELATED, "Related to a tracked connection")                            \
	X(5, NON_IP_PASSED, "Non-IP frame passed to the stack")                        \
	X(6, CT_REOPENED, "Closed connection reopened")

#define CILIATE_DROP_REASONS(X)                                                        \
	X(130, INVALID_SOURCE_MAC, "Invalid source mac")                               \
	X(131, INVALID_DESTINATION_MAC, "Invalid destination mac")                     \
	X(132, INVALID_SOURCE_IP, "Invalid source ip")                                 \
	X(133, POLICY_DENIED, "Policy denied")                                         \
	X(134, INVALID_PACKET_DROPPED, "Invalid packet")                               \
	X(135, CT_TRUNCATED_OR_INVALID_HEADER, "CT: Truncated or invalid header")      \
	X(136, FRAG_NEEDED, "Fragmentation needed")                                   \
	X(137, CT_UNKNOWN_L4_PROTOCOL, "CT: Unknown L4 protocol")                      \
	X(139, UNSUPPORTED_L3_PROTOCOL, "Unsupported L3 protocol")                     \
	X(141, ERROR_WRITING_TO_PACKET, "Error writing to packet")                     \
	X(142, UNKNOWN_L4_PROTOCOL, "Unknown L4 protocol")                             \
	X(150, UNKNOWN_L3_TARGET_ADDRESS, "Unknown L3 target address")                 \
	X(152, NO_MATCHING_LOCAL_CONTAINER_FOUND, "No matching local container found") \
	X(153, ERROR_WHILE_CORRECTING_L3_CHECKSUM, "Error while correcting L3 checksum") \
	X(154, ERROR_WHILE_CORRECTING_L4_CHECKSUM, "Error while correcting L4 checksum") \
	X(155, CT_MAP_INSERTION_FAILED, "CT: Map insertion failed")                    \
	X(156, INVALID_IPV6_EXTENSION_HEADER, "Invalid IPv6 extension header")         \
	X(157, IP_FRAGMENTATION_NOT_SUPPORTED, "IP fragmentation not supported")       \
	X(158, SERVICE_BACKEND_NOT_FOUND, "Service backend not found")                 \
	X(160, NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT, "No tunnel/encapsulation endpoint") \
	X(165, NO_CONFIGURATION_AVAILABLE, "No configuration available to perform policy decision") \
	X(166, UNSUPPORTED_L2_PROTOCOL, "Unsupported L2 protocol")                     \
	X(167, NO_MAPPING_FOR_NAT_MASQUERADE, "No mapping for NAT masquerade")         \
	X(168, UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE, "Unsupported protocol for NAT masquerade") \
	X(171, INVALID_IDENTITY, "Invalid identity")                                   \
	X(174, IS_A_CLUSTERIP, "Is a ClusterIP")                                       \
	X(175, FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND, "First logical datagram fragment not found") \
	X(177, DENIED_BY_LB_SRC_RANGE_CHECK, "Denied by LB src range check")           \
	X(181, POLICY_DENY, "Policy denied by denylist")                               \
	X(182, VLAN_FILTERED, "VLAN traffic disallowed by VLAN filter")                \
	X(194, NO_EGRESS_GATEWAY, "No egress gateway found")                           \
	X(195, UNENCRYPTED_TRAFFIC, "Traffic is unencrypted")                          \
	X(196, TTL_EXCEEDED, "TTL exceeded")                                          \
	X(204, NO_EGRESS_IP, "No Egress IP configured")                                \
	X(220, PREFILTER_DENIED, "Denied by prefilter")

enum ciliate_reason {
#define CILIATE_REASON_ENUM(code, name, desc) REASON_##name = code,
	CILIATE_TRACE_REASONS(CILIATE_REASON_ENUM) CILIATE_DROP_REASONS(CILIATE_REASON_ENUM)
#undef CILIATE_REASON_ENUM
};

/* Reasons >= this value are drops. Metrics arrays are sized by CILIATE_REASON_MAX. */
#define CILIATE_DROP_REASON_MIN 128
#define CILIATE_REASON_MAX 256

#endif
