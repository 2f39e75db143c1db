#!/usr/bin/env bash
# make-fingerprints.sh - capture real ClientHellos of the TLS stacks this
# machine can run and write data/tls-stacks.toml (JA4 b/c -> stack)
#
#   sudo bash scripts/make-fingerprints.sh
#
# needs: openssl tcpdump mergecap(wireshark-common) iproute2 python3 curl wget
#        gnutls-bin libnss3-tools default-jdk-headless nodejs golang-go cargo
#        (a missing optional client is skipped and reported, not fatal)
#
# What it does
#   * makes a throw-away self-signed ECDSA P-256 certificate (small, so the
#     capture stays small) and starts `openssl s_server -www` on port 443 in
#     the private network namespace "tlstap-stacks" (only `lo`), accepting
#     TLS 1.2 and 1.3,
#   * gives every client run its own server address 10.20.1.N and name
#     rN.stacks.test (/etc/netns/tlstap-stacks/hosts, which `ip netns exec`
#     mounts over /etc/hosts), so each session in the capture is tied to the
#     run that made it by its destination address alone,
#   * runs each client with each variation it allows: default; alpn (h2,
#     http/1.1) or no-alpn, whichever is not the default; no-sni (connect by
#     IP, or the client's own switch); tls1.2-only,
#   * adds rustls (the crate's dev-dependency) in-process through
#     `cargo run --example rustls_hellos` (server addresses 10.20.2.N),
#   * reads the merged capture with tlstap (/work/bin/tlstap, else
#     target/release/tlstap, else `cargo run --release`), and writes
#       data/tls-stacks.toml   one [[stack]] per distinct (ja4_b, ja4_c),
#       samples/stacks.pcap    the capture (only SYN/FIN/RST and segments that
#                              start with a TLS handshake record),
#       samples/stacks.tsv     one row per session: ip, stack, version, client,
#                              variation, ja4 (the round-trip test reads it),
#     and a stacks.pcap row in samples/MANIFEST.tsv and MANIFEST.md (an older
#     stacks.pcap row is replaced; make-samples.sh keeps stacks.pcap and its
#     rows and section when it regenerates the rest).
#
# Stack names are the TLS library (openssl, gnutls, nss, java, node, go, rustls)
# and versions are major.minor as the tool reports them. Node.js is its own
# name: it links OpenSSL but sets its own defaults, and what an estate wants to
# know is "Node 20", not "some OpenSSL". Java is the JDK's JSSE.
set -euo pipefail

NS=tlstap-stacks
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
START_TS=$(date +%s)

