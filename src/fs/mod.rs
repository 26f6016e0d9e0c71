//! The adapter: gives the kernel interface's typed requests their mailslot
//! meaning. Each request is matched, handed to the core, and answered;
//! errors go through `errno`.
//!
//! Nothing here blocks. A read on an empty slot parks its reply inside the
//! slot; whichever thread makes it ready (a writer, an INTERRUPT, the timer,
//! shutdown) answers it.
//!
//! With the network bridge, `.net` at the root is a virtual tree
//! (`net_tree`): writes on its endpoints go to the bridge, and messages
//! from the network come in through [`Control::deliver`], the same
//! non-blocking write path local clients use.

mod errno;
mod net_tree;
mod procfs;
mod signals;
mod timer;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use log::debug;
use parking_lot::Mutex;

use crate::bridge::net::{Done, Link};
use crate::bridge::{Delivery, SendError};
use crate::kernel::abi::{IOCTL_UNRESTRICTED, POLL_SCHEDULE_NOTIFY, fopen};
use crate::kernel::channel::{Handler, Notifier};
use crate::kernel::reply::{DirEntries, FileAttr, FileKind, Reply};
use crate::kernel::request::{Forgets, Operation, Request, SetAttr};
use crate::slot::accounts::{Account, Charge, SubordinateIds};
use crate::slot::batch;
use crate::slot::limits::InfoAttr;
use crate::slot::queue::{ReadOutcome, Wakeups};
use crate::slot::table::{Attr, Creator, Fh, Ino, Kind, ROOT, Role, SlotDefaults, SlotRef, Table};
use crate::slot::{Now, Parking, SlotError};
use net_tree::{NET_DIR, NET_ROOT, NetTree, is_net};
use signals::CallerWait;
use timer::Timer;

/// How long a lookup or create waits for the release of a slot that the same
/// thread has just closed, before answering as if it were still open.
const RELEASE_GRACE: Duration = Duration::from_millis(100);

/// How long an INTERRUPT for a request not yet parked is remembered: it
/// can only overtake its request by the time one thread takes to pass a
/// request on.
const EARLY_INTERRUPT_KEPT: Duration = Duration::from_secs(1);
/// When a parked read's caller is first looked at for a signal that brought
/// no INTERRUPT (FUSE-over-io_uring only): well inside the 5 ms a signal may
/// take to end a wait, and later than most reads wait under load.
const LOST_INTERRUPT_FIRST_LOOK: Duration = Duration::from_millis(1);
/// Looks at most, each after twice the wait of the one before (1 to 32 ms).
const LOST_INTERRUPT_LOOKS: u32 = 6;
/// At most this many early interrupts are remembered.
const EARLY_INTERRUPTS_MAX: usize = 1024;

/// A read parked in a slot: the reply (whose id an INTERRUPT names), and
/// the thread to check for a fatal signal before a message is handed over.
pub(crate) struct ParkedRead {
    reply: Reply,
    tid: u32,
}

/// A poll waiter: the kernel's poll handle to notify, and the open handle
/// it polled through, whose release drops it.
pub(crate) struct PollWaiter {
    kh: u64,
    fh: Fh,
}

/// The kernel interface's types for the core's parked readers and poll
/// waiters.
pub(crate) struct Fuse;

impl Parking for Fuse {
    type Reader = ParkedRead;
    type Poller = PollWaiter;

    fn same_poller(a: &PollWaiter, b: &PollWaiter) -> bool {
        a.kh == b.kh
    }

    fn polls_through(poller: &PollWaiter, fh: Fh) -> bool {
        poller.fh == fh
    }
}

/// What the file system is given at mount time.
#[derive(Clone, Debug)]
pub struct FsConfig {
    pub defaults: SlotDefaults,
    /// Largest message the kernel hands over in one request.
    pub transport_max: u32,
    /// Longest a read may stay parked before the kernel's own request
    /// timeout would abort the connection; `None` when the kernel has none.
    pub park_cap: Option<Duration>,
    /// Owner of the root directory.
    pub owner: (u32, u32),
    /// Uids that count as the user they were given to, for the shares.
    pub subordinates: SubordinateIds,
}

/// The state the handlers, the timer and shutdown share.
pub(crate) struct Inner {
    table: Table<Fuse>,
    config: FsConfig,
    timer: Timer,
    delivery_check: signals::DeliveryCheck,
    /// INTERRUPTs that arrived before their read was parked.
    early_interrupts: Mutex<VecDeque<(u64, Instant)>>,
    notifier: Mutex<Option<Notifier>>,
    /// Which transport carries requests, for `status`.
    transport: Mutex<&'static str>,
    shutting_down: AtomicBool,
    net: Option<Net>,
}

