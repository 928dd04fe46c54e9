/* SPDX-License-Identifier: Apache-2.0 */
/* Results: matrix tables, the closing summary table and the JSON report. */
#include "run.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"

struct scen_rec {
	const char *scenario;
	char tag[SIM_TAG_MAX + 1];
	long long up_ms;
	long long down_ms;
	bool reused;
};

struct sim_report {
	struct sim_check *checks;
	size_t n, cap;
	char **paths;
	size_t npaths;
	struct scen_rec *scen;
	size_t nscen;
	long long start_ms;
};

struct sim_report *sim_report_new(void)
{
	struct sim_report *r = calloc(1, sizeof(*r));

	if (r)
		r->start_ms = sim_now_ms();
	return r;
}

void sim_report_free(struct sim_report *r)
{
	if (!r)
		return;
	free(r->checks);
	strv_free(r->paths, r->npaths);
	free(r->scen);
	free(r);
}

const char *sim_report_intern(struct sim_report *r, const char *scenario)
{
	char **nv;
	size_t i;

	for (i = 0; i < r->npaths; i++)
		if (!strcmp(r->paths[i], scenario))
			return r->paths[i];
	nv = realloc(r->paths, (r->npaths + 1) * sizeof(*nv));
	if (!nv)
		return "?";
	r->paths = nv;
	nv[r->npaths] = strdup(scenario);
	if (!nv[r->npaths])
		return "?";
	return nv[r->npaths++];
}

int sim_report_add(struct sim_report *r, const struct sim_check *chk)
{
	struct sim_check *nv;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		nv = realloc(r->checks, r->cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		r->checks = nv;
	}
	r->checks[r->n++] = *chk;
	return 0;
}

void sim_report_error(struct sim_report *r, const char *scenario, const char *name,
		      const char *reason)
{
	struct sim_check chk;

	memset(&chk, 0, sizeof(chk));
	chk.scenario = sim_report_intern(r, scenario);
	snprintf(chk.test, sizeof(chk.test), "-");
	snprintf(chk.step, sizeof(chk.step), "%s", name);
	snprintf(chk.name, sizeof(chk.name), "%s", name);
	snprintf(chk.kind, sizeof(chk.kind), "setup");
	snprintf(chk.expected, sizeof(chk.expected), "ok");
	snprintf(chk.observed, sizeof(chk.observed), "failed");
	snprintf(chk.reason, sizeof(chk.reason), "%s", reason);
	chk.matrix = -1;
	sim_report_add(r, &chk);
	printf("  FAIL  %s: %s\n", name, reason);
}

void sim_report_scenario(struct sim_report *r, const char *scenario, const char *tag,
			 long long up_ms, long long down_ms, bool reused)
{
	struct scen_rec *nv = realloc(r->scen, (r->nscen + 1) * sizeof(*nv));

	if (!nv)
		return;
	r->scen = nv;
	nv[r->nscen].scenario = sim_report_intern(r, scenario);
	snprintf(nv[r->nscen].tag, sizeof(nv[r->nscen].tag), "%s", tag);
	nv[r->nscen].up_ms = up_ms;
	nv[r->nscen].down_ms = down_ms;
	nv[r->nscen].reused = reused;
	r->nscen++;
}

static size_t max_label(char **v, size_t n, size_t min)
{
	size_t i, w = min;

	for (i = 0; i < n; i++)
		if (strlen(v[i]) > w)
			w = strlen(v[i]);
	return w;
}

static const struct sim_check *find_cell(const struct sim_check *cells, size_t n, size_t r,
					 size_t k)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cells[i].row == r && cells[i].col == k)
			return &cells[i];
	return NULL;
}

/* One table row into buf: label then cells, each padded to the column width. */
static void table_row(char *buf, size_t size, const struct m_matrix *m, size_t rw, size_t cw,
		      long r, const struct sim_check *cells, size_t n, bool observed)
{
	size_t off, k;

	off = (size_t)snprintf(buf, size, "%-*s", (int)rw, r < 0 ? "-" : m->rows[r]);
	for (k = 0; k < m->ncols && off < size; k++) {
		const struct sim_check *c;
		char cell[4] = "-";

		if (r < 0) {
			off += (size_t)snprintf(buf + off, size - off, "  %-*s", (int)cw, m->cols[k]);
			continue;
		}
		c = find_cell(cells, n, (size_t)r, k);
		if (c && !observed)
			snprintf(cell, sizeof(cell), "%c", c->cell_expected);
		else if (c)
			snprintf(cell, sizeof(cell), "%c%s", c->cell_observed,
				 c->pass ? "" : c->cell_observed != c->cell_expected ? "*" : "!");
		off += (size_t)snprintf(buf + off, size - off, "  %-*s", (int)cw, cell);
	}
}

