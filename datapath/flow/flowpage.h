/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The flow page: one self-contained HTML file (no network fetches, works from file://) with
 * a service map (workloads as nodes grouped by namespace, flows as edges, drops in red with
 * their reason) and a filterable, sortable flow table, made from wrapped flows
 * ({"flow":{...},"node_name":...,"time":...}, docs/OBSERVABILITY.md).
 * Used by `ciliate observe --html FILE` and `ciliate-sim run --html FILE`.
 */
#ifndef CILIATE_FLOWPAGE_H
#define CILIATE_FLOWPAGE_H

#include <stddef.h>

#include <jansson.h>

#include "common/diag.h"

/* Writes the page for flows[0..n) (lost_events records are counted and shown, not drawn) to
 * path ("-": stdout), titled title. */
int flowpage_write(const char *path, json_t *const *flows, size_t n, const char *title,
		   struct diag *d);

#endif
