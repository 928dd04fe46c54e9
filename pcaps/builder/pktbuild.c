// SPDX-License-Identifier: Apache-2.0
/* pktbuild: frames built layer by layer, completed by pb_finish(); pcap helpers. */
#include "pktbuild.h"

#include <errno.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <pcap/dlt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IPPROTO_NONE_V6 59

/* ---- byte helpers ---- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* ---- checksums ---- */

uint32_t pb_csum_partial(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *b = data;
	uint64_t acc = sum;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		acc += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		acc += (uint32_t)b[len - 1] << 8;
	while (acc >> 32)
		acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}

uint16_t pb_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t pb_csum(const void *data, size_t len)
{
	return pb_csum_fold(pb_csum_partial(data, len, 0));
}

uint16_t pb_l4_csum4(uint32_t saddr, uint32_t daddr, uint8_t proto, const void *l4, size_t len)
{
	uint8_t ph[12];
	uint32_t sum;

	memcpy(ph, &saddr, 4);
	memcpy(ph + 4, &daddr, 4);
	ph[8] = 0;
	ph[9] = proto;
	put16(ph + 10, (uint16_t)len);
	sum = pb_csum_partial(ph, sizeof(ph), 0);
	return pb_csum_fold(pb_csum_partial(l4, len, sum));
}

uint16_t pb_l4_csum6(const uint8_t saddr[16], const uint8_t daddr[16], uint8_t proto,
		     const void *l4, size_t len)
{
	uint8_t ph[40];
	uint32_t sum;

	memcpy(ph, saddr, 16);
	memcpy(ph + 16, daddr, 16);
	put32(ph + 32, (uint32_t)len);
	ph[36] = ph[37] = ph[38] = 0;
	ph[39] = proto;
	sum = pb_csum_partial(ph, sizeof(ph), 0);
	return pb_csum_fold(pb_csum_partial(l4, len, sum));
}

