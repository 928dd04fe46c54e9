/* SPDX-License-Identifier: Apache-2.0 */
#include "replay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include <linux/pkt_cls.h>
#include <pcap/pcap.h>
#include <pcap/dlt.h>

#include "ciliate/abi.h"
#include "common/names.h"
#include "decode/decode.h"
#include "loader/conntrack.h"
#include "loader/datapath.h"
#include "loader/maps.h"
#include "model/model.h"
#include "replay/xdp_fabric.h"

/* In BPF_PROG_TEST_RUN the skb's device is the loopback device: ifindex 1. The endpoint a
 * replay is "attached" to is bound to that ifindex in the private lxc map. */
#define REPLAY_IFINDEX 1
#define REPLAY_MAX_EVENTS 16
#define REPLAY_OUT_MAX 65536

struct replay_session {
	struct datapath *dp;
	struct node_state ns;
	/* the hook of each packet, in order: one hook serves every packet; a list (the hook
	 * argument "to-netdev,from-netdev") gives packet i the i-th hook, all on the same maps,
	 * so a connection's reply can cross another hook than its request */
	int hooks[REPLAY_MAX_HOOKS];
	int prog_fds[REPLAY_MAX_HOOKS];
	size_t nhooks;
	int hook;    /* the current packet's */
	int prog_fd; /* the current packet's */
	struct ring_buffer *rb;
	struct ciliate_event events[REPLAY_MAX_EVENTS];
	size_t nevents;
	/* the xdp hook: the node's fabric in a namespace of its own (xdp_fabric.h), entered
	 * around each run so that bpf_fib_lookup sees the node's neighbours and routes */
	int fab_ns;
	int orig_ns;
	uint32_t fab_ifindex;
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct replay_session *rs = ctx;

	if (size >= sizeof(struct ciliate_event) && rs->nevents < REPLAY_MAX_EVENTS)
		memcpy(&rs->events[rs->nevents++], data, sizeof(struct ciliate_event));
	return 0;
}

static bool hook_needs_endpoint(int hook)
{
	return hook == HOOK_FROM_CONTAINER || hook == HOOK_TO_CONTAINER;
}

int replay_hooks_parse(const char *spec, int *hooks, size_t max, size_t *n, char *bad,
		       size_t badlen)
{
	const char *p = spec, *end;
	char name[32];
	size_t len;

	*n = 0;
	do {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		snprintf(bad, badlen, "%.*s", (int)len, p);
		if (*n == max)
			return -E2BIG;
		if (len >= sizeof(name))
			return -EINVAL;
		memcpy(name, p, len);
		name[len] = '\0';
		hooks[*n] = hook_from_name(name);
		if (hooks[*n] < 0)
			return -EINVAL;
		(*n)++;
		p = end ? end + 1 : NULL;
	} while (p);
	return 0;
}

