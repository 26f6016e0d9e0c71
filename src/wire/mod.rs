//! Sans-IO codecs for the network: the NetBIOS name service (`nbns`, UDP
//! 137, RFC 1002 §4.2: [`NamePacket`]) and second-class mailslot writes: an
//! SMB_COM_TRANSACTION "write mail slot" request ([MS-MAIL] §2.2.1) carried
//! as the user data of a NetBIOS datagram (RFC 1002 §4.4), one UDP datagram
//! to port 138. The project's `wire-format.md` has the byte-level facts.
//!
//! Bytes in, typed values out, and back: no sockets, no clock, no logging.
//! [`MailslotDatagram`] is the whole message as plain data
//! ([`parse`](MailslotDatagram::parse), [`emit`](MailslotDatagram::emit),
//! [`buffer_len`](MailslotDatagram::buffer_len)); the layers below it
//! (`nbname`, `dgm`, `smb`) parse into views that borrow the input.
//!
//! Panic contract: decoding never panics, whatever the input; every read is
//! bounds-checked and every problem is a [`DecodeError`]. Encoding never
//! panics either; it fails only with an [`EncodeError`] for values the wire
//! cannot carry, and the value types check their rules when built.
//!
//! Deliberately not handled (each gives a distinct error so callers can
//! count and drop): fragmented NetBIOS datagrams (neither Windows nor Samba
//! fragments mailslot writes, and we do not reassemble), the NBDD message
//! types 0x13-0x16, and first-class (reliable) mailslot writes.

// Parsing untrusted bytes is exactly where unsafe code would hurt most.
#![forbid(unsafe_code)]

mod dgm;
mod nbname;
mod nbns;
mod smb;

use std::fmt;
use std::net::SocketAddrV4;

pub use dgm::{MessageType, NodeType};
pub use nbname::{NAME_LEN, NetbiosName, Scope};
pub use nbns::{
    HeaderFlags, NETBIOS_NAME_PORT, NamePacket, NbAddress, NodeStatus, Opcode, Question,
    QuestionType, Record, RecordData, StatusName, rcode,
};
pub use smb::MailslotPath;

/// UDP port of the NetBIOS datagram service. Peers send from it and reply
/// to it (Windows replies to 138 whatever the source port), so a bridge
/// must both bind and send from it.
pub const NETBIOS_DATAGRAM_PORT: u16 = 138;

/// Most data bytes Windows lets one remote mailslot write carry
/// (Win32 "About Mailslots"); larger writes must fail, never fragment.
pub const MAX_NETWORK_MESSAGE_LEN: usize = 424;

/// Most bytes of mailslot name (with its NUL) plus data one remote write
/// may carry ([MS-MAIL] §2.1): the SMB message stays within 512 bytes.
pub const MAX_MAILSLOT_NAME_AND_DATA_LEN: usize = 443;

/// Largest UDP payload Samba's nmbd accepts on port 138 (its receive
/// buffer); a longer datagram is cut and dropped without a trace.
pub const MAX_SAMBA_UDP_PAYLOAD_LEN: usize = 576;

/// Why bytes are not a mailslot write we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends before a field it needs, or a length field claims
    /// more bytes than there are. Both counts start at the element being
    /// decoded: the datagram, one name, or the SMB message.
    Truncated {
        /// Bytes the element would need to hold the field.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// A field holds a value the protocol does not allow here.
    BadField {
        /// The field, named as in the specification.
        field: &'static str,
        /// What it held.
        value: u32,
    },
    /// A structure that cannot be described by one field value.
    Malformed(&'static str),
    /// A well-formed message of a kind we do not handle.
    Unsupported(&'static str),
    /// One fragment of a larger NetBIOS datagram. Mailslot writes are never
    /// fragmented by Windows or Samba, and we do not reassemble, so callers
    /// should count and drop these.
    Fragmented {
        /// DGM_ID, shared by all fragments of one datagram.
        dgm_id: u16,
        /// The M flag: more fragments follow.
        more: bool,
        /// The F flag: this is the first fragment.
        first: bool,
        /// Where this fragment's user data goes in the whole datagram.
        packet_offset: u16,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, have {have}")
            }
            Self::BadField { field, value } => write!(f, "bad {field}: {value:#x}"),
            Self::Malformed(what) => write!(f, "malformed: {what}"),
            Self::Unsupported(what) => write!(f, "unsupported: {what}"),
            Self::Fragmented {
                dgm_id,
                more,
                first,
                packet_offset,
            } => write!(
                f,
                "fragment of NetBIOS datagram {dgm_id:#06x} (first={first}, more={more}, \
                 offset={packet_offset}); reassembly is not supported"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a value cannot be put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The field must not be empty.
    Empty(&'static str),
    /// The field is longer than its wire form allows.
    TooLong {
        /// What was too long.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most the wire form holds.
        max: usize,
    },
    /// The field holds a byte its wire form cannot carry.
    BadCharacter {
        /// Where the byte was.
        field: &'static str,
        /// The first such byte.
        byte: u8,
    },
    /// A mailslot path that does not start with `\MAILSLOT\`.
    NotAMailslotPath,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty(field) => write!(f, "{field} is empty"),
            Self::TooLong { field, len, max } => {
                write!(f, "{field} is {len} bytes long, at most {max} fit")
            }
            Self::BadCharacter { field, byte } => {
                write!(f, "{field} contains byte {byte:#04x}, which cannot be sent")
            }
            Self::NotAMailslotPath => f.write_str("mailslot path does not start with \\MAILSLOT\\"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// One mailslot write as it travels between hosts.
///
/// Parsing accepts what Windows and Samba send (any of the three datagram
/// types, any node type, the data located by DataOffset so padding is
/// skipped). Emitting writes what Samba's nmbd writes: no padding, zero in
/// every SMB field a receiver ignores (so a parsed Samba datagram re-emits
/// byte for byte; source4's Timeout of 1000 ms is not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailslotDatagram {
    /// Unique or group destination; receivers accept all three types.
    pub msg_type: MessageType,
    /// The sender's node type; informational only, receivers ignore it.
    pub node_type: NodeType,
    /// Chosen by the sender; duplicates happen, so this is not a dedupe key.
    pub dgm_id: u16,
    /// What the sender wrote in SOURCE_IP/SOURCE_PORT. Peers reply to the
    /// UDP source address instead, which may differ.
    pub source_addr: SocketAddrV4,
    /// The sending node's name (`COMPUTER<00>`); replies go to it.
    pub source_name: NetbiosName,
    /// Whom the write is for: one of a receiver's own names, or it drops it.
    pub destination_name: NetbiosName,
    /// The scope of both names.
    pub scope: Scope,
    /// The mailslot on the destination that gets the data.
    pub mailslot: MailslotPath,
    /// Setup word 1: Windows sends 0, nmbd 1; receivers ignore it.
    pub priority: u16,
    /// The message, delivered whole as one mailslot read.
    pub data: Vec<u8>,
}

impl MailslotDatagram {
    /// Decodes one UDP payload received on port 138. A payload shorter
    /// than DGM_LENGTH says was cut short and is refused; bytes beyond it
    /// are ignored.
    pub fn parse(udp_payload: &[u8]) -> Result<Self, DecodeError> {
        let datagram = dgm::Datagram::parse(udp_payload)?;
        let write = smb::MailslotWrite::parse(datagram.user_data)?;
        Ok(Self {
            msg_type: datagram.header.msg_type,
            node_type: datagram.header.node_type,
            dgm_id: datagram.header.dgm_id,
            source_addr: datagram.header.source_addr,
            source_name: datagram.source_name,
            destination_name: datagram.destination_name,
            scope: datagram.scope,
            mailslot: write.path,
            priority: write.priority,
            data: write.data.to_vec(),
        })
    }

    /// Bytes [`emit`](Self::emit) produces: compare it with
    /// [`MAX_SAMBA_UDP_PAYLOAD_LEN`] before sending.
    pub fn buffer_len(&self) -> usize {
        dgm::header_len(&self.scope) + smb::message_len(&self.mailslot, self.data.len())
    }

    /// Encodes the datagram as one UDP payload, unfragmented. Fails only
    /// when the message is too big for the 16-bit length fields.
    pub fn emit(&self) -> Result<Vec<u8>, EncodeError> {
        let smb_len = smb::message_len(&self.mailslot, self.data.len());
        let mut out = Vec::with_capacity(self.buffer_len());
        let header = dgm::DatagramHeader {
            msg_type: self.msg_type,
            node_type: self.node_type,
            dgm_id: self.dgm_id,
            source_addr: self.source_addr,
        };
        dgm::emit(
            &header,
            [&self.source_name, &self.destination_name],
            &self.scope,
            smb_len,
            &mut out,
        )?;
        smb::emit(&self.mailslot, self.priority, &self.data, &mut out)?;
        Ok(out)
    }
}

/// Reads `N` bytes at `at`, or reports how many bytes that needed.
fn bytes_at<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], DecodeError> {
    buf.get(at..)
        .and_then(<[u8]>::first_chunk::<N>)
        .copied()
        .ok_or(DecodeError::Truncated {
            need: at.saturating_add(N),
            have: buf.len(),
        })
}

fn u8_at(buf: &[u8], at: usize) -> Result<u8, DecodeError> {
    bytes_at::<1>(buf, at).map(|[byte]| byte)
}

/// Converts a length for a 16-bit wire field.
fn wire_u16(len: usize, field: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(len).map_err(|_| EncodeError::TooLong {
        field,
        len,
        max: u16::MAX.into(),
    })
}
