/* SPDX-License-Identifier: Apache-2.0 */
#include "echo_proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECHO_METHOD_MAX 16

static bool is_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

int echo_http_sniff(const char *buf, size_t len)
{
	static const char version[] = "HTTP/";
	size_t i = 0, v;

	/* method: 1..ECHO_METHOD_MAX upper-case letters, then one space */
	while (i < len && buf[i] >= 'A' && buf[i] <= 'Z' && i <= ECHO_METHOD_MAX)
		i++;
	if (i == len)
		return i <= ECHO_METHOD_MAX ? -EAGAIN : 0;
	if (i == 0 || i > ECHO_METHOD_MAX || buf[i] != ' ')
		return 0;
	i++;
	/* request-target: origin form, asterisk or absolute form */
	if (i == len)
		return -EAGAIN;
	if (buf[i] != '/' && buf[i] != '*' && buf[i] != 'h')
		return 0;
	while (i < len && buf[i] != ' ') {
		if (buf[i] == '\r' || buf[i] == '\n' || buf[i] == '\t')
			return 0;
		i++;
	}
	if (i == len)
		return -EAGAIN;
	i++;
	for (v = 0; v < sizeof(version) - 1; v++, i++) {
		if (i == len)
			return -EAGAIN;
		if (buf[i] != version[v])
			return 0;
	}
	return 1;
}

/* Finds the line starting at off; its end (CR stripped) in *end, the next line in *next. */
static int next_line(const char *buf, size_t len, size_t off, size_t *end, size_t *next)
{
	const char *nl = memchr(buf + off, '\n', len - off);
	size_t e;

	if (!nl)
		return -EAGAIN;
	e = (size_t)(nl - buf);
	*next = e + 1;
	if (e > off && buf[e - 1] == '\r')
		e--;
	*end = e;
	return 0;
}

static int parse_request_line(const char *line, size_t len, struct echo_http_req *req)
{
	const char *sp1, *sp2;
	size_t i;

	sp1 = memchr(line, ' ', len);
	if (!sp1 || sp1 == line)
		return -EINVAL;
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line));
	if (!sp2 || sp2 == sp1 + 1)
		return -EINVAL;
	req->method = (struct echo_str){ line, (size_t)(sp1 - line) };
	req->target = (struct echo_str){ sp1 + 1, (size_t)(sp2 - sp1 - 1) };
	req->version = (struct echo_str){ sp2 + 1, len - (size_t)(sp2 + 1 - line) };
	for (i = 0; i < req->method.len; i++)
		if (!is_tchar((unsigned char)req->method.p[i]))
			return -EINVAL;
	for (i = 0; i < req->target.len; i++)
		if ((unsigned char)req->target.p[i] <= ' ' || req->target.p[i] == 0x7f)
			return -EINVAL;
	if (req->version.len != 8 || memcmp(req->version.p, "HTTP/1.", 7) ||
	    !isdigit((unsigned char)req->version.p[7]))
		return -EINVAL;
	return 0;
}

static int parse_header(const char *line, size_t len, struct echo_http_header *h)
{
	const char *colon = memchr(line, ':', len);
	const char *v, *end = line + len;
	size_t i;

	if (!colon || colon == line)
		return -EINVAL;
	for (i = 0; i < (size_t)(colon - line); i++)
		if (!is_tchar((unsigned char)line[i]))
			return -EINVAL;
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	h->name = (struct echo_str){ line, (size_t)(colon - line) };
	h->value = (struct echo_str){ v, (size_t)(end - v) };
	return 0;
}

int echo_http_parse(const char *buf, size_t len, struct echo_http_req *req)
{
	size_t off = 0, end, next;
	int err;

	memset(req, 0, sizeof(*req));
	err = next_line(buf, len, off, &end, &next);
	if (err)
		goto out;
	err = parse_request_line(buf, end, req);
	if (err)
		goto out;
	for (off = next;; off = next) {
		err = next_line(buf, len, off, &end, &next);
		if (err)
			goto out;
		if (end == off)
			break;
		if (buf[off] == ' ' || buf[off] == '\t') {
			err = -EINVAL; /* obsolete line folding */
			goto out;
		}
		if (req->n_headers == ECHO_HTTP_MAX_HEADERS) {
			err = -E2BIG;
			goto out;
		}
		err = parse_header(buf + off, end - off, &req->headers[req->n_headers]);
		if (err)
			goto out;
		req->n_headers++;
	}
	err = next > (size_t)0x7fffffff ? -E2BIG : (int)next;
out:
	return err;
}

/* A JSON string of wire bytes: bytes other than printable ASCII, tab, CR and LF become '?'. */
static json_t *wire_string(const char *p, size_t len, bool lower)
{
	json_t *s;
	char *copy;
	size_t i;

	copy = malloc(len + 1);
	if (!copy)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c > 0x7e)
			c = '?';
		copy[i] = (char)(lower ? tolower(c) : c);
	}
	copy[len] = '\0';
	s = json_stringn(copy, len);
	free(copy);
	return s;
}

