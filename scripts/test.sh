#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, model, codec and mount tests.
# Mount tests need root and /dev/fuse. Every test cleans up after itself; the
# trap below is the last line of defence against a leftover mount.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

leftovers() {
  awk '$3 == "fuse.mailslotfs" && $2 ~ /mailslotfs-test-/ {print $2}' /proc/mounts
}
cleanup() {
  for m in $(leftovers); do
    echo "test.sh: removing leftover mount $m" >&2
    umount -l "$m" 2>/dev/null || true
  done
}
trap cleanup EXIT

cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
timeout 1800 cargo test --quiet -- --test-threads=4
if [ -n "$(leftovers)" ]; then
  echo "test.sh: tests left mounts behind:" >&2
  leftovers >&2
  exit 1
fi
