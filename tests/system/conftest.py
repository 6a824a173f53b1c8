"""Fixtures of the system tests for bottled (the harness is in harness/).

Run with:  pytest-3 -q tests/system   (BOTTLED, BOTTLE: the binaries to test)

Servers are started on 127.0.0.1 port 0 in a fresh folder per test and
stopped at teardown, which also fails a test whose server left a sanitizer or
valgrind report.  Every client a fixture makes is closed at teardown.
"""

import os

import pytest

from harness.clients import Client, LineChatClient, TpktClient
from harness.env import build_is_slow
from harness.files import MiB
from harness.lineproc import LineProcess
from harness.server import SANITIZER_REPORT, Server, valgrind_problem
from harness.tmux import Tmux


def pytest_collection_modifyitems(config, items):
    """@pytest.mark.normal_build_only (pytest.ini): a latency bound only the
    normal build honours, skipped when BOTTLED is sanitized or wrapped."""
    if not build_is_slow():
        return
    skip = pytest.mark.skip(reason="latency bound for the normal build: BOTTLED is "
                            "sanitized (ASan) or runs under valgrind")
    for item in items:
        if item.get_closest_marker("normal_build_only"):
            item.add_marker(skip)


@pytest.fixture
def user_env(tmp_path):
    """Environment for a bottle client: its own HOME and state folder (resume
    keys, known partials), and no BOTTLE_SERVER from the caller's shell."""
    env = dict(os.environ)
    env.pop("BOTTLE_SERVER", None)
    env["HOME"] = str(tmp_path / "home")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return env


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(*extra_args, listen=("127.0.0.1:0",), wait=True).

    Starts bottled with ``-l 127.0.0.1:0 -d <tmp_path>/data`` plus the extra
    arguments, waits (10 s) for its listening line, and stops it at teardown.
    """
    servers = []

    def factory(*args, listen=("127.0.0.1:0",), wait=True, data_dir=None):
        n = len(servers)
        d = data_dir or (tmp_path / ("data" if n == 0 else f"data{n}"))
        srv = Server(args, d, listen=listen)
        servers.append(srv)
        if wait:
            srv.wait_listening(timeout=10.0)
        return srv

    yield factory
    for srv in servers:
        srv.stop(timeout=5.0)
    # Under the sanitizer build a report is a failure even if the test passed.
    for srv in servers:
        report = SANITIZER_REPORT.search(srv.log_text())
        if report:
            pytest.fail(f"sanitizer report from bottled: {report.group(0)}\n{srv.log_text()[-4000:]}")
        problem = valgrind_problem(srv)
        if problem:
            pytest.fail(f"bottled under valgrind {problem}\n--- server log (tail):\n"
                        f"{srv.log_text()[-2000:]}", pytrace=False)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def client(server):
    """A connected Client on ``server``; closed at teardown."""
    c = Client(server.port)
    yield c
    c.close()


def _closing(make):
    """A fixture body: a factory of what make(...) returns, each closed at
    teardown."""
    made = []

    def factory(*args, **kw):
        obj = make(*args, **kw)
        made.append(obj)
        return obj

    yield factory
    for obj in made:
        obj.close()


def _port(target):
    return target.port if isinstance(target, Server) else int(target)


def _connecting(cls):
    """A fixture body: a factory of cls clients, all closed at teardown."""
    yield from _closing(lambda target, **kw: cls(_port(target), **kw))


@pytest.fixture
def connect():
    """Factory: connect(server_or_port, **Client kwargs); closed at teardown."""
    yield from _connecting(Client)


@pytest.fixture
def connect_tpkt():
    """Factory: connect_tpkt(server_or_port, **TpktClient kwargs)."""
    yield from _connecting(TpktClient)


@pytest.fixture
def connect_line():
    """Factory: connect_line(server_or_port, **Client kwargs) -> LineChatClient."""
    yield from _connecting(LineChatClient)


@pytest.fixture
def connect_as():
    """Factory: connect_as(cls, server_or_port, **kwargs) for a client class of
    the test's own (test_tls.py's TLS ones); closed at teardown."""
    yield from _closing(lambda cls, target, **kw: cls(_port(target), **kw))


@pytest.fixture
def line_process():
    """Factory: line_process(argv, env=None, cwd=None, wait=10.0) -> a
    harness.lineproc.LineProcess; killed at teardown."""
    yield from _closing(LineProcess)


@pytest.fixture
def tpkt():
    """Factory: tpkt(server_or_port, **TpktClient kwargs), set up for transfers:
    TCP_NODELAY, and ECHO as the first frame (its reply is read with the
    greeting by the first reply, and kept in first_reply).  Closed at teardown."""
    yield from _closing(lambda target, first="ECHO hello", nodelay=True, **kw:
                        TpktClient(_port(target), first=first, nodelay=nodelay, **kw))


@pytest.fixture
def drop_big_files(tmp_path):
    """Keep pytest's retained tmp dirs small: delete files over 4 MiB afterwards
    (use it with pytestmark = pytest.mark.usefixtures("drop_big_files"))."""
    yield
    for root, _dirs, files in os.walk(tmp_path):
        for n in files:
            p = os.path.join(root, n)
            try:
                if os.lstat(p).st_size > 4 * MiB:
                    os.unlink(p)
            except OSError:
                pass


@pytest.fixture
def tmux_sessions():
    """Factory: tmux_sessions(command) runs it in a 150x40 tmux; killed at teardown."""
    made = []

    def factory(command):
        t = Tmux(command, width=150, height=40)
        made.append(t)
        return t

    yield factory
    for t in made:
        t.kill()
