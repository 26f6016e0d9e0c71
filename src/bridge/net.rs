//! The bridge's only I/O: one UDP socket on the datagram port and a thread
//! that receives on it; the name service's socket on the port below it and
//! its thread, which also keeps its timers; a thread per system-resolver
//! look-up and one that ends writes' waits at their deadline, so that no
//! FUSE thread ever waits on a look-up; and the interface and host-name
//! look-ups that fill in defaults. Every decision is made by [`Bridge`],
//! [`NameService`] and [`SystemNames`].

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use socket2::{Domain, Protocol, Socket, Type};

use super::names::{Answer, Event, NameConfig, NameService, QUERY_WAIT, Registration, Resolution};
use super::system::{Settled, SystemNames};
use super::{
    Bridge, Cidr, Config, Counter, Delivery, Destination, Inbound, Route, SendError, Target,
};
use crate::slot::SlotError;
use crate::wire::{NAME_LEN, NetbiosName};

/// Hops a multicast group datagram may take: a domain on a multicast group
/// exists precisely to span routed networks.
const MULTICAST_TTL: u32 = 32;
/// Largest UDP payload; anything a peer sends is read whole.
const RECEIVE_BUFFER: usize = 65_536;
/// The workgroup Windows and Samba join when told nothing else.
const DEFAULT_DOMAIN: &str = "WORKGROUP";
/// The most cache entries `status` lists (the rest are counted).
const CACHE_SHOWN: usize = 32;
/// Name packets handled between two sends of what they answered.
const FLUSH_EVERY: u64 = 32;

/// What the user asked for; `None` means "work it out".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub netbios_name: Option<String>,
    pub domain: Option<String>,
    pub bind: Option<Ipv4Addr>,
    pub broadcast: Option<Ipv4Addr>,
    pub port: u16,
    pub peers: Vec<(String, Ipv4Addr)>,
    pub allow: Vec<Cidr>,
    pub multicast: Option<Ipv4Addr>,
    /// A WINS server to register with and ask first (`--wins`).
    pub wins: Option<Ipv4Addr>,
    /// `--no-name-service`: neither register nor answer on UDP 137.
    pub no_name_service: bool,
}

/// What a network write does once its target is found: the caller's
/// answer, given the local copy to deliver (if any) or the error.
pub type Done = Box<dyn FnOnce(Result<Option<Delivery>, SendError>) + Send>;

/// Takes the writer's answer, once, if the writer still waits; `None` once
/// it gave up (its request was interrupted), and its datagram is then
/// never sent.
pub type Claim = Box<dyn FnOnce() -> Option<Done> + Send>;

/// A network write waiting for its target's address.
pub struct PendingWrite {
    target: Target,
    path: Vec<String>,
    data: Vec<u8>,
    /// When the write came: its look-up ends at the latest
    /// [`QUERY_WAIT`] later, or when NetBIOS gives up if that is later.
    started: Instant,
    claim: Claim,
}

impl PendingWrite {
    /// Answers the writer, if it still waits.
    fn answer(self, result: Result<Option<Delivery>, SendError>) {
        if let Some(done) = (self.claim)() {
            done(result);
        }
    }
}

/// The system resolver's table and what wakes the thread that keeps its
/// deadlines.
#[derive(Default)]
struct System {
    state: Mutex<SystemNames<PendingWrite>>,
    changed: Condvar,
}

/// The name service with its socket and the eventfd that wakes its thread
/// when a writer starts a look-up (its deadline may be the earliest).
struct Names {
    state: Mutex<NameService<PendingWrite>>,
    /// Signalled after every turn of the thread, for the mount to wait on
    /// its registrations.
    turned: Condvar,
    socket: UdpSocket,
    hearing: Hearing,
    wake: OwnedFd,
}

/// What the name service hears of all that reaches its port (bound to the
/// wildcard address, as broadcasts need): packets to the bridge's address,
/// from any link (a WINS server or a peer behind a router reaches it so),
/// and broadcasts on the bridge's own link. Packets for the host's other
/// addresses, and other links' broadcasts, are not ours to answer: another
/// subnet would learn an address it may not reach, and our names would be
/// defended where they were never registered.
#[derive(Clone, Copy, Debug)]
struct Hearing {
    address: Ipv4Addr,
    /// The broadcasts heard on the bridge's link: where ours go
    /// (`--broadcast`), the subnet's, and the limited broadcast.
    broadcasts: [Ipv4Addr; 3],
    /// The bridge's interface index.
    interface: u32,
}

