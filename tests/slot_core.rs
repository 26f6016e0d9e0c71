//! The pure core (`mailslotfs::slot`) through its public API, without
//! mounting: one slot's queue (`Slot`) and the namespace (`Table`).
//! Time is a fake clock; parked readers and pollers are plain `u32` ids.

mod common_core;

use std::time::Duration;

use common_core::*;
use mailslotfs::slot::SlotError;
use mailslotfs::slot::accounts::{Charge, Limit};
use mailslotfs::slot::limits::{InfoAttr, Limits, ReadTimeout, SlotInfo};
use mailslotfs::slot::queue::{ReadOutcome, Readiness, Slot};
use mailslotfs::slot::table::{Kind, ROOT, Role, SlotDefaults, Table};

// ---------------------------------------------------------------- helpers

fn slot_with(limits: Limits, keep_empty: bool, clock: &Clock) -> Slot<P> {
    Slot::new(limits, keep_empty, CREATOR_PID, clock.now())
}

fn default_slot(clock: &Clock) -> Slot<P> {
    slot_with(Limits::default(), false, clock)
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

/// Writes `data` with no signals pending and expects success.
fn put(slot: &mut Slot<P>, data: &[u8], clock: &Clock) {
    slot.write(data, clock.now(), calm)
        .unwrap_or_else(|e| panic!("write of {} bytes: {e:?}", data.len()));
}

/// A nonblocking read of one message with a big buffer.
fn take(slot: &mut Slot<P>, clock: &Clock) -> Result<Vec<u8>, SlotError> {
    answer(slot.read(0, u32::MAX, true, clock.now(), None)).map(|b| b.to_vec())
}

/// Registers poll waiter `poller`, paid for by the slot's owner.
fn watch<K: mailslotfs::slot::Parking<Poller = u32>>(slot: &mut Slot<K>, poller: u32) {
    let owner = slot.owner();
    slot.watch(poller, &owner)
        .expect("no ceiling refuses a poll waiter here");
}

fn info_of(slot: &Slot<P>) -> (Option<u32>, u32, u64) {
    let i = slot.info();
    (i.next_size, i.message_count, i.queued_bytes)
}

fn defaults() -> SlotDefaults {
    SlotDefaults {
        limits: Limits::default(),
        keep_empty: false,
        max_memory: u64::MAX,
        max_entries: u64::MAX,
        user_entries: u64::MAX,
        user_memory: u64::MAX,
    }
}

fn table(clock: &Clock) -> Table<P> {
    table_with(defaults(), clock)
}

/// Creates a slot `name` in the root as the server; returns (ino, fh).
fn serve(t: &Table<P>, name: &str, clock: &Clock) -> (u64, u64) {
    let (attr, fh, role) = t
        .create(ROOT, name.as_bytes(), true, true, user(1000), clock.now())
        .unwrap();
    assert_eq!(role, Role::Server);
    (attr.ino, fh)
}

// ---------------------------------------------------------------- messages

#[test]
fn messages_come_out_whole_one_per_read_in_fifo_order() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    let msgs: [&[u8]; 4] = [b"first", b"2", b"third message\n", &[0, 255, 0, 7]];
    for m in msgs {
        put(&mut slot, m, &clock);
    }
    for m in msgs {
        assert_eq!(take(&mut slot, &clock).unwrap(), m);
    }
    assert_eq!(take(&mut slot, &clock), Err(SlotError::WouldBlock));
}

#[test]
fn info_tracks_next_size_count_bytes_and_totals() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    assert_eq!(
        slot.info(),
        SlotInfo {
            limits: Limits::default(),
            next_size: None,
            message_count: 0,
            queued_bytes: 0,
            owner_pid: CREATOR_PID,
            received: 0,
            read: 0,
            dropped: 0,
            waiting_readers: 0,
        }
    );
    assert_eq!(slot.next_size(), 0);
    put(&mut slot, &[1; 10], &clock);
    put(&mut slot, &[2; 3], &clock);
    assert_eq!(info_of(&slot), (Some(10), 2, 13));
    assert_eq!(slot.next_size(), 10);
    take(&mut slot, &clock).unwrap();
    assert_eq!(info_of(&slot), (Some(3), 1, 3));
    take(&mut slot, &clock).unwrap();
    assert_eq!(info_of(&slot), (None, 0, 0));
    let i = slot.info();
    assert_eq!((i.received, i.read, i.dropped), (2, 2, 0));
}

#[test]
fn message_above_max_size_is_refused_and_nothing_is_queued() {
    let clock = Clock::new();
    let mut slot = slot_with(limits(|l| l.max_message_size = 100), false, &clock);
    assert_eq!(
        slot.write(&[7; 101], clock.now(), calm).err(),
        Some(SlotError::MessageTooBig)
    );
    assert_eq!(info_of(&slot), (None, 0, 0));
    assert_eq!(slot.info().received, 0);
    // Exactly the max size is fine.
    put(&mut slot, &[7; 100], &clock);
    assert_eq!(take(&mut slot, &clock).unwrap(), vec![7; 100]);
}

#[test]
fn default_max_message_size_is_64_kib() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    put(&mut slot, &vec![1; 64 * 1024], &clock);
    assert_eq!(
        slot.write(&vec![1; 64 * 1024 + 1], clock.now(), calm).err(),
        Some(SlotError::MessageTooBig)
    );
}

#[test]
fn small_read_buffer_fails_and_leaves_the_message_at_the_head() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    put(&mut slot, b"0123456789", &clock);
    put(&mut slot, b"x", &clock);
    let (who, res, _) = ready(slot.read(42, 9, true, clock.now(), None));
    assert_eq!((who, res), (42, Err(SlotError::BufferTooSmall)));
    assert_eq!(info_of(&slot), (Some(10), 2, 11));
    // Also when the reader would otherwise wait.
    assert_eq!(
        answer(slot.read(1, 0, false, clock.now(), None)),
        Err(SlotError::BufferTooSmall)
    );
    // Exactly the message size is big enough.
    assert_eq!(
        answer(slot.read(1, 10, true, clock.now(), None)).unwrap()[..],
        b"0123456789"[..]
    );
    assert_eq!(take(&mut slot, &clock).unwrap(), b"x");
    assert_eq!(slot.info().read, 2);
}

#[test]
fn message_quota_refuses_at_once_and_keeps_the_queue() {
    let clock = Clock::new();
    let mut slot = slot_with(limits(|l| l.quota_messages = 2), false, &clock);
    put(&mut slot, b"a", &clock);
    put(&mut slot, b"b", &clock);
    for _ in 0..3 {
        assert_eq!(
            slot.write(b"c", clock.now(), calm).err(),
            Some(SlotError::QuotaFull)
        );
    }
    assert_eq!(info_of(&slot), (Some(1), 2, 2));
    assert_eq!(slot.info().dropped, 3);
    assert_eq!(slot.info().received, 2);
    // A read frees room.
    assert_eq!(take(&mut slot, &clock).unwrap(), b"a");
    put(&mut slot, b"d", &clock);
    assert_eq!(take(&mut slot, &clock).unwrap(), b"b");
    assert_eq!(take(&mut slot, &clock).unwrap(), b"d");
}

