/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-probe: the client the scenario runner executes inside a source namespace. Each
 * attempt is a new TCP connection or UDP socket to --to:--port, or an ICMP echo request to
 * --to (raw socket: the probe runs as root inside its namespace), bounded by --timeout-ms;
 * one result line per attempt, a summary with --count (see docs/SIMULATOR.md).
 * Exit: 0 every attempt got a reply, 1 some did not, 2 usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "probe_proto.h"

#define MAX_COUNT 10000
#define MAX_TIMEOUT_MS 60000
#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_MAX_TIME_MS 120000
#define MAX_MAX_TIME_MS 600000
#define DEFAULT_UDP_TRIES 3
#define MAX_UDP_TRIES 20
#define REPLY_MAX 65536
#define REQ_MAX 8192
#define IP_STRLEN INET6_ADDRSTRLEN
#define PAYLOAD_MIN 64
#define RESPONSE_MAX (64u << 20) /* the echo server's limit for respond=N */

struct opts {
	const char *to;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	struct sockaddr_storage src;
	socklen_t src_len; /* 0: no --source */
	unsigned int port;
	bool udp;
	bool icmp;
	bool stream;
	bool http;
	bool json;
	bool summary;
	unsigned int timeout_ms;
	unsigned int count;
	unsigned int interval_ms;
	unsigned int max_time_ms;
	unsigned int udp_tries;
	const char *method;
	const char *path;
	const char *headers[PROBE_MAX_HEADERS];
	unsigned int n_headers;
	bool host_given;
	unsigned int payload_bytes;  /* 0: the short default request */
	bool tfo;                    /* TCP Fast Open: the request rides in the SYN */
	unsigned int response_bytes; /* filler bytes asked of the echo server (respond=N) */
};

struct attempt {
	unsigned int seq;
	bool allowed;
	const char *error; /* NULL when allowed */
	const char *stage; /* connect | send | reply */
	double latency_ms;
	char local_ip[IP_STRLEN];
	unsigned int local_port;
	unsigned int tries;
	int http_status;
	json_t *reply;
	char raw[129];
	/* --payload-bytes: path MTU discovery (docs/SIMULATOR.md, ciliate-probe) */
	unsigned int sent_bytes;     /* the size of the (last) request sent */
	unsigned int path_mtu;       /* the socket's path MTU (IP_MTU) at the end */
	bool pmtu_retried;           /* UDP: sent again, smaller, to fit a reported MTU */
	bool icmp_seen;              /* an ICMP error reached the socket (UDP, IP_RECVERR) */
	unsigned int icmp_type, icmp_code, icmp_mtu;
	char icmp_from[IP_STRLEN];   /* who sent it */
	char quoted_dst[IP_STRLEN];  /* the destination of the packet it quotes */
	unsigned int quoted_port;
	/* --tcp-fastopen */
	int syn_data;                /* bytes the SYN carried (-1: not asked) */
	bool syn_data_acked;         /* the SYN-ACK acknowledged them */
	/* --response-bytes */
	unsigned long response_bytes; /* filler bytes received after the answer line */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"NAME\n"
		"    ciliate-probe - the simulator's client: TCP, UDP, ICMP and HTTP probes\n"
		"\n"
		"SYNOPSIS\n"
		"    ciliate-probe --to IP --port N [--protocol TCP|UDP|ICMP] [--timeout-ms MS]\n"
		"                  [--count N] [--interval-ms MS] [--max-time-ms MS]\n"
		"                  [--http [--method M] [--path P] [-H 'Name: value']...]\n"
		"                  [--udp-tries N] [--source IP] [-o json|text]\n"
		"                  [--payload-bytes N] [--tcp-fastopen] [--response-bytes N]\n"
		"    ciliate-probe --stream --to IP --port N [--interval-ms MS] [--max-time-ms MS]\n"
		"    ciliate-probe --help\n"
		"\n"
		"DESCRIPTION\n"
		"    Each attempt is a new connection (TCP), socket (UDP) or echo request (ICMP,\n"
		"    IPv4, no --port) bounded by --timeout-ms; prints one result per attempt and,\n"
		"    with --count, a summary. Requests name their source ('ciliate-probe\n"
		"    from=IP:PORT/PROTO seq=N'); ciliate-echo repeats them in its answer.\n"
		"    --stream keeps ONE TCP connection and sends a request every --interval-ms\n"
		"    (default 20) until SIGUSR1, SIGTERM or --max-time-ms; each must be answered\n"
		"    within --timeout-ms. It prints {\"stream\":\"open\"} after the first answer,\n"
		"    then one result. ciliate-sim runs it inside a source namespace\n"
		"    (docs/SIMULATOR.md).\n"
		"\n"
		"OPTIONS\n"
		"    --to IP              the target (IPv4 or IPv6)\n"
		"    --port N             the target port (1..65535; not for ICMP)\n"
		"    --protocol P         TCP (default), UDP or ICMP (IPv4 echo request, raw\n"
		"                         socket)\n"
		"    --timeout-ms MS      each attempt's bound (1..60000, default %d)\n"
		"    --count N            attempts (1..10000, default 1); adds a summary\n"
		"    --interval-ms MS     pause between attempts (0..60000, default 0;\n"
		"                         --stream: between requests, default 20)\n"
		"    --max-time-ms MS     bound of the whole run (1..600000, default %d)\n"
		"    --http               send an HTTP/1.1 request (TCP)\n"
		"    --method M           its method (upper case, default GET; needs --http)\n"
		"    --path P             its path (starts with /, default /; needs --http)\n"
		"    -H, --header 'N: V'  an extra header (repeatable, at most 32; needs --http)\n"
		"    --udp-tries N        UDP: send the datagram up to N times, spread over\n"
		"                         --timeout-ms (1..20, default %d)\n"
		"    --source IP          bind to this source address (same family as --to)\n"
		"    -o, --output F       json (one object per line) or text (default)\n"
		"    --payload-bytes N    (%d..%d) the request is N bytes (UDP: one datagram, sent\n"
		"                         with DF; an ICMP fragmentation-needed is reported and\n"
		"                         the datagram sent once more, fitting the reported MTU)\n"
		"    --tcp-fastopen       the request rides in the SYN (TFO, no cookie)\n"
		"    --response-bytes N   the echo server sends N filler bytes after its answer\n"
		"                         (TCP echo mode), all of which must arrive\n"
		"    --stream             one long TCP connection (above)\n"
		"    -h, --help           this help\n"
		"\n"
		"EXIT STATUS\n"
		"    0 every attempt got a reply, 1 some did not, 2 usage error.\n",
		DEFAULT_TIMEOUT_MS, DEFAULT_MAX_TIME_MS, DEFAULT_UDP_TRIES, PAYLOAD_MIN, REQ_MAX);
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

