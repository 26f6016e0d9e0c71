//! Harness for the mount tests: real mailslotfs mounts in private temp
//! directories, driven by syscalls, bash and Python. Nothing here blocks
//! without a deadline: every wait polls a condition until a timeout and then
//! fails the test with what the daemon said.
#![allow(dead_code)]

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mailslotfs");

/// How long a mount may take to appear.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline for a helper command (bash/python) to finish.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(20);
/// For scripts that park hundreds of readers: on a loaded 2-CPU CI runner
/// that alone can take longer than CMD_TIMEOUT.
pub const PARKING_TIMEOUT: Duration = Duration::from_secs(90);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Whether FUSE is usable here. When it is not: panics under CI (which must
/// run these tests), otherwise prints why and returns false so the test can
/// return early.
pub fn fuse_ok() -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => true,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("/dev/fuse cannot be opened ({e}) and CI is set: mount tests must run");
            }
            eprintln!("SKIP: /dev/fuse cannot be opened ({e}); mount tests skipped");
            false
        }
    }
}

/// Whether this test can run as root with FUSE; when not, says why it is
/// skipped (and, like `fuse_ok`, fails under CI when FUSE is missing).
pub fn root_with_fuse(what: &str) -> bool {
    if !fuse_ok() {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: {what} needs root");
        return false;
    }
    true
}

/// Whether `program` can be run; when not, says why the test is skipped.
pub fn have_program(program: &str, package: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok();
    if !found {
        eprintln!("SKIP: {program} is not installed (package {package})");
    }
    found
}

/// What every namespace script starts with: strict mode, the mount points
/// `$D1` and `$D2` unmounted on any exit, and `check_gone DIR`, which
/// waits for the daemon serving DIR to exit.
const NAMESPACE_PRELUDE: &str = r#"
set -euo pipefail
trap 'umount -l "$D1" "$D2" 2>/dev/null || true' EXIT
check_gone() {
  for _ in $(seq 500); do
    grep -qs "$1" /proc/[0-9]*/cmdline || return 0
    sleep 0.01
  done
  echo "daemon for $1 still running"; exit 1
}
"#;

/// Runs a bash script in a private mount namespace, so that the bind
/// mounts it makes (over /sbin, /etc/fuse.conf...) are seen by nothing
/// else and vanish with it, and asserts that it succeeds and ends by
/// printing `ok`. `env` names the paths the script uses, `D1` and `D2`
/// among them.
#[track_caller]
pub fn bash_in_private_namespace(script: &str, env: &[(&str, &Path)]) {
    let out = run(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "bash", "-c"])
            .arg(format!("{NAMESPACE_PRELUDE}{script}"))
            .envs(env.iter().copied()),
        Duration::from_secs(40),
    );
    assert!(ok(&out).ends_with("ok\n"), "the script did not finish");
}

/// `let m = mount!(opts...);` — a fresh mount, or return from the test when
/// FUSE is unavailable outside CI.
#[macro_export]
macro_rules! mount {
    ($($opt:expr),* $(,)?) => {{
        if !common::fuse_ok() {
            return;
        }
        common::Mount::new(&[$($opt),*])
    }};
}

/// A fresh, unique, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!(
        "mailslotfs-test-{}-{}-{n}",
        std::process::id(),
        tag
    ));
    let _ = std::fs::remove_dir(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir.canonicalize().expect("canonicalize temp dir")
}

/// /proc/self/mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x"), 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The filesystem type of the mount at `dir` ("fuse.mailslotfs"), if any.
pub fn mount_type(dir: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = dir.to_string_lossy();
    let mut found = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 5 || unescape(fields[4]) != want {
            continue;
        }
        let sep = fields.iter().position(|f| *f == "-")?;
        found = fields.get(sep + 1).map(|s| s.to_string());
    }
    found
}

pub fn is_mounted(dir: &Path) -> bool {
    mount_type(dir).is_some()
}

