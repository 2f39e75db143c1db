#!/usr/bin/env bash
# make-samples.sh - regenerate the real TLS packet captures under samples/
#
#   sudo bash scripts/make-samples.sh
#
# needs: openssl tcpdump tshark wireshark-common iproute2 python3 procps
#
# What it does
#   * builds a throw-away test PKI with openssl (root CA -> intermediate CA ->
#     leaves) in a temporary directory; only the public CA certificates are
#     copied to samples/pki/,
#   * creates the private network namespace "tlstap-samples" with only `lo`
#     inside it, carrying 10.20.0.10 (server) and 10.20.0.20 (client); no
#     packet ever leaves that namespace,
#   * for each sample: starts tcpdump on that `lo`, an `openssl s_server`
#     bound to 10.20.0.10, drives it with `openssl s_client -bind 10.20.0.20:0`,
#     stops tcpdump once the server has exited,
#   * checks every capture with tshark and fails if it does not hold what it
#     should, and writes samples/MANIFEST.md (+ MANIFEST.tsv) from tshark and
#     openssl output,
#   * only when everything passed, replaces the generated files in samples/
#     (*.pcap, *.pcapng, MANIFEST.*, pki/, keylog/); stacks.pcap, upgrades/,
#     tunnels/, resumption/, tls13/ and their manifest rows and sections (other
#     scripts') are kept.
#
# Every run makes a fresh PKI, so fingerprints, dates, client ports and
# random values change from run to run: MANIFEST.md always describes the files
# next to it.  Set KEEP_WORK=1 to keep the temporary directory (logs, keys).
set -euo pipefail

NS=tlstap-samples
SRV=10.20.0.10
CLI=10.20.0.20
SNI=api.internal
HRR_RANDOM=cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c
DOWNGRADE_TLS12=444f574e47524401   # "DOWNGRD\x01", last 8 bytes of ServerHello.random

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=$ROOT/samples
START_TS=$(date +%s)

log() { printf '[make-samples %3ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, tcpdump): sudo bash $0"
for c in openssl tcpdump tshark editcap capinfos md5sum ip ss ps python3 timeout; do
    command -v "$c" >/dev/null || die "missing command: $c (see '# needs:' at the top)"
done

WORK=$(mktemp -d /tmp/tlstap-samples.XXXXXX)
OUT=$WORK/out        # captures are built here, moved to samples/ at the very end
PKI=$WORK/pki
LOGS=$WORK/log
mkdir -p "$OUT/pki" "$OUT/keylog" "$PKI" "$LOGS" "$WORK/cache"
ROWS=$WORK/rows.tsv
: >"$ROWS"

BG_PIDS=()

# ---------------------------------------------------------------- process helpers
# alive PID: true while PID runs (a zombie child counts as dead)
alive() {
    local s
    s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $s && $s != Z* ]]
}

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds
wait_until() {
    local t=$1; shift
    local deadline=$(( $(date +%s%N) + t * 1000000000 ))
    until "$@"; do
        (( $(date +%s%N) < deadline )) || return 1
        sleep 0.05
    done
}

dead() { ! alive "$1"; }

