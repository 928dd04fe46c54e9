/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wrapped flows as text (render.h): cilium monitor lines and -j objects, hubble compact
 * lines and table rows, lost-event lines, and the time helpers. Everything is read from the
 * flow JSON of docs/OBSERVABILITY.md; ciliate-only values come from its "ciliate" object.
 */
#include "render.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/names.h"

#define NS_PER_SEC 1000000000LL

/* Hubble's event type numbers (event_type.type). */
#define EVENT_TYPE_DROP	   1
#define EVENT_TYPE_TRACE   4
#define EVENT_TYPE_VERDICT 5

/* ---- an output buffer with snprintf semantics ------------------------------------------ */

struct text {
	char *buf;
	size_t size;
	size_t len; /* what the whole text needs, even past size */
};

static struct text text_init(char *buf, size_t size)
{
	if (size)
		buf[0] = '\0';
	return (struct text){.buf = buf, .size = size};
}

__attribute__((format(printf, 2, 3))) static void text_printf(struct text *t, const char *fmt, ...)
{
	size_t room = t->len < t->size ? t->size - t->len : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n;
}

/* ---- JSON field access ----------------------------------------------------------------- */

static const char *str_at(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static const char *str_or(const json_t *obj, const char *key, const char *dflt)
{
	const char *s = str_at(obj, key);

	return s && *s ? s : dflt;
}

static long long int_at(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

static const json_t *ciliate_ext(const json_t *flow)
{
	return json_object_get(flow, "ciliate");
}

static int event_type(const json_t *flow)
{
	return (int)int_at(json_object_get(flow, "event_type"), "type");
}

bool flow_is_lost_record(const json_t *wrapped)
{
	return json_is_object(json_object_get(wrapped, "lost_events"));
}

/* ---- time ------------------------------------------------------------------------------ */

/* Reads exactly n digits. */
static bool read_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool read_char(const char **p, const char *choices)
{
	if (!**p || !strchr(choices, **p))
		return false;
	(*p)++;
	return true;
}

/* ".123456789": nanoseconds (digits past the ninth are read and ignored). */
static bool read_fraction(const char **p, long long *ns)
{
	long long scale = NS_PER_SEC / 10;
	int digits = 0;

	*ns = 0;
	if (**p != '.')
		return true;
	for ((*p)++; **p >= '0' && **p <= '9'; (*p)++, digits++) {
		*ns += (**p - '0') * scale;
		scale /= 10;
	}
	return digits > 0;
}

/* "Z" or "+HH:MM" / "-HH:MM": the offset east of UTC in seconds. */
static bool read_zone(const char **p, int *offset)
{
	int hh, mm, sign;

	if (read_char(p, "Zz")) {
		*offset = 0;
		return true;
	}
	sign = **p == '-' ? -1 : 1;
	if (!read_char(p, "+-") || !read_digits(p, 2, &hh) || !read_char(p, ":") ||
	    !read_digits(p, 2, &mm) || hh > 23 || mm > 59)
		return false;
	*offset = sign * (hh * 3600 + mm * 60);
	return true;
}

static bool valid_date(const struct tm *tm)
{
	struct tm check = *tm, back;
	time_t t = timegm(&check);

	/* timegm normalises (Feb 30 -> Mar 2): a real date survives the round trip */
	return gmtime_r(&t, &back) && back.tm_mday == tm->tm_mday && back.tm_mon == tm->tm_mon;
}

int flow_time_parse(const char *s, int64_t *ns)
{
	struct tm tm = {0};
	long long frac;
	int offset;
	const char *p = s;

	if (!s || !read_digits(&p, 4, &tm.tm_year) || !read_char(&p, "-") ||
	    !read_digits(&p, 2, &tm.tm_mon) || !read_char(&p, "-") ||
	    !read_digits(&p, 2, &tm.tm_mday) || !read_char(&p, "Tt ") ||
	    !read_digits(&p, 2, &tm.tm_hour) || !read_char(&p, ":") ||
	    !read_digits(&p, 2, &tm.tm_min) || !read_char(&p, ":") ||
	    !read_digits(&p, 2, &tm.tm_sec) || !read_fraction(&p, &frac) ||
	    !read_zone(&p, &offset) || *p)
		return -EINVAL;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if (!valid_date(&tm))
		return -EINVAL;
	*ns = ((int64_t)timegm(&tm) - offset) * NS_PER_SEC + frac;
	return 0;
}

void flow_time_format(int64_t ns, char *buf, size_t size)
{
	time_t sec = (time_t)(ns / NS_PER_SEC);
	long frac = (long)(ns % NS_PER_SEC);
	struct tm tm;

	if (frac < 0) {
		frac += NS_PER_SEC;
		sec--;
	}
	gmtime_r(&sec, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static long long unit_ns(const char **p)
{
	static const struct {
		const char *name;
		long long ns;
	} units[] = {{"ns", 1},
		     {"us", 1000},
		     {"ms", 1000000},
		     {"s", NS_PER_SEC},
		     {"m", 60 * NS_PER_SEC},
		     {"h", 3600 * NS_PER_SEC},
		     {"d", 86400 * NS_PER_SEC}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t n = strlen(units[i].name);

		/* "m" must not take the "m" of "ms" */
		if (!strncmp(*p, units[i].name, n) && !(n == 1 && (*p)[1] == 's')) {
			*p += n;
			return units[i].ns;
		}
	}
	return 0;
}

int flow_duration_parse(const char *s, int64_t *ns)
{
	const char *p = s;
	double total = 0, v;
	long long unit;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	while (*p) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = strtod(p, &end);
		p = end;
		unit = unit_ns(&p);
		if (!unit)
			return -EINVAL;
		total += v * (double)unit;
		if (total > 9.2e18)
			return -EINVAL;
	}
	*ns = (int64_t)total;
	return 0;
}

int64_t flow_record_time(const json_t *wrapped)
{
	const char *s = str_at(wrapped, "time");
	int64_t ns;

	if (!s)
		s = str_at(json_object_get(wrapped, "flow"), "time");
	return s && !flow_time_parse(s, &ns) ? ns : 0;
}

size_t flow_format_timestamp(int64_t ns, char *buf, size_t size)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct text t = text_init(buf, size);
	time_t sec = (time_t)(ns / NS_PER_SEC);
	struct tm tm;

	if (ns <= 0 || !gmtime_r(&sec, &tm)) {
		text_printf(&t, "N/A");
		return t.len;
	}
	/* Go's time.StampMilli, "Jan _2 15:04:05.000", in UTC like hubble */
	text_printf(&t, "%s %2d %02d:%02d:%02d.%03lld", months[tm.tm_mon], tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (long long)(ns % NS_PER_SEC) / 1000000);
	return t.len;
}

/* ---- the 5-tuple ----------------------------------------------------------------------- */

struct l4_info {
	const char *name; /* the l4 key: "TCP", "UDP", "ICMPv4", "ICMPv6", "SCTP"; NULL: none */
	const json_t *obj;
	unsigned int proto; /* IP protocol number */
	long long sport, dport;
	bool has_ports;
};

static struct l4_info flow_l4_info(const json_t *flow)
{
	static const struct {
		const char *name;
		unsigned int proto;
		bool ports;
	} kinds[] = {{"TCP", 6, true},
		     {"UDP", 17, true},
		     {"SCTP", 132, true},
		     {"ICMPv4", 1, false},
		     {"ICMPv6", 58, false}};
	const json_t *l4 = json_object_get(flow, "l4");
	struct l4_info li = {0};

	for (size_t i = 0; l4 && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		li.obj = json_object_get(l4, kinds[i].name);
		if (!li.obj)
			continue;
		li.name = kinds[i].name;
		li.proto = kinds[i].proto;
		li.has_ports = kinds[i].ports;
		if (li.has_ports) {
			li.sport = int_at(li.obj, "source_port");
			li.dport = int_at(li.obj, "destination_port");
		}
		return li;
	}
	return li;
}

static const char *flow_ip(const json_t *flow, const char *key)
{
	return str_or(json_object_get(flow, "IP"), key, "");
}

static bool flow_is_ipv6(const json_t *flow)
{
	const char *v = str_at(json_object_get(flow, "IP"), "ipVersion");

	return (v && !strcmp(v, "IPv6")) || strchr(flow_ip(flow, "source"), ':');
}

static uint32_t fnv1a(uint32_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t hash_endpoint(uint32_t h, const char *ip, long long port)
{
	unsigned char pb[2] = {(unsigned char)(port >> 8), (unsigned char)port};

	h = fnv1a(h, ip, strlen(ip) + 1);
	return fnv1a(h, pb, sizeof(pb));
}

uint32_t flow_hash(const json_t *flow)
{
	struct l4_info li = flow_l4_info(flow);
	const char *a = flow_ip(flow, "source"), *b = flow_ip(flow, "destination");
	long long pa = li.sport, pb = li.dport;
	unsigned char proto = (unsigned char)li.proto;
	int order = strcmp(a, b);
	uint32_t h = fnv1a(2166136261u, &proto, 1);

	/* the lower endpoint first: both directions of a connection hash alike */
	if (order > 0 || (order == 0 && pa > pb)) {
		const char *ts = a;
		long long tp = pa;

		a = b;
		b = ts;
		pa = pb;
		pb = tp;
	}
	h = hash_endpoint(h, a, pa);
	return hash_endpoint(h, b, pb);
}

/* "host:port" as Go's net.JoinHostPort: IPv6 literals in brackets. */
static void print_host_port(struct text *t, const char *host, long long port)
{
	if (strchr(host, ':'))
		text_printf(t, "[%s]:%lld", host, port);
	else
		text_printf(t, "%s:%lld", host, port);
}

/* Cilium's order and separator: "SYN, ACK". */
static void print_tcp_flags(struct text *t, const json_t *tcp)
{
	static const char *const order[] = {"SYN", "ACK", "RST", "FIN", "PSH", "URG"};
	const json_t *flags = json_object_get(tcp, "flags");
	bool first = true;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!json_is_true(json_object_get(flags, order[i])))
			continue;
		text_printf(t, "%s%s", first ? " " : ", ", order[i]);
		first = false;
	}
}

static const char *icmp4_type_name(long long type)
{
	switch (type) {
	case 0:
		return "EchoReply";
	case 3:
		return "DestinationUnreachable";
	case 4:
		return "SourceQuench";
	case 5:
		return "Redirect";
	case 8:
		return "EchoRequest";
	case 11:
		return "TimeExceeded";
	case 12:
		return "ParameterProblem";
	case 13:
		return "Timestamp";
	case 14:
		return "TimestampReply";
	}
	return NULL;
}

static const char *icmp4_unreach_code_name(long long code)
{
	static const char *const names[] = {"Net",
					    "Host",
					    "Protocol",
					    "Port",
					    "FragmentationNeeded",
					    "SourceRoutingFailed",
					    "NetUnknown",
					    "HostUnknown",
					    "SourceIsolated",
					    "NetAdminProhibited",
					    "HostAdminProhibited",
					    "NetTOS",
					    "HostTOS",
					    "CommAdminProhibited",
					    "HostPrecedence",
					    "PrecedenceCutoff"};

	return code >= 0 && code < 16 ? names[code] : NULL;
}

static const char *icmp6_type_name(long long type)
{
	switch (type) {
	case 1:
		return "DestinationUnreachable";
	case 2:
		return "PacketTooBig";
	case 3:
		return "TimeExceeded";
	case 4:
		return "ParameterProblem";
	case 128:
		return "EchoRequest";
	case 129:
		return "EchoReply";
	case 133:
		return "RouterSolicitation";
	case 134:
		return "RouterAdvertisement";
	case 135:
		return "NeighborSolicitation";
	case 136:
		return "NeighborAdvertisement";
	case 137:
		return "Redirect";
	}
	return NULL;
}

/* gopacket's ICMP type-code text: "EchoRequest", "DestinationUnreachable(Port)", "42(0)". */
static void print_icmp(struct text *t, const struct l4_info *li)
{
	long long type = int_at(li->obj, "type"), code = int_at(li->obj, "code");
	bool v4 = li->proto == 1;
	const char *name = v4 ? icmp4_type_name(type) : icmp6_type_name(type);
	const char *cname = v4 && type == 3 ? icmp4_unreach_code_name(code) : NULL;

	if (!name)
		text_printf(t, " %lld(%lld)", type, code);
	else if (cname)
		text_printf(t, " %s(%s)", name, cname);
	else if (code && !(v4 ? type == 0 || type == 8 : type >= 128))
		text_printf(t, " %s(Code: %lld)", name, code);
	else
		text_printf(t, " %s", name);
}

static void print_conn_summary(struct text *t, const json_t *flow)
{
	struct l4_info li = flow_l4_info(flow);
	const char *src = flow_ip(flow, "source"), *dst = flow_ip(flow, "destination");

	if (!*src && !*dst) {
		text_printf(t, "[unknown]");
		return;
	}
	if (!li.has_ports) {
		text_printf(t, "%s -> %s", src, dst);
		if (li.name)
			print_icmp(t, &li);
		return;
	}
	print_host_port(t, src, li.sport);
	text_printf(t, " -> ");
	print_host_port(t, dst, li.dport);
	if (li.proto == 6) {
		text_printf(t, " tcp");
		print_tcp_flags(t, li.obj);
	} else {
		text_printf(t, " %s", li.proto == 17 ? "udp" : "sctp");
	}
}

size_t flow_format_conn_summary(const json_t *flow, char *buf, size_t size)
{
	struct text t = text_init(buf, size);

	print_conn_summary(&t, flow);
	return t.len;
}

/* ---- cilium monitor -------------------------------------------------------------------- */

static const json_t *src_ep(const json_t *flow)
{
	return json_object_get(flow, "source");
}

static const json_t *dst_ep(const json_t *flow)
{
	return json_object_get(flow, "destination");
}

/* The drop reason code: drop_reason, else event_type.sub_type, else drop_reason_desc's. */
static unsigned int flow_drop_code(const json_t *flow)
{
	long long code = int_at(flow, "drop_reason");
	const char *name;

	if (code <= 0 && event_type(flow) == EVENT_TYPE_DROP)
		code = int_at(json_object_get(flow, "event_type"), "sub_type");
	if (code <= 0 && (name = str_at(flow, "drop_reason_desc")))
		code = reason_from_name(name);
	return code > 0 ? (unsigned int)code : 0;
}

static void print_drop_line(struct text *t, const json_t *flow)
{
	const json_t *file = json_object_get(flow, "file");

	text_printf(t,
		    "xx drop (%s) flow 0x%x to endpoint %lld, ifindex %lld, file %s:%lld, "
		    "identity %lld->%lld: ",
		    reason_desc(flow_drop_code(flow)), flow_hash(flow), int_at(dst_ep(flow), "ID"),
		    int_at(json_object_get(flow, "interface"), "index"),
		    str_or(file, "name", "unknown"), int_at(file, "line"),
		    int_at(src_ep(flow), "identity"), int_at(dst_ep(flow), "identity"));
	print_conn_summary(t, flow);
}

/* "-> endpoint 3459", "-> stack", ... from trace_observation_point. */
static void print_trace_summary(struct text *t, const json_t *flow)
{
	static const struct {
		const char *point;
		const char *text;
	} points[] = {{"TO_STACK", "-> stack"},	      {"TO_OVERLAY", "-> overlay"},
		      {"FROM_OVERLAY", "<- overlay"}, {"TO_NETWORK", "-> network"},
		      {"FROM_NETWORK", "<- network"}, {"TO_HOST", "-> host from"},
		      {"FROM_HOST", "<- host"},	      {"FROM_STACK", "<- stack"},
		      {"TO_PROXY", "-> proxy"},	      {"FROM_PROXY", "<- proxy"}};
	const char *point = str_or(flow, "trace_observation_point", "");

	if (!strcmp(point, "TO_ENDPOINT")) {
		text_printf(t, "-> endpoint %lld", int_at(dst_ep(flow), "ID"));
		return;
	}
	if (!strcmp(point, "FROM_ENDPOINT")) {
		text_printf(t, "<- endpoint %lld", int_at(src_ep(flow), "ID"));
		return;
	}
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		if (!strcmp(point, points[i].point)) {
			text_printf(t, "%s", points[i].text);
			return;
		}
	}
	text_printf(t, "unknown trace");
}

