#!/usr/bin/env bash
# Podman suite (docs/INSTALL.md, Podman): Debian's podman (CNI network backend) runs a
# container with ciliate as its network, inside node-1's network namespace of a simulated
# two-node cluster (ciliate-sim up), so the root namespace is never touched. The container's
# root file system is busybox-static copied into a temporary directory (podman run --rootfs:
# no image, no pull). Checks: the container's address is from node-1's pod range (the
# agent's IPAM) and its routes are ciliate's; it reaches the pod on node-2 (busybox nc and
# wget to its echo server, whose answer names the client address); the agent lists the
# endpoint (default/<container name>: podman passes K8S_POD_NAME only) and the store its
# allocation; `podman rm -f` runs CNI DEL: endpoint, address, host veth and podman's netns
# gone; a second container gets an address again. A second network chains portmap after
# ciliate-cni: `podman run -p 8080:80` hands portmap its port mappings (runtimeConfig), and
# node-2 reaches the container's busybox httpd at node-1's address:8080 until `podman rm`.
# Everything podman keeps is under a temporary directory (containers.conf, storage.conf with
# the vfs driver, root, runroot, tmp_dir, file locks, events log) except libcni's result
# cache in /var/lib/cni/results, whose files for our containers are removed on exit.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 77 skip (reason printed), 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
for b in ciliate ciliate-sim ciliate-agent ciliate-cni ciliate-echo; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL: $build/bin/$b is missing (run make first)"
		exit 1
	fi
done
build=$(cd "$build" && pwd)
SIM=$build/bin/ciliate-sim
CLI=$build/bin/ciliate
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the simulator and podman's CNI backend need root"
	exit 77
fi
for t in podman runc conmon nsenter jq ip curl iptables; do
	if ! command -v $t >/dev/null; then
		echo "SKIP: $t is not installed (bash ci/install-deps.sh)"
		exit 77
	fi
done
# busybox-static's /bin/busybox (a dynamic busybox would need its libraries in the rootfs)
BUSYBOX=/bin/busybox
if [ ! -x $BUSYBOX ] || ! grep -q 'not a dynamic executable' <<<"$(LC_ALL=C ldd $BUSYBOX 2>&1)"; then
	echo "SKIP: busybox-static is not installed (bash ci/install-deps.sh)"
	exit 77
fi

TAG=podman # the Cluster's metadata.name (below)
STATE_DIR=/run/ciliate/sim
NODE_NS=cil-$TAG-node-1
INSTANCE=cil-$TAG-node-1 # the agent's --instance: /run/ciliate/$INSTANCE/agent.sock
STORE=file://$STATE_DIR/$TAG/store
tmp=$(mktemp -d /tmp/ciliate-t-podman.XXXXXX)
passed=0
failed=0
why=""
start=$SECONDS
cids=() # container ids podman reported (their libcni cache files are removed on exit)
had_cni_dir=0
[ -d /var/lib/cni ] && had_cni_dir=1
source tests/lib/suite.sh # pass / fail / check (cwd is the repository root)
jqe() { jq -e "$@" >/dev/null 2>&1; }

