#!/usr/bin/env bash
# make-upgrade-samples.sh - real STARTTLS-style upgrades between Debian
# servers and real clients, captured into samples/upgrades/
#
#   sudo bash scripts/make-upgrade-samples.sh            # all samples
#   sudo ONLY="postgres-ssl smtp-plain" bash scripts/make-upgrade-samples.sh
#
# needs (installed with apt-get when missing): postgresql mariadb-server
#   mariadb-client postfix dovecot-imapd dovecot-pop3d slapd ldap-utils
#   tinyproxy swaks ethtool openssl tcpdump tshark curl iproute2
#
# What it does
#   * builds a throw-away CA and one server leaf (DNS:db.internal,
#     mail.internal, ldap.internal, api.internal, proxy.internal,
#     IP:10.77.0.1) in a temporary directory; only the CA certificate is
#     copied to samples/upgrades/ca.pem,
#   * creates two network namespaces joined by a veth pair: the server side
#     "tlstap-upg-srv" (10.77.0.1 on upg-s) and the client side
#     "tlstap-upg-cli" (10.77.0.2 on upg-c); /etc/netns/<ns>/hosts names
#     10.77.0.1; offloads are off so captured frames are wire-sized,
#   * for each sample: starts the real daemon in the server namespace with a
#     private configuration under the temporary directory (nothing in /etc is
#     touched, no system service is started), tcpdumps upg-s with a filter
#     for that one service port, runs the real client in the client
#     namespace, stops tcpdump and the daemon,
#   * checks each capture with tshark (ClientHello present, or absent for
#     the plaintext cases) and prints one manifest row per capture,
#   * only when everything passed, copies the captures to samples/upgrades/
#     (and ca.pem, unless ONLY is set).
#
# Every run makes a fresh CA, so certificates, ports and random values
# change from run to run.  Set KEEP_WORK=1 to keep the temporary directory.
set -euo pipefail

NS_S=tlstap-upg-srv
NS_C=tlstap-upg-cli
SRV=10.77.0.1
CLI=10.77.0.2
PACKAGES=(postgresql mariadb-server mariadb-client postfix dovecot-imapd dovecot-pop3d
    slapd ldap-utils tinyproxy swaks ethtool openssl tcpdump tshark curl iproute2)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=$ROOT/samples/upgrades
START_TS=$(date +%s)

