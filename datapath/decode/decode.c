// SPDX-License-Identifier: Apache-2.0
/*
 * One-line packet decoder. Every parser takes (p, len) for the bytes it may read and checks
 * a header fits before touching it; nothing reads past p + len.
 */
#include "decode.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define DECODE_MAX_DEPTH 1 /* tunnels are decoded one level inside */
#define DECODE_MAX_VLAN 8
#define DECODE_MAX_IPV6_EXT 16
#define DECODE_MAX_SCTP_CHUNKS 8

#define VXLAN_PORT 4789
#define VXLAN_PORT_LINUX 8472
#define GENEVE_PORT 6081

struct sbuf {
	char *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

struct dctx {
	struct sbuf *sb;
	struct decoded_pkt *d;
	unsigned int flags;
	int depth;
};

/* Addresses of the IP packet being decoded, already formatted. */
struct ipinfo {
	int family;
	char src[INET6_ADDRSTRLEN];
	char dst[INET6_ADDRSTRLEN];
	bool fragment; /* first fragment of a fragmented datagram */
};

static void decode_eth(struct dctx *c, const uint8_t *p, size_t len);
static void decode_ipv4(struct dctx *c, const uint8_t *p, size_t len);
static void decode_ipv6(struct dctx *c, const uint8_t *p, size_t len);

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *sb, const char *fmt,
							     ...)
{
	size_t avail;
	va_list ap;
	int n;

	if (!sb->cap || sb->overflow)
		return;
	avail = sb->cap - sb->len;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, avail, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= avail) {
		sb->len = sb->cap - 1;
		sb->overflow = true;
	} else {
		sb->len += (size_t)n;
	}
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void fmt_mac(char *buf, size_t n, const uint8_t *m)
{
	snprintf(buf, n, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void fmt_ip4(char *buf, size_t n, const uint8_t *a)
{
	snprintf(buf, n, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
}

static void fmt_ip6(char *buf, size_t n, const uint8_t *a)
{
	if (!inet_ntop(AF_INET6, a, buf, (socklen_t)n))
		snprintf(buf, n, "?");
}

/* A child context for an encapsulated packet: same output, scratch parse result. */
static void child_ctx(struct dctx *child, const struct dctx *parent, struct decoded_pkt *scratch)
{
	memset(scratch, 0, sizeof(*scratch));
	child->sb = parent->sb;
	child->d = scratch;
	child->flags = parent->flags;
	child->depth = parent->depth + 1;
}

static void child_done(struct dctx *parent, const struct decoded_pkt *scratch)
{
	parent->d->truncated |= scratch->truncated;
	parent->d->malformed |= scratch->malformed;
}

static void print_addrs(struct dctx *c, const struct ipinfo *ip)
{
	sb_printf(c->sb, "%s > %s ", ip->src, ip->dst);
}

static void print_eps(struct dctx *c, const struct ipinfo *ip, uint16_t sport, uint16_t dport)
{
	if (ip->family == AF_INET6)
		sb_printf(c->sb, "[%s]:%u > [%s]:%u ", ip->src, sport, ip->dst, dport);
	else
		sb_printf(c->sb, "%s:%u > %s:%u ", ip->src, sport, ip->dst, dport);
}

static const char *proto_name(uint8_t proto, char *buf, size_t n)
{
	switch (proto) {
	case 1:
		return "ICMP";
	case 2:
		return "IGMP";
	case 4:
		return "IPIP";
	case 6:
		return "TCP";
	case 17:
		return "UDP";
	case 41:
		return "IPv6-in-IP";
	case 47:
		return "GRE";
	case 50:
		return "ESP";
	case 51:
		return "AH";
	case 58:
		return "ICMPv6";
	case 132:
		return "SCTP";
	default:
		snprintf(buf, n, "proto %u", proto);
		return buf;
	}
}

void decode_tcp_flags(uint8_t flags, char *buf, size_t buflen)
{
	static const struct {
		uint8_t bit;
		char c;
	} tab[] = { { 0x01, 'F' }, { 0x02, 'S' }, { 0x04, 'R' }, { 0x08, 'P' },
		    { 0x10, '.' }, { 0x20, 'U' }, { 0x40, 'E' }, { 0x80, 'W' } };
	size_t i, n = 0;

	if (!buf || !buflen)
		return;
	if (!flags) {
		snprintf(buf, buflen, "none");
		return;
	}
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]) && n + 1 < buflen; i++)
		if (flags & tab[i].bit)
			buf[n++] = tab[i].c;
	buf[n] = '\0';
}

