#!/usr/bin/env bash
# Store operations per second, embedded file store against etcd, in one run (issue 14 item 6;
# docs/PERFORMANCE.md "Store operations"). build/bench/bench_store runs the same rows (put,
# get, cas, list1000, watch, watch-burst, lease; each at most BENCH_STORE_N ops, default 2000,
# or BENCH_STORE_T s, default 10) against:
#   file fsync=1  the embedded store in a temporary directory on /tmp (the default URI options:
#                 an fdatasync per commit; what the simulator's agents use)
#   file fsync=0  the same without the fdatasync (survives a process crash, not a power loss)
#   etcd          one etcd member (Debian's etcd-server, tests/lib/etcd.sh) inside a network
#                 namespace this script creates (cil-t-bstorePID, removed on exit), on its
#                 loopback, data directory on /tmp, started with --unsafe-no-fsync (no fsync
#                 of its WAL: compare it with file fsync=0), heartbeat 10 ms; the bench runs
#                 in the same namespace and reaches it over TCP through the JSON gateway
# and prints each row's JSON lines, then a table: ops/s and p50 latency per backend, and the
# ratios of ops/s etcd / file fsync=1 and etcd / file fsync=0. etcd is skipped (with a SKIP line) when not root or
# when etcd is not installed; the file rows still run.
# Usage: bench_store.sh [BUILD_DIR]
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
BIN=$build/bench/bench_store
if [ ! -x "$BIN" ]; then
	echo "FAIL: $BIN is missing (run make first)"
	exit 1
fi
N=${BENCH_STORE_N:-2000}
T=${BENCH_STORE_T:-10}
tmp=$(mktemp -d /tmp/ciliate-bench-store.XXXXXX)
NS="" etcd_pid=""
. tests/lib/etcd.sh
cleanup() {
	[ -n "$etcd_pid" ] && etcd_stop "$etcd_pid" "$tmp" bench
	etcd_pid=""
	if [ -n "$NS" ]; then
		for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$NS" 2>/dev/null
	fi
	NS=""
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail=0
run() { # LABEL URI [netns]
	local label=$1 uri=$2 ns=${3:-}
	echo "--- $label ($uri)"
	if ! ${ns:+nsenter --net=/run/netns/$ns} timeout $((T * 8 + 60)) "$BIN" -n "$N" -t "$T" \
		-l "$label" "$uri" >>"$tmp/rows.json" 2>"$tmp/err"; then
		echo "FAIL: bench_store on $label: $(tail -3 "$tmp/err")"
		fail=1
	fi
	grep "\"label\":\"$label\"" "$tmp/rows.json"
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), /tmp on $(df --output=fstype /tmp | tail -1)"
mkdir -p "$tmp/f1" "$tmp/f0"
run "file fsync=1" "file://$tmp/f1"
run "file fsync=0" "file://$tmp/f0?fsync=0"

have_etcd=1
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP etcd: network namespaces need root"
	have_etcd=0
elif ! command -v etcd >/dev/null || ! command -v python3 >/dev/null || ! command -v curl >/dev/null; then
	echo "SKIP etcd: etcd, python3 or curl is not installed (make deps installs etcd-server)"
	have_etcd=0
fi
if [ $have_etcd -eq 1 ]; then
	NS=cil-t-bstore$$
	if ip netns add "$NS" && ip -n "$NS" link set lo up && etcd_start bench "$tmp" "$NS"; then
		etcd_pid=$ETCD_PID
		echo "etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}') on $ETCD_EP in netns $NS (pid $etcd_pid, --unsafe-no-fsync)"
		run etcd "etcd://$ETCD_EP" "$NS"
	else
		echo "FAIL: could not start etcd in $NS"
		fail=1
	fi
fi

python3 - "$tmp/rows.json" <<'EOF'
import json, sys
rows = {}
labels = []
ops = []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r["label"] not in labels:
        labels.append(r["label"])
    if r["op"] not in ops:
        ops.append(r["op"])
    rows[(r["label"], r["op"])] = r
def cell(l, o):
    r = rows.get((l, o))
    return "%9.0f %8.0f" % (r["ops_per_s"], r["p50_us"]) if r else "%9s %8s" % ("-", "-")
def ratio(o, base):
    a, b = rows.get(("etcd", o)), rows.get((base, o))
    return "%.3fx" % (a["ops_per_s"] / b["ops_per_s"]) if a and b and b["ops_per_s"] > 0 else "-"
print()
print("%-12s" % "op" + "".join("| %-18s " % l for l in labels) + "| etcd/file1 | etcd/file0")
print("%-12s" % "" + "".join("| %9s %8s " % ("ops/s", "p50 us") for l in labels) + "| (ops/s)    | (ops/s)")
for o in ops:
    print("%-12s" % o + "".join("| " + cell(l, o) + " " for l in labels) +
          "| %-10s | %s" % (ratio(o, "file fsync=1"), ratio(o, "file fsync=0")))
EOF
exit $fail
