#!/usr/bin/env bash
# ciliate observe / ciliate monitor suite (docs/OBSERVABILITY.md, CLI).
#   1. Against stand-in agents (tests/observe/fake_agent.py, no root needed): the filter spec
#      the CLI sends, the merge of two nodes' flows by time then node then sequence, --last
#      across nodes, lost events shown in every format (records and the response's "lost"),
#      -f printing streamed lines as received and stopping at --max-flows, usage errors
#      (exit 2, the flag named) and no agent answering (exit 1).
#   2. Against a real cluster (tests/observe/cluster.yaml with `ciliate-sim up`: shop/client
#      on node-1 may reach shop/web on node-2 on TCP 80 only): one denied probe (port 81) and
#      one allowed (port 80) from shop/client while `ciliate monitor` and `ciliate observe -f`
#      listen; then the drop line (Policy denied, identities, file lxc.bpf.c:LINE), the policy
#      verdict and trace lines, the monitor -j object, the drop flow's JSON (pods, namespace,
#      labels, identities, POLICY_DENIED, node_name, event type, file), filters across both
#      nodes, --last, compact and table output, --html; then `ciliate-sim down` and nothing
#      left behind.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
CLI=$build/bin/ciliate
SIM=$build/bin/ciliate-sim
PROBE=$build/bin/ciliate-probe
PY=python3
FAKE=tests/observe/fake_agent.py
SCENARIO=tests/observe/cluster.yaml
TAG=observe
STATE_DIR=/run/ciliate/sim
CLIENT_IP=10.244.0.10 # status.podIP pinned in the scenario
WEB_IP=10.244.1.10
S1=/run/ciliate/cil-$TAG-node-1/agent.sock
S2=/run/ciliate/cil-$TAG-node-2/agent.sock

for b in ciliate ciliate-sim ciliate-agent ciliate-echo ciliate-probe; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL: $build/bin/$b is missing (run make first)"
		exit 1
	fi
done
if ! command -v "$PY" >/dev/null; then
	echo "SKIP: python3 is not installed (the suite's JSON checks and stand-in agents)"
	exit 77
fi

tmp=$(mktemp -d /tmp/ciliate-t-observe.XXXXXX)
passed=0
failed=0
start=$SECONDS
cluster_up=0
bg_pids=() # processes this suite started, stopped by pid
source tests/lib/suite.sh # pass / fail / check (cwd is the repository root)

stop_bg() {
	local p
	for p in "${bg_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${bg_pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	bg_pids=()
}

finish() {
	trap - EXIT INT TERM HUP
	stop_bg
	if [ "$cluster_up" = 1 ] || [ -e "$STATE_DIR/$TAG.json" ] ||
		ip netns list 2>/dev/null | grep -qE "^cil-$TAG-"; then
		"$SIM" down "$TAG" >/dev/null 2>&1
	fi
	rm -rf "$tmp"
	echo "suite time: $((SECONDS - start)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit "${final_rc:-0}"
	exit 1
}
trap 'echo "interrupted"; failed=$((failed + 1)); finish' INT TERM HUP
trap finish EXIT

