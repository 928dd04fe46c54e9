/* SPDX-License-Identifier: Apache-2.0 */
/* The scenario runner's internals: probe jobs (prober.c), checks and reports (run.c,
 * report.c). */
#ifndef CILIATE_SIM_RUN_H
#define CILIATE_SIM_RUN_H

#include "sim.h"
#include "evidence.h"
#include "model/ipaddr.h"

#include <sys/types.h>

#define SIM_PROBE_TIMEOUT_MS 1000
#define SIM_PROBE_PARALLEL 48
#define SIM_SAME_BACKEND_MAX 1000
#define SIM_REASON_MAX 768
#define SIM_PROBE_PORTS_MAX 16 /* source ports of a probe's attempts kept for evidence */

/* How many answers one backend gave a probe. */
struct sim_answer {
	char name[KUBELET_ID_MAX]; /* "ns/pod", "ext/NAME" or "node/NAME" */
	int n;
};
#define SIM_ANSWERS_MAX 64 /* distinct backends counted per probe */

/* What a payload probe's first attempt saw of path MTU discovery (ciliate-probe "pmtu",
 * "syn_data"). */
struct sim_pmtu {
	unsigned int sent_bytes;      /* the last request's size */
	unsigned int path_mtu;        /* the client's path MTU afterwards */
	bool retried;                 /* UDP: sent again, fitting a reported MTU */
	bool icmp_seen;               /* an ICMP error reached the client's socket */
	unsigned int icmp_type, icmp_code, icmp_mtu;
	char icmp_from[48];
	char quoted_dst[48];          /* the destination of the packet the ICMP quotes */
	unsigned int quoted_port;
	int syn_data;                 /* TFO: bytes the SYN carried (-1: not TFO) */
	bool syn_data_acked;
};

/* One ciliate-probe run inside a source namespace. */
struct sim_probe_job {
	char netns[NETNS_NAME_MAX];
	char to[IP4_STR_MAX];
	uint16_t port;
	uint8_t proto;
	int count;
	int timeout_ms;
	unsigned int payload_bytes;   /* --payload-bytes (0: none) */
	bool tcp_fast_open;           /* --tcp-fastopen */
	/* results */
	int attempts;
	int allowed;
	int distinct;                 /* distinct answering backends */
	char backend[KUBELET_ID_MAX]; /* first answer's "ns/pod" ("ext/NAME" for external) */
	char backend_node[64];        /* first answer's node (echo "node"; "" external) */
	uint16_t sports[SIM_PROBE_PORTS_MAX]; /* the attempts' source ports (evidence) */
	size_t nsports;
	char client_ip[IP4_STR_MAX];  /* first answer's client_ip */
	char error[32];               /* first failed attempt's error and stage */
	char stage[16];
	double latency_ms;            /* first attempt */
	long long elapsed_ms;         /* the whole probe process */
	char failure[256];            /* the probe itself failed (usage, netns, timeout) */
	struct sim_answer *answers;   /* every answering backend and its count (heap) */
	int nanswers;
	struct sim_pmtu pmtu;         /* payload probes: the first attempt's */
};

/* Frees what sim_probe_run allocated in the jobs (not the array). */
void sim_probe_jobs_free(struct sim_probe_job *jobs, size_t n);

/* Forks ciliate-probe with argv (argv[0] names the program) inside netns, its stdout and
 * stderr on the returned *out_fd; the child dies with the runner. 0 or -errno. */
int sim_probe_spawn(const char *netns, char *const argv[], pid_t *pid, int *out_fd);

/* Runs the jobs, at most parallel at once, each bounded by count * timeout + slack. */
void sim_probe_run(struct sim_probe_job *jobs, size_t n, int parallel);

