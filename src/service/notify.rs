//! systemd's readiness protocol (`sd_notify`): one datagram of
//! `KEY=value` lines to the socket named by `$NOTIFY_SOCKET`, a path or,
//! starting with `@`, an abstract socket name. Without the variable (not
//! started by systemd with `Type=notify`) nothing is sent.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. `READY=1`) to systemd, if it is listening.
pub fn notify(state: &str) -> io::Result<()> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let target = target.to_string_lossy();
    let address = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(target.as_ref())?,
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &address)?;
    Ok(())
}