log() { printf '[make-fingerprints %3ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace, tcpdump): sudo bash $0"
for c in openssl tcpdump mergecap ip python3 timeout cargo; do
    command -v "$c" >/dev/null || die "missing command: $c (see '# needs:' at the top)"
done

WORK=$(mktemp -d /tmp/tlstap-stacks.XXXXXX)
RUNS=$WORK/runs.tsv      # ip, name, version, client, variation
: >"$RUNS"
SKIPPED=()
BG_PIDS=()

in_ns() { ip netns exec "$NS" "$@"; }

cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "/etc/netns/$NS"
    [[ -n ${KEEP_WORK:-} ]] && log "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
in_ns ip link set lo up
mkdir -p "/etc/netns/$NS"
printf '127.0.0.1 localhost\n' >"/etc/netns/$NS/hosts"

# ---------------------------------------------------------------- server
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -subj /CN=stacks.test -addext 'subjectAltName=DNS:*.stacks.test' \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
REQUEST=$'GET / HTTP/1.0\r\nHost: stacks.test\r\n\r\n'

# BPF: connection set-up/tear-down and the segments that start with a TLS
# handshake record (ClientHello, ServerHello); the rest (certificates in
# TLS 1.2, encrypted data, the s_server status page) is not needed.
FILTER='tcp port 443 and (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or tcp[((tcp[12:1] & 0xf0) >> 2):1] = 0x16)'
in_ns tcpdump -i lo -U --immediate-mode -w "$WORK/clients.pcap" "$FILTER" 2>"$WORK/tcpdump.log" &
BG_PIDS+=($!)
# s_server's default protocol range is TLS 1.2 to 1.3 (its -tls1_2/-tls1_3
# flags each pin one version and cannot be combined).
in_ns openssl s_server -accept 443 -www -cert "$WORK/cert.pem" -key "$WORK/key.pem" \
    -quiet </dev/null >"$WORK/server.log" 2>&1 &
BG_PIDS+=($!)
for _ in $(seq 50); do
    in_ns ss -Htln 'sport = :443' | grep -q . && break
    sleep 0.1
done
in_ns ss -Htln 'sport = :443' | grep -q . || die "s_server did not start: $(cat "$WORK/server.log")"
sleep 0.5   # tcpdump is attached by now too

# ---------------------------------------------------------------- runs
N=0
HOST=; IP=
# next_run: a fresh server address and host name for the next client run
next_run() {
    N=$((N + 1))
    IP=10.20.1.$N
    HOST=r$N.stacks.test
    in_ns ip addr add "$IP/32" dev lo
    printf '%s %s\n' "$IP" "$HOST" >>"/etc/netns/$NS/hosts"
}
# run NAME VERSION CLIENT VARIATION TARGET CMD...: CMD runs in the namespace
# with {} replaced by TARGET (the host name, or the address for no-sni)
run() {
    local name=$1 version=$2 client=$3 variation=$4 target=$5; shift 5
    local argv=() a
    for a in "$@"; do argv+=("${a//\{\}/$target}"); done
    if printf '%s' "$REQUEST" | in_ns timeout 15 "${argv[@]}" >>"$WORK/clients.log" 2>&1; then :; else
        log "  ($client $variation exited $?; the ClientHello is what counts)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$IP" "$name" "$version" "$client" "$variation" >>"$RUNS"
}
major_minor() { grep -oE '[0-9]+\.[0-9]+' | head -1; }

# --- OpenSSL: s_client, curl (OpenSSL backend), python3 ssl
OSSL=$(openssl version | awk '{print $2}' | major_minor)
log "openssl $OSSL"
next_run; run openssl "$OSSL" "openssl s_client" default "$HOST" openssl s_client -quiet -connect {}:443
next_run; run openssl "$OSSL" "openssl s_client" alpn "$HOST" openssl s_client -quiet -alpn h2,http/1.1 -connect {}:443
next_run; run openssl "$OSSL" "openssl s_client" no-sni "$IP" openssl s_client -quiet -connect {}:443
next_run; run openssl "$OSSL" "openssl s_client" tls1.2-only "$HOST" openssl s_client -quiet -tls1_2 -connect {}:443

if curl --version | head -1 | grep -q OpenSSL; then
    CURL="curl $(curl --version | head -1 | awk '{print $2}' | major_minor)"
    CURL_SSL=$(curl --version | head -1 | grep -oE 'OpenSSL/[0-9.]+' | major_minor)
    next_run; run openssl "$CURL_SSL" "$CURL" default "$HOST" curl -sk -o /dev/null https://{}/
    next_run; run openssl "$CURL_SSL" "$CURL" no-alpn "$HOST" curl -sk --no-alpn -o /dev/null https://{}/
    next_run; run openssl "$CURL_SSL" "$CURL" no-sni "$IP" curl -sk -o /dev/null https://{}/
    next_run; run openssl "$CURL_SSL" "$CURL" tls1.2-only "$HOST" curl -sk --tlsv1.2 --tls-max 1.2 -o /dev/null https://{}/
else
    SKIPPED+=("curl (not built with OpenSSL)")
fi

cat >"$WORK/client.py" <<'EOF'
import socket, ssl, sys
host, alpn, tls12, sni = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if alpn == "1":
    ctx.set_alpn_protocols(["h2", "http/1.1"])
if tls12:
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
with socket.create_connection((host, 443), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname=host if sni else None) as tls:
        tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
        tls.recv(100)
EOF
PY=python3.$(python3 -c 'import sys; print(sys.version_info.minor)')
PY_SSL=$(python3 -c 'import ssl; print(ssl.OPENSSL_VERSION)' | awk '{print $2}' | major_minor)
if python3 -c 'import ssl,sys; sys.exit(0 if ssl.OPENSSL_VERSION.startswith("OpenSSL") else 1)'; then
    next_run; run openssl "$PY_SSL" "$PY ssl" default "$HOST" python3 "$WORK/client.py" {} 0 0 1
    next_run; run openssl "$PY_SSL" "$PY ssl" alpn "$HOST" python3 "$WORK/client.py" {} 1 0 1
    next_run; run openssl "$PY_SSL" "$PY ssl" no-sni "$IP" python3 "$WORK/client.py" {} 0 0 0
    next_run; run openssl "$PY_SSL" "$PY ssl" tls1.2-only "$HOST" python3 "$WORK/client.py" {} 0 1 1
else
    SKIPPED+=("python3 ssl (not OpenSSL)")
fi

# --- GnuTLS: gnutls-cli, wget (GnuTLS build on Debian)
GNUTLS=$(dpkg-query -W -f '${Version}' libgnutls30 2>/dev/null | major_minor || true)
if command -v gnutls-cli >/dev/null; then
    GNUTLS=$(gnutls-cli --version | head -1 | major_minor)
    log "gnutls $GNUTLS"
    G="gnutls-cli --insecure --port 443"
    next_run; run gnutls "$GNUTLS" gnutls-cli default "$HOST" $G {}
    next_run; run gnutls "$GNUTLS" gnutls-cli alpn "$HOST" $G --alpn h2 --alpn http/1.1 {}
    next_run; run gnutls "$GNUTLS" gnutls-cli no-sni "$HOST" $G --disable-sni {}
    next_run; run gnutls "$GNUTLS" gnutls-cli tls1.2-only "$HOST" $G --priority NORMAL:-VERS-TLS1.3 {}
else
    SKIPPED+=("gnutls-cli (apt-get install gnutls-bin)")
fi
if command -v wget >/dev/null && ldd "$(command -v wget)" | grep -q libgnutls; then
    WGET="wget $(wget --version | head -1 | awk '{print $3}' | major_minor)"
    W="wget -q --no-check-certificate -O /dev/null"
    next_run; run gnutls "$GNUTLS" "$WGET" default "$HOST" $W https://{}/
    next_run; run gnutls "$GNUTLS" "$WGET" no-sni "$IP" $W https://{}/
    # --secure-protocol=TLSv1_2 means "1.2 or later" here; --ciphers takes a
    # GnuTLS priority string in a GnuTLS build, which can cap the version
    next_run; run gnutls "$GNUTLS" "$WGET" tls1.2-only "$HOST" $W --ciphers=NORMAL:-VERS-TLS1.3 https://{}/
else
    SKIPPED+=("wget (missing or not a GnuTLS build)")
fi

# --- NSS: tstclnt (no ALPN switch; -D: no cert database, -o: accept the cert)
if command -v tstclnt >/dev/null; then
    NSS=$(dpkg-query -W -f '${Version}' libnss3 | sed 's/^[0-9]*://' | major_minor)
    log "nss $NSS"
    T="tstclnt -p 443 -D -o -Q"
    next_run; run nss "$NSS" tstclnt default "$HOST" $T -h {}
    next_run; run nss "$NSS" tstclnt no-sni "$IP" $T -h {}
    next_run; run nss "$NSS" tstclnt tls1.2-only "$HOST" $T -V tls1.0:tls1.2 -h {}
else
    SKIPPED+=("tstclnt (apt-get install libnss3-tools)")
fi

# --- Java (JSSE): SSLSocket with each variation, and HttpClient's default
if command -v java >/dev/null; then
    JAVA=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.version =/{print $2}' | major_minor)
    log "java $JAVA"
    cat >"$WORK/StacksClient.java" <<'EOF'
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.cert.X509Certificate;
import javax.net.ssl.*;

public class StacksClient {
    public static void main(String[] args) throws Exception {
        String mode = args[0], host = args[1];
        TrustManager[] trustAll = { new X509TrustManager() {
            public void checkClientTrusted(X509Certificate[] c, String a) {}
            public void checkServerTrusted(X509Certificate[] c, String a) {}
            public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
        } };
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, trustAll, null);
        if (mode.equals("httpclient")) {
            HttpClient client = HttpClient.newBuilder().sslContext(context).build();
            HttpRequest request = HttpRequest.newBuilder(URI.create("https://" + host + "/")).build();
            // HttpClient (17) waits for ever on s_server's -www answer (and ignores
            // its own timeout there): give the handshake two seconds, then leave.
            client.sendAsync(request, HttpResponse.BodyHandlers.discarding());
            Thread.sleep(2000);
            System.exit(0);
        }
        // a host name gets SNI, an IP literal does not
        try (SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(host, 443)) {
            SSLParameters parameters = socket.getSSLParameters();
            if (mode.equals("alpn")) parameters.setApplicationProtocols(new String[] {"h2", "http/1.1"});
            if (mode.equals("tls12")) parameters.setProtocols(new String[] {"TLSv1.2"});
            socket.setSSLParameters(parameters);
            socket.startHandshake();
            socket.getOutputStream().write("GET / HTTP/1.0\r\n\r\n".getBytes());
            socket.getInputStream().read();
        }
    }
}
EOF
    (cd "$WORK" && javac StacksClient.java)
    J="java -Djdk.internal.httpclient.disableHostnameVerification=true -cp $WORK StacksClient"
    next_run; run java "$JAVA" "java SSLSocket" default "$HOST" $J socket {}
    next_run; run java "$JAVA" "java SSLSocket" alpn "$HOST" $J alpn {}
    next_run; run java "$JAVA" "java SSLSocket" no-sni "$IP" $J socket {}
    next_run; run java "$JAVA" "java SSLSocket" tls1.2-only "$HOST" $J tls12 {}
    next_run; run java "$JAVA" "java HttpClient" default "$HOST" $J httpclient {}