static int parse_ip(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		*len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

static bool valid_header(const char *h)
{
	const char *colon = strchr(h, ':');
	const char *p;

	if (!colon || colon == h)
		return false;
	for (p = h; p < colon; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *p))
			return false;
	for (p = h; *p; p++)
		if (*p == '\r' || *p == '\n')
			return false;
	return true;
}

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "ciliate-probe: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return -EINVAL;
}

/* Returns 0, 1 for --help, or -EINVAL for a usage error (already reported). */
static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_TO = 256, O_PORT, O_PROTO, O_TIMEOUT, O_COUNT, O_INTERVAL, O_MAXTIME, O_HTTP,
	       O_METHOD, O_PATH, O_UDPTRIES, O_SOURCE, O_STREAM, O_PAYLOAD, O_TFO, O_RESPONSE };
	static const struct option opts[] = {
		{ "to", required_argument, NULL, O_TO },
		{ "port", required_argument, NULL, O_PORT },
		{ "protocol", required_argument, NULL, O_PROTO },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "count", required_argument, NULL, O_COUNT },
		{ "interval-ms", required_argument, NULL, O_INTERVAL },
		{ "max-time-ms", required_argument, NULL, O_MAXTIME },
		{ "http", no_argument, NULL, O_HTTP },
		{ "stream", no_argument, NULL, O_STREAM },
		{ "method", required_argument, NULL, O_METHOD },
		{ "path", required_argument, NULL, O_PATH },
		{ "header", required_argument, NULL, 'H' },
		{ "udp-tries", required_argument, NULL, O_UDPTRIES },
		{ "source", required_argument, NULL, O_SOURCE },
		{ "payload-bytes", required_argument, NULL, O_PAYLOAD },
		{ "tcp-fastopen", no_argument, NULL, O_TFO },
		{ "response-bytes", required_argument, NULL, O_RESPONSE },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *p;
	int c;

	while ((c = getopt_long(argc, argv, "H:o:h", opts, NULL)) != -1) {
		switch (c) {
		case O_TO:
			o->to = optarg;
			if (parse_ip(optarg, &o->dst, &o->dst_len))
				return bad("--to: \"%s\" is not an IP address", optarg);
			break;
		case O_PORT:
			if (parse_uint(optarg, 1, 65535, &o->port))
				return bad("--port: \"%s\" is not a port (1..65535)", optarg);
			break;
		case O_PROTO:
			o->udp = !strcasecmp(optarg, "udp");
			o->icmp = !strcasecmp(optarg, "icmp");
			if (!o->udp && !o->icmp && strcasecmp(optarg, "tcp"))
				return bad("--protocol: \"%s\" is not TCP, UDP or ICMP", optarg);
			break;
		case O_TIMEOUT:
			if (parse_uint(optarg, 1, MAX_TIMEOUT_MS, &o->timeout_ms))
				return bad("--timeout-ms: \"%s\" is not in 1..60000", optarg);
			break;
		case O_COUNT:
			if (parse_uint(optarg, 1, MAX_COUNT, &o->count))
				return bad("--count: \"%s\" is not in 1..10000", optarg);
			o->summary = true;
			break;
		case O_INTERVAL:
			if (parse_uint(optarg, 0, MAX_TIMEOUT_MS, &o->interval_ms))
				return bad("--interval-ms: \"%s\" is not in 0..60000", optarg);
			break;
		case O_MAXTIME:
			if (parse_uint(optarg, 1, MAX_MAX_TIME_MS, &o->max_time_ms))
				return bad("--max-time-ms: \"%s\" is not in 1..600000", optarg);
			break;
		case O_HTTP:
			o->http = true;
			break;
		case O_STREAM:
			o->stream = true;
			break;
		case O_METHOD:
			for (p = optarg; *p >= 'A' && *p <= 'Z'; p++)
				;
			if (*p || p == optarg || p - optarg > 16)
				return bad("--method: \"%s\" is not an upper-case method", optarg);
			o->method = optarg;
			break;
		case O_PATH:
			for (p = optarg; *p > ' ' && *p < 0x7f; p++)
				;
			if (*p || optarg[0] != '/' || strlen(optarg) > 2048)
				return bad("--path: \"%s\" must start with / and hold no spaces",
					   optarg);
			o->path = optarg;
			break;
		case 'H':
			if (!valid_header(optarg))
				return bad("--header: \"%s\" is not \"Name: value\"", optarg);
			if (o->n_headers == PROBE_MAX_HEADERS)
				return bad("--header: at most %s headers", "32");
			if (!strncasecmp(optarg, "host:", 5))
				o->host_given = true;
			o->headers[o->n_headers++] = optarg;
			break;
		case O_UDPTRIES:
			if (parse_uint(optarg, 1, MAX_UDP_TRIES, &o->udp_tries))
				return bad("--udp-tries: \"%s\" is not in 1..20", optarg);
			break;
		case O_SOURCE:
			if (parse_ip(optarg, &o->src, &o->src_len))
				return bad("--source: \"%s\" is not an IP address", optarg);
			break;
		case O_PAYLOAD:
			if (parse_uint(optarg, PAYLOAD_MIN, REQ_MAX, &o->payload_bytes))
				return bad("--payload-bytes: \"%s\" is not in 64..8192", optarg);
			break;
		case O_TFO:
			o->tfo = true;
			break;
		case O_RESPONSE:
			if (parse_uint(optarg, 1, RESPONSE_MAX, &o->response_bytes))
				return bad("--response-bytes: \"%s\" is not in 1..67108864", optarg);
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				o->json = true;
			else if (!strcmp(optarg, "text"))
				o->json = false;
			else
				return bad("-o: \"%s\" is not json or text", optarg);
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			return -EINVAL;
		}
	}
	if (optind < argc)
		return bad("unexpected argument \"%s\"", argv[optind]);
	if (!o->to || (!o->port && !o->icmp))
		return bad("%s", "--to and --port are required");
	if (o->icmp && o->dst.ss_family != AF_INET)
		return bad("%s", "--protocol ICMP: IPv4 only");
	if (o->http && (o->udp || o->icmp))
		return bad("%s", "--http needs --protocol TCP");
	if (o->stream && (o->udp || o->icmp || o->http || o->summary))
		return bad("%s", "--stream is plain TCP, without --count");
	if ((o->method || o->path || o->n_headers) && !o->http)
		return bad("%s", "--method, --path and --header need --http");
	if ((o->payload_bytes || o->tfo || o->response_bytes) && (o->icmp || o->http || o->stream))
		return bad("%s", "--payload-bytes, --tcp-fastopen and --response-bytes are for plain "
			   "TCP/UDP probes (no --http, --stream or ICMP)");
	if ((o->tfo || o->response_bytes) && o->udp)
		return bad("%s", "--tcp-fastopen and --response-bytes need --protocol TCP");
	if (o->src_len && o->src.ss_family != o->dst.ss_family)
		return bad("%s", "--source and --to must be the same address family");
	if (o->dst.ss_family == AF_INET)
		((struct sockaddr_in *)&o->dst)->sin_port = htons((uint16_t)o->port);
	else
		((struct sockaddr_in6 *)&o->dst)->sin6_port = htons((uint16_t)o->port);
	return 0;
}

