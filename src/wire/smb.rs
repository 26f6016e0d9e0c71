//! The SMB_COM_TRANSACTION "write mail slot" request ([MS-MAIL] §2.2.1),
//! little-endian, offsets from the first byte of the SMB header:
//!
//! ```text
//! 0  SMB header (32 bytes: "\xFFSMB", command 0x25, the rest ignored)
//! 32 WordCount = 17, then 14 transaction words and 3 setup words:
//!    35 TotalDataCount, 55 DataCount, 57 DataOffset, 59 SetupCount = 3,
//!    61 opcode = 1 (write mail slot), 63 priority, 65 class = 2
//! 67 ByteCount, 69 "\MAILSLOT\<name>" NUL, optional padding, data
//! ```

use std::fmt;

use super::{DecodeError, EncodeError, bytes_at, u8_at, wire_u16};

mod field {
    use std::ops::Range;

    pub(super) const PROTOCOL: usize = 0;
    pub(super) const COMMAND: usize = 4;
    /// The rest of the SMB header: status, flags, PID, TID, UID, MID.
    pub(super) const IGNORED_HEADER: Range<usize> = 5..32;
    pub(super) const WORD_COUNT: usize = 32;
    pub(super) const WORDS: usize = 33;
    pub(super) const TOTAL_DATA_COUNT: usize = 35;
    pub(super) const DATA_COUNT: usize = 55;
    pub(super) const DATA_OFFSET: usize = 57;
    pub(super) const SETUP_COUNT: usize = 59;
    pub(super) const OPCODE: usize = 61;
    pub(super) const PRIORITY: usize = 63;
    pub(super) const CLASS: usize = 65;
    /// The mailslot name when WordCount is 17, as we send it.
    pub(super) const NAME: usize = 69;
}

const PROTOCOL_ID: [u8; 4] = *b"\xFFSMB";
const SMB_COM_TRANSACTION: u8 = 0x25;
/// 14 transaction words plus [`SETUP_COUNT`] setup words.
const WORD_COUNT: u8 = 17;
const SETUP_COUNT: u8 = 3;
const OPCODE_WRITE_MAILSLOT: u16 = 1;
/// First-class (reliable) writes need a session; over datagrams only
/// second-class ones make sense.
const CLASS_RELIABLE: u16 = 1;
const CLASS_UNRELIABLE: u16 = 2;

/// A mailslot path as it appears on the wire, `\MAILSLOT\` included
/// (`\MAILSLOT\BROWSE`, `\MAILSLOT\NET\NETLOGON`).
///
/// Case is kept as given, because peers reply to a reply-slot string
/// verbatim; compare with [`relative_eq_ignore_ascii_case`], since mailslot
/// names are case-insensitive.
///
/// [`relative_eq_ignore_ascii_case`]: Self::relative_eq_ignore_ascii_case
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MailslotPath(String);

impl MailslotPath {
    /// The prefix every path carries, as Windows and Samba write it.
    pub const PREFIX: &'static str = "\\MAILSLOT\\";

    /// Takes a full path such as a reply slot named inside a NETLOGON
    /// request. The prefix may be in any case; at least one character must
    /// follow it, and only printable ASCII (other bytes would be read in
    /// the peer's OEM code page).
    pub fn new(full: &str) -> Result<Self, EncodeError> {
        check_path(full.as_bytes()).map_err(|fault| match fault {
            PathFault::NoPrefix => EncodeError::NotAMailslotPath,
            PathFault::NothingAfterPrefix => EncodeError::Empty("mailslot name"),
            PathFault::BadByte(byte) => EncodeError::BadCharacter {
                field: "mailslot path",
                byte,
            },
        })?;
        Ok(Self(full.to_owned()))
    }

    /// Builds the wire path for a local name: `a\b` (from `\\.\mailslot\a\b`)
    /// becomes `\MAILSLOT\a\b`.
    pub fn from_relative(relative: &str) -> Result<Self, EncodeError> {
        Self::new(&format!("{}{relative}", Self::PREFIX))
    }

    /// The full path, as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `\MAILSLOT\`, the name a local slot is known by.
    pub fn relative(&self) -> &str {
        self.0.get(Self::PREFIX.len()..).unwrap_or_default()
    }

