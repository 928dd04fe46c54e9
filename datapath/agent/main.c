/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-agent: the per-node daemon (docs/AGENT.md). Runs inside the node's network
 * namespace, loads the datapath pinned for the node, list+watches the store, reconciles the
 * maps, attaches the pod programs and serves the local API.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "agent/api.h"
#include "agent/health.h"
#include "loader/conntrack.h"

#define TICK_MS 1000
#define FLOW_BUFFER_DEFAULT 4095 /* Hubble's default */
#define FLOW_BUFFER_MAX (1 << 20)

/* Store events are coalesced: a reconcile runs at once when the last one ended at least
 * this long ago, else when that much time has passed (a burst of events, e.g. one IPAM
 * update per pod while a node comes up, costs one reconcile per interval). The interval
 * grows with the cost of a reconcile (COALESCE_COST_FACTOR times it, up to
 * COALESCE_MAX_MS), so that an agent with a large model spends at most about an eightieth
 * of its time reconciling other nodes' changes while events keep coming: ten agents on one
 * machine bringing up 10,000 pods spent a core on it at a tenth. */
#define COALESCE_MIN_MS	     50
#define COALESCE_MAX_MS	     2000
#define COALESCE_COST_FACTOR 80

void agent_log(const struct agent *a, const char *fmt, ...)
{
	char msg[2048], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld ciliate-agent[%s]: %s\n", ts, now.tv_nsec / 1000000,
		a && a->o.node ? a->o.node : "-", msg);
}

