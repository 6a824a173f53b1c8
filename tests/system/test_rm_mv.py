"""System tests for managing the server's files from the client, and for a
get that never surprises: bottle rm NAME... and bottle mv OLD NEW (replies,
errors, exit statuses, the address rule after a list of names, the room's
FILE news), /rm and /mv in the chat (interactive in tmux, and in script
mode), get refusing to replace an existing different file unless --force,
an identical file counting as done, a resumable .part not counting as an
existing file, and -o naming a missing folder.

Run with:  pytest-3 -q tests/system/test_rm_mv.py
(BOTTLED / BOTTLE select other builds.)

Everything talks to 127.0.0.1; every wait is bounded (a subprocess timeout,
the tmux and client deadlines); processes are stopped by PID (the fixtures').
"""

import hashlib
import os
import re
import shlex
import subprocess

import pytest

from harness.clients import TpktClient
from harness.env import BOTTLE
from harness.files import MiB, write_random

WAIT = 5.0
RUN_TIMEOUT = 30


def addr(server):
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def env(user_env):
    return user_env


@pytest.fixture
def work(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


def bottle(args, env, cwd, stdin=b""):
    r = subprocess.run([BOTTLE, *[str(a) for a in args]], input=stdin, capture_output=True,
                       timeout=RUN_TIMEOUT, env=env, cwd=cwd)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def put(server, env, cwd, name, data):
    (cwd / name).write_bytes(data)
    rc, _, err = bottle(["put", name, addr(server)], env, cwd)
    assert rc == 0, err
    (cwd / name).unlink()


def stored(server):
    return sorted(p.name for p in server.data_dir.iterdir() if p.name != ".bottle")


@pytest.fixture
def watcher(server):
    """A TPKT member of the room, to hear the FILE news."""
    r = TpktClient(server.port, timeout=WAIT)
    r.hello()
    yield r
    r.close()


def sha(data):
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# bottle rm, bottle mv
# --------------------------------------------------------------------------

def test_mv_then_rm(server, env, work, watcher):
    put(server, env, work, "a.txt", b"alpha\n")
    watcher.wait_for("FILE ")                       # the upload's news
    rc, out, err = bottle(["mv", "a.txt", "b.txt", addr(server)], env, work)
    assert (rc, out, err) == (0, "renamed a.txt to b.txt\n", "")
    assert stored(server) == ["b.txt"]
    ev = watcher.wait_for("FILE ").decode()
    assert re.fullmatch(r"FILE Guest\d+ renamed a\.txt b\.txt", ev), ev
    rc, out, err = bottle(["rm", "b.txt", addr(server)], env, work)
    assert (rc, out, err) == (0, "deleted b.txt\n", "")
    assert stored(server) == []
    ev = watcher.wait_for("FILE ").decode()
    assert re.fullmatch(r"FILE Guest\d+ deleted b\.txt", ev), ev
    # rm and mv connections are no chatters: no JOIN or LEAVE reached the room
    watcher.sync()
    assert not [e for e in watcher.take_events() if e.startswith(("JOIN ", "LEAVE "))]


def test_rm_several_names_goes_on_and_fails_if_any_failed(server, env, work):
    for n in ("one", "two", "my notes.txt"):
        put(server, env, work, n, n.encode())
    rc, out, err = bottle(["rm", "one", "nosuch", "my notes.txt", "two", addr(server)], env,
                          work)
    assert rc == 1
    assert out.splitlines() == ["deleted one", "deleted my notes.txt", "deleted two"]
    assert err.splitlines() == ["bottle: rm nosuch: no such file: nosuch"]
    assert stored(server) == []


def test_rm_names_that_look_like_hosts_are_names(server, env, work):
    """After a list of names the last one is the address only with a port."""
    put(server, env, work, "a.txt", b"a")
    put(server, env, work, "b.txt", b"b")
    env = dict(env, BOTTLE_SERVER=addr(server))
    rc, out, err = bottle(["rm", "a.txt", "b.txt"], env, work)
    assert (rc, out.splitlines(), err) == (0, ["deleted a.txt", "deleted b.txt"], "")


def test_mv_errors(server, env, work):
    put(server, env, work, "a", b"a")
    put(server, env, work, "b", b"b")
    rc, out, err = bottle(["mv", "a", "b", addr(server)], env, work)
    assert (rc, out, err) == (1, "", "bottle: mv a b: file exists: b\n")
    rc, _, err = bottle(["mv", "nosuch", "c", addr(server)], env, work)
    assert (rc, err) == (1, "bottle: mv nosuch c: no such file: nosuch\n")
    rc, _, err = bottle(["mv", "a", "..", addr(server)], env, work)
    assert (rc, err) == (1, "bottle: mv a ..: invalid file name\n")
    rc, out, _ = bottle(["mv", "a", "with space", addr(server)], env, work)
    assert (rc, out) == (0, "renamed a to with space\n")
    assert stored(server) == ["b", "with space"]
    assert (server.data_dir / "b").read_bytes() == b"b"


@pytest.mark.parametrize("args", [["rm"], ["mv", "a"], ["mv", "a", "b", "c", "d"],
                                  ["rm", "a", "--force"], ["mv", "a", "b", "-o", "x"]])
def test_rm_mv_usage_errors(env, work, args):
    rc, _, err = bottle(args, env, work)
    assert rc == 2, err
    assert "Try 'bottle --help'" in err


def test_rm_without_a_server_exits_3(env, work, make_server):
    srv = make_server()
    port = srv.port
    srv.stop()
    rc, _, err = bottle(["rm", "a", f"127.0.0.1:{port}"], env, work)
    assert rc == 3
    assert "cannot connect" in err


def test_mistyped_rm_and_mv_suggest_them(env, work):
    for word, meant in (("delete", "rm"), ("rename", "mv")):
        rc, _, err = bottle([word, "x"], env, work)
        assert rc == 2 and f"did you mean '{meant}'?" in err, err


# --------------------------------------------------------------------------
# /rm and /mv in the chat
# --------------------------------------------------------------------------

def test_script_rm_mv_news_names_the_member(server, env, work, watcher):
    put(server, env, work, "a.txt", b"alpha")
    watcher.wait_for("FILE ")
    script = b"/mv a.txt z.txt\n/rm z.txt\n/rm z.txt\n/mv onlyone\n"
    rc, out, err = bottle(["--nick", "alice", addr(server)], env, work, stdin=script)
    assert rc == 0, err
    assert watcher.wait_for("FILE ").decode() == "FILE alice renamed a.txt z.txt"
    assert watcher.wait_for("FILE ").decode() == "FILE alice deleted z.txt"
    lines = out.splitlines()
    assert "renamed" in lines and "deleted" in lines
    assert "* alice renamed a.txt to z.txt" in lines
    assert "* alice deleted z.txt" in lines
    assert "error: no such file: z.txt" in err
    assert "error: usage: /mv OLD NEW" in err
    assert stored(server) == []


def chat_command(args):
    argv = " ".join(shlex.quote(str(a)) for a in args)
    return f"env -u BOTTLE_SERVER {shlex.quote(BOTTLE)} {argv}; echo exit=$?; sleep 60"


def test_interactive_rm_mv_and_help(server, env, work, watcher, tmux_sessions):
    put(server, env, work, "x.bin", b"x" * 100)
    watcher.wait_for("FILE ")
    t = tmux_sessions(chat_command([addr(server)]))
    nick = watcher.join_nick()
    t.wait(lambda ls: ls and ls[-1] == ">", "the prompt")
    t.type('/mv x.bin "y z.bin"')
    assert watcher.wait_for("FILE ").decode() == f'FILE {nick} renamed x.bin "y z.bin"'
    t.wait(lambda ls: any(l.endswith(f"* {nick} renamed x.bin to y z.bin") for l in ls),
           "the rename's news")
    t.type('/rm "y z.bin"')
    assert watcher.wait_for("FILE ").decode() == f'FILE {nick} deleted "y z.bin"'
    t.wait(lambda ls: any(l.endswith(f"* {nick} deleted y z.bin") for l in ls),
           "the delete's news")
    t.type("/rm y")
    t.wait_text("error: no such file: y")
    t.type("/help rm")
    t.wait_text("/rm NAME")
    t.wait_text("bottle rm NAME... does the same")
    t.type("/help mv")
    t.wait_text("Never onto an existing name")
    t.type("/help")
    t.wait(lambda ls: any(re.match(r"^  /rm NAME +delete", l) for l in ls)
           and any(re.match(r"^  /mv OLD NEW +rename", l) for l in ls), "/help's list")
    assert stored(server) == []


# --------------------------------------------------------------------------
# get over an existing file; -o a missing folder
# --------------------------------------------------------------------------

def parts(d):
    return sorted(p.name for p in d.rglob("*.part"))


@pytest.mark.parametrize("local", [b"other", b"same size but not it!"])
def test_get_keeps_an_existing_different_file(server, env, work, local):
    data = b"server's version of it"
    assert len(local) != len(data) or local != data
    put(server, env, work, "r.txt", data)
    (work / "r.txt").write_bytes(local)
    rc, out, err = bottle(["get", "r.txt", addr(server)], env, work)
    assert rc == 1 and out == ""
    assert err == ("bottle: download r.txt: r.txt exists and is not the server's file; "
                   "use --force to replace it (or -o another name)\n")
    assert (work / "r.txt").read_bytes() == local
    assert parts(work) == []
    for force in ("--force", "-f"):
        (work / "r.txt").write_bytes(local)
        rc, out, err = bottle(["get", "r.txt", force, addr(server)], env, work)
        assert rc == 0, err
        assert out.startswith("downloaded r.txt: ")
        assert (work / "r.txt").read_bytes() == data


def test_get_over_an_identical_file_is_done(server, env, work, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    digest = write_random(src / "big.bin", 8 * MiB)
    rc, _, err = bottle(["put", src / "big.bin", addr(server)], env, work)
    assert rc == 0, err
    os.link(src / "big.bin", work / "big.bin")      # the very same bytes
    rc, out, err = bottle(["get", "big.bin", addr(server)], env, work)
    assert (rc, err) == (0, "")
    assert out == ("big.bin is already here: same size and SHA-256 as the server's; "
                   "nothing downloaded\n")
    assert os.stat(work / "big.bin").st_ino == os.stat(src / "big.bin").st_ino  # untouched
    assert parts(work) == []
    assert hashlib.sha256((work / "big.bin").read_bytes()).hexdigest() == digest


def test_get_resumes_a_part_without_force(server, env, work):
    data = os.urandom(3 * MiB)
    put(server, env, work, "p.bin", data)
    (work / "p.bin.part").write_bytes(data[:MiB])
    rc, out, err = bottle(["get", "p.bin", addr(server)], env, work)
    assert rc == 0, err
    assert out.startswith("downloaded p.bin: ")
    assert (work / "p.bin").read_bytes() == data
    assert parts(work) == []


def test_get_into_a_missing_folder(server, env, work):
    put(server, env, work, "f.txt", b"file")
    rc, out, err = bottle(["get", "f.txt", "-o", "missing/dir/", addr(server)], env, work)
    assert (rc, out) == (1, "")
    assert err == "bottle: -o missing/dir/: no such folder\n"
    assert parts(work) == [] and not (work / "missing").exists()
    (work / "plain").write_bytes(b"x")
    rc, _, err = bottle(["get", "f.txt", "-o", "plain/", addr(server)], env, work)
    assert (rc, err) == (1, "bottle: -o plain/: not a folder\n")
    (work / "there").mkdir()
    for o in ("there", "there/"):
        rc, out, err = bottle(["get", "f.txt", "-o", o, "--force", addr(server)], env, work)
        assert rc == 0, err
        assert out.startswith("downloaded f.txt to there/f.txt: ")
    assert (work / "there" / "f.txt").read_bytes() == b"file"
