#!/usr/bin/env bash
# Services under the simulator: every scenario of scenarios/services/ through real agents,
# CNI and BPF, once with --routing tunnel and once with --routing native (side by side: each
# mode gets its own cluster tag). Checks: both runs exit 0, their reports hold the checks with
# none failed, and every expected deny is proven by the datapath's drop event of its flow.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
if [ ! -x "$SIM" ]; then
	echo "FAIL: $SIM is missing (run make first)"
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi

passed=0
failed=0
start=$SECONDS
source tests/lib/suite.sh
source tests/lib/sim_modes.sh
tmp=$(mktemp -d /tmp/ciliate-t-svcsim.XXXXXX)

# DSR with the IPv4 option dispatch works in native routing only (as Cilium's; in tunnel
# routing DSR frontends are served with SNAT), so dsr-*.yaml run in native routing; the
# ipip and geneve ones run in tunnel routing too (below)
files=()
for f in scenarios/services/*.yaml; do
	case $(basename "$f") in dsr-*) ;; *) files+=("$f") ;; esac
done
dsr=(scenarios/services/dsr-*.yaml)
echo "${#files[@]} scenario(s) x 2 routing modes, ${#dsr[@]} DSR scenario(s) in native routing"
sim_modes_run "$SIM" "$tmp" "${files[@]}"
for mode in tunnel native; do
	sim_mode_checks "$mode" "$tmp" 46 # clusterip 17 + affinity 9 + nodeport 12 + nodeport-xdp 9
done
"$SIM" run "${dsr[@]}" --report "$tmp/dsr.json" >"$tmp/dsr.out" 2>&1
rc=$?
grep -E '^[0-9]+ check\(s\)' "$tmp/dsr.out" | sed "s/^/  dsr: /"
why="exit $rc; $(sed -n '/^failed checks:/,/^$/p' "$tmp/dsr.out" | head -8)"
check "dsr: ciliate-sim run exits 0" [ "$rc" -eq 0 ]
total=$(jq -r '.checks_total' "$tmp/dsr.json" 2>/dev/null)
nfail=$(jq -r '.failed' "$tmp/dsr.json" 2>/dev/null)
why="report says ${total:-?} checks, ${nfail:-?} failed"
check "dsr: the report holds the checks (>= 14), none failed" \
	eval "[ '${total:-0}' -ge 14 ] && [ '${nfail:-1}' -eq 0 ]"
why="$(grep -c 'replyBypasses' "$tmp/dsr.out") lines"
check "dsr: replies were checked to bypass the entry node" grep -q 'replies on n0=0/' "$tmp/dsr.out"
# dsr-mtu.yaml: the 1472-byte UDP request met the MTU outcome (the client's ICMP and the
# datapath's FRAG_NEEDED drop of that flow), then was answered (sim/runner/run.c, check_pmtu)
why=$(jq -r '[.checks[] | select(.scenario | endswith("dsr-mtu.yaml")) | "\(.name): pass=\(.pass) \(.reason)"] | join("; ")' \
	"$tmp/dsr.json" 2>/dev/null)
mtu_outcome() {
	jq -e '[.checks[] | select(.scenario | endswith("dsr-mtu.yaml")) | select(.pass and
		.pmtu.icmp.type == 3 and .pmtu.icmp.code == 4 and .pmtu.retried and
		.evidence.drop_reason_desc == "FRAG_NEEDED")] | length == 1' "$tmp/dsr.json" >/dev/null
}
check "dsr: a too-large UDP request got ICMP frag-needed and its FRAG_NEEDED drop, then an answer" \
	mtu_outcome
# the ipip and geneve dispatches are built in BPF and work in tunnel routing as well
encap=(scenarios/services/dsr-ipip.yaml scenarios/services/dsr-geneve.yaml)
"$SIM" run --routing tunnel "${encap[@]}" --report "$tmp/dsr-tunnel.json" >"$tmp/dsr-tunnel.out" 2>&1
rc=$?
grep -E '^[0-9]+ check\(s\)' "$tmp/dsr-tunnel.out" | sed "s/^/  dsr (tunnel): /"
why="exit $rc; $(sed -n '/^failed checks:/,/^$/p' "$tmp/dsr-tunnel.out" | head -8)"
check "dsr ipip/geneve in tunnel routing: ciliate-sim run exits 0" [ "$rc" -eq 0 ]
total=$(jq -r '.checks_total' "$tmp/dsr-tunnel.json" 2>/dev/null)
nfail=$(jq -r '.failed' "$tmp/dsr-tunnel.json" 2>/dev/null)
why="report says ${total:-?} checks, ${nfail:-?} failed"
check "dsr (tunnel): the report holds the checks (>= 6), none failed" \
	eval "[ '${total:-0}' -ge 6 ] && [ '${nfail:-1}' -eq 0 ]"
# the same DSR scenarios with XDP acceleration on (bpf-lb-acceleration: native): xdp_netdev
# builds the dispatch at the driver (xdp_dsr.h); the outcomes must be the same
xdp=()
for f in scenarios/services/dsr-{opt,ipip,geneve,hybrid}.yaml; do
	b=$(basename "$f" .yaml)
	sed -e 's/config: {bpf-lb-mode/config: {bpf-lb-acceleration: native, bpf-lb-mode/' \
		-e 's/metadata: {name: svc-dsr/metadata: {name: xdp-svc-dsr/' "$f" >"$tmp/$b-xdp.yaml"
	grep -q 'bpf-lb-acceleration: native' "$tmp/$b-xdp.yaml" && xdp+=("$tmp/$b-xdp.yaml")
done
"$SIM" run --routing native "${xdp[@]}" --report "$tmp/dsr-xdp.json" >"$tmp/dsr-xdp.out" 2>&1
rc=$?
grep -E '^[0-9]+ check\(s\)' "$tmp/dsr-xdp.out" | sed "s/^/  dsr (xdp): /"
why="exit $rc; ${#xdp[@]} scenarios; $(sed -n '/^failed checks:/,/^$/p' "$tmp/dsr-xdp.out" | head -8)"
check "dsr with XDP acceleration: ciliate-sim run exits 0 (4 scenarios)" \
	eval "[ $rc -eq 0 ] && [ ${#xdp[@]} -eq 4 ]"
total=$(jq -r '.checks_total' "$tmp/dsr-xdp.json" 2>/dev/null)
nfail=$(jq -r '.failed' "$tmp/dsr-xdp.json" 2>/dev/null)
why="report says ${total:-?} checks, ${nfail:-?} failed"
check "dsr (xdp): the report holds the checks (>= 12), none failed" \
	eval "[ '${total:-0}' -ge 12 ] && [ '${nfail:-1}' -eq 0 ]"
rm -rf "$tmp"
echo "suite time: $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
