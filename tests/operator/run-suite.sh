#!/usr/bin/env bash
# ciliate-operator (docs/OPERATOR.md) against both store backends: the embedded file store
# (a temp dir) and a real etcd (tests/lib/etcd.sh) inside a network namespace this suite
# creates (cil-t-opPID), removed on any exit. No BPF and no agents: the suite writes the
# agents' heartbeat and node status keys itself (build/tests/operator_kv), as the contract
# in docs/OPERATOR.md says agents do. On each backend:
#   - two operators (--lease-ttl 3): exactly one becomes leader, the other stands by;
#     `ciliate status` shows the leader and its health;
#   - identity GC (--identity-gc-grace 2): an identity a node status lists stays, an unused
#     one is collected after the grace, one whose record is newer than a node status's
#     revision is not collected;
#   - node GC (--node-gc-timeout 2): a departed node (registry, pod CIDR claim, IPAM range
#     and allocation, status; no heartbeat) is released, a node with a heartbeat is kept;
#   - policy status: a NetworkPolicy applied with `ciliate apply -f`, two node statuses (one
#     at its mod_revision, one older): the status key says enforcing 1 of 2, byRevision; it
#     goes when the policy is deleted;
#   - SIGKILL of the leader: the standby leads within TTL + 2 s, and no identity in use is
#     collected by the new leader either;
#   - SIGTERM of the leader: it revokes its lease and exits 0, a standby leads within 1.5 s.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
for b in bin/ciliate bin/ciliate-operator tests/operator_kv; do
	if [ ! -x "$build/$b" ]; then
		echo "FAIL: $build/$b is missing (run make first)"
		exit 1
	fi
done
build=$(cd "$build" && pwd)
CLI=$build/bin/ciliate
OPR=$build/bin/ciliate-operator
KV=$build/tests/operator_kv

. tests/lib/suite.sh
. tests/lib/etcd.sh
passed=0
failed=0
why=""
NS="cil-t-op$$"
tmp=$(mktemp -d /tmp/ciliate-t-operator.XXXXXX)
ops=()       # pids of the operators this suite started
etcd_pid=""
ns_made=false

