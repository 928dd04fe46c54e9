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
source tests/lib/sim_modes.sh
tmp=$(mktemp -d /tmp/ciliate-t-svcsim.XXXXXX)

files=(scenarios/services/*.yaml)
echo "${#files[@]} scenario(s) x 2 routing modes"
sim_modes_run "$SIM" "$tmp" "${files[@]}"
for mode in tunnel native; do
	sim_mode_checks "$mode" "$tmp" 35 # clusterip 17 + affinity 9 + nodeport 12 checks
done
rm -rf "$tmp"
echo "suite time: $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
