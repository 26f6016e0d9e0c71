//! FUSE over io_uring: the fast transport, with the same request and reply
//! shape as the classic `/dev/fuse` one.
//!
//! The kernel (`fs/fuse/dev_uring.c`, protocol 7.42+) serves each request on
//! the queue of the CPU its caller runs on. Here each queue is a thread pinned
//! to that CPU with its own ring (`SQE128`, `SINGLE_ISSUER | DEFER_TASKRUN`);
//! it registers *entries* (a 288-byte header area and a payload buffer each)
//! and gets one request per entry as a completion. The request is handed to
//! the handler re-assembled in `/dev/fuse` framing (`fuse_in_header`, the
//! per-op struct, the payload), so one decoder serves both transports; the
//! reply is given back in `/dev/fuse` framing (`fuse_out_header` + body) to
//! [`RingReply::send`], from any thread.
//!
//! Use, from the INIT code (the INIT exchange itself stays on `/dev/fuse`):
//! 1. if [`offered`] says the kernel offered it (the 64-bit INIT flags,
//!    `flags | flags2 << 32`), set [`INIT_REPLY_FLAGS`] in the reply
//!    (`flags` gets the low half, `flags2` the high half) and choose
//!    `max_write`/`max_pages` as usual;
//!    — but first ask [`usable`] whether this process may make rings at all
//!    (a reply that takes the ring cannot be taken back);
//! 2. write the INIT reply, then call [`start`] with [`payload_size`] of those
//!    two values. Registering before the reply fails with `EAGAIN`; a smaller
//!    payload is refused with `EINVAL`. The classic loop must run as well:
//!    INTERRUPT and FORGET always arrive on `/dev/fuse`, never on the ring.
//! 3. Teardown: unmounting aborts the connection, idle entries complete with
//!    `ENOTCONN` and the queue threads end by themselves; dropping [`Rings`]
//!    (or [`Rings::stop`]) then just joins them. Stopping while the
//!    connection lives makes later requests wait until it is aborted.
//!
//! **Parked requests hold entries.** A request the file system keeps
//! unanswered (a READ waiting for a message) holds its entry, and the kernel
//! never gives a queued request to an entry registered later: only a
//! commit fetches from the backlog. So a queue must never run dry. After each
//! batch of completions a queue keeps at least `max(32, held / 4)` entries
//! free, registering up to twice that when it falls below; at most
//! [`MAX_ENTRIES_PER_QUEUE`] entries per queue (the bound on what parked
//! requests can make the daemon allocate).
//!
//! A burst can still outrun the free entries: requests that find none wait
//! in the kernel's backlog, and a registration does not fetch from it. So
//! after every batch that registered entries the queue thread *kicks*: it
//! writes a FUSE_NOTIFY_RETRIEVE of no bytes to `/dev/fuse`, and since it
//! runs on its own CPU the kernel's FUSE_NOTIFY_REPLY lands on this queue,
//! on one of the new entries. Committing that reply fetches the backlog's
//! first request. While a kick's commit fetches something the queue kicks
//! again, so a backlog of parked reads drains one kick each and nothing
//! waits behind them. The kernel retrieves only from regular files, so a
//! kick names the file of the last READ or WRITE the queue saw: the file a
//! parked read waits on, whose inode lives while the read is open.
//!
//! Memory: an entry's payload is its own anonymous mapping (`MAP_NORESERVE`),
//! so pages no request touched cost no RSS; a parked entry costs its header
//! (inside a heap allocation of about 400 bytes) plus the payload pages
//! earlier requests through it touched (the kernel reuses the most recently
//! freed entry first, so cold entries stay untouched). Once a queue holds
//! [`TRIM_WHEN_HELD`] entries, each new request's entry gives back all but
//! its first payload page before it is handled, so entries parked for long
//! pin one page each, whatever they carried before.
//!
//! While requests come close together, a queue thread polls its ring for a
//! few microseconds after each batch instead of sleeping at once (see
//! `Server::poll_for_work`): on this VM waking a sleeping thread costs a
//! halted vCPU's wake-up, which is most of a FUSE round trip.
//!
//! Replies from a foreign thread are never committed from another ring (the
//! entry would migrate there, losing locality): the reply is written into the
//! entry at once, the entry's number goes to the owning queue's mailbox, and
//! one `IORING_OP_MSG_RING` (from a small ring of the sending thread) wakes
//! the queue if the mailbox was empty.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use parking_lot::Mutex;

