#!/usr/bin/env bash
# Upgrade safety (issue 15 item 5; docs/ARCHITECTURE.md, "Pinning and upgrades") on a
# two-node simulated cluster (tests/upgrade/cluster.yaml, torn down on exit):
#   1. the agent binary replaced by a new build and restarted on the same pins: a TCP stream
#      open across the restart keeps flowing, every pinned map is reused (the agent says so),
#      the policy holds (an allow answered, a denial proven by its drop event);
#   2. maps of an older layout on the pins (tests/upgrade/old_layout.bpf.c, pinned by
#      build/tests/upgrade_pin_old): a conntrack map whose entry ended earlier and whose
#      max_entries was smaller is migrated, its entry kept with the appended members zeroed;
#      a policy map whose value has the same size but other members is replaced, not reused;
#      each decision is a log line; the policy holds afterwards;
#   3. an ABI record older than a meaning change (conntrack keys in ABI 2) replaces that map,
#      and pins of a newer ABI (a downgrade) replace every map; both say so.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
for b in bin/ciliate bin/ciliate-agent bin/ciliate-sim bin/ciliate-probe tests/upgrade_pin_old \
	tests/upgrade/old_layout.bpf.o; do
	if [ ! -e "$build/$b" ]; then
		echo "FAIL: $build/$b is missing (run make first)"
		exit 1
	fi
