/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A node's IPAM state in the store: its range record at /ciliate/ipam/<node>, and one key
 * per allocated address at /ciliate/ipam/<node>/<A.B.C.D>, created only when absent, so two
 * writers can never hand out one address twice and every agent sees every allocation:
 *
 *   /ciliate/ipam/node-1             {"node":"node-1","cidr":"10.244.0.0/24","allocations":[]}
 *   /ciliate/ipam/node-1/10.244.0.10 {"ip":"10.244.0.10","pod":"default/a","containerID":"c0"}
 *
 * One key per address keeps each write (and each agent's read of it) small: with the
 * allocations inside the range record, every pod rewrote a value growing with the node, and
 * every agent re-read it. Records written that way (with "allocations") are still read.
 *
 * This file is the pure part (parse, format, choose an address); agent/ipam.c does the
 * store round trips.
 */
#ifndef CILIATE_AGENT_IPAM_REC_H
#define CILIATE_AGENT_IPAM_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPAM_KEY_PREFIX	  "/ciliate/ipam/"
#define IPAM_FIRST_OFFSET 10  /* the first address handed out: .10 of the range */
#define IPAM_POD_MAX	  320 /* "namespace/name" */
#define IPAM_CID_MAX	  192

struct ipam_alloc {
	uint32_t ip; /* network order */
	char pod[IPAM_POD_MAX];
	char container_id[IPAM_CID_MAX];
};

struct ipam_rec {
	char node[64];
	uint32_t cidr; /* network order */
	uint8_t cidr_len;
	struct ipam_alloc *v; /* sorted by address */
	size_t n;
};

/* What an IPAM key names: 0 the range record of *node, 1 the allocation of *ip (network
 * order) on *node, -EINVAL neither (not under IPAM_KEY_PREFIX, bad address, long node). */
int ipam_key_split(const char *key, char *node, size_t node_size, uint32_t *ip);

/* The key of the allocation of ip on node. */
void ipam_alloc_key(const char *node, uint32_t ip, char *buf, size_t size);

/* Parses an allocation value; its "ip" must be ip (the key's). -EINVAL with a reason. */
int ipam_alloc_parse(const char *json, size_t len, uint32_t ip, struct ipam_alloc *al, char *err,
		     size_t errsize);

/* Formats an allocation value as compact JSON (malloc'd; NULL on ENOMEM). */
char *ipam_alloc_format(const struct ipam_alloc *al);

/* Parses a stored record; on error writes a reason into err and returns -EINVAL. */
int ipam_rec_parse(const char *json, size_t len, struct ipam_rec *r, char *err, size_t errsize);

/* Formats the record as compact JSON (malloc'd; NULL on ENOMEM). */
char *ipam_rec_format(const struct ipam_rec *r);

/* Frees the allocations and zeroes the record. */
void ipam_rec_free(struct ipam_rec *r);

/* The allocation of pod "ns/name", or NULL. */
const struct ipam_alloc *ipam_rec_find_pod(const struct ipam_rec *r, const char *pod);

/* The allocation holding ip, or NULL. */
const struct ipam_alloc *ipam_rec_find_ip(const struct ipam_rec *r, uint32_t ip);

/*
 * Gives pod an address: its existing one (idempotent; container_id is updated), else
 * `requested` (0: none), else the first free address from .10 that is neither allocated nor
 * in reserved[] (addresses other pods pinned with status.podIP). *changed tells whether r
 * was modified. Errors: -EBUSY the pod already holds another address than the requested
 * one; -EEXIST the requested address belongs to another pod; -ERANGE the requested address
 * is outside the range or its network/broadcast address; -ENOSPC the range is full.
 */
int ipam_rec_allocate(struct ipam_rec *r, const char *pod, const char *container_id,
		      uint32_t requested, const uint32_t *reserved, size_t nreserved, uint32_t *ip,
		      bool *changed);

/*
 * Releases the address of pod (or, with pod NULL or "", of container_id). With both given,
 * an allocation made for another container is kept (a late DEL of an old sandbox). *ip gets
 * the released address or 0 when nothing was released.
 */
void ipam_rec_release(struct ipam_rec *r, const char *pod, const char *container_id, uint32_t *ip);

#endif