cluster_left() { [ -e "$STATE_DIR/$TAG.json" ] || ip netns list 2>/dev/null | grep -qE "^cil-$TAG-"; }
# pd ARGS...: podman with this suite's private configuration, inside node-1's namespace
pd() {
	CONTAINERS_CONF=$tmp/containers.conf CONTAINERS_STORAGE_CONF=$tmp/storage.conf \
		timeout 60 nsenter --net="/run/netns/$NODE_NS" podman --root "$tmp/root" \
		--runroot "$tmp/runroot" --storage-driver vfs --cgroup-manager cgroupfs \
		--runtime runc "$@"
}
finish() {
	trap - EXIT INT TERM HUP
	local c p
	if [ -f "$tmp/containers.conf" ] && [ -e "/run/netns/$NODE_NS" ]; then
		pd rm -a -f -t 0 >/dev/null 2>&1
	fi
	# conmon processes of our containers (podman's monitor; matched by our --root)
	for p in $(pgrep -x conmon 2>/dev/null); do
		grep -qF "$tmp/" "/proc/$p/cmdline" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	done
	for c in "${cids[@]}"; do
		rm -f /var/lib/cni/results/ciliate-"$c"-* 2>/dev/null
	done
	if [ $had_cni_dir -eq 0 ]; then
		rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
	fi
	cluster_left && "$SIM" down "$TAG" >/dev/null 2>&1
	rm -rf "$tmp"
	echo "suite time: $((SECONDS - start)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap 'echo "interrupted"; failed=$((failed + 1)); finish' INT TERM HUP
trap finish EXIT
sys() { "$@" || { fail "setup: $*"; exit 1; }; }

# A cluster of this tag left by another run: skip if a live ciliate-sim owns it, else clean.
if [ -e "$STATE_DIR/$TAG.json" ]; then
	owner=$(jq -r '.owner.pid // empty' "$STATE_DIR/$TAG.json" 2>/dev/null)
	if [ -n "$owner" ] && [ "$(cat "/proc/$owner/comm" 2>/dev/null)" = ciliate-sim ]; then
		echo "SKIP: cluster tag $TAG is being used by ciliate-sim pid $owner (another run?)"
		rm -rf "$tmp"
		trap - EXIT
		exit 77
	fi
fi
cluster_left && "$SIM" down "$TAG" >/dev/null 2>&1

# ---- the cluster: two nodes, one pod with an echo port on node-2 -----------------------------
cat >"$tmp/cluster.yaml" <<EOF
apiVersion: sim.ciliate.dev/v1
kind: Cluster
metadata: {name: $TAG}
spec:
  nodes:
  - {name: node-1}
  - {name: node-2}
  routing: native
  encryption: none
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/12
  underlayCIDR: 192.0.2.0/24
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-2
  containers:
  - name: app
    image: echo
    ports:
    - {containerPort: 80, protocol: TCP}
EOF
timeout 60 "$SIM" up "$tmp/cluster.yaml" >"$tmp/up.log" 2>&1
rc=$?
why="rc $rc: $(tail -3 "$tmp/up.log")"
check "ciliate-sim up (2 nodes, shop/web on node-2)" [ $rc -eq 0 ]
[ $rc -eq 0 ] || exit 1
status=$("$SIM" status -o json)
web_ip=$(jq -r --arg t "$TAG" '.[] | select(.tag == $t) | .hosts[] |
	select(.kind == "pod" and .name == "shop/web") | .ip' <<<"$status")
node1_cidr=$(jq -r --arg t "$TAG" '.[] | select(.tag == $t) | .hosts[] |
	select(.kind == "node" and .name == "node-1") | .pod_cidr' <<<"$status")
why="web $web_ip, node-1 pod range $node1_cidr"
check "the cluster's status: shop/web's address and node-1's pod range" \
	[ -n "$web_ip" -a -n "$node1_cidr" ]
SOCK=/run/ciliate/$INSTANCE/agent.sock
check "node-1's agent socket $SOCK" [ -S "$SOCK" ]

# ---- podman's private configuration ------------------------------------------------------------
mkdir -p "$tmp/cni-bin" "$tmp/cni-conf" "$tmp/root" "$tmp/runroot" "$tmp/tmp" "$tmp/rootfs"
ln -s "$build/bin/ciliate-cni" "$tmp/cni-bin/ciliate-cni"
ln -s /usr/lib/cni/portmap "$tmp/cni-bin/portmap" # Debian's containernetworking-plugins
cat >"$tmp/cni-conf/ciliate.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "ciliate",
  "plugins": [
    {"type": "ciliate-cni", "agentSocket": "$SOCK"}
  ]
}
EOF
cat >"$tmp/cni-conf/ciliate-pm.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "ciliate-pm",
  "plugins": [
    {"type": "ciliate-cni", "agentSocket": "$SOCK"},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}
EOF
cat >"$tmp/containers.conf" <<EOF
[containers]
netns = "bridge"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$tmp/events.log"
runtime = "runc"
tmp_dir = "$tmp/tmp"
lock_type = "file"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$tmp/cni-bin"]
network_config_dir = "$tmp/cni-conf"
default_network = "ciliate"
EOF
cat >"$tmp/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$tmp/root"
runroot = "$tmp/runroot"
EOF
# the root file system: busybox-static and its applets, nothing else
mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc" "$tmp/rootfs/proc" "$tmp/rootfs/sys" \
	"$tmp/rootfs/dev" "$tmp/rootfs/tmp"
cp "$BUSYBOX" "$tmp/rootfs/bin/busybox"
for a in sh ip nc wget cat sleep echo httpd; do ln -s busybox "$tmp/rootfs/bin/$a"; done
mkdir -p "$tmp/rootfs/www"
echo "ciliate podman portmap $$" >"$tmp/rootfs/www/index.html"
# limits at the caller's own: podman's defaults for root (1048576 files, 4194304 processes)
# fail without CAP_SYS_RESOURCE (docs/INSTALL.md)
LIMITS=(--ulimit "nofile=1024:1024" --ulimit "nproc=1024:1024")

out=$(pd network ls --format '{{.Name}} {{.Driver}}' 2>&1)
why="$out"
check "podman (CNI backend) sees the networks ciliate and ciliate-pm (driver ciliate-cni)" \
	eval 'grep -qx "ciliate ciliate-cni" <<<"$out" && grep -qx "ciliate-pm ciliate-cni" <<<"$out"'

# ---- a container: address, routes, reach shop/web ----------------------------------------------
out=$(pd run -d --name c1 --network ciliate "${LIMITS[@]}" --rootfs "$tmp/rootfs" \
	/bin/sleep 600 2>&1)
rc=$?
cid=$(tail -1 <<<"$out")
why="rc $rc: $out"
check "podman run -d --rootfs (busybox-static) --network ciliate" [ $rc -eq 0 ]
[ $rc -eq 0 ] && cids+=("$cid")
addr=$(pd exec c1 ip -4 -o addr show dev eth0 2>&1)
c1_ip=$(grep -oE 'inet [0-9.]+/32' <<<"$addr" | cut -d' ' -f2 | cut -d/ -f1)
in_range() { # IP CIDR (a /24)
	[ "${1%.*}" = "$(cut -d/ -f1 <<<"$2" | cut -d. -f1-3)" ]
}
why="eth0: $addr; node-1's range $node1_cidr"
check "the container's eth0 has a /32 from node-1's pod range ($c1_ip in $node1_cidr)" \
	in_range "${c1_ip:-none}" "$node1_cidr"
routes=$(pd exec c1 ip -4 route 2>&1)
why="$routes"
check "the container's routes: default via 169.254.1.1, 169.254.1.1 dev eth0 scope link" \
	bash -c "grep -q '^default via 169.254.1.1 dev eth0' <<<'$routes' &&
		grep -q '^169.254.1.1 dev eth0 scope link' <<<'$routes'"
out=$(pd exec c1 sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $web_ip 80" 2>&1)
body=$(sed -n '/^{/,$p' <<<"$out" | tr -d '\r')
why="$out"
check "busybox nc from the container to shop/web:80 ($web_ip): answered by shop/web" \
	jqe '.pod == "web" and .namespace == "shop" and .node == "node-2"' <<<"$body"
check "shop/web saw the container's own address ($c1_ip): no NAT on the way" \
	jqe --arg ip "$c1_ip" '.client_ip == $ip' <<<"$body"
out=$(pd exec c1 wget -O - "http://$web_ip:80/podman" 2>/dev/null)
why="$out"
check "busybox wget http://$web_ip/podman from the container: JSON from shop/web" \
	jqe '.pod == "web" and .path == "/podman" and .method == "GET"' <<<"$out"

# ---- what the agent and the store know ---------------------------------------------------------
eps=$("$CLI" endpoint list --node "$INSTANCE" -o json 2>&1)
why="$eps"
check "ciliate endpoint list --node $INSTANCE: default/c1 at $c1_ip, ready, container id $cid" \
	jqe --arg ip "$c1_ip" --arg cid "$cid" \
	'map(select(.pod == "default/c1" and .ip == $ip and .ready and .containerID == $cid
		and .source == "cni")) | length == 1' <<<"$eps"
host_if=$(jq -r --arg ip "$c1_ip" '.[] | select(.ip == $ip) | .ifname' <<<"$eps" 2>/dev/null)
why="host veth ${host_if:-?}"
node_has_link() { nsenter --net="/run/netns/$NODE_NS" ip link show dev "$1" >/dev/null 2>&1; }
check "node-1 has the endpoint's host veth ($host_if)" node_has_link "${host_if:-none}"
ipam=$("$CLI" ipam list --store "$STORE" -o json 2>&1)
why="$ipam"
check "ciliate ipam list: node-1 allocated $c1_ip to default/c1" \
	jqe --arg ip "$c1_ip" '.[] | select(.node == "node-1") | .allocations |
		map(select(.ip == $ip and .pod == "default/c1")) | length == 1' <<<"$ipam"
netns_path=$(jq -r --arg ip "$c1_ip" '.[] | select(.ip == $ip) | .netns' <<<"$eps" 2>/dev/null)

# ---- podman rm -f: CNI DEL ---------------------------------------------------------------------
out=$(pd rm -f -t 0 c1 2>&1)
rc=$?
why="rc $rc: $out"
check "podman rm -f c1" [ $rc -eq 0 ]
eps=$("$CLI" endpoint list --node "$INSTANCE" -o json 2>&1)
why="$eps"
check "after podman rm: no endpoint at $c1_ip" \
	jqe --arg ip "$c1_ip" 'map(select(.ip == $ip)) | length == 0' <<<"$eps"
ipam=$("$CLI" ipam list --store "$STORE" -o json 2>&1)
why="$ipam"
check "after podman rm: $c1_ip released (no allocation on node-1)" \
	jqe --arg ip "$c1_ip" '[.[] | .allocations[]? | select(.ip == $ip)] | length == 0' <<<"$ipam"
why="$(nsenter --net="/run/netns/$NODE_NS" ip -br link 2>&1)"
check "after podman rm: the host veth $host_if is gone" eval "! node_has_link '${host_if:-none}'"
why="${netns_path:-no netns recorded}"
check "after podman rm: podman's network namespace is gone" \
	[ -n "$netns_path" -a ! -e "${netns_path:-/nonexistent}" ]

# ---- again: a second container gets an address and reaches shop/web ------------------------
out=$(pd run --rm --name c2 --network ciliate "${LIMITS[@]}" --rootfs "$tmp/rootfs" \
	/bin/sh -c "ip -4 -o addr show dev eth0; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $web_ip 80" 2>&1)
rc=$?
c2_ip=$(grep -oE 'inet [0-9.]+/32' <<<"$out" | cut -d' ' -f2 | cut -d/ -f1)
why="rc $rc: $out"
check "podman run --rm c2: an address from node-1's range ($c2_ip), shop/web answers" \
	bash -c "[ $rc -eq 0 ] && [ '${c2_ip%.*}' = '${c1_ip%.*}' ] && grep -q '\"pod\":\"web\"' <<<'$out'"
eps=$("$CLI" endpoint list --node "$INSTANCE" -o json 2>&1)
why="$eps"
check "after run --rm: no container endpoint left on node-1" \
	jqe 'map(select(.source == "cni" and (.pod | startswith("default/")))) | length == 0' <<<"$eps"
left=$(pd ps -a -q 2>&1)
why="$left"
check "podman ps -a: no container left" [ -z "$left" ]

# ---- podman run -p: portmap after ciliate-cni, given the mappings by podman ----------------------
out=$(pd run -d --name web2 --network ciliate-pm -p 8080:80 "${LIMITS[@]}" --rootfs "$tmp/rootfs" \
	/bin/httpd -f -p 80 -h /www 2>&1)
rc=$?
cid2=$(tail -1 <<<"$out")
why="rc $rc: $out"
check "podman run -d --network ciliate-pm -p 8080:80 (busybox httpd)" [ $rc -eq 0 ]
[ $rc -eq 0 ] && cids+=("$cid2")
nat=$(nsenter --net="/run/netns/$NODE_NS" iptables -t nat -S 2>/dev/null)
nat_has() { grep -qF -- "$1" <<<"$nat"; }
why="$nat"
check "portmap's DNAT of 8080 in node-1, named by the container id" \
	eval 'nat_has "$cid2" && nat_has "--dport 8080 -j DNAT"'
page=""
for i in $(seq 20); do # httpd starts with the container; give it a moment
	page=$(timeout 5 nsenter --net="/run/netns/cil-$TAG-node-2" \
		curl -s -m 2 http://192.0.2.1:8080/index.html 2>&1) && [ -n "$page" ] && break
	sleep 0.2
done
why="$page"
check "node-2 -> node-1's 192.0.2.1:8080: the container's httpd answers" \
	[ "$page" = "ciliate podman portmap $$" ]
out=$(pd rm -f -t 0 web2 2>&1)
rc=$?
nat=$(nsenter --net="/run/netns/$NODE_NS" iptables -t nat -S 2>/dev/null)
eps=$("$CLI" endpoint list --node "$INSTANCE" -o json 2>&1)
why="rc $rc: $out; nat: $nat; endpoints: $eps"
check "podman rm -f web2: portmap's rules and the endpoint are gone" \
	eval '[ $rc -eq 0 ] && ! nat_has "$cid2" && ! nat_has "--dport 8080 -j DNAT" && jqe "length == 0" <<<"$eps"'