/* cilium prints the interface name when it knows it, else the index. */
static void print_ifname(struct text *t, const json_t *flow)
{
	const json_t *iface = json_object_get(flow, "interface");
	const char *name = str_at(iface, "name");

	if (name && *name)
		text_printf(t, "%s", name);
	else
		text_printf(t, "%lld", int_at(iface, "index"));
}

/* The address before reverse NAT; ciliate does no NAT, so the unspecified address unless
 * the agent gives ciliate.orig_ip. */
static const char *orig_ip(const json_t *flow)
{
	return str_or(ciliate_ext(flow), "orig_ip", flow_is_ipv6(flow) ? "::" : "0.0.0.0");
}

static void print_trace_line(struct text *t, const json_t *flow)
{
	print_trace_summary(t, flow);
	text_printf(t, " flow 0x%x identity %lld->%lld state %s ifindex ", flow_hash(flow),
		    int_at(src_ep(flow), "identity"), int_at(dst_ep(flow), "identity"),
		    str_or(ciliate_ext(flow), "ct_state", "unknown"));
	print_ifname(t, flow);
	text_printf(t, " orig-ip %s: ", orig_ip(flow));
	print_conn_summary(t, flow);
}

static bool is_ingress(const json_t *flow)
{
	const char *dir = str_at(flow, "traffic_direction");

	return dir && !strcmp(dir, "INGRESS");
}