int64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
	fprintf(f,
		"NAME\n"
		"    ciliate-agent - the per-node daemon: datapath, store watch, local API\n"
		"\n"
		"SYNOPSIS\n"
		"    ciliate-agent --node NAME [--instance NAME] [--store DIR|URI]\n"
		"                  [--store-ca FILE] [--store-cert FILE] [--store-key FILE]\n"
		"                  [--state-dir DIR] [--scenario-cluster FILE]\n"
		"                  [--routing tunnel|native] [--ct-gc-interval SECONDS]\n"
		"                  [--identity-gc-grace SECONDS] [--trace-all]\n"
		"                  [--flow-buffer-size N] [--prometheus-serve-addr [HOST]:PORT]\n"
		"                  [--health-port PORT] [--health-interval SECONDS]\n"
		"    ciliate-agent --help\n"
		"\n"
		"DESCRIPTION\n"
		"    Runs inside the node's network namespace: enter it with\n"
		"    nsenter --net=/run/netns/NODE, not 'ip netns exec', which hides\n"
		"    /sys/fs/bpf (the agent warns when its mount namespace is not PID 1's).\n"
		"    It loads the datapath pinned for the node, list+watches the store, turns\n"
		"    the stored objects into the node's map entries, attaches the pod programs\n"
		"    to the pods' host-side veths and serves the local API that ciliate-cni,\n"
		"    ciliate and ciliate-sim use. At start it enables net.ipv4.ip_forward.\n"
		"    Without --scenario-cluster the node registers itself under\n"
		"    /ciliate/nodes/NAME and takes the next /24 of 10.244.0.0/16 in\n"
		"    registration order.\n"
		"    While the store is unreachable the agent keeps forwarding and enforcing\n"
		"    with the maps in force and `ciliate status` says so; when it answers\n"
		"    again the agent lists it again within a second. Identities are collected\n"
		"    by ciliate-operator while one is elected (/ciliate/operator/leader), else\n"
		"    by the agents after --identity-gc-grace.\n"
		"    Logs go to stderr, one line per event (HH:MM:SS.mmm ciliate-agent[NODE]:\n"
		"    ...). SIGTERM, SIGINT or SIGHUP stop it; the pinned maps and attached\n"
		"    programs stay, so traffic keeps flowing.\n"
		"\n");
	fprintf(f,
		"OPTIONS\n"
		"    --node NAME          this node's name in the cluster (required; the\n"
		"                         systemd unit passes $CILIATE_NODE)\n"
		"    --instance NAME      names the pin dir (/sys/fs/bpf/ciliate/NAME) and the\n"
		"                         default state dir instead of --node, for several\n"
		"                         clusters with the same node names on one machine\n"
		"                         (the simulator's cil-TAG-NODE); default: --node\n"
		"    --store DIR|URI      the store: a directory, file:///DIR[?OPTS] or\n"
		"                         etcd://HOST:PORT[,HOST:PORT...][?ca=F&cert=F&key=F]\n"
		"                         (etcd+https://, etcd+http://); default $CILIATE_STORE,\n"
		"                         then %s\n"
		"    --store-ca FILE      CA certificate to verify an etcd store's TLS\n"
		"                         (sets $CILIATE_STORE_CA; default: that variable)\n"
		"    --store-cert FILE    client certificate for etcd (sets $CILIATE_STORE_CERT;\n"
		"                         default: that variable)\n"
		"    --store-key FILE     its private key (sets $CILIATE_STORE_KEY; default:\n"
		"                         that variable)\n"
		"    --state-dir DIR      where the API socket (agent.sock), the lock\n"
		"                         (agent.lock: one agent per node) and the endpoint\n"
		"                         records (endpoints.json) live; default\n"
		"                         %s/NAME (NAME: --instance, else --node)\n"
		"    --scenario-cluster FILE\n"
		"                         the nodes and their pod ranges come from the Cluster\n"
		"                         document of this scenario file (the node must be\n"
		"                         listed; other documents are ignored); default: the\n"
		"                         node registers itself in the store (above)\n"
		"    --routing MODE       tunnel or native: replaces the Cluster's routing (the\n"
		"                         simulator's --routing); default: the Cluster's\n"
		"    --ct-gc-interval SECONDS\n"
		"                         seconds between conntrack garbage collections\n"
		"                         (1..86400, default 10)\n"
		"    --identity-gc-grace SECONDS\n"
		"                         identities no pod has used for that long are released\n"
		"                         from the store (0..2592000, 0: never; default\n"
		"                         $CILIATE_IDENTITY_GC_GRACE, then 60)\n"
		"    --trace-all          a trace event for every forwarded packet, repeats not\n"
		"                         aggregated (default: new connections and TCP\n"
		"                         SYN/FIN/RST only)\n"
		"    --flow-buffer-size N flows kept for `ciliate observe` (1..1048576,\n"
		"                         default 4095, as Hubble)\n"
		"    --prometheus-serve-addr [HOST]:PORT\n"
		"                         Prometheus metrics at http://ADDR/metrics, inside the\n"
		"                         node's network namespace (default :9962; \"\" or off:\n"
		"                         none)\n"
		"    --health-port PORT   GET /hello answers on this port and every node is\n"
		"                         probed on it (1..65535, default 4240, Cilium's\n"
		"                         cluster-health-port; all nodes must agree)\n"
		"    --health-interval SECONDS\n"
		"                         seconds between probe rounds (ICMP and HTTP) of every\n"
		"                         node (1..86400; default $CILIATE_HEALTH_INTERVAL,\n"
		"                         then 60): `ciliate health status`\n"
		"    -h, --help           this help\n"
		"\n",
		STORE_DEFAULT_URI, AGENT_RUN_ROOT);
	fprintf(f,
		"ENVIRONMENT\n"
		"    CILIATE_STORE        the store when --store is not given\n"
		"    CILIATE_STORE_CA, CILIATE_STORE_CERT, CILIATE_STORE_KEY\n"
		"                         TLS files for an etcd store (ca=, cert=, key= in the\n"
		"                         URI win; a CA or certificate turns TLS on)\n"
		"    CILIATE_IDENTITY_GC_GRACE\n"
		"                         the default of --identity-gc-grace\n"
		"    CILIATE_HEALTH_INTERVAL\n"
		"                         the default of --health-interval\n"
		"    CILIATE_WIREGUARD_GO the wireguard-go program run where the kernel has no\n"
		"                         WireGuard (default: wireguard-go from PATH)\n"
		"    CILIATE_NODE, CILIATE_AGENT_OPTS\n"
		"                         not read by the agent: ciliate-agent.service puts\n"
		"                         them on its command line (/etc/default/ciliate)\n"
		"\n"
		"FILES\n"
		"    /sys/fs/bpf/ciliate/NAME/         the node's pinned maps (kept across\n"
		"                                      restarts; NAME: --instance, else --node)\n"
		"    %s/NAME/agent.sock      the local API, one JSON request per line\n"
		"                                      (these three: under --state-dir if given)\n"
		"    %s/NAME/agent.lock      held while the agent runs\n"
		"    %s/NAME/endpoints.json\n"
		"                                      the endpoint records\n"
		"    /var/lib/ciliate/store/           the default (embedded) store\n"
		"    /etc/default/ciliate              the systemd unit's environment\n"
		"\n"
		"EXIT STATUS\n"
		"    0 stopped by a signal (or --help); 1 start-up failed (store, datapath,\n"
		"    another agent holds the lock: logged as \"fatal: ...\") or the event loop\n"
		"    failed; 2 usage error.\n"
		"\n"
		"SEE ALSO\n"
		"    docs/AGENT.md, docs/STORE.md, docs/HEALTH.md, docs/OBSERVABILITY.md,\n"
		"    docs/ENCRYPTION.md, docs/OPERATOR.md, docs/INSTALL.md; ciliate --help,\n"
		"    ciliate-cni --help, ciliate-operator --help\n",
		AGENT_RUN_ROOT, AGENT_RUN_ROOT, AGENT_RUN_ROOT);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[512];
	char *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int parse_args(int argc, char **argv, struct agent_opts *o)
{
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"instance", required_argument, NULL, 'i'},
		{"store", required_argument, NULL, 's'},
		{"state-dir", required_argument, NULL, 'd'},
		{"scenario-cluster", required_argument, NULL, 'c'},
		{"ct-gc-interval", required_argument, NULL, 'g'},
		{"identity-gc-grace", required_argument, NULL, 'G'},
		{"trace-all", no_argument, NULL, 't'},
		{"flow-buffer-size", required_argument, NULL, 'F'},
		{"prometheus-serve-addr", required_argument, NULL, 'P'},
		{"routing", required_argument, NULL, 'R'},
		{"store-ca", required_argument, NULL, 'A'},
		{"store-cert", required_argument, NULL, 'C'},
		{"store-key", required_argument, NULL, 'K'},
		{"health-port", required_argument, NULL, 'H'},
		{"health-interval", required_argument, NULL, 'I'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *grace = getenv("CILIATE_IDENTITY_GC_GRACE");
	const char *hint = getenv("CILIATE_HEALTH_INTERVAL");
	char *end;
	long v;
	int c;

	o->ct_gc_interval_s = 10;
	o->flow_buffer_size = FLOW_BUFFER_DEFAULT;
	o->identity_gc_grace_s = 60;
	o->store_uri = getenv("CILIATE_STORE");
	o->prometheus_addr = ":9962";
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->node = optarg;
			break;
		case 'i':
			o->instance = optarg;
			break;
		case 's':
			o->store_uri = optarg;
			break;
		case 'd':
			o->state_dir = optarg;
			break;
		case 'c':
			o->cluster_file = optarg;
			break;
		case 'g':
			o->ct_gc_interval_s = (int)strtol(optarg, &end, 10);
			if (*end || o->ct_gc_interval_s < 1 || o->ct_gc_interval_s > 86400) {
				fprintf(stderr, "ciliate-agent: --ct-gc-interval: want 1..86400\n");
				return 2;
			}
			break;
		case 'G':
			grace = optarg;
			break;
		case 't':
			o->trace_all = true;
			break;
		case 'R':
			if (!strcmp(optarg, "tunnel"))
				o->routing = ROUTING_TUNNEL + 1;
			else if (!strcmp(optarg, "native"))
				o->routing = ROUTING_NATIVE + 1;
			else {
				fprintf(stderr, "ciliate-agent: --routing: tunnel or native\n");
				return 2;
			}
			break;
		case 'F':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > FLOW_BUFFER_MAX) {
				fprintf(stderr, "ciliate-agent: --flow-buffer-size: want 1..%d\n",
					FLOW_BUFFER_MAX);
				return 2;
			}
			o->flow_buffer_size = (size_t)v;
			break;
		case 'P': {
			struct diag pd = {{0}};
			char host[256];
			uint16_t port;

			if (agent_metrics_addr_parse(optarg, host, sizeof(host), &port, &pd) < 0) {
				fprintf(stderr, "ciliate-agent: %s\n", pd.msg);
				return 2;
			}
			o->prometheus_addr = optarg;
			break;
		}
		case 'A': /* the etcd backend reads these (docs/STORE.md), as the CLI's flags */
			setenv("CILIATE_STORE_CA", optarg, 1);
			break;
		case 'C':
			setenv("CILIATE_STORE_CERT", optarg, 1);
			break;
		case 'K':
			setenv("CILIATE_STORE_KEY", optarg, 1);
			break;
		case 'H':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 65535) {
				fprintf(stderr, "ciliate-agent: --health-port: want 1..65535\n");
				return 2;
			}
			o->health_port = (int)v;
			break;
		case 'I':
			hint = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (grace && *grace) {
		long v = strtol(grace, &end, 10);

		if (*end || v < 0 || v > 86400 * 30) {
			fprintf(stderr, "ciliate-agent: --identity-gc-grace (or "
					"$CILIATE_IDENTITY_GC_GRACE): want 0..2592000 seconds, got "
					"\"%s\"\n",
				grace);
			return 2;
		}
		o->identity_gc_grace_s = (int)v;
	}
	if (hint && *hint) {
		v = strtol(hint, &end, 10);
		if (*end || v < 1 || v > 86400) {
			fprintf(stderr, "ciliate-agent: --health-interval (or $CILIATE_HEALTH_INTERVAL):"
					" want 1..86400 seconds, got \"%s\"\n", hint);
			return 2;
		}
		o->health_interval_s = (int)v;
	}
	if (optind < argc || !o->node) {
		fprintf(stderr, "ciliate-agent: %s\n",
			optind < argc ? "unexpected argument" : "--node is required");
		usage(stderr);
		return 2;
	}
	if (!o->store_uri || !*o->store_uri)
		o->store_uri = STORE_DEFAULT_URI;
	return 0;
}

