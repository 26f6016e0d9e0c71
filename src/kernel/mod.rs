//! The kernel interface: the FUSE protocol and its transport, knowing
//! nothing about mailslots. Bytes from `/dev/fuse` become typed
//! [`request::Request`]s; the adapter answers each through a
//! [`reply::Reply`], from any thread, now or later.
//!
//! Our own, not fuser: fuser answers FUSE_INTERRUPT with ENOSYS (after which
//! the kernel never sends another, so a signalled reader waits in the
//! kernel) and cannot speak FUSE-over-io_uring.

pub mod abi;
pub mod channel;
pub mod mount;
pub mod mountinfo;
pub mod reply;
pub mod request;
pub mod uring;
