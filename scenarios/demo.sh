#!/usr/bin/env bash
# make demo: replays the showcase captures through the real BPF programs and prints the
# per-packet verdict table, then runs scenarios/demo.yaml on a simulated cluster (network
# namespaces, one ciliate-agent per node, pods through ciliate-cni) with ciliate-sim, then
# brings up scenarios/demo-services.yaml (a Service with two backends, NodePort) and asks the
# ClusterIP from a pod and the NodePort from an external host: each answer names the backend
# pod that served it. Every step is bounded in time; the services cluster is torn down on
# exit, interrupt or failure.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
echo "ciliate demo: replaying showcase captures through the pod and node hooks"
echo "(BPF_PROG_TEST_RUN on private maps; scenario state from scenarios/replay/*.yaml)"
echo
rc=0
for f in scenarios/replay/tcp-*.yaml scenarios/replay/icmp-*.yaml scenarios/replay/svc-*.yaml; do
	[ -f "$f" ] || continue
	"$build/bin/ciliate" replay --scenario "$f" || rc=1
	echo
done
if [ "$(id -u)" != 0 ] || [ ! -x "$build/bin/ciliate-sim" ]; then
	echo "ciliate demo: skipping the simulated clusters (needs root and $build/bin/ciliate-sim)"
	exit $rc
fi

echo "ciliate demo: simulated cluster (ciliate-sim run scenarios/demo.yaml)"
echo
timeout 60 "$build/bin/ciliate-sim" run scenarios/demo.yaml || rc=1

# ---- services: ClusterIP from a pod, NodePort from outside ----
sim=$build/bin/ciliate-sim
probe=$(cd "$build/bin" && pwd)/ciliate-probe
svc_file=scenarios/demo-services.yaml
tag=demosvc # the Cluster's metadata.name (docs/SIMULATOR.md "Topology")
down() { timeout 60 "$sim" down "$svc_file" >/dev/null 2>&1 || true; }
trap down EXIT
trap 'down; exit 130' INT TERM

# one HTTP request from TARGET to IP:PORT; prints "backend POD on NODE (client seen as IP)"
ask() { # LABEL TARGET IP PORT
	local out who
	out=$(timeout 10 "$sim" exec -c "$tag" "$2" -- "$probe" --to "$3" --port "$4" --http \
		--path /demo --timeout-ms 1500 -o json 2>/dev/null) || true
	who=$(printf '%s\n' "$out" | sed -n 's/.*"reply":{"pod":"\([^"]*\)","namespace":"\([^"]*\)","node":"\([^"]*\)","client_ip":"\([^"]*\)".*/\2\/\1 on \3 (client seen as \4)/p')
	if [ -n "$who" ]; then
		printf '  %-44s -> answered by %s\n' "$1" "$who"
	else
		printf '  %-44s -> NO ANSWER: %s\n' "$1" "${out:-timeout}"
		rc=1
	fi
}

echo
echo "ciliate demo: services (ciliate-sim up $svc_file: Service shop/web, ClusterIP"
echo "10.96.0.80:80 and NodePort 30080 -> backends shop/web-1 on node-1, shop/web-2 on node-2)"
down # a cluster left by an interrupted demo
if ! timeout 60 "$sim" up "$svc_file"; then
	echo "ciliate demo: the services cluster did not come up"
	exit 1
fi
echo
echo "ClusterIP from a pod (kube-proxy replacement in from-container):"
for i in 1 2 3 4; do
	ask "shop/client -> 10.96.0.80:80 (#$i)" shop/client 10.96.0.80 80
done
echo "NodePort from an external host (from-netdev; a remote backend gets SNAT to the node):"
for n in 1 2; do
	for i in 1 2; do
		ask "ext/laptop -> node-$n 192.0.2.$n:30080 (#$i)" ext/laptop "192.0.2.$n" 30080
	done
done
echo
echo "ciliate demo: tearing the services cluster down"
down
trap - EXIT INT TERM
exit $rc
