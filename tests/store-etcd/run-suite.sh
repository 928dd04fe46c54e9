#!/usr/bin/env bash
# The store's etcd v3 backend against a real etcd (Debian's etcd-server), all inside one
# network namespace this suite creates (cil-t-etcdPID), removed on any exit:
#   - etcd on that namespace's 127.0.0.1 (tests/lib/etcd.sh: free ports, scratch data dir,
#     stopped by pid), plus a second one serving https (--auto-tls);
#   - build/tests/test_store with CILIATE_TEST_ETCD: every store case on etcd (CRUD, CAS, txn,
#     watch from a revision, pollable fd, 4 writer processes + a watcher, leases expiring,
#     compaction -> -ESTALE) and the etcd-only ones (a dead first endpoint, a watch whose
#     endpoint dies mid-stream, one that comes back after a compaction, error mapping, TLS
#     with ?ca= against an --auto-tls etcd, client certificates against an etcd with
#     --client-cert-auth and an openssl-made CA);
#   - build/tests/test_identity_alloc, test_ipam_store, test_manifest_delete and
#     test_service_alloc with CILIATE_TEST_ETCD: the identity allocation, IPAM, `ciliate apply`
#     / `delete -f` (every kind, deleted by name) and Service allocation (kept, rejected,
#     8 concurrent applies) cases on etcd (they run on the embedded store in tests/run-all.sh);
#   - the CLI's --store-ca/--store-cert/--store-key against the client-certificate etcd;
#   - two ciliate-agents on etcd, the second in a second namespace (cil-t-etcdPID-b, a veth
#     between the two: the nodes' addresses 192.0.2.1/.2) through a relay, its first
#     endpoint dead: both register in etcd and get different pod CIDRs, `ciliate status`
#     reports the etcd store and the agents, `ciliate apply -f` / `delete -f` write to etcd
#     and both agents' caches follow (storeRevision reaches the store's), also across an
#     etcd compaction.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
for b in bin/ciliate bin/ciliate-agent tests/test_store tests/test_identity_alloc tests/test_ipam_store \
	tests/test_manifest_delete tests/test_service_alloc; do
	if [ ! -x "$build/$b" ]; then
		echo "FAIL: $build/$b is missing (run make first)"
		exit 1
	fi
done
build=$(cd "$build" && pwd)
CLI=$build/bin/ciliate
AGENT=$build/bin/ciliate-agent
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: network namespaces and BPF need root"
	exit 77
fi
for t in etcd etcdctl ip nsenter python3 curl jq; do
	if ! command -v $t >/dev/null; then
		echo "SKIP: $t is not installed (make deps installs etcd-server, etcd-client, curl, jq)"
		exit 77
	fi
done

. tests/lib/suite.sh
. tests/lib/etcd.sh
passed=0
failed=0
why=""
tag="cil-t-etcd$$"
NS=$tag
NS2=$tag-b
NODE=$tag
NODE2=$tag-b
tmp=""
agent_pid="" agent2_pid="" relay_pid=""
etcd1="" etcd2="" etcd3=""

