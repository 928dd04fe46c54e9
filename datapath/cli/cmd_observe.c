/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate observe / ciliate monitor (docs/OBSERVABILITY.md, "CLI"): the flows of every node's
 * agent through the API op "observe", like `hubble observe` and `cilium monitor`.
 *
 * observe asks each agent for its buffered flows that pass the filter, merges the nodes'
 * flows by time (then node, then sequence number), keeps the newest --last N and prints them
 * (compact, json, table) or writes the flow page (--html). With -f it keeps every agent's
 * connection open and prints flows as they arrive. monitor always follows and prints
 * cilium monitor lines. Lost events are always shown ("EVENTS LOST: ...").
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/api.h"
#include "cli.h"
#include "flow/filter.h"
#include "flow/flowpage.h"
#include "flow/render.h"

#define BACKLOG_TIMEOUT_MS 10000 /* waiting for each agent's first answer */
#define FOLLOW_POLL_MS	   200	 /* how often a follow loop looks at its stop conditions */
#define NODE_NAME_MAX	   128
#define DEFAULT_LAST	   20 /* hubble's: observe without -f, --since, --until or --html */

enum out_format { OUT_COMPACT, OUT_JSON, OUT_TABLE, OUT_MONITOR, OUT_MONITOR_JSON };

struct observe_opts {
	const char *cmd; /* "observe" or "monitor", for messages */
	const char *nodes[CLI_SOCKETS_MAX];
	size_t n_nodes;
	const char *sockets[CLI_SOCKETS_MAX];
	size_t n_sockets;
	json_t *filter; /* the filter spec the agents apply */
	long long last; /* 0: every buffered flow */
	bool last_given, all;
	bool follow;
	bool monitor; /* monitor: follow only, the backlog is not printed */
	enum out_format format;
	bool format_given;
	bool print_node;
	const char *html;
	long long max_flows; /* 0: no limit */
	double timeout_s;    /* 0: none */
};

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- options --------------------------------------------------------------------------- */

enum {
	OPT_NODE = 256,
	OPT_SOCKET,
	OPT_FROM_POD,
	OPT_TO_POD,
	OPT_POD,
	OPT_RELATED_TO,
	OPT_NAMESPACE,
	OPT_VERDICT,
	OPT_DROP_REASON,
	OPT_PROTOCOL,
	OPT_PORT,
	OPT_TYPE,
	OPT_NODE_NAME,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_LAST,
	OPT_ALL,
	OPT_HTML,
	OPT_MAX_FLOWS,
	OPT_TIMEOUT,
	OPT_PRINT_NODE,
};

/* Filter flags and the filter key each one fills (filter.h). */
static const struct {
	int opt;
	const char *flag;
	const char *key;
} filter_flags[] = {
	{OPT_FROM_POD, "--from-pod", "from_pod"},
	{OPT_TO_POD, "--to-pod", "to_pod"},
	{OPT_POD, "--pod", "pod"},
	{OPT_RELATED_TO, "--related-to", "pod"},
	{OPT_NAMESPACE, "--namespace", "namespace"},
	{OPT_VERDICT, "--verdict", "verdict"},
	{OPT_DROP_REASON, "--drop-reason", "drop_reason"},
	{OPT_PROTOCOL, "--protocol", "protocol"},
	{OPT_PORT, "--port", "port"},
	{OPT_TYPE, "--type", "type"},
	{OPT_NODE_NAME, "--node-name", "node"},
};

static void observe_usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate observe [--node NAME | --socket PATH]... [FILTERS] [--since T]\n"
		"                       [--until T] [--last N | --all] [-f [--max-flows N]\n"
		"                       [--timeout S]]\n"
		"                       [-o compact|json|jsonpb|table] [--print-node-name]\n"
		"                       [--html FILE]\n"
		"  FILTERS (repeat a flag for alternatives; different flags must all match):\n"
		"    --from-pod NS/POD|NS/  --to-pod NS/POD|NS/  --pod NS/POD|NS/  --namespace NS\n"
		"    --verdict FORWARDED|DROPPED|...  --drop-reason NAME|CODE  --protocol PROTO\n"
		"    --port N  --type drop|trace[:POINT]|policy-verdict  --node-name NAME\n"
		"  T is an RFC 3339 time or a duration before now (30s, 5m, 1h). Without -f,\n"
		"  --since, --until, --html or --all, the last %d flows are shown (--last 20).\n"
		"  Without --node/--socket every agent under %s is asked. With --html FILE the\n"
		"  flow page is written (and flows are printed only if -o is given).\n",
		DEFAULT_LAST, AGENT_RUN_ROOT);
}

