//! The kernel interface: FUSE transports, nothing that knows mailslots.
pub mod uring;