/* Waits for events on fd until deadline: 1 ready, 0 timed out, -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	uint64_t now;
	int r;

	for (;;) {
		now = now_ns();
		if (now >= deadline)
			return 0;
		r = poll(&pfd, 1, (int)((deadline - now + 999999) / 1000000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			return 1;
	}
}

static int open_socket(const struct opts *o, int type)
{
	int fd;

	fd = socket(o->dst.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (o->src_len && bind(fd, (const struct sockaddr *)&o->src, o->src_len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void local_name(int fd, struct attempt *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const void *addr;

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return;
	if (ss.ss_family == AF_INET) {
		addr = &((struct sockaddr_in *)&ss)->sin_addr;
		a->local_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	} else {
		addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		a->local_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	inet_ntop(ss.ss_family, addr, a->local_ip, sizeof(a->local_ip));
}

/*
 * The head of a plain (echo-mode) request: "ciliate-probe from=IP:PORT/PROTO seq=N". It names
 * the attempt's own source address and port, so the request is unique among every probe
 * running at the same time: the runner looks for exactly these bytes on the fabric
 * (encryptedOn, docs/SIMULATOR.md). The echo server ignores words it does not know.
 */
static void request_head(char *head, size_t size, const struct attempt *a, const char *proto)
{
	if (a->local_port)
		snprintf(head, size, "ciliate-probe from=%s%s%s:%u/%s seq=%u",
			 strchr(a->local_ip, ':') ? "[" : "", a->local_ip,
			 strchr(a->local_ip, ':') ? "]" : "", a->local_port, proto, a->seq);
	else
		snprintf(head, size, "ciliate-probe seq=%u", a->seq);
}

/*
 * TCP Fast Open sends the request with the SYN, so its source must be known before: the
 * socket is bound to the address the route to --to picks (a connected UDP socket tells it;
 * --source binds it already) and an ephemeral port. 0 or -errno.
 */
static int bind_source(const struct opts *o, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int u, err = 0;

	if (o->src_len)
		return 0; /* open_socket bound it */
	u = socket(o->dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u < 0)
		return -errno;
	if (connect(u, (const struct sockaddr *)&o->dst, o->dst_len) ||
	    getsockname(u, (struct sockaddr *)&ss, &len))
		err = -errno;
	close(u);
	if (err)
		return err;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	return bind(fd, (const struct sockaddr *)&ss, len) ? -errno : 0;
}

/*
 * A request: head, then (total > the head) '.' filler up to total bytes, the last one a
 * newline. Returns its length (at most size - 1).
 */
static int build_request(char *buf, size_t size, const char *head, unsigned int total)
{
	size_t len = (size_t)snprintf(buf, size, "%s", head);

	if (len >= size - 1)
		len = size - 2;
	if (total > size - 1)
		total = (unsigned int)(size - 1);
	if (total > len + 1) {
		memset(buf + len, '.', total - len - 1);
		len = total - 1;
	}
	buf[len++] = '\n';
	buf[len] = '\0';
	return (int)len;
}

/* Path MTU discovery as a careful client does it: DF on every datagram, ICMP errors
 * queued on the socket (IP_RECVERR) so their details can be read. 0 or -errno. */
static int pmtu_discover(int fd, int family)
{
	int on = 1, v4 = IP_PMTUDISC_DO, v6 = IPV6_PMTUDISC_DO;

	if (family == AF_INET)
		return setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v4, sizeof(v4)) ||
		       setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on)) ? -errno : 0;
	return setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v6, sizeof(v6)) ||
	       setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on)) ? -errno : 0;
}

