"""Several bottled nodes share one chat through Redis (issue 13, sections 1-4;
docs/cluster.md): members of two nodes chat over TPKT and lines, names are
unique across the nodes, WHO lists everyone, a burst from both nodes arrives
exactly once and in order, a killed node's members leave ("node lost") and
free their names, and Redis going away, coming back, or never being there
leaves every node serving its own room and linking again by itself.

Run with:  pytest-3 -q tests/system/test_cluster.py

A real redis-server on a free loopback port (harness/services.py), bottled
nodes on 127.0.0.1; every process is stopped by PID, every wait is bounded
and waits for the event (a log line, a chat event), not for time.
"""

import os
import re
import shlex
import signal
import socket
import threading
import time

import pytest

from harness.clients import LineChatClient, TpktClient
from harness.server import run_bottled
from harness.services import RedisServer, _Process, _accepts, free_port
from harness.env import BOTTLE, wait_until

TTL = "2"  # --cluster-ttl: short heartbeats keep the failure tests quick
LINKED = r"cluster: linked to redis"


@pytest.fixture
def redis(tmp_path):
    r = RedisServer(tmp_path)
    yield r
    r.stop()


def start_node(make_server, url, name, *extra, ttl=TTL, **kw):
    srv = make_server("--cluster", url, "--node-name", name, "--cluster-ttl", ttl, *extra, **kw)
    srv.wait_log(LINKED, timeout=10)
    return srv


@pytest.fixture
def nodes(make_server, redis):
    """Two nodes, A and B, linked through one redis."""
    url = redis.url("t")
    return start_node(make_server, url, "A"), start_node(make_server, url, "B")


def line(srv):
    c = LineChatClient(srv.port)
    c.send("\r\n")  # a first byte: greeted now, not after --greeting-delay
    c.greeting()
    return c


def tpkt(srv):
    c = TpktClient(srv.port)
    c.hello()
    return c


