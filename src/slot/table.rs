//! The namespace: directories, slots, inode numbers and open handles, and the
//! rule that a slot lives exactly as long as its server handle.
//!
//! Lock order: `tree` before any slot's lock; `handles` is never held while
//! taking another lock; the accounts' map of users is a leaf, taken under
//! any of them and holding none.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};

use super::accounts::{Account, Accounts, Ceilings, Charge, SubordinateIds};
use super::limits::{InfoAttr, Limits, SlotInfo};
use super::memory::Budget;
use super::name::{Name, key_of};
use super::queue::{Slot, Wakeups};
use super::{Now, Parking, SlotError};

/// An inode number. Numbers are never reused, so a stale one is simply gone.
pub type Ino = u64;
/// An open file handle number (one per open file description).
pub type Fh = u64;
/// The root directory's inode number.
pub const ROOT: Ino = 1;

/// A shared, lockable slot.
pub type SlotRef<K> = Arc<Mutex<Slot<K>>>;

/// Directory or slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Directory,
    Slot,
}

/// What `stat` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    /// For a slot, the size of the next message.
    pub size: u64,
    /// Permission bits (including setuid/setgid/sticky), no file type.
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    /// Preferred I/O size (`st_blksize`): for a slot, at least its maximum
    /// message size, so tools that size their buffer by it (`cat`) always
    /// read whole messages.
    pub io_size: u32,
}

/// Who is creating a node, with the mode already reduced by the umask.
#[derive(Clone, Copy, Debug)]
pub struct Creator {
    pub uid: u32,
    pub gid: u32,
    pub perm: u16,
    /// The creating thread: only its own closes mark a slot as closing.
    pub tid: u32,
    /// The creating process (thread group), shown as the slot's owner.
    pub pid: u32,
}

/// The two ends of a mailslot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The creator's handle: the only one that reads.
    Server,
    /// Any other open: write-only.
    Client,
}

/// An open handle: which slot, which end, whether it reads and writes
/// frames (see [`super::batch`]), and who opened it: that user pays for
/// the handle and for what is written or polled through it.
pub struct Handle<K: Parking> {
    pub ino: Ino,
    pub role: Role,
    pub slot: SlotRef<K>,
    pub batch: bool,
    pub account: Arc<Account>,
}

impl<K: Parking> Clone for Handle<K> {
    fn clone(&self) -> Self {
        Handle {
            ino: self.ino,
            role: self.role,
            slot: Arc::clone(&self.slot),
            batch: self.batch,
            account: Arc::clone(&self.account),
        }
    }
}

/// Mount-wide settings every new slot starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotDefaults {
    pub limits: Limits,
    pub keep_empty: bool,
    /// Most bytes all names, handles, waiters and messages together may
    /// take (see [`Accounts`]).
    pub max_memory: u64,
    /// Most directories and slots together (`-o max_entries`).
    pub max_entries: u64,
    /// Most names one user may hold (`-o user_entries`).
    pub user_entries: u64,
    /// Most bytes one user may hold (`-o user_memory`).
    pub user_memory: u64,
}

impl SlotDefaults {
    /// The ceilings and shares these defaults set.
    pub fn ceilings(&self) -> Ceilings {
        Ceilings {
            max_memory: self.max_memory,
            max_entries: self.max_entries,
            user_memory: self.user_memory,
            user_entries: self.user_entries,
        }
    }
}

enum Content<K: Parking> {
    Directory {
        children: HashMap<String, Ino>,
    },
    Slot {
        slot: SlotRef<K>,
        /// The thread that created the slot.
        creator_tid: u32,
        /// Set when the creating thread closes a descriptor of the server
        /// handle: the release is probably on its way.
        closing_tid: Option<u32>,
    },
}

struct Node<K: Parking> {
    parent: Ino,
    name: Name,
    /// Who pays for this name: its creator, even after a chown.
    payer: Arc<Account>,
    perm: u16,
    uid: u32,
    gid: u32,
    ctime: SystemTime,
    mtime: SystemTime,
    content: Content<K>,
}

struct Tree<K: Parking> {
    nodes: HashMap<Ino, Node<K>>,
    next_ino: Ino,
}

/// Every directory, slot and handle of one mount.
pub struct Table<K: Parking> {
    tree: RwLock<Tree<K>>,
    handles: RwLock<HashMap<Fh, Handle<K>>>,
    next_fh: AtomicU64,
    defaults: SlotDefaults,
    accounts: Arc<Accounts>,
}