/// Polls `cond` every few ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` still runs (a zombie counts as gone).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            state != Some('Z') && state != Some('X')
        }
        Err(_) => false,
    }
}

/// The scheduler state letter of a pid (R, S, D, Z...).
/// Each thread of `pid` with its state and where it waits in the kernel,
/// for the message of a test that timed out.
pub fn threads_of(pid: i32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("{pid}: gone");
    };
    let mut lines: Vec<String> = tasks
        .flatten()
        .map(|task| {
            let read =
                |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
            let stat = read("stat");
            let state = stat
                .rsplit_once(") ")
                .map_or("?", |(_, rest)| &rest[..1])
                .to_owned();
            let stack = read("stack")
                .lines()
                .take(4)
                .collect::<Vec<_>>()
                .join(" < ");
            format!(
                "{} {} {} {}",
                task.file_name().to_string_lossy(),
                read("comm").trim(),
                state,
                stack
            )
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

pub fn pid_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid, sig) };
}

/// The mailslotfs daemon serving `dir`, found through /proc (for daemons
/// started in background mode, which are not our children).
pub fn find_daemon(dir: &Path) -> Option<i32> {
    let want = dir.as_os_str().as_bytes();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let is_ours = args.first().is_some_and(|a0| a0.ends_with(b"mailslotfs"))
            && args.iter().any(|a| *a == b"mount")
            && args.iter().any(|a| {
                Path::new(std::ffi::OsStr::from_bytes(a))
                    .canonicalize()
                    .map(|p| p.as_os_str().as_bytes() == want)
                    .unwrap_or(*a == want)
            });
        if is_ours && pid_alive(pid) {
            return Some(pid);
        }
    }
    None
}

/// With `MAILSLOTFS_EXPECT_TRANSPORT` set (scripts/test.sh's io_uring
/// pass), every mount must run on that transport: the pass must not
/// silently fall back to classic. A mount that asked for `no_io_uring` is
/// exempt.
pub fn expect_transport<'a>(dir: &Path, mut args: impl Iterator<Item = &'a std::ffi::OsStr>) {
    let Ok(want) = std::env::var("MAILSLOTFS_EXPECT_TRANSPORT") else {
        return;
    };
    if args.any(|a| a.to_string_lossy().split(',').any(|o| o == "no_io_uring")) {
        return;
    }
    let got = getxattr(dir, "user.mailslot.transport").unwrap_or_default();
    assert!(
        got == want,
        "{}: transport {got:?}, expected {want:?}",
        dir.display()
    );
}

