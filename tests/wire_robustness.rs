//! Hostile and random input through the wire codec: truncated, mutated
//! and lying datagrams give errors, never panics, and anything that does
//! parse survives emit-then-parse; random values survive the same trip.
//!
//! `WIRE_FUZZ_CASES=5000000 cargo test --release --test wire_robustness`
//! runs a long mutation campaign; `WIRE_FUZZ_SEED` replays one.

#[path = "data/golden.rs"]
mod golden;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::panic;

use mailslotfs::wire::{
    DecodeError, EncodeError, MailslotDatagram, MailslotPath, MessageType, NetbiosName, NodeType,
    Scope,
};

const SMB_START: usize = 82;
const DEFAULT_FUZZ_CASES: usize = 200_000;
const DEFAULT_SEED: u64 = 0x6d61_696c_736c_6f74; // "mailslot"

/// xorshift64: deterministic, dependency-free, good enough to steer mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1)) // zero is xorshift's only fixed point
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform enough in `0..n`; `n` must be nonzero.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    let seed = env_or("WIRE_FUZZ_SEED", DEFAULT_SEED);
    // Captured by the test harness and shown only when the test fails.
    println!("seed: WIRE_FUZZ_SEED={seed}");
    seed
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Parses without letting a panic escape, so the failure names the input.
fn parse_or_report(input: &[u8], context: &str) -> Result<MailslotDatagram, DecodeError> {
    panic::catch_unwind(|| MailslotDatagram::parse(input))
        .unwrap_or_else(|_| panic!("parse panicked ({context}) on {}", hex(input)))
}

/// What must hold for any input that parses: the value re-emits, and the
/// re-emitted bytes parse back to the same value.
fn assert_round_trips(repr: &MailslotDatagram, input: &[u8], context: &str) {
    assert!(repr.data.len() < input.len(), "{context}");
    let emitted = repr
        .emit()
        .unwrap_or_else(|e| panic!("{context}: parsed value does not emit: {e}"));
    assert_eq!(emitted.len(), repr.buffer_len(), "{context}");
    assert_eq!(
        MailslotDatagram::parse(&emitted).as_ref(),
        Ok(repr),
        "{context}: input {}",
        hex(input)
    );
}

#[test]
fn every_truncation_of_every_golden_datagram_is_truncated() {
    for golden in golden::all() {
        for len in 0..golden.bytes.len() {
            let prefix = &golden.bytes[..len];
            let result = parse_or_report(prefix, golden.id);
            assert!(
                matches!(result, Err(DecodeError::Truncated { .. })),
                "{} cut to {len} bytes: {result:?}",
                golden.id
            );
        }
    }
}

/// Byte offsets of the length and count fields in an unscoped datagram,
/// with their width and byte order: the fields a liar would change.
const LENGTH_FIELDS: &[(usize, Width)] = &[
    (10, Width::U16Be),             // DGM_LENGTH
    (12, Width::U16Be),             // PACKET_OFFSET
    (14, Width::U8),                // source name length
    (48, Width::U8),                // destination name length
    (SMB_START + 32, Width::U8),    // WordCount
    (SMB_START + 35, Width::U16Le), // TotalDataCount
    (SMB_START + 55, Width::U16Le), // DataCount
    (SMB_START + 57, Width::U16Le), // DataOffset
    (SMB_START + 59, Width::U8),    // SetupCount
    (SMB_START + 67, Width::U16Le), // ByteCount
];

#[derive(Clone, Copy)]
enum Width {
    U8,
    U16Be,
    U16Le,
}

fn read_field(input: &[u8], at: usize, width: Width) -> Option<u16> {
    Some(match width {
        Width::U8 => (*input.get(at)?).into(),
        Width::U16Be => u16::from_be_bytes([*input.get(at)?, *input.get(at + 1)?]),
        Width::U16Le => u16::from_le_bytes([*input.get(at)?, *input.get(at + 1)?]),
    })
}

fn write_field(input: &mut [u8], at: usize, width: Width, value: u16) {
    let bytes = match width {
        Width::U8 => vec![value as u8],
        Width::U16Be => value.to_be_bytes().to_vec(),
        Width::U16Le => value.to_le_bytes().to_vec(),
    };
    if let Some(field) = input.get_mut(at..at + bytes.len()) {
        field.copy_from_slice(&bytes);
    }
}

