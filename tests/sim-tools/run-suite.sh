#!/usr/bin/env bash
# sim-tools suite: ciliate-echo and ciliate-probe end to end, across two network namespaces
# (ciliate-t-st<pid>-cli, ciliate-t-st<pid>-srv) joined by one veth pair created inside
# them. Nothing touches the root namespace; traffic only goes to addresses of these two
# namespaces; every process is started here and killed by pid; teardown runs on any exit.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
if [ ! -x "$build/bin/ciliate-echo" ] || [ ! -x "$build/bin/ciliate-probe" ]; then
	echo "FAIL: $build/bin/ciliate-echo or ciliate-probe is missing (run make first)"
	exit 1
fi
build=$(cd "$build" && pwd)
ECHO=$build/bin/ciliate-echo
PROBE=$build/bin/ciliate-probe

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: network namespaces need root"
	exit 77
fi
if ! command -v ip >/dev/null; then
	echo "SKIP: iproute2 (ip) is not installed"
	exit 77
fi

tag="ciliate-t-st$$"
NS_C="$tag-cli"
NS_S="$tag-srv"
C_IP=198.51.100.1 # client namespace
S_IP=198.51.100.2 # server namespace
C_IP2=198.51.100.3 # second client address; the server blackholes its replies to it
S_IP2=198.51.100.4 # second server address (UDP answers must come from it)
SILENT_IP=198.51.100.99 # in the subnet, owned by nobody: no ARP answer
BH_IP=198.51.100.200 # blackhole route in the client namespace
C_IP6=fd00:5e1:7e57::1
S_IP6=fd00:5e1:7e57::2
tmp=""
pids=()
stray=0
passed=0
failed=0

