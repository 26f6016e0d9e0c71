//! mailslotfs: Windows mailslots on Linux as a FUSE file system.
pub mod wire;
