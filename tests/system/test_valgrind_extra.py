"""Disconnects in the phases no other test ends a connection in: mid-line,
mid-frame, mid-upload in line mode, mid-hash (download and upload), mid-download
in both framings, with a broadcast queued for the leaver, and closed by the
idle timer with input half received.

Written for `make valgrind` (mk/valgrind.mk), which runs them with the server
under valgrind, where what counts is that each phase frees what it holds. Each
test runs its variants against one server (a server costs most of a second to
start under valgrind). They are ordinary system tests too:
    pytest-3 -q tests/system/test_valgrind_extra.py

Everything talks to 127.0.0.1.  The big files are sparse: no disk is used.
"""

import os
import re

from harness.env import wait_until
from harness.files import MiB
from harness.protocol import tpkt_frame

GiB = 1024 * MiB
SHA_ANY = "ab" * 32
HOWS = ("close", "reset")


def disconnect(c, how):
    """End a test client's connection: FIN ("close") or RST ("reset")."""
    (c.close if how == "close" else c.reset)()


def end_re(c, how):
    """The server's log line for that end of the connection."""
    why = "peer closed" if how == "close" else "reset"
    return rf"disconnect 127\.0\.0\.1:{c.local_port}: {why} "


def sparse_file(path, size):
    with open(path, "wb") as f:
        f.truncate(size)


def server_has_open(srv, path):
    """Whether the server process holds ``path`` open (it is reading it)."""
    fd_dir = f"/proc/{srv.pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == str(path):
                return True
        except OSError:
            pass
    return False


def _rx_queue(srv, c):
    """Bytes from ``c`` the server has not read yet (its socket's Recv-Q)."""
    local = f"0100007F:{srv.port:04X}"
    remote = f"0100007F:{c.local_port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f:
            w = line.split()
            if w[1] == local and w[2] == remote:
                return int(w[4].split(":")[1], 16)
    return None


def wait_read_all(srv, c):
    """Until the server has read everything ``c`` sent: a partial line or
    frame is then held by the server, not by the kernel."""
    wait_until(lambda: _rx_queue(srv, c) == 0, 10, "the server to read the bytes sent")


def still_serving(srv, connect):
    c = connect(srv)
    assert c.cmd("ECHO still serving") == "OK still serving"


def partial_dir(srv):
    return srv.data_dir / ".bottle" / "partial"


def greeted(kind, srv, connect, connect_tpkt, **kw):
    """A connection in that framing, greeted and past its first reply."""
    if kind == "tpkt":
        c = connect_tpkt(srv, **kw)
        c.hello()
    else:
        c = connect(srv, **kw)
        assert c.cmd("ECHO hello") == "OK hello"
    return c


def send_command(c, kind, text):
    if kind == "tpkt":
        c.send_frame(text)
    else:
        c.send(text + "\n")


# --------------------------------------------------------------------------
# Mid-line and mid-frame
# --------------------------------------------------------------------------

def test_disconnect_mid_line(make_server, connect_line, connect):
    """Lines cut off before their newline: a short one being assembled, an
    overlong one (past --max-line) being discarded; by FIN and by RST."""
    srv = make_server("--max-line", "1000")
    other = connect_line(srv)
    other.sync()
    for partial in ("short", "overlong"):
        for how in HOWS:
            c = connect_line(srv)
            c.sync()
            other.wait_event(f"JOIN {c.nick}")
            c.send(b"ECHO never ends" + (b"x" * 300000 if partial == "overlong" else b""))
            wait_read_all(srv, c)
            if partial == "overlong":            # read, so that a close is a FIN
                assert c.reply() == "ERR line too long (at most 1000 bytes)"
            disconnect(c, how)
            srv.wait_log(end_re(c, how))
            assert other.wait_event(lambda e: e.startswith("LEAVE ")) == \
                f"LEAVE {c.nick} closed", (partial, how)
    still_serving(srv, connect)


def test_disconnect_mid_frame(server, connect_tpkt, connect):
    """TPKT frames cut off in the header and in the payload; by FIN and RST."""
    other = connect_tpkt(server)
    other.hello()
    frame = tpkt_frame(b"SAY " + b"y" * 40000)
    for cut in (2, 20000):
        for how in HOWS:
            c = connect_tpkt(server)
            c.hello()
            other.wait_event(f"JOIN {c.nick}")
            c.send_raw(frame[:cut])
            wait_read_all(server, c)
            disconnect(c, how)
            server.wait_log(end_re(c, how))
            assert other.wait_event(lambda e: e.startswith("LEAVE ")) == \
                f"LEAVE {c.nick} closed", (cut, how)
    assert not [e for e in other.take_events() if e.startswith("MSG ")]
    still_serving(server, connect)


