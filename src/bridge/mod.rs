//! The network bridge's decisions, without sockets (sans-IO): which
//! received datagrams land in which local slot and why the others are
//! dropped, and which datagram a write under `.net/TARGET/...` becomes.
//!
//! Bytes and addresses in, decisions out; no sockets, no clock, no locks
//! (counters are atomics, so one [`Bridge`] serves the receive thread and
//! every FUSE thread at once). [`net`] is the thin socket layer around it.
//!
//! Receiving (SPEC §5): a datagram from an allowed source, not our own
//! echo, that parses, is in our (empty) scope and is addressed to this
//! computer's name or its domain with any suffix, is handed to the local
//! slot its `\MAILSLOT\` path names; everything else is dropped and counted
//! by reason.
//!
//! Sending: [`route`](Bridge::route) says where a target is: our own
//! name (never sent), our domain or `*` (DIRECT_GROUP to the broadcast or
//! multicast address, and once to our own slot), a `--peer`, or a name to
//! look up ([`names`], then the system resolver, [`system`]); a unique name
//! found goes unicast (DIRECT_UNIQUE), a group name to the group address.

pub mod cache;
pub mod names;
pub mod net;
pub mod system;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use crate::slot::SlotError;
use crate::wire::{
    DecodeError, EncodeError, MAX_MAILSLOT_NAME_AND_DATA_LEN, MAX_NETWORK_MESSAGE_LEN,
    MailslotDatagram, MailslotPath, MessageType, NAME_LEN, NetbiosName, NodeType, Scope,
};

/// Suffix of the names mailslot writes go to: a workstation (`SUE<00>`)
/// and the group every domain member registers (`DOMAIN<00>`).
const MAILSLOT_SUFFIX: u8 = 0x00;

/// Separates a name from an explicit suffix in a target, as Samba's
/// `nmblookup NAME#1c` does: `.net/MSLDOM#1c/net/netlogon`.
const SUFFIX_MARK: char = '#';

/// The target of a network write: the directory name right under `.net`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// `None` for `*`, the primary domain.
    name: Option<String>,
    suffix: u8,
}

/// Why a `.net` directory name is not a NetBIOS name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// More than 15 characters before the suffix.
    TooLong,
    /// Empty, a byte the wire cannot carry, or a suffix that is not two
    /// hex digits.
    Invalid,
}

impl Target {
    /// Parses `NAME`, `NAME#hh` (hex suffix) or `*` / `*#hh`. Names are
    /// case-insensitive and kept upper-case, as they go on the wire.
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        let (name, suffix) = match text.rsplit_once(SUFFIX_MARK) {
            Some((name, hex)) if hex.len() == 2 => (
                name,
                u8::from_str_radix(hex, 16).map_err(|_| TargetError::Invalid)?,
            ),
            Some(_) => return Err(TargetError::Invalid),
            None => (text, MAILSLOT_SUFFIX),
        };
        if name == "*" {
            return Ok(Target { name: None, suffix });
        }
        if name.len() > NAME_LEN {
            return Err(TargetError::TooLong);
        }
        NetbiosName::new(name, suffix).map_err(|_| TargetError::Invalid)?;
        Ok(Target {
            name: Some(name.to_ascii_uppercase()),
            suffix,
        })
    }

    /// The canonical spelling: upper case, `#hh` only for a suffix other
    /// than `<00>`. Two spellings of one target share it.
    pub fn key(&self) -> String {
        let name = self.name.as_deref().unwrap_or("*");
        match self.suffix {
            MAILSLOT_SUFFIX => name.to_owned(),
            suffix => format!("{name}{SUFFIX_MARK}{suffix:02x}"),
        }
    }
}

