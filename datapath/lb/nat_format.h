/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Text and JSON forms of the NAT map (ciliate_nat: struct nat_key -> struct nat_entry) and
 * the conntrack map (ciliate_ct: struct ct_key -> struct ct_entry) for `ciliate bpf nat
 * list` and `ciliate bpf ct list`, in the line shapes of `cilium-dbg bpf nat list` and
 * `cilium-dbg bpf ct list global` (docs/SERVICES.md "CLI"; REFERENCE.md section 4).
 * Times are on the datapath's clock (CLOCK_MONOTONIC ns); `now_ns` is passed in so tests
 * can fix it.
 */
#ifndef CILIATE_LB_NAT_FORMAT_H
#define CILIATE_LB_NAT_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ciliate/abi.h"

struct nat_dump_entry {
	struct nat_key key;
	struct nat_entry val;
};

struct ct_dump_entry {
	struct ct_key key; /* the map key as stored (direction-normalised) */
	struct ct_entry val;
};

/* Sorts by (family, protocol, source, destination, ports, direction): deterministic output. */
void nat_dump_sort(struct nat_dump_entry *v, size_t n);

/* "TCP OUT 10.244.0.21:41000 -> 203.0.113.10:80 XLATE_SRC 192.0.2.1:41000 Created=12sec ago
 * NeedsCT=1" (no newline). Returns buf. */
const char *nat_entry_format(char *buf, size_t size, const struct nat_key *k,
			     const struct nat_entry *v, uint64_t now_ns);

void nat_print_list(FILE *f, const struct nat_dump_entry *v, size_t n, uint64_t now_ns);

/* [{"protocol","direction":"OUT"|"IN","source","source_port","destination",
 *   "destination_port","xlate":"SRC"|"DST","to_address","to_port","created_ns",
 *   "created_sec_ago","last_used_ns","nodeport","masquerade","needs_ct","rev_nat_index"}] */
json_t *nat_list_json(const struct nat_dump_entry *v, size_t n, uint64_t now_ns);

/* Sorts by the connections' original tuples (ct_key_original), then scope. */
void ct_dump_sort(struct ct_dump_entry *v, size_t n);

/* Cilium's flag word of an entry (RxClosing 0x1, TxClosing 0x2, SeenNonSyn 0x10, NodePort
 * 0x20), derived from ciliate's TCP state, flags seen and CT_F_NODEPORT. */
uint16_t ct_cilium_flags(const struct ct_entry *e, uint8_t proto);

/* `cilium-dbg bpf ct list global`'s line for one entry, the tuple being the connection's
 * original (see ct_key_original): "TCP OUT 10.244.0.21:41000 -> 10.96.0.10:80 service
 * expires=N RxPackets=N RxBytes=N RxFlagsSeen=0x12 LastRxReport=0 TxPackets=N TxBytes=N
 * TxFlagsSeen=0x02 LastTxReport=0 Flags=0x0010 [ SeenNonSyn ] RevNAT=7 SourceSecurityID=300
 * IfIndex=0 BackendID=5". expires is the expiry in whole seconds of the monotonic clock, as
 * Cilium's; time_diff adds " (remaining: N sec(s))" as its -d does. */
const char *ct_entry_format(char *buf, size_t size, const struct ct_key *k,
			    const struct ct_entry *e, uint64_t now_ns, int time_diff);

void ct_print_list(FILE *f, const struct ct_dump_entry *v, size_t n, uint64_t now_ns,
		   int time_diff);

/* [{"protocol","scope":"OUT"|"IN"|"SERVICE","source","source_port","destination",
 *   "destination_port","expires_ns","expires_in_sec","created_ns","tcp_state",
 *   "packets_fwd","bytes_fwd","packets_rev","bytes_rev","tcp_flags_fwd","tcp_flags_rev",
 *   "flags":[...],"cilium_flags","rev_nat_index","src_identity","backend_id"|"rule_id"}] */
json_t *ct_list_json(const struct ct_dump_entry *v, size_t n, uint64_t now_ns);

#endif