impl<K: Parking> Table<K> {
    /// An empty namespace whose root belongs to `owner` and, like /tmp,
    /// lets everyone create slots (mode 1777). Root and `owner` are exempt
    /// from the per-user shares.
    pub fn new(defaults: SlotDefaults, owner: (u32, u32), now: Now) -> Self {
        Table::with_subordinates(defaults, owner, SubordinateIds::default(), now)
    }

    /// [`Table::new`], charging the uids in `subordinates` to the users
    /// they were given to (see [`SubordinateIds`]).
    pub fn with_subordinates(
        defaults: SlotDefaults,
        owner: (u32, u32),
        subordinates: SubordinateIds,
        now: Now,
    ) -> Self {
        let accounts = Arc::new(
            Accounts::new(defaults.ceilings(), &[0, owner.0]).with_subordinates(subordinates),
        );
        let root = Node {
            parent: ROOT,
            name: Name::parse(b"mailslot").unwrap_or_else(|_| unreachable!()),
            payer: accounts.account(owner.0),
            perm: 0o1777,
            uid: owner.0,
            gid: owner.1,
            ctime: now.wall,
            mtime: now.wall,
            content: Content::Directory {
                children: HashMap::new(),
            },
        };
        Table {
            tree: RwLock::new(Tree {
                nodes: HashMap::from([(ROOT, root)]),
                next_ino: ROOT + 1,
            }),
            handles: RwLock::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            accounts,
            defaults,
        }
    }

    /// The mount-wide defaults.
    pub fn defaults(&self) -> SlotDefaults {
        self.defaults
    }

    /// The memory ceiling and what the mount holds against it.
    pub fn memory(&self) -> &Budget {
        self.accounts.memory()
    }

    /// Every user's account, the ceilings and the refusals.
    pub fn accounts(&self) -> &Arc<Accounts> {
        &self.accounts
    }

