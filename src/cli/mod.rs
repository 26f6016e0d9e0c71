//! The command line: [`args`] (what clap parses, the `-o` options and the
//! mount-helper form), [`app`] (a mount's life cycle: mount, serve, stop)
//! and [`tools`] (the `serve`/`send`/`info`/`status` helpers).

pub mod app;
pub mod args;
pub mod tools;

pub use args::*;