    /// Whether this path names the local mailslot `relative`, ignoring
    /// case as Windows does.
    pub fn relative_eq_ignore_ascii_case(&self, relative: &str) -> bool {
        self.relative().eq_ignore_ascii_case(relative)
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_path(bytes).map_err(|fault| match fault {
            PathFault::NoPrefix => {
                DecodeError::Malformed("transaction name is not a \\MAILSLOT\\ path")
            }
            PathFault::NothingAfterPrefix => DecodeError::Malformed("empty mailslot name"),
            PathFault::BadByte(byte) => DecodeError::BadField {
                field: "mailslot name character",
                value: byte.into(),
            },
        })?;
        // check_path admitted printable ASCII only.
        Ok(Self(bytes.iter().map(|&byte| char::from(byte)).collect()))
    }
}

impl fmt::Display for MailslotPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with a path, before it becomes the caller's error type.
enum PathFault {
    NoPrefix,
    NothingAfterPrefix,
    BadByte(u8),
}

fn check_path(bytes: &[u8]) -> Result<(), PathFault> {
    let prefix = MailslotPath::PREFIX.as_bytes();
    let (head, relative) = bytes
        .split_at_checked(prefix.len())
        .ok_or(PathFault::NoPrefix)?;
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(PathFault::NoPrefix);
    }
    if relative.is_empty() {
        return Err(PathFault::NothingAfterPrefix);
    }
    match relative.iter().find(|byte| !(b' '..=b'~').contains(*byte)) {
        Some(&byte) => Err(PathFault::BadByte(byte)),
        None => Ok(()),
    }
}

/// A decoded write with its data borrowed from the SMB message.
#[derive(Debug)]
pub(crate) struct MailslotWrite<'a> {
    pub(crate) path: MailslotPath,
    pub(crate) priority: u16,
    pub(crate) data: &'a [u8],
}

impl<'a> MailslotWrite<'a> {
    /// Checks what a receiver must check (wire-format.md §3) and locates the
    /// data by DataOffset/DataCount, never by the end of the name. Fields a
    /// receiver ignores (flags, timeout, parameter counts) are not read.
    pub(crate) fn parse(smb: &'a [u8]) -> Result<Self, DecodeError> {
        let protocol = bytes_at::<4>(smb, field::PROTOCOL)?;
        if protocol != PROTOCOL_ID {
            return Err(DecodeError::BadField {
                field: "SMB protocol id",
                value: u32::from_be_bytes(protocol),
            });
        }
        let command = u8_at(smb, field::COMMAND)?;
        if command != SMB_COM_TRANSACTION {
            return Err(DecodeError::BadField {
                field: "SMB command",
                value: command.into(),
            });
        }
        let word_count = u8_at(smb, field::WORD_COUNT)?;
        if word_count < WORD_COUNT {
            return Err(DecodeError::BadField {
                field: "SMB WordCount",
                value: word_count.into(),
            });
        }
        // Extra words, if a sender ever adds them, move the byte block.
        let byte_count_at = field::WORDS + 2 * usize::from(word_count);
        let byte_count = u16_le_at(smb, byte_count_at)?;

        let setup_count = u8_at(smb, field::SETUP_COUNT)?;
        if setup_count != SETUP_COUNT {
            return Err(DecodeError::BadField {
                field: "transaction SetupCount",
                value: setup_count.into(),
            });
        }
        let opcode = u16_le_at(smb, field::OPCODE)?;
        if opcode != OPCODE_WRITE_MAILSLOT {
            return Err(DecodeError::BadField {
                field: "mailslot opcode",
                value: opcode.into(),
            });
        }
        match u16_le_at(smb, field::CLASS)? {
            CLASS_UNRELIABLE => {}
            CLASS_RELIABLE => {
                return Err(DecodeError::Unsupported(
                    "first-class (reliable) mailslot write over a datagram",
                ));
            }
            class => {
                return Err(DecodeError::BadField {
                    field: "mailslot class",
                    value: class.into(),
                });
            }
        }
        let priority = u16_le_at(smb, field::PRIORITY)?;
        let data_count = u16_le_at(smb, field::DATA_COUNT)?;
        let data_offset = u16_le_at(smb, field::DATA_OFFSET)?;
        // A larger total means secondary requests follow, which datagrams
        // cannot carry.
        let total_data_count = u16_le_at(smb, field::TOTAL_DATA_COUNT)?;
        if total_data_count != data_count {
            return Err(DecodeError::BadField {
                field: "TotalDataCount (differs from DataCount)",
                value: total_data_count.into(),
            });
        }

        let bytes_start = byte_count_at + 2;
        let bytes_end = bytes_start + usize::from(byte_count);
        let bytes = smb
            .get(bytes_start..bytes_end)
            .ok_or(DecodeError::Truncated {
                need: bytes_end,
                have: smb.len(),
            })?;
        let name = bytes
            .iter()
            .position(|&byte| byte == 0)
            .and_then(|nul| bytes.get(..nul))
            .ok_or(DecodeError::Malformed(
                "mailslot name not NUL-terminated within ByteCount",
            ))?;
        let path = MailslotPath::decode(name)?;

        let name_end = bytes_start + name.len() + 1;
        let data_start = usize::from(data_offset);
        if data_start < name_end {
            return Err(DecodeError::BadField {
                field: "DataOffset (overlaps the SMB header or mailslot name)",
                value: data_offset.into(),
            });
        }
        let data_end = data_start + usize::from(data_count);
        let data = smb
            .get(data_start..data_end)
            .filter(|_| data_end <= bytes_end)
            .ok_or(DecodeError::BadField {
                field: "DataOffset + DataCount (beyond ByteCount)",
                value: u32::from(data_offset) + u32::from(data_count),
            })?;
        Ok(Self {
            path,
            priority,
            data,
        })
    }
}

