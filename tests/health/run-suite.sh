#!/usr/bin/env bash
# Node-to-node health (docs/HEALTH.md): brings up tests/health/cluster.yaml (3 nodes) with
# `CILIATE_HEALTH_INTERVAL=1 ciliate-sim up` and checks, against every agent:
#   - GET /hello on port 4240 answers 200 inside a node and over the underlay (curl), other
#     paths 404; --health-port / --health-interval / $CILIATE_HEALTH_INTERVAL validation;
#   - `ciliate health status -o json`: every node (itself included) reachable by ICMP and
#     HTTP with an RTT; the text in the shape of `cilium-health status`; `ciliate status`
#     says "Cluster health: 3/3 reachable" (and clusterHealth in -o json);
#   - /metrics: cilium_unreachable_nodes 0, cilium_node_health_connectivity_status and the
#     latency histogram, parsed by Debian's python3-prometheus-client (tests/metrics/expo.py)
#     when installed (else that check prints SKIP);
#   - node-3's underlay link down (the fabric side, as the simulator's link-down fault):
#     node-1 and node-2 show it unreachable within two intervals (plus one probe timeout),
#     with the errors in place of OK, cilium_unreachable_nodes 1, "2/3 reachable"; link up:
#     3/3 again;
#   - --probe answers with a round that started after the request, and a request pipelined
#     behind a probe on the same connection is answered after it, in order;
#   - `down` leaves no namespace behind.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
CLI=$build/bin/ciliate
AGENT=$build/bin/ciliate-agent
PY=/usr/bin/python3
EXPO=tests/metrics/expo.py
SCENARIO=tests/health/cluster.yaml
TAG=health
STATE_DIR=/run/ciliate/sim
INTERVAL=1 # seconds between probe rounds ($CILIATE_HEALTH_INTERVAL for the agents)
NODES="node-1 node-2 node-3"

for b in ciliate ciliate-sim ciliate-agent; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL: $build/bin/$b is missing (run make first)"
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi
for t in ip curl jq; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP: $t is not installed (bash ci/install-deps.sh)"
		exit 77
	fi
done
probe_ns="ciliate-t-health$$"
if ! ip netns add "$probe_ns" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces here"
	exit 77
fi
ip netns del "$probe_ns"

tmp=$(mktemp -d /tmp/ciliate-t-health.XXXXXX)
passed=0
failed=0
why=""
start=$SECONDS
source tests/lib/suite.sh # pass / fail / check

