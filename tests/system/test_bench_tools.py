"""The load generators of make bench (bench/*.c) at a tiny size: they pass
against a real bottled, and they fail (exit 1, "FAIL: <why>") against a
deliberately broken peer that drops, duplicates, reorders or corrupts one
message. Nothing here is timed: the figures are make bench's business.

The tools are built by `make -s bench-tools` into build/bench/tools (their own
folder, whatever build is under test); every generator runs with a timeout.
"""

import socket
import subprocess
import threading

import pytest

from harness.env import REPO

TOOLS = REPO / "build" / "bench" / "tools"
RUN_TIMEOUT = 30


@pytest.fixture(scope="module")
def tools():
    r = subprocess.run(["make", "-s", "bench-tools"], cwd=REPO, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, f"make bench-tools failed:\n{r.stdout}\n{r.stderr}"
    return TOOLS


def run_tool(tools, name, *args):
    r = subprocess.run([str(tools / name), *[str(a) for a in args]], capture_output=True,
                       text=True, timeout=RUN_TIMEOUT)
    return r.returncode, r.stdout, r.stderr


def figures(out):
    line = out.strip().splitlines()[-1]
    return {k: float(v) for k, v in (w.split("=", 1) for w in line.split())}


# ---- against the real server ---------------------------------------------

@pytest.mark.parametrize("proto", ["tpkt", "line"])
def test_fanout_checks_every_delivery_from_bottled(tools, server, proto):
    rc, out, err = run_tool(tools, "bench-fanout", "--port", server.port, "--proto", proto,
                            "-n", 5, "--max-msgs", 300, "--ms", 5000, "--inflight", 8,
                            "--pid", server.pid)
    assert rc == 0, err
    f = figures(out)
    assert f["msgs"] == 300
    assert f["deliveries"] == 5 * 300


@pytest.mark.parametrize("proto", ["tpkt", "line"])
def test_reqresp_checks_every_reply_from_bottled(tools, server, proto):
    rc, out, err = run_tool(tools, "bench-reqresp", "--port", server.port, "--proto", proto,
                            "-c", 4, "-d", 4, "--max-reqs", 400, "--ms", 5000)
    assert rc == 0, err
    assert figures(out)["reqs"] == 400


def test_conns_sees_every_connection_accepted_by_bottled(tools, server):
    rc, out, err = run_tool(tools, "bench-conns", "--port", server.port, "--proto", "tpkt",
                            "-n", 40, "--pid", server.pid, "--chatter-ms", 0,
                            "--quiet-ms", 100, "--timeout-ms", 20000)
    assert rc == 0, err
    f = figures(out)
    assert f["conns"] == 40
    assert f["fds"] >= 40
    assert f["rss1_kib"] > 0
    assert f["chat_n"] >= 1


def test_conns_line_mode_waits_for_the_delayed_greeting(tools, make_server):
    srv = make_server("--greeting-delay", 50)
    rc, out, err = run_tool(tools, "bench-conns", "--port", srv.port, "--proto", "line",
                            "-n", 10, "--pid", srv.pid, "--quiet-ms", 50,
                            "--timeout-ms", 20000)
    assert rc == 0, err
    assert figures(out)["fds"] >= 10


# ---- against a broken peer -------------------------------------------------

class BrokenPeer:
    """A line-mode stand-in for bottled: greeting, JOIN (and an unknown event
    word, which must be skipped), SAY -> OK + MSG to the others, ECHO -> OK.
    One fault at the 6th message a connection receives after its greeting:
    drop, dup, reorder (6th sent after the 7th) or corrupt (a byte changed)."""

    def __init__(self, fault):
        self.fault = fault
        self.lock = threading.Lock()
        self.members = []   # [sock, nick, count, held]
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        self.threads = [threading.Thread(target=self.accept, daemon=True)]
        self.threads[0].start()

    def send(self, m, text):
        """Send one message to member m, applying the fault once (lock held)."""
        m[2] += 1
        data = text.encode()
        out = [data]
        if m[2] == 6:
            if self.fault == "drop":
                out = []
            elif self.fault == "dup":
                out = [data, data]
            elif self.fault == "reorder":
                m[3] = data
                out = []
            elif self.fault == "corrupt":
                i = len(data) - 12
                out = [data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]]
        elif m[2] == 7 and m[3] is not None:
            out = [data, m[3]]
            m[3] = None
        for d in out:
            try:
                m[0].sendall(d)
            except OSError:
                pass

    def accept(self):
        n = 0
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            n += 1
            m = [s, f"Guest{n}", -1, None]
            with self.lock:
                for o in self.members:
                    o[0].sendall(f"JOIN {m[1]}\nWHATEVER new event\n".encode())
                self.members.append(m)
                s.sendall(f"OK bottled 0.0 broken; you are {m[1]}\n".encode())
            t = threading.Thread(target=self.serve, args=(m,), daemon=True)
            t.start()
            self.threads.append(t)

    def serve(self, m):
        f = m[0].makefile("rb")
        try:
            for raw in f:
                line = raw.rstrip(b"\r\n").decode(errors="replace")
                if not line:
                    continue
                verb, _, arg = line.partition(" ")
                with self.lock:
                    if verb == "SAY":
                        m[0].sendall(b"OK\n")
                        for o in self.members:
                            if o is not m:
                                self.send(o, f"MSG {m[1]} {arg}\n")
                    elif verb == "ECHO":
                        self.send(m, f"OK {arg}\n")
                    else:
                        m[0].sendall(b"ERR unknown command\n")
        except OSError:
            pass
        finally:
            with self.lock:
                if m in self.members:
                    self.members.remove(m)
            m[0].close()

    def stop(self):
        self.stopping = True
        self.lsock.close()
        with self.lock:
            for m in self.members:
                try:
                    m[0].shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self.threads:
            t.join(timeout=2)


