//! The system resolver (`/etc/hosts`, DNS) for names NetBIOS does not
//! know, as a bounded table without threads or clocks. The socket layer
//! asks it which names to look up (each on a thread of its own, so that one
//! slow server stalls no other name), reports what each look-up found, and
//! parks here the writes that wait for one, each until its deadline: a
//! write never waits on DNS past that, however slow the server.
//!
//! Addresses found are kept a minute (the resolver gives no TTL), misses
//! five seconds, as the name service keeps its own; a look-up still running
//! at a write's deadline counts as a miss until it ends, so a burst of
//! writes to a missing name waits once.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::cache::NameCache;
use crate::wire::NetbiosName;

/// How long an address the system resolver gave is used without asking
/// again: a host that moved is found again within a minute.
const FOUND_TTL: Duration = Duration::from_secs(60);
/// How long a miss is remembered.
const MISSING_TTL: Duration = Duration::from_secs(5);
/// Look-ups running at once, a thread each; a name past this is not asked.
const MAX_LOOKUPS: usize = 16;
/// Bounds on what local writers can make us wait for.
const MAX_WAITERS: usize = 4096;

/// What became of a write handed to [`SystemNames::settle`].
#[derive(Debug, PartialEq, Eq)]
pub enum Settled<W> {
    /// The system resolver knows the name.
    Found(Ipv4Addr, W),
    /// It does not, or did not answer by the write's deadline.
    Missing(W),
    /// Too many look-ups or writes wait already.
    Busy(W),
    /// The write waits for the look-up; with `ask`, the caller must start
    /// it now and report with [`SystemNames::answered`].
    Waiting { ask: bool },
}

/// One write waiting for a look-up.
struct Waiter<W> {
    name: NetbiosName,
    deadline: Instant,
    waiter: W,
}

/// The system resolver's cache, running look-ups and waiting writes.
pub struct SystemNames<W> {
    cache: NameCache<Option<Ipv4Addr>>,
    running: HashSet<NetbiosName>,
    waiting: Vec<Waiter<W>>,
}

impl<W> Default for SystemNames<W> {
    fn default() -> Self {
        Self {
            cache: NameCache::default(),
            running: HashSet::new(),
            waiting: Vec::new(),
        }
    }
}

impl<W> SystemNames<W> {
    /// Whether to look `name` up now, alongside a NetBIOS query for it, so
    /// that a slow server has the query's time too: neither known nor being
    /// looked up, and a thread to spare. The caller starts the look-up and
    /// reports with [`answered`](Self::answered).
    pub fn start(&mut self, name: NetbiosName, now: Instant) -> bool {
        if self.cache.get(&name, now).is_some()
            || self.running.contains(&name)
            || self.running.len() >= MAX_LOOKUPS
        {
            return false;
        }
        self.running.insert(name);
        true
    }

    /// A write NetBIOS found no address for: what the system resolver
    /// knows, or a wait until `deadline` for its answer.
    pub fn settle(
        &mut self,
        name: NetbiosName,
        waiter: W,
        deadline: Instant,
        now: Instant,
    ) -> Settled<W> {
        match self.cache.get(&name, now) {
            Some(Some(address)) => return Settled::Found(address, waiter),
            Some(None) => return Settled::Missing(waiter),
            None => {}
        }
        if deadline <= now {
            self.gave_up_on(name, now);
            return Settled::Missing(waiter);
        }
        if self.waiting.len() >= MAX_WAITERS {
            return Settled::Busy(waiter);
        }
        let ask = self.start(name, now);
        if !ask && !self.running.contains(&name) {
            return Settled::Busy(waiter);
        }
        self.waiting.push(Waiter {
            name,
            deadline,
            waiter,
        });
        Settled::Waiting { ask }
    }

    /// A write's deadline passed while `name` was looked up: a miss until
    /// the look-up ends.
    fn gave_up_on(&mut self, name: NetbiosName, now: Instant) {
        if self.running.contains(&name) {
            self.cache.insert(name, None, MISSING_TTL, now);
        }
    }

