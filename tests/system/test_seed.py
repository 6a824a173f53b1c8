"""The seed's own Ruby chat clients against bottled (docs/protocol.md, "The
seed dialect"; issue 12, section 6): --seed-listen greets them at once, each
frame is a chat message, /nick renames, exit leaves, and they share the room
with a bottle-protocol TPKT client and a line client.

The clients are taken from the seed document at test time (never copied into
the repository); only their address is rewritten, to 127.0.0.1 and the test
server's seed port.  They run under Debian's ruby with stdin and stdout on
pipes; a one-line preload makes Ruby write stdout at once (as it does on a
terminal), so the test can wait for what they print.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.clients import TpktClient
from harness.env import scaled
from harness.protocol import tpkt_frame

SEED = Path(os.environ.get("BOTTLE_SEEDS", "/work/shared/seeds")) / "000_299a392bf48ca918.txt"

pytestmark = pytest.mark.skipif(
    not SEED.exists() or subprocess.run(["sh", "-c", "command -v ruby"],
                                        capture_output=True).returncode != 0,
    reason="needs the seed document and ruby (scripts/deps)")


def seed_clients():
    """{"stage1": code, "stage2": code}: the two client.rb listings."""
    text = SEED.read_text()
    blocks = re.findall(r"##### client\.rb\s*```ruby\n(.*?)```", text, re.S)
    assert len(blocks) == 2, f"expected the two client.rb listings, found {len(blocks)}"
    return {"stage1": blocks[0], "stage2": blocks[1]}


def printed(code):
    """What the client prints of its own, read from its code (the document's
    text is Russian, stored with its encoding mangled, so it is taken as it
    is): (after connecting, when it ends, stage I's prefix of a frame)."""
    says = re.findall(r'^\s*puts "([^"#]*)"', code, re.M)
    prefix = re.search(r'puts "([^"#]*)#\{response\}"', code)
    return says[0], says[-1], prefix.group(1) if prefix else None


CONNECTED, DISCONNECTED, SERVER_SAYS = (
    printed(seed_clients()["stage1"]) if SEED.exists() else (None, None, None))


def aimed_at(code, port):
    """The client's code with its server address changed to the test server."""
    new, n = re.subn(r"TCPSocket\.new\('(?:localhost|192\.168\.100\.90)', 4000\)",
                     f"TCPSocket.new('127.0.0.1', {port})", code)
    assert n == 1, "the client's TCPSocket.new line was not found"
    return new


class RubyClient:
    """A seed client process: stdin written line by line, stdout collected."""

    def __init__(self, path, preloads):
        argv = ["ruby"]
        for p in preloads:
            argv += ["-r", str(p)]
        self.proc = subprocess.Popen(argv + [str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, "LANG": "C.UTF-8"})
        self.pid = self.proc.pid
        self._cond = threading.Condition()
        self._out = b""
        self._err = b""
        self._seen = 0  # where the next wait_out looks from
        self._threads = [threading.Thread(target=self._read, args=(s, k), daemon=True)
                         for s, k in ((self.proc.stdout, "_out"), (self.proc.stderr, "_err"))]
        for t in self._threads:
            t.start()

    def _read(self, stream, attr):
        fd = stream.fileno()
        while True:
            data = os.read(fd, 65536)
            with self._cond:
                if data:
                    setattr(self, attr, getattr(self, attr) + data)
                self._cond.notify_all()
            if not data:
                return

    def out(self):
        with self._cond:
            return self._out.decode("utf-8", errors="replace")

    def err(self):
        with self._cond:
            return self._err.decode("utf-8", errors="replace")

    def wait_out(self, regex, timeout=None):
        """Wait until stdout, past what earlier waits matched, matches regex."""
        pat = re.compile(regex)
        deadline = time.monotonic() + scaled(timeout)
        with self._cond:
            while True:
                text = self._out.decode("utf-8", errors="replace")
                m = pat.search(text, self._seen)
                if m:
                    self._seen = m.end()
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._alive()):
                    raise AssertionError(
                        f"ruby client {self.pid}: no /{regex}/ in its output;\n"
                        f"stdout: {text!r}\nstderr: {self._err.decode(errors='replace')!r}")
                self._cond.wait(min(left, 0.5))

    def _alive(self):
        return any(t.is_alive() for t in self._threads)

    def type(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def end_input(self):
        self.proc.stdin.close()

    def wait(self, timeout=None):
        rc = self.proc.wait(timeout=scaled(timeout))
        for t in self._threads:
            t.join(timeout=2.0)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        for s in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def seed_server(make_server):
    """A server with a seed listener; .seed_port is its port."""
    srv = make_server("--seed-listen", "127.0.0.1:0")
    m = srv.wait_log(r"listening on 127\.0\.0\.1:(\d+) for the seed's clients")
    srv.seed_port = int(m.group(1))
    assert srv.seed_port != srv.port
    return srv


@pytest.fixture
def ruby(tmp_path):
    """Factory: ruby(stage, port, shim=False) -> a running RubyClient."""
    made = []
    sync = tmp_path / "sync_stdout.rb"
    sync.write_text("$stdout.sync = true\n")
    # The stage I listing reads headers with header.bytes.unpack("C4"), and an
    # Array has no unpack (NoMethodError on the first frame read, against the
    # seed's own server too). This shim adds the method its author meant, so
    # the rest of the client can be tried; the client's code stays as written.
    shim = tmp_path / "array_unpack.rb"
    shim.write_text("class Array; def unpack(fmt) = pack('C*').unpack(fmt); end\n")
    codes = seed_clients()

    def factory(stage, port, shim_unpack=False):
        path = tmp_path / f"{stage}-{len(made)}-client.rb"
        path.write_text(aimed_at(codes[stage], port))
        c = RubyClient(path, [sync] + ([shim] if shim_unpack else []))
        made.append(c)
        return c

    yield factory
    for c in made:
        c.stop()


def guest_of(client):
    return client.wait_out(r"Hi, you are (Guest\d+)").group(1)


# --------------------------------------------------------------------------
# Stage II: the multi-user client, side by side with bottle and line clients
# --------------------------------------------------------------------------

def test_stage2_clients_chat_with_tpkt_and_line_members(seed_server, ruby, connect_tpkt,
                                                        connect_line):
    t = connect_tpkt(seed_server)
    t.hello()
    line = connect_line(seed_server)
    line.greeting()
    t.wait_event(f"JOIN {line.nick}")

    a = ruby("stage2", seed_server.seed_port)
    a.wait_out(re.escape(CONNECTED))
    ga = guest_of(a)
    t.wait_event(f"JOIN {ga}")
    b = ruby("stage2", seed_server.seed_port)
    gb = guest_of(b)
    a.wait_out(rf"\n{gb} joined\n")
    line.wait_event(f"JOIN {gb}")

    # A seed member's message: a normal MSG for the others, "nick: text" for
    # the other seed client, and "Ok: text" for its own.
    a.type("hello from the seed")
    assert t.wait_event(re.compile(rf"MSG {ga} .*")) == f"MSG {ga} hello from the seed"
    assert line.wait_event(re.compile(rf"MSG {ga} .*")) == f"MSG {ga} hello from the seed"
    b.wait_out(rf"\n{ga}: hello from the seed\n")
    a.wait_out(r"\nOk: hello from the seed\n")

    # The other way: a multi-line TPKT message stays one frame.
    assert t.cmd("SAY two lines\nin one frame") == "OK"
    a.wait_out(rf"\n{t.nick}: two lines\nin one frame\n")
    b.wait_out(rf"\n{t.nick}: two lines\nin one frame\n")
    assert line.cmd("ME waves") == "OK"
    a.wait_out(rf"\n\* {line.nick} waves\n")
    assert line.cmd(f"TELL {gb} psst") == "OK"
    b.wait_out(rf"\n{line.nick} \(private\): psst\n")

    # /nick: refused when empty, the room's rename otherwise.
    a.type("/nick")
    a.wait_out(r"\nNickname can not be empty\.\n")
    a.type("/nick   alice  ")
    a.wait_out(r"\nYou are now: alice\n")
    b.wait_out(rf"\n{ga} is now known as alice\n")
    t.wait_event(f"NICK {ga} alice")
    line.wait_event(f"NICK {ga} alice")
    b.type("/nick ALICE")
    b.wait_out(r"\nNickname ALICE is taken; pick another\.\n")
    b.type("/nick bad name!")
    b.wait_out(r"\nInvalid nickname: 1-32 letters, digits or _-\.\[\]\n")

    reply = t.cmd("WHO")
    assert set(reply.split()[2:]) == {t.nick, line.nick, "alice", gb}, reply

    # The stage II client ends at "exit" by itself, closing its socket.
    a.type("exit")
    assert a.wait(timeout=10) == 0
    a.wait_out(re.escape(DISCONNECTED))
    t.wait_event("LEAVE alice closed")
    b.wait_out(r"\nalice left \(closed\)\n")

    b.end_input()
    assert b.wait(timeout=10) == 0
    line.wait_event(f"LEAVE {gb} closed")
    assert a.err() == "" and b.err() == "", (a.err(), b.err())


# --------------------------------------------------------------------------
# Stage I: one frame read after each line sent
# --------------------------------------------------------------------------

def test_stage1_client_as_written_sends_then_fails_on_its_own_read(seed_server, ruby,
                                                                   connect_tpkt):
    """The stage I listing as it is: its first message reaches the room, then
    its read_tpkt calls Array#unpack, which Ruby does not have."""
    t = connect_tpkt(seed_server)
    t.hello()
    c = ruby("stage1", seed_server.seed_port)
    c.wait_out(re.escape(CONNECTED))
    nick = t.join_nick()
    c.type("hello from stage one")
    assert t.wait_event(re.compile(rf"MSG {nick} .*")) == f"MSG {nick} hello from stage one"
    assert c.wait(timeout=10) != 0
    assert "undefined method `unpack'" in c.err(), c.err()
    t.wait_event(f"LEAVE {nick} closed")


def test_stage1_client_gets_its_acknowledgements(seed_server, ruby, connect_tpkt,
                                                 connect_line):
    """With Array#unpack supplied: the greeting is the first frame, so each
    line typed shows the answer to the line before it (docs/protocol.md)."""
    t = connect_tpkt(seed_server)
    t.hello()
    line = connect_line(seed_server)
    line.greeting()
    t.wait_event(f"JOIN {line.nick}")
    c = ruby("stage1", seed_server.seed_port, shim_unpack=True)
    c.wait_out(re.escape(CONNECTED))
    nick = t.join_nick()

    c.type("first")
    c.wait_out(re.escape(SERVER_SAYS) + rf"Hi, you are {nick}\n")
    assert line.wait_event(re.compile(rf"MSG {nick} .*")) == f"MSG {nick} first"
    c.type("second")
    c.wait_out(re.escape(SERVER_SAYS) + rf"Ok: first\n")
    c.type("/nick ")
    c.wait_out(re.escape(SERVER_SAYS) + rf"Ok: second\n")
    c.type("/nick Stage1")
    c.wait_out(re.escape(SERVER_SAYS) + rf"Nickname can not be empty\.\n")
    t.wait_event(f"NICK {nick} Stage1")
    # exit: the server says goodbye and closes; the client reads the answer
    # it still had queued and ends cleanly at the end of its input.
    c.type(" EXIT ")
    c.wait_out(re.escape(SERVER_SAYS) + rf"You are now: Stage1\n")
    t.wait_event("LEAVE Stage1 quit")
    c.end_input()
    assert c.wait(timeout=10) == 0, c.err()
    c.wait_out(re.escape(DISCONNECTED))
    assert [e for e in line.take_events() if e.startswith("MSG")] == []
    assert line.cmd("ECHO x") == "OK x"


# --------------------------------------------------------------------------
# The dialect on the wire: limits and the framer are those of TPKT
# --------------------------------------------------------------------------

class SeedSocket:
    """A raw client of the seed listener (the server speaks first)."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(timeout))
        self.buf = b""

    def frame(self):
        while True:
            if len(self.buf) >= 4:
                total = struct.unpack(">H", self.buf[2:4])[0]
                assert self.buf[:2] == b"\x03\x00" and total >= 4, self.buf[:16]
                if len(self.buf) >= total:
                    payload, self.buf = self.buf[4:total], self.buf[total:]
                    return payload.decode("utf-8", errors="replace")
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"closed while waiting for a frame; {self.buf!r}")
            self.buf += data

    def send(self, text):
        self.sock.sendall(tpkt_frame(text.encode() if isinstance(text, str) else text))

    def expect_closed(self):
        """Frames until the server closes; returns them."""
        frames = []
        while True:
            try:
                frames.append(self.frame())
            except AssertionError:
                return frames

    def close(self):
        self.sock.close()


@pytest.fixture
def seed_socket():
    made = []

    def factory(port):
        s = SeedSocket(port)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()


def test_no_history_replay_and_exit_frame(seed_server, seed_socket, connect_tpkt):
    t = connect_tpkt(seed_server)
    t.hello()
    assert t.cmd("SAY said before the seed member came") == "OK"
    s = seed_socket(seed_server.seed_port)
    nick = re.fullmatch(r"Hi, you are (Guest\d+)", s.frame()).group(1)
    t.wait_event(f"JOIN {nick}")
    assert t.cmd("SAY live") == "OK"
    assert s.frame() == f"{t.nick}: live"  # no HISTORY first
    s.send("")
    assert s.frame() == "Nothing sent: the message is empty."
    s.send("  exit\n")
    assert s.expect_closed() == [f"Bye, {nick}."]
    t.wait_event(f"LEAVE {nick} quit")


def test_bad_tpkt_header_closes_like_tpkt(seed_server, seed_socket, connect_tpkt):
    t = connect_tpkt(seed_server)
    t.hello()
    s = seed_socket(seed_server.seed_port)
    nick = re.fullmatch(r"Hi, you are (Guest\d+)", s.frame()).group(1)
    s.sock.sendall(b"\x04\x00\x00\x05x")
    assert s.expect_closed() == ["ERR bad TPKT version"]
    t.wait_event(f"LEAVE {nick} closed")


def test_limits_apply(make_server, seed_socket):
    srv = make_server("--seed-listen", "127.0.0.1:0", "--max-clients", "2",
                      "--max-frame", "64")
    port = int(srv.wait_log(r"listening on 127\.0\.0\.1:(\d+) for the seed").group(1))
    a, b = seed_socket(port), seed_socket(port)
    assert a.frame().startswith("Hi, you are ")
    assert b.frame().startswith("Hi, you are ")
    assert seed_socket(port).expect_closed() == ["ERR server full"]
    b.send("x" * 100)
    assert b.expect_closed() == ["ERR TPKT frame too long"]
    a.send("still here")
    while (f := a.frame()) != "Ok: still here":
        assert re.fullmatch(r"Guest\d+ (joined|left \(closed\))", f), f
    # A line client counts too: the room now has a and a line member.
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5))
    try:
        c.sendall(b"WHO\n")
        got = b""
        while got.count(b"\n") < 2:
            data = c.recv(4096)
            assert data, got
            got += data
        assert b"OK 2 " in got, got
    finally:
        c.close()
