"""Resuming transfers (docs/protocol.md, section 5): uploads with a token,
interrupted by FIN, RST or the server's death, taken over by a new connection,
never spliced with another source; checksum mismatches; DOWNLOAD from an
offset; a stale cached digest; and --partial-ttl.

Everything talks to 127.0.0.1 only.
"""

import os
import signal
import time

import pytest

from harness.env import wait_until
from harness.files import MiB, sha256_bytes
from harness.xfer import line_download, line_upload, partial_files, rate_re, visible_files

pytestmark = pytest.mark.usefixtures("drop_big_files")

TOKEN = "tok-resume_0001"


def test_resume_with_token(server, tpkt, connect):
    data = os.urandom(4 * MiB)
    sha = sha256_bytes(data)
    half = len(data) // 2
    line = f"UPLOAD big.bin {len(data)} {sha} {TOKEN}"
    pdata, pmeta = partial_files(server, TOKEN)

    c = tpkt(server)
    mark = server.log_mark()
    assert c.cmd(line) == "OK 0"
    c.send_data(data[:half])
    c.shutdown_write()
    m = server.wait_log(r"upload big\.bin from \S+ interrupted at (\d+) of (\d+) bytes",
                        since=mark)
    assert (int(m.group(1)), int(m.group(2))) == (half, len(data))
    c.close()

    assert pdata.stat().st_size == half and pmeta.exists()
    assert pdata.read_bytes() == data[:half]
    c = tpkt(server)
    assert c.cmd("LIST") == "OK 0", "a partial upload must not be listed"
    assert c.cmd("DOWNLOAD big.bin") == "ERR no such file: big.bin"
    assert visible_files(server) == []

    assert c.cmd(line) == f"OK {half}"
    more = half + 4096
    c.send_data(data[half:more])
    wait_until(lambda: pdata.stat().st_size == more, 10, "the partial to grow")
    # The same token on a new connection (the old link presumed dead) takes
    # over: the old connection is closed, the new one goes on from what is stored.
    mark = server.log_mark()
    other = tpkt(server)
    assert other.cmd(line) == f"OK {more}"
    c.expect_closed()
    server.wait_log(r"upload big\.bin: resumed from \S+; dropping the old connection",
                    since=mark)
    other.send_data(data[more:])
    assert other.reply(timeout=20) == f"OK {len(data)} {sha}"
    assert (server.data_dir / "big.bin").read_bytes() == data
    assert not pdata.exists() and not pmeta.exists()
    server.wait_log(rate_re("upload", "big.bin", len(data) - more, more), since=mark)
    assert other.cmd("LIST") == f"OK 1\n{len(data)} big.bin"


def test_upload_of_a_file_already_stored_needs_no_data(server, tpkt):
    """A client whose link broke after its last byte, before the final OK,
    comes back to a finished upload instead of sending the file again."""
    data = os.urandom(256 * 1024)
    sha = sha256_bytes(data)
    line = f"UPLOAD done.bin {len(data)} {sha} {TOKEN}"
    c = tpkt(server)
    assert c.cmd(line) == "OK 0"
    c.send_data(data)
    assert c.reply(timeout=10) == f"OK {len(data)} {sha}"
    c.close()
    again = tpkt(server)
    assert again.cmd(line) == f"OK {len(data)}"
    assert again.reply() == f"OK {len(data)} {sha}"
    assert again.cmd("ECHO next") == "OK next"
    assert (server.data_dir / "done.bin").read_bytes() == data
    # Another digest for the same name is a new upload.
    other = os.urandom(1000)
    assert again.cmd(f"UPLOAD done.bin 1000 {sha256_bytes(other)} {TOKEN}") == "OK 0"


def test_resume_after_abrupt_reset(server, tpkt):
    """RST instead of FIN: whatever was stored is offered again, no more."""
    data = os.urandom(4 * MiB)
    sha = sha256_bytes(data)
    line = f"UPLOAD r.bin {len(data)} {sha} {TOKEN}"
    pdata, _ = partial_files(server, TOKEN)
    c = tpkt(server)
    mark = server.log_mark()
    assert c.cmd(line) == "OK 0"
    c.send_data(data[:MiB])
    wait_until(lambda: pdata.exists() and pdata.stat().st_size == MiB, 10,
               "the partial to hold 1 MiB")
    c.reset()
    m = server.wait_log(r"upload r\.bin from \S+ interrupted at (\d+)", since=mark)
    assert int(m.group(1)) == MiB
    c = tpkt(server)
    assert c.cmd(line) == f"OK {MiB}"
    c.send_data(data[MiB:])
    assert c.reply(timeout=20) == f"OK {len(data)} {sha}"
    assert (server.data_dir / "r.bin").read_bytes() == data