# stop PID: SIGTERM (or given signal), wait up to 5 s, then SIGKILL; reap it
stop_pid() {
    local pid=$1 sig=${2:-TERM}
    if alive "$pid"; then
        kill -s "$sig" "$pid" 2>/dev/null || true
        wait_until 5 dead "$pid" || kill -s KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

ns_exists() { ip netns list 2>/dev/null | grep -qw "^$NS"; }

# kill whatever still runs inside our own namespace (only this script starts
# processes there), then delete it
ns_teardown() {
    ns_exists || return 0
    local p
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    local p
    for p in "${BG_PIDS[@]}"; do stop_pid "$p"; done
    ns_teardown
    if [[ ${KEEP_WORK:-0} == 1 || $rc -ne 0 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
set -E
trap 'log "command failed (line $LINENO): $BASH_COMMAND"' ERR

# (never background in_ns: & would fork a subshell and $! would not be the real process)
in_ns() { ip netns exec "$NS" "$@"; }

# ---------------------------------------------------------------- namespace
setup_ns() {
    ns_teardown                      # left over from an interrupted run
    ip netns add "$NS"
    in_ns ip link set lo up
    in_ns ip addr add "$SRV/32" dev lo
    in_ns ip addr add "$CLI/32" dev lo
    in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
}

# set_mtu N: lo MTU; gso_max_segs 1 stops lo from passing (and tcpdump from
# seeing) TSO/GSO super-packets bigger than the MTU
set_mtu() {
    if (( $1 < 65536 )); then
        in_ns ip link set lo mtu "$1" gso_max_size "$1" gso_max_segs 1
    else
        in_ns ip link set lo mtu 65536 gso_max_size 65536 gso_max_segs 65535
    fi
}

# ---------------------------------------------------------------- PKI
make_pki() {
    log "building test PKI"
    cd "$PKI"
    cat >pki.cnf <<EOF
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused

[ ca ]
default_ca = CA_root

[ CA_root ]
dir             = $PKI/root
database        = \$dir/index.txt
new_certs_dir   = \$dir/new
serial          = \$dir/serial
default_md      = sha256
policy          = policy_any
unique_subject  = no
preserve        = yes
email_in_dn     = no
copy_extensions = none
default_days    = 3650

[ CA_inter ]
dir             = $PKI/inter
database        = \$dir/index.txt
new_certs_dir   = \$dir/new
serial          = \$dir/serial
default_md      = sha256
policy          = policy_any
unique_subject  = no
preserve        = yes
email_in_dn     = no
copy_extensions = none
default_days    = 90

[ policy_any ]
organizationName = optional
commonName       = supplied

[ v3_root ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ v3_inter ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ server_leaf ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:api.internal, DNS:*.svc.internal, IP:$SRV
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ server_self ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:api.internal, DNS:*.svc.internal, IP:$SRV
subjectKeyIdentifier   = hash

[ server_other ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:other.internal
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ client_leaf ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectAltName         = DNS:client.internal
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
    local d
    for d in root inter; do mkdir -p "$d/new"; : >"$d/index.txt"; done
    local O="/O=tlstap Test PKI"
    key() { openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${2:-2048}" -out "$1.key" 2>/dev/null; }
    csr() { openssl req -new -config pki.cnf -key "$1.key" -subj "$2" -out "$1.csr"; }
    # sign CA NAME EXT [extra openssl-ca args]
    sign() {
        local ca=$1 name=$2 ext=$3; shift 3
        openssl rand -hex 16 >"$PKI/${ca#CA_}/serial"   # random serial (openssl ca -rand_serial still wants the file)
        local cacert cakey
        if [[ $ca == CA_root ]]; then cacert=root-ca.pem cakey=root-ca.key; else cacert=intermediate-ca.pem cakey=intermediate-ca.key; fi
        openssl ca -batch -notext -rand_serial -config pki.cnf -name "$ca" -cert "$cacert" -keyfile "$cakey" \
            -extfile pki.cnf -extensions "$ext" -in "$name.csr" -out "$name.pem" "$@" 2>>"$LOGS/pki.log"
    }
    utc() { date -u -d "$1" +%y%m%d%H%M%SZ; }

    # root CA, 10 years, self-signed
    key root-ca
    openssl req -new -x509 -config pki.cnf -extensions v3_root -key root-ca.key -days 3650 \
        -subj "$O/CN=tlstap Test Root CA" -out root-ca.pem
    # intermediate CA, 10 years, signed by the root
    key intermediate-ca; csr intermediate-ca "$O/CN=tlstap Test Intermediate CA"
    sign CA_root intermediate-ca v3_inter -days 3650
    # an unrelated root the leaves do not chain to
    key unrelated-ca
    openssl req -new -x509 -config pki.cnf -extensions v3_root -key unrelated-ca.key -days 3650 \
        -subj "$O/CN=tlstap Unrelated Root CA" -out unrelated-ca.pem

    # good server leaf: 90 days from now
    key server; csr server "/CN=api.internal"
    sign CA_inter server server_leaf -days 90
    # client leaf (clientAuth)
    key client; csr client "/CN=client.internal"
    sign CA_inter client client_leaf -days 90
    # expired: valid from 120 days ago to 30 days ago
    key expired; csr expired "/CN=api.internal"
    sign CA_inter expired server_leaf -startdate "$(utc '-120 days')" -enddate "$(utc '-30 days')"
    # not yet valid: valid from in 365 days for 90 days
    key notyet; csr notyet "/CN=api.internal"
    sign CA_inter notyet server_leaf -startdate "$(utc '+365 days')" -enddate "$(utc '+455 days')"
    # self-signed leaf
    key selfsigned; csr selfsigned "/CN=api.internal"
    openssl x509 -req -in selfsigned.csr -signkey selfsigned.key -days 90 -sha256 \
        -extfile pki.cnf -extensions server_self -out selfsigned.pem 2>>"$LOGS/pki.log"
    # leaf signed with sha1WithRSAEncryption
    key sha1; csr sha1 "/CN=api.internal"
    sign CA_inter sha1 server_leaf -days 90 -md sha1
    # 1024-bit RSA leaf
    key rsa1024 1024; csr rsa1024 "/CN=api.internal"
    sign CA_inter rsa1024 server_leaf -days 90
    # leaf for another name
    key other; csr other "/CN=other.internal"
    sign CA_inter other server_other -days 90

    cp root-ca.pem intermediate-ca.pem unrelated-ca.pem "$OUT/pki/"
    # sanity: the good chain verifies
    openssl verify -CAfile root-ca.pem -untrusted intermediate-ca.pem server.pem client.pem >>"$LOGS/pki.log"
    cd "$ROOT"
}

# ---------------------------------------------------------------- capture helpers
TCPDUMP_PID=
start_capture() {            # start_capture NAME
    local name=$1
    ip netns exec "$NS" tcpdump -Z root -U --immediate-mode -n -i lo -w "$OUT/$name.pcap" \
        "net 10.20.0.0/24" </dev/null 2>"$LOGS/$name.tcpdump" &
    TCPDUMP_PID=$!
    BG_PIDS+=("$TCPDUMP_PID")
    wait_until 10 grep -q 'listening on' "$LOGS/$name.tcpdump" \
        || die "$name: tcpdump did not start: $(cat "$LOGS/$name.tcpdump")"
    sleep 0.2
}

stop_capture() {             # stop_capture NAME
    local name=$1
    sleep 0.3                # let the last FIN/ACKs through
    stop_pid "$TCPDUMP_PID" TERM   # (SIGINT is ignored by background jobs of a script)
    grep -q 'packets captured' "$LOGS/$name.tcpdump" || die "$name: tcpdump did not exit cleanly"
}

listening() { in_ns ss -Hltn "sport = :$1" | grep -q .; }

SERVER_PID=
start_tls_server() {         # start_tls_server NAME PORT ARGS...
    local name=$1 port=$2; shift 2
    ip netns exec "$NS" openssl s_server -accept "$SRV:$port" -naccept 1 -www "$@" \
        </dev/null >"$LOGS/$name.server" 2>&1 &
    SERVER_PID=$!
    BG_PIDS+=("$SERVER_PID")
    wait_until 10 listening "$port" || die "$name: s_server not listening: $(cat "$LOGS/$name.server")"
}

start_http_server() {        # start_http_server NAME PORT
    local name=$1 port=$2
    ip netns exec "$NS" python3 "$WORK/http_server.py" "$SRV" "$port" </dev/null >"$LOGS/$name.server" 2>&1 &
    SERVER_PID=$!
    BG_PIDS+=("$SERVER_PID")
    wait_until 10 listening "$port" || die "$name: http server not listening: $(cat "$LOGS/$name.server")"
}

wait_server() {              # wait_server NAME
    wait_until 10 dead "$SERVER_PID" || { stop_pid "$SERVER_PID"; die "$1: server did not exit; see $LOGS/$1.server"; }
    wait "$SERVER_PID" 2>/dev/null || true
}

# run_tls_client NAME PORT ok|fail ARGS...
run_tls_client() {
    local name=$1 port=$2 expect=$3; shift 3
    local rc=0
    printf 'GET / HTTP/1.0\r\nHost: %s\r\nUser-Agent: tlstap-sample-client\r\n\r\n' "$SNI" |
        timeout 15 ip netns exec "$NS" openssl s_client -connect "$SRV:$port" -bind "$CLI:0" \
            -ign_eof -keylogfile "$OUT/keylog/$name.keylog" "$@" >"$LOGS/$name.client" 2>&1 || rc=$?
    if [[ $expect == ok && $rc -ne 0 ]]; then die "$name: s_client failed (rc=$rc): $(tail -5 "$LOGS/$name.client")"; fi
    if [[ $expect == fail && $rc -eq 0 ]]; then die "$name: s_client unexpectedly succeeded"; fi
    [[ $rc -ne 124 ]] || die "$name: s_client timed out"
    return 0
}

run_http_client() {          # run_http_client NAME PORT
    timeout 15 ip netns exec "$NS" python3 "$WORK/http_client.py" "$SRV" "$2" "$CLI" \
        >>"$LOGS/$1.client" 2>&1 || die "$1: http client failed: $(cat "$LOGS/$1.client")"
}

# tls_sample NAME PORT ok|fail SERVER-ARGS... -- CLIENT-ARGS...
tls_sample() {
    local name=$1 port=$2 expect=$3; shift 3
    local -a sargs=() cargs=()
    while [[ $1 != -- ]]; do sargs+=("$1"); shift; done
    shift; cargs=("$@")
    log "capturing $name.pcap"
    start_capture "$name"
    start_tls_server "$name" "$port" "${sargs[@]}"
    run_tls_client "$name" "$port" "$expect" "${cargs[@]}"
    wait_server "$name"
    stop_capture "$name"
}

# ---------------------------------------------------------------- tshark helpers
# Each capture is read ONCE by tshark (per decoding mode), dumping the fields
# below for every frame; all checks and the manifest then query that dump with
# awk.  (tshark start-up costs ~0.3-0.5 s, so one call per question was too slow.)
DUMP_FIELDS=(frame.number ip.src tcp.srcport ip.dst tcp.dstport tcp.flags.syn tcp.flags.ack
    frame.time_epoch frame.len tcp.stream
    tls.handshake.type tls.handshake.version tls.handshake.ciphersuite
    tls.handshake.extensions.supported_version tls.handshake.random
    tls.handshake.extensions_server_name tls.handshake.extensions_alpn_str
    tls.handshake.extensions_key_share_group tls.handshake.extensions_key_share_selected_group
    tls.handshake.server_named_curve tls.handshake.certificate tcp.segment.count tls.handshake.length
    tls.alert_message.level tls.alert_message.desc tls.app_data
    http.request.method http.request.version http.response.code http.response.version)

# dump FILE PORT tls|http: memoised one-pass field dump ('|'-separated, lists ','-joined)
dump() {
    local f=$1 port=$2 mode=$3
    local key; key=$(printf '%s\0' "$f" "$port" "$mode" | md5sum | cut -c1-32)
    if [[ ! -e $WORK/cache/$key ]]; then
        local name; name=$(basename "$f"); name=${name%.pcap*}
        local -a opts=(-n -o http.desegment_body:FALSE) fields=()
        if [[ $mode == tls ]]; then
            opts+=(-d "tcp.port==$port,tls")
            if [[ -s $OUT/keylog/$name.keylog ]]; then opts+=(-o "tls.keylog_file:$OUT/keylog/$name.keylog"); fi
        else
            opts+=(-d "tcp.port==$port,http")
        fi
        local x; for x in "${DUMP_FIELDS[@]}"; do fields+=(-e "$x"); done
        tshark -r "$f" "${opts[@]}" -T fields -E separator='|' -E occurrence=a -E aggregator=, \
            "${fields[@]}" 2>>"$LOGS/tshark.log" >"$WORK/cache/$key.tmp"
        mv "$WORK/cache/$key.tmp" "$WORK/cache/$key"
    fi
    cat "$WORK/cache/$key"
}

AWK_LIB=$(
    i=1
    printf 'BEGIN {'
    for x in "${DUMP_FIELDS[@]}"; do printf ' F["%s"] = %d;' "$x" "$i"; i=$((i + 1)); done
    printf ' }\n'
    cat <<'EOF'
function v(n)        { if (!(n in F)) { print "unknown field " n > "/dev/stderr"; exit 2 } return $(F[n]) }
function set(n)      { return v(n) != "" }
function has(n, x,   a, k, i) { k = split(v(n), a, ","); for (i = 1; i <= k; i++) if (a[i] == x) return 1; return 0 }
function hs(t)       { return has("tls.handshake.type", t) }
function from_srv()  { return v("ip.src") == SRV }
function from_cli()  { return v("ip.src") == CLI }
EOF
)

# q FILE PORT AWK-CONDITION FIELD...   print FIELD values ('|'-separated) of the
#   frames matching the condition (port decoded as TLS, decrypted with the keylog)
# qh ...                               the same with the port decoded as plain HTTP
q_mode() {
    local mode=$1 f=$2 port=$3 cond=$4; shift 4
    local out="" x
    # a misspelt field would silently match nothing: record it, checked by queries_ok
    for x in $( (grep -oE '(v|set|has)\("[^"]+"' <<<"$cond" || true) | sed -E 's/^[a-z]+\("//; s/"$//') "$@"; do
        [[ " ${DUMP_FIELDS[*]} " == *" $x "* ]] || echo "unknown field '$x' in query: $cond" >>"$WORK/query-errors"
    done
    for x in "$@"; do out+="${out:+ \"|\" }v(\"$x\")"; done
    dump "$f" "$port" "$mode" |
        awk -F'|' -v SRV="$SRV" -v CLI="$CLI" -v HRR="$HRR_RANDOM" "$AWK_LIB"$'\n'"{ if ($cond) print ${out:-\$1} }"
}
q()  { q_mode tls "$@"; }
qh() { q_mode http "$@"; }
count() { q "$@" | wc -l; }
queries_ok() { [[ ! -s $WORK/query-errors ]] || die "bad tshark field queries: $(sort -u "$WORK/query-errors")"; }

expect_eq() {                # expect_eq NAME WHAT ACTUAL EXPECTED
    [[ $3 == "$4" ]] || die "$1: $2 is '$3', expected '$4'"
}
expect_ge() { (( $3 >= $4 )) || die "$1: $2 is $3, expected >= $4"; }

hex4() { [[ -n $1 ]] && printf '0x%04x' "$(( $1 ))" || true; }

version_name() {
    case $1 in
        0x0300) echo "SSL 3.0";; 0x0301) echo "TLS 1.0";; 0x0302) echo "TLS 1.1";;
        0x0303) echo "TLS 1.2";; 0x0304) echo "TLS 1.3";; *) echo "$1";;
    esac
}
group_name() {
    case $1 in
        0x0017) echo secp256r1;; 0x0018) echo secp384r1;; 0x0019) echo secp521r1;;
        0x001d) echo x25519;; 0x001e) echo x448;; 0x0100) echo ffdhe2048;; 0x0101) echo ffdhe3072;;
        "") echo "";; *) echo "$1";;
    esac
}
# IANA cipher-suite name from openssl's own table
CIPHER_TABLE=$WORK/ciphers.txt
openssl ciphers -V -stdname 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' |
    awk '{ split($1, b, ","); printf "0x%s%s %s\n", tolower(substr(b[1],3)), tolower(substr(b[2],3)), $3 }' >"$CIPHER_TABLE"
