/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pcap replay (SPEC section 6): pushes every packet of a capture through the real BPF program
 * of one hook with BPF_PROG_TEST_RUN, on private (unpinned) maps holding the node's state as
 * computed from a cluster model. Map state carries from packet to packet, so a handshake builds
 * conntrack. Reports each packet's verdict, reason, redirect target and decodes.
 */
#ifndef CILIATE_REPLAY_H
#define CILIATE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/diag.h"

struct cluster_model;
struct replay_session; /* opaque */

/* Most hooks a hook list may name (one per packet). */
#define REPLAY_MAX_HOOKS 16

/* Parses a hook argument: one hook ("from-netdev") or a comma-separated list, one per packet
 * ("to-netdev,from-netdev"). Returns 0, -EINVAL (bad: the unknown name) or -E2BIG. */
int replay_hooks_parse(const char *spec, int *hooks, size_t max, size_t *n, char *bad,
		       size_t badlen);

/* Loads the datapath for `node` with its state in cluster model m, attached (virtually) at
 * `hook` on the veth of `endpoint` ("ns/pod"; required for pod hooks). `hook` may be a list
 * (replay_hooks_parse): packet i then runs through the i-th hook, every hook on the same
 * maps (state carries across hooks: a request's conntrack and NAT entries meet its reply in
 * another hook), and the capture must have exactly one packet per listed hook. */
int replay_session_open(const struct cluster_model *m, const char *node, const char *hook,
			const char *endpoint, struct replay_session **out, struct diag *d);

/* Frees the session and its maps. NULL is fine. */
void replay_session_close(struct replay_session *rs);

enum replay_format { REPLAY_TEXT = 0, REPLAY_JSON = 1 };

struct replay_run_opts {
	const char *in_pcap;
	const char *out_pcap;      /* write outputs of non-dropped packets (NULL: don't) */
	const char *expect_pcap;   /* golden outputs to compare byte for byte (NULL: don't) */
	char *const *expect_verdicts; /* per packet, e.g. "redirect", "drop:POLICY_DENIED" */
	size_t nexpect_verdicts;
	enum replay_format format;
	FILE *out;                 /* per-packet lines; NULL: silent */
};

struct replay_summary {
	size_t packets;
	size_t dropped;
	size_t mismatches;       /* verdict, golden-output or checksum mismatches */
	size_t not_run;          /* frames the kernel cannot run (shorter than Ethernet, ...) */
	char first_mismatch[512];
};

/*
 * Replays a capture. Returns 0 when every packet ran (mismatches are counted in sum, not
 * errors) or a negative errno with d set (unreadable pcap, non-Ethernet link type, ...).
 */
int replay_session_run(struct replay_session *rs, const struct replay_run_opts *o,
		       struct replay_summary *sum, struct diag *d);

/* Prints the session's conntrack table (one line or JSON object per entry). */
int replay_session_dump_ct(struct replay_session *rs, FILE *out, enum replay_format format);

/* Does an observed verdict ("drop:POLICY_DENIED") satisfy an expected one ("drop:133",
 * "drop", "ok", ...)? */
bool replay_verdict_matches(const char *expected, const char *observed);

/* Validates the IPv4 header checksum and the TCP/UDP/ICMP checksum of an Ethernet frame.
 * Returns 0 if all present checksums are valid, else -EBADMSG with why set. */
int replay_checksums_valid(const uint8_t *frame, size_t len, char *why, size_t whylen);

#endif
