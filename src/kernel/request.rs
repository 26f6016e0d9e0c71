//! Bytes from the kernel to typed requests. [`decode`] checks every length
//! against the buffer it was given: on any input it returns a value or an
//! error, never panics and never reads past the end.

use super::abi::{IN_HEADER, opcode};

/// One request: who asked, about which node, and what.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub unique: u64,
    pub nodeid: u64,
    pub uid: u32,
    pub gid: u32,
    /// The caller's thread id in the daemon's pid namespace; 0 when it
    /// cannot be seen from there.
    pub pid: u32,
    pub op: Operation<'a>,
}

/// `fuse_setattr_in`: only the fields whose `valid` bit is set.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
}

/// What a request asks for. Names come without their trailing NUL.
#[derive(Debug, PartialEq, Eq)]
pub enum Operation<'a> {
    Init {
        major: u32,
        minor: u32,
        flags: u64,
    },
    Destroy,
    /// FORGET and BATCH_FORGET: no reply is expected.
    Forget(Forgets<'a>),
    Interrupt {
        unique: u64,
    },
    Lookup {
        name: &'a [u8],
    },
    Getattr,
    Setattr(SetAttr),
    Mknod {
        name: &'a [u8],
    },
    Mkdir {
        name: &'a [u8],
        mode: u32,
        umask: u32,
    },
    Unlink {
        name: &'a [u8],
    },
    Rmdir {
        name: &'a [u8],
    },
    Symlink,
    Rename,
    Link,
    Open {
        flags: u32,
    },
    Read {
        fh: u64,
        size: u32,
        flags: u32,
    },
    Write {
        fh: u64,
        data: &'a [u8],
    },
    Statfs,
    Release {
        fh: u64,
    },
    Fsync,
    Setxattr {
        name: &'a [u8],
        value: &'a [u8],
    },
    Getxattr {
        name: &'a [u8],
        size: u32,
    },
    Listxattr {
        size: u32,
    },
    Removexattr {
        name: &'a [u8],
    },
    Flush {
        fh: u64,
    },
    Opendir,
    Readdir {
        offset: u64,
        size: u32,
    },
    Releasedir,
    Access,
    Create {
        name: &'a [u8],
        flags: u32,
        mode: u32,
        umask: u32,
    },
    Ioctl {
        fh: u64,
        flags: u32,
        cmd: u32,
        in_data: &'a [u8],
        out_size: u32,
    },
    Poll {
        fh: u64,
        kh: u64,
        flags: u32,
    },
    /// An opcode we do not serve: answered ENOSYS.
    Unsupported(u32),
}

/// The nodes a FORGET or BATCH_FORGET is about, each with the number of
/// lookups the kernel drops from its count.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Forgets<'a> {
    One {
        nodeid: u64,
        nlookup: u64,
    },
    /// `fuse_forget_one` records, 16 bytes each, whole.
    Batch(&'a [u8]),
}

impl<'a> Forgets<'a> {
    /// `(nodeid, nlookup)` of each node.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let (one, batch) = match *self {
            Forgets::One { nodeid, nlookup } => (Some((nodeid, nlookup)), &[][..]),
            Forgets::Batch(records) => (None, records),
        };
        one.into_iter().chain(batch.chunks_exact(16).map(|r| {
            let mut f = Fields(r);
            // Sixteen bytes always hold two u64s.
            (f.u64().unwrap_or(0), f.u64().unwrap_or(0))
        }))
    }
}

/// Why a buffer is not a request. `unique` is known when the header was
/// readable, so the kernel can still be answered (EIO).
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub unique: Option<u64>,
    pub why: &'static str,
}

