//! `/proc/<tid>/status`: what FUSE does not tell us about a caller, its
//! process (FUSE gives the thread), for `status` and the log.

use std::fs::File;
use std::io::{self, Read};

/// One snapshot of a thread's status file.
struct Status {
    buf: [u8; 4096],
    len: usize,
}

impl Status {
    /// Reads thread `tid`'s status; fails when the thread is gone.
    fn of(tid: u32) -> io::Result<Status> {
        let mut file = File::open(format!("/proc/{tid}/status"))?;
        let mut status = Status {
            buf: [0; 4096],
            len: 0,
        };
        while status.len < status.buf.len() {
            match file.read(&mut status.buf[status.len..])? {
                0 => break,
                n => status.len += n,
            }
        }
        Ok(status)
    }

    /// The text after `name` (e.g. `b"Tgid:"`) on its line, trimmed.
    fn field(&self, name: &[u8]) -> Option<&str> {
        self.buf[..self.len]
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| std::str::from_utf8(rest).ok())
            .map(str::trim)
    }
}

/// The process (thread group) that thread `tid` belongs to; 0 when it
/// cannot be seen (gone, or in a pid namespace the daemon does not see).
pub(crate) fn process_of(tid: u32) -> u32 {
    if tid == 0 {
        return 0;
    }
    Status::of(tid)
        .ok()
        .and_then(|s| s.field(b"Tgid:").and_then(|t| t.parse().ok()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_belongs_to_this_process() {
        let tid = std::thread::spawn(|| {
            // SAFETY: gettid has no preconditions.
            unsafe { libc::gettid() as u32 }
        });
        // The thread may be gone by now: then its process is unknown (0).
        let seen = process_of(tid.join().unwrap());
        assert!(seen == 0 || seen == std::process::id(), "{seen}");
        // SAFETY: gettid has no preconditions.
        let own = unsafe { libc::gettid() } as u32;
        assert_eq!(process_of(own), std::process::id());
        assert_eq!(process_of(0), 0);
    }
}
