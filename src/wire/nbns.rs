//! The NetBIOS name service packet (RFC 1002 §4.2), big-endian, one UDP
//! datagram on port 137:
//!
//! ```text
//! 0 NAME_TRN_ID | 2 R, OPCODE, NM_FLAGS, RCODE | 4 QDCOUNT | 6 ANCOUNT |
//! 8 NSCOUNT | 10 ARCOUNT | 12 questions | answers | authority | additional
//! ```
//!
//! A question is a name, its type (NB or NBSTAT) and class IN; a resource
//! record adds a TTL and typed data: addresses (NB), the list of names a
//! node holds (NBSTAT), or nothing (NULL). One shape serves every packet
//! the service exchanges: NAME QUERY, REGISTRATION, RELEASE, REFRESH, their
//! responses, WACK and NODE STATUS; [`NamePacket`] keeps them all as plain
//! data, and the name service gives them their meaning.
//!
//! Parsing follows compression pointers for names (RFC 1002 §4.1; peers
//! point a record's name at the question's); emitting writes every name in
//! full, which every peer accepts. Reserved bits are ignored on parse and
//! sent as zero.

use std::net::Ipv4Addr;

use super::{DecodeError, EncodeError, NetbiosName, NodeType, Scope, bytes_at, u8_at, wire_u16};

/// UDP port of the NetBIOS name service.
pub const NETBIOS_NAME_PORT: u16 = 137;

/// Size of the fixed header.
const HEADER_LEN: usize = 12;
/// QUESTION_CLASS / RR_CLASS: Internet, the only class NetBIOS uses.
const CLASS_IN: u16 = 0x0001;
/// RR_TYPE of a record with no data (RFC 1002 §4.2.14's negative responses).
const TYPE_NULL: u16 = 0x000A;
const TYPE_NB: u16 = 0x0020;
const TYPE_NBSTAT: u16 = 0x0021;
/// Bytes of one NB_FLAGS + NB_ADDRESS entry.
const NB_ENTRY_LEN: usize = 6;
/// Bytes of one name in a node status: 15 name bytes, suffix, NAME_FLAGS.
const STATUS_NAME_LEN: usize = 18;

mod flag {
    pub(super) const RESPONSE: u16 = 0x8000;
    pub(super) const OPCODE_SHIFT: u16 = 11;
    pub(super) const OPCODE_MASK: u16 = 0xF;
    pub(super) const AUTHORITATIVE: u16 = 0x0400;
    pub(super) const TRUNCATED: u16 = 0x0200;
    pub(super) const RECURSION_DESIRED: u16 = 0x0100;
    pub(super) const RECURSION_AVAILABLE: u16 = 0x0080;
    pub(super) const BROADCAST: u16 = 0x0010;
    pub(super) const RCODE_MASK: u16 = 0x000F;
    /// NB_FLAGS and NAME_FLAGS: G, the name is a group name.
    pub(super) const GROUP: u16 = 0x8000;
    /// NB_FLAGS and NAME_FLAGS: ONT, the owner's node type, two bits.
    pub(super) const NODE_TYPE_SHIFT: u16 = 13;
    pub(super) const NODE_TYPE_MASK: u16 = 0b11;
    /// NAME_FLAGS of a node status: DRG, CNF, ACT, PRM.
    pub(super) const DEREGISTERING: u16 = 0x1000;
    pub(super) const CONFLICT: u16 = 0x0800;
    pub(super) const ACTIVE: u16 = 0x0400;
    pub(super) const PERMANENT: u16 = 0x0200;
}

