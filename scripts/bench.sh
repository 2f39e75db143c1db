#!/usr/bin/env bash
# Throughput of `tlstap read` against a bare libpcap read loop on the same file.
# Usage: scripts/bench.sh [CAPTURE] [WORKERS]   (default: generates target/bench.pcap)
set -euo pipefail
cd "$(dirname "$0")/.."
capture=${1:-target/bench.pcap}
workers=${2:-2}
cargo build --release --quiet --bin tlstap --example pcap_loop --example make_bench_capture
if [ ! -f "$capture" ]; then
  ./target/release/examples/make_bench_capture "$capture" 2000 100
fi
# Warm the page cache so both runs read from memory.
cat "$capture" > /dev/null

best() { # best wall time of 5 runs, in seconds (perf_counter, not /usr/bin/time's 10 ms ticks)
  python3 - "$@" <<'PY'
import subprocess, sys, time
best = float("inf")
for _ in range(5):
    start = time.perf_counter()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    best = min(best, time.perf_counter() - start)
print(f"{best:.4f}")
PY
}
packets=$(./target/release/examples/pcap_loop "$capture" | cut -d' ' -f1)
size=$(stat -c %s "$capture")
base=$(best ./target/release/examples/pcap_loop "$capture")
tap=$(best ./target/release/tlstap read -q -w "$workers" -o /dev/null "$capture")
rss=$( { /usr/bin/time -f '%M' ./target/release/tlstap read -q -w "$workers" -o /dev/null "$capture" > /dev/null; } 2>&1 | tail -1 )
python3 - "$packets" "$size" "$base" "$tap" "$workers" "$rss" <<'PY'
import sys
packets, size, base, tap, workers, rss = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], int(sys.argv[6])
base, tap = max(base, 1e-3), max(tap, 1e-3)
print(f"capture: {packets} packets, {size/1e6:.1f} MB")
print(f"libpcap read loop: {base:.3f} s  ({packets/base/1e6:.2f} Mpkt/s, {size*8/base/1e9:.2f} Gbit/s)")
print(f"tlstap read -w {workers}: {tap:.3f} s  ({packets/tap/1e6:.2f} Mpkt/s, {size*8/tap/1e9:.2f} Gbit/s), max RSS {rss/1024:.1f} MiB")
print(f"ratio tlstap/libpcap: {tap/base:.2f}x the time (throughput {base/tap:.0%} of the bare loop)")
PY