/* `ip netns exec` gives the process a private mount namespace with a fresh /sys, where
 * /sys/fs/bpf would be a new, private bpffs: pins would not survive the process. */
static void check_mount_ns(struct agent *a)
{
	struct stat self, init;

	if (stat("/proc/self/ns/mnt", &self) == 0 && stat("/proc/1/ns/mnt", &init) == 0 &&
	    self.st_ino != init.st_ino)
		agent_log(a, "warning: running in a private mount namespace; if /sys/fs/bpf is "
			     "not the host's bpffs, pinned state will not survive a restart (use "
			     "nsenter --net=..., not 'ip netns exec')");
}

/* Pods reach their gateway by proxy ARP on the host-side veth, which answers only when the
 * node forwards IPv4 (as every Kubernetes node does). */
static void enable_forwarding(struct agent *a)
{
	const char *path = "/proc/sys/net/ipv4/ip_forward";
	char cur = '0';
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	if (read(fd, &cur, 1) == 1 && cur != '1') {
		if (pwrite(fd, "1", 1, 0) == 1)
			agent_log(a, "enabled IPv4 forwarding in the node's network namespace");
		else
			agent_log(a, "warning: cannot enable %s: %s", path, strerror(errno));
	}
	close(fd);
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int setup_loop(struct agent *a, struct diag *d)
{
	struct itimerspec its = {.it_interval = {.tv_sec = TICK_MS / 1000},
				 .it_value = {.tv_sec = TICK_MS / 1000}};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	a->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->coalesce_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->batch_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->signal_fd < 0 || a->timer_fd < 0 || a->coalesce_fd < 0 || a->batch_fd < 0 ||
	    a->epfd < 0 ||
	    timerfd_settime(a->timer_fd, 0, &its, NULL) < 0)
		return diag_fail_errno(d, -errno, "event loop set-up: %s", strerror(errno));
	if (epoll_add(a->epfd, a->signal_fd) || epoll_add(a->epfd, a->timer_fd) ||
	    epoll_add(a->epfd, a->coalesce_fd) || epoll_add(a->epfd, a->batch_fd))
		return diag_fail_errno(d, -errno, "epoll: %s", strerror(errno));
	return 0;
}

