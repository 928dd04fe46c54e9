#!/usr/bin/env bash
# Pod-to-pod cost of WireGuard (wireguard-go) against the same path in plaintext (issue 13
# item 7; docs/ENCRYPTION.md, docs/PERFORMANCE.md). Two clusters from
# tests/bench/encryption.yaml side by side, same topology (2 nodes, x/a on node-1, x/b on
# node-2), one with encryption: wireguard and one with encryption: none, in the routing mode
# given (native by default). Each round measures, on each cluster one after the other:
#   rate  N sequential TCP connections x/a -> x/b:80 (connect + one request + its answer +
#         close; `ciliate-probe --count N --interval-ms 0`): answered connections / wall time
#   bulk  one connection x/a -> x/b:80 whose answer is followed by B filler bytes
#         (`--response-bytes B`), all of which must arrive: B / wall time of the probe
# The plaintext path is the floor: the table gives each round and the medians, encrypted as a
# percentage of plain. Every answer must come from x/b, and on the WireGuard cluster node-1's
# peer must show transfer of at least B bytes, so an unencrypted path never passes as the
# encrypted one.
# Usage: bench_encryption.sh [BUILD_DIR] [--count N] [--bytes B] [--rounds R] [--routing M]
# Bounded: N <= 5000, B <= 64 MiB, R <= 9, every probe 60 s at most; both clusters are
# removed on exit (trap). Exit 0 measured, 1 cannot measure.
set -uo pipefail

build=build
count=500
bytes=$((32 << 20))
rounds=3
routing=native
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	build=$1
	shift
fi
while [ $# -gt 0 ]; do
	case $1 in
	--count) count=$2; shift 2 ;;
	--bytes) bytes=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--routing) routing=$2; shift 2 ;;
	*) echo "usage: $0 [BUILD_DIR] [--count N] [--bytes B] [--rounds R] [--routing native|tunnel]" >&2; exit 2 ;;
	esac
done
case $count$bytes$rounds in ''|*[!0-9]*) echo "numbers expected" >&2; exit 2 ;; esac
[ "$count" -ge 10 ] && [ "$count" -le 5000 ] || { echo "--count: 10..5000" >&2; exit 2; }
[ "$bytes" -ge 1048576 ] && [ "$bytes" -le 67108864 ] || { echo "--bytes: 1 MiB..64 MiB" >&2; exit 2; }
[ "$rounds" -ge 1 ] && [ "$rounds" -le 9 ] || { echo "--rounds: 1..9" >&2; exit 2; }
case $routing in native|tunnel) ;; *) echo "--routing: native|tunnel" >&2; exit 2 ;; esac

cd "$(dirname "$0")/../.." || exit 1
source tests/lib/sim_bench.sh
sim_bench_prepare "$build"
CLI=$(readlink -f "$build/bin/ciliate")

tmp=$(mktemp -d /tmp/ciliate-bench-enc.XXXXXX)
wg_file=tests/bench/encryption.yaml
plain_file=$tmp/plain.yaml
sed -e 's/encryption: wireguard/encryption: none/' -e 's/name: bench-wg}/name: bench-plain}/' \
	"$wg_file" >"$plain_file"
