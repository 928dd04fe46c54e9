/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pod-to-pod-encryption, as Cilium's: while the clients talk to the echo pod of the other
 * node, tcpdump listens on the client node's fabric device (eth0, inside the node's
 * namespace); afterwards no captured packet may carry the flows in plaintext — neither a
 * request (`ciliate-probe from=SRC:PORT/TCP seq=`, which names its own source) nor an IPv4
 * header of the flow at any offset (so inside VXLAN too).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ct.h"
#include "netns.h"

#define CAPTURE_MAX "20000"

int ct_encryption_check(struct ct_ctx *c, struct ct_action *a, size_t n);

static bool has_listening(const char *log)
{
	char buf[2048] = "";
	FILE *f = fopen(log, "r");
	size_t r;

	if (!f)
		return false;
	r = fread(buf, 1, sizeof(buf) - 1, f);
	buf[r] = '\0';
	fclose(f);
	return strstr(buf, "listening on") != NULL;
}

static void log_tail(const char *log, char *out, size_t size)
{
	FILE *f = fopen(log, "r");
	size_t r = 0;

	if (f) {
		r = fread(out, 1, size - 1, f);
		fclose(f);
	}
	out[r] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

static bool ipv4_header_at(const u_char *p, size_t left, uint32_t s, uint32_t d)
{
	uint32_t ps, pd;

	if (left < 20 || (p[0] >> 4) != 4 || (p[0] & 0xf) < 5 || p[9] != 6)
		return false;
	memcpy(&ps, p + 12, 4);
	memcpy(&pd, p + 16, 4);
	return (ps == s && pd == d) || (ps == d && pd == s);
}

/* The first packet (1-based) of the capture holding action x's flow in plaintext, or 0;
 * *total gets the packets read. */
static long plaintext(const char *pcap_path, const struct ct_action *x, long *total, char *err,
		      size_t errsize)
{
	char ebuf[PCAP_ERRBUF_SIZE], needle[96];
	struct pcap_pkthdr *h;
	const u_char *data;
	uint32_t s = 0, d = 0;
	long num = 0, found = 0;
	pcap_t *p;
	size_t k, off, nlen;

	p = pcap_open_offline(pcap_path, ebuf);
	if (!p) {
		snprintf(err, errsize, "%.200s: %.250s", pcap_path, ebuf);
		return -1;
	}
	inet_pton(AF_INET, x->src_ip, &s);
	inet_pton(AF_INET, x->to, &d);
	while (pcap_next_ex(p, &h, &data) == 1) {
		num++;
		for (off = 0; !found && off < h->caplen; off++) {
			if (ipv4_header_at(data + off, h->caplen - off, s, d))
				found = num;
			for (k = 0; !found && k < x->nsports; k++) {
				nlen = (size_t)snprintf(needle, sizeof(needle),
							"ciliate-probe from=%s:%u/TCP seq=",
							x->src_ip, x->sports[k]);
				if (h->caplen - off >= nlen && !memcmp(data + off, needle, nlen))
					found = num;
			}
		}
	}
	pcap_close(p);
	*total = num;
	return found;
}

int ct_encryption_check(struct ct_ctx *c, struct ct_action *a, size_t n)
{
	const struct ct_pod *cl = &c->pods[CT_CLIENT], *cl2 = &c->pods[CT_CLIENT2];
	const struct ct_pod *echo = &c->pods[CT_ECHO_OTHER];
	const struct ct_node *node = &c->env.nodes[cl->node];
	char pcap_path[700], log[700], err[512], tail[400];
	struct diag d = {{0}};
	long long deadline;
	size_t i, m = 0;
	pid_t pid;

	if (n < 2)
		return 0;
	for (i = 0; i < 2; i++) {
		const struct ct_pod *src = i ? cl2 : cl;

		memset(&a[m], 0, sizeof(a[m]));
		snprintf(a[m].name, sizeof(a[m].name), "pod-to-pod-encryption/echo-%zu", i);
		snprintf(a[m].netns, sizeof(a[m].netns), "%s", src->netns);
		snprintf(a[m].src, sizeof(a[m].src), "%s/%s (%s)", c->ns, src->name, src->ip);
		snprintf(a[m].src_ip, sizeof(a[m].src_ip), "%s", src->ip);
		snprintf(a[m].to, sizeof(a[m].to), "%s", echo->ip);
		snprintf(a[m].dst, sizeof(a[m].dst), "%s/%s (%s:%d)", c->ns, echo->name, echo->ip,
			 CT_ECHO_PORT);
		snprintf(a[m].want, sizeof(a[m].want), "%s/%s", c->ns, echo->name);
		a[m].port = CT_ECHO_PORT;
		a[m].expect = CT_ALLOW;
		m++;
	}
	snprintf(pcap_path, sizeof(pcap_path), "%s/encryption.pcap", c->run_dir);
	snprintf(log, sizeof(log), "%s/tcpdump.log", c->run_dir);
	unlink(log);
	pid = netns_spawn(node->netns[0] ? node->netns : NULL,
			  (char *const[]){"/usr/bin/tcpdump", "--immediate-mode", "-Z", "root",
					  "-i", "eth0", "-n", "-U", "-s", "4096", "-c", CAPTURE_MAX,
					  "-w", pcap_path, NULL},
			  log, &d);
	if (pid < 0) {
		for (i = 0; i < m; i++)
			snprintf(a[i].reason, sizeof(a[i].reason), "cannot capture: %.700s", d.msg);
		return (int)m;
	}
	for (deadline = ct_now_ms() + 3000; !has_listening(log) && ct_now_ms() < deadline;)
		usleep(20000);
	ct_run_actions(c, a, m);
	usleep(200000);
	kill(pid, SIGINT);
	for (deadline = ct_now_ms() + 2000; waitpid(pid, NULL, WNOHANG) == 0;) {
		if (ct_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			break;
		}
		usleep(20000);
	}
	log_tail(log, tail, sizeof(tail));
	for (i = 0; i < m; i++) {
		long total = 0, first;

		if (!a[i].pass)
			continue;
		first = plaintext(pcap_path, &a[i], &total, err, sizeof(err));
		a[i].pass = first == 0 && total > 0;
		if (first == 0 && !total)
			snprintf(a[i].reason, sizeof(a[i].reason),
				 "cannot tell: nothing was "
				 "captured on %s's eth0 during the probe (tcpdump: %.300s)",
				 node->name, tail);
		else if (first < 0)
			snprintf(a[i].reason, sizeof(a[i].reason), "cannot tell: %s", err);
		else if (first > 0)
			snprintf(a[i].reason, sizeof(a[i].reason),
				 "packet %ld of %ld captured on %s's eth0 carries this flow in "
				 "plaintext",
				 first, total, node->name);
		else
			snprintf(a[i].observed + strlen(a[i].observed),
				 sizeof(a[i].observed) - strlen(a[i].observed),
				 "; %ld packet(s) on %s's eth0, none of this flow in plaintext",
				 total, node->name);
	}
	unlink(pcap_path);
	return (int)m;
}
