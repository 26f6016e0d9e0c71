//! fs.fuse.default_request_timeout: the kernel aborts a whole FUSE connection
//! when one request waits longer. A read parked forever must therefore be
//! answered (EINTR, which read(2) callers retry) before that, and the mount
//! must survive. Its own test binary, because it changes a global sysctl
//! (only for the moment of mounting: the connection keeps its timeout).

mod common;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

const SYSCTL: &str = "/proc/sys/fs/fuse/default_request_timeout";

/// Sets the sysctl for the life of the guard.
struct Sysctl(String);

impl Sysctl {
    fn set(value: &str) -> Option<Sysctl> {
        let old = std::fs::read_to_string(SYSCTL).ok()?;
        std::fs::write(SYSCTL, value).ok()?;
        Some(Sysctl(old))
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, self.0.trim());
    }
}

#[test]
fn parked_reads_outlive_the_kernel_request_timeout() {
    if !common::fuse_ok() {
        return;
    }
    if !Path::new(SYSCTL).exists() {
        eprintln!("SKIP: this kernel has no {SYSCTL}");
        return;
    }
    let m = {
        let Some(_sysctl) = Sysctl::set("2") else {
            eprintln!("SKIP: cannot write {SYSCTL} (not root?)");
            return;
        };
        common::Mount::new(&[])
    };
    let server = common::create_slot(&m.path("slow"));
    let client = common::client(&m.path("slow"));

    // A raw read(2) is answered EINTR at half the kernel's timeout (1 s),
    // long before the kernel would abort the connection (2-4 s).
    let started = Instant::now();
    let mut reader = common::read_async(server.as_raw_fd(), 4096);
    let (result, at) = reader.result(Duration::from_secs(10));
    let waited = at - started;
    assert_eq!(
        result.unwrap_err().raw_os_error(),
        Some(libc::EINTR),
        "after {waited:?}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(1900),
        "answered after {waited:?}"
    );

    // A reader that retries (as cat and Python do) waits past the kernel's
    // timeout and still gets its message over the same connection. The
    // sender's pause is the point of the test, not synchronisation.
    let sender = std::thread::spawn({
        let path = m.path("slow2");
        move || {
            assert!(common::wait_until(Duration::from_secs(10), || path.exists()));
            std::thread::sleep(Duration::from_millis(4500));
            common::send(&common::client(&path), b"late");
        }
    });
    let out = common::py_ok(
        &m,
        r#"
        import os
        fd = os.open(os.path.join(D, "slow2"), os.O_CREAT | os.O_RDONLY)
        print(os.read(fd, 100).decode())
        "#,
    );
    sender.join().expect("sender");
    assert_eq!(out.trim(), "late");
    assert!(common::pid_alive(m.pid()), "the daemon died");
    common::send(&client, b"still here");
    assert_eq!(common::recv(&server, Duration::from_secs(5)), b"still here");
}
