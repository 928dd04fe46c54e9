/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy agreement: for every scenario under scenarios/netpol/ and scenarios/cnp/ (the
 * Kubernetes e2e network-policy model: namespaces x, y, z, pods a, b, c, two nodes), every
 * step of its Test documents and every cell of every matrix, three verdicts must agree:
 *
 *   expected  the matrix cell (derived from upstream semantics by
 *             tests/policy/gen_policy_scenarios.py, not by ciliate)
 *   trace     policy_trace_run() over the node states' entries (the C re-implementation of
 *             the datapath lookup)
 *   datapath  a TCP SYN / UDP datagram / SCTP INIT / ICMP echo request pushed through the
 *             real programs with BPF_PROG_TEST_RUN: from_container on the source's node with
 *             that node's state (same node: final; otherwise, if passed, to_container on the
 *             destination's node with the destination bound). Sources outside the pods
 *             (node/NAME, ext/NAME) enter at the destination's to_container.
 *
 * Steps accumulate their `manifests` / `apply` documents, an object applied again replacing
 * its earlier version (a Pod with new labels: SPEC section 5); deletes are not supported here.
 * On disagreement the three tables are printed with the differing cells marked '*'.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include "bpf_harness.h"
#include "pktbuild.h"
#include "loader/maps.h"
#include "model/model.h"
#include "model/policy_trace.h"

#define MAX_SCENARIOS 256

static const uint8_t any_mac[6] = {0x02, 0, 0, 0, 0, 1};

struct totals {
	size_t scenarios, steps, matrices, cells, differ;
	size_t by_proto[4]; /* TCP, UDP, SCTP, ICMP */
	size_t cross_node, same_node, from_outside;
	size_t skipped; /* cells with no pod on either side */
	size_t denied;	/* cells expected X */
};

static struct totals tot;
static char *paths[MAX_SCENARIOS];
static size_t npaths;

/* ---- frames -------------------------------------------------------------------------------- */

static size_t build_frame(uint8_t *buf, size_t cap, uint32_t src, uint32_t dst, uint8_t proto,
			  uint16_t sport, uint16_t port)
{
	struct pb_ipv4 ip = pb_ipv4_hdr(src, dst);
	struct pb_pkt p;
	int n;

	pb_init(&p, buf, cap);
	pb_eth(&p, any_mac, any_mac, PB_AUTO);
	pb_ipv4(&p, &ip);
	if (proto == IPPROTO_TCP) {
		struct pb_tcp tcp = pb_tcp_hdr(sport, port, PB_TCP_SYN);

		pb_tcp(&p, &tcp);
	} else if (proto == IPPROTO_UDP) {
		struct pb_udp udp = {.sport = sport, .dport = port, .len = PB_AUTO};

		pb_udp(&p, &udp);
		pb_bytes(&p, "ping", 4);
	} else if (proto == IPPROTO_SCTP) {
		static const uint8_t init[16] = {0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1};
		struct pb_sctp sctp = {.sport = sport,
				       .dport = port,
				       .chunk_type = 1,
				       .chunk_value = init,
				       .chunk_value_len = sizeof(init)};

		pb_sctp(&p, &sctp);
	} else {
		struct pb_icmp icmp = {
			.type = (uint8_t)port, .code = 0, .rest = (uint32_t)sport << 16 | 1};

		pb_icmp4(&p, &icmp);
		pb_bytes(&p, "ping", 4);
	}
	n = pb_finish(&p);
	assert_true(n > 0);
	return (size_t)n;
}

/* ---- scenario text of a step --------------------------------------------------------------- */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The Kubernetes objects in force: those of the scenario, then each step's, where an object
 * applied again (same kind, namespace, name: e.g. a Pod with new labels) replaces the
 * earlier version in its place, as in the store. */
struct objs {
	struct manifest_obj *v;
	size_t n;
};

static void objs_apply(struct objs *o, const char *name, const char *text)
{
	struct manifest_obj *v, *nv;
	struct diag d = {""};
	size_t m, i, k;

	if (manifests_load(name, text, strlen(text), &v, &m, NULL, &d))
		fail_msg("%s", d.msg);
	for (i = 0; i < m; i++) {
		for (k = 0; k < o->n; k++)
			if (!strcmp(o->v[k].kind, v[i].kind) && !strcmp(o->v[k].ns, v[i].ns) &&
			    !strcmp(o->v[k].name, v[i].name))
				break;
		if (k == o->n) {
			nv = realloc(o->v, (o->n + 1) * sizeof(*nv));
			assert_non_null(nv);
			o->v = nv;
			memset(&o->v[o->n++], 0, sizeof(*nv));
		}
		free(o->v[k].api_version);
		free(o->v[k].kind);
		free(o->v[k].ns);
		free(o->v[k].name);
		free(o->v[k].json);
		o->v[k] = v[i];
		memset(&v[i], 0, sizeof(v[i]));
	}
	manifests_free(v, m);
}

