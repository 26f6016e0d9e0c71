//! Issue 12: sharing a mailslot mount with containers. A server in one set
//! of namespaces (user with remapped ids, mount, pid, network — what a
//! container runtime makes, here by tests/scripts/container.py) and clients
//! in another reach each other through a bind mount of the host's mount, and
//! a host-side remount reaches containers already running.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

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
    let mut watcher = container(CLIENT_IDS, &share, &inside)
        .args([
            "sh",
            "-c",
            "echo started; read line; echo $line > \"$0\"",
            inside.join("mailslot/again").to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the watching container");
    let mut watched = Lines::new(&mut watcher);
    watched.expect("started\n", Duration::from_secs(10));
    drop(mount);
    std::fs::create_dir_all(&host_dir).unwrap();
    let remounted = Mount::foreground_with(host_dir.clone(), &[], &[], &["allow_other"]);
    let again = remounted.path("again");
    let server = {
        use std::os::unix::fs::PermissionsExt;
        let fd = create_slot(&again);
        std::fs::set_permissions(&again, std::fs::Permissions::from_mode(0o622)).unwrap();
        fd
    };
    use std::io::Write;
    watcher
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(b"after-the-remount\n")
        .unwrap();
    let o = finish(watcher, Duration::from_secs(10));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        recv(&server, Duration::from_secs(5)),
        b"after-the-remount\n"
    );
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
