/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flows: datapath events (struct ciliate_event) decoded and enriched with who each end is,
 * as the agent's model said when the event was read, and rendered as Hubble-shaped JSON
 * (docs/OBSERVABILITY.md).
 *
 * Who an address is comes from a directory (struct flow_dir) the agent builds after each
 * reconcile and the event reader uses while decoding. A flow keeps references to the
 * directory records of its two ends, so it still names a pod that has since gone, and the
 * directory can be replaced at any time without copying strings per event.
 * Reference counts are atomic: the reader thread and the agent's loop share records.
 */
#ifndef CILIATE_FLOW_H
#define CILIATE_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ciliate/abi.h"

/* The labels of one identity ("k8s:app=web", "reserved:world"), shared by its records. */
struct flow_labels {
	unsigned int refs;
	uint32_t identity;
	size_t n;
	char **v;
};

/* One end of a flow: a pod, a node, or just an identity. */
struct flow_ep {
	unsigned int refs;
	uint32_t identity;
	uint32_t ep_id; /* a local endpoint's id (0: not one of this node's pods) */
	char *ns;	/* NULL: not a pod */
	char *pod;
	struct flow_labels *labels; /* NULL: unknown identity */
};

/* A service frontend (one rev_nat_index): the service it belongs to, for a flow's
 * destination_service / source_service (Hubble's Service {name, namespace}). */
struct flow_svc {
	unsigned int refs;
	uint16_t rev_nat_index;
	uint8_t family, proto;
	union ciliate_addr addr; /* the frontend's address */
	uint16_t port;		 /* host order */
	char *ns, *name;
	char frontend[64]; /* "10.96.0.10:80/TCP" */
};

struct flow_dir;

/* ---- building a directory (the agent, after a reconcile) ---- */

struct flow_dir *flow_dir_new(void);

/* Labels of identity id (copied); call once per identity before flow_dir_add_addr(). */
int flow_dir_add_identity(struct flow_dir *dir, uint32_t id, const char *const *labels,
			  size_t n);

/* An address (IPv4, network order) of a pod (ns, pod) or of something with only an
 * identity (ns NULL). ep_id: the local endpoint id, 0 for pods of other nodes. */
int flow_dir_add_addr(struct flow_dir *dir, uint32_t ip, uint32_t identity, uint32_t ep_id,
		      const char *ns, const char *pod);

/* The name of a local device (the pods' lxc veths, the overlay device). */
int flow_dir_add_ifname(struct flow_dir *dir, uint32_t ifindex, const char *name);

/* A service frontend of this node: rev_nat_index and ADDR:PORT/PROTO (port in host order)
 * belong to service ns/name. A rev_nat_index given twice keeps the first. */
int flow_dir_add_service(struct flow_dir *dir, uint16_t rev_nat_index, uint8_t family,
			 const union ciliate_addr *addr, uint16_t port, uint8_t proto,
			 const char *ns, const char *name);

/* Takes / drops a reference (the creator holds one). NULL is fine for put. */
struct flow_dir *flow_dir_get(struct flow_dir *dir);
void flow_dir_put(struct flow_dir *dir);

/* ---- flows ---- */

enum flow_kind { FLOW_EVENT = 0, FLOW_LOST = 1 };

struct flow {
	uint64_t seq;	  /* per node, from 1 */
	int64_t time_ns;  /* wall clock (CLOCK_REALTIME) */
	uint8_t kind;	  /* enum flow_kind */
	uint64_t lost;	  /* FLOW_LOST: events the ring had no room for since the last one */
	struct ciliate_event ev;
	struct flow_ep *src, *dst;   /* referenced; NULL: unknown */
	/* referenced; NULL: none. dst_svc: the frontend the datapath translated the packet
	 * from (ev.rev_nat_index), else the frontend that is its destination (a drop before
	 * translation); src_svc: the frontend that is its source (a reply after reverse NAT) */
	struct flow_svc *src_svc, *dst_svc;
	char ifname[16];	     /* the device the hook ran on ("" unknown) */
};

/* Fills f from ev (seq and time_ns are the caller's), looking both ends up in dir (may be
 * NULL); takes references. */
void flow_decode(struct flow *f, const struct ciliate_event *ev, const struct flow_dir *dir);

/* Copies src into dst with new references (dst may then outlive src's slot). */
void flow_copy(struct flow *dst, const struct flow *src);

/* Drops f's references and zeroes it. */
void flow_release(struct flow *f);

/* The wrapped Hubble JSON of f: {"flow":{...},"node_name":node,"time":...} or
 * {"lost_events":{...},"node_name":...,"time":...}. */
json_t *flow_to_json(const struct flow *f, const char *node);

/* ---- a bounded buffer of flows (Hubble's ring: the oldest is overwritten) ---- */

struct flow_buf {
	struct flow *v;
	size_t cap;
	uint64_t next_seq; /* seq of the next flow appended (first: 1) */
};

int flow_buf_init(struct flow_buf *b, size_t cap);
void flow_buf_free(struct flow_buf *b);

/* Appends f (its references move into the buffer; f is zeroed); sets its seq. */
void flow_buf_append(struct flow_buf *b, struct flow *f);

/* Number of flows held. */
size_t flow_buf_size(const struct flow_buf *b);

/* Copies (with references) the held flows with seq > since_seq, oldest first, into a new
 * array *out (*n of them); release each with flow_release and free the array. */
int flow_buf_copy_since(const struct flow_buf *b, uint64_t since_seq, struct flow **out,
			size_t *n);

#endif
