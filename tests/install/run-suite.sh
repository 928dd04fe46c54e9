#!/usr/bin/env bash
# Install suite (docs/INSTALL.md): `make install` into a temporary DESTDIR and the tree it
# leaves: every path of `make install-paths` and nothing else, modes, symlink targets, the
# CNI network configuration list (valid JSON that the installed ciliate-cni parses), the
# environment file, the systemd units (systemd-analyze verify on a second install whose
# paths are real, under a temporary PREFIX; without systemd-analyze the keys are checked) and
# that every flag a unit passes is one its binary documents, `--help` of every installed
# binary, then `make uninstall` leaves no file behind.
# As root it also runs the installed pieces as installed: the agent started with the unit's
# ExecStart (variables from the installed environment file) inside a network namespace this
# suite creates, the installed ciliate-cni with the installed conflist against it, and the
# installed ciliate-sim (which finds its helpers through LIBEXECDIR) bringing up and removing
# a one-node cluster. The root namespace is never touched; everything is removed on exit.
# Usage: run-suite.sh BUILD_DIR. Exit 0 pass, 1 fail.
set -uo pipefail

build=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
for b in ciliate ciliate-agent ciliate-operator ciliate-cni ciliate-sim ciliate-echo ciliate-probe; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL: $build/bin/$b is missing (run make first)"
		exit 1
	fi
done
for t in make jq; do
	if ! command -v $t >/dev/null; then
		echo "SKIP: $t is not installed (bash ci/install-deps.sh)"
		exit 77
	fi
done

tmp=$(mktemp -d /tmp/ciliate-t-install.XXXXXX)
passed=0
failed=0
why=""
start=$SECONDS
NODE=cil-t-inst$$  # the node name of the root-only part: /run/ciliate/$NODE, its pins, its netns
NS=$NODE
agent_pid=""
sim_up=0
SIM_TAG=instsim
source tests/lib/suite.sh # pass / fail / check (cwd is the repository root)
jqe() { jq -e "$@" >/dev/null 2>&1; } # a jq condition, quietly