#[test]
fn byte_quota_refuses_at_once_and_keeps_the_queue() {
    let clock = Clock::new();
    let mut slot = slot_with(
        limits(|l| {
            l.max_message_size = 10;
            l.quota_bytes = 25;
        }),
        false,
        &clock,
    );
    put(&mut slot, &[1; 10], &clock);
    put(&mut slot, &[2; 10], &clock);
    assert_eq!(
        slot.write(&[3; 6], clock.now(), calm).err(),
        Some(SlotError::QuotaFull)
    );
    // Exactly filling the quota is allowed.
    put(&mut slot, &[3; 5], &clock);
    assert_eq!(
        slot.write(&[4; 1], clock.now(), calm).err(),
        Some(SlotError::QuotaFull)
    );
    assert_eq!(info_of(&slot), (Some(10), 3, 25));
    assert_eq!(slot.info().dropped, 2);
    take(&mut slot, &clock).unwrap();
    put(&mut slot, &[4; 10], &clock);
    assert_eq!(take(&mut slot, &clock).unwrap(), vec![2; 10]);
    assert_eq!(take(&mut slot, &clock).unwrap(), vec![3; 5]);
    assert_eq!(take(&mut slot, &clock).unwrap(), vec![4; 10]);
}

#[test]
fn message_too_big_is_not_counted_as_dropped() {
    // `dropped` counts quota refusals and discarded empties only.
    let clock = Clock::new();
    let mut slot = slot_with(limits(|l| l.max_message_size = 4), false, &clock);
    let _ = slot.write(b"12345", clock.now(), calm);
    assert_eq!(slot.info().dropped, 0);
}

#[test]
fn write_and_read_set_mtime_and_atime() {
    let mut clock = Clock::new();
    let created = clock.now().wall;
    let mut slot = default_slot(&clock);
    assert_eq!((slot.modified, slot.accessed), (created, created));
    clock.advance(ms(1000));
    put(&mut slot, b"m", &clock);
    assert_eq!(slot.modified, clock.now().wall);
    assert_eq!(slot.accessed, created);
    clock.advance(ms(1000));
    take(&mut slot, &clock).unwrap();
    assert_eq!(slot.accessed, clock.now().wall);
}

// ---------------------------------------------------------------- empty queue, waiting

#[test]
fn empty_queue_nonblocking_read_would_block() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    let (who, res, _) = ready(slot.read(5, 100, true, clock.now(), None));
    assert_eq!((who, res), (5, Err(SlotError::WouldBlock)));
    assert_eq!(slot.parked_readers(), 0);
}

#[test]
fn empty_queue_with_zero_timeout_would_block() {
    let clock = Clock::new();
    let l = limits(|l| l.read_timeout = ReadTimeout::After(Duration::ZERO));
    let mut slot = slot_with(l, false, &clock);
    assert_eq!(
        answer(slot.read(5, 100, false, clock.now(), None)),
        Err(SlotError::WouldBlock)
    );
    assert_eq!(slot.parked_readers(), 0);
}

#[test]
fn empty_queue_with_timeout_parks_then_times_out_exactly_at_the_deadline() {
    let clock = Clock::new();
    let l = limits(|l| l.read_timeout = ReadTimeout::After(ms(250)));
    let mut slot = slot_with(l, false, &clock);
    assert!(is_parked(&slot.read(9, 100, false, clock.now(), None)));
    assert_eq!(slot.parked_readers(), 1);
    assert!(slot.expire(clock.after(ms(249)), calm).readers.is_empty());
    assert_eq!(slot.parked_readers(), 1);
    let w = slot.expire(clock.after(ms(250)), calm);
    assert_eq!(woken(&w), vec![(9, Err(SlotError::TimedOut))]);
    assert_eq!(slot.parked_readers(), 0);
}

#[test]
fn forever_timeout_parks_and_never_expires_by_time() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    assert_eq!(slot.info().limits.read_timeout, ReadTimeout::Forever);
    assert!(is_parked(&slot.read(1, 100, false, clock.now(), None)));
    let far = clock.after(Duration::from_secs(100 * 365 * 24 * 3600));
    assert!(slot.expire(far, calm).readers.is_empty());
    assert_eq!(slot.parked_readers(), 1);
    // It still gets the next message.
    let w = slot.write(b"late", far, calm).unwrap();
    assert_eq!(woken(&w), vec![(1, Ok(b"late".to_vec()))]);
}

#[test]
fn park_cap_bounds_a_wait_but_never_beats_the_slots_own_timeout() {
    // (slot timeout, kernel cap, when the reader is answered, with what)
    let cases = [
        (Some(1000), 100, 100, SlotError::Interrupted),
        (Some(100), 1000, 100, SlotError::TimedOut),
        (Some(100), 100, 100, SlotError::TimedOut),
        (None, 100, 100, SlotError::Interrupted),
    ];
    for (timeout, cap, due, error) in cases {
        let clock = Clock::new();
        let l = limits(|l| {
            l.read_timeout = timeout.map_or(ReadTimeout::Forever, |t| ReadTimeout::After(ms(t)))
        });
        let mut slot = slot_with(l, false, &clock);
        let parked = slot.read(3, 10, false, clock.now(), Some(ms(cap)));
        assert!(is_parked(&parked), "{timeout:?} {cap}");
        let early = slot.expire(clock.after(ms(due - 1)), calm);
        assert!(early.readers.is_empty(), "{timeout:?} {cap}: early");
        let w = slot.expire(clock.after(ms(due)), calm);
        assert_eq!(woken(&w), vec![(3, Err(error))], "{timeout:?} {cap}");
    }
}

#[test]
fn parked_readers_are_served_in_arrival_order_one_message_each() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    for r in [10, 11, 12] {
        assert!(is_parked(&slot.read(r, 100, false, clock.now(), None)));
    }
    for (r, m) in [(10, b"a"), (11, b"b"), (12, b"c")] {
        let w = slot.write(m, clock.now(), calm).unwrap();
        assert_eq!(woken(&w), vec![(r, Ok(m.to_vec()))]);
    }
    // Handed over directly: nothing queued, but counted.
    let i = slot.info();
    assert_eq!((i.message_count, i.received, i.read), (0, 3, 3));
    assert_eq!(slot.parked_readers(), 0);
    // The next message waits in the queue.
    assert!(
        slot.write(b"d", clock.now(), calm)
            .unwrap()
            .readers
            .is_empty()
    );
    assert_eq!(take(&mut slot, &clock).unwrap(), b"d");
}

#[test]
fn parked_reader_with_small_buffer_fails_and_the_message_goes_to_the_next() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    assert!(is_parked(&slot.read(1, 3, false, clock.now(), None)));
    assert!(is_parked(&slot.read(2, 100, false, clock.now(), None)));
    let w = slot.write(b"hello", clock.now(), calm).unwrap();
    assert_eq!(
        woken(&w),
        vec![
            (1, Err(SlotError::BufferTooSmall)),
            (2, Ok(b"hello".to_vec()))
        ]
    );
    assert_eq!(info_of(&slot), (None, 0, 0));
}

#[test]
fn parked_reader_with_small_buffer_fails_and_the_message_is_queued() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    assert!(is_parked(&slot.read(1, 3, false, clock.now(), None)));
    let w = slot.write(b"hello", clock.now(), calm).unwrap();
    assert_eq!(woken(&w), vec![(1, Err(SlotError::BufferTooSmall))]);
    assert_eq!(info_of(&slot), (Some(5), 1, 5));
    assert_eq!(take(&mut slot, &clock).unwrap(), b"hello");
}

#[test]
fn interrupted_parked_reader_never_takes_the_message() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    for r in [1, 2, 3] {
        assert!(is_parked(&slot.read(r, 100, false, clock.now(), None)));
    }
    // Readers 1 and 2 have a signal pending: the message goes to 3.
    let w = slot.write(b"m", clock.now(), |r| *r < 3).unwrap();
    assert_eq!(
        woken(&w),
        vec![
            (1, Err(SlotError::Interrupted)),
            (2, Err(SlotError::Interrupted)),
            (3, Ok(b"m".to_vec()))
        ]
    );
}