/* Logs each line of text. */
static void log_lines(struct agent *a, const char *text)
{
	const char *nl;

	for (; text && *text; text = nl + 1) {
		nl = strchr(text, '\n');
		if (!nl)
			nl = text + strlen(text) - 1;
		agent_log(a, "%.*s", (int)(nl - text + (*nl != '\n')), text);
	}
}

static int start(struct agent *a, struct diag *d)
{
	const char *inst = a->o.instance ? a->o.instance : a->o.node;
	struct datapath_opts dopts = {.node = inst, .trace_all = a->o.trace_all};
	char lock[512];
	int err;

	if (a->o.state_dir)
		snprintf(a->state_dir, sizeof(a->state_dir), "%s", a->o.state_dir);
	else
		snprintf(a->state_dir, sizeof(a->state_dir), "%s/%s", AGENT_RUN_ROOT, inst);
	snprintf(a->sock_path, sizeof(a->sock_path), "%s/%s", a->state_dir, AGENT_SOCK_NAME);
	err = mkdir_p(a->state_dir, 0755);
	if (err)
		return diag_fail_errno(d, err, "creating %s: %s", a->state_dir, strerror(-err));
	snprintf(lock, sizeof(lock), "%s/agent.lock", a->state_dir);
	a->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a->lock_fd < 0)
		return diag_fail_errno(d, -errno, "%s: %s", lock, strerror(errno));
	if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return diag_fail_errno(d, -EBUSY,
				       "another ciliate-agent runs for node %s (%s is "
				       "locked)",
				       a->o.node, lock);
	check_mount_ns(a);
	enable_forwarding(a);
	err = setup_loop(a, d);
	if (!err)
		err = store_open(a->o.store_uri, &a->st, d);
	if (!err && !a->o.cluster_file)
		err = agent_node_register(a, d);
	if (!err)
		err = agent_objects_sync(a, d);
	if (!err)
		err = agent_cluster_load(a, d);
	if (err)
		return err;
	err = datapath_open(&dopts, &a->dp, d);
	if (!err)
		log_lines(a, datapath_upgrade_notes(a->dp)); /* pinned maps of an earlier agent */
	if (!err) /* before the first reconcile: its flows are enriched from the start */
		err = agent_monitor_start(a, d);
	if (!err)
		err = agent_maps_load(a, d);
	if (!err)
		err = agent_eps_load(a, d);
	if (!err)
		err = epoll_add(a->epfd, store_watch_fd(a->w));
	if (err)
		return err;
	agent_log(a,
		  "datapath loaded, maps pinned at %s (%zu ipcache, %zu policy, %zu endpoint, "
		  "%zu service, %zu backend entries found); store %s at revision %lld",
		  datapath_pin_dir(a->dp), a->cur[AM_IPCACHE].n, a->cur[AM_POLICY].n,
		  a->cur[AM_ENDPOINTS].n, a->cur[AM_LB_SERVICES].n, a->cur[AM_LB_BACKENDS].n,
		  a->o.store_uri, (long long)a->rev);
	agent_reconcile(a, d); /* failures are logged; the previous state stays in force */
	err = agent_store_health_start(a, d); /* its own thread and store handle */
	if (!err)
		err = epoll_add(a->epfd, agent_store_health_fd(a));
	if (!err)
		agent_store_status_publish(a);
	if (!err)
		err = agent_server_open(a, d);
	if (!err)
		err = agent_metrics_open(a, d); /* Prometheus /metrics (metrics.c) */
	if (!err)
		err = agent_health_start(a, d); /* /hello and the node probes (health.c) */
	return err;
}

