"""A client may vanish at any point: before its greeting, in the middle of a
line, of a TPKT header or payload, of an upload (line and TPKT), after the
last byte of an upload while the server hashes it, in the middle of a
download (both framings), or while a broadcast is pouring into it.

Every point is tried twice: ``close`` is an orderly FIN (the client read
everything the server had sent, or only shuts down its sending side, since
closing a socket with unread data sends an RST instead), ``reset`` is an RST
(SO_LINGER 0).  Each time the server must log the disconnect with a reason,
give back every descriptor, keep a partial upload that has a resume token
(docs/protocol.md, section 5: the same UPLOAD line again answers
``OK <bytes stored>``), drop one that has none, and keep serving the
well-behaved client connected since before.
"""

import hashlib
import os
import re
import socket
import struct
import time

import pytest

from harness.clients import Client, LineChatClient, TpktClient, check_bystander
from harness.env import scaled, wait_until
from harness.proc import proc_fd_count, wait_fd_count
from harness.protocol import tpkt_frame
from harness.server import wait_disconnect

MiB = 1 << 20
DATA_FRAME = 65531
HOW = ["close", "reset"]
REASON = {"close": {"peer closed"}, "reset": {"reset"}}
# A downloading client never has an empty receive buffer: even close() sends
# an RST, and the server may see either its EOF or the failed write first.
DOWNLOAD_REASONS = {"peer closed", "reset"}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def setting(make_server):
    """(server, bystander, descriptor baseline).  A long greeting delay keeps
    a silent connection in its greeting phase for the mid-greeting case."""
    srv = make_server("--greeting-delay", "5000")
    bystander = LineChatClient(srv.port)
    bystander.sync("bystander")
    yield srv, bystander, proc_fd_count(srv.pid)
    bystander.close()


pytestmark = pytest.mark.usefixtures("drop_big_files")


def end(peer, how):
    """Close the connection the given way (peer: a harness client)."""
    if how == "reset":
        peer.reset()
    else:
        peer.close()


def half_close_and_drain(peer):
    """An orderly close that also shows what the server still sends: shut
    down our side, read to EOF, close.  Returns the bytes that arrived."""
    peer.sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + scaled(5)
    got = b""
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "the server did not close after our FIN"
        peer.sock.settimeout(left)
        try:
            data = peer.sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        got += data
    peer.close()
    return got


def finish(srv, bystander, baseline, port, reasons, since=0):
    """What every case ends with; returns the logged reason."""
    reason = wait_disconnect(srv, port, since=since)
    assert reason in reasons, f"disconnect logged as {reason!r}, expected {sorted(reasons)}"
    assert srv.running()
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)
    return reason


def partial_dir(srv):
    return srv.data_dir / ".bottle" / "partial"


def anonymous_partials(srv):
    return sorted(p.name for p in partial_dir(srv).iterdir() if p.name.startswith("anon_"))


# --------------------------------------------------------------------------
# Before and between commands
# --------------------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
def test_mid_greeting(setting, how):
    srv, bystander, baseline = setting
    mark = srv.log_mark()
    c = Client(srv.port)
    srv.wait_log(rf"connect 127\.0\.0\.1:{c.local_port} ", since=mark)
    end(c, how)
    assert wait_disconnect(srv, c.local_port, since=mark) in REASON[how]
    # It never got as far as the room.
    assert not srv.find_log(r"joined \(2 in the room\)", since=mark)
    finish(srv, bystander, baseline, c.local_port, REASON[how], since=mark)


@pytest.mark.parametrize("how", HOW)
def test_mid_line(setting, how):
    srv, bystander, baseline = setting
    c = Client(srv.port)
    c.send(b"ECHO unterminated")
    c.greeting()
    if how == "close":
        # The unterminated line is no command: nothing answers it.
        assert half_close_and_drain(c) == b""
    else:
        end(c, how)
    finish(srv, bystander, baseline, c.local_port, REASON[how])


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("part", ["header", "payload"])
def test_mid_tpkt_frame(setting, how, part):
    srv, bystander, baseline = setting
    c = TpktClient(srv.port, first=None)
    if part == "header":
        c.send_raw(b"\x03\x00")
    else:
        c.send_raw(struct.pack(">BBH", 3, 0, 4 + 100) + b"ECHO 12345")
    c.greeting()
    if how == "close":
        assert half_close_and_drain(c) == b""
    else:
        end(c, how)
    finish(srv, bystander, baseline, c.local_port, REASON[how])


