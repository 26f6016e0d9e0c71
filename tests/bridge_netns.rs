//! Real bridged hosts: each `mailslotfs mount --bridge` runs in its own
//! network namespace, all joined by a Linux bridge in one more namespace
//! that this test creates (10.213.N.0/24, addresses that exist only
//! there). Samba's nmbd is a real peer (docs: samba-peer.md) and tshark
//! judges every datagram we emit. Nothing outside these namespaces is ever
//! addressed; guards kill every process by PID and delete the namespaces,
//! also when a test fails.
//!
//! The daemons enter their namespace with `nsenter --net` rather than `ip
//! netns exec`, which would also give them a private mount namespace and
//! hide the FUSE mount from the test.

mod common;

use std::fs::File;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use mailslotfs::wire::{
    HeaderFlags, MailslotDatagram, MailslotPath, MessageType, NamePacket, NetbiosName, NodeType,
    Opcode, Question, QuestionType, Scope,
};

/// How long nmbd may take to announce itself and to own `MSLDOM<1C>`
/// (≈4 s measured; samba-peer.md §6), with room for a loaded machine.
const NMBD_TIMEOUT: Duration = Duration::from_secs(60);
/// A datagram crossing the private bridge.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

static LABS: AtomicUsize = AtomicUsize::new(0);