/* The connected socket's path MTU (0 when unknown). */
static unsigned int path_mtu(int fd, int family)
{
	socklen_t len = sizeof(int);
	int mtu = 0;

	if (family == AF_INET ? getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len) :
				getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &len))
		return 0;
	return mtu > 0 ? (unsigned int)mtu : 0;
}

static void sockaddr_text(const struct sockaddr_storage *ss, char *ip, unsigned int *port)
{
	const void *addr = ss->ss_family == AF_INET ?
		(const void *)&((const struct sockaddr_in *)ss)->sin_addr :
		(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	ip[0] = '\0';
	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
		return;
	inet_ntop(ss->ss_family, addr, ip, IP_STRLEN);
	if (port)
		*port = ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port :
					     ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/*
 * Reads one error queued on the socket (IP_RECVERR). An ICMP error is recorded in a (type,
 * code, MTU, sender, and the destination of the packet it quotes). Returns its errno
 * (e.g. EMSGSIZE for fragmentation needed), 0 when the queue is empty.
 */
static int read_errqueue(int fd, struct attempt *a)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct sock_extended_err) +
				    sizeof(struct sockaddr_in6))];
		struct cmsghdr align;
	} ctl;
	struct sockaddr_storage dst, from;
	char data[64];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr msg = { .msg_name = &dst, .msg_namelen = sizeof(dst), .msg_iov = &iov,
			      .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	const struct sock_extended_err *ee;
	struct cmsghdr *cm;
	socklen_t off_len;

	memset(&dst, 0, sizeof(dst));
	if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
		return 0;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (!((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_RECVERR) ||
		      (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
			continue;
		ee = (const struct sock_extended_err *)CMSG_DATA(cm);
		if (ee->ee_origin == SO_EE_ORIGIN_ICMP || ee->ee_origin == SO_EE_ORIGIN_ICMP6) {
			a->icmp_seen = true;
			a->icmp_type = ee->ee_type;
			a->icmp_code = ee->ee_code;
			a->icmp_mtu = ee->ee_errno == EMSGSIZE ? ee->ee_info : 0;
			memset(&from, 0, sizeof(from));
			off_len = cm->cmsg_len - (socklen_t)CMSG_LEN(sizeof(*ee));
			if (off_len > sizeof(from))
				off_len = sizeof(from);
			memcpy(&from, SO_EE_OFFENDER(ee), off_len);
			sockaddr_text(&from, a->icmp_from, NULL);
			sockaddr_text(&dst, a->quoted_dst, &a->quoted_port);
		}
		return ee->ee_errno ? (int)ee->ee_errno : EIO;
	}
	return EIO;
}

/* Fits the request to the socket's path MTU (and a reported one): its new length, or 0
 * when it cannot shrink (already fits, or the MTU leaves no room for the head). */
static unsigned int fit_pmtu(int fd, int family, const struct attempt *a, unsigned int cur)
{
	unsigned int mtu = path_mtu(fd, family), hdr = family == AF_INET ? 28 : 48;

	if (a->icmp_mtu && (!mtu || a->icmp_mtu < mtu))
		mtu = a->icmp_mtu;
	if (mtu <= hdr + PAYLOAD_MIN || mtu - hdr >= cur)
		return 0;
	return mtu - hdr;
}

static void set_raw(struct attempt *a, const char *buf, size_t len)
{
	size_t i;

	if (len > sizeof(a->raw) - 1)
		len = sizeof(a->raw) - 1;
	for (i = 0; i < len; i++)
		a->raw[i] = buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '?';
	a->raw[len] = '\0';
}

static void fail(struct attempt *a, const char *stage, int err)
{
	a->allowed = false;
	a->stage = stage;
	a->error = err == -ETIMEDOUT || err == 0 ? "timeout" : probe_errno_name(err);
}

/* Turns the received bytes into the attempt's outcome. */
static void tcp_finish(const struct opts *o, struct attempt *a, const char *buf, size_t len,
		       bool eof)
{
	struct probe_http_resp resp;
	const char *body = buf;
	size_t body_len = len;
	const char *nl;

	if (o->http) {
		if (probe_http_response(buf, len, eof, &resp)) {
			set_raw(a, buf, len);
			a->error = "bad_reply";
			a->stage = "reply";
			return;
		}
		a->http_status = resp.status;
		body = resp.body;
		body_len = resp.body_len;
	} else if ((nl = memchr(buf, '\n', len))) {
		body_len = (size_t)(nl - buf);
	}
	a->reply = json_loadb(body, body_len, 0, NULL);
	if (!json_is_object(a->reply)) {
		json_decref(a->reply);
		a->reply = NULL;
		set_raw(a, body, body_len);
	}
	if (o->http && a->http_status >= 400) {
		a->error = "http_status";
		a->stage = "reply";
	} else if (!a->reply) {
		a->error = "bad_reply";
		a->stage = "reply";
	} else {
		a->allowed = true;
	}
}

/* Whether the bytes so far make a whole answer. */
static bool tcp_complete(const struct opts *o, const char *buf, size_t len, bool eof)
{
	struct probe_http_resp resp;

	if (o->http)
		return probe_http_response(buf, len, eof, &resp) != -EAGAIN;
	return eof || memchr(buf, '\n', len);
}

/*
 * After the answer line: the --response-bytes filler, counted and dropped (buf is reused).
 * 0 when all of it came, else -errno / -ECONNRESET (closed early) / 0-timeout as -ETIMEDOUT.
 */
static int read_filler(int fd, struct attempt *a, const char *line_end, size_t len, char *buf,
		       unsigned int want, uint64_t deadline)
{
	size_t have = len - (size_t)(line_end - buf);
	ssize_t n;
	int r;

	a->response_bytes = have;
	while (a->response_bytes < want) {
		r = wait_fd(fd, POLLIN, deadline);
		if (r <= 0)
			return r ? r : -ETIMEDOUT;
		n = recv(fd, buf, REPLY_MAX, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		a->response_bytes += (size_t)n;
	}
	return 0;
}

static void tcp_attempt(const struct opts *o, struct attempt *a, uint64_t deadline, char *buf)
{
	char req[REQ_MAX + 1], host[IP_STRLEN + 16], head[192];
	size_t len = 0, off = 0;
	socklen_t sl = sizeof(int);
	int fd, err = 0, so_err = 0, r, req_len = -1, one = 1;
	bool eof = false;
	ssize_t n;

	a->syn_data = -1;
	if (o->http) {
		snprintf(host, sizeof(host), o->dst.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			 o->to, o->port);
		req_len = probe_http_request(req, sizeof(req), o->method ? o->method : "GET",
					     o->path ? o->path : "/", o->host_given ? NULL : host,
					     o->headers, o->n_headers);
	}
	fd = open_socket(o, SOCK_STREAM);
	if (fd < 0) {
		fail(a, "connect", fd);
		return;
	}
	if (o->tfo && !o->http) {
		/* the request names its source (below) and rides in the SYN: bind first */
		r = bind_source(o, fd);
		if (r) {
			fail(a, "connect", r);
			goto out;
		}
		local_name(fd, a);
	} else if (!o->http) {
		if (connect(fd, (const struct sockaddr *)&o->dst, o->dst_len) &&
		    errno != EINPROGRESS) {
			fail(a, "connect", -errno);
			goto out;
		}
		local_name(fd, a); /* bound by connect(): known even if the handshake never ends */
	}
	if (!o->http) {
		request_head(head, sizeof(head), a, "TCP");
		if (o->response_bytes)
			snprintf(head + strlen(head), sizeof(head) - strlen(head), " respond=%u",
				 o->response_bytes);
		if (o->payload_bytes)
			strcat(head, " "); /* the filler stays a word of its own */
		req_len = build_request(req, sizeof(req), head, o->payload_bytes);
	}
	if (req_len < 0) {
		fail(a, "send", -E2BIG);
		goto out;
	}
	a->sent_bytes = (unsigned int)req_len;
	if (o->tfo) {
		/* TCP Fast Open without a cookie: the SYN carries the first bytes of the
		 * request (sendto with MSG_FASTOPEN connects and sends at once) */
		if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, &one, sizeof(one))) {
			fail(a, "connect", -errno);
			goto out;
		}
		n = sendto(fd, req, (size_t)req_len, MSG_FASTOPEN | MSG_NOSIGNAL,
			   (const struct sockaddr *)&o->dst, o->dst_len);
		if (n < 0 && errno != EINPROGRESS) {
			fail(a, "connect", -errno);
			goto out;
		}
		a->syn_data = n > 0 ? (int)n : 0;
		off = n > 0 ? (size_t)n : 0;
	} else if (o->http) {
		if (connect(fd, (const struct sockaddr *)&o->dst, o->dst_len) &&
		    errno != EINPROGRESS) {
			fail(a, "connect", -errno);
			goto out;
		}
		local_name(fd, a); /* bound by connect(): known even if the handshake never ends */
	}
	r = wait_fd(fd, POLLOUT, deadline);
	if (r <= 0) {
		fail(a, "connect", r);
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &sl) || so_err) {
		fail(a, "connect", so_err ? -so_err : -errno);
		goto out;
	}
	while (off < (size_t)req_len) {
		n = send(fd, req + off, (size_t)req_len - off, MSG_NOSIGNAL);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			fail(a, "send", -errno);
			goto out;
		}
		r = wait_fd(fd, POLLOUT, deadline);
		if (r <= 0) {
			fail(a, "send", r);
			goto out;
		}
	}

	while (!tcp_complete(o, buf, len, eof)) {
		if (len == REPLY_MAX) {
			eof = true; /* too long: judge what we have */
			break;
		}
		r = wait_fd(fd, POLLIN, deadline);
		if (r <= 0) {
			err = r;
			break;
		}
		n = recv(fd, buf + len, REPLY_MAX - len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0)
			eof = true;
		len += (size_t)n;
	}
	if (!len) {
		fail(a, "reply", err ? err : (eof ? -ECONNRESET : 0));
		if (eof && !err)
			a->error = "closed";
		goto out;
	}
	if (err && !tcp_complete(o, buf, len, true)) {
		set_raw(a, buf, len);
		fail(a, "reply", err);
		goto out;
	}
	tcp_finish(o, a, buf, len, true);
	if (a->allowed && o->response_bytes) {
		const char *nl = memchr(buf, '\n', len);

		err = read_filler(fd, a, nl ? nl + 1 : buf + len, len, buf, o->response_bytes,
				  deadline);
		if (err) {
			fail(a, "reply", err);
			a->error = "short_response";
		}
	}
