#!/usr/bin/env bash
# ciliate-sim suite: brings up the scenario clusters of scenarios/connectivity/ with
# `ciliate-sim run --report` and checks the reports; checks that a scenario with wrong
# expectations makes `run` fail with the right reasons; checks that `down` cleans up after
# killed echo servers, a crashed `up` (SIGKILL mid-bring-up) and a lost state file; and
# finally that no cil-<tag>-* namespace, no state file, no pinned object under
# /sys/fs/bpf/ciliate and no simulator process is left, and that the root namespace's links,
# addresses and routes are byte-identical to before (address lifetimes normalised).
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
for b in ciliate-sim ciliate-echo ciliate-probe; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL: $build/bin/$b is missing (run make first)"
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi
if ! command -v ip >/dev/null; then
	echo "SKIP: iproute2 (ip) is not installed"
	exit 77
fi
probe_ns="ciliate-t-simcheck$$"
if ! ip netns add "$probe_ns" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces here"
	exit 77
fi
ip netns del "$probe_ns"

STATE_DIR=/run/ciliate/sim
tmp=$(mktemp -d /tmp/ciliate-t-sim.XXXXXX)
passed=0
failed=0
start=$SECONDS
# tags of every cluster this suite brings up (scenario metadata.name, sanitised)
TAGS="faulbf7a faul4bd6 samenode xnative xtunnel ovlid podhost hostpod nodenode podext wrong stcrasha stcrashb stlost stkill exam71af defa55b7 egreabb4 udponly faulf5c6 delname recfail unproven repl841e repl748c encp0e9d encpc5b2"

source tests/lib/suite.sh # pass / fail (cwd is the repository root)

snapshot() { # the root namespace's links, addresses and routes
	ip -o link
	ip -o addr | sed -E 's/(valid|preferred)_lft [^ ]+//g'
	ip route
	ip -6 route
}

# our_procs: simulator processes of this suite's clusters (their pidfiles live in
# /run/ciliate/sim/<tag>/), by pid
our_procs() {
	local p cmd t
	# (ciliate-operator is longer than a process name: found by its command line)
	for p in $(pgrep -x 'ciliate-echo|ciliate-probe|ciliate-agent' 2>/dev/null) \
		$(pgrep -f 'bin/ciliate-operator ' 2>/dev/null); do
		cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
		for t in $TAGS; do
			case "$cmd" in *"$STATE_DIR/$t/"*) echo "$p"; break ;; esac
		done
	done
}

our_netns() {
	local t
	for t in $TAGS; do
		ip netns list | awk '{print $1}' | grep -E "^cil-$t-" || true
	done
}