# --------------------------------------------------------------------------
# Uploads
# --------------------------------------------------------------------------

UPLOAD_SIZE = 100000
CUT_AT = 40000


def start_upload(srv, framing, name, data, token):
    """An UPLOAD with CUT_AT of its bytes sent, its "OK 0" read."""
    words = f"{name} {len(data)}" + (f" {sha256(data)} {token}" if token else "")
    if framing == "line":
        c = Client(srv.port)
        c.send(f"UPLOAD {words}\n".encode() + data[:CUT_AT])
        assert c.reply() == "OK 0"
    else:
        c = TpktClient(srv.port, first=None)
        c.send_raw(tpkt_frame(f"UPLOAD {words}") + b"".join(
            tpkt_frame(data[i:min(i + DATA_FRAME, CUT_AT)]) for i in range(0, CUT_AT, DATA_FRAME)))
        assert c.reply() == "OK 0"
    return c


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("framing", ["line", "tpkt"])
def test_mid_upload(setting, framing, how):
    srv, bystander, baseline = setting
    data = os.urandom(UPLOAD_SIZE)
    token = f"adv-{framing}-{how}-0001"
    kept = start_upload(srv, framing, "kept.bin", data, token)
    anon = start_upload(srv, framing, "anon.bin", data, None)
    # The bytes sent must be in before the reset (an RST discards what the
    # peer has not read yet): the partial's size says so.
    part = partial_dir(srv) / f"{token}.data"
    wait_until(lambda: part.exists() and part.stat().st_size == CUT_AT, 5,
               "the first bytes to reach the partial")
    wait_until(lambda: any(p.stat().st_size == CUT_AT for p in partial_dir(srv).glob("anon_*.data")),
               5, "the anonymous upload's bytes to reach its partial")
    mark = srv.log_mark()
    end(kept, how)
    end(anon, how)
    for c in (kept, anon):
        assert wait_disconnect(srv, c.local_port, since=mark) in REASON[how]
    srv.wait_log(rf"upload kept\.bin from 127\.0\.0\.1:{kept.local_port} interrupted at "
                 rf"{CUT_AT} of {UPLOAD_SIZE} bytes; partial kept for resume", since=mark)
    # Without a token nothing can resume it: its partial is gone.
    wait_until(lambda: not anonymous_partials(srv), 5, "the anonymous partial to be deleted")
    assert not (srv.data_dir / "anon.bin").exists()
    assert part.stat().st_size == CUT_AT
    assert (partial_dir(srv) / f"{token}.meta").exists()
    assert not (srv.data_dir / "kept.bin").exists()

    # The same UPLOAD line again: the server has CUT_AT bytes.
    r = TpktClient(srv.port, first=None)
    try:
        assert r.cmd(f"UPLOAD kept.bin {UPLOAD_SIZE} {sha256(data)} {token}") == f"OK {CUT_AT}"
        r.send_raw(b"".join(tpkt_frame(data[i:i + DATA_FRAME])
                            for i in range(CUT_AT, UPLOAD_SIZE, DATA_FRAME)))
        assert r.reply() == f"OK {UPLOAD_SIZE} {sha256(data)}"
        assert r.cmd("QUIT") == "OK bye"
        r.expect_closed()
    finally:
        r.close()
    assert (srv.data_dir / "kept.bin").read_bytes() == data
    assert not part.exists()
    finish(srv, bystander, baseline, r.local_port, {"quit"})


