// SPDX-License-Identifier: Apache-2.0
/*
 * Packet builder tests: checksums against known-good vectors (RFC 1071, published IPv4 and
 * CRC32c check values, the example pcap, and real captures whose checksums tcpdump reports
 * correct), layer completion, truncation, fragments, pcap I/O, and the golden generator
 * producing identical bytes on every run (and matching the committed files).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <pcap/dlt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pktbuild.h"
#include "shared_files.h"

#define CORPUS "../shared/corpus/pcaps"
#define EXAMPLE_PCAP "../shared/examples/web-to-db.pcap"

static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t mac_b[6] = { 0x02, 0, 0, 0, 0, 0x02 };

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Independent verification: the one's-complement sum over the data including the checksum
 * field must be 0xffff (RFC 1071 section 1). Written separately from the builder's code. */
static uint16_t ocsum(const uint8_t *p, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Verifies the IPv4 header and TCP/UDP/ICMP(v6) checksums of an Ethernet frame (no VLAN, no
 * IPv6 extension headers). Returns 0 if all valid, -1 if one is wrong, 1 if not checkable. */
static int verify_frame(const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + 14, *l4;
	uint32_t ph = 0;
	size_t hl, l4len;
	uint8_t proto;

	if (len < 14 + 20)
		return 1;
	if (rd16(f + 12) == 0x0800) {
		hl = (size_t)(ip[0] & 0x0f) * 4;
		if (hl < 20 || 14 + hl > len || rd16(ip + 2) > len - 14)
			return 1;
		if (ocsum(ip, hl, 0) != 0xffff)
			return -1;
		if (rd16(ip + 6) & 0x3fff)
			return 0; /* fragment: L4 checksum spans the datagram */
		proto = ip[9];
		l4 = ip + hl;
		l4len = rd16(ip + 2) - hl;
		ph = ocsum(ip + 12, 8, 0) + proto + (uint32_t)l4len;
		if (proto == 1)
			ph = 0;
	} else if (rd16(f + 12) == 0x86dd && len >= 14 + 40) {
		proto = ip[6];
		l4 = ip + 40;
		l4len = rd16(ip + 4);
		if (40 + l4len > len - 14)
			return 1;
		ph = ocsum(ip + 8, 32, 0) + proto + (uint32_t)l4len;
	} else {
		return 1;
	}
	if (proto == 17 && l4len >= 8 && rd16(l4 + 6) == 0 && rd16(f + 12) == 0x0800)
		return 0; /* no UDP checksum */
	if (proto != 6 && proto != 17 && proto != 1 && proto != 58)
		return 0;
	return ocsum(l4, l4len, ph) == 0xffff ? 0 : -1;
}

/* ---- known vectors ---- */

static void test_csum_rfc1071(void **state)
{
	/* RFC 1071 section 3 example: the sum of these words is 0xddf2 */
	static const uint8_t v[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };

	assert_int_equal(pb_csum_partial(v, sizeof(v), 0), 0x2ddf0);
	assert_int_equal(pb_csum_fold(0x2ddf0), (uint16_t)~0xddf2);
	assert_int_equal(pb_csum(v, sizeof(v)), (uint16_t)~0xddf2);
	/* odd length: the last byte is padded with zero on the right */
	assert_int_equal(pb_csum((const uint8_t[]){ 0x01 }, 1), (uint16_t)~0x0100);
}

static void test_csum_ipv4_header_vector(void **state)
{
	/* the widely published example header 192.168.0.1 -> 192.168.0.199, checksum 0xb861 */
	uint8_t h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			  0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };

	assert_int_equal(pb_csum(h, sizeof(h)), 0xb861);
	h[10] = 0x12;
	pb_ipv4_fix_csum(h, sizeof(h));
	assert_int_equal(rd16(h + 10), 0xb861);
}

static void test_crc32c_vector(void **state)
{
	/* the CRC-32C check value (RFC 3720 / iSCSI test pattern "123456789") */
	assert_int_equal(pb_crc32c("123456789", 9), 0xe3069283);
	/* RFC 3720 B.4: 32 bytes of zeros -> 0x8a9136aa */
	assert_int_equal(pb_crc32c((const uint8_t[32]){ 0 }, 32), 0x8a9136aa);
}

