"""The progress bar of bottle put/get on a real terminal (tmux): it fits any
width without wrapping, is redrawn whole after a resize, leaves no ^C behind
on Ctrl-C; and the final line counts the same way after a rerun and after an
automatic resume, in binary units like the bar.

Run with:  pytest-3 -q tests/system/test_progress.py  (BOTTLE, BOTTLED pick builds)

Everything is on 127.0.0.1; every wait polls with a deadline; bottle runs
as the pane's process (exec), killed by PID with the tmux server.
"""

import fcntl
import os
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from harness.env import BOTTLE, DEFAULT_TIMEOUT, wait_until
from harness.files import MiB, sha256_file, write_random
from harness.final import FINAL_RE
from harness.tmux import Tmux

MARGIN = 3                     # PROGRESS_MARGIN: last column, and room for ^C
BAR_RE = re.compile(r"\d+%")



@pytest.fixture
def terminals():
    """Factory: terminals(command, width) -> Tmux that keeps its pane after exit."""
    made = []

    def factory(command, width, height=12):
        t = Tmux(command, width=width, height=height)
        made.append(t)
        t.tmux(["set-option", "-gw", "remain-on-exit", "on"])
        return t

    yield factory
    for t in made:
        t.kill()


def shell_env(env):
    return "env -u BOTTLE_SERVER " + " ".join(
        f"{k}={shlex.quote(env[k])}" for k in ("HOME", "XDG_STATE_HOME"))


def slow_get(server, tmp_path, user_env, rate="256K", size=8 * MiB):
    """The command line of a download that lasts (size / rate: 32 s)."""
    write_random(Path(server.data_dir) / "f.bin", size)
    return (f"cd {shlex.quote(str(tmp_path))} && exec {shell_env(user_env)} "
            f"{shlex.quote(BOTTLE)} get f.bin -o g.bin --limit-rate {rate} "
            f"127.0.0.1:{server.port}")


def bar_lines(lines):
    return [line for line in lines if BAR_RE.search(line)]


def screen_rows(t):
    """Every line of the pane and of its history, wrapped rows joined (tmux
    may push the top rows into its history when the pane dies)."""
    shown = t.tmux(["capture-pane", "-p", "-J", "-S", "-100"]).stdout.decode()
    return [row.rstrip() for row in shown.split("\n")]


def wait_rows(t, text):
    """Polls the pane and its history until a row holds text; the rows."""
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while True:
        rows = screen_rows(t)
        if any(text in row for row in rows):
            return rows
        assert time.monotonic() < deadline, f"never showed {text!r}: {rows}"
        time.sleep(0.05)


@pytest.mark.parametrize("width", [20, 40, 62, 80])
def test_bar_fits_a_narrow_terminal(server, tmp_path, user_env, terminals, width):
    t = terminals(slow_get(server, tmp_path, user_env), width)
    t.wait(lambda lines: len(bar_lines(lines)) == 1, "the bar")
    seen = set()
    deadline = time.monotonic() + 1.5            # about 15 redraws
    while time.monotonic() < deadline:
        lines = t.lines()
        # One line only, nothing wrapped onto a second row, nothing scrolled.
        assert len(lines) == 1, lines
        assert len(lines[0]) <= width - MARGIN, lines
        seen.add(lines[0])
        time.sleep(0.05)
    assert all(BAR_RE.search(line) for line in seen), seen
    if width >= 40:
        assert any("/s" in line for line in seen), seen       # the rate is kept
    if width >= 80:
        assert any("[" in line and "]" in line for line in seen), seen


def pane_pid(t):
    return int(t.tmux(["display", "-p", "#{pane_pid}"]).stdout.split()[0])


def resize(t, width, height=12):
    """Resizes the window while bottle is stopped, and lets it go on once the
    pane's terminal has the new size. tmux reflows its screen at once but
    tells the pane's terminal later: a bar drawn in between is sized for the
    old width, which no program can know (see progress.h)."""
    pid = pane_pid(t)
    tty = t.tmux(["display", "-p", "#{pane_tty}"]).stdout.decode().strip()
    os.kill(pid, signal.SIGSTOP)
    try:
        t.tmux(["resize-window", "-x", str(width), "-y", str(height)])
        fd = os.open(tty, os.O_RDONLY | os.O_NOCTTY)
        try:
            wait_until(lambda: struct.unpack("HHHH", fcntl.ioctl(
                fd, termios.TIOCGWINSZ, b"\0" * 8))[1] == width, 5, "the pane's new size")
        finally:
            os.close(fd)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_bar_redrawn_whole_after_a_resize(server, tmp_path, user_env, terminals):
    # Six empty lines first, as a shell has lines above the bar: tmux keeps the
    # cursor's row when it reflows, so rows of the bar above the top of the
    # screen would go to its history, out of reach of any redraw.
    t = terminals("printf '\\n\\n\\n\\n\\n\\n'; " + slow_get(server, tmp_path, user_env), 120)
    lines = t.wait(lambda ls: any("[" in line for line in bar_lines(ls)), "the full bar")
    assert len(lines) == 1, lines
    resize(t, 40)
    # tmux reflows the 117-column bar onto three rows; the next redraw must
    # take all of them back, leaving one line that fits.
    t.wait(lambda ls: len(ls) == 1 and BAR_RE.search(ls[0]) and len(ls[0]) <= 40 - MARGIN
           and "[" not in ls[0], "one narrow bar")
    resize(t, 120)
    t.wait(lambda ls: len(ls) == 1 and "[" in ls[0] and len(ls[0]) > 60, "the full bar again")


