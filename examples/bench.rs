//! mailslotfs against kernel IPC, measured in one run on one machine.
//!
//! `bench --bin target/release/mailslotfs --floor target/release/examples/fuse_floor
//! [--threads N] [--runs N] [--quick]` mounts its own file systems in
//! temporary directories, measures one-way throughput and ping-pong latency
//! through mailslotfs, the FUSE floor (the least a queue over FUSE can do,
//! `examples/fuse_floor.rs`), POSIX message queues and AF_UNIX datagram
//! sockets, and the daemon's memory per queued message, then prints a table
//! with ratios. Both file systems run N event-loop threads (default 4). Each
//! figure is the median of N runs, with min–max. Driven by
//! `scripts/bench.sh`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The batch-mode ioctl: `_IOW('M', 1, u32)`.
const MAILSLOT_IOC_BATCH: u64 = mailslotfs::slot::batch::IOCTL_SET_BATCH as u64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let (Some(bin), Some(floor)) = (value("--bin"), value("--floor")) else {
        eprintln!(
            "usage: bench --bin PATH-TO-mailslotfs --floor PATH-TO-fuse_floor [--threads N] [--runs N] [--quick]"
        );
        std::process::exit(2);
    };
    let threads: usize = value("--threads").and_then(|t| t.parse().ok()).unwrap_or(4);
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = value("--runs")
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 1 } else { 5 });
    let scale = if quick { 10 } else { 1 };
    let programs = Programs {
        mailslotfs: PathBuf::from(bin),
        floor: PathBuf::from(floor),
        threads,
    };
    if let Err(e) = run(&programs, runs, scale) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// One figure over several runs.
struct Figure {
    samples: Vec<f64>,
}

