//! Command-line arguments and the `-o` option list, parsed without side
//! effects so that every refusal is one clear line before anything starts.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::bridge::Cidr;
use crate::bridge::net::Settings;
use crate::kernel::mount::Transport;
use crate::slot::limits::{Limits, ReadTimeout};
use crate::slot::memory::message_cost;
use crate::slot::table::SlotDefaults;
use crate::wire::{NETBIOS_DATAGRAM_PORT, NetbiosName};

/// What `--version` shows after the name: the Cargo version and the
/// commit built (build.rs), so that a report names the exact code.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MAILSLOTFS_COMMIT"),
    ")"
);

/// Mounting through mount(8), as `--help` and the man page show it.
macro_rules! helper_example {
    () => {
        "mount -t fuse.mailslotfs none /mailslot -o allow_other"
    };
}

/// The fstab line, as `--help` and the man page show it.
macro_rules! fstab_example {
    () => {
        "mailslotfs /mailslot fuse.mailslotfs allow_other,nofail 0 0"
    };
}
pub(crate) use {fstab_example, helper_example};

/// Windows mailslots on Linux, as a FUSE file system.
///
/// A server creates a file under the mount (`cat <> /mailslot/chat`); that
/// file is its mailslot. Any other process writes whole messages into it
/// (`echo hi > /mailslot/chat`); only the server reads them, one message per
/// read.
#[derive(Parser, Debug)]
#[command(
    name = "mailslotfs",
    version = VERSION,
    propagate_version = true,
    after_help = concat!(
        "As a mount helper (installed as /sbin/mount.fuse.mailslotfs): ",
        helper_example!(),
        "\n/etc/fstab: ",
        fstab_example!()
    )
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Mount the mailslot namespace (\\.\mailslot\) at DIR.
    ///
    /// Returns once the mount is ready, leaving the daemon in the
    /// background; SIGTERM or SIGINT to the daemon unmounts and exits.
    /// A directory left behind by a killed daemon is cleaned up first.
    /// Logs go to stderr with --foreground, and to syslog (the journal)
    /// once in the background. Under systemd (Type=notify) readiness is
    /// reported once the mount is usable.
    Mount(Box<MountArgs>),
    /// Create a mailslot and print each message as it arrives.
    ///
    /// The slot exists while this runs; Ctrl-C ends it and the slot is gone.
    Serve(ServeArgs),
    /// Send messages to a mailslot: each MESSAGE argument, or else each line
    /// of standard input, is one message.
    Send(SendArgs),
    /// Show a mailslot's GetMailslotInfo figures.
    Info(InfoArgs),
    /// List every mailslot under a mount: owner, queue and totals.
    #[command(visible_alias = "ls")]
    Status(StatusArgs),
    /// Print the shell completion script for SHELL.
    ///
    /// The Debian package and scripts/install.sh install them; by hand,
    /// e.g. `mailslotfs completions bash >
    /// /usr/share/bash-completion/completions/mailslotfs`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, mailslotfs(8), as roff.
    ///
    /// `mailslotfs man | man -l -` reads it where it is not installed; it
    /// is also how man/mailslotfs.8 is made.
    Man,
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// Directory to mount on (must exist).
    pub dir: PathBuf,
    /// Stay attached to the terminal and log to stderr.
    #[arg(short, long)]
    pub foreground: bool,
    /// Comma-separated mount options (--help lists them); may be given more
    /// than once.
    ///
    /// Sizes take K, M or G suffixes. Every network bridge flag is also an
    /// option, with _ for - (--netbios-name NAME is netbios_name=NAME);
    /// mount(8)'s generic options (rw, nosuid, noauto, _netdev, x-*, ...)
    /// are ignored.
    ///
    ///   max_msg=BYTES       largest message of new slots [default: 64K]
    ///   timeout=MS          read timeout of new slots, -1 = forever [default: -1]
    ///   quota_messages=N    messages a new slot may queue [default: 65536]
    ///   quota_bytes=BYTES   bytes a new slot may queue [default: 64M]
    ///   max_memory=BYTES    what the mount may hold: names, handles, waiters
    ///                       and messages [default: a quarter of RAM, at most 1G]
    ///   max_entries=N       directories and slots together [default: 100000]
    ///   user_entries=N      one user's share of max_entries [default: a quarter];
    ///                       root and the mount's owner are exempt, and a
    ///                       user's uids in /etc/subuid count as that user
    ///   user_memory=BYTES   one user's share of max_memory [default: a quarter]
    ///   keep_empty          keep zero-length messages instead of dropping them
    ///   allow_other         let other users use the mount
    ///   user=NAME           the same as --user NAME
    ///   threads=N           classic transport: event-loop threads [default: 4]
    ///   io_uring            FUSE-over-io_uring, or refuse to mount
    ///   no_io_uring         classic /dev/fuse only (the default takes
    ///                       io_uring when the kernel offers it)
    #[arg(short = 'o', value_name = "OPTIONS", verbatim_doc_comment)]
    pub options: Vec<String>,
    /// Log more: -v what the daemon does, -vv also every request it
    /// refused, with the asking pid. Default: warnings and errors only.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log every FUSE request as well as what -vv logs.
    #[arg(long)]
    pub debug: bool,
    /// Once the port is bound and the directory mounted, drop root and run
    /// as this user (also `-o user=NAME`).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// What the mount table shows as the source (mount(8)'s SOURCE).
    #[arg(skip)]
    pub source: Option<String>,
    /// Check everything, but do not mount (mount(8)'s `-f`).
    #[arg(skip)]
    pub dry_run: bool,
    #[command(flatten)]
    pub bridge: BridgeArgs,
}

