//! The batch interface in the core: framed writes queue one message per
//! frame, framed reads return every waiting message that fits.

mod common_core;

use common_core::*;
use mailslotfs::slot::SlotError;
use mailslotfs::slot::batch::{FRAME_HEADER, next_frame, push_frame};
use mailslotfs::slot::limits::Limits;
use mailslotfs::slot::queue::Slot;

fn slot(limits: Limits, clock: &Clock) -> Slot<P> {
    Slot::new(limits, false, 1, clock.now())
}

fn framed(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        push_frame(&mut out, m);
    }
    out
}

fn unframe(mut buf: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((m, rest)) = next_frame(buf) {
        out.push(m.to_vec());
        buf = rest;
    }
    assert!(buf.is_empty(), "trailing bytes in a batched read");
    out
}

#[test]
fn a_framed_write_queues_one_message_per_frame() {
    let clock = Clock::new();
    let mut s = slot(Limits::default(), &clock);
    let frames = framed(&[b"one", b"two", b"three"]);
    let (taken, _) = s
        .write_batch(&s.owner(), &frames, clock.now(), calm)
        .unwrap();
    assert_eq!(taken, frames.len());
    assert_eq!(s.info().message_count, 3);
    for want in [&b"one"[..], b"two", b"three"] {
        assert_eq!(
            answer(s.read(1, 100, true, clock.now(), None))
                .unwrap()
                .as_ref(),
            want
        );
    }
}

#[test]
fn a_framed_write_stops_short_at_the_quota_and_fails_only_when_nothing_fits() {
    let clock = Clock::new();
    let limits = Limits {
        quota_messages: 2,
        ..Limits::default()
    };
    let mut s = slot(limits, &clock);
    let frames = framed(&[b"a", b"b", b"c"]);
    let (taken, _) = s
        .write_batch(&s.owner(), &frames, clock.now(), calm)
        .unwrap();
    assert_eq!(taken, 2 * (FRAME_HEADER + 1), "two whole frames taken");
    assert_eq!(
        s.write_batch(&s.owner(), &frames[taken..], clock.now(), calm)
            .err(),
        Some(SlotError::QuotaFull)
    );
    assert_eq!(s.info().message_count, 2);
}

#[test]
fn oversized_or_partial_frames_end_the_batch() {
    let clock = Clock::new();
    let limits = Limits {
        max_message_size: 4,
        ..Limits::default()
    };
    let mut s = slot(limits, &clock);
    assert_eq!(
        s.write_batch(&s.owner(), &framed(&[b"too long"]), clock.now(), calm)
            .err(),
        Some(SlotError::MessageTooBig)
    );
    let mut frames = framed(&[b"ok", b"too long"]);
    let (taken, _) = s
        .write_batch(&s.owner(), &frames, clock.now(), calm)
        .unwrap();
    assert_eq!(taken, FRAME_HEADER + 2);
    // A partial first frame is bad framing, not a message.
    frames.truncate(FRAME_HEADER + 1);
    assert_eq!(
        s.write_batch(&s.owner(), &frames, clock.now(), calm).err(),
        Some(SlotError::InvalidValue)
    );
    assert_eq!(s.info().message_count, 1);
}

#[test]
fn a_batched_read_returns_every_message_that_fits_and_leaves_the_rest() {
    let clock = Clock::new();
    let mut s = slot(Limits::default(), &clock);
    for m in [&b"aaaa"[..], b"bb", b"cccccc"] {
        s.write(m, clock.now(), calm).unwrap();
    }
    let room = (FRAME_HEADER * 2 + 6) as u32;
    let got = answer(s.read_as(1, room, true, clock.now(), None, true)).unwrap();
    assert_eq!(unframe(&got), vec![b"aaaa".to_vec(), b"bb".to_vec()]);
    assert_eq!(s.info().message_count, 1);
    // The head does not fit even alone: EMSGSIZE, and it stays.
    assert_eq!(
        answer(s.read_as(2, 9, true, clock.now(), None, true)).err(),
        Some(SlotError::BufferTooSmall)
    );
    let got = answer(s.read_as(3, 1000, true, clock.now(), None, true)).unwrap();
    assert_eq!(unframe(&got), vec![b"cccccc".to_vec()]);
    assert_eq!(s.info().read, 3);
}

#[test]
fn a_parked_batch_reader_gets_its_message_as_a_frame() {
    let clock = Clock::new();
    let mut s = slot(Limits::default(), &clock);
    assert!(is_parked(&s.read_as(
        7,
        100,
        false,
        clock.now(),
        None,
        true
    )));
    let w = s.write(b"hello", clock.now(), calm).unwrap();
    let answered = woken(&w);
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].0, 7);
    assert_eq!(
        unframe(answered[0].1.as_ref().unwrap()),
        vec![b"hello".to_vec()]
    );
    // A parked batch reader whose buffer holds the message but not its
    // frame header is answered EMSGSIZE; the message stays queued.
    assert!(is_parked(&s.read_as(8, 5, false, clock.now(), None, true)));
    let w = s.write(b"12345", clock.now(), calm).unwrap();
    assert_eq!(woken(&w), vec![(8, Err(SlotError::BufferTooSmall))]);
    assert_eq!(s.info().message_count, 1);
}
