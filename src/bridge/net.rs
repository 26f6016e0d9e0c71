//! The bridge's only I/O: one UDP socket on the datagram port, a thread
//! that receives on it, and the interface and host-name look-ups that fill
//! in defaults. Every decision is made by [`Bridge`].

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs, UdpSocket};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};

use super::{Bridge, Cidr, Config, Delivery, Inbound, SendError, Target};
use crate::slot::SlotError;
use crate::wire::NAME_LEN;

/// Hops a multicast group datagram may take: a domain on a multicast group
/// exists precisely to span routed networks.
const MULTICAST_TTL: u32 = 32;
/// Largest UDP payload; anything a peer sends is read whole.
const RECEIVE_BUFFER: usize = 65_536;
/// The workgroup Windows and Samba join when told nothing else.
const DEFAULT_DOMAIN: &str = "WORKGROUP";

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
}

/// The bridge with its socket.
pub struct Link {
    bridge: Bridge,
    socket: UdpSocket,
}

impl Link {
    /// Fills in defaults, binds the datagram port and joins the multicast
    /// group. Errors are one line, `bridge: <what>: <why>`.
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
        let bridge = Bridge::new(config).map_err(|e| format!("bridge: {e}"))?;
        let socket = bind(settings.port, interface.address, settings.multicast)?;
        Ok(Link { bridge, socket })
    }

    /// The state machine, for its counters and identity.
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// Sends one network write. Returns the local copy to deliver, if the
    /// target is our own name or domain; the write succeeds once the
    /// datagram is handed to the network.
    pub fn send(
        &self,
        target: &Target,
        path: &[&str],
        data: &[u8],
    ) -> Result<Option<Delivery>, SendError> {
        let outbound = self.bridge.on_local_write(target, path, data, resolve)?;
        if let Some(transmit) = outbound.transmit {
            let sent = self
                .socket
                .send_to(&transmit.payload, transmit.to)
                .map(drop)
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO));
            self.bridge.record_send(sent)?;
        }
        Ok(outbound.local)
    }

    /// Starts the receive thread: every datagram for us goes to `deliver`,
    /// which must not block (it is the core's non-blocking write). The
    /// thread lives as long as the process.
    pub fn start_receiver(
        self: &Arc<Self>,
        deliver: impl Fn(&Delivery) -> Result<(), SlotError> + Send + 'static,
    ) -> io::Result<()> {
        let link = Arc::clone(self);
        std::thread::Builder::new()
            .name("bridge-receive".into())
            .spawn(move || link.receive_forever(deliver))
            .map(drop)
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
}

/// The system resolver, for computer names that are not `--peer`s.
fn resolve(name: &str) -> Option<Ipv4Addr> {
    (name, 0).to_socket_addrs().ok()?.find_map(|a| match a {
        SocketAddr::V4(v4) => Some(*v4.ip()),
        SocketAddr::V6(_) => None,
    })
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

/// An IPv4 interface address and its subnet's broadcast address.
struct Interface {
    address: Ipv4Addr,
    broadcast: Ipv4Addr,
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
            found.push(Interface { address, broadcast });
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
