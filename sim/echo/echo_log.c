/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate-echo's messages: one stderr line each, tagged with a site or a sites-file line. */
#include <stdarg.h>
#include <stdio.h>

#include "echo.h"

/* Logs one line tagged with the identity id (NULL: untagged, for the multi-site process). */
void echo_log(const struct echo_ident *id, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!id) {
		fprintf(stderr, "ciliate-echo: %s\n", line);
		return;
	}
	fprintf(stderr, "ciliate-echo[%s%s%s]: %s\n", id->namespace ? id->namespace : "",
		id->namespace && *id->namespace ? "/" : "", id->pod ? id->pod : "", line);
}

/* Reports a problem with site s, "FILE:LINE: " first when it comes from a sites file. */
void echo_site_error(const struct site *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->file)
		fprintf(stderr, "ciliate-echo: %s:%u: %s\n", s->file, s->line, msg);
	else
		fprintf(stderr, "ciliate-echo: %s\n", msg);
}