finish() {
	local t
	# safety net: remove anything of ours left by a failing check
	for t in $TAGS; do
		if [ -e "$STATE_DIR/$t.json" ] || [ -n "$(ip netns list | grep -E "^cil-$t-")" ]; then
			"$SIM" down "$t" >/dev/null 2>&1
		fi
	done
	rm -rf "$tmp"
	echo "suite time: $((SECONDS - start)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap 'echo "interrupted"; failed=$((failed + 1)); finish' INT TERM HUP

# Clusters of ours left by another run: skip if a live ciliate-sim owns them (another run
# of this suite?), else clean them.
for t in $TAGS; do
	f=$STATE_DIR/$t.json
	if [ -e "$f" ]; then
		owner=$(grep -A1 '"owner"' "$f" | grep -oE '"pid": [0-9]+' | grep -oE '[0-9]+')
		if [ -n "$owner" ] && [ "$(cat "/proc/$owner/comm" 2>/dev/null)" = ciliate-sim ]; then
			echo "SKIP: cluster tag $t is being used by ciliate-sim pid $owner (another run?)"
			rm -rf "$tmp"
			exit 77
		fi
	fi
	if [ -e "$f" ] || [ -n "$(ip netns list | grep -E "^cil-$t-")" ]; then
		echo "note: removing cluster $t left by an earlier run"
		"$SIM" down "$t" >/dev/null 2>&1
	fi
done

snapshot >"$tmp/root.before"
ls -A /sys/fs/bpf/ciliate 2>/dev/null | sort >"$tmp/bpffs.before"

# ---- 1. every connectivity scenario passes, with a complete report ----------------------
for f in scenarios/connectivity/*.yaml; do
	name=$(basename "$f" .yaml)
	rep=$tmp/$name.json
	if "$SIM" run "$f" --report "$rep" >"$tmp/$name.out" 2>&1; then
		pass "run $f"
	else
		fail "run $f" "exit $?; $(grep -E 'FAIL' "$tmp/$name.out" | head -5)"
		continue
	fi
	total=$(grep -oE '"checks_total": [0-9]+' "$rep" | grep -oE '[0-9]+$')
	nfail=$(grep -oE '"failed": [0-9]+' "$rep" | head -1 | grep -oE '[0-9]+$')
	npass=$(grep -c '"pass": true' "$rep")
	fields=0
	for k in name expected observed drop_reason duration_ms step pass; do
		[ "$(grep -c "\"$k\":" "$rep")" -ge "${total:-1}" ] && fields=$((fields + 1))
	done
	if [ -n "$total" ] && [ "$total" -gt 0 ] && [ "$nfail" = 0 ] && [ "$npass" = "$total" ] &&
		[ "$fields" -eq 7 ]; then
		pass "report $name: $total checks, all passed, every field present"
	else
		fail "report $name" "total=$total failed=$nfail passed=$npass fields=$fields/7"
	fi
done
if grep -q 'tunnel (vxlan0' "$tmp/pod-to-pod-cross-node-tunnel.out" 2>/dev/null; then
	pass "tunnel scenario brought up vxlan0"
else
	fail "tunnel scenario brought up vxlan0"
fi

# ---- 2. wrong expectations make run fail, each for its reason ---------------------------
rep=$tmp/wrong.json
# without the datapath (--no-datapath: plain routing): denies and policy changes cannot hold
"$SIM" run tests/sim/fixtures/wrong-expectations.yaml --no-datapath --report "$rep" \
	>"$tmp/wrong.out" 2>&1
rc=$?
if [ $rc -eq 1 ]; then
	pass "run exits 1 when expectations do not hold"
else
	fail "run exits 1 when expectations do not hold" "exit $rc"
fi
for reason in "no datapath attached: a deny cannot be enforced" \
	"expected allow, observed deny refused" "backendIn: answered by x/b" \
	"backendIn: x/a is not a backend of svc/x/web port 80/TCP (backends: x/b)" \
	"refused: not an address inside the simulation" \
	"policy changes need the datapath: not applied"; do
	if grep -qF "$reason" "$rep"; then
		pass "wrong expectations report: $reason"
	else
		fail "wrong expectations report: $reason"
	fi
done
if grep -q 'expected *observed' "$tmp/wrong.out" && grep -qE 'x/a +- +\.\*' "$tmp/wrong.out"; then
	pass "matrix failure prints expected/observed tables with the differing cell marked"
else
	fail "matrix failure tables" "$(grep -A4 'expected' "$tmp/wrong.out" | head -6)"
fi
if [ "$(grep -c '"pass": false' "$rep")" -eq 7 ] && [ "$(grep -c '"pass": true' "$rep")" -eq 1 ]; then
	pass "wrong expectations: 7 failed checks, the one right cell passed"
else
	fail "wrong expectations counts" "$(grep -c '"pass": false' "$rep") failed"
fi

# ---- 2a. evidence: a deny holds only with its own drop event ---------------------------
rep=$tmp/unproven.json
"$SIM" run tests/sim/fixtures/unproven-denials.yaml --report "$rep" --flows "$tmp/unproven.jsonl" \
	--html "$tmp/unproven.html" >"$tmp/unproven.out" 2>&1
rc=$?
if [ $rc -eq 1 ]; then
	pass "evidence: run exits 1 when a deny is not proven"
else
	fail "evidence: run exits 1 when a deny is not proven" "exit $rc"
fi
# the proven deny: pass, with the drop event (node, hook, reason, source line) in the report
proven=$(jq -r '[.checks[] | select(.name == "x/a -> x/b 80/TCP") | .pass, .deny_proven,
	.evidence.node, .evidence.hook, .evidence.drop_reason_desc, .evidence.file.name,
	(.evidence.file.line > 0)] | map(tostring) | join(" ")' "$rep" 2>/dev/null)
if [ "$proven" = "true true node-2 to-container POLICY_DENIED lxc.bpf.c true" ] ||
	[ "$proven" = "true true node-2 from-overlay POLICY_DENIED overlay.bpf.c true" ]; then
	pass "evidence: a policy deny is proven by its drop event ($proven)"
else
	fail "evidence: a policy deny is proven by its drop event" "$proven"
fi
if [ "$(jq -r '.checks[] | select(.name == "x/a -> x/b 80/UDP") | .deny_proven' "$rep")" = true ]; then
	pass "evidence: a UDP deny is proven by its drop event"
else
	fail "evidence: a UDP deny is proven by its drop event"
fi
why=$(jq -r '.checks[] | select(.name == "x/b -> x/a 81/TCP") | "\(.pass) \(.reason)"' "$rep")
case "$why" in
"false "*"refused"*) pass "evidence: a deny on a port where nothing listens fails with refused" ;;
*) fail "evidence: a deny on a port where nothing listens fails with refused" "$why" ;;
esac
why=$(jq -r '.checks[] | select(.name == "x/a -> x/b 8080/TCP") | "\(.pass) \(.reason)"' "$rep")
case "$why" in
"false expected deny, observed allow backend=x/b"*) pass "evidence: an answered deny fails" ;;
*) fail "evidence: an answered deny fails" "$why" ;;
esac
if [ "$(jq -c '.denials' "$rep")" = '{"expected":4,"proven_by_drop_event":2,"explained_by_fault":0}' ] &&
	grep -q '^2 of 4 denial(s) proven by a datapath drop event' "$tmp/unproven.out"; then
	pass "evidence: the summary counts the proven denials (2 of 4)"
else
	fail "evidence: the summary counts the proven denials" "$(jq -c '.denials' "$rep")"
fi
if grep -q '"drop_reason_desc":"POLICY_DENIED"' "$tmp/unproven.jsonl" &&
	jq -e -s 'all(.[]; has("node_name") and has("time") and (has("flow") or has("lost_events")))' \
		"$tmp/unproven.jsonl" >/dev/null; then
	pass "evidence: --flows saves the run's flows as Hubble JSON lines"
else
	fail "evidence: --flows saves the run's flows as Hubble JSON lines"
fi
# --html: the flow page of the same flows (its DOM is checked in tests/flowpage)
if grep -q 'id="flow-data"' "$tmp/unproven.html" && grep -q 'POLICY_DENIED' "$tmp/unproven.html" &&
	[ "$(grep -o '"pod_name":"b"' "$tmp/unproven.html" | head -1)" = '"pod_name":"b"' ]; then
	pass "evidence: --html writes the flow page of the run"
else
	fail "evidence: --html writes the flow page of the run"
fi

# ---- 2b. policy scenarios through the real datapath (agents, CNI, store) ----------------
shared=${CILIATE_SHARED:-../shared}
for f in "$shared/examples/policy.yaml" scenarios/netpol/default-deny-ingress.yaml \
	scenarios/netpol/egress-deny-all.yaml scenarios/netpol/udp-only.yaml; do
	if [ ! -f "$f" ]; then
		shared_missing "datapath run $f" "$f"
		continue
	fi
	name=$(basename "$f" .yaml)
	rep=$tmp/dp-$name.json
	if "$SIM" run "$f" --report "$rep" >"$tmp/dp-$name.out" 2>&1 &&
		grep -q 'datapath: attached' "$tmp/dp-$name.out"; then
		pass "datapath run $f ($(grep -oE '"checks_total": [0-9]+' "$rep" | grep -oE '[0-9]+$') checks)"
	else
		fail "datapath run $f" "$(grep -E 'FAIL|datapath' "$tmp/dp-$name.out" | head -5)"
	fi
done
if [ -f "$tmp/dp-policy.json" ]; then
	if grep -q '"drop_reason": "POLICY_DENIED"' "$tmp/dp-policy.json" &&
		grep -q '"kind": "apply"' "$tmp/dp-policy.json"; then
		pass "policy report: POLICY_DENIED drop reason and apply checks"
	else
		fail "policy report: POLICY_DENIED drop reason and apply checks"
	fi
fi
# a malformed manifest is rejected with file:line and the previous state stays in force;
# the step says so (expectRejected), so the scenario passes as a whole
rep=$tmp/faults.json
"$SIM" run scenarios/faults/bad-manifest.yaml --report "$rep" >"$tmp/faults.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c '"pass": false' "$rep")" = 0 ] &&
	grep -qE '"observed": "rejected: .*bad-policy\.yaml:[0-9]+: spec\.ingress\[0\]\.ports\[0\]\.port' "$rep" &&
	[ "$(grep -c '"drop_reason": "POLICY_DENIED"' "$rep")" -eq 2 ] &&
	[ "$(grep -c '"pass": true' "$rep")" -eq 6 ]; then
	pass "malformed manifest rejected with file:line (expectRejected), previous policy still in force"
else
	fail "malformed manifest" "exit $rc; $(grep FAIL "$tmp/faults.out" | head -3)"
fi
# expectRejected on a change that is accepted fails the step
sed -e 's|apply: manifests/bad-policy.yaml|apply: manifests/good-policy.yaml|' \
	scenarios/faults/bad-manifest.yaml >scenarios/faults/.t-accepted.yaml
sed -e 's|99999|8080|' scenarios/faults/manifests/bad-policy.yaml >scenarios/faults/manifests/good-policy.yaml
"$SIM" run scenarios/faults/.t-accepted.yaml >"$tmp/accepted.out" 2>&1
rc=$?
rm -f scenarios/faults/.t-accepted.yaml scenarios/faults/manifests/good-policy.yaml
why="exit $rc; $(grep -E 'FAIL' "$tmp/accepted.out" | head -3)"
check "expectRejected fails when the change is applied" \
	grep -q 'expected a rejection, the change was applied' "$tmp/accepted.out"
# agent restart (SIGKILL) under live streams; a node's link down and back up
for f in scenarios/faults/agent-restart.yaml scenarios/faults/node-link.yaml; do
	name=$(basename "$f" .yaml)
	rep=$tmp/f-$name.json
	"$SIM" run "$f" --report "$rep" >"$tmp/f-$name.out" 2>&1
	rc=$?
	why="exit $rc; $(grep -E 'FAIL' "$tmp/f-$name.out" | head -5)"
	check "fault scenario $f passes" [ $rc -eq 0 ]
done
why="$(grep -E 'stream' "$tmp/f-agent-restart.out" | head -3)"
check "agent restart: both streams answered every request on their connection" \
	[ "$(grep -cE '"observed": "[1-9][0-9]*/[0-9]+ requests answered on one connection"' \
		"$tmp/f-agent-restart.json")" -eq 2 ]
