"""Every size option at its smallest accepted value, crossed with every
transfer (UPLOAD, DOWNLOAD, LIST) in both framings, and with a chat burst.

Whatever the option does to a connection, the server must keep running (under
the sanitizer build too: a memory error there is a failure through the
harness's report check), every connection must end with a logged reason
(``disconnect <peer>: <reason>``), the server's descriptor count must return
to what it was before, and a well-behaved client connected throughout must
still be answered.

What each option may legitimately do:

* ``--max-output 4096`` cuts off a client whose *unsent* output passes 4 KiB.
  A fast reader moving a file (both framings) must not be cut off: the file's
  bytes are paced by the socket, not queued.  One reply bigger than 4 KiB
  (a LIST of 61 long names, about 5.6 KiB) may be either delivered or end the
  connection as ``output overflow``; both are accepted, nothing else is.
* ``--max-frame 5`` leaves a TPKT client one payload byte per frame: every
  real command frame gets ``ERR TPKT frame too long`` and the connection is
  closed (``protocol error``).  Line mode does not care.
* ``--max-line 16`` refuses longer command lines (``ERR line too long``) and
  the connection stays usable; upload data in line mode is raw bytes, not
  lines, so a 150,000-byte upload passes.  TPKT does not care.
"""

import hashlib
import os
import selectors
import socket
import time

import pytest

from harness.clients import Client, LineChatClient, TpktClient, check_bystander
from harness.env import scaled
from harness.proc import proc_fd_count, wait_fd_count
from harness.protocol import GREETING_RE, take_frames, take_lines, tpkt_frame
from harness.server import run_bottled, wait_disconnect

SMALLEST = {
    "max-output": ("--max-output", 4096),
    "max-frame": ("--max-frame", 5),
    "max-line": ("--max-line", 16),
}
DOWNLOAD_SIZE = 200 * 1024
UPLOAD_SIZE = 150000          # "UPLOAD u 150000" is 15 bytes: fits --max-line 16
LIST_FILES = 60
DATA_FRAME = 65531
CLOSED_BY_US = {"peer closed", "reset"}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("option", sorted(SMALLEST))
def test_the_smallest_accepted_value_is_the_documented_one(option):
    flag, value = SMALLEST[option]
    below = run_bottled(flag, str(value - 1), "-V")
    assert below.returncode == 2, (below.returncode, below.stderr)
    assert flag.encode() in below.stderr
    at = run_bottled(flag, str(value), "-V")
    assert at.returncode == 0 and at.stdout.startswith(b"bottled "), (at.returncode, at.stderr)


# --------------------------------------------------------------------------
# Setup: a storage folder with a file to download and a long listing
# --------------------------------------------------------------------------

def list_names():
    return [f"{i:02d}-" + "n" * 78 for i in range(LIST_FILES)]


@pytest.fixture
def limited(make_server, tmp_path):
    """Factory: limited(option) -> (server, bystander, download bytes, fd baseline)."""
    def start(option):
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        payload = os.urandom(DOWNLOAD_SIZE)
        (data_dir / "d").write_bytes(payload)
        for i, name in enumerate(list_names()):
            (data_dir / name).write_bytes(b"x" * i)
        srv = make_server(*SMALLEST[option], data_dir=data_dir)
        bystander = LineChatClient(srv.port)
        bystander.sync("bystander")
        started.append(bystander)
        return srv, bystander, payload, proc_fd_count(srv.pid)

    started = []
    yield start
    for c in started:
        c.close()


def expected_list_lines(srv):
    """The LIST reply's text lines for the folder as it is: the count, then
    "<size> <name>" sorted by name."""
    files = sorted((e.name.encode(), e.stat().st_size) for e in os.scandir(srv.data_dir)
                   if e.is_file(follow_symlinks=False))
    return [str(len(files))] + [f"{size} {name.decode()}" for name, size in files]


def recv_to_eof(sock, buf, timeout):
    """Everything the server sends until it closes (a reset counts as closed)."""
    data = bytearray(buf)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"server did not close the connection; got {len(data)} bytes"
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            return bytes(data)
        except socket.timeout:
            continue
        if not chunk:
            return bytes(data)
        data += chunk


def split_greeting(lines):
    """Drop the greeting (if it arrived at all: a connection cut off for
    overflow before its first flush never gets it)."""
    if lines and GREETING_RE.match(lines[0]):
        return lines[1:]
    return lines


# --------------------------------------------------------------------------
# One transfer each; every function returns (local port, allowed reasons)
# --------------------------------------------------------------------------