int replay_session_open(const struct cluster_model *m, const char *node, const char *hook,
			const char *endpoint, struct replay_session **out, struct diag *d)
{
	struct datapath_opts opts = { .node = NULL, .trace_all = true };
	struct replay_session *rs;
	bool pod_hook = false;
	char bad[64];
	size_t i;
	int err;

	*out = NULL;
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	rs->fab_ns = rs->orig_ns = -1;
	err = replay_hooks_parse(hook, rs->hooks, REPLAY_MAX_HOOKS, &rs->nhooks, bad, sizeof(bad));
	if (err == -E2BIG) {
		err = diag_fail(d, "hook list \"%s\": more than %d hooks", hook, REPLAY_MAX_HOOKS);
		goto out;
	}
	if (err) {
		err = diag_fail(d, "unknown hook \"%s\" (from-container, to-container, from-netdev, "
				"to-netdev, from-overlay, to-overlay, xdp; or a comma-separated list, "
				"one per packet)", bad);
		goto out;
	}
	rs->hook = rs->hooks[0];
	if (!cluster_find_node(m, node)) {
		err = diag_fail(d, "%s: no node \"%s\" in the scenario", m->name, node);
		goto out;
	}
	err = node_state_compute(m, node, &rs->ns, d);
	if (err)
		goto out;
	err = datapath_open(&opts, &rs->dp, d);
	if (err)
		goto out;
	for (i = 0; i < rs->nhooks; i++) {
		rs->prog_fds[i] = datapath_prog_fd(rs->dp, rs->hooks[i]);
		if (rs->prog_fds[i] < 0) {
			err = diag_fail_errno(d, -ENOTSUP, "hook %s is not implemented in this build",
					      hook_name((unsigned int)rs->hooks[i]));
			goto out;
		}
		pod_hook |= hook_needs_endpoint(rs->hooks[i]);
	}
	rs->prog_fd = rs->prog_fds[0];
	err = dp_apply_node_state(rs->dp, &rs->ns, d);
	if (err)
		goto out;
	for (i = 0; i < rs->nhooks; i++) {
		struct xdp_fabric f;

		if (rs->hooks[i] != HOOK_XDP)
			continue;
		err = xdp_fabric_of_node(m, node, &f, d);
		if (!err)
			err = xdp_fabric_open(&f, &rs->fab_ifindex, &rs->fab_ns, d);
		if (!err) {
			rs->orig_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
			if (rs->orig_ns < 0)
				err = diag_fail_errno(d, -errno, "%s", strerror(errno));
		}
		if (err) {
			diag_prefix(d, "hook xdp: the node's fabric");
			goto out;
		}
		/* the node's configuration names its fabric device as the agent's does */
		rs->ns.cfg.fabric_ifindex = rs->fab_ifindex;
		err = dp_node_config_set(rs->dp, &rs->ns.cfg, d);
		if (err)
			goto out;
		break;
	}

	if (pod_hook) {
		const struct node_endpoint *ep;

		if (!endpoint || !*endpoint) {
			err = diag_fail(d, "hook %s needs --endpoint ns/pod", hook);
			goto out;
		}
		ep = node_state_find_endpoint(&rs->ns, endpoint);
		if (!ep) {
			err = diag_fail(d, "endpoint \"%s\" is not a pod on node %s", endpoint, node);
			goto out;
		}
		err = dp_endpoint_bind_ifindex(rs->dp, REPLAY_IFINDEX, &ep->info, d);
		if (err)
			goto out;
	}

	rs->rb = ring_buffer__new(datapath_map_fd(rs->dp, MAP_EVENTS), on_event, rs, NULL);
	if (!rs->rb) {
		err = diag_fail_errno(d, -errno, "opening the event ring buffer: %s", strerror(errno));
		goto out;
	}
	*out = rs;
	return 0;
out:
	replay_session_close(rs);
	return err;
}

void replay_session_close(struct replay_session *rs)
{
	if (!rs)
		return;
	ring_buffer__free(rs->rb);
	if (rs->fab_ns >= 0)
		close(rs->fab_ns);
	if (rs->orig_ns >= 0)
		close(rs->orig_ns);
	datapath_close(rs->dp);
	node_state_free(&rs->ns);
	free(rs);
}

bool replay_verdict_matches(const char *expected, const char *observed)
{
	const char *e_reason, *o_reason;
	int e_code, o_code;

	if (!strcasecmp(expected, observed))
		return true;
	if (strncasecmp(expected, "drop", 4) || strncasecmp(observed, "drop:", 5))
		return false;
	if (!expected[4])
		return true; /* "drop" matches any drop */
	if (expected[4] != ':')
		return false;
	e_reason = expected + 5;
	o_reason = observed + 5;
	e_code = reason_from_name(e_reason);
	o_code = reason_from_name(o_reason);
	return e_code >= 0 && e_code == o_code;
}

/* Name of the local endpoint owning a redirect target ifindex, or NULL. */
static const char *target_name(const struct replay_session *rs, uint32_t ifindex, char *buf,
			       size_t len)
{
	for (size_t i = 0; i < rs->ns.neps; i++) {
		const struct m_pod *pod = rs->ns.eps[i].pod;

		if (rs->ns.eps[i].info.ifindex == ifindex) {
			snprintf(buf, len, "%s/%s", pod->ns, pod->name);
			return buf;
		}
	}
	return NULL;
}

