#!/usr/bin/env bash
# The simulator on the embedded store against etcd, side by side in one run (issue 14 item 6;
# docs/PERFORMANCE.md "Store operations", simulator rows). Two parts, each run once on the
# simulator's own embedded store (file://, fsync on, in its run directory) and once with
# `ciliate-sim up --store etcd://...` (one etcd member, --unsafe-no-fsync: no fsync of its WAL):
#   1. policy change to enforcement on every node: a 3-node cluster (one pod per node, all in
#      namespace x); build/bench-tools/enforce_wait runs `ciliate apply -f` of a NetworkPolicy
#      selecting every pod of x (ingress from x/a on TCP 80, then 81, then 80, ...: every
#      apply changes it), reads the policy object's mod_revision R, and asks each node's
#      agent (API "status") until its modelRevision — the revision whose model its maps
#      reflect, set only after a reconcile wrote them — is >= R. Time from the apply's start
#      to the last node; 2 warm-up applies, then BENCH_STORE_SIM_REPS (default 10), p50 and
#      p99 (nearest rank: with 10 samples p99 is the maximum); also the apply process's own
#      time and the rest (apply returned -> last node enforcing). After the first apply
#      every endpoint must report ingress enforcement on. Applies are BENCH_STORE_SIM_GAP_S
#      (default 0.5) s apart: an agent reconciles a store change at once only when its last
#      reconcile ended at least max(50 ms, 80 x that reconcile's time) ago, else when that
#      window closes (datapath/agent/main.c, COALESCE_*), so back-to-back applies would
#      measure the coalescing window (a 3 ms reconcile: 240 ms) rather than one change.
#   2. 1000 pods brought up: the 10 x 100 cluster of tests/bench/sim_bringup.sh (its scenario
#      generator, read from that file), `ciliate-sim up` wall time (until every agent has
#      reconciled the last pod) and `ciliate-sim down` wall time. BENCH_STORE_SIM_SIZE
#      (default 10x100) changes the size. etcd runs with --max-txn-ops 1024 (see below).
# Everything runs inside one network namespace this script creates (cil-t-bsimPID): etcd on
# its loopback (tests/lib/etcd.sh), and the simulator itself (nsenter), whose agents reach
# etcd through the URI's netns= (the simulator adds it). Clusters are named bsp-f/bsp-e/
# bsu-f/bsu-e-PID, taken down at the end and on any exit; the namespace and etcd are removed.
# Usage: bench_store_sim.sh [BUILD_DIR]. Needs root, etcd, jq (a SKIP line and exit 0 without).
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root"
	exit 0
fi
for t in etcd jq python3 curl; do
	command -v $t >/dev/null || { echo "SKIP: $t is not installed (make deps installs etcd-server, jq, curl)"; exit 0; }
done
build=$(cd "$build" && pwd)
SIM=$build/bin/ciliate-sim CLI=$build/bin/ciliate WAIT=$build/bench-tools/enforce_wait
for b in "$SIM" "$CLI" "$WAIT" "$build/bin/ciliate-agent"; do
	[ -x "$b" ] || { echo "FAIL: $b is missing (run make first)"; exit 1; }
done
if ! grep -aq -- '--store' "$SIM"; then
	echo "SKIP: this ciliate-sim has no --store"
	exit 0
fi
REPS=${BENCH_STORE_SIM_REPS:-10}
GAP=${BENCH_STORE_SIM_GAP_S:-0.5}
SIZE=${BENCH_STORE_SIM_SIZE:-10x100}
[ "$REPS" -ge 1 ] && [ "$REPS" -le 200 ] || { echo "FAIL: BENCH_STORE_SIM_REPS 1..200"; exit 1; }

. tests/lib/etcd.sh
tmp=$(mktemp -d /tmp/ciliate-bench-store-sim.XXXXXX)
NS=cil-t-bsim$$
etcd_pid=""
tags=()
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
cleanup() {
	local t p
	for t in "${tags[@]}"; do in_ns timeout 120 "$SIM" down "$t" >/dev/null 2>&1; done
	tags=()
	[ -n "$etcd_pid" ] && etcd_stop "$etcd_pid" "$tmp" simetcd
	etcd_pid=""
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ip netns add "$NS" && ip -n "$NS" link set lo up || { echo "FAIL: cannot create netns $NS"; exit 1; }
# A default etcd: it refuses txns of more than 128 operations (--max-txn-ops), and `ciliate
# apply` splits its txns at that (store_txn_max; the URI's max-txn-ops= says when a server
# takes more). BENCH_STORE_SIM_MAX_TXN_OPS=N starts this etcd with another limit.
[ -n "${BENCH_STORE_SIM_MAX_TXN_OPS:-}" ] && export ETCD_MAX_TXN_OPS=$BENCH_STORE_SIM_MAX_TXN_OPS
etcd_start simetcd "$tmp" "$NS" || { echo "FAIL: etcd did not start"; exit 1; }
unset ETCD_MAX_TXN_OPS
etcd_pid=$ETCD_PID
ETCD="etcd://$ETCD_EP"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); etcd $(etcd --version 2>/dev/null | awk 'NR == 1 {print $3}') on $ETCD_EP in netns $NS (--unsafe-no-fsync, --max-txn-ops ${BENCH_STORE_SIM_MAX_TXN_OPS:-128})"

