/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the echo server's pure helpers (sim/echo/echo_proto.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "echo_proto.h"

#define SNIFF(s) echo_http_sniff(s, strlen(s))
#define PARSE(s, req) echo_http_parse(s, strlen(s), req)

static void test_sniff(void **state)
{
	assert_int_equal(SNIFF("GET / HTTP/1.1\r\n"), 1);
	assert_int_equal(SNIFF("POST /api/v1?x=1 HTTP/1.0\r\n"), 1);
	assert_int_equal(SNIFF("OPTIONS * HTTP/1.1\r\n"), 1);
	assert_int_equal(SNIFF("GET http://a/ HTTP/1.1\r\n"), 1);
	assert_int_equal(SNIFF("GET / HTTP/"), 1);
	/* too short to tell */
	assert_int_equal(SNIFF(""), -EAGAIN);
	assert_int_equal(SNIFF("GE"), -EAGAIN);
	assert_int_equal(SNIFF("GET "), -EAGAIN);
	assert_int_equal(SNIFF("GET /long/path"), -EAGAIN);
	assert_int_equal(SNIFF("GET / HT"), -EAGAIN);
	/* not HTTP */
	assert_int_equal(SNIFF("ciliate-probe seq=1\n"), 0);
	assert_int_equal(SNIFF("hello"), 0);
	assert_int_equal(SNIFF("get / HTTP/1.1"), 0);
	assert_int_equal(SNIFF("GET x HTTP/1.1"), 0);
	assert_int_equal(SNIFF("GET /x FOO/1.1"), 0);
	assert_int_equal(SNIFF("GET /x\r\n"), 0);
	assert_int_equal(SNIFF(" GET / HTTP/1.1"), 0);
	assert_int_equal(SNIFF("ABCDEFGHIJKLMNOPQ / HTTP/1.1"), 0); /* 17-letter method */
	assert_int_equal(SNIFF("ABCDEFGHIJKLMNOP / HTTP/1.1"), 1);
}

static bool str_eq(struct echo_str s, const char *want)
{
	return s.len == strlen(want) && !memcmp(s.p, want, s.len);
}

static void test_parse_full(void **state)
{
	const char *req_text = "GET /a/b?c=d HTTP/1.1\r\n"
			       "Host: 10.0.0.1:80\r\n"
			       "X-Spaces:   padded value \t\r\n"
			       "Empty:\r\n"
			       "\r\n"
			       "body bytes";
	struct echo_http_req req;
	int r;

	r = PARSE(req_text, &req);
	assert_int_equal(r, (int)(strstr(req_text, "body") - req_text));
	assert_true(str_eq(req.method, "GET"));
	assert_true(str_eq(req.target, "/a/b?c=d"));
	assert_true(str_eq(req.version, "HTTP/1.1"));
	assert_int_equal(req.n_headers, 3);
	assert_true(str_eq(req.headers[0].name, "Host"));
	assert_true(str_eq(req.headers[0].value, "10.0.0.1:80"));
	assert_true(str_eq(req.headers[1].name, "X-Spaces"));
	assert_true(str_eq(req.headers[1].value, "padded value"));
	assert_true(str_eq(req.headers[2].name, "Empty"));
	assert_true(str_eq(req.headers[2].value, ""));
}

static void test_parse_bare_lf(void **state)
{
	struct echo_http_req req;

	assert_int_equal(PARSE("HEAD / HTTP/1.0\nA: b\n\n", &req), 22);
	assert_true(str_eq(req.method, "HEAD"));
	assert_true(str_eq(req.version, "HTTP/1.0"));
	assert_int_equal(req.n_headers, 1);
	assert_true(str_eq(req.headers[0].value, "b"));
}

static void test_parse_incomplete(void **state)
{
	struct echo_http_req req;

	assert_int_equal(PARSE("GET / HTTP/1.1", &req), -EAGAIN);
	assert_int_equal(PARSE("GET / HTTP/1.1\r\n", &req), -EAGAIN);
	assert_int_equal(PARSE("GET / HTTP/1.1\r\nHost: x\r\n", &req), -EAGAIN);
	assert_int_equal(PARSE("GET / HTTP/1.1\r\nHost: x\r\n\r", &req), -EAGAIN);
}

static void test_parse_malformed(void **state)
{
	struct echo_http_req req;

	assert_int_equal(PARSE("GET / HTTP/2.0\r\n\r\n", &req), -EINVAL);
	assert_int_equal(PARSE("GET /\r\n\r\n", &req), -EINVAL);
	assert_int_equal(PARSE("GET  / HTTP/1.1\r\n\r\n", &req), -EINVAL);
	assert_int_equal(PARSE("G(T / HTTP/1.1\r\n\r\n", &req), -EINVAL);
	assert_int_equal(PARSE("GET / HTTP/1.1\r\nNoColon\r\n\r\n", &req), -EINVAL);
	assert_int_equal(PARSE("GET / HTTP/1.1\r\n: empty-name\r\n\r\n", &req), -EINVAL);
	assert_int_equal(PARSE("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", &req), -EINVAL);
	assert_int_equal(PARSE("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", &req), -EINVAL);
}

