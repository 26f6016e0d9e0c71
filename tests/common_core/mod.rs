//! Shared helpers for the core tests: a test `Parking`, a fake clock and a
//! few shorthands. No fuser, no real time.
#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime};

use mailslotfs::slot::queue::{ReadOutcome, ReadResult, Wakeups};
use mailslotfs::slot::table::{Creator, SlotDefaults, Table};
use mailslotfs::slot::{Now, Parking};

/// Readers and pollers are plain ids.
pub struct P;

impl Parking for P {
    type Reader = u32;
    type Poller = u32;
}

/// The kernel's largest single write, as the adapter would pass it.
pub const TRANSPORT_MAX: u32 = 1 << 20;

/// A clock that only moves when told to.
pub struct Clock {
    mono: Instant,
    wall: SystemTime,
    offset: Duration,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            mono: Instant::now(),
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            offset: Duration::ZERO,
        }
    }

    pub fn now(&self) -> Now {
        Now {
            mono: self.mono + self.offset,
            wall: self.wall + self.offset,
        }
    }

    /// The time `d` after now, without moving the clock.
    pub fn after(&self, d: Duration) -> Now {
        Now {
            mono: self.mono + self.offset + d,
            wall: self.wall + self.offset + d,
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.offset += d;
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// No reader has a signal pending.
pub fn calm(_: &u32) -> bool {
    false
}

/// The immediate answer of a read; panics if it parked.
pub fn ready(outcome: ReadOutcome<P>) -> (u32, ReadResult, Wakeups<P>) {
    match outcome {
        ReadOutcome::Ready(r, res, w) => (r, res, w),
        ReadOutcome::Parked => panic!("read parked, expected an immediate answer"),
    }
}

/// The answer of a read that must not park.
pub fn answer(outcome: ReadOutcome<P>) -> ReadResult {
    ready(outcome).1
}

pub fn is_parked(outcome: &ReadOutcome<P>) -> bool {
    matches!(outcome, ReadOutcome::Parked)
}

/// Readers woken, in order, with their answers (as Vec for easy comparison).
pub fn woken(w: &Wakeups<P>) -> Vec<(u32, Result<Vec<u8>, mailslotfs::slot::SlotError>)> {
    w.readers
        .iter()
        .map(|(r, res)| (*r, res.as_ref().map(|b| b.to_vec()).map_err(|e| *e)))
        .collect()
}

/// The thread id every test creator uses.
pub const CREATOR_TID: u32 = 100;
/// The process id every test creator uses.
pub const CREATOR_PID: u32 = 99;

pub fn user(uid: u32) -> Creator {
    Creator {
        uid,
        gid: uid,
        perm: 0o644,
        tid: CREATOR_TID,
        pid: CREATOR_PID,
    }
}

pub fn table_with(defaults: SlotDefaults, clock: &Clock) -> Table<P> {
    Table::new(defaults, (0, 0), clock.now())
}