# up NAME FILE STORE-ARGS...: brings the cluster up (in $NS), records its tag; UP_MS
up() {
	local name=$1 file=$2 t0 rc tag
	shift 2
	t0=$(date +%s%N)
	in_ns timeout 600 "$SIM" up "$@" "$file" >"$tmp/$name.up" 2>&1
	rc=$?
	UP_MS=$((($(date +%s%N) - t0) / 1000000))
	tag=$(in_ns "$SIM" status -o json 2>/dev/null | jq -r --arg n "$name" '.[] | select(.cluster == $n) | .tag' | head -1)
	[ -n "$tag" ] && tags+=("$tag")
	[ $rc -eq 0 ] && [ -n "$tag" ] || { echo "FAIL: up $name: $(tr '\r' '\n' <"$tmp/$name.up" | tail -3)"; return 1; }
}
down() { # NAME: takes the last cluster up down; DOWN_MS
	local name=$1 t0
	t0=$(date +%s%N)
	in_ns timeout 300 "$SIM" down "${tags[-1]}" >"$tmp/$name.down" 2>&1 || { echo "FAIL: down $name"; return 1; }
	DOWN_MS=$((($(date +%s%N) - t0) / 1000000))
	unset 'tags[-1]'
}
quantile() { # Q FILE: nearest-rank quantile of the numbers in FILE
	sort -g "$2" | awk -v q="$1" '{ v[NR] = $1 } END { k = int(q * NR + 0.999999); if (k < 1) k = 1; print v[k] }'
}

# ---- 1. policy change to enforcement on every node ---------------------------------------
pol_scenario() { # NAME
	echo "apiVersion: sim.ciliate.dev/v1
kind: Cluster
metadata: {name: $1}
spec:
  nodes: [{name: node-1}, {name: node-2}, {name: node-3}]
  routing: tunnel
  podCIDR: 10.244.0.0/16
  underlayCIDR: 192.0.2.0/24
---
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}"
	for p in a:1 b:2 c:3; do
		echo "---
apiVersion: v1
kind: Pod
metadata: {name: ${p%:*}, namespace: x, labels: {pod: ${p%:*}}}
spec:
  nodeName: node-${p#*:}
  containers: [{name: c, image: echo, ports: [{containerPort: 80}, {containerPort: 81}]}]"
	done
}
for port in 80 81; do
	cat >"$tmp/np$port.yaml" <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bench, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {pod: a}}}]
    ports: [{port: $port, protocol: TCP}]
EOF
done

fail=0
declare -A P50 P99 AP50 AF50 AF99 UPMS DOWNMS UPREP
policy_bench() { # KEY NAME STORE-ARGS...
	local key=$1 name=$2 tag uri i f out nodes=() ok
	shift 2
	pol_scenario "$name" >"$tmp/$name.yaml"
	up "$name" "$tmp/$name.yaml" "$@" || return 1
	tag=${tags[-1]}
	for i in 1 2 3; do nodes+=("cil-$tag-node-$i"); done
	uri=$("$CLI" status --node "${nodes[0]}" -o json 2>/dev/null | jq -r '.agents[0].store')
	echo "  $key: cluster $name (tag $tag), agents' store $uri"
	: >"$tmp/$key.all" && : >"$tmp/$key.apply" && : >"$tmp/$key.after"
	for i in $(seq $((REPS + 2))); do
		f=$tmp/np$((80 + (i + 1) % 2)).yaml
		out=$(in_ns timeout 60 "$WAIT" "$CLI" "$uri" "$f" /ciliate/objects/NetworkPolicy/x/bench "${nodes[@]}" 2>&1) ||
			{ echo "FAIL: $key apply $i: $out"; down "$name"; return 1; }
		if [ "$i" -eq 1 ]; then
			ok=1
			for n in "${nodes[@]}"; do
				"$CLI" endpoint list --node "$n" -o json 2>/dev/null |
					jq -e 'length > 0 and all(.[]; .policyEnforcement.ingress == true)' >/dev/null || ok=0
			done
			if [ $ok -eq 1 ]; then
				echo "  ok: after the first apply every endpoint of the 3 nodes enforces ingress policy"
			else
				echo "FAIL: $key: after the first apply some endpoint does not enforce ingress policy"
				fail=1
			fi
		fi
		sleep "$GAP" # the agents' coalescing window has passed (see the header)
		[ "$i" -le 2 ] && continue # warm-up
		echo "    $out"
		jq -r .all_ms <<<"$out" >>"$tmp/$key.all"
		jq -r .apply_ms <<<"$out" >>"$tmp/$key.apply"
		jq -r '.all_ms - .apply_ms | . * 100 | round / 100' <<<"$out" >>"$tmp/$key.after"
	done
	P50[$key]=$(quantile 0.5 "$tmp/$key.all")
	P99[$key]=$(quantile 0.99 "$tmp/$key.all")
	AP50[$key]=$(quantile 0.5 "$tmp/$key.apply")
	AF50[$key]=$(quantile 0.5 "$tmp/$key.after")
	AF99[$key]=$(quantile 0.99 "$tmp/$key.after")
	down "$name"
}
echo "=== policy change to enforcement on every node (3 nodes, $REPS applies after 2 warm-up)"
policy_bench file "bsp-f-$$" || fail=1
policy_bench etcd "bsp-e-$$" --store "$ETCD" || fail=1

