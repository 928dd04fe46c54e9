/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-sim: the cluster simulator (SPEC sections 5 and 9; docs/SIMULATOR.md).
 *
 * A scenario's Cluster becomes network namespaces on this machine, all named with the
 * simulator's prefix "cil-<tag>-": a fabric (bridge br0), one namespace per node, per
 * external host and per pod. What `up` creates is recorded in a state file
 * (/run/ciliate/sim/<tag>.json) before it is created, so `down` removes exactly that, also
 * after a crashed run.
 */
#ifndef CILIATE_SIM_H
#define CILIATE_SIM_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/diag.h"
#include "kubelet.h"
#include "model/model.h"
#include "netns.h"

#define SIM_PREFIX "cil-"
#define SIM_STATE_DIR "/run/ciliate/sim"
#define SIM_BPFFS_DIR "/sys/fs/bpf/ciliate"
#define SIM_TAG_MAX 8
#define SIM_MAX_PORTS 64
#define SIM_NODEPORT_MIN 30000 /* Kubernetes default service-node-port-range */
#define SIM_NODEPORT_MAX 32767
#define SIM_VXLAN_DEV "vxlan0" /* CILIATE_OVERLAY_DEV: the agent attaches the overlay hooks */
/* The key of the kernel routes into the overlay (VNI = host identity, 1): what the device sends
 * with when no program sets one (--no-datapath). to-overlay replaces it per packet. */
#define SIM_VXLAN_ROUTE_VNI 1
#define SIM_VXLAN_PORT 8472
#define SIM_MTU 1500
#define SIM_WIREGUARD_OVERHEAD 80 /* pods' MTU with encryption: wireguard (Cilium's figure) */
#define SIM_WG_READY_MS 8000      /* bring-up: every WireGuard peer has had a handshake */
#define SIM_TUNNEL_MTU 1450  /* VXLAN over IPv4 costs 50 bytes */
#define SIM_ECHO_READY_MS 3000
#define SIM_STORE_KEEP_REVISIONS 1000 /* history the cluster's store keeps when it compacts */
#define SIM_STOP_GRACE_MS 2000
#define SIM_DROP_REASONS 256 /* CILIATE_REASON_MAX: drop codes are 128..255 */

/* Exit codes. */
#define SIM_EXIT_OK 0
#define SIM_EXIT_FAIL 1
#define SIM_EXIT_USAGE 2

enum sim_kind { SIM_NODE = 0, SIM_EXT = 1, SIM_POD = 2 };

/* A process the simulator started; start guards against pid reuse. */
struct sim_proc {
	pid_t pid;
	unsigned long long start;
};

/* A simulated host: a node, an external host or a pod. */
struct sim_host {
	enum sim_kind kind;
	char name[KUBELET_ID_MAX];   /* node name, external host name, or "ns/pod" */
	char netns[NETNS_NAME_MAX];  /* where it lives (hostNetwork pods: their node's) */
	char node[64];               /* pods: the node they run on */
	uint32_t ip;                 /* network order (hostNetwork pods: the node's) */
	uint32_t pod_cidr;           /* nodes: their pod range */
	uint8_t pod_cidr_len;
	char ifname[IFNAMSIZ];       /* pods: the lxc device; nodes, ext: veth end on br0 */
	bool host_network;
	bool own_netns;              /* nodes, ext hosts and non-hostNetwork pods */
	uint16_t ports[SIM_MAX_PORTS];
	size_t nports;
	struct sim_proc echo;        /* its ciliate-echo, if it has ports */
	struct sim_proc agent;       /* nodes: the datapath agent, once one is attached */
	bool link_down;              /* nodes: unplugged by a link-down fault of this run */
	bool agent_stopped;          /* nodes: a withdraw-key fault stopped the agent (until a
				      * restart-agent): nobody waits for it to reconcile */
};

/* A cluster as planned from a scenario or loaded from a state file. */
struct sim_cluster {
	char tag[SIM_TAG_MAX + 1];
	char name[64];
	char scenario[PATH_MAX];     /* absolute path of the scenario file */
	char fabric[NETNS_NAME_MAX];
	bool tunnel;
	uint32_t underlay;
	uint8_t underlay_len;
	unsigned int mtu;            /* pod veth MTU */
	struct sim_host *hosts;      /* nodes, then external hosts, then pods */
	size_t nhosts;
	char **pins;                 /* bpffs paths the datapath pinned (removed by down) */
	size_t npins;
	char phase[16];              /* "creating", "up" or "deleting" */
	struct sim_proc owner;       /* the ciliate-sim process that is bringing it up */
	bool datapath;               /* every node has a datapath attached */
	bool keep;                   /* brought up by `up`: stays until `down` */
	long long up_ms;             /* bring-up duration */
	char store_uri[PATH_MAX];    /* --store etcd://...?netns=... ("": the embedded store) */
	struct sim_proc operator_proc; /* the cluster's ciliate-operator */
};