/// RCODE values of responses (RFC 1002 §4.2.6 and following).
pub mod rcode {
    /// Success.
    pub const OK: u8 = 0;
    /// FMT_ERR: the request was malformed.
    pub const FORMAT_ERROR: u8 = 1;
    /// SRV_ERR: the server cannot serve it.
    pub const SERVER_ERROR: u8 = 2;
    /// NAM_ERR: nobody holds the name.
    pub const NAME_ERROR: u8 = 3;
    /// IMP_ERR: not implemented.
    pub const NOT_IMPLEMENTED: u8 = 4;
    /// RFS_ERR: refused.
    pub const REFUSED: u8 = 5;
    /// ACT_ERR: the name is held by another node (a defence).
    pub const ACTIVE: u8 = 6;
    /// CFT_ERR: a name conflict was detected.
    pub const CONFLICT: u8 = 7;
}

/// What a packet asks or answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// NAME QUERY and NODE STATUS (told apart by the question type).
    Query = 0,
    /// NAME REGISTRATION (and, with RD clear, NAME OVERWRITE DEMAND).
    Registration = 5,
    /// NAME RELEASE.
    Release = 6,
    /// WAIT FOR ACKNOWLEDGEMENT: a name server asks for patience.
    Wack = 7,
    /// NAME REFRESH, as RFC 1002 numbers it.
    Refresh = 8,
    /// NAME REFRESH as Windows and Samba also send it (RFC 1002 errata).
    RefreshAlt = 9,
    /// Microsoft's multi-homed NAME REGISTRATION.
    MultiHomedRegistration = 15,
}

impl Opcode {
    fn from_wire(value: u16) -> Result<Self, DecodeError> {
        Ok(match value {
            0 => Self::Query,
            5 => Self::Registration,
            6 => Self::Release,
            7 => Self::Wack,
            8 => Self::Refresh,
            9 => Self::RefreshAlt,
            15 => Self::MultiHomedRegistration,
            _ => {
                return Err(DecodeError::BadField {
                    field: "name service OPCODE",
                    value: value.into(),
                });
            }
        })
    }
}

/// The NM_FLAGS bits of the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeaderFlags {
    /// AA: the answer comes from the name's owner or its name server.
    pub authoritative: bool,
    /// TC: the packet was cut to fit a datagram.
    pub truncated: bool,
    /// RD: ask the name server to act (RFC 1002 sets it on registrations).
    pub recursion_desired: bool,
    /// RA: the responder is a name server that could act.
    pub recursion_available: bool,
    /// B: sent to the broadcast address.
    pub broadcast: bool,
}

/// What a question asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuestionType {
    /// The addresses holding a name.
    Nb,
    /// The names a node holds (NODE STATUS).
    NodeStatus,
}

/// One entry of the question section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: NetbiosName,
    pub scope: Scope,
    pub kind: QuestionType,
}

/// One address holding a name (NB_FLAGS + NB_ADDRESS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NbAddress {
    /// G: a group name, which many nodes may hold at once.
    pub group: bool,
    /// ONT: how the owner resolves names.
    pub node_type: NodeType,
    pub address: Ipv4Addr,
}

/// One name of a node status answer, with its NAME_FLAGS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusName {
    pub name: NetbiosName,
    pub group: bool,
    pub node_type: NodeType,
    /// DRG: being released.
    pub deregistering: bool,
    /// CNF: in conflict.
    pub conflict: bool,
    /// ACT: active (every name a node lists normally is).
    pub active: bool,
    /// PRM: the permanent node name.
    pub permanent: bool,
}

/// A node status answer: the names a node holds and its adapter
/// statistics, kept as sent (Windows fills only the unit id, the MAC).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub names: Vec<StatusName>,
    pub statistics: Vec<u8>,
}

/// A resource record's data, by RR_TYPE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordData {
    /// NB: the addresses holding the name (none in some negative answers).
    Addresses(Vec<NbAddress>),
    /// A WACK's data: a copy of the request's OPCODE and NM_FLAGS field.
    /// RFC 1002 §4.2.16 types the record NB; nmbd types it NULL
    /// (`null_type`), kept so that the packet re-emits as it came.
    Wack { copied: u16, null_type: bool },
    /// NBSTAT: a node status.
    NodeStatus(NodeStatus),
    /// NULL: no data.
    Null,
}