# ---- 2. 1000 pods brought up (BENCH_STORE_SIM_SIZE=none skips it) ---------------------------
eval "$(sed -n '/^scenario() {/,/^}/p' tests/bench/sim_bringup.sh)"
if ! declare -F scenario >/dev/null; then
	echo "FAIL: no scenario() generator in tests/bench/sim_bringup.sh"
	exit 1
fi
[ "$SIZE" = none ] && SIZE=0x0
nodes=${SIZE%x*} per=${SIZE#*x}
[ "$nodes" -gt 0 ] && echo "=== $((nodes * per)) pods brought up ($SIZE: $nodes nodes x $per pods, tests/bench/sim_bringup.sh's scenario)"
for key in file etcd; do
	[ "$nodes" -gt 0 ] || break
	name=bsu-${key:0:1}-$$
	scenario "$name" "$nodes" "$per" >"$tmp/$name.yaml"
	args=()
	[ $key = etcd ] && args=(--store "$ETCD")
	if up "$name" "$tmp/$name.yaml" "${args[@]}"; then
		UPMS[$key]=$UP_MS
		UPREP[$key]=$(grep -oE 'up in [0-9]+ ms' "$tmp/$name.up" | grep -oE '[0-9]+')
		if down "$name"; then DOWNMS[$key]=$DOWN_MS; else fail=1; fi
		echo "  $key: up ${UPMS[$key]} ms (the simulator's own report: ${UPREP[$key]} ms), down ${DOWNMS[$key]:-?} ms"
	else
		fail=1
	fi
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
echo
printf '%-44s | %15s | %12s | %s\n' measure "file (embedded)" "etcd" "etcd/file"
printf '%-44s | %15s | %12s | %s\n' "policy apply->enforced on 3 nodes p50 ms" "${P50[file]:-}" "${P50[etcd]:-}" "$(ratio "${P50[etcd]:-}" "${P50[file]:-}")"
printf '%-44s | %15s | %12s | %s\n' "policy apply->enforced on 3 nodes p99 ms" "${P99[file]:-}" "${P99[etcd]:-}" "$(ratio "${P99[etcd]:-}" "${P99[file]:-}")"
printf '%-44s | %15s | %12s | %s\n' "  the ciliate apply process alone, p50 ms" "${AP50[file]:-}" "${AP50[etcd]:-}" "$(ratio "${AP50[etcd]:-}" "${AP50[file]:-}")"
printf '%-44s | %15s | %12s | %s\n' "  apply returned->enforced on 3, p50 ms" "${AF50[file]:-}" "${AF50[etcd]:-}" "$(ratio "${AF50[etcd]:-}" "${AF50[file]:-}")"
printf '%-44s | %15s | %12s | %s\n' "  apply returned->enforced on 3, p99 ms" "${AF99[file]:-}" "${AF99[etcd]:-}" "$(ratio "${AF99[etcd]:-}" "${AF99[file]:-}")"
[ "$nodes" -gt 0 ] && printf '%-44s | %15s | %12s | %s\n' "$((nodes * per)) pods up ($SIZE), wall ms" "${UPMS[file]:-}" "${UPMS[etcd]:-}" "$(ratio "${UPMS[etcd]:-}" "${UPMS[file]:-}")"
[ "$nodes" -gt 0 ] && printf '%-44s | %15s | %12s | %s\n' "$((nodes * per)) pods down, wall ms" "${DOWNMS[file]:-}" "${DOWNMS[etcd]:-}" "$(ratio "${DOWNMS[etcd]:-}" "${DOWNMS[file]:-}")"
exit $fail
