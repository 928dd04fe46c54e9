#!/usr/bin/env bash
# sim-tools suite: ciliate-echo and ciliate-probe end to end, across two network namespaces
# (ciliate-t-st<pid>-cli, ciliate-t-st<pid>-srv) joined by one veth pair created inside
# them, plus three site namespaces (ciliate-t-st<pid>-s1..s3, one address each on lo) for
# ciliate-echo --sites. Nothing touches the root namespace; traffic only goes to addresses
# of these namespaces; every process is started here and killed by pid; teardown runs on
# any exit.
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
NS_SITES=("$tag-s1" "$tag-s2" "$tag-s3") # --sites: one namespace per site
SITE_IPS=(203.0.113.1 203.0.113.2 203.0.113.3) # each on lo of its site namespace
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
	for ns in "$NS_C" "$NS_S" "${NS_SITES[@]}"; do
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
start_echo() { start_echo_in "$NS_S" "$@"; }
# start_echo_in NETNS PIDFILE ARGS...: the same in namespace NETNS
start_echo_in() {
	local ns=$1 pidfile=$2 pid i
	shift 2
	ip netns exec "$ns" "$ECHO" --pidfile "$pidfile" "$@" 2>>"$tmp/echo.log" &
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

# --- multi-site mode: one ciliate-echo --sites process, one site per namespace ----------------
# Every site namespace has its own address on lo and every site listens on 8080: only
# listeners opened inside the right namespace can all bind and answer there. The server runs
# in the server namespace, which is also where the site without --netns listens.
for i in 0 1 2; do
	sys ip netns add "${NS_SITES[$i]}"
	sys ip -n "${NS_SITES[$i]}" link set lo up
	sys ip -n "${NS_SITES[$i]}" addr add "${SITE_IPS[$i]}/32" dev lo
done
in_site() { # in_site I COMMAND...: runs COMMAND in site namespace I (0..2)
	local i=$1
	shift
	ip netns exec "${NS_SITES[$i]}" "$@"
}
sites=$tmp/sites.conf
cat >"$sites" <<SITES
# one line per site: the per-site options of the command line
--netns /run/netns/${NS_SITES[0]} --pod api-1 --namespace shop --node node-a --tcp 8080 --tcp 8443

	--netns /run/netns/${NS_SITES[1]}   --pod dns-1 --namespace kube-system --node node-b --port 8080 --udp 5353
--netns /run/netns/${NS_SITES[2]} --pod db-1 --namespace data --node node-c --port 8080 --bind ${SITE_IPS[2]}
--pod ext-2 --node none --bind $S_IP --tcp 7070
SITES
sys start_echo "$tmp/sites.pid" --sites "$sites" --quiet
sites_pid=${pids[-1]}

# site_has I PORT PROTO POD NS NODE: a probe from inside site I to its address answers as POD
site_has() {
	local i=$1 port=$2 proto=$3 out
	out=$(in_site "$i" "$PROBE" --to "${SITE_IPS[$i]}" --port "$port" --protocol "$proto" -o json)
	has "$out" '"result":"allow"' "\"pod\":\"$4\"" "\"namespace\":\"$5\"" "\"node\":\"$6\"" \
		"\"server_ip\":\"${SITE_IPS[$i]}\"" "\"server_port\":$port" "\"protocol\":\"$proto\""
}
check "sites: site 1 tcp 8080 answers as shop/api-1 on node-a" \
	site_has 0 8080 TCP api-1 shop node-a
check "sites: site 1 second port, tcp 8443, answers as shop/api-1" \
	site_has 0 8443 TCP api-1 shop node-a
out=$(in_site 0 "$PROBE" --to "${SITE_IPS[0]}" --port 8080 --protocol UDP \
	--timeout-ms 500 -o json)
check "sites: site 1 has no udp port (--tcp only): refused" has "$out" '"result":"deny"' \
	'"error":"refused"'
check "sites: site 2 tcp 8080 answers as kube-system/dns-1 on node-b" \
	site_has 1 8080 TCP dns-1 kube-system node-b
check "sites: site 2 udp 8080 (--port) answers as kube-system/dns-1" \
	site_has 1 8080 UDP dns-1 kube-system node-b
check "sites: site 2 udp 5353 answers as kube-system/dns-1" \
	site_has 1 5353 UDP dns-1 kube-system node-b
check "sites: site 3 tcp 8080 (--bind) answers as data/db-1 on node-c" \
	site_has 2 8080 TCP db-1 data node-c
check "sites: site 3 udp 8080 answers as data/db-1" site_has 2 8080 UDP db-1 data node-c
out=$(cli "$PROBE" --to "$S_IP" --port 7070 -o json)
check "sites: a site without --netns listens in the server's own namespace" has "$out" \
	'"result":"allow"' '"pod":"ext-2"' '"namespace":""' '"node":"none"' \
	"\"client_ip\":\"$C_IP\"" "\"server_ip\":\"$S_IP\""
if in_site 1 ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128'; then
	out=$(in_site 1 "$PROBE" --to ::1 --port 8080 --protocol UDP -o json)
	check "sites: ipv6 udp in site 2 answers as kube-system/dns-1" has "$out" \
		'"result":"allow"' '"pod":"dns-1"' '"server_ip":"::1"'
else
	echo "skip - sites ipv6 check (no ::1 in the site namespaces)"
fi
out=$(in_site 1 "$PROBE" --to "${SITE_IPS[1]}" --port 8080 --count 5 -o json)
check "sites: --count 5 in site 2, one backend" has "$out" '"allowed":5' \
	'"backends":{"kube-system/dns-1":5}'

# the same site served by a single-site server must answer the same bytes (ports aside)
sys start_echo_in "${NS_SITES[0]}" "$tmp/single.pid" --pod api-1 --namespace shop \
	--node node-a --tcp 8444 --quiet
raw() { # raw I PORT REQUEST: the answer's first line (echo) or all of it (HTTP), ports masked
	in_site "$1" timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"; printf "$3" >&3
		if [ "${3:0:3}" = GET ]; then cat <&3; else head -n1 <&3; fi' _ \
		"${SITE_IPS[$1]}" "$2" "$3" | sed -E 's/"(client|server)_port":[0-9]+/"\1_port":P/g'
}
a=$(raw 0 8443 'hello\n')
b=$(raw 0 8444 'hello\n')
why="--sites: $a / single: $b"
check "sites: echo-mode answer byte-for-byte that of a single-site server" \
	test -n "$a" -a "$a" = "$b"
a=$(raw 0 8443 'GET /same HTTP/1.1\r\nHost: h\r\n\r\n')
b=$(raw 0 8444 'GET /same HTTP/1.1\r\nHost: h\r\n\r\n')
why="--sites: $a / single: $b"
check "sites: HTTP response byte-for-byte that of a single-site server" \
	test -n "$a" -a "$a" = "$b"

# errors name FILE:LINE, exit non-zero, and leave no pidfile
sites_fail() { # sites_fail NAME: runs a --sites server on $tmp/NAME; sets rc, err
	rm -f "$tmp/$1.pid"
	err=$(srv timeout 5 "$ECHO" --sites "$tmp/$1" --pidfile "$tmp/$1.pid" 2>&1 >/dev/null)
	rc=$?
}
printf '%s\n' '# fine, then a bad port' "--pod a --tcp 9001" "--pod b --tcp nope" >"$tmp/bad"
sites_fail bad
why="rc $rc: $err"
check "sites: bad line: message names FILE:LINE" has "$err" "$tmp/bad:3:" "nope"
check "sites: bad line: exit 2, no pidfile" test $rc -eq 2 -a ! -e "$tmp/bad.pid"
printf '%s\n' "--pod a --tcp 9001" "--pod b --tcp 9002 --frobnicate" >"$tmp/badopt"
sites_fail badopt
why="rc $rc: $err"
check "sites: unknown option: exit 2, FILE:LINE, no pidfile" test $rc -eq 2 -a \
	! -e "$tmp/badopt.pid" -a -n "$(grep -F "$tmp/badopt:2:" <<<"$err")"
printf '%s\n' "--netns /run/netns/${NS_SITES[0]} --pod a --tcp 9001" \
	"--netns /run/netns/$tag-missing --pod b --tcp 9002" >"$tmp/nons"
sites_fail nons
why="rc $rc: $err"
check "sites: missing netns: exit 1, FILE:LINE names it, no pidfile" test $rc -eq 1 -a \
	! -e "$tmp/nons.pid" -a -n "$(grep -F "$tmp/nons:2: netns /run/netns/$tag-missing" <<<"$err")"
printf '%s\n' "--netns /run/netns/${NS_SITES[1]} --pod c --udp 9003" \
	"--netns /run/netns/${NS_SITES[0]} --pod d --tcp 8443" >"$tmp/busy"
sites_fail busy
why="rc $rc: $err"
check "sites: port in use in its namespace: exit 1, FILE:LINE, no pidfile" test $rc -eq 1 -a \
	! -e "$tmp/busy.pid" -a -n "$(grep -F "$tmp/busy:2: cannot listen on tcp" <<<"$err")"
srv timeout 5 "$ECHO" --sites "$sites" --pod x --pidfile "$tmp/mixed.pid" >/dev/null 2>&1
rc=$?
why="rc $rc"
check "sites: --sites with --pod: exit 2, no pidfile" test $rc -eq 2 -a ! -e "$tmp/mixed.pid"

kill -TERM "$sites_pid"
t0=$(now_ms)
for i in $(seq 30); do # bounded: a server that ignores SIGTERM fails here, teardown kills it
	kill -0 "$sites_pid" 2>/dev/null || break
	sleep 0.1
done
rc=still-running
kill -0 "$sites_pid" 2>/dev/null || { wait "$sites_pid"; rc=$?; }
dt=$(($(now_ms) - t0))
why="rc $rc after ${dt}ms"
check "sites: exits 0 on SIGTERM, promptly" test "$rc" = 0 -a $dt -lt 2000
check "sites: pidfile removed on exit" test ! -e "$tmp/sites.pid"
out=$(in_site 1 "$PROBE" --to "${SITE_IPS[1]}" --port 5353 --protocol UDP \
	--timeout-ms 500 -o json)
check "sites: listeners gone with the process" has "$out" '"result":"deny"'

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