/* Builds the SYN of the example pcap; the others differ in flags/seq/payload. */
static int build_example(uint8_t *buf, size_t cap, uint16_t sport, uint16_t dport, uint8_t flags,
			 uint32_t seq, uint32_t ack, const void *data, size_t dlen)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(10, 244, 0, 21), PB_IP4(10, 244, 0, 22));
	struct pb_tcp t = pb_tcp_hdr(sport, dport, flags);
	struct pb_pkt p;

	t.seq = seq;
	t.ack = ack;
	pb_init(&p, buf, cap);
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	if (dlen)
		pb_bytes(&p, data, dlen);
	return pb_finish(&p);
}

static void test_example_pcap_bytes(void **state)
{
	static const uint8_t data[] = { 0x51, 0x00, 0x00, 0x00, 0x05 };
	struct pb_frame *fr;
	char err[256];
	uint8_t buf[128];
	size_t n;
	int len;

	NEED_SHARED(EXAMPLE_PCAP);
	assert_int_equal(pb_pcap_read(EXAMPLE_PCAP, &fr, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	len = build_example(buf, sizeof(buf), 41000, 5432, PB_TCP_SYN, 100, 0, NULL, 0);
	assert_int_equal(len, fr[0].len);
	assert_memory_equal(buf, fr[0].data, fr[0].len);
	len = build_example(buf, sizeof(buf), 41000, 5432, PB_TCP_ACK, 101, 9001, NULL, 0);
	assert_int_equal(len, fr[1].len);
	assert_memory_equal(buf, fr[1].data, fr[1].len);
	len = build_example(buf, sizeof(buf), 41000, 5432, PB_TCP_PSH | PB_TCP_ACK, 101, 9001,
			    data, sizeof(data));
	assert_int_equal(len, fr[2].len);
	assert_memory_equal(buf, fr[2].data, fr[2].len);
	len = build_example(buf, sizeof(buf), 41001, 80, PB_TCP_SYN, 500, 0, NULL, 0);
	assert_int_equal(len, fr[3].len);
	assert_memory_equal(buf, fr[3].data, fr[3].len);
	pb_frames_free(fr, n);
}

static void test_zeek_tcp_syn_rebuilt(void **state)
{
	/* zeek chksums_ip4-tcp-good-chksum.pcap: 127.0.0.1:30000 > :80 SYN, cksum 0x1c60 */
	static const char path[] = CORPUS "/zeek/chksums_ip4-tcp-good-chksum.pcap";
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(127, 0, 0, 1), PB_IP4(127, 0, 0, 1));
	struct pb_tcp t = pb_tcp_hdr(30000, 80, PB_TCP_SYN);
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, zero[6] = { 0 };
	struct pb_frame *fr;
	uint8_t buf[64];
	struct pb_pkt p;
	char err[256];
	size_t n;

	NEED_SHARED(path);
	assert_int_equal(pb_pcap_read(path, &fr, &n, err, sizeof(err)), 0);
	assert_true(n >= 1);
	ip.frag = 0;
	t.window = 8192;
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, bcast, zero, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	assert_int_equal(pb_finish(&p), 54);
	assert_int_equal(rd16(buf + 14 + 20 + 16), 0x1c60);
	assert_true(fr[0].len >= 54);
	assert_memory_equal(buf, fr[0].data, 54);
	pb_frames_free(fr, n);
}

/* Recomputes the L4 checksums of real captures with the builder's functions. */
static void check_corpus_l4(const char *file, bool good)
{
	bool v4 = strstr(file, "_ip4-") != NULL;
	char path[512], err[256];
	struct pb_frame *fr;
	size_t n, i, checked = 0;

	snprintf(path, sizeof(path), CORPUS "/zeek/%s", file);
	if (access(path, R_OK))
		return;
	assert_int_equal(pb_pcap_read(path, &fr, &n, err, sizeof(err)), 0);
	for (i = 0; i < n; i++) {
		uint8_t *f = fr[i].data, *ip = f + 14, *l4, saved[2];
		size_t len = fr[i].len, l4len, coff;
		uint16_t c = 0;
		uint8_t proto;

		if (len < 14 + 20 + 8 || rd16(f + 12) != (v4 ? 0x0800 : 0x86dd))
			continue;
		if (v4) {
			proto = ip[9];
			l4 = ip + (ip[0] & 0x0f) * 4;
			l4len = rd16(ip + 2) - (size_t)(ip[0] & 0x0f) * 4;
		} else {
			proto = ip[6];
			l4 = ip + 40;
			l4len = rd16(ip + 4);
		}
		if (l4 + l4len > f + len)
			continue;
		coff = proto == 6 ? 16 : proto == 17 ? 6 : 2;
		memcpy(saved, l4 + coff, 2);
		memset(l4 + coff, 0, 2);
		if (v4 && proto == 1) {
			c = pb_csum(l4, l4len);
		} else if (v4) {
			uint32_t sa, da;

			memcpy(&sa, ip + 12, 4);
			memcpy(&da, ip + 16, 4);
			c = pb_l4_csum4(sa, da, proto, l4, l4len);
		} else {
			c = pb_l4_csum6(ip + 8, ip + 24, proto, l4, l4len);
		}
		if (good)
			assert_int_equal(c, rd16(saved));
		else
			assert_int_not_equal(c, rd16(saved));
		checked++;
	}
	assert_true(checked > 0);
	pb_frames_free(fr, n);
}

static void test_corpus_checksums(void **state)
{
	NEED_SHARED(CORPUS "/zeek");
	check_corpus_l4("chksums_ip4-tcp-good-chksum.pcap", true);
	check_corpus_l4("chksums_ip4-udp-good-chksum.pcap", true);
	check_corpus_l4("chksums_ip4-icmp-good-chksum.pcap", true);
	check_corpus_l4("chksums_ip6-tcp-good-chksum.pcap", true);
	check_corpus_l4("chksums_ip6-udp-good-chksum.pcap", true);
	check_corpus_l4("chksums_ip6-icmp6-good-chksum.pcap", true);
	check_corpus_l4("chksums_ip4-tcp-bad-chksum.pcap", false);
	check_corpus_l4("chksums_ip4-udp-bad-chksum.pcap", false);
	check_corpus_l4("chksums_ip4-icmp-bad-chksum.pcap", false);
	check_corpus_l4("chksums_ip6-tcp-bad-chksum.pcap", false);
	check_corpus_l4("chksums_ip6-udp-bad-chksum.pcap", false);
	check_corpus_l4("chksums_ip6-icmp6-bad-chksum.pcap", false);
}

static void test_corpus_sctp_crc(void **state)
{
	static const char path[] = CORPUS "/suricata/decode-sctp-01_input.pcap";
	struct pb_frame *fr;
	char err[256];
	size_t n, i, checked = 0;

	NEED_SHARED(path);
	assert_int_equal(pb_pcap_read(path, &fr, &n, err, sizeof(err)), 0);
	for (i = 0; i < n; i++) {
		uint8_t *ip = fr[i].data + 14, *s;
		size_t hl, slen;
		uint32_t stored;

		if (fr[i].len < 14 + 20 + 12 || rd16(fr[i].data + 12) != 0x0800 || ip[9] != 132)
			continue;
		hl = (size_t)(ip[0] & 0x0f) * 4;
		slen = rd16(ip + 2) - hl;
		s = ip + hl;
		if (14 + hl + slen > fr[i].len)
			continue;
		stored = (uint32_t)s[8] | (uint32_t)s[9] << 8 | (uint32_t)s[10] << 16 |
			 (uint32_t)s[11] << 24;
		memset(s + 8, 0, 4);
		assert_int_equal(pb_crc32c(s, slen), stored);
		checked++;
	}
	assert_true(checked > 0);
	pb_frames_free(fr, n);
}

/* ---- builder behaviour ---- */

static void test_udp_icmp_checksums(void **state)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(10, 0, 0, 1), PB_IP4(10, 0, 0, 2));
	struct pb_udp u = { .sport = 1000, .dport = 53, .len = PB_AUTO };
	struct pb_icmp c = { .type = PB_ICMP_ECHO, .rest = 0x00070001 };
	uint8_t buf[128];
	struct pb_pkt p;
	int len;

	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_bytes(&p, "abc", 3); /* odd length */
	len = pb_finish(&p);
	assert_int_equal(len, 14 + 20 + 8 + 3);
	assert_int_equal(rd16(buf + 12), 0x0800);
	assert_int_equal(buf[14 + 9], 17);
	assert_int_equal(rd16(buf + 14 + 2), 31);
	assert_int_equal(rd16(buf + 34 + 4), 11);
	assert_int_equal(verify_frame(buf, (size_t)len), 0);

	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_icmp4(&p, &c);
	pb_bytes(&p, "pingdata", 8);
	len = pb_finish(&p);
	assert_int_equal(buf[14 + 9], 1);
	assert_int_equal(verify_frame(buf, (size_t)len), 0);

	/* bad checksums on request */
	c.bad_csum = true;
	ip.bad_csum = true;
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_icmp4(&p, &c);
	len = pb_finish(&p);
	assert_int_not_equal(ocsum(buf + 14, 20, 0), 0xffff);
	assert_int_not_equal(ocsum(buf + 34, 8, 0), 0xffff);

	/* UDP without checksum */
	ip.bad_csum = false;
	u.no_csum = true;
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	len = pb_finish(&p);
	assert_int_equal(rd16(buf + 34 + 6), 0);
	assert_int_equal(verify_frame(buf, (size_t)len), 0);
}

