//! The `serve`, `send` and `info` helpers against a real mount.

mod common;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn serve(m: &Mount, slot: &str, args: &[&str]) -> std::process::Child {
    spawn(Command::new(BIN).arg("serve").arg(m.path(slot)).args(args))
}

fn send_cmd(m: &Mount, slot: &str, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    run_with_input(
        Command::new(BIN).arg("send").arg(m.path(slot)).args(args),
        stdin,
        Duration::from_secs(10),
    )
}

#[track_caller]
fn wait_slot(m: &Mount, slot: &str) {
    assert!(
        wait_until(Duration::from_secs(5), || m.path(slot).exists()),
        "serve never created {slot}"
    );
}

#[test]
fn serve_prints_lines_and_stops_after_count() {
    let m = mount!();
    let child = serve(&m, "lines", &["-n", "3"]);
    wait_slot(&m, "lines");
    let out = send_cmd(&m, "lines", &["hello", "with\nnewline\n", "third"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = finish(child, Duration::from_secs(5));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello\nwith\nnewline\nthird\n"
    );
    assert!(
        wait_until(Duration::from_secs(2), || !m.path("lines").exists()),
        "slot outlived serve"
    );
}

#[test]
fn serve_timeout_gives_up() {
    let m = mount!();
    // Without a count: a quiet exit 0 after the timeout.
    let t = Instant::now();
    let o = finish(serve(&m, "quiet", &["-t", "300"]), Duration::from_secs(5));
    let took = t.elapsed();
    println!("serve -t 300 gave up after {took:?}");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // With a count not reached: a one-line error, non-zero.
    let child = serve(&m, "short", &["-n", "2", "-t", "300"]);
    wait_slot(&m, "short");
    let c = client(&m.path("short"));
    send(&c, b"only one");
    let o = finish(child, Duration::from_secs(5));
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "only one\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("mailslotfs: "), "{err}");
}

#[test]
fn serve_netstring_keeps_binary_messages_apart() {
    let m = mount!();
    let child = serve(&m, "bin", &["-n", "4", "--framing", "netstring"]);
    wait_slot(&m, "bin");
    let c = client(&m.path("bin"));
    let msgs: [&[u8]; 4] = [b"a\nb", b"\0\0", b"x,y:z", b"\n"];
    for msg in msgs {
        send(&c, msg);
    }
    let o = finish(child, Duration::from_secs(5));
    assert!(o.status.success());
    assert_eq!(o.stdout, b"3:a\nb,2:\0\0,5:x,y:z,1:\n,".to_vec());
}

#[test]
fn serve_nul_and_raw_framing() {
    let m = mount!();
    for (framing, want) in [("nul", &b"one\0two\n\0"[..]), ("raw", &b"onetwo\n"[..])] {
        let name = format!("f{framing}");
        let child = serve(&m, &name, &["-n", "2", "--framing", framing]);
        wait_slot(&m, &name);
        let c = client(&m.path(&name));
        send(&c, b"one");
        send(&c, b"two\n");
        let o = finish(child, Duration::from_secs(5));
        assert!(o.status.success());
        assert_eq!(o.stdout, want, "{framing}");
    }
}

#[test]
fn serve_refuses_an_existing_slot() {
    let m = mount!();
    let _s = create_slot(&m.path("taken"));
    let o = finish(serve(&m, "taken", &[]), Duration::from_secs(5));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("mailslotfs: "), "{err}");
}

#[test]
fn send_args_stdin_lines_and_whole() {
    let m = mount!();
    let s = create_slot(&m.path("in"));
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ok(send_cmd(&m, "in", &["one", "two words"], None));
    ok(send_cmd(&m, "IN", &[], Some(b"line a\nline b\n")));
    ok(send_cmd(&m, "in", &["--whole"], Some(b"all\nof\nit\n")));
    let mut got = Vec::new();
    while poll1(s.as_raw_fd(), libc::POLLIN, 0) != 0 {
        got.push(String::from_utf8(read(s.as_raw_fd(), 1000).unwrap()).unwrap());
    }
    assert_eq!(
        got,
        ["one", "two words", "line a", "line b", "all\nof\nit\n"],
        "messages as received"
    );
}

