"""System tests for bottled's TPKT framing (RFC 1006; docs/protocol.md,
section 1), including a check of the bytes on the wire with tshark.

Run with:  pytest-3 -q tests/system/test_tpkt.py
"""

import collections
import random
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness.clients import TpktClient, open_room
from harness.protocol import GREETING_RE, tpkt_frame


def replies_only(payloads):
    return [p for p in payloads
            if p.split(b" ", 1)[0] not in (b"MSG", b"JOIN", b"LEAVE", b"NICK")]


# --------------------------------------------------------------------------
# Framing basics
# --------------------------------------------------------------------------

def test_greeting_is_one_frame_after_first_frame(server, connect_tpkt):
    c = connect_tpkt(server, first=b"ECHO first")
    greeting = c.frame()
    assert GREETING_RE.match(greeting.decode()), greeting
    assert c.frame() == b"OK first"


def test_echo_returns_any_bytes(server, connect_tpkt):
    c = connect_tpkt(server)
    arg = b"a\nb\x00c\r\n\x00\x00\n" + bytes(range(256)) + b"\n\x03\x00\x00\x04"
    assert c.cmd_raw(b"ECHO " + arg) == b"OK " + arg
    assert c.cmd_raw(b"ECHO \x00") == b"OK \x00"
    assert c.cmd_raw(b"ECHO \n") == b"OK \n"
    assert c.cmd_raw(b"ECHO  \n ") == b"OK  \n "
    assert c.cmd_raw(b"ECHO") == b"OK"
    # The largest frame a client can send: 65531 payload bytes.
    rnd = random.Random(1006)
    big = bytes(rnd.getrandbits(8) for _ in range(65531 - 5))
    assert c.cmd_raw(b"ECHO " + big, timeout=10) == b"OK " + big
    assert len(c.received[-1]) == 65529


def test_empty_payload_is_an_error_and_connection_stays(server, connect_tpkt):
    (a, b), _ = open_room(server, connect_tpkt, None, 2, 0)
    assert a.cmd(b"") == "ERR empty command"
    assert a.cmd(b"") == "ERR empty command"
    assert a.cmd("ECHO still open") == "OK still open"
    a.send_frames([b"", b"ECHO x", b"", b"ECHO y"])
    assert [a.reply() for _ in range(4)] == [
        "ERR empty command", "OK x", "ERR empty command", "OK y"]
    assert a.cmd("SAY after empty") == "OK"
    assert b.wait_event(lambda e: e.startswith("MSG ")) == \
        f"MSG {a.nick} after empty"


def test_empty_payload_as_first_frame(server, connect_tpkt):
    c = connect_tpkt(server, first=b"")
    assert c.hello() == "ERR empty command"
    assert c.cmd("ECHO ok") == "OK ok"


def test_unknown_verb_in_tpkt(server, connect_tpkt):
    c = connect_tpkt(server)
    assert c.cmd("FROB x") == "ERR unknown command: FROB"
    assert c.cmd("echo Works") == "OK Works"


# --------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------

SCRIPT = [
    b"ECHO a",
    b"",
    b"ECHO " + b"b" * 300,
    b"NICK Splitter",
    b"WHO",
    b"HELP ECHO",
    b"bogus verb",
    b"ECHO multi\nline\x00\xff",
    b"SAY hi",
    b"ECHO " + bytes(range(256)),
    b"ECHO z",
]


def run_script(port, send):
    """Greeting-first session running SCRIPT; returns (greeting, replies)."""
    c = TpktClient(port, nodelay=True, first=None)
    try:
        send(c, b"".join(tpkt_frame(p) for p in SCRIPT))
        greeting = c.greeting().rsplit(" ", 1)[0]    # without the Guest name
        replies = [c.reply_raw() for _ in SCRIPT]
        assert c.cmd("QUIT") == "OK bye"
        c.expect_closed()
        return greeting, replies
    finally:
        c.close()