/// Whether root, FUSE and `tools` are here. Outside CI a missing piece
/// skips the test with the reason; under CI (env CI set) it fails it.
fn lab_ready(tools: &[&str]) -> bool {
    if !fuse_ok() {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let missing: Vec<&str> = ["ip", "nsenter"]
        .iter()
        .chain(tools)
        .copied()
        .filter(|tool| !on_path(tool))
        .collect();
    let why = match (root, missing.is_empty()) {
        (true, true) => return true,
        (false, _) => "network namespaces need root".to_owned(),
        (true, false) => format!(
            "missing {} (scripts/deps.sh installs them)",
            missing.join(", ")
        ),
    };
    if std::env::var_os("CI").is_some() {
        panic!("bridge namespace tests cannot run under CI: {why}");
    }
    eprintln!("SKIP: {why}");
    false
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .any(|dir| Path::new(dir).join(tool).is_file())
}

#[track_caller]
fn ip(args: &[&str]) {
    ok(&run(Command::new("ip").args(args), CMD_TIMEOUT));
}

/// Namespaces `<prefix>-sw` (the bridge) and `<prefix>-0`, `-1`, ... (the
/// hosts, 10.213.N.1, .2, ... on eth0), deleted on drop.
struct Lab {
    prefix: String,
    subnet: usize,
    made: Vec<String>,
}

impl Lab {
    fn new(hosts: usize) -> Lab {
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let mut lab = Lab {
            prefix: format!("msltest-{}-{n}", std::process::id()),
            subnet: n + 1,
            made: Vec::new(),
        };
        let switch = lab.add_namespace("sw");
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &switch,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        for host in 0..hosts {
            let ns = lab.add_namespace(&host.to_string());
            let port = format!("p{host}");
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port,
            ]);
            ip(&["-n", &ns, "link", "set", &port, "netns", &switch]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &switch, "link", "set", &port, "up"]);
            let cidr = format!("{}/24", lab.addr(host));
            let broadcast = format!("10.213.{}.255", lab.subnet);
            ip(&[
                "-n", &ns, "addr", "add", &cidr, "brd", &broadcast, "dev", "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    fn add_namespace(&mut self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.prefix);
        ip(&["netns", "add", &name]);
        self.made.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    fn ns(&self, host: usize) -> String {
        format!("{}-{host}", self.prefix)
    }

    fn addr(&self, host: usize) -> String {
        format!("10.213.{}.{}", self.subnet, host + 1)
    }

    /// `mailslotfs mount --bridge ARGS` inside host's namespace.
    fn bridged(&self, host: usize, args: &[&str]) -> Mount {
        bridged_in(&self.ns(host), args)
    }

    /// Starts `command` inside host's namespace (`ip netns exec` execs it,
    /// so the PID is the command's), output to `log`.
    fn start(&self, host: usize, command: &[&str], log: &Path) -> Process {
        start_in(&self.ns(host), command, log)
    }
}

/// Starts `command` inside network namespace `ns`, output to `log`.
fn start_in(ns: &str, command: &[&str], log: &Path) -> Process {
    let out = File::create(log).expect("log file");
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(command)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .expect("spawn in namespace");
    Process {
        child,
        log: log.to_path_buf(),
    }
}

/// `mailslotfs mount --bridge ARGS` inside network namespace `ns`.
fn bridged_in(ns: &str, args: &[&str]) -> Mount {
    let dir = temp_dir("net");
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{ns}"))
        .arg(BIN)
        .arg("mount")
        .arg(&dir)
        .args(["--foreground", "--bridge", "-v"])
        .args(args);
    Mount::spawn(dir, cmd)
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.made.iter().rev() {
            let _ = try_run(
                Command::new("ip").args(["netns", "del", name]),
                None,
                CMD_TIMEOUT,
            );
        }
    }
}

/// A background process (nmbd, tshark), stopped by PID on drop.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    #[track_caller]
    fn wait_for_log(&self, needle: &str, timeout: Duration) {
        assert!(
            wait_until(timeout, || self.log().contains(needle)),
            "no {needle:?} in {} within {timeout:?}:\n{}",
            self.log.display(),
            self.log()
        );
    }

    /// SIGTERM, then SIGKILL if it lingers; true if it stopped on SIGTERM.
    fn stop(&mut self) -> bool {
        if self.child.try_wait().ok().flatten().is_some() {
            return true;
        }
        kill(self.child.id() as i32, libc::SIGTERM);
        let polite = wait_until(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten().is_some()
        });
        if !polite {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        polite
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A temporary directory, removed with everything in it on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        Scratch(temp_dir(tag))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// tshark on a host's eth0, writing what matches `filter` to a pcap.
struct Capture {
    process: Process,
    pcap: PathBuf,
    _dir: Scratch,
}

impl Capture {
    fn start(lab: &Lab, host: usize, filter: &str) -> Capture {
        let dir = Scratch::new("pcap");
        let pcap = dir.0.join("capture.pcap");
        let pcap_arg = pcap.to_string_lossy().into_owned();
        let process = lab.start(
            host,
            &["tshark", "-i", "eth0", "-f", filter, "-w", &pcap_arg, "-q"],
            &pcap.with_extension("log"),
        );
        process.wait_for_log("Capture started", CMD_TIMEOUT);
        Capture {
            process,
            pcap,
            _dir: dir,
        }
    }

    /// Frames the pcap holds so far that match a display `filter`.
    fn count(&self, filter: &str) -> usize {
        let pcap = self.pcap.to_string_lossy().into_owned();
        let out = run(
            Command::new("tshark").args([
                "-r",
                &pcap,
                "-Y",
                filter,
                "-T",
                "fields",
                "-e",
                "frame.number",
            ]),
            CMD_TIMEOUT,
        );
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    /// tshark's one-line summary of every frame so far, for messages.
    fn summary(&self) -> String {
        let pcap = self.pcap.to_string_lossy().into_owned();
        let out = run(Command::new("tshark").args(["-r", &pcap]), CMD_TIMEOUT);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the pcap holds `frames` frames (what stopping tshark
    /// has not written yet is lost), stops the capture and dissects it:
    /// one row per frame with `fields`, after checking that tshark found
    /// nothing malformed and raised no warning or error.
    fn dissect(mut self, frames: usize, fields: &[&str]) -> Vec<Vec<String>> {
        let pcap = self.pcap.to_string_lossy().into_owned();
        let read = |fields: &[&str]| {
            let mut cmd = Command::new("tshark");
            cmd.args(["-r", &pcap, "-T", "fields", "-E", "separator=\t"]);
            for field in fields {
                cmd.args(["-e", field]);
            }
            run(&mut cmd, CMD_TIMEOUT)
        };
        let written = || {
            String::from_utf8_lossy(&read(&["frame.number"]).stdout)
                .lines()
                .count()
        };
        let complete = wait_until(DELIVERY_TIMEOUT, || written() >= frames);
        assert!(self.process.stop(), "tshark did not stop on SIGTERM");
        assert!(
            complete,
            "the capture holds {} of {frames} frames",
            written()
        );
        let checked: Vec<&str> = ["_ws.malformed", "_ws.expert.severity"]
            .iter()
            .chain(fields)
            .copied()
            .collect();
        let text = ok(&read(&checked));
        text.lines()
            .map(|line| {
                let mut columns: Vec<String> = line.split('\t').map(str::to_owned).collect();
                let checks: Vec<String> = columns.drain(..2).collect();
                assert!(
                    checks.iter().all(String::is_empty),
                    "tshark flagged a frame (malformed, expert severity): {checks:?} in {line}"
                );
                columns
            })
            .collect()
    }
}

/// The mailslot data of a frame as tshark prints it.
fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn no_message_waiting(fd: &OwnedFd) -> bool {
    poll1(fd.as_raw_fd(), libc::POLLIN, 0) == 0
}

fn bridge_attr(m: &Mount, name: &str) -> String {
    getxattr(&m.path(".net"), &format!("user.mailslot.bridge.{name}")).expect("bridge xattr")
}

/// Four bridged hosts: ALPHA, BETA, GAMMA in DOM1, DELTA in DOM2. ALPHA
/// writes through `.net` in every form; each host gets exactly what it
/// should, once; tshark finds every datagram ALPHA sent well-formed.
#[test]
fn bridged_hosts_exchange_mailslot_datagrams() {
    if !lab_ready(&["tshark"]) {
        return;
    }
    let lab = Lab::new(4);
    let peers: Vec<String> = ["BETA", "GAMMA", "DELTA"]
        .iter()
        .enumerate()
        .map(|(i, name)| format!("--peer={name}={}", lab.addr(i + 1)))
        .collect();
    let mut alpha_args = vec!["--netbios-name=alpha", "--domain=dom1"];
    alpha_args.extend(peers.iter().map(String::as_str));
    let hosts = [
        lab.bridged(0, &alpha_args),
        lab.bridged(1, &["--netbios-name=BETA", "--domain=DOM1"]),
        lab.bridged(2, &["-o", "bridge,netbios_name=GAMMA,domain=DOM1"]),
        lab.bridged(3, &["--netbios-name=DELTA", "--domain=DOM2"]),
    ];
    let chats: Vec<OwnedFd> = hosts.iter().map(|m| create_slot(&m.path("chat"))).collect();
    std::fs::create_dir(hosts[1].path("App")).unwrap();
    let inbox = create_slot(&hosts[1].path("App/Inbox"));
    let capture = Capture::start(
        &lab,
        0,
        &format!("udp port 138 and src host {}", lab.addr(0)),
    );

    let alpha = &hosts[0];
    sh_ok(
        alpha,
        r#"
        set -e
        cd /
        echo -n unicast > $D/.net/beta/chat
        echo -n everyone > $D/.net/*/chat
        [ "$(echo $D/.net/*/chat)" = "$D/.net/*/chat" ]
        mkdir -p $D/.net/BETA/app
        echo -n nested > $D/.net/BETA/APP/INBOX
        echo -n dc > $D/.net/DOM1#1c/chat
        echo -n far > $D/.net/DELTA/chat
        "#,
    );
    py_ok(
        alpha,
        r#"
        fd = os.open(P(".net/GAMMA/chat"), os.O_WRONLY | os.O_CREAT)
        assert os.write(fd, b"x" * 424) == 424
        assert err(os.write, fd, b"x" * 425) == errno.EMSGSIZE
        os.close(fd)
        assert err(os.open, P(".net/BETA/chat"), os.O_RDWR | os.O_CREAT) == errno.EACCES
        assert err(os.open, P(".net/BETA/chat"), os.O_RDONLY) == errno.EACCES
        assert err(os.mkdir, P(".net/NEW")) == errno.EEXIST
        assert err(os.rmdir, P(".net")) == errno.EPERM
        assert sorted(os.listdir(P(".net"))) == ["*"]
        "#,
    );
    // One more message to each host, after everything else: a duplicate
    // would arrive before it. ALPHA's own is delivered without the network.
    for name in ["ALPHA", "BETA", "GAMMA", "DELTA"] {
        sh_ok(alpha, &format!("echo -n end > $D/.net/{name}/chat"));
    }

    let expected: [&[&[u8]]; 4] = [
        &[b"everyone", b"dc", b"end"],
        &[b"unicast", b"everyone", b"dc", b"end"],
        &[b"everyone", b"dc", &[b'x'; 424], b"end"],
        &[b"far", b"end"],
    ];
    for (host, (fd, messages)) in chats.iter().zip(expected).enumerate() {
        for message in messages {
            let got = recv(fd, DELIVERY_TIMEOUT);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(message),
                "host {host}"
            );
        }
        assert!(no_message_waiting(fd), "host {host}: an extra message");
    }
    assert_eq!(recv(&inbox, DELIVERY_TIMEOUT), b"nested");
    assert_eq!(bridge_attr(alpha, "sent"), "9");
    assert_eq!(bridge_attr(alpha, "netbios_name"), "ALPHA");
    assert_eq!(bridge_attr(&hosts[1], "delivered"), "5");
    assert_eq!(bridge_attr(&hosts[3], "dropped_not_for_us"), "2");

    let frames = capture.dissect(
        9,
        &[
            "nbdgm.type",
            "nbdgm.src.ip",
            "nbdgm.src.port",
            "nbdgm.source_name",
            "nbdgm.destination_name",
            "smb.trans_name",
            "mailslot.opcode",
            "mailslot.class",
            "data.data",
        ],
    );
    let unique = "16";
    let group = "17";
    let sent: [(&str, &str, &str, Vec<u8>); 9] = [
        (unique, "BETA<00>", r"\MAILSLOT\chat", b"unicast".to_vec()),
        (group, "DOM1<00>", r"\MAILSLOT\chat", b"everyone".to_vec()),
        (
            unique,
            "BETA<00>",
            r"\MAILSLOT\app\INBOX",
            b"nested".to_vec(),
        ),
        (group, "DOM1<1c>", r"\MAILSLOT\chat", b"dc".to_vec()),
        (unique, "DELTA<00>", r"\MAILSLOT\chat", b"far".to_vec()),
        (unique, "GAMMA<00>", r"\MAILSLOT\chat", vec![b'x'; 424]),
        (unique, "BETA<00>", r"\MAILSLOT\chat", b"end".to_vec()),
        (unique, "GAMMA<00>", r"\MAILSLOT\chat", b"end".to_vec()),
        (unique, "DELTA<00>", r"\MAILSLOT\chat", b"end".to_vec()),
    ];
    assert_eq!(frames.len(), sent.len(), "frames: {frames:#?}");
    for (frame, (msg_type, to, slot, data)) in frames.iter().zip(sent) {
        let want = [
            msg_type,
            &lab.addr(0),
            "138",
            "ALPHA<00>",
            to,
            slot,
            "1",
            "2",
            &hex(&data),
        ];
        assert_eq!(frame, &want, "frame to {to} {slot}");
    }
}

/// A domain carried on a multicast group: a `*` write reaches the other
/// member through the group, and the writer's own slot once.
#[test]
fn domains_can_travel_on_a_multicast_group() {
    if !lab_ready(&[]) {
        return;
    }
    let lab = Lab::new(2);
    let group = "--multicast=239.213.0.1";
    let hosts = [
        lab.bridged(0, &["--netbios-name=ONE", "--domain=MDOM", group]),
        lab.bridged(1, &["--netbios-name=TWO", "--domain=MDOM", group]),
    ];
    let chats: Vec<OwnedFd> = hosts.iter().map(|m| create_slot(&m.path("chat"))).collect();
    sh_ok(&hosts[0], "echo -n grouped > $D/.net/*/chat");
    for fd in &chats {
        assert_eq!(recv(fd, DELIVERY_TIMEOUT), b"grouped");
    }
    assert_eq!(bridge_attr(&hosts[0], "group"), "239.213.0.1:138");
    sh_ok(&hosts[0], "echo -n end > $D/.net/ONE/chat");
    assert_eq!(
        recv(&chats[0], DELIVERY_TIMEOUT),
        b"end",
        "a second copy came first"
    );
}

/// What a user gets wrong is one line and a failed command, before
/// anything is mounted (no namespace needed: nothing is sent).
#[test]
fn bridge_errors_are_one_line() {
    let taken = std::net::UdpSocket::bind("0.0.0.0:0").expect("a free UDP port");
    let port = taken.local_addr().unwrap().port().to_string();
    let cases: [(&[&str], String); 4] = [
        (
            &["--bridge", "--peer", "SUE"],
            "--peer SUE: expected NAME=ADDR".into(),
        ),
        (
            &["-o", "domain=X"],
            "domain: needs --bridge (or -o bridge)".into(),
        ),
        (
            &["--bridge", "--bind", "192.0.2.77"],
            "bridge: --bind 192.0.2.77: no interface has this address".into(),
        ),
        (
            &[
                "--bridge",
                "--bind",
                "127.0.0.1",
                "--netbios-name",
                "X",
                "--port",
                &port,
            ],
            format!("bridge: bind 0.0.0.0:{port}: address in use"),
        ),
    ];
    let dir = Scratch::new("badflags");
    for (args, why) in cases {
        let out = run(
            Command::new(BIN)
                .arg("mount")
                .arg(&dir.0)
                .arg("--foreground")
                .args(args),
            CMD_TIMEOUT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("mailslotfs: {why}")),
            "{args:?}: {stderr}"
        );
        assert!(!is_mounted(&dir.0));
    }
}

/// The LOGON_PRIMARY_QUERY a workstation sends ([MS-ADTS] 6.3.1.1): who
/// asks, and the mailslot the answer goes to.
fn logon_primary_query(computer: &str, reply_slot: &str) -> Vec<u8> {
    let mut query = 7u16.to_le_bytes().to_vec();
    for text in [computer, reply_slot] {
        query.extend(text.bytes().chain([0]));
    }
    if query.len() % 2 == 1 {
        query.push(0);
    }
    query.extend(
        computer
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes),
    );
    query.extend(1u32.to_le_bytes()); // NtVersion
    query.extend([0xff; 4]); // LmNtToken, Lm20Token
    query
}

/// nmbd as the domain's PDC in one namespace, a bridged host in another:
/// nmbd's browse announcements arrive in the host's `browse` slot, and a
/// NETLOGON query written to `.net/MSLDOM#1c/net/netlogon` is answered
/// into the reply slot it names. tshark checks the queries we sent.
#[test]
fn nmbd_is_a_real_peer() {
    if !lab_ready(&["tshark", "nmbd", "testparm"]) {
        return;
    }
    let lab = Lab::new(2);
    let host = lab.bridged(
        1,
        &[
            "--netbios-name=CLIENTB",
            "--domain=MSLDOM",
            &format!("--peer=MSLPDC={}", lab.addr(0)),
        ],
    );
    let browse = create_slot(&host.path("browse"));
    std::fs::create_dir(host.path("net")).unwrap();
    let reply = create_slot(&host.path("net/getdc573"));
    std::fs::create_dir_all(host.path(".net/MSLDOM#1c/NET")).unwrap();
    let capture = Capture::start(
        &lab,
        1,
        &format!("udp port 138 and src host {}", lab.addr(1)),
    );

    let samba = Scratch::new("nmbd");
    let conf = write_pdc_config(&samba.0, &lab.addr(0));
    let nmbd = start_nmbd(&lab.ns(0), &conf, &samba.0.join("nmbd.out"));

    // nmbd announces itself (HostAnnouncement, opcode 1) as it starts.
    let announcement = recv(&browse, NMBD_TIMEOUT);
    assert!(
        announcement.windows(6).any(|w| w == b"MSLPDC"),
        "not nmbd's announcement: {announcement:02x?}\n{}",
        nmbd.log()
    );

    // nmbd ignores queries until it owns MSLDOM<1C> (≈4 s): ask until it answers.
    let query = logon_primary_query("CLIENTB", r"\MAILSLOT\NET\GETDC573");
    let endpoint = host.path(".net/MSLDOM#1c/NET/NETLOGON");
    let deadline = Instant::now() + NMBD_TIMEOUT;
    let mut queries = 0;
    let answer = loop {
        assert!(
            Instant::now() < deadline,
            "no NETLOGON reply:\n{}",
            nmbd.log()
        );
        std::fs::write(&endpoint, &query).expect("write the query through the bridge");
        queries += 1;
        if poll1(reply.as_raw_fd(), libc::POLLIN, 1000) & libc::POLLIN != 0 {
            break read(reply.as_raw_fd(), 1 << 16).expect("read the reply");
        }
    };
    // LOGON_PRIMARY_RESPONSE (12), naming the PDC.
    assert_eq!(answer[..2], 12u16.to_le_bytes(), "reply {answer:02x?}");
    assert!(
        answer.windows(7).any(|w| w == b"MSLPDC\0"),
        "reply {answer:02x?}"
    );
    drop(nmbd);

    let frames = capture.dissect(
        queries,
        &[
            "nbdgm.type",
            "nbdgm.source_name",
            "nbdgm.destination_name",
            "smb.trans_name",
            "mailslot.opcode",
            "smb_netlogon.command",
            "smb_netlogon.mailslot_name",
        ],
    );
    assert_eq!(frames.len(), queries, "frames: {frames:#?}");
    for frame in frames {
        let want = [
            "17",
            "CLIENTB<00>",
            "MSLDOM<1c>",
            r"\MAILSLOT\NET\NETLOGON",
            "1",
            "0x07",
            r"\MAILSLOT\NET\GETDC573",
        ];
        assert_eq!(frame, want);
    }
}

/// The PDC configuration of samba-peer.md §4, every path in `dir`.
fn write_pdc_config(dir: &Path, address: &str) -> PathBuf {
    write_nmbd_config(
        dir,
        "MSLPDC",
        address,
        "    wins support = no
    server role = classic primary domain controller
    domain logons = yes
    domain master = yes
    local master = yes
    preferred master = yes
    os level = 65
",
    )
}

/// An nmbd configuration for `name` in MSLDOM on `address` only, every
/// path in `dir`, with `role` lines added.
fn write_nmbd_config(dir: &Path, name: &str, address: &str, role: &str) -> PathBuf {
    let d = dir.display();
    let conf = format!(
        "[global]
    workgroup = MSLDOM
    netbios name = {name}
    server string = mailslot interop pdc
    interfaces = {address}/24
    bind interfaces only = yes
    disable netbios = no
    dns proxy = no
    security = user
    lock directory = {d}/lock
    state directory = {d}/state
    cache directory = {d}/cache
    pid directory = {d}/run
    private dir = {d}/private
    ncalrpc dir = {d}/ncalrpc
    nmbd:socket dir = {d}/sock
    log file = {d}/log/log.%m
    max log size = 0
    debug hires timestamp = yes
    idmap config * : backend = tdb
    idmap config * : range = 3000-7999
{role}"
    );
    for sub in [
        "lock", "state", "cache", "run", "private", "ncalrpc", "sock", "log",
    ] {
        std::fs::create_dir_all(dir.join(sub)).expect("samba dir");
    }
    let path = dir.join("smb.conf");
    std::fs::write(&path, conf).expect("smb.conf");
    path
}

/// Starts nmbd with `conf` in namespace `ns`, checked by testparm first.
fn start_nmbd(ns: &str, conf: &Path, log: &Path) -> Process {
    let conf = conf.to_string_lossy().into_owned();
    ok(&run(
        Command::new("testparm").args(["-s", &conf]),
        CMD_TIMEOUT,
    ));
    let command = [
        "nmbd",
        "-F",
        "--no-process-group",
        "--debug-stdout",
        "-d",
        "3",
        "-s",
        &conf,
    ];
    start_in(ns, &command, log)
}

/// Writes `message` to `.net/TARGET/chat` on `from` until it arrives in
/// `inbox` (a link that just came up may need a moment for its route);
/// earlier copies and other messages in `inbox` are read and skipped.
fn send_until_received(from: &Mount, target: &str, inbox: &OwnedFd, message: &str) {
    let delivered = wait_until(DELIVERY_TIMEOUT, || {
        let _ = std::fs::write(from.path(&format!(".net/{target}/chat")), message);
        let mut seen = false;
        while poll1(inbox.as_raw_fd(), libc::POLLIN, 200) & libc::POLLIN != 0 {
            seen |= recv(inbox, DELIVERY_TIMEOUT) == message.as_bytes();
        }
        seen
    });
    assert!(delivered, "{message:?} never reached {target}");
}

/// The interface going down and up, and losing and regaining its address,
/// needs no restart: the socket is bound to the wildcard address, so it
/// keeps receiving, and sends that fail while the link is down fail that
/// one write (counted as `send_failed`) and nothing more.
#[test]
fn bridge_recovers_when_its_interface_goes_down_and_up() {
    if !lab_ready(&[]) {
        return;
    }
    let lab = Lab::new(2);
    let one = lab.bridged(0, &["--netbios-name=ONE", "--domain=FDOM"]);
    let two = lab.bridged(1, &["--netbios-name=TWO", "--domain=FDOM"]);
    let chat_one = create_slot(&one.path("chat"));
    let chat_two = create_slot(&two.path("chat"));
    send_until_received(&one, "TWO", &chat_two, "before");
    let ns = lab.ns(1);
    let cidr = format!("{}/24", lab.addr(1));
    let broadcast = format!("10.213.{}.255", lab.subnet);
    for round in ["down-up", "address-lost"] {
        if round == "down-up" {
            ip(&["-n", &ns, "link", "set", "eth0", "down"]);
        } else {
            ip(&["-n", &ns, "addr", "del", &cidr, "dev", "eth0"]);
        }
        // While cut off, a write fails with a clear error or goes nowhere;
        // the daemon stays up and serves local users.
        let _ = std::fs::write(two.path(".net/ONE/chat"), "lost");
        assert!(pid_alive(two.pid()), "the daemon died with its link");
        sh_ok(&two, "echo -n local > $D/.net/TWO/chat");
        assert_eq!(recv(&chat_two, DELIVERY_TIMEOUT), b"local");
        if round == "down-up" {
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        } else {
            ip(&[
                "-n", &ns, "addr", "add", &cidr, "brd", &broadcast, "dev", "eth0",
            ]);
        }
        send_until_received(&one, "TWO", &chat_two, &format!("{round}: to two"));
        send_until_received(&two, "ONE", &chat_one, &format!("{round}: to one"));
    }
}

fn daemon_status_field(pid: i32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field).map(|v| v.trim().to_owned()))
        .unwrap_or_default()
}

/// `--user nobody`: the daemon binds port 138 and mounts as root, then
/// runs as nobody, with no way back; the bridge and the mount keep
/// working, and SIGTERM still unmounts (through the root helper).
#[test]
fn daemon_drops_to_an_unprivileged_user_and_keeps_working() {
    if !lab_ready(&[]) {
        return;
    }
    let lab = Lab::new(2);
    let one = lab.bridged(0, &["--netbios-name=ONE", "--domain=UDOM"]);
    let mut two = lab.bridged(
        1,
        &[
            "--netbios-name=TWO",
            "--domain=UDOM",
            "-o",
            "user=nobody,allow_other",
        ],
    );
    let dropped = wait_until(CMD_TIMEOUT, || {
        daemon_status_field(two.pid(), "Uid:")
            .split_whitespace()
            .all(|id| id == "65534")
    });
    assert!(dropped, "still {}", daemon_status_field(two.pid(), "Uid:"));
    assert_eq!(daemon_status_field(two.pid(), "Groups:"), "65534");
    let chat_one = create_slot(&one.path("chat"));
    let chat_two = create_slot(&two.path("chat"));
    send_until_received(&one, "TWO", &chat_two, "to nobody's host");
    send_until_received(&two, "ONE", &chat_one, "from nobody's host");
    drop((chat_one, chat_two));
    let status = two.signal_and_wait(libc::SIGTERM, CMD_TIMEOUT);
    assert!(status.is_some_and(|s| s.success()), "{:?}", two.stderr());
    assert!(
        wait_until(CMD_TIMEOUT, || !is_mounted(&two.dir)),
        "the mount outlived the daemon"
    );
}

/// `Udp: ... RcvbufErrors` of a namespace's /proc/net/snmp: datagrams the
/// kernel dropped because the bridge's socket buffer was full.
fn kernel_receive_drops(lab: &Lab, host: usize) -> u64 {
    let snmp = ok(&run(
        Command::new("ip").args(["netns", "exec", &lab.ns(host), "cat", "/proc/net/snmp"]),
        CMD_TIMEOUT,
    ));
    let udp: Vec<Vec<&str>> = snmp
        .lines()
        .filter(|l| l.starts_with("Udp: "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let column = udp[0].iter().position(|h| *h == "RcvbufErrors").unwrap();
    udp[1][column].parse().unwrap()
}

/// What the sender pushes at full speed into a bridged host.
const FLOOD_DATAGRAMS: usize = 200_000;

/// 200,000 datagrams as fast as one sender can go, into a slot nobody
/// reads, on a mount whose memory ceiling (4 MiB) is far below what they
/// would take: the daemon stays up and answers local users throughout,
/// its memory stays bounded, and every datagram is delivered or counted
/// as dropped, by the bridge or by the kernel (socket buffer full).
#[test]
fn a_datagram_flood_is_delivered_or_counted_and_memory_stays_bounded() {
    if !lab_ready(&["python3"]) {
        return;
    }
    let lab = Lab::new(2);
    let host = lab.bridged(1, &["--netbios-name=SINK", "-o", "max_memory=4M"]);
    let flood = create_slot(&host.path("flood"));
    let payload = MailslotDatagram {
        msg_type: MessageType::DirectUnique,
        node_type: NodeType::B,
        dgm_id: 1,
        source_addr: SocketAddrV4::new(lab.addr(0).parse().unwrap(), 138),
        source_name: NetbiosName::new("SOURCE", 0).unwrap(),
        destination_name: NetbiosName::new("SINK", 0).unwrap(),
        scope: Scope::default(),
        mailslot: MailslotPath::new(r"\MAILSLOT\flood").unwrap(),
        priority: 0,
        data: vec![b'f'; 100],
    }
    .emit()
    .unwrap();
    let kernel_before = kernel_receive_drops(&lab, 1);
    let sender = Command::new("ip")
        .args(["netns", "exec", &lab.ns(0), "python3", "-c"])
        .arg(
            "import socket, sys\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             p = bytes.fromhex(sys.argv[1]); to = (sys.argv[2], 138)\n\
             for _ in range(int(sys.argv[3])): s.sendto(p, to)\n",
        )
        .arg(hex(&payload))
        .arg(lab.addr(1))
        .arg(FLOOD_DATAGRAMS.to_string())
        .stdin(Stdio::null())
        .spawn()
        .expect("start the sender");
    let mut sender = ChildGuard(sender);
    let started = Instant::now();
    let mut slowest_local = Duration::ZERO;
    while sender.0.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(120), "sender hung");
        let asked = Instant::now();
        let figure = getxattr(&host.path("flood"), "user.mailslot.message_count");
        assert!(figure.is_ok(), "a local user got no answer: {figure:?}");
        slowest_local = slowest_local.max(asked.elapsed());
    }
    let took = started.elapsed();
    let counted = || {
        let kernel = kernel_receive_drops(&lab, 1) - kernel_before;
        let bridge: u64 = ["delivered", "dropped_slot_full", "dropped_out_of_memory"]
            .iter()
            .map(|c| bridge_attr(&host, c).parse::<u64>().unwrap())
            .sum();
        kernel + bridge
    };
    let settled = wait_until(DELIVERY_TIMEOUT, || counted() == FLOOD_DATAGRAMS as u64);
    let rss_kib: u64 = daemon_status_field(host.pid(), "VmHWM:")
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    let figures = format!(
        "sent {FLOOD_DATAGRAMS} in {took:?}; delivered {}, dropped_out_of_memory {}, \
         dropped_slot_full {}, kernel socket-buffer drops {}; queued {}; peak RSS {rss_kib} KiB; \
         slowest local getxattr during the flood {slowest_local:?}",
        bridge_attr(&host, "delivered"),
        bridge_attr(&host, "dropped_out_of_memory"),
        bridge_attr(&host, "dropped_slot_full"),
        kernel_receive_drops(&lab, 1) - kernel_before,
        getxattr(&host.path("flood"), "user.mailslot.message_count").unwrap(),
    );
    eprintln!("flood figures: {figures}");
    assert!(settled, "received + dropped != sent: {figures}");
    assert!(rss_kib < 64 * 1024, "memory grew past bounds: {figures}");
    assert!(pid_alive(host.pid()));
    // Once the slot goes, its memory is free for new messages again.
    drop(flood);
    // The release travels to the daemon on its own; the slot's memory is
    // free once its name is gone.
    let released = wait_until(DELIVERY_TIMEOUT, || !host.path("flood").exists());
    assert!(released, "the flooded slot outlived its server");
    let again = create_slot(&host.path("after"));
    sh_ok(&host, "echo -n fine > $D/.net/SINK/after");
    assert_eq!(recv(&again, DELIVERY_TIMEOUT), b"fine");
}

/// Kills a child process by PID when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal smb.conf for nmblookup, so it reads nothing of the host's.
fn nmblookup_config(dir: &Path) -> String {
    let path = dir.join("nmblookup.conf");
    std::fs::write(
        &path,
        "[global]\n    workgroup = NSDOM\n    disable netbios = no\n",
    )
    .expect("nmblookup.conf");
    path.to_string_lossy().into_owned()
}

/// Samba's nmblookup, run in host's namespace.
fn nmblookup(lab: &Lab, host: usize, conf: &str, args: &[&str]) -> std::process::Output {
    run(
        Command::new("ip")
            .args(["netns", "exec", &lab.ns(host), "nmblookup", "-s", conf])
            .args(args),
        CMD_TIMEOUT,
    )
}

/// The name service seen from Samba: `nmblookup -B` finds the bridge by
/// broadcast, `nmblookup -U` by a unicast query, `nmblookup -A` lists its
/// names (the two unique ones and the domain's group), tshark finds every
/// name packet we sent well-formed, and once the daemon stops nobody
/// answers for the name.
#[test]
fn nmblookup_finds_our_names_until_we_stop() {
    if !lab_ready(&["tshark", "nmblookup"]) {
        return;
    }
    let lab = Lab::new(2);
    let capture = Capture::start(
        &lab,
        0,
        &format!("udp port 137 and src host {}", lab.addr(0)),
    );
    let mut host = lab.bridged(0, &["--netbios-name=nsone", "--domain=nsdom"]);
    let scratch = Scratch::new("nmblookup");
    let conf = nmblookup_config(&scratch.0);
    let broadcast = format!("10.213.{}.255", lab.subnet);
    let found = nmblookup(&lab, 1, &conf, &["-B", &broadcast, "NSONE"]);
    assert!(
        ok(&found).contains(&format!("{} NSONE<00>", lab.addr(0))),
        "{found:?}"
    );
    let status = ok(&nmblookup(&lab, 1, &conf, &["-A", &lab.addr(0)]));
    let listed: Vec<String> = status
        .lines()
        .filter(|l| l.contains("<ACTIVE>"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        listed,
        [
            "NSONE <00> - B <ACTIVE>",
            "NSONE <03> - B <ACTIVE>",
            "NSDOM <00> - <GROUP> B <ACTIVE>"
        ],
        "{status}"
    );
    assert_eq!(bridge_attr(&host, "queries_answered"), "1");
    assert_eq!(bridge_attr(&host, "status_answered"), "1");
    assert!(
        bridge_attr(&host, "names").contains("NSONE<00>: registered"),
        "{}",
        bridge_attr(&host, "names")
    );
    let dir = host.dir.to_string_lossy().into_owned();
    let table = ok(&run(Command::new(BIN).args(["status", &dir]), CMD_TIMEOUT));
    for line in [
        "names                     NSONE<00>: registered; NSONE<03>: registered; NSDOM<00> group: registered",
        "queries_answered          1",
        "status_answered           1",
    ] {
        let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            table.lines().any(|l| words(l) == words(line)),
            "no {line:?} in\n{table}"
        );
    }
    let json = ok(&run(
        Command::new(BIN).args(["status", "--json", &dir]),
        CMD_TIMEOUT,
    ));
    assert!(json.contains(r#""queries_answered":1,"#), "{json}");
    assert!(json.contains(r#""wins":"""#), "{json}");
    // Asked directly, as a P-node asks its name server (RD set).
    let unicast = nmblookup(
        &lab,
        1,
        &conf,
        &["-U", &lab.addr(0), "--recursion", "NSONE"],
    );
    assert!(
        ok(&unicast).contains(&format!("{} NSONE<00>", lab.addr(0))),
        "{unicast:?}"
    );
    assert_eq!(bridge_attr(&host, "queries_answered"), "2");
    let stopped = host.signal_and_wait(libc::SIGTERM, CMD_TIMEOUT);
    assert!(stopped.is_some_and(|s| s.success()), "{}", host.stderr());
    let after = nmblookup(&lab, 1, &conf, &["-B", &broadcast, "NSONE"]);
    assert!(
        !after.status.success(),
        "still answered after stop: {after:?}"
    );
    // 3 names × 3 registrations, 3 answers, 3 releases.
    let frames = capture.dissect(15, &["nbns.flags.opcode", "nbns.flags.response", "ip.dst"]);
    let count = |opcode: &str, response: &str| {
        frames
            .iter()
            .filter(|f| f[0] == opcode && f[1] == response)
            .count()
    };
    assert_eq!(count("5", "0"), 9, "registrations: {frames:?}");
    assert_eq!(count("0", "1"), 3, "answers: {frames:?}");
    assert!(
        frames.iter().all(|f| f[0] != "0" || f[2] == lab.addr(1)),
        "every answer to the asker: {frames:?}"
    );
    assert_eq!(count("6", "0"), 3, "releases: {frames:?}");
}

/// Two bridges claiming one name: the second mount fails with one line
/// naming the name and the holder, and mounts nothing; the first defended.
#[test]
fn a_name_held_elsewhere_fails_the_mount_in_one_line() {
    if !lab_ready(&["tshark"]) {
        return;
    }
    let lab = Lab::new(2);
    let capture = Capture::start(
        &lab,
        0,
        &format!("udp port 137 and src host {}", lab.addr(0)),
    );
    let first = lab.bridged(0, &["--netbios-name=NSONE", "--domain=NSDOM"]);
    let dir = Scratch::new("second");
    let out = run(
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", lab.ns(1)))
            .arg(BIN)
            .arg("mount")
            .arg(&dir.0)
            .args([
                "--foreground",
                "--bridge",
                "--netbios-name=nsone",
                "--domain=NSDOM",
            ]),
        CMD_TIMEOUT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "mailslotfs: bridge: NetBIOS name NSONE<00> is already held by {}",
            lab.addr(0)
        )
    );
    assert!(!is_mounted(&dir.0));
    // Both unique names, each defended once: one round of requests was enough.
    assert_eq!(bridge_attr(&first, "registrations_defended"), "2");
    let frames = capture.dissect(11, &["nbns.flags.opcode", "nbns.flags.rcode"]);
    let defences = frames.iter().filter(|f| f[..] == ["5", "6"]).count();
    assert_eq!(defences, 2, "{frames:?}");
}

/// A bridge with no `--peer` finds another by a broadcast name query, and
/// a directory that exists locally (`app`) exists below every target, so
/// the write needs no mkdir; another domain is found through its members'
/// answers for the group name and written to as a group; a name nobody
/// holds fails with EHOSTUNREACH in about 1.5 s, while local slots and
/// other writes go on meanwhile.
#[test]
fn names_are_found_by_broadcast_and_missing_ones_fail_in_time() {
    if !lab_ready(&["tshark"]) {
        return;
    }
    let lab = Lab::new(3);
    let capture = Capture::start(
        &lab,
        0,
        &format!("udp port 137 and src host {}", lab.addr(0)),
    );
    let one = lab.bridged(0, &["--netbios-name=NSONE", "--domain=NSDOM"]);
    let two = lab.bridged(1, &["--netbios-name=NSTWO", "--domain=NSDOM"]);
    let three = lab.bridged(2, &["--netbios-name=NSTHREE", "--domain=OTHERDOM"]);
    std::fs::create_dir(two.path("app")).unwrap();
    let inbox = create_slot(&two.path("app/x"));
    std::fs::create_dir(one.path("app")).unwrap();
    let local = create_slot(&one.path("app/local"));
    sh_ok(&one, "echo -n found > $D/.net/NSTWO/app/x");
    assert_eq!(recv(&inbox, DELIVERY_TIMEOUT), b"found");
    assert_eq!(bridge_attr(&one, "resolved_broadcast"), "1");
    sh_ok(&one, "echo -n again > $D/.net/nstwo/APP/x");
    assert_eq!(recv(&inbox, DELIVERY_TIMEOUT), b"again");
    assert_eq!(bridge_attr(&one, "resolved_cache"), "1");
    assert!(bridge_attr(&one, "name_cache").contains(&format!("NSTWO<00>={}", lab.addr(1))));
    // `send` makes the directories the local tree does not have.
    std::fs::create_dir(two.path("deep")).unwrap();
    let deep = create_slot(&two.path("deep/x"));
    let endpoint = one.path(".net/NSTWO/deep/x");
    ok(&run(
        Command::new(BIN).arg("send").arg(&endpoint).arg("sent"),
        CMD_TIMEOUT,
    ));
    assert_eq!(recv(&deep, DELIVERY_TIMEOUT), b"sent");
    let elsewhere = create_slot(&three.path("chat"));
    let not_here = create_slot(&two.path("chat"));
    sh_ok(&one, "echo -n to-the-group > $D/.net/OTHERDOM/chat");
    assert_eq!(recv(&elsewhere, DELIVERY_TIMEOUT), b"to-the-group");
    assert!(bridge_attr(&one, "name_cache").contains("OTHERDOM<00>="));
    assert!(bridge_attr(&one, "name_cache").contains(" group"));
    sh_ok(&one, "echo -n end > $D/.net/NSTWO/chat");
    assert_eq!(
        recv(&not_here, DELIVERY_TIMEOUT),
        b"end",
        "OTHERDOM's write came first"
    );
    let timing = py_ok(
        &one,
        r#"
        import threading, time
        result = {}
        def missing():
            start = time.monotonic()
            fd = os.open(P(".net/NOBODY/app/x"), os.O_WRONLY | os.O_CREAT)
            result["errno"] = err(os.write, fd, b"lost")
            os.close(fd)
            result["took"] = time.monotonic() - start
        t = threading.Thread(target=missing)
        t.start()
        time.sleep(0.2)
        slowest = 0
        while t.is_alive():
            start = time.monotonic()
            fd = os.open(P(".net/NSONE/app/local"), os.O_WRONLY | os.O_CREAT)
            os.write(fd, b"meanwhile")
            os.close(fd)
            slowest = max(slowest, time.monotonic() - start)
        t.join()
        print(result["errno"], round(result["took"], 2), round(slowest, 3))
        "#,
    );
    let fields: Vec<&str> = timing.split_whitespace().collect();
    assert_eq!(fields[0], libc::EHOSTUNREACH.to_string(), "{timing}");
    let took: f64 = fields[1].parse().unwrap();
    assert!(
        (1.3..3.0).contains(&took),
        "failed after {took} s: {timing}"
    );
    let slowest: f64 = fields[2].parse().unwrap();
    assert!(slowest < 0.5, "a local write waited {slowest} s: {timing}");
    assert_eq!(recv(&local, DELIVERY_TIMEOUT), b"meanwhile");
    assert_eq!(bridge_attr(&one, "unreachable"), "1");
    assert!(
        one.stderr().contains("nobody answers for NOBODY<00>"),
        "{}",
        one.stderr()
    );
    // Nine registrations, then queries: NSTWO, OTHERDOM, and NOBODY thrice.
    let frames = capture.dissect(
        14,
        &["nbns.flags.opcode", "nbns.flags.broadcast", "nbns.name"],
    );
    let queries: Vec<&str> = frames
        .iter()
        .filter(|f| f[0] == "0" && f[1] == "1")
        .map(|f| f[2].as_str())
        .collect();
    assert_eq!(
        queries,
        [
            "NSTWO<00>",
            "OTHERDOM<00>",
            "NOBODY<00>",
            "NOBODY<00>",
            "NOBODY<00>"
        ],
        "{frames:?}"
    );
}

/// No `--peer` for nmbd: a NETLOGON query written to nmbd's own host
/// name (`.net/MSLPDC/net/netlogon`, the local `net` directory standing in
/// for a mkdir) finds MSLPDC<00> through nmbd's answer to our broadcast
/// query, and nmbd answers the query. nmbd accepts our registrations
/// (our domain's group beside its own).
#[test]
fn writes_to_nmbd_resolve_through_its_answer() {
    if !lab_ready(&["nmbd", "testparm"]) {
        return;
    }
    let lab = Lab::new(2);
    let host = lab.bridged(1, &["--netbios-name=CLIENTB", "--domain=MSLDOM"]);
    std::fs::create_dir(host.path("net")).unwrap();
    let reply = create_slot(&host.path("net/getdc573"));
    let samba = Scratch::new("nmbd");
    let conf = write_pdc_config(&samba.0, &lab.addr(0));
    let nmbd = start_nmbd(&lab.ns(0), &conf, &samba.0.join("nmbd.out"));
    let query = logon_primary_query("CLIENTB", r"\MAILSLOT\NET\GETDC573");
    // nmbd answers for MSLPDC<00> once it holds it (≈6 s): until then the
    // write fails EHOSTUNREACH (at once while the miss is cached).
    let deadline = Instant::now() + NMBD_TIMEOUT;
    let answer = loop {
        assert!(
            Instant::now() < deadline,
            "no NETLOGON reply:\n{}\n{}",
            nmbd.log(),
            host.stderr()
        );
        let _ = std::fs::write(host.path(".net/MSLPDC/net/netlogon"), &query);
        if poll1(reply.as_raw_fd(), libc::POLLIN, 1000) & libc::POLLIN != 0 {
            break read(reply.as_raw_fd(), 1 << 16).expect("read the reply");
        }
    };
    assert_eq!(answer[..2], 12u16.to_le_bytes(), "reply {answer:02x?}");
    let found: u64 = bridge_attr(&host, "resolved_broadcast").parse().unwrap();
    let cached: u64 = bridge_attr(&host, "resolved_cache").parse().unwrap();
    assert!(found + cached >= 1, "not found by the name service");
    assert!(
        bridge_attr(&host, "name_cache").contains(&format!("MSLPDC<00>={}", lab.addr(0))),
        "{}",
        bridge_attr(&host, "name_cache")
    );
    assert!(
        bridge_attr(&host, "names").contains("MSLDOM<00> group: registered"),
        "{}",
        bridge_attr(&host, "names")
    );
}

/// Three subnets joined by a router namespace that also runs nmbd as the
/// WINS server (on the first subnet's side), granting names a minute.
/// Broadcasts stay on their subnet, so each bridge finds the other only
/// through WINS: both register with it, and each resolves the other there.
/// A third bridge claiming the first one's name is refused by WINS (after
/// a WACK, captured, while nmbd asks the holder, which answers) and fails
/// to mount in one line. Half a minute after registering, the first bridge
/// refreshes its names; stopped, it releases them at the WINS server too.
/// tshark sees every request reach the server and its answer come back,
/// with no malformed or expert warning.
#[test]
fn wins_carries_names_across_a_router() {
    if !lab_ready(&["tshark", "nmbd", "testparm", "nmblookup"]) {
        return;
    }
    let n = LABS.fetch_add(1, Ordering::SeqCst) + 1;
    let prefix = format!("msltest-{}-w{n}", std::process::id());
    let mut lab = Lab {
        prefix: prefix.clone(),
        subnet: n,
        made: Vec::new(),
    };
    let router = lab.add_namespace("r");
    ok(&run(
        Command::new("ip").args([
            "netns",
            "exec",
            &router,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]),
        CMD_TIMEOUT,
    ));
    // Subnets 10.213-215.N.0/24; the router is .254 on each.
    let subnets = [213, 214, 215].map(|net| format!("10.{net}.{n}"));
    for (side, net) in subnets.iter().enumerate() {
        let ns = lab.add_namespace(&side.to_string());
        let port = format!("r{side}");
        ip(&[
            "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port,
        ]);
        ip(&["-n", &ns, "link", "set", &port, "netns", &router]);
        let gateway = format!("{net}.254");
        ip(&[
            "-n",
            &router,
            "addr",
            "add",
            &format!("{gateway}/24"),
            "brd",
            &format!("{net}.255"),
            "dev",
            &port,
        ]);
        ip(&["-n", &router, "link", "set", &port, "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{net}.1/24"),
            "brd",
            &format!("{net}.255"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "route", "add", "default", "via", &gateway]);
    }
    let wins = format!("{}.254", subnets[0]);
    let samba = Scratch::new("wins");
    // A one-minute TTL, so that our refresh (at half of it) comes soon.
    let conf = write_nmbd_config(
        &samba.0,
        "MSLWINS",
        &wins,
        "    wins support = yes\n    local master = no\n    min wins ttl = 60\n    max wins ttl = 60\n",
    );
    let nmbd = start_nmbd(&router, &conf, &samba.0.join("nmbd.out"));
    let conf_arg = conf.to_string_lossy().into_owned();
    let serving = wait_until(NMBD_TIMEOUT, || {
        run(
            Command::new("ip").args([
                "netns",
                "exec",
                &lab.ns(1),
                "nmblookup",
                "-s",
                &conf_arg,
                "--recursion",
                "-U",
                &wins,
                "MSLWINS",
            ]),
            CMD_TIMEOUT,
        )
        .status
        .success()
    });
    assert!(serving, "the WINS server never answered:\n{}", nmbd.log());
    let wins_flag = format!("--wins={wins}");
    let first = format!("{}.1", subnets[0]);
    let capture = Capture::start(&lab, 0, &format!("udp port 137 and host {first}"));
    let third_capture = Capture::start(&lab, 2, &format!("udp port 137 and src host {wins}"));
    let mut one = lab.bridged(0, &["--netbios-name=WONE", "--domain=WDOM", &wins_flag]);
    let registered = Instant::now();
    let two = lab.bridged(1, &["--netbios-name=WTWO", "--domain=WDOM", &wins_flag]);
    for host in [&one, &two] {
        let names = bridge_attr(host, "names");
        assert_eq!(names.matches("WINS registered").count(), 3, "{names}");
        assert_eq!(bridge_attr(host, "wins_state"), "asked first");
    }
    let chat_one = create_slot(&one.path("chat"));
    let chat_two = create_slot(&two.path("chat"));
    sh_ok(&one, "echo -n over > $D/.net/WTWO/chat");
    assert_eq!(recv(&chat_two, DELIVERY_TIMEOUT), b"over");
    sh_ok(&two, "echo -n back > $D/.net/WONE/chat");
    assert_eq!(recv(&chat_one, DELIVERY_TIMEOUT), b"back");
    for host in [&one, &two] {
        assert_eq!(bridge_attr(host, "resolved_wins"), "1");
        assert_eq!(bridge_attr(host, "resolved_broadcast"), "0");
        assert_eq!(bridge_attr(host, "wins"), format!("{wins}:137"));
    }

    let dir = Scratch::new("third");
    let out = run(
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", lab.ns(2)))
            .arg(BIN)
            .arg("mount")
            .arg(&dir.0)
            .args([
                "--foreground",
                "--bridge",
                "--netbios-name=WONE",
                &wins_flag,
            ]),
        Duration::from_secs(90),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "mailslotfs: bridge: NetBIOS name WONE<00> is held by another host \
             (WINS server {wins} refuses it)"
        )
    );
    assert!(!is_mounted(&dir.0));
    // nmbd's WACK reached the third bridge before the refusal.
    let to_third = third_capture.count("nbns");
    let answers = third_capture.dissect(
        to_third,
        &[
            "nbns.flags.opcode",
            "nbns.flags.rcode",
            "_ws.col.Info",
            "udp.payload",
        ],
    );
    let wack = answers
        .iter()
        .find(|f| f[0] == "7")
        .unwrap_or_else(|| panic!("no WACK: {answers:?}"));
    println!("nmbd's WACK ({}): {}", wack[2], wack[3]);
    let parsed = NamePacket::parse(&golden_hex(&wack[3])).expect("the WACK parses");
    assert_eq!((parsed.opcode, parsed.response), (Opcode::Wack, true));
    assert!(
        answers.iter().any(|f| f[..2] == ["5", "6"]),
        "no refusal: {answers:?}"
    );

    // The refresh comes at half the minute nmbd granted, and is answered
    // (nmbd answers a refresh with a registration response).
    let refreshed = wait_until(Duration::from_secs(60), || {
        let refreshes =
            format!("nbns.flags.opcode == 8 && nbns.flags.response == 0 && ip.dst == {wins}");
        let answers =
            format!("nbns.flags.opcode == 5 && nbns.flags.response == 1 && ip.src == {wins}");
        capture.count(&refreshes) >= 3 && capture.count(&answers) >= 6
    });
    assert!(
        refreshed,
        "no refresh answered {:?} after registering: {}\n{}",
        registered.elapsed(),
        bridge_attr(&one, "names"),
        capture.summary()
    );
    let stopped = one.signal_and_wait(libc::SIGTERM, CMD_TIMEOUT);
    assert!(stopped.is_some_and(|s| s.success()), "{}", one.stderr());
    let released = wait_until(DELIVERY_TIMEOUT, || {
        capture.count(&format!(
            "nbns.flags.opcode == 6 && nbns.flags.response == 1 && ip.src == {wins}"
        )) >= 3
    });
    assert!(released, "the WINS server did not confirm the releases");
    let total = capture.count("nbns");
    let frames = capture.dissect(
        total,
        &[
            "nbns.flags.opcode",
            "nbns.flags.response",
            "nbns.flags.rcode",
            "ip.src",
            "ip.dst",
            "nbns.id",
        ],
    );
    let count = |opcode: &str, response: &str, from: &str, to: &str| {
        frames
            .iter()
            .filter(|f| f[0] == opcode && f[1] == response && f[3] == from && f[4] == to)
            .count()
    };
    let broadcast = format!("{}.255", subnets[0]);
    assert_eq!(count("5", "0", &first, &broadcast), 9, "{frames:?}");
    assert_eq!(
        count("5", "0", &first, &wins),
        3,
        "registrations: {frames:?}"
    );

    assert_eq!(count("0", "0", &first, &wins), 1, "the query: {frames:?}");
    assert!(count("8", "0", &first, &wins) >= 3, "refreshes: {frames:?}");
    let answered: Vec<&str> = frames
        .iter()
        .filter(|f| f[..2] == ["5", "1"] && f[3] == wins)
        .map(|f| f[5].as_str())
        .collect();
    assert!(
        frames
            .iter()
            .filter(|f| f[..2] == ["8", "0"])
            .all(|f| answered.contains(&f[5].as_str())),
        "a refresh went unanswered: {frames:?}"
    );
    assert_eq!(count("6", "0", &first, &wins), 3, "releases: {frames:?}");
    assert_eq!(count("6", "1", &wins, &first), 3, "released: {frames:?}");
    assert_eq!(count("6", "0", &first, &broadcast), 3, "{frames:?}");
    assert!(
        frames
            .iter()
            .filter(|f| f[1] == "1" && f[3] == wins)
            .all(|f| f[2] == "0"),
        "the WINS server refused something of ours: {frames:?}"
    );
    drop(nmbd);
}

/// Hex digits to bytes, as tshark prints a payload.
fn golden_hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// A name query, node status request or registration for `name`, as a
/// peer would send it.
fn name_request(opcode: Opcode, kind: QuestionType, name: &str) -> Vec<u8> {
    let name = NetbiosName::new(name, 0).unwrap();
    NamePacket {
        transaction_id: 1,
        response: false,
        opcode,
        flags: HeaderFlags {
            broadcast: true,
            ..HeaderFlags::default()
        },
        rcode: 0,
        questions: vec![Question {
            name,
            scope: Scope::default(),
            kind,
        }],
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
    }
    .emit()
    .unwrap()
}

/// What the name-flood sender pushes into UDP 137.
const NAME_FLOOD_PACKETS: usize = 100_000;

/// 100,000 name-service packets as fast as one sender can go: queries for
/// our name and for others, node status requests, claims on our name and
/// garbage. The daemon stays up and serves local users, memory stays
/// bounded, and every packet is counted, by the name service or by the
/// kernel (socket buffer full).
#[test]
fn a_name_service_flood_is_counted_and_memory_stays_bounded() {
    if !lab_ready(&["python3"]) {
        return;
    }
    let lab = Lab::new(2);
    let host = lab.bridged(1, &["--netbios-name=SINK"]);
    let local = create_slot(&host.path("local"));
    let payloads = [
        name_request(Opcode::Query, QuestionType::Nb, "SINK"),
        name_request(Opcode::Query, QuestionType::Nb, "ELSEWHERE"),
        name_request(Opcode::Query, QuestionType::NodeStatus, "*"),
        name_request(Opcode::Registration, QuestionType::Nb, "SINK"),
        b"\x00\x01\x02 not a name packet".to_vec(),
    ];
    let hexes: Vec<String> = payloads.iter().map(|p| hex(p)).collect();
    let kernel_before = kernel_receive_drops(&lab, 1);
    let sender = Command::new("ip")
        .args(["netns", "exec", &lab.ns(0), "python3", "-c"])
        .arg(
            "import socket, sys\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             ps = [bytes.fromhex(h) for h in sys.argv[3].split(',')]; to = (sys.argv[1], 137)\n\
             for i in range(int(sys.argv[2])): s.sendto(ps[i % len(ps)], to)\n",
        )
        .arg(lab.addr(1))
        .arg(NAME_FLOOD_PACKETS.to_string())
        .arg(hexes.join(","))
        .stdin(Stdio::null())
        .spawn()
        .expect("start the sender");
    let mut sender = ChildGuard(sender);
    let started = Instant::now();
    while sender.0.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(120), "sender hung");
        sh_ok(&host, "echo -n alive > $D/.net/SINK/local");
        assert_eq!(recv(&local, DELIVERY_TIMEOUT), b"alive");
    }
    let took = started.elapsed();
    let counted = || {
        let kernel = kernel_receive_drops(&lab, 1) - kernel_before;
        let names: u64 = bridge_attr(&host, "name_packets").parse().unwrap();
        kernel + names
    };
    // The registrations of our own three names are counted too (looped back).
    let settled = wait_until(DELIVERY_TIMEOUT, || counted() >= NAME_FLOOD_PACKETS as u64);
    let rss_kib: u64 = daemon_status_field(host.pid(), "VmHWM:")
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    let figures = format!(
        "sent {NAME_FLOOD_PACKETS} in {took:?}; counted {} (name_packets {}, malformed {}, \
         queries answered {}, status answered {}, defended {}); peak RSS {rss_kib} KiB",
        counted(),
        bridge_attr(&host, "name_packets"),
        bridge_attr(&host, "name_packets_malformed"),
        bridge_attr(&host, "queries_answered"),
        bridge_attr(&host, "status_answered"),
        bridge_attr(&host, "registrations_defended"),
    );
    eprintln!("name flood figures: {figures}");
    assert!(settled, "received + dropped < sent: {figures}");
    assert!(
        counted() <= NAME_FLOOD_PACKETS as u64 + 9,
        "counted more than arrived: {figures}"
    );
    let malformed: u64 = bridge_attr(&host, "name_packets_malformed")
        .parse()
        .unwrap();
    assert!(malformed > 0, "{figures}");
    assert!(rss_kib < 64 * 1024, "memory grew past bounds: {figures}");
    assert!(pid_alive(host.pid()));
    assert!(bridge_attr(&host, "names").contains("SINK<00>: registered"));
}

/// `--no-name-service`: nothing is bound below the datagram port and no
/// one finds the host by name; names that are not `--peer`s go to the
/// system resolver, and fail EHOSTUNREACH when it does not know them.
#[test]
fn without_the_name_service_nothing_answers_on_137() {
    if !lab_ready(&["nmblookup"]) {
        return;
    }
    let lab = Lab::new(2);
    let host = lab.bridged(0, &["--netbios-name=QUIET", "-o", "no_name_service"]);
    let sockets = ok(&run(
        Command::new("ip").args(["netns", "exec", &lab.ns(0), "ss", "-ulnH"]),
        CMD_TIMEOUT,
    ));
    assert!(sockets.contains(":138"), "{sockets}");
    assert!(!sockets.contains(":137"), "{sockets}");
    let scratch = Scratch::new("quiet");
    let conf = nmblookup_config(&scratch.0);
    let broadcast = format!("10.213.{}.255", lab.subnet);
    let asked = nmblookup(&lab, 1, &conf, &["-B", &broadcast, "QUIET"]);
    assert!(!asked.status.success(), "{asked:?}");
    assert_eq!(bridge_attr(&host, "name_service"), "off");
    py_ok(
        &host,
        r#"
        fd = os.open(P(".net/NOWHERE/x"), os.O_WRONLY | os.O_CREAT)
        assert err(os.write, fd, b"lost") == errno.EHOSTUNREACH
        "#,
    );
    assert_eq!(bridge_attr(&host, "unreachable"), "1");
}

/// nmbd holds UDP 137 and 138 on every address: a bridge on the same host
/// cannot start, and says why in one line.
#[test]
fn nmbd_on_the_same_host_is_a_one_line_error() {
    if !lab_ready(&["nmbd", "testparm"]) {
        return;
    }
    let lab = Lab::new(1);
    let samba = Scratch::new("nmbd-here");
    let conf = write_pdc_config(&samba.0, &lab.addr(0));
    let nmbd = start_nmbd(&lab.ns(0), &conf, &samba.0.join("nmbd.out"));
    let bound = wait_until(NMBD_TIMEOUT, || {
        let out = run(
            Command::new("ip").args(["netns", "exec", &lab.ns(0), "ss", "-ulnH"]),
            CMD_TIMEOUT,
        );
        String::from_utf8_lossy(&out.stdout).contains("0.0.0.0:137")
    });
    assert!(bound, "nmbd never bound 137:\n{}", nmbd.log());
    let dir = Scratch::new("beside-nmbd");
    let out = run(
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", lab.ns(0)))
            .arg(BIN)
            .arg("mount")
            .arg(&dir.0)
            .args(["--foreground", "--bridge", "--netbios-name=BESIDE"]),
        CMD_TIMEOUT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "mailslotfs: bridge: bind 0.0.0.0:137: address in use (is nmbd running on this host?)"
    );
    assert!(!is_mounted(&dir.0));
}

/// A file of `/etc/netns/NS/`, which `ip netns exec NS` binds over the
/// file of that name in /etc for what it runs; removed (with the
/// directories it made) on drop.
struct NetnsEtcFile {
    dir: PathBuf,
}

impl NetnsEtcFile {
    fn new(ns: &str, name: &str, text: &str) -> NetnsEtcFile {
        let dir = Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).expect("/etc/netns/NS");
        std::fs::write(dir.join(name), text).expect("/etc/netns/NS file");
        NetnsEtcFile { dir }
    }
}

