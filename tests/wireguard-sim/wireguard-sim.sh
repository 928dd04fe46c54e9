#!/usr/bin/env bash
# Kernel-matrix suite wireguard-sim (ci/kernel-suites.txt; docs/ENCRYPTION-KERNEL.md, "A
# simulated cluster with kernel WireGuard in the guest"): a real two-node simulated cluster
# with `encryption: wireguard` inside the guest — ciliate-sim, one ciliate-agent per node,
# ciliate-cni, the BPF datapath — whose agents drive the KERNEL's WireGuard over netlink
# (datapath/agent/wireguard.c, datapath/encrypt/wg_netlink.c), in native and tunnel routing.
# Per routing mode:
#   1. `ciliate-sim up`, then the agents' state: `ciliate encrypt status -o json` of both
#      says implementation "kernel" (pid 0), 1 peer (the other node) with a handshake and
#      rx/tx bytes > 0 after pod traffic; `ip -d link show ciliate_wg0` in each node's
#      namespace is a wireguard link; no wireguard-go process runs (the guest has none);
#   2. `ciliate-sim run` of scenarios/encryption/wireguard-sim/wireguard.yaml on the kept
#      cluster: pod-to-pod TCP and UDP across the nodes answered with `encryptedOn: fabric`
#      (the simulator's capture of both fabric links finds no plaintext), streams intact, and
#      its last step re-keys node-1 through its agent (fault rekey-agent) under two live TCP
#      streams that must lose nothing;
#   3. after the run: node-2's peer for node-1 has node-1's new public key (different from
#      the one before the run, equal to what node-1's agent reports), still the kernel's
#      device, 1 peer, a handshake newer than the re-key, rx/tx > 0; still no wireguard-go.
# Needs root, a kernel with WireGuard, iproute2's ip (not busybox's) and jq (the kernel
# matrix copies them into the guest: @hostbin). Where the kernel has no WireGuard (this build
# machine) it prints "SKIP: <reason>" and exits 77: there the agents use wireguard-go, which
# tests/encryption checks. Deliberately not named run-suite.sh: `make test` runs every
# tests/*/run-suite.sh on the build machine.
# Usage: wireguard-sim.sh BUILD_DIR. WG_SIM_MODES="native tunnel" (default) picks the modes.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
# iproute2's ip before busybox's (/sbin/ip in the guest): the simulator runs `ip`
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
SIM=$build/bin/ciliate-sim
CLI=$build/bin/ciliate
PROBE=$build/bin/ciliate-probe
SCEN=scenarios/encryption/wireguard-sim/wireguard.yaml
A_IP=10.244.0.10 # x/a on node-1 (first pod of node-1's pod CIDR)
B_IP=10.244.1.10 # x/b on node-2
MODES=${WG_SIM_MODES:-native tunnel}

for b in "$SIM" "$CLI" "$PROBE" "$build/bin/ciliate-agent" "$build/bin/ciliate-cni"; do
	if [ ! -x "$b" ]; then
		echo "FAIL: $b is missing (run make first)"
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi
if [[ $(ip -V 2>&1) != *iproute2* ]]; then
	echo "FAIL: iproute2's ip is missing (found: $(ip -V 2>&1 | head -n 1)); the simulator needs its netns, vxlan and -batch (the kernel matrix copies it: @hostbin in ci/kernel-suites.txt)"
	exit 1
fi
if ! command -v jq >/dev/null; then
	echo "FAIL: jq is missing (the kernel matrix copies it: @hostbin in ci/kernel-suites.txt)"
	exit 1
fi
# Does this kernel have WireGuard? (a link of kind wireguard in a throw-away namespace; ip by
# its path: busybox's unshare would run its own ip applet for "ip")
if ! wg=$(unshare -n "$(command -v ip)" link add wgprobe0 type wireguard 2>&1); then
	echo "SKIP: kernel $(uname -r) has no WireGuard: ip link add type wireguard: $(echo "$wg" | tr '\n' ' ' | sed 's/ $//'); the agents use wireguard-go here (tests/encryption checks it); the kernel matrix's Debian guests run this suite"
	exit 77
fi