teardown() {
	local p i alive
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for i in $(seq 30); do
		alive=0
		for p in "${pids[@]}"; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	# safety net: anything still inside our namespaces was started by this suite
	for ns in "$NS_C" "$NS_S"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			stray=$((stray + 1))
			kill -KILL "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "$tmp" ] && rm -rf "$tmp"
	tmp=""
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

# pass / fail / check
source tests/lib/suite.sh # (cwd is the repository root)
# sys COMMAND...: a set-up step; failing it fails the suite loudly
sys() {
	"$@" || { echo "FAIL - setup: $*"; failed=$((failed + 1)); finish; }
}
finish() {
	teardown
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# has TEXT STRING...: TEXT contains every STRING (sets why on failure)
has() {
	local text=$1 s
	shift
	for s in "$@"; do
		if ! grep -qF -- "$s" <<<"$text"; then
			why="missing $s in: ${text:0:600}"
			return 1
		fi
	done
}
field() { grep -oE "\"$2\":[0-9]+" <<<"$1" | head -1 | cut -d: -f2; }
# (background jobs run `ip netns exec` directly, never through a function, so that $! is the
# pid of the process itself: ip netns exec execs its command)
cli() { ip netns exec "$NS_C" "$@"; }
srv() { ip netns exec "$NS_S" "$@"; }
# start_echo PIDFILE ARGS...: runs ciliate-echo in the server namespace, waits until it listens
start_echo() {
	local pidfile=$1 pid i
	shift
	ip netns exec "$NS_S" "$ECHO" --pidfile "$pidfile" "$@" 2>>"$tmp/echo.log" &
	pid=$!
	pids+=($pid)
	for i in $(seq 50); do
		if [ -s "$pidfile" ]; then
			[ "$(cat "$pidfile")" = "$pid" ] && return 0
			echo "pidfile says $(cat "$pidfile"), started $pid"
			return 1
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "echo server did not start: $(tail -5 "$tmp/echo.log")"
	return 1
}

if ! ip netns add "$NS_C" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces here"
	exit 77
fi
sys ip netns add "$NS_S"
tmp=$(mktemp -d /tmp/ciliate-t-sim-tools.XXXXXX)
sys ip -n "$NS_C" link add eth0 type veth peer name eth0 netns "$NS_S"
for ns in "$NS_C" "$NS_S"; do
	sys ip -n "$ns" link set lo up
	sys ip -n "$ns" link set eth0 up
done
sys ip -n "$NS_C" addr add "$C_IP/24" dev eth0
sys ip -n "$NS_C" addr add "$C_IP2/24" dev eth0
sys ip -n "$NS_S" addr add "$S_IP/24" dev eth0
sys ip -n "$NS_S" addr add "$S_IP2/24" dev eth0
sys ip -n "$NS_S" route add blackhole "$C_IP2/32"
sys ip -n "$NS_C" route add blackhole "$BH_IP/32"
have6=0
if ip -n "$NS_C" addr add "$C_IP6/64" dev eth0 nodad 2>/dev/null &&
	ip -n "$NS_S" addr add "$S_IP6/64" dev eth0 nodad 2>/dev/null; then
	have6=1
fi

sys start_echo "$tmp/echo1.pid" --pod web-1 --namespace shop --node node-1 \
	--port 8080 --tcp 8081 --idle-timeout-ms 1500
echo_pid=${pids[-1]}
sys start_echo "$tmp/echo2.pid" --pod ext-1 --node none --bind "$S_IP2" --udp 5353 --quiet

# --- allow paths ----------------------------------------------------------------------------
out=$(cli "$PROBE" --to "$S_IP" --port 8080 --protocol TCP -o json)
rc=$?
check "tcp: allow, rc 0" test $rc -eq 0
check "tcp: reply names pod, namespace, node, addresses" has "$out" '"result":"allow"' \
	'"pod":"web-1"' '"namespace":"shop"' '"node":"node-1"' "\"client_ip\":\"$C_IP\"" \
	"\"server_ip\":\"$S_IP\"" '"server_port":8080' '"protocol":"TCP"'
why="client_port $(field "$out" client_port) != local_port $(field "$out" local_port)"
check "tcp: client port seen = probe's source port" \
	test "$(field "$out" client_port)" = "$(field "$out" local_port)"

out=$(cli "$PROBE" --to "$S_IP" --port 8080 --protocol UDP -o json)
rc=$?
check "udp: allow, rc 0" test $rc -eq 0
check "udp: reply names pod, namespace, node, addresses" has "$out" '"result":"allow"' \
	'"pod":"web-1"' '"namespace":"shop"' '"node":"node-1"' "\"client_ip\":\"$C_IP\"" \
	"\"server_ip\":\"$S_IP\"" '"protocol":"UDP"' '"tries":1'
why="client_port $(field "$out" client_port) != local_port $(field "$out" local_port)"
check "udp: client port seen = probe's source port" \
	test "$(field "$out" client_port)" = "$(field "$out" local_port)"

out=$(cli "$PROBE" --to "$S_IP2" --port 5353 --protocol udp -o json)
check "udp: answer comes from the address asked (--bind, second address)" has "$out" \
	'"result":"allow"' '"pod":"ext-1"' '"namespace":""' "\"server_ip\":\"$S_IP2\""

out=$(cli "$PROBE" --to "$S_IP" --port 8081 --http --path '/hello/world?x=1' \
	-H 'X-Ciliate-Test: yes' -o json)
rc=$?
check "http: allow, status 200" has "$out" '"result":"allow"' '"http_status":200'
check "http: method, path and headers reported" has "$out" '"method":"GET"' \
	'"path":"/hello/world?x=1"' '"http_version":"HTTP/1.1"' '"x-ciliate-test":"yes"' \
	"\"host\":\"$S_IP:8081\"" "\"client_ip\":\"$C_IP\""
out=$(cli "$PROBE" --to "$S_IP" --port 8080 --http --method POST --path /p -o json)
check "http: same port serves HTTP and echo (POST)" has "$out" '"result":"allow"' \
	'"method":"POST"' '"path":"/p"'

out=$(cli timeout 5 bash -c "exec 3<>/dev/tcp/$S_IP/8081; printf 'hello\n' >&3; head -n1 <&3")
check "echo mode: raw TCP line answered with the request echoed" has "$out" \
	'"request":"hello\n"' '"pod":"web-1"'

if [ $have6 -eq 1 ]; then
	out=$(cli "$PROBE" --to "$S_IP6" --port 8080 -o json)
	check "ipv6 tcp: allow" has "$out" '"result":"allow"' "\"client_ip\":\"$C_IP6\""
	out=$(cli "$PROBE" --to "$S_IP6" --port 8080 --protocol UDP -o json)
	check "ipv6 udp: allow" has "$out" '"result":"allow"' "\"server_ip\":\"$S_IP6\""
else
	echo "skip - ipv6 checks (cannot add IPv6 addresses in the namespaces)"
fi

# --- deny paths -----------------------------------------------------------------------------
t0=$(now_ms)
out=$(cli "$PROBE" --to "$S_IP" --port 9090 --timeout-ms 3000 -o json)
rc=$?
dt=$(($(now_ms) - t0))
check "tcp closed port: deny refused, rc 1" has "$out" '"result":"deny"' '"error":"refused"'
why="rc $rc, took ${dt}ms"
check "tcp closed port: fast (<1000ms of a 3000ms timeout), rc 1" test $rc -eq 1 -a $dt -lt 1000

t0=$(now_ms)
out=$(cli "$PROBE" --to "$S_IP" --port 9090 --protocol UDP --timeout-ms 3000 -o json)
rc=$?
dt=$(($(now_ms) - t0))
check "udp closed port: deny refused (ICMP)" has "$out" '"result":"deny"' '"error":"refused"'
why="rc $rc, took ${dt}ms"
check "udp closed port: fast, rc 1" test $rc -eq 1 -a $dt -lt 1000

t0=$(now_ms)
out=$(cli "$PROBE" --to "$SILENT_IP" --port 8080 --timeout-ms 500 -o json)
rc=$?
dt=$(($(now_ms) - t0))
check "tcp to silent address: deny timeout at connect" has "$out" '"result":"deny"' \
	'"error":"timeout"' '"stage":"connect"'
why="rc $rc, took ${dt}ms"
check "tcp to silent address: within the timeout, rc 1" test $rc -eq 1 -a $dt -ge 450 -a $dt -lt 1500

t0=$(now_ms)
out=$(cli "$PROBE" --to "$S_IP" --port 8080 --source "$C_IP2" --timeout-ms 500 -o json)
rc=$?
dt=$(($(now_ms) - t0))
check "tcp, replies blackholed by the server: deny timeout" has "$out" '"result":"deny"' \
	'"error":"timeout"' "\"local_ip\":\"$C_IP2\""
why="rc $rc, took ${dt}ms"
check "tcp, replies blackholed: within the timeout" test $rc -eq 1 -a $dt -lt 1500

t0=$(now_ms)
out=$(cli "$PROBE" --to "$S_IP" --port 8080 --protocol UDP --source "$C_IP2" \
	--timeout-ms 600 --udp-tries 3 -o json)
rc=$?
dt=$(($(now_ms) - t0))
check "udp, replies blackholed: deny timeout after 3 tries" has "$out" '"result":"deny"' \
	'"error":"timeout"' '"tries":3'
why="rc $rc, took ${dt}ms"
check "udp, replies blackholed: within the timeout" test $rc -eq 1 -a $dt -ge 550 -a $dt -lt 1500

out=$(cli "$PROBE" --to "$BH_IP" --port 80 --timeout-ms 500 -o json)
check "tcp via a blackhole route: deny unreachable" has "$out" '"result":"deny"' \
	'"error":"unreachable"'

# --- repeated, concurrent and slow clients ---------------------------------------------------
out=$(cli "$PROBE" --to "$S_IP" --port 8080 --count 5 -o json)
rc=$?
n_allow=$(grep -c '"result":"allow"' <<<"$out")
n_ports=$(grep -oE '"local_port":[0-9]+' <<<"$out" | sort -u | wc -l)
why="rc $rc, $n_allow allowed, $n_ports distinct source ports"
check "--count 5: 5 replies over 5 new connections" test $rc -eq 0 -a "$n_allow" -eq 5 -a "$n_ports" -eq 5
check "--count 5: summary names the backend" has "$out" '"requested":5' '"allowed":5' \
	'"distinct_backends":1' '"backends":{"shop/web-1":5}'
out=$(cli "$PROBE" --to "$S_IP" --port 8080 --protocol UDP --count 5 --interval-ms 10)
check "--count 5 udp, text output: summary line" has "$out" 'summary: 5/5 allowed' \
	'shop/web-1=5'

# a client that connects and never sends, one that sends half an HTTP head: both are held
# while others are served, and the idle one is closed by the server after its idle timeout
ip netns exec "$NS_C" timeout 10 bash -c "exec 3<>/dev/tcp/$S_IP/8080; exec sleep 8" &
pids+=($!)
ip netns exec "$NS_C" timeout 10 bash -c \
	"exec 3<>/dev/tcp/$S_IP/8081; printf 'GET / HT' >&3; exec sleep 8" &
pids+=($!)
sleep 0.2
ppids=()
for i in $(seq 20); do
	ip netns exec "$NS_C" "$PROBE" --to "$S_IP" --port $((8080 + i % 2)) --timeout-ms 2000 \
		-o json >"$tmp/par.$i" 2>&1 &
	ppids+=($!)
	pids+=($!)
done
prc=0
for p in "${ppids[@]}"; do
	wait "$p" || prc=1
done
n_allow=$(cat "$tmp"/par.* | grep -c '"result":"allow"')
why="$n_allow of 20 allowed"
check "20 concurrent probes next to stalled clients: all allowed" test $prc -eq 0 -a "$n_allow" -eq 20

t0=$(now_ms)
cli timeout 5 bash -c "exec 3<>/dev/tcp/$S_IP/8080; cat <&3 >/dev/null"
rc=$?
dt=$(($(now_ms) - t0))
why="rc $rc after ${dt}ms"
check "idle connection closed by the server (--idle-timeout-ms 1500)" \
	test $rc -eq 0 -a $dt -ge 1300 -a $dt -lt 3500

# --- usage errors ------------------------------------------------------------------------------
cli "$PROBE" >/dev/null 2>&1
check "probe without arguments: exit 2" test $? -eq 2
cli "$PROBE" --to "$S_IP" --port 80 --count 10001 >/dev/null 2>&1
check "probe --count above 10000: exit 2" test $? -eq 2
cli "$PROBE" --to not-an-ip --port 80 >/dev/null 2>&1
check "probe --to non-IP: exit 2" test $? -eq 2
cli "$PROBE" --to "$S_IP" --port 80 --protocol UDP --http >/dev/null 2>&1
check "probe --http with UDP: exit 2" test $? -eq 2
srv "$ECHO" --pod x >/dev/null 2>&1
check "echo without ports: exit 2" test $? -eq 2

# --- shutdown and teardown ---------------------------------------------------------------------
kill -TERM "$echo_pid"
t0=$(now_ms)
wait "$echo_pid"
rc=$?
dt=$(($(now_ms) - t0))
why="rc $rc after ${dt}ms"
check "echo exits 0 on SIGTERM, promptly" test $rc -eq 0 -a $dt -lt 2000
check "echo removes its pidfile on exit" test ! -e "$tmp/echo1.pid"
check "echo logged requests to stderr" grep -q 'http GET /hello/world' "$tmp/echo.log"

all_pids=("${pids[@]}")
teardown
left=$(ip netns list | grep -c "^$tag" || true)
why="$left namespaces left"
check "teardown: no namespace left" test "$left" -eq 0
alive=0
for p in "${all_pids[@]}"; do
	kill -0 "$p" 2>/dev/null && alive=$((alive + 1))
done
why="$alive started processes alive, $stray stray processes found in the namespaces"
check "teardown: no process left" test $alive -eq 0 -a $stray -eq 0
pids=()
finish
