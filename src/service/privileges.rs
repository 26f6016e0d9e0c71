//! `--user NAME`: a daemon started as root binds port 138 and mounts, then
//! runs as an ordinary user. Only unmounting still needs root, so before
//! dropping it the daemon forks a tiny helper that keeps root, waits for
//! the daemon to close a pipe (at shutdown, or when it dies, even by
//! SIGKILL), unmounts, and exits. Nothing else stays privileged.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::slot::accounts::SubordinateIds;

/// The user to become.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Where the subordinate uids are written down, `user:first:count` a line
/// (subuid(5); shadow's newuidmap reads the same file).
const SUBUID_FILE: &str = "/etc/subuid";

/// This machine's subordinate uids, by the user they were given to; none
/// when the file is missing or unreadable. Read when a mount starts: a
/// change counts from the next mount.
pub fn subordinate_ids() -> SubordinateIds {
    let text = std::fs::read_to_string(SUBUID_FILE).unwrap_or_default();
    SubordinateIds::parse(&text, |name| lookup(name).ok().map(|user| user.uid))
}

/// Looks `name` up in the password database. Errors are one line.
pub fn lookup(name: &str) -> Result<Identity, String> {
    let unknown = || format!("--user {name}: no such user");
    let c_name = CString::new(name).map_err(|_| unknown())?;
    let mut entry = zeroed_passwd();
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the buffer's length is
    // passed with it, and `found` points at `entry` or stays null.
    let status = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 {
        return Err(format!(
            "--user {name}: {}",
            io::Error::from_raw_os_error(status)
        ));
    }
    if found.is_null() {
        return Err(unknown());
    }
    Ok(Identity {
        name: name.to_owned(),
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    })
}

fn zeroed_passwd() -> libc::passwd {
    // SAFETY: passwd is plain data (integers and pointers); all-zero is a
    // valid value that getpwnam_r overwrites.
    unsafe { std::mem::zeroed() }
}

/// The root helper that unmounts `dir` once the daemon is done.
pub struct UnmountHelper {
    pid: libc::pid_t,
    /// Closing it tells the helper to unmount.
    pipe: OwnedFd,
}

impl UnmountHelper {
    /// Asks the helper to unmount (lazily, so a busy mount still goes) and
    /// waits until it has.
    pub fn unmount(self) {
        drop(self.pipe);
        let mut status = 0;
        // SAFETY: `pid` is our own child, reaped only here.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

/// Starts the unmount helper, then becomes `who` for good: supplementary
/// groups, group and user, in the order that leaves no way back.
pub fn become_user(who: &Identity, dir: &Path) -> Result<UnmountHelper, String> {
    let fail = |what: &str| {
        format!(
            "--user {}: {what}: {}",
            who.name,
            io::Error::last_os_error()
        )
    };
    let helper = start_unmount_helper(dir).map_err(|e| format!("--user {}: {e}", who.name))?;
    // SAFETY: plain system calls on our own credentials; glibc applies them
    // to every thread of the process.
    unsafe {
        if libc::setgroups(1, &who.gid) != 0 {
            return Err(fail("setgroups"));
        }
        if libc::setgid(who.gid) != 0 {
            return Err(fail("setgid"));
        }
        if libc::setuid(who.uid) != 0 {
            return Err(fail("setuid"));
        }
        if who.uid != 0 && libc::setuid(0) == 0 {
            return Err(format!("--user {}: root could be regained", who.name));
        }
    }
    Ok(helper)
}

fn start_unmount_helper(dir: &Path) -> io::Result<UnmountHelper> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these descriptors; each is owned once.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child of this multi-threaded process only makes
    // async-signal-safe system calls on data prepared before the fork.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        // SAFETY: this is the forked child, which is what the helper needs.
        0 => unsafe { unmount_when_closed(reader.as_raw_fd(), &path) },
        pid => Ok(UnmountHelper { pid, pipe: writer }),
    }
}

/// The helper's whole life: keep only the pipe's read end (not the FUSE
/// device, whose copy would keep a dead daemon's mount hanging instead of
/// failing, nor the datagram socket), wait for end-of-file, unmount, exit.
///
/// # Safety
/// Only for the child of a fork: it never returns and never unwinds.
unsafe fn unmount_when_closed(reader: i32, dir: &CStr) -> ! {
    let mut byte = 0u8;
    // SAFETY: descriptors inherited from the parent; `byte` is writable.
    unsafe {
        libc::dup2(reader, 0);
        libc::syscall(libc::SYS_close_range, 1u32, u32::MAX, 0u32);
        loop {
            let n = libc::read(0, (&raw mut byte).cast(), 1);
            if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                break;
            }
        }
        libc::umount2(dir.as_ptr(), libc::MNT_DETACH);
        libc::_exit(0)
    }
}
