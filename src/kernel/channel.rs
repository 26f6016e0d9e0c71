//! The classic transport: threads reading requests from `/dev/fuse`, each
//! with its own cloned descriptor, and the reply path back to the
//! descriptor that read the request (the kernel looks a reply up in that
//! descriptor's own list of requests in flight).

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use super::abi::{self, NOTIFY_INVAL_ENTRY, NOTIFY_INVAL_ENTRY_OUT, NOTIFY_POLL, OUT_HEADER};
use super::reply::Reply;
use super::request::{Forgets, Operation, Request, decode};
use super::uring::RingReply;

/// Where a reply goes: the descriptor that read the request, or the ring
/// entry that carried it.
pub enum Sender {
    Device(Arc<OwnedFd>),
    Ring(RingReply),
}

impl Sender {
    /// Sends one reply (out-header first).
    pub(crate) fn send(self, parts: &[&[u8]]) {
        match self {
            Sender::Device(fd) => write_reply(&fd, parts),
            Sender::Ring(entry) => entry.send(&parts.concat()),
        }
    }
}

/// Writes one reply in a single `writev`, as the kernel requires. A reply
/// the kernel no longer wants (its caller was interrupted or the mount is
/// gone) is not an error worth a line.
fn write_reply(fd: &OwnedFd, parts: &[&[u8]]) {
    {
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        // SAFETY: IoSlice is ABI-compatible with iovec; the slices outlive
        // the call.
        let n = unsafe {
            libc::writev(
                fd.as_raw_fd(),
                slices.as_ptr().cast(),
                slices.len() as libc::c_int,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENODEV)) {
                log::warn!("reply to the kernel: {e}");
            }
        }
    }
}

/// Sends notifications (FUSE_NOTIFY_POLL, FUSE_NOTIFY_INVAL_ENTRY) on the
/// connection: always through `/dev/fuse`, whichever transport carries
/// requests.
#[derive(Clone)]
pub struct Notifier(Arc<OwnedFd>);

impl Notifier {
    /// Tells the kernel that the poll handle `kh` may be ready.
    pub fn poll_wakeup(&self, kh: u64) {
        let mut header = [0u8; OUT_HEADER];
        header[..4].copy_from_slice(&((OUT_HEADER + 8) as u32).to_ne_bytes());
        header[4..8].copy_from_slice(&NOTIFY_POLL.to_ne_bytes());
        write_reply(&self.0, &[&header, &kh.to_ne_bytes()]);
    }

    /// Tells the kernel to drop its cached entry `name` in directory
    /// `parent` (FUSE_NOTIFY_INVAL_ENTRY); once nothing uses the node it
    /// sends FORGET. The kernel takes the directory's lock: never call this
    /// while answering a request on that directory.
    pub fn inval_entry(&self, parent: u64, name: &[u8]) {
        // fuse_notify_inval_entry_out: parent, namelen, flags (0: drop,
        // not only expire); then the name and a NUL.
        let mut body = [0u8; NOTIFY_INVAL_ENTRY_OUT];
        body[..8].copy_from_slice(&parent.to_ne_bytes());
        body[8..12].copy_from_slice(&(name.len() as u32).to_ne_bytes());
        let len = OUT_HEADER + NOTIFY_INVAL_ENTRY_OUT + name.len() + 1;
        let mut header = [0u8; OUT_HEADER];
        header[..4].copy_from_slice(&(len as u32).to_ne_bytes());
        header[4..8].copy_from_slice(&NOTIFY_INVAL_ENTRY.to_ne_bytes());
        write_reply(&self.0, &[&header, &body, name, &[0]]);
    }
}

