/* SPDX-License-Identifier: Apache-2.0 */
#include "yaml_tree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int yt_line(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 0;
}

yaml_node_t *yt_node(const struct yt_ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

bool yt_is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

yaml_node_t *yt_map_get(const struct yt_ctx *c, const yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p;
	yaml_node_t *k, *v;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		k = yt_node(c, p->key);
		if (!k || k->type != YAML_SCALAR_NODE || strcmp((char *)k->data.scalar.value, key))
			continue;
		v = yt_node(c, p->value);
		return yt_is_null(v) ? NULL : v;
	}
	return NULL;
}

const char *yt_scalar(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

bool yt_is_plain(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

int yt_fail(const struct yt_ctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
	char reason[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (path && *path)
		return diag_fail(c->d, "%s:%d: %s: %s", c->file, yt_line(n), path, reason);
	return diag_fail(c->d, "%s:%d: %s", c->file, yt_line(n), reason);
}

const char *yt_path(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, YT_PATH_MAX, fmt, ap);
	va_end(ap);
	return buf;
}

static const char *kind_name(const yaml_node_t *n)
{
	if (!n)
		return "nothing";
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		return yt_is_null(n) ? "null" : "a scalar";
	default:
		return "nothing";
	}
}

int yt_want_map(const struct yt_ctx *c, const yaml_node_t *n, const char *path)
{
	if (n && n->type == YAML_MAPPING_NODE)
		return 0;
	return yt_fail(c, n, path, "expected a mapping, got %s", kind_name(n));
}

int yt_want_seq(const struct yt_ctx *c, const yaml_node_t *n, const char *path)
{
	if (n && n->type == YAML_SEQUENCE_NODE)
		return 0;
	return yt_fail(c, n, path, "expected a list, got %s", kind_name(n));
}

int yt_want_scalar(const struct yt_ctx *c, const yaml_node_t *n, const char *path)
{
	if (n && n->type == YAML_SCALAR_NODE)
		return 0;
	return yt_fail(c, n, path, "expected a scalar, got %s", kind_name(n));
}

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

static void join_list(const char *const *list, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (; *list && off < size; list++)
		off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? ", " : "", *list);
}

int yt_check_fields(const struct yt_ctx *c, const yaml_node_t *map, const char *path,
		    const char *const *allowed)
{
	yaml_node_pair_t *p, *q;
	yaml_node_t *k, *k2;
	char sub[YT_PATH_MAX], names[400];
	const char *key;
	int err;

	err = yt_want_map(c, map, path);
	if (err)
		return err;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		k = yt_node(c, p->key);
		key = yt_scalar(k);
		if (!key)
			return yt_fail(c, k, path, "mapping keys must be scalars");
		yt_path(sub, "%s%s%s", path, *path ? "." : "", key);
		if (allowed && !in_list(allowed, key)) {
			join_list(allowed, names, sizeof(names));
			return yt_fail(c, k, sub, "unknown field (allowed: %s)", names);
		}
		for (q = map->data.mapping.pairs.start; q < p; q++) {
			k2 = yt_node(c, q->key);
			if (yt_scalar(k2) && !strcmp(yt_scalar(k2), key))
				return yt_fail(c, k, sub, "duplicate field (first at line %d)",
					       yt_line(k2));
		}
	}
	return 0;
}

int yt_require(const struct yt_ctx *c, const yaml_node_t *map, const char *path,
	       const char *key)
{
	char sub[YT_PATH_MAX];

	if (yt_map_get(c, map, key))
		return 0;
	return yt_fail(c, map, yt_path(sub, "%s%s%s", path, *path ? "." : "", key),
		       "required field missing");
}

int yt_str(const struct yt_ctx *c, const yaml_node_t *n, const char *path, char *buf,
	   size_t size)
{
	const char *v = yt_scalar(n);
	size_t len;

	if (!v || yt_is_null(n))
		return yt_fail(c, n, path, "expected a string, got %s", kind_name(n));
	len = n->data.scalar.length;
	if (!len)
		return yt_fail(c, n, path, "must not be empty");
	if (strlen(v) != len)
		return yt_fail(c, n, path, "contains a NUL character");
	if (len >= size)
		return yt_fail(c, n, path, "too long (%zu characters, at most %zu)", len, size - 1);
	memcpy(buf, v, len + 1);
	return 0;
}

