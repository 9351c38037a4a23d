#!/usr/bin/env bash
# Runs every test: unit tests and black-box tests against real identity providers, on SQLite and
# PostgreSQL (127.0.0.1:5432). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-deps.sh
exec cargo test --workspace "$@"
