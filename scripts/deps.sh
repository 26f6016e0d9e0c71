#!/usr/bin/env bash
# Installs the system packages mailslotfs and its tests need, when missing.
# Sourced by run.sh and test.sh; does nothing on a machine that has them.
set -euo pipefail

need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "mailslotfs: missing packages: ${need[*]} (install them as root)" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "mailslotfs: cargo not found: install a Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi
