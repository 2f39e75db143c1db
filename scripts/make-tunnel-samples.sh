#!/usr/bin/env bash
# make-tunnel-samples.sh - one real TLS session per tunnel type, captured at
# the same time inside the tunnel (plain) and on the underlay (tunnelled),
# into samples/tunnels/
#
#   sudo bash scripts/make-tunnel-samples.sh
#   sudo ONLY="vxlan" bash scripts/make-tunnel-samples.sh
#
# needs: openssl tcpdump tshark iproute2 ethtool procps (ethtool is optional)
#
# What it does
#   * builds a throw-away CA and a leaf for api.internal in a temporary
#     directory (only the CA certificate is copied, to samples/tunnels/ca.pem),
#   * creates two network namespaces joined by a veth pair, the underlay:
#     "tlstap-tun-a" (10.88.0.1 on tun-a) and "tlstap-tun-b" (10.88.0.2 on tun-b),
#   * for each tunnel type, adds the overlay device ov-a / ov-b with
#       vxlan:  ip link add ... type vxlan id 4242 local .. remote .. dstport 4789
#       gretap: ip link add ... type gretap local .. remote ..        (no key)
#       gretap-key: the same with `key 77` (GRE key field in both directions)
#       geneve: ip link add ... type geneve id 4242 remote ..          (UDP 6081)
#     When the kernel has no such link type (e.g. a VM kernel built without
#     CONFIG_NET_IPGRE_DEMUX or CONFIG_GENEVE), the tunnel is made in user
#     space instead: a small Python helper owns a TAP device ov-a / ov-b and
#     carries its Ethernet frames in GRE (IP protocol 47, 0x6558, no key) or
#     GENEVE (UDP 6081, VNI 4242) over the underlay; the kernel TCP/IP stacks
#     at both ends and both capture points stay the same.  The log says which
#     was used (TUNNEL_IMPL=kernel|user forces one),
#     carrying 10.99.0.1 (server, in a) and 10.99.0.2 (client, in b), with
#     static neighbour entries so no ARP crosses the tunnel,
#   * runs ONE `openssl s_server -tls1_3` / `s_client` session over the
#     overlay while two tcpdumps in namespace a capture it at once: on ov-a
#     (the inner Ethernet frames: <type>-inner.pcap) and on tun-a (the same
#     frames encapsulated: <type>.pcap),
#   * checks both captures with tshark (same number of TLS handshake messages,
#     the tunnel header present) and copies them to samples/tunnels/.
#
# Offloads are turned off on every device, so the two captures hold the same
# frames; timestamps differ by the few microseconds of encapsulation.
set -euo pipefail

NS_A=tlstap-tun-a
NS_B=tlstap-tun-b
UA=10.88.0.1
UB=10.88.0.2
IA=10.99.0.1
IB=10.99.0.2
VNI=4242
GRE_KEY=77

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=$ROOT/samples/tunnels
START_TS=$(date +%s)

log() { printf '[make-tunnel-samples %3ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, tcpdump): sudo bash $0"
for c in openssl tcpdump tshark capinfos ip ss ps timeout; do
    command -v "$c" >/dev/null || die "missing command: $c (see '# needs:' at the top)"
done

WORK=$(mktemp -d /tmp/tlstap-tunnels.XXXXXX)
OUT=$WORK/out
PKI=$WORK/pki
LOGS=$WORK/log
mkdir -p "$OUT" "$PKI" "$LOGS"
BG_PIDS=()

# ---------------------------------------------------------------- process helpers
alive() {
    local s
    s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $s && $s != Z* ]]
}
dead() { ! alive "$1"; }

wait_until() {
    local t=$1; shift
    local deadline=$(( $(date +%s%N) + t * 1000000000 ))
    until "$@"; do
        (( $(date +%s%N) < deadline )) || return 1
        sleep 0.05
    done
}

