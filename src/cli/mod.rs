//! The command line: [`args`] (what clap parses, the `-o` options and the
//! mount-helper form), [`app`] (a mount's life cycle: mount, serve, stop),
//! [`tools`] (the `serve`/`send`/`info`/`status` helpers) and [`generate`]
//! (the man page and shell completions).

pub mod app;
pub mod args;
pub mod generate;
pub mod tools;

pub use args::*;

/// An I/O error as the end of a user's line: the system's words without
/// the ` (os error N)` std adds (also inside an error that wraps one),
/// which tells a user nothing the words do not.
pub(crate) fn reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rsplit_once(" (os error ") {
        Some((words, n))
            if n.strip_suffix(')')
                .is_some_and(|n| n.parse::<i32>().is_ok()) =>
        {
            words.to_owned()
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    #[test]
    fn reasons_drop_the_os_error_number() {
        let missing = Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(super::reason(&missing), "No such file or directory");
        let wrapped = Error::other(format!("fusermount3: {missing}"));
        assert_eq!(
            super::reason(&wrapped),
            "fusermount3: No such file or directory"
        );
        let plain = Error::new(ErrorKind::InvalidData, "short read (os error x)");
        assert_eq!(super::reason(&plain), "short read (os error x)");
    }
}
