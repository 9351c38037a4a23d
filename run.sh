#!/usr/bin/env bash
# Builds Gatehouse and its protocol plugins and runs the service: ./run.sh [serve options]
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-deps.sh
exec cargo run --bin gatehouse -- serve "$@"
