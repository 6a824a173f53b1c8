"""A connection's life cycle meets its transfer stream (docs/design.md, "One
owner for teardown"; docs/security.md).

Each of the first tests reproduces a defect of the old design, where closing a
connection freed its transfer at once, deep inside whatever call overflowed the
output queue:
  1. a TPKT download with a small --max-output read freed memory (ASan: heap
     use-after-free in the download loop);
  2. an UPLOAD whose "OK" overflowed the queue armed a timer on freed memory;
  3. a bad TPKT header during an upload left a connection that never ended,
     and a server holding one ignored SIGTERM;
  4. a TPKT download was cut off under a cap below ~300 KiB even for a reader
     that keeps up.
Then the stall timeout (--transfer-timeout), the storage folder lock, and the
client's durable rename.  Everything talks to 127.0.0.1.
"""

import hashlib
import os
import socket
import subprocess
import time

import pytest

from harness.clients import Client
from harness.env import BOTTLE, wait_until
from harness.files import MiB, sha256_file, write_random
from harness.protocol import tpkt_frame
from harness.server import run_bottled
from harness.xfer import line_download

TOKEN = "lifecycle-token-01"


def fd_count(srv):
    return len(os.listdir(f"/proc/{srv.pid}/fd"))


def assert_still_serving(srv):
    assert srv.running(), f"server died:\n{srv.log_text()}"
    with Client(srv.port) as c:
        c.greeting()
        assert c.cmd("ECHO still here") == "OK still here"


def stop_cleanly(srv):
    """SIGTERM must stop the server promptly, with exit status 0."""
    code = srv.stop(timeout=8)
    assert code == 0, f"exit status {code}; log:\n{srv.log_text()}"


# ---- 1 and 4: a download within every cap ----

@pytest.mark.parametrize("cap", [4096, 5000, 65536, 131072, 262144, None])
def test_tpkt_download_fits_every_cap(make_server, tpkt, tmp_path, cap):
    """A reader that keeps up gets the whole file whatever --max-output is."""
    srv = make_server(*(["--max-output", cap] if cap else []))
    size = 3 * MiB + 12345
    write_random(srv.data_dir / "f.bin", size)
    want = sha256_file(srv.data_dir / "f.bin")
    c = tpkt(srv)
    reply = c.cmd("DOWNLOAD f.bin")
    assert reply == f"OK {size} 0 {want}"
    sha, _ = c.recv_data(size, timeout=60)
    assert sha == want
    # The connection goes back to commands, and nothing was cut off.
    assert c.cmd("ECHO after") == "OK after"
    assert not srv.find_log(r"output over")
    assert_still_serving(srv)


@pytest.mark.parametrize("cap", [4096, 65536])
def test_line_download_fits_small_cap(make_server, cap):
    srv = make_server("--max-output", cap)
    size = 2 * MiB + 7
    write_random(srv.data_dir / "f.bin", size)
    reply, sha, n, _ = line_download(srv.port, "f.bin")
    assert reply.startswith(f"OK {size} 0 ")
    assert (n, sha) == (size, sha256_file(srv.data_dir / "f.bin"))
    assert_still_serving(srv)


# ---- 2: a reply that overflows the queue as a transfer starts ----

def _echo_then(port, tail, text_len, framing):
    """One segment: an ECHO whose reply nearly fills a 4096-byte queue, then
    a transfer command; the greeting is never read.  Returns when the server
    has closed the connection (overflow, or the line-mode transfer ended)."""
    text = b"x" * text_len
    if framing == "line":
        data = b"ECHO " + text + b"\n" + tail + b"\n"
    else:
        data = tpkt_frame(b"ECHO " + text) + tpkt_frame(tail)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(data)
        if framing == "tpkt":
            # A TPKT transfer keeps the connection: end it once it answered.
            s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass


@pytest.mark.parametrize("framing", ["line", "tpkt"])
@pytest.mark.parametrize("command", [b"UPLOAD z 0", b"DOWNLOAD small"])
def test_reply_overflow_as_a_transfer_starts(make_server, framing, command):
    """The old UPLOAD freed its state in conn_ok's overflow and then armed a
    hashing timer on it; DOWNLOAD of an unhashed file did the same after
    hashing.  Sweep the ECHO size across the cap so that, for some size, the
    transfer's first reply is the one that overflows."""
    srv = make_server("--max-output", 4096)
    (srv.data_dir / "small").write_bytes(b"s" * 100)
    base = fd_count(srv)
    for text_len in range(3900, 4100, 7):
        _echo_then(srv.port, command, text_len, framing)
    srv.wait_log(r"output over 4096 bytes, disconnecting")
    wait_until(lambda: fd_count(srv) == base, 10, "every sweep connection reaped")
    assert_still_serving(srv)
    stop_cleanly(srv)


