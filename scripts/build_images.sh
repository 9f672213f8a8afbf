#!/usr/bin/env bash
# build_images.sh - build the Docker images deploy/docker-compose.yml runs, with no registry.
#
# No container registry is reachable, so everything starts from Debian packages:
#   milvus-ha-base:bookworm   debootstrap --variant=minbase bookworm (+ curl for health
#                             checks), trimmed and `docker import`ed; the rootfs tarball
#                             is cached and reused
#   milvus-ha:<version>       + bin/milvus (scripts/build.sh) and milvus.yaml
#   milvus-ha-etcd:<version>  + etcd, etcdctl from Debian's etcd-server / etcd-client
#   milvus-ha-nats:<version>  + nats-server from Debian's nats-server
#   milvus-ha-s3:<version>    + s3s-fs (crates.io, `cargo install --features binary`), an
#                             S3-protocol server keeping objects as files on disk
# Each image carries a label with the hash of its inputs; an image whose inputs did not
# change is not rebuilt. Needs a running Docker engine (root starts one: dockerd),
# debootstrap and apt-get (scripts/install_deps.sh --docker installs them).
#
# Environment: MILVUS_IMAGE_CACHE  cache directory (default /var/cache/milvus-ha, or
#              ~/.cache/milvus-ha when not root); MILVUS_BIN  binary to package (default:
#              scripts/build.sh, then bin/milvus); DEBIAN_MIRROR (default
#              http://deb.debian.org/debian).
# Usage: scripts/build_images.sh [--sizes]   (--sizes: only print the images and sizes)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

die() { echo "build_images.sh: $*" >&2; exit 1; }
say() { echo "build_images.sh: $*" >&2; }

sizes() {
    docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E '^milvus-ha' | sort
}

case "${1:-}" in
    "") ;;
    --sizes) sizes; exit 0 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (expected --sizes or nothing)" ;;
esac

docker info >/dev/null 2>&1 || die "no Docker engine answers ('docker info' fails); start one (as root: dockerd &) or run scripts/install_deps.sh --docker"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found; install it (apt-get install debootstrap) or run scripts/install_deps.sh --docker"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: the images are built from Debian packages"

if [[ $(id -u) -eq 0 ]]; then
    CACHE=${MILVUS_IMAGE_CACHE:-/var/cache/milvus-ha}
else
    CACHE=${MILVUS_IMAGE_CACHE:-$HOME/.cache/milvus-ha}
fi
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
export DOCKER_BUILDKIT=0
mkdir -p "$CACHE"

# --- base: debootstrap rootfs, cached as a tarball -------------------------------------
BASE_PACKAGES=curl,ca-certificates
BASE_KEY=$(echo "bookworm minbase $BASE_PACKAGES trim-v1" | sha256sum | cut -c1-16)
BASE_TAR="$CACHE/rootfs-bookworm-$BASE_KEY.tar"
if [[ ! -f $BASE_TAR ]]; then
    [[ $(id -u) -eq 0 ]] || die "debootstrap needs root to build the base rootfs ($BASE_TAR)"
    say "debootstrap bookworm (minbase + $BASE_PACKAGES) into the cache"
    root="$CACHE/rootfs.tmp.$$"
    rm -rf "$root"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $CACHE/debootstrap.log"
    # What a container never needs: documentation, manuals, translations, apt's lists.
    rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
        "$root"/var/cache/debconf/*-old "$root"/var/log/*
    tar -C "$root" -cf "$BASE_TAR.tmp" .
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$root"
fi
label_of() {
    docker image inspect -f '{{index .Config.Labels "milvus-ha.inputs"}}' "$1" 2>/dev/null || true
}
if [[ $(label_of milvus-ha-base:bookworm) != "$BASE_KEY" ]]; then
    say "importing milvus-ha-base:bookworm"
    docker import --change "LABEL milvus-ha.inputs=$BASE_KEY" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$BASE_TAR" milvus-ha-base:bookworm >/dev/null
fi

# --- binaries from Debian packages ------------------------------------------------------
debs="$CACHE/debs"
mkdir -p "$debs"
extract() { # extract PACKAGE: unpack its .deb (downloaded once) into $debs/PACKAGE
    local pkg=$1 deb
    deb=$(ls "$debs"/"${pkg}"_*.deb 2>/dev/null | head -1 || true)
    if [[ -z $deb ]]; then
        (cd "$debs" && apt-get download "$pkg" >/dev/null 2>&1) || {
            apt-get update -qq >/dev/null 2>&1 || true
            (cd "$debs" && apt-get download "$pkg" >/dev/null) || die "apt-get download $pkg failed"
        }
        deb=$(ls "$debs"/"${pkg}"_*.deb | head -1)
    fi
    if [[ ! -d $debs/$pkg ]]; then
        dpkg-deb -x "$deb" "$debs/$pkg.tmp" && mv "$debs/$pkg.tmp" "$debs/$pkg"
    fi
}
extract etcd-server
extract etcd-client
extract nats-server

# --- s3s-fs from crates.io, built once ----------------------------------------------------
S3S_VERSION=0.14.1
S3S="$CACHE/s3s-fs-$S3S_VERSION/bin/s3s-fs"
if [[ ! -x $S3S ]]; then
    command -v cargo >/dev/null 2>&1 || PATH="$HOME/.cargo/bin:$PATH"
    say "building s3s-fs $S3S_VERSION (once; cached in $CACHE)"
    cargo install --quiet --locked s3s-fs --version "$S3S_VERSION" --features binary \
        --root "$CACHE/s3s-fs-$S3S_VERSION" || die "cargo install s3s-fs failed"
fi

# --- milvus binary ------------------------------------------------------------------------
if [[ -n ${MILVUS_BIN:-} ]]; then
    BIN=$MILVUS_BIN
else
    bash scripts/build.sh >&2
    BIN=bin/milvus
fi
[[ -x $BIN ]] || die "$BIN is not an executable"

# --- the images: one build context each, skipped when the inputs' hash is unchanged ------
build() { # build NAME:TAG DOCKERFILE FILE...  (FILEs are copied into the context)
    local image=$1 dockerfile=$2 ctx key
    shift 2
    key=$( (cat "$dockerfile"; sha256sum "$@" | cut -d' ' -f1; echo "$BASE_KEY") | sha256sum | cut -c1-16)
    if [[ $(label_of "$image") == "$key" ]]; then
        say "$image is up to date"
        return
    fi
    ctx=$(mktemp -d)
    cp "$@" "$ctx/"
    cp "$dockerfile" "$ctx/Dockerfile"
    say "building $image"
    local out
    if ! out=$(docker build -q --label "milvus-ha.inputs=$key" -t "$image" "$ctx" 2>&1); then
        rm -rf "$ctx"
        echo "$out" >&2
        die "docker build of $image failed"
    fi
    rm -rf "$ctx"
}
tmpbin=$(mktemp -d)
trap 'rm -rf "$tmpbin"' EXIT
cp "$BIN" "$tmpbin/milvus"
build "milvus-ha:$VERSION" deploy/images/milvus.Dockerfile "$tmpbin/milvus" milvus.yaml
build "milvus-ha-etcd:$VERSION" deploy/images/etcd.Dockerfile \
    "$debs/etcd-server/usr/bin/etcd" "$debs/etcd-client/usr/bin/etcdctl"
build "milvus-ha-nats:$VERSION" deploy/images/nats.Dockerfile "$debs/nats-server/usr/sbin/nats-server"
build "milvus-ha-s3:$VERSION" deploy/images/s3.Dockerfile "$S3S" deploy/images/s3-entrypoint.sh
sizes
