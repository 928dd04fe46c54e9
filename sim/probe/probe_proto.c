/* SPDX-License-Identifier: Apache-2.0 */
#include "probe_proto.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *probe_errno_name(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case ETIMEDOUT:
		return "timeout";
	case ECONNREFUSED:
		return "refused";
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EINVAL: /* connect/send through a blackhole route */
		return "unreachable";
	case EACCES:
	case EPERM:
		return "prohibited";
	case ECONNRESET:
	case EPIPE:
		return "reset";
	case ECONNABORTED:
		return "aborted";
	case EADDRNOTAVAIL:
		return "no_source_address";
	case EMSGSIZE: /* a datagram over the path MTU (DF), even after fitting it once */
		return "msgsize";
	default:
		return "error";
	}
}

int probe_http_request(char *buf, size_t size, const char *method, const char *path,
		       const char *host, const char *const *headers, unsigned int n_headers)
{
	size_t off;
	unsigned int i;
	int n;

	n = snprintf(buf, size,
		     "%s %s HTTP/1.1\r\n"
		     "%s%s%s"
		     "User-Agent: ciliate-probe/1\r\n"
		     "Accept: application/json\r\n"
		     "Connection: close\r\n",
		     method, path, host ? "Host: " : "", host ? host : "", host ? "\r\n" : "");
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	off = (size_t)n;
	for (i = 0; i < n_headers; i++) {
		n = snprintf(buf + off, size - off, "%s\r\n", headers[i]);
		if (n < 0 || (size_t)n >= size - off)
			return -ENOSPC;
		off += (size_t)n;
	}
	if (size - off < 3)
		return -ENOSPC;
	memcpy(buf + off, "\r\n", 3);
	off += 2;
	return (int)off;
}

/* Finds the end of the head ("\r\n\r\n" or "\n\n"); returns the body offset or 0. */
static size_t head_end(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Finds Content-Length in the head; -1 when absent, -2 when invalid. */
static long long content_length(const char *head, size_t len)
{
	static const char name[] = "content-length:";
	const char *line = memchr(head, '\n', len), *end = head + len;
	long long v = -1;

	while (line && line + 1 < end) {
		line++;
		if ((size_t)(end - line) > sizeof(name) - 1 &&
		    !strncasecmp(line, name, sizeof(name) - 1)) {
			const char *p = line + sizeof(name) - 1;

			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			if (p == end || !isdigit((unsigned char)*p))
				return -2;
			for (v = 0; p < end && isdigit((unsigned char)*p); p++) {
				v = v * 10 + (*p - '0');
				if (v > (1LL << 40))
					return -2;
			}
		}
		line = memchr(line, '\n', (size_t)(end - line));
	}
	return v;
}

int probe_http_response(const char *buf, size_t len, bool eof, struct probe_http_resp *resp)
{
	size_t body_off, i;
	long long cl;
	int status = 0;

	memset(resp, 0, sizeof(*resp));
	/* "HTTP/1.x NNN" */
	if (len >= 5 && memcmp(buf, "HTTP/", 5))
		return -EINVAL;
	if (len < 12 || !(body_off = head_end(buf, len)))
		return eof ? -EINVAL : -EAGAIN;
	if (memcmp(buf, "HTTP/1.", 7) || !isdigit((unsigned char)buf[7]) || buf[8] != ' ')
		return -EINVAL;
	for (i = 9; i < 12; i++) {
		if (!isdigit((unsigned char)buf[i]))
			return -EINVAL;
		status = status * 10 + (buf[i] - '0');
	}
	if (status < 100)
		return -EINVAL;
	cl = content_length(buf, body_off);
	if (cl == -2)
		return -EINVAL;
	if (cl >= 0 && len - body_off < (size_t)cl)
		return eof ? -EINVAL : -EAGAIN;
	if (cl < 0 && !eof)
		return -EAGAIN;
	resp->status = status;
	resp->body = buf + body_off;
	resp->body_len = cl >= 0 ? (size_t)cl : len - body_off;
	return 0;
}

void probe_backend_name(const json_t *reply, char *buf, size_t size)
{
	const char *ns = json_string_value(json_object_get(reply, "namespace"));
	const char *pod = json_string_value(json_object_get(reply, "pod"));

	if (!pod || !*pod)
		pod = "?";
	if (ns && *ns)
		snprintf(buf, size, "%s/%s", ns, pod);
	else
		snprintf(buf, size, "%s", pod);
}

int probe_summary_init(struct probe_summary *s, unsigned int requested)
{
	memset(s, 0, sizeof(*s));
	s->requested = requested;
	s->errors = json_object();
	s->backends = json_object();
	if (!s->errors || !s->backends) {
		probe_summary_free(s);
		return -ENOMEM;
	}
	return 0;
}

static void count(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (v)
		json_integer_set(v, json_integer_value(v) + 1);
	else
		json_object_set_new(obj, key, json_integer(1));
}

void probe_summary_add(struct probe_summary *s, bool allowed, const char *error,
		       const json_t *reply)
{
	char name[256];

	s->attempts++;
	if (!allowed) {
		s->denied++;
		count(s->errors, error ? error : "error");
		return;
	}
	s->allowed++;
	if (reply) {
		probe_backend_name(reply, name, sizeof(name));
		count(s->backends, name);
	}
}

json_t *probe_summary_json(const struct probe_summary *s)
{
	return json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:O,s:O}}", "summary", "requested",
			 (json_int_t)s->requested, "attempts", (json_int_t)s->attempts,
			 "allowed", (json_int_t)s->allowed, "denied", (json_int_t)s->denied,
			 "distinct_backends", (json_int_t)json_object_size(s->backends),
			 "backends", s->backends, "errors", s->errors);
}

void probe_summary_free(struct probe_summary *s)
{
	json_decref(s->errors);
	json_decref(s->backends);
	s->errors = NULL;
	s->backends = NULL;
}