FAULTS = {"drop": "lost", "dup": "duplicated", "reorder": "reordered", "corrupt": "corrupted"}


@pytest.fixture
def broken_peer(request):
    peer = BrokenPeer(request.param)
    yield peer
    peer.stop()


def test_broken_peer_without_fault_passes(tools):
    peer = BrokenPeer(None)
    try:
        rc, out, err = run_tool(tools, "bench-fanout", "--port", peer.port, "--proto", "line",
                                "-n", 2, "--max-msgs", 20, "--inflight", 4, "--ms", 5000)
        assert rc == 0, err
        assert figures(out)["deliveries"] == 40
        rc, out, err = run_tool(tools, "bench-reqresp", "--port", peer.port, "--proto", "line",
                                "-c", 2, "-d", 2, "--max-reqs", 20, "--ms", 5000)
        assert rc == 0, err
    finally:
        peer.stop()


@pytest.mark.parametrize("broken_peer", list(FAULTS), indirect=True)
def test_fanout_fails_on_a_broken_delivery(tools, broken_peer):
    rc, out, err = run_tool(tools, "bench-fanout", "--port", broken_peer.port, "--proto", "line",
                            "-n", 2, "--max-msgs", 20, "--inflight", 4, "--ms", 5000)
    assert rc == 1, (out, err)
    assert "FAIL:" in err and FAULTS[broken_peer.fault] in err, err


@pytest.mark.parametrize("broken_peer", list(FAULTS), indirect=True)
def test_reqresp_fails_on_a_broken_reply(tools, broken_peer):
    rc, out, err = run_tool(tools, "bench-reqresp", "--port", broken_peer.port, "--proto",
                            "line", "-c", 2, "-d", 4, "--max-reqs", 40, "--ms", 5000,
                            "--stall-ms", 2000)
    assert rc == 1, (out, err)
    assert "FAIL:" in err and FAULTS[broken_peer.fault] in err, err
