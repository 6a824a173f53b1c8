"""System tests for the chat people expect, client side: /me and /msg, the
events ACTION, PRIVATE, PRESENCE and FILE as the client shows them, history
before live traffic, time stamps, /help COMMAND, --nick (chat, script, -c),
slash commands in script mode, the catch-up after a reconnect, and the
mistyped-subcommand rule.

Run with:  pytest-3 -q tests/system/test_chat_ux.py
(BOTTLED / BOTTLE select other builds.)

The interactive client runs in tmux (screens polled with a deadline); script
mode runs with pipes. Events the server does not send yet (FILE) come from a
small fake server on 127.0.0.1 that greets, answers every command OK and then
sends the events the test gives it. The catch-up after a dropped connection
goes through a TCP relay the test can cut and restore. Everything listens on
127.0.0.1 and every process is stopped by PID.
"""

import os
import queue
import re
import shlex
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from harness.clients import TpktClient
from harness.env import BOTTLE

WAIT = 5.0
STAMP = r"\d\d:\d\d "


def addr_of(port):
    return f"127.0.0.1:{port}"


def chat_command(args):
    """bottle in tmux; its exit status shows as "exit=N" when it ends."""
    argv = " ".join(shlex.quote(str(a)) for a in args)
    return f"env -u BOTTLE_SERVER {shlex.quote(BOTTLE)} {argv}; echo exit=$?; sleep 60"


def run_bottle(*args, stdin=b"", timeout=10):
    env = dict(os.environ)
    env.pop("BOTTLE_SERVER", None)
    return subprocess.run([BOTTLE, *[str(a) for a in args]], input=stdin,
                          capture_output=True, timeout=timeout, env=env)


def has_line(lines, pattern):
    rx = re.compile(pattern)
    return any(rx.search(line) for line in lines)


@pytest.fixture
def raw(server):
    made = []

    def factory(first=b"WHO"):
        r = TpktClient(server.port, timeout=WAIT, first=first)
        made.append(r)
        r.hello()
        return r
    yield factory
    for r in made:
        r.close()


@pytest.fixture
def chat(server, raw, tmux_sessions):
    """(tmux, raw client, nick of the interactive client), the chat at its prompt."""
    r = raw()
    t = tmux_sessions(chat_command([addr_of(server.port)]))
    nick = r.join_nick()
    t.wait_text(f"as {nick}")
    t.wait(lambda ls: ls and ls[-1] == ">", "the prompt")
    return t, r, nick


# --------------------------------------------------------------------------
# Interactive: sending, showing, stamps, help
# --------------------------------------------------------------------------

def test_me_and_msg_go_out_as_action_and_tell(chat):
    t, r, nick = chat
    t.type("/me waves")
    assert r.wait_for("ACTION ") == f"ACTION {nick} waves".encode()
    t.type(f"/msg {r.nick} just for you")
    assert r.wait_for("PRIVATE ") == f"PRIVATE {nick} just for you".encode()
    t.type("/msg nobody hello")
    t.wait_text("error: no such nick: nobody")
    t.type("/msg onlyanick")
    t.wait_text("error: usage: /msg NICK TEXT")


def test_action_private_shown_with_stamps_and_escaped(chat):
    t, r, nick = chat
    r.cmd("ME waves \x1b[2Jback")
    t.wait(lambda ls: has_line(ls, rf"^{STAMP}\* {r.nick} waves \\x1b\[2Jback$"),
           "the action, stamped and escaped")
    assert r.cmd(f"TELL {nick} psst") == "OK"
    t.wait(lambda ls: has_line(ls, rf"^{STAMP}\[private\] {r.nick}: psst$"), "the private one")
    t.type("/time off")
    t.wait_text("time stamps off")
    r.cmd("SAY no stamp now")
    t.wait(lambda ls: f"{r.nick}: no stamp now" in ls, "an unstamped line")
    t.type("/time on")
    t.wait_text("time stamps on")
    r.cmd("SAY stamped again")
    t.wait(lambda ls: has_line(ls, rf"^{STAMP}{r.nick}: stamped again$"), "a stamp again")
    t.type("/time")                    # still the server's clock
    t.wait_text("server time: ")