/// The heading of the bridge's flags in `--help`; the man page finds them
/// by it to list them again as `-o` options.
pub const BRIDGE_HEADING: &str = "Network bridge (each flag also an -o option)";

/// The network bridge's flags; each is also an `-o` option (`-o
/// bridge,domain=MSLDOM,peer=SUE=10.0.0.2`) so that fstab can carry it.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = BRIDGE_HEADING)]
pub struct BridgeArgs {
    /// Forward writes under DIR/.net/TARGET/ to other hosts as SMB mailslot
    /// datagrams (UDP 138), and deliver theirs into local slots; hold this
    /// computer's NetBIOS names and find others' (UDP 137).
    #[arg(long)]
    pub bridge: bool,
    /// This computer's NetBIOS name [default: the host name, upper case, cut to 15].
    #[arg(long, value_name = "NAME")]
    pub netbios_name: Option<String>,
    /// The domain or workgroup (what .net/* means) [default: WORKGROUP].
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// The interface address to use [default: the first non-loopback IPv4 interface].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Where domain writes go [default: that interface's broadcast address].
    #[arg(long, value_name = "ADDR")]
    pub broadcast: Option<String>,
    /// UDP port to bind and send to [default: 138]; the name service uses
    /// the port below it.
    #[arg(long, value_name = "N")]
    pub port: Option<String>,
    /// A computer's address, used before any name look-up (repeatable).
    #[arg(long, value_name = "NAME=ADDR")]
    pub peer: Vec<String>,
    /// Accept datagrams only from these networks (repeatable) [default: any].
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Carry domain writes on this IP multicast group instead of broadcast,
    /// for a domain that spans routed networks.
    #[arg(long, value_name = "GROUP")]
    pub multicast: Option<String>,
    /// A WINS server: register our names with it and ask it first, for
    /// names beyond the subnet's broadcasts.
    #[arg(long, value_name = "ADDR")]
    pub wins: Option<String>,
    /// Neither register nor answer NetBIOS names on UDP 137 (the port below
    /// --port); names are then found through --peer and the system resolver.
    #[arg(long)]
    pub no_name_service: bool,
}

impl BridgeArgs {
    /// The flags given, as `(key, value)` in `-o` spelling.
    fn given(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::new();
        if self.bridge {
            out.push(("bridge", None));
        }
        if self.no_name_service {
            out.push(("no-name-service", None));
        }
        let single = [
            ("netbios-name", &self.netbios_name),
            ("domain", &self.domain),
            ("bind", &self.bind),
            ("broadcast", &self.broadcast),
            ("port", &self.port),
            ("multicast", &self.multicast),
            ("wins", &self.wins),
        ];
        for (key, value) in single {
            out.extend(value.as_deref().map(|v| (key, Some(v))));
        }
        out.extend(self.peer.iter().map(|v| ("peer", Some(v.as_str()))));
        out.extend(self.allow.iter().map(|v| ("allow", Some(v.as_str()))));
        out
    }
}

/// The bridge settings from flags and `-o`, as far as they can be checked
/// without looking at the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeRequest {
    enabled: bool,
    /// The first bridge setting seen, to name it if the bridge is off.
    first_setting: Option<String>,
    settings: Settings,
}

impl Default for BridgeRequest {
    fn default() -> Self {
        BridgeRequest {
            enabled: false,
            first_setting: None,
            settings: Settings {
                port: NETBIOS_DATAGRAM_PORT,
                ..Settings::default()
            },
        }
    }
}

