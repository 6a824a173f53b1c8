"""System tests for the interactive chat coming back by itself: a server
restart, a cable pull, and the retry window running out ("retry? [y/N]").

Run with:  pytest-3 -q tests/system/test_chat_reconnect.py
(BOTTLED / BOTTLE select other builds.)

The chat runs in tmux; every wait is for screen text or a server's log line
and is bounded. Servers listen on 127.0.0.1, except in the cable-pull test,
which uses the network namespaces and veth pair of test_xfer_client.py's
Cable (needs root; skipped otherwise). Processes are stopped by PID.
"""

import re
import shlex
import signal

import pytest

from harness.clients import TpktClient
from harness.env import BOTTLE
from test_xfer_client import SERVER_IP, Cable

EXIT_CONN = 3


@pytest.fixture
def cable(tmp_path):
    c = Cable(tmp_path)
    try:
        c.setup()
        yield c
    finally:
        c.teardown()


def chat_command(args, prefix=""):
    """bottle in tmux; its exit status shows as "exit=N" when it ends."""
    argv = " ".join(shlex.quote(str(a)) for a in args)
    return (f"{prefix} env -u BOTTLE_SERVER {shlex.quote(BOTTLE)} {argv}; "
            f"echo exit=$?; sleep 60")


def test_server_restart_comes_back_with_the_nick(make_server, tmux_sessions):
    srv = make_server()
    port = srv.port
    t = tmux_sessions(chat_command(["--retry-for", "30", f"127.0.0.1:{port}"]))
    t.wait_text("connected to")
    t.type("/nick Alice")
    t.wait_text("you are now Alice")

    srv.signal(signal.SIGKILL)
    assert srv.wait(timeout=5) == -signal.SIGKILL
    t.wait_text("* connection lost: ")
    t.wait_text("reconnecting...")
    t.type("said while away")
    t.wait_text("not sent: no connection")

    srv2 = make_server(listen=(f"127.0.0.1:{port}",), data_dir=srv.data_dir)
    assert srv2.port == port
    lines = t.wait(lambda ls: any(re.search(r"\* back \(away \d+\.\d s\) as Alice$", l)
                                  for l in ls), "the back line", timeout=30)
    assert not any("could not take back" in l for l in lines), lines

    raw = TpktClient(port)
    try:
        raw.hello()
        t.type("/who")                  # a reply: the chat is really back
        t.wait_text("in the room: 2 ")
        t.type("hello after the restart")
        raw.wait_event("MSG Alice hello after the restart")
        t.type("/quit")
        raw.wait_event("LEAVE Alice quit")
        t.wait_text("exit=0")
    finally:
        raw.close()
    assert not srv2.find_log(r"said while away")


def test_cable_pulled_then_restored_chat_comes_back(cable, tmux_sessions):
    srv = cable.server("--keepalive", "2,1,3")
    prefix = " ".join(cable.client_prefix())
    t = tmux_sessions(chat_command(["-k", "2,1,3", "--timeout", "2", "--retry-for", "60",
                                    f"{SERVER_IP}:{srv.port}"], prefix))
    t.wait_text("connected to")
    t.type("/nick Bob")
    t.wait_text("you are now Bob")
    cable.cut()
    t.wait_text("* connection lost: ", timeout=30)   # keepalive: 2 + 3 x 1 s
    cable.restore()
    cable.wait_reachable(srv.port)
    # The server may still hold the old connection (and the name) for a while:
    # either the name comes back or one line says why it did not.
    lines = t.wait_text("* back (away ", timeout=30)
    assert any(l.endswith(" as Bob") for l in lines) or \
        any("could not take back the nickname Bob" in l for l in lines), lines
    t.type("/time")
    t.wait_text("server time: ")
    t.type("/quit")
    t.wait_text("exit=0")


def test_window_runs_out_asks_and_no_exits_lost(make_server, tmux_sessions):
    srv = make_server()
    t = tmux_sessions(chat_command(["--retry-for", "1", "--timeout", "2",
                                    f"127.0.0.1:{srv.port}"]))
    t.wait_text("connected to")
    srv.signal(signal.SIGKILL)
    assert srv.wait(timeout=5) == -signal.SIGKILL
    t.wait_text("* connection lost: ")
    t.wait_text("still no connection after 1 s", timeout=15)
    t.wait(lambda ls: ls and ls[-1].endswith("retry? [y/N]"), "the retry prompt")
    t.type("y")                         # a new window, which runs out again
    t.wait(lambda ls: sum("still no connection" in l for l in ls) >= 2,
           "the question asked again", timeout=15)
    t.type("n")
    t.wait_text(f"exit={EXIT_CONN}")
