"""File sizes (docs/protocol.md, section 5): round trips of 0 bytes, 1 byte and
100 MiB in both framings, sizes the server refuses, the largest size,
--max-file-size, and a full disk (a tmpfs; needs root, skipped otherwise).

Everything talks to 127.0.0.1 only.  The 100 MiB file is random data written
in 1 MiB chunks into pytest's tmp dirs and deleted again at teardown.
"""

import hashlib
import os
import subprocess
import threading
import time

import pytest

from harness.clients import TpktClient
from harness.files import MiB, sha256_bytes, sha256_file, write_random
from harness.xfer import (
    line_download, line_upload, partial_dir, partial_files, rate_re, upload_tpkt,
    visible_files,
)

pytestmark = pytest.mark.usefixtures("drop_big_files")

SHA_EMPTY = hashlib.sha256(b"").hexdigest()
BIG_SIZE = 100 * MiB           # "100 MiB random file"
TOKEN = "tok-resume_0001"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """(path, size, sha256) of a 100 MiB random file; deleted at module end."""
    d = tmp_path_factory.mktemp("big")
    path = d / "big100.bin"
    sha = write_random(path, BIG_SIZE)
    yield path, BIG_SIZE, sha
    path.unlink(missing_ok=True)


@pytest.mark.parametrize("mode", ["tpkt", "line"])
@pytest.mark.parametrize("kind", ["empty", "one", "100MiB"])
def test_round_trip(make_server, tmp_path, big_file, mode, kind):
    srv = make_server()
    if kind == "100MiB":
        path, size, sha = big_file
    else:
        path = tmp_path / f"{kind}.bin"
        path.write_bytes(b"" if kind == "empty" else b"\xff")
        size, sha = path.stat().st_size, sha256_file(path)
        assert kind != "empty" or sha == SHA_EMPTY
    name = f"{kind}-{mode}.bin"
    mark = srv.log_mark()

    t0 = time.monotonic()
    if mode == "tpkt":
        c = TpktClient(srv.port, first="ECHO hello", nodelay=True)
        try:
            assert c.cmd(f"UPLOAD {name} {size}") == "OK 0"
            c.send_file(path)
            assert c.reply(timeout=60) == f"OK {size} {sha}"
            t1 = time.monotonic()
            assert c.cmd(f"DOWNLOAD {name}") == f"OK {size} 0 {sha}"
            got_sha, _ = c.recv_data(size, timeout=60)
            # The connection takes commands again right after the last frame.
            assert c.cmd("ECHO after") == "OK after"
        finally:
            c.close()
    else:
        replies = line_upload(srv.port, f"{name} {size}", path=path, timeout=60)
        assert replies == ["OK 0", f"OK {size} {sha}"]
        t1 = time.monotonic()
        reply, got_sha, n, _ = line_download(srv.port, name, timeout=60)
        assert reply == f"OK {size} 0 {sha}"
        assert n == size
    t2 = time.monotonic()
    assert got_sha == sha
    stored = srv.data_dir / name
    assert stored.stat().st_size == size and sha256_file(stored) == sha
    srv.wait_log(rate_re("upload", name, size), since=mark)
    srv.wait_log(rate_re("download", name, size), since=mark)
    if kind == "100MiB":
        print(f"\n{mode}: 100 MiB upload {t1 - t0:.2f}s, download {t2 - t1:.2f}s")
        for line in srv.log_lines()[mark:]:
            if "MB/s" in line:
                print("   ", line)


@pytest.mark.parametrize("size", ["-1", "abc", "9223372036854775808",
                                  "99999999999999999999", "+5", "0x10", "1e3", "5.0", ""])
def test_invalid_size_tpkt(server, tpkt, size):
    c = tpkt(server)
    assert c.cmd(f"UPLOAD f {size}".rstrip()) == "ERR invalid size"
    assert c.cmd("ECHO alive") == "OK alive"
    assert visible_files(server) == []
    assert os.listdir(partial_dir(server)) == []


def test_invalid_size_line_closes(server, connect):
    c = connect(server)
    assert c.cmd("UPLOAD f -1") == "ERR invalid size"
    c.expect_closed()


def test_largest_size_is_accepted(server, tpkt):
    """2^63 - 1 is a valid size; closing the (anonymous) upload leaves nothing."""
    c = tpkt(server)
    mark = server.log_mark()
    assert c.cmd("UPLOAD f 9223372036854775807") == "OK 0"
    c.send_data(b"abc")
    c.close()
    server.wait_log(r"disconnect 127\.0\.0\.1:\d+: peer closed", since=mark)
    assert visible_files(server) == []
    assert os.listdir(partial_dir(server)) == []


def test_max_file_size(make_server, tpkt, connect):
    srv = make_server("--max-file-size", "10")
    c = tpkt(srv)
    assert c.cmd("UPLOAD f 11") == "ERR file too large (limit 10 bytes)"
    assert c.cmd("ECHO alive") == "OK alive"
    first, final = upload_tpkt(c, "f", b"0123456789")
    assert (first, final) == ("OK 0", f"OK 10 {sha256_bytes(b'0123456789')}")
    lc = connect(srv)
    assert lc.cmd("UPLOAD g 11") == "ERR file too large (limit 10 bytes)"
    lc.expect_closed()
    assert visible_files(srv) == ["f"]


@pytest.fixture
def tmpfs_data(tmp_path):
    """A 2 MiB tmpfs mounted as <tmp>/data (the server's storage); unmounted after."""
    d = tmp_path / "data"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)],
                       capture_output=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.decode().strip()}")
    yield d
    r = subprocess.run(["umount", str(d)], capture_output=True, timeout=10)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=10)


def test_disk_full_keeps_partial_and_resumes(tmpfs_data, make_server, tpkt, connect):
    srv = make_server()
    assert srv.data_dir == tmpfs_data
    data = os.urandom(4 * MiB)
    sha = sha256_bytes(data)
    line = f"UPLOAD full.bin {len(data)} {sha} {TOKEN}"
    pdata, pmeta = partial_files(srv, TOKEN)

    c = tpkt(srv)
    mark = srv.log_mark()
    assert c.cmd(line) == "OK 0"

    def sender():
        try:
            c.send_data(data)
        except OSError:
            pass            # the server closes after its ERR
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    assert c.reply(timeout=10) == "ERR no space left"
    c.expect_closed()
    t.join(timeout=10)
    srv.wait_log(r"upload full\.bin from \S+ failed at \d+ of \d+ bytes: "
                 r"partial kept; no space left", since=mark)

    other = connect(srv)
    assert other.cmd("ECHO still serving") == "OK still serving"
    kept = pdata.stat().st_size
    assert kept > 0 and pmeta.exists()
    assert pdata.read_bytes() == data[:kept]
    assert visible_files(srv) == []

    r = subprocess.run(["mount", "-o", "remount,size=8m", str(tmpfs_data)],
                       capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    c = tpkt(srv)
    assert c.cmd(line) == f"OK {kept}"
    c.send_data(data[kept:])
    assert c.reply(timeout=20) == f"OK {len(data)} {sha}"
    assert sha256_file(tmpfs_data / "full.bin") == sha
    assert not pdata.exists()
