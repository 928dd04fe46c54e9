/* SPDX-License-Identifier: Apache-2.0 */
/* Ready-made IPv4 frames for BPF tests and benches (built with pcaps/builder/pktbuild). */
#ifndef CILIATE_TEST_FRAMES_H
#define CILIATE_TEST_FRAMES_H

#include <stddef.h>
#include <stdint.h>

struct frame {
	uint8_t buf[512];
	size_t len;
};

/* Ethernet + IPv4 (addresses network order, given TTL) + TCP with `flags`; valid checksums. */
struct frame frame_tcp4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t flags,
			uint8_t ttl);

/* Ethernet + IPv4 + UDP with a 4-byte payload; valid checksums. */
struct frame frame_udp4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport);

/* Ethernet + IPv4 + ICMP echo request (type 8) or reply (0) with id and seq; valid checksums. */
struct frame frame_icmp4_echo(uint32_t src, uint32_t dst, uint8_t type, uint16_t id,
			      uint16_t seq);

#endif
