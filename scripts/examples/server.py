#!/usr/bin/env python3
"""A mailslot server for several slots on one thread, with `selectors`.

    server.py [-n COUNT] SLOT...

Creates every SLOT (a path under the mount), then prints each message as
`NAME: TEXT` as it arrives, until COUNT messages or Ctrl-C. Opening with
O_CREAT and read access is what creates a mailslot; the descriptor is the
server handle, and the slot lives exactly as long as it is open.
"""
import argparse
import os
import selectors
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, help="exit after COUNT messages")
    parser.add_argument("slots", nargs="+", metavar="SLOT")
    args = parser.parse_args()
    selector = selectors.DefaultSelector()
    for path in args.slots:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NONBLOCK, 0o666)
        except OSError as e:
            sys.exit(f"server.py: {path}: {e.strerror}")
        # st_blksize is at least the slot's maximum message size, so one
        # read of that size always takes a whole message.
        selector.register(fd, selectors.EVENT_READ, (os.path.basename(path), os.fstat(fd).st_blksize))
    received = 0
    while args.count is None or received < args.count:
        for key, _ in selector.select():
            name, size = key.data
            try:
                message = os.read(key.fd, size)
            except BlockingIOError:
                continue  # another reader of a shared handle took it
            if not message:
                return  # the daemon is shutting down
            print(f"{name}: {message.decode(errors='replace')}", flush=True)
            received += 1


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