impl BridgeRequest {
    /// Adds the bridge flags; errors name the flag.
    pub fn add_flags(&mut self, args: &BridgeArgs) -> Result<(), String> {
        for (key, value) in args.given() {
            self.set(key, value).map_err(|why| match value {
                Some(v) => format!("--{key} {v}: {why}"),
                None => format!("--{key}: {why}"),
            })?;
        }
        Ok(())
    }

    /// The settings, or `None` when the bridge is off.
    pub fn finish(self) -> Result<Option<Settings>, String> {
        match (self.enabled, self.first_setting) {
            (true, _) => Ok(Some(self.settings)),
            (false, None) => Ok(None),
            (false, Some(key)) => Err(format!("{key}: needs --bridge (or -o bridge)")),
        }
    }

    /// Whether `key` (either spelling, `netbios_name` or `netbios-name`)
    /// is a bridge setting; `set` takes it as `-o` gives it.
    fn takes(key: &str) -> bool {
        const KEYS: [&str; 11] = [
            "bridge",
            "netbios-name",
            "domain",
            "bind",
            "broadcast",
            "port",
            "peer",
            "allow",
            "multicast",
            "wins",
            "no-name-service",
        ];
        KEYS.contains(&key.replace('_', "-").as_str())
    }

    fn set(&mut self, key: &str, value: Option<&str>) -> Result<(), String> {
        let key = key.replace('_', "-");
        let s = &mut self.settings;
        match (key.as_str(), value) {
            ("bridge", None) => {
                self.enabled = true;
                return Ok(());
            }
            ("bridge" | "no-name-service", Some(_)) => return Err("takes no value".to_owned()),
            ("no-name-service", None) => s.no_name_service = true,
            (_, None) => return Err("needs a value".to_owned()),
            ("netbios-name", Some(v)) => s.netbios_name = Some(netbios_name(v)?),
            ("domain", Some(v)) => s.domain = Some(netbios_name(v)?),
            ("bind", Some(v)) => s.bind = Some(ipv4(v)?),
            ("broadcast", Some(v)) => s.broadcast = Some(ipv4(v)?),
            ("port", Some(v)) => {
                s.port = v
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or("expected a port number, 1 to 65535")?
            }
            ("peer", Some(v)) => {
                let (name, addr) = v.split_once('=').ok_or("expected NAME=ADDR")?;
                s.peers.push((netbios_name(name)?, ipv4(addr)?));
            }
            ("allow", Some(v)) => s.allow.push(v.parse::<Cidr>()?),
            ("wins", Some(v)) => s.wins = Some(ipv4(v)?),
            ("multicast", Some(v)) => {
                let group = ipv4(v)?;
                if !group.is_multicast() {
                    return Err("not a multicast group (224.0.0.0 to 239.255.255.255)".to_owned());
                }
                s.multicast = Some(group);
            }
            _ => return Err("unknown option".to_owned()),
        }
        self.first_setting.get_or_insert(key);
        Ok(())
    }
}

/// A NetBIOS name as the wire carries it: 1 to 15 printable ASCII
/// characters, upper-cased.
fn netbios_name(text: &str) -> Result<String, String> {
    NetbiosName::new(text, 0).map_err(|e| e.to_string())?;
    Ok(text.to_ascii_uppercase())
}

fn ipv4(text: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("{text}: not an IPv4 address"))
}

/// How `serve` separates messages on standard output.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One line per message (a newline is added unless the message ends in one).
    Line,
    /// Each message followed by a NUL byte.
    Nul,
    /// Netstrings: `LEN:BYTES,` — safe for any binary message.
    Netstring,
    /// The bytes only, as `cat` would print them.
    Raw,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The mailslot to create: a path under the mount, or \\.\mailslot\NAME.
    pub slot: String,
    /// Exit after this many messages.
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// Give up after MS milliseconds without a message.
    #[arg(short, long, value_name = "MS")]
    pub timeout: Option<u32>,
    /// How messages are separated on standard output.
    #[arg(long, value_enum, default_value_t = Framing::Line)]
    pub framing: Framing,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The mailslot to write to: a path under the mount, or \\.\mailslot\NAME.
    pub slot: String,
    /// Messages to send, one message each; without any, each line of stdin.
    pub messages: Vec<String>,
    /// Send all of standard input as one message.
    #[arg(long, conflicts_with = "messages")]
    pub whole: bool,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The mailslot: a path under the mount, or \\.\mailslot\NAME.
    pub slot: String,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The mount, or a directory inside it.
    #[arg(default_value = "/mailslot")]
    pub dir: PathBuf,
    /// One JSON object, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// The name mount(8) and fstab know the file system by (`fuse.mailslotfs`).