impl Hearing {
    /// Whether a packet sent to `to` that came in by interface `index` is
    /// for the name service.
    fn hears(&self, to: Ipv4Addr, index: u32) -> bool {
        to == self.address || (index == self.interface && self.broadcasts.contains(&to))
    }
}

/// The bridge with its sockets.
pub struct Link {
    bridge: Bridge,
    socket: UdpSocket,
    names: Option<Names>,
    system: System,
}

impl Link {
    /// Fills in defaults and binds the datagram port (and the name-service
    /// port below it), and joins the multicast group. Errors are one line,
    /// `bridge: <what>: <why>`.
    pub fn open(settings: &Settings, keep_empty: bool) -> Result<Link, String> {
        let interface = find_interface(settings.bind)?;
        let broadcast = settings.broadcast.unwrap_or(interface.broadcast);
        let group = settings.multicast.unwrap_or(broadcast);
        let computer = match &settings.netbios_name {
            Some(name) => name.clone(),
            None => default_netbios_name()?,
        };
        let config = Config {
            computer: computer.to_ascii_uppercase(),
            domain: settings
                .domain
                .as_deref()
                .unwrap_or(DEFAULT_DOMAIN)
                .to_ascii_uppercase(),
            address: SocketAddrV4::new(interface.address, settings.port),
            group: SocketAddrV4::new(group, settings.port),
            peers: settings.peers.clone(),
            allow: settings.allow.clone(),
            keep_empty,
            first_dgm_id: std::process::id() as u16,
        };
        let names = match settings.no_name_service {
            true => None,
            false => Some(open_names(settings, &config, broadcast, &interface)?),
        };
        let bridge = Bridge::new(config).map_err(|e| format!("bridge: {e}"))?;
        let socket = bind(settings.port, interface.address, settings.multicast)?;
        Ok(Link {
            bridge,
            socket,
            names,
            system: System::default(),
        })
    }

    /// The state machine, for its counters and identity.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// Sends one network write and answers the writer (through `claim`)
    /// once the datagram is handed to the network (with the local copy to
    /// deliver, if the target is our own name or domain) or refused. The
    /// answer comes on this thread when the target is known at once, else
    /// on the thread that found it, or on the one that keeps the deadline.
    pub fn send_with(
        self: &Arc<Self>,
        target: Target,
        path: Vec<String>,
        data: Vec<u8>,
        claim: Claim,
    ) {
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        let route = self
            .bridge
            .check_write(&parts, &data)
            .and_then(|_| self.bridge.route(&target));
        let pending = PendingWrite {
            target,
            path,
            data,
            started: Instant::now(),
            claim,
        };
        match route {
            Err(e) => pending.answer(Err(e)),
            Ok(Route::Known(destination)) => self.transmit(pending, destination),
            Ok(Route::Lookup(name)) => self.look_up(name, pending),
        }
    }