    /// Finds `name` in directory `parent`, ignoring ASCII case.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<Attr, SlotError> {
        let tree = self.tree.read();
        let ino = tree.child(parent, name)?.ok_or(SlotError::NotFound)?;
        tree.attr(ino)
    }

    /// `stat` of an inode.
    pub fn attr(&self, ino: Ino) -> Result<Attr, SlotError> {
        self.tree.read().attr(ino)
    }

    /// If `name` in `parent` is a slot whose server handle thread `tid` has
    /// just closed a descriptor of, the slot's inode: its release may still
    /// be in flight, and a lookup or create by that thread should wait for it.
    pub fn closing_by(&self, parent: Ino, name: &[u8], tid: u32) -> Option<Ino> {
        let tree = self.tree.read();
        let ino = tree.child(parent, name).ok()??;
        match tree.nodes.get(&ino)?.content {
            Content::Slot {
                closing_tid: Some(t),
                ..
            } if t == tid => Some(ino),
            _ => None,
        }
    }

    /// The wait for slot `ino`'s release is over (it came, or the server
    /// handle is still open elsewhere): later lookups need not wait again.
    pub fn forget_closing(&self, ino: Ino) {
        self.set_closing(ino, None);
    }

    /// Marks (`Some(tid)`, only by the creating thread) or unmarks a slot
    /// as closing.
    fn set_closing(&self, ino: Ino, tid: Option<u32>) {
        if let Some(Node {
            content:
                Content::Slot {
                    slot,
                    creator_tid,
                    closing_tid,
                },
            ..
        }) = self.tree.write().nodes.get_mut(&ino)
            && tid.is_none_or(|t| t == *creator_tid)
        {
            *closing_tid = tid;
            slot.lock().set_closing(tid);
        }
    }

    /// `mkdir`.
    pub fn mkdir(
        &self,
        parent: Ino,
        name: &[u8],
        by: Creator,
        now: Now,
    ) -> Result<Attr, SlotError> {
        let name = Name::parse(name)?;
        let mut tree = self.tree.write();
        let content = Content::Directory {
            children: HashMap::new(),
        };
        let ino = self.insert(&mut tree, parent, name, by, now, content)?;
        tree.attr(ino)
    }

    /// Inserts a new name, charged to its creator; refused (`NoSpace`)
    /// when that would pass a ceiling or the creator's share.
    fn insert(
        &self,
        tree: &mut Tree<K>,
        parent: Ino,
        name: Name,
        by: Creator,
        now: Now,
        content: Content<K>,
    ) -> Result<Ino, SlotError> {
        tree.vacant(parent, &name)?;
        let charge = content.charge(&name);
        let payer = self.accounts.account(by.uid);
        self.accounts.take(&payer, charge)?;
        Ok(tree.insert(parent, name, payer, by, now, content))
    }

    /// `rmdir`: only empty directories; slots are never removed by name.
    pub fn rmdir(&self, parent: Ino, name: &[u8], now: Now) -> Result<(), SlotError> {
        let mut tree = self.tree.write();
        let ino = tree.child(parent, name)?.ok_or(SlotError::NotFound)?;
        match tree.nodes.get(&ino).map(|n| &n.content) {
            Some(Content::Directory { children }) if children.is_empty() => {}
            Some(Content::Directory { .. }) => return Err(SlotError::NotEmpty),
            _ => return Err(SlotError::NotADirectory),
        }
        self.remove(&mut tree, ino, now);
        Ok(())
    }

    /// Removes a name and gives back its charge.
    fn remove(&self, tree: &mut Tree<K>, ino: Ino, now: Now) {
        if let Some(node) = tree.remove(ino, now) {
            let charge = node.content.charge(&node.name);
            self.accounts.give_back(&node.payer, charge, 1);
        }
    }

    /// `open(O_CREAT)` of a name. With read access this creates the slot and
    /// returns its server handle; write-only callers are clients, who cannot
    /// create (ENOENT) but open an existing slot when `exclusive` is unset.
    pub fn create(
        &self,
        parent: Ino,
        name: &[u8],
        wants_read: bool,
        exclusive: bool,
        by: Creator,
        now: Now,
    ) -> Result<(Attr, Fh, Role), SlotError> {
        let name = Name::parse(name)?;
        let mut tree = self.tree.write();
        if let Some(ino) = tree.child(parent, name.spelling().as_bytes())? {
            if exclusive {
                return Err(SlotError::Exists);
            }
            let attr = tree.attr(ino)?;
            drop(tree);
            let (fh, role) = self.open(ino, wants_read, by.uid)?;
            return Ok((attr, fh, role));
        }
        if !wants_read {
            return Err(SlotError::NotFound);
        }
        let account = self.accounts.account(by.uid);
        // The server handle comes with the name: both or neither, and a
        // refusal of either is one of a name (ENOSPC).
        self.accounts
            .take(&account, Charge::Handle)
            .map_err(|_| SlotError::NoSpace)?;
        let slot = Slot::charged_to(
            Arc::clone(&self.accounts),
            Arc::clone(&account),
            self.defaults.limits,
            self.defaults.keep_empty,
            by.pid,
            now,
        );
        let slot = Arc::new(Mutex::new(slot));
        let content = Content::Slot {
            slot: Arc::clone(&slot),
            creator_tid: by.tid,
            closing_tid: None,
        };
        let ino = match self.insert(&mut tree, parent, name, by, now, content) {
            Ok(ino) => ino,
            Err(refused) => {
                self.accounts.give_back(&account, Charge::Handle, 1);
                return Err(refused);
            }
        };
        let attr = tree.attr(ino)?;
        drop(tree);
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.write().insert(
            fh,
            Handle {
                ino,
                role: Role::Server,
                slot,
                batch: false,
                account,
            },
        );
        Ok((attr, fh, Role::Server))
    }

    /// `open` of an existing slot by user `uid`: write-only opens are
    /// clients; read access is refused because only the server reads.
    pub fn open(&self, ino: Ino, wants_read: bool, uid: u32) -> Result<(Fh, Role), SlotError> {
        let tree = self.tree.read();
        let node = tree.nodes.get(&ino).ok_or(SlotError::NotFound)?;
        let Content::Slot { slot, .. } = &node.content else {
            return Err(SlotError::IsADirectory);
        };
        if wants_read {
            return Err(SlotError::ReadDenied);
        }
        let account = self.accounts.account(uid);
        self.accounts.take(&account, Charge::Handle)?;
        let handle = Handle {
            ino,
            role: Role::Client,
            slot: Arc::clone(slot),
            batch: false,
            account,
        };
        drop(tree);
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.write().insert(fh, handle);
        Ok((fh, Role::Client))
    }

    /// The handle behind `fh`.
    pub fn handle(&self, fh: Fh) -> Option<Handle<K>> {
        self.handles.read().get(&fh).cloned()
    }

    /// Switches batch mode on or off for one open handle.
    pub fn set_batch(&self, fh: Fh, on: bool) -> Result<(), SlotError> {
        let mut handles = self.handles.write();
        let handle = handles.get_mut(&fh).ok_or(SlotError::NotFound)?;
        handle.batch = on;
        Ok(())
    }

    /// A descriptor of handle `fh` was closed by thread `tid`. When the
    /// thread that created the slot closes a descriptor of its server handle,
    /// the slot is marked as probably closing (see [`Table::closing_by`]).
    /// Closes by other threads — typically a forked child whose exec drops
    /// an inherited close-on-exec copy — say nothing about the release and
    /// must not make that child's own opens wait.
    pub fn flush(&self, fh: Fh, tid: u32) {
        let Some(handle) = self.handle(fh) else {
            return;
        };
        if handle.role == Role::Server {
            self.set_closing(handle.ino, Some(tid));
        }
    }

    /// The last reference to handle `fh` is gone. Releasing a server handle
    /// removes its slot at once, with its messages; returns the slot's inode
    /// in that case, and whom to wake.
    pub fn release(&self, fh: Fh, now: Now) -> (Option<Ino>, Wakeups<K>) {
        let Some(handle) = self.handles.write().remove(&fh) else {
            return (None, Wakeups::default());
        };
        self.accounts.give_back(&handle.account, Charge::Handle, 1);
        if handle.role != Role::Server {
            handle.slot.lock().unwatch(fh);
            return (None, Wakeups::default());
        }
        self.remove(&mut self.tree.write(), handle.ino, now);
        let wakeups = handle.slot.lock().close();
        (Some(handle.ino), wakeups)
    }

    /// Directory listing: `(inode, kind, spelling)`, with `.` and `..` first.
    pub fn readdir(&self, ino: Ino) -> Result<Vec<(Ino, Kind, String)>, SlotError> {
        let tree = self.tree.read();
        let node = tree.nodes.get(&ino).ok_or(SlotError::NotFound)?;
        let Content::Directory { children } = &node.content else {
            return Err(SlotError::NotADirectory);
        };
        let mut entries = vec![
            (ino, Kind::Directory, ".".to_owned()),
            (node.parent, Kind::Directory, "..".to_owned()),
        ];
        let mut named: Vec<_> = children
            .values()
            .filter_map(|child| tree.nodes.get(child).map(|n| (*child, n)))
            .map(|(child, n)| (child, n.content.kind(), n.name.spelling().to_owned()))
            .collect();
        named.sort_by_key(|(child, ..)| *child);
        entries.extend(named);
        Ok(entries)
    }

    /// `chmod`/`chown`/`truncate`. The kernel has already checked who may
    /// (`default_permissions`). Truncating a slot to 0 is accepted and does
    /// nothing, because `echo hi > slot` opens with O_TRUNC; any other size
    /// would mean editing messages, which is refused.
    pub fn setattr(
        &self,
        ino: Ino,
        perm: Option<u16>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        now: Now,
    ) -> Result<Attr, SlotError> {
        let mut tree = self.tree.write();
        let node = tree.nodes.get_mut(&ino).ok_or(SlotError::NotFound)?;
        match (size, &node.content) {
            (None | Some(0), Content::Slot { .. }) => {}
            (Some(_), Content::Slot { .. }) => return Err(SlotError::NotPermitted),
            (Some(_), Content::Directory { .. }) => return Err(SlotError::IsADirectory),
            (None, Content::Directory { .. }) => {}
        }
        if let Some(perm) = perm {
            node.perm = perm & 0o7777;
        }
        node.uid = owner.0.unwrap_or(node.uid);
        node.gid = owner.1.unwrap_or(node.gid);
        node.ctime = now.wall;
        tree.attr(ino)
    }

    /// The GetMailslotInfo figures of a slot.
    pub fn info(&self, ino: Ino) -> Result<SlotInfo, SlotError> {
        Ok(self.slot(ino)?.lock().info())
    }

    /// SetMailslotInfo through an extended attribute: only the slot's owner
    /// (or root) may, and the result must still be a valid set of limits.
    pub fn set_info(
        &self,
        ino: Ino,
        attr: InfoAttr,
        value: &[u8],
        uid: u32,
        transport_max: u32,
    ) -> Result<Wakeups<K>, SlotError> {
        let owner = self.attr(ino)?.uid;
        if uid != 0 && uid != owner {
            return Err(SlotError::NotPermitted);
        }
        let slot = self.slot(ino)?;
        let mut slot = slot.lock();
        let mut limits = slot.info().limits;
        attr.apply(value, &mut limits)?;
        limits
            .validate(transport_max)
            .map_err(|_| SlotError::InvalidValue)?;
        Ok(slot.set_limits(limits))
    }

    /// The slot at `path` (components from the root, any case), for
    /// messages that arrive by name rather than through a client handle.
    pub fn slot_at<S: AsRef<str>>(&self, path: &[S]) -> Result<SlotRef<K>, SlotError> {
        let ino = {
            let tree = self.tree.read();
            path.iter().try_fold(ROOT, |dir, name| {
                tree.child(dir, name.as_ref().as_bytes())?
                    .ok_or(SlotError::NotFound)
            })?
        };
        self.slot(ino)
    }

    fn slot(&self, ino: Ino) -> Result<SlotRef<K>, SlotError> {
        match &self
            .tree
            .read()
            .nodes
            .get(&ino)
            .ok_or(SlotError::NotFound)?
            .content
        {
            Content::Slot { slot, .. } => Ok(Arc::clone(slot)),
            Content::Directory { .. } => Err(SlotError::IsADirectory),
        }
    }

    /// Every live slot, for sweeps (timeouts, signals) and shutdown.
    pub fn slots(&self) -> Vec<SlotRef<K>> {
        self.tree
            .read()
            .nodes
            .values()
            .filter_map(|n| match &n.content {
                Content::Slot { slot, .. } => Some(Arc::clone(slot)),
                Content::Directory { .. } => None,
            })
            .collect()
    }

    /// Number of directories and slots, for `statfs`.
    pub fn node_count(&self) -> usize {
        self.tree.read().nodes.len()
    }
}

