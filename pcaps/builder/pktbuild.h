/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pktbuild: a small packet builder for golden pcaps and tests.
 *
 * A frame is built layer by layer into a caller buffer:
 *
 *	uint8_t buf[256];
 *	struct pb_pkt p;
 *	struct pb_ipv4 ip = pb_ipv4_hdr(PB_IP4(10, 244, 0, 10), PB_IP4(10, 244, 0, 20));
 *	struct pb_tcp tcp = pb_tcp_hdr(41000, 80, PB_TCP_SYN);
 *
 *	pb_init(&p, buf, sizeof(buf));
 *	pb_eth(&p, dmac, smac, PB_AUTO);
 *	pb_ipv4(&p, &ip);
 *	pb_tcp(&p, &tcp);
 *	pb_bytes(&p, "hello", 5);
 *	len = pb_finish(&p);
 *
 * Fields that depend on what follows (EtherType, IP protocol / next header, IP lengths, UDP
 * length, checksums) are filled in by pb_finish(), innermost layer first, unless the caller
 * forced them. Every layer extends to the end of the frame. Errors are sticky: the first
 * failing call records -errno in p->err, later calls do nothing and pb_finish() returns it.
 *
 * Addresses are in network byte order (use PB_IP4()); ports, ids and other numeric fields
 * are in host byte order.
 */
#ifndef CILIATE_PKTBUILD_H
#define CILIATE_PKTBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* IPv4 address a.b.c.d in network byte order, usable in constant expressions. */
#define PB_IP4(a, b, c, d)                                                              \
	((uint32_t)__builtin_bswap32(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) |   \
				     ((uint32_t)(c) << 8) | (uint32_t)(d)))

/* "Fill this field in from context" for the int fields documented as accepting it. */
#define PB_AUTO (-1)

#define PB_MAX_LAYERS 16

#define PB_ETH_P_IP 0x0800
#define PB_ETH_P_ARP 0x0806
#define PB_ETH_P_8021Q 0x8100
#define PB_ETH_P_8021AD 0x88a8
#define PB_ETH_P_IPV6 0x86dd
#define PB_ETH_P_TEB 0x6558 /* transparent Ethernet bridging (Ethernet in GRE/Geneve) */

/* IPv4 flags, as in the high bits of the fragment field. */
#define PB_IP_RF 0x8000
#define PB_IP_DF 0x4000
#define PB_IP_MF 0x2000
#define PB_IP_OFFMASK 0x1fff

#define PB_TCP_FIN 0x01
#define PB_TCP_SYN 0x02
#define PB_TCP_RST 0x04
#define PB_TCP_PSH 0x08
#define PB_TCP_ACK 0x10
#define PB_TCP_URG 0x20
#define PB_TCP_ECE 0x40
#define PB_TCP_CWR 0x80

#define PB_ICMP_ECHOREPLY 0
#define PB_ICMP_DEST_UNREACH 3
#define PB_ICMP_ECHO 8
#define PB_ICMP_TIME_EXCEEDED 11

#define PB_ICMP6_DEST_UNREACH 1
#define PB_ICMP6_PKT_TOOBIG 2
#define PB_ICMP6_TIME_EXCEEDED 3
#define PB_ICMP6_ECHO_REQUEST 128
#define PB_ICMP6_ECHO_REPLY 129
#define PB_ICMP6_NEIGH_SOLICIT 135
#define PB_ICMP6_NEIGH_ADVERT 136

#define PB_ARP_REQUEST 1
#define PB_ARP_REPLY 2

enum pb_layer_kind {
	PB_L_ETH = 1,
	PB_L_VLAN,
	PB_L_ARP,
	PB_L_IPV4,
	PB_L_IPV6,
	PB_L_IPV6_EXT, /* hop-by-hop, routing, destination options */
	PB_L_IPV6_FRAG,
	PB_L_TCP,
	PB_L_UDP,
	PB_L_ICMP4,
	PB_L_ICMP6,
	PB_L_SCTP,
	PB_L_VXLAN,
	PB_L_GENEVE,
	PB_L_GRE,
	PB_L_RAW, /* pb_bytes() / pb_fill() */
};