/* " [inner: ...]" for the IP header quoted by an ICMP error (header + 8 bytes of L4). */
static void decode_quote(struct dctx *c, const uint8_t *p, size_t len)
{
	char pbuf[16], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	const uint8_t *l4;
	size_t hlen, l4len;
	uint8_t proto;
	bool v6;

	if (len < 1) {
		sb_printf(c->sb, " [inner: none]");
		return;
	}
	if (p[0] >> 4 == 4) {
		hlen = (size_t)(p[0] & 0x0f) * 4;
		if (len < 20) {
			sb_printf(c->sb, " [inner: IPv4 truncated]");
			return;
		}
		if (hlen < 20) {
			sb_printf(c->sb, " [inner: IPv4 malformed]");
			return;
		}
		fmt_ip4(src, sizeof(src), p + 12);
		fmt_ip4(dst, sizeof(dst), p + 16);
		proto = p[9];
		v6 = false;
	} else if (p[0] >> 4 == 6) {
		if (len < 40) {
			sb_printf(c->sb, " [inner: IPv6 truncated]");
			return;
		}
		hlen = 40;
		fmt_ip6(src, sizeof(src), p + 8);
		fmt_ip6(dst, sizeof(dst), p + 24);
		proto = p[6];
		v6 = true;
	} else {
		sb_printf(c->sb, " [inner: not IP]");
		return;
	}
	l4 = hlen <= len ? p + hlen : NULL;
	l4len = hlen <= len ? len - hlen : 0;
	if (l4 && l4len >= 4 && (proto == 6 || proto == 17 || proto == 132)) {
		if (v6)
			sb_printf(c->sb, " [inner: [%s]:%u > [%s]:%u %s]", src, rd16(l4), dst,
				  rd16(l4 + 2), proto_name(proto, pbuf, sizeof(pbuf)));
		else
			sb_printf(c->sb, " [inner: %s:%u > %s:%u %s]", src, rd16(l4), dst,
				  rd16(l4 + 2), proto_name(proto, pbuf, sizeof(pbuf)));
	} else if (l4 && l4len >= 2 && (proto == 1 || proto == 58)) {
		sb_printf(c->sb, " [inner: %s > %s %s type %u code %u]", src, dst,
			  proto_name(proto, pbuf, sizeof(pbuf)), l4[0], l4[1]);
	} else {
		sb_printf(c->sb, " [inner: %s > %s %s]", src, dst,
			  proto_name(proto, pbuf, sizeof(pbuf)));
	}
}

static void decode_tcp(struct dctx *c, const struct ipinfo *ip, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	char fl[10];
	size_t hlen;

	if (len < 4) {
		d->truncated = true;
		print_addrs(c, ip);
		sb_printf(c->sb, "TCP truncated (%zu of 20 bytes)", len);
		return;
	}
	d->has_ports = true;
	d->sport = rd16(p);
	d->dport = rd16(p + 2);
	if (len < 20) {
		d->truncated = true;
		print_eps(c, ip, d->sport, d->dport);
		sb_printf(c->sb, "TCP truncated (%zu of 20 bytes)", len);
		return;
	}
	d->seq = rd32(p + 4);
	d->ack = rd32(p + 8);
	d->tcp_flags = p[13];
	d->window = rd16(p + 14);
	hlen = (size_t)(p[12] >> 4) * 4;
	decode_tcp_flags(d->tcp_flags, fl, sizeof(fl));
	print_eps(c, ip, d->sport, d->dport);
	if (hlen < 20) {
		d->malformed = true;
		sb_printf(c->sb, "TCP [%s] malformed: data offset %zu", fl, hlen / 4);
		return;
	}
	if (hlen > len) {
		d->truncated = true;
		sb_printf(c->sb, "TCP [%s] truncated (header %zu of %zu bytes)", fl, len, hlen);
		return;
	}
	d->payload_len = (uint32_t)(len - hlen);
	sb_printf(c->sb, "TCP [%s] seq %u", fl, d->seq);
	if (d->tcp_flags & 0x10)
		sb_printf(c->sb, " ack %u", d->ack);
	sb_printf(c->sb, " win %u len %zu", d->window, len - hlen);
	if ((c->flags & DECODE_F_VERBOSE) && hlen > 20)
		sb_printf(c->sb, " options %zu bytes", hlen - 20);
}