int yt_strdup(const struct yt_ctx *c, const yaml_node_t *n, const char *path, char **out)
{
	const char *v = yt_scalar(n);

	if (!v || yt_is_null(n))
		return yt_fail(c, n, path, "expected a string, got %s", kind_name(n));
	if (!n->data.scalar.length)
		return yt_fail(c, n, path, "must not be empty");
	if (strlen(v) != n->data.scalar.length)
		return yt_fail(c, n, path, "contains a NUL character");
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

int yt_uint(const struct yt_ctx *c, const yaml_node_t *n, const char *path, unsigned long min,
	    unsigned long max, unsigned long *out)
{
	const char *v = yt_scalar(n);
	unsigned long x;
	char *end;

	if (!v || yt_is_null(n))
		return yt_fail(c, n, path, "expected an integer, got %s", kind_name(n));
	if (*v < '0' || *v > '9')
		return yt_fail(c, n, path, "expected an integer, got \"%s\"", v);
	errno = 0;
	x = strtoul(v, &end, 10);
	if (*end || errno)
		return yt_fail(c, n, path, "expected an integer, got \"%s\"", v);
	if (x < min || x > max)
		return yt_fail(c, n, path, "%lu out of range [%lu, %lu]", x, min, max);
	*out = x;
	return 0;
}

int yt_bool(const struct yt_ctx *c, const yaml_node_t *n, const char *path, bool *out)
{
	const char *v = yt_scalar(n);

	if (v && !strcasecmp(v, "true")) {
		*out = true;
		return 0;
	}
	if (v && !strcasecmp(v, "false")) {
		*out = false;
		return 0;
	}
	return yt_fail(c, n, path, "expected true or false");
}

/* ---- serialisation ------------------------------------------------------------------- */

struct out_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
	struct out_buf *b = data;
	size_t cap;
	char *p;

	if (b->len + size + 1 > b->cap) {
		cap = b->cap ? b->cap * 2 : 1024;
		while (cap < b->len + size + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return 0;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, buffer, size);
	b->len += size;
	b->p[b->len] = '\0';
	return 1;
}

/* Copies node n of the context's document into dst; returns the new node id or 0. */
static int copy_node(const struct yt_ctx *c, const yaml_node_t *n, yaml_document_t *dst,
		     int depth)
{
	yaml_node_item_t *it;
	yaml_node_pair_t *p;
	int id, k, v;

	if (!n || depth > 64)
		return 0;
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return yaml_document_add_scalar(dst, n->tag, n->data.scalar.value,
						(int)n->data.scalar.length, n->data.scalar.style);
	case YAML_SEQUENCE_NODE:
		id = yaml_document_add_sequence(dst, n->tag, YAML_BLOCK_SEQUENCE_STYLE);
		if (!id)
			return 0;
		for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
			v = copy_node(c, yt_node(c, *it), dst, depth + 1);
			if (!v || !yaml_document_append_sequence_item(dst, id, v))
				return 0;
		}
		return id;
	case YAML_MAPPING_NODE:
		id = yaml_document_add_mapping(dst, n->tag, YAML_BLOCK_MAPPING_STYLE);
		if (!id)
			return 0;
		for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			k = copy_node(c, yt_node(c, p->key), dst, depth + 1);
			v = k ? copy_node(c, yt_node(c, p->value), dst, depth + 1) : 0;
			if (!v || !yaml_document_append_mapping_pair(dst, id, k, v))
				return 0;
		}
		return id;
	default:
		return 0;
	}
}

static int emit_nodes(const struct yt_ctx *c, const yaml_node_t *const *nodes, size_t n,
		      char **out)
{
	struct out_buf b = { 0 };
	yaml_emitter_t em;
	yaml_document_t doc;
	int err = 0;
	size_t i;

	*out = NULL;
	if (!yaml_emitter_initialize(&em))
		return -ENOMEM;
	yaml_emitter_set_output(&em, write_handler, &b);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	if (!yaml_emitter_open(&em)) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!yaml_document_initialize(&doc, NULL, NULL, NULL, 0, 0)) {
			err = -ENOMEM;
			goto out;
		}
		if (!copy_node(c, nodes[i], &doc, 0)) {
			yaml_document_delete(&doc);
			err = yt_fail(c, nodes[i], "", "cannot re-serialise YAML node");
			goto out;
		}
		/* yaml_emitter_dump takes ownership of doc, even on failure */
		if (!yaml_emitter_dump(&em, &doc)) {
			err = b.oom ? -ENOMEM : yt_fail(c, nodes[i], "", "YAML emitter: %s",
							em.problem ? em.problem : "error");
			goto out;
		}
	}
	if (!yaml_emitter_close(&em) || !yaml_emitter_flush(&em)) {
		err = -ENOMEM;
		goto out;
	}
	*out = b.p ? b.p : strdup("");
	b.p = NULL;
	if (!*out)
		err = -ENOMEM;
out:
	yaml_emitter_delete(&em);
	free(b.p);
	return err;
}

int yt_serialize(const struct yt_ctx *c, const yaml_node_t *n, char **out)
{
	return emit_nodes(c, &n, 1, out);
}

int yt_serialize_items(const struct yt_ctx *c, const yaml_node_t *seq, char **out)
{
	const yaml_node_t **nodes;
	yaml_node_item_t *it;
	size_t n = 0;
	int err;

	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return -EINVAL;
	nodes = calloc((size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start) + 1,
		       sizeof(*nodes));
	if (!nodes)
		return -ENOMEM;
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++)
		nodes[n++] = yt_node(c, *it);
	err = emit_nodes(c, nodes, n, out);
	free(nodes);
	return err;
}
