#!/usr/bin/env bash
# gen_certs.sh - make a certificate set for common.security.tlsMode and internal TLS
# (openssl required): the cluster CA, a server certificate it signs for the names given
# (default: localhost and 127.0.0.1) that is also the cluster's client certificate
# (serverAuth and clientAuth: internaltls.*, etcd.ssl.tlsCert, natsmq.tls.clientPemPath),
# and, under a separate client CA, a client certificate for users (tlsMode 2): a user's
# certificate is then never accepted by etcd, NATS or the internal ports.
#
# Writes DIR/ca.pem, ca.key, server.pem, server.key, client-ca.pem, client-ca.key,
# client.pem, client.key (DIR defaults to configs/cert, where milvus.yaml's tls.* keys
# point). Keys are ECDSA P-256; certificates are valid for DAYS days (default 825).
#
# Usage: scripts/gen_certs.sh [--dir DIR] [--days DAYS] [NAME ...]
#   e.g. scripts/gen_certs.sh --dir /etc/milvus/cert milvus.example.com 10.0.0.5
# Then: common.security.tlsMode: 1 (or 2) with tls.serverPemPath and tls.serverKeyPath at
# server.pem and server.key, and for mode 2 tls.caPemPath at client-ca.pem; clients
# check the server with ca.pem (pymilvus server_pem_path= / ca_pem_path=) and present
# client.pem / client.key in mode 2.
set -euo pipefail

DIR=configs/cert
DAYS=825
NAMES=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
        --days) DAYS=${2:?--days needs a number}; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gen_certs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) NAMES+=("$1"); shift ;;
    esac
done
[[ ${#NAMES[@]} -gt 0 ]] || NAMES=(localhost 127.0.0.1)
command -v openssl >/dev/null || { echo "gen_certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
[[ $DAYS =~ ^[0-9]+$ ]] || { echo "gen_certs.sh: --days expects a whole number, got $DAYS" >&2; exit 2; }

mkdir -p "$DIR"
SAN=""
for n in "${NAMES[@]}"; do
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then SAN+="IP:$n,"; else SAN+="DNS:$n,"; fi
done
SAN=${SAN%,}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # name cn
    key "$DIR/$1.key"
    openssl req -x509 -new -key "$DIR/$1.key" -sha256 -days "$DAYS" -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$DIR/$1.pem"
}
leaf() { # name cn usage san ca
    key "$DIR/$1.key"
    openssl req -new -key "$DIR/$1.key" -subj "/CN=$2" -out "$TMP/$1.csr"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n%s' \
        "$3" "${4:+subjectAltName=$4}" > "$TMP/$1.ext"
    openssl x509 -req -in "$TMP/$1.csr" -CA "$DIR/$5.pem" -CAkey "$DIR/$5.key" -CAcreateserial \
        -CAserial "$TMP/$5.srl" -days "$DAYS" -sha256 -extfile "$TMP/$1.ext" -out "$DIR/$1.pem" 2>/dev/null
}
ca ca "milvus cluster CA"
ca client-ca "milvus client CA"
leaf server "${NAMES[0]}" serverAuth,clientAuth "$SAN" ca
leaf client "milvus client" clientAuth "" client-ca
chmod 600 "$DIR"/*.key
echo "gen_certs.sh: wrote $DIR/{ca,server,client-ca,client}.{pem,key} for $SAN (valid $DAYS days)"
