/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay documents under `ciliate-sim run` (SPEC §5): each one pushes its pcap through the
 * real program of its hook with BPF_PROG_TEST_RUN, on private maps holding the node's state
 * computed from the scenario (no namespace needed), and becomes one check: every expected
 * verdict and the golden output must hold. A failing replay prints its per-packet table.
 */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay/replay.h"

static void replay_check(const struct scenario *s, const char *scenario, const struct m_replay *rp,
			 struct sim_report *r)
{
	struct replay_run_opts ro = { .format = REPLAY_TEXT };
	struct replay_session *rs = NULL;
	struct replay_summary sum = { 0 };
	struct sim_check chk;
	struct diag d = { "" };
	long long t0 = sim_now_ms();
	char *table = NULL;
	size_t table_len = 0;
	int err;

	memset(&chk, 0, sizeof(chk));
	chk.scenario = scenario;
	chk.matrix = -1;
	snprintf(chk.test, sizeof(chk.test), "%s", rp->name);
	snprintf(chk.step, sizeof(chk.step), "replay");
	snprintf(chk.kind, sizeof(chk.kind), "replay");
	snprintf(chk.name, sizeof(chk.name), "replay %s: %s %s%s%s", rp->name, rp->node, rp->hook,
		 rp->endpoint[0] ? " " : "", rp->endpoint);
	snprintf(chk.from, sizeof(chk.from), "%s", rp->pcap);
	snprintf(chk.to, sizeof(chk.to), "%s/%s", rp->node, rp->hook);
	snprintf(chk.expected, sizeof(chk.expected), "%zu verdict(s)%s", rp->nexpect_verdicts,
		 rp->expect_output ? " + golden output" : "");
	ro.in_pcap = rp->pcap;
	ro.expect_pcap = rp->expect_output;
	ro.expect_verdicts = rp->expect_verdicts;
	ro.nexpect_verdicts = rp->nexpect_verdicts;
	ro.out = open_memstream(&table, &table_len);
	err = replay_session_open(&s->model, rp->node, rp->hook,
				  rp->endpoint[0] ? rp->endpoint : NULL, &rs, &d);
	if (!err)
		err = replay_session_run(rs, &ro, &sum, &d);
	replay_session_close(rs);
	if (ro.out)
		fclose(ro.out);
	chk.duration_ms = sim_now_ms() - t0;
	if (err) {
		snprintf(chk.observed, sizeof(chk.observed), "error");
		snprintf(chk.reason, sizeof(chk.reason), "%s", d.msg);
	} else {
		snprintf(chk.observed, sizeof(chk.observed), "%zu packet(s), %zu dropped%s",
			 sum.packets, sum.dropped, sum.mismatches ? ", mismatches" : "");
		chk.pass = !sum.mismatches;
		if (!chk.pass)
			snprintf(chk.reason, sizeof(chk.reason), "%zu mismatch(es); first: %s",
				 sum.mismatches, sum.first_mismatch);
		else if (!rp->nexpect_verdicts && !rp->expect_output)
			snprintf(chk.observed, sizeof(chk.observed),
				 "%zu packet(s) ran (no expectations given)", sum.packets);
	}
	printf("  %-4s  %s: %s (%lld ms)%s%s\n", chk.pass ? "ok" : "FAIL", chk.name,
	       chk.observed, chk.duration_ms, chk.pass ? "" : ": ", chk.pass ? "" : chk.reason);
	if (!chk.pass && table && table_len)
		printf("%s", table);
	free(table);
	sim_report_add(r, &chk);
}

int sim_run_replays(const struct scenario *s, struct sim_report *r)
{
	const char *scenario = sim_report_intern(r, s->path);
	size_t i;

	if (!s->nreplays)
		return 0;
	printf("--- replays: %zu\n", s->nreplays);
	for (i = 0; i < s->nreplays && !sim_interrupted; i++)
		replay_check(s, scenario, &s->replays[i], r);
	fflush(stdout);
	return 0;
}
