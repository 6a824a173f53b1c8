"""System tests for the bottle client against a real bottled.

Run with:  pytest-3 -q tests/system/test_client.py
(BOTTLED / BOTTLE select other builds; the defaults are build/bottled and
build/bottle.)  The interactive client is driven for real inside tmux.

Every wait is bounded: sockets carry timeouts, subprocesses carry timeouts,
and screen content is polled with short intervals up to a deadline.
"""

import os
import re
import shlex
import shutil
import socket
import subprocess

import pytest

from harness.clients import TpktClient
from harness.env import BOTTLE
from harness.tmux import Tmux

TIME_REPLY_RE = re.compile(
    r"^OK \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
WAIT = 5.0


def run_bottle(*args, env=None, timeout=10, stdin=subprocess.DEVNULL):
    full_env = dict(os.environ)
    full_env.pop("BOTTLE_SERVER", None)
    full_env.update(env or {})
    return subprocess.run([BOTTLE, *[str(a) for a in args]], stdin=stdin,
                          capture_output=True, timeout=timeout, env=full_env)


def addr(server):
    return f"127.0.0.1:{server.port}"


def closed_port():
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def raw(server):
    """Factory: a TPKT client on ``server``, greeted (its nick known)."""
    made = []

    def factory():
        r = TpktClient(server.port, timeout=WAIT)
        made.append(r)
        r.greeting()
        return r

    yield factory
    for r in made:
        r.close()


# --------------------------------------------------------------------------
# Script-mode bottle processes
# --------------------------------------------------------------------------

@pytest.fixture
def script_client(server, line_process):
    """Factory: bottle in script mode on server (a harness LineProcess)."""
    return lambda: line_process([BOTTLE, addr(server)], wait=WAIT)


# --------------------------------------------------------------------------
# -c, options, addresses, exit statuses
# --------------------------------------------------------------------------

def test_command_time(server):
    r = run_bottle("-c", "TIME", addr(server))
    assert r.returncode == 0, r.stderr
    assert TIME_REPLY_RE.match(r.stdout.decode().rstrip("\n")), r.stdout


def test_command_reply_is_the_whole_line(server):
    r = run_bottle("-c", "ECHO hello  world", addr(server))
    assert (r.returncode, r.stdout) == (0, b"OK hello  world\n")


def test_command_error_exits_1(server):
    r = run_bottle("-c", "FOO", addr(server))
    assert r.returncode == 1
    assert r.stdout.startswith(b"ERR "), r.stdout


def test_options_after_address(server):
    r = run_bottle(addr(server), "--timeout", "3", "-k", "10,2,3", "-c", "TIME")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args", [
    ["--bogus"], ["-k", "1,2"], ["--timeout", "0"], ["--timeout", "x"],
    ["-c", "TIME", "127.0.0.1:1", "extra"], ["-c", "TIME", "127.0.0.1:notaport"],
])
def test_usage_errors_exit_2(args):
    r = run_bottle(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr


def test_connection_refused_exits_3():
    port = closed_port()
    r = run_bottle("-c", "TIME", f"127.0.0.1:{port}")
    assert r.returncode == 3
    err = r.stderr.decode().strip()
    assert len(err.splitlines()) == 1, err
    assert f"127.0.0.1:{port}" in err, err


def test_env_address_used_without_argument(server):
    r = run_bottle("-c", "TIME", env={"BOTTLE_SERVER": addr(server)})
    assert r.returncode == 0, r.stderr
    assert TIME_REPLY_RE.match(r.stdout.decode().rstrip("\n"))


def test_argument_beats_env(server):
    env = {"BOTTLE_SERVER": f"127.0.0.1:{closed_port()}"}
    r = run_bottle("-c", "TIME", addr(server), env=env)
    assert r.returncode == 0, r.stderr


def test_version_and_help():
    r = run_bottle("-V")
    assert (r.returncode, r.stdout) == (0, b"bottle 0.1.0\n")
    r = run_bottle("--help")
    text = r.stdout.decode()
    assert r.returncode == 0
    for part in ("Usage:", "put FILE", "get NAME", "ls", "--command", "--nick",
                 "--keepalive", "--timeout", "/msg", "/nick", "/quit", "BOTTLE_SERVER",
                 "Exit status", "bottle(1)"):
        assert part in text, part
    lines = text.splitlines()
    assert len(lines) <= 40, f"--help is {len(lines)} lines: one screen is 40"
    assert max(len(l) for l in lines) <= 80, "--help fits 80 columns"


# --------------------------------------------------------------------------
# Script mode
# --------------------------------------------------------------------------

def test_script_clients_and_raw_client_chat(server, raw, script_client):
    r = raw()
    a = script_client()
    a_nick = r.join_nick()
    b = script_client()
    b_nick = r.join_nick()
    a.expect_line(f"* {b_nick} joined")

    a.say("hello from a")
    assert r.wait_for("MSG ") == f"MSG {a_nick} hello from a".encode()
    b.expect_line(f"{a_nick}: hello from a")

    b.say("hi from b")
    assert r.wait_for("MSG ") == f"MSG {b_nick} hi from b".encode()
    a.expect_line(f"{b_nick}: hi from b")

    r.send_frame("SAY two\nlines")
    a.expect_line(f"{r.nick}: two")
    indent = " " * len(f"{r.nick}: ")
    a.expect_line(f"{indent}lines")

    assert a.finish() == 0
    assert r.wait_for("LEAVE ") == f"LEAVE {a_nick} quit".encode()
    b.expect_line(f"* {a_nick} left (quit)")


def test_script_escapes_terminal_sequences(server, raw, script_client):
    r = raw()
    s = script_client()
    r.join_nick()
    r.send_frame(b"SAY \x1b[31mred\x1b[0m and \x07bell")
    s.expect_line(f"{r.nick}: \\x1b[31mred\\x1b[0m and \\x07bell")


def test_script_eof_waits_for_replies_then_quits(server, raw):
    r = raw()
    lines = "".join(f"line {i}\n" for i in range(50)).encode()
    res = subprocess.run([BOTTLE, addr(server)], input=lines, capture_output=True,
                         timeout=10)
    assert res.returncode == 0, res.stderr
    nick = r.join_nick()
    for i in range(50):
        assert r.wait_for("MSG ") == f"MSG {nick} line {i}".encode()
    assert r.wait_for("LEAVE ") == f"LEAVE {nick} quit".encode()


def test_script_lost_connection_exits_3(server, raw, script_client):
    r = raw()
    s = script_client()
    r.join_nick()
    server.stop()
    assert s.proc.wait(timeout=WAIT) == 3
    assert b"connection lost" in s.proc.stderr.read()


# --------------------------------------------------------------------------
# Interactive mode in tmux
# --------------------------------------------------------------------------

@pytest.fixture
def tty_client(server, raw):
    """(tmux, raw client, nick of the interactive client)."""
    if not shutil.which("tmux"):
        pytest.skip("tmux not installed")
    r = raw()
    t = Tmux(f"{shlex.quote(BOTTLE)} {addr(server)}")
    try:
        nick = r.join_nick()
        t.wait_text(f"as {nick}")
        t.wait(lambda lines: lines[-1] == ">", "the prompt")
        yield t, r, nick
    finally:
        t.kill()


STAMP_RE = re.compile(r"^\d\d:\d\d ")


def unstamped(lines):
    """The screen's lines without the "HH:MM " the chat puts before events."""
    return [STAMP_RE.sub("", line) for line in lines]


def test_tty_message_keeps_half_typed_line(tty_client):
    t, r, nick = tty_client
    t.keys("half typed")
    t.wait(lambda lines: lines[-1] == "> half typed", "the half line")
    r.send_frame("SAY ping from raw")
    lines = t.wait(lambda lines: f"{r.nick}: ping from raw" in unstamped(lines),
                   "the incoming message")
    assert lines[-1] == "> half typed"
    assert unstamped(lines).index(f"{r.nick}: ping from raw") < len(lines) - 1
    t.keys(" and more", enter=True)
    assert r.wait_for("MSG ") == f"MSG {nick} half typed and more".encode()


def test_tty_escapes_terminal_sequences(tty_client):
    t, r, _ = tty_client
    r.send_frame(b"SAY \x1b[31mred alert")
    t.wait_text(f"{r.nick}: \\x1b[31mred alert")


def test_tty_backslash_continues_message(tty_client):
    t, r, nick = tty_client
    t.keys("first line\\", enter=True)
    t.wait(lambda lines: lines[-1] == "...", "the continuation prompt")
    t.keys("second line", enter=True)
    assert r.wait_for("MSG ") == f"MSG {nick} first line\nsecond line".encode()


def test_tty_paste_is_one_message(tty_client):
    t, r, nick = tty_client
    t.tmux(["set-buffer", "pasted one\npasted two\n"])
    t.tmux(["paste-buffer", "-p"])         # bracketed paste: one line to edit
    t.wait_text("pasted two")
    t.keys(enter=True)
    assert r.wait_for("MSG ") == f"MSG {nick} pasted one\npasted two".encode()
    t.tmux(["paste-buffer"])                # no brackets: a burst of lines
    assert r.wait_for("MSG ") == f"MSG {nick} pasted one\npasted two".encode()


def test_tty_slash_commands(tty_client):
    t, r, nick = tty_client
    t.keys("/nick Zed", enter=True)
    t.wait_text("you are now Zed")
    assert r.wait_for("NICK ") == f"NICK {nick} Zed".encode()
    t.keys("/bogus", enter=True)
    t.wait_text("error: unknown command /bogus")
    t.keys("/quit", enter=True)
    assert r.wait_for("LEAVE ") == b"LEAVE Zed quit"
