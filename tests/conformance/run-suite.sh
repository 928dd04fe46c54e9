#!/usr/bin/env bash
# Policy conformance under the simulator: every scenario of scenarios/netpol/ and
# scenarios/cnp/ (the upstream e2e model x,y,z × a,b,c over two nodes, one policy set per
# file) through real agents, CNI and BPF, once with --routing tunnel and once with
# --routing native (the two runs go side by side: --routing gives each its own cluster tag).
# Checks: both runs exit 0, their reports hold thousands of checks with no failure, every
# expected deny is proven by the datapath's drop event of its own flow, and the
# only skipped checks are SCTP cells (SPEC §5: SCTP is checked by replay, see
# scenarios/replay/sctp-policy.yaml), each with its reason.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
if [ ! -x "$SIM" ]; then
	echo "FAIL: $SIM is missing (run make first)"
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi

passed=0
failed=0
start=$SECONDS
source tests/lib/suite.sh
tmp=$(mktemp -d /tmp/ciliate-t-conf.XXXXXX)
pids=()
# ciliate-sim tears its clusters down on SIGINT/SIGTERM
trap 'for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done; wait; rm -rf "$tmp"; exit 1' INT TERM HUP

files=(scenarios/netpol/*.yaml scenarios/cnp/*.yaml)
echo "${#files[@]} scenarios x 2 routing modes"
for mode in tunnel native; do
	"$SIM" run --routing "$mode" "${files[@]}" --report "$tmp/$mode.json" >"$tmp/$mode.out" 2>&1 &
	pids+=($!)
done
i=0
for mode in tunnel native; do
	wait "${pids[$i]}"
	rc=$?
	i=$((i + 1))
	rep=$tmp/$mode.json
	grep -E '^[0-9]+ check\(s\)' "$tmp/$mode.out" | sed "s/^/  $mode: /"
	why="exit $rc; $(sed -n '/^failed checks:/,/^$/p' "$tmp/$mode.out" | head -8)"
	check "$mode: ciliate-sim run exits 0" [ "$rc" -eq 0 ]
	total=$(grep -oE '"checks_total": [0-9]+' "$rep" 2>/dev/null | grep -oE '[0-9]+$')
	nfail=$(grep -oE '"failed": [0-9]+' "$rep" 2>/dev/null | head -1 | grep -oE '[0-9]+$')
	nskip=$(grep -oE '"skipped": [0-9]+' "$rep" 2>/dev/null | head -1 | grep -oE '[0-9]+$')
	why="report says ${total:-?} checks"
	check "$mode: report holds the matrices (> 10000 checks)" [ "${total:-0}" -gt 10000 ]
	why="${nfail:-?} failed"
	check "$mode: no check failed" [ "${nfail:-1}" -eq 0 ]
	# every skipped check is an SCTP cell, and says why
	sctp_skips=$(grep -cE '"protocol": "SCTP"' "$rep")
	skip_lines=$(grep -c '"skipped": true' "$rep")
	why="$skip_lines skipped checks, $nskip in the totals, $sctp_skips SCTP checks"
	only_sctp() { [ "$skip_lines" = "${nskip:-x}" ] && [ "$skip_lines" = "$sctp_skips" ]; }
	check "$mode: only SCTP cells are skipped" only_sctp
	why="no reason printed"
	check "$mode: skips name their reason" grep -q 'SCTP is checked by replay only' "$tmp/$mode.out"
	# every deny of the suite is proven by the datapath's drop event of its own flow
	denies=$(jq -r '.denials.expected' "$rep" 2>/dev/null)
	proven=$(jq -r '.denials.proven_by_drop_event' "$rep" 2>/dev/null)
	why="${proven:-?} of ${denies:-?} denials proven"
	all_proven() { [ "${denies:-0}" -gt 1000 ] && [ "$denies" = "$proven" ]; }
	check "$mode: every denial proven by its drop event ($proven of $denies)" all_proven
	# the scenarios really ran in the requested mode
	why="no '[3/5] routing $mode' line"
	check "$mode: clusters came up in $mode routing" grep -q "routing $mode" "$tmp/$mode.out"
done
rm -rf "$tmp"
echo "suite time: $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