#[test]
fn interrupted_only_reader_leaves_the_message_queued() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    assert!(is_parked(&slot.read(1, 100, false, clock.now(), None)));
    let w = slot.write(b"keep me", clock.now(), |_| true).unwrap();
    assert_eq!(woken(&w), vec![(1, Err(SlotError::Interrupted))]);
    assert_eq!(take(&mut slot, &clock).unwrap(), b"keep me");
}

#[test]
fn expire_answers_interrupted_readers_and_keeps_the_others() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    for r in [1, 2, 3] {
        assert!(is_parked(&slot.read(r, 100, false, clock.now(), None)));
    }
    let w = slot.expire(clock.now(), |r| *r == 2);
    assert_eq!(woken(&w), vec![(2, Err(SlotError::Interrupted))]);
    assert_eq!(slot.parked_readers(), 2);
    // The others keep their order.
    let w = slot.write(b"x", clock.now(), calm).unwrap();
    assert_eq!(woken(&w), vec![(1, Ok(b"x".to_vec()))]);
    let w = slot.write(b"y", clock.now(), calm).unwrap();
    assert_eq!(woken(&w), vec![(3, Ok(b"y".to_vec()))]);
}

#[test]
fn expire_leaves_queued_messages_alone() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    put(&mut slot, b"a", &clock);
    put(&mut slot, b"b", &clock);
    let w = slot.expire(clock.after(Duration::from_secs(3600)), |_| true);
    assert!(w.readers.is_empty() && w.pollers.is_empty());
    assert_eq!(info_of(&slot), (Some(1), 2, 2));
}

// ---------------------------------------------------------------- zero-length

#[test]
fn zero_length_message_is_dropped_and_counted() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    assert!(is_parked(&slot.read(1, 100, false, clock.now(), None)));
    let w = slot.write(b"", clock.now(), calm).unwrap();
    assert!(
        w.readers.is_empty(),
        "an empty message must not wake a reader"
    );
    let i = slot.info();
    assert_eq!((i.message_count, i.received, i.dropped), (0, 0, 1));
    assert_eq!(slot.parked_readers(), 1);
}

#[test]
fn zero_length_message_is_kept_with_keep_empty() {
    let clock = Clock::new();
    let mut slot = slot_with(Limits::default(), true, &clock);
    put(&mut slot, b"", &clock);
    put(&mut slot, b"after", &clock);
    assert_eq!(info_of(&slot), (Some(0), 2, 5));
    assert_eq!(
        answer(slot.read(1, 0, true, clock.now(), None))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(take(&mut slot, &clock).unwrap(), b"after");
    // Handed straight to a parked reader too.
    assert!(is_parked(&slot.read(2, 0, false, clock.now(), None)));
    let w = slot.write(b"", clock.now(), calm).unwrap();
    assert_eq!(woken(&w), vec![(2, Ok(vec![]))]);
    assert_eq!(slot.info().dropped, 0);
}

// ---------------------------------------------------------------- poll

#[test]
fn poll_reports_readable_writable_and_hang_up() {
    let clock = Clock::new();
    let mut slot = slot_with(limits(|l| l.quota_messages = 1), false, &clock);
    let r = |readable, writable, hung_up| Readiness {
        readable,
        writable,
        hung_up,
    };
    assert_eq!(slot.readiness(), r(false, true, false));
    put(&mut slot, b"m", &clock);
    assert_eq!(slot.readiness(), r(true, false, false));
    take(&mut slot, &clock).unwrap();
    assert_eq!(slot.readiness(), r(false, true, false));
    slot.close();
    assert_eq!(slot.readiness(), r(false, false, true));
}

#[test]
fn poll_reports_hang_up_after_shut_down() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    put(&mut slot, b"m", &clock);
    slot.shut_down();
    let ready = slot.readiness();
    assert!(ready.hung_up);
    assert!(!ready.writable);
}

#[test]
fn poll_is_not_writable_when_the_byte_quota_is_exactly_used_up() {
    let clock = Clock::new();
    let mut slot = slot_with(
        limits(|l| {
            l.max_message_size = 10;
            l.quota_bytes = 10;
        }),
        false,
        &clock,
    );
    put(&mut slot, &[0; 10], &clock);
    assert_eq!(
        slot.write(b"x", clock.now(), calm).err(),
        Some(SlotError::QuotaFull)
    );
    assert!(
        !slot.readiness().writable,
        "a 1-byte write would be refused"
    );
}

#[test]
fn pollers_are_handed_back_by_the_next_write() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    watch(&mut slot, 7);
    watch(&mut slot, 8);
    let w = slot.write(b"m", clock.now(), calm).unwrap();
    assert_eq!(w.pollers, vec![7, 8]);
    // Handed back once only.
    let w = slot.write(b"n", clock.now(), calm).unwrap();
    assert!(w.pollers.is_empty());
}

/// A caller whose poll waiters can be the same kernel poll handle.
struct Dedup;

impl mailslotfs::slot::Parking for Dedup {
    type Reader = u32;
    type Poller = u32;
    fn same_poller(a: &u32, b: &u32) -> bool {
        a == b
    }
}

#[test]
fn polling_again_with_the_same_poller_keeps_one_entry() {
    let clock = Clock::new();
    let mut slot: Slot<Dedup> = Slot::new(Limits::default(), false, CREATOR_PID, clock.now());
    for _ in 0..1000 {
        watch(&mut slot, 7);
    }
    watch(&mut slot, 8);
    watch(&mut slot, 7);
    let w = slot.write(b"m", clock.now(), calm).unwrap();
    assert_eq!(w.pollers, vec![8, 7]);
}

#[test]
fn pollers_are_kept_apart_by_default() {
    // The default `same_poller` says no: every registration comes back.
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    watch(&mut slot, 7);
    watch(&mut slot, 7);
    assert_eq!(
        slot.write(b"m", clock.now(), calm).unwrap().pollers,
        vec![7, 7]
    );
}

#[test]
fn pollers_are_handed_back_by_the_next_read() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    put(&mut slot, b"m", &clock);
    watch(&mut slot, 7);
    let (_, res, w) = ready(slot.read(1, 100, true, clock.now(), None));
    assert!(res.is_ok());
    assert_eq!(w.pollers, vec![7]);
}

#[test]
fn pollers_are_handed_back_by_close_shut_down_and_set_limits() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    watch(&mut slot, 1);
    assert_eq!(
        slot.set_limits(limits(|l| l.quota_messages = 5)).pollers,
        vec![1]
    );
    assert_eq!(slot.info().limits.quota_messages, 5);
    watch(&mut slot, 2);
    assert_eq!(slot.close().pollers, vec![2]);

    let mut slot = default_slot(&clock);
    watch(&mut slot, 3);
    assert_eq!(slot.shut_down().pollers, vec![3]);
}

// ---------------------------------------------------------------- close / shut down

#[test]
fn close_answers_parked_readers_server_gone_and_refuses_writes() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    for r in [1, 2] {
        assert!(is_parked(&slot.read(r, 100, false, clock.now(), None)));
    }
    let w = slot.close();
    assert_eq!(
        woken(&w),
        vec![
            (1, Err(SlotError::ServerGone)),
            (2, Err(SlotError::ServerGone))
        ]
    );
    assert_eq!(
        slot.write(b"x", clock.now(), calm).err(),
        Some(SlotError::ServerGone)
    );
    // Even an empty one.
    assert_eq!(
        slot.write(b"", clock.now(), calm).err(),
        Some(SlotError::ServerGone)
    );
}

#[test]
fn close_discards_unread_messages() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    put(&mut slot, b"a", &clock);
    put(&mut slot, b"b", &clock);
    slot.close();
    assert_eq!(info_of(&slot), (None, 0, 0));
}

