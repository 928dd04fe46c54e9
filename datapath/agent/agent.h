/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-agent internals (docs/AGENT.md). One single-threaded event loop per node:
 * store watch -> object cache -> model -> node state -> map diff -> BPF maps, plus the local
 * API socket, TC attachment of the pod veths, and periodic conntrack GC.
 */
#ifndef CILIATE_AGENT_H
#define CILIATE_AGENT_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent/identity_alloc.h"
#include "agent/ipam_rec.h"
#include "agent/kvset.h"
#include "common/diag.h"
#include "loader/datapath.h"
#include "loader/lb_maglev.h"
#include "model/model.h"
#include "store/store.h"

#define AGENT_PREFIX	  "/ciliate/"
#define AGENT_OBJ_PREFIX  "/ciliate/objects/"
#define AGENT_NODE_PREFIX "/ciliate/nodes/"
/* pod CIDR claims of registered nodes: /ciliate/podcidrs/<a.b.c.d>-<len> = {"node": N} */
#define AGENT_PODCIDR_PREFIX "/ciliate/podcidrs/"
/* written by agents and the operator for each other, never part of a model (the agent does
 * not cache or reconcile on them): heartbeats (with a lease), enforcement status */
#define AGENT_HEARTBEAT_PREFIX	 "/ciliate/health/agents/"
#define AGENT_NODE_STATUS_PREFIX "/ciliate/status/nodes/"
#define AGENT_STATUS_PREFIX	 "/ciliate/status/"
#define AGENT_HEALTH_PREFIX	 "/ciliate/health/"
/* the operator's election key: while it exists, the operator collects identities */
#define AGENT_OPERATOR_LEADER_KEY "/ciliate/operator/leader"

struct agent_opts {
	const char *node;
	const char *instance;	  /* --instance: pin dir and state dir name (default node) */
	const char *store_uri;
	const char *state_dir;	  /* default /run/ciliate/<node> */
	const char *cluster_file; /* --scenario-cluster: its Cluster document */
	int ct_gc_interval_s;
	int identity_gc_grace_s; /* unused identities are released after this (0: never) */
	bool trace_all;
	size_t flow_buffer_size; /* --flow-buffer-size: flows kept per node (default 4095) */
	const char *prometheus_addr; /* --prometheus-serve-addr: [HOST]:PORT, "" or "off": none */
	int routing; /* --routing: 0 the Cluster's, else ROUTING_TUNNEL + 1 or ROUTING_NATIVE + 1 */
	int health_port;       /* --health-port (health.c; 0: HEALTH_PORT_DEFAULT) */
	int health_interval_s; /* --health-interval, $CILIATE_HEALTH_INTERVAL (0: default) */
};

/* A store object as the agent last saw it (list + watch), keyed by store key. */
struct agent_obj {
	char *key;
	char *value;
	size_t len;
	int64_t create_rev;
	int64_t mod_rev;
	char *src;  /* "FILE:LINE" it was applied from (annotation), or NULL */
	char *good; /* the last version that was part of a good model (or NULL) */
	size_t good_len;
	int64_t bad_rev; /* mod_rev found bad (0: none) */
	char *error;	 /* why, for bad_rev */
	bool excluded;	 /* not part of the current model */
	int64_t idle_since_ms; /* identity records: unused by the model since (0: in use) */
	int64_t good_rev;      /* mod_rev of good */

	/* read from the value once per version (agent_obj_derive) */
	int64_t derived_rev;
	const char *obj_name; /* /ciliate/objects/<kind>/<ns>/<name>: "<ns>/<name>" (in key) */
	bool obj_model;	      /* a key of that form (kind shorter than 64) */
	bool obj_pod;	      /* ... and kind Pod */
	size_t src_flen; /* src: length of FILE and the LINE number, for ordering */
	long src_line;
	bool not_json;	       /* Pods: the value is not a JSON object */
	bool pod_hostnet;      /* Pods: spec.hostNetwork */
	char *pod_node;	       /* Pods: spec.nodeName (NULL: none) */
	uint32_t pod_ip;       /* Pods: status.podIP (network order; 0: none) */
	struct ipam_rec *ipam; /* IPAM records: the record (NULL: malformed) */

