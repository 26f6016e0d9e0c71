#!/usr/bin/env bash
# Builds mailslotfs and mounts it at /mailslot (or at $1). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh run
cargo build --release --quiet
dir=${1:-/mailslot}
mkdir -p "$dir"
"${CARGO_TARGET_DIR:-target}/release/mailslotfs" mount "$dir"
echo "mailslotfs is mounted at $dir (stop it with: umount $dir)"