stop_pid() {
    local pid=$1 sig=${2:-TERM}
    if alive "$pid"; then
        kill -s "$sig" "$pid" 2>/dev/null || true
        wait_until 5 dead "$pid" || kill -s KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

ns_exists() { ip netns list 2>/dev/null | grep -qw "^$1"; }

ns_teardown() {
    local ns=$1 p
    ns_exists "$ns" || return 0
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    local p
    for p in "${BG_PIDS[@]}"; do stop_pid "$p"; done
    ns_teardown "$NS_A"
    ns_teardown "$NS_B"
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

# (never background in_a/in_b: & would fork a subshell and $! would not be the real process)
in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

want() { [[ -z ${ONLY:-} || " $ONLY " == *" $1 "* ]]; }

no_offload() {               # no_offload NS DEV: wire-sized frames in both captures
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- underlay
setup_underlay() {
    ns_teardown "$NS_A"; ns_teardown "$NS_B"
    ip netns add "$NS_A"
    ip netns add "$NS_B"
    ip link add tun-a netns "$NS_A" type veth peer name tun-b netns "$NS_B"
    in_a ip addr add "$UA/24" dev tun-a
    in_b ip addr add "$UB/24" dev tun-b
    local ns dev
    for ns in "$NS_A:tun-a" "$NS_B:tun-b"; do
        dev=${ns#*:}; ns=${ns%%:*}
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip link set "$dev" up
        no_offload "$ns" "$dev"
    done
    # static neighbours on the underlay too: the capture holds only the tunnel
    in_a ip neigh replace "$UB" lladdr "$(in_b cat /sys/class/net/tun-b/address)" dev tun-a nud permanent
    in_b ip neigh replace "$UA" lladdr "$(in_a cat /sys/class/net/tun-a/address)" dev tun-b nud permanent
}

# user-space gretap/geneve: TAP device <-> GRE (IP proto 47) or GENEVE (UDP 6081)
write_utun() {
    cat >"$WORK/utun.py" <<'PY'
"""utun.py TYPE TAPNAME LOCAL REMOTE VNI-OR-KEY: a user-space gretap/geneve endpoint."""
import fcntl, os, select, socket, struct, sys

kind, tap_name, local, remote, vni = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
key = vni if kind == "gretap-key" else None
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
tap = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", tap_name.encode(), IFF_TAP | IFF_NO_PI))
if kind.startswith("gretap"):
    # RFC 2784: version 0, protocol 0x6558 (transparent Ethernet bridging);
    # RFC 2890: with a key, the K bit and a 4-byte key follow
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
    sock.bind((local, 0))
    if key is None:
        header = struct.pack("!HH", 0, 0x6558)
    else:
        header = struct.pack("!HHI", 0x2000, 0x6558, key)
    dest = (remote, 0)
else:
    # RFC 8926 §3.4: version 0, no options, protocol 0x6558, VNI, reserved
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((local, 6081))
    header = struct.pack("!BBH", 0, 0, 0x6558) + struct.pack("!I", vni << 8)
    dest = (remote, 6081)
print("ready", flush=True)
while True:
    ready, _, _ = select.select([tap, sock], [], [])
    if tap in ready:
        sock.sendto(header + os.read(tap, 65535), dest)
    if sock in ready:
        data, peer = sock.recvfrom(65535)
        if kind.startswith("gretap"):
            data = data[(data[0] & 0x0F) * 4:]          # raw socket: skip the IP header
            if data[:len(header)] == header:
                os.write(tap, data[len(header):])
        elif peer[0] == remote and data[:8] == header:
            os.write(tap, data[8:])
PY
}

kernel_has() {               # kernel_has TYPE: can this kernel create a TYPE link?
    local ok=0
    local -a id=()
    [[ $1 != geneve ]] || id=(id 1)
    ip netns del tlstap-tun-probe 2>/dev/null || true
    ip netns add tlstap-tun-probe
    ip netns exec tlstap-tun-probe ip link add probe0 type "${1%-key}" "${id[@]}" remote 192.0.2.1 >/dev/null 2>&1 || ok=1
    ip netns del tlstap-tun-probe
    return "$ok"
}

IMPL=
# overlay TYPE: create ov-a/ov-b of TYPE, address them, static neighbours
overlay() {
    local type=$1
    local -a a b
    IMPL=${TUNNEL_IMPL:-}
    if [[ -z $IMPL ]]; then
        if [[ $type == vxlan ]] || kernel_has "$type"; then IMPL=kernel; else IMPL=user; fi
    fi
    if [[ $IMPL == user ]]; then
        [[ $type != vxlan ]] || die "no user-space vxlan"
        [[ -e $WORK/utun.py ]] || write_utun
        local side ns dev local_ip remote_ip
        for side in "a:$NS_A:$UA:$UB" "b:$NS_B:$UB:$UA"; do
            IFS=: read -r dev ns local_ip remote_ip <<<"$side"
            ip netns exec "$ns" python3 -u "$WORK/utun.py" "$type" "ov-$dev" "$local_ip" "$remote_ip" \
                "$([[ $type == gretap-key ]] && echo "$GRE_KEY" || echo "$VNI")" \
                </dev/null >"$LOGS/utun-$type-$dev.log" 2>&1 &
            BG_PIDS+=($!)
            UTUN_PIDS+=($!)
            wait_until 5 grep -q ready "$LOGS/utun-$type-$dev.log" || die "utun $type $dev: $(cat "$LOGS/utun-$type-$dev.log")"
        done
        # the same MTU the kernel devices would get (1500 - outer IP/GRE/Ethernet, or IP/UDP/GENEVE/Ethernet)
        local mtu=1450
        [[ $type != gretap ]] || mtu=1462
        [[ $type != gretap-key ]] || mtu=1458
        in_a ip link set ov-a mtu "$mtu"
        in_b ip link set ov-b mtu "$mtu"
    else
    case $type in
        vxlan)  a=(type vxlan id "$VNI" local "$UA" remote "$UB" dstport 4789 dev tun-a)
                b=(type vxlan id "$VNI" local "$UB" remote "$UA" dstport 4789 dev tun-b) ;;
        gretap) a=(type gretap local "$UA" remote "$UB")
                b=(type gretap local "$UB" remote "$UA") ;;
        gretap-key) a=(type gretap local "$UA" remote "$UB" key "$GRE_KEY")
                b=(type gretap local "$UB" remote "$UA" key "$GRE_KEY") ;;
        geneve) a=(type geneve id "$VNI" remote "$UB")
                b=(type geneve id "$VNI" remote "$UA") ;;
        *) die "unknown tunnel type $type" ;;
    esac
    in_a ip link add ov-a "${a[@]}"
    in_b ip link add ov-b "${b[@]}"
    fi
    log "$type: $IMPL tunnel"
    in_a ip addr add "$IA/24" dev ov-a
    in_b ip addr add "$IB/24" dev ov-b
    in_a ip link set ov-a up
    in_b ip link set ov-b up
    no_offload "$NS_A" ov-a
    no_offload "$NS_B" ov-b
    in_a ip neigh replace "$IB" lladdr "$(in_b cat /sys/class/net/ov-b/address)" dev ov-a nud permanent
    in_b ip neigh replace "$IA" lladdr "$(in_a cat /sys/class/net/ov-a/address)" dev ov-b nud permanent
}

