# Shared helpers for the shell test suites (source it; the suite owns `passed`, `failed`).
#   pass NAME / fail NAME [WHY]  record one check
#   check NAME COMMAND...        passes when COMMAND succeeds; a failing check reports $why
#   shared_missing NAME PATH     a check that needs PATH of ../shared ($CILIATE_SHARED) cannot
#                                run: under CI=true it fails, elsewhere it prints a SKIP line;
#                                it never vanishes silently
pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1${2:+: $2}"; }
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "${why:-}"; fi
	why=""
}
shared_missing() {
	if [ "${CI:-}" = true ]; then
		fail "$1" "$2 is missing (../shared beside the repository, or CILIATE_SHARED); under CI=true a missing input fails instead of skipping"
	else
		echo "SKIP - $1: $2 is missing (../shared, or CILIATE_SHARED); under CI=true this fails"
	fi
}