void sim_print_matrix(const struct m_matrix *m, const struct sim_check *cells, size_t ncells)
{
	size_t rw = max_label(m->rows, m->nrows, 1), cw = max_label(m->cols, m->ncols, 2);
	size_t width = rw + m->ncols * (cw + 2);
	char left[4096], right[4096];
	long r;

	if (width >= sizeof(left))
		width = sizeof(left) - 1;
	printf("        %-*s    %s\n", (int)width, "expected", "observed");
	for (r = -1; r < (long)m->nrows; r++) {
		table_row(left, sizeof(left), m, rw, cw, r, cells, ncells, false);
		table_row(right, sizeof(right), m, rw, cw, r, cells, ncells, true);
		printf("        %-*s    %s\n", (int)width, left, right);
	}
	printf("        (. allow, X deny, - loopback/ignored, ? not run; "
	       "* differs, ! failed for another reason)\n");
}

/* Denials expected, those that held with their drop event, and those a fault explains. */
static void deny_counts(const struct sim_report *r, size_t *denies, size_t *proven,
			size_t *by_fault)
{
	*denies = *proven = *by_fault = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct sim_check *c = &r->checks[i];

		*denies += c->deny_expected;
		*proven += c->deny_expected && c->pass && c->has_evidence;
		*by_fault += c->deny_expected && c->pass && c->fault_evidence[0];
	}
}

int sim_report_summary(const struct sim_report *r)
{
	size_t i, j, passed = 0, failed = 0, skipped = 0, sw = 8, tw = 9, denies, proven, by_fault;
	char ts[2 * MODEL_NAME_MAX + 4];

	for (i = 0; i < r->n; i++) {
		snprintf(ts, sizeof(ts), "%s/%s", r->checks[i].test, r->checks[i].step);
		if (strlen(r->checks[i].scenario) > sw)
			sw = strlen(r->checks[i].scenario);
		if (strlen(ts) > tw)
			tw = strlen(ts);
	}
	printf("\n=== summary\n%-*s  %-*s  %6s  %6s  %6s  %7s\n", (int)sw, "SCENARIO", (int)tw,
	       "TEST/STEP", "CHECKS", "PASSED", "FAILED", "SKIPPED");
	for (i = 0; i < r->n; i = j) {
		size_t p = 0, f = 0, k = 0;

		for (j = i; j < r->n && r->checks[j].scenario == r->checks[i].scenario &&
			    !strcmp(r->checks[j].test, r->checks[i].test) &&
			    !strcmp(r->checks[j].step, r->checks[i].step);
		     j++) {
			k += r->checks[j].skipped;
			p += r->checks[j].pass && !r->checks[j].skipped;
			f += !r->checks[j].pass;
		}
		snprintf(ts, sizeof(ts), "%s/%s", r->checks[i].test, r->checks[i].step);
		printf("%-*s  %-*s  %6zu  %6zu  %6zu  %7zu\n", (int)sw, r->checks[i].scenario,
		       (int)tw, ts, p + f + k, p, f, k);
		passed += p;
		failed += f;
		skipped += k;
	}
	if (failed) {
		printf("\nfailed checks:\n");
		for (i = 0; i < r->n; i++)
			if (!r->checks[i].pass)
				printf("  %s: %s/%s: %s: %s\n", r->checks[i].scenario,
				       r->checks[i].test, r->checks[i].step, r->checks[i].name,
				       r->checks[i].reason);
	}
	if (skipped) {
		/* one line per distinct reason: skips are never silent */
		printf("\nskipped checks:\n");
		for (i = 0; i < r->n; i++) {
			if (!r->checks[i].skipped)
				continue;
			for (j = 0; j < i; j++)
				if (r->checks[j].skipped &&
				    r->checks[j].scenario == r->checks[i].scenario &&
				    !strcmp(r->checks[j].reason, r->checks[i].reason))
					break;
			if (j == i)
				printf("  %s: %s\n", r->checks[i].scenario, r->checks[i].reason);
		}
	}
	deny_counts(r, &denies, &proven, &by_fault);
	printf("\n%zu of %zu denial(s) proven by a datapath drop event", proven, denies);
	printf(by_fault ? ", %zu explained by a fault of the run (link down)\n" : "\n", by_fault);
	printf("%zu check(s): %zu passed, %zu failed, %zu skipped\n", passed + failed + skipped,
	       passed, failed, skipped);
	return (int)failed;
}