/* ---- plan.c --------------------------------------------------------------------------- */

/* Derives the cluster tag (≤ 8 lowercase alphanumerics) from a Cluster's metadata.name. */
void sim_tag(const char *cluster_name, char out[SIM_TAG_MAX + 1]);

/* Plans the namespaces, devices and addresses of scenario s (nothing is created). */
int sim_plan(const struct scenario *s, struct sim_cluster *c, struct diag *d);

/* Frees what sim_plan() or sim_state_load() allocated and zeroes c. */
void sim_cluster_free(struct sim_cluster *c);

/* Finds a host by kind and name; NULL if absent. */
struct sim_host *sim_find_host(const struct sim_cluster *c, enum sim_kind kind,
			       const char *name);

/* Finds the host owning address ip (network order; pods before nodes); NULL if none. */
const struct sim_host *sim_host_by_ip(const struct sim_cluster *c, uint32_t ip);

/* Writes "cil-<tag>-" into buf. */
void sim_netns_prefix(const char *tag, char *buf, size_t size);

/* ---- state.c -------------------------------------------------------------------------- */

/* Writes /run/ciliate/sim/<tag>.json path into buf. */
void sim_state_path(const char *tag, char *buf, size_t size);

/* Writes the run directory /run/ciliate/sim/<tag> (pidfiles, logs) into buf. */
void sim_run_dir(const char *tag, char *buf, size_t size);

/* Atomically writes c's state file (creating the state directory). */
int sim_state_save(const struct sim_cluster *c, struct diag *d);

/* Loads the state file of tag into c; -ENOENT if there is none. */
int sim_state_load(const char *tag, struct sim_cluster *c, struct diag *d);

/* Lists the tags that have a state file; free with strv_free(). */
int sim_state_tags(char ***tags, size_t *n);

/* Builds the JSON text of c's state with live details (process and namespace liveness)
 * when live is set; free() the result. */
char *sim_state_dump(const struct sim_cluster *c, bool live);

/* ---- up.c ----------------------------------------------------------------------------- */

/* Directory holding ciliate-sim and its sibling binaries (ciliate-echo, ciliate-probe). */
const char *sim_bin_dir(void);

/* Creates everything c describes (progress on stderr). On failure tears down what it made. */
int sim_up(struct sim_cluster *c, const struct scenario *s, struct diag *d);

/* ---- down.c --------------------------------------------------------------------------- */

/* Removes the cluster of tag: processes from its state file (and the simulator's own
 * binaries still running inside its namespaces), every cil-<tag>-* namespace, pinned paths,
 * the run directory and the state file. Idempotent. */
int sim_down_tag(const char *tag, bool quiet, struct diag *d);

/* Stops the recorded processes (SIGTERM, then SIGKILL after a grace period); only those
 * whose recorded start time still matches (never a reused pid). */
void sim_stop_procs(struct sim_proc *const *procs, size_t n);

/* ---- datapath.c ----------------------------------------------------------------------- */

/* Where the node's datapath (the ciliate-agent) starts. Sets *attached when one runs. */
int sim_attach_datapath(struct sim_cluster *c, struct sim_host *node, bool *attached,
			struct diag *d);

/* Applies a Test step's state changes (apply, manifests, delete) to the cluster's store
 * with `ciliate apply/delete`, then waits (bounded) until every agent reconciled; a rejected
 * manifest fails with the CLI's FILE:LINE message and leaves the store as it was.
 * -EOPNOTSUPP with a reason while no datapath is attached. */
int sim_apply_step(struct sim_cluster *c, const struct m_step *st, struct diag *d);

/* Set by `--no-datapath`: plain kernel routing and the simulator's own pod plumbing. */
extern bool sim_no_datapath;
/* --routing: replaces every scenario's Cluster routing */
enum sim_routing { SIM_ROUTING_SCENARIO = 0, SIM_ROUTING_TUNNEL, SIM_ROUTING_NATIVE };
extern enum sim_routing sim_routing_override;

/* ---- store.c -------------------------------------------------------------------------- */

