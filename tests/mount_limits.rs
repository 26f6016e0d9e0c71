//! No unbounded growth from local users (issue 12, item 5): storms of
//! mkdir, creates, client opens, polls, parked reads and messages, each by
//! one unprivileged user (a child that setuids) on an `allow_other` mount, end in ENOSPC (names)
//! or ENOBUFS (everything else) at that user's share or the mount's
//! ceiling; the daemon's resident set stays under the memory ceiling; the
//! refusals are counted in `status`; and another user's slot keeps working
//! through all of it.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One user's storm: `mode` makes entries of one kind until the daemon
/// refuses, prints `<mode> <made> <errno>`, and holds everything it made
/// until its stdin closes.
const STORM: &str = r#"
import errno, os, select, sys, threading, time
mode, dir_ = sys.argv[1], sys.argv[2]
uid = os.getuid()
made, code, keep = 0, 0, []
LIMIT = 100_000

def memory():
    return int(os.getxattr(dir_, "user.mailslot.limits.memory"))

def until_refused(make):
    global made, code
    while made < LIMIT:
        try:
            keep.append(make(made))
        except OSError as e:
            code = e.errno
            return
        made += 1

if mode == "dirs":
    until_refused(lambda i: os.mkdir(f"{dir_}/d{uid}-{i}"))
elif mode == "slots":
    until_refused(lambda i: os.open(f"{dir_}/s{uid}-{i}", os.O_RDONLY | os.O_CREAT, 0o666))
elif mode == "opens":
    server = os.open(f"{dir_}/o{uid}", os.O_RDONLY | os.O_CREAT, 0o666)
    until_refused(lambda i: os.open(f"{dir_}/o{uid}", os.O_WRONLY))
elif mode == "messages":
    server = os.open(f"{dir_}/m{uid}", os.O_RDONLY | os.O_CREAT, 0o666)
    client = os.open(f"{dir_}/m{uid}", os.O_WRONLY)
    until_refused(lambda i: os.write(client, b"x" * 1000))
elif mode == "polls":
    # Handles up to the share, then one closed: what it gave back holds a
    # few poll waiters, and the rest are refused (POLLERR).
    server = os.open(f"{dir_}/p{uid}", os.O_RDONLY | os.O_CREAT, 0o666)
    until_refused(lambda i: os.open(f"{dir_}/p{uid}", os.O_WRONLY))
    assert code == errno.ENOBUFS, code
    full = memory()
    os.close(keep.pop())
    deadline = time.monotonic() + 10
    while memory() >= full:
        assert time.monotonic() < deadline, "the release did not come"
        time.sleep(0.005)
    ep = select.epoll()
    for fd in keep:
        ep.register(fd, select.EPOLLOUT)
    events = dict(ep.poll(0))
    refused = sum(1 for fd in keep if events.get(fd, 0) & select.EPOLLERR)
    made, code = len(keep) - refused, errno.ENOBUFS if refused else 0
elif mode == "parked":
    server = os.open(f"{dir_}/r{uid}", os.O_RDONLY | os.O_CREAT, 0o666)
    failed = []
    def reader():
        try:
            os.read(server, 65536)
        except OSError as e:
            failed.append(e.errno)
    while not failed and made < LIMIT:
        threading.Thread(target=reader, daemon=True).start()
        made += 1
        deadline = time.monotonic() + 10
        while not failed and int(os.getxattr(f"{dir_}/r{uid}", "user.mailslot.waiting_readers")) < made:
            assert time.monotonic() < deadline, "a read neither parked nor failed"
            time.sleep(0.001)
    made -= 1
    code = failed[0] if failed else 0
print(mode, made, code, flush=True)
sys.stdin.read()
os._exit(0)
"#;

/// Serves a slot as its own user and, for each line on stdin, makes a new
/// directory, opens a new client handle, sends the line and reads it back:
/// names, handles and messages all still work for this user.
const WITNESS: &str = r#"
import os, sys
dir_ = sys.argv[1]
slot = f"{dir_}/witness"
server = os.open(slot, os.O_RDONLY | os.O_CREAT, 0o666)
print("ready", flush=True)
for n, line in enumerate(sys.stdin):
    os.mkdir(f"{dir_}/witness-{n}")
    client = os.open(slot, os.O_WRONLY)
    os.write(client, line.encode())
    os.close(client)
    print(os.read(server, 65536).decode(), end="", flush=True)
