/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ciliate connectivity test` (docs/CONNECTIVITY-TEST.md): Cilium's post-install suite,
 * offline and self-cleaning. One job per file:
 *   env.c        the cluster under test: a simulated one (--cluster TAG) or this host's agent
 *   workloads.c  the suite's namespace, pods (netns + ciliate-cni), echo servers, services;
 *                removal of all of it, also of a killed earlier run's leftovers
 *   probe.c      actions: ciliate-probe runs inside namespaces, in parallel, bounded
 *   flows.c      drop events from every agent's flows (op "observe"): deny proofs and
 *                no-unexpected-packet-drops
 *   cases.c      the tests and their actions and policies
 *   report.c     progress on stderr, the summary (or -o json) on stdout
 *   junit.c      --junit-file
 */
#ifndef CILIATE_CONNECTIVITY_CT_H
#define CILIATE_CONNECTIVITY_CT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define CT_RUN_DIR	    "/run/ciliate/connectivity" /* per run: <tag>-<namespace>/ */
#define CT_NETNS_PREFIX	    "cil-ct-"			/* cil-ct-<tag>-<namespace>-<pod> */
#define CT_DEFAULT_NS	    "cilium-test"
#define CT_ECHO_PORT	    8080
#define CT_NODES_MAX	    16
#define CT_EXTS_MAX	    16
#define CT_PODS_MAX	    4
#define CT_ACTIONS_MAX	    64
#define CT_PROBE_TIMEOUT_MS 1000  /* per attempt, as the simulator's probes */
#define CT_SETTLE_MS	    10000 /* agents reaching the store's revision */

struct ct_node {
	char name[128];
	char netns[128]; /* "" on a real host: this process's namespace */
	char ip[16];
	char sock[300]; /* the agent's API socket */
};

struct ct_ext {
	char name[128];
	char netns[128];
	char ip[16];
	int port; /* the first port its server answers on, else 80 */
};

/* The cluster under test. */
struct ct_env {
	bool sim;	  /* --cluster: a simulated cluster */
	char tag[64];	  /* the cluster tag; "host" on a real host */
	char store[1024]; /* the store URI */
	char bin_dir[4096];
	unsigned int mtu;
	struct ct_node nodes[CT_NODES_MAX];
	size_t nnodes;
	struct ct_ext exts[CT_EXTS_MAX];
	size_t nexts;
};

enum ct_pod_id { CT_CLIENT, CT_CLIENT2, CT_ECHO_SAME, CT_ECHO_OTHER };

struct ct_pod {
	const char *name;
	const char *labels; /* YAML flow mapping */
	bool echo;
	bool deployed;
	size_t node; /* index into env.nodes */
	char netns[128];
	char ip[16];
};

struct ct_svc {
	const char *name;   /* = its backend pod's name */
	enum ct_pod_id pod; /* the only backend */
	char cluster_ip[16];
	int node_port;
};

struct ct_ctx {
	struct ct_env env;
	const char *ns;
	bool single_node;
	bool verbose;		    /* every action's outcome on stderr */
	const struct ct_ext *world; /* --external-target (an external host), or NULL */
	char world_ip[16];
	int world_port;
	char run_dir[512];
	char netns_prefix[160]; /* cil-ct-<tag>-<ns>- */
	struct ct_pod pods[CT_PODS_MAX];
	struct ct_svc svcs[2];
	pid_t echo_pid;
	unsigned long long echo_start;
	uint64_t since[CT_NODES_MAX];	     /* each agent's last flow seq before the tests */
	volatile sig_atomic_t *stop;	     /* set by SIGINT/SIGTERM */
	json_t *expected_drops;		     /* tuples the deny actions were proven by */
	double deploy_s, tests_s, cleanup_s; /* measured durations */
};

enum ct_expect { CT_ALLOW, CT_DENY };

struct ct_action {
	char name[96]; /* "pod-to-pod/curl-0" */
	char src[200]; /* "cilium-test/client (10.244.0.10)" */
	char dst[200]; /* "cilium-test/echo-same-node (10.244.0.11:8080)" */
	char netns[128];
	char src_ip[16];
	char to[16];
	int port; /* 0: ICMP */
	bool http;
	enum ct_expect expect;
	char want[200];	  /* allow: the answer must name this ("ns/pod", ext name) */
	char alt_dst[16]; /* deny to a service: the drop may name the backend instead */
	int alt_port;
	/* outcome */
	bool pass;
	char reason[768];
	char observed[400];
	uint16_t sports[8];
	size_t nsports;
	double ms;
};

/* ---- env.c ---- */

/* Fills env from the simulated cluster tag (or, tag NULL, this host's agent: node given,
 * or the only one under /run/ciliate in this network namespace). 0, or -1 with err set. */
int ct_env_load(struct ct_env *env, const char *tag, const char *node, const char *store, char *err,
		size_t errsize);

/* Asks an agent for op with request fields (req may be NULL: none; it is consumed): the
 * answer when "ok", else NULL with err set. */
json_t *ct_agent(const struct ct_node *n, const char *op, json_t *req, int timeout_ms, char *err,
		 size_t errsize);

/* Waits until every agent's model reached the store's current revision. */
int ct_settle(const struct ct_ctx *c, char *err, size_t errsize);

/* Milliseconds of CLOCK_MONOTONIC. */
long long ct_now_ms(void);

/* ---- workloads.c ---- */

/* Deploys the namespace, pods, echo servers and services; fills pods and svcs. 0, or -1
 * with err set (what was made stays recorded for ct_cleanup). */
int ct_deploy(struct ct_ctx *c, char *err, size_t errsize);

/* Removes everything the suite (this run or a killed earlier one, found by name) made:
 * processes, CNI endpoints and addresses, network namespaces, store objects, run dir.
 * Idempotent. quiet: no progress lines. 0, or -1 when something could not be removed
 * (named on stderr). */
int ct_cleanup(struct ct_ctx *c, bool quiet);

/* Writes manifest text to the run dir as NAME.yaml and applies it (delete: deletes its
 * objects) with the CLI's own code; then waits for the agents. 0, or -1 with err set. */
int ct_store_apply(struct ct_ctx *c, const char *name, const char *manifest, bool delete, char *err,
		   size_t errsize);

/* ---- probe.c ---- */

/* Runs every action's probe in parallel (inside its netns, bounded), fills outcomes of
 * what the answers alone decide; deny actions are finished by ct_prove_denials(). */
void ct_run_actions(struct ct_ctx *c, struct ct_action *a, size_t n);

/* ---- flows.c ---- */

/* Notes every agent's current flow position (ctx->since). */
int ct_flows_mark(struct ct_ctx *c, char *err, size_t errsize);

/* For each deny action that timed out: finds its POLICY_DENIED drop event in the agents'
 * flows since ctx->since (waiting up to 2 s for late events) and records it as expected. */
void ct_prove_denials(struct ct_ctx *c, struct ct_action *a, size_t n);

/* no-unexpected-packet-drops: every drop event in the agents' flows since ctx->since that no
 * deny action expected. Fills one action per finding (at most max) and returns how many;
 * *checked counts the drop events, *expected_n those the deny actions expected, *ignored the
 * IPv6 drops of the IPv4-only datapath (neighbour discovery of new links); the rest are
 * unexpected. err gets why drops may be missing (an agent not answering, flows overwritten). */
size_t ct_unexpected_drops(struct ct_ctx *c, struct ct_action *a, size_t max, size_t *checked,
			   size_t *expected_n, size_t *ignored, char *err, size_t errsize);

/* ---- cases.c / report.c / junit.c ---- */

struct ct_test {
	const char *name;
	bool selected;
	bool skipped;
	char skip_reason[256];
	struct ct_action *actions;
	size_t nactions;
	size_t nfailed;
	char error[768]; /* a setup failure */
	char notes[256]; /* scenarios skipped, drops ignored, ... */
	size_t scenarios_skipped;
	double seconds;
};

/* The tests, in order (Cilium's names). */
size_t ct_tests(struct ct_test **out);

/* Runs test t (policies applied and removed around its actions). */
void ct_run_test(struct ct_ctx *c, struct ct_test *t);

/* Progress (stderr). */
void ct_report_test_start(const struct ct_ctx *c, const struct ct_test *t, size_t i, size_t n);
void ct_report_test_end(const struct ct_ctx *c, const struct ct_test *t);

/* The summary (stdout): text, or JSON with json. Returns the number of failed tests. */
size_t ct_report_summary(const struct ct_ctx *c, struct ct_test *t, size_t n, bool json,
			 double total_s, bool interrupted);

/* Writes JUnit XML of the tests to path. 0, or -1 with err set. */
int ct_junit_write(const char *path, const struct ct_test *t, size_t n, double total_s,
		   const char *ns, char *err, size_t errsize);

#endif
