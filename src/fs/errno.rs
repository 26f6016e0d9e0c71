//! The single map from core errors to errnos. The match has no wildcard, so
//! a new error variant cannot be added without deciding its errno here.

use fuser::Errno;

use crate::bridge::SendError;
use crate::slot::SlotError;

/// The errno a client sees for `error`.
pub(crate) fn errno(error: SlotError) -> Errno {
    match error {
        SlotError::NotFound => Errno::ENOENT,
        SlotError::Exists => Errno::EEXIST,
        SlotError::NotADirectory => Errno::ENOTDIR,
        SlotError::IsADirectory => Errno::EISDIR,
        SlotError::NotEmpty => Errno::ENOTEMPTY,
        SlotError::ReadDenied => Errno::EACCES,
        SlotError::NotPermitted => Errno::EPERM,
        SlotError::InvalidName => Errno::EINVAL,
        SlotError::NameTooLong => Errno::ENAMETOOLONG,
        // Windows: ERROR_INSUFFICIENT_BUFFER / ERROR_MORE_DATA both ways.
        SlotError::MessageTooBig | SlotError::BufferTooSmall => Errno::EMSGSIZE,
        SlotError::QuotaFull | SlotError::OutOfMemory => Errno::ENOBUFS,
        SlotError::WouldBlock => Errno::EAGAIN,
        SlotError::TimedOut => Errno::ETIMEDOUT,
        SlotError::Interrupted => Errno::EINTR,
        SlotError::ServerGone => Errno::EPIPE,
        SlotError::WrongRole | SlotError::InvalidValue => Errno::EINVAL,
        // getxattr of an unknown name must be ENODATA: ENOSYS would make the
        // kernel stop asking for every attribute on this mount.
        SlotError::NoSuchAttribute => Errno::ENODATA,
    }
}

/// The errno a write under `.net` sees when the bridge refuses it.
pub(crate) fn send_errno(error: SendError) -> Errno {
    match error {
        SendError::TooBig => Errno::EMSGSIZE,
        SendError::BadPath(_) => Errno::EINVAL,
        SendError::Network(code) => Errno::from_i32(code),
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
            assert_eq!(errno(error).code(), code, "{error:?}");
        }
    }
}
