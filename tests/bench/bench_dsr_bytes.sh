#!/usr/bin/env bash
# Bytes the entry node carries per request/response pair, DSR against SNAT (issue 11 item 6;
# docs/PERFORMANCE.md). An external client (ext/client-1) fetches a 1 MiB response from
# node-1's NodePort 30081, whose only backend runs on node-2, over one TCP connection per
# pair (ciliate-probe --response-bytes: the echo server answers its line, then the filler).
# Counted: rx_bytes + tx_bytes of node-1's fabric interface (eth0 in its namespace: every
# frame node-1 receives or sends on the underlay, Ethernet headers included), read before and
# after PAIRS pairs, divided by PAIRS. Two clusters from tests/bench/dsr-bytes.yaml, one at a
# time: as written (bpf-lb-mode dsr, dispatch opt: the reply goes from node-2 straight to the
# client; node-1 sees the request and the client's ACKs) and a copy with bpf-lb-mode snat (the
# reply comes back through node-1: in and out again). One warm-up pair per cluster first
# (neighbour entries). Target: DSR < 2% of the SNAT bytes. Prints one row per mode, the ratio
# and PASS/MISS (a miss is a report, not an error: exit 0; exit 1 only when the bench cannot
# measure: a cluster that does not come up, a fetch that does not complete).
# Usage: bench_dsr_bytes.sh [BUILD_DIR] [--pairs N] [--bytes B]   (root; SKIP otherwise)
# Bounded: PAIRS <= 50, each fetch 10 s at most, each cluster removed on exit (trap), also on
# failure or signal; `ciliate-sim down` is idempotent.
set -uo pipefail

build=build
pairs=5
bytes=1048576
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	build=$1
	shift
fi
while [ $# -gt 0 ]; do
	case $1 in
	--pairs) pairs=$2; shift 2 ;;
	--bytes) bytes=$2; shift 2 ;;
	*) echo "usage: $0 [BUILD_DIR] [--pairs N] [--bytes B]" >&2; exit 2 ;;
	esac
done
case $pairs in ''|*[!0-9]*) echo "bad --pairs" >&2; exit 2 ;; esac
case $bytes in ''|*[!0-9]*) echo "bad --bytes" >&2; exit 2 ;; esac
[ "$pairs" -ge 1 ] && [ "$pairs" -le 50 ] || { echo "--pairs: 1..50" >&2; exit 2; }
[ "$bytes" -ge 1 ] && [ "$bytes" -le 67108864 ] || { echo "--bytes: 1..67108864" >&2; exit 2; }

cd "$(dirname "$0")/../.." || exit 1
source tests/lib/sim_bench.sh
sim_bench_prepare "$build"

tmp=$(mktemp -d /tmp/ciliate-bench-dsr.XXXXXX)
files=()
cleanup() {
	local f
	for f in "${files[@]}"; do
		"$SIM" down "$f" >/dev/null 2>&1
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

src=tests/bench/dsr-bytes.yaml
cp "$src" "$tmp/dsr.yaml"
sed -e 's/bpf-lb-mode: dsr/bpf-lb-mode: snat/' -e 's/name: bench-dsr-bytes/name: bench-snat-bytes/' \
	"$src" >"$tmp/snat.yaml"

node1_ip=192.0.2.1 # the first node's address in the underlay (node order)

# rx+tx bytes of node-1's fabric interface
node1_bytes() { # TAG
	"$SIM" exec -c "$1" node-1 -- sh -c \
		'echo $(( $(cat /sys/class/net/eth0/statistics/rx_bytes) + $(cat /sys/class/net/eth0/statistics/tx_bytes) ))'
}

fetch() { # TAG COUNT OUT
	"$SIM" exec -c "$1" ext/client-1 -- "$PROBE" --to "$node1_ip" --port 30081 \
		--response-bytes "$bytes" --count "$2" --timeout-ms 10000 -o json >"$3" 2>&1
}

declare -A per_pair
measure() { # MODE FILE
	local mode=$1 file=$2 tag before after got
	files+=("$file")
	if ! "$SIM" up "$file" >"$tmp/$mode.up" 2>&1; then
		echo "FAIL: $mode cluster did not come up: $(tail -3 "$tmp/$mode.up")"
		exit 1
	fi
	tag=$("$SIM" status -o json | jq -r --arg f "$(readlink -f "$file")" \
		'.[] | select(.scenario == $f) | .tag' | head -1)
	if [ -z "$tag" ]; then
		echo "FAIL: $mode: no running cluster for $file"
		exit 1
	fi
	if ! fetch "$tag" 1 "$tmp/$mode.warm"; then
		echo "FAIL: $mode warm-up fetch: $(head -c 400 "$tmp/$mode.warm")"
		exit 1
	fi
	before=$(node1_bytes "$tag")
	fetch "$tag" "$pairs" "$tmp/$mode.json"
	after=$(node1_bytes "$tag")
	got=$(jq -s --argjson b "$bytes" '[.[] | select(.result == "allow" and .response_bytes == $b)] | length' \
		"$tmp/$mode.json" 2>/dev/null)
	if [ "${got:-0}" -ne "$pairs" ]; then
		echo "FAIL: $mode: ${got:-0} of $pairs fetches got all $bytes bytes: $(head -c 400 "$tmp/$mode.json")"
		exit 1
	fi
	per_pair[$mode]=$(( (after - before) / pairs ))
	"$SIM" down "$file" >/dev/null 2>&1
}

echo "bytes crossing node-1's fabric interface (rx+tx) per request/response pair:"
echo "1 request, $bytes-byte response, backend on node-2, $pairs pairs per mode"
measure dsr "$tmp/dsr.yaml"
measure snat "$tmp/snat.yaml"
printf '%-6s %14s %12s\n' mode bytes/pair "% of snat"
for m in dsr snat; do
	printf '%-6s %14d %11.2f%%\n' "$m" "${per_pair[$m]}" \
		"$(awk -v a="${per_pair[$m]}" -v b="${per_pair[snat]}" 'BEGIN { printf "%.4f", 100 * a / b }')"
done
ratio=$(awk -v a="${per_pair[dsr]}" -v b="${per_pair[snat]}" 'BEGIN { printf "%.2f", 100 * a / b }')
if awk -v a="${per_pair[dsr]}" -v b="${per_pair[snat]}" 'BEGIN { exit !(a < 0.02 * b) }'; then
	verdict=PASS
else
	verdict=MISS
fi
echo "dsr/snat = $ratio% (target < 2%): $verdict"