#[test]
fn shut_down_gives_parked_and_later_readers_end_of_file() {
    let clock = Clock::new();
    let mut slot = default_slot(&clock);
    assert!(is_parked(&slot.read(1, 100, false, clock.now(), None)));
    put(&mut slot, b"a", &clock); // goes to reader 1
    assert!(is_parked(&slot.read(2, 100, false, clock.now(), None)));
    let w = slot.shut_down();
    assert_eq!(woken(&w), vec![(2, Ok(vec![]))]);
    assert_eq!(
        answer(slot.read(3, 100, false, clock.now(), None)),
        Ok(Box::default())
    );
    assert_eq!(
        answer(slot.read(4, 100, true, clock.now(), None)),
        Ok(Box::default())
    );
    assert_eq!(
        slot.write(b"x", clock.now(), calm).err(),
        Some(SlotError::ServerGone)
    );
}

// ---------------------------------------------------------------- table: roles

#[test]
fn create_with_read_access_makes_the_server_handle() {
    let clock = Clock::new();
    let t = table(&clock);
    let (attr, fh, role) = t
        .create(ROOT, b"chat", true, false, user(1000), clock.now())
        .unwrap();
    assert_eq!(role, Role::Server);
    assert_eq!(attr.kind, Kind::Slot);
    assert_eq!((attr.uid, attr.gid, attr.perm), (1000, 1000, 0o644));
    assert_eq!(attr.size, 0);
    let h = t.handle(fh).unwrap();
    assert_eq!((h.ino, h.role), (attr.ino, Role::Server));
    assert_eq!(t.lookup(ROOT, b"chat").unwrap().ino, attr.ino);
}

#[test]
fn create_write_only_on_a_missing_name_is_not_found() {
    let clock = Clock::new();
    let t = table(&clock);
    for exclusive in [false, true] {
        assert_eq!(
            t.create(ROOT, b"nope", false, exclusive, user(1), clock.now())
                .err(),
            Some(SlotError::NotFound)
        );
    }
    assert_eq!(t.lookup(ROOT, b"nope").err(), Some(SlotError::NotFound));
}

#[test]
fn create_exclusive_on_an_existing_name_exists() {
    let clock = Clock::new();
    let t = table(&clock);
    serve(&t, "chat", &clock);
    for wants_read in [false, true] {
        assert_eq!(
            t.create(ROOT, b"CHAT", wants_read, true, user(1), clock.now())
                .err(),
            Some(SlotError::Exists)
        );
    }
}

#[test]
fn create_non_exclusive_on_an_existing_slot_opens_a_client_or_is_read_denied() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, _) = serve(&t, "chat", &clock);
    assert_eq!(
        t.create(ROOT, b"chat", true, false, user(1), clock.now())
            .err(),
        Some(SlotError::ReadDenied)
    );
    let (attr, fh, role) = t
        .create(ROOT, b"Chat", false, false, user(1), clock.now())
        .unwrap();
    assert_eq!((attr.ino, role), (ino, Role::Client));
    assert_eq!(t.handle(fh).unwrap().role, Role::Client);
}

#[test]
fn open_of_an_existing_slot_is_client_or_read_denied() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, server) = serve(&t, "chat", &clock);
    assert_eq!(t.open(ino, true, 1).err(), Some(SlotError::ReadDenied));
    let (fh, role) = t.open(ino, false, 1).unwrap();
    assert_eq!(role, Role::Client);
    assert_ne!(fh, server);
    // Client and server share one queue.
    let client = t.handle(fh).unwrap();
    client.slot.lock().write(b"hi", clock.now(), calm).unwrap();
    let server = t.handle(server).unwrap();
    assert_eq!(
        answer(server.slot.lock().read(1, 10, true, clock.now(), None)).unwrap()[..],
        b"hi"[..]
    );
}

#[test]
fn open_of_a_directory_or_a_missing_inode_fails() {
    let clock = Clock::new();
    let t = table(&clock);
    let d = t.mkdir(ROOT, b"dir", user(1), clock.now()).unwrap();
    assert_eq!(t.open(d.ino, false, 1).err(), Some(SlotError::IsADirectory));
    assert_eq!(t.open(9999, false, 1).err(), Some(SlotError::NotFound));
}

#[test]
fn names_match_case_insensitively_and_show_the_creators_spelling() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, _) = serve(&t, "MyChat", &clock);
    for spelling in ["MyChat", "mychat", "MYCHAT", "mYcHaT"] {
        assert_eq!(t.lookup(ROOT, spelling.as_bytes()).unwrap().ino, ino);
    }
    let names: Vec<_> = t.readdir(ROOT).unwrap().into_iter().map(|e| e.2).collect();
    assert_eq!(names, [".", "..", "MyChat"]);
    // Only ASCII folds.
    let (_, _) = serve(&t, "É", &clock);
    assert_eq!(
        t.lookup(ROOT, "é".as_bytes()).err(),
        Some(SlotError::NotFound)
    );
}

#[test]
fn readdir_lists_dot_entries_then_children_with_kinds() {
    let clock = Clock::new();
    let t = table(&clock);
    let d = t.mkdir(ROOT, b"App", user(1), clock.now()).unwrap();
    let (s, _) = serve(&t, "slot", &clock);
    let (inner, _) = {
        let (a, fh, _) = t
            .create(d.ino, b"Inner", true, true, user(1), clock.now())
            .unwrap();
        (a.ino, fh)
    };
    assert_eq!(
        t.readdir(ROOT).unwrap(),
        vec![
            (ROOT, Kind::Directory, ".".to_owned()),
            (ROOT, Kind::Directory, "..".to_owned()),
            (d.ino, Kind::Directory, "App".to_owned()),
            (s, Kind::Slot, "slot".to_owned()),
        ]
    );
    assert_eq!(
        t.readdir(d.ino).unwrap(),
        vec![
            (d.ino, Kind::Directory, ".".to_owned()),
            (ROOT, Kind::Directory, "..".to_owned()),
            (inner, Kind::Slot, "Inner".to_owned()),
        ]
    );
    assert_eq!(t.readdir(s).err(), Some(SlotError::NotADirectory));
    assert_eq!(t.lookup(d.ino, b"INNER").unwrap().ino, inner);
}

// ---------------------------------------------------------------- table: lifetime

#[test]
fn releasing_the_server_removes_the_name_at_once_and_it_can_be_created_again() {
    let clock = Clock::new();
    let t = table(&clock);
    let mut seen = std::collections::HashSet::new();
    for i in 0..1000 {
        let name = if i % 2 == 0 { "again" } else { "AGAIN" };
        let (ino, fh) = serve(&t, name, &clock);
        assert!(seen.insert(ino), "inode {ino} reused");
        t.handle(fh)
            .unwrap()
            .slot
            .lock()
            .write(b"unread", clock.now(), calm)
            .unwrap();
        let (gone, _) = t.release(fh, clock.now());
        assert_eq!(gone, Some(ino));
        assert_eq!(t.lookup(ROOT, b"again").err(), Some(SlotError::NotFound));
        assert_eq!(t.attr(ino).err(), Some(SlotError::NotFound));
        assert!(t.handle(fh).is_none());
    }
    assert_eq!(t.node_count(), 1);
    assert!(t.slots().is_empty());
}

#[test]
fn releasing_a_client_keeps_the_slot() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, _) = serve(&t, "chat", &clock);
    let (client, _) = t.open(ino, false, 1).unwrap();
    let (gone, w) = t.release(client, clock.now());
    assert_eq!(gone, None);
    assert!(w.readers.is_empty());
    assert!(t.handle(client).is_none());
    assert_eq!(t.lookup(ROOT, b"chat").unwrap().ino, ino);
    // Releasing an unknown handle (or twice) is harmless.
    assert_eq!(t.release(client, clock.now()).0, None);
}

