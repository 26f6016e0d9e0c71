//! Typed replies to bytes for the kernel. A [`Reply`] answers exactly one
//! request, from any thread; one dropped unanswered answers EIO, so no
//! caller is ever left waiting in the kernel.

use std::time::{SystemTime, UNIX_EPOCH};

use super::abi::{self, DT_DIR, DT_REG, OUT_HEADER};
use super::channel::Sender;

/// What a file is, for its mode and directory entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Regular,
}

/// A node's attributes, as `stat` shows them.
#[derive(Clone, Copy, Debug)]
pub struct FileAttr {
    pub ino: u64,
    pub size: u64,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub kind: FileKind,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub blksize: u32,
}

/// The answer to one request.
pub struct Reply {
    unique: u64,
    sender: Option<Sender>,
}

impl Reply {
    pub(crate) fn new(unique: u64, sender: Sender) -> Reply {
        Reply {
            unique,
            sender: Some(sender),
        }
    }

    /// The request's id, which an INTERRUPT names.
    pub fn unique(&self) -> u64 {
        self.unique
    }

    fn send(mut self, error: i32, body: &[&[u8]]) {
        if let Some(sender) = self.sender.take() {
            let len = OUT_HEADER + body.iter().map(|b| b.len()).sum::<usize>();
            let mut header = [0u8; OUT_HEADER];
            header[..4].copy_from_slice(&(len as u32).to_ne_bytes());
            header[4..8].copy_from_slice(&error.to_ne_bytes());
            header[8..].copy_from_slice(&self.unique.to_ne_bytes());
            let mut parts = Vec::with_capacity(1 + body.len());
            parts.push(&header[..]);
            parts.extend_from_slice(body);
            sender.send(&parts);
        }
    }

    /// Fails the request with `errno` (a positive `E*` value).
    pub fn error(self, errno: i32) {
        self.send(-errno, &[]);
    }

    /// Success with no data.
    pub fn ok(self) {
        self.send(0, &[]);
    }

    /// LOOKUP, MKDIR: the node, never cached.
    pub fn entry(self, attr: &FileAttr) {
        self.send(0, &[&entry_out(attr)]);
    }

    /// GETATTR, SETATTR: the attributes, never cached.
    pub fn attr(self, attr: &FileAttr) {
        let mut out = [0u8; abi::ATTR_OUT];
        encode_attr(&mut out[16..], attr);
        self.send(0, &[&out]);
    }

    /// OPEN, OPENDIR: the handle and `fopen` flags.
    pub fn opened(self, fh: u64, open_flags: u32) {
        self.send(0, &[&open_out(fh, open_flags)]);
    }

    /// CREATE: the new node and its open handle.
    pub fn created(self, attr: &FileAttr, fh: u64, open_flags: u32) {
        self.send(0, &[&entry_out(attr), &open_out(fh, open_flags)]);
    }

    /// WRITE: how many bytes were taken.
    pub fn written(self, size: u32) {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&size.to_ne_bytes());
        self.send(0, &[&out]);
    }

    /// READ, or any reply that is raw bytes.
    pub fn data(self, bytes: &[u8]) {
        self.send(0, &[bytes]);
    }

    /// STATFS.
    pub fn statfs(self, files: u64, free_files: u64, block_size: u32, name_max: u32) {
        let mut out = [0u8; 80];
        put(&mut out, 24, files);
        put(&mut out, 32, free_files);
        out[40..44].copy_from_slice(&block_size.to_ne_bytes());
        out[44..48].copy_from_slice(&name_max.to_ne_bytes());
        out[48..52].copy_from_slice(&block_size.to_ne_bytes());
        self.send(0, &[&out]);
    }

    /// GETXATTR, LISTXATTR: the size when the caller asked for it (`size`
    /// 0), ERANGE when its buffer is too small, else the bytes.
    pub fn xattr(self, size: u32, value: &[u8]) {
        if size == 0 {
            let mut out = [0u8; 8];
            out[..4].copy_from_slice(&(value.len() as u32).to_ne_bytes());
            self.send(0, &[&out]);
        } else if (size as usize) < value.len() {
            self.error(libc::ERANGE);
        } else {
            self.data(value);
        }
    }

    /// POLL: the events ready now.
    pub fn poll(self, revents: u32) {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&revents.to_ne_bytes());
        self.send(0, &[&out]);
    }

    /// IOCTL: the result and the output bytes.
    pub fn ioctl(self, result: i32, data: &[u8]) {
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&result.to_ne_bytes());
        self.send(0, &[&out, data]);
    }

    /// READDIR: the entries that fitted.
    pub fn dir(self, entries: &DirEntries) {
        self.send(0, &[&entries.buf]);
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.sender.is_some() {
            log::warn!("request {} dropped unanswered: answering EIO", self.unique);
            let unique = self.unique;
            Reply {
                unique,
                sender: self.sender.take(),
            }
            .error(libc::EIO);
        }
    }
}

