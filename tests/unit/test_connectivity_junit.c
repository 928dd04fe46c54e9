/* SPDX-License-Identifier: Apache-2.0 */
/* `ciliate connectivity test --junit-file` (datapath/connectivity/junit.c): the counts, one
 * testcase per selected test, failures naming their actions, skips with their reason, and
 * text escaped so that any reason stays well-formed XML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "connectivity/ct.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[16384];
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_junit(void **state)
{
	struct ct_action acts[2] = {0};
	struct ct_test t[3] = {
		{.name = "no-policies", .selected = true, .seconds = 1.5},
		{.name = "echo-ingress",
		 .selected = true,
		 .actions = acts,
		 .nactions = 2,
		 .nfailed = 1,
		 .seconds = 2.25},
		{.name = "pod-to-pod-encryption", .selected = true, .skipped = true},
	};
	char path[] = "/tmp/ciliate-t-junit.XXXXXX", err[256], *x;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	snprintf(t[2].skip_reason, sizeof(t[2].skip_reason), "encryption <off> & \"disabled\"");
	snprintf(acts[0].name, sizeof(acts[0].name), "pod-to-pod/curl-0");
	acts[0].pass = true;
	snprintf(acts[1].name, sizeof(acts[1].name), "pod-to-pod/curl-1");
	snprintf(acts[1].src, sizeof(acts[1].src), "cilium-test/client2 (10.244.0.11)");
	snprintf(acts[1].dst, sizeof(acts[1].dst), "cilium-test/echo (10.244.0.12:8080)");
	snprintf(acts[1].reason, sizeof(acts[1].reason), "got 'an' answer\x01 <from> a&b");
	assert_int_equal(ct_junit_write(path, t, 3, 4.0, "cilium-test", err, sizeof(err)), 0);
	x = slurp(path);
	unlink(path);
	assert_non_null(strstr(x, "<testsuites tests=\"3\" failures=\"1\" skipped=\"1\""));
	assert_non_null(strstr(x, "<testsuite name=\"connectivity test\" package=\"cilium-test\""));
	assert_non_null(strstr(x, "<testcase name=\"no-policies\" classname=\"connectivity test\" "
				  "status=\"passed\" time=\"1.500\">"));
	assert_non_null(strstr(x, "<failure message=\"1 of 2 action(s) failed\" type=\"failure\">"
				  "pod-to-pod/curl-1: cilium-test/client2 (10.244.0.11) -&gt; "
				  "cilium-test/echo (10.244.0.12:8080): got &apos;an&apos; answer? "
				  "&lt;from&gt; a&amp;b\n</failure>"));
	assert_null(strstr(x, "curl-0"));
	assert_non_null(strstr(x, "<skipped message=\"encryption &lt;off&gt; &amp; "
				  "&quot;disabled&quot;\"/>"));
	/* unwritable path: an error naming the file */
	assert_int_equal(
		ct_junit_write("/nonexistent-dir/j.xml", t, 3, 1.0, "ns", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent-dir/j.xml"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_junit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