pub const FS_TYPE: &str = "fuse.mailslotfs";

/// Recognises the mount helper's argument form and turns it into a mount.
///
/// mount(8) runs `/sbin/mount.fuse.mailslotfs SOURCE DIR [-sfnv] [-o OPTS]`
/// (or `mount.mailslotfs` for `-t mailslotfs`), and fuse3's `mount.fuse3`
/// runs `mailslotfs SOURCE DIR -o OPTS`. Returns `None` for any other
/// command line, which then goes to the ordinary parser.
pub fn helper_mount(argv: &[OsString]) -> Option<Result<MountArgs, String>> {
    let program = Path::new(argv.first()?).file_name()?.to_string_lossy();
    let is_helper_name = program.starts_with("mount.");
    let first = argv.get(1)?.to_string_lossy();
    let looks_like_helper = argv.len() >= 3
        && !first.starts_with('-')
        && Cli::command().find_subcommand(first.as_ref()).is_none()
        && first != "help";
    (is_helper_name || looks_like_helper).then(|| parse_helper_args(&argv[1..]))
}

/// Parses an ordinary command line. `--help` and `--version` are printed
/// on stdout and exit 0 here, as clap does; anything clap refuses comes
/// back as the one line `main` prints, so that a usage error exits 1 like
/// every other error a user can cause (clap's own exit is 2, with a
/// multi-line message).
pub fn parse_command_line(argv: Vec<OsString>) -> Result<Command, String> {
    match Cli::try_parse_from(&argv) {
        Ok(cli) => Ok(cli.command),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => Err(usage_error(&e, &argv)),
    }
}

/// clap's refusal on one line: its first paragraph without `error: `
/// (a list it puts on the next lines, such as the possible values, joined
/// on), then where to look, e.g. `unexpected argument '--bogus' found (see
/// mailslotfs mount --help)`.
fn usage_error(error: &clap::Error, argv: &[OsString]) -> String {
    let text = error.render().to_string();
    let what = match text.strip_prefix("error: ") {
        Some(message) => message
            .lines()
            .take_while(|l| !l.is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" "),
        // Only a bare `mailslotfs`: clap would print the whole help.
        None => "no command given".to_owned(),
    };
    // The top level takes no option with a value, so its first word that
    // is not a flag is the subcommand, if it names one.
    let cli = Cli::command();
    let sub = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .find(|a| !a.starts_with('-'))
        .and_then(|word| cli.find_subcommand(word.as_ref()))
        .map(|sub| format!(" {}", sub.get_name()))
        .unwrap_or_default();
    format!("{what} (see mailslotfs{sub} --help)")
}

fn parse_helper_args(args: &[OsString]) -> Result<MountArgs, String> {
    let mut positional = Vec::new();
    let mut mount = MountArgs {
        dir: PathBuf::new(),
        foreground: false,
        options: Vec::new(),
        verbose: 0,
        debug: false,
        user: None,
        source: None,
        dry_run: false,
        bridge: BridgeArgs::default(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        let mut value = |flag: &str| {
            args.next()
                .map(|v| v.to_string_lossy().into_owned())
                .ok_or_else(|| format!("{flag}: needs a value"))
        };
        match text.as_ref() {
            "-o" => mount.options.push(value("-o")?),
            "-t" => {
                let fs_type = value("-t")?;
                if fs_type != FS_TYPE && fs_type != "mailslotfs" {
                    return Err(format!("-t {fs_type}: this helper mounts {FS_TYPE}"));
                }
            }
            "-N" => return Err("-N: mounting in another namespace is not supported".to_owned()),
            // Sloppy and no-mtab mean nothing here.
            "-s" | "-n" => {}
            "-v" => mount.verbose += 1,
            "-f" => mount.dry_run = true,
            flag if flag.starts_with('-') => return Err(format!("{flag}: unknown mount flag")),
            _ => positional.push(arg),
        }
    }
    let [source, dir] = positional[..] else {
        return Err("usage: mount.fuse.mailslotfs SOURCE DIR [-o OPTIONS]".to_owned());
    };
    mount.source = Some(source.to_string_lossy().into_owned());
    mount.dir = PathBuf::from(dir);
    Ok(mount)
}

/// Everything `-o` can say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub defaults: SlotDefaults,
    /// Who the daemon becomes once mounted (`-o user=NAME`).
    pub user: Option<String>,
    pub allow_other: bool,
    pub bridge: BridgeRequest,
    /// FUSE event-loop threads (`-o threads=N`).
    pub threads: usize,
    /// `-o io_uring` / `-o no_io_uring`; by default whatever the kernel offers.
    pub transport: Transport,
}

