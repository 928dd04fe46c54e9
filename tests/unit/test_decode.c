// SPDX-License-Identifier: Apache-2.0
/*
 * Decoder tests: the one-line output for each packet type, the structured parse, and
 * robustness: every frame of the shared corpus, every prefix of many frames, random garbage
 * and mutated frames must decode without reading out of bounds (each frame is copied into a
 * buffer of its exact size, so ASan/valgrind see any overread) and with a terminated line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "decode/decode.h"
#include "pktbuild.h"
#include "shared_files.h"

#define CORPUS_GLOB "../shared/corpus/pcaps/*/*.pcap"

static const uint8_t mac_a[6] = { 0x0a, 0x58, 10, 244, 0, 10 };
static const uint8_t mac_b[6] = { 0x0e, 0x58, 10, 244, 0, 10 };
static const uint8_t ll1[16] = { 0xfe, 0x80, [15] = 1 };
static const uint8_t mc1[16] = { 0xff, 0x02, [15] = 1 };

struct frame {
	uint8_t b[512];
	size_t len;
};

/* Decodes f (copied into an exact-size heap buffer) with flags; returns the line. */
static const char *dec_flags(const struct frame *f, unsigned int flags)
{
	static char out[512];
	uint8_t *copy = malloc(f->len ? f->len : 1);

	assert_non_null(copy);
	memcpy(copy, f->b, f->len);
	assert_int_equal(decode_frame_ex(copy, f->len, flags, out, sizeof(out)), 0);
	free(copy);
	return out;
}

static const char *dec(const struct frame *f)
{
	return dec_flags(f, 0);
}

static void finish(struct frame *f, struct pb_pkt *p)
{
	int n = pb_finish(p);

	assert_true(n > 0);
	f->len = (size_t)n;
}

static struct frame tcp4(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp, uint8_t flags,
			 uint32_t seq, uint32_t ack, const char *data)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(s, d);
	struct pb_tcp t = pb_tcp_hdr(sp, dp, flags);
	struct pb_pkt p;
	struct frame f;

	t.seq = seq;
	t.ack = ack;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	if (data)
		pb_bytes(&p, data, strlen(data));
	finish(&f, &p);
	return f;
}

static struct frame udp4(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp, const char *data)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(s, d);
	struct pb_udp u = { .sport = sp, .dport = dp, .len = PB_AUTO };
	struct pb_pkt p;
	struct frame f;

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_bytes(&p, data, strlen(data));
	finish(&f, &p);
	return f;
}

#define A PB_IP4(10, 244, 0, 21)
#define B PB_IP4(10, 244, 0, 22)

/* ---- output strings ---- */

static void test_tcp(void **state)
{
	struct frame f = tcp4(A, B, 41000, 5432, PB_TCP_SYN, 100, 0, NULL);

	assert_string_equal(dec(&f), "10.244.0.21:41000 > 10.244.0.22:5432 TCP [S] seq 100 win "
				     "65535 len 0");
	f = tcp4(B, A, 5432, 41000, PB_TCP_SYN | PB_TCP_ACK, 9000, 101, NULL);
	assert_string_equal(dec(&f), "10.244.0.22:5432 > 10.244.0.21:41000 TCP [S.] seq 9000 "
				     "ack 101 win 65535 len 0");
	f = tcp4(A, B, 41000, 5432, PB_TCP_FIN | PB_TCP_PSH | PB_TCP_ACK, 101, 9001, "hello");
	assert_string_equal(dec(&f), "10.244.0.21:41000 > 10.244.0.22:5432 TCP [FP.] seq 101 "
				     "ack 9001 win 65535 len 5");
	f = tcp4(A, B, 1, 2, 0, 0, 0, NULL);
	assert_string_equal(dec(&f), "10.244.0.21:1 > 10.244.0.22:2 TCP [none] seq 0 win 65535 "
				     "len 0");
	f = tcp4(A, B, 1, 2, PB_TCP_RST, 7, 0, NULL);
	assert_string_equal(dec_flags(&f, DECODE_F_ETH | DECODE_F_VERBOSE),
			    "0a:58:0a:f4:00:0a > 0e:58:0a:f4:00:0a, 10.244.0.21:1 > 10.244.0.22:2 "
			    "TCP [R] seq 7 win 65535 len 0 (ttl 64, id 1, DF)");
}

