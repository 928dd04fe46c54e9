#!/usr/bin/env bash
# Event throughput of one node (docs/PERFORMANCE.md, "Events"): how many events per second
# one ciliate-agent decodes into flows with no loss, driven by live frames through a real
# veth against a policy that denies them. Target (the observability issue): >= 1,000,000
# events/s decoded per node with 0 lost at the default ring size (8 MiB, EVENTS_RING_BYTES).
#
# Two clusters from tests/bench/events-cluster.yaml (one node, pods bench/src and bench/dst,
# a NetworkPolicy denying every ingress into bench/dst), renamed for this run:
#   datapath  `ciliate-sim up`: the real agent and datapath
#   floor     `ciliate-sim up --no-datapath`: the same veths with no program on them
# The generator (build/bench-tools/events_gen, tests/bench/events/events_gen.c) runs an XDP
# program with BPF_PROG_TEST_RUN in live-frames mode inside bench/src's namespace: every
# frame leaves the pod's eth0 (XDP_TX) and arrives at the host-side veth's TC ingress
# (from-container) as a UDP packet of a new flow (the source port changes every frame) to
# bench/dst:80, which the policy denies. GRO is turned on for that host-side veth (a veth
# takes XDP-transmitted frames only when its receive side runs NAPI).
#
# Rows, each run ROUNDS times, interleaved round by round (every row once, then again):
#   gen-drop     the generator alone: the same program returning XDP_DROP
#   veth-floor   the floor cluster: frames through the same veth with no TC program, with a
#                bad IPv4 header checksum so that the stack drops them at its first check
#                (ip_rcv), just past the point where from-container would run
#   dp RATE      the datapath cluster, paced at RATE events/s (RATE / events per packet
#                frames/s; events per packet measured first)
#   dp max       the datapath cluster, as fast as the generator goes
#   ... [FIFO]   diagnostic, not the shipping configuration: the same with the agent's event
#                reader thread at SCHED_FIFO priority 1 (reset afterwards), to separate what
#                the reader can decode from how long this shared machine keeps it waiting
# Every burst is bounded in time (SECONDS) and count (SECONDS x rate, at most 50M frames).
# Per burst: the node's pinned counters (ciliate_metrics, ciliate_events_lost) and the
# agent's status (events.seen, events.lost) before and after; after the burst the agent is
# polled until events.seen has not moved for 200 ms, and decoded/s is events.seen's increase
# over the time from the first frame to the last poll that saw it move.
#
# Usage: bench_events_rate.sh [BUILD_DIR] [--rounds N] [--seconds S] [--rates R1,R2,...]
#                             [--no-fifo] [--json FILE]
# Needs root (prints SKIP otherwise). Clusters are removed on exit, also on failure or signal.
set -uo pipefail

build=build
rounds=3
seconds=3
rates=250000,500000,1000000,1500000
fifo=1
json_out=
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	build=$1
	shift
fi
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--rates) rates=$2; shift 2 ;;
	--no-fifo) fifo=0; shift ;;
	--json) json_out=$2; shift 2 ;;
	*) echo "usage: $0 [BUILD_DIR] [--rounds N] [--seconds S] [--rates R,...] [--no-fifo] [--json FILE]" >&2; exit 2 ;;
	esac
done
case $rounds in ''|*[!0-9]*) echo "bad --rounds" >&2; exit 2 ;; esac
[ "$rounds" -ge 1 ] && [ "$rounds" -le 20 ] || { echo "--rounds: 1..20" >&2; exit 2; }

cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
GEN=$build/bench-tools/events_gen
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: bench_events_rate needs root (network namespaces, BPF)"
	exit 0