passed=0
failed=0
start=$SECONDS
source tests/lib/suite.sh
tmp=$(mktemp -d /tmp/ciliate-t-wireguard-sim.XXXXXX)
tag=""
cleanup() {
	[ -n "$tag" ] && "$SIM" down "$tag" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

jqe() { jq -e "$2" <<<"$1" >/dev/null 2>&1; } # JSON EXPR: EXPR holds (a check's command)
ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
status() { "$CLI" encrypt status -o json --node "cil-$tag-$1" 2>/dev/null; }
agent_log() { cat "/run/ciliate/sim/$tag/agent-$1.log" 2>/dev/null; }
# wireguard-go processes anywhere in the guest (their command names, for the message)
wg_go_procs() {
	local p c
	for p in /proc/[0-9]*; do
		c=$(cat "$p/comm" 2>/dev/null) || continue
		[[ $c == wireguard-go* ]] && echo "${p#/proc/}:$c"
	done
}
# pod traffic both ways, TCP and UDP
traffic() {
	for _ in 1 2; do
		"$SIM" exec -c "$tag" x/a -- "$PROBE" --to "$B_IP" --port 80 --payload-bytes 1000 >/dev/null 2>&1
		"$SIM" exec -c "$tag" x/b -- "$PROBE" --to "$A_IP" --port 5353 --protocol UDP >/dev/null 2>&1
		"$SIM" exec -c "$tag" x/b -- "$PROBE" --to "$A_IP" --port 80 >/dev/null 2>&1
	done
}
# the agents' view: kernel device, one peer (the other node) with a handshake and traffic
check_status() { # MODE WHEN
	local node other s
	for node in node-1 node-2; do
		other=node-2
		[ "$node" = node-2 ] && other=node-1
		s=$(status "$node")
		why="$(head -c 700 <<<"$s")"
		check "$1: $2: $node encrypt status: wireguard, implementation kernel (pid 0), ciliate_wg0 port 51871, no error" \
			jqe "$s" '.[0] | .mode == "wireguard" and .implementation == "kernel" and .pid == 0 and
				.interface == "ciliate_wg0" and .listenPort == 51871 and .error == "" and
				(has("deviceError") | not)'
		why="$(jq -c '.[0].peers' <<<"$s" 2>/dev/null | head -c 700)"
		check "$1: $2: $node has 1 peer ($other) with a handshake and rx/tx > 0 ($(jq -r --arg o "$other" '.[0].peers[] | select(.node == $o) | "hs \(.lastHandshakeTime), rx \(.rxBytes), tx \(.txBytes)"' <<<"$s" 2>/dev/null))" \
			jqe "$s" '.[0] | .peerCount == 1 and (.peers | length) == 1 and .peers[0].node == "'"$other"'" and
				.peers[0].lastHandshakeTime > 0 and .peers[0].rxBytes > 0 and .peers[0].txBytes > 0'
	done
}
check_links() { # MODE WHEN
	local node l
	for node in node-1 node-2; do
		l=$(ip netns exec "cil-$tag-$node" ip -d link show ciliate_wg0 2>&1)
		why="$l"
		check "$1: $2: ip -d link show ciliate_wg0 in $node's namespace: a wireguard link, up" \
			grep -Eq '^ +wireguard( |$)' <<<"$l"
		check "$1: $2: $node's ciliate_wg0 is up" grep -q 'state UNKNOWN\|,UP' <<<"$l"
	done
	why="$(wg_go_procs)"
	check "$1: $2: no wireguard-go process runs" [ -z "$(wg_go_procs)" ]
}

echo "kernel $(uname -r), modes: $MODES"
for mode in $MODES; do
	t0=$(ms)
	if ! "$SIM" up --routing "$mode" "$SCEN" >"$tmp/up-$mode.log" 2>&1; then
		fail "$mode: ciliate-sim up $SCEN" "$(tail -n 5 "$tmp/up-$mode.log")"
		for f in /run/ciliate/sim/*/agent-*.log; do
			[ -f "$f" ] && { echo "  --- $f"; tail -n 15 "$f" | sed 's/^/  /'; }
		done
		for t in $("$SIM" status -o json 2>/dev/null | jq -r '.[].tag'); do
			"$SIM" down "$t" >/dev/null 2>&1
		done
		continue
	fi
	up_ms=$(($(ms) - t0))
	tag=$("$SIM" status -o json | jq -r --arg f "$(realpath "$SCEN")" \
		'[.[] | select(.scenario == $f) | .tag][0] // empty')
	pass "$mode: ciliate-sim up (2 nodes, 2 pods, encryption: wireguard) in $up_ms ms (tag $tag)"
	for node in node-1 node-2; do
		agent_log "$node" | grep 'wireguard: \(made\|adopted\|started\|kernel\)' | sed "s/^/  $mode: $node: /" | cut -c1-220
		why="$(agent_log "$node" | grep wireguard | tail -n 4)"
		check "$mode: $node's agent logged: made the kernel's ciliate_wg0" \
			grep -q "wireguard: made the kernel's ciliate_wg0" "/run/ciliate/sim/$tag/agent-$node.log"
	done

	# 1. the kernel's devices after pod traffic
	traffic
	check_status "$mode" "after up"
	check_links "$mode" "after up"
	pub1_before=$(status node-1 | jq -r '.[0].publicKey')
	seen_before=$(status node-2 | jq -r '.[0].peers[] | select(.node == "node-1") | .publicKey')
	why="node-1 says $pub1_before, node-2 has $seen_before"
	check "$mode: node-2's peer for node-1 has node-1's public key" \
		[ -n "$pub1_before" -a "$pub1_before" = "$seen_before" ]

	# 2. the scenario on the kept cluster: TCP/UDP answered, no plaintext, re-key under streams
	t0=$(ms)
	rekey_at=$(date +%s)
	"$SIM" run --routing "$mode" "$SCEN" --report "$tmp/$mode.json" >"$tmp/$mode.out" 2>&1
	rc=$?
	run_ms=$(($(ms) - t0))
	grep -E '^ *(ok|FAIL|SKIP) ' "$tmp/$mode.out" | sed "s/^/  $mode: /" | cut -c1-220
	why="exit $rc; $(sed -n '/^failed checks:/,/^$/p' "$tmp/$mode.out" | head -n 8)"
	check "$mode: ciliate-sim run $SCEN: every check held ($run_ms ms)" [ "$rc" -eq 0 ]
	if [ "$rc" -ne 0 ]; then # the cluster is kept: show where the agents spent their time
		for node in node-1 node-2; do
			echo "  --- $mode: agent-$node.log, last 40 lines"
			agent_log "$node" | tail -n 40 | sed 's/^/  /' | cut -c1-220
		done
	fi
	n=$(jq '[.checks[] | select(.pass and (.expected | test("encryptedOn=fabric")))] | length' \
		"$tmp/$mode.json" 2>/dev/null)
	why="${n:-?} passing encryptedOn checks"
	check "$mode: encryptedOn fabric held for TCP and UDP both ways, before and after the re-key (7 probes)" \
		[ "${n:-0}" -eq 7 ]
	n=$(jq '[.checks[] | select(.pass and .kind == "stream")] | length' "$tmp/$mode.json" 2>/dev/null)
	why="${n:-?} intact streams; $(jq -c '[.checks[] | select(.kind == "stream") | {step, pass, observed}]' "$tmp/$mode.json" 2>/dev/null | head -c 600)"
	check "$mode: all 4 streams intact (2 of them across node-1's re-key)" [ "${n:-0}" -eq 4 ]

	# 3. after the re-key: a new key for node-1 on node-2's side
	traffic
	pub1_after=$(status node-1 | jq -r '.[0].publicKey')
	s2=$(status node-2)
	seen_after=$(jq -r '.[0].peers[] | select(.node == "node-1") | .publicKey' <<<"$s2")
	hs=$(jq -r '.[0].peers[] | select(.node == "node-1") | .lastHandshakeTime' <<<"$s2")
	echo "  $mode: node-1's public key $pub1_before -> $pub1_after; node-2 has $seen_after"
	why="before $pub1_before, node-1 now $pub1_after, node-2 has $seen_after"
	check "$mode: node-1 re-keyed: node-2's peer for node-1 has a different public key, node-1's new one" \
		[ -n "$pub1_after" -a "$pub1_after" != "$pub1_before" -a "$seen_after" = "$pub1_after" ]
	why="lastHandshakeTime $hs, run started $rekey_at"
	check "$mode: node-2's handshake with node-1 is newer than the re-key ($((${hs:-0} - rekey_at)) s after the run started)" \
		[ "${hs:-0}" -ge "$rekey_at" ]
	# the restarted agent took over the running kernel device (not a new device, not wireguard-go)
	f=/run/ciliate/sim/$tag/agent-node-1.log
	why="$(grep 'wireguard: \(made\|adopted\|started\)' "$f" | tail -n 3)"
	check "$mode: node-1's restarted agent adopted the kernel's ciliate_wg0 and made a new key" \
		[ "$(grep -c "wireguard: adopted the kernel's ciliate_wg0" "$f")" -ge 1 -a \
		"$(grep -c 'wireguard: made a new private key' "$f")" -ge 2 -a \
		"$(grep -c "wireguard: made the kernel's ciliate_wg0" "$f")" -eq 1 ]
	check_status "$mode" "after the re-key"
	check_links "$mode" "after the re-key"
	for node in node-1 node-2; do
		agent_log "$node" | grep 'wireguard: ' | tail -n 5 | sed "s/^/  $mode: $node: /" | cut -c1-220
	done

	t0=$(ms)
	"$SIM" down "$tag" >"$tmp/down-$mode.log" 2>&1
	why="$(tail -n 3 "$tmp/down-$mode.log")"
	check "$mode: ciliate-sim down ($(($(ms) - t0)) ms)" [ -z "$(ls /run/netns 2>/dev/null | grep "^cil-$tag-")" ]
	tag=""
done

echo "RESULT pass=$passed fail=$failed skip=0"
echo "tests/wireguard-sim: $passed passed, $failed failed ($((SECONDS - start)) s)"
[ "$failed" -eq 0 ]
