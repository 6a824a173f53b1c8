"""Accounts (bottled --users): the users file and its command line, AUTH in
both framings, permissions, account names as nicknames, failed attempts
slowed per address, SIGHUP, and partial uploads bound to their account.

Everything talks to 127.0.0.1 only.
"""

import hashlib
import os
import re
import signal
import stat
import subprocess
import threading
import time

import pytest

from harness.clients import Client, LineChatClient, TpktClient, run_nc
from harness.env import BOTTLED, wait_until

TOKEN_RE = re.compile(r"^[0-9a-f]{64}$")


def bottled(*args, umask=None):
    """Runs bottled for an accounts action; returns the CompletedProcess."""
    return subprocess.run([BOTTLED, *map(str, args)], capture_output=True, text=True,
                          timeout=10,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def add_user(users, name, perms="chat,read,write"):
    r = bottled("--users", users, "--add-user", name, "--perms", perms)
    assert r.returncode == 0, r.stderr
    token = r.stdout.splitlines()[-1]
    assert TOKEN_RE.match(token), r.stdout
    return token


@pytest.fixture
def users(tmp_path):
    return tmp_path / "users"


@pytest.fixture
def accounts(users):
    """alice (everything), reader (read), writer (write), chatter (chat)."""
    return {name: add_user(users, name, perms)
            for name, perms in (("alice", "chat,read,write"), ("reader", "read"),
                                ("writer", "write"), ("chatter", "chat"))}


# ---------------------------------------------------------------------------
# The users file from the command line
# ---------------------------------------------------------------------------

def test_add_list_remove(users):
    r = bottled("--users", users, "--add-user", "alice", "--perms", "chat,read,write",
                umask=0)
    assert r.returncode == 0, r.stderr
    token = r.stdout.splitlines()[-1]
    assert TOKEN_RE.match(token)
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600  # whatever the umask
    other = add_user(users, "bob", "read")
    assert other != token
    text = users.read_text()
    assert token not in text and other not in text  # only digests are stored
    assert hashlib.sha256(token.encode()).hexdigest() in text

    r = bottled("--users", users, "--list-users")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["alice chat,read,write", "bob read"]
    assert token not in r.stdout and hashlib.sha256(token.encode()).hexdigest() not in r.stdout

    r = bottled("--users", users, "--add-user", "ALICE")
    assert r.returncode == 1 and "exists" in r.stderr
    r = bottled("--users", users, "--add-user", "Guest7")
    assert r.returncode == 1 and "invalid account name" in r.stderr
    r = bottled("--users", users, "--add-user", "x", "--perms", "chat,sudo")
    assert r.returncode == 2 and "--perms" in r.stderr

    r = bottled("--users", users, "--remove-user", "alice")
    assert r.returncode == 0, r.stderr
    assert bottled("--users", users, "--list-users").stdout.splitlines() == ["bob read"]
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600
    r = bottled("--users", users, "--remove-user", "alice")
    assert r.returncode == 1 and "no account 'alice'" in r.stderr
    r = bottled("--list-users")
    assert r.returncode == 2 and "--users FILE" in r.stderr


def test_concurrent_adds_lose_nothing(users):
    procs = [subprocess.Popen([BOTTLED, "--users", str(users), "--add-user", f"u{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(10)]
    for p in procs:
        p.communicate(timeout=10)
        assert p.returncode == 0
    names = [line.split()[0] for line in
             bottled("--users", users, "--list-users").stdout.splitlines()]
    assert sorted(names) == sorted(f"u{i}" for i in range(10))


def test_a_broken_users_file_stops_the_start(users, tmp_path):
    users.write_text("alice chat,read nothex\n")
    r = bottled("--users", users, "-l", "127.0.0.1:0", "-d", tmp_path / "d")
    assert r.returncode == 1 and f"{users}:1:" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# AUTH
# ---------------------------------------------------------------------------

def test_auth_right_and_wrong_line(make_server, users, accounts):
    srv = make_server("--users", users)
    with Client(srv.port) as c:
        assert c.cmd("AUTH alice " + "0" * 64) == "ERR authentication failed"
        assert c.cmd("AUTH nobody " + accounts["alice"]) == "ERR authentication failed"
        assert c.cmd("AUTH alice") == "ERR usage: AUTH <name> <token>"
        assert c.cmd("AUTH alice " + accounts["alice"]) == "OK alice"
        assert c.cmd("WHO") == "OK 1 alice"
        assert c.cmd("AUTH alice " + accounts["alice"]) == "ERR already signed in as alice"
    m = srv.wait_log(r"127\.0\.0\.1:\d+: AUTH failed for 'alice'")
    assert m
    srv.wait_log(r"AUTH failed for 'nobody'")
    srv.wait_log(r"signed in as alice")


def test_auth_right_and_wrong_tpkt(make_server, users, accounts):
    srv = make_server("--users", users)
    with TpktClient(srv.port, first=b"AUTH chatter nottherighttoken") as t:
        assert t.hello() == "ERR authentication failed"
        t0 = time.monotonic()
        t.send_frames([b"AUTH chatter wrong-again", b"ECHO after"])  # the second waits
        assert t.reply() == "ERR authentication failed"
        assert t.reply() == "OK after"
        assert time.monotonic() - t0 >= 0.19
        assert t.cmd(b"AUTH chatter " + accounts["chatter"].encode()) == "OK chatter"
        assert t.cmd(b"WHO") == "OK 1 chatter"
        assert t.cmd(b"SAY hi") == "OK"
        assert t.cmd(b"LIST").startswith("ERR permission denied: LIST needs read")
    srv.wait_log(r"AUTH failed for 'chatter'")


def test_auth_without_accounts_says_so(server):
    with Client(server.port) as c:
        assert c.cmd("AUTH alice " + "0" * 64).startswith("ERR no accounts here")
        assert c.cmd("SAY still a guest who may do anything") == "OK"


def test_failures_are_slowed_and_input_waits(make_server, users, accounts):
    srv = make_server("--users", users)
    with Client(srv.port) as c:
        c.greeting()
        times = []
        for _ in range(3):
            t0 = time.monotonic()
            assert c.cmd("AUTH alice wrong") == "ERR authentication failed"
            times.append(time.monotonic() - t0)
        # 100, 200, 400 ms: growing, done with timers
        assert times[0] >= 0.09 and times[1] >= 0.19 and times[2] >= 0.39, times
        # What follows a failure waits for its reply, in order.
        t0 = time.monotonic()
        c.send("AUTH alice wrong\nECHO after\n")
        assert c.reply() == "ERR authentication failed"
        assert c.reply() == "OK after"
        assert time.monotonic() - t0 >= 0.79
        # ... and so does a right one from this address, meanwhile.
        t0 = time.monotonic()
        assert c.cmd("AUTH alice " + accounts["alice"]) == "OK alice"
        assert time.monotonic() - t0 >= 0.79


def test_nc_gets_its_slowed_replies_after_closing_its_side(make_server, users, accounts):
    srv = make_server("--users", users)
    r = run_nc(srv.port, "AUTH alice wrong\nAUTH alice wrong\nECHO last\n")
    lines = r.stdout.decode().splitlines()
    assert lines[1:] == ["ERR authentication failed"] * 2 + ["OK last"], lines


@pytest.mark.normal_build_only
def test_a_burst_of_bad_attempts_does_not_delay_others(make_server, users, accounts):
    srv = make_server("--users", users)
    with Client(srv.port) as other:
        other.greeting()
        attackers = [Client(srv.port) for _ in range(50)]
        try:
            for a in attackers:
                a.greeting()
            worst = 0.0
            for i, a in enumerate(attackers):
                a.send("AUTH alice bad%d\n" % i)
                t0 = time.perf_counter()
                assert other.cmd("ECHO ping") == "OK ping"
                worst = max(worst, time.perf_counter() - t0)
            for _ in range(20):
                t0 = time.perf_counter()
                assert other.cmd("ECHO ping") == "OK ping"
                worst = max(worst, time.perf_counter() - t0)
            assert worst < 0.050, f"an ECHO waited {worst * 1000:.1f} ms"
            t0 = time.monotonic()
            for a in attackers:
                assert a.reply(timeout=6) == "ERR authentication failed"
            # the last ones waited the longest delay
            assert time.monotonic() - t0 >= 1.0
        finally:
            for a in attackers:
                a.close()
    srv.wait_log(r"AUTH failed for 'alice' \(50 from 127\.0\.0\.1")


def test_sighup_reloads_the_users_file(make_server, users, accounts):
    srv = make_server("--users", users)
    with Client(srv.port) as alice, Client(srv.port) as c:
        assert alice.cmd("AUTH alice " + accounts["alice"]) == "OK alice"
        carol = add_user(users, "carol", "read")
        assert c.cmd("AUTH carol " + carol) == "ERR authentication failed"  # not yet read
        r = bottled("--users", users, "--remove-user", "alice")
        assert r.returncode == 0
        mark = srv.log_mark()
        os.kill(srv.pid, signal.SIGHUP)
        srv.wait_log(r"SIGHUP: 4 accounts", since=mark)
        # the removed account's connection is closed, after saying why
        assert alice.line() == "ERR account alice removed"
        alice.expect_closed()
        with Client(srv.port) as d:
            t0 = time.monotonic()
            assert d.cmd("AUTH carol " + carol, timeout=8) == "OK carol"
            assert d.cmd("LIST") == "OK 0"
            assert d.cmd("SAY hi").startswith("ERR permission denied: SAY needs chat")
        # a broken file keeps the accounts read before
        users.write_text("garbage\n")
        mark = srv.log_mark()
        os.kill(srv.pid, signal.SIGHUP)
        srv.wait_log(r"SIGHUP: .*keeping the 4 accounts", since=mark)
        assert c.cmd("ECHO alive") == "OK alive"


# ---------------------------------------------------------------------------
# Permissions
# ---------------------------------------------------------------------------

# verb and arguments, the permission it needs
CHECKS = [
    ("SAY hello", "chat"), ("ME waves", "chat"), ("TELL Guest1 psst", "chat"),
    ("NICK newname", "chat"), ("WHO", "chat"), ("HISTORY", "chat"), ("OFFSETS on", "chat"),
    ("LIST", "read"), ("DOWNLOAD nothing.bin", "read"),
    ("DELETE nothing.bin", "write"), ("RENAME nothing.bin other.bin", "write"),
]
FREE = ["ECHO x", "TIME", "HELP", "HELP SAY"]


def denied(reply, verb, perm):
    return reply.startswith(f"ERR permission denied: {verb} needs {perm}")


def run_checks(cmd, perms):
    for text, perm in CHECKS:
        verb = text.split()[0]
        reply = cmd(text)
        if perm in perms:
            assert not reply.startswith("ERR permission denied"), (text, reply)
        else:
            assert denied(reply, verb, perm), (text, reply)
    for text in FREE:
        assert cmd(text).startswith("OK"), text


@pytest.mark.parametrize("name,perms", [(None, ()), ("alice", ("chat", "read", "write")),
                                        ("reader", ("read",)), ("writer", ("write",)),
                                        ("chatter", ("chat",))])
def test_permissions_line_and_tpkt(make_server, users, accounts, name, perms):
    srv = make_server("--users", users)
    with Client(srv.port) as c:
        if name:
            assert c.cmd(f"AUTH {name} {accounts[name]}") == f"OK {name}"
        run_checks(c.cmd, perms)
    first = f"AUTH {name} {accounts[name]}".encode() if name else b"ECHO hi"
    with TpktClient(srv.port, first=first) as t:
        assert t.hello() == (f"OK {name}" if name else "OK hi")
        run_checks(lambda text: t.cmd(text.encode()), perms)


def upload_reply(port, auth=None, tpkt=False):
    """The first reply to an UPLOAD of 3 bytes (and the upload finished if allowed)."""
    if tpkt:
        with TpktClient(port, first=auth.encode() if auth else b"ECHO x") as t:
            t.hello()
            reply = t.cmd(b"UPLOAD up.bin 3")
            if reply.startswith("OK"):
                t.send_data(b"abc")
                assert t.reply().startswith("OK")
            return reply
    with Client(port) as c:
        if auth:
            assert c.cmd(auth).startswith("OK")
        reply = c.cmd("UPLOAD up.bin 3")
        if reply.startswith("OK"):
            c.send(b"abc")
            assert c.reply().startswith("OK")
        return reply


@pytest.mark.parametrize("tpkt", [False, True], ids=["line", "tpkt"])
def test_upload_needs_write(make_server, users, accounts, tpkt):
    srv = make_server("--users", users)
    assert denied(upload_reply(srv.port, tpkt=tpkt), "UPLOAD", "write")
    assert denied(upload_reply(srv.port, f"AUTH reader {accounts['reader']}", tpkt), "UPLOAD",
                  "write")
    assert upload_reply(srv.port, f"AUTH writer {accounts['writer']}", tpkt) == "OK 0"
    assert (srv.data_dir / "up.bin").read_bytes() == b"abc"


def test_anonymous_sets_what_guests_may_do(make_server, users, accounts):
    srv = make_server("--users", users, "--anonymous", "read")
    with Client(srv.port) as c:
        run_checks(c.cmd, ("read",))
    assert denied(upload_reply(srv.port), "UPLOAD", "write")


def test_without_chat_a_connection_is_not_in_the_room(make_server, users, accounts):
    srv = make_server("--users", users)
    with LineChatClient(srv.port) as guest, LineChatClient(srv.port) as alice:
        guest.greeting()
        assert alice.cmd(f"AUTH alice {accounts['alice']}") == "OK alice"
        assert alice.cmd("WHO") == "OK 1 alice"
        assert alice.cmd("SAY secret") == "OK"
        # the guest hears nothing: its next line is the reply to its ECHO
        assert guest.cmd("ECHO x") == "OK x"
        assert guest.take_events() == []
        assert guest.cmd(f"AUTH chatter {accounts['chatter']}") == "OK chatter"
        alice.wait_event("JOIN chatter")
        assert alice.cmd("WHO") in ("OK 2 alice chatter", "OK 2 chatter alice")


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

def test_a_guest_cannot_take_an_accounts_name(make_server, users, accounts):
    srv = make_server("--users", users, "--anonymous", "chat")
    with LineChatClient(srv.port) as g:
        assert g.cmd("NICK alice") == "ERR nickname in use: it is an account's name"
        assert g.cmd("NICK ALICE") == "ERR nickname in use: it is an account's name"
        assert g.cmd("NICK dave") == "OK dave"
        # dave becomes an account while the guest holds the name
        dave = add_user(users, "dave", "chat")
        mark = srv.log_mark()
        os.kill(srv.pid, signal.SIGHUP)
        srv.wait_log(r"SIGHUP: 5 accounts", since=mark)
        with LineChatClient(srv.port) as d:
            assert d.cmd(f"AUTH dave {dave}") == "OK dave"
            ev = g.wait_event(lambda e: e.startswith("NICK dave Guest"))
            assert d.cmd("WHO").split()[:2] == ["OK", "2"]
            assert "dave" in d.cmd("WHO").split()
            assert d.cmd("NICK other") == "ERR your nickname is your account's name, dave"
        assert ev


def test_the_same_account_again_supersedes_the_older(make_server, users, accounts):
    srv = make_server("--users", users)
    with LineChatClient(srv.port) as old, LineChatClient(srv.port) as new:
        assert old.cmd(f"AUTH alice {accounts['alice']}") == "OK alice"
        assert new.cmd(f"AUTH alice {accounts['alice']}") == "OK alice"
        old.expect_closed()
        assert new.cmd("WHO") == "OK 1 alice"


# ---------------------------------------------------------------------------
# Partials belong to their account
# ---------------------------------------------------------------------------

def test_another_account_cannot_resume_a_partial(make_server, users, accounts, tmp_path):
    bob = add_user(users, "bob", "read,write")
    srv = make_server("--users", users)
    data = os.urandom(200_000)
    sha = hashlib.sha256(data).hexdigest()
    token = "resume-token-0001"
    up = f"UPLOAD big.bin {len(data)} {sha} {token}"

    with Client(srv.port) as c:
        assert c.cmd(f"AUTH alice {accounts['alice']}") == "OK alice"
        assert c.cmd(up) == "OK 0"
        c.send(data[:100_000])
        wait_until(lambda: partial_size(srv.data_dir) >= 100_000, 5, "alice's partial")
    srv.wait_log(r"disconnect .*")
    with Client(srv.port) as c:  # bob, with alice's token: a partial of his own
        assert c.cmd(f"AUTH bob {bob}") == "OK bob"
        assert c.cmd(up) == "OK 0"
    with Client(srv.port) as c:  # a guest may not upload at all
        assert c.cmd(up).startswith("ERR permission denied")
    with Client(srv.port) as c:  # alice finds hers where she left it
        assert c.cmd(f"AUTH alice {accounts['alice']}") == "OK alice"
        assert c.cmd(up) == "OK 100000"
        c.send(data[100_000:])
        assert c.reply().startswith("OK")
    assert (srv.data_dir / "big.bin").read_bytes() == data


def partial_size(data_dir):
    part = data_dir / ".bottle" / "partial"
    return max((p.stat().st_size for p in part.glob("*") if p.is_file()), default=0)


# ---------------------------------------------------------------------------
# The seed dialect cannot AUTH: with accounts its guests follow --anonymous
# ---------------------------------------------------------------------------

def seed_port(srv):
    m = srv.wait_log(r"listening on 127\.0\.0\.1:(\d+) for the seed's clients")
    return int(m.group(1))


def test_seed_guests_follow_anonymous(make_server, users, accounts):
    srv = make_server("--users", users, "--seed-listen", "127.0.0.1:0")
    with TpktClient(seed_port(srv), first=None) as s:
        assert s.frame().startswith(b"Hi, you are Guest")
        s.send_frame(b"hello")
        assert s.frame() == b"Not sent: this server lets only accounts chat."
    srv2 = make_server("--users", users, "--anonymous", "chat", "--seed-listen", "127.0.0.1:0")
    with TpktClient(seed_port(srv2), first=None) as s:
        assert s.frame().startswith(b"Hi, you are Guest")
        s.send_frame(b"/nick Alice")
        assert s.frame() == b"Nickname Alice is taken; pick another."
        s.send_frame(b"hello")
        assert s.frame() == b"Ok: hello"
