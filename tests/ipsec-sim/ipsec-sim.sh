#!/usr/bin/env bash
# Kernel-matrix suite ipsec-sim (ci/kernel-suites.txt; docs/IPSEC.md, "A simulated cluster in
# the guest"): a real two-node simulated cluster with `encryption: ipsec` inside the guest —
# ciliate-sim, one ciliate-agent per node, ciliate-cni, the BPF datapath, the kernel's XFRM —
# in native routing (ESP tunnel mode between the node addresses, pod CIDR policies) and in
# tunnel routing (ESP transport mode carrying the VXLAN packets). Per routing mode:
#   1. `ciliate-sim run` of scenarios/encryption/ipsec-sim/ipsec.yaml on the kept cluster:
#      pod-to-pod TCP and UDP across the nodes answered, `encryptedOn: fabric` holding (the
#      simulator's own capture of both fabric links finds no plaintext), streams intact;
#   2. tcpdump on node-1's fabric link during pod traffic: ESP with SPI 3 (the key id) both
#      ways, and not one other IPv4 packet between the nodes; `ciliate encrypt status -o json`
#      of both agents: key 3, 2 keys in use, both SAs with bytes > 0, no XFRM errors after the bring-up (its count is printed);
#   3. rotation under a live TCP stream (ciliate-probe --stream, one connection, a request
#      every 20 ms): key 4 appended to the key file; both agents pick it up on their 1 s tick,
#      use SPI 4 out and keep key 3 (4 keys in use) for ipsec-key-rotation-duration (15s in
#      the scenario), then remove it; the stream loses nothing; the wire shows SPI 4; the
#      scenario runs again with key 4 and only SPI 4 is seen.
# Needs root, a kernel with ESP, iproute2's ip (not busybox's), tcpdump and jq (the kernel
# matrix copies them into the guest: @hostbin). Where the kernel cannot do ESP (this build
# machine) it prints "SKIP: <reason>" and exits 77: the agents fail closed there, which
# tests/encryption checks. Deliberately not named run-suite.sh: `make test` runs every
# tests/*/run-suite.sh on the build machine, whose kernel has no ESP.
# Usage: ipsec-sim.sh BUILD_DIR. IPSEC_SIM_MODES="native tunnel" (default) picks the modes.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
# iproute2's ip before busybox's (/sbin/ip in the guest): the simulator runs `ip`
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
SIM=$build/bin/ciliate-sim
CLI=$build/bin/ciliate
PROBE=$build/bin/ciliate-probe
SCEN=scenarios/encryption/ipsec-sim/ipsec.yaml
KEYS_SRC=scenarios/encryption/ipsec-sim/keys
KEYDIR=/tmp/ciliate-ipsec-sim # the scenario's ipsec-key-file is $KEYDIR/keys
KEY4='4+ rfc4106(gcm(aes)) 0x9f8e7d6c5b4a39281706f5e4d3c2b1a0fedcba98 128'
A_IP=10.244.0.10 # x/a on node-1 (first pod of node-1's pod CIDR)
B_IP=10.244.1.10 # x/b on node-2
MODES=${IPSEC_SIM_MODES:-native tunnel}

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
for t in tcpdump jq; do
	if ! command -v "$t" >/dev/null; then
		echo "FAIL: $t is missing (the kernel matrix copies it: @hostbin in ci/kernel-suites.txt)"
		exit 1
	fi
done
# Can this kernel do ESP with the scenario's algorithm? (in a throw-away namespace)
# (ip by its path: busybox's unshare would run its own ip applet for "ip")
if ! esp=$(unshare -n "$(command -v ip)" xfrm state add src 127.0.0.1 dst 127.0.0.2 proto esp spi 0x100 \
	aead 'rfc4106(gcm(aes))' 0x0102030405060708091011121314151617181920 128 2>&1); then
	echo "SKIP: kernel $(uname -r) cannot do ESP: ip xfrm state add ... aead rfc4106(gcm(aes)): $(echo "$esp" | tr '\n' ' ' | sed 's/ $//'); the agents fail closed here (tests/encryption checks it); the kernel matrix's Debian guests run this suite"
	exit 77
