#!/usr/bin/env bash
# Live-rate test: tcpreplay replays a capture into a veth pair at increasing
# rates while `tlstap live -w 2` captures on the other end; prints, per rate,
# what tlstap saw and dropped, and the highest rate with zero kernel and user
# drops. Needs root, iproute2 and tcpreplay (Debian packages). Traffic stays
# inside two private network namespaces.
# Usage: sudo scripts/live-rate.sh [CAPTURE] [RATES...]   (rates in packets/s)
set -euo pipefail
cd "$(dirname "$0")/.."
capture=${1:-target/live-rate.pcap}
shift || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(20000 50000 100000 150000 200000 300000 topspeed)

cargo build --release --quiet --bin tlstap --example make_bench_capture
if [ ! -f "$capture" ]; then
  ./target/release/examples/make_bench_capture "$capture" 400 100
fi

tx=tlstap-rate-tx; rx=tlstap-rate-rx
work=$(mktemp -d)
cleanup() { ip netns del "$tx" 2>/dev/null || true; ip netns del "$rx" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cleanup; work=$(mktemp -d)
ip netns add "$tx"; ip netns add "$rx"
ip link add rtx netns "$tx" type veth peer name rrx netns "$rx"
ip -n "$tx" link set rtx up; ip -n "$rx" link set rrx up
ip -n "$tx" link set lo up; ip -n "$rx" link set lo up

printf '%-10s %12s %12s %12s %10s %10s\n' rate sent_pps mbit_s seen kernel_drop user_drop
best=none
for rate in "${rates[@]}"; do
  out="$work/$rate.ndjson"
  ip netns exec "$rx" ./target/release/tlstap live -i rrx -w 2 --stats-interval 3600 \
      --buffer-mb 64 -o "file:$out" 2>/dev/null &
  pid=$!
  sleep 1
  if [ "$rate" = topspeed ]; then speed=(--topspeed); else speed=(--pps="$rate"); fi
  report=$(ip netns exec "$tx" tcpreplay -i rtx "${speed[@]}" "$capture" 2>&1)
  sleep 2
  kill -TERM "$pid"; wait "$pid" || true
  sent_pps=$(echo "$report" | sed -n 's/.*Rated: [0-9.]* Bps, \([0-9.]*\) Mbps, \([0-9.]*\) pps.*/\2/p' | head -1)
  mbps=$(echo "$report" | sed -n 's/.*Rated: [0-9.]* Bps, \([0-9.]*\) Mbps.*/\1/p' | head -1)
  read -r seen kdrop udrop < <(tail -1 "$out" | python3 -c '
import json, sys
s = json.loads(sys.stdin.read())["tlstap"]["stats"]
print(s["packets"], (s["kernel_drops"] or 0) + (s["interface_drops"] or 0), s["user_drops"])')
  printf '%-10s %12s %12s %12s %10s %10s\n' "$rate" "${sent_pps:-?}" "${mbps:-?}" "$seen" "$kdrop" "$udrop"
  if [ "$kdrop" = 0 ] && [ "$udrop" = 0 ]; then best="$rate (${sent_pps:-?} pps, ${mbps:-?} Mbit/s)"; fi
done
echo "highest rate with zero kernel and user drops: $best"
