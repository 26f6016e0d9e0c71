//! The kernel's mount table (`/proc/self/mountinfo`): which directories are
//! mount points, and of what type.

use std::path::{Path, PathBuf};

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The mounted file system's device, `major:minor`.
    pub device: String,
    pub point: PathBuf,
    /// As mount(8) shows it, e.g. `fuse.mailslotfs`.
    pub fs_type: String,
}

/// Every mount this process can see, in mount order.
pub fn mounts() -> Vec<MountEntry> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| info.lines().filter_map(parse_line).collect())
        .unwrap_or_default()
}

/// Fields: id parent dev root POINT options [optional...] - TYPE source ...
fn parse_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = fields.iter().position(|f| *f == "-")?;
    Some(MountEntry {
        device: (*fields.get(2)?).to_owned(),
        point: PathBuf::from(unescape(fields.get(4)?)),
        fs_type: (*fields.get(separator + 1)?).to_owned(),
    })
}

/// Whether `dir` is a mount point (of anything).
pub fn is_mount_point(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    mounts().iter().any(|m| m.point == dir)
}

/// The device of the topmost mount on `dir`, if any: tells our own mount
/// from one someone else has since put on the same directory.
pub fn top_mount_device(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    mounts()
        .into_iter()
        .rev()
        .find(|m| m.point == dir)
        .map(|m| m.device)
}

/// The mount `path` lives on: the last-mounted entry whose mount point
/// contains it.
pub fn mount_of(path: &Path) -> Option<MountEntry> {
    let path = path.canonicalize().ok()?;
    mounts()
        .into_iter()
        .filter(|m| path.starts_with(&m.point))
        .max_by_key(|m| m.point.components().count())
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
        assert_eq!(unescape(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn lines_with_optional_fields() {
        let line =
            "36 35 0:31 / /mnt/my\\040slots rw,nosuid shared:1 master:2 - fuse.mailslotfs none rw";
        assert_eq!(
            parse_line(line),
            Some(MountEntry {
                device: "0:31".to_owned(),
                point: PathBuf::from("/mnt/my slots"),
                fs_type: "fuse.mailslotfs".to_owned()
            })
        );
        assert!(is_mount_point(Path::new("/")));
        assert!(mount_of(Path::new("/proc/self")).is_some_and(|m| m.fs_type == "proc"));
    }
}
