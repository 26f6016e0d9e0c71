//! The `.net` directory: a virtual tree of network targets, directories
//! and write-only endpoints, with its own inode numbers. Pure bookkeeping,
//! no kernel types; the adapter turns its answers into replies.
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
//!   `O_CREAT` write-only (every shell redirection) makes it an endpoint.
//!
//! Any user can name any target, so the tree must not keep what it was
//! only asked about: targets, mirrored directories and endpoints live while
//! the kernel knows them (it counts its lookups of a node and sends FORGET
//! when it drops them). The kernel keeps an unused name in its dentry cache
//! until memory runs short, even answered uncached, so once more than
//! [`NET_KEPT`] such nodes are known the tree asks it to drop the names
//! used longest ago ([`NetTree::trim`]); those not in use are then
//! forgotten. Directories made with `mkdir` stay until `rmdir`. Every node
//! is charged to the user who made it, as local names are, so the limits of
//! `-o max_entries` and the per-user shares bound the tree even while
//! something holds its nodes.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use crate::bridge::{Target, TargetError};
use crate::slot::SlotError;
use crate::slot::accounts::{Account, Accounts, Charge};
use crate::slot::name::Name;
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
/// Nodes made by being named that the tree lets the kernel keep; past this
/// it asks the kernel to drop the older half. A few hundred names cost
/// about 1 kB each in the kernel and here, and cover every name a working
/// set of applications uses at once.
const NET_KEPT: usize = 512;
/// Spellings of one name the tree remembers the kernel may hold (it looks
/// names up case-insensitively, and the kernel caches each spelling used).
const ALIASES_KEPT: usize = 4;

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

/// How long a node stays in the tree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Life {
    /// `.net` and `*`: always there, charged to no one.
    Always,
    /// Made with `mkdir`: until `rmdir`.
    UntilRemoved,
    /// Made by being named: while the kernel knows it or a child stays.
    WhileKnown,
}

struct Node {
    parent: Ino,
    /// Its key in the parent's `children`.
    key: String,
    spelling: String,
    role: Role,
    children: HashMap<String, Ino>,
    life: Life,
    /// Lookups the kernel holds: one per entry answered, less what FORGET
    /// gave back.
    lookups: u64,
    /// The names the kernel may hold this node under since the last trim.
    aliases: Vec<Box<[u8]>>,
    /// When it was last named, as the key in `NetTree::recent`.
    used: u64,
    /// Who pays for the node (none for the `Always` ones).
    payer: Option<Arc<Account>>,
}

/// The `.net` tree of one mount.
pub(crate) struct NetTree {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    owner: (u32, u32),
    born: SystemTime,
    accounts: Arc<Accounts>,
    /// Nodes made by being named that the kernel was told of since the last
    /// trim, oldest use first.
    recent: BTreeMap<u64, Ino>,
    uses: u64,
}

impl NetTree {
    /// The tree with `.net` and `*`, charging what users make to `accounts`.
    pub(crate) fn new(owner: (u32, u32), born: SystemTime, accounts: Arc<Accounts>) -> NetTree {
        let root = Node {
            parent: NET_ROOT,
            key: NET_DIR.to_owned(),
            spelling: NET_DIR.to_owned(),
            role: Role::Root,
            children: HashMap::new(),
            life: Life::Always,
            lookups: 0,
            aliases: Vec::new(),
            used: 0,
            payer: None,
        };
        let mut tree = NetTree {
            nodes: HashMap::from([(NET_ROOT, root)]),
            next_ino: NET_ROOT + 1,
            owner,
            born,
            accounts,
            recent: BTreeMap::new(),
            uses: 0,
        };
        let star = Target::parse(PRIMARY_DOMAIN).unwrap_or_else(|_| unreachable!());
        let (key, role) = (star.key(), Role::Target(star));
        tree.insert(
            NET_ROOT,
            key,
            PRIMARY_DOMAIN.to_owned(),
            role,
            Life::Always,
            None,
        );
        tree
    }

    /// Nodes in the tree, `.net` and `*` included.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
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