# ---- helpers -------------------------------------------------------------------------------
# jcheck FILE PYEXPR: PYEXPR is true of `flows`, the JSON objects of FILE's lines
jcheck() {
	"$PY" - "$1" "$2" <<'EOF'
import json, sys
flows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)
EOF
}
# jget FILE PYEXPR: prints PYEXPR of `flows`
jget() {
	"$PY" - "$1" "$2" <<'EOF'
import json, sys
flows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(eval("(" + sys.argv[2] + ")"))
EOF
}
has() { grep -qE -- "$2" "$1"; }
count() { grep -cE -- "$2" "$1"; }
# wait_for FILE REGEX SECONDS: until a line of FILE matches (bounded)
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ---- 1. the CLI against stand-in agents ----------------------------------------------------
echo "# 1. the CLI against stand-in agents (at ${SECONDS}s)"
flow() { # NODE SEQ TIME VERDICT TYPE PORT: one wrapped flow x/a -> y/b
	local et='{"type":4}' extra='"trace_observation_point":"TO_ENDPOINT",'
	[ "$5" = drop ] && et='{"type":1,"sub_type":133}' &&
		extra='"drop_reason":133,"drop_reason_desc":"POLICY_DENIED","file":{"name":"lxc.bpf.c","line":89},'
	printf '{"flow":{"time":"%s","uuid":"%s/%s","verdict":"%s",%s"event_type":%s,' \
		"$3" "$1" "$2" "$4" "$extra" "$et"
	printf '"IP":{"source":"10.244.0.10","destination":"10.244.1.10","ipVersion":"IPv4"},'
	printf '"l4":{"TCP":{"source_port":41000,"destination_port":%s,"flags":{"SYN":true}}},' "$6"
	printf '"source":{"ID":10,"identity":256,"namespace":"x","pod_name":"a"},'
	printf '"destination":{"identity":257,"namespace":"y","pod_name":"b"},'
	printf '"node_name":"%s","traffic_direction":"EGRESS","is_reply":false,' "$1"
	printf '"interface":{"index":4,"name":"lxc00000001"},"Summary":"TCP Flags: SYN",'
	printf '"ciliate":{"seq":%s,"hook":"from-container","ct_state":"new"}},' "$2"
	printf '"node_name":"%s","time":"%s"}' "$1" "$3"
}
lost() { # NODE N TIME
	printf '{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":%s},' "$2"
	printf '"node_name":"%s","time":"%s"}' "$1" "$3"
}
fd=$tmp/fake
mkdir -p "$fd"
# node-a: a flow at :01, a lost_events record (2) at :02.5, a flow at :03, lost 5 in total
# node-b: flows at :02 and :03 (the same time as node-a's second: node order decides)
{
	printf '{"ok":true,"node":"node-a","flows":[%s,%s,%s],"lost":5,"next_seq":3}\n' \
		"$(flow node-a 1 2026-12-04T17:40:01Z DROPPED drop 80)" \
		"$(lost node-a 2 2026-12-04T17:40:02.5Z)" \
		"$(flow node-a 2 2026-12-04T17:40:03Z FORWARDED trace 80)"
} >"$fd/a.resp"
{
	printf '{"ok":true,"node":"node-b","flows":[%s,%s],"lost":0,"next_seq":8}\n' \
		"$(flow node-b 1 2026-12-04T17:40:02Z FORWARDED trace 8080)" \
		"$(flow node-b 7 2026-12-04T17:40:03Z DROPPED drop 80)"
} >"$fd/b.resp"
{
	flow node-a 3 2026-12-04T17:40:04Z FORWARDED trace 80
	echo
	lost node-a 1 2026-12-04T17:40:04.5Z
	echo
	flow node-a 4 2026-12-04T17:40:05Z FORWARDED trace 80
	echo
} >"$fd/a.stream"
{
	flow node-b 8 2026-12-04T17:40:04Z DROPPED drop 80
	echo
} >"$fd/b.stream"
echo '{"ok":false,"error":"the event pipeline is not running","code":"not-ready"}' >"$fd/bad.resp"
: >"$fd/none.stream"
for n in a b bad; do
	st=$fd/$n.stream
	[ -e "$st" ] || st=$fd/none.stream
	"$PY" "$FAKE" "$fd/$n.sock" "$fd/$n.resp" "$st" "$fd/$n.req" 2>>"$fd/fake.err" &
	bg_pids+=($!)
done
for n in a b bad; do
	for ((i = 0; i < 50; i++)); do [ -S "$fd/$n.sock" ] && break; sleep 0.1; done
done
FA="--socket $fd/a.sock --socket $fd/b.sock"

# shellcheck disable=SC2086
"$CLI" observe $FA -o json >"$tmp/f.json" 2>"$tmp/f.err"
rc=$?
why="exit $rc: $(head -2 "$tmp/f.err")"
check "fake: observe -o json exits 0" [ $rc -eq 0 ]
why="$(grep -oE '"uuid":"[^"]*"|"lost_events"' "$tmp/f.json" | tr '\n' ' ')"
check "fake: merged by time, then node, then sequence (lost record in place)" jcheck "$tmp/f.json" \
	"[f.get('flow',{}).get('uuid','lost') for f in flows] == ['node-a/1','node-b/1','lost','node-a/2','node-b/7']"
check "fake: -o json prints each record exactly as the agent sent it" \
	eval "grep -qxF '$(flow node-b 7 2026-12-04T17:40:03Z DROPPED drop 80)' '$tmp/f.json'"
why="$(cat "$tmp/f.err")"
check "fake: json: the lost events no record showed go to stderr (5 - 2 = 3 on node-a)" \
	grep -qx 'ciliate observe: EVENTS LOST: 3 events lost on node node-a' "$tmp/f.err"

# shellcheck disable=SC2086
"$CLI" observe $FA >"$tmp/f.compact" 2>&1
cat >"$tmp/f.compact.want" <<'WANT'
Dec  4 17:40:01.000: x/a:41000 (ID:256) -> y/b:80 (ID:257) Policy denied DROPPED (TCP Flags: SYN)
Dec  4 17:40:02.000: x/a:41000 (ID:256) -> y/b:8080 (ID:257) to-endpoint FORWARDED (TCP Flags: SYN)
EVENTS LOST: 2 events lost on node node-a
Dec  4 17:40:03.000: x/a:41000 (ID:256) -> y/b:80 (ID:257) to-endpoint FORWARDED (TCP Flags: SYN)
Dec  4 17:40:03.000: x/a:41000 (ID:256) -> y/b:80 (ID:257) Policy denied DROPPED (TCP Flags: SYN)
EVENTS LOST: 3 events lost on node node-a
WANT
why="$(diff "$tmp/f.compact.want" "$tmp/f.compact")"
check "fake: compact: merged lines, the lost_events record and the unshown lost count" \
	cmp -s "$tmp/f.compact.want" "$tmp/f.compact"

# shellcheck disable=SC2086
"$CLI" observe $FA -o table >"$tmp/f.table" 2>&1
why="$(cat "$tmp/f.table")"
check "fake: table: header with NODE" grep -qE \
	'^TIMESTAMP +NODE +SOURCE +DESTINATION +TYPE +VERDICT +SUMMARY$' "$tmp/f.table"
check "fake: table: a row per flow (4) and both lost lines" eval \
	"[ \$(grep -c '^Dec  4 ' '$tmp/f.table') -eq 4 ] && [ \$(grep -c '^EVENTS LOST: ' '$tmp/f.table') -eq 2 ]"
check "fake: table: row shape" grep -qE \
	'^Dec  4 17:40:03\.000 +node-b +x/a:41000 +y/b:80 +Policy denied +DROPPED +TCP Flags: SYN$' \
	"$tmp/f.table"

# shellcheck disable=SC2086
"$CLI" observe $FA --last 2 -o json >"$tmp/f.last" 2>/dev/null
why="$(grep -oE '"uuid":"[^"]*"|"lost_events"' "$tmp/f.last" | tr '\n' ' ')"
check "fake: --last 2 keeps the two newest flows of all nodes (and every lost record)" jcheck \
	"$tmp/f.last" "[f.get('flow',{}).get('uuid','lost') for f in flows] == ['lost','node-a/2','node-b/7']"

# the request: op, last, follow and the filter spec built from the flags
: >"$fd/a.req"
# shellcheck disable=SC2086
"$CLI" observe --socket "$fd/a.sock" --from-pod x/a --from-pod x/ --to-pod y/b --verdict DROPPED \
	--drop-reason POLICY_DENIED --protocol TCP --port 80 --port 8080 --type drop \
	--namespace y --node-name node-a --last 7 >/dev/null 2>&1
why="$(cat "$fd/a.req")"
check "fake: the request carries the filter spec (each flag a list, repeats OR-ed)" jcheck "$fd/a.req" \
	"flows[0] == {'op':'observe','since_seq':0,'last':7,'follow':False,'filter':{
	  'from_pod':['x/a','x/'],'to_pod':['y/b'],'verdict':['DROPPED'],
	  'drop_reason':['POLICY_DENIED'],'protocol':['TCP'],'port':[80,8080],'type':['drop'],
	  'namespace':['y'],'node':['node-a']}}"
