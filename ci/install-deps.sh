#!/usr/bin/env bash
# Installs the Debian packages ciliate needs to build and test. Idempotent: does nothing
# (and touches no network) when everything is already installed.
set -euo pipefail

PKGS=(clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libpcap-dev
      libcmocka-dev libyaml-dev libjansson-dev iproute2 tcpdump libmnl-dev)
# socat: raw requests to an agent's socket (tests/cni: endpoint-add batching); jq: reading
# reports and flow logs in the suites (tests/sim evidence, tests/identity)
PKGS+=(socat jq)
# nft and conntrack: the nftables side of tests/bench/bench_policy_nft (docs/PERFORMANCE.md)
PKGS+=(nftables conntrack)
# iptables (iptables-restore): kube-proxy's rules in tests/bench/bench_lb_control (docs/PERFORMANCE.md)
PKGS+=(iptables)
# curl and an independent exposition parser: scraping the agents' /metrics (tests/metrics)
PKGS+=(curl python3 python3-prometheus-client)
# chromium and a font: the flow page rendered headless, DOM checks and screenshot (tests/flowpage)
PKGS+=(chromium fonts-dejavu-core)
# tshark: an independent decoder checks the service/NAT replay goldens' addresses, ports and
# checksums (tests/replay/run-suite.sh)
PKGS+=(tshark)
# WireGuard: wireguard-go runs each simulated node's device (this kernel has no wireguard
# module), wg reads it back in the tests; libssl-dev: X25519 keys in the agent (docs/ENCRYPTION.md)
PKGS+=(wireguard-go wireguard-tools libssl-dev)
# libcurl and etcd: the store's etcd v3 backend (JSON gateway over libcurl) and a real etcd
# on loopback for tests/store-etcd, openssl for its test CA (docs/STORE.md)
PKGS+=(libcurl4-openssl-dev etcd-server etcd-client openssl)
# podman (CNI network backend; runc: Debian's crun refuses cgroup v1/v2 hybrid hosts), the
# reference CNI plugins (tuning, bandwidth, portmap) and busybox-static (the containers' root
# file system): real CNI clients of ciliate-cni in tests/podman and tests/cni-chain (docs/INSTALL.md)
PKGS+=(podman runc containernetworking-plugins busybox-static)
if [ "${1:-}" = "--kernels" ]; then
	shift
	PKGS+=(qemu-system-x86 busybox-static cpio zstd kmod)
fi
PKGS+=("$@")

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]} (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
