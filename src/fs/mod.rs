//! The FUSE adapter: the only module that knows fuser. Each handler decodes
//! the request, calls the core, and replies; errors go through `errno`.
//!
//! Nothing here blocks. A read on an empty slot parks its reply inside the
//! slot; whichever thread makes it ready (a writer, the watchdog, shutdown)
//! answers it.
//!
//! With the network bridge, `.net` at the root is a virtual tree
//! (`net_tree`): writes on its endpoints go to the bridge, and messages
//! from the network come in through [`Control::deliver`], the same
//! non-blocking write path local clients use.

mod errno;
mod net_tree;
mod procfs;
pub mod session;
mod signals;
mod watchdog;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation,
    INodeNo, IoctlFlags, LockOwner, OpenAccMode, OpenFlags, PollEvents, PollFlags, PollNotifier,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyIoctl, ReplyOpen, ReplyPoll, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};
use log::debug;
use parking_lot::Mutex;

use crate::bridge::Delivery;
use crate::bridge::net::Link;
use crate::slot::batch;
use crate::slot::limits::InfoAttr;
use crate::slot::queue::{ReadOutcome, Wakeups};
use crate::slot::table::{Attr, Creator, Fh, Ino, Kind, ROOT, Role, SlotDefaults, Table};
use crate::slot::{Now, Parking, SlotError};
use net_tree::{NET_DIR, NET_ROOT, NetTree, is_net};
use watchdog::Watchdog;

/// Attributes and entries are never cached: `st_size` is the next message's
/// size and names come and go with their servers.
const NO_CACHE: Duration = Duration::ZERO;

/// How long a lookup or create waits for the release of a slot that the same
/// thread has just closed, before answering as if it were still open.
const RELEASE_GRACE: Duration = Duration::from_millis(100);

/// A read parked in a slot: the reply, and the thread to watch for signals.
pub(crate) struct ParkedRead {
    reply: ReplyData,
    tid: u32,
}

/// fuser's types for the core's parked readers and poll waiters.
pub(crate) struct Fuse;

impl Parking for Fuse {
    type Reader = ParkedRead;
    type Poller = PollNotifier;

    fn same_poller(a: &PollNotifier, b: &PollNotifier) -> bool {
        a.handle().0 == b.handle().0
    }
}

/// What the file system is given at mount time.
#[derive(Clone, Copy, Debug)]
pub struct FsConfig {
    pub defaults: SlotDefaults,
    /// Largest message the kernel hands over in one request.
    pub transport_max: u32,
    /// Longest a read may stay parked before the kernel's own request
    /// timeout would abort the connection; `None` when the kernel has none.
    pub park_cap: Option<Duration>,
    /// Owner of the root directory.
    pub owner: (u32, u32),
}

/// The state the handlers, the watchdog and shutdown share.
pub(crate) struct Inner {
    table: Table<Fuse>,
    config: FsConfig,
    watchdog: Watchdog,
    delivery_check: signals::DeliveryCheck,
    shutting_down: AtomicBool,
    net: Option<Net>,
}

/// Handles of `.net` endpoints are numbered from here, apart from the
/// table's slot handles.
const NET_FH_BASE: Fh = 1 << 62;
/// Prefix of the bridge's read-only attributes on `.net`.
const BRIDGE_XATTR_PREFIX: &str = "user.mailslot.bridge.";

/// The `.net` directory of a bridged mount.
struct Net {
    link: Arc<Link>,
    tree: Mutex<NetTree>,
    /// Open endpoint handles and the endpoint each writes to.
    handles: Mutex<HashMap<Fh, Ino>>,
    next_fh: AtomicU64,
}

/// The file system handed to fuser.
pub struct MailslotFs(Arc<Inner>);

/// The daemon's handle on a mounted file system, for shutdown.
#[derive(Clone)]
pub struct Control(Arc<Inner>);

