#!/usr/bin/env bash
# start_nats.sh - start a local NATS server with JetStream (the write-ahead log) on
# loopback, in the background.
#
# Environment:
#   NATS_PORT       client port (default 4222) -> nats://127.0.0.1:PORT
#   NATS_STORE_DIR  JetStream store (default /tmp/milvus-nats/store);
#                   the pid is written to NATS_STORE_DIR/../nats.pid
#   LOG_DIR         log dir (default /tmp/milvus-logs); log is LOG_DIR/nats.log
#   NATS_MEMORY_LIMIT  Go's soft memory limit for nats-server (GOMEMLIMIT, default
#                   512MiB): JetStream's block caches are collected and returned to
#                   the OS to stay under it. The streams themselves stay small because
#                   the datacoord deletes what every reader has passed (log retention).
#   NATS_TLS_DIR    serve clients over TLS only with DIR/server.pem and server.key,
#                   requiring client certificates of DIR/ca.pem (--tlsverify);
#                   clients then use tls://127.0.0.1:PORT (scripts/gen_certs.sh)
# If something already accepts connections on the port, says so and exits 0 when it
# is a NATS server, 1 otherwise. Waits up to 20 s for the port, then prints the store,
# log path and pid. Point the processes at it with NATSMQ_ADDRESS=nats://127.0.0.1:PORT.
#
# Usage: scripts/start_nats.sh
set -euo pipefail

if [[ $# -gt 0 ]]; then
    case "$1" in
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "start_nats.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
fi

PORT=${NATS_PORT:-4222}
STORE_DIR=${NATS_STORE_DIR:-/tmp/milvus-nats/store}
LOG_DIR=${LOG_DIR:-/tmp/milvus-logs}
PID_FILE="$(dirname "$STORE_DIR")/nats.pid"
LOG_FILE="$LOG_DIR/nats.log"

NATS=$(command -v nats-server || true)
[[ -n $NATS || ! -x /usr/sbin/nats-server ]] || NATS=/usr/sbin/nats-server
if [[ -z $NATS ]]; then
    echo "start_nats.sh: 'nats-server' not found; run scripts/install_deps.sh" >&2
    exit 1
fi

# A NATS server greets every new connection with an INFO line.
INFO=""
greeting() {
    local line=""
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    IFS= read -r -t 2 line <&3 || true
    exec 3<&- 3>&-
    INFO=$line
    [[ $line == INFO* ]]
}
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    if greeting 2>/dev/null; then
        # Its TLS must be what was asked for: clients would otherwise fail at the first write.
        want=plain; [[ -z ${NATS_TLS_DIR:-} ]] || want=TLS
        have=plain; [[ $INFO != *'"tls_required":true'* ]] || have=TLS
        if [[ $want != "$have" ]]; then
            echo "start_nats.sh: the NATS server on 127.0.0.1:$PORT serves $have clients, but $want was asked for; stop it (scripts/stop_cluster.sh --etcd) or use another NATS_PORT" >&2
            exit 1
        fi
        echo "start_nats.sh: a NATS server already answers on 127.0.0.1:$PORT; not starting another one"
        exit 0
    fi
    echo "start_nats.sh: port $PORT on 127.0.0.1 is in use by something that is not a NATS server" >&2
    exit 1
fi

mkdir -p "$STORE_DIR" "$LOG_DIR"
echo "=== $(date '+%F %T') start_nats.sh: starting nats-server -js on 127.0.0.1:$PORT ===" >>"$LOG_FILE"
TLS_FLAGS=()
if [[ -n ${NATS_TLS_DIR:-} ]]; then
    for f in ca.pem server.pem server.key; do
        [[ -r $NATS_TLS_DIR/$f ]] || { echo "start_nats.sh: NATS_TLS_DIR: $NATS_TLS_DIR/$f is missing (scripts/gen_certs.sh --dir $NATS_TLS_DIR)" >&2; exit 1; }
    done
    TLS_FLAGS=(--tls --tlsverify --tlscert "$NATS_TLS_DIR/server.pem" --tlskey "$NATS_TLS_DIR/server.key"
               --tlscacert "$NATS_TLS_DIR/ca.pem")
fi
GOMEMLIMIT=${NATS_MEMORY_LIMIT:-512MiB} nohup "$NATS" -js -a 127.0.0.1 -p "$PORT" -sd "$STORE_DIR" "${TLS_FLAGS[@]}" >>"$LOG_FILE" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$PID_FILE"

deadline=$((SECONDS + 20))
until greeting 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "start_nats.sh: nats-server (pid $pid) exited during startup; last lines of $LOG_FILE:" >&2
        tail -n 30 "$LOG_FILE" >&2 || true
        rm -f "$PID_FILE"
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "start_nats.sh: nats-server (pid $pid) not answering on port $PORT after 20 s; stopping it" >&2
        kill -TERM "$pid" 2>/dev/null || true
        rm -f "$PID_FILE"
        exit 1
    fi
    sleep 0.2
done

scheme=nats
[[ -z ${NATS_TLS_DIR:-} ]] || scheme=tls
echo "start_nats.sh: nats-server (JetStream) is up at $scheme://127.0.0.1:$PORT"
echo "  store: $STORE_DIR"
echo "  log:   $LOG_FILE"
echo "  pid:   $pid (pid file $PID_FILE)"