teardown() {
	local p i alive ns n
	for p in $agent_pid $agent2_pid $relay_pid; do
		kill -TERM "$p" 2>/dev/null
	done
	for i in $(seq 50); do
		alive=0
		for p in $agent_pid $agent2_pid $relay_pid; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for p in $agent_pid $agent2_pid $relay_pid; do
		kill -KILL "$p" 2>/dev/null
	done
	agent_pid="" agent2_pid="" relay_pid=""
	if [ -n "$tmp" ]; then
		etcd_stop "$etcd1" "$tmp" e1
		etcd_stop "$etcd2" "$tmp" e2
		etcd_stop "$etcd3" "$tmp" e3
	fi
	etcd1="" etcd2="" etcd3=""
	# safety net: anything still inside our namespaces was started by this suite
	for ns in "$NS" "$NS2"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	# the nodes' pinned maps and state dirs
	for n in "$NODE" "$NODE2"; do
		if [ -d "/sys/fs/bpf/ciliate/$n" ]; then
			rm -f "/sys/fs/bpf/ciliate/$n"/* 2>/dev/null
			rmdir "/sys/fs/bpf/ciliate/$n" 2>/dev/null
		fi
		rm -rf "/run/ciliate/$n"
	done
	rmdir /sys/fs/bpf/ciliate 2>/dev/null
	rmdir /run/ciliate 2>/dev/null
	[ -n "$tmp" ] && rm -rf "$tmp"
	tmp=""
}
finish() {
	if [ "$failed" -ne 0 ] && [ -n "$tmp" ]; then
		for f in agent.log agent2.log e1.log; do
			[ -f "$tmp/$f" ] && { echo "--- $f (last 30 lines)"; tail -30 "$tmp/$f"; }
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
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- set-up: the namespace and two etcds --------------------------------------------------
if ! ip netns add "$NS" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces here"
	trap - EXIT
	exit 77
fi
sys ip -n "$NS" link set lo up
tmp=$(mktemp -d /tmp/ciliate-t-store-etcd.XXXXXX)
t0=$(now_ms)
sys etcd_start e1 "$tmp" "$NS"
etcd1=$ETCD_PID EP=$ETCD_EP
sys etcd_start e2 "$tmp" "$NS" --tls
etcd2=$ETCD_PID EP_TLS=$ETCD_EP CA=$ETCD_CA
sys etcd_start e3 "$tmp" "$NS" --mtls
etcd3=$ETCD_PID EP_MTLS=$ETCD_EP PKI=$ETCD_PKI
echo "etcd up in $(($(now_ms) - t0)) ms: $EP (pid $etcd1), https $EP_TLS (pid $etcd2), https with client certificates $EP_MTLS (pid $etcd3), netns $NS"
STORE="etcd://$EP"
ctl() { in_ns env ETCDCTL_API=3 etcdctl --endpoints "$EP" --command-timeout=5s "$@"; }

# ---- the store tests on etcd --------------------------------------------------------------
t0=$(now_ms)
in_ns env CILIATE_TEST_ETCD="$EP" CILIATE_TEST_ETCD_TLS="$EP_TLS" CILIATE_TEST_ETCD_CA="$CA" \
	CILIATE_TEST_ETCD_MTLS="$EP_MTLS" CILIATE_TEST_ETCD_PKI="$PKI" \
	timeout 200 "$build/tests/test_store" >"$tmp/test_store.log" 2>&1
rc=$?
grep -E "^\[  (PASSED|FAILED)|etcd\)|endpoints dead|MiB value|without the CA|client certificate:|after compaction" \
	"$tmp/test_store.log" | sed 's/^/    /'
why="rc=$rc: $(grep -E "FAILED|Error|error" "$tmp/test_store.log" | head -5)"
check "test_store against etcd ($(($(now_ms) - t0)) ms)" test "$rc" -eq 0
why="$(grep -c "(etcd only" "$tmp/test_store.log") etcd-only cases did not run"
check "the etcd-only cases ran" test "$(grep -c "(etcd only" "$tmp/test_store.log")" -eq 0
why="the TLS case did not run: $(grep -A2 test_etcd_tls "$tmp/test_store.log" | head -3)"
check "TLS case ran (https with ?ca=, refused without)" grep -q "without the CA" "$tmp/test_store.log"
why="the client-certificate case did not run"
check "client certificates (cert=, key=, and \$CILIATE_STORE_CA/CERT/KEY) ran" \
	grep -q "no client certificate:" "$tmp/test_store.log"

# ---- the other store unit tests on etcd ----------------------------------------------------
# test_identity_alloc (identity allocation by CAS, two handles and two processes, release, two
# agents' caches), test_ipam_store (create-only IPAM keys, stale caches), test_manifest_delete
# (`ciliate apply -f` of every kind, `delete -f` by name) and test_service_alloc (`ciliate
# apply` keeping Service allocations, 8 concurrent applies) open etcd://$EP instead of a
# temporary directory when CILIATE_TEST_ETCD is set (the last two pass it to the CLI's
# --store), deleting every key under /ciliate/ before each case; what the last case wrote
# stays, which shows they used etcd (test_manifest_delete deletes what it applied: etcd's
# history at an earlier revision holds it).
store_rev() { ctl endpoint status -w json 2>/dev/null | jq -r '.[0].Status.header.revision // empty'; }
for t in test_identity_alloc test_ipam_store test_manifest_delete test_service_alloc; do
	t0=$(now_ms)
	rev0=$(store_rev)
	in_ns env CILIATE_TEST_ETCD="$EP" timeout 120 "$build/tests/$t" >"$tmp/$t.log" 2>&1
	rc=$?
	why="rc=$rc: $(grep -E "FAILED|Error|error|fail" "$tmp/$t.log" | head -5)"
	check "$t against etcd: $(grep -oE '[0-9]+ test\(s\) run' "$tmp/$t.log") ($(($(now_ms) - t0)) ms)" \
		bash -c '[ "$1" -eq 0 ] && grep -q "^\[  PASSED  \]" "$2" && ! grep -q "^\[  FAILED  \]" "$2"' _ "$rc" "$tmp/$t.log"
	case $t in
	test_identity_alloc) k=/ciliate/identities/id/ ;;
	test_ipam_store) k=/ciliate/ipam/node-1 ;;
	test_manifest_delete)
		# its 10 objects (9 kinds + ConfigMap default/d) were in etcd before the one delete
		# txn, and are gone now: the newest earlier revision that holds them
		rev1=$(store_rev) held="" at=""
		for ((r = rev1 - 1; r > ${rev0:-0} && r >= rev1 - 20; r--)); do
			held=$(ctl get --prefix --keys-only --rev="$r" /ciliate/objects/ 2>&1 | grep -v '^$')
			if [ "$(grep -c . <<<"$held")" -ge 10 ]; then
				at=$r
				break
			fi
		done
		why="revisions $rev0..$rev1, at ${at:-none}: $(head -3 <<<"$held")"
		check "$t applied its objects to etcd (all 10 at revision ${at:-?}, e.g. ConfigMap/default/d)" \
			bash -c '[ -n "$1" ] && grep -q "^/ciliate/objects/ConfigMap/default/d$" <<<"$2" &&
				grep -q "^/ciliate/objects/CiliumClusterwideNetworkPolicy/" <<<"$2"' _ "$at" "$held"
		why="$(ctl get --prefix --keys-only /ciliate/objects/ 2>&1 | head -3)"
		check "$t deleted them from etcd (none left at revision $rev1)" \
			bash -c '[ -z "$(grep -v "^$" <<<"$1")" ]' _ "$(ctl get --prefix --keys-only /ciliate/objects/ 2>&1)"
		continue
		;;
	test_service_alloc) k=/ciliate/objects/Service/x/s ;; # the 8 concurrent applies' Services
	esac
	why="no key under $k in etcd: $(ctl get --prefix --keys-only /ciliate/ 2>&1 | head -3)"
	check "$t wrote its records to etcd ($k...)" \
		bash -c '[ -n "$(grep -v "^$" <<<"$1")" ]' _ "$(ctl get --prefix --keys-only "$k" 2>&1)"
done
ctl del --prefix /ciliate/ >/dev/null 2>&1

# ---- the CLI's --store-ca/--store-cert/--store-key (client certificates) -----------------
MSTORE="etcd://$EP_MTLS"
tlsopts=(--store-ca "$PKI/ca.pem" --store-cert "$PKI/client.pem" --store-key "$PKI/client-key.pem")
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: mtls}\n' >"$tmp/ns.yaml"
out=$(in_ns timeout 20 "$CLI" apply -f "$tmp/ns.yaml" --store "$MSTORE" "${tlsopts[@]}" 2>&1)
why="$out"
check "ciliate apply --store-ca/--store-cert/--store-key writes over TLS with a client certificate" test $? -eq 0
out=$(in_ns timeout 20 "$CLI" status --node "$NODE-none" --store "$MSTORE" "${tlsopts[@]}" -o json 2>/dev/null)
why="${out:0:300}"
check "ciliate status --store-ca=... reads it back" \
	bash -c 'jq -e ".store.revision > 0 and (.store.objects | tostring | test(\"Namespace\"))" <<<"$1" >/dev/null' _ "$out"
out=$(in_ns timeout 20 "$CLI" status --node "$NODE-none" --store "$MSTORE" --store-ca "$PKI/ca.pem" -o json 2>/dev/null)
why="${out:0:300}"
check "without the client certificate: a TLS error naming the endpoint" \
	bash -c 'jq -e ".store.error | test(\"TLS\") and test(\"$2\")" <<<"$1" >/dev/null' _ "$out" "$EP_MTLS"

# ---- two agents and the CLI on etcd --------------------------------------------------------
# two nodes: the default Cluster gives the first registered node 192.0.2.1 and the second
# 192.0.2.2 (registration order), here the two ends of a veth between the namespaces. The
# second node reaches etcd through a relay on 192.0.2.1 (etcd itself stays on loopback),
# given after a dead first endpoint.
sys ip netns add "$NS2"
sys ip -n "$NS2" link set lo up
sys ip -n "$NS" link add fabric0 type veth peer name fabric0 netns "$NS2"
sys ip -n "$NS" addr add 192.0.2.1/24 dev fabric0
sys ip -n "$NS2" addr add 192.0.2.2/24 dev fabric0
sys ip -n "$NS" link set fabric0 up
sys ip -n "$NS2" link set fabric0 up
sys ip -n "$NS" route add default dev fabric0
sys ip -n "$NS2" route add default dev fabric0
in_ns socat "TCP-LISTEN:${EP##*:},bind=192.0.2.1,reuseaddr,fork" "TCP:$EP" 2>/dev/null &
relay_pid=$!
STORE2="etcd://127.0.0.1:1,192.0.2.1:${EP##*:}"

status_json() { in_ns timeout 20 "$CLI" status --node "$NODE" --store "$STORE" -o json 2>/dev/null; }
t0=$(now_ms)
in_ns "$AGENT" --node "$NODE" --store "$STORE" --prometheus-serve-addr off 2>>"$tmp/agent.log" &
agent_pid=$!
up=0
for i in $(seq 150); do
	if status_json >/dev/null; then
		up=1
		break
	fi
	kill -0 "$agent_pid" 2>/dev/null || break
	sleep 0.1
done
why="$(tail -3 "$tmp/agent.log")"
check "ciliate-agent --store $STORE is up ($(($(now_ms) - t0)) ms)" test "$up" -eq 1
[ "$up" -eq 1 ] || exit 1

# the second node, once the first has registered (registration order decides the addresses)
t0=$(now_ms)
nsenter --net="/run/netns/$NS2" "$AGENT" --node "$NODE2" --store "$STORE2" --prometheus-serve-addr off \
	2>>"$tmp/agent2.log" &
agent2_pid=$!
status2_json() {
	nsenter --net="/run/netns/$NS2" timeout 20 "$CLI" status --node "$NODE2" --store "$STORE2" -o json 2>/dev/null
}
up=0
for i in $(seq 150); do
	if status2_json >/dev/null; then
		up=1
		break
	fi
	kill -0 "$agent2_pid" 2>/dev/null || break
	sleep 0.1
done
why="$(tail -3 "$tmp/agent2.log")"
check "a second agent in another namespace, --store $STORE2 (first endpoint dead), is up ($(($(now_ms) - t0)) ms)" \
	test "$up" -eq 1
[ "$up" -eq 1 ] || exit 1
cidr1=$(status_json | jq -r '.agents[0].podCIDR')
cidr2=$(status2_json | jq -r '.agents[0].podCIDR')
why="pod CIDRs: $cidr1, $cidr2"
check "the two agents took different pod CIDRs through etcd (10.244.0.0/24, 10.244.1.0/24)" \
	test "$cidr1 $cidr2" = "10.244.0.0/24 10.244.1.0/24"

why="$(ctl get --prefix /ciliate/nodes/ 2>&1 | head -4)"
check "the agent registered its node in etcd (/ciliate/nodes/$NODE)" \
	bash -c "ETCDCTL_API=3 nsenter --net=/run/netns/$NS etcdctl --endpoints $EP get --keys-only /ciliate/nodes/$NODE | grep -q $NODE"

st=$(status_json)
why="status: ${st:0:400}"
check "ciliate status names the etcd store and the agent" \
	bash -c 'jq -e --arg u "$1" ".store.uri == \$u and (.store.revision > 0) and .agents[0].ok == true" <<<"$2" >/dev/null' _ "$STORE" "$st"
txt=$(in_ns timeout 20 "$CLI" status --node "$NODE" --store "$STORE" 2>&1)
why="${txt:0:300}"
check "ciliate status (text) shows the etcd store's revision" grep -q "Store:   $STORE, revision" <<<"$txt"

cat >"$tmp/objs.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: etcdt}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: etcdt, labels: {app: web}}
spec:
  nodeName: $NODE
  containers: [{name: c, ports: [{containerPort: 80, protocol: TCP}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: etcdt}
spec:
  selector: {app: web}
  ports: [{port: 80, protocol: TCP}]
EOF

# waits (5 s at most) until both agents' storeRevision reach the store's revision
agent_caught_up() {
	local s s2 i
	for i in $(seq 50); do
		s=$(status_json)
		s2=$(status2_json)
		if jq -e '.agents[0].storeRevision == .store.revision' <<<"$s" >/dev/null 2>&1 &&
			jq -e --argjson r "$(jq .store.revision <<<"$s")" '.agents[0].storeRevision >= $r' \
				<<<"$s2" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	why="store $(jq -c .store.revision <<<"$s" 2>&1), agents $(jq -c .agents[0].storeRevision <<<"$s" 2>&1) $(jq -c .agents[0].storeRevision <<<"$s2" 2>&1)"
	return 1
}

out=$(in_ns timeout 20 "$CLI" apply -f "$tmp/objs.yaml" --store "$STORE" 2>&1)
why="$out"
check "ciliate apply -f writes to etcd" test $? -eq 0
why="$(ctl get --prefix --keys-only /ciliate/objects/ 2>&1 | grep -v '^$' | head)"
check "the objects are in etcd (Pod, Service, Namespace keys)" \
	bash -c '[ "$(grep -c "etcdt" <<<"$1")" -ge 3 ]' _ "$(ctl get --prefix --keys-only /ciliate/objects/ 2>&1)"
t0=$(now_ms)
check "both agents' caches follow the apply through their etcd watches" agent_caught_up
echo "    (caught up in $(($(now_ms) - t0)) ms)"
st=$(status_json)
why="objects: $(jq -c .store.objects <<<"$st")"
check "ciliate status counts the applied objects from etcd" \
	bash -c 'jq -e ".store.objects | tostring | test(\"Pod\") and test(\"Service\")" <<<"$1" >/dev/null' _ "$st"

# a compaction at the current revision: the agent's watch is in sync, so it keeps going
rev=$(jq -r .store.revision <<<"$st")
out=$(ctl compaction "$rev" 2>&1)
why="$out"
check "etcdctl compaction $rev" test $? -eq 0

out=$(in_ns timeout 20 "$CLI" delete -f "$tmp/objs.yaml" --store "$STORE" 2>&1)
why="$out"
check "ciliate delete -f deletes from etcd" test $? -eq 0
why="$(ctl get --prefix --keys-only /ciliate/objects/ 2>&1 | grep etcdt)"
check "the objects are gone from etcd" bash -c '! grep -q etcdt <<<"$1"' _ "$(ctl get --prefix --keys-only /ciliate/objects/ 2>&1)"
check "both agents follow the delete (after the compaction)" agent_caught_up
why="$(cat "$tmp/agent.log" "$tmp/agent2.log" | grep -i store | grep -iE "error|fail|unreachable" | head -3)"
check "the agents logged no store errors" \
	bash -c '! cat "$1" "$2" | grep -i "store" | grep -qiE "error|fail|unreachable"' _ "$tmp/agent.log" "$tmp/agent2.log"