static void test_udp_and_tunnels(void **state)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(192, 0, 2, 1), PB_IP4(192, 0, 2, 2));
	struct pb_ipv4 in = pb_ipv4_hdr(A, B);
	struct pb_udp u = { .sport = 50000, .dport = 8472, .len = PB_AUTO };
	struct pb_tcp t = pb_tcp_hdr(41000, 80, PB_TCP_SYN);
	struct pb_pkt p;
	struct frame f;

	f = udp4(A, B, 40000, 53, "query");
	assert_string_equal(dec(&f), "10.244.0.21:40000 > 10.244.0.22:53 UDP len 5");

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_vxlan(&p, 42);
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &in);
	pb_tcp(&p, &t);
	finish(&f, &p);
	assert_string_equal(dec(&f), "192.0.2.1:50000 > 192.0.2.2:8472 VXLAN vni 42 [inner: "
				     "10.244.0.21:41000 > 10.244.0.22:80 TCP [S] seq 0 win 65535 "
				     "len 0]");

	u.dport = 6081;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_geneve(&p, 7, PB_AUTO);
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_arp(&p, &(struct pb_arp){ .op = PB_ARP_REQUEST, .spa = A, .tpa = B });
	finish(&f, &p);
	assert_string_equal(dec(&f), "192.0.2.1:50000 > 192.0.2.2:6081 Geneve vni 7 [inner: ARP "
				     "who-has 10.244.0.22 tell 10.244.0.21]");

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_gre(&p, PB_AUTO);
	pb_ipv4(&p, &in);
	pb_tcp(&p, &t);
	finish(&f, &p);
	assert_string_equal(dec(&f), "192.0.2.1 > 192.0.2.2 GRE proto 0x0800 [inner: "
				     "10.244.0.21:41000 > 10.244.0.22:80 TCP [S] seq 0 win 65535 "
				     "len 0]");

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_ipv4(&p, &in);
	pb_tcp(&p, &t);
	finish(&f, &p);
	assert_string_equal(dec(&f), "192.0.2.1 > 192.0.2.2 IPIP [inner: 10.244.0.21:41000 > "
				     "10.244.0.22:80 TCP [S] seq 0 win 65535 len 0]");

	/* one level only: a tunnel inside a tunnel is named, not entered */
	u.dport = 4789;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_vxlan(&p, 1);
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_vxlan(&p, 2);
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	finish(&f, &p);
	assert_string_equal(dec(&f), "192.0.2.1:50000 > 192.0.2.2:4789 VXLAN vni 1 [inner: "
				     "192.0.2.1:50000 > 192.0.2.2:4789 VXLAN vni 2]");
}

static void test_icmp(void **state)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(A, B), err_ip = pb_ipv4_hdr(PB_IP4(192, 0, 2, 2), A);
	struct pb_icmp c = { .type = PB_ICMP_ECHO, .rest = 7 << 16 | 1 };
	struct frame f, q;
	struct pb_pkt p;

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_icmp4(&p, &c);
	pb_bytes(&p, "abcd", 4);
	finish(&f, &p);
	assert_string_equal(dec(&f), "10.244.0.21 > 10.244.0.22 ICMP echo request id 7 seq 1 len 4");
	f.b[34] = 0;
	assert_string_equal(dec(&f), "10.244.0.21 > 10.244.0.22 ICMP echo reply id 7 seq 1 len 4");

	q = tcp4(A, B, 41000, 80, PB_TCP_SYN, 1, 0, NULL);
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &err_ip);
	pb_icmp4_error(&p, PB_ICMP_DEST_UNREACH, 3, 0, q.b + 14, q.len - 14);
	finish(&f, &p);
	assert_string_equal(dec(&f), "192.0.2.2 > 10.244.0.21 ICMP port unreachable [inner: "
				     "10.244.0.21:41000 > 10.244.0.22:80 TCP]");

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &err_ip);
	pb_icmp4_error(&p, PB_ICMP_TIME_EXCEEDED, 0, 0, q.b + 14, 20);
	finish(&f, &p);
	assert_string_equal(dec(&f), "192.0.2.2 > 10.244.0.21 ICMP time exceeded in-transit "
				     "[inner: 10.244.0.21 > 10.244.0.22 TCP]");

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &err_ip);
	pb_icmp4_error(&p, PB_ICMP_DEST_UNREACH, 4, 1400, q.b + 14, 10);
	finish(&f, &p);
	assert_string_equal(dec(&f), "192.0.2.2 > 10.244.0.21 ICMP need to frag (mtu 1400) "
				     "[inner: IPv4 truncated]");
}

