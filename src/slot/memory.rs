//! The daemon-wide memory ceiling (`-o max_memory`): every queued message
//! of every slot, and every name, handle and waiter (see `accounts`), is
//! charged to one shared budget, so that a flood is refused (ENOBUFS or
//! ENOSPC, counted) long before the kernel's OOM killer would end the
//! daemon and lose everything queued.

use std::sync::atomic::{AtomicU64, Ordering};

/// What one queued message costs beyond its payload: the boxed slice's
/// pointer and length in the queue, plus the allocator's own header and
/// rounding (measured ≈ 32 bytes for small messages with glibc malloc).
pub const MESSAGE_OVERHEAD: u64 = 48;

/// Bytes charged for one queued message of `len` payload bytes.
pub fn message_cost(len: usize) -> u64 {
    len as u64 + MESSAGE_OVERHEAD
}

/// A count (bytes, or entries) under a ceiling, shared by every slot of
/// one mount or by everything one user holds. Lock-free: slots take from
/// it under their own locks, which never nest.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `limit`; `u64::MAX` is no ceiling.
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Takes `bytes` (or entries) if they fit under the ceiling; false
    /// leaves it as it was.
    pub fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    /// Gives back bytes taken earlier.
    pub fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// What is charged now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// The ceiling.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_refuses_what_does_not_fit_and_frees_what_is_given_back() {
        let budget = Budget::new(100);
        assert!(budget.try_take(60));
        assert!(!budget.try_take(41));
        assert!(budget.try_take(40));
        assert!(!budget.try_take(1));
        budget.give_back(60);
        assert_eq!(budget.used(), 40);
        assert!(!budget.try_take(u64::MAX));
        assert_eq!(budget.used(), 40);
    }
}
