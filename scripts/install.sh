#!/usr/bin/env bash
# Installs mailslotfs: the binary, the mount helper links mount(8) looks
# for (`mount -t fuse.mailslotfs` runs /sbin/mount.fuse.mailslotfs, and
# `-t mailslotfs` runs /sbin/mount.mailslotfs), the systemd unit examples,
# the example scripts, the man page mailslotfs(8) and the bash, zsh and
# fish completions (each where that shell looks under $PREFIX/share).
#
#   PREFIX   where the binary goes, under bin/      (default /usr/local)
#   SBINDIR  where mount(8) finds helpers           (default /sbin)
#   DESTDIR  staging root prepended to every path   (default: none)
#   BIN      an already built binary to install     (default: cargo build --release,
#            then ${CARGO_TARGET_DIR:-target}/release/mailslotfs, where cargo puts it)
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
SBINDIR=${SBINDIR:-/sbin}
DESTDIR=${DESTDIR:-}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/mailslotfs
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

install -D -m 0644 man/mailslotfs.8 "$DESTDIR$PREFIX/share/man/man8/mailslotfs.8"
# The binary writes its own completions, so they know every flag it takes.
# zsh looks in vendor-completions under /usr (packages), in site-functions
# under /usr/local.
share="$DESTDIR$PREFIX/share"
zsh_dir=site-functions
[ "$PREFIX" = /usr ] && zsh_dir=vendor-completions
for completion in bash:bash-completion/completions/mailslotfs \
  "zsh:zsh/$zsh_dir/_mailslotfs" fish:fish/vendor_completions.d/mailslotfs.fish; do
  install -d "$(dirname "$share/${completion#*:}")"
  "$BIN" completions "${completion%%:*}" >"$share/${completion#*:}"
done

echo "installed $PREFIX/bin/mailslotfs, $SBINDIR/mount.{,fuse.}mailslotfs," \
  "systemd units in $PREFIX/lib/systemd/system, examples in $PREFIX/share/doc/mailslotfs," \
  "man page mailslotfs(8), completions for bash, zsh and fish"
