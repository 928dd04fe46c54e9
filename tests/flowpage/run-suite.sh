#!/usr/bin/env bash
# Flow page suite: the page `ciliate observe --html` writes (datapath/flow/flowpage.c),
# rendered by headless Chromium from file://, for the flow log
# tests/observe/fixtures/flows.jsonl (21 flows from 2 nodes and 2 namespaces, 7 of them
# POLICY_DENIED drops, and a lost_events record). Checks, on the DOM after the page's
# script ran (--dump-dom):
#   - the header counts; one arrow per (source, destination, port, verdict) with its count,
#     the drops red with their reason; a known drop row (shop/cart -> payments/ledger-0,
#     POLICY_DENIED); every flow a row;
#   - a filter given in the URL (#verdict=DROPPED, #q=..., #sort=...) applies on load;
#   - tests/flowpage/harness.html drives the page in an iframe: typing, picking a verdict,
#     clicking headers, workloads and arrows (one line per check, read back from its DOM);
#   - a hostile pod name stays text (no element comes out of it) and breaks nothing;
#   - the page loads nothing (Chromium logs no refused load, no script error);
# and takes a screenshot (1400x900): docs/img/flowpage.png with UPDATE_SCREENSHOT=1, else a
# temporary file. Chromium runs without a network (its own empty network namespace when
# possible, and flags that stop every background request), with its own profile in a
# temporary directory, in its own process group, killed by that group's id after at most
# 60 s; the suite fails if any of its processes outlive it.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
GEN=$build/tests/test_flowpage
FIXTURE=tests/observe/fixtures/flows.jsonl
if [ ! -x "$GEN" ]; then
	echo "FAIL: $GEN is missing (run make first)"
	exit 1
fi
bash ci/install-deps.sh >/dev/null 2>&1 # installs chromium when root; idempotent
if ! command -v chromium >/dev/null; then
	echo "SKIP: chromium is not installed (ci/install-deps.sh installs it as root)"
	exit 77
fi

. tests/lib/suite.sh
passed=0
failed=0
why=""
tmp=$(mktemp -d /tmp/ciliate-t-flowpage.XXXXXX)
chrome_pid=""

finish() {
	if [ -n "$chrome_pid" ]; then
		kill -KILL -- "-$chrome_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap finish EXIT INT TERM

# No network for Chromium: an empty network namespace when we may make one, and in any case
# no proxy lookups, no background requests (updates, safe browsing, metrics, ...), and every
# host name resolving to nothing.
NETNS=()
if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
	NETNS=(unshare --net)
fi
CHROME_FLAGS=(--headless --no-sandbox --disable-gpu --no-proxy-server
	--disable-background-networking --disable-component-update --disable-sync
	--disable-default-apps --disable-extensions --disable-domain-reliability
	--disable-client-side-phishing-detection --disable-breakpad --disable-crash-reporter
	--no-first-run --no-default-browser-check --no-pings --metrics-recording-only
	--host-resolver-rules="MAP * ~NOTFOUND" --disable-features=Translate,MediaRouter,OptimizationHints
	--user-data-dir="$tmp/profile" --hide-scrollbars --enable-logging=stderr --v=0)

# chrome NAME ARGS...: runs Chromium (ARGS after the common flags) in its own process group,
# stdout to $tmp/NAME.out, stderr to $tmp/NAME.err; at most 60 s, then the whole group is
# killed. Fails if it timed out or left a process behind.
chrome() {
	local name=$1 i rc
	shift
	HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_CACHE_HOME="$tmp/home/.cache" \
		setsid "${NETNS[@]}" chromium "${CHROME_FLAGS[@]}" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	chrome_pid=$!
	for ((i = 0; i < 600; i++)); do
		kill -0 "$chrome_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$chrome_pid" 2>/dev/null; then
		echo "chromium ($name) still running after 60 s: killing it" >&2
		kill -TERM -- "-$chrome_pid" 2>/dev/null
		sleep 2
		kill -KILL -- "-$chrome_pid" 2>/dev/null
		wait "$chrome_pid" 2>/dev/null
		chrome_pid=""
		return 1
	fi
	wait "$chrome_pid"
	rc=$?
	# helpers may outlive the browser for a moment; none may stay
	for ((i = 0; i < 50; i++)); do
		pgrep -g "$chrome_pid" >/dev/null || break
		sleep 0.1
	done
	if pgrep -g "$chrome_pid" >/dev/null; then
		echo "chromium ($name) left processes behind: $(pgrep -g "$chrome_pid" | tr '\n' ' ')" >&2
		kill -KILL -- "-$chrome_pid" 2>/dev/null
		chrome_pid=""
		return 1
	fi
	chrome_pid=""
	return $rc
}

# dom NAME URL-SUFFIX [PAGE]: the page's DOM after its script ran (1400x900), one table row
# and one arrow per line.
dom() {
	chrome "$1" --window-size=1400,900 --virtual-time-budget=3000 --dump-dom \
		"file://${3:-$tmp/page.html}$2" || return 1
	tr -d '\n' <"$tmp/$1.out" | sed 's/<tr /\n<tr /g; s/<g class="edge/\n<g class="edge/g' >"$tmp/$1.dom"
	grep -q 'data-ready="true"' "$tmp/$1.dom"
}
rows() { # NAME [PATTERN]: table rows of the dump (matching PATTERN)
	grep -c "^<tr data-verdict=\"[A-Z]*\"${2:+.*$2}" "$tmp/$1.dom"
}
has() { grep -q -- "$2" "$tmp/$1.dom"; }
# a page must not try to load anything or throw
quiet() {
	! grep -E -i "Refused to (load|connect|frame)|Content Security Policy|Uncaught|ERR_NAME_NOT_RESOLVED" \
		"$tmp/$1.err"
}

if ! "$GEN" --page "$FIXTURE" "$tmp/page.html" "ciliate flows: demo cluster (2 nodes)"; then
	echo "FAIL: cannot write the page"
	exit 1
fi
echo "page: $(wc -c <"$tmp/page.html") bytes"

# harness_lines NAME PREFIX: the check lines harness.html wrote into its #result.
harness_lines() {
	local verdict line
	sed -n '/<pre id="result">/,/<\/pre>/p' "$tmp/$1.out" |
		sed 's/<pre id="result">//; s/<\/pre>.*//' >"$tmp/$1.txt"
	while read -r verdict line; do
		case $verdict in
		ok) pass "$2: $line" ;;
		FAIL) fail "$2: ${line%%: *}" "${line#*: }" ;;
		esac
	done <"$tmp/$1.txt"
	why="it stopped early: $(head -3 "$tmp/$1.txt")"
	check "$2: ran to the end" grep -qx end "$tmp/$1.txt"
}

