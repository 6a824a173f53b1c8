"""System tests for bottled's chat room (docs/protocol.md, sections 2 and 4),
with members in both framings: TPKT (RFC 1006) and line.

Run with:  pytest-3 -q tests/system/test_chat.py
"""

import re

import pytest

from harness.clients import open_room
from harness.protocol import TIMESTAMP_RE

MULTILINE = "line one\nline two\n\tthird"


def msgs(events, nick=None):
    return [e for e in events if e.startswith("MSG ")
            and (nick is None or e.startswith(f"MSG {nick} "))]


def who(c):
    """WHO -> (count, [nicks]); checks the reply's shape."""
    reply = c.cmd("WHO")
    m = re.fullmatch(r"OK (\d+)((?: \S+)*)", reply)
    assert m, f"bad WHO reply: {reply!r}"
    return int(m.group(1)), m.group(2).split()


# --------------------------------------------------------------------------
# SAY
# --------------------------------------------------------------------------

def test_multiline_say_tpkt_one_frame_line_clients_line_by_line(
        server, connect_tpkt, connect_line):
    (ta, tb, tc), (la, lb) = open_room(server, connect_tpkt, connect_line, 3, 2)

    assert ta.cmd(f"SAY {MULTILINE}") == "OK"

    # Other TPKT members: exactly one frame, byte for byte.
    for c in (tb, tc):
        c.sync()
        assert msgs(c.take_events()) == [f"MSG {ta.nick} {MULTILINE}"], c
    # Line members: one MSG line per text line, each with the same head.
    for c in (la, lb):
        c.sync()
        assert msgs(c.take_events()) == [
            f"MSG {ta.nick} line one",
            f"MSG {ta.nick} line two",
            f"MSG {ta.nick} \tthird",
        ], c
    # The sender got "OK" (exactly) and no MSG of its own.
    ta.sync()
    assert msgs(ta.take_events()) == []

    # And the other way round: a line member talks to everybody.
    assert la.cmd("SAY hello from the line side") == "OK"
    for c in (ta, tb, tc, lb):
        c.sync()
        assert msgs(c.take_events()) == [
            f"MSG {la.nick} hello from the line side"], c
    la.sync()
    assert msgs(la.take_events()) == []

    # A second TPKT sender; the receivers see the raw bytes, tabs, trailing
    # spaces, UTF-8 and all.
    text = "  spaced\ttabs  \n\nпривет ✓ "
    assert tc.cmd(f"SAY {text}") == "OK"
    for c in (ta, tb):
        c.sync()
        assert msgs(c.take_events()) == [f"MSG {tc.nick} {text}"], c
    for c in (la, lb):
        c.sync()
        assert msgs(c.take_events()) == [
            f"MSG {tc.nick}   spaced\ttabs  ",
            f"MSG {tc.nick} ",
            f"MSG {tc.nick} привет ✓ ",
        ], c


def test_say_empty_text(server, connect_tpkt, connect_line):
    (ta, tb), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    assert ta.cmd("SAY ") == "OK"
    tb.sync()
    assert msgs(tb.take_events()) == [f"MSG {ta.nick} "]
    la.sync()
    assert msgs(la.take_events()) == [f"MSG {ta.nick} "]


