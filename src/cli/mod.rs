//! The command line: [`args`] (what clap parses, the `-o` options and the
//! mount-helper form), [`app`] (a mount's life cycle: mount, serve, stop),
//! [`tools`] (the `serve`/`send`/`info`/`status` helpers) and [`generate`]
//! (the man page and shell completions).

pub mod app;
pub mod args;
pub mod generate;
pub mod tools;

pub use args::*;
