#!/usr/bin/env bash
# Throughput of `tlstap read` on the workloads of ../shared/perf against the
# floor (a bare libpcap read loop, pcaploop.c), best of 3 runs alternated.
#
# Usage: scripts/throughput.sh [WORKLOAD...]   (default: hs-heavy-100m bulk-1g)
# Env:   PERF (../shared/perf)  WORK (target/perf)  RUNS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
perf=${PERF:-../shared/perf}
work=${WORK:-target/perf}
runs=${RUNS:-3}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(hs-heavy-100m bulk-1g)
if [ ! -f "$perf/pcaploop.c" ]; then
  echo "throughput.sh: $perf/pcaploop.c not found (set PERF)" >&2
  exit 1
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
perf=$(cd "$perf" && pwd)
cargo build --release --quiet --bin tlstap
cc -O2 -o "$work/pcaploop" "$perf/pcaploop.c" -lpcap

# The recipe of ../shared/perf/README.md (source order matters: LC_ALL=C).
build() {
  local corpus=$perf/../corpus/zeek-tls
  case $1 in
    bulk-1g|bulk-100m)
      (cd "$corpus" && LC_ALL=C python3 "$perf/mkbig.py" --profile bulk --seed 1 \
        --target-bytes 1G --cut "100M:$work/bulk-100m.pcap" -o "$work/bulk-1g.pcap" *.pcap *.pcap.gz) >&2 ;;
    hs-heavy|hs-heavy-100m)
      (cd "$corpus" && LC_ALL=C python3 "$perf/mkbig.py" --profile hs-heavy --seed 2 \
        --sessions 200000 --cut "100M:$work/hs-heavy-100m.pcap" -o "$work/hs-heavy.pcap" *.pcap *.pcap.gz) >&2 ;;
    *) echo "throughput.sh: unknown workload $1" >&2; exit 1 ;;
  esac
}

# Wall seconds (perf_counter) and peak RSS (KiB) of one run.
timed() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
wall = time.perf_counter() - start
print(f"{wall:.4f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
}

printf '%-14s %8s %8s %8s %7s %7s %9s %9s\n' workload floor_s w1_s w2_s w1/fl w2/fl sessions rss_MiB
for name in "${workloads[@]}"; do
  capture="$work/$name.pcap"
  [ -f "$capture" ] || build "$name"
  cat "$capture" > /dev/null
  floor=1e9; w1=1e9; w2=1e9; rss=0
  for _ in $(seq "$runs"); do
    read -r t _ < <(timed "$work/pcaploop" "$capture")
    floor=$(python3 -c "print(min($floor, $t))")
    read -r t m < <(timed ./target/release/tlstap read -q -w 1 -o /dev/null "$capture")
    w1=$(python3 -c "print(min($w1, $t))"); rss=$(( m > rss ? m : rss ))
    read -r t m < <(timed ./target/release/tlstap read -q -w 2 -o /dev/null "$capture")
    w2=$(python3 -c "print(min($w2, $t))"); rss=$(( m > rss ? m : rss ))
  done
  sessions=$(./target/release/tlstap read -q -w 2 "$capture" | grep -vc '"kind":"metric"' || true)
  python3 -c "
f, a, b = $floor, $w1, $w2
print(f'{\"$name\":<14} {f:8.3f} {a:8.3f} {b:8.3f} {a/f:6.1f}x {b/f:6.1f}x {$sessions:9d} {$rss/1024:9.1f}')"
done
