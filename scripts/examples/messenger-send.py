#!/usr/bin/env python3
"""NET SEND for mailslotfs: sends one Windows Messenger message.

    messenger-send.py [--from NAME] TO TEXT...

TO is a computer name, a domain, `*` (everyone in this domain, through the
network bridge) or `.` (this machine's own messngr slot). The message is
`FROM\\0TO\\0TEXT\\0` in code page 850, as Windows' NET SEND writes it to
\\\\TO\\mailslot\\messngr; FROM defaults to this computer's NetBIOS name.
Network messages carry at most 424 bytes.
"""
import argparse
import os
import socket
import sys


def netbios_name():
    return socket.gethostname().split(".")[0].upper()[:15]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="sender", default=netbios_name())
    parser.add_argument("to")
    parser.add_argument("text", nargs="+")
    args = parser.parse_args()
    mount = os.environ.get("MAILSLOT", "/mailslot")
    local = args.to == "." or args.to.upper() == netbios_name()
    slot = os.path.join(mount, "messngr") if local else os.path.join(mount, ".net", args.to, "messngr")
    recipient = netbios_name() if args.to == "." else args.to.upper()
    fields = (args.sender, recipient, " ".join(args.text))
    message = b"".join(f.encode("cp850", errors="replace") + b"\0" for f in fields)
    try:
        fd = os.open(slot, os.O_WRONLY)
        os.write(fd, message)
        os.close(fd)
    except OSError as e:
        sys.exit(f"messenger-send.py: {slot}: {e.strerror}")


if __name__ == "__main__":
    main()