/* The cluster model of the objects in force, with the Cluster of the scenario file. */
static struct cluster_model *objs_model(const char *path, const char *file_text,
					const struct objs *o)
{
	struct model_doc *docs = calloc(o->n + 1, sizeof(*docs));
	struct cluster_model *m = NULL;
	struct diag d = {""};
	size_t i;

	assert_non_null(docs);
	docs[0] = (struct model_doc){path, file_text, strlen(file_text), MODEL_DOC_CLUSTER_ONLY};
	for (i = 0; i < o->n; i++)
		docs[i + 1] = (struct model_doc){path, o->v[i].json, strlen(o->v[i].json), 0};
	if (cluster_model_from_docs(path, docs, o->n + 1, &m, NULL, &d))
		fail_msg("%s", d.msg);
	free(docs);
	return m;
}

/* ---- one cell through the datapath --------------------------------------------------------- */

struct step_env {
	const char *path;
	struct cluster_model *m;
	struct policy_view v;
	struct harness *h[8]; /* per node, in node order */
	uint16_t next_sport;
};

static struct harness *node_harness(struct step_env *e, const struct m_node *node)
{
	size_t i = (size_t)(node - e->m->cluster.nodes);

	assert_true(i < e->m->cluster.nnodes && i < 8);
	return e->h[i];
}

static void bind_pod(struct step_env *e, struct harness *h, const struct m_pod *pod,
		     const struct m_node *node)
{
	const struct node_state *ns = &e->v.nodes[node - e->m->cluster.nodes];
	char ref[MODEL_NAME_MAX + 70];
	const struct node_endpoint *ep;
	struct diag d = {""};

	snprintf(ref, sizeof(ref), "%s/%s", pod->ns, pod->name);
	ep = node_state_find_endpoint(ns, ref);
	if (!ep)
		fail_msg("%s: %s is not an endpoint of %s", e->path, ref, node->name);
	if (dp_endpoint_bind_ifindex(h->dp, 1, &ep->info, &d))
		fail_msg("bind %s: %s", ref, d.msg);
}

static int run_hook(struct harness *h, int hook, const uint8_t *frame, size_t len)
{
	int err = harness_try_run(h, hook, frame, len);

	if (err)
		fail_msg("BPF_PROG_TEST_RUN: %s", strerror(-err));
	return h->retval;
}

/* The datapath's verdict for a new connection src -> dst ('.' or 'X'). */
static char datapath_cell(struct step_env *e, const struct policy_trace *t)
{
	const struct trace_peer *src = &t->src, *dst = &t->dst;
	uint8_t frame[512];
	uint16_t sport = e->next_sport++;
	struct harness *h;
	size_t len;
	int ret;

	if (e->next_sport > 60000)
		e->next_sport = 10000;
	len = build_frame(frame, sizeof(frame), src->ip, dst->ip, t->proto, sport, t->port);
	if (src->kind == TRACE_PEER_POD) {
		h = node_harness(e, src->node);
		bind_pod(e, h, src->pod, src->node);
		ret = run_hook(h, HOOK_FROM_CONTAINER, frame, len);
		if (ret == TC_ACT_SHOT)
			return 'X';
		if (ret == TC_ACT_REDIRECT) {
			tot.same_node++;
			return '.';
		}
		if (ret != TC_ACT_OK)
			fail_msg("from_container returned %d", ret);
		if (dst->kind != TRACE_PEER_POD)
			return '.';
		tot.cross_node++;
	} else {
		tot.from_outside++;
	}
	assert_int_equal(dst->kind, TRACE_PEER_POD);
	h = node_harness(e, dst->node);
	bind_pod(e, h, dst->pod, dst->node);
	ret = run_hook(h, HOOK_TO_CONTAINER, frame, len);
	if (ret == TC_ACT_SHOT)
		return 'X';
	if (ret != TC_ACT_OK)
		fail_msg("to_container returned %d", ret);
	return '.';
}

/* ---- matrices ------------------------------------------------------------------------------ */

static const char *proto_str(uint8_t p)
{
	return p == IPPROTO_TCP	   ? "TCP"
	       : p == IPPROTO_UDP  ? "UDP"
	       : p == IPPROTO_SCTP ? "SCTP"
				   : "ICMP";
}

