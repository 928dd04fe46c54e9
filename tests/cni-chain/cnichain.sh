#!/usr/bin/env bash
# cnichain.sh: a small CNI runtime for one network configuration list, doing what libcni's
# AddNetworkList / DelNetworkList / CheckNetworkList do (CNI spec, "Section 4: Plugin
# Delegation" and "Section 5: Result Types" / network configuration list execution):
#   ADD   every plugin in order; each gets the list's name and cniVersion, its own keys,
#         runtimeConfig for the capabilities it declares, and the previous plugin's result
#         as prevResult (none for the first); the last result is printed and cached.
#   CHECK every plugin in order with the cached result as prevResult.
#   DEL   every plugin in reverse order with the cached result as prevResult (if any);
#         the cache is removed afterwards.
# The runtime configuration (capability arguments such as portMappings, bandwidth) goes to
# every command as libcni passes it; CHECK and DEL without one reuse the one ADD cached
# (portmap removes its rules on DEL only when it is given the mappings again).
# Usage: cnichain.sh ADD|CHECK|DEL CONFLIST CONTAINER_ID NETNS IFNAME [RUNTIME_CONFIG_JSON]
# Environment: CNI_PATH (plugin directories, ':'-separated), CNI_ARGS (passed as is),
# CNICHAIN_CACHE (directory for the cached ADD result; required).
# Exit: 0 ok; otherwise the failing plugin's exit status, with its error object on stdout.
set -uo pipefail

if [ $# -lt 5 ]; then
	echo "usage: cnichain.sh ADD|CHECK|DEL CONFLIST CONTAINER_ID NETNS IFNAME [RUNTIME_CONFIG_JSON]" >&2
	exit 2
fi
cmd=$1 conflist=$2 cid=$3 netns=$4 ifname=$5 rtconf=${6:-}
: "${CNI_PATH:?CNI_PATH is required}" "${CNICHAIN_CACHE:?CNICHAIN_CACHE is required}"
name=$(jq -er .name "$conflist") || { echo "cnichain: $conflist: no name" >&2; exit 1; }
ver=$(jq -er .cniVersion "$conflist") || { echo "cnichain: $conflist: no cniVersion" >&2; exit 1; }
n=$(jq -er '.plugins | length' "$conflist") || { echo "cnichain: $conflist: no plugins" >&2; exit 1; }
cache=$CNICHAIN_CACHE/$name-$cid-$ifname.json
if [ -z "$rtconf" ]; then
	rtconf=$(jq -c '.runtimeConfig // {}' "$cache" 2>/dev/null) || rtconf='{}'
fi

find_plugin() { # TYPE: the first executable CNI_PATH/TYPE
	local d
	IFS=: read -ra dirs <<<"$CNI_PATH"
	for d in "${dirs[@]}"; do
		[ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}

# conf I PREV: plugin I's configuration as the spec builds it (prevResult omitted when PREV
# is empty; runtimeConfig holds only the capabilities the plugin declares as true)
conf() {
	jq -c --argjson i "$1" --arg name "$name" --arg ver "$ver" --argjson rt "$rtconf" \
		--arg prev "$2" '
		.plugins[$i] as $p
		| ($p.capabilities // {} | with_entries(select(.value == true)) | keys) as $caps
		| ($rt | with_entries(select(.key as $k | $caps | index($k)))) as $r
		| $p | del(.capabilities)
		| .name = $name | .cniVersion = $ver
		| if ($r | length) > 0 then .runtimeConfig = $r else . end
		| if $prev != "" then .prevResult = ($prev | fromjson) else . end' "$conflist"
}

# run I COMMAND PREV: runs plugin I; its stdout in $out, its exit status returned
run() {
	local type bin
	type=$(jq -r --argjson i "$1" '.plugins[$i].type' "$conflist")
	if ! bin=$(find_plugin "$type"); then
		out="{\"cniVersion\":\"$ver\",\"code\":1,\"msg\":\"plugin $type not found in $CNI_PATH\"}"
		return 1
	fi
	out=$(conf "$1" "$3" | CNI_COMMAND=$2 CNI_CONTAINERID=$cid CNI_NETNS=$netns \
		CNI_IFNAME=$ifname CNI_ARGS=${CNI_ARGS:-} CNI_PATH=$CNI_PATH timeout 30 "$bin")
}

case $cmd in
ADD)
	prev=""
	for ((i = 0; i < n; i++)); do
		if ! run $i ADD "$prev"; then
			echo "$out"
			exit 1
		fi
		prev=$out
	done
	mkdir -p "$CNICHAIN_CACHE"
	jq -n --argjson r "$prev" --argjson rt "$rtconf" '{result: $r, runtimeConfig: $rt}' >"$cache"
	printf '%s\n' "$prev"
	;;
CHECK)
	prev=$(jq -ce .result "$cache" 2>/dev/null) || { echo "cnichain: no cached result $cache" >&2; exit 1; }
	for ((i = 0; i < n; i++)); do
		run $i CHECK "$prev" || { echo "$out"; exit 1; }
	done
	;;
DEL)
	prev=$(jq -ce .result "$cache" 2>/dev/null) || prev=
	for ((i = n - 1; i >= 0; i--)); do
		run $i DEL "$prev" || { echo "$out"; exit 1; }
	done
	rm -f "$cache"
	;;
*)
	echo "usage: cnichain.sh ADD|CHECK|DEL CONFLIST CONTAINER_ID NETNS IFNAME [RUNTIME_CONFIG_JSON]" >&2
	exit 2
	;;
esac
