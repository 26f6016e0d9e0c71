//! The sans-IO bridge on an in-memory network: several hosts, each a
//! `Bridge` plus a map of local slots, and a wire that delivers unicast to
//! one address and broadcasts to every host on the subnet, the sender
//! included (as the kernel loops a broadcast back). No sockets, no mounts.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use mailslotfs::bridge::{
    Bridge, Config, Counter, Delivery, Destination, Inbound, Reason, Route, SendError, Target,
    Transmit,
};
use mailslotfs::slot::SlotError;
use mailslotfs::wire::{MAX_NETWORK_MESSAGE_LEN, MailslotDatagram};

const PORT: u16 = 138;
const BROADCAST: Ipv4Addr = Ipv4Addr::new(10, 50, 0, 255);

struct Host {
    bridge: Bridge,
    /// Served slots by case-folded path, with the messages they got.
    slots: HashMap<String, Vec<Vec<u8>>>,
}

impl Host {
    fn serve(&mut self, path: &str) {
        self.slots.insert(path.to_ascii_lowercase(), Vec::new());
    }

    fn deliver(&mut self, delivery: &Delivery) {
        let key = delivery.path.join("/").to_ascii_lowercase();
        let result = match self.slots.get_mut(&key) {
            Some(queue) => {
                queue.push(delivery.data.clone());
                Ok(())
            }
            None => Err(SlotError::NotFound),
        };
        self.bridge.record_delivery(result);
    }

    fn got(&self, path: &str) -> &[Vec<u8>] {
        &self.slots[&path.to_ascii_lowercase()]
    }
}

struct Net {
    hosts: Vec<Host>,
}

impl Net {
    /// Hosts `(name, domain)` at 10.50.0.1, .2, ... each knowing the
    /// others as peers.
    fn new(members: &[(&str, &str)]) -> Net {
        let peers: Vec<(String, Ipv4Addr)> = members
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.to_string(), addr(i)))
            .collect();
        let hosts = members
            .iter()
            .enumerate()
            .map(|(i, (name, domain))| Host {
                bridge: Bridge::new(Config {
                    computer: name.to_string(),
                    domain: domain.to_string(),
                    address: SocketAddrV4::new(addr(i), PORT),
                    group: SocketAddrV4::new(BROADCAST, PORT),
                    peers: peers.clone(),
                    allow: Vec::new(),
                    keep_empty: false,
                    first_dgm_id: 1,
                })
                .unwrap(),
                slots: HashMap::new(),
            })
            .collect();
        Net { hosts }
    }

    /// Host `from` writes `data` to `.net/target/path`; the wire carries
    /// the result to every receiver.
    fn write(
        &mut self,
        from: usize,
        target: &str,
        path: &str,
        data: &[u8],
    ) -> Result<(), SendError> {
        let target = Target::parse(target).expect("target");
        let path: Vec<&str> = path.split('/').collect();
        let bridge = &self.hosts[from].bridge;
        // No name service on this wire: a name that is not a peer is unknown.
        let destination = match bridge.route(&target)? {
            Route::Known(destination) => destination,
            Route::Lookup(name) => return Err(SendError::Unreachable(name)),
        };
        let out = bridge.on_local_write(&target, &path, data, destination)?;
        if let Some(local) = out.local {
            self.hosts[from].deliver(&local);
        }
        if let Some(transmit) = out.transmit {
            self.hosts[from].bridge.record_send(Ok(())).unwrap();
            self.carry(from, &transmit);
        }
        Ok(())
    }

    fn carry(&mut self, from: usize, transmit: &Transmit) {
        let source = SocketAddrV4::new(addr(from), PORT);
        for i in 0..self.hosts.len() {
            if *transmit.to.ip() == BROADCAST || *transmit.to.ip() == addr(i) {
                self.receive(i, source, &transmit.payload);
            }
        }
    }

    fn receive(&mut self, at: usize, source: SocketAddrV4, payload: &[u8]) {
        if let Inbound::Deliver(delivery) = self.hosts[at].bridge.on_datagram(source, payload) {
            self.hosts[at].deliver(&delivery);
        }
    }
}

fn addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 50, 0, i as u8 + 1)
}

/// A, B, C in DOM1 and D in DOM2, every one serving `chat`.
fn four_hosts() -> Net {
    let mut net = Net::new(&[("A", "DOM1"), ("B", "DOM1"), ("C", "DOM1"), ("D", "DOM2")]);
    for host in &mut net.hosts {
        host.serve("chat");
    }
    net
}

