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

/// Mounts through the installed package's helper: two read-only overlays
/// in a private mount namespace lay the throwaway root's /sbin and /usr/bin
/// over the real ones, so the real mount(8) finds the package's
/// /sbin/mount.fuse.mailslotfs, whose absolute link to /usr/bin/mailslotfs
/// resolves to the package's binary, exactly as on a machine where the
/// package is installed (a bind mount could not do it: /usr/bin/mailslotfs
/// does not exist here to mount over, and hiding all of /usr/bin would
/// hide mount(8) and bash). The daemon found serving the mount must be that
/// installed binary. The host's own /sbin and /usr/bin are untouched.
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
    ("./usr/share/doc/mailslotfs/copyright", None),
    ("./usr/share/doc/mailslotfs/changelog.gz", None),
    ("./usr/share/doc/mailslotfs/examples/chat.sh", None),
    ("./usr/share/doc/mailslotfs/examples/client.c", None),
];

/// Runs scripts/package.sh on the test's binary into `out`, dating the
/// files as given; returns the package's path (its last line of output).
fn build_package(out: &Path, epoch: &str) -> PathBuf {
    let built = run(
        Command::new(repo().join("scripts/package.sh"))
            .env("BIN", BIN)
            .env("OUTDIR", out)
            .env("SOURCE_DATE_EPOCH", epoch),
        Duration::from_secs(120),
    );
    PathBuf::from(ok(&built).lines().last().unwrap_or_default())
}

/// `dpkg` on a throwaway root, with its own database
/// (`ROOT/var/lib/dpkg`) and log: the machine's are never read or written.
fn dpkg_in(root: &Path, args: &[&str]) -> String {
    let log = root.join("var/log/dpkg.log");
    ok(&run(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .arg(format!("--log={}", log.display()))
            .args(args),
        CMD_TIMEOUT,
    ))
}