"#;

/// A Python program run as `uid` (and gid), killed (by PID) when dropped.
struct AsUser {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
}

impl AsUser {
    fn start(uid: u32, program: &str, args: &[&str]) -> AsUser {
        // Started as root, it becomes the user once its modules are loaded
        // (root's Python installation may be closed to other users).
        let as_user = format!(
            "import errno, os, select, sys, threading, time\n\
             os.setgroups([]); os.setgid({uid}); os.setuid({uid})\n{program}"
        );
        let mut child = Command::new("python3")
            .args(["-c", &as_user])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        AsUser {
            child,
            stdin,
            stdout,
        }
    }

    /// The next line the program prints.
    fn line(&mut self, timeout: Duration) -> String {
        let fd = self.stdout.as_raw_fd();
        let deadline = Instant::now() + timeout;
        let mut line = Vec::new();
        while !line.ends_with(b"\n") {
            let left = deadline.saturating_duration_since(Instant::now());
            let ready = poll1(fd, libc::POLLIN, left.as_millis().max(1) as i32);
            assert!(ready > 0, "no line within {timeout:?}: {line:?}");
            let byte = read(fd, 1).expect("read the program's output");
            assert!(!byte.is_empty(), "the program ended: {line:?}");
            line.extend(byte);
        }
        String::from_utf8_lossy(&line).into_owned()
    }