/* --store URI of up/run ("" or NULL: each cluster's own embedded store). */
extern const char *sim_store_override;

/* Sets c->store_uri from --store (adding netns= for where the simulator runs). */
int sim_store_configure(struct sim_cluster *c, struct diag *d);

/* The store URI the cluster's agents, CLI calls and the simulator use. */
void sim_store_uri(const struct sim_cluster *c, char *buf, size_t size);

/* etcd: refuses a store another live cluster owns, removes leftovers, records the owner. */
int sim_store_claim(struct sim_cluster *c, struct diag *d);

/* etcd: deletes the cluster's keys (down). */
void sim_store_release(const struct sim_cluster *c, bool quiet);

/* Starts the cluster's ciliate-operator where the simulator runs. */
int sim_operator_start(struct sim_cluster *c, struct diag *d);

/* The per-cluster store directory /run/ciliate/sim/<tag>/store. */
void sim_store_dir(const char *tag, char *buf, size_t size);

/* The API socket of node's agent (/run/ciliate/cil-<tag>-<node>/agent.sock). */
void sim_agent_sock(const struct sim_host *node, char *buf, size_t size);

/* Creates the store and writes the scenario's Kubernetes documents to it (no-op without a
 * datapath). */
int sim_datapath_prepare(struct sim_cluster *c, struct diag *d);

/* With encryption: wireguard, waits (bounded, SIM_WG_READY_MS) until every node has had a
 * handshake with each of its peers (the agents start them ahead of traffic): the cluster is
 * "up" once pods can talk encrypted at once. A no-op for other clusters. */
int sim_encryption_ready(const struct sim_cluster *c, struct diag *d);

/* Waits (bounded) until every started agent answers on its socket. */
int sim_datapath_wait(struct sim_cluster *c, struct diag *d);

/* Waits (bounded) until every agent's model is built from the store's current revision:
 * pods another node plumbed a moment ago are in every node's ipcache. A no-op without the
 * datapath. */
int sim_datapath_settle(const struct sim_cluster *c, struct diag *d);

/* The store's current revision. */
int sim_store_revision(const struct sim_cluster *c, int64_t *rev, struct diag *d);

/* Per-reason drop packet counters of node's pinned ciliate_metrics (CILIATE_REASON_MAX
 * entries, summed over directions and CPUs). */
int sim_drops_read(const struct sim_cluster *c, const struct sim_host *node, uint64_t *out);

/* "POLICY_DENIED" for 133. */
const char *sim_drop_reason_name(unsigned int code);

/* ---- run.c ---------------------------------------------------------------------------- */

struct sim_report;

/* Creates an empty report. */
struct sim_report *sim_report_new(void);

/* Frees a report. */
void sim_report_free(struct sim_report *r);

/* Runs every Test document of s against the running cluster c, printing results and adding
 * them to r. Returns the number of failed checks, or a negative errno. */
int sim_run_tests(struct sim_cluster *c, const struct scenario *s, struct sim_report *r);

/* Records a check that failed before any Test ran (load, bring-up, teardown). */
void sim_report_error(struct sim_report *r, const char *scenario, const char *name,
		      const char *reason);

/* Records one scenario's bring-up and teardown times. */
void sim_report_scenario(struct sim_report *r, const char *scenario, const char *tag,
			 long long up_ms, long long down_ms, bool reused);

/* Prints the summary table; returns the number of failed checks. */
int sim_report_summary(const struct sim_report *r);

/* Writes the JSON report. */
int sim_report_write(const struct sim_report *r, const char *path, struct diag *d);

/* Set by SIGINT/SIGTERM during `run`: stop probing and tear down. */
extern volatile int sim_interrupted;

/* ---- cmds.c --------------------------------------------------------------------------- */

/* `ciliate-sim up FILE` */
int cmd_up(int argc, char **argv);

/* `ciliate-sim down [FILE|TAG|--all]` */
int cmd_down(int argc, char **argv);

/* `ciliate-sim run FILE... [--report FILE.json]` */
int cmd_run(int argc, char **argv);

/* `ciliate-sim exec TARGET -- CMD...` */
int cmd_exec(int argc, char **argv);

/* `ciliate-sim status [-o json]` */
int cmd_status(int argc, char **argv);

/* `ciliate-sim capture TARGET [-w FILE] [--count N] [--timeout S]` */
int cmd_capture(int argc, char **argv);

/* Monotonic milliseconds. */
long long sim_now_ms(void);

#endif