/// Event-loop threads unless `-o threads` says otherwise: where waking an
/// idle CPU is dear (a VM without halt polling) several threads serve a
/// writer and a reader at once; where it is cheap, one hot thread answers
/// a ping-pong fastest (README, Performance).
pub const DEFAULT_THREADS: usize = 4;

/// More event-loop threads than this only cost memory (16 MiB buffer each).
const MAX_THREADS: usize = 64;

/// Options mount(8) and fstab pass along that mean nothing here (a
/// mailslot has no device files, set-uid programs, executables or times
/// worth tuning, and the daemon already mounts nodev,nosuid,noexec).
#[rustfmt::skip]
const IGNORED_OPTIONS: &[&str] = &[
    "defaults", "rw", "auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev",
    "nofail", "nosuid", "nodev", "noexec", "suid", "dev", "exec", "atime", "noatime",
    "relatime", "strictatime", "lazytime", "nodiratime", "diratime", "async", "sync", "dirsync",
    "silent", "loud",
];

/// Parses every `-o` list. `transport_max` is the largest message the kernel
/// can carry in one piece. Errors name the offending option.
pub fn parse_mount_options(lists: &[String], transport_max: u32) -> Result<MountOptions, String> {
    let mut limits = Limits::default();
    let mut keep_empty = false;
    let mut max_memory = default_max_memory();
    let mut max_entries = DEFAULT_MAX_ENTRIES;
    let (mut user_entries, mut user_memory) = (None, None);
    let mut user = None;
    let mut allow_other = false;
    let mut bridge = BridgeRequest::default();
    let mut threads = DEFAULT_THREADS;
    let mut transport = Transport::Auto;
    for option in lists
        .iter()
        .flat_map(|l| l.split(','))
        .filter(|o| !o.is_empty())
    {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        let bad = |why: &str| format!("-o {option}: {why}");
        match (key, value) {
            ("max_msg", Some(v)) => {
                limits.max_message_size = u32::try_from(parse_size(v).map_err(|e| bad(&e))?)
                    .map_err(|_| bad("too large"))?
            }
            ("timeout", Some(v)) => {
                limits.read_timeout = ReadTimeout::parse_millis(v)
                    .map_err(|_| bad("expected milliseconds, or -1 for forever"))?
            }
            ("quota_messages", Some(v)) => {
                limits.quota_messages = v.parse().map_err(|_| bad("expected a whole number"))?
            }
            ("quota_bytes", Some(v)) => limits.quota_bytes = parse_size(v).map_err(|e| bad(&e))?,
            ("max_memory", Some(v)) => max_memory = parse_size(v).map_err(|e| bad(&e))?,
            ("max_entries", Some(v)) => max_entries = parse_count(v).map_err(|e| bad(&e))?,
            ("user_entries", Some(v)) => user_entries = Some(parse_count(v).map_err(|e| bad(&e))?),
            ("user_memory", Some(v)) => user_memory = Some(parse_size(v).map_err(|e| bad(&e))?),
            ("threads", Some(v)) => {
                threads = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_THREADS).contains(n))
                    .ok_or_else(|| bad(&format!("expected 1 to {MAX_THREADS}")))?
            }
            ("user", Some(v)) if !v.is_empty() => user = Some(v.to_owned()),
            ("keep_empty", None) => keep_empty = true,
            ("allow_other", None) => allow_other = true,
            ("io_uring", None) => transport = Transport::IoUring,
            ("no_io_uring", None) => transport = Transport::Classic,
            (k, v) if BridgeRequest::takes(k) => bridge.set(k, v).map_err(|why| bad(&why))?,
            (k, None) if IGNORED_OPTIONS.contains(&k) || k.starts_with("x-") => {}
            (
                "max_msg" | "timeout" | "quota_messages" | "quota_bytes" | "max_memory"
                | "max_entries" | "user_entries" | "user_memory" | "threads",
                None,
            ) => {
                return Err(bad("needs a value"));
            }
            ("keep_empty" | "allow_other" | "io_uring" | "no_io_uring", Some(_)) => {
                return Err(bad("takes no value"));
            }
            ("ro", None) => return Err(bad("a mailslot mount cannot be read-only")),
            _ => return Err(bad("unknown option")),
        }
    }
    limits
        .validate(transport_max)
        .map_err(|why| format!("-o: {why}"))?;
    if max_memory < message_cost(limits.max_message_size as usize) {
        return Err("-o max_memory: must hold at least one largest message".to_owned());
    }
    let largest = message_cost(limits.max_message_size as usize);
    let user_memory = user_memory.unwrap_or((max_memory / USER_SHARE_DIVISOR).max(largest));
    if user_memory < largest {
        return Err("-o user_memory: must hold at least one largest message".to_owned());
    }
    Ok(MountOptions {
        defaults: SlotDefaults {
            limits,
            keep_empty,
            max_memory,
            max_entries,
            user_entries: user_entries.unwrap_or(max_entries.div_ceil(USER_SHARE_DIVISOR)),
            user_memory,
        },
        user,
        allow_other,
        bridge,
        threads,
        transport,
    })
}

