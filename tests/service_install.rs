//! Installing and mounting like any other FUSE file system (issue 5):
//! `scripts/install.sh` into a staging root, then real `mount -t
//! fuse.mailslotfs`, `mount -t mailslotfs`, an fstab line and `umount`.
//!
//! mount(8) looks for its helpers in /sbin only, so the mounts run in a
//! private mount namespace where the staged /sbin and /usr/local/bin are
//! bind-mounted over the real ones: the real mount(8) runs the real
//! installed helper, and nothing is installed on the machine itself.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn install(stage: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    let out = run(
        Command::new(script)
            .env("DESTDIR", stage)
            .env("BIN", BIN)
            .env_remove("PREFIX")
            .env_remove("SBINDIR"),
        Duration::from_secs(30),
    );
    ok(&out);
}

#[test]
fn install_script_lays_out_binary_helpers_units_examples_man_page_and_completions() {
    let stage = temp_dir("stage");
    let _scratch = Scratch(vec![stage.clone()]);
    install(&stage);
    let bin = stage.join("usr/local/bin/mailslotfs");
    assert!(bin.is_file(), "binary installed");
    for helper in ["mount.mailslotfs", "mount.fuse.mailslotfs"] {
        let link = std::fs::read_link(stage.join("sbin").join(helper)).unwrap();
        assert_eq!(link, Path::new("/usr/local/bin/mailslotfs"), "{helper}");
    }
    let units = stage.join("usr/local/lib/systemd/system");
    let service = std::fs::read_to_string(units.join("mailslotfs.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/local/bin/mailslotfs mount --foreground"));
    assert!(units.join("mailslot.mount").is_file());
    let examples = stage.join("usr/local/share/doc/mailslotfs/examples");
    for example in [
        "chat.sh",
        "server.py",
        "client.py",
        "client.c",
        "messenger.py",
    ] {
        assert!(examples.join(example).is_file(), "{example}");
    }
    let share = stage.join("usr/local/share");
    let page = std::fs::read_to_string(share.join("man/man8/mailslotfs.8")).unwrap();
    assert!(page.contains("\n.TH MAILSLOTFS 8 "), "{page}");
    for (completion, says) in [
        (
            "bash-completion/completions/mailslotfs",
            "complete -F _mailslotfs",
        ),
        ("zsh/site-functions/_mailslotfs", "#compdef mailslotfs"),
        (
            "fish/vendor_completions.d/mailslotfs.fish",
            "complete -c mailslotfs",
        ),
    ] {
        let script = std::fs::read_to_string(share.join(completion)).unwrap();
        assert!(script.contains(says), "{completion}: {script}");
    }
}

/// Without `BIN`, install.sh and package.sh build with cargo and take the
/// binary from where cargo put it: `$CARGO_TARGET_DIR/release` when set (a
/// shared build directory), not `target/release`. A stand-in `cargo` first
/// in PATH "builds" by copying the test's binary there, so this checks the
/// scripts without a release build.
#[test]
fn scripts_take_the_binary_from_cargo_target_dir() {
    let scratch = temp_dir("target-dir");
    let _scratch = Scratch(vec![scratch.clone()]);
    let (fake_bin, target, stage) = (
        scratch.join("path"),
        scratch.join("target"),
        scratch.join("stage"),
    );
    std::fs::create_dir_all(&fake_bin).unwrap();
    let cargo = fake_bin.join("cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/sh\n[ \"$*\" = \"build --release --quiet\" ] || exit 1\n\
             mkdir -p \"$CARGO_TARGET_DIR/release\"\n\
             cp {BIN} \"$CARGO_TARGET_DIR/release/mailslotfs\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake_bin.display(), std::env::var("PATH").unwrap());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    ok(&run(
        Command::new(script)
            .env("PATH", &path)
            .env("CARGO_TARGET_DIR", &target)
            .env("DESTDIR", &stage)
            .env_remove("BIN")
            .env_remove("PREFIX")
            .env_remove("SBINDIR"),
        Duration::from_secs(30),
    ));
    let installed = std::fs::read(stage.join("usr/local/bin/mailslotfs")).unwrap();
    assert!(
        installed == std::fs::read(BIN).unwrap(),
        "not the built binary"
    );
    if !have_program("dpkg-deb", "dpkg") {
        return;
    }
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package.sh");
    let built = ok(&run(
        Command::new(package)
            .env("PATH", &path)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("BIN")
            .env_remove("OUTDIR"),
        Duration::from_secs(60),
    ));
    let deb = Path::new(built.lines().last().unwrap_or_default());
    assert_eq!(
        deb.parent(),
        Some(target.join("debian").as_path()),
        "{built}"
    );
    assert!(deb.is_file(), "{built}");
}

