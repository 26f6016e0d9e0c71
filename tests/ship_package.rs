//! Shipping like a Linux system component: the committed man page is the
//! one the clap definitions generate, the completions are usable,
//! `--version` names the commit, and `scripts/package.sh` builds a Debian
//! package whose files, metadata, man page and mount helper work from a
//! throwaway root (never installed on the machine itself).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// stdout of `program args...`, which must succeed within a few seconds.
#[track_caller]
fn output(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
    ok(&run(Command::new(program).args(args), CMD_TIMEOUT))
}

#[test]
fn committed_man_page_is_the_generated_one() {
    let committed = std::fs::read_to_string(repo().join("man/mailslotfs.8")).unwrap();
    let generated = output(BIN, &["man"]);
    assert!(
        committed == generated,
        "man/mailslotfs.8 differs from what the clap definitions give; \
         regenerate it with: cargo run --quiet -- man > man/mailslotfs.8"
    );
    // Every section, every command's subsection, and what the page alone says.
    let sections = [
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "\"MOUNT OPTIONS\"",
        "\"MOUNT HELPER\"",
    ];
    let commands = [
        "mount",
        "serve",
        "send",
        "info",
        "\"status, ls\"",
        "completions",
        "man",
    ];
    let needles = (sections.iter().map(|s| format!("\n.SH {s}\n")))
        .chain(commands.iter().map(|c| format!("\n.SS {c}\n")))
        .chain(
            [
                "max_memory=BYTES",
                "no_io_uring",
                "mount.fuse.mailslotfs",
                "nofail 0 0",
            ]
            .map(String::from),
        );
    for needle in needles {
        assert!(generated.contains(&needle), "{needle}");
    }
    // Every bridge flag is listed again as the -o option it also is.
    let cli = <mailslotfs::cli::Cli as clap::CommandFactory>::command();
    let mount = cli.find_subcommand("mount").unwrap();
    let bridge: Vec<_> = mount
        .get_arguments()
        .filter(|a| a.get_help_heading() == Some(mailslotfs::cli::BRIDGE_HEADING))
        .filter_map(|a| a.get_long())
        .collect();
    assert!(bridge.len() >= 11, "{bridge:?}");
    let options = &generated[generated.find("\n.SH \"MOUNT OPTIONS\"").unwrap()..];
    for long in bridge {
        let key = format!("\n\\fB{}", long.replace('-', "_"));
        assert!(options.contains(&key), "-o {long} not under MOUNT OPTIONS");
    }
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let bash = output(BIN, &["completions", "bash"]);
    assert!(bash.contains("complete -F _mailslotfs"), "{bash}");
    assert!(bash.contains("--netbios-name"), "knows the mount flags");
    let syntax = run(
        Command::new("bash").arg("-n").arg("-c").arg(&bash),
        CMD_TIMEOUT,
    );
    ok(&syntax);
    assert!(output(BIN, &["completions", "zsh"]).starts_with("#compdef mailslotfs"));
    assert!(output(BIN, &["completions", "fish"]).contains("complete -c mailslotfs"));
    let bad = run(Command::new(BIN).args(["completions", "tcsh"]), CMD_TIMEOUT);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("mailslotfs: invalid value 'tcsh'"));
}

#[test]
fn version_names_the_cargo_version_and_the_commit() {
    let version = output(BIN, &["--version"]);
    let prefix = concat!("mailslotfs ", env!("CARGO_PKG_VERSION"), " (commit ");
    let commit = version
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{version:?}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo())
        .output();
    match head {
        Ok(head) if head.status.success() => {
            let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
            assert!(
                commit == head || commit == format!("{head}-dirty"),
                "{commit} vs HEAD {head}"
            );
        }
        _ => assert_eq!(commit, "unknown"),
    }
}

/// Mounts through the package's own helper: two read-only overlays in a
/// private mount namespace lay the extracted /sbin and /usr/bin over the
/// real ones, so the real mount(8) finds the package's
/// /sbin/mount.fuse.mailslotfs, whose absolute link to /usr/bin/mailslotfs
/// resolves to the package's binary, exactly as on a machine where the
/// package is installed (a bind mount could not do it: /usr/bin/mailslotfs
/// does not exist here to mount over, and hiding all of /usr/bin would
/// hide mount(8) and bash). The daemon found serving the mount must be that
/// extracted binary. The host's own /sbin and /usr/bin are untouched.
const HELPER_SCRIPT: &str = r#"
mount -t overlay overlay -o "ro,lowerdir=$ROOT/usr/bin:/usr/bin" /usr/bin
mount -t overlay overlay -o "ro,lowerdir=$ROOT/sbin:/sbin" /sbin
[ "$(readlink /sbin/mount.fuse.mailslotfs)" = /usr/bin/mailslotfs ]
mount -t fuse.mailslotfs pkg "$D1" -o max_msg=1k
awk -v d="$D1" '$2 == d {print $1, $3}' /proc/self/mounts | grep -qx "pkg fuse.mailslotfs" ||
  { echo "not mounted at $D1:"; cat /proc/self/mounts; exit 1; }
daemon=
for exe in /proc/[0-9]*/exe; do
  if [ "$(readlink "$exe")" = /usr/bin/mailslotfs ] &&
    grep -qs "$D1" "${exe%/exe}/cmdline"; then daemon=${exe%/exe}; fi