static void decode_vxlan(struct dctx *c, const uint8_t *p, size_t len)
{
	struct decoded_pkt scratch;
	struct dctx child;
	uint32_t vni = rd32(p + 4) >> 8;

	c->d->tunnel = DECODE_TUN_VXLAN;
	c->d->vni = vni;
	sb_printf(c->sb, "VXLAN vni %u", vni);
	if (c->depth >= DECODE_MAX_DEPTH)
		return;
	child_ctx(&child, c, &scratch);
	sb_printf(c->sb, " [inner: ");
	decode_eth(&child, p + 8, len - 8);
	sb_printf(c->sb, "]");
	child_done(c, &scratch);
}

/* Decodes what follows a tunnel header announced by an EtherType-space protocol. */
static void decode_tunnel_payload(struct dctx *c, uint16_t proto, const uint8_t *p, size_t len)
{
	struct decoded_pkt scratch;
	struct dctx child;

	if (proto != 0x6558 && proto != 0x0800 && proto != 0x86dd) {
		sb_printf(c->sb, " proto 0x%04x len %zu", proto, len);
		return;
	}
	if (c->depth >= DECODE_MAX_DEPTH)
		return;
	child_ctx(&child, c, &scratch);
	sb_printf(c->sb, " [inner: ");
	if (proto == 0x6558)
		decode_eth(&child, p, len);
	else if (proto == 0x0800)
		decode_ipv4(&child, p, len);
	else
		decode_ipv6(&child, p, len);
	sb_printf(c->sb, "]");
	child_done(c, &scratch);
}

static void decode_geneve(struct dctx *c, const uint8_t *p, size_t len)
{
	size_t hlen = 8 + (size_t)(p[0] & 0x3f) * 4;
	uint32_t vni = rd32(p + 4) >> 8;

	c->d->tunnel = DECODE_TUN_GENEVE;
	c->d->vni = vni;
	if (p[0] >> 6) {
		c->d->malformed = true;
		sb_printf(c->sb, "Geneve malformed: version %u", p[0] >> 6);
		return;
	}
	sb_printf(c->sb, "Geneve vni %u", vni);
	if (hlen > len) {
		c->d->truncated = true;
		sb_printf(c->sb, " truncated (options %zu of %zu bytes)", len - 8, hlen - 8);
		return;
	}
	decode_tunnel_payload(c, rd16(p + 2), p + hlen, len - hlen);
}

static void decode_udp(struct dctx *c, const struct ipinfo *ip, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	size_t ulen, present;

	if (len < 4) {
		d->truncated = true;
		print_addrs(c, ip);
		sb_printf(c->sb, "UDP truncated (%zu of 8 bytes)", len);
		return;
	}
	d->has_ports = true;
	d->sport = rd16(p);
	d->dport = rd16(p + 2);
	print_eps(c, ip, d->sport, d->dport);
	if (len < 8) {
		d->truncated = true;
		sb_printf(c->sb, "UDP truncated (%zu of 8 bytes)", len);
		return;
	}
	ulen = rd16(p + 4);
	if (ulen < 8) {
		d->malformed = true;
		sb_printf(c->sb, "UDP malformed: length %zu", ulen);
		return;
	}
	present = (ulen < len ? ulen : len) - 8;
	d->payload_len = (uint32_t)present;
	if ((d->dport == VXLAN_PORT || d->dport == VXLAN_PORT_LINUX) && present >= 8 &&
	    (p[8] & 0x08)) {
		decode_vxlan(c, p + 8, present);
		return;
	}
	if (d->dport == GENEVE_PORT && present >= 8) {
		decode_geneve(c, p + 8, present);
		return;
	}
	sb_printf(c->sb, "UDP len %zu", ulen - 8);
	if (ulen > len && !ip->fragment) {
		d->truncated = true;
		sb_printf(c->sb, " truncated (%zu captured)", len - 8);
	}
}

static const char *unreach_name(uint8_t code)
{
	switch (code) {
	case 0:
		return "net unreachable";
	case 1:
		return "host unreachable";
	case 2:
		return "protocol unreachable";
	case 3:
		return "port unreachable";
	case 4:
		return "need to frag";
	case 9:
	case 10:
	case 13:
		return "admin prohibited";
	default:
		return NULL;
	}
}