: >"$fd/a.req"
"$CLI" observe --socket "$fd/a.sock" --since 5m --until 2026-12-04T18:00:00+01:00 >/dev/null 2>&1
why="$(cat "$fd/a.req")"
check "fake: --since DURATION becomes an RFC 3339 time, --until is normalised to UTC" jcheck "$fd/a.req" \
	"flows[0]['filter']['since'].endswith('Z') and flows[0]['filter']['until'] == '2026-12-04T17:00:00.000000000Z'"

: >"$fd/a.req"
"$CLI" observe --socket "$fd/a.sock" >/dev/null 2>&1
"$CLI" observe --socket "$fd/a.sock" --all >/dev/null 2>&1
"$CLI" observe --socket "$fd/a.sock" --since 1h >/dev/null 2>&1
why="$(cat "$fd/a.req")"
check "fake: a bare observe asks for the last 20 (hubble's default); --all and --since for all" \
	jcheck "$fd/a.req" "[r['last'] for r in flows] == [20, 0, 0]"
"$CLI" observe --socket "$fd/a.sock" --all --last 3 >/dev/null 2>"$tmp/usage.err"
rc=$?
why="exit $rc: $(cat "$tmp/usage.err")"
check "observe --all --last 3: usage error" [ $rc -eq 2 ]