static const char *policy_action(const json_t *flow)
{
	const char *v = str_or(flow, "verdict", "");

	if (!strcmp(v, "DROPPED"))
		return "deny";
	if (!strcmp(v, "AUDIT"))
		return "audit";
	if (!strcmp(v, "REDIRECTED"))
		return "redirect";
	return "allow";
}

/* The policy match word: ciliate.policy_match_name, else the name of policy_match_type. */
static const char *policy_match_word(const json_t *flow)
{
	const char *name = str_at(ciliate_ext(flow), "policy_match_name");

	return name && *name ? name
			     : policy_match_name((unsigned int)int_at(flow, "policy_match_type"));
}

static void print_verdict_line(struct text *t, const json_t *flow)
{
	bool in = is_ingress(flow);
	const json_t *local = in ? dst_ep(flow) : src_ep(flow);
	const json_t *remote = in ? src_ep(flow) : dst_ep(flow);

	text_printf(t,
		    "Policy verdict log: flow 0x%x local EP ID %lld, remote ID %lld, proto %u, "
		    "%s, action %s, auth: disabled, match %s, ",
		    flow_hash(flow), int_at(local, "ID"), int_at(remote, "identity"),
		    flow_l4_info(flow).proto, in ? "ingress" : "egress", policy_action(flow),
		    policy_match_word(flow));
	print_conn_summary(t, flow);
}