static void test_arp(void **state)
{
	struct pb_arp a = { .op = PB_ARP_REQUEST, .spa = PB_IP4(10, 0, 0, 2),
			    .tpa = PB_IP4(10, 0, 0, 1) };
	struct pb_pkt p;
	struct frame f;

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_arp(&p, &a);
	finish(&f, &p);
	assert_string_equal(dec(&f), "ARP who-has 10.0.0.1 tell 10.0.0.2");

	a.op = PB_ARP_REPLY;
	memcpy(a.sha, mac_a, 6);
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_arp(&p, &a);
	finish(&f, &p);
	assert_string_equal(dec(&f), "ARP reply 10.0.0.2 is-at 0a:58:0a:f4:00:0a");
	f.len = 14 + 20;
	assert_string_equal(dec(&f), "ARP op 2 truncated (20 of 28 bytes)");
}

static void test_ipv6(void **state)
{
	static const uint8_t ra[] = { 0x05, 0x02, 0x00, 0x00 };
	struct pb_ipv6 ip = pb_ipv6_hdr(ll1, mc1);
	struct pb_icmp ns = { .type = PB_ICMP6_NEIGH_SOLICIT };
	struct pb_icmp echo = { .type = PB_ICMP6_ECHO_REQUEST, .rest = 1 << 16 | 2 };
	struct pb_udp u = { .sport = 546, .dport = 547, .len = PB_AUTO };
	struct pb_pkt p;
	struct frame f;

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv6(&p, &ip);
	pb_icmp6(&p, &ns);
	pb_fill(&p, 0, 16);
	finish(&f, &p);
	assert_string_equal(dec(&f), "IPv6 fe80::1 > ff02::1 ICMPv6 type 135");

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv6(&p, &ip);
	pb_icmp6(&p, &echo);
	finish(&f, &p);
	assert_string_equal(dec(&f), "IPv6 fe80::1 > ff02::1 ICMPv6 echo request id 1 seq 2 len 0");

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv6(&p, &ip);
	pb_ipv6_ext(&p, 0, ra, sizeof(ra));
	pb_ipv6_ext(&p, 60, NULL, 0);
	pb_ipv6_frag(&p, 0, true, 99);
	pb_udp(&p, &u);
	pb_bytes(&p, "dhcp", 4);
	finish(&f, &p);
	assert_string_equal(dec(&f), "IPv6 ext hbh,dst frag id 99 off 0 MF [fe80::1]:546 > "
				     "[ff02::1]:547 UDP len 4");

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv6(&p, &ip);
	pb_ipv6_frag(&p, 1448, false, 99);
	pb_bytes(&p, "rest", 4);
	finish(&f, &p);
	assert_string_equal(dec(&f), "IPv6 frag id 99 off 1448 fe80::1 > ff02::1 proto 59 len 4");
}

