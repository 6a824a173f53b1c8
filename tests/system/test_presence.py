"""Who is in the room: a TPKT connection joins with its first command,
`ROLE files` keeps a connection out of the chat, and a big room hears
`PRESENCE` summaries instead of one JOIN per arrival (docs/protocol.md §4)."""

import re

from harness.clients import TpktClient, open_room
from harness.env import scaled
from harness.protocol import as_text


def who(c):
    reply = c.cmd("WHO")
    words = reply.split(" ")
    assert words[0] == "OK", reply
    return int(words[1]), words[2:]


def test_role_files_first_is_never_in_the_room(server, connect_tpkt):
    (watcher,), _ = open_room(server, connect_tpkt, None, 1, 0)
    files = TpktClient(server.port, first=b"ROLE files")
    assert files.hello() == "OK files"
    assert files.cmd("ECHO still served") == "OK still served"
    count, nicks = who(files)
    assert (count, nicks) == (1, [watcher.nick])
    assert files.cmd("SAY hello") == \
        "ERR not in the chat: this connection said ROLE files; ROLE chat joins"
    assert files.cmd("NICK mover").startswith("ERR not in the chat")
    # It gets no events either.
    assert watcher.cmd("SAY anyone?") == "OK"
    files.sync()
    assert files.take_events() == []
    files.close()
    # Its close is not news to the room.
    watcher.sync()
    late = TpktClient(server.port)
    late.hello()
    watcher.wait_event(f"JOIN {late.nick}")
    assert not any(e.startswith("LEAVE ") or e.startswith("JOIN Guest") and
                   e != f"JOIN {late.nick}" for e in watcher.take_events())


def test_tpkt_joins_with_its_first_command(server, connect_tpkt):
    (watcher,), _ = open_room(server, connect_tpkt, None, 1, 0)
    quiet = TpktClient(server.port, first=None)
    quiet.send_raw(b"\x03")              # framing chosen, greeted, no command yet
    greeting = quiet.greeting()
    nick = re.search(r"you are (Guest\d+)$", greeting).group(1)
    assert who(watcher) == (1, [watcher.nick])
    assert watcher.take_events() == []
    quiet.send_raw(b"\x00\x00\x08ECHO")   # the rest of the first frame
    assert quiet.reply() == "OK"
    assert watcher.wait_event(lambda e: e.startswith("JOIN ")) == f"JOIN {nick}"
    assert who(watcher)[0] == 2


def test_role_changes_both_ways(server, connect_tpkt, connect_line):
    (watcher,), (line,) = open_room(server, connect_tpkt, connect_line, 1, 1)
    old = line.nick
    assert line.cmd("ROLE files") == "OK files"
    assert watcher.wait_event(lambda e: e.startswith("LEAVE ")) == f"LEAVE {old} quit"
    assert who(watcher)[0] == 1
    # Out of the room, its name stays reserved: back in, it has it again.
    assert line.cmd("ROLE chat") == f"OK chat {old}"
    assert watcher.wait_event(lambda e: e.startswith("JOIN ")) == f"JOIN {old}"
    assert line.cmd("ROLE chat") == f"OK chat {old}"   # already in: no news
    assert line.cmd("ROLE bogus") == "ERR usage: ROLE chat|files [<nick>]"
    watcher.sync()
    assert watcher.take_events() == []


def test_files_connections_count_against_max_clients(make_server):
    srv = make_server("--max-clients", "2")
    a = TpktClient(srv.port, first=b"ROLE files")
    assert a.hello() == "OK files"
    b = TpktClient(srv.port)
    b.hello()
    c = TpktClient(srv.port)
    assert as_text(c.frame()) == "ERR server full"


def presence_until(member, joined, left):
    """Sum PRESENCE summaries until they add up to joined and left (the
    server may split a burst over two seconds); return the last count and
    the other events seen meanwhile."""
    plus = minus = 0
    others = []
    while (plus, minus) != (joined, left):
        ev = member.event(timeout=scaled(5))
        m = re.fullmatch(r"PRESENCE (\d+) \+(\d+) -(\d+)", ev)
        if not m:
            others.append(ev)
            continue
        count = int(m.group(1))
        plus += int(m.group(2))
        minus += int(m.group(3))
        assert plus <= joined and minus <= left, (ev, plus, minus)
    return count, others


def test_big_room_hears_presence_summaries(make_server):
    srv = make_server("--announce-max", "3")
    members = [TpktClient(srv.port) for _ in range(3)]
    for m in members:
        m.hello()
    first = members[0]
    # Up to 3 members: every JOIN told one by one.
    first.sync()
    assert [e for e in first.take_events() if e.startswith("JOIN ")] == \
        [f"JOIN {m.nick}" for m in members[1:]]
    more = [TpktClient(srv.port) for _ in range(4)]
    for m in more:
        m.hello()
    # The 4 arrivals past the limit: summaries, no JOIN line each.
    count, others = presence_until(first, 4, 0)
    assert count == 7 and others == [], others
    assert who(first)[0] == 7
    # Leaving a big room is counted the same way ...
    for m in more:
        m.close()
    count, others = presence_until(first, 0, 4)
    assert count == 3 and others == [], others
    # ... and a small room hears each LEAVE again.
    members[2].close()
    assert first.wait_event(lambda e: e.startswith("LEAVE ")) == \
        f"LEAVE {members[2].nick} closed"
    for m in members[:2]:
        m.close()