fi
for b in "$SIM" "$GEN"; do
	[ -x "$b" ] || { echo "bench_events_rate: $b missing (make all)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "bench_events_rate: jq missing" >&2; exit 1; }

tmp=$(mktemp -d /tmp/ciliate-bench-events.XXXXXX)
id=$(printf '%04x' $(($$ & 0xffff)))
dp_name=evd$id
fl_name=evf$id
up=()
fifo_tid=
cleanup() {
	local f
	[ -n "$fifo_tid" ] && chrt -o -p 0 "$fifo_tid" >/dev/null 2>&1
	for f in "${up[@]}"; do "$SIM" down "$f" >/dev/null 2>&1; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

sed "s/^metadata: {name: events}$/metadata: {name: $dp_name}/" tests/bench/events-cluster.yaml >"$tmp/dp.yaml"
sed "s/^metadata: {name: events}$/metadata: {name: $fl_name}/" tests/bench/events-cluster.yaml >"$tmp/floor.yaml"
grep -q "name: $dp_name" "$tmp/dp.yaml" || { echo "bench_events_rate: cannot rename the scenario" >&2; exit 1; }

up+=("$tmp/dp.yaml")
"$SIM" up "$tmp/dp.yaml" >"$tmp/up-dp.log" 2>&1 || { cat "$tmp/up-dp.log" >&2; exit 1; }
up+=("$tmp/floor.yaml")
"$SIM" up "$tmp/floor.yaml" --no-datapath >"$tmp/up-floor.log" 2>&1 || { cat "$tmp/up-floor.log" >&2; exit 1; }
"$SIM" status -o json >"$tmp/status.json" || exit 1

# host NAME FIELD: a field of a host of cluster NAME ("node-1", "bench/src", ...)
host() {
	jq -r --arg c "$1" --arg h "$2" --arg f "$3" \
		'.[] | select(.cluster == $c) | .hosts[] | select(.name == $h) | .[$f] // empty' \
		"$tmp/status.json"
}
dp_tag=$(jq -r --arg c "$dp_name" '.[] | select(.cluster == $c) | .tag' "$tmp/status.json")
dp_pod_ns=/run/netns/$(host "$dp_name" bench/src netns)
dp_node_ns=$(host "$dp_name" node-1 netns)
dp_lxc=$(host "$dp_name" bench/src if)
fl_pod_ns=/run/netns/$(host "$fl_name" bench/src netns)
fl_node_ns=$(host "$fl_name" node-1 netns)
fl_lxc=$(host "$fl_name" bench/src if)
src_ip=$(host "$dp_name" bench/src ip)
dst_ip=$(host "$dp_name" bench/dst ip)
agent_pid=$(jq -r --arg c "$dp_name" '.[] | select(.cluster == $c) | .hosts[] | select(.name == "node-1") | .agent.pid' "$tmp/status.json")
pin_dir=$(jq -r --arg c "$dp_name" '.[] | select(.cluster == $c) | .pins[0]' "$tmp/status.json")
sock=/run/ciliate/cil-$dp_tag-node-1/agent.sock
for v in dp_pod_ns dp_node_ns dp_lxc fl_pod_ns fl_node_ns fl_lxc src_ip dst_ip agent_pid pin_dir; do
	[ -n "${!v}" ] && [ "${!v}" != null ] || { echo "bench_events_rate: no $v in ciliate-sim status" >&2; exit 1; }
done
[ -S "$sock" ] || { echo "bench_events_rate: no agent socket $sock" >&2; exit 1; }

"$GEN" gro "/run/netns/$dp_node_ns" "$dp_lxc" || exit 1
"$GEN" gro "/run/netns/$fl_node_ns" "$fl_lxc" || exit 1

dp_args=(--netns "$dp_pod_ns" --src "$src_ip" --dst "$dst_ip" --pin-dir "$pin_dir"
	--agent-sock "$sock" --agent-pid "$agent_pid")
fl_args=(--netns "$fl_pod_ns" --src "$src_ip" --dst "$dst_ip")
results=$tmp/results.jsonl
: >"$results"

# burst ROW ROUND ARGS...: one burst, its JSON line tagged with row and round
burst() {
	local row=$1 round=$2 line
	shift 2
	line=$("$GEN" burst "$@") || { echo "bench_events_rate: burst '$row' failed" >&2; exit 1; }
	jq -c --arg row "$row" --argjson round "$round" '. + {row: $row, round: $round}' <<<"$line" >>"$results"
}

rx_packets() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }

# events per denied packet, from a small burst
cal=$("$GEN" burst "${dp_args[@]}" --count 3000 --seconds 2) || { echo "bench_events_rate: calibration burst failed" >&2; exit 1; }
epp=$(jq -r 'if .denied > 0 and .lost == 0 and .denied == .sent then ((.seen / .denied) | floor) else 0 end' <<<"$cal")
if [ "$epp" -lt 1 ]; then
	echo "bench_events_rate: calibration: $cal" >&2
	exit 1
fi
echo "bench_events_rate: $epp events per denied packet; $rounds rounds of ${seconds}s bursts; rates $rates events/s" >&2

IFS=, read -r -a rate_list <<<"$rates"
run_round() { # ROUND [SUFFIX]
	local r=$1 sfx=${2:-} rate pps
	if [ -z "$sfx" ]; then
		burst gen-drop "$r" "${fl_args[@]}" --drop --seconds "$seconds"
		local a b
		a=$(rx_packets "$fl_node_ns" "$fl_lxc")
		burst veth-floor "$r" "${fl_args[@]}" --bad-ip-csum --seconds "$seconds"
		b=$(rx_packets "$fl_node_ns" "$fl_lxc")
		# the frames must have crossed the veth
		jq -c --argjson rx $((b - a)) 'if .row == "veth-floor" and .rx == null then . + {rx: $rx} else . end' \
			"$results" >"$results.tmp" && mv "$results.tmp" "$results"
	fi
	for rate in "${rate_list[@]}"; do
		pps=$((rate / epp))
		burst "dp $rate$sfx" "$r" "${dp_args[@]}" --pps "$pps" --seconds "$seconds" --count $((pps * ${seconds%.*} + pps))
	done
	burst "dp max$sfx" "$r" "${dp_args[@]}" --seconds "$seconds"
}
for r in $(seq "$rounds"); do
	run_round "$r"
done

if [ "$fifo" = 1 ]; then
	# the reader: the agent's thread other than the main one (the most CPU time if several)
	fifo_tid=$(for t in /proc/"$agent_pid"/task/*; do
		t=${t##*/}
		[ "$t" = "$agent_pid" ] && continue
		awk -v t="$t" '{ print $14 + $15, t }' "/proc/$agent_pid/task/$t/stat"
	done | sort -n | tail -1 | awk '{ print $2 }')
	if [ -n "$fifo_tid" ] && chrt -f -p 1 "$fifo_tid"; then
		rate_list=(1000000)
		for r in $(seq "$rounds"); do
			run_round "$r" " [FIFO]"
		done
		chrt -o -p 0 "$fifo_tid"
	else
		echo "bench_events_rate: could not raise the reader's priority; no FIFO rows" >&2
	fi
	fifo_tid=
