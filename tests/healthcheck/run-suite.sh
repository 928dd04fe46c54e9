#!/usr/bin/env bash
# Health-check NodePort suite (docs/SERVICES.md, "Health-check NodePort"). Brings up
# tests/healthcheck/cluster.yaml (2 nodes, an external host `prober`, the LoadBalancer service
# shop/web-lb with externalTrafficPolicy Local and healthCheckNodePort 31000, its one backend
# shop/web1 on node-1) and asks each node's port from the external host with curl, as a cloud
# load balancer's prober would:
#   - node-1 answers 200, node-2 503, with exactly kube-proxy's headers (Content-Type,
#     X-Content-Type-Options, X-Load-Balancing-Endpoint-Weight) and body (parsed with
#     python3's json: service namespace/name, localEndpoints 1 / 0, serviceProxyHealthy);
#   - relabelling the pods (the backend moves to shop/web2 on node-2) flips both answers within
#     a few seconds (measured);
#   - a second service whose port is held on node-2 by another process: the agent logs it
#     (naming kube-proxy), keeps running, serves it on node-1, and serves it on node-2 once
#     the port is free (the retry);
#   - deleting the services closes the ports (connection refused);
#   - tests/healthcheck/cluster-off.yaml (enable-health-check-nodeport: "false"): no listener,
#     while the node itself answers (its /metrics port).
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
CLI=$build/bin/ciliate
PY=python3
SCENARIO=tests/healthcheck/cluster.yaml
SCENARIO_OFF=tests/healthcheck/cluster-off.yaml
TAG=hcheck    # the Clusters' metadata.name
TAG_OFF=hcoff
STATE_DIR=/run/ciliate/sim
STORE=file://$STATE_DIR/$TAG/store
NODE1=192.0.2.1 # underlay addresses in node order
NODE2=192.0.2.2
PORT=31000  # shop/web-lb's healthCheckNodePort
PORT2=31001 # shop/web-lb2's, held on node-2 by a stand-in for kube-proxy

for b in ciliate ciliate-sim ciliate-agent ciliate-cni ciliate-echo; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL: $build/bin/$b is missing (run make first)"
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi
for t in curl "$PY" ip; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP: $t is not installed (bash ci/install-deps.sh)"
		exit 77
	fi
done

tmp=$(mktemp -d /tmp/ciliate-t-hcheck.XXXXXX)
passed=0
failed=0
start=$SECONDS
holder="" # the process this suite started to hold PORT2 on node-2
source tests/lib/suite.sh # pass / fail / check (cwd is the repository root)