#[test]
fn after_the_server_is_released_clients_get_server_gone() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, server) = serve(&t, "chat", &clock);
    let (client, _) = t.open(ino, false, 1).unwrap();
    let client = t.handle(client).unwrap();
    client
        .slot
        .lock()
        .write(b"lost", clock.now(), calm)
        .unwrap();
    t.release(server, clock.now());
    let mut slot = client.slot.lock();
    assert_eq!(
        slot.write(b"x", clock.now(), calm).err(),
        Some(SlotError::ServerGone)
    );
    assert_eq!(slot.info().message_count, 0);
    assert!(slot.readiness().hung_up);
}

#[test]
fn releasing_the_server_wakes_its_parked_readers_and_pollers() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, server) = serve(&t, "chat", &clock);
    let (client, _) = t.open(ino, false, 1).unwrap();
    let slot = t.handle(server).unwrap().slot;
    assert!(is_parked(&slot.lock().read(
        4,
        10,
        false,
        clock.now(),
        None
    )));
    watch(&mut t.handle(client).unwrap().slot.lock(), 5);
    let (_, w) = t.release(server, clock.now());
    assert_eq!(woken(&w), vec![(4, Err(SlotError::ServerGone))]);
    assert_eq!(w.pollers, vec![5]);
}

#[test]
fn inode_numbers_are_never_reused() {
    let clock = Clock::new();
    let t = table(&clock);
    let mut seen = std::collections::HashSet::from([ROOT]);
    for _ in 0..50 {
        let d = t.mkdir(ROOT, b"d", user(1), clock.now()).unwrap();
        assert!(seen.insert(d.ino));
        t.rmdir(ROOT, b"d", clock.now()).unwrap();
        let (s, fh) = serve(&t, "s", &clock);
        assert!(seen.insert(s));
        t.release(fh, clock.now());
    }
}

#[test]
fn failed_creates_do_not_consume_an_inode_or_a_name() {
    let clock = Clock::new();
    let t = table(&clock);
    serve(&t, "a", &clock);
    let before = t.node_count();
    let _ = t.create(ROOT, b"A", true, true, user(1), clock.now());
    let _ = t.create(ROOT, b"missing", false, false, user(1), clock.now());
    let _ = t.create(ROOT, b"..", true, true, user(1), clock.now());
    assert_eq!(t.node_count(), before);
}

// ---------------------------------------------------------------- table: memory ceiling

/// `-o max_memory`: all slots of a mount share one budget. A message past
/// it is refused with `OutOfMemory` (ENOBUFS) and counted as dropped;
/// reading or closing gives its bytes back; nothing queued is lost.
#[test]
fn the_memory_ceiling_spans_every_slot_and_refuses_only_new_messages() {
    use mailslotfs::slot::memory::message_cost;
    // Three slots with one-letter names, and one parked read, are charged too.
    let slot_cost = Charge::Slot(1).bytes() + Charge::Handle.bytes();
    let names = 3 * slot_cost + Charge::ParkedRead.bytes();
    let clock = Clock::new();
    let t = table_with(
        SlotDefaults {
            max_memory: names + 3 * message_cost(100),
            ..defaults()
        },
        &clock,
    );
    let (a, server_a) = serve(&t, "a", &clock);
    let (_, server_b) = serve(&t, "b", &clock);
    let (_, server_c) = serve(&t, "c", &clock);
    let slot_a = t.handle(server_a).unwrap().slot;
    let slot_b = t.handle(server_b).unwrap().slot;
    let slot_c = t.handle(server_c).unwrap().slot;
    assert!(matches!(
        slot_c.lock().read(9, 1000, false, clock.now(), None),
        ReadOutcome::Parked
    ));
    put(&mut slot_a.lock(), &[1; 100], &clock);
    put(&mut slot_a.lock(), &[2; 100], &clock);
    put(&mut slot_b.lock(), &[3; 100], &clock);
    assert_eq!(t.memory().used(), t.memory().limit());
    assert_eq!(
        slot_b.lock().write(&[4; 1], clock.now(), calm).err(),
        Some(SlotError::OutOfMemory)
    );
    assert_eq!(slot_b.lock().info().dropped, 1);
    assert_eq!(slot_b.lock().info().received, 1);
    // A message handed straight to a waiting reader is never queued, so
    // it costs nothing even at the ceiling.
    let woken = slot_c.lock().write(b"direct", clock.now(), calm).unwrap();
    assert_eq!(woken.readers.len(), 1);
    // Reading gives bytes back; what was queued comes out intact.
    assert_eq!(take(&mut slot_a.lock(), &clock).unwrap(), vec![1; 100]);
    put(&mut slot_b.lock(), &[4; 1], &clock);
    // Closing a slot gives back its name, its handle and what it still held.
    t.release(server_a, clock.now());
    assert_eq!(
        t.memory().used(),
        2 * slot_cost + message_cost(100) + message_cost(1)
    );
    assert!(t.info(a).is_err());
}

// ---------------------------------------------------------------- table: accounts

/// What a slot with a one-letter name costs its creator: the name and the
/// server handle.
fn slot_cost() -> u64 {
    Charge::Slot(1).bytes() + Charge::Handle.bytes()
}

fn shares(f: impl FnOnce(&mut SlotDefaults)) -> SlotDefaults {
    let mut d = defaults();
    f(&mut d);
    d
}

/// `-o user_entries` / `-o max_entries`: a name past the creator's share
/// or the mount's ceiling is refused with `NoSpace` (ENOSPC), counted,
/// and charges nothing; root is held only to the ceiling; removing a name
/// makes room again; an open of an existing name is no new name.
#[test]
fn names_past_a_users_share_or_the_ceiling_are_refused_no_space() {
    let clock = Clock::new();
    let t = table_with(
        shares(|d| {
            d.max_entries = 5;
            d.user_entries = 2;
        }),
        &clock,
    );
    let now = clock.now();
    t.mkdir(ROOT, b"a", user(1000), now).unwrap();
    let (b, _) = serve(&t, "b", &clock);
    let held = t.memory().used();
    assert_eq!(
        t.mkdir(ROOT, b"c", user(1000), now).err(),
        Some(SlotError::NoSpace)
    );
    assert_eq!(
        t.create(ROOT, b"d", true, true, user(1000), now).err(),
        Some(SlotError::NoSpace)
    );
    assert_eq!(t.memory().used(), held, "a refusal charges nothing");
    assert_eq!(t.accounts().refused(Limit::UserEntries), 2);
    // A client open of an existing slot is a handle, not a name.
    let (_, _, role) = t.create(ROOT, b"B", false, false, user(1000), now).unwrap();
    assert_eq!(role, Role::Client);
    t.open(b, false, 1000).unwrap();
    // Another user has a share of their own; root only meets the ceiling.
    t.mkdir(ROOT, b"e", user(1001), now).unwrap();
    t.mkdir(ROOT, b"f", user(0), now).unwrap();
    t.mkdir(ROOT, b"g", user(0), now).unwrap();
    assert_eq!(
        t.mkdir(ROOT, b"h", user(0), now).err(),
        Some(SlotError::NoSpace)
    );
    assert_eq!(t.accounts().refused(Limit::Entries), 1);
    assert_eq!(t.accounts().entries().used(), 5);
    t.rmdir(ROOT, b"a", now).unwrap();
    t.mkdir(ROOT, b"c", user(1000), now).unwrap();
    assert_eq!(t.accounts().account(1000).entries(), 2);
}

#[test]
fn a_name_stays_charged_to_its_creator_after_chown() {
    let clock = Clock::new();
    let t = table(&clock);
    let d = t.mkdir(ROOT, b"d", user(1000), clock.now()).unwrap();
    t.setattr(d.ino, None, (Some(1001), None), None, clock.now())
        .unwrap();
    let (creator, new_owner) = (t.accounts().account(1000), t.accounts().account(1001));
    assert_eq!((creator.entries(), new_owner.entries()), (1, 0));
    assert_eq!(creator.memory(), Charge::Directory(1).bytes());
    t.rmdir(ROOT, b"d", clock.now()).unwrap();
    assert_eq!((creator.entries(), creator.memory()), (0, 0));
    assert_eq!(t.memory().used(), 0);
}

