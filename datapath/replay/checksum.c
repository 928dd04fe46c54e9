/* SPDX-License-Identifier: Apache-2.0 */
/* Checksum validation of replay outputs: an output with a wrong checksum is a datapath bug. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "replay.h"

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int replay_checksums_valid(const uint8_t *f, size_t len, char *why, size_t whylen)
{
	size_t off = 14, ihl, tot, l4len;
	uint16_t proto_eth, frag;
	const uint8_t *ip, *l4;
	uint32_t sum;

	if (len < 14)
		return 0;
	proto_eth = (uint16_t)(f[12] << 8 | f[13]);
	while ((proto_eth == 0x8100 || proto_eth == 0x88a8) && off + 4 <= len) {
		proto_eth = (uint16_t)(f[off + 2] << 8 | f[off + 3]);
		off += 4;
	}
	if (proto_eth != 0x0800 || off + 20 > len)
		return 0; /* only IPv4 outputs are checked */
	ip = f + off;
	ihl = (size_t)(ip[0] & 0xf) * 4;
	tot = (size_t)(ip[2] << 8 | ip[3]);
	if ((ip[0] >> 4) != 4 || ihl < 20 || off + ihl > len || tot < ihl || off + tot > len)
		return 0; /* malformed input passed through unchanged: nothing to check */
	if (csum_fold(csum_add(0, ip, ihl)) != 0) {
		snprintf(why, whylen, "bad IPv4 header checksum");
		return -EBADMSG;
	}
	frag = (uint16_t)(ip[6] << 8 | ip[7]);
	if (frag & 0x3fff)
		return 0; /* L4 checksum spans fragments */
	l4 = ip + ihl;
	l4len = tot - ihl;
	switch (ip[9]) {
	case 6:
	case 17:
		if (l4len < (ip[9] == 6 ? 20u : 8u))
			return 0;
		if (ip[9] == 17 && l4[6] == 0 && l4[7] == 0)
			return 0; /* UDP without checksum */
		sum = csum_add(0, ip + 12, 8);
		sum += ip[9];
		sum += (uint32_t)l4len;
		sum = csum_add(sum, l4, l4len);
		if (csum_fold(sum) != 0) {
			snprintf(why, whylen, "bad %s checksum", ip[9] == 6 ? "TCP" : "UDP");
			return -EBADMSG;
		}
		break;
	case 1:
		if (l4len >= 8 && csum_fold(csum_add(0, l4, l4len)) != 0) {
			snprintf(why, whylen, "bad ICMP checksum");
			return -EBADMSG;
		}
		break;
	}
	return 0;
}
