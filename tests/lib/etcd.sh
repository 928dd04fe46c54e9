# Starting and stopping a scratch etcd (Debian's etcd-server) for the test suites. Source it.
#
#   etcd_start NAME DIR [NETNS] [--tls|--mtls]
#       starts `etcd` with its data in DIR/NAME.data (DIR must exist), log DIR/NAME.log,
#       listening on 127.0.0.1 (inside network namespace NETNS when given and not "") on two
#       free ports; --tls serves clients over https with etcd's --auto-tls certificate
#       (self-signed for 127.0.0.1); --mtls makes a CA with openssl (DIR/NAME.pki: ca.pem,
#       server.pem, client.pem + client-key.pem) and requires client certificates from it. Short raft timers (heartbeat 10 ms, election 100 ms) make
#       the minimum lease TTL 1 s and the leader appear at once; no fsync (scratch data).
#       Waits (at most 15 s) until the JSON gateway answers. Sets ETCD_PID (the etcd process
#       itself), ETCD_EP (127.0.0.1:PORT), ETCD_CA (--tls/--mtls: the certificate to trust),
#       ETCD_PKI (--mtls: the directory with client.pem and client-key.pem).
#       Returns 1 (with the log's tail on stderr) when it does not come up.
#       With ETCD_SECOND_PORT=1 in the environment it also serves plain http on a second
#       client port, ETCD_EP2 (one can cut clients of one port off with nft, keeping the other).
#   etcd_start_cluster DIR NETNS N
#       starts an N-member cluster (names m1..mN, same timers) on 127.0.0.1 in NETNS; sets
#       ETCD_PIDS (array, member i at index i-1), ETCD_EPS_LIST (array of HOST:PORT) and
#       ETCD_EPS ("H:P,H:P,..."). Waits (at most 20 s) until every member answers.
#   etcd_stop PID DIR NAME
#       SIGTERM, then SIGKILL after 5 s, that pid only; removes DIR/NAME.data and .pki.
#
# Ports: picked by binding port 0 in the target namespace (python3), so parallel suites and
# an etcd on the standard ports never collide.

etcd_in_ns() { # NETNS CMD...: runs CMD in NETNS ("" = here); nsenter keeps the mount namespace
	local ns=$1
	shift
	if [ -n "$ns" ]; then
		nsenter --net="/run/netns/$ns" "$@"
	else
		"$@"
	fi
}

etcd_free_ports() { # NETNS [N]: prints N (default 2) free TCP ports on 127.0.0.1
	etcd_in_ns "$1" python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
' "${2:-2}"
}

# DIR: a CA, a server certificate for 127.0.0.1 and a client certificate, all from openssl
etcd_make_pki() {
	local d=$1
	mkdir -p "$d" || return 1
	(
		cd "$d" || exit 1
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ciliate-test-ca \
			-keyout ca-key.pem -out ca.pem
		openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server-key.pem -out server.csr
		printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
			-extfile server.ext -out server.pem
		openssl req -newkey rsa:2048 -nodes -subj /CN=ciliate -keyout client-key.pem -out client.csr
		printf 'extendedKeyUsage=clientAuth\n' >client.ext
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
			-extfile client.ext -out client.pem
	) >"$d/openssl.log" 2>&1
}

