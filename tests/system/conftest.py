"""System-test harness for bottled.

Runs the real server binary as a subprocess, bound to 127.0.0.1 (and ::1 where
a test asks for it), and talks to it over plain sockets.  Standard library
only (Debian's python3-pytest, run as ``pytest-3``).

Binaries:
    BOTTLED  absolute path of the server (default <repo>/build/bottled)
    BOTTLE   absolute path of the client (default <repo>/build/bottle)

Every blocking operation here is bounded: sockets carry timeouts, waits carry
deadlines, subprocesses carry timeouts.
"""

import collections
import hashlib
import os
import re
import resource
import signal
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BOTTLED = os.environ.get("BOTTLED") or str(REPO / "build" / "bottled")
BOTTLE = os.environ.get("BOTTLE") or str(REPO / "build" / "bottle")
# A command that runs the server, such as "valgrind --error-exitcode=99 ...":
# the valgrind make target sets it (mk/valgrind.mk).
BOTTLED_WRAP = os.environ.get("BOTTLED_WRAP", "").split()

# Timestamp that starts every log line: 2026-11-23T17:45:00.123+00:00
TIMESTAMP_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
GREETING_RE = re.compile(
    r"^OK bottled (\S+) ready; type HELP for commands; you are Guest(\d+)$")
# First word of every line the server may send.
LINE_WORDS = ("OK", "ERR", "MSG", "JOIN", "LEAVE", "NICK")
EVENT_WORDS = ("MSG", "JOIN", "LEAVE", "NICK")

# Slow runs (the server under valgrind: mk/valgrind.mk) stretch the harness's
# default bounds and its waits for the server's log, start and exit.
TIMEOUT_SCALE = float(os.environ.get("BOTTLE_TIMEOUT_SCALE") or 1)
DEFAULT_TIMEOUT = 5.0 * TIMEOUT_SCALE


def scaled(timeout):
    """A bound given in seconds of a normal run; None: DEFAULT_TIMEOUT."""
    return DEFAULT_TIMEOUT if timeout is None else timeout * TIMEOUT_SCALE


