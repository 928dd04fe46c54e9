#!/usr/bin/env bash
# Prometheus metrics suite (docs/OBSERVABILITY.md, Metrics): brings up tests/metrics/
# cluster.yaml (2 nodes, 3 pods, one NetworkPolicy letting only port 80 into shop/web) with
# `ciliate-sim up`, scrapes every agent's /metrics from inside its node namespace (curl),
# sends known traffic from shop/client (ciliate-probe in the pod's namespace) and checks,
# with an independent parser (Debian's python3-prometheus-client, tests/metrics/expo.py),
# that the exposition parses with HELP and TYPE for each family, that the gauges match the
# cluster and that the drop and forward counters moved by what was sent, on the right node
# and in the right direction. Also: the HTTP side (404, 405, HEAD, an oversized request,
# scraping over the underlay), --prometheus-serve-addr validation, that the checks reject a
# broken exposition, that nothing listens in the root namespace, and that `down` leaves
# nothing behind. Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
PROBE=$build/bin/ciliate-probe
PY=/usr/bin/python3 # Debian's interpreter: python3-prometheus-client is installed for it
EXPO=tests/metrics/expo.py
SCENARIO=tests/metrics/cluster.yaml
TAG=metrics
STATE_DIR=/run/ciliate/sim
WEB_IP=10.244.1.10 # status.podIP pinned in the scenario
PORT=9962          # the agent's default --prometheus-serve-addr

for b in ciliate-sim ciliate-agent ciliate-echo ciliate-probe; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL: $build/bin/$b is missing (run make first)"
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi
for t in ip curl ss; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP: $t is not installed (bash ci/install-deps.sh)"
		exit 77
	fi
done
if ! "$PY" -c 'import prometheus_client.parser' 2>/dev/null; then
	echo "SKIP: $PY cannot import prometheus_client (python3-prometheus-client; bash ci/install-deps.sh)"
	exit 77
fi
probe_ns="ciliate-t-metrics$$"
if ! ip netns add "$probe_ns" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces here"
	exit 77
fi
ip netns del "$probe_ns"

tmp=$(mktemp -d /tmp/ciliate-t-metrics.XXXXXX)
passed=0
failed=0
start=$SECONDS
source tests/lib/suite.sh # pass / fail / check (cwd is the repository root)

