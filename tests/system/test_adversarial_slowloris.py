"""Slowloris: many clients that each send one byte a second of a command
that never ends, a line without its newline or a TPKT frame that never
completes (its header promises 65535 bytes).

A few seconds of that from 1,000 clients must not slow down a well-behaved
client (its ECHO is answered promptly every round), and the server's memory
must stay bounded by what the limits allow per connection (--max-line,
--max-frame), not grow with the time the clients take.  With
--idle-timeout, a client that falls silent in the middle of a command is
closed (``idle``); one that keeps dripping is not silent, so it stays: the
idle timeout is about silence, not about slowness.

The pacing here is the load itself (a sleep between rounds is what a
slowloris does); nothing waits on a sleep to learn the server's state.
"""

import socket
import struct
import time

from harness.clients import LineChatClient, check_bystander
from harness.env import nofile_limit, scaled
from harness.proc import proc_fd_count, proc_rss_kib, wait_fd_count
from harness.server import server_is_instrumented

CLIENTS = 1000
ROUNDS = 4
# What one dripping connection may cost at most: its struct conn, output
# queue and chat membership (a few KiB) plus its framer's buffer, which
# --max-frame bounds at 64 KiB (tpkt.c allocates a split frame's whole
# declared length up front, but touches only what arrives).  Measured: about
# 6 KiB each.  A few dripped bytes must never cost more than the bound.
PER_CLIENT_KIB = 80


def open_drippers(port, count):
    """``count`` raw connections, half line mode, half TPKT, each started
    with its command's first bytes: "SAY " or a TPKT header for 65535."""
    socks = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        s.setblocking(False)
        if i % 2:
            s.send(struct.pack(">BBH", 3, 0, 65535) + b"SAY ")
        else:
            s.send(b"SAY ")
        socks.append(s)
    return socks


def drip(socks):
    """One more byte on every connection; a closed one is counted."""
    gone = 0
    for s in socks:
        try:
            s.send(b"z")
        except BlockingIOError:
            pass                        # a byte a second can't fill it; ignore
        except (BrokenPipeError, ConnectionResetError):
            gone += 1
    return gone


def echo_time(client, text):
    t0 = time.monotonic()
    assert client.cmd(f"ECHO {text}", timeout=scaled(2)) == f"OK {text}"
    return time.monotonic() - t0


def test_thousand_drippers(make_server):
    assert nofile_limit() > CLIENTS + 100, \
        f"RLIMIT_NOFILE is {nofile_limit()}: too low for {CLIENTS} clients"
    srv = make_server()
    bystander = LineChatClient(srv.port)
    bystander.sync("bystander")
    baseline = proc_fd_count(srv.pid)
    rss0 = proc_rss_kib(srv.pid)
    mark = srv.log_mark()
    socks = open_drippers(srv.port, CLIENTS)
    try:
        # Line-mode drippers are in the room from their greeting; a TPKT
        # connection joins with its first whole command, which never comes.
        srv.wait_log(rf"joined \({CLIENTS // 2 + 1} in the room\)", since=mark, timeout=20)
        wait_fd_count(srv, baseline + CLIENTS, timeout=20)
        worst = 0.0
        for r in range(ROUNDS):
            time.sleep(1.0)                         # the slowloris pace
            assert drip(socks) == 0, "the server closed a dripping client"
            worst = max(worst, echo_time(bystander, f"round{r}"))
        rss = proc_rss_kib(srv.pid)
        assert srv.running()
        # Promptly: a round trip well under the drip interval.
        assert worst < scaled(0.5), f"the bystander's ECHO took {worst:.2f}s"
        grown = rss - rss0
        limit = CLIENTS * PER_CLIENT_KIB
        print(f"\nRSS {rss0} KiB -> {rss} KiB with {CLIENTS} drippers "
              f"({grown / CLIENTS:.1f} KiB each); worst ECHO {worst * 1000:.1f} ms")
        if not server_is_instrumented(srv):     # ASan's redzones and quarantine
            assert grown < limit, f"RSS grew by {grown} KiB for {CLIENTS} drippers"
        assert proc_fd_count(srv.pid) == baseline + CLIENTS
    finally:
        for s in socks:
            s.close()
    srv.wait_log(r"disconnect .* \(1 client\)$", since=mark, timeout=20)
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)
    bystander.close()


