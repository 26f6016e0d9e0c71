//! `serve`, `send`, `info` and `status`: mailslots for people who would
//! rather not open files by hand. They use nothing but ordinary file calls
//! (and extended attributes) on the mount.

use std::fs::OpenOptions;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use std::path::{Path, PathBuf};

use crate::cli::{FS_TYPE, Framing, InfoArgs, SendArgs, ServeArgs, StatusArgs, reason, slot_path};
use crate::kernel::mountinfo;
use crate::slot::limits::InfoAttr;

/// `serve`: creates the slot and prints messages as they arrive.
pub fn serve(args: &ServeArgs) -> Result<(), String> {
    let path = slot_path(&args.slot);
    let shown = path.display().to_string();
    let slot = OpenOptions::new()
        .read(true)
        // Not create_new(): std insists on write access for that, and a
        // server handle is read-only.
        .custom_flags(libc::O_CREAT | libc::O_EXCL)
        .mode(0o666)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => format!("{shown}: a server already has this mailslot"),
            _ => format!("{shown}: cannot create the mailslot: {}", reason(&e)),
        })?;
    // Every slot has this attribute; a file without it was made on some
    // other file system, and is ours to take back.
    let Ok(max) = get_xattr(&path, InfoAttr::MaxMessageSize) else {
        let _ = std::fs::remove_file(&path);
        return Err(format!("{shown}: not on a mailslotfs mount"));
    };
    let max: usize = max.parse().unwrap_or(64 * 1024);
    if let Some(ms) = args.timeout {
        set_xattr(&path, InfoAttr::ReadTimeoutMs, &ms.to_string())
            .map_err(|e| format!("{shown}: cannot set the read timeout: {}", reason(&e)))?;
    }
    let mut buf = vec![0u8; max];
    let mut out = io::stdout().lock();
    let mut received = 0u64;
    while args.count.is_none_or(|n| received < n) {
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
        let n = unsafe { libc::read(slot.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ETIMEDOUT) if args.count.is_none() => return Ok(()),
                Some(libc::ETIMEDOUT) => {
                    return Err(format!(
                        "{shown}: timed out after {received} of {} messages",
                        args.count.unwrap_or_default()
                    ));
                }
                _ => return Err(format!("{shown}: read failed: {}", reason(&e))),
            }
        }
        if n == 0 {
            // The daemon is shutting down.
            return Ok(());
        }
        received += 1;
        write_framed(&mut out, &buf[..n as usize], args.framing)
            .and_then(|()| out.flush())
            .map_err(|e| format!("standard output: {}", reason(&e)))?;
    }
    Ok(())
}

fn write_framed(out: &mut impl Write, message: &[u8], framing: Framing) -> io::Result<()> {
    match framing {
        Framing::Line => {
            out.write_all(message)?;
            if !message.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        Framing::Nul => {
            out.write_all(message)?;
            out.write_all(b"\0")
        }
        Framing::Netstring => {
            write!(out, "{}:", message.len())?;
            out.write_all(message)?;
            out.write_all(b",")
        }
        Framing::Raw => out.write_all(message),
    }
}

/// `send`: each argument, each stdin line, or all of stdin is one message.
pub fn send(args: &SendArgs) -> Result<(), String> {
    let path = slot_path(&args.slot);
    let shown = path.display().to_string();
    // A network name (under `.net`) is made by opening it with O_CREAT,
    // and the directories above it by mkdir.
    let remote = path.components().any(|c| c.as_os_str() == ".net");
    if remote && let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("{}: {}", parent.display(), reason(&e)))?;
    }
    let mut slot = OpenOptions::new()
        .write(true)
        .create(remote)
        .custom_flags(libc::O_NOCTTY)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => format!("{shown}: no such mailslot (no server has created it)"),
            _ => format!("{shown}: cannot open the mailslot: {}", reason(&e)),
        })?;
    let mut send_one = |message: &[u8]| {
        slot.write(message).map(drop).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::EMSGSIZE) => format!(
                    "a message of {} bytes is larger than the mailslot's maximum",
                    message.len()
                ),
                Some(libc::ENOBUFS) => {
                    "the mailslot's queue is full, or the mount's memory limit is reached"
                        .to_owned()
                }
                Some(libc::EPIPE) => "the server has closed the mailslot".to_owned(),
                Some(libc::EHOSTUNREACH) => "no host answers for this name".to_owned(),
                _ => reason(&e),
            };
            format!("{shown}: {why}")
        })
    };
    if !args.messages.is_empty() {
        return args
            .messages
            .iter()
            .try_for_each(|m| send_one(m.as_bytes()));
    }
    let stdin = io::stdin();
    if args.whole {
        let mut all = Vec::new();
        stdin
            .lock()
            .read_to_end(&mut all)
            .map_err(|e| format!("standard input: {}", reason(&e)))?;
        return send_one(&all);
    }
    for line in stdin.lock().split(b'\n') {
        send_one(&line.map_err(|e| format!("standard input: {}", reason(&e)))?)?;
    }
    Ok(())
}