HASHED_SIZE = 128 * MiB    # a resumed upload hashes its earlier part at the end:
RESUMED_AT = 120 * MiB     # ~0.1 s for 120 MiB, time to disconnect mid-hash


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("framing", ["line", "tpkt"])
def test_mid_hash(setting, framing, how):
    """All bytes are in and the server is hashing them when the client goes.

    Data is hashed as it arrives, so only a resumed upload has a hash to run
    after its last byte: the part stored before. Either way the upload resumed
    once more needs no byte: the server answers ``OK <size>`` and at once
    ``OK <size> <sha256>`` (a FIN lets the hash run on and publish; an RST
    stops it, leaving a complete partial)."""
    srv, bystander, baseline = setting
    block = os.urandom(MiB)
    sha = hashlib.sha256(block * (HASHED_SIZE // MiB)).hexdigest()
    token = f"adv-hash-{framing}-{how}"
    command = f"UPLOAD big.bin {HASHED_SIZE} {sha} {token}"
    frames = b"".join(tpkt_frame(block[i:i + DATA_FRAME]) for i in range(0, MiB, DATA_FRAME))
    # The first part, then a clean break: a resumable partial of RESUMED_AT.
    first = TpktClient(srv.port, first=None)
    assert first.cmd(command) == "OK 0"
    first.sock.settimeout(scaled(30))
    for _ in range(RESUMED_AT // MiB):
        first.sock.sendall(frames)
    part = partial_dir(srv) / f"{token}.data"
    wait_until(lambda: part.stat().st_size == RESUMED_AT, 20, "the first part to be stored",
               interval=0.005)
    mark = srv.log_mark()
    first.close()
    wait_disconnect(srv, first.local_port, since=mark, timeout=20)
    if framing == "line":
        c = Client(srv.port)
        chunk = block
    else:
        c = TpktClient(srv.port, first=None)
        chunk = frames
    assert c.cmd(command) == f"OK {RESUMED_AT}"
    mark = srv.log_mark()
    c.sock.settimeout(scaled(30))
    for _ in range((HASHED_SIZE - RESUMED_AT) // MiB):
        c.sock.sendall(chunk)
    if how == "reset":
        wait_until(lambda: not part.exists() or part.stat().st_size == HASHED_SIZE, 20,
                   "the last byte to reach the partial", interval=0.001)
    end(c, how)
    reason = wait_disconnect(srv, c.local_port, since=mark, timeout=20)
    assert reason in REASON[how]
    rate = srv.find_log(rf"upload big\.bin from 127\.0\.0\.1:{c.local_port}: "
                        rf"{HASHED_SIZE - RESUMED_AT} bytes in", since=mark)
    if how == "reset":
        assert not rate, "the hash finished before the reset: the test missed the hashing"
    else:
        # The FIN came after the last byte: the server finishes what it owes.
        assert rate, "a half-finished upload whose client sent everything was not published"

    r = TpktClient(srv.port, first=None)
    try:
        assert r.cmd(f"UPLOAD big.bin {HASHED_SIZE} {sha} {token}") == f"OK {HASHED_SIZE}"
        assert r.reply(timeout=scaled(20)) == f"OK {HASHED_SIZE} {sha}"
        assert r.cmd("QUIT") == "OK bye"
        r.expect_closed()
    finally:
        r.close()
    stored = srv.data_dir / "big.bin"
    assert stored.stat().st_size == HASHED_SIZE
    h = hashlib.sha256()
    with open(stored, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MiB), b""):
            h.update(chunk)
    assert h.hexdigest() == sha
    assert not list(partial_dir(srv).iterdir())
    finish(srv, bystander, baseline, r.local_port, {"quit"})


# --------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------

DOWNLOAD_SIZE = 64 * MiB   # far more than the kernel buffers between us


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("framing", ["line", "tpkt"])
def test_mid_download(setting, framing, how):
    srv, bystander, baseline = setting
    block = os.urandom(MiB)
    data = block * (DOWNLOAD_SIZE // MiB)
    (srv.data_dir / "big.bin").write_bytes(data)
    sha = sha256(data)
    mark = srv.log_mark()
    got = bytearray()
    if framing == "line":
        c = Client(srv.port, rcvbuf=65536)
        c.send(b"DOWNLOAD big.bin\n")
        assert c.reply(timeout=scaled(10)) == f"OK {DOWNLOAD_SIZE} 0 {sha}"
        got += c.buf
        c.sock.settimeout(scaled(10))
        while len(got) < MiB:
            got += c.sock.recv(65536)
    else:
        c = TpktClient(srv.port, first=None, rcvbuf=65536)
        c.send_frame("DOWNLOAD big.bin")
        assert c.reply(timeout=scaled(10)) == f"OK {DOWNLOAD_SIZE} 0 {sha}"
        while len(got) < MiB:
            got += c.frame()
    end(c, how)
    srv.wait_log(rf"download big\.bin to 127\.0\.0\.1:{c.local_port} interrupted at \d+ of "
                 rf"{DOWNLOAD_SIZE} bytes", since=mark)
    reason = wait_disconnect(srv, c.local_port, since=mark)
    assert reason in DOWNLOAD_REASONS, reason
    assert bytes(got) == data[:len(got)]

    # Resume from what arrived; the digest says it is still the same file.
    offset = len(got)
    r = TpktClient(srv.port, first=None)
    try:
        assert r.cmd(f"DOWNLOAD big.bin {offset} {sha}") == f"OK {DOWNLOAD_SIZE} {offset} {sha}"
        h = hashlib.sha256(bytes(got))
        n = offset
        while n < DOWNLOAD_SIZE:
            payload = r.frame(timeout=scaled(20))
            h.update(payload)
            n += len(payload)
        assert n == DOWNLOAD_SIZE and h.hexdigest() == sha
        assert r.cmd("QUIT") == "OK bye"
        r.expect_closed()
    finally:
        r.close()
    finish(srv, bystander, baseline, r.local_port, {"quit"})


# --------------------------------------------------------------------------
# During a broadcast
# --------------------------------------------------------------------------

RECEIVERS = 8          # per framing
BURST = 300
TEXT = 1000


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("victim_framing", ["line", "tpkt"])
def test_during_a_broadcast(setting, connect_line, connect_tpkt, victim_framing, how):
    """One receiver of a 300-message burst goes after 50 messages; every other
    receiver still gets all 300, in order, and hears it leave."""
    srv, bystander, baseline = setting
    tpkt = [connect_tpkt(srv) for _ in range(RECEIVERS)]
    for c in tpkt:
        c.hello()
    line = [connect_line(srv) for _ in range(RECEIVERS)]
    for c in line:
        c.sync("joined")
    sender = connect_line(srv)
    sender.sync("sender")
    for c in tpkt + line + [bystander]:
        c.sync()
        c.take_events()
    victim = (line if victim_framing == "line" else tpkt)[0]
    others = [c for c in tpkt + line if c is not victim] + [bystander]

    texts = [f"{k:03d} " + "b" * TEXT for k in range(BURST)]
    sender.send(b"".join(f"SAY {t}\n".encode() for t in texts))
    msg = re.compile(rf"MSG {sender.nick} (.*)", re.S)
    got = [msg.fullmatch(e).group(1) for e in victim.collect_events(50, msg)]
    assert got == texts[:50]
    mark = srv.log_mark()
    if how == "close":
        victim.sock.shutdown(socket.SHUT_WR)
        victim.close()
    else:
        victim.reset()
    reason = wait_disconnect(srv, victim.local_port, since=mark)
    # After a FIN the server may still be writing the burst into a socket
    # that is gone: that write fails as a reset.
    assert reason in (REASON[how] | {"reset"}), reason

    for _ in range(BURST):
        assert sender.reply(timeout=scaled(10)) == "OK"
    leave = f"LEAVE {victim.nick} closed"
    for c in others:
        said, left = [], False
        deadline = time.monotonic() + scaled(10)
        while len(said) < BURST or not left:
            ev = c.event(timeout=max(0.0, deadline - time.monotonic()))
            m = msg.fullmatch(ev)
            if m:
                said.append(m.group(1))
            left = left or ev == leave
        assert said == texts, f"{c!r} lost or reordered messages"
    rest = [c for c in others if c is not bystander] + [sender]
    for c in rest:
        assert c.cmd("QUIT") == "OK bye"
        c.expect_closed()
    for c in rest:
        assert wait_disconnect(srv, c.local_port, since=mark) == "quit"
    finish(srv, bystander, baseline, victim.local_port, REASON[how] | {"reset"}, since=mark)