/// Handles of `.net` endpoints are numbered from here, apart from the
/// table's slot handles.
const NET_FH_BASE: Fh = 1 << 62;
/// The root's read-only attribute naming the transport (`status`).
const TRANSPORT_XATTR: &str = "user.mailslot.transport";
/// Prefix of the root's read-only attributes on entries, memory, the
/// ceilings and the refusals (`status`).
const LIMITS_XATTR_PREFIX: &str = "user.mailslot.limits.";
/// Prefix of the bridge's read-only attributes on `.net`.
const BRIDGE_XATTR_PREFIX: &str = "user.mailslot.bridge.";

/// The `.net` directory of a bridged mount.
struct Net {
    link: Arc<Link>,
    tree: Mutex<NetTree>,
    /// Open endpoint handles: the endpoint each writes to, and who pays
    /// for the handle.
    handles: Mutex<HashMap<Fh, (Ino, Arc<Account>)>>,
    next_fh: AtomicU64,
    /// A trim of the tree is waiting for the timer thread.
    trimming: AtomicBool,
    /// Writes waiting for their target to be found, by request: an
    /// INTERRUPT takes the reply (EINTR), else the end of the look-up does.
    waiting_writes: Mutex<HashMap<u64, Reply>>,
}

/// The file system the kernel interface serves.
pub struct MailslotFs(Arc<Inner>);

/// The daemon's handle on a mounted file system, for shutdown.
#[derive(Clone)]
pub struct Control(Arc<Inner>);

impl MailslotFs {
    /// A new, empty mailslot namespace, with its timer thread running;
    /// with a bridge `link`, it also has the `.net` directory.
    pub fn new(
        config: FsConfig,
        link: Option<Arc<Link>>,
    ) -> std::io::Result<(MailslotFs, Control)> {
        let born = now();
        let table = Table::with_subordinates(
            config.defaults,
            config.owner,
            config.subordinates.clone(),
            born,
        );
        let net = link.map(|link| Net {
            link,
            tree: Mutex::new(NetTree::new(
                config.owner,
                born.wall,
                Arc::clone(table.accounts()),
            )),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(NET_FH_BASE),
            trimming: AtomicBool::new(false),
            waiting_writes: Mutex::new(HashMap::new()),
        });
        let inner = Arc::new(Inner {
            table,
            config,
            timer: Timer::default(),
            delivery_check: signals::DeliveryCheck::default(),
            early_interrupts: Mutex::new(VecDeque::new()),
            notifier: Mutex::new(None),
            transport: Mutex::new("classic"),
            shutting_down: AtomicBool::new(false),
            net,
        });
        timer::start(Arc::clone(&inner))?;
        Ok((MailslotFs(Arc::clone(&inner)), Control(inner)))
    }
}

impl MailslotFs {
    /// The handler for the kernel interface, once the connection's
    /// notifier (for poll wake-ups) exists and its transport is known.
    pub fn serve(self, notifier: Notifier, transport: &'static str) -> Arc<dyn Handler> {
        *self.0.notifier.lock() = Some(notifier);
        *self.0.transport.lock() = transport;
        Arc::new(self)
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
        self.0.timer.stop();
    }

    /// Writes a message that came from the network into the local slot
    /// its path names, exactly as a local client's write would.
    pub fn deliver(&self, delivery: &Delivery) -> Result<(), SlotError> {
        self.0.deliver(delivery)
    }
}