def _raise_nofile_limit():
    """Let this process (and the server it spawns) hold many sockets."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        want = min(want, 65536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass


_raise_nofile_limit()


def nofile_limit():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def first_word_ok(line):
    word = line.split(" ", 1)[0]
    return word in LINE_WORDS


def is_event(line):
    return line.split(" ", 1)[0] in EVENT_WORDS


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------

class Server:
    """A running bottled process whose stderr log is collected by a thread."""

    def __init__(self, args, data_dir, listen=("127.0.0.1:0",), binary=None):
        self.binary = binary or BOTTLED
        if not os.path.exists(self.binary):
            pytest.fail(f"server binary not found: {self.binary} "
                        f"(build it first or set BOTTLED)")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.argv = BOTTLED_WRAP + [self.binary]
        for addr in listen or ():
            self.argv += ["-l", addr]
        self.argv += ["-d", str(self.data_dir)]
        self.argv += [str(a) for a in args]

        self._cond = threading.Condition()
        self._lines = []          # stderr (the log), one entry per line
        self._stdout = []         # stdout, one entry per line
        self._eof = False         # stderr reached EOF
        self.returncode = None
        self.port = None
        self.stop_timed_out = False   # stop() had to SIGKILL it

        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self._threads = [
            threading.Thread(target=self._reader, args=(self.proc.stderr, True),
                             name=f"bottled-{self.pid}-stderr", daemon=True),
            threading.Thread(target=self._reader, args=(self.proc.stdout, False),
                             name=f"bottled-{self.pid}-stdout", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- log collection ----------------------------------------------------

    def _reader(self, stream, is_log):
        try:
            for raw in stream:
                text = raw.decode("utf-8", errors="replace").rstrip("\n")
                with self._cond:
                    (self._lines if is_log else self._stdout).append(text)
                    self._cond.notify_all()
        finally:
            if is_log:
                with self._cond:
                    self._eof = True
                    self._cond.notify_all()

    def log_lines(self):
        with self._cond:
            return list(self._lines)

    def log_text(self):
        return "\n".join(self.log_lines())

    def stdout_text(self):
        with self._cond:
            return "\n".join(self._stdout)

    def log_mark(self):
        """Index to pass as ``since`` to only look at later log lines."""
        with self._cond:
            return len(self._lines)

    def find_log(self, regex, since=0):
        """Non-blocking: first matching log line's re.Match, or None."""
        pat = re.compile(regex)
        with self._cond:
            for line in self._lines[since:]:
                m = pat.search(line)
                if m:
                    return m
        return None

    def _wait_log(self, regex, timeout, since):
        pat = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self._cond:
            checked = since
            while True:
                while checked < len(self._lines):
                    m = pat.search(self._lines[checked])
                    checked += 1
                    if m:
                        return checked - 1, m
                if self._eof:
                    why = "server log ended"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    why = f"timed out after {timeout}s"
                    break
                self._cond.wait(remaining)
            log = "\n".join(self._lines)
        raise AssertionError(
            f"{why} waiting for log line /{regex}/; log so far:\n{log}")

    def wait_log(self, regex, timeout=None, since=0):
        """Wait until a log line (index >= since) matches; return re.Match.

        Event-driven (the reader thread notifies a Condition).  Fails the
        test when the deadline passes or the log ends first.
        """
        return self._wait_log(regex, scaled(timeout), since)[1]

    def wait_logs(self, regex, count, timeout=None, since=0):
        """Wait for ``count`` matching log lines; return their re.Match list."""
        deadline = time.monotonic() + scaled(timeout)
        matches = []
        pos = since
        while len(matches) < count:
            idx, m = self._wait_log(
                regex, max(0.0, deadline - time.monotonic()), pos)
            matches.append(m)
            pos = idx + 1
        return matches

    def wait_listening(self, timeout=10.0):
        m = self.wait_log(r"listening on 127\.0\.0\.1:(\d+)", timeout=timeout)
        self.port = int(m.group(1))
        return self.port

    # -- lifecycle ---------------------------------------------------------

    def running(self):
        return self.proc.poll() is None

    def signal(self, signum):
        if self.proc.poll() is None:
            os.kill(self.pid, signum)

    def wait(self, timeout=5.0):
        """Wait for exit (bounded); return the exit code, None if still up."""
        try:
            self.returncode = self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            return None
        self._join_readers()
        return self.returncode

    def stop(self, timeout=5.0):
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Return exit code.

        A negative code means death by that signal (-9: had to be killed).
        """
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.stop_timed_out = True
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        self.returncode = self.proc.returncode
        self._join_readers()
        return self.returncode

    def _join_readers(self):
        for t in self._threads:
            t.join(timeout=2.0)
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass

    def thread_count(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise AssertionError("no Threads: line in /proc status")

    def client(self, **kw):
        return Client(self.port, **kw)

    def __repr__(self):
        return f"<Server pid={self.pid} port={self.port} argv={self.argv}>"


# --------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------

class _SocketPeer:
    """What every test client does with its socket (self.sock)."""

    def _recv_until(self, deadline, timeout):
        """One recv for expect_closed: bytes, b"" when closed (a reset counts),
        None when the wait timed out early; past the deadline, a failure."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"{self!r}: server did not close the connection within "
                f"{timeout or self.timeout}s; buffered: {self.buf[:200]!r}")
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""
        except socket.timeout:
            return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Close with an RST (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ConnectionClosed(AssertionError):
    """The server closed the connection while a line was expected."""


class Client(_SocketPeer):
    """A raw TCP connection with a buffered line reader.

    Every operation is bounded by ``timeout`` seconds (default 5).
    """

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT,
                 nodelay=False, rcvbuf=None, connect=True):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.buf = b""
        self.lines_read = 0
        self.greeting_line = None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf is not None:
            # Must be set before connect to limit the advertised window.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if connect:
            self.connect()

    def connect(self):
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))
        self.local_port = self.sock.getsockname()[1]
        return self

    # -- raw I/O -----------------------------------------------------------

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout(
                f"timed out waiting for data; buffered: {self.buf[:200]!r}")
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionClosed(
                f"server closed the connection; unterminated data: "
                f"{self.buf[:200]!r}")
        self.buf += data

    def line(self, timeout=None):
        """Next line as str (undecodable bytes replaced), without the \\n."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                raw, self.buf = self.buf[:i], self.buf[i + 1:]
                self.lines_read += 1
                return raw.decode("utf-8", errors="replace")
            self._fill(deadline)

    def greeting(self, timeout=None):
        """Read and check the greeting; it must be the very first line."""
        assert self.lines_read == 0, "greeting() must read the first line"
        line = self.line(timeout)
        assert GREETING_RE.match(line), f"bad greeting: {line!r}"
        self.greeting_line = line
        return line

    def reply(self, timeout=None):
        """Next OK/ERR line, skipping chat events (JOIN/LEAVE/MSG/NICK).

        Reads and checks the greeting first if nothing was read yet.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        if self.lines_read == 0:
            self.greeting(max(0.0, deadline - time.monotonic()))
        while True:
            line = self.line(max(0.0, deadline - time.monotonic()))
            assert first_word_ok(line), f"line with unknown first word: {line!r}"
            if line.startswith("OK") or line.startswith("ERR"):
                return line

    def cmd(self, text, timeout=None):
        """Send ``text`` + newline and return the reply line.

        If the greeting has not been read yet, reply() consumes it first.
        """
        self.send(text.encode() + b"\n" if isinstance(text, str)
                  else text + b"\n")
        return self.reply(timeout)

    def expect_closed(self, timeout=None):
        """Assert the server closes the connection within the timeout.

        Skips any remaining lines; returns them.  A reset counts as closed.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            data = self._recv_until(deadline, timeout)
            if data is None:
                continue
            if not data:
                rest = self.buf.split(b"\n")
                self.buf = b""
                return [r.decode("utf-8", errors="replace") for r in rest if r]
            self.buf += data
            # Bound memory when draining a flood.
            if len(self.buf) > 1 << 20:
                self.buf = self.buf[-4096:]



# --------------------------------------------------------------------------
# External tools
# --------------------------------------------------------------------------

def run_nc(port, data, host="127.0.0.1", extra=("-N",), timeout=10):
    """Run netcat-openbsd with ``data`` on stdin; return CompletedProcess.

    With -N nc shuts down its sending side at EOF on stdin and exits when the
    server closes the connection.
    """
    if isinstance(data, str):
        data = data.encode()
    return subprocess.run(["nc", *extra, host, str(port)], input=data,
                          capture_output=True, timeout=timeout)


def run_bottled(*args, timeout=10):
    """Run the server binary to completion (for --help, bad options...)."""
    return subprocess.run([BOTTLED, *[str(a) for a in args]],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

SANITIZER_REPORT = re.compile(r"(ERROR: (Address|Leak)Sanitizer|runtime error:)[^\n]*")
# BOTTLED_WRAP="valgrind --log-file=DIR/bottled.%p.log ...": one report per server.
VALGRIND_LOG = next((w.split("=", 1)[1] for w in BOTTLED_WRAP
                     if w.startswith("--log-file=")), None)


def valgrind_problem(srv):
    """What is wrong in the valgrind report of a stopped server; None if nothing.

    Errors (definite leaks count with --errors-for-leak-kinds=definite) and,
    with --track-fds=yes, descriptors the server opened and left open.  A
    server the test killed with a signal leaves no report to check.
    """
    if not VALGRIND_LOG:
        return None
    if srv.stop_timed_out:
        return "did not exit after SIGTERM: killed, so valgrind wrote no report"
    if srv.returncode is not None and srv.returncode < 0:
        return None
    path = Path(VALGRIND_LOG.replace("%p", str(srv.pid)))
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"left no valgrind report: {e}"
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    if not m:
        return f"left an unfinished valgrind report, {path}:\n{text[-4000:]}"
    # An fd block ends at an empty "==pid== " line; an inherited one says so.
    fds = [b for b in re.findall(r"^==\d+== (Open .*?)\n==\d+== \n", text, re.M | re.S)
           if "<inherited from parent>" not in b]
    if int(m.group(1)) or fds:
        return (f"had {m.group(1)} valgrind errors and left {len(fds)} descriptors "
                f"open; {path}:\n{text}")
    return None


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(*extra_args, listen=("127.0.0.1:0",), wait=True).

    Starts bottled with ``-l 127.0.0.1:0 -d <tmp_path>/data`` plus the extra
    arguments, waits (10 s) for its listening line, and stops it at teardown.
    """
    servers = []

    def factory(*args, listen=("127.0.0.1:0",), wait=True, data_dir=None):
        n = len(servers)
        d = data_dir or (tmp_path / ("data" if n == 0 else f"data{n}"))
        srv = Server(args, d, listen=listen)
        servers.append(srv)
        if wait:
            srv.wait_listening(timeout=10.0)
        return srv

    yield factory
    for srv in servers:
        srv.stop(timeout=5.0)
    # Under the sanitizer build a report is a failure even if the test passed.
    for srv in servers:
        report = SANITIZER_REPORT.search(srv.log_text())
        if report:
            pytest.fail(f"sanitizer report from bottled: {report.group(0)}\n{srv.log_text()[-4000:]}")
        problem = valgrind_problem(srv)
        if problem:
            pytest.fail(f"bottled under valgrind {problem}\n--- server log (tail):\n"
                        f"{srv.log_text()[-2000:]}", pytrace=False)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def client(server):
    """A connected Client on ``server``; closed at teardown."""
    c = Client(server.port)
    yield c
    c.close()


