#!/usr/bin/env bash
# Kernel smoke suite for `make test`: boots one Debian kernel under qemu and loads every
# BPF program in it (ci/kernel-matrix --smoke). With CILIATE_KERNELS=1 it runs the full
# kernel matrix instead (slow). Skips (77) when qemu or the kernel package cannot be
# obtained. Usage: run-suite.sh [BUILD]
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."

if ! bash ci/install-deps.sh --kernels >&2; then
	echo "SKIP: cannot install qemu-system-x86/busybox-static/cpio/kmod (bash ci/install-deps.sh --kernels)"
	exit 77
fi
if [ ! -x "$build/static/bin/ciliate-verify" ]; then
	echo "kernel-smoke: building $build/static/bin/ciliate-verify" >&2
	make -s BUILD="$build" static-tests >&2
fi

if [ "${CILIATE_KERNELS:-0}" = 1 ]; then
	echo "kernel-smoke: CILIATE_KERNELS=1: running the full kernel matrix" >&2
	exec bash ci/kernel-matrix -b "$build" -o json
fi
echo "kernel-smoke: one kernel, verifier only (CILIATE_KERNELS=1 runs the full matrix)" >&2
rc=0
bash ci/kernel-matrix -b "$build" --smoke || rc=$?
[ "$rc" -eq 77 ] && echo "SKIP: no kernel column could run (see the reason above)"
exit "$rc"