struct packet_outcome {
	char verdict[64];
	unsigned int reason;
	char reason_text[96];
	char target[360];
	const struct ciliate_event *last;
	bool has_output;
	bool identity_from_ipcache;
};

static void outcome_from_run(struct replay_session *rs, int retval, struct packet_outcome *po)
{
	const struct ciliate_event *drop = NULL, *trace = NULL;
	char buf[320];

	memset(po, 0, sizeof(*po));
	for (size_t i = 0; i < rs->nevents; i++) {
		if (rs->events[i].type == EVENT_DROP)
			drop = &rs->events[i];
		else if (rs->events[i].type == EVENT_TRACE)
			trace = &rs->events[i];
	}
	po->last = drop ? drop : trace;
	if (rs->hook == HOOK_XDP) {
		static const char *const xdp[] = { "drop", "drop", "pass", "tx", "redirect" };

		snprintf(po->verdict, sizeof(po->verdict), "%s",
			 retval >= 0 && retval <= 4 ? xdp[retval] : "drop");
	} else {
		switch (retval) {
		case TC_ACT_OK:
		case TC_ACT_UNSPEC:
			snprintf(po->verdict, sizeof(po->verdict), "ok");
			break;
		case TC_ACT_REDIRECT:
			snprintf(po->verdict, sizeof(po->verdict), "redirect");
			break;
		case TC_ACT_SHOT:
			snprintf(po->verdict, sizeof(po->verdict), "drop");
			break;
		default:
			snprintf(po->verdict, sizeof(po->verdict), "action:%d", retval);
		}
	}
	if (!strcmp(po->verdict, "drop")) {
		po->reason = drop ? drop->reason : 0;
		snprintf(po->verdict, sizeof(po->verdict), "drop:%s",
			 drop ? reason_name(drop->reason) : "UNKNOWN");
	} else {
		po->reason = trace ? trace->reason : 0;
		po->has_output = true;
	}
	snprintf(po->reason_text, sizeof(po->reason_text), "%s", reason_name(po->reason));
	if (po->last && po->last->target_ifindex) {
		const char *name = target_name(rs, po->last->target_ifindex, buf, sizeof(buf));

		snprintf(po->target, sizeof(po->target), "-> %s (ifindex %u)", name ? name : "?",
			 po->last->target_ifindex);
	} else if (po->last && po->last->hook == HOOK_TO_OVERLAY && po->last->tunnel_endpoint) {
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &po->last->tunnel_endpoint, ip, sizeof(ip));
		snprintf(po->target, sizeof(po->target), "-> tunnel %s vni %u", ip,
			 po->last->src_identity);
	}
	/* BPF_PROG_TEST_RUN attaches no tunnel key: from-overlay fell back to the ipcache */
	po->identity_from_ipcache =
		po->last && (po->last->flags & EVENT_F_IDENTITY_FROM_IPCACHE);
}

static void print_packet(const struct replay_run_opts *o, size_t n,
			 const struct replay_session *rs, const struct packet_outcome *po,
			 const char *in_dec, const char *out_dec, const char *mismatch)
{
	char hook[40] = "";

	if (!o->out)
		return;
	/* with a hook list every line names its packet's hook */
	if (rs->nhooks > 1 && n <= rs->nhooks)
		snprintf(hook, sizeof(hook), "%s", hook_name((unsigned int)rs->hooks[n - 1]));
	if (o->format == REPLAY_JSON) {
		json_t *j = json_object();
		char *s;

		json_object_set_new(j, "packet", json_integer((json_int_t)n));
		if (hook[0])
			json_object_set_new(j, "hook", json_string(hook));
		json_object_set_new(j, "verdict", json_string(po->verdict));
		json_object_set_new(j, "reason", json_string(po->reason_text));
		json_object_set_new(j, "reason_code", json_integer(po->reason));
		if (po->last) {
			json_object_set_new(j, "ct_status",
					    json_string(ct_status_name(po->last->ct_status)));
			json_object_set_new(j, "src_identity", json_integer(po->last->src_identity));
			json_object_set_new(j, "dst_identity", json_integer(po->last->dst_identity));
			if (po->last->type == EVENT_DROP)
				json_object_set_new(j, "source_line",
						    json_integer(po->last->src_line));
		}
		if (po->target[0])
			json_object_set_new(j, "target", json_string(po->target));
		if (po->identity_from_ipcache)
			json_object_set_new(j, "identity_source", json_string("ipcache"));
		json_object_set_new(j, "input", json_string(in_dec));
		if (out_dec)
			json_object_set_new(j, "output", json_string(out_dec));
		if (mismatch)
			json_object_set_new(j, "mismatch", json_string(mismatch));
		s = json_dumps(j, JSON_COMPACT);
		fprintf(o->out, "%s\n", s);
		free(s);
		json_decref(j);
		return;
	}
	if (hook[0]) /* "   2  from-netdev     ok ..." */
		fprintf(o->out, "%4zu  %-15s", n, hook);
	else
		fprintf(o->out, "%4zu  ", n);
	fprintf(o->out, "%-26s %-12s %-28s in: %s%s%s%s%s%s\n", po->verdict,
		po->last ? ct_status_name(po->last->ct_status) : "-", po->target[0] ? po->target : "-",
		in_dec, out_dec ? "  out: " : "", out_dec ? out_dec : "",
		po->identity_from_ipcache ? "  [no tunnel key: source identity from ipcache]" : "",
		mismatch ? "  MISMATCH: " : "", mismatch ? mismatch : "");
}

