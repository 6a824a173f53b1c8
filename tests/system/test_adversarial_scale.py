"""10,000 clients connect, each says one thing, all leave: nothing is left
behind, no descriptor and no memory.

The choice of shape.  A chat message goes to every member, and so do the
JOIN and LEAVE events: 10,000 members that each JOIN, SAY and LEAVE while all
are in the room make about 3 x 10^8 deliveries (5 x 10^7 for the JOINs
alone), far too many for a test.  So:

1. All 10,000 connect and stay connected, silent.  With ``--greeting-delay``
   at its maximum (60 s) they sit in the server's table, each holding its
   descriptor, its struct conn and its greeting timer, but they are not in
   the room yet (a connection joins when greeted).  This is the peak: 10,000
   connections at once.
2. Then they speak in batches of 250: each client of the batch sends its
   ``SAY``, which greets it (line mode), joins it, broadcasts its message;
   it reads up to its ``OK`` and leaves with a reset (no TIME_WAIT to use up
   the port range).  The room never holds much more than a batch, so the
   deliveries are about 10,000 x 250 x 3, under 10^7.

The whole thing runs twice.  Descriptors must be back to the baseline after
each round, exactly.  Memory (VmRSS) can't be: the allocator keeps freed
memory in its arenas (and connections leave in an order that fragments
them), so after round 1 RSS stays at its peak (sampled after every batch:
about 10 MB, from 3.6 MB at the start).  So RSS after a round may not pass
that round's peak (+1 MiB), and round 2 must fit
in the memory round 1 left behind: with the freed chunks reused, RSS after
round 2 is within 1 MiB + 2% of RSS after round 1 (measured: equal), whereas
leaking a struct conn (well over 200 bytes) per connection would add more
than 2 MiB per round.  Under the sanitizer
build RSS says nothing (freed memory sits in ASan's quarantine), so there
only the descriptors are checked here, and LeakSanitizer checks the memory
at exit (the harness fails the test on its report).
"""

import selectors
import socket
import struct
import time
import warnings

from harness.clients import LineChatClient, check_bystander
from harness.env import nofile_limit, scaled
from harness.proc import proc_fd_count, proc_rss_kib, wait_fd_count
from harness.protocol import take_lines
from harness.server import server_is_instrumented

WANT = 10000
BATCH = 250
ROUNDS = 2
CONNECT_STEP = 250        # connects between waits for the server to accept


def client_count():
    """As many of the 10,000 as our descriptor limit allows (the server and
    this process each need one per client, plus some to spare)."""
    return max(100, min(WANT, nofile_limit() - 300))


def linger0(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def drain_bystander(bystander):
    """Take whatever the bystander has been sent (JOIN/MSG/LEAVE events) so
    its queue never fills; complete lines become its events."""
    bystander.sock.setblocking(False)
    try:
        while True:
            data = bystander.sock.recv(1 << 20)
            if not data:
                raise AssertionError("the server closed the bystander")
            bystander.buf += data
    except BlockingIOError:
        pass
    finally:
        bystander.sock.setblocking(True)
        bystander.sock.settimeout(bystander.timeout)
    buf = bytearray(bystander.buf)
    for line in take_lines(buf):
        bystander.events.append(line.decode("utf-8", errors="replace"))
    bystander.buf = bytes(buf)


def connect_all(srv, n, bystander):
    socks = []
    mark = srv.log_mark()
    for start in range(0, n, CONNECT_STEP):
        for _ in range(min(CONNECT_STEP, n - start)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(scaled(10))
            s.connect(("127.0.0.1", srv.port))
            linger0(s)
            socks.append(s)
        # The accept queue is 511 long: let the server catch up.
        srv.wait_log(rf"connect 127\.0\.0\.1:\d+ \({len(socks) + 1} clients\)",
                     since=mark, timeout=30)
    return socks


def speak_in_batches(srv, socks, bystander, round_no):
    """Each client: SAY, read to its OK, reset.  Returns how many said it
    and the highest RSS seen (sampled after every batch)."""
    said = 0
    peak = proc_rss_kib(srv.pid)
    for start in range(0, len(socks), BATCH):
        batch = socks[start:start + BATCH]
        sel = selectors.DefaultSelector()
        bufs = {}
        for i, s in enumerate(batch):
            s.setblocking(False)
            s.send(f"SAY r{round_no}c{start + i}\n".encode())
            bufs[s] = bytearray()
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + scaled(30)
        while bufs:
            assert time.monotonic() < deadline, \
                f"{len(bufs)} clients of a batch got no OK for their SAY"
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                assert data, "the server closed a client before its OK"
                bufs[s] += data
                if any(line == b"OK" for line in take_lines(bufs[s])):
                    sel.unregister(s)
                    del bufs[s]
                    s.close()                   # SO_LINGER 0: a reset
                    said += 1
            drain_bystander(bystander)
        sel.close()
        peak = max(peak, proc_rss_kib(srv.pid))
    return said, peak


def test_ten_thousand_clients_leave_nothing_behind(make_server):
    n = client_count()
    note = "" if n == WANT else \
        f" (only {n} clients, not {WANT}: RLIMIT_NOFILE is {nofile_limit()})"
    if note:
        warnings.warn(note.strip())
    srv = make_server("--greeting-delay", "60000", "--max-clients", str(n + 10))
    bystander = LineChatClient(srv.port, timeout=scaled(10))
    bystander.sync("bystander")
    baseline = proc_fd_count(srv.pid)
    rss = {"start": proc_rss_kib(srv.pid)}
    for r in range(1, ROUNDS + 1):
        t0 = time.monotonic()
        socks = connect_all(srv, n, bystander)
        try:
            assert proc_fd_count(srv.pid) == baseline + n, f"descriptors at the peak{note}"
            connected = proc_rss_kib(srv.pid)
            t1 = time.monotonic()
            said, peak = speak_in_batches(srv, socks, bystander, r)
            rss[f"peak{r}"] = max(connected, peak)
            assert said == n, f"{said} of {n} clients got their OK{note}"
        finally:
            for s in socks:
                s.close()
        srv.wait_log(r"disconnect .* \(1 client\)$", timeout=30)
        wait_fd_count(srv, baseline, timeout=30)
        rss[f"after{r}"] = proc_rss_kib(srv.pid)
        print(f"\nround {r}: {n} connected in {t1 - t0:.1f}s, said and left in "
              f"{time.monotonic() - t1:.1f}s")
        drain_bystander(bystander)
        # The bystander heard them: the last batch's messages at least.
        assert any(e.startswith("MSG Guest") and e.endswith(f" r{r}c{n - 1}")
                   for e in bystander.events), \
            f"the bystander missed round {r}'s last message{note}"
        bystander.events.clear()
    print(f"RSS KiB: {rss}")
    assert srv.running()
    if not server_is_instrumented(srv):
        for r in range(1, ROUNDS + 1):
            assert rss[f"after{r}"] <= rss[f"peak{r}"] + 1024, f"RSS grew after the peak: {rss}"
        slack = 1024 + rss["after1"] // 50
        assert rss[f"after{ROUNDS}"] <= rss["after1"] + slack, \
            f"RSS grew by {rss[f'after{ROUNDS}'] - rss['after1']} KiB from round 1 to " \
            f"round {ROUNDS} (allowed {slack}){note}: {rss}"
    check_bystander(srv, bystander, timeout=scaled(5))
    bystander.close()