FILLERS = 200              # per framing


def test_commands_filled_to_the_limit_stay_bounded(make_server):
    """Drippers that send fast instead: each line is pushed far past
    --max-line (64 KiB by default) and each TPKT frame to 60,000 of its
    65,531 payload bytes.  The line decoder then skips the rest of its line
    instead of keeping it, so three more rounds of 64 KiB each add nothing;
    the frames cost at most their --max-frame buffers."""
    assert nofile_limit() > 2 * FILLERS + 100
    srv = make_server()
    bystander = LineChatClient(srv.port)
    bystander.sync("bystander")
    baseline = proc_fd_count(srv.pid)
    rss0 = proc_rss_kib(srv.pid)
    mark = srv.log_mark()
    lines, frames = [], []
    try:
        for _ in range(FILLERS):
            lines.append(socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)))
            frames.append(socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)))
        chunk = b"SAY " + b"y" * (64 * 1024)
        for s in frames:
            s.sendall(struct.pack(">BBH", 3, 0, 65535) + chunk[:60000])
        rss = []
        for r in range(4):
            for s in lines:
                s.sendall(chunk)
            assert echo_time(bystander, f"round{r}") < scaled(1)
            if r == 0:
                srv.wait_logs(r"line too long", FILLERS, since=mark, timeout=20)
            rss.append(proc_rss_kib(srv.pid))
        assert srv.running()
        print(f"\nRSS {rss0} KiB at the start, then by round: {rss} KiB")
        if not server_is_instrumented(srv):
            # One frame buffer (64 KiB) and one line buffer (64 KiB) plus a
            # few KiB of connection per client, at most; and no growth after
            # the first round, but for a page per client of allocator slack.
            assert rss[0] - rss0 < FILLERS * (64 + 64 + 2 * 8), rss
            assert rss[-1] - rss[0] < FILLERS * 4, rss
    finally:
        for s in lines + frames:
            s.close()
    srv.wait_log(r"disconnect .* \(1 client\)$", since=mark, timeout=20)
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)
    bystander.close()


def test_idle_timeout_closes_the_silent_not_the_dripping(make_server):
    srv = make_server("--idle-timeout", "2")
    bystander = LineChatClient(srv.port)
    bystander.sync("bystander")
    baseline = proc_fd_count(srv.pid)
    mark = srv.log_mark()
    dripping = open_drippers(srv.port, 100)
    silent = open_drippers(srv.port, 100)
    try:
        srv.wait_log(r"joined \(101 in the room\)", since=mark, timeout=20)
        wait_fd_count(srv, baseline + 200, timeout=20)
        t0 = time.monotonic()
        # Keep the dripping ones (and the bystander) active past the timeout
        # until every silent one has been closed as idle.
        silent_ports = {s.getsockname()[1] for s in silent}
        closed = set()
        deadline = t0 + scaled(10)
        while closed != silent_ports:
            assert time.monotonic() < deadline, \
                f"{len(silent_ports - closed)} silent clients not closed as idle"
            time.sleep(0.5)                     # the drip pace
            assert drip(dripping) == 0, "a dripping client was closed"
            echo_time(bystander, "busy")
            for port in silent_ports - closed:
                if srv.find_log(rf"disconnect 127\.0\.0\.1:{port}: idle \(", since=mark):
                    closed.add(port)
        assert time.monotonic() - t0 > 1.5, "closed before 2 s of silence"
        for s in dripping:
            assert not srv.find_log(rf"disconnect 127\.0\.0\.1:{s.getsockname()[1]}:",
                                    since=mark)
        assert proc_fd_count(srv.pid) == baseline + len(dripping)
    finally:
        for s in dripping + silent:
            s.close()
    srv.wait_log(r"disconnect .* \(1 client\)$", since=mark, timeout=20)
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)
    bystander.close()