use super::abi::{self, init};

/// Flags to set in the INIT reply (64-bit form) to take the ring: the ring
/// flag itself, INIT_EXT so `flags2` is read, MAX_PAGES so `max_pages` is.
pub const INIT_REPLY_FLAGS: u64 = init::OVER_IO_URING | init::INIT_EXT | init::MAX_PAGES;

/// Most entries one queue registers, whatever is parked on it: more than
/// the parked reads the default memory ceiling lets every user together
/// hold (1 GiB at 4.5 kB each, about 233,000), so that a user who parks
/// reads on one CPU up to their share leaves entries for everyone else.
/// Entries are registered only as parked requests need them.
pub const MAX_ENTRIES_PER_QUEUE: usize = 1 << 18;

/// Payload buffers are cut from mappings of this many, so that a queue
/// with a quarter of a million entries needs 4096 mappings, well inside
/// `vm.max_map_count` (65530 by default), not one each.
const ENTRIES_PER_MAPPING: usize = 64;

/// Entries each queue starts with: a burst larger than the free entries
/// waits in the kernel's backlog until a kick fetches it (see "Parked
/// requests hold entries"), so a margin that ordinary bursts never exceed
/// saves those round trips. An unused entry costs its header, not its
/// payload pages.
const INITIAL_ENTRIES: usize = 64;
/// Free entries a queue keeps at the least.
const MIN_FREE: usize = 32;
/// How long a queue thread watches for more work after a batch before it
/// sleeps (see `Server::poll_for_work`): a little more than a ping-pong
/// half on this machine, an eighth of the kernel's own halt-polling
/// default. Measured (docs/performance.md): 64 B ping-pong 90 → 32 µs;
/// sparse traffic (800 messages/s) 77 → 108 µs of daemon CPU per message;
/// 50 µs bought no more speed and cost 154 µs.
const POLL_WINDOW: std::time::Duration = std::time::Duration::from_micros(25);
/// With this many entries held (parked requests, mostly), a request's entry
/// gives back the payload pages beyond its first before the handler sees it:
/// an entry parked for long must not pin the pages of every large message
/// it once carried. Below it, busy entries keep their pages warm.
const TRIM_WHEN_HELD: usize = 16;
/// Submission queue depth; registrations beyond it are submitted in batches.
const SQ_DEPTH: u32 = 256;

/// The `unique` of a kick's request is this bit and an even count below
/// it: the kernel numbers its own requests with a counter stepping by two
/// from zero, which never reaches it. Each kick has its own number, as
/// the kernel finds a committed request by it.
const KICK_BIT: u64 = 1 << 62;
/// Files a kick may name, the most recent first: a kick naming a file
/// whose inode is gone fails and tries the next.
const KICK_FILES: usize = 8;
/// How long a queue whose registration failed waits before it tries again.
const GROW_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The kernel's smallest payload (FUSE_MIN_READ_BUFFER).
const MIN_PAYLOAD: usize = 8192;
const CMD_REGISTER: u32 = 1;
const CMD_COMMIT_AND_FETCH: u32 = 2;

/// `struct fuse_uring_req_header`: in/out header, per-op struct, entry trailer.
const HEADER_SIZE: usize = 288;
const OP_OFFSET: usize = 128;
const OP_MAX: usize = 128;
const PAYLOAD_SZ_OFFSET: usize = 256 + 16;
const IN_HEADER_LEN: usize = abi::IN_HEADER;
const OUT_HEADER_LEN: usize = abi::OUT_HEADER;

/// Completion tag of a wake-up sent to a queue's ring.
const WAKE: u64 = u64::MAX;

/// Whether the kernel offered FUSE-over-io_uring in INIT (`flags | flags2 << 32`).
pub fn offered(init_flags64: u64) -> bool {
    init_flags64 & init::OVER_IO_URING != 0
}

/// Whether this process may make the rings the queues need: checked before
/// the INIT reply takes the ring, since a connection that took it cannot go
/// back. io_uring can be off for the whole machine
/// (`kernel.io_uring_disabled`) or forbidden by a seccomp filter, as in
/// some container runtimes.
pub fn usable() -> io::Result<()> {
    new_ring().map(drop)
}

/// A queue's ring.
fn new_ring() -> io::Result<IoUring<squeue::Entry128, cqueue::Entry>> {
    IoUring::<squeue::Entry128, cqueue::Entry>::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .build(SQ_DEPTH)
}