def kill9(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.proc.wait(timeout=10)


def restart_redis(old, tmp_path):
    """A new redis-server on the port of one that was killed (empty: no save)."""
    new = _Process(old.proc.args, tmp_path / f"redis-again-{time.monotonic_ns()}.log")
    wait_until(lambda: not new.running() or _accepts(old.port), 10, "redis to listen again")
    assert new.running(), new.log_text()
    return new


def who(c):
    reply = c.cmd("WHO")
    words = reply.split()
    assert words[0] == "OK", reply
    return set(words[2:])


def test_bad_cluster_options_are_usage_errors():
    for args in (["--cluster", "http://127.0.0.1:6379"], ["--cluster", "redis://h:0"],
                 ["--cluster", "redis://h/bad*prefix"], ["--node-name", "a b"],
                 ["--cluster-ttl", "0"]):
        r = run_bottled(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip(), args


def test_chat_across_nodes_tpkt_and_lines(nodes):
    a_srv, b_srv = nodes
    ann = line(a_srv)
    assert ann.cmd("NICK ann") == "OK ann"
    bob = tpkt(b_srv)
    assert bob.cmd("NICK bob") == "OK bob"
    # Each sees the other arrive, as a member of this room.
    ann.wait_event(re.compile(r"(JOIN bob|NICK Guest\d+ bob)"))
    assert who(ann) == {"ann", "bob"}
    assert who(bob) == {"ann", "bob"}

    assert ann.cmd("SAY hello from A") == "OK"
    assert bob.wait_event(re.compile(r"MSG ann .*")) == "MSG ann hello from A"
    assert bob.cmd("SAY hello from B") == "OK"
    assert ann.wait_event(re.compile(r"MSG bob .*")) == "MSG bob hello from B"
    # A multi-line TPKT message reaches a line member line by line.
    bob.cmd("SAY two\nlines")
    assert ann.wait_event(re.compile(r"MSG bob .*")) == "MSG bob two"
    assert ann.wait_event(re.compile(r"MSG bob .*")) == "MSG bob lines"
    assert bob.cmd("ME waves") == "OK"
    assert ann.wait_event(re.compile(r"ACTION .*")) == "ACTION bob waves"
    # Private messages find their member on the other node, and only it.
    carl = line(a_srv)
    assert bob.cmd("TELL ann psst") == "OK"
    assert ann.wait_event(re.compile(r"PRIVATE .*")) == "PRIVATE bob psst"
    assert ann.cmd("TELL bob back") == "OK"
    assert bob.wait_event(re.compile(r"PRIVATE .*")) == "PRIVATE ann back"
    carl.sync()
    assert not [e for e in carl.take_events() if e.startswith("PRIVATE")]
    # Leaving is told across too.
    bob.cmd("QUIT")
    ann.wait_event("LEAVE bob quit")
    assert "bob" not in who(ann)


def test_names_are_unique_across_nodes(nodes):
    a_srv, b_srv = nodes
    ann = line(a_srv)
    assert ann.cmd("NICK Zoe") == "OK Zoe"
    bob = line(b_srv)
    # Redis holds the claim: refused whatever B has heard yet, ignoring case.
    assert bob.cmd("NICK zoe") == "ERR nickname in use"
    assert bob.cmd("NICK ZOE") == "ERR nickname in use"
    # Pipelined behind a NICK that waits for Redis, replies keep their order.
    bob.send("NICK bobby\r\nECHO after\r\n")
    assert bob.reply() == "OK bobby"
    assert bob.reply() == "OK after"
    # A name given back is free on the other node.
    assert ann.cmd("NICK ann") == "OK ann"
    bob.wait_event("NICK Zoe ann")
    assert bob.cmd("NICK zoe") == "OK zoe"
    assert ann.cmd("NICK Zoe") == "ERR nickname in use"
    # Generated names too: nobody on either node shares a GuestN.
    guests = [line(srv) for srv in (a_srv, b_srv) for _ in range(4)]
    names = [g.nick.lower() for g in guests]
    assert len(set(names)) == len(names), names


def _reader(client, lines, want, done):
    """Collect the client's lines until `want(lines)`; sets done."""
    buf, client.buf = client.buf, b""
    try:
        while True:
            *complete, buf = buf.split(b"\n")
            lines.extend(x.decode().rstrip("\r") for x in complete)
            if want(lines):
                break
            data = client.sock.recv(1 << 16)
            if not data:
                break
            buf += data
    except OSError:
        pass
    finally:
        done.set()


def test_burst_from_both_nodes_exactly_once_in_order(nodes):
    """10,000 messages pipelined by one client on each node at once: every
    member gets each message once, and each sender's in the order sent."""
    a_srv, b_srv = nodes
    n = 10000
    names = {"a1": a_srv, "a2": a_srv, "b1": b_srv, "b2": b_srv}
    clients = {}
    for name, srv in names.items():
        c = line(srv)
        assert c.cmd(f"NICK {name}") == f"OK {name}"
        clients[name] = c
    # Everyone knows everyone before the burst.
    for name, c in clients.items():
        wait_until(lambda c=c: len(who(c)) == 4, 5, f"{name} to see four members")
    senders = {"a1": f"SAY a1 {{}}\r\n", "b1": f"SAY b1 {{}}\r\n"}

    def msgs(lines, sender):
        return [x for x in lines if x.startswith(f"MSG {sender} ")]

    def expected(name):
        want = {s: n for s in senders if s != name}
        return lambda lines: all(len(msgs(lines, s)) >= k for s, k in want.items()) and \
            (name not in senders or sum(1 for x in lines if x == "OK") >= n)

    got, threads = {}, []
    for name, c in clients.items():
        c.sock.settimeout(60)
        got[name] = list(c.events)
        c.events.clear()
        done = threading.Event()
        t = threading.Thread(target=_reader, args=(c, got[name], expected(name), done),
                             daemon=True)
        t.start()
        threads.append((name, t, done))
    payload = {s: "".join(senders[s].format(i) for i in range(n)).encode() for s in senders}
    pushers = [threading.Thread(target=clients[s].sock.sendall, args=(payload[s],), daemon=True)
               for s in senders]
    for p in pushers:
        p.start()
    for p in pushers:
        p.join(60)
    for name, t, done in threads:
        if not done.wait(30):
            counts = {s: len(msgs(got[name], s)) for s in senders}
            oks = sum(1 for x in got[name] if x == "OK")
            pytest.fail(f"{name}: burst not all in: {counts}, {oks} OK, last "
                        f"{got[name][-3:]}\nA: {a_srv.log_text()[-1500:]}\n"
                        f"B: {b_srv.log_text()[-1500:]}")
        t.join(5)
    for name, lines in got.items():
        for s in senders:
            if s == name:
                assert not msgs(lines, s), f"{name} got its own messages back"
                continue
            seq = [int(x.split()[3]) for x in msgs(lines, s)]
            assert seq == list(range(n)), \
                f"{name} saw {len(seq)} of {s}'s, first wrong at " \
                f"{next((i for i, v in enumerate(seq) if v != i), len(seq))}"


def test_killed_node_members_leave_and_names_free(make_server, redis):
    """kill -9 of a node at the default TTL: its members leave the others
    ("node lost") within 15 s, and their names are free."""
    url = redis.url("k")
    a_srv = start_node(make_server, url, "A", ttl="5")
    b_srv = start_node(make_server, url, "B", ttl="5")
    ann = line(a_srv)
    bob = line(b_srv)
    assert bob.cmd("NICK bob") == "OK bob"
    ann.wait_event(re.compile(r"(JOIN bob|NICK Guest\d+ bob)"))
    kill9(b_srv)
    start = time.monotonic()
    ann.wait_event("LEAVE bob node lost", timeout=15)
    assert time.monotonic() - start < 15
    assert "bob" not in who(ann)
    assert ann.cmd("NICK bob") == "OK bob"
    a_srv.wait_log(r"cluster: node B~[0-9a-f]{16} lost")


def test_redis_restart_recovers_without_duplicates(nodes, redis, tmp_path):
    a_srv, b_srv = nodes
    ann, bob = line(a_srv), line(b_srv)
    local = line(a_srv)  # a bystander on A
    assert ann.cmd("NICK ann") == "OK ann"
    assert bob.cmd("NICK bob") == "OK bob"
    bob.wait_event(re.compile(r"(JOIN ann|NICK Guest\d+ ann)"))
    epoch_before = ann.cmd("HISTORY 0").split()[1]
    marks = (a_srv.log_mark(), b_srv.log_mark())
    kill9(redis)
    for srv, mark in zip(nodes, marks):
        srv.wait_log(r"cluster: link to redis at 127\.0\.0\.1:\d+ lost", since=mark)
    # Local chat goes on; what is said now stays on this node.
    assert ann.cmd("SAY while away") == "OK"
    assert local.wait_event(re.compile(r"MSG ann .*")) == "MSG ann while away"
    # Both take one name while Redis is away: the clash rule decides later.
    assert ann.cmd("NICK Twin") == "OK Twin"
    assert bob.cmd("NICK twin") == "OK twin"
    again = restart_redis(redis, tmp_path)
    try:
        back = time.monotonic()
        for srv, mark in zip(nodes, marks):
            srv.wait_log(LINKED, since=mark, timeout=20)
        assert time.monotonic() - back < 20
        for srv, mark in zip(nodes, marks):
            lost = [x for x in srv.log_lines()[mark:] if "link to redis" in x]
            assert len(lost) == 1, lost
        # One of the twins keeps the name; the other is renamed and told.
        renamed = None
        deadline = time.monotonic() + 10
        while renamed is None and time.monotonic() < deadline:
            for c, old in ((ann, "Twin"), (bob, "twin")):
                c.sync()
                for ev in c.take_events():
                    m = re.fullmatch(rf"NICK {old} (Guest\d+)", ev)
                    if m:
                        renamed = (c, m.group(1))
        assert renamed, "nobody lost the name Twin"
        loser, guest = renamed
        winner = bob if loser is ann else ann
        wait_until(lambda: guest in who(winner) and len(who(winner)) == 3, 10,
                   "the winner's node to see the renamed member")
        # Chat across is back, each message once; the one said while away never crosses.
        assert ann.cmd("SAY back again") == "OK"
        seen = bob.events_until(re.compile(r"MSG \S+ back again"), timeout=10)
        bob.sync()
        later = seen + bob.take_events()
        assert not [e for e in later if e.endswith("while away")]
        assert len([e for e in later if e.endswith("back again")]) == 1
        # Redis came back empty: one new history, the same on both nodes.
        epochs = {c.cmd("HISTORY 0").split()[1] for c in (ann, bob)}
        assert len(epochs) == 1 and epoch_before not in epochs, (epoch_before, epochs)
    finally:
        again.stop()


def test_redis_never_started_serves_the_local_room(make_server):
    port = free_port()  # nobody listens there
    srv = make_server("--cluster", f"redis://127.0.0.1:{port}", "--node-name", "alone", "-v")
    srv.wait_log(r"cluster: cannot reach redis at 127\.0\.0\.1:\d+ .*serving the local room")
    a, b = line(srv), line(srv)
    assert a.cmd("NICK ann") == "OK ann"
    assert a.cmd("SAY anyone?") == "OK"
    assert b.wait_event(re.compile(r"MSG ann .*")) == "MSG ann anyone?"
    assert who(b) == {"ann", b.nick}
    srv.wait_log(r"cluster: connecting to redis .* \(attempt 3\)", timeout=10)
    assert len([x for x in srv.log_lines() if "cannot reach redis" in x]) == 1


def _resp(*args):
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def test_hostile_payloads_are_ignored(nodes, redis):
    """Anyone who can reach Redis can publish: nonsense is logged and dropped."""
    a_srv, _ = nodes
    ann = line(a_srv)
    bad = [b"", b"garbage", b"x~0123456789abcdef E MSG", b"x~0123456789abcdef E JOIN a b",
           b"x~0123456789abcdef E LEAVE ann evil\r\nMSG x", b"\xff" * 300,
           b"x~0123456789abcdef P " + b"A" * 70000]
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as s:
        for p in bad:
            s.sendall(_resp("PUBLISH", "t:events", p))
            assert s.recv(100).startswith(b":")
    a_srv.wait_log(r"cluster: ignored a malformed event")
    assert ann.cmd("ECHO alive") == "OK alive"
    assert ann.nick in who(ann)


def test_history_is_the_clusters(nodes, make_server, redis):
    """One epoch and one numbering on every node: a member that comes back
    through the other node catches up from the offsets it saw, and a node that
    starts later holds the same history."""
    a_srv, b_srv = nodes
    ann, carl = line(a_srv), line(a_srv)
    bob = line(b_srv)
    assert ann.cmd("NICK ann") == "OK ann"
    epoch_a, _ = carl.cmd("OFFSETS on").split()[1:]
    epoch_b, _ = bob.cmd("OFFSETS on").split()[1:]
    assert epoch_a == epoch_b
    for i in (1, 2, 3):
        assert ann.cmd(f"SAY m{i}") == "OK"
    tagged = [carl.wait_event(re.compile(r"@\d+ MSG ann .*")) for _ in range(3)]
    assert [bob.wait_event(re.compile(r"@\d+ MSG ann .*")) for _ in range(3)] == tagged
    last = int(tagged[-1].split()[0][1:])
    assert tagged == [f"@{last - 2 + i} MSG ann m{i + 1}" for i in range(3)]
    # carl goes away at `last`; two more messages; carl comes back through B.
    carl.close()
    assert ann.cmd("SAY m4") == "OK"
    assert ann.cmd("SAY m5") == "OK"
    bob.wait_event(re.compile(r"@\d+ MSG ann m5"))
    back = line(b_srv)
    assert back.cmd("OFFSETS on").split()[1] == epoch_a
    # A line client joins at once with the newcomer's replay: B numbers as A does.
    joined = [h.split() for h in back.take_events() if h.startswith("HISTORY ")]
    assert [(int(h[1]), h[5]) for h in joined][-5:] == \
        [(last - 2 + i, f"m{i + 1}") for i in range(5)]
    back.send(f"HISTORY SINCE {epoch_a} {last}\r\n")
    replay = back.collect_events(2, re.compile(r"HISTORY .*"))
    assert [(int(h.split()[1]), h.split(" ", 5)[5]) for h in replay] == \
        [(last + 1, "m4"), (last + 2, "m5")]
    assert back.reply() == f"OK {epoch_a} {last + 2} complete"
    # A node that starts now reads the history back from Redis.
    c_srv = start_node(make_server, redis.url("t"), "C")
    late = line(c_srv)
    wait_until(lambda: late.cmd("HISTORY 0").split()[1:] == [epoch_a, str(last + 2)], 5,
               "the new node to read the history back")
    late.take_events()  # the newcomer's replay, whatever was read back by then
    late.send(f"HISTORY SINCE {epoch_a} {last - 1}\r\n")
    texts = [h.split(" ", 5)[5] for h in late.collect_events(3, re.compile(r"HISTORY .*"))]
    assert texts == ["m3", "m4", "m5"]
    assert late.reply() == f"OK {epoch_a} {last + 2} complete"


def test_file_news_cross_nodes(nodes):
    a_srv, b_srv = nodes
    bob = line(b_srv)
    up = line(a_srv)
    assert up.cmd("NICK uploader") == "OK uploader"
    bob.wait_event(re.compile(r"(JOIN|NICK \S+) uploader"))
    data = b"hello"
    up.send(f"UPLOAD news.txt {len(data)}\r\n")
    assert up.reply() == "OK 0"
    up.send(data)
    news = bob.wait_event(re.compile(r"FILE .*"))
    assert news.startswith("FILE uploader uploaded") and news.endswith("news.txt"), news


def test_bottle_client_comes_back_through_another_node(make_server, redis, tmux_sessions):
    """The real client, cut off from its node, comes back through another node
    of the cluster on the same address (OFFSETS on, HISTORY SINCE) and shows
    what was said meanwhile, once, and nothing twice."""
    url = redis.url("r")
    a_srv = start_node(make_server, url, "A")
    b_srv = start_node(make_server, url, "B")
    port = a_srv.port
    t = tmux_sessions(f"env -u BOTTLE_SERVER {shlex.quote(BOTTLE)} --retry-for 30 "
                      f"127.0.0.1:{port}; echo exit=$?; sleep 60")
    t.wait_text("connected to")
    bob = line(b_srv)
    assert bob.cmd("NICK bob") == "OK bob"
    assert bob.cmd("SAY said before") == "OK"
    t.wait_text("said before")
    kill9(a_srv)
    t.wait_text("reconnecting...")
    assert bob.cmd("SAY said while away one") == "OK"
    assert bob.cmd("SAY said while away two") == "OK"
    # Another node of the cluster comes up on the address the client dials.
    start_node(make_server, url, "C", listen=(f"127.0.0.1:{port}",))
    t.wait(lambda ls: any(re.search(r"\* back \(away", x) for x in ls), "the back line",
           timeout=30)
    lines = t.wait(lambda ls: any("said while away two" in x for x in ls),
                   "what was said meanwhile", timeout=10)
    for text in ("said before", "said while away one", "said while away two"):
        assert sum(text in x for x in lines) == 1, (text, lines)


class Cable:
    """A TCP forwarder between one node and Redis, on a loopback port, that a
    test can cut (every connection closed, nothing accepted) and restore."""

    def __init__(self, target_port):
        self.target = target_port
        self.port = free_port()
        self.lock = threading.Lock()
        self.socks = []
        self.listener = None
        self.restore()

    def restore(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        s.settimeout(0.2)
        self.listener = s
        self.up = True
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener):
        while True:
            with self.lock:
                if listener is not self.listener:
                    break
            try:
                a, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                b = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.socks += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            listener, self.listener = self.listener, None
            socks, self.socks = self.socks, []
        listener.close()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_partitioned_node_comes_back_and_reads_what_it_missed(make_server, redis):
    """A cut between one node and Redis: that node serves its own room, the
    other reports its members lost; back, it re-announces them and reads the
    messages it missed into its history, with the cluster's offsets."""
    url = redis.url("p")
    cable = Cable(redis.port)
    try:
        a_srv = start_node(make_server, f"redis://127.0.0.1:{cable.port}/p", "A")
        b_srv = start_node(make_server, url, "B")
        ann, bob = line(a_srv), line(b_srv)
        assert ann.cmd("NICK ann") == "OK ann"
        bob.wait_event(re.compile(r"(JOIN ann|NICK Guest\d+ ann)"))
        assert bob.cmd("SAY first") == "OK"
        ann.wait_event(re.compile(r"MSG \S+ first"))
        mark = a_srv.log_mark()
        cable.cut()
        a_srv.wait_log(r"cluster: link to redis .* lost", since=mark)
        bob.wait_event("LEAVE ann node lost", timeout=15)
        assert bob.cmd("SAY missed one") == "OK"
        assert bob.cmd("SAY missed two") == "OK"
        # Numbered a Redis round trip after their OK: wait for the second.
        wait_until(lambda: bob.cmd("HISTORY 0").split()[2] == "3", 5, "B to number both")
        epoch, last = bob.cmd("HISTORY 0").split()[1:]
        cable.restore()
        a_srv.wait_log(LINKED, since=mark, timeout=20)
        bob.wait_event("JOIN ann", timeout=10)
        # A's history holds what it missed, under B's offsets, not delivered again.
        wait_until(lambda: ann.cmd("HISTORY 0").split()[1:] == [epoch, last], 5,
                   "A to read the missed messages back")
        ann.take_events()
        ann.send(f"HISTORY SINCE {epoch} {int(last) - 2}\r\n")
        got = [h.split(" ", 5)[5] for h in ann.collect_events(2, re.compile(r"HISTORY .*"))]
        assert got == ["missed one", "missed two"]
        assert ann.reply() == f"OK {epoch} {last} complete"
        assert ann.cmd("SAY back") == "OK"
        assert bob.wait_event(re.compile(r"MSG ann .*")) == "MSG ann back"
    finally:
        cable.cut()


def _redis_cmd(port, *args):
    """One command on a fresh connection; the reply's first line."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(_resp(*args))
        return s.recv(4096).split(b"\r\n")[0]


def test_claim_lost_after_the_node_stopped_waiting(make_server, redis):
    """Redis slow, not away: after 5 s the node decides a NICK itself (as
    when Redis is gone); when the claim's late answer says another node
    holds the name, the clash rule renames the member here and tells it."""
    a_srv = start_node(make_server, redis.url("t"), "A", ttl="10")
    ann = line(a_srv)
    # Another node's claim of zed, which this node has not heard of.
    assert _redis_cmd(redis.port, "SET", "t:nick:zed", "B~0123456789abcdef", "EX",
                      "60") == b"+OK"
    # Writes (and so the claim's EVAL) wait 6.5 s: past the node's 5 s.
    assert _redis_cmd(redis.port, "CLIENT", "PAUSE", "6500", "WRITE") == b"+OK"
    assert ann.cmd("NICK zed", timeout=10) == "OK zed"  # decided here at 5 s
    event = ann.event(timeout=10)  # the claims' answers, once the pause ends
    assert re.fullmatch(r"NICK zed Guest\d+", event), event
    assert _redis_cmd(redis.port, "GET", "t:nick:zed") == b"$18"  # still B's