static void monitor_usage(FILE *f)
{
	fprintf(f, "usage: ciliate monitor [--node NAME | --socket PATH]... "
		   "[--type drop|trace|policy-verdict]...\n"
		   "                       [--from-pod NS/POD] [--to-pod NS/POD] "
		   "[--related-to NS/POD] [-j]\n"
		   "                       [--print-node-name] [--max-events N] [--timeout S]\n"
		   "  Follows every agent (or the ones named) and prints cilium monitor lines;\n"
		   "  -j prints one JSON object per event. Stops on Ctrl-C, --max-events or "
		   "--timeout.\n");
}

static int usage_error(const struct observe_opts *o, const char *fmt, const char *arg)
{
	fprintf(stderr, "ciliate %s: ", o->cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'ciliate %s --help')\n", o->cmd);
	return EXIT_USAGE;
}

/* A filter value as JSON: ports as numbers, everything else as given. */
static json_t *filter_value(const char *key, const char *arg)
{
	char *end;
	long v;

	if (!strcmp(key, "port")) {
		v = strtol(arg, &end, 10);
		if (*arg && !*end)
			return json_integer(v);
	}
	return json_string(arg);
}

/* Adds one flag's value to the spec, after checking it alone (the message names the flag). */
static int add_filter_value(struct observe_opts *o, const char *flag, const char *key,
			    const char *arg)
{
	json_t *one = json_pack("{s:[o]}", key, filter_value(key, arg)), *list;
	struct flow_filter *f = NULL;
	struct diag d = {{0}};

	if (flow_filter_from_json(one, &f, &d)) {
		json_decref(one);
		fprintf(stderr, "ciliate %s: %s %s: %s\n", o->cmd, flag, arg, d.msg);
		return EXIT_USAGE;
	}
	flow_filter_free(f);
	list = json_object_get(o->filter, key);
	if (!list) {
		json_object_set(o->filter, key, json_object_get(one, key));
	} else {
		json_array_extend(list, json_object_get(one, key));
	}
	json_decref(one);
	return 0;
}

static int add_filter_flag(struct observe_opts *o, int opt, const char *arg)
{
	for (size_t i = 0; i < sizeof(filter_flags) / sizeof(filter_flags[0]); i++)
		if (filter_flags[i].opt == opt)
			return add_filter_value(o, filter_flags[i].flag, filter_flags[i].key, arg);
	return -1; /* not a filter flag */
}

/* --since / --until: an RFC 3339 time, or a duration before now. */
static int add_time_flag(struct observe_opts *o, const char *key, const char *arg)
{
	struct timespec ts;
	int64_t ns, d;
	char when[64];

	if (flow_time_parse(arg, &ns)) {
		if (flow_duration_parse(arg, &d)) {
			fprintf(stderr,
				"ciliate %s: --%s %s: expected an RFC 3339 time "
				"(2026-12-04T17:40:00Z) or a duration before now (30s, 5m, 1h)\n",
				o->cmd, key, arg);
			return EXIT_USAGE;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - d;
	}
	flow_time_format(ns, when, sizeof(when));
	json_object_set_new(o->filter, key, json_string(when));
	return 0;
}

static int parse_count(const struct observe_opts *o, const char *flag, const char *arg,
		       long long min, long long *out)
{
	char *end;
	long long v = strtoll(arg, &end, 10);

	if (!*arg || *end || v < min) {
		fprintf(stderr, "ciliate %s: %s %s: expected a whole number >= %lld\n", o->cmd,
			flag, arg, min);
		return EXIT_USAGE;
	}
	*out = v;
	return 0;
}

static int parse_seconds(const struct observe_opts *o, const char *arg, double *out)
{
	char *end;
	double v = strtod(arg, &end);

	if (!*arg || *end || !(v > 0) || v > 31536000) {
		fprintf(stderr, "ciliate %s: --timeout %s: expected seconds > 0\n", o->cmd, arg);
		return EXIT_USAGE;
	}
	*out = v;
	return 0;
}

static int parse_output(struct observe_opts *o, const char *arg)
{
	if (!strcmp(arg, "compact"))
		o->format = OUT_COMPACT;
	else if (!strcmp(arg, "json") || !strcmp(arg, "jsonpb"))
		o->format = OUT_JSON;
	else if (!strcmp(arg, "table") || !strcmp(arg, "tab"))
		o->format = OUT_TABLE;
	else
		return usage_error(o, "-o %s: expected compact, json, jsonpb or table", arg);
	o->format_given = true;
	return 0;
}

static int add_target(struct observe_opts *o, int opt, const char *arg)
{
	if (o->n_nodes + o->n_sockets >= CLI_SOCKETS_MAX)
		return usage_error(o, "too many --node/--socket (at most %s)", "256");
	if (opt == OPT_NODE)
		o->nodes[o->n_nodes++] = arg;
	else
		o->sockets[o->n_sockets++] = arg;
	return 0;
}

/* Options both commands share; returns -1 for an option it does not know. */
static int parse_common(struct observe_opts *o, int c, const char *arg)
{
	int rc = add_filter_flag(o, c, arg);

	if (rc >= 0)
		return rc;
	switch (c) {
	case OPT_NODE:
	case OPT_SOCKET:
		return add_target(o, c, arg);
	case OPT_PRINT_NODE:
		o->print_node = true;
		return 0;
	case OPT_TIMEOUT:
		return parse_seconds(o, arg, &o->timeout_s);
	}
	return -1;
}

static const struct option observe_long[] = {
	{"node", required_argument, NULL, OPT_NODE},
	{"socket", required_argument, NULL, OPT_SOCKET},
	{"from-pod", required_argument, NULL, OPT_FROM_POD},
	{"to-pod", required_argument, NULL, OPT_TO_POD},
	{"pod", required_argument, NULL, OPT_POD},
	{"namespace", required_argument, NULL, OPT_NAMESPACE},
	{"verdict", required_argument, NULL, OPT_VERDICT},
	{"drop-reason", required_argument, NULL, OPT_DROP_REASON},
	{"protocol", required_argument, NULL, OPT_PROTOCOL},
	{"port", required_argument, NULL, OPT_PORT},
	{"type", required_argument, NULL, OPT_TYPE},
	{"node-name", required_argument, NULL, OPT_NODE_NAME},
	{"since", required_argument, NULL, OPT_SINCE},
	{"until", required_argument, NULL, OPT_UNTIL},
	{"last", required_argument, NULL, OPT_LAST},
	{"all", no_argument, NULL, OPT_ALL},
	{"follow", no_argument, NULL, 'f'},
	{"output", required_argument, NULL, 'o'},
	{"html", required_argument, NULL, OPT_HTML},
	{"max-flows", required_argument, NULL, OPT_MAX_FLOWS},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"print-node-name", no_argument, NULL, OPT_PRINT_NODE},
	{"help", no_argument, NULL, 'h'},
	{0},
};

