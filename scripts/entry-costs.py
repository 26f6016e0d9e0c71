#!/usr/bin/env python3
"""What each kind of entry costs the daemon, measured as RSS growth.

Usage (as root): entry-costs.py [BINARY] [-o OPTIONS]

Mounts BINARY (default: target/release/mailslotfs) on a fresh temporary
directory and, one kind at a time, makes N entries and prints the growth of
the daemon's resident set (VmRSS in /proc/PID/status) per entry:
directories (mkdir), slots (a server handle each), client handles (opens
of one slot), poll waiters (epoll on those handles) and parked reads
(threads blocked in read), cold and after a message has gone through
the transport before each (on io_uring an entry keeps the payload pages
earlier requests touched). Each kind is warmed up first, so the figure is
the steady cost, not the first allocation of a table. Unmounts on exit,
also when interrupted.
"""
import os, resource, select, signal, subprocess, sys, tempfile, threading, time

N = 10_000
# Slots and handles each hold a descriptor here: half the usual 20,000 limit each.
HANDLES = 5_000
READERS = 2_000

args = sys.argv[1:]
binary = args.pop(0) if args and not args[0].startswith("-") else "target/release/mailslotfs"
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
mnt = tempfile.mkdtemp(prefix="mailslotfs-costs-")


def daemon_pid():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if mnt.encode() in cmd and b"mount" in cmd:
            return int(pid)
    raise SystemExit("daemon not found")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("no VmRSS")


def wait_for(cond, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def measure(kind, count, make):
    """Makes `count` entries in two halves: the first warms up, the second
    is measured (so it is per entry beyond what a warm daemon already has)."""
    make(0, count // 5)
    time.sleep(0.3)
    before = rss_kib(pid)
    make(count // 5, count)
    time.sleep(0.3)
    grown = (rss_kib(pid) - before) * 1024
    per = grown / (count - count // 5)
    print(f"{kind:<14} {count - count // 5:>6} made  RSS +{grown / 1e6:7.2f} MB  {per:6.0f} B each")


if subprocess.run([binary, "mount", mnt, *args]).returncode != 0:
    os.rmdir(mnt)
    raise SystemExit(1)
keep = []
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
try:
    pid = daemon_pid()
    transport = os.getxattr(mnt, "user.mailslot.transport").decode()
    print(f"{binary} on {transport}, daemon pid {pid}, RSS {rss_kib(pid)} KiB at start")

    measure("directory", N, lambda a, b: [os.mkdir(f"{mnt}/dir-{i:05}") for i in range(a, b)])

    def slots(a, b):
        keep.extend(os.open(f"{mnt}/slot-{i:05}", os.O_RDONLY | os.O_CREAT, 0o666) for i in range(a, b))

    measure("slot", HANDLES, slots)
    target = f"{mnt}/slot-00000"
    clients = []

    def handles(a, b):
        clients.extend(os.open(target, os.O_WRONLY) for _ in range(a, b))

    measure("client handle", HANDLES, handles)
    ep = select.epoll()

    def pollers(a, b):
        for fd in clients[a:b]:
            ep.register(fd, select.EPOLLOUT)

    measure("poll waiter", HANDLES, pollers)
    server = keep[1]
    slot = f"{mnt}/slot-00001"

    def readers(a, b):
        for _ in range(a, b):
            threading.Thread(target=lambda: os.read(server, 65536), daemon=True).start()
        wait_for(lambda: int(os.getxattr(slot, "user.mailslot.waiting_readers")) == b, "parked reads")

    measure("parked read", READERS, readers)
    slot = f"{mnt}/slot-00002"
    carrier, carrier_client = keep[3], os.open(f"{mnt}/slot-00003", os.O_WRONLY)

    def warm_readers(a, b):
        # Before each read parks, a message of 1000 bytes goes through the
        # transport, as on a server that keeps up with its writers.
        for i in range(a, b):
            os.write(carrier_client, b"m" * 1000)
            os.read(carrier, 65536)
            threading.Thread(target=lambda: os.read(keep[2], 65536), daemon=True).start()
            wait_for(lambda: int(os.getxattr(slot, "user.mailslot.waiting_readers")) == i + 1, "parked reads")

    measure("parked, warm", READERS, warm_readers)
finally:
    subprocess.run(["umount", "-l", mnt])
    os.rmdir(mnt)
    os._exit(0)
