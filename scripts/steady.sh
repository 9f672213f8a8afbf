#!/usr/bin/env bash
# steady.sh - a day in the life: nonstop mixed traffic (writes, deletes, upserts, flushes,
# searches, filtered queries) for MINUTES against this project's cluster, then against
# real Milvus standalone of each version (PyPI's `milvus` wheel, as compare_milvus.sh),
# sampled every 30 s; writes the "Steady state" section of docs/benchmarks.md,
# docs/steady.json and docs/img/steady.png.
#
#   scripts/steady.sh                          # 30 minutes each, this project and 2.3.5
#   scripts/steady.sh --minutes 5 --versions "" --out /tmp/steady   # a short run of ours
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
minutes=30
versions=2.3.5
out="$REPO/docs"
while [[ $# -gt 0 ]]; do
    case $1 in
        --minutes) minutes=$2; shift 2 ;;
        --versions) versions=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "steady.sh: unknown argument $1 (expected --minutes N, --versions LIST, --out DIR)" >&2; exit 2 ;;
    esac
done
bash scripts/build.sh >/dev/null
PY="$REPO/.venv/bin/python"
if ! "$PY" -c 'import pymilvus, numpy, matplotlib' 2>/dev/null; then
    echo "steady.sh: the venv lacks pymilvus, numpy or matplotlib; run scripts/test.sh once" >&2
    exit 1
fi
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
"$PY" benches/compare/steady.py ours --bin "$REPO/bin/milvus" --minutes "$minutes" --out "$runs/ours.json"
files=("$runs/ours.json")
for v in ${versions//,/ }; do
    "$PY" benches/compare/steady.py "$v" --minutes "$minutes" --out "$runs/milvus-$v.json"
    files+=("$runs/milvus-$v.json")
done
mkdir -p "$out"
"$PY" benches/compare/steady_report.py --out "$out" "${files[@]}"