finish() {
	trap - EXIT INT TERM HUP
	local p i
	if [ -n "$agent_pid" ]; then
		kill -TERM "$agent_pid" 2>/dev/null
		for i in $(seq 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$agent_pid" 2>/dev/null
		wait "$agent_pid" 2>/dev/null
	fi
	[ $sim_up -eq 1 ] && "$tmp/p/bin/ciliate-sim" down "$SIM_TAG" >/dev/null 2>&1
	if ip netns list 2>/dev/null | grep -qw "^$NS"; then
		for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$NS" 2>/dev/null
	fi
	if [ -d "/sys/fs/bpf/ciliate/$NODE" ]; then
		rm -f "/sys/fs/bpf/ciliate/$NODE"/* 2>/dev/null
		rmdir "/sys/fs/bpf/ciliate/$NODE" 2>/dev/null
	fi
	rm -rf "/run/ciliate/$NODE"
	rm -rf "$tmp"
	echo "suite time: $((SECONDS - start)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap 'echo "interrupted"; failed=$((failed + 1)); finish' INT TERM HUP
trap finish EXIT

# ---- 1. make install DESTDIR=... (the default paths, staged) --------------------------------
dest=$tmp/dest
mkdir -p "$dest"
# -o: install what `make` built (this suite checks the install rules, not the build)
NOBUILD=()
for b in ciliate ciliate-agent ciliate-operator ciliate-cni ciliate-sim ciliate-echo ciliate-probe; do
	NOBUILD+=(-o "$build/bin/$b")
done
VARS=("${NOBUILD[@]}" BUILD="$build" NODE_NAME=node-7 STORE=etcd://192.0.2.10:2379)
make -s --no-print-directory "${VARS[@]}" install DESTDIR="$dest" >"$tmp/install.log" 2>&1
rc=$?
why="rc $rc: $(tail -3 "$tmp/install.log")"
check "make install DESTDIR=$dest" [ $rc -eq 0 ]
mapfile -t paths < <(make -s --no-print-directory "${VARS[@]}" install-paths)
check "make install-paths lists the tree (${#paths[@]} paths)" [ ${#paths[@]} -ge 20 ]

# every listed path, and nothing else (files and symlinks)
missing=""
for p in "${paths[@]}"; do
	[ -e "$dest$p" ] || [ -L "$dest$p" ] || missing="$missing $p"
done
why="missing:$missing"
check "every installed path exists" [ -z "$missing" ]
extra=$(cd "$dest" && find . ! -type d | sed 's|^\.||' | sort | comm -23 - <(printf '%s\n' "${paths[@]}" | sort))
why="not in install-paths: $extra"
check "nothing installed outside install-paths" [ -z "$extra" ]

# mode [-L TARGET] PATH MODE: a regular file with MODE, or a symlink to TARGET
mode_is() {
	local m
	m=$(stat -c %a "$dest$1" 2>/dev/null)
	why="$1: mode $m, want $2"
	[ -f "$dest$1" ] && [ ! -L "$dest$1" ] && [ "$m" = "$2" ]
}
link_is() {
	local l
	l=$(readlink "$dest$1")
	why="$1 -> $l, want -> $2"
	[ -L "$dest$1" ] && [ "$l" = "$2" ]
}
for b in ciliate ciliate-agent ciliate-operator; do
	check "/usr/local/bin/$b 0755" mode_is /usr/local/bin/$b 755
	check "libexec/ciliate/$b -> /usr/local/bin/$b" link_is /usr/local/libexec/ciliate/$b /usr/local/bin/$b
done
for b in ciliate-sim ciliate-echo ciliate-probe; do
	check "libexec/ciliate/$b 0755" mode_is /usr/local/libexec/ciliate/$b 755
done
check "/usr/local/bin/ciliate-sim -> libexec" link_is /usr/local/bin/ciliate-sim /usr/local/libexec/ciliate/ciliate-sim
check "/opt/cni/bin/ciliate-cni 0755 (CNI_BIN_DIR)" mode_is /opt/cni/bin/ciliate-cni 755
check "libexec/ciliate/ciliate-cni -> /opt/cni/bin/ciliate-cni" link_is /usr/local/libexec/ciliate/ciliate-cni /opt/cni/bin/ciliate-cni
for f in /etc/cni/net.d/05-ciliate.conflist /etc/default/ciliate \
	/usr/local/lib/systemd/system/ciliate-agent.service \
	/usr/local/lib/systemd/system/ciliate-operator.service /usr/local/share/doc/ciliate/INSTALL.md; do
	check "$f 0644" mode_is "$f" 644
done
check "installed binaries are the built ones" cmp -s "$build/bin/ciliate-agent" "$dest/usr/local/bin/ciliate-agent"
leftover=$(grep -rl '@[A-Z_]*@' "$dest/etc" "$dest/usr/local/lib/systemd" 2>/dev/null)
why="unreplaced @VAR@ in $leftover"
check "no @VAR@ left in the installed text files" [ -z "$leftover" ]

# ---- 2. the CNI network configuration list ---------------------------------------------------
conflist=$dest/etc/cni/net.d/05-ciliate.conflist
why="$(jq . "$conflist" 2>&1 | tail -2)"
check "conflist is valid JSON" jqe . "$conflist"
check "conflist: name ciliate, one plugin ciliate-cni, agentSocket of NODE_NAME" \
	jqe '.name == "ciliate" and (.cniVersion | type) == "string" and
		.plugins[0].type == "ciliate-cni" and
		.plugins[0].agentSocket == "/run/ciliate/node-7/agent.sock"' "$conflist"
# the plugin's configuration as a runtime builds it from the list (name, cniVersion added)
plugin_conf() { jq -c '.name as $n | .cniVersion as $v | .plugins[0] + {name: $n, cniVersion: $v}' "$1"; }
cni_installed=$dest/opt/cni/bin/ciliate-cni
ver=$(jq -r .cniVersion "$conflist")
out=$(plugin_conf "$conflist" | CNI_COMMAND=VERSION "$cni_installed")
why="$out"
check "installed ciliate-cni VERSION accepts the conflist's cniVersion $ver" \
	jqe --arg v "$ver" '.cniVersion == $v and (.supportedVersions | index($v))' <<<"$out"
# DEL parses the whole configuration before it asks the agent: with no agent at the
# configured socket the answer is "agent not reachable" (11), not a configuration error (6, 7)
out=$(plugin_conf "$conflist" | env -i PATH="$PATH" CNI_COMMAND=DEL CNI_CONTAINERID=inst-test \
	CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin "$cni_installed" 2>/dev/null)
why="$out"
check "installed ciliate-cni DEL parses the conflist (no agent: code 11, not 6/7)" \
	jqe '.code == 11' <<<"$out"

# ---- 3. the environment file -----------------------------------------------------------------
has_lines() { # TEXT LINE...: every LINE is a whole line of TEXT
	local text=$1 l
	shift
	for l in "$@"; do grep -qxF -- "$l" <<<"$text" || { why="no line '$l' in: $text"; return 1; }; done
}
envf=$dest/etc/default/ciliate
envout=$(env -i bash -euc "set -a; . '$envf'; env" 2>&1)
check "env file sources cleanly; CILIATE_STORE=STORE, CILIATE_NODE=NODE_NAME, *_OPTS" \
	has_lines "$envout" CILIATE_STORE=etcd://192.0.2.10:2379 CILIATE_NODE=node-7 \
	CILIATE_AGENT_OPTS= CILIATE_OPERATOR_OPTS=

# ---- 4. the systemd units ----------------------------------------------------------------------
unitdir=$dest/usr/local/lib/systemd/system
# unit_key UNIT SECTION KEY: the values of KEY in [SECTION], one per line
unit_key() {
	awk -v sec="[$2]" -v key="$3" '
		/^\[/ { in_sec = ($0 == sec); next }
		in_sec && index($0, key "=") == 1 { print substr($0, length(key) + 2) }' "$1"
}
# exec_flags_ok UNIT BINARY: ExecStart runs BINDIR/BINARY, every --flag is in its --help,
# every $VAR/${VAR} it uses has a default (Environment=) or a value in the env file
exec_flags_ok() {
	local u=$1 bin=$2 line w v help
	local -a words
	line=$(unit_key "$u" Service ExecStart)
	read -ra words <<<"$line"
	if [ "${words[0]:-}" != "/usr/local/bin/$bin" ]; then
		why="ExecStart runs ${words[0]:-nothing}, want /usr/local/bin/$bin"
		return 1
	fi
	help=$("$dest/usr/local/bin/$bin" --help 2>&1)
	for w in "${words[@]:1}"; do
		case $w in
		--*) grep -q -- "$w\b" <<<"$help" || { why="$bin --help does not name $w"; return 1; } ;;
		\$*)
			v=${w#\$}
			v=${v#\{}
			v=${v%\}}
			if ! unit_key "$u" Service Environment | grep -q "^$v=" && ! grep -q "^$v=" "$envf"; then
				why="ExecStart uses \$$v, which neither Environment= nor the env file sets"
				return 1
			fi
			;;
		*)
			why="ExecStart word '$w' is neither a flag nor a variable"
			return 1
			;;
		esac
	done
}
unit_keys_ok() { # UNIT
	why="$(cat "$1")"
	[ -n "$(unit_key "$1" Unit Description)" ] &&
		[ "$(unit_key "$1" Service EnvironmentFile)" = -/etc/default/ciliate ] &&
		[ "$(unit_key "$1" Service Restart)" = on-failure ] &&
		[ "$(unit_key "$1" Install WantedBy)" = multi-user.target ]
}
for u in ciliate-agent ciliate-operator; do
	f=$unitdir/$u.service
	check "$u.service: Description, EnvironmentFile=-/etc/default/ciliate, Restart, WantedBy" \
		unit_keys_ok "$f"
	check "$u.service: ExecStart passes only flags $u documents, its variables all set" \
		exec_flags_ok "$f" "$u"
done

# a second install with real paths (PREFIX and every directory under $tmp), which
# systemd-analyze verify can check (it resolves ExecStart) and the root part below runs
real=$tmp/p
RVARS=("${NOBUILD[@]}" BUILD="$build" PREFIX="$real" CNI_BIN_DIR="$tmp/cni/bin" CNI_CONF_DIR="$tmp/cni/net.d"
	ENV_FILE="$tmp/etc/default/ciliate" NODE_NAME="$NODE" STORE="file://$tmp/store")
make -s --no-print-directory "${RVARS[@]}" install >"$tmp/install2.log" 2>&1
rc=$?
why="rc $rc: $(tail -3 "$tmp/install2.log")"
check "make install PREFIX=$real (every path under the temporary directory)" [ $rc -eq 0 ]
if command -v systemd-analyze >/dev/null; then
	for u in ciliate-agent ciliate-operator; do
		out=$(systemd-analyze verify --man=no "$real/lib/systemd/system/$u.service" 2>&1)
		rc=$?
		why="rc $rc: $out"
		check "systemd-analyze verify $u.service" [ $rc -eq 0 -a -z "$out" ]
	done
else
	echo "note - systemd-analyze is not installed: the units' keys were checked above instead"
fi

# ---- 5. --help of every installed binary -------------------------------------------------------
# options FILE...: the long options of the getopt_long tables in FILE (help excluded)
options() {
	cat "$@" | grep -oE '\{ *"[a-z][a-z0-9-]*", *(required|no|optional)_argument' |
		grep -oE '"[a-z0-9-]+"' | tr -d '"' | grep -vx help | sort -u
}
help_names_all() { # BINARY SOURCE...: --help exits 0 and names every long option of SOURCE
	local bin=$1 h o missing=""
	shift
	h=$("$bin" --help 2>/dev/null </dev/null) || { why="$bin --help exits non-zero"; return 1; }
	for o in $(options "$@"); do
		grep -q -- "--$o\b" <<<"$h" || missing="$missing --$o"
	done
	why="$(basename "$bin") --help does not name:$missing"
	[ -z "$missing" ]
}
has_sections() { # BINARY SECTION...: --help exits 0 and has each SECTION as a line start
	local h s
	h=$("$1" --help 2>/dev/null </dev/null) || { why="$1 --help exits non-zero"; return 1; }
	shift
	for s in "$@"; do
		grep -q "^$s" <<<"$h" || { why="no section $s"; return 1; }
	done
}
has_words() { # BINARY WORD...: --help names each WORD
	local h s
	h=$("$1" --help 2>/dev/null </dev/null) || { why="$1 --help exits non-zero"; return 1; }
	shift
	for s in "$@"; do
		grep -q -- "$s" <<<"$h" || { why="--help does not name $s"; return 1; }
	done
}
libexec=$dest/usr/local/libexec/ciliate
for pair in ciliate-echo:sim/echo/echo_config.c ciliate-probe:sim/probe/probe.c; do
	b=${pair%%:*}
	check "$b --help: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, EXIT STATUS" \
		has_sections "$libexec/$b" NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS'
	check "$b --help names every flag" help_names_all "$libexec/$b" "${pair#*:}"
done
check "ciliate-cni --help: NAME, SYNOPSIS, DESCRIPTION, NETWORK CONFIGURATION, ENVIRONMENT, EXIT STATUS" \
	has_sections "$cni_installed" NAME SYNOPSIS DESCRIPTION 'NETWORK CONFIGURATION' \
	ENVIRONMENT 'EXIT STATUS'
check "ciliate-cni --help names every configuration key, CNI_ARGS key and command" \
	has_words "$cni_installed" agentSocket mtu ipam prevResult K8S_POD_NAMESPACE K8S_POD_NAME \
	K8S_POD_UID K8S_POD_INFRA_CONTAINER_ID IgnoreUnknown CILIATE_AGENT_SOCKET \
	ADD DEL CHECK STATUS GC VERSION
for pair in ciliate-agent:datapath/agent/main.c ciliate-operator:datapath/operator/main.c; do
	b=${pair%%:*}
	check "$b --help names every flag" help_names_all "$dest/usr/local/bin/$b" "${pair#*:}"
done
check "ciliate --help names its commands" has_words "$dest/usr/local/bin/ciliate" usage replay \
	apply delete endpoint status version
check "ciliate-sim --help names its commands" has_words "$dest/usr/local/libexec/ciliate/ciliate-sim" \
	usage up down run exec status capture

# ---- 6. make uninstall ---------------------------------------------------------------------------
make -s --no-print-directory "${VARS[@]}" uninstall DESTDIR="$dest" >"$tmp/uninstall.log" 2>&1
rc=$?
left=$(cd "$dest" && find . ! -type d | sed 's|^\.||')
why="rc $rc; left: $left"
check "make uninstall DESTDIR=$dest leaves no file or symlink" [ $rc -eq 0 -a -z "$left" ]
why="$(cd "$dest" && find . -type d)"
check "make uninstall removes libexec/ciliate and share/doc/ciliate" \
	[ ! -e "$dest/usr/local/libexec/ciliate" -a ! -e "$dest/usr/local/share/doc/ciliate" ]
make -s --no-print-directory "${VARS[@]}" uninstall DESTDIR="$dest" >/dev/null 2>&1
check "make uninstall again (nothing installed): exit 0" [ $? -eq 0 ]

# ---- 7. root: the installed pieces, run as installed -------------------------------------------
if [ "$(id -u)" -ne 0 ] || ! command -v nsenter >/dev/null; then
	echo "SKIP - running the installed agent, ciliate-cni and ciliate-sim needs root and nsenter"
	exit 0 # finish reports
fi
sys() { "$@" || { fail "setup: $*"; exit 1; }; }
sys ip netns add "$NS"
sys ip -n "$NS" link set lo up
# the agent's command line as systemd builds it from the installed unit: Environment=
# defaults (%H: the host name), then the env file; ${VAR} is one word, $VAR splits on spaces
unit=$real/lib/systemd/system/ciliate-agent.service
agent_cmd=$(
	while IFS= read -r kv; do export "${kv//%H/$(hostname)}"; done < <(unit_key "$unit" Service Environment)
	set -a
	. "$tmp/etc/default/ciliate"
	set +a
	line=$(unit_key "$unit" Service ExecStart)
	line=$(sed -E 's/\$\{([A-Z_]+)\}/"${\1}"/g' <<<"$line")
	eval "set -- $line"
	printf '%q ' "$@"
)
why="$agent_cmd"
check "the agent unit's ExecStart, expanded: --node $NODE --store file://$tmp/store" \
	grep -qF -- "--node $NODE --store file://$tmp/store" <<<"$agent_cmd"
eval "nsenter --net=/run/netns/$NS $agent_cmd" 2>"$tmp/agent.log" &
agent_pid=$!
sock=$(jq -r '.plugins[0].agentSocket' "$tmp/cni/net.d/05-ciliate.conflist")
for i in $(seq 100); do
	[ -S "$sock" ] && break
	kill -0 "$agent_pid" 2>/dev/null || break
	sleep 0.1
done
why="$(tail -5 "$tmp/agent.log")"
check "the installed agent serves the conflist's agentSocket $sock" [ -S "$sock" ]

icni() { # COMMAND CONTAINERID NETNS: the installed plugin with the installed conflist's config
	plugin_conf "$tmp/cni/net.d/05-ciliate.conflist" |
		nsenter --net="/run/netns/$NS" env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID="$2" \
			CNI_NETNS="$3" CNI_IFNAME=eth0 CNI_PATH="$tmp/cni/bin" \
			CNI_ARGS="K8S_POD_NAMESPACE=inst;K8S_POD_NAME=c1" "$tmp/cni/bin/ciliate-cni" \
			2>>"$tmp/cni.log"
}
sys ip netns add "$NS-c"
out=$(icni ADD inst-c1 "/run/netns/$NS-c")
rc=$?
ip=$(jq -r '.ips[0].address // empty' <<<"$out" 2>/dev/null)
why="rc $rc: $out $(tail -3 "$tmp/cni.log")"
check "installed ciliate-cni ADD with the installed conflist: an address (${ip:-none})" \
	[ $rc -eq 0 -a -n "$ip" ]
eps=$("$real/bin/ciliate" endpoint list --node "$NODE" -o json 2>&1)
why="$eps"
check "installed ciliate endpoint list --node $NODE shows inst/c1 at ${ip%/*}" \
	jqe --arg ip "${ip%/*}" 'map(select(.pod == "inst/c1" and .ip == $ip and .ready)) | length == 1' \
	<<<"$eps"
out=$(icni DEL inst-c1 "/run/netns/$NS-c")
rc=$?
eps=$("$real/bin/ciliate" endpoint list --node "$NODE" -o json 2>&1)
why="rc $rc: $out; endpoints: $eps"
check "installed ciliate-cni DEL: exit 0, endpoint gone" \
	jqe --argjson rc $rc '$rc == 0 and length == 0' <<<"$eps"
ip netns del "$NS-c"

# the installed simulator finds ciliate-agent, ciliate-cni, ciliate-echo and ciliate-probe
# through LIBEXECDIR (its own directory): a one-node cluster with one pod
cat >"$tmp/one.yaml" <<YAML
apiVersion: sim.ciliate.dev/v1
kind: Cluster
metadata: {name: $SIM_TAG}
spec:
  nodes:
  - {name: node-1}
  routing: native
  encryption: none
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/12
  underlayCIDR: 192.0.2.0/24
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: default, labels: {app: a}}
spec:
  nodeName: node-1
  containers:
  - {name: app, image: echo, ports: [{containerPort: 80, protocol: TCP}]}
YAML
if [ -e "/run/ciliate/sim/$SIM_TAG.json" ] || ip netns list | grep -q "^cil-$SIM_TAG-"; then
	"$real/bin/ciliate-sim" down "$SIM_TAG" >/dev/null 2>&1
fi
sim_up=1
timeout 60 "$real/bin/ciliate-sim" up "$tmp/one.yaml" >"$tmp/sim.log" 2>&1
rc=$?
why="rc $rc: $(tail -3 "$tmp/sim.log")"
check "installed ciliate-sim up (its helpers found in LIBEXECDIR)" [ $rc -eq 0 ]
pod_ip=$("$real/bin/ciliate-sim" status -o json 2>/dev/null |
	jq -r --arg t "$SIM_TAG" '.[] | select(.tag == $t) | .hosts[] | select(.kind == "pod") | .ip' |
	head -1)
out=$(timeout 20 "$real/bin/ciliate-sim" exec -c "$SIM_TAG" node-1 -- \
	"$real/libexec/ciliate/ciliate-probe" --to "${pod_ip:-10.244.0.10}" --port 80 -o json 2>&1)
why="$out"
check "a probe from node-1 is answered by the pod default/a (${pod_ip:-10.244.0.10})" \
	jqe -s '.[0].reply.pod == "a"' <<<"$out"
"$real/bin/ciliate-sim" down "$SIM_TAG" >"$tmp/down.log" 2>&1
rc=$?
sim_up=0
why="rc $rc: $(tail -2 "$tmp/down.log")"
check "installed ciliate-sim down" [ $rc -eq 0 ]
