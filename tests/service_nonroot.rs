//! A user other than root mounts through fusermount3 (issue 5, SPEC §6),
//! and `allow_other` needs `user_allow_other` in /etc/fuse.conf, which the
//! refusal says.
//!
//! Runs as uid 65534 (nobody) in a private mount namespace, where test
//! copies of /etc/fuse.conf are bind-mounted over the real one: the
//! machine's own file is never touched.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

const NOBODY: u32 = 65534;

const SCRIPT: &str = r#"
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups --reset-env "$@"; }
mount --bind "$CONF_DENY" /etc/fuse.conf

# Debian's udev rule makes /dev/fuse mode 0666. Where it is not (some
# containers), a user's mount says so; then give this namespace a 0666 node.
if [ "$(stat -c %a /dev/fuse)" != 666 ]; then
  if as_user "$BIN" mount "$D1" 2>"$ERR"; then echo "mounted without /dev/fuse access"; exit 1; fi
  grep -q '^mailslotfs: /dev/fuse: ' "$ERR" || { cat "$ERR"; exit 1; }
  mount -t tmpfs -o mode=755 none "$DEV"
  mknod -m 666 "$DEV/fuse" c "0x$(stat -c %t /dev/fuse)" "0x$(stat -c %T /dev/fuse)"
  mount --bind "$DEV/fuse" /dev/fuse
fi

# A directory the user may not write to: fusermount3 refuses, and says why
# in our one line.
if as_user "$BIN" mount "$D3" 2>"$ERR3"; then echo "mounted on root's directory"; exit 1; fi

as_user "$BIN" mount "$D1"
grep " $D1 fuse.mailslotfs " /proc/self/mounts | grep -q "user_id=65534"
as_user bash -c 'exec 3<>"$0/x"; "$1" send "$0/x" hello; dd bs=64k count=1 <&3 2>/dev/null' "$D1" "$BIN" >"$OUT"
[ "$(cat "$OUT")" = hello ] || { echo "read back: $(cat "$OUT")"; exit 1; }
# Without allow_other, only the user who mounted gets in: not even root.
if stat "$D1/." >/dev/null 2>&1; then echo "root got into a private mount"; exit 1; fi

if as_user "$BIN" mount "$D2" -o allow_other 2>"$ERR"; then echo "allow_other was allowed"; exit 1; fi
mount --bind "$CONF_ALLOW" /etc/fuse.conf
as_user "$BIN" mount "$D2" -o allow_other
stat "$D2/." >/dev/null

as_user fusermount3 -u "$D1"
check_gone "$D1"
for pid in $(grep -ls "$D2" /proc/[0-9]*/cmdline | cut -d/ -f3); do kill -TERM "$pid" 2>/dev/null || true; done
check_gone "$D2"
grep -q "$D2" /proc/self/mounts && { echo "SIGTERM left the mount"; exit 1; }
echo ok
"#;

#[test]
fn unprivileged_user_mounts_through_fusermount3_and_allow_other_needs_fuse_conf() {
    if !root_with_fuse("becoming an unprivileged user") || !have_program("fusermount3", "fuse3") {
        return;
    }
    let work = temp_dir("nonroot");
    let d1 = temp_dir("user-mnt");
    let d2 = temp_dir("user-other");
    let d3 = temp_dir("roots");
    let _scratch = Scratch(vec![d1.clone(), d2.clone(), d3.clone(), work.clone()]);
    // The user must reach the binary and own the mount points.
    let bin = work.join("mailslotfs");
    std::fs::copy(BIN, &bin).unwrap();
    for dir in [&work, &d1, &d2, &d3] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for dir in [&d1, &d2] {
        std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let deny = work.join("fuse.conf.deny");
    let allow = work.join("fuse.conf.allow");
    std::fs::write(&deny, "#user_allow_other\nmount_max = 1000\n").unwrap();
    std::fs::write(&allow, "user_allow_other\n").unwrap();
    let dev = work.join("dev");
    std::fs::create_dir(&dev).unwrap();
    let err = work.join("err");
    let err3 = work.join("err3");
    let out_file = work.join("out");
    bash_in_private_namespace(
        SCRIPT,
        &[
            ("BIN", &bin),
            ("D1", &d1),
            ("D2", &d2),
            ("CONF_DENY", &deny),
            ("CONF_ALLOW", &allow),
            ("DEV", &dev),
            ("ERR", &err),
            ("D3", &d3),
            ("ERR3", &err3),
            ("OUT", &out_file),
        ],
    );
    let refusal = std::fs::read_to_string(&err3).unwrap();
    assert_eq!(refusal.lines().count(), 1, "{refusal}");
    assert!(
        refusal.starts_with("mailslotfs: ")
            && refusal.contains(": cannot mount: fusermount3: ")
            && refusal.contains("write access"),
        "{refusal}"
    );
    let refusal = std::fs::read_to_string(&err).unwrap();
    assert_eq!(refusal.lines().count(), 1, "{refusal}");
    assert!(
        refusal.starts_with("mailslotfs: -o allow_other: ") && refusal.contains("user_allow_other"),
        "{refusal}"
    );
}