else
    SKIPPED+=("java (apt-get install default-jdk-headless)")
fi

# --- Node.js (its bundled OpenSSL with Node's own defaults)
if command -v node >/dev/null; then
    NODE=$(node -p 'process.versions.node' | major_minor)
    log "node $NODE"
    cat >"$WORK/client.js" <<'EOF'
const net = require('net');
const tls = require('tls');
const [host, alpn, tls12] = process.argv.slice(2);
const options = { host, port: 443, rejectUnauthorized: false };
// tls.connect sends no SNI unless told (https.get sets it from the host name)
if (!net.isIP(host)) options.servername = host;
if (alpn === '1') options.ALPNProtocols = ['h2', 'http/1.1'];
if (tls12 === '1') options.maxVersion = 'TLSv1.2';
const socket = tls.connect(options, () => socket.end('GET / HTTP/1.0\r\n\r\n'));
socket.on('data', () => {});
socket.on('error', () => process.exit(1));
EOF
    next_run; run node "$NODE" "node tls" default "$HOST" node "$WORK/client.js" {} 0 0
    next_run; run node "$NODE" "node tls" alpn "$HOST" node "$WORK/client.js" {} 1 0
    next_run; run node "$NODE" "node tls" no-sni "$IP" node "$WORK/client.js" {} 0 0
    next_run; run node "$NODE" "node tls" tls1.2-only "$HOST" node "$WORK/client.js" {} 0 1
