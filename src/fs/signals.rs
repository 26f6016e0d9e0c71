//! Noticing that a reader parked in the file system got a signal.
//!
//! fuser answers FUSE_INTERRUPT with ENOSYS, after which the kernel never
//! sends another and a reader waits in the kernel — even for SIGKILL —
//! until we reply. So we look for ourselves: a signal is pending for a
//! thread when `(SigPnd | ShdPnd) & !SigBlk` in `/proc/<tid>/status` is
//! non-zero. Ignored signals are never pending, so they never interrupt.

use super::procfs::Status;

/// Whether thread `tid` has an unblocked signal pending, or is gone. A `tid`
/// of 0 (the reader lives in a pid namespace we cannot see) never counts.
pub(crate) fn pending(tid: u32) -> bool {
    if tid == 0 {
        return false;
    }
    let Ok(status) = Status::of(tid) else {
        return true;
    };
    let mask = |name: &[u8]| -> u64 {
        status
            .field(name)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .unwrap_or(0)
    };
    (mask(b"SigPnd:") | mask(b"ShdPnd:")) & !mask(b"SigBlk:") != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_thread_has_nothing_pending_and_dead_threads_count() {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        assert!(!pending(tid));
        assert!(pending(u32::MAX - 1));
        assert!(!pending(0));
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
                assert!(!pending(tid), "blocked signals must not interrupt");
                let mut got = 0;
                libc::sigwait(&set, &mut got);
                assert_eq!(got, libc::SIGUSR2);
            }
        })
        .join()
        .unwrap();
    }
}
