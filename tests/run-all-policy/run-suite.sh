#!/usr/bin/env bash
# tests/run-all.sh's skip policy, tested on throwaway suites (CILIATE_SUITES_DIR) and an
# allowed-skips list of its own (CILIATE_ALLOWED_SKIPS): under CI=true a suite that exits 77
# fails the run, named, unless it is listed, in which case the listed reason is printed;
# without CI a skip stays a skip; a listed suite without a reason is an error. Also checks
# that the repository's tests/allowed-skips.txt gives every entry a reason and names real
# suites. Needs nothing but bash. Usage: run-suite.sh [BUILD_DIR] (unused).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/lib/suite.sh
passed=0 failed=0
tmp=$(mktemp -d /tmp/ciliate-t-runall.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/suites/fine" "$tmp/suites/lacks-x" "$tmp/build/tests"
printf 'echo fine; exit 0\n' >"$tmp/suites/fine/run-suite.sh"
printf 'echo "SKIP: no x here"; exit 77\n' >"$tmp/suites/lacks-x/run-suite.sh"
: >"$tmp/empty.txt"
printf '# comment\n\nlacks-x   x is not on CI hosts  # trailing comment\n' >"$tmp/listed.txt"
printf 'lacks-x\n' >"$tmp/no-reason.txt"

# runall CI ALLOWED-FILE [SUITE]: runs tests/run-all.sh on the throwaway suites; sets out, rc
runall() {
	out=$(CI=$1 CILIATE_SUITES_DIR="$tmp/suites" CILIATE_ALLOWED_SKIPS="$2" \
		bash tests/run-all.sh "$tmp/build" ${3:+"$3"} 2>&1)
	rc=$?
	why="exit $rc: $out"
}
has() { grep -qF -- "$1" <<<"$out"; }

runall true "$tmp/empty.txt"
check "CI=true: an unlisted skip fails the run" test $rc -ne 0
check "... naming the suite" has "skipped under CI=true without an entry in $tmp/empty.txt: lacks-x"
check "... and its line says why" has "--- lacks-x: FAIL: skipped (exit 77) under CI=true"
check "... the passing suite still passes" has "--- fine: PASS"
runall true "$tmp/empty.txt" lacks-x
check "CI=true run-all.sh BUILD lacks-x: fails" test $rc -ne 0 -a -n "$(grep -F 'suites: 0 passed, 1 failed, 0 skipped' <<<"$out")"
runall true "$tmp/listed.txt" lacks-x
check "CI=true, listed: the run passes" test $rc -eq 0
check "... printing the listed reason" has "--- lacks-x: SKIP"
check "... reason" has "allowed skip: x is not on CI hosts"
check "... counted as a skip" has "suites: 0 passed, 0 failed, 1 skipped"
runall false "$tmp/empty.txt"
check "without CI=true an unlisted skip is a skip" test $rc -eq 0
check "... and says CI would fail it" has "under CI=true this fails unless listed"
runall "" "$tmp/empty.txt" lacks-x
check "CI unset: same" test $rc -eq 0
runall true "$tmp/no-reason.txt" lacks-x
check "an allowed skip without a reason is an error" test $rc -ne 0
check "... naming the line" has "no-reason.txt:1: lacks-x: an allowed skip needs its reason"
runall true "$tmp/missing.txt" lacks-x
check "CI=true without an allowed-skips file: no skip is allowed" test $rc -ne 0

# the repository's list: every entry has a reason and is a suite of tests/
bad=""
while IFS= read -r line; do
	line=${line%%#*}
	read -r suite reason <<<"$line"
	[ -z "$suite" ] && continue
	[ -n "$reason" ] || bad="$bad $suite(no reason)"
	# a suite folder, or a test binary's source (tests/unit, tests/bpf, or a kernel-matrix
	# test's folder such as tests/ipsec, tests/wireguard: build/tests/test_* all run)
	[ -f "tests/$suite/run-suite.sh" ] || compgen -G "tests/*/$suite.c" >/dev/null ||
		bad="$bad $suite(no such suite)"
done <tests/allowed-skips.txt
why="$bad"
check "tests/allowed-skips.txt: every entry is a suite with a reason" test -z "$bad"

echo "run-all-policy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