why="$(grep -E 'restart-agent' "$tmp/f-agent-restart.out" | head -3)"
check "agent restart: both agents were restarted" \
	[ "$(grep -c 'ok    restart-agent node-' "$tmp/f-agent-restart.out")" -eq 2 ]

# ---- 2b'. Test-step deletes by kind/namespace/name; a failed reconcile fails the wait ----
# tests/sim/fixtures/delete-by-name.yaml: a CNP deleted by kind/namespace/name, a CCNP by
# kind/name; the probes after each show the policy gone
rep=$tmp/delname.json
"$SIM" run tests/sim/fixtures/delete-by-name.yaml --report "$rep" >"$tmp/delname.out" 2>&1
rc=$?
why="exit $rc; $(grep -E 'FAIL' "$tmp/delname.out" | head -3)"
check "delete by kind/namespace/name in Test steps: every check passes" \
	[ $rc -eq 0 -a "$(grep -c '"pass": false' "$rep")" = 0 -a "$(grep -c '"name": "apply (delete)"' "$rep")" = 2 ]
# An agent that cannot write its maps: step "overflow" admits 260 /32 peers on 260 ports to
# x/a, 67,600 policy entries, more than ciliate_policy holds. The step's wait must end at once
# with the agent's error (not at the 10 s bound, and not pass); the next step deletes the
# policy by kind/namespace/name and the agent recovers.
{
	printf 'apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: recfail}\n'
	printf 'spec:\n  nodes: [{name: node-1}]\n  routing: native\n'
	printf '  podCIDR: 10.244.0.0/16\n  underlayCIDR: 192.0.2.0/24\n'
	for p in a b; do
		printf -- '---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: x, labels: {app: %s}}\n' $p $p
		printf 'spec:\n  nodeName: node-1\n  containers: [{name: c, image: e, ports: [{containerPort: 80}]}]\n'
	done
	printf -- '---\napiVersion: sim.ciliate.dev/v1\nkind: Test\nmetadata: {name: recfail}\nspec:\n  steps:\n'
	printf '  - name: overflow\n    apply: overflow.yaml\n'
	printf '    probes: [{from: x/b, to: x/a, port: 80, protocol: TCP, expect: allow}]\n'
	printf '  - name: recover\n    delete: [{kind: NetworkPolicy, namespace: x, name: overflow}]\n'
	printf '    probes: [{from: x/b, to: x/a, port: 80, protocol: TCP, expect: allow}]\n'
} >"$tmp/recfail.yaml"
{
	printf 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n'
	printf 'metadata: {name: overflow, namespace: x}\nspec:\n'
	printf '  podSelector: {matchLabels: {app: a}}\n  policyTypes: [Ingress]\n  ingress:\n  - from:\n'
	for i in $(seq 0 259); do printf '    - ipBlock: {cidr: 172.16.%d.%d/32}\n' $((i / 250)) $((i % 250 + 1)); done
	printf '    ports:\n'
	for p in $(seq 1 260); do printf '    - {port: %d, protocol: TCP}\n' $((10000 + p)); done
} >"$tmp/overflow.yaml"
rep=$tmp/recfail.json
"$SIM" run "$tmp/recfail.yaml" --report "$rep" >"$tmp/recfail.out" 2>&1
rc=$?
# the one failed check: the apply of step "overflow", with the agent's error
failed_apply=$(tr -d '\n' <"$rep" | grep -oE '\{[^{}]*"step": "overflow"[^{}]*"kind": "apply"[^{}]*\}|\{[^{}]*"kind": "apply"[^{}]*"step": "overflow"[^{}]*\}')
ms=$(grep -oE '"duration_ms": [0-9]+' <<<"$failed_apply" | grep -oE '[0-9]+$')
why="exit $rc; $(grep -E 'FAIL' "$tmp/recfail.out" | head -3)"
check "a failed reconcile fails the step's apply check (run exits 1, one failed check)" \
	[ $rc -eq 1 -a "$(grep -c '"pass": false' "$rep")" = 1 ]
