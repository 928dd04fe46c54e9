/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wrapped flows ({"flow":{...},"node_name":...,"time":...}, docs/OBSERVABILITY.md) as text:
 *   - `cilium monitor` lines (REFERENCE.md section 7) and their `-j` JSON objects,
 *   - `hubble observe` compact lines and table rows,
 *   - the one line every lost_events record becomes ("EVENTS LOST: N events lost on node X").
 * Also the time helpers the filter and the CLI share (RFC 3339 <-> nanoseconds).
 * Every formatter writes into a caller's buffer like snprintf: the result is always
 * terminated, and the return value is the length the full text needs.
 */
#ifndef CILIATE_FLOW_RENDER_H
#define CILIATE_FLOW_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Parses an RFC 3339 time ("2026-12-04T17:40:00.123456789Z", "...+01:00") into nanoseconds
 * since the epoch (UTC). Returns 0, or -EINVAL for anything else. */
int flow_time_parse(const char *s, int64_t *ns);

/* Formats ns as RFC 3339 UTC with nanoseconds ("2026-12-04T17:40:00.123456789Z"). */
void flow_time_format(int64_t ns, char *buf, size_t size);

/* Parses a duration: a number with a unit (ns, us, ms, s, m, h, d), several may follow
 * each other ("1h30m"). Returns 0 with *ns set, or -EINVAL. */
int flow_duration_parse(const char *s, int64_t *ns);

/* The wrapped record's time in ns (its "time", else the flow's); 0 when it has none. */
int64_t flow_record_time(const json_t *wrapped);

/* True for a {"lost_events":{...}} record. */
bool flow_is_lost_record(const json_t *wrapped);

/* A stable 32-bit hash of the flow's 5-tuple (protocol, addresses, ports), the same for
 * both directions of a connection, so every line of one connection carries one "flow 0x..". */
uint32_t flow_hash(const json_t *flow);

/* The `cilium monitor` line of a wrapped flow, without the newline:
 *   drop:    xx drop (Policy denied) flow 0x.. to endpoint N, ifindex N, file F:L,
 *            identity S->D: 10.244.0.10:41000 -> 10.244.1.10:80 tcp SYN
 *   trace:   -> endpoint N flow 0x.. identity S->D state new ifindex lxc.. orig-ip 0.0.0.0: ..
 *   verdict: Policy verdict log: flow 0x.. local EP ID N, remote ID N, proto 6, egress,
 *            action deny, auth: disabled, match none, ..
 * A lost_events record gives the lost line. */
size_t flow_format_monitor(const json_t *wrapped, char *buf, size_t size);

/* The `cilium monitor -j` object of a wrapped flow (new reference; NULL for records that
 * are neither a flow nor lost events). */
json_t *flow_monitor_json(const json_t *wrapped);

/* The connection summary of cilium monitor: "10.244.0.10:41000 -> 10.244.1.10:80 tcp SYN",
 * "10.0.0.1 -> 10.0.0.2 EchoRequest". */
size_t flow_format_conn_summary(const json_t *flow, char *buf, size_t size);

struct flow_render_opts {
	bool node_name; /* compact: " [node]" after the time, as hubble --print-node-name */
};

/* The `hubble observe -o compact` line, without the newline:
 *   Dec  4 17:40:00.123: x/a:41000 (ID:256) -> y/b:80 (ID:257) to-endpoint FORWARDED
 *   (TCP Flags: SYN)
 * A lost_events record gives the lost line. */
size_t flow_format_compact(const json_t *wrapped, const struct flow_render_opts *o, char *buf,
			   size_t size);

/* "EVENTS LOST: N events lost on node X" for a lost_events record. */
size_t flow_format_lost(const json_t *wrapped, char *buf, size_t size);

/* Hubble's pieces, exposed for the table and the tests. */
size_t flow_format_timestamp(int64_t ns, char *buf, size_t size); /* "Dec  4 17:40:00.123" */
size_t flow_format_type(const json_t *flow, char *buf,
			size_t size);		   /* "policy-verdict:none EGRESS" */
const char *flow_verdict_word(const json_t *flow); /* "FORWARDED", policy verdicts "DENIED" */

/* The table: TIMESTAMP NODE SOURCE DESTINATION TYPE VERDICT SUMMARY, columns separated by at
 * least three spaces like hubble's tab writer. Rows are added, then printed; print_pending
 * prints only rows not printed yet (for -f), keeping the widths seen so far. */
struct flow_table;

struct flow_table *flow_table_new(void);
int flow_table_add(struct flow_table *t, const json_t *wrapped);
void flow_table_print_pending(struct flow_table *t, FILE *out);
void flow_table_free(struct flow_table *t);

#endif