static void test_parse_too_many_headers(void **state)
{
	char buf[4096];
	struct echo_http_req req;
	size_t off;
	int i;

	off = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	for (i = 0; i < ECHO_HTTP_MAX_HEADERS; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "H%d: v\r\n", i);
	snprintf(buf + off, sizeof(buf) - off, "\r\n");
	assert_true(PARSE(buf, &req) > 0);
	assert_int_equal(req.n_headers, ECHO_HTTP_MAX_HEADERS);
	snprintf(buf + off, sizeof(buf) - off, "Extra: v\r\n\r\n");
	assert_int_equal(PARSE(buf, &req), -E2BIG);
}

static const struct echo_ident ident = { .pod = "web-1", .namespace = "shop", .node = "node-2" };

static struct echo_peer tcp_peer(void)
{
	struct echo_peer p = { .client_port = 40000, .server_port = 80, .protocol = "TCP" };

	strcpy(p.client_ip, "10.244.0.5");
	strcpy(p.server_ip, "10.244.1.7");
	return p;
}

static void test_reply_echo(void **state)
{
	struct echo_peer peer = tcp_peer();
	json_t *j;
	char *text;

	j = echo_reply_json(&ident, &peer, NULL, "ping\n", 5);
	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT);
	assert_string_equal(text, "{\"pod\":\"web-1\",\"namespace\":\"shop\",\"node\":\"node-2\","
				  "\"client_ip\":\"10.244.0.5\",\"client_port\":40000,"
				  "\"server_ip\":\"10.244.1.7\",\"server_port\":80,"
				  "\"protocol\":\"TCP\",\"request\":\"ping\\n\"}");
	free(text);
	json_decref(j);
}

static void test_reply_sanitizes_and_truncates(void **state)
{
	struct echo_ident anon = { 0 };
	struct echo_peer peer = tcp_peer();
	char data[1000];
	const char *req;
	json_t *j;

	memset(data, 'a', sizeof(data));
	data[0] = (char)0xff;
	data[1] = '\0';
	data[2] = 0x1b;
	j = echo_reply_json(&anon, &peer, NULL, data, sizeof(data));
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "pod")), "");
	assert_string_equal(json_string_value(json_object_get(j, "namespace")), "");
	assert_string_equal(json_string_value(json_object_get(j, "node")), "");
	req = json_string_value(json_object_get(j, "request"));
	assert_non_null(req);
	assert_int_equal(strlen(req), ECHO_REQUEST_ECHO_MAX);
	assert_memory_equal(req, "???aaa", 6);
	json_decref(j);
}

static void test_reply_http(void **state)
{
	const char *text = "POST /x HTTP/1.1\r\nHost: h\r\nX-Multi: one\r\nx-multi: two\r\n"
			   "X-Bin: \xc3\xa9t\xc3\xa9\r\n\r\n";
	struct echo_peer peer = tcp_peer();
	struct echo_http_req req;
	json_t *j, *h;

	assert_true(PARSE(text, &req) > 0);
	j = echo_reply_json(&ident, &peer, &req, NULL, 0);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/x");
	assert_string_equal(json_string_value(json_object_get(j, "http_version")), "HTTP/1.1");
	assert_null(json_object_get(j, "request"));
	h = json_object_get(j, "headers");
	assert_true(json_is_object(h));
	assert_int_equal(json_object_size(h), 3);
	assert_string_equal(json_string_value(json_object_get(h, "host")), "h");
	assert_string_equal(json_string_value(json_object_get(h, "x-multi")), "one, two");
	assert_string_equal(json_string_value(json_object_get(h, "x-bin")), "??t??");
	json_decref(j);
}

static void test_http_response(void **state)
{
	const char *body = "{\"a\":1}\n";
	size_t len;
	char *r;

	r = echo_http_response(200, body, strlen(body), false, &len);
	assert_non_null(r);
	assert_memory_equal(r, "HTTP/1.1 200 OK\r\n", 17);
	assert_non_null(memmem(r, len, "Content-Length: 8\r\n", 19));
	assert_non_null(memmem(r, len, "Connection: close\r\n", 19));
	assert_non_null(memmem(r, len, "Content-Type: application/json\r\n", 32));
	assert_true(len > strlen(body));
	assert_memory_equal(r + len - strlen(body) - 4, "\r\n\r\n", 4);
	assert_memory_equal(r + len - strlen(body), body, strlen(body));
	free(r);

	r = echo_http_response(400, body, strlen(body), true, &len);
	assert_non_null(r);
	assert_memory_equal(r, "HTTP/1.1 400 Bad Request\r\n", 26);
	assert_non_null(memmem(r, len, "Content-Length: 8\r\n", 19));
	assert_memory_equal(r + len - 4, "\r\n\r\n", 4); /* HEAD: no body */
	free(r);
}