static const char *record_node(const json_t *wrapped)
{
	const char *node = str_at(wrapped, "node_name");

	if (!node)
		node = str_at(json_object_get(wrapped, "flow"), "node_name");
	return node ? node : "unknown";
}

size_t flow_format_lost(const json_t *wrapped, char *buf, size_t size)
{
	struct text t = text_init(buf, size);

	text_printf(&t, "EVENTS LOST: %lld events lost on node %s",
		    int_at(json_object_get(wrapped, "lost_events"), "num_events_lost"),
		    record_node(wrapped));
	return t.len;
}

size_t flow_format_monitor(const json_t *wrapped, char *buf, size_t size)
{
	const json_t *flow = json_object_get(wrapped, "flow");
	struct text t = text_init(buf, size);

	if (!flow)
		return flow_format_lost(wrapped, buf, size);
	switch (event_type(flow)) {
	case EVENT_TYPE_DROP:
		print_drop_line(&t, flow);
		break;
	case EVENT_TYPE_TRACE:
		print_trace_line(&t, flow);
		break;
	case EVENT_TYPE_VERDICT:
		print_verdict_line(&t, flow);
		break;
	default:
		text_printf(&t, "unknown event type %d: ", event_type(flow));
		print_conn_summary(&t, flow);
	}
	return t.len;
}