def test_help_command_is_the_clients_own(chat):
    t, _, _ = chat
    t.type("/help upload")
    lines = t.wait_text("/upload FILE")
    t.wait_text("resumes an interrupted one")
    assert not any("UPLOAD <name>" in l for l in t.lines()), lines
    t.type("/help /msg")
    t.wait(lambda ls: has_line(ls, r"^  /msg NICK TEXT +a private message"), "/msg's help")
    t.type("/help time")
    t.wait_text("/time [on|off]")
    t.type("/help frobnicate")
    t.wait_text("error: no command /frobnicate (/help lists them)")
    t.type("/help")
    t.wait(lambda ls: has_line(ls, r"^  /me ACTION ") and has_line(ls, r"^  /history \[N\] "),
           "the command list")


def test_history_shown_before_live(server, raw, tmux_sessions):
    r = raw()
    assert r.cmd("SAY said before you came") == "OK"
    assert r.cmd("ME waved before") == "OK"
    t = tmux_sessions(chat_command([addr_of(server.port)]))
    lines = t.wait_text("--- live ---")
    i = lines.index("--- history ---")
    assert re.match(rf"^{STAMP}{r.nick}: said before you came$", lines[i + 1]), lines
    assert re.match(rf"^{STAMP}\* {r.nick} waved before$", lines[i + 2]), lines
    assert lines[i + 3] == "--- live ---", lines
    r.cmd("SAY now live")
    lines = t.wait(lambda ls: has_line(ls, rf"{r.nick}: now live$"), "the live line")
    assert lines.index("--- live ---") < len(lines) - 2
    t.type("/history 1")
    t.wait(lambda ls: sum(l == "--- history ---" for l in ls) == 2 and
           has_line(ls[ls.index("--- history ---", i + 1):], rf"{r.nick}: now live$"),
           "the history asked for")


# --------------------------------------------------------------------------
# --nick
# --------------------------------------------------------------------------

def test_nick_option_interactive(server, raw, tmux_sessions):
    r = raw()
    assert r.cmd("NICK bob") == "OK bob"
    t = tmux_sessions(chat_command(["--nick", "alice", addr_of(server.port)]))
    guest = r.join_nick()
    assert r.wait_for("NICK ") == f"NICK {guest} alice".encode()
    t.wait_text("you are now alice")
    t2 = tmux_sessions(chat_command(["--nick", "BOB", addr_of(server.port)]))
    guest2 = r.join_nick()
    t2.wait_text(f"error: could not take the nickname BOB: nickname in use; you are {guest2}")
    t2.type("still here")           # the session goes on as the guest
    assert r.wait_for("MSG ") == f"MSG {guest2} still here".encode()


def test_nick_option_script_and_command(server, raw):
    r = raw()
    assert r.cmd("NICK bob") == "OK bob"
    res = run_bottle("--nick", "carol", addr_of(server.port), stdin=b"hello as carol\n")
    assert res.returncode == 0, res.stderr
    assert r.wait_for("MSG ") == b"MSG carol hello as carol"
    # A refused name: nothing is said under another one, and the exit is 1.
    res = run_bottle("--nick", "bob", addr_of(server.port), stdin=b"not as a guest\n")
    assert res.returncode == 1, res
    assert b"could not take the nickname bob: nickname in use" in res.stderr
    res = run_bottle("--nick", "dave", "-c", "WHO", addr_of(server.port))
    assert res.returncode == 0, res.stderr
    assert b" dave" in res.stdout, res.stdout
    res = run_bottle("--nick", "bob", "-c", "SAY hijack", addr_of(server.port))
    assert res.returncode == 1 and b"nickname in use" in res.stderr, res
    r.sync()
    assert not any("not as a guest" in e or "hijack" in e for e in r.take_events())
    assert run_bottle("--nick", "no spaces", "-c", "WHO").returncode == 2


# --------------------------------------------------------------------------
# Script mode: slash commands and the new events
# --------------------------------------------------------------------------

