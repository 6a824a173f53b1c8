"""One thread, never blocked: while the server hashes or sends a 1 GiB file,
or clients come and go, a pinger's ECHO round trips stay short
(harness/latency.py).  The bounds hold for the normal build only: they are
marked normal_build_only and skipped for a sanitized or valgrind server.

Everything talks to 127.0.0.1 only.  The 1 GiB file is one random 1 MiB block
repeated, in pytest's tmp dirs, deleted at module end.
"""

import hashlib
import os
import sys
import time

import pytest

from harness.clients import Client
from harness.files import MiB
from harness.latency import assert_latency, latency_report, start_pinger, stop_pinger
from harness.protocol import TPKT_MAX_PAYLOAD
from harness.xfer import rate_re

pytestmark = pytest.mark.usefixtures("drop_big_files")

HUGE_SIZE = 1024 * MiB         # the 1 GiB file of the not-blocked tests


@pytest.fixture(scope="module")
def huge_file(tmp_path_factory):
    """(path, size, sha256) of a 1 GiB file: one random 1 MiB block repeated."""
    d = tmp_path_factory.mktemp("huge")
    path = d / "huge.bin"
    block = os.urandom(MiB)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(HUGE_SIZE // MiB):
            f.write(block)
            h.update(block)
    yield path, HUGE_SIZE, h.hexdigest()
    path.unlink(missing_ok=True)


@pytest.fixture
def fast_switch():
    """Let the pinger thread get the GIL quickly while the reader hashes."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    yield
    sys.setswitchinterval(old)


def link_into(srv, src, name):
    dst = srv.data_dir / name
    os.link(src, dst)
    return dst


# The transfer's own connection is made (and greeted) before the pinger
# connects, so no chat event (JOIN/LEAVE) reaches the pinger inside the
# measured window: those hit a separate problem, see
# test_chat_event_does_not_delay_the_next_reply.

@pytest.mark.normal_build_only
def test_1gib_download_does_not_block_others(server, huge_file, fast_switch):
    path, size, sha = huge_file
    link_into(server, path, "huge.bin")
    mark = server.log_mark()
    with Client(server.port, timeout=10) as c:
        assert c.cmd("ECHO ready") == "OK ready"
        pinger = start_pinger(server)
        try:
            t_req = time.perf_counter()
            c.send("DOWNLOAD huge.bin\n")
            reply = c.reply(timeout=20)
            t_ok = time.perf_counter()
            assert reply == f"OK {size} 0 {sha}"
            h = hashlib.sha256()
            h.update(c.buf)
            n = len(c.buf)
            c.buf = b""
            buf = bytearray(4 * MiB)
            mv = memoryview(buf)
            deadline = time.monotonic() + 30
            while n < size:
                assert time.monotonic() < deadline, f"only {n} bytes after 30 s"
                k = c.sock.recv_into(mv)
                assert k, f"closed after {n} of {size} bytes"
                h.update(mv[:k])
                n += k
            t_last = time.perf_counter()
            assert n == size and c.sock.recv(1) == b"", "bytes beyond the size"
        finally:
            stop_pinger(pinger)
    assert h.hexdigest() == sha
    m = server.wait_log(rate_re("download", "huge.bin", size), since=mark)
    print(f"\n1 GiB line download: hash {t_ok - t_req:.2f}s, send {t_last - t_ok:.2f}s; "
          f"{m.group(0)}")
    print(latency_report("  while hashing", pinger.rtts(t_req, t_ok)))
    print(latency_report("  while sending", pinger.rtts(t_ok, t_last, completed=True)))
    # Pings still unanswered when the last byte arrived are left out: the
    # server closes this line-mode connection right then, and the LEAVE event
    # it sends the pinger would stall the next reply (see the Nagle test).
    assert_latency("ECHO round trips during the 1 GiB transfer",
                   pinger.rtts(t_req, t_last, completed=True), min_samples=20)


@pytest.mark.normal_build_only
def test_hashing_large_file_does_not_block_others(server, huge_file, fast_switch, tpkt):
    path, size, sha = huge_file
    dst = link_into(server, path, "tohash.bin")
    # A new mtime makes any cached digest stale: this download must hash first.
    now = time.time_ns()
    os.utime(dst, ns=(now, now))
    c = tpkt(server)
    assert c.cmd("ECHO ready") == "OK ready"
    pinger = start_pinger(server)
    try:
        t_req = time.perf_counter()
        reply = c.cmd("DOWNLOAD tohash.bin", timeout=30)
        t_ok = time.perf_counter()
    finally:
        stop_pinger(pinger)
    assert reply == f"OK {size} 0 {sha}"
    c.recv_data(4 * TPKT_MAX_PAYLOAD, timeout=5)     # some frames, then
    c.reset()                                         # walk away
    print(f"\nhashing 1 GiB took {t_ok - t_req:.2f}s")
    assert_latency("ECHO round trips while hashing 1 GiB", pinger.rtts(t_req, t_ok),
                   min_samples=10)
    server.wait_log(r"download tohash\.bin to \S+ interrupted at")
    assert server.running()


@pytest.mark.normal_build_only
def test_chat_event_does_not_delay_the_next_reply(server, connect):
    """Replies to an interactive client must not wait for a delayed ACK.

    Clients come and go (JOIN/LEAVE events for the pinger) while the pinger
    sends ECHO every 10 ms.  Without TCP_NODELAY on the server's sockets an
    event followed by a reply stalls that reply ~40 ms (Nagle + delayed ACK).
    """
    pinger = start_pinger(server)
    t0 = time.perf_counter()
    try:
        for i in range(8):
            with Client(server.port) as c:
                assert c.cmd(f"ECHO visitor {i}") == f"OK visitor {i}"
            pinger.stop.wait(0.1)                   # pacing: let pings interleave
    finally:
        stop_pinger(pinger)
    rtts = pinger.rtts(t0, time.perf_counter())
    report = latency_report("ECHO round trips while clients join and leave", rtts)
    print("\n" + report)
    assert len(rtts) >= 20, report
    assert max(rtts) * 1000 < 20, \
        f"{report}; a ~40 ms stall after each event is Nagle + delayed ACK"
