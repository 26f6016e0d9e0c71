//! `mailslotfs status` / `ls` (issue 5): every slot with its owner pid,
//! queue and totals, as a table and as JSON, from the `user.mailslot.*`
//! attributes.

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use common::*;

fn status(args: &[&str]) -> std::process::Output {
    run(Command::new(BIN).args(args), Duration::from_secs(10))
}

#[test]
fn status_lists_every_slot_with_owner_queue_and_totals() {
    let m = mount!("max_msg=100,quota_messages=2,timeout=250");
    let dir = m.dir.to_str().unwrap();
    // The first line names the transport the mount runs on.
    let transport = getxattr(&m.dir, "user.mailslot.transport").unwrap();
    assert!(["classic", "io_uring"].contains(&transport.as_str()));
    let heading = format!("transport: {transport}\n");
    // The mount's entries, memory, ceilings and refusals follow the slots.
    let empty = ok(&status(&["status", dir]));
    let (slots, limits) = empty.split_once("\nlimits:\n").expect("a limits section");
    assert_eq!(slots, format!("{heading}no mailslots\n"));
    assert!(limits.contains("  refused_user_entries  0\n"), "{limits}");

    std::fs::create_dir(m.path("app")).unwrap();
    let inbox = create_slot(&m.path("app/inbox"));
    let writer = client(&m.path("app/inbox"));
    send(&writer, b"first");
    send(&writer, b"second!");
    assert_eq!(errno(write(writer.as_raw_fd(), b"x")), libc::ENOBUFS);
    assert_eq!(read(inbox.as_raw_fd(), 100).unwrap(), b"first");
    // A slot served by another process: that process is its owner.
    let mut owner = Command::new("python3")
        .arg("-c")
        .arg(
            "import os,sys; os.open(sys.argv[1], os.O_CREAT|os.O_RDONLY); \
             print(os.getpid(), flush=True); sys.stdin.read()",
        )
        .arg(m.path("other"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start python3");
    let owner_pid = read_until(
        owner.stdout.as_mut().unwrap(),
        "\n",
        Duration::from_secs(10),
    );
    let owner_pid = owner_pid.trim();

    let table = ok(&status(&["ls", dir]));
    let lines: Vec<Vec<&str>> = table
        .strip_prefix(&heading)
        .expect("the transport first")
        .split("\nlimits:\n")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let me = std::process::id().to_string();
    assert_eq!(
        lines,
        [
            vec![
                "SLOT", "PID", "QUEUED", "BYTES", "MAX", "TIMEOUT", "RECEIVED", "READ", "DROPPED"
            ],
            vec!["app/inbox", &me, "1", "7", "100", "250ms", "2", "1", "1"],
            vec!["other", owner_pid, "0", "0", "100", "250ms", "0", "0", "0"],
        ],
        "{table}"
    );

    let json = ok(&status(&["status", "--json", &format!("{dir}/app")]));
    assert!(
        json.contains(&format!("\"transport\":\"{transport}\"")),
        "{json}"
    );
    let checked = ok(&run_with_input(
        Command::new("python3").arg("-c").arg(
            "import json,sys; s=json.load(sys.stdin); [slot]=s['slots']; \
             print(s['mount'], slot['path'], slot['owner_pid'], slot['message_count'], \
             slot['queued_bytes'], slot['read_timeout_ms'], slot['received'], slot['read'], \
             slot['dropped'], slot['max_message_size'], slot['quota_messages'])",
        ),
        Some(json.as_bytes()),
        Duration::from_secs(10),
    ));
    assert_eq!(
        checked,
        format!("{dir}/app inbox {me} 1 7 250 2 1 1 100 2\n")
    );
    drop(owner.stdin.take());
    let _ = finish(owner, Duration::from_secs(10));
}

#[test]
fn status_of_something_else_is_a_one_line_error() {
    for (dir, why) in [
        ("/proc", "not a mailslotfs mount"),
        ("/nonexistent-dir", "no such directory"),
    ] {
        let out = status(&["status", dir]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err, format!("mailslotfs: {dir}: {why}\n"));
    }
}

#[test]
fn status_shows_the_bridge_when_it_runs() {
    // A bridge on loopback only: the one datagram goes to 127.255.255.255.
    if !fuse_ok() {
        return;
    }
    let m = Mount::loopback_bridge("bridge-status", 0, "statushost", &[], &[]);
    let dir = m.dir.to_str().unwrap();
    let inbox = create_slot(&m.path("chat"));
    let everyone = open(
        &m.path(".net/*/chat"),
        libc::O_WRONLY | libc::O_CREAT,
        0o644,
    )
    .expect("open .net/*/chat");
    send(&everyone, b"to the domain");
    assert_eq!(recv(&inbox, Duration::from_secs(5)), b"to the domain");

    let table = ok(&status(&["status", dir]));
    let bridge: Vec<Vec<&str>> = table
        .split_once("\nbridge:\n")
        .expect("a bridge section")
        .1
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        bridge.contains(&vec!["netbios_name", "STATUSHOST"]),
        "{table}"
    );
    assert!(bridge.contains(&vec!["sent", "1"]), "{table}");
    let json = ok(&status(&["status", "--json", dir]));
    assert!(
        json.contains(r#""bridge":{"netbios_name":"STATUSHOST","#) && json.contains(r#""sent":1,"#),
        "{json}"
    );
    // Without a bridge there is no bridge section.
    let plain = mount!();
    let table = ok(&status(&["status", plain.dir.to_str().unwrap()]));
    assert!(!table.contains("bridge"), "{table}");
}
