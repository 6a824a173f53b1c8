"""Floods of connections: past --max-clients, and past the descriptor limit.

* ``--max-clients 50`` and a burst of 200 connects: the server serves up to
  50 at once (the bystander and the first 49 to speak); every other one gets
  ``ERR server full`` as its first and only message, is closed, and is
  logged as ``server full``.  Afterwards the descriptors are back to the
  baseline, and a freed slot serves a newcomer.
* EMFILE: the server raises its soft descriptor limit to the hard one, so
  the hard limit is set to 64 (a wrapper script does ``ulimit -n 64`` and
  execs the server: the PID is the server's).  Past it the server keeps
  running, logs ``out of file descriptors: refused a connection`` and closes
  the extra connections at once (its spare descriptor trick: the listener
  must not stay readable and spin the loop), keeps serving the clients it
  has, and serves new ones once descriptors are free again.
"""

import select
import socket
import stat
import time

import pytest

from harness.clients import Client, LineChatClient, check_bystander
from harness.env import BOTTLED, nofile_limit, scaled, wait_until
from harness.proc import proc_cpu_seconds, proc_fd_count, wait_fd_count
from harness.protocol import GREETING_RE
from harness.server import SANITIZER_REPORT, Server, wait_disconnect

MAX_CLIENTS = 50
FLOOD = 200