    /// Builds and sends the datagram of a write whose destination is known,
    /// unless its writer gave up.
    fn transmit(&self, pending: PendingWrite, destination: Destination) {
        let Some(done) = (pending.claim)() else {
            log::debug!(
                "bridge: a write to {} was interrupted: not sent",
                pending.target.key()
            );
            return;
        };
        let path: Vec<&str> = pending.path.iter().map(String::as_str).collect();
        let result = self
            .bridge
            .on_local_write(&pending.target, &path, &pending.data, destination)
            .and_then(|outbound| {
                if let Some(transmit) = outbound.transmit {
                    let sent = self
                        .socket
                        .send_to(&transmit.payload, transmit.to)
                        .map(drop)
                        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO));
                    self.bridge.record_send(sent)?;
                }
                Ok(outbound.local)
            });
        done(result);
    }

    /// Asks the name service where `name` is, and the system resolver at
    /// the same time whenever the name service asks the network.
    fn look_up(self: &Arc<Self>, name: NetbiosName, pending: PendingWrite) {
        let Some(names) = &self.names else {
            return self.ask_system(name, pending);
        };
        let now = Instant::now();
        let resolution = names.state.lock().resolve(now, name, pending);
        match resolution {
            Resolution::Known(answer, pending) => self.found(pending, name, Some(answer)),
            Resolution::Asking => {
                if self.system.state.lock().start(name, now) {
                    self.system_look_up(name);
                }
                self.flush_names(names);
                wake(&names.wake);
            }
            Resolution::NotFound(pending) => self.ask_system(name, pending),
            Resolution::Busy(pending) => pending.answer(Err(SendError::Busy)),
        }
    }

    /// A look-up ended: the write goes to what it found, or to the system
    /// resolver.
    fn found(self: &Arc<Self>, pending: PendingWrite, name: NetbiosName, answer: Option<Answer>) {
        match answer {
            Some(a) if a.group => self.transmit(pending, Destination::Group),
            Some(a) => self.transmit(pending, Destination::Unicast(a.address)),
            None => {
                log::debug!("bridge: the name service found no {name}");
                self.ask_system(name, pending)
            }
        }
    }

    /// Hands a write NetBIOS did not place to the system resolver, which
    /// has until the write's deadline to answer.
    fn ask_system(self: &Arc<Self>, name: NetbiosName, pending: PendingWrite) {
        let deadline = pending.started + QUERY_WAIT;
        let settled = self
            .system
            .state
            .lock()
            .settle(name, pending, deadline, Instant::now());
        self.settled(name, settled);
    }

    /// Acts on what the system resolver's table said of a write.
    fn settled(self: &Arc<Self>, name: NetbiosName, settled: Settled<PendingWrite>) {
        match settled {
            Settled::Found(address, pending) => {
                self.bridge.record_lookup(Counter::ResolvedSystem);
                self.transmit(pending, Destination::Unicast(address));
            }
            Settled::Missing(pending) => self.unreachable(name, pending),
            Settled::Busy(pending) => pending.answer(Err(SendError::Busy)),
            Settled::Waiting { ask } => {
                if ask {
                    self.system_look_up(name);
                }
                self.system.changed.notify_all();
            }
        }
    }

    /// Fails a write nobody placed in time, unless its writer gave up.
    fn unreachable(&self, name: NetbiosName, pending: PendingWrite) {
        let Some(done) = (pending.claim)() else {
            return;
        };
        self.bridge.record_lookup(Counter::Unreachable);
        log::warn!("bridge: nobody answers for {name}: the write fails (EHOSTUNREACH)");
        done(Err(SendError::Unreachable(name)));
    }

    /// Looks `name` up with the system resolver on a thread of its own
    /// (getaddrinfo cannot be cancelled or bounded in time), then hands its
    /// answer to the writes waiting for it.
    fn system_look_up(self: &Arc<Self>, name: NetbiosName) {
        let link = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("bridge-resolve".into())
            .spawn(move || link.system_answered(name, system_address(&name)));
        if let Err(e) = spawned {
            log::warn!("bridge: cannot start a look-up of {name}: {e}");
            self.system_answered(name, None);
        }
    }

    fn system_answered(self: &Arc<Self>, name: NetbiosName, found: Option<Ipv4Addr>) {
        let waiters = self
            .system
            .state
            .lock()
            .answered(name, found, Instant::now());
        for pending in waiters {
            let settled = match found {
                Some(address) => Settled::Found(address, pending),
                None => Settled::Missing(pending),
            };
            self.settled(name, settled);
        }
    }

    /// The thread that fails, at their deadline, the writes the system
    /// resolver did not answer in time.
    fn keep_deadlines(&self) {
        let mut state = self.system.state.lock();
        loop {
            let expired = state.expire(Instant::now());
            if expired.is_empty() {
                match state.next_deadline() {
                    Some(at) => drop(self.system.changed.wait_until(&mut state, at)),
                    None => self.system.changed.wait(&mut state),
                }
                continue;
            }
            drop(state);
            for (name, pending) in expired {
                self.unreachable(name, pending);
            }
            state = self.system.state.lock();
        }
    }

    /// Sends what the name service queued and acts on its events (outside
    /// its lock: a write's answer may deliver into a local slot).
    fn flush_names(self: &Arc<Self>, names: &Names) {
        let (transmits, events) = {
            let mut state = names.state.lock();
            (state.drain_transmits(), state.drain_events())
        };
        for t in transmits {
            if let Err(e) = names.socket.send_to(&t.payload, t.to) {
                log::debug!("bridge: name packet to {}: {e}", t.to);
            }
        }
        for event in events {
            match event {
                Event::Resolved {
                    name,
                    answer,
                    waiters,
                } => {
                    for pending in waiters {
                        self.found(pending, name, answer);
                    }
                }
                // Only registrations meet conflicts, and the mount waits on
                // them and reports the first.
                Event::Conflict { .. } => {}
            }
        }
    }

    /// Starts the threads (after the daemon went to the background: threads
    /// do not survive a fork): the datagram receiver, which hands every
    /// datagram for us to `deliver` (the core's non-blocking write), the
    /// name service, and the system resolver. Then waits until our names
    /// are registered; a conflict is the one-line error. The threads live as
    /// long as the process.
    pub fn start(
        self: &Arc<Self>,
        deliver: impl Fn(&Delivery) -> Result<(), SlotError> + Send + 'static,
    ) -> Result<(), String> {
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map(drop)
                .map_err(|e| format!("bridge: cannot start the {name} thread: {e}"))
        };
        let link = Arc::clone(self);
        spawn(
            "bridge-receive",
            Box::new(move || link.receive_forever(deliver)),
        )?;
        let link = Arc::clone(self);
        spawn("bridge-deadline", Box::new(move || link.keep_deadlines()))?;
        let Some(names) = &self.names else {
            return Ok(());
        };
        let link = Arc::clone(self);
        spawn("bridge-names", Box::new(move || link.serve_names()))?;
        let mut state = names.state.lock();
        loop {
            match state.registration() {
                Registration::Done => return Ok(()),
                Registration::Conflict {
                    name,
                    holder,
                    by_wins: false,
                } => {
                    return Err(format!(
                        "bridge: NetBIOS name {name} is already held by {holder}"
                    ));
                }
                Registration::Conflict {
                    name,
                    holder,
                    by_wins: true,
                } => {
                    return Err(format!(
                        "bridge: NetBIOS name {name} is held by another host \
                         (WINS server {holder} refuses it)"
                    ));
                }
                Registration::InProgress => names.turned.wait(&mut state),
            }
        }
    }

    fn receive_forever(&self, deliver: impl Fn(&Delivery) -> Result<(), SlotError>) {
        let mut buffer = vec![0; RECEIVE_BUFFER];
        loop {
            let (len, from) = match self.socket.recv_from(&mut buffer) {
                Ok((len, SocketAddr::V4(from))) => (len, from),
                Ok((_, SocketAddr::V6(_))) => continue,
                Err(e) => {
                    log::warn!("bridge: receive failed: {e}");
                    continue;
                }
            };
            match self
                .bridge
                .on_datagram(from, buffer.get(..len).unwrap_or_default())
            {
                Inbound::Deliver(delivery) => self.bridge.record_delivery(deliver(&delivery)),
                Inbound::Dropped(reason) => log::debug!("bridge: dropped from {from}: {reason:?}"),
            }
        }
    }

    /// The name service's thread: sleeps in poll(2) until a packet, a wake
    /// from a writer, or the state machine's next deadline; never ticks.
    fn serve_names(self: &Arc<Self>) {
        let Some(names) = &self.names else {
            return;
        };
        let mut buffer = vec![0; RECEIVE_BUFFER];
        loop {
            let deadline = names.state.lock().next_deadline();
            let timeout = deadline.map_or(-1, |at| {
                let wait = at.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
                i32::try_from(wait.as_millis()).unwrap_or(i32::MAX)
            });
            let mut fds =
                [names.socket.as_raw_fd(), names.wake.as_raw_fd()].map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
            // SAFETY: `fds` is a valid array of two pollfd for the call.
            unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
            if fds[1].revents != 0 {
                let mut count = [0u8; 8];
                // SAFETY: reads 8 bytes into `count`, the eventfd's counter.
                unsafe { libc::read(names.wake.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
            }
            // The socket is non-blocking: take everything that is waiting,
            // sending the answers every few packets so that a flood never
            // piles them up.
            for received in 1.. {
                if received % FLUSH_EVERY == 0 {
                    self.flush_names(names);
                }
                match receive_addressed(&names.socket, &mut buffer) {
                    Ok(Received {
                        len,
                        from,
                        arrived: Some((to, index)),
                    }) if names.hearing.hears(to, index) => {
                        let packet = buffer.get(..len).unwrap_or_default();
                        names.state.lock().on_packet(Instant::now(), from, packet)
                    }
                    Ok(_) => names.state.lock().on_packet_elsewhere(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log::debug!("bridge: name-service receive failed: {e}");
                        break;
                    }
                }
            }
            names.state.lock().poll(Instant::now());
            self.flush_names(names);
            names.turned.notify_all();
        }
    }

    /// Gives our names up (the daemon is stopping): releases go out now,
    /// and nothing is answered or defended afterwards.
    pub fn release_names(self: &Arc<Self>) {
        if let Some(names) = &self.names {
            names.state.lock().release();
            self.flush_names(names);
        }
    }

    /// Identity, counters and the name service's state as `(name, value)`,
    /// shown as the `user.mailslot.bridge.NAME` attributes of `.net`.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let now = Instant::now();
        let mut out = self.bridge.attributes();
        let system = self.system.state.lock().entries(now);
        out.push(("system_cache", shown(system)));
        let Some(names) = &self.names else {
            out.push(("name_service", "off".to_owned()));
            return out;
        };
        let state = names.state.lock();
        let config = state.config();
        let c = state.counters();
        out.extend([
            (
                "name_service",
                format!("{}:{}", config.address, config.port),
            ),
            (
                "wins",
                config.wins.map(|w| w.to_string()).unwrap_or_default(),
            ),
            ("wins_state", state.wins_state(now)),
            ("names", state.names_held(now).join("; ")),
            ("name_cache", shown(state.cache_entries(now))),
            ("name_packets", c.received.to_string()),
            ("name_packets_malformed", c.malformed.to_string()),
            ("name_packets_not_allowed", c.not_allowed.to_string()),
            ("name_packets_elsewhere", c.elsewhere.to_string()),
            ("queries_answered", c.queries_answered.to_string()),
            ("status_answered", c.status_answered.to_string()),
            (
                "registrations_defended",
                c.registrations_defended.to_string(),
            ),
            ("conflicts", c.conflicts.to_string()),
            ("resolved_cache", c.resolved_cache.to_string()),
            ("resolved_wins", c.resolved_wins.to_string()),
            ("resolved_broadcast", c.resolved_broadcast.to_string()),
            ("lookups_failed", c.resolve_failed.to_string()),
            ("lookups_busy", c.resolve_busy.to_string()),
        ]);
        out
    }
}