static void test_ipv6_ext_and_icmp6(void **state)
{
	static const uint8_t s6[16] = { 0xfe, 0x80, [15] = 1 }, d6[16] = { 0xff, 0x02, [15] = 1 };
	static const uint8_t ra[] = { 0x05, 0x02, 0x00, 0x00 };
	struct pb_ipv6 ip = pb_ipv6_hdr(s6, d6);
	struct pb_icmp c = { .type = PB_ICMP6_ECHO_REQUEST, .rest = 0x00010001 };
	struct pb_tcp t = pb_tcp_hdr(1, 2, PB_TCP_SYN);
	uint8_t buf[256], *h;
	struct pb_pkt p;
	int len;

	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv6(&p, &ip);
	pb_icmp6(&p, &c);
	pb_bytes(&p, "hello", 5);
	len = pb_finish(&p);
	assert_int_equal(len, 14 + 40 + 8 + 5);
	assert_int_equal(rd16(buf + 12), 0x86dd);
	assert_int_equal(buf[14 + 6], 58);
	assert_int_equal(rd16(buf + 14 + 4), 13);
	assert_int_equal(verify_frame(buf, (size_t)len), 0);

	/* hop-by-hop (padded to 8), routing, destination options, fragment, then TCP */
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv6(&p, &ip);
	pb_ipv6_ext(&p, 0, ra, sizeof(ra));
	pb_ipv6_ext(&p, 43, (const uint8_t[]){ 0, 0, 0, 0, 0, 0 }, 6);
	pb_ipv6_ext(&p, 60, NULL, 0);
	pb_ipv6_frag(&p, 0, true, 0xabcd);
	pb_tcp(&p, &t);
	len = pb_finish(&p);
	assert_int_equal(len, 14 + 40 + 8 + 8 + 8 + 8 + 20);
	h = buf + 14;
	assert_int_equal(h[6], 0);	      /* -> hop-by-hop */
	assert_int_equal(h[40], 43);	      /* -> routing */
	assert_int_equal(h[41], 0);	      /* 8 bytes */
	assert_memory_equal(h + 42, ra, 4);
	assert_int_equal(h[46], 0x01); /* PadN of 2 bytes */
	assert_int_equal(h[47], 0);
	assert_int_equal(h[48], 60);	      /* -> destination options */
	assert_int_equal(h[56], 44);	      /* -> fragment */
	assert_int_equal(h[58], 0x01);	      /* PadN of 6 bytes */
	assert_int_equal(h[59], 4);
	assert_int_equal(h[64], 6);	      /* -> TCP */
	assert_int_equal(rd16(h + 66), 0x0001); /* offset 0, M */
	assert_int_equal(rd16(h + 4), 32 + 20);
	/* the TCP checksum uses the IPv6 pseudo-header over the TCP segment only */
	assert_int_equal(ocsum(h + 72, 20, ocsum(h + 8, 32, 0) + 6 + 20), 0xffff);
}