def test_other_token_cannot_see_partial(server, tpkt):
    data = os.urandom(2 * MiB)
    sha = sha256_bytes(data)
    half = len(data) // 2
    tok2 = "another-token-42"
    c = tpkt(server)
    mark = server.log_mark()
    assert c.cmd(f"UPLOAD big.bin {len(data)} {sha} {TOKEN}") == "OK 0"
    c.send_data(data[:half])
    c.close()
    server.wait_log(r"interrupted at", since=mark)

    # Same name, size and digest, another token: starts at 0, its own partial.
    mark = server.log_mark()
    c = tpkt(server)
    assert c.cmd(f"UPLOAD big.bin {len(data)} {sha} {tok2}") == "OK 0"
    junk = os.urandom(1000)
    c.send_data(junk)
    c.close()
    server.wait_log(r"interrupted at 1000 of", since=mark)
    assert partial_files(server, tok2)[0].read_bytes() == junk
    assert partial_files(server, TOKEN)[0].read_bytes() == data[:half]

    c = tpkt(server)
    assert c.cmd(f"UPLOAD big.bin {len(data)} {sha} {TOKEN}") == f"OK {half}"
    c.send_data(data[half:])
    assert c.reply() == f"OK {len(data)} {sha}"
    assert (server.data_dir / "big.bin").read_bytes() == data


@pytest.mark.parametrize("change", ["sha", "size", "name"])
def test_changed_source_restarts_never_splices(server, tpkt, change):
    old = os.urandom(2 * MiB)
    new = os.urandom(2 * MiB + (1 if change == "size" else 0))
    name_old, name_new = "f.bin", ("g.bin" if change == "name" else "f.bin")
    half = len(old) // 2
    c = tpkt(server)
    mark = server.log_mark()
    assert c.cmd(f"UPLOAD {name_old} {len(old)} {sha256_bytes(old)} {TOKEN}") == "OK 0"
    c.send_data(old[:half])
    c.close()
    server.wait_log(r"interrupted at", since=mark)

    if change == "name":
        new = old           # same bytes, other name: still no resume
    c = tpkt(server)
    assert c.cmd(f"UPLOAD {name_new} {len(new)} {sha256_bytes(new)} {TOKEN}") == "OK 0"
    c.send_data(new)
    assert c.reply() == f"OK {len(new)} {sha256_bytes(new)}"
    assert (server.data_dir / name_new).read_bytes() == new


def test_checksum_mismatch_publishes_nothing(server, tpkt):
    data = os.urandom(MiB)
    other_sha = sha256_bytes(b"other content")
    (server.data_dir / "keep.bin").write_bytes(b"previous version")
    pdata, pmeta = partial_files(server, TOKEN)
    c = tpkt(server)
    mark = server.log_mark()
    assert c.cmd(f"UPLOAD keep.bin {len(data)} {other_sha} {TOKEN}") == "OK 0"
    c.send_data(data)
    reply = c.reply(timeout=20)
    assert reply.startswith("ERR checksum mismatch"), reply
    assert reply == "ERR checksum mismatch: nothing stored"
    c.expect_closed()
    server.wait_log(r"disconnect", since=mark)
    assert (server.data_dir / "keep.bin").read_bytes() == b"previous version"
    assert not pdata.exists() and not pmeta.exists()
    assert visible_files(server) == ["keep.bin"]
    # And the token starts from scratch afterwards.
    c = tpkt(server)
    assert c.cmd(f"UPLOAD keep.bin {len(data)} {sha256_bytes(data)} {TOKEN}") == "OK 0"


def test_line_mode_checksum_mismatch(server):
    data = b"some bytes"
    replies = line_upload(server.port, f"x {len(data)} {'0' * 64} {TOKEN}", data=data)
    assert replies == ["OK 0", "ERR checksum mismatch: nothing stored"]
    assert visible_files(server) == []