/// One resource record (answer, authority or additional section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: NetbiosName,
    pub scope: Scope,
    /// Seconds the answer stays true; zero in releases and status answers.
    pub ttl: u32,
    pub data: RecordData,
}

/// One name service packet as plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePacket {
    /// NAME_TRN_ID: a response carries its request's.
    pub transaction_id: u16,
    /// R: a response, not a request.
    pub response: bool,
    pub opcode: Opcode,
    pub flags: HeaderFlags,
    /// RCODE, 0 to 15 ([`rcode`]); zero in requests.
    pub rcode: u8,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl NamePacket {
    /// Decodes one UDP payload received on port 137. Bytes after the last
    /// record are ignored.
    pub fn parse(packet: &[u8]) -> Result<Self, DecodeError> {
        let transaction_id = u16::from_be_bytes(bytes_at(packet, 0)?);
        let bits = u16::from_be_bytes(bytes_at(packet, 2)?);
        let count = |at| bytes_at(packet, at).map(u16::from_be_bytes);
        let counts = [count(4)?, count(6)?, count(8)?, count(10)?];
        let opcode = Opcode::from_wire((bits >> flag::OPCODE_SHIFT) & flag::OPCODE_MASK)?;
        let mut at = HEADER_LEN;
        // Never reserve by a count the sender chose: each entry needs bytes
        // of the input, so the vectors grow no larger than the packet.
        let mut questions = Vec::new();
        for _ in 0..counts[0] {
            let (question, end) = parse_question(packet, at)?;
            questions.push(question);
            at = end;
        }
        let mut sections = [Vec::new(), Vec::new(), Vec::new()];
        for (section, &count) in sections.iter_mut().zip(&counts[1..]) {
            for _ in 0..count {
                let (record, end) = parse_record(packet, at, opcode)?;
                section.push(record);
                at = end;
            }
        }
        let [answers, authority, additional] = sections;
        Ok(Self {
            transaction_id,
            response: bits & flag::RESPONSE != 0,
            opcode,
            flags: HeaderFlags {
                authoritative: bits & flag::AUTHORITATIVE != 0,
                truncated: bits & flag::TRUNCATED != 0,
                recursion_desired: bits & flag::RECURSION_DESIRED != 0,
                recursion_available: bits & flag::RECURSION_AVAILABLE != 0,
                broadcast: bits & flag::BROADCAST != 0,
            },
            rcode: (bits & flag::RCODE_MASK) as u8,
            questions,
            answers,
            authority,
            additional,
        })
    }

    /// The OPCODE and NM_FLAGS field as the header carries it, without R
    /// and RCODE: what a WACK copies from the request it answers.
    pub fn opcode_and_flags(&self) -> u16 {
        let f = &self.flags;
        ((self.opcode as u16) << flag::OPCODE_SHIFT)
            | bit(f.authoritative, flag::AUTHORITATIVE)
            | bit(f.truncated, flag::TRUNCATED)
            | bit(f.recursion_desired, flag::RECURSION_DESIRED)
            | bit(f.recursion_available, flag::RECURSION_AVAILABLE)
            | bit(f.broadcast, flag::BROADCAST)
    }

    /// Encodes the packet as one UDP payload. Fails only for values the
    /// wire cannot carry: an RCODE above 15, more than 65535 entries in a
    /// section or bytes of data in a record, more than 255 status names.
    pub fn emit(&self) -> Result<Vec<u8>, EncodeError> {
        if self.rcode > flag::RCODE_MASK as u8 {
            return Err(EncodeError::TooLong {
                field: "RCODE",
                len: self.rcode.into(),
                max: flag::RCODE_MASK.into(),
            });
        }
        let mut out = Vec::with_capacity(HEADER_LEN + 64);
        out.extend_from_slice(&self.transaction_id.to_be_bytes());
        let bits =
            bit(self.response, flag::RESPONSE) | self.opcode_and_flags() | u16::from(self.rcode);
        out.extend_from_slice(&bits.to_be_bytes());
        for (len, what) in [
            (self.questions.len(), "QDCOUNT"),
            (self.answers.len(), "ANCOUNT"),
            (self.authority.len(), "NSCOUNT"),
            (self.additional.len(), "ARCOUNT"),
        ] {
            out.extend_from_slice(&wire_u16(len, what)?.to_be_bytes());
        }
        for question in &self.questions {
            question.name.encode(&question.scope, &mut out);
            let kind = match question.kind {
                QuestionType::Nb => TYPE_NB,
                QuestionType::NodeStatus => TYPE_NBSTAT,
            };
            out.extend_from_slice(&kind.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
        }
        for record in self
            .answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
        {
            emit_record(record, &mut out)?;
        }
        Ok(out)
    }
}

fn bit(set: bool, mask: u16) -> u16 {
    if set { mask } else { 0 }
}

fn parse_question(packet: &[u8], at: usize) -> Result<(Question, usize), DecodeError> {
    let (name, scope, end) = NetbiosName::decode_in_packet(packet, at)?;
    let kind = match u16::from_be_bytes(bytes_at(packet, end)?) {
        TYPE_NB => QuestionType::Nb,
        TYPE_NBSTAT => QuestionType::NodeStatus,
        other => {
            return Err(DecodeError::BadField {
                field: "QUESTION_TYPE",
                value: other.into(),
            });
        }
    };
    check_class(packet, end + 2, "QUESTION_CLASS")?;
    Ok((Question { name, scope, kind }, end + 4))
}

fn check_class(packet: &[u8], at: usize, field: &'static str) -> Result<(), DecodeError> {
    match u16::from_be_bytes(bytes_at(packet, at)?) {
        CLASS_IN => Ok(()),
        other => Err(DecodeError::BadField {
            field,
            value: other.into(),
        }),
    }
}

fn parse_record(packet: &[u8], at: usize, opcode: Opcode) -> Result<(Record, usize), DecodeError> {
    let (name, scope, end) = NetbiosName::decode_in_packet(packet, at)?;
    let rr_type = u16::from_be_bytes(bytes_at(packet, end)?);
    check_class(packet, end + 2, "RR_CLASS")?;
    let ttl = u32::from_be_bytes(bytes_at(packet, end + 4)?);
    let rdlength = usize::from(u16::from_be_bytes(bytes_at(packet, end + 8)?));
    let data_start = end + 10;
    let data_end = data_start + rdlength;
    let rdata = packet
        .get(data_start..data_end)
        .ok_or(DecodeError::Truncated {
            need: data_end,
            have: packet.len(),
        })?;
    let data = match rr_type {
        TYPE_NB | TYPE_NULL if opcode == Opcode::Wack && rdlength == 2 => RecordData::Wack {
            copied: u16::from_be_bytes(bytes_at(rdata, 0)?),
            null_type: rr_type == TYPE_NULL,
        },
        TYPE_NB => RecordData::Addresses(parse_addresses(rdata)?),
        TYPE_NBSTAT => RecordData::NodeStatus(parse_node_status(rdata)?),
        TYPE_NULL if rdlength == 0 => RecordData::Null,
        TYPE_NULL => {
            return Err(DecodeError::BadField {
                field: "RDLENGTH of a NULL record",
                value: rdlength as u32,
            });
        }
        other => {
            return Err(DecodeError::BadField {
                field: "RR_TYPE",
                value: other.into(),
            });
        }
    };
    Ok((
        Record {
            name,
            scope,
            ttl,
            data,
        },
        data_end,
    ))
}

fn node_type_of(flags: u16) -> NodeType {
    match (flags >> flag::NODE_TYPE_SHIFT) & flag::NODE_TYPE_MASK {
        0 => NodeType::B,
        1 => NodeType::P,
        2 => NodeType::M,
        _ => NodeType::H,
    }
}

fn parse_addresses(rdata: &[u8]) -> Result<Vec<NbAddress>, DecodeError> {
    let (entries, rest) = rdata.as_chunks::<NB_ENTRY_LEN>();
    if !rest.is_empty() {
        return Err(DecodeError::BadField {
            field: "RDLENGTH of an NB record (6 bytes per address)",
            value: rdata.len() as u32,
        });
    }
    Ok(entries
        .iter()
        .map(|&[f0, f1, a, b, c, d]| {
            let flags = u16::from_be_bytes([f0, f1]);
            NbAddress {
                group: flags & flag::GROUP != 0,
                node_type: node_type_of(flags),
                address: Ipv4Addr::new(a, b, c, d),
            }
        })
        .collect())
}

fn parse_node_status(rdata: &[u8]) -> Result<NodeStatus, DecodeError> {
    let count = usize::from(u8_at(rdata, 0)?);
    let names_end = 1 + count * STATUS_NAME_LEN;
    let names = rdata.get(1..names_end).ok_or(DecodeError::Truncated {
        need: names_end,
        have: rdata.len(),
    })?;
    let (entries, _) = names.as_chunks::<STATUS_NAME_LEN>();
    let names = entries
        .iter()
        .map(|entry| {
            let [bytes @ .., suffix, f0, f1] = *entry;
            let flags = u16::from_be_bytes([f0, f1]);
            StatusName {
                name: NetbiosName::from_raw(bytes, suffix),
                group: flags & flag::GROUP != 0,
                node_type: node_type_of(flags),
                deregistering: flags & flag::DEREGISTERING != 0,
                conflict: flags & flag::CONFLICT != 0,
                active: flags & flag::ACTIVE != 0,
                permanent: flags & flag::PERMANENT != 0,
            }
        })
        .collect();
    Ok(NodeStatus {
        names,
        statistics: rdata.get(names_end..).unwrap_or_default().to_vec(),
    })
}

fn name_flags(group: bool, node_type: NodeType) -> u16 {
    bit(group, flag::GROUP) | ((node_type as u16) << flag::NODE_TYPE_SHIFT)
}

fn emit_record(record: &Record, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    record.name.encode(&record.scope, out);
    let mut rdata = Vec::new();
    let rr_type = match &record.data {
        RecordData::Addresses(addresses) => {
            for a in addresses {
                rdata.extend_from_slice(&name_flags(a.group, a.node_type).to_be_bytes());
                rdata.extend_from_slice(&a.address.octets());
            }
            TYPE_NB
        }
        RecordData::Wack { copied, null_type } => {
            rdata.extend_from_slice(&copied.to_be_bytes());
            if *null_type { TYPE_NULL } else { TYPE_NB }
        }
        RecordData::NodeStatus(status) => {
            let count = u8::try_from(status.names.len()).map_err(|_| EncodeError::TooLong {
                field: "node status names",
                len: status.names.len(),
                max: u8::MAX.into(),
            })?;
            rdata.push(count);
            for n in &status.names {
                let flags = name_flags(n.group, n.node_type)
                    | bit(n.deregistering, flag::DEREGISTERING)
                    | bit(n.conflict, flag::CONFLICT)
                    | bit(n.active, flag::ACTIVE)
                    | bit(n.permanent, flag::PERMANENT);
                rdata.extend_from_slice(n.name.raw());
                rdata.push(n.name.suffix());
                rdata.extend_from_slice(&flags.to_be_bytes());
            }
            rdata.extend_from_slice(&status.statistics);
            TYPE_NBSTAT
        }
        RecordData::Null => TYPE_NULL,
    };
    out.extend_from_slice(&rr_type.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&record.ttl.to_be_bytes());
    out.extend_from_slice(&wire_u16(rdata.len(), "RDLENGTH")?.to_be_bytes());
    out.extend_from_slice(&rdata);
    Ok(())
}
