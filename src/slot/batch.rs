//! The batch interface: many messages per system call, for high-rate users.
//!
//! Off by default, so plain `read`/`write` keep exact Windows semantics. A
//! handle switched on with the [`IOCTL_SET_BATCH`] ioctl reads and writes
//! *frames*: a 4-byte little-endian length, then that many bytes, back to
//! back. A batched read returns every waiting message that fits in the
//! buffer; a batched write queues each frame as one message and returns the
//! bytes of the whole frames it took (a short write when the quota fills).

/// `_IOW('M', 1, u32)`: switch batch mode on (non-zero) or off (zero) for
/// one open handle.
pub const IOCTL_SET_BATCH: u32 = (1 << 30) | (4 << 16) | ((b'M' as u32) << 8) | 1;

/// Bytes of the length prefix before each message.
pub const FRAME_HEADER: usize = 4;

/// Appends one frame holding `message` to `out`.
pub fn push_frame(out: &mut Vec<u8>, message: &[u8]) {
    out.extend_from_slice(&(message.len() as u32).to_le_bytes());
    out.extend_from_slice(message);
}

/// Splits the next frame off `buf`: `Some((message, rest))`, or `None` when
/// `buf` does not start with a whole frame.
pub fn next_frame(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let header: [u8; FRAME_HEADER] = buf.get(..FRAME_HEADER)?.try_into().ok()?;
    let len = u32::from_le_bytes(header) as usize;
    let end = FRAME_HEADER.checked_add(len)?;
    Some((buf.get(FRAME_HEADER..end)?, buf.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number_is_iow_m_1_u32() {
        assert_eq!(IOCTL_SET_BATCH, 0x4004_4d01);
    }

    #[test]
    fn frames_round_trip_and_truncation_is_not_a_frame() {
        let mut buf = Vec::new();
        push_frame(&mut buf, b"one");
        push_frame(&mut buf, b"");
        push_frame(&mut buf, b"three");
        let (a, rest) = next_frame(&buf).unwrap();
        let (b, rest) = next_frame(rest).unwrap();
        let (c, rest) = next_frame(rest).unwrap();
        assert_eq!(
            (a, b, c, rest),
            (&b"one"[..], &b""[..], &b"three"[..], &b""[..])
        );
        assert_eq!(
            next_frame(&buf[..buf.len() - 1]).map(|f| f.0),
            Some(&b"one"[..])
        );
        assert!(next_frame(&[5, 0, 0, 0, b'x']).is_none());
        assert!(next_frame(&[1, 0]).is_none());
        assert!(next_frame(&[0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
