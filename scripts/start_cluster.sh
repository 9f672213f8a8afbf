#!/usr/bin/env bash
# start_cluster.sh - start a local milvus cluster, one process per role.
#
# Installs missing deps (scripts/install_deps.sh), (re)builds ./bin/milvus when
# it is missing or older than src/, Cargo.toml (and Cargo.lock, build.rs,
# proto/ when present), starts a local etcd (scripts/start_etcd.sh) when the
# first ETCD_ENDPOINTS entry (default 127.0.0.1:2379) does not answer, a local
# NATS JetStream server, the write-ahead log (scripts/start_nats.sh), when
# NATSMQ_ADDRESS (default nats://127.0.0.1:4222) is local and not up, then
# starts rootcoord datacoord querycoord indexcoord datanode indexnode
# querynode proxy in the background and waits until every /healthz is 200.
#
# Options:
#   --ha        active-standby: set <COORD>_ENABLE_ACTIVE_STANDBY=true for every
#               coordinator and start a second copy of each on port+1
#               (log <role>2.log). ACTIVE_STANDBY=true in the env is the same.
#   --tls       every link encrypted: certificates from TLS_DIR (made there by
#               scripts/gen_certs.sh when missing); etcd and NATS started with TLS and
#               client certificates (etcd https://, NATS tls://), mutual TLS between
#               the components (internaltls), TLS on the proxy's port (tlsMode
#               TLS_MODE). Segment files stay in LOCAL_STORAGE_PATH (no network);
#               for S3 set MINIO_USE_SSL=true and MINIO_SSL_TLSCACERT yourself.
#   -h, --help  show this help
# Environment:
#   LOG_DIR           log directory (default /tmp/milvus-logs)
#   ETCD_ENDPOINTS    etcd endpoints (default 127.0.0.1:2379; exported to the processes)
#   NATSMQ_ADDRESS    the log (default nats://127.0.0.1:4222; exported to the processes)
#   LOCAL_STORAGE_PATH  segment files (default /var/lib/milvus/data, or
#                     $TMPDIR/milvus-data when that is not writable; exported)
#   <ROLE>_PORT       per-role port override, e.g. ROOT_COORD_PORT, PROXY_PORT
#   TLS_DIR           certificates for --tls (default $LOG_DIR/cert); the settings
#                     are also written to $LOG_DIR/tls.env for `milvus status`
#   TLS_MODE          the proxy's common.security.tlsMode with --tls (default 1; 2 asks
#                     clients for a certificate: TLS_DIR/client.pem)
#   STARTUP_TIMEOUT   seconds to wait for /healthz (default 30)
#   KEEP_ON_FAILURE=1 leave the started processes running when startup fails
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

die() { echo "start_cluster.sh: $*" >&2; exit 1; }

HA=false
TLS=false
case "${ACTIVE_STANDBY:-}" in
    [Tt]rue|TRUE|1|[Yy]es|on) HA=true ;;
esac
while [[ $# -gt 0 ]]; do
    case "$1" in
        --ha) HA=true ;;
        --tls) TLS=true ;;
        -h|--help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "start_cluster.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

LOG_DIR=${LOG_DIR:-/tmp/milvus-logs}
mkdir -p "$LOG_DIR"
export LOG_DIR
TIMEOUT=${STARTUP_TIMEOUT:-30}

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

# --- 1. system dependencies -------------------------------------------------
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1 \
    || ! command -v protoc >/dev/null 2>&1; then
    bash "$REPO/scripts/install_deps.sh"
fi