/// Reads fields from the front of a buffer, native-endian as the kernel
/// writes them.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("request shorter than its fields");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let b = self.take(8)?;
        Ok(u64::from_ne_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    fn skip(&mut self, n: usize) -> Result<(), &'static str> {
        self.take(n).map(drop)
    }

    /// A NUL-terminated name, without the NUL.
    fn name(&mut self) -> Result<&'a [u8], &'static str> {
        let end = self
            .0
            .iter()
            .position(|&b| b == 0)
            .ok_or("name without its NUL")?;
        let name = &self.0[..end];
        self.0 = &self.0[end + 1..];
        Ok(name)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

/// Decodes one request, exactly as read from `/dev/fuse` (or re-assembled
/// from a ring entry in that framing).
pub fn decode(buf: &[u8]) -> Result<Request<'_>, DecodeError> {
    let mut header = Fields(buf);
    let fail = |unique, why| DecodeError { unique, why };
    let (len, code, unique, nodeid, uid, gid, pid) = (|| {
        Ok::<_, &'static str>((
            header.u32()?,
            header.u32()?,
            header.u64()?,
            header.u64()?,
            header.u32()?,
            header.u32()?,
            header.u32()?,
        ))
    })()
    .map_err(|why| fail(None, why))?;
    if len as usize != buf.len() || buf.len() < IN_HEADER {
        return Err(fail(
            Some(unique),
            "length field does not match the request",
        ));
    }
    let body = &buf[IN_HEADER..];
    let op = operation(code, nodeid, Fields(body)).map_err(|why| fail(Some(unique), why))?;
    Ok(Request {
        unique,
        nodeid,
        uid,
        gid,
        pid,
        op,
    })
}

