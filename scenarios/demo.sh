#!/usr/bin/env bash
# make demo: replays the showcase captures through the real BPF programs and prints the
# per-packet verdict table, then runs scenarios/demo.yaml on a simulated cluster (network
# namespaces, one ciliate-agent per node, pods through ciliate-cni) with ciliate-sim.
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
if [ "$(id -u)" = 0 ] && [ -x "$build/bin/ciliate-sim" ]; then
	echo "ciliate demo: simulated cluster (ciliate-sim run scenarios/demo.yaml)"
	echo
	"$build/bin/ciliate-sim" run scenarios/demo.yaml || rc=1
else
	echo "ciliate demo: skipping the simulated cluster (needs root and build/bin/ciliate-sim)"
fi
exit $rc