/// Lazily unmounts `dir` if anything is mounted there.
pub fn force_unmount(dir: &Path) {
    if is_mounted(dir) {
        let c = CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Temporary directories, any daemon still serving one and anything still
/// mounted in one, removed on drop — also when the test fails half-way.
pub struct Scratch(pub Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for dir in &self.0 {
            for pid in processes_mentioning(dir) {
                kill(pid, libc::SIGKILL);
            }
            for inner in mounts_under(dir) {
                force_unmount(&inner);
            }
            force_unmount(dir);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Mount points strictly inside `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir) && p != dir)
        .collect()
}

/// Processes whose command line names `dir` (our daemons, found by the
/// unique directory they serve).
pub fn processes_mentioning(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

/// A live mailslotfs mount in a private temp dir, torn down on drop (also
/// when the test panics).
pub struct Mount {
    pub dir: PathBuf,
    child: Option<Child>,
    pid: Option<i32>,
    stderr_path: PathBuf,
    status: Option<ExitStatus>,
}

impl Mount {
    /// Mounts in the foreground (`--foreground`) with `-o` options joined
    /// by commas, and waits until the mount shows in mountinfo.
    pub fn new(opts: &[&str]) -> Mount {
        let dir = temp_dir("mnt");
        Mount::at(dir, opts)
    }

    /// Like `new`, on a given (empty, existing) directory.
    pub fn at(dir: PathBuf, opts: &[&str]) -> Mount {
        Mount::foreground_with(dir, &[], &[], opts)
    }

    /// A mount with a bridge on 127.0.0.1 only, named `name`, on a UDP port
    /// of its own per test process and `port_offset`; `extra` flags follow.
    pub fn loopback_bridge(
        tag: &str,
        port_offset: u32,
        name: &str,
        extra: &[&str],
        opts: &[&str],
    ) -> Mount {
        let port = (20_000 + (std::process::id() * 7 + port_offset) % 20_000).to_string();
        let mut flags = vec!["--bridge", "--bind", "127.0.0.1", "--port", &port];
        flags.extend(["--netbios-name", name]);
        flags.extend(extra);
        Mount::foreground_with(temp_dir(tag), &flags, &[], opts)
    }

    /// Like `at`, with extra command-line flags (`-v`) and environment.
    pub fn foreground_with(
        dir: PathBuf,
        flags: &[&str],
        env: &[(&str, &str)],
        opts: &[&str],
    ) -> Mount {
        let mut cmd = Command::new(BIN);
        cmd.arg("mount").arg(&dir).arg("--foreground").args(flags);
        cmd.envs(env.iter().copied());
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts.join(","));
        }
        Mount::spawn(dir, cmd)
    }

    /// Runs `cmd`, a foreground mount of `dir` (possibly behind a wrapper
    /// such as `nsenter` that execs it, so its pid is the daemon's), and
    /// waits until the mount shows in mountinfo.
    pub fn spawn(dir: PathBuf, mut cmd: Command) -> Mount {
        let stderr_path = dir.with_extension("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn mailslotfs mount");
        let pid = child.id() as i32;
        let mut m = Mount {
            dir,
            child: Some(child),
            pid: Some(pid),
            stderr_path,
            status: None,
        };
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        loop {
            if mount_type(&m.dir).is_some() {
                break;
            }
            if let Some(st) = m.try_wait() {
                panic!(
                    "mailslotfs mount exited early ({st}); stderr:\n{}",
                    m.stderr()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "mount did not appear within {MOUNT_TIMEOUT:?}; stderr:\n{}",
                    m.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        expect_transport(&m.dir, cmd.get_args());
        m
    }

    /// Mounts in daemon mode (no --foreground): asserts the command exits 0
    /// and that the mount is in place the moment it has; adopts the daemon.
    pub fn daemon(opts: &[&str]) -> Mount {
        Mount::daemon_with(&[], &[], opts)
    }

    /// Like `daemon`, with extra command-line flags and environment.
    pub fn daemon_with(flags: &[&str], env: &[(&str, &str)], opts: &[&str]) -> Mount {
        let dir = temp_dir("dmn");
        let stderr_path = dir.with_extension("stderr");
        let mut cmd = Command::new(BIN);
        cmd.arg("mount").arg(&dir).args(flags);
        cmd.envs(env.iter().copied());
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts.join(","));
        }
        let out = run(&mut cmd, Duration::from_secs(10));
        // What the mount command printed, for `stderr()`.
        let _ = std::fs::write(&stderr_path, &out.stderr);
        let mut m = Mount {
            dir,
            child: None,
            pid: None,
            stderr_path,
            status: None,
        };
        let mounted = is_mounted(&m.dir);
        m.pid = find_daemon(&m.dir);
        assert!(
            out.status.success(),
            "mount exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(mounted, "mount command returned before the mount existed");
        assert!(m.pid.is_some(), "no daemon process found for {:?}", m.dir);
        expect_transport(&m.dir, cmd.get_args());
        m
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> i32 {
        self.pid.expect("daemon pid")
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        if let Some(st) = self.status {
            return Some(st);
        }
        match &mut self.child {
            Some(c) => {
                let st = c.try_wait().ok().flatten();
                if st.is_some() {
                    self.status = st;
                }
                st
            }
            None => match self.pid {
                Some(pid) if !pid_alive(pid) => Some(ExitStatus::from_raw(0)),
                Some(_) => None,
                None => Some(ExitStatus::from_raw(0)),
            },
        }
    }

    /// Sends `sig` and waits up to `timeout` for the daemon to exit.
    /// Returns its exit status (for a background daemon, which is not our
    /// child, a synthetic 0), or None when it is still running.
    pub fn signal_and_wait(&mut self, sig: i32, timeout: Duration) -> Option<ExitStatus> {
        if self.try_wait().is_none() {
            kill(self.pid(), sig);
        }
        let mut st = None;
        wait_until(timeout, || {
            st = self.try_wait();
            st.is_some()
        });
        st
    }

    /// Waits for the daemon to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut st = None;
        wait_until(timeout, || {
            st = self.try_wait();
            st.is_some()
        });
        st
    }

    /// Runs `mailslotfs mount DIR` (daemon mode) on this mount's directory,
    /// e.g. after `kill9`; on success adopts the new daemon.
    pub fn remount_daemon(&mut self, opts: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("mount").arg(&self.dir);
        if !opts.is_empty() {
            cmd.arg("-o").arg(opts.join(","));
        }
        let out = run(&mut cmd, Duration::from_secs(10));
        if out.status.success() {
            self.child = None;
            self.status = None;
            self.pid = find_daemon(&self.dir);
        }
        out
    }

    /// kill -9 the daemon (fault injection); the mount stays behind, stale.
    pub fn kill9(&mut self) {
        let st = self.signal_and_wait(libc::SIGKILL, Duration::from_secs(5));
        assert!(st.is_some(), "daemon survived SIGKILL");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.pid.is_some() && self.try_wait().is_none() {
            let pid = self.pid.unwrap();
            kill(pid, libc::SIGTERM);
            let gone = wait_until(Duration::from_secs(5), || self.try_wait().is_some());
            if !gone {
                eprintln!(
                    "harness: daemon {pid} ignored SIGTERM for 5 s, killing; stderr:\n{}",
                    self.stderr()
                );
                kill(pid, libc::SIGKILL);
                wait_until(Duration::from_secs(5), || self.try_wait().is_some());
            }
        }
        force_unmount(&self.dir);
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// Runs `cmd` with stdout/stderr captured; kills it and panics after
/// `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    run_with_input(cmd, None, timeout)
}

/// Like `run`, feeding `input` on stdin.
pub fn run_with_input(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Output {
    let (out, elapsed) = try_run(cmd, input, timeout);
    match out {
        Some(o) => o,
        None => {
            panic!("command {cmd:?} did not finish within {timeout:?} (killed after {elapsed:?})")
        }
    }
}

/// Runs a command; None (after killing it) when it overran `timeout`.
pub fn try_run(
    cmd: &mut Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> (Option<Output>, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(data) = input {
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&data);
        });
    }
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = start + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            // Kill the whole process group only if it is its own; here just the pid.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    // Grandchildren may keep the pipes open; do not wait for them forever.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let o = t_out.join().unwrap_or_default();
        let e = t_err.join().unwrap_or_default();
        let _ = tx.send((o, e));
    });
    let (stdout, stderr) = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| {
        (
            b"<stdout held open>".to_vec(),
            b"<stderr held open>".to_vec(),
        )
    });
    match status {
        Some(status) => (
            Some(Output {
                status,
                stdout,
                stderr,
            }),
            elapsed,
        ),
        None => {
            eprintln!(
                "timed-out command stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
            (None, elapsed)
        }
    }
}