static void test_sctp_and_arp(void **state)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(10, 0, 0, 1), PB_IP4(10, 0, 0, 2));
	struct pb_sctp s = { .sport = 5000, .dport = 5001, .vtag = 0x11223344, .chunk_type = 1,
			     .chunk_value = (const uint8_t *)"abcde", .chunk_value_len = 5 };
	struct pb_arp a = { .op = PB_ARP_REQUEST, .spa = PB_IP4(10, 0, 0, 1),
			    .tpa = PB_IP4(10, 0, 0, 2) };
	uint8_t buf[128], *sc;
	struct pb_pkt p;
	uint32_t crc;
	int len;

	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_sctp(&p, &s);
	len = pb_finish(&p);
	assert_int_equal(len, 14 + 20 + 12 + 4 + 8);
	assert_int_equal(buf[14 + 9], 132);
	sc = buf + 34;
	assert_int_equal(rd16(sc + 14), 9); /* chunk length excludes padding */
	crc = (uint32_t)sc[8] | (uint32_t)sc[9] << 8 | (uint32_t)sc[10] << 16 |
	      (uint32_t)sc[11] << 24;
	memset(sc + 8, 0, 4);
	assert_int_equal(pb_crc32c(sc, 24), crc);

	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_arp(&p, &a);
	len = pb_finish(&p);
	assert_int_equal(len, 42);
	assert_int_equal(rd16(buf + 12), 0x0806);
	assert_int_equal(rd16(buf + 14), 1);
	assert_int_equal(rd16(buf + 16), 0x0800);
	assert_int_equal(rd16(buf + 20), 1);
	assert_memory_equal(buf + 28, ((const uint8_t[]){ 10, 0, 0, 1 }), 4);
	assert_memory_equal(buf + 38, ((const uint8_t[]){ 10, 0, 0, 2 }), 4);
}