/* ---- cilium monitor -j ----------------------------------------------------------------- */

/* cilium's DissectSummary shape, reduced to what a flow carries: l3 and l4 endpoints. */
static json_t *summary_json(const json_t *flow)
{
	struct l4_info li = flow_l4_info(flow);
	json_t *s = json_pack("{s:{s:s,s:s}}", "l3", "src", flow_ip(flow, "source"), "dst",
			      flow_ip(flow, "destination"));
	char sp[8], dp[8];

	if (s && li.has_ports) {
		snprintf(sp, sizeof(sp), "%lld", li.sport);
		snprintf(dp, sizeof(dp), "%lld", li.dport);
		json_object_set_new(s, "l4", json_pack("{s:s,s:s}", "src", sp, "dst", dp));
	}
	return s;
}

static json_t *monitor_json_common(const json_t *wrapped, const json_t *flow, const char *type)
{
	char mark[16], line[2048];

	snprintf(mark, sizeof(mark), "0x%x", flow_hash(flow));
	flow_format_monitor(wrapped, line, sizeof(line));
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:s,s:s}", "type", type, "mark", mark, "bytes",
			 (json_int_t)int_at(ciliate_ext(flow), "bytes"), "srcLabel",
			 (json_int_t)int_at(src_ep(flow), "identity"), "dstLabel",
			 (json_int_t)int_at(dst_ep(flow), "identity"), "summary",
			 summary_json(flow), "node", record_node(wrapped), "text", line);
}

