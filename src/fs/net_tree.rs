//! The `.net` directory: a virtual tree of network targets, directories
//! and write-only endpoints, with its own inode numbers. Pure bookkeeping,
//! no fuser types; the adapter turns its answers into replies.
//!
//! The kernel's path walk asks for one component at a time and never says
//! whether more follow, and a name must be a directory to walk through but
//! a file to open for writing. So:
//! - any name right under `.net` is a target directory (looked up, never
//!   made), and `readdir(.net)` lists only `*`, so that bash leaves an
//!   unquoted `.net/*/x` as it is;
//! - below a target, a directory exists where the local tree has one at
//!   the same path (every peer of an application has its directories, so
//!   `.net/SUE/myapp/finance` works when `myapp` is a directory here), or
//!   once made with `mkdir`; any other unknown name is absent, so that
//!   `O_CREAT` write-only (every shell redirection) makes it an endpoint,
//!   which is then remembered.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::bridge::{Target, TargetError};
use crate::slot::SlotError;
use crate::slot::name::{Name, key_of};
use crate::slot::table::{Attr, Ino, Kind};

/// The `.net` directory's inode; every inode of the tree is at or above it,
/// far beyond any number the local table hands out.
pub(crate) const NET_ROOT: Ino = 1 << 62;
/// Its name at the mount root.
pub(crate) const NET_DIR: &str = ".net";
/// The one entry `readdir(.net)` shows: the primary domain.
const PRIMARY_DOMAIN: &str = "*";
/// Block size reported for endpoints: any network message fits.
const ENDPOINT_IO_SIZE: u32 = 4096;

/// Whether `ino` belongs to the `.net` tree.
pub(crate) fn is_net(ino: Ino) -> bool {
    ino >= NET_ROOT
}

enum Role {
    Root,
    Target(Target),
    Directory,
    Endpoint,
}

struct Node {
    parent: Ino,
    spelling: String,
    role: Role,
    children: HashMap<String, Ino>,
}

/// The `.net` tree of one mount.
pub(crate) struct NetTree {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    owner: (u32, u32),
    born: SystemTime,
}

impl NetTree {
    pub(crate) fn new(owner: (u32, u32), born: SystemTime) -> NetTree {
        let root = Node {
            parent: NET_ROOT,
            spelling: NET_DIR.to_owned(),
            role: Role::Root,
            children: HashMap::new(),
        };
        NetTree {
            nodes: HashMap::from([(NET_ROOT, root)]),
            next_ino: NET_ROOT + 1,
            owner,
            born,
        }
    }

    pub(crate) fn attr(&self, ino: Ino) -> Result<Attr, SlotError> {
        let node = self.nodes.get(&ino).ok_or(SlotError::NotFound)?;
        // `.net` itself is fixed; below a target anyone may make
        // directories and endpoints (as in /tmp); endpoints are write-only.
        let (kind, perm) = match node.role {
            Role::Root => (Kind::Directory, 0o555),
            Role::Target(_) | Role::Directory => (Kind::Directory, 0o1777),
            Role::Endpoint => (Kind::Slot, 0o222),
        };
        Ok(Attr {
            ino,
            kind,
            size: 0,
            perm,
            uid: self.owner.0,
            gid: self.owner.1,
            atime: self.born,
            mtime: self.born,
            ctime: self.born,
            io_size: ENDPOINT_IO_SIZE,
        })
    }

