#!/usr/bin/env bash
# install_deps.sh - install the system packages needed to build and test milvus.
#
# Installs, only when missing: etcd server + etcdctl (Debian packages
# etcd-server, etcd-client), nats-server (the write-ahead log), protoc (protobuf-compiler, plus libprotobuf-dev
# for the google/protobuf/*.proto includes) and python3-venv (only when
# `python3 -m venv` does not work). Uses apt-get when run as root; when not
# root, prints the missing packages and the command to run, and exits 1.
# With --docker, also what deploy/ needs: a Docker engine and docker-compose (Debian's
# docker.io, docker-compose) and debootstrap (scripts/build_images.sh).
# Also checks for a Rust toolchain (cargo) but never installs it.
# Quiet and idempotent when everything is present.
#
# Usage: scripts/install_deps.sh [--docker]
set -euo pipefail

docker=false
if [[ $# -gt 0 ]]; then
    case "$1" in
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --docker) docker=true ;;
        *) echo "install_deps.sh: unknown argument: $1 (expected --docker)" >&2; exit 2 ;;
    esac
fi

missing=()
if $docker; then
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    command -v iptables >/dev/null 2>&1 || [[ -x /usr/sbin/iptables ]] || missing+=(iptables)
fi

command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
# NATS JetStream is the write-ahead log; Debian installs it in /usr/sbin.
command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]] || missing+=(nats-server)
# Well-known types (google/protobuf/descriptor.proto, ...) live in libprotobuf-dev.
if ! [[ -f /usr/include/google/protobuf/descriptor.proto || -f /usr/local/include/google/protobuf/descriptor.proto ]]; then
    missing+=(libprotobuf-dev)
fi

# `python3 -m venv` fails on Debian without python3-venv (ensurepip missing),
# so really try to create one.
venv_works() {
    command -v python3 >/dev/null 2>&1 || return 1
    local tmp rc=0
    tmp=$(mktemp -d)
    python3 -m venv "$tmp/venv" >/dev/null 2>&1 || rc=1
    rm -rf "$tmp"
    return "$rc"
}
venv_works || missing+=(python3-venv)

if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        {
            echo "install_deps.sh: missing packages: ${missing[*]}"
            echo "install them as root with:"
            echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}"
        } >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install_deps.sh: missing packages: ${missing[*]}, and apt-get is not available; install them by hand" >&2
        exit 1
    fi
    echo "install_deps.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    for tool in etcd etcdctl protoc; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "install_deps.sh: '$tool' still not found after installing packages" >&2
            exit 1
        fi
    done
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        echo "install_deps.sh: cargo is installed in $HOME/.cargo/bin but not on PATH; run: source \"$HOME/.cargo/env\"" >&2
    else
        echo "install_deps.sh: no Rust toolchain: 'cargo' not found. Install it with rustup (https://rustup.rs); this script does not." >&2
    fi
fi
exit 0
