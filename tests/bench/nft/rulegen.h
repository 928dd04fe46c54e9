/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One list of L3-L4 allow rules for the client endpoint's egress, rendered two ways: as
 * ciliate policy-map entries (ciliate_dp.c) and as an nftables ruleset (here), so both
 * sides of the bench filter with the same rules. Each peer identity owns one /32, so
 * "identity I, UDP port P" and "ip daddr <I's address> udp dport P" select the same packets.
 */
#ifndef CILIATE_BENCH_RULEGEN_H
#define CILIATE_BENCH_RULEGEN_H

#include <stdint.h>
#include <stdio.h>

struct peer_rule {
	uint32_t identity;
	uint32_t addr; /* network order: the identity's only address */
	uint16_t port; /* UDP destination port */
};

/* The address given to a filler identity (10.245.x.y), network order. */
uint32_t rulegen_peer_addr(uint32_t identity);

/* n rules: n-1 fillers (8 ports for each of n/8 other identities), then the rule admitting
 * the measured flows (match_*) last, so a linear chain walks all of them. Caller frees. */
struct peer_rule *rulegen_make(unsigned int n, uint32_t match_identity, uint32_t match_addr,
			       uint16_t match_port);

/*
 * Writes, for `nft -f`, into table `ip <table>`:
 *   chain  lin_<n>  n rules "ip daddr A udp dport P accept", in list order (linear walk)
 *   set    peers_<n> (ipv4_addr . inet_service) with the n pairs, and
 *   chain  set_<n>  one rule "ip daddr . udp dport @peers_<n> accept" (one hash lookup)
 * None of these is hooked: a base chain jumps to one of them (see bench_policy_nft.c).
 */
int rulegen_write_nft(FILE *f, const char *table, const struct peer_rule *r, unsigned int n);

#endif