    /// A name in a `.net` directory: right under `.net` any valid NetBIOS
    /// target, below it what `mkdir` or `create` made, or a directory that
    /// `is_local_dir` (given the path below the target) says the local tree
    /// has.
    pub(crate) fn lookup(
        &mut self,
        parent: Ino,
        name: &[u8],
        is_local_dir: impl FnOnce(&[String]) -> bool,
    ) -> Result<Attr, SlotError> {
        let node = self.nodes.get(&parent).ok_or(SlotError::NotFound)?;
        let ino = match node.role {
            Role::Root => self.target(name)?,
            Role::Target(_) | Role::Directory => {
                let name = Name::parse(name)?;
                match node.children.get(name.key()) {
                    Some(ino) => *ino,
                    None => {
                        let (_, mut path) = self.path_below_target(parent)?;
                        path.push(name.spelling().to_owned());
                        if self
                            .new_child_name(parent, name.spelling().as_bytes())
                            .is_err()
                            || !is_local_dir(&path)
                        {
                            return Err(SlotError::NotFound);
                        }
                        let key = name.key().to_owned();
                        self.insert(parent, key, name.spelling().to_owned(), Role::Directory)
                    }
                }
            }
            Role::Endpoint => return Err(SlotError::NotADirectory),
        };
        self.attr(ino)
    }

    /// The target directory `name` under `.net`, made on first use.
    fn target(&mut self, name: &[u8]) -> Result<Ino, SlotError> {
        let text = std::str::from_utf8(name).map_err(|_| SlotError::InvalidName)?;
        let target = Target::parse(text).map_err(|e| match e {
            TargetError::TooLong => SlotError::NameTooLong,
            TargetError::Invalid => SlotError::InvalidName,
        })?;
        let key = target.key();
        if let Some(ino) = self.child(NET_ROOT, &key) {
            return Ok(ino);
        }
        Ok(self.insert(NET_ROOT, key, text.to_owned(), Role::Target(target)))
    }

    /// `mkdir` below a target.
    pub(crate) fn mkdir(&mut self, parent: Ino, name: &[u8]) -> Result<Attr, SlotError> {
        let name = self.new_child_name(parent, name)?;
        if self.child(parent, name.key()).is_some() {
            return Err(SlotError::Exists);
        }
        let ino = self.insert(
            parent,
            name.key().to_owned(),
            name.spelling().to_owned(),
            Role::Directory,
        );
        self.attr(ino)
    }

    /// `rmdir` of a directory made with `mkdir`, once it holds nothing;
    /// `.net` and targets are not made and cannot be removed.
    pub(crate) fn rmdir(&mut self, parent: Ino, name: &[u8]) -> Result<(), SlotError> {
        let attr = self.lookup(parent, name, |_| false)?;
        let node = self.nodes.get(&attr.ino).ok_or(SlotError::NotFound)?;
        match node.role {
            Role::Directory if node.children.is_empty() => {}
            Role::Directory => return Err(SlotError::NotEmpty),
            Role::Endpoint => return Err(SlotError::NotADirectory),
            Role::Root | Role::Target(_) => return Err(SlotError::NotPermitted),
        }
        let key = key_of(&node.spelling);
        if let Some(dir) = self.nodes.get_mut(&parent) {
            dir.children.remove(&key);
        }
        self.nodes.remove(&attr.ino);
        Ok(())
    }

    /// `open(O_CREAT)` write-only below a target: the endpoint of that
    /// name, made if new; `exclusive` refuses an existing one.
    pub(crate) fn create(
        &mut self,
        parent: Ino,
        name: &[u8],
        exclusive: bool,
    ) -> Result<Attr, SlotError> {
        let name = self.new_child_name(parent, name)?;
        let ino = match self.child(parent, name.key()) {
            Some(_) if exclusive => return Err(SlotError::Exists),
            Some(ino) => ino,
            None => self.insert(
                parent,
                name.key().to_owned(),
                name.spelling().to_owned(),
                Role::Endpoint,
            ),
        };
        match self.attr(ino)? {
            attr if attr.kind == Kind::Slot => Ok(attr),
            _ => Err(SlotError::IsADirectory),
        }
    }

