#!/usr/bin/env bash
# lbcontrol suite: a smoke run of build/bench/bench_lb_control (the service control plane
# against iptables-restore and nft -f, docs/PERFORMANCE.md) with 100 services x 10 backends.
# Checks what the bench's --smoke mode checks itself: after the agent's reconcile from empty
# and after one service's backend changed and changed back, the LB maps hold exactly the
# services (every slot 0 with 10 slots, each naming one of the service's own backends, the
# reverse NAT, no other entry); the kube-proxy-style iptables rules load with
# iptables-restore (nft and legacy backends) and nft -f loads the verdict-map table, each
# holding exactly the expected chains before and after the one-service partial sync. Also
# that the bench's network namespace is gone afterwards, also when it is stopped by SIGTERM.
# No timing is checked: the numbers belong to `make bench`.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/suite.sh
BENCH=$build/bench/bench_lb_control
passed=0 failed=0

if [ ! -x "$BENCH" ]; then
	echo "FAIL: $BENCH is missing (run make first)"
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: BPF maps and network namespaces need root"
	exit 77
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
leftovers() { ls /run/netns 2>/dev/null | grep -c "^cil-bench-$1\$"; }

timeout 60 "$BENCH" --smoke >"$out" 2>&1 &
pid=$!
wait $pid
rc=$?
if grep -q '^SKIP' "$out"; then
	cat "$out"
	exit 77
fi
why="exit $rc: $(tail -5 "$out")"
check "bench --smoke runs end to end" test $rc -eq 0
why="$(grep -E '^maps:|correctness' "$out" | head -5)"
check "LB maps hold exactly the 100 services, before and after the change" \
	grep -q 'correctness: maps hold exactly the services' "$out"
for v in 'iptables (nft) ok' 'iptables (legacy) ok' 'nft ok'; do
	why="$(grep -E 'correctness|iptables|nft:' "$out" | head -5)"
	check "ruleset loads and holds the services: ${v% ok}" grep -q "$v" "$out"
done
for r in 'ciliate agent reconcile' 'iptables-restore (nft backend)' 'iptables-legacy-restore' 'nft -f'; do
	why="rows: $(grep -c "^$r " "$out")"
	check "row measured twice (from empty, one change): $r" test "$(grep -c "^$r " "$out")" -eq 2
done
why="$(ls /run/netns | grep "^cil-bench-$pid\$")"
check "namespace removed after the run" test "$(leftovers $pid)" -eq 0

# stopped halfway: it must remove its namespace and report failure
"$BENCH" -s 3000 -r 3 -R 3 >"$out" 2>&1 &
pid=$!
for _ in $(seq 50); do
	[ "$(leftovers $pid)" -eq 1 ] && break
	sleep 0.1
done
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
why="exit $rc: $(tail -2 "$out")"
check "SIGTERM stops the bench with an error" test $rc -ne 0
why="$(ls /run/netns | grep "^cil-bench-$pid\$")"
check "namespace removed after SIGTERM" test "$(leftovers $pid)" -eq 0

echo "lbcontrol: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