why="${failed_apply:0:800}"
contains_all() { # TEXT STRING...
	local t=$1 x
	shift
	for x in "$@"; do grep -qF -- "$x" <<<"$t" || return 1; done
}
check "... with the agent's error for that store revision" \
	contains_all "$failed_apply" '"pass": false' 'agent of node-1 failed to reconcile store revision' \
	'updating ciliate_policy'
why="duration ${ms:-?} ms"
check "... at once, not at the 10 s bound (${ms:-?} ms)" [ "${ms:-99999}" -lt 5000 ]
why="$(grep -A3 'recover' "$tmp/recfail.out" | head -4)"
check "after deleting the policy by kind/namespace/name the next step's wait and probes pass" \
	grep -qE 'ok +apply \(delete\): expected applied and reconciled' "$tmp/recfail.out"

# ---- 2c. Replay documents under ciliate-sim run ------------------------------------------
rep=$tmp/replays.json
"$SIM" run scenarios/replay/*.yaml --report "$rep" >"$tmp/replays.out" 2>&1
rc=$?
n=$(ls scenarios/replay/*.yaml | wc -l)
why="exit $rc, $(grep -c '"kind": "replay"' "$rep") replay checks for $n files; $(grep FAIL "$tmp/replays.out" | head -3)"
all_replays_ran() { [ $rc -eq 0 ] && [ "$(grep -c '"kind": "replay"' "$rep")" -ge "$n" ]; }
check "run executes every Replay document of scenarios/replay" all_replays_ran
sed -e "s|'drop:POLICY_DENIED'|ok|" scenarios/replay/tcp-syn-denied.yaml >scenarios/replay/.t-wrong.yaml
"$SIM" run scenarios/replay/.t-wrong.yaml >"$tmp/replay-wrong.out" 2>&1
rc=$?
rm -f scenarios/replay/.t-wrong.yaml
why="exit $rc; $(tail -3 "$tmp/replay-wrong.out")"
wrong_replay_failed() {
	[ $rc -eq 1 ] && grep -q 'FAIL  replay tcp-syn-denied' "$tmp/replay-wrong.out" &&
		grep -q 'drop:POLICY_DENIED' "$tmp/replay-wrong.out"
}
check "a Replay with a wrong verdict fails run and prints its packet table" wrong_replay_failed
printf 'apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: nothing}\nspec:\n  nodes: [{name: n1}]\n' >"$tmp/nothing.yaml"
"$SIM" run "$tmp/nothing.yaml" >"$tmp/nothing.out" 2>&1
rc=$?
why="exit $rc"
nothing_failed() { [ $rc -eq 1 ] && grep -q 'nothing to check' "$tmp/nothing.out"; }
check "a scenario with nothing to check fails" nothing_failed

# ---- 2b. replyBypasses: a capture on the node's fabric link sees the reply or not --------
# tests/sim/fixtures/reply-bypasses.yaml in both routing modes (tags repl841e, repl748c):
# NodePort with SNAT through node-1 must fail naming the reply packets; straight to node-2
# (TCP and UDP) must pass; a pod of node-1 to node-2's NodePort gets its reply through
# node-1 (in tunnel routing inside VXLAN) and must fail.
for mode in tunnel native; do
	out=$tmp/reply-$mode.out
	"$SIM" run tests/sim/fixtures/reply-bypasses.yaml --routing $mode \
		--report "$tmp/reply-$mode.json" >"$out" 2>&1
	rc=$?
	tag=$(grep -oE 'cluster reply-bypass \(tag [a-z0-9]+\)' "$out" | grep -oE '[a-z0-9]+\)$' | tr -d ')')
	why="exit $rc; $(grep -E 'FAIL|ok ' "$out" | head -6)"
	vx='$'; [ $mode = tunnel ] && vx=' \(in VXLAN\)$'
	reply_checks() {
		[ $rc -eq 1 ] && [ "$(grep -c '"pass": false' "$tmp/reply-$mode.json")" -eq 2 ] &&
			grep -qE "FAIL  ext/client-1 -> node/node-1 30081/TCP: .*replyBypasses node/node-1: [1-9][0-9]* reply packet\(s\) of this probe crossed node-1's fabric link \(n0\), e\.g\. TCP 192\.0\.2\.1:30081 > 203\.0\.113\.10:[0-9]+$" "$out" &&
			grep -qE "ok    ext/client-1 -> node/node-2 30081/TCP: .*replyBypasses=node/node-1, .*replies on n0=0/" "$out" &&
			grep -qE "ok    ext/client-1 -> node/node-2 30053/UDP: .*replyBypasses=node/node-1, .*replies on n0=0/" "$out" &&
			grep -qE "FAIL  x/client -> node/node-2 30081/TCP: .*crossed node-1's fabric link \(n0\), e\.g\. TCP [0-9.]+:[0-9]+ > 10\.244\.0\.10:[0-9]+$vx" "$out" &&
			! grep -q 'not implemented' "$out"
	}
	check "replyBypasses ($mode): SNAT NodePort reply through node-1 fails, direct path passes" reply_checks
	left=$(pgrep -a tcpdump 2>/dev/null | grep -F "/run/ciliate/sim/${tag:-none}/" || true)
	why="$left"
	no_capture_left() { [ -n "$tag" ] && [ -z "$left" ] && [ ! -e "$STATE_DIR/$tag" ]; }
	check "replyBypasses ($mode): no capture or capture file left" no_capture_left
done

# ---- 2b1. encryptedOn: fabric on a cluster without encryption ---------------------------
# tests/sim/fixtures/encrypted-on-plain.yaml in both routing modes (tags encp0e9d tunnel,
# encpc5b2 native): x/a (node-1) -> x/b (node-2) over TCP and UDP crosses the fabric in
# plaintext and must FAIL, naming the packet, the node and the kept capture (in tunnel routing
# the pod header is inside VXLAN); x/a -> x/c on the same node must pass, also in the step
# whose captures hold the others' plaintext. The capture kept must hold that packet.
last_packet() { # FILE N: packet N of FILE as tcpdump -A prints it
	tcpdump -nr "$1" -c "$2" -A 2>/dev/null |
		awk '/^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\./ { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }'
}
for mode in tunnel native; do
	out=$tmp/enc-$mode.out
	"$SIM" run tests/sim/fixtures/encrypted-on-plain.yaml --routing $mode \
		--report "$tmp/enc-$mode.json" >"$out" 2>&1
	rc=$?
	tag=$(grep -oE 'cluster enc-plain \(tag [a-z0-9]+\)' "$out" | grep -oE '[a-z0-9]+\)$' | tr -d ')')
	kept=$(grep -oE '/run/ciliate/sim-captures/[a-z0-9]+-[0-9]+-step[0-9]+-node-[0-9]+\.pcap' "$out" | sort -u)
	why="exit $rc; $(grep -E 'FAIL|ok ' "$out" | head -6)"
	where='\(the packet.s own\)'; [ $mode = tunnel ] && where='\(inside an encapsulation\)'
	cap="capture /run/ciliate/sim-captures/$tag-[0-9]+-step1-node-1\.pcap"
	enc_checks() {
		[ $rc -eq 1 ] && [ -n "$tag" ] &&
			[ "$(jq '[.checks[] | select(.pass == false)] | length' "$tmp/enc-$mode.json")" -eq 2 ] &&
			grep -qE "FAIL  x/a -> x/b 80/TCP: expected allow encryptedOn=fabric, .*encryptedOn fabric: packet [0-9]+ on node-1's fabric link \(n0\) carries a plaintext IPv4 header 10\.244\.0\.10 > 10\.244\.1\.10 at byte [0-9]+ $where, packet [0-9]+ the probe's request in plaintext .*: $cap; also [0-9]+ packet\(s\) in plaintext on node-2's fabric link \(n1\), .*; the cluster has encryption: none$" "$out" &&
			grep -qE "FAIL  x/a -> x/b 53/UDP: expected allow encryptedOn=fabric, .*encryptedOn fabric: packet [0-9]+ on node-1's fabric link \(n0\) carries the probe's request in plaintext \(\"ciliate-probe from=10\.244\.0\.10:[0-9]+/UDP seq=\" at byte [0-9]+\) .*: $cap" "$out" &&
			[ "$(grep -cE "ok    x/a -> x/c 80/TCP: expected allow encryptedOn=fabric, observed allow .* fabric: [0-9]+ packet\(s\) on node-1 during the step, 0 of this probe's in plaintext" "$out")" -eq 2 ] &&
			! grep -q 'not implemented' "$out"
	}
	check "encryptedOn ($mode): plaintext cross-node TCP and UDP fail naming packet and capture, same-node passes" enc_checks
	# the packet the UDP check names is in the kept capture, with the request in it
	n=$(grep -oE "53/UDP: .*encryptedOn fabric: packet [0-9]+ on node-1" "$out" | grep -oE 'packet [0-9]+' | grep -oE '[0-9]+$')
	f=$(grep -oE "53/UDP: .*" "$out" | grep -oE '/run/ciliate/sim-captures/[^ ;]+node-1\.pcap' | head -1)
	why="packet ${n:-?} of ${f:-no file}: $(last_packet "${f:-/dev/null}" "${n:-1}" | head -3)"
	kept_capture() { [ -n "$n" ] && [ -s "$f" ] && last_packet "$f" "$n" | grep -q 'ciliate-probe from=10\.244\.0\.10:[0-9]*/UDP seq='; }
	check "encryptedOn ($mode): the kept capture holds the packet named, with the plaintext request" kept_capture
	[ -n "$kept" ] && rm -f $kept
	left=$(pgrep -a tcpdump 2>/dev/null | grep -F "/run/ciliate/sim/${tag:-none}/" || true)
	why="$left"
	no_capture_left() { [ -n "$tag" ] && [ -z "$left" ] && [ ! -e "$STATE_DIR/$tag" ]; }
	check "encryptedOn ($mode): no capture running, run directory removed" no_capture_left