/// `bash -c SCRIPT` with `$D` set to the mount dir; returns the output.
pub fn bash(dir: &Path, script: &str, timeout: Duration) -> Output {
    run(
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("D", dir)
            .env("BIN", BIN),
        timeout,
    )
}

/// Helpers every Python snippet starts with: `D` (the mount), `P(name)`,
/// `create`, `client`, `err` (the errno a call fails with), `wait_for`,
/// `wait_parked`.
pub const PY_PRELUDE: &str = r#"
import os, sys, errno, time, select, signal, threading, struct
D = sys.argv[1]
def P(n): return os.path.join(D, n)
def create(n, flags=os.O_RDONLY, mode=0o644):
    return os.open(P(n), os.O_CREAT | os.O_EXCL | flags, mode)
def client(n, flags=0): return os.open(P(n), os.O_WRONLY | flags)
def err(fn, *a, **k):
    try:
        r = fn(*a, **k)
    except OSError as e:
        return e.errno
    raise AssertionError("expected an error from %s%r, got %r" % (getattr(fn, '__name__', fn), a, r))
def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond(): return True
        time.sleep(0.002)
    return cond()
def exists(n): return os.path.exists(P(n))
def wait_parked(names, timeout=5.0):
    """Until every slot named has a reader waiting; each is asked until it has."""
    pending = list(names)
    def check():
        pending[:] = [n for n in pending if os.getxattr(P(n), "user.mailslot.waiting_readers") == b"0"]
        return not pending
    if wait_for(check, timeout):
        return True
    print("%d slots without a waiting reader after %ss: %s" % (len(pending), timeout, pending[:5]), flush=True)
    return False
