#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, model, codec, bridge and
# mount tests.
# Mount tests need root and /dev/fuse. Every test cleans up after itself; the
# trap below is the last line of defence against a leftover mount.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh test

# The tests make their directories under $TMPDIR: a private one per run, so
# that the checks below see this run's mounts only, never those of another
# suite running on the same machine. Traversable by all, for the test that
# mounts as an unprivileged user.
run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailslotfs-run.XXXXXX")
chmod 0755 "$run_tmp"
export TMPDIR=$run_tmp
leftovers() {
  awk -v root="$run_tmp/" '$3 == "fuse.mailslotfs" && index($2, root) == 1 {print $2}' /proc/mounts
}
# Network namespaces of the bridge tests (msltest-PID-...) whose test
# process is gone.
stale_namespaces() {
  ip netns list 2>/dev/null | while read -r ns _; do
    if [[ $ns =~ ^msltest-([0-9]+)- ]] && ! kill -0 "${BASH_REMATCH[1]}" 2>/dev/null; then
      echo "$ns"
    fi
  done
}
cleanup() {
  for m in $(leftovers); do
    echo "test.sh: removing leftover mount $m" >&2
    umount -l "$m" 2>/dev/null || true
  done
  for ns in $(stale_namespaces); do
    echo "test.sh: removing leftover network namespace $ns" >&2
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf --one-file-system "$run_tmp"
}
trap cleanup EXIT

cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
# The fuzz targets are their own workspace (scripts/fuzz.sh runs them): at
# least they must build against today's code.
cargo check --quiet --manifest-path fuzz/Cargo.toml

# The kernel offers FUSE-over-io_uring only to mounts made while
# enable_uring is Y: every test runs once with it off (classic /dev/fuse)
# and, when this kernel has the ring, once with it on. What was there is
# put back, also on failure.
uring_switch=/sys/module/fuse/parameters/enable_uring
if [ -w "$uring_switch" ]; then
  uring_was=$(cat "$uring_switch")
  restore_uring() { echo "$uring_was" >"$uring_switch"; }
  trap 'restore_uring; cleanup' EXIT
  echo N >"$uring_switch"
fi
timeout 1800 cargo test --quiet -- --test-threads=4
if [ -w "$uring_switch" ]; then
  echo Y >"$uring_switch"
  echo "test.sh: the same tests on FUSE-over-io_uring"
  MAILSLOTFS_EXPECT_TRANSPORT=io_uring timeout 1800 cargo test --quiet -- --test-threads=4
  restore_uring
  trap cleanup EXIT
fi
if [ -n "$(leftovers)$(stale_namespaces)" ]; then
  echo "test.sh: tests left mounts or network namespaces behind:" >&2
  leftovers >&2
  stale_namespaces >&2
  exit 1
fi