UTUN_PIDS=()
overlay_down() {
    local p
    for p in "${UTUN_PIDS[@]}"; do stop_pid "$p"; done
    UTUN_PIDS=()
    in_a ip link del ov-a 2>/dev/null || true
    in_b ip link del ov-b 2>/dev/null || true
}

# ---------------------------------------------------------------- PKI
make_pki() {
    log "building test CA and api.internal leaf"
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -sha256 \
        -subj "/O=tlstap Test PKI/CN=tlstap Tunnel Test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$LOGS/pki.log"
    openssl req -new -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=api.internal" 2>>"$LOGS/pki.log"
    printf '%s\n' 'basicConstraints = critical, CA:FALSE' 'keyUsage = critical, digitalSignature, keyEncipherment' \
        'extendedKeyUsage = serverAuth' "subjectAltName = DNS:api.internal, IP:$IA" >leaf.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 -sha256 \
        -extfile leaf.ext -out server.pem 2>>"$LOGS/pki.log"
    openssl verify -CAfile ca.pem server.pem >>"$LOGS/pki.log"
    cd "$ROOT"
}

# ---------------------------------------------------------------- capture
TCPDUMP_PIDS=()
start_capture() {            # start_capture FILE DEV FILTER
    local file=$1 dev=$2 filter=$3 name; name=$(basename "$file" .pcap)
    ip netns exec "$NS_A" tcpdump -Z root -U --immediate-mode -n -i "$dev" -w "$file" "$filter" \
        </dev/null 2>"$LOGS/$name.tcpdump" &
    TCPDUMP_PIDS+=($!)
    BG_PIDS+=($!)
    wait_until 10 grep -q 'listening on' "$LOGS/$name.tcpdump" \
        || die "$name: tcpdump did not start: $(cat "$LOGS/$name.tcpdump")"
}

