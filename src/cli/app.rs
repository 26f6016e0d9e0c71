//! Orchestration only: validate, detach, mount, wait for a signal, shut down
//! in order. Every failure is one line, `<what>: <why>`, that `main` prints
//! after `mailslotfs: `.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{generate, tools};
use crate::bridge::net::Link;
use crate::cli::{Command, MountArgs, parse_mount_options, reason};
use crate::fs::{Control, FsConfig, MailslotFs};
use crate::kernel::mount::{self as session, MountConfig, Mounted};
use crate::kernel::mountinfo;
use crate::service::privileges::{self, UnmountHelper};
use crate::service::{daemon, logger, notify};

/// Runs one command.
pub fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Mount(args) => mount(*args),
        Command::Serve(args) => tools::serve(&args),
        Command::Send(args) => tools::send(&args),
        Command::Info(args) => tools::info(&args),
        Command::Status(args) => tools::status(&args),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man => generate::man(),
    }
}

fn mount(args: MountArgs) -> Result<(), String> {
    logger::init(args.verbose, args.debug);
    let transport_max = session::transport_max();
    let mut options = parse_mount_options(&args.options, transport_max)?;
    options.bridge.add_flags(&args.bridge)?;
    let bridge = options.bridge.finish()?;
    let source = mount_source(args.source.as_deref())?;
    let dir = prepare_mount_point(&args.dir)?;
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse: no FUSE device (load the module: modprobe fuse)".to_owned());
    }
    let user = match args.user.as_deref().or(options.user.as_deref()) {
        Some(name) => Some(privileges::lookup(name)?),
        None => None,
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        if let Some(user) = &user {
            return Err(format!("--user {}: only root can change user", user.name));
        }
        check_unprivileged_mount(options.allow_other)?;
    }
    if args.dry_run {
        return Ok(());
    }
    // Bound before going to the background, so "port in use" is reported
    // by the command itself; the socket survives the fork.
    let link = match &bridge {
        Some(settings) => Some(Arc::new(Link::open(settings, options.defaults.keep_empty)?)),
        None => None,
    };
    let report = if args.foreground {
        None
    } else {
        let report =
            daemon::detach().map_err(|e| format!("cannot go to the background: {}", reason(&e)))?;
        logger::use_syslog();
        Some(report)
    };
    let signals = block_stop_signals();
    // SAFETY: geteuid/getegid have no preconditions.
    let owner = unsafe { (libc::geteuid(), libc::getegid()) };
    let config = FsConfig {
        defaults: options.defaults,
        transport_max,
        park_cap: session::park_cap(),
        owner,
        subordinates: privileges::subordinate_ids(),
    };
    let started = MailslotFs::new(config, link.clone())
        .map_err(|e| format!("cannot start: {}", reason(&e)))
        .and_then(|(fs, control)| {
            if let Some(link) = &link {
                start_bridge(link, &control)?;
            }
            let config = MountConfig {
                fsname: source,
                subtype: "mailslotfs",
                allow_other: options.allow_other,
                threads: options.threads,
                transport: options.transport,
            };
            let serve = |notifier, transport| fs.serve(notifier, transport);
            let mounted = session::mount(&dir, &config, serve, wake_this_thread())
                .map_err(|e| mount_error(&dir, &e, options.allow_other))?;
            let helper = match &user {
                Some(user) => Some(privileges::become_user(user, &dir)?),
                None => None,
            };
            Ok((mounted, control, helper))
        });
    let (mounted, control, helper) = match (started, report) {
        (Ok(started), Some(report)) => {
            report.ready();
            started
        }
        (Ok(started), None) => started,
        (Err(line), Some(report)) => {
            report.failed(&line);
            std::process::exit(1);
        }
        (Err(line), None) => return Err(line),
    };
    log::info!("mounted at {}", dir.display());
    let ready = format!(
        "READY=1\nSTATUS=mounted at {}\nMAINPID={}",
        dir.display(),
        std::process::id()
    );
    if let Err(e) = notify::notify(&ready) {
        log::warn!("cannot tell systemd the mount is ready: {e}");
    }
    wait_for_stop(&signals, &mounted);
    let _ = notify::notify("STOPPING=1");
    if let Some(link) = &link {
        link.release_names();
    }
    shut_down(control, mounted, helper);
    Ok(())
}

/// Starts receiving (datagrams for us go into local slots through the
/// file system's own write path) and registers our NetBIOS names.
fn start_bridge(link: &Arc<Link>, control: &Control) -> Result<(), String> {
    let receiver = control.clone();
    link.start(move |delivery| receiver.deliver(delivery))?;
    let config = link.bridge().config();
    log::info!(
        "bridge: {} in {} on {}, domain writes to {}",
        config.computer,
        config.domain,
        config.address,
        config.group
    );
    Ok(())
}