def test_frames_split_at_every_byte_equal_one_send(server):
    def one_send(c, data):
        c.send_raw(data)

    def byte_by_byte(c, data):
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])

    mark = server.log_mark()
    whole = run_script(server.port, one_send)
    server.wait_log(r"Splitter left: quit \(0 in the room\)$", since=mark)
    mark = server.log_mark()
    split = run_script(server.port, byte_by_byte)
    server.wait_log(r"Splitter left: quit \(0 in the room\)$", since=mark)
    assert split == whole
    # And the replies are the right ones.
    assert whole[1] == [
        b"OK a",
        b"ERR empty command",
        b"OK " + b"b" * 300,
        b"OK Splitter",
        b"OK 1 Splitter",
        b"OK ECHO <text>: reply with the text",
        b"ERR unknown command: bogus",
        b"OK multi\nline\x00\xff",
        b"OK",
        b"OK " + bytes(range(256)),
        b"OK z",
    ]


def test_frame_pair_split_at_every_position(server, connect_tpkt):
    c = connect_tpkt(server, nodelay=True)
    c.hello()
    data = tpkt_frame(b"ECHO split\nme") + tpkt_frame(b"") + \
        tpkt_frame(b"ECHO 2")
    for cut in range(1, len(data)):
        c.send_raw(data[:cut])
        c.send_raw(data[cut:])
        got = [c.reply_raw() for _ in range(3)]
        assert got == [b"OK split\nme", b"ERR empty command", b"OK 2"], cut


def test_many_frames_in_one_send(server, connect_tpkt):
    c = connect_tpkt(server)
    c.hello()
    rnd = random.Random(4000)
    # ~250 KiB: more than one 64 KiB server read, so frames straddle reads.
    payloads = []
    for i in range(600):
        body = bytes(rnd.choice(b"abcdef\n\x00 ") for _ in range(rnd.randrange(0, 800)))
        payloads.append(b"ECHO " + str(i).encode() + b":" + body)
    payloads.insert(300, b"")
    c.send_frames(payloads)
    got = [c.reply_raw(timeout=10) for _ in payloads]
    want = [b"OK " + p[5:] if p else b"ERR empty command" for p in payloads]
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"reply {i}: {g[:40]!r} != {w[:40]!r}"


# --------------------------------------------------------------------------
# Bad headers
# --------------------------------------------------------------------------

BAD_HEADERS = [
    (b"\x04\x00\x00\x08", "ERR bad TPKT version"),
    (b"\x03\x01\x00\x08", "ERR bad TPKT reserved byte"),
    (b"\x03\x00\x00\x03", "ERR bad TPKT length"),
]


@pytest.mark.parametrize("header,error", BAD_HEADERS,
                         ids=["version-4", "reserved-1", "length-3"])
def test_bad_header_closes_only_that_client(server, connect_tpkt,
                                            connect_line, header, error):
    (a, b, bad), (la,) = open_room(server, connect_tpkt, connect_line, 3, 1)
    bad.send_raw(header + b"ECHO")
    rest = bad.expect_closed()
    assert replies_only(rest) == [error.encode()], rest
    server.wait_log(rf"{error[4:]}, closing$")
    for c in (a, b, la):
        assert c.wait_event(lambda e: e.startswith("LEAVE ")) == \
            f"LEAVE {bad.nick} closed", c
    # The others keep chatting.
    assert a.cmd("SAY still\nhere") == "OK"
    assert b.wait_event(lambda e: e.startswith("MSG ")) == \
        f"MSG {a.nick} still\nhere"
    assert la.wait_event(lambda e: e.startswith("MSG ")) == \
        f"MSG {a.nick} still"
    assert la.wait_event(lambda e: e.startswith("MSG ")) == \
        f"MSG {a.nick} here"
    assert la.cmd("SAY me too") == "OK"
    assert a.wait_event(lambda e: e.startswith("MSG ")) == \
        f"MSG {la.nick} me too"
    assert a.cmd("WHO").startswith("OK 3 ")


@pytest.mark.parametrize("header,error", BAD_HEADERS,
                         ids=["version-4", "reserved-1", "length-3"])
def test_bad_header_after_good_frames_in_same_send(server, connect_tpkt,
                                                   header, error):
    c = connect_tpkt(server)
    c.hello()
    c.send_raw(tpkt_frame(b"ECHO one") + tpkt_frame(b"ECHO two") + header)
    rest = c.expect_closed()
    assert replies_only(rest) == [b"OK one", b"OK two", error.encode()]


