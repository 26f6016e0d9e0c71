//! A small `log` backend: one line per record on stderr while the daemon
//! has a terminal, and syslog (the journal, where systemd runs) once it is
//! detached. fuser's own records are kept to errors unless `--debug` asks
//! for its request trace.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Set once the daemon has detached from its terminal.
static TO_SYSLOG: AtomicBool = AtomicBool::new(false);

struct Logger {
    level: LevelFilter,
    fuser_level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let limit = if metadata.target().starts_with("fuser") {
            self.fuser_level
        } else {
            self.level
        };
        metadata.level() <= limit
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) || is_reply_to_a_forgotten_request(record) {
            return;
        }
        let level = record.level().as_str().to_ascii_lowercase();
        if TO_SYSLOG.load(Ordering::Relaxed) {
            let line = format!("{level}: {}", record.args()).replace('\0', " ");
            let line = CString::new(line).unwrap_or_default();
            // SAFETY: a constant "%s" format with one NUL-terminated string
            // argument that outlives the call.
            unsafe { libc::syslog(priority(record.level()), c"%s".as_ptr(), line.as_ptr()) };
        } else {
            eprintln!(
                "mailslotfs[{}]: {level}: {}",
                std::process::id(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// fuser's error for a reply the kernel no longer wants (ENOENT): the
/// request was answered for a caller that has since been killed, or while
/// the mount was going away. Nothing is wrong, so it is not worth a line.
fn is_reply_to_a_forgotten_request(record: &Record<'_>) -> bool {
    record.target().starts_with("fuser")
        && record.level() == Level::Error
        && record
            .args()
            .to_string()
            .starts_with("Failed to send FUSE reply: No such file or directory")
}

fn priority(level: Level) -> libc::c_int {
    match level {
        Level::Error => libc::LOG_ERR,
        Level::Warn => libc::LOG_WARNING,
        Level::Info => libc::LOG_INFO,
        Level::Debug | Level::Trace => libc::LOG_DEBUG,
    }
}

/// Installs the logger: warnings only by default, info with `-v`, debug
/// (every refused request, with its pid) with `-vv`, and fuser's
/// per-request trace as well with `--debug`.
pub fn init(verbose: u8, debug: bool) {
    let level = match (verbose, debug) {
        (_, true) | (2.., _) => LevelFilter::Debug,
        (1, _) => LevelFilter::Info,
        (0, _) => LevelFilter::Warn,
    };
    let fuser_level = if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Error
    };
    let logger = Box::new(Logger { level, fuser_level });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level.max(fuser_level));
    }
}

/// From now on, log to syslog as `mailslotfs[PID]` (facility daemon):
/// the daemon has no terminal any more.
pub fn use_syslog() {
    // SAFETY: the identity is a static C string, as openlog requires.
    unsafe { libc::openlog(c"mailslotfs".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
    TO_SYSLOG.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forgotten(target: &str, level: Level, text: &str) -> bool {
        is_reply_to_a_forgotten_request(
            &Record::builder()
                .target(target)
                .level(level)
                .args(format_args!("{text}"))
                .build(),
        )
    }

    #[test]
    fn only_fusers_enoent_on_reply_is_silenced() {
        let enoent = "Failed to send FUSE reply: No such file or directory (os error 2)";
        assert!(forgotten("fuser::reply", Level::Error, enoent));
        assert!(!forgotten("mailslotfs", Level::Error, enoent));
        let other = "Failed to send FUSE reply: Bad file descriptor (os error 9)";
        assert!(!forgotten("fuser::reply", Level::Error, other));
    }
}