def _connecting(cls):
    """A fixture body: a factory of cls clients, all closed at teardown."""
    made = []

    def factory(target, **kw):
        port = target.port if isinstance(target, Server) else int(target)
        c = cls(port, **kw)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


@pytest.fixture
def connect():
    """Factory: connect(server_or_port, **Client kwargs); closed at teardown."""
    yield from _connecting(Client)


# --------------------------------------------------------------------------
# Chat and TPKT clients (additions; nothing above depends on them)
# --------------------------------------------------------------------------

TPKT_VERSION = 3
TPKT_HDR_LEN = 4
TPKT_MAX_LEN = 65535
TPKT_MAX_PAYLOAD = TPKT_MAX_LEN - TPKT_HDR_LEN


def _b(data):
    return data.encode() if isinstance(data, str) else bytes(data)


def tpkt_frame(payload):
    """One TPKT frame (RFC 1006) carrying ``payload`` (str or bytes)."""
    payload = _b(payload)
    total = TPKT_HDR_LEN + len(payload)
    assert total <= TPKT_MAX_LEN, f"payload too long for one frame: {len(payload)}"
    return struct.pack(">BBH", TPKT_VERSION, 0, total) + payload


def _text(data):
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) \
        else data


def _is_event_text(text):
    return text.split(" ", 1)[0] in EVENT_WORDS


