//! Who holds what: every name (directory or slot), open handle, parked
//! read, poll waiter and queued message is charged, at a fixed cost per
//! kind, to the user who caused it and to the mount as a whole.
//!
//! The mount-wide ceilings (`-o max_entries`, `-o max_memory`) keep the
//! daemon alive; the per-user shares (`-o user_entries`, `-o user_memory`)
//! keep one local user from starving the others, as the kernel's mqueue
//! does with `queues_max` and `RLIMIT_MSGQUEUE`. Root and the mount's
//! owner are exempt from the shares (mqueue exempts CAP_SYS_RESOURCE), not
//! from the ceilings: those protect the daemon itself.
//!
//! A user's subordinate uids (`/etc/subuid`, what rootless containers run
//! as) are that user for the shares: one user's containers cannot spread
//! over 65536 uids to get 65536 shares ([`SubordinateIds`]).
//!
//! The costs are the daemon's resident-set growth per entry, measured with
//! `scripts/entry-costs.py` (docs/limits.md) and rounded up, so that the
//! charge covers what an entry takes (one exception: the payload pages an
//! io_uring ring entry kept from an earlier large message, see
//! [`PARKED_READ_COST`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::SlotError;
use super::memory::{Budget, message_cost};

/// A directory: its node, its children map and its entry in its parent's
/// (measured 400–426 B with 9-byte names), beyond the bytes of its name.
pub const DIRECTORY_COST: u64 = 512;
/// A slot: node, queue and lock (measured 1,318–1,376 B with 10-byte
/// names, its server handle included), beyond its name and its handle.
pub const SLOT_COST: u64 = 1280;
/// What a name's bytes cost on top: it is stored three times (spelling,
/// case-folded key, and the key again in its parent's map).
pub const NAME_COPIES: u64 = 3;
/// A node of the `.net` tree: target, directory or endpoint (measured
/// 455 B with 14-byte names: 20,000 `mkdir`s under `.net/SUE`, release
/// build), beyond the bytes of its name.
pub const NET_NAME_COST: u64 = 512;
/// One open handle on a slot (measured 168 B).
pub const HANDLE_COST: u64 = 192;
/// One read parked in a slot, with what the transport holds for it. On
/// classic /dev/fuse that is little (measured 0–120 B); on
/// FUSE-over-io_uring a parked read holds a ring entry: a heap header of
/// about 400 B plus every payload page earlier requests through that entry
/// touched (measured 760 B cold, 1,935 B when each read first carried a
/// 1000-byte message, 2.7 kB in the storm test). One fixed cost for both
/// transports: the entry's header and one payload page, 4.5 kB. An entry
/// that once carried a message larger than a page keeps more, up to the
/// largest message; the transport bounds its entries.
pub const PARKED_READ_COST: u64 = 4608;
/// One poll waiter kept in a slot (measured 0–32 B: a few bytes in a
/// vector that grows in steps).
pub const POLL_WAITER_COST: u64 = 48;

/// Something one account holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    /// A directory whose name is this many bytes long.
    Directory(usize),
    /// A slot whose name is this many bytes long.
    Slot(usize),
    /// A `.net` node whose name is this many bytes long.
    NetName(usize),
    Handle,
    ParkedRead,
    PollWaiter,
    /// A queued message of this many payload bytes.
    Message(usize),
}

impl Charge {
    /// Bytes charged against the memory ceiling and share.
    pub fn bytes(self) -> u64 {
        match self {
            Charge::Directory(name) => DIRECTORY_COST + NAME_COPIES * name as u64,
            Charge::Slot(name) => SLOT_COST + NAME_COPIES * name as u64,
            Charge::NetName(name) => NET_NAME_COST + NAME_COPIES * name as u64,
            Charge::Handle => HANDLE_COST,
            Charge::ParkedRead => PARKED_READ_COST,
            Charge::PollWaiter => POLL_WAITER_COST,
            Charge::Message(len) => message_cost(len),
        }
    }

