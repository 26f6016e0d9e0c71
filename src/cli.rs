//! Command-line arguments and the `-o` option list, parsed without side
//! effects so that every refusal is one clear line before anything starts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::slot::limits::{Limits, ReadTimeout};
use crate::slot::table::SlotDefaults;

/// Windows mailslots on Linux, as a FUSE file system.
///
/// A server creates a file under the mount (`cat <> /mailslot/chat`); that
/// file is its mailslot. Any other process writes whole messages into it
/// (`echo hi > /mailslot/chat`); only the server reads them, one message per
/// read.
#[derive(Parser, Debug)]
#[command(
    name = "mailslotfs",
    version,
    propagate_version = true,
    after_help = "As a mount helper (installed as /sbin/mount.fuse.mailslotfs): \
                  mount -t fuse.mailslotfs none /mailslot -o allow_other\n\
                  /etc/fstab: mailslotfs /mailslot fuse.mailslotfs allow_other,nofail 0 0"
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
    Mount(MountArgs),
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
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// Directory to mount on (must exist).
    pub dir: PathBuf,
    /// Stay attached to the terminal and log to stderr.
    #[arg(short, long)]
    pub foreground: bool,
    /// Comma-separated options: max_msg=BYTES, timeout=MS (-1 = forever),
    /// quota_messages=N, quota_bytes=BYTES, keep_empty, allow_other. Sizes
    /// take K, M or G suffixes. May be given more than once.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Log more: -v what the daemon does, -vv also every request it
    /// refused, with the asking pid. Default: warnings and errors only.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log every FUSE request as well as what -vv logs.
    #[arg(long)]
    pub debug: bool,
    /// What the mount table shows as the source (mount(8)'s SOURCE).
    #[arg(skip)]
    pub source: Option<String>,
    /// Check everything, but do not mount (mount(8)'s `-f`).
    #[arg(skip)]
    pub dry_run: bool,
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

fn parse_helper_args(args: &[OsString]) -> Result<MountArgs, String> {
    let mut positional = Vec::new();
    let mut mount = MountArgs {
        dir: PathBuf::new(),
        foreground: false,
        options: Vec::new(),
        verbose: 0,
        debug: false,
        source: None,
        dry_run: false,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub defaults: SlotDefaults,
    pub allow_other: bool,
}

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
    let mut allow_other = false;
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
            ("keep_empty", None) => keep_empty = true,
            ("allow_other", None) => allow_other = true,
            (k, None) if IGNORED_OPTIONS.contains(&k) || k.starts_with("x-") => {}
            ("max_msg" | "timeout" | "quota_messages" | "quota_bytes", None) => {
                return Err(bad("needs a value"));
            }
            ("keep_empty" | "allow_other", Some(_)) => return Err(bad("takes no value")),
            ("ro", None) => return Err(bad("a mailslot mount cannot be read-only")),
            _ => return Err(bad("unknown option")),
        }
    }
    limits
        .validate(transport_max)
        .map_err(|why| format!("-o: {why}"))?;
    Ok(MountOptions {
        defaults: SlotDefaults { limits, keep_empty },
        allow_other,
    })
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
    fn bad_options_name_themselves() {
        for (opts, needle) in [
            ("frobnicate", "-o frobnicate: unknown option"),
            ("max_msg=abc", "-o max_msg=abc: expected a size"),
            ("max_msg", "-o max_msg: needs a value"),
            ("timeout=-7", "-o timeout=-7: expected milliseconds"),
            ("keep_empty=1", "takes no value"),
            ("max_msg=2M", "max message size must be between"),
            ("quota_messages=0", "at least 1"),
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
    fn windows_names_map_to_the_mount() {
        assert_eq!(
            slot_path(r"\\.\mailslot\app\in"),
            PathBuf::from("/mailslot/app/in")
        );
        assert_eq!(slot_path(r"\\.\MAILSLOT\x"), PathBuf::from("/mailslot/x"));
        assert_eq!(slot_path("/tmp/m/x"), PathBuf::from("/tmp/m/x"));
    }
}