/// The payload size the kernel requires of every entry:
/// `max(8 KiB, max_write, max_pages × page size)`, from the INIT reply's values.
pub fn payload_size(max_write: u32, max_pages: u16) -> usize {
    MIN_PAYLOAD
        .max(max_write as usize)
        .max(max_pages as usize * page_size())
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// The request handler: runs on the queue thread, gets the request in
/// `/dev/fuse` framing and the handle to answer it with.
pub type Handler = Arc<dyn Fn(&[u8], RingReply) + Send + Sync>;

/// The queue threads of one connection; dropping it stops and joins them.
pub struct Rings {
    queues: Vec<(Arc<Queue>, JoinHandle<()>)>,
}

/// Starts one queue per possible CPU on the connection `dev`, after the INIT
/// reply has been written on it. Returns once every queue has registered its
/// first entries, which is when the kernel starts using the ring.
pub fn start(dev: BorrowedFd<'_>, payload_size: usize, handler: Handler) -> io::Result<Rings> {
    let mut rings = Rings { queues: Vec::new() };
    for qid in 0..possible_cpus()? {
        let qid = u16::try_from(qid).map_err(|_| io::Error::other("too many CPUs"))?;
        let dev = dev.try_clone_to_owned()?;
        let handler = handler.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(format!("fuse-uring-{qid}"))
            .spawn(move || serve(qid, dev, payload_size, handler, ready_tx))?;
        match ready_rx.recv() {
            Ok(Ok(queue)) => rings.queues.push((queue, thread)),
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(io::Error::new(
                    e.kind(),
                    format!("io_uring queue {qid}: {e}"),
                ));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other(format!("io_uring queue {qid} died")));
            }
        }
    }
    Ok(rings)
}

impl Drop for Rings {
    fn drop(&mut self) {
        for (queue, thread) in &self.queues {
            if !thread.is_finished() {
                queue.stopping.store(true, Ordering::Release);
                wake(queue.ring_fd.as_raw_fd());
            }
        }
        for (_, thread) in self.queues.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The number of possible CPUs, which is the kernel's number of queues.
fn possible_cpus() -> io::Result<usize> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let mut count = 0;
    for range in list.trim().split(',') {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let parse = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| io::Error::other(format!("bad possible CPU list {list:?}")))
        };
        count += parse(last)?.saturating_sub(parse(first)?) + 1;
    }
    Ok(count)
}

/// What a queue shares with replies and with [`Rings`].
struct Queue {
    qid: u16,
    /// A duplicate of the ring's descriptor, the target of wake-ups; kept
    /// open by every reply, so a late wake-up never hits a reused number.
    ring_fd: OwnedFd,
    mailbox: Mutex<Mailbox>,
    stopping: AtomicBool,
}

#[derive(Default)]
struct Mailbox {
    /// Answered entries to commit: (entry index, request unique).
    commits: Vec<(u32, u64)>,
    /// The queue thread has ended; nothing is committed any more.
    closed: bool,
}

thread_local! {
    /// The queue this thread serves (its address), if it is a queue thread.
    static OWN_QUEUE: Cell<usize> = const { Cell::new(0) };
    /// A small ring this thread sends wake-ups from, made on first use.
    static WAKER: RefCell<Option<IoUring>> = const { RefCell::new(None) };
}

impl Queue {
    fn is_own(self: &Arc<Self>) -> bool {
        OWN_QUEUE.with(Cell::get) == Arc::as_ptr(self) as usize
    }

    /// Queues an answered entry for commit; wakes the queue thread if this is
    /// a foreign thread and the mailbox was empty (otherwise the queue thread
    /// drains it anyway before it sleeps).
    fn post(self: &Arc<Self>, index: u32, unique: u64) {
        let need_wake = {
            let mut mailbox = self.mailbox.lock();
            if mailbox.closed {
                return;
            }
            mailbox.commits.push((index, unique));
            mailbox.commits.len() == 1 && !self.is_own()
        };
        if need_wake {
            wake(self.ring_fd.as_raw_fd());
        }
    }
}