/// Handles are charged to whoever opened them (ENOBUFS past the share),
/// and given back on release; releasing the server gives back the name.
#[test]
fn handles_are_charged_to_their_opener_until_released() {
    let clock = Clock::new();
    let t = table_with(shares(|d| d.user_memory = slot_cost()), &clock);
    let (a, server) = serve(&t, "a", &clock);
    assert_eq!(t.open(a, false, 1000).err(), Some(SlotError::OutOfMemory));
    assert_eq!(t.accounts().refused(Limit::UserMemory), 1);
    // A new slot past the memory share is a name refused: ENOSPC.
    assert_eq!(
        t.create(ROOT, b"b", true, true, user(1000), clock.now())
            .err(),
        Some(SlotError::NoSpace)
    );
    assert_eq!(t.accounts().refused(Limit::UserMemory), 2);
    let most = slot_cost() / Charge::Handle.bytes();
    let clients: Vec<u64> = (0..most)
        .map(|_| t.open(a, false, 1001).unwrap().0)
        .collect();
    assert_eq!(t.open(a, false, 1001).err(), Some(SlotError::OutOfMemory));
    t.release(clients[0], clock.now());
    t.open(a, false, 1001).unwrap();
    let opener = t.accounts().account(1001);
    assert_eq!(opener.memory(), most * Charge::Handle.bytes());
    t.release(server, clock.now());
    assert_eq!(t.accounts().account(1000).memory(), 0);
    assert_eq!(t.accounts().account(1000).entries(), 0);
}

/// A client's message is paid for by its writer until it is read; a
/// message from the network (no handle) by the slot's owner.
#[test]
fn messages_are_charged_to_their_writer_and_network_messages_to_the_owner() {
    use mailslotfs::slot::memory::message_cost;
    let clock = Clock::new();
    let t = table(&clock);
    let (a, server) = serve(&t, "a", &clock);
    let (client, _) = t.open(a, false, 1001).unwrap();
    let writer = t.handle(client).unwrap().account;
    let slot = t.handle(server).unwrap().slot;
    slot.lock()
        .write_by(&writer, b"hello", clock.now(), calm)
        .unwrap();
    slot.lock().write(b"net", clock.now(), calm).unwrap();
    let owner = t.accounts().account(1000);
    assert_eq!(writer.memory(), Charge::Handle.bytes() + message_cost(5));
    assert_eq!(owner.memory(), slot_cost() + message_cost(3));
    take(&mut slot.lock(), &clock).unwrap();
    take(&mut slot.lock(), &clock).unwrap();
    assert_eq!(writer.memory(), Charge::Handle.bytes());
    assert_eq!(owner.memory(), slot_cost());
}

/// `-o user_memory`: a writer past its share gets `OutOfMemory` (ENOBUFS,
/// counted as dropped); another writer to the same slot does not.
#[test]
fn a_writers_memory_share_refuses_its_messages_only() {
    use mailslotfs::slot::memory::message_cost;
    let clock = Clock::new();
    let d = shares(|d| d.user_memory = Charge::Handle.bytes() + 2 * message_cost(100));
    // The slot's owner is the mount's owner: exempt from the shares.
    let t: Table<P> = Table::new(d, (1000, 1000), clock.now());
    let (a, server) = serve(&t, "a", &clock);
    let slot = t.handle(server).unwrap().slot;
    let writer = |uid: u32| {
        let (client, _) = t.open(a, false, uid).unwrap();
        t.handle(client).unwrap().account
    };
    let send = |writer| {
        slot.lock()
            .write_by(writer, &[7; 100], clock.now(), calm)
            .err()
    };
    let greedy = writer(1001);
    assert_eq!(send(&greedy), None);
    assert_eq!(send(&greedy), None);
    assert_eq!(send(&greedy), Some(SlotError::OutOfMemory));
    assert_eq!(slot.lock().info().dropped, 1);
    assert_eq!(send(&writer(1002)), None);
    assert_eq!(t.accounts().refused(Limit::UserMemory), 1);
}

/// Parked reads are the slot owner's (only the server reads): refused
/// past its share with `OutOfMemory`, and given back once answered.
#[test]
fn parked_reads_are_charged_to_the_owner_until_answered() {
    let clock = Clock::new();
    let share = slot_cost() + 2 * Charge::ParkedRead.bytes();
    let t = table_with(shares(|d| d.user_memory = share), &clock);
    let (_, server) = serve(&t, "a", &clock);
    let slot = t.handle(server).unwrap().slot;
    let park = |id: u32| slot.lock().read(id, 100, false, clock.now(), None);
    assert!(is_parked(&park(1)));
    assert!(is_parked(&park(2)));
    assert_eq!(answer(park(3)), Err(SlotError::OutOfMemory));
    // A message for a waiting reader is handed over, never queued.
    let w = slot.lock().write(b"m", clock.now(), calm).unwrap();
    assert_eq!(woken_ids(&w), vec![1]);
    assert!(is_parked(&park(4)));
    let owner = t.accounts().account(1000);
    assert_eq!(owner.memory(), share);
    t.release(server, clock.now());
    assert_eq!(owner.memory(), 0);
}

fn woken_ids(w: &mailslotfs::slot::queue::Wakeups<P>) -> Vec<u32> {
    w.readers.iter().map(|(id, _)| *id).collect()
}

/// A caller whose poll waiters name the handle they polled through.
struct ByHandle;

impl mailslotfs::slot::Parking for ByHandle {
    type Reader = u32;
    /// (kernel poll handle, open handle)
    type Poller = (u32, u64);
    fn same_poller(a: &(u32, u64), b: &(u32, u64)) -> bool {
        a.0 == b.0
    }
    fn polls_through(p: &(u32, u64), fh: u64) -> bool {
        p.1 == fh
    }
}

/// A poll waiter is charged once to the handle's opener, however often it
/// polls again, and given back when it is woken or its handle released.
#[test]
fn poll_waiters_are_charged_once_and_given_back_when_woken_or_released() {
    let clock = Clock::new();
    let share = Charge::Handle.bytes() + Charge::PollWaiter.bytes();
    let t: Table<ByHandle> = Table::new(shares(|d| d.user_memory = share), (0, 0), clock.now());
    let (attr, server, _) = t
        .create(ROOT, b"a", true, true, user(0), clock.now())
        .unwrap();
    let (client, _) = t.open(attr.ino, false, 1001).unwrap();
    let handle = t.handle(client).unwrap();
    let slot = handle.slot.clone();
    for _ in 0..100 {
        slot.lock().watch((7, client), &handle.account).unwrap();
    }
    assert_eq!(
        slot.lock().watch((8, client), &handle.account),
        Err(SlotError::OutOfMemory)
    );
    assert_eq!(handle.account.memory(), share);
    // Woken: given back.
    let w = slot.lock().write(b"m", clock.now(), |_| false).unwrap();
    assert_eq!(w.pollers, vec![(7, client)]);
    assert_eq!(handle.account.memory(), Charge::Handle.bytes());
    // Released: its waiter goes with it; the server's stays.
    let root = t.accounts().account(0);
    slot.lock().watch((8, client), &handle.account).unwrap();
    slot.lock().watch((9, server), &root).unwrap();
    t.release(client, clock.now());
    assert_eq!(handle.account.memory(), 0);
    assert_eq!(slot.lock().poll_waiters(), 1);
}

// ---------------------------------------------------------------- table: directories