/* One header of the frame; private to the builder except for reading `off`. */
struct pb_layer {
	enum pb_layer_kind kind;
	size_t off;	 /* offset of the header in the frame */
	size_t hdr_len;	 /* bytes written by the layer call */
	int next;	 /* forced next-protocol value or PB_AUTO */
	int len_field;	 /* forced length field (IPv4 total, IPv6 payload, UDP) or PB_AUTO */
	uint16_t tpid;	 /* VLAN: the TPID this tag is announced with */
	uint8_t ext_type; /* IPv6 extension header type */
	bool bad_csum;
	bool no_csum; /* UDP: leave the checksum 0 */
	bool cut;     /* header cut short by pb_truncate() before pb_finish() */
};

/* A frame under construction in a caller-owned buffer. */
struct pb_pkt {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err; /* first error, sticky */
	bool finished;
	unsigned int nlayers;
	struct pb_layer layers[PB_MAX_LAYERS];
};

struct pb_ipv4 {
	uint32_t saddr, daddr; /* network byte order */
	uint8_t tos;
	uint8_t ttl;
	uint16_t id;
	uint16_t frag;	   /* PB_IP_DF | PB_IP_MF | offset in 8-byte units */
	int proto;	   /* PB_AUTO: from the next layer */
	int version;	   /* PB_AUTO: 4 (override for malformed cases) */
	int ihl;	   /* PB_AUTO: from the options length; else forced (0..15) */
	int tot_len;	   /* PB_AUTO: to the end of the frame; else forced */
	const uint8_t *options; /* raw option bytes, padded with EOL to 4 bytes */
	size_t options_len;	/* at most 40 */
	bool bad_csum;	   /* leave a wrong header checksum */
};

struct pb_ipv6 {
	uint8_t saddr[16], daddr[16];
	uint8_t tclass;
	uint32_t flowlabel; /* 20 bits */
	uint8_t hop_limit;
	int nexthdr;	    /* PB_AUTO: from the next layer */
	int payload_len;    /* PB_AUTO: to the end of the frame */
};

struct pb_tcp {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags; /* PB_TCP_* */
	uint16_t window;
	uint16_t urg_ptr;
	const uint8_t *options; /* raw option bytes, padded with EOL to 4 bytes */
	size_t options_len;	/* at most 40 */
	int doff;		/* PB_AUTO: from the options length; else forced (0..15) */
	bool bad_csum;
};

struct pb_udp {
	uint16_t sport, dport;
	int len;	/* PB_AUTO: to the end of the frame */
	bool no_csum;	/* checksum 0 ("not computed", IPv4 only) */
	bool bad_csum;
};

struct pb_icmp {
	uint8_t type, code;
	uint32_t rest; /* bytes 4..7: echo id << 16 | seq, MTU, pointer, ... */
	bool bad_csum;
};

struct pb_sctp {
	uint16_t sport, dport;
	uint32_t vtag;
	uint8_t chunk_type, chunk_flags;
	const uint8_t *chunk_value; /* bytes after the 4-byte chunk header */
	size_t chunk_value_len;	    /* padded with zeros to 4 bytes */
	bool bad_csum;
};

struct pb_arp {
	uint16_t op; /* PB_ARP_REQUEST / PB_ARP_REPLY */
	uint8_t sha[6], tha[6];
	uint32_t spa, tpa; /* network byte order */
};

/* Starts an empty frame in buf[0..cap). */
void pb_init(struct pb_pkt *p, uint8_t *buf, size_t cap);

/* Ethernet II header; ethertype PB_AUTO takes it from the next layer. */
int pb_eth(struct pb_pkt *p, const uint8_t dst[6], const uint8_t src[6], int ethertype);

/* 802.1Q tag: the previous header announces it with tpid (0x8100, or 0x88a8 for an outer
 * QinQ tag); ethertype PB_AUTO takes the inner type from the next layer. */
