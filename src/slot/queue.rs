//! One mailslot's queue: messages, parked readers, poll waiters, limits.
//!
//! Nothing here blocks or sends anything. Operations that make a parked
//! reader or a poller ready hand it back in [`Wakeups`]; the caller answers
//! them after releasing the slot's lock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::accounts::{Account, Accounts, Charge};
use super::batch::{FRAME_HEADER, next_frame, push_frame};
use super::limits::{Limits, ReadTimeout, SlotInfo};
use super::{Now, Parking, SlotError};

/// What a reader gets: one whole message, or why not.
pub type ReadResult = Result<Box<[u8]>, SlotError>;

/// Readers and pollers that an operation made ready. Empty (and free: no
/// allocation) in the common case of nobody waiting.
pub struct Wakeups<K: Parking> {
    /// Parked readers with their answer.
    pub readers: Vec<(K::Reader, ReadResult)>,
    /// Poll waiters to notify: the slot's readiness changed.
    pub pollers: Vec<K::Poller>,
}

impl<K: Parking> Default for Wakeups<K> {
    fn default() -> Self {
        Wakeups {
            readers: Vec::new(),
            pollers: Vec::new(),
        }
    }
}

impl<K: Parking> Wakeups<K> {
    /// Adds another operation's wakeups to these.
    pub fn extend(&mut self, other: Wakeups<K>) {
        self.readers.extend(other.readers);
        self.pollers.extend(other.pollers);
    }
}

/// The outcome of a read request.
pub enum ReadOutcome<K: Parking> {
    /// Answer the reader now.
    Ready(K::Reader, ReadResult, Wakeups<K>),
    /// The reader waits in the slot until a message, its deadline or a signal.
    Parked,
}

/// Readiness for poll/select/epoll, per role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Readiness {
    /// Server: a message waits.
    pub readable: bool,
    /// Client: a message would not be refused for quota.
    pub writable: bool,
    /// The slot is gone (its server closed it, or the daemon shuts down).
    pub hung_up: bool,
}

/// Where a slot is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Open,
    /// The server handle is released: clients get EPIPE.
    Gone,
    /// The daemon is stopping: reads see end-of-file, writes EPIPE.
    ShutDown,
}

struct ParkedRead<R> {
    reader: R,
    buffer_size: u32,
    /// A batch-mode reader: its message is delivered as a frame.
    framed: bool,
    /// When to give up, and with which error.
    deadline: Option<(Instant, SlotError)>,
}

/// A queued message and who pays for it until it is read.
struct Queued {
    data: Box<[u8]>,
    payer: Arc<Account>,
}

/// One mailslot.
pub struct Slot<K: Parking> {
    messages: VecDeque<Queued>,
    queued_bytes: u64,
    /// The mount's accounts, charged for every queued message, parked read
    /// and poll waiter.
    accounts: Arc<Accounts>,
    /// The slot's owner, who pays for its parked reads (only the server
    /// reads) and for messages from the network.
    owner: Arc<Account>,
    limits: Limits,
    keep_empty: bool,
    readers: VecDeque<ParkedRead<K::Reader>>,
    /// Poll waiters, each with whoever registered it.
    pollers: Vec<(K::Poller, Arc<Account>)>,
    life: Life,
    /// The process that created the slot, for `status`.
    owner_pid: u32,
    received: u64,
    read: u64,
    dropped: u64,
    /// The thread that has just closed a descriptor of the server handle,
    /// whose release is probably on its way (see `Table::flush`).
    closing_tid: Option<u32>,
    /// Last message arrival (st_mtime).
    pub modified: SystemTime,
    /// Last read (st_atime).
    pub accessed: SystemTime,
}

impl<K: Parking> Slot<K> {
    /// A new, empty slot created by process `owner_pid`, with no ceilings
    /// of its own. `keep_empty` keeps zero-length messages, which are
    /// otherwise dropped because a 0-byte read means end-of-file.
    pub fn new(limits: Limits, keep_empty: bool, owner_pid: u32, now: Now) -> Self {
        let accounts = Arc::new(Accounts::unlimited());
        let owner = accounts.account(0);
        Slot::charged_to(accounts, owner, limits, keep_empty, owner_pid, now)
    }

    /// [`Slot::new`], charging what the slot holds to `accounts`, shared
    /// with the other slots of its mount; `owner` pays for its parked
    /// reads and for messages that come without a writer's account.
    pub fn charged_to(
        accounts: Arc<Accounts>,
        owner: Arc<Account>,
        limits: Limits,
        keep_empty: bool,
        owner_pid: u32,
        now: Now,
    ) -> Self {
        Slot {
            messages: VecDeque::new(),
            queued_bytes: 0,
            accounts,
            owner,
            limits,
            keep_empty,
            readers: VecDeque::new(),
            pollers: Vec::new(),
            life: Life::Open,
            owner_pid,
            received: 0,
            read: 0,
            dropped: 0,
            closing_tid: None,
            modified: now.wall,
            accessed: now.wall,
        }
    }