fi

passed=0
failed=0
start=$SECONDS
source tests/lib/suite.sh
tmp=$(mktemp -d /tmp/ciliate-t-ipsec-sim.XXXXXX)
tag=""
cleanup() {
	[ -n "${spid:-}" ] && kill "$spid" 2>/dev/null
	[ -n "${tpid:-}" ] && kill "$tpid" 2>/dev/null
	[ -n "$tag" ] && "$SIM" down "$tag" >/dev/null 2>&1
	rm -rf "$tmp" "$KEYDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

jqe() { jq -e "$2" <<<"$1" >/dev/null 2>&1; } # JSON EXPR: EXPR holds (a check's command)
ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
status() { "$CLI" encrypt status -o json --node "cil-$tag-$1" 2>/dev/null; }
agent_log() { cat "/run/ciliate/sim/$tag/agent-$1.log" 2>/dev/null; }
logged_rotation() { # (grep on the file: `grep -q` in a pipeline is a SIGPIPE under pipefail)
	local f=/run/ciliate/sim/$tag/agent-$1.log
	grep -q "ipsec: key rotation 3 -> 4" "$f" && grep -q "ipsec: key 3's grace period is over" "$f"
}

# tcpdump on node-1's fabric link (n0, in the fabric namespace: every packet node-1 sends or
# receives on the underlay) into $1 until stop_capture.
start_capture() {
	rm -f "$1" "$tmp/tcpdump.err"
	ip netns exec "cil-$tag-fabric" tcpdump -Z root -n -i n0 -s 200 -U -c 50000 -w "$1" ip \
		2>"$tmp/tcpdump.err" &
	tpid=$!
	for _ in $(seq 100); do
		grep -q 'listening on' "$tmp/tcpdump.err" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "  (tcpdump did not report listening: $(cat "$tmp/tcpdump.err"))"
}
stop_capture() {
	sleep 0.3
	kill -INT "$tpid" 2>/dev/null
	wait "$tpid" 2>/dev/null
	tpid=""
}
# pod traffic both ways, TCP and UDP, a few times
traffic() {
	for _ in 1 2 3; do
		"$SIM" exec -c "$tag" x/a -- "$PROBE" --to "$B_IP" --port 80 --payload-bytes 1000 >/dev/null 2>&1
		"$SIM" exec -c "$tag" x/b -- "$PROBE" --to "$A_IP" --port 5353 --protocol UDP >/dev/null 2>&1
		"$SIM" exec -c "$tag" x/b -- "$PROBE" --to "$A_IP" --port 80 >/dev/null 2>&1
	done
}
# a capture read back (-Z root: Debian's tcpdump otherwise drops to user tcpdump, which the
# guest does not have, even to read a file)
tdr() { tcpdump -Z root -nr "$@"; }
# number of ESP packets SRC > DST with SPI in a capture
esp_count() { # PCAP SRC DST SPI
	tdr "$1" 2>/dev/null | grep -c " $2 > $3: ESP(spi=$(printf '0x%08x' "$4"),"
}
not_esp() { tdr "$1" 'ip and not esp' 2>/dev/null | wc -l; }
n_ip() { tdr "$1" ip 2>/dev/null | wc -l; }
sa_bytes() { # JSON DIR SPI
	jq -r --arg d "$2" --argjson s "$3" \
		'[.[0].sas[] | select(.direction == $d and .spi == $s) | .bytes] | add // 0' <<<"$1"
}
# polls until COND (a jq expression over both agents' status) holds, at most $2 s; leaves
# the last status of each in s1, s2
wait_both() { # JQ SECS
	local t0=$SECONDS
	while [ $((SECONDS - t0)) -lt "$2" ]; do
		s1=$(status node-1)
		s2=$(status node-2)
		if jq -e "$1" <<<"$s1" >/dev/null 2>&1 && jq -e "$1" <<<"$s2" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.25
	done
	return 1
}

echo "kernel $(uname -r), modes: $MODES"
for mode in $MODES; do
	mkdir -p "$KEYDIR"
	grep -v '^#' "$KEYS_SRC" >"$KEYDIR/keys"
	t0=$(ms)
	if ! "$SIM" up --routing "$mode" "$SCEN" >"$tmp/up-$mode.log" 2>&1; then
		fail "$mode: ciliate-sim up $SCEN" "$(tail -n 5 "$tmp/up-$mode.log")"
		for f in /run/ciliate/sim/*/agent-*.log; do
			[ -f "$f" ] && { echo "  --- $f"; tail -n 15 "$f" | sed 's/^/  /'; }
		done
		continue
	fi
	up_ms=$(($(ms) - t0))
	tag=$("$SIM" status -o json | jq -r --arg f "$(realpath "$SCEN")" \
		'[.[] | select(.scenario == $f) | .tag][0] // empty')
	pass "$mode: ciliate-sim up (2 nodes, 2 pods, encryption: ipsec) in $up_ms ms (tag $tag)"
	# XFRM errors from the bring-up itself: the agents' first node-to-node health probes
	# (docs/HEALTH.md) can reach a node a moment before its SAs are in (tunnel routing
	# encrypts node-to-node traffic); what follows must add none
	declare -A err0
	for node in node-1 node-2; do
		err0[$node]=$(status "$node" | jq '.[0].errors // 0' 2>/dev/null)
		echo "  $mode: $node: ${err0[$node]:-?} XFRM error(s) counted at bring-up"
	done

	# 1. the scenario on the kept cluster: TCP/UDP answered, no plaintext on the fabric
	t0=$(ms)
	"$SIM" run --routing "$mode" "$SCEN" --report "$tmp/$mode-1.json" >"$tmp/$mode-1.out" 2>&1
	rc=$?
	run_ms=$(($(ms) - t0))
	grep -E '^ *(ok|FAIL|SKIP) ' "$tmp/$mode-1.out" | sed "s/^/  $mode: /" | cut -c1-220
	why="exit $rc; $(sed -n '/^failed checks:/,/^$/p' "$tmp/$mode-1.out" | head -n 6)"
	check "$mode: ciliate-sim run $SCEN (key 3): every check held ($run_ms ms)" [ "$rc" -eq 0 ]
	n=$(jq '[.checks[] | select(.pass and (.expected | test("encryptedOn=fabric")))] | length' \
		"$tmp/$mode-1.json" 2>/dev/null)
	why="${n:-?} passing encryptedOn checks"
	check "$mode: encryptedOn fabric held for TCP and UDP both ways (5 probes)" [ "${n:-0}" -eq 5 ]
	n=$(jq '[.checks[] | select(.pass and .kind == "stream")] | length' "$tmp/$mode-1.json" 2>/dev/null)
	why="${n:-?} intact streams"
	check "$mode: both streams intact" [ "${n:-0}" -eq 2 ]

	# 2. ESP with SPI 3 on the wire; the agents' SAs
	start_capture "$tmp/esp3-$mode.pcap"
	traffic
	stop_capture
	o=$(esp_count "$tmp/esp3-$mode.pcap" 192.0.2.1 192.0.2.2 3)
	i=$(esp_count "$tmp/esp3-$mode.pcap" 192.0.2.2 192.0.2.1 3)
	p=$(not_esp "$tmp/esp3-$mode.pcap")
	t=$(n_ip "$tmp/esp3-$mode.pcap")
	why="$(tdr "$tmp/esp3-$mode.pcap" 2>&1 | head -n 3; cat "$tmp/tcpdump.err")"
	check "$mode: tcpdump on node-1's link: ESP spi 3 both ways ($o out, $i in)" \
		[ "$o" -gt 0 -a "$i" -gt 0 ]
	why="$(tdr "$tmp/esp3-$mode.pcap" 'ip and not esp' 2>&1 | head -n 3)"
	check "$mode: tcpdump: of $t IPv4 packets on the link, none but ESP ($p)" [ "$p" -eq 0 -a "$t" -gt 0 ]
	for node in node-1 node-2; do
		s=$(status "$node")
		why="$(head -c 600 <<<"$s")"
		check "$mode: $node encrypt status: ipsec, key 3, 2 keys in use, no errors since bring-up" \
			jqe "$s" '.[0] | .mode == "ipsec" and .currentKeyId == 3 and .previousKeyId == null
				and .keysInUse == 2 and .errors == '"${err0[$node]:-0}"' and .error == ""'
		check "$mode: $node SAs spi 3 out and in carried bytes ($(sa_bytes "$s" out 3) out, $(sa_bytes "$s" in 3) in)" \
			[ "$(sa_bytes "$s" out 3)" -gt 0 -a "$(sa_bytes "$s" in 3)" -gt 0 ]
	done

	# 3. rotation 3 -> 4 under a live TCP stream
	"$SIM" exec -c "$tag" x/a -- "$PROBE" --stream --to "$B_IP" --port 80 \
		--max-time-ms 120000 >"$tmp/stream-$mode.out" 2>&1 &
	spid=$!
	for _ in $(seq 100); do
		grep -q '"stream":"open"' "$tmp/stream-$mode.out" && break
		sleep 0.1
	done
	why="$(cat "$tmp/stream-$mode.out")"
	check "$mode: stream x/a -> x/b open" grep -q '"stream":"open"' "$tmp/stream-$mode.out"
	start_capture "$tmp/rot-$mode.pcap"
	sleep 1
	echo "$KEY4" >>"$KEYDIR/keys"
	now=$EPOCHREALTIME
	printf '  %s: key 4 appended to %s at %(%H:%M:%S)T.%s\n' "$mode" "$KEYDIR/keys" \
		"${now%[.,]*}" "$(cut -c1-3 <<<"${now#*[.,]}")"
	t0=$(ms)
	wait_both '.[0] | .currentKeyId == 4 and .previousKeyId == 3 and .keysInUse == 4' 20
	rc=$?
	rot_ms=$(($(ms) - t0))
	left=$(jq '.[0].previousKeyRemovedInMs' <<<"$s1")
	why="node-1: $(jq -c '.[0] | {currentKeyId, previousKeyId, keysInUse, error, keyFileError}' <<<"$s1")"
	check "$mode: both agents rotated to key 4 and keep key 3 (4 keys in use; seen after $rot_ms ms, key 3 removed in $left ms)" [ "$rc" -eq 0 ]
	# the stream goes on over SPI 4
	wait_both '.[0].previousKeyId == 3 and
		([.[0].sas[] | select(.direction == "out" and .spi == 4) | .bytes] | add) > 0' 10
	rc=$?
	why="$(jq -c '[.[0].sas[] | {spi, direction, bytes}]' <<<"$s1")"
	check "$mode: both nodes send with spi 4 ($(sa_bytes "$s1" out 4) and $(sa_bytes "$s2" out 4) bytes) while key 3 is kept" [ "$rc" -eq 0 ]
	t0=$(ms)
	wait_both '.[0] | .currentKeyId == 4 and .previousKeyId == null and .keysInUse == 2 and
		([.sas[] | select(.spi == 3)] | length) == 0' 30
	rc=$?
	grace_ms=$(($(ms) - t0))
	why="node-1: $(status node-1 | jq -c '.[0] | {currentKeyId, previousKeyId, keysInUse, sas: [.sas[] | .spi]}')"
	check "$mode: key 3 removed after the 15s grace (2 keys in use, no SA spi 3; $grace_ms ms more)" [ "$rc" -eq 0 ]
	sleep 1
	stop_capture
	kill -USR1 "$spid" 2>/dev/null
	wait "$spid"
	spid=""
	res=$(grep -v '"stream":"open"' "$tmp/stream-$mode.out" | tail -n 1)
	why="$res"
	check "$mode: the stream across the rotation: every request answered on one connection ($(jq -r '"\(.answered)/\(.requests)"' <<<"$res" 2>/dev/null))" \
		jqe "$res" '.result == "allow" and .requests == .answered and .requests > 50'
	o3=$(esp_count "$tmp/rot-$mode.pcap" 192.0.2.1 192.0.2.2 3)
	o4=$(esp_count "$tmp/rot-$mode.pcap" 192.0.2.1 192.0.2.2 4)
	i4=$(esp_count "$tmp/rot-$mode.pcap" 192.0.2.2 192.0.2.1 4)
	p=$(not_esp "$tmp/rot-$mode.pcap")
	why="$(tdr "$tmp/rot-$mode.pcap" 'ip and not esp' 2>/dev/null | head -n 3)"
	check "$mode: tcpdump during the rotation: spi 3 and spi 4 ($o3 spi-3 out, $o4 spi-4 out, $i4 spi-4 in), nothing but ESP ($p)" \
		[ "$o3" -gt 0 -a "$o4" -gt 0 -a "$i4" -gt 0 -a "$p" -eq 0 ]
	for node in node-1 node-2; do
		agent_log "$node" | grep 'ipsec: key' | sed "s/^/  $mode: /"
		why="$(agent_log "$node" | grep ipsec | tail -n 4)"
		check "$mode: $node's agent logged the rotation and the end of the grace period" \
			logged_rotation "$node"
	done

	# the scenario again, now with key 4: SPI 4 only
	start_capture "$tmp/esp4-$mode.pcap"
	"$SIM" run --routing "$mode" "$SCEN" --report "$tmp/$mode-2.json" >"$tmp/$mode-2.out" 2>&1
	rc=$?
	traffic
	stop_capture
	why="exit $rc; $(sed -n '/^failed checks:/,/^$/p' "$tmp/$mode-2.out" | head -n 6)"
	check "$mode: ciliate-sim run $SCEN after the rotation (key 4): every check held" [ "$rc" -eq 0 ]
	o3=$(esp_count "$tmp/esp4-$mode.pcap" 192.0.2.1 192.0.2.2 3)
	i3=$(esp_count "$tmp/esp4-$mode.pcap" 192.0.2.2 192.0.2.1 3)
	o4=$(esp_count "$tmp/esp4-$mode.pcap" 192.0.2.1 192.0.2.2 4)
	i4=$(esp_count "$tmp/esp4-$mode.pcap" 192.0.2.2 192.0.2.1 4)
	p=$(not_esp "$tmp/esp4-$mode.pcap")
	why="$(tdr "$tmp/esp4-$mode.pcap" 2>/dev/null | grep -v 'spi=0x00000004' | head -n 3)"
	check "$mode: tcpdump after the grace: only ESP spi 4 ($o4 out, $i4 in; spi 3: $((o3 + i3)); other: $p)" \
		[ "$o4" -gt 0 -a "$i4" -gt 0 -a "$((o3 + i3))" -eq 0 -a "$p" -eq 0 ]
	s=$(status node-2)
	why="$(jq -c '.[0] | {errors, error, sas: [.sas[] | {spi, direction, bytes}]}' <<<"$s")"
	check "$mode: node-2 after the rotation: SAs spi 4 with bytes both ways, no XFRM errors since bring-up" \
		jqe "$s" '.[0].errors == '"${err0[node-2]:-0}"' and ([.[0].sas[] | select(.spi == 4 and .bytes > 0)] | length) == 2'

	t0=$(ms)
	"$SIM" down "$tag" >"$tmp/down-$mode.log" 2>&1
	why="$(tail -n 3 "$tmp/down-$mode.log")"
	check "$mode: ciliate-sim down ($(($(ms) - t0)) ms)" [ -z "$(ls /run/netns 2>/dev/null | grep "^cil-$tag-")" ]
	tag=""
done

echo "RESULT pass=$passed fail=$failed skip=0"
echo "tests/ipsec-sim: $passed passed, $failed failed ($((SECONDS - start)) s)"
[ "$failed" -eq 0 ]