/// Posts one wake-up completion to the ring `target` with IORING_OP_MSG_RING.
fn wake(target: RawFd) {
    WAKER.with(|waker| {
        let mut waker = waker.borrow_mut();
        if waker.is_none() {
            match IoUring::new(8) {
                Ok(ring) => *waker = Some(ring),
                Err(e) => {
                    log::error!("io_uring wake-up ring: {e}; a reply waits for the next request");
                    return;
                }
            }
        }
        let Some(ring) = waker.as_mut() else { return };
        let sqe = opcode::MsgRingData::new(types::Fd(target), 0, WAKE, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS);
        // SAFETY: the entry points at no memory of ours.
        if unsafe { ring.submission().push(&sqe) }.is_err() {
            let _ = ring.submit();
            // SAFETY: as above.
            let _ = unsafe { ring.submission().push(&sqe) };
        }
        if let Err(e) = ring.submit() {
            log::error!("io_uring wake-up: {e}");
        }
        for cqe in ring.completion() {
            log::error!(
                "io_uring wake-up: {}",
                io::Error::from_raw_os_error(-cqe.result())
            );
        }
    });
}

/// One registered entry: the memory the kernel copies requests into and
/// replies out of. Shared by the queue thread and the entry's reply handle;
/// the kernel's entry state decides who may touch it (see [`RingReply`]).
struct Slot {
    header: UnsafeCell<[u8; HEADER_SIZE]>,
    payload: Payload,
    /// How many payload bytes requests and replies may have touched (and so
    /// made resident) since the last trim.
    touched: AtomicUsize,
    /// The two iovecs REGISTER points at.
    iov: UnsafeCell<[libc::iovec; 2]>,
}

// SAFETY: the buffers are accessed by one side at a time, handed over through
// the kernel's completion (kernel → queue thread), the handler call (queue
// thread → reply) and the mailbox lock (reply → queue thread).
unsafe impl Sync for Slot {}
// SAFETY: as above; the raw pointers are to memory the slot owns.
unsafe impl Send for Slot {}

impl Slot {
    fn new(payload: Payload) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            header: UnsafeCell::new([0; HEADER_SIZE]),
            payload,
            touched: AtomicUsize::new(0),
            iov: UnsafeCell::new(
                [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; 2],
            ),
        });
        // SAFETY: nobody else has the slot yet.
        unsafe {
            *slot.iov.get() = [
                libc::iovec {
                    iov_base: slot.header.get().cast(),
                    iov_len: HEADER_SIZE,
                },
                libc::iovec {
                    iov_base: slot.payload.ptr.cast(),
                    iov_len: slot.payload.len,
                },
            ];
        }
        slot
    }
}

/// An anonymous mapping cut into the payload buffers of up to
/// [`ENTRIES_PER_MAPPING`] entries: untouched pages cost no memory.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory; who writes where is settled by the
// entries cut from it (see `Slot`).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(len: usize) -> io::Result<Arc<Mapping>> {
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Arc::new(Mapping {
            ptr: ptr.cast(),
            len,
        }))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and no entry refers to it any more.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// One entry's payload buffer, a page-aligned stretch of a [`Mapping`] that
/// it keeps alive.
struct Payload {
    _mapping: Arc<Mapping>,
    ptr: *mut u8,
    len: usize,
}

impl Payload {
    /// Gives back every page after the first of the `touched` bytes.
    fn trim(&self, touched: usize) {
        let page = page_size();
        let end = touched.min(self.len).next_multiple_of(page);
        if end > page {
            // SAFETY: the range lies inside this entry's stretch of the
            // mapping, and its contents are not needed (the caller copied
            // the request out).
            unsafe { libc::madvise(self.ptr.add(page).cast(), end - page, libc::MADV_DONTNEED) };
        }
    }
}

/// One queue's entry that carried a request; the reply goes back through it.
/// `Send`, so a reply may come from any thread. Dropped unanswered, it
/// answers `EIO` so the entry is not lost.
pub struct RingReply {
    queue: Arc<Queue>,
    slot: Arc<Slot>,
    index: u32,
    unique: u64,
    answered: bool,
}

impl RingReply {
    /// Answers with `reply`: `fuse_out_header` + body, exactly as written to
    /// `/dev/fuse`. A body larger than the entry's payload becomes `EIO`.
    pub fn send(mut self, reply: &[u8]) {
        self.answer(reply);
    }