def first_message(sock, timeout):
    """(first line or None, closed afterwards?) for a raw socket."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            chunk = b""
        except socket.timeout:
            continue
        if not chunk:
            line = data.split(b"\n", 1)[0].decode(errors="replace") if data else None
            return line, True
        data += chunk
        if b"\n" in data and not data.startswith(b"ERR"):
            return data.split(b"\n", 1)[0].decode(errors="replace"), False


def test_flood_past_max_clients(make_server):
    """200 connect at once and stay silent (a long greeting delay keeps them
    accepted but not yet greeted), then speak one after the other.  The
    first 49 to speak fill the free slots; each later one gets
    ``ERR server full`` and is closed.  (Connections that are still waiting
    for their greeting, or are being refused, are not being served: they
    must not take a slot.)"""
    assert nofile_limit() > FLOOD + 100, f"RLIMIT_NOFILE {nofile_limit()} too low"
    srv = make_server("--max-clients", str(MAX_CLIENTS), "--greeting-delay", "10000")
    bystander = LineChatClient(srv.port)
    bystander.sync("bystander")
    baseline = proc_fd_count(srv.pid)
    mark = srv.log_mark()
    socks = []
    try:
        for i in range(FLOOD):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)))
        srv.wait_log(rf"connect 127\.0\.0\.1:\d+ \({FLOOD + 1} clients\)", since=mark)
        outcome = []
        for i, s in enumerate(socks):
            s.sendall(f"ECHO {i}\n".encode())
            line, closed = first_message(s, scaled(5))
            if line == "ERR server full":
                assert closed, f"client {i} got ERR server full but stayed open"
                assert wait_disconnect(srv, s.getsockname()[1], since=mark) == "server full"
                outcome.append("full")
            else:
                assert line and GREETING_RE.match(line), f"client {i}: {line!r}"
                outcome.append("served")
        served = outcome.count("served")
        assert served <= MAX_CLIENTS - 1, f"{served} served besides the bystander"
        first_full = outcome.index("full") if "full" in outcome else len(outcome)
        assert outcome == ["served"] * (MAX_CLIENTS - 1) + ["full"] * (FLOOD - MAX_CLIENTS + 1), \
            (f"client {first_full} was refused while only "
             f"{outcome[:first_full].count('served') + 1} of {MAX_CLIENTS} slots were in use "
             f"(the bystander's included): the server counts connections it does not "
             f"serve (waiting for their greeting, or being refused) against --max-clients; "
             f"{served} were served in the end, the last to speak")
    finally:
        for s in socks:
            s.close()
    srv.wait_log(r"disconnect .* \(1 client\)$", since=mark, timeout=10)
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)
    bystander.close()


def test_full_server_frees_a_slot(make_server, connect):
    """One at a time, so the count is exact: 49 join, the next ones are
    refused, one leaves, the next one is served again."""
    srv = make_server("--max-clients", str(MAX_CLIENTS))
    bystander = LineChatClient(srv.port)
    bystander.sync("bystander")
    baseline = proc_fd_count(srv.pid)
    served = []
    for i in range(MAX_CLIENTS - 1):
        c = connect(srv)
        assert c.cmd(f"ECHO {i}") == f"OK {i}"
        served.append(c)
    for _ in range(5):
        c = connect(srv)
        c.send(b"ECHO no\n")
        assert c.line() == "ERR server full"
        assert c.expect_closed() == []
        assert wait_disconnect(srv, c.local_port) == "server full"
    assert served[0].cmd("QUIT") == "OK bye"
    served[0].expect_closed()
    assert wait_disconnect(srv, served[0].local_port) == "quit"
    c = connect(srv)
    assert c.cmd("ECHO in again") == "OK in again"
    for c2 in served[1:] + [c]:
        c2.close()
    srv.wait_log(r"disconnect .* \(1 client\)$", timeout=10)
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)
    bystander.close()


# --------------------------------------------------------------------------
# EMFILE
# --------------------------------------------------------------------------

HARD_NOFILE = 64


@pytest.fixture
def fd_starved(tmp_path):
    """A server whose descriptor hard limit is 64; stopped (and checked for a
    sanitizer report) at teardown."""
    wrapper = tmp_path / "bottled-nofile.sh"
    wrapper.write_text(f'#!/bin/sh\nulimit -n {HARD_NOFILE} || exit 99\nexec "{BOTTLED}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    srv = Server([], tmp_path / "data", binary=str(wrapper))
    try:
        srv.wait_listening(timeout=10)
        yield srv
    finally:
        srv.stop(timeout=5)
        report = SANITIZER_REPORT.search(srv.log_text())
        if report:
            pytest.fail(f"sanitizer report from bottled: {report.group(0)}\n"
                        f"{srv.log_text()[-4000:]}")


def fill(srv, count):
    """Connect ``count`` clients, each asking for an ECHO; (served, shed)."""
    served, shed = [], 0
    for i in range(count):
        c = Client(srv.port, timeout=scaled(3))
        c.send(f"ECHO {i}\n")
        try:
            reply = c.reply()
        except (AssertionError, OSError):
            # Shed: accepted with the spare descriptor and closed at once,
            # before any greeting.
            assert c.buf == b"", c.buf
            c.close()
            shed += 1
            continue
        assert reply == f"OK {i}"
        served.append(c)
    return served, shed


def test_out_of_descriptors(fd_starved):
    srv = fd_starved
    with open(f"/proc/{srv.pid}/limits") as f:
        limits = f.read()
    assert f"Max open files            {HARD_NOFILE}" in limits, limits
    srv.wait_log(rf"open file limit {HARD_NOFILE} is below --max-clients")
    bystander = LineChatClient(srv.port)
    bystander.sync("bystander")
    baseline = proc_fd_count(srv.pid)
    mark = srv.log_mark()

    served, shed = fill(srv, 80)
    assert shed > 0 and served, (len(served), shed)
    # The last shed connection may still be on its way out.
    wait_until(lambda: proc_fd_count(srv.pid) == HARD_NOFILE, 5,
               f"the server holding all {HARD_NOFILE} descriptors")
    srv.wait_logs(r"out of file descriptors: refused a connection", shed, since=mark)
    assert srv.running()

    # Starved, it neither spins nor stops serving the clients it has.
    bystander.sync()                   # take the JOINs: then all is quiet
    cpu0, t0 = proc_cpu_seconds(srv.pid), time.monotonic()
    readable, _, _ = select.select([bystander.sock], [], [], 1.0)
    assert not readable
    cpu = proc_cpu_seconds(srv.pid) - cpu0
    assert cpu < 0.3 * (time.monotonic() - t0), f"the server used {cpu:.2f}s of CPU idling"
    t0 = time.monotonic()
    assert bystander.cmd("ECHO starved") == "OK starved"
    assert time.monotonic() - t0 < scaled(1)
    for c in served[:5]:
        assert c.cmd("ECHO still") == "OK still"

    # Ten leave: ten descriptors are free, and newcomers are served again.
    for c in served[:10]:
        c.close()
    for c in served[:10]:
        wait_disconnect(srv, c.local_port, since=mark)
    more, shed2 = fill(srv, 10)
    assert (len(more), shed2) == (10, 0)
    for c in served[10:] + more:
        c.close()
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)
    bystander.close()


def test_storage_commands_when_out_of_descriptors(fd_starved):
    """Out of descriptors, a command that must open a file can't: it must
    say so, not claim that the folder is empty or the file missing."""
    srv = fd_starved
    (srv.data_dir / "ten").write_bytes(b"0123456789")
    bystander = LineChatClient(srv.port)
    bystander.sync("bystander")
    baseline = proc_fd_count(srv.pid)
    served, shed = fill(srv, 80)
    assert shed > 0
    c = served[0]
    listing = c.cmd("LIST")
    download = c.cmd("DOWNLOAD ten")
    assert c.cmd("ECHO alive") == "OK alive"
    for s in served:
        s.close()
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)
    bystander.close()
    assert listing != "OK 0", "LIST said the folder is empty when it could not read it"
    assert download != "ERR no such file: ten", \
        "DOWNLOAD said an existing file is missing when it could not open it"
    assert listing.startswith("ERR") and download.startswith("ERR"), (listing, download)