/// A cache's entries for `status`: the first few, then how many more.
fn shown(mut entries: Vec<String>) -> String {
    let hidden = entries.len().saturating_sub(CACHE_SHOWN);
    entries.truncate(CACHE_SHOWN);
    if hidden > 0 {
        entries.push(format!("+{hidden} more"));
    }
    entries.join(", ")
}

/// Binds the name-service port, one below the datagram port (137 below
/// 138, so that tests on another port keep a pair), asks for each packet's
/// destination and interface (IP_PKTINFO), and sets up its state.
fn open_names(
    settings: &Settings,
    config: &Config,
    broadcast: Ipv4Addr,
    interface: &Interface,
) -> Result<Names, String> {
    let port = settings
        .port
        .checked_sub(1)
        .filter(|p| *p != 0)
        .ok_or("bridge: --port 1 leaves no port below it for the name service")?;
    let name_config = NameConfig {
        computer: config.computer.clone(),
        domain: config.domain.clone(),
        address: *config.address.ip(),
        port,
        broadcast: SocketAddrV4::new(broadcast, port),
        wins: settings.wins.map(|w| SocketAddrV4::new(w, port)),
        allow: config.allow.clone(),
        first_transaction_id: (std::process::id() as u16).rotate_left(8),
    };
    let state =
        NameService::new(name_config, Instant::now()).map_err(|e| format!("bridge: {e}"))?;
    let socket = bind(port, *config.address.ip(), None)?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("bridge: name-service socket: {e}"))?;
    let on: libc::c_int = 1;
    // SAFETY: IP_PKTINFO takes an int, passed with its size.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set != 0 {
        let e = io::Error::last_os_error();
        return Err(format!("bridge: name-service socket: IP_PKTINFO: {e}"));
    }
    // SAFETY: eventfd has no preconditions; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("bridge: eventfd: {}", io::Error::last_os_error()));
    }
    Ok(Names {
        state: Mutex::new(state),
        turned: Condvar::new(),
        socket,
        hearing: Hearing {
            address: interface.address,
            broadcasts: [broadcast, interface.broadcast, Ipv4Addr::BROADCAST],
            interface: interface.index,
        },
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        wake: unsafe { OwnedFd::from_raw_fd(fd) },
    })
}

