#!/usr/bin/env bash
# make-tls13-samples.sh - OpenSSL TLS 1.3 captures with their key logs, for
# `--keylog` and the tls13_handshake_aborted inference, in samples/tls13/
#
#   sudo bash scripts/make-tls13-samples.sh
#
# needs: openssl tcpdump iproute2
#
# What it does
#   * builds a throw-away root CA -> server leaf (api.internal; one expired
#     leaf) and a client leaf, plus an unrelated CA, in a temporary directory;
#     only the root is copied (samples/tls13/ca.pem),
#   * creates the namespace "tlstap-tls13" with only `lo` (10.30.0.10 server,
#     10.30.0.20 client); nothing leaves it,
#   * per case: tcpdump on lo, `openssl s_server -keylogfile`, one
#     `openssl s_client -keylogfile`, both key logs concatenated into
#     samples/tls13/NAME.keylog (chmod 600),
#   * cases: clients that reject (-verify_return_error against an unrelated CA,
#     a wrong -verify_hostname, an expired leaf) and clients that accept (the
#     right CA; no -verify_return_error against the same bad chains; mTLS),
#     REPEAT times each (default 3), for the inference measurement,
#   * writes samples/tls13/MANIFEST.tsv (name, client verdict, s_client rc).
# make-samples.sh keeps samples/tls13/ as it keeps upgrades/ and tunnels/.
set -euo pipefail

NS=tlstap-tls13
SRV=10.30.0.10
CLI=10.30.0.20
REPEAT=${REPEAT:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=$ROOT/samples/tls13
WORK=$(mktemp -d)
log() { printf '[make-tls13-samples] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root (namespace, tcpdump)"

cleanup() {
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    [[ -n ${KEEP_WORK:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip addr add "$SRV/24" dev lo
ip netns exec "$NS" ip addr add "$CLI/24" dev lo

# ---------------------------------------------------------------- PKI
cd "$WORK"
ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -out "$1.pem" -days 3650 -subj "/CN=$2/O=tlstap TLS 1.3 samples" 2>/dev/null; }
leaf() {   # leaf NAME CN EXT START END (openssl ca: 3.0's x509 cannot backdate)
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" \
        -subj "/CN=$2" 2>/dev/null
    printf '[ext]\n%s\n' "$3" >"$1.ext"
    mkdir -p db; : >db/index; openssl rand -hex 16 >db/serial
    cat >ca.cnf <<CNF
[ca]
default_ca = local
[local]
database = db/index
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CNF
    openssl ca -batch -config ca.cnf -cert root.pem -keyfile root.key -in "$1.csr" -out "$1.pem" \
        -extfile "$1.ext" -extensions ext -startdate "$4" -enddate "$5" -notext 2>"$1.ca.log" \
        || die "signing $1: $(cat "$1.ca.log")"
}
ca root "tlstap TLS 1.3 Root"
ca unrelated "tlstap Unrelated CA"
now=$(date -u +%Y%m%d%H%M%SZ)
later=$(date -u -d '+90 days' +%Y%m%d%H%M%SZ)
past1=$(date -u -d '-200 days' +%Y%m%d%H%M%SZ)
past2=$(date -u -d '-100 days' +%Y%m%d%H%M%SZ)
leaf server api.internal "subjectAltName=DNS:api.internal
extendedKeyUsage=serverAuth" "$now" "$later"
leaf expired api.internal "subjectAltName=DNS:api.internal
extendedKeyUsage=serverAuth" "$past1" "$past2"
leaf client client.internal "subjectAltName=DNS:client.internal
extendedKeyUsage=clientAuth" "$now" "$later"
for f in server expired client; do [[ -s $f.pem ]] || die "openssl x509 -not_before unsupported ($f)"; done
cd "$ROOT"

# ---------------------------------------------------------------- cases
rm -rf "$WORK/out"; mkdir -p "$WORK/out"
printf 'name\tclient\texpected\ts_client_rc\n' >"$WORK/out/MANIFEST.tsv"
port=9400
capture() {  # capture NAME VERDICT SERVER-CERT SERVER-EXTRA -- CLIENT-ARGS...
    local name=$1 verdict=$2 cert=$3 extra=$4; shift 5
    port=$((port + 1))
    local out=$WORK/out
    ip netns exec "$NS" tcpdump -U -n -i lo -w "$out/$name.pcap" "tcp port $port" 2>"$WORK/$name.tcpdump" &
    local dump=$!
    for _ in $(seq 50); do grep -qs 'listening on' "$WORK/$name.tcpdump" && break; sleep 0.1; done
    # shellcheck disable=SC2086
    ip netns exec "$NS" openssl s_server -accept "$SRV:$port" -naccept 1 -www -tls1_3 \
        -cert "$WORK/$cert.pem" -key "$WORK/$cert.key" -keylogfile "$WORK/$name.server.keylog" $extra \
        </dev/null >"$WORK/$name.server" 2>&1 &
    local server=$!
    for _ in $(seq 50); do ip netns exec "$NS" ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.1; done
    local rc=0
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 15 ip netns exec "$NS" openssl s_client \
        -connect "$SRV:$port" -bind "$CLI:0" -servername api.internal -tls1_3 -ign_eof \
        -keylogfile "$WORK/$name.client.keylog" "$@" >"$WORK/$name.client" 2>&1 || rc=$?
    sleep 0.5
    kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
    sleep 0.3
    kill "$dump" 2>/dev/null || true; wait "$dump" 2>/dev/null || true
    cat "$WORK/$name".*.keylog 2>/dev/null | sort -u >"$out/$name.keylog"
    chmod 600 "$out/$name.keylog"
    printf '%s\t%s\t%s\t%s\n' "$name" "$verdict" "$([[ $verdict == rejects ]] && echo tls13_handshake_aborted || echo none)" "$rc" >>"$out/MANIFEST.tsv"
    log "$name: s_client rc=$rc ($verdict)"
}
for i in $(seq "$REPEAT"); do
    capture "good-$i" accepts server "" -- -CAfile "$WORK/root.pem" -verify_return_error
    capture "unknown-ca-reject-$i" rejects server "" -- -CAfile "$WORK/unrelated.pem" -verify_return_error
    capture "unknown-ca-accept-$i" accepts server "" -- -CAfile "$WORK/unrelated.pem"
    capture "name-reject-$i" rejects server "" -- -CAfile "$WORK/root.pem" -verify_return_error -verify_hostname other.internal
    capture "expired-reject-$i" rejects expired "" -- -CAfile "$WORK/root.pem" -verify_return_error
    capture "expired-accept-$i" accepts expired "" -- -CAfile "$WORK/root.pem"
    capture "mtls-$i" accepts server "-Verify 1 -CAfile $WORK/root.pem" -- -CAfile "$WORK/root.pem" -verify_return_error -cert "$WORK/client.pem" -key "$WORK/client.key"
done
rm -rf "$DEST"; mkdir -p "$DEST"
cp "$WORK"/out/* "$DEST/"
cp "$WORK/root.pem" "$DEST/ca.pem"
log "wrote $(ls "$DEST"/*.pcap | wc -l) captures to $DEST"
