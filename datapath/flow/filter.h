/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flow filters, shared by the agent (op "observe") and the CLI (observe, monitor): one
 * implementation of what `--from-pod x/a --verdict DROPPED ...` selects. A filter is built
 * from a JSON spec (docs/OBSERVABILITY.md, "Agent API op observe") and matched against
 * wrapped flows ({"flow":{...},"node_name":...,"time":...}).
 *
 * Semantics (hubble observe's): every given field must match (AND); the values of one field
 * are alternatives (OR). Pod references are "ns/pod", or "ns/" for every pod of ns.
 *   from_pod / to_pod: the flow's source / destination endpoint
 *   pod: either end; namespace: either end's namespace
 *   verdict: FORWARDED, DROPPED, ...; drop_reason: names (POLICY_DENIED) or codes
 *   protocol: TCP, UDP, ICMPv4 (also ICMP), ICMPv6, SCTP
 *   port: source or destination port; type: drop, trace, policy-verdict
 *   since / until: RFC 3339 times (the flow's "time")
 *   node: node names
 * A lost_events record matches only filters without flow fields.
 */
#ifndef CILIATE_FLOW_FILTER_H
#define CILIATE_FLOW_FILTER_H

#include <stdbool.h>

#include <jansson.h>

#include "common/diag.h"

struct flow_filter;

/* Builds a filter from spec (a JSON object; NULL or {} matches everything). Unknown keys and
 * bad values fail with a message naming the key. */
int flow_filter_from_json(const json_t *spec, struct flow_filter **out, struct diag *d);

/* True when the wrapped flow passes every condition of f (f NULL: true). */
bool flow_filter_match(const struct flow_filter *f, const json_t *wrapped);

void flow_filter_free(struct flow_filter *f);

#endif