cipher_name() { awk -v c="$1" '$1 == c { print $2; exit }' "$CIPHER_TABLE"; }

# negotiated version / cipher of the last real ServerHello (skipping HRR)
sh_fields() {                # sh_fields FILE PORT -> "version|cipher|supported_version|random"
    q "$1" "$2" 'hs(2) && v("tls.handshake.random") != HRR' \
        tls.handshake.version tls.handshake.ciphersuite tls.handshake.extensions.supported_version \
        tls.handshake.random | tail -1
}
neg_version() {
    local v c sv r
    IFS='|' read -r v c sv r <<<"$(sh_fields "$1" "$2")"
    [[ -n $sv ]] && echo "$sv" || echo "$v"
}
neg_cipher() { sh_fields "$1" "$2" | cut -d'|' -f2; }
server_random() { sh_fields "$1" "$2" | cut -d'|' -f4 | tr -d ':'; }

# hex of the server's certificates (comma separated), first server Certificate message
server_certs_hex() { q "$1" "$2" 'hs(11) && from_srv()' tls.handshake.certificate | head -1; }
client_certs_hex() { q "$1" "$2" 'hs(11) && from_cli()' tls.handshake.certificate | head -1; }
ncerts() { local h=$1; [[ -z $h ]] && echo 0 || awk -F, '{print NF}' <<<"$h"; }
# leaf_der HEXLIST OUTFILE
leaf_der() { python3 -c 'import sys; open(sys.argv[2],"wb").write(bytes.fromhex(sys.argv[1].split(",")[0].replace(":","")))' "$1" "$2"; }

x509_cn() {                  # x509_cn CERT subject|issuer [DER|PEM]
    openssl x509 -inform "${3:-DER}" -in "$1" -noout -"$2" -nameopt multiline,utf8 |
        awk -F' = ' '/commonName/ { print $2; exit }'
}
x509_fp() { openssl x509 -inform DER -in "$1" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d ':'; }
x509_date() {                # x509_date DER startdate|enddate -> ISO 8601
    local d; d=$(openssl x509 -inform DER -in "$1" -noout -"$2" | cut -d= -f2)
    date -u -d "$d" +%Y-%m-%dT%H:%M:%SZ
}
x509_sigalg() { openssl x509 -inform DER -in "$1" -noout -text | awk -F': ' '/Signature Algorithm/ { print $2; exit }'; }
x509_bits() { openssl x509 -inform DER -in "$1" -noout -text | sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p' | head -1; }
x509_san() { openssl x509 -inform DER -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ' | paste -sd, -; }

first_packet_epoch() { capinfos -a -S -T -r "$1" | cut -f2 | cut -d. -f1; }
npackets() { capinfos -c -M -T -r "$1" | cut -f2; }

# one line per frame: src sport dst dport syn ack epoch len (tab-separated)
port_of() { case $(basename "$1") in tls12-client-cert.*|tls-then-plaintext.*) echo 8443;; *) echo 443;; esac; }
frames() {
    q "$1" "$(port_of "$1")" 1 ip.src tcp.srcport ip.dst tcp.dstport tcp.flags.syn tcp.flags.ack frame.time_epoch frame.len | tr '|' '\t'
}
syns() { frames "$1" | awk -F'\t' '$5 == 1 && $6 == 0'; }

