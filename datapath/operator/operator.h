/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-operator: the cluster-wide chores of one leader-elected instance (docs/OPERATOR.md):
 * identity garbage collection, the release of departed nodes' registry, pod CIDR and IPAM
 * records, and per-policy enforcement status. Any number of operators share a store; one
 * holds the leader key through a store lease, the others stand by and take over when it dies.
 *
 * Files: main.c (options, event loop), leader.c (the lease election), view.c (one list of
 * /ciliate/ parsed per pass), gc_identities.c, gc_nodes.c, policy_status.c (the chores),
 * pass.c (one pass: the chores and the operator's status key).
 */
#ifndef CILIATE_OPERATOR_H
#define CILIATE_OPERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "store/store.h"

/* The store key contract (docs/OPERATOR.md "Keys"). */
#define OP_LEADER_KEY	     "/ciliate/operator/leader"
#define OP_STATUS_KEY	     "/ciliate/operator/status"
#define OP_HEARTBEAT_PREFIX  "/ciliate/health/agents/"
#define OP_NODE_STATUS_PFX   "/ciliate/status/nodes/"
#define OP_POLICY_STATUS_PFX "/ciliate/status/policies/"
#define OP_NODES_PREFIX	     "/ciliate/nodes/"
#define OP_PODCIDRS_PREFIX   "/ciliate/podcidrs/"
#define OP_OBJECTS_PREFIX    "/ciliate/objects/"

#define OP_TXN_KEYS 60 /* keys per chore txn: each with a compare, under etcd's 128 ops */

struct op_opts {
	const char *store_uri;
	char id[128];
	int lease_ttl_s;
	int identity_gc_grace_s; /* 0: never */
	int node_gc_timeout_s;	 /* 0: never */
	int interval_s;
	const char *pidfile;
};

/* One identity the leader has seen unused: since when (monotonic ms) and at which mod_rev. */
struct op_idclock {
	uint32_t id;
	int64_t mod_rev;
	int64_t since_ms;
	bool seen; /* in the current pass */
};

/* One node the leader has seen without a heartbeat, since when. */
struct op_nodeclock {
	char name[256];
	int64_t since_ms;
	bool seen;
};

struct op {
	struct op_opts o;
	struct store *st;
	struct store_watch *w; /* the leader key */
	int64_t lease;	       /* 0: none */
	int64_t lease_ok_ms;   /* last grant or keepalive that worked (monotonic) */
	bool leader;
	int64_t leader_rev;    /* mod_revision of our leader key */
	int64_t since;	       /* unix seconds: leader since */
	int64_t next_campaign_ms, next_keepalive_ms, next_pass_ms;
	int64_t seen_rev;      /* mod_revision of the newest leader key seen (older events: stale) */
	char seen_leader[160]; /* the leader last logged by this standby ("" none) */
	char campaign_error[1024]; /* the last campaign error logged (logged once each) */
	/* the leader's clocks and totals (reset when it becomes leader) */
	struct op_idclock *idc;
	size_t nidc, capidc;
	struct op_nodeclock *ndc;
	size_t nndc, capndc;
	uint64_t identities_collected, nodes_released;
	size_t policies;
	bool healthy;
	char last_error[512];
};

/* ---- one pass's picture of the store (view.c) --------------------------------------------- */

struct op_node_status {
	const char *node;	/* points into the list's key */
	int64_t revision;	/* the store revision its datapath reflects */
	uint32_t *ids;		/* sorted */
	size_t nids;
	void *policies;		/* json_t object: suffix -> mod_revision (owned) */
	bool live;		/* a heartbeat exists */
	const struct store_kv *kv;
};

struct op_view {
	struct store_list l;
	const struct store_kv *leader; /* NULL: no leader key */
	const struct store_kv *status; /* the operator status key */
	const struct store_kv **heartbeats;
	size_t nheartbeats;
	struct op_node_status *ns;
	size_t nns;
	size_t bad_status; /* malformed node status keys (count as using every identity) */
	const struct store_kv **identities; /* identity records */
	size_t nidentities;
	const struct store_kv **policies; /* policy objects */
	size_t npolicies;
	const struct store_kv **pstatus; /* /ciliate/status/policies/... */
	size_t npstatus;
};

int op_view_load(struct op *op, struct op_view *v, struct diag *d);
void op_view_free(struct op_view *v);
/* The heartbeat key of node, or NULL. */
const struct store_kv *op_view_heartbeat(const struct op_view *v, const char *node);
/* The node status of node, or NULL. */
const struct op_node_status *op_view_node_status(const struct op_view *v, const char *node);
/* The item at key (binary search in the sorted list), or NULL. */
const struct store_kv *op_view_get(const struct op_view *v, const char *key);

/* ---- the chores (leader only); each returns 0 or the first error that is not a lost
 * compare (a lost compare is logged and ignored: the next pass sees the new state) ---------- */

int op_gc_identities(struct op *op, const struct op_view *v, struct diag *d);
int op_gc_nodes(struct op *op, const struct op_view *v, struct diag *d);
int op_policy_status(struct op *op, const struct op_view *v, struct diag *d);

/* One pass: list, chores, the status key. */
void op_pass(struct op *op);
/* Forgets the chores' clocks and totals (a new term). */
void op_clocks_reset(struct op *op);

/* A chore txn: the leader key still ours, plus the caller's compares and ops. */
int op_txn(struct op *op, const struct store_cmp *cmps, size_t ncmps, const struct store_op *ops,
	   size_t nops, struct diag *d);

/* ---- election (leader.c) ------------------------------------------------------------------- */

/* Grants the lease (if none) and tries to create the leader key; opens the watch if needed. */
void op_campaign(struct op *op);
/* Keeps the lease alive; steps down when it expired. */
void op_keepalive(struct op *op);
/* Handles the watch's events (a DELETE of the leader key: campaign). */
void op_watch_events(struct op *op);
/* Steps down (stops the chores) with a reason. */
void op_step_down(struct op *op, const char *why);
/* Revokes the lease (the leader key goes with it) on exit. */
void op_resign(struct op *op);

/* ---- misc (main.c) ------------------------------------------------------------------------- */

void op_log(const struct op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t op_now_ms(void); /* monotonic */
int64_t op_unix_s(void);

#endif
