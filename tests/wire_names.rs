//! The name-service codec against real peers' bytes: every packet Samba's
//! nmbd and nmblookup sent in a namespace capture (tests/data/golden-names.txt)
//! parses to what tshark said it was, re-emits to bytes that parse back
//! equal (and byte for byte where the peer wrote names in full), and no
//! truncation or mutation of them panics.
//!
//! `NAMES_FUZZ_CASES=2000000 cargo test --release --test wire_names` runs a
//! longer mutation campaign.

#[path = "data/golden.rs"]
#[allow(dead_code)]
mod golden;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use mailslotfs::bridge::names::{NameConfig, NameService};
use mailslotfs::wire::{
    DecodeError, NamePacket, NbAddress, NetbiosName, NodeType, Opcode, QuestionType, RecordData,
    Scope, rcode,
};

const FILE: &str = include_str!("data/golden-names.txt");

fn captured(id: &str) -> Vec<u8> {
    golden::parse(FILE)
        .into_iter()
        .find(|g| g.id == id)
        .unwrap_or_else(|| panic!("no capture {id}"))
        .bytes
}

fn parsed(id: &str) -> NamePacket {
    NamePacket::parse(&captured(id)).unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn name(text: &str, suffix: u8) -> NetbiosName {
    NetbiosName::new(text, suffix).unwrap()
}

fn addresses(packet: &NamePacket, section: &str) -> Vec<NbAddress> {
    let records = match section {
        "answers" => &packet.answers,
        _ => &packet.additional,
    };
    match &records[0].data {
        RecordData::Addresses(a) => a.clone(),
        other => panic!("not addresses: {other:?}"),
    }
}

const NMBD: Ipv4Addr = Ipv4Addr::new(10, 213, 250, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 213, 250, 3);

#[test]
fn every_capture_parses_and_round_trips() {
    let all = golden::parse(FILE);
    assert_eq!(all.len(), 16);
    for g in all {
        let packet = NamePacket::parse(&g.bytes).unwrap_or_else(|e| panic!("{}: {e}", g.id));
        let emitted = packet.emit().unwrap();
        assert_eq!(NamePacket::parse(&emitted), Ok(packet), "{}", g.id);
        // Samba points a request's record name back at its question (C0 0C);
        // we write names in full, so only pointer-free packets match exactly.
        if !g.bytes.windows(2).any(|w| w == [0xC0, 0x0C]) {
            assert_eq!(emitted, g.bytes, "{}", g.id);
        }
    }
}

#[test]
fn broadcast_registration_follows_the_pointer_to_the_question() {
    let p = parsed("nmbd-registration-unique");
    assert_eq!(
        (p.opcode, p.response, p.rcode),
        (Opcode::Registration, false, 0)
    );
    assert!(p.flags.broadcast && p.flags.recursion_desired);
    assert_eq!(p.questions.len(), 1);
    assert_eq!(p.questions[0].name, name("MSLPDC", 0));
    assert_eq!(p.questions[0].kind, QuestionType::Nb);
    let record = &p.additional[0];
    assert_eq!(record.name, name("MSLPDC", 0), "via the C0 0C pointer");
    assert_eq!(record.ttl, 0);
    let want = NbAddress {
        group: false,
        node_type: NodeType::H,
        address: NMBD,
    };
    assert_eq!(addresses(&p, "additional"), [want]);
    let group = parsed("nmbd-registration-group");
    assert!(addresses(&group, "additional")[0].group);
    assert_eq!(group.questions[0].name, name("MSLDOM", 0));
}

#[test]
fn queries_and_their_answers() {
    let q = parsed("nmblookup-broadcast-query");
    assert_eq!((q.opcode, q.response), (Opcode::Query, false));
    assert!(q.flags.broadcast && q.flags.recursion_desired);
    assert!(q.answers.is_empty() && q.additional.is_empty());
    let a = parsed("nmbd-positive-query-response");
    assert_eq!(a.transaction_id, q.transaction_id);
    assert!(a.response && a.flags.authoritative && !a.flags.broadcast);
    assert_eq!(a.answers[0].ttl, 259_200, "nmbd's three days");
    assert_eq!(addresses(&a, "answers")[0].address, NMBD);
    let unicast = parsed("nmblookup-unicast-query");
    assert!(!unicast.flags.broadcast && unicast.flags.recursion_desired);
    let negative = parsed("nmbd-wins-negative-query-response");
    assert_eq!(negative.rcode, rcode::NAME_ERROR);
    assert_eq!(negative.answers[0].name, name("NOBODY", 0));
    assert_eq!(negative.answers[0].data, RecordData::Null);
}

#[test]
fn node_status_lists_every_name_with_its_flags() {
    let q = parsed("nmblookup-node-status-request");
    assert_eq!(q.questions[0].kind, QuestionType::NodeStatus);
    assert_eq!(q.questions[0].name, name("*", 0));
    let a = parsed("nmbd-node-status-response");
    let RecordData::NodeStatus(status) = &a.answers[0].data else {
        panic!("not a node status: {:?}", a.answers[0]);
    };
    let listed: Vec<(String, bool)> = status
        .names
        .iter()
        .map(|n| (n.name.to_string(), n.group))
        .collect();
    let want = [
        ("MSLPDC<00>", false),
        ("MSLPDC<03>", false),
        ("MSLPDC<20>", false),
        ("MSLDOM<00>", true),
        ("MSLDOM<1e>", true),
    ];
    assert_eq!(
        listed,
        want.map(|(n, g)| (n.to_owned(), g)),
        "as nmblookup -A printed them"
    );
    assert!(status.names.iter().all(|n| n.active && !n.conflict));
    assert!(status.names.iter().all(|n| n.node_type == NodeType::H));
    assert_eq!(status.statistics.len(), 46, "RFC 1002 §4.2.18 statistics");
}

#[test]
fn a_defence_carries_the_active_error() {
    let p = parsed("nmbd-negative-registration-response");
    assert_eq!((p.opcode, p.response), (Opcode::Registration, true));
    assert_eq!(p.rcode, rcode::ACTIVE);
    assert_eq!(p.answers[0].name, name("MSLPDC", 0x20));
    assert_eq!(addresses(&p, "answers")[0].address, PEER, "the asker's own");
}

#[test]
fn wins_registration_release_and_their_responses() {
    let multi = parsed("nmbd-wins-multihomed-registration");
    assert_eq!(multi.opcode, Opcode::MultiHomedRegistration);
    assert!(!multi.flags.broadcast);
    assert_eq!(multi.additional[0].ttl, 259_200);
    let group = parsed("nmbd-wins-group-registration");
    assert_eq!(group.opcode, Opcode::Registration);
    let ok = parsed("nmbd-wins-positive-registration-response");
    assert_eq!((ok.response, ok.rcode), (true, rcode::OK));
    assert_eq!(ok.transaction_id, multi.transaction_id);
    let release = parsed("nmbd-wins-release");
    assert_eq!(release.opcode, Opcode::Release);
    assert_eq!(addresses(&release, "additional")[0].address, PEER);
    let done = parsed("nmbd-wins-release-response");
    assert!(done.response && done.flags.authoritative);
    assert_eq!(done.transaction_id, release.transaction_id);
}

/// nmbd's WACK types its record NULL where RFC 1002 says NB, and carries
/// the request's OPCODE and NM_FLAGS: a bridge registering with nmbd as
/// its WINS server waits as long as the WACK says instead of giving up.
#[test]
fn nmbds_wack_is_understood_and_waited_out() {
    let wack = parsed("nmbd-wins-wack");
    assert_eq!((wack.opcode, wack.response), (Opcode::Wack, true));
    assert!(wack.flags.authoritative);
    let record = &wack.answers[0];
    assert_eq!(record.name, name("WONE", 0));
    assert_eq!(record.ttl, 60, "seconds to wait");
    assert_eq!(
        record.data,
        RecordData::Wack {
            copied: 0x2900,
            null_type: true
        },
        "a registration (opcode 5) with RD set, in a NULL record"
    );
    let wins = SocketAddrV4::new(Ipv4Addr::new(10, 213, 1, 254), 137);
    let config = NameConfig {
        computer: "WONE".into(),
        wins: Some(wins),
        ..config(Ipv4Addr::new(10, 215, 1, 1))
    };
    let t0 = Instant::now();
    let mut service = NameService::<()>::new(config, t0).unwrap();
    service.poll(t0);
    let request = service
        .drain_transmits()
        .into_iter()
        .find(|t| t.to == wins)
        .map(|t| NamePacket::parse(&t.payload).unwrap())
        .expect("a registration at the WINS server");
    let mut bytes = captured("nmbd-wins-wack");
    bytes[..2].copy_from_slice(&request.transaction_id.to_be_bytes());
    service.on_packet(t0, wins, &bytes);
    assert_eq!(service.counters().malformed, 0);
    // Without the WACK it would give up after three tries, 4.5 s.
    let mut now = t0;
    while now < t0 + Duration::from_secs(59) {
        now += Duration::from_millis(500);
        service.poll(now);
    }
    let held = service.names_held(now);
    assert!(held[0].contains("WINS registering"), "{held:?}");
}

/// What the captures' peers need of a name service at `address`.
fn config(address: Ipv4Addr) -> NameConfig {
    NameConfig {
        computer: "MSLPDC".into(),
        domain: "MSLDOM".into(),
        address,
        port: 137,
        broadcast: SocketAddrV4::new(Ipv4Addr::new(10, 213, 250, 255), 137),
        wins: None,
        allow: Vec::new(),
        first_transaction_id: 1,
    }
}

/// A service holding MSLPDC<00>, <03> and MSLDOM<00> (the captures'
/// names) in the default scope, at `address`.
fn holding_mslpdc(address: Ipv4Addr) -> (NameService<()>, Instant) {
    let config = config(address);
    let t0 = Instant::now();
    let mut service = NameService::new(config, t0).unwrap();
    let mut now = t0;
    for _ in 0..5 {
        service.poll(now);
        now += Duration::from_millis(250);
    }
    service.drain_transmits();
    (service, now)
}

/// nmblookup's query in scope CORP.EXAMPLE keeps its scope, and a node in
/// the default scope does not answer it; the same query without the scope
/// it answers.
#[test]
fn a_scoped_query_is_heard_only_in_its_scope() {
    let scoped = parsed("nmblookup-scoped-broadcast-query");
    assert_eq!(scoped.questions[0].name, name("MSLPDC", 0));
    assert_eq!(
        scoped.questions[0].scope,
        Scope::new("CORP.EXAMPLE").unwrap()
    );
    assert!(scoped.flags.broadcast);
    let (mut service, now) = holding_mslpdc(NMBD);
    let asker = SocketAddrV4::new(Ipv4Addr::new(10, 213, 250, 2), 35739);
    service.on_packet(now, asker, &captured("nmblookup-scoped-broadcast-query"));
    assert!(service.drain_transmits().is_empty(), "another scope");
    let mut unscoped = scoped.clone();
    unscoped.questions[0].scope = Scope::default();
    service.on_packet(now, asker, &unscoped.emit().unwrap());
    let answers = service.drain_transmits();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].to, asker);
    let answer = NamePacket::parse(&answers[0].payload).unwrap();
    assert_eq!(answer.transaction_id, scoped.transaction_id);
    assert!(answer.answers[0].scope.is_empty());
}