cluster_left() { [ -e "$STATE_DIR/$1.json" ] || ip netns list 2>/dev/null | grep -qE "^cil-$1-"; }
finish() {
	trap - EXIT INT TERM HUP
	if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then
		kill "$holder"
		wait "$holder" 2>/dev/null
	fi
	for t in "$TAG" "$TAG_OFF"; do
		cluster_left "$t" && "$SIM" down "$t" >/dev/null 2>&1
	done
	rm -rf "$tmp"
	echo "suite time: $((SECONDS - start)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap 'echo "interrupted"; failed=$((failed + 1)); finish' INT TERM HUP
trap finish EXIT

# Clusters of these tags left by another run: skip if a live ciliate-sim owns one, else clean.
for t in "$TAG" "$TAG_OFF"; do
	f=$STATE_DIR/$t.json
	if [ -e "$f" ]; then
		owner=$(grep -A1 '"owner"' "$f" | grep -oE '"pid": [0-9]+' | grep -oE '[0-9]+')
		if [ -n "$owner" ] && [ "$(cat "/proc/$owner/comm" 2>/dev/null)" = ciliate-sim ]; then
			echo "SKIP: cluster tag $t is being used by ciliate-sim pid $owner (another run?)"
			rm -rf "$tmp"
			trap - EXIT
			exit 77
		fi
	fi
	if cluster_left "$t"; then
		echo "note: removing cluster $t left by an earlier run"
		"$SIM" down "$t" >/dev/null 2>&1
	fi
done

# ---- helpers -------------------------------------------------------------------------------
eq() { why="got $2, want $3"; check "$1" [ "$2" = "$3" ]; }
# ask TAG ADDR PORT OUT: one GET from the external host (curl -i: head and body in OUT);
# prints curl's "%{http_code} %{exitcode}" ("000 7": refused)
ask() {
	timeout 10 "$SIM" exec -c "$1" ext/prober -- \
		curl -s -i -m 3 -o "$4" -w '%{http_code} %{exitcode}' "http://$2:$3/" 2>/dev/null
}
# code TAG ADDR PORT: the status code alone
code() { ask "$1" "$2" "$3" /dev/null | cut -d' ' -f1; }
# answer.py FILE STATUS NS NAME N: FILE (curl -i) is exactly kube-proxy's answer
cat >"$tmp/answer.py" <<'EOF'
import json, sys

f, status, ns, name, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
try:
    raw = open(f, "rb").read().decode()
except OSError as e:
    sys.exit(f"no answer: {e}")
head, sep, body = raw.partition("\r\n\r\n")
lines = head.split("\r\n")
errors = []
if not sep:
    errors.append("no end of the head")
reason = {200: "OK", 503: "Service Unavailable"}[status]
if lines[0] != f"HTTP/1.1 {status} {reason}":
    errors.append(f"status line {lines[0]!r}, want 'HTTP/1.1 {status} {reason}'")
headers = {}
for l in lines[1:]:
    k, _, v = l.partition(": ")
    if k.lower() in headers:
        errors.append(f"header {k} twice")
    headers[k.lower()] = v
want = {
    "content-type": "application/json",
    "x-content-type-options": "nosniff",
    "x-load-balancing-endpoint-weight": str(n),
    "content-length": str(len(body.encode())),
    "connection": "close",
}
if headers != want:
    errors.append(f"headers {headers}, want exactly {want}")
want_body = ('{"service": {"namespace": "%s","name": "%s"},"localEndpoints": %d,'
             '"serviceProxyHealthy": true}' % (ns, name, n))
if body != want_body:
    errors.append(f"body {body!r}, want kube-proxy's {want_body!r}")
try:
    d = json.loads(body)
    if d != {"service": {"namespace": ns, "name": name}, "localEndpoints": n,
             "serviceProxyHealthy": True}:
        errors.append(f"JSON {d}")
except ValueError as e:
    errors.append(f"body is not JSON: {e}")
print("; ".join(errors) if errors else "as kube-proxy answers")
sys.exit(1 if errors else 0)
EOF
# answers NAME FILE STATUS NS SVC N: one check that FILE is that answer
answers() {
	why="$("$PY" "$tmp/answer.py" "$2" "$3" "$4" "$5" "$6" 2>&1 | head -c 600)"
	check "$1" eval "'$PY' '$tmp/answer.py' '$2' '$3' '$4' '$5' '$6' >/dev/null"
}
# until_code TAG ADDR PORT CODE SECONDS: polls until ADDR:PORT answers CODE (bounded); prints
# the milliseconds it took
until_code() {
	local t0 i c
	t0=$(date +%s%N)
	for ((i = 0; i < $5 * 5; i++)); do
		c=$(code "$1" "$2" "$3")
		[ "$c" = "$4" ] && break
		sleep 0.2
	done
	echo $((($(date +%s%N) - t0) / 1000000))
	[ "$c" = "$4" ]
}
pod() { # NAME NODE APP IP: a Pod manifest (re-applying one relabels it)
	printf -- '---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: shop, labels: {app: %s}}\n' "$1" "$3"
	printf 'spec:\n  nodeName: %s\n  containers:\n  - name: web\n    image: echo\n' "$2"
	printf '    ports:\n    - {containerPort: 8080, protocol: TCP}\nstatus: {podIP: %s}\n' "$4"
}

# ---- 1. bring-up ---------------------------------------------------------------------------
if ! timeout 120 "$SIM" up "$SCENARIO" >"$tmp/up.out" 2>&1; then
	fail "ciliate-sim up $SCENARIO" "$(tail -3 "$tmp/up.out")"
	exit 1
fi
pass "ciliate-sim up $SCENARIO"

# ---- 2. node-1 has the backend, node-2 has none ----------------------------------------------
why="node-1 never answered 200 on $PORT"
check "node-1 serves the health check of shop/web-lb (200 within 10 s)" \
	eval "until_code $TAG $NODE1 $PORT 200 10 >/dev/null"
r=$(ask "$TAG" "$NODE1" "$PORT" "$tmp/n1.txt")
eq "node-1: curl from the external host gets 200" "$r" "200 0"
answers "node-1: exactly kube-proxy's headers and body, localEndpoints 1" "$tmp/n1.txt" \
	200 shop web-lb 1
r=$(ask "$TAG" "$NODE2" "$PORT" "$tmp/n2.txt")
eq "node-2: curl from the external host gets 503" "$r" "503 0"
answers "node-2: exactly kube-proxy's headers and body, localEndpoints 0" "$tmp/n2.txt" \
	503 shop web-lb 0
timeout 10 "$SIM" exec -c "$TAG" ext/prober -- \
	curl -s -o /dev/null -w '%{http_code}' -m 3 "http://$NODE1:$PORT/healthz?x=1" >"$tmp/path.txt" 2>/dev/null
eq "node-1: any path answers alike (/healthz?x=1)" "$(cat "$tmp/path.txt")" 200
timeout 10 "$SIM" exec -c "$TAG" ext/prober -- \
	curl -s -o /dev/null -w '%{http_code}' -m 3 -X POST "http://$NODE1:$PORT/" >"$tmp/post.txt" 2>/dev/null
eq "node-1: POST is 405 (GET and HEAD only)" "$(cat "$tmp/post.txt")" 405

# ---- 3. the backend moves to node-2: both answers flip -------------------------------------
{
	pod web1 node-1 spare 10.244.0.10
	pod web2 node-2 web 10.244.1.10
} >"$tmp/move.yaml"
"$CLI" apply -f "$tmp/move.yaml" --store "$STORE" >"$tmp/move.out" 2>&1
why="$(cat "$tmp/move.out")"
check "ciliate apply: web1 relabelled app=spare, web2 app=web" grep -q 'configured' "$tmp/move.out"
ms=$(until_code "$TAG" "$NODE2" "$PORT" 200 5)
rc=$?
why="node-2 still not 200 after ${ms} ms"
check "node-2 answers 200 within 5 s of the apply (took ${ms} ms)" [ $rc -eq 0 ]
ms=$(until_code "$TAG" "$NODE1" "$PORT" 503 5)
rc=$?
why="node-1 still not 503 after ${ms} ms"
check "node-1 answers 503 within 5 s of the apply (${ms} ms more)" [ $rc -eq 0 ]
ask "$TAG" "$NODE2" "$PORT" "$tmp/n2b.txt" >/dev/null
answers "node-2 now: 200, localEndpoints 1, weight 1" "$tmp/n2b.txt" 200 shop web-lb 1
ask "$TAG" "$NODE1" "$PORT" "$tmp/n1b.txt" >/dev/null
answers "node-1 now: 503, localEndpoints 0, weight 0" "$tmp/n1b.txt" 503 shop web-lb 0

# ---- 4. a port held by someone else (kube-proxy still running?) ------------------------------
timeout 40 "$SIM" exec -c "$TAG" node-2 -- "$PY" -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
print("holding", flush=True)
time.sleep(30)' "$PORT2" >"$tmp/holder.out" 2>&1 &
holder=$!
for ((i = 0; i < 100; i++)); do grep -q holding "$tmp/holder.out" && break; sleep 0.1; done
why="$(cat "$tmp/holder.out")"
check "a stand-in process holds TCP $PORT2 on node-2" grep -q holding "$tmp/holder.out"
cat >"$tmp/lb2.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: web-lb2, namespace: shop}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: $PORT2
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30081}
EOF
"$CLI" apply -f "$tmp/lb2.yaml" --store "$STORE" >"$tmp/lb2.out" 2>&1
why="$(cat "$tmp/lb2.out")"
check "ciliate apply: shop/web-lb2 (healthCheckNodePort $PORT2)" grep -q 'created' "$tmp/lb2.out"
why="node-1 never answered 503 on $PORT2"
check "node-1 serves shop/web-lb2's port (503: no local endpoint)" \
	eval "until_code $TAG $NODE1 $PORT2 503 5 >/dev/null"
