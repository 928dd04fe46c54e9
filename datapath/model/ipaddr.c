/* SPDX-License-Identifier: Apache-2.0 */
#include "ipaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ip4_parse(const char *s, uint32_t *ip)
{
	unsigned long part;
	uint32_t v = 0;
	const char *p = s;
	char *end;
	int i;

	for (i = 0; i < 4; i++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		/* no leading zeros ("010" is octal to some parsers, ambiguous to people) */
		if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
			return -EINVAL;
		part = strtoul(p, &end, 10);
		if (part > 255 || end - p > 3)
			return -EINVAL;
		v = (v << 8) | (uint32_t)part;
		p = end;
		if (i < 3) {
			if (*p != '.')
				return -EINVAL;
			p++;
		}
	}
	if (*p)
		return -EINVAL;
	*ip = htonl(v);
	return 0;
}

uint32_t ip4_mask(uint8_t len)
{
	if (len == 0)
		return 0;
	if (len >= 32)
		return 0xffffffffu;
	return htonl(~((1u << (32 - len)) - 1));
}

int cidr4_parse(const char *s, bool strict, uint32_t *ip, uint8_t *len)
{
	char buf[CIDR4_STR_MAX + 1];
	const char *slash = strchr(s, '/');
	unsigned long n;
	uint32_t addr;
	char *end;
	size_t alen;

	if (!slash)
		return -EINVAL;
	alen = (size_t)(slash - s);
	if (alen >= IP4_STR_MAX)
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (ip4_parse(buf, &addr))
		return -EINVAL;
	if (slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	n = strtoul(slash + 1, &end, 10);
	if (*end || n > 32 || end - (slash + 1) > 2)
		return -EINVAL;
	if (strict && (addr & ~ip4_mask((uint8_t)n)))
		return -EINVAL;
	*ip = addr & ip4_mask((uint8_t)n);
	*len = (uint8_t)n;
	return 0;
}

const char *ip4_format(uint32_t ip, char *buf)
{
	uint32_t h = ntohl(ip);

	snprintf(buf, IP4_STR_MAX, "%u.%u.%u.%u", h >> 24, (h >> 16) & 0xff, (h >> 8) & 0xff,
		 h & 0xff);
	return buf;
}

const char *cidr4_format(uint32_t ip, uint8_t len, char *buf)
{
	char a[IP4_STR_MAX];

	snprintf(buf, CIDR4_STR_MAX, "%.15s/%u", ip4_format(ip, a), (unsigned int)(len & 63));
	return buf;
}

bool cidr4_contains_ip(uint32_t net, uint8_t len, uint32_t ip)
{
	return ((ip ^ net) & ip4_mask(len)) == 0;
}

bool cidr4_contains(uint32_t outer, uint8_t olen, uint32_t inner, uint8_t ilen)
{
	return ilen >= olen && cidr4_contains_ip(outer, olen, inner);
}

bool cidr4_overlaps(uint32_t a, uint8_t alen, uint32_t b, uint8_t blen)
{
	return cidr4_contains(a, alen, b, blen) || cidr4_contains(b, blen, a, alen);
}
