//! The one error type of the core. The FUSE adapter maps each variant to an
//! errno in exactly one place (`fs::errno`).

use std::fmt;

/// Everything a slot operation can refuse, named by what the user did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotError {
    /// No slot or directory of that name (or a client tried to create one).
    NotFound,
    /// `O_CREAT | O_EXCL` on a name that exists, or `mkdir` of one.
    Exists,
    /// A path component is a slot, not a directory.
    NotADirectory,
    /// A slot operation was aimed at a directory.
    IsADirectory,
    /// `rmdir` of a directory that still holds slots or directories.
    NotEmpty,
    /// Only the server reads: read access to an existing slot.
    ReadDenied,
    /// Renaming, linking, unlinking, or changing what only the owner may change.
    NotPermitted,
    /// A name that cannot be a mailslot name (see `name::validate`).
    InvalidName,
    /// A name component longer than `name::MAX_NAME_LEN`.
    NameTooLong,
    /// A message larger than the slot's maximum message size.
    MessageTooBig,
    /// The read buffer is smaller than the message at the head of the queue.
    BufferTooSmall,
    /// The slot's queue quota (messages or bytes) is full.
    QuotaFull,
    /// Nothing to read and the caller does not wait.
    WouldBlock,
    /// The slot's read timeout ran out.
    TimedOut,
    /// The waiting reader got a signal (or must retry).
    Interrupted,
    /// The server closed the slot: the client's handle is dead.
    ServerGone,
    /// A write on the server handle, or a read on a client handle.
    WrongRole,
    /// A setting value that is not a valid number for that setting.
    InvalidValue,
    /// An extended attribute this file does not have.
    NoSuchAttribute,
    /// The mount's memory ceiling or the user's memory share is reached
    /// (a message, handle, parked read or poll waiter).
    OutOfMemory,
    /// No room for another name: the mount's `max_entries`, the user's
    /// `user_entries`, or the memory a new name would take.
    NoSpace,
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlotError::NotFound => "no such mailslot or directory",
            SlotError::Exists => "name already exists",
            SlotError::NotADirectory => "not a directory",
            SlotError::IsADirectory => "is a directory",
            SlotError::NotEmpty => "directory not empty",
            SlotError::ReadDenied => "only the server that created a mailslot reads it",
            SlotError::NotPermitted => "operation not permitted on a mailslot",
            SlotError::InvalidName => "invalid mailslot name",
            SlotError::NameTooLong => "name too long",
            SlotError::MessageTooBig => "message larger than the slot's maximum message size",
            SlotError::BufferTooSmall => "read buffer smaller than the next message",
            SlotError::QuotaFull => "mailslot queue is full",
            SlotError::WouldBlock => "no message waiting",
            SlotError::TimedOut => "read timed out",
            SlotError::Interrupted => "interrupted",
            SlotError::ServerGone => "the mailslot's server has closed it",
            SlotError::WrongRole => "servers only read and clients only write",
            SlotError::InvalidValue => "invalid value",
            SlotError::NoSuchAttribute => "no such attribute",
            SlotError::OutOfMemory => "daemon memory ceiling or user's memory share reached",
            SlotError::NoSpace => "no room for another name on this mount",
        })
    }
}

impl std::error::Error for SlotError {}