def test_script_slash_commands(server, raw):
    r = raw()
    lines = (f"/nick scripty\n/me waves\n//slash first\n/msg {r.nick} private word\n"
             "plain\n/who\n").encode()
    res = run_bottle(addr_of(server.port), stdin=lines)
    assert res.returncode == 0, res.stderr
    guest = r.join_nick()
    assert r.wait_for("NICK ") == f"NICK {guest} scripty".encode()
    assert r.wait_for("ACTION ") == b"ACTION scripty waves"
    assert r.wait_for("MSG ") == b"MSG scripty /slash first"
    assert r.wait_for("PRIVATE ") == b"PRIVATE scripty private word"
    assert r.wait_for("MSG ") == b"MSG scripty plain"
    out = res.stdout.decode()
    assert "you are now scripty" in out and "in the room: 2 " in out, out


class FakeServer:
    """A TPKT server that greets, answers OK to every command and, once the
    client's first command is in, sends the given event payloads."""

    def __init__(self, events):
        self.events = events
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(WAIT)
        self.port = self.sock.getsockname()[1]
        self.error = queue.Queue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _frame(payload):
        return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(WAIT)
                buf, sent = b"", False
                conn.sendall(self._frame(b"OK fake ready; you are Guest1"))
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                    while len(buf) >= 4 and len(buf) >= struct.unpack(">H", buf[2:4])[0]:
                        n = struct.unpack(">H", buf[2:4])[0]
                        cmd, buf = buf[4:n], buf[n:]
                        conn.sendall(self._frame(b"OK bye" if cmd == b"QUIT" else b"OK"))
                        if not sent:
                            conn.sendall(b"".join(self._frame(e) for e in self.events))
                            sent = True
                        if cmd == b"QUIT":
                            return
        except OSError as e:
            self.error.put(e)

    def close(self):
        self.sock.close()
        self.thread.join(timeout=WAIT)


