#!/usr/bin/env bash
# Renders the audit report and screenshots it in headless Chromium: docs/report.png,
# the picture docs/inventory-report.md shows.
#
# Usage: scripts/report-screenshot.sh          # inventory from the sample captures
#        scripts/report-screenshot.sh --demo   # the report tests' hand-built estate
#                                              # (no inventory or CLI needed)
# Needs chromium (installed with apt-get when missing, as root). pngquant, when
# present, shrinks the PNG; the docs want it under 300 KB.
set -euo pipefail
cd "$(dirname "$0")/.."
output=docs/report.png
mode=${1:-samples}

if ! command -v chromium > /dev/null; then
  apt-get install -y chromium > /dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case "$mode" in
  --demo)
    # The same snapshot the report's unit tests check cell by cell.
    cargo test --quiet --lib report::tests::write_demo_report -- --ignored > /dev/null
    cp target/report-demo.html "$tmp/report.html"
    ;;
  samples)
    cargo build --release --quiet --bin tlstap
    ./target/release/tlstap read --policy samples/policy.toml --inventory "$tmp/inv.sqlite" \
      samples/*.pcap samples/upgrades/*.pcap samples/tunnels/*.pcap > /dev/null
    ./target/release/tlstap report "$tmp/inv.sqlite" -o "$tmp/report.html"
    ;;
  *)
    echo "usage: $0 [--demo]" >&2
    exit 2
    ;;
esac

mkdir -p "$(dirname "$output")"
# --no-sandbox: the script usually runs as root in a container, where
# Chromium's sandbox cannot start. The report loads nothing from outside.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --screenshot="$output" --window-size=1280,2000 "file://$tmp/report.html" 2> /dev/null
if command -v pngquant > /dev/null; then
  pngquant --force --skip-if-larger --quality=70-90 --strip --output "$output" -- "$output" || true
fi
echo "$output: $(stat -c %s "$output") bytes"