impl MailslotFs {
    /// A new, empty mailslot namespace, with its watchdog thread running;
    /// with a bridge `link`, it also has the `.net` directory.
    pub fn new(
        config: FsConfig,
        link: Option<Arc<Link>>,
    ) -> std::io::Result<(MailslotFs, Control)> {
        let born = now();
        let net = link.map(|link| Net {
            link,
            tree: Mutex::new(NetTree::new(config.owner, born.wall)),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(NET_FH_BASE),
        });
        let inner = Arc::new(Inner {
            table: Table::new(config.defaults, config.owner, born),
            config,
            watchdog: Watchdog::default(),
            delivery_check: signals::DeliveryCheck::default(),
            shutting_down: AtomicBool::new(false),
            net,
        });
        watchdog::start(Arc::clone(&inner))?;
        Ok((MailslotFs(Arc::clone(&inner)), Control(inner)))
    }
}

impl Control {
    /// Answers every parked reader with end-of-file and makes every later
    /// read do the same, so that no client is left hanging while the daemon
    /// unmounts and exits.
    pub fn shut_down(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
        for slot in self.0.table.slots() {
            let wakeups = slot.lock().shut_down();
            self.0.wake(wakeups);
        }
        self.0.watchdog.stop();
    }

    /// Writes a message that came from the network into the local slot
    /// its path names, exactly as a local client's write would.
    pub fn deliver(&self, delivery: &Delivery) -> Result<(), SlotError> {
        self.0.deliver(delivery)
    }
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall: SystemTime::now(),
    }
}

impl Inner {
    fn deliver(&self, delivery: &Delivery) -> Result<(), SlotError> {
        let slot = self.table.slot_at(&delivery.path)?;
        let wakeups = slot.lock().write(&delivery.data, now(), |parked| {
            self.delivery_check.about_to_be_interrupted(parked.tid)
        })?;
        self.wake(wakeups);
        Ok(())
    }

    /// The `.net` tree, when `ino` is in it.
    fn net_at(&self, ino: Ino) -> Option<&Net> {
        self.net.as_ref().filter(|_| is_net(ino))
    }

    /// The `.net` tree, when `fh` is one of its endpoint handles.
    fn net_handle(&self, fh: Fh) -> Option<&Net> {
        self.net.as_ref().filter(|_| fh >= NET_FH_BASE)
    }

    /// Whether `name` in `parent` is the `.net` directory itself.
    fn is_net_dir(&self, parent: Ino, name: &[u8]) -> bool {
        self.net.is_some() && parent == ROOT && name.eq_ignore_ascii_case(NET_DIR.as_bytes())
    }

    /// Sends one write on a `.net` endpoint; a write to our own name or
    /// domain is also delivered here, before the write returns.
    fn net_write(&self, net: &Net, fh: Fh, data: &[u8]) -> Result<(), fuser::Errno> {
        let ino = net.handles.lock().get(&fh).copied().ok_or(Errno::EBADF)?;
        let (target, path) = net.tree.lock().destination(ino).map_err(errno::errno)?;
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let local = net.link.send(&target, &path, data).map_err(|e| {
            debug!("network write to {}: {e}", target.key());
            errno::send_errno(e)
        })?;
        if let Some(delivery) = local {
            net.link.bridge().record_delivery(self.deliver(&delivery));
        }
        Ok(())
    }

    /// A new handle on endpoint `ino`.
    fn net_open(&self, net: &Net, ino: Ino) -> Fh {
        let fh = net.next_fh.fetch_add(1, Ordering::Relaxed);
        net.handles.lock().insert(fh, ino);
        fh
    }

    /// Answers readers and notifies pollers that an operation made ready.
    /// Called with no lock held.
    fn wake(&self, wakeups: Wakeups<Fuse>) {
        for (parked, result) in wakeups.readers {
            self.watchdog.unparked();
            answer_read(parked.reply, result, parked.tid);
        }
        for poller in wakeups.pollers {
            if let Err(e) = poller.notify() {
                debug!("poll notification failed: {e}");
            }
        }
    }