@pytest.mark.parametrize("length", [0, 1, 2])
def test_other_short_lengths(server, connect_tpkt, length):
    c = connect_tpkt(server)
    c.hello()
    c.send_raw(b"\x03\x00" + length.to_bytes(2, "big"))
    assert replies_only(c.expect_closed()) == [b"ERR bad TPKT length"]


def test_max_frame_option(make_server, connect_tpkt, connect_line):
    srv = make_server("--max-frame", "100")
    (a, big), (la,) = open_room(srv, connect_tpkt, connect_line, 2, 1)
    # 100 bytes in all is accepted ...
    arg = b"q" * (100 - 4 - 5)
    assert big.cmd_raw(b"ECHO " + arg) == b"OK " + arg
    assert la.cmd("SAY " + "w" * 500) == "OK"
    assert big.wait_event(lambda e: e.startswith("MSG ")) == \
        f"MSG {la.nick} " + "w" * 500
    # ... 101 is fatal.
    big.send_frame(b"ECHO " + arg + b"!")
    rest = big.expect_closed()
    assert replies_only(rest) == [b"ERR TPKT frame too long"], rest
    srv.wait_log(r"TPKT frame too long, closing$")
    for c in (a, la):
        assert c.wait_event(lambda e: e.startswith("LEAVE ")) == \
            f"LEAVE {big.nick} closed"
    assert a.cmd("ECHO fine") == "OK fine"


# --------------------------------------------------------------------------
# On the wire: tshark must see a clean TPKT stream
# --------------------------------------------------------------------------

