#!/usr/bin/env bash
# The simulator on a real etcd, and the store faults of issue 14 (docs/STORE.md, "Store
# faults"). Everything runs inside one network namespace this suite creates (cil-t-ss<pid>):
# etcd on its loopback (tests/lib/etcd.sh), and ciliate-sim entered into it with nsenter, so
# the agents reach etcd through the URI's netns= (sim/runner/store.c).
#   1. subset: connectivity, netpol and cnp scenarios with `ciliate-sim run --store etcd://`
#      pass as on the embedded store; the cluster's keys are gone from etcd afterwards;
#   2. etcd unreachable for 30 s (nft drops the agents' client port; the suite writes through
#      etcd's second client port): the agents keep forwarding and enforcing (a denial proven
#      by the drop event), `ciliate status` says the store is unreachable, a policy applied and
#      a compaction done meanwhile reach every agent within 2 s of the store's return;
#   3. a three-member etcd: the member the agents use is killed; no agent reports the store
#      unreachable, a change still reaches every agent, traffic and policy hold;
#   4. the operator leader is killed: a standby takes over within the lease TTL, identities in
#      use stay, an unused one is collected;
#   5. an agent stopped while a change and a compaction happen: it lists again on restart.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
for b in bin/ciliate bin/ciliate-agent bin/ciliate-sim bin/ciliate-probe bin/ciliate-operator; do
	if [ ! -x "$build/$b" ]; then
		echo "FAIL: $build/$b is missing (run make first)"
		exit 1
	fi
done
build=$(cd "$build" && pwd)
CLI=$build/bin/ciliate
SIM=$build/bin/ciliate-sim
PROBE=$build/bin/ciliate-probe
OPERATOR=$build/bin/ciliate-operator
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: network namespaces and BPF need root"
	exit 77
fi
for t in etcd etcdctl ip nsenter nft python3 curl jq; do
	if ! command -v $t >/dev/null; then
		echo "SKIP: $t is not installed (make deps installs etcd-server, etcd-client, nftables, curl, jq)"
		exit 77
	fi
done

. tests/lib/suite.sh
. tests/lib/etcd.sh
passed=0
failed=0
why=""
NS="cil-t-ss$$"
SCEN=$PWD/scenarios/store/outage.yaml
tmp=""
etcd1="" standby_pid="" tag=""
ETCD_PIDS=()

