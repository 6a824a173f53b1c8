"""System tests for bottled's basic command protocol.

Run with:  pytest-3 -q tests/system/test_basic.py
(BOTTLED=/abs/path/to/bottled to test another build.)
"""

import os
import re
import resource
import select
import signal
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness.clients import Client, run_nc
from harness.env import ipv6_loopback_available, nofile_limit
from harness.protocol import GREETING_RE, TIMESTAMP_RE, first_word_ok
from harness.server import run_bottled

TIME_REPLY_RE = re.compile(
    r"^OK (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d)$")


def clients_re(n=r"\d+"):
    """'(N clients)' as logged; tolerate the singular '(1 client)'."""
    return rf"\({n} clients?\)"


def assert_time_reply(line, slack=5.0):
    m = TIME_REPLY_RE.match(line)
    assert m, f"bad TIME reply: {line!r}"
    stamp = datetime.fromisoformat(m.group(1))
    delta = abs((stamp - datetime.now(timezone.utc)).total_seconds())
    assert delta < slack, f"TIME is {delta:.1f}s off: {line!r}"


def normalise(reply):
    """Replace the variable part of TIME replies for comparisons."""
    return "OK <time>" if TIME_REPLY_RE.match(reply) else reply


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------

def test_greeting_then_echo(server, connect):
    c = connect(server)
    c.send(b"ECHO hello world\n")
    greeting = c.line()
    assert GREETING_RE.match(greeting), greeting
    assert c.line() == "OK hello world"


@pytest.mark.parametrize("verb", ["ECHO", "echo", "Echo", "eChO"])
def test_verb_is_case_insensitive(server, connect, verb):
    c = connect(server)
    assert c.cmd(f"{verb} Mixed Case Text") == "OK Mixed Case Text"


def test_echo_argument_is_raw_rest_of_line(server, connect):
    c = connect(server)
    assert c.cmd("ECHO a  b   c") == "OK a  b   c"
    assert c.cmd("ECHO  leading and trailing ") == "OK  leading and trailing "
    assert c.cmd("ECHO QUIT") == "OK QUIT"
    assert c.cmd("ECHO ünïcödé ✓") == "OK ünïcödé ✓"


def test_time(server, connect):
    c = connect(server)
    assert_time_reply(c.cmd("TIME"))
    assert_time_reply(c.cmd("time"))


@pytest.mark.parametrize("verb", ["QUIT", "quit", "EXIT", "Exit", "CLOSE",
                                  "close"])
def test_quit_commands_close(server, connect, verb):
    c = connect(server)
    assert c.cmd("ECHO before") == "OK before"
    assert c.cmd(verb) == "OK bye"
    c.expect_closed()
    server.wait_log(
        rf"disconnect 127\.0\.0\.1:{c.local_port}: quit {clients_re(0)}")


def test_quit_stops_processing_pipelined_commands(server, connect):
    c = connect(server)
    c.send(b"ECHO a\nQUIT\nECHO after-quit\n")
    assert c.reply() == "OK a"
    assert c.reply() == "OK bye"
    rest = c.expect_closed()
    assert "OK after-quit" not in rest


def test_help(server, connect):
    c = connect(server)
    line = c.cmd("HELP")
    assert line.startswith("OK "), line
    names = set(line[3:].split())
    required = {"ECHO", "TIME", "QUIT", "EXIT", "CLOSE", "HELP"}
    assert required <= names, f"HELP lacks {required - names}: {line!r}"


def test_help_echo(server, connect):
    c = connect(server)
    line = c.cmd("HELP ECHO")
    assert line.startswith("OK ECHO <text>: "), line
    assert len(line) > len("OK ECHO <text>: "), line


def test_unknown_command_keeps_connection(server, connect):
    c = connect(server)
    assert c.cmd("FROB") == "ERR unknown command: FROB"
    assert c.cmd("fRoB with args") == "ERR unknown command: fRoB"
    assert c.cmd("ECHO still here") == "OK still here"


# --------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------

def test_crlf_and_lf(server, connect):
    c = connect(server)
    c.send(b"ECHO crlf\r\nECHO lf\nTIME\r\nECHO end\n")
    assert c.reply() == "OK crlf"
    assert c.reply() == "OK lf"
    assert_time_reply(c.reply())
    assert c.reply() == "OK end"