def test_resume_after_kill_9(make_server, tpkt):
    srv = make_server()
    data = os.urandom(8 * MiB)
    sha = sha256_bytes(data)
    half = len(data) // 2
    line = f"UPLOAD k.bin {len(data)} {sha} {TOKEN}"
    pdata, _ = partial_files(srv, TOKEN)
    c = tpkt(srv)
    assert c.cmd(line) == "OK 0"
    c.send_data(data[:half])
    # No server event marks "bytes written": watch the partial grow.
    wait_until(lambda: pdata.exists() and pdata.stat().st_size == half, 10,
               "the partial to hold half the file")
    srv.signal(signal.SIGKILL)
    assert srv.wait(timeout=5) == -signal.SIGKILL
    c.close()

    srv2 = make_server(data_dir=srv.data_dir)
    c = tpkt(srv2)
    reply = c.cmd(line)
    assert reply == f"OK {half}", reply
    c.send_data(data[half:])
    assert c.reply(timeout=20) == f"OK {len(data)} {sha}"
    assert (srv.data_dir / "k.bin").read_bytes() == data


def test_abandoned_partials_expire_after_the_ttl(make_server, tmp_path):
    """--partial-ttl: partials untouched that long are deleted; fresher ones stay."""
    data = tmp_path / "data"
    partial = data / ".bottle" / "partial"
    partial.mkdir(parents=True)
    old_day = time.time() - 2 * 86400
    for token, mtime in (("oldtoken1", old_day), ("newtoken1", None)):
        (partial / f"{token}.data").write_bytes(b"some bytes")
        (partial / f"{token}.meta").write_text("100 - f.bin\n")
        if mtime:
            os.utime(partial / f"{token}.data", (mtime, mtime))
    srv = make_server("--partial-ttl", "86400", data_dir=data)
    srv.wait_log(r"deleted 1 abandoned partial upload")
    assert sorted(p.name for p in partial.iterdir()) == ["newtoken1.data", "newtoken1.meta"]


# ---- DOWNLOAD from an offset ----

CONTENT = b"0123456789abcdefghij"


CONTENT_SHA = sha256_bytes(CONTENT)


def test_download_offset_tpkt(server, tpkt):
    (server.data_dir / "f").write_bytes(CONTENT)
    n = len(CONTENT)
    c = tpkt(server)
    assert c.cmd("DOWNLOAD f 5") == f"OK {n} 5 {CONTENT_SHA}"
    assert c.recv_data(n - 5, keep=True)[1] == CONTENT[5:]
    assert c.cmd(f"DOWNLOAD f 7 {CONTENT_SHA}") == f"OK {n} 7 {CONTENT_SHA}"
    assert c.recv_data(n - 7, keep=True)[1] == CONTENT[7:]
    # The client's part is of another version: start over from 0.
    assert c.cmd(f"DOWNLOAD f 5 {'ab' * 32}") == f"OK {n} 0 {CONTENT_SHA}"
    assert c.recv_data(n, keep=True)[1] == CONTENT
    # At the end: nothing to send; beyond: an error.
    assert c.cmd(f"DOWNLOAD f {n}") == f"OK {n} {n} {CONTENT_SHA}"
    assert c.cmd(f"DOWNLOAD f {n + 1}") == "ERR offset beyond the end of the file"
    assert c.cmd("DOWNLOAD f 99999999999999999999").startswith("ERR")
    assert c.cmd("DOWNLOAD f -1").startswith("ERR")
    assert c.cmd("DOWNLOAD f 1 nothex").startswith("ERR")
    assert c.cmd("ECHO done") == "OK done"


def test_download_offset_line(server):
    (server.data_dir / "f").write_bytes(CONTENT)
    n = len(CONTENT)
    reply, _, _, data = line_download(server.port, "f 5", keep=True)
    assert reply == f"OK {n} 5 {CONTENT_SHA}"
    assert data == CONTENT[5:]
    reply, _, _, data = line_download(server.port, f"f 5 {'0' * 64}", keep=True)
    assert reply == f"OK {n} 0 {CONTENT_SHA}"
    assert data == CONTENT
    reply, _, _, _ = line_download(server.port, f"f {n + 1}")
    assert reply == "ERR offset beyond the end of the file"


def test_download_sees_replaced_file(server, tpkt):
    """The cached digest goes stale when the file changes (same size too)."""
    p = server.data_dir / "v"
    p.write_bytes(b"version 1")
    c = tpkt(server)
    assert c.cmd("DOWNLOAD v") == f"OK 9 0 {sha256_bytes(b'version 1')}"
    c.recv_data(9)
    p.write_bytes(b"version 2")
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert c.cmd("DOWNLOAD v 4 " + sha256_bytes(b"version 1")) == \
        f"OK 9 0 {sha256_bytes(b'version 2')}"
    assert c.recv_data(9, keep=True)[1] == b"version 2"
