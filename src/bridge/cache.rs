//! What was learnt about names, each entry until its time runs out, in a
//! table of bounded size: the name service's answers and the system
//! resolver's both live in one of these.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::wire::NetbiosName;

/// Entries kept at most: the network and local writers decide what is
/// looked up, so what is remembered must be bounded.
pub const MAX_ENTRIES: usize = 1024;

/// Values by name, each with the instant it expires.
pub struct NameCache<V> {
    entries: HashMap<NetbiosName, (V, Instant)>,
}

impl<V> Default for NameCache<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<V: Copy> NameCache<V> {
    /// What is known of `name`, if its time has not run out.
    pub fn get(&self, name: &NetbiosName, now: Instant) -> Option<V> {
        self.entries
            .get(name)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| *value)
    }

    /// Keeps `value` for `name` for `ttl` (nothing, for a zero `ttl`). When
    /// full, expired entries go first, then the one that would expire
    /// soonest.
    pub fn insert(&mut self, name: NetbiosName, value: V, ttl: Duration, now: Instant) {
        if ttl.is_zero() {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&name) {
            self.entries.retain(|_, (_, expires)| *expires > now);
            if self.entries.len() >= MAX_ENTRIES
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(name, _)| *name)
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(name, (value, now + ttl));
    }

    /// Forgets `name` (it may have moved).
    pub fn remove(&mut self, name: &NetbiosName) {
        self.entries.remove(name);
    }

    /// The live entries, soonest to expire first, for `status`.
    pub fn live(&self, now: Instant) -> Vec<(NetbiosName, V)> {
        let mut live: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, (_, expires))| *expires > now)
            .map(|(name, (value, expires))| (*name, *value, *expires))
            .collect();
        live.sort_by_key(|(_, _, expires)| *expires);
        live.into_iter()
            .map(|(name, value, _)| (name, value))
            .collect()
    }

    /// How many entries are held, live or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
