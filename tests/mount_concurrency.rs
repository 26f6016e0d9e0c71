//! Concurrency: many writers into one slot, parked reads that must not hold
//! up other slots, and parallel writers making progress.

mod common;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn four_writer_processes_every_message_once_in_per_writer_order() {
    const WRITERS: usize = 4;
    const EACH: usize = 2000;
    let m = mount!();
    let s = create_slot(&m.path("busy"));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            spawn(
                Command::new("python3")
                    .arg("-c")
                    .arg(format!(
                        "import os,sys\nfd=os.open(sys.argv[1], os.O_WRONLY)\nfor i in range({EACH}):\n    assert os.write(fd, b'{w}:%d' % i) > 0\n"
                    ))
                    .arg(m.path("busy")),
            )
        })
        .collect();
    let start = Instant::now();
    let mut next = vec![0usize; WRITERS];
    let mut total = 0;
    while total < WRITERS * EACH {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {total} messages after 30 s: {next:?}"
        );
        let msg = recv(&s, Duration::from_secs(10));
        let text = String::from_utf8(msg).unwrap();
        let (w, seq) = text.split_once(':').expect("tagged message");
        let (w, seq): (usize, usize) = (w.parse().unwrap(), seq.parse().unwrap());
        assert_eq!(seq, next[w], "writer {w} out of order or duplicated");
        next[w] += 1;
        total += 1;
    }
    println!(
        "{} messages from {WRITERS} writers in {:?}",
        total,
        start.elapsed()
    );
    for w in writers {
        let o = finish(w, Duration::from_secs(10));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(poll1(s.as_raw_fd(), libc::POLLIN, 0), 0, "extra messages");
}

#[test]
fn parked_reads_never_hold_up_other_slots() {
    let m = mount!();
    // More parked reads than the daemon has event-loop threads.
    let servers: Vec<_> = (0..8)
        .map(|i| create_slot(&m.path(&format!("idle{i}"))))
        .collect();
    let mut parked: Vec<_> = servers
        .iter()
        .map(|s| read_async(s.as_raw_fd(), 100))
        .collect();
    for r in &mut parked {
        r.wait_parked(Duration::from_secs(5));
    }
    let t = Instant::now();
    let s = create_slot(&m.path("live"));
    let c = client(&m.path("live"));
    for i in 0..100 {
        send(&c, format!("{i}").as_bytes());
        assert_eq!(recv(&s, Duration::from_secs(2)), format!("{i}").as_bytes());
    }
    let ls = std::fs::read_dir(&m.dir).unwrap().count();
    assert_eq!(ls, 9);
    let took = t.elapsed();
    println!("100 round trips beside 8 parked reads: {took:?}");
    assert!(took < Duration::from_secs(5));
    for r in &mut parked {
        assert!(!r.is_done(), "a parked read returned early");
    }
    // Wake them all: each gets its own slot's message.
    for i in 0..servers.len() {
        let c = client(&m.path(&format!("IDLE{i}")));
        send(&c, format!("wake{i}").as_bytes());
    }
    for (i, r) in parked.iter_mut().enumerate() {
        let got = r.result(Duration::from_secs(3)).0.unwrap();
        assert_eq!(got, format!("wake{i}").as_bytes());
    }
}

#[test]
fn two_writer_threads_to_one_slot_both_progress() {
    let m = mount!();
    let s = create_slot(&m.path("two"));
    let (tx, rx) = mpsc::channel();
    for w in 0..2u8 {
        let path = m.path("two");
        let tx = tx.clone();
        std::thread::spawn(move || {
            let c = client(&path);
            for i in 0..1000u32 {
                let mut msg = vec![w];
                msg.extend_from_slice(&i.to_le_bytes());
                send(&c, &msg);
            }
            let _ = tx.send(w);
        });
    }
    let start = Instant::now();
    let mut next = [0u32; 2];
    let mut firsts = Vec::new();
    for n in 0..2000 {
        let msg = recv(&s, Duration::from_secs(10));
        let w = msg[0] as usize;
        let i = u32::from_le_bytes(msg[1..5].try_into().unwrap());
        assert_eq!(i, next[w], "writer {w}");
        next[w] += 1;
        if n < 1000 {
            firsts.push(w);
        }
    }
    for _ in 0..2 {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("writer thread stuck");
    }
    println!("2 x 1000 messages in {:?}", start.elapsed());
    // Both made progress before either finished: in the first half of the
    // stream each writer shows up.
    let counts: HashMap<usize, usize> = firsts.iter().fold(HashMap::new(), |mut h, w| {
        *h.entry(*w).or_default() += 1;
        h
    });
    assert_eq!(counts.len(), 2, "one writer starved the other: {counts:?}");
}

#[test]
fn reader_and_writer_on_one_fd_from_two_threads() {
    // O_RDWR server: a parked read on one thread must not block a write
    // (refused: EINVAL) or an fstat on another thread of the same fd.
    let m = mount!();
    let s = open(
        &m.path("same"),
        libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
        0o644,
    )
    .unwrap();
    let mut r = read_async(s.as_raw_fd(), 100);
    r.wait_parked(Duration::from_secs(5));
    let t = Instant::now();
    assert_eq!(errno(write(s.as_raw_fd(), b"x")), libc::EINVAL);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "write waited for the read"
    );
    let c = client(&m.path("same"));
    send(&c, b"for the reader");
    assert_eq!(
        r.result(Duration::from_secs(3)).0.unwrap(),
        b"for the reader"
    );
}