def _is_reply_text(text):
    word = text.split(" ", 1)[0]
    return word in ("OK", "ERR")


def _event_matcher(want):
    """str: exact text; compiled regex: fullmatch; callable: predicate."""
    if callable(want):
        return want
    if isinstance(want, re.Pattern):
        return lambda ev: want.fullmatch(ev) is not None
    return lambda ev: ev == want


class _ChatMixin:
    """Event bookkeeping shared by the line and TPKT chat clients.

    Chat events (MSG/JOIN/LEAVE/NICK) that arrive while a reply is awaited are
    kept, in order, in ``self.events`` (texts); ``event()`` hands them out
    first, then reads on.
    """

    def _init_chat(self):
        self.events = collections.deque()
        self.nick = None

    def take_events(self):
        """All events buffered so far (and forget them)."""
        evs = list(self.events)
        self.events.clear()
        return evs

    def events_until(self, want, timeout=None):
        """Consume events up to and including the first matching one.

        Returns the list of consumed events (the match is the last one).
        """
        match = _event_matcher(want)
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                ev = self.event(max(0.0, remaining))
            except socket.timeout:
                raise AssertionError(
                    f"{self!r}: no event matching {want!r} within the timeout;"
                    f" events seen meanwhile: {seen[-20:]!r}") from None
            seen.append(ev)
            if match(ev):
                return seen

    def wait_event(self, want, timeout=None):
        """Consume events until one matches; return it."""
        return self.events_until(want, timeout)[-1]

    def collect_events(self, count, want=lambda ev: True, timeout=None):
        """Consume events until ``count`` matching ones; return those."""
        match = _event_matcher(want)
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        got = []
        while len(got) < count:
            remaining = deadline - time.monotonic()
            try:
                ev = self.event(max(0.0, remaining))
            except socket.timeout:
                raise AssertionError(
                    f"{self!r}: only {len(got)} of {count} events matching "
                    f"{want!r}; last: {got[-5:]!r}") from None
            if match(ev):
                got.append(ev)
        return got

    def sync(self, token="sync"):
        """Round trip (ECHO) so every event sent before it is buffered.

        The server is single-threaded and keeps one ordered output queue per
        connection: anything it queued for us before handling this ECHO is
        in ``self.events`` when the reply arrives.
        """
        reply = self.cmd(f"ECHO {token}")
        assert reply == f"OK {token}", f"{self!r}: sync reply {reply!r}"