def test_order_of_one_senders_messages_at_every_receiver(
        server, connect_tpkt, connect_line):
    (s1, s2, r1, r2), (l1, l2) = open_room(
        server, connect_tpkt, connect_line, 4, 2)
    n = 200
    # Two senders interleave pipelined bursts (many frames per send).
    for chunk in range(0, n, 25):
        s1.send_frames([f"SAY s1 {i}" for i in range(chunk, chunk + 25)])
        l1.send("".join(f"SAY l1 {i}\n" for i in range(chunk, chunk + 25)))
        s2.send_frames([f"SAY s2 {i}\nsecond line {i}"
                        for i in range(chunk, chunk + 25)])
    for c in (s1, s2, l1):
        for _ in range(n):
            assert c.reply() == "OK"

    def check(c, expect_multiline_frames):
        got = c.collect_events(
            3 * n if expect_multiline_frames else 4 * n,
            lambda e: e.startswith("MSG "), timeout=10)
        seq1 = [e for e in got if e.startswith(f"MSG {s1.nick} ")]
        seql = [e for e in got if e.startswith(f"MSG {l1.nick} ")]
        seq2 = [e for e in got if e.startswith(f"MSG {s2.nick} ")]
        assert seq1 == [f"MSG {s1.nick} s1 {i}" for i in range(n)], c
        assert seql == [f"MSG {l1.nick} l1 {i}" for i in range(n)], c
        if expect_multiline_frames:
            assert seq2 == [f"MSG {s2.nick} s2 {i}\nsecond line {i}"
                            for i in range(n)], c
        else:
            want = []
            for i in range(n):
                want += [f"MSG {s2.nick} s2 {i}",
                         f"MSG {s2.nick} second line {i}"]
            assert seq2 == want, c

    for c in (r1, r2):
        check(c, True)
    check(l2, False)
    # Each sender sees the other two, not itself.
    for c in (s1, s2, l1):
        c.sync()
        assert msgs(c.take_events(), c.nick) == []


SAY_MAX = 65336        # docs/protocol.md section 4: 65531 - the longest event head (195)


def test_say_longest_text_is_accepted(server, connect_tpkt, connect_line):
    (a, b), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    text = "x" * SAY_MAX
    assert a.cmd("SAY " + text) == "OK"
    assert b.wait_event(lambda e: e.startswith("MSG ")) == \
        f"MSG {a.nick} {text}"
    assert la.wait_event(lambda e: e.startswith("MSG ")) == \
        f"MSG {a.nick} {text}"


def test_say_too_long_is_refused(server, connect_tpkt, connect_line):
    (a, b), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    want = f"ERR message too long (at most {SAY_MAX} bytes)"
    assert a.cmd("SAY " + "y" * (SAY_MAX + 1)) == want
    assert la.cmd("SAY " + "y" * (SAY_MAX + 1)) == want
    for c in (a, b, la):
        c.sync()
        assert msgs(c.take_events()) == [], c