/// Bytes of the SMB message for `path` and `data_len` data bytes.
pub(crate) fn message_len(path: &MailslotPath, data_len: usize) -> usize {
    field::NAME + path.as_str().len() + 1 + data_len
}

/// Appends the SMB message as Samba's nmbd writes it: every ignored field
/// zero, no padding between the name and the data.
pub(crate) fn emit(
    path: &MailslotPath,
    priority: u16,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let name = path.as_str().as_bytes();
    let data_offset = wire_u16(field::NAME + name.len() + 1, "SMB DataOffset")?;
    let data_count = wire_u16(data.len(), "mailslot data (DataCount)")?;
    let byte_count = wire_u16(name.len() + 1 + data.len(), "SMB ByteCount")?;

    out.extend_from_slice(&PROTOCOL_ID);
    out.push(SMB_COM_TRANSACTION);
    out.extend_from_slice(&[0; field::IGNORED_HEADER.end - field::IGNORED_HEADER.start]);
    out.push(WORD_COUNT);
    push_u16s(
        out,
        &[
            0,          // TotalParameterCount
            data_count, // TotalDataCount
            0,          // MaxParameterCount
            0,          // MaxDataCount
        ],
    );
    out.extend_from_slice(&[0, 0]); // MaxSetupCount, Reserved
    push_u16s(
        out,
        &[
            0,           // Flags
            0,           // Timeout, low word
            0,           // Timeout, high word
            0,           // Reserved2
            0,           // ParameterCount
            0,           // ParameterOffset
            data_count,  // DataCount
            data_offset, // DataOffset
        ],
    );
    out.extend_from_slice(&[SETUP_COUNT, 0]); // SetupCount, Reserved3
    push_u16s(
        out,
        &[
            OPCODE_WRITE_MAILSLOT,
            priority,
            CLASS_UNRELIABLE,
            byte_count,
        ],
    );
    out.extend_from_slice(name);
    out.push(0);
    out.extend_from_slice(data);
    Ok(())
}

fn push_u16s(out: &mut Vec<u8>, words: &[u16]) {
    for word in words {
        out.extend_from_slice(&word.to_le_bytes());
    }
}

fn u16_le_at(buf: &[u8], at: usize) -> Result<u16, DecodeError> {
    bytes_at(buf, at).map(u16::from_le_bytes)
}