static void add_drop_keys(json_t *o, const json_t *flow)
{
	const json_t *file = json_object_get(flow, "file");

	json_object_set_new(o, "reason", json_string(reason_desc(flow_drop_code(flow))));
	json_object_set_new(o, "source", json_integer(int_at(src_ep(flow), "ID")));
	json_object_set_new(o, "dstID", json_integer(int_at(dst_ep(flow), "ID")));
	json_object_set_new(o, "Line", json_integer(int_at(file, "line")));
	json_object_set_new(o, "File", json_string(str_or(file, "name", "unknown")));
	json_object_set_new(o, "Ifindex",
			    json_integer(int_at(json_object_get(flow, "interface"), "index")));
}

static void add_trace_keys(json_t *o, const json_t *flow)
{
	char summary[64], ifname[64], point[32];
	struct text t = text_init(summary, sizeof(summary));
	struct text i = text_init(ifname, sizeof(ifname));

	print_trace_summary(&t, flow);
	print_ifname(&i, flow);
	snprintf(point, sizeof(point), "%s", str_or(flow, "trace_observation_point", ""));
	for (char *c = point; *c; c++)
		*c = *c == '_' ? '-' : (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	json_object_set_new(o, "ifindex", json_string(ifname));
	json_object_set_new(o, "state",
			    json_string(str_or(ciliate_ext(flow), "ct_state", "unknown")));
	json_object_set_new(o, "observationPoint", json_string(point));
	json_object_set_new(o, "traceSummary", json_string(summary));
	json_object_set_new(o, "source", json_integer(int_at(src_ep(flow), "ID")));
	json_object_set_new(o, "dstID", json_integer(int_at(dst_ep(flow), "ID")));
}

static void add_verdict_keys(json_t *o, const json_t *flow)
{
	bool in = is_ingress(flow);

	json_object_set_new(o, "source",
			    json_integer(int_at(in ? dst_ep(flow) : src_ep(flow), "ID")));
	json_object_set_new(o, "remoteLabel",
			    json_integer(int_at(in ? src_ep(flow) : dst_ep(flow), "identity")));
	json_object_set_new(o, "proto", json_integer(flow_l4_info(flow).proto));
	json_object_set_new(o, "direction", json_string(in ? "ingress" : "egress"));
	json_object_set_new(o, "action", json_string(policy_action(flow)));
	json_object_set_new(o, "auth", json_string("disabled"));
	json_object_set_new(o, "match", json_string(policy_match_word(flow)));
}

json_t *flow_monitor_json(const json_t *wrapped)
{
	const json_t *flow = json_object_get(wrapped, "flow");
	json_t *o;

	if (flow_is_lost_record(wrapped))
		return json_pack("{s:s,s:s,s:I,s:s}", "type", "lost", "source",
				 str_or(json_object_get(wrapped, "lost_events"), "source", ""),
				 "lost",
				 (json_int_t)int_at(json_object_get(wrapped, "lost_events"),
						    "num_events_lost"),
				 "node", record_node(wrapped));
	if (!flow)
		return NULL;
	switch (event_type(flow)) {
	case EVENT_TYPE_DROP:
		o = monitor_json_common(wrapped, flow, "drop");
		if (o)
			add_drop_keys(o, flow);
		return o;
	case EVENT_TYPE_TRACE:
		o = monitor_json_common(wrapped, flow, "trace");
		if (o)
			add_trace_keys(o, flow);
		return o;
	case EVENT_TYPE_VERDICT:
		o = monitor_json_common(wrapped, flow, "policy-verdict");
		if (o)
			add_verdict_keys(o, flow);
		return o;
	}
	return NULL;
}

/* ---- hubble compact -------------------------------------------------------------------- */

/* Hubble's Hostname(): "ns/pod:port" for pods, "ns/service:port" for a service frontend
 * (a drop before translation, a reply from the frontend to a non-pod client), the address
 * otherwise; no port for 0. */
static void print_hostname(struct text *t, const json_t *flow, bool source)
{
	const json_t *ep = source ? src_ep(flow) : dst_ep(flow);
	const char *pod = str_or(ep, "pod_name", NULL), *ns = str_or(ep, "namespace", NULL);
	const json_t *svc = json_object_get(flow, source ? "source_service" : "destination_service");
	const char *svc_name = str_or(svc, "name", NULL);
	struct l4_info li = flow_l4_info(flow);
	long long port = source ? li.sport : li.dport;
	char host[512];

	if (pod && ns)
		snprintf(host, sizeof(host), "%s/%s", ns, pod);
	else if (pod)
		snprintf(host, sizeof(host), "%s", pod);
	else if (svc_name && *svc_name) /* an end that is a service frontend (Hubble's svc) */
		snprintf(host, sizeof(host), "%s/%s", str_or(svc, "namespace", ""), svc_name);
	else
		snprintf(host, sizeof(host), "%s",
			 flow_ip(flow, source ? "source" : "destination"));
	if (li.has_ports && port)
		print_host_port(t, host, port);
	else
		text_printf(t, "%s", host);
}

/* "(ID:256)", or the name of a reserved identity: "(world)". */
static void print_identity(struct text *t, long long id)
{
	static const char *const reserved[] = {NULL,	 "host", "world",	"unmanaged",
					       "health", "init", "remote-node", "kube-apiserver"};

	if (id > 0 && id < (long long)(sizeof(reserved) / sizeof(reserved[0])))
		text_printf(t, "(%s)", reserved[id]);
	else
		text_printf(t, "(ID:%lld)", id);
}

size_t flow_format_type(const json_t *flow, char *buf, size_t size)
{
	struct text t = text_init(buf, size);
	const char *point;

	switch (event_type(flow)) {
	case EVENT_TYPE_DROP:
		text_printf(&t, "%s", reason_desc(flow_drop_code(flow)));
		break;
	case EVENT_TYPE_TRACE:
		point = str_or(flow, "trace_observation_point", "UNKNOWN_POINT");
		for (; *point; point++)
			text_printf(&t, "%c",
				    *point == '_' ? '-'
						  : (*point >= 'A' && *point <= 'Z' ? *point + 32
										    : *point));
		break;
	case EVENT_TYPE_VERDICT:
		text_printf(&t, "policy-verdict:%s %s",
			    policy_match_name((unsigned int)int_at(flow, "policy_match_type")),
			    str_or(flow, "traffic_direction", "TRAFFIC_DIRECTION_UNKNOWN"));
		break;
	default:
		text_printf(&t, "UNKNOWN");
	}
	return t.len;
}

const char *flow_verdict_word(const json_t *flow)
{
	const char *v = str_or(flow, "verdict", "VERDICT_UNKNOWN");

	if (event_type(flow) != EVENT_TYPE_VERDICT)
		return v;
	if (!strcmp(v, "FORWARDED") || !strcmp(v, "REDIRECTED"))
		return "ALLOWED";
	if (!strcmp(v, "DROPPED") || !strcmp(v, "ERROR"))
		return "DENIED";
	if (!strcmp(v, "AUDIT"))
		return "AUDITED";
	return v;
}

/* Source and destination as hubble shows them, swapped for replies. */
struct ends {
	char src[600], dst[600];
	const char *arrow;
};

static void flow_ends(const json_t *flow, bool identities, struct ends *e)
{
	const json_t *reply = json_object_get(flow, "is_reply");
	bool swap = json_is_true(reply);
	struct text s = text_init(swap ? e->dst : e->src, sizeof(e->src));
	struct text d = text_init(swap ? e->src : e->dst, sizeof(e->dst));

	print_hostname(&s, flow, true);
	print_hostname(&d, flow, false);
	if (identities) {
		text_printf(&s, " ");
		print_identity(&s, int_at(src_ep(flow), "identity"));
		text_printf(&d, " ");
		print_identity(&d, int_at(dst_ep(flow), "identity"));
	}
	e->arrow = !json_is_boolean(reply) ? "<>" : swap ? "<-" : "->";
}

size_t flow_format_compact(const json_t *wrapped, const struct flow_render_opts *o, char *buf,
			   size_t size)
{
	const json_t *flow = json_object_get(wrapped, "flow");
	struct text t = text_init(buf, size);
	char when[32], type[256];
	struct ends e;

	if (!flow)
		return flow_format_lost(wrapped, buf, size);
	flow_ends(flow, true, &e);
	flow_format_timestamp(flow_record_time(wrapped), when, sizeof(when));
	flow_format_type(flow, type, sizeof(type));
	text_printf(&t, "%s", when);
	if (o && o->node_name)
		text_printf(&t, " [%s]", record_node(wrapped));
	text_printf(&t, ": %s %s %s %s %s (%s)", e.src, e.arrow, e.dst, type,
		    flow_verdict_word(flow), str_or(flow, "Summary", ""));
	return t.len;
}

/* ---- the table ------------------------------------------------------------------------- */

enum { COL_TIME, COL_NODE, COL_SRC, COL_DST, COL_TYPE, COL_VERDICT, COL_SUMMARY, NCOLS };

static const char *const col_names[NCOLS] = {"TIMESTAMP", "NODE",    "SOURCE", "DESTINATION",
					     "TYPE",	  "VERDICT", "SUMMARY"};

struct table_row {
	char *cells[NCOLS]; /* NULL cells[0]: a whole line (lost events) in line */
	char *line;
};

struct flow_table {
	struct table_row *rows;
	size_t n, cap, printed;
	size_t width[NCOLS];
	bool header_done;
};

#define TABLE_PADDING 3 /* hubble's tabwriter: padding 3, minimum width 2 */

struct flow_table *flow_table_new(void)
{
	struct flow_table *t = calloc(1, sizeof(*t));

	for (int c = 0; t && c < NCOLS; c++)
		t->width[c] = strlen(col_names[c]);
	return t;
}

static struct table_row *table_next_row(struct flow_table *t)
{
	struct table_row *rows;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		rows = realloc(t->rows, t->cap * sizeof(*rows));
		if (!rows)
			return NULL;
		t->rows = rows;
	}
	memset(&t->rows[t->n], 0, sizeof(t->rows[t->n]));
	return &t->rows[t->n];
}