fn operation(code: u32, nodeid: u64, mut f: Fields<'_>) -> Result<Operation<'_>, &'static str> {
    use Operation as Op;
    Ok(match code {
        opcode::INIT => {
            let major = f.u32()?;
            let minor = f.u32()?;
            let _max_readahead = f.u32()?;
            let low = f.u32()? as u64;
            // flags2 exists from 7.36 on; older kernels send 16 bytes.
            let high = if f.0.len() >= 4 { f.u32()? as u64 } else { 0 };
            Op::Init {
                major,
                minor,
                flags: low | high << 32,
            }
        }
        opcode::DESTROY => Op::Destroy,
        opcode::FORGET => Op::Forget(Forgets::One {
            nodeid,
            nlookup: f.u64()?,
        }),
        opcode::BATCH_FORGET => {
            let count = f.u32()? as usize;
            f.skip(4)?;
            let records = count
                .checked_mul(16)
                .ok_or("more forget records than fit")?;
            Op::Forget(Forgets::Batch(f.take(records)?))
        }
        opcode::INTERRUPT => Op::Interrupt { unique: f.u64()? },
        opcode::LOOKUP => Op::Lookup { name: f.name()? },
        opcode::GETATTR => Op::Getattr,
        opcode::SETATTR => {
            let valid = f.u32()?;
            f.skip(4 + 8)?; // padding, fh
            let size = f.u64()?;
            f.skip(8 * 4 + 4 * 3)?; // lock_owner, a/m/ctime, their nsecs
            let mode = f.u32()?;
            f.skip(4)?;
            let uid = f.u32()?;
            let gid = f.u32()?;
            let given = |bit: u32| valid & bit != 0;
            use super::abi::fattr;
            Op::Setattr(SetAttr {
                mode: given(fattr::MODE).then_some(mode),
                uid: given(fattr::UID).then_some(uid),
                gid: given(fattr::GID).then_some(gid),
                size: given(fattr::SIZE).then_some(size),
            })
        }
        opcode::MKNOD => {
            f.skip(16)?;
            Op::Mknod { name: f.name()? }
        }
        opcode::MKDIR => {
            let mode = f.u32()?;
            let umask = f.u32()?;
            Op::Mkdir {
                name: f.name()?,
                mode,
                umask,
            }
        }
        opcode::UNLINK => Op::Unlink { name: f.name()? },
        opcode::RMDIR => Op::Rmdir { name: f.name()? },
        opcode::SYMLINK => Op::Symlink,
        opcode::RENAME | opcode::RENAME2 => Op::Rename,
        opcode::LINK => Op::Link,
        opcode::OPEN => Op::Open { flags: f.u32()? },
        opcode::OPENDIR => Op::Opendir,
        opcode::READ => {
            let fh = f.u64()?;
            let _offset = f.u64()?;
            let size = f.u32()?;
            f.skip(4 + 8)?; // read_flags, lock_owner
            Op::Read {
                fh,
                size,
                flags: f.u32()?,
            }
        }
        opcode::WRITE => {
            let fh = f.u64()?;
            let _offset = f.u64()?;
            let size = f.u32()? as usize;
            f.skip(4 + 8 + 4 + 4)?; // write_flags, lock_owner, flags, padding
            Op::Write {
                fh,
                data: f.take(size)?,
            }
        }
        opcode::STATFS => Op::Statfs,
        opcode::RELEASE => Op::Release { fh: f.u64()? },
        opcode::RELEASEDIR => Op::Releasedir,
        opcode::FSYNC => Op::Fsync,
        opcode::FSYNCDIR => Op::Fsync,
        opcode::SETXATTR => {
            // 8 bytes: we never ask for FUSE_SETXATTR_EXT.
            let size = f.u32()? as usize;
            f.skip(4)?;
            let name = f.name()?;
            Op::Setxattr {
                name,
                value: f.take(size)?,
            }
        }
        opcode::GETXATTR => {
            let size = f.u32()?;
            f.skip(4)?;
            Op::Getxattr {
                name: f.name()?,
                size,
            }
        }
        opcode::LISTXATTR => Op::Listxattr { size: f.u32()? },
        opcode::REMOVEXATTR => Op::Removexattr { name: f.name()? },
        opcode::FLUSH => Op::Flush { fh: f.u64()? },
        opcode::READDIR => {
            f.skip(8)?; // fh
            let offset = f.u64()?;
            Op::Readdir {
                offset,
                size: f.u32()?,
            }
        }
        opcode::ACCESS => Op::Access,
        opcode::CREATE => {
            let flags = f.u32()?;
            let mode = f.u32()?;
            let umask = f.u32()?;
            f.skip(4)?;
            Op::Create {
                name: f.name()?,
                flags,
                mode,
                umask,
            }
        }
        opcode::IOCTL => {
            let fh = f.u64()?;
            let flags = f.u32()?;
            let cmd = f.u32()?;
            let _arg = f.u64()?;
            let in_size = f.u32()? as usize;
            let out_size = f.u32()?;
            Op::Ioctl {
                fh,
                flags,
                cmd,
                in_data: f.take(in_size)?,
                out_size,
            }
        }
        opcode::POLL => {
            let fh = f.u64()?;
            let kh = f.u64()?;
            Op::Poll {
                fh,
                kh,
                flags: f.u32()?,
            }
        }
        other => {
            f.rest();
            Op::Unsupported(other)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as the kernel frames it: header, then `body`.
    fn framed(code: u32, unique: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(((IN_HEADER + body.len()) as u32).to_ne_bytes());
        out.extend(code.to_ne_bytes());
        out.extend(unique.to_ne_bytes());
        out.extend(1u64.to_ne_bytes()); // nodeid
        out.extend(1000u32.to_ne_bytes());
        out.extend(1000u32.to_ne_bytes());
        out.extend(42u32.to_ne_bytes());
        out.extend([0u8; 4]);
        out.extend(body);
        out
    }

    fn write_body(data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(7u64.to_ne_bytes());
        body.extend(0u64.to_ne_bytes());
        body.extend((data.len() as u32).to_ne_bytes());
        body.extend([0u8; 20]);
        body.extend(data);
        body
    }

    #[test]
    fn a_write_carries_its_handle_and_exactly_its_data() {
        let buf = framed(opcode::WRITE, 9, &write_body(b"hello"));
        let req = decode(&buf).unwrap();
        assert_eq!((req.unique, req.nodeid, req.pid), (9, 1, 42));
        assert_eq!(
            req.op,
            Operation::Write {
                fh: 7,
                data: b"hello"
            }
        );
    }

    #[test]
    fn names_lose_their_nul_and_a_missing_nul_is_an_error() {
        let req = framed(opcode::LOOKUP, 3, b"chat\0");
        assert_eq!(
            decode(&req).unwrap().op,
            Operation::Lookup { name: b"chat" }
        );
        let err = decode(&framed(opcode::LOOKUP, 3, b"chat")).unwrap_err();
        assert_eq!(err.unique, Some(3));
    }

    #[test]
    fn a_write_claiming_more_data_than_it_has_is_refused() {
        let mut body = write_body(b"hi");
        body[16..20].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(decode(&framed(opcode::WRITE, 5, &body)).is_err());
    }

    #[test]
    fn every_prefix_and_every_byte_flip_decodes_or_fails_cleanly() {
        // In-tree mutation test: the fuzz target does the same at scale.
        let samples = [
            framed(opcode::WRITE, 1, &write_body(b"payload")),
            framed(
                opcode::CREATE,
                2,
                b"\x42\0\0\0\xa4\x81\0\0\x12\0\0\0\0\0\0\0slot\0",
            ),
            framed(opcode::SETXATTR, 3, b"\x02\0\0\0\0\0\0\0user.x\0-1"),
            framed(
                opcode::INIT,
                4,
                &[7, 0, 0, 0, 45, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
            ),
            framed(opcode::IOCTL, 5, &[0; 32]),
            framed(opcode::BATCH_FORGET, 0, &batch_forget(&[(7, 1), (8, 2)])),
        ];
        let decode_all = |buf: &[u8]| {
            if let Ok(Request {
                op: Operation::Forget(nodes),
                ..
            }) = decode(buf)
            {
                nodes.iter().for_each(drop);
            }
        };
        for sample in &samples {
            for cut in 0..sample.len() {
                decode_all(&sample[..cut]);
            }
            for i in 0..sample.len() {
                for bit in 0..8 {
                    let mut mutated = sample.clone();
                    mutated[i] ^= 1 << bit;
                    decode_all(&mutated);
                }
            }
        }
    }

    fn batch_forget(nodes: &[(u64, u64)]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend((nodes.len() as u32).to_ne_bytes());
        body.extend([0u8; 4]);
        for (nodeid, nlookup) in nodes {
            body.extend(nodeid.to_ne_bytes());
            body.extend(nlookup.to_ne_bytes());
        }
        body
    }

    #[test]
    fn forgets_name_each_node_and_how_many_lookups_it_loses() {
        let one = framed(opcode::FORGET, 0, &3u64.to_ne_bytes());
        let Operation::Forget(nodes) = decode(&one).unwrap().op else {
            panic!("not a forget");
        };
        assert_eq!(nodes.iter().collect::<Vec<_>>(), [(1, 3)]);
        let batch = framed(opcode::BATCH_FORGET, 0, &batch_forget(&[(7, 1), (8, 2)]));
        let Operation::Forget(nodes) = decode(&batch).unwrap().op else {
            panic!("not a forget");
        };
        assert_eq!(nodes.iter().collect::<Vec<_>>(), [(7, 1), (8, 2)]);
        // A count beyond the records sent is malformed, not a short read.
        let mut short = batch_forget(&[(7, 1)]);
        short[0] = 2;
        assert!(decode(&framed(opcode::BATCH_FORGET, 0, &short)).is_err());
    }

    #[test]
    fn unknown_opcodes_are_unsupported_not_errors() {
        let buf = framed(999, 8, b"xyz");
        let req = decode(&buf).unwrap();
        assert_eq!(req.op, Operation::Unsupported(999));
    }
}