/// The system resolver's IPv4 address for a NetBIOS name (its text, as a
/// host name), on the calling thread.
fn system_address(name: &NetbiosName) -> Option<Ipv4Addr> {
    let host = String::from_utf8_lossy(name.trimmed()).into_owned();
    let all = (host.as_str(), 0).to_socket_addrs().ok()?;
    all.into_iter().find_map(|a| match a {
        SocketAddr::V4(v4) => Some(*v4.ip()),
        SocketAddr::V6(_) => None,
    })
}

/// One packet received on the name-service socket.
struct Received {
    len: usize,
    from: SocketAddrV4,
    /// The header's destination address and the interface the packet came
    /// in by (IP_PKTINFO; `None` if the kernel gave none).
    arrived: Option<(Ipv4Addr, u32)>,
}

/// Receives one packet into `buffer`, with where it was sent.
fn receive_addressed(socket: &UdpSocket, buffer: &mut [u8]) -> io::Result<Received> {
    // SAFETY: all-zero is a valid sockaddr_in and msghdr.
    let mut from: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // u64s keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&raw mut from).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` is valid for the lengths it gives.
    let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut arrived = None;
    // SAFETY: the kernel filled `control` with `msg_controllen` bytes of
    // well-formed cmsgs, walked with the CMSG macros; an IP_PKTINFO cmsg
    // carries an in_pktinfo, read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_IP && (*cmsg).cmsg_type == libc::IP_PKTINFO {
                let info: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                let to = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                arrived = Some((to, info.ipi_ifindex as u32));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let from = SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr)),
        u16::from_be(from.sin_port),
    );
    Ok(Received {
        len: len as usize,
        from,
        arrived,
    })
}

