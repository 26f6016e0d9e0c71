#!/usr/bin/env bash
# Builds the Debian package OUTDIR/mailslotfs_VERSION_ARCH.deb with dpkg-deb
# alone: scripts/install.sh stages the tree (PREFIX=/usr SBINDIR=/sbin) and
# this adds what Debian policy wants on top (a stripped binary, the man page
# gzipped, DEBIAN/control). Install it with `dpkg -i`. The last line printed
# is the package's path. Not cargo-deb: dpkg-deb is on every Debian system,
# and install.sh's layout is then the only list of what goes where.
#
#   BIN         an already built binary to package   (default: cargo build --release)
#   OUTDIR      where the package goes                (default: $CARGO_TARGET_DIR/debian,
#                                                      or target/debian)
#   MAINTAINER  the Maintainer field                  (default: below)
#   SOURCE_DATE_EPOCH  the files' date               (default: the last commit's)
set -euo pipefail
cd "$(dirname "$0")/.."
# What the tree gets is what the package installs: 0755 and 0644, whatever
# the caller's umask.
umask 022
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/mailslotfs
fi
OUTDIR=${OUTDIR:-${CARGO_TARGET_DIR:-target}/debian}
MAINTAINER=${MAINTAINER:-mailslotfs maintainers <mailslotfs@localhost>}
# The Cargo version, as the binary names it: "mailslotfs 0.1.0 (commit ...)".
version=$("$BIN" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
summary=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -d -m 0755 "$root"
PREFIX=/usr SBINDIR=/sbin DESTDIR="$root" BIN="$BIN" scripts/install.sh >/dev/null
strip --strip-unneeded "$root/usr/bin/mailslotfs"
# -n: no name or time stamp in the header, so the same page gives the same bytes.
gzip -9n "$root/usr/share/man/man8/mailslotfs.8"
installed_size=$(du -sk --apparent-size "$root" | cut -f1)
# Reproducible: every file dated by the last commit (dpkg-deb dates the
# archive members by SOURCE_DATE_EPOCH), so the same tree gives the same
# package.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# The C libraries the binary links, with the versions its symbols need.
# dpkg-shlibdeps (dpkg-dev) finds the package's tree by its DEBIAN
# directory and reads debian/control, which may be empty.
install -d -m 0755 "$root/DEBIAN"
libs=libc6
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir "$stage/debian"
  : >"$stage/debian/control"
  libs=$(cd "$stage" && dpkg-shlibdeps -O root/usr/bin/mailslotfs |
    sed -n 's/^shlibs:Depends=//p')
fi
cat >"$root/DEBIAN/control" <<CONTROL
Package: mailslotfs
Version: $version
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $installed_size
Depends: fuse3, $libs
Section: utils
Priority: optional
Description: $summary
 A server creates a file under /mailslot; that file is its mailslot. Any
 other process writes datagrams into it with plain write(2), or echo; only
 the server reads them, one whole message per read(2). With --bridge it is
 also a NetBIOS peer, in the SMB mailslot wire format.
 .
 Includes the mount helpers (mount -t fuse.mailslotfs, fstab), systemd
 units, the man page mailslotfs(8), shell completions and examples.
CONTROL

mkdir -p "$OUTDIR"
deb="$OUTDIR/mailslotfs_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >&2
echo "$deb"
