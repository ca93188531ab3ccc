#!/usr/bin/env bash
# Renders a billing HTML summary (reports/billing-<from>-<to>.html) to a PNG
# with headless Chromium, to see the page as a person will.
#
#   scripts/render-billing-html.sh reports/billing-2026-11-23-2026-11-29.html [out.png] [WIDTHxHEIGHT]
#
# Needs Debian's Chromium package (`apt-get install -y chromium`, which puts it at
# /usr/bin/chromium); set CHROMIUM=/path/to/chromium to use another build.
# The page is self-contained, so the browser runs offline: no network, no
# first-run tasks, a throwaway profile that is removed afterwards.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    echo "usage: $0 FILE.html [OUT.png] [WIDTHxHEIGHT]" >&2
    exit 2
fi
html=$1
png=${2:-${html%.html}.png}
size=${3:-1200x1600}
chromium=${CHROMIUM:-/usr/bin/chromium}

if [ ! -f "$html" ]; then
    echo "error: no such file: $html" >&2
    exit 2
fi
if [ ! -x "$chromium" ]; then
    echo "error: $chromium not found: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM" >&2
    exit 3
fi

abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
case "$png" in
    /*) abs_png=$png ;;
    *) abs_png=$(pwd)/$png ;;
esac
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

rm -f "$abs_png"
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" \
    --screenshot="$abs_png" --window-size="${size/x/,}" \
    "file://$abs_html" >/dev/null 2>&1 || true

if [ ! -s "$abs_png" ]; then
    echo "error: chromium wrote no screenshot to $abs_png" >&2
    exit 1
fi
echo "$abs_png"
