#!/usr/bin/env bash
# start_etcd.sh - start a local single-node etcd on loopback, in the background.
#
# Environment:
#   ETCD_CLIENT_PORT  client port (default 2379) -> http://127.0.0.1:PORT
#   ETCD_PEER_PORT    peer port   (default 2380) -> http://127.0.0.1:PORT
#   ETCD_DATA_DIR     data dir    (default /tmp/milvus-etcd/data);
#                     the pid is written to ETCD_DATA_DIR/../etcd.pid
#   LOG_DIR           log dir     (default /tmp/milvus-logs); log is LOG_DIR/etcd.log
#   ETCD_TLS_DIR      serve clients over TLS only (https://127.0.0.1:PORT) with
#                     DIR/server.pem and server.key, requiring client certificates of
#                     DIR/ca.pem (--client-cert-auth); scripts/gen_certs.sh makes them
# If an etcd already answers at the client URL, says so and exits 0.
# Otherwise waits up to 20 s for `etcdctl endpoint health`, then prints the
# data dir, log path and pid.
#
# Usage: scripts/start_etcd.sh
set -euo pipefail

if [[ $# -gt 0 ]]; then
    case "$1" in
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "start_etcd.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
fi

CLIENT_PORT=${ETCD_CLIENT_PORT:-2379}
PEER_PORT=${ETCD_PEER_PORT:-2380}
DATA_DIR=${ETCD_DATA_DIR:-/tmp/milvus-etcd/data}
LOG_DIR=${LOG_DIR:-/tmp/milvus-logs}
TLS_DIR=${ETCD_TLS_DIR:-}
CLIENT_URL="http://127.0.0.1:${CLIENT_PORT}"
TLS_FLAGS=() CTL_FLAGS=()
if [[ -n $TLS_DIR ]]; then
    for f in ca.pem server.pem server.key; do
        [[ -r $TLS_DIR/$f ]] || { echo "start_etcd.sh: ETCD_TLS_DIR: $TLS_DIR/$f is missing (scripts/gen_certs.sh --dir $TLS_DIR)" >&2; exit 1; }
    done
    CLIENT_URL="https://127.0.0.1:${CLIENT_PORT}"
    TLS_FLAGS=(--cert-file "$TLS_DIR/server.pem" --key-file "$TLS_DIR/server.key"
               --trusted-ca-file "$TLS_DIR/ca.pem" --client-cert-auth)
    CTL_FLAGS=(--cacert "$TLS_DIR/ca.pem" --cert "$TLS_DIR/server.pem" --key "$TLS_DIR/server.key")
fi
PEER_URL="http://127.0.0.1:${PEER_PORT}"
PID_FILE="$(dirname "$DATA_DIR")/etcd.pid"
LOG_FILE="$LOG_DIR/etcd.log"
NAME="milvus-etcd"

for tool in etcd etcdctl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "start_etcd.sh: '$tool' not found; run scripts/install_deps.sh" >&2
        exit 1
    fi
done

export ETCDCTL_API=3
healthy() {
    etcdctl --endpoints="$CLIENT_URL" "${CTL_FLAGS[@]}" --dial-timeout=1s --command-timeout=2s \
        endpoint health >/dev/null 2>&1
}

if healthy; then
    echo "start_etcd.sh: etcd already answers at $CLIENT_URL; not starting another one"
    exit 0
fi

port_listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
for port in "$CLIENT_PORT" "$PEER_PORT"; do
    if port_listening "$port"; then
        echo "start_etcd.sh: port $port on 127.0.0.1 is in use by something that is not a healthy etcd" >&2
        exit 1
    fi
done

mkdir -p "$DATA_DIR" "$LOG_DIR"
chmod 700 "$DATA_DIR"   # etcd refuses existing data dirs with looser permissions

# etcd reads ETCD_* environment variables as flags (ETCD_DATA_DIR, ...), and
# warns or fails on ones it does not know (ETCD_ENDPOINTS, ETCD_CLIENT_PORT);
# give it a clean environment apart from ETCD_UNSUPPORTED_ARCH.
unset_args=()
while IFS= read -r var; do
    [[ $var == ETCD_UNSUPPORTED_ARCH ]] || unset_args+=(-u "$var")
done < <(compgen -e | grep '^ETCD_' || true)
if [[ $(uname -m) == aarch64 && -z ${ETCD_UNSUPPORTED_ARCH:-} ]]; then
    export ETCD_UNSUPPORTED_ARCH=arm64   # needed by etcd 3.4 on arm64
fi

echo "=== $(date '+%F %T') start_etcd.sh: starting etcd at $CLIENT_URL ===" >>"$LOG_FILE"
nohup env "${unset_args[@]}" etcd \
    --name "$NAME" \
    --data-dir "$DATA_DIR" \
    --listen-client-urls "$CLIENT_URL" \
    --advertise-client-urls "$CLIENT_URL" \
    "${TLS_FLAGS[@]}" \
    --listen-peer-urls "$PEER_URL" \
    --initial-advertise-peer-urls "$PEER_URL" \
    --initial-cluster "$NAME=$PEER_URL" \
    --initial-cluster-state new \
    --auto-compaction-mode revision \
    --auto-compaction-retention 1000 \
    --quota-backend-bytes 4294967296 \
    --logger zap \
    --log-outputs stderr \
    >>"$LOG_FILE" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$PID_FILE"

deadline=$((SECONDS + 20))
until healthy; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "start_etcd.sh: etcd (pid $pid) exited during startup; last lines of $LOG_FILE:" >&2
        tail -n 30 "$LOG_FILE" >&2 || true
        rm -f "$PID_FILE"
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "start_etcd.sh: etcd (pid $pid) not healthy at $CLIENT_URL after 20 s; stopping it. Last lines of $LOG_FILE:" >&2
        tail -n 30 "$LOG_FILE" >&2 || true
        kill -TERM "$pid" 2>/dev/null || true
        rm -f "$PID_FILE"
        exit 1
    fi
    sleep 0.2
done

echo "start_etcd.sh: etcd is healthy at $CLIENT_URL"
echo "  data dir: $DATA_DIR"
echo "  log:      $LOG_FILE"
echo "  pid:      $pid (pid file $PID_FILE)"