# endpoints of every TCP connection: "10.20.0.20:PORT -> 10.20.0.10:PORT"
endpoints() {
    syns "$1" | awk -F'\t' '{ printf "%s%s:%s → %s:%s", (NR > 1 ? "; " : ""), $1, $2, $3, $4 }'
}

# generic checks for one TLS connection that carried HTTP both ways
check_http_both_ways() {     # FILE PORT NAME
    expect_ge "$3" "decrypted HTTP requests from client" "$(count "$1" "$2" 'set("http.request.method") && from_cli()')" 1
    expect_ge "$3" "decrypted HTTP responses from server" "$(count "$1" "$2" 'set("http.response.code") && from_srv()')" 1
}
check_endpoints() {          # FILE NAME NCONN
    local syn; syn=$(syns "$1" | cut -f1,3)
    expect_eq "$2" "number of TCP connections" "$(grep -c . <<<"$syn")" "$3"
    local bad; bad=$(grep -v "^$CLI	$SRV\$" <<<"$syn" || true)
    [[ -z $bad ]] || die "$2: unexpected addresses in SYN: $bad"
    local others
    others=$(frames "$1" | awk -F'\t' -v a="$CLI" -v b="$SRV" '!(($1 == a && $3 == b) || ($1 == b && $3 == a))' | grep -c .) || true
    expect_eq "$2" "packets not between $CLI and $SRV" "${others:-0}" 0
}

# describe FILE PORT WHAT SPECIAL  -> appends one manifest row, fields from tshark/openssl
describe() {
    local f=$1 port=$2 what=$3 special=$4
    local name; name=$(basename "$f")
    local ep ver vname cs csname sni alpn grp gname hex n cn="" icn="" fp="" nb="" na=""
    ep=$(endpoints "$f")
    ver=$(neg_version "$f" "$port")
    vname=$(version_name "$ver")
    cs=$(neg_cipher "$f" "$port")
    csname=""; [[ -n $cs ]] && csname="$(cipher_name "$cs") ($cs)"
    sni=$(q "$f" "$port" 'hs(1)' tls.handshake.extensions_server_name | sort -u | paste -sd, -)
    alpn=$(q "$f" "$port" 'hs(1)' tls.handshake.extensions_alpn_str | sort -u | paste -sd' ' -)
    if [[ $ver == 0x0304 ]]; then
        grp=$(q "$f" "$port" 'hs(2)' tls.handshake.extensions_key_share_group | tail -1)
    else
        grp=$(q "$f" "$port" 'hs(12)' tls.handshake.server_named_curve | head -1)
    fi
    grp=$(hex4 "$grp")
    gname=""; [[ -n $grp ]] && gname="$(group_name "$grp") ($grp)"
    hex=$(server_certs_hex "$f" "$port")
    n=$(ncerts "$hex")
    if (( n > 0 )); then
        leaf_der "$hex" "$WORK/leaf.der"
        cn=$(x509_cn "$WORK/leaf.der" subject)
        icn=$(x509_cn "$WORK/leaf.der" issuer)
        fp=$(x509_fp "$WORK/leaf.der")
        nb=$(x509_date "$WORK/leaf.der" startdate)
        na=$(x509_date "$WORK/leaf.der" enddate)
        if [[ $ver == 0x0304 ]]; then
            special="$special; TLS 1.3: Certificate is encrypted, cert columns read with keylog/${name%.pcap*}.keylog"
        fi
    fi
    if [[ -z $ver ]]; then vname="—"; n="—"; fi
    local size pkts
    size=$(stat -c %s "$f")
    pkts=$(npackets "$f")
    printf '%s\n' "$name|$what|$ep|$vname|${csname:-—}|${sni:-—}|${alpn:-—}|${gname:-—}|$n|${cn:-—}|${icn:-—}|${fp:-—}|${nb:-—}|${na:-—}|$special|$pkts|$size" >>"$ROWS"
}

# ---------------------------------------------------------------- helper programs
cat >"$WORK/http_server.py" <<'EOF'
# one-shot plaintext HTTP/1.1 server: serves a single request and exits
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tlstap-sample-httpd"
    sys_version = ""

    def do_GET(self):
        body = b"plaintext hello from %s:%d\n" % (self.server.server_address[0].encode(), self.server.server_address[1])
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

srv = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
srv.timeout = 20
srv.handle_request()
srv.server_close()
EOF
cat >"$WORK/http_client.py" <<'EOF'
# plaintext HTTP/1.1 GET from a fixed source address
import http.client, sys

host, port, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection(host, port, timeout=10, source_address=(src, 0))
c.request("GET", "/", headers={"Host": "api.internal", "User-Agent": "tlstap-sample-client", "Connection": "close"})
r = c.getresponse()
print(r.status, r.read())
c.close()
EOF

# ================================================================ main
setup_ns
make_pki
P=$PKI
GOOD=(-cert "$P/server.pem" -key "$P/server.key" -cert_chain "$P/intermediate-ca.pem")
C_DEF=(-servername "$SNI" -brief)
L0='DEFAULT:@SECLEVEL=0'

# 1. TLS 1.3, default cipher, ALPN offered
tls_sample tls13 443 ok "${GOOD[@]}" -- "${C_DEF[@]}" -alpn h2,http/1.1

# 2. TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 over x25519
tls_sample tls12-ecdhe 443 ok "${GOOD[@]}" -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 -groups X25519 \
    -- "${C_DEF[@]}" -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256

# 3. TLS 1.2 mutual TLS
tls_sample tls12-client-cert 8443 ok "${GOOD[@]}" -tls1_2 -Verify 2 -verify_return_error \
    -CAfile "$P/root-ca.pem" \
    -- "${C_DEF[@]}" -tls1_2 -cert "$P/client.pem" -key "$P/client.key" -cert_chain "$P/intermediate-ca.pem"

# 4. TLS 1.3 HelloRetryRequest: client key share x25519 only, server accepts P-256 only
tls_sample tls13-hrr 443 ok "${GOOD[@]}" -groups P-256 -- "${C_DEF[@]}" -groups X25519:P-256

# 5. TLS 1.3 with a small MTU and a big ClientHello
LONG_SNI=tlstap-small-mtu-sample-with-a-deliberately-long-service-label.svc.internal
LONG_ALPN=h2,http/1.1,http/1.0,spdy/3.1,h2c,acme-tls/1,grpc-exp,dot,xmpp-client,imap,pop3,managesieve,coap,mqtt
set_mtu 600
tls_sample tls13-small-mtu 443 ok "${GOOD[@]}" \
    -- -servername "$LONG_SNI" -brief -cipher 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' -alpn "$LONG_ALPN"
set_mtu 65536

# 6. TLS 1.2 static RSA key exchange
tls_sample tls12-rsa-static 443 ok "${GOOD[@]}" -tls1_2 -cipher AES128-SHA -- "${C_DEF[@]}" -tls1_2 -cipher AES128-SHA

# 7. TLS 1.0 and 1.1
tls_sample tls10 443 ok "${GOOD[@]}" -tls1 -cipher "$L0" -- "${C_DEF[@]}" -tls1 -cipher "$L0"
tls_sample tls11 443 ok "${GOOD[@]}" -tls1_1 -cipher "$L0" -- "${C_DEF[@]}" -tls1_1 -cipher "$L0"