static int parse_observe_option(struct observe_opts *o, int c, const char *arg)
{
	int rc = parse_common(o, c, arg);

	if (rc >= 0)
		return rc;
	switch (c) {
	case OPT_SINCE:
		return add_time_flag(o, "since", arg);
	case OPT_UNTIL:
		return add_time_flag(o, "until", arg);
	case OPT_LAST:
		o->last_given = true;
		return parse_count(o, "--last", arg, 1, &o->last);
	case OPT_ALL:
		o->all = true;
		return 0;
	case 'f':
		o->follow = true;
		return 0;
	case 'o':
		return parse_output(o, arg);
	case OPT_HTML:
		o->html = arg;
		return 0;
	case OPT_MAX_FLOWS:
		return parse_count(o, "--max-flows", arg, 1, &o->max_flows);
	case 'h':
		observe_usage(stdout);
		exit(EXIT_OK);
	}
	return EXIT_USAGE; /* getopt printed why */
}

static int check_observe_options(struct observe_opts *o)
{
	if (!o->follow && (o->max_flows || o->timeout_s))
		return usage_error(o, "%s needs -f", o->max_flows ? "--max-flows" : "--timeout");
	if (o->all && o->last_given)
		return usage_error(o, "%s: give --last N or --all, not both", "--all");
	/* like hubble: a bare `observe` shows the newest few, not the whole buffer */
	if (!o->last_given && !o->all && !o->follow && !o->html &&
	    !json_object_get(o->filter, "since") && !json_object_get(o->filter, "until"))
		o->last = DEFAULT_LAST;
	return 0;
}

static int parse_observe_args(int argc, char **argv, struct observe_opts *o)
{
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "fo:h", observe_long, NULL)) != -1) {
		rc = parse_observe_option(o, c, optarg);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return usage_error(o, "unexpected argument \"%s\"", argv[optind]);
	return check_observe_options(o);
}

static const struct option monitor_long[] = {
	{"node", required_argument, NULL, OPT_NODE},
	{"socket", required_argument, NULL, OPT_SOCKET},
	{"type", required_argument, NULL, OPT_TYPE},
	{"from-pod", required_argument, NULL, OPT_FROM_POD},
	{"to-pod", required_argument, NULL, OPT_TO_POD},
	{"related-to", required_argument, NULL, OPT_RELATED_TO},
	{"json", no_argument, NULL, 'j'},
	{"max-events", required_argument, NULL, OPT_MAX_FLOWS},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"print-node-name", no_argument, NULL, OPT_PRINT_NODE},
	{"help", no_argument, NULL, 'h'},
	{0},
};

