//! SPEC §3 poll/select/epoll: server POLLIN while messages wait, client
//! POLLOUT unless full, POLLHUP/POLLERR once the slot is gone.

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// poll(2) on another thread; the revents and when it returned.
fn poll_async(fd: i32, events: i16, timeout_ms: i32) -> mpsc::Receiver<(i16, Instant)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = poll1(fd, events, timeout_ms);
        let _ = tx.send((r, Instant::now()));
    });
    rx
}

#[test]
fn server_pollin_only_while_messages_wait() {
    let m = mount!();
    let s = create_slot(&m.path("p"));
    assert_eq!(poll1(s.as_raw_fd(), libc::POLLIN, 0) & libc::POLLIN, 0);
    assert_eq!(poll1(s.as_raw_fd(), libc::POLLIN, 50) & libc::POLLIN, 0);
    let c = client(&m.path("p"));
    send(&c, b"one");
    send(&c, b"two");
    assert_ne!(poll1(s.as_raw_fd(), libc::POLLIN, 0) & libc::POLLIN, 0);
    read(s.as_raw_fd(), 10).unwrap();
    assert_ne!(poll1(s.as_raw_fd(), libc::POLLIN, 0) & libc::POLLIN, 0);
    read(s.as_raw_fd(), 10).unwrap();
    assert_eq!(poll1(s.as_raw_fd(), libc::POLLIN, 0), 0);
}

#[test]
fn blocking_poll_is_woken_by_a_write_from_another_process() {
    let m = mount!();
    let s = create_slot(&m.path("wake"));
    for round in 0..3 {
        let rx = poll_async(s.as_raw_fd(), libc::POLLIN, 10_000);
        // Let the poll register its notification first (if it has not, it
        // would see the message immediately: also fine, but less telling).
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        sh_ok(&m, r#"printf 'from bash' > "$D/wake""#);
        let (rev, at) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("poll not woken");
        println!(
            "round {round}: poll woken {:?} after the writer started",
            at - t
        );
        assert_ne!(rev & libc::POLLIN, 0, "revents {rev:#x}");
        assert!(at - t < Duration::from_secs(2));
        assert_eq!(read(s.as_raw_fd(), 100).unwrap(), b"from bash");
    }
}

#[test]
fn client_pollout_goes_away_when_full_and_comes_back() {
    let m = mount!("quota_messages=1");
    let s = create_slot(&m.path("full"));
    let c = client(&m.path("full"));
    assert_ne!(poll1(c.as_raw_fd(), libc::POLLOUT, 0) & libc::POLLOUT, 0);
    send(&c, b"fills it");
    assert_eq!(poll1(c.as_raw_fd(), libc::POLLOUT, 0) & libc::POLLOUT, 0);
    assert_eq!(errno(write(c.as_raw_fd(), b"x")), libc::ENOBUFS);
    let rx = poll_async(c.as_raw_fd(), libc::POLLOUT, 10_000);
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err(), "POLLOUT while full");
    let t = Instant::now();
    assert_eq!(read(s.as_raw_fd(), 100).unwrap(), b"fills it");
    let (rev, at) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("POLLOUT never came back");
    println!("client POLLOUT back {:?} after the read", at - t);
    assert_ne!(rev & libc::POLLOUT, 0);
    send(&c, b"room again");
}

#[test]
fn client_gets_pollhup_once_the_server_closed() {
    let m = mount!("quota_messages=1");
    let s = create_slot(&m.path("hup"));
    let c = client(&m.path("hup"));
    assert_eq!(
        poll1(c.as_raw_fd(), libc::POLLOUT, 0) & (libc::POLLHUP | libc::POLLERR),
        0
    );
    drop(s);
    let rev = poll1(c.as_raw_fd(), libc::POLLOUT, 0);
    assert_ne!(rev & libc::POLLHUP, 0, "revents {rev:#x}");
    assert_eq!(rev & libc::POLLOUT, 0, "POLLOUT on a dead slot");

    // A poll blocked on a full slot is woken by its server going away.
    let s2 = create_slot(&m.path("h2"));
    let c2 = client(&m.path("h2"));
    send(&c2, b"full");
    let rx = poll_async(c2.as_raw_fd(), libc::POLLOUT, 10_000);
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err(), "POLLOUT while full");
    drop(s2);
    let (rev, _) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("poll not woken by close");
    assert_ne!(rev & (libc::POLLHUP | libc::POLLERR), 0, "revents {rev:#x}");
}

#[test]
fn epoll_and_select_see_the_same() {
    let m = mount!();
    py_ok(
        &m,
        r#"
        s = create("ep")
        c = client("ep")
        ep = select.epoll()
        ep.register(s, select.EPOLLIN)
        assert ep.poll(0) == []
        assert select.select([s], [], [], 0)[0] == []
        os.write(c, b"x")
        evs = ep.poll(1.0)
        assert evs and evs[0][0] == s and evs[0][1] & select.EPOLLIN, evs
        assert select.select([s], [], [], 1.0)[0] == [s]
        assert select.select([], [c], [], 1.0)[1] == [c]
        os.read(s, 10)
        assert ep.poll(0) == []
        "#,
    );
}

#[test]
fn one_thread_serves_two_slots_with_selectors_and_asyncio() {
    let m = mount!();
    let server = spawn(
        Command::new("python3")
            .arg(script("two_slot_server.py"))
            .arg(&m.dir)
            .env("PYTHONUNBUFFERED", "1"),
    );
    let mut server = server;
    let mut out = Lines::new(&mut server);
    out.expect("ready\n", Duration::from_secs(10));
    // Writers in other processes, interleaved.
    sh_ok(
        &m,
        r#"
        for i in 1 2 3 4 5; do
            printf "a$i" > "$D/alpha"; printf "b$i" > "$D/beta"
            printf "c$i" > "$D/gamma"; printf "d$i" > "$D/delta"
        done
        "#,
    );
    let text = out.expect("done\n", Duration::from_secs(10));
    let o = finish(server, Duration::from_secs(5));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("selectors alpha a1 a2 a3 a4 a5"), "{text}");
    assert!(text.contains("selectors beta b1 b2 b3 b4 b5"), "{text}");
    assert!(text.contains("asyncio gamma c1 c2 c3 c4 c5"), "{text}");
    assert!(text.contains("asyncio delta d1 d2 d3 d4 d5"), "{text}");
}
