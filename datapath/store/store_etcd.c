/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The etcd v3 store backend: etcd's JSON gRPC gateway (POST http(s)://HOST:PORT/v3/...) over
 * libcurl, JSON through jansson. Keys and values travel base64-encoded, 64-bit numbers as
 * strings. Unary calls (kv/range, kv/txn, kv/compaction, lease/grant, lease/keepalive,
 * lease/revoke) go through one curl handle per store handle; a watch is a thread that holds
 * one streaming POST /v3/watch (one JSON object per line, each {"result": WatchResponse})
 * and hands events to the caller through a queue and a pipe (the pollable fd).
 * Several endpoints are tried in order; the last one that answered is tried first.
 * See docs/STORE.md ("The etcd backend").
 */
#include "store_backend.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ETCD_EPS_MAX         16
#define ETCD_CONNECT_MS      2000
#define ETCD_REQUEST_MS      15000
#define ETCD_WATCH_OPEN_MS   10000
#define ETCD_WATCH_BATCH     4096
#define ETCD_RETRY_MIN_MS    100
#define ETCD_RETRY_MAX_MS    2000
#define ETCD_FAIL_CMP_RANGES 64   /* compares named on -ECANCELED (etcd's --max-txn-ops is 128) */
#define ETCD_BODY_MAX        (64u << 20)
#define ETCD_MAX_TXN_OPS     128  /* etcd's default --max-txn-ops */

struct etcd_conf {
	char *uri;               /* as given, for messages (without the query) */
	char *eps[ETCD_EPS_MAX]; /* "http://h:p" or "https://h:p" */
	size_t neps;
	char *ca, *cert, *key;
	char *netns;             /* connect from this network namespace (a path), or NULL */
	int netns_fd;            /* open netns, -1: none */
	long timeout_ms;         /* bound of one unary call per endpoint */
	size_t max_txn_ops;      /* the server's --max-txn-ops (max-txn-ops=, default 128) */
};

struct etcd_store {
	struct store base;
	struct etcd_conf c;
	size_t cur;              /* endpoint that answered last */
	CURL *curl;
};

struct buf {
	char *p;
	size_t len, cap;
};

enum watch_state { W_CONNECTING, W_RUNNING, W_STALE, W_FAILED };

struct etcd_watch {
	struct store_watch base;
	const struct etcd_conf *c;
	char *prefix;
	char *req;               /* the create_request body without start_revision */
	int pfd[2];              /* [0]: the caller's pollable fd; [1]: the thread signals */
	pthread_t thread;
	bool thread_started;
	CURLM *multi;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	bool stop;
	bool created;            /* the first stream was created (or the open failed) */
	enum watch_state state;
	char msg[1024];          /* why W_STALE / W_FAILED, or the last connect error */
	struct store_event *q;   /* pending events in revision order */
	size_t qn, qcap;
	int64_t next_rev;        /* start revision for a reconnect */
	/* thread only */
	struct buf line;
	size_t ep;
};

static const struct store_backend_ops etcd_ops;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static struct curl_slist *json_hdr;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	json_hdr = curl_slist_append(NULL, "Content-Type: application/json");
}

/* ---- small helpers ---------------------------------------------------------------------- */