SCRIPT = [b"ECHO one", b"time", b"HELP", b"FROB x", b"ECHO two",
          b"HELP ECHO", b"ECHO three\r", b"ECHO  four ", b"echo five"]


def _replies_one_at_a_time(c):
    return [normalise(c.cmd(line)) for line in SCRIPT]


def test_pipelined_and_byte_by_byte_give_same_replies(server, connect):
    reference = _replies_one_at_a_time(connect(server))
    assert len(reference) == len(SCRIPT)
    payload = b"".join(line + b"\n" for line in SCRIPT)

    # Everything in one send.
    c = connect(server)
    c.send(payload)
    assert c.greeting()
    got = [normalise(c.reply()) for _ in SCRIPT]
    assert got == reference

    # One byte per send, Nagle off so the bytes arrive separately.
    c = connect(server, nodelay=True)
    for i in range(len(payload)):
        c.send(payload[i:i + 1])
    got = [normalise(c.reply()) for _ in SCRIPT]
    assert got == reference
    assert c.cmd("ECHO done") == "OK done"


def test_many_pipelined_commands_in_order(server, connect):
    c = connect(server)
    n = 500
    c.send(b"".join(b"ECHO n=%d\n" % i for i in range(n)))
    for i in range(n):
        assert c.reply() == f"OK n={i}"


def test_all_lines_begin_with_known_word(server, connect):
    c = connect(server)
    c.send(b"ECHO a\nTIME\nHELP\nHELP ECHO\nNOPE\n\x00\xff\xf1\nECHO z\n")
    lines = []
    while True:
        line = c.line()
        lines.append(line)
        if line == "OK z":
            break
    for line in lines:
        assert first_word_ok(line), f"unexpected line {line!r} in {lines}"


def test_overlong_line_default_limit(server, connect):
    c = connect(server)
    c.send(b"ECHO " + b"x" * 70000 + b"\nECHO ok\n")
    assert c.reply() == "ERR line too long (at most 65536 bytes)"
    assert c.reply() == "OK ok"


def test_overlong_line_custom_limit(make_server, connect):
    srv = make_server("--max-line", "100")
    c = connect(srv)
    ok_text = "a" * 80            # "ECHO " + 80 bytes: well under 100
    assert c.cmd("ECHO " + ok_text) == "OK " + ok_text
    assert c.cmd("ECHO " + "b" * 200) == "ERR line too long (at most 100 bytes)"
    assert c.cmd("ECHO fine") == "OK fine"


def test_huge_line_is_discarded_not_buffered(make_server, connect):
    srv = make_server("--max-line", "1000")
    c = connect(srv, timeout=10)
    chunk = b"y" * 65536
    c.send(b"ECHO ")
    for _ in range(64):           # 4 MiB without a newline
        c.send(chunk)
    c.send(b"\nECHO next\n")
    assert c.reply() == "ERR line too long (at most 1000 bytes)"
    assert c.reply() == "OK next"


def test_nul_and_invalid_utf8(server, connect):
    c = connect(server)
    # \xff\xfe may be read as a telnet IAC DONT whose option byte is the
    # newline, so send a spare newline and resynchronise on a marker.
    c.send(b"ECHO a\x00b\xff\xfe\n\nECHO sync\n")
    first = c.reply()
    assert first.startswith("OK a"), first
    deadline = time.monotonic() + 5
    while c.reply(timeout=max(0.1, deadline - time.monotonic())) != "OK sync":
        pass
    c.send(b"ECHO x\x00\x00y\n")
    assert c.reply().startswith("OK x")
    c.send(b"ECHO \xc3\x28 \xe2\x82 \x80\xbf \xed\xa0\x80\n")
    assert c.reply().startswith("OK ")
    assert c.cmd("ECHO alive") == "OK alive"
    # The server is still healthy for others.
    assert connect(server).cmd("ECHO other") == "OK other"


# DO TTYPE and WILL NAWS are refused (IAC WONT TTYPE, IAC DONT NAWS) ahead of
# the reply to the line they came with (docs/protocol.md, "Line framing").
REFUSALS = "\ufffd\ufffd\x18\ufffd\ufffd\x1f"


def test_telnet_iac_sequences_are_skipped(server, connect):
    c = connect(server)
    c.send(b"\xff\xfd\x18ECHO hi\xff\xfb\x1f\r\n")
    c.greeting()
    assert c.line() == REFUSALS + "OK hi"
    c.send(b"ECHO a\xff\xf1b\xff\xfc\x01c\n")      # IAC NOP, IAC WONT ECHO
    assert c.reply() == "OK abc"


