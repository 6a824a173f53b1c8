"""File names that try to leave the storage folder, and links planted in it.

Every way a name can reach the server is tried: plain and quoted words, in
both framings, with NUL bytes (TPKT payloads carry any byte), overlong.
Names with a ``/``, the names ``.``, ``..`` and ``.bottle``, control bytes and
names over 255 bytes get ``ERR invalid file name`` (src/server/store.c); backslashes
and percent signs are just characters, stored under exactly that name.

Links are planted by the test itself (a remote client can't make them):

* A symlink in the folder is not a file: DOWNLOAD says ``no such file``,
  LIST leaves it out, and an UPLOAD of that name replaces the link with a
  regular file (a rename over it), so its target outside is never written.
  A symlink where a partial upload will be opened is refused (openat2 with
  RESOLVE_NO_SYMLINKS): ``ERR storage error: ...``.
* A hard link in the folder *is* a regular file in the folder: openat2 keeps
  name lookups beneath the folder, it has no say over inodes.  So DOWNLOAD
  serves it (only someone who may write the folder can make one).  An upload
  of that name never writes into it either: it is written to a partial and
  renamed over the name, so the other link keeps its bytes.  A hard link
  planted where a partial upload is opened must not be written through.

After each test nothing exists outside the storage folder that wasn't there,
and the files outside are unchanged.
"""

import hashlib
import os
import stat

import pytest

from harness.clients import Client, LineChatClient, TpktClient, check_bystander
from harness.proc import proc_fd_count, wait_fd_count
from harness.server import wait_disconnect

INVALID = "ERR invalid file name"
SECRET = b"the file outside the folder\n"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def outside_state(root, data_dir):
    """Every path under ``root`` except the storage folder, with its bytes
    (files) or its link target, for "nothing changed out there"."""
    state = {}
    for dirpath, dirs, files in os.walk(root):
        if os.path.abspath(dirpath) == os.path.abspath(data_dir):
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs
                   if os.path.abspath(os.path.join(dirpath, d)) != os.path.abspath(data_dir)]
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    state[p] = ("file", f.read())
            elif stat.S_ISLNK(st.st_mode):
                state[p] = ("link", os.readlink(p))
            else:
                state[p] = ("other", stat.S_IFMT(st.st_mode))
    return state