impl<K: Parking> Content<K> {
    fn kind(&self) -> Kind {
        match self {
            Content::Directory { .. } => Kind::Directory,
            Content::Slot { .. } => Kind::Slot,
        }
    }

    /// What a name of this kind costs.
    fn charge(&self, name: &Name) -> Charge {
        match self {
            Content::Directory { .. } => Charge::Directory(name.spelling().len()),
            Content::Slot { .. } => Charge::Slot(name.spelling().len()),
        }
    }
}

impl<K: Parking> Tree<K> {
    /// The child of `parent` named `name` (any case), if any.
    fn child(&self, parent: Ino, name: &[u8]) -> Result<Option<Ino>, SlotError> {
        let node = self.nodes.get(&parent).ok_or(SlotError::NotFound)?;
        let Content::Directory { children } = &node.content else {
            return Err(SlotError::NotADirectory);
        };
        let name = std::str::from_utf8(name).map_err(|_| SlotError::InvalidName)?;
        Ok(children.get(&key_of(name)).copied())
    }

    /// Whether `name` may be made in `parent`: a directory without it.
    fn vacant(&self, parent: Ino, name: &Name) -> Result<(), SlotError> {
        match self.child(parent, name.spelling().as_bytes())? {
            Some(_) => Err(SlotError::Exists),
            None => Ok(()),
        }
    }

