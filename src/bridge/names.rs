//! The NetBIOS name service (RFC 1001 §15, RFC 1002 §4.2) as a state
//! machine without sockets or clocks: packets and the time go in, packets
//! to send and events come out ([`drain_transmits`](NameService::drain_transmits),
//! [`drain_events`](NameService::drain_events)), and
//! [`next_deadline`](NameService::next_deadline) says when to call
//! [`poll`](NameService::poll) again.
//!
//! Our names: `COMPUTER<00>`, `COMPUTER<03>` (unique) and `DOMAIN<00>`
//! (group) are registered by broadcast, three requests 250 ms apart as a
//! B-node does (RFC 1002 §4.2.2, BCAST_REQ_RETRY_TIMEOUT and _COUNT); a
//! negative response, or another node claiming one of our unique names
//! while we are still claiming it, is a conflict. With a WINS server they
//! are also registered with it by unicast, with WACK and refresh, and
//! tried again with a growing wait while it does not answer. Once held,
//! they are answered (name queries, broadcast or unicast, and node status)
//! and the unique ones defended against others' registrations; at the end
//! they are released.
//!
//! Resolving other names: a bounded cache (TTL from the answer, capped;
//! a short negative cache), then the WINS server (unless it stopped
//! answering), then a broadcast query, three tries 500 ms apart. A waiter
//! `W` (the caller's callback) rides along and comes back in
//! [`Event::Resolved`].

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::Cidr;
use super::cache::NameCache;
use crate::wire::{
    HeaderFlags, NamePacket, NbAddress, NetbiosName, NodeStatus, NodeType, Opcode, Question,
    QuestionType, Record, RecordData, Scope, StatusName, rcode,
};

/// Suffixes of the names a workstation holds: its name for mailslots and
/// the messenger service, and its domain's group.
const WORKSTATION: u8 = 0x00;
const MESSENGER: u8 = 0x03;
/// B-node timing (RFC 1002 §6): each broadcast registration is sent this
/// often, this many times; silence after the last means the name is ours.
const REGISTRATION_INTERVAL: Duration = Duration::from_millis(250);
const REGISTRATION_TRIES: u8 = 3;
/// Each broadcast query is sent this often and this many times.
const QUERY_INTERVAL: Duration = Duration::from_millis(500);
const QUERY_TRIES: u8 = 3;
/// How long a broadcast query waits for an answer in all (1.5 s): also the
/// least a network write waits for its target before EHOSTUNREACH.
pub const QUERY_WAIT: Duration = QUERY_INTERVAL.saturating_mul(QUERY_TRIES as u32);
/// A WINS server is asked (queries and registrations) this often and this
/// many times: Windows' NetBT defaults (NameSrvQueryTimeout 1.5 s,
/// NameSrvQueryCount 3). RFC 1002's 5 s (UCAST_REQ_RETRY_TIMEOUT) would
/// keep a write to a missing name waiting 15 s on a silent server. A WACK
/// extends the wait by what it says, at most [`MAX_WACK`].
const WINS_INTERVAL: Duration = Duration::from_millis(1500);
const WINS_TRIES: u8 = 3;
const MAX_WACK: Duration = Duration::from_secs(60);
/// A WINS server that let a query go unanswered is left out of look-ups
/// this long (Windows' WinsDownTimeout), and a registration it did not
/// answer is tried again this much later...
const WINS_DOWN: Duration = Duration::from_secs(15);
/// ...then twice as long each time, up to two minutes (Windows tries again
/// at an eighth of its 16-minute InitialRefreshTimeout).
const WINS_RETRY_MAX: Duration = Duration::from_secs(120);
/// What we ask a WINS server for, and answer queries with: nmbd's three days.
const OUR_TTL: u32 = 259_200;
/// A refresh that got no answer is tried again this much later.
const REFRESH_RETRY: Duration = Duration::from_secs(60);
/// Cached answers live as long as they say, but no longer than this, so a
/// host that moved is found again soon.
const MAX_CACHE_TTL: Duration = Duration::from_secs(600);
/// How long "nobody answered" is remembered, so a burst of writes to a
/// missing name costs one query.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Bounds on what the network and local writers can make us wait for.
const MAX_QUERIES: usize = 256;
const MAX_WAITERS: usize = 4096;
/// Bytes of the statistics block of a node status (RFC 1002 §4.2.18);
/// we have no adapter figures, so it is all zero, as nmbd's is.
const STATISTICS_LEN: usize = 46;

/// How long a query waits for an answer before it is sent again.
fn query_interval(at_wins: bool) -> Duration {
    if at_wins {
        WINS_INTERVAL
    } else {
        QUERY_INTERVAL
    }
}

/// What the name service needs to know.
#[derive(Clone, Debug)]
pub struct NameConfig {
    pub computer: String,
    pub domain: String,
    /// Our interface address: the NB_ADDRESS we register and answer with.
    pub address: Ipv4Addr,
    /// Our name-service port (137, or one below a custom datagram port).
    pub port: u16,
    /// Where broadcast requests go.
    pub broadcast: SocketAddrV4,
    /// A WINS server to register with and ask first.
    pub wins: Option<SocketAddrV4>,
    /// Sources to hear; empty hears every source.
    pub allow: Vec<Cidr>,
    /// First NAME_TRN_ID to use (the socket layer picks one per run).
    pub first_transaction_id: u16,
}

/// Where an answer came from, counted by source in `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Cache,
    Wins,
    Broadcast,
}

/// A name's address, as an answer gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub address: Ipv4Addr,
    /// A group name: its datagrams go to the group (broadcast) address.
    pub group: bool,
    pub source: Source,
}

/// What [`NameService::resolve`] could say at once.
#[derive(Debug)]
pub enum Resolution<W> {
    /// The cache knew it; the waiter is handed back.
    Known(Answer, W),
    /// Asked; the waiter comes back in [`Event::Resolved`].
    Asking,
    /// Nobody answered a moment ago; the waiter is handed back.
    NotFound(W),
    /// Too many look-ups in flight; the waiter is handed back.
    Busy(W),
}

/// Something the caller must act on.
#[derive(Debug)]
pub enum Event<W> {
    /// A look-up ended: an answer, or `None` when nobody answered.
    Resolved {
        name: NetbiosName,
        answer: Option<Answer>,
        waiters: Vec<W>,
    },
    /// Another host holds one of our names.
    Conflict { name: NetbiosName, holder: Ipv4Addr },
}

/// How our registrations stand, for the mount to wait on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    InProgress,
    Done,
    /// `holder` defended the name on the subnet, or, `by_wins`, is the
    /// WINS server that refused it.
    Conflict {
        name: NetbiosName,
        holder: Ipv4Addr,
        by_wins: bool,
    },
}

/// One packet to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameTransmit {
    pub to: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// Everything the name service counts; each is a `status` figure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameCounters {
    pub received: u64,
    pub malformed: u64,
    pub not_allowed: u64,
    /// Sent to another of the host's addresses, or broadcast on another of
    /// its links: not ours to answer.
    pub elsewhere: u64,
    pub queries_answered: u64,
    pub status_answered: u64,
    pub registrations_defended: u64,
    pub conflicts: u64,
    pub resolved_cache: u64,
    pub resolved_wins: u64,
    pub resolved_broadcast: u64,
    pub resolve_failed: u64,
    pub resolve_busy: u64,
}