def test_telnet_iac_split_across_sends(server, connect):
    c = connect(server, nodelay=True)
    payload = b"\xff\xfd\x18ECHO hi\xff\xfb\x1f\r\nECHO x\xff\xf1y\n"
    for i in range(len(payload)):
        c.send(payload[i:i + 1])
    c.greeting()
    assert c.line() == REFUSALS + "OK hi"
    assert c.reply() == "OK xy"


# --------------------------------------------------------------------------
# Greeting timing
# --------------------------------------------------------------------------

def test_silent_client_gets_greeting_after_grace(server, connect):
    c = connect(server)
    t0 = time.monotonic()
    c.greeting(timeout=3)
    elapsed = time.monotonic() - t0
    assert 0.15 <= elapsed < 1.5, f"greeting after {elapsed:.3f}s"


def test_greeting_delay_option(make_server, connect):
    srv = make_server("--greeting-delay", "1000")
    c = connect(srv)
    t0 = time.monotonic()
    c.greeting(timeout=4)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 3.0, f"greeting after {elapsed:.3f}s"


def test_client_speaking_first_gets_greeting_then_reply(make_server, connect):
    srv = make_server("--greeting-delay", "3000")
    c = connect(srv)
    t0 = time.monotonic()
    c.send(b"ECHO first\n")
    c.greeting(timeout=2)
    assert c.line(timeout=2) == "OK first"
    elapsed = time.monotonic() - t0
    assert elapsed < 1.5, f"reply took {elapsed:.3f}s (waited for the grace?)"


def test_first_byte_triggers_greeting(make_server, connect):
    srv = make_server("--greeting-delay", "3000")
    c = connect(srv, nodelay=True)
    t0 = time.monotonic()
    c.send(b"E")
    c.greeting(timeout=2)
    assert time.monotonic() - t0 < 1.5
    c.send(b"CHO rest\n")
    assert c.reply() == "OK rest"


def test_greeting_version_matches_version_option(server, connect):
    out = run_bottled("--version")
    assert out.returncode == 0
    version = out.stdout.decode().strip().split()[-1]
    c = connect(server)
    m = GREETING_RE.match(c.greeting())
    assert m.group(1) == version


# --------------------------------------------------------------------------
# Log format
# --------------------------------------------------------------------------

def test_log_connect_and_disconnect_reasons(server, connect):
    a = connect(server)
    assert a.cmd("ECHO a") == "OK a"
    server.wait_log(
        rf"^{TIMESTAMP_RE} connect 127\.0\.0\.1:{a.local_port} "
        rf"{clients_re(1)}$")
    b = connect(server)
    assert b.cmd("ECHO b") == "OK b"
    server.wait_log(
        rf"^{TIMESTAMP_RE} connect 127\.0\.0\.1:{b.local_port} "
        rf"{clients_re(2)}$")

    # Orderly close: a FIN even though `a` has unread chat events (closing a
    # socket with unread data would send an RST instead).
    a.sock.shutdown(socket.SHUT_WR)
    a.expect_closed()
    server.wait_log(
        rf"^{TIMESTAMP_RE} disconnect 127\.0\.0\.1:{a.local_port}: "
        rf"peer closed {clients_re(1)}$")
    b.reset()                                   # RST
    server.wait_log(
        rf"^{TIMESTAMP_RE} disconnect 127\.0\.0\.1:{b.local_port}: "
        rf"reset {clients_re(0)}$")

    for line in server.log_lines():
        assert re.match(rf"^{TIMESTAMP_RE} \S", line), f"bad log line {line!r}"
    assert re.search(rf"^{TIMESTAMP_RE} listening on 127\.0\.0\.1:"
                     rf"{server.port}$", server.log_text(), re.M)


# --------------------------------------------------------------------------
# Many clients, one thread
# --------------------------------------------------------------------------