/// What serves requests: the file system adapter.
pub trait Handler: Send + Sync + 'static {
    /// One request, to be answered through `reply` now or later.
    fn request(&self, request: Request<'_>, reply: Reply);
    /// The caller of request `unique` got a signal: answer it EINTR if it
    /// is still waiting, or remember that it was interrupted.
    fn interrupt(&self, unique: u64);
    /// The kernel dropped `nlookup` of its lookups of each node named.
    fn forget(&self, nodes: Forgets<'_>);
}

/// Hands one request from the kernel to `handler`: INTERRUPT and FORGET
/// get no reply, a malformed request gets EIO, unknown opcodes ENOSYS.
pub fn dispatch(handler: &dyn Handler, buf: &[u8], sender: Sender) {
    match decode(buf) {
        Ok(Request {
            op: Operation::Interrupt { unique },
            ..
        }) => handler.interrupt(unique),
        Ok(Request {
            op: Operation::Forget(nodes),
            ..
        }) => handler.forget(nodes),
        Ok(request) => {
            let reply = Reply::new(request.unique, sender);
            if log::log_enabled!(log::Level::Trace) {
                log::trace!(
                    "FUSE({}) ino {} pid {} {:?}",
                    request.unique,
                    request.nodeid,
                    request.pid,
                    request.op
                );
            }
            match request.op {
                Operation::Unsupported(_) => reply.error(libc::ENOSYS),
                _ => handler.request(request, reply),
            }
        }
        Err(e) => {
            log::warn!("malformed request from the kernel: {}", e.why);
            if let Some(unique) = e.unique.filter(|u| u & abi::INT_REQ_BIT == 0) {
                Reply::new(unique, sender).error(libc::EIO);
            }
        }
    }
}

/// A running classic session: `threads` loops, each on its own clone of
/// the connection's descriptor.
pub struct Session {
    loops: Vec<JoinHandle<()>>,
    running: Arc<AtomicUsize>,
}

impl Session {
    /// Starts the loops. `on_end` runs once, on the last loop to see the
    /// connection end (the file system was unmounted).
    pub fn start(
        dev: &OwnedFd,
        threads: usize,
        buffer_size: usize,
        handler: Arc<dyn Handler>,
        on_end: Arc<dyn Fn() + Send + Sync>,
    ) -> io::Result<Session> {
        let running = Arc::new(AtomicUsize::new(threads));
        let mut loops = Vec::with_capacity(threads);
        for n in 0..threads {
            let fd = Arc::new(clone_device(dev)?);
            let handler = Arc::clone(&handler);
            let running = Arc::clone(&running);
            let on_end = Arc::clone(&on_end);
            let spawned = std::thread::Builder::new()
                .name(format!("fuse-{n}"))
                .spawn(move || {
                    serve(&fd, buffer_size, &*handler);
                    if running.fetch_sub(1, Ordering::SeqCst) == 1 {
                        on_end();
                    }
                })?;
            loops.push(spawned);
        }
        Ok(Session { loops, running })
    }

    /// Whether every loop has ended.
    pub fn is_finished(&self) -> bool {
        self.running.load(Ordering::SeqCst) == 0
    }

    /// Waits for the loops to end, at most until `deadline`.
    pub fn join_until(self, deadline: std::time::Instant) {
        while !self.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if self.is_finished() {
            for l in self.loops {
                let _ = l.join();
            }
        }
    }
}

/// One loop: read a request, dispatch it, until the connection ends.
fn serve(fd: &Arc<OwnedFd>, buffer_size: usize, handler: &dyn Handler) {
    let mut buf = vec![0u8; buffer_size];
    loop {
        // SAFETY: reads into our own buffer, within its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match io::Error::last_os_error().raw_os_error() {
                // Interrupted, or a request that vanished before we read it.
                Some(libc::EINTR | libc::EAGAIN | libc::ENOENT) => continue,
                Some(libc::ENODEV) => return,
                _ => {
                    log::error!("reading /dev/fuse: {}", io::Error::last_os_error());
                    return;
                }
            }
        }
        dispatch(handler, &buf[..n as usize], Sender::Device(Arc::clone(fd)));
    }
}

/// A new descriptor on the same connection (`FUSE_DEV_IOC_CLONE`), so that
/// each loop has its own queue of requests in flight.
fn clone_device(dev: &OwnedFd) -> io::Result<OwnedFd> {
    let fresh = File::options()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map(OwnedFd::from)?;
    let mut source = dev.as_raw_fd() as u32;
    // SAFETY: the ioctl reads one u32 (the source descriptor) from a
    // valid pointer.
    if unsafe { libc::ioctl(fresh.as_raw_fd(), abi::DEV_IOC_CLONE, &mut source) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fresh)
}

/// The reply path of a descriptor that is not a loop's (the one INIT is
/// answered on).
pub fn sender(dev: &OwnedFd) -> io::Result<Sender> {
    Ok(Sender::Device(Arc::new(dev.try_clone()?)))
}

/// The connection's notifier.
pub fn notifier(dev: &OwnedFd) -> io::Result<Notifier> {
    Ok(Notifier(Arc::new(dev.try_clone()?)))
}
