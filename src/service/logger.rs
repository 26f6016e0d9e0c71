//! A small `log` backend: one line per record on stderr while the daemon
//! has a terminal, and syslog (the journal, where systemd runs) once it is
//! detached. The kernel interface's per-request trace is at trace level,
//! which only `--debug` turns on.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Set once the daemon has detached from its terminal.
static TO_SYSLOG: AtomicBool = AtomicBool::new(false);

struct Logger {
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
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

fn priority(level: Level) -> libc::c_int {
    match level {
        Level::Error => libc::LOG_ERR,
        Level::Warn => libc::LOG_WARNING,
        Level::Info => libc::LOG_INFO,
        Level::Debug | Level::Trace => libc::LOG_DEBUG,
    }
}

/// Installs the logger: warnings only by default, info with `-v`, debug
/// (every refused request, with its pid) with `-vv`, and every FUSE
/// request as well with `--debug`.
pub fn init(verbose: u8, debug: bool) {
    let level = match (verbose, debug) {
        (_, true) => LevelFilter::Trace,
        (2.., _) => LevelFilter::Debug,
        (1, _) => LevelFilter::Info,
        (0, _) => LevelFilter::Warn,
    };
    if log::set_boxed_logger(Box::new(Logger { level })).is_ok() {
        log::set_max_level(level);
    }
}

/// From now on, log to syslog as `mailslotfs[PID]` (facility daemon):
/// the daemon has no terminal any more.
pub fn use_syslog() {
    // SAFETY: the identity is a static C string, as openlog requires.
    unsafe { libc::openlog(c"mailslotfs".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
    TO_SYSLOG.store(true, Ordering::Relaxed);
}
