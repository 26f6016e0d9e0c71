//! The one thread that answers what nobody else will: parked reads whose
//! deadline passed or whose thread got a signal, and lookups/creates that
//! waited for a slot's release that never came.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Inner, now, signals};
use crate::slot::table::Ino;

/// How often parked readers are checked for deadlines and signals while any
/// exist: a signalled reader returns within this plus a /proc read.
const TICK: Duration = Duration::from_millis(20);

/// Ticks with nothing to watch before the watchdog sleeps until woken. While
/// it ticks, parking a read costs no wakeup: a ping-pong parks a read every
/// round trip, and waking this thread each time cost a context switch.
const IDLE_TICKS: u32 = 50;

type DeferredOp = Box<dyn FnOnce(&Inner) + Send>;

struct Deferred {
    ino: Ino,
    deadline: Instant,
    op: DeferredOp,
}

#[derive(Default)]
struct State {
    deferred: Vec<Deferred>,
    stopped: bool,
}

/// Bookkeeping shared by the handlers and the watchdog thread.
#[derive(Default)]
pub(crate) struct Watchdog {
    state: Mutex<State>,
    wake: Condvar,
    /// Reads parked anywhere. May dip below zero for a moment when a writer
    /// answers a read before its handler counted it.
    parked: AtomicIsize,
    /// The thread sleeps without a timeout, so a parked read must wake it.
    asleep: AtomicBool,
}

impl Watchdog {
    /// A read was parked.
    pub(crate) fn parked(&self) {
        self.parked.fetch_add(1, Ordering::SeqCst);
        // The watchdog announces its sleep before it checks the count one
        // last time, so either it sees this read or this sees it asleep.
        if self.asleep.load(Ordering::SeqCst) {
            // Under the lock, so the wakeup cannot fall between the
            // watchdog's check of the count and its wait.
            let _state = self.state.lock();
            self.wake.notify_one();
        }
    }

    /// A parked read was answered.
    pub(crate) fn unparked(&self) {
        self.parked.fetch_sub(1, Ordering::SeqCst);
    }

    /// Runs `op` when slot `ino` is released, or after `grace` at the latest.
    pub(crate) fn defer(
        &self,
        ino: Ino,
        grace: Duration,
        op: impl FnOnce(&Inner) + Send + 'static,
    ) {
        let mut state = self.state.lock();
        state.deferred.push(Deferred {
            ino,
            deadline: Instant::now() + grace,
            op: Box::new(op),
        });
        self.wake.notify_one();
    }

    /// Slot `ino` was released: runs what waited for that.
    pub(crate) fn released(&self, inner: &Inner, ino: Ino) {
        let due = self.take(|d| d.ino == ino);
        for d in due {
            (d.op)(inner);
        }
    }

    /// Ends the watchdog thread; deferred work runs at once.
    pub(crate) fn stop(&self) {
        self.state.lock().stopped = true;
        self.wake.notify_one();
    }

    fn take(&self, due: impl Fn(&Deferred) -> bool) -> Vec<Deferred> {
        let mut state = self.state.lock();
        let (ready, waiting) = std::mem::take(&mut state.deferred)
            .into_iter()
            .partition(|d| due(d));
        state.deferred = waiting;
        ready
    }
}

/// Starts the watchdog thread.
pub(crate) fn start(inner: Arc<Inner>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("mailslot-watchdog".to_owned())
        .spawn(move || run(&inner))
        .map(drop)
}

fn run(inner: &Inner) {
    let dog = &inner.watchdog;
    let mut idle_ticks = 0;
    loop {
        {
            let mut state = dog.state.lock();
            if state.stopped {
                break;
            }
            let idle = dog.parked.load(Ordering::SeqCst) <= 0 && state.deferred.is_empty();
            idle_ticks = if idle { idle_ticks + 1 } else { 0 };
            if idle_ticks > IDLE_TICKS {
                dog.asleep.store(true, Ordering::SeqCst);
                if dog.parked.load(Ordering::SeqCst) <= 0 {
                    dog.wake.wait(&mut state);
                }
                dog.asleep.store(false, Ordering::SeqCst);
                idle_ticks = 0;
                continue;
            }
            dog.wake.wait_for(&mut state, TICK);
        }
        let now = now();
        for d in dog.take(|d| d.deadline <= now.mono) {
            (d.op)(inner);
        }
        if dog.parked.load(Ordering::SeqCst) > 0 {
            for slot in inner.table.slots() {
                let wakeups = {
                    let mut slot = slot.lock();
                    if slot.parked_readers() == 0 {
                        continue;
                    }
                    slot.expire(now, |parked| signals::pending(parked.tid))
                };
                inner.wake(wakeups);
            }
        }
    }
    for d in dog.take(|_| true) {
        (d.op)(inner);
    }
}