    /// A look-up ended: its answer is kept, and the writes waiting for it
    /// come back.
    pub fn answered(&mut self, name: NetbiosName, found: Option<Ipv4Addr>, now: Instant) -> Vec<W> {
        self.running.remove(&name);
        let ttl = if found.is_some() {
            FOUND_TTL
        } else {
            MISSING_TTL
        };
        self.cache.insert(name, found, ttl, now);
        let (done, waiting) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.name == name);
        self.waiting = waiting;
        done.into_iter().map(|w| w.waiter).collect()
    }

    /// The writes whose deadline passed, each with its name.
    pub fn expire(&mut self, now: Instant) -> Vec<(NetbiosName, W)> {
        let (expired, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.deadline <= now);
        self.waiting = waiting;
        for w in &expired {
            self.gave_up_on(w.name, now);
        }
        expired.into_iter().map(|w| (w.name, w.waiter)).collect()
    }

    /// When the next waiting write's deadline comes.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.deadline).min()
    }

    /// The cache, `NAME<xx>=ADDR` or `NAME<xx>=none`, soonest to expire
    /// first, for `status`.
    pub fn entries(&self, now: Instant) -> Vec<String> {
        self.cache
            .live(now)
            .into_iter()
            .map(|(name, address)| match address {
                Some(address) => format!("{name}={address}"),
                None => format!("{name}=none"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::cache::MAX_ENTRIES;
    use super::*;

    fn name(text: &str) -> NetbiosName {
        NetbiosName::new(text, 0).unwrap()
    }

    const ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

    #[test]
    fn a_slow_lookup_ends_each_wait_at_its_deadline_and_counts_as_a_miss() {
        let t0 = Instant::now();
        let mut s = SystemNames::<u32>::default();
        let slow = name("SLOW");
        assert!(s.start(slow, t0), "asked alongside the NetBIOS query");
        assert!(!s.start(slow, t0), "once");
        let deadline = t0 + Duration::from_millis(1500);
        assert_eq!(
            s.settle(slow, 1, deadline, t0),
            Settled::Waiting { ask: false }
        );
        assert_eq!(s.next_deadline(), Some(deadline));
        assert!(s.expire(deadline - Duration::from_millis(1)).is_empty());
        assert_eq!(s.expire(deadline), [(slow, 1)]);
        // Still running: a miss meanwhile, so later writes do not wait.
        assert_eq!(
            s.settle(slow, 2, deadline + Duration::from_secs(1), deadline),
            Settled::Missing(2)
        );
        assert_eq!(s.entries(deadline), ["SLOW<00>=none"]);
        // The late answer replaces the miss.
        let later = deadline + Duration::from_secs(3);
        assert!(s.answered(slow, Some(ADDR), later).is_empty());
        assert_eq!(
            s.settle(slow, 3, later, later),
            Settled::Found(ADDR, 3),
            "found at once, even past the deadline"
        );
        assert_eq!(s.entries(later), ["SLOW<00>=192.0.2.7"]);
        assert!(s.cache.get(&slow, later + FOUND_TTL).is_none(), "a minute");
    }

    #[test]
    fn answers_wake_only_their_own_waiters_and_misses_are_cached() {
        let t0 = Instant::now();
        let mut s = SystemNames::<u32>::default();
        let later = t0 + Duration::from_secs(1);
        assert_eq!(
            s.settle(name("A"), 1, later, t0),
            Settled::Waiting { ask: true }
        );
        assert_eq!(
            s.settle(name("B"), 2, later, t0),
            Settled::Waiting { ask: true }
        );
        assert_eq!(
            s.settle(name("A"), 3, later, t0),
            Settled::Waiting { ask: false }
        );
        assert_eq!(s.answered(name("A"), None, t0), [1, 3]);
        assert_eq!(s.settle(name("A"), 4, later, t0), Settled::Missing(4));
        assert!(s.start(name("A"), t0 + MISSING_TTL), "asked again later");
        assert_eq!(s.answered(name("B"), Some(ADDR), t0), [2]);
        // Past its deadline with nothing known and nothing running: a miss.
        assert_eq!(s.settle(name("C"), 5, t0, t0), Settled::Missing(5));
    }

    #[test]
    fn lookups_and_waiters_are_bounded() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        let mut s = SystemNames::<u32>::default();
        for i in 0..MAX_LOOKUPS {
            assert!(s.start(name(&format!("N{i}")), t0));
        }
        assert!(!s.start(name("ONEMORE"), t0));
        assert_eq!(s.settle(name("ONEMORE"), 9, later, t0), Settled::Busy(9));
        for i in 0..MAX_WAITERS as u32 {
            let w = s.settle(name("N0"), i, later, t0);
            assert_eq!(w, Settled::Waiting { ask: false });
        }
        assert_eq!(s.settle(name("N1"), 0, later, t0), Settled::Busy(0));
        for i in 0..=MAX_ENTRIES {
            s.answered(name(&format!("C{i}")), None, t0);
        }
        assert_eq!(s.cache.len(), MAX_ENTRIES);
    }
}