# 8. TLS 1.3-capable client against a 1.2-only server
tls_sample tls12-capped-server 443 ok "${GOOD[@]}" -no_tls1_3 -- "${C_DEF[@]}"

# 9. fallback SCSV against a server whose maximum is TLS 1.2 (handshake completes)
tls_sample tls12-fallback-scsv 443 ok "${GOOD[@]}" -no_tls1_3 -- "${C_DEF[@]}" -tls1_2 -fallback_scsv
#    extra: the same client against a TLS 1.3 server -> inappropriate_fallback alert (86)
tls_sample tls12-fallback-scsv-rejected 443 fail "${GOOD[@]}" -- "${C_DEF[@]}" -tls1_2 -fallback_scsv

# 10. bad certificates, TLS 1.2, client does not verify
INTER=(-cert_chain "$P/intermediate-ca.pem")
tls_sample cert-expired 443 ok -cert "$P/expired.pem" -key "$P/expired.key" "${INTER[@]}" -tls1_2 -- "${C_DEF[@]}" -tls1_2
tls_sample cert-not-yet-valid 443 ok -cert "$P/notyet.pem" -key "$P/notyet.key" "${INTER[@]}" -tls1_2 -- "${C_DEF[@]}" -tls1_2
tls_sample cert-self-signed 443 ok -cert "$P/selfsigned.pem" -key "$P/selfsigned.key" -tls1_2 -- "${C_DEF[@]}" -tls1_2
tls_sample cert-sha1 443 ok -cert "$P/sha1.pem" -key "$P/sha1.key" "${INTER[@]}" -tls1_2 -cipher "$L0" \
    -- "${C_DEF[@]}" -tls1_2 -cipher "$L0"
tls_sample cert-rsa1024 443 ok -cert "$P/rsa1024.pem" -key "$P/rsa1024.key" "${INTER[@]}" -tls1_2 -cipher "$L0" \
    -- "${C_DEF[@]}" -tls1_2 -cipher "$L0"
tls_sample cert-wrong-san 443 ok -cert "$P/other.pem" -key "$P/other.key" "${INTER[@]}" -tls1_2 -- "${C_DEF[@]}" -tls1_2
tls_sample cert-missing-intermediate 443 ok -cert "$P/server.pem" -key "$P/server.key" -tls1_2 -- "${C_DEF[@]}" -tls1_2

# 11. client verifies against an unrelated CA and aborts with unknown_ca
tls_sample tls12-unknown-ca-alert 443 fail "${GOOD[@]}" -tls1_2 \
    -- "${C_DEF[@]}" -tls1_2 -verify 2 -verify_return_error -CAfile "$P/unrelated-ca.pem" -no-CApath -no-CAstore

# 12. plaintext HTTP/1.1 on port 443
log "capturing plaintext-http-443.pcap"
start_capture plaintext-http-443
start_http_server plaintext-http-443 443
run_http_client plaintext-http-443 443
wait_server plaintext-http-443
stop_capture plaintext-http-443

# 13. TLS 1.3 then plaintext HTTP on the same ip:port, one capture
log "capturing tls-then-plaintext.pcap"
start_capture tls-then-plaintext
start_tls_server tls-then-plaintext 8443 "${GOOD[@]}"
run_tls_client tls-then-plaintext 8443 ok "${C_DEF[@]}"
wait_server tls-then-plaintext
sleep 1
start_http_server tls-then-plaintext 8443
run_http_client tls-then-plaintext 8443
wait_server tls-then-plaintext
stop_capture tls-then-plaintext

# 14. pcapng copy
editcap -F pcapng "$OUT/tls13.pcap" "$OUT/tls13.pcapng"

# drop keylogs without any secret (plaintext samples, aborted handshakes)
for k in "$OUT"/keylog/*.keylog; do grep -qv '^#' "$k" || rm -f "$k"; done

# ================================================================ checks
log "checking captures with tshark"
O=$OUT
for f in "$O"/*.pcap; do
    n=$(basename "$f" .pcap)
    case $n in tls-then-plaintext) check_endpoints "$f" "$n" 2;; *) check_endpoints "$f" "$n" 1;; esac
    size=$(stat -c %s "$f"); (( size < 100000 )) || die "$n: capture too big ($size bytes)"
done

chk_tls() {                  # chk_tls NAME PORT VERSION NCERTS SNI
    local f=$O/$1.pcap
    expect_eq "$1" "version" "$(neg_version "$f" "$2")" "$3"
    expect_eq "$1" "server certificates" "$(ncerts "$(server_certs_hex "$f" "$2")")" "$4"
    expect_eq "$1" "SNI" "$(q "$f" "$2" 'hs(1)' tls.handshake.extensions_server_name | sort -u)" "$5"
    expect_eq "$1" "ClientHellos" "$(count "$f" "$2" 'hs(1)')" "${6:-1}"
}
leaf() {                     # leaf NAME PORT -> writes $WORK/leaf.der
    leaf_der "$(server_certs_hex "$O/$1.pcap" "$2")" "$WORK/leaf.der"
}

# 1
chk_tls tls13 443 0x0304 2 "$SNI"
check_http_both_ways "$O/tls13.pcap" 443 tls13
expect_eq tls13 "ALPN offered" "$(q "$O/tls13.pcap" 443 'hs(1)' tls.handshake.extensions_alpn_str)" "h2,http/1.1"
expect_eq tls13 "ALPN selected by server" "$(count "$O/tls13.pcap" 443 'from_srv() && set("tls.handshake.extensions_alpn_str")')" 0
expect_eq tls13 "pcapng copy packets" "$(npackets "$O/tls13.pcapng")" "$(npackets "$O/tls13.pcap")"
[[ $(head -c4 "$O/tls13.pcapng" | od -An -tx1 | tr -d ' ') == 0a0d0d0a ]] || die "tls13.pcapng is not pcapng"
[[ $(head -c4 "$O/tls13.pcap" | od -An -tx1 | tr -d ' ') == d4c3b2a1 ]] || die "tls13.pcap is not classic pcap"
# 2
chk_tls tls12-ecdhe 443 0x0303 2 "$SNI"
expect_eq tls12-ecdhe cipher "$(neg_cipher "$O/tls12-ecdhe.pcap" 443)" 0xc02f
expect_eq tls12-ecdhe curve "$(hex4 "$(q "$O/tls12-ecdhe.pcap" 443 'hs(12)' tls.handshake.server_named_curve)")" 0x001d
check_http_both_ways "$O/tls12-ecdhe.pcap" 443 tls12-ecdhe
# 3
chk_tls tls12-client-cert 8443 0x0303 2 "$SNI"
expect_eq tls12-client-cert "CertificateRequest" "$(count "$O/tls12-client-cert.pcap" 8443 'hs(13)')" 1
expect_eq tls12-client-cert "client certificates" "$(ncerts "$(client_certs_hex "$O/tls12-client-cert.pcap" 8443)")" 2
# certificate_authorities of the CertificateRequest, e.g. "id-at-commonName=tlstap Test Root CA,id-at-organizationName=..."
CR_DNAMES=$(tshark -r "$O/tls12-client-cert.pcap" -n -d tcp.port==8443,tls -Y 'tls.handshake.type==13' -V 2>>"$LOGS/tshark.log" |
    sed -n 's/^ *Distinguished Name: (\(.*\))$/\1/p' | paste -sd';' -)
expect_eq tls12-client-cert "CertificateRequest CA names" "$(sed -n 's/.*id-at-commonName=\([^,;]*\).*/\1/p' <<<"$CR_DNAMES")" "tlstap Test Root CA"
leaf_der "$(client_certs_hex "$O/tls12-client-cert.pcap" 8443)" "$WORK/client.der"
expect_eq tls12-client-cert "client cert CN" "$(x509_cn "$WORK/client.der" subject)" client.internal
expect_eq tls12-client-cert "CertificateVerify from client" "$(count "$O/tls12-client-cert.pcap" 8443 'hs(15) && from_cli()')" 1
check_http_both_ways "$O/tls12-client-cert.pcap" 8443 tls12-client-cert
# 4
chk_tls tls13-hrr 443 0x0304 2 "$SNI" 2
f=$O/tls13-hrr.pcap
expect_eq tls13-hrr "HRR random" "$(q "$f" 443 'hs(2)' tls.handshake.random | head -1 | tr -d ':')" "$HRR_RANDOM"
expect_eq tls13-hrr "HRR selected group" "$(hex4 "$(q "$f" 443 'hs(2)' tls.handshake.extensions_key_share_selected_group | head -1)")" 0x0017
expect_eq tls13-hrr "first ClientHello key shares" "$(q "$f" 443 'hs(1)' tls.handshake.extensions_key_share_group | head -1)" 29
expect_eq tls13-hrr "second ClientHello key shares" "$(q "$f" 443 'hs(1)' tls.handshake.extensions_key_share_group | tail -1)" 23
expect_eq tls13-hrr "final key share" "$(hex4 "$(q "$f" 443 'hs(2)' tls.handshake.extensions_key_share_group | tail -1)")" 0x0017
check_http_both_ways "$f" 443 tls13-hrr
# 5
chk_tls tls13-small-mtu 443 0x0304 2 "$LONG_SNI"
f=$O/tls13-small-mtu.pcap
IFS='|' read -r ch_segs ch_len <<<"$(q "$f" 443 'hs(1)' tcp.segment.count tls.handshake.length)"
expect_ge tls13-small-mtu "ClientHello TCP segments" "${ch_segs:-0}" 2
expect_ge tls13-small-mtu "ClientHello length" "$ch_len" 601
maxlen=$(frames "$f" | cut -f8 | sort -n | tail -1)
(( maxlen <= 614 )) || die "tls13-small-mtu: a frame is $maxlen bytes (> MTU 600 + 14)"
check_http_both_ways "$f" 443 tls13-small-mtu
# 6
chk_tls tls12-rsa-static 443 0x0303 2 "$SNI"
expect_eq tls12-rsa-static cipher "$(neg_cipher "$O/tls12-rsa-static.pcap" 443)" 0x002f
expect_eq tls12-rsa-static "ServerKeyExchange" "$(count "$O/tls12-rsa-static.pcap" 443 'hs(12)')" 0
check_http_both_ways "$O/tls12-rsa-static.pcap" 443 tls12-rsa-static
# 7
chk_tls tls10 443 0x0301 2 "$SNI"; check_http_both_ways "$O/tls10.pcap" 443 tls10
chk_tls tls11 443 0x0302 2 "$SNI"; check_http_both_ways "$O/tls11.pcap" 443 tls11
# 8
f=$O/tls12-capped-server.pcap
chk_tls tls12-capped-server 443 0x0303 2 "$SNI"
q "$f" 443 'hs(1)' tls.handshake.extensions.supported_version | grep -q 0x0304 \
    || die "tls12-capped-server: client did not offer TLS 1.3"