static void test_vlan_and_tunnels(void **state)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(192, 0, 2, 1), PB_IP4(192, 0, 2, 2));
	struct pb_ipv4 in = pb_ipv4_hdr(PB_IP4(10, 0, 0, 1), PB_IP4(10, 0, 0, 2));
	struct pb_udp u = { .sport = 40000, .dport = 4789, .len = PB_AUTO };
	struct pb_tcp t = pb_tcp_hdr(1234, 80, PB_TCP_SYN);
	uint8_t buf[256];
	struct pb_pkt p;
	int len;

	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_vlan(&p, PB_ETH_P_8021AD, 200, 3, PB_AUTO);
	pb_vlan(&p, PB_ETH_P_8021Q, 100, 0, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	len = pb_finish(&p);
	assert_int_equal(len, 14 + 8 + 40);
	assert_int_equal(rd16(buf + 12), 0x88a8);
	assert_int_equal(rd16(buf + 14), 3 << 13 | 200);
	assert_int_equal(rd16(buf + 16), 0x8100);
	assert_int_equal(rd16(buf + 18), 100);
	assert_int_equal(rd16(buf + 20), 0x0800);

	/* VXLAN: outer UDP length and checksum cover the finished inner frame */
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_vxlan(&p, 42);
	pb_eth(&p, mac_b, mac_a, PB_AUTO);
	pb_ipv4(&p, &in);
	pb_tcp(&p, &t);
	len = pb_finish(&p);
	assert_int_equal(len, 14 + 20 + 8 + 8 + 14 + 20 + 20);
	assert_int_equal(rd16(buf + 34 + 4), 8 + 8 + 54);
	assert_int_equal(buf[42], 0x08);
	assert_int_equal(buf[42 + 6], 42);
	assert_int_equal(verify_frame(buf, (size_t)len), 0);
	assert_int_equal(verify_frame(buf + 50, (size_t)len - 50), 0);

	/* GRE with IPv4 inside: protocol fields filled in from the next layer */
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_gre(&p, PB_AUTO);
	pb_ipv4(&p, &in);
	pb_tcp(&p, &t);
	len = pb_finish(&p);
	assert_int_equal(buf[14 + 9], 47);
	assert_int_equal(rd16(buf + 34 + 2), 0x0800);
	assert_int_equal(rd16(buf + 14 + 2), 20 + 4 + 40);
}

static void test_ipv4_options_and_overrides(void **state)
{
	static const uint8_t ra[] = { 0x94, 0x04, 0x00, 0x00 };
	static const uint8_t nop3[] = { 1, 1, 1 };
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(10, 0, 0, 1), PB_IP4(10, 0, 0, 2));
	struct pb_tcp t = pb_tcp_hdr(1, 2, PB_TCP_SYN);
	uint8_t buf[128];
	struct pb_pkt p;
	int len;

	ip.options = ra;
	ip.options_len = sizeof(ra);
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	len = pb_finish(&p);
	assert_int_equal(buf[14], 0x46);
	assert_memory_equal(buf + 34, ra, 4);
	assert_int_equal(rd16(buf + 16), 44);
	assert_int_equal(verify_frame(buf, (size_t)len), 0);

	/* options padded with EOL to 4 bytes; TCP options too */
	ip.options = nop3;
	ip.options_len = 3;
	t.options = nop3;
	t.options_len = 3;
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	len = pb_finish(&p);
	assert_int_equal(len, 14 + 24 + 24);
	assert_int_equal(buf[14 + 23], 0);
	assert_int_equal(buf[38 + 12] >> 4, 6);
	assert_int_equal(verify_frame(buf, (size_t)len), 0);

	/* forced IHL / version / total length, TTL, id and flags */
	ip = pb_ipv4_hdr(PB_IP4(10, 0, 0, 1), PB_IP4(10, 0, 0, 2));
	ip.ihl = 4;
	ip.version = 5;
	ip.tot_len = 1500;
	ip.ttl = 1;
	ip.id = 0x1234;
	ip.frag = PB_IP_MF | 3;
	ip.proto = 99;
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	len = pb_finish(&p);
	assert_int_equal(len, 34);
	assert_int_equal(buf[14], 0x54);
	assert_int_equal(rd16(buf + 16), 1500);
	assert_int_equal(rd16(buf + 18), 0x1234);
	assert_int_equal(rd16(buf + 20), 0x2003);
	assert_int_equal(buf[22], 1);
	assert_int_equal(buf[23], 99);
}