else
    SKIPPED+=("node (apt-get install nodejs)")
fi

# --- Go crypto/tls (the standard library: the version is Go's)
if command -v go >/dev/null; then
    GO=$(go version | awk '{print $3}' | major_minor)
    log "go $GO"
    mkdir -p "$WORK/go"
    cat >"$WORK/go/client.go" <<'EOF'
package main

import (
	"crypto/tls"
	"net"
	"os"
)

func main() {
	host, alpn, tls12 := os.Args[1], os.Args[2] == "1", os.Args[3] == "1"
	// tls.Dial takes SNI from the host name and sends none for an IP address
	config := &tls.Config{InsecureSkipVerify: true}
	if alpn {
		config.NextProtos = []string{"h2", "http/1.1"}
	}
	if tls12 {
		config.MaxVersion = tls.VersionTLS12
	}
	conn, err := tls.Dial("tcp", net.JoinHostPort(host, "443"), config)
	if err != nil {
		os.Exit(1)
	}
	conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	conn.Read(make([]byte, 100))
	conn.Close()
}
EOF
    (cd "$WORK/go" && GOCACHE=$WORK/go/cache GO111MODULE=off go build -o client client.go)
    next_run; run go "$GO" "go crypto/tls" default "$HOST" "$WORK/go/client" {} 0 0
    next_run; run go "$GO" "go crypto/tls" alpn "$HOST" "$WORK/go/client" {} 1 0
    next_run; run go "$GO" "go crypto/tls" no-sni "$IP" "$WORK/go/client" {} 0 0
    next_run; run go "$GO" "go crypto/tls" tls1.2-only "$HOST" "$WORK/go/client" {} 0 1