/// Wakes the name-service thread.
fn wake(eventfd: &OwnedFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from `one` to the eventfd.
    unsafe { libc::write(eventfd.as_raw_fd(), one.as_ptr().cast(), 8) };
}

/// Binds 0.0.0.0:port (broadcasts only reach a socket bound to the
/// wildcard address) and sends from it, so peers see port 138 as the
/// source, which is where Windows replies.
fn bind(port: u16, interface: Ipv4Addr, multicast: Option<Ipv4Addr>) -> Result<UdpSocket, String> {
    let local = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    let fail = |what: String| move |e: io::Error| format!("bridge: {what}: {}", why(&e, port));
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(fail("socket".into()))?;
    socket
        .set_broadcast(true)
        .map_err(fail("SO_BROADCAST".into()))?;
    socket
        .bind(&local.into())
        .map_err(fail(format!("bind {local}")))?;
    if let Some(group) = multicast {
        socket
            .join_multicast_v4(&group, &interface)
            .map_err(fail(format!("join multicast group {group}")))?;
        // std's UdpSocket cannot choose the interface multicast leaves by.
        socket
            .set_multicast_if_v4(&interface)
            .map_err(fail(format!("multicast interface {interface}")))?;
        socket
            .set_multicast_ttl_v4(MULTICAST_TTL)
            .map_err(fail("multicast TTL".into()))?;
        socket
            .set_multicast_loop_v4(false)
            .map_err(fail("multicast loop".into()))?;
    }
    Ok(socket.into())
}