class Tshark:
    """tshark capturing the loopback traffic of one TCP port into a file.

    tshark prints "Capturing on 'Loopback..." before its capture really
    runs, and writes packets to the file with a delay (what is not yet
    written when it gets SIGINT is lost).  So the capture also records a
    probe port, and ``barrier()`` makes a probe connection and waits until
    its packets are in the file: everything captured before is in it too.
    """

    def __init__(self, binary, port, path):
        self.binary = binary
        self.path = path
        self.stderr = []
        self._cond = threading.Condition()
        self.probe_listener = socket.socket()
        self.probe_listener.bind(("127.0.0.1", 0))
        self.probe_listener.listen(8)
        self.probe_port = self.probe_listener.getsockname()[1]
        self.probe_packets = 0
        self.proc = subprocess.Popen(
            [binary, "-i", "lo",
             "-f", f"tcp port {port} or tcp port {self.probe_port}",
             "-w", str(path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.stderr.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.stderr.append(None)        # EOF
            self._cond.notify_all()

    def stderr_text(self):
        with self._cond:
            return "\n".join(x for x in self.stderr if x)

    def wait_capturing(self, timeout=15):
        """Wait for "Capturing on 'Loopback", then for a captured probe."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(line and "Capturing on 'Loopback" in line
                          for line in self.stderr):
                remaining = deadline - time.monotonic()
                if None in self.stderr or remaining <= 0:
                    raise AssertionError(
                        "tshark did not start capturing:\n"
                        + "\n".join(x for x in self.stderr if x))
                self._cond.wait(remaining)
        self.barrier(deadline - time.monotonic())

    def _probe(self):
        with socket.create_connection(("127.0.0.1", self.probe_port),
                                      timeout=5):
            conn, _ = self.probe_listener.accept()
            conn.close()

    def _count_probe_packets(self):
        out = subprocess.run(
            [self.binary, "-r", str(self.path),
             "-Y", f"tcp.port == {self.probe_port}",
             "-T", "fields", "-e", "frame.number"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        # A file cut in the middle of a packet block is fine here.
        return len(out.stdout.split())

    def barrier(self, timeout=15):
        """Probe, and wait until the probe's packets are in the file.

        Probes again every second: the first ones may predate the capture.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._probe()
            probe_deadline = min(deadline, time.monotonic() + 1.0)
            last_size = -1
            while time.monotonic() < probe_deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"tshark exited:\n{self.stderr_text()}")
                size = self.path.stat().st_size if self.path.exists() else 0
                if size == last_size:
                    # Nothing new in the file yet: poll again shortly.
                    time.sleep(0.05)
                    continue
                last_size = size
                n = self._count_probe_packets()
                if n > self.probe_packets:
                    self.probe_packets = n
                    return
        raise AssertionError(
            f"tshark wrote no probe packet to {self.path} within "
            f"{timeout:.0f}s:\n{self.stderr_text()}")

    def stop(self, timeout=10):
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self._thread.join(timeout=5)
        finally:
            self.probe_listener.close()
        return self.proc.returncode


def tshark_tpkt_fields(binary, pcap, port):
    """[(version, length)] of every TPKT PDU in the capture, in order."""
    out = subprocess.run(
        [binary, "-r", str(pcap), "-d", f"tcp.port=={port},tpkt",
         "-Y", f"tcp.port == {port}",
         "-T", "fields", "-E", "separator=/t",
         "-e", "tpkt.version", "-e", "tpkt.length"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    pdus = []
    for line in out.stdout.decode().splitlines():
        if not line.strip():
            continue                      # a packet without a TPKT PDU
        versions, _, lengths = line.partition("\t")
        versions = versions.split(",") if versions else []
        lengths = lengths.split(",") if lengths else []
        assert len(versions) == len(lengths), line
        pdus += [(int(v), int(n)) for v, n in zip(versions, lengths)]
    return pdus


def test_tshark_sees_valid_tpkt(server, connect_tpkt, tmp_path):
    binary = shutil.which("tshark")
    if not binary:
        pytest.skip("tshark is not installed (Debian package tshark)")
    pcap = tmp_path / "session.pcapng"
    cap = Tshark(binary, server.port, pcap)
    clients = []
    try:
        cap.wait_capturing()
        a = connect_tpkt(server, first=b"ECHO hello tshark")
        clients.append(a)
        assert a.hello() == "OK hello tshark"
        b = connect_tpkt(server)
        clients.append(b)
        b.hello()
        old_a = a.nick
        assert a.wait_event(lambda e: e.startswith("JOIN ")) == \
            f"JOIN {b.nick}"
        assert a.cmd("NICK Ann") == "OK Ann"
        assert b.wait_event(lambda e: e.startswith("NICK ")) == \
            f"NICK {old_a} Ann"
        assert a.cmd(b"") == "ERR empty command"
        assert a.cmd("TIME").startswith("OK ")
        assert a.cmd("HELP").startswith("OK ")
        for size in (1, 200, 1400, 5000, 40000, 65526):
            arg = bytes((i * 7 + size) % 251 for i in range(size))
            assert a.cmd_raw(b"ECHO " + arg, timeout=10) == b"OK " + arg
        text = "line one\nline two\n\tthird"
        assert a.cmd(f"SAY {text}") == "OK"
        assert b.wait_event(lambda e: e.startswith("MSG ")) == \
            f"MSG Ann {text}"
        assert b.cmd("SAY short") == "OK"
        assert a.wait_event(lambda e: e.startswith("MSG ")) == \
            f"MSG {b.nick} short"
        # Pipelined: several PDUs in one TCP segment.
        a.send_frames([b"ECHO p1", b"WHO", b"ECHO p333", b""])
        got = [a.reply() for _ in range(4)]
        assert got[0] == "OK p1" and got[2:] == ["OK p333", "ERR empty command"]
        assert sorted(got[1].split()[2:]) == sorted(["Ann", b.nick])
        assert b.cmd("QUIT") == "OK bye"
        b.expect_closed()
        assert a.wait_event(lambda e: e.startswith("LEAVE ")) == \
            f"LEAVE {b.nick} quit"
        assert a.cmd("QUIT") == "OK bye"
        a.expect_closed()
        server.wait_log(r"Ann left: quit \(0 in the room\)$")
        cap.barrier()           # every session packet is in the file now
    finally:
        cap.stop()

    want = collections.Counter()
    for c in clients:
        want.update(4 + len(p) for p in c.sent)
        want.update(4 + len(p) for p in c.received)
    pdus = tshark_tpkt_fields(binary, pcap, server.port)
    assert pdus, "tshark decoded no TPKT PDU at all"
    assert {v for v, _ in pdus} == {3}, \
        [p for p in pdus if p[0] != 3]
    got = collections.Counter(n for _, n in pdus)
    assert got == want, (
        f"only on the wire: {dict(got - want)}; "
        f"only in the session: {dict(want - got)}")