#[test]
fn send_to_a_missing_slot_is_a_one_line_error() {
    let m = mount!();
    let o = send_cmd(&m, "nobody", &["hi"], None);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("mailslotfs: "), "{err}");
    assert!(err.contains("nobody"), "{err}");
    assert!(!m.path("nobody").exists(), "send created a slot");
}

#[test]
fn send_too_big_and_full_are_one_line_errors() {
    let m = mount!("max_msg=10,quota_messages=1,quota_bytes=10");
    let _s = create_slot(&m.path("tight"));
    for (args, input) in [(&["0123456789x"][..], None), (&["ok", "full"][..], None)] {
        let o = send_cmd(&m, "tight", args, input);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("mailslotfs: "), "{err}");
    }
}

#[test]
fn info_prints_the_figures() {
    let m = mount!("max_msg=4000,quota_messages=9,quota_bytes=5000");
    let _s = create_slot(&m.path("i"));
    let c = client(&m.path("i"));
    send(&c, b"abc");
    send(&c, b"defgh");
    let o = run(
        Command::new(BIN).arg("info").arg(m.path("i")),
        Duration::from_secs(5),
    );
    let out = ok(&o);
    for line in [
        "max_message_size: 4000",
        "read_timeout_ms: -1",
        "next_size: 3",
        "message_count: 2",
        "queued_bytes: 8",
        "quota_messages: 9",
        "quota_bytes: 5000",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing {line:?} in:\n{out}"
        );
    }
    let o = run(
        Command::new(BIN).arg("info").arg(m.path("none")),
        Duration::from_secs(5),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("mailslotfs: "), "{err}");
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        &["--help"][..],
        &["mount", "--help"],
        &["serve", "--help"],
        &["send", "--help"],
        &["info", "--help"],
    ] {
        let o = run(Command::new(BIN).args(sub), Duration::from_secs(5));
        assert!(o.status.success(), "{sub:?}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Usage"), "{sub:?}: {text}");
    }
}

/// Usage errors end like every other error a user causes: one line
/// naming what and why, and exit 1 (not clap's exit 2 with its usage).
#[test]
fn usage_errors_are_one_line_and_exit_1() {
    let scratch = temp_dir("no-such-mount");
    let _scratch = Scratch(vec![scratch.clone()]);
    let missing = scratch.join("missing/x");
    let missing = missing.to_str().unwrap();
    // A plain directory, on no mailslotfs mount: nothing may be left in it.
    std::fs::create_dir_all(&scratch).unwrap();
    let elsewhere = scratch.join("plain");
    let elsewhere = elsewhere.to_str().unwrap();
    for (args, want) in [
        (
            &["mount", "--bogus", "/tmp"][..],
            "mailslotfs: unexpected argument '--bogus' found (see mailslotfs mount --help)"
                .to_owned(),
        ),
        (
            &["frob"],
            "mailslotfs: unrecognized subcommand 'frob' (see mailslotfs --help)".to_owned(),
        ),
        (
            &["completions", "tcsh"],
            "mailslotfs: invalid value 'tcsh' for '<SHELL>' [possible values: bash, elvish, \
             fish, powershell, zsh] (see mailslotfs completions --help)"
                .to_owned(),
        ),
        (
            &["serve", "-n", "many", "/tmp/x"],
            "mailslotfs: invalid value 'many' for '--count <COUNT>': invalid digit found in \
             string (see mailslotfs serve --help)"
                .to_owned(),
        ),
        (
            &[],
            "mailslotfs: no command given (see mailslotfs --help)".to_owned(),
        ),
        // An error from the system reads like the others: no "(os error 2)".
        (
            &["serve", missing],
            format!("mailslotfs: {missing}: cannot create the mailslot: No such file or directory"),
        ),
        (
            &["serve", "-t", "100", elsewhere],
            format!("mailslotfs: {elsewhere}: not on a mailslotfs mount"),
        ),
    ] {
        let o = run(Command::new(BIN).args(args), CMD_TIMEOUT);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), want + "\n", "{args:?}");
    }
    assert!(
        !Path::new(elsewhere).exists(),
        "serve left a plain file behind"
    );
    for args in [&["--help"][..], &["--version"], &["help", "mount"]] {
        let o = run(Command::new(BIN).args(args), CMD_TIMEOUT);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(!o.stdout.is_empty() && o.stderr.is_empty(), "{args:?}");
    }
}
