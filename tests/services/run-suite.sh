#!/usr/bin/env bash
# Services suite (docs/SERVICES.md, "Maps and CLI"): brings up tests/services/cluster.yaml
# (2 nodes; x/b1 and x/b2 behind the ClusterIP service x/web and the NodePort service
# x/web-np) with `ciliate-sim up` and checks what the agents program into the service maps
# and what the CLI shows of them — not the datapath's translation:
#   - `ciliate service list` (table and -o json) against node-1's agent;
#   - `ciliate bpf lb list` (table, -o json) on node-1's pin dir;
#   - the pinned maps, read independently with bpftool, hold exactly the expected entries;
#   - an agent restart on the same pins writes nothing (lastUpserts/lastDeletes 0);
#   - deleting pod x/b2 (`ciliate delete -f` into the cluster's store) removes its backend
#     slots and its backend entry;
#   - a Maglev service with ClientIP affinity (x/mg, `ciliate apply -f`, ClusterIP and an
#     external IP over two given endpoints): `ciliate bpf lb maglev list` shows one table of
#     16381 entries per frontend, both backends in even shares, the same tables on node-2;
#     the affinity pairs are in ciliate_lb_affinity_match; a restarted agent rewrites no
#     table; deleting the service removes its tables and pairs.
#   - NAT, conntrack and flows of translated connections (tests/services/nat.yaml, its own
#     cluster): after a masqueraded and a NodePort SNAT connection, `ciliate bpf nat list`
#     (text, -o json) shows both OUT/IN pairs; after a ClusterIP connection, `bpf ct list`
#     shows its service entry with the backend, `observe` its destination_service, and
#     `policy trace` to svc/x/remote names the backend and traces policy to it.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
CLI=$build/bin/ciliate
AGENT=$build/bin/ciliate-agent
PY=/usr/bin/python3
SCENARIO=tests/services/cluster.yaml
TAG=svclist
STATE_DIR=/run/ciliate/sim
INST=cil-$TAG-node-1
SOCK=/run/ciliate/$INST/agent.sock
PINS=/sys/fs/bpf/ciliate/$INST
STORE=file://$STATE_DIR/$TAG/store
B1=10.244.0.11:8080/TCP # status.podIP pinned in the scenario
B2=10.244.1.10:8080/TCP
NODE1_IP=192.0.2.1 # the first underlay address

for b in ciliate-sim ciliate-agent ciliate; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL: $build/bin/$b is missing (run make first)"
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi
for t in ip bpftool nsenter "$PY"; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP: $t is not installed (bash ci/install-deps.sh)"
		exit 77
	fi
done
probe_ns="ciliate-t-svc$$"
if ! ip netns add "$probe_ns" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces here"
	exit 77
fi
ip netns del "$probe_ns"

tmp=$(mktemp -d /tmp/ciliate-t-services.XXXXXX)
passed=0
failed=0
start=$SECONDS
my_agent="" # the agent this suite restarted (the simulator does not know it)
source tests/lib/suite.sh # pass / fail / check (cwd is the repository root)