done
[ -n "$daemon" ] || { echo "no daemon runs /usr/bin/mailslotfs for $D1"; exit 1; }
cmp -s "$daemon/exe" "$ROOT/usr/bin/mailslotfs" || { echo "the daemon is not the package's binary"; exit 1; }
exec 3<>"$D1/hello"
mailslotfs send "$D1/hello" "from the package"
got=$(dd bs=64k count=1 <&3 2>/dev/null)
exec 3<&-
[ "$got" = "from the package" ] || { echo "read back: $got"; exit 1; }
umount "$D1"
check_gone "$D1"
echo ok
"#;

/// The files the package must hold, as `dpkg-deb -c` names them, with
/// what a symbolic link must point at.
const PACKAGE_FILES: &[(&str, Option<&str>)] = &[
    ("./usr/bin/mailslotfs", None),
    ("./sbin/mount.fuse.mailslotfs", Some("/usr/bin/mailslotfs")),
    ("./sbin/mount.mailslotfs", Some("/usr/bin/mailslotfs")),
    ("./usr/lib/systemd/system/mailslotfs.service", None),
    ("./usr/lib/systemd/system/mailslot.mount", None),
    ("./usr/share/man/man8/mailslotfs.8.gz", None),
    ("./usr/share/bash-completion/completions/mailslotfs", None),
    ("./usr/share/zsh/vendor-completions/_mailslotfs", None),
    (
        "./usr/share/fish/vendor_completions.d/mailslotfs.fish",
        None,
    ),
    ("./usr/share/doc/mailslotfs/examples/chat.sh", None),
    ("./usr/share/doc/mailslotfs/examples/client.c", None),
];

#[test]
fn debian_package_holds_everything_and_mounts_through_its_helper() {
    if !have_program("dpkg-deb", "dpkg") {
        return;
    }
    let out = temp_dir("deb");
    let root = temp_dir("deb-root");
    let mnt = temp_dir("deb-mnt");
    // Kills the daemon by the PID found through its mount point and
    // unmounts, also when an assertion below fails half-way.
    let _scratch = Scratch(vec![mnt.clone(), root.clone(), out.clone()]);

    let built = run(
        Command::new(repo().join("scripts/package.sh"))
            .env("BIN", BIN)
            .env("OUTDIR", &out),
        Duration::from_secs(120),
    );
    let stdout = ok(&built);
    let arch = output("dpkg", &["--print-architecture"]).trim().to_owned();
    let deb = out.join(format!(
        "mailslotfs_{}_{arch}.deb",
        env!("CARGO_PKG_VERSION")
    ));
    assert_eq!(
        stdout.lines().last(),
        deb.to_str(),
        "last line: the package"
    );

    let deb_arg = deb.to_str().unwrap();
    let listing = output("dpkg-deb", &["-c", deb_arg]);
    for (file, target) in PACKAGE_FILES {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().nth(5) == Some(file))
            .unwrap_or_else(|| panic!("{file} not in the package:\n{listing}"));
        assert!(line.contains(" root/root "), "{line}");
        match target {
            Some(target) => assert!(line.ends_with(&format!(" -> {target}")), "{line}"),
            None => assert!(!line.contains(" -> "), "{line}"),
        }
        if file.contains("/bin/") {
            assert!(line.starts_with("-rwxr-xr-x"), "{line}");
        }
    }

    let field = |name: &str| output("dpkg-deb", &["-f", deb_arg, name]).trim().to_owned();
    assert_eq!(field("Package"), "mailslotfs");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(field("Architecture"), arch);
    let depends = field("Depends");
    assert!(
        depends.starts_with("fuse3, ") && depends.contains("libc6"),
        "{depends}"
    );
    assert!(!field("Maintainer").is_empty());
    assert!(field("Description").starts_with(env!("CARGO_PKG_DESCRIPTION")));
    let binary_kib = std::fs::metadata(BIN).map(|m| m.len() / 1024).unwrap();
    let installed: u64 = field("Installed-Size").parse().unwrap();
    assert!(
        installed > 0 && installed <= binary_kib + 1024,
        "{installed}"
    );

    ok(&run(
        Command::new("dpkg-deb").args(["-x", deb_arg]).arg(&root),
        CMD_TIMEOUT,
    ));
    let service = root.join("usr/lib/systemd/system/mailslotfs.service");
    let service = std::fs::read_to_string(service).unwrap();
    assert!(
        service.contains("ExecStart=/usr/bin/mailslotfs mount"),
        "{service}"
    );
    check_man_page(&root);

    if !root_with_fuse("mounting through the package's helper") {
        return;
    }
    bash_in_private_namespace(
        HELPER_SCRIPT,
        &[("ROOT", &root), ("D1", &mnt), ("D2", &mnt)],
    );
}

/// `man` finds mailslotfs(8) in the extracted tree by name, and renders it
/// (`man -l`) without a complaint.
fn check_man_page(root: &Path) {
    if !have_program("man", "man-db") {
        return;
    }
    let manpath = root.join("usr/share/man");
    let found = output(
        "man",
        &["-M", manpath.to_str().unwrap(), "-w", "8", "mailslotfs"],
    );
    assert_eq!(
        Path::new(found.trim()),
        manpath.join("man8/mailslotfs.8.gz")
    );
    let rendered = run(
        Command::new("man")
            .arg("-l")
            .arg(manpath.join("man8/mailslotfs.8.gz"))
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat"),
        CMD_TIMEOUT,
    );
    let text = ok(&rendered);
    assert!(
        rendered.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    for needle in [
        "MAILSLOTFS(8)",
        "MOUNT HELPER",
        "mailslotfs mount",
        "quota_bytes=BYTES",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
}