/// Every path under `root` but its dpkg database and log.
fn files_outside_var(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path == root.join("var") {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

#[test]
fn debian_package_holds_everything_and_mounts_through_its_helper() {
    if !have_program("dpkg-deb", "dpkg") {
        return;
    }
    let out = temp_dir("deb");
    let again = temp_dir("deb-again");
    let root = temp_dir("deb-root");
    let mnt = temp_dir("deb-mnt");
    // Kills the daemon by the PID found through its mount point and
    // unmounts, also when an assertion below fails half-way.
    let _scratch = Scratch(vec![mnt.clone(), root.clone(), out.clone(), again.clone()]);

    let epoch = "1780000000";
    let deb = build_package(&out, epoch);
    let arch = output("dpkg", &["--print-architecture"]).trim().to_owned();
    assert_eq!(
        deb,
        out.join(format!(
            "mailslotfs_{}_{arch}.deb",
            env!("CARGO_PKG_VERSION")
        )),
        "last line: the package"
    );
    // Reproducible: the same tree and date give the same bytes.
    let rebuilt = build_package(&again, epoch);
    assert!(
        std::fs::read(&deb).unwrap() == std::fs::read(&rebuilt).unwrap(),
        "two builds of one tree differ"
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

    // Installed as `dpkg -i` installs it, into a throwaway root with an
    // empty database of its own. --force-depends: the root has no fuse3
    // or libc6; --path-include: whatever the host's dpkg.cfg.d leaves out
    // (slim images drop /usr/share/doc and man), the package's files land.
    let host_db = std::fs::read("/var/lib/dpkg/status").ok();
    for dir in ["var/lib/dpkg", "var/log"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    dpkg_in(
        &root,
        &["--force-depends", "--path-include=/*", "-i", deb_arg],
    );
    let status = dpkg_in(&root, &["-s", "mailslotfs"]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    for (file, target) in PACKAGE_FILES {
        let path = root.join(file.trim_start_matches("./"));
        match target {
            Some(target) => assert_eq!(std::fs::read_link(&path).unwrap(), Path::new(target)),
            None => assert!(path.is_file(), "{file} not installed"),
        }
    }
    let service = root.join("usr/lib/systemd/system/mailslotfs.service");
    let service = std::fs::read_to_string(service).unwrap();
    assert!(
        service.contains("ExecStart=/usr/bin/mailslotfs mount"),
        "{service}"
    );
    check_doc_files(&root.join("usr/share/doc/mailslotfs"));
    check_man_page(&root.join("usr/share/man"));
    if root_with_fuse("mounting through the package's helper") {
        bash_in_private_namespace(
            HELPER_SCRIPT,
            &[("ROOT", &root), ("D1", &mnt), ("D2", &mnt)],
        );
    }

    // `dpkg -r` takes every file away again.
    dpkg_in(&root, &["-r", "mailslotfs"]);
    let left = files_outside_var(&root);
    assert!(left.is_empty(), "left after dpkg -r: {left:?}");
    assert!(
        std::fs::read("/var/lib/dpkg/status").ok() == host_db,
        "the machine's dpkg database changed"
    );
}

/// The copyright file is machine-readable (DEP-5) and names the licenses;
/// the changelog is one entry for this version, as dpkg reads it.
fn check_doc_files(doc: &Path) {
    let copyright = std::fs::read_to_string(doc.join("copyright")).unwrap();
    assert!(
        copyright.starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        ),
        "{copyright}"
    );
    for needle in [
        "\nFiles: *\n",
        "\nLicense: MIT or Apache-2.0\n",
        "\nLicense: MIT\n",
        "\nLicense: Apache-2.0\n",
    ] {
        assert!(
            copyright.contains(needle),
            "{needle:?} not in:\n{copyright}"
        );
    }
    let changelog = ok(&run(
        Command::new("gzip")
            .arg("-dc")
            .arg(doc.join("changelog.gz")),
        CMD_TIMEOUT,
    ));
    let first = format!(
        "mailslotfs ({}) unstable; urgency=medium\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(changelog.starts_with(&first), "{changelog}");
    if have_program("dpkg-parsechangelog", "dpkg-dev") {
        let plain = doc.join("changelog");
        std::fs::write(&plain, &changelog).unwrap();
        let parsed = output("dpkg-parsechangelog", &["-l", plain.to_str().unwrap()]);
        std::fs::remove_file(&plain).unwrap();
        let want = format!("\nVersion: {}\n", env!("CARGO_PKG_VERSION"));
        assert!(parsed.contains(&want), "{parsed}");
        assert!(parsed.contains("\nTimestamp: 1780000000\n"), "{parsed}");
    }
}

/// `man` finds mailslotfs(8) by name under `manpath` (as `man
/// mailslotfs` does once the page is installed there) and renders it
/// without a complaint.
fn check_man_page(manpath: &Path) {
    if !have_program("man", "man-db") {
        return;
    }
    let manpath = manpath.to_str().unwrap();
    let found = output("man", &["-M", manpath, "-w", "8", "mailslotfs"]);
    assert!(
        found
            .trim()
            .starts_with(&format!("{manpath}/man8/mailslotfs.8")),
        "{found}"
    );
    let rendered = run(
        Command::new("man")
            .args(["-M", manpath, "8", "mailslotfs"])
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"),
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
        "netbios_name=NAME",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
}

/// `scripts/install.sh` into a staging root: `man -M ROOT/usr/local/share/man
/// mailslotfs` (what `man mailslotfs` does with the default MANPATH once
/// installed for real) finds and renders the page.
#[test]
fn man_finds_the_page_install_sh_installs() {
    let stage = temp_dir("man-stage");
    let _scratch = Scratch(vec![stage.clone()]);
    ok(&run(
        Command::new(repo().join("scripts/install.sh"))
            .env("DESTDIR", &stage)
            .env("BIN", BIN)
            .env_remove("PREFIX")
            .env_remove("SBINDIR"),
        Duration::from_secs(30),
    ));
    check_man_page(&stage.join("usr/local/share/man"));
}