static int parse_monitor_option(struct observe_opts *o, int c, const char *arg)
{
	int rc = parse_common(o, c, arg);

	if (rc >= 0)
		return rc;
	switch (c) {
	case 'j':
		o->format = OUT_MONITOR_JSON;
		return 0;
	case OPT_MAX_FLOWS:
		return parse_count(o, "--max-events", arg, 1, &o->max_flows);
	case 'h':
		monitor_usage(stdout);
		exit(EXIT_OK);
	}
	return EXIT_USAGE;
}

static int parse_monitor_args(int argc, char **argv, struct observe_opts *o)
{
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", monitor_long, NULL)) != -1) {
		rc = parse_monitor_option(o, c, optarg);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return usage_error(o, "unexpected argument \"%s\"", argv[optind]);
	return 0;
}

/* ---- the agents to ask ----------------------------------------------------------------- */

static size_t resolve_sockets(const struct observe_opts *o, char (*out)[CLI_SOCKET_PATH_MAX])
{
	size_t n = 0, i;

	if (!o->n_nodes && !o->n_sockets)
		return cli_agent_sockets(NULL, NULL, out);
	for (i = 0; i < o->n_sockets; i++)
		n += cli_agent_sockets(NULL, o->sockets[i], out + n);
	for (i = 0; i < o->n_nodes; i++)
		n += cli_agent_sockets(o->nodes[i], NULL, out + n);
	return n;
}

static json_t *observe_request(const struct observe_opts *o, bool follow, long long last)
{
	return json_pack("{s:s,s:I,s:I,s:b,s:O}", "op", AGENT_OP_OBSERVE, "since_seq",
			 (json_int_t)0, "last", (json_int_t)last, "follow", follow, "filter",
			 o->filter);
}

/* ---- records: flows and lost_events, merged across nodes ------------------------------- */

struct record {
	json_t *j;
	int64_t time;
	const char *node;
	long long seq;
};

struct records {
	struct record *v;
	size_t n, cap;
};

static int records_add(struct records *r, json_t *j)
{
	struct record *v;
	const char *node = json_string_value(json_object_get(j, "node_name"));

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		v = realloc(r->v, r->cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->v = v;
	}
	r->v[r->n++] = (struct record){
		.j = json_incref(j),
		.time = flow_record_time(j),
		.node = node ? node : "",
		.seq = json_integer_value(json_object_get(
			json_object_get(json_object_get(j, "flow"), "ciliate"), "seq")),
	};
	return 0;
}

static int record_cmp(const void *x, const void *y)
{
	const struct record *a = x, *b = y;
	int c;

	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	c = strcmp(a->node, b->node);
	if (c)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Keeps the newest `last` flows (lost_events records are always kept). */
static void records_keep_last(struct records *r, long long last)
{
	size_t flows = 0, i, k = 0;

	for (i = r->n; i-- > 0;) {
		bool lost = flow_is_lost_record(r->v[i].j);

		if (!lost && last && (long long)flows >= last) {
			json_decref(r->v[i].j);
			r->v[i].j = NULL;
			continue;
		}
		flows += !lost;
	}
	for (i = 0; i < r->n; i++)
		if (r->v[i].j)
			r->v[k++] = r->v[i];
	r->n = k;
}

static void records_free(struct records *r)
{
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->v[i].j);
	free(r->v);
	*r = (struct records){0};
}

/* ---- printing -------------------------------------------------------------------------- */

struct node_lost {
	char name[NODE_NAME_MAX];
	long long total; /* the agent's "lost" */
	long long shown; /* lost_events records printed */
};

struct printer {
	const struct observe_opts *o;
	bool to_stdout;
	struct flow_table *table;
	json_t *page; /* records kept for --html */
	long long flows;
	struct node_lost nodes[CLI_SOCKETS_MAX];
	size_t n_nodes;
};

static struct node_lost *node_lost_of(struct printer *p, const char *name)
{
	struct node_lost *nl;

	for (size_t i = 0; i < p->n_nodes; i++)
		if (!strcmp(p->nodes[i].name, name))
			return &p->nodes[i];
	if (p->n_nodes == CLI_SOCKETS_MAX)
		return &p->nodes[CLI_SOCKETS_MAX - 1];
	nl = &p->nodes[p->n_nodes++];
	snprintf(nl->name, sizeof(nl->name), "%s", name);
	return nl;
}

static bool json_output(const struct printer *p)
{
	return p->o->format == OUT_JSON || p->o->format == OUT_MONITOR_JSON;
}