done
rmdir /run/ciliate/sim-captures 2>/dev/null # only if empty: others' kept captures stay
# encryptedOn with expect: deny is refused when the scenario is read, naming file, line, field
sed 's/to: x\/c, port: 80, protocol: TCP, expect: allow, encryptedOn: fabric}$/to: x\/c, port: 80, protocol: TCP, expect: deny, encryptedOn: fabric}/' \
	tests/sim/fixtures/encrypted-on-plain.yaml >"$tmp/enc-deny.yaml"
"$SIM" run "$tmp/enc-deny.yaml" >"$tmp/enc-deny.out" 2>&1
rc=$?
why="exit $rc; $(grep -E 'load' "$tmp/enc-deny.out" | head -3)"
enc_deny() { [ $rc -eq 1 ] && grep -qE "enc-deny\.yaml:62: spec\.steps\[0\]\.probes\[2\]\.encryptedOn: needs expect: allow" "$tmp/enc-deny.out" && ! grep -q 'up in' "$tmp/enc-deny.out"; }
check "encryptedOn with expect: deny is refused at load (file:line: field)" enc_deny

# ---- 2b2. large requests: payloadBytes, tcpFastOpen, pmtu ----------------------------------
# tests/sim/fixtures/pmtu.yaml (DSR NodePort, backend on node-2, native routing): a request
# that fits with the option fails "pmtu: frag-needed" (no ICMP, no FRAG_NEEDED drop) though it
# is answered; TCP 1460-byte requests pass, the TFO one with data in its SYN; a 1472-byte UDP
# request without the assertion passes on its exchange after the ICMP and the retry.
out=$tmp/pmtu.out
"$SIM" run tests/sim/fixtures/pmtu.yaml --report "$tmp/pmtu.json" >"$out" 2>&1
rc=$?
why="exit $rc; $(grep -E 'FAIL|ok ' "$out" | head -6)"
pmtu_checks() {
	[ $rc -eq 1 ] && [ "$(jq '[.checks[] | select(.pass == false)] | length' "$tmp/pmtu.json")" -eq 1 ] &&
		grep -qE "FAIL  ext/client-1 -> node/node-1 30053/UDP: .*pmtu=frag-needed, observed allow .*sent=1000B pmtu=1500 .*no FRAG_NEEDED drop event of this flow .*no ICMP fragmentation needed reached the client" "$out" &&
		grep -qE "ok    ext/client-1 -> node/node-1 30081/TCP: .*payloadBytes=1460 tcpFastOpen, observed allow .*sent=1460B .*syn_data=[1-9][0-9]*" "$out" &&
		grep -qE "ok    ext/client-1 -> node/node-1 30053/UDP: .*payloadBytes=1472, observed allow .*icmp=frag-needed\(3/4\) mtu=1492 from 192\.0\.2\.1 quoting 192\.0\.2\.1:30053 retried" "$out" &&
		[ "$(jq '[.checks[] | select(.pmtu.icmp.mtu == 1492 and .pmtu.retried)] | length' "$tmp/pmtu.json")" -eq 1 ]
}
check "payload probes: pmtu frag-needed fails without an ICMP and a FRAG_NEEDED drop, TFO and a retried large UDP request pass" pmtu_checks

