//! The last look before a message is handed to a parked reader: is its
//! thread about to die?
//!
//! An INTERRUPT ends a signalled reader's wait, but a writer may reach the
//! parked read first. Handing a message to a reader whose fatal signal is
//! already pending would lose it, so right before a delivery we read the
//! thread's own pending set from `/proc/<tid>/stat`, through a descriptor
//! kept open per thread (about 4 µs). For every fatal signal the kernel
//! adds SIGKILL to each thread's own set. A handled signal makes the read
//! return the message first and run the handler after, which loses
//! nothing. A reader in a pid namespace we cannot see (tid 0) is not
//! checked; its INTERRUPT still ends its wait.
//!
//! The same file answers a second question on FUSE-over-io_uring: was a
//! parked read's caller signalled before the kernel put its request in a
//! ring entry? `/dev/fuse` sends the INTERRUPT of such a request once it is
//! read (fs/fuse/dev.c checks FR_INTERRUPTED after FR_SENT); the ring path
//! (dev_uring.c, as of 6.18) does not, so no INTERRUPT ever comes and the
//! caller, its signal noticed, sleeps in the kernel's killable wait (state
//! D) until we answer. A caller asleep in the ordinary wait (S) will get
//! its INTERRUPT through `/dev/fuse` if a signal comes later.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use parking_lot::Mutex;

/// Tells, right before a message is handed to a parked reader, whether its
/// thread is about to die or has an unblocked signal of its own pending, so
/// that the message could be lost. Cheap enough for every delivery: it keeps
/// a `/proc/<tid>/stat` descriptor open per thread that read lately (see the
/// module comment).
#[derive(Default)]
pub(crate) struct DeliveryCheck {
    stat_files: Mutex<HashMap<u32, Arc<File>>>,
}

/// How many threads' descriptors are kept before all are dropped at once.
const STAT_FILES_KEPT: usize = 64;

impl DeliveryCheck {
    /// Whether a message handed to thread `tid` now could be lost. A `tid`
    /// of 0 (a pid namespace we cannot see) never counts.
    pub(crate) fn about_to_be_interrupted(&self, tid: u32) -> bool {
        tid != 0
            && self
                .with_stat(tid, own_signals_pending)
                .flatten()
                .unwrap_or(true)
    }

    /// How thread `tid`, whose request we hold, waits for our answer:
    /// asleep as any caller (S), or in the kernel's killable wait (D) that
    /// only a signal puts it in, or neither yet (running or gone).
    pub(crate) fn caller_wait(&self, tid: u32) -> CallerWait {
        match self.with_stat(tid, thread_state).flatten() {
            Some(b'S') => CallerWait::Asleep,
            Some(b'D') => CallerWait::Interrupted,
            _ => CallerWait::Unsettled,
        }
    }

    /// `parse` of thread `tid`'s stat line; `None` when the thread is gone.
    fn with_stat<T>(&self, tid: u32, parse: impl Fn(&[u8]) -> T) -> Option<T> {
        if tid == 0 {
            return None;
        }
        let mut buf = [0u8; 1024];
        for attempt in 0..2 {
            let file = self.stat_file(tid, attempt > 0)?;
            if let Ok(n) = file.read_at(&mut buf, 0) {
                return Some(parse(&buf[..n]));
            }
            // Its thread is gone; a new thread may have its number now.
        }
        None
    }

    /// The descriptor for `tid`, opened anew when `fresh` or not yet open;
    /// `None` when the thread is gone.
    fn stat_file(&self, tid: u32, fresh: bool) -> Option<Arc<File>> {
        let mut files = self.stat_files.lock();
        if !fresh && let Some(file) = files.get(&tid) {
            return Some(file.clone());
        }
        if files.len() >= STAT_FILES_KEPT {
            files.clear();
        }
        let file = Arc::new(File::open(format!("/proc/{tid}/stat")).ok()?);
        files.insert(tid, file.clone());
        Some(file)
    }
}

/// See [`DeliveryCheck::caller_wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallerWait {
    Asleep,
    Interrupted,
    Unsettled,
}

/// The state letter of one `/proc/<tid>/stat` line, after the command name.
fn thread_state(stat: &[u8]) -> Option<u8> {
    let after_name = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    after_name
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
}

/// `signal & !blocked` from one `/proc/<tid>/stat` line: fields 31 and 32,
/// counted after the command name, which may itself hold spaces or `)`.
fn own_signals_pending(stat: &[u8]) -> Option<bool> {
    let after_name = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let mut fields = std::str::from_utf8(after_name)
        .ok()?
        .split_ascii_whitespace();
    let signal: u64 = fields.nth(31 - 3)?.parse().ok()?;
    let blocked: u64 = fields.next()?.parse().ok()?;
    Some(signal & !blocked != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_thread_has_nothing_pending_and_dead_threads_count_as_dying() {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let check = DeliveryCheck::default();
        assert!(!check.about_to_be_interrupted(tid));
        assert!(check.about_to_be_interrupted(u32::MAX - 1));
        assert!(!check.about_to_be_interrupted(0));
    }

    #[test]
    fn a_signal_sent_to_a_stopped_thread_is_seen_before_delivery() {
        // A stopped process keeps what it is sent pending, as a reader
        // waiting in the kernel does.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let state = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // SAFETY: plain signals to our own child.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !state().contains(") T ") && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let check = DeliveryCheck::default();
        assert!(!check.about_to_be_interrupted(pid), "{}", state());
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGTERM) };
        // The descriptor opened above is reused: a kept one must see news.
        assert!(check.about_to_be_interrupted(pid), "{}", state());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = |comm: &str, signal: u64, blocked: u64| {
            let mut fields: Vec<String> = (3..=52).map(|_| "0".to_owned()).collect();
            fields[31 - 3] = signal.to_string();
            fields[32 - 3] = blocked.to_string();
            format!("42 ({comm}) {}\n", fields.join(" "))
        };
        assert_eq!(
            own_signals_pending(line("cat", 0, 0).as_bytes()),
            Some(false)
        );
        assert_eq!(
            own_signals_pending(line("a) b (c", 256, 0).as_bytes()),
            Some(true)
        );
        assert_eq!(
            own_signals_pending(line("x", 1024, 1024).as_bytes()),
            Some(false)
        );
        assert_eq!(own_signals_pending(b"42 (cut"), None);
        assert_eq!(thread_state(line("a) D (c", 0, 0).as_bytes()), Some(b'0'));
        assert_eq!(thread_state(b"42 (x) D 1 2"), Some(b'D'));
        assert_eq!(thread_state(b"42 (x"), None);
    }

    #[test]
    fn a_blocked_then_raised_signal_is_not_pending_but_unblocked_is() {
        std::thread::spawn(|| {
            // SAFETY: plain signal-mask and signal calls on this thread only;
            // SIGUSR2 stays blocked in this thread until it exits.
            unsafe {
                let tid = libc::gettid() as u32;
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR2);
                assert!(!DeliveryCheck::default().about_to_be_interrupted(tid));
                let mut got = 0;
                libc::sigwait(&set, &mut got);
                assert_eq!(got, libc::SIGUSR2);
            }
        })
        .join()
        .unwrap();
    }
}