class LineChatClient(_ChatMixin, Client):
    """A line-mode client that keeps the chat events it skips."""

    def __init__(self, port, **kw):
        self._init_chat()
        super().__init__(port, **kw)

    def greeting(self, timeout=None):
        line = super().greeting(timeout)
        self.nick = "Guest" + GREETING_RE.match(line).group(2)
        return line

    def reply(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        if self.lines_read == 0:
            self.greeting(max(0.0, deadline - time.monotonic()))
        while True:
            line = self.line(max(0.0, deadline - time.monotonic()))
            assert first_word_ok(line), f"line with unknown first word: {line!r}"
            if _is_reply_text(line):
                return line
            self.events.append(line)

    def event(self, timeout=None):
        """Next chat event line (buffered ones first).

        A reply where an event is expected fails the test.
        """
        if self.events:
            return self.events.popleft()
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        if self.lines_read == 0:
            self.greeting(max(0.0, deadline - time.monotonic()))
        line = self.line(max(0.0, deadline - time.monotonic()))
        assert _is_event_text(line), \
            f"{self!r}: expected a chat event, got {line!r}"
        return line

    def __repr__(self):
        return f"<LineChatClient {self.nick} port={getattr(self, 'local_port', None)}>"


class TpktClient(_ChatMixin, _SocketPeer):
    """A TPKT-framed (RFC 1006) connection to bottled.

    A TPKT client must speak first: unless ``first`` is None the constructor
    sends ``first`` (default ``WHO``) as a frame right after connecting.  The
    greeting and the reply to that frame are read by ``hello()``, which
    ``reply()``/``cmd()`` call implicitly, so ``cmd()`` always returns the
    reply to its own command.  ``first_reply`` keeps that first reply.

    Replies are returned as str (UTF-8, undecodable bytes replaced) by
    ``reply``/``cmd``, as bytes by ``reply_raw``/``cmd_raw``.  Every frame
    received is appended to ``received`` (payload bytes) and every frame sent
    with ``send_frame`` to ``sent``.  Every operation is bounded by
    ``timeout``.
    """

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT,
                 nodelay=False, rcvbuf=None, first=b"WHO"):
        self._init_chat()
        self.host = host
        self.port = port
        self.timeout = timeout
        self.buf = b""
        self.sent = []
        self.received = []
        self.greeting_line = None
        self.first_reply = None
        self._first_pending = False
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((host, port))
        self.local_port = self.sock.getsockname()[1]
        if first is not None:
            self.send_frame(first)
            self._first_pending = True

    # -- raw I/O -----------------------------------------------------------

    def send_raw(self, data):
        """Send bytes as they are (not recorded in ``sent``)."""
        self.sock.settimeout(self.timeout)
        self.sock.sendall(_b(data))

    def send_frame(self, payload):
        payload = _b(payload)
        self.sent.append(payload)
        self.send_raw(tpkt_frame(payload))

    def send_frames(self, payloads):
        """Many frames in one send."""
        payloads = [_b(p) for p in payloads]
        self.sent.extend(payloads)
        self.send_raw(b"".join(tpkt_frame(p) for p in payloads))

    def _parse_one(self):
        """Take one complete frame out of self.buf; None if incomplete."""
        if len(self.buf) < TPKT_HDR_LEN:
            return None
        version, reserved, total = struct.unpack(">BBH",
                                                 self.buf[:TPKT_HDR_LEN])
        assert version == TPKT_VERSION and reserved == 0 and \
            total >= TPKT_HDR_LEN, \
            f"{self!r}: bad TPKT header from server: {self.buf[:16]!r}"
        if len(self.buf) < total:
            return None
        payload, self.buf = self.buf[TPKT_HDR_LEN:total], self.buf[total:]
        self.received.append(payload)
        return payload

    def frame(self, timeout=None):
        """Next frame's payload (bytes)."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            payload = self._parse_one()
            if payload is not None:
                return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(
                    f"{self!r}: timed out waiting for a frame; "
                    f"buffered: {self.buf[:200]!r}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionClosed(
                    f"{self!r}: server closed the connection; incomplete "
                    f"frame: {self.buf[:200]!r}")
            self.buf += data

    # -- messages ----------------------------------------------------------

    def greeting(self, timeout=None):
        assert not self.received, "greeting() must read the first frame"
        text = _text(self.frame(timeout))
        m = GREETING_RE.match(text)
        assert m, f"bad greeting: {text!r}"
        self.greeting_line = text
        self.nick = "Guest" + m.group(2)
        return text

    def hello(self, timeout=None):
        """Read the greeting and the reply to the first frame; return it."""
        if self.greeting_line is None:
            self.greeting(timeout)
        if self._first_pending:
            self._first_pending = False
            self.first_reply = self._reply_raw(timeout).decode(
                "utf-8", errors="replace")
        return self.first_reply

    def _reply_raw(self, timeout):
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            payload = self.frame(max(0.0, deadline - time.monotonic()))
            text = _text(payload)
            if _is_reply_text(text):
                return payload
            assert _is_event_text(text), \
                f"{self!r}: frame with unknown first word: {payload[:200]!r}"
            self.events.append(text)

    def reply_raw(self, timeout=None):
        """Next OK/ERR payload as bytes, keeping events on the side."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        self.hello(max(0.0, deadline - time.monotonic()))
        return self._reply_raw(max(0.0, deadline - time.monotonic()))

    def reply(self, timeout=None):
        return _text(self.reply_raw(timeout))

    def cmd_raw(self, payload, timeout=None):
        self.send_frame(payload)
        return self.reply_raw(timeout)

    def cmd(self, payload, timeout=None):
        return _text(self.cmd_raw(payload, timeout))

    def event(self, timeout=None):
        """Next chat event (buffered ones first), as str.

        A reply where an event is expected fails the test.
        """
        if self.events:
            return self.events.popleft()
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        self.hello(max(0.0, deadline - time.monotonic()))
        payload = self.frame(max(0.0, deadline - time.monotonic()))
        text = _text(payload)
        assert _is_event_text(text), \
            f"{self!r}: expected a chat event, got {payload[:200]!r}"
        return text

    def expect_closed(self, timeout=None):
        """Assert the server closes the connection within the timeout.

        Returns the payloads of the frames that arrived meanwhile (and any
        trailing partial frame bytes as a last bytes element, if any).
        A reset counts as closed.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        got = []
        while True:
            payload = self._parse_one()
            if payload is not None:
                got.append(payload)
                continue
            data = self._recv_until(deadline, timeout)
            if data is None:
                continue
            if not data:
                if self.buf:
                    got.append(self.buf)
                    self.buf = b""
                return got
            self.buf += data


    def __repr__(self):
        return f"<TpktClient {self.nick} port={self.local_port}>"


@pytest.fixture
def connect_tpkt():
    """Factory: connect_tpkt(server_or_port, **TpktClient kwargs)."""
    yield from _connecting(TpktClient)


@pytest.fixture
def connect_line():
    """Factory: connect_line(server_or_port, **Client kwargs) -> LineChatClient."""
    yield from _connecting(LineChatClient)


def open_room(server, connect_tpkt, connect_line, ntpkt, nline):
    """Connect ``ntpkt`` TPKT then ``nline`` line clients, all greeted.

    Every join has happened when this returns, and each client's buffered
    events (the JOINs of later members) have been dropped.
    """
    tpkt = [connect_tpkt(server) for _ in range(ntpkt)]
    for c in tpkt:
        c.hello()
    line = []
    for _ in range(nline):
        c = connect_line(server)
        c.sync("joined")           # first byte 'E': line mode at once
        line.append(c)
    for c in tpkt + line:
        c.sync()
        c.take_events()
    nicks = [c.nick for c in tpkt + line]
    assert len(set(nicks)) == len(nicks), nicks
    return tpkt, line


# --------------------------------------------------------------------------
# Files for transfer tests
# --------------------------------------------------------------------------

MiB = 1 << 20


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(4 * MiB)
            if not chunk:
                return h.hexdigest()
            h.update(chunk)


def write_random(path, size, chunk=MiB):
    """A file of ``size`` random bytes, written chunk by chunk; its sha256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(chunk, left))
            f.write(block)
            h.update(block)
            left -= len(block)
    return h.hexdigest()


