//! SPEC §3 "signal to a reader waiting in the file system": the read ends
//! within about 100 ms (EINTR or death) and no message is lost.
//!
//! The kernel sends FUSE_INTERRUPT for every signalled request and the
//! daemon answers a parked read EINTR at once (about 0.2 ms here), in any
//! pid namespace. Bound: the spec says 100 ms; we allow 250 ms (tests run in
//! parallel on 2 cores) and print the figures.

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const SIGNAL_BOUND: Duration = Duration::from_millis(250);

fn python_child(m: &Mount, script: &str) -> std::process::Child {
    spawn(
        Command::new("python3")
            .arg("-c")
            .arg(format!("{PY_PRELUDE}\n{}", dedent(script)))
            .arg(&m.dir)
            .env("PYTHONUNBUFFERED", "1"),
    )
}

#[test]
fn handled_sigint_ends_a_parked_read_promptly_and_later_messages_arrive() {
    let m = mount!();
    let mut child = python_child(
        &m,
        r#"
        s = create("sig")
        class Interrupted(Exception): pass
        def handler(signum, frame): raise Interrupted()
        signal.signal(signal.SIGINT, handler)
        for i in range(3):
            print("ready%d" % i)
            try:
                os.read(s, 100)
                print("unexpected-data")
            except Interrupted:
                print("interrupted%d" % i)
        print("final")
        print("got %r" % os.read(s, 100))
        "#,
    );
    let pid = child.id() as i32;
    let mut out = Lines::new(&mut child);
    let mut figures = Vec::new();
    // Every round goes through FUSE_INTERRUPT: answering it never makes the
    // kernel stop sending them.
    for i in 0..3 {
        out.expect(&format!("ready{i}\n"), Duration::from_secs(5));
        assert!(
            wait_in_fuse(pid, Duration::from_secs(5)),
            "round {i}: never parked"
        );
        let t = Instant::now();
        kill(pid, libc::SIGINT);
        out.expect(&format!("interrupted{i}\n"), Duration::from_secs(3));
        figures.push(t.elapsed());
    }
    println!("handled SIGINT -> read ended after {figures:?}");
    out.expect("final\n", Duration::from_secs(5));
    assert!(wait_in_fuse(pid, Duration::from_secs(5)));
    let c = client(&m.path("sig"));
    send(&c, b"after");
    out.expect("got b'after'", Duration::from_secs(3));
    let o = finish(child, Duration::from_secs(5));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (i, f) in figures.iter().enumerate() {
        assert!(
            *f < SIGNAL_BOUND,
            "round {i}: read ended {f:?} after SIGINT"
        );
    }
}

#[test]
fn sigalrm_that_raises_ends_a_parked_read() {
    let m = mount!();
    let out = py_ok(
        &m,
        r#"
        s = create("alarm")
        class Alarm(Exception): pass
        def on_alarm(signum, frame): raise Alarm()
        signal.signal(signal.SIGALRM, on_alarm)
        t = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        try:
            os.read(s, 100)
            raise SystemExit("read returned")
        except Alarm:
            pass
        took = time.monotonic() - t
        print("SIGALRM at 200 ms: read ended after %.0f ms" % (took * 1000))
        assert took < 0.2 + 0.25, took
        c = client("alarm"); os.write(c, b"kept")
        assert os.read(s, 100) == b"kept"
        "#,
    );
    assert!(out.contains("SIGALRM"));
}

#[test]
fn handled_signal_then_message_loses_nothing() {
    // The handler returns, so Python retries the read (PEP 475): whichever
    // way the race goes, the message written right after the signal must
    // reach that reader.
    let m = mount!();
    let mut child = python_child(
        &m,
        r#"
        s = create("race")
        hits = []
        signal.signal(signal.SIGINT, lambda n, f: hits.append(n))
        for i in range(8):
            print("ready%d" % i)
            print("got %s" % os.read(s, 100).decode())
        print("signals %d" % len(hits))
        "#,
    );
    let pid = child.id() as i32;
    let mut out = Lines::new(&mut child);
    out.expect("ready0\n", Duration::from_secs(5));
    let c = client(&m.path("race"));
    for i in 0..8 {
        if i > 0 {
            out.expect(&format!("ready{i}\n"), Duration::from_secs(5));
        }
        assert!(
            wait_in_fuse(pid, Duration::from_secs(5)),
            "round {i}: never parked"
        );
        kill(pid, libc::SIGINT);
        if i % 2 == 1 {
            // Let the INTERRUPT be answered first on odd rounds.
            std::thread::sleep(Duration::from_millis(150));
        }
        send(&c, format!("m{i}").as_bytes());
        out.expect(&format!("got m{i}\n"), Duration::from_secs(3));
    }
    out.expect("signals 8", Duration::from_secs(3));
    let o = finish(child, Duration::from_secs(5));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn cat_server_dies_promptly_on_sigterm_and_sigint() {
    let m = mount!();
    for (sig, name) in [(libc::SIGTERM, "term"), (libc::SIGINT, "int")] {
        let child = spawn(
            Command::new("bash")
                .arg("-c")
                .arg(format!("exec cat <> \"$D/{name}\""))
                .env("D", &m.dir),
        );
        let pid = child.id() as i32;
        assert!(wait_until(Duration::from_secs(5), || m.path(name).exists()));
        assert!(
            wait_in_fuse(pid, Duration::from_secs(5)),
            "cat never parked"
        );
        let t = Instant::now();
        kill(pid, sig);
        let out = finish(child, Duration::from_secs(3));
        let took = t.elapsed();
        println!("cat killed by signal {sig}: gone after {took:?}");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(sig)
        );
        assert!(took < SIGNAL_BOUND + Duration::from_millis(100), "{took:?}");
        assert!(
            wait_until(Duration::from_secs(1), || !m.path(name).exists()),
            "slot outlived its server"
        );
    }
}