	/* the model part (model.h) of the version last given to the model: parsed once */
	struct model_part *part;
	int64_t part_rev; /* mod_rev of the text it was parsed from */
	uint32_t part_ip; /* the address given to a Pod as status.podIP */
	unsigned int part_gen; /* the Cluster it was parsed against (agent.cluster_gen) */
	bool part_good;	       /* parsed from good */
};

/* A pod that got an address (ipam-allocate) and whose endpoint-add has not come yet. */
struct agent_expect {
	char pod[IPAM_POD_MAX];
	int64_t at_ms;
};

/* A stored pod of this node whose status.podIP pins an address (IPAM). */
struct agent_pinned {
	uint32_t ip;	 /* network order */
	const char *pod; /* "ns/name", inside the object's key */
};

/* A stand-in Pod of the last model (an allocation without a usable Pod object). */
struct agent_standin {
	char *name; /* "/ciliate/ipam/<node>#<ns>/<name>" */
	uint32_t ip;
	unsigned int gen;
	struct model_part *part; /* NULL: it does not fit the model */
};

/* A local endpoint: a pod of this node with a host-side veth. Endpoints come from the CNI
 * plugin (endpoint-add, persisted in the state dir) or are discovered by the conventional
 * veth name of a pod that has an address on this node. */
struct agent_ep {
	char pod[IPAM_POD_MAX];
	char container_id[IPAM_CID_MAX];
	char ifname[IF_NAMESIZE];
	char netns[256];
	uint32_t ip;   /* network order */
	bool recorded; /* added through the API (persisted) */
	/* runtime state */
	uint32_t ifindex; /* 0: veth not found */
	uint32_t attached_ifindex;
	struct endpoint_info info; /* as programmed (ep_id 0: not in the model) */
	char error[256];
};

/* The maps the agent programs (reconcile.c map_desc). The Maglev tables (a hash of maps)
 * are diffed apart, in maglev_cur. Source ranges of the services have no map yet. */
enum agent_map {
	AM_IPCACHE,
	AM_POLICY,
	AM_ENDPOINTS,
	AM_LXC,
	AM_LB_SERVICES, /* lb_key -> lb_service */
	AM_LB_BACKENDS, /* u32 backend id -> lb_backend */
	AM_LB_REVNAT,	/* u32 rev_nat_index -> lb_reverse_nat */
	AM_LB_AFFINITY_MATCH, /* lb_affinity_match -> u32 1 (ClientIP affinity services) */
	AM_LB_SRC_RANGES,     /* lb_src_range_key -> u8 1 (loadBalancerSourceRanges) */
	AM_COUNT
};

struct agent_client {
	int fd;
	char *buf;
	size_t len, cap;
	char pending[IPAM_POD_MAX]; /* an endpoint-add waiting for the batch's reconcile ("") */
	bool eof;		    /* the client shut its side: closed once answered */
	/* op "observe" with follow: flows after follow_seq that pass filter are pushed */
	bool follow;
	uint64_t follow_seq;
	struct flow_filter *filter;
	/* op "health-status" with probe: answered once round health_want has ended (health.c) */
	bool health_wait;
	uint64_t health_want;
	int64_t health_since_ms;
};

/* What the event pipeline has seen (status, metrics). */
struct agent_monitor_counts {
	uint64_t seen;	     /* events decoded into flows since this agent started */
	uint64_t lost;	     /* events the ring had no room for since this agent started */
	uint64_t lost_total; /* ... since the node's maps were created (earlier agents too) */
	size_t capacity;     /* flow buffer */
	size_t size;
	uint64_t next_seq;
};

struct agent {
	struct agent_opts o;
	char state_dir[256];
	char sock_path[300];
	struct store *st;
	struct store_watch *w;
	struct datapath *dp;
	int lock_fd;