#[test]
fn mkdir_and_rmdir_of_an_empty_directory() {
    let mut clock = Clock::new();
    let t = table(&clock);
    clock.advance(ms(5000));
    let d = t.mkdir(ROOT, b"MyApp", user(1000), clock.now()).unwrap();
    assert_eq!(d.kind, Kind::Directory);
    assert_eq!(t.attr(ROOT).unwrap().mtime, clock.now().wall);
    assert_eq!(t.lookup(ROOT, b"myapp").unwrap().ino, d.ino);
    assert_eq!(
        t.mkdir(ROOT, b"MYAPP", user(1), clock.now()).err(),
        Some(SlotError::Exists)
    );
    t.rmdir(ROOT, b"myAPP", clock.now()).unwrap();
    assert_eq!(t.lookup(ROOT, b"MyApp").err(), Some(SlotError::NotFound));
    assert_eq!(
        t.rmdir(ROOT, b"MyApp", clock.now()).err(),
        Some(SlotError::NotFound)
    );
}

#[test]
fn rmdir_of_a_directory_holding_a_slot_or_a_directory_is_not_empty() {
    let clock = Clock::new();
    let t = table(&clock);
    let d = t.mkdir(ROOT, b"app", user(1), clock.now()).unwrap();
    let (_, fh, _) = t
        .create(d.ino, b"finance", true, true, user(1), clock.now())
        .unwrap();
    assert_eq!(
        t.rmdir(ROOT, b"app", clock.now()).err(),
        Some(SlotError::NotEmpty)
    );
    // Once the server is gone, so is the slot, and the directory can go.
    t.release(fh, clock.now());
    t.mkdir(d.ino, b"sub", user(1), clock.now()).unwrap();
    assert_eq!(
        t.rmdir(ROOT, b"app", clock.now()).err(),
        Some(SlotError::NotEmpty)
    );
    t.rmdir(d.ino, b"sub", clock.now()).unwrap();
    t.rmdir(ROOT, b"app", clock.now()).unwrap();
}

#[test]
fn rmdir_of_a_slot_is_not_a_directory() {
    let clock = Clock::new();
    let t = table(&clock);
    serve(&t, "chat", &clock);
    assert_eq!(
        t.rmdir(ROOT, b"chat", clock.now()).err(),
        Some(SlotError::NotADirectory)
    );
    assert!(t.lookup(ROOT, b"chat").is_ok());
}

#[test]
fn paths_through_a_slot_are_not_a_directory() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, _) = serve(&t, "chat", &clock);
    assert_eq!(t.lookup(ino, b"x").err(), Some(SlotError::NotADirectory));
    assert_eq!(
        t.mkdir(ino, b"x", user(1), clock.now()).err(),
        Some(SlotError::NotADirectory)
    );
    assert_eq!(
        t.create(ino, b"x", true, true, user(1), clock.now()).err(),
        Some(SlotError::NotADirectory)
    );
    assert_eq!(
        t.rmdir(ino, b"x", clock.now()).err(),
        Some(SlotError::NotADirectory)
    );
}

#[test]
fn invalid_names_are_refused() {
    let clock = Clock::new();
    let t = table(&clock);
    let long = vec![b'x'; 256];
    let bad: [(&[u8], SlotError); 6] = [
        (b".", SlotError::InvalidName),
        (b"..", SlotError::InvalidName),
        (b"a\\b", SlotError::InvalidName),
        (b"", SlotError::InvalidName),
        (b"\xff", SlotError::InvalidName),
        (&long, SlotError::NameTooLong),
    ];
    for (name, err) in bad {
        assert_eq!(
            t.create(ROOT, name, true, true, user(1), clock.now()).err(),
            Some(err),
            "create {name:?}"
        );
        assert_eq!(
            t.mkdir(ROOT, name, user(1), clock.now()).err(),
            Some(err),
            "mkdir {name:?}"
        );
    }
    assert_eq!(t.readdir(ROOT).unwrap().len(), 2);
    // 255 bytes is fine.
    serve(&t, &"y".repeat(255), &clock);
}

// ---------------------------------------------------------------- table: attributes

#[test]
fn stat_size_is_the_next_message_size() {
    let mut clock = Clock::new();
    let t = table(&clock);
    let (ino, fh) = serve(&t, "chat", &clock);
    let slot = t.handle(fh).unwrap().slot;
    clock.advance(ms(2000));
    slot.lock().write(&[0; 42], clock.now(), calm).unwrap();
    slot.lock().write(&[0; 7], clock.now(), calm).unwrap();
    let a = t.attr(ino).unwrap();
    assert_eq!(a.size, 42);
    assert_eq!(a.mtime, clock.now().wall);
    assert!(a.io_size >= Limits::default().max_message_size);
    answer(slot.lock().read(0, 100, true, clock.now(), None)).unwrap();
    assert_eq!(t.attr(ino).unwrap().size, 7);
}

#[test]
fn truncate_to_zero_is_a_no_op_and_other_sizes_are_not_permitted() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, fh) = serve(&t, "chat", &clock);
    t.handle(fh)
        .unwrap()
        .slot
        .lock()
        .write(b"hello", clock.now(), calm)
        .unwrap();
    let a = t
        .setattr(ino, None, (None, None), Some(0), clock.now())
        .unwrap();
    assert_eq!(a.size, 5, "truncate must not touch the queue");
    assert_eq!(t.info(ino).unwrap().message_count, 1);
    assert_eq!(
        t.setattr(ino, None, (None, None), Some(5), clock.now())
            .err(),
        Some(SlotError::NotPermitted)
    );
}

#[test]
fn setattr_changes_mode_and_owner() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, _) = serve(&t, "chat", &clock);
    let a = t
        .setattr(ino, Some(0o100600), (Some(5), Some(6)), None, clock.now())
        .unwrap();
    assert_eq!((a.perm, a.uid, a.gid), (0o600, 5, 6));
    let d = t.mkdir(ROOT, b"d", user(1), clock.now()).unwrap();
    assert_eq!(
        t.setattr(d.ino, None, (None, None), Some(0), clock.now())
            .err(),
        Some(SlotError::IsADirectory)
    );
}

#[test]
fn set_info_is_for_the_owner_and_root_only() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, _) = serve(&t, "chat", &clock); // owner uid 1000
    let set = |uid, v: &[u8]| t.set_info(ino, InfoAttr::QuotaMessages, v, uid, TRANSPORT_MAX);
    assert!(set(1000, b"10").is_ok());
    assert_eq!(t.info(ino).unwrap().limits.quota_messages, 10);
    assert_eq!(set(1001, b"20").err(), Some(SlotError::NotPermitted));
    assert_eq!(t.info(ino).unwrap().limits.quota_messages, 10);
    assert!(set(0, b"30").is_ok());
    assert_eq!(t.info(ino).unwrap().limits.quota_messages, 30);
}

