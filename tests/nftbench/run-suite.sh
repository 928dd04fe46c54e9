#!/usr/bin/env bash
# nftbench suite: a smoke run of build/bench/bench_policy_nft (ciliate policy against
# nftables through veth) with tiny counts. It checks that the bench runs end to end, that
# every variant delivered every allowed packet, and that it removes its namespaces, also
# when stopped by SIGTERM. No timing is checked: the numbers belong to `make bench`.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/suite.sh
BENCH=$build/bench/bench_policy_nft
passed=0 failed=0

if [ ! -x "$BENCH" ]; then
	echo "FAIL: $BENCH is missing (run make first)"
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: network namespaces need root"
	exit 77
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# namespaces of one bench process (named nfb-pn<pid>-*) that still exist
leftovers() { ls /run/netns 2>/dev/null | grep -c "^nfb-pn$1-"; }

"$BENCH" -n 64 -r 2 -s 1,100 -t 120 -o json >"$out" 2>&1 &
pid=$!
wait $pid
rc=$?
if grep -q '^SKIP' "$out"; then
	cat "$out"
	exit 77
fi
why="exit $rc: $(tail -3 "$out")"
check "bench runs end to end" test $rc -eq 0
for v in floor tc-empty ciliate ciliate-est nft-chain nft-set; do
	why="no $v row in: $(tail -c 300 "$out")"
	check "variant $v measured" grep -q "\"name\":\"$v\"" "$out"
done
why="$(grep -o '"name":"[a-z-]*","rules":[0-9]*,[^}]*"lost":[1-9][0-9]*' "$out")"
check "every allowed packet arrived" test -z "$why"
why="rules per row: $(grep -o '"name":"nft-chain","rules":[0-9]*' "$out" | tr '\n' ' ')"
check "both rule counts ran" test "$(grep -o '"name":"nft-chain","rules":[0-9]*' "$out" |
	cut -d: -f3 | tr '\n' ' ')" = "1 100 "
why="$(ls /run/netns | grep "^nfb-pn$pid-")"
check "namespaces removed after the run" test "$(leftovers $pid)" -eq 0

# stopped halfway (during setup or a round): it must still clean up and report failure
"$BENCH" -n 2000 -r 50 -t 120 >"$out" 2>&1 &
pid=$!
sleep 1.5
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
why="exit $rc: $(tail -2 "$out")"
check "SIGTERM stops the bench with an error" test $rc -ne 0
why="$(ls /run/netns | grep "^nfb-pn$pid-")"
check "namespaces removed after SIGTERM" test "$(leftovers $pid)" -eq 0

echo "nftbench: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
