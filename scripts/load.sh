#!/usr/bin/env bash
# Local load at full size (issue 6): 8 writer processes x 100,000 messages
# into one slot with a reader keeping up, then the stopped-reader and
# memory-ceiling phases (scripts/load-local.py), on a fresh mount with
# -o max_memory=8M. Prints the figures and the daemon's peak memory.
# The cargo test suite runs the same script at 8 x 5,000 (tests/load_local.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
writers=${1:-8}
messages=${2:-100000}
cargo build --release --quiet
dir=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do grep -q " $dir " /proc/mounts || break; sleep 0.1; done
  umount -l "$dir" 2>/dev/null || true
  rmdir "$dir"
}
trap cleanup EXIT
target/release/mailslotfs mount "$dir" --foreground -o max_memory=8M &
pid=$!
for _ in $(seq 100); do grep -q " $dir " /proc/mounts && break; sleep 0.1; done
timeout 900 python3 scripts/load-local.py "$dir" "$writers" "$messages"
echo "daemon peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