#[test]
fn set_info_validates_values() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, _) = serve(&t, "chat", &clock);
    let set = |attr, v: &[u8]| t.set_info(ino, attr, v, 1000, TRANSPORT_MAX).err();
    let before = t.info(ino).unwrap().limits;
    assert_eq!(
        set(InfoAttr::QuotaMessages, b"0"),
        Some(SlotError::InvalidValue)
    );
    assert_eq!(
        set(InfoAttr::MaxMessageSize, b"0"),
        Some(SlotError::InvalidValue)
    );
    let too_big = (TRANSPORT_MAX + 1).to_string();
    assert_eq!(
        set(InfoAttr::MaxMessageSize, too_big.as_bytes()),
        Some(SlotError::InvalidValue)
    );
    assert_eq!(
        set(InfoAttr::QuotaBytes, b"100"),
        Some(SlotError::InvalidValue)
    );
    assert_eq!(
        set(InfoAttr::ReadTimeoutMs, b"-2"),
        Some(SlotError::InvalidValue)
    );
    assert_eq!(
        set(InfoAttr::QuotaMessages, b"lots"),
        Some(SlotError::InvalidValue)
    );
    for ro in [
        InfoAttr::NextSize,
        InfoAttr::MessageCount,
        InfoAttr::QueuedBytes,
    ] {
        assert_eq!(set(ro, b"1"), Some(SlotError::NotPermitted), "{ro:?}");
    }
    assert_eq!(
        t.info(ino).unwrap().limits,
        before,
        "refusals change nothing"
    );
    // Valid values apply, with the usual setfattr trailing newline.
    assert_eq!(
        set(
            InfoAttr::MaxMessageSize,
            TRANSPORT_MAX.to_string().as_bytes()
        ),
        None
    );
    assert_eq!(set(InfoAttr::ReadTimeoutMs, b"250\n"), None);
    assert_eq!(set(InfoAttr::QuotaBytes, b"99999999"), None);
    let l = t.info(ino).unwrap().limits;
    assert_eq!(l.max_message_size, TRANSPORT_MAX);
    assert_eq!(l.read_timeout, ReadTimeout::After(ms(250)));
    assert_eq!(l.quota_bytes, 99_999_999);
    assert_eq!(set(InfoAttr::ReadTimeoutMs, b"-1"), None);
    assert_eq!(
        t.info(ino).unwrap().limits.read_timeout,
        ReadTimeout::Forever
    );
}

#[test]
fn set_info_applies_to_the_next_write_and_wakes_pollers() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, fh) = serve(&t, "chat", &clock);
    let slot = t.handle(fh).unwrap().slot;
    watch(&mut slot.lock(), 77);
    let w = t
        .set_info(ino, InfoAttr::MaxMessageSize, b"4", 1000, TRANSPORT_MAX)
        .unwrap();
    assert_eq!(w.pollers, vec![77]);
    assert_eq!(
        slot.lock().write(b"12345", clock.now(), calm).err(),
        Some(SlotError::MessageTooBig)
    );
    slot.lock().write(b"1234", clock.now(), calm).unwrap();
}

#[test]
fn info_of_a_directory_is_a_directory_error() {
    let clock = Clock::new();
    let t = table(&clock);
    let d = t.mkdir(ROOT, b"d", user(1000), clock.now()).unwrap();
    assert_eq!(t.info(d.ino).err(), Some(SlotError::IsADirectory));
    assert_eq!(
        t.set_info(d.ino, InfoAttr::QuotaMessages, b"5", 1000, TRANSPORT_MAX)
            .err(),
        Some(SlotError::IsADirectory)
    );
    assert_eq!(t.info(9999).err(), Some(SlotError::NotFound));
}

#[test]
fn slots_start_from_the_mount_defaults() {
    let clock = Clock::new();
    let d = SlotDefaults {
        limits: limits(|l| {
            l.max_message_size = 100;
            l.quota_messages = 3;
            l.read_timeout = ReadTimeout::After(ms(10));
        }),
        keep_empty: true,
        max_memory: u64::MAX,
        max_entries: u64::MAX,
        user_entries: u64::MAX,
        user_memory: u64::MAX,
    };
    let t = table_with(d, &clock);
    assert_eq!(t.defaults(), d);
    let (ino, fh) = serve(&t, "chat", &clock);
    assert_eq!(t.info(ino).unwrap().limits, d.limits);
    // keep_empty is inherited too.
    let slot = t.handle(fh).unwrap().slot;
    slot.lock().write(b"", clock.now(), calm).unwrap();
    assert_eq!(t.info(ino).unwrap().message_count, 1);
}

// ---------------------------------------------------------------- table: flush / closing_by

#[test]
fn flush_of_the_server_marks_the_slot_closing_for_that_thread_only() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, server) = serve(&t, "Chat", &clock);
    let (client, _) = t.open(ino, false, 1).unwrap();
    assert_eq!(t.closing_by(ROOT, b"chat", 100), None);
    t.flush(client, 100);
    assert_eq!(t.closing_by(ROOT, b"chat", 100), None, "client flush");
    t.flush(server, 100);
    assert_eq!(t.closing_by(ROOT, b"CHAT", 100), Some(ino));
    assert_eq!(t.closing_by(ROOT, b"chat", 101), None, "other thread");
    assert_eq!(t.closing_by(ROOT, b"other", 100), None);
    // Once released the name is gone, and so is the hint.
    t.release(server, clock.now());
    assert_eq!(t.closing_by(ROOT, b"chat", 100), None);
    // A flush of an unknown handle is harmless.
    t.flush(12345, 100);
}

#[test]
fn forget_closing_ends_the_hint() {
    let clock = Clock::new();
    let t = table(&clock);
    let (ino, server) = serve(&t, "chat", &clock);
    t.flush(server, 100);
    assert_eq!(t.closing_by(ROOT, b"chat", 100), Some(ino));
    // The server handle is still open elsewhere (dup): stop waiting.
    t.forget_closing(ino);
    assert_eq!(t.closing_by(ROOT, b"chat", 100), None);
    // A later flush by the creating thread marks it again.
    t.flush(server, 100);
    assert_eq!(t.closing_by(ROOT, b"chat", 100), Some(ino));
    t.forget_closing(ino);
    // A flush by another thread (a forked child dropping an inherited copy
    // at exec) says nothing about the release.
    t.flush(server, 101);
    assert_eq!(t.closing_by(ROOT, b"chat", 101), None);
    assert_eq!(t.closing_by(ROOT, b"chat", 100), None);
    // Forgetting an unknown inode is harmless.
    t.forget_closing(9999);
}

#[test]
fn closing_by_is_none_for_directories_and_bad_parents() {
    let clock = Clock::new();
    let t = table(&clock);
    let d = t.mkdir(ROOT, b"d", user(1), clock.now()).unwrap();
    assert_eq!(t.closing_by(ROOT, b"d", 1), None);
    assert_eq!(t.closing_by(d.ino, b"x", 1), None);
    assert_eq!(t.closing_by(9999, b"x", 1), None);
}

#[test]
fn slots_lists_every_live_slot() {
    let clock = Clock::new();
    let t = table(&clock);
    let d = t.mkdir(ROOT, b"d", user(1), clock.now()).unwrap();
    serve(&t, "a", &clock);
    let (_, fh) = serve(&t, "b", &clock);
    t.create(d.ino, b"c", true, true, user(1), clock.now())
        .unwrap();
    assert_eq!(t.slots().len(), 3);
    t.release(fh, clock.now());
    assert_eq!(t.slots().len(), 2);
    assert_eq!(t.node_count(), 4); // root, d, a, c
}

#[test]
fn slot_at_finds_a_slot_by_path_in_any_case() {
    let clock = Clock::new();
    let t = table(&clock);
    let d = t.mkdir(ROOT, b"Net", user(1), clock.now()).unwrap();
    t.create(d.ino, b"NetLogon", true, true, user(1), clock.now())
        .unwrap();
    let slot = t.slot_at(&["net", "NETLOGON"]).unwrap();
    slot.lock().write(b"hi", clock.now(), calm).unwrap();
    assert_eq!(
        t.slot_at(&["NET", "netlogon"])
            .unwrap()
            .lock()
            .info()
            .message_count,
        1
    );
    for (path, error) in [
        (&["net", "missing"][..], SlotError::NotFound),
        (&["nope", "netlogon"][..], SlotError::NotFound),
        (&["net"][..], SlotError::IsADirectory),
        (&["net", "netlogon", "deeper"][..], SlotError::NotADirectory),
        (&[][..], SlotError::IsADirectory),
    ] {
        assert_eq!(t.slot_at(path).err(), Some(error), "{path:?}");
    }
}
