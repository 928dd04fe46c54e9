/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running Test documents: each step's state changes (through the datapath hook), then its
 * probes and matrix cells as ciliate-probe runs in parallel, then the assertions.
 *
 * With the datapath, a step's state change is its own `apply` check (a rejected manifest
 * fails it; the probes show the previous state). Evidence (SPEC section 5): a deny holds only
 * when no reply came back and a drop event of the probe's own flow was seen (evidence.c),
 * after a preflight showed the target's server answering inside its own namespace; an allow
 * holds only when the intended target answered. Honest reporting with
 * --no-datapath: a step that changes state fails all its checks ("policy changes need the
 * datapath: not applied"), a `deny` expectation fails whatever was observed. encryptedOn:
 * fabric captures every packet on the fabric links of the probe's nodes (every node for a
 * service or an external host) while the step's probes run and fails if any carries the
 * probe's request or an IPv4 header of its addresses in plaintext (capture.c). clientIPSeen:
 * egress-ip compares with the egress IP the model's egress_route_of gives for the pod and
 * destination, over the store's objects as the step left them. replyBypasses: node/N captures on N's fabric link while the step's probes
 * run (capture.c) and fails if a reply packet of the probe's flows crossed it.
 *
 * Services (svc/NS/NAME, node/NAME on a NodePort): the probe goes to the frontend; an answer
 * counts only from a backend of that service port, computed from the cluster's objects as
 * the store holds them for the step (services.c); a deny's drop event may name the frontend
 * (before DNAT) or a backend (after it), and every backend's server must answer its
 * preflight.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/names.h"

volatile int sim_interrupted;

/* encryptedOn: fabric — the step's captures, one per node some probe needs (indexed like
 * the cluster's hosts; only nodes' entries are used). */
struct fabric_watches {
	struct sim_reply_watch *w; /* c->nhosts entries */
	bool *want;
	size_t n;
	unsigned int step;         /* the run's n-th step with captures (file names) */
};

struct pending {
	struct sim_check chk;
	int job;                     /* index into the step's jobs; -1: not run */
	int *pre;                    /* indexes into the step's preflight jobs (heap) */
	size_t npre;
	const struct m_probe *probe; /* NULL for matrix cells */
	struct sim_service_target svc; /* svc.svc set: a service probe */
	struct sim_spread spread;      /* spread.count set: a spread probe */
	const struct sim_host *source, *target;
	char src_ip[IP4_STR_MAX];
	struct sim_reply_watch *watch; /* replyBypasses: the capture on that node's link (heap) */
	struct fabric_watches *fabric; /* encryptedOn: the step's captures (NULL: none) */
	unsigned int dsr_overhead;     /* pmtu: what the DSR dispatch adds to a request */
	const struct cluster_model *model; /* the step's model (egress gateway policies) */
};

json_t *sim_flow_log;