# --- 2. binary ---------------------------------------------------------------
binary_is_stale() {
    [[ -x bin/milvus ]] || return 0
    local inputs=() p
    for p in src Cargo.toml Cargo.lock build.rs proto; do
        [[ -e $p ]] && inputs+=("$p")
    done
    [[ ${#inputs[@]} -gt 0 ]] || return 1
    [[ -n $(find "${inputs[@]}" -newer bin/milvus -print -quit) ]]
}
if binary_is_stale; then
    if command -v cargo >/dev/null 2>&1; then
        echo "start_cluster.sh: building bin/milvus"
        bash "$REPO/scripts/build.sh"
    elif [[ -x bin/milvus ]]; then
        echo "start_cluster.sh: warning: bin/milvus is older than the sources but cargo is not available; using it anyway" >&2
    else
        die "bin/milvus is missing and cargo is not available to build it"
    fi
fi

# --- 2b. certificates (--tls) ---------------------------------------------------
CTL_FLAGS=() SCHEME=http
if [[ $TLS == true ]]; then
    TLS_DIR=${TLS_DIR:-$LOG_DIR/cert}
    if [[ ! -r $TLS_DIR/server.pem || ! -r $TLS_DIR/server.key || ! -r $TLS_DIR/ca.pem ]]; then
        bash "$REPO/scripts/gen_certs.sh" --dir "$TLS_DIR"
    fi
    # The server certificate is also the cluster's client certificate (etcd, NATS,
    # internal calls): it needs the clientAuth usage (gen_certs.sh before 2026-12-03
    # made it serverAuth only).
    if ! openssl x509 -in "$TLS_DIR/server.pem" -noout -ext extendedKeyUsage 2>/dev/null \
            | grep -q "Client Authentication"; then
        die "$TLS_DIR/server.pem lacks the clientAuth usage it needs as the cluster certificate; remake the set (scripts/gen_certs.sh --dir $TLS_DIR)"
    fi
    TLS_MODE=${TLS_MODE:-1}
    [[ $TLS_MODE == 1 || $TLS_MODE == 2 ]] || die "TLS_MODE='$TLS_MODE': expected 1 (one-way) or 2 (mutual)"
    CTL_FLAGS=(--cacert "$TLS_DIR/ca.pem" --cert "$TLS_DIR/server.pem" --key "$TLS_DIR/server.key")
    SCHEME=https
    export ETCD_SSL_ENABLED=true ETCD_SSL_TLS_CA_CERT=$TLS_DIR/ca.pem \
        ETCD_SSL_TLS_CERT=$TLS_DIR/server.pem ETCD_SSL_TLS_KEY=$TLS_DIR/server.key
    export NATSMQ_TLS_ENABLED=true NATSMQ_TLS_CA_PEM_PATH=$TLS_DIR/ca.pem \
        NATSMQ_TLS_CLIENT_PEM_PATH=$TLS_DIR/server.pem NATSMQ_TLS_CLIENT_KEY_PATH=$TLS_DIR/server.key
    export COMMON_SECURITY_INTERNALTLS_ENABLED=true INTERNALTLS_SERVER_PEM_PATH=$TLS_DIR/server.pem \
        INTERNALTLS_SERVER_KEY_PATH=$TLS_DIR/server.key INTERNALTLS_CA_PEM_PATH=$TLS_DIR/ca.pem
    # Mode 2's client certificates come from their own CA, which etcd, NATS and the
    # internal ports do not trust.
    CLIENT_CA=$TLS_DIR/client-ca.pem
    [[ $TLS_MODE == 1 || -r $CLIENT_CA ]] || die "TLS_MODE=2 needs $CLIENT_CA (scripts/gen_certs.sh --dir $TLS_DIR makes it)"
    export COMMON_SECURITY_TLS_MODE=$TLS_MODE TLS_SERVER_PEM_PATH=$TLS_DIR/server.pem \
        TLS_SERVER_KEY_PATH=$TLS_DIR/server.key TLS_CA_PEM_PATH=$CLIENT_CA
    export NATSMQ_ADDRESS=${NATSMQ_ADDRESS:-tls://127.0.0.1:4222}
    # The same settings for `milvus status` and other commands run from a shell.
    # (No passwords in it: add ETCD_AUTH_PASSWORD yourself when etcd has users.)
    (umask 077
     compgen -e | grep -E '^(ETCD_SSL|ETCD_ENDPOINTS|ETCD_AUTH|NATSMQ_|COMMON_SECURITY_|INTERNALTLS_|TLS_)' \
        | grep -v PASSWORD \
        | while read -r v; do printf 'export %s=%q\n' "$v" "${!v}"; done >"$LOG_DIR/tls.env")
fi

# --- 3. etcd -----------------------------------------------------------------
export ETCD_ENDPOINTS=${ETCD_ENDPOINTS:-127.0.0.1:2379}
ETCD_EP=${ETCD_ENDPOINTS%%,*}
[[ $ETCD_EP == *://* ]] || ETCD_EP="$SCHEME://$ETCD_EP"
export ETCDCTL_API=3
if ! etcdctl --endpoints="$ETCD_EP" "${CTL_FLAGS[@]}" --dial-timeout=1s --command-timeout=2s \
        endpoint health >/dev/null 2>&1; then
    hostport=${ETCD_EP#*://}
    hostport=${hostport%%/*}
    etcd_host=${hostport%:*}
    etcd_port=${hostport##*:}
    if [[ $etcd_host == "$hostport" ]]; then
        etcd_port=2379
    fi
    case "$etcd_host" in
        127.0.0.1|localhost|0.0.0.0|"[::1]") ;;
        *) die "etcd at $ETCD_EP does not answer and is not local; start it or set ETCD_ENDPOINTS" ;;
    esac
    [[ $etcd_port =~ ^[0-9]+$ ]] || die "cannot parse a port from ETCD_ENDPOINTS entry '$ETCD_EP'"
    echo "start_cluster.sh: no etcd at $ETCD_EP, starting one"
    ETCD_CLIENT_PORT=$etcd_port ETCD_PEER_PORT=${ETCD_PEER_PORT:-$((etcd_port + 1))} \
        ETCD_TLS_DIR=$([[ $TLS == true ]] && echo "$TLS_DIR") bash "$REPO/scripts/start_etcd.sh"
fi

# --- 3b. the log (NATS JetStream) ----------------------------------------------
export NATSMQ_ADDRESS=${NATSMQ_ADDRESS:-nats://127.0.0.1:4222}
nats_hostport=${NATSMQ_ADDRESS#*://}
nats_host=${nats_hostport%:*}
nats_port=${nats_hostport##*:}
[[ $nats_port =~ ^[0-9]+$ ]] || die "cannot parse a port from NATSMQ_ADDRESS '$NATSMQ_ADDRESS'"
case "$nats_host" in
    127.0.0.1|localhost|0.0.0.0)
        if ! command -v nats-server >/dev/null 2>&1 && [[ ! -x /usr/sbin/nats-server ]]; then
            bash "$REPO/scripts/install_deps.sh"
        fi
        NATS_PORT=$nats_port NATS_TLS_DIR=$([[ $TLS == true ]] && echo "$TLS_DIR") bash "$REPO/scripts/start_nats.sh"
        ;;
    *) echo "start_cluster.sh: using the log at $NATSMQ_ADDRESS" ;;
esac

# --- 3c. object storage (local directory) -------------------------------------
# Milvus's default localStorage.path; a user who cannot write there gets a directory
# under $TMPDIR instead (every process of this host shares it).
if [[ -z ${LOCAL_STORAGE_PATH:-} ]]; then
    LOCAL_STORAGE_PATH=/var/lib/milvus/data
    if ! mkdir -p "$LOCAL_STORAGE_PATH" 2>/dev/null || [[ ! -w $LOCAL_STORAGE_PATH ]]; then
        LOCAL_STORAGE_PATH=${TMPDIR:-/tmp}/milvus-data
        echo "start_cluster.sh: /var/lib/milvus/data is not writable; segment files go to $LOCAL_STORAGE_PATH (set LOCAL_STORAGE_PATH to choose)"
    fi
fi
export LOCAL_STORAGE_PATH

# --- 4. plan the processes -----------------------------------------------------
ORDER=(rootcoord datacoord querycoord indexcoord datanode indexnode querynode proxy)
declare -A DEFAULT_PORT=(
    [rootcoord]=53100 [proxy]=19530 [querycoord]=19531 [querynode]=21123
    [indexcoord]=31000 [indexnode]=21121 [datacoord]=13333 [datanode]=21124
)
declare -A ENV_PREFIX=(
    [rootcoord]=ROOT_COORD [proxy]=PROXY [querycoord]=QUERY_COORD [querynode]=QUERY_NODE
    [indexcoord]=INDEX_COORD [indexnode]=INDEX_NODE [datacoord]=DATA_COORD [datanode]=DATA_NODE
)

NAMES=() ROLES=() PORTS=() LOGS=() ENVS=() ARGS=() PIDS=()
add_process() { # name role port env-assignments extra-args
    NAMES+=("$1") ROLES+=("$2") PORTS+=("$3") LOGS+=("$LOG_DIR/$1.log") ENVS+=("$4") ARGS+=("$5")
}
for role in "${ORDER[@]}"; do
    prefix=${ENV_PREFIX[$role]}
    port_var="${prefix}_PORT"
    port=${!port_var:-${DEFAULT_PORT[$role]}}
    [[ $port =~ ^[0-9]+$ ]] || die "$port_var='$port' is not a port number"
    if [[ $HA == true && $role == *coord ]]; then
        standby_env="${prefix}_ENABLE_ACTIVE_STANDBY=true"
        add_process "$role" "$role" "$port" "$standby_env" ""
        add_process "${role}2" "$role" "$((port + 1))" \
            "$standby_env ${prefix}_PORT=$((port + 1))" "--alias ${role}2"
    else
        add_process "$role" "$role" "$port" "" ""
    fi
done

port_in_use() {
    local out
    if command -v ss >/dev/null 2>&1 && out=$(ss -Hltn "sport = :$1" 2>/dev/null); then
        [[ -n $out ]]
        return
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
declare -A seen_port=()
for i in "${!NAMES[@]}"; do
    port=${PORTS[i]}
    if [[ -n ${seen_port[$port]:-} ]]; then
        die "port $port is assigned to both ${seen_port[$port]} and ${NAMES[i]}"
    fi
    seen_port[$port]=${NAMES[i]}
    if port_in_use "$port"; then
        die "port $port (${NAMES[i]}) is already in use; is a cluster already running? (scripts/stop_cluster.sh)"
    fi
done

# --- 5. start ------------------------------------------------------------------
for i in "${!NAMES[@]}"; do
    read -r -a envs <<<"${ENVS[i]}"
    read -r -a args <<<"${ARGS[i]}"
    env "${envs[@]}" nohup ./bin/milvus run "${ROLES[i]}" "${args[@]}" \
        >"${LOGS[i]}" 2>&1 </dev/null &
    PIDS[i]=$!
done

# --- 6. wait for /healthz ------------------------------------------------------
healthz_status() { # prints the HTTP status code of GET /healthz, or 000
    if command -v curl >/dev/null 2>&1; then
        curl --noproxy '*' -s -o /dev/null -w '%{http_code}' \
            --connect-timeout 1 --max-time 2 "http://127.0.0.1:$1/healthz" || true
        return
    fi
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
        read -r _ code _ <&3 || exit 1
        printf "%s" "$code"' _ "$1" 2>/dev/null || echo 000
}

fail() { # message [index whose log to show]
    echo "start_cluster.sh: $1" >&2
    if [[ $# -gt 1 ]]; then
        echo "---- last lines of ${LOGS[$2]} ----" >&2
        tail -n 40 "${LOGS[$2]}" >&2 || true
        echo "----" >&2
    fi
    if [[ ${KEEP_ON_FAILURE:-0} != 1 ]]; then
        echo "start_cluster.sh: stopping the processes started by this run (KEEP_ON_FAILURE=1 keeps them)" >&2
        local j
        for j in "${!PIDS[@]}"; do
            kill -TERM "${PIDS[j]}" 2>/dev/null || true
        done
        local stop_deadline=$((SECONDS + 10))
        for j in "${!PIDS[@]}"; do
            while kill -0 "${PIDS[j]}" 2>/dev/null && ((SECONDS < stop_deadline)); do
                sleep 0.2
            done
        done
    fi
    exit 1
}

declare -A healthy=()
pending=${#NAMES[@]}
deadline=$((SECONDS + TIMEOUT))
while ((pending > 0)); do
    for i in "${!NAMES[@]}"; do
        [[ -n ${healthy[$i]:-} ]] && continue
        if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
            fail "${NAMES[i]} (pid ${PIDS[i]}, port ${PORTS[i]}) exited during startup" "$i"
        fi
        if [[ $(healthz_status "${PORTS[i]}") == 200 ]]; then
            healthy[$i]=1
            pending=$((pending - 1))
        fi
    done
    ((pending == 0)) && break
    if ((SECONDS >= deadline)); then
        for i in "${!NAMES[@]}"; do
            if [[ -z ${healthy[$i]:-} ]]; then
                echo "start_cluster.sh: ${NAMES[i]} (pid ${PIDS[i]}, port ${PORTS[i]}) not healthy after ${TIMEOUT}s; last lines of ${LOGS[i]}:" >&2
                tail -n 20 "${LOGS[i]}" >&2 || true
            fi
        done
        fail "timed out waiting for /healthz"
    fi
    sleep 0.5
done
for i in "${!NAMES[@]}"; do
    if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
        fail "${NAMES[i]} (pid ${PIDS[i]}, port ${PORTS[i]}) exited during startup" "$i"
    fi
done

# --- 7. summary ----------------------------------------------------------------
echo
echo "milvus cluster is up (etcd $ETCD_ENDPOINTS, active-standby: $HA, every link encrypted: $TLS)"
if [[ $TLS == true ]]; then
    echo "clients: MilvusClient(uri=\"https://localhost:${PORTS[-1]}\", server_pem_path=\"$TLS_DIR/ca.pem\", server_name=\"localhost\")"
    if [[ $TLS_MODE == 2 ]]; then
        echo "         with client_pem_path=\"$TLS_DIR/client.pem\", client_key_path=\"$TLS_DIR/client.key\", ca_pem_path=\"$TLS_DIR/ca.pem\""
    fi
fi
printf '%-12s %-8s %-6s %s\n' ROLE PID PORT LOG
for i in "${!NAMES[@]}"; do
    printf '%-12s %-8s %-6s %s\n' "${NAMES[i]}" "${PIDS[i]}" "${PORTS[i]}" "${LOGS[i]}"
done
echo
if [[ $TLS == true ]]; then
    echo "sessions: (. $LOG_DIR/tls.env && ./bin/milvus status)"
else
    echo "sessions: ./bin/milvus status"
fi
echo "stop:     scripts/stop_cluster.sh   (add --etcd to also stop the local etcd and NATS)"