/// An IPv4 network in CIDR form (`10.0.0.0/8`; a bare address is a /32),
/// for `--allow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl Cidr {
    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network) & self.mask()
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = text.split_once('/').unwrap_or((text, "32"));
        let network = addr
            .parse()
            .map_err(|_| format!("{addr}: not an IPv4 address"))?;
        let prefix = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("/{prefix}: prefix length must be 0 to 32"))?;
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Everything the bridge knows about itself and its network, defaults
/// already filled in by the caller.
#[derive(Clone, Debug)]
pub struct Config {
    /// This computer's NetBIOS name.
    pub computer: String,
    /// The domain or workgroup it belongs to (what `*` means).
    pub domain: String,
    /// The interface address and datagram port: sent as SOURCE_IP and
    /// SOURCE_PORT, and how our own looped-back broadcasts are recognised.
    pub address: SocketAddrV4,
    /// Where group datagrams go: the subnet broadcast or a multicast group.
    pub group: SocketAddrV4,
    /// Static name → address map, consulted before the system resolver.
    pub peers: Vec<(String, Ipv4Addr)>,
    /// Sources to accept; empty accepts every source.
    pub allow: Vec<Cidr>,
    /// Deliver zero-length messages instead of dropping them (`-o keep_empty`).
    pub keep_empty: bool,
    /// First DGM_ID to send (the socket layer picks one per run).
    pub first_dgm_id: u16,
}

/// A message for a local slot: the slot's path components (from the
/// `\MAILSLOT\` path, `\` being the separator) and the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub path: Vec<String>,
    pub data: Vec<u8>,
}

/// What to do with one received datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// Write it to a local slot, then report the outcome with
    /// [`Bridge::record_delivery`].
    Deliver(Delivery),
    /// Already counted.
    Dropped(Reason),
}

/// One UDP datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// What one network write turns into: at most one datagram, and at most one
/// local delivery (a write to our own name or domain).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbound {
    pub transmit: Option<Transmit>,
    pub local: Option<Delivery>,
}

/// Where a network write's datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Our own computer name: delivered here, never sent.
    Own,
    /// A group (our domain, or a group name a look-up found): to the
    /// broadcast or multicast address, as DIRECT_GROUP.
    Group,
    /// A unique name's host, as DIRECT_UNIQUE.
    Unicast(Ipv4Addr),
}

/// How a target is reached, before any look-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Known(Destination),
    /// Ask the name service (then the system resolver) for this name.
    Lookup(NetbiosName),
}

/// Why a network write is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// More than 424 data bytes, or more than 443 of name and data.
    TooBig,
    /// A path component the wire cannot carry (non-ASCII, say).
    BadPath(EncodeError),
    /// The socket refused the datagram (an errno, from the socket layer).
    Network(i32),
    /// Nobody answered for the target's name (EHOSTUNREACH).
    Unreachable(NetbiosName),
    /// Too many look-ups are waiting already (EAGAIN).
    Busy,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooBig => write!(
                f,
                "network messages carry at most {MAX_NETWORK_MESSAGE_LEN} bytes, \
                 and {MAX_MAILSLOT_NAME_AND_DATA_LEN} with the mailslot name"
            ),
            Self::BadPath(e) => write!(f, "cannot send this mailslot name: {e}"),
            Self::Network(errno) => write!(f, "{}", std::io::Error::from_raw_os_error(*errno)),
            Self::Unreachable(name) => write!(f, "no host answers for {name}"),
            Self::Busy => f.write_str("too many name look-ups are waiting"),
        }
    }
}

/// Everything the bridge counts; each has a read-only attribute on `.net`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Datagrams handed to the network.
    Sent,
    /// Datagrams the socket refused.
    SendFailed,
    /// Messages written to a local slot (from the network or a local copy).
    Delivered,
    /// A dropped datagram or message.
    Dropped(Reason),
    /// A target found among the `--peer`s.
    ResolvedPeer,
    /// A target the name service did not find but the system resolver did.
    ResolvedSystem,
    /// A write refused with EHOSTUNREACH: nobody knew its target.
    Unreachable,
}

/// Why a received datagram (or a local copy) was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The source is outside every `--allow` network.
    NotAllowed,
    /// The header's SOURCE_IP is not the address the datagram came from.
    Spoofed,
    /// Our own broadcast or multicast, looped back by the kernel (the local
    /// copy was delivered directly).
    OwnEcho,
    /// Not a well-formed mailslot write, or a path with empty, `.` or `..`
    /// components.
    Malformed,
    /// Well-formed but not handled: fragments, NBDD messages, first-class writes.
    Unsupported,
    /// For a name that is neither ours nor our domain's, or another scope.
    NotForUs,
    /// A zero-length message (dropped unless `-o keep_empty`).
    Empty,
    /// No local slot of that name.
    NoSlot,
    /// The slot's quota is full, or the message exceeds its maximum size.
    SlotFull,
    /// The daemon's memory ceiling (`-o max_memory`) is reached.
    OutOfMemory,
}