/* Runs a formatter into a stack buffer, or a heap one when the line is longer. */
static void print_formatted(const struct printer *p, const json_t *w)
{
	struct flow_render_opts ro = {.node_name = p->o->print_node};
	char small[2048], *buf = small;
	size_t size = sizeof(small), need;

	for (int pass = 0; pass < 2; pass++) {
		if (p->o->format == OUT_MONITOR)
			need = flow_format_monitor(w, buf, size);
		else
			need = flow_format_compact(w, &ro, buf, size);
		if (need < size || pass)
			break;
		buf = malloc(need + 1);
		if (!buf)
			return;
		size = need + 1;
	}
	if (p->o->format == OUT_MONITOR && p->o->print_node && !flow_is_lost_record(w))
		printf("[%s] ", json_string_value(json_object_get(w, "node_name")) ?: "?");
	printf("%s\n", buf);
	if (buf != small)
		free(buf);
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (s)
		printf("%s\n", s);
	free(s);
}

static void print_record(struct printer *p, const json_t *w, const char *raw)
{
	json_t *mj;

	switch (p->o->format) {
	case OUT_JSON:
		if (raw)
			printf("%s\n", raw);
		else
			print_json(w);
		break;
	case OUT_TABLE:
		flow_table_add(p->table, w);
		break;
	case OUT_MONITOR_JSON:
		mj = flow_monitor_json(w);
		if (mj)
			print_json(mj);
		json_decref(mj);
		break;
	case OUT_COMPACT:
	case OUT_MONITOR:
		print_formatted(p, w);
		break;
	}
}

/* One record received from an agent (raw: its line as received, when there is one). */
static void printer_emit(struct printer *p, json_t *w, const char *raw)
{
	const char *node = json_string_value(json_object_get(w, "node_name")) ?: "unknown";

	if (flow_is_lost_record(w))
		node_lost_of(p, node)->shown += json_integer_value(
			json_object_get(json_object_get(w, "lost_events"), "num_events_lost"));
	else if (json_object_get(w, "flow"))
		p->flows++;
	else
		return; /* neither a flow nor lost events: not ours to show */
	if (p->page)
		json_array_append(p->page, w);
	if (p->to_stdout)
		print_record(p, w, raw);
}

static void printer_flush(struct printer *p)
{
	if (p->table)
		flow_table_print_pending(p->table, stdout);
	fflush(stdout);
}

/* Lost events an agent counted that no lost_events record showed: printed, never hidden
 * (on stderr in the JSON formats, so stdout stays one JSON object per line). */
static void printer_show_unshown_lost(struct printer *p)
{
	char line[256];

	printer_flush(p);
	for (size_t i = 0; i < p->n_nodes; i++) {
		struct node_lost *nl = &p->nodes[i];

		if (nl->total <= nl->shown)
			continue;
		snprintf(line, sizeof(line), "EVENTS LOST: %lld events lost on node %s",
			 nl->total - nl->shown, nl->name);
		nl->shown = nl->total;
		if (json_output(p))
			fprintf(stderr, "ciliate %s: %s\n", p->o->cmd, line);
		else if (p->to_stdout || p->o->html)
			printf("%s\n", line);
	}
	fflush(stdout);
}

static void printer_init(struct printer *p, const struct observe_opts *o)
{
	*p = (struct printer){.o = o, .to_stdout = !o->html || o->format_given};
	if (o->format == OUT_TABLE)
		p->table = flow_table_new();
	if (o->html)
		p->page = json_array();
}

static int printer_write_page(struct printer *p)
{
	size_t n = json_array_size(p->page), i;
	json_t **v = calloc(n ? n : 1, sizeof(*v));
	struct diag d = {{0}};
	char title[300];
	int rc;

	if (!v)
		return EXIT_FAILURE_;
	for (i = 0; i < n; i++)
		v[i] = json_array_get(p->page, i);
	snprintf(title, sizeof(title), "ciliate observe: %lld flows from %zu node(s)", p->flows,
		 p->n_nodes);
	rc = flowpage_write(p->o->html, v, n, title, &d);
	free(v);
	if (rc) {
		fprintf(stderr, "ciliate %s: --html %s: %s\n", p->o->cmd, p->o->html, d.msg);
		return EXIT_FAILURE_;
	}
	fprintf(stderr, "ciliate %s: wrote %s (%lld flows)\n", p->o->cmd, p->o->html, p->flows);
	return 0;
}

static void printer_free(struct printer *p)
{
	flow_table_free(p->table);
	json_decref(p->page);
}

