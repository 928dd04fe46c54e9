# Shared helpers for the shell test suites (source it; the suite owns `passed`, `failed`).
#   pass NAME / fail NAME [WHY]  record one check
#   check NAME COMMAND...        passes when COMMAND succeeds; a failing check reports $why
pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1${2:+: $2}"; }
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "${why:-}"; fi
	why=""
}
