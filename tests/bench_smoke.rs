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
    for transport in [
        "mailslotfs",
        "FUSE floor",
        "POSIX mq",
        "AF_UNIX dgram",
        "mailslotfs batch",
    ] {
        for size in ["64", "1024", "16384"] {
            assert!(
                text.lines().any(|l| l.starts_with(transport)
                    && l.split_whitespace().any(|w| w == size)
                    && l.ends_with(')')),
                "no {transport} {size} B row in:\n{text}"
            );
        }
    }
    assert!(
        text.contains("Both file systems run 2 FUSE event-loop thread(s)."),
        "{text}"
    );
    assert!(text.contains("mailslotfs/floor"), "{text}");
    assert!(
        text.contains("Daemon memory per queued 64 B message"),
        "{text}"
    );
    assert_eq!(
        text.matches(" median ").count(),
        4,
        "four ping-pong rows:\n{text}"
    );
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