# ---- the page as it opens ----
why="chromium failed or the page's script did not finish (see below)"
if check "page renders, script runs" dom all ""; then
	check "header counts" has all 'id="count-flows" data-count="21">21<.*id="count-forwarded" data-count="14">14<.*id="count-dropped" data-count="7">7<.*id="count-lost" data-count="3">3<'
	check "lost events per node" has all 'data-node="node-1" data-lost="0">node-1: 0<.*data-node="node-2" data-lost="3">node-2: 3<'
	n=$(grep -c '^<g class="edge ' "$tmp/all.dom")
	why="$n arrows"
	check "one arrow per (source, destination, port, verdict): 9" [ "$n" -eq 9 ]
	drop_edge=$(grep -o '^<g class="edge dropped" data-verdict="DROPPED" id="edge-[0-9]*" data-from="shop/frontend-6d8f7b9c4-x2lqp" data-to="payments/ledger-0" data-port="TCP/5432" data-count="4" data-reason="POLICY_DENIED"[^>]*><title>[^<]*</title><path [^>]*marker-end="url(#arrow-dropped)"' "$tmp/all.dom" |
		grep -o 'id="edge-[0-9]*"' | cut -d'"' -f2)
	why="no red arrow frontend -> ledger-0 TCP/5432 x4 POLICY_DENIED"
	check "drop arrow with count and reason" [ -n "$drop_edge" ]
	why="no red label on $drop_edge"
	check "drop arrow's label names the reason" has all "<text class=\"edge-label dropped\" data-verdict=\"DROPPED\" data-edge=\"$drop_edge\"[^>]*>TCP/5432 ×4  POLICY_DENIED</text>"
	why="no green arrow cart -> api-0 TCP/8443"
	check "forwarded arrow" has all '^<g class="edge forwarded" data-verdict="FORWARDED" id="edge-[0-9]*" data-from="shop/cart-5c9b48d7f-9mzt4" data-to="payments/api-0" data-port="TCP/8443" data-count="2"'
	why="replies should count on their connection's arrow (frontend -> cart TCP/8080 x6)"
	check "replies fold into the request's arrow" has all 'data-from="shop/frontend-6d8f7b9c4-x2lqp" data-to="shop/cart-5c9b48d7f-9mzt4" data-port="TCP/8080" data-count="6"'
	check "non-pod ends are reserved:world / reserved:host" has all 'class="node reserved" data-node="reserved:world"'
	check "workloads grouped by namespace" has all '<g class="ns" data-namespace="payments">.*<g class="ns" data-namespace="shop">'
	why="$(rows all) rows"
	check "every flow is a row" [ "$(rows all)" -eq 21 ]
	why="$(rows all 'DROPPED') dropped rows"
	check "7 dropped rows" [ "$(rows all DROPPED)" -eq 7 ]
	why="no row: node-1 drop shop/cart -> payments/ledger-0, TCP/5432, POLICY_DENIED"
	check "the known drop row" has all '^<tr data-verdict="DROPPED" data-node="node-1" data-src="shop/cart-5c9b48d7f-9mzt4" data-dst="payments/ledger-0"[^>]*><td class="c-time" title="2026-12-04T17:40:02.226901910Z">17:40:02.226</td><td class="c-node">node-1</td><td class="c-src">shop/cart-5c9b48d7f-9mzt4<span class="addr">10.244.1.20:60112</span></td><td class="c-dst">payments/ledger-0<span class="addr">10.244.0.40:5432</span></td><td class="c-l4">TCP/5432 SYN</td><td class="c-type">drop</td><td class="c-verdict">DROPPED</td><td class="c-reason">POLICY_DENIED</td><td class="c-point hook"[^>]*>from-overlay</td></tr>'
	why="see $tmp/all.err"
	check "no load attempted, no script error" quiet all
