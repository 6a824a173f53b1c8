"""File names in UPLOAD and DOWNLOAD (docs/protocol.md, section 5): missing
files, names the store refuses, the longest name, and symlinks, FIFOs and
folders in the storage folder, which are never files to the server.

Everything talks to 127.0.0.1 only.
"""

import os
import stat

import pytest

from harness.files import sha256_bytes
from harness.xfer import tree, upload_tpkt


def test_download_missing_file(server, tpkt, connect):
    c = tpkt(server)
    assert c.cmd("DOWNLOAD nope") == "ERR no such file: nope"
    assert c.cmd("ECHO still here") == "OK still here"
    lc = connect(server)
    assert lc.cmd("DOWNLOAD nope") == "ERR no such file: nope"
    assert lc.cmd("ECHO line too") == "OK line too"


INVALID_NAMES = [
    b"../x", b"/etc/passwd", b"a/b", b".", b"..", b".bottle", b'"a\nb"', b"a\nb",
    b"a\x01b", b"a\x7fb", b"\x1b", b'"../x"', b'"a/b"', b'"."', b'".bottle"',
    b"a" * 256, b"\xc3\xa9" * 128,
]


def test_invalid_names_tpkt(server, tpkt, tmp_path):
    before_parent, before_data = tree(tmp_path), tree(server.data_dir)
    passwd = os.stat("/etc/passwd")
    c = tpkt(server)
    for name in INVALID_NAMES:
        # No content is ever sent: if a name were wrongly accepted the upload
        # stays unfinished and nothing can be published under it.
        assert c.cmd(b"UPLOAD " + name + b" 3") == "ERR invalid file name", name
        assert c.cmd(b"DOWNLOAD " + name) == "ERR invalid file name", name
    assert c.cmd("UPLOAD") == "ERR file name required"
    assert c.cmd("ECHO alive") == "OK alive"
    c.close()
    assert tree(tmp_path) == before_parent
    assert tree(server.data_dir) == before_data
    assert os.stat("/etc/passwd").st_mtime_ns == passwd.st_mtime_ns


@pytest.mark.parametrize("name", [b"../x", b"/etc/passwd", b"a/b", b".", b"..",
                                  b".bottle", b"a\x01b", b"a" * 256])
def test_invalid_names_line(server, connect, tmp_path, name):
    before_parent, before_data = tree(tmp_path), tree(server.data_dir)
    c = connect(server)
    assert c.cmd(b"DOWNLOAD " + name) == "ERR invalid file name"
    # A refused line-mode UPLOAD closes the connection (its bytes may follow).
    assert c.cmd(b"UPLOAD " + name + b" 3") == "ERR invalid file name"
    c.expect_closed()
    assert tree(tmp_path) == before_parent
    assert tree(server.data_dir) == before_data


def test_longest_valid_name_255_bytes(server, tpkt):
    name = "n" * 255
    c = tpkt(server)
    first, final = upload_tpkt(c, name, b"abc")
    assert (first, final) == ("OK 0", f"OK 3 {sha256_bytes(b'abc')}")
    assert c.cmd("LIST") == f"OK 1\n3 {name}"


def test_symlink_is_not_followed(server, tpkt, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret\n")
    link = server.data_dir / "link"
    os.symlink(secret, link)
    c = tpkt(server)
    assert c.cmd("DOWNLOAD link") == "ERR no such file: link"
    assert c.cmd("LIST") == "OK 0"
    first, final = upload_tpkt(c, "link", b"hello")
    assert (first, final) == ("OK 0", f"OK 5 {sha256_bytes(b'hello')}")
    st = os.lstat(link)
    assert stat.S_ISREG(st.st_mode), "the upload should replace the link by a file"
    assert link.read_bytes() == b"hello"
    assert secret.read_bytes() == b"top secret\n"
    assert c.cmd("LIST") == "OK 1\n5 link"


def test_symlink_to_directory_outside_and_fifo_are_not_files(server, tpkt, tmp_path):
    os.symlink(tmp_path, server.data_dir / "dirlink")
    os.mkfifo(server.data_dir / "fifo")
    (server.data_dir / "subdir").mkdir()
    c = tpkt(server)
    for n in ("dirlink", "fifo", "subdir"):
        assert c.cmd(f"DOWNLOAD {n}") == f"ERR no such file: {n}"
    assert c.cmd("LIST") == "OK 0"
    assert c.cmd("ECHO alive") == "OK alive"