/// Where a name stands, on the subnet or at the WINS server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A request is out; `refresh` when the name was held already.
    Asking {
        id: u16,
        sent: u8,
        next: Instant,
        refresh: bool,
    },
    Held {
        /// When to refresh (WINS only).
        refresh: Option<Instant>,
    },
    Conflict(Ipv4Addr),
    /// The WINS server did not answer; the subnet still knows us, and the
    /// registration is tried again at `retry`.
    Unreachable {
        retry: Instant,
    },
    Released,
}

impl Phase {
    fn label(self, now: Instant) -> String {
        match self {
            Phase::Asking { refresh: false, .. } => "registering".to_owned(),
            Phase::Asking { refresh: true, .. } => "refreshing".to_owned(),
            Phase::Held { .. } => "registered".to_owned(),
            Phase::Conflict(holder) => format!("conflict with {holder}"),
            Phase::Unreachable { retry } => format!(
                "no answer, next try in {} s",
                retry.saturating_duration_since(now).as_secs()
            ),
            Phase::Released => "released".to_owned(),
        }
    }
}

struct Owned {
    name: NetbiosName,
    group: bool,
    broadcast: Phase,
    wins: Option<Phase>,
    /// How long the WINS server gets before it is asked again, should it
    /// miss this round too.
    wins_backoff: Duration,
}

impl Owned {
    fn held(&self) -> bool {
        matches!(self.broadcast, Phase::Held { .. })
    }
}

/// A look-up in flight.
struct Query<W> {
    name: NetbiosName,
    id: u16,
    at_wins: bool,
    sent: u8,
    next: Instant,
    waiters: Vec<W>,
}

/// The name service of one bridge.
pub struct NameService<W> {
    config: NameConfig,
    owned: Vec<Owned>,
    queries: Vec<Query<W>>,
    waiters: usize,
    /// Answers (address, group), or `None`: nobody answered.
    cache: NameCache<Option<(Ipv4Addr, bool)>>,
    next_id: u16,
    transmits: Vec<NameTransmit>,
    events: Vec<Event<W>>,
    counters: NameCounters,
    /// Until when look-ups leave out a WINS server that let a query go
    /// unanswered.
    wins_quiet_until: Option<Instant>,
}

impl<W> NameService<W> {
    /// A service that registers our names from its first
    /// [`poll`](Self::poll) on (so that the first retry waits its full
    /// interval, however long the caller took to start polling).
    pub fn new(config: NameConfig, now: Instant) -> Result<Self, String> {
        let name = |text: &str, suffix| {
            NetbiosName::new(text, suffix).map_err(|e| format!("NetBIOS name {text}: {e}"))
        };
        let names = [
            (name(&config.computer, WORKSTATION)?, false),
            (name(&config.computer, MESSENGER)?, false),
            (name(&config.domain, WORKSTATION)?, true),
        ];
        let mut service = Self {
            next_id: config.first_transaction_id,
            config,
            owned: Vec::new(),
            queries: Vec::new(),
            waiters: 0,
            cache: NameCache::default(),
            transmits: Vec::new(),
            events: Vec::new(),
            counters: NameCounters::default(),
            wins_quiet_until: None,
        };
        for (name, group) in names {
            let broadcast = service.asking(now, false);
            let wins = service.config.wins.map(|_| service.asking(now, false));
            service.owned.push(Owned {
                name,
                group,
                broadcast,
                wins,
                wins_backoff: WINS_DOWN,
            });
        }
        Ok(service)
    }

    fn asking(&mut self, now: Instant, refresh: bool) -> Phase {
        Phase::Asking {
            id: self.transaction_id(),
            sent: 0,
            next: now,
            refresh,
        }
    }

    fn transaction_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// The packets to send now.
    pub fn drain_transmits(&mut self) -> Vec<NameTransmit> {
        std::mem::take(&mut self.transmits)
    }

    /// Every event so far.
    pub fn drain_events(&mut self) -> Vec<Event<W>> {
        std::mem::take(&mut self.events)
    }

    pub fn counters(&self) -> NameCounters {
        self.counters
    }

    pub fn config(&self) -> &NameConfig {
        &self.config
    }

    /// Whether every name is registered (or refused).
    pub fn registration(&self) -> Registration {
        let mut done = Registration::Done;
        for owned in &self.owned {
            let phases = [(Some(owned.broadcast), false), (owned.wins, true)];
            for (phase, by_wins) in phases {
                match phase {
                    Some(Phase::Conflict(holder)) => {
                        return Registration::Conflict {
                            name: owned.name,
                            holder,
                            by_wins,
                        };
                    }
                    Some(Phase::Asking { refresh: false, .. }) => done = Registration::InProgress,
                    _ => {}
                }
            }
        }
        done
    }

    /// Our names and how each stands, `NAME<xx>[ group]: STATE[, WINS
    /// STATE]`, for `status`.
    pub fn names_held(&self, now: Instant) -> Vec<String> {
        self.owned
            .iter()
            .map(|o| {
                let kind = if o.group { " group" } else { "" };
                let wins = o
                    .wins
                    .map(|w| format!(", WINS {}", w.label(now)))
                    .unwrap_or_default();
                format!("{}{kind}: {}{wins}", o.name, o.broadcast.label(now))
            })
            .collect()
    }

    /// Whether look-ups ask the WINS server first: not while a
    /// registration it did not answer waits for its next try, nor for a
    /// while after it let a query go unanswered.
    fn wins_usable(&self, now: Instant) -> bool {
        self.config.wins.is_some()
            && !self
                .owned
                .iter()
                .any(|o| matches!(o.wins, Some(Phase::Unreachable { .. })))
            && self.wins_quiet_until.is_none_or(|until| until <= now)
    }

    /// How the WINS server is used, for `status`: empty without one.
    pub fn wins_state(&self, now: Instant) -> String {
        match (self.config.wins, self.wins_usable(now)) {
            (None, _) => String::new(),
            (Some(_), true) => "asked first".to_owned(),
            (Some(_), false) => "left out of look-ups: it does not answer".to_owned(),
        }
    }

    /// The cache, `NAME<xx>=ADDR` or `NAME<xx>=none` (negative), oldest
    /// expiry first, without entries past their time.
    pub fn cache_entries(&self, now: Instant) -> Vec<String> {
        self.cache
            .live(now)
            .into_iter()
            .map(|(name, answer)| match answer {
                Some((address, false)) => format!("{name}={address}"),
                Some((address, true)) => format!("{name}={address} group"),
                None => format!("{name}=none"),
            })
            .collect()
    }