/// `info`: the GetMailslotInfo figures, one `name: value` line each.
pub fn info(args: &InfoArgs) -> Result<(), String> {
    let path = slot_path(&args.slot);
    let shown = path.display().to_string();
    let mut out = io::stdout().lock();
    for attr in InfoAttr::ALL {
        let value = get_xattr(&path, attr).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => format!("{shown}: no such mailslot"),
            Some(libc::ENODATA) => format!("{shown}: not a mailslot"),
            _ => format!("{shown}: {}", reason(&e)),
        })?;
        writeln!(out, "{}: {value}", attr.short_name())
            .map_err(|e| format!("standard output: {}", reason(&e)))?;
    }
    Ok(())
}

/// One slot as `status` reports it: its path under the listed directory
/// and every `user.mailslot.*` figure, by attribute.
struct SlotStatus {
    path: String,
    figures: Vec<(InfoAttr, i64)>,
}

impl SlotStatus {
    fn figure(&self, attr: InfoAttr) -> i64 {
        self.figures
            .iter()
            .find(|(a, _)| *a == attr)
            .map_or(0, |(_, v)| *v)
    }
}

/// The columns of `status`'s table, after the slot's path.
const STATUS_COLUMNS: [(&str, InfoAttr); 8] = [
    ("PID", InfoAttr::OwnerPid),
    ("QUEUED", InfoAttr::MessageCount),
    ("BYTES", InfoAttr::QueuedBytes),
    ("MAX", InfoAttr::MaxMessageSize),
    ("TIMEOUT", InfoAttr::ReadTimeoutMs),
    ("RECEIVED", InfoAttr::Received),
    ("READ", InfoAttr::Read),
    ("DROPPED", InfoAttr::Dropped),
];

/// `status`: every slot under a mount, as a table or as JSON, then the
/// network bridge's identity and counters when the mount has a bridge.
pub fn status(args: &StatusArgs) -> Result<(), String> {
    let shown = args.dir.display().to_string();
    if !args.dir.is_dir() {
        return Err(format!("{shown}: no such directory"));
    }
    let Some(mount) = mountinfo::mount_of(&args.dir).filter(|m| m.fs_type == FS_TYPE) else {
        return Err(format!("{shown}: not a mailslotfs mount"));
    };
    let mut slots = Vec::new();
    collect_slots(&args.dir, &args.dir, &mut slots)?;
    slots.sort_by(|a, b| a.path.cmp(&b.path));
    // What the whole mount says lives on its root, whichever folder is shown.
    let bridge = attributes_under(&mount.point.join(".net"), "user.mailslot.bridge.");
    let limits = attributes_under(&mount.point, "user.mailslot.limits.");
    let transport = get_xattr_named(&mount.point, "user.mailslot.transport")
        .unwrap_or_else(|_| "unknown".to_owned());
    let text = if args.json {
        status_json(&shown, &transport, &slots, &limits, &bridge)
    } else {
        format!("transport: {transport}\n")
            + &status_table(&slots)
            + &section("limits", &limits)
            + &section("bridge", &bridge)
    };
    io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| format!("standard output: {}", reason(&e)))
}

/// The attributes of `path` named `PREFIX<name>` (name without the
/// prefix, value): the bridge's on `.net`, empty when the mount has no
/// bridge; the entries, memory, ceilings and refusals on the root.
fn attributes_under(path: &Path, prefix: &str) -> Vec<(String, String)> {
    xattr_names(path)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| {
            let short = name.strip_prefix(prefix)?.to_owned();
            Some((short, get_xattr_named(path, &name).ok()?))
        })
        .collect()
}

/// A `title:` section of `name  value` lines; nothing when there are none.
fn section(title: &str, fields: &[(String, String)]) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let lines: String = fields
        .iter()
        .map(|(name, value)| format!("  {name:<width$}  {value}").trim_end().to_owned() + "\n")
        .collect();
    format!("\n{title}:\n{lines}")
}