def readable(fd, ms):
    return bool(select.select([fd], [], [], ms / 1000.0)[0])
"#;

/// Removes the common leading indentation, so snippets can be indented
/// with the Rust code around them.
pub fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `python3 -c PRELUDE+SCRIPT DIR` (the mount dir is `sys.argv[1]`, also `$D`).
pub fn python(dir: &Path, script: &str, timeout: Duration) -> Output {
    run(
        Command::new("python3")
            .arg("-c")
            .arg(format!("{PY_PRELUDE}\n{}", dedent(script)))
            .arg(dir)
            .env("D", dir)
            .env("BIN", BIN)
            .env("PYTHONUNBUFFERED", "1"),
        timeout,
    )
}

/// Path of a helper script in tests/scripts.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name)
}

/// Asserts a command succeeded, showing its output otherwise; returns stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !stdout.is_empty() {
        // Visible with --nocapture: measured figures and the like.
        println!("{stdout}");
    }
    stdout
}

/// Runs a Python snippet against the mount and asserts it exits 0.
#[track_caller]
pub fn py_ok(m: &Mount, script: &str) -> String {
    ok(&python(&m.dir, script, CMD_TIMEOUT))
}

/// Runs a bash snippet against the mount and asserts it exits 0.
#[track_caller]
pub fn sh_ok(m: &Mount, script: &str) -> String {
    ok(&bash(&m.dir, script, CMD_TIMEOUT))
}

// ---------------------------------------------------------------- syscalls

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// open(2) with O_CLOEXEC added (tests spawn processes concurrently).
pub fn open(path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = cpath(path);
    // SAFETY: valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: fresh fd we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Creates a slot: the server handle (O_CREAT|O_EXCL|O_RDONLY).
pub fn create_slot(path: &Path) -> OwnedFd {
    open(path, libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY, 0o644)
        .unwrap_or_else(|e| panic!("create slot {}: {e}", path.display()))
}

/// Opens an existing slot as a client (O_WRONLY).
pub fn client(path: &Path) -> OwnedFd {
    open(path, libc::O_WRONLY, 0).unwrap_or_else(|e| panic!("open client {}: {e}", path.display()))
}

pub fn write(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: valid buffer.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes one whole message, asserting it went in one piece.
#[track_caller]
pub fn send(fd: &OwnedFd, data: &[u8]) {
    let n = write(fd.as_raw_fd(), data).unwrap_or_else(|e| panic!("write: {e}"));
    assert_eq!(n, data.len(), "short write");
}

/// One read(2) with a buffer of `cap` bytes. May block: use only when a
/// message is known to be queued, a timeout applies, or via `read_async`.
pub fn read(fd: RawFd, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; cap];
    // SAFETY: valid buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), cap) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        buf.truncate(n as usize);
        Ok(buf)
    }
}