    /// Replies to getattr/setattr with the attributes, or the refusal.
    fn answer_attr(&self, reply: ReplyAttr, result: Result<Attr, SlotError>, op: &str, tid: u32) {
        match result {
            Ok(attr) => reply.attr(&NO_CACHE, &self.attr(&attr)),
            Err(e) => reply.error(refuse(op, tid, e)),
        }
    }

    fn attr(&self, attr: &Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(attr.ino),
            size: attr.size,
            blocks: 0,
            atime: attr.atime,
            mtime: attr.mtime,
            ctime: attr.ctime,
            crtime: attr.ctime,
            kind: match attr.kind {
                Kind::Directory => FileType::Directory,
                Kind::Slot => FileType::RegularFile,
            },
            perm: attr.perm,
            nlink: match attr.kind {
                Kind::Directory => 2,
                Kind::Slot => 1,
            },
            uid: attr.uid,
            gid: attr.gid,
            rdev: 0,
            blksize: attr.io_size,
            flags: 0,
        }
    }

    /// Runs `op` once slot `ino`'s release arrives, or after a grace
    /// period if it does not (the server handle is open elsewhere too).
    /// Used for what a thread does right after closing a descriptor of a
    /// server handle: FUSE sends the release asynchronously, and that
    /// thread must see its own close.
    fn after_release(&self, ino: Ino, op: impl FnOnce(&Inner) + Send + 'static) {
        self.watchdog.defer(ino, RELEASE_GRACE, move |inner| {
            inner.table.forget_closing(ino);
            op(inner)
        });
    }

    fn lookup(&self, tid: u32, parent: Ino, name: &[u8], reply: ReplyEntry, may_wait: bool) {
        if may_wait && let Some(closing) = self.table.closing_by(parent, name, tid) {
            let name = name.to_vec();
            self.after_release(closing, move |inner| {
                inner.lookup(tid, parent, &name, reply, false)
            });
            return;
        }
        let found = if self.is_net_dir(parent, name) {
            self.net_at(NET_ROOT)
                .map_or(Err(SlotError::NotFound), |net| {
                    net.tree.lock().attr(NET_ROOT)
                })
        } else if let Some(net) = self.net_at(parent) {
            net.tree.lock().lookup(parent, name)
        } else {
            self.table.lookup(parent, name)
        };
        match found {
            Ok(attr) => reply.entry(&NO_CACHE, &self.attr(&attr), Generation(0)),
            Err(e) => reply.error(refuse("lookup", tid, e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        tid: u32,
        parent: Ino,
        name: &[u8],
        flags: i32,
        by: Creator,
        reply: ReplyCreate,
        may_wait: bool,
    ) {
        if may_wait && let Some(closing) = self.table.closing_by(parent, name, tid) {
            let name = name.to_vec();
            self.after_release(closing, move |inner| {
                inner.create(tid, parent, &name, flags, by, reply, false)
            });
            return;
        }
        let wants_read = flags & libc::O_ACCMODE != libc::O_WRONLY;
        let exclusive = flags & libc::O_EXCL != 0;
        if let Some(net) = self.net_at(parent) {
            // Only the network reads what is written here.
            let created = match wants_read {
                true => Err(SlotError::ReadDenied),
                false => net.tree.lock().create(parent, name, exclusive),
            };
            return match created {
                Ok(attr) => reply.created(
                    &NO_CACHE,
                    &self.attr(&attr),
                    Generation(0),
                    FileHandle(self.net_open(net, attr.ino)),
                    open_flags(),
                ),
                Err(e) => reply.error(refuse("create", tid, e)),
            };
        }
        match self
            .table
            .create(parent, name, wants_read, exclusive, by, now())
        {
            Ok((attr, fh, _role)) => reply.created(
                &NO_CACHE,
                &self.attr(&attr),
                Generation(0),
                FileHandle(fh),
                open_flags(),
            ),
            Err(e) => reply.error(refuse("create", tid, e)),
        }
    }

    /// A client's write: one message, or many in batch mode.
    fn write(&self, tid: u32, fh: u64, data: &[u8], reply: ReplyWrite, may_wait: bool) {
        let Some(handle) = self.table.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        if handle.role != Role::Client {
            return reply.error(refuse("write", tid, SlotError::WrongRole));
        }
        let interrupted =
            |parked: &ParkedRead| self.delivery_check.about_to_be_interrupted(parked.tid);
        let mut slot = handle.slot.lock();
        if may_wait && slot.closing_by(tid) {
            drop(slot);
            let data = data.to_vec();
            self.after_release(handle.ino, move |inner| {
                inner.write(tid, fh, &data, reply, false)
            });
            return;
        }
        let result = if handle.batch {
            slot.write_batch(data, now(), interrupted)
        } else {
            slot.write(data, now(), interrupted)
                .map(|wakeups| (data.len(), wakeups))
        };
        drop(slot);
        match result {
            Ok((taken, wakeups)) => {
                // The reader first: answering the writer first lets it
                // preempt this thread before the message is on its way.
                self.wake(wakeups);
                reply.written(taken as u32);
            }
            Err(e) => reply.error(refuse("write", tid, e)),
        }
    }

    /// Readiness of one handle for poll/select/epoll.
    fn poll(
        &self,
        tid: u32,
        fh: u64,
        notify: Option<PollNotifier>,
        reply: ReplyPoll,
        may_wait: bool,
    ) {
        if self.net_handle(fh).is_some() {
            // The network always takes a datagram (or fails the write).
            return reply.poll(PollEvents::POLLOUT | PollEvents::POLLWRNORM);
        }
        let Some(handle) = self.table.handle(fh) else {
            return reply.error(refuse("poll", tid, SlotError::ServerGone));
        };
        let mut slot = handle.slot.lock();
        if may_wait && slot.closing_by(tid) {
            drop(slot);
            return self.after_release(handle.ino, move |inner| {
                inner.poll(tid, fh, notify, reply, false)
            });
        }
        let ready = slot.poll(notify);
        drop(slot);
        let mut events = PollEvents::empty();
        match handle.role {
            Role::Server if ready.readable || ready.hung_up => {
                events |= PollEvents::POLLIN | PollEvents::POLLRDNORM
            }
            Role::Client if ready.writable => {
                events |= PollEvents::POLLOUT | PollEvents::POLLWRNORM
            }
            _ => {}
        }
        if ready.hung_up {
            events |= PollEvents::POLLHUP | PollEvents::POLLERR;
        }
        reply.poll(events);
    }
}

/// Every slot is a stream of whole messages: no page cache, no file
/// position (so one descriptor can read on one thread and write on
/// another), no seeking. Writers to one slot may run in parallel: the
/// kernel then takes the inode lock shared for a write that ends within
/// its cached size, which its own bookkeeping raises to the largest
/// message written since the last getattr.
fn open_flags() -> FopenFlags {
    FopenFlags::FOPEN_DIRECT_IO
        | FopenFlags::FOPEN_STREAM
        | FopenFlags::FOPEN_NONSEEKABLE
        | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES
}

/// Logs a refusal once, at the adapter boundary, naming the process that
/// asked (FUSE gives the thread), and gives its errno.
fn refuse(op: &str, tid: u32, error: SlotError) -> Errno {
    let errno = errno::errno(error);
    if log::log_enabled!(log::Level::Debug) {
        debug!(
            "{op} refused for {}: {error} (errno {})",
            asker(tid),
            errno.code()
        );
    }
    errno
}

/// `pid P`, or `pid P (thread T)` when a thread other than the main one asked.
fn asker(tid: u32) -> String {
    match procfs::process_of(tid) {
        pid if pid == tid || pid == 0 => format!("pid {tid}"),
        pid => format!("pid {pid} (thread {tid})"),
    }
}

fn answer_read(reply: ReplyData, result: Result<Box<[u8]>, SlotError>, tid: u32) {
    match result {
        Ok(message) => reply.data(&message),
        Err(e) => reply.error(refuse("read", tid, e)),
    }
}

fn creator(req: &Request, mode: u32, umask: u32) -> Creator {
    Creator {
        uid: req.uid(),
        gid: req.gid(),
        perm: (mode & !umask & 0o7777) as u16,
        tid: req.pid(),
        pid: procfs::process_of(req.pid()),
    }
}

/// Reply for an extended attribute value: the size probe, ERANGE when the
/// caller's buffer is too small, or the bytes.
fn reply_xattr(reply: ReplyXattr, size: u32, value: &[u8]) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if (size as usize) < value.len() {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(value);
    }
}

impl fuser::Filesystem for MailslotFs {
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.0
            .lookup(req.pid(), parent.0, name.as_bytes(), reply, true);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let attr = match self.0.net_at(ino.0) {
            Some(net) => net.tree.lock().attr(ino.0),
            None => self.0.table.attr(ino.0),
        };
        self.0.answer_attr(reply, attr, "getattr", req.pid());
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let perm = mode.map(|m| (m & 0o7777) as u16);
        let result = match self.0.net_at(ino.0) {
            // Only the truncation `echo >` asks for, which changes nothing.
            Some(net) if (perm, uid, gid) == (None, None, None) && size.is_none_or(|s| s == 0) => {
                net.tree.lock().attr(ino.0)
            }
            Some(_) => Err(SlotError::NotPermitted),
            None => self.0.table.setattr(ino.0, perm, (uid, gid), size, now()),
        };
        self.0.answer_attr(reply, result, "setattr", req.pid());
    }

    fn mknod(
        &self,
        req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(refuse("mknod", req.pid(), SlotError::NotPermitted));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let by = creator(req, mode, umask);
        let made = match self.0.net_at(parent.0) {
            Some(net) => net.tree.lock().mkdir(parent.0, name.as_bytes()),
            None => self.0.table.mkdir(parent.0, name.as_bytes(), by, now()),
        };
        match made {
            Ok(attr) => reply.entry(&NO_CACHE, &self.0.attr(&attr), Generation(0)),
            Err(e) => reply.error(refuse("mkdir", req.pid(), e)),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        // A slot lives exactly as long as its server: it cannot be unlinked,
        // and nothing under `.net` is a file to remove.
        let error = match self.0.table.lookup(parent.0, name.as_bytes()) {
            _ if self.0.net_at(parent.0).is_some() => SlotError::NotPermitted,
            Ok(attr) if attr.kind == Kind::Directory => SlotError::IsADirectory,
            Ok(_) => SlotError::NotPermitted,
            Err(e) => e,
        };
        reply.error(refuse("unlink", req.pid(), error));
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let removed = if self.0.is_net_dir(parent.0, name.as_bytes()) {
            Err(SlotError::NotPermitted)
        } else if let Some(net) = self.0.net_at(parent.0) {
            net.tree.lock().rmdir(parent.0, name.as_bytes())
        } else {
            self.0.table.rmdir(parent.0, name.as_bytes(), now())
        };
        match removed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(refuse("rmdir", req.pid(), e)),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(refuse("symlink", req.pid(), SlotError::NotPermitted));
    }

    fn rename(
        &self,
        req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(refuse("rename", req.pid(), SlotError::NotPermitted));
    }

    fn link(
        &self,
        req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(refuse("link", req.pid(), SlotError::NotPermitted));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let wants_read = flags.acc_mode() != OpenAccMode::O_WRONLY;
        if let Some(net) = self.0.net_at(ino.0) {
            let opened = match net.tree.lock().attr(ino.0) {
                Ok(attr) if attr.kind == Kind::Directory => Err(SlotError::IsADirectory),
                Ok(_) if wants_read => Err(SlotError::ReadDenied),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            return match opened {
                Ok(()) => reply.opened(FileHandle(self.0.net_open(net, ino.0)), open_flags()),
                Err(e) => reply.error(refuse("open", req.pid(), e)),
            };
        }
        match self.0.table.open(ino.0, wants_read) {
            Ok((fh, _role)) => reply.opened(FileHandle(fh), open_flags()),
            Err(e) => reply.error(refuse("open", req.pid(), e)),
        }
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        size: u32,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let tid = req.pid();
        let Some(handle) = self.0.table.handle(fh.0) else {
            return reply.error(Errno::EBADF);
        };
        if handle.role != Role::Server {
            return reply.error(refuse("read", tid, SlotError::WrongRole));
        }
        let nonblocking = flags.0 & libc::O_NONBLOCK != 0;
        let parked = ParkedRead { reply, tid };
        let cap = self.0.config.park_cap;
        let mut slot = handle.slot.lock();
        let outcome = slot.read_as(parked, size, nonblocking, now(), cap, handle.batch);
        drop(slot);
        match outcome {
            ReadOutcome::Ready(parked, result, wakeups) => {
                answer_read(parked.reply, result, tid);
                self.0.wake(wakeups);
            }
            ReadOutcome::Parked => self.0.watchdog.parked(),
        }
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if let Some(net) = self.0.net_handle(fh.0) {
            return match self.0.net_write(net, fh.0, data) {
                Ok(()) => reply.written(data.len() as u32),
                Err(e) => reply.error(e),
            };
        }
        self.0.write(req.pid(), fh.0, data, reply, true);
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Not "the handle is gone": bash's `>` flushes before it writes.
        self.0.table.flush(fh.0, req.pid());
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if let Some(net) = self.0.net_handle(fh.0) {
            net.handles.lock().remove(&fh.0);
            return reply.ok();
        }
        let (closed, wakeups) = self.0.table.release(fh.0, now());
        reply.ok();
        self.0.wake(wakeups);
        if let Some(ino) = closed {
            self.0.watchdog.released(&self.0, ino);
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Every message is queued when its write returns.
        reply.ok();
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let attr = match self.0.net_at(ino.0) {
            Some(net) => net.tree.lock().attr(ino.0),
            None => self.0.table.attr(ino.0),
        };
        match attr {
            Ok(attr) if attr.kind == Kind::Directory => {
                reply.opened(FileHandle(0), FopenFlags::empty())
            }
            Ok(_) => reply.error(refuse("opendir", req.pid(), SlotError::NotADirectory)),
            Err(e) => reply.error(refuse("opendir", req.pid(), e)),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listed = match self.0.net_at(ino.0) {
            Some(net) => net.tree.lock().readdir(ino.0),
            None => self.0.table.readdir(ino.0).map(|mut entries| {
                if ino.0 == ROOT && self.0.net.is_some() {
                    entries.push((NET_ROOT, Kind::Directory, NET_DIR.to_owned()));
                }
                entries
            }),
        };
        let entries = match listed {
            Ok(entries) => entries,
            Err(e) => return reply.error(refuse("readdir", req.pid(), e)),
        };
        for (index, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            let kind = match kind {
                Kind::Directory => FileType::Directory,
                Kind::Slot => FileType::RegularFile,
            };
            if reply.add(INodeNo(child), index as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let files = self.0.table.node_count() as u64;
        reply.statfs(0, 0, 0, files, u64::MAX - files, 4096, 255, 4096);
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        if self.0.net_at(ino.0).is_some() {
            return reply.error(refuse("setxattr", req.pid(), SlotError::NotPermitted));
        }
        let Some(attr) = InfoAttr::from_name(name.as_bytes()) else {
            if log::log_enabled!(log::Level::Debug) {
                debug!(
                    "setxattr refused for {}: {name:?} is not ours",
                    asker(req.pid())
                );
            }
            return reply.error(Errno::ENOTSUP);
        };
        let transport_max = self.0.config.transport_max;
        match self
            .0
            .table
            .set_info(ino.0, attr, value, req.uid(), transport_max)
        {
            Ok(wakeups) => {
                reply.ok();
                self.0.wake(wakeups);
            }
            Err(e) => reply.error(refuse("setxattr", req.pid(), e)),
        }
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if let Some(net) = self.0.net_at(ino.0) {
            let wanted = name.as_bytes().strip_prefix(BRIDGE_XATTR_PREFIX.as_bytes());
            let value = net
                .link
                .bridge()
                .attributes()
                .into_iter()
                .find(|(attr, _)| ino.0 == NET_ROOT && Some(attr.as_bytes()) == wanted);
            return match value {
                Some((_, value)) => reply_xattr(reply, size, value.as_bytes()),
                None => reply.error(errno::errno(SlotError::NoSuchAttribute)),
            };
        }
        let Some(attr) = InfoAttr::from_name(name.as_bytes()) else {
            // The kernel asks for security.* names itself on every write;
            // only a user.* question comes from a client.
            let error = SlotError::NoSuchAttribute;
            return reply.error(match name.as_bytes().starts_with(b"user.") {
                true => refuse("getxattr", req.pid(), error),
                false => errno::errno(error),
            });
        };
        match self.0.table.info(ino.0) {
            Ok(info) => reply_xattr(reply, size, attr.format(&info).as_bytes()),
            Err(SlotError::IsADirectory) => reply.error(errno::errno(SlotError::NoSuchAttribute)),
            Err(e) => reply.error(refuse("getxattr", req.pid(), e)),
        }
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        if let Some(net) = self.0.net_at(ino.0) {
            let names: Vec<u8> = match ino.0 {
                NET_ROOT => net
                    .link
                    .bridge()
                    .attributes()
                    .into_iter()
                    .flat_map(|(name, _)| format!("{BRIDGE_XATTR_PREFIX}{name}\0").into_bytes())
                    .collect(),
                _ => Vec::new(),
            };
            return reply_xattr(reply, size, &names);
        }
        let names: Vec<u8> = match self.0.table.attr(ino.0) {
            Ok(attr) if attr.kind == Kind::Slot => InfoAttr::ALL
                .iter()
                .flat_map(|a| a.name().bytes().chain([0]))
                .collect(),
            Ok(_) => Vec::new(),
            Err(e) => return reply.error(refuse("listxattr", req.pid(), e)),
        };
        reply_xattr(reply, size, &names);
    }

    fn removexattr(&self, req: &Request, _ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let error = match InfoAttr::from_name(name.as_bytes()) {
            Some(_) => SlotError::NotPermitted,
            None => SlotError::NoSuchAttribute,
        };
        reply.error(refuse("removexattr", req.pid(), error));
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // The kernel checks permissions itself (default_permissions).
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let by = creator(req, mode, umask);
        self.0
            .create(req.pid(), parent.0, name.as_bytes(), flags, by, reply, true);
    }

    fn ioctl(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        let switch = in_data
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes);
        match (cmd, switch) {
            (batch::IOCTL_SET_BATCH, Some(on)) => match self.0.table.set_batch(fh.0, on != 0) {
                Ok(()) => reply.ioctl(0, &[]),
                Err(e) => reply.error(refuse("ioctl", req.pid(), e)),
            },
            _ => reply.error(Errno::ENOTTY),
        }
    }

    fn poll(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        let notify = flags
            .contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY)
            .then_some(ph);
        self.0.poll(req.pid(), fh.0, notify, reply, true);
    }
}
