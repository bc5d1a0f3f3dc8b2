#!/usr/bin/env bash
# tests/report/browser_test.sh REPORT.html OUT_DIR
#
# Renders a sae_report page in headless Chromium (Debian's `chromium`) and
# checks that
#   1. a screenshot is produced and is a non-trivial PNG (OUT_DIR/report.png);
#   2. the page's script ran to the end (data-report-ready="yes" on <html> in
#      the DOM after load) and raised nothing (no data-report-error);
#   3. opened as report.html#selftest, the page's own search test, driven by
#      key events, passes (data-report-selftest="passed");
#   4. the browser logged no console error: no uncaught exception, and no
#      Content-Security-Policy refusal (the page may load nothing at all).
# The browser runs with a fresh profile and no background networking.
#
# Exit status: 0 pass, 1 fail, 77 skip (no chromium installed; ctest's
# SKIP_RETURN_CODE). CHROMIUM=/path/to/browser overrides the search.
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 REPORT.html OUT_DIR" >&2
  exit 2
fi
page="$1"
out="$2"

browser=""
for candidate in "${CHROMIUM:-}" chromium chromium-browser google-chrome; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
    browser="$(command -v "$candidate")"
    break
  fi
done
if [ -z "$browser" ]; then
  echo "SKIP: no chromium found (Debian: apt-get install chromium; scripts/test installs it)"
  exit 77
fi
[ -f "$page" ] || { echo "FAIL: no page at $page" >&2; exit 1; }

mkdir -p "$out"
profile="$(mktemp -d "${TMPDIR:-/tmp}/sae-report-chromium.XXXXXX")"
trap 'rm -rf "$profile"' EXIT
url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --disable-default-apps --no-first-run --no-default-browser-check
       --user-data-dir="$profile" --window-size=1200,900 --enable-logging=stderr --v=0)

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# 1. The screenshot.
rm -f "$out/report.png"
timeout 180 "$browser" "${flags[@]}" --screenshot="$out/report.png" "$url" >"$out/screenshot.out" 2>"$out/screenshot.log" ||
  fail "chromium --screenshot exited with $? (see $out/screenshot.log)"
if [ ! -s "$out/report.png" ]; then
  fail "no screenshot at $out/report.png"
else
  size=$(wc -c <"$out/report.png")
  magic=$(head -c 8 "$out/report.png" | od -An -tx1 | tr -d ' \n')
  [ "$magic" = "89504e470d0a1a0a" ] || fail "$out/report.png is not a PNG (starts $magic)"
  [ "$size" -gt 20000 ] || fail "$out/report.png is only $size bytes: a blank page?"
  echo "screenshot: $out/report.png ($size bytes)"
fi

# 2 and 3. The DOM after load, plainly and with the self-test.
for variant in plain selftest; do
  target="$url"
  [ "$variant" = selftest ] && target="$url#selftest"
  timeout 180 "$browser" "${flags[@]}" --dump-dom "$target" >"$out/dom-$variant.html" 2>"$out/dom-$variant.log" ||
    fail "chromium --dump-dom ($variant) exited with $? (see $out/dom-$variant.log)"
  grep -q 'data-report-ready="yes"' "$out/dom-$variant.html" ||
    fail "$variant: the page's script did not finish (no data-report-ready in $out/dom-$variant.html)"
  if grep -o 'data-report-error="[^"]*"' "$out/dom-$variant.html"; then fail "$variant: the page raised an error"; fi
done
selftest=$(grep -o 'data-report-selftest="[^"]*"' "$out/dom-selftest.html" || true)
[ "$selftest" = 'data-report-selftest="passed"' ] || fail "the page's self-test: ${selftest:-did not run}"

# 4. Console errors, from the logs of every run.
if grep -hE 'CONSOLE|Uncaught|Refused to|Content Security Policy' "$out"/*.log | grep -viE 'DevTools listening'; then
  fail "console messages above (errors, or something the page tried to load)"
fi

if [ "$failures" -ne 0 ]; then
  echo "browser test: $failures failure(s); logs in $out" >&2
  exit 1
fi
echo "browser test passed: $("$browser" --version 2>/dev/null | tail -1)"