/* One check of a Test step: a probe or one matrix cell. */
struct sim_check {
	const char *scenario; /* owned by the report */
	char test[MODEL_NAME_MAX];
	char step[MODEL_NAME_MAX];
	char name[1024];
	char kind[8];         /* "probe" or "matrix" */
	char from[320];
	char to[320];
	uint16_t port;
	uint8_t proto;
	char expected[256];
	char observed[512];
	char drop_reason[64];
	struct sim_drop evidence;  /* the drop event that proves a deny, or the FRAG_NEEDED drop
				    * behind a pmtu assertion (has_evidence) */
	bool has_evidence;
	bool has_pmtu;             /* a payload probe: pmtu holds its first attempt's */
	struct sim_pmtu pmtu;
	char fault_evidence[96];   /* a deny explained by a fault of the run instead ("" none) */
	bool deny_expected;
	long long duration_ms;
	bool pass;            /* held, or skipped */
	bool skipped;         /* not checked here, for the reason given (never counted as passed) */
	char reason[SIM_REASON_MAX];
	/* matrix cells */
	int matrix;           /* index in the step, -1 for probes */
	size_t row, col;
	char cell_expected;   /* '.' or 'X' */
	char cell_observed;   /* '.', 'X' or '?' (not run) */
};

/* Prints expected and observed tables of one matrix side by side (differing cells marked). */
void sim_print_matrix(const struct m_matrix *m, const struct sim_check *cells, size_t ncells);

/* Appends a check to the report (copied). */
int sim_report_add(struct sim_report *r, const struct sim_check *chk);

/* Interns a scenario path in the report; the returned string lives as long as r. */
const char *sim_report_intern(struct sim_report *r, const char *scenario);

/* Step faults and streams (faults.c). */
int sim_fault_do(struct sim_cluster *c, const struct m_fault *f, struct diag *d);
const char *sim_fault_name(const struct m_fault *f);

struct sim_stream {
	pid_t pid;
	int fd;
	bool open; /* the first request was answered */
	bool eof;
	char out[8192];
	size_t len;
};

/* Starts a stream from netns to to:port; waits (bounded) for its first answer. */
int sim_stream_start(const char *netns, const char *to, uint16_t port, struct sim_stream *s);
/* Stops it and fills the check: pass when every request got its answer on one connection. */
void sim_stream_finish(struct sim_stream *s, struct sim_check *chk);

/* `run --flows FILE` / `--html FILE`: every flow of the run's steps is appended here. */
extern json_t *sim_flow_log;

/* ---- services (services.c) ------------------------------------------------------------ */

/* A backend of a service port: a pod its EndpointSlices name with a ready or serving
 * endpoint for that port. */
struct sim_backend {
	char name[KUBELET_ID_MAX]; /* "ns/pod" ("ip/A.B.C.D" when no pod has the address) */
	uint32_t ip;               /* network order */
	uint16_t port;             /* the endpoint port serving the service port */
	bool ready;                /* selectable for new connections (ready, not terminating) */
	const struct sim_host *host; /* NULL when not a pod of the simulation */
};

/* A service frontend a probe goes to (svc/NS/NAME, or node/NAME on a NodePort) and the
 * backends that may answer it. */
struct sim_service_target {
	const struct sim_cluster *cluster;
	const struct m_service *svc; /* NULL: not a service probe */
	const struct m_service_port *port;
	uint32_t frontend;           /* ClusterIP or node IP (network order) */
	uint16_t frontend_port;      /* service port or nodePort */
	char label[400];             /* "svc/x/web" or "NodePort 30080 of svc/x/web" */
	struct sim_backend *backends;
	size_t nbackends;
};

/* spread: {count: N, tolerance: T} or "N/T" */
struct sim_spread {
	int count;
	double tolerance; /* each ready backend's share within (1 +- T) / backends */
};

/* The cluster model as the store holds it now (the scenario's Cluster, then the stored
 * Namespaces, Pods, Services and EndpointSlices in the agents' model order). */
int sim_store_model(const struct sim_cluster *c, struct cluster_model **out, struct diag *d);