	/* the store as last listed/watched */
	struct agent_obj **objs; /* sorted by key; each allocated once, so pointers stay valid
				  * while keys come and go (inserting moves pointers only) */
	size_t nobjs, objs_cap;
	unsigned int pods_gen;		/* bumped whenever a Pod object is put or deleted */
	int batch_fd;			/* one-shot timer: answer the waiting endpoint-adds */
	struct agent_expect *expect;	/* pods given an address whose endpoint-add is to come */
	size_t nexpect, expect_cap;
	int64_t pending_since_ms;	/* when the waiting endpoint-adds began to wait (0) */
	uint64_t batches, batched_adds;	/* endpoint-add rounds, and the adds they answered */
	struct agent_pinned *pinned;	/* IPAM: this node's pods pinning status.podIP */
	size_t npinned, pinned_cap;
	unsigned int pinned_gen;	/* pods_gen they were gathered at */
	bool pinned_valid;
	int64_t rev;
	unsigned int watch_gen; /* bumped whenever the watch (and its fd) is replaced */
	bool dirty;		/* the cache changed since the last reconcile */
	unsigned int objs_gen;	/* bumped whenever a model object (AGENT_OBJ_PREFIX) comes or goes
				 * or its source changes: the model order is sorted again */

	/* the stored objects in model order (creation revision, manifest order), kept while
	 * no key comes or goes */
	struct agent_obj **order;
	size_t norder;
	unsigned int order_gen;
	bool have_order;

	/* the Cluster alone, which parts are parsed against; cluster_gen counts its changes */
	struct cluster_model *cluster_base;
	char *cluster_base_text;
	unsigned int cluster_gen;
	struct agent_standin *standins; /* sorted by name */
	size_t nstandins;

	/* the Cluster document the model is built with */
	char *cluster_text;
	size_t cluster_len;
	unsigned int cluster_flags;
	char cluster_name[300];

	/* the cluster model and what was programmed from it */
	struct cluster_model *model;
	struct node_state ns;
	bool have_ns;
	uint32_t pod_cidr; /* this node's pod range, network order */
	uint8_t pod_cidr_len;
	struct agent_ep *eps;
	size_t neps;
	uint32_t overlay_ifindex; /* CILIATE_OVERLAY_DEV the overlay programs are attached to */
	uint32_t netdev_ifindex;  /* the fabric device from-/to-netdev are attached to (netdev.c) */
	struct node_config netdev_cfg; /* what ciliate_node_cfg holds */
	bool netdev_cfg_written;
	uint32_t xdp_ifindex; /* the fabric device xdp_netdev is attached to (xdp.c), 0: none */
	/* egress.c: the ciliate_egress_gw entries written last (sorted by key bytes) */
	struct egress_rec *egress_written;
	size_t negress_written;
	bool egress_synced; /* written at least once since the start (stale ones deleted) */
	bool xdp_synced;      /* xdp.c ran once (a leftover attachment was looked at) */
	struct kvset cur[AM_COUNT]; /* the maps' contents */
	struct lb_maglev_table *maglev_cur; /* ciliate_lb_maglev's tables, sorted by key */
	size_t nmaglev_cur;

	/* statistics for `status` */
	int64_t model_rev; /* store revision of the last successful reconcile (modelRevision):
			    * model built, maps written, programs attached */
	int64_t built_rev; /* store revision the current model was built from */
	uint64_t reconciles;
	uint64_t reconcile_errors;
	double last_reconcile_ms;
	uint64_t objects_parsed; /* documents parsed into model parts (objects, stand-ins) */
	uint64_t full_builds;	 /* builds that fell back to parsing every document */
	int64_t last_reconcile_end_ms;
	size_t last_upserts, last_deletes;
	char last_error[1024];	 /* the last reconcile's failure ("": it succeeded) */
	int64_t last_error_rev;	 /* the store revision it failed for */
	char last_failure[1024]; /* the latest failure, kept after later successes ("": none) */
	int64_t last_failure_rev;
	int64_t last_failure_unix_ms;
	int64_t retry_ms;	 /* backoff of a failed reconcile's retry (0: none due) */
	int64_t retry_at_ms;
	uint64_t ct_gc_runs;
	size_t ct_gc_deleted;
	int64_t started_ms;