LOG2=$STATE_DIR/$TAG/agent-node-2.log
for ((i = 0; i < 50; i++)); do grep -q "NodePort $PORT2 .*not served" "$LOG2" && break; sleep 0.1; done
why="$(grep -i health "$LOG2" | tail -3)"
check "node-2's agent logs that $PORT2 is in use and asks about kube-proxy" \
	grep -qE "health-check NodePort $PORT2 of service shop/web-lb2 not served: .*Address already in use \(is kube-proxy still running on this node\?\)" "$LOG2"
r=$(timeout 10 "$CLI" status --socket "/run/ciliate/cil-$TAG-node-2/agent.sock" -o json 2>/dev/null |
	"$PY" -c 'import json,sys; print(json.load(sys.stdin)["agents"][0]["reconcile"]["errors"])' 2>/dev/null)
eq "node-2's agent runs on, its reconciles unaffected (0 errors)" "$r" 0
eq "node-2: still 200 on $PORT (its other listener is unaffected)" "$(code "$TAG" "$NODE2" "$PORT")" 200
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
holder=""
ms=$(until_code "$TAG" "$NODE2" "$PORT2" 200 10)
rc=$?
why="not served $ms ms after the port was freed; $(grep "$PORT2" "$LOG2" | tail -2)"
check "node-2 serves $PORT2 once the port is free (retry; took ${ms} ms)" [ $rc -eq 0 ]
ask "$TAG" "$NODE2" "$PORT2" "$tmp/n2c.txt" >/dev/null
answers "node-2 on $PORT2: 200 for shop/web-lb2, localEndpoints 1" "$tmp/n2c.txt" \
	200 shop web-lb2 1