static void decode_icmp4(struct dctx *c, const struct ipinfo *ip, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	const char *name;
	uint8_t type, code;

	print_addrs(c, ip);
	if (len < 8) {
		d->truncated = true;
		if (len >= 2) {
			d->icmp_type = p[0];
			d->icmp_code = p[1];
			sb_printf(c->sb, "ICMP type %u code %u truncated (%zu of 8 bytes)", p[0],
				  p[1], len);
		} else {
			sb_printf(c->sb, "ICMP truncated (%zu of 8 bytes)", len);
		}
		return;
	}
	type = d->icmp_type = p[0];
	code = d->icmp_code = p[1];
	d->payload_len = (uint32_t)(len - 8);
	switch (type) {
	case 0:
	case 8:
		sb_printf(c->sb, "ICMP echo %s id %u seq %u len %zu", type ? "request" : "reply",
			  rd16(p + 4), rd16(p + 6), len - 8);
		return;
	case 3:
		name = unreach_name(code);
		if (code == 4)
			sb_printf(c->sb, "ICMP need to frag (mtu %u)", rd16(p + 6));
		else if (name)
			sb_printf(c->sb, "ICMP %s", name);
		else
			sb_printf(c->sb, "ICMP unreachable code %u", code);
		break;
	case 11:
		if (code == 0)
			sb_printf(c->sb, "ICMP time exceeded in-transit");
		else if (code == 1)
			sb_printf(c->sb, "ICMP time exceeded reassembly");
		else
			sb_printf(c->sb, "ICMP time exceeded code %u", code);
		break;
	case 4:
	case 5:
	case 12:
		sb_printf(c->sb, "ICMP type %u code %u", type, code);
		break;
	default:
		sb_printf(c->sb, "ICMP type %u code %u len %zu", type, code, len - 8);
		return;
	}
	decode_quote(c, p + 8, len - 8);
}

static void decode_icmp6(struct dctx *c, const struct ipinfo *ip, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	uint8_t type, code;

	print_addrs(c, ip);
	if (len < 4) {
		d->truncated = true;
		sb_printf(c->sb, "ICMPv6 truncated (%zu of 4 bytes)", len);
		return;
	}
	type = d->icmp_type = p[0];
	code = d->icmp_code = p[1];
	d->payload_len = (uint32_t)(len >= 8 ? len - 8 : 0);
	if ((type == 128 || type == 129) && len >= 8) {
		sb_printf(c->sb, "ICMPv6 echo %s id %u seq %u len %zu",
			  type == 128 ? "request" : "reply", rd16(p + 4), rd16(p + 6), len - 8);
		return;
	}
	sb_printf(c->sb, "ICMPv6 type %u", type);
	if (code)
		sb_printf(c->sb, " code %u", code);
	if (type >= 1 && type <= 4) {
		if (len < 8) {
			d->truncated = true;
			sb_printf(c->sb, " truncated (%zu of 8 bytes)", len);
			return;
		}
		decode_quote(c, p + 8, len - 8);
	}
}

