#!/usr/bin/env bash
# Installs the system packages mailslotfs needs, when missing: `source
# scripts/deps.sh` for running it (fuse3), `source scripts/deps.sh test` for
# the test suite as well (network namespaces, Samba's nmbd, tshark, the
# Debian packaging tools and man). Does nothing on a machine that has them.
set -euo pipefail
deps_for=${1:-run}

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
need=()
have fusermount3 || need+=(fuse3)
if [ "$deps_for" = test ]; then
  have python3 || need+=(python3)
  # The network bridge's tests: namespaces (ip, nsenter), Samba's nmbd as a
  # real peer, tshark to dissect what the bridge sends.
  have ip || need+=(iproute2)
  have nsenter || need+=(util-linux)
  have nmbd || need+=(samba)
  have tshark || need+=(tshark)
  # The package test: dpkg-shlibdeps for Depends, man(1) and groff to
  # render the packaged page.
  have dpkg-shlibdeps || need+=(dpkg-dev)
  have man || need+=(man-db)
  have groff || need+=(groff-base)
fi
if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "mailslotfs: missing packages: ${need[*]} (install them as root)" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  # tshark's package asks whether non-root users may capture: no.
  echo "wireshark-common wireshark-common/install-setuid boolean false" |
    debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
  # Installing samba may start the system's nmbd, which holds UDP 138 on the
  # host; the tests run their own nmbd in a namespace and need no other.
  if [[ " ${need[*]} " == *" samba "* ]] && have systemctl; then
    systemctl disable --now nmbd smbd samba-ad-dc >/dev/null 2>&1 || true
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "mailslotfs: cargo not found: install a Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi
