//! The NetBIOS datagram service header (RFC 1002 §4.4), big-endian:
//!
//! ```text
//! 0 MSG_TYPE | 1 FLAGS | 2 DGM_ID | 4 SOURCE_IP | 8 SOURCE_PORT |
//! 10 DGM_LENGTH | 12 PACKET_OFFSET | 14 SOURCE_NAME | DESTINATION_NAME | USER_DATA
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{DecodeError, EncodeError, NetbiosName, Scope, bytes_at, u8_at, wire_u16};

mod field {
    pub(super) const MSG_TYPE: usize = 0;
    pub(super) const FLAGS: usize = 1;
    pub(super) const DGM_ID: usize = 2;
    pub(super) const SOURCE_IP: usize = 4;
    pub(super) const SOURCE_PORT: usize = 8;
    pub(super) const DGM_LENGTH: usize = 10;
    pub(super) const PACKET_OFFSET: usize = 12;
    /// Where the names start; DGM_LENGTH counts the bytes after this.
    pub(super) const NAMES: usize = 14;
}

mod flag {
    /// M: more fragments follow.
    pub(super) const MORE: u8 = 0x01;
    /// F: first fragment; set on every unfragmented datagram.
    pub(super) const FIRST: u8 = 0x02;
    pub(super) const NODE_TYPE_SHIFT: u8 = 2;
    pub(super) const NODE_TYPE_MASK: u8 = 0b11;
}

/// The datagram types that carry user data. Receivers accept all three
/// whatever the destination: Samba sends group datagrams even to unique
/// names and unicast IPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// To a unique name (`COMPUTER<00>`); unicast.
    DirectUnique = 0x10,
    /// To a group name (`DOMAIN<00>`, `DOMAIN<1C>`); usually broadcast.
    DirectGroup = 0x11,
    /// To every node; legal but rare.
    Broadcast = 0x12,
}

impl MessageType {
    fn from_wire(value: u8) -> Result<Self, DecodeError> {
        match value {
            0x10 => Ok(Self::DirectUnique),
            0x11 => Ok(Self::DirectGroup),
            0x12 => Ok(Self::Broadcast),
            // Only an NBDD sends or answers these, and nobody deploys one.
            0x13 => Err(DecodeError::Unsupported("DATAGRAM ERROR message (0x13)")),
            0x14..=0x16 => Err(DecodeError::Unsupported(
                "datagram query for an NBDD (0x14-0x16)",
            )),
            _ => Err(DecodeError::BadField {
                field: "MSG_TYPE",
                value: value.into(),
            }),
        }
    }
}

/// The sender's node type from FLAGS. Receivers must ignore it; it is kept
/// so that a parsed datagram re-emits unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeType {
    /// Broadcast only: the honest value for this bridge.
    B = 0,
    /// Point-to-point, through a name server.
    P = 1,
    /// Mixed; what Samba's nmbd sends.
    M = 2,
    /// RFC 1002's NBDD; Microsoft uses it for H-node, as does Samba's
    /// source4 stack.
    H = 3,
}

impl NodeType {
    fn from_flags(flags: u8) -> Self {
        match (flags >> flag::NODE_TYPE_SHIFT) & flag::NODE_TYPE_MASK {
            0 => Self::B,
            1 => Self::P,
            2 => Self::M,
            _ => Self::H,
        }
    }
}

/// The fixed header fields a sender chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DatagramHeader {
    pub(crate) msg_type: MessageType,
    pub(crate) node_type: NodeType,
    pub(crate) dgm_id: u16,
    pub(crate) source_addr: SocketAddrV4,
}

/// A complete, unfragmented datagram with its user data borrowed.
#[derive(Debug)]
pub(crate) struct Datagram<'a> {
    pub(crate) header: DatagramHeader,
    pub(crate) source_name: NetbiosName,
    pub(crate) destination_name: NetbiosName,
    pub(crate) scope: Scope,
    pub(crate) user_data: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// DGM_LENGTH bounds the datagram: fewer bytes than it claims means the
    /// datagram was cut (nmbd's 576-byte buffer does that) and is refused;
    /// bytes beyond it are ignored, as link padding would be. (Samba ignores
    /// DGM_LENGTH altogether, so a sender that gets it wrong goes unnoticed
    /// there; we still refuse one that claims too much.)
    pub(crate) fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let msg_type = MessageType::from_wire(u8_at(buf, field::MSG_TYPE)?)?;
        let flags = u8_at(buf, field::FLAGS)?;
        let dgm_id = u16::from_be_bytes(bytes_at(buf, field::DGM_ID)?);
        let source_ip = Ipv4Addr::from(bytes_at::<4>(buf, field::SOURCE_IP)?);
        let source_port = u16::from_be_bytes(bytes_at(buf, field::SOURCE_PORT)?);
        let dgm_length = u16::from_be_bytes(bytes_at(buf, field::DGM_LENGTH)?);
        let packet_offset = u16::from_be_bytes(bytes_at(buf, field::PACKET_OFFSET)?);

        let more = flags & flag::MORE != 0;
        let first = flags & flag::FIRST != 0;
        if more || !first || packet_offset != 0 {
            return Err(DecodeError::Fragmented {
                dgm_id,
                more,
                first,
                packet_offset,
            });
        }

        let end = field::NAMES + usize::from(dgm_length);
        let body = buf.get(field::NAMES..end).ok_or(DecodeError::Truncated {
            need: end,
            have: buf.len(),
        })?;
        let (source_name, scope, rest) = NetbiosName::decode(body)?;
        let (destination_name, destination_scope, user_data) = NetbiosName::decode(rest)?;
        if !scope.eq_ignore_ascii_case(&destination_scope) {
            return Err(DecodeError::Malformed(
                "source and destination names are in different scopes",
            ));
        }
        Ok(Self {
            header: DatagramHeader {
                msg_type,
                node_type: NodeType::from_flags(flags),
                dgm_id,
                source_addr: SocketAddrV4::new(source_ip, source_port),
            },
            source_name,
            destination_name,
            scope,
            user_data,
        })
    }
}

/// Bytes before the user data: fixed header and both names.
pub(crate) fn header_len(scope: &Scope) -> usize {
    field::NAMES + 2 * scope.encoded_name_len()
}

/// Appends the header and the two names (source, destination) of an
/// unfragmented datagram whose user data, `user_data_len` bytes long,
/// the caller appends next.
pub(crate) fn emit(
    header: &DatagramHeader,
    names: [&NetbiosName; 2],
    scope: &Scope,
    user_data_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let dgm_length = wire_u16(
        header_len(scope) - field::NAMES + user_data_len,
        "NetBIOS datagram (DGM_LENGTH)",
    )?;
    out.push(header.msg_type as u8);
    out.push(flag::FIRST | ((header.node_type as u8) << flag::NODE_TYPE_SHIFT));
    out.extend_from_slice(&header.dgm_id.to_be_bytes());
    out.extend_from_slice(&header.source_addr.ip().octets());
    out.extend_from_slice(&header.source_addr.port().to_be_bytes());
    out.extend_from_slice(&dgm_length.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // PACKET_OFFSET: never fragmented
    for name in names {
        name.encode(scope, out);
    }
    Ok(())
}