# OpenSSL only writes the RFC 8446 downgrade sentinel when TLS 1.3 is enabled on the server, so none here
[[ $(server_random "$f" 443) != *"$DOWNGRADE_TLS12" ]] || die "tls12-capped-server: unexpected downgrade sentinel"
check_http_both_ways "$f" 443 tls12-capped-server
# 9
f=$O/tls12-fallback-scsv.pcap
chk_tls tls12-fallback-scsv 443 0x0303 2 "$SNI"
q "$f" 443 'hs(1)' tls.handshake.ciphersuite | tr ',' '\n' | grep -qx 0x5600 \
    || die "tls12-fallback-scsv: TLS_FALLBACK_SCSV (0x5600) not offered"
check_http_both_ways "$f" 443 tls12-fallback-scsv
f=$O/tls12-fallback-scsv-rejected.pcap
q "$f" 443 'hs(1)' tls.handshake.ciphersuite | tr ',' '\n' | grep -qx 0x5600 \
    || die "tls12-fallback-scsv-rejected: TLS_FALLBACK_SCSV (0x5600) not offered"
expect_eq tls12-fallback-scsv-rejected "alert from server" "$(q "$f" 443 'set("tls.alert_message.desc") && from_srv()' tls.alert_message.level tls.alert_message.desc)" "2|86"
expect_eq tls12-fallback-scsv-rejected "ServerHello" "$(count "$f" 443 'hs(2)')" 0
# 10
now_cap() { first_packet_epoch "$O/$1.pcap"; }
for n in cert-expired cert-not-yet-valid cert-sha1 cert-rsa1024 cert-wrong-san; do chk_tls "$n" 443 0x0303 2 "$SNI"; done
for n in cert-self-signed cert-missing-intermediate; do chk_tls "$n" 443 0x0303 1 "$SNI"; done
for n in cert-expired cert-not-yet-valid cert-self-signed cert-sha1 cert-rsa1024 cert-wrong-san cert-missing-intermediate; do
    check_http_both_ways "$O/$n.pcap" 443 "$n"
    leaf "$n" 443
    t=$(now_cap "$n")
    nb=$(date -d "$(x509_date "$WORK/leaf.der" startdate)" +%s); na=$(date -d "$(x509_date "$WORK/leaf.der" enddate)" +%s)
    sig=$(x509_sigalg "$WORK/leaf.der"); bits=$(x509_bits "$WORK/leaf.der")
    subj=$(x509_cn "$WORK/leaf.der" subject); iss=$(x509_cn "$WORK/leaf.der" issuer); san=$(x509_san "$WORK/leaf.der")
    timeok=$(( nb <= t && t <= na ? 1 : 0 ))
    case $n in
        cert-expired)       (( na < t )) || die "$n: leaf not expired at capture time";;
        cert-not-yet-valid) (( nb > t )) || die "$n: leaf already valid at capture time";;
        *)                  expect_eq "$n" "leaf valid at capture time" "$timeok" 1;;
    esac
    [[ $n == cert-sha1 ]] && expect_eq "$n" "signature algorithm" "$sig" sha1WithRSAEncryption \
                          || expect_eq "$n" "signature algorithm" "$sig" sha256WithRSAEncryption
    [[ $n == cert-rsa1024 ]] && expect_eq "$n" "key bits" "$bits" 1024 || expect_eq "$n" "key bits" "$bits" 2048
    if [[ $n == cert-wrong-san ]]; then
        expect_eq "$n" "subject CN" "$subj" other.internal; expect_eq "$n" SAN "$san" DNS:other.internal
    else
        expect_eq "$n" "subject CN" "$subj" api.internal
        expect_eq "$n" SAN "$san" "DNS:api.internal,DNS:*.svc.internal,IPAddress:$SRV"
    fi
    [[ $n == cert-self-signed ]] && expect_eq "$n" issuer "$iss" api.internal \
                                 || expect_eq "$n" issuer "$iss" "tlstap Test Intermediate CA"