    /// Directory listing, `.` and `..` first.
    pub(crate) fn readdir(&mut self, ino: Ino) -> Result<Vec<(Ino, Kind, String)>, SlotError> {
        if ino == NET_ROOT {
            let star = self.target(PRIMARY_DOMAIN.as_bytes())?;
            return Ok(vec![
                (NET_ROOT, Kind::Directory, ".".to_owned()),
                (crate::slot::table::ROOT, Kind::Directory, "..".to_owned()),
                (star, Kind::Directory, PRIMARY_DOMAIN.to_owned()),
            ]);
        }
        let node = self.nodes.get(&ino).ok_or(SlotError::NotFound)?;
        if let Role::Endpoint = node.role {
            return Err(SlotError::NotADirectory);
        }
        let mut entries = vec![
            (ino, Kind::Directory, ".".to_owned()),
            (node.parent, Kind::Directory, "..".to_owned()),
        ];
        let mut children: Vec<_> = node
            .children
            .values()
            .filter_map(|&child| Some((child, self.attr(child).ok()?.kind, self.spelling(child)?)))
            .collect();
        children.sort_by_key(|(child, ..)| *child);
        entries.extend(children);
        Ok(entries)
    }

    /// Where an endpoint's writes go: its target and the mailslot path
    /// below it.
    pub(crate) fn destination(&self, ino: Ino) -> Result<(Target, Vec<String>), SlotError> {
        self.path_below_target(ino)
    }

    /// The target above `ino` and the names from it down to `ino` (empty
    /// for the target itself).
    fn path_below_target(&self, ino: Ino) -> Result<(Target, Vec<String>), SlotError> {
        let mut path = Vec::new();
        let mut at = ino;
        loop {
            let node = self.nodes.get(&at).ok_or(SlotError::NotFound)?;
            match &node.role {
                Role::Target(target) => {
                    path.reverse();
                    return Ok((target.clone(), path));
                }
                Role::Root => return Err(SlotError::IsADirectory),
                Role::Directory | Role::Endpoint => path.push(node.spelling.clone()),
            }
            at = node.parent;
        }
    }

    /// Checks a name for a new child of `parent`: a valid name the wire
    /// can carry (printable ASCII), in a target or a directory below one.
    fn new_child_name(&self, parent: Ino, name: &[u8]) -> Result<Name, SlotError> {
        match self.nodes.get(&parent).map(|n| &n.role) {
            Some(Role::Target(_) | Role::Directory) => {}
            Some(Role::Root) => return Err(SlotError::NotPermitted),
            Some(Role::Endpoint) => return Err(SlotError::NotADirectory),
            None => return Err(SlotError::NotFound),
        }
        if !name.iter().all(|b| (b' '..=b'~').contains(b)) {
            return Err(SlotError::InvalidName);
        }
        Name::parse(name)
    }

    fn child(&self, parent: Ino, key: &str) -> Option<Ino> {
        self.nodes.get(&parent)?.children.get(key).copied()
    }

    fn spelling(&self, ino: Ino) -> Option<String> {
        self.nodes.get(&ino).map(|n| n.spelling.clone())
    }

