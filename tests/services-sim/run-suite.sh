#!/usr/bin/env bash
# Services under the simulator: every scenario of scenarios/services/ through real agents,
# CNI and BPF, once with --routing tunnel and once with --routing native (side by side: each
# mode gets its own cluster tag). Checks: both runs exit 0, their reports hold the checks with
# none failed, and every expected deny is proven by the datapath's drop event of its flow.
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
tmp=$(mktemp -d /tmp/ciliate-t-svcsim.XXXXXX)
pids=()
# ciliate-sim tears its clusters down on SIGINT/SIGTERM
trap 'for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done; wait; rm -rf "$tmp"; exit 1' INT TERM HUP

files=(scenarios/services/*.yaml)
echo "${#files[@]} scenario(s) x 2 routing modes"
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
	total=$(jq -r '.checks_total' "$rep" 2>/dev/null)
	nfail=$(jq -r '.failed' "$rep" 2>/dev/null)
	why="report says ${total:-?} checks"
	check "$mode: the report holds the checks" [ "${total:-0}" -gt 5 ]
	why="${nfail:-?} failed"
	check "$mode: no check failed" [ "${nfail:-1}" -eq 0 ]
	denies=$(jq -r '.denials.expected' "$rep" 2>/dev/null)
	proven=$(jq -r '.denials.proven_by_drop_event' "$rep" 2>/dev/null)
	why="${proven:-?} of ${denies:-?} denials proven"
	all_proven() { [ "${denies:-0}" -gt 0 ] && [ "$denies" = "$proven" ]; }
	check "$mode: every denial proven by its drop event ($proven of $denies)" all_proven
	why="no '[3/5] routing $mode' line"
	check "$mode: clusters came up in $mode routing" grep -q "routing $mode" "$tmp/$mode.out"
done
rm -rf "$tmp"
echo "suite time: $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
