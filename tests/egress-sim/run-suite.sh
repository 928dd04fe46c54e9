#!/usr/bin/env bash
# Egress gateway under the simulator (docs/EGRESS.md, Simulator): every scenario of
# scenarios/egress/ through real agents, CNI and BPF, in tunnel and in native routing (side
# by side); the reports' totals, every denial proven by its drop event (NO_EGRESS_GATEWAY,
# NO_EGRESS_IP), clientIPSeen egress-ip checked, relabel steps in force within one second;
# a scenario of wrong expectations that must fail with its reasons; then gateway.yaml kept up
# (ciliate-sim up): the egress IPs on the gateways' fabric devices (never in the root
# namespace), external hosts resolving them by ARP to the gateway, and `ciliate bpf egress
# list -o json --node` of a gateway node holding the expected rows.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
CLI=$build/bin/ciliate
for b in "$SIM" "$CLI"; do
	if [ ! -x "$b" ]; then
		echo "FAIL: $b is missing (run make first)"
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi
if ! command -v jq >/dev/null; then
	echo "SKIP: jq is missing (the suite reads the reports with it)"
	exit 77
fi

passed=0
failed=0
start=$SECONDS
source tests/lib/suite.sh
source tests/lib/sim_modes.sh
tmp=$(mktemp -d /tmp/ciliate-t-egrsim.XXXXXX)
up_file=scenarios/egress/gateway.yaml
cleanup() {
	"$SIM" down "$up_file" >/dev/null 2>&1
	"$SIM" down scenarios/egress/relabel.yaml >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

root_addrs_before=$(ip -4 -o addr show | awk '{print $2, $4}' | sort)

files=(scenarios/egress/*.yaml)
echo "${#files[@]} scenario(s) x 2 routing modes"
sim_modes_run "$SIM" "$tmp" "${files[@]}"
trap cleanup EXIT
for mode in tunnel native; do
	rep=$tmp/$mode.json
	sim_mode_checks "$mode" "$tmp" 42 # apply-later 9 + catch-all 6 + gateway 13 + relabel 15
	n=$(jq '[.checks[] | select(.pass and (.expected | test("clientIPSeen=egress-ip")))] | length' "$rep" 2>/dev/null)
	why="${n:-?} passing clientIPSeen=egress-ip checks"
	check "$mode: clientIPSeen egress-ip held (>= 17 checks)" [ "${n:-0}" -ge 17 ]
	# egressGateways[]: the pods of egress-multi left by both gateways
	n=$(jq '[.checks[] | select(.pass and (.name | test("^x/m-")))] | [.[].observed |
		capture("client=(?<ip>[0-9.]+)").ip] | unique | length' "$rep" 2>/dev/null)
	why="${n:-?} distinct egress IPs"
	check "$mode: egressGateways[] spread x/m-* over both gateways" [ "${n:-0}" -eq 2 ]
	for reason in NO_EGRESS_GATEWAY NO_EGRESS_IP; do
		n=$(jq --arg r "$reason" '[.checks[] | select(.pass and .deny_proven and
			.evidence.drop_reason_desc == $r)] | length' "$rep" 2>/dev/null)
		why="${n:-?} denials proven by a $reason drop event"
		check "$mode: denials proven by $reason drop events" [ "${n:-0}" -ge 1 ]
	done
	# the relabelled gateway is in force for the next connection within one second
	slow=$(jq -r '[.checks[] | select(.kind == "apply" and (.scenario | endswith("relabel.yaml"))
		and (.duration_ms >= 1000 or (.pass | not))) | "\(.step) \(.duration_ms) ms"] | join(", ")' "$rep" 2>/dev/null)
	napply=$(jq '[.checks[] | select(.kind == "apply" and (.scenario | endswith("relabel.yaml")))] | length' "$rep" 2>/dev/null)
	slow=${slow}$(jq -r '[.checks[] | select(.kind == "apply" and (.scenario | endswith("apply-later.yaml"))
		and (.duration_ms >= 1000 or (.pass | not))) | " apply-later \(.step) \(.duration_ms) ms"] | join(",")' "$rep" 2>/dev/null)
	why="apply checks: ${napply:-?}; slow or failed: ${slow:-?}"
	check "$mode: Node relabels, CEGP apply and deletes reconciled within 1 s" \
		eval "[ '${napply:-0}' -eq 4 ] && [ -z '$slow' ]"
	# the connection right after the relabel left by the new gateway (node-3's fabric address)
	n=$(jq '[.checks[] | select(.step == "relabel-to-node-3" and .kind == "probe" and .pass
		and (.observed | test("client=192.0.2.3")))] | length' "$rep" 2>/dev/null)
	why="${n:-?} probes of relabel-to-node-3 answered from 192.0.2.3"
	check "$mode: after the relabel new connections leave by node-3" [ "${n:-0}" -eq 2 ]
done

# wrong expectations: each fails with its reason
"$SIM" run --routing native tests/egress-sim/fixtures/wrong.yaml --report "$tmp/wrong.json" \
	>"$tmp/wrong.out" 2>&1
rc=$?
why="exit $rc"
check "wrong expectations: ciliate-sim run exits 1" [ "$rc" -eq 1 ]
nfail=$(jq -r '.failed' "$tmp/wrong.json" 2>/dev/null)
why="${nfail:-?} failed"
check "wrong expectations: all 4 probes fail" [ "${nfail:-0}" -eq 4 ]
for want in \
	'clientIPSeen egress-ip: no egress gateway policy selects x/other for 203.0.113.10, server saw 192.0.2.1' \
	"clientIPSeen node: server saw 192.0.2.100, want 192.0.2.1 (x/a-1's node node-1): policy egress-a sends x/a-1 to 203.0.113.10 through gateway node-2" \
	'clientIPSeen egress-ip: 203.0.113.200 is in an excludedCIDR of policy egress-a for x/a-1' \
	'dropReason: expected NO_EGRESS_GATEWAY, observed no drop event of this flow'; do
	why="not in the output"
	check "wrong expectations: '${want:0:60}...'" grep -qF "$want" "$tmp/wrong.out"
done

# without a datapath nothing SNATs: the egress-ip check names what it saw and wanted
"$SIM" run --no-datapath scenarios/egress/gateway.yaml >"$tmp/nodp.out" 2>&1
rc=$?
why="exit $rc"
check "--no-datapath: gateway.yaml fails" [ "$rc" -eq 1 ]
why="$(grep -m1 'clientIPSeen egress-ip' "$tmp/nodp.out")"
check "--no-datapath: 'client seen <pod IP>, want egress IP 192.0.2.100 of policy egress-a (gateway node-2)'" \
	grep -qE 'clientIPSeen egress-ip: client seen 10\.244\.0\.[0-9]+, want egress IP 192\.0\.2\.100 of policy egress-a \(gateway node-2\)' "$tmp/nodp.out"

# a cluster kept up: addresses, ARP and the gateway's map
if "$SIM" up "$up_file" >"$tmp/up.out" 2>&1; then
	pass "up $up_file"
	why=$("$SIM" exec -c egressgw node-2 -- ip -4 -o addr show dev eth0 2>&1 | tr '\n' ' ')
	check "node-2's fabric device holds its node IP and the egress IP 192.0.2.100" \
		eval "echo '$why' | grep -q '192.0.2.2/24' && echo '$why' | grep -q '192.0.2.100/24'"
	root_addrs=$(ip -4 -o addr show | awk '{print $2, $4}' | sort)
	why="root namespace addresses changed"
	check "no address added to the root namespace" [ "$root_addrs" = "$root_addrs_before" ]
	# ext-1 (outside the underlay, on-link route to it) and ARP: 192.0.2.100 is node-2's
	"$SIM" run "$up_file" --report "$tmp/up.json" >"$tmp/up-run.out" 2>&1
	rc=$?
	why="exit $rc"
	check "run on the up cluster passes" [ "$rc" -eq 0 ]
	mac2=$("$SIM" exec -c egressgw node-2 -- cat /sys/class/net/eth0/address 2>/dev/null)
	neigh=$("$SIM" exec -c egressgw ext/ext-1 -- ip neigh show 192.0.2.100 2>/dev/null)
	why="ext-1: '$neigh', node-2 eth0: '$mac2'"
	check "ext-1 resolved the egress IP 192.0.2.100 by ARP to node-2's fabric MAC" \
		eval "[ -n '$mac2' ] && echo '$neigh' | grep -q 'lladdr $mac2'"
	a1=$("$SIM" exec -c egressgw x/a-1 -- ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
	b1=$("$SIM" exec -c egressgw x/b-1 -- ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
	"$CLI" bpf egress list -o json --node cil-egressgw-node-2 >"$tmp/egress.json" 2>"$tmp/egress.err"
	rc=$?
	why="exit $rc: $(head -3 "$tmp/egress.err")"
	check "ciliate bpf egress list -o json --node <gateway node-2> works" [ "$rc" -eq 0 ]
	row() { # SRC DST EGRESS GATEWAY
		jq -e --arg s "$1" --arg d "$2" --arg e "$3" --arg g "$4" \
			'[.[] | select(.source_ip == $s and .destination_cidr == $d and
			.egress_ip == $e and (.gateway_ip | startswith($g)))] | length == 1' \
			"$tmp/egress.json" >/dev/null
	}
	rows=$(jq -c '.[] | [.source_ip, .destination_cidr, .egress_ip, .gateway_ip]' "$tmp/egress.json" 2>/dev/null | tr '\n' ' ')
	why="a-1=$a1 b-1=$b1; rows: $rows"
	check "egress list: x/a-1 to 203.0.113.0/24 -> 192.0.2.100 via node-2 (192.0.2.2)" \
		row "$a1" 203.0.113.0/24 192.0.2.100 192.0.2.2
	excluded_row() {
		jq -e --arg s "$a1" '[.[] | select(.source_ip == $s and
			.destination_cidr == "203.0.113.128/25" and .excluded)] | length == 1' \
			"$tmp/egress.json" >/dev/null
	}
	check "egress list: x/a-1 to 203.0.113.128/25 is an excluded CIDR" excluded_row
	check "egress list: x/b-1 to 198.51.100.0/24 -> 192.0.2.103 via node-3 (192.0.2.3)" \
		row "$b1" 198.51.100.0/24 192.0.2.103 192.0.2.3
	n=$(jq length "$tmp/egress.json" 2>/dev/null)
	why="$n rows: $rows"
	check "egress list: 9 rows (x/a-1, x/a-2: destination and excluded; x/b-1, x/c-1, x/m-1..3: destination)" [ "${n:-0}" -eq 9 ]
	"$SIM" down "$up_file" >"$tmp/down.out" 2>&1
	rc=$?
	why="exit $rc: $(tail -2 "$tmp/down.out")"
	check "down $up_file" [ "$rc" -eq 0 ]
else
	fail "up $up_file" "$(tail -3 "$tmp/up.out")"
fi
# interface: eth0 resolved by the gateway's agent; no default route on simulated nodes: 0
rel=scenarios/egress/relabel.yaml
if "$SIM" up "$rel" >"$tmp/up-rel.out" 2>&1; then
	rtag=$("$SIM" status -o json | jq -r --arg f "$(readlink -f "$rel")" \
		'.[] | select(.scenario == $f) | .tag' | head -1)
	ra1=$("$SIM" exec -c "$rtag" x/a-1 -- ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
	rnoip=$("$SIM" exec -c "$rtag" x/noip-1 -- ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
	for n in node-1 node-2 node-3; do
		"$CLI" bpf egress list -o json --node "cil-$rtag-$n" >"$tmp/rel-$n.json" 2>/dev/null
	done
	ifrow() { # NODE SRC EGRESS GATEWAY
		jq -e --arg s "$2" --arg e "$3" --arg g "$4" '[.[] | select(.source_ip == $s and
			.destination_cidr == "203.0.113.0/24" and .egress_ip == $e and
			(.gateway_ip | startswith($g)))] | length == 1' "$tmp/rel-$1.json" >/dev/null
	}
	why="node-2 rows: $(jq -c '.' "$tmp/rel-node-2.json" 2>/dev/null | head -c 400)"
	check "interface eth0: the gateway node-2 resolved the egress IP to its fabric address 192.0.2.2" \
		ifrow node-2 "$ra1" 192.0.2.2 192.0.2.2
	why="node-1 rows: $(jq -c '.' "$tmp/rel-node-1.json" 2>/dev/null | head -c 400)"
	check "interface eth0: node-1 (not the gateway) redirects with egress IP 0" \
		ifrow node-1 "$ra1" 0.0.0.0 192.0.2.2
	why="node-3 rows: $(jq -c '.' "$tmp/rel-node-3.json" 2>/dev/null | head -c 400)"
	check "no egressIP/interface: gateway node-3 (no default route) holds egress IP 0 (NO_EGRESS_IP)" \
		ifrow node-3 "$rnoip" 0.0.0.0 192.0.2.3
	"$SIM" down "$rel" >/dev/null 2>&1
	rc=$?
	why="exit $rc"
	check "down $rel" [ "$rc" -eq 0 ]
else
	fail "up $rel" "$(tail -3 "$tmp/up-rel.out")"
fi
left=$(ip netns list 2>/dev/null | grep -c '^cil-egr' || true)
why="$left namespaces left"
check "no cil-egr* namespace left" [ "$left" -eq 0 ]
echo "suite time: $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
