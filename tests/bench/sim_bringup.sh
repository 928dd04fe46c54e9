#!/usr/bin/env bash
# Simulator bring-up and teardown with the real datapath (one ciliate-agent per node, every
# pod through ciliate-cni, an echo server per pod), for N nodes x P pods per node:
#   3 x 30     (target <= 10 s up)
#   10 x 100   (1000 pods, SPEC section 10)
#   10 x 1000  (10,000 pods; target <= 120 s up, <= 60 s down) only with BENCH_LARGE=1
# For each size: `ciliate-sim up` wall time (and its own report), `ciliate-sim down` wall
# time, and peak memory sampled every 200 ms while the cluster comes up and while it is up:
# the summed RSS of the cluster's processes (ciliate-sim, agents, echo servers) and the
# machine's MemAvailable drop (also counts kernel memory: namespaces, veths, BPF maps; and
# anything else running, so it is an upper bound on a shared machine); PEAK_AGENTS_MB is
# the agents' part of the RSS (the echo servers' RSS counts the shared C library again for
# each of them).
# Usage: sim_bringup.sh BUILD_DIR [SIZE...]   (SIZE like 3x30)
# Clusters are named PREFIX-SIZE-PID (BENCH_SIM_PREFIX, default "bench"): the simulator's tag
# (its namespaces, agent sockets) follows the name, and two runs on one machine must not share
# one. Only a cluster this run created is taken down: a fixed name once let a second run whose
# `up` was refused ("in use") take down the first run's cluster while it came up, and that
# run's CNI calls then failed with "Connection reset by peer".
set -uo pipefail

build=${1:-build}
shift || true
cd "$(dirname "$0")/../.." || exit 1
SIM=$build/bin/ciliate-sim
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator needs root"
	exit 0
fi
sizes=("$@")
if [ ${#sizes[@]} -eq 0 ]; then
	sizes=(3x30 10x100)
	[ "${BENCH_LARGE:-0}" = 1 ] && sizes+=(10x1000)
fi
tmp=$(mktemp -d /tmp/ciliate-bench-sim.XXXXXX)
tags=()
cleanup() {
	local t
	for t in "${tags[@]}"; do "$SIM" down "$t" >/dev/null 2>&1; done
	rm -rf "$tmp"
}
trap 'cleanup; exit 1' INT TERM HUP

# scenario NAME NODES PODS_PER_NODE: a /20 per node (4096 addresses) so 1000 pods fit
scenario() {
	local name=$1 nodes=$2 per=$3 n i
	echo "apiVersion: sim.ciliate.dev/v1
kind: Cluster
metadata: {name: $name}
spec:
  routing: native
  podCIDR: 10.64.0.0/12
  underlayCIDR: 192.0.2.0/24
  nodes:"
	for n in $(seq "$nodes"); do
		echo "  - {name: n$n, podCIDR: 10.$((64 + (n - 1) / 16)).$((((n - 1) % 16) * 16)).0/20}"
	done
	echo "---
apiVersion: v1
kind: Namespace
metadata: {name: b}"
	for n in $(seq "$nodes"); do
		for i in $(seq "$per"); do
			echo "---
apiVersion: v1
kind: Pod
metadata: {name: p$n-$i, namespace: b, labels: {app: a$((i % 10))}}
spec:
  nodeName: n$n
  containers: [{name: c, image: echo, ports: [{containerPort: 80}]}]"
		done
	done
}

# rss_kb TAG SIMPID: summed RSS of the cluster's processes, from one `ps` (a loop over 1000s
# of /proc entries with a few commands each would itself load the machine it measures)
rss_kb() {
	ps -e -ww -o pid=,rss=,comm=,args= 2>/dev/null | awk -v sp="$2" -v pat="/run/ciliate/sim/$1/" '
		$1 == sp { s += $2; next }
		($3 == "ciliate-echo" || $3 == "ciliate-agent") && index($0, pat) {
			s += $2
			if ($3 == "ciliate-agent") ag += $2
		}
		END { print s + 0, ag + 0 }'
}
avail_kb() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }

printf '%-9s %7s %9s %9s %12s %14s %15s\n' SIZE PODS UP_S DOWN_S PEAK_RSS_MB PEAK_MEMDROP_MB PEAK_AGENTS_MB
for size in "${sizes[@]}"; do
	nodes=${size%x*}
	per=${size#*x}
	name=${BENCH_SIM_PREFIX:-bench}-$size-$$
	scenario "$name" "$nodes" "$per" >"$tmp/$size.yaml"
	base=$(avail_kb)
	start=$(date +%s%N)
	"$SIM" up "$tmp/$size.yaml" >"$tmp/$size.up" 2>&1 &
	simpid=$!
	tag=""
	peak_rss=0
	peak_agents=0
	min_avail=$base
	# sample while it comes up (bounded: 600 s)
	for _ in $(seq 3000); do
		kill -0 "$simpid" 2>/dev/null || break
		[ -z "$tag" ] && tag=$(grep -oE 'cil-[a-z0-9]+-fabric' "$tmp/$size.up" | head -1 |
			sed -E 's/^cil-([a-z0-9]+)-fabric$/\1/')
		if [ -n "$tag" ]; then
			read -r r ag < <(rss_kb "$tag" "$simpid")
			[ "$r" -gt "$peak_rss" ] && peak_rss=$r
			[ "$ag" -gt "$peak_agents" ] && peak_agents=$ag
		fi
		a=$(avail_kb)
		[ "$a" -lt "$min_avail" ] && min_avail=$a
		sleep 0.2
	done
	wait "$simpid"
	rc=$?
	up_ns=$(($(date +%s%N) - start))
	# ours only if this `up` started creating it (an `up` refused for a busy tag prints none)
	[ -z "$tag" ] && tag=$(grep -oE 'cil-[a-z0-9]+-fabric' "$tmp/$size.up" | head -1 |
		sed -E 's/^cil-([a-z0-9]+)-fabric$/\1/')
	[ -n "$tag" ] && tags+=("$tag")
	if [ $rc -ne 0 ]; then
		echo "$size: up failed: $(tr '\r' '\n' <"$tmp/$size.up" | tail -3)"
		[ -n "$tag" ] && "$SIM" down "$tag" >/dev/null 2>&1
		continue
	fi
	# once up: the agents and servers at rest
	read -r r ag < <(rss_kb "$tag" 0)
	[ "$r" -gt "$peak_rss" ] && peak_rss=$r
	[ "$ag" -gt "$peak_agents" ] && peak_agents=$ag
	a=$(avail_kb)
	[ "$a" -lt "$min_avail" ] && min_avail=$a
	start=$(date +%s%N)
	"$SIM" down "$tag" >"$tmp/$size.down" 2>&1
	down_ns=$(($(date +%s%N) - start))
	printf '%-9s %7d %9.2f %9.2f %12d %14d %15d\n' "$size" $((nodes * per)) \
		"$(awk "BEGIN {print $up_ns / 1e9}")" "$(awk "BEGIN {print $down_ns / 1e9}")" \
		$((peak_rss / 1024)) $(((base - min_avail) / 1024)) $((peak_agents / 1024))
	grep -E 'up in [0-9]+ ms' "$tmp/$size.up" | sed 's/^/    /'
done
cleanup
