//! SPEC §1 and §2: the tree, server and client roles, and a slot's lifetime.

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn cat_rw_is_a_server_and_echo_sends_plain_and_append() {
    let m = mount!();
    let mut child = spawn(
        Command::new("bash")
            .arg("-c")
            .arg("exec cat <> \"$D/chat\"")
            .env("D", &m.dir),
    );
    assert!(
        wait_until(Duration::from_secs(5), || m.path("chat").exists()),
        "cat <> did not create the slot"
    );
    sh_ok(&m, r#"echo hi > "$D/chat" && echo there >> "$D/chat""#);
    let mut stdout = child.stdout.take().unwrap();
    let got = read_until(&mut stdout, "there\n", Duration::from_secs(5));
    assert_eq!(got, "hi\nthere\n");
    kill(child.id() as i32, libc::SIGTERM);
    let out = finish(child, Duration::from_secs(5));
    assert!(!out.status.success());
    assert!(
        wait_until(Duration::from_secs(2), || !m.path("chat").exists()),
        "slot outlived its cat server"
    );
}

#[test]
fn clients_cannot_create_slots() {
    let m = mount!();
    let out = bash(&m.dir, r#"echo hi > "$D/nope""#, CMD_TIMEOUT);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No such file"), "{err}");
    let out = bash(&m.dir, r#"touch "$D/nope""#, CMD_TIMEOUT);
    assert!(!out.status.success(), "touch created a slot");
    py_ok(
        &m,
        r#"
        assert err(os.open, P("nope"), os.O_WRONLY | os.O_CREAT, 0o644) == errno.ENOENT
        assert err(os.open, P("nope"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) == errno.ENOENT
        assert err(os.open, P("nope"), os.O_WRONLY) == errno.ENOENT
        assert os.listdir(D) == [], os.listdir(D)
        "#,
    );
}

#[test]
fn create_exclusive_on_existing_is_eexist_and_read_access_is_eacces() {
    let m = mount!();
    py_ok(
        &m,
        r#"
        s = create("slot")
        for flags in (os.O_RDONLY, os.O_RDWR, os.O_WRONLY):
            assert err(os.open, P("slot"), os.O_CREAT | os.O_EXCL | flags, 0o644) == errno.EEXIST
        assert err(os.open, P("slot"), os.O_RDONLY) == errno.EACCES
        assert err(os.open, P("slot"), os.O_RDWR) == errno.EACCES
        assert err(os.open, P("slot"), os.O_RDWR | os.O_CREAT, 0o644) == errno.EACCES
        c = client("slot")   # write-only: a client
        os.write(c, b"still one server")
        assert os.read(s, 100) == b"still one server"
        "#,
    );
}

#[test]
fn names_are_case_insensitive_and_keep_the_creators_spelling() {
    let m = mount!();
    py_ok(
        &m,
        r#"
        s = create("ChatRoom")
        for spelling in ("chatroom", "CHATROOM", "cHaTrOoM"):
            c = client(spelling)
            os.write(c, spelling.encode())
            os.close(c)
        assert [os.read(s, 100) for _ in range(3)] == [b"chatroom", b"CHATROOM", b"cHaTrOoM"]
        assert os.listdir(D) == ["ChatRoom"], os.listdir(D)
        assert err(create, "CHATROOM") == errno.EEXIST
        assert os.stat(P("chatroom")).st_ino == os.stat(P("ChatRoom")).st_ino
        "#,
    );
    let _held = create_slot(&m.path("MixedCase"));
    let ls = sh_ok(&m, r#"ls "$D" && cat /dev/null > "$D/MIXEDCASE""#);
    assert_eq!(ls.trim(), "MixedCase");
}

#[test]
fn directories_hold_slots_and_refuse_rmdir_while_slots_live() {
    let m = mount!();
    py_ok(
        &m,
        r#"
        os.mkdir(P("myapp"))
        os.mkdir(P("myapp/deep"))
        assert err(os.mkdir, P("myapp")) == errno.EEXIST
        s = create("myapp/deep/finance")
        c = client("MYAPP/Deep/finance")
        os.write(c, b"nested")
        assert os.read(s, 100) == b"nested"
        assert sorted(os.listdir(P("myapp"))) == ["deep"]
        assert os.listdir(P("myapp/deep")) == ["finance"]
        assert err(os.rmdir, P("myapp/deep")) == errno.ENOTEMPTY
        assert err(os.rmdir, P("myapp")) == errno.ENOTEMPTY
        assert err(create, "nodir/slot") == errno.ENOENT
        os.close(c)
        os.close(s)
        assert wait_for(lambda: not exists("myapp/deep/finance"))
        os.rmdir(P("myapp/deep"))
        os.rmdir(P("myapp"))
        assert os.listdir(D) == []
        "#,
    );
}

/// Names cannot escape the mount or smuggle in a separator: `..` is the
/// kernel's to resolve (the daemon never takes it as a name), a backslash
/// (the Windows separator), non-UTF-8 bytes and over-long names are clear
/// errors, and a NUL cannot even be passed to the kernel.
#[test]
fn names_cannot_escape_the_mount() {
    let m = mount!();
    py_ok(
        &m,
        r#"
        os.mkdir(P("d"))
        s = create("d/inner")
        assert os.path.samefile(P("d/../d/inner"), P("d/inner"))
        assert os.stat(P("..")).st_ino != os.stat(D).st_ino
        assert err(os.open, P("a\\..\\b"), os.O_RDWR | os.O_CREAT) == errno.EINVAL
        assert err(os.mkdir, P("..\\up")) == errno.EINVAL
        assert err(os.open, os.fsencode(D) + b"/caf\xe9", os.O_RDWR | os.O_CREAT) == errno.EINVAL
        assert err(os.open, P("x" * 256), os.O_RDWR | os.O_CREAT) == errno.ENAMETOOLONG
        os.close(create("x" * 255))
        try:
            os.open(P("nul\0byte"), os.O_RDWR | os.O_CREAT)
            raise AssertionError("a NUL reached the kernel")
        except ValueError:
            pass
        assert sorted(os.listdir(D)) == ["d"]
        assert os.listdir(P("d")) == ["inner"]
        "#,
    );
}

#[test]
fn slots_cannot_be_unlinked_renamed_or_linked() {
    let m = mount!();
    py_ok(
        &m,
        r#"
        s = create("fixed")
        os.mkdir(P("dir"))
        assert err(os.unlink, P("fixed")) == errno.EPERM
        assert err(os.rename, P("fixed"), P("moved")) == errno.EPERM
        assert err(os.rename, P("fixed"), P("dir/fixed")) == errno.EPERM
        assert err(os.link, P("fixed"), P("alias")) == errno.EPERM
        assert sorted(os.listdir(D)) == ["dir", "fixed"], os.listdir(D)
        "#,
    );
    let _held = create_slot(&m.path("held"));
    let out = bash(&m.dir, r#"rm -f "$D/held""#, CMD_TIMEOUT);
    assert!(!out.status.success(), "rm -f removed a live slot");
    assert!(m.path("held").exists());
}

#[test]
fn slot_disappears_when_its_server_closes() {
    let m = mount!();
    let s = create_slot(&m.path("brief"));
    let c = client(&m.path("brief"));
    send(&c, b"unread");
    assert!(m.path("brief").exists());
    drop(s);
    // At once: no waiting for a background release.
    assert_eq!(errno(std::fs::metadata(m.path("brief"))), libc::ENOENT);
    assert_eq!(errno(write(c.as_raw_fd(), b"late")), libc::EPIPE);
    // The name is free for a new server at once.
    drop(create_slot(&m.path("brief")));
}

#[test]
fn fresh_slot_after_recreate_is_empty() {
    let m = mount!();
    let s = create_slot(&m.path("reuse"));
    let c = client(&m.path("reuse"));
    send(&c, b"old message");
    drop(s);
    drop(c);
    let s2 = open(
        &m.path("reuse"),
        libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY | libc::O_NONBLOCK,
        0o644,
    )
    .expect("recreate");
    assert_eq!(errno(read(s2.as_raw_fd(), 100)), libc::EAGAIN);
}

#[test]
fn create_close_create_2000_times_never_eexist() {
    let m = mount!();
    let out = py_ok(
        &m,
        r#"
        t0 = time.monotonic()
        for i in range(2000):
            fd = os.open(P("loop"), os.O_CREAT | os.O_EXCL | os.O_RDONLY, 0o600)
            os.close(fd)
        t1 = time.monotonic()
        for i in range(2000):
            fd = os.open(P("loop2"), os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
            assert not exists("loop2"), i
        t2 = time.monotonic()
        print("O_EXCL loop %.2fs, O_CREAT|O_RDWR loop %.2fs" % (t1 - t0, t2 - t1))
        "#,
    );
    assert!(out.contains("loop"));
}

#[test]
fn dup_and_fork_share_the_server_handle() {
    let m = mount!();
    py_ok(
        &m,
        r#"
        # dup: the slot lives until the last copy closes
        s = create("duped")
        s2 = os.dup(s)
        os.close(s)
        assert exists("duped")
        c = client("duped"); os.write(c, b"via dup"); os.close(c)
        assert os.read(s2, 100) == b"via dup"
        os.close(s2)
        assert not exists("duped")

        # fork: the child's copy keeps it alive after the parent closes
        s = create("forked")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(w)
                os.read(r, 1)              # wait until the parent closed its copy
                msg = os.read(s, 100)      # the child can still read as server
                os._exit(0 if msg == b"to the child" else 3)
            except BaseException:
                os._exit(4)
        os.close(r)
        os.close(s)
        assert exists("forked"), "slot died while the child still held it"
        c = client("forked"); os.write(c, b"to the child")
        os.write(w, b"x")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert wait_for(lambda: not exists("forked"), 2), "slot outlived the last holder"
        assert err(os.write, c, b"x") == errno.EPIPE
        "#,
    );
}

#[test]
fn clients_get_epipe_after_the_server_closed() {
    let m = mount!();
    let s = create_slot(&m.path("gone"));
    let c1 = client(&m.path("gone"));
    let c2 = client(&m.path("gone"));
    send(&c1, b"ok");
    drop(s);
    assert_eq!(errno(write(c1.as_raw_fd(), b"x")), libc::EPIPE);
    assert_eq!(errno(write(c2.as_raw_fd(), b"y")), libc::EPIPE);
    // A new server with the same name does not revive old client handles.
    let _s2 = create_slot(&m.path("gone"));
    assert_eq!(errno(write(c1.as_raw_fd(), b"z")), libc::EPIPE);
}

#[test]
fn server_process_exit_or_kill_removes_the_slot() {
    let m = mount!();
    // Normal exit without closing.
    py_ok(&m, r#"create("exiting"); sys.exit(0)"#);
    assert!(
        wait_until(Duration::from_secs(2), || !m.path("exiting").exists()),
        "slot outlived its exited server"
    );
    // SIGKILL while parked in a read (the read is answered, the slot dies).
    let child = spawn(
        Command::new("python3")
            .arg("-c")
            .arg("import os,sys; fd=os.open(sys.argv[1], os.O_CREAT|os.O_EXCL|os.O_RDONLY, 0o644); print('ready', flush=True); os.read(fd, 100)")
            .arg(m.path("killed")),
    );
    let pid = child.id() as i32;
    assert!(wait_until(Duration::from_secs(5), || m
        .path("killed")
        .exists()));
    assert!(
        wait_in_fuse(pid, Duration::from_secs(5)),
        "reader never parked"
    );
    kill(pid, libc::SIGKILL);
    let out = finish(child, Duration::from_secs(3));
    assert_eq!(out.status.code(), None, "not killed");
    assert!(
        wait_until(Duration::from_secs(2), || !m.path("killed").exists()),
        "slot outlived its killed server"
    );
}

#[test]
fn a_child_of_the_server_opens_the_slot_without_waiting() {
    // The child's exec drops its inherited close-on-exec copy of the server
    // handle (a FLUSH from the child). That must not make the child's own
    // open wait for a release that will never come. Best of 5, so that a
    // busy machine cannot fake a pass or a failure.
    let m = mount!();
    let out = py_ok(
        &m,
        r#"
        import subprocess
        srv = create("kid")
        def child_echo():
            t = time.monotonic()
            subprocess.run(["bash", "-c", 'echo hi > "$0"', P("kid")], check=True)
            return time.monotonic() - t
        best = min(child_echo() for _ in range(5))
        for _ in range(5):
            assert os.read(srv, 100) == b"hi\n"
        print(round(best * 1000))
        "#,
    );
    let best_ms: u64 = out.trim().parse().expect("milliseconds");
    assert!(best_ms < 60, "a child's echo took {best_ms} ms at best");
}
