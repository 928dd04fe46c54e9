/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test harness for BPF program tests: a private (unpinned) datapath, helpers to program
 * endpoints and policy directly, and a runner that pushes one frame through a hook with
 * BPF_PROG_TEST_RUN and collects the verdict, output bytes and emitted events.
 */
#ifndef CILIATE_TEST_BPF_HARNESS_H
#define CILIATE_TEST_BPF_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ciliate/abi.h"
#include "loader/datapath.h"

#define HARNESS_MAX_EVENTS 16

struct harness {
	struct datapath *dp;
	struct ring_buffer *rb;
	/* last run */
	int retval;
	uint8_t out[4096];
	uint32_t out_len;
	struct ciliate_event events[HARNESS_MAX_EVENTS];
	size_t nevents;
};

/* Opens a private datapath (trace_all set). Aborts the test on failure. */
struct harness *harness_new(void);

/* Same, with explicit load-time options (e.g. enable_ipv6). */
struct harness *harness_new_opts(const struct datapath_opts *opts);
void harness_free(struct harness *h);

/* An endpoint for pod IP a.b.c.d (network order `ip`) with the project's MAC convention. */
struct endpoint_info harness_endpoint(uint32_t ip, uint32_t ep_id, uint32_t identity,
				      uint32_t flags);

/* Installs the endpoint; `bound` additionally makes it the one the test-run device serves. */
void harness_add_endpoint(struct harness *h, const struct endpoint_info *ep, bool bound);

/* Maps ip/plen to an identity in the ipcache. */
void harness_add_ipcache(struct harness *h, uint32_t ip, uint8_t plen, uint32_t identity);

/* Same, with a tunnel endpoint (node IP, network order; 0: none) and IPCACHE_F_* flags. */
void harness_add_ipcache_tunnel(struct harness *h, uint32_t ip, uint8_t plen, uint32_t identity,
				uint32_t tunnel, uint8_t flags);

/* Adds a policy entry; proto 0 = any protocol; port_plen 0 = any port (16 = exact). */
void harness_add_policy(struct harness *h, uint32_t ep_id, uint32_t identity, uint8_t dir,
			uint8_t proto, uint16_t port, uint8_t port_plen, bool deny);

/* Runs a frame through a hook; fills retval/out/events. Aborts the test if test_run fails. */
int harness_run(struct harness *h, int hook, const uint8_t *frame, size_t len);

/* Like harness_run but returns the negative errno instead of aborting. */
int harness_try_run(struct harness *h, int hook, const uint8_t *frame, size_t len);

/* Runs a frame through any loaded program (e.g. a test program that tail-calls a hook);
 * fills retval/out/events like harness_run. Aborts the test if test_run fails. */
int harness_run_fd(struct harness *h, int prog_fd, const uint8_t *frame, size_t len);

/* The last event of a type from the last run, or NULL. */
const struct ciliate_event *harness_event(const struct harness *h, int type);

/* Asserts a TC drop whose drop event carries `reason` and its source file and line. */
void harness_assert_drop(const struct harness *h, unsigned int reason);

/* Writes k -> v into the datapath's map `map` (MAP_* name); fails the test on error. */
void harness_map_put(struct harness *h, const char *map, const void *k, const void *v);

/* A TCP service backend `id` at ip:8080 (ciliate_lb_backends). */
void harness_lb_backend(struct harness *h, uint32_t id, uint32_t ip);

/* An external TCP frontend (addr:port, LB_SVC_F_ROUTABLE | flags) with one backend slot
 * naming `backend`, and its reverse-NAT entry `rev`. */
void harness_lb_frontend(struct harness *h, uint32_t addr, uint16_t port, uint16_t rev,
			 uint32_t backend, uint8_t flags);

/* Looks up the connection with this original tuple and scope (wherever its direction-normalised
 * key puts it); returns true if present. */
bool harness_ct_get(struct harness *h, uint32_t saddr, uint32_t daddr, uint16_t sport,
		    uint16_t dport, uint8_t proto, uint8_t scope, struct ct_entry *out);

/* Sum over CPUs of the metrics counter (reason, dir). */
uint64_t harness_metric_packets(struct harness *h, unsigned int reason, unsigned int dir);

#endif