# --------------------------------------------------------------------------
# A program on a real terminal: tmux
# --------------------------------------------------------------------------

class Tmux:
    """One bottle in a detached tmux session on a private tmux server."""

    def __init__(self, command, width=120, height=30):
        if not shutil.which("tmux"):
            pytest.skip("tmux not installed")
        self.name = f"bottle-test-{uuid.uuid4().hex[:12]}"
        self.tmux(["new-session", "-d", "-x", str(width), "-y", str(height), command])

    def tmux(self, args, check=True):
        return subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args],
                              capture_output=True, timeout=DEFAULT_TIMEOUT, check=check)

    def keys(self, text=None, enter=False):
        if text is not None:
            self.tmux(["send-keys", "-l", text])
        if enter:
            self.tmux(["send-keys", "Enter"])

    def type(self, text):
        """Types a line and presses Enter."""
        self.keys(text, enter=True)

    def screen(self):
        return self.tmux(["capture-pane", "-p"]).stdout.decode()

    def lines(self):
        return [line.rstrip() for line in self.screen().splitlines() if line.strip()]

    def wait(self, pred, what, timeout=DEFAULT_TIMEOUT):
        """Poll the screen until pred(lines) holds (no event to await here)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if pred(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {what}:\n" + "\n".join(lines))
            time.sleep(0.05)

    def wait_text(self, text, timeout=DEFAULT_TIMEOUT):
        return self.wait(lambda lines: any(text in line for line in lines), repr(text),
                         timeout)

    def kill(self):
        # The client itself is killed by PID too: under ASan, a client hung up
        # by tmux can spin in LeakSanitizer at exit and outlive the test.
        shown = self.tmux(["display", "-p", "#{pane_pid}"], check=False)
        pids = [int(w) for w in shown.stdout.split() if w.isdigit()]
        self.tmux(["kill-server"], check=False)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        # tmux leaves its socket file behind; don't litter the tmux directory.
        tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
        try:
            os.unlink(os.path.join(tmpdir, f"tmux-{os.getuid()}", self.name))
        except OSError:
            pass


def wait_until(pred, timeout, what, interval=0.02):
    """Poll state that offers no event to await (a file's size); pred's value."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# Adversarial tests (test_adversarial_*.py): what the server holds, why it
# closed a connection, and a well-behaved client that must not notice
# --------------------------------------------------------------------------

def proc_fd_count(pid):
    """Descriptors the process holds now (the entries of /proc/PID/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_rss_kib(pid):
    """The process's resident set size (VmRSS in /proc/PID/status), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS line in /proc/{pid}/status")


def proc_cpu_seconds(pid):
    """User plus system CPU time the process has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_fd_count(server, want, timeout=10.0):
    """Wait until the server holds exactly ``want`` descriptors (a baseline)."""
    seen = [None]

    def back():
        seen[0] = proc_fd_count(server.pid)
        return seen[0] == want
    try:
        wait_until(back, timeout, f"the server's descriptors to return to {want}")
    except AssertionError:
        fds = sorted(os.listdir(f"/proc/{server.pid}/fd"), key=int)
        targets = collections.Counter()
        for fd in fds:
            try:
                targets[re.sub(r"\d+", "N", os.readlink(f"/proc/{server.pid}/fd/{fd}"))] += 1
            except OSError:
                pass
        raise AssertionError(
            f"server holds {seen[0]} descriptors after {timeout}s, baseline {want}: "
            f"{dict(targets)}; log tail:\n" + "\n".join(server.log_lines()[-30:])) from None


def disconnect_re(port, host=r"127\.0\.0\.1"):
    """The log line of a closed connection; group 1 is the reason."""
    return rf"disconnect {host}:{port}: (.+) \(\d+ clients?\)$"


def wait_disconnect(server, port, since=0, timeout=10.0):
    """The reason the server logged for closing the connection from ``port``."""
    return server.wait_log(disconnect_re(port), timeout=timeout, since=since).group(1)


def server_is_instrumented(server):
    """True for a sanitizer build or a wrapped (valgrind) server: slower, and
    its memory figures say little about the allocator's."""
    if BOTTLED_WRAP:
        return True
    try:
        with open(server.binary, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def take_lines(buf):
    """Complete lines (bytes, without the newline) off the front of ``buf``
    (a bytearray, consumed in place)."""
    end = buf.rfind(b"\n")
    if end < 0:
        return []
    lines = bytes(buf[:end]).split(b"\n")
    del buf[:end + 1]
    return lines


def take_frames(buf):
    """Complete TPKT payloads off the front of ``buf`` (a bytearray, consumed in
    place); a bad header from the server fails the test."""
    out = []
    pos = 0
    while len(buf) - pos >= TPKT_HDR_LEN:
        version, reserved, total = struct.unpack(">BBH", buf[pos:pos + TPKT_HDR_LEN])
        assert version == TPKT_VERSION and reserved == 0 and total >= TPKT_HDR_LEN, \
            f"bad TPKT header from the server: {bytes(buf[pos:pos + 16])!r}"
        if len(buf) - pos < total:
            break
        out.append(bytes(buf[pos + TPKT_HDR_LEN:pos + total]))
        pos += total
    del buf[:pos]
    return out


def check_bystander(server, bystander, timeout=2.0):
    """The well-behaved client, connected since before the abuse, is still
    served: an ECHO round trip within ``timeout`` seconds, and a SAY from a
    fresh client reaches it.  The fresh client quits and its disconnect is
    awaited, so the server's descriptor count is what it was before."""
    token = f"ok{uuid.uuid4().hex[:6]}"      # short: fits --max-line 16
    t0 = time.monotonic()
    assert bystander.cmd(f"ECHO {token}", timeout=scaled(timeout)) == f"OK {token}", \
        "the bystander's ECHO went unanswered"
    rtt = time.monotonic() - t0
    assert rtt < scaled(timeout), f"the bystander waited {rtt:.2f}s for its ECHO"
    speaker = LineChatClient(server.port)
    try:
        speaker.sync("speaker")
        assert speaker.cmd(f"SAY {token}") == "OK"
        bystander.wait_event(f"MSG {speaker.nick} {token}", timeout=scaled(timeout))
        mark = server.log_mark()
        assert speaker.cmd("QUIT") == "OK bye"
        speaker.expect_closed()
    finally:
        speaker.close()
    assert wait_disconnect(server, speaker.local_port, since=mark) == "quit"
    return rtt
