#!/usr/bin/env bash
# make demo: replays the showcase captures through the real BPF programs and prints the
# per-packet verdict table. (Grows into a simulated-cluster demo with the simulator.)
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
echo "ciliate demo: replaying showcase captures through from-container / to-container"
echo "(BPF_PROG_TEST_RUN on private maps; scenario state from scenarios/replay/*.yaml)"
echo
rc=0
for f in scenarios/replay/tcp-*.yaml scenarios/replay/icmp-*.yaml; do
	[ -f "$f" ] || continue
	"$build/bin/ciliate" replay --scenario "$f" || rc=1
	echo
done
exit $rc