/* An agent's answer: its node, lost count and flows. Returns false for a failure. */
static bool take_response(struct printer *p, struct records *r, json_t *resp, const char *sock)
{
	const char *node = json_string_value(json_object_get(resp, "node")) ?: sock;
	json_t *flows = json_object_get(resp, "flows"), *w;
	size_t i;

	if (!json_is_true(json_object_get(resp, "ok"))) {
		fprintf(stderr, "ciliate %s: %s: %s\n", p->o->cmd, sock,
			json_string_value(json_object_get(resp, "error")) ?: "request failed");
		return false;
	}
	node_lost_of(p, node)->total = json_integer_value(json_object_get(resp, "lost"));
	json_array_foreach(flows, i, w)
	{
		if (!p->o->monitor)
			records_add(r, w);
	}
	return true;
}

/* Prints the merged backlog: by time, then node, then sequence; the newest --last. */
static void print_backlog(struct printer *p, struct records *r)
{
	qsort(r->v, r->n, sizeof(*r->v), record_cmp);
	records_keep_last(r, p->o->last);
	for (size_t i = 0; i < r->n; i++) {
		if (p->o->max_flows && p->flows >= p->o->max_flows &&
		    !flow_is_lost_record(r->v[i].j))
			continue;
		printer_emit(p, r->v[i].j, NULL);
	}
	printer_show_unshown_lost(p);
}

/* ---- observe without -f ---------------------------------------------------------------- */

static int observe_once(const struct observe_opts *o, char (*socks)[CLI_SOCKET_PATH_MAX], size_t n)
{
	struct records r = {0};
	struct printer p;
	json_t *req = observe_request(o, false, o->last), *resp;
	size_t answered = 0, i;
	char err[600];
	int rc = 0;

	printer_init(&p, o);
	for (i = 0; i < n; i++) {
		if (agent_call(socks[i], req, AGENT_DEFAULT_TIMEOUT_MS, &resp, err, sizeof(err))) {
			fprintf(stderr, "ciliate %s: %s\n", o->cmd, err);
			continue;
		}
		answered += take_response(&p, &r, resp, socks[i]);
		json_decref(resp);
	}
	json_decref(req);
	if (!answered) {
		fprintf(stderr, "ciliate %s: no agent answered\n", o->cmd);
		rc = EXIT_FAILURE_;
	} else {
		print_backlog(&p, &r);
		if (o->html)
			rc = printer_write_page(&p);
	}
	records_free(&r);
	printer_free(&p);
	return rc;
}

/* ---- following: one open connection per agent ----------------------------------------- */

struct conn {
	const char *path;
	int fd;
	char *buf;
	size_t len, off, cap;
	bool answered;
};

#define CONNECT_TIMEOUT_MS 2000

/* Waits until fd can take events or the deadline passes; false on timeout. */
static bool wait_ready(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left;

	while ((left = deadline - now_ms()) > 0) {
		if (poll(&p, 1, (int)left) > 0)
			return true;
	}
	return false;
}

/* A non-blocking connect that retries while the agent's backlog is full (EAGAIN). */
static int connect_bounded(int fd, const struct sockaddr_un *sa, int64_t deadline)
{
	while (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		if (errno == EINPROGRESS)
			return wait_ready(fd, POLLOUT, deadline) ? 0 : -ETIMEDOUT;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(10000);
	}
	return 0;
}

static int send_bounded(int fd, const char *buf, size_t len, int64_t deadline)
{
	size_t off = 0;
	ssize_t w;

	while (off < len) {
		w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (!wait_ready(fd, POLLOUT, deadline))
			return -ETIMEDOUT;
	}
	return 0;
}

/* Connects to the agent at path and sends req; the connection is left non-blocking. */
static int conn_open(struct conn *c, const char *path, const json_t *req, char *err, size_t errsize)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
	char *line = json_dumps(req, JSON_COMPACT);
	size_t len;
	int rc;

	*c = (struct conn){.path = path, .fd = -1};
	if (!line || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errsize, "%s: cannot build the request", path);
		free(line);
		return -1;
	}
	strcpy(sa.sun_path, path);
	len = strlen(line);
	line[len++] = '\n'; /* json_dumps's NUL becomes the line end */
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	rc = c->fd < 0 ? -errno : connect_bounded(c->fd, &sa, deadline);
	if (rc)
		snprintf(err, errsize, "connecting to the agent at %s: %s", path, strerror(-rc));
	else if ((rc = send_bounded(c->fd, line, len, deadline)))
		snprintf(err, errsize, "writing to the agent at %s: %s", path, strerror(-rc));
	free(line);
	return rc ? -1 : 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->off = c->cap = 0;
}