/// poll(2) one fd; returns revents (0 on timeout).
pub fn poll1(fd: RawFd, events: i16, timeout_ms: i32) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    assert!(n >= 0, "poll: {}", io::Error::last_os_error());
    p.revents
}

/// Reads one message once poll says it is there, within `timeout`.
#[track_caller]
pub fn recv(fd: &OwnedFd, timeout: Duration) -> Vec<u8> {
    let rev = poll1(fd.as_raw_fd(), libc::POLLIN, timeout.as_millis() as i32);
    assert!(
        rev & libc::POLLIN != 0,
        "no message within {timeout:?} (revents {rev:#x})"
    );
    read(fd.as_raw_fd(), 1 << 20).expect("read")
}

/// A blocking read running on its own thread.
pub struct AsyncRead {
    /// The reading thread's kernel tid (for /proc and tgkill).
    pub tid: i32,
    rx: mpsc::Receiver<(io::Result<Vec<u8>>, Instant)>,
    done: Option<(io::Result<Vec<u8>>, Instant)>,
}

/// Starts a blocking read(2) of up to `cap` bytes on another thread. If the
/// read never returns, the Mount's drop (SIGTERM: readers answered) frees
/// the thread.
pub fn read_async(fd: RawFd, cap: usize) -> AsyncRead {
    let (tx, rx) = mpsc::channel();
    let (ttx, trx) = mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: plain syscall.
        let _ = ttx.send(unsafe { libc::gettid() });
        let r = read(fd, cap);
        let _ = tx.send((r, Instant::now()));
    });
    let tid = trx
        .recv_timeout(Duration::from_secs(5))
        .expect("reader thread start");
    AsyncRead {
        tid,
        rx,
        done: None,
    }
}

impl AsyncRead {
    fn poll_done(&mut self) -> bool {
        if self.done.is_none()
            && let Ok(r) = self.rx.try_recv()
        {
            self.done = Some(r);
        }
        self.done.is_some()
    }

    /// Whether the read has returned yet (does not wait).
    pub fn is_done(&mut self) -> bool {
        self.poll_done()
    }

    /// Waits until the thread is parked inside the FUSE request (or the read
    /// already returned). Panics after `timeout`.
    #[track_caller]
    pub fn wait_parked(&mut self, timeout: Duration) {
        let tid = self.tid;
        let ok = wait_until(timeout, || self.poll_done() || in_fuse(tid));
        assert!(ok, "reader thread {tid} never parked in the file system");
    }

    /// The read's result, waiting up to `timeout`; None if still blocked.
    pub fn wait(&mut self, timeout: Duration) -> Option<(io::Result<Vec<u8>>, Instant)> {
        if self.done.is_none()
            && let Ok(r) = self.rx.recv_timeout(timeout)
        {
            self.done = Some(r);
        }
        self.done.take()
    }

    /// Like `wait`, panicking when the read is still blocked.
    #[track_caller]
    pub fn result(&mut self, timeout: Duration) -> (io::Result<Vec<u8>>, Instant) {
        self.wait(timeout)
            .unwrap_or_else(|| panic!("read still blocked after {timeout:?}"))
    }
}

/// Whether a task sits in a FUSE request (wchan request_wait_answer /
/// fuse_*), or, when wchan is hidden, in state D.
pub fn in_fuse(tid: i32) -> bool {
    let w = wchan(tid);
    if w.is_empty() || w == "0" {
        matches!(pid_state(tid), Some('D'))
    } else {
        w.contains("fuse") || w.contains("request_wait_answer")
    }
}

/// The errno of a failed call, or panics on success.
#[track_caller]
pub fn errno<T: std::fmt::Debug>(r: io::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.raw_os_error().expect("os error"),
    }
}

