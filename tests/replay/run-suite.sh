#!/usr/bin/env bash
# Replay suite: every Replay document in scenarios/ (and the shared example) through
# `ciliate replay --scenario`, checking per-packet verdicts and byte-exact golden outputs.
# Plus CLI contract checks: usage errors exit 2, unsupported link types are rejected clearly.
set -uo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."
ciliate="$build/bin/ciliate"
passed=0 failed=0

check() { # name, expected-rc, command...
	local name=$1 want=$2; shift 2
	local out rc
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" -eq "$want" ]; then
		passed=$((passed + 1)); echo "ok   $name"
	else
		failed=$((failed + 1)); echo "FAIL $name (rc $rc, want $want)"; echo "$out" | sed 's/^/     /' | tail -40
	fi
}

# a check that needs ../shared ($CILIATE_SHARED) and cannot run: fails under CI=true, else a
# visible SKIP line (never dropped silently)
shared_missing() { # NAME PATH
	if [ "${CI:-}" = true ]; then
		failed=$((failed + 1))
		echo "FAIL $1: $2 is missing (../shared beside the repository, or CILIATE_SHARED); under CI=true a missing input fails instead of skipping"
	else
		echo "SKIP $1: $2 is missing (../shared, or CILIATE_SHARED); under CI=true this fails"
	fi
}