/* Makes room for reading: drops consumed bytes, grows up to AGENT_LINE_MAX. */
static bool conn_make_room(struct conn *c)
{
	char *b;

	if (c->off) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->cap - c->len > 4096)
		return true;
	if (c->cap >= AGENT_LINE_MAX + 8192)
		return false;
	b = realloc(c->buf, c->cap ? c->cap * 2 : 65536);
	if (!b)
		return false;
	c->buf = b;
	c->cap = c->cap ? c->cap * 2 : 65536;
	return true;
}

/* Reads what the socket has. Returns 0, or -1 when the agent closed it or it failed. */
static int conn_read(struct conn *c)
{
	ssize_t r;

	for (;;) {
		if (!conn_make_room(c))
			return -1;
		r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
		if (r > 0) {
			c->len += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
}

/* The next complete line (terminated in place), or NULL. */
static char *conn_next_line(struct conn *c)
{
	char *start = c->buf + c->off, *nl;

	if (c->off >= c->len)
		return NULL;
	nl = memchr(start, '\n', c->len - c->off);
	if (!nl)
		return NULL;
	*nl = '\0';
	c->off = (size_t)(nl - c->buf) + 1;
	return start;
}

struct follow {
	const struct observe_opts *o;
	struct conn conns[CLI_SOCKETS_MAX];
	size_t n, open;
	struct printer p;
	int64_t deadline; /* --timeout; 0: none */
};

static bool follow_should_stop(const struct follow *f)
{
	return stop_signal || (f->deadline && now_ms() >= f->deadline) ||
	       (f->o->max_flows && f->p.flows >= f->o->max_flows) || ferror(stdout);
}

/* Waits for readable connections (those still expecting their first answer only, when
 * backlog). Returns how many entries pfd holds (look at their revents) or 0 when none is
 * ready. */
static int follow_poll(struct follow *f, bool backlog, int timeout_ms, struct pollfd *pfd,
		       size_t *idx)
{
	size_t k = 0;

	for (size_t i = 0; i < f->n; i++) {
		if (f->conns[i].fd < 0 || (backlog && f->conns[i].answered))
			continue;
		pfd[k] = (struct pollfd){.fd = f->conns[i].fd, .events = POLLIN};
		idx[k++] = i;
	}
	if (!k || poll(pfd, k, timeout_ms) <= 0)
		return 0;
	return (int)k;
}

static void follow_drop_conn(struct follow *f, struct conn *c, const char *why)
{
	fprintf(stderr, "ciliate %s: %s: %s\n", f->o->cmd, c->path, why);
	conn_close(c);
	f->open--;
}

/* Phase 1: every agent's first answer (the backlog), at most BACKLOG_TIMEOUT_MS. */
static void follow_collect_backlog(struct follow *f, struct records *r)
{
	struct pollfd pfd[CLI_SOCKETS_MAX];
	size_t idx[CLI_SOCKETS_MAX], waiting = f->open;
	int64_t end = now_ms() + BACKLOG_TIMEOUT_MS;
	json_t *resp;
	char *line;

	while (waiting && !stop_signal && now_ms() < end) {
		int k = follow_poll(f, true, (int)(end - now_ms()), pfd, idx);

		for (int j = 0; j < k; j++) {
			struct conn *c = &f->conns[idx[j]];

			if (!pfd[j].revents)
				continue;
			if (conn_read(c) && !memchr(c->buf + c->off, '\n', c->len - c->off)) {
				follow_drop_conn(f, c, "closed before answering");
				waiting--;
				continue;
			}
			line = conn_next_line(c);
			if (!line)
				continue;
			c->answered = true;
			waiting--;
			resp = json_loads(line, 0, NULL);
			if (!resp || !take_response(&f->p, r, resp, c->path)) {
				conn_close(c);
				f->open--;
			}
			json_decref(resp);
		}
	}
	for (size_t i = 0; i < f->n; i++)
		if (f->conns[i].fd >= 0 && !f->conns[i].answered)
			follow_drop_conn(f, &f->conns[i], "no answer in time");
}

/* Prints every complete line the connection holds. */
static void follow_print_lines(struct follow *f, struct conn *c)
{
	json_t *w;
	char *line;

	while (!follow_should_stop(f) && (line = conn_next_line(c))) {
		w = json_loads(line, 0, NULL);
		if (!w) {
			fprintf(stderr, "ciliate %s: %s: malformed line skipped\n", f->o->cmd,
				c->path);
			continue;
		}
		printer_emit(&f->p, w, line);
		json_decref(w);
	}
}

/* Phase 2: flows as they come, until a stop condition or every agent is gone. */
static void follow_stream(struct follow *f)
{
	struct pollfd pfd[CLI_SOCKETS_MAX];
	size_t idx[CLI_SOCKETS_MAX];

	for (size_t i = 0; i < f->n; i++)
		if (f->conns[i].fd >= 0)
			follow_print_lines(f, &f->conns[i]);
	printer_flush(&f->p);
	while (f->open && !follow_should_stop(f)) {
		int k = follow_poll(f, false, FOLLOW_POLL_MS, pfd, idx);

		for (int j = 0; j < k; j++) {
			struct conn *c = &f->conns[idx[j]];

			if (!pfd[j].revents)
				continue;
			if (conn_read(c)) {
				follow_print_lines(f, c);
				follow_drop_conn(f, c, "the agent closed the stream");
				continue;
			}
			follow_print_lines(f, c);
		}
		printer_flush(&f->p);
	}
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Node names sorted: the agents answer in any order, the line should not vary. */
static void follow_announce(const struct follow *f)
{
	const char *names[CLI_SOCKETS_MAX];
	size_t n = 0;

	for (size_t i = 0; i < f->p.n_nodes && n < CLI_SOCKETS_MAX; i++)
		names[n++] = f->p.nodes[i].name;
	qsort(names, n, sizeof(names[0]), cmp_name);
	fprintf(stderr, "Listening for events on %zu node(s):", f->open);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %s", names[i]);
	fprintf(stderr, "\nPress Ctrl-C to quit\n");
}

static void install_stop_handlers(void)
{
	struct sigaction sa = {.sa_handler = on_stop_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int follow_open_all(struct follow *f, char (*socks)[CLI_SOCKET_PATH_MAX], size_t n)
{
	/* monitor prints no backlog: ask for one flow, the least the API allows */
	json_t *req = observe_request(f->o, true, f->o->monitor ? 1 : f->o->last);
	char err[600];

	for (size_t i = 0; i < n; i++) {
		if (conn_open(&f->conns[f->n], socks[i], req, err, sizeof(err))) {
			fprintf(stderr, "ciliate %s: %s\n", f->o->cmd, err);
			conn_close(&f->conns[f->n]);
			continue;
		}
		f->n++;
		f->open++;
	}
	json_decref(req);
	return f->open ? 0 : -1;
}

static int observe_follow(const struct observe_opts *o, char (*socks)[CLI_SOCKET_PATH_MAX],
			  size_t n)
{
	struct follow *f = calloc(1, sizeof(*f));
	struct records r = {0};
	int rc = 0;

	if (!f)
		return EXIT_FAILURE_;
	f->o = o;
	printer_init(&f->p, o);
	install_stop_handlers();
	if (o->timeout_s)
		f->deadline = now_ms() + (int64_t)(o->timeout_s * 1000);
	if (!follow_open_all(f, socks, n))
		follow_collect_backlog(f, &r);
	if (!f->open && !stop_signal) {
		fprintf(stderr, "ciliate %s: no agent answered\n", o->cmd);
		rc = EXIT_FAILURE_;
	} else {
		if (o->monitor)
			follow_announce(f);
		print_backlog(&f->p, &r);
		follow_stream(f);
		printer_show_unshown_lost(&f->p);
		if (o->html)
			rc = printer_write_page(&f->p);
	}
	for (size_t i = 0; i < f->n; i++)
		conn_close(&f->conns[i]);
	records_free(&r);
	printer_free(&f->p);
	free(f);
	return rc;
}

/* ---- the commands ---------------------------------------------------------------------- */

static int run(struct observe_opts *o)
{
	static char socks[CLI_SOCKETS_MAX][CLI_SOCKET_PATH_MAX];
	size_t n = resolve_sockets(o, socks);

	if (!n) {
		fprintf(stderr,
			"ciliate %s: no agent socket under %s (is a node running? give --node or "
			"--socket)\n",
			o->cmd, AGENT_RUN_ROOT);
		return EXIT_FAILURE_;
	}
	return o->follow ? observe_follow(o, socks, n) : observe_once(o, socks, n);
}

int cmd_observe(int argc, char **argv)
{
	struct observe_opts o = {.cmd = "observe", .filter = json_object()};
	int rc = parse_observe_args(argc, argv, &o);

	if (!rc)
		rc = run(&o);
	json_decref(o.filter);
	return rc;
}

int cmd_monitor(int argc, char **argv)
{
	struct observe_opts o = {.cmd = "monitor",
				 .filter = json_object(),
				 .follow = true,
				 .monitor = true,
				 .format = OUT_MONITOR};
	int rc = parse_monitor_args(argc, argv, &o);

	if (!rc)
		rc = run(&o);
	json_decref(o.filter);
	return rc;
}