/// Mounts with `mount -t fuse.mailslotfs` and `-t mailslotfs` and from an
/// fstab file, uses each mount, and unmounts with `umount`.
const MOUNT_SCRIPT: &str = r#"
mount --bind "$STAGE/sbin" /sbin
mount --bind "$STAGE/usr/local/bin" /usr/local/bin
# $1: mount point, $2: the source the mount table must show
check_mounted() {
  awk -v d="$1" '$2 == d {print $1, $3}' /proc/self/mounts | grep -qx "$2 fuse.mailslotfs" ||
    { echo "not mounted as $2 fuse.mailslotfs at $1:"; grep "$1" /proc/self/mounts; exit 1; }
}
# One message in, one message out: the mount works.
round_trip() {
  exec 3<>"$1/hello"
  mailslotfs send "$1/hello" "hi there"
  got=$(dd bs=64k count=1 <&3 2>/dev/null)
  exec 3<&-
  [ "$got" = "hi there" ] || { echo "read back: $got"; exit 1; }
}

mount -t fuse.mailslotfs none "$D1" -o max_msg=1k,nofail,_netdev,x-systemd.automount
check_mounted "$D1" none
exec 3<>"$D1/opts"
[ "$(mailslotfs info "$D1/opts" | sed -n 's/^max_message_size: //p')" = 1024 ]
exec 3<&-
round_trip "$D1"
umount "$D1"
check_gone "$D1"

mount -t mailslotfs mailslots "$D1"
check_mounted "$D1" mailslots
umount "$D1"
check_gone "$D1"

echo "mailslotfs $D2 fuse.mailslotfs defaults,noauto,user,allow_other,quota_messages=5 0 0" >"$FSTAB"
mount -T "$FSTAB" "$D2"
check_mounted "$D2" mailslotfs
grep " $D2 " /proc/self/mounts | grep -q allow_other
round_trip "$D2"
umount "$D2"
check_gone "$D2"

# A bad option is one line from the helper, through mount(8).
if mount -t fuse.mailslotfs none "$D1" -o frobnicate 2>"$ERR"; then
  echo "a bad option mounted"; exit 1
fi
echo ok
"#;

#[test]
fn mount_t_fstab_and_umount_use_the_installed_helper() {
    if !root_with_fuse("mounting through mount(8) in a private namespace") {
        return;
    }
    let stage = temp_dir("stage");
    let d1 = temp_dir("mnt-t");
    let d2 = temp_dir("fstab");
    let fstab = stage.join("fstab");
    let err = stage.join("err");
    let _scratch = Scratch(vec![d1.clone(), d2.clone(), stage.clone()]);
    install(&stage);
    bash_in_private_namespace(
        MOUNT_SCRIPT,
        &[
            ("STAGE", &stage),
            ("D1", &d1),
            ("D2", &d2),
            ("FSTAB", &fstab),
            ("ERR", &err),
        ],
    );
    let err = std::fs::read_to_string(&err).unwrap();
    assert_eq!(err, "mailslotfs: -o frobnicate: unknown option\n");
}
