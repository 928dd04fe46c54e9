#!/usr/bin/env bash
# `ciliate connectivity test` on a 2-node simulated cluster (scenarios/connectivity-test/
# two-nodes.yaml under a tag of its own): the default suite passes in under 60 s with a valid
# JUnit file; --test filters (with '!' exclusions); --single-node; -o json; a run interrupted
# with SIGINT in the middle exits 130 and leaves nothing; a SIGKILLed run's leftovers are
# removed by the next invocation (--cleanup); the suite CAN fail (an extra deny-all policy
# makes no-policies fail; a forced encryption check finds plaintext); every CLI command takes
# --cluster TAG. After every run: no store objects, addresses or endpoints of the suite, no
# cil-ct-<tag>-* namespace, no process, no run directory; the root namespace is untouched.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
CLI=$build/bin/ciliate
SIM=$build/bin/ciliate-sim
for b in "$CLI" "$SIM" "$build/bin/ciliate-probe" "$build/bin/ciliate-echo" "$build/bin/ciliate-cni"; do
	if [ ! -x "$b" ]; then
		echo "FAIL: $b is missing (run make first)"
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root (network namespaces)"
	exit 77
fi
for t in jq python3 tcpdump; do
	if ! command -v $t >/dev/null; then
		echo "SKIP: $t is missing"
		exit 77
	fi
done