finish() {
	trap - EXIT INT TERM HUP
	if [ -n "$my_agent" ] && kill -0 "$my_agent" 2>/dev/null; then
		kill "$my_agent"
		for _ in $(seq 50); do kill -0 "$my_agent" 2>/dev/null || break; sleep 0.1; done
	fi
	if [ -e "$STATE_DIR/$TAG.json" ] || ip netns list 2>/dev/null | grep -qE "^cil-$TAG-"; then
		"$SIM" down "$TAG" >/dev/null 2>&1
	fi
	if [ -e "$STATE_DIR/svcnat.json" ] || ip netns list 2>/dev/null | grep -qE "^cil-svcnat-"; then
		"$SIM" down svcnat >/dev/null 2>&1 # step 9's cluster
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
if [ -e "$f" ] || ip netns list 2>/dev/null | grep -qE "^cil-$TAG-"; then
	echo "note: removing cluster $TAG left by an earlier run"
	"$SIM" down "$TAG" >/dev/null 2>&1
fi

# ---- helpers -------------------------------------------------------------------------------
eq() { why="got $2, want $3"; check "$1" [ "$2" = "$3" ]; }
# has NAME FILE REGEX: FILE has a line matching the extended REGEX
has() { why="no line matches /$3/ in: $(head -c 600 "$2")"; check "$1" grep -qE "$3" "$2"; }
hasnt() { why="a line matches /$3/"; check "$1" eval "! grep -qE '$3' '$2'"; }
# maps OUT: the three pinned maps as bpftool formats them (JSON), for maps.py
maps() {
	local m
	for m in services backends revnat; do
		bpftool -j map dump pinned "$PINS/ciliate_lb_$m" >"$1.$m" 2>>"$tmp/bpftool.err" ||
			return 1
	done
}
# wait_model: node-1's agent has reconciled the store's latest revision (bounded: 30 s)
wait_model() {
	local i s
	for i in $(seq 150); do
		s=$("$CLI" status --socket "$SOCK" --store "$STORE" -o json 2>/dev/null |
			"$PY" -c 'import json,sys; d=json.load(sys.stdin); a=d["agents"][0]
print(d["store"]["revision"], a.get("modelRevision", -1))' 2>/dev/null)
		set -- $s
		[ $# -eq 2 ] && [ "$2" -ge "$1" ] && return 0
		sleep 0.2
	done
	return 1
}

# maps.py: checks bpftool's dump of the three maps against the expected frontends.
# Usage: maps.py DUMP SERVICE-LIST-JSON BACKEND...; every frontend of the service list
# must have slot 0 (its count, revnat) and one slot per expected backend in address order;
# nothing else may be in any of the maps.
cat >"$tmp/maps.py" <<'EOF'
import ipaddress, json, socket, sys

dump, svc_json, want_be = sys.argv[1], sys.argv[2], sorted(sys.argv[3:])
def load(m):
    return [(e["formatted"]["key"], e["formatted"]["value"]) for e in json.load(open(f"{dump}.{m}"))]
def ip(a):
    return str(ipaddress.IPv4Address(bytes(a["bytes"][:4])))
def port(p):
    return socket.ntohs(p)
def proto(p):
    return {6: "TCP", 17: "UDP", 132: "SCTP"}.get(p, str(p))

errors = []
backends = {k: f"{ip(v['addr'])}:{port(v['port'])}/{proto(v['proto'])}" for k, v in load("backends")}
if sorted(backends.values()) != want_be:
    errors.append(f"ciliate_lb_backends holds {sorted(backends.values())}, want {want_be}")
services = json.load(open(svc_json))
want_rn = {s["id"]: (s["frontendAddress"]["ip"], s["frontendAddress"]["port"]) for s in services}
got_rn = {k: (ip(v["addr"]), port(v["port"])) for k, v in load("revnat")}
if got_rn != want_rn:
    errors.append(f"ciliate_lb_revnat holds {got_rn}, want {want_rn}")
want = {}
for s in services:
    fe = s["frontendAddress"]
    base = (fe["ip"], fe["port"], fe["protocol"])
    want[base + (0,)] = (0, len(want_be), s["id"])
    for i, b in enumerate(want_be, 1):
        bid = [k for k, a in backends.items() if a == b]
        want[base + (i,)] = (bid[0] if bid else -1, 0, s["id"])
got = {}
for k, v in load("services"):
    got[(ip(k["addr"]), port(k["dport"]), proto(k["proto"]), k["backend_slot"])] = (
        v["backend_id"] if k["backend_slot"] else 0, v["count"], v["rev_nat_index"])
for k in sorted(set(want) | set(got)):
    if want.get(k) != got.get(k):
        errors.append(f"ciliate_lb_services {k}: holds {got.get(k)}, want {want.get(k)}")
print("\n".join(errors[:6]) if errors else f"{len(got)} service, {len(backends)} backend, {len(got_rn)} revnat entries as expected")
sys.exit(1 if errors else 0)
EOF

# ---- 1. bring-up -----------------------------------------------------------------------------
if ! timeout 120 "$SIM" up "$SCENARIO" >"$tmp/up.out" 2>&1; then
	fail "ciliate-sim up $SCENARIO" "$(tail -3 "$tmp/up.out")"
	exit 1
fi
pass "ciliate-sim up $SCENARIO"
why="node-1's agent never reached the store's revision"
check "node-1's agent has reconciled the store" wait_model

# ---- 2. service list ------------------------------------------------------------------------
"$CLI" service list --socket "$SOCK" >"$tmp/list.txt" 2>"$tmp/list.err"
eq "service list exits 0" "$?" 0
has "service list: the header is cilium-dbg's" "$tmp/list.txt" \
	'^ID +Frontend +Service Type +Backend$'
has "service list: 10.96.0.10:80/TCP, ClusterIP, backend 1 is x/b1 (active)" "$tmp/list.txt" \
	"^[0-9]+ +10\.96\.0\.10:80/TCP +ClusterIP +1 => ${B1//./\\.} \(active\)$"
has "service list: backend 2 (x/b2) on a continuation row" "$tmp/list.txt" \
	"^ +2 => ${B2//./\\.} \(active\)$"
has "service list: the NodePort frontend is node-1's address:30080" "$tmp/list.txt" \
	"^[0-9]+ +${NODE1_IP//./\\.}:30080/TCP +NodePort +1 => ${B1//./\\.} \(active\)$"
has "service list: web-np's ClusterIP frontend 10.96.0.11:8080/TCP" "$tmp/list.txt" \
	'^[0-9]+ +10\.96\.0\.11:8080/TCP +ClusterIP +1 => '
eq "service list: 3 frontends, 6 backend rows" \
	"$(grep -cE '[0-9] => ' "$tmp/list.txt")/$(grep -cE '^[0-9]+ ' "$tmp/list.txt")" "6/3"

"$CLI" service list --socket "$SOCK" -o json >"$tmp/list.json" 2>>"$tmp/list.err"
why="$(head -c 300 "$tmp/list.json")"
check "service list -o json parses: x/web with 2 backends on 10.96.0.10:80/TCP" "$PY" -c '
import json, sys
s = [x for x in json.load(open(sys.argv[1])) if x["frontend"] == "10.96.0.10:80/TCP"]
assert len(s) == 1 and s[0]["namespace"] == "x" and s[0]["name"] == "web", s
assert s[0]["type"] == "ClusterIP" and isinstance(s[0]["id"], int) and s[0]["id"] > 0
assert [b["address"] for b in s[0]["backends"]] == sys.argv[2:], s[0]["backends"]
assert all(b["state"] == "active" for b in s[0]["backends"])
' "$tmp/list.json" "$B1" "$B2"
rev=$("$PY" -c 'import json,sys
print([x["id"] for x in json.load(open(sys.argv[1])) if x["frontend"] == "10.96.0.10:80/TCP"][0])' \
	"$tmp/list.json" 2>/dev/null)
rev=${rev:-none}
eq "service list: the table shows the same id" \
	"$(grep -E ' 10\.96\.0\.10:80/TCP ' "$tmp/list.txt" | awk '{print $1}')" "$rev"
"$CLI" service list --socket "$SOCK" -o yaml >/dev/null 2>&1
eq "service list -o yaml is a usage error (exit 2)" "$?" 2

# ---- 3. bpf lb list on the pins ------------------------------------------------------------
"$CLI" bpf lb list --node "$INST" >"$tmp/lb.txt" 2>"$tmp/lb.err"
eq "bpf lb list --node $INST exits 0" "$?" 0
has "bpf lb list: the header is cilium-dbg's" "$tmp/lb.txt" \
	'^SERVICE ADDRESS +BACKEND ADDRESS \(REVNAT_ID\) \(SLOT\)$'
has "bpf lb list: slot 0 of 10.96.0.10:80/TCP with its rev NAT id and flags in words" \
	"$tmp/lb.txt" "^10\.96\.0\.10:80/TCP \(0\) +0\.0\.0\.0:0 \($rev\) \(0\) \[ClusterIP, non-routable\]$"
has "bpf lb list: slot 1 is x/b1" "$tmp/lb.txt" \
	"^10\.96\.0\.10:80/TCP \(1\) +${B1//./\\.} \($rev\) \(1\)$"
has "bpf lb list: slot 2 is x/b2" "$tmp/lb.txt" \
	"^10\.96\.0\.10:80/TCP \(2\) +${B2//./\\.} \($rev\) \(2\)$"
has "bpf lb list: the NodePort slot 0 says NodePort (routable)" "$tmp/lb.txt" \
	"^${NODE1_IP//./\\.}:30080/TCP \(0\) +0\.0\.0\.0:0 \([0-9]+\) \(0\) \[NodePort\]$"
eq "bpf lb list: 9 entries (3 frontends x 3 slots)" "$(($(wc -l <"$tmp/lb.txt") - 1))" 9
"$CLI" bpf lb list --pin-dir "$PINS" >"$tmp/lb2.txt" 2>>"$tmp/lb.err"
check "bpf lb list --pin-dir gives the same" cmp -s "$tmp/lb.txt" "$tmp/lb2.txt"
"$CLI" bpf lb list --pin-dir "$PINS" -o json >"$tmp/lb.json" 2>>"$tmp/lb.err"
why="$(head -c 300 "$tmp/lb.json")"
check "bpf lb list -o json parses: 9 services, 2 backends, 3 revnat" "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert (len(d["services"]), len(d["backends"]), len(d["revnat"])) == (9, 2, 3), d
s0 = [s for s in d["services"] if s["service"] == "10.96.0.10:80/TCP (0)"][0]
assert s0["count"] == 2 and s0["revNatIndex"] == int(sys.argv[2]), s0
' "$tmp/lb.json" "$rev"
"$CLI" bpf lb list --pin-dir "$tmp/nothing" >/dev/null 2>"$tmp/nopin.err"
rc=$?
why="exit $rc: $(head -1 "$tmp/nopin.err")"
check "bpf lb list on a directory without pins fails (exit 1) naming the map" \
	eval "[ $rc -eq 1 ] && grep -q ciliate_lb_services '$tmp/nopin.err'"

# ---- 4. the pinned maps, read with bpftool -------------------------------------------------
why="$(head -2 "$tmp/bpftool.err" 2>/dev/null)"
check "bpftool dumps the three pinned service maps" maps "$tmp/m0"
why="$("$PY" "$tmp/maps.py" "$tmp/m0" "$tmp/list.json" "$B1" "$B2" 2>&1 | head -4)"
check "the pinned maps hold exactly the 3 frontends x (slot 0 + 2 backends), 2 backends, 3 revnat" \
	"$PY" "$tmp/maps.py" "$tmp/m0" "$tmp/list.json" "$B1" "$B2"

# ---- 5. a restarted agent finds the entries in place and writes nothing -------------------
old=$("$PY" -c 'import json,sys
print([h["agent"]["pid"] for h in json.load(open(sys.argv[1]))["hosts"] if h["name"] == "node-1" and "agent" in h][0])' \
	"$STATE_DIR/$TAG.json" 2>/dev/null)
if [ -n "$old" ] && [ "$(cat "/proc/$old/comm" 2>/dev/null)" = ciliate-agent ]; then
	args=()
	while IFS= read -r -d '' a; do args+=("$a"); done <"/proc/$old/cmdline"
	kill "$old"
	for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
	# the same command line in node-1's network namespace (nsenter, not `ip netns exec`,
	# which would hide /sys/fs/bpf)
	nsenter --net="/run/netns/$INST" "${args[@]}" >"$tmp/agent.log" 2>&1 &
	my_agent=$!
	for _ in $(seq 100); do
		"$CLI" status --socket "$SOCK" -o json >"$tmp/st.json" 2>/dev/null && break
		sleep 0.1
	done
	why="$(tail -3 "$tmp/agent.log")"
	check "the restarted agent reports 9 service and 2 backend entries found" \
		grep -q '9 service, 2 backend entries found' "$tmp/agent.log"
	why="$(grep -o '"lastUpserts[^,]*,[^,]*' "$tmp/st.json")"
	check "the restarted agent's first reconcile wrote and deleted nothing" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))["agents"][0]["reconcile"]
assert r["errors"] == 0 and r["lastUpserts"] == 0 and r["lastDeletes"] == 0, r' "$tmp/st.json"
else
	fail "node-1's agent (pid from $STATE_DIR/$TAG.json) is running" "pid '$old'"
fi

# ---- 6. deleting x/b2 removes its backend --------------------------------------------------
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: b2, namespace: x}\n' >"$tmp/b2.yaml"
"$CLI" delete -f "$tmp/b2.yaml" --store "$STORE" >"$tmp/del.out" 2>&1
why="$(cat "$tmp/del.out")"
check "ciliate delete -f (pod x/b2) through the cluster's store" grep -q 'deleted' "$tmp/del.out"
why="node-1's agent never reached the store's revision"
check "node-1's agent has reconciled the deletion" wait_model
"$CLI" bpf lb list --pin-dir "$PINS" >"$tmp/lb3.txt" 2>&1
hasnt "bpf lb list: x/b2 is in no slot any more" "$tmp/lb3.txt" "${B2//./\\.}"
has "bpf lb list: slot 1 of 10.96.0.10:80/TCP is x/b1" "$tmp/lb3.txt" \
	"^10\.96\.0\.10:80/TCP \(1\) +${B1//./\\.} \($rev\) \(1\)$"
hasnt "bpf lb list: no slot 2 left" "$tmp/lb3.txt" '/TCP \(2\) '
"$CLI" service list --socket "$SOCK" -o json >"$tmp/list2.json" 2>&1
why="$(head -2 "$tmp/bpftool.err" 2>/dev/null)"
check "bpftool dumps the maps again" maps "$tmp/m1"
why="$("$PY" "$tmp/maps.py" "$tmp/m1" "$tmp/list2.json" "$B1" 2>&1 | head -4)"
check "the pinned maps hold exactly slot 0 (count 1) + x/b1 per frontend, one backend" \
	"$PY" "$tmp/maps.py" "$tmp/m1" "$tmp/list2.json" "$B1"
"$CLI" service list --socket "$SOCK" >"$tmp/list2.txt" 2>&1
eq "service list: 3 frontends, one backend each" \
	"$(grep -cE '[0-9] => ' "$tmp/list2.txt")/$(grep -cE '^[0-9]+ ' "$tmp/list2.txt")" "3/3"

# ---- 7. Maglev tables and affinity pairs ---------------------------------------------------
INST2=cil-$TAG-node-2
cat >"$tmp/mg.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: mg
  namespace: x
  annotations: {service.cilium.io/lb-algorithm: maglev}
spec:
  clusterIP: 10.96.0.20
  externalIPs: [198.51.100.7]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports:
  - {port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: mg-1
  namespace: x
  labels: {kubernetes.io/service-name: mg}
addressType: IPv4
endpoints:
- addresses: [10.244.0.10]
  conditions: {ready: true}
  nodeName: node-1
- addresses: [10.244.0.11]
  conditions: {ready: true}
  nodeName: node-1
ports:
- {port: 8080, protocol: TCP}
EOF
"$CLI" apply -f "$tmp/mg.yaml" --store "$STORE" >"$tmp/apply.out" 2>&1
eq "ciliate apply -f (service x/mg and its EndpointSlice) exits 0" "$?" 0
why="node-1's agent never reached the store's revision"
check "node-1's agent has reconciled service x/mg" wait_model
"$CLI" bpf lb maglev list --node "$INST" >"$tmp/mg.txt" 2>"$tmp/mg.err"
eq "bpf lb maglev list --node $INST exits 0" "$?" 0
has "bpf lb maglev list: the header is cilium-dbg's" "$tmp/mg.txt" '^SVC ID +LOOKUP TABLE$'
why="$(cut -c1-200 "$tmp/mg.txt")"
check "bpf lb maglev list: 2 tables (ClusterIP, external IP) of 16381 entries, 2 backends ~evenly, identical" \
	"$PY" -c '
import re, sys
rows = [l.split(None, 1) for l in open(sys.argv[1]).read().splitlines()[1:]]
assert len(rows) == 2, len(rows)
tabs = []
for rid, t in rows:
    assert re.fullmatch(r"[0-9]+", rid), rid
    assert t.startswith("[") and t.endswith("]"), t[:20]
    tabs.append(t[1:-1].split(" "))
assert tabs[0] == tabs[1], "the two frontends have different tables"
assert len(tabs[0]) == 16381, len(tabs[0])
ids = sorted(set(tabs[0]))
assert len(ids) == 2, ids
assert sorted(tabs[0].count(i) for i in ids) == [8190, 8191], [tabs[0].count(i) for i in ids]
' "$tmp/mg.txt"
same=1
for _ in $(seq 50); do
	"$CLI" bpf lb maglev list --node "$INST2" >"$tmp/mg2.txt" 2>/dev/null
	cmp -s "$tmp/mg.txt" "$tmp/mg2.txt" && { same=0; break; }
	sleep 0.2
done
why="node-2: $(cut -c1-120 "$tmp/mg2.txt")"
check "node-2's pins hold the same tables, ids and entries (identical on every node)" [ "$same" -eq 0 ]
"$CLI" bpf lb maglev list --pin-dir "$PINS" -o json >"$tmp/mg.json" 2>>"$tmp/mg.err"
why="$(head -c 300 "$tmp/mg.json")"
check "bpf lb maglev list -o json: 2 external-scope tables, size 16381, the default seed's jhash words" \
	"$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d) == 2 and all(t["size"] == 16381 == len(t["table"]) and t["scope"] == "external" for t in d), [(t["id"], t["size"]) for t in d]
# JLfvgnHc2kaSUFaI: bytes 4-7 and 8-11, big-endian
assert (d[0]["seed4"], d[0]["seed6"]) == (0x71DCDA46, 0x92505688), (hex(d[0]["seed4"]), hex(d[0]["seed6"]))
' "$tmp/mg.json"
"$CLI" bpf lb list --pin-dir "$PINS" >"$tmp/lb4.txt" 2>&1
has "bpf lb list: x/mg's slot 0 says sessionAffinity and maglev" "$tmp/lb4.txt" \
	'^10\.96\.0\.20:80/TCP \(0\) +0\.0\.0\.0:0 \([0-9]+\) \(0\) \[ClusterIP, sessionAffinity, non-routable, maglev\]$'
bpftool -j map dump pinned "$PINS/ciliate_lb_affinity_match" >"$tmp/am.json" 2>>"$tmp/bpftool.err"
why="$(head -c 300 "$tmp/am.json")"
check "ciliate_lb_affinity_match: the 2 backends x 2 frontends of x/mg" "$PY" -c '
import json, sys
d = [e["formatted"]["key"] for e in json.load(open(sys.argv[1]))]
assert len(d) == 4 and len({k["backend_id"] for k in d}) == 2 and len({k["rev_nat_index"] for k in d}) == 2, d
' "$tmp/am.json"
if [ -n "$my_agent" ] && kill -0 "$my_agent" 2>/dev/null; then
	kill "$my_agent"
	for _ in $(seq 50); do kill -0 "$my_agent" 2>/dev/null || break; sleep 0.1; done
	nsenter --net="/run/netns/$INST" "${args[@]}" >"$tmp/agent2.log" 2>&1 &
	my_agent=$!
	rm -f "$tmp/st2.json"
	for _ in $(seq 100); do
		"$CLI" status --socket "$SOCK" -o json >"$tmp/st2.json" 2>/dev/null && break
		sleep 0.1
	done
	why="$(grep -o '"lastUpserts[^,]*,[^,]*' "$tmp/st2.json"; tail -2 "$tmp/agent2.log")"
	check "an agent restarted with Maglev tables in place rewrites none (nothing written)" \
		"$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))["agents"][0]["reconcile"]
assert r["errors"] == 0 and r["lastUpserts"] == 0 and r["lastDeletes"] == 0, r' "$tmp/st2.json"
else
	fail "the agent restarted in step 5 is running" "pid '$my_agent'"
fi
"$CLI" delete -f "$tmp/mg.yaml" --store "$STORE" >"$tmp/del2.out" 2>&1
why="$(cat "$tmp/del2.out")"
check "ciliate delete -f (x/mg)" grep -q 'deleted' "$tmp/del2.out"
why="node-1's agent never reached the store's revision"
check "node-1's agent has reconciled the deletion of x/mg" wait_model
"$CLI" bpf lb maglev list --node "$INST" >"$tmp/mg3.txt" 2>&1
eq "bpf lb maglev list: no table left (header only)" "$(cat "$tmp/mg3.txt")" \
	"$(head -1 "$tmp/mg.txt" | sed 's/ *$//')"
bpftool -j map dump pinned "$PINS/ciliate_lb_affinity_match" >"$tmp/am2.json" 2>>"$tmp/bpftool.err"
eq "ciliate_lb_affinity_match is empty again" "$(tr -d ' \n' <"$tmp/am2.json")" "[]"

# ---- 8. teardown ---------------------------------------------------------------------------
if [ -n "$my_agent" ]; then
	kill "$my_agent" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$my_agent" 2>/dev/null || break; sleep 0.1; done
fi
"$SIM" down "$TAG" >"$tmp/down.out" 2>&1
why="$(tail -2 "$tmp/down.out")"
check "ciliate-sim down leaves no namespace and no pins" \
	eval "! ip netns list 2>/dev/null | grep -qE '^cil-$TAG-' && [ ! -e '$PINS' ]"
# ---- 9. NAT, conntrack, flows and policy trace of translated connections -------------------
# tests/services/nat.yaml (tag svcnat): x/client (node-1) masqueraded to ext/client-1, the
# NodePort 30081 of node-1 from ext/client-1 SNATed to web-2 on node-2, the ClusterIP
# 10.96.0.50:80 from x/client; then what the CLI shows of them on node-1.
NAT_SCEN=tests/services/nat.yaml
NAT_TAG=svcnat
NAT_INST=cil-$NAT_TAG-node-1
NAT_SOCK=/run/ciliate/$NAT_INST/agent.sock
PROBE=$build/bin/ciliate-probe
if [ -e "$STATE_DIR/$NAT_TAG.json" ] || ip netns list 2>/dev/null | grep -qE "^cil-$NAT_TAG-"; then
	"$SIM" down "$NAT_TAG" >/dev/null 2>&1
fi
if ! timeout 120 "$SIM" up "$NAT_SCEN" >"$tmp/nat-up.out" 2>&1; then
	fail "ciliate-sim up $NAT_SCEN" "$(tail -3 "$tmp/nat-up.out")"
	exit 1
fi
pass "ciliate-sim up $NAT_SCEN"
nat_probe() { # FROM TO PORT
	local i
	for i in 1 2 3 4 5; do # the agents may still be attaching the fabric programs
		timeout 10 "$SIM" exec -c "$NAT_TAG" "$1" -- "$PROBE" --to "$2" --port "$3" \
			--timeout-ms 1500 -o json 2>&1 | grep -q '"result":"allow"' && return 0
		sleep 0.5
	done
	return 1
}
why="no answer"
check "masquerade: x/client -> 203.0.113.10:80 answered" nat_probe x/client 203.0.113.10 80
check "NodePort: ext/client-1 -> 192.0.2.1:30081 answered" nat_probe ext/client-1 192.0.2.1 30081
check "ClusterIP: x/client -> 10.96.0.50:80 answered" nat_probe x/client 10.96.0.50 80

"$CLI" bpf nat list --node "$NAT_INST" >"$tmp/nat.txt" 2>&1
"$CLI" bpf nat list --node "$NAT_INST" -o json >"$tmp/nat.json" 2>&1
has "bpf nat list: the masqueraded connection's OUT entry" "$tmp/nat.txt" \
	'^TCP OUT 10\.244\.0\.[0-9]+:[0-9]+ -> 203\.0\.113\.10:80 XLATE_SRC 192\.0\.2\.1:[0-9]+ Created=[0-9]+sec ago NeedsCT=[01]$'
has "bpf nat list: its IN entry (the reply's tuple back to the pod)" "$tmp/nat.txt" \
	'^TCP IN 203\.0\.113\.10:80 -> 192\.0\.2\.1:[0-9]+ XLATE_DST 10\.244\.0\.[0-9]+:[0-9]+ Created=[0-9]+sec ago NeedsCT=[01]$'
has "bpf nat list: the NodePort connection's OUT entry (client -> backend, SNAT to the node)" \
	"$tmp/nat.txt" \
	'^TCP OUT 203\.0\.113\.10:[0-9]+ -> 10\.244\.1\.10:8080 XLATE_SRC 192\.0\.2\.1:[0-9]+ '
has "bpf nat list: its IN entry (the backend's reply back to the client)" "$tmp/nat.txt" \
	'^TCP IN 10\.244\.1\.10:8080 -> 192\.0\.2\.1:[0-9]+ XLATE_DST 203\.0\.113\.10:[0-9]+ '
why="$(head -c 600 "$tmp/nat.json")"
check "bpf nat list -o json: a NodePort IN entry with the frontend's rev_nat_index, a masquerade pair" \
	"$PY" -c '
import json, sys
v = json.load(open(sys.argv[1]))
np = [e for e in v if e["nodeport"] and e["direction"] == "IN" and e["rev_nat_index"] > 0
      and e["source"] == "10.244.1.10" and e["to_address"] == "203.0.113.10"]
mq = [e for e in v if e["masquerade"] and e["destination"] == "203.0.113.10"
      and e["to_address"] == "192.0.2.1" and e["direction"] == "OUT" and e["xlate"] == "SRC"]
sys.exit(0 if np and mq else 1)' "$tmp/nat.json"

"$CLI" bpf ct list global --node "$NAT_INST" >"$tmp/ct.txt" 2>&1
"$CLI" bpf ct list --node "$NAT_INST" -o json >"$tmp/ct.json" 2>&1
has "bpf ct list: the ClusterIP connection's service entry names a backend" "$tmp/ct.txt" \
	'^TCP OUT 10\.244\.0\.[0-9]+:[0-9]+ -> 10\.96\.0\.50:80 service expires=[0-9]+ .* RevNAT=[1-9][0-9]* SourceSecurityID=[0-9]+ IfIndex=0 BackendID=[1-9][0-9]*$'
has "bpf ct list: the connection to the backend carries the frontend's RevNAT" "$tmp/ct.txt" \
	'^TCP OUT 10\.244\.0\.[0-9]+:[0-9]+ -> 10\.244\.1\.10:8080 expires=.* RevNAT=[1-9]'
why="$(head -c 600 "$tmp/ct.json")"
check "bpf ct list -o json: the SERVICE entry's backend_id is web-2's backend id" \
	"$PY" -c '
import json, subprocess, sys
v = json.load(open(sys.argv[1]))
lb = json.loads(subprocess.run([sys.argv[2], "bpf", "lb", "list", "--node", sys.argv[3], "-o",
                                "json"], capture_output=True, text=True).stdout)
ids = {b["id"] for b in lb["backends"] if b.get("address", "").startswith("10.244.1.10")}
svc = [e for e in v if e["scope"] == "SERVICE" and e["destination"] == "10.96.0.50"]
sys.exit(0 if svc and all(e["backend_id"] in ids for e in svc) and ids else 1)' \
	"$tmp/ct.json" "$CLI" "$NAT_INST"

"$CLI" observe --socket "$NAT_SOCK" --all -o json >"$tmp/nat-flows.json" 2>"$tmp/nat-flows.err"
why="$(grep -c . "$tmp/nat-flows.json") flows, none to 10.244.1.10:8080 naming x/remote"
check "observe: the ClusterIP flow (translated on node-1) has destination_service x/remote" \
	"$PY" -c '
import json, sys
ok = False
for line in open(sys.argv[1]):
    f = json.loads(line).get("flow", {})
    s = f.get("destination_service", {})
    if (s.get("name"), s.get("namespace")) == ("remote", "x") and \
       f.get("IP", {}).get("destination") == "10.244.1.10" and \
       f.get("ciliate", {}).get("service_frontend") == "10.96.0.50:80/TCP":
        ok = True
sys.exit(0 if ok else 1)' "$tmp/nat-flows.json"

"$CLI" policy trace --scenario "$NAT_SCEN" --src x/client --dst svc/x/remote --dport 80/tcp \
	>"$tmp/trace.txt" 2>&1
has "policy trace to svc/x/remote names the frontend" "$tmp/trace.txt" \
	'^Service: 10\.96\.0\.50:80/TCP is the ClusterIP frontend of x/remote'
has "policy trace to svc/x/remote names its backend" "$tmp/trace.txt" \
	'^  1 => 10\.244\.1\.10:8080/TCP \(x/web-2\)$'
has "policy trace to svc/x/remote traces policy to the backend" "$tmp/trace.txt" \
	'^Verdict via 10\.244\.1\.10:8080/TCP: ALLOWED$'
eq "policy trace to svc/x/remote: the final verdict is the last line" \
	"$(tail -1 "$tmp/trace.txt")" "Final verdict: ALLOWED"
"$CLI" policy trace --scenario "$NAT_SCEN" --src ext/client-1 --dst node/node-1 \
	--dport 30081/tcp >"$tmp/trace-np.txt" 2>&1
has "policy trace to the NodePort: the backend's node sees node-1 (SNAT)" "$tmp/trace-np.txt" \
	'^\(SNAT: the backend.s node sees the connection from node/node-1\)$'

"$SIM" down "$NAT_TAG" >"$tmp/nat-down.out" 2>&1
why="$(tail -2 "$tmp/nat-down.out")"
check "ciliate-sim down $NAT_TAG leaves no namespace" \
	eval "! ip netns list 2>/dev/null | grep -qE '^cil-$NAT_TAG-'"

exit 0 # finish (EXIT trap) prints the summary
