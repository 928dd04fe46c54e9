#!/usr/bin/env bash
# Connection rate through the egress gateway against plain masquerading (issue 12 item 6;
# docs/EGRESS.md). One cluster from tests/bench/egress-rate.yaml (2 nodes, native routing):
# x/gw on node-1 is selected by a CiliumEgressGatewayPolicy (gateway node-2, egress IP
# 192.0.2.100: each packet goes in Geneve to node-2, which SNATs it), x/plain on node-1 is
# not (BPF masquerading to node-1's address). Each round runs, one after the other,
# `ciliate-probe --count N --interval-ms 0` in each pod against ext/server (203.0.113.10:80):
# N sequential TCP connections, each connect + one request + its answer + close. Rate =
# answered connections / wall time of the probe. ROUNDS rounds alternate the two paths; the
# table shows each round and the median per path, and the answered address is checked
# (192.0.2.100 through the gateway, 192.0.2.1 for masquerading) so a wrong path never
# passes as a measurement.
# Usage: bench_egress_rate.sh [BUILD_DIR] [--count N] [--rounds R]   (root; SKIP otherwise)
# Bounded: N <= 5000, R <= 9, each probe run 60 s at most; the cluster is removed on exit
# (trap), also on failure or signal. Exit 0 measured, 1 cannot measure.
set -uo pipefail

build=build
count=2000
rounds=3
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	build=$1
	shift
fi
while [ $# -gt 0 ]; do
	case $1 in
	--count) count=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	*) echo "usage: $0 [BUILD_DIR] [--count N] [--rounds R]" >&2; exit 2 ;;
	esac
done
case $count in ''|*[!0-9]*) echo "bad --count" >&2; exit 2 ;; esac
case $rounds in ''|*[!0-9]*) echo "bad --rounds" >&2; exit 2 ;; esac
[ "$count" -ge 10 ] && [ "$count" -le 5000 ] || { echo "--count: 10..5000" >&2; exit 2; }
[ "$rounds" -ge 1 ] && [ "$rounds" -le 9 ] || { echo "--rounds: 1..9" >&2; exit 2; }

cd "$(dirname "$0")/../.." || exit 1
source tests/lib/sim_bench.sh
sim_bench_prepare "$build"

file=tests/bench/egress-rate.yaml
tag=benchegr
tmp=$(mktemp -d /tmp/ciliate-bench-egr.XXXXXX)
cleanup() {
	"$SIM" down "$file" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$SIM" up "$file" >"$tmp/up.out" 2>&1; then
	echo "FAIL: the cluster did not come up: $(tail -3 "$tmp/up.out")"
	exit 1
fi
tag=$("$SIM" status -o json | jq -r --arg f "$(readlink -f "$file")" \
	'.[] | select(.scenario == $f) | .tag' | head -1)
[ -n "$tag" ] || { echo "FAIL: no running cluster for $file"; exit 1; }

declare -A want=([gw]=192.0.2.100 [plain]=192.0.2.1)
declare -A rates
# one run: N connections from x/POD; prints conn/s
run() { # POD N OUT
	local t0 t1 ok seen
	t0=$(date +%s%N)
	"$SIM" exec -c "$tag" "x/$1" -- "$PROBE" --to 203.0.113.10 --port 80 --count "$2" \
		--interval-ms 0 --timeout-ms 1000 --max-time-ms 60000 -o json >"$3" 2>&1
	t1=$(date +%s%N)
	ok=$(jq -s '[.[] | select(.result == "allow")] | length' "$3" 2>/dev/null)
	seen=$(jq -rs '[.[] | select(.result == "allow") | .reply.client_ip] | unique | join(",")' "$3" 2>/dev/null)
	if [ "${ok:-0}" -ne "$2" ] || [ "$seen" != "${want[$1]}" ]; then
		echo "FAIL: x/$1: ${ok:-0} of $2 connections answered, client seen '$seen' (want ${want[$1]}): $(grep -m1 deny "$3" | head -c 300)" >&2
		return 1
	fi
	awk -v n="$2" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }'
}

# warm-up: neighbours, NAT and conntrack paths
for p in gw plain; do
	run "$p" 20 "$tmp/warm-$p.json" >/dev/null || exit 1
done
echo "TCP connection rate from node-1 to ext/server (connect + request + answer + close),"
echo "$count sequential connections per run, $rounds round(s), paths alternating:"
printf '%-7s %-47s %s\n' round path conn/s
for r in $(seq 1 "$rounds"); do
	for p in gw plain; do
		v=$(run "$p" "$count" "$tmp/r$r-$p.json") || exit 1
		rates[$p]="${rates[$p]:-} $v"
		if [ "$p" = gw ]; then
			label="egress gateway (Geneve to node-2, SNAT there)"
		else
			label="masquerade on the pod's node (node-1)"
		fi
		printf '%-7s %-47s %s\n' "$r" "$label" "$v"
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mg=$(echo "${rates[gw]}" | median)
mp=$(echo "${rates[plain]}" | median)
echo
printf '%-52s %8s %10s\n' path "conn/s" "vs masq"
printf '%-52s %8d %9.0f%%\n' "egress gateway x/gw -> 192.0.2.100 (median)" "$mg" \
	"$(awk -v a="$mg" -v b="$mp" 'BEGIN { print 100 * a / b }')"
printf '%-52s %8d %9.0f%%\n' "masquerade x/plain -> 192.0.2.1 (median)" "$mp" 100
