#!/usr/bin/env bash
# Builds the Debian package OUTDIR/mailslotfs_VERSION_ARCH.deb with dpkg-deb
# alone: scripts/install.sh stages the tree (PREFIX=/usr SBINDIR=/sbin) and
# this adds what Debian policy wants on top (a stripped binary, the man page
# gzipped, the copyright file and changelog in /usr/share/doc/mailslotfs,
# DEBIAN/control). Install it with `dpkg -i`. The last line printed
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
# The Cargo version and the commit, as the binary names them:
# "mailslotfs 0.1.0 (commit 9c54aca)".
version=$("$BIN" --version | awk '{print $2}')
commit=$("$BIN" --version | sed -n 's/.*(commit \(.*\))$/\1/p')
arch=$(dpkg --print-architecture)
summary=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -d -m 0755 "$root"
PREFIX=/usr SBINDIR=/sbin DESTDIR="$root" BIN="$BIN" scripts/install.sh >/dev/null
strip --strip-unneeded "$root/usr/bin/mailslotfs"
# Reproducible: every file dated by the last commit (dpkg-deb dates the
# archive members by SOURCE_DATE_EPOCH, the changelog entry is dated by
# it), so the same tree gives the same package.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# Debian policy 12.5: the copyright file, machine-readable (DEP-5).
doc=$root/usr/share/doc/mailslotfs
cat >"$doc/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mailslotfs
Comment: The binary links Rust crates statically; Cargo.lock in the sources
 names each, with its version. Their licenses are MIT, Apache-2.0 or both,
 or licenses compatible with them.

Files: *
Copyright: the mailslotfs contributors
License: MIT or Apache-2.0

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License. You may obtain a copy of
 the License at https://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
 WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
 License for the specific language governing permissions and limitations under
 the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0 can be
 found in "/usr/share/common-licenses/Apache-2.0".
COPYRIGHT
# Debian policy 12.7: the changelog. The version has no Debian revision
# (the project packages itself: a native package), so it is changelog.gz,
# not changelog.Debian.gz. One entry, for the commit packaged.
gzip -9n >"$doc/changelog.gz" <<CHANGELOG
mailslotfs ($version) unstable; urgency=medium

  * Packaged by scripts/package.sh from commit $commit.

 -- $MAINTAINER  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")
CHANGELOG
# -n: no name or time stamp in the header, so the same page gives the same bytes.
gzip -9n "$root/usr/share/man/man8/mailslotfs.8"
installed_size=$(du -sk --apparent-size "$root" | cut -f1)
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