out:
	if (o->tfo && a->syn_data > 0) {
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);

		memset(&ti, 0, sizeof(ti));
		if (!getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl))
			a->syn_data_acked = ti.tcpi_options & TCPI_OPT_SYN_DATA;
	}
	if (o->payload_bytes)
		a->path_mtu = path_mtu(fd, o->dst.ss_family);
	close(fd);
}

static void udp_attempt(const struct opts *o, struct attempt *a, uint64_t start,
			uint64_t deadline, char *buf)
{
	char req[REQ_MAX + 1], tag[32], head[160];
	uint64_t step, window;
	unsigned int nonce, fit;
	const char *echoed;
	json_t *reply;
	int fd, r, req_len, eno;
	bool pmtu = o->payload_bytes > 0, resend = false;
	ssize_t n;

	fd = open_socket(o, SOCK_DGRAM);
	if (fd < 0) {
		fail(a, "connect", fd);
		return;
	}
	/* connected: the kernel only passes answers from the address we sent to */
	if (connect(fd, (const struct sockaddr *)&o->dst, o->dst_len)) {
		fail(a, "connect", -errno);
		goto out;
	}
	if (pmtu && (r = pmtu_discover(fd, o->dst.ss_family))) {
		fail(a, "connect", r);
		goto out;
	}
	local_name(fd, a);
	nonce = (unsigned int)(start ^ (start >> 32) ^ ((uint64_t)getpid() << 16)) ^ a->seq;
	snprintf(tag, sizeof(tag), "nonce=%08x", nonce);
	request_head(head, sizeof(head), a, "UDP");
	snprintf(head + strlen(head), sizeof(head) - strlen(head), " %s%s", tag, pmtu ? " " : "");
	req_len = build_request(req, sizeof(req), head, o->payload_bytes);
	step = (deadline - start) / o->udp_tries;
	/* one more datagram than the tries when an ICMP fragmentation-needed (or a path MTU
	 * the kernel already knew) asked for a smaller one */
	for (a->tries = 0; a->tries < o->udp_tries || resend;) {
		resend = false;
		if (send(fd, req, (size_t)req_len, MSG_NOSIGNAL) < 0) {
			if (errno == EMSGSIZE && pmtu && !a->pmtu_retried &&
			    (fit = fit_pmtu(fd, o->dst.ss_family, a, (unsigned int)req_len))) {
				int k;

				/* too big for this host's own route: the kernel also queued
				 * that local error (IP_RECVERR); it must not end the resend */
				for (k = 0; k < 16 && read_errqueue(fd, a); k++)
					;
				req_len = build_request(req, sizeof(req), head, fit);
				a->pmtu_retried = resend = true;
				continue;
			}
			fail(a, "send", -errno);
			goto out;
		}
		a->sent_bytes = (unsigned int)req_len;
		a->tries++;
		window = a->tries >= o->udp_tries ? deadline : start + step * a->tries;
		for (;;) {
			r = wait_fd(fd, POLLIN, window);
			if (r < 0) {
				fail(a, "reply", r);
				goto out;
			}
			if (r == 0)
				break; /* next try, or timeout after the last */
			eno = pmtu ? read_errqueue(fd, a) : 0;
			if (eno == EMSGSIZE && !a->pmtu_retried &&
			    (fit = fit_pmtu(fd, o->dst.ss_family, a, (unsigned int)req_len))) {
				/* fragmentation needed: once more, fitting the reported MTU */
				req_len = build_request(req, sizeof(req), head, fit);
				a->pmtu_retried = resend = true;
				break;
			}
			if (eno) {
				fail(a, "reply", -eno);
				goto out;
			}
			n = recv(fd, buf, REPLY_MAX - 1, 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR ||
				      (pmtu && errno == EMSGSIZE)))
				continue;
			if (n < 0) {
				fail(a, "reply", -errno);
				goto out;
			}
			reply = json_loadb(buf, (size_t)n, 0, NULL);
			echoed = json_string_value(json_object_get(reply, "request"));
			if (json_is_object(reply) && (!echoed || strstr(echoed, tag))) {
				a->reply = reply;
				a->allowed = true;
				goto out;
			}
			if (!json_is_object(reply))
				set_raw(a, buf, (size_t)n);
			json_decref(reply); /* a stray or garbled datagram: keep waiting */
		}
	}
	fail(a, "reply", -ETIMEDOUT);