uint32_t pb_crc32c(const void *data, size_t len)
{
	const uint8_t *b = data;
	uint32_t crc = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < len; i++) {
		crc ^= b[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

void pb_ipv4_fix_csum(uint8_t *ip, size_t avail)
{
	size_t hlen;

	if (avail < 20)
		return;
	hlen = (size_t)(ip[0] & 0x0f) * 4;
	if (hlen < 20 || hlen > avail)
		hlen = 20;
	ip[10] = ip[11] = 0;
	put16(ip + 10, pb_csum(ip, hlen));
}

void pb_pod_mac(uint32_t ip, uint8_t mac[6])
{
	mac[0] = 0x0a;
	mac[1] = 0x58;
	memcpy(mac + 2, &ip, 4);
}

void pb_gw_mac(uint32_t ip, uint8_t mac[6])
{
	mac[0] = 0x0e;
	mac[1] = 0x58;
	memcpy(mac + 2, &ip, 4);
}

/* ---- layers ---- */

void pb_init(struct pb_pkt *p, uint8_t *buf, size_t cap)
{
	memset(p, 0, sizeof(*p));
	p->buf = buf;
	p->cap = cap;
}

/* Reserves a zeroed header of hdr_len bytes; NULL (and p->err set) on failure. */
static struct pb_layer *push(struct pb_pkt *p, enum pb_layer_kind kind, size_t hdr_len,
			     uint8_t **hdr)
{
	struct pb_layer *l;

	if (p->err)
		return NULL;
	if (p->finished) {
		p->err = -EALREADY;
		return NULL;
	}
	if (p->nlayers >= PB_MAX_LAYERS) {
		p->err = -E2BIG;
		return NULL;
	}
	if (hdr_len > p->cap - p->len) {
		p->err = -ENOSPC;
		return NULL;
	}
	l = &p->layers[p->nlayers++];
	memset(l, 0, sizeof(*l));
	l->kind = kind;
	l->off = p->len;
	l->hdr_len = hdr_len;
	l->next = PB_AUTO;
	l->len_field = PB_AUTO;
	*hdr = p->buf + p->len;
	memset(*hdr, 0, hdr_len);
	p->len += hdr_len;
	return l;
}

static int fail(struct pb_pkt *p, int err)
{
	if (!p->err)
		p->err = err;
	return p->err;
}

int pb_eth(struct pb_pkt *p, const uint8_t dst[6], const uint8_t src[6], int ethertype)
{
	struct pb_layer *l;
	uint8_t *h;

	l = push(p, PB_L_ETH, 14, &h);
	if (!l)
		return p->err;
	memcpy(h, dst, 6);
	memcpy(h + 6, src, 6);
	l->next = ethertype;
	return 0;
}

int pb_vlan(struct pb_pkt *p, uint16_t tpid, uint16_t vid, uint8_t pcp, int ethertype)
{
	struct pb_layer *l;
	uint8_t *h;

	l = push(p, PB_L_VLAN, 4, &h);
	if (!l)
		return p->err;
	put16(h, (uint16_t)((pcp & 7) << 13 | (vid & 0x0fff)));
	l->tpid = tpid;
	l->next = ethertype;
	return 0;
}

int pb_arp(struct pb_pkt *p, const struct pb_arp *a)
{
	struct pb_layer *l;
	uint8_t *h;

	l = push(p, PB_L_ARP, 28, &h);
	if (!l)
		return p->err;
	put16(h, 1);
	put16(h + 2, PB_ETH_P_IP);
	h[4] = 6;
	h[5] = 4;
	put16(h + 6, a->op);
	memcpy(h + 8, a->sha, 6);
	memcpy(h + 14, &a->spa, 4);
	memcpy(h + 18, a->tha, 6);
	memcpy(h + 24, &a->tpa, 4);
	return 0;
}

struct pb_ipv4 pb_ipv4_hdr(uint32_t saddr, uint32_t daddr)
{
	struct pb_ipv4 h = {
		.saddr = saddr,
		.daddr = daddr,
		.ttl = 64,
		.id = 1,
		.frag = PB_IP_DF,
		.proto = PB_AUTO,
		.version = PB_AUTO,
		.ihl = PB_AUTO,
		.tot_len = PB_AUTO,
	};
	return h;
}

int pb_ipv4(struct pb_pkt *p, const struct pb_ipv4 *h)
{
	size_t opt_pad = (h->options_len + 3) & ~(size_t)3;
	struct pb_layer *l;
	uint8_t *ip;
	int version = h->version == PB_AUTO ? 4 : h->version;
	int ihl = h->ihl == PB_AUTO ? (int)(5 + opt_pad / 4) : h->ihl;

	if (h->options_len > 40 || version < 0 || version > 15 || ihl < 0 || ihl > 15)
		return fail(p, -EINVAL);
	l = push(p, PB_L_IPV4, 20 + opt_pad, &ip);
	if (!l)
		return p->err;
	ip[0] = (uint8_t)(version << 4 | ihl);
	ip[1] = h->tos;
	put16(ip + 4, h->id);
	put16(ip + 6, h->frag);
	ip[8] = h->ttl;
	memcpy(ip + 12, &h->saddr, 4);
	memcpy(ip + 16, &h->daddr, 4);
	if (h->options_len)
		memcpy(ip + 20, h->options, h->options_len);
	l->next = h->proto;
	l->len_field = h->tot_len;
	l->bad_csum = h->bad_csum;
	return 0;
}

struct pb_ipv6 pb_ipv6_hdr(const uint8_t saddr[16], const uint8_t daddr[16])
{
	struct pb_ipv6 h = {
		.hop_limit = 64,
		.nexthdr = PB_AUTO,
		.payload_len = PB_AUTO,
	};

	memcpy(h.saddr, saddr, 16);
	memcpy(h.daddr, daddr, 16);
	return h;
}

int pb_ipv6(struct pb_pkt *p, const struct pb_ipv6 *h)
{
	struct pb_layer *l;
	uint8_t *ip;

	l = push(p, PB_L_IPV6, 40, &ip);
	if (!l)
		return p->err;
	put32(ip, 6u << 28 | (uint32_t)h->tclass << 20 | (h->flowlabel & 0xfffff));
	ip[7] = h->hop_limit;
	memcpy(ip + 8, h->saddr, 16);
	memcpy(ip + 24, h->daddr, 16);
	l->next = h->nexthdr;
	l->len_field = h->payload_len;
	return 0;
}

int pb_ipv6_ext(struct pb_pkt *p, uint8_t type, const uint8_t *data, size_t len)
{
	size_t total = (2 + len + 7) & ~(size_t)7;
	size_t pad = total - 2 - len;
	struct pb_layer *l;
	uint8_t *h;

	if (type != 0 && type != 43 && type != 60)
		return fail(p, -EINVAL);
	if (total > 8 * 256)
		return fail(p, -EINVAL);
	l = push(p, PB_L_IPV6_EXT, total, &h);
	if (!l)
		return p->err;
	h[1] = (uint8_t)(total / 8 - 1);
	if (len)
		memcpy(h + 2, data, len);
	if (type != 43 && pad == 1) {
		h[2 + len] = 0; /* Pad1 */
	} else if (type != 43 && pad >= 2) {
		h[2 + len] = 1; /* PadN */
		h[3 + len] = (uint8_t)(pad - 2);
	}
	l->ext_type = type;
	return 0;
}

int pb_ipv6_frag(struct pb_pkt *p, uint16_t offset, bool more, uint32_t id)
{
	struct pb_layer *l;
	uint8_t *h;

	if (offset & 7)
		return fail(p, -EINVAL);
	l = push(p, PB_L_IPV6_FRAG, 8, &h);
	if (!l)
		return p->err;
	put16(h + 2, (uint16_t)(offset | (more ? 1 : 0)));
	put32(h + 4, id);
	return 0;
}

struct pb_tcp pb_tcp_hdr(uint16_t sport, uint16_t dport, uint8_t flags)
{
	struct pb_tcp h = {
		.sport = sport,
		.dport = dport,
		.flags = flags,
		.window = 65535,
		.doff = PB_AUTO,
	};
	return h;
}

int pb_tcp(struct pb_pkt *p, const struct pb_tcp *h)
{
	size_t opt_pad = (h->options_len + 3) & ~(size_t)3;
	int doff = h->doff == PB_AUTO ? (int)(5 + opt_pad / 4) : h->doff;
	struct pb_layer *l;
	uint8_t *t;

	if (h->options_len > 40 || doff < 0 || doff > 15)
		return fail(p, -EINVAL);
	l = push(p, PB_L_TCP, 20 + opt_pad, &t);
	if (!l)
		return p->err;
	put16(t, h->sport);
	put16(t + 2, h->dport);
	put32(t + 4, h->seq);
	put32(t + 8, h->ack);
	t[12] = (uint8_t)(doff << 4);
	t[13] = h->flags;
	put16(t + 14, h->window);
	put16(t + 18, h->urg_ptr);
	if (h->options_len)
		memcpy(t + 20, h->options, h->options_len);
	l->bad_csum = h->bad_csum;
	return 0;
}

int pb_udp(struct pb_pkt *p, const struct pb_udp *h)
{
	struct pb_layer *l;
	uint8_t *u;

	l = push(p, PB_L_UDP, 8, &u);
	if (!l)
		return p->err;
	put16(u, h->sport);
	put16(u + 2, h->dport);
	l->len_field = h->len;
	l->no_csum = h->no_csum;
	l->bad_csum = h->bad_csum;
	return 0;
}

static int icmp_common(struct pb_pkt *p, enum pb_layer_kind kind, const struct pb_icmp *h)
{
	struct pb_layer *l;
	uint8_t *c;

	l = push(p, kind, 8, &c);
	if (!l)
		return p->err;
	c[0] = h->type;
	c[1] = h->code;
	put32(c + 4, h->rest);
	l->bad_csum = h->bad_csum;
	return 0;
}

int pb_icmp4(struct pb_pkt *p, const struct pb_icmp *h)
{
	return icmp_common(p, PB_L_ICMP4, h);
}

int pb_icmp4_error(struct pb_pkt *p, uint8_t type, uint8_t code, uint32_t rest,
		   const uint8_t *inner, size_t inner_len)
{
	struct pb_icmp h = { .type = type, .code = code, .rest = rest };
	size_t quote = inner_len;
	int err;

	if (inner_len >= 1 && (inner[0] & 0x0f) >= 5)
		quote = (size_t)(inner[0] & 0x0f) * 4 + 8;
	if (quote > inner_len)
		quote = inner_len;
	err = pb_icmp4(p, &h);
	if (err)
		return err;
	return pb_bytes(p, inner, quote);
}

int pb_icmp6(struct pb_pkt *p, const struct pb_icmp *h)
{
	return icmp_common(p, PB_L_ICMP6, h);
}

int pb_sctp(struct pb_pkt *p, const struct pb_sctp *h)
{
	size_t vpad = (h->chunk_value_len + 3) & ~(size_t)3;
	struct pb_layer *l;
	uint8_t *s;

	if (h->chunk_value_len > 0xffff - 4)
		return fail(p, -EINVAL);
	l = push(p, PB_L_SCTP, 12 + 4 + vpad, &s);
	if (!l)
		return p->err;
	put16(s, h->sport);
	put16(s + 2, h->dport);
	put32(s + 4, h->vtag);
	s[12] = h->chunk_type;
	s[13] = h->chunk_flags;
	put16(s + 14, (uint16_t)(4 + h->chunk_value_len));
	if (h->chunk_value_len)
		memcpy(s + 16, h->chunk_value, h->chunk_value_len);
	l->bad_csum = h->bad_csum;
	return 0;
}

int pb_vxlan(struct pb_pkt *p, uint32_t vni)
{
	struct pb_layer *l;
	uint8_t *v;

	l = push(p, PB_L_VXLAN, 8, &v);
	if (!l)
		return p->err;
	v[0] = 0x08;
	put32(v + 4, (vni & 0xffffff) << 8);
	return 0;
}

int pb_geneve(struct pb_pkt *p, uint32_t vni, int proto)
{
	struct pb_layer *l;
	uint8_t *g;

	l = push(p, PB_L_GENEVE, 8, &g);
	if (!l)
		return p->err;
	put32(g + 4, (vni & 0xffffff) << 8);
	l->next = proto;
	return 0;
}

int pb_gre(struct pb_pkt *p, int proto)
{
	struct pb_layer *l;
	uint8_t *g;

	l = push(p, PB_L_GRE, 4, &g);
	if (!l)
		return p->err;
	l->next = proto;
	return 0;
}

int pb_bytes(struct pb_pkt *p, const void *data, size_t len)
{
	struct pb_layer *last = p->nlayers ? &p->layers[p->nlayers - 1] : NULL;
	uint8_t *dst;

	if (p->err)
		return p->err;
	if (p->finished)
		return fail(p, -EALREADY);
	if (last && last->kind == PB_L_RAW) {
		if (len > p->cap - p->len)
			return fail(p, -ENOSPC);
		dst = p->buf + p->len;
		p->len += len;
		last->hdr_len += len;
	} else if (!push(p, PB_L_RAW, len, &dst)) {
		return p->err;
	}
	if (len)
		memcpy(dst, data, len);
	return 0;
}

int pb_fill(struct pb_pkt *p, uint8_t byte, size_t len)
{
	uint8_t chunk[256];
	size_t n;
	int err;

	memset(chunk, byte, sizeof(chunk));
	while (len) {
		n = len < sizeof(chunk) ? len : sizeof(chunk);
		err = pb_bytes(p, chunk, n);
		if (err)
			return err;
		len -= n;
	}
	return 0;
}

int pb_truncate(struct pb_pkt *p, size_t n)
{
	struct pb_layer *l;

	if (p->err)
		return p->err;
	if (n >= p->len)
		return 0;
	p->len = n;
	if (p->finished)
		return 0;
	while (p->nlayers && p->layers[p->nlayers - 1].off >= n)
		p->nlayers--;
	if (p->nlayers) {
		l = &p->layers[p->nlayers - 1];
		if (l->off + l->hdr_len > n) {
			l->hdr_len = n - l->off;
			l->cut = true;
		}
	}
	return 0;
}

/* ---- pb_finish ---- */

/* The EtherType-space value announcing layer l (for Ethernet, VLAN, GRE, Geneve). */
static int ethertype_of(const struct pb_layer *l)
{
	if (!l)
		return 0;
	switch (l->kind) {
	case PB_L_VLAN:
		return l->tpid;
	case PB_L_IPV4:
		return PB_ETH_P_IP;
	case PB_L_IPV6:
		return PB_ETH_P_IPV6;
	case PB_L_ARP:
		return PB_ETH_P_ARP;
	case PB_L_ETH:
		return PB_ETH_P_TEB;
	default:
		return 0;
	}
}

/* The IP-protocol-space value announcing layer l; none_value when nothing follows. */
static int ipproto_of(const struct pb_layer *l, int none_value)
{
	if (!l)
		return none_value;
	switch (l->kind) {
	case PB_L_TCP:
		return 6;
	case PB_L_UDP:
		return 17;
	case PB_L_ICMP4:
		return 1;
	case PB_L_ICMP6:
		return 58;
	case PB_L_SCTP:
		return 132;
	case PB_L_IPV4:
		return 4;
	case PB_L_IPV6:
		return 41;
	case PB_L_GRE:
		return 47;
	case PB_L_IPV6_EXT:
		return l->ext_type;
	case PB_L_IPV6_FRAG:
		return 44;
	default:
		return none_value;
	}
}

/* Writes a 16-bit field at off inside layer l if the (possibly cut) header holds it. */
static void layer_put16(struct pb_pkt *p, const struct pb_layer *l, size_t off, uint16_t v)
{
	if (off + 2 <= l->hdr_len)
		put16(p->buf + l->off + off, v);
}

static void layer_put8(struct pb_pkt *p, const struct pb_layer *l, size_t off, uint8_t v)
{
	if (off < l->hdr_len)
		p->buf[l->off + off] = v;
}

static void fill_next_fields(struct pb_pkt *p)
{
	unsigned int i;

	for (i = 0; i < p->nlayers; i++) {
		struct pb_layer *l = &p->layers[i];
		const struct pb_layer *n = i + 1 < p->nlayers ? &p->layers[i + 1] : NULL;
		int v;

		switch (l->kind) {
		case PB_L_ETH:
			v = l->next != PB_AUTO ? l->next : ethertype_of(n);
			layer_put16(p, l, 12, (uint16_t)v);
			break;
		case PB_L_VLAN:
			v = l->next != PB_AUTO ? l->next : ethertype_of(n);
			layer_put16(p, l, 2, (uint16_t)v);
			break;
		case PB_L_GRE:
		case PB_L_GENEVE:
			v = l->next != PB_AUTO ? l->next : ethertype_of(n);
			layer_put16(p, l, 2, (uint16_t)v);
			break;
		case PB_L_IPV4:
			v = l->next != PB_AUTO ? l->next : ipproto_of(n, 253);
			layer_put8(p, l, 9, (uint8_t)v);
			break;
		case PB_L_IPV6:
			v = l->next != PB_AUTO ? l->next : ipproto_of(n, IPPROTO_NONE_V6);
			layer_put8(p, l, 6, (uint8_t)v);
			break;
		case PB_L_IPV6_EXT:
		case PB_L_IPV6_FRAG:
			v = ipproto_of(n, IPPROTO_NONE_V6);
			layer_put8(p, l, 0, (uint8_t)v);
			break;
		default:
			break;
		}
	}
}

/* The closest IP header before layer index i, or NULL. */
static const struct pb_layer *enclosing_ip(const struct pb_pkt *p, unsigned int i)
{
	while (i-- > 0) {
		const struct pb_layer *l = &p->layers[i];

		if (l->kind == PB_L_IPV4 || l->kind == PB_L_IPV6)
			return l->cut ? NULL : l;
		if (l->kind != PB_L_IPV6_EXT && l->kind != PB_L_IPV6_FRAG)
			return NULL;
	}
	return NULL;
}

static uint16_t l4_csum(const struct pb_pkt *p, unsigned int i, uint8_t proto)
{
	const struct pb_layer *l = &p->layers[i];
	const struct pb_layer *ip = enclosing_ip(p, i);
	const uint8_t *l4 = p->buf + l->off;
	size_t len = p->len - l->off;
	const uint8_t *h;
	uint32_t sa, da;

	if (!ip)
		return pb_csum(l4, len);
	h = p->buf + ip->off;
	if (ip->kind == PB_L_IPV4) {
		memcpy(&sa, h + 12, 4);
		memcpy(&da, h + 16, 4);
		return pb_l4_csum4(sa, da, proto, l4, len);
	}
	return pb_l4_csum6(h + 8, h + 24, proto, l4, len);
}

/* The length field of l: forced by the caller, or computed. */
static uint16_t len_value(const struct pb_layer *l, size_t computed)
{
	return (uint16_t)(l->len_field != PB_AUTO ? (size_t)l->len_field : computed);
}

static void finish_layer(struct pb_pkt *p, unsigned int i)
{
	struct pb_layer *l = &p->layers[i];
	uint8_t *h = p->buf + l->off;
	size_t rest = p->len - l->off;
	uint16_t c;
	uint32_t crc;

	switch (l->kind) {
	case PB_L_IPV4:
		layer_put16(p, l, 2, len_value(l, rest));
		if (l->hdr_len >= 12) {
			h[10] = h[11] = 0;
			c = pb_csum(h, l->hdr_len);
			put16(h + 10, l->bad_csum ? c ^ 0x0101 : c);
		}
		break;
	case PB_L_IPV6:
		layer_put16(p, l, 4, len_value(l, rest >= 40 ? rest - 40 : 0));
		break;
	case PB_L_TCP:
		if (l->cut)
			break;
		h[16] = h[17] = 0;
		c = l4_csum(p, i, 6);
		put16(h + 16, l->bad_csum ? c ^ 0x0101 : c);
		break;
	case PB_L_UDP:
		if (l->cut)
			break;
		put16(h + 4, len_value(l, rest));
		h[6] = h[7] = 0;
		if (l->no_csum)
			break;
		c = l4_csum(p, i, 17);
		if (c == 0)
			c = 0xffff;
		put16(h + 6, l->bad_csum ? c ^ 0x0101 : c);
		break;
	case PB_L_ICMP4:
		if (l->cut)
			break;
		h[2] = h[3] = 0;
		c = pb_csum(h, rest);
		put16(h + 2, l->bad_csum ? c ^ 0x0101 : c);
		break;
	case PB_L_ICMP6:
		if (l->cut)
			break;
		h[2] = h[3] = 0;
		c = l4_csum(p, i, 58);
		put16(h + 2, l->bad_csum ? c ^ 0x0101 : c);
		break;
	case PB_L_SCTP:
		if (l->cut)
			break;
		memset(h + 8, 0, 4);
		crc = pb_crc32c(h, rest);
		if (l->bad_csum)
			crc ^= 1;
		/* stored least significant byte first (RFC 9260 appendix A) */
		h[8] = crc & 0xff;
		h[9] = (crc >> 8) & 0xff;
		h[10] = (crc >> 16) & 0xff;
		h[11] = crc >> 24;
		break;
	default:
		break;
	}
}

int pb_finish(struct pb_pkt *p)
{
	unsigned int i;

	if (p->err)
		return p->err;
	if (p->len > INT_MAX)
		return fail(p, -EOVERFLOW);
	if (!p->finished) {
		fill_next_fields(p);
		for (i = p->nlayers; i-- > 0;)
			finish_layer(p, i);
		p->finished = true;
	}
	return (int)p->len;
}

int pb_ipv4_fragment(const uint8_t *frame, size_t frame_len, size_t l3_off, size_t off,
		     size_t len, bool more, uint8_t *out, size_t outcap)
{
	const uint8_t *ip = frame + l3_off;
	size_t hlen, avail, total;
	uint16_t frag, base;

	if (l3_off + 20 > frame_len || (off & 7))
		return -EINVAL;
	hlen = (size_t)(ip[0] & 0x0f) * 4;
	if (hlen < 20 || l3_off + hlen > frame_len)
		return -EINVAL;
	avail = frame_len - l3_off - hlen;
	if (off > avail || len > avail - off)
		return -EINVAL;
	total = l3_off + hlen + len;
	if (total > outcap)
		return -ENOSPC;
	if (hlen + len > 0xffff)
		return -EINVAL;
	memcpy(out, frame, l3_off + hlen);
	memcpy(out + l3_off + hlen, ip + hlen + off, len);
	frag = get16(ip + 6);
	base = frag & PB_IP_OFFMASK;
	if (base + off / 8 > PB_IP_OFFMASK)
		return -EINVAL;
	frag = (uint16_t)((frag & PB_IP_RF) | ((more || (frag & PB_IP_MF)) ? PB_IP_MF : 0) |
			  (base + off / 8));
	put16(out + l3_off + 2, (uint16_t)(hlen + len));
	put16(out + l3_off + 6, frag);
	pb_ipv4_fix_csum(out + l3_off, hlen);
	return (int)total;
}

/* ---- pcap ---- */

struct pb_pcap_writer {
	pcap_t *pc;
	pcap_dumper_t *d;
	uint32_t index;
	int err;
};

int pb_pcap_create(const char *path, struct pb_pcap_writer **wp)
{
	struct pb_pcap_writer *w;
	int err = 0;

	*wp = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->pc = pcap_open_dead(DLT_EN10MB, 65535);
	if (!w->pc) {
		err = -ENOMEM;
		goto out;
	}
	errno = 0;
	w->d = pcap_dump_open(w->pc, path);
	if (!w->d) {
		err = errno ? -errno : -EIO;
		goto out;
	}
	*wp = w;
	w = NULL;
out:
	if (w) {
		if (w->pc)
			pcap_close(w->pc);
		free(w);
	}
	return err;
}

int pb_pcap_write(struct pb_pcap_writer *w, const uint8_t *frame, size_t len)
{
	struct pcap_pkthdr h;

	if (len > 65535)
		return -EMSGSIZE;
	memset(&h, 0, sizeof(h));
	h.ts.tv_sec = PB_PCAP_TS_BASE + w->index;
	h.ts.tv_usec = 0;
	h.caplen = (bpf_u_int32)len;
	h.len = (bpf_u_int32)len;
	pcap_dump((u_char *)w->d, &h, frame);
	w->index++;
	return 0;
}

int pb_pcap_close(struct pb_pcap_writer *w)
{
	int err = 0;
	FILE *f;

	if (!w)
		return 0;
	if (pcap_dump_flush(w->d) != 0)
		err = -EIO;
	f = pcap_dump_file(w->d);
	if (f && ferror(f))
		err = -EIO;
	pcap_dump_close(w->d);
	pcap_close(w->pc);
	free(w);
	return err;
}

int pb_pcap_write_file(const char *path, const uint8_t *const *frames, const size_t *lens,
		       size_t n)
{
	struct pb_pcap_writer *w;
	size_t i;
	int err, cerr;

	err = pb_pcap_create(path, &w);
	if (err)
		return err;
	for (i = 0; i < n && !err; i++)
		err = pb_pcap_write(w, frames[i], lens[i]);
	cerr = pb_pcap_close(w);
	return err ? err : cerr;
}

int pb_pcap_foreach(const char *path,
		    int (*cb)(void *ctx, const uint8_t *frame, size_t len, size_t wire_len),
		    void *ctx, char *errbuf, size_t errlen)
{
	char perr[PCAP_ERRBUF_SIZE] = "";
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *pc;
	int rc, err = 0;

	pc = pcap_open_offline(path, perr);
	if (!pc) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s: %s", path, perr);
		return -EINVAL;
	}
	if (pcap_datalink(pc) != DLT_EN10MB) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s: link type %s is not Ethernet (DLT_EN10MB)",
				 path, pcap_datalink_val_to_name(pcap_datalink(pc)) ?: "unknown");
		err = -EPROTONOSUPPORT;
		goto out;
	}
	while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
		err = cb(ctx, data, h->caplen, h->len);
		if (err)
			goto out;
	}
	if (rc == PCAP_ERROR) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s: %s", path, pcap_geterr(pc));
		err = -EIO;
	}
