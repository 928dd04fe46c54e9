/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the prober's pure helpers (sim/probe/probe_proto.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "probe_proto.h"

static void test_errno_names(void **state)
{
	assert_string_equal(probe_errno_name(-ECONNREFUSED), "refused");
	assert_string_equal(probe_errno_name(ECONNREFUSED), "refused");
	assert_string_equal(probe_errno_name(-ETIMEDOUT), "timeout");
	assert_string_equal(probe_errno_name(-EHOSTUNREACH), "unreachable");
	assert_string_equal(probe_errno_name(-ENETUNREACH), "unreachable");
	assert_string_equal(probe_errno_name(-EINVAL), "unreachable");
	assert_string_equal(probe_errno_name(-EPERM), "prohibited");
	assert_string_equal(probe_errno_name(-ECONNRESET), "reset");
	assert_string_equal(probe_errno_name(-ENOMEM), "error");
}

static void test_http_request(void **state)
{
	const char *headers[] = { "X-A: 1", "X-B: two" };
	char buf[512];
	int n;

	n = probe_http_request(buf, sizeof(buf), "GET", "/p?q=1", "10.0.0.1:80", headers, 2);
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, "GET /p?q=1 HTTP/1.1\r\n"
				 "Host: 10.0.0.1:80\r\n"
				 "User-Agent: ciliate-probe/1\r\n"
				 "Accept: application/json\r\n"
				 "Connection: close\r\n"
				 "X-A: 1\r\n"
				 "X-B: two\r\n"
				 "\r\n");

	n = probe_http_request(buf, sizeof(buf), "HEAD", "/", NULL, NULL, 0);
	assert_true(n > 0);
	assert_null(strstr(buf, "Host:"));
	assert_memory_equal(buf, "HEAD / HTTP/1.1\r\nUser-Agent", 27);

	assert_int_equal(probe_http_request(buf, 40, "GET", "/", "h", headers, 2), -ENOSPC);
	/* exactly full: the terminating blank line and NUL must fit too */
	n = probe_http_request(buf, sizeof(buf), "GET", "/", "h", headers, 2);
	assert_int_equal(probe_http_request(buf, (size_t)n, "GET", "/", "h", headers, 2),
			 -ENOSPC);
	assert_int_equal(probe_http_request(buf, (size_t)n + 1, "GET", "/", "h", headers, 2), n);
}

#define RESP(s, eof, r) probe_http_response(s, strlen(s), eof, r)

static void test_http_response_complete(void **state)
{
	const char *text = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX: y\r\n\r\n{\"a\":1}";
	struct probe_http_resp r;

	assert_int_equal(RESP(text, false, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 7);
	assert_memory_equal(r.body, "{\"a\":1}", 7);

	/* lower-case header name, bare LF, extra bytes after the body are ignored */
	text = "HTTP/1.0 403 Forbidden\ncontent-length:  2\n\nnoEXTRA";
	assert_int_equal(RESP(text, false, &r), 0);
	assert_int_equal(r.status, 403);
	assert_int_equal(r.body_len, 2);
	assert_memory_equal(r.body, "no", 2);

	/* no Content-Length: the body runs to EOF */
	text = "HTTP/1.1 200 OK\r\n\r\n{}\n";
	assert_int_equal(RESP(text, false, &r), -EAGAIN);
	assert_int_equal(RESP(text, true, &r), 0);
	assert_int_equal(r.body_len, 3);
}

static void test_http_response_partial(void **state)
{
	struct probe_http_resp r;

	assert_int_equal(RESP("", false, &r), -EAGAIN);
	assert_int_equal(RESP("HTT", false, &r), -EAGAIN);
	assert_int_equal(RESP("HTTP/1.1 200 OK\r\n", false, &r), -EAGAIN);
	assert_int_equal(RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", false, &r),
			 -EAGAIN);
	/* cut short by EOF */
	assert_int_equal(RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", true, &r),
			 -EINVAL);
	assert_int_equal(RESP("HTTP/1.1 200 OK\r\n", true, &r), -EINVAL);
}

static void test_http_response_malformed(void **state)
{
	struct probe_http_resp r;

	assert_int_equal(RESP("{\"pod\":\"x\"}\n", false, &r), -EINVAL);
	assert_int_equal(RESP("HTTP/2.0 200 OK\r\n\r\n", true, &r), -EINVAL);
	assert_int_equal(RESP("HTTP/1.1 2x0 OK\r\n\r\n", true, &r), -EINVAL);
	assert_int_equal(RESP("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", true, &r),
			 -EINVAL);
}

static void test_backend_name(void **state)
{
	json_t *reply = json_pack("{s:s,s:s}", "pod", "web-1", "namespace", "shop");
	char buf[64];

	probe_backend_name(reply, buf, sizeof(buf));
	assert_string_equal(buf, "shop/web-1");
	json_object_set_new(reply, "namespace", json_string(""));
	probe_backend_name(reply, buf, sizeof(buf));
	assert_string_equal(buf, "web-1");
	json_object_del(reply, "pod");
	probe_backend_name(reply, buf, sizeof(buf));
	assert_string_equal(buf, "?");
	json_decref(reply);
}

static void test_summary(void **state)
{
	json_t *a = json_pack("{s:s,s:s}", "pod", "a", "namespace", "x");
	json_t *b = json_pack("{s:s,s:s}", "pod", "b", "namespace", "x");
	struct probe_summary s;
	json_t *j, *sum;
	char *text;

	assert_int_equal(probe_summary_init(&s, 5), 0);
	probe_summary_add(&s, true, NULL, a);
	probe_summary_add(&s, true, NULL, b);
	probe_summary_add(&s, true, NULL, a);
	probe_summary_add(&s, false, "timeout", NULL);
	j = probe_summary_json(&s);
	assert_non_null(j);
	sum = json_object_get(j, "summary");
	assert_int_equal(json_integer_value(json_object_get(sum, "requested")), 5);
	assert_int_equal(json_integer_value(json_object_get(sum, "attempts")), 4);
	assert_int_equal(json_integer_value(json_object_get(sum, "allowed")), 3);
	assert_int_equal(json_integer_value(json_object_get(sum, "denied")), 1);
	text = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(text, "\"distinct_backends\":2,\"backends\":{\"x/a\":2,\"x/b\":1},"
				     "\"errors\":{\"timeout\":1}"));
	free(text);
	json_decref(j);
	probe_summary_free(&s);
	json_decref(a);
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errno_names),
		cmocka_unit_test(test_http_request),
		cmocka_unit_test(test_http_response_complete),
		cmocka_unit_test(test_http_response_partial),
		cmocka_unit_test(test_http_response_malformed),
		cmocka_unit_test(test_backend_name),
		cmocka_unit_test(test_summary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