int pb_vlan(struct pb_pkt *p, uint16_t tpid, uint16_t vid, uint8_t pcp, int ethertype);

/* Ethernet/IPv4 ARP packet. */
int pb_arp(struct pb_pkt *p, const struct pb_arp *a);

/* An IPv4 header with defaults: TTL 64, id 1, DF, everything else automatic. */
struct pb_ipv4 pb_ipv4_hdr(uint32_t saddr, uint32_t daddr);

/* IPv4 header (with options); lengths and checksum are completed by pb_finish(). */
int pb_ipv4(struct pb_pkt *p, const struct pb_ipv4 *h);

/* An IPv6 header with defaults: hop limit 64, everything else automatic. */
struct pb_ipv6 pb_ipv6_hdr(const uint8_t saddr[16], const uint8_t daddr[16]);

/* IPv6 fixed header. */
int pb_ipv6(struct pb_pkt *p, const struct pb_ipv6 *h);

/* IPv6 extension header of type 0 (hop-by-hop), 43 (routing) or 60 (destination options):
 * the 2-byte next-header/length prefix, then data, padded with a PadN option (or zeros for
 * routing) to a multiple of 8 bytes. */
int pb_ipv6_ext(struct pb_pkt *p, uint8_t type, const uint8_t *data, size_t len);

/* IPv6 fragment header; offset in bytes (a multiple of 8). */
int pb_ipv6_frag(struct pb_pkt *p, uint16_t offset, bool more, uint32_t id);

/* A TCP header with defaults: window 65535, no options. */
struct pb_tcp pb_tcp_hdr(uint16_t sport, uint16_t dport, uint8_t flags);

/* TCP header; the checksum (over the pseudo-header and the rest of the frame) is filled in
 * by pb_finish(). */
int pb_tcp(struct pb_pkt *p, const struct pb_tcp *h);

/* UDP header; length and checksum are filled in by pb_finish(). */
int pb_udp(struct pb_pkt *p, const struct pb_udp *h);

/* ICMP header (8 bytes); the message follows with pb_bytes(). */
int pb_icmp4(struct pb_pkt *p, const struct pb_icmp *h);

/* ICMP error (type/code) quoting an IPv4 packet: its IP header plus the first 8 bytes of L4
 * (as much as inner holds). inner points at the IPv4 header of the quoted packet. */
int pb_icmp4_error(struct pb_pkt *p, uint8_t type, uint8_t code, uint32_t rest,
		   const uint8_t *inner, size_t inner_len);

/* ICMPv6 header (8 bytes); the checksum uses the IPv6 pseudo-header. */
int pb_icmp6(struct pb_pkt *p, const struct pb_icmp *h);

/* SCTP common header plus one chunk; CRC32c filled in by pb_finish(). */
int pb_sctp(struct pb_pkt *p, const struct pb_sctp *h);

/* VXLAN header (flags I, the given VNI); follow with pb_eth() for the inner frame. */
int pb_vxlan(struct pb_pkt *p, uint32_t vni);

/* Geneve header without options; proto PB_AUTO takes it from the next layer. */
int pb_geneve(struct pb_pkt *p, uint32_t vni, int proto);

/* GRE header (no checksum/key/sequence); proto PB_AUTO takes it from the next layer. */
int pb_gre(struct pb_pkt *p, int proto);

/* Appends raw bytes (payload, or hand-made headers). */
int pb_bytes(struct pb_pkt *p, const void *data, size_t len);

/* Appends len copies of byte. */
int pb_fill(struct pb_pkt *p, uint8_t byte, size_t len);

/* Cuts the frame to n bytes (no-op if already shorter). Before pb_finish(): the frame is
 * finished as if it were that long (IP lengths match, a cut L4 header keeps no checksum).
 * After pb_finish(): a raw cut, the headers still claim the old lengths. */
int pb_truncate(struct pb_pkt *p, size_t n);