log() { printf '[make-upgrade-samples %3ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, daemons, tcpdump): sudo bash $0"

# ---------------------------------------------------------------- packages
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if (( ${#missing[@]} )); then
    log "installing ${missing[*]}"
    # keep postfix/slapd from asking questions; policy-rc.d (if any) keeps the
    # system services from starting, and we stop them below otherwise
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

WORK=$(mktemp -d /tmp/tlstap-upgrades.XXXXXX)
chmod 755 "$WORK"          # daemons running as postgres/mysql read their files here
OUT=$WORK/out
PKI=$WORK/pki
LOGS=$WORK/log
mkdir -p "$OUT" "$PKI" "$LOGS"
ROWS=$WORK/rows.tsv
: >"$ROWS"

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
        wait_until 10 dead "$pid" || kill -s KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

ns_exists() { ip netns list 2>/dev/null | grep -qw "^$1"; }

# kill what still runs inside one of our namespaces (only this script starts
# processes there), then delete it
ns_teardown() {
    local ns=$1 p
    ns_exists "$ns" || return 0
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    local p
    for p in "${BG_PIDS[@]}"; do stop_pid "$p"; done
    ns_teardown "$NS_S"
    ns_teardown "$NS_C"
    rm -rf "/etc/netns/$NS_S" "/etc/netns/$NS_C"
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

# (never background in_srv/in_cli: & would fork a subshell and $! would not be the real process)
in_srv() { ip netns exec "$NS_S" "$@"; }
in_cli() { ip netns exec "$NS_C" "$@"; }
# as USER CMD...: setpriv execs (no lingering parent), so $! stays the daemon
as() { local u=$1; shift; setpriv --reuid "$u" --regid "$(id -g "$u")" --init-groups -- "$@"; }

# ---------------------------------------------------------------- namespaces
setup_ns() {
    ns_teardown "$NS_S"; ns_teardown "$NS_C"
    ip netns add "$NS_S"
    ip netns add "$NS_C"
    ip link add upg-s netns "$NS_S" type veth peer name upg-c netns "$NS_C"
    in_srv ip addr add "$SRV/24" dev upg-s
    in_cli ip addr add "$CLI/24" dev upg-c
    local ns dev
    for ns in "$NS_S:upg-s" "$NS_C:upg-c"; do
        dev=${ns#*:}; ns=${ns%%:*}
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip link set "$dev" up
        # wire-sized frames in the capture (no TSO/GSO super-packets)
        ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
        mkdir -p "/etc/netns/$ns"
        printf '127.0.0.1 localhost\n%s db.internal mail.internal ldap.internal api.internal proxy.internal\n%s client.internal\n' \
            "$SRV" "$CLI" >"/etc/netns/$ns/hosts"
    done
    link_up() { in_cli ip -br link show upg-c | grep -q 'LOWER_UP'; }
    wait_until 10 link_up || die "veth upg-c did not come up"
}

# ---------------------------------------------------------------- PKI
make_pki() {
    log "building test CA and server leaf"
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -sha256 \
        -subj "/O=tlstap Test PKI/CN=tlstap Upgrade Test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$LOGS/pki.log"
    openssl req -new -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
        -subj "/CN=mail.internal" 2>>"$LOGS/pki.log"
    cat >leaf.ext <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:mail.internal, DNS:db.internal, DNS:ldap.internal, DNS:api.internal, DNS:proxy.internal, IP:$SRV
EOF
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 -sha256 \
        -extfile leaf.ext -out server.pem 2>>"$LOGS/pki.log"
    openssl verify -CAfile ca.pem server.pem >>"$LOGS/pki.log"
    # per-daemon copies: postgres and mariadb insist on owning their key
    install -o postgres -g postgres -m 600 server.key pg.key
    install -o postgres -g postgres -m 644 server.pem pg.pem
    install -o mysql -g mysql -m 600 server.key my.key
    install -o mysql -g mysql -m 644 server.pem my.pem
    chmod 644 ca.pem server.pem
    chmod 600 server.key ca.key
    chmod 755 "$PKI"
    cd "$ROOT"
}

# ---------------------------------------------------------------- capture helpers
TCPDUMP_PID=
start_capture() {            # start_capture NAME PORT
    local name=$1 port=$2
    ip netns exec "$NS_S" tcpdump -Z root -U --immediate-mode -n -i upg-s -w "$OUT/$name.pcap" \
        "tcp and host $CLI and host $SRV and port $port" </dev/null 2>"$LOGS/$name.tcpdump" &
    TCPDUMP_PID=$!
    BG_PIDS+=("$TCPDUMP_PID")
    wait_until 10 grep -q 'listening on' "$LOGS/$name.tcpdump" \
        || die "$name: tcpdump did not start: $(cat "$LOGS/$name.tcpdump")"
    sleep 0.2
}

stop_capture() {             # stop_capture NAME
    local name=$1
    sleep 0.5                # let the last FIN/ACKs through
    stop_pid "$TCPDUMP_PID" TERM
    grep -q 'packets captured' "$LOGS/$name.tcpdump" || die "$name: tcpdump did not exit cleanly"
}

listening() { in_srv ss -Hltn "sport = :$1" | grep -q .; }

DAEMON_PID=
# start_daemon NAME PORT CMD...: CMD runs in the server namespace, in the foreground
start_daemon() {
    local name=$1 port=$2; shift 2
    ip netns exec "$NS_S" "$@" </dev/null >>"$LOGS/$name.server" 2>&1 &
    DAEMON_PID=$!
    BG_PIDS+=("$DAEMON_PID")
    wait_until 30 listening "$port" || die "$name: server not listening on $port: $(tail -20 "$LOGS/$name.server")"
}

stop_daemon() { stop_pid "$DAEMON_PID" "${1:-TERM}"; }

# client NAME CMD...: run CMD in the client namespace (stdin from the caller)
client() {
    local name=$1; shift
    timeout 30 ip netns exec "$NS_C" "$@" >>"$LOGS/$name.client" 2>&1 \
        || die "$name: client failed: $(tail -10 "$LOGS/$name.client")"
}

want() { [[ -z ${ONLY:-} || " $ONLY " == *" $1 "* ]]; }

# ---------------------------------------------------------------- checks and rows
# check NAME tls|plain WHAT: a ClientHello must (tls) or must not (plain) be in the capture
check() {
    local name=$1 mode=$2 what=$3 f=$OUT/$1.pcap
    local hellos packets bytes
    hellos=$(tshark -r "$f" -Y 'tls.handshake.type == 1' -T fields -e frame.number 2>/dev/null | wc -l)
    packets=$(capinfos -Mc "$f" | awk -F': *' '/Number of packets/ { print $2 }')
    bytes=$(stat -c %s "$f")
    if [[ $mode == tls ]]; then
        # 2 ClientHellos after a HelloRetryRequest (PostgreSQL's default ssl_ecdh_curve is P-256)
        (( hellos == 1 || hellos == 2 )) || die "$name: expected 1 ClientHello (2 with HRR), found $hellos"
        local v c sni
        v=$(tshark -r "$f" -Y 'tls.handshake.type == 2' -T fields -e tls.handshake.extensions.supported_version -e tls.handshake.version 2>/dev/null | head -1)
        c=$(tshark -r "$f" -Y 'tls.handshake.type == 2' -T fields -e tls.handshake.ciphersuite 2>/dev/null | head -1)
        sni=$(tshark -r "$f" -Y 'tls.handshake.type == 1' -T fields -e tls.handshake.extensions_server_name 2>/dev/null | head -1)
        [[ -n $c ]] || die "$name: no ServerHello"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "upgrades/$name.pcap" "$what" "${v//	/ }" "$c" "${sni:-—}" "$packets" "$bytes" >>"$ROWS"
    else
        (( hellos == 0 )) || die "$name: expected no ClientHello, found $hellos"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "upgrades/$name.pcap" "$what" "—" "—" "—" "$packets" "$bytes" >>"$ROWS"
    fi
    log "$name: $packets packets, $bytes bytes"
}

# ---------------------------------------------------------------- PostgreSQL
postgres_sample() {          # postgres_sample NAME on|off SSLMODE
    local name=$1 ssl=$2 mode=$3 data=$WORK/pg/data
    if [[ ! -d $data ]]; then
        install -d -o postgres -g postgres "$WORK/pg"
        as postgres "$PGBIN/initdb" -D "$data" -A trust -U postgres --no-sync >"$LOGS/initdb.log" 2>&1
        echo "host all all 10.77.0.0/24 trust" >>"$data/pg_hba.conf"
    fi
    log "capturing $name.pcap (PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), ssl=$ssl, psql sslmode=$mode)"
    start_daemon "$name" 5432 setpriv --reuid postgres --regid postgres --init-groups -- \
        "$PGBIN/postgres" -D "$data" -c listen_addresses="$SRV" -c unix_socket_directories="$WORK/pg" \
        -c ssl="$ssl" -c ssl_cert_file="$PKI/pg.pem" -c ssl_key_file="$PKI/pg.key"
    start_capture "$name" 5432
    client "$name" env PGCONNECT_TIMEOUT=10 psql -X \
        "host=db.internal port=5432 dbname=postgres user=postgres sslmode=$mode application_name=tlstap-sample" \
        -c "select current_setting('ssl') as server_ssl, version()"
    stop_capture "$name"
    stop_daemon INT           # fast shutdown
}

# ---------------------------------------------------------------- Postfix
POSTFIX_CONF=
postfix_setup() {
    local pf=$WORK/postfix
    POSTFIX_CONF=$pf/etc
    mkdir -p "$pf/etc" "$pf/spool" "$pf/data"
    cp /etc/postfix/master.cf /etc/postfix/dynamicmaps.cf "$pf/etc/" 2>/dev/null || cp /usr/share/postfix/master.cf.dist "$pf/etc/master.cf"
    chown postfix "$pf/data"
    cat >"$pf/etc/main.cf" <<EOF
compatibility_level = 3.6
myhostname = mail.internal
mydomain = internal
myorigin = \$myhostname
mydestination = \$myhostname, localhost
inet_interfaces = $SRV
inet_protocols = ipv4
mynetworks = 10.77.0.0/24, 127.0.0.0/8
queue_directory = $pf/spool
data_directory = $pf/data
maillog_file = $LOGS/postfix.maillog
maillog_file_prefixes = $WORK
alias_maps =
alias_database =
local_recipient_maps =
# nothing is delivered anywhere: accepted mail is discarded
local_transport = discard:
default_transport = discard:
relay_transport = discard:
smtpd_banner = \$myhostname ESMTP Postfix (Debian/GNU)
smtpd_tls_cert_file = $PKI/server.pem
smtpd_tls_key_file = $PKI/server.key
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
EOF
    # no chroot: the private queue directory holds no copies of /etc files
    postconf -c "$pf/etc" -F '*/*/chroot = n'
    # (postfix writes errors to syslog only unless stderr is a terminal: script(1) gives it one)
    in_srv script -qec "postfix -c $pf/etc check" /dev/null >>"$LOGS/postfix.check" 2>&1 \
        || die "postfix check failed: $(cat "$LOGS/postfix.check")"
}

postfix_start() {            # postfix_start NAME
    [[ -n $POSTFIX_CONF ]] || postfix_setup
    start_daemon "$1" 25 postfix -c "$POSTFIX_CONF" start-fg
}
postfix_stop() {
    in_srv postfix -c "$POSTFIX_CONF" stop >>"$LOGS/postfix.stop" 2>&1 || true
    wait_until 15 dead "$DAEMON_PID" || stop_daemon
    wait "$DAEMON_PID" 2>/dev/null || true
}

smtp_starttls_sample() {
    local name=smtp-starttls
    log "capturing $name.pcap (Postfix $(postconf -d -h mail_version), openssl s_client -starttls smtp)"
    postfix_start "$name"
    start_capture "$name" 25
    printf 'EHLO client.internal\r\nQUIT\r\n' | client "$name" openssl s_client -starttls smtp \
        -connect mail.internal:25 -name client.internal -servername mail.internal \
        -CAfile "$PKI/ca.pem" -verify_return_error -ign_eof
    stop_capture "$name"
    postfix_stop
}

smtp_plain_sample() {        # smtp_plain_sample NAME SUBJECT BODY
    local name=$1 subject=$2 body=$3
    log "capturing $name.pcap (Postfix, swaks without --tls: STARTTLS offered, never used)"
    postfix_start "$name"
    start_capture "$name" 25
    client "$name" swaks --server mail.internal --port 25 --ehlo client.internal \
        --from app@client.internal --to alerts@mail.internal \
        --header "Subject: $subject" --body "$body"
    stop_capture "$name"
    postfix_stop
}

# ---------------------------------------------------------------- Dovecot
dovecot_setup() {
    local d=$WORK/dovecot
    mkdir -p "$d/run" "$d/state" "$d/mail"
    chmod 755 "$d" "$d/run"
    chmod 1777 "$d/mail"      # maildirs are made by the static user (nobody)
    cat >"$d/dovecot.conf" <<EOF
base_dir = $d/run
state_dir = $d/state
instance_name = tlstap-upg
listen = $SRV
protocols = imap pop3
ssl = yes
ssl_cert = <$PKI/server.pem
ssl_key = <$PKI/server.key
disable_plaintext_auth = yes
log_path = $LOGS/dovecot.log
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:$d/mail/%u
passdb {
  driver = static
  args = password=unused
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$d/mail/%u
}
EOF
}

dovecot_sample() {           # dovecot_sample NAME PORT PROTO COMMANDS
    local name=$1 port=$2 proto=$3 commands=$4
    [[ -e $WORK/dovecot/dovecot.conf ]] || dovecot_setup
    log "capturing $name.pcap (Dovecot $(dovecot --version | awk '{print $1}'), openssl s_client -starttls $proto)"
    start_daemon "$name" "$port" dovecot -F -c "$WORK/dovecot/dovecot.conf"
    start_capture "$name" "$port"
    printf '%b' "$commands" | client "$name" openssl s_client -starttls "$proto" \
        -connect "mail.internal:$port" -servername mail.internal -CAfile "$PKI/ca.pem" -verify_return_error -ign_eof
    stop_capture "$name"
    stop_daemon
}

dovecot_plain_sample() {     # dovecot_plain_sample NAME PORT URL: curl logs in, never upgrades
    local name=$1 port=$2 url=$3
    [[ -e $WORK/dovecot/dovecot.conf ]] || dovecot_setup
    log "capturing $name.pcap (Dovecot, curl $url without --ssl: STARTTLS offered, never used)"
    # this instance allows plaintext logins (the misconfiguration the finding is about)
    printf '!include %s\ndisable_plaintext_auth = no\n' "$WORK/dovecot/dovecot.conf" >"$WORK/dovecot/plain.conf"
    start_daemon "$name" "$port" dovecot -F -c "$WORK/dovecot/plain.conf"
    start_capture "$name" "$port"
    client "$name" curl -sS --max-time 20 -u app:unused "$url"
    stop_capture "$name"
    stop_daemon
}

# ---------------------------------------------------------------- slapd
ldap_sample() {
    local name=ldap-starttls d=$WORK/slapd
    mkdir -p "$d/db"
    cat >"$d/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
pidfile $d/slapd.pid
argsfile $d/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile $PKI/ca.pem
TLSCertificateFile $PKI/server.pem
TLSCertificateKeyFile $PKI/server.key
database mdb
suffix "dc=internal"
rootdn "cn=admin,dc=internal"
directory $d/db
EOF
    log "capturing $name.pcap (slapd $(slapd -VV 2>&1 | awk '/slapd/ {print $4; exit}'), ldapsearch -ZZ)"
    start_daemon "$name" 389 slapd -d 0 -h "ldap://$SRV/" -f "$d/slapd.conf"
    start_capture "$name" 389
    client "$name" env LDAPTLS_CACERT="$PKI/ca.pem" LDAPTLS_REQCERT=demand \
        ldapsearch -ZZ -x -H ldap://ldap.internal -b '' -s base namingContexts
    stop_capture "$name"
    stop_daemon
}

# ---------------------------------------------------------------- MariaDB
mysql_sample() {
    local name=mysql-tls d=$WORK/mariadb
    install -d -o mysql -g mysql "$d"
    mariadb-install-db --no-defaults --datadir="$d/data" --user=mysql --skip-test-db \
        --auth-root-authentication-method=socket >"$LOGS/mariadb-install.log" 2>&1
    log "capturing $name.pcap (MariaDB $(mariadbd --version | awk '{print $3}'), mariadb --ssl)"
    start_daemon "$name" 3306 mariadbd --no-defaults --datadir="$d/data" --socket="$d/mysqld.sock" \
        --pid-file="$d/mysqld.pid" --user=mysql --bind-address="$SRV" --port=3306 --skip-name-resolve \
        --ssl-ca="$PKI/ca.pem" --ssl-cert="$PKI/my.pem" --ssl-key="$PKI/my.key" --log-error="$LOGS/mariadbd.err"
    in_srv mariadb --no-defaults -S "$d/mysqld.sock" -u root \
        -e "CREATE USER 'app'@'10.77.0.2' IDENTIFIED BY 'app-password' REQUIRE SSL;"
    start_capture "$name" 3306
    client "$name" mariadb --no-defaults -h db.internal -P 3306 -u app -papp-password \
        --ssl --ssl-ca="$PKI/ca.pem" --ssl-verify-server-cert -e "SHOW STATUS LIKE 'Ssl_version'"
    stop_capture "$name"
    stop_daemon
}

# ---------------------------------------------------------------- HTTP CONNECT
connect_sample() {
    local name=http-connect d=$WORK/tinyproxy
    mkdir -p "$d"
    cat >"$d/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port 8888
Listen $SRV
Timeout 30
LogFile "$LOGS/tinyproxy.log"
LogLevel Info
MaxClients 10
Allow 10.77.0.0/24
ConnectPort 443
EOF
    log "capturing $name.pcap ($(tinyproxy -v 2>&1 | head -1), curl -x through it to openssl s_server)"
    # the TLS server the proxy connects to: the proxy-to-server leg stays on
    # the server namespace's own address and never crosses the veth
    ip netns exec "$NS_S" openssl s_server -accept "$SRV:443" -naccept 1 -www -cert "$PKI/server.pem" -key "$PKI/server.key" \
        </dev/null >"$LOGS/$name.s_server" 2>&1 &
    local tls_pid=$!
    BG_PIDS+=("$tls_pid")
    wait_until 10 listening 443 || die "$name: s_server not listening"
    start_daemon "$name" 8888 tinyproxy -d -c "$d/tinyproxy.conf"
    start_capture "$name" 8888
    client "$name" curl -sS --max-time 20 -x http://proxy.internal:8888 --cacert "$PKI/ca.pem" \
        -o /dev/null -w '%{http_code} %{ssl_verify_result}\n' https://api.internal/
    stop_capture "$name"
    stop_daemon
    stop_pid "$tls_pid"
}

# ---------------------------------------------------------------- main
setup_ns
make_pki
if want postgres-ssl; then postgres_sample postgres-ssl on require; check postgres-ssl tls "PostgreSQL ssl=on, psql sslmode=require: SSLRequest, 'S', TLS"; fi
if want postgres-ssl-refused; then postgres_sample postgres-ssl-refused off prefer; check postgres-ssl-refused plain "PostgreSQL ssl=off, psql sslmode=prefer: SSLRequest answered 'N', session continues in plaintext"; fi
if want smtp-starttls; then smtp_starttls_sample; check smtp-starttls tls "Postfix, openssl s_client -starttls smtp: EHLO, STARTTLS, TLS, EHLO, QUIT"; fi
if want smtp-plain; then
    smtp_plain_sample smtp-plain 'tlstap sample: nightly report' 'sent in plaintext'
    check smtp-plain plain "Postfix offers STARTTLS, swaks sends a message without it"
fi
# the same, but the message (not a command) names STARTTLS: the session still never upgraded
if want smtp-plain-subject-starttls; then
    smtp_plain_sample smtp-plain-subject-starttls 'Please enable STARTTLS on the relay' 'The nightly job still sends mail in plaintext.'
    check smtp-plain-subject-starttls plain "as smtp-plain, but the Subject header contains the word STARTTLS (no STARTTLS command)"
fi
if want imap-starttls; then dovecot_sample imap-starttls 143 imap 'a1 CAPABILITY\r\na2 LOGOUT\r\n'; check imap-starttls tls "Dovecot IMAP, openssl s_client -starttls imap"; fi
if want pop3-stls; then dovecot_sample pop3-stls 110 pop3 'CAPA\r\nQUIT\r\n'; check pop3-stls tls "Dovecot POP3, openssl s_client -starttls pop3 (STLS)"; fi
if want imap-plain; then dovecot_plain_sample imap-plain 143 imap://mail.internal/INBOX; check imap-plain plain "Dovecot IMAP offers STARTTLS, curl logs in and lists INBOX without it"; fi
if want pop3-plain; then dovecot_plain_sample pop3-plain 110 pop3://mail.internal/; check pop3-plain plain "Dovecot POP3 offers STLS, curl logs in and lists messages without it"; fi
if want ldap-starttls; then ldap_sample; check ldap-starttls tls "slapd, ldapsearch -ZZ (StartTLS extended operation)"; fi
if want mysql-tls; then mysql_sample; check mysql-tls tls "MariaDB, mariadb --ssl (SSL request in the handshake response)"; fi
if want http-connect; then connect_sample; check http-connect tls "curl -x through tinyproxy: CONNECT api.internal:443, then TLS"; fi

mkdir -p "$DEST"
for f in "$OUT"/*.pcap; do cp "$f" "$DEST/"; done
# a partial run (ONLY=...) keeps the CA of the captures it did not remake
if [[ -z ${ONLY:-} ]]; then cp "$PKI/ca.pem" "$DEST/ca.pem"; else log "ONLY set: $DEST/ca.pem not replaced, the new captures use another CA"; fi
log "manifest rows (file, what, version, cipher, sni, packets, bytes):"
cat "$ROWS"
log "done: $(ls "$OUT" | wc -l) captures in $DEST"