    /// The account of the slot's owner.
    pub fn owner(&self) -> Arc<Account> {
        Arc::clone(&self.owner)
    }

    /// Records (or clears) which thread has just closed a descriptor of the
    /// server handle.
    pub fn set_closing(&mut self, tid: Option<u32>) {
        self.closing_tid = tid;
    }

    /// Whether thread `tid` has just closed a descriptor of the server
    /// handle: what it does next should wait for the release, so that
    /// `close(server); write(client)` in one thread always sees EPIPE.
    pub fn closing_by(&self, tid: u32) -> bool {
        self.closing_tid == Some(tid)
    }

    /// Queues one message paid for by the slot's owner (a message from
    /// the network), or hands it straight to the oldest parked reader.
    pub fn write(
        &mut self,
        data: &[u8],
        now: Now,
        interrupted: impl Fn(&K::Reader) -> bool,
    ) -> Result<Wakeups<K>, SlotError> {
        self.write_by(&self.owner(), data, now, interrupted)
    }

    /// Queues one message paid for by `payer` (the writer) until it is
    /// read, or hands it straight to the oldest parked reader.
    /// `interrupted` tells whether a parked reader has a signal pending: such
    /// a reader is answered EINTR instead, so that a reader about to die
    /// never takes a message with it.
    pub fn write_by(
        &mut self,
        payer: &Arc<Account>,
        data: &[u8],
        now: Now,
        interrupted: impl Fn(&K::Reader) -> bool,
    ) -> Result<Wakeups<K>, SlotError> {
        let mut wakeups = Wakeups::default();
        self.accept(payer, data, now, &interrupted, &mut wakeups)?;
        Ok(wakeups)
    }

    /// Batch mode: queues each whole frame of `frames` as one message and
    /// returns how many bytes of frames it took. It stops early (a short
    /// write) at a full quota, an oversized frame or a partial frame; it
    /// fails only when it could take no frame at all.
    pub fn write_batch(
        &mut self,
        payer: &Arc<Account>,
        frames: &[u8],
        now: Now,
        interrupted: impl Fn(&K::Reader) -> bool,
    ) -> Result<(usize, Wakeups<K>), SlotError> {
        let mut wakeups = Wakeups::default();
        let mut rest = frames;
        while let Some((message, after)) = next_frame(rest) {
            match self.accept(payer, message, now, &interrupted, &mut wakeups) {
                Ok(()) => rest = after,
                Err(e) if rest.len() == frames.len() => return Err(e),
                Err(_) => break,
            }
        }
        if rest.len() == frames.len() {
            // Not even one whole frame: the caller's framing is wrong.
            return Err(SlotError::InvalidValue);
        }
        Ok((frames.len() - rest.len(), wakeups))
    }

    fn accept(
        &mut self,
        payer: &Arc<Account>,
        data: &[u8],
        now: Now,
        interrupted: &impl Fn(&K::Reader) -> bool,
        wakeups: &mut Wakeups<K>,
    ) -> Result<(), SlotError> {
        if self.life != Life::Open {
            return Err(SlotError::ServerGone);
        }
        if data.len() > self.limits.max_message_size as usize {
            return Err(SlotError::MessageTooBig);
        }
        if data.is_empty() && !self.keep_empty {
            self.dropped += 1;
            return Ok(());
        }
        if self.is_full(data.len()) {
            self.dropped += 1;
            return Err(SlotError::QuotaFull);
        }
        while let Some(parked) = self.readers.pop_front() {
            self.unparked(1);
            let needed = data.len() + if parked.framed { FRAME_HEADER } else { 0 };
            if interrupted(&parked.reader) {
                wakeups
                    .readers
                    .push((parked.reader, Err(SlotError::Interrupted)));
            } else if (parked.buffer_size as usize) < needed {
                // Windows keeps the message and fails the read; the next
                // reader in line may have room for it.
                wakeups
                    .readers
                    .push((parked.reader, Err(SlotError::BufferTooSmall)));
            } else {
                self.read += 1;
                self.accessed = now.wall;
                let message = if parked.framed {
                    let mut framed = Vec::with_capacity(needed);
                    push_frame(&mut framed, data);
                    framed.into_boxed_slice()
                } else {
                    data.into()
                };
                wakeups.readers.push((parked.reader, Ok(message)));
                self.received += 1;
                self.modified = now.wall;
                return Ok(());
            }
        }
        if let Err(refused) = self.accounts.take(payer, Charge::Message(data.len())) {
            self.dropped += 1;
            return Err(refused);
        }
        self.received += 1;
        self.modified = now.wall;
        self.messages.push_back(Queued {
            data: data.into(),
            payer: Arc::clone(payer),
        });
        self.queued_bytes += data.len() as u64;
        wakeups.pollers.extend(self.take_pollers());
        Ok(())
    }