# ---- 5. deleting the services closes the ports ---------------------------------------------
printf 'kind: Service\nmetadata: {name: web-lb, namespace: shop}\n---\nkind: Service\nmetadata: {name: web-lb2, namespace: shop}\n' >"$tmp/del.yaml"
"$CLI" delete -f "$tmp/del.yaml" --store "$STORE" >"$tmp/del.out" 2>&1
why="$(cat "$tmp/del.out")"
check "ciliate delete -f: both services" eval "[ \$(grep -c deleted '$tmp/del.out') -eq 2 ]"
for n in "$NODE1" "$NODE2"; do
	for p in "$PORT" "$PORT2"; do
		ms=$(until_code "$TAG" "$n" "$p" 000 5)
		rc=$?
		r=$(ask "$TAG" "$n" "$p" /dev/null)
		why="curl says '$r' after ${ms} ms"
		check "$n:$p refuses connections (curl exit 7) once the service is gone" \
			eval "[ $rc -eq 0 ] && [ '$r' = '000 7' ]"
	done
done
"$SIM" down "$TAG" >"$tmp/down.out" 2>&1
why="$(tail -2 "$tmp/down.out")"
check "ciliate-sim down $TAG leaves no namespace" eval "! cluster_left $TAG"

# ---- 6. enable-health-check-nodeport: "false" ----------------------------------------------
if ! timeout 120 "$SIM" up "$SCENARIO_OFF" >"$tmp/up-off.out" 2>&1; then
	fail "ciliate-sim up $SCENARIO_OFF" "$(tail -3 "$tmp/up-off.out")"
	exit 1
fi
pass "ciliate-sim up $SCENARIO_OFF"
why="node-1's /metrics never answered"
check "off: node-1 itself answers the external host (its :9962/metrics)" \
	eval "[ \"\$(timeout 10 '$SIM' exec -c $TAG_OFF ext/prober -- curl -s -o /dev/null -w '%{http_code}' -m 3 http://$NODE1:9962/metrics)\" = 200 ]"
r=$(ask "$TAG_OFF" "$NODE1" "$PORT" /dev/null)
eq "off: nothing listens on $PORT (connection refused)" "$r" "000 7"
why="$(tail -3 "$STATE_DIR/$TAG_OFF/agent-node-1.log")"
check "off: the agent logs that health-check NodePorts are disabled" \
	grep -q 'health-check NodePorts: disabled (enable-health-check-nodeport: false)' \
	"$STATE_DIR/$TAG_OFF/agent-node-1.log"
"$SIM" down "$TAG_OFF" >"$tmp/down-off.out" 2>&1
check "ciliate-sim down $TAG_OFF leaves no namespace" eval "! cluster_left $TAG_OFF"
exit 0 # finish (EXIT trap) prints the summary
