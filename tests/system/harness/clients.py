"""The test clients: a line client, the line and TPKT chat clients (the TPKT
one also moves bulk data), netcat, a room of both, and the bystander check.

Every operation is bounded: sockets carry timeouts, waits carry deadlines.
"""

import collections
import hashlib
import os
import re
import socket
import struct
import subprocess
import time
import uuid

from harness.env import DEFAULT_TIMEOUT, scaled
from harness.protocol import (
    GREETING_RE, TPKT_HDR_LEN, TPKT_MAX_PAYLOAD, TPKT_VERSION, as_bytes,
    as_text, first_word_ok, is_event_text, is_reply_text, tpkt_frame,
)
from harness.server import wait_disconnect

class _SocketPeer:
    """What every test client does with its socket (self.sock)."""

    @staticmethod
    def _new_socket(host, timeout, nodelay, rcvbuf):
        """An unconnected TCP socket for host's family, with the options set
        (SO_RCVBUF before connect, so that it limits the advertised window)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        if nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        return sock

    def _fill(self, deadline, what="a line"):
        """One recv into self.buf, bounded by deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout(
                f"{self!r}: timed out waiting for {what}; buffered: {self.buf[:200]!r}")
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionClosed(
                f"{self!r}: server closed the connection while waiting for {what}; "
                f"buffered: {self.buf[:200]!r}")
        self.buf += data

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

    def shutdown_write(self):
        """Half-close: done sending, still reading."""
        self.sock.shutdown(socket.SHUT_WR)

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
        self.sock = self._new_socket(host, timeout, nodelay, rcvbuf)
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


def run_nc(port, data, host="127.0.0.1", extra=("-N",), timeout=10):
    """Run netcat-openbsd with ``data`` on stdin; return CompletedProcess.

    With -N nc shuts down its sending side at EOF on stdin and exits when the
    server closes the connection.
    """
    if isinstance(data, str):
        data = data.encode()
    return subprocess.run(["nc", *extra, host, str(port)], input=data,
                          capture_output=True, timeout=timeout)


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
            if is_reply_text(line):
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
        assert is_event_text(line), \
            f"{self!r}: expected a chat event, got {line!r}"
        return line

    def __repr__(self):
        return f"<LineChatClient {self.nick} port={getattr(self, 'local_port', None)}>"


