//! mailslotfs: Windows mailslots on Linux as a FUSE file system.
//!
//! Layers, with data flowing one way through them:
//! - [`slot`]: the pure core (names, queues, limits, lifetime); no FUSE, no
//!   sockets, time passed in.
//! - [`kernel`]: the FUSE protocol and its transport (mounting, requests,
//!   replies), knowing nothing about mailslots.
//! - [`fs`]: the adapter giving FUSE requests their mailslot meaning.
//! - [`wire`]: the sans-IO NetBIOS/SMB mailslot codec.
//! - [`bridge`]: the network bridge: a sans-IO state machine deciding what
//!   goes where, and a thin socket layer around it ([`bridge::net`]).
//! - [`cli`]: arguments, a mount's life cycle, and the `serve`/`send`/
//!   `info`/`status` helpers.
//! - [`service`]: what running as a system service needs (detaching,
//!   readiness, logging, `--user`).
pub mod bridge;
pub mod cli;
pub mod fs;
pub mod kernel;
pub mod service;
pub mod slot;
pub mod wire;