impl Counter {
    /// Every counter, in the order they are shown.
    pub const ALL: [Counter; 16] = [
        Counter::Sent,
        Counter::SendFailed,
        Counter::Delivered,
        Counter::Dropped(Reason::NotAllowed),
        Counter::Dropped(Reason::Spoofed),
        Counter::Dropped(Reason::OwnEcho),
        Counter::Dropped(Reason::Malformed),
        Counter::Dropped(Reason::Unsupported),
        Counter::Dropped(Reason::NotForUs),
        Counter::Dropped(Reason::Empty),
        Counter::Dropped(Reason::NoSlot),
        Counter::Dropped(Reason::SlotFull),
        Counter::Dropped(Reason::OutOfMemory),
        Counter::ResolvedPeer,
        Counter::ResolvedSystem,
        Counter::Unreachable,
    ];

    /// The attribute name after `user.mailslot.bridge.`.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Sent => "sent",
            Counter::SendFailed => "send_failed",
            Counter::Delivered => "delivered",
            Counter::Dropped(Reason::NotAllowed) => "dropped_not_allowed",
            Counter::Dropped(Reason::Spoofed) => "dropped_spoofed",
            Counter::Dropped(Reason::OwnEcho) => "dropped_own_echo",
            Counter::Dropped(Reason::Malformed) => "dropped_malformed",
            Counter::Dropped(Reason::Unsupported) => "dropped_unsupported",
            Counter::Dropped(Reason::NotForUs) => "dropped_not_for_us",
            Counter::Dropped(Reason::Empty) => "dropped_empty",
            Counter::Dropped(Reason::NoSlot) => "dropped_no_slot",
            Counter::Dropped(Reason::SlotFull) => "dropped_slot_full",
            Counter::Dropped(Reason::OutOfMemory) => "dropped_out_of_memory",
            Counter::ResolvedPeer => "resolved_peer",
            Counter::ResolvedSystem => "resolved_system",
            Counter::Unreachable => "unreachable",
        }
    }

    fn index(self) -> usize {
        Counter::ALL
            .iter()
            .position(|c| *c == self)
            .unwrap_or_default()
    }
}

/// The bridge of one mount.
pub struct Bridge {
    config: Config,
    /// This computer's `<00>` name: the source of everything we send.
    source_name: NetbiosName,
    counters: [AtomicU64; Counter::ALL.len()],
    next_dgm_id: AtomicU16,
}