static void test_addr_format(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(8080) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(53) };
	struct sockaddr sa = { .sa_family = AF_UNIX };
	char ip[ECHO_IP_STRLEN];
	unsigned int port = 0;

	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	assert_int_equal(echo_addr_format((struct sockaddr *)&sin, ip, sizeof(ip), &port), 0);
	assert_string_equal(ip, "192.0.2.7");
	assert_int_equal(port, 8080);

	inet_pton(AF_INET6, "fd00::1", &sin6.sin6_addr);
	assert_int_equal(echo_addr_format((struct sockaddr *)&sin6, ip, sizeof(ip), &port), 0);
	assert_string_equal(ip, "fd00::1");
	assert_int_equal(port, 53);

	inet_pton(AF_INET6, "::ffff:198.51.100.9", &sin6.sin6_addr);
	assert_int_equal(echo_addr_format((struct sockaddr *)&sin6, ip, sizeof(ip), &port), 0);
	assert_string_equal(ip, "198.51.100.9");

	assert_int_equal(echo_addr_format(&sa, ip, sizeof(ip), &port), -EAFNOSUPPORT);
}

/* Splits a copy of line; returns the words joined with '|'. */
static const char *split(const char *line, size_t *n)
{
	static char buf[256], out[256];
	char *words[sizeof(buf) / 2 + 1];
	size_t i;

	snprintf(buf, sizeof(buf), "%s", line);
	*n = echo_split_words(buf, words);
	out[0] = '\0';
	for (i = 0; i < *n; i++) {
		if (i)
			strcat(out, "|");
		strcat(out, words[i]);
	}
	return out;
}

static void test_split_words(void **state)
{
	size_t n;

	assert_string_equal(split("--pod a --port 80", &n), "--pod|a|--port|80");
	assert_int_equal(n, 4);
	assert_string_equal(split(" \t--pod  a\t\t--tcp 1 \r", &n), "--pod|a|--tcp|1");
	assert_int_equal(n, 4);
	assert_string_equal(split("x", &n), "x");
	assert_int_equal(n, 1);
	/* blank lines and comments have no words */
	split("", &n);
	assert_int_equal(n, 0);
	split(" \t \r", &n);
	assert_int_equal(n, 0);
	split("# --pod a --port 80", &n);
	assert_int_equal(n, 0);
	split("   #comment", &n);
	assert_int_equal(n, 0);
	/* '#' later in a line is an ordinary word; no quoting */
	assert_string_equal(split("--pod a#b \"c d\"", &n), "--pod|a#b|\"c|d\"");
	assert_int_equal(n, 4);
	/* the most words a line can have: strlen / 2 + 1 */
	assert_string_equal(split("a b c", &n), "a|b|c");
	assert_int_equal(n, 3);
}

/* respond=N: filler asked after the answer line (the bench's large responses) */
static void test_respond_bytes(void **state)
{
	static const char *const bad[] = { "x respond=", "x respond=0", "x respond=12a",
					   "x respond=67108865", "x respond=-1" };
	char big[300];
	size_t i;

	(void)state;
	assert_int_equal(echo_respond_bytes("ciliate-probe seq=1\n", 20), 0);
	assert_int_equal(echo_respond_bytes("ciliate-probe seq=1 respond=1048576\n", 36), 1048576);
	assert_int_equal(echo_respond_bytes("respond=5 x", 11), 5);
	assert_int_equal(echo_respond_bytes("x respond=67108864", 18), 67108864);
	/* a word of its own: "norespond=5" is not one */
	assert_int_equal(echo_respond_bytes("x norespond=5", 13), 0);
	/* only the first bytes that the reply echoes are looked at */
	memset(big, '.', sizeof(big));
	memcpy(big + 270, " respond=7", 10);
	assert_int_equal(echo_respond_bytes(big, sizeof(big)), 0);
	/* cut short by the length given: "respond=1" */
	assert_int_equal(echo_respond_bytes("x respond=12", 11), 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(echo_respond_bytes(bad[i], strlen(bad[i])), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_parse_bare_lf),
		cmocka_unit_test(test_parse_incomplete),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_too_many_headers),
		cmocka_unit_test(test_reply_echo),
		cmocka_unit_test(test_reply_sanitizes_and_truncates),
		cmocka_unit_test(test_reply_http),
		cmocka_unit_test(test_http_response),
		cmocka_unit_test(test_addr_format),
		cmocka_unit_test(test_split_words),
		cmocka_unit_test(test_respond_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
