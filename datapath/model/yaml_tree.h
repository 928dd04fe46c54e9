/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers over a libyaml document tree: typed field access and strict field checking, with
 * every error formatted as "FILE:LINE: FIELD.PATH: reason" into a struct diag.
 */
#ifndef CILIATE_MODEL_YAML_TREE_H
#define CILIATE_MODEL_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "../common/diag.h"

#define YT_PATH_MAX 256

/* Where errors go and which document the node ids refer to. */
struct yt_ctx {
	const char *file; /* name used in messages */
	yaml_document_t *doc;
	struct diag *d;
};

/* Returns the 1-based line a node starts on. */
int yt_line(const yaml_node_t *n);

/* Returns the node with the given id in the context's document (NULL if invalid). */
yaml_node_t *yt_node(const struct yt_ctx *c, int id);

/* True for an empty plain scalar or ~ / null (YAML's null). */
bool yt_is_null(const yaml_node_t *n);

/* Returns a mapping's value for key, or NULL if the key is absent or its value is null. */
yaml_node_t *yt_map_get(const struct yt_ctx *c, const yaml_node_t *map, const char *key);

/* Returns the scalar text of n, or NULL if n is not a scalar. */
const char *yt_scalar(const yaml_node_t *n);

/* True if n is a scalar written without quotes (so 80 is a number, "80" a string). */
bool yt_is_plain(const yaml_node_t *n);

/* Formats an error at n: "FILE:LINE: PATH: reason" (no "PATH: " when path is empty).
 * Returns -EINVAL. */
int yt_fail(const struct yt_ctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* snprintf into buf (YT_PATH_MAX bytes) and return buf: builds child field paths. */
const char *yt_path(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Errors unless n is a mapping / sequence / scalar. */
int yt_want_map(const struct yt_ctx *c, const yaml_node_t *n, const char *path);
int yt_want_seq(const struct yt_ctx *c, const yaml_node_t *n, const char *path);
int yt_want_scalar(const struct yt_ctx *c, const yaml_node_t *n, const char *path);

/* Checks that map is a mapping with scalar, unique keys drawn from the NULL-terminated
 * allowed list (NULL allowed: any key). Unknown keys are errors naming the field. */
int yt_check_fields(const struct yt_ctx *c, const yaml_node_t *map, const char *path,
		    const char *const *allowed);

/* Errors unless map has key (with a non-null value). */
int yt_require(const struct yt_ctx *c, const yaml_node_t *map, const char *path,
	       const char *key);

/* Copies a non-empty scalar into buf of size bytes; errors if not a scalar or too long. */
int yt_str(const struct yt_ctx *c, const yaml_node_t *n, const char *path, char *buf,
	   size_t size);

/* Duplicates a non-empty scalar into *out (caller frees). */
int yt_strdup(const struct yt_ctx *c, const yaml_node_t *n, const char *path, char **out);

/* Parses a decimal integer scalar within [min, max]. */
int yt_uint(const struct yt_ctx *c, const yaml_node_t *n, const char *path, unsigned long min,
	    unsigned long max, unsigned long *out);

/* Parses a boolean scalar (true/false in any case). */
int yt_bool(const struct yt_ctx *c, const yaml_node_t *n, const char *path, bool *out);

/* Serialises node n (any kind) as a YAML document into a malloc'd string *out. */
int yt_serialize(const struct yt_ctx *c, const yaml_node_t *n, char **out);

/* Serialises each item of sequence n as one document of a multi-document YAML stream. */
int yt_serialize_items(const struct yt_ctx *c, const yaml_node_t *seq, char **out);

#endif
