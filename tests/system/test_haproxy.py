"""A real HAProxy in front of two nodes of a cluster (issue 13, section 6;
contrib/haproxy.cfg, README "Running a cluster"): its health check sees the
nodes up without entering the chat, and a `bottle put` of 200 MiB through it
survives a kill -9 of the node serving it: the client's automatic recovery
lands on the other node, which resumes from the shared folder, and the file
stored is the one sent (SHA-256). And README's cluster is the one this
config balances.

Run with:  pytest-3 -q tests/system/test_haproxy.py

HAProxy runs contrib/haproxy.cfg itself with its addresses pointed at the
test's loopback ports (harness/services.py); redis-server, haproxy and the
nodes are stopped by PID; every wait is bounded.
"""

import os
import re
import signal
import subprocess

import pytest

from harness.env import BOTTLE, REPO, wait_until
from harness.files import MiB, sha256_file, write_random
from harness.services import HAPROXY_CFG, HAProxy, RedisServer

pytestmark = pytest.mark.usefixtures("drop_big_files")

SIZE = 200 * MiB
RATE = "50M"  # about 4 s in all: time to kill the node in the middle


@pytest.fixture
def cluster(make_server, tmp_path):
    """Redis, two nodes on one folder, and HAProxy in front of them."""
    redis = RedisServer(tmp_path)
    shared = tmp_path / "shared"
    nodes = [make_server("--cluster", redis.url(), "--node-name", name, data_dir=shared)
             for name in ("a", "b")]
    balancer = HAProxy(tmp_path, [n.port for n in nodes])
    yield nodes, balancer, shared
    balancer.stop()
    for n in nodes:
        n.stop()
    redis.stop()


def test_the_health_check_is_the_greeting_and_stays_out_of_the_chat(cluster, tpkt):
    nodes, balancer, _ = cluster
    watcher = tpkt(nodes[0])  # a chat member on node a
    watcher.sync()
    mark = nodes[0].log_mark()
    # One more check (every 2 s): greeted, QUIT, never in the room.
    nodes[0].wait_logs(r"disconnect 127\.0\.0\.1:\d+: quit", 1, timeout=10, since=mark)
    watcher.sync()
    events = watcher.take_events()
    assert not [e for e in events if e.startswith(("JOIN", "LEAVE"))], events
    through = tpkt(balancer.port)
    assert through.hello() == "OK hello"
    assert through.greeting_line.startswith("OK bottled")


def test_a_put_through_the_balancer_survives_a_kill_of_its_node(cluster, tmp_path, user_env):
    nodes, balancer, shared = cluster
    src = tmp_path / "big.bin"
    write_random(src, SIZE)
    want = sha256_file(src)
    err_path = tmp_path / "put.err"
    with open(err_path, "wb") as err:
        put = subprocess.Popen(
            [BOTTLE, "put", str(src), "--as", "big.bin", "--limit-rate", RATE,
             f"127.0.0.1:{balancer.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=user_env,
            cwd=tmp_path)
    try:
        # Which node serves it: the one whose log says the upload started.
        started = r"upload big\.bin from .*: %d bytes \(resumable\), starting at 0" % SIZE
        serving = wait_until(lambda: next((n for n in nodes if n.find_log(started)), None),
                             20, "a node to start the upload")
        other = next(n for n in nodes if n is not serving)
        wait_until(lambda: partial_bytes(shared) >= SIZE // 4, 30, "a quarter of the upload")
        os.kill(serving.pid, signal.SIGKILL)
        serving.proc.wait(timeout=10)
        put.communicate(timeout=60)
    finally:
        if put.poll() is None:
            put.kill()
            put.wait(timeout=10)
    stderr = err_path.read_text()
    assert put.returncode == 0, stderr
    assert "resumed at" in stderr, stderr
    m = other.wait_log(r"upload big\.bin from .*: %d bytes \(resumable\), starting at (\d+)"
                       % SIZE, timeout=5)
    assert int(m.group(1)) >= SIZE // 4
    assert sha256_file(shared / "big.bin") == want


def partial_bytes(shared):
    total = 0
    for p in (shared / ".bottle" / "partial").glob("*.data"):
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return total


def test_the_readme_cluster_is_the_one_the_config_balances():
    """README's "Running a cluster": its nodes are the config's servers, and its
    client connects to the config's frontend (no processes: the two tests
    above run that config)."""
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("    redis-server --port 6379"):].split("\n\n", 1)[0]
    cfg = HAPROXY_CFG.read_text()
    nodes = re.findall(r"bottled -l (127\.0\.0\.1:\d+) .*--cluster redis://127\.0\.0\.1:6379 ",
                       block)
    servers = re.findall(r"(?m)^\s*server node\d+ (\S+) check$", cfg)
    assert nodes and nodes == servers, (nodes, servers)
    assert "haproxy -f contrib/haproxy.cfg" in block
    assert re.search(r"(?m)^\s*bind :4000$", cfg)
    assert block.rstrip().endswith("localhost:4000")