/// Changes `input` in one of the ways a broken or hostile sender would.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    if input.is_empty() {
        input.push(rng.byte());
        return;
    }
    let at = rng.below(input.len());
    match rng.below(8) {
        0 => input[at] ^= 1 << rng.below(8),
        1 => input[at] = *rng.pick(&[0x00, 0x01, 0x20, 0x41, 0x50, 0x51, 0x7f, 0xc0, 0xff]),
        2 => input[at] = rng.byte(),
        3 => {
            // A length field lie: near the truth, at a boundary, or random.
            let &(at, width) = rng.pick(LENGTH_FIELDS);
            let Some(truth) = read_field(input, at, width) else {
                return;
            };
            let delta = rng.below(8) as u16;
            let random = rng.next() as u16;
            let lie = *rng.pick(&[
                0,
                1,
                u16::MAX,
                0x8000,
                truth.wrapping_add(delta),
                truth.wrapping_sub(delta),
                input.len() as u16,
                random,
            ]);
            write_field(input, at, width, lie);
        }
        4 => {
            // Splice: a run of bytes from another datagram over this one.
            let donor = rng.pick(corpus);
            let from = rng.below(donor.len());
            let len = rng.below(donor.len() - from) + 1;
            let end = (at + len).min(input.len());
            input.splice(at..end, donor[from..from + len].iter().copied());
        }
        5 => input.truncate(at),
        6 => {
            let len = rng.below(8) + 1;
            let junk = rng.bytes(len);
            input.splice(at..at, junk);
        }
        _ => {
            let end = (at + rng.below(8) + 1).min(input.len());
            input.drain(at..end);
        }
    }
}

/// Which kinds of error the campaign produced, to show it reaches them all.
#[derive(Default, Debug)]
struct Outcomes {
    parsed: usize,
    truncated: usize,
    bad_field: usize,
    malformed: usize,
    unsupported: usize,
    fragmented: usize,
}

impl Outcomes {
    fn count(&mut self, result: &Result<MailslotDatagram, DecodeError>) {
        let counter = match result {
            Ok(_) => &mut self.parsed,
            Err(DecodeError::Truncated { .. }) => &mut self.truncated,
            Err(DecodeError::BadField { .. }) => &mut self.bad_field,
            Err(DecodeError::Malformed(_)) => &mut self.malformed,
            Err(DecodeError::Unsupported(_)) => &mut self.unsupported,
            Err(DecodeError::Fragmented { .. }) => &mut self.fragmented,
        };
        *counter += 1;
    }
}

/// Seeds for mutation: the captures plus frames the captures lack (a
/// scope, padding before the data).
fn corpus() -> Vec<Vec<u8>> {
    let mut corpus: Vec<Vec<u8>> = golden::all().into_iter().map(|g| g.bytes).collect();
    let mut rng = Rng::new(1);
    for _ in 0..4 {
        let mut repr = random_repr(&mut rng);
        repr.scope = Scope::new("corp.example").unwrap();
        repr.data.truncate(100);
        corpus.push(repr.emit().unwrap());
    }
    let mut padded = golden::by_id("mslot-backup-list");
    padded.splice(SMB_START + 86..SMB_START + 86, [0, 0]);
    let dgm_length = (padded.len() - 14) as u16;
    write_field(&mut padded, 10, Width::U16Be, dgm_length);
    write_field(&mut padded, SMB_START + 57, Width::U16Le, 88);
    write_field(&mut padded, SMB_START + 67, Width::U16Le, 25);
    assert!(MailslotDatagram::parse(&padded).is_ok());
    corpus.push(padded);
    corpus
}

