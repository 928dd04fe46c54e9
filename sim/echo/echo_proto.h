/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure helpers of the simulator's echo server: HTTP request sniffing and parsing, the JSON
 * reply, the HTTP response. No sockets, no I/O: everything here is unit-tested.
 */
#ifndef CILIATE_SIM_ECHO_PROTO_H
#define CILIATE_SIM_ECHO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <jansson.h>

#define ECHO_HTTP_MAX_HEADERS 64
#define ECHO_IP_STRLEN INET6_ADDRSTRLEN
/* At most this many bytes of an echo-mode request are copied into the reply. */
#define ECHO_REQUEST_ECHO_MAX 256

/* Who the server is: the identity it reports in every reply. */
struct echo_ident {
	const char *pod;
	const char *namespace;
	const char *node;
};

/* The two ends of one request as the server saw them. */
struct echo_peer {
	char client_ip[ECHO_IP_STRLEN];
	unsigned int client_port;
	char server_ip[ECHO_IP_STRLEN];
	unsigned int server_port;
	const char *protocol; /* "TCP" or "UDP" */
};

/* A slice of the request buffer (not NUL-terminated). */
struct echo_str {
	const char *p;
	size_t len;
};

struct echo_http_header {
	struct echo_str name;
	struct echo_str value;
};

/* A parsed HTTP/1.x request head; every slice points into the caller's buffer. */
struct echo_http_req {
	struct echo_str method;
	struct echo_str target;
	struct echo_str version;
	unsigned int n_headers;
	struct echo_http_header headers[ECHO_HTTP_MAX_HEADERS];
};

/* Says whether a TCP stream starting with buf is HTTP: 1 yes, 0 no, -EAGAIN too short to tell. */
int echo_http_sniff(const char *buf, size_t len);

/*
 * Parses an HTTP/1.x request head (request line and headers, CRLF or bare LF). Returns the
 * head's length in bytes when complete, -EAGAIN when more bytes are needed, -EINVAL when
 * malformed, -E2BIG when it has more than ECHO_HTTP_MAX_HEADERS headers.
 */
int echo_http_parse(const char *buf, size_t len, struct echo_http_req *req);

/*
 * Builds the reply object: identity, addresses, protocol; with req, also method, path,
 * http_version and headers (names lower-cased, repeats joined with ", "); with data, the
 * first ECHO_REQUEST_ECHO_MAX request bytes as "request". Wire bytes other than printable
 * ASCII, tab, CR and LF become '?'. Returns a new reference, or NULL when out of memory.
 */
json_t *echo_reply_json(const struct echo_ident *id, const struct echo_peer *peer,
			const struct echo_http_req *req, const char *data, size_t data_len);

/* The most filler bytes an echo-mode request may ask for with respond=N (64 MiB). */
#define ECHO_RESPOND_MAX (64u << 20)

/*
 * An echo-mode request asks for N bytes of filler after its answer line with the word
 * "respond=N" among its first ECHO_REQUEST_ECHO_MAX bytes (words separated by spaces).
 * Returns N, 0 when not asked, -EINVAL when N is not a number in 1..ECHO_RESPOND_MAX.
 */
long echo_respond_bytes(const char *data, size_t len);

/*
 * Formats a complete HTTP/1.1 response ("Connection: close", JSON content type) into a new
 * malloc'ed buffer, its length in *len; head_only leaves the body out (HEAD) but keeps its
 * Content-Length. Returns NULL when out of memory.
 */
char *echo_http_response(int status, const char *body, size_t body_len, bool head_only,
			 size_t *len);

/* Writes sa's address as text (IPv4-mapped IPv6 as plain IPv4) and its port; 0 or -errno. */
int echo_addr_format(const struct sockaddr *sa, char *ip, size_t ip_len, unsigned int *port);

/*
 * Splits one sites-file line in place into its words (separated by spaces, tabs, CR, VT or
 * FF; no quoting), NUL-terminating each and storing it in words, which needs room for
 * strlen(line) / 2 + 1 entries. A line whose first word starts with '#' is a comment: no
 * words. Returns the number of words.
 */
size_t echo_split_words(char *line, char **words);

#endif