static void print_table(const char *title, const struct m_matrix *m, const char *cells,
			const char *ref)
{
	size_t r, c, w = 2, cw;

	for (r = 0; r < m->nrows; r++)
		if (strlen(m->rows[r]) + 1 > w)
			w = strlen(m->rows[r]) + 1;
	print_message("%s:\n%-*s", title, (int)w, "-");
	for (c = 0; c < m->ncols; c++)
		print_message(" %-*s", (int)(strlen(m->cols[c]) > 2 ? strlen(m->cols[c]) : 2),
			      m->cols[c]);
	print_message("\n");
	for (r = 0; r < m->nrows; r++) {
		print_message("%-*s", (int)w, m->rows[r]);
		for (c = 0; c < m->ncols; c++) {
			size_t i = r * m->ncols + c;

			cw = strlen(m->cols[c]) > 2 ? strlen(m->cols[c]) : 2;
			print_message(" %c%c%*s", cells[i],
				      cells != ref && cells[i] != ref[i] ? '*' : ' ', (int)(cw - 2),
				      "");
		}
		print_message("\n");
	}
}

/* True if ref names a (non-hostNetwork) pod. */
static bool is_pod_ref(const struct cluster_model *cm, const char *ref)
{
	const struct m_pod *pod = cluster_find_pod(cm, ref);

	return pod && !pod->host_network && strncmp(ref, "node/", 5) && strncmp(ref, "ext/", 4) &&
	       strncmp(ref, "ip/", 3);
}

static void check_matrix(struct step_env *e, const char *test, const char *step,
			 const struct m_matrix *m)
{
	size_t n = m->nrows * m->ncols, r, c, differ = 0, checked = 0;
	char *dp = malloc(n), *tr = malloc(n);
	uint16_t port = m->proto == IPPROTO_ICMP ? 8 : m->port; /* ICMP: echo request */
	struct policy_trace t;
	struct diag d = {""};
	int pi;

	assert_non_null(dp);
	assert_non_null(tr);
	for (r = 0; r < m->nrows; r++) {
		for (c = 0; c < m->ncols; c++) {
			size_t i = r * m->ncols + c;

			if (!strcmp(m->rows[r], m->cols[c]) ||
			    (!is_pod_ref(e->m, m->rows[r]) && !is_pod_ref(e->m, m->cols[c]))) {
				/* loopback cells are ignored; so are cells without a pod on
				 * either side (no endpoint policy: they must be allowed) */
				if (strcmp(m->rows[r], m->cols[c]) && m->cells[i] != '.')
					fail_msg(
						"%s:%d: %s -> %s: expected '.' (no pod, no policy)",
						e->path, m->line, m->rows[r], m->cols[c]);
				dp[i] = tr[i] = m->cells[i];
				tot.skipped += !!strcmp(m->rows[r], m->cols[c]);
				continue;
			}
			if (policy_trace_run(&e->v, m->rows[r], m->cols[c], m->proto, port, &t, &d))
				fail_msg("%s:%d: trace %s -> %s: %s", e->path, m->line, m->rows[r],
					 m->cols[c], d.msg);
			tr[i] = t.allowed ? '.' : 'X';
			tot.denied += m->cells[i] == 'X';
			dp[i] = datapath_cell(e, &t);
			checked++;
			if (dp[i] != m->cells[i] || tr[i] != m->cells[i])
				differ++;
		}
	}
	pi = m->proto == IPPROTO_TCP	? 0
	     : m->proto == IPPROTO_UDP	? 1
	     : m->proto == IPPROTO_SCTP ? 2
					: 3;
	tot.by_proto[pi] += checked;
	tot.cells += checked;
	tot.matrices++;
	if (differ) {
		tot.differ += differ;
		print_message("%s:%d: test %s, step %s, %s/%u: %zu of %zu cells disagree "
			      "(marked *)\n",
			      e->path, m->line, test, step, proto_str(m->proto), m->port, differ,
			      checked);
		print_table("expected", m, m->cells, m->cells);
		print_table("datapath (BPF_PROG_TEST_RUN)", m, dp, m->cells);
		print_table("policy trace", m, tr, m->cells);
	}
	free(dp);
	free(tr);
	assert_int_equal(differ, 0);
}

static void step_env_free(struct step_env *e)
{
	size_t i;

	for (i = 0; i < 8; i++)
		harness_free(e->h[i]);
	policy_view_free(&e->v);
	cluster_model_free(e->m);
	memset(e, 0, sizeof(*e));
}