else
    SKIPPED+=("go (apt-get install golang-go)")
fi

sleep 1
for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
BG_PIDS=()

# --- rustls, in-process (the crate's dev-dependency)
RUSTLS=$(awk '/^name = "rustls"$/{getline; print $3}' "$ROOT/Cargo.lock" | tr -d '"' | major_minor)
log "rustls $RUSTLS (in-process)"
(cd "$ROOT" && cargo run -q --example rustls_hellos -- "$WORK/rustls.pcap" "$(date +%s)") >"$WORK/rustls.tsv"
while IFS=$'\t' read -r ip variation; do
    printf '%s\trustls\t%s\trustls %s (aws-lc-rs)\t%s\n' "$ip" "$RUSTLS" "$RUSTLS" "$variation" >>"$RUNS"
done <"$WORK/rustls.tsv"

mergecap -F pcap -w "$WORK/stacks.pcap" "$WORK/clients.pcap" "$WORK/rustls.pcap"

# ---------------------------------------------------------------- fingerprints
if [[ -x /work/bin/tlstap ]]; then TLSTAP=(/work/bin/tlstap)
elif [[ -x $ROOT/target/release/tlstap ]]; then TLSTAP=("$ROOT/target/release/tlstap")
else TLSTAP=(cargo run -q --release --manifest-path "$ROOT/Cargo.toml" --); fi
"${TLSTAP[@]}" read "$WORK/stacks.pcap" >"$WORK/records.ndjson"

python3 - "$RUNS" "$WORK/records.ndjson" "$WORK" <<'EOF'
import collections, json, sys
runs_path, records_path, work = sys.argv[1:4]
runs = {}
for line in open(runs_path):
    ip, name, version, client, variation = line.rstrip("\n").split("\t")
    runs[ip] = (name, version, client, variation)
seen, rows = set(), []
for line in open(records_path):
    record = json.loads(line)
    if record.get("event", {}).get("dataset") == "tlstap.stats":
        continue
    ip = record["destination"]["ip"]
    ja4 = record.get("tlstap", {}).get("client", {}).get("ja4")
    if ip not in runs or not ja4:
        sys.exit(f"session to {ip} has no run or no JA4: {ja4}")
    if ip in seen:
        sys.exit(f"two sessions to {ip}: a client retried; the capture is ambiguous")
    seen.add(ip)
    rows.append((ip, *runs[ip], ja4))
missing = sorted(set(runs) - seen, key=lambda ip: tuple(map(int, ip.split("."))))
if missing:
    sys.exit("no TLS session for: " + ", ".join(f"{ip} {runs[ip][2]} {runs[ip][3]}" for ip in missing))
rows.sort(key=lambda r: tuple(map(int, r[0].split("."))))
with open(f"{work}/stacks.tsv", "w") as out:
    out.write("ip\tstack\tversion\tclient\tvariation\tja4\n")
    for row in rows:
        out.write("\t".join(row) + "\n")

groups = collections.OrderedDict()
for ip, name, version, client, variation, ja4 in rows:
    _, b, c = ja4.split("_")
    group = groups.setdefault((b, c), {"stacks": [], "clients": [], "variations": [], "ja4": []})
    for key, value in (("stacks", (name, version)), ("clients", client), ("variations", variation), ("ja4", ja4)):
        if value not in group[key]:
            group[key].append(value)
def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
def qlist(values):
    return "[" + ", ".join(q(v) for v in values) + "]"
with open(f"{work}/tls-stacks.toml", "w") as out:
    out.write("""\
# TLS client stacks by JA4 b/c (cipher hash, extension+signature-algorithm hash).
# Generated by scripts/make-fingerprints.sh from real ClientHellos (samples/stacks.pcap,
# per-session list in samples/stacks.tsv); do not edit by hand: add your own entries
# to the policy file instead, they take precedence over these.
#
# SNI and ALPN do not change b/c (JA4 leaves both extensions out of c), so the
# default, alpn/no-alpn and no-sni variations of a client share an entry; TLS 1.2-only
# changes the cipher and extension lists and gets its own. `ja4` lists the full
# fingerprints seen, for reference only: matching uses ja4_b and ja4_c. A hello whose
# ja4_c alone is known, and known for one stack only, is reported with basis "ja4_c"
# (a program's own cipher list on top of a known library). Entries marked COLLISION
# name every library that sent the same b/c.
""")
    for (b, c), group in sorted(groups.items(), key=lambda kv: (kv[1]["stacks"][0], kv[0])):
        out.write("\n[[stack]]\n")
        if len(group["stacks"]) > 1:
            out.write("# COLLISION: different libraries send the same b/c; all are named below\n")
        out.write(f'name = {q(" / ".join(n for n, _ in group["stacks"]))}\n')
        out.write(f'version = {q(" / ".join(v for _, v in group["stacks"]))}\n')
        out.write(f'clients = {qlist(group["clients"])}\n')
        out.write(f'ja4_b = {q(b)}\n')
        out.write(f'ja4_c = {q(c)}\n')
        out.write(f'variations = {qlist(group["variations"])}\n')
        out.write(f'ja4 = {qlist(group["ja4"])}\n')