static void reason_add(struct sim_check *chk, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reason_add(struct sim_check *chk, const char *fmt, ...)
{
	size_t len = strlen(chk->reason);
	va_list ap;

	if (len && len < sizeof(chk->reason) - 2) {
		snprintf(chk->reason + len, sizeof(chk->reason) - len, "; ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(chk->reason + len, sizeof(chk->reason) - len, fmt, ap);
	va_end(ap);
	chk->pass = false;
}

/* Resolves an endpoint reference to the host, the namespace it runs in and its address.
 * svc/ references are destinations only, resolved by resolve_service. */
static int resolve(const struct sim_cluster *c, const char *ref, char *netns, char *ip,
		   const struct sim_host **host, char *why, size_t wsize)
{
	const struct sim_host *h = NULL;
	uint32_t a;

	if (!strncmp(ref, "svc/", 4)) {
		snprintf(why, wsize, "%s: a service is not a host: it cannot be a source", ref);
		return -EINVAL;
	}
	if (!strncmp(ref, "node/", 5)) {
		h = sim_find_host(c, SIM_NODE, ref + 5);
	} else if (!strncmp(ref, "ext/", 4)) {
		h = sim_find_host(c, SIM_EXT, ref + 4);
	} else if (!strncmp(ref, "ip/", 3)) {
		h = ip4_parse(ref + 3, &a) ? NULL : sim_host_by_ip(c, a);
		if (!h) {
			snprintf(why, wsize, "%s: refused: not an address inside the simulation",
				 ref);
			return -EPERM;
		}
	} else {
		h = sim_find_host(c, SIM_POD, ref);
	}
	if (!h) {
		snprintf(why, wsize, "%s: no such host in the simulation", ref);
		return -ENOENT;
	}
	snprintf(netns, NETNS_NAME_MAX, "%s", h->netns);
	ip4_format(h->ip, ip);
	if (host)
		*host = h;
	return 0;
}

static const char *proto_str(uint8_t proto)
{
	static char buf[16];

	return proto_name(proto, buf, sizeof(buf));
}

/* The destination of a check: a host, or a service frontend (svc/NS/NAME: its ClusterIP;
 * node/NAME on a nodePort a service owns: the node's address; ip/A.B.C.D of a LoadBalancer
 * IP or externalIP) with its backends in p->svc. */
static int resolve_destination(const struct sim_cluster *c, const struct cluster_model *m,
			       struct pending *p, char *netns, char *ip, char *why, size_t wsize)
{
	int err;

	if (!strncmp(p->chk.to, "svc/", 4)) {
		err = sim_service_resolve(c, m, p->chk.to + 4, p->chk.port, p->chk.proto, &p->svc,
					  why, wsize);
		if (!err)
			ip4_format(p->svc.frontend, ip);
		return err;
	}
	if (!strncmp(p->chk.to, "ip/", 3) && p->chk.proto != IPPROTO_ICMP) {
		uint32_t a;

		err = ip4_parse(p->chk.to + 3, &a) ? 0 :
			sim_frontend_ip_resolve(c, m, a, p->chk.port, p->chk.proto, &p->svc, why,
						wsize);
		if (err < 0)
			return err;
		if (err > 0) { /* a LoadBalancer IP or externalIP: answered by a backend */
			snprintf(ip, IP4_STR_MAX, "%s", p->chk.to + 3);
			p->target = NULL;
			return 0;
		}
	}
	err = resolve(c, p->chk.to, netns, ip, &p->target, why, wsize);
	if (err || p->target->kind != SIM_NODE || p->chk.proto == IPPROTO_ICMP)
		return err;
	err = sim_nodeport_resolve(c, m, p->target, p->chk.port, p->chk.proto, &p->svc, why,
				   wsize);
	if (err > 0) /* the node forwards it: the answer comes from a backend */
		p->target = NULL;
	return err < 0 ? err : 0;
}

/* A stream's destination address (svc/NS/NAME: the ClusterIP of its TCP port). */
static int resolve_address(const struct sim_cluster *c, const struct cluster_model *m,
			   const char *ref, uint16_t port, char *ip, char *why, size_t wsize)
{
	struct sim_service_target t;
	char netns[NETNS_NAME_MAX];
	int err;

	if (strncmp(ref, "svc/", 4))
		return resolve(c, ref, netns, ip, NULL, why, wsize);
	err = sim_service_resolve(c, m, ref + 4, port, IPPROTO_TCP, &t, why, wsize);
	if (!err)
		ip4_format(t.frontend, ip);
	sim_service_target_free(&t);
	return err;
}

/* Sets up a check's job, or marks it not runnable with the reason. */
static void plan_check(const struct sim_cluster *c, const struct cluster_model *m,
		       struct pending *p, struct sim_probe_job *jobs, size_t *njobs, int count)
{
	struct sim_probe_job *j = &jobs[*njobs];
	char why[512], dst_ns[NETNS_NAME_MAX];

	p->job = -1;
	if (p->chk.proto == IPPROTO_SCTP && p->chk.pass) {
		/* SPEC §5: SCTP is checked by replay only (the Replay documents of the
		 * scenario, and tests/bpf/test_policy_agreement) */
		p->chk.skipped = true;
		snprintf(p->chk.reason, sizeof(p->chk.reason),
			 "SCTP is checked by replay only (scenarios/replay/sctp-policy.yaml, "
			 "test_policy_agreement): no SCTP probe through the simulator");
		return;
	}
	if (p->chk.proto != IPPROTO_TCP && p->chk.proto != IPPROTO_UDP &&
	    p->chk.proto != IPPROTO_ICMP) {
		reason_add(&p->chk, "%s probes not implemented (TCP, UDP and ICMP only)",
			   proto_str(p->chk.proto));
		return;
	}
	memset(j, 0, sizeof(*j));
	if (resolve(c, p->chk.from, j->netns, p->src_ip, &p->source, why, sizeof(why)) ||
	    resolve_destination(c, m, p, dst_ns, j->to, why, sizeof(why))) {
		reason_add(&p->chk, "%s", why);
		return;
	}
	if (p->svc.svc)
		sim_service_traffic_policy(&p->svc, p->source);
	j->port = p->chk.port;
	j->proto = p->chk.proto;
	j->count = count;
	j->timeout_ms = SIM_PROBE_TIMEOUT_MS;
	if (p->probe) {
		j->payload_bytes = p->probe->payload_bytes;
		j->tcp_fast_open = p->probe->tcp_fast_open;
	}
	p->job = (int)(*njobs)++;
}

/* " sent=1464B icmp=frag-needed(3/4) mtu=1492 from 192.0.2.1 quoting 192.0.2.1:30053
 * retried pmtu=1492 syn_data=1420(acked)" */
static void describe_pmtu(const struct sim_pmtu *m, char *o, size_t size)
{
	size_t len;

	snprintf(o, size, " sent=%uB", m->sent_bytes);
	len = strlen(o);
	if (m->icmp_seen)
		snprintf(o + len, size - len, " icmp=%s(%u/%u) mtu=%u from %s quoting %s:%u",
			 m->icmp_type == 3 && m->icmp_code == 4 ? "frag-needed" : "error",
			 m->icmp_type, m->icmp_code, m->icmp_mtu, m->icmp_from, m->quoted_dst,
			 m->quoted_port);
	len = strlen(o);
	snprintf(o + len, size - len, "%s pmtu=%u", m->retried ? " retried" : "", m->path_mtu);
	len = strlen(o);
	if (m->syn_data >= 0)
		snprintf(o + len, size - len, " syn_data=%d%s", m->syn_data,
			 m->syn_data_acked ? "(acked)" : "");
}

static void describe_observed(const struct sim_probe_job *j, struct sim_check *chk)
{
	char *o = chk->observed;
	size_t size = sizeof(chk->observed);

	chk->duration_ms = j->elapsed_ms;
	if (j->failure[0]) {
		snprintf(o, size, "error");
		reason_add(chk, "%s", j->failure);
		return;
	}
	if (j->allowed && j->allowed == j->attempts)
		snprintf(o, size, "allow backend=%.120s client=%s", j->backend, j->client_ip);
	else if (j->allowed)
		snprintf(o, size, "allow %d/%d backend=%.120s client=%s, deny %s (%s)", j->allowed,
			 j->attempts, j->backend, j->client_ip, j->error, j->stage);
	else
		snprintf(o, size, "deny %s (%s)", j->error, j->stage);
	if (j->count > 1 && j->allowed) {
		size_t len = strlen(o);

		snprintf(o + len, size - len, " backends=%d", j->distinct);
	}
	if (j->payload_bytes || j->tcp_fast_open)
		describe_pmtu(&j->pmtu, o + strlen(o), size - strlen(o));
}

static bool is_node_ip(const struct sim_cluster *c, const char *ip)
{
	char buf[IP4_STR_MAX];
	size_t i;

	for (i = 0; i < c->nhosts; i++)
		if (c->hosts[i].kind == SIM_NODE && !strcmp(ip4_format(c->hosts[i].ip, buf), ip))
			return true;
	return false;
}

/* Why a reply that is not an answer is not a deny either (SPEC section 5). */
static const char *not_a_deny(const char *error)
{
	if (!strcmp(error, "refused") || !strcmp(error, "reset"))
		return "the packet reached";
	if (!strcmp(error, "unreachable") || !strcmp(error, "prohibited"))
		return "an ICMP error came back on the way to";
	return "the attempt failed on its way to";
}

/* A service probe's drop: its destination is the frontend before DNAT (e.g.
 * SERVICE_BACKEND_NOT_FOUND) or one of the backends after it. */
static const struct sim_drop *match_service_drop(const struct sim_evidence *ev,
						 const struct pending *p,
						 const struct sim_probe_job *j, uint32_t saddr)
{
	const struct sim_service_target *t = &p->svc;
	struct sim_flow_dst *dsts = calloc(t->nbackends + 1, sizeof(*dsts));
	const struct sim_drop *d;
	size_t i;

	if (!dsts)
		return NULL;
	dsts[0] = (struct sim_flow_dst){ t->frontend, t->frontend_port };
	for (i = 0; i < t->nbackends; i++)
		dsts[i + 1] = (struct sim_flow_dst){ t->backends[i].ip, t->backends[i].port };
	d = sim_evidence_match_dsts(ev, j->proto, saddr, j->sports, j->nsports, dsts,
				    t->nbackends + 1);
	free(dsts);
	return d;
}

/* The drop event of the probe's own flow, into chk. */
static bool find_evidence(const struct sim_evidence *ev, const struct pending *p,
			  const struct sim_probe_job *j, struct sim_check *chk)
{
	const struct sim_drop *d;
	uint32_t saddr, daddr;
	size_t len;

	if (ip4_parse(p->src_ip, &saddr) || ip4_parse(j->to, &daddr))
		return false;
	if (p->svc.svc)
		d = match_service_drop(ev, p, j, saddr);
	else
		d = sim_evidence_match(ev, j->proto, saddr, j->sports, j->nsports, daddr, j->port);
	if (!d)
		return false;
	chk->evidence = *d;
	chk->has_evidence = true;
	snprintf(chk->drop_reason, sizeof(chk->drop_reason), "%s", d->reason);
	len = strlen(chk->observed);
	if (d->line)
		snprintf(chk->observed + len, sizeof(chk->observed) - len,
			 " drop=%s on %s %s %s:%d", d->reason, d->node, d->hook, d->file, d->line);
	else
		snprintf(chk->observed + len, sizeof(chk->observed) - len,
			 " drop=%s on %s %s (policy verdict)", d->reason, d->node, d->hook);
	return true;
}

/* Every answer of a service probe came from a backend of the service port. */
static void check_service_answers(const struct pending *p, const struct sim_probe_job *j,
				  struct sim_check *chk)
{
	char list[512];
	int i;

	for (i = 0; i < j->nanswers; i++) {
		if (sim_service_backend(&p->svc, j->answers[i].name))
			continue;
		sim_service_backends_list(&p->svc, list, sizeof(list));
		reason_add(chk, "expected answers from backends of %s (%s), %d answered by %s",
			   p->svc.label, list, j->answers[i].n, j->answers[i].name);
	}
}

/* The allow holds only when the intended target answered. */
static void check_allow(const struct pending *p, const struct sim_probe_job *j,
			struct sim_check *chk)
{
	const struct sim_host *h = p->target;
	char want[KUBELET_ID_MAX + 8];

	if (!j->allowed || j->allowed != j->attempts) {
		reason_add(chk, "expected allow, observed %s", chk->observed);
		return;
	}
	if (p->svc.svc) {
		check_service_answers(p, j, chk);
		return;
	}
	/* an ICMP echo reply names nobody: the probe's raw socket is connected to the target's
	 * address, so only the target's own replies reach it */
	if (!h || j->proto == IPPROTO_ICMP)
		return;
	if (h->kind == SIM_NODE) { /* the node's own server or a hostNetwork pod of it */
		if (strcmp(j->backend_node, h->name))
			reason_add(chk, "expected an answer from node/%s, answered by %s on %s",
				   h->name, j->backend, j->backend_node[0] ? j->backend_node :
				   "no node");
		return;
	}
	snprintf(want, sizeof(want), "%s%s", h->kind == SIM_EXT ? "ext/" : "", h->name);
	if (strcmp(j->backend, want))
		reason_add(chk, "expected an answer from %s, answered by %s", want, j->backend);
}

/* The node a host runs on (itself for nodes); NULL for external hosts. */
static const struct sim_host *node_of_host(const struct sim_cluster *c, const struct sim_host *h)
{
	if (!h || h->kind == SIM_EXT)
		return NULL;
	return h->kind == SIM_NODE ? h : sim_find_host(c, SIM_NODE, h->node);
}

/* A probe between two different hosts, one of them on (or being) a node a link-down fault of
 * this run unplugged: the fault explains the silence, no drop event is expected. */
static bool unplugged(const struct sim_cluster *c, const struct pending *p, struct sim_check *chk)
{
	const struct sim_host *a = node_of_host(c, p->source), *b = node_of_host(c, p->target);
	const struct sim_host *down = a && a->link_down ? a : b && b->link_down ? b : NULL;
	size_t len;

	if (!down || a == b)
		return false;
	snprintf(chk->fault_evidence, sizeof(chk->fault_evidence), "link-down %.64s", down->name);
	len = strlen(chk->observed);
	snprintf(chk->observed + len, sizeof(chk->observed) - len,
		 " (node %s is unplugged: link-down fault)", down->name);
	return true;
}

/* Every server a deny of this check is about answered its preflight. */
static bool preflights_answered(const struct pending *p, const struct sim_probe_job *j,
				const struct sim_probe_job *pre, struct sim_check *chk)
{
	size_t i;

	for (i = 0; i < p->npre; i++) {
		const struct sim_probe_job *q = &pre[p->pre[i]];

		if (!q->failure[0] && q->allowed)
			continue;
		if (p->svc.svc)
			reason_add(chk, "the backend at %s of %s does not answer on %u/%s from inside its "
				   "own namespace (%s): a deny cannot be proven", q->to,
				   p->svc.label, q->port, proto_str(q->proto),
				   q->failure[0] ? q->failure : q->error);
		else
			reason_add(chk, "%s's server does not answer on %u/%s from inside its own "
				   "namespace (%s): a deny cannot be proven", chk->to, j->port,
				   proto_str(j->proto), q->failure[0] ? q->failure : q->error);
		return false;
	}
	return true;
}

static void check_deny(const struct sim_cluster *c, const struct pending *p,
		       const struct sim_probe_job *j, const struct sim_probe_job *pre,
		       const struct sim_evidence *ev, struct sim_check *chk)
{
	chk->deny_expected = true;
	if (!c->datapath) {
		reason_add(chk, "no datapath attached: a deny cannot be enforced (observed %s)",
			   chk->observed);
		return;
	}
	if (j->allowed) {
		reason_add(chk, "expected deny, observed %s", chk->observed);
		return;
	}
	if (!preflights_answered(p, j, pre, chk))
		return;
	if (strcmp(j->error, "timeout")) {
		reason_add(chk, "%s: %s %s, not a datapath drop", j->error, not_a_deny(j->error),
			   chk->to);
		return;
	}
	if (find_evidence(ev, p, j, chk) || unplugged(c, p, chk))
		return;
	reason_add(chk, "no reply, but no drop event of this flow (%s:%u > %s:%u) on any node%s",
		   p->src_ip, j->nsports ? j->sports[0] : 0, j->to, j->port,
		   ev->error[0] ? ": agents could not be asked" : "");
	if (ev->error[0])
		reason_add(chk, "%s", ev->error);
	if (ev->lost_total)
		reason_add(chk, "%llu events were lost during the step",
			   (unsigned long long)ev->lost_total);
	if (ev->overwritten)
		reason_add(chk, "%llu flows were overwritten in the agents' buffers before the "
			   "runner read them", (unsigned long long)ev->overwritten);
}

/* backendIn names only backends of the service port (else the assertion cannot hold). */
static void check_backend_in_names(const struct pending *p, struct sim_check *chk)
{
	const struct m_probe *pr = p->probe;
	char list[512];
	size_t i;

	for (i = 0; i < pr->nbackend_in; i++) {
		if (sim_service_backend(&p->svc, pr->backend_in[i]))
			continue;
		sim_service_backends_list(&p->svc, list, sizeof(list));
		reason_add(chk, "backendIn: %s is not a backend of %s port %u/%s (backends: %s)",
			   pr->backend_in[i], p->svc.label, p->svc.port->port,
			   proto_str(p->svc.port->proto), list);
	}
}

/* Appends "x/b1:21 x/b2:19" to buf. */
static void describe_distribution(const struct sim_probe_job *j, char *buf, size_t size)
{
	size_t len;
	int i;

	buf[0] = '\0';
	for (i = 0; i < j->nanswers; i++) {
		len = strlen(buf);
		snprintf(buf + len, size - len, "%s%s:%d", i ? " " : "", j->answers[i].name,
			 j->answers[i].n);
	}
}

static int answers_of(const struct sim_probe_job *j, const char *name)
{
	int i;

	for (i = 0; i < j->nanswers; i++)
		if (!strcmp(j->answers[i].name, name))
			return j->answers[i].n;
	return 0;
}

/* spread: every attempt answered, every ready backend at least once, each one's share within
 * (1 +- tolerance) / (ready backends). */
static void check_spread(const struct pending *p, const struct sim_probe_job *j,
			 struct sim_check *chk)
{
	const struct sim_spread *sp = &p->spread;
	size_t k = sim_service_ready_backends(&p->svc), i;
	char dist[512];
	size_t len = strlen(chk->observed);
	double even, share;

	describe_distribution(j, dist, sizeof(dist));
	snprintf(chk->observed + len, sizeof(chk->observed) - len, " spread=%s", dist);
	if (!p->svc.svc) {
		reason_add(chk, "spread: needs a service target (svc/NS/NAME or a NodePort)");
		return;
	}
	if (!k) {
		reason_add(chk, "spread: %s has no ready backend", p->svc.label);
		return;
	}
	if (j->allowed != sp->count) {
		reason_add(chk, "spread: %d of %d attempts answered", j->allowed, sp->count);
		return;
	}
	even = 1.0 / (double)k;
	for (i = 0; i < p->svc.nbackends; i++) {
		const struct sim_backend *b = &p->svc.backends[i];
		int n = answers_of(j, b->name);

		if (!b->ready)
			continue;
		share = (double)n / (double)sp->count;
		if (!n || share < even * (1 - sp->tolerance) || share > even * (1 + sp->tolerance))
			reason_add(chk, "spread: %s answered %d of %d (%.0f%%; an even split is "
				   "%.0f%% +- %.0f%%): %s", b->name, n, sp->count, share * 100,
				   even * 100, even * sp->tolerance * 100, dist);
	}
}

/* replyBypasses node/N: answered, and no reply packet of the probe's flows (to the source's
 * address and the attempts' source ports, from the target or frontend or a backend, plain
 * or inside VXLAN) was captured on N's fabric link. */
static void check_reply_bypasses(const struct pending *p, const struct sim_probe_job *j,
				 struct sim_check *chk)
{
	struct sim_reply_watch *w = p->watch;
	const char *node = p->probe->reply_bypasses + 5;
	uint32_t *srcs = NULL;
	struct sim_reply_flow f = { .proto = j->proto, .ports = j->sports, .nports = j->nsports };
	size_t i, len;

	if (j->proto != IPPROTO_TCP && j->proto != IPPROTO_UDP) {
		reason_add(chk, "replyBypasses: needs a TCP or UDP probe");
		return;
	}
	if (!w || w->error[0]) {
		reason_add(chk, "replyBypasses: no capture on %s's fabric link: %s", node,
			   w ? w->error : "out of memory");
		return;
	}
	if (!j->allowed) {
		reason_add(chk, "replyBypasses: no answer");
		return;
	}
	if (!j->nsports || ip4_parse(p->src_ip, &f.client)) {
		reason_add(chk, "replyBypasses: the probe reported no source port");
		return;
	}
	srcs = calloc(p->svc.nbackends + 1, sizeof(*srcs));
	if (!srcs || ip4_parse(j->to, &srcs[0])) {
		free(srcs);
		reason_add(chk, "replyBypasses: out of memory");
		return;
	}
	for (i = 0; i < p->svc.nbackends; i++)
		srcs[i + 1] = p->svc.backends[i].ip;
	f.srcs = srcs;
	f.nsrcs = p->svc.nbackends + 1;
	if (sim_reply_watch_count(w, &f))
		reason_add(chk, "replyBypasses: %s", w->error);
	else if (w->seen)
		reason_add(chk, "replyBypasses node/%s: %ld reply packet(s) of this probe crossed "
			   "%s's fabric link (%s), e.g. %s", node, w->seen, node, w->iface,
			   w->example);
	len = strlen(chk->observed);
	if (!w->error[0])
		snprintf(chk->observed + len, sizeof(chk->observed) - len,
			 " replies on %s=%ld/%ld", w->iface, w->seen, w->total);
	free(srcs);
}

/* The nodes whose fabric links an encryptedOn probe's traffic may cross: its source's and
 * its target's node; every node for a service (the backend is picked on the way), an
 * external host at either end, or anything else not on a known node. */
static bool fabric_node_wanted(const struct sim_cluster *c, const struct pending *p,
			       const struct sim_host *node)
{
	const struct sim_host *a = node_of_host(c, p->source), *b = node_of_host(c, p->target);

	if (p->svc.svc || !a || !b)
		return true;
	return node == a || node == b;
}

/* What is this probe's plaintext: each attempt's request head (the probe names its source
 * address, port and protocol in it), and IPv4 headers between its source and its target
 * (the frontend) or any backend. */
static int plain_flow(const struct pending *p, const struct sim_probe_job *j,
		      struct sim_plain_flow *f, uint32_t **dsts)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	*dsts = calloc(p->svc.nbackends + 1, sizeof(**dsts));
	if (!*dsts || ip4_parse(p->src_ip, &f->src) || ip4_parse(j->to, &(*dsts)[0]))
		return -EINVAL;
	for (i = 0; i < p->svc.nbackends; i++)
		(*dsts)[i + 1] = p->svc.backends[i].ip;
	f->proto = j->proto;
	f->dsts = *dsts;
	f->ndsts = p->svc.nbackends + 1;
	for (i = 0; j->proto != IPPROTO_ICMP && i < j->nsports && i < SIM_PLAIN_TOKENS_MAX; i++)
		snprintf(f->tokens[f->ntokens++], SIM_PLAIN_TOKEN_MAX,
			 "ciliate-probe from=%s:%u/%s seq=", p->src_ip, j->sports[i],
			 proto_str(j->proto));
	return 0;
}

/*
 * encryptedOn: fabric. The probe was answered and none of the packets captured on the
 * fabric links of its nodes during the step carries its plaintext (plain_flow). A capture
 * that shows a leak is kept (moved out of the run directory) and named.
 */
static void check_encrypted_on(const struct sim_cluster *c, struct pending *p,
			       const struct sim_probe_job *j)
{
	struct fabric_watches *fw = p->fabric;
	struct sim_check *chk = &p->chk;
	struct sim_plain_flow f;
	struct sim_plain_hit h;
	char nodes[256] = "", name[192];
	uint32_t *dsts = NULL;
	long total = 0, leaks = 0;
	size_t i, len;
	int err;

	if (!j->allowed) {
		reason_add(chk, "encryptedOn: no answer");
		return;
	}
	if (!fw || plain_flow(p, j, &f, &dsts)) {
		free(dsts);
		reason_add(chk, "encryptedOn: %s", fw ? "no source or destination address" :
			   "no capture of the fabric (out of memory)");
		return;
	}
	for (i = 0; i < fw->n; i++) {
		struct sim_reply_watch *w = &fw->w[i];

		if (!fw->want[i] || !fabric_node_wanted(c, p, &c->hosts[i]))
			continue;
		len = strlen(nodes);
		snprintf(nodes + len, sizeof(nodes) - len, "%s%s", len ? "/" : "", w->node);
		if (w->error[0] || sim_fabric_watch_scan(w, &f, &h)) {
			reason_add(chk, "encryptedOn: no capture of %s's fabric link: %s", w->node,
				   w->error);
			continue;
		}
		total += h.total;
		if (!h.packets)
			continue;
		leaks += h.packets;
		snprintf(name, sizeof(name), "%s-%d-step%u-%s.pcap", c->tag, (int)getpid(),
			 fw->step, w->node);
		err = sim_fabric_watch_keep(w, name);
		if (leaks > h.packets) { /* another node's was described already */
			reason_add(chk, "also %ld packet(s) in plaintext on %s's fabric link (%s), "
				   "the first packet %ld: capture %s", h.packets, w->node, w->iface,
				   h.first, w->file);
			continue;
		}
		reason_add(chk, "encryptedOn fabric: packet %ld on %s's fabric link (%s) carries %s",
			   h.first, w->node, w->iface, h.what);
		len = strlen(chk->reason);
		if (h.payload_packets && h.payload_first != h.first)
			snprintf(chk->reason + len, sizeof(chk->reason) - len, ", packet %ld %s",
				 h.payload_first, h.payload_what);
		len = strlen(chk->reason);
		snprintf(chk->reason + len, sizeof(chk->reason) - len,
			 " (%ld packet(s) in plaintext): capture %s%s%s%s", h.packets, w->file,
			 err ? " (could not keep it: " : "", err ? strerror(-err) : "",
			 err ? "; removed with the run directory)" : "");
	}
	free(dsts);
	len = strlen(chk->observed);
	snprintf(chk->observed + len, sizeof(chk->observed) - len,
		 " fabric: %ld packet(s) on %s during the step, %ld of this probe's in plaintext",
		 total, nodes[0] ? nodes : "no node", leaks);
	if (leaks && p->model && p->model->cluster.encryption == ENCRYPTION_NONE)
		reason_add(chk, "the cluster has encryption: none");
}

/* The MTU of a node's fabric device (eth0 in its namespace); 0 when it cannot be read. */
static unsigned int node_fabric_mtu(const struct sim_cluster *c, const char *node)
{
	const struct sim_host *h = sim_find_host(c, SIM_NODE, node);
	struct ifreq ifr;
	unsigned int mtu = 0;
	struct diag d;
	int pfd[2], fd, status;
	pid_t pid;

	if (!h || pipe2(pfd, O_CLOEXEC))
		return 0;
	pid = fork();
	if (pid == 0) { /* the child enters the node's namespace; the runner stays put */
		close(pfd[0]);
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
		fd = netns_enter(h->netns, &d) ? -1 : socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && !ioctl(fd, SIOCGIFMTU, &ifr) && ifr.ifr_mtu > 0)
			mtu = (unsigned int)ifr.ifr_mtu;
		_exit(write(pfd[1], &mtu, sizeof(mtu)) == sizeof(mtu) ? 0 : 1);
	}
	close(pfd[1]);
	if (pid > 0) {
		if (read(pfd[0], &mtu, sizeof(mtu)) != sizeof(mtu))
			mtu = 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	close(pfd[0]);
	return mtu;
}

/* The datapath's FRAG_NEEDED drop event of the probe's own flow: its source and source
 * port, to the frontend (the entry node reports the request as the client sent it) or, to
 * be lenient about where it is reported, a backend. */
static const struct sim_drop *frag_needed_drop(const struct sim_evidence *ev,
					       const struct pending *p,
					       const struct sim_probe_job *j)
{
	uint32_t saddr, daddr;
	size_t i, k, b;

	if (!ev || ip4_parse(p->src_ip, &saddr) || ip4_parse(j->to, &daddr))
		return NULL;
	for (i = 0; i < ev->ndrops; i++) {
		const struct sim_drop *d = &ev->drops[i];
		bool dst = d->daddr == daddr && d->dport == j->port;

		if (strcmp(d->reason, "FRAG_NEEDED") || d->proto != j->proto || d->saddr != saddr)
			continue;
		for (b = 0; !dst && b < p->svc.nbackends; b++)
			dst = d->daddr == p->svc.backends[b].ip && d->dport == p->svc.backends[b].port;
		for (k = 0; dst && k < j->nsports; k++)
			if (d->sport == j->sports[k])
				return d;
	}
	return NULL;
}

/*
 * pmtu: frag-needed. The request was too big for the DSR dispatch: the client got ICMP
 * fragmentation needed quoting the frontend with the entry node's fabric MTU less the
 * dispatch's overhead (UDP: read from the socket's error queue; TCP: the kernel takes it,
 * so the path MTU it left is the evidence), the datapath reported the FRAG_NEEDED drop of
 * this flow, and the exchange then worked.
 */
static void check_pmtu(const struct sim_cluster *c, struct pending *p,
		       const struct sim_probe_job *j, const struct sim_evidence *ev)
{
	const struct sim_pmtu *m = &j->pmtu;
	struct sim_check *chk = &p->chk;
	const struct sim_drop *d = frag_needed_drop(ev, p, j);
	unsigned int fabric = 0, want = 0;
	size_t len;

	if (!c->datapath) {
		reason_add(chk, "pmtu: needs the datapath (--no-datapath)");
		return;
	}
	if (d) {
		chk->evidence = *d;
		chk->has_evidence = true;
		snprintf(chk->drop_reason, sizeof(chk->drop_reason), "%s", d->reason);
		len = strlen(chk->observed);
		snprintf(chk->observed + len, sizeof(chk->observed) - len,
			 " drop=%s on %s %s %s:%d", d->reason, d->node, d->hook, d->file, d->line);
		fabric = node_fabric_mtu(c, d->node);
		want = fabric > p->dsr_overhead ? fabric - p->dsr_overhead : 0;
		if (!fabric)
			reason_add(chk, "pmtu: cannot read %s's fabric MTU", d->node);
	} else {
		reason_add(chk, "pmtu frag-needed: no FRAG_NEEDED drop event of this flow "
			   "(%s:%u > %s:%u) on any node", p->src_ip, j->nsports ? j->sports[0] : 0,
			   j->to, j->port);
	}
	if (j->proto == IPPROTO_UDP) {
		if (!m->icmp_seen || m->icmp_type != 3 || m->icmp_code != 4) {
			reason_add(chk, "pmtu frag-needed: no ICMP fragmentation needed reached the "
				   "client%s", m->icmp_seen ? " (another ICMP error)" : "");
		} else {
			if (strcmp(m->quoted_dst, j->to) || m->quoted_port != j->port)
				reason_add(chk, "pmtu frag-needed: the ICMP quotes %s:%u, not the "
					   "frontend %s:%u", m->quoted_dst, m->quoted_port, j->to,
					   j->port);
			if (want && m->icmp_mtu != want)
				reason_add(chk, "pmtu frag-needed: the ICMP says MTU %u, expected %u "
					   "(%s's fabric MTU %u less the %u bytes DSR adds)",
					   m->icmp_mtu, want, d->node, fabric, p->dsr_overhead);
			if (!m->retried)
				reason_add(chk, "pmtu frag-needed: the client did not send again, "
					   "fitting the reported MTU");
		}
	} else if (want && m->path_mtu != want) {
		reason_add(chk, "pmtu frag-needed: the client's path MTU is %u, expected %u after "
			   "an ICMP fragmentation needed", m->path_mtu, want);
	}
	if (!j->allowed)
		reason_add(chk, "pmtu frag-needed: no working exchange after the ICMP");
}

/* ---- clientIPSeen with egress gateway policies (docs/EGRESS.md, Simulator) ------------ */

/* The pod behind a probe's source (NULL: not a pod, or a hostNetwork one). */
static const struct m_pod *source_pod(const struct pending *p)
{
	if (!p->source || p->source->kind != SIM_POD || p->source->host_network || !p->model)
		return NULL;
	return cluster_find_pod(p->model, p->source->name);
}

/* The destination address a probe went to (network order); false for none. */
static bool probe_daddr(const struct sim_probe_job *j, uint32_t *daddr)
{
	return !ip4_parse(j->to, daddr);
}

/*
 * The egress IP the model promises for pod -> daddr, as the gateway node would SNAT to: the
 * policy's egressIP; else the first IPv4 address of its `interface` on the gateway node —
 * in the simulator a node's devices are eth0 (its fabric address first, the entry's
 * `addresses` after it), vxlan0 and the pod veths (no IPv4 address) and lo; else of the
 * default-route device, which simulated nodes do not have (they route only the cluster's
 * ranges), so the datapath drops with NO_EGRESS_IP. Returns 0 with *why set when there is
 * none.
 */
static uint32_t expected_egress_ip(const struct sim_cluster *c, const struct egress_route *r,
				   char *why, size_t size)
{
	const struct sim_host *gw = sim_find_host(c, SIM_NODE, r->gateway->name);

	if (r->egress_ip)
		return r->egress_ip;
	if (r->iface && !strcmp(r->iface, "eth0") && gw)
		return gw->ip;
	if (r->iface && !strcmp(r->iface, "lo"))
		return htonl(0x7f000001);
	if (r->iface && r->iface[0])
		snprintf(why, size, "policy %s names interface %s, which has no IPv4 address on "
			 "the simulated node %s (its fabric device is eth0): the gateway drops "
			 "with NO_EGRESS_IP", r->policy->name, r->iface, r->gateway->name);
	else
		snprintf(why, size, "policy %s gives neither egressIP nor interface and the "
			 "simulated node %s has no default route: the gateway drops with "
			 "NO_EGRESS_IP", r->policy->name, r->gateway->name);
	return 0;
}

/* What an egress gateway policy does with this probe, in words (for failure messages). */
static void describe_route(const struct egress_route *r, const char *src, const char *dst,
			   char *buf, size_t size)
{
	switch (r->verdict) {
	case EGRESS_NONE:
		snprintf(buf, size, "no egress gateway policy selects %s for %s", src, dst);
		break;
	case EGRESS_EXCLUDED:
		snprintf(buf, size, "%s is in an excludedCIDR of policy %s for %s", dst,
			 r->policy ? r->policy->name : "?", src);
		break;
	case EGRESS_NO_GATEWAY:
		snprintf(buf, size, "policy %s selects %s for %s but no node matches its gateway "
			 "nodeSelector (NO_EGRESS_GATEWAY)", r->policy ? r->policy->name : "?",
			 src, dst);
		break;
	case EGRESS_VIA_GATEWAY:
		snprintf(buf, size, "policy %s sends %s to %s through gateway %s",
			 r->policy ? r->policy->name : "?", src, dst,
			 r->gateway ? r->gateway->name : "?");
		break;
	}
}

/* clientIPSeen: egress-ip — the address the server saw is the egress IP of the policy that
 * selects the probing pod for this destination (egress_route_of: the datapath's longest
 * prefix over every policy's destination and excluded CIDRs). */
static void check_egress_ip(const struct sim_cluster *c, const struct pending *p,
			    const struct sim_probe_job *j, struct sim_check *chk)
{
	const struct m_pod *pod = source_pod(p);
	struct egress_route r;
	char why[1024] = "", want[IP4_STR_MAX], what[1024];
	uint32_t daddr, ip;

	if (!pod) {
		reason_add(chk, "clientIPSeen egress-ip: %s is not a pod of the cluster "
			   "(egress gateway policies select pods)", p->chk.from);
		return;
	}
	if (!probe_daddr(j, &daddr)) {
		reason_add(chk, "clientIPSeen egress-ip: no destination address");
		return;
	}
	memset(&r, 0, sizeof(r));
	if (egress_route_of(p->model, pod, daddr, &r)) {
		reason_add(chk, "clientIPSeen egress-ip: the model gives no route for %s -> %s",
			   p->chk.from, j->to);
		return;
	}
	describe_route(&r, p->chk.from, j->to, what, sizeof(what));
	if (r.verdict != EGRESS_VIA_GATEWAY) {
		reason_add(chk, "clientIPSeen egress-ip: %s%s%s", what, j->allowed ?
			   ", server saw " : "", j->allowed ? j->client_ip : "");
		return;
	}
	ip = expected_egress_ip(c, &r, why, sizeof(why));
	if (!ip) {
		reason_add(chk, "clientIPSeen egress-ip: %s", why);
		return;
	}
	ip4_format(ip, want);
	if (j->allowed && !strcmp(j->client_ip, want)) {
		size_t len = strlen(chk->observed);

		snprintf(chk->observed + len, sizeof(chk->observed) - len, " (egress IP of %s via %s)",
			 r.policy->name, r.gateway->name);
	}
	if (!j->allowed)
		reason_add(chk, "clientIPSeen egress-ip: no answer (want egress IP %s of policy "
			   "%s, gateway %s)", want, r.policy->name, r.gateway->name);
	else if (strcmp(j->client_ip, want))
		reason_add(chk, "clientIPSeen egress-ip: client seen %s, want egress IP %s of "
			   "policy %s (gateway %s)", j->client_ip, want, r.policy->name,
			   r.gateway->name);
}

/* clientIPSeen: node, where egress gateway policies exist: a pod's connection to an external
 * host must leave by its own node (ordinary masquerading), not by a gateway. Returns false
 * when this does not apply (the caller checks for any node's address). */
static bool check_pod_node_seen(const struct sim_cluster *c, const struct pending *p,
				const struct sim_probe_job *j, struct sim_check *chk)
{
	const struct m_pod *pod = source_pod(p);
	const struct sim_host *node;
	struct egress_route r;
	char want[IP4_STR_MAX], what[1024] = "";
	uint32_t daddr;

	if (!pod || !p->model->negress_policies || !p->target || p->target->kind != SIM_EXT)
		return false;
	node = sim_find_host(c, SIM_NODE, pod->node);
	if (!node || !probe_daddr(j, &daddr))
		return false;
	ip4_format(node->ip, want);
	if (!strcmp(j->client_ip, want))
		return true;
	memset(&r, 0, sizeof(r));
	if (!egress_route_of(p->model, pod, daddr, &r))
		describe_route(&r, p->chk.from, j->to, what, sizeof(what));
	reason_add(chk, "clientIPSeen node: server saw %s, want %s (%s's node %s)%s%s",
		   j->client_ip, want, p->chk.from, pod->node, what[0] ? ": " : "", what);
	return true;
}

static void check_assertions(const struct sim_cluster *c, struct pending *p,
			     const struct sim_probe_job *j, const struct sim_evidence *ev)
{
	const struct m_probe *pr = p->probe;
	struct sim_check *chk = &p->chk;
	size_t i;

	if (pr->nbackend_in && p->svc.svc)
		check_backend_in_names(p, chk);
	if (pr->nbackend_in) {
		for (i = 0; i < pr->nbackend_in; i++)
			if (!strcmp(pr->backend_in[i], j->backend))
				break;
		if (!j->allowed)
			reason_add(chk, "backendIn: no answer");
		else if (i == pr->nbackend_in)
			reason_add(chk, "backendIn: answered by %s", j->backend);
	}
	if (!strcmp(pr->client_ip_seen, "preserved") && j->allowed &&
	    strcmp(j->client_ip, p->src_ip))
		reason_add(chk, "clientIPSeen preserved: server saw %s, source is %s",
			   j->client_ip, p->src_ip);
	else if (!strcmp(pr->client_ip_seen, "node") && j->allowed &&
		 !check_pod_node_seen(c, p, j, chk) && !is_node_ip(c, j->client_ip))
		reason_add(chk, "clientIPSeen node: server saw %s, not a node address",
			   j->client_ip);
	else if (!strcmp(pr->client_ip_seen, "egress-ip"))
		check_egress_ip(c, p, j, chk);
	else if (pr->client_ip_seen[0] && !j->allowed)
		reason_add(chk, "clientIPSeen: no answer");
	if (pr->same_backend && (j->allowed != pr->same_backend || j->distinct != 1))
		reason_add(chk, "sameBackend %d: %d answers from %d backends", pr->same_backend,
			   j->allowed, j->distinct);
	if (pr->spread && p->spread.count)
		check_spread(p, j, chk);
	if (pr->reply_bypasses[0])
		check_reply_bypasses(p, j, chk);
	if (pr->tcp_fast_open && j->pmtu.syn_data <= 0)
		reason_add(chk, "tcpFastOpen: the SYN carried no data (%d bytes)", j->pmtu.syn_data);
	if (pr->pmtu[0])
		check_pmtu(c, p, j, ev);
	if (pr->encrypted_on[0] && !pr->expect_allow)
		reason_add(chk, "encryptedOn: needs expect: allow");
	else if (pr->encrypted_on[0])
		check_encrypted_on(c, p, j);
	if (pr->drop_reason[0] && !c->datapath)
		reason_add(chk, "dropReason: needs the datapath (--no-datapath)");
	else if (pr->drop_reason[0] && strcmp(pr->drop_reason, chk->drop_reason))
		reason_add(chk, "dropReason: expected %s, observed %s", pr->drop_reason,
			   chk->drop_reason[0] ? chk->drop_reason :
						 "no drop event of this flow");
}

static void describe_expected(struct pending *p, bool expect_allow)
{
	const struct m_probe *pr = p->probe;
	char *e = p->chk.expected;
	size_t size = sizeof(p->chk.expected), len, i;

	snprintf(e, size, "%s", expect_allow ? "allow" : "deny");
	if (!pr)
		return;
	for (i = 0; i < pr->nbackend_in; i++) {
		len = strlen(e);
		snprintf(e + len, size - len, "%s%s", i ? "," : " backendIn=", pr->backend_in[i]);
	}
	len = strlen(e);
	if (pr->client_ip_seen[0])
		snprintf(e + len, size - len, " clientIPSeen=%s", pr->client_ip_seen);
	len = strlen(e);
	if (pr->same_backend)
		snprintf(e + len, size - len, " sameBackend=%d", pr->same_backend);
	len = strlen(e);
	if (pr->spread)
		snprintf(e + len, size - len, " spread=%s", p->spread.count ? "" : "?");
	len = strlen(e);
	if (p->spread.count)
		snprintf(e + len, size - len, "%d/%g", p->spread.count, p->spread.tolerance);
	len = strlen(e);
	if (pr->drop_reason[0])
		snprintf(e + len, size - len, " dropReason=%s", pr->drop_reason);
	len = strlen(e);
	if (pr->reply_bypasses[0])
		snprintf(e + len, size - len, " replyBypasses=%s", pr->reply_bypasses);
	len = strlen(e);
	if (pr->payload_bytes)
		snprintf(e + len, size - len, " payloadBytes=%u", pr->payload_bytes);
	len = strlen(e);
	if (pr->tcp_fast_open)
		snprintf(e + len, size - len, " tcpFastOpen");
	len = strlen(e);
	if (pr->pmtu[0])
		snprintf(e + len, size - len, " pmtu=%s", pr->pmtu);
	len = strlen(e);
	if (pr->encrypted_on[0])
		snprintf(e + len, size - len, " encryptedOn=%s", pr->encrypted_on);
}

static void init_check(struct pending *p, const char *scenario, const struct m_test *t,
		       const struct m_step *st, const char *from, const char *to, uint16_t port,
		       uint8_t proto)
{
	memset(p, 0, sizeof(*p));
	p->chk.scenario = scenario;
	snprintf(p->chk.test, sizeof(p->chk.test), "%s", t->name);
	snprintf(p->chk.step, sizeof(p->chk.step), "%s", st->name);
	snprintf(p->chk.from, sizeof(p->chk.from), "%s", from);
	snprintf(p->chk.to, sizeof(p->chk.to), "%s", to);
	p->chk.port = port;
	p->chk.proto = proto;
	p->chk.pass = true;
	p->chk.matrix = -1;
}

static size_t step_size(const struct m_step *st)
{
	size_t n = st->nprobes, i;

	for (i = 0; i < st->nmatrices; i++)
		n += st->matrices[i].nrows * st->matrices[i].ncols;
	return n;
}

/* Builds the step's checks (probes first, then matrix cells row by row). */
/* How many attempts a probe makes: sameBackend N or spread's count (else one). */
static int probe_count(struct pending *p)
{
	const struct m_probe *pr = p->probe;
	char why[256];
	int count = pr->same_backend > 0 ? pr->same_backend : 1;

	if (pr->spread && sim_spread_parse(pr->spread, &p->spread, why, sizeof(why)))
		reason_add(&p->chk, "%s", why);
	if (p->spread.count > count)
		count = p->spread.count;
	return count > SIM_SAME_BACKEND_MAX ? SIM_SAME_BACKEND_MAX : count;
}

static size_t build_checks(const struct sim_cluster *c, const struct cluster_model *model,
			   const char *scenario, const struct m_test *t, const struct m_step *st,
			   struct pending *ps, struct sim_probe_job *jobs, size_t *njobs,
			   const char *step_reason)
{
	size_t n = 0, i, r, k;
	int count;

	for (i = 0; i < st->nprobes; i++) {
		const struct m_probe *pr = &st->probes[i];
		struct pending *p = &ps[n++];

		init_check(p, scenario, t, st, pr->from, pr->to, pr->port, pr->proto);
		p->probe = pr;
		p->model = model;
		snprintf(p->chk.kind, sizeof(p->chk.kind), "probe");
		snprintf(p->chk.name, sizeof(p->chk.name), "%s -> %s %u/%s", pr->from, pr->to,
			 pr->port, proto_str(pr->proto));
		count = probe_count(p);
		describe_expected(p, pr->expect_allow);
		if (step_reason)
			reason_add(&p->chk, "%s", step_reason);
		plan_check(c, model, p, jobs, njobs, count);
	}
	for (i = 0; i < st->nmatrices; i++) {
		const struct m_matrix *m = &st->matrices[i];

		for (r = 0; r < m->nrows; r++) {
			for (k = 0; k < m->ncols; k++) {
				struct pending *p;

				if (!strcmp(m->rows[r], m->cols[k]))
					continue; /* loopback cells are ignored */
				p = &ps[n++];
				init_check(p, scenario, t, st, m->rows[r], m->cols[k], m->port,
					   m->proto);
				p->model = model;
				snprintf(p->chk.kind, sizeof(p->chk.kind), "matrix");
				snprintf(p->chk.name, sizeof(p->chk.name),
					 "matrix[%zu] %s -> %s %u/%s", i, m->rows[r], m->cols[k],
					 m->port, proto_str(m->proto));
				p->chk.matrix = (int)i;
				p->chk.row = r;
				p->chk.col = k;
				p->chk.cell_expected = m->cells[r * m->ncols + k];
				p->chk.cell_observed = '?';
				describe_expected(p, p->chk.cell_expected == '.');
				if (step_reason)
					reason_add(&p->chk, "%s", step_reason);
				plan_check(c, model, p, jobs, njobs, 1);
			}
		}
	}
	return n;
}

static void evaluate(const struct sim_cluster *c, struct pending *p,
		     const struct sim_probe_job *jobs, const struct sim_probe_job *pre,
		     const struct sim_evidence *ev)
{
	const struct sim_probe_job *j;
	bool expect_allow;

	if (p->job < 0) {
		snprintf(p->chk.observed, sizeof(p->chk.observed), p->chk.skipped ? "skipped" :
			 "not run");
		p->chk.pass = p->chk.skipped;
		return;
	}
	j = &jobs[p->job];
	expect_allow = p->probe ? p->probe->expect_allow : p->chk.cell_expected == '.';
	describe_observed(j, &p->chk);
	if (!j->failure[0])
		p->chk.cell_observed = j->allowed ? '.' : 'X';
	if (expect_allow) {
		/* an unanswered allow shows the drop that stopped it, if any */
		if (!j->allowed && !j->failure[0])
			find_evidence(ev, p, j, &p->chk);
		check_allow(p, j, &p->chk);
	} else {
		check_deny(c, p, j, pre, ev, &p->chk);
	}
	if (p->probe && (p->probe->payload_bytes || p->probe->tcp_fast_open)) {
		p->chk.has_pmtu = true;
		p->chk.pmtu = j->pmtu;
	}
	if (p->probe)
		check_assertions(c, p, j, ev);
}

static void print_check(const struct sim_check *chk)
{
	bool why = !chk->pass || chk->skipped;

	printf("  %-4s  %s: expected %s, observed %s (%lld ms)%s%s\n",
	       chk->skipped ? "SKIP" : chk->pass ? "ok" : "FAIL", chk->name, chk->expected,
	       chk->observed, chk->duration_ms, why ? ": " : "", why ? chk->reason : "");
}

static void print_matrix_result(const struct m_step *st, size_t mi, const struct pending *ps,
				size_t n)
{
	const struct m_matrix *m = &st->matrices[mi];
	struct sim_check *cells;
	size_t i, nc = 0, held = 0, skipped = 0;
	const char *skip_reason = "";

	cells = calloc(n + 1, sizeof(*cells));
	if (!cells)
		return;
	for (i = 0; i < n; i++) {
		if (ps[i].chk.matrix != (int)mi)
			continue;
		cells[nc++] = ps[i].chk;
		held += ps[i].chk.pass && !ps[i].chk.skipped;
		if (ps[i].chk.skipped) {
			skipped++;
			skip_reason = ps[i].chk.reason;
		}
	}
	if (skipped == nc && nc) {
		printf("  SKIP  matrix[%zu] %u/%s: %zu cells: %s\n", mi, m->port,
		       proto_str(m->proto), nc, skip_reason);
		free(cells);
		return;
	}
	nc -= skipped;
	printf("  %-4s  matrix[%zu] %u/%s: %zu/%zu cells held\n", held == nc ? "ok" : "FAIL", mi,
	       m->port, proto_str(m->proto), held, nc);
	if (held != nc) {
		sim_print_matrix(m, cells, nc);
		for (i = 0; i < nc; i++)
			if (!cells[i].pass)
				printf("        %s -> %s: %s\n", cells[i].from, cells[i].to,
				       cells[i].reason);
	}
	free(cells);
}

static void step_check_init(struct sim_check *chk, const char *scenario, const struct m_test *t,
			    const struct m_step *st, const char *kind)
{
	memset(chk, 0, sizeof(*chk));
	chk->scenario = scenario;
	snprintf(chk->test, sizeof(chk->test), "%s", t->name);
	snprintf(chk->step, sizeof(chk->step), "%s", st->name);
	snprintf(chk->kind, sizeof(chk->kind), "%s", kind);
	chk->matrix = -1;
}

/* The step's state change: applied, or (expectRejected) refused with the expected words. */
static int apply_check(const char *scenario, const struct m_test *t, const struct m_step *st,
		       int err, const struct diag *d, long long ms, struct sim_report *r)
{
	const char *want = st->expect_rejected;
	struct sim_check ack;

	step_check_init(&ack, scenario, t, st, "apply");
	snprintf(ack.name, sizeof(ack.name), "apply %s", st->apply ? st->apply :
		 st->manifests_yaml ? "(inline manifests)" : "(delete)");
	if (want)
		snprintf(ack.expected, sizeof(ack.expected), "rejected%s%.200s%s",
			 want[0] ? " naming \"" : "", want, want[0] ? "\"" : "");
	else
		snprintf(ack.expected, sizeof(ack.expected), "applied and reconciled");
	snprintf(ack.observed, sizeof(ack.observed), "%s", err ? "rejected" : "applied");
	ack.duration_ms = ms;
	if (!want) {
		ack.pass = !err;
		if (err)
			snprintf(ack.reason, sizeof(ack.reason), "%s", d->msg);
	} else if (!err) {
		snprintf(ack.reason, sizeof(ack.reason), "expected a rejection, the change was "
			 "applied");
	} else if (!strstr(d->msg, want)) {
		snprintf(ack.reason, sizeof(ack.reason), "rejected, but the message does not name "
			 "\"%.200s\": %.400s", want, d->msg);
	} else {
		size_t len = strlen(d->msg);

		/* the end names FILE:LINE: FIELD: reason; the start is the command line */
		ack.pass = true;
		snprintf(ack.observed, sizeof(ack.observed), "rejected: %s%.200s",
			 len > 200 ? "..." : "", d->msg + (len > 200 ? len - 200 : 0));
	}
	sim_report_add(r, &ack);
	print_check(&ack);
	return !ack.pass;
}

static int fault_check(struct sim_cluster *c, const char *scenario, const struct m_test *t,
		       const struct m_step *st, const struct m_fault *f, struct sim_report *r)
{
	long long t0 = sim_now_ms();
	struct sim_check chk;
	struct diag d = { "" };
	int err;

	step_check_init(&chk, scenario, t, st, "fault");
	snprintf(chk.name, sizeof(chk.name), "%s %s", sim_fault_name(f), f->node);
	snprintf(chk.to, sizeof(chk.to), "node/%s", f->node);
	snprintf(chk.expected, sizeof(chk.expected), "done");
	err = sim_fault_do(c, f, &d);
	chk.duration_ms = sim_now_ms() - t0;
	chk.pass = !err;
	snprintf(chk.observed, sizeof(chk.observed), "%s", err ? "failed" : "done");
	if (err)
		snprintf(chk.reason, sizeof(chk.reason), "%s", d.msg);
	sim_report_add(r, &chk);
	print_check(&chk);
	return !chk.pass;
}

static void start_stream(const struct sim_cluster *c, const struct cluster_model *m,
			 const struct m_stream *ms, struct sim_stream *s)
{
	char netns[NETNS_NAME_MAX], src[IP4_STR_MAX], to[IP4_STR_MAX];
	char why[512];

	s->pid = -1;
	s->fd = -1;
	if (resolve(c, ms->from, netns, src, NULL, why, sizeof(why)) ||
	    resolve_address(c, m, ms->to, ms->port, to, why, sizeof(why))) {
		snprintf(s->out, sizeof(s->out), "%s", why);
		s->len = strlen(s->out);
		return;
	}
	if (sim_stream_start(netns, to, ms->port, s))
		s->pid = -1;
}

static int stream_check(const char *scenario, const struct m_test *t, const struct m_step *st,
			const struct m_stream *ms, struct sim_stream *s, struct sim_report *r)
{
	struct sim_check chk;

	step_check_init(&chk, scenario, t, st, "stream");
	snprintf(chk.name, sizeof(chk.name), "stream %s -> %s %u/TCP", ms->from, ms->to,
		 ms->port);
	snprintf(chk.from, sizeof(chk.from), "%s", ms->from);
	snprintf(chk.to, sizeof(chk.to), "%s", ms->to);
	chk.port = ms->port;
	chk.proto = IPPROTO_TCP;
	snprintf(chk.expected, sizeof(chk.expected), "every request answered on one connection");
	sim_stream_finish(s, &chk);
	sim_report_add(r, &chk);
	print_check(&chk);
	return !chk.pass;
}

/* The step's preflight jobs: one per distinct server (address, port, protocol), asked from
 * inside its own namespace. */
struct preflights {
	struct sim_probe_job *jobs;
	size_t n, cap;
};

/* The preflight of the server netns/to:port/proto (added once); its index or -ENOMEM. */
static int preflight_for(struct preflights *pf, const char *netns, const char *to,
			 uint16_t port, uint8_t proto)
{
	struct sim_probe_job *q;
	size_t k;

	for (k = 0; k < pf->n; k++)
		if (!strcmp(pf->jobs[k].to, to) && pf->jobs[k].port == port &&
		    pf->jobs[k].proto == proto)
			return (int)k;
	if (pf->n == pf->cap) {
		pf->cap = pf->cap ? pf->cap * 2 : 16;
		q = realloc(pf->jobs, pf->cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		pf->jobs = q;
	}
	q = &pf->jobs[pf->n];
	memset(q, 0, sizeof(*q));
	snprintf(q->netns, sizeof(q->netns), "%s", netns);
	snprintf(q->to, sizeof(q->to), "%s", to);
	q->port = port;
	q->proto = proto;
	q->count = 1;
	q->timeout_ms = SIM_PROBE_TIMEOUT_MS;
	return (int)pf->n++;
}

static int pending_add_preflight(struct pending *p, int idx)
{
	int *v;

	if (idx < 0)
		return idx;
	v = realloc(p->pre, (p->npre + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->pre = v;
	p->pre[p->npre++] = idx;
	return 0;
}

/* A service deny: every backend that is a pod of the simulation, on its backend port. */
static int plan_service_preflights(struct preflights *pf, struct pending *p, uint8_t proto)
{
	char ip[IP4_STR_MAX];
	size_t i;
	int err = 0;

	for (i = 0; i < p->svc.nbackends && !err; i++) {
		const struct sim_backend *b = &p->svc.backends[i];

		if (!b->host || !b->host->own_netns)
			continue;
		err = pending_add_preflight(p, preflight_for(pf, b->host->netns,
							     ip4_format(b->ip, ip), b->port, proto));
	}
	return err;
}

/* One preflight per server of the step's deny checks (the target's; for a service, each
 * backend's): asked from inside its own namespace (no datapath on that path), it must
 * answer, or no deny can be proven there. */
static int plan_preflights(struct pending *ps, size_t n, const struct sim_probe_job *jobs,
			   struct preflights *pf)
{
	size_t i;
	int err = 0;

	for (i = 0; i < n && !err; i++) {
		const struct sim_probe_job *j;
		bool deny = ps[i].probe ? !ps[i].probe->expect_allow :
					  ps[i].chk.cell_expected == 'X';

		if (ps[i].job < 0 || !deny)
			continue;
		j = &jobs[ps[i].job];
		if (ps[i].svc.svc)
			err = plan_service_preflights(pf, &ps[i], j->proto);
		else if (ps[i].target && ps[i].target->own_netns)
			err = pending_add_preflight(&ps[i], preflight_for(pf, ps[i].target->netns,
									  j->to, j->port, j->proto));
	}
	return err;
}

/* Egress gateway checks follow the store too: policies and v1 Node labels that steps apply or
 * delete move the gateway. */
static bool needs_egress_model(const struct scenario *s)
{
	size_t t, k, i;

	if (s->model.negress_policies || s->model.nnode_docs)
		return true;
	for (t = 0; t < s->ntests; t++)
		for (k = 0; k < s->tests[t].nsteps; k++)
			for (i = 0; i < s->tests[t].steps[k].nprobes; i++)
				if (!strcmp(s->tests[t].steps[k].probes[i].client_ip_seen,
					    "egress-ip"))
					return true;
	return false;
}

/* The model a step's service (and egress gateway) checks use: the store's objects after the step's changes (with
 * the datapath), else the scenario's. *owned is freed by the caller. */
static const struct cluster_model *step_model(const struct sim_cluster *c,
					      const struct scenario *s,
					      struct cluster_model **owned)
{
	struct diag d = { "" };

	*owned = NULL;
	if (!c->datapath || (!s->model.nservices && !needs_egress_model(s)))
		return &s->model;
	if (sim_store_model(c, owned, &d)) {
		fprintf(stderr, "ciliate-sim: the store's objects do not make a model (%s); "
			"checking services and egress gateways against the scenario's own\n",
			d.msg);
		cluster_model_free(*owned);
		*owned = NULL;
		return &s->model;
	}
	return *owned;
}

static void pendings_free(struct pending *ps, size_t n)
{
	size_t i;

	for (i = 0; ps && i < n; i++) {
		if (ps[i].watch)
			sim_reply_watch_free(ps[i].watch);
		free(ps[i].watch);
		free(ps[i].pre);
		sim_service_target_free(&ps[i].svc);
	}
}

/* replyBypasses probes: one capture each on the named node's fabric link, running before
 * the probes start (a capture that cannot start is the check's failure, reported then). */
static void start_reply_watches(const struct sim_cluster *c, struct pending *ps, size_t n)
{
	char dir[192], file[256];
	size_t i;

	sim_run_dir(c->tag, dir, sizeof(dir));
	for (i = 0; i < n && !sim_interrupted; i++) {
		const struct m_probe *pr = ps[i].probe;

		if (!pr || !pr->reply_bypasses[0] || ps[i].job < 0)
			continue;
		ps[i].watch = calloc(1, sizeof(*ps[i].watch));
		if (!ps[i].watch)
			continue;
		snprintf(file, sizeof(file), "%s/reply-%zu.pcap", dir, i);
		sim_reply_watch_start(c, pr->reply_bypasses + 5, ps[i].src_ip, file,
				      ps[i].watch);
	}
}

/* encryptedOn probes: one capture per node any of them needs, shared by them all, running
 * before the probes start (a capture that cannot start fails those checks, reported then). */
static void start_fabric_watches(const struct sim_cluster *c, struct pending *ps, size_t n,
				 struct fabric_watches *fw)
{
	static unsigned int steps;
	char dir[192], file[256];
	bool any = false;
	size_t i, k;

	memset(fw, 0, sizeof(*fw));
	for (i = 0; i < n; i++)
		any = any || (ps[i].probe && ps[i].probe->encrypted_on[0] && ps[i].job >= 0);
	if (!any)
		return;
	fw->w = calloc(c->nhosts, sizeof(*fw->w));
	fw->want = calloc(c->nhosts, sizeof(*fw->want));
	if (!fw->w || !fw->want) {
		free(fw->w);
		free(fw->want);
		memset(fw, 0, sizeof(*fw));
		return; /* the checks fail: no capture */
	}
	fw->n = c->nhosts;
	fw->step = ++steps;
	for (k = 0; k < fw->n; k++) { /* nothing to kill or close until started */
		fw->w[k].pid = -1;
		fw->w[k].err_fd = -1;
	}
	for (i = 0; i < n; i++) {
		if (!ps[i].probe || !ps[i].probe->encrypted_on[0] || ps[i].job < 0)
			continue;
		ps[i].fabric = fw;
		for (k = 0; k < c->nhosts; k++)
			if (c->hosts[k].kind == SIM_NODE && fabric_node_wanted(c, &ps[i], &c->hosts[k]))
				fw->want[k] = true;
	}
	sim_run_dir(c->tag, dir, sizeof(dir));
	for (k = 0; k < fw->n && !sim_interrupted; k++) {
		if (!fw->want[k])
			continue;
		snprintf(file, sizeof(file), "%.150s/fabric-%u-%.64s.pcap", dir, fw->step,
			 c->hosts[k].name);
		sim_fabric_watch_start(c, c->hosts[k].name, file, &fw->w[k]);
	}
}

static void free_fabric_watches(struct fabric_watches *fw)
{
	size_t k;

	for (k = 0; k < fw->n; k++)
		if (fw->want[k])
			sim_reply_watch_free(&fw->w[k]);
	free(fw->w);
	free(fw->want);
	memset(fw, 0, sizeof(*fw));
}

/* After the probes: a short grace for late replies, then every capture stops. */
static void stop_reply_watches(struct pending *ps, size_t n, struct fabric_watches *fw)
{
	bool any = false;
	size_t i;

	for (i = 0; i < n; i++)
		any = any || (ps[i].watch && ps[i].watch->pid > 0);
	for (i = 0; i < fw->n; i++)
		any = any || (fw->want[i] && fw->w[i].pid > 0);
	if (any)
		usleep(200 * 1000);
	for (i = 0; i < n; i++)
		if (ps[i].watch)
			sim_reply_watch_stop(ps[i].watch);
	for (i = 0; i < fw->n; i++)
		if (fw->want[i])
			sim_reply_watch_stop(&fw->w[i]);
}

static int run_step(struct sim_cluster *c, const struct scenario *s, const char *scenario,
		    const struct m_test *t, const struct m_step *st, struct sim_report *r)
{
	size_t cap = step_size(st) + 1, n = 0, njobs = 0, i;
	struct sim_probe_job *jobs;
	struct sim_stream *streams = NULL;
	struct preflights pf = { 0 };
	struct fabric_watches fw = { 0 };
	struct cluster_model *owned = NULL;
	const struct cluster_model *model;
	struct sim_evidence ev;
	struct pending *ps;
	struct diag d = { "" };
	long long t0 = sim_now_ms();
	bool changes = st->apply || st->manifests_yaml || st->ndeletes;
	int failed = 0, err;

	memset(&ev, 0, sizeof(ev));
	ps = calloc(cap, sizeof(*ps));
	jobs = calloc(cap, sizeof(*jobs));
	if (!ps || !jobs) {
		failed = -ENOMEM;
		goto out;
	}
	streams = calloc(st->nstreams + 1, sizeof(*streams));
	if (!streams) {
		failed = -ENOMEM;
		goto out;
	}
	/* streams first: they must live through the step's changes and faults (a svc/ stream
	 * goes to the ClusterIP of the scenario's own model) */
	for (i = 0; i < st->nstreams; i++)
		start_stream(c, &s->model, &st->streams[i], &streams[i]);
	err = sim_apply_step(c, st, &d);
	model = step_model(c, s, &owned);
	/* with a datapath a rejected change is its own failed check: the probes then show
	 * that the previous state stayed in force */
	n = build_checks(c, model, scenario, t, st, ps, jobs, &njobs,
			 err && !c->datapath ? d.msg : NULL);
	printf("--- %s / %s: %zu check(s)%s%s\n", t->name, st->name,
	       n + (changes && c->datapath) + st->nfaults + st->nstreams, err ? ": " : "",
	       err ? d.msg : "");
	if (changes && c->datapath)
		failed += apply_check(scenario, t, st, err, &d, sim_now_ms() - t0, r);
	for (i = 0; i < st->nfaults; i++)
		failed += fault_check(c, scenario, t, st, &st->faults[i], r);
	fflush(stdout);
	if (plan_preflights(ps, n, jobs, &pf)) {
		failed = -ENOMEM;
		goto out;
	}
	sim_probe_run(pf.jobs, pf.n, SIM_PROBE_PARALLEL);
	if (c->datapath && sim_evidence_begin(c, &ev)) {
		failed = -ENOMEM;
		goto out;
	}
	start_reply_watches(c, ps, n);
	start_fabric_watches(c, ps, n, &fw);
	sim_probe_run(jobs, njobs, SIM_PROBE_PARALLEL);
	stop_reply_watches(ps, n, &fw);
	if (c->datapath)
		sim_evidence_collect(c, &ev, sim_flow_log);
	for (i = 0; i < n; i++) {
		/* what the DSR dispatch adds to a request (REFERENCE.md 1.7): the IPv4 option 8,
		 * IPIP 20 (the datapath serves ipip and geneve frontends with SNAT so far) */
		ps[i].dsr_overhead = cluster_lb_config(&s->model)->dsr_dispatch ==
			DSR_DISPATCH_IPIP ? 20 : 8;
		evaluate(c, &ps[i], jobs, pf.jobs, &ev);
		failed += !ps[i].chk.pass;
		sim_report_add(r, &ps[i].chk);
		if (ps[i].chk.matrix < 0)
			print_check(&ps[i].chk);
	}
	for (i = 0; i < st->nmatrices; i++)
		print_matrix_result(st, i, ps, n);
	for (i = 0; i < st->nstreams; i++)
		failed += stream_check(scenario, t, st, &st->streams[i], &streams[i], r);
	fflush(stdout);
out:
	sim_evidence_free(&ev);
	free(streams);
	pendings_free(ps, n);
	free_fabric_watches(&fw);
	free(ps);
	sim_probe_jobs_free(jobs, njobs);
	free(jobs);
	sim_probe_jobs_free(pf.jobs, pf.n);
	free(pf.jobs);
	cluster_model_free(owned);
	return failed;
}

int sim_run_tests(struct sim_cluster *c, const struct scenario *s, struct sim_report *r)
{
	const char *scenario = sim_report_intern(r, s->path);
	int failed = 0, f;
	size_t t, k;

	for (t = 0; t < s->ntests && !sim_interrupted; t++) {
		const struct m_test *test = &s->tests[t];

		for (k = 0; k < test->nsteps && !sim_interrupted; k++) {
			f = run_step(c, s, scenario, test, &test->steps[k], r);
			if (f < 0)
				return f;
			failed += f;
		}
	}
	if (sim_interrupted)
		sim_report_error(r, s->path, "interrupted", "interrupted by a signal");
	return failed + !!sim_interrupted;
}