# -f: the merged backlog, then streamed lines as received, until --max-flows
# shellcheck disable=SC2086
timeout 30 "$CLI" observe $FA -f --max-flows 6 --timeout 20 -o json >"$tmp/f.follow" 2>"$tmp/f.follow.err"
rc=$?
why="exit $rc: $(head -3 "$tmp/f.follow.err")"
check "fake: -f stops at --max-flows with exit 0" [ $rc -eq 0 ]
why="$(grep -oE '"uuid":"[^"]*"|"lost_events"' "$tmp/f.follow" | tr '\n' ' ')"
check "fake: -f: backlog merged first, then 2 streamed flows (6 flows in all)" jcheck "$tmp/f.follow" \
	"[f.get('flow',{}).get('uuid','lost') for f in flows][:5] == ['node-a/1','node-b/1','lost','node-a/2','node-b/7'] and sum('flow' in f for f in flows) == 6"
check "fake: -f: streamed lines printed byte for byte" \
	grep -qxF "$(flow node-a 3 2026-12-04T17:40:04Z FORWARDED trace 80)" "$tmp/f.follow"
check "fake: the follow request asked to follow" grep -q '"follow":true' "$fd/a.req"

# monitor: follows; the backlog is not printed; streamed lost records are shown
timeout 30 "$CLI" monitor --socket "$fd/a.sock" --max-events 2 --timeout 20 >"$tmp/f.mon" 2>"$tmp/f.mon.err"
rc=$?
why="exit $rc: $(cat "$tmp/f.mon" "$tmp/f.mon.err" | head -8)"
check "fake: monitor prints only new events (2), the streamed lost record and the lost count so far" eval \
	"[ $rc -eq 0 ] && [ \$(grep -c '^-> endpoint 0 flow 0x[0-9a-f]* identity 256->257 state new ifindex lxc00000001 orig-ip 0.0.0.0: 10.244.0.10:41000 -> 10.244.1.10:80 tcp SYN$' '$tmp/f.mon') -eq 2 ] &&
	 grep -qx 'EVENTS LOST: 1 events lost on node node-a' '$tmp/f.mon' &&
	 grep -qx 'EVENTS LOST: 5 events lost on node node-a' '$tmp/f.mon' &&
	 grep -q '^Listening for events on 1 node(s): node-a' '$tmp/f.mon.err'"
check "fake: monitor asked for the smallest backlog (last 1)" jcheck "$fd/a.req" \
	"flows[-1]['last'] == 1 and flows[-1]['follow'] is True"
timeout 30 "$CLI" monitor --socket "$fd/b.sock" -j --max-events 1 --timeout 20 >"$tmp/f.monj" 2>/dev/null
why="$(cat "$tmp/f.monj")"
check "fake: monitor -j: cilium's drop keys" jcheck "$tmp/f.monj" \
	"flows[0]['type'] == 'drop' and flows[0]['reason'] == 'Policy denied' and flows[0]['File'] == 'lxc.bpf.c' and flows[0]['Line'] == 89 and flows[0]['srcLabel'] == 256 and flows[0]['dstLabel'] == 257 and flows[0]['mark'].startswith('0x') and flows[0]['node'] == 'node-b'"

# errors
"$CLI" observe --socket "$fd/bad.sock" >/dev/null 2>"$tmp/f.bad"
rc=$?
why="exit $rc: $(cat "$tmp/f.bad")"
check "fake: an agent answering ok:false: its error shown, exit 1 (no agent answered)" eval \
	"[ $rc -eq 1 ] && grep -q 'the event pipeline is not running' '$tmp/f.bad'"
"$CLI" observe --socket "$fd/a.sock" --socket "$fd/nosuch.sock" >/dev/null 2>"$tmp/f.half"
rc=$?
why="exit $rc: $(cat "$tmp/f.half")"
check "fake: one agent missing: the other's flows, the failure named, exit 0" eval \
	"[ $rc -eq 0 ] && grep -q 'nosuch.sock' '$tmp/f.half'"
"$CLI" observe --socket "$fd/nosuch.sock" >/dev/null 2>&1
rc=$?
why="exit $rc"
check "observe: no agent answers: exit 1" [ $rc -eq 1 ]
timeout 10 "$CLI" monitor --socket "$fd/nosuch.sock" --timeout 2 >/dev/null 2>&1
rc=$?
why="exit $rc"
check "monitor: no agent answers: exit 1" [ $rc -eq 1 ]
for args in "--port http" "--verdict MAYBE" "--type l7" "--from-pod /a" "--since yesterday" \
	"--last 0" "-o yaml" "--max-flows 3" "--drop-reason NOPE" "--protocol QUIC" "stray"; do
	"$CLI" observe --socket "$fd/a.sock" $args >/dev/null 2>"$tmp/usage.err"
	rc=$?
	flag=${args%% *}
	why="exit $rc: $(cat "$tmp/usage.err")"
	check "observe $args: usage error (exit 2) naming it" eval \
		"[ $rc -eq 2 ] && grep -qF -- '$flag' '$tmp/usage.err'"
done
"$CLI" monitor --related-to a/b/c >/dev/null 2>"$tmp/usage.err"
rc=$?
why="exit $rc: $(cat "$tmp/usage.err")"
check "monitor --related-to a/b/c: usage error naming it" eval \
	"[ $rc -eq 2 ] && grep -qF -- '--related-to' '$tmp/usage.err'"
stop_bg

# ---- 2. what the cluster part needs --------------------------------------------------------
echo "# 2. what the cluster part needs (at ${SECONDS}s)"
skip_cluster() {
	echo "SKIP (cluster part): $1"
	final_rc=77
	exit 0 # finish: 77 when nothing failed
}
if [ "$(id -u)" -ne 0 ]; then
	skip_cluster "the simulator needs root (network namespaces)"
fi
if ! command -v ip >/dev/null; then
	skip_cluster "iproute2 (ip) is not installed"
fi
if ! grep -q 'AGENT_OP_OBSERVE' datapath/agent/api.h; then
	skip_cluster "the agent has no API op \"observe\" (datapath/agent/api.h)"
fi
probe_ns="ciliate-t-observe$$"
if ! ip netns add "$probe_ns" 2>/dev/null; then
	skip_cluster "cannot create network namespaces here"
fi
ip netns del "$probe_ns"

# A cluster of this tag left by another run: skip if a live ciliate-sim owns it, else clean.
f=$STATE_DIR/$TAG.json
if [ -e "$f" ]; then
	owner=$(grep -A1 '"owner"' "$f" | grep -oE '"pid": [0-9]+' | grep -oE '[0-9]+')
	if [ -n "$owner" ] && [ "$(cat "/proc/$owner/comm" 2>/dev/null)" = ciliate-sim ]; then
		skip_cluster "cluster tag $TAG is being used by ciliate-sim pid $owner (another run?)"
	fi
fi
if [ -e "$f" ] || ip netns list | grep -qE "^cil-$TAG-"; then
	echo "note: removing cluster $TAG left by an earlier run"
	"$SIM" down "$TAG" >/dev/null 2>&1
fi

# ---- 3. bring-up ---------------------------------------------------------------------------
echo "# 3. bring-up (at ${SECONDS}s)"
cluster_up=1
if ! timeout 120 "$SIM" up "$SCENARIO" >"$tmp/up.out" 2>&1; then
	fail "ciliate-sim up $SCENARIO" "$(tail -3 "$tmp/up.out")"
	exit 1
fi
pass "ciliate-sim up $SCENARIO"
C=(--socket "$S1" --socket "$S2") # this cluster's two agents, not other clusters' under /run/ciliate

ident() { # POD NODE_SOCKET: the endpoint's identity
	"$CLI" endpoint list --socket "$2" -o json |
		"$PY" -c "import json,sys; print([e['identity'] for e in json.load(sys.stdin) if e['pod']=='$1'][0])"
}
ID_CLIENT=$(ident shop/client "$S1")
ID_WEB=$(ident shop/web "$S2")
EP_CLIENT=$("$CLI" endpoint list --socket "$S1" -o json |
	"$PY" -c "import json,sys; print([e['id'] for e in json.load(sys.stdin) if e['pod']=='shop/client'][0])")
why="client $ID_CLIENT web $ID_WEB"
check "identities of shop/client and shop/web known (>= 256, distinct)" eval \
	"[ '$ID_CLIENT' -ge 256 ] && [ '$ID_WEB' -ge 256 ] && [ '$ID_CLIENT' != '$ID_WEB' ]"

# ---- 4. traffic while monitor and observe -f listen ----------------------------------------
echo "# 4. traffic while monitor and observe -f listen (at ${SECONDS}s)"
since=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
# (shop/client only: the fresh veths' IPv6 neighbour discovery is dropped too, as
# "Unsupported L3 protocol", and may come first)
timeout 60 "$CLI" monitor "${C[@]}" --type drop --related-to shop/client --max-events 1 --timeout 30 \
	>"$tmp/mon.drop" 2>"$tmp/mon.drop.err" &
mon_drop=$!
bg_pids+=($mon_drop)
timeout 60 "$CLI" monitor "${C[@]}" --timeout 6 --print-node-name >"$tmp/mon.all" 2>"$tmp/mon.all.err" &
mon_all=$!
bg_pids+=($mon_all)
timeout 60 "$CLI" monitor "${C[@]}" -j --type drop --from-pod shop/client --max-events 1 --timeout 30 \
	>"$tmp/mon.j" 2>"$tmp/mon.j.err" &
mon_j=$!
bg_pids+=($mon_j)
timeout 60 "$CLI" observe "${C[@]}" -f --since "$since" --to-pod shop/web --type trace:to-endpoint \
	--max-flows 1 --timeout 30 -o json >"$tmp/follow.json" 2>"$tmp/follow.err" &
obs_follow=$!
bg_pids+=($obs_follow)
for f in mon.drop.err mon.all.err mon.j.err; do
	why="$(cat "$tmp/$f")"
	check "monitor ($f) is listening on both nodes" \
		wait_for "$tmp/$f" '^Listening for events on 2 node\(s\): node-1 node-2' 10
done
sleep 0.5 # observe -f prints nothing when it is ready; its backlog request needs a moment

probe() { "$SIM" exec -c "$TAG" shop/client -- "$PROBE" --to "$WEB_IP" -o json "$@"; }
probe --port 81 --timeout-ms 500 >"$tmp/deny.out" 2>&1
why="$(cat "$tmp/deny.out")"
check "probe shop/client -> shop/web:81 is denied" grep -q '"result":"deny"' "$tmp/deny.out"
probe --port 80 --timeout-ms 2000 >"$tmp/allow.out" 2>&1
why="$(cat "$tmp/allow.out")"
check "probe shop/client -> shop/web:80 is allowed" grep -q '"result":"allow"' "$tmp/allow.out"
DPORT=$(grep -oE '"local_port":[0-9]+' "$tmp/deny.out" | head -1 | grep -oE '[0-9]+$')
APORT=$(grep -oE '"local_port":[0-9]+' "$tmp/allow.out" | head -1 | grep -oE '[0-9]+$')

wait "$mon_drop"
rc=$?
why="exit $rc: $(cat "$tmp/mon.drop.err")"
check "monitor --type drop --related-to shop/client --max-events 1 exits 0 after the drop" [ $rc -eq 0 ]
wait "$obs_follow"
rc=$?
why="exit $rc: $(cat "$tmp/follow.err")"
check "observe -f --max-flows 1 exits 0 after the live flow" [ $rc -eq 0 ]
wait "$mon_j"
wait "$mon_all" # ends at its --timeout 6
bg_pids=()

# ---- 5. monitor lines ----------------------------------------------------------------------
echo "# 5. monitor lines (at ${SECONDS}s)"
DROP_RE="^xx drop \(Policy denied\) flow 0x[0-9a-f]+ to endpoint 0, ifindex [0-9]+, file lxc\.bpf\.c:[0-9]+, identity $ID_CLIENT->$ID_WEB: $CLIENT_IP:$DPORT -> $WEB_IP:81 tcp SYN$"
why="$(head -3 "$tmp/mon.drop")"
check "monitor --type drop: the drop line (Policy denied, identities, file lxc.bpf.c:LINE)" \
	has "$tmp/mon.drop" "$DROP_RE"
check "monitor --type drop: nothing but drops" eval "! grep -qv '^xx drop' '$tmp/mon.drop'"
why="$(grep -v ff02 "$tmp/mon.all" | head -5)"
check "monitor: the policy verdict line of the denied SYN" has "$tmp/mon.all" \
	"^\[node-1\] Policy verdict log: flow 0x[0-9a-f]+ local EP ID $EP_CLIENT, remote ID $ID_WEB, proto 6, egress, action deny, auth: disabled, match none, $CLIENT_IP:$DPORT -> $WEB_IP:81 tcp SYN$"
check "monitor: the policy verdict line of the allowed SYN" has "$tmp/mon.all" \
	"^\[node-1\] Policy verdict log: flow 0x[0-9a-f]+ local EP ID $EP_CLIENT, remote ID $ID_WEB, proto 6, egress, action allow, auth: disabled, match L3-L4, $CLIENT_IP:$APORT -> $WEB_IP:80 tcp SYN$"
check "monitor: the SYN's trace into shop/web on node-2" has "$tmp/mon.all" \
	"^\[node-2\] -> endpoint [0-9]+ flow 0x[0-9a-f]+ identity $ID_CLIENT->$ID_WEB state new ifindex [a-z0-9]+ orig-ip 0\.0\.0\.0: $CLIENT_IP:$APORT -> $WEB_IP:80 tcp SYN$"
check "monitor: the SYN-ACK's trace back into shop/client on node-1" has "$tmp/mon.all" \
	"^\[node-1\] -> endpoint $EP_CLIENT flow 0x[0-9a-f]+ identity $ID_WEB->$ID_CLIENT state reply ifindex [a-z0-9]+ orig-ip 0\.0\.0\.0: $WEB_IP:80 -> $CLIENT_IP:$APORT tcp SYN, ACK$"
h1=$(grep -E "$CLIENT_IP:$APORT -> $WEB_IP:80 tcp SYN$" "$tmp/mon.all" | grep -oE 'flow 0x[0-9a-f]+' | sort -u)
h2=$(grep -E "$WEB_IP:80 -> $CLIENT_IP:$APORT tcp SYN, ACK$" "$tmp/mon.all" | grep -oE 'flow 0x[0-9a-f]+' | sort -u)
why="SYN: $h1; SYN-ACK: $h2"
check "monitor: one flow hash for every line of the connection, both directions" \
	eval "[ -n '$h1' ] && [ '$h1' = '$h2' ] && [ \$(echo '$h1' | wc -l) -eq 1 ]"
why="$(cat "$tmp/mon.j")"
check "monitor -j: one drop object with cilium's keys" jcheck "$tmp/mon.j" \
	"len(flows) == 1 and flows[0]['type'] == 'drop' and flows[0]['reason'] == 'Policy denied' and
	 flows[0]['srcLabel'] == $ID_CLIENT and flows[0]['dstLabel'] == $ID_WEB and
	 flows[0]['File'] == 'lxc.bpf.c' and flows[0]['Line'] > 0 and flows[0]['source'] == $EP_CLIENT and
	 flows[0]['summary']['l4']['dst'] == '81' and flows[0]['node'] == 'node-1' and flows[0]['bytes'] > 0"
why="$(cat "$tmp/follow.json")"
check "observe -f --since: the live SYN into shop/web (to-endpoint, node-2)" jcheck "$tmp/follow.json" \
	"len(flows) == 1 and flows[0]['node_name'] == 'node-2' and
	 flows[0]['flow']['trace_observation_point'] == 'TO_ENDPOINT' and
	 flows[0]['flow']['destination']['pod_name'] == 'web'"

# ---- 6. observe: the drop flow's JSON ------------------------------------------------------
echo "# 6. observe: the drop flow's JSON (at ${SECONDS}s)"
"$CLI" observe "${C[@]}" --all -o json --verdict DROPPED >"$tmp/dropped.json" 2>"$tmp/dropped.err"
rc=$?
why="exit $rc: $(head -2 "$tmp/dropped.err")"
check "observe -o json --verdict DROPPED exits 0" [ $rc -eq 0 ]
# the drop event of the denied SYN
tcp="f['flow'].get('l4',{}).get('TCP',{})"
jdrop="[f for f in flows if f['flow'].get('event_type',{}).get('type') == 1 and $tcp.get('destination_port') == 81]"
why="$(grep '"destination_port":81' "$tmp/dropped.json" | head -2)"
check "observe --verdict DROPPED: only DROPPED flows" jcheck "$tmp/dropped.json" \
	"flows and all(f['flow']['verdict'] == 'DROPPED' for f in flows)"
check "drop flow: wrapped (flow, node_name, time) on node-1, uuid node-1/SEQ" jcheck "$tmp/dropped.json" \
	"len($jdrop) >= 1 and all(set(f) == {'flow','node_name','time'} and f['node_name'] == 'node-1' and f['flow']['node_name'] == 'node-1' and f['time'] == f['flow']['time'] and f['flow']['uuid'] == 'node-1/%d' % f['flow']['ciliate']['seq'] for f in $jdrop)"
check "drop flow: POLICY_DENIED (133), event type 1/133, EGRESS, not a reply" jcheck "$tmp/dropped.json" \
	"all(f['flow']['drop_reason_desc'] == 'POLICY_DENIED' and f['flow']['drop_reason'] == 133 and f['flow']['event_type'] == {'type':1,'sub_type':133} and f['flow']['traffic_direction'] == 'EGRESS' and f['flow']['is_reply'] is False for f in $jdrop)"
check "drop flow: source shop/client (endpoint id, identity, labels)" jcheck "$tmp/dropped.json" \
	"all(f['flow']['source']['pod_name'] == 'client' and f['flow']['source']['namespace'] == 'shop' and f['flow']['source']['identity'] == $ID_CLIENT and f['flow']['source']['ID'] == $EP_CLIENT and 'k8s:app=client' in f['flow']['source']['labels'] and f['flow']['source']['labels'] == sorted(f['flow']['source']['labels']) for f in $jdrop)"
check "drop flow: destination shop/web (identity, labels, no endpoint id on node-1)" jcheck "$tmp/dropped.json" \
	"all(f['flow']['destination']['pod_name'] == 'web' and f['flow']['destination']['namespace'] == 'shop' and f['flow']['destination']['identity'] == $ID_WEB and 'k8s:app=web' in f['flow']['destination']['labels'] and 'ID' not in f['flow']['destination'] for f in $jdrop)"
check "drop flow: IP, l4 TCP SYN, file lxc.bpf.c, interface, Summary, ciliate extension" jcheck "$tmp/dropped.json" \
	"all(f['flow']['IP'] == {'source':'$CLIENT_IP','destination':'$WEB_IP','ipVersion':'IPv4'} and f['flow']['l4']['TCP']['source_port'] == $DPORT and f['flow']['l4']['TCP']['flags'] == {'SYN':True} and f['flow']['file']['name'] == 'lxc.bpf.c' and f['flow']['file']['line'] > 0 and f['flow']['interface']['index'] > 0 and f['flow']['Summary'] == 'TCP Flags: SYN' and f['flow']['ciliate']['hook'] == 'from-container' and f['flow']['ciliate']['ct_state'] == 'new' and f['flow']['Type'] == 'L3_L4' for f in $jdrop)"
check "the denied SYN's policy verdict: type 5, DROPPED, match none" jcheck "$tmp/dropped.json" \
	"any(f['flow']['event_type']['type'] == 5 and $tcp.get('source_port') == $DPORT and f['flow'].get('policy_match_type', 0) == 0 and f['flow']['ciliate'].get('policy_match_name') == 'none' for f in flows)"

# ---- 7. filters across both nodes ----------------------------------------------------------
echo "# 7. filters across both nodes (at ${SECONDS}s)"
"$CLI" observe "${C[@]}" --all -o json --from-pod shop/client --to-pod shop/web --port 80 >"$tmp/conn.json" 2>/dev/null
why="$(jget "$tmp/conn.json" "sorted(set(f['node_name'] for f in flows))")"
check "--from-pod shop/client --to-pod shop/web --port 80: flows of both nodes" jcheck "$tmp/conn.json" \
	"sorted(set(f['node_name'] for f in flows)) == ['node-1','node-2']"
check "... and only flows of that pair and port" jcheck "$tmp/conn.json" \
	"all(f['flow']['source']['pod_name'] == 'client' and f['flow']['destination']['pod_name'] == 'web' and 80 in (f['flow']['l4']['TCP']['source_port'], f['flow']['l4']['TCP']['destination_port']) for f in flows)"
times="[(f['time'], f['node_name'], f['flow']['ciliate']['seq']) for f in flows]"
check "... merged in time order" jcheck "$tmp/conn.json" "$times == sorted($times)"
"$CLI" observe "${C[@]}" --all -o json --pod shop/web --node-name node-2 --type trace >"$tmp/n2.json" 2>/dev/null
why="$(jget "$tmp/n2.json" "len(flows)")"
check "--pod shop/web --node-name node-2 --type trace: only node-2's traces" jcheck "$tmp/n2.json" \
	"flows and all(f['node_name'] == 'node-2' and f['flow']['event_type']['type'] == 4 for f in flows)"
"$CLI" observe "${C[@]}" --all -o json --port 81 --verdict FORWARDED >"$tmp/none.json" 2>/dev/null
why="$(head -2 "$tmp/none.json")"
check "--port 81 --verdict FORWARDED: nothing (the SYN never left node-1)" [ ! -s "$tmp/none.json" ]
"$CLI" observe "${C[@]}" --all -o json --namespace shop --protocol UDP >"$tmp/udp.json" 2>/dev/null
check "--namespace shop --protocol UDP: nothing" [ ! -s "$tmp/udp.json" ]
"$CLI" observe "${C[@]}" --all -o json --drop-reason POLICY_DENIED --type drop >"$tmp/reason.json" 2>/dev/null
why="$(jget "$tmp/reason.json" "len(flows)")"
check "--drop-reason POLICY_DENIED --type drop: the drop(s) of port 81, on node-1" jcheck "$tmp/reason.json" \
	"flows and all(f['flow']['drop_reason_desc'] == 'POLICY_DENIED' and f['node_name'] == 'node-1' for f in flows)"

# ---- 8. --last, compact, table, --html -----------------------------------------------------
echo "# 8. --last, compact, table, --html (at ${SECONDS}s)"
"$CLI" observe "${C[@]}" --all -o json --pod shop/client >"$tmp/all.json" 2>/dev/null
"$CLI" observe "${C[@]}" -o json --pod shop/client --last 3 >"$tmp/last3.json" 2>/dev/null
why="$(wc -l <"$tmp/all.json") flows in all, last 3: $(wc -l <"$tmp/last3.json")"
check "--last 3: the three newest flows of both nodes merged" eval \
	"[ \$(wc -l <'$tmp/last3.json') -eq 3 ] && [ \"\$(tail -3 '$tmp/all.json')\" = \"\$(cat '$tmp/last3.json')\" ]"
"$CLI" observe "${C[@]}" --all --verdict DROPPED --port 81 >"$tmp/compact.out" 2>&1
why="$(head -3 "$tmp/compact.out")"
check "compact: the drop line" has "$tmp/compact.out" \
	"^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}: shop/client:$DPORT \(ID:$ID_CLIENT\) -> shop/web:81 \(ID:$ID_WEB\) Policy denied DROPPED \(TCP Flags: SYN\)$"
check "compact: the policy verdict line" has "$tmp/compact.out" \
	": shop/client:$DPORT \(ID:$ID_CLIENT\) -> shop/web:81 \(ID:$ID_WEB\) policy-verdict:none EGRESS DENIED \(TCP Flags: SYN\)$"
"$CLI" observe "${C[@]}" --all --print-node-name --to-pod shop/web --port 80 --type trace:to-endpoint >"$tmp/compact2.out" 2>&1
why="$(head -3 "$tmp/compact2.out")"
check "compact --print-node-name: the SYN into shop/web on node-2" has "$tmp/compact2.out" \
	"\[node-2\]: shop/client:$APORT \(ID:$ID_CLIENT\) -> shop/web:80 \(ID:$ID_WEB\) to-endpoint FORWARDED \(TCP Flags: SYN\)$"
"$CLI" observe "${C[@]}" --all -o table --pod shop/client >"$tmp/table.out" 2>&1
why="$(head -3 "$tmp/table.out")"
check "table: the header" has "$tmp/table.out" '^TIMESTAMP +NODE +SOURCE +DESTINATION +TYPE +VERDICT +SUMMARY$'
check "table: the drop row" has "$tmp/table.out" \
	" node-1 +shop/client:$DPORT +shop/web:81 +Policy denied +DROPPED +TCP Flags: SYN$"
check "table: a row per flow" eval "[ \$(grep -c '^[A-Z][a-z][a-z] ' '$tmp/table.out') -eq \$(wc -l <'$tmp/all.json') ]"
"$CLI" observe "${C[@]}" --html "$tmp/page.html" >"$tmp/html.out" 2>"$tmp/html.err"
rc=$?
why="exit $rc: $(cat "$tmp/html.err")"
check "--html FILE: the page is written (nothing on stdout without -o)" eval \
	"[ $rc -eq 0 ] && [ -s '$tmp/page.html' ] && grep -qi '<html' '$tmp/page.html' && [ ! -s '$tmp/html.out' ]"
check "--html: the page holds the pods" grep -q 'client' "$tmp/page.html"

# ---- 9. lost events are shown --------------------------------------------------------------
echo "# 9. lost events are shown (at ${SECONDS}s)"
for s in "$S1" "$S2"; do
	n=$(echo '{"op":"status"}' | "$PY" -c "
import json, socket, sys
c = socket.socket(socket.AF_UNIX); c.connect('$s'); c.sendall(sys.stdin.read().encode())
b = b''
while not b.endswith(b'\n'): b += c.recv(65536)
print(json.loads(b).get('events', {}).get('lost', -1))")
	node=$(basename "$(dirname "$s")")
	"$CLI" observe --socket "$s" --last 1 >"$tmp/lost.out" 2>&1
	why="status events.lost=$n; $(grep 'EVENTS LOST' "$tmp/lost.out")"
	if [ "$n" = 0 ]; then
		check "$node: no events lost, no EVENTS LOST line" eval "! grep -q 'EVENTS LOST' '$tmp/lost.out'"
	else
		check "$node: $n events lost and shown" grep -q "^EVENTS LOST: " "$tmp/lost.out"
	fi
done

# ---- 10. down ------------------------------------------------------------------------------
echo "# 10. down (at ${SECONDS}s)"
if "$SIM" down "$TAG" >"$tmp/down.out" 2>&1; then
	pass "ciliate-sim down"
else
	fail "ciliate-sim down" "$(tail -3 "$tmp/down.out")"
fi
cluster_up=0
why="$(ip netns list | grep -E "^cil-$TAG-")"
check "no cil-$TAG-* namespace left" eval "! ip netns list | grep -qE '^cil-$TAG-'"
check "no agent socket of the cluster left" eval "[ ! -e '$S1' ] && [ ! -e '$S2' ]"