print(f"{len(rows)} sessions, {len(groups)} distinct b/c", file=sys.stderr)
EOF

size=$(stat -c %s "$WORK/stacks.pcap")
(( size < 300000 )) || die "stacks.pcap is $size bytes (limit 300000)"

# ---------------------------------------------------------------- install
mkdir -p "$ROOT/data" "$ROOT/samples"
cp "$WORK/tls-stacks.toml" "$ROOT/data/tls-stacks.toml"
cp "$WORK/stacks.pcap" "$ROOT/samples/stacks.pcap"
cp "$WORK/stacks.tsv" "$ROOT/samples/stacks.tsv"

sessions=$(( $(wc -l <"$WORK/stacks.tsv") - 1 ))
stacks=$(cut -f2,3 "$WORK/stacks.tsv" | tail -n +2 | sort -u | awk -F'\t' '{printf "%s%s %s", (NR>1?", ":""), $1, $2}')
packets=$(python3 -c 'import sys,struct
d=open(sys.argv[1],"rb").read(); i=24; n=0
while i < len(d): n+=1; i+=16+struct.unpack("<I", d[i+8:i+12])[0]
print(n)' "$WORK/stacks.pcap")
holds="$sessions ClientHellos from real TLS stacks ($stacks), per-session truth in stacks.tsv"
special="made by scripts/make-fingerprints.sh; BPF keeps only SYN/FIN/RST and segments starting with a TLS handshake record; rustls sessions written in-process (examples/rustls_hellos.rs)"
manifest_tsv=$ROOT/samples/MANIFEST.tsv
if [[ -f $manifest_tsv ]]; then
    grep -v '^stacks\.pcap	' "$manifest_tsv" >"$WORK/manifest.tsv" || true
    printf 'stacks.pcap\t%s\tclients → 10.20.1.N:443, rustls → 10.20.2.N:443\tTLS 1.2/1.3\t—\tmixed\tmixed\t—\t1\tstacks.test\tstacks.test\t—\t—\t—\t%s\t%s\t%s\n' \
        "$holds" "$special" "$packets" "$size" >>"$WORK/manifest.tsv"
    cp "$WORK/manifest.tsv" "$manifest_tsv"
fi
manifest_md=$ROOT/samples/MANIFEST.md
if [[ -f $manifest_md ]]; then
    python3 - "$manifest_md" "$holds" "$special" "$packets" "$size" <<'EOF'
import sys
path, holds, special, packets, size = sys.argv[1:6]
text = open(path).read()
start = text.find("\n## stacks.pcap\n")
if start >= 0:
    end = text.find("\n## ", start + 1)
    text = text[:start] + (text[end:] if end >= 0 else "\n")
text = text.rstrip("\n") + f"""

## stacks.pcap

Written by `scripts/make-fingerprints.sh` (make-samples.sh keeps it and this section). {holds}. {packets} packets, {size} bytes. Each client run
connects to its own server address 10.20.1.N (rustls: 10.20.2.N), so `samples/stacks.tsv` maps
every session to the stack, client and variation that made it. Server: `openssl s_server -www`,
self-signed ECDSA P-256 certificate CN=stacks.test. Note: {special}.
`data/tls-stacks.toml` was generated from this capture.
"""
open(path, "w").write(text)
EOF
fi
for s in "${SKIPPED[@]}"; do log "skipped: $s"; done
log "done: $sessions sessions; data/tls-stacks.toml, samples/stacks.pcap ($size bytes), samples/stacks.tsv"