in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
sim() { in_ns "$SIM" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

teardown() {
	local p
	[ -n "$tag" ] && sim down "$tag" >/dev/null 2>&1
	tag=""
	[ -n "$standby_pid" ] && kill -KILL "$standby_pid" 2>/dev/null
	standby_pid=""
	if [ -n "$tmp" ]; then
		etcd_stop "$etcd1" "$tmp" e1
		for p in "${!ETCD_PIDS[@]}"; do
			etcd_stop "${ETCD_PIDS[p]}" "$tmp" "m$((p + 1))"
		done
	fi
	etcd1="" ETCD_PIDS=()
	# safety net: anything still inside our namespace was started by this suite
	for p in $(ip netns pids "$NS" 2>/dev/null); do
		kill -KILL "$p" 2>/dev/null
	done
	ip netns del "$NS" 2>/dev/null
	[ -n "$tmp" ] && rm -rf "$tmp"
	tmp=""
}
finish() {
	if [ "$failed" -ne 0 ] && [ -n "$tag" ]; then
		for f in /run/ciliate/sim/"$tag"/agent-*.log /run/ciliate/sim/"$tag"/operator.log; do
			[ -f "$f" ] && { echo "--- $f (last 25 lines)"; tail -25 "$f"; }
		done
	fi
	teardown
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap finish EXIT
trap 'exit 130' INT TERM HUP
sys() {
	"$@" || { echo "FAIL - setup: $*"; failed=$((failed + 1)); exit 1; }
}

# ---- helpers on a cluster that `up` left (tag in $tag) --------------------------------------
state() { cat "/run/ciliate/sim/$tag.json"; }
host_field() { state | jq -r --arg n "$1" ".hosts[] | select(.name == \$n) | .$2"; }
pod_ns() { host_field "$1" netns; }
pod_ip() { host_field "$1" ip; }
agent_status() { "$CLI" status --node "cil-$tag-$1" -o json 2>/dev/null | jq -c '.agents[0]'; }
# probe FROM TO: one TCP connection to TO's port 80 (1 s), 0 when answered by TO
probe() {
	local r
	r=$(nsenter --net="/run/netns/$(pod_ns "$1")" "$PROBE" --to "$(pod_ip "$2")" --port 80 \
		--timeout-ms 1000 -o json 2>/dev/null) || return 1
	[ -n "$r" ]
}
# denied FROM TO NODE: the probe fails AND node's agent has a POLICY_DENIED drop of that flow
denied() {
	local since n
	since=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
	if probe "$1" "$2"; then
		why="$1 -> $2 was answered"
		return 1
	fi
	n=$("$CLI" observe --node "cil-$tag-$3" --from-pod "$1" --to-pod "$2" --verdict DROPPED \
		--drop-reason POLICY_DENIED --since "$since" --all -o json 2>/dev/null | grep -c '"flow"')
	why="no POLICY_DENIED drop event of $1 -> $2 on $3 since $since"
	[ "${n:-0}" -ge 1 ]
}
# store_rev EP: the etcd revision, read through endpoint EP
store_rev() {
	in_ns curl -s --max-time 2 "http://$1/v3/kv/range" -d '{"key":"AA=="}' | jq -r '.header.revision'
}
# wait_model REV MAX_MS: until both agents' modelRevision >= REV; prints the ms waited
wait_model() {
	local rev=$1 max=$2 t0 n r
	t0=$(now_ms)
	while :; do
		n=0
		for node in node-1 node-2; do
			r=$(agent_status "$node" | jq -r '.modelRevision // 0')
			[ "${r:-0}" -ge "$rev" ] 2>/dev/null && n=$((n + 1))
		done
		if [ "$n" -eq 2 ]; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		[ $(($(now_ms) - t0)) -gt "$max" ] && { echo -1; return 1; }
		sleep 0.05
	done
}
up_cluster() { # STORE-URI
	local out
	out=$(sim up "$SCEN" --store "$1" 2>&1) || { echo "$out" | tail -15; return 1; }
	tag=$(sed -n 's/.*(tag \([a-z0-9]*\)).*/\1/p' <<<"$out" | head -1)
	[ -n "$tag" ]
}
down_cluster() {
	sim down "$tag" >/dev/null 2>&1
	tag=""
}

# ---- set-up ---------------------------------------------------------------------------------
if ! ip netns add "$NS" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces here"
	trap - EXIT
	exit 77
fi
sys ip -n "$NS" link set lo up
tmp=$(mktemp -d /tmp/ciliate-t-store-sim.XXXXXX)
ETCD_SECOND_PORT=1 sys etcd_start e1 "$tmp" "$NS"
etcd1=$ETCD_PID EP=$ETCD_EP EP2=$ETCD_EP2
echo "etcd $EP (agents) and $EP2 (this suite's writes) in $NS, pid $etcd1"
ctl() { in_ns env ETCDCTL_API=3 etcdctl --endpoints "${CTL_EP:-$EP2}" --command-timeout=5s "$@"; }

# ---- 0. a manifest larger than one etcd txn (its default --max-txn-ops is 128) ------------------
for i in $(seq 300); do printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bulk-%d}\n' "$i"; done >"$tmp/bulk.yaml"
out=$(in_ns "$CLI" apply -f "$tmp/bulk.yaml" --store "etcd://$EP2" 2>&1)
why="$(tail -3 <<<"$out")"
check "apply of 300 objects to a default etcd (txns split at its 128-op limit)" \
	test "$(ctl get --prefix /ciliate/objects/Namespace/ --keys-only | grep -c bulk-)" -eq 300
out=$(in_ns "$CLI" delete -f "$tmp/bulk.yaml" --store "etcd://$EP2" 2>&1)
why="$(tail -3 <<<"$out")"
check "... and delete of them" test "$(ctl get --prefix /ciliate/objects/Namespace/ --keys-only | grep -c bulk-)" -eq 0

# ---- 1. connectivity, netpol and cnp on etcd --------------------------------------------------
rep=$tmp/subset.json
t0=$(now_ms)
sim run scenarios/connectivity/pod-to-pod-cross-node-tunnel.yaml \
	scenarios/connectivity/pod-to-pod-same-node.yaml scenarios/netpol/default-deny-ingress.yaml \
	scenarios/netpol/egress-podselector.yaml scenarios/cnp/l4-only.yaml scenarios/cnp/deny-port.yaml \
	--store "etcd://$EP" --report "$rep" >"$tmp/subset.log" 2>&1
rc=$?
why="exit $rc: $(tail -5 "$tmp/subset.log")"
check "subset on etcd: 6 scenarios pass ($(($(now_ms) - t0)) ms)" test "$rc" -eq 0
why="report: $(jq -c '.summary // .totals // empty' "$rep" 2>&1 | head -c 300)"
check "subset on etcd: checks ran, none failed" \
	test "$(jq '[.checks[] | select(.pass | not)] | length' "$rep" 2>/dev/null)" = 0 -a \
	"$(jq '.checks | length' "$rep" 2>/dev/null || echo 0)" -gt 20
check "subset on etcd: every denial proven by a drop event" \
	grep -qE '([0-9]+) of \1 denial\(s\) proven by a datapath drop event' "$tmp/subset.log"
why="$(ctl get --prefix /ciliate/ --keys-only 2>&1 | head -5)"
check "the clusters' keys are gone from etcd after run" test -z "$(ctl get --prefix /ciliate/ --keys-only 2>&1)"

# ---- 2. etcd unreachable for 30 s ----------------------------------------------------------------
sys up_cluster "etcd://$EP"
echo "cluster $tag up on etcd $EP"
why="$(ctl get --prefix /ciliate/ --keys-only 2>&1 | grep -c .) keys"
check "the agents' objects, heartbeats and status are in etcd" \
	test "$(ctl get --prefix /ciliate/objects/ --keys-only | grep -c .)" -ge 5 -a \
	"$(ctl get --prefix /ciliate/health/agents/ --keys-only | grep -c .)" -eq 2 -a \
	"$(ctl get --prefix /ciliate/status/nodes/ --keys-only | grep -c .)" -eq 2
check "before: a -> b answered" probe x/a x/b
check "before: c -> b denied (drop event)" denied x/c x/b node-2

port=${EP##*:}
t_cut=$(now_ms)
sys in_ns nft -f - <<EOF
table inet cil_t_cut {
	chain in { type filter hook input priority 0; tcp dport $port drop; }
	chain out { type filter hook output priority 0; tcp sport $port drop; }
}
EOF
echo "agents cut off etcd (nft drops tcp port $port in $NS)"
ok=0
for i in $(seq 100); do
	n=0
	for node in node-1 node-2; do
		[ "$(agent_status $node | jq -r '.storeHealth.reachable')" = false ] && n=$((n + 1))
	done
	[ $n -eq 2 ] && { ok=1; break; }
	sleep 0.1
done
why="$(agent_status node-1 | jq -c .storeHealth)"
check "status: both agents say the store is unreachable ($(($(now_ms) - t_cut)) ms after the cut)" test $ok = 1
txt=$("$CLI" status --node "cil-$tag-node-1" --store "$(state | jq -r .store)" 2>&1)
why="$txt"
check "ciliate status (text) says the store is unreachable" grep -qi "unreachable" <<<"$txt"
check "outage: a -> b still answered" probe x/a x/b
check "outage: c -> b still denied (drop event)" denied x/c x/b node-2
# a change and a compaction while the agents cannot see them (writes through the other port)
sys in_ns "$CLI" apply -f scenarios/store/allow-c.yaml --store "etcd://$EP2" >/dev/null
rev=$(store_rev "$EP2")
sys ctl compact "$rev" >/dev/null
echo "applied allow-c.yaml and compacted at revision $rev while cut off"
sleep 3
check "outage: c -> b still denied: the change has not reached the agents" denied x/c x/b node-2
left=$((30000 - ($(now_ms) - t_cut)))
[ $left -gt 0 ] && sleep "$(awk -v m=$left 'BEGIN{printf "%.3f", m/1000}')"
check "outage lasted 30 s and a -> b is still answered" probe x/a x/b
in_ns nft delete table inet cil_t_cut
t_heal=$(now_ms)
ms=$(wait_model "$rev" 10000)
why="waited $ms ms (bound 10 s); node-1: $(agent_status node-1 | jq -c '{modelRevision, storeRevision, storeHealth}')"
check "the change reached both agents within 2 s of etcd's return ($ms ms)" test "$ms" -ge 0 -a "$ms" -le 2000
check "after: c -> b answered" probe x/c x/b
check "after: a -> b answered" probe x/a x/b
why="$(grep -h "store" /run/ciliate/sim/"$tag"/agent-*.log | tail -4)"
check "the agents logged the store's return and a fresh list" \
	test "$(grep -l 'store reachable again' /run/ciliate/sim/"$tag"/agent-*.log | wc -l)" -eq 2
why="$(agent_status node-2 | jq -c .storeHealth)"
check "status: reachable again" test "$(agent_status node-2 | jq -r .storeHealth.reachable)" = true

# ---- 4. the operator leader killed ----------------------------------------------------------------
op_pid=$(state | jq -r '.operator.pid // empty')
leader() { ctl get /ciliate/operator/leader --print-value-only 2>/dev/null | jq -r '.id // empty' 2>/dev/null; }
why="operator pid '$op_pid', leader '$(leader)'"
check "the simulator started an operator and it leads" test -n "$op_pid" -a -n "$(leader)"
store_uri=$(state | jq -r .store)
# (not through in_ns: $! must be the operator itself, nsenter and setsid exec it)
nsenter --net="/run/netns/$NS" setsid "$OPERATOR" --store "$store_uri" --id standby-$$ --lease-ttl 5 \
	--identity-gc-grace 1 --interval 1 >"$tmp/standby.log" 2>&1 </dev/null &
standby_pid=$!
used=$(ctl get --prefix /ciliate/identities/id/ --keys-only | grep . | sort)
# an identity record no endpoint uses: the new leader must collect it
sys ctl put /ciliate/identities/id/65000 '{"id":65000,"labels":["k8s:app=nobody","k8s:io.kubernetes.pod.namespace=x"]}' >/dev/null
sleep 1
check "the standby does not lead while the leader lives" test "$(leader)" != "standby-$$"
ttl=$(ctl get /ciliate/operator/leader --print-value-only 2>/dev/null | jq -r '.leaseTTL // 15')
kill -KILL "$op_pid"
t_kill=$(now_ms)
for i in $(seq 250); do
	[ "$(leader)" = "standby-$$" ] && break
	sleep 0.1
done
took=$(($(now_ms) - t_kill))
why="leader '$(leader)' after $took ms; standby log: $(tail -3 "$tmp/standby.log")"
check "a standby takes over within the killed leader's lease TTL ($took ms, TTL ${ttl:-?} s)" \
	test "$(leader)" = "standby-$$" -a "$took" -le $(((${ttl:-15} + 2) * 1000))
for i in $(seq 100); do
	ctl get /ciliate/identities/id/65000 --print-value-only | grep -q 65000 || break
	sleep 0.1
done
why="$(tail -5 "$tmp/standby.log")"
check "the new leader collected the unused identity" test -z "$(ctl get /ciliate/identities/id/65000 --print-value-only)"
now=$(ctl get --prefix /ciliate/identities/id/ --keys-only | grep . | sort)
why="missing: $(comm -23 <(echo "$used") <(echo "$now") | tr '\n' ' ')"
check "no identity in use was collected" test -z "$(comm -23 <(echo "$used") <(echo "$now"))"
check "after the takeover: c -> b answered, a -> b answered" eval 'probe x/c x/b && probe x/a x/b'

# ---- 5. an agent stopped across a change and a compaction ------------------------------------------
apid=$(state | jq -r '.hosts[] | select(.name == "node-2") | .agent.pid')
cmdline=()
while IFS= read -r -d '' a; do cmdline+=("$a"); done <"/proc/$apid/cmdline"
kill -STOP "$apid"
sys in_ns "$CLI" delete -f scenarios/store/allow-c.yaml --store "etcd://$EP2" >/dev/null
rev=$(store_rev "$EP2")
sys ctl compact "$rev" >/dev/null
kill -KILL "$apid"
kill -CONT "$apid" 2>/dev/null
for i in $(seq 50); do kill -0 "$apid" 2>/dev/null || break; sleep 0.1; done
nsenter --net="/run/netns/$(host_field node-2 netns)" setsid "${cmdline[@]}" \
	>>"/run/ciliate/sim/$tag/agent-node-2.log" 2>&1 </dev/null &
ms=$(wait_model "$rev" 15000)
why="waited $ms ms; node-2: $(agent_status node-2 | jq -c '{modelRevision, storeRevision}')"
check "the restarted agent lists the store past the compaction (revision $rev, $ms ms)" test "$ms" -ge 0
check "c -> b denied again on the restarted node (drop event)" denied x/c x/b node-2
check "a -> b answered" probe x/a x/b
kill -KILL "$standby_pid" 2>/dev/null
for i in $(seq 50); do kill -0 "$standby_pid" 2>/dev/null || break; sleep 0.1; done
standby_pid=""
down_cluster
why="$(ctl get --prefix /ciliate/ --keys-only 2>&1 | head -3)"
check "down removes the cluster's keys" test -z "$(ctl get --prefix /ciliate/ --keys-only 2>&1)"

# ---- 3. a three-member etcd, the agents' member killed -----------------------------------------------
etcd_stop "$etcd1" "$tmp" e1
etcd1=""
sys etcd_start_cluster "$tmp" "$NS" 3
echo "etcd cluster: $ETCD_EPS (pids ${ETCD_PIDS[*]})"
sys up_cluster "etcd://$ETCD_EPS"
check "3 members: a -> b answered, c -> b denied" eval 'probe x/a x/b && denied x/c x/b node-2'
kill -KILL "${ETCD_PIDS[0]}"
echo "killed member m1 (${ETCD_EPS_LIST[0]}, the agents' first endpoint)"
bad=0
for i in $(seq 30); do
	for node in node-1 node-2; do
		[ "$(agent_status $node | jq -r '.storeHealth.reachable')" = true ] || bad=$((bad + 1))
	done
	sleep 0.1
done
check "no agent reports the store unreachable after the member died" test $bad -eq 0
CTL_EP=${ETCD_EPS_LIST[1]} ctl get /ciliate/sim/owner >/dev/null
sys in_ns "$CLI" apply -f scenarios/store/allow-c.yaml --store "etcd://${ETCD_EPS_LIST[1]},${ETCD_EPS_LIST[2]}" >/dev/null
rev=$(store_rev "${ETCD_EPS_LIST[1]}")
ms=$(wait_model "$rev" 10000)
why="waited $ms ms"
check "a change after the member died reaches both agents ($ms ms)" test "$ms" -ge 0 -a "$ms" -le 3000
check "then: c -> b answered, a -> b answered" eval 'probe x/c x/b && probe x/a x/b'
check "the agents' status stayed reachable (no failed probe)" \
	test "$(agent_status node-1 | jq -r '.storeHealth.failures')" = 0 -a \
	"$(agent_status node-2 | jq -r '.storeHealth.failures')" = 0
down_cluster
