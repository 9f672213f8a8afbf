#!/usr/bin/env bash
# test.sh - the project's test command.
#
# 1. scripts/install_deps.sh (etcd, etcdctl, protoc, python3-venv); as root also
#    --docker (docker.io, docker-compose, debootstrap) and scripts/start_dockerd.sh
# 2. if tests/python exists: create/reuse the venv .venv and install
#    pymilvus==2.5.18 (--no-deps) plus its runtime deps, pyarrow,
#    moto[server] (an S3-protocol server), matplotlib (the comparison's plots) and
#    kubernetes-validate (the Helm chart test),
#    unless they already import there
#    and, with npm, the Node SDK into tests/node (tests/compat.rs)
# 3. scripts/build.sh (cargo build --release --bin milvus, copied to bin/milvus)
# 4. cargo test --release [ARGS...] -- --test-threads=2
# Extra arguments go to cargo test after --release; arguments after a `--`
# go to the test harness, e.g. scripts/test.sh --test ha -- failover
# MILVUS_TEST_PYTHON is exported as .venv/bin/python when the venv exists.
# Exits with cargo's exit code.
#
# Usage: scripts/test.sh [CARGO_TEST_ARGS...] [-- HARNESS_ARGS...]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

bash "$REPO/scripts/install_deps.sh"
# tests/deploy.rs runs deploy/ in Docker: as root, install Debian's docker.io,
# docker-compose and debootstrap and start dockerd; otherwise say what will fail.
if [[ $(id -u) -eq 0 ]]; then
    bash "$REPO/scripts/install_deps.sh" --docker
    bash "$REPO/scripts/start_dockerd.sh"
elif ! docker info >/dev/null 2>&1; then
    echo "test.sh: no Docker engine answers: tests/deploy.rs will fail (as root: scripts/install_deps.sh --docker && scripts/start_dockerd.sh)" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: 'cargo' not found; install a Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi

PYMILVUS_VERSION=2.5.18
VENV="$REPO/.venv"
if [[ -d tests/python ]]; then
    if [[ -e $VENV ]] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
        echo "test.sh: $VENV is broken; recreating it"
        rm -rf "$VENV"
    fi
    if [[ ! -e $VENV ]]; then
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c "
import importlib.metadata, sys
import pymilvus, pyarrow, moto, matplotlib, kubernetes_validate, schemathesis, orjson, cachetools, ml_dtypes
import pymilvus.bulk_writer
sys.exit(importlib.metadata.version('pymilvus') != '$PYMILVUS_VERSION')
" >/dev/null 2>&1; then
        echo "test.sh: installing pymilvus $PYMILVUS_VERSION, pyarrow and moto[server] into $VENV"
        export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
        "$VENV/bin/pip" install -q --no-deps "pymilvus==$PYMILVUS_VERSION"
        "$VENV/bin/pip" install -q grpcio protobuf ujson pandas numpy python-dotenv "setuptools>69"
        # pyarrow reads our Parquet segment files; moto_server is the S3-protocol server
        # the object-storage tests run against.
        "$VENV/bin/pip" install -q pyarrow "moto[server]"
        # matplotlib draws the side-by-side comparison's plots (scripts/compare_milvus.sh).
        "$VENV/bin/pip" install -q matplotlib
        # kubernetes-validate checks the Helm chart's objects against Kubernetes schemas.
        "$VENV/bin/pip" install -q kubernetes-validate
        # schemathesis fuzzes the RESTful API from docs/openapi.json (tests/rest.rs).
        "$VENV/bin/pip" install -q schemathesis
        # What the newer pymilvus releases below need beyond 2.5.18's dependencies.
        "$VENV/bin/pip" install -q orjson cachetools requests
        # pymilvus's bulk writers (tests/import.rs writes import files with them).
        "$VENV/bin/pip" install -q minio azure-storage-blob
        # bfloat16 numpy arrays: pymilvus sends BFLOAT16_VECTOR search data only from them.
        "$VENV/bin/pip" install -q ml_dtypes
        if ! "$VENV/bin/python" -c 'import pymilvus, pymilvus.bulk_writer, pyarrow, moto, matplotlib, kubernetes_validate, schemathesis'; then
            echo "test.sh: pymilvus, pyarrow or moto do not import in $VENV after installing them" >&2
            exit 1
        fi
    fi
fi
if [[ -x "$VENV/bin/python" ]]; then
    export MILVUS_TEST_PYTHON="$VENV/bin/python"
    # The newest pymilvus 2.6 and 3.0 (tests/compat.rs runs the quickstart and the
    # README's example with each, through PYTHONPATH), each in its own directory.
    for v in 2.6.17 3.0.2; do
        if [[ ! -d "$VENV/pymilvus-$v/pymilvus" ]]; then
            echo "test.sh: installing pymilvus $v into $VENV/pymilvus-$v"
            PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install -q --no-deps \
                --target "$VENV/pymilvus-$v" "pymilvus==$v"
        fi
    done
fi

# The Node.js SDK for tests/compat.rs (npm's registry; skipped when already installed).
NODE_SDKS=(tests/node/node_modules/@zilliz/milvus2-sdk-node tests/node/node_modules/milvus-sdk-2-6
    tests/node/node_modules/milvus-sdk-3-0)
node_missing=0
for d in "${NODE_SDKS[@]}"; do [[ -d $d ]] || node_missing=1; done
if [[ -f tests/node/package.json && $node_missing -eq 1 ]]; then
    if command -v npm >/dev/null 2>&1; then
        echo "test.sh: installing the Node SDK into tests/node"
        npm install --silent --no-audit --no-fund --prefix tests/node >/dev/null
    else
        echo "test.sh: npm not found: the Node SDK test (tests/compat.rs) will fail; install nodejs and npm" >&2
    fi
fi

bash "$REPO/scripts/build.sh"

# Split "$@" at the first `--`: before goes to cargo, after to the test harness.
cargo_args=()
harness_args=()
seen_sep=false
for arg in "$@"; do
    if [[ $seen_sep == false && $arg == -- ]]; then
        seen_sep=true
    elif [[ $seen_sep == true ]]; then
        harness_args+=("$arg")
    else
        cargo_args+=("$arg")
    fi
done
threads=(--test-threads=2)
for arg in "${harness_args[@]}"; do
    if [[ $arg == --test-threads* ]]; then
        threads=()
    fi
done

export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
exec cargo test --release "${cargo_args[@]}" -- "${threads[@]}" "${harness_args[@]}"