static void test_truncate(void **state)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(10, 0, 0, 1), PB_IP4(10, 0, 0, 2));
	struct pb_tcp t = pb_tcp_hdr(1, 2, PB_TCP_SYN);
	uint8_t buf[128];
	struct pb_pkt p;
	int len;

	/* before finish: IP consistent, TCP header cut */
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	pb_bytes(&p, "data", 4);
	assert_int_equal(pb_truncate(&p, 14 + 20 + 12), 0);
	len = pb_finish(&p);
	assert_int_equal(len, 46);
	assert_int_equal(rd16(buf + 16), 32);
	assert_int_equal(buf[23], 6);
	assert_int_equal(ocsum(buf + 14, 20, 0), 0xffff);

	/* after finish: a raw cut, headers still claim the full length */
	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_tcp(&p, &t);
	assert_int_equal(pb_finish(&p), 54);
	assert_int_equal(pb_truncate(&p, 20), 0);
	assert_int_equal(p.len, 20);
	assert_int_equal(rd16(buf + 16), 40);
	assert_int_equal(pb_truncate(&p, 100), 0); /* never grows */
	assert_int_equal(p.len, 20);
}

static void test_fragments(void **state)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(10, 0, 0, 1), PB_IP4(10, 0, 0, 2));
	struct pb_udp u = { .sport = 1, .dport = 53, .len = PB_AUTO };
	uint8_t whole[256], f1[256], f2[256];
	struct pb_pkt p;
	int len, n1, n2;

	ip.id = 7;
	pb_init(&p, whole, sizeof(whole));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &ip);
	pb_udp(&p, &u);
	pb_fill(&p, 'z', 92);
	len = pb_finish(&p);
	assert_int_equal(len, 14 + 20 + 100);

	n1 = pb_ipv4_fragment(whole, (size_t)len, 14, 0, 48, true, f1, sizeof(f1));
	n2 = pb_ipv4_fragment(whole, (size_t)len, 14, 48, 52, false, f2, sizeof(f2));
	assert_int_equal(n1, 14 + 20 + 48);
	assert_int_equal(n2, 14 + 20 + 52);
	assert_int_equal(rd16(f1 + 20), PB_IP_MF); /* DF cleared, offset 0 */
	assert_int_equal(rd16(f2 + 20), 6);	     /* 48 / 8 */
	assert_int_equal(rd16(f1 + 16), 68);
	assert_int_equal(rd16(f2 + 16), 72);
	assert_int_equal(rd16(f2 + 18), 7);
	assert_int_equal(ocsum(f1 + 14, 20, 0), 0xffff);
	assert_int_equal(ocsum(f2 + 14, 20, 0), 0xffff);
	/* reassembled payload is the original datagram */
	assert_memory_equal(f1 + 34, whole + 34, 48);
	assert_memory_equal(f2 + 34, whole + 34 + 48, 52);
	/* bad arguments */
	assert_int_equal(pb_ipv4_fragment(whole, (size_t)len, 14, 4, 8, true, f1, sizeof(f1)),
			 -EINVAL);
	assert_int_equal(pb_ipv4_fragment(whole, (size_t)len, 14, 96, 8, true, f1, sizeof(f1)),
			 -EINVAL);
	assert_int_equal(pb_ipv4_fragment(whole, (size_t)len, 14, 0, 48, true, f1, 40), -ENOSPC);
}

