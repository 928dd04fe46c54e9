# Running scenario files under the simulator in both routing modes side by side, and the
# checks every such suite makes of each mode's report (source after tests/lib/suite.sh).
#   sim_modes_run SIM TMP FILE...   `ciliate-sim run --routing MODE FILE... --report
#                                   TMP/MODE.json` for tunnel and native at once (each mode
#                                   gets its own cluster tags); output in TMP/MODE.out, exit
#                                   status in sim_mode_rc[MODE]
#   sim_mode_checks MODE TMP MIN    the run exited 0, its report holds more than MIN checks,
#                                   none failed, every expected deny is proven by the
#                                   datapath's drop event, the clusters ran in MODE routing
declare -A sim_mode_rc
sim_modes_pids=()

sim_modes_run() {
	local sim=$1 tmp=$2 mode
	shift 2
	sim_modes_pids=()
	# ciliate-sim tears its clusters down on SIGINT/SIGTERM
	trap 'for p in "${sim_modes_pids[@]}"; do kill -INT "$p" 2>/dev/null; done; wait; rm -rf "$tmp"; exit 1' INT TERM HUP
	for mode in tunnel native; do
		"$sim" run --routing "$mode" "$@" --report "$tmp/$mode.json" >"$tmp/$mode.out" 2>&1 &
		sim_modes_pids+=($!)
	done
	wait "${sim_modes_pids[0]}"
	sim_mode_rc[tunnel]=$?
	wait "${sim_modes_pids[1]}"
	sim_mode_rc[native]=$?
}

# (dynamic scope: sees sim_mode_checks' locals)
sim_all_proven() { [ "${denies:-0}" -gt 0 ] && [ "$denies" = "$proven" ]; }

sim_mode_checks() {
	local mode=$1 tmp=$2 min=$3 rep=$2/$1.json total nfail denies proven
	grep -E '^[0-9]+ check\(s\)' "$tmp/$mode.out" | sed "s/^/  $mode: /"
	why="exit ${sim_mode_rc[$mode]}; $(sed -n '/^failed checks:/,/^$/p' "$tmp/$mode.out" | head -8)"
	check "$mode: ciliate-sim run exits 0" [ "${sim_mode_rc[$mode]}" -eq 0 ]
	total=$(jq -r '.checks_total' "$rep" 2>/dev/null)
	nfail=$(jq -r '.failed' "$rep" 2>/dev/null)
	why="report says ${total:-?} checks"
	check "$mode: report holds the checks (> $min)" [ "${total:-0}" -gt "$min" ]
	why="${nfail:-?} failed"
	check "$mode: no check failed" [ "${nfail:-1}" -eq 0 ]
	# every deny is proven by the datapath's drop event of its own flow
	denies=$(jq -r '.denials.expected' "$rep" 2>/dev/null)
	proven=$(jq -r '.denials.proven_by_drop_event' "$rep" 2>/dev/null)
	why="${proven:-?} of ${denies:-?} denials proven"
	check "$mode: every denial proven by its drop event ($proven of $denies)" sim_all_proven
	why="no '[3/5] routing $mode' line"
	check "$mode: clusters came up in $mode routing" grep -q "routing $mode" "$tmp/$mode.out"
}
