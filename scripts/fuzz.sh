#!/usr/bin/env bash
# Coverage-guided fuzzing for SECONDS (default 60) of TARGET: `datagram`
# (default: the datagram parser and the bridge's receive decision) or
# `fuse_request` (the FUSE request decoder, src/kernel/request.rs) or
# `name_packet` (the name-service codec, src/wire/nbns.rs, UDP 137).
# Seeds: the golden datagrams and name packets of tests/data. Any crash,
# hang (> 5 s) or allocation over 64 MiB stops the run and leaves the input
# in fuzz/artifacts/TARGET/; turn it into a test in tests/wire_robustness.rs
# (tests/wire_names.rs for name_packet).
# Stable Rust: RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
target=${2:-datagram}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
corpus=fuzz/corpus/$target
mkdir -p "$corpus"
n=0
seeds=
case $target in
datagram) seeds=tests/data/golden-datagrams.txt ;;
name_packet) seeds=tests/data/golden-names.txt ;;
esac
if [ -n "$seeds" ]; then
  grep -E '^[0-9a-f]+$' "$seeds" | while read -r hex; do
    n=$((n + 1))
    printf '%s' "$hex" | xxd -r -p >"$corpus/golden-$n"
  done
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz run "$target" --release "$corpus" -- \
  -max_total_time="$seconds" -timeout=5 -malloc_limit_mb=64 -rss_limit_mb=1024 \
  -max_len=4096 -print_final_stats=1