/// Directories and slots a mount holds at most unless `-o max_entries`
/// says otherwise: a hundred times what a busy machine uses (an
/// application makes a handful of slots per user or session), so that no
/// normal use meets it, yet at the measured cost of a slot (docs/limits.md)
/// all of them take about 150 MB, well under the memory ceiling.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

/// Unless `-o user_entries` / `-o user_memory` say otherwise, one user may
/// take a quarter of the mount's entries and memory: one user alone can
/// never leave the others less than three quarters.
const USER_SHARE_DIVISOR: u64 = 4;

/// The memory ceiling when `-o max_memory` is not given: a quarter of the
/// machine's RAM, at most 1 GiB. Small enough that a flood of messages is
/// refused before the kernel's OOM killer picks the daemon, large enough
/// that sixteen slots can each fill the default 64 MiB quota.
fn default_max_memory() -> u64 {
    const CAP: u64 = 1 << 30;
    // SAFETY: sysconf has no preconditions.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    match (u64::try_from(pages), u64::try_from(page_size)) {
        (Ok(pages), Ok(size)) if pages > 0 => (pages.saturating_mul(size) / 4).min(CAP),
        _ => CAP,
    }
}

/// A count of at least 1.
fn parse_count(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| "expected a whole number of at least 1".to_owned())
}

/// A byte count with an optional K, M or G (binary) suffix.
fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1 << 10),
        Some((i, 'm' | 'M')) => (&text[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| "expected a size in bytes (K, M, G suffixes allowed)".to_owned())
}