# ---- 3: no ghost connections ----

def test_bad_tpkt_header_during_upload_closes(make_server, tpkt):
    srv = make_server()
    base = fd_count(srv)
    c = tpkt(srv)
    assert c.cmd(f"UPLOAD ghost.bin 100000 {'0' * 64} {TOKEN}") == "OK 0"
    c.send_frame(b"d" * 1000)
    c.send_raw(b"\x07\x00\x00\x10" + b"junk" * 3)     # not a TPKT header
    got = c.expect_closed(timeout=5)
    assert any(p.startswith(b"ERR") for p in got), got
    srv.wait_log(r"disconnect 127\.0\.0\.1:\d+: protocol error")
    wait_until(lambda: fd_count(srv) == base, 5, "descriptors back to the baseline")
    # The partial stays for resume.
    part = list((srv.data_dir / ".bottle" / "partial").glob(f"{TOKEN}.data"))
    assert part and part[0].stat().st_size == 1000
    assert_still_serving(srv)
    stop_cleanly(srv)


def test_bottle_put_against_small_max_frame_ends(make_server, tmp_path):
    """bottle sends 64 KiB frames; a server taking at most 1024 refuses them
    and must end that connection, not keep it forever."""
    srv = make_server("--max-frame", 1024)
    base = fd_count(srv)
    src = tmp_path / "f.bin"
    write_random(src, 300000)
    r = subprocess.run([BOTTLE, "put", str(src), f"127.0.0.1:{srv.port}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "frame too long" in r.stderr, r
    srv.wait_log(r"disconnect 127\.0\.0\.1:\d+: protocol error")
    wait_until(lambda: fd_count(srv) == base, 5, "descriptors back to the baseline")
    stop_cleanly(srv)


def test_sigterm_with_a_transfer_in_every_phase(make_server, tpkt, tmp_path):
    """Uploads receiving and downloads sending when SIGTERM arrives: the server
    still stops at once with status 0."""
    srv = make_server()
    write_random(srv.data_dir / "big.bin", 32 * MiB)
    up = tpkt(srv)
    assert up.cmd(f"UPLOAD up.bin {10 * MiB} {'0' * 64} {TOKEN}") == "OK 0"
    up.send_data(b"u" * 100000)
    down = tpkt(srv)
    down.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert down.cmd("DOWNLOAD big.bin").startswith("OK")
    srv.wait_log(r"download big.bin to")
    stop_cleanly(srv)
    assert srv.find_log(r"upload up.bin from .* interrupted")


# ---- --transfer-timeout ----

def test_stalled_upload_is_ended_and_resumable(make_server, tpkt):
    srv = make_server("--transfer-timeout", 1)
    c = tpkt(srv)
    assert c.cmd(f"UPLOAD slow.bin 50000 {'0' * 64} {TOKEN}") == "OK 0"
    c.send_frame(b"a" * 20000)
    srv.wait_log(r"transfer stalled: no byte either way for 1 s, closing", timeout=6)
    c.expect_closed(timeout=5)
    srv.wait_log(r"disconnect 127\.0\.0\.1:\d+: transfer stalled")
    again = tpkt(srv)
    assert again.cmd(f"UPLOAD slow.bin 50000 {'0' * 64} {TOKEN}") == "OK 20000"


def test_stalled_download_to_a_reader_that_stopped(make_server, tpkt):
    srv = make_server("--transfer-timeout", 1)
    write_random(srv.data_dir / "big.bin", 16 * MiB)
    c = tpkt(srv)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert c.cmd("DOWNLOAD big.bin").startswith("OK")
    srv.wait_log(r"transfer stalled", timeout=6)
    srv.wait_log(r"disconnect 127\.0\.0\.1:\d+: transfer stalled")
    assert_still_serving(srv)


def test_transfer_that_moves_is_not_stalled(make_server, tpkt):
    """A slow but steady upload outlives the timeout many times over."""
    srv = make_server("--transfer-timeout", 1)
    c = tpkt(srv)
    data = os.urandom(12 * 4096)
    assert c.cmd(f"UPLOAD steady.bin {len(data)}") == "OK 0"
    for i in range(0, len(data), 4096):
        c.send_frame(data[i:i + 4096])
        time.sleep(0.25)          # pacing a slow sender (3 s in all), not a wait
    assert c.reply(timeout=10) == f"OK {len(data)} {hashlib.sha256(data).hexdigest()}"
    assert not srv.find_log(r"transfer stalled")


# ---- one server per storage folder ----

def test_second_server_on_the_same_folder_is_refused(make_server):
    first = make_server()
    r = run_bottled("-l", "127.0.0.1:0", "-d", str(first.data_dir))
    assert r.returncode == 1
    assert f"storage folder {first.data_dir} is in use by another bottled " \
           f"(pid {first.pid})" in r.stderr.decode(), r.stderr
    stop_cleanly(first)
    again = make_server(data_dir=first.data_dir)
    assert_still_serving(again)


# ---- the client puts a download in place durably ----

def test_bottle_get_syncs_before_it_renames(server, tmp_path):
    write_random(server.data_dir / "f.bin", 200000)
    trace = tmp_path / "trace"
    out = tmp_path / "out" / "f.bin"
    out.parent.mkdir()
    r = subprocess.run(["strace", "-f", "-qq", "-o", str(trace),
                        "-e", "trace=fsync,fdatasync,rename,renameat,renameat2",
                        BOTTLE, "get", "f.bin", "-o", str(out), f"127.0.0.1:{server.port}"],
                       capture_output=True, text=True, timeout=30,
                       # LeakSanitizer can't run under ptrace (the ASan pass).
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    assert r.returncode == 0, r.stderr
    assert sha256_file(out) == sha256_file(server.data_dir / "f.bin")
    calls = [line.split("(", 1)[0].split()[-1] for line in trace.read_text().splitlines()
             if "(" in line]
    renames = [i for i, c in enumerate(calls) if c.startswith("rename")]
    assert len(renames) == 1, calls
    assert "fsync" in calls[:renames[0]], f"no fsync before the rename: {calls}"
    assert "fsync" in calls[renames[0]:], f"folder not synced after the rename: {calls}"


# ---- anonymous uploads stay apart without getrandom ----

GETRANDOM_FAILS = r"""
#include <errno.h>
#include <sys/types.h>
ssize_t getrandom(void *buf, size_t len, unsigned flags)
{
	(void)buf; (void)len; (void)flags;
	errno = ENOSYS;
	return -1;
}
"""


def test_anonymous_uploads_apart_when_getrandom_fails(make_server, tmp_path, monkeypatch):
    """Uploads without a token get an id of their own; with no randomness the
    old code gave every one the same all-zero id, so two at once shared (and
    truncated) one partial."""
    shim_c = tmp_path / "getrandom_fails.c"
    shim_c.write_text(GETRANDOM_FAILS)
    shim = tmp_path / "getrandom_fails.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(shim_c)], check=True,
                   timeout=60)
    monkeypatch.setenv("LD_PRELOAD", str(shim))
    # The ASan build wants its runtime first; the shim only replaces one call.
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") +
                       ":verify_asan_link_order=0")
    srv = make_server()
    monkeypatch.delenv("LD_PRELOAD")
    a, b = os.urandom(300000), os.urandom(300000)
    with Client(srv.port) as ca, Client(srv.port) as cb:
        ca.send(f"UPLOAD a.bin {len(a)}\n".encode() + a[:100000])
        assert ca.reply() == "OK 0"
        cb.send(f"UPLOAD b.bin {len(b)}\n".encode() + b[:100000])
        assert cb.reply() == "OK 0"
        ca.send(a[100000:])
        cb.send(b[100000:])
        assert ca.reply(timeout=10) == f"OK {len(a)} {hashlib.sha256(a).hexdigest()}"
        assert cb.reply(timeout=10) == f"OK {len(b)} {hashlib.sha256(b).hexdigest()}"
    assert (srv.data_dir / "a.bin").read_bytes() == a
    assert (srv.data_dir / "b.bin").read_bytes() == b