/// Whether an INTERRUPT for request `unique` came before the request was
/// parked; it is used up.
fn take_early_interrupt(early: &mut VecDeque<(u64, Instant)>, unique: u64) -> bool {
    match early.iter().position(|(u, _)| *u == unique) {
        Some(i) => early.remove(i).is_some(),
        None => false,
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

    /// Sends one write on a `.net` endpoint, answering the kernel once the
    /// datagram is sent or refused; a target that must be looked up is
    /// answered from the thread that found it, so no FUSE thread waits. A
    /// write to our own name or domain is also delivered here first. While
    /// it waits, the write is kept by its request's id: an INTERRUPT (also
    /// one that came first) answers it EINTR, and what the look-up finds
    /// afterwards is neither sent nor answered.
    fn net_write(self: &Arc<Self>, net: &Net, fh: Fh, data: &[u8], reply: Reply) {
        let found = net
            .handles
            .lock()
            .get(&fh)
            .map(|(ino, _)| *ino)
            .ok_or(libc::EBADF)
            .and_then(|ino| net.tree.lock().destination(ino).map_err(errno::errno));
        let (target, path) = match found {
            Ok(found) => found,
            Err(e) => return reply.error(e),
        };
        let unique = reply.unique();
        {
            let mut early = self.early_interrupts.lock();
            if take_early_interrupt(&mut early, unique) {
                return reply.error(libc::EINTR);
            }
            net.waiting_writes.lock().insert(unique, reply);
        }
        let inner = Arc::clone(self);
        let key = target.key();
        let written = data.len() as u32;
        let claim = move || {
            let reply = inner.net.as_ref()?.waiting_writes.lock().remove(&unique)?;
            let done: Done =
                Box::new(move |result| inner.net_written(reply, written, &key, result));
            Some(done)
        };
        net.link
            .send_with(target, path, data.to_vec(), Box::new(claim));
    }

    /// Answers a network write: all its bytes once its datagram is sent
    /// (and a local copy delivered), or the errno it was refused with.
    fn net_written(
        &self,
        reply: Reply,
        written: u32,
        key: &str,
        result: Result<Option<Delivery>, SendError>,
    ) {
        match result {
            Ok(local) => {
                if let (Some(delivery), Some(net)) = (local, &self.net) {
                    net.link.bridge().record_delivery(self.deliver(&delivery));
                }
                reply.written(written);
            }
            Err(e) => {
                debug!("network write to {key}: {e}");
                reply.error(errno::send_errno(e));
            }
        }
    }

    /// Whether the local tree has a directory at `path` (below the root).
    fn is_local_dir(&self, path: &[String]) -> bool {
        let mut ino = ROOT;
        for name in path {
            match self.table.lookup(ino, name.as_bytes()) {
                Ok(attr) if attr.kind == Kind::Directory => ino = attr.ino,
                _ => return false,
            }
        }
        true
    }

    /// The bridge's figures for `status`, and the nodes the `.net` tree holds.
    fn net_attributes(&self, net: &Net) -> Vec<(&'static str, String)> {
        let mut attributes = net.link.attributes();
        attributes.push(("net_nodes", net.tree.lock().len().to_string()));
        attributes
    }

    /// Runs `op`, which tells the kernel of a `.net` node, on the tree. Once
    /// the tree has grown past what the kernel may keep, the timer thread
    /// asks the kernel to drop the oldest names: never a request's thread,
    /// as the kernel takes the directory's lock for that, which the request
    /// being answered may hold.
    fn net_tree<R>(&self, net: &Net, op: impl FnOnce(&mut NetTree) -> R) -> R {
        let mut tree = net.tree.lock();
        let result = op(&mut tree);
        if tree.overgrown() && !net.trimming.swap(true, Ordering::AcqRel) {
            self.timer.after(Duration::ZERO, Inner::trim_net);
        }
        result
    }

    /// Asks the kernel to drop the `.net` names used longest ago.
    fn trim_net(&self) {
        let Some(net) = &self.net else {
            return;
        };
        let names = net.tree.lock().trim();
        net.trimming.store(false, Ordering::Release);
        let notifier = self.notifier.lock().clone();
        if let Some(notifier) = notifier {
            for (parent, name) in names {
                notifier.inval_entry(parent, &name);
            }
        }
    }

    /// A new handle on endpoint `ino`, charged to `uid`.
    fn net_open(&self, net: &Net, ino: Ino, uid: u32) -> Result<Fh, SlotError> {
        let accounts = self.table.accounts();
        let payer = accounts.account(uid);
        accounts.take(&payer, Charge::Handle)?;
        let fh = net.next_fh.fetch_add(1, Ordering::Relaxed);
        net.handles.lock().insert(fh, (ino, payer));
        Ok(fh)
    }

    /// `open(O_CREAT)` write-only of an endpoint and its handle; a handle
    /// refused leaves the endpoint as the kernel will not know it.
    fn net_create(
        &self,
        net: &Net,
        parent: Ino,
        name: &[u8],
        exclusive: bool,
        uid: u32,
    ) -> Result<(Attr, Fh), SlotError> {
        let attr = self.net_tree(net, |tree| tree.create(parent, name, exclusive, uid))?;
        match self.net_open(net, attr.ino, uid) {
            Ok(fh) => Ok((attr, fh)),
            Err(e) => {
                net.tree.lock().forget(attr.ino, 1);
                Err(e)
            }
        }
    }

    /// Answers readers and notifies pollers that an operation made ready.
    /// Called with no lock held.
    fn wake(&self, wakeups: Wakeups<Fuse>) {
        for (parked, result) in wakeups.readers {
            answer_read(parked.reply, result, parked.tid);
        }
        if !wakeups.pollers.is_empty()
            && let Some(notifier) = &*self.notifier.lock()
        {
            for waiter in wakeups.pollers {
                notifier.poll_wakeup(waiter.kh);
            }
        }
    }

    /// A signal reached the caller of request `unique`: its parked read is
    /// answered EINTR, the message staying queued, and so is its network
    /// write waiting for a look-up, whose datagram is then never sent; an
    /// INTERRUPT that overtook its request is kept for it to find.
    fn interrupt(&self, unique: u64) {
        let mut early = self.early_interrupts.lock();
        let waiting_write = self
            .net
            .as_ref()
            .and_then(|net| net.waiting_writes.lock().remove(&unique));
        if let Some(reply) = waiting_write {
            debug!("network write {unique} interrupted while its target was looked up");
            return reply.error(libc::EINTR);
        }
        if self.interrupt_parked(unique, None) {
            return;
        }
        let now = Instant::now();
        while early.len() >= EARLY_INTERRUPTS_MAX
            || early
                .front()
                .is_some_and(|(_, at)| now.duration_since(*at) > EARLY_INTERRUPT_KEPT)
        {
            early.pop_front();
        }
        early.push_back((unique, now));
    }

    /// Answers EINTR the parked read `unique`, looking in `slot` or, when
    /// not given, in every slot with waiting readers.
    fn interrupt_parked(&self, unique: u64, slot: Option<&SlotRef<Fuse>>) -> bool {
        let named = |parked: &ParkedRead| parked.reply.unique() == unique;
        let slots = match slot {
            Some(slot) => vec![Arc::clone(slot)],
            None => self.table.slots(),
        };
        for slot in slots {
            let wakeups = {
                let mut slot = slot.lock();
                if slot.parked_readers() == 0 {
                    continue;
                }
                slot.expire(now(), named)
            };
            if !wakeups.readers.is_empty() {
                self.wake(wakeups);
                return true;
            }
        }
        false
    }

    /// A read was just parked in `slot`: it may have been interrupted
    /// already, and its deadline is the timer's to keep.
    fn parked(&self, unique: u64, tid: u32, ino: Ino, slot: &SlotRef<Fuse>) {
        {
            let mut early = self.early_interrupts.lock();
            if take_early_interrupt(&mut early, unique) {
                self.interrupt_parked(unique, Some(slot));
                return;
            }
        }
        if let Some(at) = slot.lock().next_deadline() {
            self.timer.schedule(ino, slot, at);
        }
        if *self.transport.lock() == "io_uring" && tid != 0 {
            self.look_for_lost_interrupt(unique, tid, Arc::clone(slot), 0);
        }
    }

    /// On FUSE-over-io_uring a signal that reached a reader before its
    /// request reached the ring brings no INTERRUPT (fs/signals.rs): once
    /// the read has waited a little, look at its caller, again while it is
    /// neither plainly asleep nor in the wait only a signal puts it in.
    /// Reads answered sooner cost nothing; a waiting one, a few looks.
    fn look_for_lost_interrupt(&self, unique: u64, tid: u32, slot: SlotRef<Fuse>, looks: u32) {
        let delay = LOST_INTERRUPT_FIRST_LOOK * (1 << looks);
        self.timer.after(delay, move |inner| {
            if slot.lock().parked_readers() == 0 {
                return;
            }
            match inner.delivery_check.caller_wait(tid) {
                CallerWait::Asleep => {}
                CallerWait::Interrupted => {
                    if inner.interrupt_parked(unique, Some(&slot)) {
                        debug!(
                            "read by pid {tid} interrupted before the kernel sent it to the ring"
                        );
                    }
                }
                CallerWait::Unsettled if looks + 1 < LOST_INTERRUPT_LOOKS => {
                    inner.look_for_lost_interrupt(unique, tid, slot, looks + 1)
                }
                CallerWait::Unsettled => {}
            }
        });
    }

    fn attr_reply(&self, reply: Reply, result: Result<Attr, SlotError>, op: &str, tid: u32) {
        match result {
            Ok(attr) => reply.attr(&file_attr(&attr)),
            Err(e) => reply.error(refuse(op, tid, e)),
        }
    }

    fn entry_reply(&self, reply: Reply, result: Result<Attr, SlotError>, op: &str, tid: u32) {
        match result {
            Ok(attr) => reply.entry(&file_attr(&attr)),
            Err(e) => reply.error(refuse(op, tid, e)),
        }
    }

    /// Runs `op` once slot `ino`'s release arrives, or after a grace
    /// period if it does not (the server handle is open elsewhere too).
    /// Used for what a thread does right after closing a descriptor of a
    /// server handle: FUSE sends the release asynchronously, and that
    /// thread must see its own close.
    fn after_release(&self, ino: Ino, op: impl FnOnce(&Inner) + Send + 'static) {
        self.timer.defer(ino, RELEASE_GRACE, move |inner| {
            inner.table.forget_closing(ino);
            op(inner)
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn lookup(&self, tid: u32, uid: u32, parent: Ino, name: &[u8], reply: Reply, may_wait: bool) {
        if may_wait && let Some(closing) = self.table.closing_by(parent, name, tid) {
            let name = name.to_vec();
            self.after_release(closing, move |inner| {
                inner.lookup(tid, uid, parent, &name, reply, false)
            });
            return;
        }
        let found = if self.is_net_dir(parent, name) {
            self.net_at(NET_ROOT)
                .map_or(Err(SlotError::NotFound), |net| {
                    net.tree.lock().attr(NET_ROOT)
                })
        } else if let Some(net) = self.net_at(parent) {
            self.net_tree(net, |tree| {
                tree.lookup(parent, name, uid, |path| self.is_local_dir(path))
            })
        } else {
            self.table.lookup(parent, name)
        };
        self.entry_reply(reply, found, "lookup", tid);
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        tid: u32,
        parent: Ino,
        name: &[u8],
        flags: i32,
        by: Creator,
        reply: Reply,
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
        let created = match self.net_at(parent) {
            // Only the network reads what is written here.
            Some(_) if wants_read => Err(SlotError::ReadDenied),
            Some(net) => self.net_create(net, parent, name, exclusive, by.uid),
            None => self
                .table
                .create(parent, name, wants_read, exclusive, by, now())
                .map(|(attr, fh, _role)| (attr, fh)),
        };
        match created {
            Ok((attr, fh)) => reply.created(&file_attr(&attr), fh, OPEN_FLAGS),
            Err(e) => reply.error(refuse("create", tid, e)),
        }
    }

    /// A client's write: one message, or many in batch mode.
    fn write(&self, tid: u32, fh: u64, data: &[u8], reply: Reply, may_wait: bool) {
        let Some(handle) = self.table.handle(fh) else {
            return reply.error(libc::EBADF);
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
            slot.write_batch(&handle.account, data, now(), interrupted)
        } else {
            slot.write_by(&handle.account, data, now(), interrupted)
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

    /// A server's read: the oldest message, or parked until one comes.
    fn read(&self, tid: u32, fh: u64, size: u32, flags: u32, reply: Reply) {
        let Some(handle) = self.table.handle(fh) else {
            return reply.error(libc::EBADF);
        };
        if handle.role != Role::Server {
            return reply.error(refuse("read", tid, SlotError::WrongRole));
        }
        let nonblocking = flags as i32 & libc::O_NONBLOCK != 0;
        let unique = reply.unique();
        let parked = ParkedRead { reply, tid };
        let cap = self.config.park_cap;
        let mut slot = handle.slot.lock();
        let outcome = slot.read_as(parked, size, nonblocking, now(), cap, handle.batch);
        drop(slot);
        match outcome {
            ReadOutcome::Ready(parked, result, wakeups) => {
                answer_read(parked.reply, result, tid);
                self.wake(wakeups);
            }
            ReadOutcome::Parked => self.parked(unique, tid, handle.ino, &handle.slot),
        }
    }

    /// Readiness of one handle for poll/select/epoll.
    fn poll(&self, tid: u32, fh: u64, notify: Option<u64>, reply: Reply, may_wait: bool) {
        if self.net_handle(fh).is_some() {
            // The network always takes a datagram (or fails the write).
            return reply.poll((libc::POLLOUT | libc::POLLWRNORM) as u32);
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
        let watched = notify.map(|kh| slot.watch(PollWaiter { kh, fh }, &handle.account));
        let ready = slot.readiness();
        drop(slot);
        if let Some(Err(e)) = watched {
            return reply.error(refuse("poll", tid, e));
        }
        let mut events = 0;
        match handle.role {
            Role::Server if ready.readable || ready.hung_up => {
                events |= libc::POLLIN | libc::POLLRDNORM
            }
            Role::Client if ready.writable => events |= libc::POLLOUT | libc::POLLWRNORM,
            _ => {}
        }
        if ready.hung_up {
            events |= libc::POLLHUP | libc::POLLERR;
        }
        reply.poll(events as u32);
    }

    fn getattr(&self, ino: Ino) -> Result<Attr, SlotError> {
        match self.net_at(ino) {
            Some(net) => net.tree.lock().attr(ino),
            None => self.table.attr(ino),
        }
    }

    fn setattr(&self, req: &Request<'_>, set: SetAttr, reply: Reply) {
        let ino = req.nodeid;
        let perm = set.mode.map(|m| (m & 0o7777) as u16);
        let result = match self.net_at(ino) {
            // Only the truncation `echo >` asks for, which changes nothing.
            Some(net)
                if (perm, set.uid, set.gid) == (None, None, None)
                    && set.size.is_none_or(|s| s == 0) =>
            {
                net.tree.lock().attr(ino)
            }
            Some(_) => Err(SlotError::NotPermitted),
            None => self
                .table
                .setattr(ino, perm, (set.uid, set.gid), set.size, now()),
        };
        self.attr_reply(reply, result, "setattr", req.pid);
    }

    fn mkdir(&self, req: &Request<'_>, name: &[u8], mode: u32, umask: u32, reply: Reply) {
        let parent = req.nodeid;
        let by = creator(req, mode, umask);
        let made = match self.net_at(parent) {
            Some(net) => self.net_tree(net, |tree| tree.mkdir(parent, name, by.uid)),
            None => self.table.mkdir(parent, name, by, now()),
        };
        self.entry_reply(reply, made, "mkdir", req.pid);
    }

    fn unlink(&self, parent: Ino, name: &[u8]) -> SlotError {
        // A slot lives exactly as long as its server: it cannot be unlinked,
        // and nothing under `.net` is a file to remove.
        match self.table.lookup(parent, name) {
            _ if self.net_at(parent).is_some() => SlotError::NotPermitted,
            Ok(attr) if attr.kind == Kind::Directory => SlotError::IsADirectory,
            Ok(_) => SlotError::NotPermitted,
            Err(e) => e,
        }
    }

    fn rmdir(&self, parent: Ino, name: &[u8]) -> Result<(), SlotError> {
        if self.is_net_dir(parent, name) {
            Err(SlotError::NotPermitted)
        } else if let Some(net) = self.net_at(parent) {
            net.tree.lock().rmdir(parent, name)
        } else {
            self.table.rmdir(parent, name, now())
        }
    }

    fn open(&self, tid: u32, uid: u32, ino: Ino, flags: u32, reply: Reply) {
        let wants_read = flags as i32 & libc::O_ACCMODE != libc::O_WRONLY;
        let opened = match self.net_at(ino) {
            Some(net) => match net.tree.lock().attr(ino) {
                Ok(attr) if attr.kind == Kind::Directory => Err(SlotError::IsADirectory),
                Ok(_) if wants_read => Err(SlotError::ReadDenied),
                Ok(_) => self.net_open(net, ino, uid),
                Err(e) => Err(e),
            },
            None => self.table.open(ino, wants_read, uid).map(|(fh, _role)| fh),
        };
        match opened {
            Ok(fh) => reply.opened(fh, OPEN_FLAGS),
            Err(e) => reply.error(refuse("open", tid, e)),
        }
    }

    fn release(&self, fh: u64, reply: Reply) {
        if let Some(net) = self.net_handle(fh) {
            if let Some((_, payer)) = net.handles.lock().remove(&fh) {
                self.table.accounts().give_back(&payer, Charge::Handle, 1);
            }
            return reply.ok();
        }
        let (closed, wakeups) = self.table.release(fh, now());
        reply.ok();
        self.wake(wakeups);
        if let Some(ino) = closed {
            self.timer.released(self, ino);
        }
    }

    fn opendir(&self, tid: u32, ino: Ino, reply: Reply) {
        match self.getattr(ino) {
            Ok(attr) if attr.kind == Kind::Directory => reply.opened(0, 0),
            Ok(_) => reply.error(refuse("opendir", tid, SlotError::NotADirectory)),
            Err(e) => reply.error(refuse("opendir", tid, e)),
        }
    }

    fn readdir(&self, tid: u32, ino: Ino, offset: u64, size: u32, reply: Reply) {
        let listed = match self.net_at(ino) {
            Some(net) => net.tree.lock().readdir(ino),
            None => self.table.readdir(ino).map(|mut entries| {
                if ino == ROOT && self.net.is_some() {
                    entries.push((NET_ROOT, Kind::Directory, NET_DIR.to_owned()));
                }
                entries
            }),
        };
        let entries = match listed {
            Ok(entries) => entries,
            Err(e) => return reply.error(refuse("readdir", tid, e)),
        };
        let mut out = DirEntries::new(size);
        for (index, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if !out.add(child, index as u64 + 1, file_kind(kind), name.as_bytes()) {
                break;
            }
        }
        reply.dir(&out);
    }

    fn setxattr(&self, req: &Request<'_>, name: &[u8], value: &[u8], reply: Reply) {
        let ino = req.nodeid;
        if self.net_at(ino).is_some() {
            return reply.error(refuse("setxattr", req.pid, SlotError::NotPermitted));
        }
        let Some(attr) = InfoAttr::from_name(name) else {
            if log::log_enabled!(log::Level::Debug) {
                debug!(
                    "setxattr refused for {}: {:?} is not ours",
                    asker(req.pid),
                    String::from_utf8_lossy(name)
                );
            }
            return reply.error(libc::ENOTSUP);
        };
        let transport_max = self.config.transport_max;
        match self
            .table
            .set_info(ino, attr, value, req.uid, transport_max)
        {
            Ok(wakeups) => {
                reply.ok();
                self.wake(wakeups);
            }
            Err(e) => reply.error(refuse("setxattr", req.pid, e)),
        }
    }

    fn getxattr(&self, req: &Request<'_>, name: &[u8], size: u32, reply: Reply) {
        let ino = req.nodeid;
        if let Some(net) = self.net_at(ino) {
            let wanted = name.strip_prefix(BRIDGE_XATTR_PREFIX.as_bytes());
            let value = self
                .net_attributes(net)
                .into_iter()
                .find(|(attr, _)| ino == NET_ROOT && Some(attr.as_bytes()) == wanted);
            return match value {
                Some((_, value)) => reply.xattr(size, value.as_bytes()),
                None => reply.error(errno::errno(SlotError::NoSuchAttribute)),
            };
        }
        if ino == ROOT && name == TRANSPORT_XATTR.as_bytes() {
            return reply.xattr(size, self.transport.lock().as_bytes());
        }
        if ino == ROOT
            && let Some(wanted) = name.strip_prefix(LIMITS_XATTR_PREFIX.as_bytes())
        {
            let figures = self.table.accounts().figures();
            return match figures.iter().find(|(f, _)| f.as_bytes() == wanted) {
                Some((_, value)) => reply.xattr(size, value.to_string().as_bytes()),
                None => reply.error(errno::errno(SlotError::NoSuchAttribute)),
            };
        }
        let Some(attr) = InfoAttr::from_name(name) else {
            // The kernel asks for security.* names itself on every write;
            // only a user.* question comes from a client.
            let error = SlotError::NoSuchAttribute;
            return reply.error(match name.starts_with(b"user.") {
                true => refuse("getxattr", req.pid, error),
                false => errno::errno(error),
            });
        };
        match self.table.info(ino) {
            Ok(info) => reply.xattr(size, attr.format(&info).as_bytes()),
            Err(SlotError::IsADirectory) => reply.error(errno::errno(SlotError::NoSuchAttribute)),
            Err(e) => reply.error(refuse("getxattr", req.pid, e)),
        }
    }

    fn listxattr(&self, tid: u32, ino: Ino, size: u32, reply: Reply) {
        if let Some(net) = self.net_at(ino) {
            let names: Vec<u8> = match ino {
                NET_ROOT => self
                    .net_attributes(net)
                    .into_iter()
                    .flat_map(|(name, _)| format!("{BRIDGE_XATTR_PREFIX}{name}\0").into_bytes())
                    .collect(),
                _ => Vec::new(),
            };
            return reply.xattr(size, &names);
        }
        let names: Vec<u8> = match self.table.attr(ino) {
            Ok(attr) if attr.kind == Kind::Slot => InfoAttr::ALL
                .iter()
                .flat_map(|a| a.name().bytes().chain([0]))
                .collect(),
            Ok(_) if ino == ROOT => std::iter::once(TRANSPORT_XATTR.to_owned())
                .chain(
                    self.table
                        .accounts()
                        .figures()
                        .into_iter()
                        .map(|(name, _)| format!("{LIMITS_XATTR_PREFIX}{name}")),
                )
                .flat_map(|name| name.into_bytes().into_iter().chain([0]))
                .collect(),
            Ok(_) => Vec::new(),
            Err(e) => return reply.error(refuse("listxattr", tid, e)),
        };
        reply.xattr(size, &names);
    }

    fn ioctl(&self, tid: u32, fh: u64, cmd: u32, in_data: &[u8], reply: Reply) {
        let switch = in_data
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes);
        match (cmd, switch) {
            (batch::IOCTL_SET_BATCH, Some(on)) => match self.table.set_batch(fh, on != 0) {
                Ok(()) => reply.ioctl(0, &[]),
                Err(e) => reply.error(refuse("ioctl", tid, e)),
            },
            _ => reply.error(libc::ENOTTY),
        }
    }
}

/// Every slot is a stream of whole messages: no page cache, no file
/// position (so one descriptor can read on one thread and write on
/// another), no seeking. Writers to one slot may run in parallel: the
/// kernel then takes the inode lock shared for a write that ends within
/// its cached size, which its own bookkeeping raises to the largest
/// message written since the last getattr.
const OPEN_FLAGS: u32 =
    fopen::DIRECT_IO | fopen::STREAM | fopen::NONSEEKABLE | fopen::PARALLEL_DIRECT_WRITES;

/// Logs a refusal once, at the adapter boundary, naming the process that
/// asked (FUSE gives the thread), and gives its errno.
fn refuse(op: &str, tid: u32, error: SlotError) -> i32 {
    let errno = errno::errno(error);
    if log::log_enabled!(log::Level::Debug) {
        debug!("{op} refused for {}: {error} (errno {errno})", asker(tid));
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

fn answer_read(reply: Reply, result: Result<Box<[u8]>, SlotError>, tid: u32) {
    match result {
        Ok(message) => reply.data(&message),
        Err(e) => reply.error(refuse("read", tid, e)),
    }
}

fn creator(req: &Request<'_>, mode: u32, umask: u32) -> Creator {
    Creator {
        uid: req.uid,
        gid: req.gid,
        perm: (mode & !umask & 0o7777) as u16,
        tid: req.pid,
        pid: procfs::process_of(req.pid),
    }
}

fn file_kind(kind: Kind) -> FileKind {
    match kind {
        Kind::Directory => FileKind::Directory,
        Kind::Slot => FileKind::Regular,
    }
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: attr.ino,
        size: attr.size,
        atime: attr.atime,
        mtime: attr.mtime,
        ctime: attr.ctime,
        kind: file_kind(attr.kind),
        perm: attr.perm,
        nlink: match attr.kind {
            Kind::Directory => 2,
            Kind::Slot => 1,
        },
        uid: attr.uid,
        gid: attr.gid,
        blksize: attr.io_size,
    }
}

impl Handler for MailslotFs {
    fn interrupt(&self, unique: u64) {
        self.0.interrupt(unique);
    }

    /// Only the `.net` tree keeps what the kernel knows of; the local table
    /// keeps each name until it is removed.
    fn forget(&self, nodes: Forgets<'_>) {
        if let Some(net) = &self.0.net {
            let mut tree = net.tree.lock();
            for (ino, count) in nodes.iter().filter(|(ino, _)| is_net(*ino)) {
                tree.forget(ino, count);
            }
        }
    }

    fn request(&self, req: Request<'_>, reply: Reply) {
        let fs = &*self.0;
        let (tid, ino) = (req.pid, req.nodeid);
        match req.op {
            Operation::Lookup { name } => fs.lookup(tid, req.uid, ino, name, reply, true),
            Operation::Getattr => fs.attr_reply(reply, fs.getattr(ino), "getattr", tid),
            Operation::Setattr(set) => fs.setattr(&req, set, reply),
            Operation::Mkdir { name, mode, umask } => fs.mkdir(&req, name, mode, umask, reply),
            Operation::Unlink { name } => reply.error(refuse("unlink", tid, fs.unlink(ino, name))),
            Operation::Rmdir { name } => match fs.rmdir(ino, name) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(refuse("rmdir", tid, e)),
            },
            Operation::Mknod { .. } => reply.error(refuse("mknod", tid, SlotError::NotPermitted)),
            Operation::Symlink => reply.error(refuse("symlink", tid, SlotError::NotPermitted)),
            Operation::Rename => reply.error(refuse("rename", tid, SlotError::NotPermitted)),
            Operation::Link => reply.error(refuse("link", tid, SlotError::NotPermitted)),
            Operation::Open { flags } => fs.open(tid, req.uid, ino, flags, reply),
            Operation::Read { fh, size, flags } => fs.read(tid, fh, size, flags, reply),
            Operation::Write { fh, data } => match fs.net_handle(fh) {
                Some(net) => self.0.net_write(net, fh, data, reply),
                None => fs.write(tid, fh, data, reply, true),
            },
            Operation::Flush { fh } => {
                // Not "the handle is gone": bash's `>` flushes before it writes.
                fs.table.flush(fh, tid);
                reply.ok();
            }
            Operation::Release { fh } => fs.release(fh, reply),
            // Every message is queued when its write returns.
            Operation::Fsync => reply.ok(),
            Operation::Opendir => fs.opendir(tid, ino, reply),
            Operation::Readdir { offset, size } => fs.readdir(tid, ino, offset, size, reply),
            Operation::Releasedir => reply.ok(),
            Operation::Statfs => {
                // `df -i` shows the names against `-o max_entries`.
                let accounts = fs.table.accounts();
                let files = accounts.ceilings().max_entries;
                reply.statfs(files, files - accounts.entries().used(), 4096, 255);
            }
            Operation::Setxattr { name, value } => fs.setxattr(&req, name, value, reply),
            Operation::Getxattr { name, size } => fs.getxattr(&req, name, size, reply),
            Operation::Listxattr { size } => fs.listxattr(tid, ino, size, reply),
            Operation::Removexattr { name } => {
                let error = match InfoAttr::from_name(name) {
                    Some(_) => SlotError::NotPermitted,
                    None => SlotError::NoSuchAttribute,
                };
                reply.error(refuse("removexattr", tid, error));
            }
            // The kernel checks permissions itself (default_permissions).
            Operation::Access => reply.ok(),
            Operation::Create {
                name,
                flags,
                mode,
                umask,
            } => {
                let by = creator(&req, mode, umask);
                fs.create(tid, ino, name, flags as i32, by, reply, true);
            }
            Operation::Ioctl { flags, .. } if flags & IOCTL_UNRESTRICTED != 0 => {
                reply.error(libc::ENOSYS)
            }
            Operation::Ioctl {
                fh, cmd, in_data, ..
            } => fs.ioctl(tid, fh, cmd, in_data, reply),
            Operation::Poll { fh, kh, flags } => {
                let notify = (flags & POLL_SCHEDULE_NOTIFY != 0).then_some(kh);
                fs.poll(tid, fh, notify, reply, true);
            }
            Operation::Destroy => reply.ok(),
            Operation::Init { .. } => reply.error(libc::EPROTO),
            Operation::Interrupt { .. } | Operation::Forget(_) | Operation::Unsupported(_) => {
                reply.error(libc::ENOSYS)
            }
        }
    }
}