#[test]
fn mutated_datagrams_never_panic_and_what_parses_round_trips() {
    let seed = seed();
    let cases = env_or("WIRE_FUZZ_CASES", DEFAULT_FUZZ_CASES);
    let corpus = corpus();
    let mut rng = Rng::new(seed);
    let mut outcomes = Outcomes::default();
    for case in 0..cases {
        let mut input = rng.pick(&corpus).clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut rng, &mut input, &corpus);
        }
        let context = format!("seed {seed}, case {case}");
        let result = parse_or_report(&input, &context);
        outcomes.count(&result);
        if let Ok(repr) = &result {
            assert_round_trips(repr, &input, &context);
        }
    }
    println!("{cases} cases: {outcomes:?}");
    // A campaign that only ever hit one check would prove little.
    if cases >= DEFAULT_FUZZ_CASES {
        let Outcomes {
            parsed,
            truncated,
            bad_field,
            malformed,
            unsupported,
            fragmented,
        } = outcomes;
        for (kind, count) in [
            ("parsed", parsed),
            ("truncated", truncated),
            ("bad field", bad_field),
            ("malformed", malformed),
            ("unsupported", unsupported),
            ("fragmented", fragmented),
        ] {
            assert!(count >= 20, "only {count} {kind} outcomes: {outcomes:?}");
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0x5a5a);
    for case in 0..env_or("WIRE_FUZZ_CASES", DEFAULT_FUZZ_CASES) / 10 {
        let len = rng.below(300);
        let mut input = rng.bytes(len);
        // A plausible first byte gets past the type check more often.
        if let Some(first) = input.first_mut() {
            *first = 0x10 + *first % 8;
        }
        let _ = parse_or_report(&input, &format!("seed {seed}, case {case}"));
    }
}

fn random_text(rng: &mut Rng, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| char::from(*rng.pick(alphabet))).collect()
}

fn random_name(rng: &mut Rng) -> NetbiosName {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz0123456789-_!$%&'(){}^~ .";
    match rng.below(8) {
        0 => NetbiosName::new("*", rng.byte()).unwrap(),
        1 => NetbiosName::from_raw(rng.bytes(15).try_into().unwrap(), rng.byte()),
        _ => loop {
            let len = rng.below(15) + 1;
            if let Ok(name) = NetbiosName::new(&random_text(rng, ALPHABET, len), rng.byte()) {
                break name;
            }
        },
    }
}

fn random_scope(rng: &mut Rng) -> Scope {
    if rng.one_in(2) {
        return Scope::default();
    }
    let labels: Vec<String> = (0..rng.below(4) + 1)
        .map(|_| {
            let len = rng.below(63) + 1;
            random_text(rng, b"abcdefghijklmnopqrstuvwxyzABCZ0123456789-_", len)
        })
        .collect();
    // Four long labels can exceed the name length limit: then use none.
    Scope::new(&labels.join(".")).unwrap_or_default()
}

fn random_repr(rng: &mut Rng) -> MailslotDatagram {
    let relative_len = rng.below(40) + 1;
    let relative = random_text(
        rng,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefz0123456789\\_-. $",
        relative_len,
    );
    let mailslot = if rng.one_in(4) {
        MailslotPath::new(&format!("\\mailslot\\{relative}")).unwrap()
    } else {
        MailslotPath::from_relative(&relative).unwrap()
    };
    let data_len = if rng.one_in(16) {
        rng.below(4000)
    } else {
        rng.below(MAX_DATA_IN_TESTS)
    };
    MailslotDatagram {
        msg_type: *rng.pick(&[
            MessageType::DirectUnique,
            MessageType::DirectGroup,
            MessageType::Broadcast,
        ]),
        node_type: *rng.pick(&[NodeType::B, NodeType::P, NodeType::M, NodeType::H]),
        dgm_id: rng.next() as u16,
        source_addr: SocketAddrV4::new(Ipv4Addr::from(rng.next() as u32), rng.next() as u16),
        source_name: random_name(rng),
        destination_name: random_name(rng),
        scope: random_scope(rng),
        mailslot,
        priority: rng.next() as u16,
        data: rng.bytes(data_len),
    }
}

/// Somewhat above the 424-byte network limit, to cover the boundary.
const MAX_DATA_IN_TESTS: usize = 600;

#[test]
fn random_values_survive_emit_then_parse() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0xa5a5);
    for case in 0..env_or("WIRE_FUZZ_CASES", DEFAULT_FUZZ_CASES) / 10 {
        let repr = random_repr(&mut rng);
        let bytes = repr.emit().unwrap();
        let context = format!("seed {seed}, case {case}: {repr:?}");
        assert_eq!(bytes.len(), repr.buffer_len(), "{context}");
        let dgm_length = u16::from_be_bytes([bytes[10], bytes[11]]);
        assert_eq!(usize::from(dgm_length), bytes.len() - 14, "{context}");
        if repr.scope.is_empty() {
            // wire-format.md §0: UDP payload = 151 + strlen(name) + 1 + len(data).
            let expected = 151 + repr.mailslot.as_str().len() + 1 + repr.data.len();
            assert_eq!(bytes.len(), expected, "{context}");
        }
        assert_eq!(
            MailslotDatagram::parse(&bytes).as_ref(),
            Ok(&repr),
            "{context}"
        );
    }
}