impl Bridge {
    /// Checks the names; everything else in `config` is already typed.
    pub fn new(config: Config) -> Result<Bridge, String> {
        let source_name = NetbiosName::new(&config.computer, MAILSLOT_SUFFIX)
            .map_err(|e| format!("NetBIOS name {:?}: {e}", config.computer))?;
        NetbiosName::new(&config.domain, MAILSLOT_SUFFIX)
            .map_err(|e| format!("domain {:?}: {e}", config.domain))?;
        for (name, _) in &config.peers {
            NetbiosName::new(name, MAILSLOT_SUFFIX).map_err(|e| format!("peer {name:?}: {e}"))?;
        }
        Ok(Bridge {
            next_dgm_id: AtomicU16::new(config.first_dgm_id),
            config,
            source_name,
            counters: Default::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Decides what to do with one UDP payload from `from`. Never panics,
    /// whatever the bytes; every drop is counted here.
    pub fn on_datagram(&self, from: SocketAddrV4, payload: &[u8]) -> Inbound {
        match self.accept(from, payload) {
            Ok(delivery) => Inbound::Deliver(delivery),
            Err(reason) => {
                self.count(Counter::Dropped(reason));
                Inbound::Dropped(reason)
            }
        }
    }

    fn accept(&self, from: SocketAddrV4, payload: &[u8]) -> Result<Delivery, Reason> {
        if !self.config.allow.is_empty()
            && !self.config.allow.iter().any(|c| c.contains(*from.ip()))
        {
            return Err(Reason::NotAllowed);
        }
        if from == self.config.address {
            return Err(Reason::OwnEcho);
        }
        let datagram = MailslotDatagram::parse(payload).map_err(|e| match e {
            DecodeError::Unsupported(_) | DecodeError::Fragmented { .. } => Reason::Unsupported,
            DecodeError::Truncated { .. }
            | DecodeError::BadField { .. }
            | DecodeError::Malformed(_) => Reason::Malformed,
        })?;
        // Nothing we do trusts SOURCE_IP, but a datagram that lies about
        // where it came from is a forgery or a relay we do not support.
        if datagram.source_addr.ip() != from.ip() {
            return Err(Reason::Spoofed);
        }
        if !datagram.scope.is_empty() || !self.is_ours(&datagram.destination_name) {
            return Err(Reason::NotForUs);
        }
        let path = datagram
            .mailslot
            .relative()
            .split('\\')
            .map(str::to_owned)
            .collect::<Vec<_>>();
        if path.iter().any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(Reason::Malformed);
        }
        self.local_delivery(path, &datagram.data)
    }

    /// A message for a local slot, unless it is empty and empty messages
    /// are not kept.
    fn local_delivery(&self, path: Vec<String>, data: &[u8]) -> Result<Delivery, Reason> {
        if data.is_empty() && !self.config.keep_empty {
            return Err(Reason::Empty);
        }
        Ok(Delivery {
            path,
            data: data.to_vec(),
        })
    }

    /// Whether a datagram for `name` is for us: our computer name or our
    /// domain, with any suffix.
    fn is_ours(&self, name: &NetbiosName) -> bool {
        let trimmed = name.trimmed();
        trimmed.eq_ignore_ascii_case(self.config.computer.as_bytes())
            || trimmed.eq_ignore_ascii_case(self.config.domain.as_bytes())
    }

    /// Reports what writing a [`Delivery`] into the local slot gave.
    pub fn record_delivery(&self, result: Result<(), SlotError>) {
        self.count(match result {
            Ok(()) => Counter::Delivered,
            Err(SlotError::QuotaFull | SlotError::MessageTooBig) => {
                Counter::Dropped(Reason::SlotFull)
            }
            Err(SlotError::OutOfMemory) => Counter::Dropped(Reason::OutOfMemory),
            Err(_) => Counter::Dropped(Reason::NoSlot),
        });
    }

    /// Reports whether the socket took a [`Transmit`]; on failure, the errno.
    pub fn record_send(&self, result: Result<(), i32>) -> Result<(), SendError> {
        match result {
            Ok(()) => {
                self.count(Counter::Sent);
                Ok(())
            }
            Err(errno) => {
                self.count(Counter::SendFailed);
                Err(SendError::Network(errno))
            }
        }
    }

    /// Refuses, before any look-up, a write the network cannot carry:
    /// Windows' limits (Samba's nmbd reads at most 576 bytes, which a name
    /// of more than one character plus 424 bytes exceeds, but nmbd only
    /// serves BROWSE and NETLOGON, whose messages are small).
    pub fn check_write(&self, path: &[&str], data: &[u8]) -> Result<MailslotPath, SendError> {
        let mailslot = MailslotPath::from_relative(&path.join("\\")).map_err(SendError::BadPath)?;
        if data.len() > MAX_NETWORK_MESSAGE_LEN
            || mailslot.as_str().len() + 1 + data.len() > MAX_MAILSLOT_NAME_AND_DATA_LEN
        {
            return Err(SendError::TooBig);
        }
        Ok(mailslot)
    }

    /// How a target is reached: our own name stays here, our domain goes
    /// to the group, a `--peer` to its address; any other name must be
    /// looked up.
    pub fn route(&self, target: &Target) -> Result<Route, SendError> {
        let name = target.name.as_deref().unwrap_or(&self.config.domain);
        let destination = NetbiosName::new(name, target.suffix).map_err(SendError::BadPath)?;
        if name.eq_ignore_ascii_case(&self.config.computer) {
            return Ok(Route::Known(Destination::Own));
        }
        if name.eq_ignore_ascii_case(&self.config.domain) {
            return Ok(Route::Known(Destination::Group));
        }
        let peer = self
            .config
            .peers
            .iter()
            .find(|(peer, _)| peer.eq_ignore_ascii_case(name));
        Ok(match peer {
            Some((_, addr)) => {
                self.count(Counter::ResolvedPeer);
                Route::Known(Destination::Unicast(*addr))
            }
            None => Route::Lookup(destination),
        })
    }

    /// Builds what a write of `data` to `path` under `.net/TARGET` becomes,
    /// once [`route`](Self::route) (and a look-up) said where it goes.
    pub fn on_local_write(
        &self,
        target: &Target,
        path: &[&str],
        data: &[u8],
        destination: Destination,
    ) -> Result<Outbound, SendError> {
        let mailslot = self.check_write(path, data)?;
        let name = target.name.as_deref().unwrap_or(&self.config.domain);
        let destination_name = NetbiosName::new(name, target.suffix).map_err(SendError::BadPath)?;
        let local = || {
            let path = path.iter().map(|c| (*c).to_owned()).collect();
            self.local_delivery(path, data)
                .map_err(|reason| self.count(Counter::Dropped(reason)))
                .ok()
        };
        let is_domain = name.eq_ignore_ascii_case(&self.config.domain);
        let (msg_type, to) = match destination {
            Destination::Own => {
                return Ok(Outbound {
                    transmit: None,
                    local: local(),
                });
            }
            Destination::Unicast(addr) => (
                MessageType::DirectUnique,
                SocketAddrV4::new(addr, self.config.address.port()),
            ),
            Destination::Group => (MessageType::DirectGroup, self.config.group),
        };
        let datagram = MailslotDatagram {
            msg_type,
            node_type: NodeType::B,
            dgm_id: self.next_dgm_id.fetch_add(1, Ordering::Relaxed),
            source_addr: self.config.address,
            source_name: self.source_name,
            destination_name,
            scope: Scope::default(),
            mailslot,
            priority: 0,
            data: data.to_vec(),
        };
        let payload = datagram.emit().map_err(SendError::BadPath)?;
        Ok(Outbound {
            transmit: Some(Transmit { to, payload }),
            local: if is_domain { local() } else { None },
        })
    }

    /// Counts how a look-up ended for the socket layer.
    pub fn record_lookup(&self, counter: Counter) {
        self.count(counter);
    }

    fn count(&self, counter: Counter) {
        self.counters[counter.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The current value of one counter.
    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters[counter.index()].load(Ordering::Relaxed)
    }

    /// Identity and counters as `(name, decimal or plain text)`, shown as
    /// the `user.mailslot.bridge.NAME` attributes of `.net`.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let c = &self.config;
        let list = |items: Vec<String>| items.join(",");
        let mut out = vec![
            ("netbios_name", c.computer.clone()),
            ("domain", c.domain.clone()),
            ("address", c.address.to_string()),
            ("group", c.group.to_string()),
            (
                "peers",
                list(c.peers.iter().map(|(n, a)| format!("{n}={a}")).collect()),
            ),
            ("allow", list(c.allow.iter().map(Cidr::to_string).collect())),
        ];
        out.extend(
            Counter::ALL
                .iter()
                .map(|&counter| (counter.name(), self.counter(counter).to_string())),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            computer: "ALPHA".into(),
            domain: "MSLDOM".into(),
            address: "10.9.0.1:138".parse().unwrap(),
            group: "10.9.0.255:138".parse().unwrap(),
            peers: vec![("BETA".into(), "10.9.0.2".parse().unwrap())],
            allow: Vec::new(),
            keep_empty: false,
            first_dgm_id: 7,
        }
    }

    fn datagram(to: &str, suffix: u8, slot: &str, data: &[u8]) -> Vec<u8> {
        MailslotDatagram {
            msg_type: MessageType::DirectGroup,
            node_type: NodeType::M,
            dgm_id: 1,
            source_addr: "10.9.0.2:138".parse().unwrap(),
            source_name: NetbiosName::new("BETA", 0).unwrap(),
            destination_name: NetbiosName::new(to, suffix).unwrap(),
            scope: Scope::default(),
            mailslot: MailslotPath::new(slot).unwrap(),
            priority: 1,
            data: data.to_vec(),
        }
        .emit()
        .unwrap()
    }

    const FROM: &str = "10.9.0.2:138";

    #[test]
    fn targets_parse_with_optional_hex_suffix() {
        let t = Target::parse("msldom#1C").unwrap();
        assert_eq!(t.key(), "MSLDOM#1c");
        assert_eq!(Target::parse("*").unwrap().key(), "*");
        assert_eq!(Target::parse("*#1c").unwrap().key(), "*#1c");
        assert_eq!(
            Target::parse("Sue").unwrap(),
            Target::parse("SUE#00").unwrap()
        );
        assert_eq!(Target::parse("SIXTEEN-LETTERS!"), Err(TargetError::TooLong));
        for bad in ["", "a#1", "a#zz", "a#123", "caf\u{e9}"] {
            assert_eq!(Target::parse(bad), Err(TargetError::Invalid), "{bad}");
        }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.9.0.0/24".parse().unwrap();
        assert!(net.contains("10.9.0.200".parse().unwrap()));
        assert!(!net.contains("10.9.1.1".parse().unwrap()));
        let host: Cidr = "10.9.0.7".parse().unwrap();
        assert_eq!(host.to_string(), "10.9.0.7/32");
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains(Ipv4Addr::BROADCAST)
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("ten/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn datagrams_for_our_names_are_delivered_case_insensitively() {
        let b = Bridge::new(config()).unwrap();
        let from = FROM.parse().unwrap();
        for (to, suffix) in [("alpha", 0), ("MSLDOM", 0x1c), ("msldom", 0x1e)] {
            let got = b.on_datagram(from, &datagram(to, suffix, r"\mailslot\App\In", b"hi"));
            assert_eq!(
                got,
                Inbound::Deliver(Delivery {
                    path: vec!["App".into(), "In".into()],
                    data: b"hi".to_vec()
                })
            );
        }
    }

    #[test]
    fn every_drop_has_a_counted_reason() {
        let mut cfg = config();
        cfg.allow = vec!["10.9.0.0/24".parse().unwrap()];
        let b = Bridge::new(cfg).unwrap();
        let from = FROM.parse().unwrap();
        let good = datagram("ALPHA", 0, r"\MAILSLOT\x", b"hi");
        let cases: [(SocketAddrV4, Vec<u8>, Reason); 7] = [
            (
                "10.8.0.2:138".parse().unwrap(),
                good.clone(),
                Reason::NotAllowed,
            ),
            (
                "10.9.0.1:138".parse().unwrap(),
                good.clone(),
                Reason::OwnEcho,
            ),
            (from, b"garbage".to_vec(), Reason::Malformed),
            (
                from,
                [&[0x14u8][..], &good[1..]].concat(),
                Reason::Unsupported,
            ),
            (
                from,
                datagram("GAMMA", 0, r"\MAILSLOT\x", b"hi"),
                Reason::NotForUs,
            ),
            (
                from,
                datagram("ALPHA", 0, r"\MAILSLOT\x", b""),
                Reason::Empty,
            ),
            (
                from,
                datagram("ALPHA", 0, r"\MAILSLOT\a\..\x", b"hi"),
                Reason::Malformed,
            ),
        ];
        for (src, bytes, reason) in cases {
            assert_eq!(b.on_datagram(src, &bytes), Inbound::Dropped(reason));
        }
        assert_eq!(b.counter(Counter::Dropped(Reason::Malformed)), 2);
        b.record_delivery(Err(SlotError::NotFound));
        b.record_delivery(Err(SlotError::QuotaFull));
        b.record_delivery(Ok(()));
        b.record_delivery(Err(SlotError::OutOfMemory));
        for reason in [Reason::NoSlot, Reason::SlotFull, Reason::OutOfMemory] {
            assert_eq!(b.counter(Counter::Dropped(reason)), 1);
        }
        assert_eq!(b.counter(Counter::Delivered), 1);
    }

    #[test]
    fn a_source_ip_other_than_the_sender_is_dropped_as_spoofed() {
        let b = Bridge::new(config()).unwrap();
        let good = datagram("ALPHA", 0, r"\MAILSLOT\x", b"hi");
        let other_port = "10.9.0.2:50000".parse().unwrap();
        assert!(matches!(
            b.on_datagram(other_port, &good),
            Inbound::Deliver(_)
        ));
        let elsewhere = "10.9.0.3:138".parse().unwrap();
        assert_eq!(
            b.on_datagram(elsewhere, &good),
            Inbound::Dropped(Reason::Spoofed)
        );
        assert_eq!(b.counter(Counter::Dropped(Reason::Spoofed)), 1);
    }

    /// What a write becomes, routed as the socket layer would, with
    /// `found` standing in for a look-up's answer.
    fn write(
        b: &Bridge,
        target: &str,
        path: &[&str],
        data: &[u8],
        found: Option<Destination>,
    ) -> Result<Outbound, SendError> {
        let target = Target::parse(target).unwrap();
        let destination = match b.route(&target)? {
            Route::Known(destination) => destination,
            Route::Lookup(name) => found.unwrap_or_else(|| panic!("{name} needs a look-up")),
        };
        b.on_local_write(&target, path, data, destination)
    }

    #[test]
    fn writes_pick_unicast_group_or_local() {
        let b = Bridge::new(config()).unwrap();
        let peer = write(&b, "beta", &["x"], b"m", None).unwrap();
        let t = peer.transmit.unwrap();
        assert_eq!(t.to, "10.9.0.2:138".parse().unwrap());
        let d = MailslotDatagram::parse(&t.payload).unwrap();
        assert_eq!(d.msg_type, MessageType::DirectUnique);
        assert_eq!(d.dgm_id, 7);
        assert_eq!(d.destination_name.to_string(), "BETA<00>");
        assert_eq!(d.source_addr, "10.9.0.1:138".parse().unwrap());
        assert_eq!(peer.local, None);
        assert_eq!(b.counter(Counter::ResolvedPeer), 1);

        let domain = write(&b, "*#1c", &["net", "netlogon"], b"q", None).unwrap();
        let t = domain.transmit.unwrap();
        assert_eq!(t.to, b.config().group);
        let d = MailslotDatagram::parse(&t.payload).unwrap();
        assert_eq!(d.msg_type, MessageType::DirectGroup);
        assert_eq!(d.destination_name.to_string(), "MSLDOM<1c>");
        assert_eq!(d.mailslot.as_str(), r"\MAILSLOT\net\netlogon");
        assert_eq!(domain.local.unwrap().path, ["net", "netlogon"]);

        let own = write(&b, "Alpha", &["x"], b"m", None).unwrap();
        assert_eq!(own.transmit, None);
        assert!(own.local.is_some());

        let target = Target::parse("far").unwrap();
        let far = NetbiosName::new("FAR", 0).unwrap();
        assert_eq!(b.route(&target), Ok(Route::Lookup(far)));
        let found = Destination::Unicast(Ipv4Addr::new(192, 0, 2, 1));
        let resolved = write(&b, "far", &["x"], b"m", Some(found)).unwrap();
        assert_eq!(
            resolved.transmit.unwrap().to,
            "192.0.2.1:138".parse().unwrap()
        );
        // A group name found by a look-up goes to the group, with no local copy.
        let other = write(&b, "otherdom", &["x"], b"m", Some(Destination::Group)).unwrap();
        assert_eq!(other.transmit.unwrap().to, b.config().group);
        assert_eq!(other.local, None);
    }

    #[test]
    fn writes_respect_the_network_limits() {
        let b = Bridge::new(config()).unwrap();
        let max = vec![b'x'; MAX_NETWORK_MESSAGE_LEN];
        assert!(write(&b, "BETA", &["x"], &max, None).is_ok());
        let over = vec![b'x'; MAX_NETWORK_MESSAGE_LEN + 1];
        assert_eq!(b.check_write(&["x"], &over), Err(SendError::TooBig));
        assert_eq!(
            write(&b, "BETA", &["x"], &over, None),
            Err(SendError::TooBig)
        );
        let long_name = "n".repeat(443 - 424 - 11 + 1);
        assert_eq!(b.check_write(&[&long_name], &max), Err(SendError::TooBig));
        assert!(matches!(
            b.check_write(&["caf\u{e9}"], b"x"),
            Err(SendError::BadPath(_))
        ));
    }

    #[test]
    fn attributes_name_every_counter() {
        let b = Bridge::new(config()).unwrap();
        let attrs = b.attributes();
        assert!(attrs.contains(&("peers", "BETA=10.9.0.2".into())));
        for counter in Counter::ALL {
            assert!(attrs.iter().any(|(n, v)| *n == counter.name() && v == "0"));
        }
    }
}