@pytest.fixture
def folder(make_server, tmp_path):
    """(server, bystander, fd baseline, outside dir).  tmp_path/outside holds a
    secret file; tmp_path/x is where a '../x' name would land.  settle()
    checks that nothing outside the storage folder changed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET)
    (tmp_path / "x").write_bytes(b"x outside\n")
    srv = make_server()
    (srv.data_dir / "a").write_bytes(b"the file a\n")
    bystander = LineChatClient(srv.port)
    bystander.sync("bystander")
    srv.outside_before = (tmp_path, outside_state(tmp_path, srv.data_dir))
    yield srv, bystander, proc_fd_count(srv.pid), outside
    bystander.close()


def settle(srv, bystander, baseline, clients):
    root, before = srv.outside_before
    assert outside_state(root, srv.data_dir) == before, \
        "something outside the storage folder changed"
    for c in clients:
        c.close()
    for c in clients:
        wait_disconnect(srv, c.local_port)
    assert srv.running()
    wait_fd_count(srv, baseline)
    check_bystander(srv, bystander)


def upload_tpkt(c, word, data):
    first = c.cmd(b"UPLOAD " + word + b" " + str(len(data)).encode())
    if first != "OK 0":
        return first
    c.send_frame(data)
    return c.reply()


def visible(srv):
    return sorted(n for n in os.listdir(os.fsencode(srv.data_dir)) if n != b".bottle")


# --------------------------------------------------------------------------
# Names the server refuses
# --------------------------------------------------------------------------

REFUSED = [
    b"../x", b"a/../../x", b"..", b".", b".bottle", b".bottle/partial/x",
    b"/etc/passwd", b"../../../../../../etc/passwd", b"a/", b"/", b"./a",
    b'"../x"', b'".."', b'"."', b'".bottle"', b'"a/b"', b'"/etc/passwd"',
    b'".\\./x"',                  # \. is no escape: the quoted word is refused
    b'"\\.\\."',
    b'""',                        # empty
    b'"unclosed',
    b"a\x00b", b'"a\x00b"', b"a\x00/../x",
    b"a\x01b", b"a\x1bb", b"a\x7fb", b"a\tb",
    b"a" * 256, b'"' + b"a" * 256 + b'"', b"\xc3\xa9" * 128,
    b'"' + b"\\\\" * 256 + b'"',  # 256 backslashes, written with escapes
    b"n" * 4000,
]


def test_refused_names_tpkt(folder):
    srv, bystander, baseline, _ = folder
    before = visible(srv)
    c = TpktClient(srv.port, first=None)
    for name in REFUSED + [b'"a\nb"', b"a\nb", b"a\rb"]:
        assert c.cmd(b"UPLOAD " + name + b" 3") == INVALID, name
        assert c.cmd(b"DOWNLOAD " + name) == INVALID, name
    # A NUL must not cut the name short: "a" exists and is not served.
    assert c.cmd(b"DOWNLOAD a\x00") == INVALID
    assert c.cmd(b"UPLOAD") == "ERR file name required"
    assert c.cmd(b"DOWNLOAD") == "ERR file name required"
    assert c.cmd("ECHO alive") == "OK alive"
    assert visible(srv) == before
    assert os.listdir(srv.data_dir / ".bottle" / "partial") == []
    settle(srv, bystander, baseline, [c])


def test_refused_names_line(folder):
    srv, bystander, baseline, _ = folder
    before = visible(srv)
    c = Client(srv.port)
    for name in REFUSED:
        assert c.cmd(b"DOWNLOAD " + name) == INVALID, name
    assert c.cmd("ECHO alive") == "OK alive"
    ups = []
    for name in [b"../x", b"a/../../x", b"..", b".bottle/partial/x", b"/etc/passwd",
                 b"a\x00b", b"a" * 256]:
        u = Client(srv.port)
        ups.append(u)
        # A refused line-mode UPLOAD closes: its bytes ("abc") never run.
        u.send(b"UPLOAD " + name + b" 3\nabc")
        assert u.reply() == INVALID, name
        assert u.expect_closed() == []
    for u in ups:
        assert wait_disconnect(srv, u.local_port) == "error"
    assert visible(srv) == before
    settle(srv, bystander, baseline, [c])


# --------------------------------------------------------------------------
# Names that are just characters
# --------------------------------------------------------------------------

CHARACTERS = [
    # (as written in the command, the name stored)
    (b"..\\..\\x", b"..\\..\\x"),
    (b"a\\b", b"a\\b"),
    (b'"..\\\\x"', b"..\\x"),
    (b"%2e%2e%2fx", b"%2e%2e%2fx"),
    (b"..%2f..%2fetc%2fpasswd", b"..%2f..%2fetc%2fpasswd"),
    (b"%2F", b"%2F"),
    (b"...", b"..."),
    (b".bottle2", b".bottle2"),
    (b".BOTTLE", b".BOTTLE"),
    (b"-", b"-"),
    (b"~", b"~"),
    (b'" .. "', b" .. "),
    (b'"\\"q\\""', b'"q"'),
    (b"\xff\xfe", b"\xff\xfe"),      # not UTF-8: still just bytes
    (b"n" * 255, b"n" * 255),
    (b'"' + b"\\\\" * 255 + b'"', b"\\" * 255),
]


def test_backslashes_and_percents_are_just_characters(folder):
    srv, bystander, baseline, _ = folder
    c = TpktClient(srv.port, first=None)
    for word, name in CHARACTERS:
        data = b"content of " + name
        assert upload_tpkt(c, word, data) == f"OK {len(data)} {sha256(data)}", word
        assert c.cmd_raw(b"DOWNLOAD " + word) == \
            f"OK {len(data)} 0 {sha256(data)}".encode(), word
        assert c.frame() == data
        with open(os.path.join(os.fsencode(srv.data_dir), name), "rb") as f:
            assert f.read() == data, name
    listing = c.cmd_raw(b"LIST").split(b"\n")
    assert listing[0] == f"OK {len(CHARACTERS) + 1}".encode()
    stored = sorted([b"a"] + [name for _, name in CHARACTERS])
    assert [line.split(b" ", 1)[1] for line in listing[1:]] == stored
    assert visible(srv) == stored
    settle(srv, bystander, baseline, [c])


# --------------------------------------------------------------------------
# Symlinks
# --------------------------------------------------------------------------

def test_symlinks_in_the_folder_are_not_files(folder):
    srv, bystander, baseline, outside = folder
    d = srv.data_dir
    os.symlink(outside / "secret", d / "link")
    os.symlink("../outside/secret", d / "rel")
    os.symlink("a", d / "inner")                    # even to a file inside
    os.symlink(outside / "created-by-upload", d / "dangling")
    os.symlink("loop", d / "loop")
    os.symlink(outside, d / "dirlink")
    c = TpktClient(srv.port, first=None)
    for n in ["link", "rel", "inner", "dangling", "loop", "dirlink"]:
        assert c.cmd(f"DOWNLOAD {n}") == f"ERR no such file: {n}"
    assert c.cmd("DOWNLOAD dirlink/secret") == INVALID
    assert c.cmd("LIST") == "OK 1\n11 a"
    # An upload over a link replaces the link; its target is not written.
    for n in ["link", "rel", "dangling", "loop"]:
        data = f"uploaded as {n}".encode()
        assert upload_tpkt(c, n.encode(), data) == f"OK {len(data)} {sha256(data)}"
        assert stat.S_ISREG(os.lstat(d / n).st_mode), n
        assert (d / n).read_bytes() == data
    assert (outside / "secret").read_bytes() == SECRET
    assert not (outside / "created-by-upload").exists()
    settle(srv, bystander, baseline, [c])


@pytest.mark.parametrize("which", ["data", "meta"])
def test_symlink_where_a_partial_is_opened(folder, which):
    srv, bystander, baseline, outside = folder
    token = f"adv-symlink-{which}"
    os.symlink(outside / "secret", srv.data_dir / ".bottle" / "partial" / f"{token}.{which}")
    data = b"0123456789"
    c = TpktClient(srv.port, first=None)
    reply = c.cmd(f"UPLOAD up {len(data)} {sha256(data)} {token}")
    assert reply.startswith("ERR storage error: "), reply
    assert c.cmd("ECHO alive") == "OK alive"
    assert (outside / "secret").read_bytes() == SECRET
    assert not (srv.data_dir / "up").exists()
    settle(srv, bystander, baseline, [c])


# --------------------------------------------------------------------------
# Hard links
# --------------------------------------------------------------------------

def test_hard_link_at_a_published_name(folder):
    srv, bystander, baseline, outside = folder
    os.link(outside / "secret", srv.data_dir / "hard")
    c = TpktClient(srv.port, first=None)
    # A regular file in the folder: served (see the module docstring).
    assert c.cmd("DOWNLOAD hard") == f"OK {len(SECRET)} 0 {sha256(SECRET)}"
    assert c.frame() == SECRET
    assert c.cmd("LIST") == f"OK 2\n11 a\n{len(SECRET)} hard"
    # An upload of that name writes a new file and renames it over the name.
    data = b"new content for hard"
    assert upload_tpkt(c, b"hard", data) == f"OK {len(data)} {sha256(data)}"
    assert (srv.data_dir / "hard").read_bytes() == data
    assert (outside / "secret").read_bytes() == SECRET
    assert os.stat(outside / "secret").st_nlink == 1
    # And a resumable upload of it, interrupted and resumed, too.
    os.unlink(srv.data_dir / "hard")
    os.link(outside / "secret", srv.data_dir / "hard")
    token = "adv-hard-published"
    assert c.cmd(f"UPLOAD hard {len(data)} {sha256(data)} {token}") == "OK 0"
    c.send_frame(data[:5])
    mark = srv.log_mark()
    c.close()
    srv.wait_log(r"upload hard from .* interrupted at 5 of", since=mark)
    r = TpktClient(srv.port, first=None)
    assert r.cmd(f"UPLOAD hard {len(data)} {sha256(data)} {token}") == "OK 5"
    r.send_frame(data[5:])
    assert r.reply() == f"OK {len(data)} {sha256(data)}"
    assert (outside / "secret").read_bytes() == SECRET
    settle(srv, bystander, baseline, [r])


@pytest.mark.parametrize("meta", ["none", "matching"])
def test_hard_link_where_a_partial_is_opened(folder, meta):
    """A hard link planted as a partial's data file (with no meta file, or
    with one that matches the upload, so it is resumed): the upload must not
    truncate or write the inode it shares with a file outside."""
    srv, bystander, baseline, outside = folder
    data = b"0123456789" * 10
    token = f"adv-hardpart-{meta}"
    part = srv.data_dir / ".bottle" / "partial"
    os.link(outside / "secret", part / f"{token}.data")
    if meta == "matching":
        (part / f"{token}.meta").write_text(f"{len(data)} {sha256(data)} up\n")
    c = TpktClient(srv.port, first=None)
    first = c.cmd(f"UPLOAD up {len(data)} {sha256(data)} {token}")
    if first.startswith("OK "):
        offset = int(first.split()[1])
        c.send_frame(data[offset:])
        final = c.reply()
    else:
        final = None
    assert (outside / "secret").read_bytes() == SECRET, \
        f"the upload ({first!r}, then {final!r}) wrote into a file outside the folder " \
        f"through a hard link planted in .bottle/partial"
    settle(srv, bystander, baseline, [c])
