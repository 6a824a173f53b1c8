"""Safe text for every terminal (docs/protocol.md, "Text safety"; issue 12 §1).

Line-mode receivers (real ``nc`` here) get other users' text with control
characters, bytes that are not UTF-8 and bidi controls shown escaped; TPKT
receivers get the sender's bytes exactly; the ``bottle`` client shows bidi
controls escaped too.  Every wait is on an event (a line, a frame, an exit)
with a deadline; every process is stopped by its PID.
"""

import os
import re
import subprocess
import threading
import time

import pytest

from harness.clients import TpktClient, run_nc
from harness.env import BOTTLE, DEFAULT_TIMEOUT

ESC_ATTACK = b"\x1b[2J\x1b]0;pwned\x07"          # issue 12: clear screen, set title
BIDI = [b"\xe2\x80\xaa", b"\xe2\x80\xab", b"\xe2\x80\xac", b"\xe2\x80\xad", b"\xe2\x80\xae",
        b"\xe2\x81\xa6", b"\xe2\x81\xa7", b"\xe2\x81\xa8", b"\xe2\x81\xa9"]
GREETING = re.compile(rb"you are (Guest\d+)\n")


class Reader:
    """A process whose stdout a thread collects; wait() blocks on new output."""

    def __init__(self, argv, **kw):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, **kw)
        self.data = b""
        self.eof = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        while True:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                self.cond.notify_all()

    def wait(self, pattern, timeout=DEFAULT_TIMEOUT):
        """The first match of the regex (bytes) in the output, waiting for it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = rx.search(self.data)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError(f"no {pattern!r} in output: {self.data[-2000:]!r}")
                self.cond.wait(left)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()                      # by PID: Popen.kill
        self.proc.wait(timeout=5)
        self.thread.join(timeout=5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def readers():
    made = []

    def factory(argv):
        r = Reader(argv)
        made.append(r)
        return r

    yield factory
    for r in made:
        r.stop()


def nc_member(readers, server):
    """A real nc in the room: greeted (line mode), its nick known."""
    r = readers(["nc", "127.0.0.1", str(server.port)])
    nick = r.wait(GREETING).group(1).decode()
    return r, nick


def tpkt_member(server):
    c = TpktClient(server.port)
    c.hello()
    return c


def assert_terminal_safe(data):
    """Nothing a terminal would act on: no control byte but \\n and \\t, valid UTF-8
    without C1 controls or bidi controls."""
    bad = [b for b in data if (b < 0x20 and b not in (0x0a, 0x09)) or b == 0x7f]
    assert not bad, f"control bytes {bad[:10]} in {data[-500:]!r}"
    text = data.decode("utf-8")                   # strict: raises on invalid UTF-8
    assert not [ch for ch in text if 0x80 <= ord(ch) <= 0x9f], text[-500:]
    assert not [ch for ch in text if 0x202a <= ord(ch) <= 0x202e or 0x2066 <= ord(ch) <= 0x2069]


def test_issue_attack_is_escaped_for_nc_and_exact_for_tpkt(server, readers):
    """The command of issue 12, verbatim: the nc receivers see \\x1b..., never ESC."""
    nc1, _ = nc_member(readers, server)
    nc2, _ = nc_member(readers, server)
    t = tpkt_member(server)
    try:
        sent = run_nc(server.port, b"SAY " + ESC_ATTACK + b"\n", extra=("-q1",))
        assert sent.returncode == 0
        sender = GREETING.search(sent.stdout).group(1)
        assert sent.stdout.endswith(b"\nOK\n"), sent.stdout
        want = b"MSG " + sender + rb" \\x1b\[2J\\x1b\]0;pwned\\x07\n"
        for r in (nc1, nc2):
            r.wait(want)
            assert_terminal_safe(r.data)
        assert t.wait_for(b"MSG " + sender) == b"MSG " + sender + b" " + ESC_ATTACK
    finally:
        t.close()


def line_escape(data):
    """The line-mode rule of docs/protocol.md, written again from the table."""
    out, i = bytearray(), 0
    while i < len(data):
        c = data[i]
        if 0x20 <= c < 0x7f or c == 0x09:
            out.append(c)
            i += 1
            continue
        if c >= 0xc2:
            need = 2 if c <= 0xdf else 3 if c <= 0xef else 4 if c <= 0xf4 else 0
            try:
                ch = data[i:i + need].decode("utf-8") if need else ""
            except UnicodeDecodeError:
                ch = ""
            if len(ch) == 1 and ord(ch) >= 0xa0:
                cp = ord(ch)
                if 0x202a <= cp <= 0x202e or 0x2066 <= cp <= 0x2069:
                    out += b"\\u%04x" % cp
                else:
                    out += data[i:i + need]
                i += need
                continue
        out += {0x0a: b"\\n", 0x0d: b"\\r"}.get(c, b"\\x%02x" % c)
        i += 1
    return bytes(out)


def test_every_byte_from_a_tpkt_sender(server, readers):
    """All 256 byte values and a multi-line text: one escaped line per text line
    for nc, the frame byte for byte for TPKT."""
    nc, _ = nc_member(readers, server)
    rx = tpkt_member(server)
    tx = tpkt_member(server)
    try:
        body = bytes(range(256)) + b"\nsecond\rline\t" + b"".join(BIDI) + b"\xc2\x9b\n\xff" \
            + b" \xe2\x82\xac\xf0\x9f\x98\x80 \xe2\x82 \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80"
        assert tx.cmd(b"SAY " + body) == "OK"
        head = b"MSG " + tx.nick.encode() + b" "
        assert rx.wait_for(head) == head + body
        want = b"".join(head + line_escape(part) + b"\n" for part in body.split(b"\n"))
        nc.wait(re.escape(want))
        assert_terminal_safe(nc.data)
        # Spot checks of the reference itself, against docs/protocol.md.
        assert line_escape(b"\x1b[2J\t\\\r\x7f") == b"\\x1b[2J\t\\\\r\\x7f"
        assert line_escape(b"\xc2\x9b\xe2\x80\xae\xc3\xa9") == b"\\xc2\\x9b\\u202e\xc3\xa9"
    finally:
        rx.close()
        tx.close()


def test_bidi_controls_neutralised_for_nc_and_the_bottle_client(server, readers):
    """Trojan Source: the overrides reach nc and bottle as \\u202e, TPKT exactly."""
    nc, _ = nc_member(readers, server)
    watcher = tpkt_member(server)
    cli = readers([BOTTLE, f"127.0.0.1:{server.port}"])   # script mode: stdin a pipe
    try:
        watcher.join_nick()                     # the bottle client is in the room
        text = "access \u202euser\u202c \u2066admin\u2069 \u202a\u202b\u202d\u2067\u2068"
        sent = run_nc(server.port, f"SAY {text}\n".encode(), extra=("-q1",))
        sender = GREETING.search(sent.stdout).group(1)
        escaped = (rb"access \\u202euser\\u202c \\u2066admin\\u2069 "
                   rb"\\u202a\\u202b\\u202d\\u2067\\u2068")
        nc.wait(b"MSG " + sender + b" " + escaped + b"\n")
        assert_terminal_safe(nc.data)
        assert watcher.wait_for(b"MSG " + sender) == b"MSG " + sender + b" " + text.encode()
        cli.wait(escaped)
        assert not any(b in cli.data for b in BIDI), cli.data
    finally:
        watcher.close()


def test_tab_backslash_and_utf8_pass_unchanged(server, readers):
    nc, _ = nc_member(readers, server)
    text = "a\tb \\x1b C:\\dir \"q\" привет €"
    sent = run_nc(server.port, f"SAY {text}\n".encode(), extra=("-q1",))
    sender = GREETING.search(sent.stdout).group(1)
    nc.wait(re.escape(b"MSG " + sender + b" " + text.encode() + b"\n"))


def test_file_names_in_replies_are_escaped_for_line_mode(server, readers):
    """LIST and errors carry file names: escaped for nc, exact over TPKT."""
    names = [b"rtl\xe2\x80\xaeexe.txt", b"csi\xc2\x9b2J", b"bin\xff\xfe", b"plain \\ name"]
    for n in names:
        with open(os.path.join(os.fsencode(server.data_dir), n), "wb") as f:
            f.write(b"x")
    out = run_nc(server.port, b"LIST\nDOWNLOAD \"nosuch\xe2\x80\xae\x1b\"\n"
                 b"DOWNLOAD \"nosuch\xe2\x80\xae\"\nECHO \x1b[2J\xe2\x81\xa6\nFOO\x1b[1m\n")
    assert_terminal_safe(out.stdout)
    lines = out.stdout.split(b"\n")
    assert lines[1] == b"OK 4"
    assert sorted(lines[2:6]) == sorted([
        b"OK 1 bin\\xff\\xfe", b"OK 1 csi\\xc2\\x9b2J", b"OK 1 plain \\ name",
        b"OK 1 rtl\\u202eexe.txt"])
    assert lines[6] == b"ERR invalid file name"              # ESC: not a name at all
    assert lines[7] == b"ERR no such file: nosuch\\u202e"
    assert lines[8] == b"OK \\x1b[2J\\u2066"
    assert lines[9].startswith(b"ERR unknown command: FOO")
    c = TpktClient(server.port)
    try:
        listing = c.cmd_raw(b"LIST").split(b"\n")
        assert listing[0] == b"OK 4"
        assert sorted(x.split(b" ", 1)[1] for x in listing[1:]) == sorted(names)
    finally:
        c.close()