fn why(error: &io::Error, port: u16) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "address in use (is nmbd running on this host?)".to_owned(),
        io::ErrorKind::PermissionDenied if port < 1024 => {
            format!("permission denied (port {port} needs root or CAP_NET_BIND_SERVICE)")
        }
        _ => error.to_string(),
    }
}

/// An IPv4 interface address, its subnet's broadcast address and the
/// interface's index.
struct Interface {
    address: Ipv4Addr,
    broadcast: Ipv4Addr,
    index: u32,
}

/// The interface with address `wanted`, or else the first non-loopback
/// IPv4 interface that is up.
fn find_interface(wanted: Option<Ipv4Addr>) -> Result<Interface, String> {
    let interfaces = ipv4_interfaces().map_err(|e| format!("bridge: interfaces: {e}"))?;
    let found = interfaces.into_iter().find(|i| match wanted {
        Some(address) => i.address == address,
        None => !i.address.is_loopback(),
    });
    found.ok_or_else(|| match wanted {
        Some(address) => format!("bridge: --bind {address}: no interface has this address"),
        None => "bridge: no IPv4 interface is up (use --bind ADDR)".to_owned(),
    })
}

fn ipv4_interfaces() -> io::Result<Vec<Interface>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        let up = entry.ifa_flags & libc::IFF_UP as u32 != 0;
        if let (true, Some(address), Some(mask)) =
            (up, ipv4_of(entry.ifa_addr), ipv4_of(entry.ifa_netmask))
        {
            let broadcast = Ipv4Addr::from(u32::from(address) | !u32::from(mask));
            // SAFETY: ifa_name is the interface's NUL-terminated name.
            let index = unsafe { libc::if_nametoindex(entry.ifa_name) };
            found.push(Interface {
                address,
                broadcast,
                index,
            });
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

fn ipv4_of(addr: *const libc::sockaddr) -> Option<Ipv4Addr> {
    // SAFETY: a non-null ifa_addr/ifa_netmask points to a sockaddr whose
    // family says its real type; AF_INET means sockaddr_in.
    unsafe {
        if addr.is_null() || i32::from((*addr).sa_family) != libc::AF_INET {
            return None;
        }
        let sin = &*(addr as *const libc::sockaddr_in);
        Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    }
}

/// The host name, upper case, cut to 15 characters at the first dot.
fn default_netbios_name() -> Result<String, String> {
    let mut buffer = [0 as libc::c_char; 256];
    // SAFETY: the buffer is writable for its whole length; gethostname
    // NUL-terminates within it (the last byte stays 0).
    if unsafe { libc::gethostname(buffer.as_mut_ptr(), buffer.len() - 1) } != 0 {
        return Err(format!(
            "bridge: host name: {} (use --netbios-name)",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: NUL-terminated as above.
    let host = unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy();
    let short = host.split('.').next().unwrap_or_default();
    Ok(short
        .chars()
        .take(NAME_LEN)
        .collect::<String>()
        .to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_service_hears_its_address_and_its_links_broadcasts_only() {
        let hearing = Hearing {
            address: Ipv4Addr::new(10, 9, 0, 1),
            broadcasts: [
                Ipv4Addr::new(10, 9, 0, 255),
                Ipv4Addr::new(10, 9, 0, 255),
                Ipv4Addr::BROADCAST,
            ],
            interface: 2,
        };
        let (ours, other) = (2, 3);
        assert!(hearing.hears(Ipv4Addr::new(10, 9, 0, 1), ours));
        assert!(
            hearing.hears(Ipv4Addr::new(10, 9, 0, 1), other),
            "from behind a router"
        );
        assert!(hearing.hears(Ipv4Addr::new(10, 9, 0, 255), ours));
        assert!(hearing.hears(Ipv4Addr::BROADCAST, ours));
        assert!(!hearing.hears(Ipv4Addr::BROADCAST, other));
        assert!(!hearing.hears(Ipv4Addr::new(10, 9, 0, 255), other));
        assert!(
            !hearing.hears(Ipv4Addr::new(10, 8, 0, 1), other),
            "another address of the host"
        );
        assert!(!hearing.hears(Ipv4Addr::new(10, 8, 0, 255), other));
    }
}
