"""File transfer in line mode with real netcat (docs/protocol.md, section 5):
UPLOAD and DOWNLOAD as a shell pipeline does them, quoted names, LIST, and a
peer that half-closes (nc -N) while the server still owes it bytes.

Everything talks to 127.0.0.1 only.
"""

import os

import pytest

from harness.clients import run_nc
from harness.files import MiB, sha256_bytes, sha256_file, write_random
from harness.protocol import GREETING_RE
from harness.xfer import rate_re, run_sh

pytestmark = pytest.mark.usefixtures("drop_big_files")


def test_nc_upload_and_download_text_file(server, tmp_path):
    content = b"hello world\n"
    assert len(content) == 12
    (tmp_path / "notes.txt").write_bytes(content)
    sha = sha256_bytes(content)
    mark = server.log_mark()

    rc, out, err = run_sh(
        f"{{ printf 'UPLOAD notes.txt 12\\n'; cat notes.txt; }} | nc 127.0.0.1 {server.port}",
        cwd=tmp_path)
    assert rc == 0, err
    lines = out.decode().splitlines()
    assert GREETING_RE.match(lines[0]), lines
    assert lines[1:] == ["OK 0", f"OK 12 {sha}"], lines
    stored = server.data_dir / "notes.txt"
    assert stored.read_bytes() == content
    assert sha256_file(stored) == sha
    server.wait_log(rate_re("upload", "notes.txt", 12), since=mark)

    rc, out, err = run_sh(
        f"printf 'DOWNLOAD notes.txt\\n' | nc 127.0.0.1 {server.port} | tail -n +3 > got.txt",
        cwd=tmp_path)
    assert rc == 0, err
    assert (tmp_path / "got.txt").read_bytes() == content
    server.wait_log(rate_re("download", "notes.txt", 12), since=mark)


def test_nc_binary_1mib_round_trip(server, tmp_path):
    sha = write_random(tmp_path / "rand.bin", MiB)
    rc, out, err = run_sh(
        f"{{ printf 'UPLOAD rand.bin {MiB}\\n'; cat rand.bin; }} | nc 127.0.0.1 {server.port}",
        cwd=tmp_path)
    assert rc == 0, err
    assert out.decode().splitlines()[-1] == f"OK {MiB} {sha}"
    assert sha256_file(server.data_dir / "rand.bin") == sha

    rc, out, err = run_sh(
        f"printf 'DOWNLOAD rand.bin\\n' | nc 127.0.0.1 {server.port} | tail -n +3 > got.bin",
        cwd=tmp_path)
    assert rc == 0, err
    assert (tmp_path / "got.bin").read_bytes() == (tmp_path / "rand.bin").read_bytes()


def test_nc_list_and_quoted_names(server, tmp_path):
    port = server.port
    rc, out, _ = run_sh(f"{{ printf 'UPLOAD notes.txt 12\\n'; printf 'hello world\\n'; }}"
                        f" | nc 127.0.0.1 {port}", cwd=tmp_path)
    assert out.decode().splitlines()[-1].startswith("OK 12 ")
    rc, out, _ = run_sh(f"{{ printf 'UPLOAD \"my notes.txt\" 3\\n'; printf abc; }}"
                        f" | nc 127.0.0.1 {port}", cwd=tmp_path)
    assert out.decode().splitlines()[-1] == f"OK 3 {sha256_bytes(b'abc')}"
    assert (server.data_dir / "my notes.txt").read_bytes() == b"abc"
    # Escapes inside quotes: \" and \\ .
    rc, out, _ = run_sh(f"{{ printf 'UPLOAD \"q\\\\\"x\\\\\\\\y\" 1\\n'; printf Z; }}"
                        f" | nc 127.0.0.1 {port}", cwd=tmp_path)
    assert out.decode().splitlines()[-1].startswith("OK 1 "), out
    assert (server.data_dir / 'q"x\\y').read_bytes() == b"Z"

    rc, out, _ = run_sh(f"printf 'LIST\\nQUIT\\n' | nc 127.0.0.1 {port}", cwd=tmp_path)
    assert rc == 0
    lines = out.decode().splitlines()
    assert lines[1:] == ["OK 3", "OK 3 my notes.txt", "OK 12 notes.txt", 'OK 1 q"x\\y',
                         "OK bye"], lines

    rc, out, _ = run_sh(f"printf 'DOWNLOAD \"my notes.txt\"\\n' | nc 127.0.0.1 {port}"
                        f" | tail -n +3", cwd=tmp_path)
    assert out == b"abc"


def test_nc_half_close_upload_is_still_stored(server, tmp_path):
    """nc -N shuts down its sending side at EOF: the server still owes the reply.

    A half-close means "done sending", not "gone" (conn.c's EOF path says so:
    "the peer is done sending but may still read: finish what we owe"), and
    the harness's run_nc uses -N.  16 MiB so that hashing takes several loop
    turns after the last byte (and the FIN) arrived.
    """
    data = os.urandom(16 * MiB)
    res = run_nc(server.port, f"UPLOAD half.bin {len(data)}\n".encode() + data, timeout=20)
    lines = res.stdout.decode(errors="replace").splitlines()
    assert lines[-1:] == [f"OK {len(data)} {sha256_bytes(data)}"], \
        f"replies {lines!r}; log:\n{server.log_text()}"
    assert sha256_file(server.data_dir / "half.bin") == sha256_bytes(data)


def test_nc_half_close_download_of_unhashed_file(server, tmp_path):
    """A half-closed downloader (nc -N) of a file whose digest is not cached yet."""
    data = os.urandom(8 * MiB)
    (server.data_dir / "fresh.bin").write_bytes(data)
    res = run_nc(server.port, b"DOWNLOAD fresh.bin\n", timeout=20)
    out = res.stdout
    head = f"OK {len(data)} 0 {sha256_bytes(data)}\n".encode()
    i = out.find(b"\n")
    assert out[i + 1:i + 1 + len(head)] == head, \
        f"got {out[:200]!r} ({len(out)} bytes); log:\n{server.log_text()}"
    assert out[i + 1 + len(head):] == data
