//! Mounting, the INIT handshake, and unmounting: as root with `mount(2)`,
//! as anyone else through `fusermount3`, which passes the connection's
//! descriptor back over the `_FUSE_COMMFD` socket.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::abi::{self, KERNEL_MINOR_VERSION, KERNEL_VERSION, OLDEST_MINOR_VERSION, init};
use super::channel::{self, Handler, Notifier, Sender, Session};
use super::mountinfo;
use super::request::{Operation, decode};
use super::uring;

/// Pages the kernel may put in one request (`fs.fuse.max_pages_limit`).
fn max_pages() -> u32 {
    read_sysctl("max_pages_limit").unwrap_or(256).clamp(32, 256) as u32
}

/// The largest message the kernel passes in one READ or WRITE request. It
/// splits a direct-I/O transfer at `max_pages` pages (an unaligned user
/// buffer costs one page), so anything larger would arrive as pieces.
pub fn transport_max() -> u32 {
    (max_pages() - 1) * 4096
}

/// How long a request may stay unanswered: below the kernel's FUSE request
/// timeout (fs.fuse.default_request_timeout / max_request_timeout, in
/// seconds), past which the kernel would abort the whole connection. The
/// kernel checks timeouts lazily, so half the timeout is safe.
pub fn park_cap() -> Option<Duration> {
    let default = read_sysctl("default_request_timeout").unwrap_or(0);
    let max = read_sysctl("max_request_timeout").unwrap_or(0);
    let effective = match (default, max) {
        (0, 0) => return None,
        (d, 0) => d,
        (0, m) => m,
        (d, m) => d.min(m),
    };
    Some(Duration::from_millis(effective * 500))
}

fn read_sysctl(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/fs/fuse/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Which transport carries requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// FUSE-over-io_uring when the kernel offers it at INIT, else classic.
    #[default]
    Auto,
    /// FUSE-over-io_uring or no mount (`-o io_uring`).
    IoUring,
    /// `/dev/fuse` only (`-o no_io_uring`).
    Classic,
}

/// Where an admin switches FUSE-over-io_uring on; read by the kernel at
/// mount time only.
pub const ENABLE_URING: &str = "/sys/module/fuse/parameters/enable_uring";

/// How to mount.
pub struct MountConfig<'a> {
    /// The mount table's source column.
    pub fsname: &'a str,
    /// The `fuse.SUBTYPE` the mount table shows.
    pub subtype: &'a str,
    pub allow_other: bool,
    /// Classic loops serving requests (one when the ring serves them).
    pub threads: usize,
    pub transport: Transport,
}

/// A live mount.
pub struct Mounted {
    session: Session,
    /// The io_uring queues, when they carry the requests.
    rings: Option<uring::Rings>,
    dir: PathBuf,
    /// Our mount's device (`major:minor`), so that we never unmount a
    /// mount someone else has since put on the same directory.
    device: Option<String>,
}

/// Mounts at `dir`, completes the INIT handshake, and starts serving with
/// the handler `make_handler` builds from the connection's notifier and the
/// transport's name. Returns once the mount is usable. `on_end` runs when
/// the connection ends.
pub fn mount(
    dir: &Path,
    config: &MountConfig<'_>,
    make_handler: impl FnOnce(Notifier, &'static str) -> Arc<dyn Handler>,
    on_end: Arc<dyn Fn() + Send + Sync>,
) -> io::Result<Mounted> {
    let dev = open_connection(dir, config)?;
    let mounted = (|| {
        let negotiated = handshake(&dev, config.transport)?;
        let name = if negotiated.uring {
            "io_uring"
        } else {
            "classic"
        };
        let handler = make_handler(channel::notifier(&dev)?, name);
        let rings = match negotiated.uring {
            true => Some(start_rings(&dev, &negotiated, &handler)?),
            false => None,
        };
        // INTERRUPT and FORGET always come through /dev/fuse.
        let threads = if rings.is_some() { 1 } else { config.threads };
        let buffer = negotiated.max_write as usize + 4096;
        let session = Session::start(&dev, threads, buffer, handler, on_end)?;
        Ok(Mounted {
            session,
            rings,
            dir: dir.to_path_buf(),
            device: mountinfo::top_mount_device(dir),
        })
    })();
    if mounted.is_err() {
        let _ = unmount(dir);
    }
    mounted
}

/// Opens `/dev/fuse` and mounts it at `dir`.
fn open_connection(dir: &Path, config: &MountConfig<'_>) -> io::Result<OwnedFd> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        match mount_directly(dir, config) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            other => return other,
        }
    }
    mount_with_fusermount(dir, config)
}

