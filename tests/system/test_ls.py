"""bottle ls: on a terminal (tmux), sizes in binary units with every name in
one column; piped, the server's "<bytes> <name>" lines exactly, as scripts
read them.

Run with:  pytest-3 -q tests/system/test_ls.py  (BOTTLE, BOTTLED pick builds)
Loopback only; the tmux pane is killed by PID at teardown.
"""

import os
import shlex
import subprocess

import pytest

from harness.env import BOTTLE
from harness.tmux import Tmux

FILES = {"empty": 0, "one": 1, "small.txt": 1023, "half.bin": 1536,
         "big.iso": 5 * 1024 * 1024 + 1, "with space": 42}
HUMAN = {"empty": "0 B", "one": "1 B", "small.txt": "1023 B", "half.bin": "1.5 KiB",
         "big.iso": "5.0 MiB", "with space": "42 B"}


@pytest.fixture
def listed(server):
    for name, size in FILES.items():
        with open(server.data_dir / name, "wb") as f:
            f.truncate(size)                 # sparse: the size is what counts
    return server


def env(tmp_path):
    e = dict(os.environ)
    e.pop("BOTTLE_SERVER", None)
    e["HOME"] = str(tmp_path)
    return e


def test_ls_piped_is_exact_bytes(listed, tmp_path):
    r = subprocess.run([BOTTLE, "ls", f"127.0.0.1:{listed.port}"], capture_output=True,
                       timeout=20, env=env(tmp_path), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.decode().splitlines()) == \
        sorted(f"{size} {name}" for name, size in FILES.items())


def test_ls_on_a_terminal_is_aligned_and_human(listed, tmp_path):
    t = Tmux(f"HOME={shlex.quote(str(tmp_path))} {shlex.quote(BOTTLE)} ls "
             f"127.0.0.1:{listed.port}; echo ls-done; sleep 30", width=100, height=20)
    try:
        lines = t.wait_text("ls-done")
    finally:
        t.kill()
    rows = [line for line in lines if line != "ls-done"]
    assert len(rows) == len(FILES), rows
    starts = set()
    for name, human in HUMAN.items():
        row = next(r for r in rows if r.endswith(name))
        number, unit = human.split(" ")
        assert row == f"{number:>6} {unit:<3}  {name}", row
        starts.add(row.index(name))
    assert starts == {12}, rows                 # every name in one column