/// A READDIR answer being filled, bounded by the size the kernel asked for.
pub struct DirEntries {
    buf: Vec<u8>,
    limit: usize,
}

impl DirEntries {
    pub fn new(size: u32) -> DirEntries {
        DirEntries {
            buf: Vec::new(),
            limit: size as usize,
        }
    }

    /// Adds one entry; `offset` is what READDIR is given to continue after
    /// it. Returns false, adding nothing, when the entry does not fit.
    pub fn add(&mut self, ino: u64, offset: u64, kind: FileKind, name: &[u8]) -> bool {
        let len = 24 + name.len();
        let padded = len.next_multiple_of(8);
        if self.buf.len() + padded > self.limit {
            return false;
        }
        let kind = match kind {
            FileKind::Directory => DT_DIR,
            FileKind::Regular => DT_REG,
        };
        self.buf.extend(ino.to_ne_bytes());
        self.buf.extend(offset.to_ne_bytes());
        self.buf.extend((name.len() as u32).to_ne_bytes());
        self.buf.extend(kind.to_ne_bytes());
        self.buf.extend(name);
        self.buf.resize(self.buf.len() + padded - len, 0);
        true
    }
}

fn put(out: &mut [u8], at: usize, value: u64) {
    out[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

/// `fuse_entry_out` with zero cache times: names and sizes change behind
/// the kernel's back.
fn entry_out(attr: &FileAttr) -> [u8; abi::ENTRY_OUT] {
    let mut out = [0u8; abi::ENTRY_OUT];
    put(&mut out, 0, attr.ino);
    encode_attr(&mut out[40..], attr);
    out
}

fn open_out(fh: u64, open_flags: u32) -> [u8; 16] {
    let mut out = [0u8; 16];
    put(&mut out, 0, fh);
    out[8..12].copy_from_slice(&open_flags.to_ne_bytes());
    out
}

/// `fuse_attr` into `out` (88 bytes).
fn encode_attr(out: &mut [u8], attr: &FileAttr) {
    let (asec, ansec) = since_epoch(attr.atime);
    let (msec, mnsec) = since_epoch(attr.mtime);
    let (csec, cnsec) = since_epoch(attr.ctime);
    let mode = attr.perm as u32
        | match attr.kind {
            FileKind::Directory => libc::S_IFDIR,
            FileKind::Regular => libc::S_IFREG,
        };
    for (i, v) in [attr.ino, attr.size, 0, asec, msec, csec]
        .into_iter()
        .enumerate()
    {
        put(out, i * 8, v);
    }
    let words = [
        ansec,
        mnsec,
        cnsec,
        mode,
        attr.nlink,
        attr.uid,
        attr.gid,
        0,
        attr.blksize,
        0,
    ];
    for (i, v) in words.into_iter().enumerate() {
        out[48 + i * 4..52 + i * 4].copy_from_slice(&v.to_ne_bytes());
    }
}

fn since_epoch(t: SystemTime) -> (u64, u32) {
    t.duration_since(UNIX_EPOCH)
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_entries_are_padded_and_bounded() {
        let mut entries = DirEntries::new(64);
        assert!(entries.add(1, 1, FileKind::Directory, b"."));
        assert_eq!(entries.buf.len(), 32);
        assert!(entries.add(5, 2, FileKind::Regular, b"chat"));
        assert_eq!(entries.buf.len(), 64);
        assert!(!entries.add(6, 3, FileKind::Regular, b"x"));
        assert_eq!(&entries.buf[32 + 24..32 + 28], b"chat");
    }

    #[test]
    fn attributes_land_where_fuse_attr_has_them() {
        let attr = FileAttr {
            ino: 7,
            size: 64,
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH + std::time::Duration::new(5, 6),
            ctime: UNIX_EPOCH,
            kind: FileKind::Regular,
            perm: 0o620,
            nlink: 1,
            uid: 1000,
            gid: 100,
            blksize: 4096,
        };
        let out = entry_out(&attr);
        let word = |at: usize| u32::from_ne_bytes(out[at..at + 4].try_into().unwrap());
        let a = 40;
        assert_eq!(u64::from_ne_bytes(out[a..a + 8].try_into().unwrap()), 7);
        assert_eq!(
            u64::from_ne_bytes(out[a + 32..a + 40].try_into().unwrap()),
            5
        );
        assert_eq!(word(a + 52), 6);
        assert_eq!(word(a + 60), libc::S_IFREG | 0o620);
        assert_eq!((word(a + 68), word(a + 72)), (1000, 100));
        assert_eq!(word(a + 80), 4096);
    }
}