	struct agent_wg *wg;	       /* WireGuard (wireguard.c; NULL until the first sync) */
	struct agent_ipsec *ipsec;     /* IPsec (ipsec.c; NULL until the first sync) */
	struct agent_monitor *monitor; /* the event pipeline (monitor.c) */
	struct agent_metrics *metrics; /* the Prometheus listener (metrics.c; NULL: none) */
	struct agent_healthcheck *healthcheck; /* health-check NodePorts (healthcheck.c) */
	struct agent_store_health *store_health; /* reachability, heartbeat (store_health.c) */
	struct agent_health *health; /* node-to-node health (health.c; NULL: not started) */
	bool resync_pending; /* a re-list after the store came back failed: retried on the tick */

	/* event loop */
	int epfd, listen_fd, timer_fd, signal_fd;
	int coalesce_fd;     /* one-shot timer: the next coalesced reconcile */
	int ifreq_fd;        /* datagram socket for interface lookups (-1: not open yet) */
	bool coalesce_armed;
	struct agent_client *clients;
	size_t nclients;
	bool stop;
};

/* ---- log.c-free logging: agent_log() in main.c ---- */

/* Logs one line to stderr: "ciliate-agent[node]: message". */
void agent_log(const struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t agent_now_ms(void);

/* ---- store_health.c: the store as a dependency that fails ---- */

/* Starts the thread that probes the store, keeps the heartbeat and writes the status. */
int agent_store_health_start(struct agent *a, struct diag *d);
void agent_store_health_stop(struct agent *a);
/* Readable when the store answers again after it did not (-1: not started). */
int agent_store_health_fd(const struct agent *a);
/* Consumes that event: true if the store came back. */
bool agent_store_health_recovered(struct agent *a);
/* {"uri","backend","reachable","unreachableSince","lastOk","probes",...} for status. */
json_t *agent_store_health_json(const struct agent *a);
/* After a successful reconcile: the enforcement status, written by the thread if changed. */
void agent_store_status_publish(struct agent *a);

/* ---- objects.c: the store cache ---- */

/* Lists AGENT_PREFIX into the cache (replacing it) and opens the watch after it. */
int agent_objects_sync(struct agent *a, struct diag *d);

/* Applies pending watch events (timeout_ms as store_watch_next); *changed tells whether
 * anything changed. Re-lists after -ESTALE. */
int agent_objects_poll(struct agent *a, int timeout_ms, bool *changed, struct diag *d);

/* The cached object with key, or NULL. */
struct agent_obj *agent_obj_find(const struct agent *a, const char *key);

/* The index of the first cached object whose key is not below key (a->nobjs: none): the
 * objects under a prefix follow from there. */
size_t agent_objs_lower_bound(const struct agent *a, const char *key);

/* Puts kv into the cache / removes key from it: the watch does this, and the agent's own
 * writes do it at once, so its next read already sees them (IPAM). */
int agent_objects_put(struct agent *a, const struct store_kv *kv);
void agent_objects_delete(struct agent *a, const char *key);

/* Frees the cache. */
void agent_objects_free(struct agent *a);

/* Reads what the model and IPAM need from o's value, once per version: the source
 * annotation, a Pod's node, hostNetwork and status.podIP, an IPAM record. */
void agent_obj_derive(struct agent *a, struct agent_obj *o);

/* Forgets what agent_obj_derive read (the value changed). */
void agent_obj_underive(struct agent_obj *o);

/* qsort order of struct agent_obj pointers: creation revision, then source FILE:LINE (for
 * objects applied together), then key. Both objects must be derived. */
int agent_obj_cmp_order(const void *x, const void *y);

/* ---- build.c: the model from the cache ---- */

/* Builds the model from the cache: bad objects are reported, skipped (or replaced by their
 * last good version) and the build retried. Each object version is parsed once (its model
 * part is kept); the model is put together from the parts. On success replaces a->model. */
int agent_model_build(struct agent *a, struct diag *d);

/* Frees the build caches (order, Cluster, stand-ins). */
void agent_model_cache_free(struct agent *a);

/* Builds the text of the Cluster document (cluster file, or the node registry) in a. */
int agent_cluster_load(struct agent *a, struct diag *d);

/* Registers this node under /ciliate/nodes/<node> (no --scenario-cluster). */
int agent_node_register(struct agent *a, struct diag *d);

/* ---- identities.c: cluster identities from the store ---- */

/* Replaces the model's manifest-order identity numbers with the store's, allocating (by
 * compare-and-swap, see identity_alloc.h) the label sets nobody allocated yet. Without a
 * store (a->st NULL) the model's numbers stay. */
int agent_identities_resolve(struct agent *a, struct cluster_model *m, struct diag *d);

/* Releases identity records no pod of the current model has used for
 * o.identity_gc_grace_s seconds (called from the 1 s tick; now_ms on CLOCK_MONOTONIC). */
void agent_identities_gc(struct agent *a, int64_t now_ms);

/* The identities of the current model (reserved ones first) as a JSON array of
 * {"id","labels":[...],"source"}, plus every stored record not in the model. */
json_t *agent_identities_json(const struct agent *a);

/* The labels of identity id as ["k8s:app=web", ...] (reserved:NAME for reserved ones;
 * [] when the model does not know it). */
json_t *agent_identity_labels_json(const struct agent *a, uint32_t id);

/* ---- ipam.c: store round trips ---- */

/* Allocates (idempotently) an address for pod on this node; see ipam_rec_allocate. */
int agent_ipam_allocate(struct agent *a, const char *pod, const char *container_id,
			uint32_t requested, uint32_t *ip, struct diag *d);

/* Releases the address of pod / container_id on this node; *ip gets it (0: none). */
int agent_ipam_release(struct agent *a, const char *pod, const char *container_id, uint32_t *ip,
		       struct diag *d);

/* ---- endpoints.c: the persisted endpoint records ---- */

/* Loads state_dir/endpoints.json (missing file: no endpoints). */
int agent_eps_load(struct agent *a, struct diag *d);

/* Writes state_dir/endpoints.json atomically (recorded endpoints only). */
int agent_eps_save(struct agent *a, struct diag *d);

/* The endpoint of pod, or NULL. */
struct agent_ep *agent_ep_find(struct agent *a, const char *pod);

/* The endpoint with container_id, or NULL. */
struct agent_ep *agent_ep_find_cid(struct agent *a, const char *container_id);

/* Adds (or returns the existing) endpoint for pod. */
struct agent_ep *agent_ep_get(struct agent *a, const char *pod);

/* Removes the endpoint at index i. */
void agent_ep_remove(struct agent *a, size_t i);

/* JSON view of one endpoint for the API. */
json_t *agent_ep_json(const struct agent *a, const struct agent_ep *ep);

/* ---- services.c ---- */

/* This node's service frontends (the service-list op): one object per frontend entry of the
 * node state, {id, frontend, frontendAddress, type, flags, namespace, name, portName,
 * extTrafficPolicy, intTrafficPolicy, backends[{id, slot, address, ip, port, protocol,
 * state}]}, in the node state's order. */
json_t *agent_services_json(const struct agent *a);

/* ---- reconcile.c ---- */

/* Reads the pinned maps into a->cur (start-up, or after a failed write). */
int agent_maps_load(struct agent *a, struct diag *d);

/* Rebuilds the model and brings the maps and TC attachments in line with it. Only a
 * complete success (model, map writes, attachments) advances modelRevision; a failure is
 * recorded for `status` (last_error) and retried with a backoff (agent_veths_changed). */
int agent_reconcile(struct agent *a, struct diag *d);

/* Re-checks the local veths (created, deleted, renumbered); true if a reconcile is due,
 * also when a failed reconcile's retry is due. */
bool agent_veths_changed(struct agent *a);

/* Adds lastErrorRevision and lastFailure to the status op's "reconcile" object. */
void agent_reconcile_status(const struct agent *a, json_t *reconcile);

/* ---- wireguard.c: transparent encryption (docs/ENCRYPTION.md) ---- */

/* Device, key, published key, peers and the ipcache's encrypt_key marks from the model and
 * the store; run by every reconcile before the maps are written. */
int agent_wireguard_sync(struct agent *a, struct diag *d);

/* The encryption fields of the node config (device ifindex, strict mode). */
void agent_wireguard_node_cfg(struct agent *a, struct node_config *cfg);

/* The 1 s tick: starts the first handshake with new peers ahead of traffic (wireguard.c). */
void agent_wireguard_tick(struct agent *a);

/* True when the device went away (wireguard-go exited): a reconcile restarts it. */
bool agent_wireguard_changed(struct agent *a);

/* The encrypt-status op's answer: mode, interface, key, peers read back from the device. */
json_t *agent_wireguard_status(struct agent *a);

void agent_wireguard_free(struct agent *a);

/* ---- ipsec.c: IPsec through kernel XFRM (docs/IPSEC.md) ---- */

/* Key file, rotation, announced key id and the XFRM states and policies; run by every
 * reconcile. Fails (with the reason) where the kernel cannot do ESP. */
int agent_ipsec_sync(struct agent *a, struct diag *d);

/* True when the key file changed or a previous key's grace period ended. */
bool agent_ipsec_changed(struct agent *a);

bool agent_ipsec_enabled(const struct agent *a);

/* The encrypt-status op's answer for IPsec: keys, SAs, sequence numbers, errors. */
json_t *agent_ipsec_status(struct agent *a);

void agent_ipsec_free(struct agent *a);

/* Sets a link up with the given MTU (0: leave it). */
int agent_link_up(struct agent *a, const char *name, unsigned int mtu, struct diag *d);

/* ---- attach.c ---- */

/* The ifindex of the node's interface name (0: none), like if_nametoindex() but on one
 * socket kept open: reconciles look up every endpoint's veth, and a socket per lookup made
 * that the agent's largest cost at 1,000 endpoints. */
uint32_t agent_ifindex(struct agent *a, const char *name);

/* Attaches ingress_fd at TC ingress and egress_fd at TC egress of ifindex (clsact, replacing
 * ciliate's own filters: idempotent across restarts). */
int agent_tc_attach(int ifindex, int ingress_fd, int egress_fd, struct diag *d);

/* Tunnel routing: attaches from-overlay / to-overlay to CILIATE_OVERLAY_DEV when it exists and
 * they are not attached to it yet (again after the device was re-created). Fails (d) when
 * the attachment fails. */
int agent_overlay_sync(struct agent *a, struct diag *d);

/* True when CILIATE_OVERLAY_DEV appeared, vanished or was re-created (tunnel routing). */
bool agent_overlay_changed(const struct agent *a);

/* The fabric device (the interface holding the node's address): attaches from-netdev and
 * to-netdev to it when it appears or changes, and writes ciliate_node_cfg when the node's
 * settings change (netdev.c). Fails (d) when the attachment or the write fails. */
int agent_netdev_sync(struct agent *a, struct diag *d);

/* A ciliate_egress_gw entry as written: key and value. */
struct egress_rec {
	struct egress_gw_key key;
	struct egress_gw_value val;
};

/* Writes ciliate_egress_gw from the model (an interface's egress IP looked up here) and
 * deletes what the model no longer has (egress.c, docs/EGRESS.md). */
int agent_egress_sync(struct agent *a, struct diag *d);

/* The egress gateway policies and their chosen gateway nodes, for `ciliate status`. */
json_t *agent_egress_status(const struct agent *a);

/* True when the fabric device changed under the attached programs. */
bool agent_netdev_changed(struct agent *a);

/* XDP on the fabric device (xdp.c, docs/XDP.md): writes ciliate_prefilter from the model and
 * attaches xdp_netdev in native mode when bpf-lb-acceleration is native or the prefilter has
 * entries (detaches it otherwise). Called by agent_netdev_sync with the device it found. */
int agent_xdp_sync(struct agent *a, uint32_t ifindex, const char *name, struct diag *d);

/* Removes the clsact qdisc (and so the programs) from ifindex; missing is fine. */
int agent_tc_detach(int ifindex, struct diag *d);

/* ---- monitor.c: events -> flows ---- */

struct flow;

/* Starts the event reader thread and registers its notification fd in the loop. */
int agent_monitor_start(struct agent *a, struct diag *d);

/* Stops the reader and frees the flow buffer. */
void agent_monitor_stop(struct agent *a);

/* The fd the loop polls: readable when followers have new flows. */
int agent_monitor_fd(const struct agent *a);

/* Rebuilds the directory flows are enriched from (after a reconcile changed something). */
void agent_monitor_refresh(struct agent *a);

/* Copies the buffered flows with seq > since_seq (see flow_buf_copy_since). */
int agent_monitor_copy(struct agent *a, uint64_t since_seq, struct flow **out, size_t *n);

void agent_monitor_counts(struct agent *a, struct agent_monitor_counts *c);

/* Acknowledges a notification; any: followers remain (so notify again). */
void agent_monitor_follow(struct agent *a, bool any);

/* ---- observe.c: the "observe" op ---- */

/* Answers op "observe" (docs/OBSERVABILITY.md); with follow the client becomes a follower. */
json_t *agent_op_observe(struct agent *a, struct agent_client *c, json_t *req);

/* Pushes new flows to every follower (the monitor fd fired). */
void agent_observe_push(struct agent *a);

/* ---- server.c ---- */

/* Sends resp (consumed) as one line to c; false when the client was closed. */
bool agent_client_send(struct agent *a, struct agent_client *c, json_t *resp);


/* Creates the API socket (replacing a stale one) and registers it in the loop. */
int agent_server_open(struct agent *a, struct diag *d);

/* Answers c's further request lines after a deferred answer was sent (health.c). */
void agent_server_resume(struct agent *a, struct agent_client *c);

/* Accepts a connection on the listening socket. */
void agent_server_accept(struct agent *a);

/* Reads from client fd and answers every complete request line. */
void agent_server_client(struct agent *a, int fd);

/* Answers the waiting endpoint-adds after one reconcile for all of them (call after each
 * batch of events, and when batch_fd fires). */
void agent_server_finish(struct agent *a);

/* Closes every client and the socket (the socket file is removed). */
void agent_server_close(struct agent *a);

/* ---- metrics.c: Prometheus /metrics (docs/OBSERVABILITY.md, Metrics) ---- */

/* Parses --prometheus-serve-addr ("[HOST]:PORT", "[v6]:PORT"): 0 with host ("" = any) and
 * port, 1 when disabled (NULL, "" or "off"), negative with d->msg when malformed. */
int agent_metrics_addr_parse(const char *spec, char *host, size_t hostlen, uint16_t *port,
			     struct diag *d);

/* Opens the listener on o.prometheus_addr and registers it in the loop. A port that cannot
 * be bound is logged and the agent runs without metrics; a malformed address fails. */
int agent_metrics_open(struct agent *a, struct diag *d);

/* Handles an event of fd if it is the metrics listener or one of its connections (true). */
bool agent_metrics_handle(struct agent *a, int fd);

/* The exposition text (text format 0.0.4) as a scrape would get it now (*out: free()). */
int agent_metrics_render(const struct agent *a, char **out, size_t *len);

/* Closes the listener and its connections. */
void agent_metrics_close(struct agent *a);

/* ---- healthcheck.c: health-check NodePorts (docs/SERVICES.md, Health-check NodePort) ---- */

/* Brings the listeners in line with the model in force (after each successful reconcile):
 * opens new services' ports, closes those of services gone or moved, updates the counts. */
void agent_healthcheck_sync(struct agent *a);

/* Handles an event of fd if it is a health-check listener, connection or retry timer. */
bool agent_healthcheck_handle(struct agent *a, int fd);

/* Closes every health-check listener. */
void agent_healthcheck_close(struct agent *a);

#endif