/// The source the mount table shows: mount(8)'s SOURCE, or `mailslotfs`.
/// It travels inside the comma-separated mount data, so no commas.
fn mount_source(source: Option<&str>) -> Result<&str, String> {
    match source {
        None | Some("") => Ok("mailslotfs"),
        Some(s) if s.contains([',', '\0']) || s.chars().any(char::is_whitespace) => Err(format!(
            "{s:?}: the mount source may not contain commas or spaces"
        )),
        Some(s) => Ok(s),
    }
}

/// A user other than root mounts through fusermount3, which allows
/// `allow_other` only when the administrator said so in /etc/fuse.conf.
/// Checked here so that the refusal says what to do.
fn check_unprivileged_mount(allow_other: bool) -> Result<(), String> {
    let in_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("fusermount3").is_file())
    });
    if !in_path {
        return Err(
            "fusermount3: not found (users other than root mount through it: install fuse3)"
                .to_owned(),
        );
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(format!(
            "/dev/fuse: {} (users other than root need it mode 0666, as udev sets it)",
            reason(&e)
        ));
    }
    let permitted = std::fs::read_to_string("/etc/fuse.conf")
        .is_ok_and(|conf| conf.lines().any(|line| line.trim() == "user_allow_other"));
    if allow_other && !permitted {
        return Err(
            "-o allow_other: only root may use it unless /etc/fuse.conf \
             contains the line 'user_allow_other'"
                .to_owned(),
        );
    }
    Ok(())
}

/// Checks the mount point, cleaning up a mount left by a killed daemon.
fn prepare_mount_point(dir: &Path) -> Result<PathBuf, String> {
    let shown = dir.display();
    if session::is_stale(dir) {
        log::info!("{shown}: cleaning up a mount left by a daemon that died");
        session::unmount(dir)
            .map_err(|e| format!("{shown}: cannot clean up the stale mount: {}", reason(&e)))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown}: mount point does not exist"),
        _ => format!("{shown}: {}", reason(&e)),
    })?;
    if !meta.is_dir() {
        return Err(format!("{shown}: mount point is not a directory"));
    }
    if mountinfo::is_mount_point(dir) {
        return Err(format!("{shown}: already a mount point (unmount it first)"));
    }
    dir.canonicalize()
        .map_err(|e| format!("{shown}: {}", reason(&e)))
}

fn mount_error(dir: &Path, error: &std::io::Error, allow_other: bool) -> String {
    let why = match error.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) if allow_other => {
            "permission denied (allow_other needs 'user_allow_other' in /etc/fuse.conf)".to_owned()
        }
        Some(libc::EPERM | libc::EACCES) => {
            "permission denied (mount as root, or install fuse3 for fusermount3)".to_owned()
        }
        _ => reason(error),
    };
    format!("{}: cannot mount: {why}", dir.display())
}

/// The signal the last FUSE loop sends this thread when the mount is gone.
const MOUNT_ENDED: libc::c_int = libc::SIGUSR1;

/// What the kernel interface runs when the connection ends: wakes
/// `wait_for_stop` on this thread, which otherwise sleeps without a timeout.
fn wake_this_thread() -> Arc<dyn Fn() + Send + Sync> {
    // SAFETY: getpid and gettid have no preconditions.
    let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    Arc::new(move || {
        // SAFETY: a plain signal to a thread of this process; it is blocked
        // everywhere and taken by sigwaitinfo.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, MOUNT_ENDED) };
    })
}

/// Blocks SIGINT, SIGTERM, SIGHUP (and the mount's end signal) in this
/// thread and every thread it starts, so that they are only ever taken by
/// `wait_for_stop`.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the calls only fill and apply it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, MOUNT_ENDED] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for a stop signal, or for the mount to go away under us. Sleeps
/// with no timeout: an idle daemon is never woken.
fn wait_for_stop(signals: &libc::sigset_t, mounted: &Mounted) {
    loop {
        if mounted.is_finished() {
            log::info!("unmounted from outside: exiting");
            return;
        }
        // SAFETY: `signals` is valid for the call; a null siginfo pointer is
        // allowed.
        let signal = unsafe { libc::sigwaitinfo(signals, std::ptr::null_mut()) };
        if signal > 0 && signal != MOUNT_ENDED {
            log::info!("signal {signal}: unmounting");
            return;
        }
    }
}

/// Answers every waiting reader, then unmounts (through the root helper
/// when the daemon runs as `--user`).
fn shut_down(control: Control, mounted: Mounted, helper: Option<UnmountHelper>) {
    control.shut_down();
    if let Some(helper) = helper {
        helper.unmount();
    }
    mounted.unmount();
}
