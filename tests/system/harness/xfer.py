"""File transfer from the test's side (docs/protocol.md, section 5): line-mode
UPLOAD and DOWNLOAD as nc does them, a TPKT upload, the storage folder's
partials, the rate line the server logs, a shell pipeline with a bound."""

import hashlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from harness.clients import Client
from harness.files import MiB, sha256_bytes


def partial_dir(srv):
    return Path(srv.data_dir) / ".bottle" / "partial"


def partial_files(srv, token):
    d = partial_dir(srv)
    return d / f"{token}.data", d / f"{token}.meta"


def tree(path):
    """Every path below ``path`` (relative), for 'nothing was created' checks."""
    out = set()
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(root, n), path))
    return out


def visible_files(srv):
    return sorted(n for n in os.listdir(srv.data_dir) if n != ".bottle")


def run_sh(script, cwd, timeout=15):
    """Run a shell pipeline in its own session; kill that group on timeout."""
    p = subprocess.Popen(["sh", "-c", script], cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=5)
        raise AssertionError(f"shell pipeline did not end within {timeout}s: {script}")
    return p.returncode, out, err


def rate_re(direction, name, nbytes, offset=0):
    """The rate line logged when a transfer completes."""
    peer = "from" if direction == "upload" else "to"
    return (rf"{direction} {re.escape(name)} {peer} 127\.0\.0\.1:\d+: {nbytes} bytes "
            rf"in \d+\.\d+ s \(from offset {offset}\), \d+\.\d\d MB/s, \d+\.\d\d Mbit/s")


def line_read_to_eof(c, timeout, h=None, limit=None):
    """After the reply lines, read raw bytes until the server closes.

    Returns the byte count (and feeds ``h``).  ``limit`` fails early if the
    server sends more than expected.
    """
    deadline = time.monotonic() + timeout
    n = 0
    if c.buf:
        if h:
            h.update(c.buf)
        n += len(c.buf)
        c.buf = b""
    buf = bytearray(4 * MiB)
    mv = memoryview(buf)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"download not finished after {timeout}s ({n} bytes)")
        c.sock.settimeout(remaining)
        try:
            k = c.sock.recv_into(mv)
        except socket.timeout:
            continue
        if k == 0:
            return n
        if h:
            h.update(mv[:k])
        n += k
        if limit is not None and n > limit:
            raise AssertionError(f"more than {limit} bytes received")


def line_download(port, arg, timeout=30.0, keep=False):
    """DOWNLOAD in line mode: (reply, sha256 of the bytes, count[, bytes])."""
    with Client(port) as c:
        c.send(f"DOWNLOAD {arg}\n")
        reply = c.reply()
        if not reply.startswith("OK"):
            return reply, None, 0, None
        if keep:
            c.sock.settimeout(timeout)
            data = c.buf
            c.buf = b""
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return reply, sha256_bytes(data), len(data), data
        h = hashlib.sha256()
        n = line_read_to_eof(c, timeout, h)
        return reply, h.hexdigest(), n, None


def line_upload(port, arg, path=None, data=None, timeout=30.0):
    """UPLOAD in line mode, bytes right behind the command (as nc does).

    Returns the replies after the greeting; the server must close afterwards.
    """
    with Client(port) as c:
        c.send(f"UPLOAD {arg}\n")
        if path is not None:
            with open(path, "rb") as f:
                c.sock.settimeout(timeout)
                c.sock.sendfile(f)
        elif data:
            c.send(data)
        replies = [c.reply(timeout)]
        if replies[0].startswith("OK"):
            replies.append(c.reply(timeout))
        rest = c.expect_closed(timeout=10)
        return replies + [r for r in rest if r]


def upload_tpkt(c, name, data, extra=""):
    """UPLOAD bytes over TPKT; return (first reply, final reply)."""
    first = c.cmd(f"UPLOAD {name} {len(data)}{extra}")
    if not first.startswith("OK"):
        return first, None
    off = int(first.split()[1])
    c.send_data(data[off:])
    return first, c.reply(timeout=30)