/// Walks `dir` for slots. The bridge's `.net` tree holds remote names, not
/// slots, and is skipped. A slot that goes away meanwhile is left out.
fn collect_slots(root: &Path, dir: &Path, out: &mut Vec<SlotStatus>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: {}", dir.display(), reason(&e)))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && !(dir == root && entry.file_name() == ".net") {
            collect_slots(root, &path, out)?;
        } else if kind.is_file()
            && let Some(slot) = slot_status(root, &path)
        {
            out.push(slot);
        }
    }
    Ok(())
}

fn slot_status(root: &Path, path: &Path) -> Option<SlotStatus> {
    let figures = InfoAttr::ALL
        .iter()
        .map(|&attr| Some((attr, get_xattr(path, attr).ok()?.parse().ok()?)))
        .collect::<Option<Vec<_>>>()?;
    let relative: PathBuf = path.strip_prefix(root).ok()?.into();
    Some(SlotStatus {
        path: relative.to_string_lossy().into_owned(),
        figures,
    })
}

fn status_table(slots: &[SlotStatus]) -> String {
    if slots.is_empty() {
        return "no mailslots\n".to_owned();
    }
    let header = std::iter::once("SLOT").chain(STATUS_COLUMNS.iter().map(|(h, _)| *h));
    let rows: Vec<Vec<String>> = slots
        .iter()
        .map(|slot| {
            let cells = STATUS_COLUMNS
                .iter()
                .map(|&(_, attr)| match slot.figure(attr) {
                    -1 if attr == InfoAttr::ReadTimeoutMs => "forever".to_owned(),
                    n if attr == InfoAttr::ReadTimeoutMs => format!("{n}ms"),
                    n => n.to_string(),
                });
            std::iter::once(slot.path.clone()).chain(cells).collect()
        })
        .collect();
    let all: Vec<Vec<String>> = std::iter::once(header.map(str::to_owned).collect())
        .chain(rows)
        .collect();
    let widths: Vec<usize> = (0..all[0].len())
        .map(|col| {
            all.iter()
                .map(|row| row[col].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in &all {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(col, (cell, &width))| match col {
                0 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// `{"mount": DIR, "transport": "io_uring" or "classic", "slots": [{"path": ..., "<attribute>": N, ...}],
/// "limits": {...}, "bridge": {...}}`, the attribute names being the
/// `user.mailslot.*` ones without the prefix.
fn status_json(
    dir: &str,
    transport: &str,
    slots: &[SlotStatus],
    limits: &[(String, String)],
    bridge: &[(String, String)],
) -> String {
    let slots: Vec<String> = slots
        .iter()
        .map(|slot| {
            let figures: String = slot
                .figures
                .iter()
                .map(|(attr, value)| format!(",{}:{value}", json_string(attr.short_name())))
                .collect();
            format!("{{\"path\":{}{figures}}}", json_string(&slot.path))
        })
        .collect();
    format!(
        "{{\"mount\":{},\"transport\":{},\"slots\":[{}]{}{}}}\n",
        json_string(dir),
        json_string(transport),
        slots.join(","),
        json_object("limits", limits),
        json_object("bridge", bridge),
    )
}

/// `,"KEY":{"name":value,...}` (numbers as numbers), or nothing when
/// there are no fields.
fn json_object(key: &str, fields: &[(String, String)]) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let fields: Vec<String> = fields
        .iter()
        .map(|(name, value)| match value.parse::<u64>() {
            Ok(n) => format!("{}:{n}", json_string(name)),
            Err(_) => format!("{}:{}", json_string(name), json_string(value)),
        })
        .collect();
    format!(",{}:{{{}}}", json_string(key), fields.join(","))
}

/// A JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::ErrorKind::InvalidInput.into())
}

fn get_xattr(path: &Path, attr: InfoAttr) -> io::Result<String> {
    get_xattr_named(path, attr.name())
}

fn get_xattr_named(path: &Path, name: &str) -> io::Result<String> {
    let path = c_path(path)?;
    let name = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut buf = [0u8; 4096];
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its length.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(String::from_utf8_lossy(&buf[..n as usize]).into_owned())
}

/// The extended attribute names of `path`.
fn xattr_names(path: &Path) -> io::Result<Vec<String>> {
    let path = c_path(path)?;
    let mut buf = [0u8; 4096];
    // SAFETY: the path is NUL-terminated and `buf` is writable for its length.
    let n = unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect())
}

fn set_xattr(path: &Path, attr: InfoAttr, value: &str) -> io::Result<()> {
    let path = c_path(path)?;
    let name = std::ffi::CString::new(attr.name()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: both strings are NUL-terminated and `value` is readable for its length.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