fi
[ "$passed" -eq 0 ] && { echo "--- chromium stderr:"; grep -v dbus "$tmp/all.err" | tail -20; }

# ---- filters given in the URL ----
if check "#verdict=DROPPED renders" dom drops "#verdict=DROPPED"; then
	why="$(rows drops) rows, $(rows drops DROPPED) dropped"
	check "only dropped rows remain" eval '[ "$(rows drops)" -eq 7 ] && [ "$(rows drops DROPPED)" -eq 7 ]'
	check "the select shows the verdict" has drops '<option value="DROPPED">'
	why="forwarded arrows not dimmed, or dropped ones dimmed"
	check "the map dims what is filtered out" eval '! grep -q "^<g class=\"edge forwarded\" data" "$tmp/drops.dom" && ! grep -q "^<g class=\"edge dropped dim\"" "$tmp/drops.dom"'
fi
if check "#q=ledger&verdict=DROPPED renders" dom ledger "#q=ledger&verdict=DROPPED"; then
	why="$(rows ledger) rows"
	check "text and verdict from the URL" eval '[ "$(rows ledger)" -eq 5 ] && [ "$(grep -c "^<tr data-verdict=\"DROPPED\"[^>]*data-dst=\"payments/ledger-0\"" "$tmp/ledger.dom")" -eq 5 ]'
	check "the shown count follows" has ledger 'id="count-shown" data-count="5"'
fi
if check "#sort=time:desc renders" dom newest "#sort=time:desc"; then
	why="first row: $(grep -m1 -o '^<tr [^>]*data-uuid="[^"]*"' "$tmp/newest.dom" | grep -o 'data-uuid="[^"]*"')"
	check "newest flow first" eval 'grep -m1 "^<tr data-verdict" "$tmp/newest.dom" | grep -q "data-uuid=\"node-1/111\""'
	check "header marks the sort" has newest '<th data-key="time"[^>]*aria-sort="descending"'
fi

