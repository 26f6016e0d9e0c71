//! Going to the background the way mount(8) expects: the parent returns only
//! once the mount is ready, or prints why it is not and fails.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;

/// The child's end of the start-up handshake.
pub struct StartupReport(File);

impl StartupReport {
    /// The mount is up: the parent may exit 0. Standard I/O is detached.
    pub fn ready(mut self) {
        let _ = self.0.write_all(b"ok\n");
        detach_stdio();
    }

    /// Start-up failed: the parent prints `line` and exits 1.
    pub fn failed(mut self, line: &str) {
        let _ = self.0.write_all(line.as_bytes());
    }
}

/// Forks into the background. Must run before any thread exists. Only the
/// child returns; the parent waits for its report and exits with it.
pub fn detach() -> std::io::Result<StartupReport> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two fresh descriptors; each is owned
    // by exactly one File from here on.
    let (mut reader, writer) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet (documented precondition), so the
    // child's copy of the process is consistent.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            drop(reader);
            // SAFETY: setsid has no preconditions; it fails harmlessly if we
            // already lead a session.
            unsafe { libc::setsid() };
            Ok(StartupReport(writer))
        }
        _ => {
            drop(writer);
            let mut report = String::new();
            let _ = reader.read_to_string(&mut report);
            match report.trim_end() {
                "ok" => std::process::exit(0),
                "" => eprintln!("mailslotfs: the daemon exited before the mount was ready"),
                line => eprintln!("mailslotfs: {line}"),
            }
            std::process::exit(1)
        }
    }
}

fn detach_stdio() {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    use std::os::fd::AsRawFd;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which we own.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
}