static int add_headers(json_t *obj, const struct echo_http_req *req)
{
	json_t *headers = json_object();
	unsigned int i;
	int err = 0;

	if (!headers)
		return -ENOMEM;
	for (i = 0; i < req->n_headers && !err; i++) {
		const struct echo_http_header *h = &req->headers[i];
		json_t *name = wire_string(h->name.p, h->name.len, true);
		json_t *value = wire_string(h->value.p, h->value.len, false);
		json_t *prev;

		if (!name || !value) {
			err = -ENOMEM;
		} else if ((prev = json_object_get(headers, json_string_value(name)))) {
			char *joined = NULL;

			if (asprintf(&joined, "%s, %s", json_string_value(prev),
				     json_string_value(value)) < 0)
				err = -ENOMEM;
			else if (json_object_set_new(headers, json_string_value(name),
						     json_string(joined)))
				err = -ENOMEM;
			free(joined);
		} else if (json_object_set(headers, json_string_value(name), value)) {
			err = -ENOMEM;
		}
		json_decref(name);
		json_decref(value);
	}
	if (!err && json_object_set_new(obj, "headers", headers))
		return -ENOMEM;
	if (err)
		json_decref(headers);
	return err;
}

json_t *echo_reply_json(const struct echo_ident *id, const struct echo_peer *peer,
			const struct echo_http_req *req, const char *data, size_t data_len)
{
	json_t *obj = json_object();
	int err = 0;

	if (!obj)
		return NULL;
	err |= json_object_set_new(obj, "pod", json_string(id->pod ? id->pod : ""));
	err |= json_object_set_new(obj, "namespace",
				   json_string(id->namespace ? id->namespace : ""));
	err |= json_object_set_new(obj, "node", json_string(id->node ? id->node : ""));
	err |= json_object_set_new(obj, "client_ip", json_string(peer->client_ip));
	err |= json_object_set_new(obj, "client_port", json_integer(peer->client_port));
	err |= json_object_set_new(obj, "server_ip", json_string(peer->server_ip));
	err |= json_object_set_new(obj, "server_port", json_integer(peer->server_port));
	err |= json_object_set_new(obj, "protocol", json_string(peer->protocol));
	if (req) {
		err |= json_object_set_new(obj, "method",
					   wire_string(req->method.p, req->method.len, false));
		err |= json_object_set_new(obj, "path",
					   wire_string(req->target.p, req->target.len, false));
		err |= json_object_set_new(obj, "http_version",
					   wire_string(req->version.p, req->version.len, false));
		if (!err)
			err = add_headers(obj, req);
	} else if (data) {
		if (data_len > ECHO_REQUEST_ECHO_MAX)
			data_len = ECHO_REQUEST_ECHO_MAX;
		err |= json_object_set_new(obj, "request", wire_string(data, data_len, false));
	}
	if (err) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 408:
		return "Request Timeout";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	default:
		return "Unknown";
	}
}

char *echo_http_response(int status, const char *body, size_t body_len, bool head_only,
			 size_t *len)
{
	char *out = NULL, *buf;
	int n;

	n = asprintf(&out,
		     "HTTP/1.1 %d %s\r\n"
		     "Server: ciliate-echo\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: close\r\n"
		     "\r\n",
		     status, http_reason(status), body_len);
	if (n < 0)
		return NULL;
	if (head_only || !body_len) {
		*len = (size_t)n;
		return out;
	}
	buf = realloc(out, (size_t)n + body_len);
	if (!buf) {
		free(out);
		return NULL;
	}
	memcpy(buf + n, body, body_len);
	*len = (size_t)n + body_len;
	return buf;
}

int echo_addr_format(const struct sockaddr *sa, char *ip, size_t ip_len, unsigned int *port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	int err = 0;

	switch (sa->sa_family) {
	case AF_INET:
		if (!inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)ip_len))
			err = -errno;
		*port = ntohs(sin->sin_port);
		break;
	case AF_INET6:
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			if (!inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, (socklen_t)ip_len))
				err = -errno;
		} else if (!inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)ip_len)) {
			err = -errno;
		}
		*port = ntohs(sin6->sin6_port);
		break;
	default:
		err = -EAFNOSUPPORT;
	}
	return err;
}

size_t echo_split_words(char *line, char **words)
{
	static const char blanks[] = " \t\r\v\f";
	size_t n = 0;
	char *w;

	while ((w = strsep(&line, blanks))) {
		if (!*w)
			continue; /* a run of blanks */
		if (!n && *w == '#')
			return 0;
		words[n++] = w;
	}
	return n;
}

long echo_respond_bytes(const char *data, size_t len)
{
	static const char word[] = "respond=";
	const size_t wl = sizeof(word) - 1;
	unsigned long v = 0;
	size_t i, k;

	if (len > ECHO_REQUEST_ECHO_MAX)
		len = ECHO_REQUEST_ECHO_MAX;
	for (i = 0; i + wl <= len; i++) {
		if ((i && data[i - 1] != ' ') || memcmp(data + i, word, wl))
			continue;
		for (k = i + wl; k < len && data[k] >= '0' && data[k] <= '9'; k++) {
			v = v * 10 + (unsigned long)(data[k] - '0');
			if (v > ECHO_RESPOND_MAX)
				return -EINVAL;
		}
		if (k == i + wl || !v || (k < len && data[k] != ' ' && data[k] != '\n' &&
					  data[k] != '\r'))
			return -EINVAL;
		return (long)v;
	}
	return 0;
}