// ---- Specific lies, each with the error it must give ----------------------

fn backup_list() -> Vec<u8> {
    golden::by_id("mslot-backup-list")
}

fn parse_with(change: impl FnOnce(&mut Vec<u8>)) -> Result<MailslotDatagram, DecodeError> {
    let mut bytes = backup_list();
    change(&mut bytes);
    MailslotDatagram::parse(&bytes)
}

fn smb_u16(at: usize, value: u16) -> impl FnOnce(&mut Vec<u8>) {
    move |bytes| write_field(bytes, SMB_START + at, Width::U16Le, value)
}

#[test]
fn dgm_length_must_not_claim_more_than_there_is() {
    let len = backup_list().len();
    assert_eq!(
        parse_with(|b| write_field(b, 10, Width::U16Be, (len - 13) as u16)),
        Err(DecodeError::Truncated {
            need: len + 1,
            have: len
        })
    );
    // One byte less cuts the SMB message short of its ByteCount.
    assert_eq!(
        parse_with(|b| write_field(b, 10, Width::U16Be, (len - 15) as u16)),
        Err(DecodeError::Truncated {
            need: 69 + 23,
            have: len - 1 - SMB_START
        })
    );
}

#[test]
fn bytes_after_dgm_length_are_ignored() {
    let expected = MailslotDatagram::parse(&backup_list()).unwrap();
    assert_eq!(parse_with(|b| b.extend_from_slice(b"junk")), Ok(expected));
}

#[test]
fn fragments_are_reported_for_counting() {
    let fragment = |flags: u8, offset: u16| {
        parse_with(|b| {
            b[1] = flags;
            write_field(b, 12, Width::U16Be, offset);
        })
    };
    let dgm_id = 0x1660;
    assert_eq!(
        fragment(0x0B, 0),
        Err(DecodeError::Fragmented {
            dgm_id,
            more: true,
            first: true,
            packet_offset: 0
        })
    );
    assert_eq!(
        fragment(0x08, 0),
        Err(DecodeError::Fragmented {
            dgm_id,
            more: false,
            first: false,
            packet_offset: 0
        })
    );
    assert_eq!(
        fragment(0x0A, 40),
        Err(DecodeError::Fragmented {
            dgm_id,
            more: false,
            first: true,
            packet_offset: 40
        })
    );
    // Node type and reserved bits do not matter.
    assert!(fragment(0xF2, 0).is_ok());
}

#[test]
fn only_data_carrying_message_types_are_accepted() {
    for msg_type in 0x13..=0x16 {
        assert!(matches!(
            parse_with(|b| b[0] = msg_type),
            Err(DecodeError::Unsupported(_))
        ));
    }
    for msg_type in [0x00, 0x0F, 0x17, 0xFF] {
        assert_eq!(
            parse_with(|b| b[0] = msg_type),
            Err(DecodeError::BadField {
                field: "MSG_TYPE",
                value: msg_type.into()
            })
        );
    }
    assert_eq!(
        parse_with(|b| b[0] = 0x12).unwrap().msg_type,
        MessageType::Broadcast
    );
}

#[test]
fn names_in_different_scopes_are_refused() {
    let mut repr = MailslotDatagram::parse(&backup_list()).unwrap();
    repr.scope = Scope::new("abc").unwrap();
    let mut bytes = repr.emit().unwrap();
    // The destination name's scope label starts at 14 + 38 + 1 + 33.
    bytes[14 + 38 + 1 + 33..][..3].copy_from_slice(b"xyz");
    assert!(matches!(
        MailslotDatagram::parse(&bytes),
        Err(DecodeError::Malformed(_))
    ));
    bytes[14 + 38 + 1 + 33..][..3].copy_from_slice(b"ABC");
    assert_eq!(MailslotDatagram::parse(&bytes), Ok(repr));
}