def line_upload(srv, option):
    data = os.urandom(UPLOAD_SIZE)
    c = Client(srv.port, timeout=scaled(10))
    try:
        c.send(f"UPLOAD u {UPLOAD_SIZE}\n".encode() + data)
        raw = recv_to_eof(c.sock, c.buf, scaled(20))
    finally:
        c.close()
    lines = raw.decode(errors="replace").splitlines()
    assert split_greeting(lines) == ["OK 0", f"OK {UPLOAD_SIZE} {sha256(data)}"], lines
    assert (srv.data_dir / "u").read_bytes() == data
    return c.local_port, {"transfer done"}


def line_download(srv, option, payload):
    c = Client(srv.port, timeout=scaled(10))
    try:
        c.send(b"DOWNLOAD d\n")
        raw = recv_to_eof(c.sock, c.buf, scaled(20))
    finally:
        c.close()
    head = f"OK {DOWNLOAD_SIZE} 0 {sha256(payload)}\n".encode()
    i = raw.find(b"\n") + 1
    assert GREETING_RE.match(raw[:i - 1].decode()), raw[:200]
    assert raw[i:i + len(head)] == head, raw[i:i + 200]
    got = raw[i + len(head):]
    assert len(got) == DOWNLOAD_SIZE and got == payload, \
        f"line download delivered {len(got)} of {DOWNLOAD_SIZE} bytes (or wrong bytes)"
    return c.local_port, {"transfer done"}


def line_list(srv, option):
    c = Client(srv.port, timeout=scaled(10))
    try:
        c.send(b"LIST\nQUIT\n")
        raw = recv_to_eof(c.sock, c.buf, scaled(10))
    finally:
        c.close()
    lines = split_greeting(raw.decode(errors="replace").splitlines())
    want = ["OK " + text for text in expected_list_lines(srv)]
    if lines == want + ["OK bye"]:
        return c.local_port, {"quit"}
    # One reply over --max-output: cut off, having got at most a prefix of it.
    assert option == "max-output", f"LIST in line mode: {lines[:5]!r}..."
    assert lines == want[:len(lines)], f"not a prefix of the listing: {lines[:5]!r}"
    return c.local_port, {"output overflow"}


def tpkt_client(srv):
    return TpktClient(srv.port, first=None, timeout=scaled(10))


def tpkt_refused(srv, command):
    """--max-frame 5: any real command frame ends the connection."""
    c = tpkt_client(srv)
    try:
        c.send_frame(command)
        got = c.expect_closed(timeout=scaled(10))
    finally:
        c.close()
    assert len(got) == 2 and GREETING_RE.match(got[0].decode()), got
    assert got[1] == b"ERR TPKT frame too long", got
    return c.local_port, {"protocol error"}


def tpkt_upload(srv, option):
    if option == "max-frame":
        return tpkt_refused(srv, f"UPLOAD u {UPLOAD_SIZE}")
    data = os.urandom(UPLOAD_SIZE)
    c = tpkt_client(srv)
    try:
        c.send_raw(tpkt_frame(f"UPLOAD u {UPLOAD_SIZE}")
                   + b"".join(tpkt_frame(data[i:i + DATA_FRAME])
                              for i in range(0, UPLOAD_SIZE, DATA_FRAME))
                   + tpkt_frame("QUIT"))
        got = c.expect_closed(timeout=scaled(20))
    finally:
        c.close()
    assert [p.decode(errors="replace") for p in got[1:]] == \
        ["OK 0", f"OK {UPLOAD_SIZE} {sha256(data)}", "OK bye"], got[:4]
    assert (srv.data_dir / "u").read_bytes() == data
    return c.local_port, {"quit"}


def tpkt_download(srv, option, payload):
    if option == "max-frame":
        return tpkt_refused(srv, "DOWNLOAD d")
    c = tpkt_client(srv)
    try:
        # QUIT waits until the download is over (docs/protocol.md, section 5).
        c.send_raw(tpkt_frame("DOWNLOAD d") + tpkt_frame("QUIT"))
        got = c.expect_closed(timeout=scaled(20))
    finally:
        c.close()
    texts = [p[:80].decode(errors="replace") for p in got]
    assert len(got) >= 2 and GREETING_RE.match(texts[0]), texts[:3]
    assert texts[1] == f"OK {DOWNLOAD_SIZE} 0 {sha256(payload)}", texts[:3]
    data = b"".join(got[2:-1])
    assert got[-1] == b"OK bye" and data == payload, \
        (f"TPKT download under --{option}: {len(data)} of {DOWNLOAD_SIZE} bytes, and "
         f"{'' if got[-1] == b'OK bye' else 'no '}OK bye, before the connection ended; "
         f"the server's log:\n" + "\n".join(srv.log_lines()[-8:]))
    return c.local_port, {"quit"}


