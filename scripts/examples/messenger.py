#!/usr/bin/env python3
"""A Windows Messenger compatible receiver: serves the `messngr` mailslot
and shows every NET SEND message that arrives.

    messenger.py [-n COUNT] [SLOT]

SLOT defaults to $MAILSLOT/messngr ($MAILSLOT: the mount, /mailslot).
NET SEND's messages are `FROM\\0TO\\0TEXT\\0` in the sender's OEM code page;
text that is not UTF-8 is read as code page 850. Each message is shown
with `notify-send` when a desktop is there ($DISPLAY or $WAYLAND_DISPLAY
set, and notify-send installed), else printed on the terminal. With the
network bridge running, Windows machines reach it with
`net send THISHOST text`, and messenger-send.py reaches them.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time


def decode(field):
    try:
        return field.decode("utf-8")
    except UnicodeDecodeError:
        return field.decode("cp850")


def parse(message):
    """(from, to, text) of a NET SEND message; a message that is not in
    that format is shown whole, as its text."""
    fields = message.rstrip(b"\0").split(b"\0")
    if len(fields) != 3:
        return ("?", "?", decode(message.replace(b"\0", b" ")))
    sender, recipient, text = (decode(f) for f in fields)
    return sender, recipient, text.replace("\r\n", "\n")


def show(sender, recipient, text):
    title = f"Message from {sender} to {recipient}"
    on_desktop = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if on_desktop and shutil.which("notify-send"):
        subprocess.run(["notify-send", "--app-name=Messenger", title, text], check=False)
    else:
        when = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{title} on {when}\n\n{text}\n", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, help="exit after COUNT messages")
    default = os.path.join(os.environ.get("MAILSLOT", "/mailslot"), "messngr")
    parser.add_argument("slot", nargs="?", default=default)
    args = parser.parse_args()
    try:
        fd = os.open(args.slot, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        sys.exit(f"messenger.py: {args.slot}: {e.strerror}")
    size = os.fstat(fd).st_blksize
    shown = 0
    while args.count is None or shown < args.count:
        message = os.read(fd, size)
        if not message:
            return  # the daemon is shutting down
        show(*parse(message))
        shown += 1


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
