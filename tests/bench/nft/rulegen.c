/* SPDX-License-Identifier: Apache-2.0 */
#include "rulegen.h"

#include <arpa/inet.h>
#include <stdlib.h>

#define FILLER_IDENTITY0 1000
#define FILLER_PORT0	 1000
#define PORTS_PER_PEER	 8

uint32_t rulegen_peer_addr(uint32_t identity)
{
	return htonl((10u << 24) | (245u << 16) | (identity & 0xffff));
}

struct peer_rule *rulegen_make(unsigned int n, uint32_t match_identity, uint32_t match_addr,
			       uint16_t match_port)
{
	struct peer_rule *r = calloc(n ? n : 1, sizeof(*r));

	if (!r || !n)
		return r;
	for (unsigned int i = 0; i + 1 < n; i++) {
		r[i].identity = FILLER_IDENTITY0 + i / PORTS_PER_PEER;
		r[i].addr = rulegen_peer_addr(r[i].identity);
		r[i].port = (uint16_t)(FILLER_PORT0 + i % PORTS_PER_PEER);
	}
	r[n - 1].identity = match_identity;
	r[n - 1].addr = match_addr;
	r[n - 1].port = match_port;
	return r;
}

static const char *ip_str(uint32_t addr, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &addr, buf, INET_ADDRSTRLEN);
}

int rulegen_write_nft(FILE *f, const char *table, const struct peer_rule *r, unsigned int n)
{
	char a[INET_ADDRSTRLEN];

	fprintf(f, "add table ip %s\n", table);
	fprintf(f, "add chain ip %s lin_%u\n", table, n);
	for (unsigned int i = 0; i < n; i++)
		fprintf(f, "add rule ip %s lin_%u ip daddr %s udp dport %u accept\n", table, n,
			ip_str(r[i].addr, a), r[i].port);
	fprintf(f, "add set ip %s peers_%u { type ipv4_addr . inet_service; size %u; }\n", table, n,
		n < 65536 ? 65536 : n);
	/* elements in chunks: one huge line is slow to parse */
	for (unsigned int i = 0; i < n; i += 256) {
		fprintf(f, "add element ip %s peers_%u { ", table, n);
		for (unsigned int j = i; j < n && j < i + 256; j++)
			fprintf(f, "%s%s . %u", j > i ? ", " : "", ip_str(r[j].addr, a), r[j].port);
		fprintf(f, " }\n");
	}
	fprintf(f, "add chain ip %s set_%u\n", table, n);
	fprintf(f, "add rule ip %s set_%u ip daddr . udp dport @peers_%u accept\n", table, n, n);
	return ferror(f) ? -1 : 0;
}