out:
	pcap_close(pc);
	return err;
}

struct read_ctx {
	struct pb_frame *v;
	size_t n, cap;
};

static int read_cb(void *ctx, const uint8_t *frame, size_t len, size_t wire_len)
{
	struct read_ctx *r = ctx;
	struct pb_frame *nv;
	size_t ncap;

	if (r->n == r->cap) {
		ncap = r->cap ? r->cap * 2 : 16;
		nv = realloc(r->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		r->v = nv;
		r->cap = ncap;
	}
	r->v[r->n].data = malloc(len ? len : 1);
	if (!r->v[r->n].data)
		return -ENOMEM;
	memcpy(r->v[r->n].data, frame, len);
	r->v[r->n].len = len;
	r->v[r->n].wire_len = wire_len;
	r->n++;
	return 0;
}

int pb_pcap_read(const char *path, struct pb_frame **frames, size_t *n, char *errbuf,
		 size_t errlen)
{
	struct read_ctx r = { 0 };
	int err;

	*frames = NULL;
	*n = 0;
	err = pb_pcap_foreach(path, read_cb, &r, errbuf, errlen);
	if (err) {
		pb_frames_free(r.v, r.n);
		return err;
	}
	*frames = r.v;
	*n = r.n;
	return 0;
}

void pb_frames_free(struct pb_frame *frames, size_t n)
{
	size_t i;

	if (!frames)
		return;
	for (i = 0; i < n; i++)
		free(frames[i].data);
	free(frames);
}
