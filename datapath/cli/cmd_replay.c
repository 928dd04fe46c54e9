/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate replay: run a capture through one hook's real BPF program (SPEC section 6), or with
 * only --scenario, run every Replay document of the scenario and check its expectations.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model/model.h"
#include "replay/replay.h"

static void replay_usage(FILE *f)
{
	fprintf(f,
		"usage: ciliate replay --scenario S --node N --hook H [--endpoint ns/pod]\n"
		"                      -r in.pcap [-w out.pcap] [--expect golden.pcap]\n"
		"                      [--expect-verdicts v1,v2,...] [--ct] [-o text|json]\n"
		"       ciliate replay --scenario S [-o text|json]\n"
		"\n"
		"The first form replays one capture; the second runs every Replay document in S and\n"
		"checks its expected verdicts and golden output. Hooks: from-container,\n"
		"to-container (with --endpoint), from-netdev, to-netdev, from-overlay, to-overlay;\n"
		"a comma list (e.g. to-netdev,from-netdev) gives one hook per packet, on the same maps.\n"
		"--ct prints the conntrack table after the replay.\n"
		"Verdicts: ok | drop:REASON | redirect | tx | pass.\n");
}

/* Splits "a,b,c" into a NULL-terminated array (in place). */
static size_t split_commas(char *s, char ***out)
{
	size_t n = 0;
	char **v = NULL;

	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		v = realloc(v, (n + 2) * sizeof(*v));
		v[n++] = tok;
		v[n] = NULL;
	}
	*out = v;
	return n;
}

static int run_one(const struct scenario *s, const char *name, const char *node, const char *hook,
		   const char *endpoint, struct replay_run_opts *ro, int dump_ct)
{
	struct replay_session *rs = NULL;
	struct replay_summary sum;
	struct diag d = { "" };
	int err;

	if (ro->format == REPLAY_TEXT)
		printf("=== replay %s: node %s, hook %s%s%s, %s\n", name, node, hook,
		       endpoint ? ", endpoint " : "", endpoint ? endpoint : "", ro->in_pcap);
	err = replay_session_open(&s->model, node, hook, endpoint, &rs, &d);
	if (!err)
		err = replay_session_run(rs, ro, &sum, &d);
	if (!err && dump_ct)
		replay_session_dump_ct(rs, stdout, ro->format);
	replay_session_close(rs);
	if (err) {
		fprintf(stderr, "ciliate replay: %s\n", d.msg);
		return -1;
	}
	if (ro->format == REPLAY_TEXT) {
		printf("--- %s: %zu packets, %zu dropped", name, sum.packets, sum.dropped);
		if (sum.not_run)
			printf(", %zu not runnable", sum.not_run);
		if (sum.mismatches)
			printf(": FAIL (%zu mismatches; first: %s)\n", sum.mismatches,
			       sum.first_mismatch);
		else
			printf(": %s\n", ro->nexpect_verdicts || ro->expect_pcap ? "PASS" : "done");
	}
	return sum.mismatches ? 1 : 0;
}

int cmd_replay(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "scenario", required_argument, NULL, 's' },
		{ "node", required_argument, NULL, 'n' },
		{ "hook", required_argument, NULL, 'k' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "read", required_argument, NULL, 'r' },
		{ "write", required_argument, NULL, 'w' },
		{ "expect", required_argument, NULL, 'x' },
		{ "expect-verdicts", required_argument, NULL, 'V' },
		{ "output", required_argument, NULL, 'o' },
		{ "ct", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *scenario_path = NULL, *node = NULL, *hook = NULL, *endpoint = NULL;
	struct replay_run_opts ro = { .out = stdout };
	char **verdicts = NULL;
	struct scenario *s = NULL;
	struct diag d = { "" };
	int c, rc = EXIT_OK, dump_ct = 0;
	size_t failed = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:n:k:e:r:w:x:V:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': scenario_path = optarg; break;
		case 'n': node = optarg; break;
		case 'k': hook = optarg; break;
		case 'e': endpoint = optarg; break;
		case 'r': ro.in_pcap = optarg; break;
		case 'w': ro.out_pcap = optarg; break;
		case 'x': ro.expect_pcap = optarg; break;
		case 'V': ro.nexpect_verdicts = split_commas(optarg, &verdicts); break;
		case 'o':
			if (!strcmp(optarg, "json"))
				ro.format = REPLAY_JSON;
			else if (strcmp(optarg, "text")) {
				fprintf(stderr, "ciliate replay: -o takes text or json\n");
				return EXIT_USAGE;
			}
			break;
		case 'C': dump_ct = 1; break;
		case 'h': replay_usage(stdout); return EXIT_OK;
		default: replay_usage(stderr); return EXIT_USAGE;
		}
	}
	ro.expect_verdicts = verdicts;
	if (!scenario_path || optind != argc || (ro.in_pcap && (!node || !hook)) ||
	    (!ro.in_pcap && (node || hook || endpoint || ro.out_pcap || ro.expect_pcap))) {
		replay_usage(stderr);
		free(verdicts);
		return EXIT_USAGE;
	}
	if (scenario_load(scenario_path, &s, &d)) {
		fprintf(stderr, "ciliate replay: %s\n", d.msg);
		free(verdicts);
		return EXIT_FAILURE_;
	}

	if (ro.in_pcap) {
		int r = run_one(s, ro.in_pcap, node, hook, endpoint, &ro, dump_ct);

		rc = r == 0 ? EXIT_OK : EXIT_FAILURE_;
		goto out;
	}
	if (!s->nreplays) {
		fprintf(stderr, "ciliate replay: %s has no Replay documents (use -r to replay a pcap)\n",
			scenario_path);
		rc = EXIT_FAILURE_;
		goto out;
	}
	for (size_t i = 0; i < s->nreplays; i++) {
		const struct m_replay *r = &s->replays[i];
		struct replay_run_opts one = ro;

		one.in_pcap = r->pcap;
		one.expect_pcap = r->expect_output;
		one.expect_verdicts = r->expect_verdicts;
		one.nexpect_verdicts = r->nexpect_verdicts;
		if (run_one(s, r->name, r->node, r->hook, r->endpoint[0] ? r->endpoint : NULL, &one,
			    dump_ct))
			failed++;
	}
	if (ro.format == REPLAY_TEXT)
		printf("replays: %zu passed, %zu failed\n", s->nreplays - failed, failed);
	rc = failed ? EXIT_FAILURE_ : EXIT_OK;
out:
	scenario_free(s);
	free(verdicts);
	return rc;
}