/* Completes automatic fields and checksums; returns the frame length or -errno. */
int pb_finish(struct pb_pkt *p);

/* Writes fragment [off, off + len) of the IPv4 payload of frame (l3_off = offset of its IPv4
 * header) into out as a complete frame: same L2 and IP header, offset and MF set (MF also
 * kept when the original had it), total length and header checksum recomputed. off must be
 * a multiple of 8. Returns the new frame length or -errno. */
int pb_ipv4_fragment(const uint8_t *frame, size_t frame_len, size_t l3_off, size_t off,
		     size_t len, bool more, uint8_t *out, size_t outcap);

/* One's-complement sum of data added to sum (not folded, not complemented). */
uint32_t pb_csum_partial(const void *data, size_t len, uint32_t sum);

/* Folds a partial sum to 16 bits and complements it: the Internet checksum (host order). */
uint16_t pb_csum_fold(uint32_t sum);

/* Internet checksum of data (RFC 1071), host order. */
uint16_t pb_csum(const void *data, size_t len);

/* TCP/UDP checksum over the IPv4 pseudo-header and l4[0..len), host order. */
uint16_t pb_l4_csum4(uint32_t saddr, uint32_t daddr, uint8_t proto, const void *l4,
		     size_t len);

/* TCP/UDP/ICMPv6 checksum over the IPv6 pseudo-header and l4[0..len), host order. */
uint16_t pb_l4_csum6(const uint8_t saddr[16], const uint8_t daddr[16], uint8_t proto,
		     const void *l4, size_t len);

/* CRC32c (Castagnoli) of data, as used by SCTP (already complemented). */
uint32_t pb_crc32c(const void *data, size_t len);

/* Recomputes the IPv4 header checksum of the header at ip (IHL taken from the header). */
void pb_ipv4_fix_csum(uint8_t *ip, size_t avail);

/* A pod's eth0 MAC 0a:58:A:B:C:D for IPv4 address A.B.C.D (network order). */
void pb_pod_mac(uint32_t ip, uint8_t mac[6]);

/* The MAC of a pod's host-side veth (its gateway): 0e:58:A:B:C:D. */
void pb_gw_mac(uint32_t ip, uint8_t mac[6]);

/* ---- pcap files (DLT_EN10MB, microsecond timestamps) ---- */

/* Timestamp (seconds) given to packet i of every written pcap. */
#define PB_PCAP_TS_BASE 1700000000

struct pb_pcap_writer; /* opaque */

/* Creates path for writing (truncates it). */
int pb_pcap_create(const char *path, struct pb_pcap_writer **w);

/* Appends a frame; packet i (0-based) gets the timestamp PB_PCAP_TS_BASE + i seconds. */
int pb_pcap_write(struct pb_pcap_writer *w, const uint8_t *frame, size_t len);

/* Flushes and closes (w may be NULL); returns 0 or -errno if anything failed. */
int pb_pcap_close(struct pb_pcap_writer *w);

/* Writes a whole pcap file of n frames (lens[i] bytes each). */
int pb_pcap_write_file(const char *path, const uint8_t *const *frames, const size_t *lens,
		       size_t n);

/* One frame read from a pcap. */
struct pb_frame {
	uint8_t *data;
	size_t len;	 /* captured bytes */
	size_t wire_len; /* original length on the wire */
};

/* Calls cb for every frame of an Ethernet pcap, in order, stopping at a non-zero return
 * (which is returned). -EPROTONOSUPPORT for other link types; errbuf gets a message. */
int pb_pcap_foreach(const char *path,
		    int (*cb)(void *ctx, const uint8_t *frame, size_t len, size_t wire_len),
		    void *ctx, char *errbuf, size_t errlen);

/* Reads every frame of an Ethernet pcap into a malloc'd array (free with pb_frames_free). */
int pb_pcap_read(const char *path, struct pb_frame **frames, size_t *n, char *errbuf,
		 size_t errlen);

/* Frees what pb_pcap_read() returned. */
void pb_frames_free(struct pb_frame *frames, size_t n);

#endif
