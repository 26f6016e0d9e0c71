#!/usr/bin/env bash
# Installs mailslotfs: the binary, the mount helper links mount(8) looks
# for (`mount -t fuse.mailslotfs` runs /sbin/mount.fuse.mailslotfs, and
# `-t mailslotfs` runs /sbin/mount.mailslotfs), the systemd unit examples
# and the example scripts.
#
#   PREFIX   where the binary goes, under bin/      (default /usr/local)
#   SBINDIR  where mount(8) finds helpers           (default /sbin)
#   DESTDIR  staging root prepended to every path   (default: none)
#   BIN      an already built binary to install     (default: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
SBINDIR=${SBINDIR:-/sbin}
DESTDIR=${DESTDIR:-}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/mailslotfs
fi

install -D -m 0755 "$BIN" "$DESTDIR$PREFIX/bin/mailslotfs"
install -d "$DESTDIR$SBINDIR"
for helper in mount.mailslotfs mount.fuse.mailslotfs; do
  ln -sfn "$PREFIX/bin/mailslotfs" "$DESTDIR$SBINDIR/$helper"
done
units="$DESTDIR$PREFIX/lib/systemd/system"
install -d "$units"
sed "s|/usr/local/bin/mailslotfs|$PREFIX/bin/mailslotfs|g" scripts/mailslotfs.service \
  >"$units/mailslotfs.service"
install -m 0644 scripts/mailslot.mount "$units/mailslot.mount"
examples="$DESTDIR$PREFIX/share/doc/mailslotfs/examples"
install -d "$examples"
install -m 0644 scripts/examples/* "$examples/"
chmod 0755 "$examples"/*.sh "$examples"/*.py

echo "installed $PREFIX/bin/mailslotfs, $SBINDIR/mount.{,fuse.}mailslotfs," \
  "systemd units in $PREFIX/lib/systemd/system, examples in $PREFIX/share/doc/mailslotfs"