finish() {
	trap - EXIT INT TERM HUP
	if [ -e "$STATE_DIR/$TAG.json" ] || ip netns list | grep -qE "^cil-$TAG-"; then
		"$SIM" down "$TAG" >/dev/null 2>&1
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

# ---- helpers -------------------------------------------------------------------------------
# scrape NODE OUT: GET /metrics inside NODE's namespace; body in OUT, response head in OUT.h
scrape() {
	"$SIM" exec -c "$TAG" "$1" -- curl -sS -m 5 -D "$2.h" -o "$2" \
		"http://127.0.0.1:$PORT/metrics" 2>>"$tmp/curl.err"
}
# val FILE SAMPLE [K=V...]: the value (sum over matching label sets; 0 when absent)
val() { "$PY" "$EXPO" get "$@"; }
# probe ARGS...: ciliate-probe inside shop/client (JSON lines)
probe() { "$SIM" exec -c "$TAG" shop/client -- "$PROBE" --to "$WEB_IP" -o json "$@"; }
# summary FILE FIELD: a number of the probe's summary line
summary() { grep -oE "\"$2\":[0-9]+" "$1" | tail -1 | grep -oE '[0-9]+$'; }
# eq NAME GOT WANT / between NAME GOT LO HI / atleast NAME GOT LO
eq() { why="got $2, want $3"; check "$1" [ "$2" = "$3" ]; }
between() { why="got $2, want $3..$4"; check "$1" [ "$2" -ge "$3" -a "$2" -le "$4" ]; }
atleast() { why="got $2, want >= $3"; check "$1" [ "$2" -ge "$3" ]; }

FAMILIES="cilium_drop_count_total cilium_drop_bytes_total cilium_forward_count_total
cilium_forward_bytes_total cilium_policy cilium_endpoint cilium_endpoint_state cilium_identity
hubble_lost_events_total cilium_process_cpu_seconds_total ciliate_agent_reconciles_total"

# ---- 1. the checks themselves can fail -----------------------------------------------------
cat >"$tmp/good.prom" <<'EOF'
# HELP cilium_policy Number of policies currently loaded
# TYPE cilium_policy gauge
cilium_policy 1
EOF
printf '# TYPE cilium_policy gauge\ncilium_policy 1\n' >"$tmp/nohelp.prom"
printf '# HELP x y\n# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n' >"$tmp/dup.prom"
printf '# HELP x y\n# TYPE x gauge\nx{a="1} 1\n' >"$tmp/broken.prom"
printf '# HELP cilium_policy p\n# TYPE cilium_policy counter\ncilium_policy_total 1\n' \
	>"$tmp/wrongtype.prom"
check "expo.py accepts a good exposition" "$PY" "$EXPO" check "$tmp/good.prom" cilium_policy
for bad in nohelp dup broken wrongtype; do
	check "expo.py rejects an exposition ($bad)" \
		eval "! $PY $EXPO check $tmp/$bad.prom cilium_policy >/dev/null 2>&1"
done
check "expo.py reports a missing family" \
	eval "! $PY $EXPO check $tmp/good.prom cilium_endpoint >/dev/null 2>&1"

# ---- 2. the flag ---------------------------------------------------------------------------
for a in "9962" "host:port" ":0" ":70000" "::1:9962" ; do
	"$build/bin/ciliate-agent" --node x --prometheus-serve-addr "$a" >"$tmp/flag.out" 2>&1
	rc=$?
	why="exit $rc: $(head -1 "$tmp/flag.out")"
	check "--prometheus-serve-addr '$a' is a usage error (exit 2)" \
		eval "[ $rc -eq 2 ] && grep -q 'prometheus-serve-addr' '$tmp/flag.out'"
done

# ---- 3. bring-up and the first scrape ------------------------------------------------------
if ! timeout 120 "$SIM" up "$SCENARIO" >"$tmp/up.out" 2>&1; then
	fail "ciliate-sim up $SCENARIO" "$(tail -3 "$tmp/up.out")"
	exit 1
fi
pass "ciliate-sim up $SCENARIO"

for n in node-1 node-2; do
	why="$(tail -2 "$tmp/curl.err" 2>/dev/null)"
	check "$n: GET /metrics answers inside the node" scrape "$n" "$tmp/$n.0"
	why="$(head -1 "$tmp/$n.0.h" 2>/dev/null)"
	check "$n: 200 with Content-Type text/plain; version=0.0.4" \
		eval "head -1 '$tmp/$n.0.h' | grep -q '^HTTP/1.1 200' &&
		      grep -qi '^Content-Type: text/plain; version=0.0.4' '$tmp/$n.0.h'"
	why="$("$PY" "$EXPO" check "$tmp/$n.0" $FAMILIES 2>&1 | head -3)"
	# shellcheck disable=SC2086
	check "$n: the exposition parses, HELP and TYPE for every family, all families present" \
		"$PY" "$EXPO" check "$tmp/$n.0" $FAMILIES
	eq "$n: cilium_policy is the one NetworkPolicy" "$(val "$tmp/$n.0" cilium_policy)" 1
	eq "$n: cilium_identity{type=cluster_local} is the 3 label sets" \
		"$(val "$tmp/$n.0" cilium_identity type=cluster_local)" 3
	atleast "$n: cilium_identity{type=reserved}" \
		"$(val "$tmp/$n.0" cilium_identity type=reserved)" 1
	eq "$n: hubble_lost_events_total{source=perf_event_ring_buffer} is exposed" \
		"$(grep -c '^hubble_lost_events_total{source="perf_event_ring_buffer"} [0-9]' "$tmp/$n.0")" 1
done
eq "node-1: cilium_endpoint = its 2 pods" "$(val "$tmp/node-1.0" cilium_endpoint)" 2
eq "node-2: cilium_endpoint = its 1 pod" "$(val "$tmp/node-2.0" cilium_endpoint)" 1
eq "node-1: cilium_endpoint_state{endpoint_state=ready} = 2" \
	"$(val "$tmp/node-1.0" cilium_endpoint_state endpoint_state=ready)" 2
eq "node-2: cilium_endpoint_state{endpoint_state=ready} = 1" \
	"$(val "$tmp/node-2.0" cilium_endpoint_state endpoint_state=ready)" 1

# ---- 4. N denied UDP datagrams: exactly N policy drops at node-2's ingress ---------------
# One datagram per attempt (--udp-tries 1): nothing retransmits it, so the count is exact.
N=20
probe --port 81 --protocol UDP --udp-tries 1 --timeout-ms 200 --count $N --interval-ms 0 \
	>"$tmp/udp81.out" 2>&1
eq "UDP to web:81 ($N attempts): none answered" "$(summary "$tmp/udp81.out" allowed)/$(summary "$tmp/udp81.out" attempts)" "0/$N"
scrape node-1 "$tmp/node-1.1" && scrape node-2 "$tmp/node-2.1"
d0=$(val "$tmp/node-2.0" cilium_drop_count_total reason="Policy denied" direction=INGRESS)
d1=$(val "$tmp/node-2.1" cilium_drop_count_total reason="Policy denied" direction=INGRESS)
eq "node-2: cilium_drop_count_total{reason=\"Policy denied\",direction=INGRESS} rose by exactly $N" \
	"$((d1 - d0))" "$N"
b0=$(val "$tmp/node-2.0" cilium_drop_bytes_total reason="Policy denied" direction=INGRESS)
b1=$(val "$tmp/node-2.1" cilium_drop_bytes_total reason="Policy denied" direction=INGRESS)
# each drop is one Ethernet frame of an IPv4/UDP datagram: 42 bytes of headers at least,
# at most the 1450-byte tunnel MTU plus its Ethernet header
between "node-2: cilium_drop_bytes_total for those drops is $N frames' worth" \
	"$((b1 - b0))" "$((N * 42))" "$((N * 1464))"

# ---- 5. K denied TCP connection attempts -------------------------------------------------
# Each attempt sends a SYN and gives up after 500 ms; the kernel's first SYN retransmission
# comes after its initial RTO of 1 s, so each attempt is one SYN: K drops (the upper bound
# 2K allows for a retransmission on a badly delayed run).
K=5
probe --port 81 --timeout-ms 500 --count $K --interval-ms 0 >"$tmp/tcp81.out" 2>&1
eq "TCP to web:81 ($K attempts): none answered" "$(summary "$tmp/tcp81.out" allowed)/$(summary "$tmp/tcp81.out" attempts)" "0/$K"
scrape node-1 "$tmp/node-1.2" && scrape node-2 "$tmp/node-2.2"
d2=$(val "$tmp/node-2.2" cilium_drop_count_total reason="Policy denied" direction=INGRESS)
between "node-2: Policy denied at INGRESS rose by the $K SYNs" "$((d2 - d1))" "$K" "$((2 * K))"

# ---- 6. M allowed TCP connections: forwarded at both ends ---------------------------------
# A connection that exchanges a request has the client send SYN, ACK and the request at
# least (node-1 EGRESS; node-2 INGRESS when they arrive) and the server SYN-ACK and the
# answer at least (node-2 EGRESS; node-1 INGRESS).
M=10
probe --port 80 --timeout-ms 2000 --count $M --interval-ms 0 >"$tmp/tcp80.out" 2>&1
eq "TCP to web:80 ($M attempts): all answered" "$(summary "$tmp/tcp80.out" allowed)" "$M"
scrape node-1 "$tmp/node-1.3" && scrape node-2 "$tmp/node-2.3"
fwd() { # NODE DIR: forwarded packets between scrapes 2 and 3
	echo $(($(val "$tmp/$1.3" cilium_forward_count_total direction="$2") -
		$(val "$tmp/$1.2" cilium_forward_count_total direction="$2")))
}
atleast "node-1: cilium_forward_count_total{direction=EGRESS} rose by >= 3 per connection" \
	"$(fwd node-1 EGRESS)" $((3 * M))
atleast "node-2: cilium_forward_count_total{direction=INGRESS} rose by >= 3 per connection" \
	"$(fwd node-2 INGRESS)" $((3 * M))
atleast "node-2: cilium_forward_count_total{direction=EGRESS} rose by >= 2 per connection" \
	"$(fwd node-2 EGRESS)" $((2 * M))
atleast "node-1: cilium_forward_count_total{direction=INGRESS} rose by >= 2 per connection" \
	"$(fwd node-1 INGRESS)" $((2 * M))
fb=$(($(val "$tmp/node-1.3" cilium_forward_bytes_total direction=EGRESS) -
	$(val "$tmp/node-1.2" cilium_forward_bytes_total direction=EGRESS)))
atleast "node-1: cilium_forward_bytes_total{direction=EGRESS} rose by >= 54 bytes a packet" \
	"$fb" $((54 * 3 * M))
d3=$(val "$tmp/node-2.3" cilium_drop_count_total reason="Policy denied" direction=INGRESS)
eq "node-2: allowed traffic added no Policy denied drop" "$((d3 - d2))" 0

# ---- 7. the drops were counted where they happened, nowhere else ---------------------------
eq "node-1: no Policy denied drop in either direction" \
	"$(($(val "$tmp/node-1.3" cilium_drop_count_total reason="Policy denied") -
		$(val "$tmp/node-1.0" cilium_drop_count_total reason="Policy denied")))" 0
