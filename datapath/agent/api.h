/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's local API (docs/AGENT.md): line-delimited JSON over a unix stream socket at
 * /run/ciliate/<node>/agent.sock. A client writes one request object per line and reads one
 * response object per line; a connection may carry any number of requests in turn.
 *
 *   request:  {"op":"ipam-allocate","pod":"ns/name","container_id":"...","ip":"A.B.C.D"}
 *   response: {"ok":true,...}  or  {"ok":false,"error":"reason","code":"not-found"}
 *
 * Ops: status, ipam-allocate, ipam-release, endpoint-add, endpoint-del, endpoint-list,
 * identity-list, service-list, observe.
 * Error codes: invalid, not-found, conflict, exhausted, not-ready, internal.
 *
 * Also here: the naming conventions the agent, the CNI plugin and the simulator share.
 * The client side (api_client.c) needs only libc and jansson.
 */
#ifndef CILIATE_AGENT_API_H
#define CILIATE_AGENT_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define AGENT_RUN_ROOT		 "/run/ciliate" /* state dir: AGENT_RUN_ROOT/<node> */
#define AGENT_SOCK_NAME		 "agent.sock"
#define AGENT_LINE_MAX		 (64u << 20) /* longest request or response line (observe) */
#define AGENT_DEFAULT_TIMEOUT_MS 10000

#define AGENT_GATEWAY	      "169.254.1.1" /* every pod's default gateway */
#define AGENT_POD_MAC_PREFIX  0x0a	    /* pod eth0: 0a:58:A:B:C:D */
#define AGENT_HOST_MAC_PREFIX 0x0e	    /* host-side veth: 0e:58:A:B:C:D */

/* API operation names. */
#define AGENT_OP_STATUS	       "status"
#define AGENT_OP_IPAM_ALLOCATE "ipam-allocate"
#define AGENT_OP_IPAM_RELEASE  "ipam-release"
#define AGENT_OP_ENDPOINT_ADD  "endpoint-add"
#define AGENT_OP_ENDPOINT_DEL  "endpoint-del"
#define AGENT_OP_ENDPOINT_LIST "endpoint-list"
#define AGENT_OP_IDENTITY_LIST "identity-list"
#define AGENT_OP_SERVICE_LIST  "service-list"
#define AGENT_OP_OBSERVE       "observe" /* flows: docs/OBSERVABILITY.md */
#define AGENT_OP_ENCRYPT_STATUS "encrypt-status" /* docs/ENCRYPTION.md */

/* Error codes carried in "code". */
#define AGENT_E_INVALID	  "invalid"
#define AGENT_E_NOT_FOUND "not-found"
#define AGENT_E_CONFLICT  "conflict"
#define AGENT_E_EXHAUSTED "exhausted"
#define AGENT_E_NOT_READY "not-ready"
#define AGENT_E_INTERNAL  "internal"

/* Writes "/run/ciliate/<node>/agent.sock" into buf. */
void agent_sock_path(const char *node, char *buf, size_t size);

/* The host-side veth name of pod "ns/name": "lxc" + 8 hex digits of FNV-1a 32 of "ns/name"
 * (buf needs at least 12 bytes). */
void agent_lxc_ifname(const char *ns_slash_name, char *buf, size_t size);

/* Formats the 0a:58 (pod) or 0e:58 (host side) MAC of an IPv4 address (network order)
 * into buf (at least 18 bytes). */
void agent_mac_format(uint8_t prefix, uint32_t ip, char *buf, size_t size);

/* Sends one request and waits up to timeout_ms for its response. Returns 0 with *resp set
 * (the caller checks "ok" and decrefs), or a negative errno: -ENOENT / -ECONNREFUSED when
 * no agent listens, -ETIMEDOUT, -EPROTO for a malformed response; err (may be NULL) gets a
 * message. */
int agent_call(const char *sock_path, json_t *req, int timeout_ms, json_t **resp, char *err,
	       size_t errsize);

#endif
