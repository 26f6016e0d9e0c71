#!/usr/bin/env python3
"""A mailslot client: each MESSAGE argument is one message.

    client.py SLOT MESSAGE...

A client opens an existing slot write-only; one write is one message.
"""
import errno
import os
import sys

WHY = {
    errno.ENOENT: "no such mailslot (no server has created it)",
    errno.EMSGSIZE: "message larger than the mailslot's maximum",
    errno.ENOBUFS: "the mailslot's queue is full",
    errno.EPIPE: "the server has closed the mailslot",
}


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: client.py SLOT MESSAGE...")
    path = sys.argv[1]
    try:
        fd = os.open(path, os.O_WRONLY)
        for message in sys.argv[2:]:
            os.write(fd, message.encode())
    except OSError as e:
        sys.exit(f"client.py: {path}: {WHY.get(e.errno, e.strerror)}")


if __name__ == "__main__":
    main()