    /// Inserts a name [`Tree::vacant`] has allowed.
    fn insert(
        &mut self,
        parent: Ino,
        name: Name,
        payer: Arc<Account>,
        by: Creator,
        now: Now,
        content: Content<K>,
    ) -> Ino {
        let ino = self.next_ino;
        if let Some(Node {
            content: Content::Directory { children },
            mtime,
            ctime,
            ..
        }) = self.nodes.get_mut(&parent)
        {
            children.insert(name.key().to_owned(), ino);
            *mtime = now.wall;
            *ctime = now.wall;
        }
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                parent,
                name,
                payer,
                perm: by.perm & 0o7777,
                uid: by.uid,
                gid: by.gid,
                ctime: now.wall,
                mtime: now.wall,
                content,
            },
        );
        ino
    }

    /// Takes a node out of the tree and its parent's map.
    fn remove(&mut self, ino: Ino, now: Now) -> Option<Node<K>> {
        let node = self.nodes.remove(&ino)?;
        if let Some(Node {
            content: Content::Directory { children },
            mtime,
            ctime,
            ..
        }) = self.nodes.get_mut(&node.parent)
        {
            children.remove(node.name.key());
            *mtime = now.wall;
            *ctime = now.wall;
        }
        Some(node)
    }

    fn attr(&self, ino: Ino) -> Result<Attr, SlotError> {
        let node = self.nodes.get(&ino).ok_or(SlotError::NotFound)?;
        let (kind, size, atime, mtime, max_message) = match &node.content {
            Content::Directory { .. } => (Kind::Directory, 0, node.mtime, node.mtime, 0),
            Content::Slot { slot, .. } => {
                let slot = slot.lock();
                let max = slot.info().limits.max_message_size;
                (
                    Kind::Slot,
                    slot.next_size(),
                    slot.accessed,
                    slot.modified,
                    max,
                )
            }
        };
        Ok(Attr {
            ino,
            kind,
            size,
            perm: node.perm,
            uid: node.uid,
            gid: node.gid,
            atime,
            mtime,
            ctime: node.ctime,
            io_size: max_message.max(4096).next_power_of_two(),
        })
    }
}
