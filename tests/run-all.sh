#!/usr/bin/env bash
# Runs every test suite and prints one closing summary line.
# Suites: every cmocka binary in BUILD/tests (unit and BPF program tests), then every
# tests/*/run-suite.sh script (replay, corpus, ...). Usage: run-all.sh BUILD [unit|bpf|replay]
set -uo pipefail
build=${1:-build}
only=${2:-}
cd "$(dirname "$0")/.."

passed=0 failed=0 skipped=0
failures=()

run_suite() { # name, command...
	local name=$1; shift
	echo "=== suite: $name"
	local start=$SECONDS
	"$@"
	local rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1)); echo "--- $name: PASS ($((SECONDS - start))s)"
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1)); echo "--- $name: SKIP ($((SECONDS - start))s)"
	else
		failed=$((failed + 1)); failures+=("$name"); echo "--- $name: FAIL rc=$rc ($((SECONDS - start))s)"
	fi
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	case "$only" in
	unit) [ -f "tests/unit/$(basename "$t").c" ] || continue ;;
	bpf) [ -f "tests/bpf/$(basename "$t").c" ] || continue ;;
	replay) continue ;;
	esac
	run_suite "$(basename "$t")" "$t"
done

for s in tests/*/run-suite.sh; do
	[ -f "$s" ] || continue
	name=$(basename "$(dirname "$s")")
	[ -n "$only" ] && [ "$only" != "$name" ] && continue
	run_suite "$name" bash "$s" "$build"
done

echo
[ ${#failures[@]} -gt 0 ] && echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
