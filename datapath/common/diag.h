/* SPDX-License-Identifier: Apache-2.0 */
/* Errors a person can act on: a message naming where (file:line, field) and why. */
#ifndef CILIATE_DIAG_H
#define CILIATE_DIAG_H

#include <stddef.h>

struct diag {
	char msg[1024];
};

/* Formats the message into d (if non-NULL) and returns -EINVAL, for `return diag_fail(...)`. */
int diag_fail(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Same, returning the given negative errno. */
int diag_fail_errno(struct diag *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "prefix: " (for adding context while unwinding). */
void diag_prefix(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