impl Figure {
    fn measure(runs: usize, mut one: impl FnMut() -> io::Result<f64>) -> io::Result<Figure> {
        let mut samples = (0..runs).map(|_| one()).collect::<io::Result<Vec<_>>>()?;
        samples.sort_by(f64::total_cmp);
        Ok(Figure { samples })
    }
    fn median(&self) -> f64 {
        self.samples[self.samples.len() / 2]
    }
    fn show(&self, unit: &str) -> String {
        let (lo, hi) = (self.samples[0], self.samples[self.samples.len() - 1]);
        format!(
            "{} {unit} ({}–{})",
            human(self.median()),
            human(lo),
            human(hi)
        )
    }
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

/// The two file systems to mount, and how many event-loop threads each runs.
struct Programs {
    mailslotfs: PathBuf,
    floor: PathBuf,
    threads: usize,
}

/// The mounts one run measures through: mailslotfs on each transport (the
/// io_uring one only when the kernel offers it) and the FUSE floor.
struct Mounts {
    uring: Option<Mount>,
    classic: Mount,
    floor: Mount,
}

impl Mounts {
    fn of(&self, t: Transport) -> Option<&Mount> {
        match t {
            Transport::Uring | Transport::Batch => self.uring.as_ref(),
            Transport::Classic => Some(&self.classic),
            Transport::FuseFloor => Some(&self.floor),
            Transport::PosixMq | Transport::UnixDgram => Some(&self.classic),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Uring,
    Classic,
    Batch,
    FuseFloor,
    PosixMq,
    UnixDgram,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Uring => "mailslotfs io_uring",
            Transport::Classic => "mailslotfs classic",
            Transport::Batch => "mailslotfs batch",
            Transport::FuseFloor => "FUSE floor",
            Transport::PosixMq => "POSIX mq",
            Transport::UnixDgram => "AF_UNIX dgram",
        }
    }
    fn is_fuse(self) -> bool {
        matches!(
            self,
            Transport::Uring | Transport::Classic | Transport::Batch | Transport::FuseFloor
        )
    }
}

/// Every figure of one run, to take ratios of.
#[derive(Default)]
struct Table {
    rows: Vec<(&'static str, Transport, usize, usize, f64)>,
}

impl Table {
    fn put(&mut self, what: &'static str, t: Transport, size: usize, writers: usize, v: f64) {
        self.rows.push((what, t, size, writers, v));
    }
    fn get(&self, what: &str, t: Transport, size: usize, writers: usize) -> f64 {
        self.rows
            .iter()
            .find(|r| r.0 == what && r.1 == t && r.2 == size && r.3 == writers)
            .map_or(f64::NAN, |r| r.4)
    }
}

const SIZES: [usize; 3] = [64, 1024, 16 * 1024];

fn run(programs: &Programs, runs: usize, scale: usize) -> io::Result<()> {
    let threads = programs.threads;
    let options = format!("quota_messages=1000000,quota_bytes=256M,threads={threads}");
    let uring = match Mount::mailslotfs(&programs.mailslotfs, &format!("{options},io_uring")) {
        Ok(m) => Some(m),
        Err(e) => {
            println!(
                "mailslotfs io_uring: not measured ({e}; see /sys/module/fuse/parameters/enable_uring)"
            );
            None
        }
    };
    let mounts = Mounts {
        uring,
        classic: Mount::mailslotfs(&programs.mailslotfs, &format!("{options},no_io_uring"))?,
        floor: Mount::start(|dir| {
            let mut c = Command::new(&programs.floor);
            c.arg(dir).arg(threads.to_string());
            c
        })?,
    };
    println!(
        "Both file systems run {threads} FUSE event-loop thread(s); on io_uring, mailslotfs runs one queue thread per CPU."
    );
    let transports: Vec<Transport> = [
        Transport::Uring,
        Transport::Classic,
        Transport::FuseFloor,
        Transport::PosixMq,
        Transport::UnixDgram,
        Transport::Batch,
    ]
    .into_iter()
    .filter(|t| mounts.of(*t).is_some())
    .collect();
    let mut table = Table::default();
    println!("One-way messages/s, producer(s) -> one consumer (median of {runs}, min–max)");
    println!(
        "{:<20} {:>7} {:>8}  messages/s",
        "transport", "size", "writers"
    );
    for size in SIZES {
        for writers in [1usize, 2] {
            for &t in &transports {
                let Some(mount) = mounts.of(t) else { continue };
                // Size each run to about half a second from a short trial.
                let trial = one_way(t, mount, size, writers, 2_000)?;
                let count = ((trial * 0.5 / scale as f64) as usize).clamp(2_000, 4_000_000);
                let fig = Figure::measure(runs, || one_way(t, mount, size, writers, count))?;
                println!(
                    "{:<20} {:>7} {:>8}  {}",
                    t.name(),
                    size,
                    writers,
                    fig.show("msg/s")
                );
                table.put("one-way", t, size, writers, fig.median());
            }
        }
    }
    println!();
    println!(
        "write(2) calls/s, one writer, 64 B, into a queue that holds them all, nobody reading"
    );
    for &t in transports
        .iter()
        .filter(|t| t.is_fuse() && **t != Transport::Batch)
    {
        let Some(mount) = mounts.of(t) else { continue };
        let fig = Figure::measure(runs, || write_calls(mount, 200_000 / scale))?;
        println!("{:<20} {}", t.name(), fig.show("calls/s"));
        table.put("writes", t, 64, 1, fig.median());
    }
    println!();
    println!("Ping-pong round trip, 64 B (median of {runs} runs' medians and p99s)");
    let iters = 20_000 / scale;
    for &t in transports.iter().filter(|t| **t != Transport::Batch) {
        let Some(mount) = mounts.of(t) else { continue };
        let mut p99s = Vec::new();
        let median = Figure::measure(runs, || {
            let mut rtts = ping_pong(t, mount, iters)?;
            rtts.sort_by(f64::total_cmp);
            p99s.push(rtts[rtts.len() * 99 / 100]);
            Ok(rtts[rtts.len() / 2])
        })?;
        p99s.sort_by(f64::total_cmp);
        let p99 = Figure { samples: p99s };
        println!(
            "{:<20} median {}  p99 {}",
            t.name(),
            median.show("µs"),
            p99.show("µs")
        );
        table.put("ping-pong", t, 64, 1, median.median());
        table.put("ping-pong p99", t, 64, 1, p99.median());
    }
    print_ratios(&table);
    drop(mounts);
    println!();
    let readers = 1000 / scale;
    println!(
        "Idle: {readers} servers waiting in read(), nothing else happening (a {:.0} s window); targets: 0 wake-ups/s and < 0.1 % CPU, a signal ends a read within 5 ms",
        IDLE_WINDOW.as_secs_f64()
    );
    for (t, transport) in [
        (Transport::Uring, "io_uring"),
        (Transport::Classic, "no_io_uring"),
    ] {
        let mount = match Mount::mailslotfs(
            &programs.mailslotfs,
            &format!("threads={threads},{transport}"),
        ) {
            Ok(m) => m,
            Err(_) => continue,
        };
        let idle = idle_cost(&mount, readers)?;
        println!(
            "{:<20} daemon CPU {:.3} %  wake-ups {:.1}/s  memory per waiting reader {:.0} B: {}",
            t.name(),
            idle.cpu_percent,
            idle.wakeups_per_second,
            idle.bytes_per_reader,
            verdict(idle.wakeups_per_second == 0.0 && idle.cpu_percent < 0.1)
        );
        for (namespace, other) in [
            ("this pid namespace", false),
            ("another pid namespace", true),
        ] {
            let mut ms = (0..20 / scale.min(10))
                .map(|_| signal_latency(&mount, other))
                .collect::<io::Result<Vec<_>>>()?;
            ms.sort_by(f64::total_cmp);
            println!(
                "{:<20} SIGINT to a waiting reader in {namespace}: read() ends after median {:.2} ms, max {:.2} ms: {}",
                t.name(),
                ms[ms.len() / 2],
                ms[ms.len() - 1],
                verdict(ms[ms.len() - 1] <= 5.0)
            );
        }
    }
    println!();
    let per_message = Figure::measure(runs.min(3), || {
        memory_per_message(&programs.mailslotfs, 1_000_000 / scale)
    })?;
    println!(
        "Daemon memory per queued 64 B message: {} (payload 64 B, overhead {:.1} B)",
        per_message.show("B"),
        per_message.median() - 64.0
    );
    Ok(())
}

/// Ratios of medians from the same run, and the targets beside them.
fn print_ratios(table: &Table) {
    let one_way = |t, s, w| table.get("one-way", t, s, w);
    println!();
    println!("Ratios (median against median, same run)");
    for size in SIZES {
        for writers in [1usize, 2] {
            let floor = one_way(Transport::FuseFloor, size, writers);
            let mq = one_way(Transport::PosixMq, size, writers);
            println!(
                "  {size:>5} B, {writers} writer(s): io_uring/floor {:.2}  classic/floor {:.2}  io_uring/mq {:.3}  io_uring/unix {:.3}  batch/mq {:.3}",
                one_way(Transport::Uring, size, writers) / floor,
                one_way(Transport::Classic, size, writers) / floor,
                one_way(Transport::Uring, size, writers) / mq,
                one_way(Transport::Uring, size, writers)
                    / one_way(Transport::UnixDgram, size, writers),
                one_way(Transport::Batch, size, writers) / mq,
            );
        }
        println!(
            "  {size:>5} B, 2 writers / 1 writer: io_uring {:.2}  classic {:.2}  floor {:.2}",
            one_way(Transport::Uring, size, 2) / one_way(Transport::Uring, size, 1),
            one_way(Transport::Classic, size, 2) / one_way(Transport::Classic, size, 1),
            one_way(Transport::FuseFloor, size, 2) / one_way(Transport::FuseFloor, size, 1),
        );
    }
    let writes = |t| table.get("writes", t, 64, 1);
    let ping = |t| table.get("ping-pong", t, 64, 1);
    println!(
        "  write calls/s: io_uring/floor {:.2}  classic/floor {:.2}",
        writes(Transport::Uring) / writes(Transport::FuseFloor),
        writes(Transport::Classic) / writes(Transport::FuseFloor),
    );
    println!(
        "  ping-pong median: io_uring/floor {:.2}  classic/floor {:.2}  io_uring/mq {:.2}",
        ping(Transport::Uring) / ping(Transport::FuseFloor),
        ping(Transport::Classic) / ping(Transport::FuseFloor),
        ping(Transport::Uring) / ping(Transport::PosixMq),
    );
    println!();
    println!("Targets (issue 10)");
    if one_way(Transport::Uring, 64, 1).is_nan() {
        println!("  not judged: mailslotfs did not run on io_uring");
        return;
    }
    let uring_64 = one_way(Transport::Uring, 64, 1);
    let floor_64 = one_way(Transport::FuseFloor, 64, 1);
    println!(
        "  io_uring 64 B one-way >= 3x floor and >= 90k msg/s: {:.2}x, {} msg/s: {}",
        uring_64 / floor_64,
        human(uring_64),
        verdict(uring_64 >= 3.0 * floor_64 && uring_64 >= 90e3)
    );
    let ping_ratio = ping(Transport::Uring) / ping(Transport::FuseFloor);
    println!(
        "  io_uring ping-pong median <= 0.85x floor: {ping_ratio:.2}x: {}",
        verdict(ping_ratio <= 0.85)
    );
    let scaling = SIZES
        .iter()
        .map(|&s| one_way(Transport::Uring, s, 2) / one_way(Transport::Uring, s, 1))
        .fold(f64::INFINITY, f64::min);
    println!(
        "  io_uring 2 writers >= 1.5x one writer (worst size): {scaling:.2}x: {}",
        verdict(scaling >= 1.5)
    );
    let classic_worst = SIZES
        .iter()
        .flat_map(|&s| {
            [1, 2].map(|w| one_way(Transport::Classic, s, w) / one_way(Transport::FuseFloor, s, w))
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "  classic no slower than the floor in any one-way row: worst {classic_worst:.2}x: {}",
        verdict(classic_worst >= 1.0)
    );
}

/// How a figure stands against its target of issue 10.
fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

const IDLE_WINDOW: Duration = Duration::from_secs(2);

/// What waiting servers cost a daemon that has nothing else to do.
struct Idle {
    cpu_percent: f64,
    wakeups_per_second: f64,
    bytes_per_reader: f64,
}

/// Parks `readers` reads (threads of a forked child, one slot each), then
/// watches the daemon for [`IDLE_WINDOW`]: CPU time from every thread's
/// schedstat, wake-ups as context switches, and RSS growth per reader.
fn idle_cost(mount: &Mount, readers: usize) -> io::Result<Idle> {
    let daemon = mount.child.id() as i32;
    let before_rss = mount.rss_bytes()?;
    let paths: Vec<PathBuf> = (0..readers)
        .map(|i| mount.fresh_path(&format!("idle{i}")))
        .collect();
    let (pids, gate) = fork_writers(1, |_| {
        let fds = paths
            .iter()
            .map(|p| open(p, libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY))
            .collect::<io::Result<Vec<_>>>()?;
        let waiting: Vec<_> = fds
            .into_iter()
            .map(|fd| {
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || read(fd.as_raw_fd(), &mut [0u8; 256]))
            })
            .collect::<io::Result<Vec<_>>>()?;
        for reader in waiting {
            let _ = reader.join();
        }
        Ok(())
    })?;
    drop(gate);
    let parked = |p: &PathBuf| xattr(p, "user.mailslot.waiting_readers").is_some_and(|v| v == "1");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !paths.iter().all(parked) {
        if Instant::now() > deadline {
            stop_children(&pids);
            return Err(io::Error::other("the idle readers never all parked"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss = mount.rss_bytes()?;
    // The window opens once the daemon has been quiet for 200 ms: the
    // asking above ends with a queue thread that polls a little before it
    // sleeps, and on io_uring each parked read is looked at a few times in
    // its first 63 ms (a signal that brought no INTERRUPT).
    let mut settled = task_totals(daemon).1;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = task_totals(daemon).1;
        if std::mem::replace(&mut settled, now) == now {
            break;
        }
    }
    let (cpu0, switches0) = task_totals(daemon);
    let start = Instant::now();
    // A measurement window: nothing is meant to happen in it.
    std::thread::sleep(IDLE_WINDOW);
    let (cpu1, switches1) = task_totals(daemon);
    let window = start.elapsed().as_secs_f64();
    stop_children(&pids);
    Ok(Idle {
        cpu_percent: (cpu1 - cpu0) as f64 / 1e9 / window * 100.0,
        wakeups_per_second: (switches1 - switches0) as f64 / window,
        bytes_per_reader: (rss - before_rss) / readers as f64,
    })
}

extern "C" fn on_signal(_: libc::c_int) {}

/// Milliseconds from SIGINT to a reader parked in read() (with a handler,
/// no SA_RESTART) until its read() returns EINTR. With `other_namespace`
/// the reader is the first process of a new pid namespace, as in a
/// container, whose pid the daemon cannot see.
fn signal_latency(mount: &Mount, other_namespace: bool) -> io::Result<f64> {
    let path = mount.fresh_path("signalled");
    let (pid_read, pid_write) = pipe()?;
    let (done_read, done_write) = pipe()?;
    let reader = |pid_write: &OwnedFd| -> io::Result<()> {
        // SAFETY: an all-zero sigaction with a handler and no flags is valid.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        }
        let server = open(&path, libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY)?;
        // SAFETY: getpid has no memory effects.
        let me = unsafe { libc::getpid() };
        write_all(pid_write, &me.to_ne_bytes())?;
        match read(server.as_raw_fd(), &mut [0u8; 64]) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => write_all(&done_write, b"!"),
            other => Err(io::Error::other(format!("read ended with {other:?}"))),
        }
    };
    let (pids, gate) = fork_writers(1, |_| {
        if !other_namespace {
            return reader(&pid_write);
        }
        // SAFETY: unshare and fork in a single-threaded child; the
        // grandchild only runs `reader` and `_exit`s.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWPID) as isize)?;
            let pid = check(libc::fork() as isize)? as i32;
            if pid == 0 {
                // Inside, this process is pid 1; report the pid outside.
                libc::_exit(i32::from(reader(&devnull()?).is_err()));
            }
            write_all(&pid_write, &pid.to_ne_bytes())?;
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            if status == 0 {
                Ok(())
            } else {
                Err(io::Error::other("the reader failed"))
            }
        }
    })?;
    drop(gate);
    drop(pid_write);
    drop(done_write);
    // The pid to signal, as this namespace sees it: the reader's own, or,
    // in a new namespace (where it is 1), the one its parent saw at fork.
    let mut pid = [0u8; 4];
    read_exact(&pid_read, &mut pid)?;
    let target = i32::from_ne_bytes(pid);
    let parked = || xattr(&path, "user.mailslot.waiting_readers").is_some_and(|v| v == "1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !parked() {
        if Instant::now() > deadline {
            stop_children(&pids);
            return Err(io::Error::other("the signalled reader never parked"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let start = Instant::now();
    // SAFETY: signalling our own (grand)child.
    unsafe { libc::kill(target, libc::SIGINT) };
    read_exact(&done_read, &mut [0u8])?;
    let took = start.elapsed().as_secs_f64() * 1e3;
    reap(&pids)?;
    Ok(took)
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as isize)?;
    // SAFETY: fresh descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn devnull() -> io::Result<OwnedFd> {
    open(Path::new("/dev/null"), libc::O_WRONLY)
}

fn write_all(fd: &OwnedFd, data: &[u8]) -> io::Result<()> {
    // SAFETY: `data` is readable for its length.
    let n = check(unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) })?;
    if n == data.len() {
        Ok(())
    } else {
        Err(io::Error::other("short write to a pipe"))
    }
}

fn read_exact(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<()> {
    let n = read(fd.as_raw_fd(), buf)?;
    if n == buf.len() {
        Ok(())
    } else {
        Err(io::Error::other("the other side ended early"))
    }
}

fn stop_children(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

/// CPU nanoseconds and context switches summed over every thread of `pid`.
fn task_totals(pid: i32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let mut cpu = 0;
    let mut switches = 0;
    for task in tasks.flatten() {
        let path = task.path();
        if let Ok(stat) = std::fs::read_to_string(path.join("schedstat")) {
            cpu += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if let Ok(status) = std::fs::read_to_string(path.join("status")) {
            switches += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    (cpu, switches)
}

fn xattr(path: &Path, name: &str) -> Option<String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = [0u8; 64];
    // SAFETY: NUL-terminated strings, `buf` writable for its length.
    let len = unsafe { libc::getxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let len = usize::try_from(len).ok()?;
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// write(2) calls per second into a slot that holds them all.
fn write_calls(mount: &Mount, count: usize) -> io::Result<f64> {
    let path = mount.fresh_path("writes");
    let server = open(&path, libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY)?;
    let client = open(&path, libc::O_WRONLY)?;
    let msg = [b'w'; 64];
    let start = Instant::now();
    for _ in 0..count {
        write_retrying(client.as_raw_fd(), &msg)?;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    drop((client, server));
    Ok(rate)
}

/// A file system daemon in the foreground on a temp dir, stopped on drop.
struct Mount {
    dir: PathBuf,
    child: Child,
}

impl Mount {
    /// `mailslotfs mount --foreground -o OPTIONS` on a fresh directory.
    fn mailslotfs(bin: &Path, options: &str) -> io::Result<Mount> {
        Mount::start(|dir| {
            let mut c = Command::new(bin);
            c.args(["mount", "--foreground", "-o", options]).arg(dir);
            c
        })
    }

    /// Runs the command `daemon` builds for a fresh directory, and waits
    /// for the mount.
    fn start(daemon: impl FnOnce(&Path) -> Command) -> io::Result<Mount> {
        static MOUNTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mailslotfs-bench-{}-{}",
            std::process::id(),
            MOUNTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let child = daemon(&dir).stdin(Stdio::null()).spawn()?;
        let mut mount = Mount { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_mounted(&mount.dir) {
            if let Some(status) = mount.child.try_wait()? {
                return Err(io::Error::other(format!("the daemon exited ({status})")));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("the mount did not come up"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(mount)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A name no earlier run used: the file system learns that a run's
    /// server closed only when the kernel's asynchronous release arrives.
    fn fresh_path(&self, name: &str) -> PathBuf {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.join(format!("{name}-{run}"))
    }

    fn rss_bytes(&self) -> io::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| io::Error::other("no VmRSS"))?;
        Ok(kib * 1024.0)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_mounted(&self.dir) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn is_mounted(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == dir.to_str()))
        .unwrap_or(false)
}

fn check(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

fn open(path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: NUL-terminated path; the returned fd is owned from here.
    let fd = check(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) } as isize)?;
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    check(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// Writes one message, waiting (poll for POLLOUT) while the slot is full.
fn write_retrying(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `data` is readable for its length.
        match check(unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) }) {
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, 100) };
            }
            other => return other,
        }
    }
}

/// Runs `body` in `n` forked children, all released at once by `start`.
/// Returns the pids to wait for.
fn fork_writers(
    n: usize,
    body: impl Fn(usize) -> io::Result<()>,
) -> io::Result<(Vec<i32>, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as isize)?;
    // SAFETY: fresh descriptors we own.
    let (gate_read, gate_write) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut pids = Vec::new();
    for i in 0..n {
        // SAFETY: the benchmark is single-threaded when it forks; the child
        // only runs `body` and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop(gate_write);
            let mut byte = [0u8];
            let _ = read(gate_read.as_raw_fd(), &mut byte);
            let code = match body(i) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("bench writer: {e}");
                    1
                }
            };
            // SAFETY: leave the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        check(pid as isize)?;
        pids.push(pid);
    }
    drop(gate_read);
    Ok((pids, gate_write))
}

fn reap(pids: &[i32]) -> io::Result<()> {
    for &pid in pids {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if status != 0 {
            return Err(io::Error::other(format!("writer {pid} failed ({status})")));
        }
    }
    Ok(())
}

/// Splits `count` messages among `writers`.
fn share(count: usize, writers: usize, i: usize) -> usize {
    count / writers + usize::from(i < count % writers)
}

/// Batch frames: a u32 little-endian length, then the bytes.
fn frames(size: usize, n: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(n * (size + 4));
    for _ in 0..n {
        buf.extend_from_slice(&(size as u32).to_le_bytes());
        buf.extend(std::iter::repeat_n(b'x', size));
    }
    buf
}

fn set_batch(fd: RawFd) -> io::Result<()> {
    let on: u32 = 1;
    // SAFETY: the ioctl reads one u32 from `on`.
    check(unsafe { libc::ioctl(fd, MAILSLOT_IOC_BATCH as _, &on) } as isize).map(drop)
}

fn one_way(
    t: Transport,
    mount: &Mount,
    size: usize,
    writers: usize,
    count: usize,
) -> io::Result<f64> {
    let payload = vec![b'x'; size];
    // Plain reads use a buffer of the default largest message, as `cat`
    // and Python do: FUSE pins the whole buffer of every read, so a 1 MiB
    // buffer costs a 64 B message about as much as a 1 MiB one. Batch
    // reads take as many frames as fit.
    let mut buf = vec![
        0u8;
        if t == Transport::Batch {
            1 << 20
        } else {
            64 * 1024
        }
    ];
    match t {
        Transport::Uring | Transport::Classic | Transport::Batch | Transport::FuseFloor => {
            let path = mount.fresh_path(&format!("oneway-{size}-{writers}"));
            let server = open(&path, libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY)?;
            let batch = t == Transport::Batch;
            if batch {
                set_batch(server.as_raw_fd())?;
            }
            let per_batch = (64 * 1024 / (size + 4)).max(1);
            let (pids, gate) = fork_writers(writers, |i| {
                let client = open(&path, libc::O_WRONLY)?;
                let fd = client.as_raw_fd();
                let mine = share(count, writers, i);
                if batch {
                    set_batch(fd)?;
                    let mut left = mine;
                    let block = frames(size, per_batch);
                    while left > 0 {
                        let n = left.min(per_batch);
                        let mut chunk = &block[..n * (size + 4)];
                        while !chunk.is_empty() {
                            let done = write_retrying(fd, chunk)?;
                            chunk = &chunk[done..];
                        }
                        left -= n;
                    }
                } else {
                    for _ in 0..mine {
                        write_retrying(fd, &payload)?;
                    }
                }
                Ok(())
            })?;
            let start = Instant::now();
            drop(gate);
            let mut got = 0;
            while got < count {
                let n = read(server.as_raw_fd(), &mut buf)?;
                got += if batch { count_frames(&buf[..n]) } else { 1 };
            }
            let elapsed = start.elapsed();
            reap(&pids)?;
            Ok(count as f64 / elapsed.as_secs_f64())
        }
        Transport::PosixMq => {
            let queue =
                PosixMq::create(&format!("/mailslotfs-bench-{}", std::process::id()), size)?;
            let (pids, gate) = fork_writers(writers, |i| {
                for _ in 0..share(count, writers, i) {
                    queue.send(&payload)?;
                }
                Ok(())
            })?;
            let start = Instant::now();
            drop(gate);
            for _ in 0..count {
                queue.receive(&mut buf)?;
            }
            let elapsed = start.elapsed();
            reap(&pids)?;
            Ok(count as f64 / elapsed.as_secs_f64())
        }
        Transport::UnixDgram => {
            let (rx, tx) = unix_pair()?;
            let (pids, gate) = fork_writers(writers, |i| {
                for _ in 0..share(count, writers, i) {
                    // SAFETY: `payload` is readable for its length.
                    check(unsafe { libc::send(tx.as_raw_fd(), payload.as_ptr().cast(), size, 0) })?;
                }
                Ok(())
            })?;
            let start = Instant::now();
            drop(gate);
            for _ in 0..count {
                read(rx.as_raw_fd(), &mut buf)?;
            }
            let elapsed = start.elapsed();
            reap(&pids)?;
            Ok(count as f64 / elapsed.as_secs_f64())
        }
    }
}

fn count_frames(mut buf: &[u8]) -> usize {
    let mut n = 0;
    while buf.len() >= 4 {
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        buf = &buf[(4 + len).min(buf.len())..];
        n += 1;
    }
    n
}

/// Round trips of a 64 B message between two processes, in microseconds.
fn ping_pong(t: Transport, mount: &Mount, iters: usize) -> io::Result<Vec<f64>> {
    let msg = [b'p'; 64];
    let mut buf = vec![0u8; 65536];
    let mut rtts = Vec::with_capacity(iters);
    match t {
        Transport::Uring | Transport::Classic | Transport::Batch | Transport::FuseFloor => {
            let ping = mount.fresh_path("ping");
            let pong = mount.fresh_path("pong");
            let here = open(&ping, libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY)?;
            let there = open(&pong, libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY)?;
            let (pids, gate) = fork_writers(1, |_| {
                let back = open(&ping, libc::O_WRONLY)?;
                let mut buf = [0u8; 256];
                for _ in 0..iters {
                    let n = read(there.as_raw_fd(), &mut buf)?;
                    write_retrying(back.as_raw_fd(), &buf[..n])?;
                }
                Ok(())
            })?;
            drop(there);
            let out = open(&pong, libc::O_WRONLY)?;
            drop(gate);
            for _ in 0..iters {
                let start = Instant::now();
                write_retrying(out.as_raw_fd(), &msg)?;
                read(here.as_raw_fd(), &mut buf)?;
                rtts.push(start.elapsed().as_secs_f64() * 1e6);
            }
            reap(&pids)?;
        }
        Transport::PosixMq => {
            let base = format!("/mailslotfs-bench-pp-{}", std::process::id());
            let there = PosixMq::create(&format!("{base}-a"), 64)?;
            let back = PosixMq::create(&format!("{base}-b"), 64)?;
            let (pids, gate) = fork_writers(1, |_| {
                let mut buf = [0u8; 64];
                for _ in 0..iters {
                    let n = there.receive(&mut buf)?;
                    back.send(&buf[..n])?;
                }
                Ok(())
            })?;
            drop(gate);
            for _ in 0..iters {
                let start = Instant::now();
                there.send(&msg)?;
                back.receive(&mut buf)?;
                rtts.push(start.elapsed().as_secs_f64() * 1e6);
            }
            reap(&pids)?;
        }
        Transport::UnixDgram => {
            let (a, b) = unix_pair()?;
            let (pids, gate) = fork_writers(1, |_| {
                let mut buf = [0u8; 256];
                for _ in 0..iters {
                    let n = read(b.as_raw_fd(), &mut buf)?;
                    // SAFETY: `buf` is readable for n bytes.
                    check(unsafe { libc::send(b.as_raw_fd(), buf.as_ptr().cast(), n, 0) })?;
                }
                Ok(())
            })?;
            drop(gate);
            for _ in 0..iters {
                let start = Instant::now();
                // SAFETY: `msg` is readable for its length.
                check(unsafe { libc::send(a.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) })?;
                read(a.as_raw_fd(), &mut buf)?;
                rtts.push(start.elapsed().as_secs_f64() * 1e6);
            }
            reap(&pids)?;
        }
    }
    Ok(rtts)
}

/// RSS growth of a fresh daemon per queued 64 B message.
fn memory_per_message(bin: &Path, count: usize) -> io::Result<f64> {
    let mount = Mount::mailslotfs(bin, "quota_messages=2000000,quota_bytes=1G")?;
    let server = open(&mount.path("hoard"), libc::O_CREAT | libc::O_RDONLY)?;
    let client = open(&mount.path("hoard"), libc::O_WRONLY)?;
    let before = mount.rss_bytes()?;
    let msg = [b'm'; 64];
    for _ in 0..count {
        write_retrying(client.as_raw_fd(), &msg)?;
    }
    let after = mount.rss_bytes()?;
    drop((client, server));
    Ok((after - before) / count as f64)
}

/// Queue depth for `size`-byte messages: 256, or fewer when the user's
/// RLIMIT_MSGQUEUE (bytes for all of one user's queues) would not hold it.
fn mq_depth(size: usize) -> libc::c_long {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut limit) };
    let per_message = size as u64 + 128;
    (limit.rlim_cur / per_message / 2).clamp(8, 256) as libc::c_long
}

/// A POSIX message queue, unlinked on drop.
struct PosixMq {
    fd: libc::mqd_t,
    name: CString,
}

impl PosixMq {
    fn create(name: &str, size: usize) -> io::Result<PosixMq> {
        let name = CString::new(name).map_err(io::Error::other)?;
        // SAFETY: an all-zero mq_attr is valid; we set the fields we use.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = mq_depth(size);
        attr.mq_msgsize = size as _;
        // SAFETY: NUL-terminated name, valid attr pointer.
        unsafe { libc::mq_unlink(name.as_ptr()) };
        // SAFETY: as above.
        let fd = unsafe {
            libc::mq_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_RDWR,
                0o600 as libc::mode_t,
                &attr as *const libc::mq_attr,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PosixMq { fd, name })
    }

    fn send(&self, data: &[u8]) -> io::Result<()> {
        // SAFETY: `data` is readable for its length.
        check(unsafe { libc::mq_send(self.fd, data.as_ptr().cast(), data.len(), 0) } as isize)
            .map(drop)
    }

    fn receive(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is writable for its length.
        check(unsafe {
            libc::mq_receive(
                self.fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                std::ptr::null_mut(),
            )
        })
    }
}

impl Drop for PosixMq {
    fn drop(&mut self) {
        // SAFETY: our own descriptor and name.
        unsafe {
            libc::mq_close(self.fd);
            libc::mq_unlink(self.name.as_ptr());
        }
    }
}

fn unix_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } as isize)?;
    // SAFETY: fresh descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
