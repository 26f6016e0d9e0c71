//! The FUSE floor: the least a message queue over FUSE can do, for
//! `bench` to measure beside mailslotfs in the same run.
//!
//! `fuse_floor DIR THREADS` mounts a flat directory in which creating a file
//! makes a queue, each write appends one message, each read takes one (or
//! waits for the next write), and closing the creating handle removes the
//! queue. No limits, permissions, signals, timeouts, poll or attributes:
//! whatever mailslotfs spends beyond this is its own cost; the rest is what
//! FUSE itself costs on this machine. Runs until unmounted or SIGTERM.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, Request, WriteFlags,
};
use parking_lot::Mutex;

const ROOT: u64 = 1;

/// A creating handle's `fh` has this bit set; closing it removes the queue.
const CREATOR: u64 = 1 << 63;

#[derive(Default)]
struct Queue {
    messages: VecDeque<Box<[u8]>>,
    readers: VecDeque<ReplyData>,
}

#[derive(Default)]
struct Floor {
    names: HashMap<Box<[u8]>, u64>,
    queues: HashMap<u64, Queue>,
    next_ino: u64,
}

struct FloorFs(Mutex<Floor>);

fn attr(ino: u64) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: if ino == ROOT {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: 0o777,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

/// The same open flags as mailslotfs: whole messages, no page cache.
fn open_flags() -> FopenFlags {
    FopenFlags::FOPEN_DIRECT_IO
        | FopenFlags::FOPEN_STREAM
        | FopenFlags::FOPEN_NONSEEKABLE
        | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES
}

impl Filesystem for FloorFs {
    fn lookup(&self, _req: &Request, _parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.0.lock().names.get(name.as_bytes()) {
            Some(&ino) => reply.entry(&Duration::ZERO, &attr(ino), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        reply.attr(&Duration::ZERO, &attr(ino.0));
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut floor = self.0.lock();
        if floor.names.contains_key(name.as_bytes()) {
            return reply.error(Errno::EEXIST);
        }
        floor.next_ino += 1;
        let ino = ROOT + floor.next_ino;
        floor.names.insert(name.as_bytes().into(), ino);
        floor.queues.insert(ino, Queue::default());
        drop(floor);
        reply.created(
            &Duration::ZERO,
            &attr(ino),
            Generation(0),
            FileHandle(ino | CREATOR),
            open_flags(),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(ino.0), open_flags());
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut floor = self.0.lock();
        let Some(queue) = floor.queues.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        match queue.messages.pop_front() {
            Some(message) => {
                drop(floor);
                reply.data(&message);
            }
            None => queue.readers.push_back(reply),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut floor = self.0.lock();
        let Some(queue) = floor.queues.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        match queue.readers.pop_front() {
            Some(reader) => {
                drop(floor);
                reader.data(data);
            }
            None => {
                queue.messages.push_back(data.into());
                drop(floor);
            }
        }
        reply.written(data.len() as u32);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if fh.0 & CREATOR != 0 {
            let mut floor = self.0.lock();
            floor.names.retain(|_, &mut i| i != ino.0);
            if let Some(queue) = floor.queues.remove(&ino.0) {
                drop(floor);
                for reader in queue.readers {
                    reader.data(&[]);
                }
            }
        }
        reply.ok();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(Ok(threads))) = (args.get(1), args.get(2).map(|t| t.parse())) else {
        eprintln!("usage: fuse_floor DIR THREADS");
        std::process::exit(2);
    };
    let mut config = Config::default();
    config.n_threads = Some(threads);
    config.clone_fd = true;
    let fs = FloorFs(Mutex::new(Floor::default()));
    if let Err(e) = fuser::mount(fs, dir, &config) {
        eprintln!("fuse_floor: {dir}: {e}");
        std::process::exit(1);
    }
}