@pytest.mark.parametrize("width", [80, 30])
def test_ctrl_c_leaves_no_caret(server, tmp_path, user_env, terminals, width):
    t = terminals(slow_get(server, tmp_path, user_env), width)
    t.wait(lambda lines: len(bar_lines(lines)) == 1, "the bar")
    t.tmux(["send-keys", "C-c"])
    wait_rows(t, "interrupted")
    rows = [row for row in screen_rows(t) if row and not row.startswith("Pane is dead")]
    assert not any("^" in row for row in rows), rows
    assert not bar_lines(rows), rows                     # the bar is gone, all of it
    assert rows[0] == "bottle: download f.bin: interrupted", rows
    assert any("run the same command again" in row for row in rows), rows


def test_ctrl_c_before_the_bar_leaves_no_caret(tmp_path, user_env, terminals):
    """Interrupted while it waits for a server that never greets: no bar yet,
    and the ^C echo is still cleared before "interrupted"."""
    with socket.socket() as quiet:                       # listens, never accepts
        quiet.bind(("127.0.0.1", 0))
        quiet.listen(1)
        (tmp_path / "f.bin").write_bytes(b"x" * 1000)
        t = terminals(f"cd {shlex.quote(str(tmp_path))} && exec {shell_env(user_env)} "
                      f"{shlex.quote(BOTTLE)} put f.bin 127.0.0.1:{quiet.getsockname()[1]}",
                      60)
        ready, _, _ = select.select([quiet], [], [], 5)  # bottle's connection is queued
        assert ready, "bottle never dialed"
        t.tmux(["send-keys", "C-c"])
        wait_rows(t, "interrupted")
        rows = [row for row in screen_rows(t) if row and not row.startswith("Pane is dead")]
        assert not any("^" in row for row in rows), rows


# --------------------------------------------------------------------------
# The final line
# --------------------------------------------------------------------------


def run_bottle(args, env, cwd, timeout=30):
    return subprocess.run([BOTTLE, *[str(a) for a in args]], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, env=env, cwd=cwd)


def partial_size(data_dir):
    for p in (Path(data_dir) / ".bottle" / "partial").glob("*.data"):
        try:
            return p.stat().st_size
        except OSError:
            pass
    return 0


def final(stdout):
    lines = stdout.decode().splitlines()
    assert len(lines) == 1, lines
    m = FINAL_RE.match(lines[0])
    assert m, lines[0]
    assert "MB/s" not in lines[0], lines[0]   # sizes in binary units only
    return m


def test_final_line_plain(server, tmp_path, user_env):
    write_random(tmp_path / "f.bin", 3 * MiB)
    m = final(run_bottle(["put", "f.bin", f"127.0.0.1:{server.port}"], user_env,
                         tmp_path).stdout)
    assert m["size"] == "3.0 MiB" and m["moved"] is None and m["at"] is None, m[0]


def test_final_line_after_a_rerun_says_both(server, tmp_path, user_env):
    sha = write_random(tmp_path / "f.bin", 4 * MiB)
    args = ["put", "f.bin", f"127.0.0.1:{server.port}"]
    b = subprocess.Popen([BOTTLE, *args, "--limit-rate", "1M"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=user_env,
                         cwd=tmp_path)
    try:
        wait_until(lambda: partial_size(server.data_dir) >= 512 * 1024, 10, "the partial")
    finally:
        os.kill(b.pid, signal.SIGKILL)
        b.wait(timeout=5)
    m = final(run_bottle(args, user_env, tmp_path).stdout)
    assert m["size"] == "4.0 MiB", m[0]
    assert m["moved"] and m["at"], m[0]               # both: moved now, and where from
    assert sha256_file(Path(server.data_dir) / "f.bin") == sha


def test_final_line_after_an_automatic_resume_says_both(make_server, tmp_path, user_env):
    srv = make_server()
    port = srv.port
    write_random(tmp_path / "f.bin", 3 * MiB)
    out = open(tmp_path / "out.txt", "wb")
    b = subprocess.Popen([BOTTLE, "put", "f.bin", "--limit-rate", "1M", "--retry-for", "30",
                          f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.DEVNULL, env=user_env, cwd=tmp_path)
    try:
        wait_until(lambda: partial_size(srv.data_dir) >= 512 * 1024, 10, "the partial")
        srv.signal(signal.SIGKILL)
        srv.wait(timeout=5)
        make_server(listen=(f"127.0.0.1:{port}",), data_dir=srv.data_dir)
        assert b.wait(timeout=30) == 0
    finally:
        if b.poll() is None:
            os.kill(b.pid, signal.SIGKILL)
            b.wait(timeout=5)
        out.close()
    m = final((tmp_path / "out.txt").read_bytes())
    assert m["size"] == "3.0 MiB", m[0]
    assert m["moved"] and m["at"], m[0]               # said the same way as a rerun
