/* SPDX-License-Identifier: Apache-2.0 */
/* --junit-file: one <testcase> per test (cilium-cli's shape), failures with their actions. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ct.h"

static void xml_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		default:
			/* control characters other than tab and newline are not allowed in XML 1.0
			 */
			if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
				fputc('?', f);
			else
				fputc(*s, f);
		}
	}
}

int ct_junit_write(const char *path, const struct ct_test *t, size_t n, double total_s,
		   const char *ns, char *err, size_t errsize)
{
	size_t i, k, tests = 0, failures = 0, skipped = 0;
	FILE *f = fopen(path, "w");

	if (!f) {
		snprintf(err, errsize, "--junit-file %s: %s", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!t[i].selected)
			continue;
		tests++;
		skipped += t[i].skipped;
		failures += !t[i].skipped && t[i].nfailed;
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(f,
		"<testsuites tests=\"%zu\" failures=\"%zu\" skipped=\"%zu\" errors=\"0\" "
		"time=\"%.3f\">\n",
		tests, failures, skipped, total_s);
	fprintf(f, "  <testsuite name=\"connectivity test\" package=\"");
	xml_escaped(f, ns);
	fprintf(f,
		"\" tests=\"%zu\" failures=\"%zu\" skipped=\"%zu\" errors=\"0\" "
		"time=\"%.3f\">\n",
		tests, failures, skipped, total_s);
	for (i = 0; i < n; i++) {
		if (!t[i].selected)
			continue;
		fprintf(f, "    <testcase name=\"");
		xml_escaped(f, t[i].name);
		fprintf(f, "\" classname=\"connectivity test\" status=\"%s\" time=\"%.3f\">\n",
			t[i].skipped   ? "skipped"
			: t[i].nfailed ? "failed"
				       : "passed",
			t[i].seconds);
		if (t[i].skipped) {
			fprintf(f, "      <skipped message=\"");
			xml_escaped(f, t[i].skip_reason);
			fprintf(f, "\"/>\n");
		} else if (t[i].nfailed) {
			size_t bad = 0;

			for (k = 0; k < t[i].nactions; k++)
				bad += !t[i].actions[k].pass;
			if (t[i].error[0] && !bad)
				fprintf(f, "      <failure message=\"the test could not run\" "
					   "type=\"failure\">");
			else
				fprintf(f,
					"      <failure message=\"%zu of %zu action(s) failed\" "
					"type=\"failure\">",
					bad, t[i].nactions);
			if (t[i].error[0]) {
				xml_escaped(f, t[i].error);
				fputc('\n', f);
			}
			for (k = 0; k < t[i].nactions; k++) {
				const struct ct_action *a = &t[i].actions[k];

				if (a->pass)
					continue;
				xml_escaped(f, a->name);
				fputs(": ", f);
				xml_escaped(f, a->src);
				xml_escaped(f, " -> ");
				xml_escaped(f, a->dst);
				fputs(": ", f);
				xml_escaped(f, a->reason[0] ? a->reason : a->observed);
				fputc('\n', f);
			}
			fprintf(f, "</failure>\n");
		}
		fprintf(f, "    </testcase>\n");
	}
	fprintf(f, "  </testsuite>\n</testsuites>\n");
	if (fclose(f)) {
		snprintf(err, errsize, "--junit-file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
