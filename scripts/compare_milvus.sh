#!/usr/bin/env bash
# compare_milvus.sh - this cluster side by side with real Milvus on this machine.
#
# Builds bin/milvus, makes sure the test venv (.venv, scripts/test.sh) has pymilvus,
# numpy and matplotlib, downloads PyPI's `milvus` wheels (2.2.16 and 2.3.5: the real Go
# server and its libraries) into ~/.cache/milvus-compare once, then runs
# benches/compare/compare.py: real Milvus standalone of each version, then this project's
# cluster (etcd, nats-server, the eight roles), each on free ports, one after the other,
# under one pymilvus workload with one seed; then two rootcoords of each in active-standby
# (5 SIGTERM and 3 SIGKILL takeovers, TTL 10 s). Writes docs/benchmarks.md (+ .json) and
# docs/img/*.png. Everything it starts it stops. Arguments go to compare.py, e.g.
#
#   scripts/compare_milvus.sh                      # the full run (about 30 minutes)
#   scripts/compare_milvus.sh --rows 10000 --queries 100 --runs 1 --ha-term 1 --ha-kill 1 \
#       --out /tmp/compare                         # the small run CI does
#   scripts/compare_milvus.sh --sizes 100000,300000,1000000 --index FLAT --queries 20 \
#       --ef 64 --clients 1 --runs 1 --skip-ha     # each size in turn: an "At scale"
#                                                  # section with growth factors and
#                                                  # docs/img/scale_measures.png (~20 min)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
bash scripts/build.sh >/dev/null
VENV="$REPO/.venv"
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import pymilvus, numpy, matplotlib' 2>/dev/null; then
    echo "compare_milvus.sh: the venv lacks pymilvus, numpy or matplotlib; run scripts/test.sh once, or:" >&2
    echo "  $VENV/bin/pip install matplotlib" >&2
    exit 1
fi
has_out=0
for a in "$@"; do [[ $a == --out ]] && has_out=1; done
extra=()
[[ $has_out == 1 ]] || extra=(--out "$REPO/docs")
exec "$VENV/bin/python" benches/compare/compare.py --bin "$REPO/bin/milvus" "${extra[@]}" "$@"
