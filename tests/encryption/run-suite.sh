#!/usr/bin/env bash
# Transparent encryption with WireGuard under the simulator (docs/ENCRYPTION.md): every
# scenario of scenarios/encryption/ through real agents, wireguard-go, CNI and BPF, in tunnel
# and in native routing side by side (encryptedOn: fabric on the cross-node probes, strict
# mode's UNENCRYPTED_TRAFFIC drops proven by their events, re-keying under live streams);
# then, with wireguard.yaml kept up in each routing mode, checks from outside the simulator:
#   - `ciliate encrypt status -o json` against the store's published keys and against
#     wireguard-tools' own `wg show ciliate_wg0 dump` of the device;
#   - a capture of the fabric during pod traffic dissected by tshark (VXLAN decoded on 8472):
#     WireGuard transport messages, and not one IPv4 packet with a pod address; the same
#     capture on a cluster without encryption must show them (the check can fail);
#   - a node that joins afresh (its agent and wireguard-go stopped, its key gone) answers a
#     pod of another node within 2 s of its agent starting.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
CLI=$build/bin/ciliate
for b in "$SIM" "$CLI" "$build/bin/ciliate-agent"; do
	if [ ! -x "$b" ]; then
		echo "FAIL: $b is missing (run make first)"
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi
for t in jq wireguard-go wg tshark; do
	if ! command -v "$t" >/dev/null; then
		echo "FAIL: $t is missing (make deps installs it: ci/install-deps.sh)"
		exit 1
	fi
done
if [ ! -c /dev/net/tun ]; then
	echo "SKIP: no /dev/net/tun: wireguard-go cannot make its device"
	exit 77
fi