static void on_store(struct agent *a)
{
	struct diag d = {{0}};
	char *old = NULL;
	bool changed;
	int err;

	err = agent_objects_poll(a, 0, &changed, &d);
	if (err) {
		agent_log(a, "store watch: %s", d.msg);
		return;
	}
	if (!changed)
		return;
	if (!a->o.cluster_file) {
		old = a->cluster_text ? strdup(a->cluster_text) : NULL;
		if (agent_cluster_load(a, &d))
			agent_log(a, "node registry: %s", d.msg);
		if (old && strcmp(old, a->cluster_text)) /* retry objects bad for the old one */
			for (size_t i = 0; i < a->nobjs; i++)
				a->objs[i]->bad_rev = 0;
		free(old);
	}
	a->dirty = true; /* reconciled by the loop, coalesced */
}

/* The store answers again after it did not (store_health.c): a watch stream cut by a
 * partition may stay silent long after, so list everything again with a fresh watch. */
static void store_resync(struct agent *a)
{
	struct diag d = {{0}};
	int64_t old = a->rev;

	if (agent_objects_sync(a, &d)) {
		agent_log(a, "store: listing again failed (retried each second): %s", d.msg);
		a->resync_pending = true;
		return;
	}
	a->resync_pending = false;
	agent_log(a, "store reachable again: listed it at revision %lld (was %lld)", (long long)a->rev,
		  (long long)old);
	if (!a->o.cluster_file && agent_cluster_load(a, &d))
		agent_log(a, "node registry: %s", d.msg);
	a->dirty = true;
}

