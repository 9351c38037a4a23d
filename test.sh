#!/usr/bin/env bash
# Runs every test: unit tests and black-box tests against real identity providers, on SQLite and
# PostgreSQL (127.0.0.1:5432). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-deps.sh
# The browser tests (tests/browser_pages.rs) drive Debian's Chromium, never a downloaded one.
if [ -z "${GATEHOUSE_TEST_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's chromium for the browser tests" >&2
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
    else
        echo "The browser tests need Debian's Chromium. Install it, then run this again:" >&2
        echo "    sudo apt-get install -y chromium" >&2
        exit 1
    fi
fi
exec cargo test --workspace "$@"