passed=0
failed=0
start=$SECONDS
source tests/lib/suite.sh
source tests/lib/sim_modes.sh
tmp=$(mktemp -d /tmp/ciliate-t-enc.XXXXXX)
up_file=scenarios/encryption/wireguard.yaml
plain=$tmp/plain.yaml
cleanup() {
	for m in tunnel native; do
		"$SIM" down "wg$m" >/dev/null 2>&1
	done
	[ -n "${plain_tag:-}" ] && "$SIM" down "$plain_tag" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
# clusters a killed earlier run left (the suite keeps two up for a while)
for m in tunnel native; do "$SIM" down "wg$m" >/dev/null 2>&1; done

files=(scenarios/encryption/*.yaml)
echo "${#files[@]} scenario(s) x 2 routing modes"
sim_modes_run "$SIM" "$tmp" "${files[@]}"
trap cleanup EXIT
for mode in tunnel native; do
	rep=$tmp/$mode.json
	sim_mode_checks "$mode" "$tmp" 30 # rekey 14 + strict 12 + wireguard 12
	n=$(jq '[.checks[] | select(.pass and (.expected | test("encryptedOn=fabric")))] | length' \
		"$rep" 2>/dev/null)
	why="${n:-?} passing encryptedOn checks"
	check "$mode: encryptedOn fabric held (>= 17 checks)" [ "${n:-0}" -ge 17 ]
	n=$(jq '[.checks[] | select(.pass and (.observed | test("drop=UNENCRYPTED_TRAFFIC")))] |
		length' "$rep" 2>/dev/null)
	why="${n:-?} denials by UNENCRYPTED_TRAFFIC"
	check "$mode: strict mode's denials are UNENCRYPTED_TRAFFIC drops (4)" [ "${n:-0}" -eq 4 ]
	n=$(jq '[.checks[] | select(.pass and (.name | test("^stream")))] | length' "$rep" 2>/dev/null)
	why="${n:-?} intact streams"
	check "$mode: every stream across rekey/restart intact (4)" [ "${n:-0}" -eq 4 ]
done

# ---- one cluster kept up per routing mode ------------------------------------------------
agent_json() { "$CLI" encrypt status -o json --node "cil-wg$1-$2"; }

# wg show dump of a node's device, read by wireguard-tools through the agent's socket
# directory bound over /run/wireguard in a private mount namespace (never the root's)
wg_dump() {
	local inst=cil-wg$1-$2
	ip netns exec "$inst" unshare -m sh -c \
		"mount --make-rprivate / && mkdir -p /run/wireguard && \
		 mount --bind /run/ciliate/$inst/wireguard /run/wireguard && wg show ciliate_wg0 dump"
}

# capture the fabric links of node-1 and node-2 while pod a talks to pod b, then dissect
fabric_capture() { # TAG OUT.pcap
	local tag=$1 out=$2
	timeout 20 "$SIM" capture -c "$tag" fabric -i any -w "$out" --count 400 --timeout 6 \
		>"$tmp/cap-$tag.log" 2>&1 &
	local cpid=$!
	sleep 1.5
	for i in 1 2 3; do
		"$SIM" exec -c "$tag" x/a -- "$build/bin/ciliate-probe" --to 10.244.1.10 --port 80 \
			--payload-bytes 1000 >/dev/null 2>&1
		"$SIM" exec -c "$tag" x/b -- "$build/bin/ciliate-probe" --to 10.244.0.10 --port 5353 \
			--protocol UDP >/dev/null 2>&1
	done
	wait "$cpid"
}
count() { # PCAP FILTER
	tshark -r "$1" -d udp.port==8472,vxlan -d udp.port==51871,wg -Y "$2" 2>/dev/null | wc -l
}

for mode in tunnel native; do
	tag=wg$mode
	if ! "$SIM" up --routing "$mode" "$up_file" >"$tmp/up-$mode.log" 2>&1; then
		fail "$mode: ciliate-sim up $up_file" "$(tail -3 "$tmp/up-$mode.log")"
		continue
	fi
	pass "$mode: ciliate-sim up $up_file"
	"$SIM" exec -c "$tag" x/a -- "$build/bin/ciliate-probe" --to 10.244.1.10 --port 80 >/dev/null 2>&1
	s=$(agent_json "$mode" node-1)
	why="$(echo "$s" | head -c 400)"
	check "$mode: encrypt status: wireguard on ciliate_wg0, port 51871, 2 peers" \
		jq -e '.[0] | .mode == "wireguard" and .interface == "ciliate_wg0" and
			.listenPort == 51871 and .peerCount == 2' <<<"$s" >/dev/null
	want=$(jq -r '.[0].peers[] | select(.node == "node-2") | .allowedIPs | join(",")' <<<"$s")
	exp="10.244.1.0/24"
	[ "$mode" = tunnel ] && exp="10.244.1.0/24,192.0.2.2/32"
	why="node-2's allowed IPs: $want"
	check "$mode: node-2's allowed IPs are its pod CIDR$([ "$mode" = tunnel ] && echo ' and its address')" \
		[ "$want" = "$exp" ]
	hs=$(jq -r '.[0].peers[] | select(.node == "node-2") | .lastHandshakeTime' <<<"$s")
	why="lastHandshakeTime $hs"
	check "$mode: a handshake with node-2 after pod traffic" [ "${hs:-0}" -gt 0 ]
	# the device as wireguard-tools sees it, against the store and the agent
	dump=$(wg_dump "$mode" node-1 2>&1)
	pub1=$(jq -r '.[0].publicKey' <<<"$s")
	pub2=$(agent_json "$mode" node-2 | jq -r '.[0].publicKey')
	why="wg show dump: $(head -c 300 <<<"$dump")"
	check "$mode: wg show: node-1's device has the published key and port 51871" \
		grep -q "^[^	]*	$pub1	51871	" <<<"$dump"
	check "$mode: wg show: node-1's device has node-2's key as peer, endpoint 192.0.2.2:51871" \
		grep -q "^$pub2	(none)	192.0.2.2:51871	" <<<"$dump"
	# tshark on the fabric: WireGuard transport data and no pod address anywhere
	fabric_capture "$tag" "$tmp/fabric-$mode.pcap"
	ntr=$(count "$tmp/fabric-$mode.pcap" "wg.type == 4")
	npod=$(count "$tmp/fabric-$mode.pcap" "ip.addr == 10.244.0.0/16")
	why="$ntr transport messages"
	check "$mode: tshark: WireGuard transport data on the fabric" [ "${ntr:-0}" -gt 0 ]
	why="$npod packets with a pod address"
	check "$mode: tshark: no packet on the fabric with a pod address (VXLAN decoded)" \
		[ "${npod:-1}" -eq 0 ]
	# a node joining afresh: agent and wireguard-go stopped, key and published key gone
	st=/run/ciliate/sim/$tag.json
	apid=$(jq -r '.hosts[] | select(.name == "node-3") | .agent.pid' "$st")
	cmd=$(tr '\0' '\n' <"/proc/$apid/cmdline" 2>/dev/null)
	wgdir=/run/ciliate/cil-$tag-node-3/wireguard
	if [ -z "$cmd" ]; then
		fail "$mode: node-3 rejoins" "no agent command line for pid $apid"
	else
		mapfile -t argv <<<"$cmd"
		kill -9 "$apid"
		wgpid=$(cat "$wgdir/wireguard-go.pid")
		[ "$(cat /proc/"$wgpid"/comm 2>/dev/null)" = wireguard-go ] && kill "$wgpid"
		for _ in $(seq 50); do [ -d "/proc/$wgpid" ] || break; sleep 0.05; done
		rm -f "$wgdir/private.key"
		t0=$(date +%s%N)
		ip netns exec "cil-$tag-node-3" "${argv[@]}" >>"/run/ciliate/sim/$tag/agent-node-3.log" 2>&1 &
		ms=""
		for i in $(seq 40); do
			if "$SIM" exec -c "$tag" x/a -- "$build/bin/ciliate-probe" --to 10.244.2.10 --port 80 \
				--timeout-ms 200 2>/dev/null | grep -q " allow "; then
				ms=$((($(date +%s%N) - t0) / 1000000))
				break
			fi
		done
		n3=$(agent_json "$mode" node-1 | jq -r '.[0].peers[] | select(.node == "node-3") | .publicKey')
		new3=$(agent_json "$mode" node-3 | jq -r '.[0].publicKey')
		why="answered after ${ms:-never} ms"
		check "$mode: node-3 joining afresh answers node-1's pod within 2 s of its agent starting ($ms ms)" \
			[ -n "$ms" ] && [ "$ms" -lt 2000 ]
		why="node-1 has $n3 for node-3, node-3 publishes $new3"
		check "$mode: node-1 knows node-3's new key" [ -n "$new3" ] && [ "$n3" = "$new3" ]
	fi
	"$SIM" down "$tag" >/dev/null 2>&1
done

# the same capture without encryption: the dissection must see pod addresses (it can fail)
sed -e 's/encryption: wireguard/encryption: none/' -e 's/name: wg}/name: wgplain}/' "$up_file" >"$plain"
if "$SIM" up "$plain" >"$tmp/up-plain.log" 2>&1; then
	plain_tag=$("$SIM" status -o json | jq -r --arg f "$(realpath "$plain")" \
		'.[] | select(.scenario == $f) | .tag')
	fabric_capture "$plain_tag" "$tmp/fabric-plain.pcap"
	npod=$(count "$tmp/fabric-plain.pcap" "ip.addr == 10.244.0.0/16")
	why="$npod packets with a pod address"
	check "control: without encryption tshark sees pod addresses on the fabric" [ "${npod:-0}" -gt 0 ]
else
	fail "control: ciliate-sim up (encryption: none)" "$(tail -3 "$tmp/up-plain.log")"
fi

# encryption: ipsec where the kernel has no ESP (this machine's): the agents refuse to forward
# pod traffic unencrypted, so the bring-up fails naming the reason; never plaintext
ipsec=$tmp/ipsec.yaml
sed -e 's/encryption: wireguard/encryption: ipsec/' -e 's/name: wg}/name: wgipsec}/' "$up_file" >"$ipsec"
if unshare -n sh -c 'ip xfrm state add src 127.0.0.1 dst 127.0.0.2 proto esp spi 0x100 \
	aead "rfc4106(gcm(aes))" 0x0102030405060708091011121314151617181920 128' 2>/dev/null; then
	echo "SKIP - ipsec refused without ESP: this kernel has ESP (the kernel matrix's ipsec suite covers it)"
else
	out=$("$SIM" up "$ipsec" 2>&1)
	rc=$?
	"$SIM" down "$ipsec" >/dev/null 2>&1
	why="exit $rc: $(tail -c 400 <<<"$out")"
	check "ipsec on a kernel without ESP: bring-up refused, naming why (no plaintext)" \
		[ "$rc" -ne 0 ] && grep -q "this kernel cannot do IPsec" <<<"$out"
fi

# every wireguard-go the clusters ran is gone with them
mine=$(pgrep -x wireguard-go | while read -r p; do
	ip netns identify "$p" 2>/dev/null | grep -q '^cil-wg' && echo "$p"
done)
cleanup
trap - EXIT
left=""
for p in $mine; do
	for _ in $(seq 40); do [ -d "/proc/$p" ] || break; sleep 0.05; done
	[ -d "/proc/$p" ] && left="$left $p"
done
why="still running:$left"
check "every wireguard-go of the clusters stopped by ciliate-sim down ($(wc -w <<<"$mine"))" [ -z "$left" ]

echo "RESULT pass=$passed fail=$failed skip=0"
echo "tests/encryption: $passed passed, $failed failed ($((SECONDS - start)) s)"
[ "$failed" -eq 0 ]