static void test_vlan_frag_sctp_misc(void **state)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(A, B);
	struct pb_tcp t = pb_tcp_hdr(1, 2, PB_TCP_SYN);
	struct pb_udp u = { .sport = 1000, .dport = 53, .len = PB_AUTO };
	struct pb_sctp s = { .sport = 3868, .dport = 3868, .vtag = 0xdeadbeef, .chunk_type = 1 };
	struct frame f, whole;
	struct pb_pkt p;
	int n;

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_vlan(&p, PB_ETH_P_8021Q, 100, 0, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	finish(&f, &p);
	assert_string_equal(dec(&f), "VLAN 100 10.244.0.21:1 > 10.244.0.22:2 TCP [S] seq 0 win "
				     "65535 len 0");

	ip.id = 7;
	ip.frag = 0;
	pb_init(&p, whole.b, sizeof(whole.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_fill(&p, 'x', 100);
	finish(&whole, &p);
	n = pb_ipv4_fragment(whole.b, whole.len, 14, 0, 56, true, f.b, sizeof(f.b));
	assert_true(n > 0);
	f.len = (size_t)n;
	assert_string_equal(dec(&f), "IPv4 frag id 7 off 0 MF 10.244.0.21:1000 > 10.244.0.22:53 "
				     "UDP len 100");
	n = pb_ipv4_fragment(whole.b, whole.len, 14, 56, 52, false, f.b, sizeof(f.b));
	assert_true(n > 0);
	f.len = (size_t)n;
	assert_string_equal(dec(&f), "IPv4 frag id 7 off 56 10.244.0.21 > 10.244.0.22 UDP len 52");

	ip = pb_ipv4_hdr(A, B);
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_sctp(&p, &s);
	finish(&f, &p);
	assert_string_equal(dec(&f), "10.244.0.21:3868 > 10.244.0.22:3868 SCTP vtag 0xdeadbeef "
				     "[INIT]");

	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, 0x88cc);
	pb_fill(&p, 0, 30);
	finish(&f, &p);
	assert_string_equal(dec(&f), "LLDP len 30");
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, 0x1234);
	pb_fill(&p, 0, 30);
	finish(&f, &p);
	assert_string_equal(dec(&f), "ethertype 0x1234 len 30");
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, 46);
	pb_fill(&p, 0, 46);
	finish(&f, &p);
	assert_string_equal(dec(&f), "802.3 len 46");

	ip.proto = 50;
	pb_init(&p, f.b, sizeof(f.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_bytes(&p, (const uint8_t[]){ 0, 0, 1, 0, 0, 0, 0, 5, 9, 9 }, 10);
	finish(&f, &p);
	assert_string_equal(dec(&f), "10.244.0.21 > 10.244.0.22 ESP spi 0x00000100 seq 5 len 2");
}

static void test_truncated_and_malformed(void **state)
{
	struct frame f = tcp4(A, B, 41000, 80, PB_TCP_SYN, 1, 0, NULL), g;
	struct pb_ipv4 ip = pb_ipv4_hdr(A, B);
	struct pb_tcp t = pb_tcp_hdr(41000, 80, PB_TCP_SYN);
	struct pb_pkt p;

	g = f;
	g.len = 10;
	assert_string_equal(dec(&g), "truncated ethernet (10 bytes)");
	g.len = 0;
	assert_string_equal(dec(&g), "truncated ethernet (0 bytes)");
	g.len = 14 + 12;
	assert_string_equal(dec(&g), "IPv4 truncated (12 of 20 bytes)");
	g.len = 14 + 20 + 12;
	assert_string_equal(dec(&g), "10.244.0.21:41000 > 10.244.0.22:80 TCP truncated (12 of 20 "
				     "bytes) [IPv4 truncated: total length 40, 32 captured]");
	g.len = 14 + 20 + 2;
	assert_string_equal(dec(&g), "10.244.0.21 > 10.244.0.22 TCP truncated (2 of 20 bytes) "
				     "[IPv4 truncated: total length 40, 22 captured]");

	/* consistent IP, short TCP header */
	pb_init(&p, g.b, sizeof(g.b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	pb_truncate(&p, 14 + 20 + 12);
	finish(&g, &p);
	assert_string_equal(dec(&g), "10.244.0.21:41000 > 10.244.0.22:80 TCP truncated (12 of 20 "
				     "bytes)");

	g = f;
	g.b[14] = 0x44;
	assert_string_equal(dec(&g), "IPv4 10.244.0.21 > 10.244.0.22 malformed: header length 16");
	g.b[14] = 0x55;
	assert_string_equal(dec(&g), "IPv4 malformed: version 5");
	g.b[14] = 0x4f;
	assert_string_equal(dec(&g), "IPv4 10.244.0.21 > 10.244.0.22 truncated (header 40 of 60 "
				     "bytes)");
	g = f;
	g.b[16] = 0;
	g.b[17] = 10;
	assert_string_equal(dec(&g), "IPv4 10.244.0.21 > 10.244.0.22 malformed: total length 10 < "
				     "header 20");
	g = f;
	g.b[14 + 20 + 12] = 0x20;
	assert_string_equal(dec(&g), "10.244.0.21:41000 > 10.244.0.22:80 TCP [S] malformed: data "
				     "offset 2");
	g = f;
	g.b[12] = 0x81;
	g.b[13] = 0x00;
	g.len = 16;
	assert_string_equal(dec(&g), "VLAN truncated (2 of 4 bytes)");
	g = f;
	g.b[12] = 0x86;
	g.b[13] = 0xdd;
	assert_string_equal(dec(&g), "IPv6 malformed: version 4");
	g.len = 30;
	assert_string_equal(dec(&g), "IPv6 truncated (16 of 40 bytes)");
}

static void test_parse(void **state)
{
	struct frame f = tcp4(A, B, 41000, 5432, PB_TCP_SYN | PB_TCP_ACK, 5, 6, "xyz");
	struct decoded_pkt d;

	assert_int_equal(decode_parse(f.b, f.len, &d), 0);
	assert_int_equal(d.family, AF_INET);
	assert_int_equal(d.ethertype, 0x0800);
	assert_memory_equal(d.saddr, ((const uint8_t[]){ 10, 244, 0, 21 }), 4);
	assert_memory_equal(d.daddr, ((const uint8_t[]){ 10, 244, 0, 22 }), 4);
	assert_memory_equal(d.src_mac, mac_a, 6);
	assert_int_equal(d.proto, 6);
	assert_true(d.has_ports);
	assert_int_equal(d.sport, 41000);
	assert_int_equal(d.dport, 5432);
	assert_int_equal(d.tcp_flags, PB_TCP_SYN | PB_TCP_ACK);
	assert_int_equal(d.seq, 5);
	assert_int_equal(d.ack, 6);
	assert_int_equal(d.ttl, 64);
	assert_int_equal(d.ip_hlen, 20);
	assert_int_equal(d.payload_len, 3);
	assert_false(d.truncated);
	assert_false(d.malformed);
	assert_false(d.is_fragment);

	f.len = 40;
	assert_int_equal(decode_parse(f.b, f.len, &d), 0);
	assert_true(d.truncated);
	assert_int_equal(d.sport, 41000);
	assert_int_equal(decode_parse(NULL, 0, &d), -EINVAL);
	assert_int_equal(decode_parse(f.b, f.len, NULL), -EINVAL);
}

static void test_output_buffer(void **state)
{
	struct frame f = tcp4(A, B, 41000, 5432, PB_TCP_SYN, 100, 0, NULL);
	char out[16], big[64];
	char flags[10];

	memset(out, 'x', sizeof(out));
	assert_int_equal(decode_frame(f.b, f.len, out, sizeof(out)), -ENOSPC);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_string_equal(out, "10.244.0.21:410");
	assert_int_equal(decode_frame(f.b, f.len, out, 1), -ENOSPC);
	assert_string_equal(out, "");
	assert_int_equal(decode_frame(f.b, f.len, out, 0), -EINVAL);
	assert_int_equal(decode_frame(f.b, f.len, NULL, 10), -EINVAL);
	assert_int_equal(decode_frame(NULL, 0, big, sizeof(big)), 0);
	assert_string_equal(big, "truncated ethernet (0 bytes)");
	decode_tcp_flags(0xff, flags, sizeof(flags));
	assert_string_equal(flags, "FSRP.UEW");
	decode_tcp_flags(0xff, flags, 3);
	assert_string_equal(flags, "FS");
}

/* ---- robustness ---- */

/* Decodes data[0..len) from an exact-size copy, in both modes, checking the line. */
static void decode_exact(const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct decoded_pkt d;
	char out[256];
	int rc;

	assert_non_null(copy);
	memcpy(copy, data, len);
	rc = decode_frame_ex(copy, len, DECODE_F_ETH | DECODE_F_VERBOSE, out, sizeof(out));
	assert_true(rc == 0 || rc == -ENOSPC);
	assert_true(strlen(out) < sizeof(out));
	rc = decode_frame(copy, len, out, 24);
	assert_true(rc == 0 || rc == -ENOSPC);
	assert_int_equal(decode_parse(copy, len, &d), 0);
	free(copy);
}

struct corpus_ctx {
	size_t frames;
	size_t index; /* frame index within the file */
};

static int corpus_frame(void *ctx, const uint8_t *frame, size_t len, size_t wire_len)
{
	struct corpus_ctx *c = ctx;
	size_t i;

	decode_exact(frame, len);
	/* every prefix of the first frames of each file */
	if (c->index < 3)
		for (i = 0; i < len; i++)
			decode_exact(frame, i);
	c->index++;
	c->frames++;
	return 0;
}

static void test_corpus(void **state)
{
	struct corpus_ctx c = { 0 };
	char err[512];
	glob_t g;
	size_t i;
	int rc;

	if (glob(CORPUS_GLOB, 0, NULL, &g))
		SHARED_MISSING(CORPUS_GLOB);
	for (i = 0; i < g.gl_pathc; i++) {
		c.index = 0;
		rc = pb_pcap_foreach(g.gl_pathv[i], corpus_frame, &c, err, sizeof(err));
		/* a pcap cut mid-record is still decoded as far as it goes */
		if (rc && rc != -EIO && rc != -EPROTONOSUPPORT) {
			print_error("%s: %s\n", g.gl_pathv[i], err);
			fail();
		}
	}
	print_message("decoded %zu corpus frames from %zu files\n", c.frames, g.gl_pathc);
	assert_true(c.frames > 1000);
	globfree(&g);
}

static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static size_t build_samples(struct frame *v)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(192, 0, 2, 1), PB_IP4(192, 0, 2, 2));
	struct pb_ipv4 in = pb_ipv4_hdr(A, B);
	struct pb_udp u = { .sport = 5, .dport = 4789, .len = PB_AUTO };
	struct pb_ipv6 ip6 = pb_ipv6_hdr(ll1, mc1);
	struct pb_icmp c6 = { .type = 1, .code = 4 };
	struct pb_tcp t = pb_tcp_hdr(1, 2, PB_TCP_SYN);
	struct pb_pkt p;
	size_t n = 0;

	v[n++] = tcp4(A, B, 1, 2, PB_TCP_SYN, 0, 0, "data");
	v[n++] = udp4(A, B, 1, 6081, "\x00\x00\x65\x58\x00\x00\x01\x00"
				     "0123456789abcdef0123456789");
	pb_init(&p, v[n].b, sizeof(v[n].b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_vlan(&p, PB_ETH_P_8021AD, 1, 0, PB_AUTO);
	pb_vlan(&p, PB_ETH_P_8021Q, 2, 0, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_vxlan(&p, 9);
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &in);
	pb_tcp(&p, &t);
	finish(&v[n++], &p);
	pb_init(&p, v[n].b, sizeof(v[n].b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv6(&p, &ip6);
	pb_ipv6_ext(&p, 0, NULL, 0);
	pb_ipv6_ext(&p, 43, (const uint8_t[]){ 0, 1, 0, 0, 0, 0 }, 6);
	pb_icmp6(&p, &c6);
	pb_ipv6(&p, &ip6);
	pb_udp(&p, &u);
	finish(&v[n++], &p);
	pb_init(&p, v[n].b, sizeof(v[n].b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_gre(&p, PB_AUTO);
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_arp(&p, &(struct pb_arp){ .op = 1 });
	finish(&v[n++], &p);
	pb_init(&p, v[n].b, sizeof(v[n].b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_icmp4_error(&p, 3, 3, 0, v[0].b + 14, v[0].len - 14);
	finish(&v[n++], &p);
	pb_init(&p, v[n].b, sizeof(v[n].b));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_sctp(&p, &(struct pb_sctp){ .chunk_type = 0, .chunk_value_len = 12,
				       .chunk_value = (const uint8_t *)"0123456789ab" });
	finish(&v[n++], &p);
	return n;
}

static void test_prefixes_and_mutations(void **state)
{
	struct frame v[8], m;
	uint32_t seed = 0x12345678;
	size_t n = build_samples(v), i, j, k;
	uint8_t junk[300];

	for (i = 0; i < n; i++)
		for (j = 0; j <= v[i].len; j++)
			decode_exact(v[i].b, j);
	/* mutated samples: a few random bytes overwritten, random cut */
	for (k = 0; k < 20000; k++) {
		m = v[k % n];
		for (j = 0; j < 1 + xorshift(&seed) % 4; j++)
			m.b[xorshift(&seed) % m.len] = (uint8_t)xorshift(&seed);
		m.len = m.len - xorshift(&seed) % (m.len / 2 + 1);
		decode_exact(m.b, m.len);
	}
	/* garbage behind plausible EtherTypes */
	for (k = 0; k < 20000; k++) {
		size_t len = xorshift(&seed) % sizeof(junk);
		static const uint16_t types[] = { 0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x1234 };

		for (j = 0; j < len; j++)
			junk[j] = (uint8_t)xorshift(&seed);
		if (len >= 14) {
			junk[12] = types[k % 6] >> 8;
			junk[13] = types[k % 6] & 0xff;
		}
		if (len >= 15 && (k & 1))
			junk[14] = (uint8_t)((junk[14] & 0x0f) | 0x40);
		decode_exact(junk, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_udp_and_tunnels),
		cmocka_unit_test(test_icmp),
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_vlan_frag_sctp_misc),
		cmocka_unit_test(test_truncated_and_malformed),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_output_buffer),
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_prefixes_and_mutations),
	};

	return cmocka_run_group_tests_name("decode", tests, NULL, NULL);
}
