//! The pure core: names, slots, queues, limits and lifetime.
//!
//! No fuser, no sockets, no clocks: every operation that needs the time is
//! given it ([`Now`]), and parked readers and poll waiters are opaque values
//! of the caller's choosing ([`Parking`]) that come back when they are due.
//!
//! | operation | result |
//! |---|---|
//! | create with read access on a new name | the slot and its server handle |
//! | create write-only on a missing name | `NotFound`: clients cannot create |
//! | open of an existing slot with read access | `ReadDenied` |
//! | write ≤ max size, queue not full | one message queued (or handed to the oldest parked reader) |
//! | write > max size / queue full | `MessageTooBig` / `QuotaFull`, nothing queued |
//! | write past the mount's memory ceiling or the writer's share | `OutOfMemory`, nothing queued |
//! | mkdir or create past `max_entries`, the user's share or the memory ceiling | `NoSpace` |
//! | open, parked read or poll waiter past the memory ceiling or the user's share | `OutOfMemory` |
//! | read with a big enough buffer | the oldest whole message |
//! | read with a small buffer | `BufferTooSmall`, the message stays |
//! | read on an empty queue | `WouldBlock`, or parked until a message, the timeout (`TimedOut`) or a signal (`Interrupted`) |
//! | release of the server handle | the slot, its name and its messages are gone; clients get `ServerGone` |

pub mod accounts;
pub mod batch;
pub mod error;
pub mod limits;
pub mod memory;
pub mod name;
pub mod queue;
pub mod table;

use std::time::{Instant, SystemTime};

pub use error::SlotError;

/// The current time, passed into the core: monotonic for deadlines, wall
/// clock for `stat` times.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

/// The caller's types for a parked reader (who gets the message) and a poll
/// waiter (whom to notify). The core only stores and returns them.
pub trait Parking: 'static {
    type Reader: Send;
    type Poller: Send;

    /// Whether two poll waiters stand for the same kernel poll handle, so a
    /// program that polls again and again keeps one entry, not thousands.
    fn same_poller(_a: &Self::Poller, _b: &Self::Poller) -> bool {
        false
    }

    /// Whether a poll waiter was registered through open handle `fh`, so
    /// that releasing the handle drops the waiter (and gives back its
    /// charge) instead of keeping it until the slot next wakes its pollers.
    fn polls_through(_poller: &Self::Poller, _fh: u64) -> bool {
        false
    }
}
