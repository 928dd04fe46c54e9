/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bring-up: fabric, nodes and external hosts, pods, routing, traffic servers (+ datapath).
 * The state file lists every namespace before any is created and every process as soon as it
 * runs, so a crash at any point leaves `down` able to remove everything.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "model/ipaddr.h"

#define STEPS 5
#define SCRIPT_MAX 65536
#define SIM_POD_WORKERS 12

long long sim_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *sim_bin_dir(void)
{
	static char dir[PATH_MAX];
	char exe[PATH_MAX];
	ssize_t n;

	if (dir[0])
		return dir;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(dir, sizeof(dir), ".");
		return dir;
	}
	exe[n] = '\0';
	snprintf(dir, sizeof(dir), "%s", dirname(exe));
	return dir;
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void progress(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A growing ip batch script. */
struct script {
	char buf[SCRIPT_MAX];
	size_t len;
	bool overflow;
};

static void sc_add(struct script *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sc_add(struct script *sc, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (sc->overflow)
		return;
	va_start(ap, fmt);
	w = vsnprintf(sc->buf + sc->len, sizeof(sc->buf) - sc->len, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= sizeof(sc->buf) - sc->len)
		sc->overflow = true;
	else
		sc->len += (size_t)w;
}

static int sc_run(struct script *sc, const char *netns, struct diag *d)
{
	int err;

	if (sc->overflow)
		return diag_fail_errno(d, -E2BIG, "ip batch script for %s too long",
				       netns ? netns : "the root namespace (netns add)");
	err = ip_batch(netns, sc->buf, d);
	sc->len = 0;
	sc->buf[0] = '\0';
	return err;
}

static bool in_underlay(const struct sim_cluster *c, uint32_t ip)
{
	return cidr4_contains_ip(c->underlay, c->underlay_len, ip);
}

/* [1/5] every node and external host namespace plus the fabric with its bridge. */
static int up_fabric(struct sim_cluster *c, struct script *sc, struct diag *d)
{
	size_t i;
	int err;

	progress("[1/%d] fabric %s (bridge br0)", STEPS, c->fabric);
	sc_add(sc, "netns add %s\n", c->fabric);
	for (i = 0; i < c->nhosts; i++)
		if (c->hosts[i].kind != SIM_POD)
			sc_add(sc, "netns add %s\n", c->hosts[i].netns);
	err = sc_run(sc, NULL, d);
	if (err)
		return err;
	sc_add(sc, "link set lo up\nlink add br0 type bridge\nlink set br0 up\n");
	return sc_run(sc, c->fabric, d);
}

static const char *const node_sysctls[] = {
	"net/ipv4/ip_forward", "1",
	/* replies may come back on another device (vxlan0 vs eth0): no reverse-path filter */
	"net/ipv4/conf/all/rp_filter", "0",
	"net/ipv4/conf/default/rp_filter", "0",
};

/* A node's fabric device: its node IP (the primary address, added first, so it stays the
 * first IPv4 address of eth0, what an egress gateway policy's `interface: eth0` resolves to),
 * then the node entry's `addresses` (egress IPs) as secondary addresses with the underlay
 * prefix length: the node answers ARP for them on the fabric and never picks them as a
 * source address of its own. Only inside the node's own namespace (sc runs there). */
static int up_node(struct sim_cluster *c, const struct scenario *s, struct sim_host *n,
		   struct script *sc, struct diag *d)
{
	const struct m_node *mn = s ? cluster_find_node(&s->model, n->name) : NULL;
	char ip[IP4_STR_MAX];
	size_t i;
	int err;

	sc_add(sc, "link set lo up\n");
	sc_add(sc, "addr add %s/%u dev eth0\n", ip4_format(n->ip, ip), c->underlay_len);
	for (i = 0; mn && i < mn->naddresses; i++)
		sc_add(sc, "addr add %s/%u dev eth0\n", ip4_format(mn->addresses[i], ip),
		       c->underlay_len);
	sc_add(sc, "link set eth0 up\n");
	/* external hosts outside the underlay subnet: an onlink host route on the fabric */
	for (i = 0; i < c->nhosts; i++)
		if (c->hosts[i].kind == SIM_EXT && !in_underlay(c, c->hosts[i].ip))
			sc_add(sc, "route add %s/32 dev eth0\n", ip4_format(c->hosts[i].ip, ip));
	err = sc_run(sc, n->netns, d);
	if (!err)
		err = kubelet_node_init(n->netns, d);
	return err;
}

static int up_ext(struct sim_cluster *c, struct sim_host *x, struct script *sc,
		  struct diag *d)
{
	char ip[IP4_STR_MAX], cidr[CIDR4_STR_MAX];
	bool inside = in_underlay(c, x->ip);
	size_t i;

	sc_add(sc, "link set lo up\n");
	sc_add(sc, "addr add %s/%u dev eth0\n", ip4_format(x->ip, ip),
	       inside ? c->underlay_len : 32);
	sc_add(sc, "link set eth0 up\n");
	if (!inside)
		sc_add(sc, "route add %s dev eth0\n",
		       cidr4_format(c->underlay, c->underlay_len, cidr));
	/* replies to pods go back through the node owning each pod range */
	for (i = 0; i < c->nhosts; i++) {
		const struct sim_host *n = &c->hosts[i];

		if (n->kind != SIM_NODE)
			continue;
		sc_add(sc, "route add %s via %s dev eth0 onlink\n",
		       cidr4_format(n->pod_cidr, n->pod_cidr_len, cidr), ip4_format(n->ip, ip));
	}
	/* LoadBalancer IPs and externalIPs through the first node, as an upstream router
	 * announcing them would (SPEC section 5): a default route, so that services applied
	 * later are reachable too; the node routes nothing it does not own */
	for (i = 0; i < c->nhosts; i++) {
		if (c->hosts[i].kind != SIM_NODE)
			continue;
		sc_add(sc, "route add default via %s dev eth0 onlink\n",
		       ip4_format(c->hosts[i].ip, ip));
		break;
	}
	return sc_run(sc, x->netns, d);
}

/* [2/5] node and external host namespaces on the fabric. */
static int up_hosts(struct sim_cluster *c, const struct scenario *s, struct script *sc,
		    struct diag *d)
{
	size_t i, nn = 0, nx = 0;
	int err;

	for (i = 0; i < c->nhosts; i++) {
		nn += c->hosts[i].kind == SIM_NODE;
		nx += c->hosts[i].kind == SIM_EXT;
	}
	progress("[2/%d] nodes %zu, external hosts %zu", STEPS, nn, nx);
	for (i = 0; i < c->nhosts; i++) {
		if (c->hosts[i].kind != SIM_NODE)
			continue;
		err = netns_sysctl(c->hosts[i].netns, node_sysctls, 3, d);
		if (err)
			return err;
	}
	for (i = 0; i < c->nhosts; i++) {
		const struct sim_host *h = &c->hosts[i];

		if (h->kind == SIM_POD)
			continue;
		sc_add(sc, "link add %s type veth peer name eth0 netns %s\n", h->ifname, h->netns);
		sc_add(sc, "link set %s master br0 up\n", h->ifname);
	}
	err = sc_run(sc, c->fabric, d);
	for (i = 0; !err && i < c->nhosts; i++) {
		if (c->hosts[i].kind == SIM_NODE)
			err = up_node(c, s, &c->hosts[i], sc, d);
		else if (c->hosts[i].kind == SIM_EXT)
			err = up_ext(c, &c->hosts[i], sc, d);
	}
	return err;
}

/*
 * bpf-lb-acceleration: native (docs/XDP.md) sends NodePort traffic back out of a node's
 * fabric veth with XDP_TX, which a veth hands over only when its peer runs XDP (or has GRO):
 * the bridge side of each node's veth gets a two-instruction program that passes everything,
 * and the hosts' fabric devices compute their checksums in software (below).
 */
static int tx_csum_off(const char *ifname, struct diag *d)
{
	struct ethtool_value ev = { .cmd = ETHTOOL_STXCSUM, .data = 0 };
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	if (fd < 0 || ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		err = diag_fail_errno(d, -errno, "tx checksum offload off on %s: %s", ifname,
				      strerror(errno));
	if (fd >= 0)
		close(fd);
	return err;
}

static int up_xdp_peers(struct sim_cluster *c, const struct scenario *s, struct diag *d)
{
	const struct bpf_insn pass[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int self, fd, err = 0;
	size_t i;

	if (!cluster_lb_config(&s->model)->xdp_acceleration)
		return 0;
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "sim_peer_pass", "GPL", pass, 2, NULL);
	if (self < 0 || fd < 0) {
		err = diag_fail_errno(d, -errno, "XDP pass program for the fabric veths: %s",
				      strerror(errno));
		goto out;
	}
	err = netns_enter(c->fabric, d);
	for (i = 0; !err && i < c->nhosts; i++) {
		const struct sim_host *h = &c->hosts[i];

		if (h->kind != SIM_NODE)
			continue;
		err = bpf_xdp_attach((int)if_nametoindex(h->ifname), fd, XDP_FLAGS_DRV_MODE, NULL);
		if (err)
			diag_fail_errno(d, err, "XDP on %s's fabric veth %s: %s", h->name, h->ifname,
					strerror(-err));
	}
	/* A veth hands locally made packets on with CHECKSUM_PARTIAL (the L4 checksum left to
	 * "hardware"); an XDP program sees bytes only, so a frame it sends on (XDP_TX) would
	 * carry the partial sum. Hosts put full checksums on the fabric instead: what reaches a
	 * node's XDP is what a real NIC delivers. */
	for (i = 0; !err && i < c->nhosts; i++) {
		const struct sim_host *h = &c->hosts[i];

		if (h->kind == SIM_POD)
			continue;
		err = netns_enter(h->netns, d);
		if (!err)
			err = tx_csum_off("eth0", d);
	}
	if (setns(self, CLONE_NEWNET) < 0 && !err)
		err = diag_fail_errno(d, -errno, "setns back: %s", strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (self >= 0)
		close(self);
	return err;
}

/* Plumbs pod host index i through the kubelet. */
static int add_pod(const struct sim_cluster *c, size_t i, struct diag *d)
{
	const struct sim_host *p = &c->hosts[i], *node;
	struct kubelet_pod kp;
	const char *slash;
	char ns[64];

	node = sim_find_host(c, SIM_NODE, p->node);
	slash = strchr(p->name, '/');
	if (!node || !slash)
		return diag_fail(d, "pod %s: no node %s", p->name, p->node);
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - p->name), p->name);
	kubelet_pod_init(&kp, p->netns, node->netns, ns, slash + 1, p->ip, c->mtu);
	if (c->datapath) {
		sim_agent_sock(node, kp.agent_sock, sizeof(kp.agent_sock));
		snprintf(kp.cni_dir, sizeof(kp.cni_dir), "%s", sim_bin_dir());
	}
	return kubelet_add_pod(&kp, d);
}

/* A pod worker: plumbs every nworkers-th pod from first, reporting one line per pod on fd
 * ("+" done, "!" and the error), and stops at the first error. */
static void pod_worker(const struct sim_cluster *c, size_t first, size_t nworkers, int fd,
		       pid_t parent)
{
	size_t i, k = 0;
	struct diag d;
	char *nl;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* die with a killed simulator */
	if (getppid() != parent)
		_exit(1);

	for (i = 0; i < c->nhosts; i++) {
		if (c->hosts[i].kind != SIM_POD || !c->hosts[i].own_netns || k++ % nworkers != first)
			continue;
		if (sim_interrupted)
			_exit(1);
		if (add_pod(c, i, &d)) {
			while ((nl = strchr(d.msg, '\n')))
				*nl = ' ';
			dprintf(fd, "!%s\n", d.msg);
			_exit(1);
		}
		if (write(fd, "+\n", 2) != 2)
			_exit(1);
	}
	_exit(0);
}

/* [4/5] pod sandboxes through the kubelet, by SIM_POD_WORKERS processes in parallel. Workers
 * take pods in order, so a node's pods come up together, as a kubelet's do: its agent then
 * answers several endpoint-adds with one reconcile (docs/AGENT.md). */
static int up_pods(struct sim_cluster *c, struct diag *d)
{
	size_t i, n = 0, done = 0, nworkers, w;
	pid_t pids[SIM_POD_WORKERS], parent = getpid();
	char line[sizeof(d->msg) + 2];
	int pfd[2], err = 0, status;
	FILE *in;

	for (i = 0; i < c->nhosts; i++)
		n += c->hosts[i].kind == SIM_POD && c->hosts[i].own_netns;
	progress("[4/%d] pods 0/%zu", STEPS, n);
	if (!n)
		return 0;
	nworkers = n < SIM_POD_WORKERS ? n : SIM_POD_WORKERS;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return diag_fail_errno(d, -errno, "pipe: %s", strerror(errno));
	fflush(NULL);
	for (w = 0; w < nworkers; w++) {
		pids[w] = fork();
		if (pids[w] < 0) {
			err = diag_fail_errno(d, -errno, "fork: %s", strerror(errno));
			nworkers = w;
			break;
		}
		if (pids[w] == 0) {
			close(pfd[0]);
			pod_worker(c, w, nworkers, pfd[1], parent);
		}
	}
	close(pfd[1]);
	in = fdopen(pfd[0], "r");
	while (in && fgets(line, sizeof(line), in)) {
		if (line[0] == '+') {
			done++;
			if (done % 10 == 0 || done == n)
				progress("[4/%d] pods %zu/%zu", STEPS, done, n);
			continue;
		}
		line[strcspn(line, "\n")] = '\0';
		if (!err)
			err = diag_fail_errno(d, -EIO, "%s", line + 1);
	}
	if (in)
		fclose(in);
	else
		close(pfd[0]);
	for (w = 0; w < nworkers; w++)
		while (waitpid(pids[w], &status, 0) < 0 && errno == EINTR)
			;
	if (!err && sim_interrupted)
		err = diag_fail_errno(d, -EINTR, "interrupted");
	if (!err && done != n)
		err = diag_fail_errno(d, -EIO, "only %zu of %zu pods were set up", done, n);
	return err;
}

/* "0e:5a:c0:00:02:01": the MAC of vxlan0 on the node with underlay address 192.0.2.1. */
static void vxlan_mac(uint32_t ip, char *buf, size_t size)
{
	const uint8_t *b = (const uint8_t *)&ip;

	snprintf(buf, size, "0e:5a:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]);
}

/*
 * Tunnel routing: vxlan0 in external (collect_md) mode, with no VNI or peer of its own. Each
 * remote pod range is routed into it via the remote node's address (a static neighbour with
 * that node's vxlan0 MAC, so no ARP crosses the tunnel) with a lightweight-tunnel key naming
 * that node; to-overlay (the agent attaches it) replaces the key per packet with the
 * destination's tunnel endpoint and the source's identity as VNI.
 */
static int up_route_node(struct sim_cluster *c, struct sim_host *n, struct script *sc,
			 struct diag *d)
{
	char ip[IP4_STR_MAX], cidr[CIDR4_STR_MAX], mac[18];
	size_t j;

	if (c->tunnel) {
		vxlan_mac(n->ip, mac, sizeof(mac));
		sc_add(sc, "link add %s address %s mtu %u type vxlan external dstport %d dev eth0\n",
		       SIM_VXLAN_DEV, mac, SIM_TUNNEL_MTU, SIM_VXLAN_PORT);
		/* no IPv6 link-local address: nothing but routed pod traffic enters the tunnel */
		sc_add(sc, "link set %s addrgenmode none\n", SIM_VXLAN_DEV);
		sc_add(sc, "link set %s up\n", SIM_VXLAN_DEV);
	}
	for (j = 0; j < c->nhosts; j++) {
		const struct sim_host *o = &c->hosts[j];

		if (o->kind != SIM_NODE || o == n)
			continue;
		ip4_format(o->ip, ip);
		cidr4_format(o->pod_cidr, o->pod_cidr_len, cidr);
		if (!c->tunnel) {
			sc_add(sc, "route add %s via %s dev eth0\n", cidr, ip);
			continue;
		}
		/* the other node's underlay address doubles as its overlay next hop */
		vxlan_mac(o->ip, mac, sizeof(mac));
		sc_add(sc, "neigh add %s lladdr %s dev %s nud permanent\n", ip, mac,
		       SIM_VXLAN_DEV);
		sc_add(sc, "route add %s via %s dev %s onlink encap ip id %d dst %s\n", cidr, ip,
		       SIM_VXLAN_DEV, SIM_VXLAN_ROUTE_VNI, ip);
	}
	return sc_run(sc, n->netns, d);
}

/* [3/5] pod ranges between nodes: direct routes (native) or VXLAN (tunnel). */
static int up_routing(struct sim_cluster *c, struct script *sc, struct diag *d)
{
	size_t i;
	int err;

	progress("[3/%d] routing %s", STEPS,
		 c->tunnel ? "tunnel (vxlan0 external, VNI = source identity, port 8472)"
			   : "native (routes via node IPs)");
	for (i = 0; i < c->nhosts; i++) {
		if (c->hosts[i].kind != SIM_NODE)
			continue;
		err = up_route_node(c, &c->hosts[i], sc, d);
		if (err)
			return err;
	}
	return 0;
}

/* The echo-server group of host h: one ciliate-echo serves a node's own ports and all its
 * pods (each in its namespace), another each external host. */
static const char *echo_group(const struct sim_host *h)
{
	return h->kind == SIM_POD ? h->node : h->name;
}

static bool same_group(const struct sim_host *a, const struct sim_host *b)
{
	return (a->kind == SIM_EXT) == (b->kind == SIM_EXT) && !strcmp(echo_group(a), echo_group(b));
}

/* Appends h's site line ("--netns ... --pod ... --port ...") to the sites file f. */
static void write_site(FILE *f, const struct sim_host *h)
{
	const char *slash = strchr(h->name, '/');
	size_t i;

	fprintf(f, "--netns " NETNS_RUN_DIR "/%s", h->netns);
	if (h->kind == SIM_POD && slash)
		fprintf(f, " --pod %s --namespace %.*s --node %s", slash + 1,
			(int)(slash - h->name), h->name, h->node);
	else if (h->kind == SIM_NODE) /* nodes answer with their name as pod and node */
		fprintf(f, " --pod %s --node %s", h->name, h->name);
	else /* external hosts answer with their name, no namespace, no node */
		fprintf(f, " --pod %s", h->name);
	for (i = 0; i < h->nports; i++)
		fprintf(f, " --port %u", h->ports[i]);
	fputc('\n', f);
}

/* Starts the echo server of group g (hosts[first] is its first host, the others follow at
 * any index): writes its sites file, spawns `ciliate-echo --sites`, records its pid on every
 * host it serves. pidfile gets the readiness file. */
static int spawn_echo_group(struct sim_cluster *c, size_t first, size_t gi,
			    char pidfile[PATH_MAX], struct diag *d)
{
	char bin[PATH_MAX], log[PATH_MAX], sites[PATH_MAX], dir[128];
	const char *g = echo_group(&c->hosts[first]);
	const struct sim_host *home;
	unsigned long long start = 0;
	size_t i;
	FILE *f;
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/ciliate-echo", sim_bin_dir());
	sim_run_dir(c->tag, dir, sizeof(dir));
	snprintf(pidfile, PATH_MAX, "%s/echo-%zu.pid", dir, gi);
	snprintf(log, sizeof(log), "%s/echo-%zu.log", dir, gi);
	snprintf(sites, sizeof(sites), "%s/echo-%zu.sites", dir, gi);
	unlink(pidfile);
	f = fopen(sites, "w");
	if (!f)
		return diag_fail_errno(d, -errno, "%s: %s", sites, strerror(errno));
	fprintf(f, "# echo servers of %s\n", g);
	for (i = first; i < c->nhosts; i++) {
		const struct sim_host *h = &c->hosts[i];

		if (h->nports && same_group(h, &c->hosts[first]))
			write_site(f, h);
	}
	if (fclose(f))
		return diag_fail_errno(d, -EIO, "%s: write failed", sites);
	/* it runs in the node's (the external host's) namespace, so that `down` without a
	 * state file finds it there by the cluster's prefix */
	home = c->hosts[first].kind == SIM_EXT ? &c->hosts[first] : sim_find_host(c, SIM_NODE, g);
	if (!home)
		return diag_fail(d, "echo servers of %s: no such node", g);
	pid = netns_spawn(home->netns, (char *const[]){ bin, "--sites", sites, "--pidfile",
							pidfile, "--quiet", NULL },
			  log, d);
	if (pid < 0)
		return (int)pid;
	if (proc_start_time(pid, &start))
		start = 0; /* already gone: reported by the readiness wait */
	for (i = first; i < c->nhosts; i++) {
		struct sim_host *h = &c->hosts[i];

		if (h->nports && same_group(h, &c->hosts[first])) {
			h->echo.pid = pid;
			h->echo.start = start;
		}
	}
	return 0;
}

/* Last line of a log file, for error messages. */
static void log_tail(const char *path, char *buf, size_t size)
{
	char tmp[4096], *p;
	ssize_t r;
	int fd;

	buf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	r = read(fd, tmp, sizeof(tmp) - 1);
	close(fd);
	if (r <= 0)
		return;
	tmp[r] = '\0';
	while (r > 0 && tmp[r - 1] == '\n')
		tmp[--r] = '\0';
	p = strrchr(tmp, '\n');
	snprintf(buf, size, "%.500s", p ? p + 1 : tmp);
}

static bool pidfile_ready(const char *path, pid_t pid)
{
	char buf[32];
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return false;
	buf[r] = '\0';
	return atoi(buf) == (int)pid;
}

/* The datapath, before the pods (they are plumbed through ciliate-cni and the agents): the
 * store with the scenario's documents, one ciliate-agent per node, each answering. */
static int up_datapath(struct sim_cluster *c, struct diag *d)
{
	bool attached, all_attached = true;
	size_t i;
	int err, e;

	if (sim_no_datapath) {
		progress("datapath: not attached (--no-datapath: plain kernel routing, no policy)");
		return 0;
	}
	err = sim_datapath_prepare(c, d);
	if (!err && c->store_uri[0])
		progress("store: etcd (%s)", c->store_uri);
	for (i = 0; !err && i < c->nhosts; i++) {
		if (c->hosts[i].kind != SIM_NODE)
			continue;
		err = sim_attach_datapath(c, &c->hosts[i], &attached, d);
		all_attached &= attached;
	}
	/* one per cluster, as in Cilium: identity GC, departed nodes, policy status */
	if (!err)
		err = sim_operator_start(c, d);
	/* record the agents (and their pins) before waiting for them */
	e = sim_state_save(c, err ? NULL : d);
	if (!err)
		err = e;
	if (!err)
		err = sim_datapath_wait(c, d);
	if (err)
		return err;
	c->datapath = all_attached;
	progress("datapath: %s", c->datapath ? "attached (ciliate-agent per node, ciliate-cni per pod)"
					      : "not attached (plain kernel routing, no policy)");
	return sim_state_save(c, d);
}

/* [5/5] echo servers on every pod's, node's and external host's ports: one ciliate-echo per
 * node (its ports and its pods', each site in its namespace) and per external host. One
 * process per pod cost minutes and gigabytes at 10,000 pods. */
static int up_servers(struct sim_cluster *c, struct diag *d)
{
	char (*pidfiles)[PATH_MAX] = NULL, dir[128], log[PATH_MAX], tail[512];
	size_t i, j, n = 0, ngroups = 0, ready = 0, nready;
	size_t *group_host = NULL; /* the first host of each group */
	long long deadline;
	int err = 0, status;

	for (i = 0; i < c->nhosts; i++)
		n += c->hosts[i].nports > 0;
	progress("[5/%d] servers 0/%zu", STEPS, n);
	pidfiles = calloc(c->nhosts + 1, sizeof(*pidfiles));
	group_host = calloc(c->nhosts + 1, sizeof(*group_host));
	if (!pidfiles || !group_host) {
		err = diag_fail_errno(d, -ENOMEM, "out of memory");
		goto out;
	}
	sim_run_dir(c->tag, dir, sizeof(dir));
	for (i = 0; i < c->nhosts; i++) {
		const struct sim_host *h = &c->hosts[i];

		if (!h->nports || h->echo.pid)
			continue; /* no ports, or its group's server runs already */
		group_host[ngroups] = i;
		err = spawn_echo_group(c, i, ngroups, pidfiles[ngroups], d);
		if (err)
			goto out;
		ngroups++;
	}
	err = sim_state_save(c, d);
	if (err)
		goto out;
	/* every server gets the same bounded readiness window */
	deadline = sim_now_ms() + SIM_ECHO_READY_MS;
	while (ready < ngroups) {
		ready = 0;
		for (j = 0; j < ngroups; j++) {
			struct sim_host *h = &c->hosts[group_host[j]];

			if (pidfile_ready(pidfiles[j], h->echo.pid)) {
				ready++;
				continue;
			}
			if (waitpid(h->echo.pid, &status, WNOHANG) == h->echo.pid ||
			    !proc_alive(h->echo.pid, 0)) {
				snprintf(log, sizeof(log), "%s/echo-%zu.log", dir, j);
				log_tail(log, tail, sizeof(tail));
				err = diag_fail_errno(d, -EIO, "echo server of %s exited: %s",
						      echo_group(h), tail[0] ? tail : "(no output)");
				goto out;
			}
		}
		if (ready == ngroups)
			break;
		if (sim_now_ms() > deadline) {
			err = diag_fail_errno(d, -ETIMEDOUT,
					      "echo servers not ready after %d ms (%zu/%zu processes)",
					      SIM_ECHO_READY_MS, ready, ngroups);
			goto out;
		}
		usleep(10000);
	}
	for (i = 0, nready = 0; i < c->nhosts; i++)
		nready += c->hosts[i].nports > 0;
	progress("[5/%d] servers %zu/%zu (%zu processes)", STEPS, nready, n, ngroups);
out:
	free(group_host);
	free(pidfiles);
	return err;
}

int sim_up(struct sim_cluster *c, const struct scenario *s, struct diag *d)
{
	long long start = sim_now_ms();
	char dir[PATH_MAX];
	struct script *sc;
	int err;

	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	c->owner.pid = getpid();
	proc_start_time(c->owner.pid, &c->owner.start);
	snprintf(c->phase, sizeof(c->phase), "creating");
	err = sim_state_save(c, d);
	if (err)
		goto out;
	sim_run_dir(c->tag, dir, sizeof(dir));
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		err = diag_fail_errno(d, -errno, "mkdir %s: %s", dir, strerror(errno));
		goto out;
	}
	err = up_fabric(c, sc, d);
	if (!err)
		err = up_hosts(c, s, sc, d);
	if (!err)
		err = up_xdp_peers(c, s, d);
	if (!err)
		err = up_routing(c, sc, d);
	if (!err)
		err = up_datapath(c, d);
	if (!err)
		err = up_pods(c, d);
	if (!err)
		err = up_servers(c, d);
	/* "up" means converged: every agent knows every pod before the first probe */
	if (!err)
		err = sim_datapath_settle(c, d);
	if (!err)
		err = sim_encryption_ready(c, d);
	if (err)
		goto out;
	c->up_ms = sim_now_ms() - start;
	snprintf(c->phase, sizeof(c->phase), "up");
	err = sim_state_save(c, d);
out:
	free(sc);
	if (err) {
		struct diag dd;

		diag_prefix(d, "bring-up of %s (tag %s)", c->name, c->tag);
		fprintf(stderr, "ciliate-sim: %s\nciliate-sim: tearing down what was created\n",
			d ? d->msg : "bring-up failed");
		sim_state_save(c, NULL); /* record any process started before the failure */
		if (sim_down_tag(c->tag, true, &dd))
			fprintf(stderr, "ciliate-sim: teardown: %s\n", dd.msg);
	}
	return err;
}