mapfile -t files < <(grep -l 'kind: Replay' scenarios/*/*.yaml scenarios/*.yaml 2>/dev/null | sort -u)
shared=${CILIATE_SHARED:-../shared}
if [ -f "$shared/examples/replay.yaml" ]; then
	files+=("$shared/examples/replay.yaml")
else
	shared_missing "replay of the shared example" "$shared/examples/replay.yaml"
fi
if [ ${#files[@]} -eq 0 ]; then
	echo "no scenario with Replay documents found"; exit 1
fi
for f in "${files[@]}"; do
	check "replay $f" 0 "$ciliate" replay --scenario "$f"
done

# The denied handshake of the shared example: SYN dropped with POLICY_DENIED, nothing after.
ex=$shared/examples
if [ -f $ex/replay.yaml ]; then
	out=$("$ciliate" replay --scenario $ex/replay.yaml -o json 2>&1)
	if echo "$out" | tail -1 | grep -q '"verdict":"drop:POLICY_DENIED"'; then
		passed=$((passed + 1)); echo "ok   example: last SYN shows drop:POLICY_DENIED (json)"
	else
		failed=$((failed + 1)); echo "FAIL example json"; echo "$out"
	fi
	if echo "$out" | sed -n 2p | grep -q '"ct_status":"established"'; then
		passed=$((passed + 1)); echo "ok   example: packet 2 is conntrack established"
	else
		failed=$((failed + 1)); echo "FAIL example: packet 2 not established"; echo "$out"
	fi
	# ad-hoc form with -w: outputs written and re-readable as a golden
	tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
	check "replay -r/-w" 0 "$ciliate" replay --scenario $ex/replay.yaml --node node-1 \
		--hook from-container --endpoint prod/web -r $ex/web-to-db.pcap -w "$tmp/out.pcap"
	check "replay --expect own output" 0 "$ciliate" replay --scenario $ex/replay.yaml \
		--node node-1 --hook from-container --endpoint prod/web -r $ex/web-to-db.pcap \
		--expect "$tmp/out.pcap" --expect-verdicts redirect,redirect,redirect,drop:POLICY_DENIED
	check "replay wrong expectation fails" 1 "$ciliate" replay --scenario $ex/replay.yaml \
		--node node-1 --hook from-container --endpoint prod/web -r $ex/web-to-db.pcap \
		--expect-verdicts redirect,redirect,redirect,ok
	check "replay usage error" 2 "$ciliate" replay --node node-1
	check "replay unknown endpoint" 1 "$ciliate" replay --scenario $ex/replay.yaml \
		--node node-1 --hook from-container --endpoint prod/nope -r $ex/web-to-db.pcap
	# a non-Ethernet capture is rejected with a message naming the link type
	printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x65\x00\x00\x00' > "$tmp/raw.pcap"
	out=$("$ciliate" replay --scenario $ex/replay.yaml --node node-1 --hook from-container \
		--endpoint prod/web -r "$tmp/raw.pcap" 2>&1); rc=$?
	if [ $rc -eq 1 ] && echo "$out" | grep -q "link type"; then
		passed=$((passed + 1)); echo "ok   non-Ethernet link type rejected: $out"
	else
		failed=$((failed + 1)); echo "FAIL non-Ethernet link type (rc $rc): $out"
	fi
else
	shared_missing "the shared example's checks (json, -r/-w, --expect, errors)" "$ex/replay.yaml"
fi
# Service and NAT goldens (scenarios/replay/svc-*.yaml, docs/SERVICES.md "Replay"): also run
# by the simulator (Replay documents need no cluster), and the netdev hooks from the CLI.
svc=(scenarios/replay/svc-clusterip.yaml scenarios/replay/svc-nodeport.yaml
     scenarios/replay/svc-masquerade.yaml scenarios/replay/svc-dsr-opt.yaml
     scenarios/replay/svc-dsr-ipip.yaml scenarios/replay/svc-dsr-geneve.yaml
     scenarios/replay/svc-xdp-nodeport.yaml scenarios/replay/egress-gateway.yaml)
check "ciliate-sim run: service/NAT replays" 0 "$build/bin/ciliate-sim" run "${svc[@]}"
tmp2=$(mktemp -d); trap 'rm -rf "$tmp2" ${tmp:+"$tmp"}' EXIT
check "replay --hook from-netdev -r/-w/--expect (NodePort SNAT and its reply)" 0 \
	"$ciliate" replay --scenario scenarios/replay/svc-nodeport.yaml --node node-1 \
	--hook from-netdev -r pcaps/replay/svc-nodeport-snat.pcap -w "$tmp2/np.pcap" \
	--expect pcaps/replay/svc-nodeport-snat.out.pcap --expect-verdicts ok,ok,ok
check "replay --hook to-netdev (masquerade exemptions)" 0 \
	"$ciliate" replay --scenario scenarios/replay/svc-masquerade.yaml --node node-1 \
	--hook to-netdev -r pcaps/replay/svc-masquerade-exempt.pcap \
	--expect pcaps/replay/svc-masquerade-exempt.out.pcap --expect-verdicts ok,ok,ok
check "replay --hook to-netdev,from-netdev (one hook per packet)" 0 \
	"$ciliate" replay --scenario scenarios/replay/svc-masquerade.yaml --node node-1 \
	--hook to-netdev,from-netdev -r pcaps/replay/svc-masquerade-tcp.pcap \
	--expect pcaps/replay/svc-masquerade-tcp.out.pcap
check "replay --hook from-netdev -r/--expect (DSR entry node: the option 0x9A on SYN and UDP)" 0 \
	"$ciliate" replay --scenario scenarios/replay/svc-dsr-opt.yaml --node node-1 \
	--hook from-netdev -r pcaps/replay/svc-dsr-entry.pcap \
	--expect pcaps/replay/svc-dsr-entry.out.pcap --expect-verdicts ok,ok,ok
check "replay --hook from-netdev,to-netdev (DSR backend node: the reply from the frontend)" 0 \
	"$ciliate" replay --scenario scenarios/replay/svc-dsr-opt.yaml --node node-2 \
	--hook from-netdev,to-netdev -r pcaps/replay/svc-dsr-backend.pcap \
	--expect pcaps/replay/svc-dsr-backend.out.pcap --expect-verdicts ok,ok
# the ipip and geneve dispatches (dsr_ipip.h, dsr_geneve.h): encapsulation on the entry node
# (a redirect out of the device), the ICMP fragmentation-needed reply, decapsulation on the
# backend's node and the reply from the frontend
for d in ipip geneve; do
	n=$([ $d = ipip ] && echo 3 || echo 4)
	check "replay DSR $d entry node: encapsulated, and ICMP frag needed for a 1500-byte SYN" 0 \
		"$ciliate" replay --scenario scenarios/replay/svc-dsr-$d.yaml --node node-1 \
		--hook from-netdev -r pcaps/replay/svc-dsr-$d-entry.pcap \
		--expect pcaps/replay/svc-dsr-$d-entry.out.pcap \
		--expect-verdicts "$(printf 'redirect%.0s,' $(seq "$n") | sed 's/,$//')"
	v=$([ $d = ipip ] && echo redirect,ok || echo ok,ok)
	check "replay DSR $d backend node: decapsulated, the reply from the frontend" 0 \
		"$ciliate" replay --scenario scenarios/replay/svc-dsr-$d.yaml --node node-2 \
		--hook from-netdev,to-netdev -r pcaps/replay/svc-dsr-$d-backend.pcap \
		--expect pcaps/replay/svc-dsr-$d-backend.out.pcap --expect-verdicts $v
done
# XDP (docs/XDP.md): the NodePort request and its reply sent back out of the fabric (tx,
# byte for byte: DNAT + SNAT, TTL - 1, the next hop's MACs from the FIB of the node's fabric
# the replay builds), a local backend passed untouched, a prefilter-denied source dropped;
# a connection started at XDP continued in from-netdev
check "replay --hook xdp -r/--expect (NodePort tx, reply tx, pass, prefilter drop)" 0 \
	"$ciliate" replay --scenario scenarios/replay/svc-xdp-nodeport.yaml --node node-1 \
	--hook xdp -r pcaps/replay/svc-xdp-nodeport.pcap -w "$tmp2/xdp.pcap" \
	--expect pcaps/replay/svc-xdp-nodeport.out.pcap \
	--expect-verdicts tx,tx,tx,pass,drop:PREFILTER_DENIED
check "replay --hook xdp,from-netdev,from-netdev (XDP's state continued in TC)" 0 \
	"$ciliate" replay --scenario scenarios/replay/svc-xdp-nodeport.yaml --node node-1 \
	--hook xdp,from-netdev,from-netdev -r pcaps/replay/svc-xdp-to-tc.pcap \
	--expect pcaps/replay/svc-xdp-to-tc.out.pcap --expect-verdicts tx,ok,ok
check "replay --hook xdp: a wrong expectation fails" 1 \
	"$ciliate" replay --scenario scenarios/replay/svc-xdp-nodeport.yaml --node node-1 \
	--hook xdp -r pcaps/replay/svc-xdp-nodeport.pcap \
	--expect-verdicts tx,tx,tx,tx,drop:PREFILTER_DENIED
# egress gateway (egress_gw.h): the pod's node sends a selected pod's packet in Geneve to the
# gateway (VNI = its identity), masquerades the excluded CIDR, drops NO_EGRESS_GATEWAY; the
# gateway decapsulates, SNATs to the egress IP and translates the reply back
check "replay egress gateway, pod's node to-netdev: Geneve to the gateway, excluded, no gateway" 0 \
	"$ciliate" replay --scenario scenarios/replay/egress-gateway.yaml --node node-1 \
	--hook to-netdev -r pcaps/replay/egress-pod-node.pcap \
	--expect pcaps/replay/egress-pod-node.out.pcap \
	--expect-verdicts redirect,ok,drop:NO_EGRESS_GATEWAY
check "replay egress gateway, gateway from-netdev: decapsulated" 0 \
	"$ciliate" replay --scenario scenarios/replay/egress-gateway.yaml --node node-2 \
	--hook from-netdev -r pcaps/replay/egress-gateway-decap.pcap \
	--expect pcaps/replay/egress-gateway-decap.out.pcap --expect-verdicts ok
check "replay egress gateway, gateway to-netdev,from-netdev: SNAT to the egress IP, the reply back through the tunnel" 0 \
	"$ciliate" replay --scenario scenarios/replay/egress-gateway.yaml --node node-2 \
	--hook to-netdev,from-netdev -r pcaps/replay/egress-gateway-snat.pcap \
	--expect pcaps/replay/egress-gateway-snat.out.pcap --expect-verdicts ok,redirect
# the reply's frontend comes from the option of the request seen by from-netdev
check "replay DSR reply without the option-carrying request is not translated" 1 \
	"$ciliate" replay --scenario scenarios/replay/svc-dsr-opt.yaml --node node-2 \
	--hook to-netdev,to-netdev -r pcaps/replay/svc-dsr-backend.pcap \
	--expect pcaps/replay/svc-dsr-backend.out.pcap
# without the request's hook the reply finds no mapping: it passes untranslated (mismatch)
check "replay reply alone is not translated (state comes from the request)" 1 \
	"$ciliate" replay --scenario scenarios/replay/svc-masquerade.yaml --node node-1 \
	--hook from-netdev -r pcaps/replay/svc-masquerade-tcp.pcap \
	--expect pcaps/replay/svc-masquerade-tcp.out.pcap
check "replay hook list shorter than the capture fails" 1 \
	"$ciliate" replay --scenario scenarios/replay/svc-nodeport.yaml --node node-1 \
	--hook from-netdev,from-netdev -r pcaps/replay/svc-nodeport-snat.pcap
out=$("$ciliate" replay --scenario scenarios/replay/svc-nodeport.yaml --node node-1 \
	--hook from-netdev,bogus -r pcaps/replay/svc-nodeport-snat.pcap 2>&1); rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q 'unknown hook "bogus"'; then
	passed=$((passed + 1)); echo "ok   unknown hook in a list named: $out"
else
	failed=$((failed + 1)); echo "FAIL unknown hook in a list (rc $rc): $out"
fi

# An independent decoder reads the service goldens: tshark with checksum validation on must
# see the translated addresses and ports, and no bad checksum or malformed packet.
# Fields per packet: ip.src ip.dst (outer,inner for ICMP errors) and the TCP or UDP ports.
declare -A want=(
	[svc-clusterip]='10.244.0.10 10.244.1.30 41500 8080|10.96.0.80 10.244.0.10 80 41500'
	[svc-nodeport-snat]='192.0.2.1 10.244.1.30 40000 8080|192.0.2.1 203.0.113.10 30080 40000|192.0.2.1 10.244.1.30 40000 8080'
	[svc-nodeport-local]='203.0.113.10 10.244.0.20 40001 8080|192.0.2.1 203.0.113.10 30081 40001'
	[svc-masquerade-tcp]='192.0.2.1 203.0.113.10 41600 80|203.0.113.10 10.244.0.10 80 41600'
	[svc-masquerade-icmp-error]='192.0.2.1 203.0.113.10 40600 9999|203.0.113.10,10.244.0.10 10.244.0.10,203.0.113.10 40600 9999'
	[svc-dsr-entry]='203.0.113.10 10.244.1.30 40010 8080|203.0.113.10 10.244.1.30 40010 8080|203.0.113.10 10.244.1.30 40011 9999'
	[svc-dsr-backend]='203.0.113.10 10.244.1.30 40010 8080|192.0.2.1 203.0.113.10 30090 40010'
	[svc-masquerade-exempt]='10.244.0.10 10.244.1.30 41700 80|10.244.0.10 192.0.2.2 41701 10250|192.0.2.1 203.0.113.10 41702 80'
	[svc-xdp-nodeport]='192.0.2.1 10.244.1.30 40000 8080|192.0.2.1 203.0.113.10 30080 40000|192.0.2.1 10.244.1.30 40000 8080|203.0.113.10 192.0.2.1 40001 30081'
	[svc-xdp-to-tc]='192.0.2.1 10.244.1.30 40010 8080|192.0.2.1 203.0.113.10 30080 40010|192.0.2.1 10.244.1.30 40010 8080'
)
if ! command -v tshark >/dev/null; then
	if [ "${CI:-}" = true ]; then
		failed=$((failed + 1)); echo "FAIL tshark checks: tshark is missing (ci/install-deps.sh installs it)"
	else
		echo "SKIP tshark checks of the service goldens: tshark is missing (ci/install-deps.sh); under CI=true this fails"
	fi
else
	tsh=(tshark -n -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE)
	bad='ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0 || _ws.malformed || _ws.expert.severity >= error'
	for name in "${!want[@]}"; do
		for pc in pcaps/replay/$name.out.pcap pcaps/replay/$name.pcap; do
			nbad=$("${tsh[@]}" -r "$pc" -Y "$bad" 2>/dev/null | wc -l)
			ngood=$("${tsh[@]}" -r "$pc" -Y 'ip.checksum.status == 1' 2>/dev/null | wc -l)
			if [ "$nbad" -eq 0 ] && [ "$ngood" -gt 0 ]; then
				passed=$((passed + 1)); echo "ok   tshark: $pc: $ngood packets, checksums valid"
			else
				failed=$((failed + 1)); echo "FAIL tshark: $pc: $nbad packets with a bad checksum or malformed"
				"${tsh[@]}" -r "$pc" -V 2>/dev/null | grep -iE 'bad|malformed|incorrect' | head -5
			fi
		done
		got=$("${tsh[@]}" -r pcaps/replay/$name.out.pcap -T fields -e ip.src -e ip.dst \
			-e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport 2>/dev/null |
			awk -F'\t' '{ printf "%s%s %s %s %s", (NR > 1 ? "|" : ""), $1, $2, $3 $5, $4 $6 }')
		if [ "$got" = "${want[$name]}" ]; then
			passed=$((passed + 1)); echo "ok   tshark: $name.out.pcap translated as expected: $got"
		else
			failed=$((failed + 1)); echo "FAIL tshark: $name.out.pcap: got '$got', want '${want[$name]}'"
		fi
	done
	# DSR (svc-dsr-opt): tshark dissects Cilium's option as an unknown IPv4 option 0x9a of
	# 8 bytes on exactly the packets that carry it (per packet: 1 with it, 0 without)
	declare -A dsr_opts=(
		[svc-dsr-entry.pcap]='0 0 0' [svc-dsr-entry.out.pcap]='1 0 1'
		[svc-dsr-backend.pcap]='1 0' [svc-dsr-backend.out.pcap]='1 0'
	)
	for pc in "${!dsr_opts[@]}"; do
		got=$("${tsh[@]}" -r pcaps/replay/$pc -V 2>/dev/null | awk '
			/^Frame [0-9]+:/ { if (n++) printf "%d ", o; o = 0 }
			/^ +Unknown \(0x9a\) \(8 bytes\)$/ { o++ }
			END { if (n) printf "%d", o }')
		if [ "$got" = "${dsr_opts[$pc]}" ]; then
			passed=$((passed + 1)); echo "ok   tshark: $pc: option 0x9a/8 dissected per packet: $got"
		else
			failed=$((failed + 1)); echo "FAIL tshark: $pc: option 0x9a/8 per packet: got '$got', want '${dsr_opts[$pc]}'"
		fi
	done
	# Geneve and IPIP (svc-dsr-geneve, svc-dsr-ipip): tshark's own dissectors read the
	# outer/inner addresses and protocols, the Geneve VNI, protocol type, critical flag and
	# Cilium's DSR option (class 0x014b, type 0x81, 12 bytes with its header, data: the
	# frontend address and port in network order, 2 bytes of padding), and the ICMP
	# fragmentation-needed reply with its MTU (1500 - 20 for IPIP, 1500 - 62 for Geneve).
	declare -A encap=(
		[egress-pod-node.out]='192.0.2.1,10.244.0.10 192.0.2.2,203.0.113.10 17,6 6081 0x000100 0x6558 0 - - 0 - - - -|192.0.2.1 203.0.113.200 6 - - - - - - - - - - -'
		[egress-gateway-snat.out]='192.0.2.100 203.0.113.10 6 - - - - - - - - - - -|192.0.2.2,203.0.113.10 192.0.2.1,10.244.0.10 17,6 6081 0x000002 0x6558 0 - - 0 - - - -'
		[svc-dsr-geneve-entry.out]='192.0.2.1,203.0.113.10 192.0.2.2,10.244.1.30 17,6 6081 0x000002 0x6558 1 0x014b 0x81 12,12 c0000201758a0000 - - -|192.0.2.1,203.0.113.10 192.0.2.2,10.244.1.30 17,6 6081 0x000002 0x6558 0 - - 0 - - - -|192.0.2.1,203.0.113.10 192.0.2.2,10.244.1.30 17,17 6081,9999 0x000002 0x6558 1 0x014b 0x81 12,12 c0000201758b0000 - - -|192.0.2.1,203.0.113.10 203.0.113.10,192.0.2.1 1,6 - - - - - - - - 3 4 1438'
		[svc-dsr-geneve-backend]='192.0.2.1,203.0.113.10 192.0.2.2,10.244.1.30 17,6 6081 0x000002 0x6558 1 0x014b 0x81 12,12 c0000201758a0000 - - -|10.244.1.30 203.0.113.10 6 - - - - - - - - - - -'
		[svc-dsr-geneve-backend.out]='203.0.113.10 10.244.1.30 6 - - - - - - - - - - -|192.0.2.1 203.0.113.10 6 - - - - - - - - - - -'
		[svc-dsr-ipip-entry.out]='192.0.2.1,203.0.113.10 192.0.2.2,192.0.2.1 4,6 - - - - - - - - - - -|192.0.2.1,203.0.113.10 192.0.2.2,192.0.2.1 4,17 30091 - - - - - - - - - -|192.0.2.1,203.0.113.10 203.0.113.10,192.0.2.1 1,6 - - - - - - - - 3 4 1480'
		[svc-dsr-ipip-backend]='192.0.2.1,203.0.113.10 192.0.2.2,192.0.2.1 4,6 - - - - - - - - - - -|10.244.1.30 203.0.113.10 6 - - - - - - - - - - -'
		[svc-dsr-ipip-backend.out]='203.0.113.10 10.244.1.30 6 - - - - - - - - - - -|192.0.2.1 203.0.113.10 6 - - - - - - - - - - -'
	)
	bad='ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0 || _ws.malformed || _ws.expert.severity >= error'
	for pc in "${!encap[@]}"; do
		nbad=$("${tsh[@]}" -r pcaps/replay/$pc.pcap -Y "$bad" 2>/dev/null | wc -l)
		got=$("${tsh[@]}" -r pcaps/replay/$pc.pcap -T fields -e ip.src -e ip.dst -e ip.proto \
			-e udp.dstport -e geneve.vni -e geneve.proto_type -e geneve.flags.critical \
			-e geneve.option.class -e geneve.option.type -e geneve.option.length \
			-e geneve.option.unknown.data -e icmp.type -e icmp.code -e icmp.mtu 2>/dev/null |
			awk -F'\t' '{ s = ""; for (i = 1; i <= 14; i++) s = s (i > 1 ? " " : "") ($i == "" ? "-" : $i); printf "%s%s", (NR > 1 ? "|" : ""), s }')
		if [ "$nbad" -eq 0 ] && [ "$got" = "${encap[$pc]}" ]; then
			passed=$((passed + 1)); echo "ok   tshark: $pc.pcap dissected: $got"
		else
			failed=$((failed + 1)); echo "FAIL tshark: $pc.pcap ($nbad bad): got '$got', want '${encap[$pc]}'"
		fi
	done
fi

# The DSR option's bytes, read from the pcaps: per packet IHL, total length and the option
# bytes right after the base header: 9a 08, the frontend port and address byte-swapped as
# Cilium stores them (30090 = 0x758a -> 8a 75, 30091 -> 8b 75; 192.0.2.1 -> 01 02 00 c0).
declare -A dsr_bytes=(
	[svc-dsr-entry.pcap]='5 40 -|5 40 -|5 33 -'
	[svc-dsr-entry.out.pcap]='7 48 9a088a75010200c0|5 40 -|7 41 9a088b75010200c0'
	[svc-dsr-backend.pcap]='7 48 9a088a75010200c0|5 40 -'
	[svc-dsr-backend.out.pcap]='7 48 9a088a75010200c0|5 40 -'
)
for pc in "${!dsr_bytes[@]}"; do
	got=$(python3 - "pcaps/replay/$pc" <<'PY' 2>&1
import struct, sys
d = open(sys.argv[1], 'rb').read()
end = '<' if d[:4] == b'\xd4\xc3\xb2\xa1' else '>'
off, out = 24, []
while off + 16 <= len(d):
    incl = struct.unpack(end + 'I', d[off + 8:off + 12])[0]
    pkt = d[off + 16:off + 16 + incl]
    off += 16 + incl
    ip = pkt[14:]
    ihl = ip[0] & 15
    opts = ip[20:ihl * 4].hex() or '-'
    out.append('%d %d %s' % (ihl, struct.unpack('>H', ip[2:4])[0], opts))
print('|'.join(out))
PY
	)
	if [ "$got" = "${dsr_bytes[$pc]}" ]; then
		passed=$((passed + 1)); echo "ok   DSR option bytes: $pc: $got"
	else
		failed=$((failed + 1)); echo "FAIL DSR option bytes: $pc: got '$got', want '${dsr_bytes[$pc]}'"
	fi
done
echo "replay: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
