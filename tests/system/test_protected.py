"""Protected mode: without --users or --open, bottled listens on loopback
addresses only; AUTH over plaintext from another host is refused unless
--allow-plaintext-auth.

The non-loopback addresses live in a network namespace the test makes (a
veth pair, both ends inside it): root and iproute2 needed, else skipped.
Addresses that are refused before anything is bound (0.0.0.0, [::]) need no
namespace.
"""

import os
import re
import shlex
import shutil
import subprocess
import uuid

import pytest

from harness.env import BOTTLED
from harness.server import Server

NS_IP = "10.201.7.1"
FIX = re.compile(r"refusing to listen on (\S+), which is not a loopback address, without "
                 r"access control: add --users FILE \(accounts\) or --open \(anyone may do "
                 r"anything\), or listen on 127\.0\.0\.1")


def run_bottled(*args, prefix=(), timeout=10):
    return subprocess.run([*prefix, BOTTLED, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("addr", ["0.0.0.0:0", "[::]:0"])
def test_wildcards_are_refused(tmp_path, addr):
    r = run_bottled("-l", addr, "-d", tmp_path / "d")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and FIX.search(lines[0]), r.stderr


def test_any_non_loopback_listener_is_refused(tmp_path):
    r = run_bottled("-l", "127.0.0.1:0", "--seed-listen", "0.0.0.0:0", "-d", tmp_path / "d")
    assert r.returncode == 1 and "0.0.0.0:0" in r.stderr, r.stderr


def test_loopback_names_need_nothing(make_server):
    srv = make_server(listen=("localhost:0",))
    assert srv.port


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, timeout=10, check=check)


class Namespace:
    """A network namespace with NS_IP on one end of a veth pair."""

    def __init__(self, tmp_path):
        tag = uuid.uuid4().hex[:6]
        self.name = f"bottle-p-{tag}"
        self.tmp_path = tmp_path
        self.servers = []
        self.made = False

    def setup(self):
        if os.geteuid() != 0 or not shutil.which("ip"):
            pytest.skip("needs root and iproute2 to make a network namespace")
        r = ip("netns", "add", self.name, check=False)
        if r.returncode != 0:
            pytest.skip(f"cannot create a network namespace: {r.stderr.decode().strip()}")
        self.made = True
        ip("-n", self.name, "link", "add", "pa0", "type", "veth", "peer", "name", "pb0")
        ip("-n", self.name, "addr", "add", f"{NS_IP}/24", "dev", "pa0")
        for dev in ("pa0", "pb0", "lo"):
            ip("-n", self.name, "link", "set", dev, "up")

    def prefix(self):
        return ("ip", "netns", "exec", self.name)

    def server(self, *args):
        wrapper = self.tmp_path / "bottled-in-ns"
        wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {self.name} "
                           f"{shlex.quote(BOTTLED)} \"$@\"\n")
        wrapper.chmod(0o755)
        srv = Server(args, self.tmp_path / f"data{len(self.servers)}",
                     listen=(f"{NS_IP}:0",), binary=str(wrapper))
        self.servers.append(srv)
        m = srv.wait_log(rf"listening on {re.escape(NS_IP)}:(\d+)", timeout=10)
        srv.port = int(m.group(1))
        return srv

    def talk(self, port, *lines):
        """Sends lines from inside the namespace; returns the server's reply lines."""
        script = ("import socket, sys\n"
                  "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)\n"
                  "s.settimeout(5)\n"
                  "f = s.makefile('rb')\n"
                  "print(f.readline().decode().rstrip())\n"
                  "for line in sys.argv[3:]:\n"
                  "    s.sendall(line.encode() + b'\\n')\n"
                  "    print(f.readline().decode().rstrip())\n")
        r = subprocess.run([*self.prefix(), "python3", "-c", script, NS_IP, str(port), *lines],
                           capture_output=True, text=True, timeout=15)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()[1:]

    def teardown(self):
        for srv in self.servers:
            srv.stop(timeout=5)
        if self.made:
            ip("netns", "del", self.name, check=False)


@pytest.fixture
def netns(tmp_path):
    ns = Namespace(tmp_path)
    try:
        ns.setup()
        yield ns
    finally:
        ns.teardown()


def add_user(users, name):
    r = run_bottled("--users", users, "--add-user", name, "--perms", "chat,read,write")
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[-1]


def test_a_non_loopback_listen_is_refused(netns, tmp_path):
    r = run_bottled("-l", f"{NS_IP}:0", "-d", tmp_path / "d", prefix=netns.prefix())
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and FIX.search(lines[0]) and NS_IP in lines[0], r.stderr


def test_open_serves_everyone(netns):
    srv = netns.server("--open")
    assert netns.talk(srv.port, "SAY hi", "LIST") == ["OK", "OK 0"]


def test_users_serves_and_plaintext_auth_is_refused(netns, tmp_path):
    users = tmp_path / "users"
    token = add_user(users, "alice")
    srv = netns.server("--users", users)
    replies = netns.talk(srv.port, "SAY hi", f"AUTH alice {token}", "LIST")
    assert replies[0].startswith("ERR permission denied: SAY needs chat")
    assert replies[1].startswith("ERR AUTH over plaintext from another host is refused")
    assert replies[2].startswith("ERR permission denied: LIST needs read")
    srv.wait_log(rf"{re.escape(NS_IP)}:\d+: AUTH refused over plaintext")


def test_allow_plaintext_auth(netns, tmp_path):
    users = tmp_path / "users"
    token = add_user(users, "alice")
    srv = netns.server("--users", users, "--allow-plaintext-auth")
    assert netns.talk(srv.port, f"AUTH alice {token}", "LIST") == ["OK alice", "OK 0"]


def test_auth_over_tls_from_another_host(netns, tmp_path):
    """Over TLS the token may come from anywhere (and a plaintext AUTH next
    to it still may not)."""
    users = tmp_path / "users"
    token = add_user(users, "alice")
    wrapper = tmp_path / "bottled-in-ns-tls"
    wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {netns.name} "
                       f"{shlex.quote(BOTTLED)} \"$@\"\n")
    wrapper.chmod(0o755)
    srv = Server(("--users", users, "--tls-listen", f"{NS_IP}:0"), tmp_path / "tlsdata",
                 listen=(f"{NS_IP}:0",), binary=str(wrapper))
    netns.servers.append(srv)
    m = srv.wait_log(rf"listening on {re.escape(NS_IP)}:(\d+) for TLS", timeout=20)
    tls_port = int(m.group(1))
    script = ("import socket, ssl, sys\n"
              "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
              "ctx.check_hostname = False\n"
              "ctx.verify_mode = ssl.CERT_NONE\n"
              "raw = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)\n"
              "s = ctx.wrap_socket(raw)\n"
              "s.settimeout(5)\n"
              "s.sendall(('AUTH alice ' + sys.argv[3] + '\\n').encode())\n"
              "f = s.makefile('rb')\n"
              "print(f.readline().decode().rstrip())\n"
              "print(f.readline().decode().rstrip())\n")
    r = subprocess.run([*netns.prefix(), "python3", "-c", script, NS_IP, str(tls_port), token],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    greeting, reply = r.stdout.splitlines()
    assert greeting.startswith("OK bottled") and reply == "OK alice", r.stdout