def tpkt_list(srv, option):
    if option == "max-frame":
        return tpkt_refused(srv, "LIST")
    c = tpkt_client(srv)
    try:
        c.send_raw(tpkt_frame("LIST") + tpkt_frame("QUIT"))
        got = c.expect_closed(timeout=scaled(10))
    finally:
        c.close()
    texts = [p.decode(errors="replace") for p in got]
    if texts and GREETING_RE.match(texts[0]):
        texts = texts[1:]
    want = "OK " + "\n".join(expected_list_lines(srv))
    if texts == [want, "OK bye"]:
        return c.local_port, {"quit"}
    assert option == "max-output", f"LIST over TPKT: {[t[:60] for t in texts]!r}"
    # Cut off for overflow: the listing did not arrive whole, nor the bye.
    assert want not in texts and "OK bye" not in texts, [t[:60] for t in texts]
    return c.local_port, {"output overflow"}


def line_overlong_command_keeps_the_connection(srv):
    """--max-line 16: a 17-byte command is refused, the next one answered."""
    c = Client(srv.port)
    try:
        assert c.cmd("ECHO " + "x" * 12) == "ERR line too long (at most 16 bytes)"
        assert c.cmd("ECHO " + "y" * 11) == "OK " + "y" * 11
        assert c.cmd("QUIT") == "OK bye"
        c.expect_closed()
    finally:
        c.close()
    return c.local_port, {"quit"}


@pytest.mark.parametrize("framing", ["line", "tpkt"])
@pytest.mark.parametrize("option", sorted(SMALLEST))
def test_every_transfer_at_the_smallest_limit(limited, option, framing):
    srv, bystander, payload, baseline = limited(option)
    if framing == "line":
        steps = [lambda: line_upload(srv, option), lambda: line_download(srv, option, payload),
                 lambda: line_list(srv, option)]
        if option == "max-line":
            steps.append(lambda: line_overlong_command_keeps_the_connection(srv))
    else:
        steps = [lambda: tpkt_upload(srv, option), lambda: tpkt_download(srv, option, payload),
                 lambda: tpkt_list(srv, option)]
    failures = []
    ended = []
    for step in steps:
        try:
            ended.append(step())
        except AssertionError as e:      # go on: the other transfers still say something
            failures.append(str(e)[:1500])
        assert srv.running(), "the server died:\n" + srv.log_text()[-3000:]
    for port, reasons in ended:
        reason = wait_disconnect(srv, port)
        assert reason in reasons, f"connection from port {port} ended as {reason!r}, " \
                                  f"expected one of {sorted(reasons)}"
    for check in (lambda: wait_fd_count(srv, baseline),
                  lambda: check_bystander(srv, bystander)):
        try:
            check()
        except AssertionError as e:
            failures.append(str(e)[:1500])
    assert srv.running()
    assert not failures, "\n---\n".join(failures)


# --------------------------------------------------------------------------
# Chat burst
# --------------------------------------------------------------------------

TALKERS_PER_FRAMING = 3
SAYS = 100


class Member:
    """A chat member driven by the non-blocking drain loop below."""

    def __init__(self, client, kind, talker=False, tid=None):
        self.client = client
        self.kind = kind
        self.nick = client.nick
        self.talker = talker
        self.tid = tid
        self.raw = bytearray()
        self.replies = []
        self.msgs = []            # (sender nick, text)
        self.events = []          # JOIN / LEAVE / NICK texts
        self.closed = False

    def sync(self):
        """A round trip that works under every option (a one-byte frame in
        TPKT mode), then forget the events buffered so far."""
        if self.kind == "tpkt":
            assert self.client.cmd(b"X") == "ERR unknown command: X"
        else:
            self.client.sync()
        self.client.take_events()

    def start_draining(self):
        self.raw += self.client.buf
        self.client.buf = b""
        self.client.sock.setblocking(False)

    def feed(self, data):
        self.raw += data
        if self.kind == "tpkt":
            items = take_frames(self.raw)
        else:
            items = take_lines(self.raw)
        for item in items:
            text = item.decode("utf-8", errors="replace")
            if text.startswith("MSG "):
                _, nick, body = text.split(" ", 2)
                self.msgs.append((nick, body))
            elif text.startswith(("OK", "ERR")):
                self.replies.append(text)
            else:
                self.events.append(text)


def drain(members, done, timeout):
    sel = selectors.DefaultSelector()
    for m in members:
        m.start_draining()
        sel.register(m.client.sock, selectors.EVENT_READ, m)
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert time.monotonic() < deadline, "the chat burst did not complete in time"
            for key, _ in sel.select(timeout=0.2):
                m = key.data
                try:
                    data = m.client.sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                if not data:
                    m.closed = True
                    sel.unregister(m.client.sock)
                    continue
                m.feed(data)
    finally:
        sel.close()
        for m in members:
            m.client.sock.setblocking(True)
            m.client.sock.settimeout(m.client.timeout)
            m.client.buf = bytes(m.raw)     # a partial line or frame, read on later
            m.raw = bytearray()


