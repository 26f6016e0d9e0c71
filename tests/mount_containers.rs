//! Issue 12: sharing a mailslot mount with containers. A server in one set
//! of namespaces (user with remapped ids, mount, pid, network — what a
//! container runtime makes, here by tests/scripts/container.py) and clients
//! in another reach each other through a bind mount of the host's mount, and
//! a host-side remount reaches containers already running.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Root inside the server's container is this uid outside, as with a
/// runtime's user-namespace remapping; the clients' container uses another.
const SERVER_IDS: u32 = 100_000;
const CLIENT_IDS: u32 = 200_000;

fn container(ids: u32, share: &Path, inside: &Path) -> Command {
    let mut c = Command::new("python3");
    c.arg(script("container.py"))
        .arg(ids.to_string())
        .arg(share)
        .arg(inside)
        .env("PYTHONUNBUFFERED", "1");
    c
}

/// A directory that is a shared mount of its own, as `/` is on a systemd
/// host: mounts made below it later propagate to the containers' copies.
fn shared_dir(tag: &str) -> PathBuf {
    let dir = temp_dir(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    sh_root(&format!("mount --bind {d} {d} && mount --make-shared {d}"));
    dir
}

#[track_caller]
fn sh_root(script: &str) {
    ok(&run(
        Command::new("sh").arg("-c").arg(script),
        Duration::from_secs(10),
    ));
}

/// Runs one client command in a fresh client container.
fn client_in_container(share: &Path, inside: &Path, script: &str) -> std::process::Output {
    run(
        container(CLIENT_IDS, share, inside)
            .arg("sh")
            .arg("-c")
            .arg(script),
        Duration::from_secs(20),
    )
}

/// A client container started before a remount, waiting for a line to
/// write into `slot` (a path inside it) once the new mount is there.
struct Watcher(std::process::Child);

impl Watcher {
    fn start(share: &Path, inside: &Path, slot: &Path) -> Watcher {
        let mut child = container(CLIENT_IDS, share, inside)
            .args([
                "sh",
                "-c",
                "echo started; read line; echo $line > \"$0\"",
                slot.to_str().unwrap(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the watching container");
        Lines::new(&mut child).expect("started\n", Duration::from_secs(10));
        Watcher(child)
    }

    /// Has the container write `line`, which `server` must receive.
    fn sends(mut self, line: &str, server: &std::os::fd::OwnedFd) {
        use std::io::Write;
        let mut stdin = self.0.stdin.take().expect("piped stdin");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        drop(stdin);
        let o = finish(self.0, Duration::from_secs(10));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            recv(server, Duration::from_secs(5)),
            format!("{line}\n").as_bytes()
        );
    }
}

#[test]
fn containers_share_slots_through_a_bind_mount_and_see_a_remount() {
    if !root_with_fuse("containers (namespaces, mounts)") {
        return;
    }
    let share = shared_dir("share");
    let inside = temp_dir("inside");
    std::fs::create_dir_all(&inside).unwrap();
    let _scratch = Scratch(vec![inside.clone(), share.clone()]);
    let host_dir = share.join("mailslot");
    std::fs::create_dir_all(&host_dir).unwrap();
    let mount = Mount::foreground_with(host_dir.clone(), &[], &[], &["allow_other"]);
    let slot_inside = inside.join("mailslot/chat");

    // The server: its own user, mount, pid and network namespaces; the slot
    // is writable by others (Windows' default), so other users may send.
    let mut server = spawn(container(SERVER_IDS, &share, &inside).args([
        "python3",
        "-c",
        &format!(
            "import os\nos.umask(0)\n\
                 fd = os.open({slot:?}, os.O_CREAT | os.O_RDONLY, 0o622)\n\
                 print('ready', os.getpid(), flush=True)\n\
                 while True: print(os.read(fd, 100), flush=True)\n",
            slot = slot_inside.to_str().unwrap()
        ),
    ]));
    let mut out = Lines::new(&mut server);
    let ready = out.expect("\n", Duration::from_secs(10));
    assert_eq!(
        ready.trim(),
        "ready 1",
        "the server is pid 1 of its namespace"
    );
    // On the host the slot belongs to the remapped uid, and its owner pid is
    // the host's pid of that container's pid 1.
    let on_host = host_dir.join("chat");
    assert_eq!(std::fs::metadata(&on_host).unwrap().uid(), SERVER_IDS);
    let owner: i32 = getxattr(&on_host, "user.mailslot.owner_pid")
        .unwrap()
        .parse()
        .unwrap();
    let nspid = std::fs::read_to_string(format!("/proc/{owner}/status")).unwrap();
    assert!(
        nspid
            .lines()
            .any(|l| l.starts_with("NSpid:") && l.ends_with("\t1")),
        "owner {owner} is not pid 1 of a namespace: {nspid}"
    );

    // A client in another container (other ids, other namespaces).
    let sent = client_in_container(
        &share,
        &inside,
        &format!("echo from-another-container > {}", slot_inside.display()),
    );
    ok(&sent);
    out.expect("b'from-another-container\\n'", Duration::from_secs(5));
    // And one on the host.
    send(&client(&on_host), b"from the host");
    out.expect("b'from the host'", Duration::from_secs(5));
    // Clients cannot create: the name belongs to the server.
    let refused = client_in_container(
        &share,
        &inside,
        &format!("echo x > {}/mailslot/nobody-serves-this", inside.display()),
    );
    assert!(!refused.status.success(), "a client created a slot");

    // `docker kill`: the server dies, its slot goes with it.
    kill(server.id() as i32, libc::SIGKILL);
    let _ = server.wait();
    assert!(
        wait_until(Duration::from_secs(5), || !on_host.exists()),
        "the killed container's slot is still there"
    );

    // The daemon restarts on the host: a container started before sees the
    // new mount, because its copy of the shared directory is a slave of it.
    let watcher = Watcher::start(&share, &inside, &inside.join("mailslot/again"));
    drop(mount);
    std::fs::create_dir_all(&host_dir).unwrap();
    let remounted = Mount::foreground_with(host_dir.clone(), &[], &[], &["allow_other"]);
    let server = open_slot(&remounted.path("again"));
    watcher.sends("after-the-remount", &server);
}

#[test]
fn without_allow_other_a_container_cannot_see_in() {
    if !root_with_fuse("containers (namespaces, mounts)") {
        return;
    }
    let share = shared_dir("share-private");
    let inside = temp_dir("inside-private");
    std::fs::create_dir_all(&inside).unwrap();
    let _scratch = Scratch(vec![inside.clone(), share.clone()]);
    let host_dir = share.join("mailslot");
    std::fs::create_dir_all(&host_dir).unwrap();
    let _mount = Mount::foreground_with(host_dir, &[], &[], &[]);
    let out = client_in_container(
        &share,
        &inside,
        &format!("ls {}/mailslot", inside.display()),
    );
    assert!(!out.status.success(), "listed without allow_other");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The drop-in docs/containers.md gives for the shipped unit.
fn documented_drop_in() -> String {
    let doc = repo_file("docs/containers.md");
    doc.split("# /etc/systemd/system/mailslotfs.service.d/override.conf\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the drop-in in docs/containers.md")
        .to_owned()
}

/// The unit's `key=` command lines as systemd runs them: every assignment
/// in order through the unit and its drop-ins, an empty one dropping those
/// before it; the unit's paths replaced by the test's (`/mailslot` and
/// `/run/mailslot-share` by `dir`'s and `share`'s, either installed binary
/// by the test's).
fn exec_lines(files: &[&str], key: &str, dir: &Path, share: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for line in files.iter().flat_map(|f| f.lines()) {
        match line.strip_prefix(key).and_then(|l| l.strip_prefix('=')) {
            Some("") => lines.clear(),
            Some(command) => lines.push(command.to_owned()),
            None => {}
        }
    }
    let local = |line: String| {
        let line = line
            .replace("/run/mailslot-share", share.to_str().unwrap())
            .replace("/usr/local/bin/mailslotfs", BIN)
            .replace("/usr/bin/mailslotfs", BIN);
        let words = line.split(' ');
        let words = words.map(|w| {
            if w == "/mailslot" {
                dir.to_str().unwrap()
            } else {
                w
            }
        });
        words.collect::<Vec<_>>().join(" ")
    };
    lines.into_iter().map(local).collect()
}

/// Starts the unit as systemd does: each `ExecStartPre=` must succeed
/// (unless marked `-`), then the daemon runs in the foreground. Returns
/// once the mount at `dir` answers: after a crash the dead mount stays
/// until the new daemon cleans it up, so being mounted is not enough.
fn start_as_the_unit(pre: &[String], start: &[String], dir: &Path) -> std::process::Child {
    for line in pre {
        let (may_fail, command) = match line.strip_prefix('-') {
            Some(command) => (true, command),
            None => (false, line.as_str()),
        };
        let out = run(
            Command::new("sh").arg("-c").arg(command),
            Duration::from_secs(10),
        );
        if !may_fail {
            ok(&out);
        }
    }
    let [start] = start else {
        panic!("one ExecStart=, not {start:?}")
    };
    let mut words = start.split(' ');
    let daemon = spawn(Command::new(words.next().unwrap()).args(words));
    assert!(
        wait_until(MOUNT_TIMEOUT, || getxattr(dir, "user.mailslot.transport")
            .is_ok()),
        "the unit's mount at {} did not come up",
        dir.display()
    );
    daemon
}

/// The unit's lines with `files` (the unit and its drop-ins), started,
/// killed with SIGKILL and started again, as `Restart=on-failure` does;
/// `between` runs while the first daemon serves. Returns the second daemon.
fn crash_and_restart(
    files: &[&str],
    dir: &Path,
    share: &Path,
    between: impl FnOnce(),
) -> std::process::Child {
    let pre = exec_lines(files, "ExecStartPre", dir, share);
    let start = exec_lines(files, "ExecStart", dir, share);
    let first = start_as_the_unit(&pre, &start, dir);
    between();
    kill(first.id() as i32, libc::SIGKILL);
    finish(first, Duration::from_secs(5));
    assert!(
        getxattr(dir, "user.mailslot.transport").is_err(),
        "the crash left no dead mount"
    );
    start_as_the_unit(&pre, &start, dir)
}

/// `systemctl stop`: SIGTERM, exit 0, the mount gone.
fn stop_as_the_unit(daemon: std::process::Child, dir: &Path) {
    kill(daemon.id() as i32, libc::SIGTERM);
    let o = finish(daemon, Duration::from_secs(10));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!is_mounted(dir), "still mounted after SIGTERM");
}

/// A slot that clients of any uid may write to (the server's umask aside).
fn open_slot(path: &Path) -> std::os::fd::OwnedFd {
    use std::os::unix::fs::PermissionsExt;
    let fd = create_slot(path);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o622)).unwrap();
    fd
}

#[test]
fn the_shipped_unit_comes_back_after_a_crash() {
    if !root_with_fuse("mounting as the unit does") {
        return;
    }
    let share = temp_dir("unit");
    // Kills the daemons (their command lines name `share`) and unmounts
    // everything under it, also when an assertion fails.
    let _scratch = Scratch(vec![share.clone()]);
    let dir = share.join("mailslot");
    let unit = repo_file("scripts/mailslotfs.service");
    let daemon = crash_and_restart(&[&unit], &dir, &share, || {});
    let server = open_slot(&dir.join("back"));
    send(&client(&dir.join("back")), b"after the restart");
    assert_eq!(recv(&server, Duration::from_secs(5)), b"after the restart");
    drop(server);
    stop_as_the_unit(daemon, &dir);
}

#[test]
fn the_documented_unit_drop_in_reaches_containers_across_a_crash() {
    if !root_with_fuse("containers (namespaces, mounts)") {
        return;
    }
    let share = temp_dir("unit-share");
    // Kills the daemons and containers (their command lines name `share`)
    // and unmounts everything under it, also when an assertion fails.
    let _scratch = Scratch(vec![share.clone()]);
    let dir = share.join("mailslot");
    let (unit, drop_in) = (
        repo_file("scripts/mailslotfs.service"),
        documented_drop_in(),
    );
    // A container started while the first daemon runs, bound as the doc
    // says (`-v /run/mailslot-share:/run/mailslot-share:rslave`).
    let mut watcher = None;
    let daemon = crash_and_restart(&[&unit, &drop_in], &dir, &share, || {
        watcher = Some(Watcher::start(&share, &share, &dir.join("after-the-crash")));
    });
    let server = open_slot(&dir.join("after-the-crash"));
    watcher.unwrap().sends("through-the-new-mount", &server);
    drop(server);
    stop_as_the_unit(daemon, &dir);
}

/// `docker stop` and Ctrl-C: SIGTERM or SIGINT from the host to a server
/// parked in `read()` as its container's pid 1 ends the read and the
/// server at once (FUSE_INTERRUPT reaches the daemon from any pid
/// namespace), and its slot goes. Pid 1 of a namespace gets only the
/// signals it handles: the server handles SIGTERM as a container's init
/// must, and SIGINT with Python's own handler.
#[test]
fn a_signal_ends_a_server_parked_in_read_inside_a_container() {
    if !root_with_fuse("containers (namespaces, mounts)") {
        return;
    }
    let share = shared_dir("share-signals");
    let inside = temp_dir("inside-signals");
    let _scratch = Scratch(vec![inside.clone(), share.clone()]);
    let host_dir = share.join("mailslot");
    std::fs::create_dir_all(&host_dir).unwrap();
    let _mount = Mount::foreground_with(host_dir.clone(), &[], &[], &["allow_other"]);
    for (signal, name) in [(libc::SIGTERM, "sigterm"), (libc::SIGINT, "sigint")] {
        let slot = inside.join("mailslot").join(name);
        let server = spawn(container(SERVER_IDS, &share, &inside).args([
            "python3",
            "-c",
            &format!(
                "import os, signal, sys\n\
                 signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n\
                 fd = os.open({slot:?}, os.O_CREAT | os.O_RDONLY, 0o600)\n\
                 os.read(fd, 100)\n\
                 print('read returned', flush=True)\n",
                slot = slot.to_str().unwrap()
            ),
        ]));
        let on_host = host_dir.join(name);
        assert!(
            wait_until(Duration::from_secs(10), || on_host.exists()),
            "{name}: the server never created its slot"
        );
        let owner: i32 = getxattr(&on_host, "user.mailslot.owner_pid")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            wait_in_fuse(owner, Duration::from_secs(10)),
            "{name}: the server never parked in read()"
        );
        let sent = Instant::now();
        kill(owner, signal);
        let o = finish(server, Duration::from_secs(10));
        let took = sent.elapsed();
        println!("{name}: the container's server ended {took:?} after the signal");
        assert!(took < Duration::from_secs(1), "{name}: took {took:?}");
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("read returned"),
            "{name}: the read returned instead of failing"
        );
        assert!(
            wait_until(Duration::from_secs(5), || !on_host.exists()),
            "{name}: the slot outlived its server"
        );
    }
}
