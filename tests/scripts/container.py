#!/usr/bin/env python3
"""Runs a command the way a container runtime does, for tests/mount_containers.rs.

container.py UID_BASE SRC DST CMD...

The command gets its own user namespace (root inside is UID_BASE outside, as
with a runtime's user-namespace remapping; 65536 ids), mount namespace (every
mount a slave of the host's, so later host mounts propagate in), pid
namespace (the command is pid 1) and network namespace (no interfaces but
loopback), with SRC bind-mounted at DST, as `docker run -v SRC:DST:rslave`
does. Must start as root in the initial user namespace: it writes the id maps
itself. Every process it makes dies with it (PR_SET_PDEATHSIG).
"""
import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SLAVE = 1 << 19
PR_SET_PDEATHSIG = 1
IDS = 65536

libc = ctypes.CDLL(None, use_errno=True)


def check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        sys.exit("container.py: %s: %s" % (what, os.strerror(err)))


def die_with_parent():
    check(libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl")


def main():
    base, src, dst, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    unshared_r, unshared_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET), "unshare")
        os.write(unshared_w, b"u")
        if os.read(mapped_r, 1) != b"m":
            sys.exit("container.py: the id maps were not written")
        # Root of the new user namespace: UID_BASE outside.
        os.setgroups([])
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        # Only now: a change of credentials clears the parent-death signal.
        die_with_parent()
        check(libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None), "make / a slave")
        check(libc.mount(src.encode(), dst.encode(), None, MS_BIND | MS_REC, None),
              "bind %s at %s" % (src, dst))
        inner = os.fork()
        if inner == 0:
            die_with_parent()
            os.execvp(cmd[0], cmd)
        _, status = os.waitpid(inner, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    if os.read(unshared_r, 1) != b"u":
        sys.exit("container.py: the namespaces were not made")
    for name in ("uid_map", "gid_map"):
        with open("/proc/%d/%s" % (pid, name), "w") as f:
            f.write("0 %d %d\n" % (base, IDS))
    os.write(mapped_w, b"m")
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


main()