eq "node-2: no Policy denied drop at EGRESS" \
	"$(($(val "$tmp/node-2.3" cilium_drop_count_total reason="Policy denied" direction=EGRESS) -
		$(val "$tmp/node-2.0" cilium_drop_count_total reason="Policy denied" direction=EGRESS)))" 0
for n in node-1 node-2; do
	for i in 1 2 3; do
		"$PY" "$EXPO" check "$tmp/$n.$i" $FAMILIES >>"$tmp/later.err" 2>&1 || echo "$n.$i" >>"$tmp/later.bad"
	done
done
why="$(head -3 "$tmp/later.err" 2>/dev/null)"
check "every later scrape parses with HELP and TYPE" [ ! -e "$tmp/later.bad" ]

# ---- 8. HTTP -------------------------------------------------------------------------------
code() { # NODE CURL-ARGS...: the status code
	local n=$1
	shift
	"$SIM" exec -c "$TAG" "$n" -- curl -s -m 5 -o /dev/null -w '%{http_code}' "$@"
}
eq "GET /other is 404" "$(code node-1 "http://127.0.0.1:$PORT/other")" 404
eq "POST /metrics is 405" "$(code node-1 -X POST -d x "http://127.0.0.1:$PORT/metrics")" 405
eq "GET /metrics?x=1 is 200" "$(code node-1 "http://127.0.0.1:$PORT/metrics?x=1")" 200
"$SIM" exec -c "$TAG" node-1 -- curl -s -m 5 -I "http://127.0.0.1:$PORT/metrics" >"$tmp/head.out"
why="$(head -3 "$tmp/head.out")"
check "HEAD /metrics: 200 with a Content-Length, no body" \
	eval "head -1 '$tmp/head.out' | grep -q ' 200' && grep -qi '^Content-Length: [1-9]' '$tmp/head.out'"
