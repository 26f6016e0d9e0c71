#!/usr/bin/env bash
# mailslotfs against kernel IPC (POSIX mq, AF_UNIX datagrams), in one run on
# this machine: one-way throughput, write calls, ping-pong latency, idle cost
# with 1000 waiting servers, daemon memory per queued message and per waiting
# reader, how soon a signal ends a waiting read (also in another pid
# namespace), each the median of several runs with min-max, for mailslotfs on
# both transports (FUSE-over-io_uring and classic /dev/fuse) beside the FUSE
# floor (examples/fuse_floor.rs: the least a queue over FUSE can do).
# Usage (as root): scripts/bench.sh [--runs N] [--quick] [--threads N] [--halt-poll NS]
#   --threads N     FUSE event-loop threads for both file systems (default 4)
#   --halt-poll NS  for this run only, let an idle vCPU poll NS nanoseconds
#                   before it halts (/sys/module/haltpoll/parameters/
#                   guest_halt_poll_ns; the kernel's default is 200000). On a
#                   VM booted with it at 0, every wakeup of an idle vCPU costs
#                   tens of microseconds, which FUSE pays twice per request.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh run
cargo build --release --quiet --bin mailslotfs --example bench --example fuse_floor

args=() halt_poll=
while [ $# -gt 0 ]; do
  case "$1" in
    --halt-poll) halt_poll=${2:?--halt-poll needs nanoseconds}; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
poll_knob=/sys/module/haltpoll/parameters/guest_halt_poll_ns
old_poll=$(cat $poll_knob 2>/dev/null || true)
if [ -n "$halt_poll" ] && [ -z "$old_poll" ]; then
  echo "bench: --halt-poll: $poll_knob is missing (no cpuidle-haltpoll here)" >&2
  exit 1
fi

# mailslotfs on FUSE-over-io_uring needs the kernel to offer it at mount
# time; switch it on for this run only (the daemon never does).
uring_knob=/sys/module/fuse/parameters/enable_uring
old_uring=$(cat $uring_knob 2>/dev/null || true)

# POSIX mq: the benchmark queues hold 256 messages of up to 16 KiB, above
# Debian's defaults (10 x 8 KiB); raise the limits for this run only.
mq=/proc/sys/fs/mqueue
old_msg_max=$(cat $mq/msg_max) old_msgsize_max=$(cat $mq/msgsize_max)
restore() {
  echo "$old_msg_max" > $mq/msg_max
  echo "$old_msgsize_max" > $mq/msgsize_max
  if [ -n "$old_poll" ]; then echo "$old_poll" > $poll_knob; fi
  if [ -n "$old_uring" ]; then echo "$old_uring" > $uring_knob; fi
  # Should the benchmark die without its own clean-up, leave nothing mounted.
  pkill -f "mailslotfs mount --foreground -o quota_" 2>/dev/null || true
  pkill -f "examples/fuse_floor /" 2>/dev/null || true
  for m in $(awk '$2 ~ /mailslotfs-bench-/ {print $2}' /proc/mounts); do
    umount -l "$m" 2>/dev/null || true
    rmdir "$m" 2>/dev/null || true
  done
}
trap restore EXIT
echo 256 > $mq/msg_max
echo 65536 > $mq/msgsize_max
if [ -n "$old_uring" ]; then echo Y > $uring_knob; fi

if [ -n "$halt_poll" ]; then echo "$halt_poll" > $poll_knob; fi

echo "machine: $(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%d)," \
  "idle vCPU polls ${halt_poll:-${old_poll:-?}} ns before it halts"
target/release/examples/bench --bin target/release/mailslotfs \
  --floor target/release/examples/fuse_floor ${args[@]+"${args[@]}"}
