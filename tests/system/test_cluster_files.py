"""Files across the nodes of a cluster (issue 13, section 5; docs/cluster.md,
"Files"): nodes of one cluster share one --dir and a stray server is refused;
an upload cut off on one node resumes on the other from the same offset;
a partial one node is writing is refused to another with the retryable
"ERR busy", until its holder dies and the other takes over from what the
file holds; the bottle client waits out a busy partial by itself; and what a
node knows of the folder (usage for --max-storage, LIST, digests) is read from
the folder, so it sees what the other node did.

Run with:  pytest-3 -q tests/system/test_cluster_files.py

A real redis-server on a free loopback port (harness/services.py); the nodes
are bottled processes on 127.0.0.1 sharing one folder of the test's tmp dir.
Every process is stopped by PID; every wait is bounded.
"""

import hashlib
import os
import signal
import subprocess

import pytest

from harness.clients import Client
from harness.env import BOTTLE, wait_until
from harness.files import MiB, sha256_file
from harness.server import run_bottled
from harness.services import RedisServer

TOKEN = "clustertoken0001"


@pytest.fixture
def redis(tmp_path):
    r = RedisServer(tmp_path)
    yield r
    r.stop()


@pytest.fixture
def shared(tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    return d


def start_node(make_server, redis, shared, name, *extra):
    return make_server("--cluster", redis.url(), "--node-name", name, *extra, data_dir=shared)


def kill9(srv):
    os.kill(srv.pid, signal.SIGKILL)
    srv.proc.wait(timeout=10)


def partial_size(shared, token):
    try:
        return os.path.getsize(shared / ".bottle" / "partial" / f"{token}.data")
    except OSError:
        return -1


def upload_line(data, token):
    return f"UPLOAD f.bin {len(data)} {hashlib.sha256(data).hexdigest()} {token}"


def test_nodes_of_one_cluster_share_the_folder_and_a_stray_server_is_refused(
        make_server, redis, shared):
    start_node(make_server, redis, shared, "a")
    start_node(make_server, redis, shared, "b")
    stray = run_bottled("-l", "127.0.0.1:0", "-d", shared)
    assert stray.returncode == 1, stray
    assert (b"is shared by the nodes of cluster 'bottle'; join it with --cluster"
            in stray.stderr), stray.stderr
    other = run_bottled("-l", "127.0.0.1:0", "-d", shared, "--cluster", redis.url("other"))
    assert other.returncode == 1, other
    assert b"cluster 'bottle', not 'other'" in other.stderr, other.stderr


def test_a_single_server_keeps_cluster_nodes_out(make_server, redis, shared):
    alone = make_server(data_dir=shared)
    node = run_bottled("-l", "127.0.0.1:0", "-d", shared, "--cluster", redis.url())
    assert node.returncode == 1, node
    assert f"in use by another bottled (pid {alone.pid})".encode() in node.stderr, node.stderr


def test_a_held_partial_is_busy_on_the_other_node_until_its_holder_dies(
        make_server, redis, shared, tpkt):
    a = start_node(make_server, redis, shared, "a")
    b = start_node(make_server, redis, shared, "b")
    data = os.urandom(2 * MiB)
    half = len(data) // 2
    on_a = tpkt(a)
    assert on_a.cmd(upload_line(data, TOKEN)) == "OK 0"
    on_a.send_data(data[:half])
    wait_until(lambda: partial_size(shared, TOKEN) == half, 10, "node a to store half")

    on_b = tpkt(b)
    busy = on_b.cmd(upload_line(data, TOKEN))
    assert busy.startswith("ERR busy: upload in progress on node a (host "), busy
    assert f"pid {a.pid})" in busy, busy
    b.wait_log(r"upload f\.bin from .*: its partial is held by node a .*; told to retry")
    # In line mode the data would follow the command: refused, then closed.
    with Client(b.port) as line:
        line.greeting()
        assert line.cmd(upload_line(data, TOKEN)).startswith("ERR busy: "), "line mode"
        line.expect_closed()
    assert partial_size(shared, TOKEN) == half  # B wrote nothing

    # The holder dies with its lock; B goes on from what the file holds.
    kill9(a)
    assert on_b.cmd(upload_line(data, TOKEN)) == f"OK {half}"
    on_b.send_data(data[half:])
    assert on_b.reply(timeout=30) == f"OK {len(data)} {hashlib.sha256(data).hexdigest()}"
    assert sha256_file(shared / "f.bin") == hashlib.sha256(data).hexdigest()
    assert not list((shared / ".bottle" / "partial").iterdir())


def test_an_upload_cut_off_on_one_node_resumes_on_the_other(make_server, redis, shared, tpkt):
    a = start_node(make_server, redis, shared, "a")
    b = start_node(make_server, redis, shared, "b")
    data = os.urandom(2 * MiB)
    cut = len(data) // 3
    on_a = tpkt(a)
    assert on_a.cmd(upload_line(data, TOKEN)) == "OK 0"
    on_a.send_data(data[:cut])
    wait_until(lambda: partial_size(shared, TOKEN) == cut, 10, "node a to store a third")
    on_a.close()
    a.wait_log(r"upload f\.bin from .* interrupted at %d of %d bytes; partial kept" %
               (cut, len(data)))
    on_b = tpkt(b)
    assert on_b.cmd(upload_line(data, TOKEN)) == f"OK {cut}"
    on_b.send_data(data[cut:])
    assert on_b.reply(timeout=30) == f"OK {len(data)} {hashlib.sha256(data).hexdigest()}"
    assert sha256_file(shared / "f.bin") == hashlib.sha256(data).hexdigest()


def resume_token(env, name, size, sha):
    """The bottle client's token for this upload (resume.h), from the key in
    the user's state folder, which this writes first."""
    key = bytes(range(32))
    path = os.path.join(env["XDG_STATE_HOME"], "bottle", "key")
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "w") as f:
        f.write(key.hex() + "\n")
    os.chmod(path, 0o600)
    h = hashlib.sha256(key + b"\0" + name.encode() + b"\0" + str(size).encode() + b"\0" +
                       sha.encode())
    return h.hexdigest()[:32]