    fn answer(&mut self, reply: &[u8]) {
        let error = reply.get(4..8).map_or(-libc::EIO, |b| {
            i32::from_ne_bytes(b.try_into().unwrap_or_default())
        });
        let body = reply.get(OUT_HEADER_LEN..).unwrap_or_default();
        let (error, body) = match (error, body.len() <= self.slot.payload.len) {
            (0, true) => (0, body),
            (0, false) => (-libc::EIO, &[][..]),
            (error, _) => (error, &[][..]),
        };
        let len = (OUT_HEADER_LEN + body.len()) as u32;
        let payload_sz = body.len() as u32;
        // SAFETY: the kernel handed this entry to user space and touches its
        // buffers again only after the commit posted below; this handle is
        // the only one for the entry, and `body` was checked to fit.
        unsafe {
            let header = &mut *self.slot.header.get();
            header[0..4].copy_from_slice(&len.to_ne_bytes());
            header[4..8].copy_from_slice(&error.to_ne_bytes());
            header[8..16].copy_from_slice(&self.unique.to_ne_bytes());
            header[PAYLOAD_SZ_OFFSET..PAYLOAD_SZ_OFFSET + 4]
                .copy_from_slice(&payload_sz.to_ne_bytes());
            std::ptr::copy(body.as_ptr(), self.slot.payload.ptr, body.len());
        }
        self.slot.touched.fetch_max(body.len(), Ordering::Relaxed);
        self.answered = true;
        self.queue.post(self.index, self.unique);
    }
}

impl Drop for RingReply {
    fn drop(&mut self) {
        if !self.answered {
            let mut reply = [0u8; OUT_HEADER_LEN];
            reply[4..8].copy_from_slice(&(-libc::EIO).to_ne_bytes());
            self.answer(&reply);
        }
    }
}

/// A queue thread's own state.
struct Server {
    queue: Arc<Queue>,
    ring: IoUring<squeue::Entry128, cqueue::Entry>,
    dev: OwnedFd,
    payload_size: usize,
    handler: Handler,
    slots: Vec<Arc<Slot>>,
    /// The mapping new entries' payloads are cut from, and how many it has
    /// given.
    mapping: Option<(Arc<Mapping>, usize)>,
    /// Entries waiting in the kernel for a request.
    free: usize,
    /// Entries handed to the handler, not yet committed.
    held: usize,
    /// The connection ended (an entry completed with ENOTCONN and the like).
    gone: bool,
    /// A registration failed: grow again no sooner than this.
    grow_after: Option<std::time::Instant>,
    /// The entry whose kick reply was committed: if it carries a request in
    /// the completions that follow its submission at once, the commit
    /// fetched from the backlog, which may hold more.
    probe: Option<usize>,
    /// Kick (again) after this batch.
    kick: bool,
    /// Kicks sent, which numbers the next one.
    kicks: u64,
    /// Regular files, the most recent READ's or WRITE's first, which a
    /// kick's retrieve must name.
    files: Vec<u64>,
    request: Vec<u8>,
    completions: Vec<(u64, i32)>,
    commits: Vec<(u32, u64)>,
}

fn serve(
    qid: u16,
    dev: OwnedFd,
    payload_size: usize,
    handler: Handler,
    ready: mpsc::Sender<io::Result<Arc<Queue>>>,
) {
    pin_to_cpu(qid);
    let mut server = match Server::new(qid, dev, payload_size, handler) {
        Ok(server) => server,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(server.queue.clone())).is_err() {
        return;
    }
    if let Err(e) = server.run() {
        log::error!("io_uring queue {qid}: {e}");
    }
    server.queue.mailbox.lock().closed = true;
    if !server.gone {
        // Stopped while the connection lives: the kernel keeps the entries'
        // addresses until it is aborted, so their memory must stay.
        std::mem::forget(std::mem::take(&mut server.slots));
    }
}

fn pin_to_cpu(cpu: u16) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays within it.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(usize::from(cpu), &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if result != 0 {
        // An offline CPU issues no requests; its queue need not be near it.
        log::debug!(
            "io_uring queue {cpu}: not pinned: {}",
            io::Error::last_os_error()
        );
    }
}

