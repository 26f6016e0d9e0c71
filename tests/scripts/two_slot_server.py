"""One thread serving several mailslots: selectors (epoll) for two slots,
then asyncio's add_reader for two more. Usage: two_slot_server.py MOUNTDIR.
Prints one line per slot: "<api> <slot> <messages...>", then "done"."""
import asyncio
import os
import selectors
import sys

D = sys.argv[1]
N = 5
fds = {}
for name in ("alpha", "beta", "gamma", "delta"):
    fds[name] = os.open(os.path.join(D, name), os.O_CREAT | os.O_EXCL | os.O_RDONLY, 0o644)
print("ready", flush=True)

# selectors: alpha and beta from one thread
sel = selectors.DefaultSelector()
got = {"alpha": [], "beta": []}
for name in got:
    sel.register(fds[name], selectors.EVENT_READ, name)
while any(len(v) < N for v in got.values()):
    events = sel.select(timeout=10)
    if not events:
        sys.exit("selectors: timed out with %r" % got)
    for key, _ in events:
        got[key.data].append(os.read(key.fd, 100).decode())
for name, msgs in got.items():
    print("selectors", name, " ".join(msgs), flush=True)


# asyncio: gamma and delta
async def serve_two():
    loop = asyncio.get_running_loop()
    got = {"gamma": [], "delta": []}
    finished = loop.create_future()

    def on_readable(name):
        got[name].append(os.read(fds[name], 100).decode())
        if len(got[name]) >= N:
            loop.remove_reader(fds[name])
        if all(len(v) >= N for v in got.values()) and not finished.done():
            finished.set_result(None)

    for name in got:
        loop.add_reader(fds[name], on_readable, name)
    await asyncio.wait_for(finished, 10)
    return got


for name, msgs in asyncio.run(serve_two()).items():
    print("asyncio", name, " ".join(msgs), flush=True)
print("done", flush=True)