/* Reads all packets of the golden pcap (NULL path: none). */
struct golden {
	uint8_t **data;
	size_t *len;
	size_t n;
};

static void golden_free(struct golden *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->data[i]);
	free(g->data);
	free(g->len);
	memset(g, 0, sizeof(*g));
}

static int golden_load(const char *path, struct golden *g, struct diag *d)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *bytes;
	pcap_t *p;

	memset(g, 0, sizeof(*g));
	if (!path)
		return 0;
	p = pcap_open_offline(path, errbuf);
	if (!p)
		return diag_fail_errno(d, -ENOENT, "%s: %s", path, errbuf);
	while (pcap_next_ex(p, &h, &bytes) == 1) {
		g->data = realloc(g->data, (g->n + 1) * sizeof(*g->data));
		g->len = realloc(g->len, (g->n + 1) * sizeof(*g->len));
		g->data[g->n] = malloc(h->caplen ? h->caplen : 1);
		memcpy(g->data[g->n], bytes, h->caplen);
		g->len[g->n++] = h->caplen;
	}
	pcap_close(p);
	return 0;
}

static void note_mismatch(struct replay_summary *sum, size_t n, const char *what)
{
	if (!sum->mismatches++)
		snprintf(sum->first_mismatch, sizeof(sum->first_mismatch), "packet %zu: %s", n, what);
}

/* BPF_PROG_TEST_RUN of the current packet; the xdp hook runs in the fabric's namespace. */
static int replay_run_in_fabric(struct replay_session *rs, struct bpf_test_run_opts *topts)
{
	int ret, saved;

	if (rs->hook != HOOK_XDP || rs->fab_ns < 0)
		return bpf_prog_test_run_opts(rs->prog_fd, topts);
	if (setns(rs->fab_ns, CLONE_NEWNET) < 0)
		return -1;
	ret = bpf_prog_test_run_opts(rs->prog_fd, topts);
	saved = errno;
	if (setns(rs->orig_ns, CLONE_NEWNET) < 0) {
		perror("replay: returning to the original network namespace");
		exit(1);
	}
	errno = saved;
	return ret;
}

int replay_session_run(struct replay_session *rs, const struct replay_run_opts *o,
		       struct replay_summary *sum, struct diag *d)
{
	static uint8_t outbuf[REPLAY_OUT_MAX];
	char errbuf[PCAP_ERRBUF_SIZE], in_dec[512], out_dec[512], mismatch[256];
	pcap_dumper_t *dumper = NULL;
	pcap_t *in, *dead = NULL;
	struct golden golden;
	size_t out_idx = 0;
	struct pcap_pkthdr *h;
	const u_char *bytes;
	int err = 0, rc;

