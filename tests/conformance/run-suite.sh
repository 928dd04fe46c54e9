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
source tests/lib/sim_modes.sh
tmp=$(mktemp -d /tmp/ciliate-t-conf.XXXXXX)

files=(scenarios/netpol/*.yaml scenarios/cnp/*.yaml)
echo "${#files[@]} scenarios x 2 routing modes"
sim_modes_run "$SIM" "$tmp" "${files[@]}"
for mode in tunnel native; do
	rep=$tmp/$mode.json
	sim_mode_checks "$mode" "$tmp" 10000
	denies=$(jq -r '.denials.expected' "$rep" 2>/dev/null)
	why="${denies:-?} denials"
	check "$mode: the matrices hold more than 1000 denials" [ "${denies:-0}" -gt 1000 ]
	# every skipped check is an SCTP cell, and says why
	nskip=$(jq -r '.skipped' "$rep" 2>/dev/null)
	sctp_skips=$(grep -cE '"protocol": "SCTP"' "$rep")
	skip_lines=$(grep -c '"skipped": true' "$rep")
	why="$skip_lines skipped checks, $nskip in the totals, $sctp_skips SCTP checks"
	only_sctp() { [ "$skip_lines" = "${nskip:-x}" ] && [ "$skip_lines" = "$sctp_skips" ]; }
	check "$mode: only SCTP cells are skipped" only_sctp
	why="no reason printed"
	check "$mode: skips name their reason" grep -q 'SCTP is checked by replay only' "$tmp/$mode.out"
done
rm -rf "$tmp"
echo "suite time: $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
