#!/usr/bin/env bash
# make-resumption-sample.sh - one OpenSSL client, a full TLS 1.3 handshake and
# then a PSK resumption with early data, captured into
# samples/resumption/tls13-psk-resumption.pcap
#
#   sudo bash scripts/make-resumption-sample.sh
#
# needs: openssl tcpdump tshark iproute2
#
# What it does
#   * makes a throw-away self-signed ECDSA P-256 certificate CN=api.internal
#     (SAN api.internal) in a temporary directory,
#   * creates the network namespace "tlstap-resume" with only `lo` inside,
#     carrying 10.20.0.10 (server) and 10.20.0.20 (client); nothing leaves it,
#   * starts tcpdump on that `lo` and `openssl s_server -tls1_3 -early_data
#     -naccept 2` on 10.20.0.10:443,
#   * connection 1: `openssl s_client -sess_out` with its default offer (so
#     its ClientHello is the catalog's "openssl 3.0"; full handshake, the
#     session ticket is saved), connection 2: the same client with `-sess_in`
#     and `-early_data` (PSK resumption: the ClientHello adds pre_shared_key
#     and early_data, the ServerHello selects the PSK),
#   * checks with tshark that the second ClientHello carries extensions 41 and
#     42 and the second ServerHello 41, and with s_client that it said
#     "Reused", then copies the capture to samples/resumption/ and writes its
#     rows into samples/MANIFEST.tsv and MANIFEST.md (make-samples.sh keeps
#     them).
set -euo pipefail

NS=tlstap-resume
SRV=10.20.0.10
CLI=10.20.0.20
SNI=api.internal
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=$ROOT/samples/resumption
NAME=tls13-psk-resumption.pcap

