//! SPEC §3 and §4: messages, limits, timeouts, quotas, st_size and the
//! `user.mailslot.*` extended attributes.

mod common;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::*;

const ATTRS: [&str; 12] = [
    "user.mailslot.max_message_size",
    "user.mailslot.read_timeout_ms",
    "user.mailslot.next_size",
    "user.mailslot.message_count",
    "user.mailslot.queued_bytes",
    "user.mailslot.quota_messages",
    "user.mailslot.quota_bytes",
    "user.mailslot.owner_pid",
    "user.mailslot.received",
    "user.mailslot.read",
    "user.mailslot.dropped",
    "user.mailslot.waiting_readers",
];

fn count(path: &std::path::Path) -> u64 {
    getxattr(path, "user.mailslot.message_count")
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn one_write_is_one_message_exact_bytes_in_order() {
    let m = mount!();
    let s = create_slot(&m.path("fifo"));
    let c = client(&m.path("fifo"));
    let msgs: Vec<Vec<u8>> = vec![
        b"first".to_vec(),
        b"line one\nline two\n".to_vec(),
        vec![0, 1, 2, 0, 255, b'\n', 0],
        b"x".to_vec(),
        (0..5000u32).map(|i| (i * 7 % 251) as u8).collect(),
    ];
    for msg in &msgs {
        send(&c, msg);
    }
    assert_eq!(count(&m.path("fifo")), msgs.len() as u64);
    for msg in &msgs {
        // A buffer far larger than the message still gets just one message.
        assert_eq!(&read(s.as_raw_fd(), 65536).unwrap(), msg);
    }
    assert_eq!(count(&m.path("fifo")), 0);
}

#[test]
fn append_writes_are_whole_messages() {
    let m = mount!();
    let s = create_slot(&m.path("app"));
    let c = client(&m.path("app"));
    send(&c, b"0123456789");
    assert_eq!(stat_size(&m.path("app")).unwrap(), 10);
    let a = open(&m.path("app"), libc::O_WRONLY | libc::O_APPEND, 0).unwrap();
    send(&a, b"hello");
    send(&a, b"world!");
    assert_eq!(read(s.as_raw_fd(), 100).unwrap(), b"0123456789");
    assert_eq!(read(s.as_raw_fd(), 100).unwrap(), b"hello");
    assert_eq!(read(s.as_raw_fd(), 100).unwrap(), b"world!");
}

#[test]
fn default_max_is_64k_and_larger_writes_are_emsgsize_unsplit() {
    let m = mount!();
    let s = create_slot(&m.path("big"));
    let c = client(&m.path("big"));
    let exact: Vec<u8> = (0..65536u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(
        getxattr(&m.path("big"), "user.mailslot.max_message_size").unwrap(),
        "65536"
    );
    for n in [65537usize, 100_000, 1 << 20] {
        let big = vec![b'z'; n];
        assert_eq!(
            errno(write(c.as_raw_fd(), &big)),
            libc::EMSGSIZE,
            "{n} bytes"
        );
        assert_eq!(count(&m.path("big")), 0, "something queued for {n} bytes");
    }
    send(&c, &exact);
    assert_eq!(stat_size(&m.path("big")).unwrap(), 65536);
    let got = read(s.as_raw_fd(), 1 << 20).unwrap();
    assert_eq!(got.len(), 65536);
    assert!(got == exact, "64 KiB message corrupted");
}

#[test]
fn mount_option_max_msg_sets_the_limit() {
    let m = mount!("max_msg=1000");
    let s = create_slot(&m.path("small"));
    let c = client(&m.path("small"));
    assert_eq!(
        getxattr(&m.path("small"), "user.mailslot.max_message_size").unwrap(),
        "1000"
    );
    assert_eq!(errno(write(c.as_raw_fd(), &[1u8; 1001])), libc::EMSGSIZE);
    send(&c, &[2u8; 1000]);
    assert_eq!(read(s.as_raw_fd(), 4096).unwrap(), vec![2u8; 1000]);
    // Size suffixes work.
    let m2 = Mount::new(&["max_msg=2K"]);
    let _s2 = create_slot(&m2.path("k"));
    assert_eq!(
        getxattr(&m2.path("k"), "user.mailslot.max_message_size").unwrap(),
        "2048"
    );
}

#[test]
fn too_small_buffer_is_emsgsize_and_the_message_stays() {
    let m = mount!();
    let s = create_slot(&m.path("buf"));
    let c = client(&m.path("buf"));
    send(&c, b"twelve bytes");
    send(&c, b"next");
    assert_eq!(errno(read(s.as_raw_fd(), 11)), libc::EMSGSIZE);
    assert_eq!(errno(read(s.as_raw_fd(), 1)), libc::EMSGSIZE);
    assert_eq!(stat_size(&m.path("buf")).unwrap(), 12);
    assert_eq!(count(&m.path("buf")), 2);
    assert_eq!(read(s.as_raw_fd(), 12).unwrap(), b"twelve bytes");
    assert_eq!(read(s.as_raw_fd(), 4).unwrap(), b"next");
}

#[test]
fn nonblocking_read_on_empty_is_eagain() {
    let m = mount!();
    let s = open(
        &m.path("nb"),
        libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY | libc::O_NONBLOCK,
        0o644,
    )
    .unwrap();
    let t = Instant::now();
    assert_eq!(errno(read(s.as_raw_fd(), 100)), libc::EAGAIN);
    assert!(t.elapsed() < Duration::from_millis(500));
    let c = client(&m.path("nb"));
    send(&c, b"now");
    assert_eq!(read(s.as_raw_fd(), 100).unwrap(), b"now");
    assert_eq!(errno(read(s.as_raw_fd(), 100)), libc::EAGAIN);
    // Set later through fcntl, too.
    let s2 = create_slot(&m.path("nb2"));
    // SAFETY: plain fcntl on our fd.
    unsafe {
        let fl = libc::fcntl(s2.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(s2.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    assert_eq!(errno(read(s2.as_raw_fd(), 100)), libc::EAGAIN);
}

#[track_caller]
fn assert_times_out(path: &std::path::Path, fd: &std::os::fd::OwnedFd, ms: u64) {
    let t = Instant::now();
    let mut r = read_async(fd.as_raw_fd(), 100);
    let (res, at) = r.result(Duration::from_millis(ms + 5000));
    let elapsed = at - t;
    assert_eq!(errno(res), libc::ETIMEDOUT, "{}", path.display());
    println!("timeout {ms} ms: ETIMEDOUT after {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(ms), "early: {elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(ms + 1500),
        "late: {elapsed:?}"
    );
}

#[test]
fn mount_option_timeout_gives_etimedout() {
    let m = mount!("timeout=300");
    let s = create_slot(&m.path("t"));
    assert_eq!(
        getxattr(&m.path("t"), "user.mailslot.read_timeout_ms").unwrap(),
        "300"
    );
    assert_times_out(&m.path("t"), &s, 300);
    // A message arriving during the wait is delivered, not timed out.
    let mut r = read_async(s.as_raw_fd(), 100);
    r.wait_parked(Duration::from_secs(2));
    let c = client(&m.path("t"));
    send(&c, b"in time");
    assert_eq!(r.result(Duration::from_secs(2)).0.unwrap(), b"in time");
}

#[test]
fn a_read_parked_after_a_quiet_second_still_times_out() {
    // After a second with no deadline the timer thread sleeps without a
    // timeout; the first read parked after that must wake it. Its
    // idleness cannot be observed from outside, hence the plain wait.
    let m = mount!("timeout=200");
    let s = create_slot(&m.path("quiet"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_times_out(&m.path("quiet"), &s, 200);
}

#[test]
fn xattr_timeout_gives_etimedout_and_zero_is_eagain() {
    let m = mount!();
    let s = create_slot(&m.path("x"));
    assert_eq!(
        getxattr(&m.path("x"), "user.mailslot.read_timeout_ms").unwrap(),
        "-1"
    );
    setxattr(&m.path("x"), "user.mailslot.read_timeout_ms", "250").unwrap();
    assert_eq!(
        getxattr(&m.path("x"), "user.mailslot.read_timeout_ms").unwrap(),
        "250"
    );
    assert_times_out(&m.path("x"), &s, 250);
    setxattr(&m.path("x"), "user.mailslot.read_timeout_ms", "0").unwrap();
    let t = Instant::now();
    assert_eq!(errno(read(s.as_raw_fd(), 100)), libc::EAGAIN);
    assert!(t.elapsed() < Duration::from_millis(500));
    // Back to forever: the read parks and is still parked well after.
    setxattr(&m.path("x"), "user.mailslot.read_timeout_ms", "-1").unwrap();
    let mut r = read_async(s.as_raw_fd(), 100);
    r.wait_parked(Duration::from_secs(2));
    assert!(
        r.wait(Duration::from_millis(400)).is_none(),
        "forever read returned"
    );
    let c = client(&m.path("x"));
    send(&c, b"eventually");
    assert_eq!(r.result(Duration::from_secs(2)).0.unwrap(), b"eventually");
}

#[test]
fn mount_option_timeout_zero_is_eagain() {
    let m = mount!("timeout=0");
    let s = create_slot(&m.path("z"));
    let t = Instant::now();
    assert_eq!(errno(read(s.as_raw_fd(), 100)), libc::EAGAIN);
    assert!(t.elapsed() < Duration::from_millis(500));
}

#[test]
fn message_quota_gives_enobufs_at_once_and_keeps_the_queue() {
    let m = mount!("quota_messages=3");
    let s = create_slot(&m.path("q"));
    let c = client(&m.path("q"));
    for i in 0..3u8 {
        send(&c, &[b'0' + i]);
    }
    let t = Instant::now();
    assert_eq!(errno(write(c.as_raw_fd(), b"3")), libc::ENOBUFS);
    assert_eq!(errno(write(c.as_raw_fd(), b"4")), libc::ENOBUFS);
    assert!(t.elapsed() < Duration::from_millis(500), "writer blocked");
    assert_eq!(count(&m.path("q")), 3);
    assert_eq!(read(s.as_raw_fd(), 10).unwrap(), b"0");
    send(&c, b"5");
    for want in [&b"1"[..], b"2", b"5"] {
        assert_eq!(read(s.as_raw_fd(), 10).unwrap(), want);
    }
}

#[test]
fn byte_quota_gives_enobufs_and_keeps_the_queue() {
    let m = mount!("max_msg=100,quota_bytes=100");
    let s = create_slot(&m.path("qb"));
    let c = client(&m.path("qb"));
    assert_eq!(
        getxattr(&m.path("qb"), "user.mailslot.quota_bytes").unwrap(),
        "100"
    );
    send(&c, &[b'a'; 60]);
    assert_eq!(errno(write(c.as_raw_fd(), &[b'b'; 41])), libc::ENOBUFS);
    send(&c, &[b'c'; 40]);
    assert_eq!(errno(write(c.as_raw_fd(), b"d")), libc::ENOBUFS);
    assert_eq!(
        getxattr(&m.path("qb"), "user.mailslot.queued_bytes").unwrap(),
        "100"
    );
    assert_eq!(read(s.as_raw_fd(), 100).unwrap(), vec![b'a'; 60]);
    assert_eq!(read(s.as_raw_fd(), 100).unwrap(), vec![b'c'; 40]);
}

#[test]
fn write_on_server_and_read_on_client_are_refused() {
    let m = mount!();
    let s = open(
        &m.path("rw"),
        libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
        0o644,
    )
    .unwrap();
    assert_eq!(errno(write(s.as_raw_fd(), b"self")), libc::EINVAL);
    assert_eq!(count(&m.path("rw")), 0);
    let c = client(&m.path("rw"));
    let e = errno(read(c.as_raw_fd(), 100));
    assert!(e == libc::EBADF || e == libc::EINVAL, "read on client: {e}");
    // The server handle still reads normally.
    send(&c, b"fine");
    assert_eq!(read(s.as_raw_fd(), 100).unwrap(), b"fine");
}

#[test]
fn several_waiting_readers_are_served_in_arrival_order() {
    let m = mount!();
    let s = create_slot(&m.path("many"));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let mut r = read_async(s.as_raw_fd(), 100);
        // Arrival order is when the daemon parked each one: wait for
        // that, not just for the request to leave the kernel.
        r.wait_parked(Duration::from_secs(5));
        let parked = (readers.len() + 1).to_string();
        assert!(
            wait_until(Duration::from_secs(5), || {
                getxattr(&m.path("many"), "user.mailslot.waiting_readers")
                    .is_ok_and(|n| n == parked)
            }),
            "reader {} never parked",
            readers.len()
        );
        readers.push(r);
    }
    let c = client(&m.path("many"));
    for i in 0..4 {
        send(&c, format!("msg{i}").as_bytes());
    }
    for (i, r) in readers.iter_mut().enumerate() {
        let got = r.result(Duration::from_secs(3)).0.unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            format!("msg{i}"),
            "reader {i}"
        );
    }
}

#[test]
fn st_size_is_the_next_message_size() {
    let m = mount!();
    let s = create_slot(&m.path("sz"));
    let p = m.path("sz");
    assert_eq!(stat_size(&p).unwrap(), 0);
    let c = client(&p);
    send(&c, b"12345");
    send(&c, &[0u8; 1234]);
    assert_eq!(stat_size(&p).unwrap(), 5);
    read(s.as_raw_fd(), 100).unwrap();
    assert_eq!(stat_size(&p).unwrap(), 1234);
    read(s.as_raw_fd(), 2000).unwrap();
    assert_eq!(stat_size(&p).unwrap(), 0);
    // fstat on either handle agrees.
    send(&c, b"abc");
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills the struct we own; the fd is open.
    assert_eq!(unsafe { libc::fstat(c.as_raw_fd(), &mut st) }, 0);
    assert_eq!(st.st_size, 3);
}

#[test]
fn every_xattr_reads_lists_and_sets() {
    let m = mount!("max_msg=2000,timeout=1500,quota_messages=100,quota_bytes=10000");
    let s = create_slot(&m.path("info"));
    let p = m.path("info");
    let pid = std::process::id().to_string();
    let pid = pid.as_str();
    let want_empty = [
        "2000", "1500", "-1", "0", "0", "100", "10000", pid, "0", "0", "0", "0",
    ];
    for (name, want) in ATTRS.iter().zip(want_empty) {
        assert_eq!(getxattr(&p, name).unwrap(), want, "{name} (empty)");
    }
    let c = client(&p);
    send(&c, b"hello");
    send(&c, b"worlds!");
    let want_full = [
        "2000", "1500", "5", "2", "12", "100", "10000", pid, "2", "0", "0", "0",
    ];
    for (name, want) in ATTRS.iter().zip(want_full) {
        assert_eq!(getxattr(&p, name).unwrap(), want, "{name} (2 queued)");
    }
    // Python's listxattr (what getfattr -d -m - uses) lists them all.
    let out = py_ok(
        &m,
        r#"
        names = sorted(os.listxattr(P("info")))
        print(names)
        want = sorted("user.mailslot." + n for n in ("max_message_size", "read_timeout_ms",
            "next_size", "message_count", "queued_bytes", "quota_messages", "quota_bytes",
            "owner_pid", "received", "read", "dropped", "waiting_readers"))
        assert names == want, names
        for n in names:
            os.getxattr(P("info"), n)
        "#,
    );
    assert!(out.contains("user.mailslot.next_size"));

    // The owner sets the settable four, and they take effect.
    setxattr(&p, "user.mailslot.max_message_size", "6").unwrap();
    assert_eq!(getxattr(&p, ATTRS[0]).unwrap(), "6");
    assert_eq!(errno(write(c.as_raw_fd(), b"1234567")), libc::EMSGSIZE);
    send(&c, b"123456");
    setxattr(&p, "user.mailslot.quota_messages", "3").unwrap();
    assert_eq!(errno(write(c.as_raw_fd(), b"x")), libc::ENOBUFS);
    setxattr(&p, "user.mailslot.quota_messages", "50").unwrap();
    setxattr(&p, "user.mailslot.quota_bytes", "19").unwrap();
    assert_eq!(getxattr(&p, ATTRS[6]).unwrap(), "19");
    send(&c, b"1");
    assert_eq!(errno(write(c.as_raw_fd(), b"2")), libc::ENOBUFS);
    setxattr(&p, "user.mailslot.read_timeout_ms", "100").unwrap();
    assert_eq!(getxattr(&p, ATTRS[1]).unwrap(), "100");

    // Bad values: EINVAL, nothing changed.
    for (name, bad) in [
        ("user.mailslot.max_message_size", "abc"),
        ("user.mailslot.max_message_size", "0"),
        ("user.mailslot.max_message_size", "-5"),
        ("user.mailslot.max_message_size", "99999999999"),
        ("user.mailslot.read_timeout_ms", "-2"),
        ("user.mailslot.read_timeout_ms", "soon"),
        ("user.mailslot.quota_messages", "0"),
        ("user.mailslot.quota_messages", "x"),
        ("user.mailslot.quota_bytes", ""),
    ] {
        assert_eq!(
            errno(setxattr(&p, name, bad)),
            libc::EINVAL,
            "{name}={bad:?}"
        );
    }
    assert_eq!(getxattr(&p, ATTRS[0]).unwrap(), "6");
    // Read-only figures cannot be set.
    for name in ATTRS[2..5].iter().chain(&ATTRS[7..]) {
        let e = errno(setxattr(&p, name, "1"));
        assert!(e != libc::ENOSYS && e != 0, "{name}: {e}");
    }

    // Unknown names: ENODATA, never ENOSYS; xattrs keep working afterwards.
    for name in [
        "user.mailslot.nope",
        "user.other",
        "security.capability",
        "trusted.x",
    ] {
        assert_eq!(errno(getxattr(&p, name)), libc::ENODATA, "{name}");
    }
    let e = errno(setxattr(&p, "user.mailslot.nope", "1"));
    assert_ne!(e, libc::ENOSYS);
    assert_eq!(getxattr(&p, ATTRS[3]).unwrap(), "4");
    // A directory has no such attributes, and says so with ENODATA.
    std::fs::create_dir(m.path("d")).unwrap();
    assert_eq!(errno(getxattr(&m.path("d"), ATTRS[0])), libc::ENODATA);
    drop(s);
}

#[test]
fn permissions_are_unix_modes_and_only_the_owner_sets_info() {
    let m = mount!("allow_other");
    py_ok(
        &m,
        r#"
        os.umask(0o022)
        s = create("open", mode=0o666)
        assert os.stat(P("open")).st_mode & 0o777 == 0o644, oct(os.stat(P("open")).st_mode)
        p = create("private", mode=0o600)
        os.umask(0)
        w = create("world", mode=0o622)
        assert os.stat(P("world")).st_mode & 0o777 == 0o622
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.setgid(65534); os.setuid(65534)
                # mode 0600: no client access for others
                assert err(os.open, P("private"), os.O_WRONLY) == errno.EACCES
                # nor may they read its settings or its messages
                e = err(os.getxattr, P("private"), "user.mailslot.max_message_size")
                assert e == errno.EACCES, e
                assert err(os.open, P("private"), os.O_RDONLY) == errno.EACCES
                # nor change its mode or owner
                assert err(os.chmod, P("private"), 0o666) == errno.EPERM
                assert err(os.chown, P("private"), 65534, 65534) == errno.EPERM
                # mode 0644: others may not write either
                assert err(os.open, P("open"), os.O_WRONLY) == errno.EACCES
                # but may read the info (user.* follows read permission)
                assert os.getxattr(P("open"), "user.mailslot.message_count") == b"0"
                # mode 0622: others may send, but not change the info
                c = os.open(P("world"), os.O_WRONLY)
                os.write(c, b"from nobody")
                e = err(os.setxattr, P("world"), "user.mailslot.read_timeout_ms", b"5")
                assert e in (errno.EPERM, errno.EACCES), e
            except BaseException as ex:
                import traceback; traceback.print_exc()
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.read(w, 100) == b"from nobody"
        assert os.getxattr(P("world"), "user.mailslot.read_timeout_ms") == b"-1"
        "#,
    );
}
