/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Test matrix table: whitespace-separated, first row "-" then the destinations, then one
 * row per source: its label and one '.' (allow) or 'X' (deny) per destination. A table that
 * YAML folded onto one line (a quoted flow scalar) is read as a token stream of that shape.
 */
#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tok {
	char *s;
	int line; /* 0-based line within the table text */
};

struct toks {
	struct tok *v;
	size_t n, cap;
};

static int toks_split(const char *text, struct toks *t)
{
	const char *p = text, *start;
	struct tok *v;
	int line = 0;

	while (*p) {
		if (*p == '\n') {
			line++;
			p++;
			continue;
		}
		if (*p == ' ' || *p == '\t' || *p == '\r') {
			p++;
			continue;
		}
		start = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			p++;
		if (t->n == t->cap) {
			v = realloc(t->v, (t->cap ? t->cap * 2 : 32) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			t->v = v;
			t->cap = t->cap ? t->cap * 2 : 32;
		}
		t->v[t->n].s = strndup(start, (size_t)(p - start));
		if (!t->v[t->n].s)
			return -ENOMEM;
		t->v[t->n++].line = line;
	}
	return 0;
}

static void toks_free(struct toks *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->v[i].s);
	free(t->v);
}

static bool is_cell(const char *s)
{
	return !strcmp(s, ".") || !strcmp(s, "X");
}

/* Line of the document a table token is on (literal/folded blocks start one line down). */
static int tok_line(const yaml_node_t *n, const struct tok *t)
{
	int base = yt_line(n);

	if (n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
	    n->data.scalar.style == YAML_FOLDED_SCALAR_STYLE)
		return base + 1 + t->line;
	return base + t->line;
}

static int fail_at(const struct yt_ctx *c, const yaml_node_t *n, const struct tok *t,
		   const char *path, const char *why)
{
	return diag_fail(c->d, "%s:%d: %s: %s", c->file, t ? tok_line(n, t) : yt_line(n), path,
			 why);
}

static int add_label(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int check_label(const struct yt_ctx *c, const struct cluster_model *cm, const yaml_node_t *n,
		       const struct tok *t, const char *path, char **seen, size_t nseen,
		       const char *what)
{
	char why[512], msg[700];
	size_t i;

	if (is_cell(t->s) || !strcmp(t->s, "-")) {
		snprintf(msg, sizeof(msg), "expected a %s label, got \"%s\"", what, t->s);
		return fail_at(c, n, t, path, msg);
	}
	if (endpoint_ref_check(cm, t->s, why, sizeof(why))) {
		snprintf(msg, sizeof(msg), "%s %s", what, why);
		return fail_at(c, n, t, path, msg);
	}
	for (i = 0; i < nseen; i++) {
		if (!strcmp(seen[i], t->s)) {
			snprintf(msg, sizeof(msg), "duplicate %s \"%s\"", what, t->s);
			return fail_at(c, n, t, path, msg);
		}
	}
	return 0;
}

static int add_row(const struct yt_ctx *c, const struct cluster_model *cm, const yaml_node_t *n,
		   const char *path, struct m_matrix *m, struct toks *t, size_t first, size_t end)
{
	char msg[512];
	char *cells;
	size_t k;
	int err;

	err = check_label(c, cm, n, &t->v[first], path, m->rows, m->nrows, "source");
	if (err)
		return err;
	if (end - first - 1 != m->ncols) {
		snprintf(msg, sizeof(msg),
			 "row \"%s\" has %zu cells, expected %zu (one per destination)",
			 t->v[first].s, end - first - 1, m->ncols);
		return fail_at(c, n, &t->v[first], path, msg);
	}
	for (k = first + 1; k < end; k++) {
		if (!is_cell(t->v[k].s)) {
			snprintf(msg, sizeof(msg),
				 "row \"%s\": cell \"%s\" must be '.' (allow) or 'X' (deny)",
				 t->v[first].s, t->v[k].s);
			return fail_at(c, n, &t->v[k], path, msg);
		}
	}
	cells = realloc(m->cells, (m->nrows + 1) * m->ncols);
	if (!cells)
		return -ENOMEM;
	m->cells = cells;
	for (k = first + 1; k < end; k++)
		cells[m->nrows * m->ncols + (k - first - 1)] = t->v[k].s[0];
	return add_label(&m->rows, &m->nrows, t->v[first].s);
}

int matrix_table_parse(const struct yt_ctx *c, const struct cluster_model *cm, const yaml_node_t *n,
		       const char *path, struct m_matrix *m)
{
	struct toks t = { 0 };
	size_t i, j, hdr_end, nlabels;
	bool one_line;
	int err;

	err = yt_want_scalar(c, n, path);
	if (err)
		return err;
	err = toks_split(yt_scalar(n), &t);
	if (err)
		goto out;
	if (!t.n || strcmp(t.v[0].s, "-")) {
		err = fail_at(c, n, t.n ? &t.v[0] : NULL, path,
			      "the first row must start with \"-\" and list the destinations");
		goto out;
	}
	one_line = t.v[t.n - 1].line == t.v[0].line;
	if (one_line) {
		/* "- D1..Dn S1 c..c S2 c..c": labels before the first cell are Ds and S1 */
		for (nlabels = 0; 1 + nlabels < t.n && !is_cell(t.v[1 + nlabels].s); nlabels++)
			;
		hdr_end = nlabels ? nlabels : 1; /* index of the first row label */
	} else {
		for (hdr_end = 1; hdr_end < t.n && t.v[hdr_end].line == t.v[0].line; hdr_end++)
			;
	}
	for (i = 1; i < hdr_end; i++) {
		err = check_label(c, cm, n, &t.v[i], path, m->cols, m->ncols, "destination");
		if (!err)
			err = add_label(&m->cols, &m->ncols, t.v[i].s);
		if (err)
			goto out;
	}
	if (!m->ncols || hdr_end >= t.n) {
		err = fail_at(c, n, &t.v[0], path,
			      m->ncols ? "the table has no rows" :
					 "the first row lists no destinations");
		goto out;
	}
	for (i = hdr_end; i < t.n; i = j) {
		if (one_line)
			j = i + 1 + m->ncols <= t.n ? i + 1 + m->ncols : t.n;
		else
			for (j = i + 1; j < t.n && t.v[j].line == t.v[i].line; j++)
				;
		err = add_row(c, cm, n, path, m, &t, i, j);
		if (err)
			goto out;
	}
out:
	toks_free(&t);
	return err;
}
