#!/usr/bin/env bash
# Makes sure the system libraries Gatehouse builds against are present (Debian/Ubuntu names).
# As root with apt-get, installs what is missing; otherwise prints the exact line to run.
set -euo pipefail

packages=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev)

missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if command -v pkg-config >/dev/null 2>&1; then
    pkg-config --exists openssl || missing+=(libssl-dev)
    pkg-config --exists libxml-2.0 || missing+=(libxml2-dev)
    pkg-config --exists xmlsec1 || missing+=(libxmlsec1-dev)
fi
# bindgen (used by the SAML plugin's xmlsec bindings) loads libclang at build time.
if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    missing+=(libclang-dev)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system libraries: ${packages[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >&2
    exit 0
fi
echo "Gatehouse needs these system libraries to build. Install them, then run this again:" >&2
echo "    sudo apt-get install -y ${packages[*]}" >&2
exit 1
