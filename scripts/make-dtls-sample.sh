#!/bin/sh
# Regenerates tests/data/dtls12-sni-hvr.pcap: an OpenSSL DTLS 1.2 handshake on
# loopback with a HelloVerifyRequest (s_server -listen), SNI "dtls.example",
# ECDHE-ECDSA-AES128-GCM-SHA256, a certificate fragmented by -mtu 500, one
# application record and close_notify both ways. Needs root for tcpdump.
set -eu
out=${1:-tests/data/dtls12-sni-hvr.pcap}
work=$(mktemp -d)
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
    -out cert.pem -days 3650 -subj "/CN=dtls.example" -addext "subjectAltName=DNS:dtls.example" 2>/dev/null
tcpdump -i lo -w capture.pcap -U udp port 4740 >/dev/null 2>&1 &
capture=$!
sleep 1
(sleep 6) | timeout 8 openssl s_server -dtls1_2 -listen -accept 4740 -cert cert.pem -key key.pem \
    -mtu 500 -naccept 1 >server.log 2>&1 &
sleep 1
(sleep 2; echo hello; sleep 2) | timeout 6 openssl s_client -dtls1_2 -connect 127.0.0.1:4740 \
    -servername dtls.example -mtu 500 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 >client.log 2>&1 || true
sleep 2
kill "$capture"
sleep 1
cd - >/dev/null
cp "$work/capture.pcap" "$out"
rm -rf "$work"
