#!/usr/bin/env bash
# Installs what the browser tests (tests/browser/*.mjs) need beyond `make setup`: Debian's Chromium
# at /usr/bin/chromium. Playwright's own browser download (`npx playwright install`) cannot work
# on these machines, so the tests drive the distribution's Chromium through playwright-core, which
# `npm ci` installs from package-lock.json. Idempotent: does nothing when both are present.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=/usr/bin/chromium

step() { printf '[browser-deps] %s\n' "$*"; }
die() { printf '[browser-deps] ERROR: %s\n' "$*" >&2; exit 1; }

if [ -x "$CHROMIUM" ]; then
  step "chromium: present ($("$CHROMIUM" --version 2>/dev/null || echo "version unknown"))"
else
  step "chromium is missing: installing Debian's chromium package (apt-get update && apt-get install -y chromium)"
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null; then
    SUDO="sudo"
  else
    die "installing chromium needs root; run \`apt-get install -y chromium\` as root and re-run."
  fi
  $SUDO apt-get update \
    || die "apt-get update failed (output above); check that Debian's package mirror is reachable and re-run."
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium \
    || die "installing chromium failed (output above); check that Debian's package mirror is reachable and re-run."
  [ -x "$CHROMIUM" ] || die "the chromium package did not provide $CHROMIUM."
  step "chromium: installed ($("$CHROMIUM" --version 2>/dev/null || echo "version unknown"))"
fi

if [ -f node_modules/playwright-core/package.json ]; then
  step "playwright-core: present ($(node -p 'require("./node_modules/playwright-core/package.json").version'))"
else
  die "node_modules/playwright-core is missing; run \`make setup\` (npm ci from package-lock.json) and re-run."
fi