finish() {
	trap - EXIT INT TERM HUP
	if [ -e "$STATE_DIR/$TAG.json" ] || ip netns list | grep -qE "^cil-$TAG-"; then
		"$SIM" down "$TAG" >/dev/null 2>&1
	fi
	if [ "$failed" -ne 0 ]; then
		for f in "$STATE_DIR/$TAG"/agent-*.log; do
			[ -f "$f" ] && { echo "--- $(basename "$f") (last 15 lines)"; tail -15 "$f"; }
		done
	fi
	rm -rf "$tmp"
	echo "suite time: $((SECONDS - start)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap 'echo "interrupted"; failed=$((failed + 1)); finish' INT TERM HUP
trap finish EXIT

# A cluster of this tag left by another run: skip if a live ciliate-sim owns it, else clean.
f=$STATE_DIR/$TAG.json
if [ -e "$f" ]; then
	owner=$(grep -A1 '"owner"' "$f" | grep -oE '"pid": [0-9]+' | grep -oE '[0-9]+')
	if [ -n "$owner" ] && [ "$(cat "/proc/$owner/comm" 2>/dev/null)" = ciliate-sim ]; then
		echo "SKIP: cluster tag $TAG is being used by ciliate-sim pid $owner (another run?)"
		rm -rf "$tmp"
		trap - EXIT
		exit 77
	fi
fi
if [ -e "$f" ] || ip netns list | grep -qE "^cil-$TAG-"; then
	echo "note: removing cluster $TAG left by an earlier run"
	"$SIM" down "$TAG" >/dev/null 2>&1
fi

# ---- helpers ---------------------------------------------------------------------------
now_ms() { echo $(($(date +%s%N) / 1000000)); }
sock() { echo "/run/ciliate/cil-$TAG-$1/agent.sock"; }
# hs NODE [ARGS...]: `ciliate health status -o json` of NODE's agent (its one answer)
hs() {
	local n=$1
	shift
	timeout 20 "$CLI" health status --socket "$(sock "$n")" -o json "$@" 2>>"$tmp/cli.err" |
		jq -c '.[0]' 2>/dev/null
}
# summary NODE: "reachable/unreachable/total" of NODE's last round
summary() { hs "$1" | jq -r '.summary | "\(.reachable)/\(.unreachable)/\(.total)"' 2>/dev/null; }
# wait_summary MS NODE WANT: polls every 0.1 s until summary NODE is WANT; prints the ms
# it took (or nothing)
wait_summary() {
	local t0 limit
	t0=$(now_ms)
	limit=$((t0 + $1))
	while [ "$(now_ms)" -le "$limit" ]; do
		if [ "$(summary "$2")" = "$3" ]; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		sleep 0.1
	done
	return 1
}
scrape() {
	"$SIM" exec -c "$TAG" "$1" -- curl -sS -m 5 -o "$2" "http://127.0.0.1:9962/metrics" \
		2>>"$tmp/curl.err"
}
have_prom=false
"$PY" -c 'import prometheus_client.parser' 2>/dev/null && have_prom=true
# val FILE SAMPLE [K=V...]: the value of a sample, summed over matching label sets
val() {
	if $have_prom; then
		"$PY" "$EXPO" get "$@"
	else # the plain text, for the few values the suite reads
		local f=$1 s=$2
		shift 2
		grep -E "^$s(\{| )" "$f" | awk -v want="$*" '
			{ ok = 1; n = split(want, kv, " ");
			  for (i = 1; i <= n; i++) { split(kv[i], p, "="); if (index($0, p[1] "=\"" p[2] "\"") == 0) ok = 0 }
			  if (ok) sum += $NF }
			END { print sum + 0 }'
	fi
}
eq() { why="got '$2', want '$3'"; check "$1" [ "$2" = "$3" ]; }

# ---- 1. flags ----------------------------------------------------------------------------
for a in "--health-port 0" "--health-port 70000" "--health-port x" "--health-interval 0" \
	"--health-interval 1s"; do
	# shellcheck disable=SC2086
	"$AGENT" --node x $a >"$tmp/flag.out" 2>&1
	rc=$?
	why="exit $rc: $(head -1 "$tmp/flag.out")"
	check "ciliate-agent $a is a usage error (exit 2, named)" \
		eval "[ $rc -eq 2 ] && grep -q -- '${a%% *}' '$tmp/flag.out'"
done
CILIATE_HEALTH_INTERVAL=abc "$AGENT" --node x >"$tmp/flag.out" 2>&1
rc=$?
why="exit $rc: $(head -1 "$tmp/flag.out")"
check "CILIATE_HEALTH_INTERVAL=abc is a usage error (exit 2, named)" \
	eval "[ $rc -eq 2 ] && grep -q CILIATE_HEALTH_INTERVAL '$tmp/flag.out'"
"$CLI" health status --bogus >/dev/null 2>&1
eq "ciliate health status --bogus: exit 2" "$?" 2
"$CLI" health >/dev/null 2>&1
eq "ciliate health (no subcommand): exit 2" "$?" 2

# ---- 2. bring-up: every node reachable from every node ------------------------------------
if ! CILIATE_HEALTH_INTERVAL=$INTERVAL timeout 120 "$SIM" up "$SCENARIO" >"$tmp/up.out" 2>&1; then
	fail "ciliate-sim up $SCENARIO" "$(tail -3 "$tmp/up.out")"
	exit 1
fi
pass "CILIATE_HEALTH_INTERVAL=$INTERVAL ciliate-sim up $SCENARIO (3 nodes)"
"$SIM" status -o json >"$tmp/status.json" 2>/dev/null
ip_of() { jq -r --arg t "$TAG" --arg n "$1" '.[] | select(.tag == $t) | .hosts[] |
	select(.kind == "node" and .name == $n) | .ip' "$tmp/status.json"; }
if_of() { jq -r --arg t "$TAG" --arg n "$1" '.[] | select(.tag == $t) | .hosts[] |
	select(.kind == "node" and .name == $n) | .if' "$tmp/status.json"; }
FABRIC=$(jq -r --arg t "$TAG" '.[] | select(.tag == $t) | .fabric' "$tmp/status.json")

for n in $NODES; do
	ms=$(wait_summary 10000 "$n" 3/0/3)
	why="last: $(summary "$n")"
	check "$n: all 3 nodes reachable (ICMP and HTTP) within 10 s of up${ms:+ ($ms ms)}" \
		[ -n "$ms" ]
done
hs node-1 >"$tmp/n1.json"
eq "node-1: health-status lists 3 nodes" "$(jq '.nodes | length' "$tmp/n1.json")" 3
eq "node-1: the first is itself (localhost) at its node IP" \
	"$(jq -r '.nodes[0] | "\(.name) \(.localhost) \(.ip)"' "$tmp/n1.json")" \
	"node-1 true $(ip_of node-1)"
eq "node-1: node-3 at its node IP" \
	"$(jq -r '.nodes[] | select(.name == "node-3") | .ip' "$tmp/n1.json")" "$(ip_of node-3)"
eq "node-1: every probe ok with rttNs > 0" \
	"$(jq '[.nodes[] | .icmp, .http | select(.status == "ok" and .rttNs > 0)] | length' \
		"$tmp/n1.json")" 6
eq "node-1: port 4240, interval $INTERVAL s, responder up" \
	"$(jq -r '"\(.port) \(.interval) \(.responder)"' "$tmp/n1.json")" "4240 $INTERVAL true"
check "node-1: lastProbe and probeTime are RFC 3339 (UTC)" \
	eval "jq -e '.probeTime | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$\")' '$tmp/n1.json' >/dev/null &&
	      jq -e '[.nodes[].lastProbe | test(\"Z$\")] | all' '$tmp/n1.json' >/dev/null"

# the text, in the shape of cilium-health status
timeout 20 "$CLI" health status --socket "$(sock node-2)" >"$tmp/text.out" 2>&1
eq "health status (text): exit 0 when all are reachable" "$?" 0
ip2=$(ip_of node-2)
why="$(head -8 "$tmp/text.out")"
check "health status (text): cilium-health's shape" eval "
	grep -qE '^Probe time:   [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' '$tmp/text.out' &&
	grep -qx 'Nodes:' '$tmp/text.out' &&
	sed -n 3p '$tmp/text.out' | grep -qx '  health/node-2 (localhost):' &&
	sed -n 4p '$tmp/text.out' | grep -qx '    Host connectivity to $ip2:' &&
	sed -n 5p '$tmp/text.out' | grep -qE '^      ICMP to stack:   OK, RTT=[0-9.]+(ns|µs|ms|s)$' &&
	sed -n 6p '$tmp/text.out' | grep -qE '^      HTTP to agent:   OK, RTT=[0-9.]+(ns|µs|ms|s)$' &&
	grep -qx '  health/node-1:' '$tmp/text.out' && grep -qx '  health/node-3:' '$tmp/text.out'"

# ciliate status: the agent's line
timeout 20 "$CLI" status --socket "$(sock node-3)" >"$tmp/st.out" 2>&1
why="$(grep -i 'cluster health' "$tmp/st.out")"
check "ciliate status: 'Cluster health: 3/3 reachable'" \
	grep -qE '^ +Cluster health: 3/3 reachable$' "$tmp/st.out"
eq "ciliate status -o json: clusterHealth {reachable 3, total 3}" \
	"$(timeout 20 "$CLI" status --socket "$(sock node-3)" -o json 2>/dev/null |
		jq -c '.agents[0].clusterHealth | [.reachable, .total]')" "[3,3]"

# the responder
ip3=$(ip_of node-3)
code=$("$SIM" exec -c "$TAG" node-1 -- curl -sS -m 3 -o "$tmp/hello" -w '%{http_code}' \
	"http://$ip3:4240/hello" 2>>"$tmp/curl.err")
eq "curl http://<node-3>:4240/hello from node-1's namespace: 200" "$code" 200
code=$("$SIM" exec -c "$TAG" node-3 -- curl -sS -m 3 -o /dev/null -w '%{http_code}' \
	"http://127.0.0.1:4240/hello" 2>>"$tmp/curl.err")
eq "curl http://127.0.0.1:4240/hello inside node-3: 200" "$code" 200
code=$("$SIM" exec -c "$TAG" node-1 -- curl -sS -m 3 -o /dev/null -w '%{http_code}' \
	"http://$ip3:4240/other" 2>>"$tmp/curl.err")
eq "GET /other on the health port: 404" "$code" 404
why="$(ss -Htln 'sport = :4240' 2>/dev/null | head -2)"
check "nothing listens on 4240 in the root namespace (none of ours)" \
	eval "! ss -Htlnp 'sport = :4240' 2>/dev/null | grep -q ciliate-agent"

# metrics
if scrape node-1 "$tmp/m0"; then
	pass "node-1: GET /metrics"
else
	fail "node-1: GET /metrics" "$(tail -1 "$tmp/curl.err")"
fi
if $have_prom; then
	why="$("$PY" "$EXPO" check "$tmp/m0" cilium_unreachable_nodes \
		cilium_node_health_connectivity_status 2>&1 | head -3)"
	check "metrics parse (python3-prometheus-client), health families with HELP and TYPE" \
		"$PY" "$EXPO" check "$tmp/m0" cilium_unreachable_nodes \
		cilium_node_health_connectivity_status
	eq "the latency family is a histogram" \
		"$(grep -c '^# TYPE cilium_node_health_connectivity_latency_seconds histogram$' "$tmp/m0")" 1
else
	echo "SKIP - metrics parsed by python3-prometheus-client: $PY cannot import prometheus_client (bash ci/install-deps.sh); values read from the text"
fi
eq "node-1: cilium_unreachable_nodes 0" "$(val "$tmp/m0" cilium_unreachable_nodes)" 0
eq "node-1: connectivity_status{status=reachable} 3" \
	"$(val "$tmp/m0" cilium_node_health_connectivity_status status=reachable \
		source_node_name=node-1 source_cluster=health type=node)" 3
for p in icmp http; do
	c=$(val "$tmp/m0" cilium_node_health_connectivity_latency_seconds_count protocol=$p \
		address_type=primary type=node)
	why="got ${c:-nothing}"
	check "node-1: latency histogram of $p has observations" [ "${c%.*}" -ge 3 ]
done

# ---- 3. --probe: a fresh round, answered when done ----------------------------------------
before=$(hs node-2 | jq -r .rounds)
t0=$(now_ms)
hs node-2 --probe >"$tmp/probe.json"
dt=$(($(now_ms) - t0))
after=$(jq -r .rounds "$tmp/probe.json")
why="rounds $before -> $after in $dt ms"
check "--probe answers after a round that started after the request ($dt ms)" \
	eval "[ '$after' -gt '$before' ] && [ $dt -lt 5000 ]"
eq "--probe: all 3 reachable" "$(jq -r '.summary.reachable' "$tmp/probe.json")" 3
# a request pipelined behind a probe on one connection: answered after it, in order
"$PY" - "$(sock node-1)" >"$tmp/pipe.out" 2>&1 <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(15)
s.connect(sys.argv[1])
s.sendall(b'{"op":"health-status","probe":true}\n{"op":"status"}\n')
s.shutdown(socket.SHUT_WR)
buf = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    buf += d
lines = [json.loads(l) for l in buf.splitlines() if l.strip()]
print(" ".join("nodes" if "nodes" in l else "status" if "storeRevision" in l else "?"
               for l in lines))
EOF
eq "a status request pipelined behind --probe is answered after it" "$(cat "$tmp/pipe.out")" \
	"nodes status"

# ---- 4. node-3's link down: unreachable within two intervals -------------------------------
if3=$(if_of node-3)
if ! ip -n "$FABRIC" link set "$if3" down 2>"$tmp/ip.err"; then
	fail "link down: node-3's fabric veth $if3 in $FABRIC" "$(cat "$tmp/ip.err")"
	exit 1
fi
pass "node-3's underlay link down ($FABRIC $if3)"
limit=$(((2 * INTERVAL) * 1000 + 1000 + 1000)) # two intervals, one probe timeout, slack
for n in node-1 node-2; do
	ms=$(wait_summary $limit "$n" 2/1/3)
	why="last: $(summary "$n")"
	check "$n: node-3 unreachable within two intervals + a probe timeout (${ms:-?} ms, limit $limit)" \
		[ -n "$ms" ]
done
hs node-1 >"$tmp/down.json"
eq "node-1: node-3's ICMP error" \
	"$(jq -r '.nodes[] | select(.name == "node-3") | .icmp | "\(.status): \(.error)"' "$tmp/down.json")" \
	"error: Connection timed out"
why="$(jq -r '.nodes[] | select(.name == "node-3") | .http.error' "$tmp/down.json")"
check "node-1: node-3's HTTP error names the URL (Go's words)" \
	eval "jq -e '.nodes[] | select(.name == \"node-3\") | .http.error |
		startswith(\"Get \\\"http://$ip3:4240/hello\\\": \")' '$tmp/down.json' >/dev/null"
timeout 20 "$CLI" health status --socket "$(sock node-1)" >"$tmp/text2.out" 2>&1
rc=$?
eq "health status (text) exits 1 while a node is unreachable" "$rc" 1
why="$(sed -n '/node-3/,$p' "$tmp/text2.out")"
check "health status (text): node-3's errors in place of OK" eval "
	grep -qx '      ICMP to stack:   Connection timed out' '$tmp/text2.out' &&
	grep -qE '^      HTTP to agent:   Get \"http://$ip3:4240/hello\": ' '$tmp/text2.out'"
timeout 20 "$CLI" status --socket "$(sock node-2)" >"$tmp/st2.out" 2>&1
why="$(grep -i 'cluster health' "$tmp/st2.out")"
check "ciliate status: 'Cluster health: 2/3 reachable (unreachable: node-3)'" \
	grep -qE '^ +Cluster health: 2/3 reachable \(unreachable: node-3\)$' "$tmp/st2.out"
scrape node-1 "$tmp/m1"
eq "node-1: cilium_unreachable_nodes 1" "$(val "$tmp/m1" cilium_unreachable_nodes)" 1
eq "node-1: connectivity_status{status=unreachable} 1" \
	"$(val "$tmp/m1" cilium_node_health_connectivity_status status=unreachable)" 1

# ---- 5. link up: reachable again ----------------------------------------------------------
ip -n "$FABRIC" link set "$if3" up 2>"$tmp/ip.err"
eq "node-3's underlay link up again" "$?" 0
for n in node-1 node-2 node-3; do
	ms=$(wait_summary 10000 "$n" 3/0/3)
	why="last: $(summary "$n")"
	check "$n: all 3 reachable again within 10 s of link up (${ms:-?} ms)" [ -n "$ms" ]
done
scrape node-1 "$tmp/m2"
eq "node-1: cilium_unreachable_nodes back to 0" "$(val "$tmp/m2" cilium_unreachable_nodes)" 0

# ---- 6. down ------------------------------------------------------------------------------
"$SIM" down "$TAG" >"$tmp/down.out" 2>&1
eq "ciliate-sim down $TAG" "$?" 0
check "no namespace of the cluster is left" eval "! ip netns list | grep -qE '^cil-$TAG-'"
