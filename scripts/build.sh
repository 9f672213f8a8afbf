#!/usr/bin/env bash
# build.sh - build the milvus binary and copy it to ./bin/milvus.
#
# Runs `cargo build --release --bin milvus` at the repo root (works from any
# cwd), then installs target/release/milvus as bin/milvus. Extra arguments are
# passed to cargo build (e.g. scripts/build.sh --locked).
#
# Usage: scripts/build.sh [CARGO_BUILD_ARGS...]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "build.sh: 'cargo' not found; install a Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi

cargo build --release --bin milvus "$@"

target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p bin
# Copy then rename, so a running bin/milvus is replaced instead of hitting "Text file busy".
tmp="bin/.milvus.tmp.$$"
cp "$target_dir/release/milvus" "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" bin/milvus
echo "build.sh: built $REPO/bin/milvus"