# ---- 2c. tunnel routing: the source identity crosses nodes in the VXLAN VNI -------------
# x/b (node-2) admits TCP 80 from app=a only (tests/sim/fixtures/overlay-identity.yaml).
ovl=tests/sim/fixtures/overlay-identity.yaml
probe=$(cd "$build/bin" && pwd)/ciliate-probe
if "$SIM" up "$ovl" >"$tmp/ovl.out" 2>&1; then
	pass "up (overlay identity)"
	# identities as node-1's agent assigned them
	"$build/bin/ciliate" endpoint list -o json --socket /run/ciliate/cil-ovlid-node-1/agent.sock \
		>"$tmp/ovl-eps.json" 2>&1
	id_of() { awk -v pod="\"$1\"," '$1 == "\"pod\":" { cur = $2 }
		$1 == "\"identity\":" && cur == pod { sub(",", "", $2); print $2 }' "$tmp/ovl-eps.json"; }
	id_a=$(id_of x/a) id_c=$(id_of x/c)
	out=$("$SIM" exec -c ovlid node-1 -- ip -d link show vxlan0 2>&1)
	if grep -q 'vxlan external' <<<"$out"; then
		pass "vxlan0 is in external (collect_md) mode"
	else
		fail "vxlan0 is in external (collect_md) mode" "$out"
	fi
	# capture the fabric while a, c and node-1 itself send to b
	"$SIM" capture -c ovlid fabric -w "$tmp/ovl.pcap" --count 500 --timeout 5 udp port 8472 \
		>"$tmp/ovl-cap.out" 2>&1 &
	cap=$!
	for _ in $(seq 50); do grep -q listening "$tmp/ovl-cap.out" && break; sleep 0.1; done
	"$SIM" exec -c ovlid x/a -- "$probe" --to 10.244.1.10 --port 80 >"$tmp/ovl-a1" 2>&1
	"$SIM" exec -c ovlid x/c -- "$probe" --to 10.244.1.10 --port 80 --timeout-ms 300 \
		>"$tmp/ovl-c1" 2>&1
	"$SIM" exec -c ovlid node-1 -- "$probe" --to 10.244.1.10 --port 80 --timeout-ms 300 \
		>/dev/null 2>&1
	wait $cap
	# "VNI INNER-SOURCE" for every captured packet
	tcpdump -nr "$tmp/ovl.pcap" -T vxlan 2>/dev/null | paste - - |
		awk '{ n = 0; for (i = 1; i <= NF; i++) { if ($i == "vni") v = $(i + 1);
			if ($i == "IP" && ++n == 2) { split($(i + 1), a, "."); s = a[1] "." a[2] "." a[3] "." a[4] } }
			print v, s }' | sort | uniq -c >"$tmp/ovl-vni"
	want="$id_a 10.244.0.10|$id_c 10.244.0.11|1 192.0.2.1"
	got=$(awk '{ print $2, $3 }' "$tmp/ovl-vni" | grep -E '10\.244\.0\.|192\.0\.2\.1$' | sort -u | paste -sd'|')
	if [ -n "$id_a" ] && [ -n "$id_c" ] && [ "$got" = "$(tr '|' '\n' <<<"$want" | sort -u | paste -sd'|')" ] &&
		grep -q allow "$tmp/ovl-a1" && grep -q deny "$tmp/ovl-c1"; then
		pass "VNI on the fabric = sender's identity (a $id_a, c $id_c, node-1 host 1)"
	else
		fail "VNI on the fabric = sender's identity" "want $want; got $got; $(cat "$tmp/ovl-a1" "$tmp/ovl-c1")"
	fi
	# node-2's ipcache now says a is "world" (the agent does not see the change): the VNI
	# still carries a's identity, so b still admits a and still denies c
	m=/sys/fs/bpf/ciliate/cil-ovlid-node-2/ciliate_ipcache
	k="hex 40 00 00 00 02 00 00 00 0a f4 00 0a 00 00 00 00 00 00 00 00 00 00 00 00"
	if bpftool map update pinned $m key $k value hex 02 00 00 00 c0 00 02 01 02 00 00 00 &&
		bpftool -j map lookup pinned $m key $k | grep -q '"identity":2,'; then
		a2=$("$SIM" exec -c ovlid x/a -- "$probe" --to 10.244.1.10 --port 80 2>&1)
		c2=$("$SIM" exec -c ovlid x/c -- "$probe" --to 10.244.1.10 --port 80 --timeout-ms 300 2>&1)
		if grep -q allow <<<"$a2" && grep -q deny <<<"$c2"; then
			pass "receiver's ipcache says a is world: policy still admits a by its VNI, denies c"
		else
			fail "policy decides by the VNI, not the receiver's ipcache" "a: $a2; c: $c2"
		fi
	else
		fail "rewriting node-2's ipcache entry for a"
	fi
	# and the scenario's own checks still hold
	if "$SIM" run "$ovl" >"$tmp/ovl-run.out" 2>&1; then
		pass "run $ovl"
	else
		fail "run $ovl" "$(grep FAIL "$tmp/ovl-run.out" | head -3)"
	fi
	"$SIM" down ovlid >>"$tmp/ovl.out" 2>&1 || fail "down (overlay identity)" "exit $?"