    /// Gives back the charge of `count` readers that left the queue.
    fn unparked(&self, count: usize) {
        self.accounts
            .give_back(&self.owner, Charge::ParkedRead, count as u64);
    }

    /// Every poll waiter, to be notified, with their charges given back.
    fn take_pollers(&mut self) -> Vec<K::Poller> {
        let accounts = &self.accounts;
        self.pollers
            .drain(..)
            .map(|(poller, payer)| {
                accounts.give_back(&payer, Charge::PollWaiter, 1);
                poller
            })
            .collect()
    }

    /// Reads the oldest message, or parks `reader` until one arrives.
    /// `park_cap` bounds any wait (the kernel's request timeout); a reader
    /// that reaches it is answered EINTR, which read(2) callers retry.
    pub fn read(
        &mut self,
        reader: K::Reader,
        buffer_size: u32,
        nonblocking: bool,
        now: Now,
        park_cap: Option<Duration>,
    ) -> ReadOutcome<K> {
        self.read_as(reader, buffer_size, nonblocking, now, park_cap, false)
    }

    /// [`Slot::read`] for a plain or a batch-mode (`framed`) handle: in
    /// batch mode, every waiting message that fits in `buffer_size`, as
    /// frames.
    pub fn read_as(
        &mut self,
        reader: K::Reader,
        buffer_size: u32,
        nonblocking: bool,
        now: Now,
        park_cap: Option<Duration>,
        framed: bool,
    ) -> ReadOutcome<K> {
        match self.life {
            Life::Open => {}
            Life::ShutDown => {
                return ReadOutcome::Ready(reader, Ok(Box::default()), Wakeups::default());
            }
            Life::Gone => {
                return ReadOutcome::Ready(reader, Err(SlotError::ServerGone), Wakeups::default());
            }
        }
        let header = if framed { FRAME_HEADER } else { 0 };
        if let Some(head) = self.messages.front() {
            if head.data.len() + header > buffer_size as usize {
                return ReadOutcome::Ready(
                    reader,
                    Err(SlotError::BufferTooSmall),
                    Wakeups::default(),
                );
            }
            let message = if framed {
                self.pop_frames(buffer_size as usize, now)
            } else {
                self.pop(now)
            };
            let wakeups = Wakeups {
                readers: Vec::new(),
                pollers: self.take_pollers(),
            };
            return ReadOutcome::Ready(reader, Ok(message), wakeups);
        }
        let own_deadline = match self.limits.read_timeout {
            _ if nonblocking => Some(Duration::ZERO),
            ReadTimeout::After(d) => Some(d),
            ReadTimeout::Forever => None,
        };
        if own_deadline == Some(Duration::ZERO) {
            return ReadOutcome::Ready(reader, Err(SlotError::WouldBlock), Wakeups::default());
        }
        let deadline = match (own_deadline, park_cap) {
            (Some(own), Some(cap)) if cap < own => Some((now.mono + cap, SlotError::Interrupted)),
            (Some(own), _) => Some((now.mono + own, SlotError::TimedOut)),
            (None, Some(cap)) => Some((now.mono + cap, SlotError::Interrupted)),
            (None, None) => None,
        };
        if let Err(refused) = self.accounts.take(&self.owner, Charge::ParkedRead) {
            return ReadOutcome::Ready(reader, Err(refused), Wakeups::default());
        }
        self.readers.push_back(ParkedRead {
            reader,
            buffer_size,
            framed,
            deadline,
        });
        ReadOutcome::Parked
    }

    /// Pops every queued message whose frame still fits in `room` bytes.
    fn pop_frames(&mut self, room: usize, now: Now) -> Box<[u8]> {
        let mut out = Vec::new();
        while let Some(head) = self.messages.front() {
            if out.len() + FRAME_HEADER + head.data.len() > room {
                break;
            }
            let message = self.pop(now);
            push_frame(&mut out, &message);
        }
        out.into_boxed_slice()
    }

    fn pop(&mut self, now: Now) -> Box<[u8]> {
        let Some(Queued { data, payer }) = self.messages.pop_front() else {
            return Box::default();
        };
        self.queued_bytes -= data.len() as u64;
        self.accounts
            .give_back(&payer, Charge::Message(data.len()), 1);
        self.read += 1;
        self.accessed = now.wall;
        data
    }

