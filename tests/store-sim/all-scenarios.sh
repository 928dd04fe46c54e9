#!/usr/bin/env bash
# `make test-etcd`: every scenario of scenarios/{connectivity,netpol,cnp} with
# `ciliate-sim run --store etcd://` against one etcd member (tests/lib/etcd.sh) inside a
# network namespace this script creates (cil-t-sa<pid>) and removes on exit; the simulator is
# entered into it with nsenter (docs/SIMULATOR.md, "Store on etcd"). `make test` runs a
# subset of these in tests/store-sim/run-suite.sh. Usage: all-scenarios.sh BUILD_DIR [DIR...]
set -uo pipefail

build=${1:-build}
shift
cd "$(dirname "$0")/../.." || exit 1
build=$(cd "$build" && pwd)
dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(scenarios/connectivity scenarios/netpol scenarios/cnp)
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v etcd >/dev/null || { echo "SKIP: etcd is not installed (make deps)"; exit 77; }
. tests/lib/etcd.sh
NS="cil-t-sa$$"
tmp=$(mktemp -d /tmp/ciliate-t-etcd-all.XXXXXX)
pid=""
cleanup() {
	etcd_stop "$pid" "$tmp" e1
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
ip netns add "$NS" && ip -n "$NS" link set lo up || exit 1
etcd_start e1 "$tmp" "$NS" || exit 1
pid=$ETCD_PID
files=()
for d in "${dirs[@]}"; do
	files+=("$d"/*.yaml)
done
echo "running ${#files[@]} scenarios on etcd $ETCD_EP (netns $NS)"
nsenter --net="/run/netns/$NS" "$build/bin/ciliate-sim" run "${files[@]}" --store "etcd://$ETCD_EP"