die() { echo "make-resumption-sample: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace, tcpdump): sudo bash $0"
for c in openssl tcpdump tshark ip; do command -v "$c" >/dev/null || die "missing command: $c"; done

WORK=$(mktemp -d /tmp/tlstap-resume.XXXXXX)
cleanup() {
    [[ -n ${SERVER:-} ]] && kill "$SERVER" 2>/dev/null || true
    [[ -n ${DUMP:-} ]] && kill "$DUMP" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cd "$WORK"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
    -out cert.pem -days 90 -subj "/CN=$SNI" -addext "subjectAltName=DNS:$SNI" 2>/dev/null

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$SRV/32" dev lo
ip -n "$NS" addr add "$CLI/32" dev lo

ip netns exec "$NS" tcpdump -i lo -U --immediate-mode -w capture.pcap 'tcp port 443' \
    >tcpdump.log 2>&1 &
DUMP=$!
sleep 1
# -early_data excludes -www: the server prints what it receives instead; its
# stdin stays open so it does not end the connection first.
(sleep 30) | ip netns exec "$NS" openssl s_server -accept "$SRV:443" -cert cert.pem \
    -key key.pem -tls1_3 -early_data -naccept 2 >server.log 2>&1 &
SERVER=$!
sleep 1

request='GET / HTTP/1.0\r\n\r\n'
# Connection 1: full handshake; stdin stays open a moment so the tickets
# (sent after the handshake) are read before the client closes.
(printf "$request"; sleep 1) | ip netns exec "$NS" openssl s_client -connect "$SRV:443" \
    -bind "$CLI:0" -servername "$SNI" -sess_out session.pem >client1.log 2>&1 || true
[[ -s session.pem ]] || die "no session saved by connection 1 (see $WORK/client1.log)"
# Connection 2: PSK resumption, the request sent as early data.
printf "$request" >early.txt
(sleep 1) | ip netns exec "$NS" openssl s_client -connect "$SRV:443" \
    -bind "$CLI:0" -servername "$SNI" -sess_in session.pem -early_data early.txt \
    >client2.log 2>&1 || true
grep -q '^Reused, TLSv1.3' client2.log || die "connection 2 did not resume (see $WORK/client2.log)"

for _ in $(seq 50); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
kill "$SERVER" 2>/dev/null || true
SERVER=
sleep 1
kill "$DUMP"
wait "$DUMP" 2>/dev/null || true
DUMP=

# Checks: two connections; the second ClientHello offers a PSK and early data,
# the second ServerHello selects the PSK.
hellos=$(tshark -r capture.pcap -Y 'tls.handshake.type == 1' -T fields -e tcp.stream \
    -e tls.handshake.extension.type 2>/dev/null)
[[ $(wc -l <<<"$hellos") -eq 2 ]] || die "expected 2 ClientHellos, got: $hellos"
first=$(sed -n 1p <<<"$hellos" | cut -f2)
second=$(sed -n 2p <<<"$hellos" | cut -f2)
grep -qw 41 <<<"${first//,/ }" && die "first ClientHello already offers a PSK"
grep -qw 41 <<<"${second//,/ }" || die "second ClientHello lacks pre_shared_key: $second"
grep -qw 42 <<<"${second//,/ }" || die "second ClientHello lacks early_data: $second"
selected=$(tshark -r capture.pcap -Y 'tls.handshake.type == 2 && tcp.stream == 1' \
    -T fields -e tls.handshake.extension.type 2>/dev/null)
grep -qw 41 <<<"${selected//,/ }" || die "second ServerHello did not select the PSK: $selected"

mkdir -p "$DEST"
cp capture.pcap "$DEST/$NAME"
[[ -n ${SUDO_UID:-} && -n ${SUDO_GID:-} ]] && chown -R "$SUDO_UID:$SUDO_GID" "$DEST"

packets=$(capinfos -M -c "$DEST/$NAME" | awk '/Number of packets/ {print $NF}')
bytes=$(stat -c %s "$DEST/$NAME")
ports=$(tshark -r "$DEST/$NAME" -Y 'tls.handshake.type == 1' -T fields -e tcp.srcport 2>/dev/null | paste -sd/)
version=$(openssl version)
holds="one openssl s_client ($version, default offer) against s_server -tls1_3, two connections: a full TLS 1.3 handshake (-sess_out), then a PSK resumption with early data (-sess_in -early_data)"
special="2nd ClientHello adds pre_shared_key (41) and early_data (42), its ServerHello selects the PSK (tls.resumed true); same client library both times: one tlstap.client.stack, no new_client_stack; self-signed ECDSA P-256 leaf CN=$SNI, encrypted (TLS 1.3); made by scripts/make-resumption-sample.sh"
row="resumption/$NAME	$holds	$CLI:$ports → $SRV:443	TLS 1.3	TLS_AES_256_GCM_SHA384 (0x1302)	$SNI	—	x25519 (0x001d)	—	—	—	—	—	—	$special	$packets	$bytes"

tsv=$ROOT/samples/MANIFEST.tsv
md=$ROOT/samples/MANIFEST.md
if [[ -f $tsv ]]; then
    { grep -v "^resumption/$NAME	" "$tsv" || true; echo "$row"; } >"$WORK/manifest.tsv"
    cp "$WORK/manifest.tsv" "$tsv"
fi
if [[ -f $md ]]; then
    python3 - "$md" "$row" <<'PY'
import sys
path, row = sys.argv[1:3]
cells = row.split("\t")
line = "| `" + cells[0] + "` | " + " | ".join(cells[1:]) + " |"
lines = [l for l in open(path).read().splitlines() if not l.startswith("| `" + cells[0] + "`")]
at = next(i for i, l in enumerate(lines) if l.startswith("A tab-separated copy"))
insert = at - 1 if lines[at - 1] == "" else at
lines.insert(insert, line)
text = "\n".join(lines) + "\n"
start = text.find("\n## TLS 1.3 resumption (`resumption/`)\n")
if start >= 0:
    end = text.find("\n## ", start + 1)
    text = text[:start] + (text[end:] if end >= 0 else "\n")
text = text.rstrip("\n") + """

## TLS 1.3 resumption (`resumption/`)

Written by `scripts/make-resumption-sample.sh` (make-samples.sh keeps it and this section): one
`openssl s_client` (its default offer) against `openssl s_server -tls1_3 -early_data` in a private network
namespace (10.20.0.20 → 10.20.0.10:443), first a full handshake that saves the session ticket
(`-sess_out`), then a second connection that resumes with it (`-sess_in`) and sends its request as
early data. The second ClientHello differs from the first only by what resumption adds
(`pre_shared_key`, `early_data`, a fresh key share and random): the same client library, which
tlstap must name the same way both times.
"""
open(path, "w").write(text)
PY
fi
echo "make-resumption-sample: wrote $DEST/$NAME ($packets packets, $bytes bytes)"
