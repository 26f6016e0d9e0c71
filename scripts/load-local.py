#!/usr/bin/env python3
"""Local load on a mounted mailslotfs: WRITERS processes x MESSAGES each.

Usage: load-local.py MOUNT_DIR WRITERS MESSAGES

1. Reader keeping up: every message is read exactly once and each writer's
   messages come out in the order it wrote them. A writer that meets a full
   queue (ENOBUFS) waits a moment and writes the same message again.
2. Reader stopped: on a slot with a 1,000-message quota, writers get
   ENOBUFS at the quota; afterwards every accepted message is read back,
   none lost, and the slot's dropped counter equals the refusals.
3. Memory ceiling: slots of 3 MiB quota are filled, each nearly to its
   quota, until the mount's -o max_memory refuses (ENOBUFS); all of it
   reads back. Run it on a mount with a small ceiling (-o max_memory=8M).
Prints one line of figures per phase; exits non-zero on any violation.
"""
import errno, os, sys, time

dir_, writers, messages = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
BUF = 1 << 16


def attr(path, name):
    return int(os.getxattr(path, "user.mailslot." + name))


def writer(path, w, count, stop_at_full):
    """Writes count messages 'w:i'; returns (accepted, refusals)."""
    fd = os.open(path, os.O_WRONLY)
    refusals = 0
    i = 0
    while i < count:
        try:
            os.write(fd, b"%d:%d" % (w, i))
            i += 1
        except OSError as e:
            if e.errno != errno.ENOBUFS:
                raise
            refusals += 1
            if stop_at_full:
                break
            time.sleep(0.001)
    os.close(fd)
    return i, refusals


def spawn(path, count, stop_at_full):
    """Forks the writers; returns their pids and a pipe per writer for figures."""
    kids = []
    for w in range(writers):
        r, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                accepted, refusals = writer(path, w, count, stop_at_full)
                os.write(wr, b"%d %d" % (accepted, refusals))
            except BaseException as e:
                sys.stderr.write("writer %d: %r\n" % (w, e))
                code = 1
            os._exit(code)
        os.close(wr)
        kids.append((pid, r))
    return kids


def reap(kids):
    figures = []
    for pid, r in kids:
        text = os.read(r, 100).decode()
        os.close(r)
        _, status = os.waitpid(pid, 0)
        if status != 0 or not text:
            sys.exit("a writer failed")
        accepted, refusals = map(int, text.split())
        figures.append((accepted, refusals))
    return figures


def check_order(got, expected_counts, what):
    seen = [0] * writers
    for message in got:
        w, i = map(int, message.split(b":"))
        if i != seen[w]:
            sys.exit("%s: writer %d: got #%d, expected #%d" % (what, w, i, seen[w]))
        seen[w] += 1
    if seen != expected_counts:
        sys.exit("%s: read %s, expected %s" % (what, seen, expected_counts))


def drain(fd):
    got = []
    while True:
        try:
            got.append(os.read(fd, BUF))
        except BlockingIOError:
            return got


# 1. A reader keeping up.
path = os.path.join(dir_, "load")
server = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
start = time.monotonic()
kids = spawn(path, messages, stop_at_full=False)
got = []
total = writers * messages
while len(got) < total:
    got.append(os.read(server, BUF))
took = time.monotonic() - start
figures = reap(kids)
os.set_blocking(server, False)
extra = drain(server)
if extra:
    sys.exit("keeping up: %d messages more than were written" % len(extra))
check_order(got, [messages] * writers, "keeping up")
retries = sum(r for _, r in figures)
print("keeping up: %d writers x %d = %d messages read exactly once, in order, "
      "in %.1f s (%.0f msg/s); %d ENOBUFS retries"
      % (writers, messages, total, took, total / took, retries))
os.close(server)

# 2. A reader that stops: the quota refuses, nothing queued is lost.
path = os.path.join(dir_, "stopped")
server = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o600)
quota = 1000
os.setxattr(path, "user.mailslot.quota_messages", b"%d" % quota)
figures = reap(spawn(path, messages, stop_at_full=True))
accepted = [a for a, _ in figures]
if sum(accepted) != quota or any(r != 1 for _, r in figures):
    sys.exit("stopped reader: accepted %s (quota %d), refusals %s"
             % (accepted, quota, [r for _, r in figures]))
if attr(path, "dropped") != writers or attr(path, "message_count") != quota:
    sys.exit("stopped reader: counters %d dropped, %d queued"
             % (attr(path, "dropped"), attr(path, "message_count")))
check_order(drain(server), accepted, "stopped reader")
print("stopped reader: every writer got ENOBUFS at the %d-message quota; "
      "all %d queued messages read back in order" % (quota, quota))
os.close(server)

# 3. The mount's memory ceiling refuses, though no slot's quota is full.
SLOT_QUOTA = 3 << 20
servers, queued = [], []
while True:
    path = os.path.join(dir_, "mem%d" % len(servers))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o600)
    servers.append(fd)
    os.setxattr(path, "user.mailslot.quota_bytes", b"%d" % SLOT_QUOTA)
    client = os.open(path, os.O_WRONLY)
    n = 0
    try:
        while n < SLOT_QUOTA // 1000 - 1:
            os.write(client, b"m" * 1000)
            n += 1
    except OSError as e:
        if e.errno != errno.ENOBUFS:
            raise
        full = True
    else:
        full = False
    os.close(client)
    queued.append(n)
    if full:
        break
read_back = sum(len(drain(fd)) for fd in servers)
if read_back != sum(queued):
    sys.exit("memory ceiling: read %d of %d" % (read_back, sum(queued)))
print("memory ceiling: %d slots held %d messages of 1000 bytes, then ENOBUFS; "
      "all read back" % (len(servers), sum(queued)))
for fd in servers:
    os.close(fd)
