"""System tests for the client side of file transfer: bottle put / get / ls,
/upload, /download and /list in the chat, resume and automatic recovery.

Run with:  pytest-3 -q tests/system/test_xfer_client.py
(BOTTLED / BOTTLE select other builds.)

Network hygiene: everything talks to 127.0.0.1, except the cable-pull tests,
which run the server and the client in two network namespaces of their own
joined by a veth pair (10.123.45.0/30), deleted again at teardown. Those
need root (CAP_NET_ADMIN) and are skipped where namespaces can't be made.

HOME and XDG_STATE_HOME point into each test's tmp dir, so the per-user
resume key is the test's own.  Every wait is bounded; processes started
here are stopped by PID.
"""

import glob
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from harness.clients import TpktClient
from harness.env import BOTTLE, BOTTLED, wait_until
from harness.files import MiB, sha256_file, write_random
from harness.server import Server
from harness.final import FINAL_RE, close_to, parse_final
EX_TEMPFAIL = 75


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def file_size(pattern):
    """Size of the first file matching a glob pattern, 0 when there is none."""
    for p in glob.glob(str(pattern)):
        try:
            return os.path.getsize(p)
        except OSError:
            pass
    return 0


def partial_glob(data_dir):
    return Path(data_dir) / ".bottle" / "partial" / "*.data"


def addr(server):
    return f"127.0.0.1:{server.port}"


def resumed_at(line):
    """The offsets in ", resumed at N[, M]" of a final line, [] when none
    (to within the rounding of the sizes shown)."""
    return parse_final(line)[2]


class Bottle:
    """One bottle process (argv may start with an `ip netns exec` prefix);
    stdout and stderr go to files so nothing blocks on a full pipe."""

    def __init__(self, args, env, cwd, prefix=()):
        self.out_path = Path(cwd) / f"out-{uuid.uuid4().hex[:8]}.txt"
        self.err_path = self.out_path.with_suffix(".err")
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([*prefix, BOTTLE, *[str(a) for a in args]],
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, env=env, cwd=cwd)
        self.pid = self.proc.pid

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"bottle did not end within {timeout}s; "
                                 f"stderr: {self.stderr()!r}")
        self._close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self._close()

    def _close(self):
        for f in (self._out, self._err):
            if not f.closed:
                f.close()

    def stdout(self):
        return self.out_path.read_text(errors="replace")

    def stderr(self):
        return self.err_path.read_text(errors="replace")


@pytest.fixture
def bottles():
    """Factory for background bottle processes; all killed at teardown."""
    made = []

    def factory(args, env, cwd, prefix=()):
        b = Bottle(args, env, cwd, prefix)
        made.append(b)
        return b

    yield factory
    for b in made:
        b.kill()


def run_bottle(args, env, cwd, timeout=30):
    return subprocess.run([BOTTLE, *[str(a) for a in args]], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, env=env, cwd=cwd)


def final_line(stdout, verb, name):
    """The one final line of a transfer: "<verb> <name>...: <summary>"."""
    lines = stdout.decode().splitlines() if isinstance(stdout, bytes) else stdout.splitlines()
    assert len(lines) == 1, f"expected one line on stdout, got {lines!r}"
    line = lines[0]
    assert line.startswith(f"{verb} {name}"), line
    assert FINAL_RE.search(line), line
    return line


# --------------------------------------------------------------------------
# put / get / ls
# --------------------------------------------------------------------------

