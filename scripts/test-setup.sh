#!/usr/bin/env bash
# What `make test` needs beyond .venv: Chromium and axe-core for the browser tests. Redis needs
# nothing here: with TEST_REDIS_URL unset the test session starts the product's embedded server (Valkey, from
# the venv) on a free loopback port and stops it at the end.
#
# Chromium: Debian's package at /usr/bin/chromium (what bot/testing/browser.py launches). When it
# is missing and we are root on Debian/Ubuntu, it is installed with apt-get; otherwise we stop
# with a message saying how to install it (`make test-fast` needs no browser).
set -euo pipefail
cd "$(dirname "$0")/.."

# axe-core for the browser tests' accessibility checks (bot/testing/accessibility.py): pinned by
# bot/testing/axe/package-lock.json, installed from npm once into bot/testing/axe/node_modules.
AXE=bot/testing/axe
if [ ! -f "$AXE/node_modules/axe-core/axe.min.js" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "test-setup: npm is needed to install axe-core (Debian: apt-get install npm)" >&2
        exit 1
    fi
    echo "test-setup: installing axe-core from $AXE/package-lock.json"
    npm ci --prefix "$AXE" --no-audit --no-fund --loglevel=error
fi

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-setup: installing Debian's chromium and chromium-driver for the browser tests"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
        && [ -x "$CHROMIUM" ]; then
        exit 0
    fi
    echo "test-setup: apt-get could not install chromium (see above)" >&2
    exit 1
fi

cat >&2 <<MESSAGE
test-setup: the browser tests need Chromium at $CHROMIUM, and it is not installed.
  On Debian or Ubuntu, as root:  apt-get install chromium chromium-driver
  (\`make test\` run as root installs it itself.)
  To run everything except the browser and end-to-end tests: make test-fast
MESSAGE
exit 1