    /// Entries charged against `max_entries` and `user_entries`: names only.
    pub fn entries(self) -> u64 {
        match self {
            Charge::Directory(_) | Charge::Slot(_) | Charge::NetName(_) => 1,
            _ => 0,
        }
    }

    /// What a refusal is: no space for a name (ENOSPC), or no buffer
    /// space for everything else (ENOBUFS).
    fn refusal(self) -> SlotError {
        match self.entries() {
            0 => SlotError::OutOfMemory,
            _ => SlotError::NoSpace,
        }
    }
}

/// The ceilings and shares one mount enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ceilings {
    pub max_memory: u64,
    pub max_entries: u64,
    pub user_memory: u64,
    pub user_entries: u64,
}

/// The four limits, for counting which one refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `-o max_entries`.
    Entries,
    /// `-o user_entries`.
    UserEntries,
    /// `-o max_memory`.
    Memory,
    /// `-o user_memory`.
    UserMemory,
}

impl Limit {
    pub const ALL: [Limit; 4] = [
        Limit::Entries,
        Limit::UserEntries,
        Limit::Memory,
        Limit::UserMemory,
    ];

    /// Its name in `status` and in the root's attributes.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Entries => "max_entries",
            Limit::UserEntries => "user_entries",
            Limit::Memory => "max_memory",
            Limit::UserMemory => "user_memory",
        }
    }
}

/// Subordinate uids, by the user they were given to. A rootless container
/// runs its processes as host uids from its user's range (65536 of them by
/// default), which the daemon sees as so many users: each would have a
/// share of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubordinateIds {
    /// (first, count, owner), sorted by first, none overlapping another.
    ranges: Vec<(u32, u32, u32)>,
}

impl SubordinateIds {
    /// The ranges in a subuid file's `text`. A user is a name, which
    /// `uid_of` resolves, or a uid in digits (as newuidmap takes it).
    /// Lines that do not parse or name no known user are left out, and so
    /// is a range overlapping one that starts lower.
    pub fn parse(text: &str, uid_of: impl Fn(&str) -> Option<u32>) -> SubordinateIds {
        let mut ranges: Vec<(u32, u32, u32)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.trim().split(':');
                let (user, first, count) = (fields.next()?, fields.next()?, fields.next()?);
                let (first, count) = (first.parse().ok()?, count.parse::<u32>().ok()?);
                let owner = user.parse().ok().or_else(|| uid_of(user))?;
                (fields.next().is_none() && count > 0).then_some((first, count, owner))
            })
            .collect();
        ranges.sort_unstable();
        let mut end = 0u64;
        ranges.retain(|&(first, count, _)| {
            let keep = u64::from(first) >= end;
            if keep {
                end = u64::from(first) + u64::from(count);
            }
            keep
        });
        SubordinateIds { ranges }
    }

    /// The user `uid` was given to, and the first uid of its range.
    pub fn owner_of(&self, uid: u32) -> Option<(u32, u32)> {
        let at = self.ranges.partition_point(|&(first, _, _)| first <= uid);
        let &(first, count, owner) = self.ranges.get(at.checked_sub(1)?)?;
        (u64::from(uid) < u64::from(first) + u64::from(count)).then_some((owner, first))
    }
}

/// What one user holds. Shared (`Arc`) by every node, handle and message
/// it pays for, so that giving back needs no lookup.
#[derive(Debug)]
pub struct Account {
    uid: u32,
    memory: Budget,
    entries: Budget,
}

impl Account {
    /// The user this account belongs to.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Bytes this user holds now.
    pub fn memory(&self) -> u64 {
        self.memory.used()
    }

    /// Names this user holds now.
    pub fn entries(&self) -> u64 {
        self.entries.used()
    }
}

/// Every account of one mount, and the mount-wide totals.
#[derive(Debug)]
pub struct Accounts {
    ceilings: Ceilings,
    /// Users the shares do not apply to.
    exempt: Vec<u32>,
    /// Uids charged to another account: see [`Accounts::payer_of`].
    subordinates: SubordinateIds,
    memory: Budget,
    entries: Budget,
    /// One account per user that ever held something: bounded by the
    /// number of uids the kernel hands us.
    users: Mutex<HashMap<u32, Arc<Account>>>,
    refused: [AtomicU64; 4],
}

