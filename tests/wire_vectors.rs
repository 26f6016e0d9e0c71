//! Known-good bytes through the wire codec: every datagram captured from
//! Samba (docs/golden-datagrams.txt) and the worked examples of
//! docs/wire-format.md §5 parse to the expected values and re-emit
//! byte for byte.

#[path = "data/golden.rs"]
mod golden;

use std::net::{Ipv4Addr, SocketAddrV4};

use mailslotfs::wire::{
    DecodeError, EncodeError, MailslotDatagram, MailslotPath, MessageType, NetbiosName, NodeType,
    Scope,
};

/// Where the SMB message starts in a datagram without scope: the 14-byte
/// header and two 34-byte names.
const SMB_START: usize = 82;

/// What each capture must decode to, from its `# id | ... | decoded` line.
struct Expected {
    id: &'static str,
    msg_type: MessageType,
    source: (&'static str, u8),
    destination: (&'static str, u8),
    mailslot: &'static str,
    priority: u16,
    data_len: usize,
    /// The payload's opcode bytes (browser: 1 byte, NETLOGON: u16).
    data_start: &'static [u8],
    data_end: &'static [u8],
}

const fn expect(
    id: &'static str,
    msg_type: MessageType,
    source: (&'static str, u8),
    destination: (&'static str, u8),
    mailslot: &'static str,
    data_len: usize,
    (data_start, data_end): (&'static [u8], &'static [u8]),
) -> Expected {
    Expected {
        id,
        msg_type,
        source,
        destination,
        mailslot,
        priority: 1,
        data_len,
        data_start,
        data_end,
    }
}

const GROUP: MessageType = MessageType::DirectGroup;
const UNIQUE: MessageType = MessageType::DirectUnique;
const BROWSE: &str = "\\MAILSLOT\\BROWSE";
/// Stands for `\x01\x02__MSBROWSE__\x02<01>`, which is not text.
const MSBROWSE: (&str, u8) = ("__MSBROWSE__", 0x01);
const NETLOGON_TRAILER: &[u8] = b"\x01\x00\x00\x00\xff\xff\xff\xff";

#[rustfmt::skip] // a table reads better one row per capture
const EXPECTED: &[Expected] = &[
    expect("nmbd-host-announcement", GROUP, ("MSLPDC", 0), ("MSLDOM", 0x1D), BROWSE, 53, (b"\x01\x00\x60\xea\x00\x00MSLPDC", b"mailslot interop pdc\0")),
    expect("nmbd-request-election", GROUP, ("MSLPDC", 0), ("MSLDOM", 0x1E), BROWSE, 21, (b"\x08", b"MSLPDC\0")),
    expect("nmbd-announcement-request", GROUP, ("MSLPDC", 0), ("MSLDOM", 0x1E), BROWSE, 9, (b"\x02", b"MSLPDC")),
    expect("nmbd-local-master-announcement", GROUP, ("MSLPDC", 0), ("MSLDOM", 0x1E), BROWSE, 53, (b"\x0f", b"mailslot interop pdc\0")),
    expect("nmbd-domain-announcement", GROUP, ("MSLPDC", 0), MSBROWSE, BROWSE, 39, (b"\x0c", b"MSLPDC\0")),
    expect("nmbd-netlogon-response-from-pdc", UNIQUE, ("MSLPDC", 0), ("CLIENTB", 0), "\\MAILSLOT\\NET\\GETDC573", 48, (b"\x0c\x00MSLPDC\0", NETLOGON_TRAILER)),
    expect("nmbd-sam-logon-response", UNIQUE, ("MSLPDC", 0), ("CLIENTB", 0), "\\MAILSLOT\\NET\\GETDC574", 54, (b"\x13\x00", NETLOGON_TRAILER)),
    expect("nmbd-get-backup-list-response", UNIQUE, ("MSLPDC", 0), ("CLIENTB", 0), BROWSE, 13, (b"\x0a\x01", b"MSLPDC\0")),
    expect("nmbd-peer-host-announcement", GROUP, ("MSLPEER", 0), ("MSLDOM", 0x1D), BROWSE, 54, (b"\x01", b"mailslot interop peer\0")),
    Expected {
        // Samba's DC-lookup client sends priority 0.
        priority: 0,
        ..expect("samba-net-dsgetdcname-sam-logon-request", GROUP, ("MSLPEER", 0), ("MSLDOM", 0x1C), "\\MAILSLOT\\NET\\NTLOGON", 81, (b"\x12\x00", b"\x0b\x00\x00\x01\xff\xff\xff\xff"))
    },
    expect("smbtorture-primary-query", UNIQUE, ("TORTURE_TEST", 0), ("MSLDOM", 0x1C), "\\MAILSLOT\\NET\\NETLOGON", 72, (b"\x07\x00TORTURE_TEST\0", NETLOGON_TRAILER)),
    expect("mslot-pdc-query", GROUP, ("CLIENTB", 0), ("MSLDOM", 0x1C), "\\MAILSLOT\\NET\\NETLOGON", 58, (b"\x07\x00CLIENTB\0\\MAILSLOT\\NET\\GETDC573\0", NETLOGON_TRAILER)),
    expect("mslot-samlogon", GROUP, ("CLIENTB", 0), ("MSLDOM", 0x1C), "\\MAILSLOT\\NET\\NTLOGON", 71, (b"\x12\x00", NETLOGON_TRAILER)),
    expect("mslot-backup-list", GROUP, ("CLIENTB", 0), ("MSLDOM", 0x1D), BROWSE, 6, (b"\x09\x04", b"\x00\x00")),
];

fn name(expected: (&str, u8)) -> NetbiosName {
    if expected == MSBROWSE {
        NetbiosName::MSBROWSE
    } else {
        NetbiosName::new(expected.0, expected.1).unwrap()
    }
}

#[test]
fn every_golden_datagram_is_covered() {
    let ids: Vec<_> = golden::all().iter().map(|golden| golden.id).collect();
    let expected: Vec<_> = EXPECTED.iter().map(|expected| expected.id).collect();
    assert_eq!(ids, expected);
}

#[test]
fn golden_datagrams_parse() {
    for golden in golden::all() {
        let expected = EXPECTED.iter().find(|e| e.id == golden.id).unwrap();
        let id = golden.id;
        let repr = MailslotDatagram::parse(&golden.bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(repr.msg_type, expected.msg_type, "{id}");
        assert_eq!(repr.source_name, name(expected.source), "{id}");
        assert_eq!(repr.destination_name, name(expected.destination), "{id}");
        assert!(repr.scope.is_empty(), "{id}");
        assert_eq!(repr.mailslot.as_str(), expected.mailslot, "{id}");
        assert_eq!(repr.priority, expected.priority, "{id}");
        assert_eq!(repr.data.len(), expected.data_len, "{id}");
        assert!(repr.data.starts_with(expected.data_start), "{id}");
        assert!(repr.data.ends_with(expected.data_end), "{id}");
        // The data is the tail of the datagram: nobody pads after it.
        assert!(golden.bytes.ends_with(&repr.data), "{id}");
        // Every capture is UDP 138 -> 138, header filled in truthfully.
        assert_eq!(repr.source_addr.port(), 138, "{id}");
        assert_eq!(repr.source_addr.ip().octets()[..3], [10, 99, 0], "{id}");
        let expected_node = if id.starts_with("smbtorture") {
            NodeType::H // source4's stack sends FLAGS 0x0E
        } else {
            NodeType::M // nmbd and the reference encoder send 0x0A
        };
        assert_eq!(repr.node_type, expected_node, "{id}");
        assert_eq!(
            repr.dgm_id,
            u16::from_be_bytes([golden.bytes[2], golden.bytes[3]]),
            "{id}"
        );
    }
}

#[test]
fn golden_datagrams_re_emit_byte_for_byte() {
    for golden in golden::all() {
        let id = golden.id;
        let repr = MailslotDatagram::parse(&golden.bytes).unwrap();
        let emitted = repr.emit().unwrap();
        assert_eq!(emitted.len(), repr.buffer_len(), "{id}");
        if id == "smbtorture-primary-query" {
            // Samba's source4 stack puts Timeout = 1000 ms (SMB offset 45)
            // in a field receivers ignore; we send 0 like nmbd and Windows'
            // browser, so only those four bytes may differ.
            let timeout = SMB_START + 45..SMB_START + 49;
            assert_eq!(golden.bytes[timeout.clone()], 1000u32.to_le_bytes());
            assert_eq!(emitted[timeout.clone()], [0; 4]);
            let differing: Vec<usize> = (0..emitted.len())
                .filter(|&at| emitted[at] != golden.bytes[at])
                .collect();
            // 1000 is e8 03 00 00: the two low bytes differ.
            assert_eq!(differing, [SMB_START + 45, SMB_START + 46], "{id}");
            continue;
        }
        assert_eq!(hex(&emitted), hex(&golden.bytes), "{id}");
    }
}

/// wire-format.md §5.1: `\\MSLDOM\mailslot\demo`, "hello\0", from CLIENTB.
const WORKED_EXAMPLE: &str = "
    11 0a 12 34 0a 63 00 02 00 8a 00 9e 00 00 20 45
    44 45 4d 45 4a 45 46 45 4f 46 45 45 43 43 41 43
    41 43 41 43 41 43 41 43 41 43 41 43 41 41 41 00
    20 45 4e 46 44 45 4d 45 45 45 50 45 4e 43 41 43
    41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 41
    41 00 ff 53 4d 42 25 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 11 00 00 06 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 06 00 54 00 03 00 01
    00 01 00 02 00 15 00 5c 4d 41 49 4c 53 4c 4f 54
    5c 44 45 4d 4f 00 68 65 6c 6c 6f 00";

fn worked_example_repr() -> MailslotDatagram {
    MailslotDatagram {
        msg_type: MessageType::DirectGroup,
        node_type: NodeType::M,
        dgm_id: 0x1234,
        source_addr: SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 2), 138),
        source_name: NetbiosName::new("clientb", 0).unwrap(),
        destination_name: NetbiosName::new("MSLDOM", 0).unwrap(),
        scope: Scope::default(),
        mailslot: MailslotPath::from_relative("DEMO").unwrap(),
        priority: 1,
        data: b"hello\0".to_vec(),
    }
}

#[test]
fn worked_example_5_1_emits_and_parses() {
    let bytes = golden::hex(WORKED_EXAMPLE);
    assert_eq!(bytes.len(), 172);
    let repr = worked_example_repr();
    assert_eq!(repr.buffer_len(), 172);
    assert_eq!(hex(&repr.emit().unwrap()), hex(&bytes));
    assert_eq!(MailslotDatagram::parse(&bytes).unwrap(), repr);
}

#[test]
fn worked_example_5_1_unicast_variant() {
    let repr = MailslotDatagram {
        msg_type: MessageType::DirectUnique,
        destination_name: NetbiosName::new("MSLPDC", 0).unwrap(),
        data: b"hi".to_vec(),
        ..worked_example_repr()
    };
    let bytes = repr.emit().unwrap();
    assert_eq!(bytes[0], 0x10);
    let destination =
        golden::hex("20 454e4644454d464145454544 434143414341434143414341434143414341 4141 00");
    assert_eq!(bytes[48..SMB_START], destination[..]);
    assert_eq!(MailslotDatagram::parse(&bytes).unwrap(), repr);
}

#[test]
fn section_5_2_netlogon_reply_fields() {
    // §5.2 shows this reply (with another DGM_ID) field by field.
    let bytes = golden::by_id("nmbd-netlogon-response-from-pdc");
    assert_eq!(bytes.len(), 222);
    assert_eq!(bytes[10..14], [0x00, 0xd0, 0x00, 0x00]); // DGM_LENGTH 208, offset 0
    let smb = &bytes[SMB_START..];
    assert_eq!(smb[55..59], [0x30, 0x00, 0x5c, 0x00]); // DataCount 48, DataOffset 92
    assert_eq!(smb[67..69], [0x47, 0x00]); // ByteCount 71
    let repr = MailslotDatagram::parse(&bytes).unwrap();
    assert_eq!(repr.source_addr, "10.99.0.1:138".parse().unwrap());
    assert_eq!(repr.mailslot.relative(), "NET\\GETDC573");
    assert_eq!(repr.data[..], smb[92..]);
}

/// [MS-MAIL] §4's frame differs from Samba's in fields receivers ignore and
/// in padding the data to a 4-byte boundary; it must parse to the same value.
#[test]
fn windows_style_padded_frame_parses_like_ours() {
    let repr = MailslotDatagram {
        mailslot: MailslotPath::new("\\MAILSLOT\\test1\\sample_mailslot").unwrap(),
        ..worked_example_repr()
    };
    let mut bytes = repr.emit().unwrap();
    let name_end = 69 + repr.mailslot.as_str().len() + 1;
    assert_eq!(name_end, 101);
    bytes.splice(SMB_START + name_end..SMB_START + name_end, [0; 3]);
    let dgm_length = u16::try_from(bytes.len() - 14).unwrap();
    bytes[10..12].copy_from_slice(&dgm_length.to_be_bytes());
    let smb = &mut bytes[SMB_START..];
    smb[9] = 0x18; // Flags
    smb[10..12].copy_from_slice(&0x0004u16.to_le_bytes()); // Flags2
    smb[26..28].copy_from_slice(&0xFEFFu16.to_le_bytes()); // PIDLow
    smb[37..39].copy_from_slice(&2u16.to_le_bytes()); // MaxParameterCount
    smb[43..45].copy_from_slice(&2u16.to_le_bytes()); // Flags: no response
    smb[45..49].copy_from_slice(&1000u32.to_le_bytes()); // Timeout
    smb[53..55].copy_from_slice(&104u16.to_le_bytes()); // ParameterOffset
    smb[57..59].copy_from_slice(&104u16.to_le_bytes()); // DataOffset
    let byte_count = u16::from_le_bytes([smb[67], smb[68]]) + 3;
    smb[67..69].copy_from_slice(&byte_count.to_le_bytes());
    assert_eq!(MailslotDatagram::parse(&bytes).unwrap(), repr);
}

#[test]
fn scoped_names_carry_the_scope_labels() {
    let repr = MailslotDatagram {
        scope: Scope::new("corp.example").unwrap(),
        ..worked_example_repr()
    };
    let bytes = repr.emit().unwrap();
    let scoped_name_len = 34 + 13;
    assert_eq!(bytes.len(), 172 + 2 * 13);
    assert_eq!(
        &bytes[14 + 33..14 + scoped_name_len],
        b"\x04corp\x07example\x00"
    );
    assert_eq!(
        u16::from_be_bytes([bytes[10], bytes[11]]),
        u16::try_from(bytes.len() - 14).unwrap()
    );
    assert_eq!(MailslotDatagram::parse(&bytes).unwrap(), repr);
}

#[test]
fn mailslot_paths_compare_without_case_but_keep_it() {
    // nmbd replies to a reply slot verbatim, lower case included.
    let path = MailslotPath::new("\\mailslot\\net\\getdc99").unwrap();
    assert_eq!(path.as_str(), "\\mailslot\\net\\getdc99");
    assert_eq!(path.relative(), "net\\getdc99");
    assert!(path.relative_eq_ignore_ascii_case("NET\\GETDC99"));
    assert!(!path.relative_eq_ignore_ascii_case("NET\\GETDC9"));
    assert_eq!(
        MailslotPath::from_relative("a\\b").unwrap().as_str(),
        "\\MAILSLOT\\a\\b"
    );
    assert_eq!(
        MailslotPath::new("\\PIPE\\LANMAN"),
        Err(EncodeError::NotAMailslotPath)
    );
    assert_eq!(
        MailslotPath::from_relative(""),
        Err(EncodeError::Empty("mailslot name"))
    );
    assert!(matches!(
        MailslotPath::from_relative("caf\u{e9}"),
        Err(EncodeError::BadCharacter { byte: 0xC3, .. })
    ));
}

#[test]
fn destination_matching_ignores_case() {
    let bytes = golden::by_id("mslot-pdc-query");
    let repr = MailslotDatagram::parse(&bytes).unwrap();
    let ours = NetbiosName::from_raw(*b"msldom         ", 0x1C);
    assert!(repr.destination_name.eq_ignore_ascii_case(&ours));
    assert_eq!(repr.destination_name.to_string(), "MSLDOM<1c>");
    assert_eq!(repr.destination_name.trimmed(), b"MSLDOM");
}

#[test]
fn errors_display_what_went_wrong() {
    let cut = MailslotDatagram::parse(&golden::by_id("mslot-backup-list")[..100]).unwrap_err();
    assert_eq!(
        cut,
        DecodeError::Truncated {
            need: 174,
            have: 100
        }
    );
    assert_eq!(cut.to_string(), "truncated: need 174 bytes, have 100");
    let mut bytes = golden::by_id("mslot-backup-list");
    bytes[0] = 0x13;
    assert_eq!(
        MailslotDatagram::parse(&bytes).unwrap_err().to_string(),
        "unsupported: DATAGRAM ERROR message (0x13)"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