teardown() {
	local p i alive
	for p in "${ops[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for i in $(seq 30); do
		alive=0
		for p in "${ops[@]}"; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for p in "${ops[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	ops=()
	if [ -n "$etcd_pid" ]; then
		etcd_stop "$etcd_pid" "$tmp" e1
		etcd_pid=""
	fi
	if $ns_made; then
		for p in $(ip netns pids "$NS" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null # only what this suite started runs in it
		done
		ip netns del "$NS" 2>/dev/null
		ns_made=false
	fi
}
finish() {
	if [ "$failed" -ne 0 ]; then
		for f in "$tmp"/*.log; do
			[ -f "$f" ] && { echo "--- $(basename "$f") (last 25 lines)"; tail -25 "$f"; }
		done
	fi
	teardown
	rm -rf "$tmp"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- per backend: RUN (a command prefix, "" or nsenter), STORE ------------------------------
RUN=()
STORE=""
B=""
run() { "${RUN[@]}" "$@"; }
kv() { run "$KV" "$STORE" "$@"; }
leader_id() { kv get /ciliate/operator/leader 2>/dev/null | jq -r .id 2>/dev/null; }

# start_op ID: an operator in the background (pid appended to ops, also in $op_pid)
start_op() {
	local id=$1
	"${RUN[@]}" "$OPR" --store "$STORE" --id "$id" --lease-ttl 3 --interval 1 \
		--identity-gc-grace 2 --node-gc-timeout 2 --pidfile "$tmp/$id.pid" \
		2>"$tmp/$id.log" &
	op_pid=$!
	ops+=("$op_pid")
}

# wait_for MS COMMAND...: polls every 0.1 s until COMMAND succeeds, at most MS milliseconds
wait_for() {
	local limit=$(($(now_ms) + $1))
	shift
	while ! "$@"; do
		[ "$(now_ms)" -ge "$limit" ] && return 1
		sleep 0.1
	done
}
leader_is() { [ "$(leader_id)" = "$1" ]; }
absent() { ! kv get "$1" >/dev/null 2>&1; }
present() { kv get "$1" >/dev/null 2>&1; }
pstatus_is() { [ "$(kv get "$1" 2>/dev/null)" = "$2" ]; }

suite_backend() {
	local a="op-$B-1" b="op-$B-2" c="op-$B-3" pa pb pc R M t0 dt st js rc want
	local na="node-a" nb="node-b" gone="gone-$B" pol=/ciliate/objects/NetworkPolicy/default/allow-web
	echo "# backend $B: $STORE"

	# the agents' part: heartbeats, identity records, node statuses; a departed node
	kv put /ciliate/health/agents/$na "{\"node\":\"$na\",\"started\":1}" >/dev/null
	kv put /ciliate/health/agents/$nb "{\"node\":\"$nb\",\"started\":1}" >/dev/null
	kv put /ciliate/nodes/$na "{\"name\":\"$na\",\"podCIDR\":\"10.244.0.0/24\"}" >/dev/null
	kv put /ciliate/podcidrs/10.244.0.0-24 "{\"node\":\"$na\"}" >/dev/null
	kv put /ciliate/ipam/$na "{\"node\":\"$na\",\"cidr\":\"10.244.0.0/24\",\"allocations\":[]}" >/dev/null
	kv put /ciliate/identities/id/300 '{"id":300,"labels":{"k8s:app":"used"}}' >/dev/null
	kv put /ciliate/identities/id/301 '{"id":301,"labels":{"k8s:app":"unused"}}' >/dev/null
	kv put /ciliate/nodes/$gone "{\"name\":\"$gone\",\"podCIDR\":\"10.244.9.0/24\"}" >/dev/null
	kv put /ciliate/podcidrs/10.244.9.0-24 "{\"node\":\"$gone\"}" >/dev/null
	kv put /ciliate/ipam/$gone "{\"node\":\"$gone\",\"cidr\":\"10.244.9.0/24\",\"allocations\":[]}" >/dev/null
	kv put /ciliate/ipam/$gone/10.244.9.10 '{"ip":"10.244.9.10","pod":"default/x","containerID":"c1"}' >/dev/null
	R=$(kv rev)
	kv put /ciliate/status/nodes/$na "{\"node\":\"$na\",\"revision\":$R,\"identities\":[300],\"policies\":{},\"updated\":1}" >/dev/null
	kv put /ciliate/status/nodes/$nb "{\"node\":\"$nb\",\"revision\":$R,\"identities\":[],\"policies\":{},\"updated\":1}" >/dev/null
	kv put /ciliate/status/nodes/$gone "{\"node\":\"$gone\",\"revision\":$R,\"identities\":[],\"policies\":{},\"updated\":1}" >/dev/null
	# written after every node status's revision: no node has seen it yet
	kv put /ciliate/identities/id/302 '{"id":302,"labels":{"k8s:app":"new"}}' >/dev/null

	# ---- election: two operators, one leader
	start_op "$a"
	pa=$op_pid
	why="no leader key within 5 s"
	check "$B: the first operator becomes leader" wait_for 5000 leader_is "$a"
	start_op "$b"
	pb=$op_pid
	wait_for 5000 grep -q "standing by" "$tmp/$b.log"
	sleep 1.2
	why="leader key: $(kv get /ciliate/operator/leader); became-leader lines: $(cat "$tmp/$a.log" "$tmp/$b.log" | grep -c 'became leader')"
	check "$B: two operators, exactly one leader ($a), the other stands by" \
		test "$(leader_id)" = "$a" -a "$(cat "$tmp/$a.log" "$tmp/$b.log" | grep -c 'became leader')" -eq 1 \
		-a "$(grep -c 'standing by: the leader is '"$a" "$tmp/$b.log")" -eq 1
	why="pidfile $(cat "$tmp/$a.pid" 2>/dev/null) vs $pa"
	check "$B: --pidfile holds the operator's pid" test "$(cat "$tmp/$a.pid" 2>/dev/null)" = "$pa"
	wait_for 5000 present /ciliate/operator/status
	st=$(run "$CLI" status --store "$STORE" 2>&1)
	why="$(grep -E '^(Store|Operator)' <<<"$st")"
	check "$B: ciliate status shows the leader and its health" \
		grep -qE "^Operator: leader $a \(since [0-9]+s\), healthy, last pass [0-9]+s ago" <<<"$st"
	js=$(run "$CLI" status --store "$STORE" -o json 2>/dev/null)
	why="$(jq -c .operator <<<"$js" 2>&1)"
	check "$B: ciliate status -o json has the operator object" \
		test "$(jq -r '[.operator.leader, .operator.healthy, (.operator.lastPass|type), .operator.leaseTTL] | join(",")' <<<"$js" 2>/dev/null)" = "$a,true,number,3"

	# ---- policy status: one node at the object's revision, one older
	cat >"$tmp/np.yaml" <<-EOF
		apiVersion: networking.k8s.io/v1
		kind: NetworkPolicy
		metadata:
		  name: allow-web
		  namespace: default
		spec:
		  podSelector:
		    matchLabels:
		      app: web
		  policyTypes: [Ingress]
		  ingress:
		  - from:
		    - podSelector:
		        matchLabels:
		          app: client
	EOF
	run "$CLI" apply -f "$tmp/np.yaml" --store "$STORE" >"$tmp/apply.log" 2>&1
	M=$(kv modrev $pol)
	kv put /ciliate/status/nodes/$na "{\"node\":\"$na\",\"revision\":$R,\"identities\":[300],\"policies\":{\"NetworkPolicy/default/allow-web\":$M},\"updated\":2}" >/dev/null
	kv put /ciliate/status/nodes/$nb "{\"node\":\"$nb\",\"revision\":$R,\"identities\":[],\"policies\":{\"NetworkPolicy/default/allow-web\":$((M - 1))},\"updated\":2}" >/dev/null
	want="{\"revision\":$M,\"nodes\":2,\"enforcing\":1,\"byRevision\":{\"$((M - 1))\":1,\"$M\":1}}"
	why="want $want, got $(kv get /ciliate/status/policies/NetworkPolicy/default/allow-web 2>&1) (apply: $(tail -2 "$tmp/apply.log"))"
	check "$B: policy status: enforcing 1 of 2 nodes, byRevision" \
		wait_for 5000 pstatus_is /ciliate/status/policies/NetworkPolicy/default/allow-web "$want"
	run "$CLI" delete -f "$tmp/np.yaml" --store "$STORE" >>"$tmp/apply.log" 2>&1
	why="$(kv get /ciliate/status/policies/NetworkPolicy/default/allow-web 2>&1)"
	check "$B: policy status key removed with its policy" \
		wait_for 5000 absent /ciliate/status/policies/NetworkPolicy/default/allow-web

	# ---- identity GC and node GC under the first leader
	why="$(grep identity "$tmp/$a.log")"
	check "$B: the unused identity 301 is collected after the grace" \
		wait_for 8000 absent /ciliate/identities/id/301
	check "$B: ... and logged" grep -qE "identity 301 collected \(unused for [0-9]+ s\)" "$tmp/$a.log"
	why="$(kv list /ciliate/identities/ 2>&1)"
	check "$B: identity 300 (listed by a node) stays" present /ciliate/identities/id/300
	check "$B: identity 302 (newer than the nodes' status revision) stays" present /ciliate/identities/id/302
	why="$(kv list /ciliate/ 2>&1 | grep "$gone")"
	check "$B: the departed node $gone is released (registry, claim, IPAM, status)" \
		wait_for 8000 bash -c "! { $(printf '%q ' "${RUN[@]}" "$KV" "$STORE") list /ciliate/ | grep -q '$gone'; }"
	check "$B: ... and logged with its pod CIDR and IPAM records" \
		grep -qE "node $gone released \(pod CIDR 10.244.9.0/24, 2 IPAM records\): no heartbeat for [0-9]+ s" "$tmp/$a.log"
	why="$(kv list /ciliate/ 2>&1 | grep "$na")"
	check "$B: the node with a heartbeat ($na) is kept" \
		bash -c "$(printf '%q ' "${RUN[@]}" "$KV" "$STORE") list /ciliate/ >'$tmp/keys' &&
			grep -q '^/ciliate/nodes/$na ' '$tmp/keys' && grep -q '^/ciliate/ipam/$na ' '$tmp/keys' &&
			grep -q '^/ciliate/podcidrs/10.244.0.0-24 ' '$tmp/keys' && grep -q '^/ciliate/status/nodes/$na ' '$tmp/keys'"

	# ---- SIGKILL the leader: the standby takes over within TTL + 2 s
	t0=$(now_ms)
	kill -KILL "$pa"
	wait "$pa" 2>/dev/null
	why="leader after 5 s: $(leader_id)"
	check "$B: SIGKILL of the leader: the standby leads within TTL + 2 s" wait_for 5000 leader_is "$b"
	dt=$(($(now_ms) - t0))
	echo "    takeover after SIGKILL: $dt ms (lease TTL 3 s)"
	start_op "$c"
	pc=$op_pid
	# the new leader's grace runs from zero; give it more than a grace and an interval
	wait_for 5000 grep -q "standing by" "$tmp/$c.log"
	sleep 4
	why="$(kv list /ciliate/identities/ 2>&1); $(grep identity "$tmp/$b.log")"
	check "$B: no identity in use is collected across the leader kill (300, 302 stay)" \
		test -n "$(kv get /ciliate/identities/id/300)" -a -n "$(kv get /ciliate/identities/id/302)"
	check "$B: the new leader collected nothing" bash -c "! grep -q 'collected' '$tmp/$b.log'"
	wait_for 3000 bash -c "$(printf '%q ' "${RUN[@]}" "$KV" "$STORE") get /ciliate/operator/status | grep -q '\"leader\":\"$b\"'"
	st=$(run "$CLI" status --store "$STORE" 2>&1)
	why="$(grep -E '^Operator' <<<"$st")"
	check "$B: ciliate status shows the new leader" grep -qE "^Operator: leader $b \(since" <<<"$st"

	# ---- SIGTERM the leader: lease revoked, the standby leads at once, exit 0
	t0=$(now_ms)
	kill -TERM "$pb"
	why="leader after 1.5 s: $(leader_id)"
	check "$B: SIGTERM of the leader: the standby leads within 1.5 s" wait_for 1500 leader_is "$c"
	dt=$(($(now_ms) - t0))
	echo "    takeover after SIGTERM: $dt ms"
	wait "$pb"
	rc=$?
	why="exit $rc; $(tail -2 "$tmp/$b.log")"
	check "$B: the old leader exits 0 after revoking its lease" \
		test "$rc" -eq 0 -a "$(grep -c 'resigned: lease revoked' "$tmp/$b.log")" -eq 1
	check "$B: ... and removes its pidfile" test ! -e "$tmp/$b.pid"
	kill -TERM "$pc"
	wait "$pc"
	rc=$?
	why="exit $rc"
	check "$B: the last operator exits 0 on SIGTERM" test "$rc" -eq 0
	why="$(kv get /ciliate/operator/leader 2>&1)"
	check "$B: no leader key left" absent /ciliate/operator/leader
	st=$(run "$CLI" status --store "$STORE" 2>&1)
	why="$(grep -E '^Operator' <<<"$st")"
	check "$B: ciliate status says no leader is elected" grep -q "^Operator: no leader elected" <<<"$st"
	ops=()
	return 0
}

# ---- usage errors need no store
"$OPR" --lease-ttl 0 >/dev/null 2>&1
rc=$?
why="exit $rc"
check "usage: --lease-ttl 0 is refused with exit 2" test "$rc" -eq 2
why="$("$OPR" --help 2>&1 | head -2)"
check "--help names every flag" bash -c "'$OPR' --help | grep -q -- --identity-gc-grace && '$OPR' --help | grep -q -- --node-gc-timeout && '$OPR' --help | grep -q -- --store-ca"

# ---- the embedded store
B=file
RUN=()
STORE="file://$tmp/store?fsync=0"
suite_backend

# ---- etcd (a missing capability fails under CI=true, else it is a SKIP line)
etcd_missing() {
	if [ "${CI:-}" = true ]; then
		fail "etcd backend" "$1 (under CI=true this fails)"
	else
		echo "SKIP - etcd backend: $1 (under CI=true this fails)"
	fi
}
if [ "$(id -u)" -ne 0 ]; then
	etcd_missing "network namespaces need root"
elif ! command -v etcd >/dev/null || ! command -v nsenter >/dev/null; then
	etcd_missing "etcd (etcd-server) or nsenter is not installed (make deps installs them)"
elif ! ip netns add "$NS" 2>/dev/null; then
	etcd_missing "cannot create a network namespace"
else
	ns_made=true
	ip -n "$NS" link set lo up
	if etcd_start e1 "$tmp" "$NS"; then
		etcd_pid=$ETCD_PID
		B=etcd
		RUN=(nsenter --net="/run/netns/$NS")
		STORE="etcd://$ETCD_EP"
		suite_backend
	else
		fail "etcd: etcd_start" "etcd did not come up"
	fi
fi