impl Drop for NetnsEtcFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // Only if no one else keeps files there.
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

/// A bridged mount started with `ip netns exec`, so that it sees its
/// namespace's /etc/netns files, and in the mount namespace that command
/// makes: the test reaches the mount through `/proc/PID/root`. Stopped by
/// PID on drop; the mount goes with its namespace.
struct IsolatedBridge {
    daemon: Process,
    dir: PathBuf,
}

impl IsolatedBridge {
    fn start(ns: &str, args: &[&str]) -> IsolatedBridge {
        let dir = temp_dir("iso");
        let dir_arg = dir.to_string_lossy().into_owned();
        let mut command = vec![BIN, "mount", &dir_arg, "--foreground", "--bridge", "-v"];
        command.extend(args);
        let daemon = start_in(ns, &command, &dir.with_extension("log"));
        let pid = daemon.child.id();
        let mounted = wait_until(MOUNT_TIMEOUT, || {
            std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
                .is_ok_and(|info| info.contains(&format!(" {dir_arg} ")))
        });
        assert!(mounted, "no mount at {dir_arg}:\n{}", daemon.log());
        IsolatedBridge { daemon, dir }
    }

    /// The mount directory as the test reaches it.
    fn root(&self) -> PathBuf {
        let inside = self.dir.strip_prefix("/").expect("an absolute path");
        Path::new("/proc")
            .join(self.daemon.child.id().to_string())
            .join("root")
            .join(inside)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    fn attr(&self, name: &str) -> String {
        getxattr(&self.path(".net"), &format!("user.mailslot.bridge.{name}")).expect("bridge xattr")
    }
}

impl Drop for IsolatedBridge {
    fn drop(&mut self) {
        self.daemon.stop();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A DNS server that takes every query and answers none.
const SILENT_DNS: &str = "import socket\n\
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
    s.bind(('0.0.0.0', 53))\n\
    print('listening', flush=True)\n\
    while True: s.recv(4096)\n";

/// The namespace's resolv.conf names a DNS server that never answers, so
/// the system resolver takes 10 s a name: a write to a name nobody holds
/// still fails EHOSTUNREACH about 1.5 s after it began; writes to other
/// missing names started meanwhile are not held up behind it; another
/// write to it fails at once (the miss is kept); local slots go on
/// throughout.
#[test]
fn a_silent_dns_server_does_not_delay_a_missing_name() {
    if !lab_ready(&["python3"]) {
        return;
    }
    let lab = Lab::new(2);
    let scratch = Scratch::new("dns");
    let dns = lab.start(
        1,
        &["python3", "-c", SILENT_DNS],
        &scratch.0.join("dns.log"),
    );
    dns.wait_for_log("listening", CMD_TIMEOUT);
    let _resolv = NetnsEtcFile::new(
        &lab.ns(0),
        "resolv.conf",
        &format!("nameserver {}\noptions timeout:5 attempts:2\n", lab.addr(1)),
    );
    // The premise: the system resolver there waits on the silent server.
    let premise = try_run(
        Command::new("ip").args([
            "netns",
            "exec",
            &lab.ns(0),
            "python3",
            "-c",
            "import socket; socket.getaddrinfo('NOBODY0', 0)",
        ]),
        None,
        Duration::from_secs(3),
    );
    assert!(
        premise.0.is_none(),
        "the resolver did not wait: {premise:?}"
    );

    let host = IsolatedBridge::start(&lab.ns(0), &["--netbios-name=SLOWDNS"]);
    std::fs::create_dir(host.path("app")).unwrap();
    let local = create_slot(&host.path("app/local"));
    let timing = ok(&python(
        &host.root(),
        r#"
        import threading, time
        took = {}
        def missing(name, key=None):
            start = time.monotonic()
            fd = os.open(P(".net/%s/x" % name), os.O_WRONLY | os.O_CREAT)
            took[key or name] = (err(os.write, fd, b"lost"), time.monotonic() - start)
            os.close(fd)
        names = ["NOBODY1", "NOBODY2", "NOBODY3"]
        threads = []
        for name in names:
            threads.append(threading.Thread(target=missing, args=(name,)))
            threads[-1].start()
            time.sleep(0.3)
        slowest = 0
        while any(t.is_alive() for t in threads):
            start = time.monotonic()
            fd = os.open(P(".net/SLOWDNS/app/local"), os.O_WRONLY | os.O_CREAT)
            os.write(fd, b"meanwhile")
            os.close(fd)
            slowest = max(slowest, time.monotonic() - start)
            time.sleep(0.05)
        for t in threads:
            t.join()
        missing("NOBODY1", "again")
        for name in names + ["again"]:
            print(name, took[name][0], round(took[name][1], 2))
        print("local", round(slowest, 3))
        "#,
        CMD_TIMEOUT,
    ));
    let rows: Vec<Vec<&str>> = timing
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let unreachable = libc::EHOSTUNREACH.to_string();
    for row in &rows[..3] {
        assert_eq!(row[1], unreachable, "{timing}");
        let took: f64 = row[2].parse().unwrap();
        assert!(
            (1.3..2.5).contains(&took),
            "{} failed after {took} s: {timing}",
            row[0]
        );
    }
    assert_eq!(rows[3][1], unreachable, "{timing}");
    let again: f64 = rows[3][2].parse().unwrap();
    assert!(again < 0.3, "the miss was not kept: {timing}");
    let slowest: f64 = rows[4][1].parse().unwrap();
    assert!(slowest < 0.5, "a local write waited {slowest} s: {timing}");
    assert_eq!(recv(&local, DELIVERY_TIMEOUT), b"meanwhile");
    assert_eq!(host.attr("unreachable"), "4");
    let cache = host.attr("system_cache");
    for name in ["NOBODY1", "NOBODY2", "NOBODY3"] {
        assert!(cache.contains(&format!("{name}<00>=none")), "{cache}");
    }
    assert!(
        host.daemon.log().contains("nobody answers for NOBODY2<00>"),
        "{}",
        host.daemon.log()
    );
}

/// Ctrl-C on a write waiting for its target's address ends it at once:
/// the daemon answers the INTERRUPT, well before the 1.5 s look-up would
/// end; when the look-up ends, nobody having answered, nothing is sent or
/// answered for the write.
#[test]
fn a_signal_ends_a_write_waiting_for_a_name() {
    if !lab_ready(&[]) {
        return;
    }
    let lab = Lab::new(1);
    let host = lab.bridged(0, &["--netbios-name=SIGHOST"]);
    let started = Instant::now();
    let shell = spawn(
        Command::new("sh")
            .arg("-c")
            .arg(r#"echo hi > "$D/.net/NOBODY/x""#)
            .env("D", &host.dir),
    );
    let pid = shell.id();
    // In the write itself: the create before it is answered at once.
    let writing = wait_until(CMD_TIMEOUT, || {
        std::fs::read_to_string(format!("/proc/{pid}/stack"))
            .is_ok_and(|stack| stack.contains("write") && stack.contains("request_wait_answer"))
    });
    assert!(writing, "the write never waited in the file system");
    let signalled = Instant::now();
    kill(pid as i32, libc::SIGINT);
    let out = finish(shell, CMD_TIMEOUT);
    let after_signal = signalled.elapsed();
    let in_all = started.elapsed();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGINT), "{out:?}");
    assert!(
        after_signal < Duration::from_millis(300) && in_all < Duration::from_millis(1200),
        "ended {after_signal:?} after the signal, {in_all:?} after the start"
    );
    // The look-up ends nobody having answered: a no-op for the write.
    let ended = wait_until(DELIVERY_TIMEOUT, || {
        bridge_attr(&host, "lookups_failed") == "1"
            && bridge_attr(&host, "system_cache").contains("NOBODY<00>=")
    });
    assert!(
        ended,
        "the look-up never ended: {}",
        bridge_attr(&host, "system_cache")
    );
    assert_eq!(bridge_attr(&host, "unreachable"), "0");
    assert_eq!(bridge_attr(&host, "sent"), "0");
    assert!(
        !host.stderr().contains("nobody answers for NOBODY"),
        "{}",
        host.stderr()
    );
    assert!(pid_alive(host.pid()));
}

/// A host on two links, the bridge on one: its name service answers
/// broadcasts on its own link and unicast to its own address (also from
/// the other link, through the host's routing), but not broadcasts on the
/// other link nor queries to the host's other address, and counts them.
#[test]
fn the_name_service_answers_only_for_the_bridges_address_and_link() {
    if !lab_ready(&["nmblookup"]) {
        return;
    }
    let mut lab = Lab::new(2);
    let other = lab.add_namespace("x");
    let net = format!("10.216.{}", lab.subnet);
    ip(&[
        "-n",
        &lab.ns(0),
        "link",
        "add",
        "eth1",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &other,
    ]);
    for (ns, dev, host) in [(lab.ns(0), "eth1", 1), (other.clone(), "eth0", 2)] {
        let cidr = format!("{net}.{host}/24");
        let broadcast = format!("{net}.255");
        ip(&[
            "-n", &ns, "addr", "add", &cidr, "brd", &broadcast, "dev", dev,
        ]);
        ip(&["-n", &ns, "link", "set", dev, "up"]);
    }
    let lab_net = format!("10.213.{}.0/24", lab.subnet);
    ip(&[
        "-n",
        &other,
        "route",
        "add",
        &lab_net,
        "via",
        &format!("{net}.1"),
    ]);
    let host = lab.bridged(0, &["--netbios-name=ONLINK", "--bind", &lab.addr(0)]);
    let scratch = Scratch::new("twolinks");
    let conf = nmblookup_config(&scratch.0);
    let lookup = |ns: &str, args: &[&str]| {
        run(
            Command::new("ip")
                .args(["netns", "exec", ns, "nmblookup", "-s", &conf])
                .args(args)
                .arg("ONLINK"),
            CMD_TIMEOUT,
        )
    };
    let found = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stdout).contains(&format!("{} ONLINK<00>", lab.addr(0)))
    };
    let on_link = lookup(&lab.ns(1), &["-B", &format!("10.213.{}.255", lab.subnet)]);
    assert!(found(&on_link), "{on_link:?}");
    let routed = lookup(&other, &["-U", &lab.addr(0), "--recursion"]);
    assert!(found(&routed), "{routed:?}");
    let other_broadcast = lookup(&other, &["-B", &format!("{net}.255")]);
    assert!(!found(&other_broadcast), "{other_broadcast:?}");
    let other_address = lookup(&other, &["-U", &format!("{net}.1"), "--recursion"]);
    assert!(!found(&other_address), "{other_address:?}");
    assert_eq!(bridge_attr(&host, "queries_answered"), "2");
    let elsewhere: u64 = bridge_attr(&host, "name_packets_elsewhere")
        .parse()
        .unwrap();
    assert!(elsewhere >= 2, "{elsewhere}");
}