declare -A tag
cleanup() {
	for t in "${tag[@]}"; do "$SIM" down "$t" >/dev/null 2>&1; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for k in wg plain; do
	f=$wg_file
	[ "$k" = plain ] && f=$plain_file
	if ! "$SIM" up --routing "$routing" "$f" >"$tmp/up-$k.out" 2>&1; then
		echo "FAIL: the $k cluster did not come up: $(tail -3 "$tmp/up-$k.out")"
		exit 1
	fi
	tag[$k]=$("$SIM" status -o json | jq -r --arg f "$(readlink -f "$f")" \
		'.[] | select(.scenario == $f) | .tag' | head -1)
	[ -n "${tag[$k]}" ] || { echo "FAIL: no running cluster for $f"; exit 1; }
done

probe() { # KIND TIMEOUT_MS ARGS... (x/a -> x/b:80)
	local k=$1 t=$2
	shift 2
	"$SIM" exec -c "${tag[$k]}" x/a -- "$PROBE" --to 10.244.1.10 --port 80 --timeout-ms "$t" \
		--max-time-ms 60000 -o json "$@"
}
rate() { # KIND N OUT -> conn/s
	local t0 t1 ok
	t0=$(date +%s%N)
	probe "$1" 2000 --count "$2" --interval-ms 0 >"$3" 2>&1
	t1=$(date +%s%N)
	ok=$(jq -s '[.[] | select(.result == "allow" and .reply.pod == "b")] | length' "$3" 2>/dev/null)
	if [ "${ok:-0}" -ne "$2" ]; then
		echo "FAIL: $1: ${ok:-0} of $2 connections answered by x/b: $(grep -m1 deny "$3" | head -c 300)" >&2
		return 1
	fi
	awk -v n="$2" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }'
}
bulk() { # KIND BYTES OUT -> MB/s
	local t0 t1 ok
	t0=$(date +%s%N)
	probe "$1" 30000 --response-bytes "$2" >"$3" 2>&1
	t1=$(date +%s%N)
	ok=$(jq -s '[.[] | select(.result == "allow" and .reply.pod == "b")] | length' "$3" 2>/dev/null)
	if [ "${ok:-0}" -ne 1 ]; then
		echo "FAIL: $1: the bulk transfer was not answered in full by x/b: $(head -c 300 "$3")" >&2
		return 1
	fi
	awk -v b="$2" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", b / 1e6 / (ns / 1e9) }'
}
peer_rx() { # bytes node-1's device received from node-2
	"$CLI" encrypt status -o json --node "cil-${tag[wg]}-node-1" |
		jq -r '[.[0].peers[] | select(.node == "node-2") | .rxBytes] | first // 0'
}

for k in wg plain; do # warm-up: neighbours, handshake, conntrack
	rate "$k" 20 "$tmp/warm-$k.json" >/dev/null || exit 1
done
declare -A rates bulks
echo "pod-to-pod x/a (node-1) -> x/b (node-2), $routing routing; rate: $count sequential TCP"
echo "connections per run; bulk: one connection receiving $bytes bytes; $rounds round(s):"
printf '%-6s %-28s %10s %10s\n' round path "conn/s" "MB/s"
for r in $(seq 1 "$rounds"); do
	for k in wg plain; do
		before=$(peer_rx)
		v=$(rate "$k" "$count" "$tmp/r$r-$k.json") || exit 1
		b=$(bulk "$k" "$bytes" "$tmp/b$r-$k.json") || exit 1
		after=$(peer_rx)
		if [ "$k" = wg ] && [ $((after - before)) -lt "$bytes" ]; then
			echo "FAIL: node-1's WireGuard peer received $((after - before)) bytes, less than the $bytes the bulk transfer brought: not the encrypted path" >&2
			exit 1
		fi
		rates[$k]="${rates[$k]:-} $v"
		bulks[$k]="${bulks[$k]:-} $b"
		label="plaintext"
		[ "$k" = wg ] && label="WireGuard (wireguard-go)"
		printf '%-6s %-28s %10s %10s\n' "$r" "$label" "$v" "$b"
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
rw=$(echo "${rates[wg]}" | median)
rp=$(echo "${rates[plain]}" | median)
bw=$(echo "${bulks[wg]}" | median)
bp=$(echo "${bulks[plain]}" | median)
echo
printf '%-34s %10s %8s %10s %8s\n' "path (median)" "conn/s" "vs plain" "MB/s" "vs plain"
printf '%-34s %10s %7.0f%% %10s %7.0f%%\n' "WireGuard (wireguard-go)" "$rw" \
	"$(awk -v a="$rw" -v b="$rp" 'BEGIN { print 100 * a / b }')" "$bw" \
	"$(awk -v a="$bw" -v b="$bp" 'BEGIN { print 100 * a / b }')"
printf '%-34s %10s %7.0f%% %10s %7.0f%%\n' "plaintext (floor)" "$rp" 100 "$bp" 100