	memset(sum, 0, sizeof(*sum));
	in = pcap_open_offline(o->in_pcap, errbuf);
	if (!in)
		return diag_fail_errno(d, -ENOENT, "%s: %s", o->in_pcap, errbuf);
	if (pcap_datalink(in) != DLT_EN10MB) {
		err = diag_fail(d, "%s: link type %s (%d) is not supported: replay needs Ethernet "
				"(DLT_EN10MB) captures", o->in_pcap,
				pcap_datalink_val_to_name(pcap_datalink(in)) ?: "?",
				pcap_datalink(in));
		pcap_close(in);
		return err;
	}
	err = golden_load(o->expect_pcap, &golden, d);
	if (err)
		goto out;
	if (o->out_pcap) {
		dead = pcap_open_dead(DLT_EN10MB, 65535);
		dumper = pcap_dump_open(dead, o->out_pcap);
		if (!dumper) {
			err = diag_fail_errno(d, -EIO, "%s: %s", o->out_pcap, pcap_geterr(dead));
			goto out;
		}
	}

	while ((rc = pcap_next_ex(in, &h, &bytes)) == 1) {
		LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = bytes, .data_size_in = h->caplen,
			    .data_out = outbuf, .data_size_out = sizeof(outbuf), .repeat = 1);
		struct packet_outcome po;
		const char *mm = NULL;
		size_t n = ++sum->packets;
		char why[128];

		decode_frame(bytes, h->caplen, in_dec, sizeof(in_dec));
		rs->nevents = 0;
		if (rs->nhooks > 1 && n > rs->nhooks) {
			/* a hook list names one hook per packet: this one has none */
			memset(&po, 0, sizeof(po));
			snprintf(po.verdict, sizeof(po.verdict), "not-run");
			snprintf(po.reason_text, sizeof(po.reason_text), "no hook in the list");
			sum->not_run++;
			sum->dropped++;
			snprintf(mismatch, sizeof(mismatch),
				 "the hook list names %zu hooks, one per packet: packet %zu has none",
				 rs->nhooks, n);
			print_packet(o, n, rs, &po, in_dec, NULL, mismatch);
			note_mismatch(sum, n, mismatch);
			continue;
		}
		if (rs->nhooks > 1) {
			rs->hook = rs->hooks[n - 1];
			rs->prog_fd = rs->prog_fds[n - 1];
		}
		if (rs->hook == HOOK_XDP) {
			/* the frame arrives on the fabric device (data_end: its length) */
			static struct xdp_md xctx;

			memset(&xctx, 0, sizeof(xctx));
			xctx.data_end = h->caplen;
			xctx.ingress_ifindex = rs->fab_ifindex;
			topts.ctx_in = &xctx;
			topts.ctx_size_in = sizeof(xctx);
		}
		if (replay_run_in_fabric(rs, &topts) < 0) {
			/* The kernel refuses frames it could never deliver to this hook (shorter
			 * than an Ethernet header, larger than a page): documented as a drop. */
			memset(&po, 0, sizeof(po));
			po.reason = REASON_INVALID_PACKET_DROPPED;
			snprintf(po.verdict, sizeof(po.verdict), "drop:%s", reason_name(po.reason));
			snprintf(po.reason_text, sizeof(po.reason_text), "not run: %s",
				 strerror(errno));
			sum->not_run++;
		} else {
			ring_buffer__consume(rs->rb);
			outcome_from_run(rs, (int)topts.retval, &po);
		}
		if (!po.has_output)
			sum->dropped++;

