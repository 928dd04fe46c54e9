/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node-to-node health, like cilium-health (docs/HEALTH.md): every agent answers
 * GET /hello on --health-port (default 4240, Cilium's cluster-health-port) inside its node,
 * and probes every node of its cluster model (itself included) by ICMP echo and by
 * GET http://NODEIP:PORT/hello every --health-interval seconds (default 60,
 * $CILIATE_HEALTH_INTERVAL), and on demand (op health-status with "probe": true). The probes
 * run on a thread of their own, all nodes at once, each bounded by HEALTH_PROBE_TIMEOUT_MS,
 * so the event loop never waits on the network.
 */
#ifndef CILIATE_AGENT_HEALTH_H
#define CILIATE_AGENT_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/diag.h"

#define HEALTH_PORT_DEFAULT	 4240
#define HEALTH_INTERVAL_DEFAULT	 60
#define HEALTH_PROBE_TIMEOUT_MS	 1000  /* each ICMP echo and each HTTP GET */
#define HEALTH_WAIT_MAX_MS	 10000 /* a "probe": true request is answered by then */
#define HEALTH_PATH		 "/hello"
#define AGENT_OP_HEALTH_STATUS	 "health-status"

struct agent;
struct agent_client;

/* Opens the /hello listener (a port that cannot be bound is logged, the agent runs on) and
 * starts the prober thread; its notification fd is registered in the loop. */
int agent_health_start(struct agent *a, struct diag *d);

/* Stops the prober thread and closes the listener (waiting requests are dropped). */
void agent_health_stop(struct agent *a);

/* Handles an event of fd if it is the /hello listener, one of its connections or the
 * prober's notification (true): answers the "probe": true requests whose round ended. */
bool agent_health_handle(struct agent *a, int fd);

/* The 1 s tick: hands the cluster model's nodes to the prober when they changed, answers
 * probe requests that waited HEALTH_WAIT_MAX_MS. */
void agent_health_tick(struct agent *a);

/* Answers op health-status; with "probe": true the client waits (NULL is returned and
 * c->health_wait set) until a round that started after the request has ended. */
json_t *agent_op_health_status(struct agent *a, struct agent_client *c, json_t *req);

/* {"reachable": N, "total": M, "unreachable": [names], "probeTime": ...} for status: N
 * counts the nodes (itself included) whose ICMP and HTTP probes both succeeded in the last
 * round, M the nodes of the model. */
json_t *agent_health_summary_json(const struct agent *a);

/* The families cilium_unreachable_nodes, cilium_node_health_connectivity_status and
 * cilium_node_health_connectivity_latency_seconds (a histogram) as exposition text (format
 * 0.0.4) for a scrape; NULL when health checking is not running or out of memory (free()). */
char *agent_health_metrics_text(const struct agent *a);

#endif