done
# 11
f=$O/tls12-unknown-ca-alert.pcap
chk_tls tls12-unknown-ca-alert 443 0x0303 2 "$SNI"
expect_eq tls12-unknown-ca-alert "alert from client" "$(q "$f" 443 'set("tls.alert_message.desc") && from_cli()' tls.alert_message.level tls.alert_message.desc)" "2|48"
expect_eq tls12-unknown-ca-alert "application data" "$(count "$f" 443 'set("tls.app_data")')" 0
# 12
f=$O/plaintext-http-443.pcap
expect_eq plaintext-http-443 "TLS handshakes" "$(count "$f" 443 'set("tls.handshake.type")')" 0
expect_eq plaintext-http-443 "HTTP request" "$(qh "$f" 443 'set("http.request.method") && from_cli() && v("tcp.dstport") == 443' http.request.method http.request.version)" "GET|HTTP/1.1"
expect_eq plaintext-http-443 "HTTP response" "$(qh "$f" 443 'set("http.response.code") && from_srv()' http.response.code http.response.version)" "200|HTTP/1.1"
# 13
f=$O/tls-then-plaintext.pcap
expect_eq tls-then-plaintext "server ports" "$(syns "$f" | cut -f4 | paste -sd, -)" "8443,8443"
expect_eq tls-then-plaintext "TLS version (stream 0)" "$(q "$f" 8443 'v("tcp.stream") == 0 && hs(2)' tls.handshake.extensions.supported_version)" 0x0304
expect_eq tls-then-plaintext "SNI (stream 0)" "$(q "$f" 8443 'v("tcp.stream") == 0 && hs(1)' tls.handshake.extensions_server_name)" "$SNI"
expect_ge tls-then-plaintext "decrypted HTTP (stream 0)" "$(count "$f" 8443 'v("tcp.stream") == 0 && set("http.response.code")')" 1
expect_eq tls-then-plaintext "TLS handshakes (stream 1)" "$(count "$f" 8443 'v("tcp.stream") == 1 && set("tls.handshake.type")')" 0
expect_eq tls-then-plaintext "plaintext request (stream 1)" "$(qh "$f" 8443 'v("tcp.stream") == 1 && set("http.request.method")' http.request.method)" GET
expect_eq tls-then-plaintext "plaintext response (stream 1)" "$(qh "$f" 8443 'v("tcp.stream") == 1 && set("http.response.code")' http.response.code)" 200
gap=$(syns "$f" | cut -f7 | awk 'NR==1{a=$1} NR==2{printf "%d", ($1-a)*1000}')
expect_ge tls-then-plaintext "ms between connections" "$gap" 900

queries_ok

# ================================================================ manifest
log "writing MANIFEST.md"
PT='—'
describe "$O/tls13.pcap" 443 "TLS 1.3, default cipher, chain leaf+intermediate" "ALPN offered, none selected (no ALPN in EncryptedExtensions)"
describe "$O/tls13.pcapng" 443 "same packets as tls13.pcap, pcapng format (editcap -F pcapng)" "pcapng"
describe "$O/tls12-ecdhe.pcap" 443 "TLS 1.2 only, ECDHE-RSA with RSA-2048 leaf" "ServerKeyExchange named curve x25519"
leaf_der "$(client_certs_hex "$O/tls12-client-cert.pcap" 8443)" "$WORK/client.der"
describe "$O/tls12-client-cert.pcap" 8443 "TLS 1.2 mutual TLS" "CertificateRequest (certificate_authorities: $CR_DNAMES); client sends $(ncerts "$(client_certs_hex "$O/tls12-client-cert.pcap" 8443)") certs: leaf CN=$(x509_cn "$WORK/client.der" subject) (EKU clientAuth, issuer CN=$(x509_cn "$WORK/client.der" issuer), SHA-256 $(x509_fp "$WORK/client.der"), $(x509_date "$WORK/client.der" startdate) .. $(x509_date "$WORK/client.der" enddate)) + intermediate, then CertificateVerify"
describe "$O/tls13-hrr.pcap" 443 "TLS 1.3 with HelloRetryRequest" "client 1st key_share x25519 only; server (groups P-256) sends HRR selecting secp256r1 (0x0017); 2 ClientHellos"
describe "$O/tls13-small-mtu.pcap" 443 "TLS 1.3 with lo MTU 600 (frames <= 614 bytes)" "ClientHello of $ch_len bytes (handshake length) reassembled from $ch_segs TCP segments; client offers ALL:COMPLEMENTOFALL:@SECLEVEL=0 (TLS 1.2 suites too), 14 ALPN ids and a long SNI (*.svc.internal)"
describe "$O/tls12-rsa-static.pcap" 443 "TLS 1.2 static RSA key exchange" "no ServerKeyExchange, no forward secrecy"
describe "$O/tls10.pcap" 443 "TLS 1.0 (SECLEVEL=0 on both sides)" "legacy protocol version"
describe "$O/tls11.pcap" 443 "TLS 1.1 (SECLEVEL=0 on both sides)" "legacy protocol version"
describe "$O/tls12-capped-server.pcap" 443 "TLS 1.3-capable client vs server with -no_tls1_3" "client supported_versions includes 0x0304; no downgrade sentinel in ServerHello.random (OpenSSL sets it only when the server itself has TLS 1.3 enabled)"
describe "$O/tls12-fallback-scsv.pcap" 443 "client -tls1_2 -fallback_scsv vs TLS 1.2-max server" "TLS_FALLBACK_SCSV (0x5600) in ClientHello; handshake completes (server max is 1.2)"
describe "$O/tls12-fallback-scsv-rejected.pcap" 443 "EXTRA: client -tls1_2 -fallback_scsv vs TLS 1.3 server" "TLS_FALLBACK_SCSV (0x5600) in ClientHello; server answers fatal alert inappropriate_fallback (86); no ServerHello, no certificates"
describe "$O/cert-expired.pcap" 443 "TLS 1.2, leaf expired" "leaf not_after is 30 days before capture"
describe "$O/cert-not-yet-valid.pcap" 443 "TLS 1.2, leaf not yet valid" "leaf not_before is 365 days after capture"
describe "$O/cert-self-signed.pcap" 443 "TLS 1.2, self-signed leaf" "chain = 1 self-signed cert (subject == issuer), not a CA"
describe "$O/cert-sha1.pcap" 443 "TLS 1.2, leaf signed with sha1WithRSAEncryption" "SECLEVEL=0 on both sides"
describe "$O/cert-rsa1024.pcap" 443 "TLS 1.2, 1024-bit RSA leaf" "SECLEVEL=0 on both sides"
describe "$O/cert-wrong-san.pcap" 443 "TLS 1.2, leaf for other.internal" "SAN DNS:other.internal only, SNI api.internal"
describe "$O/cert-missing-intermediate.pcap" 443 "TLS 1.2, server sends only the leaf" "leaf issued by tlstap Test Intermediate CA, intermediate not sent"
describe "$O/tls12-unknown-ca-alert.pcap" 443 "TLS 1.2, client verifies against an unrelated CA" "client sends fatal alert unknown_ca (48) right after the server flight; no application data"
describe "$O/plaintext-http-443.pcap" 443 "plaintext HTTP/1.1 GET + 200 on port 443" "no TLS at all"
describe "$O/tls-then-plaintext.pcap" 8443 "2 connections to 10.20.0.10:8443: TLS 1.3 (stream 0), then ~1 s later plaintext HTTP/1.1 (stream 1)" "row values describe the TLS connection; 2nd connection is plaintext GET / 200"

