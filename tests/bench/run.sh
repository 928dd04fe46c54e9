#!/usr/bin/env bash
# make bench: every benchmark binary in build/bench (per-packet costs: each prints its own
# table, every path against a floor measured in the same run, so read the ratios), then the
# script benches (tests/bench/*.sh but this one; sim_bringup.sh reports simulator bring-up and
# teardown wall times and memory: no floor, compare only runs on an equally quiet machine).
# Results and method: docs/PERFORMANCE.md.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."
# bench_maglev (Maglev disruption and table build time: userspace only) runs in this loop.
# bench_lb_control (the agent's service reconcile, 10k services x 10 backends, against
# iptables-restore and nft -f; root: BPF maps and its own network namespace cil-bench-PID,
# removed on exit; a few minutes) runs in this loop too. Targets print PASS/FAIL as reports;
# only a real error (a ruleset that does not load, maps not holding the services) exits non-zero.
# bench_svc_first_packet (first packet of a new connection to a ClusterIP through veth, 10/1k/10k
# services: ciliate against kube-proxy-style iptables, an nft verdict map and no rules; root:
# namespaces fpb<row>-PID-*, removed on exit and at its -t time limit; 3-4 minutes) too.
# bench_store (store ops/s: put, get, cas, list1000, watch, watch-burst, lease) runs here on
# a temporary embedded store with fsync=0 only (about 1 s); bench_store.sh below compares.
for b in "$build"/bench/*; do
	[ -x "$b" ] || continue
	echo "=== $(basename "$b")"
	"$b"
	echo
done
# script benches (they drive the built binaries). bench_dsr_bytes.sh (issue 11 item 6: bytes
# node-1's fabric interface carries per 1 MiB request/response pair, DSR against SNAT; root:
# two 2-node native clusters from tests/bench/dsr-bytes.yaml, one at a time, removed on exit;
# a few seconds) runs in this loop; a MISS is reported, not an error. bench_egress_rate.sh
# (issue 12 item 6: TCP connections per second from a pod through the egress gateway node-2
# against masquerading on the pod's own node; root: one 2-node native cluster from
# tests/bench/egress-rate.yaml, removed on exit; about 5 s) runs in this loop too, and so does
# bench_encryption.sh (issue 13 item 7: pod-to-pod connection rate and bulk throughput with
# WireGuard (wireguard-go) against plaintext; root: two 2-node clusters from
# tests/bench/encryption.yaml side by side, removed on exit; about 10 s).
# bench_store.sh (issue 14 item 6: store operations per second, the embedded store with
# fsync=1 and fsync=0 against one etcd member (--unsafe-no-fsync) in a network namespace
# cil-t-bstorePID, removed on exit; etcd skipped without root or etcd; about 25 s) too.
# bench_store_sim.sh (issue 14 item 6: the simulator with --store etcd:// against its embedded
# store: policy apply -> enforced on 3 nodes, 1000 pods up/down; root and etcd, else SKIP;
# etcd and the simulator in netns cil-t-bsimPID, clusters bsp-*/bsu-*-PID, all removed on
# exit; about 2 minutes) too.
for s in tests/bench/*.sh; do
	[ "$(basename "$s")" = run.sh ] && continue
	echo "=== $(basename "$s" .sh)"
	bash "$s" "$build"
	echo
done