@pytest.mark.parametrize("option", sorted(SMALLEST))
def test_chat_burst_at_the_smallest_limit(limited, connect_line, connect_tpkt, option):
    srv, bystander, _, baseline = limited(option)
    textlen = 12 if option == "max-line" else 200      # "SAY " + 12 = 16 bytes
    talkers = []
    for i in range(TALKERS_PER_FRAMING):
        talkers.append(Member(connect_line(srv), "line", True, f"L{i}"))
        talkers.append(Member(connect_tpkt(srv, first=b"X"), "tpkt", True, f"T{i}"))
    # Sluggards never read past their greeting; their receive windows are tiny.
    sluggards = [Member(connect_line(srv, rcvbuf=4096), "line"),
                 Member(connect_tpkt(srv, rcvbuf=4096, first=b"X"), "tpkt")]
    watcher = Member(bystander, "line")
    for m in talkers + sluggards + [watcher]:
        m.sync()
    for m in talkers + sluggards:
        m.nick = m.client.nick

    def text(tid, k):
        return f"{tid}.{k}".ljust(textlen, "z")

    frames_refused = option == "max-frame"
    speaking = [t for t in talkers if not (frames_refused and t.kind == "tpkt")]
    readers = speaking + [watcher]
    for t in talkers:
        t.says = [f"SAY {text(t.tid, k)}" for k in range(SAYS)]
        if option == "max-line" and t.kind == "line":
            t.says.insert(0, "SAY " + "o" * 40)    # refused; the connection goes on
        t.sent = 0
    # A burst is every talker's SAYs pipelined in one segment.  Under
    # --max-output 4096 that alone would queue 22 KB for every member in one
    # loop turn, before the server tries to write: a fast reader would be cut
    # off like a slow one.  There the talkers keep one SAY outstanding, which
    # queues at most 6 x 215 bytes per member and turn.
    window = 1 if option == "max-output" else len(talkers[0].says)

    def pump():
        for t in talkers:
            if t.closed or t.sent == len(t.says) or t.sent - len(t.replies) >= window:
                continue
            batch = t.says[t.sent:len(t.replies) + window]
            if t.kind == "line":
                data = b"".join(s.encode() + b"\n" for s in batch)
            else:
                data = b"".join(tpkt_frame(s) for s in batch)
            t.client.sock.setblocking(True)
            t.client.sock.settimeout(scaled(5))
            try:
                t.client.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass                      # a refused TPKT talker is gone already
            t.client.sock.setblocking(False)
            t.sent += len(batch)

    def want_msgs(m):
        return sum(SAYS for t in speaking if t is not m)

    def done():
        pump()
        for t in talkers:
            if t not in speaking:
                if not t.closed:
                    return False
            elif len(t.replies) < len(t.says):
                if t.closed:
                    raise AssertionError(f"talker {t.nick} closed after {len(t.replies)} replies")
                return False
        return all(len(m.msgs) >= want_msgs(m) for m in readers)

    drain(talkers + [watcher], done, scaled(30))
    assert srv.running()

    for t in talkers:
        if t not in speaking:
            assert t.replies == ["ERR TPKT frame too long"], t.replies
            continue
        want = ["OK"] * SAYS
        if option == "max-line" and t.kind == "line":
            want = ["ERR line too long (at most 16 bytes)"] + want
        assert t.replies == want, f"{t.nick}: {t.replies[:3]!r}... ({len(t.replies)})"
    for m in readers:
        by_sender = {}
        for nick, body in m.msgs:
            by_sender.setdefault(nick, []).append(body)
        for t in speaking:
            if t is m:
                continue
            got = by_sender.pop(t.nick, [])
            assert got == [text(t.tid, k) for k in range(SAYS)], \
                f"{m.nick} got {len(got)} messages of {t.nick}, or out of order"
        assert not by_sender, f"{m.nick} got messages from {sorted(by_sender)}"

    # The sluggards may or may not have been cut off: the kernel takes about
    # 3 MB for a receiver that never reads (the server's send buffer grows to
    # tcp_wmem's maximum) before anything stays queued in the server.
    sluggish = {m.client.local_port for m in sluggards}
    for m in talkers + sluggards:
        m.client.close()
    for m in talkers + sluggards:
        port = m.client.local_port
        reason = wait_disconnect(srv, port)
        if m.talker and m not in speaking:
            allowed = {"protocol error"}
        elif port in sluggish:
            allowed = CLOSED_BY_US | {"output overflow"}
        else:
            allowed = CLOSED_BY_US
        assert reason in allowed, f"{m.nick} ended as {reason!r}, expected {sorted(allowed)}"
        if reason == "output overflow":
            leave = f"LEAVE {m.nick} too slow"
            if leave not in watcher.events:
                bystander.wait_event(leave)
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)