def test_script_shows_presence_and_file_events():
    events = [b"PRESENCE 5012 +380 -7",
              b"FILE alice uploaded 10485760 report.pdf",
              b'FILE alice uploaded 12 "my notes.txt"',
              b"FILE alice deleted x",
              b'FILE alice renamed a "b c"',
              b"FILE alice uploaded 3 \x1b[2Jevil",
              b"@17 MSG bob tagged",
              b"HISTORY 3 2026-12-01T12:44:37.824+00:00 MSG bob older"]
    fake = FakeServer(events)
    try:
        # stdin stays open until the events are in: the script leaves at its end
        p = subprocess.Popen([BOTTLE, addr_of(fake.port)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, seen = [], ""
            deadline = time.monotonic() + WAIT
            while "bob: older" not in seen and time.monotonic() < deadline:
                line = p.stdout.readline().decode()
                if not line:
                    break
                out.append(line.rstrip("\n"))
                seen += line
            p.stdin.close()
            assert p.wait(timeout=WAIT) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=WAIT)
    finally:
        fake.close()
    assert out[:6] == ["* 380 joined, 7 left (5012 here)",
                       "* alice uploaded report.pdf (10 MiB)",
                       "* alice uploaded my notes.txt (12 bytes)",
                       "* alice deleted x",
                       "* alice renamed a to b c",
                       "* alice uploaded \\x1b[2Jevil (3 bytes)"], out
    assert out[6] == "bob: tagged", out                        # script mode: no stamps
    assert out[7] == "--- history ---", out
    assert re.match(rf"^{STAMP}bob: older$", out[8]), out


# --------------------------------------------------------------------------
# Catching up after a reconnect
# --------------------------------------------------------------------------

class Relay:
    """127.0.0.1 TCP relay to a server port; cut() drops the connections and
    refuses new ones (accepted and closed) until restore()."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []
        self.open = True
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                if not self.open:
                    c.close()
                    continue
                s = socket.create_connection(("127.0.0.1", self.target), timeout=WAIT)
                self.pairs.append((c, s))
                self.accepted += 1
            for a, b in ((c, s), (s, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            a.settimeout(None)
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.open = False
            for c, s in self.pairs:
                for x in (c, s):
                    try:
                        x.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    x.close()
            self.pairs = []

    def restore(self):
        with self.lock:
            self.open = True

    def close(self):
        self.running = False
        self.cut()
        self.sock.close()
        self.thread.join(timeout=WAIT)


@pytest.fixture
def relay(server):
    r = Relay(server.port)
    yield r
    r.close()


def test_dropped_connection_catches_up_what_was_missed(server, raw, relay, tmux_sessions):
    r = raw()
    assert r.cmd("SAY before you came") == "OK"
    t = tmux_sessions(chat_command(["--retry-for", "30", addr_of(relay.port)]))
    nick = r.join_nick()
    t.wait_text("--- live ---")
    t.wait(lambda ls: ls and ls[-1] == ">", "the prompt")
    assert r.cmd("SAY while you were here") == "OK"
    t.wait(lambda ls: has_line(ls, rf"{r.nick}: while you were here$"), "a live line")
    t.type("my own line")
    assert r.wait_for("MSG ") == f"MSG {nick} my own line".encode()

    relay.cut()
    t.wait_text("* connection lost: ")
    r.wait_for("LEAVE ")
    assert r.cmd("SAY said while you were away") == "OK"
    assert r.cmd("ME waved while you were away") == "OK"
    relay.restore()
    t.wait_text("* back (away ", timeout=30)
    lines = t.wait(lambda ls: sum(l == "--- live ---" for l in ls) == 2, "the catch-up")
    second = [i for i, l in enumerate(lines) if l == "--- history ---"][-1]
    caught = lines[second + 1:lines.index("--- live ---", second)]
    assert len(caught) == 3, lines          # our own line came back too, as history
    assert re.match(rf"^{STAMP}{nick}: my own line$", caught[0]), lines
    assert re.match(rf"^{STAMP}{r.nick}: said while you were away$", caught[1]), lines
    assert re.match(rf"^{STAMP}\* {r.nick} waved while you were away$", caught[2]), lines
    assert sum("while you were here" in l for l in lines) == 1, lines   # shown once
    assert not any("are missing" in l for l in lines), lines
    assert r.cmd("SAY live again") == "OK"
    t.wait(lambda ls: has_line(ls, rf"^{STAMP}{r.nick}: live again$"), "live again")


def test_server_restart_says_messages_are_missing(make_server, tmux_sessions):
    srv = make_server()
    port = srv.port
    t = tmux_sessions(chat_command(["--retry-for", "30", addr_of(port)]))
    t.wait_text("connected to")
    srv.signal(signal.SIGKILL)
    assert srv.wait(timeout=5) == -signal.SIGKILL
    t.wait_text("* connection lost: ")
    srv2 = make_server(listen=(addr_of(port),), data_dir=srv.data_dir)
    r = TpktClient(srv2.port, timeout=WAIT)
    try:
        r.hello()
        assert r.cmd("SAY on the new server") == "OK"
        lines = t.wait_text("some messages said while you were away are missing", timeout=30)
        assert has_line(lines, rf"^{STAMP}{r.nick}: on the new server$"), lines
    finally:
        r.close()


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------

@pytest.mark.parametrize("args,meant", [
    (["list"], "ls"), (["upload", "f"], "put"), (["download", "x"], "get"),
    (["lss"], "ls"), (["gte", "x"], "get"),
])
def test_mistyped_subcommand_is_named(args, meant):
    res = run_bottle(*args)
    assert res.returncode == 2, res
    err = res.stderr.decode()
    assert f"unknown command '{args[0]}'; did you mean '{meant}'?" in err, err


def test_bare_word_is_not_a_host_but_an_address_is(server):
    res = run_bottle("frobnicate")
    assert res.returncode == 2
    assert "unknown command 'frobnicate'" in res.stderr.decode()
    assert "frobnicate:4000" in res.stderr.decode()
    res = run_bottle(f"localhost:{server.port}", "-c", "TIME")
    assert res.returncode == 0, res.stderr


def test_script_upload_finishes_before_leaving(server, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_bytes(b"twelve bytes")
    res = run_bottle(addr_of(server.port), stdin=f"/upload {f}\n".encode(), timeout=20)
    assert res.returncode == 0, res.stderr
    assert b"uploaded notes.txt: " in res.stdout, res.stdout
    assert (server.data_dir / "notes.txt").read_bytes() == b"twelve bytes"
