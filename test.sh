#!/usr/bin/env bash
# Runs every test: unit tests and black-box tests against real identity providers, on SQLite and
# PostgreSQL (127.0.0.1:5432). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-deps.sh
# Tools the tests run: Debian's Chromium for the browser tests (tests/browser_pages.rs; never a
# downloaded one), xmlsec1 to re-sign SAML answers (tests/saml_hostile.rs), sqlite3 to alter
# rows behind Gatehouse's back (tests/audit_chain.rs and others).
tools=()
if [ -z "${GATEHOUSE_TEST_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
    tools+=(chromium)
fi
command -v xmlsec1 >/dev/null 2>&1 || tools+=(xmlsec1)
command -v sqlite3 >/dev/null 2>&1 || tools+=(sqlite3)
if [ ${#tools[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing what the tests run: ${tools[*]}" >&2
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${tools[@]}" >&2
    else
        echo "The tests need these programs. Install them, then run this again:" >&2
        echo "    sudo apt-get install -y ${tools[*]}" >&2
        exit 1
    fi
fi
exec cargo test --workspace "$@"