fn mount_directly(dir: &Path, config: &MountConfig<'_>) -> io::Result<OwnedFd> {
    let dev: OwnedFd = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/fuse")?
        .into();
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut data = format!(
        "fd={},rootmode=40000,user_id={uid},group_id={gid},default_permissions",
        dev.as_raw_fd()
    );
    if config.allow_other {
        data.push_str(",allow_other");
    }
    let c = |s: &[u8]| CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let source = c(config.fsname.as_bytes())?;
    let target = c(dir.as_os_str().as_bytes())?;
    let fstype = c(format!("fuse.{}", config.subtype).as_bytes())?;
    let data = c(data.as_bytes())?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives
    // the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(dev)
}

/// Mounts through the setuid `fusermount3`, which sends the descriptor
/// back over a socket named by `_FUSE_COMMFD`.
fn mount_with_fusermount(dir: &Path, config: &MountConfig<'_>) -> io::Result<OwnedFd> {
    let mut pair = [0 as RawFd; 2];
    // SAFETY: socketpair fills two descriptors into a valid array.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned only here.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // SAFETY: FD_CLOEXEC on our end only, so the child inherits theirs.
    unsafe { libc::fcntl(ours.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut options = format!(
        "fsname={},subtype={},default_permissions,nosuid,nodev,noexec",
        config.fsname, config.subtype
    );
    if config.allow_other {
        options.push_str(",allow_other");
    }
    let output = Command::new("fusermount3")
        .arg("-o")
        .arg(&options)
        .arg("--")
        .arg(dir)
        .env("_FUSE_COMMFD", theirs.as_raw_fd().to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("fusermount3: {e}")))?;
    drop(theirs);
    if !output.status.success() {
        // Its own last line says why; ours carries it, so the user sees one.
        let said = String::from_utf8_lossy(&output.stderr);
        let why = said
            .lines()
            .rev()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(|line| line.trim_start_matches("fusermount3:").trim())
            .unwrap_or("refused the mount");
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("fusermount3: {why}"),
        ));
    }
    receive_fd(&ours)
}

/// One descriptor sent with SCM_RIGHTS.
fn receive_fd(socket: &OwnedFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at buffers that live across the call.
    if unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the CMSG macros walk the control buffer recvmsg filled.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
            return Ok(OwnedFd::from_raw_fd(fd));
        }
    }
    Err(io::Error::other("fusermount3 sent no descriptor"))
}

/// One queue per CPU, each dispatching what its ring carries.
fn start_rings(
    dev: &OwnedFd,
    negotiated: &Negotiated,
    handler: &Arc<dyn Handler>,
) -> io::Result<uring::Rings> {
    let handler = Arc::clone(handler);
    let payload = uring::payload_size(negotiated.max_write, negotiated.max_pages as u16);
    uring::start(
        dev.as_fd(),
        payload,
        Arc::new(move |request: &[u8], entry| {
            channel::dispatch(&*handler, request, Sender::Ring(entry))
        }),
    )
    .map_err(|e| io::Error::new(e.kind(), format!("io_uring: {e}")))
}

/// What INIT settled.
struct Negotiated {
    max_write: u32,
    max_pages: u32,
    /// Requests come over FUSE-over-io_uring.
    uring: bool,
}