/* svc/NS/NAME on port/proto: its ClusterIP and backends; -errno with the reason in why (no
 * such service, headless, no such port, ICMP). */
int sim_service_resolve(const struct sim_cluster *c, const struct cluster_model *m,
			const char *ns_name, uint16_t port, uint8_t proto,
			struct sim_service_target *t, char *why, size_t wsize);

/* node/NAME on a NodePort: 1 with the service owning that nodePort (and protocol) and its
 * backends, 0 when no service owns it, -errno on failure. */
int sim_nodeport_resolve(const struct sim_cluster *c, const struct cluster_model *m,
			 const struct sim_host *node, uint16_t port, uint8_t proto,
			 struct sim_service_target *t, char *why, size_t wsize);

/* ip/A.B.C.D that is a LoadBalancer ingress IP or an externalIP of a service with that port
 * (and protocol): 1 with the service and its backends, 0 when none, -errno on failure. */
int sim_frontend_ip_resolve(const struct sim_cluster *c, const struct cluster_model *m,
			    uint32_t addr, uint16_t port, uint8_t proto,
			    struct sim_service_target *t, char *why, size_t wsize);

/* Narrows the backends new connections of `client` may reach by the traffic policies:
 * internalTrafficPolicy Local (a pod or node to the ClusterIP: its own node's backends) and
 * externalTrafficPolicy Local (a NodePort: that node's backends). Others stay listed, not
 * ready: they may still answer an established flow, never a new one. */
void sim_service_traffic_policy(struct sim_service_target *t, const struct sim_host *client);

/* The backend of that name; NULL if it is none of the service port's. */
const struct sim_backend *sim_service_backend(const struct sim_service_target *t,
					      const char *name);

/* "x/b1,x/b2" ("none"), into buf. */
void sim_service_backends_list(const struct sim_service_target *t, char *buf, size_t size);

/* How many backends are ready (selectable for new connections). */
size_t sim_service_ready_backends(const struct sim_service_target *t);

void sim_service_target_free(struct sim_service_target *t);

/* Parses a probe's spread value; -EINVAL with the reason in why. */
int sim_spread_parse(const char *text, struct sim_spread *sp, char *why, size_t wsize);

/* Runs the scenario's Replay documents, one check each (replays.c). */
int sim_run_replays(const struct scenario *s, struct sim_report *r);

/* ---- captures (capture.c) ------------------------------------------------------------- */

#define SIM_TCPDUMP_FILTER_MAX 64

/* tcpdump inside a namespace of the simulator (`ip netns exec NETNS tcpdump ...`). */
struct sim_tcpdump {
	const char *netns, *iface;
	const char *file;    /* -U -w FILE; NULL: text on stdout (-l) */
	const char *snaplen; /* -s; NULL: tcpdump's default */
	long count;          /* -c */
	bool as_root;        /* -Z root: keep the privileges to write FILE */
	bool immediate;      /* --immediate-mode: every packet is in FILE when it is stopped */
	char **filter;       /* the filter expression's words */
	int nfilter;
};

/* Starts it; with err_fd, tcpdump's stderr is a pipe returned there (stdin, stdout
 * /dev/null). 0 or -errno. */
int sim_tcpdump_start(const struct sim_tcpdump *t, pid_t *pid, int *err_fd);

/* Waits for it to exit; at deadline_ms it gets SIGINT (timeout_msg printed, if any), 2 s
 * later SIGKILL. 0 when it exited successfully or was stopped at the deadline. */
int sim_tcpdump_wait(pid_t pid, long long deadline_ms, const char *timeout_msg);

/* replyBypasses: a capture on the fabric side of a node's underlay veth while the step's
 * probes run. */
struct sim_reply_watch {
	char node[64];
	char netns[NETNS_NAME_MAX];
	char iface[IFNAMSIZ];
	char file[256];
	pid_t pid;
	int err_fd;
	bool started, stopped;
	char error[256];   /* why the capture cannot tell ("" none) */
	long seen, total;  /* reply packets of the flow / packets captured */
	char example[192]; /* the first reply packet seen */
	bool kept;         /* encryptedOn: moved out of the run directory, never removed */
};

