/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure helpers of the simulator's prober: request building, HTTP response parsing, error
 * names and the per-run summary. No sockets, no I/O: everything here is unit-tested.
 */
#ifndef CILIATE_SIM_PROBE_PROTO_H
#define CILIATE_SIM_PROBE_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define PROBE_MAX_HEADERS 32

/* A parsed HTTP/1.x response; body points into the caller's buffer. */
struct probe_http_resp {
	int status;
	const char *body;
	size_t body_len;
};

/* Counts of one run of attempts: outcomes, errors and which backend answered. */
struct probe_summary {
	unsigned int requested;
	unsigned int attempts;
	unsigned int allowed;
	unsigned int denied;
	json_t *errors;   /* error name -> count */
	json_t *backends; /* "namespace/pod" -> count */
};

/* Maps a socket errno to the probe's error vocabulary: refused, unreachable, reset, ... */
const char *probe_errno_name(int err);

/*
 * Writes an HTTP/1.1 request (Host unless host is NULL, User-Agent, Accept, Connection:
 * close, then the extra "Name: value" headers) into buf. Returns its length, or -ENOSPC if
 * it does not fit.
 */
int probe_http_request(char *buf, size_t size, const char *method, const char *path,
		       const char *host, const char *const *headers, unsigned int n_headers);

/*
 * Parses an HTTP/1.x response in buf (eof: the peer closed). Returns 0 when complete (by
 * Content-Length, or at EOF without one), -EAGAIN when more bytes are needed, -EINVAL when
 * malformed or cut short.
 */
int probe_http_response(const char *buf, size_t len, bool eof, struct probe_http_resp *resp);

/* Writes the backend name of an echo reply, "namespace/pod" (or "pod"), into buf. */
void probe_backend_name(const json_t *reply, char *buf, size_t size);

/* Starts a summary for `requested` attempts; 0 or -ENOMEM. */
int probe_summary_init(struct probe_summary *s, unsigned int requested);

/* Counts one attempt: reply (may be NULL) for allowed ones, error for denied ones. */
void probe_summary_add(struct probe_summary *s, bool allowed, const char *error,
		       const json_t *reply);

/* Returns {"summary":{...}} as a new reference (NULL when out of memory). */
json_t *probe_summary_json(const struct probe_summary *s);

/* Releases the summary's counters. */
void probe_summary_free(struct probe_summary *s);

#endif
