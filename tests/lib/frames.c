/* SPDX-License-Identifier: Apache-2.0 */
#include "frames.h"

#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pktbuild.h"

static const uint8_t any_mac[6] = {0x02, 0, 0, 0, 0, 1};

struct frame frame_tcp4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t flags,
			uint8_t ttl)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(src, dst);
	struct pb_tcp tcp = pb_tcp_hdr(sport, dport, flags);
	struct frame f;
	struct pb_pkt p;
	int n;

	ip.ttl = ttl;
	pb_init(&p, f.buf, sizeof(f.buf));
	pb_eth(&p, any_mac, any_mac, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &tcp);
	n = pb_finish(&p);
	assert_true(n > 0);
	f.len = (size_t)n;
	return f;
}

struct frame frame_udp4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(src, dst);
	struct pb_udp udp = {.sport = sport, .dport = dport, .len = PB_AUTO};
	struct frame f;
	struct pb_pkt p;
	int n;

	pb_init(&p, f.buf, sizeof(f.buf));
	pb_eth(&p, any_mac, any_mac, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &udp);
	pb_bytes(&p, "ping", 4);
	n = pb_finish(&p);
	assert_true(n > 0);
	f.len = (size_t)n;
	return f;
}

struct frame frame_icmp4_echo(uint32_t src, uint32_t dst, uint8_t type, uint16_t id,
			      uint16_t seq)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(src, dst);
	struct pb_icmp icmp = {.type = type, .code = 0, .rest = (uint32_t)id << 16 | seq};
	struct frame f;
	struct pb_pkt p;
	int n;

	pb_init(&p, f.buf, sizeof(f.buf));
	pb_eth(&p, any_mac, any_mac, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_icmp4(&p, &icmp);
	pb_bytes(&p, "ping", 4);
	n = pb_finish(&p);
	assert_true(n > 0);
	f.len = (size_t)n;
	return f;
}
