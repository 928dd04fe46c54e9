/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One-line, tcpdump-like decoding of Ethernet frames for replay output and flows:
 *
 *	10.244.0.21:41000 > 10.244.0.22:5432 TCP [S] seq 100 win 65535 len 0
 *	ARP who-has 10.0.0.1 tell 10.0.0.2
 *	IPv6 fe80::1 > ff02::1 ICMPv6 type 135
 *	VLAN 100 10.0.0.1:53 > 10.0.0.2:40000 UDP len 30
 *	IPv4 frag id 7 off 1480 10.0.0.1 > 10.0.0.2 UDP len 20
 *	192.0.2.1:40000 > 192.0.2.2:8472 VXLAN vni 42 [inner: 10.244.0.10 > 10.244.1.30 ICMP ...]
 *
 * Decoding never reads outside pkt[0..len) whatever the input; headers that do not fit say
 * "truncated", headers with impossible fields say "malformed". Tunnels (VXLAN, Geneve, GRE,
 * IP-in-IP) are decoded one level inside; ICMP errors show the quoted header.
 */
#ifndef CILIATE_DECODE_H
#define CILIATE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* decode_frame_ex() flags */
#define DECODE_F_ETH 0x1     /* prefix "src-mac > dst-mac, " */
#define DECODE_F_VERBOSE 0x2 /* IP ttl / id / flags / options length, IPv4 checksum check */

enum decode_tunnel {
	DECODE_TUN_NONE = 0,
	DECODE_TUN_VXLAN,
	DECODE_TUN_GENEVE,
	DECODE_TUN_GRE,
	DECODE_TUN_IPIP, /* IPv4 or IPv6 directly inside IPv4/IPv6 */
};

/* The outermost packet's headers, as far as they could be parsed. */
struct decoded_pkt {
	uint8_t dst_mac[6], src_mac[6];
	uint16_t ethertype; /* after VLAN tags; 0 when the Ethernet header is cut */
	uint8_t nvlan;	    /* number of 802.1Q/802.1ad tags */
	uint16_t vlan[2];   /* VIDs of the first two tags, outermost first */
	int family;	    /* AF_INET, AF_INET6, or 0 for non-IP */
	uint8_t saddr[16], daddr[16]; /* IPv4 in the first 4 bytes, network order */
	uint8_t ttl;	    /* TTL or hop limit */
	uint8_t ip_hlen;    /* IPv4 header length in bytes (options = ip_hlen - 20) */
	uint16_t ip_id;
	bool is_fragment;   /* fragment offset != 0 or more-fragments set */
	bool frag_more;
	uint16_t frag_off;  /* bytes */
	uint32_t frag_id;   /* IPv4 id or IPv6 fragment id */
	uint8_t proto;	    /* L4 protocol after IPv6 extension headers; 0 if not IP */
	bool has_ports;
	uint16_t sport, dport;
	uint8_t tcp_flags;
	uint32_t seq, ack;
	uint16_t window;
	uint8_t icmp_type, icmp_code;
	uint16_t arp_op;
	uint32_t payload_len; /* L4 payload bytes present in the frame */
	enum decode_tunnel tunnel;
	uint32_t vni;	    /* VXLAN / Geneve VNI, GRE key */
	bool truncated;	    /* some header (at any level) did not fit */
	bool malformed;	    /* some header had an impossible field */
};

/* Decodes frame pkt[0..len) into one line in out (always NUL-terminated when outlen > 0).
 * Returns 0, -ENOSPC if the line was cut to fit outlen, -EINVAL if out is NULL or outlen 0. */
int decode_frame(const uint8_t *pkt, size_t len, char *out, size_t outlen);

/* decode_frame() with DECODE_F_* flags. */
int decode_frame_ex(const uint8_t *pkt, size_t len, unsigned int flags, char *out,
		    size_t outlen);

/* Parses the outer headers of pkt into d (zeroed first). Returns 0 (check d->truncated /
 * d->malformed for bad input) or -EINVAL if pkt or d is NULL. */
int decode_parse(const uint8_t *pkt, size_t len, struct decoded_pkt *d);

/* TCP flags in tcpdump letters ("S.", "FP.", "none") into buf (at least 10 bytes). */
void decode_tcp_flags(uint8_t flags, char *buf, size_t buflen);

#endif