static int table_fill_cells(struct flow_table *t, struct table_row *r, const json_t *wrapped,
			    const json_t *flow)
{
	char when[32], type[256];
	struct ends e;

	flow_ends(flow, false, &e);
	flow_format_timestamp(flow_record_time(wrapped), when, sizeof(when));
	flow_format_type(flow, type, sizeof(type));
	r->cells[COL_TIME] = strdup(when);
	r->cells[COL_NODE] = strdup(record_node(wrapped));
	r->cells[COL_SRC] = strdup(e.src);
	r->cells[COL_DST] = strdup(e.dst);
	r->cells[COL_TYPE] = strdup(type);
	r->cells[COL_VERDICT] = strdup(flow_verdict_word(flow));
	r->cells[COL_SUMMARY] = strdup(str_or(flow, "Summary", ""));
	for (int c = 0; c < NCOLS; c++) {
		if (!r->cells[c])
			return -ENOMEM;
		if (strlen(r->cells[c]) > t->width[c])
			t->width[c] = strlen(r->cells[c]);
	}
	return 0;
}

static void table_row_free(struct table_row *r)
{
	for (int c = 0; c < NCOLS; c++)
		free(r->cells[c]);
	free(r->line);
}

int flow_table_add(struct flow_table *t, const json_t *wrapped)
{
	const json_t *flow = json_object_get(wrapped, "flow");
	struct table_row *r = table_next_row(t);
	char line[512];
	int rc = 0;

	if (!r)
		return -ENOMEM;
	if (flow) {
		rc = table_fill_cells(t, r, wrapped, flow);
	} else {
		flow_format_lost(wrapped, line, sizeof(line));
		r->line = strdup(line);
		rc = r->line ? 0 : -ENOMEM;
	}
	if (rc) {
		table_row_free(r);
		return rc;
	}
	t->n++;
	return 0;
}

static void table_print_cells(const struct flow_table *t, const char *const *cells, FILE *out)
{
	for (int c = 0; c < NCOLS - 1; c++)
		fprintf(out, "%-*s", (int)(t->width[c] + TABLE_PADDING), cells[c]);
	fprintf(out, "%s\n", cells[NCOLS - 1]);
}

void flow_table_print_pending(struct flow_table *t, FILE *out)
{
	if (!t->header_done && t->n > t->printed) {
		table_print_cells(t, col_names, out);
		t->header_done = true;
	}
	for (; t->printed < t->n; t->printed++) {
		const struct table_row *r = &t->rows[t->printed];

		if (r->line)
			fprintf(out, "%s\n", r->line);
		else
			table_print_cells(t, (const char *const *)r->cells, out);
	}
}

void flow_table_free(struct flow_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		table_row_free(&t->rows[i]);
	free(t->rows);
	free(t);
}