    fn insert(&mut self, parent: Ino, key: String, spelling: String, role: Role) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                parent,
                spelling,
                role,
                children: HashMap::new(),
            },
        );
        if let Some(dir) = self.nodes.get_mut(&parent) {
            dir.children.insert(key, ino);
        }
        ino
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> NetTree {
        NetTree::new((0, 0), SystemTime::UNIX_EPOCH)
    }

    impl NetTree {
        /// A lookup where the local tree has no directories.
        fn lookup_name(&mut self, parent: Ino, name: &[u8]) -> Result<Attr, SlotError> {
            self.lookup(parent, name, |_| false)
        }
    }

    #[test]
    fn local_directories_exist_below_every_target() {
        let mut t = tree();
        let sue = t.lookup_name(NET_ROOT, b"SUE").unwrap().ino;
        let local = |path: &[String]| path == ["myapp"] || path == ["myapp", "sub"];
        let app = t.lookup(sue, b"myapp", local).unwrap();
        assert_eq!(app.kind, Kind::Directory);
        assert_eq!(
            t.lookup(app.ino, b"sub", local).unwrap().kind,
            Kind::Directory
        );
        assert_eq!(
            t.lookup(sue, b"other", local).err(),
            Some(SlotError::NotFound)
        );
        assert_eq!(
            t.lookup(app.ino, b"finance", local).err(),
            Some(SlotError::NotFound)
        );
        let ep = t.create(app.ino, b"finance", false).unwrap();
        let (target, path) = t.destination(ep.ino).unwrap();
        assert_eq!(
            (target.key().as_str(), path),
            ("SUE", vec!["myapp".to_owned(), "finance".to_owned()])
        );
        // Once seen, the directory stays, whatever the local tree does.
        assert_eq!(t.lookup_name(sue, b"MYAPP").unwrap().ino, app.ino);
    }

    #[test]
    fn any_target_resolves_and_spellings_share_one_directory() {
        let mut t = tree();
        let a = t.lookup_name(NET_ROOT, b"Sue").unwrap();
        assert_eq!(a.kind, Kind::Directory);
        assert_eq!(t.lookup_name(NET_ROOT, b"SUE").unwrap().ino, a.ino);
        assert_eq!(t.lookup_name(NET_ROOT, b"sue#00").unwrap().ino, a.ino);
        assert_ne!(t.lookup_name(NET_ROOT, b"SUE#1c").unwrap().ino, a.ino);
        assert_eq!(
            t.lookup_name(NET_ROOT, b"A-NAME-TOO-LONG!").err(),
            Some(SlotError::NameTooLong)
        );
        assert_eq!(
            t.lookup_name(NET_ROOT, b"x#1").err(),
            Some(SlotError::InvalidName)
        );
    }

    #[test]
    fn only_star_is_listed_so_globs_stay_literal() {
        let mut t = tree();
        t.lookup_name(NET_ROOT, b"SUE").unwrap();
        let names: Vec<_> = t
            .readdir(NET_ROOT)
            .unwrap()
            .into_iter()
            .map(|e| e.2)
            .collect();
        assert_eq!(names, [".", "..", "*"]);
    }

    #[test]
    fn endpoints_are_made_by_create_and_directories_by_mkdir() {
        let mut t = tree();
        let sue = t.lookup_name(NET_ROOT, b"*#1c").unwrap().ino;
        assert_eq!(t.lookup_name(sue, b"net").err(), Some(SlotError::NotFound));
        let net = t.mkdir(sue, b"Net").unwrap().ino;
        assert_eq!(t.mkdir(sue, b"NET").err(), Some(SlotError::Exists));
        let ep = t.create(net, b"NetLogon", false).unwrap();
        assert_eq!((ep.kind, ep.perm), (Kind::Slot, 0o222));
        assert_eq!(t.create(net, b"netlogon", false).unwrap().ino, ep.ino);
        assert_eq!(
            t.create(net, b"netlogon", true).err(),
            Some(SlotError::Exists)
        );
        assert_eq!(t.lookup_name(net, b"NETLOGON").unwrap().ino, ep.ino);
        let (target, path) = t.destination(ep.ino).unwrap();
        assert_eq!(target.key(), "*#1c");
        assert_eq!(path, ["Net", "NetLogon"]);
        assert_eq!(
            t.create(sue, b"net", false).err(),
            Some(SlotError::IsADirectory)
        );
        assert_eq!(
            t.create(sue, "caf\u{e9}".as_bytes(), false).err(),
            Some(SlotError::InvalidName)
        );
        assert_eq!(
            t.create(NET_ROOT, b"x", false).err(),
            Some(SlotError::NotPermitted)
        );
        assert_eq!(t.rmdir(sue, b"net").err(), Some(SlotError::NotEmpty));
        assert_eq!(
            t.rmdir(NET_ROOT, b"*#1c").err(),
            Some(SlotError::NotPermitted)
        );
    }

    #[test]
    fn empty_directories_can_be_removed() {
        let mut t = tree();
        let sue = t.lookup_name(NET_ROOT, b"SUE").unwrap().ino;
        t.mkdir(sue, b"app").unwrap();
        t.rmdir(sue, b"APP").unwrap();
        assert_eq!(t.lookup_name(sue, b"app").err(), Some(SlotError::NotFound));
        assert_eq!(t.readdir(sue).unwrap().len(), 2);
    }
}