#[test]
fn unicast_reaches_only_its_target() {
    let mut net = four_hosts();
    net.write(0, "b", "chat", b"to b").unwrap();
    assert_eq!(net.hosts[1].got("chat"), [b"to b"]);
    for other in [0, 2, 3] {
        assert!(net.hosts[other].got("chat").is_empty(), "host {other}");
    }
}

#[test]
fn a_domain_write_reaches_every_member_once() {
    let mut net = four_hosts();
    net.write(0, "*", "chat", b"all of dom1").unwrap();
    net.write(1, "dom1#1c", "chat", b"dc name").unwrap();
    for member in 0..3 {
        assert_eq!(
            net.hosts[member].got("chat"),
            [&b"all of dom1"[..], b"dc name"],
            "host {member}"
        );
    }
    assert!(net.hosts[3].got("chat").is_empty());
    let a = &net.hosts[0].bridge;
    assert_eq!(a.counter(Counter::Dropped(Reason::OwnEcho)), 1);
    assert_eq!(a.counter(Counter::Delivered), 2);
    assert_eq!(
        net.hosts[3]
            .bridge
            .counter(Counter::Dropped(Reason::NotForUs)),
        2
    );
}

#[test]
fn a_write_to_our_own_name_stays_local() {
    let mut net = four_hosts();
    net.write(2, "c", "chat", b"me").unwrap();
    assert_eq!(net.hosts[2].got("chat"), [b"me"]);
    assert_eq!(net.hosts[2].bridge.counter(Counter::Sent), 0);
}

#[test]
fn delivery_ignores_case_and_counts_missing_slots() {
    let mut net = four_hosts();
    net.hosts[1].serve("App/Inbox");
    net.write(0, "B", "APP/INBOX", b"x").unwrap();
    net.write(0, "B", "app/nobody", b"y").unwrap();
    assert_eq!(net.hosts[1].got("app/inbox"), [b"x"]);
    assert_eq!(
        net.hosts[1]
            .bridge
            .counter(Counter::Dropped(Reason::NoSlot)),
        1
    );
}

#[test]
fn messages_above_424_bytes_are_refused() {
    let mut net = four_hosts();
    let max = vec![7u8; MAX_NETWORK_MESSAGE_LEN];
    net.write(0, "B", "chat", &max).unwrap();
    assert_eq!(net.hosts[1].got("chat"), [max]);
    let over = vec![7u8; MAX_NETWORK_MESSAGE_LEN + 1];
    assert_eq!(net.write(0, "B", "chat", &over), Err(SendError::TooBig));
    assert_eq!(net.hosts[0].bridge.counter(Counter::Sent), 1);
}

#[test]
fn allow_lists_drop_other_sources() {
    let mut net = four_hosts();
    let mut config = net.hosts[1].bridge.config().clone();
    config.allow = vec!["10.50.0.3/32".parse().unwrap()];
    net.hosts[1].bridge = Bridge::new(config).unwrap();
    net.write(0, "B", "chat", b"from a").unwrap();
    net.write(2, "B", "chat", b"from c").unwrap();
    assert_eq!(net.hosts[1].got("chat"), [b"from c"]);
    assert_eq!(
        net.hosts[1]
            .bridge
            .counter(Counter::Dropped(Reason::NotAllowed)),
        1
    );
}

/// Random and mutated datagrams: never a panic, and every one is either
/// delivered or counted under exactly one reason.
#[test]
fn garbage_is_counted_never_fatal() {
    let mut net = four_hosts();
    let target = Target::parse("B").unwrap();
    let good = net.hosts[0]
        .bridge
        .on_local_write(&target, &["chat"], b"seed", Destination::Unicast(addr(1)))
        .unwrap()
        .transmit
        .unwrap()
        .payload;
    assert!(MailslotDatagram::parse(&good).is_ok());
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let source = SocketAddrV4::new(addr(0), PORT);
    let rounds = 5000;
    for round in 0..rounds {
        let mut bytes = good.clone();
        match round % 3 {
            0 => {
                let at = random() as usize % bytes.len();
                bytes[at] ^= 1 << (random() % 8);
            }
            1 => bytes.truncate(random() as usize % bytes.len()),
            _ => bytes = (0..random() % 600).map(|_| random() as u8).collect(),
        }
        net.receive(1, source, &bytes);
    }
    let b = &net.hosts[1].bridge;
    let total: u64 = Counter::ALL.iter().map(|&c| b.counter(c)).sum();
    assert_eq!(total, rounds);
}
