# Sourced by the simulator benches (tests/bench/bench_dsr_bytes.sh, bench_egress_rate.sh):
# run from the repository root, as root (a SKIP line and exit 0 otherwise), with the built
# simulator and probe ($SIM, $PROBE: absolute paths) and jq. Exits 1 when the bench cannot run.
sim_bench_prepare() { # BUILD_DIR
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: the simulator needs root (network namespaces)"
		exit 0
	fi
	SIM=$(readlink -f "$1/bin/ciliate-sim")
	PROBE=$(readlink -f "$1/bin/ciliate-probe")
	for b in "$SIM" "$PROBE"; do
		[ -x "$b" ] || { echo "FAIL: $b is missing (run make first)"; exit 1; }
	done
	command -v jq >/dev/null || { echo "FAIL: jq is needed"; exit 1; }
}