/// Turns `\\.\mailslot\a\b` into `/mailslot/a/b`; other paths pass as given.
pub fn slot_path(arg: &str) -> PathBuf {
    let lower = arg.to_ascii_lowercase();
    match lower.strip_prefix(r"\\.\mailslot\") {
        Some(_) => {
            let rest = &arg[r"\\.\mailslot\".len()..];
            PathBuf::from("/mailslot").join(rest.replace('\\', "/"))
        }
        None => PathBuf::from(arg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u32 = 1 << 20;

    fn parse(opts: &str) -> Result<MountOptions, String> {
        parse_mount_options(&[opts.to_owned()], MAX)
    }

    #[test]
    fn every_documented_option_is_accepted() {
        let o =
            parse("max_msg=1k,timeout=250,quota_messages=10,quota_bytes=1M,keep_empty,allow_other")
                .unwrap();
        assert!(o.defaults.max_memory > 1 << 20 && o.defaults.max_memory <= 1 << 30);
        assert_eq!(o.user, None);
        assert_eq!(o.threads, DEFAULT_THREADS);
        let ceiling = parse("max_memory=64M,user=nobody,threads=1").unwrap();
        assert_eq!(ceiling.defaults.max_memory, 64 << 20);
        assert_eq!(ceiling.threads, 1);
        assert_eq!(ceiling.user.as_deref(), Some("nobody"));
        assert_eq!(o.defaults.limits.max_message_size, 1024);
        assert_eq!(
            o.defaults.limits.read_timeout,
            ReadTimeout::After(std::time::Duration::from_millis(250))
        );
        assert_eq!(o.defaults.limits.quota_messages, 10);
        assert_eq!(o.defaults.limits.quota_bytes, 1 << 20);
        assert!(o.defaults.keep_empty && o.allow_other);
        assert_eq!(parse("").unwrap().defaults.limits, Limits::default());
        assert!(parse("rw,nosuid,nodev,x-systemd.automount,_netdev").is_ok());
    }

    #[test]
    fn entry_ceilings_and_user_shares() {
        let d = parse("max_memory=64M").unwrap().defaults;
        assert_eq!(d.max_entries, DEFAULT_MAX_ENTRIES);
        assert_eq!(d.user_entries, DEFAULT_MAX_ENTRIES / 4);
        assert_eq!(d.user_memory, 16 << 20);
        let d = parse("max_entries=10,user_entries=3,user_memory=1M")
            .unwrap()
            .defaults;
        assert_eq!(
            (d.max_entries, d.user_entries, d.user_memory),
            (10, 3, 1 << 20)
        );
        assert_eq!(parse("max_entries=5").unwrap().defaults.user_entries, 2);
    }

    #[test]
    fn bad_options_name_themselves() {
        for (opts, needle) in [
            ("frobnicate", "-o frobnicate: unknown option"),
            ("max_msg=abc", "-o max_msg=abc: expected a size"),
            ("max_msg", "-o max_msg: needs a value"),
            ("timeout=-7", "-o timeout=-7: expected milliseconds"),
            ("keep_empty=1", "takes no value"),
            ("max_msg=2M", "max message size must be between"),
            (
                "max_memory=1K",
                "-o max_memory: must hold at least one largest message",
            ),
            ("quota_messages=0", "at least 1"),
            ("threads=0", "-o threads=0: expected 1 to 64"),
            ("threads", "-o threads: needs a value"),
            (
                "max_entries=0",
                "-o max_entries=0: expected a whole number of at least 1",
            ),
            (
                "user_entries=x",
                "-o user_entries=x: expected a whole number",
            ),
            ("user_memory", "-o user_memory: needs a value"),
            ("user_memory=lots", "-o user_memory=lots: expected a size"),
            (
                "user_memory=1K",
                "-o user_memory: must hold at least one largest message",
            ),
        ] {
            let err = parse(opts).unwrap_err();
            assert!(err.contains(needle), "{opts}: {err}");
        }
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn mount_helper_argument_forms() {
        let helper = |words: &[&str]| helper_mount(&argv(words));
        let args = helper(&[
            "/sbin/mount.fuse.mailslotfs",
            "none",
            "/mailslot",
            "-o",
            "rw,max_msg=1k",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(args.source.as_deref(), Some("none"));
        assert_eq!(args.dir, PathBuf::from("/mailslot"));
        assert_eq!(args.options, ["rw,max_msg=1k"]);
        assert!(!args.foreground && !args.dry_run);
        // mount.fuse3's form, and mount(8)'s flags.
        let args = helper(&["mailslotfs", "src", "/m", "-v", "-n", "-s", "-f", "-o", "x"]);
        let args = args.unwrap().unwrap();
        assert!(args.dry_run && args.verbose == 1);
        assert!(
            helper(&["/sbin/mount.mailslotfs", "a", "/m", "-t", FS_TYPE])
                .unwrap()
                .is_ok()
        );
        // Ordinary command lines are not helper calls.
        assert!(helper(&["mailslotfs", "mount", "/m"]).is_none());
        assert!(helper(&["mailslotfs", "ls"]).is_none());
        assert!(helper(&["mailslotfs", "--help", "x"]).is_none());
        // Helper calls that cannot work say why.
        for (words, needle) in [
            (&["mount.mailslotfs", "/m"][..], "usage: "),
            (&["mount.mailslotfs", "a", "/m", "-o"], "-o: needs a value"),
            (&["mount.mailslotfs", "a", "/m", "-t", "ext4"], "-t ext4"),
            (&["mount.mailslotfs", "a", "/m", "-N", "1"], "-N"),
            (&["mount.mailslotfs", "a", "/m", "-w"], "-w: unknown"),
        ] {
            let err = helper(words).unwrap().unwrap_err();
            assert!(err.contains(needle), "{words:?}: {err}");
        }
        assert!(parse("ro").unwrap_err().contains("read-only"));
    }

    #[test]
    fn usage_errors_are_one_line_naming_the_command() {
        let line = |words: &[&str]| {
            let words = argv(words);
            usage_error(&Cli::try_parse_from(&words).unwrap_err(), &words)
        };
        for (words, want) in [
            (
                &["mailslotfs", "mount", "--bogus", "/m"][..],
                "unexpected argument '--bogus' found (see mailslotfs mount --help)",
            ),
            (
                &["mailslotfs", "frob"],
                "unrecognized subcommand 'frob' (see mailslotfs --help)",
            ),
            (
                &["mailslotfs", "completions", "tcsh"],
                "invalid value 'tcsh' for '<SHELL>' [possible values: bash, elvish, fish, \
                 powershell, zsh] (see mailslotfs completions --help)",
            ),
            (
                &["mailslotfs", "mount"],
                "the following required arguments were not provided: <DIR> \
                 (see mailslotfs mount --help)",
            ),
            (&["mailslotfs"], "no command given (see mailslotfs --help)"),
            (
                &["mailslotfs", "ls", "--jsn"],
                "unexpected argument '--jsn' found (see mailslotfs status --help)",
            ),
        ] {
            assert_eq!(line(words), want, "{words:?}");
        }
        assert!(parse_command_line(argv(&["mailslotfs", "ls", "/m"])).is_ok());
    }

    fn bridge(opts: &str, flags: &[&str]) -> Result<Option<Settings>, String> {
        let mut options = parse(opts)?;
        let cli = Cli::try_parse_from(["mailslotfs", "mount", "/m"].iter().chain(flags))
            .map_err(|e| e.to_string())?;
        let Command::Mount(args) = cli.command else {
            unreachable!()
        };
        options.bridge.add_flags(&args.bridge)?;
        options.bridge.finish()
    }

    #[test]
    fn bridge_flags_and_options_say_the_same() {
        assert_eq!(bridge("", &[]).unwrap(), None);
        let flags = bridge(
            "",
            &[
                "--bridge",
                "--netbios-name=alpha",
                "--domain",
                "msldom",
                "--bind=10.0.0.1",
                "--broadcast=10.0.0.255",
                "--port=1138",
                "--peer=beta=10.0.0.2",
                "--peer=GAMMA=10.0.0.3",
                "--allow=10.0.0.0/24",
                "--multicast=239.1.2.3",
                "--wins=10.0.0.9",
                "--no-name-service",
            ],
        )
        .unwrap()
        .unwrap();
        let options = bridge(
            "bridge,netbios_name=alpha,domain=msldom,bind=10.0.0.1,broadcast=10.0.0.255,\
             port=1138,peer=beta=10.0.0.2,peer=GAMMA=10.0.0.3,allow=10.0.0.0/24,\
             multicast=239.1.2.3,wins=10.0.0.9,no_name_service",
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(flags, options);
        assert_eq!(flags.netbios_name.as_deref(), Some("ALPHA"));
        assert_eq!(
            flags.peers[0],
            ("BETA".to_owned(), Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(flags.port, 1138);
        assert_eq!(flags.wins, Some(Ipv4Addr::new(10, 0, 0, 9)));
        assert!(flags.no_name_service);
        assert_eq!(bridge("bridge", &[]).unwrap().unwrap().port, 138);
    }

    #[test]
    fn every_bridge_flag_is_an_option() {
        let cli = Cli::command();
        let mount = cli.find_subcommand("mount").unwrap();
        let flags = mount
            .get_arguments()
            .filter(|a| a.get_help_heading() == Some(BRIDGE_HEADING))
            .filter_map(|a| a.get_long());
        for long in flags {
            assert!(BridgeRequest::takes(long), "--{long}");
            assert!(BridgeRequest::takes(&long.replace('-', "_")), "--{long}");
        }
    }

    #[test]
    fn bad_bridge_values_name_themselves() {
        for (opts, flags, needle) in [
            ("", &["--peer=SUE"][..], "--peer SUE: expected NAME=ADDR"),
            (
                "",
                &["--bridge", "--bind=nope"],
                "--bind nope: nope: not an IPv4 address",
            ),
            ("bridge,port=0", &[], "-o port=0: expected a port number"),
            ("bridge,allow=10.0.0.0/40", &[], "-o allow=10.0.0.0/40: /40"),
            ("bridge,multicast=10.0.0.1", &[], "not a multicast group"),
            (
                "bridge,netbios_name=WAY-TOO-LONG-NAME",
                &[],
                "-o netbios_name=WAY-TOO-LONG-NAME: NetBIOS name is 17 bytes",
            ),
            ("bridge=1", &[], "-o bridge=1: takes no value"),
            ("domain=X", &[], "domain: needs --bridge"),
            ("", &["--peer=A=10.0.0.1"], "peer: needs --bridge"),
        ] {
            let err = bridge(opts, flags).unwrap_err();
            assert!(err.contains(needle), "{opts} {flags:?}: {err}");
        }
    }

    #[test]
    fn windows_names_map_to_the_mount() {
        assert_eq!(
            slot_path(r"\\.\mailslot\app\in"),
            PathBuf::from("/mailslot/app/in")
        );
        assert_eq!(slot_path(r"\\.\MAILSLOT\x"), PathBuf::from("/mailslot/x"));
        assert_eq!(slot_path("/tmp/m/x"), PathBuf::from("/tmp/m/x"));
    }
}
