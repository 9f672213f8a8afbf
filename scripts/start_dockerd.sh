#!/usr/bin/env bash
# start_dockerd.sh - make sure a Docker engine answers: when `docker info` fails, start
# dockerd in the background (root only) and wait until it answers (at most 60 s).
# Its log goes to ${DOCKERD_LOG:-/var/log/milvus-ha-dockerd.log}.
#
# Usage: scripts/start_dockerd.sh
set -euo pipefail

if docker info >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "start_dockerd.sh: no Docker engine answers and only root can start one (sudo dockerd &)" >&2
    exit 1
fi
command -v dockerd >/dev/null 2>&1 || { echo "start_dockerd.sh: dockerd not found (scripts/install_deps.sh --docker)" >&2; exit 1; }
log=${DOCKERD_LOG:-/var/log/milvus-ha-dockerd.log}
nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
        echo "start_dockerd.sh: dockerd started (pid $!, log $log)" >&2
        exit 0
    fi
    if ! kill -0 $! 2>/dev/null; then
        echo "start_dockerd.sh: dockerd exited; the end of $log:" >&2
        tail -20 "$log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "start_dockerd.sh: dockerd did not answer within 60 s; see $log" >&2
exit 1