big=$(head -c 12000 /dev/zero | tr '\0' 'a')
eq "a request head over 8 KiB is 431" \
	"$(code node-1 -H "X-Big: $big" "http://127.0.0.1:$PORT/metrics")" 431
"$SIM" exec -c "$TAG" node-1 -- curl -s -m 5 -D "$tmp/conn.h" -o /dev/null \
	"http://127.0.0.1:$PORT/metrics"
check "the answer says Connection: close" grep -qi '^Connection: close' "$tmp/conn.h"
# 40 connections at once (more than the agent keeps open) that never send a request, then a
# scrape: it still gets its answer, and the agent still answers its API
"$SIM" exec -c "$TAG" node-1 -- bash -c "for i in \$(seq 40); do exec {fd}<>/dev/tcp/127.0.0.1/$PORT; done; sleep 1" &
idle=$!
sleep 0.5
eq "a scrape among 40 idle connections is answered" "$(code node-1 "http://127.0.0.1:$PORT/metrics")" 200
wait $idle 2>/dev/null
sock=/run/ciliate/cil-$TAG-node-1/agent.sock
"$build/bin/ciliate" endpoint list --socket "$sock" -o json >"$tmp/eps.json" 2>&1
why="$(head -c 300 "$tmp/eps.json")"
check "the agent's API still answers (endpoint list: its 2 pods)" \
	eval "[ \$(grep -oE '\"pod\": *\"shop/(client|db)\"' '$tmp/eps.json' | wc -l) -eq 2 ]"
# scraped from elsewhere, the way Prometheus does: node-2 over the underlay to node-1
eq "node-1's /metrics answers over the underlay (from node-2)" \
	"$(code node-2 "http://192.0.2.1:$PORT/metrics")" 200

# ---- 9. nothing in the root namespace ----------------------------------------------------
why="$(ss -Hltnp "sport = :$PORT" | head -2)"
check "no ciliate-agent listens on :$PORT in the root namespace" \
	eval "! ss -Hltnp 'sport = :$PORT' | grep -q ciliate-agent"

# ---- 10. teardown --------------------------------------------------------------------------
"$SIM" down "$TAG" >"$tmp/down.out" 2>&1
why="$(tail -2 "$tmp/down.out")"
check "ciliate-sim down" eval "! ip netns list | grep -qE '^cil-$TAG-'"
exit 0 # finish (EXIT trap) prints the summary
