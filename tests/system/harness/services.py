"""The services a cluster test starts beside bottled: a real redis-server and
a real HAProxy, each on a free loopback port, each stopped by its PID.

Both skip the test (with the reason) when their program is not installed
(scripts/deps installs them)."""

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from harness.env import REPO, scaled, wait_until

HAPROXY_CFG = REPO / "contrib" / "haproxy.cfg"


def free_port():
    """A loopback port nobody listens on right now (the caller binds it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _Process:
    """A child process whose output goes to a file in the test's tmp dir."""

    def __init__(self, argv, log_path):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        """kill -9, and reap it."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout=5.0):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode


class RedisServer(_Process):
    """redis-server on 127.0.0.1:<free port>, no persistence, ready on return."""

    def __init__(self, tmp_path):
        exe = shutil.which("redis-server")
        if not exe:
            pytest.skip("redis-server is not installed (scripts/deps)")
        self.port = free_port()
        work = Path(tmp_path) / f"redis-{self.port}"
        work.mkdir(parents=True, exist_ok=True)
        super().__init__([exe, "--port", str(self.port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", str(work)],
                         work / "redis.log")
        wait_until(lambda: not self.running() or _accepts(self.port), 10,
                   "redis-server to listen")
        if not self.running():
            raise AssertionError(f"redis-server exited:\n{self.log_text()}")

    def url(self, prefix=None):
        return f"redis://127.0.0.1:{self.port}" + (f"/{prefix}" if prefix else "")


def haproxy_config(frontend_port, node_ports):
    """contrib/haproxy.cfg itself, pointed at a test's ports: its frontend
    bound to 127.0.0.1:<frontend_port>, one server line per node, and a
    maxconn that fits a test's descriptor limit."""
    text = HAPROXY_CFG.read_text()
    text = re.sub(r"(?m)^(\s*)maxconn \d+", r"\g<1>maxconn 1000", text)
    text, n = re.subn(r"(?m)^(\s*)bind \S+", rf"\g<1>bind 127.0.0.1:{frontend_port}", text)
    assert n == 1, "contrib/haproxy.cfg: expected one bind line"
    lines = re.findall(r"(?m)^(\s*)server node\d+ \S+(.*)$", text)
    assert lines, "contrib/haproxy.cfg: expected server lines"
    indent, options = lines[0]
    servers = "\n".join(f"{indent}server node{i + 1} 127.0.0.1:{p}{options}"
                        for i, p in enumerate(node_ports))
    text = re.sub(r"(?m)^\s*server node\d+ .*\n?", "", text).rstrip("\n")
    return text + "\n" + servers + "\n"


class HAProxy(_Process):
    """haproxy in the foreground with contrib/haproxy.cfg for these nodes;
    on return its frontend accepts connections."""

    def __init__(self, tmp_path, node_ports):
        exe = shutil.which("haproxy")
        if not exe:
            pytest.skip("haproxy is not installed (scripts/deps)")
        self.port = free_port()
        cfg = Path(tmp_path) / "haproxy.cfg"
        cfg.write_text(haproxy_config(self.port, node_ports))
        check = subprocess.run([exe, "-c", "-f", str(cfg)], capture_output=True, text=True,
                               timeout=30)
        assert check.returncode == 0, f"haproxy -c failed:\n{check.stdout}{check.stderr}"
        super().__init__([exe, "-db", "-f", str(cfg)], Path(tmp_path) / "haproxy.log")
        wait_until(lambda: not self.running() or _accepts(self.port), 10,
                   "haproxy to listen")
        if not self.running():
            raise AssertionError(f"haproxy exited:\n{self.log_text()}")
