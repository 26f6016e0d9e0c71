//! A small `log` backend: one line per record on stderr. fuser's own
//! records are kept to errors unless `--debug` asks for its request trace.

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    level: LevelFilter,
    fuser_level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let limit = if metadata.target().starts_with("fuser") {
            self.fuser_level
        } else {
            self.level
        };
        metadata.level() <= limit
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "mailslotfs[{}]: {}: {}",
                std::process::id(),
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the logger: warnings only by default, info with `-v`, debug
/// with `-vv`, and fuser's per-request trace as well with `--debug`.
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
    let logger = Box::new(StderrLogger { level, fuser_level });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level.max(fuser_level));
    }
}