static void test_icmp_error_quote(void **state)
{
	struct pb_ipv4 outer = pb_ipv4_hdr(PB_IP4(192, 0, 2, 2), PB_IP4(10, 0, 0, 1));
	struct pb_ipv4 inner = pb_ipv4_hdr(PB_IP4(10, 0, 0, 1), PB_IP4(10, 0, 1, 1));
	struct pb_tcp t = pb_tcp_hdr(80, 43000, PB_TCP_SYN | PB_TCP_ACK);
	uint8_t q[128], buf[256];
	struct pb_pkt p;
	int qlen, len;

	pb_init(&p, q, sizeof(q));
	pb_ipv4(&p, &inner);
	pb_tcp(&p, &t);
	pb_bytes(&p, "payload", 7);
	qlen = pb_finish(&p);
	assert_int_equal(qlen, 47);

	pb_init(&p, buf, sizeof(buf));
	pb_eth(&p, mac_a, mac_b, PB_AUTO);
	pb_ipv4(&p, &outer);
	pb_icmp4_error(&p, PB_ICMP_DEST_UNREACH, 1, 0, q, (size_t)qlen);
	len = pb_finish(&p);
	assert_int_equal(len, 14 + 20 + 8 + 28);
	assert_int_equal(buf[34], 3);
	assert_int_equal(buf[35], 1);
	assert_memory_equal(buf + 42, q, 28);
	assert_int_equal(verify_frame(buf, (size_t)len), 0);
}

static void test_errors_sticky(void **state)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(10, 0, 0, 1), PB_IP4(10, 0, 0, 2));
	uint8_t buf[20];
	struct pb_pkt p;

	pb_init(&p, buf, sizeof(buf));
	assert_int_equal(pb_eth(&p, mac_a, mac_b, PB_AUTO), 0);
	assert_int_equal(pb_ipv4(&p, &ip), -ENOSPC);
	assert_int_equal(pb_bytes(&p, "x", 1), -ENOSPC); /* sticky even though it would fit */
	assert_int_equal(pb_finish(&p), -ENOSPC);

	pb_init(&p, buf, sizeof(buf));
	ip.options_len = 41;
	assert_int_equal(pb_ipv4(&p, &ip), -EINVAL);
	pb_init(&p, buf, sizeof(buf));
	assert_int_equal(pb_ipv6_ext(&p, 17, NULL, 0), -EINVAL);
}

static void test_macs(void **state)
{
	uint8_t m[6];

	pb_pod_mac(PB_IP4(10, 244, 0, 21), m);
	assert_memory_equal(m, ((const uint8_t[]){ 0x0a, 0x58, 10, 244, 0, 21 }), 6);
	pb_gw_mac(PB_IP4(10, 244, 0, 21), m);
	assert_memory_equal(m, ((const uint8_t[]){ 0x0e, 0x58, 10, 244, 0, 21 }), 6);
}