static void check_scenario(void **state)
{
	const char *path = *state;
	struct scenario *base = NULL;
	struct diag d = {""};
	char *text, *extra;
	size_t ti, si, k, mi;

	if (scenario_load(path, &base, &d))
		fail_msg("%s", d.msg);
	assert_true(base->ntests > 0);
	tot.scenarios++;
	for (ti = 0; ti < base->ntests; ti++) {
		const struct m_test *test = &base->tests[ti];

		struct objs objs = {0};

		text = read_text(path);
		objs_apply(&objs, path, text);
		for (si = 0; si < test->nsteps; si++) {
			const struct m_step *st = &test->steps[si];
			struct step_env e = {.path = path, .next_sport = 10000};

			if (st->ndeletes)
				fail_msg("%s:%d: steps with delete are not supported here", path,
					 st->line);
			if (st->apply) {
				extra = read_text(st->apply);
				objs_apply(&objs, st->apply, extra);
				free(extra);
			}
			if (st->manifests_yaml)
				objs_apply(&objs, path, st->manifests_yaml);
			e.m = objs_model(path, text, &objs);
			if (policy_view_compute(&e.v, e.m, &d))
				fail_msg("step %s: %s", st->name, d.msg);
			assert_true(e.m->cluster.nnodes <= 8);
			for (k = 0; k < e.m->cluster.nnodes; k++) {
				e.h[k] = harness_new();
				if (dp_apply_node_state(e.h[k]->dp, &e.v.nodes[k], &d))
					fail_msg("node %s: %s", e.m->cluster.nodes[k].name, d.msg);
			}
			for (mi = 0; mi < st->nmatrices; mi++)
				check_matrix(&e, test->name, st->name, &st->matrices[mi]);
			tot.steps++;
			step_env_free(&e);
		}
		manifests_free(objs.v, objs.n);
		free(text);
	}
	scenario_free(base);
}

static void summary(void **state)
{
	print_message("policy agreement: %zu scenarios, %zu steps, %zu matrices, %zu cells "
		      "(%zu expected denied; TCP %zu, UDP %zu, SCTP %zu, ICMP %zu; same-node %zu, "
		      "cross-node %zu, "
		      "from outside %zu), %zu disagreeing; %zu cells without a pod skipped\n",
		      tot.scenarios, tot.steps, tot.matrices, tot.cells, tot.denied,
		      tot.by_proto[0], tot.by_proto[1], tot.by_proto[2], tot.by_proto[3],
		      tot.same_node, tot.cross_node, tot.from_outside, tot.differ, tot.skipped);
	assert_int_equal(tot.scenarios, npaths);
	assert_true(tot.cells > 0);
	assert_true(tot.by_proto[2] > 0); /* SCTP went through the programs */
	assert_int_equal(tot.differ, 0);
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect(const char *dir)
{
	struct dirent *de;
	DIR *dh = opendir(dir);
	size_t len;

	if (!dh)
		return;
	while ((de = readdir(dh))) {
		len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") || npaths == MAX_SCENARIOS)
			continue;
		if (asprintf(&paths[npaths], "%s/%s", dir, de->d_name) > 0)
			npaths++;
	}
	closedir(dh);
}

int main(void)
{
	const char *root = getenv("CILIATE_SRCDIR");
	struct CMUnitTest *tests;
	char dir[4096];
	size_t i;
	int rc;

	if (!root)
		root = ".";
	snprintf(dir, sizeof(dir), "%s/scenarios/netpol", root);
	collect(dir);
	snprintf(dir, sizeof(dir), "%s/scenarios/cnp", root);
	collect(dir);
	if (!npaths) {
		fprintf(stderr,
			"test_policy_agreement: no scenarios under %s/scenarios/{netpol,cnp} "
			"(run from the repository root or set CILIATE_SRCDIR)\n",
			root);
		return 1;
	}
	qsort(paths, npaths, sizeof(*paths), path_cmp);
	tests = calloc(npaths + 1, sizeof(*tests));
	if (!tests)
		return 1;
	for (i = 0; i < npaths; i++) {
		tests[i].name = paths[i];
		tests[i].test_func = check_scenario;
		tests[i].initial_state = paths[i];
	}
	tests[npaths].name = "summary";
	tests[npaths].test_func = summary;
	rc = _cmocka_run_group_tests("policy_agreement", tests, npaths + 1, NULL, NULL);
	for (i = 0; i < npaths; i++)
		free(paths[i]);
	free(tests);
	return rc;
}