fi

[ -n "$json_out" ] && cp "$results" "$json_out"

# ---- the table: per row, the median round (lost: the sum over rounds) ----
jq -r -s --argjson epp "$epp" '
def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
def fmt: if . == null then "-" else (. | round | tostring) end;
def rowname: .row;
(map(select(.row == "veth-floor")) | map(.sent_pps) | median) as $veth
| group_by(.row)
| map({
	row: .[0].row,
	order: (if .[0].row == "gen-drop" then 0 elif .[0].row == "veth-floor" then 1
		elif (.[0].row | test("FIFO")) then 3 else 2 end),
	target: (.[0].row | capture("dp (?<r>[0-9]+)") // {r: null} | .r | if . == null then null else tonumber end),
	sent_pps: (map(.sent_pps) | median),
	reached: (if .[0].hook_packets != null then (map(.hook_packets / .sent) | min) else (if .[0].rx != null then (map(select(.rx != null) | .rx / .sent) | min) else null end) end),
	emitted: (if .[0].seen != null then (map((.seen + .lost) / .gen_s) | median) else null end),
	decoded: (if .[0].seen != null then (map(.decoded_per_s) | median) else null end),
	lost: (if .[0].seen != null then (map(.lost + (.ring_lost - .lost | if . < 0 then 0 else . end)) | add) else null end),
	ns_ev: (if .[0].seen != null then (map(if .seen > 0 then .reader_run_s / .seen * 1e9 else null end) | map(select(. != null)) | median) else null end),
	wait: (if .[0].seen != null then (map(.reader_wait_s / .gen_s) | median) else null end),
	gen_cpu: (map(.gen_cpu_s / .gen_s) | median),
	ratio: (if $veth and $veth > 0 then ((map(.sent_pps) | median) / $veth) else null end),
	rounds: length})
| sort_by(.order, (.target // 1e18))
| (["ROW", "TARGET EV/S", "SENT PPS", "VS VETH FLOOR", "REACHED HOOK", "EMITTED EV/S", "DECODED EV/S",
	"LOST", "READER NS/EV", "READER WAITING", "GEN CPU", "TARGET >=1M/s, 0 LOST"] | @tsv),
  (.[] | [ .row, (.target | fmt), (.sent_pps | fmt),
	(if .ratio == null then "-" else ((.ratio * 100 | round / 100 | tostring) + "x") end),
	(if .reached == null then "-" else ((.reached * 1000 | floor / 10 | tostring) + "%") end),
	(.emitted | fmt), (.decoded | fmt), (.lost | fmt),
	(.ns_ev | fmt),
	(if .wait == null then "-" else ((.wait * 100 | round | tostring) + "%") end),
	((.gen_cpu * 100 | round | tostring) + "%"),
	(if .decoded == null then "-"
	 elif (.target != null and .target < 1000000) then (if .lost == 0 then "0 lost" else "LOSS" end)
	 elif .decoded >= 1000000 and .lost == 0 then "PASS"
	 else "FAIL" end) + (if .order == 3 then " (diagnostic)" else "" end)] | @tsv)
' "$results" | column -t -s $'\t'

jq -r -s --argjson epp "$epp" '
	(map(select(.seen != null and (.row | test("FIFO") | not))) | group_by(.row)
	 | map(select(map(.lost + (.ring_lost - .lost | if . < 0 then 0 else . end)) | add == 0))
	 | map(map(.decoded_per_s) | sort | .[(length - 1) / 2 | floor]) | max) as $best
	| "\nevents per denied packet: \($epp) (ingress policy verdict of bench/dst, drop; verdicts only where policy is enforced); the 8 MiB ring holds about 80,000 events: 80 ms at 1M events/s",
	  "SENT PPS: frames the generator transmitted per second (median round); REACHED HOOK: the share that the datapath counted (veth-floor: the veth received); EMITTED/DECODED: (events.seen + lost) / burst time and events.seen / time until the agent had read them; LOST: sum over rounds (agent status and ciliate_events_lost); READER NS/EV: CPU time of the agent'"'"'s reader thread per event; READER WAITING: share of the burst it was runnable but not running; GEN CPU: CPU the generator (and the softirq work it carries: veth, TC, datapath) got",
	  "highest median decoded rate with 0 lost in every round (shipping configuration): \(if $best == null then "none" else ($best | round | tostring) + " events/s" end) -> target >= 1,000,000 events/s with 0 lost: \(if $best != null and $best >= 1000000 then "PASS" else "FAIL" end)"
' "$results"