static void test_pcap_roundtrip(void **state)
{
	char path[] = "/tmp/pktbuild-test-XXXXXX", perr[PCAP_ERRBUF_SIZE], err[256];
	const uint8_t f0[] = { 1, 2, 3 }, f1[60] = { 9 };
	const uint8_t *frames[] = { f0, f1 };
	const size_t lens[] = { sizeof(f0), sizeof(f1) };
	struct pcap_pkthdr *h;
	const u_char *data;
	struct pb_frame *fr;
	pcap_t *pc;
	size_t n;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pb_pcap_write_file(path, frames, lens, 2), 0);
	assert_int_equal(pb_pcap_read(path, &fr, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(fr[0].len, 3);
	assert_memory_equal(fr[0].data, f0, 3);
	assert_int_equal(fr[1].len, 60);
	assert_int_equal(fr[1].wire_len, 60);
	pb_frames_free(fr, n);

	pc = pcap_open_offline(path, perr);
	assert_non_null(pc);
	assert_int_equal(pcap_datalink(pc), DLT_EN10MB);
	assert_int_equal(pcap_next_ex(pc, &h, &data), 1);
	assert_int_equal(h->ts.tv_sec, 1700000000);
	assert_int_equal(h->ts.tv_usec, 0);
	assert_int_equal(pcap_next_ex(pc, &h, &data), 1);
	assert_int_equal(h->ts.tv_sec, 1700000001);
	pcap_close(pc);

	assert_int_equal(pb_pcap_read("/nonexistent/x.pcap", &fr, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/nonexistent/x.pcap"));
	unlink(path);
}

/* ---- the generator ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	struct stat st;
	FILE *f;

	*data = NULL;
	if (stat(path, &st))
		return -errno;
	f = fopen(path, "rb");
	if (!f)
		return -errno;
	*data = malloc((size_t)st.st_size + 1);
	*len = fread(*data, 1, (size_t)st.st_size, f);
	fclose(f);
	return *len == (size_t)st.st_size ? 0 : -EIO;
}

/* Compares every file under a/sub with b/sub; returns the number of files compared. */
static size_t compare_dir(const char *a, const char *b, const char *sub, bool pcaps_valid)
{
	char pa[2 * PATH_MAX], pb[3 * PATH_MAX], da[PATH_MAX];
	uint8_t *x, *y;
	size_t lx, ly, n = 0, i;
	struct dirent *e;
	DIR *d;

	snprintf(da, sizeof(da), "%s/%s", a, sub);
	d = opendir(da);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(pa, sizeof(pa), "%s/%s", da, e->d_name);
		snprintf(pb, sizeof(pb), "%s/%s/%s", b, sub, e->d_name);
		assert_int_equal(read_file(pa, &x, &lx), 0);
		if (read_file(pb, &y, &ly)) {
			print_error("%s: missing (regenerate with `make pcaps`)\n", pb);
			fail();
		}
		if (lx != ly || memcmp(x, y, lx)) {
			print_error("%s differs from %s (regenerate with `make pcaps`)\n", pb, pa);
			fail();
		}
		if (pcaps_valid && strstr(e->d_name, ".out.pcap")) {
			struct pb_frame *fr;
			char err[256];
			size_t nf;

			assert_int_equal(pb_pcap_read(pa, &fr, &nf, err, sizeof(err)), 0);
			for (i = 0; i < nf; i++) {
				if (verify_frame(fr[i].data, fr[i].len) < 0) {
					print_error("%s: output packet %zu has a bad checksum\n", pa,
						    i + 1);
					fail();
				}
			}
			pb_frames_free(fr, nf);
		}
		free(x);
		free(y);
		n++;
	}
	closedir(d);
	return n;
}

static void test_generator_deterministic(void **state)
{
	char exe[PATH_MAX], gen[PATH_MAX + 32], cmd[3 * PATH_MAX];
	char t1[] = "/tmp/pktgen-a-XXXXXX", t2[] = "/tmp/pktgen-b-XXXXXX";
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	snprintf(gen, sizeof(gen), "%s/../bin/ciliate-pktgen", dirname(exe));
	if (access(gen, X_OK)) {
		print_message("skipping: %s not built\n", gen);
		skip();
	}
	assert_non_null(mkdtemp(t1));
	assert_non_null(mkdtemp(t2));
	snprintf(cmd, sizeof(cmd), "'%s' pcaps -o '%s' 2>/dev/null", gen, t1);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "'%s' pcaps -o '%s' 2>/dev/null", gen, t2);
	assert_int_equal(system(cmd), 0);

	assert_true(compare_dir(t1, t2, "pcaps/replay", true) >= 30);
	assert_true(compare_dir(t1, t2, "scenarios/replay", false) >= 15);
	/* the committed golden files are what the generator writes today */
	if (!access("pcaps/builder/gen_pcaps.c", R_OK)) {
		compare_dir(t1, ".", "pcaps/replay", false);
		compare_dir(t1, ".", "scenarios/replay", false);
	}
	rm_tree(t1);
	rm_tree(t2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_rfc1071),
		cmocka_unit_test(test_csum_ipv4_header_vector),
		cmocka_unit_test(test_crc32c_vector),
		cmocka_unit_test(test_example_pcap_bytes),
		cmocka_unit_test(test_zeek_tcp_syn_rebuilt),
		cmocka_unit_test(test_corpus_checksums),
		cmocka_unit_test(test_corpus_sctp_crc),
		cmocka_unit_test(test_udp_icmp_checksums),
		cmocka_unit_test(test_ipv6_ext_and_icmp6),
		cmocka_unit_test(test_sctp_and_arp),
		cmocka_unit_test(test_vlan_and_tunnels),
		cmocka_unit_test(test_ipv4_options_and_overrides),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_icmp_error_quote),
		cmocka_unit_test(test_errors_sticky),
		cmocka_unit_test(test_macs),
		cmocka_unit_test(test_pcap_roundtrip),
		cmocka_unit_test(test_generator_deterministic),
	};

	return cmocka_run_group_tests_name("pktbuild", tests, NULL, NULL);
}