pub fn stat_size(path: &Path) -> io::Result<u64> {
    std::fs::metadata(path).map(|m| m.len())
}

pub fn getxattr(path: &Path, name: &str) -> io::Result<String> {
    let p = cpath(path);
    let n = CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid strings and buffer.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(String::from_utf8_lossy(&buf[..r as usize]).into_owned())
    }
}

pub fn setxattr(path: &Path, name: &str, value: &str) -> io::Result<()> {
    let p = cpath(path);
    let n = CString::new(name).unwrap();
    // SAFETY: valid strings and buffer.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Spawns a process (stdout/stderr piped) and returns it, for tests that
/// signal it mid-flight. Use `finish` to collect it with a deadline.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

/// Waits for a spawned child with a deadline; kills it and panics on expiry.
pub fn finish(mut child: Child, timeout: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        let mut e = Vec::new();
        if let Some(s) = so.as_mut() {
            let _ = s.read_to_end(&mut o);
        }
        if let Some(s) = se.as_mut() {
            let _ = s.read_to_end(&mut e);
        }
        let _ = tx.send((o, e));
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {pid} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (stdout, stderr) = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    drop(reader);
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Reads from a child's stdout until `needle` appears or `timeout` passes;
/// returns everything read so far.
pub fn read_until(
    stdout: &mut std::process::ChildStdout,
    needle: &str,
    timeout: Duration,
) -> String {
    let fd = stdout.as_raw_fd();
    let deadline = Instant::now() + timeout;
    let mut acc = Vec::new();
    loop {
        if String::from_utf8_lossy(&acc).contains(needle) {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!(
                "did not see {needle:?} within {timeout:?}; got {:?}",
                String::from_utf8_lossy(&acc)
            );
        }
        if poll1(fd, libc::POLLIN, left.as_millis().max(1) as i32) == 0 {
            continue;
        }
        let chunk = read(fd, 4096).expect("read child stdout");
        if chunk.is_empty() {
            panic!(
                "child stdout closed before {needle:?}; got {:?}",
                String::from_utf8_lossy(&acc)
            );
        }
        acc.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&acc).into_owned()
}

/// Waits until `pid` is blocked in the kernel (state S or D) — i.e. parked
/// in a read — so that a signal or message lands on a waiting reader.
pub fn wait_blocked(pid: i32, timeout: Duration) -> bool {
    wait_until(timeout, || matches!(pid_state(pid), Some('S' | 'D')))
}

/// The wchan of a task, to tell "waiting in FUSE" from other sleeps.
pub fn wchan(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

/// Waits until a task is parked in a FUSE request.
pub fn wait_in_fuse(pid: i32, timeout: Duration) -> bool {
    wait_until(timeout, || in_fuse(pid))
}

/// A child's stdout read incrementally: `expect` consumes up to a needle and
/// keeps whatever came after it for the next call.
pub struct Lines {
    out: std::process::ChildStdout,
    buf: Vec<u8>,
}

impl Lines {
    pub fn new(child: &mut Child) -> Lines {
        Lines {
            out: child.stdout.take().expect("piped stdout"),
            buf: Vec::new(),
        }
    }

    /// Reads until `needle` has been seen; returns the text through it.
    #[track_caller]
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let fd = self.out.as_raw_fd();
        let deadline = Instant::now() + timeout;
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if let Some(at) = text.find(needle) {
                let end = at + needle.len();
                let consumed = text[..end].to_owned();
                self.buf = text.as_bytes()[end..].to_vec();
                return consumed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("did not see {needle:?} within {timeout:?}; got {text:?}");
            }
            if poll1(fd, libc::POLLIN, left.as_millis().max(1) as i32) == 0 {
                continue;
            }
            let chunk = read(fd, 4096).expect("read child stdout");
            if chunk.is_empty() {
                panic!("child stdout closed before {needle:?}; got {text:?}");
            }
            self.buf.extend_from_slice(&chunk);
        }
    }
}