#[test]
fn every_truncation_is_reported_as_truncated() {
    for g in golden::parse(FILE) {
        for len in 0..g.bytes.len() {
            let got = NamePacket::parse(&g.bytes[..len]);
            assert!(
                matches!(got, Err(DecodeError::Truncated { .. })),
                "{} cut to {len}: {got:?}",
                g.id
            );
        }
    }
}

#[test]
fn pointers_only_point_back() {
    let mut bytes = captured("nmbd-registration-unique");
    // The additional record's name is the pointer at offset 50: aim it at
    // itself, then past the end.
    let at = bytes.windows(2).position(|w| w == [0xC0, 0x0C]).unwrap();
    for target in [at as u16, 0x3FFF] {
        bytes[at..at + 2].copy_from_slice(&(0xC000 | target).to_be_bytes());
        assert!(matches!(
            NamePacket::parse(&bytes),
            Err(DecodeError::BadField { .. })
        ));
    }
}

/// xorshift64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_captures_never_panic_and_what_parses_round_trips() {
    let cases: usize = std::env::var("NAMES_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let corpus: Vec<Vec<u8>> = golden::parse(FILE).into_iter().map(|g| g.bytes).collect();
    let mut rng = Rng(0x6e62_6e73_2d31_3337); // "nbns-137"
    let mut accepted = 0;
    for _ in 0..cases {
        let mut input = corpus[rng.below(corpus.len())].clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(input.len().max(1));
            match rng.below(5) {
                0 if !input.is_empty() => input[at] ^= 1 << rng.below(8),
                1 if !input.is_empty() => input[at] = rng.next() as u8,
                2 => input.truncate(at),
                3 => input.insert(at.min(input.len()), rng.next() as u8),
                _ if !input.is_empty() => {
                    // A count or length field lie.
                    let field = [4, 6, 8, 10][rng.below(4)];
                    if let Some(slot) = input.get_mut(field + 1) {
                        *slot = rng.next() as u8;
                    }
                }
                _ => {}
            }
        }
        if let Ok(packet) = NamePacket::parse(&input) {
            accepted += 1;
            let emitted = packet.emit().expect("a parsed packet re-emits");
            assert_eq!(
                NamePacket::parse(&emitted),
                Ok(packet),
                "input {input:02x?}"
            );
        }
    }
    assert!(accepted > 0, "no mutation survived: the test tests nothing");
}
