#!/usr/bin/env bash
# Installs what Flotilla needs on a fresh Debian machine (Swift itself is expected at /opt/swift or
# on PATH). Safe to run again: it installs only what is missing.
set -euo pipefail

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    export PATH=/opt/swift/usr/bin:$PATH
  else
    echo "error: no Swift toolchain found. Install Swift 6.2 or newer (https://www.swift.org/install/linux/) and retry." >&2
    exit 1
  fi
fi

# System packages the build and the tools use: OpenBLAS (agents' matmul kernel, headers for the
# COpenBLAS module), SQLite (bench's run store) and gnuplot (bench's charts). The consensus core
# and simulator need none.
packages=(make git libopenblas-dev libsqlite3-dev gnuplot-nox)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