impl Accounts {
    /// The accounts of a mount with these ceilings; the shares do not
    /// apply to the users in `exempt`.
    pub fn new(ceilings: Ceilings, exempt: &[u32]) -> Accounts {
        Accounts {
            ceilings,
            exempt: exempt.to_vec(),
            subordinates: SubordinateIds::default(),
            memory: Budget::new(ceilings.max_memory),
            entries: Budget::new(ceilings.max_entries),
            users: Mutex::new(HashMap::new()),
            refused: Default::default(),
        }
    }

    /// Charges the uids in `ids` to the users they were given to.
    pub fn with_subordinates(self, ids: SubordinateIds) -> Accounts {
        Accounts {
            subordinates: ids,
            ..self
        }
    }

    /// No ceilings at all, for a slot that belongs to no mount.
    pub fn unlimited() -> Accounts {
        Accounts::new(
            Ceilings {
                max_memory: u64::MAX,
                max_entries: u64::MAX,
                user_memory: u64::MAX,
                user_entries: u64::MAX,
            },
            &[],
        )
    }

    /// The ceilings and shares.
    pub fn ceilings(&self) -> Ceilings {
        self.ceilings
    }

    /// The account `uid` draws on, opened on first use.
    pub fn account(&self, uid: u32) -> Arc<Account> {
        let uid = self.payer_of(uid);
        let exempt = self.exempt.contains(&uid);
        let share = |limit| if exempt { u64::MAX } else { limit };
        let mut users = self.users.lock();
        let account = users.entry(uid).or_insert_with(|| {
            Arc::new(Account {
                uid,
                memory: Budget::new(share(self.ceilings.user_memory)),
                entries: Budget::new(share(self.ceilings.user_entries)),
            })
        });
        Arc::clone(account)
    }

    /// Who pays for `uid`: the user its subordinate range was given to. A
    /// range given to an exempt user (root, the mount's owner) pays as one
    /// user of its own, keyed by its first uid: a container run from it is
    /// not exempt with its owner. An exempt uid always pays for itself.
    fn payer_of(&self, uid: u32) -> u32 {
        if self.exempt.contains(&uid) {
            return uid;
        }
        match self.subordinates.owner_of(uid) {
            Some((owner, _)) if !self.exempt.contains(&owner) => owner,
            Some((_, first)) => first,
            None => uid,
        }
    }

    /// Charges `charge` to `payer` and to the mount, or refuses it (counted
    /// under the limit that refused) and charges nothing.
    pub fn take(&self, payer: &Account, charge: Charge) -> Result<(), SlotError> {
        let (bytes, entries) = (charge.bytes(), charge.entries());
        let steps = [
            (&payer.entries, entries, Limit::UserEntries),
            (&payer.memory, bytes, Limit::UserMemory),
            (&self.entries, entries, Limit::Entries),
            (&self.memory, bytes, Limit::Memory),
        ];
        for (done, (budget, amount, limit)) in steps.iter().enumerate() {
            // Most charges are not names: no atomic work for their zero.
            if *amount != 0 && !budget.try_take(*amount) {
                for (budget, amount, _) in &steps[..done] {
                    budget.give_back(*amount);
                }
                self.refused[*limit as usize].fetch_add(1, Ordering::Relaxed);
                return Err(charge.refusal());
            }
        }
        Ok(())
    }

    /// Gives back `count` charges of `charge` taken earlier by `payer`.
    pub fn give_back(&self, payer: &Account, charge: Charge, count: u64) {
        if count == 0 {
            return;
        }
        let (bytes, entries) = (charge.bytes() * count, charge.entries() * count);
        if entries != 0 {
            payer.entries.give_back(entries);
            self.entries.give_back(entries);
        }
        payer.memory.give_back(bytes);
        self.memory.give_back(bytes);
    }