def test_bottle_put_waits_out_a_busy_partial_and_resumes_on_the_other_node(
        make_server, redis, shared, tpkt, tmp_path, user_env):
    a = start_node(make_server, redis, shared, "a")
    b = start_node(make_server, redis, shared, "b")
    src = tmp_path / "src.bin"
    data = os.urandom(3 * MiB)
    src.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    token = resume_token(user_env, "f.bin", len(data), sha)
    third = len(data) // 3
    holder = tpkt(a)
    assert holder.cmd(upload_line(data, token)) == "OK 0"
    holder.send_data(data[:third])
    wait_until(lambda: partial_size(shared, token) == third, 10, "node a to store a third")

    err = open(tmp_path / "put.err", "wb")
    put = subprocess.Popen([BOTTLE, "put", str(src), "--as", "f.bin", f"127.0.0.1:{b.port}"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                           env=user_env, cwd=tmp_path)
    try:
        b.wait_log(r"its partial is held by node a", timeout=10)
        kill9(a)
        put.communicate(timeout=30)
    finally:
        if put.poll() is None:
            put.kill()
            put.wait(timeout=10)
        err.close()
    stderr = (tmp_path / "put.err").read_text()
    assert put.returncode == 0, stderr
    assert "busy: upload in progress on node a" in stderr, stderr
    b.wait_log(rf"upload f\.bin from .*: {len(data)} bytes \(resumable\), starting at {third}")
    assert sha256_file(shared / "f.bin") == sha


def test_each_node_reads_the_folder_state_from_the_folder(make_server, redis, shared, tpkt):
    a = start_node(make_server, redis, shared, "a", "--max-storage", "3M")
    b = start_node(make_server, redis, shared, "b", "--max-storage", "3M")
    data = os.urandom(2 * MiB)
    on_b = tpkt(b)
    assert on_b.cmd("UPLOAD via-b.bin %d" % len(data)) == "OK 0"
    on_b.send_data(data)
    assert on_b.reply(timeout=30).startswith(f"OK {len(data)} ")
    on_a = tpkt(a)
    # A lists it, serves it with the digest B cached, and counts it for the limit.
    assert on_a.cmd("LIST").split("\n") == ["OK 1", f"{len(data)} via-b.bin"]
    got = on_a.cmd("DOWNLOAD via-b.bin")
    assert got == f"OK {len(data)} 0 {hashlib.sha256(data).hexdigest()}", got
    assert on_a.recv_data(len(data))[0] == hashlib.sha256(data).hexdigest()
    full = on_a.cmd("UPLOAD more.bin %d" % len(data))
    assert full.startswith(f"ERR storage full: {len(data)} of {3 * MiB} bytes used"), full
    # B deletes it: A's next look finds room again.
    assert on_b.cmd("DELETE via-b.bin") == "OK deleted"
    assert on_a.cmd("LIST") == "OK 0"