impl Server {
    fn new(qid: u16, dev: OwnedFd, payload_size: usize, handler: Handler) -> io::Result<Server> {
        let ring = new_ring()?;
        let queue = Arc::new(Queue {
            qid,
            // SAFETY: the ring's descriptor is open for as long as `ring`.
            ring_fd: unsafe { BorrowedFd::borrow_raw(ring.as_raw_fd()) }.try_clone_to_owned()?,
            mailbox: Mutex::new(Mailbox::default()),
            stopping: AtomicBool::new(false),
        });
        OWN_QUEUE.with(|own| own.set(Arc::as_ptr(&queue) as usize));
        let mut server = Server {
            queue,
            ring,
            dev,
            payload_size,
            handler,
            slots: Vec::new(),
            mapping: None,
            free: 0,
            held: 0,
            gone: false,
            grow_after: None,
            probe: None,
            kick: false,
            kicks: 0,
            files: Vec::with_capacity(KICK_FILES),
            request: Vec::new(),
            completions: Vec::new(),
            commits: Vec::new(),
        };
        for _ in 0..INITIAL_ENTRIES {
            server.register()?;
        }
        server.ring.submit()?;
        // A refused registration completes at once; a good one only when a
        // request arrives.
        if let Some(cqe) = server.ring.completion().next() {
            return Err(io::Error::from_raw_os_error(-cqe.result()));
        }
        Ok(server)
    }

    fn run(&mut self) -> io::Result<()> {
        // Work already seen after a batch (no need to wait), and whether
        // requests come close enough together that polling pays.
        let (mut more, mut dense) = (false, false);
        loop {
            let asleep = std::time::Instant::now();
            match self.ring.submit_and_wait(usize::from(!more)) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
            if !more {
                dense = asleep.elapsed() < 2 * POLL_WINDOW;
            }
            self.completions.clear();
            self.completions.extend(
                self.ring
                    .completion()
                    .map(|cqe| (cqe.user_data(), cqe.result())),
            );
            let probe = self.probe.take();
            let mut probed = false;
            for i in 0..self.completions.len() {
                let (tag, result) = self.completions[i];
                if tag != WAKE {
                    let kick = self.complete(tag as usize, result);
                    if probe == Some(tag as usize) {
                        probed = true;
                        self.kick |= result >= 0 && !kick;
                    }
                }
            }
            if !probed && self.probe.is_none() && !self.ring.submission().is_empty() {
                // The kick's commit has not reached the kernel yet (the
                // enter was cut short): look again after the next one.
                self.probe = probe;
            }
            self.commit_answered()?;
            if self.queue.stopping.load(Ordering::Acquire) || (self.gone && self.free == 0) {
                return Ok(());
            }
            self.kick |= self.grow()?;
            // One kick at a time: a new one would land on the entry whose
            // commit is being watched and look like a fetched request.
            if self.kick && self.probe.is_none() {
                self.kick = false;
                self.send_kick()?;
            }
            // A kick's reply was just committed: look at once whether its
            // commit fetched a request, before anything else can arrive.
            more = self.probe.is_some() || (dense && self.poll_for_work()?);
        }
    }