out:
	if (pmtu)
		a->path_mtu = path_mtu(fd, o->dst.ss_family);
	close(fd);
}

/* The 16-bit ones' complement sum of RFC 1071 over an ICMP message. */
static uint16_t icmp_checksum(const void *data, size_t len)
{
	const uint8_t *b = data;
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* One echo request; the answer must be an echo reply from --to with our id and sequence. */
static void icmp_attempt(const struct opts *o, struct attempt *a, uint64_t deadline, char *buf)
{
	uint16_t id = (uint16_t)(getpid() ^ (now_ns() >> 10));
	struct {
		struct icmphdr h;
		char data[24];
	} req;
	int fd, r;
	ssize_t n;

	fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (fd < 0) {
		fail(a, "connect", -errno);
		return;
	}
	if (o->src_len && bind(fd, (const struct sockaddr *)&o->src, o->src_len)) {
		fail(a, "connect", -errno);
		goto out;
	}
	/* connected: only datagrams from --to reach this socket */
	if (connect(fd, (const struct sockaddr *)&o->dst, o->dst_len)) {
		fail(a, "connect", -errno);
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.h.type = ICMP_ECHO;
	req.h.un.echo.id = htons(id);
	req.h.un.echo.sequence = htons((uint16_t)a->seq);
	snprintf(req.data, sizeof(req.data), "ciliate-probe %u", a->seq);
	req.h.checksum = icmp_checksum(&req, sizeof(req));
	if (send(fd, &req, sizeof(req), MSG_NOSIGNAL) < 0) {
		fail(a, "send", -errno);
		goto out;
	}
	local_name(fd, a);
	a->local_port = 0;
	for (;;) {
		const struct iphdr *ip = (const struct iphdr *)buf;
		const struct icmphdr *h;
		size_t ihl;

		r = wait_fd(fd, POLLIN, deadline);
		if (r <= 0) {
			fail(a, "reply", r);
			goto out;
		}
		n = recv(fd, buf, REPLY_MAX, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			fail(a, "reply", -errno);
			goto out;
		}
		ihl = (size_t)ip->ihl * 4;
		if ((size_t)n < sizeof(*ip) || ihl < sizeof(*ip) || (size_t)n < ihl + sizeof(*h))
			continue;
		h = (const struct icmphdr *)(buf + ihl);
		if (h->type == ICMP_DEST_UNREACH) {
			fail(a, "reply", -EHOSTUNREACH);
			goto out;
		}
		if (h->type == ICMP_ECHOREPLY && ntohs(h->un.echo.id) == id &&
		    ntohs(h->un.echo.sequence) == (uint16_t)a->seq) {
			a->allowed = true;
			goto out;
		}
		/* our own request (the raw socket sees it when --to is local) or another's */
	}
out:
	close(fd);
}

static const char *proto_label(const struct opts *o)
{
	return o->icmp ? "ICMP" : o->udp ? "UDP" : "TCP";
}

static void print_attempt(const struct opts *o, const struct attempt *a)
{
	char backend[256];
	json_t *j;
	char *text;

	if (!o->json) {
		printf("#%u %s %s:%u %s", a->seq, proto_label(o), o->to, o->port,
		       a->allowed ? "allow" : "deny");
		if (!a->allowed)
			printf(" %s (%s)", a->error, a->stage);
		printf(" %.3fms", a->latency_ms);
		if (o->payload_bytes)
			printf(" sent=%uB pmtu=%u%s", a->sent_bytes, a->path_mtu,
			       a->pmtu_retried ? " retried" : "");
		if (a->icmp_seen)
			printf(" icmp=%u/%u mtu=%u from=%s quoting=%s:%u", a->icmp_type, a->icmp_code,
			       a->icmp_mtu, a->icmp_from, a->quoted_dst, a->quoted_port);
		if (o->tfo)
			printf(" syn_data=%d%s", a->syn_data, a->syn_data_acked ? " acked" : "");
		if (o->response_bytes)
			printf(" response=%luB", a->response_bytes);
		if (a->http_status)
			printf(" http=%d", a->http_status);
		if (a->reply) {
			probe_backend_name(a->reply, backend, sizeof(backend));
			printf(" backend=%s node=%s client=%s:%lld", backend,
			       json_string_value(json_object_get(a->reply, "node")) ?: "",
			       json_string_value(json_object_get(a->reply, "client_ip")) ?: "",
			       json_integer_value(json_object_get(a->reply, "client_port")));
		}
		printf("\n");
		fflush(stdout);
		return;
	}
	j = json_pack("{s:I,s:s,s:s,s:I}", "seq", (json_int_t)a->seq, "protocol",
		      proto_label(o), "to", o->to, "port", (json_int_t)o->port);
	if (!j)
		return;
	if (a->local_port) {
		json_object_set_new(j, "local_ip", json_string(a->local_ip));
		json_object_set_new(j, "local_port", json_integer(a->local_port));
	}
	json_object_set_new(j, "result", json_string(a->allowed ? "allow" : "deny"));
	json_object_set_new(j, "latency_ms",
			    json_real((double)(long long)(a->latency_ms * 1000 + 0.5) / 1000));
	if (a->error) {
		json_object_set_new(j, "error", json_string(a->error));
		json_object_set_new(j, "stage", json_string(a->stage));
	}
	if (o->udp)
		json_object_set_new(j, "tries", json_integer(a->tries));
	if (o->payload_bytes) {
		json_t *pm = json_pack("{s:I,s:b}", "path_mtu", (json_int_t)a->path_mtu, "retried",
				       a->pmtu_retried);

		json_object_set_new(j, "payload_bytes", json_integer(a->sent_bytes));
		if (pm && a->icmp_seen)
			json_object_set_new(pm, "icmp", json_pack("{s:I,s:I,s:I,s:s,s:s,s:I}",
				"type", (json_int_t)a->icmp_type, "code", (json_int_t)a->icmp_code,
				"mtu", (json_int_t)a->icmp_mtu, "from", a->icmp_from, "quoted_dst",
				a->quoted_dst, "quoted_port", (json_int_t)a->quoted_port));
		json_object_set_new(j, "pmtu", pm);
	}
	if (o->tfo) {
		json_object_set_new(j, "syn_data", json_integer(a->syn_data));
		json_object_set_new(j, "syn_data_acked", json_boolean(a->syn_data_acked));
	}
	if (o->response_bytes)
		json_object_set_new(j, "response_bytes", json_integer((json_int_t)a->response_bytes));
	if (a->http_status)
		json_object_set_new(j, "http_status", json_integer(a->http_status));
	if (a->reply)
		json_object_set(j, "reply", a->reply);
	else if (a->raw[0])
		json_object_set_new(j, "raw", json_string(a->raw));
	text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
	json_decref(j);
	if (text)
		printf("%s\n", text);
	fflush(stdout);
	free(text);
}

static void print_summary(const struct opts *o, const struct probe_summary *s)
{
	const char *key;
	json_t *j, *v;
	char *text;

	if (!o->json) {
		printf("summary: %u/%u allowed", s->allowed, s->requested);
		if (s->attempts < s->requested)
			printf(" (%u not attempted: --max-time-ms reached)",
			       s->requested - s->attempts);
		printf("; backends:");
		json_object_foreach(s->backends, key, v)
			printf(" %s=%lld", key, json_integer_value(v));
		json_object_foreach(s->errors, key, v)
			printf("; %s=%lld", key, json_integer_value(v));
		printf("\n");
		return;
	}
	j = probe_summary_json(s);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (text)
		printf("%s\n", text);
	free(text);
}

static void sleep_until(uint64_t t)
{
	struct timespec ts;
	uint64_t now = now_ns();

	if (t <= now)
		return;
	ts.tv_sec = (time_t)((t - now) / 1000000000ull);
	ts.tv_nsec = (long)((t - now) % 1000000000ull);
	nanosleep(&ts, NULL);
}

static volatile sig_atomic_t stream_stop;

static void on_stop(int sig)
{
	(void)sig;
	stream_stop = 1;
}

/* Reads until the request's answer line is complete; 1 done, 0 timed out, -errno. */
static int stream_answer(int fd, char *buf, size_t *len, uint64_t deadline)
{
	char *nl;
	ssize_t n;
	int r;

	for (;;) {
		nl = memchr(buf, '\n', *len);
		if (nl) {
			*len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, *len);
			return 1;
		}
		if (*len == REPLY_MAX)
			return -EMSGSIZE;
		r = wait_fd(fd, POLLIN, deadline);
		if (r <= 0)
			return r;
		n = recv(fd, buf + *len, REPLY_MAX - *len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		*len += (size_t)n;
	}
}

/* --stream: one connection, a request every interval until told to stop; any unanswered
 * request or connection error ends it as a failure. */
static int run_stream(const struct opts *o, char *buf)
{
	uint64_t end = now_ns() + (uint64_t)o->max_time_ms * 1000000ull, deadline, next;
	unsigned int interval = o->interval_ms ? o->interval_ms : 20, sent = 0, answered = 0;
	struct attempt a = { .seq = 1 };
	char req[64];
	size_t len = 0;
	int fd, r, req_len;
	socklen_t sl = sizeof(int);
	int so_err = 0;
	json_t *j;
	char *text;

	signal(SIGUSR1, on_stop);
	signal(SIGTERM, on_stop);
	fd = open_socket(o, SOCK_STREAM);
	if (fd < 0) {
		fail(&a, "connect", fd);
		goto report;
	}
	if (connect(fd, (const struct sockaddr *)&o->dst, o->dst_len) && errno != EINPROGRESS) {
		fail(&a, "connect", -errno);
		goto report;
	}
	r = wait_fd(fd, POLLOUT, now_ns() + (uint64_t)o->timeout_ms * 1000000ull);
	if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &sl) || so_err) {
		fail(&a, "connect", r <= 0 ? r : -so_err);
		goto report;
	}
	local_name(fd, &a);
	a.allowed = true;
	while (!stream_stop && now_ns() < end) {
		req_len = snprintf(req, sizeof(req), "ciliate-probe stream seq=%u\n", sent + 1);
		if (send(fd, req, (size_t)req_len, MSG_NOSIGNAL) != req_len) {
			fail(&a, "send", -errno);
			break;
		}
		sent++;
		deadline = now_ns() + (uint64_t)o->timeout_ms * 1000000ull;
		r = stream_answer(fd, buf, &len, deadline);
		if (r <= 0) {
			fail(&a, "reply", r);
			break;
		}
		if (!answered++) {
			printf("{\"stream\":\"open\"}\n");
			fflush(stdout);
		}
		next = now_ns() + (uint64_t)interval * 1000000ull;
		while (!stream_stop && now_ns() < next)
			sleep_until(next < now_ns() + 5000000ull ? next : now_ns() + 5000000ull);
	}
report:
	if (fd >= 0)
		close(fd);
	j = json_pack("{s:I,s:s,s:s,s:I,s:s,s:I,s:I}", "seq", (json_int_t)1, "protocol", "TCP",
		      "to", o->to, "port", (json_int_t)o->port, "result",
		      a.allowed && answered ? "allow" : "deny", "requests", (json_int_t)sent,
		      "answered", (json_int_t)answered);
	if (j && a.local_port) {
		json_object_set_new(j, "local_ip", json_string(a.local_ip));
		json_object_set_new(j, "local_port", json_integer(a.local_port));
	}
	if (j && a.error) {
		json_object_set_new(j, "error", json_string(a.error));
		json_object_set_new(j, "stage", json_string(a.stage));
	}
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (text)
		printf("%s\n", text);
	fflush(stdout);
	free(text);
	return a.allowed && answered ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct opts o = { .timeout_ms = DEFAULT_TIMEOUT_MS, .count = 1,
			  .max_time_ms = DEFAULT_MAX_TIME_MS, .udp_tries = DEFAULT_UDP_TRIES };
	struct probe_summary sum;
	uint64_t run_deadline, start, deadline;
	struct attempt a;
	unsigned int seq;
	char *buf = NULL;
	int err, rc;

	err = parse_args(argc, argv, &o);
	if (err) {
		if (err < 0)
			usage(stderr);
		return err < 0 ? 2 : 0;
	}
	buf = malloc(REPLY_MAX);
	if (buf && o.stream) {
		rc = run_stream(&o, buf);
		free(buf);
		return rc;
	}
	if (!buf || probe_summary_init(&sum, o.count)) {
		fprintf(stderr, "ciliate-probe: out of memory\n");
		free(buf);
		return 1;
	}
	run_deadline = now_ns() + (uint64_t)o.max_time_ms * 1000000ull;
	for (seq = 1; seq <= o.count; seq++) {
		start = now_ns();
		if (start >= run_deadline)
			break;
		deadline = start + (uint64_t)o.timeout_ms * 1000000ull;
		if (deadline > run_deadline)
			deadline = run_deadline;
		memset(&a, 0, sizeof(a));
		a.seq = seq;
		if (o.icmp)
			icmp_attempt(&o, &a, deadline, buf);
		else if (o.udp)
			udp_attempt(&o, &a, start, deadline, buf);
		else
			tcp_attempt(&o, &a, deadline, buf);
		a.latency_ms = (double)(now_ns() - start) / 1e6;
		print_attempt(&o, &a);
		probe_summary_add(&sum, a.allowed, a.error, a.reply);
		json_decref(a.reply);
		if (o.interval_ms && seq < o.count) {
			deadline = now_ns() + (uint64_t)o.interval_ms * 1000000ull;
			sleep_until(deadline < run_deadline ? deadline : run_deadline);
		}
	}
	if (o.summary)
		print_summary(&o, &sum);
	if (sum.attempts < sum.requested)
		fprintf(stderr, "ciliate-probe: stopped after %u of %u attempts (--max-time-ms %u)\n",
			sum.attempts, sum.requested, o.max_time_ms);
	rc = sum.allowed == sum.requested ? 0 : 1;
	probe_summary_free(&sum);
	free(buf);
	fflush(stdout);
	return rc;
}
