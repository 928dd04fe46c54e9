#!/usr/bin/env bash
# Identity suite: security identities allocated through the store, seen from a live 2-node
# simulated cluster (ciliate-sim up; namespaces cil-idnNNNN-*, removed by ciliate-sim down on
# any exit). Checks:
#   - `ciliate identity list` from the store and from each node's agent agree: the reserved
#     identities 1-7, one cluster identity (>= 256) per label set, the same on both nodes;
#   - `ciliate endpoint list -o json` shows each endpoint's identity, labels and the
#     POLICY (ingress/egress) ENFORCEMENT values;
#   - relabel (re-applying a Pod with new labels, `ciliate apply`): within 1 s of the apply
#     starting, EVERY agent has the pod on one new identity (polled through each agent's
#     socket), and the policy follows (a probe that was denied is now allowed);
#   - an identity no pod uses any more is released after the grace period
#     (CILIATE_IDENTITY_GC_GRACE=2) and not before.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
for b in ciliate ciliate-sim ciliate-agent ciliate-cni ciliate-echo ciliate-probe; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL: $build/bin/$b is missing (run make first)"
		exit 1
	fi
done
build=$(cd "$build" && pwd)
CLI=$build/bin/ciliate
SIM=$build/bin/ciliate-sim
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: network namespaces and BPF need root"
	exit 77
fi
if ! command -v jq >/dev/null; then
	echo "SKIP: jq is not installed"
	exit 77
fi

. tests/lib/suite.sh
passed=0
failed=0
why=""
tag="idn$((${$} % 10000))"
tmp=$(mktemp -d /tmp/ciliate-t-identity.XXXXXX)
STORE="/run/ciliate/sim/$tag/store"
SOCK1="/run/ciliate/cil-$tag-node-1/agent.sock"
SOCK2="/run/ciliate/cil-$tag-node-2/agent.sock"

finish() {
	"$SIM" down "$tag" >/dev/null 2>&1
	rm -rf "$tmp"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap finish EXIT INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

pod_doc() { # NAME NODE LABELS
	cat <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: idn, labels: {$3}}
spec:
  nodeName: $2
  containers:
  - name: server
    ports: [{containerPort: 80, protocol: TCP}]
EOF
}

{
	cat <<EOF
apiVersion: sim.ciliate.dev/v1
kind: Cluster
metadata: {name: $tag}
spec:
  nodes: [{name: node-1}, {name: node-2}]
  routing: tunnel
  podCIDR: 10.244.0.0/16
  underlayCIDR: 192.0.2.0/24
---
apiVersion: v1
kind: Namespace
metadata: {name: idn}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-v2, namespace: idn}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {tier: v2}}}]
EOF
	pod_doc a node-1 "app: web"
	pod_doc b node-2 "app: web"
	pod_doc c node-2 "app: db"
} >"$tmp/cluster.yaml"

if ! CILIATE_IDENTITY_GC_GRACE=2 "$SIM" up "$tmp/cluster.yaml" >"$tmp/up.log" 2>&1; then
	if grep -q "Operation not permitted\|cannot create" "$tmp/up.log"; then
		echo "SKIP: the simulator cannot create its namespaces here: $(tail -1 "$tmp/up.log")"
		trap - EXIT
		"$SIM" down "$tag" >/dev/null 2>&1
		rm -rf "$tmp"
		exit 77
	fi
	fail "ciliate-sim up" "$(tail -5 "$tmp/up.log")"
	exit 1
fi
pass "2-node cluster up (tag $tag)"

# the identity of pod REF as agent SOCK sees it ("" if none)
agent_id() {
	"$CLI" identity list --socket "$1" -o json 2>/dev/null |
		jq -r --arg p "$2" '[.[] | select(.pods | index($p)) | .id] | first // ""'
}
store_id() { # the store's identity for a label ("k8s:app=web"), with the namespace labels
	"$CLI" identity list --store "$STORE" -o json |
		jq -r --arg l "$1" --arg l2 "${2:-}" '[.[] | select(.scope == "cluster") |
			select(.labels | index($l)) | select($l2 == "" or (.labels | index($l2))) |
			select($l2 != "" or (.labels | map(startswith("k8s:tier=")) | any | not)) |
			.id] | first // ""'
}
probe() { # FROM-POD IP: one TCP attempt to port 80 with a 300 ms timeout
	"$SIM" exec -c "$tag" "idn/$1" -- "$build/bin/ciliate-probe" --to "$2" --port 80 \
		--timeout-ms 300 >/dev/null 2>&1
}

# ---- identities before the relabel ---------------------------------------------------------
ids=$("$CLI" identity list --store "$STORE" -o json)
check "store: reserved identities 1-7 listed" \
	test "$(jq -c '[.[] | select(.scope == "reserved") | .id]' <<<"$ids")" = "[1,2,3,4,5,6,7]"
web=$(store_id "k8s:app=web")
db=$(store_id "k8s:app=db")
why="web=$web db=$db: $ids"
check "store: one cluster identity per label set, from 256" \
	test -n "$web" -a -n "$db" -a "${web:-0}" -ge 256 -a "${db:-0}" -ge 256 -a "$web" != "$db"