/* The reply direction of a probe's flows: proto from one of srcs (the target or frontend and
 * the backends) to client on one of ports (all network order but ports). */
struct sim_reply_flow {
	uint8_t proto;
	uint32_t client;
	const uint32_t *srcs;
	size_t nsrcs;
	const uint16_t *ports;
	size_t nports;
};

/* Starts tcpdump (into file) on node's fabric veth end for packets to client_ip and VXLAN;
 * returns once it listens (at most 3 s). 0, or -errno with w->error set. */
int sim_reply_watch_start(const struct sim_cluster *c, const char *node, const char *client_ip,
			  const char *file, struct sim_reply_watch *w);
/* Stops the capture (SIGINT, at most 2 s, then SIGKILL). */
int sim_reply_watch_stop(struct sim_reply_watch *w);
/* Counts the captured reply packets of f (w->seen, w->example). 0 or -EIO (w->error). */
int sim_reply_watch_count(struct sim_reply_watch *w, const struct sim_reply_flow *f);
/* Kills a running capture and removes its file (unless kept); safe on every path,
 * repeatable. */
void sim_reply_watch_free(struct sim_reply_watch *w);

/* encryptedOn: fabric. One capture of every packet on a node's fabric link (the fabric side
 * of its underlay veth) while the step's probes run, shared by the step's encryptedOn probes;
 * each probe then looks for its own plaintext in it. */
#define SIM_FABRIC_KEEP_DIR "/run/ciliate/sim-captures" /* captures that proved a leak */
#define SIM_PLAIN_TOKENS_MAX SIM_PROBE_PORTS_MAX
#define SIM_PLAIN_TOKEN_MAX 96

/* What is a probe's plaintext on the fabric: its request (each attempt's own head,
 * "ciliate-probe from=IP:PORT/PROTO seq=", which the echo answer repeats) anywhere in a
 * packet's bytes, or an IPv4 header of proto from src to one of dsts or back, at any offset
 * (the outer header or one inside VXLAN, Geneve, IPIP...). */
struct sim_plain_flow {
	uint8_t proto;            /* the header's protocol (the probe's) */
	uint32_t src;             /* network order */
	const uint32_t *dsts;     /* the target or frontend and the backends (network order) */
	size_t ndsts;
	char tokens[SIM_PLAIN_TOKENS_MAX][SIM_PLAIN_TOKEN_MAX];
	size_t ntokens;
};

/* What a scan found. Packet numbers are 1-based, as tshark's frame.number. */
struct sim_plain_hit {
	long total;     /* packets captured */
	long packets;   /* packets carrying plaintext of the flow (request or header) */
	long first;     /* the first of them */
	char what[256]; /* what it carries and where */
	long payload_packets; /* packets carrying the request itself */
	long payload_first;
	char payload_what[192];
};

/* Starts tcpdump (into file, every packet) on node's fabric veth end; returns once it listens
 * (at most 3 s). 0, or -errno with w->error set. Stop it with sim_reply_watch_stop, free it
 * with sim_reply_watch_free. */
int sim_fabric_watch_start(const struct sim_cluster *c, const char *node, const char *file,
			   struct sim_reply_watch *w);
/* Reads the stopped capture back and looks for f's plaintext. 0 (h filled; a full capture
 * without a hit is an error: it cannot tell) or -EIO (w->error). */
int sim_fabric_watch_scan(struct sim_reply_watch *w, const struct sim_plain_flow *f,
			  struct sim_plain_hit *h);
/* Moves the capture to SIM_FABRIC_KEEP_DIR/NAME (it outlives the run directory) and keeps it;
 * w->file is its new path. Repeatable. 0 or -errno. */
int sim_fabric_watch_keep(struct sim_reply_watch *w, const char *name);

#endif