etcd_start() {
	local name=$1 dir=$2 ns=${3:-} tls=${4:-} ports cport pport cport2 scheme=http i
	local -a tlsargs=()
	ETCD_PID="" ETCD_EP="" ETCD_CA="" ETCD_PKI="" ETCD_EP2=""
	ports=$(etcd_free_ports "$ns" 3) || return 1
	read -r cport pport cport2 <<<"$ports"
	case "$tls" in
	--tls) scheme=https tlsargs=(--auto-tls) ;;
	--mtls)
		scheme=https ETCD_PKI="$dir/$name.pki"
		etcd_make_pki "$ETCD_PKI" || { echo "openssl failed: $(tail -3 "$ETCD_PKI/openssl.log")" >&2; return 1; }
		tlsargs=(--cert-file "$ETCD_PKI/server.pem" --key-file "$ETCD_PKI/server-key.pem"
			--client-cert-auth --trusted-ca-file "$ETCD_PKI/ca.pem")
		;;
	esac
	rm -rf "$dir/$name.data"
	# a simple command in the background, so $! is etcd itself (nsenter execs it)
	${ns:+nsenter --net="/run/netns/$ns"} etcd --name "$name" --data-dir "$dir/$name.data" \
		--listen-client-urls "$scheme://127.0.0.1:$cport${ETCD_SECOND_PORT:+,$scheme://127.0.0.1:$cport2}" \
		--advertise-client-urls "$scheme://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" \
		--initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "$name=http://127.0.0.1:$pport" \
		--heartbeat-interval 10 --election-timeout 100 --unsafe-no-fsync \
		"${tlsargs[@]}" >"$dir/$name.log" 2>&1 &
	ETCD_PID=$!
	ETCD_EP="127.0.0.1:$cport"
	[ -n "${ETCD_SECOND_PORT:-}" ] && ETCD_EP2="127.0.0.1:$cport2"
	[ "$tls" = --tls ] && ETCD_CA="$dir/$name.data/fixtures/client/cert.pem"
	[ "$tls" = --mtls ] && ETCD_CA="$ETCD_PKI/ca.pem"
	for i in $(seq 150); do
		if ! kill -0 "$ETCD_PID" 2>/dev/null; then
			break
		fi
		if etcd_in_ns "$ns" curl -s --max-time 1 ${ETCD_CA:+--cacert "$ETCD_CA"} \
			${ETCD_PKI:+--cert "$ETCD_PKI/client.pem" --key "$ETCD_PKI/client-key.pem"} \
			"$scheme://$ETCD_EP/v3/kv/range" -d '{"key":"AA=="}' 2>/dev/null | grep -q '"revision"'; then
			return 0
		fi
		sleep 0.1
	done
	echo "etcd $name did not come up on $ETCD_EP; its log ends with:" >&2
	tail -5 "$dir/$name.log" >&2
	return 1
}

etcd_stop() {
	local pid=$1 dir=$2 name=$3 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		# exited, not yet reaped (a zombie child of this shell)
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -rf "${dir:?}/$name.data" "${dir:?}/$name.pki"
}

etcd_start_cluster() {
	local dir=$1 ns=$2 n=$3 i k ports initial="" ok
	local -a cports=() pports=()
	ETCD_PIDS=() ETCD_EPS_LIST=() ETCD_EPS=""
	ports=$(etcd_free_ports "$ns" $((2 * n))) || return 1
	read -r -a ports <<<"$ports"
	for ((i = 0; i < n; i++)); do
		cports[i]=${ports[2 * i]} pports[i]=${ports[2 * i + 1]}
		initial+="${initial:+,}m$((i + 1))=http://127.0.0.1:${pports[i]}"
	done
	for ((i = 0; i < n; i++)); do
		rm -rf "$dir/m$((i + 1)).data"
		${ns:+nsenter --net="/run/netns/$ns"} etcd --name "m$((i + 1))" --data-dir "$dir/m$((i + 1)).data" \
			--listen-client-urls "http://127.0.0.1:${cports[i]}" \
			--advertise-client-urls "http://127.0.0.1:${cports[i]}" \
			--listen-peer-urls "http://127.0.0.1:${pports[i]}" \
			--initial-advertise-peer-urls "http://127.0.0.1:${pports[i]}" \
			--initial-cluster "$initial" --initial-cluster-state new \
			--heartbeat-interval 10 --election-timeout 100 --unsafe-no-fsync \
			>"$dir/m$((i + 1)).log" 2>&1 &
		ETCD_PIDS[i]=$!
		ETCD_EPS_LIST[i]="127.0.0.1:${cports[i]}"
	done
	ETCD_EPS=$(IFS=,; echo "${ETCD_EPS_LIST[*]}")
	for k in $(seq 200); do
		ok=0
		for ((i = 0; i < n; i++)); do
			kill -0 "${ETCD_PIDS[i]}" 2>/dev/null || { echo "etcd member m$((i + 1)) exited; its log ends with:" >&2; tail -5 "$dir/m$((i + 1)).log" >&2; return 1; }
			etcd_in_ns "$ns" curl -s --max-time 1 "http://${ETCD_EPS_LIST[i]}/v3/kv/range" \
				-d '{"key":"AA=="}' 2>/dev/null | grep -q '"revision"' && ok=$((ok + 1))
		done
		[ "$ok" -eq "$n" ] && return 0
		sleep 0.1
	done
	echo "etcd cluster did not come up ($ok of $n members answer)" >&2
	return 1
}
