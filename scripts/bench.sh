#!/usr/bin/env bash
# mailslotfs against kernel IPC (POSIX mq, AF_UNIX datagrams), in one run on
# this machine: one-way throughput, ping-pong latency, daemon memory per
# queued message, each the median of several runs with min-max.
# Usage (as root): scripts/bench.sh [--runs N] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh run
cargo build --release --quiet --bin mailslotfs --example bench

# POSIX mq: the benchmark queues hold 256 messages of up to 16 KiB, above
# Debian's defaults (10 x 8 KiB); raise the limits for this run only.
mq=/proc/sys/fs/mqueue
old_msg_max=$(cat $mq/msg_max) old_msgsize_max=$(cat $mq/msgsize_max)
restore() {
  echo "$old_msg_max" > $mq/msg_max
  echo "$old_msgsize_max" > $mq/msgsize_max
  # Should the benchmark die without its own clean-up, leave nothing mounted.
  pkill -f "mailslotfs mount --foreground -o quota_" 2>/dev/null || true
  for m in $(awk '$2 ~ /mailslotfs-bench-/ {print $2}' /proc/mounts); do
    umount -l "$m" 2>/dev/null || true
    rmdir "$m" 2>/dev/null || true
  done
}
trap restore EXIT
echo 256 > $mq/msg_max
echo 65536 > $mq/msgsize_max

echo "machine: $(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%d)"
target/release/examples/bench --bin target/release/mailslotfs "$@"
