//! The benchmark program of issue 4 runs clean: it mounts mailslotfs and
//! the FUSE floor, prints every row and ratio, and leaves nothing mounted.
//! It asserts no speed; figures are the benchmark's job, not a test's.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn the_benchmark_runs_clean_and_leaves_nothing_mounted() {
    if !root_with_fuse("the benchmark (POSIX mq sizes, mounts)") {
        return;
    }
    let mailslotfs = PathBuf::from(env!("CARGO_BIN_EXE_mailslotfs"));
    // `cargo test` builds the examples next to the binaries.
    let examples = mailslotfs.parent().unwrap().join("examples");
    assert!(
        examples.join("bench").exists() && examples.join("fuse_floor").exists(),
        "the examples are not built: plain `cargo test` builds them, `--test` alone does not"
    );
    let tmp = temp_dir("bench");
    let _scratch = Scratch(vec![tmp.clone()]);
    // As scripts/bench.sh does: queues of 256 messages of up to 16 KiB,
    // which Debian's defaults (10 x 8 KiB) refuse without CAP_SYS_RESOURCE.
    let _msg_max = Sysctl::raise("/proc/sys/fs/mqueue/msg_max", 256);
    let _msgsize_max = Sysctl::raise("/proc/sys/fs/mqueue/msgsize_max", 65536);
    let out = run(
        Command::new(examples.join("bench"))
            .arg("--bin")
            .arg(&mailslotfs)
            .arg("--floor")
            .arg(examples.join("fuse_floor"))
            .args(["--quick", "--runs", "1", "--threads", "2"])
            .env("TMPDIR", &tmp),
        Duration::from_secs(300),
    );
    let text = ok(&out);
    // The io_uring rows exist only when the kernel offered it to the bench's
    // mount (scripts/test.sh's second pass switches it on).
    let uring = !text.contains("mailslotfs io_uring: not measured");
    if std::env::var("MAILSLOTFS_EXPECT_TRANSPORT").is_ok_and(|t| t == "io_uring") {
        assert!(uring, "the io_uring pass measured no io_uring:\n{text}");
    }
    let mut transports = vec![
        "mailslotfs classic",
        "FUSE floor",
        "POSIX mq",
        "AF_UNIX dgram",
    ];
    if uring {
        transports.extend(["mailslotfs io_uring", "mailslotfs batch"]);
    }
    for transport in &transports {
        for size in ["64", "1024", "16384"] {
            assert!(
                text.lines().any(|l| l.starts_with(transport)
                    && l.split_whitespace().any(|w| w == size)
                    && l.ends_with(')')),
                "no {transport} {size} B row in:\n{text}"
            );
        }
    }
    for line in [
        "Both file systems run 2 FUSE event-loop thread(s)",
        "io_uring/floor",
        "write(2) calls/s",
        "Targets (issue 10)",
        "Daemon memory per queued 64 B message",
        "SIGINT to a waiting reader in another pid namespace: read() ends after median",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    let pings = if uring { 5 } else { 4 };
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(" median ") && l.contains(" p99 "))
            .count(),
        pings,
        "{pings} ping-pong rows:\n{text}"
    );
    // The idle rows: one per transport, each with its three figures.
    let idle = text
        .lines()
        .filter(|l| l.contains("wake-ups") && l.contains("memory per waiting reader"))
        .count();
    assert_eq!(idle, if uring { 2 } else { 1 }, "idle rows:\n{text}");
    assert!(
        mounts_under(&tmp).is_empty(),
        "left mounted: {:?}",
        mounts_under(&tmp)
    );
    assert!(
        processes_mentioning(&tmp).is_empty(),
        "daemons left running"
    );
}

/// A sysctl raised for this test, put back on drop.
struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    fn raise(path: &'static str, at_least: u64) -> Sysctl {
        let old = std::fs::read_to_string(path).expect(path);
        if old.trim().parse::<u64>().is_ok_and(|v| v < at_least) {
            std::fs::write(path, at_least.to_string()).expect(path);
        }
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, self.old.trim());
    }
}