    /// Answers parked readers whose deadline passed (`TimedOut`, or
    /// `Interrupted` at the park cap) or that `interrupted` names
    /// (`Interrupted`), leaving every message queued.
    pub fn expire(&mut self, now: Now, interrupted: impl Fn(&K::Reader) -> bool) -> Wakeups<K> {
        let mut wakeups = Wakeups::default();
        let before = self.readers.len();
        let mut kept = VecDeque::with_capacity(before);
        for parked in self.readers.drain(..) {
            match parked.deadline {
                Some((at, error)) if at <= now.mono => {
                    wakeups.readers.push((parked.reader, Err(error)))
                }
                _ if interrupted(&parked.reader) => wakeups
                    .readers
                    .push((parked.reader, Err(SlotError::Interrupted))),
                _ => kept.push_back(parked),
            }
        }
        self.readers = kept;
        self.unparked(before - self.readers.len());
        wakeups
    }

    /// The earliest deadline of a parked reader, for the caller's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.readers
            .iter()
            .filter_map(|p| p.deadline.map(|(at, _)| at))
            .min()
    }

    /// Number of readers parked here.
    pub fn parked_readers(&self) -> usize {
        self.readers.len()
    }

    /// The server released its handle: the slot and its messages are gone.
    pub fn close(&mut self) -> Wakeups<K> {
        self.end(Life::Gone)
    }

    /// The daemon stops: parked readers see end-of-file, pollers a hang-up.
    pub fn shut_down(&mut self) -> Wakeups<K> {
        self.end(Life::ShutDown)
    }

    fn end(&mut self, life: Life) -> Wakeups<K> {
        self.life = life;
        for Queued { data, payer } in self.messages.drain(..) {
            self.accounts
                .give_back(&payer, Charge::Message(data.len()), 1);
        }
        self.queued_bytes = 0;
        let answer = |r| match life {
            Life::ShutDown => (r, Ok(Box::default())),
            _ => (r, Err(SlotError::ServerGone)),
        };
        self.unparked(self.readers.len());
        Wakeups {
            readers: self.readers.drain(..).map(|p| answer(p.reader)).collect(),
            pollers: self.take_pollers(),
        }
    }

    /// Keeps `poller`, charged to `payer`, to hand back in the next
    /// [`Wakeups`] so the caller can notify it. The same poller again
    /// moves to the back and costs nothing more.
    pub fn watch(&mut self, poller: K::Poller, payer: &Arc<Account>) -> Result<(), SlotError> {
        let kept = self
            .pollers
            .iter()
            .position(|(kept, _)| K::same_poller(kept, &poller));
        let payer = match kept {
            Some(i) => self.pollers.remove(i).1,
            None => {
                self.accounts.take(payer, Charge::PollWaiter)?;
                Arc::clone(payer)
            }
        };
        self.pollers.push((poller, payer));
        Ok(())
    }

    /// Drops the poll waiters registered through handle `fh`, which is
    /// gone: nobody is left to notify.
    pub fn unwatch(&mut self, fh: u64) {
        let accounts = &self.accounts;
        self.pollers.retain(|(poller, payer)| {
            let through = K::polls_through(poller, fh);
            if through {
                accounts.give_back(payer, Charge::PollWaiter, 1);
            }
            !through
        });
    }

    /// Poll waiters kept.
    pub fn poll_waiters(&self) -> usize {
        self.pollers.len()
    }

    /// Readiness now, for poll/select/epoll.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            readable: !self.messages.is_empty(),
            writable: self.life == Life::Open && !self.is_full(1),
            hung_up: self.life != Life::Open,
        }
    }

    fn is_full(&self, incoming: usize) -> bool {
        self.messages.len() >= self.limits.quota_messages as usize
            || self.queued_bytes + incoming as u64 > self.limits.quota_bytes
    }

    /// Size of the next message (`st_size`), 0 when none.
    pub fn next_size(&self) -> u64 {
        self.messages.front().map_or(0, |m| m.data.len() as u64)
    }

    /// The GetMailslotInfo figures and totals.
    pub fn info(&self) -> SlotInfo {
        SlotInfo {
            limits: self.limits,
            next_size: self.messages.front().map(|m| m.data.len() as u32),
            message_count: self.messages.len() as u32,
            queued_bytes: self.queued_bytes,
            owner_pid: self.owner_pid,
            received: self.received,
            read: self.read,
            dropped: self.dropped,
            waiting_readers: self.readers.len() as u32,
        }
    }

    /// SetMailslotInfo: new limits apply to the next write and read.
    /// Pollers are woken because a changed quota changes writability.
    pub fn set_limits(&mut self, limits: Limits) -> Wakeups<K> {
        self.limits = limits;
        Wakeups {
            readers: Vec::new(),
            pollers: self.take_pollers(),
        }
    }
}
