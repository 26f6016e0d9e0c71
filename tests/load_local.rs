//! Local load (issue 6): scripts/load-local.py at 8 writer processes x
//! 5,000 messages (scripts/load.sh runs it at 8 x 100,000): with a reader
//! keeping up every message is read once and in per-writer order; with a
//! reader that stops, writers get ENOBUFS at the quota and nothing queued
//! is lost; the mount's memory ceiling refuses before the daemon grows.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn eight_writers_lose_nothing_and_the_daemon_stays_within_its_ceiling() {
    let m = mount!("max_memory=8M");
    let load = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/load-local.py");
    let out = run(
        Command::new("python3")
            .arg(load)
            .arg(&m.dir)
            .args(["8", "5000"]),
        Duration::from_secs(180),
    );
    ok(&out);
    let status = std::fs::read_to_string(format!("/proc/{}/status", m.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    assert!(peak_kib < 64 * 1024, "daemon peak RSS {peak_kib} KiB");
}