static const char *sctp_chunk_name(uint8_t type)
{
	static const char *const names[] = {
		"DATA",	 "INIT",     "INIT_ACK",    "SACK",	 "HEARTBEAT",
		"HEARTBEAT_ACK", "ABORT", "SHUTDOWN", "SHUTDOWN_ACK", "ERROR",
		"COOKIE_ECHO",	 "COOKIE_ACK", "ECNE", "CWR", "SHUTDOWN_COMPLETE",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : NULL;
}

static void decode_sctp(struct dctx *c, const struct ipinfo *ip, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	const char *name;
	size_t off, clen;
	int n;

	if (len < 4) {
		d->truncated = true;
		print_addrs(c, ip);
		sb_printf(c->sb, "SCTP truncated (%zu of 12 bytes)", len);
		return;
	}
	d->has_ports = true;
	d->sport = rd16(p);
	d->dport = rd16(p + 2);
	print_eps(c, ip, d->sport, d->dport);
	if (len < 12) {
		d->truncated = true;
		sb_printf(c->sb, "SCTP truncated (%zu of 12 bytes)", len);
		return;
	}
	sb_printf(c->sb, "SCTP vtag 0x%08x [", rd32(p + 4));
	for (off = 12, n = 0; off + 4 <= len && n < DECODE_MAX_SCTP_CHUNKS; n++) {
		clen = rd16(p + off + 2);
		name = sctp_chunk_name(p[off]);
		if (name)
			sb_printf(c->sb, "%s%s", n ? "," : "", name);
		else
			sb_printf(c->sb, "%schunk %u", n ? "," : "", p[off]);
		if (clen < 4) {
			d->malformed = true;
			sb_printf(c->sb, "] malformed: chunk length %zu", clen);
			return;
		}
		off += (clen + 3) & ~(size_t)3;
	}
	sb_printf(c->sb, "]");
	if (off > len) {
		d->truncated = true;
		sb_printf(c->sb, " truncated");
	}
}

static void decode_gre(struct dctx *c, const struct ipinfo *ip, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	uint16_t fl, proto;
	size_t hlen = 4, key_off = 0;

	print_addrs(c, ip);
	d->tunnel = DECODE_TUN_GRE;
	if (len < 4) {
		d->truncated = true;
		sb_printf(c->sb, "GRE truncated (%zu of 4 bytes)", len);
		return;
	}
	fl = rd16(p);
	proto = rd16(p + 2);
	if ((fl & 7) == 1) { /* enhanced GRE (PPTP): key always present, optional ack */
		hlen = 8 + ((fl & 0x1000) ? 4 : 0) + ((fl & 0x0080) ? 4 : 0);
		sb_printf(c->sb, "GRE v1 proto 0x%04x", proto);
		if (hlen > len) {
			d->truncated = true;
			sb_printf(c->sb, " truncated");
		} else {
			sb_printf(c->sb, " len %zu", len - hlen);
		}
		return;
	}
	if (fl & 7) {
		d->malformed = true;
		sb_printf(c->sb, "GRE malformed: version %u", fl & 7);
		return;
	}
	if (fl & 0xc000) /* checksum (or routing) present: checksum + offset word */
		hlen += 4;
	if (fl & 0x2000) {
		key_off = hlen;
		hlen += 4;
	}
	if (fl & 0x1000)
		hlen += 4;
	if (hlen > len) {
		d->truncated = true;
		sb_printf(c->sb, "GRE proto 0x%04x truncated (%zu of %zu bytes)", proto, len, hlen);
		return;
	}
	sb_printf(c->sb, "GRE");
	if (key_off) {
		d->vni = rd32(p + key_off);
		sb_printf(c->sb, " key %u", d->vni);
	}
	if (fl & 0x4000) { /* source routing entries follow; not decoded */
		sb_printf(c->sb, " proto 0x%04x routed len %zu", proto, len - hlen);
		return;
	}
	if (proto == 0x6558 || proto == 0x0800 || proto == 0x86dd)
		sb_printf(c->sb, " proto 0x%04x", proto);
	decode_tunnel_payload(c, proto, p + hlen, len - hlen);
}

static void decode_ip_in_ip(struct dctx *c, const struct ipinfo *ip, uint8_t proto,
			    const uint8_t *p, size_t len)
{
	struct decoded_pkt scratch;
	struct dctx child;
	char pbuf[16];

	c->d->tunnel = DECODE_TUN_IPIP;
	print_addrs(c, ip);
	sb_printf(c->sb, "%s", proto_name(proto, pbuf, sizeof(pbuf)));
	if (c->depth >= DECODE_MAX_DEPTH) {
		sb_printf(c->sb, " len %zu", len);
		return;
	}
	child_ctx(&child, c, &scratch);
	sb_printf(c->sb, " [inner: ");
	if (proto == 4)
		decode_ipv4(&child, p, len);
	else
		decode_ipv6(&child, p, len);
	sb_printf(c->sb, "]");
	child_done(c, &scratch);
}

/* The L4 payload of an IP packet (first or only fragment). */
static void decode_ip_payload(struct dctx *c, const struct ipinfo *ip, uint8_t proto,
			      const uint8_t *p, size_t len)
{
	char pbuf[16];

	switch (proto) {
	case 6:
		decode_tcp(c, ip, p, len);
		break;
	case 17:
		decode_udp(c, ip, p, len);
		break;
	case 1:
		decode_icmp4(c, ip, p, len);
		break;
	case 58:
		decode_icmp6(c, ip, p, len);
		break;
	case 132:
		decode_sctp(c, ip, p, len);
		break;
	case 47:
		decode_gre(c, ip, p, len);
		break;
	case 4:
	case 41:
		decode_ip_in_ip(c, ip, proto, p, len);
		break;
	case 50:
		print_addrs(c, ip);
		if (len < 8) {
			c->d->truncated = true;
			sb_printf(c->sb, "ESP truncated (%zu of 8 bytes)", len);
		} else {
			sb_printf(c->sb, "ESP spi 0x%08x seq %u len %zu", rd32(p), rd32(p + 4),
				  len - 8);
		}
		break;
	default:
		print_addrs(c, ip);
		sb_printf(c->sb, "%s len %zu", proto_name(proto, pbuf, sizeof(pbuf)), len);
		break;
	}
}

static void decode_ipv4(struct dctx *c, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	struct ipinfo ip = { .family = AF_INET };
	size_t hlen, tot, end;
	uint16_t frag, off;
	char pbuf[16];
	bool mf;

	if (len < 20) {
		d->truncated = true;
		sb_printf(c->sb, "IPv4 truncated (%zu of 20 bytes)", len);
		return;
	}
	if (p[0] >> 4 != 4) {
		d->malformed = true;
		sb_printf(c->sb, "IPv4 malformed: version %u", p[0] >> 4);
		return;
	}
	hlen = (size_t)(p[0] & 0x0f) * 4;
	d->family = AF_INET;
	memcpy(d->saddr, p + 12, 4);
	memcpy(d->daddr, p + 16, 4);
	d->ttl = p[8];
	d->ip_id = rd16(p + 4);
	d->ip_hlen = (uint8_t)hlen;
	d->proto = p[9];
	fmt_ip4(ip.src, sizeof(ip.src), p + 12);
	fmt_ip4(ip.dst, sizeof(ip.dst), p + 16);
	if (hlen < 20) {
		d->malformed = true;
		sb_printf(c->sb, "IPv4 %s > %s malformed: header length %zu", ip.src, ip.dst,
			  hlen);
		return;
	}
	if (hlen > len) {
		d->truncated = true;
		sb_printf(c->sb, "IPv4 %s > %s truncated (header %zu of %zu bytes)", ip.src, ip.dst,
			  len, hlen);
		return;
	}
	tot = rd16(p + 2);
	if (tot < hlen) {
		d->malformed = true;
		sb_printf(c->sb, "IPv4 %s > %s malformed: total length %zu < header %zu", ip.src,
			  ip.dst, tot, hlen);
		return;
	}
	end = tot <= len ? tot : len;
	frag = rd16(p + 6);
	off = (uint16_t)((frag & 0x1fff) * 8);
	mf = frag & 0x2000;
	if (off || mf) {
		d->is_fragment = true;
		d->frag_more = mf;
		d->frag_off = off;
		d->frag_id = d->ip_id;
		ip.fragment = true;
		sb_printf(c->sb, "IPv4 frag id %u off %u%s ", d->ip_id, off, mf ? " MF" : "");
	}
	if (off) {
		print_addrs(c, &ip);
		d->payload_len = (uint32_t)(end - hlen);
		sb_printf(c->sb, "%s len %zu", proto_name(d->proto, pbuf, sizeof(pbuf)), end - hlen);
	} else {
		decode_ip_payload(c, &ip, d->proto, p + hlen, end - hlen);
	}
	if (c->flags & DECODE_F_VERBOSE) {
		sb_printf(c->sb, " (ttl %u, id %u%s%s", p[8], d->ip_id, (frag & 0x4000) ? ", DF" : "",
			  mf ? ", MF" : "");
		if (hlen > 20)
			sb_printf(c->sb, ", options %zu bytes", hlen - 20);
		if (ip_csum(p, hlen))
			sb_printf(c->sb, ", bad cksum");
		sb_printf(c->sb, ")");
	}
	if (tot > len) {
		d->truncated = true;
		sb_printf(c->sb, " [IPv4 truncated: total length %zu, %zu captured]", tot, len);
	}
}

static const char *ipv6_ext_name(uint8_t nh)
{
	switch (nh) {
	case 0:
		return "hbh";
	case 43:
		return "rt";
	case 60:
		return "dst";
	case 51:
		return "ah";
	case 135:
		return "mobility";
	default:
		return NULL;
	}
}

static void decode_ipv6(struct dctx *c, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	struct ipinfo ip = { .family = AF_INET6 };
	size_t plen, end, off = 40, elen;
	char exts[96] = "", pbuf[16];
	const char *name;
	bool frag = false, cut = false;
	uint8_t nh;
	int i;

	if (len < 40) {
		d->truncated = true;
		sb_printf(c->sb, "IPv6 truncated (%zu of 40 bytes)", len);
		return;
	}
	if (p[0] >> 4 != 6) {
		d->malformed = true;
		sb_printf(c->sb, "IPv6 malformed: version %u", p[0] >> 4);
		return;
	}
	d->family = AF_INET6;
	memcpy(d->saddr, p + 8, 16);
	memcpy(d->daddr, p + 24, 16);
	d->ttl = p[7];
	fmt_ip6(ip.src, sizeof(ip.src), p + 8);
	fmt_ip6(ip.dst, sizeof(ip.dst), p + 24);
	plen = rd16(p + 4);
	nh = p[6];
	if (plen == 0 && nh == 0) /* jumbogram: take what was captured */
		plen = len - 40;
	end = 40 + plen <= len ? 40 + plen : len;

	for (i = 0; i < DECODE_MAX_IPV6_EXT; i++) {
		name = ipv6_ext_name(nh);
		if (nh == 44) {
			if (off + 8 > end) {
				cut = true;
				break;
			}
			frag = true;
			d->is_fragment = true;
			d->frag_off = rd16(p + off + 2) & 0xfff8;
			d->frag_more = p[off + 3] & 1;
			d->frag_id = rd32(p + off + 4);
			nh = p[off];
			off += 8;
			continue;
		}
		if (!name)
			break;
		if (off + 2 > end) {
			cut = true;
			break;
		}
		elen = nh == 51 ? ((size_t)p[off + 1] + 2) * 4 : ((size_t)p[off + 1] + 1) * 8;
		if (off + elen > end) {
			cut = true;
			break;
		}
		snprintf(exts + strlen(exts), sizeof(exts) - strlen(exts), "%s%s",
			 exts[0] ? "," : "", name);
		nh = p[off];
		off += elen;
	}
	d->proto = nh;
	sb_printf(c->sb, "IPv6 ");
	if (exts[0])
		sb_printf(c->sb, "ext %s ", exts);
	if (frag)
		sb_printf(c->sb, "frag id %u off %u%s ", d->frag_id, d->frag_off,
			  d->frag_more ? " MF" : "");
	ip.fragment = frag;
	if (cut) {
		d->truncated = true;
		print_addrs(c, &ip);
		sb_printf(c->sb, "extension header %u truncated", nh);
	} else if (i == DECODE_MAX_IPV6_EXT && (nh == 44 || ipv6_ext_name(nh))) {
		d->malformed = true;
		print_addrs(c, &ip);
		sb_printf(c->sb, "malformed: too many extension headers");
	} else if (frag && d->frag_off) {
		print_addrs(c, &ip);
		d->payload_len = (uint32_t)(end - off);
		sb_printf(c->sb, "%s len %zu", proto_name(nh, pbuf, sizeof(pbuf)), end - off);
	} else if (nh == 59) {
		print_addrs(c, &ip);
		sb_printf(c->sb, "no next header");
	} else {
		decode_ip_payload(c, &ip, nh, p + off, end - off);
	}
	if (c->flags & DECODE_F_VERBOSE)
		sb_printf(c->sb, " (hlim %u, flow 0x%05x)", p[7], rd32(p) & 0xfffff);
	if (40 + plen > len) {
		d->truncated = true;
		sb_printf(c->sb, " [IPv6 truncated: payload length %zu, %zu captured]", plen,
			  len - 40);
	}
}

static void decode_arp(struct dctx *c, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	char spa[16], tpa[16], sha[18];
	uint16_t hrd, pro, op;

	if (len < 8) {
		d->truncated = true;
		sb_printf(c->sb, "ARP truncated (%zu of 8 bytes)", len);
		return;
	}
	hrd = rd16(p);
	pro = rd16(p + 2);
	op = d->arp_op = rd16(p + 6);
	if (hrd != 1 || pro != 0x0800 || p[4] != 6 || p[5] != 4) {
		sb_printf(c->sb, "ARP hrd %u pro 0x%04x op %u", hrd, pro, op);
		return;
	}
	if (len < 28) {
		d->truncated = true;
		sb_printf(c->sb, "ARP op %u truncated (%zu of 28 bytes)", op, len);
		return;
	}
	memcpy(d->saddr, p + 14, 4);
	memcpy(d->daddr, p + 24, 4);
	fmt_ip4(spa, sizeof(spa), p + 14);
	fmt_ip4(tpa, sizeof(tpa), p + 24);
	fmt_mac(sha, sizeof(sha), p + 8);
	if (op == 1)
		sb_printf(c->sb, "ARP who-has %s tell %s", tpa, spa);
	else if (op == 2)
		sb_printf(c->sb, "ARP reply %s is-at %s", spa, sha);
	else
		sb_printf(c->sb, "ARP op %u %s > %s", op, spa, tpa);
}

static const char *ethertype_name(uint16_t type)
{
	switch (type) {
	case 0x8035:
		return "RARP";
	case 0x8847:
	case 0x8848:
		return "MPLS";
	case 0x8863:
	case 0x8864:
		return "PPPoE";
	case 0x888e:
		return "EAPOL";
	case 0x88cc:
		return "LLDP";
	case 0x88e5:
		return "MACsec";
	case 0x8906:
		return "FCoE";
	default:
		return NULL;
	}
}

static void decode_eth(struct dctx *c, const uint8_t *p, size_t len)
{
	struct decoded_pkt *d = c->d;
	char src[18], dst[18];
	const char *name;
	size_t off = 14;
	uint16_t type, vid;
	int tags = 0;

	if (len < 14) {
		d->truncated = true;
		sb_printf(c->sb, "truncated ethernet (%zu bytes)", len);
		return;
	}
	memcpy(d->dst_mac, p, 6);
	memcpy(d->src_mac, p + 6, 6);
	if (c->flags & DECODE_F_ETH) {
		fmt_mac(src, sizeof(src), p + 6);
		fmt_mac(dst, sizeof(dst), p);
		sb_printf(c->sb, "%s > %s, ", src, dst);
	}
	type = rd16(p + 12);
	while (type == 0x8100 || type == 0x88a8 || type == 0x9100) {
		if (len - off < 4) {
			d->truncated = true;
			sb_printf(c->sb, "VLAN truncated (%zu of 4 bytes)", len - off);
			return;
		}
		if (++tags > DECODE_MAX_VLAN) {
			d->malformed = true;
			sb_printf(c->sb, "malformed: more than %d VLAN tags", DECODE_MAX_VLAN);
			return;
		}
		vid = rd16(p + off) & 0x0fff;
		if (d->nvlan < 2)
			d->vlan[d->nvlan] = vid;
		d->nvlan++;
		sb_printf(c->sb, "VLAN %u ", vid);
		type = rd16(p + off + 2);
		off += 4;
	}
	d->ethertype = type;
	p += off;
	len -= off;
	switch (type) {
	case 0x0800:
		decode_ipv4(c, p, len);
		break;
	case 0x86dd:
		decode_ipv6(c, p, len);
		break;
	case 0x0806:
		decode_arp(c, p, len);
		break;
	default:
		name = ethertype_name(type);
		if (type < 0x0600)
			sb_printf(c->sb, "802.3 len %u", type);
		else if (name)
			sb_printf(c->sb, "%s len %zu", name, len);
		else
			sb_printf(c->sb, "ethertype 0x%04x len %zu", type, len);
		break;
	}
}

int decode_frame_ex(const uint8_t *pkt, size_t len, unsigned int flags, char *out,
		    size_t outlen)
{
	struct sbuf sb = { .buf = out, .cap = outlen };
	struct decoded_pkt d;
	struct dctx c = { .sb = &sb, .d = &d, .flags = flags };

	if (!out || !outlen)
		return -EINVAL;
	out[0] = '\0';
	memset(&d, 0, sizeof(d));
	if (!pkt)
		len = 0;
	decode_eth(&c, pkt, len);
	return sb.overflow ? -ENOSPC : 0;
}

int decode_frame(const uint8_t *pkt, size_t len, char *out, size_t outlen)
{
	return decode_frame_ex(pkt, len, 0, out, outlen);
}

int decode_parse(const uint8_t *pkt, size_t len, struct decoded_pkt *d)
{
	struct sbuf sb = { 0 };
	struct dctx c = { .sb = &sb, .d = d };

	if (!pkt || !d)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	decode_eth(&c, pkt, len);
	return 0;
}
