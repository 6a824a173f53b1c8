"""The room's history, private messages and actions (docs/protocol.md §4):
latecomers get the last messages before live traffic, marked HISTORY; a client
that reconnects asks for what came after the last offset it saw and learns
whether that is complete; TELL reaches one member; ME is an ACTION."""

import re

from harness.clients import LineChatClient, TpktClient, open_room, run_nc
from harness.protocol import TIMESTAMP_RE

HIST_RE = re.compile(rf"HISTORY (\d+) ({TIMESTAMP_RE}) (MSG|ACTION) (\S+) (.*)")


def history(events):
    """(offset, word, nick, text) of the HISTORY events among ``events``."""
    out = []
    for e in events:
        m = HIST_RE.fullmatch(e)
        if m:
            out.append((int(m.group(1)), m.group(3), m.group(4), m.group(5)))
    return out


def test_latecomer_gets_history_before_live(server, connect_tpkt):
    (a,), _ = open_room(server, connect_tpkt, None, 1, 0)
    for i in range(3):
        assert a.cmd(f"SAY old {i}") == "OK"
    assert a.cmd("ME waves") == "OK"
    late = LineChatClient(server.port)
    late.sync()
    assert history(late.take_events()) == [
        (1, "MSG", a.nick, "old 0"), (2, "MSG", a.nick, "old 1"),
        (3, "MSG", a.nick, "old 2"), (4, "ACTION", a.nick, "waves")]
    assert a.cmd("SAY live") == "OK"
    assert late.wait_event(lambda e: e.startswith("MSG ")) == f"MSG {a.nick} live"


def test_history_from_nc(make_server):
    srv = make_server("--history", "2")
    a = TpktClient(srv.port)
    a.hello()
    for i in range(4):
        assert a.cmd(f"SAY m{i}") == "OK"
    out = run_nc(srv.port, "HISTORY 1\nHISTORY x\nQUIT\n").stdout.decode()
    lines = out.splitlines()
    assert lines[0].startswith("OK bottled ")
    # Joining replays what is kept (2), then HISTORY 1 the last one again.
    assert [h[3] for h in history(lines)] == ["m2", "m3", "m3"]
    reply = [l for l in lines if l.startswith("OK ")][1]
    assert re.fullmatch(r"OK [0-9a-f]{16} 4", reply), reply
    assert "ERR usage: HISTORY [<count>] | HISTORY SINCE <epoch> <offset>" in lines
    assert lines[-1] == "OK bye"


def position(client):
    reply = client.cmd("OFFSETS on")
    m = re.fullmatch(r"OK ([0-9a-f]{16}) (\d+)", reply)
    assert m, reply
    return m.group(1), int(m.group(2))


def test_reconnect_catches_up_from_its_offset(server, connect_tpkt):
    (a,), _ = open_room(server, connect_tpkt, None, 1, 0)
    b = TpktClient(server.port, first=b"OFFSETS on")
    b.hello()
    assert b.cmd("ECHO in") == "OK in"       # joins; the room had no history
    epoch, last = position(b)
    assert a.cmd("SAY one") == "OK"
    ev = b.wait_event(lambda e: "MSG " in e)
    m = re.fullmatch(rf"@(\d+) MSG {a.nick} one", ev)
    assert m, ev
    seen = int(m.group(1))
    assert seen == last + 1
    b.close()
    for text in ("two", "three"):
        assert a.cmd(f"SAY {text}") == "OK"
    # Back, asking for what came after the last message it saw: that and no
    # newcomer's replay, and the server says nothing is missing.
    c = TpktClient(server.port, first=f"HISTORY SINCE {epoch} {seen}".encode())
    assert c.hello() == f"OK {epoch} {seen + 2} complete"
    c.sync()
    assert [(h[0], h[3]) for h in history(c.take_events())] == \
        [(seen + 1, "two"), (seen + 2, "three")]


def test_catch_up_that_is_impossible_says_so(make_server):
    srv = make_server("--history", "2")
    a = TpktClient(srv.port)
    a.hello()
    epoch, _ = position(a)
    for i in range(5):
        assert a.cmd(f"SAY m{i}") == "OK"
    # Offset 1 is long gone: all that is kept, marked incomplete.
    c = TpktClient(srv.port, first=f"HISTORY SINCE {epoch} 1".encode())
    assert c.hello() == f"OK {epoch} 5 incomplete"
    c.sync()
    assert [h[3] for h in history(c.take_events())] == ["m3", "m4"]
    # Another run's epoch: the same.
    other = "0123456789abcdef" if epoch != "0123456789abcdef" else "fedcba9876543210"
    d = TpktClient(srv.port, first=f"HISTORY SINCE {other} 4".encode())
    assert d.hello() == f"OK {epoch} 5 incomplete"


def test_a_restart_is_a_new_epoch(make_server, tmp_path):
    epochs = []
    for _ in range(2):
        srv = make_server(data_dir=tmp_path / "data")
        c = TpktClient(srv.port)
        c.hello()
        epochs.append(position(c)[0])
        c.close()
        srv.stop(timeout=5.0)
    assert epochs[0] != epochs[1]


def test_no_history_kept(make_server):
    srv = make_server("--history", "0")
    a = TpktClient(srv.port)
    a.hello()
    assert a.cmd("SAY gone") == "OK"
    late = LineChatClient(srv.port)
    late.sync()
    assert history(late.take_events()) == []


def test_tell_reaches_one_member_only(server, connect_tpkt, connect_line):
    (a, b), (c,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    assert a.cmd(f"TELL {c.nick.lower()} psst, a secret") == "OK"
    assert c.wait_event(lambda e: e.startswith("PRIVATE ")) == \
        f"PRIVATE {a.nick} psst, a secret"
    assert c.cmd(f"TELL {a.nick} line\\n stays one") == "OK"
    assert a.wait_event(lambda e: e.startswith("PRIVATE ")) == \
        f"PRIVATE {c.nick} line\\n stays one"
    b.sync()
    assert b.take_events() == []
    assert a.cmd("TELL nobody hi") == "ERR no such nick: nobody"
    assert a.cmd("TELL onlyanick") == "ERR usage: TELL <nick> <text>"
    # Private messages are not history.
    late = LineChatClient(server.port)
    late.sync()
    assert history(late.take_events()) == []


def test_files_connection_cannot_be_told(server, connect_tpkt):
    (a,), _ = open_room(server, connect_tpkt, None, 1, 0)
    files = TpktClient(server.port, first=b"ROLE files")
    files.hello()
    nick = files.nick
    assert a.cmd(f"TELL {nick} hi") == f"ERR no such nick: {nick}"


def test_action(server, connect_tpkt, connect_line):
    (a,), (b,) = open_room(server, connect_tpkt, connect_line, 1, 1)
    assert a.cmd("ME waves hello") == "OK"
    assert b.wait_event(lambda e: e.startswith("ACTION ")) == f"ACTION {a.nick} waves hello"
    server.wait_log(rf"\* {a.nick} waves hello$")