    /// Writes a FUSE_NOTIFY_RETRIEVE of no bytes to `/dev/fuse`, after
    /// submitting what is queued (new entries must be in the kernel first).
    /// This thread runs on the queue's CPU, so the kernel queues the
    /// FUSE_NOTIFY_REPLY it makes here, on a free entry; its commit (see
    /// `complete`) fetches the backlog's first request.
    fn send_kick(&mut self) -> io::Result<()> {
        self.ring.submit()?;
        const LEN: usize = OUT_HEADER_LEN + abi::NOTIFY_RETRIEVE_OUT;
        while let Some(&file) = self.files.first() {
            let unique = KICK_BIT | (self.kicks << 1 & (KICK_BIT - 1));
            let mut notify = [0u8; LEN];
            notify[0..4].copy_from_slice(&(LEN as u32).to_ne_bytes());
            notify[4..8].copy_from_slice(&abi::NOTIFY_RETRIEVE.to_ne_bytes());
            // fuse_notify_retrieve_out: notify_unique, nodeid, offset, size.
            notify[16..24].copy_from_slice(&unique.to_ne_bytes());
            notify[24..32].copy_from_slice(&file.to_ne_bytes());
            // SAFETY: writes from a live buffer of the given length.
            let written = unsafe { libc::write(self.dev.as_raw_fd(), notify.as_ptr().cast(), LEN) };
            if written >= 0 {
                self.kicks += 1;
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINVAL)) {
                log::debug!("io_uring queue {}: kick: {e}", self.queue.qid);
                break;
            }
            // Its inode is gone (or the number is no regular file's now).
            self.files.remove(0);
        }
        // No file to name: the next READ or WRITE brings one.
        self.kick = true;
        Ok(())
    }

    /// While requests come close together (the last sleep was shorter than
    /// two [`POLL_WINDOW`]s), sends the replies of a batch and watches for
    /// more for up to a window before going to sleep: on a VM whose idle
    /// vCPUs halt at once, waking a sleeping queue thread costs a halt and
    /// an interrupt (about 20 µs), where a queue thread still polling
    /// notices a request in a microsecond. It yields the CPU at every turn,
    /// so callers on this CPU run first; it stops after the window, so an
    /// idle queue costs nothing, and sparse traffic (gaps longer than two
    /// windows) never polls. Whether work arrived: requests and wake-ups come
    /// as deferred task work, which the ring's TASKRUN flag shows.
    fn poll_for_work(&mut self) -> io::Result<bool> {
        self.ring.submit()?;
        let deadline = std::time::Instant::now() + POLL_WINDOW;
        loop {
            if self.ring.submission().taskrun() || !self.ring.completion().is_empty() {
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::yield_now();
        }
    }

    /// An entry completed: a request arrived in it, or it failed. Whether
    /// the request was a kick's.
    fn complete(&mut self, index: usize, result: i32) -> bool {
        self.free -= 1;
        if result < 0 {
            match -result {
                libc::ENOTCONN | libc::ECONNABORTED | libc::ECANCELED | libc::ENODEV => {
                    self.gone = true;
                }
                errno => log::warn!(
                    "io_uring queue {}: entry {index}: {}",
                    self.queue.qid,
                    io::Error::from_raw_os_error(errno)
                ),
            }
            return false;
        }
        let Some(slot) = self.slots.get(index).cloned() else {
            return false;
        };
        // SAFETY: the completion hands the entry to us; the kernel does not
        // touch it until we commit, which only the reply below can trigger.
        let header: &[u8; HEADER_SIZE] = unsafe { &*slot.header.get() };
        let payload_sz = u32::from_ne_bytes(
            header[PAYLOAD_SZ_OFFSET..PAYLOAD_SZ_OFFSET + 4]
                .try_into()
                .unwrap_or_default(),
        ) as usize;
        // SAFETY: as above; the length is clamped to the mapping.
        let payload = unsafe {
            std::slice::from_raw_parts(slot.payload.ptr, payload_sz.min(slot.payload.len))
        };
        // The in-header's length covers the per-op struct and the payload.
        let total = u32::from_ne_bytes(header[0..4].try_into().unwrap_or_default()) as usize;
        let op_len = total
            .saturating_sub(IN_HEADER_LEN + payload.len())
            .min(OP_MAX);
        let unique = u64::from_ne_bytes(header[8..16].try_into().unwrap_or_default());
        let opcode = u32::from_ne_bytes(header[4..8].try_into().unwrap_or_default());
        if opcode == abi::opcode::NOTIFY_REPLY && unique & KICK_BIT != 0 {
            // A kick: answered here, and its commit is watched.
            self.held += 1;
            RingReply {
                queue: self.queue.clone(),
                slot,
                index: index as u32,
                unique,
                answered: false,
            }
            .send(&[0u8; OUT_HEADER_LEN]);
            self.probe = Some(index);
            return true;
        }
        if opcode == abi::opcode::READ || opcode == abi::opcode::WRITE {
            let node = u64::from_ne_bytes(header[16..24].try_into().unwrap_or_default());
            if self.files.first() != Some(&node) {
                self.files.retain(|&file| file != node);
                self.files.truncate(KICK_FILES - 1);
                self.files.insert(0, node);
            }
        }
        self.request.clear();
        self.request.extend_from_slice(&header[..IN_HEADER_LEN]);
        self.request
            .extend_from_slice(&header[OP_OFFSET..OP_OFFSET + op_len]);
        self.request.extend_from_slice(payload);
        let len = self.request.len() as u32;
        self.request[0..4].copy_from_slice(&len.to_ne_bytes());
        let touched = slot.touched.load(Ordering::Relaxed).max(payload.len());
        if self.held >= TRIM_WHEN_HELD && touched > page_size() {
            slot.payload.trim(touched);
            slot.touched.store(0, Ordering::Relaxed);
        } else {
            slot.touched.store(touched, Ordering::Relaxed);
        }
        self.held += 1;
        let reply = RingReply {
            queue: self.queue.clone(),
            slot,
            index: index as u32,
            unique,
            answered: false,
        };
        (self.handler)(&self.request, reply);
        false
    }

    /// Commits every answered entry, each fetching its next request.
    fn commit_answered(&mut self) -> io::Result<()> {
        std::mem::swap(&mut self.commits, &mut self.queue.mailbox.lock().commits);
        for i in 0..self.commits.len() {
            let (index, unique) = self.commits[i];
            let mut cmd = [0u8; 80];
            cmd[8..16].copy_from_slice(&unique.to_ne_bytes());
            cmd[16..18].copy_from_slice(&self.queue.qid.to_ne_bytes());
            let sqe =
                opcode::UringCmd80::new(types::Fd(self.dev.as_raw_fd()), CMD_COMMIT_AND_FETCH)
                    .cmd(cmd)
                    .build()
                    .user_data(u64::from(index));
            self.push(sqe)?;
            self.held -= 1;
            self.free += 1;
        }
        self.commits.clear();
        Ok(())
    }

    /// Keeps enough entries free that parked requests never starve a new
    /// one; whether it registered any.
    fn grow(&mut self) -> io::Result<bool> {
        let want = MIN_FREE.max(self.held / 4);
        let waiting = self
            .grow_after
            .is_some_and(|at| std::time::Instant::now() < at);
        if self.free >= want || self.gone || waiting {
            return Ok(false);
        }
        let before = self.slots.len();
        while self.free < 2 * want && self.slots.len() < MAX_ENTRIES_PER_QUEUE {
            if let Err(e) = self.register() {
                if self.grow_after.is_none() {
                    log::error!(
                        "io_uring queue {}: cannot add an entry: {e}; trying again every {} s",
                        self.queue.qid,
                        GROW_RETRY.as_secs()
                    );
                }
                self.grow_after = Some(std::time::Instant::now() + GROW_RETRY);
                return Ok(self.slots.len() > before);
            }
        }
        self.grow_after = None;
        Ok(self.slots.len() > before)
    }

    /// Registers one more entry.
    fn register(&mut self) -> io::Result<()> {
        let slot = Slot::new(self.next_payload()?);
        let mut cmd = [0u8; 80];
        cmd[16..18].copy_from_slice(&self.queue.qid.to_ne_bytes());
        let sqe = opcode::UringCmd80::new(types::Fd(self.dev.as_raw_fd()), CMD_REGISTER)
            .cmd(cmd)
            .addr(Some(slot.iov.get() as u64))
            .build()
            .user_data(self.slots.len() as u64);
        self.push(with_len(sqe, 2))?;
        self.slots.push(slot);
        self.free += 1;
        Ok(())
    }

    /// A payload buffer for a new entry, from the current mapping or a new one.
    fn next_payload(&mut self) -> io::Result<Payload> {
        let stride = self.payload_size.next_multiple_of(page_size());
        let (mapping, used) = match self.mapping.take() {
            Some((mapping, used)) if used < ENTRIES_PER_MAPPING => (mapping, used),
            _ => (Mapping::new(stride * ENTRIES_PER_MAPPING)?, 0),
        };
        // SAFETY: `used < ENTRIES_PER_MAPPING`, so the stretch lies inside
        // the mapping.
        let ptr = unsafe { mapping.ptr.add(used * stride) };
        let payload = Payload {
            _mapping: Arc::clone(&mapping),
            ptr,
            len: self.payload_size,
        };
        self.mapping = Some((mapping, used + 1));
        Ok(payload)
    }

    fn push(&mut self, sqe: squeue::Entry128) -> io::Result<()> {
        loop {
            // SAFETY: what the entry points at (a slot's iovecs and buffers)
            // lives in `self.slots` as long as the kernel may use it.
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }
}

/// Sets an SQE's `len` field (the iovec count of REGISTER), which the
/// crate's URING_CMD builder does not expose.
fn with_len(sqe: squeue::Entry128, len: u32) -> squeue::Entry128 {
    const _: () = assert!(size_of::<squeue::Entry128>() == 128);
    // SAFETY: Entry128 is a repr(C) pair of plain integers and arrays
    // (io_uring_sqe and 64 command bytes), 128 bytes; any bytes are valid.
    let mut bytes: [u8; 128] = unsafe { std::mem::transmute(sqe) };
    // io_uring_sqe.len is the u32 at offset 24.
    bytes[24..28].copy_from_slice(&len.to_ne_bytes());
    // SAFETY: as above.
    unsafe { std::mem::transmute(bytes) }
}