    /// The earliest time [`poll`](Self::poll) has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let owned = self.owned.iter().flat_map(|o| {
            [Some(o.broadcast), o.wins]
                .into_iter()
                .flatten()
                .filter_map(|phase| match phase {
                    Phase::Asking { next, .. } => Some(next),
                    Phase::Held { refresh } => refresh,
                    Phase::Unreachable { retry } => Some(retry),
                    _ => None,
                })
        });
        owned.chain(self.queries.iter().map(|q| q.next)).min()
    }

    /// Sends what is due: retries, refreshes, and the ends of waits.
    pub fn poll(&mut self, now: Instant) {
        for i in 0..self.owned.len() {
            self.poll_broadcast_registration(i, now);
            self.poll_wins_registration(i, now);
        }
        let mut i = 0;
        while i < self.queries.len() {
            let query = &mut self.queries[i];
            if query.next > now {
                i += 1;
                continue;
            }
            let tries = if query.at_wins {
                WINS_TRIES
            } else {
                QUERY_TRIES
            };
            if query.sent < tries {
                query.sent += 1;
                query.next = now + query_interval(query.at_wins);
                let (name, id, at_wins) = (query.name, query.id, query.at_wins);
                self.send_query(name, id, at_wins);
                i += 1;
            } else if query.at_wins {
                if let Some(wins) = self.config.wins {
                    log::warn!(
                        "bridge: WINS server {wins} did not answer a query: \
                         look-ups leave it out for {} s",
                        WINS_DOWN.as_secs()
                    );
                }
                self.wins_quiet_until = Some(now + WINS_DOWN);
                self.ask_subnet(i, now);
                i += 1;
            } else {
                let query = self.queries.swap_remove(i);
                self.finish(query, None, now);
            }
        }
    }

    fn poll_broadcast_registration(&mut self, i: usize, now: Instant) {
        let Phase::Asking { id, sent, next, .. } = self.owned[i].broadcast else {
            return;
        };
        if next > now {
            return;
        }
        self.owned[i].broadcast = if sent < REGISTRATION_TRIES {
            let request = self.registration_request(i, id, Opcode::Registration, true);
            self.send(self.config.broadcast, &request);
            Phase::Asking {
                id,
                sent: sent + 1,
                next: now + REGISTRATION_INTERVAL,
                refresh: false,
            }
        } else {
            log::info!("bridge: {} is ours on this subnet", self.owned[i].name);
            Phase::Held { refresh: None }
        };
    }

    fn poll_wins_registration(&mut self, i: usize, now: Instant) {
        let (Some(wins), Some(mut phase)) = (self.config.wins, self.owned[i].wins) else {
            return;
        };
        match phase {
            Phase::Held { refresh: Some(at) } if at <= now => phase = self.asking(now, true),
            Phase::Unreachable { retry } if retry <= now => phase = self.asking(now, false),
            _ => {}
        }
        let Phase::Asking {
            id,
            sent,
            next,
            refresh,
        } = phase
        else {
            return;
        };
        let name = self.owned[i].name;
        self.owned[i].wins = Some(if next > now {
            phase
        } else if sent < WINS_TRIES {
            let opcode = if refresh {
                Opcode::Refresh
            } else {
                Opcode::Registration
            };
            let request = self.registration_request(i, id, opcode, false);
            self.send(wins, &request);
            Phase::Asking {
                id,
                sent: sent + 1,
                next: now + WINS_INTERVAL,
                refresh,
            }
        } else if refresh {
            log::warn!("bridge: WINS server {wins} did not answer the refresh of {name}");
            Phase::Held {
                refresh: Some(now + REFRESH_RETRY),
            }
        } else {
            let owned = &mut self.owned[i];
            let retry = now + owned.wins_backoff;
            log::warn!(
                "bridge: WINS server {wins} did not answer: {name} is known on this subnet \
                 only; asking again in {} s",
                owned.wins_backoff.as_secs()
            );
            owned.wins_backoff = (owned.wins_backoff * 2).min(WINS_RETRY_MAX);
            Phase::Unreachable { retry }
        });
    }

    /// A NAME REGISTRATION (or REFRESH) request for our name `i`.
    fn registration_request(
        &self,
        i: usize,
        id: u16,
        opcode: Opcode,
        broadcast: bool,
    ) -> NamePacket {
        let owned = &self.owned[i];
        NamePacket {
            transaction_id: id,
            response: false,
            opcode,
            flags: HeaderFlags {
                recursion_desired: true,
                broadcast,
                ..HeaderFlags::default()
            },
            rcode: rcode::OK,
            questions: vec![self.question(owned.name, QuestionType::Nb)],
            answers: Vec::new(),
            authority: Vec::new(),
            // A broadcast registration claims no lifetime (as nmbd sends it).
            additional: vec![self.our_record(owned, if broadcast { 0 } else { OUR_TTL })],
        }
    }

    fn question(&self, name: NetbiosName, kind: QuestionType) -> Question {
        Question {
            name,
            scope: Scope::default(),
            kind,
        }
    }

    fn node_type(&self) -> NodeType {
        match self.config.wins {
            Some(_) => NodeType::H,
            None => NodeType::B,
        }
    }

    fn our_record(&self, owned: &Owned, ttl: u32) -> Record {
        Record {
            name: owned.name,
            scope: Scope::default(),
            ttl,
            data: RecordData::Addresses(vec![NbAddress {
                group: owned.group,
                node_type: self.node_type(),
                address: self.config.address,
            }]),
        }
    }

    fn send(&mut self, to: SocketAddrV4, packet: &NamePacket) {
        // Every packet we build fits the wire; a failure would be a bug
        // here, and is logged rather than sent half-made.
        match packet.emit() {
            Ok(payload) => self.transmits.push(NameTransmit { to, payload }),
            Err(e) => log::error!("bridge: cannot encode a name packet: {e}"),
        }
    }

    fn send_query(&mut self, name: NetbiosName, id: u16, at_wins: bool) {
        let (to, broadcast) = match (at_wins, self.config.wins) {
            (true, Some(wins)) => (wins, false),
            _ => (self.config.broadcast, true),
        };
        let query = NamePacket {
            transaction_id: id,
            response: false,
            opcode: Opcode::Query,
            flags: HeaderFlags {
                recursion_desired: true,
                broadcast,
                ..HeaderFlags::default()
            },
            rcode: rcode::OK,
            questions: vec![self.question(name, QuestionType::Nb)],
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        };
        self.send(to, &query);
    }

    /// Moves look-up `i` from the WINS server to the subnet.
    fn ask_subnet(&mut self, i: usize, now: Instant) {
        let id = self.transaction_id();
        let query = &mut self.queries[i];
        query.at_wins = false;
        query.id = id;
        query.sent = 1;
        query.next = now + QUERY_INTERVAL;
        let name = query.name;
        self.send_query(name, id, false);
    }

    /// Looks `name` up. Our own names are not looked up here: the bridge
    /// knows them.
    pub fn resolve(&mut self, now: Instant, name: NetbiosName, waiter: W) -> Resolution<W> {
        if let Some(cached) = self.cache.get(&name, now) {
            return match cached {
                Some((address, group)) => {
                    self.counters.resolved_cache += 1;
                    Resolution::Known(
                        Answer {
                            address,
                            group,
                            source: Source::Cache,
                        },
                        waiter,
                    )
                }
                None => {
                    self.counters.resolve_failed += 1;
                    Resolution::NotFound(waiter)
                }
            };
        }
        if self.waiters >= MAX_WAITERS {
            self.counters.resolve_busy += 1;
            return Resolution::Busy(waiter);
        }
        if let Some(query) = self.queries.iter_mut().find(|q| q.name == name) {
            query.waiters.push(waiter);
            self.waiters += 1;
            return Resolution::Asking;
        }
        if self.queries.len() >= MAX_QUERIES {
            self.counters.resolve_busy += 1;
            return Resolution::Busy(waiter);
        }
        let id = self.transaction_id();
        let at_wins = self.wins_usable(now);
        self.queries.push(Query {
            name,
            id,
            at_wins,
            sent: 1,
            next: now + query_interval(at_wins),
            waiters: vec![waiter],
        });
        self.waiters += 1;
        self.send_query(name, id, at_wins);
        Resolution::Asking
    }

    /// Ends a look-up: caches what it found (or that nothing was) and hands
    /// its waiters back.
    fn finish(&mut self, query: Query<W>, answer: Option<Answer>, now: Instant) {
        self.waiters -= query.waiters.len();
        match answer {
            Some(a) if a.source == Source::Wins => self.counters.resolved_wins += 1,
            Some(_) => self.counters.resolved_broadcast += 1,
            None => self.counters.resolve_failed += 1,
        }
        self.events.push(Event::Resolved {
            name: query.name,
            answer,
            waiters: query.waiters,
        });
        if answer.is_none() {
            self.cache.insert(query.name, None, NEGATIVE_TTL, now);
        }
    }

    /// Counts a packet that came for another of the host's addresses or
    /// links (the socket layer tells them apart); it is not heard.
    pub fn on_packet_elsewhere(&mut self) {
        self.counters.received += 1;
        self.counters.elsewhere += 1;
    }

    /// Handles one packet received on the name-service port.
    pub fn on_packet(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        self.counters.received += 1;
        if *from.ip() == self.config.address && from.port() == self.config.port {
            return; // our own broadcast, looped back
        }
        if !self.config.allow.is_empty()
            && !self.config.allow.iter().any(|c| c.contains(*from.ip()))
        {
            self.counters.not_allowed += 1;
            return;
        }
        let packet = match NamePacket::parse(bytes) {
            Ok(packet) => packet,
            Err(e) => {
                self.counters.malformed += 1;
                log::debug!("bridge: name packet from {from}: {e}");
                return;
            }
        };
        if self.is_wins(from) {
            self.wins_quiet_until = None; // it answers again
        }
        // Peers only hear peers in their own scope; ours is the default.
        if packet.questions.iter().any(|q| !q.scope.is_empty())
            || packet.answers.iter().any(|r| !r.scope.is_empty())
        {
            return;
        }
        match (packet.response, packet.opcode) {
            (false, Opcode::Query) => self.on_query(from, &packet),
            (false, Opcode::Registration | Opcode::MultiHomedRegistration) => {
                self.on_registration(from, &packet)
            }
            (false, Opcode::Release) => self.forget(&packet),
            (true, Opcode::Query) => self.on_query_response(now, from, &packet),
            (
                true,
                Opcode::Registration
                | Opcode::MultiHomedRegistration
                | Opcode::Refresh
                | Opcode::RefreshAlt,
            ) => self.on_registration_response(now, from, &packet),
            (true, Opcode::Wack) => self.on_wack(now, from, &packet),
            _ => {}
        }
    }

    fn is_wins(&self, from: SocketAddrV4) -> bool {
        self.config.wins.is_some_and(|w| w.ip() == from.ip())
    }

    fn held(&self, name: &NetbiosName) -> Option<&Owned> {
        self.owned
            .iter()
            .find(|o| o.held() && o.name.eq_ignore_ascii_case(name))
    }

    fn response_to(&self, request: &NamePacket, rcode: u8, answer: Record) -> NamePacket {
        NamePacket {
            transaction_id: request.transaction_id,
            response: true,
            opcode: request.opcode,
            flags: HeaderFlags {
                authoritative: true,
                recursion_desired: request.flags.recursion_desired,
                ..HeaderFlags::default()
            },
            rcode,
            questions: Vec::new(),
            answers: vec![answer],
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    fn on_query(&mut self, from: SocketAddrV4, request: &NamePacket) {
        let Some(question) = request.questions.first() else {
            return;
        };
        match question.kind {
            QuestionType::Nb => {
                let Some(owned) = self.held(&question.name) else {
                    return;
                };
                let mut record = self.our_record(owned, OUR_TTL);
                record.name = question.name;
                let response = self.response_to(request, rcode::OK, record);
                self.counters.queries_answered += 1;
                self.send(from, &response);
            }
            QuestionType::NodeStatus => {
                let wildcard = NetbiosName::from_raw(*b"*\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 0);
                if question.name != wildcard && self.held(&question.name).is_none() {
                    return;
                }
                let names = self
                    .owned
                    .iter()
                    .filter(|o| o.held())
                    .map(|o| StatusName {
                        name: o.name,
                        group: o.group,
                        node_type: self.node_type(),
                        deregistering: false,
                        conflict: false,
                        active: true,
                        permanent: false,
                    })
                    .collect();
                let record = Record {
                    name: question.name,
                    scope: Scope::default(),
                    ttl: 0,
                    data: RecordData::NodeStatus(NodeStatus {
                        names,
                        statistics: vec![0; STATISTICS_LEN],
                    }),
                };
                let response = self.response_to(request, rcode::OK, record);
                self.counters.status_answered += 1;
                self.send(from, &response);
            }
        }
    }

    /// Another node claims a name: if it is one of our unique names, it is
    /// defended once held (a negative response, ACT_ERR), and lost while
    /// we are still claiming it ourselves, as Windows gives up a name two
    /// nodes claim at once; a name we cached may have moved, so it is
    /// forgotten.
    fn on_registration(&mut self, from: SocketAddrV4, request: &NamePacket) {
        let Some(question) = request.questions.first() else {
            return;
        };
        self.cache.remove(&question.name);
        let Some(i) = self
            .owned
            .iter()
            .position(|o| !o.group && o.name.eq_ignore_ascii_case(&question.name))
        else {
            return;
        };
        let claim = request.additional.first().cloned().unwrap_or_else(|| {
            let mut record = self.our_record(&self.owned[i], 0);
            record.data = RecordData::Addresses(Vec::new());
            record
        });
        if let RecordData::Addresses(addresses) = &claim.data
            && addresses.iter().all(|a| a.address == self.config.address)
            && !addresses.is_empty()
        {
            return; // our own claim, relayed
        }
        let holder = *from.ip();
        match self.owned[i].broadcast {
            Phase::Held { .. } => {
                log::info!("bridge: defending {} against {holder}", question.name);
                let mut response = self.response_to(request, rcode::ACTIVE, claim);
                response.flags.recursion_available = true;
                self.counters.registrations_defended += 1;
                self.send(from, &response);
            }
            Phase::Asking { refresh: false, .. } => {
                let name = self.owned[i].name;
                log::info!("bridge: {holder} claims {name} while we register it");
                self.owned[i].broadcast = Phase::Conflict(holder);
                self.counters.conflicts += 1;
                self.events.push(Event::Conflict { name, holder });
            }
            _ => {}
        }
    }

    /// A NAME RELEASE: whoever held the name no longer does.
    fn forget(&mut self, request: &NamePacket) {
        for question in &request.questions {
            self.cache.remove(&question.name);
        }
    }

    fn on_query_response(&mut self, now: Instant, from: SocketAddrV4, response: &NamePacket) {
        let Some(i) = self
            .queries
            .iter()
            .position(|q| q.id == response.transaction_id)
        else {
            return;
        };
        let from_wins = self.is_wins(from);
        let query = &self.queries[i];
        let found = response.answers.iter().find_map(|record| {
            let RecordData::Addresses(addresses) = &record.data else {
                return None;
            };
            let first = addresses.first()?;
            record
                .name
                .eq_ignore_ascii_case(&query.name)
                .then_some((record.ttl, *first))
        });
        match (response.rcode, found) {
            (rcode::OK, Some((ttl, entry))) => {
                let source = if query.at_wins && from_wins {
                    Source::Wins
                } else {
                    Source::Broadcast
                };
                let answer = Answer {
                    address: entry.address,
                    group: entry.group,
                    source,
                };
                let ttl = Duration::from_secs(ttl.into()).min(MAX_CACHE_TTL);
                let query = self.queries.swap_remove(i);
                self.cache
                    .insert(query.name, Some((answer.address, answer.group)), ttl, now);
                self.finish(query, Some(answer), now);
            }
            // The WINS server does not know it: ask the subnet.
            (rcode::NAME_ERROR, _) if query.at_wins && from_wins => self.ask_subnet(i, now),
            _ => {}
        }
    }

    fn on_registration_response(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        response: &NamePacket,
    ) {
        let from_wins = self.is_wins(from);
        for i in 0..self.owned.len() {
            let owned = &self.owned[i];
            let pending = |phase: Option<Phase>| matches!(phase, Some(Phase::Asking { id, .. }) if id == response.transaction_id);
            let at_wins = from_wins && pending(owned.wins);
            if !at_wins && !pending(Some(owned.broadcast)) {
                continue;
            }
            let name = owned.name;
            if response.rcode == rcode::OK {
                if at_wins {
                    let ttl = response.answers.first().map_or(OUR_TTL, |r| r.ttl).max(60);
                    let refresh = now + Duration::from_secs(u64::from(ttl) / 2);
                    log::info!("bridge: {name} registered with WINS server {from}");
                    let owned = &mut self.owned[i];
                    owned.wins = Some(Phase::Held {
                        refresh: Some(refresh),
                    });
                    owned.wins_backoff = WINS_DOWN;
                }
                // A positive answer to a broadcast registration means
                // nothing to a B-node: only silence or a defence count.
                return;
            }
            // The defender, or the WINS server that refused (its answer
            // names us, not the owner).
            let holder = *from.ip();
            log::info!("bridge: {name} is refused by {holder}");
            let phase = Phase::Conflict(holder);
            if at_wins {
                self.owned[i].wins = Some(phase);
            } else {
                self.owned[i].broadcast = phase;
            }
            self.counters.conflicts += 1;
            self.events.push(Event::Conflict { name, holder });
            return;
        }
    }

    /// A WINS server asks for patience: the registration it is working on
    /// gets another `ttl` seconds before it is sent again.
    fn on_wack(&mut self, now: Instant, from: SocketAddrV4, wack: &NamePacket) {
        if !self.is_wins(from) {
            return;
        }
        let ttl = wack.answers.first().map_or(0, |r| r.ttl);
        let wait = Duration::from_secs(ttl.into()).clamp(WINS_INTERVAL, MAX_WACK);
        for owned in &mut self.owned {
            if let Some(Phase::Asking { id, next, .. }) = &mut owned.wins
                && *id == wack.transaction_id
            {
                *next = now + wait;
            }
        }
    }

    /// Gives our names up: a release to the subnet and to the WINS server
    /// for each name held; afterwards nothing is answered or defended.
    pub fn release(&mut self) {
        for i in 0..self.owned.len() {
            let owned = &self.owned[i];
            let was_held = owned.held();
            let at_wins = matches!(
                owned.wins,
                Some(Phase::Held { .. } | Phase::Asking { refresh: true, .. })
            );
            if was_held {
                let id = self.transaction_id();
                let mut release = self.registration_request(i, id, Opcode::Release, true);
                release.flags.recursion_desired = false;
                self.send(self.config.broadcast, &release);
            }
            if let (true, Some(wins)) = (at_wins, self.config.wins) {
                let id = self.transaction_id();
                let mut release = self.registration_request(i, id, Opcode::Release, false);
                release.flags.recursion_desired = false;
                self.send(wins, &release);
            }
            let owned = &mut self.owned[i];
            owned.broadcast = Phase::Released;
            owned.wins = owned.wins.map(|_| Phase::Released);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
    const OTHER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
    const WINS: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 1);

    fn config(wins: bool) -> NameConfig {
        NameConfig {
            computer: "ALPHA".into(),
            domain: "DOM".into(),
            address: US,
            port: 137,
            broadcast: "10.9.0.255:137".parse().unwrap(),
            wins: wins.then(|| SocketAddrV4::new(WINS, 137)),
            allow: Vec::new(),
            first_transaction_id: 100,
        }
    }

    fn sent(service: &mut NameService<u32>) -> Vec<(SocketAddrV4, NamePacket)> {
        service
            .drain_transmits()
            .into_iter()
            .map(|t| (t.to, NamePacket::parse(&t.payload).unwrap()))
            .collect()
    }

    /// Runs the clock in 50 ms steps until `until`.
    fn run(service: &mut NameService<u32>, from: Instant, until: Duration) -> Instant {
        let mut now = from;
        while now < from + until {
            now += Duration::from_millis(50);
            service.poll(now);
        }
        now
    }

    fn registered(wins: bool) -> (NameService<u32>, Instant) {
        let t0 = Instant::now();
        let mut s = NameService::new(config(wins), t0).unwrap();
        s.poll(t0);
        let now = run(&mut s, t0, Duration::from_secs(1));
        assert_eq!(s.registration(), Registration::Done);
        s.drain_transmits();
        (s, now)
    }

    fn reply(to: &NamePacket, rcode: u8, ttl: u32, address: Ipv4Addr, group: bool) -> Vec<u8> {
        NamePacket {
            transaction_id: to.transaction_id,
            response: true,
            opcode: to.opcode,
            flags: HeaderFlags::default(),
            rcode,
            questions: Vec::new(),
            answers: vec![Record {
                name: to.questions[0].name,
                scope: Scope::default(),
                ttl,
                data: RecordData::Addresses(vec![NbAddress {
                    group,
                    node_type: NodeType::B,
                    address,
                }]),
            }],
            authority: Vec::new(),
            additional: Vec::new(),
        }
        .emit()
        .unwrap()
    }

    fn query(name: &str, suffix: u8, kind: QuestionType) -> Vec<u8> {
        NamePacket {
            transaction_id: 7,
            response: false,
            opcode: Opcode::Query,
            flags: HeaderFlags {
                broadcast: true,
                ..HeaderFlags::default()
            },
            rcode: 0,
            questions: vec![Question {
                name: NetbiosName::new(name, suffix).unwrap(),
                scope: Scope::default(),
                kind,
            }],
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
        .emit()
        .unwrap()
    }

    #[test]
    fn three_silent_broadcasts_make_a_name_ours() {
        let t0 = Instant::now();
        let mut s = NameService::<u32>::new(config(false), t0).unwrap();
        assert!(
            s.drain_transmits().is_empty(),
            "nothing before the first poll"
        );
        s.poll(t0);
        let first = sent(&mut s);
        assert_eq!(first.len(), 3, "one request per name at once");
        for (to, p) in &first {
            assert_eq!(to.to_string(), "10.9.0.255:137");
            assert!(p.flags.broadcast && p.opcode == Opcode::Registration);
        }
        assert!(matches!(&first[2].1.additional[0].data,
            RecordData::Addresses(a) if a[0].group && a[0].address == US));
        let mut now = t0;
        for _ in 0..2 {
            assert_eq!(s.next_deadline(), Some(now + REGISTRATION_INTERVAL));
            now += REGISTRATION_INTERVAL;
            s.poll(now);
            let again = sent(&mut s);
            assert_eq!(again.len(), 3);
            assert_eq!(again[0].1.transaction_id, first[0].1.transaction_id);
            assert_eq!(s.registration(), Registration::InProgress);
        }
        s.poll(now + REGISTRATION_INTERVAL);
        assert_eq!(s.registration(), Registration::Done);
        assert_eq!(s.next_deadline(), None, "an idle service sleeps");
    }

    #[test]
    fn a_defence_is_a_conflict_naming_the_holder() {
        let t0 = Instant::now();
        let mut s = NameService::<u32>::new(config(false), t0).unwrap();
        s.poll(t0);
        let requests = sent(&mut s);
        let from = SocketAddrV4::new(OTHER, 137);
        s.on_packet(
            t0,
            from,
            &reply(&requests[0].1, rcode::ACTIVE, 0, OTHER, false),
        );
        let name = NetbiosName::new("ALPHA", 0).unwrap();
        assert_eq!(
            s.registration(),
            Registration::Conflict {
                name,
                holder: OTHER,
                by_wins: false,
            }
        );
        assert!(matches!(
            s.drain_events()[..],
            [Event::Conflict { holder: OTHER, .. }]
        ));
        assert_eq!(s.counters().conflicts, 1);
    }

    #[test]
    fn held_names_are_answered_and_defended() {
        let (mut s, now) = registered(false);
        let asker = "10.9.0.7:50000".parse().unwrap();
        s.on_packet(now, asker, &query("alpha", 0, QuestionType::Nb));
        let answers = sent(&mut s);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].0, asker, "to the asker's own port");
        let answer = &answers[0].1;
        assert!(answer.response && answer.flags.authoritative);
        assert!(matches!(&answer.answers[0].data, RecordData::Addresses(a) if a[0].address == US));
        s.on_packet(now, asker, &query("NOBODY", 0, QuestionType::Nb));
        assert!(sent(&mut s).is_empty());
        s.on_packet(now, asker, &query("*", 0, QuestionType::NodeStatus));
        let status = sent(&mut s);
        let RecordData::NodeStatus(st) = &status[0].1.answers[0].data else {
            panic!("{status:?}")
        };
        let names: Vec<String> = st.names.iter().map(|n| n.name.to_string()).collect();
        assert_eq!(names, ["ALPHA<00>", "ALPHA<03>", "DOM<00>"]);
        // Someone else registers our unique name, then our group name.
        let mut other = NameService::<u32>::new(
            NameConfig {
                address: OTHER,
                ..config(false)
            },
            now,
        )
        .unwrap();
        other.poll(now);
        let t = other.drain_transmits();
        let from = SocketAddrV4::new(OTHER, 137);
        s.on_packet(now, from, &t[0].payload);
        let defence = sent(&mut s);
        assert_eq!(defence[0].0, from);
        assert_eq!(defence[0].1.rcode, rcode::ACTIVE);
        s.on_packet(now, from, &t[2].payload);
        assert!(sent(&mut s).is_empty(), "group names are shared");
        assert_eq!(s.counters().registrations_defended, 1);
        // Our own broadcasts come back to us and are not answered.
        s.on_packet(
            now,
            SocketAddrV4::new(US, 137),
            &query("ALPHA", 0, QuestionType::Nb),
        );
        assert!(sent(&mut s).is_empty());
        s.release();
        let releases = sent(&mut s);
        assert_eq!(releases.len(), 3);
        assert!(releases.iter().all(|(_, p)| p.opcode == Opcode::Release));
        s.on_packet(now, asker, &query("alpha", 0, QuestionType::Nb));
        assert!(sent(&mut s).is_empty(), "released names are not answered");
    }

    #[test]
    fn broadcast_lookups_are_answered_cached_or_given_up() {
        let (mut s, now) = registered(false);
        let beta = NetbiosName::new("BETA", 0).unwrap();
        assert!(matches!(s.resolve(now, beta, 1), Resolution::Asking));
        assert!(matches!(s.resolve(now, beta, 2), Resolution::Asking));
        let q = sent(&mut s);
        assert_eq!(q.len(), 1, "one query for both waiters");
        s.on_packet(
            now,
            SocketAddrV4::new(OTHER, 137),
            &reply(&q[0].1, 0, 300_000, OTHER, false),
        );
        match &s.drain_events()[..] {
            [
                Event::Resolved {
                    answer: Some(a),
                    waiters,
                    ..
                },
            ] => {
                assert_eq!((a.address, a.source), (OTHER, Source::Broadcast));
                assert_eq!(waiters, &[1, 2]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(s.resolve(now, beta, 3), Resolution::Known(a, 3) if a.source == Source::Cache)
        );
        // Cached for at most ten minutes, whatever the answer said.
        let later = now + MAX_CACHE_TTL + Duration::from_secs(1);
        assert!(matches!(s.resolve(later, beta, 4), Resolution::Asking));

        let nobody = NetbiosName::new("NOBODY", 0).unwrap();
        assert!(matches!(s.resolve(now, nobody, 5), Resolution::Asking));
        let end = run(&mut s, now, Duration::from_millis(1400));
        assert!(s.drain_events().is_empty(), "still asking at 1.4 s");
        let end = run(&mut s, end, Duration::from_millis(200));
        assert!(
            matches!(&s.drain_events()[..], [Event::Resolved { answer: None, waiters, .. }] if waiters == &[5])
        );
        let queries: Vec<_> = sent(&mut s)
            .into_iter()
            .filter(|(_, p)| p.questions[0].name == nobody)
            .collect();
        assert_eq!(queries.len(), 3);
        assert!(matches!(s.resolve(end, nobody, 6), Resolution::NotFound(6)));
        assert!(matches!(
            s.resolve(end + NEGATIVE_TTL, nobody, 7),
            Resolution::Asking
        ));
    }

    #[test]
    fn lookups_are_bounded() {
        let (mut s, now) = registered(false);
        for i in 0..MAX_QUERIES {
            let name = NetbiosName::new(&format!("N{i}"), 0).unwrap();
            assert!(matches!(s.resolve(now, name, 0), Resolution::Asking));
        }
        let one_more = NetbiosName::new("ONEMORE", 0).unwrap();
        assert!(matches!(s.resolve(now, one_more, 9), Resolution::Busy(9)));
        assert_eq!(s.counters().resolve_busy, 1);
    }

    #[test]
    fn wins_registers_waits_on_wack_and_is_asked_first() {
        let t0 = Instant::now();
        let mut s = NameService::<u32>::new(config(true), t0).unwrap();
        s.poll(t0);
        let wins = SocketAddrV4::new(WINS, 137);
        let first = sent(&mut s);
        let to_wins: Vec<_> = first.iter().filter(|(to, _)| *to == wins).collect();
        assert_eq!(to_wins.len(), 3);
        assert!(!to_wins[0].1.flags.broadcast);
        // WINS asks for 5 s of patience for the first name.
        let wack = NamePacket {
            opcode: Opcode::Wack,
            ..NamePacket::parse(&reply(&to_wins[0].1, 0, 5, US, false)).unwrap()
        };
        s.on_packet(t0, wins, &wack.emit().unwrap());
        for (_, request) in &to_wins[1..] {
            s.on_packet(t0, wins, &reply(request, 0, 600, US, false));
        }
        let now = run(&mut s, t0, Duration::from_secs(3));
        assert_eq!(
            s.registration(),
            Registration::InProgress,
            "waiting on the WACK"
        );
        s.on_packet(now, wins, &reply(&to_wins[0].1, 0, 600, US, false));
        assert_eq!(s.registration(), Registration::Done);
        assert!(
            s.names_held(now)[0].contains("WINS registered"),
            "{:?}",
            s.names_held(now)
        );
        sent(&mut s);
        // A refresh at half the TTL.
        let half = run(&mut s, now, Duration::from_secs(301));
        let refreshes = sent(&mut s);
        assert!(
            refreshes
                .iter()
                .any(|(to, p)| *to == wins && p.opcode == Opcode::Refresh)
        );
        // Look-ups go to WINS first, then to the subnet when it does not know.
        let beta = NetbiosName::new("BETA", 0).unwrap();
        s.resolve(half, beta, 1);
        let q = sent(&mut s);
        assert_eq!(q[0].0, wins);
        s.on_packet(half, wins, &reply(&q[0].1, rcode::NAME_ERROR, 0, US, false));
        let q = sent(&mut s);
        assert!(q[0].1.flags.broadcast);
        s.on_packet(
            half,
            SocketAddrV4::new(OTHER, 137),
            &reply(&q[0].1, 0, 60, OTHER, false),
        );
        assert!(
            matches!(&s.drain_events()[..], [Event::Resolved { answer: Some(a), .. }] if a.source == Source::Broadcast)
        );
        let gamma = NetbiosName::new("GAMMA", 0).unwrap();
        s.resolve(half, gamma, 2);
        let q = sent(&mut s);
        s.on_packet(half, wins, &reply(&q[0].1, 0, 60, OTHER, false));
        assert!(
            matches!(&s.drain_events()[..], [Event::Resolved { answer: Some(a), .. }] if a.source == Source::Wins)
        );
    }

    /// Queries at the WINS server go out 1.5 s apart, three times (Windows'
    /// NameSrvQueryTimeout and NameSrvQueryCount), then to the subnet; a
    /// server that let one go unanswered is left out of look-ups for 15 s.
    #[test]
    fn a_silent_wins_server_is_asked_three_times_then_left_out_for_a_while() {
        let t0 = Instant::now();
        let mut s = NameService::<u32>::new(config(true), t0).unwrap();
        s.poll(t0);
        let wins = SocketAddrV4::new(WINS, 137);
        for (_, request) in sent(&mut s).iter().filter(|(to, _)| *to == wins) {
            s.on_packet(t0, wins, &reply(request, 0, 600, US, false));
        }
        let now = run(&mut s, t0, Duration::from_secs(1));
        assert_eq!(s.registration(), Registration::Done);
        sent(&mut s);
        let nobody = NetbiosName::new("NOBODY", 0).unwrap();
        assert!(matches!(s.resolve(now, nobody, 1), Resolution::Asking));
        let mut at = vec![(now, sent(&mut s))];
        let mut t = now;
        while at.iter().map(|(_, p)| p.len()).sum::<usize>() < 4 {
            t += Duration::from_millis(50);
            s.poll(t);
            let p = sent(&mut s);
            if !p.is_empty() {
                at.push((t, p));
            }
        }
        let to_wins: Vec<Instant> = at
            .iter()
            .filter(|(_, p)| p[0].0 == wins)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(to_wins.len(), 3);
        for pair in to_wins.windows(2) {
            assert_eq!(pair[1] - pair[0], WINS_INTERVAL);
        }
        let subnet = at.last().unwrap();
        assert!(subnet.1[0].1.flags.broadcast, "then the subnet");
        assert_eq!(subnet.0 - now, WINS_INTERVAL * 3);
        assert_eq!(
            s.wins_state(subnet.0),
            "left out of look-ups: it does not answer"
        );
        // Nobody on the subnet either: 4.5 + 1.5 s in all.
        let end = run(&mut s, subnet.0, QUERY_WAIT);
        assert!(matches!(
            &s.drain_events()[..],
            [Event::Resolved { answer: None, .. }]
        ));
        let other = NetbiosName::new("OTHER", 0).unwrap();
        s.resolve(end, other, 2);
        assert!(sent(&mut s)[0].1.flags.broadcast, "WINS left out");
        let back = subnet.0 + WINS_DOWN;
        s.resolve(back, NetbiosName::new("THIRD", 0).unwrap(), 3);
        assert_eq!(sent(&mut s)[0].0, wins, "asked again after 15 s");
        // Any answer from it puts it back at once.
        s.wins_quiet_until = Some(back + WINS_DOWN);
        let q = NamePacket::parse(&query("X", 0, QuestionType::Nb)).unwrap();
        s.on_packet(back, wins, &reply(&q, rcode::NAME_ERROR, 0, US, false));
        assert_eq!(s.wins_state(back), "asked first");
    }

    /// A WINS server that misses the registrations at start is tried again
    /// after 15 s, then 30, 60, 120, 120 s..., left out of look-ups
    /// meanwhile; once it answers, the names are registered with it and it
    /// is asked first again.
    #[test]
    fn a_wins_server_that_missed_the_start_is_tried_again_with_backoff() {
        let t0 = Instant::now();
        let mut s = NameService::<u32>::new(config(true), t0).unwrap();
        s.poll(t0);
        let wins = SocketAddrV4::new(WINS, 137);
        let mut now = run(&mut s, t0, WINS_INTERVAL * 3);
        assert_eq!(s.registration(), Registration::Done, "the mount goes on");
        assert!(s.names_held(now)[0].contains("WINS no answer, next try in 15 s"));
        assert_eq!(
            s.wins_state(now),
            "left out of look-ups: it does not answer"
        );
        sent(&mut s);
        let beta = NetbiosName::new("BETA", 0).unwrap();
        s.resolve(now, beta, 1);
        assert!(sent(&mut s)[0].1.flags.broadcast, "straight to the subnet");
        // Rounds of three tries, 1.5 s apart, each ending 1.5 s after its
        // last try; each new round has a new transaction id.
        let mut rounds = vec![t0];
        let mut last_id = None;
        while rounds.len() < 6 {
            now += Duration::from_millis(100);
            s.poll(now);
            for (to, p) in sent(&mut s) {
                let first_name = p.questions[0].name == s.owned[0].name;
                if to == wins && first_name && last_id != Some(p.transaction_id) {
                    rounds.push(now);
                    last_id = Some(p.transaction_id);
                }
            }
        }
        let gaps: Vec<Duration> = rounds.windows(2).map(|w| w[1] - w[0]).collect();
        let round = WINS_INTERVAL * 3;
        let want = [15, 30, 60, 120, 120].map(|s| round + Duration::from_secs(s));
        assert_eq!(gaps, want, "rounds 15, 30, 60, 120, 120 s after the last");
        // It answers the second try of the round under way.
        let answered_at = run(&mut s, now, WINS_INTERVAL);
        let asked = sent(&mut s);
        let registrations: Vec<_> = asked.iter().filter(|(to, _)| *to == wins).collect();
        assert_eq!(registrations.len(), 3, "{asked:?}");
        for (_, request) in registrations {
            s.on_packet(answered_at, wins, &reply(request, 0, 600, US, false));
        }
        let held = s.names_held(answered_at);
        assert_eq!(
            held.iter()
                .filter(|n| n.contains("WINS registered"))
                .count(),
            3,
            "{held:?}"
        );
        assert_eq!(s.wins_state(answered_at), "asked first");
        assert!(s.owned.iter().all(|o| o.wins_backoff == WINS_DOWN));
        s.resolve(answered_at, NetbiosName::new("GAMMA", 0).unwrap(), 2);
        assert_eq!(sent(&mut s)[0].0, wins);
    }

    /// Another node claiming one of our unique names while we claim it
    /// ourselves wins it, as on Windows: a conflict naming it, no defence;
    /// a group name is shared, and a claim once we hold the name is
    /// defended.
    #[test]
    fn a_claim_during_our_registration_is_a_conflict() {
        let t0 = Instant::now();
        let mut s = NameService::<u32>::new(config(false), t0).unwrap();
        s.poll(t0);
        sent(&mut s);
        let mut other = NameService::<u32>::new(
            NameConfig {
                address: OTHER,
                ..config(false)
            },
            t0,
        )
        .unwrap();
        other.poll(t0);
        let claims = other.drain_transmits();
        let from = SocketAddrV4::new(OTHER, 137);
        s.on_packet(t0, from, &claims[2].payload);
        assert_eq!(
            s.registration(),
            Registration::InProgress,
            "DOM<00> is a group"
        );
        s.on_packet(t0 + REGISTRATION_INTERVAL, from, &claims[1].payload);
        let name = NetbiosName::new("ALPHA", MESSENGER).unwrap();
        assert_eq!(
            s.registration(),
            Registration::Conflict {
                name,
                holder: OTHER,
                by_wins: false
            }
        );
        assert!(sent(&mut s).is_empty(), "not defended: not ours yet");
        assert_eq!(s.counters().conflicts, 1);
        assert_eq!(s.counters().registrations_defended, 0);
        assert!(matches!(
            s.drain_events()[..],
            [Event::Conflict { holder: OTHER, .. }]
        ));
        // Our own request, relayed back with our address, is no claim.
        let (mut mine, now) = registered(false);
        let t1 = Instant::now();
        let mut again = NameService::<u32>::new(config(false), t1).unwrap();
        again.poll(t1);
        let ours = again.drain_transmits();
        again.on_packet(t1, from, &ours[0].payload);
        assert_eq!(again.registration(), Registration::InProgress);
        mine.on_packet(now, from, &claims[0].payload);
        assert_eq!(sent(&mut mine)[0].1.rcode, rcode::ACTIVE, "held: defended");
    }

    /// Peers only hear peers in their own NetBIOS scope: a query or claim
    /// in another scope is ignored, ours (the default, empty one) answered.
    #[test]
    fn only_our_scope_is_heard() {
        let (mut s, now) = registered(false);
        let asker = "10.9.0.7:50000".parse().unwrap();
        let scoped = |opcode, kind| {
            let mut packet = NamePacket::parse(&query("ALPHA", 0, kind)).unwrap();
            packet.opcode = opcode;
            packet.questions[0].scope = Scope::new("corp.example").unwrap();
            packet.emit().unwrap()
        };
        for (opcode, kind) in [
            (Opcode::Query, QuestionType::Nb),
            (Opcode::Query, QuestionType::NodeStatus),
            (Opcode::Registration, QuestionType::Nb),
        ] {
            s.on_packet(now, asker, &scoped(opcode, kind));
            assert!(
                sent(&mut s).is_empty(),
                "{opcode:?} {kind:?} in corp.example"
            );
        }
        s.on_packet(now, asker, &query("ALPHA", 0, QuestionType::Nb));
        let answer = sent(&mut s);
        assert_eq!(answer.len(), 1);
        assert!(answer[0].1.answers[0].scope.is_empty());
        let c = s.counters();
        assert_eq!(
            (
                c.queries_answered,
                c.status_answered,
                c.registrations_defended
            ),
            (1, 0, 0)
        );
        // An answer in another scope resolves nothing.
        let beta = NetbiosName::new("BETA", 0).unwrap();
        s.resolve(now, beta, 1);
        let q = sent(&mut s);
        let mut foreign = NamePacket::parse(&reply(&q[0].1, 0, 60, OTHER, false)).unwrap();
        foreign.answers[0].scope = Scope::new("corp.example").unwrap();
        s.on_packet(now, SocketAddrV4::new(OTHER, 137), &foreign.emit().unwrap());
        assert!(s.drain_events().is_empty());
    }

    #[test]
    fn garbage_and_strangers_are_counted() {
        let (mut s, now) = registered(false);
        s.config.allow = vec!["10.9.0.0/24".parse().unwrap()];
        s.on_packet(now, "10.9.0.5:137".parse().unwrap(), b"\x00\x01garbage");
        s.on_packet(
            now,
            "192.0.2.1:137".parse().unwrap(),
            &query("ALPHA", 0, QuestionType::Nb),
        );
        let c = s.counters();
        assert_eq!((c.received, c.malformed, c.not_allowed), (2, 1, 1));
        assert!(sent(&mut s).is_empty());
    }
}