else
	fail "up (overlay identity)" "$(tail -3 "$tmp/ovl.out")"
fi

# ---- 3. cleanup after killed servers, a crashed up, a lost state file -------------------
mk_scenario() { # NAME PODS_PER_NODE > file
	echo "apiVersion: sim.ciliate.dev/v1
kind: Cluster
metadata: {name: $1}
spec:
  nodes: [{name: node-1}, {name: node-2}]
  routing: tunnel
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/12
  underlayCIDR: 192.0.2.0/24
  externalHosts: [{name: ext, ip: 203.0.113.10, ports: [80]}]"
	local n i
	for n in 1 2; do
		for i in $(seq "$2"); do
			echo "---
apiVersion: v1
kind: Pod
metadata: {name: p$n-$i, namespace: t}
spec:
  nodeName: node-$n
  containers: [{name: c, image: echo, ports: [{containerPort: 80}]}]"
		done
	done
}
# clean TAG WHAT: asserts nothing of cluster TAG is left
clean() {
	local t=$1 what=$2 left
	left="$(ip netns list | awk '{print $1}' | grep -E "^cil-$t-" | head -3)"
	[ -e "$STATE_DIR/$t.json" ] && left="$left state-file"
	[ -e "$STATE_DIR/$t" ] && left="$left run-dir"
	for p in $(pgrep -x ciliate-echo); do
		tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q "$STATE_DIR/$t/" &&
			left="$left pid-$p"
	done
	# the cluster's operator runs in no cluster namespace: found by its --id
	for p in $(pgrep -f -- "ciliate-operator .*--id $t-operator-"); do
		left="$left operator-pid-$p"
	done
	if [ -z "$left" ]; then pass "$what"; else fail "$what" "left: $left"; fi
}

mk_scenario st-crash-a 3 >"$tmp/crash-a.yaml"
if "$SIM" up "$tmp/crash-a.yaml" >"$tmp/crash-a.out" 2>&1; then
	pass "up (crash test a)"
	pids=$(grep -A1 '"echo"' "$STATE_DIR/stcrasha.json" | grep -oE '"pid": [0-9]+' | grep -oE '[0-9]+')
	n=$(echo "$pids" | wc -w)
	if [ "$n" -eq 7 ]; then pass "state file records 7 echo servers"; else fail "state file records 7 echo servers" "$n"; fi
	st=$("$SIM" status -o json)
	if grep -q '"tag": "stcrasha"' <<<"$st" && grep -q '"alive": true' <<<"$st"; then
		pass "status -o json lists the cluster and live servers"
	else
		fail "status -o json"
	fi
	out=$("$SIM" exec -c stcrasha t/p1-1 -- ip -o addr show dev eth0 2>&1)
	if grep -q 'inet 10.244.0.10/32' <<<"$out"; then pass "exec into a pod"; else fail "exec into a pod" "$out"; fi
	out=$("$SIM" exec -c stcrasha node-2 -- ip route 2>&1)
	if grep -qE '10.244.0.0/24 +encap ip id 1 .*dst 192.0.2.1 .*via 192.0.2.1 dev vxlan0 onlink' <<<"$out"; then
		pass "exec into a node: tunnel route"
	else
		fail "exec into a node: tunnel route" "$out"
	fi
	# shellcheck disable=SC2086
	kill -9 $pids 2>/dev/null
	"$SIM" down "$tmp/crash-a.yaml" >>"$tmp/crash-a.out" 2>&1 || fail "down after kill -9 of the echo servers" "exit $?"
	clean stcrasha "down after kill -9 of the echo servers removes everything"
	if "$SIM" down "$tmp/crash-a.yaml" >/dev/null 2>&1; then pass "down is idempotent"; else fail "down is idempotent"; fi