def test_longest_message_from_longest_nick_fits_one_frame(server,
                                                          connect_tpkt):
    a, b = open_room(server, connect_tpkt, None, 2, 0)[0]
    nick = "\U0001D400" * 32            # 32 letters of 4 bytes: 128 bytes
    assert a.cmd("NICK " + nick) == "OK " + nick
    # Whatever the server's limit is, what it accepts must arrive whole.
    for size in (SAY_MAX - 1, SAY_MAX):
        text = "é" * ((size - 1) // 2) + "z" * (1 + (size - 1) % 2)
        assert len(text.encode()) == size
        reply = a.cmd("SAY " + text)
        if reply.startswith("ERR"):
            continue
        assert reply == "OK"
        ev = b.wait_event(lambda e: e.startswith("MSG "))
        assert ev == f"MSG {nick} {text}", \
            f"MSG event of {len(ev.encode())} bytes cut or altered"
        assert len(b.received[-1]) == len(f"MSG {nick} ".encode()) + size


# --------------------------------------------------------------------------
# NICK
# --------------------------------------------------------------------------

def test_nick_change_seen_by_everyone(server, connect_tpkt, connect_line):
    (ta, tb), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    old = ta.nick
    assert ta.cmd("NICK Alice") == "OK Alice"
    for c in (tb, la):
        c.sync()
        assert c.take_events() == [f"NICK {old} Alice"], c
    ta.sync()
    assert ta.take_events() == []          # no NICK event to oneself
    for c in (ta, tb, la):
        count, nicks = who(c)
        assert count == 3
        assert sorted(nicks) == sorted(["Alice", tb.nick, la.nick])
        assert old not in nicks
    # The new name is used from now on.
    assert ta.cmd("SAY hi") == "OK"
    assert tb.wait_event(lambda e: e.startswith("MSG ")) == "MSG Alice hi"
    assert la.wait_event(lambda e: e.startswith("MSG ")) == "MSG Alice hi"
    # A line member renames too.
    old_l = la.nick
    assert la.cmd("NICK bob_2.x-[y]") == "OK bob_2.x-[y]"
    assert ta.wait_event(lambda e: e.startswith("NICK ")) == \
        f"NICK {old_l} bob_2.x-[y]"
    assert tb.wait_event(lambda e: e.startswith("NICK ")) == \
        f"NICK {old_l} bob_2.x-[y]"
    server.wait_log(rf"{old} is now known as Alice$")
    server.wait_log(rf"{old_l} is now known as bob_2\.x-\[y\]$")


def test_nick_collision_is_case_insensitive(server, connect_tpkt,
                                             connect_line):
    (ta, tb), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    b_old = tb.nick
    assert ta.cmd("NICK Alice") == "OK Alice"
    for name in ("Alice", "alice", "ALICE", "aLiCe"):
        assert tb.cmd(f"NICK {name}") == "ERR nickname in use", name
        assert la.cmd(f"NICK {name}") == "ERR nickname in use", name
    # Generated names are taken too, whatever the case.
    assert tb.cmd(f"NICK {la.nick.lower()}") == "ERR nickname in use"
    assert tb.cmd(f"NICK {la.nick.upper()}") == "ERR nickname in use"
    # Nothing changed: no NICK events, WHO as before.
    ta.sync()
    assert [e for e in ta.take_events() if e.startswith("NICK ")] == []
    count, nicks = who(ta)
    assert count == 3 and sorted(nicks) == sorted(["Alice", b_old, la.nick])
    # The old name of a renamed member is free again.
    a_gone = tb.cmd("NICK Bob")
    assert a_gone == "OK Bob"
    assert la.cmd(f"NICK {b_old}") == f"OK {b_old}"


@pytest.mark.parametrize("command", ["NICK", "NICK "])
def test_nick_empty(server, connect_tpkt, connect_line, command):
    (ta, tb), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    assert ta.cmd(command) == "ERR nickname required"
    assert la.cmd(command) == "ERR nickname required"
    tb.sync()
    assert tb.take_events() == []
    count, nicks = who(tb)
    assert count == 3 and ta.nick in nicks and la.nick in nicks


@pytest.mark.parametrize("name", [
    "a b", "x" * 33, "x/y", "semi;colon", "tab\there", "bang!", "ё" * 33,
], ids=["space", "33-chars", "slash", "semicolon", "tab", "bang",
        "33-cyrillic"])
def test_nick_invalid(server, connect_tpkt, connect_line, name):
    (ta, tb), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    assert ta.cmd(f"NICK {name}") == "ERR invalid nickname: 1-32 letters, digits or _-.[]"
    assert la.cmd(f"NICK {name}") == "ERR invalid nickname: 1-32 letters, digits or _-.[]"
    tb.sync()
    assert tb.take_events() == []
    count, nicks = who(tb)
    assert count == 3 and sorted(nicks) == sorted([ta.nick, tb.nick, la.nick])


def test_nick_32_chars_is_the_limit(server, connect_tpkt):
    a, = open_room(server, connect_tpkt, None, 1, 0)[0]
    assert a.cmd("NICK " + "x" * 32) == "OK " + "x" * 32
    assert a.cmd("NICK " + "ж" * 32) == "OK " + "ж" * 32   # 64 bytes
    count, nicks = who(a)
    assert (count, nicks) == (1, ["ж" * 32])


def test_cyrillic_nick(server, connect_tpkt, connect_line):
    (ta, tb), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    old = ta.nick
    assert ta.cmd("NICK Борис") == "OK Борис"
    for c in (tb, la):
        assert c.wait_event(lambda e: e.startswith("NICK ")) == \
            f"NICK {old} Борис"
    count, nicks = who(la)
    assert count == 3 and "Борис" in nicks
    # Case folding works for Cyrillic too.
    assert tb.cmd("NICK БОРИС") == "ERR nickname in use"
    assert la.cmd("NICK борис") == "ERR nickname in use"
    assert ta.cmd("SAY Привет, мир") == "OK"
    assert tb.wait_event(lambda e: e.startswith("MSG ")) == \
        "MSG Борис Привет, мир"
    assert la.wait_event(lambda e: e.startswith("MSG ")) == \
        "MSG Борис Привет, мир"
    server.wait_log(r"Борис: Привет, мир$")


# --------------------------------------------------------------------------
# WHO, JOIN, LEAVE
# --------------------------------------------------------------------------

def test_who_count_is_exact(server, connect_tpkt, connect_line):
    a = connect_tpkt(server)
    a.hello()
    assert a.first_reply == f"OK 1 {a.nick}"
    members = [a]
    for i in range(5):
        c = connect_tpkt(server) if i % 2 else connect_line(server)
        c.sync()
        members.append(c)
        for m in (a, c):
            count, nicks = who(m)
            assert count == len(members)
            assert sorted(nicks) == sorted(x.nick for x in members)
    gone = members.pop(2)
    assert gone.cmd("QUIT") == "OK bye"
    a.wait_event(f"LEAVE {gone.nick} quit")
    count, nicks = who(a)
    assert count == 5 and sorted(nicks) == sorted(x.nick for x in members)


def test_join_events_in_order(server, connect_tpkt, connect_line):
    a = connect_tpkt(server)
    a.hello()
    server.wait_log(rf"{a.nick} joined \(1 in the room\)$")
    b = connect_line(server)
    b.sync()
    assert a.wait_event(lambda e: e.startswith("JOIN ")) == f"JOIN {b.nick}"
    c = connect_tpkt(server)
    c.hello()
    assert a.wait_event(lambda e: e.startswith("JOIN ")) == f"JOIN {c.nick}"
    assert b.wait_event(lambda e: e.startswith("JOIN ")) == f"JOIN {c.nick}"
    # Nobody is told about their own join.
    for m in (a, b, c):
        m.sync()
        assert f"JOIN {m.nick}" not in m.take_events()
    server.wait_log(rf"{b.nick} joined \(2 in the room\)$")
    server.wait_log(rf"{c.nick} joined \(3 in the room\)$")


@pytest.mark.parametrize("kind", ["tpkt", "line"])
def test_leave_quit(server, connect_tpkt, connect_line, kind):
    (ta, tb), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    q = connect_tpkt(server) if kind == "tpkt" else connect_line(server)
    q.sync()
    for c in (ta, tb, la):
        c.wait_event(f"JOIN {q.nick}")
    assert q.cmd("QUIT") == "OK bye"
    q.expect_closed()
    for c in (ta, tb, la):
        assert c.wait_event(lambda e: e.startswith("LEAVE ")) == \
            f"LEAVE {q.nick} quit"
    server.wait_log(rf"{q.nick} left: quit \(3 in the room\)$")
    count, _ = who(ta)
    assert count == 3


@pytest.mark.parametrize("kind", ["tpkt", "line"])
@pytest.mark.parametrize("how", ["close", "reset"])
def test_leave_closed(server, connect_tpkt, connect_line, kind, how):
    (ta, tb), (la,) = open_room(server, connect_tpkt, connect_line, 2, 1)
    q = connect_tpkt(server) if kind == "tpkt" else connect_line(server)
    q.sync()
    nick = q.nick
    (q.close if how == "close" else q.reset)()
    for c in (ta, tb, la):
        assert c.wait_event(lambda e: e.startswith("LEAVE ")) == \
            f"LEAVE {nick} closed"
    server.wait_log(rf"{nick} left: closed \(3 in the room\)$")
    # The others carry on.
    assert ta.cmd("SAY still here") == "OK"
    assert la.wait_event(lambda e: e.startswith("MSG ")) == \
        f"MSG {ta.nick} still here"


def test_leave_after_rename_uses_new_name(server, connect_tpkt):
    a, b = open_room(server, connect_tpkt, None, 2, 0)[0]
    assert b.cmd("NICK Zed") == "OK Zed"
    assert b.cmd("QUIT") == "OK bye"
    assert a.wait_event(lambda e: e.startswith("LEAVE ")) == "LEAVE Zed quit"


# --------------------------------------------------------------------------
# The server's console
# --------------------------------------------------------------------------

def test_console_logs_chat_and_membership(server, connect_tpkt, connect_line):
    ts = rf"^{TIMESTAMP_RE} "
    a = connect_tpkt(server)
    a.hello()
    server.wait_log(ts + rf"{a.nick} joined \(1 in the room\)$")
    b = connect_line(server)
    b.sync()
    server.wait_log(ts + rf"{b.nick} joined \(2 in the room\)$")

    mark = server.log_mark()
    assert a.cmd("SAY hello, world") == "OK"
    server.wait_log(ts + rf"{a.nick}: hello, world$", since=mark)
    assert b.cmd("SAY from the line") == "OK"
    server.wait_log(ts + rf"{b.nick}: from the line$", since=mark)
    # A multi-line text stays on one log line (control bytes escaped).
    assert a.cmd(f"SAY {MULTILINE}") == "OK"
    server.wait_log(ts + re.escape(f"{a.nick}: line one\\nline two\\n\\tthird")
                    + "$", since=mark)
    assert not any(line == "line two" or line.startswith("\tthird")
                   for line in server.log_lines())

    assert b.cmd("QUIT") == "OK bye"
    server.wait_log(ts + rf"{b.nick} left: quit \(1 in the room\)$",
                    since=mark)
    a.close()
    server.wait_log(ts + rf"{a.nick} left: closed \(0 in the room\)$",
                    since=mark)


# --------------------------------------------------------------------------
# A receiver that never reads
# --------------------------------------------------------------------------

def test_slow_receiver_is_cut_off_others_get_everything(
        make_server, connect_tpkt, connect_line):
    srv = make_server("--max-output", "65536")
    slow = connect_tpkt(srv, rcvbuf=4096)
    slow.hello()                       # from here on it never reads
    sender = connect_tpkt(srv)
    reader = connect_tpkt(srv)
    lreader = connect_line(srv)
    for c in (sender, reader):
        c.hello()
    lreader.sync()
    for c in (sender, reader, lreader):
        c.sync()
        c.take_events()

    def text(i):
        head = f"#{i:06d} "
        return head + "z" * (4096 - len(head))

    leave = f"LEAVE {slow.nick} too slow"
    stream = {reader: [], lreader: []}
    sent = 0
    cut_at = None
    limit = 4000                        # 16 MiB: far beyond any buffer
    while sent < limit and (cut_at is None or sent < cut_at + 20):
        # Lockstep: the readers keep up, only the slow one falls behind.
        assert sender.cmd("SAY " + text(sent)) == "OK"
        sent += 1
        for r in (reader, lreader):
            stream[r] += r.events_until(lambda e: e.startswith("MSG "))
        if cut_at is None and leave in sender.events:
            cut_at = sent
    assert cut_at is not None, \
        f"slow reader never cut off after {sent} messages of 4 KiB"
    srv.wait_log(r"disconnect \S+: output overflow")
    srv.wait_log(rf"{slow.nick} left: too slow \(3 in the room\)$")

    # Every receiver that reads got every message, in order, and one LEAVE.
    want = [f"MSG {sender.nick} {text(i)}" for i in range(sent)]
    for r in (reader, lreader):
        r.sync()
        stream[r] += r.take_events()
        got = msgs(stream[r])
        assert len(got) == len(want), \
            f"{r!r}: {len(got)} of {len(want)} messages"
        for i, (g, w) in enumerate(zip(got, want)):
            assert g == w, f"{r!r}: message {i} is {g[:40]!r}..., " \
                           f"want {w[:40]!r}..."
        assert stream[r].count(leave) == 1, [e[:40] for e in stream[r]
                                             if not e.startswith("MSG ")]
        others = [e for e in stream[r] if not e.startswith("MSG ")]
        assert others == [leave], others
    # The sender never consumed events: all it got is still buffered.
    sender.sync()
    sender_events = sender.take_events()
    assert sender_events.count(leave) == 1, sender_events
    assert msgs(sender_events) == []

    # The slow member's socket is closed: it only ever got a prefix of the
    # stream (possibly ending in a cut frame), never its own LEAVE.
    rest = slow.expect_closed(timeout=10)
    complete = [p for p in rest if p.startswith((b"MSG ", b"JOIN "))]
    nums = [int(p.split(b" ", 2)[2][1:7]) for p in complete
            if p.startswith(b"MSG ")]
    assert nums == list(range(len(nums))), nums[:10]
    assert len(nums) < sent
    assert leave.encode() not in rest