/* The drop event that proves a deny: where, why, which line of the datapath. */
static json_t *evidence_json(const struct sim_drop *d)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "node", d->node, "hook", d->hook,
			      "drop_reason_desc", d->reason, "event",
			      d->event_type == 1 ? "drop" : "policy-verdict", "seq",
			      (json_int_t)d->seq, "time", d->time);

	if (o && d->line)
		json_object_set_new(o, "file", json_pack("{s:s,s:i}", "name", d->file, "line",
							 d->line));
	return o;
}

/* A payload probe's first attempt: request size, path MTU, the ICMP error the client got,
 * and the TFO outcome. */
static json_t *pmtu_json(const struct sim_pmtu *m)
{
	json_t *o = json_pack("{s:I,s:I,s:b}", "sent_bytes", (json_int_t)m->sent_bytes,
			      "path_mtu", (json_int_t)m->path_mtu, "retried", m->retried);

	if (o && m->icmp_seen)
		json_object_set_new(o, "icmp", json_pack("{s:I,s:I,s:I,s:s,s:s,s:I}", "type",
			(json_int_t)m->icmp_type, "code", (json_int_t)m->icmp_code, "mtu",
			(json_int_t)m->icmp_mtu, "from", m->icmp_from, "quoted_dst", m->quoted_dst,
			"quoted_port", (json_int_t)m->quoted_port));
	if (o && m->syn_data >= 0) {
		json_object_set_new(o, "syn_data", json_integer(m->syn_data));
		json_object_set_new(o, "syn_data_acked", json_boolean(m->syn_data_acked));
	}
	return o;
}

static json_t *check_json(const struct sim_check *c)
{
	char buf[16];
	json_t *o;

	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:I,s:s,s:b}",
		      "scenario", c->scenario, "test", c->test, "step", c->step, "name", c->name,
		      "kind", c->kind, "from", c->from, "to", c->to, "port", (int)c->port,
		      "protocol", c->proto ? proto_name(c->proto, buf, sizeof(buf)) : "",
		      "expected", c->expected, "observed", c->observed, "drop_reason",
		      c->drop_reason, "duration_ms", (json_int_t)c->duration_ms, "reason",
		      c->reason, "pass", c->pass && !c->skipped);
	if (o && c->skipped)
		json_object_set_new(o, "skipped", json_true());
	if (o && c->has_evidence)
		json_object_set_new(o, "evidence", evidence_json(&c->evidence));
	else if (o && c->fault_evidence[0])
		json_object_set_new(o, "evidence", json_pack("{s:s}", "fault", c->fault_evidence));
	if (o && c->deny_expected)
		json_object_set_new(o, "deny_proven", json_boolean(c->pass && c->has_evidence));
	if (o && c->has_pmtu)
		json_object_set_new(o, "pmtu", pmtu_json(&c->pmtu));
	return o;
}

int sim_report_write(const struct sim_report *r, const char *path, struct diag *d)
{
	json_t *o, *checks, *scen;
	size_t i, passed = 0, skipped = 0, denies, proven, by_fault;
	int err = 0;

	for (i = 0; i < r->n; i++) {
		passed += r->checks[i].pass && !r->checks[i].skipped;
		skipped += r->checks[i].skipped;
	}
	deny_counts(r, &denies, &proven, &by_fault);
	o = json_pack("{s:i,s:I,s:I,s:I,s:I,s:I}", "version", 1, "checks_total",
		      (json_int_t)r->n, "passed", (json_int_t)passed, "failed",
		      (json_int_t)(r->n - passed - skipped), "skipped", (json_int_t)skipped,
		      "duration_ms", (json_int_t)(sim_now_ms() - r->start_ms));
	if (!o)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	scen = json_array();
	for (i = 0; i < r->nscen; i++)
		json_array_append_new(scen, json_pack("{s:s,s:s,s:I,s:I,s:b}", "scenario",
						      r->scen[i].scenario, "tag", r->scen[i].tag,
						      "up_ms", (json_int_t)r->scen[i].up_ms,
						      "down_ms", (json_int_t)r->scen[i].down_ms,
						      "reused", r->scen[i].reused));
	json_object_set_new(o, "scenarios", scen);
	json_object_set_new(o, "denials", json_pack("{s:I,s:I,s:I}", "expected", (json_int_t)denies,
						    "proven_by_drop_event", (json_int_t)proven,
						    "explained_by_fault", (json_int_t)by_fault));
	checks = json_array();
	for (i = 0; i < r->n; i++)
		json_array_append_new(checks, check_json(&r->checks[i]));
	json_object_set_new(o, "checks", checks);
	if (json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
		err = diag_fail_errno(d, -EIO, "cannot write report %s", path);
	json_decref(o);
	return err;
}
