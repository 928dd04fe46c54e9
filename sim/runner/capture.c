/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Captures inside the simulator's namespaces: tcpdump started in a namespace with `ip netns
 * exec` (shared by `ciliate-sim capture` and the runner), and the runner's replyBypasses
 * check (SPEC section 5: "DSR: the reply never crossed that node's fabric interface"): a
 * capture on the fabric side of the node's underlay veth for as long as the step's probes
 * run, read back with libpcap and filtered for reply packets of the probe's flows, plain or
 * inside VXLAN (UDP 8472); and the encryptedOn check (SPEC section 5: "no plaintext pod
 * traffic captured on the underlay"): every packet on a node's fabric link during the step,
 * searched for a probe's request bytes and for an IPv4 header of its pod addresses at any
 * offset.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY_SNAPLEN "192"      /* outer + VXLAN + inner headers */
#define REPLY_COUNT 20000        /* packets kept per capture, at most */
#define REPLY_READY_MS 3000      /* tcpdump must be listening by then */
#define VXLAN_PORT 8472
#define LINKTYPE_ETHERNET 1      /* DLT_EN10MB (pcap/bpf.h is not included here) */
#define FABRIC_SNAPLEN "4096"    /* headers and the start of every payload, inner ones too */
#define FABRIC_COUNT 20000       /* packets kept per node and step, at most */

int sim_tcpdump_start(const struct sim_tcpdump *t, pid_t *pid, int *err_fd)
{
	char cnt[24], *args[40 + SIM_TCPDUMP_FILTER_MAX];
	int a = 0, k, pfd[2] = { -1, -1 };

	snprintf(cnt, sizeof(cnt), "%ld", t->count);
	args[a++] = "ip";
	args[a++] = "netns";
	args[a++] = "exec";
	args[a++] = (char *)t->netns;
	args[a++] = "tcpdump";
	if (t->immediate)
		args[a++] = "--immediate-mode";
	args[a++] = "-n";
	args[a++] = "-i";
	args[a++] = (char *)t->iface;
	args[a++] = "-c";
	args[a++] = cnt;
	if (t->snaplen) {
		args[a++] = "-s";
		args[a++] = (char *)t->snaplen;
	}
	if (t->file) {
		args[a++] = "-U";
		args[a++] = "-w";
		args[a++] = (char *)t->file;
	} else {
		args[a++] = "-l";
	}
	if (t->as_root) { /* it writes into root's run directory */
		args[a++] = "-Z";
		args[a++] = "root";
	}
	for (k = 0; k < t->nfilter && k < SIM_TCPDUMP_FILTER_MAX; k++)
		args[a++] = t->filter[k];
	args[a] = NULL;
	if (err_fd && pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	*pid = fork();
	if (*pid < 0) {
		k = -errno;
		if (err_fd) {
			close(pfd[0]);
			close(pfd[1]);
		}
		return k;
	}
	if (*pid == 0) {
		signal(SIGINT, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* no capture outlives a killed simulator */
		if (err_fd) {
			dup2(pfd[1], STDERR_FILENO);
			k = open("/dev/null", O_RDWR);
			if (k >= 0) {
				dup2(k, STDIN_FILENO);
				dup2(k, STDOUT_FILENO);
			}
		}
		execvp("ip", args);
		_exit(127);
	}
	if (err_fd) {
		close(pfd[1]);
		*err_fd = pfd[0];
	}
	return 0;
}

int sim_tcpdump_wait(pid_t pid, long long deadline_ms, const char *timeout_msg)
{
	bool stopped = false;
	int status = 0;

	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return -errno;
		if (!stopped && sim_now_ms() > deadline_ms) {
			if (timeout_msg)
				fprintf(stderr, "%s", timeout_msg);
			kill(pid, SIGINT);
			stopped = true;
			deadline_ms = sim_now_ms() + 2000;
		} else if (stopped && sim_now_ms() > deadline_ms) {
			kill(pid, SIGKILL);
		}
		usleep(stopped ? 10000 : 50000);
	}
	if (stopped)
		return 0;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

/* ---- replyBypasses ------------------------------------------------------------------- */

/* Waits (bounded) for tcpdump's "listening on" line: from then on it sees every packet. */
static int wait_listening(struct sim_reply_watch *w)
{
	long long deadline = sim_now_ms() + REPLY_READY_MS;
	char buf[512];
	size_t len = 0;
	ssize_t n;

	for (;;) {
		long long left = deadline - sim_now_ms();
		struct pollfd pfd = { .fd = w->err_fd, .events = POLLIN };

		if (left <= 0) {
			snprintf(w->error, sizeof(w->error), "tcpdump on %s did not start listening "
				 "within %d ms", w->iface, REPLY_READY_MS);
			return -ETIMEDOUT;
		}
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = read(w->err_fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0) {
			buf[len] = '\0';
			snprintf(w->error, sizeof(w->error), "tcpdump on %s in %.64s failed: %.120s",
				 w->iface, w->netns, len ? buf : "exited");
			return -EIO;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "listening on"))
			return 0;
		if (len == sizeof(buf) - 1) { /* keep the tail */
			memmove(buf, buf + len / 2, len - len / 2 + 1);
			len -= len / 2;
		}
	}
}

/* tcpdump on node's fabric veth end into file (filter: NULL for every packet). */
static int watch_start(const struct sim_cluster *c, const char *node, const char *file,
		       char *filter, const char *snaplen, long count, struct sim_reply_watch *w)
{
	const struct sim_host *h = sim_find_host(c, SIM_NODE, node);
	struct sim_tcpdump t = { 0 };
	char *fv[1] = { filter };

	memset(w, 0, sizeof(*w));
	w->pid = -1;
	w->err_fd = -1;
	snprintf(w->node, sizeof(w->node), "%s", node);
	if (!h) {
		snprintf(w->error, sizeof(w->error), "no node %s in the simulation", node);
		return -ENOENT;
	}
	snprintf(w->netns, sizeof(w->netns), "%s", c->fabric);
	snprintf(w->iface, sizeof(w->iface), "%s", h->ifname);
	snprintf(w->file, sizeof(w->file), "%s", file);
	t.netns = w->netns;
	t.iface = w->iface;
	t.file = w->file;
	t.snaplen = snaplen;
	t.count = count;
	t.as_root = true;
	t.immediate = true;
	t.filter = fv;
	t.nfilter = filter ? 1 : 0;
	unlink(file);
	if (sim_tcpdump_start(&t, &w->pid, &w->err_fd)) {
		snprintf(w->error, sizeof(w->error), "cannot start tcpdump: %s", strerror(errno));
		w->pid = -1;
		return -EIO;
	}
	w->started = true;
	if (wait_listening(w)) {
		sim_reply_watch_free(w);
		return -EIO;
	}
	return 0;
}

int sim_reply_watch_start(const struct sim_cluster *c, const char *node, const char *client_ip,
			  const char *file, struct sim_reply_watch *w)
{
	char filter[96];

	/* anything to the client, and all VXLAN (the inner header is filtered afterwards) */
	snprintf(filter, sizeof(filter), "ip and (dst host %s or udp port %d)", client_ip,
		 VXLAN_PORT);
	return watch_start(c, node, file, filter, REPLY_SNAPLEN, REPLY_COUNT, w);
}

int sim_fabric_watch_start(const struct sim_cluster *c, const char *node, const char *file,
			   struct sim_reply_watch *w)
{
	return watch_start(c, node, file, NULL, FABRIC_SNAPLEN, FABRIC_COUNT, w);
}

int sim_reply_watch_stop(struct sim_reply_watch *w)
{
	int err;

	if (w->pid <= 0)
		return 0;
	kill(w->pid, SIGINT); /* tcpdump flushes the file and exits */
	err = sim_tcpdump_wait(w->pid, sim_now_ms() + 2000, NULL);
	w->pid = -1;
	if (w->err_fd >= 0)
		close(w->err_fd);
	w->err_fd = -1;
	w->stopped = !err;
	if (err && !w->error[0])
		snprintf(w->error, sizeof(w->error), "tcpdump on %s did not stop cleanly",
			 w->iface);
	return err;
}

void sim_reply_watch_free(struct sim_reply_watch *w)
{
	if (w->pid > 0) {
		kill(w->pid, SIGKILL);
		while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	w->pid = -1;
	if (w->err_fd >= 0)
		close(w->err_fd);
	w->err_fd = -1;
	if (w->started && w->file[0] && !w->kept)
		unlink(w->file);
	w->started = false;
}

static uint16_t get16(const u_char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* An IPv4 packet at p (len bytes) of the flow: proto from one of srcs to client on one of
 * the ports. Sets *inner to the offset of a VXLAN payload's Ethernet header (0: none). */
static bool reply_of(const struct sim_reply_flow *f, const u_char *p, size_t len,
		     size_t *inner, char *example, size_t esize)
{
	size_t ihl, k;
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	char a[IP4_STR_MAX], b[IP4_STR_MAX];

	*inner = 0;
	if (len < 20 || p[0] >> 4 != 4)
		return false;
	ihl = (size_t)(p[0] & 0xf) * 4;
	if (ihl < 20 || len < ihl + 8 || (get16(p + 6) & 0x1fff))
		return false;
	memcpy(&saddr, p + 12, 4);
	memcpy(&daddr, p + 16, 4);
	sport = get16(p + ihl);
	dport = get16(p + ihl + 2);
	if (p[9] == IPPROTO_UDP && (dport == VXLAN_PORT || sport == VXLAN_PORT) &&
	    len >= ihl + 16) {
		*inner = ihl + 16;
		return false;
	}
	if (p[9] != f->proto || daddr != f->client)
		return false;
	for (k = 0; k < f->nsrcs && f->srcs[k] != saddr; k++)
		;
	if (k == f->nsrcs)
		return false;
	for (k = 0; k < f->nports && f->ports[k] != dport; k++)
		;
	if (k == f->nports)
		return false;
	snprintf(example, esize, "%s %s:%u > %s:%u", f->proto == IPPROTO_UDP ? "UDP" : "TCP",
		 ip4_format(saddr, a), sport, ip4_format(daddr, b), dport);
	return true;
}

/* An Ethernet frame: the packet itself, or the packet tunnelled in it. */
static bool frame_has_reply(const struct sim_reply_flow *f, const u_char *p, size_t len,
			    bool *tunnelled, char *example, size_t esize)
{
	size_t inner;
	int depth;

	for (depth = 0; depth < 2; depth++) {
		if (len < 14 || get16(p + 12) != 0x0800)
			return false;
		if (reply_of(f, p + 14, len - 14, &inner, example, esize)) {
			*tunnelled = depth > 0;
			return true;
		}
		if (!inner)
			return false;
		p += 14 + inner;
		len -= 14 + inner;
	}
	return false;
}

int sim_reply_watch_count(struct sim_reply_watch *w, const struct sim_reply_flow *f)
{
	char errbuf[PCAP_ERRBUF_SIZE], ex[160];
	struct pcap_pkthdr *hdr;
	const u_char *data;
	bool tunnelled;
	pcap_t *pc;
	int rc;

	w->seen = 0;
	w->total = 0;
	if (!w->stopped)
		return -EIO;
	pc = pcap_open_offline(w->file, errbuf);
	if (!pc) {
		snprintf(w->error, sizeof(w->error), "reading the capture: %.200s", errbuf);
		return -EIO;
	}
	if (pcap_datalink(pc) != LINKTYPE_ETHERNET) {
		snprintf(w->error, sizeof(w->error), "capture on %s: link type %d, not Ethernet",
			 w->iface, pcap_datalink(pc));
		pcap_close(pc);
		return -EIO;
	}
	while ((rc = pcap_next_ex(pc, &hdr, &data)) == 1) {
		w->total++;
		if (!frame_has_reply(f, data, hdr->caplen, &tunnelled, ex, sizeof(ex)))
			continue;
		if (!w->seen++)
			snprintf(w->example, sizeof(w->example), "%s%s", ex,
				 tunnelled ? " (in VXLAN)" : "");
	}
	pcap_close(pc);
	if (!w->seen && w->total >= REPLY_COUNT) { /* tcpdump stopped at its bound */
		snprintf(w->error, sizeof(w->error), "the capture on %s filled up (%d packets) "
			 "before the probes ended: cannot tell", w->iface, REPLY_COUNT);
		return -EIO;
	}
	return 0;
}

/* ---- encryptedOn: fabric ------------------------------------------------------------- */

/* An IPv4 header of proto at p (at least 20 bytes) from a to one of bs, or back. */
static bool header_pair(const u_char *p, uint8_t proto, uint32_t a, const uint32_t *bs,
			size_t nb)
{
	uint32_t s, d;
	size_t k;

	if ((p[0] & 0xf0) != 0x40 || (p[0] & 0x0f) < 5 || get16(p + 2) < 20 || p[9] != proto)
		return false;
	memcpy(&s, p + 12, 4);
	memcpy(&d, p + 16, 4);
	if (s != a && d != a)
		return false;
	for (k = 0; k < nb; k++)
		if ((s == a && d == bs[k]) || (d == a && s == bs[k]))
			return true;
	return false;
}

/* The probe's request in one frame: true with where into what. */
static bool frame_payload(const struct sim_plain_flow *f, const u_char *p, size_t len,
			  char *what, size_t size)
{
	size_t k;

	for (k = 0; k < f->ntokens; k++) {
		size_t tl = strlen(f->tokens[k]);
		const u_char *at = tl ? memmem(p, len, f->tokens[k], tl) : NULL;

		if (at) {
			snprintf(what, size, "the probe's request in plaintext (\"%s\" at byte %zu)",
				 f->tokens[k], (size_t)(at - p));
			return true;
		}
	}
	return false;
}

/* An IPv4 header of the flow at any offset of one frame: true with where into what. */
static bool frame_header(const struct sim_plain_flow *f, const u_char *p, size_t len,
			 char *what, size_t size)
{
	char a[IP4_STR_MAX], b[IP4_STR_MAX];
	uint32_t s, d;
	size_t off;

	for (off = 0; off + 20 <= len; off++) {
		if (!header_pair(p + off, f->proto, f->src, f->dsts, f->ndsts))
			continue;
		memcpy(&s, p + off + 12, 4);
		memcpy(&d, p + off + 16, 4);
		snprintf(what, size, "a plaintext IPv4 header %s > %s at byte %zu%s",
			 ip4_format(s, a), ip4_format(d, b), off,
			 off == 14 ? " (the packet's own)" : " (inside an encapsulation)");
		return true;
	}
	return false;
}

int sim_fabric_watch_scan(struct sim_reply_watch *w, const struct sim_plain_flow *f,
			  struct sim_plain_hit *h)
{
	char errbuf[PCAP_ERRBUF_SIZE], what[sizeof(h->payload_what)];
	struct pcap_pkthdr *hdr;
	const u_char *data;
	pcap_t *pc;
	int rc;

	memset(h, 0, sizeof(*h));
	if (!w->stopped) {
		if (!w->error[0])
			snprintf(w->error, sizeof(w->error), "the capture on %s did not run",
				 w->iface);
		return -EIO;
	}
	pc = pcap_open_offline(w->file, errbuf);
	if (!pc) {
		snprintf(w->error, sizeof(w->error), "reading the capture: %.200s", errbuf);
		return -EIO;
	}
	while ((rc = pcap_next_ex(pc, &hdr, &data)) == 1) {
		bool payload, header;

		h->total++;
		payload = frame_payload(f, data, hdr->caplen, what, sizeof(what));
		if (payload && !h->payload_packets++) {
			h->payload_first = h->total;
			snprintf(h->payload_what, sizeof(h->payload_what), "%s", what);
		}
		header = !payload && frame_header(f, data, hdr->caplen, what, sizeof(what));
		if ((payload || header) && !h->packets++) {
			h->first = h->total;
			snprintf(h->what, sizeof(h->what), "%s", what);
		}
	}
	pcap_close(pc);
	w->total = h->total;
	if (!h->packets && h->total >= FABRIC_COUNT) { /* tcpdump stopped at its bound */
		snprintf(w->error, sizeof(w->error), "the capture on %s filled up (%d packets) "
			 "before the probes ended: cannot tell", w->iface, FABRIC_COUNT);
		return -EIO;
	}
	return 0;
}

int sim_fabric_watch_keep(struct sim_reply_watch *w, const char *name)
{
	char path[sizeof(w->file)];

	if (w->kept)
		return 0;
	if (mkdir("/run/ciliate", 0755) && errno != EEXIST)
		return -errno;
	if (mkdir(SIM_FABRIC_KEEP_DIR, 0755) && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(path, sizeof(path), SIM_FABRIC_KEEP_DIR "/%s", name) >= sizeof(path))
		return -ENAMETOOLONG;
	if (rename(w->file, path))
		return -errno;
	snprintf(w->file, sizeof(w->file), "%s", path);
	w->kept = true;
	return 0;
}