static void on_store_health(struct agent *a)
{
	if (agent_store_health_recovered(a))
		store_resync(a);
}

static int64_t coalesce_interval_ms(const struct agent *a)
{
	double ms = a->last_reconcile_ms * COALESCE_COST_FACTOR;

	if (ms < COALESCE_MIN_MS)
		return COALESCE_MIN_MS;
	return ms > COALESCE_MAX_MS ? COALESCE_MAX_MS : (int64_t)ms;
}

/* Reconciles now if the last reconcile ended long enough ago, else arms the coalescing
 * timer (once) for when it has. */
static void reconcile_due(struct agent *a)
{
	int64_t due = a->last_reconcile_end_ms + coalesce_interval_ms(a), now = agent_now_ms();
	struct itimerspec its;
	struct diag d = {{0}};

	memset(&its, 0, sizeof(its));
	if (!a->dirty)
		return;
	if (now >= due || !a->last_reconcile_end_ms) {
		agent_reconcile(a, &d);
		return;
	}
	if (a->coalesce_armed)
		return;
	its.it_value.tv_sec = (due - now) / 1000;
	its.it_value.tv_nsec = ((due - now) % 1000) * 1000000;
	if (timerfd_settime(a->coalesce_fd, 0, &its, NULL) == 0)
		a->coalesce_armed = true;
	else
		agent_reconcile(a, &d);
}

static void on_coalesce(struct agent *a)
{
	uint64_t n;

	while (read(a->coalesce_fd, &n, sizeof(n)) > 0)
		;
	a->coalesce_armed = false;
	reconcile_due(a);
}

static void on_tick(struct agent *a, int64_t *last_gc)
{
	struct diag d = {{0}};
	uint64_t ticks;
	size_t deleted = 0;

	while (read(a->timer_fd, &ticks, sizeof(ticks)) > 0)
		;
	if (agent_veths_changed(a))
		agent_reconcile(a, &d);
	if (a->resync_pending)
		store_resync(a);
	agent_wireguard_tick(a);
	agent_identities_gc(a, agent_now_ms());
	agent_health_tick(a);
	if (agent_now_ms() - *last_gc >= (int64_t)a->o.ct_gc_interval_s * 1000) {
		*last_gc = agent_now_ms();
		if (ct_gc(datapath_map_fd(a->dp, MAP_CT), ct_clock_now_ns(), &deleted, &d))
			agent_log(a, "conntrack GC: %s", d.msg);
		a->ct_gc_runs++;
		a->ct_gc_deleted += deleted;
	}
}

static void on_signal(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->signal_fd, &si, sizeof(si)) == sizeof(si)) {
		agent_log(a, "signal %u: stopping (pinned maps and attached programs stay)",
			  si.ssi_signo);
		a->stop = true;
	}
}