else
	fail "up (crash test a)" "$(tail -3 "$tmp/crash-a.out")"
fi

# a crashed `up`: SIGKILL while it creates pods (or, on a fast machine, just after)
mk_scenario st-crash-b 40 >"$tmp/crash-b.yaml"
"$SIM" up "$tmp/crash-b.yaml" >"$tmp/crash-b.out" 2>&1 &
simpid=$!
for i in $(seq 200); do
	grep -q 'pods [1-9]' "$tmp/crash-b.out" && break
	sleep 0.01
done
{ kill -9 $simpid && wait $simpid; } 2>/dev/null
if grep -q '"phase": "creating"' "$STATE_DIR/stcrashb.json" 2>/dev/null; then
	pass "crashed up left its state file in phase creating"
else
	echo "note: up finished before it was killed ($(grep -oE '"phase": "[a-z]+"' "$STATE_DIR/stcrashb.json" 2>/dev/null))"
fi
"$SIM" down "$tmp/crash-b.yaml" >>"$tmp/crash-b.out" 2>&1 || fail "down after a crashed up" "exit $?"
clean stcrashb "down after a crashed up removes everything"

# a lost state file: down finds the namespaces by prefix and the servers inside them
mk_scenario st-lost 2 >"$tmp/lost.yaml"
if "$SIM" up "$tmp/lost.yaml" >"$tmp/lost.out" 2>&1; then
	rm -f "$STATE_DIR/stlost.json"
	"$SIM" down stlost >>"$tmp/lost.out" 2>&1 || fail "down without a state file" "exit $?"
	clean stlost "down without a state file removes namespaces and servers by prefix"
else
	fail "up (lost state test)" "$(tail -3 "$tmp/lost.out")"
fi

# a run reusing a cluster left up by `up` does not tear it down
if "$SIM" up scenarios/connectivity/pod-to-pod-same-node.yaml >"$tmp/reuse.out" 2>&1 &&
	"$SIM" run scenarios/connectivity/pod-to-pod-same-node.yaml >>"$tmp/reuse.out" 2>&1 &&
	[ -e "$STATE_DIR/samenode.json" ]; then
	pass "run reuses a cluster left up by up, and leaves it up"
else
	fail "run reuses a cluster left up by up" "$(tail -3 "$tmp/reuse.out")"
fi
"$SIM" down samenode >/dev/null 2>&1
clean samenode "down after reuse"

# a killed `run` leaves a cluster that the next `run` of the file removes and recreates
mk_scenario st-kill 1 >"$tmp/kill.yaml"
echo "---
apiVersion: sim.ciliate.dev/v1
kind: Test
metadata: {name: slow}
spec:
  steps:
  - name: slow
    probes:
    - {from: t/p1-1, to: t/p2-1, port: 80, protocol: TCP, expect: allow, sameBackend: 300}" >>"$tmp/kill.yaml"
"$SIM" run "$tmp/kill.yaml" >"$tmp/killrun.out" 2>&1 &
simpid=$!
# (bounded at 10 s: a loaded machine may take seconds to bring the cluster up)
for i in $(seq 1000); do
	grep -q '"phase": "up"' "$STATE_DIR/stkill.json" 2>/dev/null && break
	sleep 0.01
done
{ kill -9 $simpid && wait $simpid; } 2>/dev/null
"$SIM" run "$tmp/kill.yaml" >"$tmp/killrun2.out" 2>&1
if grep -q 'crashed run' "$tmp/killrun2.out" && grep -q 'check(s): 1 passed, 0 failed' "$tmp/killrun2.out"; then
	pass "run after a killed run removes its cluster and starts afresh"
else
	fail "run after a killed run" "$(grep -E 'crashed|check\(s\)' "$tmp/killrun2.out")"
fi
clean stkill "a run after a killed run tears down"

# ---- 4. nothing left, root namespace untouched ------------------------------------------
left=$(our_netns)
if [ -z "$left" ]; then pass "no cil-<tag>- namespace left"; else fail "no cil-<tag>- namespace left" "$left"; fi
left=""
for t in $TAGS; do
	[ -e "$STATE_DIR/$t.json" ] && left="$left $t"
done
if [ -z "$left" ]; then pass "no state file left"; else fail "no state file left" "$left"; fi
ls -A /sys/fs/bpf/ciliate 2>/dev/null | sort >"$tmp/bpffs.after"
# Other suites pin and unpin there concurrently: entries that appeared and belong to our
# clusters (named cil-<tag>-... or after our scenarios' nodes) fail, others are noted.
new_pins=$(comm -13 "$tmp/bpffs.before" "$tmp/bpffs.after")
ours_re="^(node-[0-9]+$|cil-($(echo $TAGS | tr ' ' '|'))-)"
our_pins=$(grep -E "$ours_re" <<<"$new_pins")
if [ -n "$our_pins" ]; then
	fail "no pinned objects under /sys/fs/bpf/ciliate" "$our_pins"
elif [ ! -s "$tmp/bpffs.after" ]; then
	pass "no pinned objects under /sys/fs/bpf/ciliate"
else
	pass "no pinned objects of ours under /sys/fs/bpf/ciliate (others': $(tr '\n' ' ' <"$tmp/bpffs.after"))"
fi
left=$(our_procs)
if [ -z "$left" ]; then pass "no simulator process left"; else fail "no simulator process left" "$left"; fi
snapshot >"$tmp/root.after"
if cmp -s "$tmp/root.before" "$tmp/root.after"; then
	pass "root namespace links, addresses and routes unchanged"
else
	fail "root namespace unchanged" "$(diff "$tmp/root.before" "$tmp/root.after" | head -10)"
fi
finish
