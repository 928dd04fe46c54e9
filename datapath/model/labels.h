/* SPDX-License-Identifier: Apache-2.0 */
/* Label sets and Kubernetes label selectors (matchLabels + matchExpressions). */
#ifndef CILIATE_MODEL_LABELS_H
#define CILIATE_MODEL_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"
#include "yaml_tree.h"

enum sel_op {
	SEL_OP_IN = 0,
	SEL_OP_NOT_IN,
	SEL_OP_EXISTS,
	SEL_OP_DOES_NOT_EXIST,
};

/* One matchExpressions entry. */
struct sel_req {
	char *key;
	enum sel_op op;
	char **values;
	size_t nvalues;
};

/* A LabelSelector; an empty one (no labels, no expressions) matches everything. */
struct selector {
	struct labelset match;
	struct sel_req *reqs;
	size_t nreqs;
};

/* Sets key=value in ls, replacing an existing value for key. */
int labelset_set(struct labelset *ls, const char *key, const char *value);

/* Returns the value of key in ls, or NULL if absent. */
const char *labelset_get(const struct labelset *ls, const char *key);

/* Deep-copies src into dst (dst is overwritten, not freed). */
int labelset_copy(struct labelset *dst, const struct labelset *src);

/* Sorts ls by key, then value (a canonical order for comparison and printing). */
void labelset_sort(struct labelset *ls);

/* True if a and b hold the same key=value pairs (both must be sorted). */
bool labelset_equal(const struct labelset *a, const struct labelset *b);

/* Frees the labels of ls and zeroes it. */
void labelset_free(struct labelset *ls);

/* Parses a mapping of string keys to string values (labels) into out (sorted). */
int labelset_parse(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		   struct labelset *out);

/* Parses a LabelSelector (matchLabels, matchExpressions; other fields are errors). */
int selector_parse(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		   struct selector *out);

/* True if the selector has neither matchLabels nor matchExpressions. */
bool selector_is_empty(const struct selector *sel);

/* True if the label set satisfies every matchLabels pair and every expression. */
bool selector_matches(const struct selector *sel, const struct labelset *ls);

/* Frees a selector's contents and zeroes it. */
void selector_free(struct selector *sel);

#endif
