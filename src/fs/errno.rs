//! The single map from core errors to errnos. The match has no wildcard, so
//! a new error variant cannot be added without deciding its errno here.

use crate::bridge::SendError;
use crate::slot::SlotError;

/// The errno a client sees for `error`.
pub(crate) fn errno(error: SlotError) -> i32 {
    match error {
        SlotError::NotFound => libc::ENOENT,
        SlotError::Exists => libc::EEXIST,
        SlotError::NotADirectory => libc::ENOTDIR,
        SlotError::IsADirectory => libc::EISDIR,
        SlotError::NotEmpty => libc::ENOTEMPTY,
        SlotError::ReadDenied => libc::EACCES,
        SlotError::NotPermitted => libc::EPERM,
        SlotError::InvalidName => libc::EINVAL,
        SlotError::NameTooLong => libc::ENAMETOOLONG,
        // Windows: ERROR_INSUFFICIENT_BUFFER / ERROR_MORE_DATA both ways.
        SlotError::MessageTooBig | SlotError::BufferTooSmall => libc::EMSGSIZE,
        SlotError::QuotaFull | SlotError::OutOfMemory => libc::ENOBUFS,
        // A name past `max_entries` or a user's share: no room, as a full
        // tmpfs (nr_inodes) answers.
        SlotError::NoSpace => libc::ENOSPC,
        SlotError::WouldBlock => libc::EAGAIN,
        SlotError::TimedOut => libc::ETIMEDOUT,
        SlotError::Interrupted => libc::EINTR,
        SlotError::ServerGone => libc::EPIPE,
        SlotError::WrongRole | SlotError::InvalidValue => libc::EINVAL,
        // getxattr of an unknown name must be ENODATA: ENOSYS would make the
        // kernel stop asking for every attribute on this mount.
        SlotError::NoSuchAttribute => libc::ENODATA,
    }
}

/// The errno a write under `.net` sees when the bridge refuses it.
pub(crate) fn send_errno(error: SendError) -> i32 {
    match error {
        SendError::TooBig => libc::EMSGSIZE,
        SendError::BadPath(_) => libc::EINVAL,
        SendError::Network(code) => code,
        SendError::Unreachable(_) => libc::EHOSTUNREACH,
        SendError::Busy => libc::EAGAIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_errnos() {
        let table = [
            (SlotError::NotFound, libc::ENOENT),
            (SlotError::Exists, libc::EEXIST),
            (SlotError::ReadDenied, libc::EACCES),
            (SlotError::MessageTooBig, libc::EMSGSIZE),
            (SlotError::BufferTooSmall, libc::EMSGSIZE),
            (SlotError::QuotaFull, libc::ENOBUFS),
            (SlotError::OutOfMemory, libc::ENOBUFS),
            (SlotError::NoSpace, libc::ENOSPC),
            (SlotError::WouldBlock, libc::EAGAIN),
            (SlotError::TimedOut, libc::ETIMEDOUT),
            (SlotError::Interrupted, libc::EINTR),
            (SlotError::ServerGone, libc::EPIPE),
            (SlotError::WrongRole, libc::EINVAL),
            (SlotError::NotPermitted, libc::EPERM),
            (SlotError::NotEmpty, libc::ENOTEMPTY),
            (SlotError::NoSuchAttribute, libc::ENODATA),
        ];
        for (error, code) in table {
            assert_eq!(errno(error), code, "{error:?}");
        }
    }
}
