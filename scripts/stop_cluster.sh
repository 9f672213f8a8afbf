#!/usr/bin/env bash
# stop_cluster.sh - gracefully stop the local milvus cluster.
#
# Runs `./bin/milvus stop <role>` for every role, workers first (proxy
# querynode indexnode datanode), then coordinators (indexcoord querycoord
# datacoord rootcoord).
#
# Options:
#   --etcd       also stop the etcd and the NATS server started by
#                scripts/start_etcd.sh and scripts/start_nats.sh (pid files
#                ${ETCD_DATA_DIR:-/tmp/milvus-etcd/data}/../etcd.pid and
#                ${NATS_STORE_DIR:-/tmp/milvus-nats/store}/../nats.pid;
#                SIGTERM, wait up to 20 s, then SIGKILL)
#   --etcd-only  stop only those two, not the milvus processes
#   -h, --help   show this help
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

STOP_MILVUS=true
STOP_ETCD=false
while [[ $# -gt 0 ]]; do
    case "$1" in
        --etcd) STOP_ETCD=true ;;
        --etcd-only) STOP_ETCD=true STOP_MILVUS=false ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "stop_cluster.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

rc=0

if [[ $STOP_MILVUS == true ]]; then
    if [[ -x bin/milvus ]]; then
        for role in proxy querynode indexnode datanode indexcoord querycoord datacoord rootcoord; do
            if ! ./bin/milvus stop "$role"; then
                echo "stop_cluster.sh: './bin/milvus stop $role' failed" >&2
                rc=1
            fi
        done
    else
        echo "stop_cluster.sh: bin/milvus not found; cannot stop milvus processes (build with scripts/build.sh)" >&2
        rc=1
    fi
fi

# stop_service NAME COMM PID_FILE: SIGTERM the process in PID_FILE if its command is
# COMM, wait up to 20 s, then SIGKILL.
stop_service() {
    local name=$1 comm=$2 pid_file=$3 pid deadline
    if [[ ! -f $pid_file ]]; then
        echo "stop_cluster.sh: no $name pid file at $pid_file; nothing to stop"
        return
    fi
    pid=$(<"$pid_file")
    if [[ ! $pid =~ ^[0-9]+$ ]]; then
        echo "stop_cluster.sh: bad pid file $pid_file" >&2
        rc=1
    elif ! kill -0 "$pid" 2>/dev/null; then
        echo "stop_cluster.sh: $name (pid $pid) is not running; removing stale $pid_file"
        rm -f "$pid_file"
    elif [[ $(cat "/proc/$pid/comm" 2>/dev/null || true) != "$comm" ]]; then
        echo "stop_cluster.sh: pid $pid from $pid_file is not $name; not killing it" >&2
        rc=1
    else
        kill -TERM "$pid"
        deadline=$((SECONDS + 20))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop_cluster.sh: $name (pid $pid) still running after 20 s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pid_file"
        echo "stop_cluster.sh: stopped $name (pid $pid)"
    fi
}

if [[ $STOP_ETCD == true ]]; then
    stop_service "nats-server" nats-server "$(dirname "${NATS_STORE_DIR:-/tmp/milvus-nats/store}")/nats.pid"
    stop_service etcd etcd "$(dirname "${ETCD_DATA_DIR:-/tmp/milvus-etcd/data}")/etcd.pid"
fi

exit "$rc"