static int run(struct agent *a)
{
	struct epoll_event evs[32];
	int64_t last_gc = agent_now_ms();
	unsigned int watch_gen = a->watch_gen;
	uint64_t expirations;
	int n, i, fd;

	while (!a->stop) {
		n = epoll_wait(a->epfd, evs, 32, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			agent_log(a, "epoll: %s", strerror(errno));
			return 1;
		}
		for (i = 0; i < n && !a->stop; i++) {
			fd = evs[i].data.fd;
			if (fd == a->signal_fd)
				on_signal(a);
			else if (fd == a->timer_fd)
				on_tick(a, &last_gc);
			else if (fd == a->coalesce_fd)
				on_coalesce(a);
			else if (fd == a->batch_fd) /* agent_server_finish() below */
				while (read(a->batch_fd, &expirations, sizeof(expirations)) > 0)
					;
			else if (a->w && fd == store_watch_fd(a->w))
				on_store(a);
			else if (fd == agent_store_health_fd(a))
				on_store_health(a);
			else if (fd == a->listen_fd)
				agent_server_accept(a);
			else if (fd == agent_monitor_fd(a))
				agent_observe_push(a);
			else if (agent_metrics_handle(a, fd))
				; /* a scrape (metrics.c) */
			else if (agent_healthcheck_handle(a, fd))
				; /* a health check (healthcheck.c) */
			else if (agent_health_handle(a, fd))
				; /* /hello, or a probe round ended (health.c) */
			else
				agent_server_client(a, fd);
		}
		/* one reconcile for this round's endpoint-adds, then their answers */
		agent_server_finish(a);
		/* store events, or a request that consumed some */
		reconcile_due(a);
		/* a re-list (after a compaction overtook the watch) replaced the watch fd */
		if (a->w && a->watch_gen != watch_gen) {
			if (epoll_add(a->epfd, store_watch_fd(a->w)))
				agent_log(a, "epoll: %s", strerror(errno));
			watch_gen = a->watch_gen;
		}
	}
	return 0;
}

static void stop(struct agent *a)
{
	int m;

	agent_health_stop(a); /* before the clients: it answers some */
	agent_server_close(a);
	agent_monitor_stop(a);
	agent_metrics_close(a);
	agent_healthcheck_close(a);
	agent_store_health_stop(a);
	store_watch_close(a->w);
	store_close(a->st);
	datapath_close(a->dp); /* pins stay; TC filters keep the programs alive */
	if (a->have_ns)
		node_state_free(&a->ns);
	cluster_model_free(a->model);
	free(a->egress_written);
	agent_wireguard_free(a); /* wireguard-go keeps running, as the maps stay pinned */
	agent_ipsec_free(a);	 /* the XFRM states stay, as the maps do */
	agent_objects_free(a);
	agent_model_cache_free(a);
	for (m = 0; m < AM_COUNT; m++)
		kvset_free(&a->cur[m]);
	lb_maglev_tables_free(a->maglev_cur, a->nmaglev_cur);
	free(a->eps);
	free(a->cluster_text);
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->timer_fd >= 0)
		close(a->timer_fd);
	if (a->coalesce_fd >= 0)
		close(a->coalesce_fd);
	if (a->batch_fd >= 0)
		close(a->batch_fd);
	free(a->expect);
	if (a->signal_fd >= 0)
		close(a->signal_fd);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	if (a->ifreq_fd >= 0)
		close(a->ifreq_fd);
}

int main(int argc, char **argv)
{
	struct agent a = {
		.lock_fd = -1, .epfd = -1, .listen_fd = -1, .timer_fd = -1, .signal_fd = -1,
		.coalesce_fd = -1, .ifreq_fd = -1, .batch_fd = -1};
	struct diag d = {{0}};
	int rc;

	rc = parse_args(argc, argv, &a.o);
	if (rc)
		return rc;
	setvbuf(stderr, NULL, _IOLBF, 0);
	a.started_ms = agent_now_ms();
	if (start(&a, &d)) {
		agent_log(&a, "fatal: %s", d.msg);
		stop(&a);
		return 1;
	}
	agent_log(&a, "ready: API on %s", a.sock_path);
	rc = run(&a);
	stop(&a);
	return rc;
}