stop_captures() {
    sleep 0.5
    local p
    for p in "${TCPDUMP_PIDS[@]}"; do stop_pid "$p" TERM; done
    TCPDUMP_PIDS=()
}

listening() { in_a ss -Hltn "sport = :$1" | grep -q .; }

tunnel_sample() {            # tunnel_sample TYPE UNDERLAY-FILTER
    local type=$1 filter=$2
    log "capturing $type.pcap and $type-inner.pcap (one openssl TLS 1.3 session over $type)"
    overlay "$type"
    start_capture "$OUT/$type-inner.pcap" ov-a "tcp port 443"
    start_capture "$OUT/$type.pcap" tun-a "$filter"
    sleep 0.2
    ip netns exec "$NS_A" openssl s_server -accept "$IA:443" -naccept 1 -www -tls1_3 \
        -cert "$PKI/server.pem" -key "$PKI/server.key" </dev/null >"$LOGS/$type.server" 2>&1 &
    local server=$!
    BG_PIDS+=("$server")
    wait_until 10 listening 443 || die "$type: s_server not listening: $(cat "$LOGS/$type.server")"
    printf 'GET / HTTP/1.0\r\nHost: api.internal\r\n\r\n' |
        timeout 15 ip netns exec "$NS_B" openssl s_client -connect "$IA:443" -servername api.internal \
            -CAfile "$PKI/ca.pem" -verify_return_error -ign_eof >"$LOGS/$type.client" 2>&1 \
        || die "$type: s_client failed: $(tail -5 "$LOGS/$type.client")"
    wait_until 10 dead "$server" || die "$type: s_server did not exit"
    wait "$server" 2>/dev/null || true
    stop_captures
    overlay_down
    check "$type"
}

# check TYPE: both captures hold the same TLS handshake messages; the outer one is tunnelled
check() {
    local type=$1 inner=$OUT/$1-inner.pcap outer=$OUT/$1.pcap
    local hs_in hs_out n_in n_out proto
    hs_in=$(tshark -r "$inner" -Y tls.handshake -T fields -e tls.handshake.type 2>/dev/null | paste -sd' ')
    hs_out=$(tshark -r "$outer" -Y tls.handshake -T fields -e tls.handshake.type 2>/dev/null | paste -sd' ')
    [[ -n $hs_in && $hs_in == "$hs_out" ]] || die "$type: handshake differs: inner [$hs_in] outer [$hs_out]"
    n_in=$(capinfos -Mc "$inner" | awk -F': *' '/Number of packets/ { print $2 }')
    n_out=$(capinfos -Mc "$outer" | awk -F': *' '/Number of packets/ { print $2 }')
    (( n_in == n_out )) || die "$type: $n_in inner packets but $n_out tunnelled ones"
    case $type in vxlan) proto=vxlan ;; gretap*) proto=gre ;; geneve) proto=geneve ;; esac
    (( $(tshark -r "$outer" -Y "$proto" 2>/dev/null | wc -l) == n_out )) || die "$type: not every frame is $proto"
    log "$type: $n_out packets each; $(stat -c %s "$inner") / $(stat -c %s "$outer") bytes; handshake types [$hs_in]"
}

# ---------------------------------------------------------------- main
setup_underlay
make_pki
if want vxlan; then tunnel_sample vxlan "udp port 4789"; fi
if want gretap; then tunnel_sample gretap "proto gre"; fi
if want gretap-key; then tunnel_sample gretap-key "proto gre"; fi
if want geneve; then tunnel_sample geneve "udp port 6081"; fi

mkdir -p "$DEST"
for f in "$OUT"/*.pcap; do cp "$f" "$DEST/"; done
if [[ -z ${ONLY:-} ]]; then cp "$PKI/ca.pem" "$DEST/ca.pem"; fi
log "done: $(ls "$OUT" | wc -l) captures in $DEST"
