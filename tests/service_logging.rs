//! Running as a service (issue 5): quiet logs by default, refusals at
//! debug with the asking pid, syslog once detached, systemd readiness over
//! $NOTIFY_SOCKET, and the example units passing `systemd-analyze verify`.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// A Python client that provokes two refusals, then says its pid.
const TWO_REFUSALS: &str = r#"
    assert err(os.open, P("nobody"), os.O_WRONLY) == errno.ENOENT
    fd = client("slot")
    assert err(os.write, fd, b"x" * 100) == errno.EMSGSIZE
    print(os.getpid())
"#;

#[test]
fn quiet_by_default() {
    let m = mount!("max_msg=10");
    let _server = create_slot(&m.path("slot"));
    py_ok(&m, TWO_REFUSALS);
    assert_eq!(m.stderr(), "", "a default mount logs nothing");
}

#[test]
fn verbose_says_when_it_is_mounted_and_debug_logs_each_refusal_once_with_the_pid() {
    if !fuse_ok() {
        return;
    }
    let m = Mount::foreground_with(temp_dir("vv"), &["-vv"], &[], &["max_msg=10"]);
    let _server = create_slot(&m.path("slot"));
    let pid = py_ok(&m, TWO_REFUSALS).trim().to_owned();
    let log = m.stderr();
    assert!(log.contains("info: mounted at"), "{log}");
    for op in ["lookup", "write"] {
        let needle = format!("debug: {op} refused for pid {pid}");
        let lines = log.lines().filter(|l| l.contains(&needle)).count();
        assert_eq!(lines, 1, "{needle:?} in:\n{log}");
    }
    assert!(log.contains(&format!("errno {}", libc::EMSGSIZE)), "{log}");
}

/// A datagram socket bound for the test, removed on drop.
struct Listener {
    socket: UnixDatagram,
    path: Option<std::path::PathBuf>,
}

impl Listener {
    fn at(path: &Path) -> Listener {
        let socket = UnixDatagram::bind(path).expect("bind listener");
        Listener::new(socket, Some(path.to_owned()))
    }

    fn abstract_name(name: &str) -> Listener {
        let address = SocketAddr::from_abstract_name(name).unwrap();
        Listener::new(UnixDatagram::bind_addr(&address).unwrap(), None)
    }

    fn new(socket: UnixDatagram, path: Option<std::path::PathBuf>) -> Listener {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Listener { socket, path }
    }

    /// The first datagram containing `needle`, within `timeout`.
    #[track_caller]
    fn expect(&self, needle: &str, timeout: Duration) -> String {
        let mut seen = Vec::new();
        let found = wait_until(timeout, || {
            let mut buf = [0u8; 4096];
            match self.socket.recv(&mut buf) {
                Ok(n) => seen.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(_) => return false,
            }
            seen.last().is_some_and(|d| d.contains(needle))
        });
        assert!(
            found,
            "no datagram with {needle:?} within {timeout:?}; got {seen:?}"
        );
        seen.pop().unwrap()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[test]
fn detached_daemon_logs_to_syslog() {
    if !fuse_ok() {
        return;
    }
    let dev_log = Path::new("/dev/log");
    if dev_log.exists() {
        eprintln!("SKIP: /dev/log belongs to a running syslog; cannot listen in");
        return;
    }
    let syslog = Listener::at(dev_log);
    let m = Mount::daemon_with(&["-v"], &[], &[]);
    let line = syslog.expect(&format!("mailslotfs[{}]", m.pid()), Duration::from_secs(5));
    assert!(line.contains("info: mounted at"), "{line}");
    // LOG_DAEMON | LOG_INFO
    assert!(line.starts_with("<30>"), "{line}");
    assert_eq!(m.stderr(), "", "the mount command itself prints nothing");
}

#[test]
fn readiness_is_reported_to_systemd_once_mounted() {
    if !fuse_ok() {
        return;
    }
    // A socket path, as systemd gives a service, with --foreground.
    let dir = temp_dir("notify");
    let socket_path = dir.with_extension("sock");
    let systemd = Listener::at(&socket_path);
    let notify = socket_path.to_str().unwrap();
    let mut m = Mount::foreground_with(dir, &[], &[("NOTIFY_SOCKET", notify)], &[]);
    let ready = systemd.expect("READY=1", Duration::from_secs(5));
    assert!(ready.contains(&format!("MAINPID={}", m.pid())), "{ready}");
    assert!(
        ready.contains(&format!("STATUS=mounted at {}", m.dir.display())),
        "{ready}"
    );
    let status = m.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    systemd.expect("STOPPING=1", Duration::from_secs(1));

    // An abstract socket (`@name`), and a daemon that detached: the
    // daemon's own pid is the main pid.
    let name = format!("mailslotfs-test-{}", std::process::id());
    let systemd = Listener::abstract_name(&name);
    let m = Mount::daemon_with(&[], &[("NOTIFY_SOCKET", &format!("@{name}"))], &[]);
    let ready = systemd.expect("READY=1", Duration::from_secs(5));
    assert!(ready.contains(&format!("MAINPID={}", m.pid())), "{ready}");
}

#[test]
fn example_units_pass_systemd_analyze_verify() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    if !have_program("systemd-analyze", "systemd") {
        return;
    }
    let dir = temp_dir("units");
    let service = std::fs::read_to_string(units.join("mailslotfs.service")).unwrap();
    assert!(service.contains("Type=notify"), "readiness is reported");
    // The unit names the installed binary; verify it against this one.
    let service = service.replace("/usr/local/bin/mailslotfs", BIN);
    std::fs::write(dir.join("mailslotfs.service"), service).unwrap();
    std::fs::copy(units.join("mailslot.mount"), dir.join("mailslot.mount")).unwrap();
    let out = run(
        // --man=no: whether the Documentation= pages are installed depends
        // on the machine (minimal images drop man pages), not on the unit.
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.join("mailslotfs.service"))
            .arg(dir.join("mailslot.mount")),
        Duration::from_secs(30),
    );
    let _ = std::fs::remove_dir_all(&dir);
    ok(&out);
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(complaints.is_empty(), "systemd-analyze: {complaints}");
}