    /// A name in a `.net` directory, for the kernel (which then holds one
    /// more lookup of it): right under `.net` any valid NetBIOS target,
    /// below it what `mkdir` or `create` made, or a directory that
    /// `is_local_dir` (given the path below the target) says the local tree
    /// has. A new node is charged to `uid`.
    pub(crate) fn lookup(
        &mut self,
        parent: Ino,
        name: &[u8],
        uid: u32,
        is_local_dir: impl FnOnce(&[String]) -> bool,
    ) -> Result<Attr, SlotError> {
        let node = self.nodes.get(&parent).ok_or(SlotError::NotFound)?;
        let ino = match node.role {
            Role::Root => self.target(name, uid)?,
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
                        self.make(parent, &name, Role::Directory, Life::WhileKnown, uid)?
                    }
                }
            }
            Role::Endpoint => return Err(SlotError::NotADirectory),
        };
        self.known(ino, name)
    }

    /// The target directory `name` under `.net`, made on first use.
    fn target(&mut self, name: &[u8], uid: u32) -> Result<Ino, SlotError> {
        let text = std::str::from_utf8(name).map_err(|_| SlotError::InvalidName)?;
        let target = Target::parse(text).map_err(|e| match e {
            TargetError::TooLong => SlotError::NameTooLong,
            TargetError::Invalid => SlotError::InvalidName,
        })?;
        let key = target.key();
        if let Some(ino) = self.child(NET_ROOT, &key) {
            return Ok(ino);
        }
        let payer = self.charge(text.len(), uid)?;
        let role = Role::Target(target);
        Ok(self.insert(
            NET_ROOT,
            key,
            text.to_owned(),
            role,
            Life::WhileKnown,
            Some(payer),
        ))
    }

    /// `mkdir` below a target, for the kernel.
    pub(crate) fn mkdir(&mut self, parent: Ino, name: &[u8], uid: u32) -> Result<Attr, SlotError> {
        let name = self.new_child_name(parent, name)?;
        if self.child(parent, name.key()).is_some() {
            return Err(SlotError::Exists);
        }
        let ino = self.make(parent, &name, Role::Directory, Life::UntilRemoved, uid)?;
        self.known(ino, name.spelling().as_bytes())
    }

    /// `rmdir` of a directory below a target once it holds nothing;
    /// `.net` and targets are not made and cannot be removed.
    pub(crate) fn rmdir(&mut self, parent: Ino, name: &[u8]) -> Result<(), SlotError> {
        let name = self.new_child_name(parent, name)?;
        let ino = self.child(parent, name.key()).ok_or(SlotError::NotFound)?;
        let node = self.nodes.get(&ino).ok_or(SlotError::NotFound)?;
        match node.role {
            Role::Directory if node.children.is_empty() => {}
            Role::Directory => return Err(SlotError::NotEmpty),
            Role::Endpoint => return Err(SlotError::NotADirectory),
            Role::Root | Role::Target(_) => return Err(SlotError::NotPermitted),
        }
        self.remove(ino);
        self.collect(parent);
        Ok(())
    }

    /// `open(O_CREAT)` write-only below a target, for the kernel: the
    /// endpoint of that name, made (charged to `uid`) if new; `exclusive`
    /// refuses an existing one.
    pub(crate) fn create(
        &mut self,
        parent: Ino,
        name: &[u8],
        exclusive: bool,
        uid: u32,
    ) -> Result<Attr, SlotError> {
        let name = self.new_child_name(parent, name)?;
        let ino = match self.child(parent, name.key()) {
            Some(_) if exclusive => return Err(SlotError::Exists),
            Some(ino) => ino,
            None => self.make(parent, &name, Role::Endpoint, Life::WhileKnown, uid)?,
        };
        match self.attr(ino)? {
            attr if attr.kind == Kind::Slot => self.known(ino, name.spelling().as_bytes()),
            _ => Err(SlotError::IsADirectory),
        }
    }

    /// The kernel dropped `count` of its lookups of `ino`: a node made by
    /// being named goes once nothing knows it.
    pub(crate) fn forget(&mut self, ino: Ino, count: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(count);
            self.collect(ino);
        }
    }

    /// Directory listing, `.` and `..` first.
    pub(crate) fn readdir(&self, ino: Ino) -> Result<Vec<(Ino, Kind, String)>, SlotError> {
        if ino == NET_ROOT {
            let star = self
                .child(NET_ROOT, PRIMARY_DOMAIN)
                .ok_or(SlotError::NotFound)?;
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

    /// The attributes of `ino`, now that the kernel holds one more lookup
    /// of it, under `name`.
    fn known(&mut self, ino: Ino, name: &[u8]) -> Result<Attr, SlotError> {
        let attr = self.attr(ino)?;
        let Some(node) = self.nodes.get_mut(&ino) else {
            return Ok(attr);
        };
        node.lookups += 1;
        if node.life == Life::WhileKnown {
            if !node.aliases.iter().any(|a| **a == *name) {
                if node.aliases.len() == ALIASES_KEPT {
                    node.aliases.remove(0);
                }
                node.aliases.push(name.into());
            }
            self.recent.remove(&node.used);
            self.uses += 1;
            node.used = self.uses;
            self.recent.insert(self.uses, ino);
        }
        Ok(attr)
    }

    /// Whether more nodes made by being named are known than the tree lets
    /// the kernel keep.
    pub(crate) fn overgrown(&self) -> bool {
        self.recent.len() > NET_KEPT
    }

    /// The names (parent and name) the kernel should drop so that at most
    /// half of [`NET_KEPT`] remain, those used longest ago first. The kernel
    /// drops each unless it is in use, then sends FORGET; a node still in
    /// use stays until that ends, and comes back here when named again.
    pub(crate) fn trim(&mut self) -> Vec<(Ino, Box<[u8]>)> {
        let mut names = Vec::new();
        while self.recent.len() > NET_KEPT / 2 {
            let Some((_, ino)) = self.recent.pop_first() else {
                break;
            };
            if let Some(node) = self.nodes.get_mut(&ino) {
                names.extend(node.aliases.drain(..).map(|alias| (node.parent, alias)));
            }
        }
        names
    }

    /// Charges a node named with `name_len` bytes to `uid`.
    fn charge(&self, name_len: usize, uid: u32) -> Result<Arc<Account>, SlotError> {
        let payer = self.accounts.account(uid);
        self.accounts.take(&payer, Charge::NetName(name_len))?;
        Ok(payer)
    }

    /// A new child of `parent`, charged to `uid`.
    fn make(
        &mut self,
        parent: Ino,
        name: &Name,
        role: Role,
        life: Life,
        uid: u32,
    ) -> Result<Ino, SlotError> {
        let payer = self.charge(name.spelling().len(), uid)?;
        let (key, spelling) = (name.key().to_owned(), name.spelling().to_owned());
        Ok(self.insert(parent, key, spelling, role, life, Some(payer)))
    }

    fn insert(
        &mut self,
        parent: Ino,
        key: String,
        spelling: String,
        role: Role,
        life: Life,
        payer: Option<Arc<Account>>,
    ) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                parent,
                key: key.clone(),
                spelling,
                role,
                children: HashMap::new(),
                life,
                lookups: 0,
                aliases: Vec::new(),
                used: 0,
                payer,
            },
        );
        if let Some(dir) = self.nodes.get_mut(&parent) {
            dir.children.insert(key, ino);
        }
        ino
    }

    /// Removes `ino` from the tree and gives back its charge.
    fn remove(&mut self, ino: Ino) {
        let Some(node) = self.nodes.remove(&ino) else {
            return;
        };
        if let Some(dir) = self.nodes.get_mut(&node.parent) {
            dir.children.remove(&node.key);
        }
        if self.recent.get(&node.used) == Some(&ino) {
            self.recent.remove(&node.used);
        }
        if let Some(payer) = node.payer {
            let charge = Charge::NetName(node.spelling.len());
            self.accounts.give_back(&payer, charge, 1);
        }
    }

    /// Removes `ino` if it was made by being named and nothing knows it or
    /// lies below it any more, then its parent on the same terms.
    fn collect(&mut self, mut ino: Ino) {
        while let Some(node) = self.nodes.get(&ino) {
            if node.life != Life::WhileKnown || node.lookups != 0 || !node.children.is_empty() {
                return;
            }
            let parent = node.parent;
            self.remove(ino);
            ino = parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::slot::accounts::Ceilings;

    /// A user the per-user shares apply to.
    const USER: u32 = 1000;

    fn tree() -> NetTree {
        NetTree::new(
            (0, 0),
            SystemTime::UNIX_EPOCH,
            Arc::new(Accounts::unlimited()),
        )
    }

    impl NetTree {
        /// A lookup by USER where the local tree has no directories.
        fn lookup_name(&mut self, parent: Ino, name: &[u8]) -> Result<Attr, SlotError> {
            self.lookup(parent, name, USER, |_| false)
        }
    }

    #[test]
    fn local_directories_exist_below_every_target() {
        let mut t = tree();
        let sue = t.lookup_name(NET_ROOT, b"SUE").unwrap().ino;
        let local = |path: &[String]| path == ["myapp"] || path == ["myapp", "sub"];
        let app = t.lookup(sue, b"myapp", USER, local).unwrap();
        assert_eq!(app.kind, Kind::Directory);
        assert_eq!(
            t.lookup(app.ino, b"sub", USER, local).unwrap().kind,
            Kind::Directory
        );
        assert_eq!(
            t.lookup(sue, b"other", USER, local).err(),
            Some(SlotError::NotFound)
        );
        assert_eq!(
            t.lookup(app.ino, b"finance", USER, local).err(),
            Some(SlotError::NotFound)
        );
        let ep = t.create(app.ino, b"finance", false, USER).unwrap();
        let (target, path) = t.destination(ep.ino).unwrap();
        assert_eq!(
            (target.key().as_str(), path),
            ("SUE", vec!["myapp".to_owned(), "finance".to_owned()])
        );
        // While known, the directory stays, whatever the local tree does.
        assert_eq!(t.lookup_name(sue, b"MYAPP").unwrap().ino, app.ino);
    }

    #[test]
    fn past_what_the_kernel_may_keep_the_oldest_names_are_dropped() {
        let mut t = tree();
        let first = t.lookup_name(NET_ROOT, b"Host0").unwrap().ino;
        t.lookup_name(NET_ROOT, b"HOST0").unwrap();
        let made = t.mkdir(first, b"made", USER).unwrap().ino;
        let hosts: Vec<Ino> = (1..NET_KEPT)
            .map(|i| {
                t.lookup_name(NET_ROOT, format!("HOST{i}").as_bytes())
                    .unwrap()
                    .ino
            })
            .collect();
        assert!(
            !t.overgrown(),
            "made directories are not the kernel's to drop"
        );
        t.lookup_name(NET_ROOT, b"ONEMORE").unwrap();
        assert!(t.overgrown());
        let names = t.trim();
        // The older half, oldest first, under every spelling the kernel
        // was given.
        let dropped = NET_KEPT / 2;
        assert_eq!(names.len(), dropped + 2);
        assert_eq!(names[0], (NET_ROOT, b"Host0".to_vec().into()));
        assert_eq!(names[1], (NET_ROOT, b"HOST0".to_vec().into()));
        assert_eq!(names[2], (NET_ROOT, b"HOST1".to_vec().into()));
        assert!(!t.overgrown());
        // The kernel forgets them; the one with a made directory stays.
        t.forget(first, 2);
        for &ino in &hosts[..dropped] {
            t.forget(ino, 1);
        }
        assert!(t.attr(first).is_ok() && t.attr(made).is_ok());
        assert!(hosts[..dropped].iter().all(|&ino| t.attr(ino).is_err()));
        assert!(t.attr(hosts[dropped]).is_ok());
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
        let net = t.mkdir(sue, b"Net", USER).unwrap().ino;
        assert_eq!(t.mkdir(sue, b"NET", USER).err(), Some(SlotError::Exists));
        let ep = t.create(net, b"NetLogon", false, USER).unwrap();
        assert_eq!((ep.kind, ep.perm), (Kind::Slot, 0o222));
        assert_eq!(t.create(net, b"netlogon", false, USER).unwrap().ino, ep.ino);
        assert_eq!(
            t.create(net, b"netlogon", true, USER).err(),
            Some(SlotError::Exists)
        );
        assert_eq!(t.lookup_name(net, b"NETLOGON").unwrap().ino, ep.ino);
        let (target, path) = t.destination(ep.ino).unwrap();
        assert_eq!(target.key(), "*#1c");
        assert_eq!(path, ["Net", "NetLogon"]);
        assert_eq!(
            t.create(sue, b"net", false, USER).err(),
            Some(SlotError::IsADirectory)
        );
        assert_eq!(
            t.create(sue, "caf\u{e9}".as_bytes(), false, USER).err(),
            Some(SlotError::InvalidName)
        );
        assert_eq!(
            t.create(NET_ROOT, b"x", false, USER).err(),
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
        t.mkdir(sue, b"app", USER).unwrap();
        t.rmdir(sue, b"APP").unwrap();
        assert_eq!(t.lookup_name(sue, b"app").err(), Some(SlotError::NotFound));
        assert_eq!(t.readdir(sue).unwrap().len(), 2);
    }

    #[test]
    fn names_only_asked_about_go_once_the_kernel_forgets_them() {
        let mut t = tree();
        let fresh = t.len();
        let local = |path: &[String]| path == ["app"];
        let mut known = Vec::new();
        for i in 0..1000 {
            let target = t
                .lookup_name(NET_ROOT, format!("HOST{i}").as_bytes())
                .unwrap();
            let app = t.lookup(target.ino, b"app", USER, local).unwrap();
            let endpoint = t.create(app.ino, b"x", false, USER).unwrap();
            known.extend([target.ino, app.ino, endpoint.ino]);
        }
        assert_eq!(t.len(), fresh + 3000);
        assert_eq!(t.accounts.entries().used(), 3000);
        // The kernel forgets a parent only after its children: the
        // endpoint goes, then the directory, then the target.
        for ino in known.iter().rev() {
            t.forget(*ino, 1);
        }
        assert_eq!(t.len(), fresh);
        assert_eq!(t.accounts.entries().used(), 0);
        assert_eq!(t.accounts.memory().used(), 0);
        // `.net` and `*` are never forgotten.
        let star = t.lookup_name(NET_ROOT, b"*").unwrap().ino;
        t.forget(star, 1);
        t.forget(NET_ROOT, 1);
        assert_eq!(t.len(), fresh);
    }

    #[test]
    fn a_node_stays_while_any_lookup_of_it_is_held() {
        let mut t = tree();
        let sue = t.lookup_name(NET_ROOT, b"SUE").unwrap().ino;
        assert_eq!(t.lookup_name(NET_ROOT, b"sue").unwrap().ino, sue);
        t.forget(sue, 1);
        assert_eq!(t.lookup_name(NET_ROOT, b"SUE").unwrap().ino, sue);
        t.forget(sue, 2);
        assert_ne!(t.lookup_name(NET_ROOT, b"SUE").unwrap().ino, sue);
    }

    #[test]
    fn made_directories_stay_until_removed_and_keep_their_target() {
        let mut t = tree();
        let sue = t.lookup_name(NET_ROOT, b"SUE").unwrap().ino;
        let app = t.mkdir(sue, b"app", USER).unwrap().ino;
        t.forget(app, 1);
        t.forget(sue, 1);
        assert_eq!(t.lookup_name(NET_ROOT, b"SUE").unwrap().ino, sue);
        assert_eq!(t.lookup_name(sue, b"APP").unwrap().ino, app);
        t.forget(app, 1);
        t.forget(sue, 1);
        // Removing the last thing made below a forgotten target takes it too.
        let before = t.len();
        t.rmdir(sue, b"app").unwrap();
        assert_eq!(t.len(), before - 2);
        assert_eq!(t.accounts.entries().used(), 0);
    }

    #[test]
    fn a_user_past_a_share_is_refused_names_until_some_are_forgotten() {
        let ceilings = Ceilings {
            max_memory: u64::MAX,
            max_entries: u64::MAX,
            user_memory: u64::MAX,
            user_entries: 3,
        };
        let accounts = Arc::new(Accounts::new(ceilings, &[0]));
        let mut t = NetTree::new((0, 0), SystemTime::UNIX_EPOCH, accounts);
        let held: Vec<_> = (0..3)
            .map(|i| {
                t.lookup_name(NET_ROOT, format!("H{i}").as_bytes())
                    .unwrap()
                    .ino
            })
            .collect();
        assert_eq!(
            t.lookup_name(NET_ROOT, b"H3").err(),
            Some(SlotError::NoSpace)
        );
        assert_eq!(t.mkdir(held[0], b"d", USER).err(), Some(SlotError::NoSpace));
        // Others, and names that already exist, are not refused.
        t.lookup(NET_ROOT, b"H3", 0, |_| false).unwrap();
        t.lookup_name(NET_ROOT, b"H0").unwrap();
        t.forget(held[1], 1);
        t.lookup_name(NET_ROOT, b"H4").unwrap();
    }
}