		if (n <= o->nexpect_verdicts &&
		    !replay_verdict_matches(o->expect_verdicts[n - 1], po.verdict)) {
			snprintf(mismatch, sizeof(mismatch), "expected %s, got %s",
				 o->expect_verdicts[n - 1], po.verdict);
			mm = mismatch;
		}
		if (po.has_output) {
			bool changed = topts.data_size_out != h->caplen ||
				       memcmp(outbuf, bytes, h->caplen);

			/* rewritten outputs show L2 and TTL so the rewrite is visible */
			if (changed)
				decode_frame_ex(outbuf, topts.data_size_out,
						DECODE_F_ETH | DECODE_F_VERBOSE, out_dec,
						sizeof(out_dec));
			if (!mm && replay_checksums_valid(bytes, h->caplen, why, sizeof(why)) == 0 &&
			    replay_checksums_valid(outbuf, topts.data_size_out, why, sizeof(why))) {
				snprintf(mismatch, sizeof(mismatch), "output has %s", why);
				mm = mismatch;
			}
			if (!mm && o->expect_pcap) {
				if (out_idx >= golden.n) {
					snprintf(mismatch, sizeof(mismatch),
						 "output %zu not in golden pcap (%zu outputs)",
						 out_idx + 1, golden.n);
					mm = mismatch;
				} else if (golden.len[out_idx] != topts.data_size_out ||
					   memcmp(golden.data[out_idx], outbuf, topts.data_size_out)) {
					size_t at = 0;

					while (at < golden.len[out_idx] && at < topts.data_size_out &&
					       golden.data[out_idx][at] == outbuf[at])
						at++;
					snprintf(mismatch, sizeof(mismatch),
						 "output differs from golden packet %zu at byte %zu",
						 out_idx + 1, at);
					mm = mismatch;
				}
			}
			if (dumper) {
				struct pcap_pkthdr oh = *h;

				oh.caplen = oh.len = topts.data_size_out;
				pcap_dump((u_char *)dumper, &oh, outbuf);
			}
			out_idx++;
			print_packet(o, n, rs, &po, in_dec, changed ? out_dec : NULL, mm);
		} else {
			print_packet(o, n, rs, &po, in_dec, NULL, mm);
		}
		if (mm)
			note_mismatch(sum, n, mm);
	}
	if (rc == PCAP_ERROR)
		fprintf(stderr, "warning: %s: stopped at packet %zu: %s\n", o->in_pcap,
			sum->packets + 1, pcap_geterr(in));
	if (o->nexpect_verdicts && o->nexpect_verdicts != sum->packets) {
		snprintf(mismatch, sizeof(mismatch), "expected %zu verdicts, capture has %zu packets",
			 o->nexpect_verdicts, sum->packets);
		note_mismatch(sum, sum->packets, mismatch);
	}
	if (rs->nhooks > 1 && sum->packets < rs->nhooks) {
		snprintf(mismatch, sizeof(mismatch),
			 "the hook list names %zu hooks, one per packet; the capture has %zu packets",
			 rs->nhooks, sum->packets);
		note_mismatch(sum, sum->packets, mismatch);
	}
	if (o->expect_pcap && out_idx != golden.n) {
		snprintf(mismatch, sizeof(mismatch), "golden pcap has %zu outputs, replay produced %zu",
			 golden.n, out_idx);
		note_mismatch(sum, sum->packets, mismatch);
	}
out:
	if (dumper)
		pcap_dump_close(dumper);
	if (dead)
		pcap_close(dead);
	golden_free(&golden);
	pcap_close(in);
	return err;
}

struct ct_dump_ctx {
	FILE *out;
	enum replay_format format;
	uint64_t now;
};

static int ct_dump_one(const struct ct_key *key, const struct ct_entry *e, void *arg)
{
	struct ct_dump_ctx *c = arg;
	struct ct_key orig;
	const struct ct_key *k = &orig;
	char line[512];

	ct_key_original(key, e, &orig);
	ct_format(key, e, c->now, line, sizeof(line));
	if (c->format == REPLAY_JSON) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I}", "entry", line, "scope",
				      k->scope == CT_OUT ? "out" : "in", "state",
				      ct_tcp_state_name(e->tcp_state), "packets_fwd",
				      (json_int_t)e->packets_fwd, "packets_rev",
				      (json_int_t)e->packets_rev);
		char *s = json_dumps(j, JSON_COMPACT);

		fprintf(c->out, "%s\n", s);
		free(s);
		json_decref(j);
	} else {
		fprintf(c->out, "  %s\n", line);
	}
	return 0;
}

int replay_session_dump_ct(struct replay_session *rs, FILE *out, enum replay_format format)
{
	struct ct_dump_ctx c = { out, format, ct_clock_now_ns() };

	if (format == REPLAY_TEXT)
		fprintf(out, "conntrack after replay:\n");
	return ct_foreach(datapath_map_fd(rs->dp, MAP_CT), ct_dump_one, &c);
}