def test_put_get_ls_roundtrip(server, tmp_path, user_env):
    src = tmp_path / "src"
    dst = tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    files = {"empty.bin": 0, "one.bin": 1, "big.bin": 100 * MiB}
    shas = {name: write_random(src / name, size) for name, size in files.items()}

    for name, size in files.items():
        r = run_bottle(["put", src / name, addr(server)], user_env, tmp_path, timeout=60)
        assert r.returncode == 0, r.stderr
        line = final_line(r.stdout, "uploaded", name)
        assert close_to(parse_final(line)[0], size), line
        assert "resumed" not in line
        assert sha256_file(Path(server.data_dir) / name) == shas[name]
        assert r.stderr == b""

    r = run_bottle(["ls", addr(server)], user_env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [f"{files[n]} {n}" for n in sorted(files)]

    for name in files:
        r = run_bottle(["get", name, "-o", dst, addr(server)], user_env, tmp_path, timeout=60)
        assert r.returncode == 0, r.stderr
        final_line(r.stdout, "downloaded", name)
        assert sha256_file(dst / name) == shas[name]
        assert not (dst / f"{name}.part").exists()

    # Default destination ./NAME, and -o naming a file.
    r = run_bottle(["get", "one.bin", addr(server)], user_env, dst)
    assert r.returncode == 0, r.stderr
    r = run_bottle(["get", "one.bin", "-o", dst / "renamed", addr(server)], user_env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert sha256_file(dst / "renamed") == shas["one.bin"]
    # The resume key was made in the test's own state dir, private.
    key = Path(user_env["XDG_STATE_HOME"]) / "bottle" / "key"
    assert re.fullmatch(r"[0-9a-f]{64}\n", key.read_text())
    assert key.stat().st_mode & 0o777 == 0o600


def test_put_as_name_with_spaces_and_env_address(server, tmp_path, user_env):
    (tmp_path / "f").write_bytes(b"hello\n")
    env = dict(user_env, BOTTLE_SERVER=addr(server))
    r = run_bottle(["put", "f", "--as", 'my "odd" notes.txt'], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (Path(server.data_dir) / 'my "odd" notes.txt').read_bytes() == b"hello\n"
    r = run_bottle(["get", 'my "odd" notes.txt', "-o", "back"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "back").read_bytes() == b"hello\n"


def test_get_missing_file_exits_1(server, tmp_path, user_env):
    r = run_bottle(["get", "nothere", addr(server)], user_env, tmp_path)
    assert r.returncode == 1
    assert b"no such file" in r.stderr, r.stderr
    assert r.stdout == b""
    assert not list(tmp_path.glob("nothere*"))


def test_put_missing_local_file_exits_1(server, tmp_path, user_env):
    r = run_bottle(["put", "does-not-exist.txt", addr(server)], user_env, tmp_path)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "does-not-exist.txt" in err and "No such file" in err, err
    assert len(err.splitlines()) == 1, err


@pytest.mark.parametrize("bad", ["../x", "a/b"])
def test_put_invalid_remote_name(server, tmp_path, user_env, bad):
    (tmp_path / "f").write_bytes(b"data")
    r = run_bottle(["put", "f", "--as", bad, addr(server)], user_env, tmp_path)
    assert r.returncode == 1
    assert b"invalid file name" in r.stderr, r.stderr
    assert not (tmp_path.parent / "x").exists()


def test_cannot_connect_exits_3(tmp_path, user_env):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "f").write_bytes(b"data")
    for args in (["put", "f"], ["get", "f"], ["ls"]):
        r = run_bottle([*args, f"127.0.0.1:{port}"], user_env, tmp_path)
        assert r.returncode == 3, (args, r.stderr)
        err = r.stderr.decode().strip()
        assert len(err.splitlines()) == 1 and f"127.0.0.1:{port}" in err, err


@pytest.mark.parametrize("args", [
    ["put"], ["get"], ["put", "f", "-o", "x"], ["get", "f", "--as", "x"],
    ["put", "f", "--limit-rate", "fast"], ["put", "f", "--limit-rate", "0"],
    ["put", "f", "--retry-for", "-1"], ["ls", "127.0.0.1:1", "extra"],
    ["put", "f", "127.0.0.1:notaport"],
])
def test_transfer_usage_errors_exit_2(tmp_path, user_env, args):
    r = run_bottle(args, user_env, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr


def test_help_describes_transfers():
    r = subprocess.run([BOTTLE, "--help"], capture_output=True, timeout=10)
    text = r.stdout.decode()
    for part in ("bottle put FILE", "bottle get NAME", "bottle ls", "--as", "--output",
                 "--retry-for", "--limit-rate", "--keepalive", "--timeout", "/upload",
                 "/download", "/list", "75"):
        assert part in text, part


def test_limit_rate_caps_the_rate(server, tmp_path, user_env):
    write_random(tmp_path / "f", 600 * 1024)
    t0 = time.monotonic()
    r = run_bottle(["put", "f", "--limit-rate", "400k", addr(server)], user_env, tmp_path)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert elapsed >= 1.2, elapsed          # 600 KiB at 400 KiB/s: about 1.5 s


# --------------------------------------------------------------------------
# Resume after kill -9 of the client
# --------------------------------------------------------------------------

def test_client_killed_mid_upload_resumes(server, tmp_path, user_env, bottles):
    size = 4 * MiB
    sha = write_random(tmp_path / "f.bin", size)
    b = bottles(["put", "f.bin", "--limit-rate", "1M", addr(server)], user_env, tmp_path)
    wait_until(lambda: file_size(partial_glob(server.data_dir)) >= 256 * 1024, 10,
               "the server's partial to grow")
    b.kill()
    r = run_bottle(["put", "f.bin", addr(server)], user_env, tmp_path)
    assert r.returncode == 0, r.stderr
    line = final_line(r.stdout, "uploaded", "f.bin")
    offsets = resumed_at(line)
    assert offsets and 0 < offsets[0] < size, offsets
    total, moved, _ = parse_final(line)
    assert close_to(total, size), line
    assert close_to(moved + offsets[0], size), line
    assert sha256_file(Path(server.data_dir) / "f.bin") == sha


def test_client_interrupted_says_how_to_resume(server, tmp_path, user_env, bottles):
    write_random(tmp_path / "f.bin", 2 * MiB)
    b = bottles(["put", "f.bin", "--limit-rate", "1M", addr(server)],
                user_env, tmp_path)
    wait_until(lambda: file_size(partial_glob(server.data_dir)) >= 128 * 1024, 10,
               "the server's partial to grow")
    os.kill(b.pid, signal.SIGINT)
    assert b.wait(timeout=5) == 130
    err = b.stderr()
    assert "interrupted" in err and \
        f"run the same command again to resume: bottle put f.bin --as f.bin {addr(server)}" \
        in err, err
    assert b.stdout() == ""


def test_client_killed_mid_download_resumes(server, tmp_path, user_env, bottles):
    size = 4 * MiB
    sha = write_random(tmp_path / "f.bin", size)
    assert run_bottle(["put", "f.bin", addr(server)], user_env, tmp_path).returncode == 0
    out = tmp_path / "got.bin"
    args = ["get", "f.bin", "-o", out, addr(server)]
    b = bottles([*args, "--limit-rate", "1M"], user_env, tmp_path)
    part = tmp_path / "got.bin.part"
    wait_until(lambda: file_size(part) >= 256 * 1024, 10, "the .part to grow")
    b.kill()
    assert not out.exists()
    r = run_bottle(args, user_env, tmp_path)
    assert r.returncode == 0, r.stderr
    offsets = resumed_at(final_line(r.stdout, "downloaded", "f.bin"))
    assert offsets and 0 < offsets[0] < size, offsets
    assert sha256_file(out) == sha
    assert not part.exists()


def test_download_restarts_when_the_file_changed(server, tmp_path, user_env):
    """A .part of an older version is not spliced: the server restarts at 0."""
    data = Path(server.data_dir)
    (tmp_path / "v1").write_bytes(b"a" * 100000)
    (tmp_path / "v2").write_bytes(b"b" * 50000)
    assert run_bottle(["put", "v1", "--as", "doc", addr(server)], user_env,
                      tmp_path).returncode == 0
    r = run_bottle(["get", "doc", addr(server)], user_env, tmp_path)
    assert r.returncode == 0, r.stderr
    # Make a .part of v1 (with its digest attached), then change the file.
    os.rename(tmp_path / "doc", tmp_path / "doc.part")
    sha_v1 = hashlib.sha256(b"a" * 100000).hexdigest().encode()
    os.setxattr(tmp_path / "doc.part", "user.bottle.sha256", sha_v1)
    os.truncate(tmp_path / "doc.part", 30000)
    assert run_bottle(["put", "v2", "--as", "doc", addr(server)], user_env,
                      tmp_path).returncode == 0
    r = run_bottle(["get", "doc", addr(server)], user_env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "doc").read_bytes() == (data / "doc").read_bytes() == b"b" * 50000


# --------------------------------------------------------------------------
# Recovery: the server restarts while the client runs
# --------------------------------------------------------------------------

def test_server_killed_mid_upload_client_recovers(make_server, tmp_path, user_env, bottles):
    srv = make_server()
    port = srv.port
    size = 3 * MiB
    sha = write_random(tmp_path / "f.bin", size)
    b = bottles(["put", "f.bin", "--limit-rate", "1M", "--retry-for", "30",
                 f"127.0.0.1:{port}"], user_env, tmp_path)
    wait_until(lambda: file_size(partial_glob(srv.data_dir)) >= 256 * 1024, 10,
               "the server's partial to grow")
    srv.signal(signal.SIGKILL)
    assert srv.wait(timeout=5) == -signal.SIGKILL
    time.sleep(3)                       # the outage itself: the server is away 3 s
    assert b.proc.poll() is None, "the client must keep retrying"
    srv2 = make_server(listen=(f"127.0.0.1:{port}",), data_dir=srv.data_dir)
    assert srv2.port == port
    assert b.wait(timeout=30) == 0, b.stderr()
    err = b.stderr()
    assert "connection lost" in err and "retrying" in err, err
    m = re.search(r"resumed at (\d+)", err)
    assert m and int(m.group(1)) > 0, err
    assert resumed_at(final_line(b.stdout(), "uploaded", "f.bin"))
    assert sha256_file(Path(srv.data_dir) / "f.bin") == sha


def test_server_gone_for_good_gives_up_with_75(make_server, tmp_path, user_env, bottles):
    srv = make_server()
    write_random(tmp_path / "f.bin", 2 * MiB)
    b = bottles(["put", "f.bin", "--limit-rate", "1M", "--retry-for", "2",
                 addr(srv)], user_env, tmp_path)
    wait_until(lambda: file_size(partial_glob(srv.data_dir)) >= 128 * 1024, 10,
               "the server's partial to grow")
    srv.signal(signal.SIGKILL)
    assert b.wait(timeout=15) == EX_TEMPFAIL
    err = b.stderr()
    assert "giving up" in err, err
    assert f"run the same command again to resume: bottle put f.bin --as f.bin " \
           f"127.0.0.1:{srv.port}" in err, err


# --------------------------------------------------------------------------
# Cable pull: two network namespaces and a veth pair
# --------------------------------------------------------------------------

SERVER_IP, CLIENT_IP = "10.123.45.1", "10.123.45.2"


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, timeout=10, check=check)


class Cable:
    """Server side nsA (vethA, .1) and client side nsB (vethB, .2)."""

    def __init__(self, tmp_path):
        tag = uuid.uuid4().hex[:6]
        self.ns_a, self.ns_b = f"bottle-a-{tag}", f"bottle-b-{tag}"
        self.veth_a, self.veth_b = f"bta{tag}", f"btb{tag}"
        self.tmp_path = tmp_path
        self.made = []
        self.servers = []

    def setup(self):
        if os.geteuid() != 0 or not shutil.which("ip"):
            pytest.skip("cable tests need root and iproute2 to make network namespaces")
        for ns in (self.ns_a, self.ns_b):
            r = ip("netns", "add", ns, check=False)
            if r.returncode != 0:
                pytest.skip(f"cannot create a network namespace: {r.stderr.decode().strip()}")
            self.made.append(ns)
        ip("link", "add", self.veth_a, "netns", self.ns_a, "type", "veth",
           "peer", "name", self.veth_b, "netns", self.ns_b)
        for ns, dev, a in ((self.ns_a, self.veth_a, SERVER_IP),
                           (self.ns_b, self.veth_b, CLIENT_IP)):
            ip("-n", ns, "addr", "add", f"{a}/30", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def server(self, *args):
        """bottled in nsA on SERVER_IP:0; returns (Server, port)."""
        wrapper = self.tmp_path / "bottled-in-ns"
        wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {self.ns_a} "
                           f"{shlex.quote(BOTTLED)} \"$@\"\n")
        wrapper.chmod(0o755)
        # A non-loopback address: protected mode wants --open (or accounts).
        srv = Server(("--open", *args), self.tmp_path / "data", listen=(f"{SERVER_IP}:0",),
                     binary=str(wrapper))
        self.servers.append(srv)
        m = srv.wait_log(rf"listening on {re.escape(SERVER_IP)}:(\d+)", timeout=10)
        srv.port = int(m.group(1))
        return srv

    def client_prefix(self):
        return ("ip", "netns", "exec", self.ns_b)

    def cut(self):
        """Pull the cable: the server's end goes down, nothing passes either way."""
        ip("-n", self.ns_a, "link", "set", self.veth_a, "down")

    def restore(self):
        ip("-n", self.ns_a, "link", "set", self.veth_a, "up")

    def wait_reachable(self, port, timeout=15):
        """From nsB, retry a TCP connect to the server until one succeeds
        (after a cut, ARP must find the server again first)."""
        probe = ("import socket, sys, time\n"
                 "deadline = time.monotonic() + float(sys.argv[3])\n"
                 "while True:\n"
                 "    try:\n"
                 "        socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()\n"
                 "        break\n"
                 "    except OSError:\n"
                 "        if time.monotonic() > deadline:\n"
                 "            sys.exit(1)\n"
                 "        time.sleep(0.1)\n")
        r = subprocess.run([*self.client_prefix(), "python3", "-c", probe, SERVER_IP,
                            str(port), str(timeout)], capture_output=True, timeout=timeout + 5)
        assert r.returncode == 0, f"server not reachable from {self.ns_b} after the cut"

    def teardown(self):
        for srv in self.servers:
            srv.stop(timeout=5)
        for ns in self.made:
            ip("netns", "del", ns, check=False)


@pytest.fixture
def cable(tmp_path):
    c = Cable(tmp_path)
    try:
        c.setup()
        yield c
    finally:
        c.teardown()


def test_cable_pulled_then_restored_transfer_completes(cable, tmp_path, user_env, bottles):
    srv = cable.server("--keepalive", "2,1,3")
    size = 4 * MiB
    sha = write_random(tmp_path / "f.bin", size)
    b = bottles(["put", "f.bin", "--limit-rate", "1M", "--keepalive", "2,1,3",
                 "--timeout", "2", "--retry-for", "30", f"{SERVER_IP}:{srv.port}"],
                user_env, tmp_path, prefix=cable.client_prefix())
    wait_until(lambda: file_size(partial_glob(srv.data_dir)) >= 512 * 1024, 10,
               "the server's partial to grow")
    cable.cut()
    time.sleep(5)                       # the outage itself
    assert b.proc.poll() is None, b.stderr()
    cable.restore()
    assert b.wait(timeout=40) == 0, b.stderr()
    assert "retry?" not in b.stderr()
    final_line(b.stdout(), "uploaded", "f.bin")
    assert sha256_file(Path(srv.data_dir) / "f.bin") == sha


def test_cable_pulled_for_good_exits_75_and_server_keeps_partial(cable, tmp_path, user_env,
                                                                  bottles):
    srv = cable.server("--keepalive", "2,1,3")
    size = 4 * MiB
    sha = write_random(tmp_path / "f.bin", size)
    address = f"{SERVER_IP}:{srv.port}"
    b = bottles(["put", "f.bin", "--limit-rate", "1M", "--keepalive", "2,1,3",
                 "--timeout", "2", "--retry-for", "5", address],
                user_env, tmp_path, prefix=cable.client_prefix())
    wait_until(lambda: file_size(partial_glob(srv.data_dir)) >= 512 * 1024, 10,
               "the server's partial to grow")
    mark = srv.log_mark()
    cut_at = time.monotonic()
    cable.cut()
    # Dead link noticed within 2+1*3 s, then up to 5 s of retries (each
    # connect bounded by 2 s): the client must give up well within 20 s.
    assert b.wait(timeout=25) == EX_TEMPFAIL, b.stderr()
    assert time.monotonic() - cut_at < 20
    err = b.stderr()
    assert "connection lost" in err and "giving up" in err, err
    hint = f"run the same command again to resume: bottle put f.bin --as f.bin {address}"
    assert hint in err, err
    srv.wait_log(r"keepalive timeout", timeout=15, since=mark)
    kept = file_size(partial_glob(srv.data_dir))
    assert 0 < kept < size
    # The command it printed resumes once the cable is back.
    cable.restore()
    cable.wait_reachable(srv.port)
    resume = shlex.split(err[err.index(hint):].splitlines()[0].split(": ", 1)[1])[1:]
    r = subprocess.run([*cable.client_prefix(), BOTTLE, *resume], capture_output=True,
                       timeout=30, env=user_env, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    offsets = resumed_at(final_line(r.stdout, "uploaded", "f.bin"))
    assert offsets and offsets[0] > 0
    assert sha256_file(Path(srv.data_dir) / "f.bin") == sha


def test_cable_pulled_mid_download_server_notices_within_user_timeout(cable, tmp_path,
                                                                     user_env, bottles):
    """While the server has unacknowledged data in flight keepalive cannot
    fire; TCP_USER_TIMEOUT (set to the keepalive window) is what notices the
    dead peer. Without it the kernel would retransmit for many minutes."""
    srv = cable.server("--keepalive", "2,1,3")
    write_random(Path(srv.data_dir) / "big.bin", 32 * MiB)
    b = bottles(["get", "big.bin", "--limit-rate", "1M", "--keepalive", "2,1,3",
                 "--timeout", "1", "--retry-for", "1", f"{SERVER_IP}:{srv.port}"],
                user_env, tmp_path, prefix=cable.client_prefix())
    wait_until(lambda: file_size(tmp_path / "big.bin.part") >= 512 * 1024, 10,
               "the download to start")
    mark = srv.log_mark()
    cut_at = time.monotonic()
    cable.cut()
    srv.wait_log(r"disconnect .*: keepalive timeout", timeout=20, since=mark)
    assert time.monotonic() - cut_at < 15
    assert srv.find_log(r"download big.bin to .* interrupted", since=mark)
    b.wait(timeout=30)


# --------------------------------------------------------------------------
# The interactive chat (tmux) and the progress bar
# --------------------------------------------------------------------------

def env_prefix(env):
    keep = ("HOME", "XDG_STATE_HOME")
    return "env -u BOTTLE_SERVER " + " ".join(f"{k}={shlex.quote(env[k])}" for k in keep)


def test_chat_upload_download_list_while_chatting(server, tmp_path, user_env, tmux_sessions):
    work = tmp_path / "work"
    work.mkdir()
    size = 2 * MiB
    sha = write_random(work / "big.bin", size)
    sha_small = write_random(work / "small.bin", MiB // 2)
    raw = TpktClient(server.port)
    try:
        raw.hello()
        t = tmux_sessions(f"cd {shlex.quote(str(work))} && exec {env_prefix(user_env)} "
                          f"{shlex.quote(BOTTLE)} --limit-rate 1M {addr(server)}")
        nick = raw.wait_event(re.compile(r"JOIN \S+")).split(" ", 1)[1]
        t.wait_text(f"as {nick}")

        t.type("/upload big.bin")
        t.wait_text("[big.bin")          # the prompt shows the running transfer
        t.type("/upload small.bin")      # two at once
        # Typed together, the two lines would arrive as one pasted message:
        # wait until the second upload shows in the prompt (or is done).
        t.wait(lambda lines: any("| small.bin" in l or "uploaded small.bin" in l
                                 for l in lines), "the second upload running")
        t.type("/upload big.bin")
        t.wait_text("upload big.bin is already running")
        t.type("hello while uploading")
        raw.wait_event(f"MSG {nick} hello while uploading")
        t.wait_text("uploaded small.bin: ", timeout=15)
        lines = t.wait_text("uploaded big.bin: ", timeout=15)
        assert any(FINAL_RE.search(line.strip()) for line in lines), lines
        assert sha256_file(Path(server.data_dir) / "big.bin") == sha
        assert sha256_file(Path(server.data_dir) / "small.bin") == sha_small

        t.type("/list")
        t.wait_text(f"{size} big.bin")

        os.rename(work / "big.bin", work / "orig.bin")
        t.type("/download big.bin")
        t.wait_text("downloaded big.bin: ", timeout=15)
        assert sha256_file(work / "big.bin") == sha

        t.type("/upload no-such-file")
        t.wait_text("cannot open no-such-file")
        t.type("/quit")
        raw.wait_event(f"LEAVE {nick} quit")
    finally:
        raw.close()


def test_progress_bar_on_a_terminal(server, tmp_path, user_env, tmux_sessions):
    write_random(tmp_path / "f.bin", 2 * MiB)
    assert run_bottle(["put", "f.bin", addr(server)], user_env, tmp_path).returncode == 0
    t = tmux_sessions(f"cd {shlex.quote(str(tmp_path))} && {env_prefix(user_env)} "
                      f"{shlex.quote(BOTTLE)} get f.bin -o g.bin --limit-rate 1M "
                      f"{addr(server)}; sleep 30")
    lines = t.wait_text("ETA")
    bar = next(line for line in lines if "ETA" in line)
    assert re.search(r"f\.bin +\d+% \[#* *\] .*/s", bar), bar
    lines = t.wait_text("downloaded f.bin to g.bin: ", timeout=15)
    assert not any("ETA" in line for line in lines), lines   # the bar is cleared


def test_chat_asks_after_the_window_and_retries_on_yes(cable, tmp_path, user_env,
                                                        tmux_sessions):
    """In the chat, a transfer whose link stays down past --retry-for asks
    "retry? [y/N]"; "y" starts a new window and it completes. The chat's own
    connection dies with the cable: the session stays for the transfer."""
    srv = cable.server("--keepalive", "2,1,3")
    size = 4 * MiB
    sha = write_random(tmp_path / "f.bin", size)
    prefix = " ".join(cable.client_prefix())
    t = tmux_sessions(f"cd {shlex.quote(str(tmp_path))} && {prefix} {env_prefix(user_env)} "
                      f"{shlex.quote(BOTTLE)} -k 2,1,3 --timeout 2 --retry-for 3 "
                      f"--limit-rate 1M {SERVER_IP}:{srv.port}; sleep 60")
    t.wait_text("connected to")
    t.type("/upload f.bin")
    wait_until(lambda: file_size(partial_glob(srv.data_dir)) >= 512 * 1024, 10,
               "the server's partial to grow")
    cable.cut()
    t.wait_text("retry? [y/N]", timeout=30)
    cable.restore()
    cable.wait_reachable(srv.port)
    t.type("y")
    lines = t.wait_text("uploaded f.bin: ", timeout=30)
    assert any("resumed at" in line for line in lines), lines
    assert sha256_file(Path(srv.data_dir) / "f.bin") == sha


def test_ls_reads_every_page(server, tmp_path, user_env):
    names = sorted(f"{i:04d}-" + "n" * 200 for i in range(600))
    for name in names:
        (server.data_dir / name).write_bytes(b"ab")
    r = subprocess.run([BOTTLE, "ls", f"127.0.0.1:{server.port}"], capture_output=True,
                       timeout=20, env=user_env, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [f"2 {name}" for name in names]