def test_thousand_concurrent_clients_single_thread(make_server):
    n = 1000
    if nofile_limit() < n + 100:
        pytest.skip(f"RLIMIT_NOFILE too low for {n} sockets")
    srv = make_server()
    clients = []
    try:
        deadline = time.monotonic() + 60
        for _ in range(n):
            clients.append(Client(srv.port, timeout=10))
        srv.wait_log(rf"connect 127\.0\.0\.1:\d+ {clients_re(n)}", timeout=30)
        assert srv.thread_count() == 1
        assert len(os.listdir(f"/proc/{srv.pid}/task")) == 1

        for i, c in enumerate(clients):
            c.send(f"ECHO client-{i}\n".encode())
        for i, c in enumerate(clients):
            left = max(1.0, deadline - time.monotonic())
            assert c.reply(timeout=left) == f"OK client-{i}"
        assert srv.thread_count() == 1
    finally:
        for c in clients:
            c.close()
    srv.wait_log(rf"disconnect .* {clients_re(0)}", timeout=30)


# --------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [(), ("--max-output", "65536")],
                         ids=["default-cap", "64k-cap"])
def test_never_reading_client_is_cut_off(make_server, connect, extra):
    srv = make_server(*extra)
    good = connect(srv)
    assert good.cmd("ECHO ready") == "OK ready"
    hog = connect(srv, rcvbuf=4096)
    hog_addr = rf"127\.0\.0\.1:{hog.local_port}\b"
    srv.wait_log(rf"connect {hog_addr}")

    line = b"ECHO " + b"x" * 60000 + b"\n"     # under the default --max-line
    burst = line * 4
    sent = 0
    limit = 512 << 20
    deadline = time.monotonic() + 60
    cut = False
    while not cut:
        assert time.monotonic() < deadline, "hog never cut off (time)"
        assert sent < limit, f"hog never cut off after {sent} bytes"
        try:
            hog.send(burst)
        except (BrokenPipeError, ConnectionResetError):
            cut = True
        except socket.timeout:
            pytest.fail("server stopped reading from the hog instead of "
                        "cutting it off; log:\n" + srv.log_text())
        sent += len(burst)
        if srv.find_log(rf"{hog_addr}.*output overflow"):
            cut = True
        if (sent // len(burst)) % 4 == 0 or cut:
            t0 = time.monotonic()
            assert good.cmd("ECHO ping") == "OK ping"
            rtt = time.monotonic() - t0
            assert rtt < 2.0, f"other client waited {rtt:.2f}s"

    srv.wait_log(rf"disconnect {hog_addr}: output overflow", timeout=10)
    hog.expect_closed(timeout=10)
    t0 = time.monotonic()
    assert good.cmd("ECHO after") == "OK after"
    assert time.monotonic() - t0 < 2.0
    assert srv.running()


def test_max_clients(make_server, connect):
    srv = make_server("--max-clients", "2")
    a = connect(srv)
    b = connect(srv)
    assert a.cmd("ECHO a") == "OK a"
    assert b.cmd("ECHO b") == "OK b"
    c = connect(srv)
    assert c.line() == "ERR server full"
    c.expect_closed()
    assert a.cmd("ECHO a2") == "OK a2"

    assert a.cmd("QUIT") == "OK bye"
    a.expect_closed()
    srv.wait_log(rf"disconnect 127\.0\.0\.1:{a.local_port}: quit "
                 rf"{clients_re(1)}")
    d = connect(srv)
    assert d.cmd("ECHO d") == "OK d"


def test_idle_timeout(make_server, connect):
    srv = make_server("--idle-timeout", "1")
    idle = connect(srv)
    busy = connect(srv)
    assert idle.cmd("ECHO idle") == "OK idle"
    t0 = time.monotonic()
    assert busy.cmd("ECHO busy") == "OK busy"

    # Keep `busy` active (a command every 0.3 s) until `idle` gets closed.
    # `idle` may receive chat events (JOIN ...) meanwhile: discard them.
    deadline = t0 + 6
    closed = False
    while not closed:
        assert time.monotonic() < deadline, "idle client was not disconnected"
        readable, _, _ = select.select([idle.sock], [], [], 0.3)
        if readable:
            try:
                closed = idle.sock.recv(65536) == b""
            except ConnectionResetError:
                closed = True
        else:
            assert busy.cmd("ECHO busy") == "OK busy"
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.8, f"idle client cut after only {elapsed:.2f}s"
    srv.wait_log(rf"disconnect 127\.0\.0\.1:{idle.local_port}: idle")
    assert busy.cmd("ECHO still busy") == "OK still busy"
    assert time.monotonic() - t0 > 1.0


def test_no_idle_timeout_by_default(server, connect):
    c = connect(server)
    assert c.cmd("ECHO a") == "OK a"
    readable, _, _ = select.select([c.sock], [], [], 2.5)
    assert not readable, "server sent something / closed an idle client"
    assert c.cmd("ECHO b") == "OK b"


# --------------------------------------------------------------------------
# Keepalive
# --------------------------------------------------------------------------

def _parse_ss_duration(text):
    """ss timer text -> seconds.

    Forms seen: '7sec', '6.9sec', '850ms', '1min2sec', and iproute2 6.x's
    '6.496ms' which means 6 s + 496 ms (seconds, '.', then milliseconds).
    """
    total = 0.0
    found = False
    for whole, frac, unit in re.findall(r"(\d+)(?:\.(\d+))?\s*(min|sec|ms)",
                                        text):
        found = True
        if unit == "ms" and frac:
            total += int(whole) + int(frac) / 10 ** len(frac)
        else:
            value = float(f"{whole}.{frac or 0}")
            total += value * {"min": 60, "sec": 1, "ms": 0.001}[unit]
    if not found:
        raise ValueError(f"cannot parse ss timer {text!r}")
    return total


def keepalive_timer(server_port, client_port, timeout=5.0):
    """Seconds left on the keepalive timer of the server-side socket."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["ss", "-tnoi", "state", "established",
             f"( sport = :{server_port} and dport = :{client_port} )"],
            capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"timer:\(keepalive,([^,)]+)", out)
        if m:
            return _parse_ss_duration(m.group(1))
        time.sleep(0.1)    # polling an external tool; no event to wait on
    raise AssertionError(f"no keepalive timer on the server socket:\n{out}")


def test_keepalive_default(server, connect):
    c = connect(server)
    assert c.cmd("ECHO ka") == "OK ka"
    left = keepalive_timer(server.port, c.local_port)
    assert 10 < left <= 15.5, f"default keepalive timer {left}s, want ~15s"


def test_keepalive_option(make_server, connect):
    srv = make_server("--keepalive", "7,3,2")
    c = connect(srv)
    assert c.cmd("ECHO ka") == "OK ka"
    left = keepalive_timer(srv.port, c.local_port)
    assert 4 < left <= 7.5, f"keepalive timer {left}s, want ~7s"


# --------------------------------------------------------------------------
# Listening
# --------------------------------------------------------------------------

def test_busy_port(server, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    r = run_bottled("-l", f"127.0.0.1:{server.port}", "-d", other)
    assert r.returncode == 1, r
    lines = r.stderr.decode(errors="replace").splitlines()
    hits = [l for l in lines if f"127.0.0.1:{server.port}" in l
            and "Address already in use" in l]
    assert len(hits) == 1, lines
    # The first server is unharmed.
    with Client(server.port) as c:
        assert c.cmd("ECHO still mine") == "OK still mine"


def test_two_ipv4_listen_addresses(make_server, connect):
    srv = make_server("-l", "127.0.0.1:0")
    m1, m2 = srv.wait_logs(r"listening on 127\.0\.0\.1:(\d+)", 2)
    ports = {int(m1.group(1)), int(m2.group(1))}
    assert len(ports) == 2
    for p in ports:
        assert connect(p).cmd(f"ECHO via {p}") == f"OK via {p}"


def test_ipv4_and_ipv6_listen_addresses(make_server, connect):
    if not ipv6_loopback_available():
        pytest.skip("::1 is not configured")
    srv = make_server("-l", "[::1]:0")
    m = srv.wait_log(r"listening on \[?::1\]?:(\d+)")
    port6 = int(m.group(1))
    assert connect(srv).cmd("ECHO v4") == "OK v4"
    c6 = connect(port6, host="::1")
    assert c6.cmd("ECHO v6") == "OK v6"
    srv.wait_log(r"connect \[?::1\]?:\d+")


# --------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------

def test_sigterm_notifies_clients_and_exits_zero(server, connect):
    clients = [connect(server) for _ in range(3)]
    for i, c in enumerate(clients):
        assert c.cmd(f"ECHO {i}") == f"OK {i}"
    server.wait_log(rf"connect .* {clients_re(3)}")
    server.signal(signal.SIGTERM)
    for c in clients:
        assert c.reply() == "OK server shutting down"
        c.expect_closed()
    assert server.wait(timeout=5) == 0
    for c in clients:
        assert server.find_log(
            rf"disconnect 127\.0\.0\.1:{c.local_port}: shutdown"), \
            server.log_text()


def test_sigterm_without_clients(server):
    assert server.stop() == 0


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

LONG_OPTIONS = ["--listen", "--dir", "--max-clients", "--max-line",
                "--max-output", "--greeting-delay", "--idle-timeout",
                "--keepalive", "--verbose", "--quiet", "--help", "--version"]


def test_help_option():
    r = run_bottled("--help")
    assert r.returncode == 0, r
    text = r.stdout.decode(errors="replace")
    missing = [opt for opt in LONG_OPTIONS if opt not in text]
    assert not missing, f"--help does not mention {missing}:\n{text}"
    assert "exit status" in text.lower(), text


def test_version_option():
    r = run_bottled("--version")
    assert r.returncode == 0, r
    assert re.match(r"^bottled \S+$", r.stdout.decode().strip()), r.stdout


@pytest.mark.parametrize("bad", [["--no-such-option"], ["-Z"]])
def test_bad_option(bad):
    r = run_bottled(*bad)
    assert r.returncode == 2, r
    assert r.stderr.strip(), "a usage error should say something on stderr"


# --------------------------------------------------------------------------
# Real tools
# --------------------------------------------------------------------------

def _check_nc_output(stdout):
    lines = stdout.decode(errors="replace").splitlines()
    assert len(lines) == 4, lines
    assert GREETING_RE.match(lines[0]), lines
    assert lines[1] == "OK hi", lines
    assert_time_reply(lines[2])
    assert lines[3] == "OK bye", lines


@pytest.mark.parametrize("flags", [("-N",), ("-N", "-C"), ()],
                         ids=["N", "N-crlf", "plain"])
def test_netcat_session(server, flags):
    r = run_nc(server.port, b"ECHO hi\nTIME\nQUIT\n", extra=flags)
    assert r.returncode == 0, r
    _check_nc_output(r.stdout)


def test_netcat_shell_pipeline(server):
    r = subprocess.run(
        f"printf 'ECHO hi\\nTIME\\nQUIT\\n' | nc 127.0.0.1 {server.port}",
        shell=True, capture_output=True, timeout=10)
    assert r.returncode == 0, r
    _check_nc_output(r.stdout)


class _OutputCollector:
    """Collects a subprocess's stdout in a thread; wait() for a pattern."""

    def __init__(self, stream):
        self.data = b""
        self.eof = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, args=(stream,),
                                       daemon=True)
        self.thread.start()

    def _run(self, stream):
        while True:
            chunk = stream.read1(4096)
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                self.cond.notify_all()

    def wait(self, needle, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while needle not in self.data:
                remaining = deadline - time.monotonic()
                if self.eof or remaining <= 0:
                    raise AssertionError(
                        f"{needle!r} not seen; output so far: {self.data!r}")
                self.cond.wait(remaining)

    def wait_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.eof:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("output did not end")
                self.cond.wait(remaining)
            return self.data


def test_telnet_session(server):
    p = subprocess.Popen(["telnet", "127.0.0.1", str(server.port)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        out = _OutputCollector(p.stdout)
        out.wait(b"you are Guest")              # greeting after the grace
        p.stdin.write(b"ECHO via telnet\n")
        p.stdin.flush()
        out.wait(b"OK via telnet")
        p.stdin.write(b"QUIT\n")
        p.stdin.flush()
        out.wait(b"OK bye")
        data = out.wait_eof()                    # server closed; telnet exits
        p.stdin.close()
        p.wait(timeout=5)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
    text = data.decode(errors="replace")
    assert re.search(r"^OK bottled \S+ ready; type HELP for commands; "
                     r"you are Guest\d+\r?$", text, re.M), text
    assert re.search(r"^OK via telnet\r?$", text, re.M), text


def test_soft_fd_limit_is_raised_to_the_hard_limit(make_server):
    """10,000 clients need 10,000 descriptors: bottled takes all the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 1024:
        pytest.skip(f"hard RLIMIT_NOFILE is only {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))   # inherited by bottled
    try:
        srv = make_server()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = Path(f"/proc/{srv.pid}/limits").read_text()
    line = next(l for l in limits.splitlines() if l.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)], line