# --------------------------------------------------------------------------
# Mid-upload in line mode (TPKT: test_xfer_resume.py)
# --------------------------------------------------------------------------

def test_disconnect_mid_line_upload(server, connect):
    """Anonymous (its partial dropped) and resumable (kept); by FIN and RST."""
    size, sent = 2 * MiB, MiB
    for token in (None, "tok-valgrind-close", "tok-valgrind-reset"):
        for how in HOWS if token is None else (token.rsplit("-", 1)[1],):
            c = connect(server)
            extra = f" {SHA_ANY} {token}" if token else ""
            assert c.cmd(f"UPLOAD up.bin {size}{extra}") == "OK 0"
            c.send(os.urandom(sent))
            datas = lambda: [n for n in os.listdir(partial_dir(server))   # noqa: E731
                             if n.endswith(".data") and n.startswith(token or "anon")]
            wait_until(lambda: datas() and
                       os.path.getsize(partial_dir(server) / datas()[0]) == sent,
                       10, "the partial to hold what was sent")
            disconnect(c, how)
            server.wait_log(end_re(c, how))
            if token:
                assert (partial_dir(server) / f"{token}.data").stat().st_size == sent
            else:
                assert datas() == [], "an anonymous partial is dropped"
    assert "up.bin" not in os.listdir(server.data_dir)
    still_serving(server, connect)


# --------------------------------------------------------------------------
# Mid-hash: a download of a file without a cached digest, an upload verifying.
# Only by RST: a FIN is a half-close, after which the server finishes what it
# owes (the half-close tests in test_xfer_nc.py and test_xfer_tpkt.py),
# hashing all of 1 GiB.
# --------------------------------------------------------------------------

def test_disconnect_mid_hash_download(server, connect, connect_tpkt):
    path = server.data_dir / "unhashed.bin"
    sparse_file(path, GiB)               # hashing 1 GiB takes many loop turns
    mark = server.log_mark()
    for kind in ("tpkt", "line"):
        c = greeted(kind, server, connect, connect_tpkt)
        send_command(c, kind, "DOWNLOAD unhashed.bin")
        wait_until(lambda: server_has_open(server, path), 10, "the server to open the file")
        disconnect(c, "reset")
        server.wait_log(end_re(c, "reset"), since=mark)
        wait_until(lambda: not server_has_open(server, path), 10,
                   "the server to close the file")
    assert not server.find_log(r"download unhashed\.bin to .*bytes from offset", since=mark), \
        "the digest was done before the disconnect: not a mid-hash test"
    still_serving(server, connect)


def test_disconnect_mid_hash_upload(make_server, tmp_path, connect, connect_tpkt):
    """Uploads whose bytes are all stored are being verified (hashed) when
    their clients go: 1 GiB partials left by earlier connections."""
    data = tmp_path / "data"
    partial = data / ".bottle" / "partial"
    partial.mkdir(parents=True)
    for kind in ("tpkt", "line"):
        sparse_file(partial / f"tok-{kind}.data", GiB)
        (partial / f"tok-{kind}.meta").write_text(f"{GiB} {SHA_ANY} up-{kind}.bin\n")
    srv = make_server(data_dir=data)
    mark = srv.log_mark()
    for kind in ("tpkt", "line"):
        c = greeted(kind, srv, connect, connect_tpkt)
        assert c.cmd(f"UPLOAD up-{kind}.bin {GiB} {SHA_ANY} tok-{kind}") == f"OK {GiB}"
        disconnect(c, "reset")
        srv.wait_log(end_re(c, "reset"), since=mark)
    assert not srv.find_log(r"checksum mismatch", since=mark), \
        "verified before the disconnect: not a mid-hash test"
    still_serving(srv, connect)


# --------------------------------------------------------------------------
# Mid-download (RST: a close with unread data is one anyway)
# --------------------------------------------------------------------------