/// Reads the kernel's INIT and answers it, taking the ring as `transport`
/// allows.
fn handshake(dev: &OwnedFd, transport: Transport) -> io::Result<Negotiated> {
    let mut buf = vec![0u8; 8192];
    let n = loop {
        // SAFETY: reads into our own buffer, within its length.
        let n = unsafe { libc::read(dev.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    };
    let request = decode(&buf[..n]).map_err(|e| io::Error::other(e.why))?;
    let Operation::Init {
        major,
        minor,
        flags: offered,
    } = request.op
    else {
        return Err(io::Error::other("the kernel did not start with INIT"));
    };
    if major != KERNEL_VERSION || minor < OLDEST_MINOR_VERSION {
        return Err(io::Error::other(format!(
            "kernel FUSE protocol {major}.{minor} is too old (7.{OLDEST_MINOR_VERSION} needed)"
        )));
    }
    let pages = max_pages();
    let max_write = pages * 4096;
    let ring_offered = uring::offered(offered);
    let uring = match transport {
        Transport::IoUring if !ring_offered => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "io_uring: the kernel does not offer FUSE-over-io_uring ({ENABLE_URING} is not Y)"
                ),
            ));
        }
        Transport::Classic => false,
        _ if !ring_offered => false,
        transport => match uring::usable() {
            Ok(()) => true,
            Err(e) if transport == Transport::IoUring => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("io_uring: this process cannot make a ring: {e}"),
                ));
            }
            Err(e) => {
                log::warn!(
                    "FUSE-over-io_uring offered, but this process cannot make a ring ({e}): classic /dev/fuse"
                );
                false
            }
        },
    };
    let mut wanted = init::ASYNC_READ | init::BIG_WRITES | init::PARALLEL_DIROPS | init::MAX_PAGES;
    if uring {
        wanted |= uring::INIT_REPLY_FLAGS;
    }
    let flags = wanted & (offered | init::INIT_EXT);
    let mut out = [0u8; abi::INIT_OUT];
    let words: [(usize, u32); 5] = [
        (0, KERNEL_VERSION),
        (4, minor.min(KERNEL_MINOR_VERSION)),
        (8, 0),
        (12, flags as u32),
        (20, max_write),
    ];
    for (at, v) in words {
        out[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    out[16..18].copy_from_slice(&16u16.to_ne_bytes()); // max_background
    out[18..20].copy_from_slice(&12u16.to_ne_bytes()); // congestion_threshold
    out[24..28].copy_from_slice(&1u32.to_ne_bytes()); // time_gran
    out[28..30].copy_from_slice(&(pages as u16).to_ne_bytes());
    out[32..36].copy_from_slice(&((flags >> 32) as u32).to_ne_bytes());
    super::reply::Reply::new(request.unique, channel::sender(dev)?).data(&out);
    Ok(Negotiated {
        max_write,
        max_pages: pages,
        uring,
    })
}

impl Mounted {
    /// Whether the connection has ended (someone ran `umount`).
    pub fn is_finished(&self) -> bool {
        self.session.is_finished()
    }

    /// Removes the mount. Clients that still hold slots open would make a
    /// plain unmount fail with EBUSY; the mount is then detached, and those
    /// clients see the connection end when the daemon exits.
    pub fn unmount(self) {
        // Unmounted from outside already, the directory may hold someone
        // else's mount by now, which is not ours to remove.
        let ours = !self.is_finished() && mountinfo::top_mount_device(&self.dir) == self.device;
        if ours {
            if let Err(e) = unmount(&self.dir) {
                log::warn!("unmounting {}: {e}", self.dir.display());
            }
            self.session
                .join_until(Instant::now() + Duration::from_secs(2));
        }
        // The connection is gone: the queue threads end; join them.
        drop(self.rings);
    }
}

/// Unmounts `dir`: directly when we may, lazily when it is busy, and through
/// fusermount3 when we are not root.
pub fn unmount(dir: &Path) -> io::Result<()> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EBUSY) => {
            // SAFETY: as above.
            if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        Some(libc::EPERM) => {
            let status = Command::new("fusermount3")
                .args(["-u", "-z", "-q"])
                .arg(dir)
                .status()?;
            if status.success() {
                Ok(())
            } else {
                Err(io::Error::other("fusermount3 -u failed"))
            }
        }
        _ => Err(io::Error::last_os_error()),
    }
}

/// Whether `dir` is a FUSE mount whose daemon is gone ("Transport endpoint
/// is not connected").
pub fn is_stale(dir: &Path) -> bool {
    matches!(
        std::fs::metadata(dir).map_err(|e| e.raw_os_error()),
        Err(Some(libc::ENOTCONN))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_limit_leaves_a_page_for_unaligned_buffers() {
        assert!(transport_max() >= 31 * 4096);
        assert_eq!(transport_max() % 4096, 0);
    }
}