    /// Sends one line; the witness answers with it.
    fn echo(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{text}").expect("write to the witness");
        assert_eq!(self.line(CMD_TIMEOUT), format!("{text}\n"));
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        drop(self.stdin.take());
        kill(self.child.id() as i32, libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The daemon's resident set in bytes.
fn rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// `statvfs`'s (f_files, f_ffree) of the mount, what `df -i` shows.
fn inodes(m: &Mount) -> (u64, u64) {
    let path = std::ffi::CString::new(m.dir.to_str().unwrap()).unwrap();
    // SAFETY: an all-zero statvfs is valid; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable and the path valid for the call.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
    (st.f_files, st.f_ffree)
}

/// One root figure of `status`, `user.mailslot.limits.NAME`.
fn figure(m: &Mount, name: &str) -> u64 {
    getxattr(&m.dir, &format!("user.mailslot.limits.{name}"))
        .expect("limits attribute")
        .parse()
        .expect("a number")
}

/// Runs one storm as `uid` and returns (entries made, errno), leaving the
/// storm holding them.
fn storm(m: &Mount, uid: u32, mode: &str, storms: &mut Vec<AsUser>) -> (u64, i32) {
    let mut user = AsUser::start(uid, STORM, &[mode, m.dir.to_str().unwrap()]);
    let line = user.line(Duration::from_secs(60));
    storms.push(user);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&mode), "{line}");
    (words[1].parse().unwrap(), words[2].parse().unwrap())
}

const WITNESS_UID: u32 = 64_000;

#[test]
fn one_users_storms_end_at_its_share_and_another_users_slot_keeps_working() {
    if !root_with_fuse("running as other users") {
        return;
    }
    const SHARE: u64 = 256 << 10;
    const CEILING: u64 = 4 << 20;
    let m = mount!(
        "allow_other",
        "max_msg=1k",
        "max_memory=4M",
        "user_memory=256K",
        "max_entries=1000000",
        "user_entries=1000000"
    );
    let baseline = rss(m.pid());
    let mut witness = AsUser::start(WITNESS_UID, WITNESS, &[m.dir.to_str().unwrap()]);
    assert_eq!(witness.line(CMD_TIMEOUT), "ready\n");
    witness.echo("before");
    let mut storms = Vec::new();
    // Each storm by its own user: its share, not the others', runs out.
    for (n, (mode, refusal, cost)) in [
        ("dirs", libc::ENOSPC, 512),
        ("slots", libc::ENOSPC, 1280 + 192),
        ("opens", libc::ENOBUFS, 192),
        ("messages", libc::ENOBUFS, 1048),
        ("parked", libc::ENOBUFS, 4608),
        ("polls", libc::ENOBUFS, 48),
    ]
    .into_iter()
    .enumerate()
    {
        let uid = 64_001 + n as u32;
        let (made, errno) = storm(&m, uid, mode, &mut storms);
        assert_eq!(errno, refusal, "{mode}: the refusal");
        if mode != "polls" {
            // The share ran out within one entry of what it holds.
            let most = SHARE / cost;
            assert!(
                made <= most && made + 8 >= most * 9 / 10,
                "{mode}: {made} made, the share holds about {most}"
            );
        } else {
            assert!(
                made >= 1,
                "polls: what a closed handle gave back holds a waiter"
            );
        }
        witness.echo(&format!("after {mode}"));
        let grown = rss(m.pid()).saturating_sub(baseline);
        println!("after {mode} by uid {uid}: {made} made, RSS +{grown} bytes");
        assert!(grown < CEILING, "{mode}: RSS grew {grown} bytes");
    }
    assert!(figure(&m, "refused_user_memory") >= 6);
    assert_eq!(figure(&m, "refused_max_memory"), 0);
    assert!(figure(&m, "memory") <= CEILING);
    // The counters show in `status`, table and JSON.
    let dir = m.dir.to_str().unwrap();
    let table = ok(&run(Command::new(BIN).args(["status", dir]), CMD_TIMEOUT));
    assert!(table.contains("\nlimits:\n"), "{table}");
    assert!(table.contains("  user_memory  "), "{table}");
    let json = ok(&run(
        Command::new(BIN).args(["status", "--json", dir]),
        CMD_TIMEOUT,
    ));
    let refused = ok(&run_with_input(
        Command::new("python3").arg("-c").arg(
            "import json,sys; l=json.load(sys.stdin)['limits']; \
             print(l['refused_user_memory'], l['user_memory'])",
        ),
        Some(json.as_bytes()),
        CMD_TIMEOUT,
    ));
    let words: Vec<u64> = refused
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert!(words[0] >= 6 && words[1] == SHARE, "{refused}");
    // Ending the storms gives everything back but the directories, which
    // outlive their maker.
    drop(storms);
    let held = || figure(&m, "memory");
    assert!(
        wait_until(Duration::from_secs(20), || held() < SHARE + (32 << 10)),
        "memory held after the storms: {}",
        held()
    );
    witness.echo("after all");
}

#[test]
fn names_past_the_users_share_or_the_mount_ceiling_get_enospc() {
    if !root_with_fuse("running as other users") {
        return;
    }
    let m = mount!("allow_other", "max_entries=300", "user_entries=100");
    let mut witness = AsUser::start(WITNESS_UID, WITNESS, &[m.dir.to_str().unwrap()]);
    assert_eq!(witness.line(CMD_TIMEOUT), "ready\n");
    let mut storms = Vec::new();
    assert_eq!(storm(&m, 64_010, "dirs", &mut storms), (100, libc::ENOSPC));
    assert_eq!(storm(&m, 64_010, "slots", &mut storms), (0, libc::ENOSPC));
    assert_eq!(figure(&m, "refused_user_entries"), 2);
    witness.echo("one user's names are spent");
    // Root is exempt from the share, not from the mount's ceiling.
    let mut root_made = 0;
    let refusal = loop {
        match std::fs::create_dir(m.path(&format!("root-{root_made}"))) {
            Ok(()) => root_made += 1,
            Err(e) => break e.raw_os_error(),
        }
    };
    assert_eq!(refusal, Some(libc::ENOSPC));
    assert_eq!(figure(&m, "entries"), 300);
    assert!(root_made > 100, "root made {root_made}");
    // `df -i` shows the names against the ceiling.
    let (files, free) = inodes(&m);
    assert_eq!((files, free), (300, 0));
    assert_eq!(figure(&m, "refused_max_entries"), 1);
    // At the ceiling the witness's next name is refused too, but its slot
    // still carries messages; removing names makes room again.
    std::fs::remove_dir(m.path("root-0")).unwrap();
    assert_eq!(inodes(&m), (300, 1));
    witness.echo("room for one more");
    drop(storms);
}

#[test]
fn the_mount_memory_ceiling_stops_users_whose_shares_add_up_to_more() {
    if !root_with_fuse("running as other users") {
        return;
    }
    const CEILING: u64 = 1 << 20;
    let m = mount!(
        "allow_other",
        "max_msg=1k",
        "max_memory=1M",
        "user_memory=768K"
    );
    let baseline = rss(m.pid());
    let mut storms = Vec::new();
    let (first, errno) = storm(&m, 64_020, "opens", &mut storms);
    assert_eq!(errno, libc::ENOBUFS);
    let (second, errno) = storm(&m, 64_021, "opens", &mut storms);
    assert_eq!(errno, libc::ENOBUFS);
    assert!(second < first / 2, "{second} handles after {first}");
    assert_eq!(figure(&m, "refused_user_memory"), 1);
    assert_eq!(figure(&m, "refused_max_memory"), 1);
    assert!(figure(&m, "memory") <= CEILING);
    let grown = rss(m.pid()).saturating_sub(baseline);
    assert!(grown < CEILING, "RSS grew {grown} bytes");
    // Root is held to the ceiling too: a new name is refused.
    let refused = std::fs::create_dir(m.path("root-dir")).map_err(|e| e.raw_os_error());
    assert_eq!(refused, Err(Some(libc::ENOSPC)));
    drop(storms);
    assert!(
        wait_until(Duration::from_secs(20), || figure(&m, "memory") == 0),
        "memory held after the storms: {}",
        figure(&m, "memory")
    );
    std::fs::create_dir(m.path("root-dir")).expect("room again");
}

/// A user's subordinate uids are that user for the shares. The daemon
/// reads /etc/subuid when it mounts; here it mounts in a private mount
/// namespace whose /etc is the machine's with a subuid file laid over it,
/// so the machine's own /etc is untouched. nobody (65534) was given
/// 200000-265535, root 300000-365535.
const SUBUID_SCRIPT: &str = r#"
mount -t overlay overlay -o "ro,lowerdir=$FAKE_ETC:/etc" /etc
"$BIN" mount -o allow_other,user_entries=4 "$D1"
python3 - "$D1" <<'PY'
import errno, os, sys
d = sys.argv[1]
def mkdirs_as(uid, tag):
    """Directories made as `uid` until ENOSPC."""
    pid = os.fork()
    if pid == 0:
        os.setgroups([]); os.setgid(uid); os.setuid(uid)
        made = 0
        while made < 100:
            try:
                os.mkdir(f"{d}/{tag}-{made}")
            except OSError as e:
                os._exit(made if e.errno == errno.ENOSPC else 200)
            made += 1
        os._exit(made)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
got = {
    # nobody's containers share one share of 4 with nobody.
    "nobody": mkdirs_as(65534, "nobody"),
    "nobody's first": mkdirs_as(200000, "a"),
    "nobody's last": mkdirs_as(265535, "b"),
    # Past the range: a user of its own.
    "outside": mkdirs_as(265536, "c"),
    # Root's range pays as one user, not exempt with root.
    "root's range": mkdirs_as(300000, "d"),
    "root's range again": mkdirs_as(300001, "e"),
    "root": mkdirs_as(0, "f"),
}
want = {"nobody": 4, "nobody's first": 0, "nobody's last": 0, "outside": 4,
        "root's range": 4, "root's range again": 0, "root": 100}
assert got == want, got
PY
umount "$D1"
check_gone "$D1"
echo ok
"#;

#[test]
fn subordinate_uids_share_their_users_share() {
    if !root_with_fuse("running as other users in a private mount namespace") {
        return;
    }
    let fake_etc = temp_dir("fake-etc");
    let d1 = temp_dir("subuid");
    // Kills the daemon (its command line names d1) and unmounts, also when
    // the script fails half-way.
    let _scratch = Scratch(vec![d1.clone(), fake_etc.clone()]);
    std::fs::write(
        fake_etc.join("subuid"),
        "nobody:200000:65536\n0:300000:65536\n",
    )
    .unwrap();
    bash_in_private_namespace(
        SUBUID_SCRIPT,
        &[
            ("FAKE_ETC", &fake_etc),
            ("BIN", std::path::Path::new(BIN)),
            ("D1", &d1),
            ("D2", &d1),
        ],
    );
}
