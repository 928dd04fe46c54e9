#!/usr/bin/env bash
# make bench: every benchmark in build/bench, each printing its own table of ratios measured
# side by side in one run. Results and method: docs/PERFORMANCE.md.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."
for b in "$build"/bench/*; do
	[ -x "$b" ] || continue
	echo "=== $(basename "$b")"
	"$b"
	echo
done
# script benches (they drive the built binaries)
for s in tests/bench/*.sh; do
	[ "$(basename "$s")" = run.sh ] && continue
	echo "=== $(basename "$s" .sh)"
	bash "$s" "$build"
	echo
done
