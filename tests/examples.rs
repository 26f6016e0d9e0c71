//! The example programs in scripts/examples (issue 5), each run against a
//! real mount the way its header says to run it.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(10);

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/examples")
        .join(name)
}

#[track_caller]
fn wait_exists(m: &Mount, slot: &str) {
    assert!(
        wait_until(WAIT, || m.path(slot).exists()),
        "{slot} never appeared"
    );
}

#[track_caller]
fn one_line_error(out: &std::process::Output, prefix: &str) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(prefix), "{err}");
    err
}

/// A chat participant: its stdin to type into, its stdout to read.
struct Participant {
    child: Child,
    typing: Option<ChildStdin>,
    screen: Lines,
}

impl Participant {
    fn join(m: &Mount, name: &str) -> Participant {
        let mut child = Command::new("bash")
            .arg(example("chat.sh"))
            .arg(name)
            .env("MAILSLOT", &m.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start chat.sh");
        let typing = child.stdin.take();
        let screen = Lines::new(&mut child);
        wait_exists(m, &format!("chat/{name}"));
        Participant {
            child,
            typing,
            screen,
        }
    }

    fn say(&mut self, line: &str) {
        let typing = self.typing.as_mut().expect("still chatting");
        writeln!(typing, "{line}").unwrap();
    }

    /// Ctrl-D: the script says goodbye and its slot goes away.
    fn leave(mut self) {
        self.typing = None;
        let out = finish(self.child, WAIT);
        assert!(out.status.success(), "{out:?}");
    }
}

#[test]
fn chat_room_sends_each_line_to_every_other_participant() {
    let m = mount!();
    let mut alice = Participant::join(&m, "alice");
    let mut bob = Participant::join(&m, "bob");
    alice.screen.expect("*** bob joined\n", WAIT);
    alice.say("hello, bob");
    bob.screen.expect("alice: hello, bob\n", WAIT);
    bob.say("hi alice");
    alice.screen.expect("bob: hi alice\n", WAIT);
    bob.leave();
    alice.screen.expect("*** bob left\n", WAIT);
    assert!(
        wait_until(WAIT, || !m.path("chat/bob").exists()),
        "bob's slot outlived him"
    );
    alice.leave();
}

#[test]
fn python_selectors_server_and_client() {
    let m = mount!();
    let server = spawn(
        Command::new("python3")
            .arg(example("server.py"))
            .args(["-n", "3"])
            .arg(m.path("a"))
            .arg(m.path("b")),
    );
    wait_exists(&m, "a");
    wait_exists(&m, "b");
    let client = |slot: &str, messages: &[&str]| {
        run(
            Command::new("python3")
                .arg(example("client.py"))
                .arg(m.path(slot))
                .args(messages),
            WAIT,
        )
    };
    ok(&client("a", &["one"]));
    ok(&client("b", &["two", "three"]));
    let out = finish(server, WAIT);
    assert_eq!(ok(&out), "a: one\nb: two\nb: three\n");
    one_line_error(&client("gone", &["x"]), "client.py: ");
}

#[test]
fn c_client_sends_one_message_per_argument() {
    let m = mount!("max_msg=8");
    let dir = temp_dir("cc");
    let _scratch = Scratch(vec![dir.clone()]);
    let binary = dir.join("client");
    ok(&run(
        Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&binary)
            .arg(example("client.c")),
        Duration::from_secs(60),
    ));
    let server = create_slot(&m.path("c"));
    ok(&run(
        Command::new(&binary).arg(m.path("c")).args(["x", "y z"]),
        WAIT,
    ));
    assert_eq!(read(server.as_raw_fd(), 64).unwrap(), b"x");
    assert_eq!(read(server.as_raw_fd(), 64).unwrap(), b"y z");
    let too_big = run(
        Command::new(&binary).arg(m.path("c")).arg("123456789"),
        WAIT,
    );
    assert!(one_line_error(&too_big, "client: ").contains("maximum"));
    let missing = run(Command::new(&binary).arg(m.path("nope")).arg("x"), WAIT);
    assert!(one_line_error(&missing, "client: ").contains("no such mailslot"));
}

fn messenger(m: &Mount, desktop: Option<(&str, &std::path::Path)>) -> Child {
    let mut cmd = Command::new("python3");
    cmd.arg(example("messenger.py"))
        .args(["-n", "2"])
        .env("MAILSLOT", &m.dir)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    if let Some((display, fake_bin)) = desktop {
        let path = format!("{}:{}", fake_bin.display(), std::env::var("PATH").unwrap());
        cmd.env("DISPLAY", display).env("PATH", path);
    }
    let child = spawn(&mut cmd);
    wait_exists(m, "messngr");
    child
}

/// Sends with messenger-send.py, and a raw NET SEND message in code page
/// 850 (what Windows writes).
fn send_two(m: &Mount) {
    ok(&run(
        Command::new("python3")
            .arg(example("messenger-send.py"))
            .args(["--from", "ALICE", ".", "lunch", "at", "noon?"])
            .env("MAILSLOT", &m.dir),
        WAIT,
    ));
    let windows = client(&m.path("messngr"));
    send(&windows, b"J\x94RG\0BOB\0Gr\x81\xe1e\0");
}

#[test]
fn messenger_shows_net_send_messages_on_the_terminal() {
    let m = mount!();
    let receiver = messenger(&m, None);
    send_two(&m);
    let shown = ok(&finish(receiver, WAIT));
    assert!(shown.contains("Message from ALICE to "), "{shown}");
    assert!(shown.contains("\n\nlunch at noon?\n"), "{shown}");
    assert!(shown.contains("Message from JöRG to BOB on "), "{shown}");
    assert!(shown.contains("\n\nGrüße\n"), "{shown}");
}

#[test]
fn messenger_uses_notify_send_on_a_desktop() {
    let m = mount!();
    let fake_bin = temp_dir("desktop");
    let _scratch = Scratch(vec![fake_bin.clone()]);
    let calls = fake_bin.join("calls");
    let fake = format!(
        "#!/bin/sh\nprintf '%s|' \"$@\" >>'{}'\necho >>'{}'\n",
        calls.display(),
        calls.display()
    );
    let notify_send = fake_bin.join("notify-send");
    std::fs::write(&notify_send, fake).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&notify_send, std::fs::Permissions::from_mode(0o755)).unwrap();
    let receiver = messenger(&m, Some((":99", &fake_bin)));
    send_two(&m);
    assert_eq!(ok(&finish(receiver, WAIT)), "", "nothing on the terminal");
    let calls = std::fs::read_to_string(&calls).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 2, "{calls}");
    assert!(
        lines[0].starts_with("--app-name=Messenger|Message from ALICE to "),
        "{calls}"
    );
    assert!(lines[0].ends_with("|lunch at noon?|"), "{calls}");
    assert_eq!(
        lines[1],
        "--app-name=Messenger|Message from JöRG to BOB|Grüße|"
    );
}