#[test]
fn data_offset_must_point_past_the_name_and_stay_inside() {
    // Name "\MAILSLOT\BROWSE\0" ends at SMB offset 86.
    for offset in [0, 32, 69, 85] {
        assert!(matches!(
            parse_with(smb_u16(57, offset)),
            Err(DecodeError::BadField {
                field: "DataOffset (overlaps the SMB header or mailslot name)",
                ..
            })
        ));
    }
    for offset in [87, 200, u16::MAX] {
        assert!(matches!(
            parse_with(smb_u16(57, offset)),
            Err(DecodeError::BadField {
                field: "DataOffset + DataCount (beyond ByteCount)",
                ..
            })
        ));
    }
    let data_count_lie = parse_with(|b| {
        smb_u16(55, 7)(b);
        smb_u16(35, 7)(b);
    });
    assert!(matches!(data_count_lie, Err(DecodeError::BadField { .. })));
    assert!(matches!(
        parse_with(smb_u16(35, 5)),
        Err(DecodeError::BadField {
            field: "TotalDataCount (differs from DataCount)",
            value: 5
        })
    ));
}

#[test]
fn byte_count_must_fit_and_hold_the_name() {
    assert!(matches!(
        parse_with(smb_u16(67, 24)),
        Err(DecodeError::Truncated { .. })
    ));
    assert_eq!(
        parse_with(smb_u16(67, 16)),
        Err(DecodeError::Malformed(
            "mailslot name not NUL-terminated within ByteCount"
        ))
    );
    // Covering the name but not the data is a DataCount lie.
    assert!(matches!(
        parse_with(smb_u16(67, 17)),
        Err(DecodeError::BadField { .. })
    ));
}

#[test]
fn smb_fields_receivers_must_check() {
    let cases: [(usize, u8, DecodeError); 6] = [
        (
            0,
            0xFE,
            DecodeError::BadField {
                field: "SMB protocol id",
                value: 0xFE53_4D42,
            },
        ),
        (
            4,
            0x32,
            DecodeError::BadField {
                field: "SMB command",
                value: 0x32,
            },
        ),
        (
            32,
            16,
            DecodeError::BadField {
                field: "SMB WordCount",
                value: 16,
            },
        ),
        (
            59,
            2,
            DecodeError::BadField {
                field: "transaction SetupCount",
                value: 2,
            },
        ),
        (
            61,
            2,
            DecodeError::BadField {
                field: "mailslot opcode",
                value: 2,
            },
        ),
        (
            65,
            3,
            DecodeError::BadField {
                field: "mailslot class",
                value: 3,
            },
        ),
    ];
    for (at, value, error) in cases {
        assert_eq!(parse_with(|b| b[SMB_START + at] = value), Err(error));
    }
    assert!(matches!(
        parse_with(|b| b[SMB_START + 65] = 1),
        Err(DecodeError::Unsupported(_))
    ));
    // Extra words move the byte block; the name is then not where it was.
    assert!(parse_with(|b| b[SMB_START + 32] = 18).is_err());
}

#[test]
fn mailslot_names_must_be_mailslot_paths() {
    // "\MAILSLOT\BROWSE" starts at SMB offset 69.
    assert!(matches!(
        parse_with(|b| b[SMB_START + 70..SMB_START + 74].copy_from_slice(b"PIPE")),
        Err(DecodeError::Malformed(_))
    ));
    assert_eq!(
        parse_with(|b| b[SMB_START + 80] = 0x07),
        Err(DecodeError::BadField {
            field: "mailslot name character",
            value: 7
        })
    );
    let lower = parse_with(|b| b[SMB_START + 70..SMB_START + 78].copy_from_slice(b"mailslot"));
    assert!(
        lower
            .unwrap()
            .mailslot
            .relative_eq_ignore_ascii_case("browse")
    );
}

#[test]
fn emit_refuses_what_the_length_fields_cannot_say() {
    let mut repr = MailslotDatagram::parse(&backup_list()).unwrap();
    repr.data = vec![0; usize::from(u16::MAX)];
    assert!(matches!(
        repr.emit(),
        Err(EncodeError::TooLong { max: 65535, .. })
    ));
    // The largest datagram that fits still round-trips.
    let overhead = repr.buffer_len() - repr.data.len();
    repr.data.truncate(usize::from(u16::MAX) + 14 - overhead);
    let bytes = repr.emit().unwrap();
    assert_eq!(bytes.len(), usize::from(u16::MAX) + 14);
    assert_eq!(MailslotDatagram::parse(&bytes), Ok(repr));
}
