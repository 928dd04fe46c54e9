/* SPDX-License-Identifier: Apache-2.0 */
/* Progress on stderr (cilium-cli's shape), the summary on stdout (text or -o json). */
#include <stdio.h>
#include <string.h>

#include "ct.h"

void ct_report_test_start(const struct ct_ctx *c, const struct ct_test *t, size_t i, size_t n)
{
	fprintf(stderr, "[=] [%s] Test [%s] [%zu/%zu]\n", c->ns, t->name, i + 1, n);
}

/* Actions of t that passed. */
static size_t passed_actions(const struct ct_test *t)
{
	size_t i, n = 0;

	for (i = 0; i < t->nactions; i++)
		n += t->actions[i].pass;
	return n;
}

static const char *result_of(const struct ct_test *t)
{
	return t->skipped ? "skip" : t->nfailed ? "fail" : "pass";
}

void ct_report_test_end(const struct ct_ctx *c, const struct ct_test *t)
{
	size_t i;

	if (t->skipped) {
		fprintf(stderr, "  ⏭️  skipped: %s\n", t->skip_reason);
		return;
	}
	for (i = 0; i < t->nactions; i++)
		fputs(t->actions[i].pass ? "." : "x", stderr);
	fputc('\n', stderr);
	for (i = 0; c->verbose && i < t->nactions; i++) {
		const struct ct_action *a = &t->actions[i];

		fprintf(stderr, "  [%s] Action [%s/%s: %s -> %s]: expected %s, %s\n",
			a->pass ? "." : "x", t->name, a->name, a->src, a->dst,
			a->expect == CT_DENY ? "deny" : "allow", a->observed);
	}
	if (t->error[0])
		fprintf(stderr, "  ❌ %s: %s\n", t->name, t->error);
	for (i = 0; i < t->nactions; i++) {
		const struct ct_action *a = &t->actions[i];

		if (!a->pass)
			fprintf(stderr, "  ❌ %s/%s: %s -> %s: %s\n", t->name, a->name, a->src,
				a->dst, a->reason[0] ? a->reason : a->observed);
	}
	if (t->notes[0])
		fprintf(stderr, "  ℹ️  %s\n", t->notes);
	fprintf(stderr, "  %s %s: %zu/%zu action(s) passed (%.2fs)\n", t->nfailed ? "❌" : "✅",
		t->name, passed_actions(t), t->nactions, t->seconds);
}

static json_t *json_report(const struct ct_ctx *c, struct ct_test *t, size_t n, double total_s,
			   bool interrupted)
{
	json_t *tests = json_array(), *root;
	size_t i, k, failed = 0, skipped = 0, ran = 0;

	for (i = 0; i < n; i++) {
		json_t *acts = json_array(), *o;

		if (!t[i].selected)
			continue;
		for (k = 0; k < t[i].nactions; k++) {
			const struct ct_action *a = &t[i].actions[k];

			json_array_append_new(
				acts,
				json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s}", "name", a->name, "from",
					  a->src, "to", a->dst, "expect",
					  a->expect == CT_DENY ? "deny" : "allow", "pass", a->pass,
					  "observed", a->observed, "reason", a->reason));
		}
		o = json_pack("{s:s,s:s,s:f,s:o}", "name", t[i].name, "result", result_of(&t[i]),
			      "seconds", t[i].seconds, "actions", acts);
		if (t[i].skipped)
			json_object_set_new(o, "skip_reason", json_string(t[i].skip_reason));
		if (t[i].error[0])
			json_object_set_new(o, "error", json_string(t[i].error));
		if (t[i].notes[0])
			json_object_set_new(o, "notes", json_string(t[i].notes));
		json_array_append_new(tests, o);
		failed += !t[i].skipped && t[i].nfailed;
		skipped += t[i].skipped;
		ran += !t[i].skipped;
	}
	root = json_pack("{s:s,s:s,s:f,s:f,s:f,s:f,s:i,s:i,s:i,s:b,s:o}", "namespace", c->ns,
			 "cluster", c->env.tag, "seconds", total_s, "deploy_seconds", c->deploy_s,
			 "tests_seconds", c->tests_s, "cleanup_seconds", c->cleanup_s, "passed",
			 (int)(ran - failed), "failed", (int)failed, "skipped", (int)skipped,
			 "interrupted", interrupted, "tests", tests);
	return root;
}

size_t ct_report_summary(const struct ct_ctx *c, struct ct_test *t, size_t n, bool json,
			 double total_s, bool interrupted)
{
	size_t i, k, failed = 0, skipped = 0, ran = 0, actions = 0, afailed = 0, sc_skipped = 0;

	for (i = 0; i < n; i++) {
		if (!t[i].selected)
			continue;
		skipped += t[i].skipped;
		ran += !t[i].skipped;
		failed += !t[i].skipped && t[i].nfailed;
		actions += t[i].nactions;
		afailed += t[i].nactions - passed_actions(&t[i]);
		sc_skipped += t[i].scenarios_skipped;
	}
	if (json) {
		json_t *r = json_report(c, t, n, total_s, interrupted);

		json_dumpf(r, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(r);
		return failed;
	}
	printf("📋 Test Report [%s] (cluster %s, %.1fs)\n", c->ns, c->env.tag, total_s);
	printf("  %-28s %-6s %-9s %s\n", "TEST", "RESULT", "ACTIONS", "DURATION");
	for (i = 0; i < n; i++) {
		char acts[32];

		if (!t[i].selected)
			continue;
		if (t[i].skipped) {
			printf("  %-28s %-6s %-9s %-9s %s\n", t[i].name, "skip", "-", "-",
			       t[i].skip_reason);
			continue;
		}
		snprintf(acts, sizeof(acts), "%zu/%zu", passed_actions(&t[i]), t[i].nactions);
		printf("  %-28s %-6s %-9s %.2fs\n", t[i].name, result_of(&t[i]), acts,
		       t[i].seconds);
	}
	printf("  (deploy %.1fs, tests %.1fs, cleanup %.1fs)\n", c->deploy_s, c->tests_s,
	       c->cleanup_s);
	if (interrupted && !failed) {
		printf("⚠️  [%s] Interrupted after %zu tests (%zu actions): the remaining "
		       "tests "
		       "did "
		       "not run; everything the suite made was removed.\n",
		       c->ns, ran, actions);
		return 1;
	}
	if (interrupted)
		printf("⚠️  [%s] Interrupted: the remaining tests did not run; everything the "
		       "suite "
		       "made was removed.\n",
		       c->ns);
	if (!failed && !interrupted) {
		printf("✅ [%s] All %zu tests (%zu actions) successful, %zu tests skipped, %zu "
		       "scenarios skipped.\n",
		       c->ns, ran, actions, skipped, sc_skipped);
		return 0;
	}
	printf("❌ [%s] %zu/%zu tests failed (%zu/%zu actions), %zu tests skipped, %zu scenarios "
	       "skipped:\n",
	       c->ns, failed, ran, afailed, actions, skipped, sc_skipped);
	for (i = 0; i < n; i++) {
		if (!t[i].selected || t[i].skipped || !t[i].nfailed)
			continue;
		printf("Test [%s]:\n", t[i].name);
		if (t[i].error[0])
			printf("  ❌ %s: %s\n", t[i].name, t[i].error);
		for (k = 0; k < t[i].nactions; k++) {
			const struct ct_action *a = &t[i].actions[k];

			if (!a->pass)
				printf("  ❌ %s/%s: %s -> %s: %s\n", t[i].name, a->name, a->src,
				       a->dst, a->reason[0] ? a->reason : a->observed);
		}
	}
	return failed ? failed : 1;
}