# ---- flows as the datapath really sends them ----
# A three-tier namespace (web -> api -> db: layered left to right), a reply seen by a hook
# without conntrack state (is_reply false, only the reverse tuple of a flagged reply tells),
# and an end known only by its reserved identity number.
t0='"time":"2026-12-04T10:00:00'
ep() { echo "{\"namespace\":\"app\",\"pod_name\":\"$1\"}"; }
tcp() { echo "{\"TCP\":{\"source_port\":$1,\"destination_port\":$2,\"flags\":{$3}}}"; }
rec() { # SEC VERDICT SRC DST L4 IS_REPLY [EXTRA]
	echo "{\"flow\":{$t0.$1Z\",\"verdict\":\"$2\",\"IP\":{\"source\":\"10.0.0.$3\",\"destination\":\"10.0.0.$4\",\"ipVersion\":\"IPv4\"},\"l4\":$5,\"source\":$6,\"destination\":$7,\"event_type\":{\"type\":4},\"is_reply\":$8,\"node_name\":\"n1\"${9:-}},\"node_name\":\"n1\",$t0.$1Z\"}"
}
{
	rec 1 FORWARDED 1 2 "$(tcp 40000 8080 '"SYN":true')" "$(ep web)" "$(ep api)" false
	rec 2 FORWARDED 2 1 "$(tcp 8080 40000 '"SYN":true,"ACK":true')" "$(ep api)" "$(ep web)" true
	rec 3 FORWARDED 2 1 "$(tcp 8080 40000 '"ACK":true')" "$(ep api)" "$(ep web)" false
	rec 4 FORWARDED 2 3 "$(tcp 41000 5432 '"SYN":true')" "$(ep api)" "$(ep db)" false
	rec 5 DROPPED 3 9 '{"UDP":{"source_port":53000,"destination_port":53}}' "$(ep db)" '{"identity":2}' false ',"drop_reason_desc":"POLICY_DENIED"'
} >"$tmp/quirks.jsonl"
if "$GEN" --page "$tmp/quirks.jsonl" "$tmp/quirks.html" "quirks" && dom quirks "" "$tmp/quirks.html"; then
	why="$(grep -c '^<g class="edge ' "$tmp/quirks.dom") arrows"
	check "quirks: 3 arrows (replies folded, with or without is_reply)" [ "$(grep -c '^<g class="edge ' "$tmp/quirks.dom")" -eq 3 ]
	check "quirks: web -> api TCP/8080 x3" has quirks 'data-from="app/web" data-to="app/api" data-port="TCP/8080" data-count="3"'
	check "quirks: identity 2 without labels is reserved:world" has quirks 'data-from="app/db" data-to="reserved:world" data-port="UDP/53" data-count="1" data-reason="POLICY_DENIED"'
	xof() { grep -o "data-node=\"app/$1\"[^>]*><title>[^<]*</title><rect class=\"node-box\" x=\"[0-9.]*\"" "$tmp/quirks.dom" | grep -o 'x="[0-9.]*"$' | tr -dc '0-9.' | cut -d. -f1; }
	why="x of web, api, db: $(xof web), $(xof api), $(xof db)"
	check "quirks: callers left of callees (web, api, db in layers)" eval '[ -n "$(xof web)" ] && [ "$(xof web)" -lt "$(xof api)" ] && [ "$(xof api)" -lt "$(xof db)" ]'
else
	fail "quirks: page renders" "cannot write or render the page"
fi

# ---- a person using it (harness in an iframe) ----
cp tests/flowpage/harness.html "$tmp/harness.html"
if chrome harness --allow-file-access-from-files --virtual-time-budget=5000 --dump-dom \
	"file://$tmp/harness.html"; then
	harness_lines harness "harness"
	check "harness: no script error" quiet harness
else
	fail "harness" "chromium failed"
fi

# ---- a hostile label ----
hostile='</script><img src=x onerror=alert(1)><!--'
sed "s|\"pod_name\":\"frontend-6d8f7b9c4-x2lqp\"|\"pod_name\":\"$hostile\"|g" "$FIXTURE" \
	>"$tmp/hostile.jsonl"
mkdir -p "$tmp/hostile"
cp tests/flowpage/harness.html "$tmp/hostile/harness.html"
if "$GEN" --page "$tmp/hostile.jsonl" "$tmp/hostile/page.html" "<b>title</b>" &&
	chrome hostile --allow-file-access-from-files --virtual-time-budget=5000 --dump-dom \
		"file://$tmp/hostile/harness.html#hostile"; then
	harness_lines hostile "hostile label"
	check "hostile label: no script error" quiet hostile
else
	fail "hostile label" "cannot write or render the page"
fi

# ---- screenshot ----
if [ "${UPDATE_SCREENSHOT:-0}" = 1 ]; then
	shot=docs/img/flowpage.png
	mkdir -p docs/img
else
	shot=$tmp/flowpage.png
fi
"$GEN" --page "$FIXTURE" "$tmp/page.html" "ciliate flows: demo cluster (2 nodes)"
rm -f "$shot"
chrome shot --screenshot="$(realpath -m "$shot")" --window-size=1400,900 "file://$tmp/page.html"
why="no PNG at $shot"
check "screenshot (1400x900)" eval '[ "$(head -c 8 "$shot" | od -An -tx1 | tr -d " ")" = 89504e470d0a1a0a ] && [ "$(stat -c %s "$shot")" -gt 20000 ]'
[ "${UPDATE_SCREENSHOT:-0}" = 1 ] && echo "screenshot written to $shot"
exit 0