#[test]
fn reader_killed_while_parked_loses_no_message() {
    // The parent keeps the server handle; a forked child reads on the same
    // open file description and is killed while parked; the message sent
    // right after the kill must still be there for the parent.
    let m = mount!();
    let out = py_ok(
        &m,
        r#"
        def in_fuse(pid):
            try:
                w = open("/proc/%d/wchan" % pid).read()
            except OSError:
                return False
            return "fuse" in w or "request_wait_answer" in w
        s = create("keep")
        c = client("keep")
        worst = 0.0
        for i, sig in enumerate([signal.SIGKILL, signal.SIGTERM] * 5):
            pid = os.fork()
            if pid == 0:
                os.read(s, 100)
                os._exit(7)   # would mean it stole a message
            assert wait_for(lambda: in_fuse(pid), 5), "child never parked"
            # Parked in the slot, not just on its way into the daemon.
            assert wait_for(lambda: os.getxattr(P("keep"), "user.mailslot.waiting_readers") == b"1", 5)
            t = time.monotonic()
            os.kill(pid, sig)
            os.write(c, b"msg%d" % i)
            done = wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, 3)
            took = time.monotonic() - t
            assert done, "killed reader did not die"
            worst = max(worst, took)
            assert readable(s, 2000), "message %d lost" % i
            got = os.read(s, 100)
            assert got == b"msg%d" % i, (i, got)
        print("killed parked readers reaped within %.0f ms (worst)" % (worst * 1000))
        assert worst < 0.35, worst
        "#,
    );
    assert!(out.contains("worst"));
}

#[test]
fn rust_thread_read_ends_on_pending_signal_with_eintr() {
    // A thread-directed signal with a handler installed without SA_RESTART:
    // the parked read returns EINTR and the message stays queued.
    let m = mount!();
    extern "C" fn noop(_: libc::c_int) {}
    // SAFETY: installing a no-op handler for SIGUSR1, without SA_RESTART.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = noop as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let s = create_slot(&m.path("usr1"));
    let mut r = read_async(s.as_raw_fd(), 100);
    r.wait_parked(Duration::from_secs(5));
    let t = Instant::now();
    // SAFETY: signal one of our own threads.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), r.tid, libc::SIGUSR1) };
    let (res, at) = r.result(Duration::from_secs(3));
    let took = at - t;
    println!("SIGUSR1 to a parked thread: EINTR after {took:?}");
    assert_eq!(errno(res), libc::EINTR);
    assert!(took < SIGNAL_BOUND, "{took:?}");
    let c = client(&m.path("usr1"));
    send(&c, b"still here");
    assert_eq!(recv(&s, Duration::from_secs(2)), b"still here");
}

#[test]
fn a_reader_in_another_pid_namespace_ends_on_sigint() {
    // As in a container: the kernel's INTERRUPT ends the wait (the /proc
    // scan this replaced never saw such readers signalled).
    if !have_program("unshare", "util-linux") {
        return;
    }
    let m = mount!();
    let script = format!(
        "{PY_PRELUDE}\n{}",
        dedent(
            r#"
            s = create("ns")
            print("ready")
            try:
                os.read(s, 100)
                print("unexpected-data")
            except KeyboardInterrupt:
                print("interrupted")
            "#
        )
    );
    let mut child = spawn(
        Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "python3", "-c", &script])
            .arg(&m.dir)
            .env("PYTHONUNBUFFERED", "1"),
    );
    let unshare = child.id();
    let mut out = Lines::new(&mut child);
    out.expect("ready\n", Duration::from_secs(5));
    let reader = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
        .ok()
        .and_then(|c| c.split_whitespace().next()?.parse::<i32>().ok())
        .expect("the reader inside the namespace");
    assert!(wait_in_fuse(reader, Duration::from_secs(5)), "never parked");
    let t = Instant::now();
    kill(reader, libc::SIGINT);
    out.expect("interrupted\n", Duration::from_secs(3));
    let took = t.elapsed();
    println!("SIGINT to a reader in another pid namespace: read ended after {took:?}");
    let o = finish(child, Duration::from_secs(5));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(took < SIGNAL_BOUND, "{took:?}");
}
