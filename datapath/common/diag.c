/* SPDX-License-Identifier: Apache-2.0 */
#include "diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void diag_vset(struct diag *d, const char *fmt, va_list ap)
{
	if (d)
		vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
}

int diag_fail(struct diag *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vset(d, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int diag_fail_errno(struct diag *d, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vset(d, fmt, ap);
	va_end(ap);
	return err < 0 ? err : -err;
}

void diag_prefix(struct diag *d, const char *fmt, ...)
{
	char prefix[256], old[sizeof(d->msg)];
	va_list ap;

	if (!d)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, d->msg, sizeof(old));
	snprintf(d->msg, sizeof(d->msg), "%.255s: %.760s", prefix, old);
}
