//! The FUSE wire protocol's numbers, from the kernel's
//! `include/uapi/linux/fuse.h`: opcodes, flags and the sizes of the structs
//! this daemon reads and writes. Structs are (de)coded field by field in
//! `request` and `reply`, so nothing here is `unsafe` or layout-dependent.

/// The protocol version we speak. The kernel answers with its own minor;
/// both sides then use the lower one. 7.31 is the oldest whose structs we
/// assume (64-byte INIT, 40-byte READ/WRITE).
pub const KERNEL_VERSION: u32 = 7;
pub const KERNEL_MINOR_VERSION: u32 = 45;
pub const OLDEST_MINOR_VERSION: u32 = 31;

/// Request opcodes (`enum fuse_opcode`).
pub mod opcode {
    pub const LOOKUP: u32 = 1;
    pub const FORGET: u32 = 2;
    pub const GETATTR: u32 = 3;
    pub const SETATTR: u32 = 4;
    pub const READLINK: u32 = 5;
    pub const SYMLINK: u32 = 6;
    pub const MKNOD: u32 = 8;
    pub const MKDIR: u32 = 9;
    pub const UNLINK: u32 = 10;
    pub const RMDIR: u32 = 11;
    pub const RENAME: u32 = 12;
    pub const LINK: u32 = 13;
    pub const OPEN: u32 = 14;
    pub const READ: u32 = 15;
    pub const WRITE: u32 = 16;
    pub const STATFS: u32 = 17;
    pub const RELEASE: u32 = 18;
    pub const FSYNC: u32 = 20;
    pub const SETXATTR: u32 = 21;
    pub const GETXATTR: u32 = 22;
    pub const LISTXATTR: u32 = 23;
    pub const REMOVEXATTR: u32 = 24;
    pub const FLUSH: u32 = 25;
    pub const INIT: u32 = 26;
    pub const OPENDIR: u32 = 27;
    pub const READDIR: u32 = 28;
    pub const RELEASEDIR: u32 = 29;
    pub const FSYNCDIR: u32 = 30;
    pub const ACCESS: u32 = 34;
    pub const CREATE: u32 = 35;
    pub const INTERRUPT: u32 = 36;
    pub const DESTROY: u32 = 38;
    pub const IOCTL: u32 = 39;
    pub const POLL: u32 = 40;
    /// The kernel's answer to our FUSE_NOTIFY_RETRIEVE (it wants no reply on
    /// `/dev/fuse`; on io_uring its entry is committed like any other).
    pub const NOTIFY_REPLY: u32 = 41;
    pub const BATCH_FORGET: u32 = 42;
    pub const RENAME2: u32 = 45;
}

/// `fuse_init_in.flags | flags2 << 32` bits we look at or ask for.
pub mod init {
    pub const ASYNC_READ: u64 = 1 << 0;
    pub const BIG_WRITES: u64 = 1 << 5;
    pub const PARALLEL_DIROPS: u64 = 1 << 18;
    pub const MAX_PAGES: u64 = 1 << 22;
    pub const INIT_EXT: u64 = 1 << 30;
    pub const OVER_IO_URING: u64 = 1 << 41;
}

/// `fuse_setattr_in.valid` bits.
pub mod fattr {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
}

/// `fuse_open_out.open_flags` bits.
pub mod fopen {
    pub const DIRECT_IO: u32 = 1 << 0;
    pub const NONSEEKABLE: u32 = 1 << 2;
    pub const STREAM: u32 = 1 << 4;
    pub const PARALLEL_DIRECT_WRITES: u32 = 1 << 6;
}

/// `fuse_poll_in.flags`: the kernel wants a FUSE_NOTIFY_POLL when ready.
pub const POLL_SCHEDULE_NOTIFY: u32 = 1 << 0;
/// `fuse_ioctl_in.flags`: a CUSE-style ioctl whose buffers we would have
/// to describe ourselves.
pub const IOCTL_UNRESTRICTED: u32 = 1 << 1;
/// Notification codes, sent with `unique` 0 and the code as `error`.
pub const NOTIFY_POLL: i32 = 1;
pub const NOTIFY_INVAL_ENTRY: i32 = 3;
pub const NOTIFY_RETRIEVE: i32 = 5;

/// A request's `unique` with this bit set is an interrupt's own id.
pub const INT_REQ_BIT: u64 = 1;

/// `ioctl(FUSE_DEV_IOC_CLONE)`: `_IOR(229, 0, uint32_t)`.
pub const DEV_IOC_CLONE: libc::c_ulong = 0x8004_e500;

/// Sizes of the structs, in bytes.
pub const IN_HEADER: usize = 40;
pub const OUT_HEADER: usize = 16;
pub const ATTR: usize = 88;
pub const ENTRY_OUT: usize = 40 + ATTR;
pub const ATTR_OUT: usize = 16 + ATTR;
pub const INIT_OUT: usize = 64;
pub const NOTIFY_INVAL_ENTRY_OUT: usize = 16;
pub const NOTIFY_RETRIEVE_OUT: usize = 32;

/// Directory entry types (`DT_*`), in `fuse_dirent.type`.
pub const DT_DIR: u32 = 4;
pub const DT_REG: u32 = 8;
