//! The one thread that answers what nobody else will when its time comes:
//! parked reads whose deadline passed, lookups/creates that waited for a
//! slot's release that never came, and the one late look at a parked
//! read's caller on FUSE-over-io_uring (fs/signals.rs). It sleeps until the next deadline,
//! and with none it sleeps until one is set: a mount whose readers wait
//! forever costs no wake-up at all.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Fuse, Inner, now};
use crate::slot::table::{Ino, SlotRef};

type DeferredOp = Box<dyn FnOnce(&Inner) + Send>;

struct Deferred {
    /// The slot whose release also runs it, if any.
    ino: Option<Ino>,
    deadline: Instant,
    op: DeferredOp,
}

#[derive(Default)]
struct State {
    /// Slots' earliest reader deadlines, soonest first. An entry whose time
    /// no longer matches `scheduled` was superseded and is skipped.
    due: BinaryHeap<Reverse<(Instant, Ino)>>,
    /// At most one live deadline per slot: the earliest asked for.
    scheduled: HashMap<Ino, (Instant, SlotRef<Fuse>)>,
    deferred: Vec<Deferred>,
    /// When the thread will next look by itself; `None`: not before it is
    /// woken.
    sleeping_until: Option<Instant>,
    stopped: bool,
}

impl State {
    fn next(&self) -> Option<Instant> {
        let slot = self.due.peek().map(|Reverse((at, _))| *at);
        let op = self.deferred.iter().map(|d| d.deadline).min();
        slot.into_iter().chain(op).min()
    }
}

/// Bookkeeping shared by the handlers and the timer thread.
#[derive(Default)]
pub(crate) struct Timer {
    state: Mutex<State>,
    wake: Condvar,
}

impl Timer {
    /// Slot `ino` has a reader to answer at `at` unless a message comes
    /// first. Wakes the thread only when this is sooner than it would look.
    pub(crate) fn schedule(&self, ino: Ino, slot: &SlotRef<Fuse>, at: Instant) {
        let mut state = self.state.lock();
        if state.scheduled.get(&ino).is_some_and(|(t, _)| *t <= at) {
            return;
        }
        state.scheduled.insert(ino, (at, Arc::clone(slot)));
        state.due.push(Reverse((at, ino)));
        self.wake_if_sooner(&state, at);
    }

    /// Runs `op` when slot `ino` is released, or after `grace` at the latest.
    pub(crate) fn defer(
        &self,
        ino: Ino,
        grace: Duration,
        op: impl FnOnce(&Inner) + Send + 'static,
    ) {
        self.push(Some(ino), grace, Box::new(op));
    }

    /// Runs `op` after `delay`.
    pub(crate) fn after(&self, delay: Duration, op: impl FnOnce(&Inner) + Send + 'static) {
        self.push(None, delay, Box::new(op));
    }

    fn push(&self, ino: Option<Ino>, delay: Duration, op: DeferredOp) {
        let deadline = Instant::now() + delay;
        let mut state = self.state.lock();
        state.deferred.push(Deferred { ino, deadline, op });
        self.wake_if_sooner(&state, deadline);
    }

    fn wake_if_sooner(&self, state: &State, at: Instant) {
        if state.sleeping_until.is_none_or(|until| at < until) {
            self.wake.notify_one();
        }
    }

    /// Slot `ino` was released: runs what waited for that.
    pub(crate) fn released(&self, inner: &Inner, ino: Ino) {
        let ops = {
            let mut state = self.state.lock();
            state.scheduled.remove(&ino);
            take_deferred(&mut state, |d| d.ino == Some(ino))
        };
        for d in ops {
            (d.op)(inner);
        }
    }

    /// Ends the timer thread; deferred work runs at once.
    pub(crate) fn stop(&self) {
        self.state.lock().stopped = true;
        self.wake.notify_one();
    }
}

fn take_deferred(state: &mut State, due: impl Fn(&Deferred) -> bool) -> Vec<Deferred> {
    let (ready, waiting) = std::mem::take(&mut state.deferred)
        .into_iter()
        .partition(|d| due(d));
    state.deferred = waiting;
    ready
}

/// Starts the timer thread.
pub(crate) fn start(inner: Arc<Inner>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("mailslot-timer".to_owned())
        .spawn(move || run(&inner))
        .map(drop)
}

fn run(inner: &Inner) {
    let timer = &inner.timer;
    loop {
        let (slots, ops) = {
            let mut state = timer.state.lock();
            loop {
                if state.stopped {
                    let ops = take_deferred(&mut state, |_| true);
                    drop(state);
                    for d in ops {
                        (d.op)(inner);
                    }
                    return;
                }
                let now = Instant::now();
                match state.next() {
                    Some(at) if at <= now => break,
                    next => {
                        state.sleeping_until = next;
                        match next {
                            Some(at) => {
                                timer.wake.wait_until(&mut state, at);
                            }
                            None => timer.wake.wait(&mut state),
                        }
                        state.sleeping_until = None;
                    }
                }
            }
            let now = Instant::now();
            let mut slots = Vec::new();
            while let Some(Reverse((at, ino))) = state.due.peek().copied() {
                if at > now {
                    break;
                }
                state.due.pop();
                match state.scheduled.remove(&ino) {
                    Some((t, slot)) if t == at => slots.push((ino, slot)),
                    Some(later) => drop(state.scheduled.insert(ino, later)),
                    None => {}
                }
            }
            (slots, take_deferred(&mut state, |d| d.deadline <= now))
        };
        for d in ops {
            (d.op)(inner);
        }
        let now = now();
        for (ino, slot) in slots {
            let (wakeups, next) = {
                let mut slot = slot.lock();
                (slot.expire(now, |_| false), slot.next_deadline())
            };
            inner.wake(wakeups);
            if let Some(at) = next {
                timer.schedule(ino, &slot, at);
            }
        }
    }
}