static int buf_add(struct buf *b, const void *data, size_t n)
{
	size_t cap;
	char *p;

	if (b->len + n + 1 > b->cap) {
		if (b->len + n + 1 > ETCD_BODY_MAX)
			return -EFBIG;
		cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of len bytes; returns a malloc'ed NUL-terminated string or NULL. */
static char *b64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;
	uint32_t v;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = b64chars[v >> 18 & 63];
		*o++ = b64chars[v >> 12 & 63];
		*o++ = b64chars[v >> 6 & 63];
		*o++ = b64chars[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*o++ = b64chars[v >> 18 & 63];
		*o++ = b64chars[v >> 12 & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*o++ = b64chars[v >> 18 & 63];
		*o++ = b64chars[v >> 12 & 63];
		*o++ = b64chars[v >> 6 & 63];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decodes base64 (padding optional) into a malloc'ed buffer with a trailing NUL. */
static int b64_decode(const char *s, char **out, size_t *outlen)
{
	size_t n = strlen(s), i, o = 0;
	uint32_t acc = 0;
	int bits = 0, v;
	char *p = malloc(n / 4 * 3 + 4);

	if (!p)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (s[i] == '=')
			break;
		v = b64_val(s[i]);
		if (v < 0) {
			free(p);
			return -EBADMSG;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[o++] = (char)(acc >> bits & 0xff);
		}
	}
	p[o] = '\0';
	*out = p;
	*outlen = o;
	return 0;
}

/* A JSON int64: etcd's gateway sends them as strings; absent means 0 (proto3 default). */
static int64_t j_int(const json_t *o, const char *field)
{
	json_t *v = json_object_get(o, field);

	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return json_integer_value(v);
	return 0;
}

static json_t *j_b64(const void *data, size_t len)
{
	char *s = b64_encode(data, len);
	json_t *j = s ? json_string(s) : NULL;

	free(s);
	return j;
}

static json_t *j_i64(int64_t v)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", (long long)v);
	return json_string(s);
}

/* The end of the range of every key starting with prefix ("" -> every key: "\0"). */
static json_t *j_range_end(const char *prefix, size_t *len_out)
{
	size_t len = strlen(prefix);
	unsigned char end[STORE_KEY_MAX + 1];

	if (!len) {
		end[0] = 0;
		*len_out = 1;
		return j_b64(end, 1);
	}
	memcpy(end, prefix, len);
	while (len && end[len - 1] == 0xff)
		len--;
	if (!len) { /* only 0xff bytes: to the end of the keyspace */
		end[0] = 0;
		*len_out = 1;
		return j_b64(end, 1);
	}
	end[len - 1]++;
	*len_out = len;
	return j_b64(end, len);
}

/* Fills kv from an etcd KeyValue ({"key","value","create_revision",...}). */
static int kv_from_json(struct store_kv *kv, const json_t *j)
{
	const char *k64 = json_string_value(json_object_get(j, "key"));
	const char *v64 = json_string_value(json_object_get(j, "value"));
	char *key = NULL, *val = NULL;
	size_t klen, vlen;
	int err;

	memset(kv, 0, sizeof(*kv));
	if (!k64)
		return -EBADMSG;
	err = b64_decode(k64, &key, &klen);
	if (!err)
		err = b64_decode(v64 ? v64 : "", &val, &vlen);
	if (!err && strlen(key) != klen)
		err = -EBADMSG; /* a key with a NUL: not one of ours */
	if (err) {
		free(key);
		free(val);
		return err;
	}
	kv->key = key;
	kv->value = val;
	kv->value_len = vlen;
	kv->create_revision = j_int(j, "create_revision");
	kv->mod_revision = j_int(j, "mod_revision");
	kv->version = j_int(j, "version");
	kv->lease = j_int(j, "lease");
	return 0;
}

/* ---- configuration ---------------------------------------------------------------------- */

static void conf_free(struct etcd_conf *c)
{
	size_t i;

	free(c->uri);
	for (i = 0; i < c->neps; i++)
		free(c->eps[i]);
	free(c->ca);
	free(c->cert);
	free(c->key);
	free(c->netns);
	if (c->netns_fd >= 0)
		close(c->netns_fd);
	memset(c, 0, sizeof(*c));
	c->netns_fd = -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A %-decoded copy of s[0..n). */
static char *pct_dup(const char *s, size_t n)
{
	char *o = malloc(n + 1);
	size_t i, j = 0;

	if (!o)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			o[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			o[j++] = s[i];
		}
	}
	o[j] = '\0';
	return o;
}

static char *env_dup(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? strdup(v) : NULL;
}

/*
 * etcd://H:P[,H:P...][?ca=FILE&cert=FILE&key=FILE], etcd+http://..., etcd+https://...,
 * http://H:P, https://H:P. TLS (https) when the scheme says so or a ca/cert is given; the
 * files default to $CILIATE_STORE_CA, $CILIATE_STORE_CERT, $CILIATE_STORE_KEY.
 */
static int conf_parse(const char *uri, struct etcd_conf *c, struct diag *d)
{
	const char *rest, *q, *p, *e, *amp, *eq;
	int tls = -1; /* -1: decided by the TLS options */
	size_t hl;
	char *host;

	memset(c, 0, sizeof(*c));
	c->netns_fd = -1;
	c->timeout_ms = ETCD_REQUEST_MS;
	c->max_txn_ops = ETCD_MAX_TXN_OPS;
	if (!strncmp(uri, "etcd://", 7))
		rest = uri + 7;
	else if (!strncmp(uri, "etcd+http://", 12))
		rest = uri + 12, tls = 0;
	else if (!strncmp(uri, "etcd+https://", 13))
		rest = uri + 13, tls = 1;
	else if (!strncmp(uri, "http://", 7))
		rest = uri + 7, tls = 0;
	else if (!strncmp(uri, "https://", 8))
		rest = uri + 8, tls = 1;
	else
		return diag_fail(d, "store %s: unknown etcd scheme (want etcd://host:port[,host:port...])", uri);
	q = strchr(rest, '?');
	c->uri = strndup(uri, q ? (size_t)(q - uri) : strlen(uri));
	if (!c->uri)
		return -ENOMEM;
	/* options */
	for (p = q ? q + 1 : NULL; p && *p; p = amp ? amp + 1 : NULL) {
		char **slot = NULL, *tmo = NULL, *mto = NULL;

		amp = strchr(p, '&');
		e = amp ? amp : p + strlen(p);
		eq = memchr(p, '=', (size_t)(e - p));
		if (!eq) {
			conf_free(c);
			return diag_fail(d, "store %s: option \"%.*s\" has no value (want ca=, cert=, key=, "
					 "netns=, timeout=)", uri, (int)(e - p), p);
		}
		if (eq - p == 2 && !strncmp(p, "ca", 2))
			slot = &c->ca;
		else if (eq - p == 4 && !strncmp(p, "cert", 4))
			slot = &c->cert;
		else if (eq - p == 3 && !strncmp(p, "key", 3))
			slot = &c->key;
		else if (eq - p == 5 && !strncmp(p, "netns", 5))
			slot = &c->netns;
		else if (eq - p == 7 && !strncmp(p, "timeout", 7))
			slot = &tmo;
		else if (eq - p == 11 && !strncmp(p, "max-txn-ops", 11))
			slot = &mto;
		if (!slot) {
			conf_free(c);
			return diag_fail(d, "store %s: unknown option \"%.*s\" (known: ca, cert, key, netns, timeout, "
					 "max-txn-ops)",
					 uri, (int)(eq - p), p);
		}
		free(*slot);
		*slot = pct_dup(eq + 1, (size_t)(e - eq - 1));
		if (!*slot) {
			conf_free(c);
			return -ENOMEM;
		}
		if (mto) { /* max-txn-ops=N: the server's --max-txn-ops */
			char *end;
			unsigned long v = strtoul(mto, &end, 10);

			if (end == mto || *end || v < 4 || v > STORE_TXN_OPS_MAX) {
				conf_free(c);
				diag_fail(d, "store %s: max-txn-ops=%s is not a number in [4, %d]", uri, mto,
					  STORE_TXN_OPS_MAX);
				free(mto);
				return -EINVAL;
			}
			c->max_txn_ops = v;
			free(mto);
		}
		if (tmo) { /* timeout=SECONDS (fractions allowed): one unary call per endpoint */
			char *end;
			double v = strtod(tmo, &end);

			if (end == tmo || *end || !(v > 0) || v > 3600) {
				conf_free(c);
				diag_fail(d, "store %s: timeout=%s is not a number of seconds in (0, 3600]", uri, tmo);
				free(tmo);
				return -EINVAL;
			}
			c->timeout_ms = (long)(v * 1000);
			if (c->timeout_ms < 1)
				c->timeout_ms = 1;
			free(tmo);
		}
	}
	if (!c->netns)
		c->netns = env_dup("CILIATE_STORE_NETNS");
	if (c->netns) {
		c->netns_fd = open(c->netns, O_RDONLY | O_CLOEXEC);
		if (c->netns_fd < 0) {
			int e2 = -errno;

			diag_fail_errno(d, e2, "store %s: netns=%s: %s", uri, c->netns, strerror(-e2));
			conf_free(c);
			return e2;
		}
	}
	if (!c->ca)
		c->ca = env_dup("CILIATE_STORE_CA");
	if (!c->cert)
		c->cert = env_dup("CILIATE_STORE_CERT");
	if (!c->key)
		c->key = env_dup("CILIATE_STORE_KEY");
	if (tls < 0)
		tls = c->ca || c->cert;
	if (c->key && !c->cert) {
		conf_free(c);
		return diag_fail(d, "store %s: a client key needs its certificate (cert=FILE or --store-cert)", uri);
	}
	/* endpoints: host:port[,host:port...], a trailing "/" tolerated */
	hl = q ? (size_t)(q - rest) : strlen(rest);
	if (hl && rest[hl - 1] == '/')
		hl--;
	for (p = rest; p < rest + hl; p = e + 1) {
		e = memchr(p, ',', (size_t)(rest + hl - p));
		if (!e)
			e = rest + hl;
		if (e == p)
			continue;
		if (c->neps == ETCD_EPS_MAX) {
			conf_free(c);
			return diag_fail(d, "store %s: more than %d endpoints", uri, ETCD_EPS_MAX);
		}
		host = strndup(p, (size_t)(e - p));
		if (!host) {
			conf_free(c);
			return -ENOMEM;
		}
		if (strchr(host, '/') || !strchr(host, ':') || host[strlen(host) - 1] == ':') {
			conf_free(c);
			diag_fail(d, "store %s: endpoint \"%s\" is not host:port (e.g. 127.0.0.1:2379)", uri, host);
			free(host);
			return -EINVAL;
		}
		if (asprintf(&c->eps[c->neps], "%s://%s", tls ? "https" : "http", host) < 0) {
			c->eps[c->neps] = NULL;
			free(host);
			conf_free(c);
			return -ENOMEM;
		}
		c->neps++;
		free(host);
	}
	if (!c->neps) {
		conf_free(c);
		return diag_fail(d, "store %s: no endpoint (want etcd://host:port[,host:port...])", uri);
	}
	return 0;
}

/*
 * netns=PATH: every connection is made from that network namespace, whatever namespace the
 * calling thread is in (the simulator's agents live in their nodes' namespaces while the
 * etcd they share listens on the simulator's loopback). setns(CLONE_NEWNET) is per thread,
 * so the thread enters PATH for the socket() call only and returns.
 */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	const struct etcd_conf *c = arg;
	int self, fd, saved;

	(void)purpose;
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return CURL_SOCKET_BAD;
	if (setns(c->netns_fd, CLONE_NEWNET) < 0) {
		close(self);
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	saved = errno;
	if (setns(self, CLONE_NEWNET) < 0) { /* cannot go back: never use this thread's sockets */
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	close(self);
	errno = saved;
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static void curl_setup(CURL *h, const struct etcd_conf *c)
{
	if (c->netns_fd >= 0) {
		curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
		curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, (void *)c);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, json_hdr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ETCD_CONNECT_MS);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never an http_proxy from the environment */
	if (c->ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
	if (c->cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
	if (c->key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
}

/* ---- errors ----------------------------------------------------------------------------- */

/* Maps an etcd error (gRPC code + message) to an errno. */
static int etcd_errno(int code, const char *msg)
{
	if (strstr(msg, "compacted"))
		return -ESTALE;
	if (strstr(msg, "future revision"))
		return -EINVAL;
	if (strstr(msg, "too large") || code == 8)
		return -EFBIG;
	if (code == 5 || strstr(msg, "not found"))
		return -ENOENT;
	if (code == 16 || code == 7 || strstr(msg, "permission denied") || strstr(msg, "auth") ||
	    strstr(msg, "user name"))
		return -EACCES;
	if (code == 14 || code == 4 || strstr(msg, "no leader") || strstr(msg, "timed out"))
		return -EHOSTUNREACH;
	if (code == 3)
		return -EINVAL;
	return -EIO;
}

/* A failure of the TLS handshake or of a certificate (ours or the server's). With TLS 1.3 a
 * server that refuses our (missing) client certificate says so after the handshake, so the
 * client may only see the connection dropped: over https, a connection that was accepted and
 * then failed counts as TLS too. */
static bool is_tls_error(const char *ep, CURLcode rc, const char *msg)
{
	if (!strncmp(ep, "https:", 6) && (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
					  rc == CURLE_GOT_NOTHING || strstr(msg, "getpeername")))
		return true;
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
		return true;
	default:
		return strstr(msg, "SSL") || strstr(msg, "certificate");
	}
}

static bool retryable(int err)
{
	return err == -EHOSTUNREACH;
}

/* ---- unary calls ------------------------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	return buf_add(arg, data, size * n) ? 0 : size * n;
}

/*
 * POSTs req to /v3/<path> on each endpoint in turn (starting with the last one that answered)
 * until one answers; *resp gets the JSON reply. An etcd error reply fills d (naming the
 * endpoint and etcd's message) and returns its errno; "unavailable" ones try the next endpoint.
 */
static int etcd_call(struct etcd_store *s, const char *path, json_t *req, json_t **resp, const char *what,
		     struct diag *d)
{
	char *body = json_dumps(req, JSON_COMPACT);
	char url[512], errs[768] = "", cerr[CURL_ERROR_SIZE];
	struct buf b = { 0 };
	size_t i, k, elen = 0, ntls = 0;
	int err = -EHOSTUNREACH;

	*resp = NULL;
	if (!body)
		return diag_fail_errno(d, -ENOMEM, "store %s: %s: out of memory", s->c.uri, what);
	for (k = 0; k < s->c.neps; k++) {
		const char *ep = s->c.eps[(s->cur + k) % s->c.neps];
		json_error_t jerr;
		long status = 0;
		CURLcode rc;
		json_t *j, *e;

		i = (s->cur + k) % s->c.neps;
		snprintf(url, sizeof(url), "%s/v3/%s", ep, path);
		b.len = 0;
		cerr[0] = '\0';
		curl_easy_setopt(s->curl, CURLOPT_URL, url);
		curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, cerr);
		rc = curl_easy_perform(s->curl);
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
		if (rc != CURLE_OK) {
			bool tls = is_tls_error(ep, rc, cerr);

			ntls += tls;
			elen += (size_t)snprintf(errs + elen, elen < sizeof(errs) ? sizeof(errs) - elen : 0,
						 "%s%s: %s%s", elen ? "; " : "", ep, tls ? "TLS: " : "",
						 cerr[0] ? cerr : curl_easy_strerror(rc));
			if (elen >= sizeof(errs))
				elen = sizeof(errs) - 1;
			continue;
		}
		j = b.len ? json_loadb(b.p, b.len, 0, &jerr) : NULL;
		if (!json_is_object(j)) {
			json_decref(j);
			err = status == 401 || status == 403 ? -EACCES : -EIO;
			if (status == 502 || status == 503 || status == 504) {
				elen += (size_t)snprintf(errs + elen, elen < sizeof(errs) ? sizeof(errs) - elen : 0,
							 "%s%s: HTTP %ld", elen ? "; " : "", ep, status);
				if (elen >= sizeof(errs))
					elen = sizeof(errs) - 1;
				err = -EHOSTUNREACH;
				continue;
			}
			err = diag_fail_errno(d, err, "store %s: %s: %s answered HTTP %ld with %s", s->c.uri, what,
					      ep, status, b.len ? "a body that is not JSON" : "an empty body");
			goto out;
		}
		e = json_object_get(j, "error");
		if (json_is_object(e)) /* a streaming method's error: {"error":{"grpc_code","message"}} */
			e = json_object_get(e, "message");
		if (json_is_string(e)) {
			int code = (int)json_integer_value(json_object_get(j, "code"));
			const char *m = json_string_value(e);

			if (!code)
				code = (int)json_integer_value(json_object_get(json_object_get(j, "error"), "grpc_code"));
			err = etcd_errno(code, m);
			if (retryable(err)) {
				elen += (size_t)snprintf(errs + elen, elen < sizeof(errs) ? sizeof(errs) - elen : 0,
							 "%s%s: %s", elen ? "; " : "", ep, m);
				if (elen >= sizeof(errs))
					elen = sizeof(errs) - 1;
				json_decref(j);
				continue;
			}
			err = diag_fail_errno(d, err, "store %s: %s: etcd at %s: %s", s->c.uri, what, ep, m);
			json_decref(j);
			goto out;
		}
		s->cur = i;
		*resp = j;
		err = 0;
		goto out;
	}
	if (ntls == s->c.neps) /* every endpoint refused our TLS: a configuration problem */
		err = diag_fail_errno(d, -EACCES, "store %s: %s: TLS failed with every etcd endpoint (%s); check "
				      "ca=, cert=, key= ($CILIATE_STORE_CA/CERT/KEY)", s->c.uri, what, errs);
	else
		err = diag_fail_errno(d, -EHOSTUNREACH, "store %s: %s: no etcd endpoint answered (%s)", s->c.uri,
				      what, errs);
out:
	/* the handle must not keep pointers to this frame's buffers */
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, NULL);
	free(body);
	free(b.p);
	return err;
}

/* ---- the ops ---------------------------------------------------------------------------- */

static void etcd_close(struct store *base)
{
	struct etcd_store *s = (struct etcd_store *)base;

	curl_easy_cleanup(s->curl);
	conf_free(&s->c);
	free(s);
}

static int range(struct etcd_store *s, const char *key, bool prefix, json_t **resp, const char *what,
		 struct diag *d)
{
	json_t *req = json_object();
	size_t elen;
	int err;

	if (!req)
		return -ENOMEM;
	if (prefix && !*key)
		json_object_set_new(req, "key", j_b64("", 1)); /* "\0": the first possible key */
	else
		json_object_set_new(req, "key", j_b64(key, strlen(key)));
	if (prefix)
		json_object_set_new(req, "range_end", j_range_end(key, &elen));
	err = etcd_call(s, "kv/range", req, resp, what, d);
	json_decref(req);
	return err;
}

/* Whether a member answers: a serializable range on "\0", served by whichever member the call
 * reaches without a round through the raft leader, so a leader election (a member killed)
 * does not look like an outage. */
static int etcd_ping(struct store *base, struct diag *d)
{
	struct etcd_store *s = (struct etcd_store *)base;
	json_t *req = json_pack("{s:o, s:b, s:b}", "key", j_b64("", 1), "serializable", 1, "count_only", 1);
	json_t *resp = NULL;
	int err;

	if (!req)
		return -ENOMEM;
	err = etcd_call(s, "kv/range", req, &resp, "ping", d);
	json_decref(req);
	json_decref(resp);
	return err;
}

/* The store revision now (at_rev 0) or a check that at_rev is still readable (-ESTALE when
 * compacted): a range on the single key "\0", cheap whatever the keyspace holds. */
static int probe(struct etcd_store *s, int64_t at_rev, int64_t *rev, const char *what, struct diag *d)
{
	json_t *req = json_pack("{s:s}", "key", "AA=="), *r;
	int err;

	if (!req)
		return -ENOMEM;
	if (at_rev > 0)
		json_object_set_new(req, "revision", j_i64(at_rev));
	err = etcd_call(s, "kv/range", req, &r, what, d);
	json_decref(req);
	if (err)
		return err;
	if (rev)
		*rev = j_int(json_object_get(r, "header"), "revision");
	json_decref(r);
	return 0;
}

static int etcd_revision(struct store *base, int64_t *rev, struct diag *d)
{
	return probe((struct etcd_store *)base, 0, rev, "revision", d);
}

static int etcd_get(struct store *base, const char *key, struct store_kv *out, struct diag *d)
{
	struct etcd_store *s = (struct etcd_store *)base;
	json_t *r, *kvs;
	int err;

	err = range(s, key, false, &r, key, d);
	if (err)
		return err;
	kvs = json_object_get(r, "kvs");
	if (!json_array_size(kvs)) {
		json_decref(r);
		return diag_fail_errno(d, -ENOENT, "store %s: %s: no such key", s->c.uri, key);
	}
	err = kv_from_json(out, json_array_get(kvs, 0));
	json_decref(r);
	if (err)
		return diag_fail_errno(d, err, "store %s: %s: malformed reply from etcd", s->c.uri, key);
	return 0;
}

static int etcd_list(struct store *base, const char *prefix, struct store_list *out, struct diag *d)
{
	struct etcd_store *s = (struct etcd_store *)base;
	json_t *r, *kvs;
	size_t i, n;
	int err;

	err = range(s, prefix, true, &r, *prefix ? prefix : "list", d);
	if (err)
		return err;
	kvs = json_object_get(r, "kvs");
	n = json_array_size(kvs);
	out->items = n ? calloc(n, sizeof(*out->items)) : NULL;
	if (n && !out->items) {
		json_decref(r);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		err = kv_from_json(&out->items[out->n], json_array_get(kvs, i));
		if (err == -EBADMSG)
			continue; /* a key with a NUL byte written by someone else: not ours */
		if (err) {
			json_decref(r);
			store_list_free(out);
			return err;
		}
		out->n++;
	}
	out->revision = j_int(json_object_get(r, "header"), "revision");
	json_decref(r);
	return 0;
}

static int etcd_txn(struct store *base, const struct store_cmp *cmps, size_t ncmps, const struct store_op *ops,
		    size_t nops, int64_t *rev, size_t *changed, struct diag *d)
{
	struct etcd_store *s = (struct etcd_store *)base;
	json_t *req = json_object(), *cmp = json_array(), *succ = json_array(), *fail = json_array();
	json_t *r = NULL, *resps, *o;
	const char *what = nops ? ops[0].key : ncmps ? cmps[0].key : "txn";
	size_t i;
	int err;

	*changed = 0;
	if (!req || !cmp || !succ || !fail) {
		json_decref(req);
		json_decref(cmp);
		json_decref(succ);
		json_decref(fail);
		return -ENOMEM;
	}
	json_object_set_new(req, "compare", cmp);
	json_object_set_new(req, "success", succ);
	json_object_set_new(req, "failure", fail);
	for (i = 0; i < ncmps; i++) {
		o = json_object();
		json_object_set_new(o, "key", j_b64(cmps[i].key, strlen(cmps[i].key)));
		json_object_set_new(o, "target", json_string("MOD"));
		json_object_set_new(o, "result", json_string("EQUAL"));
		json_object_set_new(o, "mod_revision", j_i64(cmps[i].mod_revision));
		json_array_append_new(cmp, o);
		if (i < ETCD_FAIL_CMP_RANGES) /* on failure: read back what each compared key has */
			json_array_append_new(fail, json_pack("{s:{s:o, s:b}}", "request_range", "key",
							      j_b64(cmps[i].key, strlen(cmps[i].key)),
							      "keys_only", 1));
	}
	for (i = 0; i < nops; i++) {
		if (ops[i].type == STORE_OP_PUT) {
			o = json_pack("{s:o, s:o}", "key", j_b64(ops[i].key, strlen(ops[i].key)), "value",
				      j_b64(ops[i].value ? ops[i].value : "", ops[i].value_len));
			if (o && ops[i].lease)
				json_object_set_new(o, "lease", j_i64(ops[i].lease));
			json_array_append_new(succ, json_pack("{s:o}", "request_put", o));
		} else {
			json_array_append_new(succ, json_pack("{s:{s:o}}", "request_delete_range", "key",
							      j_b64(ops[i].key, strlen(ops[i].key))));
		}
	}
	err = etcd_call(s, "kv/txn", req, &r, what, d);
	json_decref(req);
	if (err)
		return err;
	resps = json_object_get(r, "responses");
	if (!json_is_true(json_object_get(r, "succeeded"))) {
		char why[640] = "";
		size_t len = 0;

		for (i = 0; i < ncmps && i < json_array_size(resps) && len < sizeof(why); i++) {
			json_t *kvs = json_object_get(json_object_get(json_array_get(resps, i), "response_range"), "kvs");
			int64_t have = json_array_size(kvs) ? j_int(json_array_get(kvs, 0), "mod_revision") : 0;

			if (have == cmps[i].mod_revision)
				continue;
			len += (size_t)snprintf(why + len, sizeof(why) - len, "%s%s: mod_revision is %lld, expected %lld%s",
						len ? "; " : "", cmps[i].key, (long long)have,
						(long long)cmps[i].mod_revision, cmps[i].mod_revision ? "" : " (absent)");
		}
		json_decref(r);
		return diag_fail_errno(d, -ECANCELED, "store %s: %s: compare failed: %s", s->c.uri, what,
				       len ? why : "a compared key changed");
	}
	for (i = 0; i < nops; i++) {
		if (ops[i].type == STORE_OP_PUT)
			(*changed)++;
		else
			*changed += (size_t)j_int(json_object_get(json_array_get(resps, i), "response_delete_range"),
						  "deleted");
	}
	if (rev)
		*rev = j_int(json_object_get(r, "header"), "revision");
	json_decref(r);
	return 0;
}

static int etcd_compact(struct store *base, int64_t revision, struct diag *d)
{
	struct etcd_store *s = (struct etcd_store *)base;
	json_t *req, *r;
	int err;

	if (revision == 0)
		return 0;
	req = json_pack("{s:o}", "revision", j_i64(revision));
	if (!req)
		return -ENOMEM;
	err = etcd_call(s, "kv/compaction", req, &r, "compact", d);
	json_decref(req);
	if (err == -ESTALE)
		return 0; /* already compacted at or after revision: nothing to do (as the file backend) */
	if (err)
		return err;
	json_decref(r);
	return 0;
}

static int etcd_lease_grant(struct store *base, int64_t ttl_seconds, int64_t *lease, struct diag *d)
{
	struct etcd_store *s = (struct etcd_store *)base;
	json_t *req = json_pack("{s:o}", "TTL", j_i64(ttl_seconds)), *r;
	const char *e;
	int err;

	if (!req)
		return -ENOMEM;
	err = etcd_call(s, "lease/grant", req, &r, "lease grant", d);
	json_decref(req);
	if (err)
		return err;
	e = json_string_value(json_object_get(r, "error"));
	*lease = j_int(r, "ID");
	if ((e && *e) || *lease <= 0) {
		err = diag_fail_errno(d, -EIO, "store %s: lease grant: etcd: %s", s->c.uri,
				      e && *e ? e : "no lease id in the reply");
		json_decref(r);
		return err;
	}
	json_decref(r);
	return 0;
}

static int etcd_lease_keepalive(struct store *base, int64_t lease, struct diag *d)
{
	struct etcd_store *s = (struct etcd_store *)base;
	json_t *req = json_pack("{s:o}", "ID", j_i64(lease)), *r, *res;
	int64_t ttl;
	int err;

	if (!req)
		return -ENOMEM;
	err = etcd_call(s, "lease/keepalive", req, &r, "lease keepalive", d);
	json_decref(req);
	if (err)
		return err;
	res = json_object_get(r, "result"); /* a stream of one reply */
	ttl = j_int(res ? res : r, "TTL");
	json_decref(r);
	if (ttl <= 0)
		return diag_fail_errno(d, -ENOENT, "store %s: lease %lld not found (expired or revoked)", s->c.uri,
				       (long long)lease);
	return 0;
}

static int etcd_lease_revoke(struct store *base, int64_t lease, struct diag *d)
{
	struct etcd_store *s = (struct etcd_store *)base;
	json_t *req = json_pack("{s:o}", "ID", j_i64(lease)), *r;
	char what[64];
	int err;

	if (!req)
		return -ENOMEM;
	snprintf(what, sizeof(what), "lease %lld revoke", (long long)lease);
	err = etcd_call(s, "lease/revoke", req, &r, what, d);
	json_decref(req);
	if (err)
		return err;
	json_decref(r);
	return 0;
}

/* ---- watch ------------------------------------------------------------------------------ */

static void w_signal(struct etcd_watch *w)
{
	char c = 1;
	ssize_t n = write(w->pfd[1], &c, 1); /* a full pipe is readable already */

	(void)n;
}

static int q_push(struct etcd_watch *w, const json_t *ev)
{
	struct store_event *e;
	const char *type = json_string_value(json_object_get(ev, "type"));
	int err;

	if (w->qn == w->qcap) {
		size_t cap = w->qcap ? w->qcap * 2 : 64;
		struct store_event *q = realloc(w->q, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		w->q = q;
		w->qcap = cap;
	}
	e = &w->q[w->qn];
	memset(e, 0, sizeof(*e));
	err = kv_from_json(&e->kv, json_object_get(ev, "kv"));
	if (err == -EBADMSG)
		return 0; /* not one of our keys */
	if (err)
		return err;
	e->type = type && !strcmp(type, "DELETE") ? STORE_EVENT_DELETE : STORE_EVENT_PUT;
	e->revision = e->kv.mod_revision;
	if (e->type == STORE_EVENT_DELETE) {
		e->kv.create_revision = 0;
		e->kv.version = 0;
		e->kv.lease = 0;
		e->kv.value_len = 0;
		e->kv.value[0] = '\0';
	}
	w->qn++;
	if (e->revision >= w->next_rev)
		w->next_rev = e->revision + 1;
	return 0;
}

/* One line of the stream: {"result": WatchResponse} or {"error": {...}}. Under w->mu. */
static void w_line(struct etcd_watch *w, const char *line, size_t len)
{
	const char *ep = w->c->eps[w->ep];
	json_t *j, *res, *evs, *err;
	json_error_t jerr;
	size_t i, before = w->qn;

	j = json_loadb(line, len, 0, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		return;
	}
	res = json_object_get(j, "result");
	err = json_object_get(j, "error");
	if (!res) {
		const char *m = json_string_value(json_object_get(err, "message"));

		if (!m)
			m = json_string_value(err);
		snprintf(w->msg, sizeof(w->msg), "store %s: watch %s: etcd at %s: %s", w->c->uri, w->prefix, ep,
			 m ? m : "stream error");
		json_decref(j);
		return; /* the stream ends; the thread reconnects */
	}
	if (json_is_true(json_object_get(res, "created")) && w->state == W_CONNECTING) {
		w->state = W_RUNNING;
		w->created = true;
		pthread_cond_broadcast(&w->cv);
	}
	if (j_int(res, "compact_revision") > 0) {
		w->state = W_STALE;
		snprintf(w->msg, sizeof(w->msg),
			 "store %s: watch %s from revision %lld: history compacted up to revision %lld (etcd at %s); "
			 "list again and watch from the list's revision",
			 w->c->uri, w->prefix, (long long)w->next_rev - 1, (long long)j_int(res, "compact_revision"),
			 ep);
		w->created = true;
		pthread_cond_broadcast(&w->cv);
		w_signal(w);
		json_decref(j);
		return;
	}
	if (json_is_true(json_object_get(res, "canceled"))) {
		const char *why = json_string_value(json_object_get(res, "cancel_reason"));

		w->state = W_FAILED;
		snprintf(w->msg, sizeof(w->msg), "store %s: watch %s: etcd at %s canceled it: %s", w->c->uri,
			 w->prefix, ep, why && *why ? why : "no reason given");
		w->created = true;
		pthread_cond_broadcast(&w->cv);
		w_signal(w);
		json_decref(j);
		return;
	}
	evs = json_object_get(res, "events");
	for (i = 0; i < json_array_size(evs); i++) {
		if (q_push(w, json_array_get(evs, i))) {
			w->state = W_FAILED;
			snprintf(w->msg, sizeof(w->msg), "store %s: watch %s: out of memory", w->c->uri, w->prefix);
			break;
		}
	}
	if (w->qn != before || w->state == W_FAILED)
		w_signal(w);
	json_decref(j);
}

static size_t w_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct etcd_watch *w = arg;
	size_t len = size * n, start = 0, i;
	char *nl;

	if (buf_add(&w->line, data, len))
		return 0;
	pthread_mutex_lock(&w->mu);
	while ((nl = memchr(w->line.p + start, '\n', w->line.len - start))) {
		i = (size_t)(nl - w->line.p);
		if (w->state != W_STALE && w->state != W_FAILED)
			w_line(w, w->line.p + start, i - start);
		start = i + 1;
	}
	pthread_mutex_unlock(&w->mu);
	if (start) {
		memmove(w->line.p, w->line.p + start, w->line.len - start);
		w->line.len -= start;
	}
	return len;
}

static bool w_stopping(struct etcd_watch *w)
{
	bool stop;

	pthread_mutex_lock(&w->mu);
	stop = w->stop || w->state == W_STALE || w->state == W_FAILED;
	pthread_mutex_unlock(&w->mu);
	return stop;
}

/* Runs one streaming request on endpoint w->ep until it ends or the watch stops. */
static void w_stream(struct etcd_watch *w, CURL *h)
{
	char url[512], cerr[CURL_ERROR_SIZE] = "", *body;
	int running = 1, numfds;
	int64_t start;
	CURLMsg *m;
	int left;
	CURLcode rc = CURLE_OK;

	pthread_mutex_lock(&w->mu);
	start = w->next_rev;
	pthread_mutex_unlock(&w->mu);
	if (asprintf(&body, "{\"create_request\":{%s,\"start_revision\":\"%lld\"}}", w->req, (long long)start) < 0)
		return;
	snprintf(url, sizeof(url), "%s/v3/watch", w->c->eps[w->ep]);
	curl_easy_reset(h);
	curl_setup(h, w->c);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, w_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	/* a dead peer on an idle stream: TCP keepalive notices within about 30 s */
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
	w->line.len = 0;
	curl_multi_add_handle(w->multi, h);
	while (running && !w_stopping(w)) {
		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			break;
		if (!running)
			break;
		curl_multi_poll(w->multi, NULL, 0, 1000, &numfds);
	}
	while ((m = curl_multi_info_read(w->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			rc = m->data.result;
	curl_multi_remove_handle(w->multi, h);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	free(body);
	pthread_mutex_lock(&w->mu);
	if (w->state == W_CONNECTING || w->state == W_RUNNING) {
		if (rc != CURLE_OK)
			snprintf(w->msg, sizeof(w->msg), "store %s: watch %s: %s: %s", w->c->uri, w->prefix,
				 w->c->eps[w->ep], cerr[0] ? cerr : curl_easy_strerror(rc));
		else if (!w->msg[0])
			snprintf(w->msg, sizeof(w->msg), "store %s: watch %s: %s closed the stream", w->c->uri,
				 w->prefix, w->c->eps[w->ep]);
	}
	pthread_mutex_unlock(&w->mu);
}

static void *w_thread(void *arg)
{
	struct etcd_watch *w = arg;
	CURL *h = curl_easy_init();
	int delay = ETCD_RETRY_MIN_MS, numfds, tries = 0;

	if (!h) {
		pthread_mutex_lock(&w->mu);
		w->state = W_FAILED;
		snprintf(w->msg, sizeof(w->msg), "store %s: watch: out of memory", w->c->uri);
		w->created = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		return NULL;
	}
	while (!w_stopping(w)) {
		bool first_round, broke;

		pthread_mutex_lock(&w->mu);
		w->msg[0] = '\0';
		pthread_mutex_unlock(&w->mu);
		w_stream(w, h);
		if (w_stopping(w))
			break;
		pthread_mutex_lock(&w->mu);
		broke = w->state == W_RUNNING; /* a stream that worked broke: reconnect at once */
		if (broke)
			w->state = W_CONNECTING;
		first_round = !w->created;
		if (first_round && ++tries >= (int)w->c->neps) {
			/* every endpoint failed once: watch_open reports it */
			w->created = true;
			pthread_cond_broadcast(&w->cv);
		}
		pthread_mutex_unlock(&w->mu);
		/* the next endpoint, from the next revision not yet delivered */
		w->ep = (w->ep + 1) % w->c->neps;
		if (broke) {
			delay = ETCD_RETRY_MIN_MS;
			continue;
		}
		if (first_round)
			continue;
		curl_multi_poll(w->multi, NULL, 0, delay, &numfds); /* woken early by close */
		delay = delay * 2 > ETCD_RETRY_MAX_MS ? ETCD_RETRY_MAX_MS : delay * 2;
	}
	curl_easy_cleanup(h);
	return NULL;
}

static void w_free(struct etcd_watch *w)
{
	size_t i;

	if (w->thread_started) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_mutex_unlock(&w->mu);
		curl_multi_wakeup(w->multi);
		pthread_join(w->thread, NULL);
	}
	if (w->multi)
		curl_multi_cleanup(w->multi);
	for (i = 0; i < w->qn; i++)
		store_kv_free(&w->q[i].kv);
	free(w->q);
	free(w->line.p);
	free(w->prefix);
	free(w->req);
	if (w->pfd[0] >= 0)
		close(w->pfd[0]);
	if (w->pfd[1] >= 0)
		close(w->pfd[1]);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

static int etcd_watch_open(struct store *base, const char *prefix, int64_t after_rev, struct store_watch **out,
			   struct diag *d)
{
	struct etcd_store *s = (struct etcd_store *)base;
	struct etcd_watch *w;
	struct timespec until;
	char *k64, *e64;
	json_t *key, *end;
	size_t elen;
	int err;

	/* A compacted start revision fails now (the stream would only cancel later). */
	if (after_rev > 0) {
		err = probe(s, after_rev, NULL, "watch", d);
		if (err == -ESTALE)
			return diag_fail_errno(d, -ESTALE,
					       "store %s: watch %s from revision %lld: history compacted; list again "
					       "and watch from the list's revision (%s)",
					       s->c.uri, prefix, (long long)after_rev, d->msg);
		if (err && err != -EINVAL) /* -EINVAL: a future revision, which a watch may start from */
			return err;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->base.ops = &etcd_ops;
	w->base.s = base;
	w->c = &s->c;
	w->pfd[0] = w->pfd[1] = -1;
	w->ep = s->cur;
	w->next_rev = after_rev + 1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->prefix = strdup(prefix);
	key = *prefix ? j_b64(prefix, strlen(prefix)) : j_b64("", 1);
	end = j_range_end(prefix, &elen);
	k64 = key ? strdup(json_string_value(key)) : NULL;
	e64 = end ? strdup(json_string_value(end)) : NULL;
	json_decref(key);
	json_decref(end);
	if (k64 && e64 && asprintf(&w->req, "\"key\":\"%s\",\"range_end\":\"%s\"", k64, e64) < 0)
		w->req = NULL;
	free(k64);
	free(e64);
	if (!w->prefix || !w->req || pipe2(w->pfd, O_NONBLOCK | O_CLOEXEC) < 0 || !(w->multi = curl_multi_init())) {
		w_free(w);
		return diag_fail_errno(d, -ENOMEM, "store %s: watch %s: out of resources", s->c.uri, prefix);
	}
	if (pthread_create(&w->thread, NULL, w_thread, w)) {
		w_free(w);
		return diag_fail_errno(d, -EAGAIN, "store %s: watch %s: cannot start its thread", s->c.uri, prefix);
	}
	w->thread_started = true;
	/* wait until the stream is created, or every endpoint failed once */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ETCD_WATCH_OPEN_MS / 1000;
	pthread_mutex_lock(&w->mu);
	while (!w->created && !pthread_cond_timedwait(&w->cv, &w->mu, &until))
		;
	if (w->state == W_STALE)
		err = diag_fail_errno(d, -ESTALE, "%s", w->msg);
	else if (w->state == W_FAILED)
		err = diag_fail_errno(d, -EIO, "%s", w->msg);
	else if (w->state != W_RUNNING)
		err = diag_fail_errno(d, -EHOSTUNREACH, "store %s: watch %s: no etcd endpoint answered (%s)", s->c.uri,
				      prefix, w->msg[0] ? w->msg : "timed out");
	else
		err = 0;
	pthread_mutex_unlock(&w->mu);
	if (err) {
		w_free(w);
		return err;
	}
	*out = &w->base;
	return 0;
}

static void drain(int fd)
{
	char b[256];

	while (read(fd, b, sizeof(b)) > 0)
		;
}

static int etcd_watch_next(struct store_watch *base, int timeout_ms, struct store_event **evs, size_t *n,
			   struct diag *d)
{
	struct etcd_watch *w = (struct etcd_watch *)base;
	int64_t end = store_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct pollfd pfd = { .fd = w->pfd[0], .events = POLLIN };
	size_t k;
	int wait;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		drain(w->pfd[0]);
		if (w->qn) {
			k = w->qn > ETCD_WATCH_BATCH ? ETCD_WATCH_BATCH : w->qn;
			*evs = malloc(k * sizeof(**evs));
			if (!*evs) {
				pthread_mutex_unlock(&w->mu);
				return -ENOMEM;
			}
			memcpy(*evs, w->q, k * sizeof(**evs));
			memmove(w->q, w->q + k, (w->qn - k) * sizeof(*w->q));
			w->qn -= k;
			*n = k;
			if (w->qn)
				w_signal(w);
			pthread_mutex_unlock(&w->mu);
			return 0;
		}
		if (w->state == W_STALE || w->state == W_FAILED) {
			int err = diag_fail_errno(d, w->state == W_STALE ? -ESTALE : -EIO, "%s", w->msg);

			w_signal(w); /* stays readable: the caller must act (re-list) */
			pthread_mutex_unlock(&w->mu);
			return err;
		}
		pthread_mutex_unlock(&w->mu);
		if (timeout_ms == 0)
			return 0;
		wait = timeout_ms < 0 ? -1 : (int)(end - store_mono_ms());
		if (timeout_ms > 0 && wait <= 0)
			return 0;
		if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
			return diag_fail_errno(d, -errno, "store %s: watch %s: poll: %s", w->c->uri, w->prefix,
					       strerror(errno));
	}
}

static int etcd_watch_fd(const struct store_watch *base)
{
	return ((const struct etcd_watch *)base)->pfd[0];
}

static void etcd_watch_close(struct store_watch *base)
{
	w_free((struct etcd_watch *)base);
}

static size_t etcd_txn_max(const struct store *base)
{
	return ((const struct etcd_store *)base)->c.max_txn_ops;
}

static const struct store_backend_ops etcd_ops = {
	.name = "etcd",
	.txn_max = etcd_txn_max,
	.ping = etcd_ping,
	.close = etcd_close,
	.revision = etcd_revision,
	.get = etcd_get,
	.list = etcd_list,
	.txn = etcd_txn,
	.compact = etcd_compact,
	.lease_grant = etcd_lease_grant,
	.lease_keepalive = etcd_lease_keepalive,
	.lease_revoke = etcd_lease_revoke,
	.watch_open = etcd_watch_open,
	.watch_next = etcd_watch_next,
	.watch_fd = etcd_watch_fd,
	.watch_close = etcd_watch_close,
};

int store_etcd_open(const char *uri, struct store **out, struct diag *d)
{
	struct etcd_store *s;
	int64_t rev;
	int err;

	pthread_once(&curl_once, curl_init_once);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &etcd_ops;
	err = conf_parse(uri, &s->c, d);
	if (err) {
		free(s);
		return err;
	}
	s->curl = curl_easy_init();
	if (!s->curl) {
		etcd_close(&s->base);
		return diag_fail_errno(d, -ENOMEM, "store %s: curl_easy_init failed", uri);
	}
	curl_setup(s->curl, &s->c);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, s->c.timeout_ms);
	/* one round trip now, so an unreachable or misconfigured etcd is reported at open */
	err = etcd_revision(&s->base, &rev, d);
	if (err) {
		etcd_close(&s->base);
		return err;
	}
	*out = &s->base;
	return 0;
}