for s in "$SOCK1" "$SOCK2"; do
	n=$(basename "$(dirname "$s")")
	why="$(agent_id "$s" idn/a) $(agent_id "$s" idn/b) $(agent_id "$s" idn/c)"
	check "$n: pods a, b on $web and c on $db, as in the store" \
		test "$(agent_id "$s" idn/a) $(agent_id "$s" idn/b) $(agent_id "$s" idn/c)" = \
		"$web $web $db"
done
table=$("$CLI" identity list --socket "$SOCK1")
why="$table"
check "identity list table: ID and LABELS columns, one label per line" \
	grep -Eq "^$web +k8s:app=web +idn/a" <<<"$table"

eps=$("$CLI" endpoint list --socket "$SOCK2" -o json)
why="$eps"
check "endpoint list -o json: c has ingress enforcement Enabled, egress Disabled" \
	test "$(jq -r '.[] | select(.pod == "idn/c") |
		"\(.identity) \(.policyIngressEnforcement) \(.policyEgressEnforcement)"' \
		<<<"$eps")" = "$db Enabled Disabled"
check "endpoint list -o json: b has both Disabled and its identity's labels" \
	test "$(jq -r '.[] | select(.pod == "idn/b") |
		"\(.policyIngressEnforcement) \(.policyEgressEnforcement) \(.labels | index("k8s:app=web") != null)"' \
		<<<"$eps")" = "Disabled Disabled true"
table=$("$CLI" endpoint list --socket "$SOCK2")
why="$table"
check "endpoint list table: POLICY (ingress)/(egress) ENFORCEMENT columns" \
	grep -q "POLICY (ingress) *POLICY (egress)" <<<"$(head -1 <<<"$table")"
check "endpoint list table: Enabled for c" grep -Eq "idn/c +[0-9.]+ +Enabled +Disabled" \
	<<<"$table"

c_ip=$(jq -r '.[] | select(.pod == "idn/c") | .ip' <<<"$eps")
why="c_ip=$c_ip"
check "a -> c denied before the relabel (c admits tier=v2 only)" eval '! probe a "$c_ip"'

# ---- relabel: every agent within 1 s --------------------------------------------------------
pod_doc a node-1 "app: web, tier: v2" >"$tmp/relabel.yaml"
t0=$(now_ms)
"$CLI" apply -f "$tmp/relabel.yaml" --store "$STORE" >"$tmp/apply.log" 2>&1
apply_rc=$?
why=$(cat "$tmp/apply.log")
check "ciliate apply of a with tier=v2" test "$apply_rc" -eq 0
ms=-1
for i in $(seq 400); do
	n1=$(agent_id "$SOCK1" idn/a)
	n2=$(agent_id "$SOCK2" idn/a)
	if [ -n "$n1" ] && [ "$n1" = "$n2" ] && [ "$n1" != "$web" ]; then
		ms=$(($(now_ms) - t0))
		break
	fi
	[ $(($(now_ms) - t0)) -gt 5000 ] && break
done
v2=$(store_id "k8s:app=web" "k8s:tier=v2")
echo "     'ciliate apply' started -> both agents have idn/a on identity $n1: ${ms} ms"
why="node-1 says $n1, node-2 says $n2, store says $v2, old $web"
check "relabel: every agent has a on the new identity within 1 s (${ms} ms)" \
	test "$ms" -ge 0 -a "$ms" -le 1000
check "relabel: the new identity is the store's record for the new labels" \
	test -n "$v2" -a "$n1" = "$v2"
why="$(agent_id "$SOCK1" idn/b) $(agent_id "$SOCK2" idn/b)"
check "relabel: b keeps its identity on both nodes" \
	test "$(agent_id "$SOCK1" idn/b) $(agent_id "$SOCK2" idn/b)" = "$web $web"
eps=$("$CLI" endpoint list --socket "$SOCK1" -o json)
why="$eps"
check "relabel: a's endpoint on node-1 carries the new identity" \
	test "$(jq -r '.[] | select(.pod == "idn/a") | .identity' <<<"$eps")" = "$v2"
ok=0
for i in $(seq 10); do
	if probe a "$c_ip"; then ok=1; break; fi
done
check "relabel: a -> c now allowed (the policy follows the labels)" test $ok -eq 1

# ---- garbage collection ---------------------------------------------------------------------
pod_doc a node-1 "app: web, tier: v3" >"$tmp/relabel3.yaml"
"$CLI" apply -f "$tmp/relabel3.yaml" --store "$STORE" >/dev/null 2>&1
has_v2() { "$CLI" identity list --store "$STORE" -o json | jq -e --argjson id "$v2" \
	'[.[] | select(.id == $id)] | length == 1' >/dev/null; }
check "GC: the unused identity $v2 stays during the grace period" has_v2
t0=$(now_ms)
gone=-1
for i in $(seq 100); do
	if ! has_v2; then
		gone=$(($(now_ms) - t0))
		break
	fi
	sleep 0.1
done
echo "     identity $v2 released ${gone} ms after the relabel that freed it (grace 2 s)"
check "GC: released after the grace period (within 6 s)" test "$gone" -ge 0
check "GC: identities still in use stay" test "$(store_id "k8s:app=web")" = "$web"