passed=0
failed=0
start=$SECONDS
source tests/lib/suite.sh
tmp=$(mktemp -d /tmp/ciliate-t-ct.XXXXXX)
# a tag of its own (ct + 6 hex digits: 8 characters, kept whole), so parallel runs never meet
tag=ct$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
sed "s/name: ct-suite}/name: $tag}/" scenarios/connectivity-test/two-nodes.yaml >"$tmp/cluster.yaml"
snap() { { ip -o link; ip -o addr; ip route; } 2>/dev/null | sed 's/ link-netnsid [0-9]*//'; }
cleanup() {
	"$SIM" down "$tag" >/dev/null 2>&1
	[ -n "${wtag:-}" ] && "$SIM" down "$wtag" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
snap >"$tmp/root.before"

if ! "$SIM" up "$tmp/cluster.yaml" >"$tmp/up.out" 2>&1; then
	fail "ciliate-sim up" "$(tail -3 "$tmp/up.out")"
	echo "connectivity-test: $passed passed, $failed failed"
	exit 1
fi
pass "a 2-node cluster with an external host is up (tag $tag)"

# nothing of the suite is left: store objects, addresses, endpoints, namespaces, processes
nothing_left() {
	local what=$1 objs ipam eps ns procs
	objs=$("$CLI" status --cluster "$tag" -o json 2>/dev/null | jq -c '.store.objects')
	ipam=$("$CLI" ipam list --cluster "$tag" -o json | jq '[.[].allocations[]] | length')
	eps=$( { "$CLI" endpoint list --cluster "$tag" --node node-1 -o json
		"$CLI" endpoint list --cluster "$tag" --node node-2 -o json; } |
		jq -s '[.[][] | select(.pod | startswith("cilium-test/"))] | length')
	ns=$(ip netns list | grep -c "^cil-ct-$tag-")
	procs=$(pgrep -fc "/run/ciliate/connectivity/$tag-" || true)
	why="store objects $objs, addresses $ipam, endpoints $eps, namespaces $ns, processes $procs, run dir $(ls -d /run/ciliate/connectivity/$tag-* 2>/dev/null | wc -l)"
	check "$what: nothing left behind" eval "[ '$objs' = '{}' ] && [ '$ipam' = 0 ] && [ '$eps' = 0 ] && [ '$ns' = 0 ] && [ '$procs' = 0 ] && ! ls -d /run/ciliate/connectivity/$tag-* >/dev/null 2>&1"
}

# 1. the default suite
t0=$(date +%s%N)
"$CLI" connectivity test --cluster "$tag" --junit-file "$tmp/junit.xml" >"$tmp/run.out" 2>"$tmp/run.err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
echo "  default suite: exit $rc in ${ms} ms"
sed 's/^/    /' "$tmp/run.out"
why="exit $rc: $(grep -E '❌' "$tmp/run.out" "$tmp/run.err" | head -5)"
check "default suite passes (exit 0)" [ "$rc" -eq 0 ]
why="${ms} ms"
check "default suite takes under 60 s" [ "$ms" -lt 60000 ]
why=$(grep -c '^\[=\] \[cilium-test\] Test \[' "$tmp/run.err")
check "progress per test on stderr ([=] [cilium-test] Test [no-policies] [1/7] ...)" \
	eval "grep -q '^\[=\] \[cilium-test\] Test \[no-policies\] \[1/7\]' '$tmp/run.err' && grep -q '^\[=\] \[cilium-test\] Test \[no-unexpected-packet-drops\] \[7/7\]' '$tmp/run.err'"
check "summary on stdout with per-test durations" \
	eval "grep -qE '^  no-policies +pass +[0-9]+/[0-9]+ +[0-9.]+s' '$tmp/run.out' && grep -q 'All 6 tests' '$tmp/run.out'"
why=$(grep 'pod-to-pod-encryption' "$tmp/run.out")
check "pod-to-pod-encryption skipped with its reason (no encryption here)" \
	grep -q 'pod-to-pod-encryption.*skip.*encryption is not enabled' "$tmp/run.out"
why=$(python3 - "$tmp/junit.xml" 2>&1 <<'EOF'
import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot()
cases = list(r.iter('testcase'))
assert r.tag == 'testsuites' and r.find('testsuite') is not None, r.tag
assert len(cases) == 7, len(cases)
assert r.get('failures') == '0', r.get('failures')
assert [c.get('name') for c in cases][0] == 'no-policies'
assert sum(1 for c in cases if c.find('skipped') is not None) == 1
EOF
)
check "JUnit file is valid XML: testsuites/testsuite, 7 testcases, 0 failures, 1 skipped" [ -z "$why" ]
nothing_left "default suite"

# 2. --test REGEX (with a '!' exclusion), -o json: every deny proven by its drop event
"$CLI" connectivity test --cluster "$tag" --test ingress --test '!client' -o json \
	>"$tmp/filter.json" 2>"$tmp/filter.err"
rc=$?
why="exit $rc; tests $(jq -c '[.tests[].name]' "$tmp/filter.json" 2>/dev/null)"
check "--test ingress --test '!client' runs exactly all-ingress-deny and echo-ingress" \
	eval "[ $rc -eq 0 ] && [ \"\$(jq -c '[.tests[].name]' '$tmp/filter.json')\" = '[\"all-ingress-deny\",\"echo-ingress\"]' ]"
denies=$(jq '[.tests[].actions[] | select(.expect == "deny")] | length' "$tmp/filter.json")
proven=$(jq '[.tests[].actions[] | select(.expect == "deny" and .pass and (.observed | test("drop=POLICY_DENIED on node-[12] ")))] | length' "$tmp/filter.json")
why="$proven of $denies"
check "every deny action proven by a POLICY_DENIED drop event ($denies)" eval "[ '$denies' -ge 9 ] && [ '$proven' = '$denies' ]"
nothing_left "--test"

# 3. --single-node
"$CLI" connectivity test --cluster "$tag" --single-node -v -o json >"$tmp/single.json" 2>"$tmp/single.err"
rc=$?
other=$(jq '[.tests[].actions[] | select((.to + .from) | test("echo-other-node|node-2"))] | length' "$tmp/single.json")
why="exit $rc, $other action(s) about the other node; $(grep '❌' "$tmp/single.err" | head -3)"
check "--single-node passes without other-node actions" eval "[ $rc -eq 0 ] && [ '$other' = 0 ]"
check "--single-node: no echo-other-node pod deployed" eval "! grep -q 'echo-other-node pods' '$tmp/single.err'"
why="$(grep -c '^  \[.\] Action \[' "$tmp/single.err") action lines, $(jq '[.tests[].actions[]] | length' "$tmp/single.json") actions"
check "-v prints every action's outcome" \
	eval "[ \"\$(grep -c '^  \[\.\] Action \[' '$tmp/single.err')\" = \"\$(jq '[.tests[].actions[]] | length' '$tmp/single.json')\" ]"
nothing_left "--single-node"

# 4. SIGINT in the middle (once all-ingress-deny has begun: its policy is in the store);
# meanwhile a second run against the same cluster and namespace is refused
"$CLI" connectivity test --cluster "$tag" >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!
for _ in $(seq 1 300); do
	grep -q 'Test \[all-ingress-deny\]' "$tmp/int.err" 2>/dev/null && break
	sleep 0.1
done
"$CLI" connectivity test --cluster "$tag" >"$tmp/second.out" 2>&1
rc=$?
why="exit $rc: $(tail -1 "$tmp/second.out")"
check "a second run while one is in progress is refused (exit 1)" \
	eval "[ $rc -eq 1 ] && grep -q 'is in progress' '$tmp/second.out'"
kill -INT "$pid"
wait "$pid"
rc=$?
why="exit $rc; $(tail -3 "$tmp/int.err")"
check "SIGINT in the middle: exit 130 after cleaning up" eval "[ $rc -eq 130 ] && grep -q 'Interrupted' '$tmp/int.err'"
nothing_left "SIGINT"

# 5. a SIGKILLed run leaves things; the next invocation removes them by name
"$CLI" connectivity test --cluster "$tag" >/dev/null 2>"$tmp/kill.err" &
pid=$!
for _ in $(seq 1 300); do
	grep -q 'Test \[no-policies-from-outside\]' "$tmp/kill.err" 2>/dev/null && break
	sleep 0.1
done
exec 3>&2 2>/dev/null # no "Killed" line from the shell
kill -KILL "$pid"
wait "$pid"
exec 2>&3 3>&-
left=$(ip netns list | grep -c "^cil-ct-$tag-")
why="$left namespace(s) after SIGKILL"
check "SIGKILL: the killed run left its namespaces" [ "$left" -gt 0 ]
"$CLI" connectivity test --cluster "$tag" --cleanup >"$tmp/cleanup.out" 2>&1
rc=$?
why="exit $rc: $(tail -2 "$tmp/cleanup.out")"
check "--cleanup removes a killed run's leftovers (exit 0)" [ "$rc" -eq 0 ]
nothing_left "after --cleanup"

# 6. the suite can fail: an extra deny-all ingress policy in its namespace
cat >"$tmp/deny.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: extra-deny-all, namespace: cilium-test}
spec: {podSelector: {}, policyTypes: [Ingress]}
EOF
"$CLI" apply --cluster "$tag" -f "$tmp/deny.yaml" >/dev/null
"$CLI" connectivity test --cluster "$tag" --junit-file "$tmp/neg.xml" >"$tmp/neg.out" 2>"$tmp/neg.err"
rc=$?
"$CLI" delete --cluster "$tag" -f "$tmp/deny.yaml" >/dev/null
why="exit $rc; $(grep -E 'Test \[|tests failed' "$tmp/neg.out" | head -4)"
check "an extra deny-all policy: exit 1, no-policies fails" \
	eval "[ $rc -eq 1 ] && grep -qE '^  no-policies +fail' '$tmp/neg.out' && grep -q 'Test \[no-policies\]:' '$tmp/neg.out'"
check "... and no-unexpected-packet-drops names the policy drops" \
	grep -q 'no-unexpected-packet-drops/drop-0: .*unexpected drop POLICY_DENIED' "$tmp/neg.out"
why=$(python3 -c "import sys,xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot(); print([c.get('name') for c in r.iter('testcase') if c.find('failure') is not None])" "$tmp/neg.xml" 2>&1)
check "... and the JUnit file has the failures" eval "echo \"$why\" | grep -q no-policies"
nothing_left "failing run"

# a setup that fails (a CLI copied away from its ciliate-cni) is a reported failure, in the
# JUnit file too, and leaves nothing
mkdir -p "$tmp/bin"
cp "$CLI" "$tmp/bin/ciliate"
"$tmp/bin/ciliate" connectivity test --cluster "$tag" --junit-file "$tmp/setup.xml" >"$tmp/setup.out" 2>&1
rc=$?
why="exit $rc: $(grep -m1 'setup failed' "$tmp/setup.out")"
check "a failed setup: exit 1, reported and in the JUnit file" \
	eval "[ $rc -eq 1 ] && grep -q 'setup failed, no test ran: .*ciliate-cni' '$tmp/setup.out' && grep -q 'failure message=\"the test could not run\"' '$tmp/setup.xml'"
nothing_left "failed setup"

# 7. the encryption check finds plaintext when forced on this unencrypted cluster
CILIATE_CT_ENCRYPTION_CHECK=force "$CLI" connectivity test --cluster "$tag" --test encryption \
	>"$tmp/enc.out" 2>&1
rc=$?
why="exit $rc; $(grep -m2 'plaintext\|❌' "$tmp/enc.out")"
check "pod-to-pod-encryption fails on plaintext (forced on an unencrypted cluster)" \
	eval "[ $rc -eq 1 ] && grep -q \"captured on node-1's eth0 carries this flow in plaintext\" '$tmp/enc.out'"
nothing_left "encryption check"

# 8. the real-host path (no --cluster): the local agent, ciliate-cni in the host's own
# namespace. Here node-1's namespace plays the host (its agent runs there), so the plugin's
# interfaces go into that namespace, never the root one; from the root namespace, where no
# agent runs, the suite refuses.
store="file:///run/ciliate/sim/$tag/store?keep_revisions=1000"
nsenter --net="/run/netns/cil-$tag-node-1" "$CLI" connectivity test --node "cil-$tag-node-1" \
	--store "$store" -o json >"$tmp/host.json" 2>"$tmp/host.err"
rc=$?
why="exit $rc; $(jq -c '[.tests[] | [.name, .result]]' "$tmp/host.json" 2>/dev/null); $(grep '❌' "$tmp/host.err" | head -3)"
check "real-host path (node-1's namespace as the host): passes, policy tests included" \
	eval "[ $rc -eq 0 ] && [ \"\$(jq '[.tests[] | select(.result == \"pass\")] | length' '$tmp/host.json')\" -ge 5 ]"
lxc=$(ip -n "cil-$tag-node-1" -o link | grep -c ' lxc')
hostns=$(ip netns list | grep -c "^cil-ct-host-cil-$tag-node-1-")
why="$lxc lxc device(s) left in node-1, $hostns namespace(s) cil-ct-host-cil-$tag-node-1-*"
check "real-host path: the plugin's host-side veths and the pods' namespaces are gone again" \
	eval "[ $lxc -eq 0 ] && [ $hostns -eq 0 ]"
nothing_left "real-host path"
"$CLI" connectivity test --store "$store" >"$tmp/refuse.out" 2>&1
rc=$?
why="exit $rc: $(tail -1 "$tmp/refuse.out")"
check "real-host path refuses an agent of another network namespace (exit 1)" \
	eval "[ $rc -eq 1 ] && grep -q 'in this network namespace' '$tmp/refuse.out'"

# 9. --cluster TAG on other commands; usage errors
why=$("$CLI" endpoint list --cluster "$tag" --node node-1 -o json 2>&1 | head -2)
check "ciliate endpoint list --cluster TAG --node node-1 asks cil-TAG-node-1's agent" \
	eval "'$CLI' endpoint list --cluster '$tag' --node node-1 -o json >/dev/null"
check "ciliate observe --cluster TAG asks only the cluster's agents" \
	eval "'$CLI' observe --cluster '$tag' --last 3 -o json >/dev/null"
"$CLI" ipam list --cluster nosuchct >/dev/null 2>&1
rc=$?
why="exit $rc"
check "--cluster of an unknown tag is a usage error (exit 2)" [ "$rc" -eq 2 ]
"$CLI" connectivity test --cluster "$tag" --test 'nomatch' >/dev/null 2>&1
rc=$?
why="exit $rc"
check "--test selecting nothing is a usage error (exit 2)" [ "$rc" -eq 2 ]
"$CLI" connectivity test --cluster "$tag" --external-target 8.8.8.8 >/dev/null 2>&1
rc=$?
why="exit $rc"
check "--external-target outside the simulation is refused (exit 2)" [ "$rc" -eq 2 ]

# 10. pod-to-pod-encryption passing on a WireGuard cluster (wireguard-go needs /dev/net/tun)
if [ -c /dev/net/tun ]; then
	wtag=cw$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	sed "s/name: ct-wg}/name: $wtag}/" scenarios/connectivity-test/wireguard.yaml >"$tmp/wg.yaml"
	if "$SIM" up "$tmp/wg.yaml" >"$tmp/wgup.out" 2>&1; then
		"$CLI" connectivity test --cluster "$wtag" --test encryption -o json \
			>"$tmp/wg.json" 2>"$tmp/wg.err"
		rc=$?
		why="exit $rc; $(jq -c '[.tests[].actions[] | [.pass, .observed, .reason]]' "$tmp/wg.json" 2>/dev/null | cut -c1-300)"
		check "pod-to-pod-encryption passes on a WireGuard cluster (packets captured, none in plaintext)" \
			eval "[ $rc -eq 0 ] && [ \"\$(jq '[.tests[].actions[] | select(.pass and (.observed | test(\"[1-9][0-9]* packet\\\\(s\\\\) on node-1.s eth0, none of this flow in plaintext\")))] | length' '$tmp/wg.json')\" = 2 ]"
		left=$(ip netns list | grep -c "^cil-ct-$wtag-")
		why="$left namespace(s)"
		check "WireGuard cluster: nothing left behind" [ "$left" -eq 0 ]
	else
		fail "ciliate-sim up (WireGuard)" "$(tail -3 "$tmp/wgup.out")"
	fi
	"$SIM" down "$wtag" >/dev/null 2>&1
else
	echo "SKIP - pod-to-pod-encryption on a WireGuard cluster: no /dev/net/tun for wireguard-go (tests/encryption skips too)"
fi

# 11. a killed run, then the cluster taken down under it: --cleanup still finds the suite's
# namespaces and processes by name (the store went with the cluster)
"$CLI" connectivity test --cluster "$tag" >/dev/null 2>"$tmp/gone.err" &
pid=$!
for _ in $(seq 1 300); do
	grep -q 'Test \[no-policies\]' "$tmp/gone.err" 2>/dev/null && break
	sleep 0.1
done
exec 3>&2 2>/dev/null
kill -KILL "$pid"
wait "$pid"
exec 2>&3 3>&-
"$SIM" down "$tag" >/dev/null 2>&1
left=$(ip netns list | grep -c "^cil-ct-$tag-")
"$CLI" connectivity test --cluster "$tag" --cleanup >"$tmp/gone.out" 2>&1
rc=$?
now=$(ip netns list | grep -c "^cil-ct-$tag-")
procs=$(pgrep -fc "/run/ciliate/connectivity/$tag-" || true)
why="exit $rc, namespaces $left -> $now, processes $procs: $(tail -1 "$tmp/gone.out")"
check "--cleanup after the cluster is gone removes a killed run's namespaces and processes" \
	eval "[ $rc -eq 0 ] && [ $left -gt 0 ] && [ $now -eq 0 ] && [ $procs -eq 0 ] && ! ls -d /run/ciliate/connectivity/$tag-* >/dev/null 2>&1"

snap >"$tmp/root.after"
why=$(diff "$tmp/root.before" "$tmp/root.after" | head -5)
check "the root network namespace is untouched (links, addresses, routes)" [ -z "$why" ]

echo "connectivity-test: $passed passed, $failed failed ($((SECONDS - start))s)"
[ "$failed" -eq 0 ]
