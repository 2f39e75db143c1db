#!/usr/bin/env bash
# Peak memory of `tlstap read` under floods, with the default memcap and with
# --memcap 64M, and how many of the legitimate sessions interleaved with each
# flood were still reported.
#
# Usage: scripts/memcap.sh [KIND...]   KIND: syn hello certs quic (default all)
# Env:   FLOWS_SYN (2000000) FLOWS (300000) EVERY (1000) WORKERS (2)
#        CAPS ("default 64M"; add e.g. 100G to see the uncapped cost)
# Captures are written to target/flood-KIND.pcap and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(syn hello certs quic)
every=${EVERY:-1000}
workers=${WORKERS:-2}
read -r -a caps <<< "${CAPS:-default 64M}"
cargo build --release --quiet --bin tlstap --example make_flood

printf '%-6s %9s %6s %8s %10s %8s %9s %11s %9s %9s\n' \
  flood flows memcap peakMiB peak_bytes legit reported refused dropped emergency
for kind in "${kinds[@]}"; do
  if [ "$kind" = syn ]; then flows=${FLOWS_SYN:-2000000}; else flows=${FLOWS:-300000}; fi
  capture="target/flood-$kind-$flows.pcap"
  if [ ! -f "$capture" ]; then
    ./target/release/examples/make_flood "$kind" "$flows" "$capture" "$every" >&2
  fi
  cat "$capture" > /dev/null
  legit=$(( flows / every ))
  for cap in "${caps[@]}"; do
    args=(read -w "$workers" -q)
    [ "$cap" = default ] || args+=(--memcap "$cap")
    out=$(mktemp)
    rss=$( { /usr/bin/time -f '%M' ./target/release/tlstap "${args[@]}" "$capture" > "$out"; } 2>&1 | tail -1 )
    python3 - "$out" "$kind" "$flows" "$cap" "$rss" "$legit" <<'PY'
import json, sys
path, kind, flows, cap, rss, legit = sys.argv[1:]
reported = 0
stats = {}
for line in open(path):
    record = json.loads(line)
    if "memcap_bytes" in line and record.get("event", {}).get("kind") == "metric":
        stats = record.get("tlstap", {}).get("stats", {})
    client = record.get("tls", {}).get("client", {})
    if client.get("server_name") == "legit.internal" and record.get("tls", {}).get("established"):
        reported += 1
print(f"{kind:<6} {int(flows):>9} {cap:>6} {int(rss)/1024:>8.1f} {stats.get('memcap_peak_bytes', 0):>10} "
      f"{reported:>4}/{legit:<3} {stats.get('memcap_refused_flows', 0):>9} "
      f"{stats.get('handshakes_dropped_by_pressure', 0):>11} {stats.get('emergency_mode_entered', 0):>9}")
PY
    rm -f "$out"
  done
done
