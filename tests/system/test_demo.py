"""scripts/demo-tools, the tour with ss, netstat, nmap and tshark, runs clean.

Run with:  pytest-3 -q tests/system/test_demo.py
Runs the whole demonstration (about 10 s) against BOTTLED / BOTTLE and checks
that it exits 0, that ss shows the server's port in LISTEN and nmap shows it
open, and that the bottled and nc processes it started are gone afterwards.
The demo installs missing tools through scripts/deps, which needs root or sudo;
without either and with a tool missing, the test is skipped.
"""

import os
import re
import shutil
import signal
import subprocess

import pytest

from harness.env import BOTTLE, BOTTLED, REPO

DEMO = REPO / "scripts" / "demo-tools"
TOOLS = ("ss", "netstat", "nmap", "nc", "tshark")
DEMO_TIMEOUT = 60


def process_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def process_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def run_demo(env):
    """Run the demo in its own process group, bounded by DEMO_TIMEOUT.

    On timeout it gets SIGTERM first, so its EXIT trap stops what it started;
    whatever is left of its group is killed after a grace period.
    """
    proc = subprocess.Popen([str(DEMO)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=DEMO_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=10)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pytest.fail(f"demo-tools took over {DEMO_TIMEOUT} s\nstdout:\n{out}"
                    f"\nstderr:\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def demo():
    if not os.path.exists(BOTTLED):
        pytest.fail(f"server binary not found: {BOTTLED}")
    can_install = os.geteuid() == 0 or shutil.which("sudo")
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing and not can_install:
        pytest.skip(f"missing {missing} and no root to install them")
    env = dict(os.environ, BOTTLED=BOTTLED, BOTTLE=BOTTLE)
    env.pop("DEMO_PORT", None)
    r = run_demo(env)
    m = re.search(r"^pid (\d+), listening on 127\.0\.0\.1:(\d+)", r.stdout, re.M)
    return r, m


def test_exits_zero(demo):
    r, _ = demo
    assert r.returncode == 0, \
        f"demo-tools exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"


def test_ss_shows_listen(demo):
    r, m = demo
    assert m, f"no 'pid N, listening on' line:\n{r.stdout}"
    pid, port = m.groups()
    want = re.compile(
        rf"^LISTEN\s.*\s127\.0\.0\.1:{port}\s.*users:\(\(\"bottled\",pid={pid},",
        re.M)
    assert want.search(r.stdout), f"ss shows no LISTEN on {port}:\n{r.stdout}"


def test_nmap_shows_open(demo):
    r, m = demo
    assert m, f"no 'pid N, listening on' line:\n{r.stdout}"
    port = int(m.group(2))
    assert re.search(rf"^{port}/tcp\s+open\b", r.stdout, re.M), \
        f"nmap does not show {port}/tcp open:\n{r.stdout}"
    # the neighbours were scanned too (closed, unless something else on this
    # machine happens to listen there)
    for p in (port - 2, port - 1, port + 1, port + 2):
        assert re.search(rf"^{p}/tcp\s+(closed|open)\b", r.stdout, re.M), \
            f"nmap did not scan neighbour {p}/tcp:\n{r.stdout}"


def test_keepalive_timer_shown(demo):
    r, m = demo
    assert m
    port = m.group(2)
    assert re.search(rf"127\.0\.0\.1:{port}\s.*timer:\(keepalive,", r.stdout), \
        f"ss -o shows no keepalive timer on the server's sockets:\n{r.stdout}"


def test_tpkt_decoded(demo):
    r, _ = demo
    if "tshark could not capture" in r.stdout:
        pytest.skip("tshark cannot capture on lo here")
    assert re.search(r"^TPKT, Version: 3, Length: \d+", r.stdout, re.M), \
        f"no TPKT frame decoded:\n{r.stdout}"
    assert "ECHO hello over TPKT" in r.stdout


def test_leaves_no_process(demo):
    r, m = demo
    assert m, f"no 'pid N, listening on' line:\n{r.stdout}"
    pid = int(m.group(1))
    assert not (process_alive(pid) and process_name(pid) == "bottled"), \
        f"bottled pid {pid} still running after the demo"
    for nc in re.findall(r"\(nc pid (\d+)\)", r.stdout):
        assert not (process_alive(int(nc)) and process_name(int(nc)) == "nc"), \
            f"nc pid {nc} still running after the demo"
    port = m.group(2)
    ss = subprocess.run(["ss", "-Htnl", f"sport = :{port}"], capture_output=True,
                        text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert ss.stdout.strip() == "", f"port {port} still listening:\n{ss.stdout}"