done
build=$(cd "$build" && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: network namespaces and BPF need root"
	exit 77
fi
for t in jq nsenter; do
	command -v $t >/dev/null || { echo "SKIP: $t is not installed"; exit 77; }
done
. tests/lib/suite.sh
passed=0 failed=0 why=""
CLI=$build/bin/ciliate
SIM=$build/bin/ciliate-sim
PROBE=$build/bin/ciliate-probe
PINOLD=$build/tests/upgrade_pin_old
tmp=$(mktemp -d /tmp/ciliate-t-upgrade.XXXXXX)
tag="" stream_pid=""

finish() {
	[ -n "$stream_pid" ] && kill -KILL "$stream_pid" 2>/dev/null
	if [ "$failed" -ne 0 ] && [ -n "$tag" ]; then
		for f in /run/ciliate/sim/"$tag"/agent-*.log; do
			[ -f "$f" ] && { echo "--- $f (last 15 lines)"; tail -15 "$f"; }
		done
	fi
	[ -n "$tag" ] && "$SIM" down "$tag" >/dev/null 2>&1
	rm -rf "$tmp"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

state() { cat "/run/ciliate/sim/$tag.json"; }
host() { state | jq -r --arg n "$1" ".hosts[] | select(.name == \$n) | .$2"; }
pins() { echo "/sys/fs/bpf/ciliate/cil-$tag-$1"; }
log_of() { echo "/run/ciliate/sim/$tag/agent-$1.log"; }
probe() {
	nsenter --net="/run/netns/$(host "$1" netns)" "$PROBE" --to "$(host "$2" ip)" --port 80 \
		--timeout-ms 1000 -o json >/dev/null 2>&1
}
denied() { # FROM TO NODE: unanswered and node's agent has the flow's POLICY_DENIED drop
	local since n
	since=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
	probe "$1" "$2" && { why="$1 -> $2 answered"; return 1; }
	n=$("$CLI" observe --node "cil-$tag-$3" --from-pod "$1" --to-pod "$2" --verdict DROPPED \
		--drop-reason POLICY_DENIED --since "$since" --all -o json 2>/dev/null | grep -c '"flow"')
	why="no POLICY_DENIED drop of $1 -> $2 on $3 since $since"
	[ "${n:-0}" -ge 1 ]
}
# restart NODE [BINARY]: stops the node's agent (by its pid) and starts BINARY (default: the
# same) with the same arguments in the node's namespace; waits until it answers
restart() {
	local node=$1 bin=${2:-} pid args=() i
	pid=$(pgrep -f -- "--instance cil-$tag-$node( |$)" | head -1)
	[ -n "$pid" ] || { why="no agent for $node"; return 1; }
	while IFS= read -r -d '' a; do args+=("$a"); done <"/proc/$pid/cmdline"
	[ -n "$bin" ] && args[0]=$bin
	kill -TERM "$pid"
	for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	echo "--- restart $(date -u +%T.%3N) with ${args[0]}" >>"$(log_of "$node")"
	nsenter --net="/run/netns/cil-$tag-$node" setsid "${args[@]}" >>"$(log_of "$node")" 2>&1 </dev/null &
	for i in $(seq 150); do
		"$CLI" status --node "cil-$tag-$node" -o json 2>/dev/null |
			jq -e '.agents[0].modelRevision > 0' >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	why="the restarted agent of $node does not answer"
	return 1
}
# since_restart NODE: the node's log after the last restart line
since_restart() { awk '/^--- restart /{buf=""} {buf = buf $0 "\n"} END {printf "%s", buf}' "$(log_of "$1")"; }

out=$("$SIM" up tests/upgrade/cluster.yaml 2>&1) || { echo "FAIL - setup: ciliate-sim up: $(tail -5 <<<"$out")"; exit 1; }
tag=$(sed -n 's/.*(tag \([a-z0-9]*\)).*/\1/p' <<<"$out" | head -1)
echo "cluster $tag up"
check "before: a -> b answered" probe x/a x/b
check "before: c -> b denied (drop event)" denied x/c x/b node-2

# ---- 1. a new agent binary on the same pins, a TCP stream open across the restart ----------
cp "$build/bin/ciliate-agent" "$tmp/ciliate-agent-next"
nsenter --net="/run/netns/$(host x/a netns)" "$PROBE" --stream --to "$(host x/b ip)" --port 80 \
	--interval-ms 20 --timeout-ms 2000 --max-time-ms 30000 >"$tmp/stream.out" 2>&1 &
stream_pid=$!
for i in $(seq 50); do grep -qs '"stream"' "$tmp/stream.out" && break; sleep 0.1; done
check "a stream a -> b is open" grep -q '"open"' "$tmp/stream.out"
# the stream's conntrack entries on node-2 ("created_ns:packets_fwd" per entry)
ct_of_stream() {
	"$CLI" bpf ct list --node "cil-$tag-node-2" -o json 2>/dev/null | jq -r --arg a "$(host x/a ip)" \
		--arg b "$(host x/b ip)" '.[] | select(.protocol == "TCP" and .tcp_state == "established" and
			([.source, .destination] | sort) == ([$a, $b] | sort) and
			(.source_port == 80 or .destination_port == 80)) | "\(.created_ns):\(.packets_fwd + .packets_rev)"' |
		sort
}
ct_before=$(ct_of_stream)
check "node-2's agent replaced by a new binary" restart node-2 "$tmp/ciliate-agent-next"
check "node-1's agent replaced by a new binary" restart node-1 "$tmp/ciliate-agent-next"
sleep 1
ct_after=$(ct_of_stream) # while the stream still runs
kill -USR1 "$stream_pid"
for i in $(seq 50); do kill -0 "$stream_pid" 2>/dev/null || break; sleep 0.1; done
wait "$stream_pid"
src=$?
stream_pid=""
why="exit $src: $(tail -2 "$tmp/stream.out")"
check "the stream kept flowing across both restarts" test "$src" -eq 0
why="before: [$ct_before] after: [$ct_after]"
grown() { # every entry of before is there after (same created_ns) with more packets
	local e c p q
	[ -n "$ct_before" ] || return 1
	for e in $ct_before; do
		c=${e%%:*} p=${e##*:}
		q=$(grep "^$c:" <<<"$ct_after" | head -1)
		[ -n "$q" ] && [ "${q##*:}" -gt "$p" ] || return 1
	done
}
check "its conntrack entries carried over (same creation time, more packets)" grown
why="$(since_restart node-2 | grep 'pinned maps' | tail -2)"
check "node-2 says every pinned map was reused" \
	grep -qE 'pinned maps of ABI [0-9]+: [0-9]+ reused, 0 migrated, 0 replaced' <<<"$(since_restart node-2)"
check "after: a -> b answered" probe x/a x/b
check "after: c -> b denied (drop event)" denied x/c x/b node-2

# ---- 2. maps of an older layout on node-2's pins ------------------------------------------------
pid=$(pgrep -f -- "--instance cil-$tag-node-2( |$)" | head -1)
kill -STOP "$pid" # nothing rewrites the pins while they are swapped
check "older-layout ciliate_ct and ciliate_policy pinned in place" \
	"$PINOLD" pin "$build/tests/upgrade/old_layout.bpf.o" "$(pins node-2)"
kill -CONT "$pid"
check "the old conntrack map holds the test entry" \
	jq -e '.found and .maxEntries == 4096' <<<"$("$PINOLD" check "$(pins node-2)")" >/dev/null
check "node-2's agent restarted on them" restart node-2
log=$(since_restart node-2)
why="$(grep 'pinned map' <<<"$log")"
check "it says ciliate_ct migrates (members appended, max_entries)" \
	grep -qE 'pinned map ciliate_ct migrates: value members appended' <<<"$log"
check "it says ciliate_ct migrated with its entries" grep -qE 'pinned map ciliate_ct migrated: [1-9][0-9]* entries copied' <<<"$log"
check "it says ciliate_policy was replaced (value layout differs), not reused" \
	grep -qE 'pinned map ciliate_policy replaced: value layout differs' <<<"$log"
r=$("$PINOLD" check "$(pins node-2)")
why="$r"
check "the migrated entry is there: old members intact, appended ones zero, new max_entries" \
	jq -e '.found and .prefixIntact and .appendedZero and .maxEntries > 4096' <<<"$r" >/dev/null
check "after the migration: a -> b answered" probe x/a x/b
check "after the migration: c -> b denied (drop event)" denied x/c x/b node-2

# ---- 3. ABI records: a meaning change, and a downgrade ------------------------------------------
check "ABI record set to 1 on node-1's pins" "$PINOLD" abi "$(pins node-1)" 1
check "node-1's agent restarted" restart node-1
log=$(since_restart node-1)
why="$(grep 'pinned map' <<<"$log")"
check "ABI 1 pins: ciliate_ct replaced for its meaning change, others reused" \
	grep -qE 'pinned map ciliate_ct replaced: its meaning changed in ABI 2' <<<"$log"
check "... and the record is ABI 2 again (a second restart reuses everything)" restart node-1
check "... every map reused" grep -qE ': [0-9]+ reused, 0 migrated, 0 replaced' <<<"$(since_restart node-1)"
check "ABI record set to 99 on node-1's pins" "$PINOLD" abi "$(pins node-1)" 99
check "node-1's agent restarted" restart node-1
log=$(since_restart node-1)
n=$(grep -c 'replaced: pinned by a newer agent (ABI 99' <<<"$log")
why="$(grep 'pinned map' <<<"$log" | tail -3)"
check "pins of a newer ABI: every map replaced ($n)" test "$n" -ge 15
check "finally: a -> b answered, c -> b denied (drop event)" eval 'probe x/a x/b && denied x/c x/b node-2'
