// SPDX-License-Identifier: Apache-2.0
/*
 * The flow page (datapath/flow/flowpage.c): the flows are embedded as JSON that reads back
 * exactly, a hostile label cannot leave the data block or become markup, the header counts
 * (flows, forwarded, dropped, lost events per node) are right, the page loads nothing from
 * anywhere, and an unwritable path fails with a message naming it.
 *
 * Also the page generator for the browser suite (tests/flowpage/run-suite.sh):
 *   test_flowpage --page FLOWS.jsonl OUT.html [TITLE]
 * writes the page for a flow log (one wrapped flow or lost_events record per line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "flow/flowpage.h"
#include "tmpdir.h"

#define FIXTURE "tests/observe/fixtures/flows.jsonl"
#define HOSTILE "</script><img src=x onerror=alert(1)>"

struct recs {
	json_t **v;
	size_t n;
};

static void recs_free(struct recs *r)
{
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->v[i]);
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

/* Reads a flow log: one JSON object per line, blank lines skipped. */
static int load_jsonl(const char *path, struct recs *r, struct diag *d)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;

	r->v = NULL;
	r->n = 0;
	if (!f)
		return diag_fail_errno(d, -errno, "%s: %s", path, strerror(errno));
	while ((len = getline(&line, &cap, f)) >= 0) {
		json_error_t je;
		json_t *o, **v;

		lineno++;
		if (strspn(line, " \t\r\n") == (size_t)len)
			continue;
		o = json_loads(line, 0, &je);
		if (!o) {
			fclose(f);
			free(line);
			recs_free(r);
			return diag_fail(d, "%s:%zu: %s", path, lineno, je.text);
		}
		v = realloc(r->v, (r->n + 1) * sizeof(*v));
		if (!v)
			abort();
		r->v = v;
		r->v[r->n++] = o;
	}
	free(line);
	fclose(f);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, len = 0, got;

	assert_non_null(f);
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
	} while (got > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static char tmpdir[64];
static char page_path[128];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ciliate-t-flowpage.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(page_path, sizeof(page_path), "%s/flows.html", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	test_rm_dir(tmpdir);
	return 0;
}

/* Writes the page for the records and returns its text. */
static char *render(json_t *const *v, size_t n, const char *title)
{
	struct diag d = {""};
	int err = flowpage_write(page_path, v, n, title, &d);

	if (err)
		fail_msg("flowpage_write: %d %s", err, d.msg);
	return slurp(page_path);
}

/* The text of the data block (between its opening tag and the next "</script>"). */
static char *data_block(const char *page)
{
	const char *open = "<script type=\"application/json\" id=\"flow-data\">";
	const char *s = strstr(page, open), *e;

	assert_non_null(s);
	s += strlen(open);
	e = strstr(s, "</script>");
	assert_non_null(e);
	return strndup(s, (size_t)(e - s));
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static json_t *flow_rec(const char *node, const char *verdict, const char *src_ns,
			const char *src_pod, const char *dst_ns, const char *dst_pod, int dport)
{
	json_t *flow = json_pack("{ss ss s{ssssss} s{s{sisi}} s{sssss[s]} s{sssss[s]} s{si} ss}",
				 "time", "2026-12-04T17:40:00.5Z", "verdict", verdict, "IP",
				 "source", "10.244.0.10", "destination", "10.244.1.10", "ipVersion",
				 "IPv4", "l4", "TCP", "source_port", 41000, "destination_port",
				 dport, "source", "namespace", src_ns, "pod_name", src_pod,
				 "labels", "k8s:app=a", "destination", "namespace", dst_ns,
				 "pod_name", dst_pod, "labels", "k8s:app=b", "event_type", "type",
				 strcmp(verdict, "DROPPED") == 0 ? 1 : 4, "node_name", node);

	assert_non_null(flow);
	if (strcmp(verdict, "DROPPED") == 0)
		json_object_set_new(flow, "drop_reason_desc", json_string("POLICY_DENIED"));
	return json_pack("{sosss s}", "flow", flow, "node_name", node, "time",
			 "2026-12-04T17:40:00.5Z");
}

static json_t *lost_rec(const char *node, int n)
{
	return json_pack("{s{sssi}ssss}", "lost_events", "source", "PERF_EVENT_RING_BUFFER",
			 "num_events_lost", n, "node_name", node, "time", "2026-12-04T17:40:01Z");
}

static void test_embeds_flows(void **state)
{
	json_t *v[2] = {flow_rec("node-1", "FORWARDED", "x", "a", "y", "b", 80),
			flow_rec("node-2", "DROPPED", "y", "b", "x", "a", 443)};
	char *page = render(v, 2, "two flows");
	char *block = data_block(page);
	json_error_t je;
	json_t *data = json_loads(block, 0, &je), *flows;

	assert_non_null(data);
	flows = json_object_get(data, "flows");
	assert_int_equal(json_array_size(flows), 2);
	/* the records come back exactly as given */
	assert_true(json_equal(json_array_get(flows, 0), v[0]));
	assert_true(json_equal(json_array_get(flows, 1), v[1]));
	assert_string_equal(json_string_value(json_object_get(data, "title")), "two flows");
	assert_non_null(strstr(page, "<title>two flows</title>"));
	/* what the script and the test suite look for */
	assert_non_null(strstr(page, "<table id=\"flow-table\">"));
	assert_non_null(strstr(page, "<input id=\"filter-text\""));
	assert_non_null(strstr(page, "<select id=\"filter-verdict\""));
	assert_non_null(strstr(page, "<div id=\"map\">"));
	json_decref(data);
	free(block);
	free(page);
	json_decref(v[0]);
	json_decref(v[1]);
}

static void test_hostile_label(void **state)
{
	json_t *v[1] = {flow_rec("node-1", "DROPPED", "x", HOSTILE, "y&<!--", "b\u2028", 80)};
	char *page = render(v, 1, "<b>title</b> & " HOSTILE);
	char *block = data_block(page);
	json_error_t je;
	json_t *data, *src;

	/* the page has exactly the two script elements it writes itself, and no image */
	assert_int_equal(count_of(page, "</script>"), 2);
	assert_int_equal(count_of(page, "<script"), 2);
	assert_null(strstr(page, "<img"));
	assert_null(strstr(page, "<!--"));
	assert_null(strstr(block, "<"));
	assert_null(strstr(block, ">"));
	assert_null(strstr(block, "&"));
	assert_non_null(
		strstr(block, "\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e"));
	/* the title is text in both places */
	assert_non_null(
		strstr(page, "<title>&lt;b&gt;title&lt;/b&gt; &amp; &lt;/script&gt;&lt;img"));
	assert_non_null(strstr(page, "<h1 id=\"page-title\">&lt;b&gt;title&lt;/b&gt; &amp; "));
	/* ... and the data still reads back to the very same strings */
	data = json_loads(block, 0, &je);
	assert_non_null(data);
	src = json_object_get(
		json_object_get(json_array_get(json_object_get(data, "flows"), 0), "flow"),
		"source");
	assert_string_equal(json_string_value(json_object_get(src, "pod_name")), HOSTILE);
	assert_string_equal(json_string_value(json_object_get(data, "title")),
			    "<b>title</b> & " HOSTILE);
	json_decref(data);
	free(block);
	free(page);
	json_decref(v[0]);
}

static void test_counts(void **state)
{
	json_t *v[] = {flow_rec("node-1", "FORWARDED", "x", "a", "y", "b", 80),
		       flow_rec("node-1", "DROPPED", "x", "a", "y", "b", 81),
		       flow_rec("node-2", "DROPPED", "x", "a", "y", "b", 82),
		       flow_rec("node-2", "ERROR", "x", "a", "y", "b", 83),
		       lost_rec("node-2", 5),
		       lost_rec("node-2", 2),
		       lost_rec("node-3", 1),
		       json_pack("{s{}ss}", "agent_event", "node_name", "node-1")};
	size_t n = sizeof(v) / sizeof(v[0]);
	char *page = render(v, n, NULL);

	assert_non_null(strstr(page, "<title>ciliate flows</title>"));
	assert_non_null(strstr(page, "id=\"count-flows\" data-count=\"4\">4<"));
	assert_non_null(strstr(page, "id=\"count-forwarded\" data-count=\"1\">1<"));
	assert_non_null(strstr(page, "id=\"count-dropped\" data-count=\"2\">2<"));
	assert_non_null(strstr(page, "id=\"count-lost\" data-count=\"8\">8<"));
	/* every node, sorted, with its own lost count */
	assert_non_null(strstr(page, "<span class=\"lost-node\" data-node=\"node-1\" "
				     "data-lost=\"0\">node-1: 0</span>"
				     "<span class=\"lost-node has-lost\" data-node=\"node-2\" "
				     "data-lost=\"7\">node-2: 7</span>"
				     "<span class=\"lost-node has-lost\" data-node=\"node-3\" "
				     "data-lost=\"1\">node-3: 1</span>"));
	free(page);
	for (size_t i = 0; i < n; i++)
		json_decref(v[i]);
}

static void test_empty(void **state)
{
	char *page = render(NULL, 0, "nothing");
	char *block = data_block(page);

	assert_non_null(strstr(page, "id=\"count-flows\" data-count=\"0\">0<"));
	assert_string_equal(block, "{\"title\":\"nothing\",\"flows\":[],\"lost\":[]}");
	free(block);
	free(page);
}

/* The page never loads anything: no URL-bearing attributes, a CSP that forbids loads. */
static void test_no_fetches(void **state)
{
	struct recs r;
	struct diag d = {""};
	char *page;

	assert_int_equal(load_jsonl(FIXTURE, &r, &d), 0);
	page = render(r.v, r.n, "fixture");
	assert_non_null(strstr(page, "content=\"default-src 'none'; script-src 'unsafe-inline'; "
				     "style-src 'unsafe-inline'; img-src data:\""));
	/* the one URL is the SVG namespace name, which is never fetched */
	assert_int_equal(count_of(page, "http://"), count_of(page, "'http://www.w3.org/2000/svg'"));
	assert_null(strstr(page, "https://"));
	assert_null(strstr(page, "src="));
	assert_null(strstr(page, "href="));
	assert_null(strstr(page, "@import"));
	assert_null(strstr(page, "url(http"));
	free(page);
	recs_free(&r);
}

/* The fixture's counts, as the browser suite expects them. */
static void test_fixture_counts(void **state)
{
	struct recs r;
	struct diag d = {""};
	char *page;

	assert_int_equal(load_jsonl(FIXTURE, &r, &d), 0);
	assert_int_equal(r.n, 22);
	page = render(r.v, r.n, "fixture");
	assert_non_null(strstr(page, "id=\"count-flows\" data-count=\"21\""));
	assert_non_null(strstr(page, "id=\"count-forwarded\" data-count=\"14\""));
	assert_non_null(strstr(page, "id=\"count-dropped\" data-count=\"7\""));
	assert_non_null(strstr(page, "id=\"count-lost\" data-count=\"3\""));
	assert_non_null(strstr(page, "data-node=\"node-1\" data-lost=\"0\""));
	assert_non_null(strstr(page, "data-node=\"node-2\" data-lost=\"3\""));
	free(page);
	recs_free(&r);
}

static void test_unwritable(void **state)
{
	json_t *v[1] = {flow_rec("node-1", "FORWARDED", "x", "a", "y", "b", 80)};
	struct diag d = {""};
	char path[160];
	int err;

	snprintf(path, sizeof(path), "%s/no-such-dir/flows.html", tmpdir);
	err = flowpage_write(path, v, 1, "t", &d);
	assert_true(err < 0);
	assert_int_equal(err, -ENOENT);
	assert_non_null(strstr(d.msg, path));
	assert_non_null(strstr(d.msg, "No such file or directory"));

	/* a directory in the way */
	memset(&d, 0, sizeof(d));
	err = flowpage_write(tmpdir, v, 1, "t", &d);
	assert_true(err < 0);
	assert_non_null(strstr(d.msg, tmpdir));

	/* a full device: the write fails at the end and leaves nothing behind */
	if (access("/dev/full", W_OK) == 0) {
		memset(&d, 0, sizeof(d));
		err = flowpage_write("/dev/full", v, 1, "t", &d);
		assert_int_equal(err, -ENOSPC);
		assert_non_null(strstr(d.msg, "/dev/full"));
	}
	json_decref(v[0]);
}

static int write_page(const char *in, const char *out, const char *title)
{
	struct recs r;
	struct diag d = {""};
	int err = load_jsonl(in, &r, &d);

	if (!err)
		err = flowpage_write(out, r.v, r.n, title, &d);
	recs_free(&r);
	if (err) {
		fprintf(stderr, "test_flowpage: %s\n", d.msg);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_embeds_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_label, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_fetches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixture_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
	};

	alarm(60); /* a test must never hang */
	if (argc >= 4 && strcmp(argv[1], "--page") == 0)
		return write_page(argv[2], argv[3], argc >= 5 ? argv[4] : "ciliate flows");
	if (argc > 1) {
		fprintf(stderr, "usage: %s [--page FLOWS.jsonl OUT.html [TITLE]]\n", argv[0]);
		return 2;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