def test_disconnect_mid_download(server, connect, connect_tpkt):
    size = 4 * MiB
    (server.data_dir / "d.bin").write_bytes(os.urandom(size))
    for kind in ("tpkt", "line"):
        # A small receive window: the server can't push it all into buffers.
        c = greeted(kind, server, connect, connect_tpkt, rcvbuf=4096)
        mark = server.log_mark()
        reply = c.cmd("DOWNLOAD d.bin", timeout=30)
        assert re.fullmatch(rf"OK {size} 0 [0-9a-f]{{64}}", reply), reply
        c.sock.settimeout(10)
        got = 0
        while got < 64 * 1024:           # take a little, then go
            chunk = c.sock.recv(65536)
            assert chunk, "closed early"
            got += len(chunk)
        disconnect(c, "reset")
        server.wait_log(end_re(c, "reset"), since=mark)
        m = server.wait_log(r"download d\.bin to \S+ interrupted at (\d+) of (\d+)",
                            since=mark)
        assert int(m.group(1)) < size
    still_serving(server, connect)


# --------------------------------------------------------------------------
# During a broadcast
# --------------------------------------------------------------------------

def test_disconnect_with_broadcast_queued(server, connect_tpkt, connect_line, connect):
    """Members go while the chat they never read is queued for them (shared
    encodings of each message): some after the burst was acknowledged, some
    while it is still being handed out."""
    sender = connect_tpkt(server)
    sender.hello()
    reader = connect_tpkt(server)
    reader.hello()
    lreader = connect_line(server)
    lreader.sync()
    sleepers = []
    for i in range(6):
        c = connect_tpkt(server, rcvbuf=4096) if i % 2 else connect_line(server, rcvbuf=4096)
        (c.hello if i % 2 else c.sync)()
        sleepers.append(c)
    for c in (sender, reader, lreader):
        c.sync()
        c.take_events()
    n = 300
    texts = [f"#{i:04d} " + "z" * 1000 + "\nsecond line" for i in range(n)]
    early, late = sleepers[:3], sleepers[3:]

    sender.send_frames([f"SAY {t}" for t in texts[:n // 2]])
    for _ in range(n // 2):
        assert sender.reply(timeout=30) == "OK"
    for c in early:                      # their queues hold the first half
        c.reset()
    sender.send_frames([f"SAY {t}" for t in texts[n // 2:]])
    for c in late:                       # while the second half goes out
        c.reset()
    for _ in range(n - n // 2):
        assert sender.reply(timeout=30) == "OK"
    for c in sleepers:
        server.wait_log(rf"disconnect 127\.0\.0\.1:{c.local_port}: ")

    def everything(r, nmsg):
        """Events until ``nmsg`` MSGs, and those buffered by a sync after."""
        evs = []
        while sum(e.startswith("MSG ") for e in evs) < nmsg:
            evs.append(r.event(timeout=30))
        r.sync()
        return evs + r.take_events()

    leaves = sorted(f"LEAVE {c.nick} closed" for c in sleepers)
    evs = everything(reader, n)
    assert [e for e in evs if e.startswith("MSG ")] == [f"MSG {sender.nick} {t}" for t in texts]
    assert sorted(e for e in evs if e.startswith("LEAVE ")) == leaves
    evs = everything(lreader, 2 * n)
    assert [e for e in evs if e.startswith("MSG ")] == [
        line for t in texts for line in (f"MSG {sender.nick} {t.split(chr(10))[0]}",
                                         f"MSG {sender.nick} second line")]
    assert sorted(e for e in evs if e.startswith("LEAVE ")) == leaves
    still_serving(server, connect)


# --------------------------------------------------------------------------
# Closed by the server's timer: idle, with input half received
# --------------------------------------------------------------------------

def test_idle_close_with_partial_input(make_server, connect, connect_tpkt):
    srv = make_server("--idle-timeout", "1")
    conns = [greeted(kind, srv, connect, connect_tpkt) for kind in ("tpkt", "line")]
    conns[0].send_raw(tpkt_frame(b"ECHO " + b"i" * 5000)[:3000])
    conns[1].send(b"ECHO half a line")
    for c in conns:
        wait_read_all(srv, c)
    for c in conns:
        c.expect_closed(timeout=10)
        srv.wait_log(rf"disconnect 127\.0\.0\.1:{c.local_port}: idle ")
    still_serving(srv, connect)