    /// Bytes the whole mount holds, under `max_memory`.
    pub fn memory(&self) -> &Budget {
        &self.memory
    }

    /// Names the whole mount holds, under `max_entries`.
    pub fn entries(&self) -> &Budget {
        &self.entries
    }

    /// How often `limit` refused something.
    pub fn refused(&self, limit: Limit) -> u64 {
        self.refused[limit as usize].load(Ordering::Relaxed)
    }

    /// Users with an account.
    pub fn users(&self) -> usize {
        self.users.lock().len()
    }

    /// The figures `status` shows, by name: what is held, the ceilings and
    /// shares, and the refusals by limit (`refused_<limit>`).
    pub fn figures(&self) -> Vec<(String, u64)> {
        let c = self.ceilings;
        let mut out = vec![
            ("entries".to_owned(), self.entries.used()),
            ("max_entries".to_owned(), c.max_entries),
            ("user_entries".to_owned(), c.user_entries),
            ("memory".to_owned(), self.memory.used()),
            ("max_memory".to_owned(), c.max_memory),
            ("user_memory".to_owned(), c.user_memory),
            ("users".to_owned(), self.users() as u64),
        ];
        out.extend(
            Limit::ALL
                .iter()
                .map(|&l| (format!("refused_{}", l.name()), self.refused(l))),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(user_entries: u64, user_memory: u64) -> Accounts {
        Accounts::new(
            Ceilings {
                max_memory: 10_000,
                max_entries: 5,
                user_memory,
                user_entries,
            },
            &[0],
        )
    }

    #[test]
    fn a_refusal_charges_nothing_and_is_counted_under_its_limit() {
        let a = accounts(2, u64::MAX);
        let alice = a.account(1000);
        a.take(&alice, Charge::Directory(3)).unwrap();
        a.take(&alice, Charge::Slot(3)).unwrap();
        let held = (alice.memory(), a.memory().used());
        assert_eq!(
            a.take(&alice, Charge::Directory(3)),
            Err(SlotError::NoSpace)
        );
        assert_eq!((alice.memory(), a.memory().used()), held);
        assert_eq!(alice.entries(), 2);
        assert_eq!(a.refused(Limit::UserEntries), 1);
        // Handles are not names: they are refused only for memory.
        a.take(&alice, Charge::Handle).unwrap();
        a.give_back(&alice, Charge::Handle, 1);
        a.give_back(&alice, Charge::Slot(3), 1);
        a.give_back(&alice, Charge::Directory(3), 1);
        assert_eq!((alice.memory(), alice.entries()), (0, 0));
        assert_eq!((a.memory().used(), a.entries().used()), (0, 0));
    }

    #[test]
    fn exempt_users_meet_only_the_mount_ceilings() {
        let a = accounts(1, 100);
        let root = a.account(0);
        for _ in 0..5 {
            a.take(&root, Charge::Directory(1)).unwrap();
        }
        assert_eq!(a.take(&root, Charge::Directory(1)), Err(SlotError::NoSpace));
        assert_eq!(a.refused(Limit::Entries), 1);
        assert_eq!(a.refused(Limit::UserEntries), 0);
        assert_eq!(
            a.take(&root, Charge::Message(20_000)),
            Err(SlotError::OutOfMemory)
        );
        assert_eq!(a.refused(Limit::Memory), 1);
    }

    #[test]
    fn the_memory_share_refuses_messages_before_the_mount_ceiling() {
        let a = accounts(10, message_cost(10));
        let bob = a.account(1001);
        a.take(&bob, Charge::Message(10)).unwrap();
        assert_eq!(
            a.take(&bob, Charge::Message(1)),
            Err(SlotError::OutOfMemory)
        );
        assert_eq!(a.refused(Limit::UserMemory), 1);
        // Another user still has all of theirs.
        let carol = a.account(1002);
        a.take(&carol, Charge::Message(10)).unwrap();
        assert!(Arc::ptr_eq(&a.account(1001), &bob));
        assert_eq!(a.users(), 2);
    }

    /// alice is 1000 and bob 1001; names nobody has are left out.
    fn subuids(text: &str) -> SubordinateIds {
        SubordinateIds::parse(text, |name| match name {
            "alice" => Some(1000),
            "bob" => Some(1001),
            _ => None,
        })
    }

    #[test]
    fn subordinate_ranges_belong_to_their_user() {
        let ids = subuids(
            "alice:100000:65536\n\
             bob:165536:65536\n\
             1002:300000:10\n\
             ghost:400000:65536\n\
             # not a range\n\
             bob:500000:x\n\
             alice:600000:0\n\
             bob:100500:10\n\
             alice:700000:5:extra\n",
        );
        assert_eq!(ids.owner_of(99_999), None);
        assert_eq!(ids.owner_of(100_000), Some((1000, 100_000)));
        assert_eq!(ids.owner_of(165_535), Some((1000, 100_000)));
        assert_eq!(ids.owner_of(165_536), Some((1001, 165_536)));
        assert_eq!(ids.owner_of(231_071), Some((1001, 165_536)));
        assert_eq!(ids.owner_of(231_072), None);
        // A uid in digits is that uid; an unknown name, a bad line, an
        // empty range and extra fields give nothing.
        assert_eq!(ids.owner_of(300_009), Some((1002, 300_000)));
        for uid in [300_010, 400_000, 500_000, 600_000, 700_000] {
            assert_eq!(ids.owner_of(uid), None, "{uid}");
        }
        // Overlapping the lower range: left out, the lower one counts.
        assert_eq!(ids.owner_of(100_505), Some((1000, 100_000)));
        // The top of the uid space does not wrap.
        let top = subuids("alice:4294967290:100\n");
        assert_eq!(top.owner_of(u32::MAX), Some((1000, 4_294_967_290)));
        assert_eq!(top.owner_of(0), None);
        assert_eq!(subuids(""), SubordinateIds::default());
    }

    #[test]
    fn a_users_subordinate_uids_share_its_account() {
        let ids = subuids("alice:100000:65536\n0:200000:65536\nbob:0:2\n");
        let a = accounts(3, u64::MAX).with_subordinates(ids);
        let alice = a.account(1000);
        // alice and two uids of her containers: one share of three names.
        a.take(&alice, Charge::Directory(1)).unwrap();
        let container = a.account(100_000);
        assert!(Arc::ptr_eq(&container, &alice));
        a.take(&container, Charge::Directory(1)).unwrap();
        a.take(&a.account(165_535), Charge::Directory(1)).unwrap();
        assert_eq!(
            a.take(&a.account(123_456), Charge::Directory(1)),
            Err(SlotError::NoSpace)
        );
        assert_eq!(alice.entries(), 3);
        // A uid outside every range has its own share.
        a.take(&a.account(165_536), Charge::Directory(1)).unwrap();
        // Root itself stays exempt, even inside a range (bob's 0..2).
        assert_eq!(a.account(0).uid(), 0);
        assert_eq!(a.account(1).uid(), 1001);
        assert_eq!(a.users(), 4);
    }

    #[test]
    fn an_exempt_users_subordinate_uids_pay_as_one_user_of_their_own() {
        let a = accounts(2, u64::MAX).with_subordinates(subuids("0:200000:65536\n"));
        let range = a.account(200_001);
        assert_eq!(range.uid(), 200_000);
        a.take(&range, Charge::Directory(1)).unwrap();
        a.take(&a.account(265_535), Charge::Directory(1)).unwrap();
        assert_eq!(
            a.take(&a.account(200_000), Charge::Directory(1)),
            Err(SlotError::NoSpace)
        );
        assert_eq!(a.refused(Limit::UserEntries), 1);
        // Root, who was given the range, still meets only the ceilings.
        a.take(&a.account(0), Charge::Directory(1)).unwrap();
        a.take(&a.account(0), Charge::Directory(1)).unwrap();
        assert_eq!(a.account(0).entries(), 2);
    }
}
