//! Mounting and unmounting, and the kernel facts that shape both.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, MountOption, Session, SessionACL};

use super::MailslotFs;
use crate::mountinfo;

/// The largest message the kernel passes in one READ or WRITE request. It
/// splits a direct-I/O transfer at `max_pages` pages (an unaligned user
/// buffer costs one page), so anything larger would arrive as pieces.
pub fn transport_max() -> u32 {
    let pages = read_sysctl("max_pages_limit").unwrap_or(256).clamp(32, 256);
    ((pages - 1) * 4096) as u32
}

/// How long a read may stay parked: below the kernel's FUSE request timeout
/// (fs.fuse.default_request_timeout / max_request_timeout, in seconds), past
/// which the kernel would abort the whole connection. The kernel checks
/// timeouts lazily, so half the timeout is safe.
pub fn park_cap() -> Option<Duration> {
    let default = read_sysctl("default_request_timeout").unwrap_or(0);
    let max = read_sysctl("max_request_timeout").unwrap_or(0);
    let effective = match (default, max) {
        (0, 0) => return None,
        (d, 0) => d,
        (0, m) => m,
        (d, m) => d.min(m),
    };
    Some(Duration::from_millis(effective * 500))
}

fn read_sysctl(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/fs/fuse/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A live mount.
pub struct Mounted {
    session: BackgroundSession,
    dir: PathBuf,
    /// Our mount's device (`major:minor`), so that we never unmount a
    /// mount someone else has since put on the same directory.
    device: Option<String>,
}

/// Mounts `fs` at `dir`, shown in the mount table with `source` as its
/// source, served by `threads` event-loop threads. Returns once the kernel
/// has completed the FUSE handshake, so the mount is usable when this
/// returns.
pub fn mount(
    fs: MailslotFs,
    dir: &Path,
    source: &str,
    allow_other: bool,
    threads: usize,
) -> io::Result<Mounted> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(source.to_owned()),
        // Subtype() is dropped on the direct (root) mount path; CUSTOM is not.
        MountOption::CUSTOM("subtype=mailslotfs".to_owned()),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoExec,
    ];
    config.acl = if allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(threads);
    config.clone_fd = true;
    let session = Session::new(fs, dir, &config)?.spawn()?;
    Ok(Mounted {
        session,
        dir: dir.to_path_buf(),
        device: mountinfo::top_mount_device(dir),
    })
}

impl Mounted {
    /// Whether the event loops have ended (someone ran `umount`).
    pub fn is_finished(&self) -> bool {
        self.session.guard.is_finished()
    }

    /// Removes the mount. Clients that still hold slots open would make a
    /// plain unmount fail with EBUSY; the mount is then detached, and those
    /// clients see the connection end when the daemon exits.
    pub fn unmount(self) {
        // Unmounted from outside already, the directory may hold someone
        // else's mount by now, which is not ours to remove.
        let ours = !self.is_finished() && mountinfo::top_mount_device(&self.dir) == self.device;
        if ours {
            if let Err(e) = unmount(&self.dir) {
                log::warn!("unmounting {}: {e}", self.dir.display());
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            while !self.session.guard.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // fuser's own drop would unmount the directory again, whatever is
        // mounted there now; the process is about to exit, so skip it.
        std::mem::forget(self.session);
    }
}

/// Unmounts `dir`: directly when we may, lazily when it is busy, and through
/// fusermount3 when we are not root.
pub fn unmount(dir: &Path) -> io::Result<()> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EBUSY) => {
            // SAFETY: as above.
            if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        Some(libc::EPERM) => {
            let status = Command::new("fusermount3")
                .args(["-u", "-z", "-q"])
                .arg(dir)
                .status()?;
            if status.success() {
                Ok(())
            } else {
                Err(io::Error::other("fusermount3 -u failed"))
            }
        }
        _ => Err(io::Error::last_os_error()),
    }
}

/// Whether `dir` is a FUSE mount whose daemon is gone ("Transport endpoint
/// is not connected").
pub fn is_stale(dir: &Path) -> bool {
    matches!(
        std::fs::metadata(dir).map_err(|e| e.raw_os_error()),
        Err(Some(libc::ENOTCONN))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_limit_leaves_a_page_for_unaligned_buffers() {
        assert!(transport_max() >= 31 * 4096);
        assert_eq!(transport_max() % 4096, 0);
    }
}