class TpktClient(_ChatMixin, _SocketPeer):
    """The TPKT-framed (RFC 1006) test client: commands, chat, bulk transfers.

    A TPKT client must speak first: unless ``first`` is None the constructor
    sends ``first`` (default ``WHO``) as a frame right after connecting.  The
    greeting and the reply to that frame are read by ``hello()``, which
    ``reply()``/``cmd()``/``event()`` call implicitly, so ``cmd()`` always
    returns the reply to its own command; ``first_reply`` keeps that first
    reply.  With ``first=None`` send a frame yourself at once.

    Commands and chat:
        send_frame(p), send_frames([p, ...]), send_raw(bytes)
        frame()                next payload (bytes), whatever it is
        reply() / reply_raw()  next OK/ERR (str / bytes); events are kept
        cmd(p) / cmd_raw(p)    send_frame, then reply
        event(), wait_event(want), events_until(), collect_events(), sync()
        wait_for(prefix)       next payload starting with ``prefix``, any kind
        join_nick()            nick of the next JOIN
        expect_closed()        payloads until the server closes
    Bulk transfers (nothing recorded, so 100 MiB stays out of memory):
        send_data(data), send_file(path)   data frames of up to 65531 bytes
        recv_data(n)           data frames carrying exactly n bytes: sha256
        shutdown_write()       half-close

    Replies are str (UTF-8, undecodable bytes replaced) from ``reply``/``cmd``
    and bytes from ``reply_raw``/``cmd_raw``.  Chat events that arrive while
    a reply is awaited are kept, in order, in ``events``.  Frames sent with
    ``send_frame``/``send_frames`` are appended to ``sent`` and frames read
    by ``frame()`` (and so by reply, event, ...) to ``received``; the bulk
    methods record nothing.  Every operation is bounded by ``timeout``.
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
        self.sock = self._new_socket(host, timeout, nodelay, rcvbuf)
        self.sock.connect((host, port))
        self.local_port = self.sock.getsockname()[1]
        if first is not None:
            self.send_frame(first)
            self._first_pending = True

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    # -- raw I/O -----------------------------------------------------------

    def send_raw(self, data):
        """Send bytes as they are (not recorded in ``sent``)."""
        self.sock.settimeout(self.timeout)
        self.sock.sendall(as_bytes(data))

    def send_frame(self, payload):
        payload = as_bytes(payload)
        self.sent.append(payload)
        self.send_raw(tpkt_frame(payload))

    def send_frames(self, payloads):
        """Many frames in one send."""
        payloads = [as_bytes(p) for p in payloads]
        self.sent.extend(payloads)
        self.send_raw(b"".join(tpkt_frame(p) for p in payloads))

    def _check_header(self, hdr):
        version, reserved, total = struct.unpack(">BBH", hdr)
        assert version == TPKT_VERSION and reserved == 0 and \
            total >= TPKT_HDR_LEN, \
            f"{self!r}: bad TPKT header from server: {bytes(hdr[:16])!r}"
        return total

    def _parse_one(self):
        """Take one complete frame out of self.buf; None if incomplete."""
        if len(self.buf) < TPKT_HDR_LEN:
            return None
        total = self._check_header(self.buf[:TPKT_HDR_LEN])
        if len(self.buf) < total:
            return None
        payload, self.buf = bytes(self.buf[TPKT_HDR_LEN:total]), self.buf[total:]
        self.received.append(payload)
        return payload

    def frame(self, timeout=None):
        """Next frame's payload (bytes), whatever it is (recorded)."""
        deadline = self._deadline(timeout)
        while True:
            payload = self._parse_one()
            if payload is not None:
                return payload
            self._fill(deadline, "a frame")

    # -- messages ----------------------------------------------------------

    def greeting(self, timeout=None):
        assert self.greeting_line is None, "greeting() must read the first frame"
        text = as_text(self.frame(timeout))
        m = GREETING_RE.match(text)
        assert m, f"bad greeting: {text!r}"
        self.greeting_line = text
        self.nick = "Guest" + m.group(2)
        return text

    def hello(self, timeout=None):
        """Read the greeting and the reply to the first frame; return it."""
        deadline = self._deadline(timeout)
        if self.greeting_line is None:
            self.greeting(timeout)
        if self._first_pending:
            self._first_pending = False
            self.first_reply = self._reply_raw(
                max(0.0, deadline - time.monotonic())).decode("utf-8", errors="replace")
        return self.first_reply

    def _reply_raw(self, timeout):
        deadline = self._deadline(timeout)
        while True:
            payload = self.frame(max(0.0, deadline - time.monotonic()))
            text = as_text(payload)
            if is_reply_text(text):
                return payload
            assert is_event_text(text), \
                f"{self!r}: frame with unknown first word: {payload[:200]!r}"
            self.events.append(text)

    def reply_raw(self, timeout=None):
        """Next OK/ERR payload as bytes, keeping events on the side."""
        deadline = self._deadline(timeout)
        self.hello(max(0.0, deadline - time.monotonic()))
        return self._reply_raw(max(0.0, deadline - time.monotonic()))

    def reply(self, timeout=None):
        return as_text(self.reply_raw(timeout))

    def cmd_raw(self, payload, timeout=None):
        self.send_frame(payload)
        return self.reply_raw(timeout)

    def cmd(self, payload, timeout=None):
        return as_text(self.cmd_raw(payload, timeout))

    def event(self, timeout=None):
        """Next chat event (buffered ones first), as str.

        A reply where an event is expected fails the test.
        """
        if self.events:
            return self.events.popleft()
        deadline = self._deadline(timeout)
        self.hello(max(0.0, deadline - time.monotonic()))
        payload = self.frame(max(0.0, deadline - time.monotonic()))
        text = as_text(payload)
        assert is_event_text(text), \
            f"{self!r}: expected a chat event, got {payload[:200]!r}"
        return text

    def wait_for(self, prefix, timeout=None):
        """The next payload (bytes) that starts with ``prefix`` (str or bytes),
        skipping every other frame: replies and events alike.  Events kept
        earlier are looked at first.  Reads the greeting first."""
        prefix = as_bytes(prefix)
        deadline = self._deadline(timeout)
        seen = []
        try:
            if self.greeting_line is None:
                self.greeting(max(0.0, deadline - time.monotonic()))
            while self.events:
                payload = self.events.popleft().encode()
                if payload.startswith(prefix):
                    return payload
                seen.append(payload)
            while True:
                payload = self.frame(max(0.0, deadline - time.monotonic()))
                if payload.startswith(prefix):
                    return payload
                seen.append(payload)
        except (socket.timeout, ConnectionClosed) as e:
            raise AssertionError(f"{self!r}: no {prefix!r} frame: {e}; saw "
                                 f"{seen[-20:]!r}") from None

    def join_nick(self, timeout=None):
        """Nick of the next client to join."""
        return self.wait_for("JOIN ", timeout).decode().split(" ", 1)[1]

    def expect_closed(self, timeout=None):
        """Assert the server closes the connection within the timeout.

        Returns the payloads of the frames that arrived meanwhile (and any
        trailing partial frame bytes as a last bytes element, if any).
        A reset counts as closed.
        """
        deadline = self._deadline(timeout)
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
                    got.append(bytes(self.buf))
                    self.buf = b""
                return got
            self.buf += data

    # -- bulk transfers ----------------------------------------------------

    def send_data(self, data, frame_size=TPKT_MAX_PAYLOAD, batch=16):
        """Send ``data`` (bytes-like) as data frames of up to ``frame_size``
        bytes, ``batch`` frames per send; not recorded in ``sent``."""
        mv = memoryview(as_bytes(data) if isinstance(data, str) else data)
        for i in range(0, len(mv), frame_size * batch):
            part = mv[i:i + frame_size * batch]
            self.send_raw(b"".join(tpkt_frame(part[j:j + frame_size])
                                   for j in range(0, len(part), frame_size)))

    def send_file(self, path, start=0, end=None, frame_size=TPKT_MAX_PAYLOAD):
        """Send bytes [start, end) of the file at ``path`` as data frames."""
        with open(path, "rb") as f:
            f.seek(start)
            left = (os.path.getsize(path) if end is None else end) - start
            while left > 0:
                chunk = f.read(min(left, frame_size * 16))
                assert chunk, "file shorter than expected"
                self.send_data(chunk, frame_size)
                left -= len(chunk)

    def _read_exact(self, n, deadline):
        """Exactly ``n`` bytes: buffered ones first, then exact reads."""
        out = bytearray(n)
        got = min(n, len(self.buf))
        out[:got] = self.buf[:got]
        self.buf = self.buf[got:]
        mv = memoryview(out)
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"{self!r}: timed out reading {n} bytes (got {got})")
            self.sock.settimeout(remaining)
            k = self.sock.recv_into(mv[got:])
            if k == 0:
                raise ConnectionClosed(
                    f"{self!r}: server closed the connection ({got} of {n} bytes read)")
            got += k
        return out

    def recv_data(self, n, timeout=30.0, keep=False):
        """Read data frames carrying exactly ``n`` bytes (not recorded);
        return (sha256 hex, the bytes if ``keep`` else None)."""
        deadline = time.monotonic() + timeout
        h = hashlib.sha256()
        kept = [] if keep else None
        got = 0
        while got < n:
            total = self._check_header(self._read_exact(TPKT_HDR_LEN, deadline))
            payload = self._read_exact(total - TPKT_HDR_LEN, deadline)
            assert 0 < len(payload) <= TPKT_MAX_PAYLOAD, len(payload)
            assert got + len(payload) <= n, \
                f"data frame overshoots: {got} + {len(payload)} > {n}"
            h.update(payload)
            if keep:
                kept.append(bytes(payload))
            got += len(payload)
        return h.hexdigest(), (b"".join(kept) if keep else None)

    def __repr__(self):
        return f"<TpktClient {self.nick} port={self.local_port}>"


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