manifest=$OUT/MANIFEST.md
{
    echo "# tlstap sample captures"
    echo
    echo "Generated by \`scripts/make-samples.sh\`; regenerate with:"
    echo
    echo '```'
    echo 'sudo bash scripts/make-samples.sh'
    echo '```'
    echo
    echo "Every run makes a fresh test PKI and new connections, so fingerprints, dates, ports"
    echo "and random values change on each run: this file always describes the files next to it."
    echo "All values below were read from the captures with tshark and from the certificates with openssl."
    echo
    echo "- made: $(date -u +%Y-%m-%dT%H:%M:%SZ) (UTC)"
    echo "- openssl: \`$(openssl version)\`"
    echo "- tcpdump: \`$(tcpdump --version 2>&1 | head -1)\`, \`$(tcpdump --version 2>&1 | sed -n 2p)\`"
    echo "- tshark (used for the checks): \`$(tshark --version 2>/dev/null | head -1)\`"
    echo "- kernel: \`$(uname -sr)\`"
    echo
    echo "## Setup"
    echo
    echo "- Captured with \`tcpdump -i lo -U --immediate-mode\` inside a private network namespace;"
    echo "  classic pcap (magic \`d4c3b2a1\`, LINKTYPE_ETHERNET with all-zero MACs, snaplen 262144) except \`tls13.pcapng\`."
    echo "- Server \`openssl s_server -www\` on $SRV, client \`openssl s_client -bind $CLI:0\` (ephemeral source port),"
    echo "  request \`GET / HTTP/1.0\` (s_server answers with its HTML status page). Each file holds exactly one TCP"
    echo "  connection except \`tls-then-plaintext.pcap\` (two)."
    echo "- SNI is \`$SNI\` unless noted; the client does not verify the server except in \`tls12-unknown-ca-alert.pcap\`."
    echo "- Test PKI (public certs only, in \`pki/\`): \`root-ca.pem\` = CN=tlstap Test Root CA (10 y),"
    echo "  \`intermediate-ca.pem\` = CN=tlstap Test Intermediate CA (10 y, pathlen 0), \`unrelated-ca.pem\` = CN=tlstap Unrelated Root CA"
    echo "  (used by the client in the unknown_ca sample). All CAs carry O=tlstap Test PKI; leaves have only a CN."
    echo "  Good server leaf: CN=api.internal, SAN DNS:api.internal, DNS:*.svc.internal, IP:$SRV, RSA 2048, sha256, 90 days from the capture date."
    echo "- \`keylog/NAME.keylog\`: NSS key log written by s_client for each TLS capture (Wireshark: tls.keylog_file)."
    echo "  In TLS 1.3 the certificates are encrypted: the certificate columns for TLS 1.3 rows were read with that keylog"
    echo "  and are NOT visible to a passive analyzer. No keylog for plaintext-http-443 and the aborted handshakes"
    echo "  (tls12-fallback-scsv-rejected, tls12-unknown-ca-alert): no traffic secrets were derived there."
    echo "- Validity: judge certificate dates against the capture time (first packet), not the wall clock: the good"
    echo "  leaves expire 90 days after the date above and the not-yet-valid leaf becomes valid 365 days after it."
    echo
    for pem in root-ca intermediate-ca unrelated-ca; do
        echo "- \`pki/$pem.pem\` SHA-256: \`$(openssl x509 -in "$OUT/pki/$pem.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d ':')\`,"\
             "not_before $(date -u -d "$(openssl x509 -in "$OUT/pki/$pem.pem" -noout -startdate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ),"\
             "not_after $(date -u -d "$(openssl x509 -in "$OUT/pki/$pem.pem" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)"
    done
    echo
    echo "## Files"
    echo
    echo "Columns: version/cipher/group are the negotiated ones (ServerHello; group from key_share in TLS 1.3, from"
    echo "ServerKeyExchange in TLS 1.2 and older); ALPN is what the client offered; certs = number of certificates in"
    echo "the server's Certificate message; the leaf columns describe the first of them; SHA-256 is of the leaf DER"
    echo "(\`openssl x509 -noout -fingerprint -sha256\`, colons removed); dates are UTC."
    echo
    echo "| file | holds | client → server | version | cipher suite | SNI | ALPN offered | group | certs | leaf subject CN | leaf issuer CN | leaf SHA-256 | leaf not_before | leaf not_after | special | packets | bytes |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    while IFS= read -r row; do
        r=${row//|/ | }
        echo "| \`${r%% | *}\` | ${r#* | } |"
    done <"$ROWS"
    echo
    echo "A tab-separated copy of this table (same columns, no markup) is in \`MANIFEST.tsv\`."
} >"$manifest"
{
    echo "file	holds	client_server	version	cipher	sni	alpn_offered	group	certs	leaf_cn	leaf_issuer_cn	leaf_sha256	leaf_not_before	leaf_not_after	special	packets	bytes"
    tr '|' '\t' <"$ROWS"
} >"$OUT/MANIFEST.tsv"

queries_ok

# ================================================================ install into samples/
log "installing into $DEST"
mkdir -p "$DEST"
# Other scripts' captures share the manifest: stacks.pcap (make-fingerprints.sh),
# upgrades/ and tunnels/ (make-upgrade-samples.sh, make-tunnel-samples.sh),
# resumption/ (make-resumption-sample.sh), tls13/ (make-tls13-samples.sh).
# Their table rows and their sections are carried over into the new manifest.
python3 - "$DEST" "$OUT" <<'PY'
import pathlib, re, sys
dest, out = map(pathlib.Path, sys.argv[1:])
others = re.compile(r"^(\| `)?(stacks\.pcap|upgrades/|tunnels/|resumption/|tls13/)")
old_tsv, old_md = dest / "MANIFEST.tsv", dest / "MANIFEST.md"
if old_tsv.exists():
    rows = [l for l in old_tsv.read_text().splitlines() if others.match(l)]
    if rows:
        with (out / "MANIFEST.tsv").open("a") as f:
            f.write("\n".join(rows) + "\n")
if old_md.exists():
    old = old_md.read_text().splitlines()
    rows = [l for l in old if l.startswith("| `") and others.match(l)]
    start = next((i for i, l in enumerate(old) if re.match(r"^## (stacks\.pcap|Upgrades and tunnels|TLS 1\.3 resumption|TLS 1\.3 key logs)", l)), None)
    sections = old[start:] if start is not None else []
    new = (out / "MANIFEST.md").read_text().splitlines()
    at = next((i for i, l in enumerate(new) if l.startswith("A tab-separated copy")), len(new))
    # The table ends with the blank line before that sentence.
    insert = at - 1 if at > 0 and new[at - 1] == "" else at
    new[insert:insert] = rows
    if sections:
        new += [""] + sections
    (out / "MANIFEST.md").write_text("\n".join(new) + "\n")
PY
for f in "$DEST"/*.pcap "$DEST"/*.pcapng; do
    if [[ -e $f && $(basename "$f") != stacks.pcap ]]; then rm -f "$f"; fi
done
rm -f "$DEST"/MANIFEST.md "$DEST"/MANIFEST.tsv
rm -rf "$DEST/pki" "$DEST/keylog"
cp -r "$OUT"/. "$DEST"/
if [[ -n ${SUDO_UID:-} && -n ${SUDO_GID:-} ]]; then
    chown -R "$SUDO_UID:$SUDO_GID" "$DEST"
fi
log "done: $(ls "$DEST" | grep -cE '\.pcap(ng)?$') captures in $DEST"
